/**
 * CPU time per in-process HTTP/1.1 exchange in `HttpServerProtocol`, read
 * with `process.cpuUsage()` (steadier than `bench/http_bench.ts`'s wall
 * time on a shared machine): `wrk`'s two-line GET and a browser-sized GET
 * answered with a fixed body, and the two-line GET answered by a handler
 * that reads the URL and a header. Each request is handed to
 * `dataReceived` as a view of a larger chunk, as a transport does, and the
 * answer goes to a transport that drops it. Prints the least and the
 * median of 11 runs of 20,000 exchanges.
 *
 * To compare two versions side by side, point it at another checkout of
 * the tree and alternate:
 *
 * deno run -A bench/http_cpu.ts [--tree /path/to/other/tree]
 *
 * @module
 */

import process from "node:process";
import type { Transport } from "../mod.ts";

const RUNS = 11;
const EXCHANGES = 20_000;
const CHUNK = 8 * 1024;

const i = Deno.args.indexOf("--tree");
const tree = i >= 0
  ? new URL(`file://${Deno.args[i + 1].replace(/\/?$/, "/")}`).href
  : new URL("../", import.meta.url).href;
const { HttpServerProtocol, newEventLoop } = await import(
  new URL("mod.ts", tree).href
);

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

function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/** Serves `EXCHANGES` copies of `head` on one connection. */
function serve(head: string, handler: (request: Request) => Response): void {
  const protocol = new HttpServerProtocol(handler, { loop });
  protocol.connectionMade(sink);
  const bytes = new TextEncoder().encode(head);
  const before = written;
  let chunk = new Uint8Array(CHUNK);
  let at = 0;
  for (let n = 0; n < EXCHANGES; n++) {
    if (chunk.length - at < bytes.length) {
      chunk = new Uint8Array(CHUNK);
      at = 0;
    }
    chunk.set(bytes, at);
    protocol.dataReceived(chunk.subarray(at, at + bytes.length));
    at += bytes.length;
  }
  if (written === before) throw new Error("Bench wrote no response");
}

const fixed = () => new Response("Hello, World!");
const reading = (request: Request) =>
  new Response(
    new URL(request.url).pathname + request.headers.get("host"),
  );

console.log(`tree: ${tree}`);
for (
  const [name, head, handler] of [
    ["two-line GET, fixed body", WRK, fixed],
    ["browser GET, fixed body", BROWSER, fixed],
    ["two-line GET, handler reads URL and Host", WRK, reading],
  ] as const
) {
  serve(head, handler); // warm up
  const runs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const start = cpuNs();
    serve(head, handler);
    runs.push((cpuNs() - start) / EXCHANGES);
  }
  runs.sort((a, b) => a - b);
  console.log(
    `${name.padEnd(42)} min ${runs[0].toFixed(0).padStart(5)} ns, median ${
      runs[RUNS >> 1].toFixed(0).padStart(5)
    } ns`,
  );
}
loop.close();
