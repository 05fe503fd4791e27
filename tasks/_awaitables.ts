// Small helpers shared by the task combinators (wait, asCompleted, gather,
// waitFor, shield, timeout, TaskGroup). Private to tasks/.

import type { Future } from "../futures/future.ts";
import { CancelledError, formatReceived } from "../futures/errors.ts";
import type { Coroutine } from "./task.ts";

/**
 * Returns `true` for a generator object (a coroutine not yet driven). An
 * async generator has `next()` and `throw()` too but is none: `yield*`
 * cannot drive it, and `ensureFuture()` refuses it, naming it.
 */
export function isCoroutine(x: unknown): x is Coroutine<unknown> {
  return typeof x === "object" && x !== null &&
    typeof (x as Coroutine<unknown>).next === "function" &&
    typeof (x as Coroutine<unknown>).throw === "function" &&
    !(Symbol.asyncIterator in x);
}

/** Returns `true` for an async generator (or any async iterable object). */
export function isAsyncGenerator(x: unknown): boolean {
  return typeof x === "object" && x !== null && Symbol.asyncIterator in x;
}

/**
 * Names what a body returned that is neither a generator nor a promise,
 * for the error that refuses it: an async generator by name, with what to
 * do instead, anything else by its type.
 */
export function bodyReceived(out: unknown): string {
  if (out === null) return "null";
  if (isAsyncGenerator(out)) {
    return "an async generator (make body an async function or a generator function)";
  }
  return typeof out;
}

/**
 * Refuses, at the call, what `Timeout.run()`, `waitFor()` and `shield()`
 * cannot await (the first two would find out only once their task starts,
 * which a caller may never see): anything but a future, a task, a
 * coroutine, a promise or a function that makes one.
 */
export function checkAwaitable(aw: unknown, what: string): void {
  if (typeof aw === "function" || isCoroutine(aw) || isPromiseLike(aw)) {
    return;
  }
  throw new TypeError(
    `Cannot ${what}: aw must be a Future, a coroutine, a promise or a function that makes one, received ${
      bodyReceived(aw)
    }`,
  );
}

/**
 * Makes `gen`, a coroutine that `yield*` runs inline, awaitable as well:
 * `await` runs it as a task of its own (`start` makes the task), where it
 * would otherwise evaluate to the generator object, its body never run.
 * For the generator forms of `withTaskGroup()` and `Timeout.scope()`.
 */
export function awaitableCoroutine<T>(
  gen: Coroutine<T>,
  start: (gen: Coroutine<T>) => PromiseLike<T>,
): Coroutine<T> {
  // Started once: a second await (or then()) follows the same task, as
  // with a promise, instead of driving the generator from a second one.
  let started: PromiseLike<T> | null = null;
  Object.defineProperty(gen, "then", {
    configurable: true,
    value: <R1 = T, R2 = never>(
      onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
      onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
    ): PromiseLike<R1 | R2> =>
      (started ??= start(gen)).then(onfulfilled, onrejected),
  });
  return gen;
}

// How a task's first step is taken at once (see startEagerly()): a friend
// accessor (see loop/_handle.ts) that Task's static block installs; this
// file, which task.ts imports, is where both sides meet.
let stepNow: ((task: object) => void) | null = null;
let holdStart = false;
// How many first steps taken by startEagerly() run inside one another
// (work that calls waitFor() in its first step nests), and how many may:
// each costs some fifteen stack frames.
let nestedStarts = 0;
const MAX_NESTED_STARTS = 64;

/** Installs how `startEagerly()` steps a task (task.ts only). */
export function setTaskStarter(fn: (task: object) => void): void {
  stepNow = fn;
}

/**
 * Whether the task being made takes its first step from `startEagerly()`
 * rather than on the loop's next turn (read once, by Task's constructor).
 */
export function takeHeldStart(): boolean {
  const held = holdStart;
  holdStart = false;
  return held;
}

/**
 * The done callbacks of a task started by `startEagerly()` that belong to
 * tasks awaiting it (an async function's `then()`, a generator task's
 * wake-up, recorded as it begins to wait): those run in the turn the
 * task ends; the others (a `gather()`'s, an `addDoneCallback()`'s) are
 * scheduled as usual, as a task's are.
 */
export const eagerAwaiters: WeakMap<object, Set<unknown>> = new WeakMap();

/**
 * Records `cb` as the done callback of a task awaiting `task`, a task
 * started by `startEagerly()` (see `eagerAwaiters`).
 */
export function noteEagerAwaiter(task: object, cb: unknown): void {
  let set = eagerAwaiters.get(task);
  if (set === undefined) eagerAwaiters.set(task, set = new Set());
  set.add(cb);
}

/**
 * Makes a task with `make` and takes its first step now, in the caller's
 * turn, outside the caller's async context; the task then hands its
 * outcome to the tasks awaiting it (`eagerAwaiters`) in the turn it ends,
 * not one turn later.
 * For the tasks behind `waitFor()` and `Timeout.run()`, which asyncio runs
 * inline in the caller's task: started this way they wait for the work
 * from the call on, and the caller resumes where asyncio's would.
 */
export function startEagerly<T extends object>(make: () => T): T {
  // Nested too deep: the task starts on the loop's next turn, as one made
  // outside any task, so that the stack cannot overflow.
  if (nestedStarts >= MAX_NESTED_STARTS) return make();
  holdStart = true;
  let task: T;
  try {
    task = make();
  } finally {
    holdStart = false;
  }
  nestedStarts++;
  try {
    stepNow!(task);
  } finally {
    nestedStarts--;
  }
  return task;
}

/** Returns `true` for anything with a `then` method. */
export function isPromiseLike(x: unknown): x is PromiseLike<unknown> {
  return (typeof x === "object" || typeof x === "function") && x !== null &&
    typeof (x as PromiseLike<unknown>).then === "function";
}

/**
 * Checks a timeout in seconds: `null` or `undefined` mean "no limit" and
 * give `null`; anything else must be a number.
 */
export function checkTimeout(value: unknown, what: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(
      `Cannot ${what}: timeout must be a number of seconds or null, received ${
        formatReceived(value)
      }`,
    );
  }
  return value;
}

/**
 * Gives `target` the outcome of the finished `source`: its result, its
 * exception, or a cancellation with the same message.
 */
export function copyOutcome<T>(source: Future<T>, target: Future<T>): void {
  let value: T;
  try {
    value = source.result();
  } catch (e) {
    if (e instanceof CancelledError) target.cancel(e.message);
    else target.setException(e);
    return;
  }
  target.setResult(value);
}

/**
 * Rejects a single future or coroutine where a collection is expected: both
 * are iterable, so iterating them by mistake would go wrong silently.
 */
export function checkCollection(fs: unknown, what: string): void {
  if (
    typeof fs !== "object" || fs === null || isCoroutine(fs) ||
    isPromiseLike(fs) ||
    typeof (fs as Iterable<unknown>)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(
      `Cannot ${what}: expected an iterable of futures, tasks, coroutines or promises, received ${
        describe(fs)
      }`,
    );
  }
}

function describe(x: unknown): string {
  if (x === null) return "null";
  // A generator of awaitables is a generator object too, so it reads as a
  // coroutine (asyncio's wait() takes one; a generator coroutine here
  // cannot be told apart from it without running it).
  if (isCoroutine(x)) {
    return "a coroutine (a generator object; to pass a generator of awaitables, spread it: [...gen])";
  }
  if (isPromiseLike(x)) return "a single future or promise";
  if (isAsyncGenerator(x)) return "an async iterable";
  return typeof x;
}
