/**
 * `PeerLog`: how a server protocol reports what its peer causes without
 * letting the peer write the server's log.
 *
 * It is public, and lives beside the protocol bases, because every
 * server protocol needs it — the HTTP server and JSON-RPC use it, and so
 * can a protocol written by a user — and because a server's log must stay
 * within what its peers sent across all of its protocols, which takes one
 * mechanism with one budget per loop.
 *
 * @module
 */

import { formatReceived } from "../futures/errors.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import type { ExceptionContext, SchedulingLoop } from "../loop/event_loop.ts";
import { checkLoopOption } from "../futures/_runtime.ts";

/** Options for a {@linkcode PeerLog}. */
export interface PeerLogOptions {
  /**
   * How many problems of each kind are passed on per connection; the rest
   * are only counted.
   *
   * @default {1}
   */
  perKind?: number;
  /**
   * The loop whose exception handler gets the reports, and whose reserve
   * pays for them.
   *
   * @default {the running loop when a report is made}
   */
  loop?: SchedulingLoop;
}

/**
 * What printing an object field (the protocol, the transport) costs at
 * least: they print as their class name and a few fields (a
 * `JsonRpcProtocol` in about 110 characters, a transport in about 50).
 */
const DETAIL_SIZE = 160;
/** The shortest shortened report worth passing on, in characters. */
const MIN_SHORT = 48;
/** The longest text kept from an exception in a shortened report. */
const SHORT_EXCEPTION = 200;
/** The most log, in characters, a loop's reserve holds. */
const RESERVE = 64 * 1024;

/**
 * What a string costs printed inside an object: quoted, with control
 * characters escaped (`\x00`, four characters each).
 */
function quotedSize(text: string): number {
  let size = text.length + 2;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) size += 3;
  }
  return size;
}

/** The most items of an array Deno's console prints; it counts the rest. */
const ITEMS_PRINTED = 100;

/**
 * Shortens, for `JSON.stringify`, what Deno's console prints short: the
 * first `ITEMS_PRINTED` items of an array or a typed array (a buffered
 * protocol's 64 KiB buffer would otherwise cost it its first report).
 */
function asPrinted(_key: string, value: unknown): unknown {
  const items = Array.isArray(value) ||
      (ArrayBuffer.isView(value) && !(value instanceof DataView))
    ? value as ArrayLike<unknown>
    : null;
  if (items === null || items.length <= ITEMS_PRINTED) return value;
  const shown = Array.prototype.slice.call(items, 0, ITEMS_PRINTED);
  shown.push(`... ${items.length - ITEMS_PRINTED} more items`);
  return shown;
}

function valueSize(value: unknown): number {
  if (value === undefined) return 0;
  try {
    return measure(value);
  } catch {
    // Reading it threw (a getter, a Proxy's trap): it prints as little.
    return DETAIL_SIZE;
  }
}

function measure(value: unknown): number {
  let size = 0;
  if (value instanceof Error) {
    size += (value.stack ?? `${value.name}: ${value.message}`).length +
      value.message.length;
    if (value.cause !== undefined) size += valueSize(value.cause);
  }
  if (typeof value === "object" && value !== null) {
    try {
      size += quotedSize(JSON.stringify(value, asPrinted) ?? "") * 2 + 16;
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
  try {
    text = exception instanceof Error
      ? `${exception.name}: ${exception.message}`
      : typeof exception === "string"
      ? exception
      : JSON.stringify(exception) ?? String(exception);
  } catch {
    try {
      text = String(exception);
    } catch {
      // No prototype, or a Proxy whose traps throw.
      text = "(an exception that cannot be shown)";
    }
  }
  text = text.replace(/\s+/g, " ");
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The log one loop's peer logs may write beyond what their peers sent. */
interface Reserve {
  tokens: number;
}

// The reserves, as a per-loop cache: each goes with its loop.
const reserves = new WeakMap<SchedulingLoop, Reserve>();

function reserveOf(loop: SchedulingLoop): Reserve {
  let reserve = reserves.get(loop);
  if (reserve === undefined) {
    reserve = { tokens: RESERVE };
    reserves.set(loop, reserve);
  }
  return reserve;
}

/**
 * Counts and reports the problems one peer causes on one connection —
 * stray responses, failing notifications, handlers that throw — so that
 * the peer can never make the server log much more than it sent.
 *
 * - Every problem is counted by kind ({@linkcode PeerLog.count}); only the
 *   first `perKind` of each kind are passed on to the loop's exception
 *   handler, and `close()` sums up the rest in one line.
 * - What is passed on is paid for in characters of log (an estimate of
 *   what the default exception handler prints, {@linkcode PeerLog.sizeOf}):
 *   first from the bytes this peer sent ({@linkcode PeerLog.received}),
 *   then from a reserve the loop's peer logs share, which starts at
 *   {@linkcode PeerLog.RESERVE} (so that the first reports, usually a
 *   developer's, are shown whole) and takes back, up to that much, what a
 *   closed connection did not spend. A report that does not fit whole is
 *   passed on as one line, or only counted. So over any stretch of time a
 *   loop's peer logs write at most `RESERVE` plus what their peers sent.
 *
 * Not in the PEP: asyncio logs such problems without a bound.
 *
 * @example A protocol that reports a peer's bad lines
 * ```ts
 * import { PeerLog } from "@tulip/tulip/protocols";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const messages: string[] = [];
 * loop.setExceptionHandler((_loop, context) => messages.push(context.message));
 * const log = new PeerLog({ loop });
 * log.received(1000);
 * for (let i = 0; i < 5; i++) log.report("bad lines", { message: `Bad line ${i}` });
 * log.close("Line connection");
 * assertEquals(messages, [
 *   "Bad line 0",
 *   "Line connection: 4 problems were counted but not logged (5 bad lines)",
 * ]);
 * assertEquals(log.count("bad lines"), 5);
 * loop.close();
 * ```
 */
export class PeerLog {
  /**
   * The most log, in characters, that a loop's peer logs may write beyond
   * what their peers sent: 64 KiB.
   */
  static readonly RESERVE: number = RESERVE;

  /**
   * What a context costs in the log, in characters: a generous estimate
   * of what the default exception handler prints (`console.error` of the
   * message, the other fields, and the exception with its stack and own
   * fields).
   *
   * @param context The context.
   * @returns Its estimated size.
   *
   * @example
   * ```ts
   * import { PeerLog } from "@tulip/tulip/protocols";
   * import { assert } from "@std/assert";
   *
   * const error = new Error("boom");
   * assert(PeerLog.sizeOf({ message: "m", exception: error }) > error.stack!.length);
   * ```
   */
  static sizeOf(context: ExceptionContext): number {
    let size = context.message.length + 1;
    for (const key of Object.keys(context)) {
      if (key === "message") continue;
      const value = context[key];
      if (key === "exception") size += valueSize(value);
      else if (value !== undefined) {
        // An object (the protocol, the transport) prints as a few fields;
        // a string, or an object holding one, prints whole.
        size += key.length + 8 + Math.max(
          DETAIL_SIZE,
          typeof value === "string" ? quotedSize(value) : valueSize(value),
        );
      }
    }
    return size;
  }

  /** How many problems of each kind are passed on. */
  readonly perKind: number;
  readonly #loop: SchedulingLoop | null;
  #counts: Map<string, number> | null = null;
  #budget = 0;
  #held = 0;
  #closed = false;

  /**
   * Makes the log of one connection.
   *
   * @param options `perKind` and `loop`.
   * @throws {TypeError} When `loop` is not an event loop.
   * @throws {RangeError} When `perKind` is not a whole number >= 0.
   */
  constructor(options?: PeerLogOptions) {
    const perKind = options?.perKind ?? 1;
    if (!Number.isSafeInteger(perKind) || perKind < 0) {
      throw new RangeError(
        `Cannot make a PeerLog: perKind must be a whole number >= 0, received ${
          formatReceived(perKind)
        }`,
      );
    }
    this.perKind = perKind;
    checkLoopOption(options?.loop, "make a PeerLog");
    this.#loop = options?.loop ?? null;
  }

  /**
   * The peer sent `bytes` more bytes: the log may grow by as much.
   *
   * @param bytes How many bytes.
   * @throws {RangeError} When `bytes` is not a whole number >= 0.
   */
  received(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new RangeError(
        `Cannot count received bytes: bytes must be a whole number >= 0, received ${
          formatReceived(bytes)
        }`,
      );
    }
    this.#budget += bytes;
  }

  /**
   * How many problems of `kind` were counted.
   *
   * @param kind The kind; every kind when omitted.
   * @returns The count.
   */
  count(kind?: string): number {
    if (this.#counts === null) return 0;
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
   * Counts one problem of `kind`, and passes `context` on to the loop's
   * exception handler if this kind is under `perKind` and the log can pay
   * for it; when the whole context does not fit, it is passed on shortened
   * (the exception as one line of its message, no stack), or not at all.
   *
   * @param kind What sort of problem, in the plural: `"stray responses"`.
   * @param context What to report.
   * @returns Whether it was passed on.
   */
  report(kind: string, context: ExceptionContext): boolean {
    const counts = this.#counts ??= new Map();
    const n = (counts.get(kind) ?? 0) + 1;
    counts.set(kind, n);
    if (this.#closed || n > this.perKind) return this.#hold();
    return this.#pass(context, true) || this.#hold();
  }

  /**
   * The connection is over: passes on one line counting what was held
   * back, if anything was and the log can pay for it, and gives what this
   * peer's bytes did not pay for back to the loop's reserve. Later reports
   * are only counted.
   *
   * @param what Names the connection: `"JSON-RPC connection"`.
   * @param details Fields for the context (`protocol`, `transport`).
   */
  close(what: string, details?: Omit<ExceptionContext, "message">): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#held > 0) {
      const kinds = [...this.#counts!].map(([kind, n]) => `${n} ${kind}`);
      this.#pass({
        ...details,
        message: `${what}: ${this.#held} ${
          this.#held === 1 ? "problem was" : "problems were"
        } counted but not logged (${kinds.join(", ")})`,
      }, false);
    }
    const loop = this.#findLoop();
    if (loop !== null && this.#budget > 0) {
      const reserve = reserveOf(loop);
      reserve.tokens = Math.min(RESERVE, reserve.tokens + this.#budget);
    }
    this.#budget = 0;
  }

  #findLoop(): SchedulingLoop | null {
    const loop = this.#loop ?? getRunningLoop();
    return loop === null || loop.isClosed() ? null : loop;
  }

  // Pays for `context` (shortened if `shorten` allows and need be) from
  // this peer's bytes, then the loop's reserve, and passes it on.
  #pass(context: ExceptionContext, shorten: boolean): boolean {
    const loop = this.#findLoop();
    if (loop === null) return false;
    const reserve = reserveOf(loop);
    const room = this.#budget + reserve.tokens;
    // Room for neither the message nor a shortened line: measuring the
    // context (an exception's stack is formatted when first read) would
    // cost a flood of failures far more than counting them.
    if (room <= context.message.length && (!shorten || room <= MIN_SHORT)) {
      return false;
    }
    let cost = PeerLog.sizeOf(context);
    if (cost > room) {
      const short = shorten ? this.#shorten(context, room) : null;
      if (short === null) return false;
      context = short;
      cost = PeerLog.sizeOf(context);
    }
    const own = Math.min(cost, this.#budget);
    this.#budget -= own;
    reserve.tokens -= cost - own;
    loop.callExceptionHandler(context);
    return true;
  }

  // The context in one line within `budget`: the exception as its name
  // and message, then without the other fields if need be; null when even
  // that does not fit.
  #shorten(context: ExceptionContext, budget: number): ExceptionContext | null {
    const { exception, ...rest } = context;
    let message = context.message;
    if (exception !== undefined) {
      message += `: ${oneLine(exception, SHORT_EXCEPTION)}`;
    }
    for (const fields of [rest, {}]) {
      const room = budget - PeerLog.sizeOf({ ...fields, message: "" });
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

  #hold(): false {
    this.#held++;
    return false;
  }
}
