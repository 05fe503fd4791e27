/**
 * The runtime's plumbing below the public API, which every folder may
 * import: the running-loop slot (the one piece of global state tulip
 * keeps), its finders, the await hook that makes
 * cancelling an async-function task reach the future it awaits, the
 * microtask-checkpoint count, the `Deque` the scheduler's and the
 * primitives' queues are built on, the host hop loops wait with, the
 * test for coroutine functions that callbacks may not be, the tasks that
 * refuse a plain function's value (`run()`'s main), the checks of an
 * options argument, a `loop` option and a flag that every folder shares,
 * the peer log an HTTP connection lends its handler, the hook by which a
 * future takes back a result its cancelled task dropped, the settling
 * of a future whose callbacks run in a slot booked earlier, and the pacing
 * of failure reports that repeat once per connection.
 *
 * This is the one private file that other folders may import, and no
 * `mod.ts` re-exports it: calling any of it from application code (say
 * `setAwaitHook(null)`) silently breaks the loop or cancellation. The
 * public face is `getRunningLoop()` (`futures/running_loop.ts`) and
 * `getEventLoop()`/`setEventLoop()` (`loop/policy.ts`).
 *
 * `futures/` and `tasks/` reach the loop only through this slot and
 * `import type`, so that imports run one way (the loop imports them, never
 * the reverse); for the same reason `Deque` lives here rather than in
 * `loop/`, which `tasks/` may not import.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import { formatReceived } from "./errors.ts";

export { Deque } from "./_deque.ts";

/**
 * Refuses an options argument that is not an object like `shape`: a value
 * meant for one of its fields given positionally (Python's keyword
 * arguments, as `wait(fs, 5)`), or a loop given bare. Either would
 * otherwise be ignored without a word. `undefined` is no options. A
 * `loop` field is checked by `checkLoopOption()`.
 */
export function checkOptions(
  options: unknown,
  what: string,
  shape: string,
): void {
  if (options === undefined) return;
  if (
    typeof options !== "object" || options === null ||
    typeof (options as { callSoon?: unknown }).callSoon === "function"
  ) {
    throw new TypeError(
      `Cannot ${what}: options must be an object like ${shape}, received ${
        formatReceived(options)
      }`,
    );
  }
  checkLoopOption((options as { loop?: unknown }).loop, what);
}

/**
 * Checks a `loop` option: absent (`undefined` or `null`: the running loop
 * is used), or an event loop. Anything else (`{ loop: 5 }`, a loop's
 * name) would fail only at its first use, far from the mistake.
 *
 * @param loop The option's value.
 * @param what Completes "Cannot ...": `"create a Lock"`.
 * @throws {TypeError} When `loop` is given and has no `callSoon()`.
 */
export function checkLoopOption(loop: unknown, what: string): void {
  if (loop === undefined || loop === null) return;
  if (typeof (loop as { callSoon?: unknown }).callSoon === "function") return;
  throw new TypeError(
    `Cannot ${what}: loop must be an event loop, received ${
      formatReceived(loop)
    }`,
  );
}

/**
 * Refuses a flag that is not a boolean.
 *
 * @param value The flag's value.
 * @param what Completes "Cannot ...": `"gather"`.
 * @param name The flag's name.
 * @throws {TypeError} When `value` is not a boolean.
 */
export function checkBoolean(value: unknown, what: string, name: string): void {
  if (typeof value === "boolean") return;
  throw new TypeError(
    `Cannot ${what}: ${name} must be a boolean, received ${
      formatReceived(value)
    }`,
  );
}

let running: SchedulingLoop | null = null;
let hook: ((future: unknown) => unknown) | null = null;
let resuming = 0;
let checkpoints = 0;
// The guard of the task that resumes last (see resumedBy()).
let lastResumedBy: unknown = undefined;
let foreignTurn = false;
let contextLoop: (() => SchedulingLoop | null) | null = null;
let currentLoop: (() => SchedulingLoop | null) | null = null;

/**
 * Returns the running loop as `getRunningLoop()` documents it: the slot,
 * else the context finder's loop, else the current loop, else `null`.
 *
 * @returns The running loop, or `null`.
 */
export function findRunningLoop(): SchedulingLoop | null {
  return running ?? contextLoop?.() ?? currentLoop?.() ?? null;
}

/**
 * Returns the loop in the running-loop slot, without `findRunningLoop()`'s
 * fallbacks: the loop running its callbacks (and the microtasks it lets
 * run after them) now, or `null` when none is, as between two runs, or in
 * a host callback while no loop runs.
 *
 * @returns The loop, or `null`.
 */
export function loopInSlot(): SchedulingLoop | null {
  return running;
}

/**
 * Installs the last fallback of `getRunningLoop()`: the loop made current
 * with `setEventLoop()` (or by `run()`), so that
 * `loop.runUntilComplete(sleep(1))` finds it before the loop runs. The
 * policy module installs it; application code has no reason to call it.
 *
 * @param fn The finder, or `null` to remove it.
 * @returns The finder installed before.
 */
export function setCurrentLoopFinder(
  fn: (() => SchedulingLoop | null) | null,
): (() => SchedulingLoop | null) | null {
  const previous = currentLoop;
  currentLoop = fn;
  return previous;
}

/**
 * Installs the function `getRunningLoop()` falls back on outside the
 * loop's callbacks: `tasks/` uses it so that an async function resumed by a
 * microtask still finds the loop of the task it belongs to. Application
 * code has no reason to call it.
 *
 * @param fn The finder, or `null` to remove it.
 */
export function setContextLoopFinder(
  fn: (() => SchedulingLoop | null) | null,
): (() => SchedulingLoop | null) | null {
  const previous = contextLoop;
  contextLoop = fn;
  return previous;
}

/**
 * Sets the running-loop slot; loops call it around the callbacks they run.
 * Application code has no reason to call it.
 *
 * @param loop The loop now running callbacks, or `null`.
 * @returns The loop that was in the slot before.
 */
export function setRunningLoop(
  loop: SchedulingLoop | null,
): SchedulingLoop | null {
  const previous = running;
  running = loop;
  return previous;
}

/**
 * Installs the function `Future.then()` calls with the future being
 * awaited; `tasks/` uses it so that cancelling an async-function task
 * cancels the future the function awaits. Application code has no reason
 * to call it.
 *
 * The hook may throw (the future cannot be awaited here: `then()` throws,
 * so the `await` rejects), returns `false` when no task awaits (a
 * `Promise.all()` or a plain `then()` outside any task: the loop does not
 * wait for that code to run, see `requestForeignTurn()`), and may
 * return a guard (a function; any other value is ignored) that `then()`
 * calls when the future completes, with the future: the guard tells the
 * loop that the task may resume
 * (`requestMicrotaskCheckpoint()`), and a value it returns other than
 * `undefined` is delivered as the rejection instead of the future's
 * outcome. Without a guard, `then()`
 * calls `requestMicrotaskCheckpoint()` itself. Called with no arguments,
 * the guard only returns that value. `tasks/` returns a guard that
 * hands over a cancellation requested after the future completed, as
 * asyncio's task throws it in at the `await` instead of sending the result.
 *
 * @param fn The hook, or `null` to remove it.
 */
export function setAwaitHook(fn: ((future: unknown) => unknown) | null): void {
  hook = fn;
}

/**
 * Calls the await hook, if any, with `future`.
 *
 * @param future The future that an async function is awaiting.
 * @returns The hook's guard, if it gave one; `false` when no task awaits
 * (the hook said so, or there is no hook: no task exists).
 * @throws What the hook throws: the future cannot be awaited here.
 */
export function notifyAwait(
  future: unknown,
): ((future?: unknown) => unknown) | undefined | false {
  if (hook === null) return false;
  const guard = hook(future);
  if (guard === false) return false;
  return typeof guard === "function"
    ? guard as (future?: unknown) => unknown
    : undefined;
}

let cancelledErrorTaken = false;

/**
 * Runs `fn`, during which `Future.setException()` takes a
 * `CancelledError`: `gather()` finishes with one, as asyncio's does,
 * where everyone else cancels.
 *
 * @param fn What sets the exception.
 */
export function takingCancelledError(fn: () => void): void {
  cancelledErrorTaken = true;
  try {
    fn();
  } finally {
    cancelledErrorTaken = false;
  }
}

/**
 * Whether `Future.setException()` takes a `CancelledError` now (see
 * `takingCancelledError()`).
 *
 * @returns Whether it does.
 */
export function cancelledErrorTakenNow(): boolean {
  return cancelledErrorTaken;
}

/**
 * Tells the loop that async code is about to resume in a microtask (a
 * `Future.then()` settled its promise, or an async-function task started),
 * so that before its next iteration the loop lets microtasks run until that
 * code waits again (see `noteAwaitParked()`). Each call counts once.
 *
 * @param by What the resuming task gave for the await (its guard), by
 * which debug mode names the task (see `resumedBy()`).
 */
export function requestMicrotaskCheckpoint(by?: unknown): void {
  resuming++;
  lastResumedBy = by;
}

/**
 * Returns what the last `requestMicrotaskCheckpoint()` was given, until
 * the loop takes the checkpoint: a loop in debug mode names the task of
 * slow async code with it (see `taskOfCallback()`).
 *
 * @returns The guard of the task that resumes, if known.
 */
export function resumedBy(): unknown {
  return lastResumedBy;
}

/**
 * Tells the loop that code no task runs (a `Promise.all()` over futures, a
 * `then()` outside any task) goes on in a microtask, so that the loop gives
 * microtasks a turn at the end of its iteration. Unlike
 * `requestMicrotaskCheckpoint()` nothing is counted: such code never says
 * when it waits again.
 */
export function requestForeignTurn(): void {
  foreignTurn = true;
}

/**
 * Returns whether code no task runs asked for a microtask turn (see
 * `requestForeignTurn()`) since the loop last gave one.
 *
 * @returns Whether a turn was asked for.
 */
export function foreignTurnRequested(): boolean {
  return foreignTurn;
}

/**
 * Tells the loop that async code it let resume waits again — on a pending
 * future, or because its task finished — so one fewer resumption is
 * outstanding (the count never goes below zero).
 */
export function noteAwaitParked(): void {
  // Once none is outstanding, the guard is let go: a loop that stopped
  // before its checkpoint must not keep the task alive.
  if (resuming > 0 && --resuming === 0) lastResumedBy = undefined;
}

/**
 * Returns how many resumptions of async code are outstanding: requested
 * with `requestMicrotaskCheckpoint()` and not yet waiting again.
 *
 * @returns The count.
 */
export function pendingResumptions(): number {
  return resuming;
}

/**
 * Returns whether a microtask checkpoint was requested (a resumption is
 * outstanding), and clears the count; loops call it once they have let
 * microtasks run.
 *
 * @returns Whether microtasks should have run before the next iteration.
 */
export function takeMicrotaskCheckpoint(): boolean {
  const requested = resuming > 0 || foreignTurn;
  checkpoints++;
  resuming = 0;
  foreignTurn = false;
  lastResumedBy = undefined;
  return requested;
}

/**
 * Returns how many microtask checkpoints loops have taken (see
 * `takeMicrotaskCheckpoint()`): code that asked for one with
 * `requestMicrotaskCheckpoint()` notes the count then, and calls
 * `noteAwaitParked()` later only if it has not changed, since a checkpoint
 * taken meanwhile already cleared its request (and a later
 * `noteAwaitParked()` would take back someone else's).
 *
 * @returns The count.
 */
export function checkpointsTaken(): number {
  return checkpoints;
}

let taskNumber = 0;

/**
 * Returns the number of the next task named by default (`Task-N`).
 *
 * @returns The number, one more than the last.
 */
export function nextTaskNumber(): number {
  return ++taskNumber;
}

/**
 * Sets the count behind tasks' default names: a simulation counts from 0
 * for each run, so that a replay names its tasks alike, and puts the count
 * back after.
 *
 * @param n The count (the last number given).
 * @returns The count before.
 */
export function setTaskNumber(n: number): number {
  const previous = taskNumber;
  taskNumber = n;
  return previous;
}

// Loops that report errors never retrieved without the garbage collector:
// each keeps its failed futures nobody looked at yet, strongly, in the
// order they failed, with the word their report starts with.
const keptFailures = new WeakMap<SchedulingLoop, Map<object, string>>();

/**
 * Makes `loop` keep its failed futures whose exception nobody retrieved,
 * instead of reporting each when the garbage collector takes it: a
 * simulated host, whose run must not depend on when the collector runs,
 * reports what is left at a point of its own (see `keptUnretrieved()`).
 * Its tasks are then held strongly in debug mode too, so that no pending
 * task is reported as destroyed by the collector.
 *
 * @param loop The loop.
 */
export function keepUnretrieved(loop: SchedulingLoop): void {
  if (!keptFailures.has(loop)) keptFailures.set(loop, new Map());
}

/**
 * Returns the failed futures `loop` keeps (see `keepUnretrieved()`), each
 * with the word its report starts with (`"Future"`, `"Task"`), oldest
 * first; `Future` adds one when it fails and removes it once its
 * exception is retrieved. `undefined` for a loop that leaves them to the
 * garbage collector.
 *
 * @param loop The loop.
 * @returns The futures and their report words, or `undefined`.
 */
export function keptUnretrieved(
  loop: SchedulingLoop,
): Map<object, string> | undefined {
  return keptFailures.get(loop);
}

// Debug mode: the task each of its step callbacks belongs to, so that the
// report of a slow callback names the task, as asyncio's names it. Weak:
// an entry lives as long as its callback (which its task holds).
const stepOwners = new WeakMap<object, object>();

/**
 * Records that `fn` is a step callback of `task`, for `taskOfCallback()`.
 * Tasks made while their loop is in debug mode call it, so that it costs
 * nothing otherwise.
 *
 * @param fn The callback a task schedules to step itself.
 * @param task The task.
 */
export function noteTaskCallback(fn: object, task: object): void {
  stepOwners.set(fn, task);
}

/**
 * Returns the task whose step callback `fn` is (see `noteTaskCallback()`).
 *
 * @param fn A scheduled callback.
 * @returns The task, or `undefined`.
 */
export function taskOfCallback(fn: object): object | undefined {
  return stepOwners.get(fn);
}

/** The host's own `setImmediate()`, taken when this module loads. */
const realImmediate: (fn: () => void) => void = setImmediate;

/** Whether `hostImmediate()` is making its immediate now. */
let makingHop = false;

/**
 * The host's own `setImmediate()`: a simulation run puts a simulated
 * host's immediates on its loop (`node:timers`' function, which this is,
 * included), and the loops' hops must stay the host process's, so a run
 * tells them apart by `makingHostHop()`.
 *
 * @param fn What to call on the host's next check phase.
 */
export function hostImmediate(fn: () => void): void {
  makingHop = true;
  try {
    realImmediate(fn);
  } finally {
    makingHop = false;
  }
}

/**
 * Whether the immediate being made now is a loop's own hop, made by
 * `hostImmediate()`.
 *
 * @returns `true` while `hostImmediate()` makes its immediate.
 */
export function makingHostHop(): boolean {
  return makingHop;
}

/**
 * A macrotask hop: the host runs every pending microtask, its due timers
 * and its other macrotasks (I/O completions) before this resolves.
 *
 * @returns A promise that resolves on the host's next macrotask turn.
 */
export function hostHop(): Promise<void> {
  return new Promise((resolve) => hostImmediate(resolve));
}

// The prototypes of the functions that are coroutine functions: calling a
// generator function only makes a generator (nothing runs), and an async
// function's error would escape the loop's exception handler.
const COROUTINE_FUNCTION_PROTOTYPES: readonly object[] = [
  Object.getPrototypeOf(function* () {}),
  Object.getPrototypeOf(async function () {}),
  Object.getPrototypeOf(async function* () {}),
];

/**
 * Returns whether `fn` is a generator or async function, which no callback
 * may be (the loop's scheduling calls and `addDoneCallback` refuse one).
 *
 * @param fn A function.
 * @returns Whether it is a coroutine function.
 */
export function isCoroutineFunction(fn: object): boolean {
  const proto = Object.getPrototypeOf(fn);
  return proto !== Function.prototype &&
    COROUTINE_FUNCTION_PROTOTYPES.includes(proto);
}

/**
 * Tasks whose function must return a coroutine (`run()`'s main, as
 * asyncio's `run()` refuses `lambda: None`): only the call tells a plain
 * function from an async one, so the task itself refuses what it returned.
 * For each such task, makes the error it fails with when its function
 * returns neither a generator nor a promise nor a `Future`. Weak: an entry
 * lives as long as its task. `loop/run.ts` fills it, `tasks/task.ts` reads
 * it; it lives here, the one private file both may import.
 */
export const plainResultRefusals: WeakMap<object, (out: unknown) => Error> =
  new WeakMap();

/**
 * The key under which an `HttpServerProtocol` handler's `info` argument
 * holds the peer log of the connection the call came on. A handler that
 * reports what the client causes (`jsonRpcHttpHandler`'s failed
 * notifications) pays from it: it has counted the client's bytes already,
 * and a log of the handler's own would count the body a second time.
 * `http/` sets it, `jsonrpc/` reads it; it lives here, the one private
 * file both may import.
 */
export const CONNECTION_LOG: unique symbol = Symbol("tulip connection log");

/**
 * The method under which a future may take back a result that the task
 * awaiting it dropped: a task cancelled after the future completed, but
 * before it resumed, gets the `CancelledError` instead of the result (as
 * in asyncio). A `StreamReader` read puts its bytes back in the buffer
 * there: asyncio's reads leave them buffered until the task resumes and
 * takes them, so a cancelled read loses nothing. `tasks/` (a generator
 * task's wake-up) and `futures/` (an awaiting async function's `then()`)
 * call it through `resultDropped()`; `streams/` defines it.
 */
export const TAKE_BACK: unique symbol = Symbol("tulip take back");

/**
 * Hands `value`, the result of `future` that its awaiting task dropped
 * for a cancellation, back to the future's `TAKE_BACK` method, if it has
 * one.
 *
 * @param future The completed future.
 * @param value Its result.
 */
export function resultDropped(future: object, value: unknown): void {
  const takeBack = (future as { [TAKE_BACK]?: (value: unknown) => void })[
    TAKE_BACK
  ];
  if (takeBack !== undefined) takeBack.call(future, value);
}

/** How `settleRunningCallbacks()` and `lastDoneCallback()` reach a future. */
export interface CallbackAccess {
  /** See `settleRunningCallbacks()`. */
  settle(
    future: object,
    settle: () => void,
    only: ReadonlySet<unknown> | undefined,
  ): void;
  /** See `lastDoneCallback()`. */
  last(future: object): unknown;
}

let callbackAccess: CallbackAccess | null = null;

/**
 * Installs how `settleRunningCallbacks()` and `lastDoneCallback()` reach a
 * future's done callbacks (`futures/future.ts` only, from `Future`'s static
 * block).
 *
 * @param access The accessor.
 */
export function setCallbackAccess(access: CallbackAccess): void {
  callbackAccess = access;
}

/**
 * Returns the done callback added last to the pending `future` (the one a
 * `then()` just registered), or `null`.
 *
 * @param future The pending future.
 * @returns The callback.
 */
export function lastDoneCallback(future: object): unknown {
  return callbackAccess!.last(future);
}

/**
 * Settles `future` with `settle` and runs the done callbacks it had right
 * away, in the callback running now, instead of scheduling them: for a
 * future whose wake-up was due in a slot booked earlier, as a `TaskGroup`
 * wait's cancellation is handled in the turn its `cancel()` booked, where
 * asyncio's cancelled parent resumes in the group's exit. An error a
 * callback throws goes to the loop's exception handler, as from a handle.
 * Outside the future's loop's turns (the loop stopped, another loop's
 * turn: work that ended on a host promise) they are scheduled, as settling
 * schedules them: a task resumes only in its loop's turn.
 *
 * @param future The pending future.
 * @param settle What settles it (`setResult()`, `cancel()`...).
 * @param only When given, only these callbacks run now; the others are
 * scheduled, as settling schedules them.
 */
export function settleRunningCallbacks(
  future: object,
  settle: () => void,
  only?: ReadonlySet<unknown>,
): void {
  callbackAccess!.settle(future, settle, only);
}

/**
 * Paces the reports of one kind of failure that may repeat once per
 * connection (a server's accept failures, its protocol factory's, a
 * facade callback's), so that peers cannot make the log grow with their
 * number: one report at most per `interval` seconds of loop time, and
 * the count of those left out with the next report, or at close
 * (`sumUp()`).
 */
export class ReportPacer {
  readonly #interval: number;
  #at = -Infinity;
  #unreported = 0;

  constructor(interval: number) {
    this.#interval = interval;
  }

  /**
   * One more failure: passes `context` to `loop`'s exception handler,
   * its message ending with how many `what` ("factory failures") were
   * left out since the last report; or only counts it, within `interval`
   * of that report.
   */
  report(
    loop: SchedulingLoop,
    context: { message: string; [key: string]: unknown },
    what: string,
  ): void {
    const now = loop.time();
    if (now - this.#at < this.#interval) {
      this.#unreported++;
      return;
    }
    this.#at = now;
    const left = this.#drain();
    loop.callExceptionHandler(
      left === 0 ? context : {
        ...context,
        message:
          `${context.message} (and ${left} ${what} not reported since the last report)`,
      },
    );
  }

  /**
   * At close: one line (`${closed}: …`, with `extra` in its context)
   * counting the `what` left out since the last report, so that the count
   * is not lost; none when nothing was.
   */
  sumUp(
    loop: SchedulingLoop,
    closed: string,
    what: string,
    extra?: Record<string, unknown>,
  ): void {
    const left = this.#drain();
    if (left === 0) return;
    loop.callExceptionHandler({
      message: `${closed}: ${left} ${what} not reported since the last report`,
      ...extra,
    });
  }

  #drain(): number {
    const left = this.#unreported;
    this.#unreported = 0;
    return left;
  }
}

/**
 * Calls a protocol factory and checks that it made a protocol: an object
 * with `connectionMade()`, which every transport calls first. What the
 * factory throws passes through; `what` completes "Cannot ...". Every
 * transport's (Deno's, the simulator's) calls its factory through it.
 *
 * @param factory The protocol factory.
 * @param what What was being done, for the error.
 * @returns The protocol.
 * @throws {TypeError} When the factory made no protocol.
 */
export function makeProtocol<P>(factory: () => P, what: string): P {
  const protocol = factory();
  if (
    typeof protocol !== "object" || protocol === null ||
    typeof (protocol as { connectionMade?: unknown }).connectionMade !==
      "function"
  ) {
    throw new TypeError(
      `Cannot ${what}: protocolFactory must return a protocol (an object with connectionMade()), received ${
        formatReceived(protocol)
      }`,
    );
  }
  return protocol;
}
