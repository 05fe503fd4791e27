/**
 * HTTP/1.1 as protocols: `HttpServerProtocol` answers web `Request`s with
 * web `Response`s (a `Deno.serve` handler runs unchanged),
 * `HttpClientProtocol` sends requests on a kept-alive connection, and
 * `HttpTransport` turns request and response bodies into a `Transport` so
 * that any protocol runs over HTTP (PEP 3153's stacking example).
 *
 * ```ts
 * import { HttpClientProtocol, HttpServerProtocol } from "@tulip/tulip/http";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const server = new HttpServerProtocol(() => new Response("hi"));
 * const client = new HttpClientProtocol();
 * const [, clientEnd] = transportPair(server, client, { loop });
 * const text = await loop.runUntilComplete(loop.createTask(async () => {
 *   const response = await client.request(new Request("http://x/"));
 *   return await response.text();
 * }));
 * assertEquals(text, "hi");
 * clientEnd.close();
 * await loop.advance(0);
 * loop.close();
 * ```
 *
 * @module
 */

export * from "./http_client_protocol.ts";
export * from "./http_parse_error.ts";
export * from "./http_server_protocol.ts";
export * from "./http_transport.ts";
