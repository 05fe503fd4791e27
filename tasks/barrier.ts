/**
 * `Barrier`: let a fixed number of tasks wait for each other.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { Future } from "../futures/future.ts";
import {
  addWaiter,
  bindLoop,
  checkCount,
  rejected,
  type Waiter,
} from "./_waiter.ts";

/** Options for `Barrier`. */
export interface BarrierOptions {
  /**
   * The loop the barrier's futures belong to.
   *
   * @default {the running loop at the first wait}
   */
  loop?: SchedulingLoop;
}

/**
 * The error of a `Barrier` wait that cannot pass: the barrier was aborted,
 * or reset while the task waited.
 *
 * PEP 3156 (as in asyncio): `BrokenBarrierError`.
 *
 * @example
 * ```ts
 * import { BrokenBarrierError } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(new BrokenBarrierError("Cannot pass a Barrier: it was aborted").name, "BrokenBarrierError");
 * ```
 */
export class BrokenBarrierError extends Error {
  /**
   * Makes the error.
   *
   * @param message Why the barrier could not be passed.
   */
  constructor(message = "Cannot pass a Barrier: it is broken") {
    super(message);
    this.name = "BrokenBarrierError";
  }
}

/**
 * A meeting point for a fixed number of tasks (the parties): each calls
 * `wait()`, and all of them pass together once the last one arrives. The
 * barrier is then ready for the next round at once.
 *
 * `wait()` completes with the task's arrival index, `0` to `parties - 1`,
 * different for each task of a round (`parties - 1` for the task whose
 * arrival opened the barrier), so that one of them can be picked for extra
 * work. A waiter that is cancelled leaves the round, which then needs one
 * more arrival. `abort()` breaks the barrier: waits fail with
 * `BrokenBarrierError` until `reset()`; `reset()` fails the current waiters
 * with `BrokenBarrierError` and starts a new round.
 *
 * Unlike asyncio, `reset()` and `abort()` do not wait (there is no lock to
 * take on a single thread), so they return nothing.
 *
 * PEP 3156 (as in asyncio): `Barrier`.
 *
 * @example Three tasks meet
 * ```ts
 * import { Barrier, newEventLoop, sleep } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const barrier = new Barrier(3, { loop });
 * const order: string[] = [];
 * async function party(name: string, delay: number): Promise<number> {
 *   await sleep(delay);
 *   order.push(`${name} arrives`);
 *   const index = await barrier.wait();
 *   order.push(`${name} passes`);
 *   return index;
 * }
 * const tasks = [
 *   loop.createTask(() => party("a", 0.003)),
 *   loop.createTask(() => party("b", 0.001)),
 *   loop.createTask(() => party("c", 0.002)),
 * ];
 * const indices: number[] = [];
 * for (const t of tasks) indices.push(await loop.runUntilComplete(t));
 * assertEquals(indices, [2, 0, 1]);
 * assertEquals(order.slice(0, 3), ["b arrives", "c arrives", "a arrives"]);
 * loop.close();
 * ```
 */
export class Barrier {
  #loop: SchedulingLoop | null;
  readonly #parties: number;
  #broken = false;
  #waiters = new Set<Waiter<number>>();

  /**
   * Makes a barrier for `parties` tasks.
   *
   * @param parties How many tasks must arrive before they all pass: an
   * integer >= 1.
   * @param options The loop to use.
   * @throws {TypeError} When `parties` is not a number.
   * @throws {RangeError} When `parties` is below 1 or not an integer.
   */
  constructor(parties: number, options?: BarrierOptions) {
    this.#parties = checkCount(parties, 1, "a Barrier");
    this.#loop = options?.loop ?? null;
  }

  /**
   * How many tasks must arrive for the barrier to open.
   *
   * PEP 3156 (as in asyncio): `Barrier.parties`.
   */
  get parties(): number {
    return this.#parties;
  }

  /**
   * How many tasks wait in the current round.
   *
   * PEP 3156 (as in asyncio): `Barrier.n_waiting`.
   */
  get nWaiting(): number {
    return this.#waiters.size;
  }

  /**
   * Whether the barrier is broken (aborted and not reset since).
   *
   * PEP 3156 (as in asyncio): `Barrier.broken`.
   */
  get broken(): boolean {
    return this.#broken;
  }

  /**
   * Arrives at the barrier and waits for the other parties. The last to
   * arrive opens the barrier for everyone in the round.
   *
   * PEP 3156 (as in asyncio): `Barrier.wait()`.
   *
   * @returns A future of the arrival index, `0` to `parties - 1`; it fails
   * with `BrokenBarrierError` if the barrier is broken, or is aborted or
   * reset before it opens.
   * @throws {InvalidStateError} When no loop was given and none is running.
   */
  wait(): Future<number> {
    const loop = this.#loop = bindLoop(this.#loop, "Barrier");
    if (this.#broken) {
      return rejected(
        loop,
        new BrokenBarrierError("Cannot pass a Barrier: it is broken"),
      );
    }
    const waiters = this.#waiters;
    const waiter = addWaiter(waiters, loop);
    if (waiters.size === this.#parties) {
      // Open: indices in order of arrival, a fresh round from now on.
      this.#waiters = new Set();
      let index = 0;
      for (const w of waiters) w.setResult(index++);
    }
    return waiter;
  }

  /**
   * Starts a new round: tasks waiting now fail with `BrokenBarrierError`,
   * and a broken barrier is usable again.
   *
   * PEP 3156 (as in asyncio): `Barrier.reset()`.
   */
  reset(): void {
    this.#broken = false;
    this.#fail("Cannot pass a Barrier: it was reset while waiting");
  }

  /**
   * Breaks the barrier: tasks waiting now, and every later `wait()` until
   * `reset()`, fail with `BrokenBarrierError`. Use it when a party cannot
   * come, so that the others do not wait for ever.
   *
   * PEP 3156 (as in asyncio): `Barrier.abort()`.
   */
  abort(): void {
    this.#broken = true;
    this.#fail("Cannot pass a Barrier: it was aborted");
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `Barrier ${this.#describe()}`;
  }

  /** How Deno's `console.log` prints a barrier. */
  [Symbol.for("Deno.customInspect")](): string {
    return `Barrier ${this.#describe()}`;
  }

  #describe(): string {
    return this.#broken
      ? `broken parties=${this.#parties}`
      : `waiting=${this.#waiters.size}/${this.#parties}`;
  }

  #fail(message: string): void {
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const w of waiters) w.setException(new BrokenBarrierError(message));
  }
}
