/**
 * `setTimeout()`, `setInterval()` and `AbortSignal.timeout()` as a
 * simulated host's code sees them: timers on the host's loop, on the
 * virtual clock, so that code written for them (`@std/async`'s `delay` and
 * `deadline`, a streamed body that waits between chunks) runs in a
 * simulation as it would on a machine, but from the seed. Code outside
 * the hosts (the test that awaits `run()`) keeps the real timers.
 *
 * @module
 */

import type { Handle, TimerHandle } from "../loop/handle.ts";
import type { SimNetLoop } from "./_sim_loop.ts";
import type { SimHost } from "./_sim_world.ts";

/** The longest delay a timer takes, in milliseconds; longer ones are 1. */
const TIMEOUT_MAX = 2 ** 31 - 1;

/** The real timers, for the run's own waits (a run replaces the globals). */
const realSetTimeout = setTimeout as unknown as (
  fn: () => void,
  ms: number,
) => number;
const realClearTimeout = clearTimeout;

/** Where the ids of virtual timers start: clear of the real ones. */
const FIRST_ID = 2 ** 31;

/**
 * What Deno's timer objects (Node's `Timeout` and `Immediate`) have for
 * keeping the process alive: `ref()`/`unref()` (the run does not wait for
 * a host's timers either way) and `hasRef()`, which tells which was last.
 */
class SimRefs {
  #refed = true;

  ref(): this {
    this.#refed = true;
    return this;
  }

  unref(): this {
    this.#refed = false;
    return this;
  }

  hasRef(): boolean {
    return this.#refed;
  }
}

/**
 * A host's `setImmediate()`: a callback on its loop, shaped as the
 * `Immediate` Deno's returns.
 */
export class SimImmediate extends SimRefs {
  #handle: Handle | null;

  constructor(handle: Handle | null) {
    super();
    this.#handle = handle;
  }

  /** Cancels the callback, if it has not run. */
  cancel(): void {
    this.#handle?.cancel();
    this.#handle = null;
  }

  /** `using`: cancels the callback, as `clearImmediate()` does. */
  [Symbol.dispose](): void {
    this.cancel();
  }
}

/**
 * A virtual timer, shaped as the object Deno's `setTimeout()` returns
 * (Node's `Timeout`): `ref()`/`unref()` (the run does not wait for timers
 * either way), `hasRef()`, `refresh()`, `close()`, `Symbol.dispose` (for
 * `using`) and its number id.
 */
export class SimTimeout extends SimRefs {
  readonly #id: number;
  readonly #timers: SimTimers;
  #handle: TimerHandle | null = null;
  #arm: (() => TimerHandle | null) | null;

  constructor(id: number, timers: SimTimers, arm: () => TimerHandle | null) {
    super();
    this.#id = id;
    this.#timers = timers;
    this.#arm = arm;
    this.#handle = arm();
  }

  /** Schedules the next run (an interval's, or a refresh). */
  rearm(): void {
    this.#handle?.cancel();
    this.#handle = this.#arm?.() ?? null;
  }

  /** Cancels the timer for good. */
  cancel(): void {
    this.#handle?.cancel();
    this.#handle = null;
    this.#arm = null;
  }

  refresh(): this {
    if (this.#arm === null) return this;
    this.rearm();
    // Fired already: armed again, it can be cleared again.
    if (this.#handle !== null) this.#timers.track(this.#id, this);
    return this;
  }

  close(): this {
    this.#timers.clear(this);
    return this;
  }

  /** `using`: clears the timer, as `clearTimeout()` does. */
  [Symbol.dispose](): void {
    this.#timers.clear(this);
  }

  [Symbol.toPrimitive](): number {
    return this.#id;
  }
}

/** The virtual timers of one run. */
export class SimTimers {
  readonly #loopRunning: () => SimNetLoop | undefined;
  readonly #hostOf: (loop: SimNetLoop) => SimHost;
  readonly #uncaught: (error: unknown) => void;
  readonly #timers = new Map<number, SimTimeout>();
  readonly #outside = new Set<Promise<unknown>>();
  // The delivery of the work started last (see `outside()`).
  #lastOutside: Promise<unknown> = Promise.resolve();
  #nextId = FIRST_ID;

  /**
   * @param loopRunning The loop of the host whose code is running, if any
   * (a host has a loop of its own for each life).
   * @param hostOf The host a loop belongs to.
   * @param uncaught Takes what a callback threw: on Deno, an uncaught error
   * that ends the process, not one the loop's exception handler logs.
   */
  constructor(
    loopRunning: () => SimNetLoop | undefined,
    hostOf: (loop: SimNetLoop) => SimHost,
    uncaught: (error: unknown) => void,
  ) {
    this.#loopRunning = loopRunning;
    this.#hostOf = hostOf;
    this.#uncaught = uncaught;
  }

  /**
   * Work a host's code started outside the simulation (`crypto.subtle`, a
   * file call), which the machine finishes when it does: its result
   * reaches the host on its loop, after the run has waited for it (see
   * `settleOutside()`) and after the results of work started before it,
   * so at the same step and in the same order on every replay.
   *
   * @param work The promise of the work, started now.
   * @returns The promise the host's code gets instead, or `null` when no
   * host's code is running (the caller returns `work`).
   */
  outside<T>(work: Promise<T>): Promise<T> | null {
    const loop = this.#loopRunning();
    if (loop === undefined) return null;
    const host = this.#hostOf(loop);
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    // A host that is down, or code from a life it lost, hears nothing.
    const deliver = (fn: () => void) => {
      if (!loop.isClosed() && host.loop === loop && host.up) {
        loop.callSoon(fn);
      }
    };
    // Delivered in the order the work was started, not the order the
    // machine's threads finish it in.
    const settled = Promise.allSettled([this.#lastOutside, work]).then(
      ([, r]) =>
        r.status === "fulfilled"
          ? deliver(() => resolve(r.value))
          : deliver(() => reject(r.reason)),
    );
    this.#lastOutside = settled;
    this.#outside.add(settled);
    settled.finally(() => this.#outside.delete(settled));
    return promise;
  }

  /** Whether work started by `outside()` is still running. */
  outsidePending(): boolean {
    return this.#outside.size > 0;
  }

  /**
   * Waits until the work hosts started outside the simulation has
   * settled, and its results are on the hosts' loops.
   *
   * @param timeout How long to wait, in real seconds.
   * @returns Whether it settled in time.
   */
  async settleOutside(timeout: number): Promise<boolean> {
    let timer: number | undefined;
    const late = new Promise<false>((r) => {
      timer = realSetTimeout(() => r(false), timeout * 1000);
    });
    try {
      while (this.#outside.size > 0) {
        const all = Promise.allSettled([...this.#outside]).then(() => true);
        if (!await Promise.race([all, late])) return false;
      }
      return true;
    } finally {
      realClearTimeout(timer);
    }
  }

  /**
   * Fails the run with `error`, as an error the running host's code left
   * uncaught (for a refusal that cannot be thrown where it is seen).
   *
   * @param error What the host's code did wrong.
   */
  fail(error: Error): void {
    this.#uncaught(error);
  }

  /** Whether a host's code is running now. */
  inHost(): boolean {
    return this.#loopRunning() !== undefined;
  }

  /** Calls a host's callback; what it throws is uncaught. */
  #call(fn: unknown, args: unknown[]): void {
    try {
      (fn as (...a: unknown[]) => unknown)(...args);
    } catch (error) {
      this.#uncaught(error);
    }
  }

  /**
   * `setTimeout()` (or, `repeat`, `setInterval()`) called now: a timer on
   * the loop of the host whose code calls it, with Deno's rules for the
   * delay (a delay under 1 ms, not a number, or over 2^31 - 1 ms is 1 ms).
   * A host that is down (or code from a life it lost in a crash) gets a
   * timer that never fires.
   *
   * @returns The timer, or `null` when no host's code is running (or
   * `fn` is not a function): the caller makes a real one.
   */
  set(
    fn: unknown,
    ms: unknown,
    args: unknown[],
    repeat: boolean,
  ): SimTimeout | null {
    const loop = this.#loopRunning();
    if (loop === undefined || typeof fn !== "function") return null;
    const host = this.#hostOf(loop);
    let after = Number(ms);
    if (!(after >= 1 && after <= TIMEOUT_MAX)) after = 1;
    const id = this.#nextId++;
    const fire = () => {
      if (repeat) timer.rearm();
      else this.#timers.delete(id);
      this.#call(fn, args);
    };
    const timer: SimTimeout = new SimTimeout(id, this, () => {
      if (loop.isClosed() || host.loop !== loop || !host.up) return null;
      return loop.callLater(after / 1000, fire);
    });
    this.#timers.set(id, timer);
    return timer;
  }

  /**
   * `setImmediate()` called now: a callback on the loop of the host whose
   * code calls it, run in the loop's next iteration, so that the run sees
   * it (a host spinning on it is a busy loop) and it runs in the seed's
   * order. A host that is down gets one that never runs.
   *
   * @returns The immediate, or `null` when no host's code is running (or
   * `fn` is not a function): the caller makes a real one.
   */
  immediate(fn: unknown, args: unknown[]): SimImmediate | null {
    const loop = this.#loopRunning();
    if (loop === undefined || typeof fn !== "function") return null;
    const host = this.#hostOf(loop);
    if (loop.isClosed() || host.loop !== loop || !host.up) {
      return new SimImmediate(null);
    }
    const immediate = () => this.#call(fn, args);
    return new SimImmediate(loop.callSoon(immediate));
  }

  /**
   * `AbortSignal.timeout(ms)` called now: a signal that a timer on the loop
   * of the host whose code calls it aborts with a `TimeoutError`, after
   * `ms` (checked by the caller) of virtual time. A host that is down gets
   * one that never aborts.
   *
   * @param ms The delay, a whole number of milliseconds >= 0.
   * @returns The signal, or `null` when no host's code is running: the
   * caller makes a real one.
   */
  signalTimeout(ms: number): AbortSignal | null {
    const loop = this.#loopRunning();
    if (loop === undefined) return null;
    const host = this.#hostOf(loop);
    const controller = new AbortController();
    if (!loop.isClosed() && host.loop === loop && host.up) {
      loop.callLater(ms / 1000, () =>
        controller.abort(
          new DOMException("Signal timed out.", "TimeoutError"),
        ));
    }
    return controller.signal;
  }

  /**
   * Keeps `timer` for `clear()` again: a timeout that fired is forgotten,
   * and `refresh()` arms it anew.
   *
   * @param id Its id.
   * @param timer The timer.
   */
  track(id: number, timer: SimTimeout): void {
    this.#timers.set(id, timer);
  }

  /**
   * `clearTimeout()` or `clearInterval()` of `timer`.
   *
   * @returns Whether it was a virtual timer (else the real call clears it).
   */
  clear(timer: unknown): boolean {
    const id = timer instanceof SimTimeout
      ? timer[Symbol.toPrimitive]()
      : typeof timer === "number"
      ? timer
      : NaN;
    const found = this.#timers.get(id);
    if (found === undefined) return timer instanceof SimTimeout;
    this.#timers.delete(id);
    found.cancel();
    return true;
  }
}
