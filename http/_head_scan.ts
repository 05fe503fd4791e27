/**
 * What reading an HTTP head finds, shared by the parser's two ways of
 * reading one (the one-pass fast path in `_quick_head.ts` and the general
 * `#section()`/`#head()`): the byte classes, the `HeadScan` both fill in,
 * and the reading of the fields that frame a message (`Host`, `Expect`,
 * `Connection`, `Transfer-Encoding`; `Content-Length` is left to the
 * parser, which reports its errors).
 *
 * @module
 */

import type { HttpBodyKind, HttpTargetForm } from "./_http_parser.ts";

export const CR = 13;
export const LF = 10;
export const SP = 32;
export const HTAB = 9;
export const COLON = 58;
export const COMMA = 44;
export const QUESTION = 63;

/** 1 for the bytes of a token (field names, methods), else 0. */
export const TCHAR: Uint8Array = new Uint8Array(256);
/** 1 for the bytes allowed in field values and reason phrases, else 0. */
export const FIELD: Uint8Array = new Uint8Array(256);
{
  for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
  for (let b = 48; b <= 57; b++) TCHAR[b] = 1;
  for (let b = 65; b <= 90; b++) TCHAR[b] = TCHAR[b + 32] = 1;
  FIELD[HTAB] = 1;
  for (let b = 32; b <= 126; b++) FIELD[b] = 1;
  for (let b = 128; b <= 255; b++) FIELD[b] = 1;
}

/**
 * 1 for the bytes RFC 3986 allows in a request-target's path (pchar and
 * "/": unreserved, "%", sub-delims, ":" and "@"), else 0. "?" is not one:
 * it starts the query.
 */
export const PATH: Uint8Array = new Uint8Array(256);
/**
 * 1 for the bytes a request-target's query may hold, else 0: RFC 3986's
 * (pchar, "/" and "?") and those browsers send unencoded in a query
 * (`[]{}|\^` and backquote), which the URL parser keeps as they are.
 */
export const QUERY: Uint8Array = new Uint8Array(256);
{
  for (const c of "-._~%!$&'()*+,;=:@/") PATH[c.charCodeAt(0)] = 1;
  for (let b = 48; b <= 57; b++) PATH[b] = 1;
  for (let b = 65; b <= 90; b++) PATH[b] = PATH[b + 32] = 1;
  QUERY.set(PATH);
  for (const c of "?[]{}|\\^`") QUERY[c.charCodeAt(0)] = 1;
}

/** Whether `c` is SP or HTAB. */
export function isBlank(c: number): boolean {
  return c === SP || c === HTAB;
}

/** Whether `src[start, end)` equals the lowercase `lit`, ignoring case. */
export function equalsLower(
  src: Uint8Array,
  start: number,
  end: number,
  lit: Uint8Array,
): boolean {
  if (end - start !== lit.length) return false;
  for (let i = 0; i < lit.length; i++) {
    if ((src[start + i] | 0x20) !== lit[i]) return false;
  }
  return true;
}

function ascii(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

const L_HOST = ascii("host");
const L_EXPECT = ascii("expect");
const L_CONNECTION = ascii("connection");
/** `content-length`, lower case. */
export const L_CONTENT_LENGTH: Uint8Array = ascii("content-length");
const L_TRANSFER_ENCODING = ascii("transfer-encoding");
const L_CLOSE = ascii("close");
const L_KEEP_ALIVE = ascii("keep-alive");
const L_CHUNKED = ascii("chunked");
const L_100_CONTINUE = ascii("100-continue");

/**
 * A head as read: where its parts lie in the input, what its framing
 * fields said, and then how the message is framed. One per parser,
 * refilled for each head, so that reading a head allocates nothing.
 */
export class HeadScan {
  // Where the parts lie: the head is `[start, end)` (ending with the empty
  // line); for a request `[start, methodEnd)` is the method and
  // `[textStart, textEnd)` the target, for a response the latter is the
  // reason phrase; `count` field lines start at `fieldsAt`.
  start = 0;
  end = 0;
  methodEnd = 0;
  textStart = 0;
  textEnd = 0;
  fieldsAt = 0;
  count = 0;
  minor = 1;
  status = 0;
  /** The bitwise OR of the bytes of the field values and reason. */
  high = 0;
  // What the framing fields said.
  hosts = 0;
  /** Where the (last) `Host` value is. */
  hostStart = 0;
  hostEnd = 0;
  expectContinue = false;
  /** `Connection: close`. */
  close = false;
  /** `Connection: keep-alive`. */
  keepAlive = false;
  contentLength = -1;
  /**
   * The `Content-Length` value when it came more than once (a list, or
   * repeated fields, all equal), else -1: the fields are then given as
   * one (RFC 9110 §8.6).
   */
  oneLength = -1;
  te = false;
  chunked = 0;
  chunkedLast = false;
  otherCodings = false;
  // How the message is framed, decided from the above.
  form: HttpTargetForm = "origin";
  bodyKind: HttpBodyKind = "none";
  /** Whether the connection carries another message after this one. */
  persistent = true;

  /** Forgets the framing fields, before a head is read. */
  reset(): void {
    this.hosts = 0;
    this.expectContinue = false;
    this.close = false;
    this.keepAlive = false;
    this.contentLength = -1;
    this.oneLength = -1;
    this.te = false;
    this.chunked = 0;
    this.chunkedLast = false;
    this.otherCodings = false;
  }
}

// The lists readList() reads.
const CONNECTION = 0;
const TRANSFER_ENCODING = 1;
const EXPECT = 2;

/**
 * Reads the non-empty elements of a comma-separated field value: the
 * options of `Connection`, the codings of `Transfer-Encoding`, or the
 * expectations of `Expect`.
 */
function readList(
  src: Uint8Array,
  start: number,
  end: number,
  s: HeadScan,
  list: number,
): void {
  let i = start;
  while (i < end) {
    let e = i;
    while (e < end && src[e] !== COMMA) e++;
    let a = i;
    let t = e;
    while (a < t && isBlank(src[a])) a++;
    while (t > a && isBlank(src[t - 1])) t--;
    if (t > a) {
      if (list === CONNECTION) {
        if (equalsLower(src, a, t, L_CLOSE)) s.close = true;
        else if (equalsLower(src, a, t, L_KEEP_ALIVE)) s.keepAlive = true;
      } else if (list === EXPECT) {
        if (equalsLower(src, a, t, L_100_CONTINUE)) s.expectContinue = true;
      } else if (equalsLower(src, a, t, L_CHUNKED)) {
        s.chunked++;
        s.chunkedLast = true;
      } else {
        s.otherCodings = true;
        s.chunkedLast = false;
      }
    }
    i = e + 1;
  }
}

/**
 * Reads a field that frames the message into `s`: the name is
 * `src[ns, ne)`, the value (trimmed) `src[vs, ve)`.
 *
 * @returns `true` for `Content-Length`, which the caller reads.
 */
export function framingField(
  src: Uint8Array,
  ns: number,
  ne: number,
  vs: number,
  ve: number,
  s: HeadScan,
): boolean {
  switch (ne - ns) {
    case 4:
      if (equalsLower(src, ns, ne, L_HOST)) {
        s.hosts++;
        s.hostStart = vs;
        s.hostEnd = ve;
      }
      return false;
    case 6:
      // A list (RFC 9110 §10.1.1), which may come in several fields.
      if (equalsLower(src, ns, ne, L_EXPECT)) {
        readList(src, vs, ve, s, EXPECT);
      }
      return false;
    case 10:
      if (equalsLower(src, ns, ne, L_CONNECTION)) {
        readList(src, vs, ve, s, CONNECTION);
      }
      return false;
    case 14:
      return equalsLower(src, ns, ne, L_CONTENT_LENGTH);
    case 17:
      if (equalsLower(src, ns, ne, L_TRANSFER_ENCODING)) {
        s.te = true;
        readList(src, vs, ve, s, TRANSFER_ENCODING);
      }
      return false;
  }
  return false;
}
