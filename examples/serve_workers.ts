/**
 * One HTTP address served by N workers, each with its own tulip loop; with `--requests N` it sends N requests itself, then closes gracefully (`--requests 0`: serve until Ctrl-C).
 *
 * deno run --unstable-net --allow-net=127.0.0.1 --allow-read=. examples/serve_workers.ts --workers 2 --port 0 --requests 20
 *
 * @module
 */

import { serveWorkers } from "../mod.ts";

function option(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const value = i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`--${name} must be a whole number, received ${value}`);
  }
  return value;
}

const workers = option("workers", navigator.hardwareConcurrency);
const requests = option("requests", 0);

const supervisor = await serveWorkers(
  new URL("./serve_workers_worker.ts", import.meta.url),
  { workers, port: option("port", 8000) },
);
const { port } = supervisor.addresses[0] as Deno.NetAddr;
console.log(
  `${supervisor.workers} workers listening on http://127.0.0.1:${port}/`,
);

if (requests === 0) {
  console.log("Ctrl-C closes them gracefully");
} else {
  // Each request on a new connection: the kernel picks the worker for
  // each connection, so the answers come from all of them.
  const answers = new Map<string, number>();
  for (let i = 0; i < requests; i++) {
    const response = await fetch(`http://127.0.0.1:${port}/`, {
      headers: { connection: "close" },
    });
    const text = (await response.text()).trim();
    answers.set(text, (answers.get(text) ?? 0) + 1);
  }
  for (const [text, count] of [...answers].sort()) {
    console.log(`${count} × ${text}`);
  }
  await supervisor.close();
}
await supervisor.closed;
console.log("all workers closed");
