/**
 * The transport interfaces of PEP 3156, with PEP 3153's producers and
 * consumers.
 *
 * A transport moves bytes; a protocol decides what they mean. Concrete
 * transports are private to the loop that makes them: callers only ever see
 * these interfaces.
 *
 * @module
 */

import type { Future } from "../futures/future.ts";
import type { BaseProtocol } from "../protocols/protocol.ts";

/**
 * What a protocol sees of any transport.
 *
 * PEP 3156: `BaseTransport`.
 *
 * @example Asking a transport for its peer
 * ```ts
 * import type { BaseTransport } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * function peer(t: BaseTransport): string {
 *   const addr = t.getExtraInfo("peername") as Deno.NetAddr | undefined;
 *   return addr ? `${addr.hostname}:${addr.port}` : "unknown";
 * }
 * const fake = { getExtraInfo: () => undefined } as unknown as BaseTransport;
 * assertEquals(peer(fake), "unknown");
 * ```
 */
export interface BaseTransport {
  /**
   * Returns optional information about the transport: `"peername"` and
   * `"sockname"` (a `Deno.Addr`), `"peercert"`, `"socket"`, `"pipe"`,
   * `"subprocess"`, depending on the transport.
   *
   * @param name The name of the piece of information.
   * @param defaultValue Returned when the transport has no such information.
   */
  getExtraInfo(name: string, defaultValue?: unknown): unknown;
  /**
   * Closes the transport. Buffered data is flushed first; then the
   * protocol's `connectionLost(undefined)` is called, exactly once.
   */
  close(): void;
  /** Returns `true` once the transport is closing or closed. */
  isClosing(): boolean;
  /** Replaces the protocol that receives this transport's events. */
  setProtocol(protocol: BaseProtocol): void;
  /** Returns the current protocol. */
  getProtocol(): BaseProtocol;
}

/**
 * The reading half of a transport.
 *
 * PEP 3156: `ReadTransport`.
 *
 * @example Pausing while a buffer is full
 * ```ts
 * import type { ReadTransport } from "@tulip/tulip/transports";
 * import { assert } from "@std/assert";
 *
 * function backOff(t: ReadTransport, buffered: number, limit: number) {
 *   if (buffered > limit && t.isReading()) t.pauseReading();
 * }
 * let reading = true;
 * const t = {
 *   isReading: () => reading,
 *   pauseReading: () => { reading = false; },
 * } as unknown as ReadTransport;
 * backOff(t, 10, 5);
 * assert(!reading);
 * ```
 */
export interface ReadTransport extends BaseTransport {
  /**
   * Stops delivering data to the protocol until `resumeReading()`. No read
   * is left in flight while paused. Calling it when already paused is a
   * no-op.
   */
  pauseReading(): void;
  /** Resumes delivery after `pauseReading()`; a no-op when reading. */
  resumeReading(): void;
  /** Returns `true` when the transport is delivering data. */
  isReading(): boolean;
}

/**
 * The writing half of a transport.
 *
 * PEP 3156: `WriteTransport`. `writelines` is PEP 3153's `write_sequence`.
 *
 * @example Writing a line
 * ```ts
 * import type { WriteTransport } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * const sent: Uint8Array[] = [];
 * const t = { write: (d: Uint8Array) => sent.push(d) } as unknown as WriteTransport;
 * t.write(new TextEncoder().encode("hello\r\n"));
 * assertEquals(sent.length, 1);
 * ```
 */
export interface WriteTransport extends BaseTransport {
  /**
   * Queues bytes for sending; never blocks. `write(a); write(b)` sends the
   * same bytes as `write(a + b)`.
   *
   * @throws {TypeError} When `data` is not a `Uint8Array`.
   * @throws {InvalidStateError} After `writeEof()`.
   */
  write(data: Uint8Array): void;
  /** Writes each buffer in order, gathered into one write. */
  writelines(list: Iterable<Uint8Array>): void;
  /**
   * Closes the write end after the buffered data is sent; reading goes on.
   *
   * @throws {InvalidStateError} When the transport cannot half-close.
   */
  writeEof(): void;
  /** Returns `true` when `writeEof()` is supported. */
  canWriteEof(): boolean;
  /** Closes at once, dropping buffered data; `connectionLost` follows. */
  abort(): void;
  /** Returns the number of bytes buffered and not yet sent. */
  getWriteBufferSize(): number;
  /** Returns the `[low, high]` water marks, in bytes. */
  getWriteBufferLimits(): [number, number];
  /**
   * Sets the water marks, in bytes. Strictly above `high` the protocol's
   * `pauseWriting()` is called; at or below `low`, `resumeWriting()`.
   *
   * @param high The high-water mark in bytes. Defaults to 64 KiB, or 4 × `low`.
   * @param low The low-water mark in bytes. Defaults to `high / 4`.
   * @throws {RangeError} When `high < low` or either is negative.
   */
  setWriteBufferLimits(high?: number, low?: number): void;
  /**
   * Registers a PEP 3153 producer that writes into this transport (the
   * consumer). A push producer (`streaming = true`) is paused and resumed
   * by the write-buffer water marks; a pull producer is asked for more by
   * `resumeProducing()` each time the buffer drains.
   *
   * @throws {InvalidStateError} When a producer is already registered.
   */
  registerProducer(producer: Producer, streaming: boolean): void;
  /** Forgets the registered producer, if any. */
  unregisterProducer(): void;
}

/**
 * A bidirectional stream transport (TCP, TLS, Unix socket, pipe pair).
 *
 * PEP 3156: `Transport`.
 *
 * @example Echoing through any transport
 * ```ts
 * import type { Transport } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * const echo = (t: Transport, data: Uint8Array) => t.write(data);
 * let got = 0;
 * echo({ write: (d: Uint8Array) => { got = d.length; } } as unknown as Transport, new Uint8Array(3));
 * assertEquals(got, 3);
 * ```
 */
export interface Transport extends ReadTransport, WriteTransport {}

/**
 * A datagram transport (UDP).
 *
 * PEP 3156: `DatagramTransport`.
 *
 * @example Replying to a datagram's sender
 * ```ts
 * import type { DatagramTransport } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * const sent: unknown[] = [];
 * const t = { sendto: (_d: Uint8Array, a?: Deno.Addr) => sent.push(a) } as unknown as DatagramTransport;
 * t.sendto(new Uint8Array(1), { transport: "udp", hostname: "127.0.0.1", port: 9 });
 * assertEquals(sent.length, 1);
 * ```
 */
export interface DatagramTransport extends BaseTransport {
  /**
   * Sends one datagram. Without `addr` it goes to the endpoint's remote
   * address. A send failure reaches the protocol's `errorReceived`; misuse
   * throws at once: data that is not bytes, a missing or malformed `addr`
   * (`TypeError`, or `RangeError` for a port outside 0 to 65535), another
   * address than a connected endpoint's remote one (`RangeError`), a
   * closing transport (`InvalidStateError`).
   */
  sendto(data: Uint8Array, addr?: Deno.Addr): void;
  /** Closes at once, dropping queued datagrams. */
  abort(): void;
  /**
   * Returns the number of bytes queued and not yet sent, counting 8 bytes
   * of UDP header for each datagram too (on the Deno loop and in the
   * simulator alike), as asyncio does, so that empty datagrams fill the
   * queue.
   */
  getWriteBufferSize(): number;
  /**
   * Registers a PEP 3153 producer of datagrams, paced by the send queue's
   * water marks as a stream transport's producer is by its write buffer:
   * a push producer is paused above the high-water mark, a pull producer
   * asked for more each time the queue drains. A `ReadableStreamProducer`
   * sends each chunk of a stream as one datagram this way.
   *
   * @throws {InvalidStateError} When a producer is already registered.
   */
  registerProducer(producer: Producer, streaming: boolean): void;
  /** Forgets the registered producer, if any. */
  unregisterProducer(): void;
  /**
   * Joins the multicast group `group` (an IPv4 224.0.0.0/4 or IPv6
   * ff00::/8 address) on the interface `iface`: for IPv4 the interface's
   * address (default `"0.0.0.0"`: the system chooses), for IPv6 its index
   * (default 0: the system chooses). Datagrams sent to the group then reach
   * the protocol. Closing the endpoint leaves every group.
   *
   * @param group The group's address.
   * @param iface The interface's IPv4 address or IPv6 index.
   * @returns A future done once joined; it fails with the system's error.
   * @throws {TypeError} When `group` or `iface` has the wrong type.
   * @throws {RangeError} When `group` is not a multicast address.
   * @throws {InvalidStateError} When the group is already joined on that
   * interface, or the transport is closing.
   */
  joinMulticast(group: string, iface?: string | number): Future<void>;
  /**
   * Leaves a group joined with `joinMulticast(group, iface)`.
   *
   * @param group The group's address.
   * @param iface The interface, as given to `joinMulticast`.
   * @returns A future done once left.
   * @throws {InvalidStateError} When the group was not joined there.
   */
  leaveMulticast(group: string, iface?: string | number): Future<void>;
}

/**
 * The transport of a child process.
 *
 * PEP 3156: `SubprocessTransport`.
 *
 * @example Reading a child's pid
 * ```ts
 * import type { SubprocessTransport } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * const t = { getPid: () => 42 } as unknown as SubprocessTransport;
 * assertEquals(t.getPid(), 42);
 * ```
 */
export interface SubprocessTransport extends BaseTransport {
  /** Returns the child's process id. */
  getPid(): number;
  /** Returns the exit code, or `null` while the child runs. */
  getReturncode(): number | null;
  /**
   * Returns the transport of pipe `fd` (0 stdin, 1 stdout, 2 stderr), or
   * `null` when that pipe was not requested.
   */
  getPipeTransport(fd: number): WriteTransport | ReadTransport | null;
  /**
   * Sends a signal, by name (`"SIGTERM"`). After the child has exited it is
   * ignored, as Python's `Popen` does, until `connectionLost` has been
   * called; from then on it throws `InvalidStateError`, as asyncio raises
   * `ProcessLookupError` (so do `terminate()` and `kill()`).
   */
  sendSignal(signal: Deno.Signal): void;
  /** Sends `SIGTERM`. */
  terminate(): void;
  /** Sends `SIGKILL`. */
  kill(): void;
}

/**
 * A PEP 3153 producer: something that writes into a consumer (a transport)
 * and can be told to pause, resume or stop.
 *
 * A push producer implements all three methods; a pull producer only needs
 * `resumeProducing()`, which the consumer calls whenever it wants more.
 *
 * @example A pull producer that sends three chunks
 * ```ts
 * import type { Producer } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * let left = 3;
 * const p: Producer = { resumeProducing() { left--; } };
 * p.resumeProducing();
 * assertEquals(left, 2);
 * ```
 */
export interface Producer {
  /** Called by the consumer when it wants (more) data. */
  resumeProducing(): void;
  /** Called by the consumer when its buffer is full (push producers). */
  pauseProducing?(): void;
  /** Called by the consumer when it can take no more data ever. */
  stopProducing?(): void;
}

/** A factory the loop calls to make one protocol per connection. */
export type ProtocolFactory<P> = () => P;
