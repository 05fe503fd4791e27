/**
 * `VirtualClock`: the clock of a virtual-time loop, kept apart from the
 * loop class so that one clock serves `VirtualTimeLoop` (whose I/O is in
 * memory) and any other loop a test puts on virtual time (a
 * `DenoEventLoop`, for tests of TLS, pipes or processes under long
 * timeouts).
 *
 * @module
 */

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import { hostHop } from "../futures/_runtime.ts";
import type { BaseEventLoop } from "../loop/base_event_loop.ts";

/**
 * What the clock reads from its loop's protected side; the loop hands
 * these over when it makes its clock.
 */
export interface ClockedLoop {
  /** The loop itself. */
  readonly loop: BaseEventLoop;
  /** The loop's `readyCount()`. */
  readyCount(): number;
  /** The loop's `nextTimerWhen()`. */
  nextTimerWhen(): number | null;
  /** The loop's inherited `waitForEvents()`, for when no timer is left. */
  waitForEvents(deadline: number | null): Promise<void>;
  /**
   * Where the time is kept, when something else reads it too (the
   * in-memory network of a `VirtualTimeLoop`); by default the clock's own.
   */
  store?: { now: number };
}

/**
 * The latest due time of the timers a virtual clock at `now` runs: `now`
 * and a rounding error more (4 ulps, as `advance()` rounds its sums), so
 * that a timer set at 0.2 for 0.1 later (0.30000000000000004) is due at
 * 0.3, and one repeating every 0.1 runs three times in `advance(0.3)`.
 *
 * @param now The clock's time.
 * @returns The due time in seconds.
 */
export function virtualDueBy(now: number): number {
  return now + 4 * Number.EPSILON * now;
}

/** A clock that moves only when told to, or when its loop is idle. */
export class VirtualClock {
  readonly #time: { now: number };
  readonly #host: ClockedLoop;
  // Whether an advance() is under way (a second one would interleave).
  #advancing = false;

  /**
   * Makes a clock at time 0.
   *
   * @param host The loop it drives.
   */
  constructor(host: ClockedLoop) {
    this.#host = host;
    this.#time = host.store ?? { now: 0 };
  }

  /** The virtual time, in seconds. */
  get now(): number {
    return this.#time.now;
  }

  /**
   * Moves the clock forward by `seconds`, running every callback and
   * timer due on the way, and what they schedule up to the new time.
   *
   * @param seconds How far to move, in seconds; not negative, finite.
   * @returns A promise that resolves once the loop reached the new time.
   * @throws {TypeError} When `seconds` is not a number, or NaN.
   * @throws {RangeError} When `seconds` is negative or infinite.
   * @throws {InvalidStateError} When the loop is running or closed, or
   * the last `advance()` has not finished.
   */
  async advance(seconds: number): Promise<void> {
    if (typeof seconds !== "number" || Number.isNaN(seconds)) {
      throw new TypeError(
        `Cannot advance the clock: seconds must be a number of seconds, received ${
          formatReceived(seconds)
        }`,
      );
    }
    if (seconds < 0) {
      throw new RangeError(
        `Cannot advance the clock: seconds must be >= 0, received ${
          formatReceived(seconds)
        }`,
      );
    }
    if (seconds === Infinity) {
      throw new RangeError(
        "Cannot advance the clock: seconds must be finite (at Infinity the clock could never move again), received Infinity",
      );
    }
    const { loop } = this.#host;
    if (this.#advancing) {
      throw new InvalidStateError(
        "Cannot advance the clock: the last advance() has not finished (await the advance() under way before the next)",
      );
    }
    if (loop.isRunning()) {
      throw new InvalidStateError(
        "Cannot advance the clock: the loop is running (inside a task, use sleep())",
      );
    }
    const now = this.#time.now;
    const exact = now + seconds;
    // Steps such as 0.1 are not exact in binary, and their sum drifts an
    // ulp or so off the decimal time (ten make 0.9999999999999999): a sum
    // that close to a whole nanosecond is that nanosecond, so that ten
    // advance(0.1) reach a timer at 1. The clock never goes back. Past
    // 2^51 ns (26 days) a float's step nears a nanosecond: the product
    // with 1e9 may round to the next one, and snapping would move a sum
    // that is exact (4355068.4 to 4355068.400000001).
    const ns = exact * 1e9;
    const grid = Math.round(ns) / 1e9;
    const target = ns < 2 ** 51 &&
        Math.abs(grid - exact) <= 4 * Number.EPSILON * exact
      ? Math.max(grid, now)
      : exact;
    const reached = loop.createFuture<void>();
    loop.callAt(target, () => reached.setResult(undefined));
    this.#advancing = true;
    try {
      await loop.runUntilComplete(reached);
      // Then run whatever is still due at the target time, async
      // functions' continuations included, without moving the clock
      // further.
      for (;;) {
        await hostHop();
        const next = this.#host.nextTimerWhen();
        if (
          this.#host.readyCount() === 0 &&
          (next === null || next > virtualDueBy(target))
        ) {
          break;
        }
        await loop.runOnce();
      }
    } finally {
      this.#advancing = false;
    }
  }

  /**
   * Waits for events without waiting for time: once microtasks have
   * settled and nothing is ready, the clock jumps to the next timer. With
   * no timer at all (or only timers at Infinity, which never come due),
   * it waits as the loop would (for a `callSoon`).
   *
   * @param deadline The loop's deadline, `null` when it has no timer.
   * @returns A promise that resolves when the loop should iterate.
   */
  async wait(deadline: number | null): Promise<void> {
    // Let async functions that are about to schedule something do so.
    await hostHop();
    if (this.#host.readyCount() > 0) return;
    const next = this.#host.nextTimerWhen();
    // A timer at Infinity never comes due: the clock does not go there.
    if (next === null || next === Infinity) {
      if (deadline === null || deadline === Infinity) {
        return this.#host.waitForEvents(null);
      }
      return;
    }
    if (next > this.#time.now) this.#time.now = next;
  }
}
