/**
 * `ChunkProtocol`: PEP 3153's delimiter-framed protocol, which cuts a byte
 * stream into chunks and hands each one to a callback.
 *
 * @module
 */

import {
  formatReceived,
  InvalidStateError,
  LimitOverrunError,
} from "../futures/errors.ts";
import type { Transport } from "../transports/transport.ts";
import { Protocol } from "./protocol.ts";
import { framerNaming, lengthExceededHandler, pickSink } from "./_sink.ts";
import { Intake } from "./_intake.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** The default `maxLength` of a chunk, in bytes (Twisted's `MAX_LENGTH`). */
const DEFAULT_MAX_LENGTH = 16384;

// The most buffer room kept once a chunk is delivered: what a long chunk
// grew beyond it is let go of, so that an idle connection holds no
// megabytes for a message that is over.
const KEEP = 64 * 1024;

const encoder = new TextEncoder();

// How ChunkProtocol's constructor names itself in its errors.
const CHUNK_NAMING = { what: "a ChunkProtocol", param: "onChunk" };

/**
 * A callback that receives each chunk, without its delimiter, and the
 * protocol that cut it (to write a reply with `writeChunk`).
 *
 * @typeParam P The protocol's class.
 */
export type ChunkCallback<P extends ChunkProtocol = ChunkProtocol> = (
  chunk: Uint8Array,
  protocol: P,
) => void;

/**
 * An object composed into a `ChunkProtocol` instead of a callback: it
 * receives the chunks and, if it wants them, the connection events.
 *
 * PEP 3153: "a completely separate object composed by the protocol".
 *
 * @typeParam P The protocol's class.
 */
export interface ChunkReceiver<P extends ChunkProtocol = ChunkProtocol> {
  /**
   * Called with each chunk, without its delimiter.
   *
   * @param chunk The chunk's bytes; they belong to the receiver.
   * @param protocol The protocol that cut it.
   */
  chunkReceived(chunk: Uint8Array, protocol: P): void;
  /**
   * Called once, when the connection is made.
   *
   * @param protocol The protocol, now connected.
   */
  connectionMade?(protocol: P): void;
  /**
   * Called at most once, when the peer closes its write end. Return `true`
   * to keep the transport open for writing.
   *
   * @param protocol The protocol.
   */
  eofReceived?(protocol: P): boolean | void;
  /**
   * Called exactly once, when the connection is lost or closed. After an
   * over-long chunk closed the connection, `exc` is the
   * `LimitOverrunError`.
   *
   * @param exc The error that ended the connection, if any.
   * @param protocol The protocol.
   */
  connectionLost?(exc: Error | undefined, protocol: P): void;
}

/** Options for `ChunkProtocol`. */
export interface ChunkProtocolOptions<P extends ChunkProtocol = ChunkProtocol> {
  /**
   * The longest chunk allowed, in bytes, delimiter excluded. A chunk of
   * exactly `maxLength` bytes is delivered; a longer one is reported to
   * `lengthExceeded()` and never buffered whole. `Infinity` for no limit.
   *
   * @default {16384}
   */
  maxLength?: number;
  /**
   * Called instead of the default `lengthExceeded()` behaviour (closing
   * the connection) when a chunk is longer than `maxLength`. If it leaves
   * the connection open, the over-long chunk is skipped and the chunk after
   * its delimiter is delivered as usual.
   *
   * @default {undefined}
   */
  onLengthExceeded?: (error: LimitOverrunError, protocol: P) => void;
}

/** Accepts bytes or a string (encoded as UTF-8). */
function toBytes(data: unknown, what: string, name: string): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === "string") return encoder.encode(data);
  throw new TypeError(
    `Cannot ${what}: ${name} must be a Uint8Array or a string, received ${
      data === null ? "null" : typeof data
    }`,
  );
}

/**
 * Returns the index of the first `delim` in `buf` at or after `from`, or
 * -1. Only the delimiter's first byte is searched natively; a match is
 * confirmed byte by byte, so the cost is linear for short delimiters.
 */
function findDelimiter(
  buf: Uint8Array,
  delim: Uint8Array,
  from: number,
): number {
  const first = delim[0];
  const n = delim.length;
  const last = buf.length - n;
  let i = from;
  while (i <= last) {
    i = buf.indexOf(first, i);
    if (i === -1 || i > last) return -1;
    let k = 1;
    while (k < n && buf[i + k] === delim[k]) k++;
    if (k === n) return i;
    i++;
  }
  return -1;
}

/**
 * A stream protocol that cuts the bytes it receives into chunks at a
 * delimiter and passes each chunk, without the delimiter, to a callback or
 * to a composed `ChunkReceiver` — no subclassing needed. `writeChunk(data)`
 * sends `data` followed by the delimiter.
 *
 * The framing does not depend on how the bytes arrive: the same stream
 * split anywhere, down to one byte per `dataReceived`, gives the same
 * chunks. Empty chunks (two delimiters in a row) are delivered. A chunk of
 * exactly `maxLength` bytes is delivered; a longer one is an error reported
 * to `lengthExceeded()`, and the buffer never holds more than `maxLength`
 * plus the delimiter's length. Bytes after the last delimiter are not a
 * chunk: they are dropped when the connection ends.
 *
 * Work is linear in the bytes received: the delimiter search resumes where
 * it stopped, and a chunk that arrives whole in one `dataReceived` is
 * delivered as a view of it, without a copy.
 *
 * Once the transport is closing (say a callback called `close()`), the
 * chunks still buffered are dropped, as Twisted's `LineReceiver` does, and
 * nothing is delivered after `connectionLost`. `pauseProducing()` in a
 * callback holds back the chunks already received after the current one
 * until `resumeProducing()`. Bytes received during a callback (a raw
 * handler's `setChunkMode(extra)`) are framed after it returns, so modes
 * can switch any number of times in one delivery.
 *
 * `setRawMode(onData)` stops the framing: from then on bytes — starting
 * with any already buffered after the current chunk — go to `onData` as
 * they come, until `setChunkMode()`; handy for a body after a header.
 *
 * PEP 3153: `ChunkProtocol`.
 *
 * @example Splitting a stream at a delimiter
 * ```ts
 * import { ChunkProtocol } from "@tulip/tulip/protocols";
 * import { assertEquals } from "@std/assert";
 *
 * const chunks: string[] = [];
 * const p = new ChunkProtocol("|", (chunk) => chunks.push(new TextDecoder().decode(chunk)));
 * p.dataReceived(new TextEncoder().encode("ab|c"));
 * p.dataReceived(new TextEncoder().encode("d||e"));
 * assertEquals(chunks, ["ab", "cd", ""]);
 * ```
 *
 * @example Echoing chunks over an in-memory connection
 * ```ts
 * import { ChunkProtocol } from "@tulip/tulip/protocols";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const echo = new ChunkProtocol("\0", (chunk, p) => p.writeChunk(chunk));
 * const done = loop.createFuture<string>();
 * const client = new ChunkProtocol("\0", (chunk) => done.setResult(new TextDecoder().decode(chunk)));
 * transportPair(echo, client, { loop });
 * loop.callSoon(() => client.writeChunk("ping"));
 * assertEquals(await loop.runUntilComplete(done), "ping");
 * loop.close();
 * ```
 */
export class ChunkProtocol extends Protocol {
  /** The delimiter between chunks. */
  readonly delimiter: Uint8Array;
  /** The longest chunk allowed, in bytes, delimiter excluded. */
  readonly maxLength: number;

  #onChunk: ChunkCallback | null = null;
  #receiver: ChunkReceiver | null = null;
  #onLengthExceeded: ((e: LimitOverrunError, p: ChunkProtocol) => void) | null;
  #transport: Transport | null = null;
  // Bytes of an incomplete chunk; while skipping an over-long chunk, only
  // the last `delimiter.length - 1` bytes (a possible delimiter prefix).
  #buf: Uint8Array = new Uint8Array(0);
  #len = 0;
  #skipping = false;
  readonly #intake = new Intake((data) => this.#frame(data));
  #closeError: Error | undefined = undefined;
  #rawOnData: ((data: Uint8Array, protocol: ChunkProtocol) => void) | null =
    null;
  #raw = false;

  /**
   * Makes a chunk protocol.
   *
   * @param delimiter The bytes between chunks; a string is encoded as
   * UTF-8. Must not be empty.
   * @param onChunk A callback, or a `ChunkReceiver` object, that receives
   * each chunk. Without it, override `chunkReceived()`.
   * @param options `maxLength` and `onLengthExceeded`.
   * @throws {TypeError} When `delimiter` is neither bytes nor a string,
   * `onChunk` is neither a function nor a `ChunkReceiver`, `options` is
   * not an object, or `onLengthExceeded` is not a function.
   * @throws {RangeError} When `delimiter` is empty or `maxLength` is
   * neither a whole number >= 0 nor `Infinity`.
   */
  constructor(
    delimiter: Uint8Array | string,
    onChunk?: ChunkCallback<ChunkProtocol> | ChunkReceiver<ChunkProtocol>,
    options?: ChunkProtocolOptions<ChunkProtocol>,
  ) {
    super();
    const { what, param } = framerNaming(new.target, CHUNK_NAMING);
    checkOptions(options, `make ${what}`, "{ maxLength }");
    const delim = toBytes(delimiter, `make ${what}`, "delimiter");
    if (delim.length === 0) {
      throw new RangeError(
        `Cannot make ${what}: delimiter must not be empty, received 0 bytes`,
      );
    }
    this.delimiter = delim.slice();
    const maxLength = options?.maxLength ?? DEFAULT_MAX_LENGTH;
    if (
      typeof maxLength !== "number" ||
      !(maxLength === Infinity || Number.isSafeInteger(maxLength)) ||
      maxLength < 0
    ) {
      throw new RangeError(
        `Cannot make ${what}: maxLength must be a whole number >= 0, received ${
          formatReceived(maxLength)
        }`,
      );
    }
    this.maxLength = maxLength;
    [this.#onChunk, this.#receiver] = pickSink<ChunkCallback, ChunkReceiver>(
      what,
      param,
      "chunkReceived",
      onChunk,
    );
    this.#onLengthExceeded = lengthExceededHandler(
      what,
      options?.onLengthExceeded,
    );
  }

  /**
   * The connection's transport, or `null` before `connectionMade` and
   * after `connectionLost`.
   */
  get transport(): Transport | null {
    return this.#transport;
  }

  /**
   * The bytes held for a chunk not yet complete (while an over-long chunk
   * is skipped, only a possible start of the delimiter). Never more than
   * `maxLength + delimiter.length - 1`. Bytes held back, not yet framed,
   * while `pauseProducing()` is in effect are not counted.
   */
  get bufferedBytes(): number {
    return this.#len;
  }

  /**
   * Returns `true` while raw mode is on (see `setRawMode()`).
   *
   * @returns Whether bytes bypass the framing.
   */
  isRawMode(): boolean {
    return this.#raw;
  }

  /**
   * Keeps the transport and tells the receiver, if it wants to know.
   *
   * @param transport The connection's transport.
   */
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    this.#receiver?.connectionMade?.(this);
  }

  /**
   * Cuts the received bytes into chunks and delivers each complete one.
   *
   * @param data The bytes received.
   */
  override dataReceived(data: Uint8Array): void {
    this.#intake.receive(data);
  }

  /**
   * Passes the end of the stream to the receiver; the bytes of an
   * incomplete chunk are dropped.
   *
   * @returns The receiver's answer: `true` keeps the transport half-open.
   */
  override eofReceived(): boolean | void {
    return this.#receiver?.eofReceived?.(this);
  }

  /**
   * Drops the buffer and tells the receiver. After an over-long chunk
   * closed the connection, the receiver gets that `LimitOverrunError`
   * rather than `undefined`.
   *
   * @param exc The error that ended the connection, if any.
   */
  override connectionLost(exc?: Error): void {
    this.#transport = null;
    this.#intake.stop();
    this.#buf = new Uint8Array(0);
    this.#len = 0;
    this.#receiver?.connectionLost?.(exc ?? this.#closeError, this);
  }

  /**
   * Called with each chunk, without its delimiter. The default passes it
   * to the callback or receiver given to the constructor; subclasses may
   * override it instead.
   *
   * @param chunk The chunk's bytes; they belong to the callee.
   */
  chunkReceived(chunk: Uint8Array): void {
    if (this.#onChunk !== null) this.#onChunk(chunk, this);
    else this.#receiver?.chunkReceived(chunk, this);
  }

  /**
   * Called when a chunk is longer than `maxLength`. The default calls the
   * `onLengthExceeded` option if one was given; otherwise it stops the
   * protocol and closes the transport, and `connectionLost` then reports
   * `error`. If the connection stays open, the over-long chunk is skipped
   * up to its delimiter and framing goes on after it.
   *
   * @param error Says how long the chunk was allowed to be.
   */
  lengthExceeded(error: LimitOverrunError): void {
    if (this.#onLengthExceeded !== null) {
      this.#onLengthExceeded(error, this);
      return;
    }
    this.#intake.stop();
    this.#closeError = error;
    this.#transport?.close();
  }

  /**
   * Called in raw mode with bytes as they arrive. The default passes them
   * to the `onData` given to `setRawMode()`.
   *
   * @param data The bytes received.
   */
  rawDataReceived(data: Uint8Array): void {
    this.#rawOnData?.(data, this);
  }

  /**
   * Turns raw mode on: the framing stops, and bytes go to `onData` (or an
   * overridden `rawDataReceived()`) as they arrive — first the bytes
   * already buffered after the current chunk, then new ones. Typically
   * called from the chunk callback after a header.
   *
   * Twisted: `LineReceiver.setRawMode()`.
   *
   * @param onData Receives the raw bytes.
   * @throws {TypeError} When `onData` is missing and `rawDataReceived()`
   * is not overridden, or is not a function.
   */
  setRawMode(onData?: (data: Uint8Array, protocol: this) => void): void {
    if (onData !== undefined && typeof onData !== "function") {
      throw new TypeError(
        `Cannot switch to raw mode: onData must be a function, received ${typeof onData}`,
      );
    }
    if (
      onData === undefined &&
      this.rawDataReceived === ChunkProtocol.prototype.rawDataReceived
    ) {
      throw new TypeError(
        "Cannot switch to raw mode: pass onData or override rawDataReceived(), received neither",
      );
    }
    this.#rawOnData = (onData as ChunkCallback | undefined) ?? null;
    if (this.#raw) return;
    this.#raw = true;
    const buffered = this.#len > 0 && !this.#skipping
      ? this.#buf.slice(0, this.#len)
      : null;
    this.#len = 0;
    this.#skipping = false;
    // Called from outside a delivery: hand over what is buffered now.
    if (buffered !== null) this.#intake.receiveFirst(buffered);
  }

  /**
   * Turns raw mode off: bytes are framed into chunks again. `extra`, if
   * given, is framed first, as if just received — for bytes the raw
   * handler read past the end of its part.
   *
   * Twisted: `LineReceiver.setLineMode()`.
   *
   * @param extra Bytes to frame before any new ones.
   */
  setChunkMode(extra?: Uint8Array): void {
    this.#raw = false;
    this.#rawOnData = null;
    if (extra !== undefined && extra.length > 0) {
      this.#intake.receiveFirst(extra);
    }
  }

  /**
   * Stops delivering chunks (and raw bytes) and pauses the transport's
   * reading, until `resumeProducing()`. Called from a callback, it holds
   * back the chunks already received after the current one too — which
   * `transport.pauseReading()` alone does not: it only stops new reads.
   *
   * Twisted: `LineReceiver.pauseProducing()`; PEP 3153: a push producer,
   * so the protocol can be registered as its own transport's producer.
   *
   * @example Holding back requests while one is being served
   * ```ts
   * import { ChunkProtocol } from "@tulip/tulip/protocols";
   * import { assertEquals } from "@std/assert";
   *
   * const got: string[] = [];
   * const p = new ChunkProtocol("\n", (chunk, self) => {
   *   got.push(new TextDecoder().decode(chunk));
   *   self.pauseProducing();
   * });
   * p.dataReceived(new TextEncoder().encode("a\nb\n"));
   * assertEquals(got, ["a"]);
   * p.resumeProducing();
   * assertEquals(got, ["a", "b"]);
   * ```
   */
  pauseProducing(): void {
    this.#intake.pause(this.#transport);
  }

  /**
   * Delivers what `pauseProducing()` held back, then resumes the
   * transport's reading (unless a callback paused or stopped again).
   *
   * Twisted: `LineReceiver.resumeProducing()`.
   */
  resumeProducing(): void {
    this.#intake.resume(this.#transport);
  }

  /**
   * Stops for good: drops what is buffered or held back, delivers nothing
   * more, and closes the transport.
   *
   * Twisted: `LineReceiver.stopProducing()`.
   */
  stopProducing(): void {
    this.#len = 0;
    this.#intake.stop(this.#transport);
  }

  /**
   * Sends `data` followed by the delimiter, in one write.
   *
   * PEP 3153: `ChunkProtocol.write_chunk()`.
   *
   * @param data The chunk; a string is encoded as UTF-8. It should not
   * contain the delimiter (the peer would see two chunks).
   * @throws {TypeError} When `data` is neither bytes nor a string.
   * @throws {InvalidStateError} Before `connectionMade` or after
   * `connectionLost`.
   */
  writeChunk(data: Uint8Array | string): void {
    const bytes = toBytes(data, "call writeChunk()", "data");
    if (this.#transport === null) {
      throw new InvalidStateError(
        "Cannot call writeChunk(): the protocol is not connected",
      );
    }
    this.#transport.writelines([bytes, this.delimiter]);
  }

  // Frames `data` until the end, raw mode, a pause or a stop.
  #frame(data: Uint8Array): void {
    const intake = this.#intake;
    let pos = 0;
    while (pos < data.length) {
      if (intake.stopped || intake.paused) {
        intake.holdRest(data.subarray(pos));
        break;
      }
      if (this.#raw) {
        this.rawDataReceived(pos === 0 ? data : data.subarray(pos));
        break;
      }
      pos = this.#len === 0 && !this.#skipping
        ? this.#fromData(data, pos)
        : this.#fromBuffer(data, pos);
    }
    if (this.#buf.length > KEEP && 4 * this.#len <= KEEP) {
      this.#buf = this.#buf.slice(0, this.#len);
    }
  }

  // Delivers one chunk (or reports an over-long one) and says whether to
  // go on: not once the protocol stopped or the transport is closing.
  #deliver(chunk: Uint8Array | null): void {
    if (chunk === null) {
      this.lengthExceeded(this.#overrun());
    } else {
      this.chunkReceived(chunk);
    }
    if (this.#transport?.isClosing()) this.#intake.stop();
  }

  #overrun(): LimitOverrunError {
    return new LimitOverrunError(
      `Cannot receive a chunk: it is longer than maxLength=${this.maxLength} bytes`,
      this.maxLength + 1,
    );
  }

  // The buffer is empty: look for the next delimiter in `data` itself and
  // deliver the chunk as a view, with no copy. Returns where to go on.
  #fromData(data: Uint8Array, pos: number): number {
    const delim = this.delimiter;
    const at = findDelimiter(data, delim, pos);
    if (at >= 0) {
      this.#deliver(at - pos > this.maxLength ? null : data.subarray(pos, at));
      return at + delim.length;
    }
    const rest = data.length - pos;
    if (rest >= this.maxLength + delim.length) {
      this.#startSkipping(data.subarray(pos));
      this.#deliver(null);
    } else {
      this.#append(data, pos, data.length);
    }
    return data.length;
  }

  // The buffer holds the start of a chunk (or, while skipping, a possible
  // delimiter prefix): finish it with bytes from `data`. Returns where to
  // go on in `data`.
  #fromBuffer(data: Uint8Array, pos: number): number {
    const delim = this.delimiter;
    const dlen = delim.length;
    const oldLen = this.#len;
    // A delimiter that starts in the buffer and ends in `data`: append at
    // most dlen - 1 bytes and search only where such a delimiter can start.
    if (dlen > 1) {
      const take = Math.min(dlen - 1, data.length - pos);
      this.#append(data, pos, pos + take);
      const at = findDelimiter(
        this.#buf.subarray(0, this.#len),
        delim,
        Math.max(0, oldLen - dlen + 1),
      );
      if (at >= 0) {
        const skipping = this.#skipping;
        this.#len = 0;
        this.#skipping = false;
        if (!skipping) {
          this.#deliver(at > this.maxLength ? null : this.#buf.slice(0, at));
        }
        return pos + at + dlen - oldLen;
      }
      this.#len = oldLen;
    }
    // Otherwise the first delimiter, if any, lies wholly in `data`.
    const at = findDelimiter(data, delim, pos);
    if (at >= 0) {
      const skipping = this.#skipping;
      this.#len = 0;
      this.#skipping = false;
      if (!skipping) {
        const size = oldLen + at - pos;
        if (size > this.maxLength) this.#deliver(null);
        else {
          const chunk = new Uint8Array(size);
          chunk.set(this.#buf.subarray(0, oldLen));
          chunk.set(data.subarray(pos, at), oldLen);
          this.#deliver(chunk);
        }
      }
      return at + dlen;
    }
    if (this.#skipping) {
      this.#keepTail(data.subarray(pos));
    } else if (oldLen + data.length - pos >= this.maxLength + dlen) {
      this.#startSkipping(data.subarray(pos));
      this.#deliver(null);
    } else {
      this.#append(data, pos, data.length);
    }
    return data.length;
  }

  // An over-long chunk: drop it, keeping only a possible delimiter prefix.
  #startSkipping(rest: Uint8Array): void {
    this.#skipping = true;
    this.#keepTail(rest);
  }

  // While skipping: keep the last dlen - 1 bytes of buffer + `data` (the
  // unconsumed rest of what was received).
  #keepTail(data: Uint8Array): void {
    const keep = this.delimiter.length - 1;
    if (keep === 0) {
      this.#len = 0;
      return;
    }
    if (data.length >= keep) {
      this.#len = 0;
      this.#append(data, data.length - keep, data.length);
      return;
    }
    const tail = new Uint8Array(Math.min(keep, this.#len + data.length));
    const fromBuf = tail.length - data.length;
    tail.set(this.#buf.subarray(this.#len - fromBuf, this.#len));
    tail.set(data, fromBuf);
    this.#len = 0;
    this.#append(tail, 0, tail.length);
  }

  #append(data: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (n === 0) return;
    const need = this.#len + n;
    if (need > this.#buf.length) {
      const grown = new Uint8Array(Math.max(need, 2 * this.#buf.length, 64));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(data.subarray(start, end), this.#len);
    this.#len = need;
  }
}
