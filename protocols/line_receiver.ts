/**
 * `LineReceiver`: PEP 3153's line protocol, a `ChunkProtocol` whose
 * delimiter is `\r\n`.
 *
 * @module
 */

import {
  InvalidStateError,
  type LimitOverrunError,
} from "../futures/errors.ts";
import {
  ChunkProtocol,
  type ChunkProtocolOptions,
  type ChunkReceiver,
} from "./chunk_protocol.ts";
import { setFramerNaming } from "./_sink.ts";

const CRLF = new Uint8Array([13, 10]);

/**
 * A callback that receives each line, without its `\r\n`, and the
 * protocol (to answer with `writeLine`).
 */
export type LineCallback = (line: Uint8Array, protocol: LineReceiver) => void;

/** Options for `LineReceiver`. */
export type LineReceiverOptions = ChunkProtocolOptions<LineReceiver>;

/**
 * A stream protocol that cuts what it receives into lines ending in
 * `\r\n`, and passes each line (as bytes, without the `\r\n`) to a
 * callback or a composed `ChunkReceiver`. `writeLine(line)` sends a line
 * and its `\r\n`; it accepts a string (encoded as UTF-8) or bytes.
 *
 * Lines are bytes, as everything a transport carries: decode them with a
 * `TextDecoder` when they are text (a stream split in the middle of a
 * multi-byte character is still cut correctly, since only whole lines are
 * delivered).
 *
 * Everything `ChunkProtocol` says holds: any split of the input gives the
 * same lines; empty lines are delivered; a line of exactly `maxLength`
 * bytes is allowed and a longer one goes to `lengthExceeded()`, which by
 * default closes the connection; raw mode hands the bytes after a header
 * through untouched (`setRawMode(onData)`, then `setLineMode()`).
 *
 * PEP 3153: `LineReceiver` (Twisted's `LineReceiver`, composed rather than
 * subclassed).
 *
 * @example A line echo server over an in-memory connection
 * ```ts
 * import { LineReceiver } from "@tulip/tulip/protocols";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const decoder = new TextDecoder();
 * const server = new LineReceiver((line, p) => p.writeLine(decoder.decode(line).toUpperCase()));
 * const heard: string[] = [];
 * const client = new LineReceiver((line) => heard.push(decoder.decode(line)));
 * transportPair(server, client, { loop });
 * loop.callSoon(() => {
 *   client.writeLine("hello");
 *   client.writeLine("");
 *   client.writeLine("bye");
 * });
 * await loop.advance(1);
 * assertEquals(heard, ["HELLO", "", "BYE"]);
 * loop.close();
 * ```
 *
 * @example A header line, then a raw body
 * ```ts
 * import { LineReceiver } from "@tulip/tulip/protocols";
 * import { assertEquals } from "@std/assert";
 *
 * const enc = new TextEncoder();
 * let header = "";
 * let body = 0;
 * const p = new LineReceiver((line, self) => {
 *   header = new TextDecoder().decode(line);
 *   self.setRawMode((data) => { body += data.length; });
 * });
 * p.dataReceived(enc.encode("SIZE 5\r\nab"));
 * p.dataReceived(enc.encode("c\r\n"));
 * assertEquals([header, body], ["SIZE 5", 5]);
 * ```
 */
export class LineReceiver extends ChunkProtocol {
  /**
   * Makes a line receiver.
   *
   * @param onLine A callback, or a `ChunkReceiver` object, that receives
   * each line. Without it, override `chunkReceived()` (or `lineReceived()`).
   * @param options `maxLength` (default 16384 bytes) and
   * `onLengthExceeded`.
   * @throws {TypeError} When `onLine` is neither a function nor a
   * `ChunkReceiver`, or `onLengthExceeded` is not a function.
   * @throws {RangeError} When `maxLength` is neither a whole number >= 0
   * nor `Infinity`.
   */
  constructor(
    onLine?: LineCallback | ChunkReceiver<LineReceiver>,
    options?: LineReceiverOptions,
  ) {
    super(
      CRLF,
      onLine as ChunkReceiver<ChunkProtocol> | undefined,
      options as ChunkProtocolOptions<ChunkProtocol> | undefined,
    );
  }

  /**
   * Called with each line, without its `\r\n`; the default passes it on
   * to `lineReceived()`.
   *
   * @param chunk The line's bytes.
   */
  override chunkReceived(chunk: Uint8Array): void {
    this.lineReceived(chunk);
  }

  /**
   * Called with each line, without its `\r\n`. The default passes it to
   * the callback or receiver given to the constructor; subclasses may
   * override it instead.
   *
   * @param line The line's bytes; they belong to the callee.
   */
  lineReceived(line: Uint8Array): void {
    super.chunkReceived(line);
  }

  /**
   * Called when a line is longer than `maxLength`; the default passes it
   * on to `lineLengthExceeded()`.
   *
   * @param error Says how long a line may be.
   */
  override lengthExceeded(error: LimitOverrunError): void {
    this.lineLengthExceeded(error);
  }

  /**
   * Called when a line is longer than `maxLength`. The default calls the
   * `onLengthExceeded` option if given, else closes the connection (see
   * `ChunkProtocol.lengthExceeded()`); subclasses may override it.
   *
   * Twisted: `LineReceiver.lineLengthExceeded()`.
   *
   * @param error Says how long a line may be.
   */
  lineLengthExceeded(error: LimitOverrunError): void {
    super.lengthExceeded(error);
  }

  /**
   * Sends `line` followed by `\r\n`, in one write.
   *
   * PEP 3153: `write_line()`.
   *
   * @param line The line; a string is encoded as UTF-8. It should not
   * contain `\r\n`.
   * @throws {TypeError} When `line` is neither bytes nor a string.
   * @throws {InvalidStateError} When the protocol is not connected.
   */
  writeLine(line: Uint8Array | string): void {
    if (!(line instanceof Uint8Array) && typeof line !== "string") {
      throw new TypeError(
        `Cannot call writeLine(): line must be a Uint8Array or a string, received ${
          line === null ? "null" : typeof line
        }`,
      );
    }
    if (this.transport === null) {
      throw new InvalidStateError(
        "Cannot call writeLine(): the protocol is not connected",
      );
    }
    this.writeChunk(line);
  }

  /**
   * Turns raw mode off: bytes are cut into lines again, starting with
   * `extra` if given.
   *
   * Twisted: `LineReceiver.setLineMode()`.
   *
   * @param extra Bytes to cut into lines before any new ones.
   */
  setLineMode(extra?: Uint8Array): void {
    this.setChunkMode(extra);
  }
}

setFramerNaming(LineReceiver, { what: "a LineReceiver", param: "onLine" });
