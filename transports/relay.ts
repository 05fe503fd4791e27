/**
 * `Relay` and `relay()`: two stream connections joined end to end, with
 * back-pressure both ways — the core of a TCP proxy.
 *
 * @module
 */

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import { Future } from "../futures/future.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import { Protocol } from "../protocols/protocol.ts";
import type { Transport } from "./transport.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** Options for `Relay` and `relay()`. */
export interface RelayOptions {
  /**
   * The high-water mark, in bytes, set on both connections' write buffers
   * when they join: how much one side may have buffered towards a slow
   * peer before the relay stops reading the other side.
   *
   * @default {the transports' own (64 KiB for tulip's)}
   */
  high?: number;
  /**
   * The low-water mark, in bytes, set with `high`: where reading resumes.
   *
   * @default {`high / 4`}
   */
  low?: number;
  /**
   * The loop of the `closed` future.
   *
   * @default {the running loop}
   */
  loop?: SchedulingLoop;
}

/** What `Relay.closed` resolves with. */
export interface RelayResult {
  /** The bytes read from side A and written to side B. */
  bytesAToB: number;
  /** The bytes read from side B and written to side A. */
  bytesBToA: number;
  /** The error side A's connection was lost with, if any. */
  errorA: Error | undefined;
  /** The error side B's connection was lost with, if any. */
  errorB: Error | undefined;
}

function checkMark(name: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw new RangeError(
      `Cannot make a relay: ${name} must be a number >= 0, received ${
        typeof value === "number" ? value : typeof value
      }`,
    );
  }
}

// The state both sides share.
interface Shared {
  closing: boolean;
  attached: number;
  lost: number;
  high: number | undefined;
  low: number | undefined;
  finish(): void;
}

// One end of the relay: the protocol of one connection. Its data goes to
// the peer's transport; its transport's reading is the push producer
// registered on the peer's transport, so a peer whose write buffer is over
// its high-water mark pauses this side's reading.
class Side extends Protocol {
  readonly #shared: Shared;
  peer!: Side;
  transport: Transport | null = null;
  bytes = 0;
  eof = false;
  lost = false;
  error: Error | undefined = undefined;
  joined = false;

  constructor(shared: Shared) {
    super();
    this.#shared = shared;
  }

  override connectionMade(transport: Transport): void {
    const shared = this.#shared;
    // relay() may adopt a transport whose connectionMade is still due.
    if (this.transport === transport) return;
    if (this.transport !== null) {
      transport.close();
      throw new InvalidStateError(
        "Cannot connect a relay side: it already has a connection, received a second one",
      );
    }
    this.transport = transport;
    shared.attached++;
    if (shared.closing || this.peer.lost) {
      transport.close();
      return;
    }
    if (shared.high !== undefined || shared.low !== undefined) {
      transport.setWriteBufferLimits(shared.high, shared.low);
    }
    // Read nothing until there is somewhere to write it.
    if (this.peer.transport === null) transport.pauseReading();
    else this.#join();
  }

  #join(): void {
    for (const side of [this, this.peer]) {
      side.joined = true;
      side.transport!.resumeReading();
    }
    for (const side of [this, this.peer]) {
      const source = side.transport!;
      side.peer.transport!.registerProducer({
        pauseProducing: () => source.pauseReading(),
        resumeProducing: () => source.resumeReading(),
        // The peer closed or was lost: nothing more can be relayed.
        stopProducing: () => source.close(),
      }, true);
    }
  }

  override dataReceived(data: Uint8Array): void {
    const out = this.peer.transport;
    // The peer is going: this side is closed by its loss (or was already).
    if (out === null || out.isClosing()) return;
    out.write(data);
    this.bytes += data.length;
  }

  override eofReceived(): boolean {
    this.eof = true;
    const out = this.peer.transport;
    if (out !== null && !out.isClosing()) {
      out.unregisterProducer();
      if (out.canWriteEof()) out.writeEof();
      else out.close();
    }
    if (!this.peer.eof) return true; // the other direction may go on
    out?.close();
    return false;
  }

  override connectionLost(exc?: Error): void {
    const shared = this.#shared;
    this.lost = true;
    this.error = exc;
    shared.lost++;
    const out = this.peer.transport;
    // What this side sent is flushed, then the peer closes.
    if (out !== null) out.close();
    else shared.closing = true; // the peer never came: refuse it when it does
    shared.finish();
  }
}

/**
 * Relays bytes between two stream connections, A and B, with
 * back-pressure both ways: what A sends is written to B and the reverse.
 * Its two protocols, `a` and `b`, are given to the two connections (a
 * server's protocol factory and a `createConnection`, say); `relay(ta, tb)`
 * joins two connections that already exist.
 *
 * - Nothing is read from a side until both are connected.
 * - Each side's reading is registered as a push producer on the other
 *   side's transport: when B's write buffer goes above its high-water mark,
 *   A's reading pauses until B's buffer drains to the low-water mark, and
 *   the reverse. So memory per connection stays within about the high-water
 *   mark plus one read, however slow a reader is.
 * - End of stream is passed on: A's EOF becomes `writeEof()` on B where B
 *   can half-close (else B is closed), and B can still answer; once both
 *   sides have sent EOF, both close.
 * - When either connection is lost or closed, the other is closed after
 *   writing what it was sent. A side that connects after the relay closed
 *   is closed at once.
 *
 * `closed` resolves once every connection the relay got is lost, with the
 * byte counts and each side's error; it never fails, since a peer
 * resetting is a normal end for a proxy.
 *
 * PEP 3153: producers and consumers. Twisted: `protocols.portforward`.
 *
 * @example A proxy with bounded memory in front of a slow reader
 * ```ts
 * import { Relay } from "@tulip/tulip/transports";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { Protocol } from "@tulip/tulip/protocols";
 * import type { Transport } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const relay = new Relay({ loop, high: 1000 });
 * // A fast client, sending 10 kB on A; a server reading 100 bytes a second on B.
 * class Client extends Protocol {
 *   override connectionMade(t: Transport) { t.write(new Uint8Array(10_000)); t.writeEof(); }
 * }
 * class SlowServer extends Protocol {
 *   received = 0;
 *   override dataReceived(d: Uint8Array) { this.received += d.length; }
 * }
 * const server = new SlowServer();
 * transportPair(new Client(), relay.a, { loop, chunkSize: 500 });
 * const [toServer] = transportPair(relay.b, server, {
 *   loop, bufferSize: 0, chunkSize: 100, delay: 1,
 * });
 * let most = 0;
 * loop.callLater(1, function watch() {
 *   most = Math.max(most, toServer.getWriteBufferSize());
 *   if (!toServer.isClosing()) loop.callLater(1, watch);
 * });
 * const result = await loop.runUntilComplete(relay.closed);
 * assertEquals(result.bytesAToB, 10_000);
 * assertEquals(server.received, 10_000);
 * // Never more than the high-water mark plus one read (500 bytes).
 * assertEquals(most > 0 && most <= 1500, true);
 * loop.close();
 * ```
 */
export class Relay {
  readonly #a: Side;
  readonly #b: Side;
  readonly #shared: Shared;
  readonly #closed: Future<RelayResult>;

  /**
   * Makes a relay whose sides `a` and `b` wait for their connections.
   *
   * @param options The water marks for both connections, and the loop.
   * @throws {TypeError} When `options` is not an object, or its `loop` no
   * event loop.
   * @throws {RangeError} When a mark is not a number >= 0, or `high < low`.
   * @throws {InvalidStateError} When no loop is given and none is running.
   */
  constructor(options?: RelayOptions) {
    checkOptions(options, "make a relay", "{ high, low, loop }");
    checkMark("high", options?.high);
    checkMark("low", options?.low);
    const { high, low } = options ?? {};
    if (high !== undefined && low !== undefined && high < low) {
      throw new RangeError(
        `Cannot make a relay: high must be >= low, received high=${high} low=${low}`,
      );
    }
    const closed = new Future<RelayResult>({ loop: options?.loop });
    this.#closed = closed;
    const shared: Shared = {
      closing: false,
      attached: 0,
      lost: 0,
      high,
      low,
      finish: () => {
        if (closed.done() || closed.getLoop().isClosed()) return;
        if (
          shared.lost < 2 &&
          !(shared.closing && shared.lost === shared.attached)
        ) return;
        closed.setResult({
          bytesAToB: this.#a.bytes,
          bytesBToA: this.#b.bytes,
          errorA: this.#a.error,
          errorB: this.#b.error,
        });
      },
    };
    this.#shared = shared;
    this.#a = new Side(shared);
    this.#b = new Side(shared);
    this.#a.peer = this.#b;
    this.#b.peer = this.#a;
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    const state = this.#closed.done()
      ? "closed"
      : this.#shared.closing
      ? "closing"
      : this.#a.joined
      ? "relaying"
      : "connecting";
    return `Relay ${state}`;
  }

  /** The protocol for side A's connection. */
  get a(): Protocol {
    return this.#a;
  }

  /** The protocol for side B's connection. */
  get b(): Protocol {
    return this.#b;
  }

  /** Side A's transport, once connected; `null` before. */
  get transportA(): Transport | null {
    return this.#a.transport;
  }

  /** Side B's transport, once connected; `null` before. */
  get transportB(): Transport | null {
    return this.#b.transport;
  }

  /** The bytes read from side A and written to side B so far. */
  get bytesAToB(): number {
    return this.#a.bytes;
  }

  /** The bytes read from side B and written to side A so far. */
  get bytesBToA(): number {
    return this.#b.bytes;
  }

  /**
   * A future that resolves once every connection the relay got is lost,
   * as the class explains.
   */
  get closed(): Future<RelayResult> {
    return this.#closed;
  }

  /**
   * Closes both connections (each after writing what it was sent), and any
   * side that connects later. Use it when the second connection cannot be
   * made. Calling it again does nothing more.
   */
  close(): void {
    const shared = this.#shared;
    shared.closing = true;
    this.#a.transport?.close();
    this.#b.transport?.close();
    shared.finish();
  }
}

/**
 * Joins two connected stream transports with a `Relay`: each transport's
 * protocol is replaced by one of the relay's sides (`ta` gets `a`, `tb`
 * gets `b`), and bytes flow both ways with back-pressure, as `Relay`
 * explains. Data a transport delivered before the call went to its old
 * protocol; pause its reading until then if nothing may be missed.
 *
 * Twisted: `protocols.portforward`.
 *
 * @param ta Side A's transport.
 * @param tb Side B's transport.
 * @param options The water marks for both connections, and the loop.
 * @returns The relay.
 * @throws {TypeError} When `ta` or `tb` is not a stream transport, or
 * `options` not an object.
 * @throws {RangeError} When a mark is not a number >= 0, or `high < low`.
 * @throws {InvalidStateError} When a transport already has a producer.
 *
 * @example Joining two connections
 * ```ts
 * import { relay } from "@tulip/tulip/transports";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { Protocol } from "@tulip/tulip/protocols";
 * import type { Transport } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * class Collect extends Protocol {
 *   text = "";
 *   override dataReceived(d: Uint8Array) { this.text += new TextDecoder().decode(d); }
 * }
 * const left = new Collect();
 * const right = new Collect();
 * const [leftEnd, ta] = transportPair(left, new Protocol(), { loop });
 * const [tb, rightEnd] = transportPair(new Protocol(), right, { loop });
 * const joined = relay(ta, tb, { loop });
 * leftEnd.write(new TextEncoder().encode("ping"));
 * rightEnd.write(new TextEncoder().encode("pong"));
 * leftEnd.writeEof();
 * const result = await loop.runUntilComplete(joined.closed);
 * assertEquals([right.text, left.text], ["ping", "pong"]);
 * assertEquals([result.bytesAToB, result.bytesBToA], [4, 4]);
 * loop.close();
 * ```
 */
export function relay(
  ta: Transport,
  tb: Transport,
  options?: RelayOptions,
): Relay {
  for (const [name, t] of [["ta", ta], ["tb", tb]] as const) {
    if (
      typeof t !== "object" || t === null ||
      typeof (t as Partial<Transport>).setProtocol !== "function" ||
      typeof (t as Partial<Transport>).write !== "function"
    ) {
      throw new TypeError(
        `Cannot call relay(): ${name} must be a stream transport, received ${
          formatReceived(t)
        }`,
      );
    }
  }
  const r = new Relay(options);
  for (const [transport, side] of [[ta, r.a], [tb, r.b]] as const) {
    transport.setProtocol(side);
    side.connectionMade(transport);
  }
  return r;
}
