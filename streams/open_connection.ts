/**
 * `openConnection`: connect to a TCP (or TLS) server and get a
 * `StreamReader` and a `StreamWriter`; `openUnixConnection` does the same
 * over a Unix socket.
 *
 * @module
 */

import { Future } from "../futures/future.ts";
import type { CreateConnectionOptions, EventLoop } from "../loop/event_loop.ts";
import type { Transport } from "../transports/transport.ts";
import { ioLoop } from "./_io_loop.ts";
import { StreamReader } from "./stream_reader.ts";
import { StreamReaderProtocol } from "./stream_reader_protocol.ts";
import { StreamWriter } from "./stream_writer.ts";

/** Options for `openConnection`. */
export interface OpenConnectionOptions extends CreateConnectionOptions {
  /**
   * The loop to connect on.
   *
   * @default {the running loop}
   */
  loop?: EventLoop;
  /**
   * The reader's buffer limit, in bytes.
   *
   * @default {65536}
   */
  limit?: number;
}

/**
 * Connects to `host`:`port` and returns the connection's reader and
 * writer. It is `loop.createConnection()` with a `StreamReaderProtocol`;
 * options such as `ssl`, `serverHostname` and `localAddr` pass through.
 * Cancelling the returned future cancels the attempt (or closes a
 * connection made meanwhile).
 *
 * PEP 3156 (as in asyncio): `open_connection()`.
 *
 * @param host The host name or address.
 * @param port The port.
 * @param options The loop, the reader's `limit`, and the connection's
 * options.
 * @returns A future of `[reader, writer]`; it fails as the connection
 * attempt does.
 * @throws {InvalidStateError} When no loop is given and none is running.
 * @throws {RangeError} When `limit` is not a whole number > 0.
 *
 * @example A line client (needs a server listening)
 * ```ts ignore
 * import { openConnection } from "@tulip/tulip/streams";
 * import { run } from "@tulip/tulip";
 *
 * await run(async () => {
 *   const [reader, writer] = await openConnection("127.0.0.1", 8888);
 *   writer.write(new TextEncoder().encode("hello\n"));
 *   console.log(new TextDecoder().decode(await reader.readline()));
 *   writer.close();
 *   await writer.waitClosed();
 * });
 * ```
 */
export function openConnection(
  host: string,
  port: number,
  options?: OpenConnectionOptions,
): Future<[StreamReader, StreamWriter]> {
  const { loop: given, limit, ...connectOptions } = options ?? {};
  const loop = ioLoop(given, "open a connection", "createConnection");
  return openStreams(
    loop,
    limit,
    (factory) => loop.createConnection(factory, host, port, connectOptions),
  );
}

/**
 * Connects to the Unix socket at `path` and returns the connection's
 * reader and writer: `openConnection()` over `loop.createUnixConnection()`.
 * Cancelling the returned future cancels the attempt (or closes a
 * connection made meanwhile).
 *
 * PEP 3156 (as in asyncio): `open_unix_connection()`.
 *
 * @param path The socket's path (or a `file:` URL).
 * @param options The loop, the reader's `limit`, and the connection's
 * options.
 * @returns A future of `[reader, writer]`; it fails as the connection
 * attempt does.
 * @throws {InvalidStateError} When no loop is given and none is running.
 * @throws {RangeError} When `limit` is not a whole number > 0.
 *
 * @example A line over a Unix socket
 * ```ts
 * import { openUnixConnection, startUnixServer } from "@tulip/tulip/streams";
 * import { run } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const dir = await Deno.makeTempDir();
 * const reply = await run(async () => {
 *   const server = await startUnixServer(async (reader, writer) => {
 *     writer.write(await reader.readline());
 *     writer.close();
 *   }, `${dir}/echo.sock`);
 *   const [reader, writer] = await openUnixConnection(`${dir}/echo.sock`);
 *   writer.write(new TextEncoder().encode("ping\n"));
 *   const line = new TextDecoder().decode(await reader.readline());
 *   writer.close();
 *   await writer.waitClosed();
 *   server.close();
 *   await server.waitClosed();
 *   return line;
 * });
 * assertEquals(reply, "ping\n");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function openUnixConnection(
  path: string | URL,
  options?: OpenConnectionOptions,
): Future<[StreamReader, StreamWriter]> {
  const { loop: given, limit, ...connectOptions } = options ?? {};
  const loop = ioLoop(given, "open a Unix connection", "createUnixConnection");
  return openStreams(
    loop,
    limit,
    (factory) => loop.createUnixConnection(factory, path, connectOptions),
  );
}

// Connects through `connect` with a StreamReaderProtocol; the reader and
// writer once connected.
function openStreams(
  loop: EventLoop,
  limit: number | undefined,
  connect: (
    factory: () => StreamReaderProtocol,
  ) => Future<[Transport, StreamReaderProtocol]>,
): Future<[StreamReader, StreamWriter]> {
  const reader = new StreamReader({ limit, loop });
  const protocol = new StreamReaderProtocol(reader, undefined, { loop });
  const result = new Future<[StreamReader, StreamWriter]>({ loop });
  const connecting = connect(() => protocol);
  connecting.addDoneCallback((f) => {
    if (f.cancelled()) {
      result.cancel();
      return;
    }
    const exc = f.exception();
    if (exc !== undefined) {
      if (!result.done()) result.setException(exc);
      return;
    }
    const [transport] = f.result();
    if (result.done()) {
      transport.close();
      return;
    }
    const writer = new StreamWriter(transport, protocol, { reader, loop });
    result.setResult([reader, writer]);
  });
  result.addDoneCallback((r) => {
    if (r.cancelled()) connecting.cancel();
  });
  return result;
}
