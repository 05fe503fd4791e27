/**
 * Protocols: the application side of PEP 3156's transport/protocol pair
 * (`Protocol`, `BufferedProtocol`, `DatagramProtocol`,
 * `SubprocessProtocol`), and PEP 3153's framing protocols
 * (`ChunkProtocol`, `LineReceiver`, `Int32StringReceiver`), and `PeerLog`
 * for server protocols that report what their peer causes.
 *
 * ```ts
 * import { LineReceiver } from "@tulip/tulip/protocols";
 * import { assertEquals } from "@std/assert";
 *
 * const lines: string[] = [];
 * const receiver = new LineReceiver((line) => {
 *   lines.push(new TextDecoder().decode(line));
 * });
 * receiver.dataReceived(new TextEncoder().encode("hel"));
 * receiver.dataReceived(new TextEncoder().encode("lo\r\nbye\r\n"));
 * assertEquals(lines, ["hello", "bye"]);
 * ```
 *
 * **Deprecated re-exports.** The streams, HTTP and JSON-RPC families have
 * their own entry points: `openConnection`, `startServer`, `StreamReader`,
 * `StreamReaderProtocol` and `StreamWriter` live in `./streams`;
 * `HttpServerProtocol`, `HttpClientProtocol` and `HttpTransport` in
 * `./http`; `JsonRpcProtocol`, `JsonRpcError` and `jsonRpcHttpHandler` in
 * `./jsonrpc`. This module still re-exports them so that existing imports
 * keep working, but these re-exports go away in the next version: import
 * them from their new entry points.
 *
 * @module
 */

export * from "./chunk_protocol.ts";
export * from "./deliver_data.ts";
export * from "./int32_string_receiver.ts";
export * from "./line_receiver.ts";
export * from "./peer_log.ts";
export * from "./protocol.ts";
export * from "../http/http_client_protocol.ts";
export * from "../http/http_server_protocol.ts";
export * from "../http/http_transport.ts";
export * from "../jsonrpc/json_rpc_error.ts";
export * from "../jsonrpc/json_rpc_http_handler.ts";
export * from "../jsonrpc/json_rpc_protocol.ts";
export * from "../streams/open_connection.ts";
export * from "../streams/start_server.ts";
export * from "../streams/stream_reader.ts";
export * from "../streams/stream_reader_protocol.ts";
export * from "../streams/stream_writer.ts";
