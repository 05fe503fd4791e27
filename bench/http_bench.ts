/**
 * The in-process cost of one HTTP/1.1 exchange in `HttpServerProtocol`:
 * a request head handed to `dataReceived` (as the transport hands it, a
 * view of a larger chunk), parsed, answered by a handler and serialized
 * into the transport's `write` — no sockets, no loop trip. Three requests:
 * `wrk`'s two-line GET, a browser-sized GET with eight fields, and the
 * wrk GET answered by a handler that reads the URL and a header. Each bench
 * serves 1,000 requests on one connection; divide by 1,000.
 *
 * deno bench bench/http_bench.ts
 *
 * @module
 */

import { HttpServerProtocol, newEventLoop } from "../mod.ts";
import { BROWSER, feed, sink, WRK } from "./_http_exchange.ts";

const REQUESTS = 1000;
const loop = newEventLoop();

/** Serves `REQUESTS` copies of `head`, each in a fresh view, like a socket. */
function serve(
  head: string,
  handler: (request: Request) => Response,
): () => void {
  const protocol = new HttpServerProtocol(handler, { loop });
  protocol.connectionMade(sink);
  return () => feed(protocol, head, REQUESTS);
}

const hello = () => new Response("Hello, World!");

Deno.bench(
  "wrk GET, fixed 13-byte response (1,000 requests)",
  { group: "http", baseline: true },
  serve(WRK, hello),
);

Deno.bench(
  "browser GET, 8 fields, fixed response (1,000 requests)",
  { group: "http" },
  serve(BROWSER, hello),
);

Deno.bench(
  "wrk GET, handler reads url and a header (1,000 requests)",
  { group: "http" },
  serve(WRK, (request) =>
    new Response(
      new URL(request.url).pathname + (request.headers.get("host") ?? ""),
    )),
);

Deno.bench(
  "new Response('Hello, World!') alone (1,000)",
  { group: "parts" },
  () => {
    for (let i = 0; i < REQUESTS; i++) hello();
  },
);
