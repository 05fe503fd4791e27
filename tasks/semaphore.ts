/**
 * `Semaphore` and `BoundedSemaphore`: a counter that limits how many tasks
 * proceed at once.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { Future } from "../futures/future.ts";
import { InvalidStateError } from "../futures/errors.ts";
import {
  bindLoop,
  checkCount,
  releaser,
  resolved,
  TurnQueue,
} from "./_waiter.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** Options for `Semaphore` and `BoundedSemaphore`. */
export interface SemaphoreOptions {
  /**
   * The loop the semaphore's futures belong to.
   *
   * @default {the running loop at the first wait}
   */
  loop?: SchedulingLoop;
}

// Lets BoundedSemaphore read the count without making it public: a friend
// accessor (see loop/_handle.ts), set in Semaphore's static block.
let freeSlots: (sem: Semaphore) => number;

/**
 * A counter of free slots: `acquire()` takes one, waiting while there is
 * none, and `release()` gives one back.
 *
 * `acquire()` returns a future, for `yield*` and `await` alike. Waiters are
 * served first come first served: `release()` hands the slot straight to
 * the first waiter still waiting, and a new `acquire()` never overtakes a
 * waiter — not even one that was handed a slot and has not resumed yet (a
 * slot freed meanwhile waits for it, as in asyncio, where such a waiter is
 * still in line). Cancellation is safe at every point, as in asyncio 3.12: a
 * cancelled waiter leaves the line, and one that was handed a slot but is
 * cancelled before it resumes gives the slot back to the next waiter and
 * sees the `CancelledError` instead — whether it waits with `yield*` or
 * with `await`.
 *
 * `release()` may be called more often than `acquire()`, raising the count
 * above its initial value; `BoundedSemaphore` forbids that.
 *
 * PEP 3156 (as in asyncio): `Semaphore`.
 *
 * @example At most two at a time
 * ```ts
 * import { newEventLoop, Semaphore, sleep } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const slots = new Semaphore(2, { loop });
 * let running = 0;
 * let peak = 0;
 * async function job(): Promise<void> {
 *   await slots.acquire();
 *   try {
 *     peak = Math.max(peak, ++running);
 *     await sleep(0.001);
 *     running--;
 *   } finally {
 *     slots.release();
 *   }
 * }
 * const jobs = [1, 2, 3, 4, 5].map(() => loop.createTask(job));
 * for (const t of jobs) await loop.runUntilComplete(t);
 * assertEquals(peak, 2);
 * loop.close();
 * ```
 */
export class Semaphore {
  #loop: SchedulingLoop | null;
  #value: number;
  #waiters = new TurnQueue<true | Disposable>();
  // Slots handed to waiters that have not taken them yet: until then a new
  // acquire() queues even if a slot is free.
  #inTransit = 0;

  static {
    freeSlots = (sem) => sem.#value;
  }

  /**
   * Makes a semaphore with `value` free slots.
   *
   * @param value The initial count: an integer >= 0.
   * @param options The loop to use.
   * @throws {TypeError} When `value` is not a number.
   * @throws {RangeError} When `value` is negative or not an integer.
   */
  constructor(value = 1, options?: SemaphoreOptions) {
    this.#value = checkCount(value, 0, "a Semaphore");
    checkOptions(options, `create a ${new.target.name}`, "{ loop }");
    this.#loop = options?.loop ?? null;
  }

  /**
   * Returns `true` when `acquire()` would wait.
   *
   * PEP 3156 (as in asyncio): `Semaphore.locked()`.
   *
   * @returns Whether no slot is free (or one is, but a waiter handed a
   * slot has not resumed yet).
   */
  locked(): boolean {
    return this.#value === 0 || this.#inTransit > 0;
  }

  /**
   * Takes a slot: at once if one is free, else once every earlier waiter
   * was served and a slot is released. Cancelling the future (or the task
   * waiting on it) withdraws from the line.
   *
   * PEP 3156 (as in asyncio): `Semaphore.acquire()`.
   *
   * @returns A future that completes with `true` once a slot is taken.
   * @throws {InvalidStateError} When no loop was given and none is running.
   */
  acquire(): Future<true> {
    return this.#acquire(true) as Future<true>;
  }

  /**
   * Takes a slot like `acquire()`, and completes with a handle whose
   * disposal releases it: `using _ = yield* sem.hold()`. Disposing the
   * handle twice releases once.
   *
   * @returns A future of a `Disposable` that releases the slot.
   * @throws {InvalidStateError} When no loop was given and none is running.
   */
  hold(): Future<Disposable> {
    const handle = releaser(() => this.release());
    return this.#acquire(handle) as Future<Disposable>;
  }

  /**
   * Gives a slot back, handing it to the first task still waiting, if any.
   *
   * PEP 3156 (as in asyncio): `Semaphore.release()`.
   *
   * @throws {InvalidStateError} From `BoundedSemaphore`, when the count
   * would go above its initial value.
   */
  release(): void {
    this.#value++;
    this.#wakeUpNext();
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `${this.constructor.name} ${this.#describe()}`;
  }

  /** How Deno's `console.log` prints a semaphore. */
  [Symbol.for("Deno.customInspect")](): string {
    return `${this.constructor.name} ${this.#describe()}`;
  }

  #describe(): string {
    const state = this.locked() ? "locked" : `unlocked value=${this.#value}`;
    const n = this.#waiters.size;
    return n > 0 ? `${state} waiters=${n}` : state;
  }

  #acquire(value: true | Disposable): Future<true | Disposable> {
    const loop = this.#loop = bindLoop(this.#loop, this.constructor.name);
    // A free slot, and nobody in line or on the way to a slot.
    if (this.#value > 0 && this.#inTransit === 0) {
      this.#value--;
      return resolved(loop, value);
    }
    // A slot handed to this waiter is in transit until its consumer takes
    // it (or refuses it), or at the latest until the loop has run the
    // waiter's wakeup (a consumer that never takes it holds nobody up).
    let inTransit = false;
    const landed = (): void => {
      if (!inTransit) return;
      inTransit = false;
      this.#inTransit--;
      this.#wakeUpNext(); // to the waiters that queued behind it meanwhile
    };
    return this.#waiters.wait(
      loop,
      value,
      () => {
        landed();
        this.#value++;
        this.#wakeUpNext();
      },
      () => {
        inTransit = true;
        this.#inTransit++;
        // After the waiter's wakeup, which setResult() scheduled first.
        loop.callSoon(landed);
      },
      landed,
    );
  }

  // Hands the free slots to the waiters in line, first come first served.
  #wakeUpNext(): void {
    while (this.#value > 0 && this.#waiters.handOver()) this.#value--;
  }
}

/**
 * A semaphore that refuses to be released more often than it was
 * acquired: `release()` throws `InvalidStateError` instead of raising the
 * count above its initial value (asyncio raises `ValueError`; here it is
 * misuse of state, as releasing an unlocked `Lock` is).
 *
 * PEP 3156 (as in asyncio): `BoundedSemaphore`.
 *
 * @example Catching a release too many
 * ```ts
 * import { BoundedSemaphore, InvalidStateError, newEventLoop } from "@tulip/tulip";
 * import { assertThrows } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const sem = new BoundedSemaphore(1, { loop });
 * await loop.runUntilComplete(sem.acquire());
 * sem.release();
 * assertThrows(() => sem.release(), InvalidStateError);
 * loop.close();
 * ```
 */
export class BoundedSemaphore extends Semaphore {
  readonly #bound: number;

  /**
   * Makes a bounded semaphore with `value` free slots, which is also the
   * most it may ever have.
   *
   * @param value The initial and highest count: an integer >= 0.
   * @param options The loop to use.
   * @throws {TypeError} When `value` is not a number.
   * @throws {RangeError} When `value` is negative or not an integer.
   */
  constructor(value = 1, options?: SemaphoreOptions) {
    super(value, options);
    this.#bound = value;
  }

  /**
   * Gives a slot back, handing it to the first task still waiting, if any.
   *
   * PEP 3156 (as in asyncio): `BoundedSemaphore.release()`.
   *
   * @throws {InvalidStateError} When every slot is already free.
   */
  override release(): void {
    if (freeSlots(this) >= this.#bound) {
      throw new InvalidStateError(
        `Cannot release a BoundedSemaphore: it was released too many times, received value=${
          freeSlots(this)
        } bound=${this.#bound}`,
      );
    }
    super.release();
  }
}
