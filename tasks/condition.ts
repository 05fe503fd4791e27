/**
 * `Condition`: wait, holding a lock, until another task says that something
 * changed.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { Future } from "../futures/future.ts";
import {
  CancelledError,
  formatReceived,
  InvalidStateError,
} from "../futures/errors.ts";
import {
  acquireLock,
  bindLoop,
  resolved,
  Waiter,
  WaiterQueue,
} from "./_waiter.ts";
import { Lock } from "./lock.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** Options for `Condition`. */
export interface ConditionOptions {
  /**
   * The loop the condition's futures belong to (and its own lock's, when
   * no lock is given).
   *
   * @default {the running loop at the first wait}
   */
  loop?: SchedulingLoop;
}

// A waiter goes WAITING (for a notify) → ACQUIRING (the lock again) → done.
const WAITING = 0;
const ACQUIRING = 1;
const DONE = 2;

// What the condition's line of waiters needs from a waiter.
interface Parked {
  waiting(): boolean;
  wake(): void;
}

interface Internals {
  lock: Lock;
  waiters: WaiterQueue<Parked>;
  notify(n: number): void;
}

function isLive(w: Parked): boolean {
  return w.waiting();
}

// A `waitFor()` waiter whose predicate fails gives the lock back from inside
// the `release()` that handed it over, which hands it to the next waiter,
// whose predicate may fail too: done in place, each would nest one release
// deeper, and a few thousand overflow the stack. So the first gives the
// lock back in a loop, and those handed the lock meanwhile queue their
// give-back for that loop.
let givingBack: Lock[] | null = null;

function giveBack(lock: Lock): void {
  if (givingBack !== null) {
    givingBack.push(lock);
    return;
  }
  const queue: Lock[] = givingBack = [lock];
  try {
    for (let i = 0; i < queue.length; i++) queue[i].release();
  } finally {
    givingBack = null;
  }
}

// The future of `wait()` and `waitFor()`. It completes only once the lock is
// held again — even when cancelled: `cancel()` returns `true` at once, takes
// the waiter out of line, and the future turns cancelled when the lock is
// back, as asyncio's `finally: await self.acquire()` does.
//
// Who takes the lock back depends on who waits. Code that `yield*`s or
// `await`s the future before it is notified takes it back itself, as
// asyncio's woken task does: `notify()` only wakes it, and it asks for the
// lock when it resumes — so notified tasks that each release the lock in
// turn all resume in the same iteration, and `waitFor()`'s predicate runs
// in the waiting task. Otherwise (done callbacks, an `await` after the
// notify) the lock is taken back by callbacks: queued for at `notify()`,
// and handed over synchronously inside the `release()` that frees it (see
// `acquireLock`), so that the waiting code resumes on the next iteration.
class ConditionWaiter<R> extends Waiter<R> {
  readonly #cond: Internals;
  readonly #predicate: (() => R) | null;
  #phase = WAITING;
  #notified = false;
  #cancelRequested = false;
  #cancelMessage: string | undefined = undefined;
  // Set once a task waits through `yield*`: what that task waits on now
  // (the wake-up signal, or the lock), and the signal while in line.
  #inTask = false;
  #inner: Future<unknown> | null = null;
  #signal: Waiter<void> | null = null;

  constructor(
    loop: SchedulingLoop,
    cond: Internals,
    predicate: (() => R) | null,
  ) {
    super(loop, undefined, {
      // Woken, but the waiting task was cancelled before it resumed: give
      // the notification to someone else (a spurious wakeup is allowed).
      onRefuse: () => cond.notify(1),
    });
    this.#cond = cond;
    this.#predicate = predicate;
  }

  waiting(): boolean {
    return this.#phase === WAITING && !this.#cancelRequested;
  }

  override cancel(msg?: string): boolean {
    if (this.done()) return false;
    // The latest request names the error, as asyncio re-raises the most
    // recent CancelledError caught while taking the lock back.
    this.#cancelMessage = msg;
    if (this.#inTask) {
      // The task takes the lock back itself: interrupt what it waits on
      // (or, if that is done, tell it when it resumes). Between two waits
      // (its give-back runs other waiters' code) it waits on nothing yet:
      // leave the line, and it takes the lock back when it gets there.
      this.#cancelRequested = true;
      if (this.#inner !== null) this.#inner.cancel(msg);
      else if (this.#phase === WAITING) {
        this.#phase = ACQUIRING;
        this.#cond.waiters.drop();
      }
      return true;
    }
    if (!this.#cancelRequested) {
      this.#cancelRequested = true;
      if (this.#phase === WAITING) {
        this.#cond.waiters.drop();
        this.#reacquire();
      }
    }
    return true;
  }

  /** Called by `notify()`, which took the waiter out of line. */
  wake(): void {
    this.#notified = true;
    if (this.#inTask) {
      // Resume the task; woken before it waits again (inside its own
      // give-back), it finds the phase changed and takes the lock back.
      this.#phase = ACQUIRING;
      this.#signal?.setResult(undefined);
      return;
    }
    this.#reacquire();
  }

  /** `yield*` from a task that has not been notified yet waits in-task. */
  override [Symbol.iterator](): Generator<Future<R>, R, unknown> {
    if (
      this.done() || this.#inTask || this.#phase !== WAITING ||
      this.#cancelRequested
    ) {
      return super[Symbol.iterator]();
    }
    this.#inTask = true;
    return this.#waitInTask() as Generator<Future<R>, R, unknown>;
  }

  /**
   * `await` before a notify waits in-task too: the awaiting code drives
   * the same loop, awaiting what it waits on.
   */
  override then<R1 = R, R2 = never>(
    onfulfilled?: ((value: R) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    if (
      this.done() || this.#inTask || this.#phase !== WAITING ||
      this.#cancelRequested
    ) {
      return super.then(onfulfilled, onrejected);
    }
    this.#inTask = true;
    return this.#awaitInTask().then(onfulfilled, onrejected);
  }

  async #awaitInTask(): Promise<R> {
    const steps = this.#waitInTask();
    let step = steps.next();
    while (!step.done) {
      let value: unknown;
      try {
        value = await step.value;
      } catch (e) {
        step = steps.throw(e);
        continue;
      }
      step = steps.next(value);
    }
    return step.value;
  }

  // asyncio's `wait()` and `wait_for()` loop, run by the waiting task.
  *#waitInTask(): Generator<Future<unknown>, R, unknown> {
    const cond = this.#cond;
    let interrupted = false;
    let error: unknown = undefined;
    for (;;) {
      // Wait for notify(), unless woken or cancelled already (the waiter
      // is in line while WAITING).
      if (this.#phase === WAITING) {
        const signal = this.#signal = new Waiter<void>(
          this.getLoop(),
          undefined,
          {
            onCancel: () => {
              if (this.#phase !== WAITING) return;
              this.#phase = ACQUIRING;
              cond.waiters.drop();
            },
          },
        );
        this.#inner = signal;
        try {
          yield* signal;
        } catch (e) {
          interrupted = true;
          error = e;
        }
        this.#signal = null;
      }
      this.#phase = ACQUIRING;
      // Take the lock back, however often the task is cancelled meanwhile;
      // the latest CancelledError is the one raised.
      for (;;) {
        const acquiring = this.#inner = cond.lock.acquire();
        try {
          yield* acquiring;
          break;
        } catch (e) {
          if (!(e instanceof CancelledError)) throw e;
          interrupted = true;
          error = e;
        }
      }
      this.#inner = null;
      if (!interrupted && !this.#cancelRequested) {
        if (this.#conclude()) return yield* super[Symbol.iterator]();
        // Cancelled by the predicate itself: leave as below.
        if (!this.#cancelRequested) {
          cond.lock.release();
          continue;
        }
      }
      if (!interrupted) error = new CancelledError(this.#cancelMessage);
      this.#phase = DONE;
      // Woken, yet leaving: give the notification to someone else.
      if (this.#notified) cond.notify(1);
      super.cancel(error instanceof CancelledError ? error.message : "");
      throw error;
    }
  }

  // The lock is back (and no cancellation): completes the future, unless
  // the predicate does not hold yet — then the waiter is back in line, at
  // the end, and the caller must give the lock back — or the predicate
  // cancelled the wait: then nothing changed, and the caller must see to it.
  #conclude(): boolean {
    let value: R;
    try {
      value = this.#predicate === null ? true as R : this.#predicate();
    } catch (e) {
      this.#phase = DONE;
      this.setException(e);
      return true;
    }
    if (this.#cancelRequested) return false;
    if (!value) {
      this.#phase = WAITING;
      this.#notified = false;
      this.#cond.waiters.push(this);
      return false;
    }
    this.#phase = DONE;
    this.setResult(value);
    return true;
  }

  #reacquire(): void {
    this.#phase = ACQUIRING;
    acquireLock(this.#cond.lock, this.#reacquired);
  }

  #reacquired = (): void => {
    const cond = this.#cond;
    if (!this.#cancelRequested) {
      if (this.#conclude()) return;
      if (!this.#cancelRequested) return giveBack(cond.lock);
    }
    this.#phase = DONE;
    if (this.#notified) cond.notify(1);
    super.cancel(this.#cancelMessage);
  };
}

/**
 * A condition variable: tasks holding its lock wait until another task,
 * holding the lock too, notifies them that the state they watch changed.
 *
 * `wait()` releases the lock, waits for `notify()` or `notifyAll()`, takes
 * the lock again, and then completes — so the caller holds the lock when it
 * resumes, in every case: even a cancelled `wait()` completes (with the
 * `CancelledError`) only once the lock is back, as in asyncio.
 * `waitFor(predicate)` loops over `wait()` until `predicate()` returns a
 * truthy value, and completes with it. Waiters are notified first come
 * first served. A waiter that was notified but cancelled before it resumed
 * passes the notification on to the next waiter, so none is lost (the
 * other waiter may find nothing changed: a spurious wakeup, which the
 * condition-variable protocol allows — re-check your state, or use
 * `waitFor`).
 *
 * As in asyncio, a task that `yield*`s or `await`s `wait()` takes the lock
 * back itself when `notify()` has woken it, so notified tasks that release
 * the lock in turn all resume in the same iteration. A wait watched only
 * by done callbacks is handed the lock inside the `release()` that frees it
 * instead.
 *
 * The lock can be shared by several conditions: pass it to the
 * constructor. `acquire()`, `release()`, `locked()` and `hold()` act on it.
 *
 * PEP 3156 (as in asyncio): `Condition`.
 *
 * @example A consumer waits for a producer
 * ```ts
 * import { Condition, newEventLoop } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const cond = new Condition(undefined, { loop });
 * const items: number[] = [];
 * function* consumer(): Coroutine<number> {
 *   yield* cond.acquire();
 *   try {
 *     yield* cond.waitFor(() => items.length > 0);
 *     return items.shift()!;
 *   } finally {
 *     cond.release();
 *   }
 * }
 * function* producer(): Coroutine<void> {
 *   using _held = yield* cond.hold();
 *   items.push(42);
 *   cond.notify();
 * }
 * const got = loop.createTask(consumer());
 * loop.createTask(producer());
 * assertEquals(await loop.runUntilComplete(got), 42);
 * loop.close();
 * ```
 */
export class Condition {
  #loop: SchedulingLoop | null;
  readonly #lock: Lock;
  readonly #internals: Internals;

  /**
   * Makes a condition on `lock`, or on a new lock of its own.
   *
   * @param lock The lock to share; a new `Lock` by default.
   * @param options The loop to use.
   * @throws {TypeError} When `lock` is given and is not a `Lock`.
   */
  constructor(lock?: Lock, options?: ConditionOptions) {
    checkOptions(options, "create a Condition", "{ loop }");
    this.#loop = options?.loop ?? null;
    if (lock === undefined) lock = new Lock({ loop: options?.loop });
    else if (!(lock instanceof Lock)) {
      throw new TypeError(
        `Cannot create a Condition: expected a Lock, received ${
          lock === null ? "null" : typeof lock
        }`,
      );
    }
    this.#lock = lock;
    const waiters = new WaiterQueue<Parked>(isLive);
    this.#internals = {
      lock,
      waiters,
      notify(n: number): void {
        for (let i = 0; i < n; i++) {
          const w = waiters.shift();
          if (w === undefined) break;
          w.wake();
        }
      },
    };
  }

  /**
   * Returns `true` while the lock is held.
   *
   * PEP 3156 (as in asyncio): `Condition.locked()`.
   *
   * @returns Whether the lock is held.
   */
  locked(): boolean {
    return this.#lock.locked();
  }

  /**
   * Acquires the lock (see `Lock.acquire()`).
   *
   * PEP 3156 (as in asyncio): `Condition.acquire()`.
   *
   * @returns A future that completes with `true` once the lock is held.
   * @throws {InvalidStateError} When no loop was given and none is running.
   */
  acquire(): Future<true> {
    return this.#lock.acquire();
  }

  /**
   * Acquires the lock, and completes with a handle whose disposal releases
   * it (see `Lock.hold()`).
   *
   * @returns A future of a `Disposable` that releases the lock.
   * @throws {InvalidStateError} When no loop was given and none is running.
   */
  hold(): Future<Disposable> {
    return this.#lock.hold();
  }

  /**
   * Releases the lock (see `Lock.release()`).
   *
   * PEP 3156 (as in asyncio): `Condition.release()`.
   *
   * @throws {InvalidStateError} When the lock is not locked.
   */
  release(): void {
    this.#lock.release();
  }

  /**
   * Releases the lock, waits to be notified, and takes the lock again. The
   * future completes (with `true`) once the lock is held again — also when
   * it is cancelled: then it turns cancelled only after the lock is back.
   *
   * PEP 3156 (as in asyncio): `Condition.wait()`.
   *
   * @returns A future that completes with `true`, the lock held.
   * @throws {InvalidStateError} When the lock is not held, or no loop was
   * given and none is running.
   */
  wait(): Future<true> {
    const loop = this.#prepare("wait");
    const waiter = new ConditionWaiter<true>(loop, this.#internals, null);
    this.#park(waiter);
    return waiter;
  }

  /**
   * Waits until `predicate()` returns a truthy value: checks it now, and
   * after each wakeup with the lock held again. Completes with that value,
   * the lock held; if `predicate` throws, the future fails with its error,
   * the lock held. Cancelling behaves as for `wait()`. As in asyncio, only
   * a wait needs the lock: a predicate that holds at the first check
   * completes the future at once, lock held or not.
   *
   * PEP 3156 (as in asyncio): `Condition.wait_for()`.
   *
   * @typeParam R What the predicate returns.
   * @param predicate Reads the guarded state; called with the lock held.
   * After a wakeup it runs in the waiting task when a generator task
   * `yield*`s the future (as in asyncio); when the future is awaited (or
   * only watched through callbacks), inside the `release()` that hands the
   * lock back, so `currentTask()` there is the releasing task.
   * @returns A future of the predicate's truthy result.
   * @throws {TypeError} When `predicate` is not a function.
   * @throws {InvalidStateError} When the predicate does not hold at once
   * and the lock is not held, or no loop was given and none is running.
   */
  waitFor<R>(predicate: () => R): Future<R> {
    if (typeof predicate !== "function") {
      throw new TypeError(
        `Cannot wait on a Condition: predicate must be a function, received ${typeof predicate}`,
      );
    }
    // As asyncio: a predicate that already holds needs no lock.
    const value = predicate();
    if (value) return resolved(bindLoop(this.#loop, "Condition"), value);
    const loop = this.#prepare("waitFor");
    const waiter = new ConditionWaiter<R>(loop, this.#internals, predicate);
    this.#park(waiter);
    return waiter;
  }

  /**
   * Wakes up to `n` tasks waiting on the condition, first come first
   * served. Each resumes once it gets the lock, so after the caller
   * releases it.
   *
   * PEP 3156 (as in asyncio): `Condition.notify()`.
   *
   * @param n How many waiters to wake: an integer >= 0.
   * @throws {RangeError} When `n` is negative, or not an integer.
   * @throws {InvalidStateError} When the lock is not held.
   */
  notify(n = 1): void {
    if (
      typeof n !== "number" || !(Number.isInteger(n) || n === Infinity) || n < 0
    ) {
      throw new RangeError(
        `Cannot notify a Condition: n must be an integer >= 0, received ${
          formatReceived(n)
        }`,
      );
    }
    this.#checkLocked("notify");
    this.#internals.notify(n);
  }

  /**
   * Wakes every task waiting on the condition.
   *
   * PEP 3156 (as in asyncio): `Condition.notify_all()`.
   *
   * @throws {InvalidStateError} When the lock is not held.
   */
  notifyAll(): void {
    this.#checkLocked("notifyAll");
    this.#internals.notify(Infinity);
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `Condition ${this.#describe()}`;
  }

  /** How Deno's `console.log` prints a condition. */
  [Symbol.for("Deno.customInspect")](): string {
    return `Condition ${this.#describe()}`;
  }

  #describe(): string {
    const state = this.#lock.locked() ? "locked" : "unlocked";
    const n = this.#internals.waiters.size;
    return n > 0 ? `${state} waiters=${n}` : state;
  }

  #checkLocked(what: string): void {
    if (!this.#lock.locked()) {
      throw new InvalidStateError(
        `Cannot call ${what}() on a Condition: its lock is not acquired, received locked()=false`,
      );
    }
  }

  #prepare(what: string): SchedulingLoop {
    this.#checkLocked(what);
    return this.#loop = bindLoop(this.#loop, "Condition");
  }

  #park(waiter: Parked): void {
    this.#internals.waiters.push(waiter);
    this.#lock.release();
  }
}
