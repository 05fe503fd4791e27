/**
 * JSON-RPC 2.0: `JsonRpcProtocol` serves and makes calls over any
 * transport (a TCP connection, an `HttpTransport`), `JsonRpcError` carries
 * the error `code`, and `jsonRpcHttpHandler()` serves JSON-RPC as an HTTP
 * handler.
 *
 * ```ts
 * import { jsonRpcHttpHandler } from "@tulip/tulip/jsonrpc";
 * import { assertEquals } from "@std/assert";
 *
 * const handler = jsonRpcHttpHandler({ add: ([a, b]: number[]) => a + b });
 * const response = await handler(
 *   new Request("http://x/", {
 *     method: "POST",
 *     headers: { "content-type": "application/json" },
 *     body: JSON.stringify({ jsonrpc: "2.0", method: "add", params: [2, 3], id: 1 }),
 *   }),
 * );
 * assertEquals((await response.json()).result, 5);
 * ```
 *
 * @module
 */

export * from "./json_rpc_error.ts";
export * from "./json_rpc_http_handler.ts";
export * from "./json_rpc_protocol.ts";
