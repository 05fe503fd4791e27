/**
 * Writes HTTP/1.1 message heads and chunked-coding frames (RFC 9112) as
 * bytes, checking every name and value on the way so that no caller can
 * inject a CR or LF (response splitting) or send a malformed field.
 *
 * Text goes out as Latin-1: one byte per character, which is what HTTP
 * field values are. A character above U+00FF is refused, not mangled.
 *
 * @module
 */

import { formatReceived } from "../futures/errors.ts";

/** The header fields of a head: pairs, a `Headers`, or any iterable of them. */
export type HttpHeaderPairs = Iterable<readonly [string, string]>;

/** What {@linkcode serializeResponseHead} writes. */
export interface HttpResponseHeadInit {
  /** The status code, 100 to 999. */
  status: number;
  /**
   * The reason phrase.
   *
   * @default {statusText(status)}
   */
  reason?: string;
  /**
   * The header fields, written in order as given; a `Headers` object
   * works (its names are lowercase, which HTTP allows).
   *
   * @default {[]}
   */
  headers?: HttpHeaderPairs;
}

/** What {@linkcode serializeRequestHead} writes. */
export interface HttpRequestHeadInit {
  /** The method, a token such as `"GET"`. */
  method: string;
  /** The request-target: `/path?query`, `*`, or an absolute URL. */
  target: string;
  /**
   * The header fields, written in order as given (include `Host`).
   *
   * @default {[]}
   */
  headers?: HttpHeaderPairs;
}

/** CRLF, the line ending; shared, so never modify it. */
export const CRLF: Uint8Array = new Uint8Array([13, 10]);

const ENCODER = new TextEncoder();

/** 1 for the characters of a token (names, methods), else 0. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let b = 48; b <= 57; b++) TCHAR[b] = 1;
for (let b = 65; b <= 90; b++) TCHAR[b] = TCHAR[b + 32] = 1;

const REASONS: Record<number, string> = {
  100: "Continue",
  101: "Switching Protocols",
  102: "Processing",
  103: "Early Hints",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  207: "Multi-Status",
  208: "Already Reported",
  226: "IM Used",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  305: "Use Proxy",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  418: "I'm a teapot",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  423: "Locked",
  424: "Failed Dependency",
  425: "Too Early",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  506: "Variant Also Negotiates",
  507: "Insufficient Storage",
  508: "Loop Detected",
  510: "Not Extended",
  511: "Network Authentication Required",
};

/** Status lines with the default reason, made on first use. */
const STATUS_LINES: string[] = [];

/**
 * Returns the standard reason phrase of a status code (RFC 9110), or `""`
 * for a code without one.
 *
 * @param status The status code.
 * @returns The reason phrase, such as `"Not Found"`.
 */
export function statusText(status: number): string {
  return REASONS[status] ?? "";
}

function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? s.slice(0, 64) + "…" : s);
}

function checkToken(what: string, kind: string, s: unknown): void {
  if (typeof s !== "string") {
    throw new TypeError(
      `Cannot serialize HTTP ${what}: ${kind} must be a string, received ${typeof s}`,
    );
  }
  if (s.length === 0) {
    throw new TypeError(`Cannot serialize HTTP ${what}: ${kind} is empty`);
  }
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) {
      throw new TypeError(
        `Cannot serialize HTTP ${what}: ${kind} has an invalid character, received ${
          quote(s)
        }`,
      );
    }
  }
}

/**
 * Checks a field value or reason phrase: HTAB, SP, visible ASCII and
 * Latin-1 only. Returns `true` when it has characters above U+007F.
 */
function checkText(what: string, kind: string, s: unknown): boolean {
  if (typeof s !== "string") {
    throw new TypeError(
      `Cannot serialize HTTP ${what}: ${kind} must be a string, received ${typeof s}`,
    );
  }
  let high = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    high |= c;
    if ((c < 32 && c !== 9) || c === 127) {
      throw new TypeError(
        `Cannot serialize HTTP ${what}: ${kind} has a control character (CR, LF and NUL are never allowed), received ${
          quote(s)
        }`,
      );
    }
    if (c > 255) {
      throw new TypeError(
        `Cannot serialize HTTP ${what}: ${kind} has a character outside Latin-1, received ${
          quote(s)
        }`,
      );
    }
  }
  return high >= 128;
}

/** Appends `name: value\r\n` for each field; returns whether any is non-ASCII. */
function fieldLines(
  what: string,
  headers: HttpHeaderPairs | undefined,
  out: { text: string },
): boolean {
  if (headers === undefined) return false;
  let high = false;
  let text = out.text;
  for (const pair of headers) {
    const name = pair[0];
    const value = pair[1];
    checkToken(what, "a field name", name);
    if (checkText(what, `the value of field ${quote(name)}`, value)) {
      high = true;
    }
    text += name + ": " + value + "\r\n";
  }
  out.text = text;
  return high;
}

/** Encodes a string of characters up to U+00FF, one byte each. */
function encode(text: string, high: boolean): Uint8Array {
  if (!high) return ENCODER.encode(text);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/**
 * Writes a response head: status line, header fields and the empty line.
 * The caller picks the framing fields (`Content-Length`,
 * `Transfer-Encoding`) and writes the body after it.
 *
 * @param head The status, reason and header fields.
 * @returns The bytes of the head, ready to write.
 * @throws {RangeError} When the status is not an integer from 100 to 999.
 * @throws {TypeError} When a name is not a token, or a value or the reason
 * has a control character (CR, LF, NUL…) or a character above U+00FF.
 */
export function serializeResponseHead(head: HttpResponseHeadInit): Uint8Array {
  const status = head.status;
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new RangeError(
      `Cannot serialize HTTP response head: status must be an integer from 100 to 999, received ${
        formatReceived(status)
      }`,
    );
  }
  let high = false;
  const out = { text: "" };
  if (head.reason === undefined) {
    out.text = STATUS_LINES[status] ??= `HTTP/1.1 ${status} ${
      statusText(status)
    }\r\n`;
  } else {
    high = checkText("response head", "the reason phrase", head.reason);
    out.text = `HTTP/1.1 ${status} ${head.reason}\r\n`;
  }
  if (fieldLines("response head", head.headers, out)) high = true;
  return encode(out.text + "\r\n", high);
}

/**
 * Writes a request head: request line, header fields and the empty line.
 *
 * @param head The method, target and header fields.
 * @returns The bytes of the head, ready to write.
 * @throws {TypeError} When the method or a name is not a token, the target
 * is empty or has a byte outside visible ASCII, or a value has a control
 * character or a character above U+00FF.
 */
export function serializeRequestHead(head: HttpRequestHeadInit): Uint8Array {
  checkToken("request head", "the method", head.method);
  const target = head.target;
  if (typeof target !== "string" || target.length === 0) {
    throw new TypeError(
      `Cannot serialize HTTP request head: the target must be a non-empty string, received ${
        typeof target === "string" ? '""' : typeof target
      }`,
    );
  }
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c <= 32 || c >= 127) {
      throw new TypeError(
        `Cannot serialize HTTP request head: the target has a character outside visible ASCII, received ${
          quote(target)
        }`,
      );
    }
  }
  const out = { text: `${head.method} ${target} HTTP/1.1\r\n` };
  const high = fieldLines("request head", head.headers, out);
  return encode(out.text + "\r\n", high);
}

/**
 * Writes the line that starts a chunk of `size` bytes: the size in hex and
 * CRLF. The chunk's data and a {@linkcode CRLF} follow it.
 *
 * @param size The chunk's length in bytes; at least 1, since a chunk of 0
 * ends the body.
 * @returns The chunk-size line.
 * @throws {RangeError} When `size` is not a positive safe integer.
 */
export function chunkHeader(size: number): Uint8Array {
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new RangeError(
      `Cannot frame HTTP chunk: size must be a positive integer, received ${size}`,
    );
  }
  const hex = size.toString(16);
  const out = new Uint8Array(hex.length + 2);
  for (let i = 0; i < hex.length; i++) out[i] = hex.charCodeAt(i);
  out[hex.length] = 13;
  out[hex.length + 1] = 10;
  return out;
}
