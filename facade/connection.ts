/**
 * `Connection`: the facade's handle on one stream connection, a
 * `StreamReader` and `StreamWriter` pair.
 *
 * @module
 */

import type { Future } from "../futures/future.ts";
import type { StreamReader } from "../streams/stream_reader.ts";
import type { StreamWriter } from "../streams/stream_writer.ts";

/**
 * One stream connection as the completion facade sees it: the reader and
 * writer of a TCP (or TLS) connection, joined under one handle. The
 * `AsyncEngine` makes them (`connect()`, `accept()`) and reads and writes
 * through them; a `Connection` can also wrap the pair that
 * `openConnection()` returns, so that engine calls work on it too.
 *
 * Only one read may wait at a time, as on any `StreamReader`: start the
 * next read from the previous one's callback.
 *
 * PEP 3156 (as in asyncio): a `StreamReader`/`StreamWriter` pair; the
 * "sock" argument of the async-facade proposal's calls.
 *
 * @example Wrapping an in-memory stream pair
 * ```ts
 * import { Connection } from "@tulip/tulip/facade";
 * import { StreamReader, StreamReaderProtocol, StreamWriter } from "@tulip/tulip/streams";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const server = new StreamReaderProtocol(new StreamReader({ loop }), undefined, { loop });
 * const reader = new StreamReader({ loop });
 * const client = new StreamReaderProtocol(reader, undefined, { loop });
 * const [, transport] = transportPair(server, client, { loop });
 * const conn = new Connection(reader, new StreamWriter(transport, client, { reader, loop }));
 * assertEquals(conn.isClosing(), false);
 * conn.close();
 * await loop.runUntilComplete(conn.waitClosed());
 * assertEquals(conn.isClosing(), true);
 * loop.close();
 * ```
 */
export class Connection implements AsyncDisposable {
  /** The reading half. */
  readonly reader: StreamReader;
  /** The writing half. */
  readonly writer: StreamWriter;

  /**
   * Joins the two halves of one connection.
   *
   * @param reader The connection's reader.
   * @param writer The connection's writer.
   */
  constructor(reader: StreamReader, writer: StreamWriter) {
    this.reader = reader;
    this.writer = writer;
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `Connection ${this.#describe()}`;
  }

  /** How Deno's `console.log` prints a connection. */
  [Symbol.for("Deno.customInspect")](): string {
    return `Connection ${this.#describe()}`;
  }

  /**
   * Closes the connection once the bytes already written are sent.
   * Calling it again does nothing; `waitClosed()` tells when it is gone.
   *
   * PEP 3156 (as in asyncio): `StreamWriter.close()`.
   */
  close(): void {
    this.writer.close();
  }

  /**
   * Returns `true` once `close()` was called or the connection was lost.
   *
   * @returns Whether the connection is closing or closed.
   */
  isClosing(): boolean {
    return this.writer.isClosing();
  }

  /**
   * Waits until the connection is gone.
   *
   * PEP 3156 (as in asyncio): `StreamWriter.wait_closed()`.
   *
   * @returns A future done once the connection is lost; it fails with the
   * connection's error if there was one.
   */
  waitClosed(): Future<void> {
    return this.writer.waitClosed();
  }

  /**
   * Returns optional information about the connection: `"peername"` and
   * `"sockname"` (`Deno.NetAddr`), and whatever else the transport knows.
   *
   * PEP 3156: `transport.get_extra_info()`.
   *
   * @param name The name of the information.
   * @param defaultValue Returned when there is no such information.
   * @returns The information.
   */
  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    return this.writer.getExtraInfo(name, defaultValue);
  }

  /**
   * Closes the connection and waits until it is gone, for
   * `await using conn = …`; an error of the connection is not thrown.
   *
   * @returns A promise that resolves once the connection is lost.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.writer[Symbol.asyncDispose]();
  }

  #describe(): string {
    const peer = this.writer.getExtraInfo("peername") as
      | { hostname?: string; port?: number; path?: string }
      | undefined;
    const where = peer === undefined
      ? ""
      : peer.path !== undefined
      ? ` to ${peer.path}`
      : ` to ${peer.hostname}:${peer.port}`;
    return `${this.isClosing() ? "closing" : "open"}${where}`;
  }
}
