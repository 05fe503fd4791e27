/**
 * `WorkerExecutor`: an executor that runs functions in a pool of Web
 * Workers, off the loop's thread.
 *
 * @module
 */

import {
  CancelledError,
  formatReceived,
  InvalidStateError,
} from "../futures/errors.ts";
import type { Executor } from "./event_loop.ts";
import { cancelQueuedJob } from "./_executor_jobs.ts";
import { checkBoolean, checkOptions } from "../futures/_runtime.ts";

/** Options for the `WorkerExecutor` constructor. */
export interface WorkerExecutorOptions {
  /**
   * The most workers the pool starts; each runs one job at a time. Workers
   * are started on demand, never more than there are jobs.
   *
   * @default {navigator.hardwareConcurrency, or 4 when unknown}
   */
  maxWorkers?: number;
  /**
   * The most jobs that may wait for a free worker; `submit()` throws a
   * `RangeError` for one more, so that a burst of work cannot grow the
   * queue without bound.
   *
   * @default {10000}
   */
  maxQueued?: number;
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
  /** Sent with the job and echoed in its reply. */
  readonly id: number;
  /** What the worker runs: a function's source, or a module's export. */
  readonly message: { source: string } | {
    moduleUrl: string;
    exportName: string;
  };
  readonly args: unknown[];
  /** The function's name, for error messages. */
  readonly name: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

interface Reply {
  /**
   * The job's id, under a name of the executor's own: a message a job
   * posts itself (with an `id` of its own protocol, say) has none.
   */
  __tulipJob: number;
  ok: boolean;
  /** The worker is done for: replace it. */
  fatal?: boolean;
  value?: unknown;
  error?: unknown;
  /** How the job ended its worker, such as `"Deno.exit(1)"`. */
  ended?: string;
  /** Why the result could not be sent back. */
  notCloned?: string;
}

/**
 * The function a module exports under `exportName`, or an error naming the
 * module and the export. The worker program runs this same function (its
 * source is copied into it), so both threads say the same thing.
 */
function exportOf(
  module: Record<string, unknown>,
  moduleUrl: string,
  exportName: string,
): (...args: unknown[]) => unknown {
  if (!(exportName in module)) {
    const names = Object.keys(module);
    const shown = names.slice(0, 10).map((name) => `"${name}"`).join(", ");
    throw new TypeError(
      `Cannot run ${exportName}() from ${moduleUrl}: the module has no export named "${exportName}", received ${
        names.length === 0
          ? "no exports"
          : `exports ${shown}${names.length > 10 ? ", …" : ""}`
      }`,
    );
  }
  const fn = module[exportName];
  if (typeof fn !== "function") {
    throw new TypeError(
      `Cannot run ${exportName}() from ${moduleUrl}: the export is not a function, received ${
        fn === null ? "null" : typeof fn
      }`,
    );
  }
  return fn as (...args: unknown[]) => unknown;
}

const EXPORT_OF_SOURCE = Function.prototype.toString.call(exportOf);

// The program each worker runs. It compiles a job's source once (kept in a
// small cache), or imports a job's module once (the module stays loaded in
// the worker, as every imported module does), calls the function with the
// cloned arguments, awaits the result and posts it back. A failure is
// posted as a plain object keeping the error's name, message, stack, cause,
// own properties and, for an AggregateError, its errors (the structured
// clone of an error keeps only the built-in names and drops the rest), or
// as `{ name, message, stack }` alone when even that cannot be cloned.
// `self.close()` and `Deno.exit()` (which `process.exit()` calls) say that
// the worker ends before it does, as a worker that ends sends no event.
// Every reply carries the job's id (as __tulipJob, a name no job's own
// messages use by chance), so that a message the job posts itself is not
// taken for one. Jobs come by addEventListener, so that a module that sets
// self.onmessage for its own messages does not take them instead.
const WORKER_SOURCE = `
const post = self.postMessage.bind(self);
let current = 0;
const cache = new Map();
const modules = new Map();
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
async function load(moduleUrl, exportName) {
  let namespace = modules.get(moduleUrl);
  if (namespace === undefined) {
    namespace = import(moduleUrl);
    modules.set(moduleUrl, namespace);
  }
  let module;
  try {
    module = await namespace;
  } catch (error) {
    modules.delete(moduleUrl);
    throw new TypeError("Cannot run " + exportName + "() from " + moduleUrl + ": the module failed to load: " + (error?.message ?? String(error)), { cause: error });
  }
  return exportOf(module, moduleUrl, exportName);
}
${EXPORT_OF_SOURCE}
function describe(error) {
  if (error instanceof Error) {
    return { __plainError: true, name: error.name, message: error.message, stack: error.stack };
  }
  return { __plainError: true, name: "Error", message: String(error) };
}
const PACKED = new Set(["name", "message", "stack", "cause", "errors"]);
function pack(error, depth = 0) {
  if (!(error instanceof Error) || error instanceof DOMException) return error;
  const plain = describe(error);
  if (depth >= 8) return plain;
  if ("cause" in error) plain.cause = pack(error.cause, depth + 1);
  if (error instanceof AggregateError && Array.isArray(error.errors)) {
    plain.errors = error.errors.map((e) => pack(e, depth + 1));
  }
  plain.props = {};
  for (const key of Object.keys(error)) {
    if (!PACKED.has(key)) plain.props[key] = error[key];
  }
  return plain;
}
function reply(message, error) {
  try {
    post({ ...message, __tulipJob: current, error: pack(error) });
  } catch {
    post({ ...message, __tulipJob: current, error: describe(error) });
  }
}
// An error the job did not catch (thrown from a timer, say, or a promise
// rejection nobody handles) is reported instead of printed; the executor
// then replaces this worker.
function fatal(event, error) {
  event.preventDefault();
  reply({ ok: false, fatal: true }, error);
}
self.addEventListener("error", (event) => fatal(event, event.error ?? new Error(event.message)));
self.addEventListener("unhandledrejection", (event) => fatal(event, event.reason));
const closeWorker = self.close.bind(self);
self.close = function close() {
  post({ __tulipJob: current, ok: false, fatal: true, ended: "self.close()" });
  closeWorker();
};
const deno = globalThis.Deno;
if (typeof deno?.exit === "function") {
  const exitWorker = deno.exit;
  deno.exit = function exit(code) {
    post({ __tulipJob: current, ok: false, fatal: true, ended: "Deno.exit(" + (code ?? "") + ")" });
    return exitWorker(code);
  };
}
self.addEventListener("message", async (event) => {
  const { id, source, moduleUrl, exportName, args } = event.data;
  current = id;
  let value;
  try {
    const fn = source !== undefined ? compile(source) : await load(moduleUrl, exportName);
    value = await fn(...args);
  } catch (error) {
    reply({ ok: false }, error);
    return;
  }
  try {
    post({ __tulipJob: id, ok: true, value });
  } catch (error) {
    post({ __tulipJob: id, ok: false, notCloned: String(error?.message ?? error) });
  }
});
`;

const WORKER_URL = `data:application/javascript,${
  encodeURIComponent(WORKER_SOURCE)
}`;

// Error classes rebuilt by name when a worker sent a plain object.
const ERROR_CLASSES: Record<string, ErrorConstructor> = {
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
};

/** An error as a worker packs it (see `WORKER_SOURCE`). */
interface PlainError {
  __plainError: true;
  name: string;
  message: string;
  stack?: string;
  cause?: unknown;
  errors?: unknown[];
  props?: Record<string, unknown>;
}

/** The class an error named `name` is rebuilt as. */
function errorClass(name: string): new (message: string) => Error {
  if (Object.hasOwn(ERROR_CLASSES, name)) return ERROR_CLASSES[name];
  const errors = globalThis.Deno?.errors as Record<string, unknown> | undefined;
  const deno = errors !== undefined && Object.hasOwn(errors, name)
    ? errors[name]
    : undefined;
  return typeof deno === "function" && deno.prototype instanceof Error
    ? deno as new (message: string) => Error
    : Error;
}

/**
 * Rebuilds an error a worker packed: a built-in or `Deno.errors` class by
 * its name (else `Error`), with its name, message, stack, cause, own
 * properties and an `AggregateError`'s errors.
 */
function reviveError(error: unknown): unknown {
  if (
    typeof error !== "object" || error === null ||
    !("__plainError" in error)
  ) {
    return error;
  }
  const plain = error as PlainError;
  const revived = plain.name === "AggregateError"
    ? new AggregateError((plain.errors ?? []).map(reviveError), plain.message)
    : new (errorClass(plain.name))(plain.message);
  if (revived.name !== plain.name) revived.name = plain.name;
  if (plain.stack !== undefined) revived.stack = plain.stack;
  if ("cause" in plain) {
    Object.defineProperty(revived, "cause", {
      value: reviveError(plain.cause),
      writable: true,
      configurable: true,
    });
  }
  for (const [key, value] of Object.entries(plain.props ?? {})) {
    Object.defineProperty(revived, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }
  return revived;
}

/**
 * The error for arguments of the job `name` that could not be sent: a
 * `DataCloneError` naming the first argument that cannot be cloned.
 */
function cloneFailure(name: string, args: unknown[], error: unknown): unknown {
  if (!(error instanceof DOMException && error.name === "DataCloneError")) {
    return error;
  }
  let which = "";
  for (let i = 0; i < args.length; i++) {
    try {
      structuredClone(args[i]);
    } catch {
      which = `argument ${i} (counting from 0): `;
      break;
    }
  }
  return new DOMException(
    `Cannot send the arguments of ${name} to a worker: ${which}${error.message} Send data the structured clone algorithm copies (no functions or symbols)`,
    "DataCloneError",
  );
}

/** The default `maxQueued`. */
const DEFAULT_MAX_QUEUED = 10_000;

function defaultMaxWorkers(): number {
  const n = globalThis.navigator?.hardwareConcurrency;
  return typeof n === "number" && n >= 1 ? n : 4;
}

// Marks the functions workerFunction() makes. A registered symbol, so that
// a reference made by one copy of this module works with another copy.
const WORKER_FUNCTION: unique symbol = Symbol.for("tulip.workerFunction");

/**
 * A function exported by a module, as `workerFunction()` names it. An
 * executor that runs work in workers (`WorkerExecutor`, the loop's default
 * executor) sends the module's URL and the export's name, and the worker
 * imports the module and calls the export. Called directly — by an
 * executor that runs work on the current thread, say — it imports the
 * module here and calls the export, so it works with any executor.
 *
 * @typeParam A The argument types.
 * @typeParam R The result type (of the promise the export returns, or of
 * its plain value).
 */
export interface WorkerFunction<A extends unknown[] = unknown[], R = unknown> {
  /**
   * Imports the module and calls the export with `args` on the current
   * thread.
   *
   * @param args The arguments.
   * @returns A promise of the export's result.
   */
  (...args: A): Promise<R>;
  /** The absolute URL of the module (`URL.href`). */
  readonly moduleUrl: string;
  /** The name of the export to call. */
  readonly exportName: string;
}

/**
 * Names a function that a module exports, for `loop.runInExecutor()`,
 * `WorkerExecutor.submit()` and the facade's `submitWork()`. The worker
 * imports the module (once: later jobs reuse it) and calls the export, so
 * the function may use imports and anything else its module has — unlike
 * a function passed directly, which is sent as source and must be
 * self-contained. This is how Piscina and `workerpool` take work: a file
 * and a name.
 *
 * Workers inherit the program's permissions: the module must be readable
 * (`--allow-read` for a local file, `--allow-import` or `--allow-net` for
 * a remote one). A module that fails to load, or has no such export, or
 * whose export is not a function, rejects the job with a `TypeError` that
 * names the module and the export.
 *
 * PEP 3156: the `callback` of `loop.run_in_executor()`, given the way a
 * worker can find it.
 *
 * @typeParam A The argument types.
 * @typeParam R The result type.
 * @param moduleUrl The module's absolute URL; for a module beside the
 * caller, `new URL("./work.ts", import.meta.url)`.
 * @param exportName The name of the exported function.
 * @returns A reference to pass where a function to run is expected.
 * @throws {TypeError} When `moduleUrl` is not an absolute URL or
 * `exportName` is not a non-empty string.
 *
 * @example Running an export of a module in a worker
 * ```ts
 * import { WorkerExecutor, workerFunction } from "@tulip/tulip/loop";
 * import { assertEquals } from "@std/assert";
 *
 * // A module that imports something: a function sent as source could not.
 * const source = `
 *   import { join } from "node:path";
 *   export function where(dir: string, file: string) { return join(dir, file); }
 * `;
 * const url = `data:application/typescript,${encodeURIComponent(source)}`;
 * const where = workerFunction<[string, string], string>(url, "where");
 * const executor = new WorkerExecutor({ maxWorkers: 1 });
 * assertEquals(await executor.submit(where, "a", "b.txt"), "a/b.txt");
 * await executor.shutdown();
 * ```
 */
export function workerFunction<A extends unknown[] = unknown[], R = unknown>(
  moduleUrl: string | URL,
  exportName: string,
): WorkerFunction<A, R> {
  let href: string;
  if (moduleUrl instanceof URL) {
    href = moduleUrl.href;
  } else if (typeof moduleUrl === "string" && URL.canParse(moduleUrl)) {
    href = new URL(moduleUrl).href;
  } else {
    throw new TypeError(
      `Cannot make a worker function: moduleUrl must be an absolute URL, such as new URL("./work.ts", import.meta.url), received ${
        typeof moduleUrl === "string"
          ? JSON.stringify(moduleUrl)
          : moduleUrl === null
          ? "null"
          : typeof moduleUrl
      }`,
    );
  }
  if (typeof exportName !== "string" || exportName === "") {
    throw new TypeError(
      `Cannot make a worker function: exportName must be a non-empty string, received ${
        typeof exportName === "string"
          ? '""'
          : exportName === null
          ? "null"
          : typeof exportName
      }`,
    );
  }
  const call = async (...args: A): Promise<R> => {
    let module: Record<string, unknown>;
    try {
      module = await import(href);
    } catch (error) {
      throw new TypeError(
        `Cannot run ${exportName}() from ${href}: the module failed to load: ${
          (error as Error | null)?.message ?? String(error)
        }`,
        { cause: error },
      );
    }
    return await exportOf(module, href, exportName)(...args) as R;
  };
  Object.defineProperties(call, {
    name: { value: exportName },
    moduleUrl: { value: href, enumerable: true },
    exportName: { value: exportName, enumerable: true },
    [WORKER_FUNCTION]: { value: true },
  });
  return call as WorkerFunction<A, R>;
}

/** Whether `fn` was made by `workerFunction()`. */
function isWorkerFunction(fn: unknown): fn is WorkerFunction {
  return typeof fn === "function" &&
    (fn as { [WORKER_FUNCTION]?: unknown })[WORKER_FUNCTION] === true;
}

/**
 * The error a source job's `ReferenceError` becomes: the usual cause is a
 * variable or import from around the function, which the worker never
 * sees, so say so and point to `workerFunction()`.
 */
function explainReferenceError(error: ReferenceError, name: string): Error {
  const explained = new ReferenceError(
    `Cannot run ${name} in a worker: ${error.message}; the function is sent to the worker as source, so it cannot use variables or imports from outside itself (export it from a module and pass workerFunction(moduleUrl, exportName) instead), received a function that uses something it does not define`,
    { cause: error },
  );
  if (error.stack !== undefined) {
    explained.stack = `ReferenceError: ${explained.message}\n${
      error.stack.split("\n").slice(1).join("\n")
    }`;
  }
  return explained;
}

/**
 * An executor that runs functions in a small pool of Web Workers, so that
 * CPU-heavy work does not stall the event loop. It is the loop's default
 * executor: `loop.runInExecutor(null, fn, ...args)` uses one.
 *
 * What can be sent, and how:
 *
 * - A function made by `workerFunction(moduleUrl, exportName)` is run by
 *   importing its module in the worker (once per worker) and calling the
 *   export: it may use imports, module variables, anything its module
 *   can. This is the way for real work.
 * - Any other `fn` travels as source text (`fn.toString()`) and is compiled
 *   again in the worker, so it must be self-contained: it may use its
 *   parameters, globals (`Math`, `crypto`, `fetch`, `Deno`, …) and dynamic
 *   `import()`, but not variables, imports or `this` from the code around
 *   it — using one fails with a `ReferenceError` that says so and points to
 *   `workerFunction()`. Function expressions, arrow functions, `async`
 *   functions and method shorthand all work; native and bound functions
 *   (whose source is `[native code]`) do not. It may return a value or a
 *   promise.
 * - `args` (when a worker takes the job) and the result are copied with the
 *   structured clone algorithm (as by `postMessage`): numbers, strings,
 *   plain objects and arrays, `Map`, `Set`, `Date`, `RegExp`, typed arrays,
 *   `ArrayBuffer`, `SharedArrayBuffer` (shared, not copied — the way to
 *   share memory with the job) and errors all clone; functions, class
 *   instances' prototypes and symbols do not. An argument that cannot be
 *   cloned rejects the job at once with a `DataCloneError` that names it.
 * - An error thrown by the job rejects the promise with an error of the
 *   same `name`, `message`, `stack`, `cause` and own properties (such as
 *   `code`), and of the same class for built-in errors, `AggregateError`
 *   (with its `errors`), `DOMException` and `Deno.errors` (a file the job
 *   cannot find rejects with `Deno.errors.NotFound`); other classes come
 *   back as `Error` with their `name`. A result that cannot be cloned
 *   rejects with a `DataCloneError` that says so.
 * - A job that ends its worker (`self.close()`, `Deno.exit()`,
 *   `process.exit()`) rejects with an `Error` that says how; an error it
 *   did not catch (thrown from a timer, say) rejects it with that error.
 *   Either way the worker is replaced, and later jobs run on a new one.
 *   Messages a job posts itself (`self.postMessage()`) are ignored.
 *
 * Each worker runs one job at a time; more jobs than workers wait in a
 * queue, first come first served, of at most `maxQueued` jobs. Workers
 * inherit the program's permissions. They keep the process alive until
 * `shutdown()` (which `loop.close()` calls for the loop's default executor).
 * A running job cannot be stopped but by terminating its worker, and Deno's
 * `terminate()` takes effect only once the job's JavaScript yields: a job in
 * an endless synchronous loop spins on after `shutdown({ wait: false })`
 * (its promise is rejected all the same), and the process does not exit
 * while it does.
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
  readonly #maxQueued: number;
  readonly #idle: Worker[] = [];
  readonly #running = new Map<Worker, Job>();
  #queue: Job[] = [];
  #nextId = 1;
  #shutdown = false;
  #drained: PromiseWithResolvers<void> | null = null;

  /**
   * Makes an executor; no worker starts until the first job.
   *
   * @param options The size of the pool and of its queue.
   * @throws {TypeError} When `options` is not an object (the pool's size
   * given bare, as Python's `ThreadPoolExecutor(4)`).
   * @throws {RangeError} When `maxWorkers` is not an integer >= 1 or
   * `maxQueued` not an integer >= 0.
   */
  constructor(options?: WorkerExecutorOptions) {
    checkOptions(
      options,
      "make a WorkerExecutor",
      "{ maxWorkers, maxQueued }",
    );
    const max = options?.maxWorkers ?? defaultMaxWorkers();
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(
        `Cannot make a WorkerExecutor: maxWorkers must be an integer >= 1, received ${
          formatReceived(max)
        }`,
      );
    }
    this.#maxWorkers = max;
    const maxQueued = options?.maxQueued ?? DEFAULT_MAX_QUEUED;
    if (!Number.isSafeInteger(maxQueued) || maxQueued < 0) {
      throw new RangeError(
        `Cannot make a WorkerExecutor: maxQueued must be an integer >= 0, received ${
          formatReceived(maxQueued)
        }`,
      );
    }
    this.#maxQueued = maxQueued;
  }

  /**
   * Starts `fn(...args)` in a worker and returns a promise of its result.
   * See the class for what `fn`, `args` and the result may be.
   *
   * PEP 3148: `Executor.submit()`.
   *
   * @typeParam A The argument types.
   * @typeParam R The result type.
   * @param fn A function made by `workerFunction()`, or a self-contained
   * function, which is sent as source.
   * @param args Its arguments, structured-cloned.
   * @returns A promise of the result, structured-cloned back.
   * @throws {TypeError} When `fn` is not a function, or is native or bound.
   * @throws {RangeError} When `maxQueued` jobs already wait for a worker.
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
    let message: Job["message"];
    if (isWorkerFunction(fn)) {
      message = { moduleUrl: fn.moduleUrl, exportName: fn.exportName };
    } else {
      const source = Function.prototype.toString.call(fn);
      if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
        throw new TypeError(
          `Cannot call submit(): fn must have JavaScript source (not native or bound), received ${
            fn.name || "anonymous"
          }`,
        );
      }
      message = { source };
    }
    const waiting = this.#queue.length;
    const busy = this.#idle.length === 0 &&
      this.#running.size >= this.#maxWorkers;
    if (busy && waiting >= this.#maxQueued) {
      throw new RangeError(
        `Cannot call submit(): the queue is full, received a job beyond maxQueued=${this.#maxQueued}`,
      );
    }
    const name = fn.name || "an anonymous function";
    if (busy) {
      // The job waits: try to clone its arguments now, so that one that
      // cannot be cloned fails at once rather than when a worker is free
      // (never, behind a job that does not end). The copy is not kept:
      // queued jobs given one large argument would each hold one.
      try {
        structuredClone(args);
      } catch (error) {
        return Promise.reject(cloneFailure(name, args, error));
      }
    }
    const { promise, resolve, reject } = Promise.withResolvers<R>();
    const job: Job = {
      id: this.#nextId++,
      message,
      name,
      args,
      resolve: resolve as (value: unknown) => void,
      reject,
    };
    this.#queue.push(job);
    cancelQueuedJob.set(promise, () => this.#cancelQueued(job));
    this.#pump();
    return promise;
  }

  /** Drops `job` if it still waits for a worker; see `cancelQueuedJob`. */
  #cancelQueued(job: Job): boolean {
    const index = this.#queue.indexOf(job);
    if (index < 0) return false;
    this.#queue.splice(index, 1);
    job.reject(new CancelledError("The job was cancelled before it started"));
    this.#checkDrained();
    return true;
  }

  /**
   * Stops accepting jobs and terminates the workers: once every submitted
   * job — running or queued — is done (the default, `{ wait: true }`, as
   * `concurrent.futures`' `shutdown(wait=True)`), or at once with
   * `{ wait: false }`, which rejects unfinished jobs with a
   * `CancelledError`. Calling it again is harmless.
   *
   * PEP 3148: `Executor.shutdown()`.
   *
   * @param options Whether to wait for submitted jobs.
   * @returns A promise that resolves once the workers are terminated.
   * @throws {TypeError} When `options` is not an object (`wait` given
   * bare, as Python's `shutdown(False)`), or `wait` is not a boolean.
   */
  shutdown(options?: WorkerExecutorShutdownOptions): Promise<void> {
    checkOptions(options, "call shutdown()", "{ wait }");
    const wait = options?.wait;
    if (wait !== undefined) checkBoolean(wait, "call shutdown()", "wait");
    this.#shutdown = true;
    if (wait === false) {
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
        worker.postMessage({ ...job.message, id: job.id, args: job.args });
      } catch (error) {
        // The arguments could not be cloned; the worker is still fine.
        this.#running.delete(worker);
        this.#idle.push(worker);
        job.reject(cloneFailure(job.name, job.args, error));
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
      // A message the job posted itself: not a reply. (A fatal report is
      // the worker's, whichever job it names: the worker is replaced.)
      if (typeof reply?.__tulipJob !== "number") return;
      if (!reply.fatal && job !== undefined && reply.__tulipJob !== job.id) {
        return;
      }
      this.#running.delete(worker);
      if (reply.fatal) {
        this.#discard(worker);
      } else if (job !== undefined) {
        this.#idle.push(worker);
      }
      if (job !== undefined) {
        if (reply.ok) {
          job.resolve(reply.value);
        } else if (reply.ended !== undefined) {
          job.reject(
            new Error(
              `Cannot finish ${job.name}: its worker ended (${reply.ended} was called in it) before the job did`,
            ),
          );
        } else if (reply.notCloned !== undefined) {
          job.reject(
            new DOMException(
              `Cannot send the result of ${job.name} back from its worker: ${reply.notCloned}`,
              "DataCloneError",
            ),
          );
        } else {
          const error = reviveError(reply.error);
          job.reject(
            error instanceof ReferenceError && "source" in job.message
              ? explainReferenceError(error, job.name)
              : error,
          );
        }
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
