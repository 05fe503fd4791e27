/**
 * Server CPU time of TLS, tulip's server (`node:tls` over TCP sockets it
 * owns, so that giving up on a connection frees its socket at once) beside
 * a raw `Deno.listenTls()` echo server, each in its own process, read from
 * `/proc/<pid>/stat` around the measured part:
 *
 * - per small round trip: one connection, 64-byte messages echoed one at a
 *   time;
 * - per byte: 64 MiB sent on one connection and echoed back;
 * - per connection: connections opened one after another, each with one
 *   round trip, then closed.
 *
 * Prints µs per round trip, ns per byte and ms per connection, the least of
 * `--runs N` (default 3) rounds; the two servers alternate within a round.
 * Linux only (`/proc`); uses the test certificates in `tests/fixtures/tls/`.
 *
 * ```sh
 * deno run -A bench/tls_cpu.ts [--runs 3]
 * ```
 *
 * @module
 */

import { cpuTicks, spawn, stop, waitForLine } from "./harness/_proc.ts";
import type { Proc } from "./harness/_proc.ts";

const HOST = "127.0.0.1";
const FIXTURES = new URL("../tests/fixtures/tls/", import.meta.url);
const cert = Deno.readTextFileSync(new URL("server.pem", FIXTURES));
const key = Deno.readTextFileSync(new URL("server.key", FIXTURES));
const ca = Deno.readTextFileSync(new URL("ca.pem", FIXTURES));

const ROUND_TRIPS = 5_000;
const BULK_BYTES = 64 * 1024 * 1024;
const CONNECTIONS = 300;
const TICKS_PER_S = 100; // getconf CLK_TCK on Linux

// ---------------------------------------------------------------------------
// The servers (this file run with --serve tulip|deno)

async function serveDeno(): Promise<void> {
  const listener = Deno.listenTls({ hostname: HOST, port: 0, cert, key });
  console.log(`listening ${(listener.addr as Deno.NetAddr).port}`);
  for await (const conn of listener) {
    (async () => {
      const buf = new Uint8Array(64 * 1024);
      try {
        for (let n; (n = await conn.read(buf)) !== null;) {
          for (let at = 0; at < n;) at += await conn.write(buf.subarray(at, n));
        }
      } catch {
        // The client went away.
      } finally {
        try {
          conn.close();
        } catch {
          // Closed already.
        }
      }
    })();
  }
}

async function serveTulip(): Promise<void> {
  const { newEventLoop, Protocol } = await import("../mod.ts");
  const loop = newEventLoop();
  class Echo extends Protocol {
    #t: { write(data: Uint8Array): void } | null = null;
    override connectionMade(t: { write(data: Uint8Array): void }): void {
      this.#t = t;
    }
    override dataReceived(data: Uint8Array): void {
      this.#t!.write(data);
    }
  }
  const server = await loop.runUntilComplete(
    loop.createServer(() => new Echo(), HOST, 0, { ssl: { cert, key } }),
  );
  console.log(`listening ${(server.addresses()[0] as Deno.NetAddr).port}`);
  await loop.runForever();
}

// ---------------------------------------------------------------------------
// The client (this process)

function connect(port: number): Promise<Deno.TlsConn> {
  return Deno.connectTls({
    hostname: "localhost",
    port,
    caCerts: [ca],
  });
}

async function readFully(conn: Deno.Conn, buf: Uint8Array): Promise<void> {
  for (let at = 0; at < buf.length;) {
    const n = await conn.read(buf.subarray(at));
    if (n === null) throw new Error("the server closed the connection");
    at += n;
  }
}

async function roundTrips(port: number): Promise<void> {
  const conn = await connect(port);
  const out = new Uint8Array(64).fill(120);
  const back = new Uint8Array(64);
  for (let i = 0; i < ROUND_TRIPS; i++) {
    await conn.write(out);
    await readFully(conn, back);
  }
  conn.close();
}

async function bulk(port: number): Promise<void> {
  const conn = await connect(port);
  const piece = new Uint8Array(64 * 1024).fill(120);
  const writing = (async () => {
    for (let sent = 0; sent < BULK_BYTES; sent += piece.length) {
      for (let at = 0; at < piece.length;) {
        at += await conn.write(piece.subarray(at));
      }
    }
  })();
  await readFully(conn, new Uint8Array(BULK_BYTES));
  await writing;
  conn.close();
}

async function connections(port: number): Promise<void> {
  const out = new Uint8Array(64).fill(120);
  const back = new Uint8Array(64);
  for (let i = 0; i < CONNECTIONS; i++) {
    const conn = await connect(port);
    await conn.write(out);
    await readFully(conn, back);
    conn.close();
  }
}

/** The server's CPU seconds over `work`. */
async function serverCpu(server: Proc, work: () => Promise<void>) {
  const before = cpuTicks(server.pid);
  await work();
  return (cpuTicks(server.pid) - before) / TICKS_PER_S;
}

async function main(): Promise<void> {
  const r = Deno.args.indexOf("--runs");
  const runs = r >= 0 ? Number(Deno.args[r + 1]) : 3;
  const names = ["tulip", "deno"] as const;
  const best = new Map<string, number[]>(names.map((n) => [n, [
    Infinity,
    Infinity,
    Infinity,
  ]]));
  for (let run = 0; run < runs; run++) {
    for (const name of names) {
      const server = spawn([
        Deno.execPath(),
        "run",
        "-A",
        new URL(import.meta.url).pathname,
        "--serve",
        name,
      ]);
      try {
        const port = Number(
          (await waitForLine(server, /^listening \d+/)).split(" ")[1],
        );
        await roundTrips(port); // warm up
        const figures = [
          (await serverCpu(server, () => roundTrips(port))) / ROUND_TRIPS *
          1e6,
          (await serverCpu(server, () => bulk(port))) / BULK_BYTES * 1e9,
          (await serverCpu(server, () => connections(port))) / CONNECTIONS *
          1e3,
        ];
        const kept = best.get(name)!;
        figures.forEach((f, i) => kept[i] = Math.min(kept[i], f));
      } finally {
        await stop(server);
      }
    }
  }
  console.log(
    `server CPU, least of ${runs} runs: per 64-byte round trip, per byte echoed, per connection (handshake, one round trip, close)`,
  );
  for (const name of names) {
    const [trip, byte, conn] = best.get(name)!;
    console.log(
      `${name === "tulip" ? "tulip (node:tls)  " : "Deno.listenTls()  "}${
        trip.toFixed(1).padStart(6)
      } µs ${byte.toFixed(2).padStart(6)} ns/B ${
        conn.toFixed(2).padStart(6)
      } ms`,
    );
  }
}

const serve = Deno.args.indexOf("--serve");
if (serve >= 0) {
  await (Deno.args[serve + 1] === "tulip" ? serveTulip() : serveDeno());
} else {
  await main();
}
