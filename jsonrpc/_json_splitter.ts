// JsonSplitter: the "raw" framing of JsonRpcProtocol. It cuts a byte stream
// into top-level JSON texts by their own syntax, with no delimiter and no
// length prefix, so it takes whole messages one per dataReceived (a
// message-oriented transport such as an HTTP response body), several in one,
// or one spread over many — any split gives the same texts.

import { LimitOverrunError } from "../futures/errors.ts";
import type { Transport } from "../transports/transport.ts";
import { Protocol } from "../protocols/protocol.ts";

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

function isSpace(c: number): boolean {
  return c === SPACE || c === LF || c === CR || c === TAB;
}

/** An `indexOf()` result, with "not found" as `n`, past the end. */
function found(at: number, n: number): number {
  return at < 0 ? n : at;
}

function isStructural(c: number): boolean {
  return c === LBRACE || c === RBRACE || c === LBRACKET || c === RBRACKET ||
    c === QUOTE;
}

// The scanner's place in the current value.
/** Between values: whitespace is skipped. */
const IDLE = 0;
/** In an object or array, outside strings. */
const NESTED = 1;
/** In a string (top-level or nested). */
const STRING = 2;
/** In a string, just after a backslash. */
const ESCAPE = 3;
/** In a bare token (a number, `true`, garbage). */
const TOKEN = 4;

/**
 * A stream protocol that delivers each top-level JSON value it receives:
 * an object or array (brackets matched outside strings), a string, or a
 * bare token (a run of bytes up to whitespace, a bracket or a quote, which
 * therefore ends only when such a byte arrives). Whitespace between values
 * is skipped. Values are delivered as their bytes, unparsed: a value that
 * is not valid JSON (say `{"a":}`) is still cut at its closing bracket, so
 * a bad message does not lose the ones after it. A stray closing bracket
 * is delivered alone. An incomplete value at the end of the stream is
 * dropped. A value longer than `maxLength` bytes is reported to
 * `onLengthExceeded` as soon as that is known, and the splitter stops.
 *
 * With `lines` (the "newline" framing), a newline ends a message: each
 * line, found with a native search, is delivered whole, as it is, valid
 * or not (without the whitespace around it; blank lines are skipped).
 * Only the bytes after the last newline received are scanned as above,
 * so that an object, array or string its peer did not end with a newline
 * (an HTTP response body) is taken where it ends; a bare token runs to
 * the end of its line. What follows such a value on its line is a line of
 * its own, so `splitLine()` cuts a line that did not parse the same way,
 * and a stream gives the same messages however it is cut.
 */
export class JsonSplitter extends Protocol {
  /** The longest value accepted, in bytes. */
  readonly maxLength: number;

  readonly #onValue: (data: Uint8Array) => void;
  readonly #onLengthExceeded: (error: LimitOverrunError) => void;
  /** Whether a newline ends a message (the "newline" framing). */
  readonly lines: boolean;
  #transport: Transport | null = null;
  // Bytes of a value that began in an earlier dataReceived.
  #buf = new Uint8Array(0);
  #len = 0;
  #mode: number = IDLE;
  // Whether the current string is inside an object or array.
  #nested = false;
  #depth = 0;
  #stopped = false;

  constructor(
    onValue: (data: Uint8Array) => void,
    maxLength: number,
    onLengthExceeded: (error: LimitOverrunError) => void,
    lines = false,
  ) {
    super();
    this.#onValue = onValue;
    this.maxLength = maxLength;
    this.#onLengthExceeded = onLengthExceeded;
    this.lines = lines;
  }

  /** Bytes of an unfinished value held between calls; never above `maxLength`. */
  get buffered(): number {
    return this.#len;
  }

  override connectionMade(transport: Transport): void {
    this.#transport = transport;
  }

  override dataReceived(data: Uint8Array): void {
    if (!this.lines) return this.#scan(data);
    let at = 0;
    for (;;) {
      const lf = data.indexOf(LF, at);
      if (lf < 0) break;
      this.#line(data, at, lf);
      at = lf + 1;
      if (this.#stopped) return;
    }
    if (at < data.length) this.#scan(at === 0 ? data : data.subarray(at));
  }

  // Delivers the line that ends at data[lf]: the bytes of a value under
  // way, then data[at, lf), without the whitespace around them.
  #line(data: Uint8Array, at: number, lf: number): void {
    let from = at;
    if (this.#mode === IDLE) {
      while (from < lf && isSpace(data[from])) from++;
    }
    let end = lf;
    while (end > from && isSpace(data[end - 1])) end--;
    if (end === from) {
      if (this.#len === 0) return; // A blank line.
      // The line ends with the bytes kept: without their whitespace too.
      while (isSpace(this.#buf[this.#len - 1])) this.#len--;
    }
    this.#emit(data, from, end);
  }

  // Scans bytes (with `lines`, bytes with no newline among them),
  // delivering each value where it ends.
  #scan(data: Uint8Array): void {
    // Where the current value starts in `data`: 0 when it began earlier
    // (its first bytes are buffered), -1 between values.
    let start = this.#mode === IDLE ? -1 : 0;
    const n = data.length;
    // Where the next quote and backslash are, at or after the current
    // byte: a string's other bytes are skipped with a native search, and
    // each search starts past the last one found, so the work stays
    // linear.
    let quote = -1;
    let backslash = -1;
    for (let i = 0; i < n && !this.#stopped; i++) {
      const c = data[i];
      switch (this.#mode) {
        case IDLE:
          if (isSpace(c)) break;
          start = i;
          if (c === LBRACE || c === LBRACKET) {
            this.#mode = NESTED;
            this.#depth = 1;
          } else if (c === QUOTE) {
            this.#mode = STRING;
            this.#nested = false;
          } else if (c === RBRACE || c === RBRACKET) {
            this.#emit(data, start, i + 1);
            start = -1;
          } else {
            this.#mode = TOKEN;
          }
          break;
        case NESTED:
          if (c === QUOTE) {
            this.#mode = STRING;
            this.#nested = true;
          } else if (c === LBRACE || c === LBRACKET) {
            this.#depth++;
          } else if (c === RBRACE || c === RBRACKET) {
            if (--this.#depth === 0) {
              this.#emit(data, start, i + 1);
              start = -1;
            }
          }
          break;
        case STRING:
          if (c === BACKSLASH) this.#mode = ESCAPE;
          else if (c === QUOTE) {
            if (this.#nested) this.#mode = NESTED;
            else {
              this.#emit(data, start, i + 1);
              start = -1;
            }
          } else {
            if (quote < i) quote = found(data.indexOf(QUOTE, i), n);
            if (backslash < i) {
              backslash = found(data.indexOf(BACKSLASH, i), n);
            }
            // On to the byte before the next one that matters here.
            i = Math.min(quote, backslash) - 1;
          }
          break;
        case ESCAPE:
          this.#mode = STRING;
          break;
        case TOKEN:
          // With lines, a bare token (never a message) runs to the end of
          // its line.
          if (!this.lines && (isSpace(c) || isStructural(c))) {
            this.#emit(data, start, i);
            start = -1;
            i--; // This byte starts what comes next.
          }
          break;
      }
    }
    if (this.#stopped || start < 0) return;
    // A value is under way: keep its bytes, unless it is already too long
    // (by more than the `\r` of a line's `\r\n`).
    if (this.#len + n - start > this.maxLength + (this.lines ? 1 : 0)) {
      this.#exceeded(this.#len + n - start);
      return;
    }
    this.#append(data.subarray(start));
  }

  override eofReceived(): boolean | void {
    this.#reset();
  }

  override connectionLost(): void {
    this.#transport = null;
    this.#reset();
  }

  #reset(): void {
    this.#buf = new Uint8Array(0);
    this.#len = 0;
    this.#mode = IDLE;
    this.#depth = 0;
  }

  // Delivers the value made of the buffered bytes and data[start, end).
  #emit(data: Uint8Array, start: number, end: number): void {
    const size = this.#len + end - start;
    this.#mode = IDLE;
    this.#depth = 0;
    if (size > this.maxLength) {
      this.#exceeded(size);
      return;
    }
    let value: Uint8Array;
    if (this.#len === 0) value = data.subarray(start, end);
    else {
      value = new Uint8Array(size);
      value.set(this.#buf.subarray(0, this.#len));
      value.set(data.subarray(start, end), this.#len);
      this.#len = 0;
    }
    this.#onValue(value);
    if (this.#transport?.isClosing()) this.#stopped = true;
  }

  #exceeded(size: number): void {
    this.#stopped = true;
    this.#reset();
    this.#onLengthExceeded(
      new LimitOverrunError(
        `Cannot receive a JSON message: it is longer than maxMessageBytes=${this.maxLength}, received at least ${size} bytes`,
        size,
      ),
    );
  }

  #append(data: Uint8Array): void {
    const need = this.#len + data.length;
    if (need > this.#buf.length) {
      const grown = new Uint8Array(Math.max(need, 2 * this.#buf.length, 64));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(data, this.#len);
    this.#len = need;
  }
}

const NEWLINE = new Uint8Array([LF]);

/**
 * Cuts one line (without its newline) into the values the "newline"
 * framing takes from it when its bytes arrive in pieces: each object,
 * array or string where it ends, and the rest of the line after it as a
 * value of its own. A line that parses as JSON is one value; one that does
 * not is cut with this, so that how a stream is cut does not change the
 * messages.
 *
 * @param line The line's bytes.
 * @returns The values, in order (the line itself when it holds one).
 */
export function splitLine(line: Uint8Array): Uint8Array[] {
  const values: Uint8Array[] = [];
  const splitter = new JsonSplitter(
    (v) => values.push(v),
    Infinity,
    () => {},
    true,
  );
  splitter.dataReceived(line);
  splitter.dataReceived(NEWLINE);
  return values;
}
