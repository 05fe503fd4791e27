/**
 * `VirtualTimeLoop`: an event loop whose clock only moves when the test (or
 * an idle loop) moves it.
 *
 * @module
 */

import { DenoEventLoop } from "../loop/deno_event_loop.ts";
import { VirtualClock } from "./_virtual_clock.ts";

/**
 * An event loop with a virtual clock, for tests. `time()` starts at 0 and
 * moves only by `advance(seconds)`, or — when nothing is ready to run — by
 * jumping straight to the next timer. A test of a 30-second timeout takes
 * microseconds, and timers fire in exactly the order and at exactly the
 * times they were scheduled for.
 *
 * It is a whole `DenoEventLoop` (the same interface as the loop a program
 * runs on), so real sockets, pipes and subprocesses work on it too; while
 * real I/O is pending the clock still jumps whenever nothing is ready, so
 * a test that needs real time to pass runs on a plain `DenoEventLoop`.
 * For bytes without sockets use `transportPair()`, and for a whole
 * network in virtual time `Simulation`.
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
  readonly #clock: VirtualClock = new VirtualClock({
    loop: this,
    readyCount: () => this.readyCount(),
    nextTimerWhen: () => this.nextTimerWhen(),
    waitForEvents: (deadline) => super.waitForEvents(deadline),
  });

  /**
   * Returns the virtual time, in seconds (0 when the loop is made).
   *
   * @returns The virtual time.
   */
  override time(): number {
    return this.#clock.now;
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
  advance(seconds: number): Promise<void> {
    return this.#clock.advance(seconds);
  }

  /**
   * Waits for events without waiting for time: once microtasks have
   * settled and nothing is ready, the clock jumps to the next timer.
   *
   * @param deadline The deadline the scheduler computed, or `null`.
   * @returns A promise that resolves when the loop should iterate.
   */
  protected override waitForEvents(deadline: number | null): Promise<void> {
    return this.#clock.wait(deadline);
  }
}
