/**
 * `BaseEventLoop`: the scheduler half of the event loop — ready queue, timer
 * heap, run/stop/close, exception handling and debug mode.
 *
 * @module
 */

import { Future } from "../futures/future.ts";
import {
  formatReceived,
  InvalidStateError,
  TimeoutError,
} from "../futures/errors.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import {
  checkBoolean,
  Deque,
  foreignTurnRequested,
  hostHop,
  hostImmediate,
  pendingResumptions,
  plainResultRefusals,
  resumedBy,
  setRunningLoop,
  takeMicrotaskCheckpoint,
  taskOfCallback,
} from "../futures/_runtime.ts";
import {
  type Awaitable,
  type Coroutine,
  ensureFuture,
  Task,
  type TaskOptions,
} from "../tasks/task.ts";
import {
  checkCallback,
  checkHandle,
  Handle,
  linkHandle,
  noteSourceTraceback,
  placeTimer,
  runHandle,
  setAfterRun,
  TimerHandle,
  unlinkHandle,
} from "./_handle.ts";
import { checkExecutor, checkExecutorFn } from "./_executor_jobs.ts";
import { TimerHeap } from "./_timer_heap.ts";
import type {
  ExceptionContext,
  ExceptionHandler,
  SchedulingLoop,
} from "./event_loop.ts";

// How long a busy loop may run callbacks before it lets the host poll I/O
// and timers, in seconds; and how many callbacks it runs between clock
// reads when no timer forces one (a clock read costs ~140 ns in Deno).
const HOST_POLL_BUDGET = 0.001;
const CALLBACKS_PER_CLOCK_READ = 256;
// Deno's runtime (Tokio's single-threaded scheduler) polls its I/O driver
// when it has nothing to run, or else once every 61 scheduler ticks; a
// runtime that keeps itself busy (each `setImmediate` hop is one tick)
// reaches the driver only by the count. So a busy loop's host turn is up
// to this many hops, ending early once the host delivers an event.
const HOPS_PER_IO_POLL = 61;
// Timers scheduled within one iteration share a clock read, refreshed after
// this many callbacks (see callLater).
const CALLBACKS_PER_TIMER_BASE = 16;
// How many microtask turns the loop gives resumed async code to wait again
// before it lets every pending microtask run with one host hop instead:
// code awaiting a foreign promise never tells it, and a step through deep
// async code (functions returning into each other, nested TaskGroups and
// timeout scopes) takes more turns than this without waiting. The hop lets
// such a step finish before the next callback, as asyncio's would.
const MAX_RESUME_TURNS = 16;

// Deno's setTimeout(ms) fires about 1.15 ms after the whole milliseconds
// of `ms` (at least one). An idle loop arms its host timer early by the
// lateness it has seen (the median of the last LATENESS_SAMPLES firings,
// plus a margin, bounded so that a host that was once very late cannot
// make it wake far too early) and waits out the rest, under ~2 ms, by
// blocking the thread with `Atomics.wait`, which is precise to tens of
// microseconds and costs no CPU, where spinning on hops would burn it. A
// wait the host timer overshoots by no more than HOST_TIMER_TOLERANCE uses
// the host timer. In seconds.
const HOST_TIMER_LATENESS = 0.00115;
const HOST_TIMER_MARGIN = 0.00005;
const MAX_HOST_TIMER_EARLY = 0.002;
const LATENESS_SAMPLES = 15;
const HOST_TIMER_TOLERANCE = 0.0002;

/** The longest delay a host timer takes, in ms (a signed 32-bit integer). */
const MAX_HOST_TIMER_MS = 2 ** 31 - 1;
// While blocked the thread serves nothing, so I/O that arrives then waits
// for the timer (at most ~2 ms). While the loop has I/O in flight
// (ioPending()), blocking is a budget: BLOCK_SHARE of the time that
// passes, saved up to MAX_BLOCK_SAVED seconds. A loop whose timers fall due
// every millisecond or so runs out of it and waits on the host timer alone
// (about a millisecond late) rather than block its I/O most of the time.
// Without I/O in flight it blocks as long as it needs; but a promise of
// the host that the loop does not know of (a `fetch()` awaited in a task)
// settles only when the host polls its I/O driver, which a host kept busy
// by blocks and hops does once every HOPS_PER_IO_POLL ticks (some 60 ms of
// 1 ms timers). So once blocks add up to HOST_IDLE_EVERY seconds since the
// host last polled, the next short wait begins with a zero-delay host
// timer instead of a `setImmediate` hop: the host idles until it fires and
// polls its I/O on the way (more promptly than the busy loop's up to
// HOPS_PER_IO_POLL hops, and for less CPU).
const BLOCK_SHARE = 0.05;
const MAX_BLOCK_SAVED = 0.005;
const HOST_IDLE_EVERY = 0.002;
// Atomics.wait wakes some 80 µs after its timeout (Linux's default timer
// slack of 50 µs, then the wake-up itself), so a block ends BLOCK_SLACK
// seconds early and the rest of the wait, if any is left, is spun on the
// clock.
const BLOCK_SLACK = 0.00006;

// A value the base loop logs, as text: a string as it is, an error by its
// stack (or name and message) and its causes, the fields of a plain object
// and anything else as error messages show a value received.
function plainText(value: unknown, depth = 0): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) {
    let text = value.stack ?? `${value.name}: ${value.message}`;
    if (value.cause !== undefined && depth < 8) {
      text += `\n  [cause]: ${plainText(value.cause, depth + 1)}`;
    }
    return text;
  }
  if (
    typeof value === "object" && value !== null &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    const fields = Object.entries(value).map(([key, field]) =>
      `${key}: ${formatReceived(field)}`
    );
    return `{ ${fields.join(", ")} }`;
  }
  return formatReceived(value);
}

function checkSeconds(value: unknown, what: string, name: string): number {
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(
      `Cannot call ${what}(): ${name} must be a number of seconds, received ${
        formatReceived(value)
      }`,
    );
  }
  return value;
}

/**
 * The scheduler of PEP 3156's event loop, without I/O.
 *
 * It keeps a FIFO ready queue and a timer heap. Each iteration moves due
 * timers to the ready queue and runs the callbacks that were ready when the
 * iteration began; callbacks they schedule run in the next one. The loop
 * runs iterations back to back while there is work. After a callback
 * that resumed an async function (an awaited future is done, a task
 * started) it lets microtasks run until the function waits again, before
 * the next callback: an async task's step runs where a generator task's
 * would, in the order asyncio runs them, however busy the loop is. (Code
 * awaiting a foreign promise that is still pending is not waited for past
 * 16 microtask turns: it resumes whenever the host settles that promise.) At least every millisecond of busy running it hands Deno a turn
 * that polls I/O and host timers, so sockets are served within about a
 * millisecond even under a flood of callbacks. When nothing is ready it
 * waits without spinning until its earliest timer is near: one host timer
 * is armed a little ahead of it (Deno's timers fire about a millisecond
 * late) and a short block of the thread (`Atomics.wait`; while I/O is in
 * flight, within a budget of 5% of the time) finishes the wait, so timers
 * fire within about a tenth of a millisecond of their time; `callSoon`
 * wakes the loop at once.
 *
 * I/O loops (`DenoEventLoop`) and the virtual-time test loop extend it.
 *
 * PEP 3156: the event loop's scheduling methods.
 *
 * @example Callbacks and timers
 * ```ts
 * import { BaseEventLoop } from "@tulip/tulip/loop";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new BaseEventLoop();
 * const seen: string[] = [];
 * loop.callLater(0.002, () => { seen.push("later"); loop.stop(); });
 * loop.callSoon((x: string) => seen.push(x), "soon");
 * await loop.runForever();
 * assertEquals(seen, ["soon", "later"]);
 * loop.close();
 * ```
 */
export class BaseEventLoop implements SchedulingLoop, AsyncDisposable {
  #ready = new Deque<Handle>();
  #timers = new TimerHeap();
  #running = false;
  #stopping = false;
  #closed = false;
  #debug = false;
  #exceptionHandler: ExceptionHandler | null = null;
  #wake: (() => void) | null = null;
  #hostTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  #hostTimerDeadline = Infinity;
  #hostLateness: number[] = [];
  #hostEarly = HOST_TIMER_LATENESS + HOST_TIMER_MARGIN;
  #blocker: Int32Array | null = null;
  #blockable = true;
  #blockSaved = MAX_BLOCK_SAVED;
  #blockSavedAt = -1;
  #blockedSinceIdle = 0;
  #finished: Promise<void> | null = null;
  #timerBase = -1;
  #iterating = false;
  // Callbacks of the current iteration not run yet (see #runRest()).
  #left = 0;
  #hostPolled = false;

  #slowCallbackDuration = 0.1;

  /**
   * In debug mode, callbacks that take longer than this many seconds are
   * reported through the exception handler.
   *
   * @default {0.1}
   */
  get slowCallbackDuration(): number {
    return this.#slowCallbackDuration;
  }

  /**
   * Sets the duration, in seconds, from which debug mode reports a
   * callback as slow; `Infinity` reports none.
   *
   * @throws {TypeError} When `seconds` is not a number.
   * @throws {RangeError} When `seconds` is negative.
   */
  set slowCallbackDuration(seconds: number) {
    if (typeof seconds !== "number" || Number.isNaN(seconds)) {
      throw new TypeError(
        `Cannot set slowCallbackDuration: it must be a number of seconds, received ${
          formatReceived(seconds)
        }`,
      );
    }
    if (seconds < 0) {
      throw new RangeError(
        `Cannot set slowCallbackDuration: it must be >= 0 seconds, received ${
          formatReceived(seconds)
        }`,
      );
    }
    this.#slowCallbackDuration = seconds;
  }

  /**
   * Returns the loop's monotonic clock, in seconds.
   *
   * PEP 3156: `loop.time()`.
   *
   * @returns The current loop time in seconds.
   */
  time(): number {
    return performance.now() / 1000;
  }

  /**
   * Runs the loop until `stop()` is called.
   *
   * PEP 3156: `loop.run_forever()`.
   *
   * @returns A promise that resolves when the loop has stopped.
   * @throws {InvalidStateError} When the loop is closed or already running.
   */
  runForever(): Promise<void> {
    this.#enter("runForever");
    const finished = this.#runLoop();
    this.#finished = finished;
    return finished;
  }

  /**
   * Runs the loop until `aw` is done and resolves with its result (or
   * rejects with its error). `aw` may be a future, a task, a generator
   * coroutine, an async function's promise, or any `PromiseLike`; or an
   * async or generator function, uncalled, which runs as a task of this
   * loop. Pass an async `main` uncalled, `runUntilComplete(main)`, where
   * asyncio code writes `run_until_complete(main())`: called, its body
   * starts at once, before the loop runs, and a `sleep()` there finds no
   * loop unless one was made current (`setEventLoop()`). With a `timeout`,
   * make the task yourself (`createTask(main)`) to keep a handle on it: the
   * timeout leaves it pending.
   *
   * With a `timeout`, the loop runs at most that long (in loop time, so a
   * virtual-time loop jumps there): if it expires before `aw` is done, the
   * promise rejects with `TimeoutError` and `aw` is **not** cancelled — it
   * goes on the next time the loop runs (cancel it, or run the loop again
   * to finish it).
   *
   * PEP 3156: `loop.run_until_complete(future, timeout=None)`.
   *
   * @typeParam T The type of the result.
   * @param aw What to wait for, or an async or generator function to run
   * as a task.
   * @param timeout The most seconds to run for; `undefined` or `null`: no
   * limit.
   * @returns A promise of `aw`'s result.
   * @throws {TimeoutError} When `timeout` expires before `aw` is done.
   * @throws {InvalidStateError} When `stop()` is called before `aw` is done
   * (`aw` is not cancelled), or the loop is closed or already running.
   * @throws {TypeError} When `timeout` is not a number, or `aw` is a
   * function that returned a plain value (not async).
   * @throws {RangeError} When `timeout` is negative.
   *
   * @example A timeout leaves the future pending
   * ```ts
   * import { TimeoutError } from "@tulip/tulip";
   * import { VirtualTimeLoop } from "@tulip/tulip/testing";
   * import { assertEquals, assertRejects } from "@std/assert";
   *
   * const loop = new VirtualTimeLoop();
   * const fut = loop.createFuture<string>();
   * loop.callLater(10, () => fut.setResult("late"));
   * await assertRejects(() => loop.runUntilComplete(fut, 5), TimeoutError);
   * assertEquals(fut.done(), false);
   * assertEquals(await loop.runUntilComplete(fut), "late");
   * loop.close();
   * ```
   */
  async runUntilComplete<T>(
    aw: Awaitable<T> | (() => Coroutine<T> | PromiseLike<T>),
    timeout?: number | null,
  ): Promise<T> {
    this.#checkOpen("runUntilComplete");
    if (this.#running) {
      throw new InvalidStateError(
        "Cannot call runUntilComplete(): the loop is already running",
      );
    }
    if (timeout !== undefined && timeout !== null) {
      checkSeconds(timeout, "runUntilComplete", "timeout");
      if (timeout < 0) {
        throw new RangeError(
          `Cannot call runUntilComplete(): timeout must be >= 0, received ${timeout}`,
        );
      }
    }
    let future: Future<T>;
    if (typeof aw === "function") {
      future = this.createTask(aw);
      // A function that forgot `async` is done before the loop runs for
      // what it started: refused, as run() and asyncio refuse it.
      plainResultRefusals.set(future, refusePlainResult);
    } else future = ensureFuture(aw, { loop: this });
    // A loop stopped (by the timeout, a stop()) in the iteration that made
    // the future done leaves this callback scheduled: it must not stop the
    // next run.
    let waiting = true;
    const onDone = () => {
      if (waiting) this.stop();
    };
    future.addDoneCallback(onDone);
    let expired = false;
    const timer = timeout === undefined || timeout === null
      ? null
      : this.callLater(timeout, () => {
        expired = true;
        this.stop();
      });
    try {
      await this.runForever();
    } finally {
      waiting = false;
      future.removeDoneCallback(onDone);
      timer?.cancel();
    }
    if (!future.done()) {
      if (expired) {
        throw new TimeoutError(
          `Cannot finish runUntilComplete(): the future was not done after ${timeout} seconds (it is not cancelled)`,
        );
      }
      throw new InvalidStateError(
        "Cannot finish runUntilComplete(): the loop was stopped before the future was done",
      );
    }
    return future.result();
  }

  /**
   * Runs one iteration: waits for the next event if nothing is ready (or
   * just lets the host poll when something is), then runs what is ready,
   * letting the async functions each callback resumed run until they wait
   * again before the next callback (as `runForever()` does).
   * The next event is a callback made ready (an I/O completion, a
   * `callSoonThreadsafe`), the earliest timer falling due, or `stop()`:
   * with only timers pending, one call runs the first of them, as asyncio's
   * `_run_once()` waits in its poll until the earliest timer. After a
   * `stop()` made while the loop was not running, it waits for nothing
   * (asyncio polls with a zero timeout then): it runs what is ready, and
   * the stop is spent on that iteration.
   *
   * @returns A promise that resolves after the iteration.
   * @throws {InvalidStateError} When the loop is closed or already running.
   */
  async runOnce(): Promise<void> {
    this.#enter("runOnce");
    setRunningLoop(this);
    try {
      // A stop() made before the call: poll without waiting, as asyncio's
      // _run_once() does while stopping (its selector timeout is 0).
      if (this.#ready.length > 0 || this.#stopping) await hostHop();
      else {
        // The host timer wakes the loop a little early, for a block to
        // finish the wait: wait again while the earliest timer is not due
        // yet. A clock that stood still across the wait is driven from
        // outside (a simulation): waiting cannot bring the timer closer.
        let before: number;
        let next: number | null;
        do {
          before = this.time();
          await this.#idle();
          next = this.nextTimerWhen();
        } while (
          this.#ready.length === 0 && !this.#stopping && next !== null &&
          next > this.time() && this.time() !== before
        );
      }
      setRunningLoop(this);
      this.#runIteration();
      // The async functions it resumed belong to the iteration, each run
      // before the next callback, as in runForever().
      for (;;) {
        if (pendingResumptions() > 0) await this.#letResume();
        if (this.#left === 0) break;
        this.#runRest();
      }
    } finally {
      this.#leave();
    }
  }

  /**
   * Stops the loop after the current iteration. Nothing scheduled is lost:
   * running the loop again picks up where it left off. Safe to call from
   * outside the loop (a native promise callback): a waiting loop wakes.
   *
   * PEP 3156: `loop.stop()`.
   */
  stop(): void {
    this.#stopping = true;
    if (this.#wake !== null) this.#wakeUp();
  }

  /**
   * Closes the loop: pending callbacks and timers are dropped and any
   * later scheduling throws. Calling it again does nothing.
   *
   * PEP 3156: `loop.close()`.
   *
   * @throws {InvalidStateError} When the loop is running.
   */
  close(): void {
    if (this.#running) {
      throw new InvalidStateError("Cannot close the loop: it is running");
    }
    if (this.#closed) return;
    this.#closed = true;
    this.#left = 0;
    this.#ready.clear();
    this.#timers.clear();
    this.#disarmHostTimer();
  }

  /**
   * Stops the loop if it runs, waits for it, then closes it; for
   * `await using loop = newEventLoop()`.
   *
   * @returns A promise that resolves once the loop is closed.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#running) {
      this.stop();
      await this.#finished;
    }
    this.close();
  }

  /**
   * Returns `true` while the loop runs.
   *
   * @returns Whether the loop is running.
   */
  isRunning(): boolean {
    return this.#running;
  }

  /**
   * Returns `true` once the loop is closed.
   *
   * @returns Whether the loop is closed.
   */
  isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Schedules `cb(...args)` for the next iteration. Callbacks run in the
   * order they were scheduled. Every callback the loop runs is called with
   * the loop as `this`, so that the loop's own methods may be passed
   * unbound: `loop.callLater(1, loop.stop)`, or PEP 3156's
   * `loop.callSoonThreadsafe(loop.callLater, delay, cb)`.
   *
   * `cb` may also be an immediate `Handle` (one `callSoon` returned), as
   * PEP 3156's note on Handles allows everywhere a callback goes: the
   * handle itself is queued again and returned, so its `cancel()` stops
   * this call too. It takes no extra arguments. A cancelled handle makes
   * the call a no-op that returns the handle (still cancelled).
   *
   * A coroutine function (a generator function, an async function) is
   * refused, as asyncio refuses one: calling a generator function runs
   * nothing, and an async function's error would escape the exception
   * handler. Run those with `createTask()`. The same holds for every
   * scheduling call.
   *
   * PEP 3156: `loop.call_soon()`.
   *
   * @typeParam A The callback's argument types.
   * @param cb The callback, or an immediate `Handle`.
   * @param args Its positional arguments (none with a `Handle`).
   * @returns A handle that can cancel the call.
   * @throws {TypeError} When `cb` is neither a function nor a `Handle`, or
   * is a coroutine function or a `TimerHandle`, or a `Handle` comes with
   * arguments.
   * @throws {InvalidStateError} When the loop is closed, or `cb` is a
   * `Handle` of another loop.
   *
   * @example Scheduling a handle again
   * ```ts
   * import { newEventLoop } from "@tulip/tulip";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = newEventLoop();
   * const seen: number[] = [];
   * const h = loop.callSoon((n: number) => seen.push(n), 1);
   * loop.callSoon(h);
   * loop.callSoon(() => loop.stop());
   * await loop.runForever();
   * assertEquals(seen, [1, 1]);
   * loop.close();
   * ```
   */
  callSoon<A extends unknown[]>(
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): Handle {
    if (this.#closed) this.#checkOpen("callSoon");
    if (typeof cb !== "function") {
      if (!(cb instanceof Handle)) checkCallback(cb, "call callSoon()");
      checkHandle(cb, args, "callSoon", this);
      if (cb.cancelled) return cb;
      this.#ready.push(cb);
      if (this.#wake !== null) this.#wakeUp();
      return cb;
    }
    if (cb.constructor !== Function) checkCallback(cb, "call callSoon()");
    const handle = new Handle(cb, args, this);
    this.#ready.push(handle);
    if (this.#debug) noteSourceTraceback(handle);
    if (this.#wake !== null) this.#wakeUp();
    return handle;
  }

  /**
   * Like `callSoon`, and safe to call from outside the loop's own turn —
   * a native promise callback, a worker's message, a signal listener: a
   * loop waiting for events wakes at once.
   *
   * PEP 3156: `loop.call_soon_threadsafe()`.
   *
   * @typeParam A The callback's argument types.
   * @param cb The callback, or an immediate `Handle` (see `callSoon`).
   * @param args Its positional arguments (none with a `Handle`).
   * @returns A handle that can cancel the call.
   * @throws {TypeError} As `callSoon` does.
   */
  callSoonThreadsafe<A extends unknown[]>(
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): Handle {
    if (this.#closed) this.#checkOpen("callSoonThreadsafe");
    if (cb instanceof Handle) checkHandle(cb, args, "callSoonThreadsafe", this);
    else checkCallback(cb, "call callSoonThreadsafe()");
    return this.callSoon(cb, ...args);
  }

  /**
   * Schedules `cb(...args)` to run `delay` seconds from now. A `delay` of
   * zero or less schedules it like `callSoon`, in order with other ready
   * callbacks.
   *
   * A timer never fires before the loop's clock reaches its `when`. Inside
   * a callback, "now" is the clock as read at most 16 callbacks earlier in
   * the same iteration (a clock read costs more than the rest of
   * `callLater`), as libuv does with its loop time; so a callback that has
   * been busy for a while before scheduling sees its delay counted from
   * slightly earlier. Use `callAt(loop.time() + delay, …)` for an exact
   * basis.
   *
   * `cb` may be an immediate `Handle` instead (see `callSoon`): the timer
   * calls its callback with its arguments unless the handle is cancelled
   * by then. A handle cancelled already schedules nothing, and the call
   * returns a new `TimerHandle` that is cancelled.
   *
   * PEP 3156: `loop.call_later()`.
   *
   * @typeParam A The callback's argument types.
   * @param delay The delay in seconds.
   * @param cb The callback, or an immediate `Handle`.
   * @param args Its positional arguments (none with a `Handle`).
   * @returns A handle with the due time; `cancel()` is O(1).
   * @throws {TypeError} When `delay` is not a number, or `cb` is not a
   * function or is a coroutine function (see `callSoon`).
   * @throws {InvalidStateError} When the loop is closed.
   */
  callLater<A extends unknown[]>(
    delay: number,
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): TimerHandle {
    checkSeconds(delay, "callLater", "delay");
    return this.#schedule(
      "callLater",
      this.#now() + delay,
      delay <= 0,
      cb,
      args,
    );
  }

  /**
   * Schedules `cb(...args)` at loop time `when` (see `time()`).
   *
   * `cb` may be an immediate `Handle` instead, as with `callLater`.
   *
   * PEP 3156 (as in asyncio): `loop.call_at()`.
   *
   * @typeParam A The callback's argument types.
   * @param when The loop time in seconds.
   * @param cb The callback, or an immediate `Handle`.
   * @param args Its positional arguments (none with a `Handle`).
   * @returns A handle with the due time.
   * @throws {TypeError} When `when` is not a number, or `cb` is not a
   * function or is a coroutine function (see `callSoon`).
   * @throws {InvalidStateError} When the loop is closed.
   */
  callAt<A extends unknown[]>(
    when: number,
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): TimerHandle {
    checkSeconds(when, "callAt", "when");
    return this.#schedule("callAt", when, false, cb, args);
  }

  /**
   * Calls `cb(...args)` every `interval` seconds, the first time one
   * interval from now, until the handle is cancelled or the callback
   * throws. A late call delays the following ones by as much.
   *
   * `cb` may be an immediate `Handle` instead, as with `callLater`;
   * cancelling that handle stops the repetition too.
   *
   * PEP 3156: `loop.call_repeatedly()`.
   *
   * @typeParam A The callback's argument types.
   * @param interval The interval in seconds; must be > 0.
   * @param cb The callback, or an immediate `Handle`.
   * @param args Its positional arguments (none with a `Handle`).
   * @returns A handle whose `cancel()` stops the repetition.
   * @throws {TypeError} When `interval` is not a number, or `cb` is not
   * a function or is a coroutine function (see `callSoon`).
   * @throws {RangeError} When `interval` is not > 0.
   * @throws {InvalidStateError} When the loop is closed.
   */
  callRepeatedly<A extends unknown[]>(
    interval: number,
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): TimerHandle {
    checkSeconds(interval, "callRepeatedly", "interval");
    if (!(interval > 0)) {
      throw new RangeError(
        `Cannot call callRepeatedly(): interval must be > 0, received ${interval}`,
      );
    }
    const timer = this.#schedule(
      "callRepeatedly",
      this.#now() + interval,
      false,
      cb,
      args,
    );
    setAfterRun(timer, (ok) => {
      if (ok && !timer.cancelled && !this.#closed) {
        this.#timers.push(timer, this.#now() + interval);
      }
    });
    return timer;
  }

  /**
   * Makes a future bound to this loop.
   *
   * A closed loop still makes one, as asyncio's `create_future()` does
   * (unlike `createTask()`, which must schedule a step and throws). A future
   * is only a holder for a result until a callback is attached: cleanup
   * that runs after `close()` — a protocol's `connectionLost`, a `finally`
   * block — may create and settle one, as `new Future({ loop })` always
   * could. Settling one that has done callbacks throws, since the loop can
   * no longer schedule them.
   *
   * PEP 3156: `loop.create_future()`.
   *
   * @typeParam T The type of the future's result.
   * @returns A pending future.
   */
  createFuture<T>(): Future<T> {
    return new Future<T>({ loop: this });
  }

  /**
   * Wraps a coroutine (a generator) or an async function in a `Task` and
   * schedules its first step.
   *
   * PEP 3156: `loop.create_task()` (the PEP's `Task(coro)`).
   *
   * @typeParam T The type of the task's result.
   * @param coro A generator object, or a function returning a generator or
   * a promise (an async function).
   * @param options The task's name.
   * @returns The task.
   * @throws {TypeError} When `coro` is neither, or `options` is not an
   * object like `{ name }`.
   * @throws {InvalidStateError} When the loop is closed.
   */
  createTask<T>(
    coro: Coroutine<T> | (() => Coroutine<T> | PromiseLike<T>),
    options?: TaskOptions,
  ): Task<T> {
    this.#checkOpen("createTask");
    // Options that are not an object like { name } (a name or a loop given
    // bare) go to Task as they are, to be refused there.
    const bad = options !== undefined &&
      (typeof options !== "object" || options === null ||
        typeof (options as { callSoon?: unknown }).callSoon === "function");
    return new Task(coro, bad ? options : { ...options, loop: this });
  }

  /**
   * Sets the function called with errors the loop could not deliver
   * elsewhere; `null` restores the default (log to the console).
   *
   * @param handler The handler, called as `handler(loop, context)`.
   * @throws {TypeError} When `handler` is neither a function nor `null`.
   */
  setExceptionHandler(handler: ExceptionHandler | null): void {
    if (handler !== null && typeof handler !== "function") {
      throw new TypeError(
        `Cannot set exception handler: expected a function or null, received ${typeof handler}`,
      );
    }
    this.#exceptionHandler = handler;
  }

  /**
   * Returns the exception handler, or `null` when the default is in use.
   *
   * @returns The handler.
   */
  getExceptionHandler(): ExceptionHandler | null {
    return this.#exceptionHandler;
  }

  /**
   * Passes `context` to the exception handler. An error thrown by the
   * handler itself is passed to `defaultExceptionHandler()` as
   * "Unhandled error in exception handler"; one thrown by
   * `defaultExceptionHandler()` (a subclass's) is logged with
   * `console.error`, as asyncio logs it. None is thrown back to the caller.
   *
   * @param context What happened.
   * @throws {TypeError} When `context` is not an object (a mistake of the
   * caller's, not of a handler's).
   */
  callExceptionHandler(context: ExceptionContext): void {
    if (typeof context !== "object" || context === null) {
      throw new TypeError(
        `Cannot call callExceptionHandler(): context must be an object like { message, exception }, received ${
          formatReceived(context)
        }`,
      );
    }
    const handler = this.#exceptionHandler;
    if (handler === null) {
      try {
        this.defaultExceptionHandler(context);
      } catch (exception) {
        this.#logLastResort(
          "Exception in default exception handler",
          exception,
        );
      }
      return;
    }
    try {
      handler(this as never, context);
    } catch (exception) {
      try {
        this.defaultExceptionHandler({
          message: "Unhandled error in exception handler",
          exception,
          context,
        });
      } catch (exception) {
        this.#logLastResort(
          "Exception in default exception handler while handling an unexpected error in custom exception handler",
          exception,
        );
      }
    }
  }

  // Logs an error the exception handlers themselves threw; if the console
  // fails too, nothing sensible is left to do.
  #logLastResort(message: string, exception: unknown): void {
    try {
      console.error(message, this.logText(exception));
    } catch {
      // The console itself failed.
    }
  }

  /**
   * Logs `context` with `console.error`: the message, then the other
   * fields and the exception as text (see `logText()`). They are
   * passed as text because the console keeps the arguments of its last
   * thousand messages alive (V8 stores them for an inspector that may
   * attach), and an error keeps alive the objects its stack passed
   * through: a server that logs its peers' errors would otherwise keep
   * their protocols and transports, and all they hold, for ever. A context
   * without a message (or with an empty one) is logged as "Unhandled
   * exception in event loop", as asyncio's is.
   *
   * @param context What happened.
   */
  defaultExceptionHandler(context: ExceptionContext): void {
    const { message, exception, ...details } = context;
    const parts: string[] = [
      message === undefined || message === null || message === ""
        ? "Unhandled exception in event loop"
        : message,
    ];
    if (Object.keys(details).length > 0) parts.push(this.logText(details));
    if (exception !== undefined) parts.push(this.logText(exception));
    console.error(...parts);
  }

  /**
   * Turns what `defaultExceptionHandler()` logs into text: a string as it
   * is, an error by its stack and causes, anything else briefly. A
   * `DenoEventLoop` prints as Deno's console does.
   *
   * @param value A field of the report, or its exception.
   * @returns The text.
   */
  protected logText(value: unknown): string {
    return plainText(value);
  }

  /**
   * Turns debug mode on or off: slow callbacks are reported (those that
   * take `slowCallbackDuration` seconds or more, a task's step by the
   * task's name; the async functions a callback resumed run after it,
   * outside it, and are timed on their own), an error thrown by a callback
   * scheduled in debug mode is reported with where it was scheduled (the
   * context's `sourceTraceback`, as asyncio's handles keep it), and the
   * report of a future whose error is never retrieved (made in every mode,
   * when the future is collected) carries the error's stack as
   * `sourceTraceback`.
   *
   * @param enabled Whether debug mode is on.
   * @throws {TypeError} When `enabled` is not a boolean.
   */
  setDebug(enabled: boolean): void {
    checkBoolean(enabled, "call setDebug()", "enabled");
    this.#debug = enabled;
  }

  /**
   * Returns `true` in debug mode.
   *
   * @returns Whether debug mode is on.
   */
  getDebug(): boolean {
    return this.#debug;
  }

  /**
   * The loop's one idle wait: called when nothing is ready, with the
   * earliest timer's due time, and resolved when the loop should run its
   * next iteration. Scheduling a callback (`callSoon` — which is also how
   * I/O completions arrive — or a timer) resolves it at once. Otherwise:
   *
   * - No timer (`deadline` is `null`): it waits for that callback alone.
   * - The deadline has passed: it resolves after one macrotask hop, so
   *   that the host polls its I/O.
   * - The deadline is closer than the host timer can fire (a millisecond
   *   plus the host's measured lateness): after a host turn it blocks
   *   the thread with `Atomics.wait` for the rest — with I/O in flight
   *   (`ioPending()`) only within the block budget (BLOCK_SHARE of the
   *   time that passes); without it always, the turn polling I/O once
   *   blocks have kept the host from it for HOST_IDLE_EVERY seconds. Else
   *   it waits on a host timer armed for the deadline.
   * - Further away: it arms one host timer and waits. The timer is armed
   *   early by the host's measured lateness unless the budget cannot pay
   *   for the block that then finishes the wait (the next call, now close
   *   to the deadline, blocks); then it is armed for the deadline and
   *   fires about a millisecond late.
   *
   * Subclasses replace it: the virtual-time loop jumps its clock instead.
   *
   * @param deadline The loop time, in seconds, of the earliest timer, or
   * `null` when there is none.
   * @returns A promise that resolves when the loop should iterate.
   */
  protected waitForEvents(deadline: number | null): Promise<void> {
    if (deadline === null) return new Promise((r) => this.#wake = r);
    const timeout = deadline - this.time();
    if (timeout <= 0) {
      this.#hostPolled = true;
      return hostHop();
    }
    // Closer to the deadline than the host timer can fire (its soonest is
    // one millisecond plus its lateness), unless it would be only a little
    // late: block for the rest if the budget allows.
    const short = timeout <= this.#hostEarly + 0.001 - HOST_TIMER_TOLERANCE;
    const budgeted = this.ioPending();
    if (
      short && this.#blockable && (!budgeted || this.#blockBudget() >= timeout)
    ) {
      this.#hostPolled = true;
      return this.#blockUntil(deadline, budgeted);
    }
    // Arm the host timer early only when the budget will pay for the
    // block that finishes the wait; else let it fire late, once.
    // (The host timer firing lets the host idle, so unbudgeted blocks may
    // follow it.)
    const early = !short && this.#blockable &&
      (!budgeted || this.#blockBudget() >= this.#hostEarly);
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#armHostTimer(deadline, early ? timeout - this.#hostEarly : timeout);
    });
  }

  /**
   * Returns whether I/O may complete while the loop waits for a timer. A
   * thread blocked to finish such a wait serves none, so then the loop
   * blocks only within its budget (see `waitForEvents()`). The base loop
   * has no I/O of its own: `false`.
   *
   * @returns Whether I/O is in flight.
   */
  protected ioPending(): boolean {
    return false;
  }

  /**
   * Checks a `Handle` given where a callback goes (PEP 3156's note on
   * Handles) in a subclass's own method, in `callSoon()`'s words: an
   * immediate handle stands for its callback and arguments, so it takes no
   * more arguments, and a `TimerHandle` cannot stand for a callback.
   *
   * @param handle The handle given.
   * @param args The arguments given with it.
   * @param what The method's name, for the error.
   * @throws {TypeError} When `handle` is a `TimerHandle`, or `args` is not
   * empty.
   */
  protected checkHandle(handle: Handle, args: unknown[], what: string): void {
    checkHandle(handle, args, what);
  }

  /**
   * Checks the function a subclass's `runInExecutor()` was given, in
   * `DenoEventLoop`'s words: a generator or async generator function is a
   * coroutine, which `createTask()` runs, as asyncio's
   * `run_in_executor()` refuses a coroutine function.
   *
   * @param fn The function given.
   * @throws {TypeError} When `fn` is a generator or async generator
   * function.
   */
  protected checkExecutorFn(fn: (...args: never[]) => unknown): void {
    checkExecutorFn(fn);
  }

  /**
   * Checks the executor a subclass's `runInExecutor()` was given, in
   * `DenoEventLoop`'s words: `null` or `undefined` stand for the default
   * one, anything else must have a `submit()` method.
   *
   * @param executor The executor given.
   * @throws {TypeError} When `executor` is neither absent nor has a
   * `submit()` method.
   */
  protected checkExecutor(executor: unknown): void {
    checkExecutor(executor);
  }

  /**
   * Returns the number of callbacks ready to run.
   *
   * @returns The length of the ready queue.
   */
  protected readyCount(): number {
    return this.#ready.length;
  }

  /**
   * Returns the latest due time of the timers an iteration starting at
   * `now` runs: `now` itself. A loop whose clock adds its steps up in
   * floats (a virtual clock) allows a rounding error more, so that a timer
   * set at 0.2 for 0.1 later (0.30000000000000004) is due at 0.3.
   *
   * @param now The loop's time as the iteration starts.
   * @returns The due time in seconds.
   */
  protected dueBy(now: number): number {
    return now;
  }

  /**
   * Returns when the earliest live timer is due, in loop time, or `null`
   * when there is none.
   *
   * @returns The due time in seconds, or `null`.
   */
  protected nextTimerWhen(): number | null {
    return this.#timers.peek()?.when ?? null;
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    const state = this.#closed
      ? "closed"
      : this.#running
      ? "running"
      : "stopped";
    return `${this.constructor.name} ${state}`;
  }

  /** How Deno's `console.log` prints a loop. */
  [Symbol.for("Deno.customInspect")](): string {
    return `${this[Symbol.toStringTag]} ready=${this.#ready.length} timers=${
      this.#timers.size - this.#timers.cancelledCount
    }`;
  }

  #checkOpen(what: string): void {
    if (this.#closed) {
      throw new InvalidStateError(`Cannot call ${what}(): the loop is closed`);
    }
  }

  #enter(what: string): void {
    this.#checkOpen(what);
    if (this.#running) {
      throw new InvalidStateError(
        `Cannot call ${what}(): the loop is already running`,
      );
    }
    this.#running = true;
  }

  #leave(): void {
    this.#stopping = false;
    this.#running = false;
    this.#wake = null;
    this.#disarmHostTimer();
    // Runs interleave (each awaits the host), so the slot is not a stack:
    // clear it only if this loop holds it.
    if (getRunningLoop() === this) setRunningLoop(null);
  }

  async #runLoop(): Promise<void> {
    setRunningLoop(this);
    const ready = this.#ready;
    let busySince = -1;
    let sinceClock = 0;
    try {
      // Every run polls the host at least once, so that a program driving
      // the loop in short runs still lets pending I/O complete.
      await hostHop();
      for (;;) {
        setRunningLoop(this);
        let pollHost = false;
        // Run iterations back to back while there is work. The clock is
        // read every few hundred callbacks (across idle waits too, which a
        // microtask may end without the host ever polling) to make sure
        // the host gets a turn at least every HOST_POLL_BUDGET seconds.
        for (;;) {
          sinceClock +=
            (this.#left > 0 ? this.#runRest() : this.#runIteration()) + 1;
          if (this.#stopping && this.#left === 0) break;
          if (sinceClock >= CALLBACKS_PER_CLOCK_READ) {
            sinceClock = 0;
            const now = this.time();
            if (busySince < 0) busySince = now;
            else if (now - busySince > HOST_POLL_BUDGET) {
              pollHost = true;
              break;
            }
          }
          if (
            ready.length === 0 || pendingResumptions() > 0 ||
            (this.#left === 0 && foreignTurnRequested())
          ) break;
        }
        // A stop() ends the run once the iteration is over: with the async
        // functions its last callback resumed, which run below.
        if (
          this.#stopping && this.#left === 0 && pendingResumptions() === 0
        ) break;
        // An async function the last callback resumed runs in microtasks;
        // an `await future` there reaches Future.then() a microtask later.
        // Let it run until it waits again, before the iteration's next
        // callback, as asyncio runs a task's step. It is part of the
        // iteration: a stop() there ends the run once the iteration is
        // over, as in a generator. (#letResume() inline: its own promise
        // would cost a microtask turn per resumption, here and below.)
        if (pendingResumptions() > 0) {
          const start = this.#debug ? this.time() : 0;
          const by = this.#debug ? resumedBy() : undefined;
          let turns = 0;
          do await null; while (
            pendingResumptions() > 0 && ++turns < MAX_RESUME_TURNS
          );
          if (turns === MAX_RESUME_TURNS) await hostHop();
          takeMicrotaskCheckpoint();
          if (this.#debug) this.#reportSlowResume(start, by);
          if (this.#stopping && this.#left === 0) break;
        } else if (this.#left === 0 && foreignTurnRequested()) {
          // Code no task runs, which futures of this iteration resumed:
          // one turn at the iteration's end.
          await null;
          takeMicrotaskCheckpoint();
          if (this.#stopping) break;
        }
        // The iteration's other callbacks run before the host's turn.
        if (this.#left > 0 && !pollHost) continue;
        this.#hostPolled = false;
        if (pollHost) await this.#pollHost();
        else if (ready.length === 0) await this.#idle();
        else continue;
        // The host may have resumed async code too.
        if (pendingResumptions() > 0) {
          const start = this.#debug ? this.time() : 0;
          const by = this.#debug ? resumedBy() : undefined;
          let turns = 0;
          do await null; while (
            pendingResumptions() > 0 && ++turns < MAX_RESUME_TURNS
          );
          if (turns === MAX_RESUME_TURNS) await hostHop();
          takeMicrotaskCheckpoint();
          if (this.#debug) this.#reportSlowResume(start, by);
        }
        if (pollHost || this.#hostPolled) busySince = -1;
      }
    } finally {
      this.#finished = null;
      this.#leave();
    }
  }

  /**
   * Lets the async functions a callback resumed run in microtasks until
   * each waits again: up to MAX_RESUME_TURNS turns, then a host hop (for
   * runOnce(); the run loop has it inline).
   */
  async #letResume(): Promise<void> {
    const start = this.#debug ? this.time() : 0;
    const by = this.#debug ? resumedBy() : undefined;
    let turns = 0;
    do await null; while (
      pendingResumptions() > 0 && ++turns < MAX_RESUME_TURNS
    );
    if (turns === MAX_RESUME_TURNS) await hostHop();
    takeMicrotaskCheckpoint();
    if (this.#debug) this.#reportSlowResume(start, by);
  }

  /**
   * Debug mode: reports the async functions a callback resumed when they
   * ran longer than `slowCallbackDuration` before waiting again (they run
   * in microtasks, outside any handle; asyncio times such a task step as
   * any callback), by their task's name when the task resumed (`by`, see
   * `resumedBy()`) is known.
   */
  #reportSlowResume(start: number, by: unknown): void {
    const took = this.time() - start;
    if (took >= this.slowCallbackDuration) {
      const task = typeof by === "function"
        ? taskOfCallback(by) as Task<unknown> | undefined
        : undefined;
      const what = task !== undefined
        ? `Task "${task.getName()}"`
        : "the async code a callback resumed";
      this.callExceptionHandler({
        message: `Executing ${what} took ${took.toFixed(3)} seconds`,
        ...(task !== undefined && { task }),
      });
    }
  }

  /** A host turn that polls I/O: see HOPS_PER_IO_POLL. */
  #pollHost(): Promise<void> {
    const ready = this.#ready;
    const before = ready.length;
    // A plain setImmediate chain: a promise per hop would cost more.
    return new Promise((resolve) => {
      let hops = 0;
      const hop = () => {
        if (++hops >= HOPS_PER_IO_POLL || ready.length !== before) resolve();
        else hostImmediate(hop);
      };
      hostImmediate(hop);
    });
  }

  /** The clock reading that timers scheduled now count from. */
  #now(): number {
    if (this.#timerBase >= 0) return this.#timerBase;
    const now = this.time();
    if (this.#iterating) this.#timerBase = now;
    return now;
  }

  /**
   * Starts an iteration: the due timers join the ready callbacks, and the
   * callbacks ready now are run (see #runRest()); returns how many ran.
   */
  #runIteration(): number {
    const timers = this.#timers;
    const ready = this.#ready;
    this.#timerBase = -1;
    if (timers.size > 0) {
      let timer = timers.peek();
      if (timer !== undefined) {
        const now = this.time();
        this.#timerBase = now;
        const due = this.dueBy(now);
        while (timer !== undefined && timer.when <= due) {
          ready.push(timers.pop());
          timer = timers.peek();
        }
      }
    }
    this.#left = ready.length;
    return this.#runRest();
  }

  /**
   * Runs the callbacks left in the current iteration, in order, until one
   * resumes async code (a `Future.then()` settled, an async-function task
   * started): it stops there, for the caller to let that code run in
   * microtasks until it waits again, and then to call it for the rest.
   * An async function thus runs its step where asyncio runs it, between
   * the callback that resumed it and the next one (and an `await` of a done
   * future inside it, which costs microtask turns in JavaScript but no
   * trip through the loop in asyncio, lets no other callback run first).
   * Returns how many callbacks it ran.
   */
  #runRest(): number {
    const ready = this.#ready;
    const n = this.#left;
    let i = 0;
    this.#iterating = true;
    if (this.#debug) {
      while (i < n) {
        i++;
        this.#runDebug(ready.shift()!);
        if (pendingResumptions() > 0) break;
      }
    } else {
      while (i < n) {
        const handle = ready.shift()!;
        if (!handle.cancelled) runHandle(handle);
        if (++i % CALLBACKS_PER_TIMER_BASE === 0) this.#timerBase = -1;
        if (pendingResumptions() > 0) break;
      }
    }
    this.#left = n - i;
    this.#timerBase = -1;
    this.#iterating = false;
    return i;
  }

  #runDebug(handle: Handle): void {
    if (handle.cancelled) return;
    // Read first: a callback that cancels its own handle leaves a stand-in.
    const callback = handle.callback;
    const start = this.time();
    this.#timerBase = start;
    runHandle(handle);
    const took = this.time() - start;
    if (took >= this.slowCallbackDuration) {
      // A task's step is named by its task, as asyncio names it.
      const task = taskOfCallback(callback) as Task<unknown> | undefined;
      const what = task !== undefined
        ? `Task "${task.getName()}"`
        : callback.name || "a callback";
      this.callExceptionHandler({
        message: `Executing ${what} took ${took.toFixed(3)} seconds`,
        handle,
        ...(task !== undefined && { task }),
      });
    }
  }

  #idle(): Promise<void> {
    return this.waitForEvents(this.nextTimerWhen());
  }

  #schedule<A extends unknown[]>(
    what: string,
    when: number,
    soon: boolean,
    cb: ((...args: A) => unknown) | Handle,
    args: A,
  ): TimerHandle {
    if (this.#closed) this.#checkOpen(what);
    let timer: TimerHandle;
    if (cb instanceof Handle) {
      // The timer is this loop's own: a handle of another loop only lends
      // its callback and arguments (as addSignalHandler() takes one).
      checkHandle(cb, args, what);
      timer = new TimerHandle(cb.callback, cb.args as unknown[], this);
      if (cb.cancelled) {
        timer.cancel();
        return timer;
      }
      linkHandle(timer, cb);
      // Once run, a one-shot timer has nothing left to cancel: a handle
      // scheduled again and again must not keep every timer it made
      // (callRepeatedly() replaces this for its timer, which stays tied).
      setAfterRun(timer, () => unlinkHandle(timer, cb));
    } else {
      if (typeof cb !== "function" || cb.constructor !== Function) {
        checkCallback(cb, `call ${what}()`);
      }
      timer = new TimerHandle(cb, args, this);
    }
    if (this.#debug) noteSourceTraceback(timer);
    if (soon) {
      placeTimer(timer, when, null);
      this.#ready.push(timer);
    } else {
      this.#timers.push(timer, when);
    }
    if (this.#wake !== null) this.#wakeUp();
    return timer;
  }

  #wakeUp(): void {
    const wake = this.#wake!;
    this.#wake = null;
    wake();
  }

  #armHostTimer(deadline: number, timeout: number): void {
    if (this.#hostTimer !== undefined) {
      if (this.#hostTimerDeadline <= deadline) return;
      clearTimeout(this.#hostTimer);
    }
    this.#hostTimerDeadline = deadline;
    // Deno truncates the delay to whole milliseconds, at least one; over
    // 2^31 - 1 (24.8 days, or a timer at Infinity) it fires after one, so
    // wake at that limit and wait again.
    const ms = Math.min(
      MAX_HOST_TIMER_MS,
      Math.max(1, Math.floor(timeout * 1000)),
    );
    const due = performance.now() + ms;
    this.#hostTimer = setTimeout(() => {
      this.#hostTimer = undefined;
      this.#hostTimerDeadline = Infinity;
      this.#hostPolled = true;
      this.#blockedSinceIdle = 0;
      this.#noteLateness((performance.now() - due) / 1000);
      if (this.#wake !== null) this.#wakeUp();
    }, ms);
  }

  /**
   * Finishes a short wait: a host turn first, so that the host's latency
   * is spent inside the wait — one macrotask hop, or a zero-delay host
   * timer once unbudgeted blocks have kept the host from polling for
   * HOST_IDLE_EVERY seconds — then a block of the thread until
   * `deadline` (see BLOCK_SLACK) unless the turn brought an event. A
   * `budgeted` block is paid from the budget.
   */
  #blockUntil(deadline: number, budgeted: boolean): Promise<void> {
    const ready = this.#ready;
    const before = ready.length;
    let turn: Promise<void>;
    if (!budgeted && this.#blockedSinceIdle >= HOST_IDLE_EVERY) {
      this.#blockedSinceIdle = 0;
      turn = new Promise<void>((resolve) => setTimeout(resolve, 0));
    } else turn = hostHop();
    return turn.then(() => {
      if (ready.length !== before || this.#stopping) return;
      const start = this.time();
      const timeout = deadline - start;
      if (timeout <= 0) return;
      const until = performance.now() + timeout * 1000;
      this.#blocker ??= new Int32Array(new SharedArrayBuffer(4));
      try {
        if (timeout > BLOCK_SLACK) {
          Atomics.wait(this.#blocker, 0, 0, (timeout - BLOCK_SLACK) * 1000);
        }
      } catch {
        this.#blockable = false;
        return;
      }
      let now = performance.now();
      while (now < until) now = performance.now();
      const end = this.time();
      this.#blockedSinceIdle += end - start;
      if (budgeted) {
        this.#blockSaved -= end - start;
        this.#blockSavedAt = end;
      }
    });
  }

  /** The seconds of blocking the budget holds now. */
  #blockBudget(): number {
    const now = this.time();
    if (this.#blockSavedAt >= 0) {
      this.#blockSaved = Math.min(
        MAX_BLOCK_SAVED,
        this.#blockSaved + (now - this.#blockSavedAt) * BLOCK_SHARE,
      );
    }
    this.#blockSavedAt = now;
    return this.#blockSaved;
  }

  /** Learns how late the host's timers fire (see HOST_TIMER_LATENESS). */
  #noteLateness(late: number): void {
    const samples = this.#hostLateness;
    if (samples.length === LATENESS_SAMPLES) samples.shift();
    samples.push(late);
    const sorted = samples.toSorted((a, b) => a - b);
    const median = sorted[sorted.length >> 1];
    this.#hostEarly = Math.min(
      MAX_HOST_TIMER_EARLY,
      Math.max(0, median + HOST_TIMER_MARGIN),
    );
  }

  #disarmHostTimer(): void {
    if (this.#hostTimer !== undefined) {
      clearTimeout(this.#hostTimer);
      this.#hostTimer = undefined;
      this.#hostTimerDeadline = Infinity;
    }
  }
}

/** The error of a `runUntilComplete()` function that returned a plain value. */
function refusePlainResult(out: unknown): Error {
  return new TypeError(
    `Cannot call runUntilComplete(): a function must be an async or generator function (or return a promise, a Future or a generator); it returned ${
      formatReceived(out)
    }`,
  );
}
