/**
 * `transportPair`: two stream protocols joined in memory, with full
 * transport semantics and knobs to split, delay and reset the traffic.
 *
 * @module
 */

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import type {
  BaseProtocol,
  BufferedProtocol,
  Protocol,
} from "../protocols/protocol.ts";
import { WriteBuffer } from "../transports/write_buffer.ts";
import type { Transport } from "../transports/transport.ts";
import { connectionReset } from "./_deno_errors.ts";
import { StreamEnd } from "./_stream_end.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** Options for `transportPair`. */
export interface TransportPairOptions {
  /**
   * The loop that delivers the data and runs the protocols' callbacks.
   *
   * @default {the running loop}
   */
  loop?: SchedulingLoop;
  /**
   * How many bytes each `dataReceived` carries at most: a number for a
   * fixed size, or a list of sizes used in turn (cycled, separately for
   * each direction). Deliveries cut across write boundaries, as TCP reads
   * do. Give `chunkSize` or `split`, not both.
   *
   * @default {everything waiting, in one delivery}
   */
  chunkSize?: number | readonly number[];
  /**
   * Decides the size of each delivery: called with how many bytes this
   * direction has delivered so far (`offset`) and how many are waiting
   * (`available`); returns the size of the next delivery, which is
   * clamped to 1 … `available`. For example a single split point `k`:
   * `(offset) => offset < k ? k - offset : Infinity`.
   *
   * @default {everything waiting, in one delivery}
   */
  split?: (offset: number, available: number) => number;
  /**
   * The time, in seconds, between a delivery being due and its arrival;
   * each delivery (and the end of the stream) waits this long, except the
   * bytes of one that a `BufferedProtocol`'s buffer held back, which come
   * next, as bytes that arrived. With 0, deliveries go through `callSoon`.
   *
   * @default {0}
   */
  delay?: number;
  /**
   * Resets the connection after this many bytes were delivered, counted
   * over both directions: the last delivery is cut at that byte, every
   * buffered byte is dropped, and both protocols get `connectionLost` with
   * a `Deno.errors.ConnectionReset`.
   *
   * @default {Infinity}
   */
  resetAfter?: number;
  /**
   * The receiving side's buffer, in bytes (a socket's receive buffer):
   * what a writer may send beyond what its peer has read before the bytes
   * count in the writer's `getWriteBufferSize()`. With the default the
   * writer's buffer is always empty; a small size, with the peer slow or
   * paused, drives `pauseWriting()` / `resumeWriting()` and producers.
   *
   * @default {Infinity}
   */
  bufferSize?: number;
  /**
   * The addresses of the two ends, A's then B's: A's `"sockname"` is the
   * first and its `"peername"` the second, and the reverse for B.
   *
   * @default {127.0.0.1 ports 40001 and 40002, over "tcp"}
   */
  addresses?: [Deno.Addr, Deno.Addr];
}

/** The bytes one side has written and the other not yet read. */
class Link extends WriteBuffer {
  /** Bytes delivered so far. */
  delivered = 0;
  /** Index into a `chunkSize` list. */
  turn = 0;
  /** The writer sent its end of stream. */
  eof = false;
  /** The end of stream was delivered. */
  eofDelivered = false;
}

/** What the two ends share: the loop, the options, the reset budget. */
interface Shared {
  loop: SchedulingLoop;
  nextSize: (link: Link) => number;
  delay: number;
  bufferSize: number;
  resetLeft: number;
  ends: [PairTransport, PairTransport];
}

// Each end's write path has StreamEnd's three states; here the bytes sent
// wait in the link to the peer, the part beyond the peer's bufferSize
// counting as this end's write buffer.
class PairTransport extends StreamEnd {
  readonly #shared: Shared;
  #protocol: Protocol | BufferedProtocol;
  #peer!: PairTransport;
  readonly #out = new Link();
  #in!: Link;
  readonly #extra: Record<string, unknown>;
  // Bytes of the last delivery a buffered protocol's buffer held back:
  // they arrived with it, so they come next without a delay.
  #heldBack = 0;

  constructor(
    shared: Shared,
    protocol: Protocol | BufferedProtocol,
    extra: Record<string, unknown>,
  ) {
    super(shared.loop);
    this.#shared = shared;
    this.#protocol = protocol;
    this.#extra = extra;
  }

  static join(a: PairTransport, b: PairTransport): void {
    a.#peer = b;
    b.#peer = a;
    a.#in = b.#out;
    b.#in = a.#out;
  }

  protected get label(): string {
    return "PairTransport";
  }

  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    return Object.hasOwn(this.#extra, name) ? this.#extra[name] : defaultValue;
  }

  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol as Protocol;
  }

  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  getWriteBufferSize(): number {
    if (this.lost) return 0;
    return Math.max(0, this.#out.size - this.#shared.bufferSize);
  }

  /**
   * Calls the protocol's `connectionMade`; scheduled by `transportPair`.
   * One that throws is reported and loses the connection.
   */
  connect(): void {
    this.connectionMade();
  }

  /** Resets the connection: both ends lose it with `ConnectionReset`. */
  reset(): void {
    this.#breakWith(connectionReset("Connection reset by peer"));
  }

  protected send(data: Uint8Array): void {
    const peer = this.#peer;
    // A peer that closed reads nothing more: the bytes go nowhere.
    if (peer.closeCalled || peer.lost) return;
    this.#out.push(data);
    this.flow.update(this.getWriteBufferSize());
    peer.schedule();
  }

  protected sendEof(): void {
    this.#out.eof = true;
    this.#peer.schedule();
  }

  protected startClose(): void {
    this.#stopReading();
    this.sendEof();
    this.#maybeFinishClose();
  }

  protected startAbort(): void {
    this.#breakWith(undefined);
  }

  protected broken(exc: Error): void {
    this.#breakWith(exc);
  }

  protected dropped(exc: Error | undefined): void {
    this.loop.callSoon(() => this.notifyLost(exc));
  }

  // Loses the connection at once: this end with `exc`, the peer (if still
  // there) with a reset; every buffered byte is dropped. Both ends are
  // marked lost first, so the dropped bytes resume no writer.
  #breakWith(exc: Error | undefined): void {
    const peer = this.#peer;
    this.lose(exc);
    peer.lose(connectionReset("Connection reset by peer"));
    for (const end of [this, peer]) {
      end.#out.clear();
      end.#stopReading();
    }
  }

  #stopReading(): void {
    this.reading = false;
    this.delivery?.cancel();
    this.delivery = null;
    if (this.#in.size > 0) {
      this.#in.clear();
      this.#peer.flow.update(this.#peer.getWriteBufferSize());
      // A peer closing meanwhile has nothing left to flush.
      this.#peer.#maybeFinishClose();
    }
  }

  #maybeFinishClose(): void {
    if (this.closeCalled && !this.lost && this.getWriteBufferSize() === 0) {
      this.lose(undefined);
    }
  }

  // Schedules the next delivery to this end, if there is something to
  // deliver and this end reads.
  protected schedule(): void {
    if (this.delivery !== null || !this.reading) return;
    if (this.closeCalled || this.lost) return;
    const link = this.#in;
    if (link.size === 0 && !(link.eof && !link.eofDelivered)) return;
    const { loop, delay } = this.#shared;
    this.delivery = delay > 0 && this.#heldBack === 0
      ? loop.callLater(delay, this.#deliver)
      : loop.callSoon(this.#deliver);
  }

  #deliver = (): void => {
    this.delivery = null;
    if (!this.reading || this.closeCalled || this.lost) return;
    const shared = this.#shared;
    const link = this.#in;
    const peer = this.#peer;
    if (link.size > 0) {
      if (shared.resetLeft === 0) return this.reset();
      const due = Math.min(
        this.#heldBack > 0 ? this.#heldBack : shared.nextSize(link),
        shared.resetLeft,
      );
      const n = this.portion(due);
      if (n < 0) return;
      this.#heldBack = due - n;
      const data = link.take(n);
      link.delivered += n;
      shared.resetLeft -= n;
      if (!peer.lost) peer.flow.update(peer.getWriteBufferSize());
      peer.#maybeFinishClose();
      if (!this.feed(data)) return;
      if (shared.resetLeft === 0) return this.reset();
    } else if (link.eof && !link.eofDelivered) {
      link.eofDelivered = true;
      this.deliverEof();
    }
    this.schedule();
  };
}

function sizer(
  chunkSize: number | readonly number[] | undefined,
  split: ((offset: number, available: number) => number) | undefined,
): (link: Link) => number {
  if (chunkSize !== undefined && split !== undefined) {
    throw new RangeError(
      "Cannot make a transport pair: give chunkSize or split, received both",
    );
  }
  const clamp = (n: number, available: number) =>
    n >= available ? available : n >= 1 ? Math.floor(n) : 1;
  if (split !== undefined) {
    if (typeof split !== "function") {
      throw new TypeError(
        `Cannot make a transport pair: split must be a function, received ${typeof split}`,
      );
    }
    return (link) => clamp(split(link.delivered, link.size), link.size);
  }
  if (chunkSize === undefined) return (link) => link.size;
  const sizes = typeof chunkSize === "number" ? [chunkSize] : [...chunkSize];
  if (
    sizes.length === 0 ||
    !sizes.every((n) =>
      typeof n === "number" && (n === Infinity || Number.isSafeInteger(n)) &&
      n >= 1
    )
  ) {
    throw new RangeError(
      `Cannot make a transport pair: chunkSize must be a whole number >= 1 or a non-empty list of them, received ${
        formatReceived(chunkSize)
      }`,
    );
  }
  if (sizes.length === 1) {
    const size = sizes[0];
    return (link) => Math.min(size, link.size);
  }
  return (link) => Math.min(sizes[link.turn++ % sizes.length], link.size);
}

function checkAmount(
  name: string,
  value: unknown,
  fallback: number,
  finite = false,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" || Number.isNaN(value) || value < 0 ||
    (finite && value === Infinity)
  ) {
    throw new RangeError(
      `Cannot make a transport pair: ${name} must be a ${
        finite ? "finite " : ""
      }number >= 0, received ${formatReceived(value)}`,
    );
  }
  return value;
}

function checkProtocol(p: unknown, which: string): void {
  if (
    typeof p !== "object" || p === null ||
    typeof (p as Protocol).connectionMade !== "function" ||
    typeof (p as Protocol).connectionLost !== "function"
  ) {
    throw new TypeError(
      `Cannot make a transport pair: ${which} must be a stream protocol, received ${
        p === null ? "null" : typeof p
      }`,
    );
  }
}

/**
 * Joins two stream protocols in memory and returns their transports,
 * `[transportA, transportB]`: what A writes, B receives, and the reverse.
 * Both `connectionMade` calls are scheduled at once (A's first).
 *
 * The transports keep every promise of a real one: `write(a); write(b)`
 * delivers the bytes of `write(a + b)`; `writelines` gathers into one
 * write; `writeEof()` makes the peer's `eofReceived()` follow the data,
 * and a peer that does not return `true` from it closes itself; `close()`
 * delivers what was written, then the end of stream, then calls this side's
 * `connectionLost(undefined)` once its buffer is empty; `abort()` drops
 * the buffers and calls `connectionLost(undefined)` here and
 * `connectionLost(ConnectionReset)` on the peer; `pauseReading()` holds
 * deliveries; `getExtraInfo("peername" | "sockname")` gives fake
 * addresses; the water marks call `pauseWriting()` / `resumeWriting()`
 * and drive PEP 3153 producers (see `bufferSize`). Writes after `close()`,
 * `writeEof()` or `connectionLost` throw `InvalidStateError`; between a
 * reset and its `connectionLost` they are dropped quietly. Each
 * `connectionLost` comes exactly once, and an error thrown by
 * `connectionMade`, `dataReceived` or `eofReceived` goes to the loop's
 * exception handler and loses the connection (with that error here, a
 * reset there). A `BufferedProtocol` gets its bytes through `getBuffer` /
 * `bufferUpdated`.
 *
 * Every delivery is a separate callback through `loop.callSoon` (or
 * `callLater` with `delay`), never inline in `write()`. The options cut
 * the stream into deliveries of chosen sizes — deterministically, so a
 * protocol test can feed the same bytes split every way — delay them in
 * (virtual) time, and reset the connection after a given byte.
 *
 * Twisted: `loopbackAsync`; asyncio's test utilities.
 *
 * @param protocolA The first protocol.
 * @param protocolB The second protocol.
 * @param options The loop, and how to split, delay and reset the traffic.
 * @returns The transports of A and B.
 * @throws {TypeError} When a protocol is not a stream protocol or `split`
 * is not a function.
 * @throws {RangeError} When a size or delay is out of range, or both
 * `chunkSize` and `split` are given.
 * @throws {InvalidStateError} When no loop is given and none is running.
 *
 * @example A byte at a time
 * ```ts
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { Protocol } from "@tulip/tulip/protocols";
 * import type { Transport } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * class Recorder extends Protocol {
 *   sizes: number[] = [];
 *   lost = loop.createFuture<void>();
 *   override dataReceived(data: Uint8Array) { this.sizes.push(data.length); }
 *   override connectionLost() { this.lost.setResult(); }
 * }
 * const b = new Recorder();
 * const [ta] = transportPair(new Protocol(), b, { loop, chunkSize: 1 });
 * ta.write(new Uint8Array([1, 2]));
 * ta.write(new Uint8Array([3]));
 * ta.close();
 * await loop.runUntilComplete(b.lost); // the end of stream closed B too
 * assertEquals(b.sizes, [1, 1, 1]);
 * loop.close();
 * ```
 *
 * @example Injecting a reset
 * ```ts
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { Protocol } from "@tulip/tulip/protocols";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * class Watch extends Protocol {
 *   received = 0;
 *   lost = loop.createFuture<string>();
 *   override dataReceived(data: Uint8Array) { this.received += data.length; }
 *   override connectionLost(exc?: Error) { this.lost.setResult(exc?.name ?? "clean"); }
 * }
 * const a = new Watch();
 * const b = new Watch();
 * const [ta] = transportPair(a, b, { loop, resetAfter: 3 });
 * ta.write(new Uint8Array(10));
 * assertEquals(await loop.runUntilComplete(b.lost), "ConnectionReset");
 * assertEquals(await loop.runUntilComplete(a.lost), "ConnectionReset");
 * assertEquals(b.received, 3);
 * loop.close();
 * ```
 */
export function transportPair(
  protocolA: Protocol | BufferedProtocol,
  protocolB: Protocol | BufferedProtocol,
  options?: TransportPairOptions,
): [Transport, Transport] {
  checkProtocol(protocolA, "protocolA");
  checkProtocol(protocolB, "protocolB");
  checkOptions(options, "make a transport pair", "{ chunkSize, delay, … }");
  const loop = options?.loop ?? getRunningLoop();
  if (loop === null || loop === undefined) {
    throw new InvalidStateError(
      "Cannot make a transport pair: no event loop is running, received loop=undefined",
    );
  }
  const nextSize = sizer(options?.chunkSize, options?.split);
  const delay = checkAmount("delay", options?.delay, 0, true);
  const bufferSize = checkAmount("bufferSize", options?.bufferSize, Infinity);
  const resetLeft = checkAmount("resetAfter", options?.resetAfter, Infinity);
  const [addrA, addrB] = options?.addresses ?? [
    { transport: "tcp", hostname: "127.0.0.1", port: 40001 },
    { transport: "tcp", hostname: "127.0.0.1", port: 40002 },
  ];
  const shared: Shared = {
    loop,
    nextSize,
    delay,
    bufferSize,
    resetLeft,
    ends: [] as unknown as [PairTransport, PairTransport],
  };
  const a = new PairTransport(shared, protocolA, {
    sockname: addrA,
    peername: addrB,
  });
  const b = new PairTransport(shared, protocolB, {
    sockname: addrB,
    peername: addrA,
  });
  PairTransport.join(a, b);
  shared.ends = [a, b];
  loop.callSoon(() => a.connect());
  loop.callSoon(() => b.connect());
  return [a, b];
}
