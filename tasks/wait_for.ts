/**
 * `waitFor`: wait for an awaitable, with a time limit.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import { Future } from "../futures/future.ts";
import { CancelledError, TimeoutError } from "../futures/errors.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import { type Awaitable, type Coroutine, ensureFuture, Task } from "./task.ts";
import { timeout as timeoutScope } from "./timeout.ts";
import { checkAwaitable, checkTimeout } from "./_awaitables.ts";
import { startWrapper, WrapperTask } from "./_wrapper_task.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** Options for `waitFor`. */
export interface WaitForOptions {
  /**
   * The loop to run on.
   *
   * @default {the loop of `aw` if it is a future, else the running loop}
   */
  loop?: SchedulingLoop;
}

/**
 * Waits for `aw` for at most `timeout` seconds. When time runs out, `aw`
 * is cancelled and the returned future fails with `TimeoutError` — only
 * once `aw` has really finished, its cleanup included. If `aw` refuses
 * the cancellation and returns a value, that value is the result.
 * Cancelling the returned future cancels `aw` too (and is never turned
 * into a `TimeoutError`); to keep `aw` running, wrap it in `shield()`.
 *
 * A `timeout` of zero or less cancels `aw` at once unless it is already
 * done; `null` waits without limit.
 *
 * Pass an async function uncalled — `waitFor(() => work(x), t)` — for
 * asyncio's `wait_for(coro, t)`: it runs in the task `waitFor` returns,
 * which the timeout cancels and waits for. The promise of an async
 * function already called, `waitFor(work(x), t)`, cannot be stopped: its
 * body runs as part of the calling task, so at the timeout the returned
 * future fails with `TimeoutError` at once and the body goes on. A
 * generator function is taken as an async function is.
 *
 * Since it returns a future, `waitFor` runs `aw` in a task of its own,
 * where asyncio 3.12+ runs it inline in the caller's task. Called in a
 * task of its loop, that task starts at once: it waits for `aw` from the
 * call on (a function runs up to its first wait before `waitFor`
 * returns), and a task awaiting it resumes in the turn `aw` ends, where
 * asyncio's caller would (other done callbacks, a `gather()`'s, are
 * scheduled as for any task); past 64 such calls nested in one another's
 * work, the next starts on the loop's next turn. Inside `aw`,
 * `currentTask()` is that task, so its `cancelling()` and `uncancel()`
 * are not the caller's. Called elsewhere, it starts on the loop's next
 * turn, as asyncio's `ensure_future()` of `wait_for()`. To stay in the
 * caller's task, use `yield* timeout(delay).scope(() => body())`.
 *
 * PEP 3156: `tulip.wait_for()`, with asyncio 3.12's semantics (built on
 * `timeout()`).
 *
 * @typeParam T The result type.
 * @param aw A future, task, generator coroutine or promise, or a function
 * (an async function or a generator function) to run in a task of its own.
 * @param timeout The limit in seconds, or `null` for none.
 * @param options The loop to use.
 * @returns A future of `aw`'s result.
 * @throws {TypeError} When `aw` is nothing that can be awaited, `timeout`
 * is neither a number nor `null`, or `options` is not an object like
 * `{ loop }`.
 * @throws {InvalidStateError} When `aw` is a future of another loop than
 * `options.loop`.
 *
 * @example A 30-second limit on a virtual clock
 * ```ts
 * import { sleep, TimeoutError, waitFor } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * function* main(): Coroutine<string> {
 *   const quick = yield* waitFor(sleep(1, "quick"), 30);
 *   try {
 *     yield* waitFor(sleep(3600), 30);
 *   } catch (e) {
 *     if (e instanceof TimeoutError) return `${quick}, then timed out`;
 *   }
 *   return "no timeout";
 * }
 * assertEquals(await loop.runUntilComplete(main()), "quick, then timed out");
 * assertEquals(loop.time(), 31);
 * loop.close();
 * ```
 */
export function waitFor<T>(
  aw: Awaitable<T> | (() => Coroutine<T> | PromiseLike<T>),
  timeout: number | null,
  options?: WaitForOptions,
): Future<T> {
  checkAwaitable(aw, "wait for an awaitable");
  const limit = checkTimeout(timeout, "wait for an awaitable");
  checkOptions(options, "wait for an awaitable", "{ loop }");
  const loop = options?.loop ??
    (aw instanceof Future ? aw.getLoop() : getRunningLoop() ?? undefined);
  // A future of another loop is refused at once, as ensureFuture() does.
  if (aw instanceof Future) ensureFuture(aw, { loop });
  if (limit !== null && limit <= 0) {
    // Decided now, as asyncio decides where wait_for() is awaited: what is
    // not done yet is cancelled before anything else runs.
    const fut = typeof aw === "function" ? null : ensureFuture(aw, { loop });
    const cancelled = fut !== null && !fut.done();
    if (cancelled) fut.cancel();
    return startWrapper(
      loop,
      () =>
        new WrapperTask((task) => cancelNow(task, fut ?? aw, cancelled), {
          loop,
        }),
    );
  }
  return timeoutScope(limit, { loop }).run(aw);
}

// asyncio's zero-timeout path: no timer, cancel unless already done.
function* cancelNow<T>(
  task: WrapperTask<T>,
  aw: Awaitable<T> | (() => Coroutine<T> | PromiseLike<T>),
  cancelled: boolean,
): Coroutine<T> {
  // A function gets its task as Timeout.run() gives it one; cancelled
  // before its first step, it never runs.
  const fut = typeof aw === "function"
    ? new Task(aw, { loop: task.getLoop() })
    : ensureFuture(aw);
  task.started();
  if (!cancelled && fut.done()) return fut.result();
  const waiter = new Future<void>({ loop: fut.getLoop() });
  const release = () => {
    if (!waiter.done()) waiter.setResult(undefined);
  };
  fut.addDoneCallback(release);
  try {
    if (!cancelled) fut.cancel();
    yield* waiter;
  } finally {
    fut.removeDoneCallback(release);
  }
  try {
    return fut.result();
  } catch (e) {
    if (!(e instanceof CancelledError)) throw e;
    const timedOut = new TimeoutError(
      "Cannot wait for the awaitable: the timeout passed, received timeout<=0",
    );
    timedOut.cause = e;
    throw timedOut;
  }
}
