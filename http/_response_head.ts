/**
 * The rules of an HTTP/1.1 response head that every way of answering
 * shares — the `Connection` field, the `Date` line, the short plain-text
 * answer — and the general way of framing any `Response`. The fast way
 * for the commonest answer is in `_fast_response.ts`; both follow the
 * rules here, and a test sends every response shape the fast way takes
 * through both and compares the bytes.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import { knownBodyLength, staticBody } from "./_deno_body.ts";
import { listsToken } from "./_http_body.ts";
import { serializeResponseHead, statusText } from "./_http_serialize.ts";

const ENCODER = new TextEncoder();

/** What a response head needs to know of the request it answers. */
export interface AnsweredRequest {
  /** The request method, upper case. */
  readonly method: string;
  /** The minor HTTP version: `0` for HTTP/1.0, `1` for HTTP/1.1. */
  readonly versionMinor: number;
}

/**
 * The `Connection` field value a response carries: `close` when the
 * connection ends after it, `keep-alive` when it stays open for an HTTP/1.0
 * client (which closes by default), and none otherwise.
 *
 * @param keepAlive Whether the connection carries another request.
 * @param versionMinor The request's minor HTTP version.
 * @returns The value, or `null` for no field.
 */
export function connectionValue(
  keepAlive: boolean,
  versionMinor: number,
): string | null {
  if (!keepAlive) return "close";
  return versionMinor === 0 ? "keep-alive" : null;
}

/**
 * {@linkcode connectionValue} as a head line (`connection: …\r\n`), or
 * `""` for no field.
 */
export function connectionLine(
  keepAlive: boolean,
  versionMinor: number,
): string {
  const value = connectionValue(keepAlive, versionMinor);
  if (value === null) return "";
  return value === "close" ? CLOSE_LINE : KEEP_ALIVE_LINE;
}

const CLOSE_LINE = "connection: close\r\n";
const KEEP_ALIVE_LINE = "connection: keep-alive\r\n";

/**
 * The `date: …\r\n` line of the responses of one loop's servers. The
 * clock costs about as much as a small request's parsing, so it is read
 * at most once per turn of the host's event loop (a busy loop yields at
 * least every half millisecond) and the line is remade at most once a
 * second. One per loop, so that loops share no mutable state.
 */
export class DateLine {
  /**
   * The date line of `loop`'s servers, made on first use; a connection
   * without a loop gets its own.
   */
  static of(loop: SchedulingLoop | null): DateLine {
    if (loop === null) return new DateLine();
    let found = perLoop.get(loop);
    if (found === undefined) {
      found = new DateLine();
      perLoop.set(loop, found);
    }
    return found;
  }

  #line = "";
  #value = "";
  #expires = 0;
  #checked = false;
  readonly #uncheck = (): void => {
    this.#checked = false;
  };

  /** The `date: …\r\n` line of a response sent now. */
  line(): string {
    if (!this.#checked) this.#check();
    return this.#line;
  }

  /** The `Date` value of a response sent now. */
  value(): string {
    if (!this.#checked) this.#check();
    return this.#value;
  }

  #check(): void {
    this.#checked = true;
    queueMicrotask(this.#uncheck);
    const now = Date.now();
    if (now >= this.#expires) {
      const second = Math.floor(now / 1000);
      this.#expires = (second + 1) * 1000;
      this.#value = new Date(second * 1000).toUTCString();
      this.#line = "date: " + this.#value + "\r\n";
    }
  }
}

// The date lines, as a per-loop cache: each goes with its loop.
const perLoop = new WeakMap<SchedulingLoop, DateLine>();

/**
 * A short plain-text answer (an error the server gives itself): head and
 * body, ready to write.
 *
 * @param status The status code.
 * @param text The body, without its final newline.
 * @param date The date line ({@linkcode DateLine.line}).
 * @param connection The connection line ({@linkcode connectionLine}).
 * @returns The head and the body bytes.
 */
export function plainResponse(
  status: number,
  text: string,
  date: string,
  connection: string,
): [Uint8Array, Uint8Array] {
  const body = ENCODER.encode(text + "\n");
  const head = `HTTP/1.1 ${status} ${statusText(status)}\r\n` +
    "content-type: text/plain; charset=utf-8\r\n" +
    `content-length: ${body.length}\r\n` + date + connection + "\r\n";
  return [ENCODER.encode(head), body];
}

/** How to send a response: its head, then its body. */
export interface ResponsePlan {
  /** The serialized head. */
  readonly head: Uint8Array;
  /** A body held in memory, sent with the head; `null` for none. */
  readonly data: Uint8Array | null;
  /** A body to stream after the head; `null` for none. */
  readonly stream: ReadableStream<Uint8Array> | null;
  /** Whether the streamed body goes in chunked coding. */
  readonly chunked: boolean;
  /** The streamed body's length in bytes, or `-1` when unknown. */
  readonly length: number;
  /** Whether the connection carries another request after this one. */
  readonly keepAlive: boolean;
}

/** What {@linkcode planResponse} asks of the connection. */
export interface PlanContext {
  /** The request answered. */
  readonly request: AnsweredRequest;
  /**
   * Whether the connection may carry another request, asked now: for a
   * response sent whole with its head, or (`streaming`) one whose body is
   * streamed after it.
   */
  keepAlive(streaming: boolean): boolean;
  /** Called before a body is streamed (it may come from the request). */
  beforeStream(): void;
  /** The `Date` value ({@linkcode DateLine.value}). */
  readonly date: string;
  /**
   * The response's body when already taken from it (`readReadyBody()`):
   * the whole body, or the stream to send.
   */
  readonly body?: Uint8Array | ReadableStream<Uint8Array>;
}

/** Plain decimal digits, as `Content-Length` is (RFC 9110 §8.6). */
const DIGITS = /^[0-9]+$/;

/**
 * The length a handler's `Content-Length` value states, or `-1` when it
 * is not a plain number of bytes.
 */
function declaredLength(value: string): number {
  if (!DIGITS.test(value)) return -1;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : -1;
}

/**
 * Frames any response: the head (the handler's fields, then
 * `Content-Length` or chunked coding, `Date` unless given, `Connection`,
 * which lists `upgrade` when there is an `Upgrade` field) and where its
 * body comes from. A stream of unknown length is sent by the handler's
 * `Content-Length` when it gives a valid one, as `Deno.serve` does (and
 * as the HEAD answer says); otherwise chunked. A `Content-Length` that is
 * not a plain number of bytes is dropped, on a HEAD or 304 answer too.
 *
 * @param response The handler's response.
 * @param context The request and the connection.
 * @returns The plan.
 * @throws {TypeError} For status 101, a used body, a locked stream, or a
 * field that cannot be serialized.
 */
export function planResponse(
  response: Response,
  context: PlanContext,
): ResponsePlan {
  const status = response.status;
  if (status === 101) {
    throw new TypeError(
      "Cannot send the HTTP response: status 101 (a protocol switch) is not supported, received 101",
    );
  }
  const headers: Array<[string, string]> = [];
  let hasDate = false;
  // The handler's Content-Length, when a plain number of bytes (-1 for
  // none or another value, which is dropped, as Deno.serve drops it).
  let declared = -1;
  let close = false;
  let upgrade = false;
  for (const pair of response.headers) {
    const name = pair[0];
    if (name === "content-length") {
      declared = declaredLength(pair[1]);
      continue;
    }
    if (name === "transfer-encoding" || name === "keep-alive") continue;
    if (name === "connection") {
      if (listsToken(pair[1], "close")) close = true;
      continue;
    }
    if (name === "date") hasDate = true;
    else if (name === "upgrade") upgrade = true;
    headers.push(pair);
  }
  const request = context.request;
  let keepAlive = context.keepAlive(false) && !close;
  const isHead = request.method === "HEAD";
  const bodiless = status < 200 || status === 204 || status === 304;
  let data: Uint8Array | null = null;
  let stream: ReadableStream<Uint8Array> | null = null;
  let length = -1;
  const given = context.body;
  const known = given === undefined
    ? staticBody(response)
    : given instanceof Uint8Array
    ? given
    : undefined;
  if (known === null) {
    length = 0;
  } else if (known !== undefined) {
    data = typeof known === "string" ? ENCODER.encode(known) : known;
    length = data.length;
  } else if (given !== undefined) {
    stream = given as ReadableStream<Uint8Array>;
    length = declared;
  } else {
    if (response.bodyUsed) {
      throw new TypeError(
        "Cannot send the HTTP response: its body was already read, received a used Response",
      );
    }
    stream = response.body;
    if (stream === null) length = 0;
    else if (stream.locked) {
      throw new TypeError(
        "Cannot send the HTTP response: its body stream is locked, received a locked ReadableStream",
      );
    } else {
      length = knownBodyLength(response) ?? declared;
    }
  }
  if (stream !== null && !bodiless && !isHead) {
    context.beforeStream();
    keepAlive = context.keepAlive(true) && !close;
  }
  let chunked = false;
  if (bodiless || isHead) {
    const hadStream = stream !== null;
    if (stream !== null) stream.cancel().catch(() => {});
    stream = null;
    data = null;
    // A HEAD answer tells the length of the body it would have; a
    // handler that gives no body may state it itself, as may a 304.
    const value = (known === null || hadStream) && declared >= 0
      ? String(declared)
      : bodiless || length < 0
      ? null
      : String(length);
    if (value !== null && (!bodiless || status === 304)) {
      headers.push(["content-length", value]);
    }
  } else if (length >= 0) {
    headers.push(["content-length", String(length)]);
  } else if (request.versionMinor >= 1) {
    headers.push(["transfer-encoding", "chunked"]);
    chunked = true;
  } else {
    // An HTTP/1.0 client: the body runs until the connection closes.
    keepAlive = false;
  }
  if (!hasDate) headers.push(["date", context.date]);
  let connection = connectionValue(keepAlive, request.versionMinor);
  // A sender of Upgrade also lists it in Connection (RFC 9110 §7.8).
  if (upgrade) {
    connection = connection === null ? "upgrade" : `${connection}, upgrade`;
  }
  if (connection !== null) headers.push(["connection", connection]);
  const head = serializeResponseHead({
    status,
    reason: response.statusText === "" ? undefined : response.statusText,
    headers,
  });
  return { head, data, stream, chunked, length, keepAlive };
}
