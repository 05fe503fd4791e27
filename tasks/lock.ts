/**
 * `Lock`: mutual exclusion for tasks.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { Future } from "../futures/future.ts";
import { InvalidStateError } from "../futures/errors.ts";
import {
  bindLoop,
  releaser,
  resolved,
  setLockAcquirer,
  TurnQueue,
} from "./_waiter.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** Options for `Lock`. */
export interface LockOptions {
  /**
   * The loop the lock's futures belong to.
   *
   * @default {the running loop at the first wait}
   */
  loop?: SchedulingLoop;
}

/**
 * A mutual-exclusion lock for tasks: at most one holder at a time, and the
 * others wait in line, first come first served.
 *
 * `acquire()` returns a future that completes (with `true`) once the lock
 * is the caller's, so it works as `yield* lock.acquire()` in a generator and
 * as `await lock.acquire()` in an async function. Release it with
 * `release()`, in a `finally`; or take it with `hold()`, whose result
 * releases the lock when disposed: `using _ = yield* lock.hold()`.
 *
 * The lock is fair: `release()` hands it straight to the first waiter that
 * is still waiting, and a new `acquire()` queues behind the waiters instead
 * of barging in. Cancellation is safe at every point. A waiter cancelled
 * while it waits just leaves the line. A waiter that was handed the lock
 * but is cancelled before it resumes passes the lock on and sees the
 * `CancelledError` instead of the lock (with `yield*` or `await` alike), so
 * no release is ever lost and a cancelled task never runs its critical
 * section. Unlike asyncio, `locked()` is `true` from the hand-over on,
 * not from the moment the new holder resumes.
 *
 * The lock has no owner: any code may release it, as in asyncio.
 *
 * PEP 3156 lists locks among its open issues, noting that Python's
 * `with lock:` block cannot wait for one; `using _ = yield* lock.hold()` is
 * that block here.
 *
 * PEP 3156 (as in asyncio): `Lock`.
 *
 * @example Serializing a critical section
 * ```ts
 * import { Lock, newEventLoop, sleep } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const lock = new Lock();
 * const log: string[] = [];
 * function* worker(name: string): Coroutine<void> {
 *   yield* lock.acquire();
 *   try {
 *     log.push(`${name} in`);
 *     yield* sleep(0.001);
 *     log.push(`${name} out`);
 *   } finally {
 *     lock.release();
 *   }
 * }
 * await loop.runUntilComplete(
 *   loop.createTask(function* () {
 *     const a = loop.createTask(worker("a"));
 *     const b = loop.createTask(worker("b"));
 *     yield* a;
 *     yield* b;
 *   }),
 * );
 * assertEquals(log, ["a in", "a out", "b in", "b out"]);
 * loop.close();
 * ```
 *
 * @example Holding the lock for a block with `using`
 * ```ts
 * import { Lock, newEventLoop } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const lock = new Lock({ loop });
 * await loop.runUntilComplete(loop.createTask(async () => {
 *   {
 *     using _held = await lock.hold();
 *     assertEquals(lock.locked(), true);
 *   }
 *   assertEquals(lock.locked(), false);
 * }));
 * loop.close();
 * ```
 */
export class Lock {
  #loop: SchedulingLoop | null;
  #locked = false;
  #waiters = new TurnQueue<true | Disposable>();

  static {
    setLockAcquirer((lock, onGrant) => {
      (lock as Lock).#acquire(true, onGrant);
    });
  }

  /**
   * Makes an unlocked lock.
   *
   * @param options The loop to use.
   */
  constructor(options?: LockOptions) {
    checkOptions(options, "create a Lock", "{ loop }");
    this.#loop = options?.loop ?? null;
  }

  /**
   * Returns `true` while someone holds the lock.
   *
   * @returns Whether the lock is held.
   */
  locked(): boolean {
    return this.#locked;
  }

  /**
   * Acquires the lock: at once if it is free (and nobody waits), else once
   * every earlier waiter had its turn. Cancelling the future (or the task
   * waiting on it) withdraws from the line.
   *
   * PEP 3156 (as in asyncio): `Lock.acquire()`.
   *
   * @returns A future that completes with `true` once the lock is held.
   * @throws {InvalidStateError} When no loop was given and none is running.
   */
  acquire(): Future<true> {
    return this.#acquire(true) as Future<true>;
  }

  /**
   * Acquires the lock like `acquire()`, and completes with a handle whose
   * disposal releases it: `using _ = yield* lock.hold()` or
   * `using _ = await lock.hold()`. Disposing the handle twice releases once.
   *
   * @returns A future of a `Disposable` that releases the lock.
   * @throws {InvalidStateError} When no loop was given and none is running.
   */
  hold(): Future<Disposable> {
    const handle = releaser(() => this.release());
    return this.#acquire(handle) as Future<Disposable>;
  }

  /**
   * Releases the lock, handing it to the first task still waiting, if any.
   *
   * PEP 3156 (as in asyncio): `Lock.release()`.
   *
   * @throws {InvalidStateError} When the lock is not locked.
   */
  release(): void {
    if (!this.#locked) {
      throw new InvalidStateError(
        "Cannot release a Lock: it is not locked, received locked()=false",
      );
    }
    this.#handOver();
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `Lock ${this.#describe()}`;
  }

  /** How Deno's `console.log` prints a lock. */
  [Symbol.for("Deno.customInspect")](): string {
    return `Lock ${this.#describe()}`;
  }

  #describe(): string {
    const state = this.#locked ? "locked" : "unlocked";
    const n = this.#waiters.size;
    return n > 0 ? `${state} waiters=${n}` : state;
  }

  #acquire(
    value: true | Disposable,
    onGrant?: () => void,
  ): Future<true | Disposable> {
    const loop = this.#loop = bindLoop(this.#loop, "Lock");
    if (!this.#locked) {
      this.#locked = true;
      const future = resolved(loop, value);
      onGrant?.();
      return future;
    }
    return this.#waiters.wait(loop, value, () => this.#handOver(), onGrant);
  }

  // The lock is held and its holder gives it up: to the next waiter, or
  // nobody.
  #handOver(): void {
    if (!this.#waiters.handOver()) this.#locked = false;
  }
}
