/**
 * The protocol base classes of PEP 3156.
 *
 * Every method has a no-op default, so a subclass overrides only what it
 * needs. A protocol never knows what carries its bytes.
 *
 * @module
 */

import type {
  BaseTransport,
  DatagramTransport,
  SubprocessTransport,
  Transport,
} from "../transports/transport.ts";

/**
 * What every protocol has: connection events and write flow control.
 *
 * PEP 3156: `BaseProtocol`.
 *
 * @example Counting connections
 * ```ts
 * import { BaseProtocol } from "@tulip/tulip/protocols";
 * import type { BaseTransport } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * let open = 0;
 * class Counter extends BaseProtocol {
 *   override connectionMade(_t: BaseTransport) { open++; }
 *   override connectionLost() { open--; }
 * }
 * const p = new Counter();
 * p.connectionMade({} as BaseTransport);
 * assertEquals(open, 1);
 * p.connectionLost();
 * assertEquals(open, 0);
 * ```
 */
export class BaseProtocol {
  /**
   * Called once, when the connection is made, with its transport.
   *
   * @param _transport The transport of the new connection.
   */
  connectionMade(_transport: BaseTransport): void {}
  /**
   * Called exactly once, when the connection is lost or closed: with
   * `undefined` after a clean close or EOF, with the error otherwise.
   *
   * @param _exc The error that ended the connection, if any.
   */
  connectionLost(_exc?: Error): void {}
  /**
   * Called when the transport's write buffer goes strictly above its
   * high-water mark. Stop writing until `resumeWriting()`; writes made
   * meanwhile are still buffered, never dropped.
   */
  pauseWriting(): void {}
  /**
   * Called when the write buffer drains to or below the low-water mark
   * after a `pauseWriting()`.
   */
  resumeWriting(): void {}
}

/**
 * A stream protocol: the application side of a `Transport`.
 *
 * Call order: `connectionMade` once, `dataReceived` zero or more times,
 * `eofReceived` at most once, `connectionLost` exactly once.
 *
 * PEP 3156: `Protocol`.
 *
 * @example An echo protocol
 * ```ts
 * import { Protocol } from "@tulip/tulip/protocols";
 * import type { Transport } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * class Echo extends Protocol {
 *   #t?: Transport;
 *   override connectionMade(t: Transport) { this.#t = t; }
 *   override dataReceived(data: Uint8Array) { this.#t!.write(data); }
 * }
 * const sent: Uint8Array[] = [];
 * const e = new Echo();
 * e.connectionMade({ write: (d: Uint8Array) => sent.push(d) } as unknown as Transport);
 * e.dataReceived(new Uint8Array([1, 2]));
 * assertEquals(sent, [new Uint8Array([1, 2])]);
 * ```
 */
export class Protocol extends BaseProtocol {
  /**
   * Called once, when the connection is made.
   *
   * @param _transport The connection's transport.
   */
  override connectionMade(_transport: Transport): void {}
  /**
   * Called with each piece of data received. The buffer belongs to the
   * protocol from now on: the transport never reuses it.
   *
   * @param _data The bytes received.
   */
  dataReceived(_data: Uint8Array): void {}
  /**
   * Called at most once, when the peer closes its write end. Return `true`
   * to keep the transport open for writing (half-closed); otherwise the
   * transport closes itself.
   *
   * @returns Whether to keep the transport half-open.
   */
  eofReceived(): boolean | void {}
}

/**
 * A stream protocol that lends the transport its own buffer, so reads land
 * in it without a copy.
 *
 * PEP 3156 (as in asyncio): `BufferedProtocol`.
 *
 * @example Collecting bytes in one buffer
 * ```ts
 * import { BufferedProtocol } from "@tulip/tulip/protocols";
 * import { assertEquals } from "@std/assert";
 *
 * class Sink extends BufferedProtocol {
 *   buf = new Uint8Array(16);
 *   n = 0;
 *   override getBuffer(_hint: number) { return this.buf.subarray(this.n); }
 *   override bufferUpdated(n: number) { this.n += n; }
 * }
 * const s = new Sink();
 * s.getBuffer(-1).set([7, 8]);
 * s.bufferUpdated(2);
 * assertEquals(s.buf.subarray(0, s.n), new Uint8Array([7, 8]));
 * ```
 */
export class BufferedProtocol extends BaseProtocol {
  /**
   * Called once, when the connection is made.
   *
   * @param _transport The connection's transport.
   */
  override connectionMade(_transport: Transport): void {}
  /**
   * Returns the buffer the next read lands in. It must not be empty.
   *
   * @param _sizeHint The size the transport would like, or -1 for any.
   * @returns A non-empty buffer.
   */
  getBuffer(_sizeHint: number): Uint8Array {
    throw new TypeError(
      "Cannot read into a BufferedProtocol: getBuffer() is not implemented",
    );
  }
  /**
   * Called after a read wrote `nbytes` bytes at the start of the last
   * buffer `getBuffer()` returned.
   *
   * @param _nbytes How many bytes were written.
   */
  bufferUpdated(_nbytes: number): void {}
  /**
   * Called at most once, when the peer closes its write end; return `true`
   * to stay half-open.
   *
   * @returns Whether to keep the transport half-open.
   */
  eofReceived(): boolean | void {}
}

/**
 * The application side of a `DatagramTransport`.
 *
 * PEP 3156: `DatagramProtocol`.
 *
 * @example Recording datagrams
 * ```ts
 * import { DatagramProtocol } from "@tulip/tulip/protocols";
 * import { assertEquals } from "@std/assert";
 *
 * const seen: string[] = [];
 * class Recorder extends DatagramProtocol {
 *   override datagramReceived(data: Uint8Array, addr: Deno.Addr) {
 *     seen.push(`${data.length} from ${addr.transport}`);
 *   }
 * }
 * new Recorder().datagramReceived(new Uint8Array(4), { transport: "udp", hostname: "127.0.0.1", port: 1 });
 * assertEquals(seen, ["4 from udp"]);
 * ```
 */
export class DatagramProtocol extends BaseProtocol {
  /**
   * Called once, when the endpoint is ready.
   *
   * @param _transport The endpoint's transport.
   */
  override connectionMade(_transport: DatagramTransport): void {}
  /**
   * Called with each datagram received.
   *
   * @param _data The datagram's bytes.
   * @param _addr The sender's address.
   */
  datagramReceived(_data: Uint8Array, _addr: Deno.Addr): void {}
  /**
   * Called when a send or receive fails (a send the system refuses, such
   * as to an address it has no route to or a broadcast without
   * `allowBroadcast`; a datagram dropped because the send queue was
   * full); the endpoint stays open. Deno's UDP sockets are never
   * connected, so a peer's ICMP "port unreachable" is not reported here,
   * where asyncio's connected socket reports `ConnectionRefusedError`.
   *
   * @param _exc The error.
   */
  errorReceived(_exc: Error): void {}
}

/**
 * The application side of a `SubprocessTransport`.
 *
 * PEP 3156: `SubprocessProtocol`.
 *
 * @example Collecting a child's output
 * ```ts
 * import { SubprocessProtocol } from "@tulip/tulip/protocols";
 * import { assertEquals } from "@std/assert";
 *
 * const out: number[] = [];
 * class Collect extends SubprocessProtocol {
 *   override pipeDataReceived(fd: number, data: Uint8Array) { if (fd === 1) out.push(data.length); }
 * }
 * new Collect().pipeDataReceived(1, new Uint8Array(5));
 * assertEquals(out, [5]);
 * ```
 */
export class SubprocessProtocol extends BaseProtocol {
  /**
   * Called once, when the child has started.
   *
   * @param _transport The child's transport.
   */
  override connectionMade(_transport: SubprocessTransport): void {}
  /**
   * Called with data the child wrote to stdout (`fd` 1) or stderr (`fd` 2).
   *
   * @param _fd The pipe's descriptor number.
   * @param _data The bytes received.
   */
  pipeDataReceived(_fd: number, _data: Uint8Array): void {}
  /**
   * Called when one of the child's pipes closes.
   *
   * @param _fd The pipe's descriptor number.
   * @param _exc The error, if the pipe failed.
   */
  pipeConnectionLost(_fd: number, _exc?: Error): void {}
  /** Called when the child has exited. */
  processExited(): void {}
}
