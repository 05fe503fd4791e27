// PeerLog: how a protocol reports what its peer caused (stray responses,
// failing notifications, malformed requests) without letting the peer
// write the server's log. Each connection gets one. Every problem is
// counted; only the first `perKind` of each kind reach the exception
// handler, and the log a connection produces is held within the bytes the
// peer sent (a byte budget credited by `received()`). What is held back is
// said in one summary line at the end (`close()`).
//
// Usage, for any protocol:
//
//   #log = new PeerLog((context) => loop.callExceptionHandler(context));
//   dataReceived(data) { this.#log.received(data.length); ... }
//   ...             this.#log.report("stray response", { message, exception, protocol: this });
//   connectionLost() { this.#log.close("JSON-RPC connection", { protocol: this }); }
//   get strayResponses() { return this.#log.count("stray response"); }

import type { ExceptionContext } from "../loop/event_loop.ts";

/** Options for a `PeerLog`. */
export interface PeerLogOptions {
  /**
   * How many problems of each kind are passed on per connection; the rest
   * are only counted.
   *
   * @default {1}
   */
  perKind?: number;
}

/**
 * What a context costs in the log, in characters: a generous estimate of
 * what the default exception handler prints (`console.error` of the
 * message, the other fields, and the exception with its stack and own
 * fields).
 */
export function logSize(context: ExceptionContext): number {
  let size = context.message.length + 1;
  for (const key of Object.keys(context)) {
    if (key === "message") continue;
    const value = context[key];
    if (key === "exception") size += valueSize(value);
    else if (value !== undefined) size += DETAIL_SIZE;
  }
  return size;
}

/**
 * What printing an object field (the protocol, the transport) costs at
 * most: they print as their class name and a few fields (a
 * `JsonRpcProtocol` in about 110 characters, a transport in about 50).
 */
const DETAIL_SIZE = 160;
/** The shortest shortened report worth passing on, in characters. */
const MIN_SHORT = 48;
/** The longest text kept from an exception in a shortened report. */
const SHORT_EXCEPTION = 200;

function valueSize(value: unknown): number {
  if (value === undefined) return 0;
  let size = 0;
  if (value instanceof Error) {
    size += (value.stack ?? `${value.name}: ${value.message}`).length +
      value.message.length;
    if (value.cause !== undefined) size += valueSize(value.cause);
  }
  if (typeof value === "object" && value !== null) {
    try {
      size += (JSON.stringify(value) ?? "").length * 2 + 16;
    } catch {
      size += DETAIL_SIZE;
    }
  } else {
    size += String(value).length;
  }
  return size;
}

/** One line naming an exception, cut to `max` characters. */
function oneLine(exception: unknown, max: number): string {
  let text: string;
  if (exception instanceof Error) {
    text = `${exception.name}: ${exception.message}`;
  } else {
    try {
      text = typeof exception === "string"
        ? exception
        : JSON.stringify(exception) ?? String(exception);
    } catch {
      text = String(exception);
    }
  }
  text = text.replace(/\s+/g, " ");
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * Counts and reports the problems one peer causes on one connection,
 * within limits: at most `perKind` reports of each kind, and never more
 * log than the peer sent.
 */
export class PeerLog {
  readonly perKind: number;
  readonly #report: (context: ExceptionContext) => void;
  readonly #counts = new Map<string, number>();
  #budget = 0;
  #held = 0;
  #closed = false;

  /**
   * @param report Passes a context on, usually to the loop's exception
   * handler.
   * @param options `perKind`.
   */
  constructor(
    report: (context: ExceptionContext) => void,
    options?: PeerLogOptions,
  ) {
    const perKind = options?.perKind ?? 1;
    if (!Number.isSafeInteger(perKind) || perKind < 0) {
      throw new RangeError(
        `Cannot make a PeerLog: perKind must be a whole number >= 0, received ${perKind}`,
      );
    }
    this.perKind = perKind;
    this.#report = report;
  }

  /** The peer sent `bytes` more bytes: the log may grow by as much. */
  received(bytes: number): void {
    this.#budget += bytes;
  }

  /** How many problems of `kind` (of every kind if omitted) were counted. */
  count(kind?: string): number {
    if (kind !== undefined) return this.#counts.get(kind) ?? 0;
    let total = 0;
    for (const n of this.#counts.values()) total += n;
    return total;
  }

  /** How many problems were counted but not passed on. */
  get held(): number {
    return this.#held;
  }

  /**
   * Counts one problem of `kind`, and passes `context` on if this kind is
   * under `perKind` and the budget allows; when the whole context does not
   * fit, it is passed on shortened (the exception as one line of its
   * message, no stack), or not at all.
   *
   * @returns Whether it was passed on.
   */
  report(kind: string, context: ExceptionContext): boolean {
    const n = (this.#counts.get(kind) ?? 0) + 1;
    this.#counts.set(kind, n);
    if (this.#closed || n > this.perKind) return this.#hold();
    if (logSize(context) > this.#budget) {
      const short = this.#shorten(context);
      if (short === null) return this.#hold();
      context = short;
    }
    this.#budget -= logSize(context);
    this.#report(context);
    return true;
  }

  // The context in one line within the budget: the exception as its name
  // and message, then without the other fields if need be; null when even
  // that does not fit.
  #shorten(context: ExceptionContext): ExceptionContext | null {
    const { exception, ...rest } = context;
    let message = context.message;
    if (exception !== undefined) {
      message += `: ${oneLine(exception, SHORT_EXCEPTION)}`;
    }
    for (const fields of [rest, {}]) {
      const room = this.#budget - logSize({ ...fields, message: "" });
      if (room < MIN_SHORT) continue;
      return {
        ...fields,
        message: message.length > room
          ? `${message.slice(0, room - 1)}…`
          : message,
      };
    }
    return null;
  }

  /**
   * The connection is over: passes on one line counting what was held
   * back, if anything was and the budget allows. Later reports are only
   * counted.
   *
   * @param what Names the connection: `"JSON-RPC connection"`.
   * @param details Fields for the context (`protocol`, `transport`).
   */
  close(what: string, details?: Omit<ExceptionContext, "message">): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#held === 0) return;
    const kinds = [...this.#counts].map(([kind, n]) => `${n} ${kind}`);
    const context: ExceptionContext = {
      ...details,
      message:
        `${what}: ${this.#held} problems caused by the peer were counted but not logged (${
          kinds.join(", ")
        })`,
    };
    if (logSize(context) > this.#budget) return;
    this.#budget -= logSize(context);
    this.#report(context);
  }

  #hold(): false {
    this.#held++;
    return false;
  }
}
