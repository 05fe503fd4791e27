/**
 * `sleep`: a future that completes after a delay.
 *
 * @module
 */

import { formatReceived } from "../futures/errors.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import { Future, type FutureOptions } from "../futures/future.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** Options for `sleep`. */
export interface SleepOptions {
  /**
   * The loop whose clock to use.
   *
   * @default {the running loop}
   */
  loop?: SchedulingLoop;
}

/**
 * Returns a future that gets `result` after `delay` seconds. `sleep(0)`
 * just yields to the loop for one iteration (as asyncio's `sleep(0)`
 * does): its future completes on the next iteration, and both `yield*
 * sleep(0)` (like a bare `yield`) and `await sleep(0)` resume on the next
 * iteration; awaiting it completes the future at once, so that the
 * resumption is what runs then. Cancelling the future cancels its timer.
 *
 * PEP 3156: `tulip.sleep()`.
 *
 * @typeParam T The result type.
 * @param delay How long, in seconds.
 * @param result The value to complete with.
 * @param options The loop to use.
 * @returns A future of `result`.
 * @throws {TypeError} When `delay` is not a number, or `options` is not
 * an object like `{ loop }` (a loop given bare included).
 *
 * @example In a generator and in an async function
 * ```ts
 * import { newEventLoop, sleep } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * assertEquals(await loop.runUntilComplete(sleep(0.001, "done", { loop })), "done");
 * loop.close();
 * ```
 */
export function sleep<T = undefined>(
  delay: number,
  result?: T,
  options?: SleepOptions,
): Future<T> {
  if (typeof delay !== "number" || Number.isNaN(delay)) {
    throw new TypeError(
      `Cannot sleep: delay must be a number of seconds, received ${
        formatReceived(delay)
      }`,
    );
  }
  checkOptions(options, "sleep", "{ loop }");
  const future = delay <= 0
    ? new NextIteration<T>(result as T, { loop: options?.loop })
    : new Future<T>({ loop: options?.loop });
  const loop = future.getLoop();
  const timer = delay <= 0
    ? loop.callSoon(settle, future, result as T)
    : loop.callLater(delay, settle, future, result as T);
  future.addDoneCallback(() => timer.cancel());
  return future;
}

function settle<T>(future: Future<T>, result: T): void {
  if (!future.done()) future.setResult(result);
}

// The future of sleep(0). Waiting for it like any future would take two
// iterations (one to complete it, one to run the task's wake-up), so
// `yield*` gives a bare `yield` instead: the task steps again on the next
// iteration, after the callback that completes the future, which was
// scheduled first. `await` (then()) registers as for any future and then
// completes it at once: the wake-up is what runs on the next iteration.
class NextIteration<T> extends Future<T> {
  readonly #result: T;

  constructor(result: T, options: FutureOptions) {
    super(options);
    this.#result = result;
  }

  override then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    const promise = super.then(onfulfilled, onrejected);
    if (!this.done()) this.setResult(this.#result);
    return promise;
  }

  override *[Symbol.iterator](): Generator<Future<T>, T, unknown> {
    if (!this.done()) {
      try {
        // A bare yield; typed as the future so that the override fits.
        yield undefined as unknown as Future<T>;
      } catch (e) {
        this.cancel();
        throw e;
      }
      // Still pending only if the loop ran its callbacks out of order:
      // wait for it then.
      if (!this.done()) yield this;
    }
    return this.result();
  }
}
