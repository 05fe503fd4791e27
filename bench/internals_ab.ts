/**
 * What Deno's private internals (`transports/_deno_internals.ts`) are worth:
 * runs the same work in child processes alternately with the internals on
 * and off (`TULIP_NO_INTERNALS=1`), and prints the minimum and median of
 * each side. The work, each over real TCP on 127.0.0.1:
 *
 * - `echo`: 2,000 round trips of 64 bytes to a tulip echo server (its
 *   reads and writes take the proactor's core-ops path when on);
 * - `http`: 2,000 kept-alive `GET`s to a tulip HTTP server answering
 *   `new Response("Hello, World!")` (the `Response` body fields give a
 *   `Content-Length` answer in one write when on; chunked when off);
 * - `http-request`: the same, with a handler that reads a request header,
 *   which makes the real `Request` (without a signal when the internal
 *   signal key is found, with one when off).
 *
 * The client is plain `Deno.Conn` in the same process, so a figure is the
 * whole round trip: wall time, and the process's CPU time (user + system,
 * client and server together) per round trip.
 *
 * deno run -A bench/internals_ab.ts [--runs N]
 *
 * @module
 */

import { HttpServerProtocol, newEventLoop, Protocol } from "../mod.ts";
import type { Transport } from "../mod.ts";
import process from "node:process";

const ROUNDS = 2000;
const HOST = "127.0.0.1";
const encoder = new TextEncoder();

/** Echoes every chunk back. */
class Echo extends Protocol {
  #transport: Transport | null = null;
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
  }
  override dataReceived(data: Uint8Array): void {
    this.#transport!.write(data);
  }
}

/** Reads until `done(received)` says the answer is complete. */
async function readUntil(
  conn: Deno.Conn,
  buf: Uint8Array,
  done: (text: string) => boolean,
): Promise<void> {
  let got = "";
  while (!done(got)) {
    const n = await conn.read(buf);
    if (n === null) throw new Error("Cannot read the answer: EOF");
    got += new TextDecoder().decode(buf.subarray(0, n));
  }
}

/** Runs one kind of work; returns wall and CPU time per round trip, in µs. */
async function child(kind: string): Promise<[number, number]> {
  const loop = newEventLoop();
  const task = loop.createTask(async () => {
    const server = await loop.createServer(
      () =>
        kind === "echo" ? new Echo() : new HttpServerProtocol(
          kind === "http"
            ? () => new Response("Hello, World!")
            : (r) => new Response(r.headers.get("host") ?? "none"),
          { loop },
        ),
      HOST,
      0,
    );
    const port = (server.addresses()[0] as Deno.NetAddr).port;
    const conn = await Deno.connect({ hostname: HOST, port });
    const buf = new Uint8Array(64 * 1024);
    const request = kind === "echo"
      ? new Uint8Array(64).fill(97)
      : encoder.encode("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    const done = kind === "echo"
      ? (t: string) => t.length >= 64
      : (t: string) =>
        /\r\n\r\n(Hello, World!|a)$/.test(t) || t.endsWith("\r\n0\r\n\r\n");
    const once = async () => {
      await conn.write(request);
      await readUntil(conn, buf, done);
    };
    for (let i = 0; i < 200; i++) await once(); // Warm up.
    const start = performance.now();
    const cpu = process.cpuUsage();
    for (let i = 0; i < ROUNDS; i++) await once();
    const used = process.cpuUsage(cpu);
    const elapsed = performance.now() - start;
    conn.close();
    server.close();
    await server.waitClosed();
    return [
      elapsed * 1000 / ROUNDS,
      (used.user + used.system) / ROUNDS,
    ] as [number, number];
  });
  try {
    return await loop.runUntilComplete(task);
  } finally {
    loop.close();
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function parent(runs: number): Promise<void> {
  const self = new URL(import.meta.url).pathname;
  console.log(
    `${ROUNDS} round trips per run, ${runs} runs per side, alternated`,
  );
  for (const kind of ["echo", "http", "http-request"]) {
    const times: Record<string, number[]> = { on: [], off: [] };
    const cpus: Record<string, number[]> = { on: [], off: [] };
    for (let i = 0; i < runs; i++) {
      for (const side of i % 2 ? ["off", "on"] : ["on", "off"]) {
        const env: Record<string, string> = side === "off"
          ? { TULIP_NO_INTERNALS: "1" }
          : { TULIP_NO_INTERNALS: "" };
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", self, "--child", kind],
          env,
          stdout: "piped",
          stderr: "inherit",
        }).output();
        if (!out.success) throw new Error(`Cannot run the ${kind} child`);
        const [wall, cpu] = JSON.parse(new TextDecoder().decode(out.stdout));
        times[side].push(wall);
        cpus[side].push(cpu);
      }
    }
    for (const side of ["on", "off"]) {
      const t = times[side];
      const c = cpus[side];
      console.log(
        `${kind} internals ${side.padEnd(3)}: wall min ${
          Math.min(...t).toFixed(1)
        } median ${median(t).toFixed(1)} µs; CPU min ${
          Math.min(...c).toFixed(1)
        } median ${median(c).toFixed(1)} µs per round trip`,
      );
    }
  }
}

if (Deno.args[0] === "--child") {
  console.log(JSON.stringify(await child(Deno.args[1])));
} else {
  const at = Deno.args.indexOf("--runs");
  await parent(at < 0 ? 5 : Number(Deno.args[at + 1]));
}
