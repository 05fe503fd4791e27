/**
 * `run`: run a main coroutine on a fresh loop, then clean up.
 *
 * @module
 */

import {
  CancelledError,
  formatReceived,
  InvalidStateError,
} from "../futures/errors.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import {
  checkBoolean,
  checkOptions,
  plainResultRefusals,
} from "../futures/_runtime.ts";
import { gather } from "../tasks/gather.ts";
import { allTasks, type Coroutine, type Task } from "../tasks/task.ts";
import { CtrlC } from "./_deno_signals.ts";
import type { EventLoop } from "./event_loop.ts";
import { newEventLoop, setEventLoop } from "./policy.ts";

// How long run() waits for the jobs left in the default executor, in
// seconds (asyncio's THREAD_JOIN_TIMEOUT).
const EXECUTOR_SHUTDOWN_TIMEOUT = 300;

/** Options for `run`. */
export interface RunOptions {
  /**
   * Turn the loop's debug mode on (`true`) or off (`false`); when left out,
   * the loop keeps the mode it was made with (off, unless a policy made it
   * on), as asyncio's `run(debug=None)`.
   *
   * @default {undefined}
   */
  debug?: boolean;
  /**
   * Makes the loop, instead of the policy's `newEventLoop()`, as asyncio's
   * `run(loop_factory=...)` (3.12+): called once, with no arguments. As
   * there, a loop made so is not made the current loop (`setEventLoop()`
   * is not called); code in `main` finds it with `getRunningLoop()` or
   * `getEventLoop()`.
   *
   * @default {undefined}
   */
  loopFactory?: () => EventLoop;
}

/**
 * Runs `main` on a new loop until it is done and returns its result. Then
 * cancels the tasks left over, waits for them, lets the jobs left in the
 * loop's default executor finish (`shutdownDefaultExecutor()`, for at most
 * five minutes), and closes the loop.
 *
 * Ctrl-C, as asyncio's `run()` (3.11+): while `main` runs, the first
 * SIGINT cancels the main task, which may catch the `CancelledError` and
 * clean up (and wait while it does). If `main` then ends cancelled,
 * `run()` rejects with `Deno.errors.Interrupted` (asyncio's
 * `KeyboardInterrupt`), its `cause` the `CancelledError`; if `main` returns
 * or fails otherwise, so does `run()`. A second SIGINT, or one once `main`
 * is done, ends the process as SIGINT does by default. `run()` listens
 * only in the main thread (a listener in a Worker would take Ctrl-C from
 * the whole process), stands aside while one of tulip's handlers decides
 * what SIGINT does (`loop.addSignalHandler("SIGINT", ...)`,
 * `serveWorkers()`), and stops listening once `main` is done. Its listener
 * keeps no process alive. It cannot see a listener added with
 * `Deno.addSignalListener()` directly: handle Ctrl-C yourself with
 * `loop.addSignalHandler()`. Where Deno cannot listen for SIGINT, `run()`
 * leaves it alone. Deno calls signal listeners on the JavaScript thread, so
 * while `main` runs synchronous code that never gives the loop back, Ctrl-C
 * waits for it and cannot end the process (SIGQUIT, Ctrl-\, still does).
 *
 * PEP 3156 (as in asyncio): `asyncio.run()`.
 *
 * @typeParam T The result type.
 * @param main A generator object, a generator function or an async function.
 * @param options Debug mode, and the function that makes the loop.
 * @returns A promise of `main`'s result.
 * @throws {Deno.errors.Interrupted} When Ctrl-C (SIGINT) cancelled `main`
 * and `main` ended cancelled.
 * @throws {InvalidStateError} When called while a loop is running (from a
 * task or a callback): the running loop would wait for `main` as for any
 * other callback, and could not finish. Run `main` as a task of the
 * running loop instead (`createTask`, or `yield*`/`await` it).
 * @throws {TypeError} When `main` is neither a generator nor a function
 * (a promise included: pass the async function, `run(main)`, not
 * `run(main())`, whose body would already be running outside the loop), as
 * asyncio's `run()` refuses what is not a coroutine. No loop is made. Also
 * when the function returns neither a generator nor a promise nor a
 * `Future` (a plain function, as asyncio refuses `lambda: None`), once the
 * loop made for it is closed.
 * Also when `options` is not an object, `debug` not a boolean, or
 * `loopFactory` not a function or returns no event loop.
 *
 * @example
 * ```ts
 * import { run, sleep } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const answer = await run(async () => {
 *   await sleep(0.001);
 *   return 42;
 * });
 * assertEquals(answer, 42);
 * ```
 *
 * @example A main that handles Ctrl-C
 * ```ts
 * import { CancelledError, run, sleep } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const stopped = await run(async () => {
 *   try {
 *     await sleep(0.001); // a server's serveForever(), say
 *     return "finished";
 *   } catch (e) {
 *     if (!(e instanceof CancelledError)) throw e;
 *     return "stopped by Ctrl-C"; // or clean up and rethrow
 *   }
 * });
 * assertEquals(stopped, "finished");
 * ```
 */
export async function run<T>(
  main: Coroutine<T> | (() => Coroutine<T> | PromiseLike<T>),
  options?: RunOptions,
): Promise<T> {
  const running = getRunningLoop();
  if (running !== null && running.isRunning()) {
    throw new InvalidStateError(
      "Cannot call run(): it cannot be called from a running event loop (await or yield* the coroutine, or createTask() it, instead)",
    );
  }
  checkMain(main);
  checkOptions(options, "call run()", "{ debug, loopFactory }");
  const debug = options?.debug;
  if (debug !== undefined && debug !== null) {
    checkBoolean(debug, "call run()", "debug");
  }
  const factory = options?.loopFactory;
  if (factory !== undefined && typeof factory !== "function") {
    throw new TypeError(
      `Cannot call run(): loopFactory must be a function that returns an event loop, received ${
        formatReceived(factory)
      }`,
    );
  }
  let loop: EventLoop;
  if (factory === undefined) {
    loop = newEventLoop();
    setEventLoop(loop);
  } else {
    loop = factory();
    checkLoop(loop);
  }
  if (debug !== undefined && debug !== null) loop.setDebug(debug);
  try {
    const task = loop.createTask(main, { name: "main" });
    if (typeof main === "function") {
      plainResultRefusals.set(task, refusePlainResult);
    }
    const interrupt = CtrlC.install(loop, task);
    try {
      return await loop.runUntilComplete(task);
    } catch (error) {
      // Interrupted, unless main went on, failed otherwise, or was also
      // cancelled by something else (asyncio's uncancel() check).
      if (
        error instanceof CancelledError && interrupt !== null &&
        interrupt.count > 0 && task.cancelled() &&
        typeof task.uncancel === "function" && task.uncancel() === 0
      ) {
        throw interrupt.interrupted(error);
      }
      throw error;
    } finally {
      // From here on, SIGINT ends the process as by default.
      interrupt?.uninstall();
    }
  } finally {
    try {
      await cancelLeftovers(loop);
      if (typeof loop.shutdownDefaultExecutor === "function") {
        await loop.runUntilComplete(
          loop.shutdownDefaultExecutor(EXECUTOR_SHUTDOWN_TIMEOUT),
        );
      }
    } finally {
      if (factory === undefined) setEventLoop(null);
      loop.close();
    }
  }
}

function checkMain(main: unknown): void {
  if (typeof main === "function") return;
  const gen = main as Partial<Coroutine<unknown>> | null;
  if (
    typeof main === "object" && gen !== null &&
    typeof gen.next === "function" && typeof gen.throw === "function"
  ) return;
  const promise = typeof main === "object" && main !== null &&
    typeof (main as PromiseLike<unknown>).then === "function";
  throw new TypeError(
    `Cannot call run(): main must be a generator, a generator function or an async function, received ${
      formatReceived(main)
    }${
      promise
        ? " (pass the async function itself: run(main), not run(main()))"
        : ""
    }`,
  );
}

/**
 * The error of a main task whose function returned no coroutine (a
 * function that is not async, as asyncio's `run()` refuses `lambda: None`).
 */
function refusePlainResult(out: unknown): Error {
  return new TypeError(
    `Cannot call run(): main must be a generator, a generator function or an async function; the function returned ${
      formatReceived(out)
    }, neither a generator nor a promise nor a Future`,
  );
}

function checkLoop(loop: unknown): asserts loop is EventLoop {
  const candidate = loop as Partial<EventLoop> | null;
  if (
    typeof loop === "object" && candidate !== null &&
    typeof candidate.createTask === "function" &&
    typeof candidate.runUntilComplete === "function" &&
    typeof candidate.close === "function"
  ) return;
  throw new TypeError(
    `Cannot call run(): loopFactory must return an event loop, received ${
      formatReceived(loop)
    }`,
  );
}

async function cancelLeftovers(loop: EventLoop): Promise<void> {
  const left: Task<unknown>[] = [...allTasks(loop)];
  if (left.length === 0) return;
  for (const task of left) task.cancel();
  await loop.runUntilComplete(gather(left, { returnExceptions: true, loop }));
  for (const task of left) {
    if (task.cancelled()) continue;
    const exc = task.exception();
    if (exc !== undefined && !(exc instanceof CancelledError)) {
      loop.callExceptionHandler({
        message: "Unhandled error during run() shutdown",
        exception: exc,
        task,
      });
    }
  }
}
