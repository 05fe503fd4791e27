/**
 * Streams: PEP 3156's coroutine-friendly layer over transports —
 * `openConnection()` and `startServer()` give a `StreamReader` to read
 * lines and exact sizes and a `StreamWriter` to write and `drain()`,
 * instead of protocol callbacks.
 *
 * ```ts
 * import { StreamReader } from "@tulip/tulip/streams";
 * import { newEventLoop } from "@tulip/tulip/loop";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const reader = new StreamReader({ loop });
 * reader.feedData(new TextEncoder().encode("HELLO\r\nrest"));
 * reader.feedEof();
 * const line = await loop.runUntilComplete(reader.readline());
 * assertEquals(new TextDecoder().decode(line), "HELLO\r\n");
 * loop.close();
 * ```
 *
 * @module
 */

export * from "./open_connection.ts";
export * from "./start_server.ts";
export * from "./stream_reader.ts";
export * from "./stream_reader_protocol.ts";
export * from "./stream_writer.ts";
