/**
 * `startServer`: serve TCP (or TLS) connections with a callback that gets
 * each connection's `StreamReader` and `StreamWriter`; `startUnixServer`
 * does the same on a Unix socket.
 *
 * @module
 */

import type { Future } from "../futures/future.ts";
import type {
  CreateServerOptions,
  EventLoop,
  Server,
} from "../loop/event_loop.ts";
import { ioLoop } from "./_io_loop.ts";
import { StreamReader } from "./stream_reader.ts";
import {
  type ClientConnectedCallback,
  StreamReaderProtocol,
} from "./stream_reader_protocol.ts";

/** Options for `startServer`. */
export interface StartServerOptions extends CreateServerOptions {
  /**
   * The loop to serve on.
   *
   * @default {the running loop}
   */
  loop?: EventLoop;
  /**
   * Each reader's buffer limit, in bytes.
   *
   * @default {65536}
   */
  limit?: number;
}

/**
 * Listens on `host`:`port` and calls `onClient(reader, writer)` for each
 * connection, in a task of its own. `onClient` may be a plain function,
 * an async function or a generator function; if its task fails, the error
 * goes to the loop's exception handler, within what the peers sent (see
 * `StreamReaderProtocol`), and that connection is closed (if it is
 * cancelled, the connection is closed without a report). It
 * is `loop.createServer()` with a `StreamReaderProtocol` per connection;
 * options such as `ssl` and `reusePort` pass through.
 *
 * PEP 3156 (as in asyncio): `start_server()`.
 *
 * @param onClient Called with each connection's reader and writer.
 * @param host The address to listen on, a list of them, or `undefined`
 * for every interface (as `loop.createServer()`).
 * @param port The port; 0 picks a free one (see `server.addresses()`).
 * @param options The loop, the readers' `limit`, and the server's options.
 * @returns A future of the `Server`.
 * @throws {TypeError} When `onClient` is not a function.
 * @throws {InvalidStateError} When no loop is given and none is running.
 * @throws {RangeError} When `limit` is not a whole number > 0.
 *
 * @example An echo server (needs the network)
 * ```ts ignore
 * import { startServer } from "@tulip/tulip/streams";
 * import type { StreamReader, StreamWriter } from "@tulip/tulip/streams";
 * import { run } from "@tulip/tulip";
 *
 * await run(async () => {
 *   const server = await startServer(async (reader: StreamReader, writer: StreamWriter) => {
 *     for await (const line of reader) {
 *       writer.write(line);
 *       await writer.drain();
 *     }
 *     writer.close();
 *   }, "127.0.0.1", 8888);
 *   await server.serveForever();
 * });
 * ```
 */
export function startServer(
  onClient: ClientConnectedCallback,
  host: string | readonly string[] | undefined,
  port: number,
  options?: StartServerOptions,
): Future<Server> {
  if (typeof onClient !== "function") {
    throw new TypeError(
      `Cannot start a server: onClient must be a function, received ${typeof onClient}`,
    );
  }
  const { loop: given, limit, ...serverOptions } = options ?? {};
  const loop = ioLoop(given, "start a server", "createServer");
  return loop.createServer(
    protocolFactory(onClient, limit, loop),
    host,
    port,
    serverOptions,
  );
}

/**
 * Listens on the Unix socket at `path` and calls `onClient(reader,
 * writer)` for each connection, as `startServer()` does over TCP: it is
 * `loop.createUnixServer()` with a `StreamReaderProtocol` per connection.
 *
 * PEP 3156 (as in asyncio): `start_unix_server()`.
 *
 * @param onClient Called with each connection's reader and writer.
 * @param path The path to bind (or a `file:` URL); closing the server
 * removes it.
 * @param options The loop, the readers' `limit`, and the server's options.
 * @returns A future of the `Server`.
 * @throws {TypeError} When `onClient` is not a function.
 * @throws {InvalidStateError} When no loop is given and none is running.
 * @throws {RangeError} When `limit` is not a whole number > 0.
 *
 * @example An upper-casing server on a Unix socket
 * ```ts
 * import { openUnixConnection, startUnixServer } from "@tulip/tulip/streams";
 * import { run } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/upper.sock`;
 * const reply = await run(async () => {
 *   const server = await startUnixServer(async (reader, writer) => {
 *     for await (const line of reader) {
 *       writer.write(new TextEncoder().encode(
 *         new TextDecoder().decode(line).toUpperCase(),
 *       ));
 *     }
 *     writer.close();
 *   }, path);
 *   const [reader, writer] = await openUnixConnection(path);
 *   writer.write(new TextEncoder().encode("quiet\n"));
 *   writer.writeEof();
 *   const all = new TextDecoder().decode(await reader.read());
 *   writer.close();
 *   server.close();
 *   await server.waitClosed();
 *   return all;
 * });
 * assertEquals(reply, "QUIET\n");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function startUnixServer(
  onClient: ClientConnectedCallback,
  path: string | URL,
  options?: StartServerOptions,
): Future<Server> {
  if (typeof onClient !== "function") {
    throw new TypeError(
      `Cannot start a Unix server: onClient must be a function, received ${typeof onClient}`,
    );
  }
  const { loop: given, limit, ...serverOptions } = options ?? {};
  const loop = ioLoop(given, "start a Unix server", "createUnixServer");
  return loop.createUnixServer(
    protocolFactory(onClient, limit, loop),
    path,
    serverOptions,
  );
}

// One StreamReaderProtocol, with its own reader, per connection.
function protocolFactory(
  onClient: ClientConnectedCallback,
  limit: number | undefined,
  loop: EventLoop,
): () => StreamReaderProtocol {
  // Fail now, not once per connection, on a bad limit.
  new StreamReader({ limit, loop });
  return () =>
    new StreamReaderProtocol(new StreamReader({ limit, loop }), onClient, {
      loop,
    });
}
