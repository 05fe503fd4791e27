/**
 * An incremental, push-style HTTP/1.1 message parser (RFC 9112), with no
 * I/O of its own: the HTTP protocols feed it the bytes their transport
 * delivers and it reports what they mean through callbacks.
 *
 * One parser reads one direction of one connection: a
 * {@linkcode HttpRequestParser} reads the requests a server receives, a
 * {@linkcode HttpResponseParser} the responses a client receives. Messages
 * follow each other on the connection (keep-alive, pipelining); the parser
 * reads them one after the other and can be paused between any two events.
 *
 * The parser is strict where leniency lets two parsers disagree about where
 * a message ends (request smuggling):
 *
 * - Lines end with CRLF. A bare LF is rejected (RFC 9112 allows accepting
 *   it, but servers that do and proxies that don't disagree about message
 *   boundaries), and so is a CR anywhere but before an LF. A response head
 *   is the exception, as in fetch() and Go's client: there every LF ends a
 *   line, with or without a CR before it (RFC 9112 §2.2), so no reading
 *   of its lines can differ from another; chunked framing and trailers
 *   keep CRLF, which fetch() requires there too.
 * - `Content-Length` together with `Transfer-Encoding` is rejected, as are
 *   differing `Content-Length` values, a `Content-Length` that is not
 *   plain digits, `chunked` applied twice or not last, and any
 *   `Transfer-Encoding` in an HTTP/1.0 message. Equal values repeated (a
 *   list, or several fields) are reported as one field of that value
 *   (RFC 9110 §8.6). A response to HEAD, and a 1xx, 204 or 304 response,
 *   ends at its head whatever these fields say (RFC 9112 §6.3), so they
 *   are not checked there.
 * - Field names must be tokens, with no whitespace before the colon; field
 *   values may hold only HTAB, SP, visible ASCII and obs-text. Folded lines
 *   (obs-fold) are rejected in a request; in a response each fold is
 *   replaced by spaces (RFC 9112 §5.2).
 * - Chunk sizes are hex digits only and must stay within
 *   `Number.MAX_SAFE_INTEGER`; chunk extensions must follow RFC 9112's
 *   `chunk-ext` grammar and stay within `maxChunkExtensionBytes` per
 *   message, then are ignored.
 * - The request-target may hold only the bytes RFC 3986 allows: in its
 *   path unreserved, `%`, sub-delims, `:`, `@` and `/`; in its query also
 *   `?` and what browsers send unencoded there (`[]{}|\^` and backquote);
 *   no `#`. The URL parser would otherwise rewrite what the handler sees
 *   (`\` becomes `/` in a path, so `/a\..\b` would be `/b`).
 * - A `Host` value and an absolute-form request-target must be what
 *   `new URL()` accepts, so that a server can build the request's URL
 *   without failing after the head was accepted; the target's host must
 *   also be a valid `Host` value: not empty, no userinfo (RFC 9110
 *   §4.2.1, §4.2.4).
 *
 * @module
 */

import {
  COLON,
  COMMA,
  CR,
  FIELD,
  framingField,
  HeadScan,
  HTAB,
  isBlank,
  LF,
  PATH,
  QUERY,
  QUESTION,
  SP,
  TCHAR,
} from "./_head_scan.ts";
import { type HeadLimits, quickHead } from "./_quick_head.ts";
import { formatReceived } from "../futures/errors.ts";

/**
 * The error a parser reports: the message is malformed or over a limit.
 * An `HttpClientProtocol` request fails with it when the response
 * is (its `status` says which limit or rule); the server answers a request
 * with its `status`.
 *
 * @example A response head over the client's maxHeaderBytes
 * ```ts
 * import { HttpClientProtocol, HttpParseError } from "@tulip/tulip/http";
 * import { Protocol } from "@tulip/tulip/protocols";
 * import type { Transport } from "@tulip/tulip/transports";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * class BigHead extends Protocol { // answers with a 2 KB field
 *   #transport?: Transport;
 *   override connectionMade(transport: Transport) {
 *     this.#transport = transport;
 *   }
 *   override dataReceived() {
 *     const head = `HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(2000)}\r\n\r\n`;
 *     this.#transport!.write(new TextEncoder().encode(head));
 *   }
 * }
 * const loop = new VirtualTimeLoop();
 * const client = new HttpClientProtocol({ loop, maxHeaderBytes: 1024 });
 * transportPair(client, new BigHead(), { loop });
 * await loop.advance(0);
 * const error = await assertRejects(
 *   () => loop.runUntilComplete(client.request(new Request("http://h/"))),
 *   HttpParseError,
 * );
 * assertEquals((error as HttpParseError).status, 431);
 * loop.close();
 * ```
 */
export class HttpParseError extends Error {
  /**
   * The status a server should answer with: 400, 413, 414, 431, 501 or
   * 505. A client just treats the response as broken.
   */
  readonly status: number;

  /**
   * Makes the error.
   *
   * @param status The HTTP status that describes the problem.
   * @param message What went wrong.
   */
  constructor(status: number, message: string) {
    super(message);
    this.name = "HttpParseError";
    this.status = status;
  }
}

/**
 * The text between two input offsets of the section a list was read from.
 * A friend accessor (see loop/_handle.ts), set in HttpHeaderList's static
 * block.
 */
let sectionSlice: (list: HttpHeaderList, from: number, to: number) => string;

/**
 * The header (or trailer) fields of a message: the pairs in the order
 * received, with names spelled as received, plus a case-insensitive lookup.
 * A head's repeated equal `Content-Length` values are one field, where the
 * first was; so are its `Cookie` fields, their values joined by `"; "`.
 *
 * A parser's list decodes its text when first used, so that a handler that
 * never reads a field costs no decoding: until then it holds the section's
 * bytes, which the parser's caller handed over for good (see `feed()`), or
 * a copy of them when they sat in the parser's own reused buffer.
 */
export class HttpHeaderList implements Iterable<[string, string]> {
  #pairs: Array<[string, string]> | null;
  #lower: string[] | null = null;
  // The number of field lines in the section, and the one Content-Length
  // value its repeated fields become (-1: none are repeated).
  #lines = 0;
  #oneLength = -1;
  // The section, until decoded: its bytes are `#bytes[#at, #at + #length)`,
  // its input offsets start at `#base`, its field lines at `#fieldsAt`.
  #bytes: Uint8Array | null = null;
  #at = 0;
  #length = 0;
  #base = 0;
  #fieldsAt = 0;
  #latin1 = false;
  #text: string | null = null;

  static {
    sectionSlice = (list, from, to) => list.#slice(from, to);
  }

  /**
   * Wraps a list of pairs; the list is not copied.
   *
   * @param pairs The `[name, value]` pairs.
   */
  constructor(pairs: Array<[string, string]>) {
    this.#pairs = pairs;
  }

  /**
   * A list of the `count` checked field lines that start at input offset
   * `fieldsAt` of a section, decoded when first used. With `oneLength` of
   * 0 or more, the `Content-Length` fields (a list of equal values, or
   * repeated ones) are given as one field of that value, where the first
   * was.
   */
  static fromSection(
    bytes: Uint8Array,
    at: number,
    length: number,
    base: number,
    fieldsAt: number,
    count: number,
    latin1: boolean,
    oneLength: number,
  ): HttpHeaderList {
    const list = new HttpHeaderList(EMPTY_PAIRS);
    list.#pairs = null;
    list.#lines = count;
    list.#oneLength = oneLength;
    list.#bytes = bytes;
    list.#at = at;
    list.#length = length;
    list.#base = base;
    list.#fieldsAt = fieldsAt;
    list.#latin1 = latin1;
    return list;
  }

  /**
   * The `[name, value]` pairs in the order received. Names keep the case
   * they were sent in; values have surrounding whitespace removed. Fit for
   * `new Headers(list.pairs)`.
   */
  get pairs(): Array<[string, string]> {
    let pairs = this.#pairs;
    if (pairs === null) {
      // The lines were checked when parsed: `name:` then the value between
      // optional spaces or tabs, then CRLF.
      const text = this.#decode();
      pairs = new Array<[string, string]>(this.#lines);
      let p = this.#fieldsAt - this.#base;
      let cookies = 0;
      for (let n = 0; n < pairs.length; n++) {
        const colon = text.indexOf(":", p);
        const cr = text.indexOf("\r", colon);
        let vs = colon + 1;
        let ve = cr;
        while (isBlank(text.charCodeAt(vs)) && vs < ve) vs++;
        while (ve > vs && isBlank(text.charCodeAt(ve - 1))) ve--;
        const name = text.slice(p, colon);
        if (colon - p === 6 && isCookie(name)) cookies++;
        pairs[n] = [name, text.slice(vs, ve)];
        p = cr + 2;
      }
      if (this.#oneLength >= 0) {
        pairs = oneContentLength(pairs, this.#oneLength);
      }
      if (cookies > 1) pairs = oneCookie(pairs);
      this.#pairs = pairs;
    }
    return pairs;
  }

  /** The number of fields. */
  get size(): number {
    return this.pairs.length;
  }

  /**
   * Returns the value of the named field, with repeated fields joined by
   * `", "`, or `undefined` when it is absent.
   *
   * @param name The field name, in any case.
   */
  get(name: string): string | undefined {
    const lower = this.#names();
    const key = name.toLowerCase();
    let out: string | undefined;
    for (let i = 0; i < lower.length; i++) {
      if (lower[i] === key) {
        const v = this.pairs[i][1];
        out = out === undefined ? v : out + ", " + v;
      }
    }
    return out;
  }

  /**
   * Returns every value of the named field, in order.
   *
   * @param name The field name, in any case.
   */
  getAll(name: string): string[] {
    const lower = this.#names();
    const key = name.toLowerCase();
    const out: string[] = [];
    for (let i = 0; i < lower.length; i++) {
      if (lower[i] === key) out.push(this.pairs[i][1]);
    }
    return out;
  }

  /**
   * Returns `true` when the named field is present.
   *
   * @param name The field name, in any case.
   */
  has(name: string): boolean {
    return this.#names().includes(name.toLowerCase());
  }

  /** Iterates over the `[name, value]` pairs in order. */
  [Symbol.iterator](): Iterator<[string, string]> {
    return this.pairs[Symbol.iterator]();
  }

  #decode(): string {
    let text = this.#text;
    if (text === null) {
      const bytes = this.#bytes!;
      const at = this.#at;
      const end = at + this.#length;
      // Header bytes are mostly ASCII, which the (fast) UTF-8 decoder maps
      // one to one; obs-text needs the Latin-1 path.
      text = this.#text = this.#latin1
        ? latin1(bytes, at, end)
        : DECODER.decode(bytes.subarray(at, end));
      this.#bytes = null;
    }
    return text;
  }

  #slice(from: number, to: number): string {
    return this.#decode().slice(from - this.#base, to - this.#base);
  }

  #names(): string[] {
    if (this.#lower === null) {
      const pairs = this.pairs;
      const lower = new Array<string>(pairs.length);
      for (let i = 0; i < pairs.length; i++) {
        lower[i] = pairs[i][0].toLowerCase();
      }
      this.#lower = lower;
    }
    return this.#lower;
  }
}

const EMPTY_PAIRS: Array<[string, string]> = [];

/**
 * `pairs` with its `Content-Length` fields made one, of value `length`,
 * where the first was (RFC 9110 §8.6: a list of identical values may be
 * replaced by a single instance).
 */
function oneContentLength(
  pairs: Array<[string, string]>,
  length: number,
): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let seen = false;
  for (const pair of pairs) {
    const name = pair[0];
    if (name.length !== 14 || name.toLowerCase() !== "content-length") {
      out.push(pair);
    } else if (!seen) {
      seen = true;
      out.push([name, String(length)]);
    }
  }
  return out;
}

/** Whether the six-letter field name `name` is `Cookie`, in any case. */
function isCookie(name: string): boolean {
  return (name.charCodeAt(0) | 0x20) === 0x63 &&
    name.toLowerCase() === "cookie";
}

/**
 * `pairs` with its `Cookie` fields made one, where the first was, their
 * values joined by `"; "`: a cookie-string's separator (RFC 6265 §5.4), as
 * `Deno.serve` and HTTP/2 (RFC 9113 §8.2.3) join them. A `", "` would make
 * the next cookie part of the one before's value.
 */
function oneCookie(pairs: Array<[string, string]>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let first: [string, string] | null = null;
  for (const pair of pairs) {
    const name = pair[0];
    if (name.length !== 6 || !isCookie(name)) out.push(pair);
    else if (first === null) out.push(first = [name, pair[1]]);
    else first[1] += "; " + pair[1];
  }
  return out;
}

/**
 * How a message's body is delimited:
 *
 * - `"none"`: no body bytes follow (no framing fields on a request,
 *   `Content-Length: 0`, or a response to HEAD, 1xx, 204 or 304).
 * - `"length"`: exactly `contentLength` bytes follow.
 * - `"chunked"`: the chunked transfer coding; the length is not known.
 * - `"close"`: a response body that runs until the server closes the
 *   connection (client side only; end it with `feedEof()`).
 */
export type HttpBodyKind = "none" | "length" | "chunked" | "close";

/** What the heads of requests and responses share. */
export interface HttpMessageHead {
  /** The major HTTP version; always 1. */
  versionMajor: number;
  /** The minor HTTP version, 0 to 9; above 1 is handled as 1.1. */
  versionMinor: number;
  /** The header fields. */
  headers: HttpHeaderList;
  /**
   * Whether the connection may carry another message after this one: the
   * version's default (on for 1.1, off for 1.0) adjusted by the
   * `Connection` field's `close` and `keep-alive` options. Always `false`
   * for a body delimited by closing the connection.
   */
  keepAlive: boolean;
  /** How the body is delimited. */
  bodyKind: HttpBodyKind;
  /**
   * The body length in bytes for `"length"`, 0 for `"none"`, -1 when the
   * length is not known in advance (`"chunked"`, `"close"`).
   */
  contentLength: number;
}

/**
 * The form of a request-target (RFC 9112 §3.2): `"origin"` (`/path?q`),
 * `"absolute"` (`http://…` or `https://…`, any case), `"asterisk"` (`*`),
 * or `"other"` (an authority, as `CONNECT` sends, or anything else).
 */
export type HttpTargetForm = "origin" | "absolute" | "asterisk" | "other";

/** The head of a request: request line and header fields. */
export interface HttpRequestHead extends HttpMessageHead {
  /** The method, as sent (methods are case-sensitive). */
  method: string;
  /** The request-target, as sent: `/path?q`, `*`, or an absolute URL. */
  target: string;
  /** The form of `target`. */
  targetForm: HttpTargetForm;
  /**
   * The `Host` value, `""` when there is none (HTTP/1.0). The parser has
   * checked that it is a valid authority: letters, digits and
   * `-._~!$&'()*+,;=:[]%`, not empty, and a host and port that `new URL()`
   * accepts.
   */
  host: string;
  /**
   * `true` for an HTTP/1.1 request whose `Expect` lists `100-continue`
   * (in any case, among other expectations or not): the client
   * waits for a `100 Continue` (or a final response) before it sends the
   * body. Any other `Expect` value is left in `headers`.
   */
  expectContinue: boolean;
  /**
   * Whether the request-target and `Host` are those of `key`, made by
   * `targetKey()` of an earlier request: compared as bytes, without
   * decoding this request's header section.
   */
  sameTarget(key: Uint8Array): boolean;
  /** A copy of the request-target's and `Host`'s bytes, for `sameTarget()`. */
  targetKey(): Uint8Array;
}

/** The head of a response: status line and header fields. */
export interface HttpResponseHead extends HttpMessageHead {
  /** The status code, 100 to 999. */
  status: number;
  /** The reason phrase, possibly empty. */
  reason: string;
}

/**
 * The events a parser reports, in this order for each message: `onHead`
 * once, `onBody` zero or more times, `onMessageComplete` once. `onError`
 * ends everything: nothing is reported after it. Callbacks may call
 * `pause()`, `resume()`, `feed()` and `feedEof()` on the parser.
 *
 * @typeParam H The head type: {@linkcode HttpRequestHead} or
 * {@linkcode HttpResponseHead}.
 */
export interface HttpParserCallbacks<H extends HttpMessageHead> {
  /**
   * Called when a message's head is complete and valid.
   *
   * @param head The start line and header fields.
   */
  onHead(head: H): void;
  /**
   * Called with each piece of body, already de-chunked. The bytes are not
   * accumulated: a piece is a view into a buffer passed to `feed()`, and
   * the parser never writes to it afterwards, so it may be kept.
   *
   * @param chunk Body bytes, never empty.
   * @param own `true` when nothing else refers to the piece's buffer: the
   * piece runs to the end of it, everything before it there was fed to
   * this parser in order, and no head or trailer section kept a view of
   * it. Its reader may then change or transfer the buffer; when `false`,
   * the buffer holds other bytes (the next message, a head decoded when
   * first used, what the transport reads next), so the piece must be
   * copied before it reaches code that might.
   */
  onBody(chunk: Uint8Array, own: boolean): void;
  /**
   * Called when a message is complete. Parsing then goes on with the next
   * message on the connection, unless paused.
   *
   * @param trailers The trailer fields of a chunked body, or `null` when
   * there were none.
   */
  onMessageComplete(trailers: HttpHeaderList | null): void;
  /**
   * Called once when the input is malformed, over a limit, or ends in the
   * middle of a message. The parser ignores all input after it.
   *
   * @param error The problem, with the status a server should send.
   */
  onError(error: HttpParseError): void;
}

/** Limits for {@linkcode HttpRequestParser} and {@linkcode HttpResponseParser}. */
export interface HttpParserOptions {
  /**
   * The most bytes a head may take: start line, header lines and the empty
   * line that ends them, CRLFs included. The same limit applies to the
   * trailer section of a chunked body. Over it: 431.
   *
   * @default {16384}
   */
  maxHeaderBytes?: number;
  /**
   * The most header fields a head (or trailer fields a trailer section)
   * may have. Over it: 431.
   *
   * @default {100}
   */
  maxHeaders?: number;
  /**
   * The most body bytes a single message may have: 0 or more, or
   * `Infinity`. A
   * larger `Content-Length` is rejected before the head is reported. Over
   * it: 413.
   *
   * @default {16777216}
   */
  maxBodyBytes?: number;
  /**
   * The most bytes a start line or a chunk-size line may have, CRLF not
   * counted. Over it: 414 for a request line, 400 otherwise.
   *
   * @default {8192}
   */
  maxLineBytes?: number;
  /**
   * The most bytes of chunk extensions (what follows the chunk size on its
   * line) a chunked body may have in all. Extensions carry no body bytes,
   * so without this limit a peer could send them without end. Over it: 413.
   *
   * @default {16384}
   */
  maxChunkExtensionBytes?: number;
}

// States of the parser. Every state but the last two reads input; DONE
// (after EOF, or after a response that ends HTTP on the connection) drops
// input quietly, DEAD (after an error) too.
const S_HEAD = 0; // reading a head, or between messages
const S_BODY_LENGTH = 1; // #remaining body bytes to go; 0 means complete
const S_BODY_CLOSE = 2; // body runs to EOF
const S_CHUNK_SIZE = 3; // reading a chunk-size line
const S_CHUNK_DATA = 4; // #remaining chunk bytes to go
const S_CHUNK_END = 5; // the CRLF after chunk data (#crSeen says how far)
const S_TRAILERS = 6; // reading the trailer section
const S_DONE = 7;
const S_DEAD = 8;

const SEMICOLON = 59;
const SLASH = 47;
const SPACE = 32;
const STAR = 42;
const DOT = 46;
const HYPHEN = 45;
const EQUALS = 61;
const DQUOTE = 34;
const BACKSLASH = 92;

/** 1 for qdtext, the bytes a quoted-string holds unescaped, else 0. */
const QDTEXT = new Uint8Array(256);
/** 1 for the bytes allowed in a `Host` value (RFC 3986 authority), else 0. */
const HOST_CHARS = new Uint8Array(256);
/**
 * The class of each byte in a `Host` value: one bit each for letters,
 * digits, ".", "-", ":", the other authority characters, and the rest.
 */
const HOST_CLASS = new Uint8Array(256);
const H_LETTER = 1;
const H_DIGIT = 2;
const H_DOT = 4;
const H_HYPHEN = 8;
const H_COLON = 16;
const H_OTHER = 32;
const H_INVALID = 64;
/** The value of each hex digit, 255 for other bytes. */
const HEX = new Uint8Array(256).fill(255);
{
  QDTEXT.set(FIELD);
  QDTEXT[DQUOTE] = QDTEXT[BACKSLASH] = 0;
  for (
    const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" +
      "0123456789-._~!$&'()*+,;=:[]%"
  ) HOST_CHARS[c.charCodeAt(0)] = 1;
  for (let b = 0; b < 256; b++) {
    HOST_CLASS[b] = HOST_CHARS[b] === 0
      ? H_INVALID
      : (b | 0x20) >= 97 && (b | 0x20) <= 122
      ? H_LETTER
      : b >= 48 && b <= 57
      ? H_DIGIT
      : b === DOT
      ? H_DOT
      : b === HYPHEN
      ? H_HYPHEN
      : b === COLON
      ? H_COLON
      : H_OTHER;
  }
  for (let b = 0; b <= 9; b++) HEX[48 + b] = b;
  for (let b = 0; b < 6; b++) HEX[65 + b] = HEX[97 + b] = 10 + b;
}

const EMPTY = new Uint8Array(0);
const DECODER = new TextDecoder();
const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
/** The count limits' defaults. */
const DEFAULT_LIMITS = {
  maxHeaderBytes: 16384,
  maxHeaders: 100,
  maxLineBytes: 8192,
  maxChunkExtensionBytes: 16384,
};

/** Decodes bytes one to one into UTF-16 code units (true ISO-8859-1). */
function latin1(src: Uint8Array, start: number, end: number): string {
  let out = "";
  for (let i = start; i < end; i += 4096) {
    const part = src.subarray(i, Math.min(end, i + 4096));
    out += String.fromCharCode.apply(null, part as unknown as number[]);
  }
  return out;
}

/** The index of the first LF in `data[from, stop)`, or -1. */
function nextLF(data: Uint8Array, from: number, stop: number): number {
  // A native search costs a call: the first bytes are looked at here, which
  // is where the end of a typical header line is.
  const near = Math.min(stop, from + 64);
  for (let i = from; i < near; i++) if (data[i] === LF) return i;
  if (near === stop) return -1;
  const i = data.indexOf(LF, near);
  return i < stop ? i : -1;
}

/** A short, quoted excerpt of some bytes for an error message. */
export function excerpt(
  src: Uint8Array,
  start: number,
  end: number,
): string {
  const cut = end - start > 64;
  const text = latin1(src, start, cut ? start + 64 : end);
  return JSON.stringify(text) + (cut ? "…" : "");
}

/** The count limit `name` of `options`, or its default; a count >= 1. */
function checkLimit(
  options: HttpParserOptions,
  name: keyof typeof DEFAULT_LIMITS,
): number {
  const value = options[name] ?? DEFAULT_LIMITS[name];
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(
      `Cannot create HTTP parser: ${name} must be a positive integer, received ${
        formatReceived(value)
      }`,
    );
  }
  return value;
}

/**
 * What {@linkcode HttpRequestParser} and {@linkcode HttpResponseParser}
 * share: the state machine, input handling, pausing. Not constructed
 * directly; useful as the type of either parser.
 *
 * @typeParam H The head type the parser reports.
 */
export class HttpParser<H extends HttpMessageHead> {
  readonly #isRequest: boolean;
  readonly #what: string;
  readonly #cb: HttpParserCallbacks<H>;
  readonly #maxHeaderBytes: number;
  readonly #maxHeaders: number;
  readonly #maxBodyBytes: number;
  readonly #maxLineBytes: number;
  readonly #maxChunkExtensionBytes: number;
  /** Methods of the requests awaiting a response (client side). */
  readonly #methods: string[] | null;

  #state = S_HEAD;
  /** A partial head, trailer section or chunk-size line; reused. */
  #buf: Uint8Array = EMPTY;
  #bufLen = 0;
  /** Whether the head being read has its start line complete. */
  #lineSeen = false;
  /** Whether a line of the response head being read ends with a bare LF. */
  #bareLf = false;
  #remaining = 0;
  #bodyBytes = 0;
  /** The chunk extension bytes of the current message. */
  #extensionBytes = 0;
  #crSeen = false;
  /** Input fed while paused (or from inside a callback), not yet parsed. */
  readonly #held: Uint8Array[] = [];
  #heldBytes = 0;
  #paused = false;
  #running = false;
  #eofPending = false;
  /** Whether HTTP ends on this connection after the current message. */
  #lastMessage = false;
  #error: HttpParseError | null = null;
  /**
   * What was wrong with the `Content-Length` of the response head being
   * read: whether it matters depends on the status (RFC 9112 §6.3).
   */
  #lengthError: HttpParseError | null = null;
  /** The bitwise OR of all field value bytes of the last `#fields()` call. */
  #high = 0;
  /** The head being read; refilled for each. */
  readonly #scan = new HeadScan();
  /** Whether a head or trailer section keeps a view of the input. */
  #pinned = false;
  /**
   * The buffer of the last input that ended with a body piece, while
   * nothing else referred to it up to `#inEnd`: an input that continues
   * it there may be its reader's own. A `WeakRef`, lest a quiet
   * connection pin a read chunk its transport let go.
   */
  #inBuffer: WeakRef<ArrayBufferLike> | null = null;
  #inEnd = 0;
  readonly #limits: HeadLimits;

  /**
   * Makes a parser; see the subclasses.
   *
   * @param isRequest Whether it reads requests (else responses).
   * @param callbacks Where events go.
   * @param options Limits.
   * @param methods The queue of methods awaiting responses (client side).
   */
  protected constructor(
    isRequest: boolean,
    callbacks: HttpParserCallbacks<H>,
    options: HttpParserOptions,
    methods: string[] | null,
  ) {
    this.#isRequest = isRequest;
    this.#what = isRequest ? "request" : "response";
    this.#cb = callbacks;
    this.#methods = methods;
    this.#maxHeaderBytes = checkLimit(options, "maxHeaderBytes");
    this.#maxHeaders = checkLimit(options, "maxHeaders");
    this.#maxLineBytes = checkLimit(options, "maxLineBytes");
    this.#maxChunkExtensionBytes = checkLimit(
      options,
      "maxChunkExtensionBytes",
    );
    const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    if (
      maxBody !== Infinity && !(Number.isSafeInteger(maxBody) && maxBody >= 0)
    ) {
      throw new RangeError(
        `Cannot create HTTP parser: maxBodyBytes must be a non-negative integer or Infinity, received ${
          formatReceived(maxBody)
        }`,
      );
    }
    this.#maxBodyBytes = maxBody;
    this.#limits = {
      maxLineBytes: this.#maxLineBytes,
      maxHeaders: this.#maxHeaders,
      maxHeaderBytes: this.#maxHeaderBytes,
    };
  }

  /**
   * Parses the next piece of input, reporting the events it completes
   * before returning. The parser takes the buffer over: body pieces and
   * heads may be views into it, so the caller must not change it
   * afterwards (`onBody()` says which pieces are their reader's own,
   * which needs the input of a buffer fed in order from its start). While
   * paused, or after `feedEof()` or an error, the input is kept (paused)
   * or ignored (otherwise).
   *
   * @param chunk The bytes received, in order; may be empty.
   */
  feed(chunk: Uint8Array): void {
    if (this.#state >= S_DONE || this.#eofPending) return;
    if (this.#running || this.#paused) {
      if (chunk.length > 0) {
        this.#held.push(chunk);
        this.#heldBytes += chunk.length;
      }
      return;
    }
    this.#run(chunk);
  }

  /**
   * Tells the parser the input has ended (the peer closed its side). A body
   * delimited by the close completes; a message cut short is an error
   * (400); between messages nothing is reported. Later input is ignored.
   * While paused, this takes effect after `resume()` has parsed what is
   * held.
   */
  feedEof(): void {
    if (this.#state >= S_DONE || this.#eofPending) return;
    this.#eofPending = true;
    if (!this.#running && !this.#paused) this.#run(EMPTY);
  }

  /**
   * Stops reporting events: called from a callback, nothing more is
   * reported after that callback returns until `resume()`. Input fed
   * meanwhile is kept, unparsed, so the caller should also pause its
   * transport. A server pauses in `onMessageComplete` to answer one
   * request before reading the next (pipelining).
   */
  pause(): void {
    this.#paused = true;
  }

  /**
   * Resumes after `pause()`. Called outside the parser's callbacks, it
   * parses the held input at once, reporting its events before it returns.
   */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#running) return;
    // Run even with nothing held: the pause may have come between a head
    // and the completion of its empty body.
    if (this.#state < S_DONE) this.#run(EMPTY);
  }

  /** `true` between `pause()` and `resume()`. */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * `true` between messages: no part of a message has been received (or
   * the input has ended). A connection that closes while idle closed
   * cleanly.
   */
  get idle(): boolean {
    return (this.#state === S_HEAD && this.#bufLen === 0 &&
      this.#heldBytes === 0) || this.#state === S_DONE;
  }

  /**
   * The bytes the parser holds: a partial head, trailer section or
   * chunk-size line (never more than the limits allow), plus input held
   * while paused.
   */
  get bufferedBytes(): number {
    return this.#bufLen + this.#heldBytes;
  }

  /**
   * The body bytes of the current message still to be parsed when its
   * `Content-Length` says how many: 0 once it is complete; -1 when the
   * body's length is not known (chunked, or running to the close).
   */
  get bodyRemaining(): number {
    const state = this.#state;
    if (state === S_BODY_LENGTH) return this.#remaining;
    return state === S_HEAD || state >= S_DONE ? 0 : -1;
  }

  /** Runs the state machine over `data` and then any input held meanwhile. */
  #run(data: Uint8Array): void {
    this.#running = true;
    try {
      const held = this.#held;
      let cur = data;
      for (;;) {
        const pos = this.#parse(cur);
        if (this.#state >= S_DONE) {
          held.length = 0;
          this.#heldBytes = 0;
          break;
        }
        if (this.#paused) {
          if (pos < cur.length) {
            held.unshift(cur.subarray(pos));
            this.#heldBytes += cur.length - pos;
          }
          return;
        }
        if (held.length === 0) break;
        cur = held.shift()!;
        this.#heldBytes -= cur.length;
      }
      if (this.#eofPending && !this.#paused && this.#state < S_DONE) {
        this.#finishEof();
      }
    } catch (e) {
      this.#state = S_DEAD;
      this.#held.length = 0;
      this.#heldBytes = 0;
      this.#bufLen = 0;
      if (e !== this.#error || this.#error === null) throw e;
      this.#cb.onError(this.#error);
    } finally {
      this.#running = false;
    }
  }

  /** Reports an error by unwinding to `#run()`, which reports it. */
  #fail(status: number, why: string, received?: string): never {
    this.#state = S_DEAD;
    throw (this.#error = this.#parseError(status, why, received));
  }

  #parseError(status: number, why: string, received?: string): HttpParseError {
    const message = `Cannot parse HTTP ${this.#what}: ${why}` +
      (received === undefined ? "" : `, received ${received}`);
    return new HttpParseError(status, message);
  }

  /**
   * A `Content-Length` is malformed: a request fails; a response fails
   * once its status says the length frames a body (`#frameResponse()`),
   * and its fields are given as received.
   */
  #badLength(f: HeadScan, why: string, received: string): void {
    if (this.#isRequest) this.#fail(400, why, received);
    this.#lengthError = this.#parseError(400, why, received);
    f.oneLength = -1;
  }

  #finishEof(): void {
    const state = this.#state;
    if (state === S_BODY_CLOSE) {
      this.#complete(null);
      this.#state = S_DONE;
    } else if (state === S_HEAD && this.#bufLen === 0) {
      this.#state = S_DONE;
    } else {
      // Name what was missing: a peer that announced more than it sent
      // (an early close, not a truncated success); or quote the part of
      // a head that came, as Go's client does ("malformed HTTP response"):
      // a peer that speaks no HTTP (a TLS alert to a plain-HTTP client).
      const due = state === S_HEAD
        ? ` after ${excerpt(this.#buf, 0, this.#bufLen)} of its head`
        : state === S_BODY_LENGTH
        ? ` with ${this.#remaining} body byte${
          this.#remaining === 1 ? "" : "s"
        } of its Content-Length still due`
        : state >= S_CHUNK_SIZE && state <= S_CHUNK_END
        ? " before the chunked body's last chunk"
        : "";
      this.#fail(
        400,
        "the connection closed before the message was complete",
        "end of input" + due,
      );
    }
  }

  /**
   * Whether the body piece that ends `data` is its reader's own: it ends
   * its buffer too, and every byte before it there was fed to this parser,
   * in order, with no head or trailer section keeping a view of it (the
   * caller checked `#pinned`). Notes where `data` ends, for the input that
   * continues its buffer.
   */
  #ownsTail(data: Uint8Array): boolean {
    const buffer = data.buffer;
    const at = data.byteOffset;
    const end = at + data.length;
    const clean = at === 0 ||
      (at === this.#inEnd && this.#inBuffer?.deref() === buffer);
    if (!clean || end === buffer.byteLength) {
      this.#inBuffer = null;
      return clean;
    }
    if (at === 0) this.#inBuffer = new WeakRef(buffer);
    this.#inEnd = end;
    return false;
  }

  /** Parses `data` until it is used up or the parser pauses or stops. */
  #parse(data: Uint8Array): number {
    const end = data.length;
    this.#pinned = false;
    let pos = 0;
    while (!this.#paused) {
      switch (this.#state) {
        case S_HEAD:
          if (this.#bufLen === 0) {
            // RFC 9112 §2.2: ignore empty lines before a message.
            while (pos + 1 < end && data[pos] === CR && data[pos + 1] === LF) {
              pos += 2;
            }
          }
          if (pos === end) return pos;
          if (this.#bufLen === 0 && this.#isRequest) {
            const next = quickHead(data, pos, end, this.#scan, this.#limits);
            if (next >= 0) {
              this.#finishHead(data);
              pos = next;
              break;
            }
          }
          pos = this.#section(data, pos, end);
          break;
        case S_BODY_LENGTH: {
          const r = this.#remaining;
          if (r === 0) {
            this.#complete(null);
            break;
          }
          if (pos === end) return pos;
          const n = r < end - pos ? r : end - pos;
          this.#remaining = r - n;
          const piece = n === end ? data : data.subarray(pos, pos + n);
          pos += n;
          this.#cb.onBody(
            piece,
            pos === end && !this.#pinned && this.#ownsTail(data),
          );
          break;
        }
        case S_BODY_CLOSE: {
          if (pos === end) return pos;
          // Deliver up to the limit, then fail on the first byte over it.
          const room = this.#maxBodyBytes - this.#bodyBytes;
          if (room === 0) {
            this.#fail(
              413,
              `the body is larger than maxBodyBytes (${this.#maxBodyBytes})`,
            );
          }
          const n = room < end - pos ? room : end - pos;
          this.#bodyBytes += n;
          const piece = n === end ? data : data.subarray(pos, pos + n);
          pos += n;
          this.#cb.onBody(
            piece,
            pos === end && !this.#pinned && this.#ownsTail(data),
          );
          break;
        }
        case S_CHUNK_SIZE:
          if (pos === end) return pos;
          pos = this.#chunkSizeLine(data, pos, end);
          break;
        case S_CHUNK_DATA: {
          if (pos === end) return pos;
          const r = this.#remaining;
          const n = r < end - pos ? r : end - pos;
          this.#remaining = r - n;
          if (r === n) {
            this.#state = S_CHUNK_END;
            this.#crSeen = false;
          }
          const piece = n === end ? data : data.subarray(pos, pos + n);
          pos += n;
          this.#cb.onBody(
            piece,
            pos === end && !this.#pinned && this.#ownsTail(data),
          );
          break;
        }
        case S_CHUNK_END:
          if (pos === end) return pos;
          if (!this.#crSeen) {
            if (data[pos] !== CR) this.#badChunkEnd(data, pos);
            this.#crSeen = true;
            if (++pos === end) return pos;
          }
          if (data[pos] !== LF) this.#badChunkEnd(data, pos);
          pos++;
          this.#state = S_CHUNK_SIZE;
          break;
        case S_TRAILERS:
          if (pos === end) return pos;
          pos = this.#section(data, pos, end);
          break;
        default:
          return end;
      }
    }
    return pos;
  }

  #badChunkEnd(data: Uint8Array, pos: number): never {
    this.#fail(
      400,
      "chunk data is not followed by CRLF",
      excerpt(data, pos, pos + 1),
    );
  }

  /** Ends the current message and readies the parser for the next one. */
  #complete(trailers: HttpHeaderList | null): void {
    this.#state = this.#lastMessage ? S_DONE : S_HEAD;
    this.#remaining = 0;
    this.#bodyBytes = 0;
    this.#extensionBytes = 0;
    this.#cb.onMessageComplete(trailers);
  }

  /** Appends `data[start, end)` to the line buffer. */
  #append(data: Uint8Array, start: number, end: number): void {
    const need = this.#bufLen + end - start;
    if (need > this.#buf.length) {
      // Never beyond what the limits let a section or line take.
      const cap = Math.max(this.#maxHeaderBytes, this.#maxLineBytes + 2);
      const size = Math.min(Math.max(need, this.#buf.length * 2, 256), cap);
      const grown = new Uint8Array(Math.max(size, need));
      grown.set(this.#buf.subarray(0, this.#bufLen));
      this.#buf = grown;
    }
    this.#buf.set(data.subarray(start, end), this.#bufLen);
    this.#bufLen = need;
  }

  /** Returns byte `i` of `data`, or before `pos` the buffered bytes. */
  #byteBefore(data: Uint8Array, pos: number, i: number): number {
    return i >= pos ? data[i] : this.#buf[this.#bufLen + i - pos];
  }

  /**
   * Looks for the empty line that ends a head or trailer section, the part
   * before `pos` being in the line buffer. Parses the section when found,
   * buffers the input otherwise; returns where parsing goes on.
   */
  #section(data: Uint8Array, pos: number, end: number): number {
    const L = this.#bufLen;
    const isHead = this.#state === S_HEAD;
    // A response head may end its lines with a bare LF (RFC 9112 §2.2),
    // as fetch() and Go's client read it; every LF then ends a line, and
    // a CR only goes before one. Requests, chunked framing and trailers
    // keep CRLF (fetch() too refuses a bare LF in the last two).
    const lenient = isHead && !this.#isRequest;
    const limit = this.#maxHeaderBytes;
    // An LF past `stop` would make the section too large: don't look there.
    const stop = Math.min(end, pos + limit - L);
    for (
      let lf = nextLF(data, pos, stop);
      lf !== -1;
      lf = nextLF(data, lf + 1, stop)
    ) {
      const off = L + lf - pos; // offset of this LF in the section
      const cr = off > 0 && this.#byteBefore(data, pos, lf - 1) === CR;
      const firstLine = isHead && !this.#lineSeen;
      if (firstLine) {
        if (off - (cr || !lenient ? 1 : 0) > this.#maxLineBytes) {
          this.#lineTooLong();
        }
        this.#lineSeen = true;
      }
      if (!cr) {
        if (!lenient) {
          this.#fail(400, "a line ends with a bare LF (CRLF is required)");
        }
        this.#bareLf = true;
      }
      if (off === (cr ? 1 : 0)) {
        // An empty line at the start: before a head it is ignored; it is
        // an empty trailer section after the last chunk.
        this.#bufLen = 0;
        this.#lineSeen = false;
        this.#bareLf = false;
        if (!isHead) this.#complete(null);
        return lf + 1;
      }
      if (firstLine && this.#isRequest) this.#earlyRequestLine(data, pos, lf);
      if (
        cr
          ? off >= 3 && this.#byteBefore(data, pos, lf - 2) === LF &&
            (lenient || this.#byteBefore(data, pos, lf - 3) === CR)
          : this.#byteBefore(data, pos, lf - 1) === LF
      ) {
        let src = data;
        let start = pos;
        let last = lf + 1;
        if (L > 0) {
          this.#append(data, pos, lf + 1);
          src = this.#buf;
          start = 0;
          last = this.#bufLen;
        }
        this.#bufLen = 0;
        this.#lineSeen = false;
        if (this.#bareLf) {
          this.#bareLf = false;
          src = withCrlf(src.subarray(start, last));
          start = 0;
          last = src.length;
        }
        if (!this.#isRequest) {
          // RFC 9112 §5.2: a user agent unfolds; after the status line.
          const from = isHead ? src.indexOf(LF, start) + 1 : start;
          const copy = unfolded(src, start, from, last);
          if (copy !== null) {
            src = copy;
            last -= start;
            start = 0;
          }
        }
        if (isHead) this.#head(src, start, last);
        else this.#trailers(src, start, last);
        return lf + 1;
      }
    }
    // No end yet. The limits are checked in the order in which input fed
    // byte by byte would exceed them, so that how the input is cut never
    // changes which error is reported.
    const total = L + end - pos;
    if (
      isHead && !this.#lineSeen && total > this.#maxLineBytes + 1 &&
      (total <= limit || this.#maxLineBytes + 1 <= limit)
    ) {
      this.#lineTooLong();
    }
    if (total > limit) this.#tooLarge(isHead);
    this.#append(data, pos, end);
    return end;
  }

  /**
   * Checks a request line as soon as it ends, before the rest of its head
   * arrives: a client waiting for the answer to its request line alone (an
   * HTTP/0.9 `GET /`) hears what is wrong with it now, not when its head
   * times out. The line ends at `data[lf]`; its start may be buffered.
   * What it finds is kept in `#scan` as offsets from the line's start,
   * which `#head()` places (every request head reaches it through here).
   */
  #earlyRequestLine(data: Uint8Array, pos: number, lf: number): void {
    const buffered = this.#bufLen;
    const f = this.#scan;
    if (buffered === 0) {
      this.#requestLine(data, pos, f);
      f.methodEnd -= pos;
      f.textStart -= pos;
      f.textEnd -= pos;
      f.fieldsAt -= pos;
      return;
    }
    const line = new Uint8Array(buffered + lf + 1 - pos);
    line.set(this.#buf.subarray(0, buffered));
    line.set(data.subarray(pos, lf + 1), buffered);
    this.#requestLine(line, 0, f);
  }

  #tooLarge(isHead: boolean): never {
    this.#fail(
      431,
      `the ${isHead ? "head" : "trailer section"} is larger than ` +
        `maxHeaderBytes (${this.#maxHeaderBytes})`,
    );
  }

  #lineTooLong(): never {
    this.#fail(
      this.#isRequest ? 414 : 400,
      `the ${this.#isRequest ? "request" : "status"} line is longer than ` +
        `maxLineBytes (${this.#maxLineBytes})`,
    );
  }

  /** Reads a chunk-size line, buffering it if incomplete. */
  #chunkSizeLine(data: Uint8Array, pos: number, end: number): number {
    const L = this.#bufLen;
    const max = this.#maxLineBytes;
    // The line, CRLF included, has at most max + 2 bytes.
    const stop = Math.min(end, pos + max + 2 - L);
    let lf = pos;
    while (lf < stop && data[lf] !== LF) lf++;
    if (lf === stop) {
      if (L + end - pos > max + 1) this.#chunkLineTooLong();
      this.#append(data, pos, end);
      return end;
    }
    const off = L + lf - pos;
    if (off - 1 > max) this.#chunkLineTooLong();
    if (off === 0 || this.#byteBefore(data, pos, lf - 1) !== CR) {
      this.#fail(400, "a chunk-size line ends with a bare LF");
    }
    let src = data;
    let start = pos;
    if (L > 0) {
      this.#append(data, pos, lf + 1);
      src = this.#buf;
      start = 0;
    }
    this.#bufLen = 0;
    this.#chunkSize(src, start, start + off - 1);
    return lf + 1;
  }

  #chunkLineTooLong(): never {
    this.#fail(
      400,
      `a chunk-size line is longer than maxLineBytes (${this.#maxLineBytes})`,
    );
  }

  /** Parses `chunk-size [chunk-ext]` in `src[start, end)`. */
  #chunkSize(src: Uint8Array, start: number, end: number): void {
    let i = start;
    let size = 0;
    while (i < end) {
      const h = HEX[src[i]];
      if (h === 255) break;
      size = size * 16 + h;
      if (size > Number.MAX_SAFE_INTEGER) {
        this.#fail(400, "a chunk size is too large", excerpt(src, start, end));
      }
      i++;
    }
    if (i === start) {
      this.#fail(
        400,
        "a chunk size is not a hex number",
        excerpt(src, start, end),
      );
    }
    if (i < end) {
      let j = i;
      while (j < end && isBlank(src[j])) j++;
      if (j === end || src[j] !== SEMICOLON) {
        this.#fail(
          400,
          "a chunk size is not a hex number",
          excerpt(src, start, end),
        );
      }
      const n = this.#extensionBytes += end - i;
      if (n > this.#maxChunkExtensionBytes) {
        this.#fail(
          413,
          "the chunk extensions are larger than maxChunkExtensionBytes " +
            `(${this.#maxChunkExtensionBytes})`,
        );
      }
      this.#chunkExtensions(src, j, end, start);
    }
    if (size === 0) {
      this.#state = S_TRAILERS;
      return;
    }
    if (this.#bodyBytes + size > this.#maxBodyBytes) {
      this.#fail(
        413,
        `the body is larger than maxBodyBytes (${this.#maxBodyBytes})`,
        `${this.#bodyBytes + size} bytes`,
      );
    }
    this.#bodyBytes += size;
    this.#remaining = size;
    this.#state = S_CHUNK_DATA;
  }

  /**
   * Checks that `src[i, end)`, which starts with ";", is a chunk-ext
   * (RFC 9112 §7.1.1): *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS
   * chunk-ext-val ] ), a name being a token and a value a token or a
   * quoted-string. The extensions are then ignored.
   */
  #chunkExtensions(src: Uint8Array, i: number, end: number, line: number) {
    const bad = (why: string): never =>
      this.#fail(400, `a chunk extension ${why}`, excerpt(src, line, end));
    // A byte no part of the grammar allows, outside a quoted-string.
    const stray = (x: number) =>
      x !== SEMICOLON && x !== EQUALS && x !== DQUOTE && !isBlank(x) &&
      TCHAR[x] === 0;
    while (i < end) {
      // At ";".
      i++;
      while (i < end && isBlank(src[i])) i++;
      let k = i;
      while (k < end && TCHAR[src[k]] === 1) k++;
      if (k < end && stray(src[k])) bad("has an invalid byte");
      if (k === i) bad("has an empty name");
      i = k;
      while (k < end && isBlank(src[k])) k++;
      if (k < end && src[k] === EQUALS) {
        k++;
        while (k < end && isBlank(src[k])) k++;
        if (k < end && src[k] === DQUOTE) {
          for (k++;; k++) {
            if (k === end) bad("has an unclosed quoted-string");
            const x = src[k];
            if (x === DQUOTE) break;
            if (x === BACKSLASH) {
              if (++k === end) bad("has an unclosed quoted-string");
              if (FIELD[src[k]] === 0) bad("has an invalid byte");
            } else if (QDTEXT[x] === 0) bad("has an invalid byte");
          }
          k++;
        } else {
          const v = k;
          while (k < end && TCHAR[src[k]] === 1) k++;
          if (k < end && stray(src[k])) bad("has an invalid byte");
          if (k === v) bad("has an empty value");
        }
        i = k;
        while (k < end && isBlank(src[k])) k++;
      }
      // BWS belongs before ";" only: trailing blanks, or anything else here,
      // break the grammar.
      if (k === end ? k !== i : src[k] !== SEMICOLON) {
        if (k < end && (src[k] === EQUALS || stray(src[k]))) {
          bad("has an invalid byte");
        }
        bad("is malformed");
      }
      i = k;
    }
  }

  /**
   * Checks the field lines of `src[p, end)` (which ends with the empty
   * line) and returns how many there are. With `head`, also reads the
   * fields that frame the message.
   */
  #fields(src: Uint8Array, p: number, head: HeadScan | null): number {
    const max = this.#maxHeaders;
    let n = 0;
    let high = 0;
    // The section ends with CRLF CRLF and has no bare LF (see #section),
    // so these loops stop inside it.
    while (src[p] !== CR) {
      if (++n > max) {
        this.#fail(
          431,
          `the ${
            head ? "head" : "trailer section"
          } has more than maxHeaders (${max}) fields`,
        );
      }
      let i = p;
      while (TCHAR[src[i]] === 1) i++;
      if (i === p || src[i] !== COLON) this.#badName(src, p, i);
      const nameEnd = i++;
      while (src[i] === SP || src[i] === HTAB) i++;
      let j = i;
      for (;;) {
        const x = src[j];
        if (FIELD[x] === 0) break;
        high |= x;
        j++;
      }
      if (src[j] !== CR || src[j + 1] !== LF) {
        this.#fail(
          400,
          `the value of field ${
            excerpt(src, p, nameEnd)
          } has an invalid byte 0x${src[j].toString(16).padStart(2, "0")}`,
        );
      }
      if (head !== null) {
        let valueEnd = j;
        while (valueEnd > i && isBlank(src[valueEnd - 1])) valueEnd--;
        if (framingField(src, p, nameEnd, i, valueEnd, head)) {
          this.#contentLength(src, i, valueEnd, head);
        }
      }
      p = j + 2;
    }
    if (src[p + 1] !== LF) {
      this.#fail(400, "a field line starts with a bare CR");
    }
    this.#high = high;
    return n;
  }

  #badName(src: Uint8Array, p: number, i: number): never {
    const b = src[i];
    const cr = lineEnd(src, p);
    const line = excerpt(src, p, cr);
    if (i === p && (b === SP || b === HTAB)) {
      this.#fail(400, "a field line starts with whitespace (obs-fold)", line);
    }
    if (i === p && b === COLON) this.#fail(400, "a field name is empty", line);
    if (b === SP || b === HTAB) {
      let j = i;
      while (src[j] === SP || src[j] === HTAB) j++;
      if (src[j] === COLON) {
        this.#fail(
          400,
          "a field name is followed by whitespace before the colon",
          line,
        );
      }
    }
    if (i === cr) this.#fail(400, "a field line has no colon", line);
    this.#fail(400, "a field name has an invalid byte", line);
  }

  /** Reads a `Content-Length` value: digits, or a list of equal digits. */
  #contentLength(src: Uint8Array, vs: number, ve: number, f: HeadScan): void {
    if (this.#lengthError !== null) return;
    let k = vs;
    for (;;) {
      while (k < ve && (src[k] === SP || src[k] === HTAB)) k++;
      const digits = k;
      let n = 0;
      while (k < ve) {
        const d = src[k] - 48;
        if (d < 0 || d > 9) break;
        n = n * 10 + d;
        if (n > Number.MAX_SAFE_INTEGER) {
          return this.#badLength(
            f,
            "Content-Length is too large",
            excerpt(src, vs, ve),
          );
        }
        k++;
      }
      if (k === digits) return this.#badContentLength(src, vs, ve, f);
      while (k < ve && (src[k] === SP || src[k] === HTAB)) k++;
      if (f.contentLength !== -1) {
        if (f.contentLength !== n) {
          return this.#badLength(
            f,
            "Content-Length has differing values",
            excerpt(src, vs, ve),
          );
        }
        f.oneLength = n;
      }
      f.contentLength = n;
      if (k === ve) return;
      if (src[k] !== COMMA) return this.#badContentLength(src, vs, ve, f);
      k++;
    }
  }

  #badContentLength(
    src: Uint8Array,
    vs: number,
    ve: number,
    f: HeadScan,
  ): void {
    this.#badLength(
      f,
      "Content-Length is not a number of bytes",
      excerpt(src, vs, ve),
    );
  }

  /** Reads `HTTP/1.x` at `src[i]`, returning the minor version. */
  #version(src: Uint8Array, i: number, lineStart: number): number {
    // Stops at the first mismatch, so never reads past the line's CR.
    if (
      src[i] !== 72 || src[i + 1] !== 84 || src[i + 2] !== 84 ||
      src[i + 3] !== 80 || src[i + 4] !== 47 || src[i + 5] < 48 ||
      src[i + 5] > 57 || src[i + 6] !== 46 || src[i + 7] < 48 ||
      src[i + 7] > 57
    ) {
      this.#badStartLine(src, lineStart, "the HTTP version is malformed");
    }
    if (src[i + 5] !== 49) {
      this.#fail(505, "only HTTP/1.x is supported", excerpt(src, i, i + 8));
    }
    return src[i + 7] - 48;
  }

  /**
   * The end of the request-target at `src[c]`, whose scan stopped at the
   * visible byte `src[i]`: the authority of an absolute-form target is
   * checked as a `Host` later, and an authority-form one (CONNECT) may
   * hold an IPv6 literal's brackets. Anything else RFC 3986 does not allow
   * is an error.
   */
  #unusualTarget(src: Uint8Array, c: number, i: number): number {
    let d = i;
    while (src[d] > 32 && src[d] < 127) d++;
    const form = targetForm(src, c, d);
    if (form === "absolute") {
      const hostEnd = authority(src, c, d)[1];
      if (i < hostEnd) i = scanTarget(src, hostEnd);
    } else if (form === "other") {
      while (PATH[src[i]] === 1 || src[i] === 91 || src[i] === 93) i++;
      if (src[i] === QUESTION) i = scanTarget(src, i);
    }
    if (i === d) return d;
    const x = src[i];
    const why = x === 35
      ? 'the request-target has "#" (a fragment, which a request does not send)'
      : `the request-target's ${
        src.subarray(c, i).includes(QUESTION) ? "query" : "path"
      } has ${
        JSON.stringify(String.fromCharCode(x))
      }, which RFC 3986 does not allow (percent-encode it)`;
    this.#fail(400, why, excerpt(src, c, d));
  }

  #badStartLine(src: Uint8Array, start: number, why: string): never {
    this.#fail(400, why, excerpt(src, start, lineEnd(src, start)));
  }

  /** Parses a complete head: `src[start, end)` ends with the empty line. */
  #head(src: Uint8Array, start: number, end: number): void {
    const f = this.#scan;
    f.reset();
    f.start = start;
    f.end = end;
    if (this.#isRequest) {
      // Its line was read by #earlyRequestLine(): place it.
      f.methodEnd += start;
      f.textStart += start;
      f.textEnd += start;
      f.fieldsAt += start;
      f.high = 0;
    } else this.#statusLine(src, start, f);
    f.count = this.#fields(src, f.fieldsAt, f);
    f.high |= this.#high;
    this.#finishHead(src);
  }

  /** Reads the request line at `src[start]` into `f`. */
  #requestLine(src: Uint8Array, start: number, f: HeadScan): void {
    let i = start;
    while (TCHAR[src[i]] === 1) i++;
    if (i === start || src[i] !== SP) {
      this.#badStartLine(
        src,
        start,
        "the method is not a token followed by a space",
      );
    }
    f.methodEnd = i++;
    const c = i;
    i = scanTarget(src, i);
    if (src[i] > 32 && src[i] < 127) i = this.#unusualTarget(src, c, i);
    if (i > c && src[i] === CR) {
      this.#badStartLine(
        src,
        start,
        "the request line has no HTTP version (HTTP/0.9 is not supported)",
      );
    }
    if (i === c || src[i] !== SP) {
      this.#badStartLine(
        src,
        start,
        "the request-target is empty or has an invalid byte",
      );
    }
    f.textStart = c;
    f.textEnd = i++;
    if (src[i + 8] !== CR || src[i + 9] !== LF) {
      this.#badStartLine(src, start, "the HTTP version is malformed");
    }
    f.minor = this.#version(src, i, start);
    f.status = 0;
    f.high = 0;
    f.fieldsAt = i + 10;
  }

  /** Reads the status line at `src[start]` into `f`. */
  #statusLine(src: Uint8Array, start: number, f: HeadScan): void {
    f.minor = this.#version(src, start, start);
    const d0 = src[start + 9] - 48;
    const d1 = src[start + 10] - 48;
    const d2 = src[start + 11] - 48;
    const after = src[start + 12];
    if (
      src[start + 8] !== SP || d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 ||
      d2 < 0 || d2 > 9 || (after !== SP && after !== CR)
    ) {
      this.#badStartLine(src, start, "the status line is malformed");
    }
    f.status = d0 * 100 + d1 * 10 + d2;
    f.methodEnd = start;
    let j = after === SP ? start + 13 : start + 12;
    f.textStart = j;
    let high = 0;
    for (;;) {
      const x = src[j];
      if (FIELD[x] === 0) break;
      high |= x;
      j++;
    }
    if (src[j] !== CR || src[j + 1] !== LF) {
      this.#badStartLine(src, start, "the reason phrase has an invalid byte");
    }
    f.high = high;
    f.textEnd = j;
    f.fieldsAt = j + 2;
  }

  /**
   * Frames and reports the head read into `#scan`, whose lines were
   * checked: it lies in `src`.
   */
  #finishHead(src: Uint8Array): void {
    const s = this.#scan;
    // The head keeps a view of the input (`RequestHead`, `#list()`).
    if (src !== this.#buf) this.#pinned = true;
    // Framing (RFC 9112 §6).
    s.persistent = s.minor === 0 ? s.keepAlive && !s.close : !s.close;
    this.#lastMessage = false;
    if (this.#isRequest) {
      this.#checkRequest(src, s);
      // Most requests have no framing field: not calling (and so not
      // inlining) #bodyFraming() then leaves V8 room to inline the rest.
      s.bodyKind = s.te || s.contentLength !== -1
        ? this.#bodyFraming(s, s.minor)
        : "none";
    } else {
      this.#frameResponse(src, s);
    }
    this.#enterBody(s);
    this.#cb.onHead(
      (this.#isRequest
        ? new RequestHead(s, src, src === this.#buf)
        : this.#responseHead(src, s)) as unknown as H,
    );
  }

  /**
   * Checks what a request head says of its target and host. The common
   * case is decided here; the rest (and the errors) in
   * `#checkRequestFully()`, which keeps this small enough for V8 to inline.
   */
  #checkRequest(src: Uint8Array, s: HeadScan): void {
    s.form = src[s.textStart] === SLASH
      ? "origin"
      : targetForm(src, s.textStart, s.textEnd);
    const hostOk = s.hosts === 1
      ? validHost(src, s.hostStart, s.hostEnd)
      : s.hosts === 0 && s.minor === 0;
    if (!hostOk || s.form === "absolute") this.#checkRequestFully(src, s);
  }

  #checkRequestFully(src: Uint8Array, s: HeadScan): void {
    if (s.minor > 0 && s.hosts === 0) {
      this.#fail(400, "an HTTP/1.1 request has no Host field");
    }
    if (s.hosts > 1) {
      this.#fail(400, "a request has more than one Host field");
    }
    if (s.hosts === 1 && !validHost(src, s.hostStart, s.hostEnd)) {
      this.#fail(
        400,
        "the Host field is not a valid host",
        excerpt(src, s.hostStart, s.hostEnd),
      );
    }
    if (s.form !== "absolute") return;
    if (
      // The target is visible ASCII.
      !URL.canParse(DECODER.decode(src.subarray(s.textStart, s.textEnd)))
    ) {
      this.#fail(
        400,
        "the request-target is not a valid URL",
        excerpt(src, s.textStart, s.textEnd),
      );
    }
    const [hostStart, hostEnd] = authority(src, s.textStart, s.textEnd);
    if (!validHost(src, hostStart, hostEnd)) {
      this.#fail(
        400,
        "the request-target's host is empty or not valid (userinfo is not allowed)",
        excerpt(src, s.textStart, s.textEnd),
      );
    }
  }

  /** Frames a response: its body depends on the request it answers. */
  #frameResponse(src: Uint8Array, s: HeadScan): void {
    const methods = this.#methods!;
    const status = s.status;
    const lengthError = this.#lengthError;
    this.#lengthError = null;
    if (methods.length === 0) {
      this.#fail(
        400,
        "no request is awaiting a response",
        excerpt(src, s.start, s.fieldsAt - 2),
      );
    }
    const method = status >= 200 || status === 101
      ? methods.shift()!
      : methods[0];
    if (
      method === "HEAD" || status < 200 || status === 204 || status === 304
    ) {
      s.bodyKind = "none";
      if (status === 101) this.#lastMessage = true;
    } else if (method === "CONNECT" && status < 300) {
      s.bodyKind = "none";
      this.#lastMessage = true;
    } else if (lengthError !== null) {
      this.#state = S_DEAD;
      throw (this.#error = lengthError);
    } else if (!s.te && s.contentLength === -1) {
      s.bodyKind = "close";
      s.persistent = false;
    } else {
      s.bodyKind = this.#bodyFraming(s, s.minor);
    }
  }

  /**
   * Moves to reading the body; leaves in `s.contentLength` the length
   * reported (0 for none, -1 when unknown). No body is the common case,
   * decided here; the rest in `#enterSizedBody()`.
   */
  #enterBody(s: HeadScan): void {
    this.#bodyBytes = 0;
    if (s.bodyKind !== "none") {
      this.#enterSizedBody(s);
      return;
    }
    s.contentLength = 0;
    this.#state = S_BODY_LENGTH;
    this.#remaining = 0;
  }

  /** Checks a body against its limit and moves to reading it. */
  #enterSizedBody(s: HeadScan): void {
    if (s.bodyKind === "length") {
      const length = s.contentLength;
      if (length > this.#maxBodyBytes) {
        this.#fail(
          413,
          `the body is larger than maxBodyBytes (${this.#maxBodyBytes})`,
          `Content-Length ${length}`,
        );
      }
      if (length === 0) s.bodyKind = "none";
      this.#state = S_BODY_LENGTH;
      this.#remaining = length;
    } else {
      s.contentLength = -1;
      this.#state = s.bodyKind === "chunked" ? S_CHUNK_SIZE : S_BODY_CLOSE;
    }
  }

  /** The head of a response read into `s`. */
  #responseHead(src: Uint8Array, s: HeadScan): HttpResponseHead {
    const headers = this.#list(
      src,
      s.start,
      s.end,
      s.fieldsAt,
      s.count,
      s.high >= 128,
      s.oneLength,
    );
    return {
      status: s.status,
      reason: sectionSlice(headers, s.textStart, s.textEnd),
      versionMajor: 1,
      versionMinor: s.minor,
      headers,
      keepAlive: s.persistent,
      bodyKind: s.bodyKind,
      contentLength: s.contentLength,
    };
  }

  /** Decides between `Content-Length` and `chunked` framing, or fails. */
  #bodyFraming(f: HeadScan, minor: number): HttpBodyKind {
    if (f.te) {
      if (minor === 0) {
        this.#fail(400, "an HTTP/1.0 message has Transfer-Encoding");
      }
      if (f.contentLength !== -1) {
        this.#fail(
          400,
          "a message has both Content-Length and Transfer-Encoding",
        );
      }
      if (f.chunked === 0 && !f.otherCodings) {
        this.#fail(400, "Transfer-Encoding is empty");
      }
      if (!f.chunkedLast) {
        if (this.#isRequest) {
          this.#fail(400, "the final transfer-coding is not chunked");
        }
        // RFC 9112 §6.3 (4): a response's body then runs to the close.
        f.persistent = false;
        return "close";
      }
      if (f.chunked > 1) this.#fail(400, "chunked is applied more than once");
      // A response's other codings are left applied, for its reader to
      // undo (its Transfer-Encoding says which), as when read to the close.
      if (f.otherCodings && this.#isRequest) {
        this.#fail(501, "only the chunked transfer-coding is supported");
      }
      return "chunked";
    }
    return f.contentLength === -1 ? "none" : "length";
  }

  /** Parses a complete trailer section and completes the message. */
  #trailers(src: Uint8Array, start: number, end: number): void {
    const count = this.#fields(src, start, null);
    this.#complete(
      this.#list(src, start, end, start, count, this.#high >= 128, -1),
    );
  }

  /**
   * The fields of the section `src[start, end)`, decoded when first used:
   * the bytes are kept, or copied when they are in the reused line buffer.
   */
  #list(
    src: Uint8Array,
    start: number,
    end: number,
    fieldsAt: number,
    count: number,
    latin1: boolean,
    oneLength: number,
  ): HttpHeaderList {
    const own = src === this.#buf;
    if (!own) this.#pinned = true;
    return HttpHeaderList.fromSection(
      own ? src.slice(start, end) : src,
      own ? 0 : start,
      end - start,
      start,
      fieldsAt,
      count,
      latin1,
      oneLength,
    );
  }
}

/**
 * A copy of the response head `head` with each bare LF made CRLF, so that
 * it reads as one sent with CRLFs.
 */
function withCrlf(head: Uint8Array): Uint8Array {
  let bare = 0;
  for (let i = head.indexOf(LF); i !== -1; i = head.indexOf(LF, i + 1)) {
    if (i === 0 || head[i - 1] !== CR) bare++;
  }
  const copy = new Uint8Array(head.length + bare);
  let k = 0;
  for (let i = 0; i < head.length; i++) {
    const b = head[i];
    if (b === LF && (i === 0 || head[i - 1] !== CR)) copy[k++] = CR;
    copy[k++] = b;
  }
  return copy;
}

/**
 * A copy of the section `src[start, end)` (a head or a trailer section,
 * which ends with CRLF CRLF and has no bare LF) in which each obs-fold —
 * a field line's CRLF then SP or HTAB, the field lines starting at `from`
 * — and the whitespace after it are spaces; `null` when there is none.
 */
function unfolded(
  src: Uint8Array,
  start: number,
  from: number,
  end: number,
): Uint8Array | null {
  let copy: Uint8Array | null = null;
  for (
    let i = src.indexOf(LF, from);
    i !== -1 && i < end - 1;
    i = src.indexOf(LF, i + 1)
  ) {
    if (src[i + 1] !== SP && src[i + 1] !== HTAB) continue;
    copy ??= src.slice(start, end);
    let k = i - 1 - start;
    copy[k++] = SP;
    while (copy[k] === LF || copy[k] === SP || copy[k] === HTAB) copy[k++] = SP;
  }
  return copy;
}

/** Returns the index of the first CR or LF at or after `i`. */
function lineEnd(src: Uint8Array, i: number): number {
  while (i < src.length && src[i] !== CR && src[i] !== LF) i++;
  return i;
}

/** Returns a shared string for the common methods, else a slice. */
function internMethod(src: Uint8Array, a: number, b: number): string {
  const n = b - a;
  const c = src[a];
  if (n === 3 && c === 71 && src[a + 1] === 69 && src[a + 2] === 84) {
    return "GET";
  }
  if (
    n === 4 && c === 80 && src[a + 1] === 79 && src[a + 2] === 83 &&
    src[a + 3] === 84
  ) {
    return "POST";
  }
  if (
    n === 4 && c === 72 && src[a + 1] === 69 && src[a + 2] === 65 &&
    src[a + 3] === 68
  ) {
    return "HEAD";
  }
  // A method is a token: ASCII.
  return latin1(src, a, b);
}

/**
 * Whether `src[start, end)` is a valid `Host` value: an RFC 3986 authority
 * (without userinfo) that `new URL()` also accepts as host and port.
 */
function validHost(src: Uint8Array, start: number, end: number): boolean {
  // The usual shapes are decided here, in a pass or two over the bytes: a
  // name of letters, digits, "-" and "." whose last label starts with a
  // letter (so the URL parser does not read it as an IPv4 address) and
  // where no label is punycode ("xn--"), or a plain dotted-quad IPv4
  // address; then an optional port up to 65535. Anything else made of
  // authority characters (percent-escapes, IPv6, other IPv4 spellings,
  // IDNA) is left to the URL parser.
  let mask = 0;
  let i = start;
  for (; i < end; i++) {
    const k = HOST_CLASS[src[i]];
    if (k === H_COLON) break;
    mask |= k;
  }
  let simple = i > start &&
    (mask & ~(H_LETTER | H_DIGIT | H_DOT | H_HYPHEN)) === 0;
  if (simple) {
    if ((mask & (H_LETTER | H_HYPHEN)) === 0) {
      simple = dottedQuad(src, start, i);
    } else {
      let k = i;
      while (k > start && src[k - 1] !== DOT) k--;
      simple = k < i && HOST_CLASS[src[k]] === H_LETTER &&
        ((mask & H_HYPHEN) === 0 || !hasPunycode(src, start, i));
    }
  }
  if (simple && i < end) {
    let port = 0;
    for (let k = i + 1; k < end && simple; k++) {
      const x = src[k];
      port = port * 10 + x - 48;
      simple = x >= 48 && x <= 57 && port <= 65535;
    }
  }
  if (simple) return true;
  if (start === end) return false;
  for (let k = start; k < end; k++) if (HOST_CHARS[src[k]] === 0) return false;
  return URL.canParse(`http://${latin1(src, start, end)}/`);
}

/**
 * Where the request-target at `src[i]` ends, or where it has a byte RFC
 * 3986 does not allow: its path, then from the first "?" its query.
 */
function scanTarget(src: Uint8Array, i: number): number {
  while (PATH[src[i]] === 1) i++;
  if (src[i] === QUESTION) {
    i++;
    while (QUERY[src[i]] === 1) i++;
  }
  return i;
}

/** Whether `src[start, end)` is a dotted quad: four parts 0 to 255, no leading 0. */
function dottedQuad(src: Uint8Array, start: number, end: number): boolean {
  let dots = 0;
  let value = 0;
  let digits = 0;
  for (let i = start; i < end; i++) {
    const x = src[i];
    if (x === DOT) {
      if (digits === 0) return false;
      dots++;
      value = 0;
      digits = 0;
      continue;
    }
    if (digits === 1 && value === 0) return false;
    value = value * 10 + x - 48;
    if (++digits > 3 || value > 255) return false;
  }
  return dots === 3 && digits > 0;
}

/** Whether a label of the name `src[start, end)` starts with "xn--". */
function hasPunycode(src: Uint8Array, start: number, end: number): boolean {
  for (let j = start + 2; j + 1 < end; j++) {
    if (
      src[j] === HYPHEN && src[j + 1] === HYPHEN &&
      (src[j - 1] | 0x20) === 110 && (src[j - 2] | 0x20) === 120 &&
      (j - 2 === start || src[j - 3] === DOT)
    ) return true;
  }
  return false;
}

/**
 * The bounds of the authority of the absolute-form target `src[c, d)`
 * (`http://` or `https://` then up to the first `/`, `?` or `#`).
 */
function authority(src: Uint8Array, c: number, d: number): [number, number] {
  const start = c + (src[c + 4] === COLON ? 7 : 8);
  let end = start;
  while (end < d && src[end] !== SLASH && src[end] !== 63 && src[end] !== 35) {
    end++;
  }
  return [start, end];
}

/** The form of the request-target `src[c, d)`. */
function targetForm(src: Uint8Array, c: number, d: number): HttpTargetForm {
  const first = src[c];
  if (first === SLASH) return "origin";
  if (first === STAR && d - c === 1) return "asterisk";
  // "http://" or "https://", the scheme in any case.
  let i = c + 4;
  if (
    d - c > 7 && (first | 0x20) === 104 && (src[c + 1] | 0x20) === 116 &&
    (src[c + 2] | 0x20) === 116 && (src[c + 3] | 0x20) === 112
  ) {
    if ((src[i] | 0x20) === 115) i++;
    if (src[i] === COLON && src[i + 1] === SLASH && src[i + 2] === SLASH) {
      return "absolute";
    }
  }
  return "other";
}

/**
 * A request head: the fields a server reads for every request are set;
 * the header list, and with it the text of the request-target and `Host`
 * value, is made when first asked for.
 */
class RequestHead implements HttpRequestHead {
  readonly method: string;
  readonly versionMinor: number;
  readonly keepAlive: boolean;
  readonly bodyKind: HttpBodyKind;
  readonly contentLength: number;
  readonly expectContinue: boolean;
  readonly targetForm: HttpTargetForm;
  // The section, for `HttpHeaderList.fromSection()`.
  readonly #bytes: Uint8Array;
  readonly #at: number;
  readonly #base: number;
  readonly #length: number;
  readonly #fieldsAt: number;
  readonly #count: number;
  readonly #latin1: boolean;
  readonly #oneLength: number;
  readonly #targetStart: number;
  readonly #targetEnd: number;
  readonly #hostStart: number; // -1 without a Host field
  readonly #hostEnd: number;
  #headers: HttpHeaderList | null = null;

  /**
   * @param s The head as read.
   * @param src The input it lies in.
   * @param copy Whether to keep a copy of its bytes (`src` is reused).
   */
  constructor(s: HeadScan, src: Uint8Array, copy: boolean) {
    this.method = internMethod(src, s.start, s.methodEnd);
    this.versionMinor = s.minor;
    this.keepAlive = s.persistent;
    this.bodyKind = s.bodyKind;
    this.contentLength = s.contentLength;
    this.expectContinue = s.minor > 0 && s.expectContinue;
    this.targetForm = s.form;
    this.#bytes = copy ? src.slice(s.start, s.end) : src;
    this.#at = copy ? 0 : s.start;
    this.#base = s.start;
    this.#length = s.end - s.start;
    this.#fieldsAt = s.fieldsAt;
    this.#count = s.count;
    this.#latin1 = s.high >= 128;
    this.#oneLength = s.oneLength;
    this.#targetStart = s.textStart;
    this.#targetEnd = s.textEnd;
    this.#hostStart = s.hosts === 0 ? -1 : s.hostStart;
    this.#hostEnd = s.hostEnd;
  }

  get versionMajor(): number {
    return 1;
  }

  get headers(): HttpHeaderList {
    return this.#headers ??= HttpHeaderList.fromSection(
      this.#bytes,
      this.#at,
      this.#length,
      this.#base,
      this.#fieldsAt,
      this.#count,
      this.#latin1,
      this.#oneLength,
    );
  }

  get target(): string {
    return sectionSlice(this.headers, this.#targetStart, this.#targetEnd);
  }

  get host(): string {
    return this.#hostStart < 0
      ? ""
      : sectionSlice(this.headers, this.#hostStart, this.#hostEnd);
  }

  // A key is the target's bytes, a space (neither has one), the Host's.
  sameTarget(key: Uint8Array): boolean {
    const bytes = this.#bytes;
    const shift = this.#at - this.#base;
    const targetEnd = this.#targetEnd + shift;
    let at = this.#targetStart + shift;
    const hostLength = this.#hostStart < 0
      ? 0
      : this.#hostEnd - this.#hostStart;
    if (key.length !== targetEnd - at + 1 + hostLength) return false;
    let k = 0;
    while (at < targetEnd) if (bytes[at++] !== key[k++]) return false;
    if (key[k++] !== SPACE) return false;
    at = this.#hostStart + shift;
    while (k < key.length) if (bytes[at++] !== key[k++]) return false;
    return true;
  }

  targetKey(): Uint8Array {
    const bytes = this.#bytes;
    const shift = this.#at - this.#base;
    const target = bytes.subarray(
      this.#targetStart + shift,
      this.#targetEnd + shift,
    );
    const host = this.#hostStart < 0
      ? bytes.subarray(0, 0)
      : bytes.subarray(this.#hostStart + shift, this.#hostEnd + shift);
    const key = new Uint8Array(target.length + 1 + host.length);
    key.set(target);
    key[target.length] = SPACE;
    key.set(host, target.length + 1);
    return key;
  }
}

/**
 * Parses the requests a server receives on one connection.
 *
 * Feed it bytes with `feed()`; it reports each request through the
 * callbacks. Requests pipelined behind the current one are parsed as soon
 * as it completes, unless the callbacks `pause()` the parser. An HTTP/1.1
 * request must have exactly one `Host` field. The parser goes on after a
 * request with `keepAlive: false`; the server stops feeding it.
 */
export class HttpRequestParser extends HttpParser<HttpRequestHead> {
  /**
   * Makes a parser for the requests of one connection.
   *
   * @param callbacks Where events go.
   * @param options Limits.
   * @throws {RangeError} When a limit is out of range.
   */
  constructor(
    callbacks: HttpParserCallbacks<HttpRequestHead>,
    options: HttpParserOptions = {},
  ) {
    super(true, callbacks, options, null);
  }
}

/**
 * Parses the responses a client receives on one connection.
 *
 * Whether a response has a body depends on the request it answers (a
 * response to HEAD has none), so the client calls `expectResponse(method)`
 * for each request it sends, in order. A 1xx response is reported as a
 * message of its own (no body) and the final response follows it. After a
 * 101 response, or a 2xx answer to CONNECT, the connection no longer
 * carries HTTP, and the parser ignores the rest of its input.
 */
export class HttpResponseParser extends HttpParser<HttpResponseHead> {
  readonly #methods: string[];

  /**
   * Makes a parser for the responses of one connection.
   *
   * @param callbacks Where events go.
   * @param options Limits.
   * @throws {RangeError} When a limit is out of range.
   */
  constructor(
    callbacks: HttpParserCallbacks<HttpResponseHead>,
    options: HttpParserOptions = {},
  ) {
    const methods: string[] = [];
    super(false, callbacks, options, methods);
    this.#methods = methods;
  }

  /**
   * Records that a request was sent and its response is awaited. A
   * response arriving when none is awaited is an error.
   *
   * @param method The request's method, such as `"GET"` or `"HEAD"`.
   */
  expectResponse(method: string): void {
    this.#methods.push(method);
  }

  /** The number of requests still awaiting their final response. */
  get pendingResponses(): number {
    return this.#methods.length;
  }
}
