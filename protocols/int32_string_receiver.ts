/**
 * `Int32StringReceiver`: a protocol of messages framed by a 4-byte
 * big-endian length prefix.
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
import { lengthExceededHandler, pickSink } from "./_sink.ts";
import { Intake } from "./_intake.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** The default `maxLength` of a message, in bytes (1 MiB). */
const DEFAULT_MAX_LENGTH = 1024 * 1024;
/** The largest length a 4-byte prefix can carry. */
const MAX_PREFIX = 0xffff_ffff;
const PREFIX = 4;

const encoder = new TextEncoder();

/**
 * A callback that receives each message and the protocol (to answer with
 * `sendString`).
 */
export type StringCallback = (
  data: Uint8Array,
  protocol: Int32StringReceiver,
) => void;

/**
 * An object composed into an `Int32StringReceiver` instead of a callback.
 */
export interface StringReceiver {
  /**
   * Called with each message.
   *
   * @param data The message's bytes; they belong to the receiver.
   * @param protocol The protocol that framed it.
   */
  stringReceived(data: Uint8Array, protocol: Int32StringReceiver): void;
  /**
   * Called once, when the connection is made.
   *
   * @param protocol The protocol, now connected.
   */
  connectionMade?(protocol: Int32StringReceiver): void;
  /**
   * Called at most once, when the peer closes its write end. Return `true`
   * to keep the transport open for writing.
   *
   * @param protocol The protocol.
   */
  eofReceived?(protocol: Int32StringReceiver): boolean | void;
  /**
   * Called exactly once, when the connection is lost or closed. After an
   * over-long message closed the connection, `exc` is the
   * `LimitOverrunError`.
   *
   * @param exc The error that ended the connection, if any.
   * @param protocol The protocol.
   */
  connectionLost?(exc: Error | undefined, protocol: Int32StringReceiver): void;
}

/** Options for `Int32StringReceiver`. */
export interface Int32StringReceiverOptions {
  /**
   * The longest message accepted, in bytes (prefix excluded). A longer
   * prefix is reported to `lengthLimitExceeded()` before any of the
   * message is buffered.
   *
   * @default {1048576}
   */
  maxLength?: number;
  /**
   * Called instead of the default `lengthLimitExceeded()` behaviour
   * (closing the connection) with the error and the protocol. If the
   * connection stays open, the message's bytes are skipped as they arrive,
   * never buffered, and framing goes on after them.
   *
   * @default {undefined}
   */
  onLengthExceeded?: (
    error: LimitOverrunError,
    protocol: Int32StringReceiver,
  ) => void;
}

/**
 * A stream protocol of messages ("strings" in Twisted's words) each sent
 * as a 4-byte big-endian unsigned length followed by that many bytes.
 * Each message goes to a callback or a composed `StringReceiver`;
 * `sendString(data)` sends one.
 *
 * Framing does not depend on how bytes arrive: any split of the stream,
 * down to one byte at a time, gives the same messages. A message is
 * gathered in one allocation once its length is known, or delivered as a
 * view without a copy when it arrives whole. A length over `maxLength` is
 * reported to `lengthLimitExceeded()` as soon as the prefix is read — the
 * message is never buffered — and by default closes the connection.
 *
 * Nothing is delivered once the transport is closing or after
 * `connectionLost`. `pauseProducing()` in a callback holds back the
 * messages already received until `resumeProducing()`; bytes a callback
 * feeds to `dataReceived()` are framed after those already received.
 *
 * Twisted: `Int32StringReceiver`; a PEP 3153 framing protocol.
 *
 * @example Framing messages
 * ```ts
 * import { Int32StringReceiver } from "@tulip/tulip/protocols";
 * import { assertEquals } from "@std/assert";
 *
 * const got: number[][] = [];
 * const p = new Int32StringReceiver((data) => got.push([...data]));
 * p.dataReceived(new Uint8Array([0, 0, 0, 2, 7, 8, 0, 0]));
 * p.dataReceived(new Uint8Array([0, 0, 0, 0, 0, 1, 9]));
 * assertEquals(got, [[7, 8], [], [9]]);
 * ```
 *
 * @example A request and a reply in memory
 * ```ts
 * import { Int32StringReceiver } from "@tulip/tulip/protocols";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const server = new Int32StringReceiver((data, p) => p.sendString(data.toReversed()));
 * const reply = loop.createFuture<Uint8Array>();
 * const client = new Int32StringReceiver((data) => reply.setResult(data));
 * transportPair(server, client, { loop, chunkSize: 1 });
 * loop.callSoon(() => client.sendString(new Uint8Array([1, 2, 3])));
 * assertEquals(await loop.runUntilComplete(reply), new Uint8Array([3, 2, 1]));
 * loop.close();
 * ```
 */
export class Int32StringReceiver extends Protocol {
  /** The longest message accepted, in bytes. */
  readonly maxLength: number;

  #onString: StringCallback | null = null;
  #receiver: StringReceiver | null = null;
  #onLengthExceeded:
    | ((e: LimitOverrunError, p: Int32StringReceiver) => void)
    | null;
  #transport: Transport | null = null;
  // The length prefix being read, then the message being gathered.
  #prefix = new Uint8Array(PREFIX);
  #prefixLen = 0;
  #message: Uint8Array | null = null;
  #messageLen = 0;
  #skip = 0;
  readonly #intake = new Intake((data) => this.#frame(data));
  #closeError: Error | undefined = undefined;

  /**
   * Makes the protocol.
   *
   * @param onString A callback, or a `StringReceiver`, that receives each
   * message. Without it, override `stringReceived()`.
   * @param options `maxLength` and `onLengthExceeded`.
   * @throws {TypeError} When `onString` is neither a function nor a
   * `StringReceiver`, `options` is not an object, or `onLengthExceeded`
   * is not a function.
   * @throws {RangeError} When `maxLength` is not a whole number from 0 to
   * 2^32 - 1.
   */
  constructor(
    onString?: StringCallback | StringReceiver,
    options?: Int32StringReceiverOptions,
  ) {
    super();
    checkOptions(options, "make an Int32StringReceiver", "{ maxLength }");
    const maxLength = options?.maxLength ?? DEFAULT_MAX_LENGTH;
    if (
      typeof maxLength !== "number" || !Number.isSafeInteger(maxLength) ||
      maxLength < 0 || maxLength > MAX_PREFIX
    ) {
      throw new RangeError(
        `Cannot make an Int32StringReceiver: maxLength must be a whole number from 0 to ${MAX_PREFIX}, received ${
          formatReceived(maxLength)
        }`,
      );
    }
    this.maxLength = maxLength;
    [this.#onString, this.#receiver] = pickSink<StringCallback, StringReceiver>(
      "an Int32StringReceiver",
      "onString",
      "stringReceived",
      onString,
    );
    this.#onLengthExceeded = lengthExceededHandler(
      "an Int32StringReceiver",
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
   * The bytes held for a message not yet complete: the part of a length
   * prefix read, or the whole size of the message being read (its buffer
   * is allocated once its length is known). Never more than `maxLength`
   * (or 4, for a prefix).
   */
  get bufferedBytes(): number {
    return this.#message !== null ? this.#message.length : this.#prefixLen;
  }

  /**
   * Keeps the transport and tells the receiver.
   *
   * @param transport The connection's transport.
   */
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    this.#receiver?.connectionMade?.(this);
  }

  /**
   * Frames the received bytes and delivers each complete message.
   *
   * @param data The bytes received.
   */
  override dataReceived(data: Uint8Array): void {
    this.#intake.receive(data);
  }

  // Frames `data` until the end, a pause or a stop.
  #frame(data: Uint8Array): void {
    const intake = this.#intake;
    let pos = 0;
    const end = data.length;
    while (pos < end) {
      if (intake.stopped || intake.paused) {
        intake.holdRest(data.subarray(pos));
        return;
      }
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, end - pos);
        this.#skip -= n;
        pos += n;
        continue;
      }
      const message = this.#message;
      if (message !== null) {
        const n = Math.min(message.length - this.#messageLen, end - pos);
        message.set(data.subarray(pos, pos + n), this.#messageLen);
        this.#messageLen += n;
        pos += n;
        if (this.#messageLen === message.length) {
          this.#message = null;
          this.#deliver(message);
        }
        continue;
      }
      if (this.#prefixLen === 0 && end - pos >= PREFIX) {
        // Fast path: the prefix, and maybe the whole message, are here.
        const size = readUint32(data, pos);
        pos += PREFIX;
        if (size > this.maxLength) {
          this.#skip = size;
          this.#exceeded(size);
        } else if (end - pos >= size) {
          this.#deliver(data.subarray(pos, pos + size));
          pos += size;
        } else {
          this.#begin(size);
        }
        continue;
      }
      const n = Math.min(PREFIX - this.#prefixLen, end - pos);
      this.#prefix.set(data.subarray(pos, pos + n), this.#prefixLen);
      this.#prefixLen += n;
      pos += n;
      if (this.#prefixLen === PREFIX) {
        this.#prefixLen = 0;
        const size = readUint32(this.#prefix, 0);
        if (size > this.maxLength) {
          this.#skip = size;
          this.#exceeded(size);
        } else if (size === 0) this.#deliver(new Uint8Array(0));
        else this.#begin(size);
      }
    }
  }

  /**
   * Passes the end of the stream to the receiver; an incomplete message
   * is dropped.
   *
   * @returns The receiver's answer: `true` keeps the transport half-open.
   */
  override eofReceived(): boolean | void {
    return this.#receiver?.eofReceived?.(this);
  }

  /**
   * Drops any partial message and tells the receiver; after an over-long
   * message closed the connection, with that error.
   *
   * @param exc The error that ended the connection, if any.
   */
  override connectionLost(exc?: Error): void {
    this.#transport = null;
    this.#intake.stop();
    this.#message = null;
    this.#receiver?.connectionLost?.(exc ?? this.#closeError, this);
  }

  /**
   * Called with each message. The default passes it to the callback or
   * receiver given to the constructor; subclasses may override it.
   *
   * @param data The message's bytes; they belong to the callee.
   */
  stringReceived(data: Uint8Array): void {
    if (this.#onString !== null) this.#onString(data, this);
    else this.#receiver?.stringReceived(data, this);
  }

  /**
   * Called when a length prefix is over `maxLength`. The default calls
   * the `onLengthExceeded` option if given; otherwise it stops the
   * protocol and closes the transport, and `connectionLost` reports
   * `error`. If the connection stays open, the message is skipped.
   *
   * Twisted: `IntNStringReceiver.lengthLimitExceeded()`.
   *
   * @param error Says the length received and the limit.
   */
  lengthLimitExceeded(error: LimitOverrunError): void {
    if (this.#onLengthExceeded !== null) {
      this.#onLengthExceeded(error, this);
      return;
    }
    this.#intake.stop();
    this.#closeError = error;
    this.#transport?.close();
  }

  /**
   * Sends `data` with its length prefix, in one write.
   *
   * Twisted: `IntNStringReceiver.sendString()`.
   *
   * @param data The message; a string is encoded as UTF-8.
   * @throws {TypeError} When `data` is neither bytes nor a string.
   * @throws {RangeError} When `data` is longer than 2^32 - 1 bytes.
   * @throws {InvalidStateError} When the protocol is not connected.
   */
  sendString(data: Uint8Array | string): void {
    let bytes: Uint8Array;
    if (data instanceof Uint8Array) bytes = data;
    else if (typeof data === "string") bytes = encoder.encode(data);
    else {
      throw new TypeError(
        `Cannot call sendString(): data must be a Uint8Array or a string, received ${
          data === null ? "null" : typeof data
        }`,
      );
    }
    if (bytes.length > MAX_PREFIX) {
      throw new RangeError(
        `Cannot call sendString(): data must fit a 4-byte length, received ${bytes.length} bytes`,
      );
    }
    if (this.#transport === null) {
      throw new InvalidStateError(
        "Cannot call sendString(): the protocol is not connected",
      );
    }
    const prefix = new Uint8Array(PREFIX);
    new DataView(prefix.buffer).setUint32(0, bytes.length);
    this.#transport.writelines([prefix, bytes]);
  }

  /**
   * Stops delivering messages and pauses the transport's reading, until
   * `resumeProducing()`. Called from a callback, it holds back the
   * messages already received after the current one too — which
   * `transport.pauseReading()` alone does not: it only stops new reads.
   *
   * Twisted: `IntNStringReceiver.pauseProducing()`; PEP 3153: a push
   * producer, so the protocol can be registered as its own transport's
   * producer.
   *
   * @example Holding back requests while one is being served
   * ```ts
   * import { Int32StringReceiver } from "@tulip/tulip/protocols";
   * import { assertEquals } from "@std/assert";
   *
   * const got: number[] = [];
   * const p = new Int32StringReceiver((data, self) => {
   *   got.push(data[0]);
   *   self.pauseProducing();
   * });
   * p.dataReceived(new Uint8Array([0, 0, 0, 1, 7, 0, 0, 0, 1, 8]));
   * assertEquals(got, [7]);
   * p.resumeProducing();
   * assertEquals(got, [7, 8]);
   * ```
   */
  pauseProducing(): void {
    this.#intake.pause(this.#transport);
  }

  /**
   * Frames the bytes held back since `pauseProducing()` and reads again —
   * unless one of the messages paused or stopped the protocol.
   *
   * Twisted: `IntNStringReceiver.resumeProducing()`.
   */
  resumeProducing(): void {
    this.#intake.resume(this.#transport);
  }

  /**
   * Closes the transport and drops any partial or held-back message: no
   * message is delivered any more. Twisted: `stopProducing()`.
   */
  stopProducing(): void {
    this.#message = null;
    this.#intake.stop(this.#transport);
  }

  #begin(size: number): void {
    this.#message = new Uint8Array(size);
    this.#messageLen = 0;
  }

  #deliver(message: Uint8Array): void {
    this.stringReceived(message);
    if (this.#transport?.isClosing()) this.#intake.stop();
  }

  #exceeded(size: number): void {
    this.lengthLimitExceeded(
      new LimitOverrunError(
        `Cannot receive a message: its length is over maxLength=${this.maxLength}, received ${size}`,
        size,
      ),
    );
    if (this.#transport?.isClosing()) this.#intake.stop();
  }
}

function readUint32(buf: Uint8Array, at: number): number {
  return ((buf[at] << 24) >>> 0) + (buf[at + 1] << 16) + (buf[at + 2] << 8) +
    buf[at + 3];
}
