/**
 * `VirtualTimeLoop`: an event loop whose clock only moves when the test (or
 * an idle loop) moves it.
 *
 * @module
 */

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import { DenoEventLoop } from "../loop/deno_event_loop.ts";

function hostHop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * An event loop with a virtual clock, for tests. `time()` starts at 0 and
 * moves only by `advance(seconds)`, or — when nothing is ready to run — by
 * jumping straight to the next timer. A test of a 30-second timeout takes
 * microseconds, and timers fire in exactly the order and at exactly the
 * times they were scheduled for.
 *
 * It is a full `DenoEventLoop`, so real I/O works on it too; but while real
 * I/O is pending the clock still jumps whenever nothing is ready, so keep
 * tests that need real time on a `DenoEventLoop`.
 *
 * PEP 3156: CPython's `TestLoop`, Twisted's `Clock`.
 *
 * @example A 30-second timeout, instantly
 * ```ts
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { sleep, waitFor, TimeoutError } from "@tulip/tulip";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * await assertRejects(
 *   () => loop.runUntilComplete(loop.createTask(async () => await waitFor(sleep(60), 30))),
 *   TimeoutError,
 * );
 * assertEquals(loop.time(), 30);
 * loop.close();
 * ```
 *
 * @example Driving time by hand
 * ```ts
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const fired: number[] = [];
 * loop.callLater(5, () => fired.push(loop.time()));
 * loop.callLater(15, () => fired.push(loop.time()));
 * await loop.advance(10);
 * assertEquals(fired, [5]);
 * assertEquals(loop.time(), 10);
 * loop.close();
 * ```
 */
export class VirtualTimeLoop extends DenoEventLoop {
  #now = 0;

  /**
   * Returns the virtual time, in seconds (0 when the loop is made).
   *
   * @returns The virtual time.
   */
  override time(): number {
    return this.#now;
  }

  /**
   * Moves the clock forward by `seconds`, running every callback and timer
   * due on the way, in order, and everything they schedule up to the new
   * time. Call it while the loop is not running.
   *
   * @param seconds How far to move, in seconds; not negative.
   * @returns A promise that resolves once the loop reached the new time.
   * @throws {RangeError} When `seconds` is negative or not a number.
   * @throws {InvalidStateError} When the loop is running or closed.
   */
  async advance(seconds: number): Promise<void> {
    if (typeof seconds !== "number" || !(seconds >= 0)) {
      throw new RangeError(
        `Cannot advance the clock: seconds must be >= 0, received ${
          formatReceived(seconds)
        }`,
      );
    }
    if (this.isRunning()) {
      throw new InvalidStateError(
        "Cannot advance the clock: the loop is running (inside a task, use sleep())",
      );
    }
    const target = this.#now + seconds;
    const reached = this.createFuture<void>();
    this.callAt(target, () => reached.setResult(undefined));
    await this.runUntilComplete(reached);
    // Then run whatever is still due at the target time, async functions'
    // continuations included, without moving the clock further.
    for (;;) {
      await hostHop();
      const next = this.nextTimerWhen();
      if (this.readyCount() === 0 && (next === null || next > target)) break;
      await this.runOnce();
    }
  }

  /**
   * Waits for events without waiting for time: once microtasks have
   * settled and nothing is ready, the clock jumps to the next timer.
   *
   * @param deadline Ignored: the next timer is looked up afresh.
   * @returns A promise that resolves when the loop should iterate.
   */
  protected override async waitForEvents(
    deadline: number | null,
  ): Promise<void> {
    // Let async functions that are about to schedule something do so.
    await hostHop();
    if (this.readyCount() > 0) return;
    const next = this.nextTimerWhen();
    if (next === null) {
      if (deadline === null) return super.waitForEvents(null);
      return;
    }
    if (next > this.#now) this.#now = next;
  }
}
