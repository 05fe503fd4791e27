/**
 * `Event`: a flag that tasks can wait for.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { Future } from "../futures/future.ts";
import { addWaiter, bindLoop, resolved, type Waiter } from "./_waiter.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** Options for `Event`. */
export interface EventOptions {
  /**
   * The loop the event's futures belong to.
   *
   * @default {the running loop at the first wait}
   */
  loop?: SchedulingLoop;
}

/**
 * A flag, initially false, that tasks wait for: `set()` wakes every waiter,
 * and later waits complete at once until `clear()`.
 *
 * `wait()` returns a future, for `yield*` and `await` alike. A waiter woken
 * by `set()` stays woken even if the flag is cleared again before it runs.
 * Cancelling a wait just drops that waiter.
 *
 * PEP 3156 (as in asyncio): `Event`.
 *
 * @example Waiting for a signal from another task
 * ```ts
 * import { Event, newEventLoop, sleep } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const ready = new Event({ loop });
 * loop.callLater(0.001, () => ready.set());
 * await loop.runUntilComplete(ready.wait());
 * assertEquals(ready.isSet(), true);
 * loop.close();
 * ```
 */
export class Event {
  #loop: SchedulingLoop | null;
  #value = false;
  #waiters = new Set<Waiter<true>>();

  /**
   * Makes an event whose flag is false.
   *
   * @param options The loop to use.
   */
  constructor(options?: EventOptions) {
    checkOptions(options, "create an Event", "{ loop }");
    this.#loop = options?.loop ?? null;
  }

  /**
   * Returns `true` when the flag is set.
   *
   * PEP 3156 (as in asyncio): `Event.is_set()`.
   *
   * @returns The flag.
   */
  isSet(): boolean {
    return this.#value;
  }

  /**
   * Sets the flag and wakes every task waiting for it. Does nothing if it
   * is already set.
   *
   * PEP 3156 (as in asyncio): `Event.set()`.
   */
  set(): void {
    if (this.#value) return;
    this.#value = true;
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const w of waiters) w.setResult(true);
  }

  /**
   * Clears the flag: later `wait()` calls block until the next `set()`.
   *
   * PEP 3156 (as in asyncio): `Event.clear()`.
   */
  clear(): void {
    this.#value = false;
  }

  /**
   * Waits until the flag is set; completes at once if it is set now.
   *
   * PEP 3156 (as in asyncio): `Event.wait()`.
   *
   * @returns A future that completes with `true`.
   * @throws {InvalidStateError} When no loop was given and none is running.
   */
  wait(): Future<true> {
    const loop = this.#loop = bindLoop(this.#loop, "Event");
    if (this.#value) return resolved(loop, true);
    return addWaiter(this.#waiters, loop);
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `Event ${this.#describe()}`;
  }

  /** How Deno's `console.log` prints an event. */
  [Symbol.for("Deno.customInspect")](): string {
    return `Event ${this.#describe()}`;
  }

  #describe(): string {
    const state = this.#value ? "set" : "unset";
    const n = this.#waiters.size;
    return n > 0 ? `${state} waiters=${n}` : state;
  }
}
