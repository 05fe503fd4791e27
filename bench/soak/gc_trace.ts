/**
 * V8's collections in a soak server under `noread-http`'s load: 100
 * clients each write 1 MiB of pipelined `GET /` and never read. The server
 * script (`servers/<name>.ts`) runs with `--trace-gc-nvp`; this prints its
 * peak RSS growth and what decides the size of V8's young generation:
 * bytes surviving each scavenge (copied and promoted), the young objects
 * each mark-compact promotes, and, at each growth of the semispaces, what
 * had added up since the last one. V8 doubles them once those bytes pass
 * one semispace's capacity.
 *
 * ```sh
 * deno run -A bench/soak/gc_trace.ts                        # http, 12 s
 * deno run -A bench/soak/gc_trace.ts --server=deno_serve --seconds=15
 * deno run -A bench/soak/gc_trace.ts --tree=/path/to/other/checkout
 * ```
 *
 * `--out=FILE` keeps the raw trace. The server is killed at the end.
 *
 * @module
 */

import { delay, spawn, waitForLine } from "../harness/_proc.ts";
import { bytes, closeQuietly, connect, get, writeAll } from "./_net.ts";

const CLIENTS = 100;
const PER_CLIENT = 1024 * 1024;

/** The fields of a `--trace-gc-nvp` line read here. */
interface Gc {
  ms: number;
  gc: string;
  reason: string;
  new_space_capacity: number;
  new_space_survived: number;
  promoted: number;
}

const flags = new Map(
  Deno.args.map((a) => a.replace(/^--/, "").split("=") as [string, string]),
);
const server = flags.get("server") ?? "http";
const seconds = Number(flags.get("seconds") ?? 12);
const tree = (flags.get("tree") ?? new URL("../..", import.meta.url).pathname)
  .replace(/\/$/, "");
const out = flags.get("out");

const proc = spawn([
  Deno.execPath(),
  "run",
  "--allow-net=127.0.0.1",
  "--no-check",
  "--v8-flags=--expose-gc,--trace-gc-nvp",
  `--config=${tree}/deno.json`,
  `${tree}/bench/soak/servers/${server}.ts`,
  "--port=0",
]);
// V8's trace shares stdout: the line may come glued to one of its.
const listening = await waitForLine(proc, /listening \d+$/);
const port = Number(/listening (\d+)$/.exec(listening)![1]);
const trace: string[] = [];
const gcs: Gc[] = [];
const reading = (async () => {
  for (;;) {
    const r = await proc.out.next();
    if (r.done) return;
    trace.push(r.value);
    const m = /(\d+) ms: GC: (\{.*\})/.exec(r.value);
    if (m === null) continue;
    try {
      gcs.push({ ms: Number(m[1]), ...JSON.parse(m[2]) });
    } catch {
      // A line cut by another write to stdout.
    }
  }
})();

function rssKiB(): number {
  const status = Deno.readTextFileSync(`/proc/${proc.pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

await delay(300);
const start = rssKiB();
let peak = start;
const data = bytes(get("/").repeat(Math.floor(PER_CLIENT / get("/").length)));
const conns: Deno.Conn[] = [];
for (let i = 0; i < CLIENTS; i++) {
  const conn = await connect(port);
  conns.push(conn);
  writeAll(conn, data).catch(() => {}); // closed under it at the end
}
const begin = performance.now();
while (performance.now() - begin < seconds * 1000) {
  await delay(50);
  peak = Math.max(peak, rssKiB());
}
for (const conn of conns) closeQuietly(conn);
Deno.kill(proc.pid, "SIGKILL");
await proc.status;
await reading;
if (out !== undefined) Deno.writeTextFileSync(out, trace.join("\n") + "\n");

const mb = (n: number) => (n / 1e6).toFixed(1);
const median = (xs: number[]) =>
  xs.length === 0 ? 0 : [...xs].sort((a, b) => a - b)[xs.length >> 1];
const scavenges = gcs.filter((g) => g.gc === "s");
console.log(`server: ${tree}/bench/soak/servers/${server}.ts, ${seconds} s`);
console.log(`peak RSS growth: ${((peak - start) / 1024).toFixed(1)} MiB`);
console.log(
  `scavenges: ${scavenges.length}; per scavenge, median ` +
    `${median(scavenges.map((g) => g.new_space_survived))} B copied and ` +
    `${median(scavenges.map((g) => g.promoted))} B promoted`,
);
const marks = gcs.filter((g) => g.gc !== "s");
console.log(
  `mark-compacts: ${marks.length} (${
    marks.map((g) => `${g.ms} ms: ${mb(g.promoted)} MB promoted`).join(", ")
  })`,
);
// What added up between growths of the semispaces.
let capacity = gcs[0]?.new_space_capacity ?? 0;
let fromScavenges = 0;
let fromMarks = 0;
const line = (what: string) =>
  console.log(
    `  ${what}: ${mb(fromScavenges)} MB survived scavenges, ` +
      `${mb(fromMarks)} MB promoted by mark-compacts`,
  );
for (const g of gcs) {
  if (g.new_space_capacity !== capacity) {
    line(`${capacity >> 20} → ${g.new_space_capacity >> 20} MiB at ${g.ms} ms`);
    capacity = g.new_space_capacity;
    fromScavenges = fromMarks = 0;
  }
  if (g.gc === "s") fromScavenges += g.new_space_survived + g.promoted;
  else fromMarks += g.promoted;
}
line(`end, ${capacity >> 20} MiB`);
