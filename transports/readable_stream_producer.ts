/**
 * `ReadableStreamProducer`: a PEP 3153 push producer that writes a Web
 * `ReadableStream` of bytes into a transport, paced by its write buffer.
 *
 * @module
 */

import { InvalidStateError } from "../futures/errors.ts";
import { Future } from "../futures/future.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { DatagramTransport, Producer } from "./transport.ts";
import { checkOptions } from "../futures/_runtime.ts";

/**
 * What a producer writes into: PEP 3153's consumer. Every `WriteTransport`
 * is one, and so is a `StreamWriter`.
 *
 * PEP 3153: `Consumer`; Twisted: `IConsumer`.
 */
export interface Consumer {
  /** Queues bytes for sending; never blocks. */
  write(data: Uint8Array): void;
  /** Registers the producer that writes into this consumer. */
  registerProducer(producer: Producer, streaming: boolean): void;
  /** Forgets the registered producer. */
  unregisterProducer(): void;
  /** Returns `true` once the consumer is closing or closed. */
  isClosing(): boolean;
  /** Closes the write end after the buffered data is sent. */
  writeEof(): void;
  /** Returns `true` when `writeEof()` is supported. */
  canWriteEof(): boolean;
  /** Closes after the buffered data is sent. */
  close(): void;
}

/** Options for `ReadableStreamProducer`. */
export interface ReadableStreamProducerOptions {
  /**
   * What to do with the consumer after the stream's last chunk:
   * `"writeEof"` half-closes it (or closes it when it cannot half-close),
   * `"close"` closes it, `"none"` leaves it open for more writes. Nothing
   * is done when the transfer fails or is stopped.
   *
   * @default {"none"}
   */
  end?: "writeEof" | "close" | "none";
  /**
   * The loop of the future that `start()` returns.
   *
   * @default {the running loop}
   */
  loop?: SchedulingLoop;
}

const ENDS = ["writeEof", "close", "none"];

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "object") {
    return value.constructor?.name ?? "object";
  }
  return typeof value;
}

/**
 * A push producer that reads a Web `ReadableStream<Uint8Array>` — a file's
 * `readable`, a `fetch` body, any stream of bytes — and writes its chunks
 * into a transport or other consumer, reading only while the consumer
 * wants more.
 *
 * `start(consumer)` registers the producer on the consumer
 * (`registerProducer(producer, true)`) and returns a future. The producer
 * keeps one read in flight; each chunk is written as it comes. When the
 * consumer's buffer goes above its high-water mark it calls
 * `pauseProducing()`: no new read starts, and a chunk that arrives
 * meanwhile is held (at most one) until `resumeProducing()`. So at most the
 * high-water mark plus one chunk is ever buffered, however fast the stream
 * and however slow the peer.
 *
 * The future resolves with the number of bytes written once the stream
 * ends, after the producer unregisters and the `end` option has run. It
 * fails, and the stream is cancelled (so a file is closed), when:
 * - the stream errors: with the stream's error;
 * - a chunk is not a `Uint8Array`: with a `TypeError`;
 * - `write()` throws (the consumer closed under it): with that error;
 * - the consumer closes, ends its writes (`writeEof()`) or loses its
 *   connection, which calls `stopProducing()`, or the caller calls it:
 *   with an `Error` saying how many bytes were written.
 * Cancelling the future stops the producer and cancels the stream too.
 * The consumer itself is left alone on failure: closing it is the
 * caller's choice.
 *
 * A `DatagramTransport` is a consumer too: each chunk is sent as one
 * datagram to the endpoint's remote address, paced by the send queue's
 * water marks instead of overflowing it (a full queue drops datagrams). So
 * the stream must yield datagram-sized chunks — messages from a
 * `TransformStream`, say, not a file's 64 KiB reads. `end` closes the
 * endpoint for `"writeEof"` and `"close"` alike.
 *
 * PEP 3153: producers and consumers. Twisted: `FileSender`, `IPushProducer`.
 *
 * @example Sending a stream through a transport, with back-pressure
 * ```ts
 * import { ReadableStreamProducer } from "@tulip/tulip/transports";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { Protocol } from "@tulip/tulip/protocols";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * class Sink extends Protocol {
 *   received = 0;
 *   override dataReceived(data: Uint8Array) { this.received += data.length; }
 * }
 * const sink = new Sink();
 * // The peer reads 100 bytes a second: the writer's buffer fills.
 * const [ta] = transportPair(new Protocol(), sink, {
 *   loop, bufferSize: 0, chunkSize: 100, delay: 1,
 * });
 * ta.setWriteBufferLimits(1000);
 * let pulled = 0;
 * const stream = new ReadableStream<Uint8Array>({
 *   pull(controller) {
 *     if (pulled === 10) return controller.close();
 *     pulled++;
 *     controller.enqueue(new Uint8Array(500));
 *   },
 * }, { highWaterMark: 0 });
 * const producer = new ReadableStreamProducer(stream, { loop, end: "close" });
 * const sent = await loop.runUntilComplete(producer.start(ta));
 * assertEquals(sent, 5000);
 * assertEquals(sink.received >= 3000, true); // it waited for the slow peer
 * loop.close();
 * ```
 *
 * @example A file over a connection
 * ```ts ignore
 * import { newEventLoop, Protocol } from "@tulip/tulip";
 * import { ReadableStreamProducer } from "@tulip/tulip/transports";
 *
 * const loop = newEventLoop();
 * const [transport] = await loop.runUntilComplete(
 *   loop.createConnection(() => new Protocol(), "127.0.0.1", 8888),
 * );
 * const file = await Deno.open("big.bin");
 * const producer = new ReadableStreamProducer(file.readable, { loop, end: "writeEof" });
 * const sent = await loop.runUntilComplete(producer.start(transport));
 * console.log(`${sent} bytes sent`);
 * ```
 */
export class ReadableStreamProducer implements Producer {
  readonly #stream: ReadableStream<Uint8Array>;
  readonly #end: "writeEof" | "close" | "none";
  readonly #loop: SchedulingLoop | undefined;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #consumer: Consumer | DatagramTransport | null = null;
  #send: ((chunk: Uint8Array) => void) | null = null;
  #done: Future<number> | null = null;
  #paused = false;
  #reading = false;
  #held: Uint8Array | null = null;
  #finished = false;
  #bytes = 0;

  /**
   * Makes a producer over `stream`; nothing is read before `start()`.
   *
   * @param stream The bytes to send.
   * @param options What to do at the end, and the loop.
   * @throws {TypeError} When `stream` is not a `ReadableStream`, or
   * `options` not an object (or its `loop` no event loop).
   * @throws {RangeError} When `end` is not one of its values.
   */
  constructor(
    stream: ReadableStream<Uint8Array>,
    options?: ReadableStreamProducerOptions,
  ) {
    if (!(stream instanceof ReadableStream)) {
      throw new TypeError(
        `Cannot make a ReadableStreamProducer: stream must be a ReadableStream, received ${
          describe(stream)
        }`,
      );
    }
    checkOptions(options, "make a ReadableStreamProducer", "{ end, loop }");
    const end = options?.end ?? "none";
    if (!ENDS.includes(end)) {
      throw new RangeError(
        `Cannot make a ReadableStreamProducer: end must be "writeEof", "close" or "none", received ${
          describe(end)
        }`,
      );
    }
    this.#stream = stream;
    this.#end = end;
    this.#loop = options?.loop;
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    const state = this.#finished
      ? "finished"
      : this.#consumer === null
      ? "idle"
      : this.#paused
      ? "paused"
      : "producing";
    return `ReadableStreamProducer ${state}`;
  }

  /** The number of bytes written into the consumer so far. */
  get bytesWritten(): number {
    return this.#bytes;
  }

  /**
   * Registers this producer on `consumer` as a push producer and starts
   * reading the stream into it.
   *
   * Twisted: `FileSender.beginFileTransfer()`.
   *
   * @param consumer The transport (or `StreamWriter`) to write into, or a
   * connected datagram transport to send each chunk to as a datagram.
   * @returns A future of the number of bytes written, as the class
   * explains.
   * @throws {InvalidStateError} When the producer was already started,
   * or the consumer has a producer already (then the stream is left
   * unlocked, and `start()` may be called again).
   * @throws {TypeError} When `consumer` lacks a consumer's methods
   * (`write()` or `sendto()`, `registerProducer()`), or the
   * stream is locked (another reader has it).
   */
  start(consumer: Consumer | DatagramTransport): Future<number> {
    if (this.#consumer !== null) {
      throw new InvalidStateError(
        "Cannot start the producer: it was already started, received a second start()",
      );
    }
    const methods = consumer as unknown as Record<string, unknown>;
    const datagrams = typeof methods?.write !== "function" &&
      typeof methods?.sendto === "function";
    for (
      const method of [
        datagrams ? "sendto" : "write",
        "registerProducer",
        "unregisterProducer",
      ]
    ) {
      const fn = methods?.[method];
      if (typeof fn !== "function") {
        throw new TypeError(
          `Cannot start the producer: the consumer's ${method}() must be a function, received ${typeof fn}`,
        );
      }
    }
    if (this.#finished) {
      throw new InvalidStateError(
        "Cannot start the producer: it was stopped, received start() after stopProducing()",
      );
    }
    if (this.#stream.locked) {
      throw new TypeError(
        "Cannot start the producer: the stream is locked by another reader, received a locked ReadableStream",
      );
    }
    const done = new Future<number>({ loop: this.#loop });
    this.#reader = this.#stream.getReader();
    this.#consumer = consumer;
    this.#send = datagrams
      ? (chunk) => (consumer as DatagramTransport).sendto(chunk)
      : (chunk) => (consumer as Consumer).write(chunk);
    this.#done = done;
    done.addDoneCallback((f) => {
      if (f.cancelled()) this.#fail(null);
    });
    try {
      // May call pauseProducing(), or stopProducing() on a closed consumer.
      consumer.registerProducer(this, true);
    } catch (error) {
      // Refused (the consumer has a producer already): as if never started.
      this.#reader.releaseLock();
      this.#reader = null;
      this.#consumer = null;
      this.#send = null;
      this.#done = null;
      this.#paused = false;
      throw error;
    }
    this.#pump();
    return done;
  }

  /**
   * Stops reading until `resumeProducing()`; called by the consumer when
   * its buffer is above the high-water mark. A read in flight completes
   * and its chunk is held.
   *
   * PEP 3153 / Twisted: `IPushProducer.pauseProducing()`.
   */
  pauseProducing(): void {
    this.#paused = true;
  }

  /**
   * Writes the held chunk, if any, and reads on; called by the consumer
   * when its buffer drained to the low-water mark.
   *
   * PEP 3153 / Twisted: `IProducer.resumeProducing()`.
   */
  resumeProducing(): void {
    this.#paused = false;
    this.#pump();
  }

  /**
   * Stops for good: cancels the stream and fails the future of `start()`
   * with an `Error` saying how many bytes were written. Called by the
   * consumer when it closes, ends its writes (`writeEof()`) or loses its
   * connection. Does nothing once the transfer is over.
   *
   * PEP 3153 / Twisted: `IProducer.stopProducing()`.
   */
  stopProducing(): void {
    this.#fail(
      new Error(
        `Cannot finish sending the stream: the consumer stopped the producer (it closed, ended its writes with writeEof() or lost its connection), received ${this.#bytes} bytes written`,
      ),
    );
  }

  #pump(): void {
    if (this.#finished || this.#paused || this.#reading) return;
    if (this.#reader === null) return;
    const held = this.#held;
    if (held !== null) {
      this.#held = null;
      if (!this.#write(held) || this.#paused) return;
    }
    this.#reading = true;
    this.#reader.read().then(this.#onRead, this.#onError);
  }

  #onRead = (result: ReadableStreamReadResult<Uint8Array>): void => {
    this.#reading = false;
    if (this.#finished) return;
    if (this.#done!.getLoop().isClosed()) {
      // Nobody can be told any more: just let the stream go.
      this.#finished = true;
      this.#cancelStream(undefined);
      return;
    }
    if (result.done) return this.#complete();
    const chunk: unknown = result.value;
    if (!(chunk instanceof Uint8Array)) {
      return this.#fail(
        new TypeError(
          `Cannot write the stream's chunk: chunks must be Uint8Array, received ${
            describe(chunk)
          }`,
        ),
      );
    }
    if (this.#paused) {
      this.#held = chunk;
      return;
    }
    if (this.#write(chunk)) this.#pump();
  };

  #onError = (error: unknown): void => {
    this.#reading = false;
    if (this.#finished) return;
    this.#fail(error);
  };

  // Returns false when the write failed (and the transfer with it).
  #write(chunk: Uint8Array): boolean {
    try {
      this.#send!(chunk);
    } catch (error) {
      this.#fail(error);
      return false;
    }
    this.#bytes += chunk.length;
    return true;
  }

  #complete(): void {
    this.#finished = true;
    const consumer = this.#consumer!;
    try {
      consumer.unregisterProducer();
      if (this.#end !== "none" && !consumer.isClosing()) {
        if (
          this.#end === "writeEof" && "canWriteEof" in consumer &&
          consumer.canWriteEof()
        ) {
          consumer.writeEof();
        } else consumer.close();
      }
    } catch (error) {
      this.#settle(false, error);
      return;
    }
    this.#reader!.releaseLock();
    this.#settle(true, undefined);
  }

  // Ends the transfer with `error` (null: the future was cancelled).
  #fail(error: unknown): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#held = null;
    if (this.#consumer !== null) {
      try {
        this.#consumer.unregisterProducer();
      } catch {
        // A consumer that cannot forget us is closing anyway.
      }
    }
    this.#cancelStream(error ?? undefined);
    if (error !== null) this.#settle(false, error);
  }

  #cancelStream(reason: unknown): void {
    // A failing cancel has no one to tell: the transfer's own error wins.
    this.#reader?.cancel(reason).then(undefined, () => {});
  }

  #settle(ok: boolean, error: unknown): void {
    const done = this.#done;
    if (done === null || done.done() || done.getLoop().isClosed()) return;
    if (ok) done.setResult(this.#bytes);
    else done.setException(error);
  }
}
