/**
 * The errors of PEP 3156.
 *
 * Each is a subclass of `Error` with its `name` set, and keeps its data in
 * read-only fields.
 *
 * @module
 */

/**
 * Thrown into a coroutine (or rejected from an awaited future) when its task
 * or future is cancelled.
 *
 * JavaScript has nothing like Python's `BaseException`, so code that catches
 * everything should check for this error on purpose and re-throw it.
 *
 * PEP 3156: `CancelledError`.
 *
 * @example Telling cancellation from failure
 * ```ts
 * import { CancelledError } from "@tulip/tulip/futures";
 * import { assert } from "@std/assert";
 *
 * const err: unknown = new CancelledError("shutting down");
 * assert(err instanceof CancelledError && err.name === "CancelledError");
 * ```
 */
export class CancelledError extends Error {
  /**
   * Makes a cancellation error.
   *
   * @param message The message given to `cancel(msg)`, if any.
   */
  constructor(message = "") {
    super(message);
    this.name = "CancelledError";
  }
}

/**
 * Thrown when an operation is not allowed in the object's current state:
 * the result of a pending future, a result set twice, a closed loop.
 *
 * PEP 3156: `InvalidStateError`.
 *
 * @example
 * ```ts
 * import { InvalidStateError } from "@tulip/tulip/futures";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(new InvalidStateError("Cannot get result: future is pending").name, "InvalidStateError");
 * ```
 */
export class InvalidStateError extends Error {
  /**
   * Makes the error.
   *
   * @param message What could not be done, and why.
   */
  constructor(message: string) {
    super(message);
    this.name = "InvalidStateError";
  }
}

/**
 * Thrown when an operation runs out of time (`waitFor`, `timeout()`,
 * `asCompleted`, and the facade's `timeout` slot).
 *
 * PEP 3156: `TimeoutError`.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "@tulip/tulip/futures";
 * import { assert } from "@std/assert";
 *
 * assert(new TimeoutError("Cannot finish: timed out after 1s") instanceof Error);
 * ```
 */
export class TimeoutError extends Error {
  /**
   * Makes the error.
   *
   * @param message What timed out.
   */
  constructor(message = "The operation timed out") {
    super(message);
    this.name = "TimeoutError";
  }
}

/**
 * Thrown by `readexactly()` and `readuntil()` when the stream ends first.
 *
 * PEP 3156 (as in asyncio): `IncompleteReadError`.
 *
 * @example
 * ```ts
 * import { IncompleteReadError } from "@tulip/tulip/futures";
 * import { assertEquals } from "@std/assert";
 *
 * const e = new IncompleteReadError(new Uint8Array(2), 5);
 * assertEquals([e.partial.length, e.expected], [2, 5]);
 * ```
 */
export class IncompleteReadError extends Error {
  /** The bytes read before the end of the stream. */
  readonly partial: Uint8Array;
  /** How many bytes were expected, or `null` when reading until a separator. */
  readonly expected: number | null;

  /**
   * Makes the error.
   *
   * @param partial The bytes read before the end of the stream.
   * @param expected How many bytes were expected, or `null`.
   */
  constructor(partial: Uint8Array, expected: number | null) {
    super(
      `Cannot read ${
        expected === null ? "until separator" : `${expected} bytes`
      }: stream ended after ${partial.length} bytes`,
    );
    this.name = "IncompleteReadError";
    this.partial = partial;
    this.expected = expected;
  }
}

/**
 * Thrown by a stream reader when a separator is not found within its limit.
 *
 * PEP 3156 (as in asyncio): `LimitOverrunError`.
 *
 * @example
 * ```ts
 * import { LimitOverrunError } from "@tulip/tulip/futures";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(new LimitOverrunError("Cannot read line: over limit", 70000).consumed, 70000);
 * ```
 */
export class LimitOverrunError extends Error {
  /** How many bytes may be consumed to get past the overrun. */
  readonly consumed: number;

  /**
   * Makes the error.
   *
   * @param message What could not be done.
   * @param consumed How many bytes to consume to get past the overrun.
   */
  constructor(message: string, consumed: number) {
    super(message);
    this.name = "LimitOverrunError";
    this.consumed = consumed;
  }
}

// Longer strings are cut, so that an error message stays one readable line
// whatever a caller passed.
const MAX_RECEIVED_LENGTH = 80;

/**
 * Formats a value for the "received …" part of an error message, as
 * `Deno.inspect` would show it: strings quoted (so that `"1"` is told from
 * `1`), numbers, booleans, `null`, `undefined`, bigints and symbols as
 * written in code, functions by name, and other objects by their class
 * (`Uint8Array(4)`, `Array(2)`, `Object`), never by their contents.
 * Strings longer than 80 characters are cut with `…`. Every tulip error
 * message uses it, and code that reports its own errors in tulip's style
 * can too.
 *
 * @param value What was received.
 * @returns A short, one-line description.
 *
 * @example
 * ```ts
 * import { formatReceived } from "@tulip/tulip/futures";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(formatReceived("1"), '"1"');
 * assertEquals(formatReceived(1), "1");
 * assertEquals(formatReceived(new Uint8Array(4)), "Uint8Array(4)");
 * assertEquals(formatReceived(undefined), "undefined");
 * ```
 */
export function formatReceived(value: unknown): string {
  switch (typeof value) {
    case "string": {
      const cut = value.length > MAX_RECEIVED_LENGTH
        ? value.slice(0, MAX_RECEIVED_LENGTH) + "…"
        : value;
      return JSON.stringify(cut);
    }
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    case "bigint":
      return `${value}n`;
    case "symbol":
      return value.toString();
    case "function":
      return value.name
        ? `[Function: ${value.name}]`
        : "[Function (anonymous)]";
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) return `Array(${value.length})`;
      if (ArrayBuffer.isView(value) && "length" in value) {
        return `${value.constructor.name}(${value.length})`;
      }
      const name = Object.getPrototypeOf(value)?.constructor?.name;
      return typeof name === "string" && name !== "" ? name : "Object";
    }
    default:
      return String(value);
  }
}
