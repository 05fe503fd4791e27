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

import { cpuNs, treeUrl } from "./_cpu.ts";
import { BROWSER, feed, sink, WRK } from "./_http_exchange.ts";

const RUNS = 11;
const EXCHANGES = 20_000;

const tree = treeUrl();
const { HttpServerProtocol, newEventLoop } = await import(
  new URL("mod.ts", tree).href
);
const loop = newEventLoop();

/** Serves `EXCHANGES` copies of `head` on one connection. */
function serve(head: string, handler: (request: Request) => Response): void {
  const protocol = new HttpServerProtocol(handler, { loop });
  protocol.connectionMade(sink);
  feed(protocol, head, EXCHANGES);
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
