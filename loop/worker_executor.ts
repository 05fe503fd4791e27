/**
 * `WorkerExecutor`: an executor that runs functions in a pool of Web
 * Workers, off the loop's thread.
 *
 * @module
 */

import { CancelledError, InvalidStateError } from "../futures/errors.ts";
import type { Executor } from "./event_loop.ts";

/** Options for the `WorkerExecutor` constructor. */
export interface WorkerExecutorOptions {
  /**
   * The most workers the pool starts; each runs one job at a time. Workers
   * are started on demand, never more than there are jobs.
   *
   * @default {navigator.hardwareConcurrency, or 4 when unknown}
   */
  maxWorkers?: number;
}

/** Options for `WorkerExecutor.shutdown()`. */
export interface WorkerExecutorShutdownOptions {
  /**
   * Let every submitted job finish before the workers are terminated. With
   * `false` the workers are terminated at once, and the promises of jobs
   * that were running or queued reject with a `CancelledError`.
   *
   * @default {true}
   */
  wait?: boolean;
}

interface Job {
  readonly source: string;
  readonly args: unknown[];
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

interface Reply {
  ok: boolean;
  fatal?: boolean;
  value?: unknown;
  error?: unknown;
}

// The program each worker runs. It compiles a job's source once (kept in a
// small cache), calls it with the cloned arguments, awaits the result and
// posts it back; a failure is posted as the error itself, or as a plain
// `{ name, message, stack }` when the error cannot be cloned.
const WORKER_SOURCE = `
const cache = new Map();
function compile(source) {
  let fn = cache.get(source);
  if (fn !== undefined) return fn;
  try {
    fn = (0, eval)("(" + source + "\\n)");
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    // A method in shorthand form, such as "double(x) { return 2 * x; }".
    fn = Object.values((0, eval)("({" + source + "\\n})"))[0];
  }
  if (typeof fn !== "function") {
    throw new TypeError("Cannot run the job: its source is not a function, received " + typeof fn);
  }
  if (cache.size >= 64) cache.delete(cache.keys().next().value);
  cache.set(source, fn);
  return fn;
}
function describe(error) {
  if (error instanceof Error) {
    return { __plainError: true, name: error.name, message: error.message, stack: error.stack };
  }
  return { __plainError: true, name: "Error", message: String(error) };
}
// An error the job did not catch (thrown from a timer, say, or a promise
// rejection nobody handles) is reported instead of printed; the executor
// then replaces this worker.
function fatal(event, error) {
  event.preventDefault();
  try {
    self.postMessage({ ok: false, fatal: true, error });
  } catch {
    self.postMessage({ ok: false, fatal: true, error: describe(error) });
  }
}
self.addEventListener("error", (event) => fatal(event, event.error ?? new Error(event.message)));
self.addEventListener("unhandledrejection", (event) => fatal(event, event.reason));
self.onmessage = async (event) => {
  const { source, args } = event.data;
  try {
    const value = await compile(source)(...args);
    self.postMessage({ ok: true, value });
  } catch (error) {
    try {
      self.postMessage({ ok: false, error });
    } catch {
      self.postMessage({ ok: false, error: describe(error) });
    }
  }
};
`;

const WORKER_URL = `data:application/javascript,${
  encodeURIComponent(WORKER_SOURCE)
}`;

// Error classes rebuilt by name when a worker had to send a plain object.
const ERROR_CLASSES: Record<string, ErrorConstructor> = {
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
};

function reviveError(error: unknown): unknown {
  if (
    typeof error !== "object" || error === null ||
    !("__plainError" in error)
  ) {
    return error;
  }
  const plain = error as unknown as {
    name: string;
    message: string;
    stack?: string;
  };
  const revived = new (ERROR_CLASSES[plain.name] ?? Error)(plain.message);
  revived.name = plain.name;
  if (plain.stack !== undefined) revived.stack = plain.stack;
  return revived;
}

function defaultMaxWorkers(): number {
  const n = globalThis.navigator?.hardwareConcurrency;
  return typeof n === "number" && n >= 1 ? n : 4;
}

/**
 * An executor that runs functions in a small pool of Web Workers, so that
 * CPU-heavy work does not stall the event loop. It is the loop's default
 * executor: `loop.runInExecutor(null, fn, ...args)` uses one.
 *
 * What can be sent, and how:
 *
 * - `fn` travels as source text (`fn.toString()`) and is compiled again in
 *   the worker, so it must be self-contained: it may use its parameters,
 *   globals (`Math`, `crypto`, `fetch`, `Deno`, …) and dynamic `import()`,
 *   but not variables, imports or `this` from the code around it. Function
 *   expressions, arrow functions, `async` functions and method shorthand
 *   all work; native and bound functions (whose source is
 *   `[native code]`) do not. It may return a value or a promise.
 * - `args` and the result are copied with the structured clone algorithm
 *   (as by `postMessage`): numbers, strings, plain objects and arrays,
 *   `Map`, `Set`, `Date`, `RegExp`, typed arrays, `ArrayBuffer`,
 *   `SharedArrayBuffer` (shared, not copied — the way to share memory with
 *   the job) and errors all clone; functions, class instances' prototypes
 *   and symbols do not. An argument that cannot be cloned rejects the job
 *   with a `DataCloneError`.
 * - An error thrown by the job rejects the promise with an error of the
 *   same class (for built-in errors), `message` and `stack`.
 *
 * Each worker runs one job at a time; more jobs than workers wait in a
 * queue, first come first served. Workers inherit the program's
 * permissions. They keep the process alive until `shutdown()` (which
 * `loop.close()` calls for the loop's default executor).
 *
 * PEP 3156: the default executor of `loop.run_in_executor()` (PEP 3148's
 * `ThreadPoolExecutor`, with workers instead of threads).
 *
 * @example Running a self-contained function in a worker
 * ```ts
 * import { WorkerExecutor } from "@tulip/tulip/loop";
 * import { assertEquals } from "@std/assert";
 *
 * const executor = new WorkerExecutor({ maxWorkers: 1 });
 * const sum = await executor.submit((n: number) => {
 *   let total = 0;
 *   for (let i = 1; i <= n; i++) total += i;
 *   return total;
 * }, 1000);
 * assertEquals(sum, 500500);
 * await executor.shutdown();
 * ```
 *
 * @example Errors come back with their class and message
 * ```ts
 * import { WorkerExecutor } from "@tulip/tulip/loop";
 * import { assertRejects } from "@std/assert";
 *
 * const executor = new WorkerExecutor({ maxWorkers: 1 });
 * await assertRejects(
 *   () => executor.submit((x: number) => { throw new RangeError(`bad ${x}`); }, 7),
 *   RangeError,
 *   "bad 7",
 * );
 * await executor.shutdown();
 * ```
 */
export class WorkerExecutor implements Executor, AsyncDisposable {
  readonly #maxWorkers: number;
  readonly #idle: Worker[] = [];
  readonly #running = new Map<Worker, Job>();
  #queue: Job[] = [];
  #shutdown = false;
  #drained: PromiseWithResolvers<void> | null = null;

  /**
   * Makes an executor; no worker starts until the first job.
   *
   * @param options The size of the pool.
   * @throws {RangeError} When `maxWorkers` is not an integer >= 1.
   */
  constructor(options?: WorkerExecutorOptions) {
    const max = options?.maxWorkers ?? defaultMaxWorkers();
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(
        `Cannot make a WorkerExecutor: maxWorkers must be an integer >= 1, received ${max}`,
      );
    }
    this.#maxWorkers = max;
  }

  /**
   * Starts `fn(...args)` in a worker and returns a promise of its result.
   * See the class for what `fn`, `args` and the result may be.
   *
   * PEP 3148: `Executor.submit()`.
   *
   * @typeParam A The argument types.
   * @typeParam R The result type.
   * @param fn A self-contained function; it is sent as source.
   * @param args Its arguments, structured-cloned.
   * @returns A promise of the result, structured-cloned back.
   * @throws {TypeError} When `fn` is not a function, or is native or bound.
   * @throws {InvalidStateError} After `shutdown()`.
   */
  submit<A extends unknown[], R>(
    fn: (...args: A) => R | PromiseLike<R>,
    ...args: A
  ): Promise<R> {
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot call submit(): fn must be a function, received ${typeof fn}`,
      );
    }
    if (this.#shutdown) {
      throw new InvalidStateError(
        "Cannot call submit(): the executor is shut down",
      );
    }
    const source = Function.prototype.toString.call(fn);
    if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
      throw new TypeError(
        `Cannot call submit(): fn must have JavaScript source (not native or bound), received ${
          fn.name || "anonymous"
        }`,
      );
    }
    const { promise, resolve, reject } = Promise.withResolvers<R>();
    this.#queue.push({
      source,
      args,
      resolve: resolve as (value: unknown) => void,
      reject,
    });
    this.#pump();
    return promise;
  }

  /**
   * Stops accepting jobs and terminates the workers: once every submitted
   * job is done (the default), or at once with `{ wait: false }`, which
   * rejects unfinished jobs with a `CancelledError`. Calling it again is
   * harmless.
   *
   * PEP 3148: `Executor.shutdown()`.
   *
   * @param options Whether to wait for submitted jobs.
   * @returns A promise that resolves once the workers are terminated.
   */
  shutdown(options?: WorkerExecutorShutdownOptions): Promise<void> {
    this.#shutdown = true;
    if (options?.wait === false) {
      const dropped = [...this.#running.values(), ...this.#queue];
      this.#queue = [];
      for (const worker of this.#running.keys()) worker.terminate();
      this.#running.clear();
      for (const job of dropped) {
        job.reject(
          new CancelledError("The executor was shut down before the job ended"),
        );
      }
    }
    this.#drained ??= Promise.withResolvers<void>();
    const { promise } = this.#drained;
    this.#checkDrained();
    return promise;
  }

  /**
   * Shuts down and waits for submitted jobs; for `await using`.
   *
   * @returns A promise that resolves once the workers are terminated.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  /**
   * Returns `true` once `shutdown()` was called.
   *
   * @returns Whether the executor is shut down.
   */
  isShutdown(): boolean {
    return this.#shutdown;
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      let worker = this.#idle.pop();
      if (worker === undefined) {
        if (this.#running.size >= this.#maxWorkers) return;
        worker = this.#spawn();
      }
      const job = this.#queue.shift()!;
      this.#running.set(worker, job);
      try {
        worker.postMessage({ source: job.source, args: job.args });
      } catch (error) {
        // The arguments could not be cloned; the worker is still fine.
        this.#running.delete(worker);
        this.#idle.push(worker);
        job.reject(error);
      }
    }
    this.#checkDrained();
  }

  #spawn(): Worker {
    const worker = new Worker(WORKER_URL, {
      type: "module",
      name: "tulip-executor",
    });
    worker.onmessage = (event: MessageEvent<Reply>) => {
      const reply = event.data;
      const job = this.#running.get(worker);
      this.#running.delete(worker);
      if (reply.fatal) {
        this.#discard(worker);
      } else if (job !== undefined) {
        this.#idle.push(worker);
      }
      if (job !== undefined) {
        if (reply.ok) job.resolve(reply.value);
        else job.reject(reviveError(reply.error));
      }
      this.#pump();
    };
    worker.onmessageerror = () => {
      const job = this.#running.get(worker);
      if (job === undefined) return;
      this.#running.delete(worker);
      this.#idle.push(worker);
      job.reject(
        new TypeError(
          "Cannot receive the job's result: it could not be deserialized",
        ),
      );
      this.#pump();
    };
    worker.onerror = (event: ErrorEvent) => {
      // The worker failed in a way it could not report itself.
      event.preventDefault();
      const job = this.#running.get(worker);
      this.#running.delete(worker);
      this.#discard(worker);
      job?.reject(event.error ?? new Error(event.message));
      this.#pump();
    };
    return worker;
  }

  /** Terminates a worker whose state is unknown; the pool makes another. */
  #discard(worker: Worker): void {
    const idle = this.#idle.indexOf(worker);
    if (idle >= 0) this.#idle.splice(idle, 1);
    worker.terminate();
  }

  #checkDrained(): void {
    if (!this.#shutdown) return;
    if (this.#running.size > 0 || this.#queue.length > 0) return;
    this.#terminateIdle();
    const drained = this.#drained;
    this.#drained = null;
    drained?.resolve();
  }

  #terminateIdle(): void {
    for (const worker of this.#idle) worker.terminate();
    this.#idle.length = 0;
  }
}
