/**
 * What the framers (`ChunkProtocol`, `Int32StringReceiver`) share: each
 * delivers its messages to a callback or to a receiver object composed into
 * it (PEP 3153).
 *
 * @module
 */

/** How a framer's constructor names itself and its sink in its errors. */
export interface FramerNaming {
  /** The framer, with its article: `"a LineReceiver"`. */
  what: string;
  /** The constructor's sink parameter: `"onLine"`. */
  param: string;
}

// The naming of a framer class whose constructor hands its arguments on to
// a base framer's (LineReceiver to ChunkProtocol), so that the base's
// errors name the class the caller made and the parameter it passed.
const namings = new WeakMap<object, FramerNaming>();

/**
 * Registers how `cls` (and its subclasses) name themselves in the errors
 * of a base framer's constructor.
 *
 * @param cls The framer class.
 * @param naming Its name and its sink parameter's.
 */
export function setFramerNaming(cls: object, naming: FramerNaming): void {
  namings.set(cls, naming);
}

/**
 * Finds the naming for a constructor call: that of `target` or of the
 * nearest class it extends that registered one, else `fallback`.
 *
 * @param target The constructor called (`new.target`).
 * @param fallback The base framer's own naming.
 * @returns The naming to use in errors.
 */
export function framerNaming(
  target: object,
  fallback: FramerNaming,
): FramerNaming {
  for (
    let cls: object | null = target;
    cls !== null && cls !== Function.prototype;
    cls = Object.getPrototypeOf(cls)
  ) {
    const naming = namings.get(cls);
    if (naming !== undefined) return naming;
  }
  return fallback;
}

/**
 * Sorts a framer's sink into a callback or a receiver.
 *
 * @param what The framer, for the error: `"a ChunkProtocol"`.
 * @param param The constructor's parameter: `"onChunk"`.
 * @param method The receiver's method: `"chunkReceived"`.
 * @param value What was given.
 * @returns `[callback, receiver]`, at most one of them not `null`.
 * @throws {TypeError} When it is neither.
 */
export function pickSink<C, R>(
  what: string,
  param: string,
  method: string,
  value: unknown,
): [C | null, R | null] {
  const kind = sinkKind(what, param, method, value);
  return kind === "callback"
    ? [value as C, null]
    : kind === "receiver"
    ? [null, value as R]
    : [null, null];
}

/**
 * Tells which kind of sink a framer was given.
 *
 * @param what The framer, for the error: `"a ChunkProtocol"`.
 * @param param The constructor's parameter: `"onChunk"`.
 * @param method The receiver's method: `"chunkReceived"`.
 * @param value What was given.
 * @returns `"callback"`, `"receiver"`, or `"none"` when nothing was given.
 * @throws {TypeError} When it is neither.
 */
function sinkKind(
  what: string,
  param: string,
  method: string,
  value: unknown,
): "callback" | "receiver" | "none" {
  if (typeof value === "function") return "callback";
  if (
    typeof value === "object" && value !== null &&
    typeof (value as Record<string, unknown>)[method] === "function"
  ) return "receiver";
  if (value === undefined) return "none";
  throw new TypeError(
    `Cannot make ${what}: ${param} must be a function or an object with ${method}(), received ${
      value === null ? "null" : typeof value
    }`,
  );
}

/**
 * Checks a framer's `onLengthExceeded` option: a function, or absent.
 *
 * @param what The framer, for the error: `"a ChunkProtocol"`.
 * @param value What was given.
 * @returns The function, or `null` when none was given.
 * @throws {TypeError} When it is given and not a function.
 */
export function lengthExceededHandler<F>(
  what: string,
  value: unknown,
): F | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "function") {
    throw new TypeError(
      `Cannot make ${what}: onLengthExceeded must be a function, received ${typeof value}`,
    );
  }
  return value as F;
}
