/**
 * `WriteFlowControl`: the write-buffer water marks and PEP 3153 producer
 * registration that every writing transport shares.
 *
 * @module
 */

import { InvalidStateError } from "../futures/errors.ts";
import { PeerLog } from "../protocols/peer_log.ts";
import type { ExceptionContext, SchedulingLoop } from "../loop/event_loop.ts";
import type { Handle } from "../loop/handle.ts";
import type { BaseTransport, Producer } from "./transport.ts";

/** The default high-water mark, in bytes (64 KiB, as in asyncio). */
const DEFAULT_HIGH = 64 * 1024;

/** Options for `WriteFlowControl`. */
export interface WriteFlowControlOptions {
  /**
   * The high-water mark in bytes.
   *
   * @default {65536, or 4 × `low` when only `low` is given}
   */
  high?: number;
  /**
   * The low-water mark in bytes.
   *
   * @default {`high / 4`}
   */
  low?: number;
}

function checkLimit(name: string, value: unknown): void {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot set write buffer limits: ${name} must be a number, received ${typeof value}`,
    );
  }
  if (Number.isNaN(value) || value < 0) {
    throw new RangeError(
      `Cannot set write buffer limits: ${name} must be >= 0, received ${name}=${value}`,
    );
  }
}

/**
 * Works out the `[high, low]` water marks from optional values, the way
 * asyncio does: `high` defaults to 64 KiB (or 4 × `low`), `low` to
 * `high / 4`, rounded down.
 */
function resolveLimits(high?: number, low?: number): [number, number] {
  if (high !== undefined) checkLimit("high", high);
  if (low !== undefined) checkLimit("low", low);
  const h = high ?? (low === undefined ? DEFAULT_HIGH : 4 * low);
  const l = low ?? Math.floor(h / 4);
  if (!(h >= l)) {
    throw new RangeError(
      `Cannot set write buffer limits: high must be >= low, received high=${h} low=${l}`,
    );
  }
  return [h, l];
}

/**
 * The write side's flow control, for any transport that buffers writes:
 * the protocol's `pauseWriting()` / `resumeWriting()` driven by the
 * high- and low-water marks, and a PEP 3153 producer paused, resumed or
 * asked for more by the same marks.
 *
 * The transport owns the buffer and reports its size with `update(size)`
 * after every change (a write queued, a write completed). Then:
 *
 * - when the size goes strictly above the high-water mark, the protocol's
 *   `pauseWriting()` is called once (and a push producer's
 *   `pauseProducing()`);
 * - when it then drains to the low-water mark or below, the protocol's
 *   `resumeWriting()` is called once (and a push producer's
 *   `resumeProducing()`, unless `resumeWriting()` wrote the buffer past
 *   the high-water mark again: then the producer stays paused, and a pull
 *   producer is not asked);
 * - a pull producer's `resumeProducing()` is called when it is registered,
 *   and again each time the buffer shrinks to the low-water mark or below;
 *   a transport whose write went out at once, leaving the buffer no bigger,
 *   says so with `sentAtOnce()`, and the producer is asked on the loop's
 *   next turn (no drain will follow to ask it).
 *
 * Errors thrown by the protocol or the producer in these callbacks never
 * reach the transport: they go to the loop's exception handler, the first
 * of each callback whole (as `PeerLog` pays for it), the rest counted in
 * one line at `close()`, since a peer that reads now and then makes them
 * again and again.
 * `endWrites()` stops the producer (`stopProducing()`) when the
 * transport's write side ends (`writeEof()` or `close()`), while the
 * protocol still hears `resumeWriting()` as the buffer drains; `close()`
 * stops it when the transport loses its connection, and afterwards
 * nothing more is called.
 *
 * PEP 3156: the transport's write-buffer limits (asyncio's
 * `FlowControlMixin`). PEP 3153: consumers and producers.
 *
 * @example Pausing and resuming a protocol
 * ```ts
 * import { WriteFlowControl } from "@tulip/tulip/transports";
 * import type { BaseTransport } from "@tulip/tulip/transports";
 * import { BaseProtocol } from "@tulip/tulip/protocols";
 * import { BaseEventLoop } from "@tulip/tulip/loop";
 * import { assertEquals } from "@std/assert";
 *
 * const calls: string[] = [];
 * class P extends BaseProtocol {
 *   override pauseWriting() { calls.push("pause"); }
 *   override resumeWriting() { calls.push("resume"); }
 * }
 * const protocol = new P();
 * const transport = { getProtocol: () => protocol } as unknown as BaseTransport;
 * const loop = new BaseEventLoop();
 * const flow = new WriteFlowControl(loop, transport, { high: 100 });
 * assertEquals(flow.getWriteBufferLimits(), [25, 100]);
 * flow.update(100); // at the mark: not above it
 * flow.update(101);
 * flow.update(30);
 * flow.update(25);
 * assertEquals(calls, ["pause", "resume"]);
 * loop.close();
 * ```
 *
 * @example A pull producer asked for more as the buffer drains
 * ```ts
 * import { WriteFlowControl } from "@tulip/tulip/transports";
 * import type { BaseTransport } from "@tulip/tulip/transports";
 * import { BaseProtocol } from "@tulip/tulip/protocols";
 * import { BaseEventLoop } from "@tulip/tulip/loop";
 * import { assertEquals } from "@std/assert";
 *
 * const protocol = new BaseProtocol();
 * const transport = { getProtocol: () => protocol } as unknown as BaseTransport;
 * const loop = new BaseEventLoop();
 * const flow = new WriteFlowControl(loop, transport);
 * let asked = 0;
 * flow.registerProducer({ resumeProducing: () => { asked++; } }, false);
 * assertEquals(asked, 1); // asked once on registration
 * flow.update(1000); // it wrote
 * flow.update(0); // the write completed: asked again
 * assertEquals(asked, 2);
 * loop.close();
 * ```
 */
export class WriteFlowControl {
  readonly #loop: SchedulingLoop;
  // Reports the callbacks' failures; made on the first.
  #log: PeerLog | null = null;
  readonly #transport: BaseTransport;
  #high: number;
  #low: number;
  #size = 0;
  #paused = false;
  #closed = false;
  #writesEnded = false;
  #producer: Producer | null = null;
  #streaming = false;
  #producerPaused = false;
  #nextAsk: Handle | null = null;

  /**
   * Makes the flow control of one transport.
   *
   * @param loop The loop whose exception handler receives callback errors.
   * @param transport The transport; its current protocol (`getProtocol()`)
   * is the one paused and resumed.
   * @param options The initial water marks.
   * @throws {RangeError} When the marks are negative or `high < low`.
   * @throws {TypeError} When a mark is not a number.
   */
  constructor(
    loop: SchedulingLoop,
    transport: BaseTransport,
    options?: WriteFlowControlOptions,
  ) {
    this.#loop = loop;
    this.#transport = transport;
    [this.#high, this.#low] = resolveLimits(options?.high, options?.low);
  }

  /**
   * Sets the water marks, in bytes, and applies them to the current size
   * at once (a buffer now above `high` pauses the protocol).
   *
   * PEP 3156: `WriteTransport.set_write_buffer_limits()`.
   *
   * @param high The high-water mark in bytes; defaults to 64 KiB, or to
   * 4 × `low` when only `low` is given.
   * @param low The low-water mark in bytes; defaults to `high / 4`.
   * @throws {RangeError} When a mark is negative or `high < low`.
   * @throws {TypeError} When a mark is not a number.
   */
  setWriteBufferLimits(high?: number, low?: number): void {
    [this.#high, this.#low] = resolveLimits(high, low);
    this.#check(this.#size, false);
  }

  /**
   * Returns the water marks, as PEP 3156 orders them.
   *
   * PEP 3156: `WriteTransport.get_write_buffer_limits()`.
   *
   * @returns `[low, high]`, in bytes.
   */
  getWriteBufferLimits(): [number, number] {
    return [this.#low, this.#high];
  }

  /**
   * Returns `true` while the protocol is paused (between `pauseWriting()`
   * and `resumeWriting()`).
   *
   * @returns Whether writing is paused.
   */
  isPaused(): boolean {
    return this.#paused;
  }

  /**
   * Returns the registered producer, or `null`.
   *
   * @returns The producer.
   */
  get producer(): Producer | null {
    return this.#producer;
  }

  /**
   * Tells the flow control the buffer's new size, in bytes, after any
   * change. Calls the protocol and producer as the class explains.
   *
   * @param size The number of bytes buffered and not yet sent.
   */
  update(size: number): void {
    const shrank = size < this.#size;
    this.#size = size;
    this.#check(size, shrank);
  }

  /**
   * Tells the flow control that a write went out at once and left the
   * buffer no bigger (an in-memory transport whose peer had room): no
   * drain will follow it, so a registered pull producer is asked for more
   * on the loop's next turn instead, if the buffer is then still at or
   * below the low-water mark. Several such writes in one turn ask once;
   * a drain before that turn asks in its place. A push producer is not
   * concerned: it was never paused.
   *
   * PEP 3153: a pull producer is asked for more as the buffer drains
   * (Twisted's `IPullProducer`, asked after each write is flushed).
   *
   * @example A pull producer asked again after a write the peer took whole
   * ```ts
   * import { WriteFlowControl } from "@tulip/tulip/transports";
   * import type { BaseTransport } from "@tulip/tulip/transports";
   * import { BaseProtocol } from "@tulip/tulip/protocols";
   * import { BaseEventLoop } from "@tulip/tulip/loop";
   * import { assertEquals } from "@std/assert";
   *
   * const protocol = new BaseProtocol();
   * const transport = { getProtocol: () => protocol } as unknown as BaseTransport;
   * const loop = new BaseEventLoop();
   * const flow = new WriteFlowControl(loop, transport);
   * let asked = 0;
   * flow.registerProducer({
   *   resumeProducing() {
   *     if (++asked === 3) loop.stop();
   *     flow.sentAtOnce(); // it wrote, and the bytes went straight out
   *   },
   * }, false);
   * await loop.runForever();
   * assertEquals(asked, 3); // once on registration, then once a turn
   * loop.close();
   * ```
   */
  sentAtOnce(): void {
    if (
      this.#closed || this.#producer === null || this.#streaming ||
      this.#nextAsk !== null
    ) return;
    this.#nextAsk = this.#loop.callSoon(() => {
      this.#nextAsk = null;
      const producer = this.#producer;
      if (producer === null || this.#streaming || this.#size > this.#low) {
        return;
      }
      this.#callProducer(producer, "resumeProducing");
    });
  }

  /**
   * Registers a PEP 3153 producer that writes into this transport. A push
   * producer (`streaming = true`) is paused above the high-water mark and
   * resumed at the low one — paused at once if the buffer is already
   * full; a pull producer (`streaming = false`) is asked for data at once
   * and again each time the buffer drains to the low-water mark. After
   * `close()` or `endWrites()`, the producer is stopped at once.
   *
   * PEP 3153: `Consumer.register_producer()`.
   *
   * @param producer The producer.
   * @param streaming `true` for a push producer, `false` for a pull one.
   * @throws {InvalidStateError} When a producer is already registered.
   * @throws {TypeError} When a push producer lacks `pauseProducing()`, or
   * `producer` has no `resumeProducing()`.
   */
  registerProducer(producer: Producer, streaming: boolean): void {
    if (this.#producer !== null) {
      throw new InvalidStateError(
        "Cannot register a producer: one is already registered, received a second one",
      );
    }
    if (typeof producer?.resumeProducing !== "function") {
      throw new TypeError(
        `Cannot register a producer: resumeProducing() must be a function, received ${typeof producer
          ?.resumeProducing}`,
      );
    }
    if (streaming && typeof producer.pauseProducing !== "function") {
      throw new TypeError(
        `Cannot register a push producer: pauseProducing() must be a function, received ${typeof producer
          .pauseProducing}`,
      );
    }
    if (this.#closed || this.#writesEnded) {
      this.#callProducer(producer, "stopProducing");
      return;
    }
    this.#producer = producer;
    this.#streaming = streaming;
    this.#producerPaused = false;
    if (!streaming) this.#askPull(producer);
    else if (this.#paused) this.#pausePush();
  }

  /**
   * Forgets the registered producer, if any; it is not called again.
   *
   * PEP 3153: `Consumer.unregister_producer()`.
   */
  unregisterProducer(): void {
    this.#producer = null;
    this.#cancelNextAsk();
  }

  /**
   * The transport's write side is over (`writeEof()`, or the transport's
   * own `close()`): it can take no more data ever, so the producer's
   * `stopProducing()` is called and the producer forgotten, and one
   * registered later is stopped at once. The protocol's `pauseWriting()` /
   * `resumeWriting()` go on as the buffer drains, as asyncio's transports
   * call `resume_writing()` while a `close()` flushes. Calling it again,
   * or after `close()`, does nothing.
   *
   * PEP 3153: a consumer tells its producer to stop for good. Twisted:
   * `IProducer.stopProducing()`.
   *
   * @example A half-closed transport stops its producer
   * ```ts
   * import { WriteFlowControl } from "@tulip/tulip/transports";
   * import type { BaseTransport } from "@tulip/tulip/transports";
   * import { BaseProtocol } from "@tulip/tulip/protocols";
   * import { BaseEventLoop } from "@tulip/tulip/loop";
   * import { assertEquals } from "@std/assert";
   *
   * const protocol = new BaseProtocol();
   * const transport = { getProtocol: () => protocol } as unknown as BaseTransport;
   * const loop = new BaseEventLoop();
   * const flow = new WriteFlowControl(loop, transport);
   * const calls: string[] = [];
   * flow.registerProducer({
   *   resumeProducing: () => calls.push("resume"),
   *   stopProducing: () => calls.push("stop"),
   * }, false);
   * flow.endWrites(); // the transport's writeEof()
   * flow.update(1000);
   * flow.update(0); // drained: nobody is asked for more
   * assertEquals(calls, ["resume", "stop"]);
   * assertEquals(flow.producer, null);
   * loop.close();
   * ```
   */
  endWrites(): void {
    if (this.#closed || this.#writesEnded) return;
    this.#writesEnded = true;
    this.#stopProducer();
  }

  /**
   * The transport lost its connection (`abort()`, an error, or
   * `connectionLost` once a `close()` has flushed): the producer's
   * `stopProducing()` is called and the producer forgotten, and nothing
   * is called any more. Calling it again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopProducer();
    this.#log?.close("Transport", { transport: this.#transport });
  }

  #stopProducer(): void {
    const producer = this.#producer;
    this.#producer = null;
    this.#cancelNextAsk();
    if (producer !== null) this.#callProducer(producer, "stopProducing");
  }

  #check(size: number, shrank: boolean): void {
    if (this.#closed) return;
    // The protocol's callback may write (or drain) at once: what follows
    // it looks at the state it left, not at `size`.
    if (!this.#paused) {
      if (size > this.#high) {
        this.#paused = true;
        this.#callProtocol("pauseWriting");
        if (this.#paused) this.#pausePush();
      }
    } else if (size <= this.#low) {
      this.#paused = false;
      this.#callProtocol("resumeWriting");
      if (!this.#paused) this.#resumePush();
    }
    if (shrank && this.#size <= this.#low && !this.#streaming) {
      const producer = this.#producer;
      if (producer !== null) this.#askPull(producer);
    }
  }

  /** Pauses a push producer, unless it is paused already. */
  #pausePush(): void {
    const producer = this.#producer;
    if (producer === null || !this.#streaming || this.#producerPaused) return;
    this.#producerPaused = true;
    this.#callProducer(producer, "pauseProducing");
  }

  /** Resumes a push producer this flow control paused. */
  #resumePush(): void {
    const producer = this.#producer;
    if (producer === null || !this.#streaming || !this.#producerPaused) return;
    this.#producerPaused = false;
    this.#callProducer(producer, "resumeProducing");
  }

  /** Asks a pull producer for more now, in place of a next-turn ask. */
  #askPull(producer: Producer): void {
    this.#cancelNextAsk();
    this.#callProducer(producer, "resumeProducing");
  }

  #cancelNextAsk(): void {
    this.#nextAsk?.cancel();
    this.#nextAsk = null;
  }

  #callProtocol(method: "pauseWriting" | "resumeWriting"): void {
    const protocol = this.#transport.getProtocol();
    try {
      protocol[method]();
    } catch (exception) {
      // A CancelledError too: no task waits here to receive it.
      this.#report(method, {
        message: `protocol.${method}() failed`,
        exception,
        transport: this.#transport,
        protocol,
      });
    }
  }

  #callProducer(
    producer: Producer,
    method: "pauseProducing" | "resumeProducing" | "stopProducing",
  ): void {
    try {
      producer[method]?.();
    } catch (exception) {
      // A CancelledError too: no task waits here to receive it.
      this.#report(method, {
        message: `producer.${method}() failed`,
        exception,
        transport: this.#transport,
        producer,
      });
    }
  }

  /** Reports a callback's failure to the log, by callback (see above). */
  #report(method: string, context: ExceptionContext): void {
    this.#log ??= new PeerLog({ loop: this.#loop });
    this.#log.report(`${method}() failures`, context);
  }
}

/**
 * A base for a transport whose water marks and producer are kept by a
 * `WriteFlowControl`: it gives the transport `getWriteBufferLimits()`,
 * `setWriteBufferLimits()`, `registerProducer()` and
 * `unregisterProducer()`, each acting on the flow control that
 * `flowControl()` returns. The transport still reports its buffer's size
 * with `WriteFlowControl.update()` and closes the flow control when it
 * closes.
 *
 * PEP 3156: the transport's write-buffer limits (asyncio's
 * `_FlowControlMixin`). PEP 3153: consumers and producers.
 *
 * @example A transport that only counts what it is asked to write
 * ```ts
 * import {
 *   FlowControlledTransport,
 *   WriteFlowControl,
 * } from "@tulip/tulip/transports";
 * import { BaseProtocol } from "@tulip/tulip/protocols";
 * import { BaseEventLoop } from "@tulip/tulip/loop";
 * import { assertEquals } from "@std/assert";
 *
 * const calls: string[] = [];
 * class P extends BaseProtocol {
 *   override pauseWriting() { calls.push("pause"); }
 * }
 * class Counting extends FlowControlledTransport {
 *   readonly protocol = new P();
 *   readonly #flow: WriteFlowControl;
 *   #size = 0;
 *   constructor(loop: BaseEventLoop) {
 *     super();
 *     this.#flow = new WriteFlowControl(loop, this);
 *   }
 *   getExtraInfo(_name: string, defaultValue?: unknown) { return defaultValue; }
 *   isClosing() { return false; }
 *   close() { this.#flow.close(); }
 *   setProtocol() {}
 *   getProtocol() { return this.protocol; }
 *   write(data: Uint8Array) { this.#flow.update(this.#size += data.length); }
 *   protected flowControl(): WriteFlowControl { return this.#flow; }
 * }
 * const loop = new BaseEventLoop();
 * const transport = new Counting(loop);
 * transport.setWriteBufferLimits(4);
 * assertEquals(transport.getWriteBufferLimits(), [1, 4]);
 * transport.write(new Uint8Array(5));
 * assertEquals(calls, ["pause"]);
 * loop.close();
 * ```
 */
export abstract class FlowControlledTransport {
  /**
   * Returns the flow control the water-mark and producer methods act on
   * (a transport may make it on first need).
   *
   * @returns The transport's flow control.
   */
  protected abstract flowControl(): WriteFlowControl;

  /**
   * Returns the water marks, as PEP 3156 orders them.
   *
   * PEP 3156: `WriteTransport.get_write_buffer_limits()`.
   *
   * @returns `[low, high]`, in bytes.
   */
  getWriteBufferLimits(): [number, number] {
    return this.flowControl().getWriteBufferLimits();
  }

  /**
   * Sets the water marks, in bytes; a buffer now above `high` pauses the
   * protocol at once.
   *
   * PEP 3156: `WriteTransport.set_write_buffer_limits()`.
   *
   * @param high The high-water mark in bytes; defaults to 64 KiB, or to
   * 4 × `low` when only `low` is given.
   * @param low The low-water mark in bytes; defaults to `high / 4`.
   * @throws {RangeError} When a mark is negative or `high < low`.
   * @throws {TypeError} When a mark is not a number.
   */
  setWriteBufferLimits(high?: number, low?: number): void {
    this.flowControl().setWriteBufferLimits(high, low);
  }

  /**
   * Registers a PEP 3153 producer that writes into this transport; see
   * `WriteFlowControl.registerProducer()`.
   *
   * PEP 3153: `Consumer.register_producer()`.
   *
   * @param producer The producer.
   * @param streaming `true` for a push producer, `false` for a pull one.
   * @throws {InvalidStateError} When a producer is already registered.
   * @throws {TypeError} When the producer lacks a method it needs.
   */
  registerProducer(producer: Producer, streaming: boolean): void {
    this.flowControl().registerProducer(producer, streaming);
  }

  /**
   * Forgets the registered producer, if any; it is not called again.
   *
   * PEP 3153: `Consumer.unregister_producer()`.
   */
  unregisterProducer(): void {
    this.flowControl().unregisterProducer();
  }
}
