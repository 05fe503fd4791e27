/**
 * The argument and state checks every `WriteTransport` makes, with one
 * wording, for the transports in this package and for anyone writing their
 * own (the part of asyncio's `_FlowControlMixin` and Twisted's
 * `abstract.FileDescriptor.write` that is the same for every transport).
 *
 * A transport composes these with its own state and with
 * `WriteFlowControl` (the water marks and producers) instead of extending
 * a base class: what "closing" or "lost" means differs between a socket, a
 * pipe and an HTTP exchange, but what a caller is told does not.
 *
 * @module
 */

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import { concatBytes } from "./write_buffer.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";

/**
 * Checks that `data` is bytes, as `write()` and its kin require.
 *
 * PEP 3156: `WriteTransport.write()` takes bytes.
 *
 * @param data What the caller passed.
 * @param method The method called, named in the error (`"write"` unless
 * given).
 * @throws {TypeError} When `data` is not a `Uint8Array`:
 * `Cannot call write(): data must be a Uint8Array, received "text"`.
 *
 * @example Refusing a string
 * ```ts
 * import { checkWriteData } from "@tulip/tulip/transports";
 * import { assertThrows } from "@std/assert";
 *
 * checkWriteData(new Uint8Array(1));
 * assertThrows(
 *   () => checkWriteData("hi"),
 *   TypeError,
 *   'Cannot call write(): data must be a Uint8Array, received "hi"',
 * );
 * ```
 */
export function checkWriteData(
  data: unknown,
  method = "write",
): asserts data is Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot call ${method}(): data must be a Uint8Array, received ${
        formatReceived(data)
      }`,
    );
  }
}

/**
 * Checks every item of a `writelines()` call and gathers them into one
 * buffer, so that the transport makes one write of them.
 *
 * Every item is checked before anything is written, so a bad item writes
 * nothing. With exactly one item, that item itself is returned (no copy);
 * otherwise a new buffer holds the items in order.
 *
 * PEP 3156: `WriteTransport.writelines()`.
 *
 * @param list The buffers.
 * @returns The bytes of all the buffers, in order.
 * @throws {TypeError} When `list` is not an iterable of buffers (a single
 * `Uint8Array` or a string included):
 * `Cannot call writelines(): list must be an iterable of Uint8Array, received 5`;
 * when an item is not a `Uint8Array`:
 * `Cannot call writelines(): every item must be a Uint8Array, received 7`.
 *
 * @example Gathering two buffers
 * ```ts
 * import { gatherWriteData } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * const data = gatherWriteData([new Uint8Array([1]), new Uint8Array([2, 3])]);
 * assertEquals(data, new Uint8Array([1, 2, 3]));
 * ```
 */
export function gatherWriteData(list: Iterable<Uint8Array>): Uint8Array {
  const given = list as unknown;
  if (
    typeof given !== "object" || given === null ||
    given instanceof Uint8Array ||
    typeof (given as Iterable<unknown>)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(
      `Cannot call writelines(): list must be an iterable of Uint8Array, received ${
        formatReceived(given)
      }${
        given instanceof Uint8Array ? " (call write() for a single buffer)" : ""
      }`,
    );
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const item of list as Iterable<unknown>) {
    if (!(item instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot call writelines(): every item must be a Uint8Array, received ${
          formatReceived(item)
        }`,
      );
    }
    parts.push(item);
    size += item.length;
  }
  return concatBytes(parts, size);
}

/**
 * Throws the error for a write the transport's state forbids: after
 * `writeEof()`, or once the transport is closing.
 *
 * A transport whose connection broke before the protocol was told (before
 * `connectionLost()`) drops such writes quietly instead, as asyncio does;
 * that decision is the transport's, this only words the refusal.
 *
 * PEP 3156: writing after `write_eof()` or `close()` is an error.
 *
 * @param method The method called, named in the error.
 * @param eofWritten `true` when `writeEof()` was called (that reason wins
 * over closing).
 * @throws {InvalidStateError} Always:
 * `Cannot call write(): writeEof() was called` or
 * `Cannot call write(): transport is closing`.
 *
 * @example Refusing a write after close()
 * ```ts
 * import { refuseWrite } from "@tulip/tulip/transports";
 * import { InvalidStateError } from "@tulip/tulip/futures";
 * import { assertThrows } from "@std/assert";
 *
 * assertThrows(
 *   () => refuseWrite("write", false),
 *   InvalidStateError,
 *   "Cannot call write(): transport is closing",
 * );
 * ```
 */
export function refuseWrite(method: string, eofWritten: boolean): never {
  throw new InvalidStateError(
    eofWritten
      ? `Cannot call ${method}(): writeEof() was called`
      : `Cannot call ${method}(): transport is closing`,
  );
}

/**
 * What each queued datagram counts for in a datagram transport's send
 * queue beyond its data: its UDP header, as asyncio counts it, so that
 * empty datagrams fill the queue (and pause the protocol) too.
 *
 * @example What an empty datagram counts for
 * ```ts
 * import { DATAGRAM_HEADER_SIZE } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * const queued = [new Uint8Array(0), new Uint8Array(4)];
 * const size = queued.reduce((n, d) => n + d.length + DATAGRAM_HEADER_SIZE, 0);
 * assertEquals(size, 20);
 * ```
 */
export const DATAGRAM_HEADER_SIZE = 8;

/**
 * The most bytes (data and headers) a datagram transport's send queue
 * holds. A datagram that would take it past this is dropped, and the
 * protocol's `errorReceived` is told, as a full network buffer drops
 * datagrams; the water marks (`pauseWriting`) warn well before.
 *
 * @example Room left in a send queue
 * ```ts
 * import { DATAGRAM_HEADER_SIZE, MAX_DATAGRAM_QUEUE } from "@tulip/tulip/transports";
 * import { assert } from "@std/assert";
 *
 * const queued = 1000 * (512 + DATAGRAM_HEADER_SIZE);
 * assert(queued + 512 + DATAGRAM_HEADER_SIZE <= MAX_DATAGRAM_QUEUE);
 * ```
 */
export const MAX_DATAGRAM_QUEUE = 1024 * 1024;

/**
 * Says why a datagram cannot join a send queue: when `queued` bytes plus
 * this datagram and its header would pass `MAX_DATAGRAM_QUEUE`. The
 * transport drops it and reports a `Deno.errors.WouldBlock` with this
 * message to `errorReceived`: once for the datagrams dropped before that
 * report runs (on the loop's next turn), counting the others in `more`.
 *
 * @param queued The bytes queued (data and headers), as
 * `getWriteBufferSize()` counts them.
 * @param length The datagram's length.
 * @param more How many more datagrams were dropped since this one.
 * @returns The refusal's message, or `undefined` when the datagram fits.
 *
 * @example A full queue
 * ```ts
 * import {
 *   datagramQueueRefusal,
 *   MAX_DATAGRAM_QUEUE,
 * } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(datagramQueueRefusal(0, 100), undefined);
 * assertEquals(
 *   datagramQueueRefusal(MAX_DATAGRAM_QUEUE - 8, 1),
 *   "Cannot queue the datagram: the send queue holds 1048568 of 1048576 bytes (data and 8-byte headers), received 1 bytes more",
 * );
 * assertEquals(
 *   datagramQueueRefusal(MAX_DATAGRAM_QUEUE, 0, 2),
 *   "Cannot queue the datagram: the send queue holds 1048576 of 1048576 bytes (data and 8-byte headers), received 0 bytes more; 2 more datagrams were dropped before this report",
 * );
 * ```
 */
export function datagramQueueRefusal(
  queued: number,
  length: number,
  more = 0,
): string | undefined {
  if (queued + length + DATAGRAM_HEADER_SIZE <= MAX_DATAGRAM_QUEUE) {
    return undefined;
  }
  const refusal =
    `Cannot queue the datagram: the send queue holds ${queued} of ${MAX_DATAGRAM_QUEUE} bytes (data and 8-byte headers), received ${length} bytes more`;
  if (more === 0) return refusal;
  return `${refusal}; ${more} more ${
    more === 1 ? "datagram was" : "datagrams were"
  } dropped before this report`;
}

/**
 * Makes the drop counter of a datagram transport's full send queue. Call
 * it for each datagram `datagramQueueRefusal()` refuses: the first since
 * the last report schedules one on the loop's next turn, whose message
 * (`datagramQueueRefusal()`'s for that datagram) counts those dropped
 * after it, so that a protocol sending in a tight loop gets one error per
 * turn, not an error (and its memory) per datagram.
 *
 * @param loop The loop the report is scheduled on.
 * @param report Takes the message; the transport reports a
 * `Deno.errors.WouldBlock` of it to `errorReceived`.
 * @returns What to call with the queue's size and the datagram's length
 * for each dropped datagram.
 *
 * @example Three datagrams dropped in one turn, one report
 * ```ts
 * import {
 *   datagramDropReporter,
 *   MAX_DATAGRAM_QUEUE,
 * } from "@tulip/tulip/transports";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const reports: string[] = [];
 * const dropped = datagramDropReporter(loop, (m) => reports.push(m));
 * for (let i = 0; i < 3; i++) dropped(MAX_DATAGRAM_QUEUE, 0);
 * await loop.runOnce();
 * assertEquals(reports, [
 *   "Cannot queue the datagram: the send queue holds 1048576 of 1048576 bytes (data and 8-byte headers), received 0 bytes more; 2 more datagrams were dropped before this report",
 * ]);
 * loop.close();
 * ```
 */
export function datagramDropReporter(
  loop: SchedulingLoop,
  report: (message: string) => void,
): (queued: number, length: number) => void {
  let dropped = 0;
  return (queued, length) => {
    if (dropped++ > 0) return;
    loop.callSoon(() => {
      const more = dropped - 1;
      dropped = 0;
      report(datagramQueueRefusal(queued, length, more)!);
    });
  };
}
