/**
 * `sleep`: a future that completes after a delay.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import { Future } from "../futures/future.ts";

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
 * just yields to the loop for one iteration. Cancelling the future cancels
 * its timer.
 *
 * PEP 3156: `tulip.sleep()`.
 *
 * @typeParam T The result type.
 * @param delay How long, in seconds.
 * @param result The value to complete with.
 * @param options The loop to use.
 * @returns A future of `result`.
 * @throws {TypeError} When `delay` is not a number.
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
        String(delay)
      }`,
    );
  }
  const future = new Future<T>({ loop: options?.loop });
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
