/**
 * `TaskGroup` and `withTaskGroup`: structured concurrency — tasks that
 * live no longer than the block that started them.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import { Future } from "../futures/future.ts";
import {
  CancelledError,
  formatReceived,
  InvalidStateError,
} from "../futures/errors.ts";
import { type Coroutine, currentTask, ensureFuture, Task } from "./task.ts";
import {
  awaitableCoroutine,
  bodyReceived,
  isCoroutine,
  isPromiseLike,
} from "./_awaitables.ts";
import { checkOptions, settleRunningCallbacks } from "../futures/_runtime.ts";

/** Options for the `TaskGroup` constructor and `withTaskGroup`. */
export interface TaskGroupOptions {
  /**
   * The loop the group's tasks run on.
   *
   * @default {the current task's loop, else the running loop}
   */
  loop?: SchedulingLoop;
}

/** Options for `TaskGroup.createTask()`. */
export interface CreateTaskOptions {
  /**
   * The task's name, shown when it is printed.
   *
   * @default {"Task-<n>"}
   */
  name?: string;
}

const NO_ERROR: unique symbol = Symbol("no error");

// Entry points for withTaskGroup(), which needs the group's private parts:
// friend accessors (see loop/_handle.ts), set in TaskGroup's static block.
let runInline: <T>(tg: TaskGroup, coro: Coroutine<T>) => Coroutine<T>;
let runAsync: <T>(tg: TaskGroup, promise: PromiseLike<T>) => Promise<T>;

/**
 * A group of tasks that finish together: the owner waits for all of them,
 * and one failure stops the rest.
 *
 * The group belongs to the task that creates it (its parent). When a
 * child fails with an error, the group cancels the other children and the
 * parent — so that the parent's own work in the block stops where it
 * waits — and, once every child is done, withdraws that cancellation
 * (`uncancel()`) and fails with an `AggregateError` of the errors.
 * Cancelled children are not errors. When the parent is cancelled from
 * outside while it waits for the group, the children are cancelled, and
 * once they are done the `CancelledError` goes on (unless a child failed:
 * errors come first).
 *
 * Three ways to use it, all with asyncio 3.11's semantics:
 *
 * - `yield* withTaskGroup(function* (tg) { … })` in a generator coroutine,
 *   or `await withTaskGroup(async (tg) => { … })` in an async function:
 *   the block's own error also cancels the children and joins the
 *   `AggregateError`. The most faithful form.
 * - `await using tg = new TaskGroup()` in an async function: the children
 *   are waited for at the end of the block. `await using` cannot see an
 *   error thrown by the block, and if the block throws and the group
 *   fails too, JavaScript reports a `SuppressedError` whose `error` is the
 *   `AggregateError`; a cancellation of the parent still cancels the
 *   children.
 * - `tg.wait()` anywhere: a future of the group's end.
 *
 * A group outside any task has no parent: it only cancels its children.
 *
 * PEP 3156 (as in asyncio 3.11): `asyncio.TaskGroup`.
 *
 * @example `await using` in an async function
 * ```ts
 * import { sleep, TaskGroup } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const main = loop.createTask(async () => {
 *   const seen: string[] = [];
 *   {
 *     await using tg = new TaskGroup();
 *     tg.createTask(async () => seen.push(await sleep(2, "slow")));
 *     tg.createTask(async () => seen.push(await sleep(1, "fast")));
 *   }
 *   return seen;
 * });
 * assertEquals(await loop.runUntilComplete(main), ["fast", "slow"]);
 * loop.close();
 * ```
 *
 * @example A failing child cancels its siblings
 * ```ts
 * import { sleep, TaskGroup } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const main = loop.createTask(async () => {
 *   const tg = new TaskGroup();
 *   const slow = tg.createTask(async () => await sleep(60));
 *   tg.createTask(async () => {
 *     await sleep(1);
 *     throw new Error("boom");
 *   });
 *   try {
 *     await tg.wait();
 *   } catch (e) {
 *     if (!(e instanceof AggregateError)) throw e;
 *     assertEquals(e.errors.map((x: Error) => x.message), ["boom"]);
 *   }
 *   return slow.cancelled();
 * });
 * assertEquals(await loop.runUntilComplete(main), true);
 * assertEquals(loop.time(), 1);
 * loop.close();
 * ```
 */
export class TaskGroup implements AsyncDisposable {
  #loop: SchedulingLoop | null;
  #parent: Task<unknown> | null = null;
  #baseline = 0;
  #tasks = new Set<Task<unknown>>();
  #errors: unknown[] = [];
  #aborting = false;
  #exiting = false;
  #finished = false;
  #parentCancelRequested = false;
  #onCompleted: Future<void> | null = null;
  #waiter: Future<void> | null = null;
  #whenEmpty: (() => void) | null = null;
  #propagate: CancelledError | null = null;

  static {
    runInline = (tg, coro) => tg.#runInline(coro);
    runAsync = (tg, promise) => tg.#runAsync(promise);
  }

  /**
   * Makes a group owned by the current task (if any).
   *
   * @param options The loop to use.
   */
  constructor(options?: TaskGroupOptions) {
    checkOptions(options, "create a TaskGroup", "{ loop }");
    this.#loop = options?.loop ?? null;
    const parent = currentTask(options?.loop);
    this.#bind(parent);
  }

  /**
   * Starts a task in the group. The group keeps it until it is done; if
   * it fails with an error, the group aborts (see the class docs).
   *
   * PEP 3156 (as in asyncio): `TaskGroup.create_task()`.
   *
   * @typeParam T The task's result type.
   * @param coro A generator object, or a function returning a generator
   * or a promise (an async function).
   * @param options The task's name.
   * @returns The task.
   * @throws {InvalidStateError} When the group is finished, or shutting
   * down after an error or a cancellation.
   * @throws {TypeError} When `options` is not an object like `{ name }`.
   */
  createTask<T>(
    coro: Coroutine<T> | (() => Coroutine<T> | PromiseLike<T>),
    options?: CreateTaskOptions,
  ): Task<T> {
    checkOptions(options, "create a Task", "{ name }");
    if (this.#finished || (this.#exiting && this.#tasks.size === 0)) {
      close(coro);
      throw new InvalidStateError(
        "Cannot create a task in the TaskGroup: it is finished",
      );
    }
    if (this.#aborting) {
      close(coro);
      throw new InvalidStateError(
        "Cannot create a task in the TaskGroup: it is shutting down after an error or a cancellation",
      );
    }
    const loop = this.#loop ?? this.#parent?.getLoop();
    const task = new Task<T>(coro, { name: options?.name, loop });
    this.#loop ??= task.getLoop();
    this.#tasks.add(task as Task<unknown>);
    task.addDoneCallback(this.#onTaskDone as (f: Future<T>) => void);
    return task;
  }

  /**
   * Returns a future that resolves once every task of the group is done —
   * tasks may still be added meanwhile — or fails with an `AggregateError`
   * of their errors. Cancelling it (or the task awaiting it) cancels the
   * group's tasks; it then fails with `CancelledError` once they are done.
   * Calling it again returns the same future.
   *
   * @returns A future of the group's end.
   */
  wait(): Future<void> {
    return this.#waiter ?? this.#startWaiter(NO_ERROR);
  }

  /**
   * Waits for the group at the end of an `await using` block, like
   * `wait()`. If the owning task is being cancelled (the block was
   * presumably interrupted), the group's tasks are cancelled first and
   * that cancellation goes on. If `wait()` was called already, this only
   * waits for it; its caller gets the outcome.
   *
   * @returns A promise that settles when every task is done.
   * @throws {AggregateError} The tasks' errors.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#waiter !== null) {
      await this.#waiter.then(ignore, ignore);
      return;
    }
    const parent = this.#parent;
    const ours = this.#parentCancelRequested ? 1 : 0;
    let cancelled = parent !== null &&
      parent.cancelling() > this.#baseline + ours;
    const waiter = this.#startWaiter(NO_ERROR);
    const settled = waiter.then(); // the parent waits from here
    if (waiter.cancelledAsAwaited()) {
      // The cancellation was still pending (the parent cancelled itself in
      // the block's last step): the block was not interrupted, and the
      // group's CancelledError is the one to go out, as asyncio's exit
      // raises it.
      cancelled = false;
    } else if (cancelled) {
      this.#beginExit(new CancelledError());
    }
    try {
      await settled;
    } catch (e) {
      // The block's own CancelledError is already on its way out.
      if (cancelled && e instanceof CancelledError) return;
      throw e;
    }
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `TaskGroup ${this.#stateName()}`;
  }

  /** How Deno's `console.log` prints a group. */
  [Symbol.for("Deno.customInspect")](): string {
    return `TaskGroup ${this.#stateName()} tasks=${this.#tasks.size} errors=${this.#errors.length}`;
  }

  #stateName(): string {
    if (this.#finished) return "finished";
    if (this.#aborting) return "aborting";
    if (this.#exiting) return "exiting";
    return "active";
  }

  #bind(parent: Task<unknown> | null): void {
    this.#parent = parent;
    this.#baseline = parent?.cancelling() ?? 0;
    if (parent !== null) this.#loop ??= parent.getLoop();
  }

  #abort(): void {
    this.#aborting = true;
    for (const t of this.#tasks) if (!t.done()) t.cancel();
  }

  #onTaskDone = (task: Task<unknown>): void => {
    this.#tasks.delete(task);
    this.#noteOutcome(task);
    if (this.#tasks.size > 0) return;
    const completed = this.#onCompleted;
    if (completed !== null && !completed.done()) completed.setResult(undefined);
    this.#whenEmpty?.();
  };

  #noteOutcome(task: Task<unknown>): void {
    if (task.cancelled()) return;
    const exc = task.exception();
    if (exc === undefined) return;
    this.#errors.push(exc);
    const parent = this.#parent;
    if (parent !== null && parent.done()) {
      task.getLoop().callExceptionHandler({
        message:
          `Task ${task.describe()} failed but its TaskGroup's parent task is already done`,
        exception: exc,
        task,
      });
      return;
    }
    if (!this.#aborting && !this.#parentCancelRequested) {
      // Stop the parent's own work in the block too; the end of the group
      // withdraws this request again with uncancel().
      this.#abort();
      if (parent !== null) {
        this.#parentCancelRequested = true;
        parent.cancel();
      }
    }
  }

  // asyncio's TaskGroup._aexit(), in three steps: begin, wait for the
  // tasks (handling cancellations), conclude. #exit() and #exitAsync()
  // run them inline in the parent (the generator and async forms of
  // withTaskGroup); #startWaiter() runs them with callbacks behind a
  // future (wait(), `await using`), so that no task of its own can be
  // cancelled before it starts.
  *#exit(error: unknown): Coroutine<void> {
    this.#beginExit(error);
    while (this.#tasks.size > 0) {
      this.#onCompleted ??= new Future<void>({ loop: this.#loop! });
      try {
        yield* this.#onCompleted;
      } catch (e) {
        if (!(e instanceof CancelledError)) throw e;
        this.#cancelledWhileExiting(e);
      }
      this.#onCompleted = null;
    }
    const outcome = this.#conclude(error);
    if (outcome !== NO_ERROR) throw outcome;
  }

  #startWaiter(error: unknown): GroupWaiter {
    const waiter = new GroupWaiter(
      this.#loop ?? this.#parent?.getLoop(),
      (msg) => {
        this.#cancelledWhileExiting(new CancelledError(msg));
        // The slot the cancel() booked: with no task left, the group ends
        // here and its waiter resumes in it, as asyncio's parent, woken
        // there in the exit, finds none and ends.
        if (this.#tasks.size === 0 && this.#whenEmpty !== null) {
          this.#whenEmpty = null;
          const outcome = this.#conclude(error);
          waiter.settleNow(outcome);
        }
      },
    );
    this.#waiter = waiter;
    this.#beginExit(error);
    this.#whenEmpty = () => {
      // A cancel() not handled yet: its slot ends the group.
      if (waiter.cancelPending()) return;
      this.#whenEmpty = null;
      waiter.settle(this.#conclude(error));
    };
    if (this.#tasks.size === 0) this.#whenEmpty();
    return waiter;
  }

  #beginExit(error: unknown): void {
    this.#exiting = true;
    if (error instanceof CancelledError) this.#propagate = error;
    if (error !== NO_ERROR && !this.#aborting) this.#abort();
  }

  #cancelledWhileExiting(e: CancelledError): void {
    // Unless we are aborting already (and so caused it), the parent is
    // being cancelled from outside.
    if (!this.#aborting) {
      this.#propagate = e;
      this.#abort();
    }
  }

  // Once no task is left: what the exit throws, or NO_ERROR.
  #conclude(error: unknown): unknown {
    this.#finished = true;
    let propagate = this.#propagate;
    const parent = this.#parent;
    if (this.#parentCancelRequested && parent !== null) {
      this.#parentCancelRequested = false;
      if (parent.uncancel() === 0) propagate = null;
    }
    const errors = this.#errors;
    if (propagate !== null && errors.length === 0) return propagate;
    if (error !== NO_ERROR && !(error instanceof CancelledError)) {
      errors.push(error);
    }
    if (errors.length === 0) return NO_ERROR;
    // The errors take priority over a cancellation from outside; keep that
    // cancellation pending so that it is delivered at the parent's next wait.
    if (parent !== null && parent.cancelling() > 0) this.#recancel(parent);
    return new AggregateError(
      errors,
      `Cannot finish the TaskGroup: ${errors.length} unhandled error${
        errors.length === 1 ? "" : "s"
      }`,
    );
  }

  #recancel(parent: Task<unknown>): void {
    if (currentTask() === parent) {
      parent.uncancel();
      parent.cancel();
      return;
    }
    const waiter = this.#waiter;
    if (waiter instanceof GroupWaiter && waiter.recancelOnResume(parent)) {
      return;
    }
    // From a callback: the parent first has to take the AggregateError,
    // which it does on the next turn; cancel it on the one after — unless
    // the cancellation was withdrawn meanwhile (a timeout scope the error
    // went out through called uncancel()), as asyncio's uncancel() to zero
    // clears the re-cancellation its exit made in the parent.
    const loop = parent.getLoop();
    loop.callSoon(() =>
      loop.callSoon(() => {
        if (parent.done() || parent.cancelling() === 0) return;
        parent.uncancel();
        parent.cancel();
      })
    );
  }

  *#runInline<T>(coro: Coroutine<T>): Coroutine<T> {
    // The body has not run yet: the group belongs to the task running it.
    this.#bind(currentTask());
    let result: T | undefined;
    let error: unknown = NO_ERROR;
    try {
      result = yield* coro;
    } catch (e) {
      error = e;
    }
    if (this.#waiter !== null) {
      yield* this.#waiter; // the body called wait() itself
    } else {
      const mirror = new Future<void>({ loop: this.#loop! });
      this.#waiter = mirror;
      try {
        yield* this.#exit(error);
      } catch (e) {
        settleLike(mirror, e);
        throw e;
      }
      mirror.setResult(undefined);
    }
    if (error !== NO_ERROR) throw error;
    return result as T;
  }

  async #runAsync<T>(promise: PromiseLike<T>): Promise<T> {
    let result: T | undefined;
    let error: unknown = NO_ERROR;
    try {
      result = await promise;
    } catch (e) {
      error = e;
    }
    if (this.#waiter !== null) {
      await this.#waiter; // the body called wait() itself
    } else {
      const mirror = new Future<void>({
        loop: this.#loop ?? this.#parent?.getLoop(),
      });
      this.#waiter = mirror;
      try {
        await this.#exitAsync(error);
      } catch (e) {
        settleLike(mirror, e);
        throw e;
      }
      mirror.setResult(undefined);
    }
    if (error !== NO_ERROR) throw error;
    return result as T;
  }

  // #exit() for the async form: the same steps, awaited in the parent's
  // own task, as asyncio's __aexit__ runs them.
  async #exitAsync(error: unknown): Promise<void> {
    this.#beginExit(error);
    while (this.#tasks.size > 0) {
      this.#onCompleted ??= new Future<void>({ loop: this.#loop! });
      try {
        await this.#onCompleted;
      } catch (e) {
        if (!(e instanceof CancelledError)) throw e;
        this.#cancelledWhileExiting(e);
      }
      this.#onCompleted = null;
    }
    const outcome = this.#conclude(error);
    if (outcome !== NO_ERROR) throw outcome;
  }
}

// The future of wait(): cancelling it cancels the group's tasks, and it
// ends (cancelled) once they are done, as asyncio's exit does. As there,
// where the cancelled parent resumes in __aexit__ on the next turn and
// only then cancels the tasks, the cancellation is handled one turn after
// cancel(): a task created just before still runs its first step.
class GroupWaiter extends Future<void> {
  readonly #onCancel: (msg: string | undefined) => void;
  #pending: { msg: string | undefined } | null = null;
  // The tasks waiting for it (usually just the parent).
  readonly #awaitedBy = new Set<Task<unknown>>();
  #recancel: Task<unknown> | null = null;
  #awaiting = false; // in then(), as the awaiting task is told
  #cancelledAsAwaited = false;

  constructor(
    loop: SchedulingLoop | undefined,
    onCancel: (msg: string | undefined) => void,
  ) {
    super({ loop });
    this.#onCancel = onCancel;
  }

  override cancel(msg?: string): boolean {
    if (this.done()) return false;
    if (this.#awaiting) this.#cancelledAsAwaited = true;
    if (this.#pending === null) {
      this.#pending = { msg };
      this.getLoop().callSoon(this.#deliverCancel);
    }
    return true;
  }

  /**
   * Arranges for `parent` to be cancelled again when it resumes with this
   * future's error, if it is the task waiting for it: asyncio's exit does
   * so in the parent, so that the parent's very next step (a return
   * included) sees the cancellation.
   */
  recancelOnResume(parent: Task<unknown>): boolean {
    if (!this.#awaitedBy.has(parent)) return false;
    this.#recancel = parent;
    return true;
  }

  /**
   * Whether the task awaiting this future cancelled it as it began to
   * wait: its cancellation was pending, not delivered yet.
   */
  cancelledAsAwaited(): boolean {
    return this.#cancelledAsAwaited;
  }

  /** Whether a cancel() waits for the slot it booked. */
  cancelPending(): boolean {
    return this.#pending !== null;
  }

  // The slot cancel() booked: the cancellation is handled there.
  #deliverCancel = (): void => {
    const pending = this.#pending;
    if (pending === null || this.done()) return;
    this.#pending = null;
    this.#onCancel(pending.msg);
  };

  override then<R1 = void, R2 = never>(
    onfulfilled?: ((value: void) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    const task = currentTask();
    if (task !== null) this.#awaitedBy.add(task);
    this.#awaiting = true;
    try {
      return super.then(onfulfilled, (reason) => {
        reason = this.#errorsFirst(task, reason);
        this.#recancelIn(task);
        if (onrejected == null) throw reason;
        return onrejected(reason);
      });
    } finally {
      this.#awaiting = false;
    }
  }

  override *[Symbol.iterator](): Generator<Future<void>, void, unknown> {
    const task = currentTask();
    if (task !== null) this.#awaitedBy.add(task);
    try {
      return yield* super[Symbol.iterator]();
    } catch (e) {
      const reason = this.#errorsFirst(task, e);
      this.#recancelIn(task);
      throw reason;
    }
  }

  #recancelIn(task: Task<unknown> | null): void {
    if (task === null || this.#recancel !== task) return;
    this.#recancel = null;
    task.uncancel();
    task.cancel();
  }

  // The task waiting for the group was cancelled after the group ended
  // with errors, before it resumed: as in asyncio's exit, where the group
  // ends in the task itself, the errors win and the cancellation stays
  // pending for the task's next wait.
  #errorsFirst(task: Task<unknown> | null, reason: unknown): unknown {
    if (
      task === null || !(reason instanceof CancelledError) || !this.done() ||
      this.cancelled()
    ) {
      return reason;
    }
    const errors = this.exception();
    if (errors === undefined) return reason;
    task.uncancel();
    task.cancel();
    return errors;
  }

  settle(outcome: unknown): void {
    this.#awaitedBy.clear(); // recancelOnResume() came first
    if (outcome === NO_ERROR) this.setResult(undefined);
    else if (outcome instanceof CancelledError) super.cancel(outcome.message);
    else this.setException(outcome);
  }

  /** Settles, running the done callbacks (the waiting task) at once. */
  settleNow(outcome: unknown): void {
    settleRunningCallbacks(this, () => this.settle(outcome));
  }
}

function ignore(): void {}

function close(coro: unknown): void {
  if (isCoroutine(coro)) coro.return(undefined);
}

function settleLike(mirror: Future<void>, error: unknown): void {
  if (error instanceof CancelledError) {
    mirror.cancel(error.message);
  } else {
    mirror.setException(error);
    mirror.exception(); // the error is thrown to the body's caller
  }
}

/**
 * Runs `body` with a new `TaskGroup` in the current task, and waits for
 * every task it started before returning `body`'s result — Python's
 * `async with asyncio.TaskGroup() as tg:`. Pass a generator function to
 * get a coroutine for `yield*`, or an async function to get a promise for
 * `await`. That coroutine, awaited from an async function instead, runs
 * as a task of its own, which the `await` waits for.
 *
 * If a child fails, its siblings and `body` are cancelled; if `body`
 * fails, the children are cancelled. Either way the result is an
 * `AggregateError` of every error (the children's, then `body`'s), once
 * all the children are done. If the task running it is cancelled, the
 * children are cancelled too and the `CancelledError` goes on.
 *
 * PEP 3156 (as in asyncio 3.11): `async with asyncio.TaskGroup()`.
 *
 * @typeParam T What `body` returns.
 * @param body A generator function or an async function; it receives the
 * group.
 * @param options The loop to use.
 * @returns A coroutine, or a promise, of `body`'s result.
 * @throws {TypeError} When `body` returns neither a generator nor a
 * promise.
 *
 * @example The generator form
 * ```ts
 * import { sleep, withTaskGroup } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * function* main(): Coroutine<string> {
 *   const [a, b] = yield* withTaskGroup(function* (tg) {
 *     const a = tg.createTask(function* (): Coroutine<string> {
 *       return yield* sleep(2, "a");
 *     });
 *     const b = tg.createTask(async () => await sleep(1, "b"));
 *     return [a, b] as const;
 *   });
 *   return a.result() + b.result(); // both are done here
 * }
 * assertEquals(await loop.runUntilComplete(main()), "ab");
 * assertEquals(loop.time(), 2);
 * loop.close();
 * ```
 *
 * @example The async form: the block's error cancels the children
 * ```ts
 * import { sleep, withTaskGroup } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const main = loop.createTask(async () => {
 *   try {
 *     await withTaskGroup(async (tg) => {
 *       tg.createTask(async () => await sleep(60));
 *       await sleep(1);
 *       throw new TypeError("bad input");
 *     });
 *   } catch (e) {
 *     if (!(e instanceof AggregateError)) throw e;
 *     return e.errors[0].message;
 *   }
 * });
 * assertEquals(await loop.runUntilComplete(main), "bad input");
 * assertEquals(loop.time(), 1);
 * loop.close();
 * ```
 */
export function withTaskGroup<T>(
  body: (tg: TaskGroup) => Coroutine<T>,
  options?: TaskGroupOptions,
): Coroutine<T>;
/**
 * Runs the async function `body` with a new `TaskGroup` in the current
 * task and waits for every task it started; see the first signature for
 * the whole contract.
 *
 * @typeParam T What `body` returns.
 * @param body An async function; it receives the group.
 * @param options The loop to use.
 * @returns A promise of `body`'s result.
 * @throws {TypeError} When `body` returns neither a generator nor a
 * promise.
 */
export function withTaskGroup<T>(
  body: (tg: TaskGroup) => PromiseLike<T>,
  options?: TaskGroupOptions,
): Promise<T>;
export function withTaskGroup<T>(
  body: (tg: TaskGroup) => Coroutine<T> | PromiseLike<T>,
  options?: TaskGroupOptions,
): Coroutine<T> | Promise<T> {
  if (typeof body !== "function") {
    throw new TypeError(
      `Cannot run withTaskGroup(): body must be a generator function or an async function, received ${
        formatReceived(body)
      }`,
    );
  }
  const tg = new TaskGroup(options);
  const out = body(tg);
  if (isCoroutine(out)) {
    // Awaited from an async function instead of yield*, it runs as a task.
    return awaitableCoroutine(
      runInline(tg, out as Coroutine<T>),
      (gen) => ensureFuture(gen, { loop: options?.loop }),
    );
  }
  if (isPromiseLike(out)) return runAsync(tg, out as PromiseLike<T>);
  throw new TypeError(
    `Cannot run withTaskGroup(): body must return a generator or a promise, received ${
      bodyReceived(out)
    }`,
  );
}
