/**
 * `timeout` and `timeoutAt`: scopes that cancel the work inside them when
 * time runs out, and turn that cancellation into a `TimeoutError`.
 *
 * How it works, exactly as asyncio's `asyncio.timeout()`: entering the
 * scope binds it to the current task and arms a timer. When the timer
 * fires, the scope cancels that task, so a `CancelledError` arrives where
 * the task waits, inside the scope. On the way out the scope calls the
 * task's `uncancel()`; if that brings the task's `cancelling()` count back
 * to what it was on entry, the cancellation was the scope's own and the
 * `CancelledError` is replaced with a `TimeoutError`. If someone else
 * cancelled the task too (an outer timeout, a `TaskGroup`, a caller), the
 * count stays higher and the `CancelledError` goes on: an outer
 * cancellation is never swallowed.
 *
 * Python enters such scopes with `async with`. JavaScript's `await using`
 * cannot see (let alone replace) the error leaving its block, so a
 * `Timeout` is used through functions instead:
 *
 * - `timeout(delay).run(aw)` returns a `Future` (a task) and works the same
 *   from a generator (`yield*`) and an async function (`await`): the
 *   awaitable runs in a new task that the scope cancels.
 * - `timeout(delay).scope(body)` runs `body` in the *current* task, just
 *   like `async with`: a generator function gives a coroutine for
 *   `yield*`, an async function gives a promise for `await`.
 * - `enter()` and `exit(error)` are the raw protocol (`__aenter__` and
 *   `__aexit__`) for code that wants to write the `try`/`catch` itself.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { Handle } from "../loop/handle.ts";
import { Future } from "../futures/future.ts";
import {
  CancelledError,
  formatReceived,
  InvalidStateError,
  TimeoutError,
} from "../futures/errors.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import {
  type Awaitable,
  type Coroutine,
  currentTask,
  ensureFuture,
  type Task,
} from "./task.ts";
import {
  awaitableCoroutine,
  bodyReceived,
  checkAwaitable,
  isCoroutine,
  isPromiseLike,
} from "./_awaitables.ts";
import { startWrapper, WrapperTask } from "./_wrapper_task.ts";
import { checkOptions } from "../futures/_runtime.ts";

const CREATED = 0;
const ENTERED = 1;
const EXPIRING = 2;
const EXPIRED = 3;
const EXITED = 4;
const STATE_NAMES = [
  "created",
  "active",
  "expiring",
  "expired",
  "finished",
] as const;

/** Options for `timeout`, `timeoutAt` and the `Timeout` constructor. */
export interface TimeoutOptions {
  /**
   * The loop whose clock the deadline is measured on; it also runs the
   * task that `run()` creates.
   *
   * @default {the running loop}
   */
  loop?: SchedulingLoop;
}

/**
 * A timeout scope: cancels the task it is entered in when its deadline
 * passes, and turns that cancellation into a `TimeoutError` when the scope
 * is left. See the module documentation for how it cooperates with other
 * cancellations.
 *
 * A `Timeout` is entered at most once: through `run()`, `scope()` or
 * `enter()`.
 *
 * PEP 3156 (as in asyncio 3.11): `asyncio.Timeout`.
 *
 * @example Moving the deadline from inside the scope
 * ```ts
 * import { sleep, timeout, TimeoutError } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * function* main(): Coroutine<void> {
 *   yield* timeout(10).scope(function* (t) {
 *     t.reschedule(loop.time() + 2);
 *     yield* sleep(5);
 *   });
 * }
 * await assertRejects(() => loop.runUntilComplete(main()), TimeoutError);
 * assertEquals(loop.time(), 2);
 * loop.close();
 * ```
 */
export class Timeout {
  #when: number | null;
  #loop: SchedulingLoop | null;
  #state = CREATED;
  #claimed = false;
  #task: Task<unknown> | null = null;
  #cancelling = 0;
  #handle: Handle | null = null;

  /**
   * Makes a scope with deadline `when`; it is not armed until entered.
   *
   * @param when The deadline as loop time in seconds (see `loop.time()`),
   * or `null` for none.
   * @param options The loop to use.
   * @throws {TypeError} When `when` is neither a number nor `null`, or
   * `options` is not an object like `{ loop }`.
   */
  constructor(when: number | null, options?: TimeoutOptions) {
    this.#when = checkWhen(when, "create a Timeout");
    checkOptions(options, "create a Timeout", "{ loop }");
    this.#loop = options?.loop ?? getRunningLoop();
  }

  /**
   * Returns the deadline.
   *
   * @returns The deadline as loop time in seconds, or `null` for none.
   */
  when(): number | null {
    return this.#when;
  }

  /**
   * Moves the deadline. A deadline already in the past fires on the loop's
   * next turn; `null` disarms the scope.
   *
   * @param when The new deadline as loop time in seconds, or `null`.
   * @throws {TypeError} When `when` is neither a number nor `null`.
   * @throws {InvalidStateError} When the scope was not entered yet (as
   * asyncio 3.13's `RuntimeError`: give the deadline to `timeout()` or
   * `timeoutAt()` instead), has expired or was left.
   */
  reschedule(when: number | null): void {
    when = checkWhen(when, "reschedule the timeout");
    if (this.#state === CREATED) {
      throw new InvalidStateError(
        "Cannot reschedule the timeout: it has not been entered; enter it first (run(), scope() or enter()), or give the deadline to timeout()/timeoutAt()",
      );
    }
    if (this.#state !== ENTERED) {
      throw new InvalidStateError(
        `Cannot reschedule the timeout: it is ${STATE_NAMES[this.#state]}`,
      );
    }
    this.#when = when;
    this.#arm();
  }

  /**
   * Returns `true` once the deadline passed and the scope cancelled its
   * task (even if the work then finished without noticing).
   *
   * @returns Whether the timeout fired.
   */
  expired(): boolean {
    return this.#state === EXPIRING || this.#state === EXPIRED;
  }

  /**
   * Enters the scope in the current task and arms the timer (asyncio's
   * `__aenter__`). Every `enter()` must be followed by one `exit()`, on
   * every path: usually `try { … } catch (e) { throw t.exit(e); }` then
   * `t.exit()` after success.
   *
   * @throws {InvalidStateError} When there is no current task, or the
   * scope was already entered.
   */
  enter(): void {
    const task = currentTask();
    if (task !== null) this.#claim("enter");
    this.#enter(task);
  }

  /**
   * Leaves the scope (asyncio's `__aexit__`): disarms the timer and, if
   * the timeout fired, withdraws its cancellation with `uncancel()`. Pass
   * what the block threw, if it threw.
   *
   * @param error The error leaving the block, if any.
   * @returns What to throw: a `TimeoutError` (with the `CancelledError` as
   * its `cause`) when the error is the scope's own cancellation, otherwise
   * `error` unchanged (`undefined` when none was given).
   * @throws {InvalidStateError} When the scope is not active.
   */
  exit(error?: unknown): unknown {
    if (this.#state !== ENTERED && this.#state !== EXPIRING) {
      throw new InvalidStateError(
        `Cannot exit the timeout: it is ${STATE_NAMES[this.#state]}`,
      );
    }
    this.#handle?.cancel();
    this.#handle = null;
    if (this.#state === ENTERED) {
      this.#state = EXITED;
      return error;
    }
    this.#state = EXPIRED;
    if (
      this.#task!.uncancel() <= this.#cancelling &&
      error instanceof CancelledError
    ) {
      const timedOut = new TimeoutError(
        `Cannot finish in time: the deadline passed, received when=${this.#when}`,
      );
      timedOut.cause = error;
      return timedOut;
    }
    return error;
  }

  /**
   * Runs `aw` under the timeout in a new task and returns that task. On
   * timeout the work is cancelled and the task fails with `TimeoutError`
   * once the work has really finished (its cleanup included); cancelling
   * the returned future cancels the work and is never turned into a
   * timeout. A generator coroutine runs inside the new task, and so does
   * a function (an async function makes it an async-function task), as
   * asyncio runs a coroutine inline; a promise cannot be interrupted, only
   * abandoned.
   *
   * Called in a task of its loop, the new task starts at once: it waits
   * for `aw` from the call on (a function runs up to its first wait before
   * `run()` returns), and a task awaiting it goes on in the turn it ends,
   * where asyncio's `async with timeout(…): await aw` would (other done
   * callbacks are scheduled as for any task). Inside `aw`, `currentTask()`
   * is the new task, not the caller. Called elsewhere, it starts on the
   * loop's next turn.
   *
   * @typeParam T The result type.
   * @param aw A future, task, coroutine, promise, or a function returning
   * a coroutine or a promise.
   * @returns A future of `aw`'s result.
   * @throws {InvalidStateError} When the scope was already used, no loop
   * is known, or `aw` is a future of another loop than the scope's.
   * @throws {TypeError} When `aw` is none of these.
   *
   * @example The same call from an async function
   * ```ts
   * import { sleep, timeout, TimeoutError } from "@tulip/tulip";
   * import { VirtualTimeLoop } from "@tulip/tulip/testing";
   * import { assertEquals, assertRejects } from "@std/assert";
   *
   * const loop = new VirtualTimeLoop();
   * const main = loop.createTask(async () => {
   *   assertEquals(await timeout(5).run(sleep(1, "fast")), "fast");
   *   await timeout(5).run(async () => await sleep(60));
   * });
   * await assertRejects(() => loop.runUntilComplete(main), TimeoutError);
   * assertEquals(loop.time(), 6);
   * loop.close();
   * ```
   */
  run<T>(
    aw: Awaitable<T> | (() => Coroutine<T> | PromiseLike<T>),
  ): Future<T> {
    checkAwaitable(aw, "call run()");
    if (aw instanceof Future && this.#loop !== null) {
      // As ensureFuture() refuses it, before the scope is used up.
      ensureFuture(aw, { loop: this.#loop });
    }
    this.#claim("run");
    const loop = this.#loop ??
      (aw instanceof Future ? aw.getLoop() : undefined);
    return startWrapper(loop, () =>
      new WrapperTask<T>(
        (task) =>
          typeof aw === "function"
            ? this.#callIn(task, aw)
            : this.#runIn(task, aw),
        { loop },
      ));
  }

  /**
   * Runs `body` under the timeout in the current task, like Python's
   * `async with asyncio.timeout(…)`: no new task, and `body` sees the
   * cancellation where it waits. With a generator function it returns a
   * coroutine to `yield*` (entered when it starts); with an async function
   * it returns a promise to `await` (entered at once). Use a generator body
   * from generator coroutines: an async body only sees the cancellation
   * when it runs in an async-function task. The coroutine of a generator
   * body, awaited instead of `yield*`-ed, runs as a task of its own, which
   * the `await` waits for.
   *
   * @typeParam T The result type.
   * @param body A generator function or an async function; it receives
   * the scope.
   * @returns A coroutine, or a promise, of `body`'s result.
   * @throws {InvalidStateError} When the scope was already used, or (for
   * an async body) there is no current task.
   * @throws {TypeError} When `body` returns neither a generator nor a
   * promise.
   *
   * @example In an async function
   * ```ts
   * import { sleep, timeout } from "@tulip/tulip";
   * import { VirtualTimeLoop } from "@tulip/tulip/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new VirtualTimeLoop();
   * const main = loop.createTask(async () => {
   *   const t = timeout(1);
   *   try {
   *     await t.scope(async () => await sleep(30));
   *   } catch (e) {
   *     return `${(e as Error).name} expired=${t.expired()}`;
   *   }
   * });
   * assertEquals(await loop.runUntilComplete(main), "TimeoutError expired=true");
   * loop.close();
   * ```
   */
  scope<T>(body: (timeout: Timeout) => Coroutine<T>): Coroutine<T>;
  /**
   * Runs the async function `body` under the timeout in the current task;
   * see the first signature for the whole contract.
   *
   * @typeParam T The result type.
   * @param body An async function; it receives the scope.
   * @returns A promise of `body`'s result.
   * @throws {InvalidStateError} When the scope was already used, or there
   * is no current task.
   */
  scope<T>(body: (timeout: Timeout) => PromiseLike<T>): Promise<T>;
  scope<T>(
    body: (timeout: Timeout) => Coroutine<T> | PromiseLike<T>,
  ): Coroutine<T> | Promise<T> {
    this.#claim("enter");
    // An async body runs up to its first await when called: enter first,
    // as `async with` does before its block, so that the cancellations the
    // task had before are told apart from the ones the body makes. A
    // generator body has not started yet: its entry waits until it does.
    const task = currentTask();
    if (task !== null) this.#enter(task);
    let out: Coroutine<T> | PromiseLike<T>;
    try {
      out = body(this);
    } catch (e) {
      if (task === null) throw e;
      throw this.exit(e);
    }
    // An awaitable coroutine (withTaskGroup()'s generator form) has a
    // then() too: a coroutine, run inline below.
    if (isPromiseLike(out) && !isCoroutine(out)) {
      if (task === null) {
        // Keep the abandoned promise from being reported as unhandled.
        Promise.resolve(out).catch(() => {});
        this.#enter(task); // throws
      }
      return this.#scopedAsync(out as PromiseLike<T>);
    }
    if (task !== null) this.#unenter();
    if (isCoroutine(out)) {
      // Awaited from an async function instead of yield*, it runs as a
      // task.
      return awaitableCoroutine(
        this.#scoped(out as Coroutine<T>),
        (gen) => ensureFuture(gen),
      );
    }
    throw new TypeError(
      `Cannot run the timeout scope: body must return a generator or a promise, received ${
        bodyReceived(out)
      }`,
    );
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `Timeout ${STATE_NAMES[this.#state]}`;
  }

  /** How Deno's `console.log` prints a timeout. */
  [Symbol.for("Deno.customInspect")](): string {
    return `Timeout ${STATE_NAMES[this.#state]} when=${this.#when}`;
  }

  *#runIn<T>(task: WrapperTask<T>, aw: Awaitable<T>): Coroutine<T> {
    this.#enter(task as Task<unknown>);
    // A cancellation of the task from before now reaches the work at the
    // first wait below.
    task.started();
    return yield* this.#awaitIn(task, aw);
  }

  // A function runs in the wrapper task itself, under the scope, as the
  // coroutine of asyncio's wait_for(coro) runs in the caller's task: an
  // async function makes the task an async-function task, a generator
  // function's coroutine runs inline.
  #callIn<T>(
    task: WrapperTask<T>,
    fn: () => Coroutine<T> | PromiseLike<T> | T,
  ): Coroutine<T> | PromiseLike<T> | T {
    this.#enter(task as Task<unknown>);
    task.started();
    let out: Coroutine<T> | PromiseLike<T> | T;
    try {
      out = fn();
    } catch (e) {
      throw this.exit(e);
    }
    if (isPromiseLike(out) && !isCoroutine(out) && !(out instanceof Future)) {
      return this.#scopedAsync(out as PromiseLike<T>);
    }
    if (isCoroutine(out) || out instanceof Future) {
      return this.#awaitIn(task, out as Awaitable<T>);
    }
    this.exit();
    return out as T;
  }

  *#awaitIn<T>(task: WrapperTask<T>, aw: Awaitable<T>): Coroutine<T> {
    let result: T;
    try {
      result = isCoroutine(aw)
        ? yield* aw as Coroutine<T>
        : yield* ensureFuture(aw, { loop: task.getLoop() });
    } catch (e) {
      throw this.exit(e);
    }
    this.exit();
    return result;
  }

  *#scoped<T>(coro: Coroutine<T>): Coroutine<T> {
    this.#enter(currentTask());
    let result: T;
    try {
      result = yield* coro;
    } catch (e) {
      throw this.exit(e);
    }
    this.exit();
    return result;
  }

  async #scopedAsync<T>(promise: PromiseLike<T>): Promise<T> {
    let result: T;
    try {
      result = await promise;
    } catch (e) {
      throw this.exit(e);
    }
    this.exit();
    return result;
  }

  #claim(what: string): void {
    if (this.#claimed) {
      throw new InvalidStateError(
        `Cannot ${what} the timeout: it was already entered, received state=${
          STATE_NAMES[this.#state]
        }`,
      );
    }
    this.#claimed = true;
  }

  #enter(task: Task<unknown> | null): void {
    if (task === null) {
      throw new InvalidStateError(
        "Cannot enter the timeout: it must be used inside a task, received currentTask()=null",
      );
    }
    this.#task = task;
    this.#cancelling = task.cancelling();
    this.#state = ENTERED;
    this.#arm();
  }

  // Undoes #enter() before anything could have waited under the scope.
  #unenter(): void {
    this.#handle?.cancel();
    this.#handle = null;
    this.#task = null;
    this.#state = CREATED;
  }

  #arm(): void {
    this.#handle?.cancel();
    this.#handle = null;
    const when = this.#when;
    if (when === null) return;
    const loop = this.#task!.getLoop();
    this.#handle = when <= loop.time()
      ? loop.callSoon(this.#onTimeout)
      : loop.callAt(when, this.#onTimeout);
  }

  #onTimeout = (): void => {
    this.#handle = null;
    if (this.#state !== ENTERED) return;
    this.#state = EXPIRING;
    this.#task!.cancel();
  };
}

function checkWhen(when: unknown, what: string): number | null {
  if (when === null) return null;
  if (typeof when !== "number" || Number.isNaN(when)) {
    throw new TypeError(
      `Cannot ${what}: when must be a loop time in seconds or null, received ${
        formatReceived(when)
      }`,
    );
  }
  return when;
}

/**
 * Returns a `Timeout` scope whose deadline is `delay` seconds from now;
 * `null` means no deadline (a scope that can be given one later with
 * `reschedule()`).
 *
 * PEP 3156 (as in asyncio 3.11): `asyncio.timeout()`.
 *
 * @param delay How long the scope may last, in seconds, or `null`.
 * @param options The loop whose clock to use.
 * @returns The scope, not yet entered.
 * @throws {TypeError} When `delay` is neither a number nor `null`, or
 * `options` is not an object like `{ loop }`.
 * @throws {InvalidStateError} When a delay is given but no loop is known.
 *
 * @example A generator coroutine with a deadline
 * ```ts
 * import { sleep, timeout, TimeoutError } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * function* main(): Coroutine<string> {
 *   try {
 *     yield* timeout(30).scope(function* () {
 *       yield* sleep(3600);
 *     });
 *     return "finished";
 *   } catch (e) {
 *     return e instanceof TimeoutError ? "timed out" : "failed";
 *   }
 * }
 * assertEquals(await loop.runUntilComplete(main()), "timed out");
 * assertEquals(loop.time(), 30);
 * loop.close();
 * ```
 */
export function timeout(
  delay: number | null,
  options?: TimeoutOptions,
): Timeout {
  if (delay === null) return new Timeout(null, options);
  if (typeof delay !== "number" || Number.isNaN(delay)) {
    throw new TypeError(
      `Cannot create a timeout: delay must be a number of seconds or null, received ${
        formatReceived(delay)
      }`,
    );
  }
  checkOptions(options, "create a timeout", "{ loop }");
  const loop = options?.loop ?? getRunningLoop();
  if (loop === null) {
    throw new InvalidStateError(
      "Cannot create a timeout: no event loop is running, received loop=undefined",
    );
  }
  return new Timeout(loop.time() + delay, { loop });
}

/**
 * Returns a `Timeout` scope whose deadline is the loop time `when`.
 *
 * PEP 3156 (as in asyncio 3.11): `asyncio.timeout_at()`.
 *
 * @param when The deadline as loop time in seconds (see `loop.time()`),
 * or `null` for none.
 * @param options The loop to use.
 * @returns The scope, not yet entered.
 * @throws {TypeError} When `when` is neither a number nor `null`, or
 * `options` is not an object like `{ loop }`.
 *
 * @example A shared deadline for two steps
 * ```ts
 * import { sleep, timeoutAt, TimeoutError } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const deadline = loop.time() + 10;
 * const main = loop.createTask(async () => {
 *   await timeoutAt(deadline).run(sleep(6));
 *   await timeoutAt(deadline).run(sleep(6));
 * });
 * await assertRejects(() => loop.runUntilComplete(main), TimeoutError);
 * assertEquals(loop.time(), 10);
 * loop.close();
 * ```
 */
export function timeoutAt(
  when: number | null,
  options?: TimeoutOptions,
): Timeout {
  return new Timeout(when, options);
}
