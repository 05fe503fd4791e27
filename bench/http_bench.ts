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

import { HttpServerProtocol, newEventLoop, type Transport } from "../mod.ts";

const REQUESTS = 1000;
const CHUNK = 8 * 1024;

const WRK = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n";
const BROWSER = "GET /api/items?id=12345 HTTP/1.1\r\n" +
  "Host: example.com\r\n" +
  "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101\r\n" +
  "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
  "Accept-Language: en-US,en;q=0.5\r\n" +
  "Accept-Encoding: gzip, deflate, br\r\n" +
  "Connection: keep-alive\r\n" +
  "Cookie: session=abcdef0123456789; theme=dark\r\n" +
  "Cache-Control: max-age=0\r\n\r\n";

const loop = newEventLoop();
let written = 0;

/** A transport that counts what is written and drops it. */
const sink = {
  write(data: Uint8Array) {
    written += data.length;
  },
  writelines(list: Uint8Array[]) {
    for (const data of list) written += data.length;
  },
  getExtraInfo(name: string) {
    return {
      transport: "tcp",
      hostname: "127.0.0.1",
      port: name === "peername" ? 40000 : 8000,
    };
  },
  pauseReading() {},
  resumeReading() {},
  close() {},
  isClosing: () => false,
  canWriteEof: () => true,
} as unknown as Transport;

/** Serves `REQUESTS` copies of `head`, each in a fresh view, like a socket. */
function serve(
  head: string,
  handler: (request: Request) => Response,
): () => void {
  const protocol = new HttpServerProtocol(handler, { loop });
  protocol.connectionMade(sink);
  const bytes = new TextEncoder().encode(head);
  return () => {
    const before = written;
    let chunk = new Uint8Array(CHUNK);
    let at = 0;
    for (let i = 0; i < REQUESTS; i++) {
      if (chunk.length - at < bytes.length) {
        chunk = new Uint8Array(CHUNK);
        at = 0;
      }
      chunk.set(bytes, at);
      protocol.dataReceived(chunk.subarray(at, at + bytes.length));
      at += bytes.length;
    }
    if (written === before) throw new Error("Bench wrote no response");
  };
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
