/**
 * The parser's fast path: a request head lying whole in the input, read
 * in one pass over its bytes — the common case — where the general
 * `#section()` then `#head()` look at each byte two or three times. It
 * only says yes or "not me": anything unusual (a split, malformed or
 * over-limit head, a `Content-Length`, whose value may be an error) goes
 * to the general path, which reports any error exactly as it would have
 * without this one. The parser's whole-versus-split tests compare the two.
 *
 * Its loops compare bytes inline rather than call the helpers of
 * `_head_scan.ts`, and read the byte classes from local copies: V8 does
 * not inline a function imported from another module nor hoist the load
 * of an imported binding, and either costs this path a tenth of its
 * speed.
 *
 * @module
 */

import {
  COLON,
  CR,
  FIELD,
  framingField,
  type HeadScan,
  HTAB,
  LF,
  PATH,
  QUERY,
  QUESTION,
  SP,
  TCHAR,
} from "./_head_scan.ts";

/** The limits a head must keep to. */
export interface HeadLimits {
  /** The most bytes of the start line, without its CRLF. */
  readonly maxLineBytes: number;
  /** The most field lines. */
  readonly maxHeaders: number;
  /** The most bytes of the whole head. */
  readonly maxHeaderBytes: number;
}

/**
 * Reads the request head at `data[pos]` into `scan`.
 *
 * @param data The input.
 * @param pos Where the head starts.
 * @param end Where the input ends.
 * @param scan Filled in when the head is read (its framing fields also
 * when it is not).
 * @param limits The limits.
 * @returns Where the head ends (after its empty line), or -1 when the
 * general path must read it.
 */
export function quickHead(
  data: Uint8Array,
  pos: number,
  end: number,
  scan: HeadScan,
  limits: HeadLimits,
): number {
  // Local copies: a load of an imported binding is not hoisted out of
  // the byte loops.
  const tchar = TCHAR;
  const field = FIELD;
  const path = PATH;
  const query = QUERY;
  // Request line: method SP request-target SP HTTP/1.x CRLF.
  let i = pos;
  while (i < end && tchar[data[i]] === 1) i++;
  const b = i;
  if (i === pos || i === end || data[i] !== SP) return -1;
  const c = ++i;
  while (i < end && path[data[i]] === 1) i++;
  if (i < end && data[i] === QUESTION) {
    i++;
    while (i < end && query[data[i]] === 1) i++;
  }
  const d = i;
  if (
    i === c || i + 11 > end || data[i] !== SP || data[i + 1] !== 72 ||
    data[i + 2] !== 84 || data[i + 3] !== 84 || data[i + 4] !== 80 ||
    data[i + 5] !== 47 || data[i + 6] !== 49 || data[i + 7] !== 46 ||
    data[i + 8] < 48 || data[i + 8] > 57 || data[i + 9] !== CR ||
    data[i + 10] !== LF || i + 9 - pos > limits.maxLineBytes
  ) return -1;
  const minor = data[i + 8] - 48;
  const fields = i + 11;
  // Field lines: name ":" OWS value OWS CRLF, then the empty line.
  scan.reset();
  const max = limits.maxHeaders;
  let count = 0;
  let high = 0;
  let p = fields;
  while (p < end && data[p] !== CR) {
    if (++count > max) return -1;
    let k = p;
    while (k < end && tchar[data[k]] === 1) k++;
    const nameEnd = k;
    if (k === p || k === end || data[k] !== COLON) return -1;
    k++;
    while (k < end && (data[k] === SP || data[k] === HTAB)) k++;
    const vs = k;
    while (k < end) {
      const x = data[k];
      if (field[x] === 0) break;
      high |= x;
      k++;
    }
    if (k + 1 >= end || data[k] !== CR || data[k + 1] !== LF) return -1;
    let ve = k;
    while (ve > vs && (data[ve - 1] === SP || data[ve - 1] === HTAB)) ve--;
    if (framingField(data, p, nameEnd, vs, ve, scan)) return -1;
    p = k + 2;
  }
  if (p + 1 >= end || data[p + 1] !== LF) return -1;
  const last = p + 2;
  if (last - pos > limits.maxHeaderBytes) return -1;
  scan.start = pos;
  scan.end = last;
  scan.methodEnd = b;
  scan.textStart = c;
  scan.textEnd = d;
  scan.fieldsAt = fields;
  scan.count = count;
  scan.minor = minor;
  scan.status = 0;
  scan.high = high;
  return last;
}
