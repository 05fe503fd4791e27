/**
 * How a stream transport hands received bytes to its protocol, whichever
 * kind it is: a `Protocol` gets them in `dataReceived()`, a
 * `BufferedProtocol` has them copied into the buffers it lends.
 *
 * @module
 */

import { formatReceived } from "../futures/errors.ts";
import type { BaseProtocol, BufferedProtocol, Protocol } from "./protocol.ts";

/**
 * Whether `protocol` lends its own buffers (has `getBuffer()` and
 * `bufferUpdated()`, as a `BufferedProtocol` does), so that a transport
 * reads into them rather than calling `dataReceived()`.
 *
 * PEP 3156 (as asyncio): a transport tells the two kinds apart by shape.
 *
 * @param protocol The protocol.
 * @returns `true` for a buffered protocol.
 *
 * @example Telling the two kinds apart
 * ```ts
 * import {
 *   BufferedProtocol,
 *   isBufferedProtocol,
 *   Protocol,
 * } from "@tulip/tulip/protocols";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(isBufferedProtocol(new BufferedProtocol()), true);
 * assertEquals(isBufferedProtocol(new Protocol()), false);
 * ```
 */
export function isBufferedProtocol(
  protocol: BaseProtocol,
): protocol is BufferedProtocol {
  const p = protocol as Partial<BufferedProtocol>;
  return typeof p.getBuffer === "function" &&
    typeof p.bufferUpdated === "function";
}

/**
 * Asks a buffered protocol for the buffer the next bytes land in, and
 * checks that it is a non-empty `Uint8Array`.
 *
 * @param protocol The buffered protocol.
 * @param sizeHint The size the transport would like, or -1 for any.
 * @returns The buffer the protocol lends.
 * @throws {TypeError} When it returned anything else: `Cannot read into the
 * protocol's buffer: getBuffer() must return a non-empty Uint8Array,
 * received Uint8Array(0)`.
 *
 * @example A protocol that lends an empty buffer
 * ```ts
 * import { BufferedProtocol, lentBuffer } from "@tulip/tulip/protocols";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * class Sink extends BufferedProtocol {
 *   buf = new Uint8Array(4);
 *   override getBuffer() { return this.buf; }
 * }
 * const sink = new Sink();
 * assertEquals(lentBuffer(sink, 10), sink.buf);
 * sink.buf = new Uint8Array(0);
 * assertThrows(() => lentBuffer(sink, 10), TypeError);
 * ```
 */
export function lentBuffer(
  protocol: BufferedProtocol,
  sizeHint: number,
): Uint8Array {
  const buf = protocol.getBuffer(sizeHint);
  if (!(buf instanceof Uint8Array) || buf.length === 0) {
    throw new TypeError(
      `Cannot read into the protocol's buffer: getBuffer() must return a non-empty Uint8Array, received ${
        formatReceived(buf)
      }`,
    );
  }
  return buf;
}

// The protocol call deliverData() names when one fails.
type DeliveryCall = "dataReceived" | "getBuffer" | "bufferUpdated";

/**
 * Hands received bytes to a stream protocol: `dataReceived(data)` for a
 * `Protocol`; for a buffered protocol, copies them into as many of its
 * lent buffers as they take, calling `bufferUpdated()` after each. No
 * bytes, no call: `dataReceived()` always gets some (PEP 3156).
 *
 * @param protocol The protocol.
 * @param data The bytes; a `Protocol` receives this very buffer.
 * @param failed When given, told of what a protocol call threw and which
 * call it was (`getBuffer` covers an unusable buffer too), in place of the
 * throw: a transport reports the failure under the call's name.
 * @returns `false` when a protocol call failed and `failed` was told.
 * @throws {TypeError} Without `failed`: when a buffered protocol lends no
 * usable buffer (see `lentBuffer`); whatever the protocol's callbacks throw.
 *
 * @example Feeding a buffered protocol with small buffers
 * ```ts
 * import { BufferedProtocol, deliverData } from "@tulip/tulip/protocols";
 * import { assertEquals } from "@std/assert";
 *
 * const got: number[][] = [];
 * class Small extends BufferedProtocol {
 *   buf = new Uint8Array(2);
 *   override getBuffer() { return this.buf; }
 *   override bufferUpdated(n: number) { got.push([...this.buf.subarray(0, n)]); }
 * }
 * deliverData(new Small(), new Uint8Array([1, 2, 3]));
 * assertEquals(got, [[1, 2], [3]]);
 * ```
 *
 * @example Which call failed
 * ```ts
 * import { BufferedProtocol, deliverData } from "@tulip/tulip/protocols";
 * import { assertEquals } from "@std/assert";
 *
 * class Lender extends BufferedProtocol {
 *   override getBuffer() { return new Uint8Array(0); }
 * }
 * const calls: string[] = [];
 * const ok = deliverData(new Lender(), new Uint8Array([1]), (_e, call) => {
 *   calls.push(call);
 * });
 * assertEquals([ok, calls], [false, ["getBuffer"]]);
 * ```
 */
export function deliverData(
  protocol: BaseProtocol,
  data: Uint8Array,
  failed?: (
    exception: unknown,
    call: "dataReceived" | "getBuffer" | "bufferUpdated",
  ) => void,
): boolean {
  let call: DeliveryCall = "dataReceived";
  try {
    if (!isBufferedProtocol(protocol)) {
      if (data.length > 0) (protocol as Protocol).dataReceived(data);
      return true;
    }
    let at = 0;
    while (at < data.length) {
      call = "getBuffer";
      const buf = lentBuffer(protocol, data.length - at);
      const k = Math.min(buf.length, data.length - at);
      buf.set(data.subarray(at, at + k));
      at += k;
      call = "bufferUpdated";
      protocol.bufferUpdated(k);
    }
    return true;
  } catch (exception) {
    if (failed === undefined) throw exception;
    failed(exception, call);
    return false;
  }
}
