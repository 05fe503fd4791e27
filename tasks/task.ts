/**
 * `Task`: a future that drives a coroutine — a generator function or an
 * async function — on the loop.
 *
 * @module
 */

import { AsyncLocalStorage } from "node:async_hooks";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import { Future } from "../futures/future.ts";
import { CancelledError, InvalidStateError } from "../futures/errors.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import {
  checkLoopOption,
  checkOptions,
  keptUnretrieved,
  nextTaskNumber,
  noteAwaitParked,
  noteTaskCallback,
  plainResultRefusals,
  requestMicrotaskCheckpoint,
  resultDropped,
  setAwaitHook,
  setContextLoopFinder,
  settleRunningCallbacks,
} from "../futures/_runtime.ts";
import { wrapFuture } from "../futures/wrap_future.ts";
import {
  eagerAwaiters,
  isAsyncGenerator,
  isCoroutine,
  isPromiseLike,
  noteEagerAwaiter,
  setTaskStarter,
  takeHeldStart,
} from "./_awaitables.ts";

/**
 * A generator coroutine: `yield*` a future, task or coroutine to wait for
 * it; a bare `yield` lets other callbacks run for one iteration.
 *
 * `yield future` without the `*` waits for the future too, as the original
 * tulip allowed: the `yield` evaluates to its result or throws its error.
 * Prefer `yield*`, whose value is typed (`yield` gives `unknown`) and which
 * also takes coroutines; `yield` of a coroutine object is refused.
 *
 * @typeParam T What the coroutine returns.
 */
export type Coroutine<T> = Generator<Future<unknown> | undefined, T, unknown>;

/**
 * Anything tulip can wait for: a future (or task), a generator coroutine,
 * or a promise (what an async function returns).
 *
 * @typeParam T The result type.
 */
export type Awaitable<T> = Future<T> | Coroutine<T> | PromiseLike<T>;

/** Options for `Task` and `loop.createTask()`. */
export interface TaskOptions {
  /**
   * The task's name, shown when it is printed.
   *
   * @default {"Task-<n>"}
   */
  name?: string;
  /**
   * The loop to run on.
   *
   * @default {the running loop}
   */
  loop?: SchedulingLoop;
}

// The task whose generator is being stepped right now (synchronously), and
// the task an async function belongs to, carried across its awaits.
let stepping: Task<unknown> | null = null;
const asyncTask = new AsyncLocalStorage<Task<unknown>>();

// Every live task per loop, for allTasks(). In debug mode tasks are held
// weakly so that a pending task nobody references can be collected — and
// reported.
const liveTasks = new WeakMap<SchedulingLoop, Set<Task<unknown>>>();
const weakTasks = new WeakMap<SchedulingLoop, Set<WeakRef<Task<unknown>>>>();
interface Abandoned {
  loop: SchedulingLoop;
  name: string;
  ref: WeakRef<Task<unknown>>;
}
const abandoned = new FinalizationRegistry<Abandoned>((held) => {
  weakTasks.get(held.loop)?.delete(held.ref);
  if (held.loop.isClosed()) return;
  held.loop.callExceptionHandler({
    message: `Task was destroyed but it is pending: ${held.name}`,
  });
});

// An async generator has next() and throw() too, but its steps are
// promises: no task can drive it (asyncio refuses one as well).
const ASYNC_GENERATOR =
  "an async generator, which no task can drive; make it an async function or a generator function";

const NO_AWAITERS: ReadonlySet<unknown> = new Set();

// How many tasks started at the call (startEagerly()) are not done: while
// none is, a generator's wait has no such task to note (see #step).
let eagerPending = 0;

function* delegate<T>(future: Future<T>): Coroutine<T> {
  return yield* future;
}

/**
 * Called by `Future.then()`: records what an async-function task awaits,
 * and returns the guard that delivers a late cancellation (see
 * `setAwaitHook`). A friend accessor (see loop/_handle.ts), set in Task's
 * static block.
 */
let noteAwait: (
  task: Task<unknown>,
  future: Future<unknown>,
) => ((future?: unknown) => unknown) | undefined;
setContextLoopFinder(() => asyncTask.getStore()?.getLoop() ?? null);
setAwaitHook((future) => {
  const task = asyncTask.getStore();
  if (task === undefined) return false;
  if (!(future instanceof Future)) return undefined;
  return noteAwait(task, future);
});

/**
 * A future that runs a coroutine to completion on the loop.
 *
 * A generator coroutine waits with `yield* future`; the task resumes it
 * when the future is done (a bare `yield future` waits the same way and
 * evaluates to the result, untyped). An async function waits with
 * `await future`.
 * `cancel()` delivers a `CancelledError` where the coroutine waits: thrown
 * in at its `yield` for a generator, or as the rejection of the awaited
 * future for an async function. The coroutine may catch it to clean up
 * (and even wait in a `finally`), or refuse it. An async function awaiting
 * a foreign promise cannot be interrupted: it sees the cancellation at its
 * next `await` of a tulip future — unless the promise honours the task's
 * `signal`, which is aborted on `cancel()`.
 *
 * PEP 3156: `tulip.Task`.
 *
 * @typeParam T What the coroutine returns.
 *
 * @example A generator coroutine and an async function
 * ```ts
 * import { newEventLoop, sleep } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * function* double(x: number): Coroutine<number> {
 *   yield* sleep(0.001);
 *   return 2 * x;
 * }
 * const a = loop.createTask(double(21), { name: "gen" });
 * const b = loop.createTask(async () => (await sleep(0.001, "hi")) + "!");
 * assertEquals(await loop.runUntilComplete(a), 42);
 * assertEquals(await loop.runUntilComplete(b), "hi!");
 * loop.close();
 * ```
 */
export class Task<T> extends Future<T> {
  #gen: Coroutine<T> | null = null;
  #fn: (() => Coroutine<T> | PromiseLike<T> | T) | null = null;
  #name: string;
  #futWaiter: Future<unknown> | null = null;
  #sent: unknown = undefined;
  #awaitingOne: Future<unknown> | null = null;
  // The futures that joined the wait in #awaitingOne (see #join()).
  #members: Future<unknown>[] | null = null;
  // Futures of earlier waits still pending (a race's losers, async code
  // the task left running): cancel() reaches them too.
  #awaiting: Set<Future<unknown>> | null = null;
  #pruneAt = 8;
  #added = 0; // futures added to #awaiting since a new wait last pruned it
  // Whether a future awaited now joins the wait in #awaitingOne: no
  // future the task awaits has completed since that wait began.
  #open = false;
  // The last wait that others joined, until its first future completes.
  #joined: Joined | null = null;
  // The wait in #awaitingOne if others joined it, until a new wait begins.
  #wait: Joined | null = null;
  #mustCancel = false;
  #cancelMessage: string | undefined = undefined;
  #cancelRequests = 0;
  #abort: AbortController | null = null;
  #weakRef: WeakRef<Task<unknown>> | null = null;
  #cancelError: CancelledError | null = null;
  // Started by startEagerly(): those awaiting it resume in the turn it ends.
  #eager = false;

  static {
    noteAwait = (task, future) => task.#noteAwait(future);
    setTaskStarter((task) => {
      const t = task as Task<unknown>;
      t.#eager = true;
      eagerPending++;
      asyncTask.exit(t.#step);
    });
  }

  /**
   * Wraps `coro` and schedules its first step with `callSoon`.
   *
   * @param coro A generator object, or a function that returns a generator,
   * a promise (an async function) or a future (which the task then waits
   * for as `yield*` would, so `cancel()` cancels it).
   * @param options The task's name (given as anything else, its text, as
   * asyncio's `str(name)`) and loop.
   * @throws {TypeError} When `coro` is neither, or `options` is not an
   * object like `{ name }` (a name or a loop given bare included).
   */
  constructor(
    coro: Coroutine<T> | (() => Coroutine<T> | PromiseLike<T> | T),
    options?: TaskOptions,
  ) {
    const held = takeHeldStart();
    checkOptions(options, "create a Task", "{ name }");
    super({ loop: options?.loop });
    if (typeof coro === "function") this.#fn = coro;
    else if (isCoroutine(coro)) this.#gen = coro as Coroutine<T>;
    else if (isAsyncGenerator(coro)) {
      throw new TypeError(`Cannot create a Task: received ${ASYNC_GENERATOR}`);
    } else {
      throw new TypeError(
        `Cannot create a Task: expected a generator or a function, received ${
          coro === null ? "null" : typeof coro
        }`,
      );
    }
    const name = options?.name;
    this.#name = name === undefined || name === null
      ? `Task-${nextTaskNumber()}`
      : String(name);
    const loop = this.getLoop();
    // A loop that keeps what it reports from the collector (a simulated
    // host) holds its tasks strongly in debug mode too.
    const debug = loop.getDebug();
    if (debug && keptUnretrieved(loop) === undefined) {
      const ref = new WeakRef(this.#self());
      this.#weakRef = ref;
      let set = weakTasks.get(loop);
      if (set === undefined) weakTasks.set(loop, set = new Set());
      set.add(ref);
      abandoned.register(this, { loop, name: this.#name, ref }, this);
    } else {
      let set = liveTasks.get(loop);
      if (set === undefined) liveTasks.set(loop, set = new Set());
      set.add(this.#self());
    }
    if (debug) {
      // A slow step is reported with the task's name (see BaseEventLoop).
      noteTaskCallback(this.#step, this);
      noteTaskCallback(this.#wakeup, this);
      noteTaskCallback(this.#interrupt, this);
    }
    if (!held) loop.callSoon(this.#step);
  }

  /**
   * Returns the task's name.
   *
   * @returns The name.
   */
  getName(): string {
    return this.#name;
  }

  /**
   * Renames the task.
   *
   * @param name The new name.
   */
  setName(name: string): void {
    this.#name = String(name);
  }

  /**
   * Returns the coroutine: the generator, or the function given.
   *
   * @returns The coroutine.
   */
  getCoro(): Coroutine<T> | (() => unknown) | null {
    return this.#gen ?? this.#fn;
  }

  /**
   * An `AbortSignal` aborted (with the `CancelledError`) when the task is
   * cancelled: hand it to `fetch`, `Deno.Command` or `@std/async`'s
   * `abortable` so foreign work stops with the task.
   */
  get signal(): AbortSignal {
    if (this.#abort === null) {
      this.#abort = new AbortController();
      if (this.#cancelRequests > 0 || this.cancelled()) {
        this.#abort.abort(new CancelledError(this.#cancelMessage));
      }
    }
    return this.#abort.signal;
  }

  /**
   * Asks the task to cancel itself: a `CancelledError` is delivered where
   * its coroutine waits, on the loop's next turn. The coroutine may catch
   * it. Each call is counted (see `cancelling()`).
   *
   * PEP 3156: `Task.cancel()`.
   *
   * @param msg A message for the `CancelledError`.
   * @returns `false` if the task is already done, else `true`.
   */
  override cancel(msg?: string): boolean {
    // Future.cancel() of a done task returns false, and counts as looking
    // at its error, as in asyncio (no never-retrieved report).
    if (this.done()) return super.cancel(msg);
    this.#cancelRequests++;
    this.#cancelMessage = msg;
    this.#abort?.abort(new CancelledError(msg));
    if (this.#futWaiter !== null && this.#futWaiter.cancel(msg)) return true;
    // Only the futures of the wait the task is in now deliver the
    // CancelledError; what earlier waits left pending is cancelled too,
    // but the task no longer waits for it (its wait may be done, the
    // resumption on its way: then the error must come there).
    const one = this.#awaitingOne;
    const members = this.#members;
    // A completion of a joined wait whose then() callback has not run yet
    // may have decided it (a race's winner, an all's first error): the
    // combinator drops the errors of the futures cancelled below, so the
    // error must come at that callback, as for a lone wait that is done.
    const wait = this.#wait;
    let undelivered = 0;
    if (wait !== null && wait.first === one && members !== null) {
      undelivered = wait.pending - 1 - members.length;
      if (one.done()) undelivered++;
      for (const f of members) if (f.done()) undelivered++;
    }
    let any = one?.cancel(msg) ?? false;
    if (members !== null) {
      for (const f of members) any = f.cancel(msg) || any;
    }
    if (this.#awaiting !== null) {
      for (const f of this.#awaiting) f.cancel(msg);
    }
    if (any && undelivered === 0) return true;
    this.#mustCancel = true;
    return true;
  }

  /**
   * Returns how many cancellation requests are outstanding.
   *
   * @returns The count.
   */
  cancelling(): number {
    return this.#cancelRequests;
  }

  /**
   * Withdraws one cancellation request (a `timeout()` scope does this when
   * it turns its own cancellation into a `TimeoutError`).
   *
   * @returns The remaining count.
   */
  uncancel(): number {
    if (this.#cancelRequests > 0) this.#cancelRequests--;
    if (this.#cancelRequests === 0) {
      this.#mustCancel = false;
      // A withdrawn cancellation must not leave foreign work aborted: the
      // next `signal` access makes a fresh one.
      if (this.#abort?.signal.aborted) this.#abort = null;
    }
    return this.#cancelRequests;
  }

  /**
   * Returns the result, or throws the coroutine's error. A cancelled task
   * throws the very `CancelledError` its coroutine ended with, every time,
   * so an awaiting coroutine can tell it apart with `===`. asyncio (3.11+)
   * hands the same object to the first retrieval only and makes a new one
   * after, to break a reference cycle that JavaScript's collector does not
   * mind.
   *
   * PEP 3156: `Future.result()`.
   *
   * @returns The result.
   * @throws {CancelledError} If the task was cancelled.
   * @throws {InvalidStateError} If the task is not done.
   */
  override result(): T {
    if (this.cancelled()) throw this.#cancelledError();
    return super.result();
  }

  /**
   * Returns the coroutine's error, or `undefined` if it returned.
   *
   * PEP 3156: `Future.exception()`.
   *
   * @returns The error.
   * @throws {CancelledError} If the task was cancelled (the same object
   * `result()` throws).
   * @throws {InvalidStateError} If the task is not done.
   */
  override exception(): unknown {
    if (this.cancelled()) throw this.#cancelledError();
    return super.exception();
  }

  /**
   * Not allowed on a task: its coroutine sets the result.
   *
   * @param _value Ignored.
   * @throws {InvalidStateError} Always.
   */
  override setResult(_value: T): void {
    throw new InvalidStateError(
      "Cannot call setResult() on a Task: its coroutine sets the result",
    );
  }

  /**
   * Not allowed on a task: its coroutine sets the error.
   *
   * @param _exc Ignored.
   * @throws {InvalidStateError} Always.
   */
  override setException(_exc: unknown): void {
    throw new InvalidStateError(
      "Cannot call setException() on a Task: its coroutine sets the error",
    );
  }

  /**
   * The state word used by `describe()`: `"cancelling"` while a
   * cancellation is requested and the task is not done, as in asyncio.
   *
   * @returns `"cancelling"`, or the future's state word.
   */
  protected override stateName(): string {
    return this.#cancelRequests > 0 && !this.done()
      ? "cancelling"
      : super.stateName();
  }

  /**
   * The class word used by `describe()`, with the task's name.
   *
   * @returns For example `Task "fetch-3"`.
   */
  protected override kindName(): string {
    return `Task "${this.#name}"`;
  }

  /**
   * The word that starts the never-retrieved report.
   *
   * @returns `"Task"`, for any kind of task.
   */
  protected override reportKind(): string {
    return "Task";
  }

  #self(): Task<unknown> {
    return this as unknown as Task<unknown>;
  }

  #finish(value: T): void {
    if (this.#mustCancel) {
      this.#mustCancel = false;
      this.#cancelled(this.#cancelMessage);
      return;
    }
    if (this.#eager) {
      settleRunningCallbacks(
        this,
        () => super.setResult(value),
        this.#awaiters(),
      );
    } else super.setResult(value);
    this.#forget();
  }

  #fail(exc: unknown): void {
    if (exc instanceof CancelledError) {
      this.#cancelError = exc;
      this.#cancelled(exc.message);
    } else {
      if (this.#eager) {
        settleRunningCallbacks(
          this,
          () => super.setException(exc),
          this.#awaiters(),
        );
      } else super.setException(exc);
      this.#forget();
    }
  }

  // Waiting (a generator's yield* or bare yield) for a task started at
  // the call: recorded, so that it resumes this task in the turn it ends.
  #noteEagerWait(yielded: Future<unknown>): void {
    if (#eager in yielded && yielded.#eager && !yielded.done()) {
      noteEagerAwaiter(yielded, this.#wakeup);
    }
  }

  #awaiters(): ReadonlySet<unknown> {
    return eagerAwaiters.get(this) ?? NO_AWAITERS;
  }

  #cancelled(msg: string | undefined): void {
    if (this.#eager) {
      settleRunningCallbacks(this, () => super.cancel(msg), this.#awaiters());
    } else super.cancel(msg);
    this.#forget();
  }

  #cancelledError(): CancelledError {
    if (this.#cancelError === null) {
      try {
        super.result();
      } catch (e) {
        this.#cancelError = e as CancelledError;
      }
    }
    return this.#cancelError!;
  }

  #forget(): void {
    if (this.#eager) {
      eagerPending--;
      // Run or scheduled by now: the awaiters' callbacks are not kept.
      eagerAwaiters.delete(this);
    }
    const loop = this.getLoop();
    if (this.#weakRef !== null) {
      weakTasks.get(loop)?.delete(this.#weakRef);
      abandoned.unregister(this);
    } else {
      liveTasks.get(loop)?.delete(this.#self());
    }
    this.#awaitingOne = null;
    this.#members = null;
    this.#awaiting = null;
    this.#joined = null;
    this.#wait = null;
  }

  #step = (exc?: unknown): void => {
    const sent = this.#sent;
    this.#sent = undefined;
    if (this.done()) return;
    if (this.#mustCancel) {
      this.#mustCancel = false;
      // The awaited future's own CancelledError (an earlier cancel() got
      // to it) goes in as it is, as in asyncio's Task.__step.
      if (!(exc instanceof CancelledError)) {
        exc = new CancelledError(this.#cancelMessage);
      }
    }
    this.#futWaiter = null;
    if (this.#gen === null) return this.#start(exc);
    const previous = stepping;
    stepping = this.#self();
    let r: IteratorResult<Future<unknown> | undefined, T>;
    try {
      r = exc === undefined ? this.#gen.next(sent) : this.#gen.throw(exc);
    } catch (e) {
      stepping = previous;
      return this.#fail(e);
    }
    stepping = previous;
    if (r.done) return this.#finish(r.value);
    const yielded = r.value;
    const loop = this.getLoop();
    if (yielded === undefined) {
      loop.callSoon(this.#step);
    } else if (!(yielded instanceof Future)) {
      loop.callSoon(
        this.#step,
        new TypeError(
          `Cannot drive Task "${this.#name}": its coroutine yielded ${
            isCoroutine(yielded)
              ? "a coroutine object (yield* it to wait for it)"
              : isPromiseLike(yielded)
              ? "a promise"
              : typeof yielded
          }; use yield* with a Future, a Task or a coroutine (wrap promises with wrapFuture)`,
        ),
      );
    } else if (yielded.getLoop() !== loop) {
      loop.callSoon(
        this.#step,
        new InvalidStateError(
          `Cannot drive Task "${this.#name}": it awaited a Future of another loop`,
        ),
      );
    } else if (yielded === this) {
      loop.callSoon(
        this.#step,
        new InvalidStateError(
          `Cannot drive Task "${this.#name}": a task cannot await itself`,
        ),
      );
    } else {
      this.#futWaiter = yielded;
      yielded.addDoneCallback(this.#wakeup);
      // A task started at the call resumes this one in the turn it ends,
      // whether waited for with yield* or a bare yield.
      if (eagerPending > 0) this.#noteEagerWait(yielded);
      if (this.#mustCancel && yielded.cancel(this.#cancelMessage)) {
        this.#mustCancel = false;
      }
    }
  };

  // The awaited future is done: resume the generator with its outcome,
  // sent in at the `yield` (its result) or thrown in there (its error), as
  // asyncio's Task.__wakeup does. Through `yield* future` the future's own
  // iterator is the one resumed: it returns the result, or lets the error
  // through; a bare `yield future` gets the same outcome directly.
  #wakeup = (future: Future<unknown>): void => {
    let value: unknown;
    try {
      value = future.result();
    } catch (e) {
      return this.#step(e);
    }
    // Cancelled since the future completed: #step throws the cancellation
    // in instead, and the result goes back to the future.
    if (this.#mustCancel && !this.done()) resultDropped(future, value);
    this.#sent = value;
    this.#step();
  };

  // First step of a function task: call it (inside the task's async
  // context), then drive what it returned.
  #start(exc: unknown): void {
    const fn = this.#fn!;
    if (exc !== undefined) return this.#fail(exc);
    let out: unknown;
    const previous = stepping;
    stepping = this.#self();
    try {
      out = asyncTask.run(this.#self(), fn);
    } catch (e) {
      return this.#fail(e);
    } finally {
      stepping = previous;
    }
    if (out instanceof Future) {
      // Wait for the future as a coroutine would, so that cancel() reaches
      // it and a foreign or own future is refused the same way.
      this.#gen = delegate(out as Future<T>);
      this.#step();
    } else if (isCoroutine(out)) {
      this.#gen = out as Coroutine<T>;
      this.#step();
    } else if (isPromiseLike(out)) {
      // The function runs on in microtasks until it waits on a pending
      // future (which tells the loop) or ends (the handlers below).
      requestMicrotaskCheckpoint(this.#interrupt);
      (out as PromiseLike<T>).then(
        (v) => {
          noteAwaitParked();
          if (!this.done() && !this.getLoop().isClosed()) this.#finish(v);
        },
        (e) => {
          noteAwaitParked();
          if (!this.done() && !this.getLoop().isClosed()) this.#fail(e);
        },
      );
    } else if (isAsyncGenerator(out)) {
      this.#fail(
        new TypeError(
          `Cannot drive Task "${this.#name}": its function returned ${ASYNC_GENERATOR}`,
        ),
      );
    } else {
      // A plain function's value, unless the task must refuse it (run()).
      const refuse = plainResultRefusals.get(this);
      if (refuse !== undefined) this.#fail(refuse(out));
      else this.#finish(out as T);
    }
  }

  #noteAwait(
    future: Future<unknown>,
  ): ((future?: unknown) => unknown) | undefined {
    if (future === this) {
      throw new InvalidStateError(
        `Cannot drive Task "${this.#name}": a task cannot await itself`,
      );
    }
    if (future.getLoop() !== this.getLoop()) {
      throw new InvalidStateError(
        `Cannot drive Task "${this.#name}": it awaited a Future of another loop`,
      );
    }
    // Done already: nothing to record; a pending cancellation is offered
    // (Waiter.then() takes it to refuse a hand-over it got too late).
    if (future.done()) return this.#mustCancel ? this.#interrupt : undefined;
    if (this.#mustCancel && future.cancel(this.#cancelMessage)) {
      // The task resumes with the future's CancelledError on the next turn;
      // a cancel() meanwhile is taken by the same resumption (the future is
      // recorded below as the one awaited), as in asyncio's __step.
      this.#mustCancel = false;
    }
    // What the task awaits is kept in one slot, or a set while it awaits
    // several at once (Promise.all of futures). Done futures leave lazily
    // (cancel() skips them anyway): a done callback per await would cost a
    // loop callback each.
    const one = this.#awaitingOne;
    if (one !== null && !one.done()) {
      if (this.#open) return this.#join(one, future);
      // Left pending by a wait that is over (a race's loser): cancel()
      // still reaches it.
      (this.#awaiting ??= new Set()).add(one);
      this.#added++;
    }
    const members = this.#members;
    if (members !== null) {
      this.#members = null;
      for (const f of members) {
        if (!f.done()) {
          (this.#awaiting ??= new Set()).add(f);
          this.#added++;
        }
      }
    }
    this.#awaitingOne = future;
    this.#wait = null;
    this.#open = true;
    // A new wait: what the set holds may all be done by now. Pruned when
    // it grew by half since the last pruning (the additions pay for the
    // scan), so that a finished Promise.all() does not keep its results
    // alive.
    const awaiting = this.#awaiting;
    if (awaiting !== null && 2 * this.#added >= awaiting.size) {
      this.#added = 0;
      this.#prune(awaiting);
      if (awaiting.size === 0) this.#awaiting = null;
    }
    return this.#interrupt;
  }

  // Awaited beside the slot's future, none having completed since: a
  // combinator registering on several futures (Promise.all(), race(),
  // any(), allSettled()), or async code of the task running side by side.
  // cancel() tells the wait's futures from those earlier waits left.
  #join(
    one: Future<unknown>,
    future: Future<unknown>,
  ): (future?: unknown) => unknown {
    let joined = this.#joined;
    if (joined === null || joined.first !== one) {
      const j: Joined = {
        first: one,
        pending: 1,
        guard: (f?: unknown): unknown => {
          if (f === undefined) return this.#interrupt();
          this.#joinedDone(j);
          // A wait that is over (a race's loser) does not take the
          // cancellation: it would reach no one.
          return j.first === this.#awaitingOne ? this.#interrupt() : undefined;
        },
      };
      this.#joined = this.#wait = joined = j;
    }
    joined.pending++;
    (this.#members ??= []).push(future);
    return joined.guard;
  }

  /** Drops the done futures from the set of those awaited together. */
  #prune(awaiting: Set<Future<unknown>>): void {
    for (const f of awaiting) if (f.done()) awaiting.delete(f);
    this.#pruneAt = Math.max(8, 2 * awaiting.size);
  }

  // Runs when a future the async function awaits has completed (given
  // it), just before the function would resume: tells the loop so, and
  // returns the cancellation requested since then, delivered there as
  // #step throws it into a generator. (Given nothing, only returns that.)
  #interrupt = (future?: unknown): unknown => {
    if (future !== undefined) {
      const joined = this.#joined;
      if (joined !== null && future === joined.first) {
        // Its then() was told of a lone wait, before others joined it.
        this.#joined = null;
        this.#joinedDone(joined);
      } else {
        this.#open = false;
        requestMicrotaskCheckpoint(this.#interrupt);
      }
    }
    if (!this.#mustCancel || this.done()) return undefined;
    // Only a completion of the wait the task is in takes the cancellation
    // (a race's loser completing first must leave it to the task's await).
    if (future !== undefined && future !== this.#awaitingOne) return undefined;
    this.#mustCancel = false;
    return new CancelledError(this.#cancelMessage);
  };

  // A future of a wait that others joined completed. Only the first
  // result (Promise.race(), any()), the first error (all(), race()) or the
  // last completion (all(), allSettled()) resumes a lone combinator, but
  // then() cannot tell a combinator's registration from an await in async
  // functions the task runs side by side (Promise.all([worker(1),
  // worker(2)])), nor see nested combinators: any completion may resume
  // code, so the loop waits for each as for a lone await (16 microtask
  // turns, then a host hop, when nothing waits again).
  #joinedDone(joined: Joined): void {
    this.#open = false;
    joined.pending--;
    requestMicrotaskCheckpoint(this.#interrupt);
  }
}

/**
 * A wait of an async-function task that other futures joined (see
 * `Task.#noteAwait()`): how many of its futures' then() are pending.
 */
interface Joined {
  /** The future that began the wait (its then() was told of a lone wait). */
  first: Future<unknown>;
  pending: number;
  /** The guard given to the then() of the futures that joined. */
  guard: (future?: unknown) => unknown;
}

/**
 * Returns the task running now, or `null` outside any task.
 *
 * PEP 3156 (as in asyncio): `current_task()`.
 *
 * @param loop Only return a task of this loop.
 * @returns The current task, or `null`.
 * @throws {TypeError} When `loop` is given and is not an event loop.
 *
 * @example
 * ```ts
 * import { currentTask, newEventLoop } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const t = loop.createTask(async () => currentTask()?.getName(), { name: "me" });
 * assertEquals(await loop.runUntilComplete(t), "me");
 * assertEquals(currentTask(), null);
 * loop.close();
 * ```
 */
export function currentTask(loop?: SchedulingLoop): Task<unknown> | null {
  checkLoopOption(loop, "call currentTask()");
  const task = stepping ?? asyncTask.getStore() ?? null;
  if (task === null || (loop !== undefined && task.getLoop() !== loop)) {
    return null;
  }
  return task;
}

/**
 * Returns the loop's tasks that are not done.
 *
 * PEP 3156 (as in asyncio): `all_tasks()`.
 *
 * @param loop The loop; the running loop by default.
 * @returns A new set of the pending tasks.
 * @throws {TypeError} When `loop` is given and is not an event loop.
 *
 * @example
 * ```ts
 * import { allTasks, newEventLoop, sleep } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const t = loop.createTask(async () => await sleep(0));
 * assertEquals(allTasks(loop).has(t), true);
 * await loop.runUntilComplete(t);
 * assertEquals(allTasks(loop).size, 0);
 * loop.close();
 * ```
 */
export function allTasks(loop?: SchedulingLoop): Set<Task<unknown>> {
  checkLoopOption(loop, "call allTasks()");
  const target = loop ?? getRunningLoop();
  const out = new Set<Task<unknown>>();
  if (target === null) return out;
  for (const t of liveTasks.get(target) ?? []) if (!t.done()) out.add(t);
  for (const ref of weakTasks.get(target) ?? []) {
    const t = ref.deref();
    if (t !== undefined && !t.done()) out.add(t);
  }
  return out;
}

/** Options for `ensureFuture`. */
export interface EnsureFutureOptions {
  /**
   * The loop to bind a new task or future to.
   *
   * @default {the running loop}
   */
  loop?: SchedulingLoop;
}

/**
 * Returns a future for anything awaitable: a future as is, a coroutine
 * wrapped in a task, a promise wrapped with `wrapFuture`.
 *
 * PEP 3156 (as in asyncio): `ensure_future()`.
 *
 * @typeParam T The result type.
 * @param aw A future, task, generator coroutine or promise.
 * @param options The loop to use.
 * @returns A future of `aw`'s result.
 * @throws {TypeError} When `aw` is none of these, or `options` is not an
 * object like `{ loop }`.
 *
 * @example Wrapping a promise
 * ```ts
 * import { ensureFuture, newEventLoop } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const f = ensureFuture(Promise.resolve(7), { loop });
 * assertEquals(await loop.runUntilComplete(f), 7);
 * loop.close();
 * ```
 */
export function ensureFuture<T>(
  aw: Awaitable<T>,
  options?: EnsureFutureOptions,
): Future<T> {
  checkOptions(options, "ensure a future", "{ loop }");
  const loop = options?.loop ?? undefined;
  if (aw instanceof Future) {
    if (loop !== undefined && aw.getLoop() !== loop) {
      throw new InvalidStateError(
        "Cannot ensure a future: it belongs to another loop than the one given (a future is awaited only on its own loop: make it there), received a Future of another loop",
      );
    }
    return aw;
  }
  if (isCoroutine(aw)) return new Task(aw as Coroutine<T>, { loop });
  if (isPromiseLike(aw)) return wrapFuture(aw, { loop });
  throw new TypeError(
    `Cannot ensure a future: expected a Future, a coroutine or a promise, received ${
      aw === null
        ? "null"
        : isAsyncGenerator(aw)
        ? ASYNC_GENERATOR
        : typeof aw === "function"
        ? "a function (call it, or pass it to createTask())"
        : typeof aw
    }`,
  );
}
