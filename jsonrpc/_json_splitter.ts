// JsonSplitter: the "raw" framing of JsonRpcProtocol. It cuts a byte stream
// into top-level JSON texts by their own syntax, with no delimiter and no
// length prefix, so it takes whole messages one per dataReceived (a
// message-oriented transport such as an HTTP response body), several in one,
// or one spread over many — any split gives the same texts.

import { LimitOverrunError } from "../futures/errors.ts";
import type { Transport } from "../transports/transport.ts";
import { Protocol } from "../protocols/protocol.ts";

// The most buffer room kept once a value is delivered: what a long value
// grew beyond it is let go of, so that an idle connection holds no
// megabytes for a message that is over.
const KEEP = 64 * 1024;

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
 * is skipped, and so is a UTF-8 byte order mark before a value. Values
 * are delivered as their bytes, unparsed: a value that is not valid JSON
 * (say `{"a":}`) is still cut at its closing bracket, so a bad message
 * does not lose the ones after it. A stray closing bracket is delivered
 * alone. An incomplete value at the end of the stream is dropped. A value
 * longer than `maxLength` bytes is reported to `onLengthExceeded` as soon
 * as that is known, and the splitter stops.
 */
export class JsonSplitter extends Protocol {
  /** The longest value accepted, in bytes. */
  readonly maxLength: number;

  readonly #onValue: (data: Uint8Array) => void;
  readonly #onLengthExceeded: (error: LimitOverrunError) => void;
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
  ) {
    super();
    this.#onValue = onValue;
    this.maxLength = maxLength;
    this.#onLengthExceeded = onLengthExceeded;
  }

  /** Bytes of an unfinished value held between calls; never above `maxLength`. */
  get buffered(): number {
    return this.#len;
  }

  override connectionMade(transport: Transport): void {
    this.#transport = transport;
  }

  override dataReceived(data: Uint8Array): void {
    // Where the current value starts in `data`: 0 when it began earlier
    // (its first bytes are buffered), -1 between values.
    let start = this.#mode === IDLE ? -1 : 0;
    const n = data.length;
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
          }
          break;
        case ESCAPE:
          this.#mode = STRING;
          break;
        case TOKEN:
          if (isSpace(c) || isStructural(c)) {
            this.#emit(data, start, i);
            start = -1;
            i--; // This byte starts what comes next.
          }
          break;
      }
    }
    if (this.#stopped || start < 0) return;
    // A value is under way: keep its bytes, unless it is already too long.
    if (this.#len + n - start > this.maxLength) {
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
      if (this.#buf.length > KEEP) this.#buf = new Uint8Array(0);
    }
    // A byte order mark before a value is ignored (RFC 8259, section 8.1):
    // it starts a token, cut at the value's first bracket or quote.
    if (value[0] === 0xef && value[1] === 0xbb && value[2] === 0xbf) {
      if (value.length === 3) return;
      value = value.subarray(3);
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
