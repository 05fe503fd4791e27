/**
 * Multi-core HTTP: tulip's `serveWorkers` with 1 and 2 workers next to
 * `deno serve --parallel` with 1 and 2, under the same `wrk` load, run in
 * alternation (one of each per round) so that a busy shared machine
 * weighs on all alike; prints the median of each.
 *
 * ```sh
 * deno run -A bench/harness/multicore.ts [--rounds 5] [--duration 5] [--connections 64] [--threads 2]
 * ```
 *
 * Nothing is pinned: the servers' threads and wrk's threads share the
 * machine's cores, as they would in production on a small box. Server CPU
 * is the process's user plus system time, all threads, from /proc.
 *
 * @module
 */

import { cpuTicks, delay } from "./_proc.ts";

const SERVERS = new URL("./servers/", import.meta.url).pathname;
const HOST = "127.0.0.1";

function option(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const value = i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  if (!(value > 0)) throw new RangeError(`--${name} must be > 0`);
  return value;
}
const rounds = option("rounds", 5);
const duration = option("duration", 5);
const connections = option("connections", 64);
const threads = option("threads", 2);
const clockTicks = Number(
  new TextDecoder().decode(
    (await new Deno.Command("getconf", { args: ["CLK_TCK"] }).output()).stdout,
  ).trim(),
);

interface Config {
  name: string;
  start(port: number): Deno.ChildProcess;
}

function tulip(workers: number): Config {
  return {
    name: `tulip serveWorkers, ${workers} worker${workers > 1 ? "s" : ""}`,
    start: (port) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--unstable-net",
          `${SERVERS}tulip_http_workers.ts`,
          String(port),
          String(workers),
        ],
        stdout: "null",
        stderr: "inherit",
      }).spawn(),
  };
}

function denoServe(workers: number): Config {
  return {
    name: `deno serve --parallel, ${workers} worker${workers > 1 ? "s" : ""}`,
    start: (port) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "serve",
          "--parallel",
          "--host",
          HOST,
          "--port",
          String(port),
          `${SERVERS}deno_serve_parallel.ts`,
        ],
        env: { DENO_JOBS: String(workers) },
        stdout: "null",
        stderr: "null",
      }).spawn(),
  };
}

const configs = [tulip(1), tulip(2), denoServe(1), denoServe(2)];

function freePort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Waits until a GET succeeds (bounded). */
async function ready(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      const response = await fetch(`http://${HOST}:${port}/`);
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await delay(100);
  }
  throw new Error(`no server on port ${port} after 30 s`);
}

async function wrk(port: number, seconds: number): Promise<number> {
  const out = await new Deno.Command("wrk", {
    args: [
      "-t1",
      `-c${connections}`,
      `-d${seconds}s`,
      `http://${HOST}:${port}/`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const requests = Number(text.match(/(\d+) requests in/)?.[1]);
  if (!(requests > 0)) throw new Error(`cannot read wrk's output: ${text}`);
  if (/Non-2xx/.test(text)) throw new Error(`non-2xx answers: ${text}`);
  return requests;
}

interface Sample {
  reqPerS: number;
  cpuUsPerReq: number;
  cpuPct: number;
}

async function measure(config: Config): Promise<Sample> {
  const port = freePort();
  const child = config.start(port);
  try {
    await ready(port);
    await wrk(port, 1);
    const cpu0 = cpuTicks(child.pid);
    const t0 = performance.now();
    const requests = await wrk(port, duration);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = (cpuTicks(child.pid) - cpu0) / clockTicks;
    return {
      reqPerS: requests / duration,
      cpuUsPerReq: (cpu * 1e6) / requests,
      cpuPct: (100 * cpu) / seconds,
    };
  } finally {
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await child.status;
    clearTimeout(timer);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const samples = new Map<string, Sample[]>(configs.map((c) => [c.name, []]));
for (let round = 1; round <= rounds; round++) {
  for (const config of configs) {
    const sample = await measure(config);
    samples.get(config.name)!.push(sample);
    console.error(
      `round ${round}: ${config.name}: ${sample.reqPerS.toFixed(0)} req/s, ` +
        `${sample.cpuUsPerReq.toFixed(1)} µs CPU/req, ${
          sample.cpuPct.toFixed(0)
        }% CPU`,
    );
  }
}

console.log(
  `\nwrk -t${threads} -c${connections} -d${duration}s, ${rounds} rounds`,
);
console.log(
  `\n| server | req/s (median of ${rounds}) | server CPU µs/req | server CPU % |`,
);
console.log("| --- | ---: | ---: | ---: |");
for (const config of configs) {
  const list = samples.get(config.name)!;
  console.log(
    `| ${config.name} | ${median(list.map((s) => s.reqPerS)).toFixed(0)} | ${
      median(list.map((s) => s.cpuUsPerReq)).toFixed(1)
    } | ${median(list.map((s) => s.cpuPct)).toFixed(0)} |`,
  );
}
