// Handle and TimerHandle, with the few internals the loop reaches through
// accessor functions instead of public members.

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import { isCoroutineFunction } from "../futures/_runtime.ts";
import type { SchedulingLoop } from "./event_loop.ts";

/** A callback of any arity, as scheduled with `callSoon` and friends. */
// deno-lint-ignore no-explicit-any
export type AnyCallback = (...args: any[]) => unknown;

// Friend accessors. JavaScript has no `friend` and no package-private
// members, and a `#private` field is out of reach of everything outside its
// class body. When a class's own folder needs one of its internals (the
// scheduler runs a handle and places a timer; nothing else should), the
// module declares a function variable and the class assigns it in a
// `static {}` block, where `#private` names are in scope:
//
//     export let runHandle: (handle: Handle) => void;
//     class Handle { static { runHandle = (h) => h.#run(); } }
//
// The internal stays `#private` (users cannot reach it, and it costs no
// public name), and the variable is exported only from a private file (or
// not at all) so it never becomes API. Other files using the pattern point
// here.

/** Runs a handle's callback, routing an error to the loop's handler. */
export let runHandle: (handle: Handle) => void;
/** Sets a function called after each run with whether the callback succeeded. */
export let setAfterRun: (handle: Handle, fn: (ok: boolean) => void) => void;
/** Records a timer's due time and the queue holding it (`null`: none). */
export let placeTimer: (
  timer: TimerHandle,
  when: number,
  queue: TimerQueueLike | null,
) => void;
/**
 * Ties a timer made from an immediate handle to it: the handle's `cancel()`
 * cancels the timer too, which lets go of its copy of the callback and
 * arguments and tells its queue (once).
 */
export let linkHandle: (timer: Handle, source: Handle) => void;
/** Unties a one-shot timer that ran from its handle, so none pile up. */
export let unlinkHandle: (timer: Handle, source: Handle) => void;
/** The loop a handle was made by (and reports its callback's errors to). */
export let handleLoop: (handle: Handle) => SchedulingLoop;

/**
 * Checks a callback as asyncio's `_check_callback` does: it must be a
 * function, and not a coroutine function (those go to `createTask()`).
 * `what` completes "Cannot ...".
 */
export function checkCallback(cb: unknown, what: string): void {
  if (typeof cb !== "function") {
    throw new TypeError(
      `Cannot ${what}: callback must be a function, received ${typeof cb}`,
    );
  }
  if (isCoroutineFunction(cb)) {
    throw new TypeError(
      `Cannot ${what}: callback must be a plain function, not a coroutine function (run it with createTask() instead), received ${
        cb.name || "an anonymous one"
      }`,
    );
  }
}

// A Handle given where a callback goes (PEP 3156's note on Handles): it
// stands for its callback and arguments, so it takes no more arguments of
// its own, and only an immediate handle qualifies (a timer's due time would
// contradict the call's).
export function checkHandle(
  handle: Handle,
  args: unknown[],
  what: string,
  loop?: SchedulingLoop,
): void {
  // Queued on another loop, the handle would report its callback's errors
  // to the loop that made it (perhaps closed by then).
  if (loop !== undefined && handleLoop(handle) !== loop) {
    throw new InvalidStateError(
      `Cannot call ${what}(): the Handle belongs to another loop (schedule its callback instead: callSoon(handle.callback, ...handle.args)), received ${
        formatReceived(handle)
      }`,
    );
  }
  if (handle instanceof TimerHandle) {
    throw new TypeError(
      `Cannot call ${what}(): a TimerHandle cannot stand for a callback, only an immediate Handle (from callSoon), received ${
        formatReceived(handle)
      }`,
    );
  }
  if (args.length > 0) {
    throw new TypeError(
      `Cannot call ${what}(): a Handle takes no extra arguments, received ${args.length} argument${
        args.length === 1 ? "" : "s"
      }`,
    );
  }
}

// Debug mode: where each handle was made (asyncio's `_source_traceback`),
// for the report of an error its callback throws. Weak, and filled only in
// debug mode, so that handles cost nothing more otherwise.
const sourceTracebacks = new WeakMap<Handle, string>();

/**
 * Records the current stack as where `handle` was made (the loop calls it
 * in debug mode); an error its callback throws is then reported with it
 * as the context's `sourceTraceback`: the stack from `BaseEventLoop`'s
 * scheduling method (`callSoon()`, or `callLater()`/`callAt()` under the
 * private method they share) out to its callers, as asyncio keeps the
 * frame of `call_soon()` itself.
 */
export function noteSourceTraceback(handle: Handle): void {
  const stack = new Error().stack;
  if (stack === undefined) return;
  // Without the "Error" line and this function's frame.
  const lines = stack.split("\n");
  sourceTracebacks.set(handle, lines.slice(2).join("\n"));
}

// Passes an error a handle's callback threw to the loop's exception
// handler (out of Handle's run, which stays small on the hot path).
function reportCallbackError(
  handle: Handle,
  loop: SchedulingLoop,
  cb: AnyCallback,
  exception: unknown,
): void {
  const sourceTraceback = sourceTracebacks.get(handle);
  loop.callExceptionHandler({
    message: `Exception in callback ${cb.name || "anonymous"}`,
    exception,
    handle,
    ...(sourceTraceback !== undefined && { sourceTraceback }),
  });
}

// What a cancelled handle holds instead of its callback and arguments.
const RELEASED_ARGS: readonly unknown[] = Object.freeze([]);
function released(): void {}

/** What a timer tells its queue when it is cancelled while queued. */
export interface TimerQueueLike {
  /** Counts a cancelled timer still sitting in the queue. */
  timerCancelled(): void;
}

/**
 * An object that represents a scheduled callback, returned by `callSoon` and
 * friends; `cancel()` stops it from running.
 *
 * PEP 3156: `Handle`.
 *
 * @example Cancelling a callback
 * ```ts
 * import { newEventLoop } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const calls: string[] = [];
 * const h = loop.callSoon((x: string) => calls.push(x), "a");
 * assertEquals(h.args, ["a"]);
 * h.cancel();
 * loop.callSoon(() => loop.stop());
 * await loop.runForever();
 * assertEquals([calls, h.cancelled, h.args], [[], true, []]);
 * loop.close();
 * ```
 */
export class Handle {
  #callback: AnyCallback;
  #args: readonly unknown[];
  #loop: SchedulingLoop;
  #cancelled = false;
  #afterRun: ((ok: boolean) => void) | null = null;
  // The handles made from this one (one, or several), cancelled with it.
  #linked: Handle | Handle[] | null = null;

  static {
    runHandle = (h) => h.#run();
    linkHandle = (h, source) => {
      const linked = source.#linked;
      if (linked === null) source.#linked = h;
      else if (Array.isArray(linked)) linked.push(h);
      else source.#linked = [linked, h];
    };
    unlinkHandle = (h, source) => {
      const linked = source.#linked;
      if (linked === h) source.#linked = null;
      else if (Array.isArray(linked)) {
        const i = linked.indexOf(h);
        if (i >= 0) linked.splice(i, 1);
      }
    };
    setAfterRun = (h, fn) => {
      h.#afterRun = fn;
    };
    handleLoop = (h) => h.#loop;
  }

  /**
   * Made by the loop; application code never calls it.
   *
   * @param callback The function to call.
   * @param args Its positional arguments.
   * @param loop The loop it runs on.
   */
  constructor(callback: AnyCallback, args: unknown[], loop: SchedulingLoop) {
    this.#callback = callback;
    this.#args = args;
    this.#loop = loop;
  }

  /**
   * The function to be called; once the handle is cancelled, a function
   * that does nothing (the handle lets go of the callback).
   */
  get callback(): AnyCallback {
    return this.#callback;
  }

  /**
   * The arguments it will be called with; once the handle is cancelled,
   * none (the handle lets go of them).
   */
  get args(): readonly unknown[] {
    return this.#args;
  }

  /** `true` once `cancel()` was called. */
  get cancelled(): boolean {
    return this.#cancelled;
  }

  /**
   * Stops the callback from running; it changes nothing for a call that
   * already ran. As asyncio's does, the handle then lets go of the
   * callback and its arguments, so that a cancelled timer waiting in the
   * loop's queue keeps nothing alive: `callback` becomes a function that
   * does nothing and `args` is empty.
   */
  cancel(): void {
    this.#cancelled = true;
    this.#callback = released;
    this.#args = RELEASED_ARGS;
    if (this.#linked !== null) this.#cancelLinked();
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return this.#cancelled ? "Handle cancelled" : "Handle";
  }

  /**
   * How Deno's `console.log` prints a handle, as asyncio's `repr()`:
   * `Handle name()`, or `Handle cancelled`.
   */
  [Symbol.for("Deno.customInspect")](): string {
    return this.#cancelled
      ? this[Symbol.toStringTag]
      : `${this[Symbol.toStringTag]} ${this.#callback.name || "anonymous"}()`;
  }

  // A timer standing for this handle holds its own copy of the callback
  // and arguments, and is counted in its queue only by its own cancel().
  #cancelLinked(): void {
    const linked = this.#linked!;
    this.#linked = null;
    // A timer cancelled before already told its queue and does nothing.
    for (const h of Array.isArray(linked) ? linked : [linked]) h.cancel();
  }

  #run(): void {
    let ok = true;
    const cb = this.#callback;
    try {
      // Spreading costs more than the call; most callbacks (done
      // callbacks, a task's step) take one argument or none. The loop is
      // the receiver, so that its own methods work passed unbound, as in
      // PEP 3156's `ev.call_soon_threadsafe(ev.call_later, when, cb)` and
      // `loop.callLater(delay, loop.stop)`.
      const args = this.#args;
      const n = args.length;
      const loop = this.#loop;
      if (n === 0) cb.call(loop);
      else if (n === 1) cb.call(loop, args[0]);
      else if (n === 2) cb.call(loop, args[0], args[1]);
      else cb.apply(loop, args as unknown[]);
    } catch (exception) {
      ok = false;
      // The callback may have cancelled its own handle (which lets it go).
      reportCallbackError(this, this.#loop, cb, exception);
    }
    if (this.#afterRun !== null) this.#afterRun(ok);
  }
}

/**
 * A handle for a timed callback (`callLater`, `callAt`, `callRepeatedly`),
 * with the loop time it is due.
 *
 * Cancelling is O(1): the timer stays in the loop's queue, marked, and is
 * dropped when it reaches the front or when cancelled timers crowd the
 * queue.
 *
 * PEP 3156: `Handle` (asyncio's `TimerHandle`).
 *
 * @example Reading when a timer is due
 * ```ts
 * import { newEventLoop } from "@tulip/tulip";
 * import { assert } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const t = loop.callLater(10, () => {});
 * assert(t.when >= loop.time() + 9);
 * t.cancel();
 * loop.close();
 * ```
 */
export class TimerHandle extends Handle {
  #when = 0;
  #queue: TimerQueueLike | null = null;

  static {
    placeTimer = (t, when, queue) => {
      t.#when = when;
      t.#queue = queue;
    };
  }

  /** The loop time, in seconds, at which the callback is due. */
  get when(): number {
    return this.#when;
  }

  /** Stops the callback (and, for `callRepeatedly`, every later call). */
  override cancel(): void {
    if (this.cancelled) return;
    super.cancel();
    const queue = this.#queue;
    if (queue !== null) {
      this.#queue = null;
      queue.timerCancelled();
    }
  }

  /** The tag printed by `Object.prototype.toString`. */
  override get [Symbol.toStringTag](): string {
    return this.cancelled ? "TimerHandle cancelled" : "TimerHandle";
  }

  /**
   * How Deno's `console.log` prints a timer, as asyncio's `repr()`:
   * `TimerHandle when=12.5 name()`, or `TimerHandle cancelled when=12.5`.
   */
  [Symbol.for("Deno.customInspect")](): string {
    return this.cancelled
      ? `TimerHandle cancelled when=${this.#when}`
      : `TimerHandle when=${this.#when} ${this.callback.name || "anonymous"}()`;
  }
}
