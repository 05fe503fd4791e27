/**
 * `Future`: a result that is not there yet, usable with both `yield*` and
 * `await`.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import { CancelledError, formatReceived, InvalidStateError } from "./errors.ts";
import { getRunningLoop } from "./running_loop.ts";
import {
  cancelledErrorTakenNow,
  isCoroutineFunction,
  keptUnretrieved,
  loopInSlot,
  noteAwaitParked,
  notifyAwait,
  requestForeignTurn,
  requestMicrotaskCheckpoint,
  resultDropped,
  setCallbackAccess,
} from "./_runtime.ts";

// How many settleRunningCallbacks() run inside one another, and how many
// may (each costs some ten stack frames).
let nestedSettles = 0;
const MAX_NESTED_SETTLES = 64;

const PENDING = 0;
const CANCELLED = 1;
const FINISHED = 2;
const STATE_NAMES = ["pending", "cancelled", "finished"] as const;

/** A done callback: it receives the future it was added to. */
export type DoneCallback<T> = (future: Future<T>) => void;

/** Options for the `Future` constructor. */
export interface FutureOptions {
  /**
   * The loop that runs the future's done callbacks.
   *
   * @default {the running loop}
   */
  loop?: SchedulingLoop;
}

interface Unretrieved {
  loop: SchedulingLoop;
  // "Future", "Task": the class of the future, for the message.
  kind: string;
  // The error itself when it cannot hold the future (a primitive), else a
  // weak reference to it and what rebuilding it takes.
  exception: unknown;
  ref: WeakRef<object> | null;
  proto: object | null;
  name: string;
  text: string;
  stack: string | undefined;
}

// Report a future whose exception was never looked at once the future
// itself is garbage-collected, as asyncio logs it in every mode. Only
// failing futures register, so futures that succeed pay nothing. The held
// value must not reference the future, or it would never be collected; nor
// the error, strongly: V8 keeps the closures of the frames in an error's
// stack (formatted or not) as long as the error, and the callback or
// coroutine that failed the future usually holds it. When the error went
// with the future, the report carries a copy: same class, message and
// (debug mode) stack.
const unretrieved = new FinalizationRegistry<Unretrieved>((held) => {
  if (held.loop.isClosed()) return;
  let exception = held.ref === null ? held.exception : held.ref.deref();
  if (exception === undefined && held.proto !== null) {
    const copy = new Error(held.text);
    Object.setPrototypeOf(copy, held.proto);
    if (copy.name !== held.name) copy.name = held.name;
    // Not the finalizer's own stack: the error's, or none known.
    copy.stack = held.stack ?? `${held.name}: ${held.text}`;
    exception = copy;
  }
  held.loop.callExceptionHandler({
    message: `${held.kind} exception was never retrieved`,
    exception,
    // Only in debug mode, as asyncio's context has source_traceback only
    // then.
    ...(held.stack !== undefined && { sourceTraceback: held.stack }),
  });
});

/**
 * A placeholder for a result (or an error) that a callback or coroutine will
 * set later.
 *
 * Done callbacks are always scheduled with the loop's `callSoon`, never
 * called inline, so `setResult()` returns before any of them runs.
 *
 * A future works in both coroutine styles: `const x = yield* fut` in a
 * generator function (the iterator yields the future itself to the task,
 * which resumes the generator when it is done), and `const x = await fut`
 * in an async function (it is `PromiseLike<T>`).
 *
 * PEP 3156: `tulip.Future`.
 *
 * @typeParam T The type of the result.
 *
 * @example Setting a result from a callback
 * ```ts
 * import { newEventLoop } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const fut = loop.createFuture<string>();
 * loop.callLater(0.001, () => fut.setResult("ready"));
 * assertEquals(await loop.runUntilComplete(fut), "ready");
 * loop.close();
 * ```
 */
export class Future<T> implements PromiseLike<T> {
  #loop: SchedulingLoop;
  #state = PENDING;
  #result: T | undefined = undefined;
  #exception: unknown = undefined;
  #hasException = false;
  #cancelMessage: string | undefined = undefined;
  // Typed without T so that Future<T> stays assignable to Future<unknown>.
  // The first callback has a field of its own (most futures have one: the
  // task that awaits them), the others follow it in order in an array.
  #callback: DoneCallback<never> | null = null;
  #callbacks: DoneCallback<never>[] | null = null;
  #watched = false;

  static {
    // A friend accessor (see loop/_handle.ts): settle with the callbacks
    // taken out first, so that none is scheduled, then run them here.
    setCallbackAccess({
      settle: (future, settle, only) => {
        // A callback run here may end another future the same way (a
        // task resumed on the spot ends and resumes its own waiter): past
        // MAX_NESTED_SETTLES deep they are scheduled, as settling does,
        // so that a long chain cannot overflow the stack and lose them.
        // So too outside the loop's turns: a task steps only in them.
        const f = future as Future<unknown>;
        if (
          nestedSettles >= MAX_NESTED_SETTLES || loopInSlot() !== f.#loop
        ) return settle();
        const all = f.#callbacks ?? [];
        if (f.#callback !== null) all.unshift(f.#callback);
        f.#callback = null;
        f.#callbacks = null;
        settle();
        // Those not run now are scheduled first, as settling would have.
        if (only !== undefined) {
          for (const cb of all) {
            if (!only.has(cb)) f.#loop.callSoon(cb as DoneCallback<unknown>, f);
          }
        }
        nestedSettles++;
        try {
          for (const cb of all) {
            if (only === undefined || only.has(cb)) runNow(f, cb);
          }
        } finally {
          nestedSettles--;
        }
      },
      last: (future) => {
        const f = future as Future<unknown>;
        return f.#callbacks?.at(-1) ?? f.#callback;
      },
    });
  }

  /**
   * Makes a pending future.
   *
   * @param options The loop to use; the running loop by default.
   * @throws {InvalidStateError} When no loop is given and none is running.
   * @throws {TypeError} When `options` is not an object (a loop given bare
   * included), or its `loop` is not an event loop.
   */
  constructor(options?: FutureOptions) {
    let loop: SchedulingLoop | null;
    if (options === undefined) {
      loop = getRunningLoop();
    } else {
      if (
        typeof options !== "object" || options === null ||
        typeof (options as Partial<SchedulingLoop>).callSoon === "function"
      ) {
        throw new TypeError(
          typeof options === "object" && options !== null
            ? `Cannot create a Future: pass the loop as { loop }, received ${
              formatReceived(options)
            }`
            : `Cannot create a Future: options must be an object like { loop }, received ${
              formatReceived(options)
            }`,
        );
      }
      loop = options.loop ?? getRunningLoop();
      if (loop !== null && typeof loop.callSoon !== "function") {
        throw new TypeError(
          `Cannot create a Future: loop must be an event loop, received ${
            formatReceived(loop)
          }`,
        );
      }
    }
    if (loop === null) {
      throw new InvalidStateError(
        "Cannot create a Future: no event loop is running or current (pass { loop }, or call setEventLoop(loop) first; an async main called before its loop runs starts at once: pass it uncalled, loop.runUntilComplete(main) or run(main)), received loop=undefined",
      );
    }
    this.#loop = loop;
  }

  /**
   * Returns the loop the future is bound to.
   *
   * @returns The loop.
   */
  getLoop(): SchedulingLoop {
    return this.#loop;
  }

  /**
   * Cancels the future and schedules its callbacks.
   *
   * @param msg A message for the `CancelledError`.
   * @returns `false` if the future was already done, else `true`.
   */
  cancel(msg?: string): boolean {
    // As in asyncio, cancelling a failed future counts as looking at its
    // error: it is not reported as never retrieved.
    this.#retrieved();
    if (this.#state !== PENDING) return false;
    this.#state = CANCELLED;
    this.#cancelMessage = msg;
    this.#scheduleCallbacks();
    return true;
  }

  /**
   * Returns `true` if the future was cancelled.
   *
   * @returns Whether the future was cancelled.
   */
  cancelled(): boolean {
    return this.#state === CANCELLED;
  }

  /**
   * Returns `false`, always: a future only holds a result, and nothing
   * "runs" it. The draft PEP keeps the method so that code written for
   * `concurrent.futures.Future`, whose `running()` says whether a worker is
   * executing the call, runs unchanged; a task that is stepping its
   * coroutine is not "running" in that sense either.
   *
   * PEP 3156: `Future.running()` ("always returns False").
   *
   * @returns `false`.
   *
   * @example
   * ```ts
   * import { newEventLoop } from "@tulip/tulip";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = newEventLoop();
   * const fut = loop.createFuture<number>();
   * assertEquals(fut.running(), false);
   * fut.setResult(1);
   * assertEquals(fut.running(), false);
   * loop.close();
   * ```
   */
  running(): false {
    return false;
  }

  /**
   * Returns `true` once the future has a result, an error, or was
   * cancelled.
   *
   * @returns Whether the future is done.
   */
  done(): boolean {
    return this.#state !== PENDING;
  }

  /**
   * Returns the result, or throws the future's error.
   *
   * @returns The result.
   * @throws {CancelledError} When the future was cancelled.
   * @throws {InvalidStateError} When the future is still pending.
   */
  result(): T {
    if (this.#state === FINISHED) {
      if (this.#hasException) {
        this.#retrieved();
        throw this.#exception;
      }
      return this.#result as T;
    }
    throw this.#stateError("result");
  }

  /**
   * Returns the future's error, or `undefined` when it has a result.
   *
   * @returns The error, if any.
   * @throws {CancelledError} When the future was cancelled.
   * @throws {InvalidStateError} When the future is still pending.
   */
  exception(): unknown {
    if (this.#state === FINISHED) {
      this.#retrieved();
      return this.#exception;
    }
    throw this.#stateError("exception");
  }

  /**
   * Adds a callback to run, with the future, when the future is done; if
   * it is already done the callback is scheduled at once. Either way it is
   * scheduled with `callSoon`, never called inline.
   *
   * The callback is a plain function called with the future alone (PEP
   * 3156: "should not be a Handle object"); anything else is refused here,
   * rather than when the future is settled.
   *
   * @param fn The callback.
   * @throws {TypeError} When `fn` is not a function, or is a `Handle` or a
   * coroutine function (generator or async: run those in a task).
   */
  addDoneCallback(fn: DoneCallback<T>): void {
    if (
      typeof fn !== "function" ||
      (fn.constructor !== Function && isCoroutineFunction(fn))
    ) {
      throw new TypeError(
        `Cannot add a done callback: it must be a plain function, called with the future (not a Handle, and not a generator or async function: run those in a task), received ${
          formatReceived(fn)
        }`,
      );
    }
    if (this.#state !== PENDING) this.#loop.callSoon(fn, this);
    else this.#push(fn as DoneCallback<never>);
  }

  /**
   * Removes every registration of `fn` from the done callbacks.
   *
   * @param fn The callback to remove.
   * @returns How many registrations were removed.
   */
  removeDoneCallback(fn: DoneCallback<T>): number {
    let removed = 0;
    if (this.#callback === fn) {
      this.#callback = null;
      removed++;
    }
    const callbacks = this.#callbacks;
    if (callbacks === null) return removed;
    const kept = callbacks.filter((cb) => cb !== (fn as DoneCallback<never>));
    if (kept.length < callbacks.length) {
      removed += callbacks.length - kept.length;
      this.#callbacks = kept.length > 0 ? kept : null;
    }
    return removed;
  }

  /**
   * Marks the future done with `value` and schedules its callbacks.
   *
   * @param value The result.
   * @throws {InvalidStateError} When the future is already done.
   */
  setResult(value: T): void {
    if (this.#state !== PENDING) throw this.#doneError("setResult");
    this.#result = value;
    this.#state = FINISHED;
    this.#scheduleCallbacks();
  }

  /**
   * Marks the future done with an error and schedules its callbacks.
   *
   * If nobody ever looks at the error (`result()`, `exception()`, `yield*`,
   * `await` or `cancel()`), it is reported through the loop's exception
   * handler as "Future exception was never retrieved" ("Task exception
   * …" for a task) once the future is garbage-collected, as asyncio logs
   * it (in debug mode the context's `sourceTraceback` also holds the
   * error's stack). The context has no `future` (it is gone by then), and
   * its `exception` is a copy (same class, message and stack) when the
   * error was collected along with the future. A loop closed by then
   * reports nothing.
   *
   * An `Error` class given instead of an error stands for a new error of
   * that class, as in asyncio: `setException(RangeError)`.
   *
   * @param exc The error.
   * @throws {InvalidStateError} When the future is already done.
   * @throws {TypeError} When `exc` is a `CancelledError` (use `cancel()`).
   */
  setException(exc: unknown): void {
    if (this.#state !== PENDING) throw this.#doneError("setException");
    // An error class stands for an error of that class, as in asyncio.
    if (
      typeof exc === "function" &&
      (exc === Error || exc.prototype instanceof Error)
    ) {
      exc = new (exc as new () => Error)();
    }
    const cancellation = exc instanceof CancelledError;
    if (cancellation && !cancelledErrorTakenNow()) {
      throw new TypeError(
        "Cannot set a CancelledError as a future's exception: call cancel() instead",
      );
    }
    // Registered first: an error whose fields throw leaves the future
    // pending. Debug mode also keeps where the error was made (formatting
    // a stack costs microseconds, so only there).
    const isObject = (typeof exc === "object" && exc !== null) ||
      typeof exc === "function";
    const error = exc instanceof Error ? exc : null;
    const kept = keptUnretrieved(this.#loop);
    if (cancellation) {
      // A cancellation is no error to report, as a cancelled future's.
    } else if (kept !== undefined) kept.set(this, this.reportKind());
    else {
      unretrieved.register(this, {
        loop: this.#loop,
        kind: this.reportKind(),
        exception: isObject ? undefined : exc,
        ref: isObject ? new WeakRef(exc as object) : null,
        proto: error === null ? null : Object.getPrototypeOf(error),
        name: error === null ? "" : error.name,
        text: error === null ? "" : error.message,
        stack: error !== null && this.#loop.getDebug()
          ? error.stack
          : undefined,
      }, this);
    }
    this.#exception = exc;
    this.#hasException = true;
    this.#state = FINISHED;
    this.#watched = true;
    this.#scheduleCallbacks();
  }

  /**
   * Lets `yield* future` in a generator coroutine wait for the future and
   * evaluate to its result (or throw its error).
   *
   * @returns An iterator that yields this future while it is pending.
   */
  *[Symbol.iterator](): Generator<Future<T>, T, unknown> {
    if (this.#state === PENDING) yield this;
    return this.result();
  }

  /**
   * Lets `await future` work in async functions. A pending future settles
   * the returned promise from a done callback, on the loop's turn; a done
   * one settles it at once, so awaiting it does not wait for the loop.
   * The loop lets the resumed function run on, in microtasks, until it
   * waits on a pending future again, before its next callback: async and
   * generator tasks run in the order asyncio runs them, and an `await` of
   * a done future (which JavaScript still makes take microtask turns) lets
   * no other task in, as in asyncio. A native promise awaited in a task is
   * not seen by the loop (`wrapFuture()` it for asyncio's order).
   *
   * Awaited inside an async-function task, the task is told (so that
   * `cancel()` reaches this future), and a task cancelled after the future
   * completed but before it resumes gets the `CancelledError` instead of
   * the outcome, as asyncio's task throws it in at the `await`.
   *
   * @typeParam R1 The type of the fulfilment handler's result.
   * @typeParam R2 The type of the rejection handler's result.
   * @param onfulfilled Called with the result.
   * @param onrejected Called with the error (a `CancelledError` if cancelled).
   * @returns A native promise.
   * @throws {InvalidStateError} Awaited by its own task, or by a task of
   * another loop (so the `await` rejects at once instead of hanging).
   */
  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    const pending = this.#state === PENDING;
    const guard = notifyAwait(this);
    let resolve!: (value: R1 | R2 | PromiseLike<R1 | R2>) => void;
    let reject!: (reason: unknown) => void;
    const promise = new Promise<R1 | R2>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    if (!pending || (this.#state !== PENDING && this.#loop.isClosed())) {
      // Like asyncio's `await` of a done future: no trip through the loop.
      // (So too for one the awaiting task's pending cancellation cancelled
      // as it began to wait, when the loop is closed: it has no next turn,
      // and the code, running on after it, goes on at once.)
      // The awaiting code goes on in a microtask without having waited:
      // if the loop resumed it, it is still counted as resuming (an async
      // function's `await future` calls then() one microtask late, so the
      // loop may have completed the future in between).
      settleThen(this, undefined, onfulfilled, onrejected, resolve, reject);
      return promise;
    }
    if (guard === false) {
      // No task awaits (a Promise.all(), a then() outside any task): the
      // code goes on in the microtask turn the loop gives at the end of
      // the iteration, not before its next callback (such code never says
      // when it waits again, so the loop would give it every turn it
      // allows, after every callback).
      const done = (f: Future<T>) => {
        requestForeignTurn();
        settleThen(f, undefined, onfulfilled, onrejected, resolve, reject);
      };
      this.#push(done as DoneCallback<never>);
      return promise;
    }
    // The awaiting task waits: once the future completes, it resumes in a
    // microtask after settleThen(), and the loop is told, so that it lets
    // microtasks run until that code waits again before its next callback.
    noteAwaitParked();
    const done = (f: Future<T>) => {
      // The task's guard tells the loop that the task may resume, and
      // returns the cancellation requested after the future completed,
      // which the task gets instead of the outcome, as a generator task.
      let interrupted: unknown;
      if (guard === undefined) requestMicrotaskCheckpoint();
      else interrupted = guard(f);
      settleThen(f, interrupted, onfulfilled, onrejected, resolve, reject);
    };
    // The awaiting task, cancelled while it ran, cancelled this future as
    // it began to wait: as in asyncio, it resumes with the CancelledError
    // when the future's callbacks run, after those already scheduled.
    if (this.#state !== PENDING) this.#loop.callSoon(done, this);
    else this.#push(done as DoneCallback<never>);
    return promise;
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `${this.kindName()} ${this.stateName()}`;
  }

  /** How Deno's `console.log` prints a future. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.describe();
  }

  /**
   * Returns a one-line description of the state, for logs, as asyncio's
   * `repr()`: the outcome is shown briefly (an error as `Name: message`,
   * anything else as error messages show a value received), and a pending
   * future names its done callbacks (the first, how many more, the last).
   *
   * @returns For example `Future finished result=42`, or
   * `Future pending cb=[first(), <2 more>, last()]`.
   */
  describe(): string {
    const head = `${this.kindName()} ${this.stateName()}`;
    if (this.#state === PENDING) {
      const cbs = this.#callbacks === null ? [] : [...this.#callbacks];
      if (this.#callback !== null) cbs.unshift(this.#callback);
      if (cbs.length === 0) return head;
      const name = (fn: DoneCallback<never>) => `${fn.name || "anonymous"}()`;
      const listed = cbs.length <= 2
        ? cbs.map(name).join(", ")
        : `${name(cbs[0])}, <${cbs.length - 2} more>, ${name(cbs.at(-1)!)}`;
      return `${head} cb=[${listed}]`;
    }
    if (this.#state === CANCELLED) return head;
    return this.#hasException
      ? `${head} exception=${describeError(this.#exception)}`
      : `${head} result=${formatReceived(this.#result)}`;
  }

  /**
   * The state word used by `describe()`.
   *
   * @returns `"pending"`, `"cancelled"` or `"finished"`.
   */
  protected stateName(): string {
    return STATE_NAMES[this.#state];
  }

  /**
   * The class word used by `describe()`; subclasses name themselves.
   *
   * @returns `"Future"`.
   */
  protected kindName(): string {
    return "Future";
  }

  /**
   * The word that starts the never-retrieved report ("Future exception was
   * never retrieved"), as asyncio words it: a class's own name would show
   * private subclasses and break under minification.
   *
   * @returns `"Future"`; a `Task` says `"Task"`.
   */
  protected reportKind(): string {
    return "Future";
  }

  #retrieved(): void {
    if (this.#watched) {
      this.#watched = false;
      unretrieved.unregister(this);
      keptUnretrieved(this.#loop)?.delete(this);
    }
  }

  #push(fn: DoneCallback<never>): void {
    if (this.#callback === null && this.#callbacks === null) {
      this.#callback = fn;
    } else {
      (this.#callbacks ??= []).push(fn);
    }
  }

  #scheduleCallbacks(): void {
    const first = this.#callback;
    const callbacks = this.#callbacks;
    this.#callback = null;
    this.#callbacks = null;
    if (first !== null) this.#loop.callSoon(first as DoneCallback<T>, this);
    if (callbacks === null) return;
    for (let i = 0; i < callbacks.length; i++) {
      this.#loop.callSoon(callbacks[i] as DoneCallback<T>, this);
    }
  }

  #stateError(what: string): Error {
    if (this.#state === CANCELLED) {
      return new CancelledError(this.#cancelMessage);
    }
    return new InvalidStateError(`Cannot get ${what}: future is pending`);
  }

  #doneError(what: string): InvalidStateError {
    return new InvalidStateError(
      `Cannot call ${what}(): future is already ${STATE_NAMES[this.#state]}`,
    );
  }
}

// Runs a done callback at once (see settleRunningCallbacks()); what it
// throws is reported as a handle's callback error is.
function runNow(future: Future<unknown>, cb: DoneCallback<never>): void {
  try {
    (cb as DoneCallback<unknown>)(future);
  } catch (exception) {
    future.getLoop().callExceptionHandler({
      message: `Exception in callback ${cb.name || "anonymous"}`,
      exception,
    });
  }
}

// An error as `Name: message` (what String() makes of it), anything else
// (or an error whose toString() throws) as formatReceived() shows it.
function describeError(exc: unknown): string {
  if (exc instanceof Error) {
    try {
      return String(exc);
    } catch {
      // Fall back on the class name below.
    }
  }
  return formatReceived(exc);
}

// Whether following results from `next`, future to future as a promise
// does, comes back to `future` or goes round without it; it stops at a
// future not done or failed, whose own then() checks again once it is.
function leadsBack(future: Future<unknown>, next: Future<unknown>): boolean {
  const seen = new Set<unknown>([future]);
  let at: unknown = next;
  while (at instanceof Future && at.done() && !at.cancelled()) {
    if (seen.has(at)) return true;
    seen.add(at);
    try {
      at = at.result();
    } catch {
      return false;
    }
  }
  return false;
}

// Settles the promise then() returned from the future's outcome (or the
// cancellation that interrupted the awaiting task), through the handlers
// as a promise's then() does.
function settleThen<T, R1, R2>(
  future: Future<T>,
  interrupted: unknown,
  onfulfilled: ((value: T) => R1 | PromiseLike<R1>) | null | undefined,
  onrejected: ((reason: unknown) => R2 | PromiseLike<R2>) | null | undefined,
  resolve: (value: R1 | R2 | PromiseLike<R1 | R2>) => void,
  reject: (reason: unknown) => void,
): void {
  let value: T;
  try {
    if (interrupted !== undefined) {
      // The task was cancelled after the future completed: it resumes with
      // the cancellation, unless the future's outcome is a CancelledError
      // itself (cancelled, or failed with one as gather() does), which
      // goes in as it is, as in asyncio's Task.__step. The outcome is read
      // either way, as a generator task's wake-up does; a result goes back
      // to the future (a read puts its bytes back).
      try {
        resultDropped(future, future.result());
      } catch (e) {
        if (e instanceof CancelledError) throw e;
      }
      throw interrupted;
    }
    value = future.result();
    if (value instanceof Future && leadsBack(future, value)) {
      // A promise would follow the futures round for ever, one microtask
      // per hop, starving the timers (a native promise resolved with
      // itself rejects the same way).
      throw new TypeError(
        (value as unknown) === future
          ? "Cannot await a Future: its result is the future itself (a task that returns itself?); read it with result() or yield* instead"
          : "Cannot await a Future: its result is a future whose result leads back to it (tasks that return each other?); read it with result() or yield* instead",
      );
    }
  } catch (e) {
    if (onrejected == null) return reject(e);
    try {
      resolve(onrejected(e));
    } catch (e2) {
      reject(e2);
    }
    return;
  }
  if (onfulfilled == null) return resolve(value as unknown as R1);
  try {
    resolve(onfulfilled(value));
  } catch (e2) {
    reject(e2);
  }
}

/**
 * Returns `true` for a tulip `Future` (or `Task`).
 *
 * @param x Any value.
 * @returns Whether `x` is a `Future`.
 *
 * @example
 * ```ts
 * import { isFuture } from "@tulip/tulip/futures";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(isFuture(Promise.resolve(1)), false);
 * ```
 */
export function isFuture(x: unknown): x is Future<unknown> {
  return x instanceof Future;
}
