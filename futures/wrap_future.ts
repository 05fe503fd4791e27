/**
 * `wrapFuture`: a tulip `Future` that follows a native promise.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import { CancelledError, formatReceived } from "./errors.ts";
import { Future } from "./future.ts";
import { requestForeignTurn } from "./_runtime.ts";

/** Options for `wrapFuture`. */
export interface WrapFutureOptions {
  /**
   * The loop of the new future.
   *
   * @default {the running loop}
   */
  loop?: SchedulingLoop;
}

/**
 * Returns a `Future` that settles like `promise`. Cancelling the future does
 * not stop the promise (a promise cannot be cancelled); its outcome is then
 * ignored. A promise rejected with a `CancelledError` cancels the future.
 * A thenable is adopted as `await` adopts it; a `Future` (of any loop) is
 * returned unchanged, as asyncio's `wrap_future()` returns one.
 *
 * PEP 3156: `wrap_future()`, for the web's promises instead of PEP 3148
 * futures.
 *
 * @typeParam T The result type.
 * @param promise The promise (or any `PromiseLike`) to follow.
 * @param options The loop to bind the future to.
 * @returns A future of the promise's result.
 * @throws {TypeError} When `promise` is not a promise, a thenable or a
 * `Future`.
 * @throws {InvalidStateError} When no loop is given and none is running.
 *
 * @example Waiting for a promise in a generator coroutine
 * ```ts
 * import { newEventLoop, wrapFuture } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * function* main(): Coroutine<number> {
 *   return 1 + (yield* wrapFuture(Promise.resolve(41)));
 * }
 * assertEquals(await loop.runUntilComplete(main()), 42);
 * loop.close();
 * ```
 */
export function wrapFuture<T>(
  promise: PromiseLike<T>,
  options?: WrapFutureOptions,
): Future<T> {
  if (promise instanceof Future) return promise;
  if (
    (typeof promise !== "object" && typeof promise !== "function") ||
    promise === null || typeof promise.then !== "function"
  ) {
    throw new TypeError(
      `Cannot wrap a future: expected a promise, a thenable or a Future, received ${
        formatReceived(promise)
      }`,
    );
  }
  const future = new Future<T>(options);
  // The promise completes the future in a microtask, which a running loop
  // does not know of: ask it for a turn at the end of this iteration, or a
  // task waiting for an already settled promise (a generator task, which
  // asks for none) waits until the loop is idle. (A loop about to run
  // gives microtasks a turn as it starts.)
  if (future.getLoop().isRunning()) requestForeignTurn();
  // Promise.resolve() adopts a thenable as `await` does: a then() that
  // throws rejects, and a thenable it fulfils with is followed in turn
  // (a native promise is used as is).
  Promise.resolve(promise).then(
    (value) => {
      if (!future.done() && !future.getLoop().isClosed()) {
        future.setResult(value);
      }
    },
    (error) => {
      if (future.done() || future.getLoop().isClosed()) return;
      if (error instanceof CancelledError) future.cancel(error.message);
      else future.setException(error);
    },
  );
  return future;
}
