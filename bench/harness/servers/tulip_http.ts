/**
 * tulip's `HttpServerProtocol` answering every request with
 * `Hello, World!`, for the HTTP workload.
 *
 * ```sh
 * deno run -A bench/harness/servers/tulip_http.ts 8000
 * ```
 *
 * Prints `listening <port>` when ready, then serves forever.
 *
 * @module
 */

import {
  HttpServerProtocol,
  newEventLoop,
  setEventLoop,
} from "../../../mod.ts";

const port = Number(Deno.args[0] ?? "8000");

const loop = newEventLoop();
setEventLoop(loop);
await loop.runUntilComplete(
  loop.createServer(
    () => new HttpServerProtocol(() => new Response("Hello, World!")),
    "127.0.0.1",
    port,
  ),
);
console.log(`listening ${port}`);
await loop.runForever();
