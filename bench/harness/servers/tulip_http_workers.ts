/**
 * tulip's HTTP server on N workers (`serveWorkers`), each answering every
 * request with `Hello, World!`, for the multi-core HTTP workload.
 *
 * ```sh
 * deno run -A --unstable-net bench/harness/servers/tulip_http_workers.ts 8000 2
 * ```
 *
 * Prints `listening <port>` when ready, then serves until SIGTERM.
 *
 * @module
 */

import { serveWorkers } from "../../../mod.ts";

const port = Number(Deno.args[0] ?? "8000");
const workers = Number(Deno.args[1] ?? navigator.hardwareConcurrency);

const supervisor = await serveWorkers(
  new URL("./tulip_http_worker.ts", import.meta.url),
  { workers, port, grace: 1 },
);
console.log(`listening ${port}`);
await supervisor.closed;
