/**
 * Protocols: the application side of PEP 3156's transport/protocol pair,
 * and ready-made ones from PEP 3153.
 *
 * ```ts
 * import { Protocol } from "@tulip/tulip/protocols";
 * import { assert } from "@std/assert";
 *
 * class Quiet extends Protocol {}
 * assert(new Quiet() instanceof Protocol);
 * ```
 *
 * @module
 */

export * from "./chunk_protocol.ts";
export * from "./http_client_protocol.ts";
export * from "./http_server_protocol.ts";
export * from "./http_transport.ts";
export * from "./int32_string_receiver.ts";
export * from "./json_rpc_error.ts";
export * from "./json_rpc_http_handler.ts";
export * from "./json_rpc_protocol.ts";
export * from "./line_receiver.ts";
export * from "./open_connection.ts";
export * from "./protocol.ts";
export * from "./start_server.ts";
export * from "./stream_reader.ts";
export * from "./stream_reader_protocol.ts";
export * from "./stream_writer.ts";
