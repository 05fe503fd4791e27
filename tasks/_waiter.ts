// The machinery shared by the coordination primitives (Lock, Event,
// Condition, Semaphore, Barrier, the queues).
//
// Every wait returns a Future, so that it works with `yield*` and with
// `await`. The primitives hand over what a waiter waits for at the moment
// they wake it ("handoff"): `release()` gives the lock to the first waiter,
// `put()` gives the item to the first getter. The waiter's future then has
// a result, and its consumer owns the lock or the item.
//
// One window is left: the future has its result, but the task that waits
// for it is cancelled before it resumes, so the task sees a CancelledError
// and never learns it got the lock. asyncio closes this window with code
// that runs in the waiting task itself (`except CancelledError:` in
// `Lock.acquire()`). A `Waiter` does the same: `yield* waiter` runs the
// waiter's own iterator inside the waiting generator, so an error thrown in
// at its `yield` after the result was set means "refused", and `onRefuse`
// passes the lock or the item on. `await waiter` does the same through
// `then()`: the task's await guard rejects with the cancellation instead
// of delivering the value, and the waiter passes the value on.

import type { SchedulingLoop } from "../loop/event_loop.ts";
import { Future } from "../futures/future.ts";
import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import { Deque, notifyAwait } from "../futures/_runtime.ts";

/** What a primitive is told about one of its waiters. */
export interface WaiterHooks<T> {
  /** Called synchronously when the pending waiter is cancelled. */
  onCancel?: () => void;
  /**
   * Called when a generator consumer is interrupted (cancelled) after the
   * waiter's result was set and before it resumed: the value was not taken.
   */
  onRefuse?: (value: T) => void;
  /**
   * Called synchronously when the waiter's result is set, before any done
   * callback runs (a `Condition` waiter takes its lock back this way).
   */
  onGrant?: (value: T) => void;
  /**
   * Called when the consumer takes the result it was granted: `yield*`
   * returns it, or the `await` resumes with it.
   */
  onTake?: () => void;
}

/**
 * A future a primitive completes when the wait is over; cancelling it tells
 * the primitive at once, and a refused result is given back.
 */
export class Waiter<T, P = undefined> extends Future<T> {
  /** Data the primitive keeps with the waiter (a putter's item). */
  readonly payload: P;
  #onCancel: (() => void) | undefined;
  #onRefuse: ((value: T) => void) | undefined;
  #onGrant: ((value: T) => void) | undefined;
  #onTake: (() => void) | undefined;
  #granted = false;
  #taken = false;

  constructor(loop: SchedulingLoop, payload: P, hooks?: WaiterHooks<T>) {
    super({ loop });
    this.payload = payload;
    this.#onCancel = hooks?.onCancel;
    this.#onRefuse = hooks?.onRefuse;
    this.#onGrant = hooks?.onGrant;
    this.#onTake = hooks?.onTake;
  }

  override setResult(value: T): void {
    super.setResult(value);
    this.#granted = true;
    this.#onGrant?.(value);
  }

  override cancel(msg?: string): boolean {
    if (!super.cancel(msg)) return false;
    this.#onCancel?.();
    return true;
  }

  override *[Symbol.iterator](): Generator<Future<T>, T, unknown> {
    if (!this.done()) {
      try {
        yield this;
      } catch (e) {
        // Interrupted. Still pending (someone threw in by hand): withdraw,
        // and wait for a deferred cancellation to finish. Already granted:
        // give the value back.
        if (!this.done()) this.cancel();
        while (!this.done()) {
          try {
            yield this;
          } catch {
            // Keep waiting: the primitive must be left consistent.
          }
        }
        this.#refuse();
        throw e;
      }
    }
    const value = this.result();
    this.#take();
    return value;
  }

  /**
   * Lets `await waiter` work in async functions, with the same refusal as
   * `yield*`: when the awaiting task is cancelled after the value was
   * granted but before it resumes, `then()` rejects with the cancellation
   * and the value is passed on.
   */
  override then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    if (this.#granted && !this.#taken) {
      // Granted before the awaiting task got here (an async function's
      // `await` calls then() a few microtasks late): a cancellation that
      // arrived meanwhile is refused here, as `yield*` would.
      const guard = notifyAwait(this);
      const interrupted = guard === false ? undefined : guard?.();
      if (interrupted !== undefined) {
        this.#refuse();
        // The awaiting code goes on in a microtask without having waited,
        // as from Future.then() of a done future.
        return Promise.reject(interrupted).then(onfulfilled, onrejected);
      }
    }
    return super.then(
      (value) => {
        this.#take();
        return onfulfilled == null
          ? value as unknown as R1
          : onfulfilled(value);
      },
      (e) => {
        this.#refuse();
        if (onrejected == null) throw e;
        return onrejected(e);
      },
    );
  }

  #take(): void {
    if (this.#taken) return;
    this.#taken = true;
    this.#onTake?.();
  }

  #refuse(): void {
    if (!this.#granted || this.#taken) return;
    this.#taken = true;
    const onRefuse = this.#onRefuse;
    if (onRefuse === undefined) return;
    let value: T;
    try {
      value = this.result();
    } catch {
      return; // the grant was withdrawn (a queue shut down): nothing to give
    }
    onRefuse(value);
  }
}

/**
 * A FIFO list of waiters that skips the ones that stopped waiting, in O(1)
 * per operation: a cancelled waiter stays in the list (removing it from the
 * middle would be O(n)) until it reaches the front or the list is compacted.
 */
export class WaiterQueue<W> {
  #deque = new Deque<W>();
  #live = 0;
  readonly #isLive: (w: W) => boolean;

  constructor(isLive: (w: W) => boolean) {
    this.#isLive = isLive;
  }

  /** The number of live waiters. */
  get size(): number {
    return this.#live;
  }

  /** Adds a live waiter at the back. */
  push(w: W): void {
    this.#deque.push(w);
    this.#live++;
  }

  /** Removes and returns the first live waiter, or `undefined`. */
  shift(): W | undefined {
    for (;;) {
      const w = this.#deque.shift();
      if (w === undefined) return undefined;
      if (this.#isLive(w)) {
        this.#live--;
        return w;
      }
    }
  }

  /** Records that a waiter still in the list stopped being live. */
  drop(): void {
    this.#live--;
    const length = this.#deque.length;
    if (length >= 64 && this.#live * 2 < length) {
      this.#deque.filter(this.#isLive);
    }
  }
}

// How a Condition takes its Lock back: the lock calls `onGrant`
// synchronously when it is handed over (or at once when free), so that the
// condition's waiter completes in the same callback as the release instead
// of one iteration later. Set once by `Lock`'s static block: a friend
// accessor (see loop/_handle.ts) registered across files, since `Lock`
// imports this module and not the reverse.
let lockAcquirer:
  | ((lock: object, onGrant: () => void) => void)
  | null = null;

/** Installs how `acquireLock` reaches a `Lock`'s line (lock.ts only). */
export function setLockAcquirer(
  fn: (lock: object, onGrant: () => void) => void,
): void {
  lockAcquirer = fn;
}

/** Queues for `lock`; `onGrant` runs synchronously once it is acquired. */
export function acquireLock(lock: object, onGrant: () => void): void {
  lockAcquirer!(lock, onGrant);
}

/** Returns `true` for a waiter still in line: its future is pending. */
export function isPending(w: { done(): boolean }): boolean {
  return !w.done();
}

/**
 * The line of a `Lock` or `Semaphore`: each waiter asks for a value (`true`
 * or a release handle) and completes with it when it is handed a turn.
 */
export class TurnQueue<V> {
  #waiters = new WaiterQueue<Waiter<V, V>>(isPending);

  /** The number of waiters still waiting. */
  get size(): number {
    return this.#waiters.size;
  }

  /**
   * Queues a waiter that completes with `value` when handed a turn;
   * `onRefuse` runs when its consumer refused the turn it was handed,
   * `onGrant` synchronously when it is handed the turn, `onTake` when its
   * consumer took it.
   */
  wait(
    loop: SchedulingLoop,
    value: V,
    onRefuse: () => void,
    onGrant?: () => void,
    onTake?: () => void,
  ): Future<V> {
    const waiters = this.#waiters;
    const waiter = new Waiter<V, V>(loop, value, {
      onCancel: () => waiters.drop(),
      onRefuse,
      onGrant,
      onTake,
    });
    waiters.push(waiter);
    return waiter;
  }

  /**
   * Hands a turn to the first waiter still waiting.
   *
   * @returns `false` when nobody waits.
   */
  handOver(): boolean {
    const next = this.#waiters.shift();
    if (next === undefined) return false;
    next.setResult(next.payload);
    return true;
  }
}

/**
 * Adds a new waiter to `waiters`; cancelling it takes it out again.
 */
export function addWaiter<T>(
  waiters: Set<Waiter<T>>,
  loop: SchedulingLoop,
): Waiter<T> {
  const waiter: Waiter<T> = new Waiter(loop, undefined, {
    onCancel: () => waiters.delete(waiter),
  });
  waiters.add(waiter);
  return waiter;
}

/**
 * Returns a handle whose first disposal calls `release`; later disposals do
 * nothing.
 */
export function releaser(release: () => void): Disposable {
  let released = false;
  return {
    [Symbol.dispose]: () => {
      if (released) return;
      released = true;
      release();
    },
  };
}

/**
 * Returns the loop a primitive works on: the one it is bound to, else the
 * running loop (to bind to from now on).
 */
export function bindLoop(
  bound: SchedulingLoop | null,
  what: string,
): SchedulingLoop {
  const running = getRunningLoop();
  if (bound === null) {
    if (running === null) {
      throw new InvalidStateError(
        `Cannot wait on a ${what}: no event loop is running and none was given, received loop=undefined`,
      );
    }
    return running;
  }
  if (running !== null && running !== bound) {
    throw new InvalidStateError(
      `Cannot wait on a ${what}: it is bound to a different event loop`,
    );
  }
  return bound;
}

/** Returns a future that already has `value`. */
export function resolved<T>(loop: SchedulingLoop, value: T): Future<T> {
  const future = new Future<T>({ loop });
  future.setResult(value);
  return future;
}

/** Returns a future that already failed with `error`. */
export function rejected<T>(loop: SchedulingLoop, error: unknown): Future<T> {
  const future = new Future<T>({ loop });
  future.setException(error);
  return future;
}

/**
 * Checks a count given to a constructor: a number, an integer, at least
 * `min` (`Infinity` allowed when `infinite` is set).
 */
export function checkCount(
  value: unknown,
  min: number,
  what: string,
  infinite = false,
): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot create ${what}: expected a number, received ${typeof value}`,
    );
  }
  const ok = Number.isInteger(value) || (infinite && value === Infinity);
  if (!ok || value < min) {
    throw new RangeError(
      `Cannot create ${what}: expected an integer >= ${min}${
        infinite ? " or Infinity" : ""
      }, received ${formatReceived(value)}`,
    );
  }
  return value;
}
