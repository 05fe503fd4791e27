/**
 * How late timers fire: the host's own `setTimeout` against tulip's
 * `callLater`, for delays from 1 to 20 ms. Prints median and p99 lateness
 * in milliseconds, and checks that no timer fired early. Then the CPU time
 * an idle loop spends per second of waiting on a repeating timer (100 ms,
 * and 1 ms: the loop finishes short waits by blocking the thread, within a
 * budget), read with `process.cpuUsage()`. Last, what those blocks cost a
 * promise of the host's that the loop does not know of: round trips of a
 * raw `Deno.Conn` awaited in a task while the loop runs a 1 ms repeating
 * timer, against a peer thread that answers each byte 3 ms later (the
 * same round trips with no timer running are the floor).
 *
 * deno run -A bench/timer_lateness.ts [--samples N]
 *
 * `--samples` (default 500) is per delay and per timer kind: with fewer
 * than 100 the "p99" is simply the worst sample, one hiccup of a shared
 * machine.
 *
 * @module
 */

import process from "node:process";
import { newEventLoop } from "../mod.ts";

const DELAYS_MS = [1, 2, 5, 10, 20];
const at = Deno.args.indexOf("--samples");
const SAMPLES = at < 0 ? 500 : Number(Deno.args[at + 1]);
if (!Number.isInteger(SAMPLES) || SAMPLES < 1) {
  throw new TypeError(
    `--samples must be a whole number of at least 1, received ${
      Deno.args[at + 1]
    }`,
  );
}

function stats(lateness: number[]): string {
  const s = [...lateness].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return `median ${at(0.5).toFixed(3)} ms, p99 ${at(0.99).toFixed(3)} ms`;
}

async function hostLateness(ms: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const start = performance.now();
    await new Promise((r) => setTimeout(r, ms));
    out.push(performance.now() - start - ms);
  }
  return out;
}

async function loopLateness(ms: number): Promise<number[]> {
  const loop = newEventLoop();
  const out: number[] = [];
  try {
    for (let i = 0; i < SAMPLES; i++) {
      const done = loop.createFuture<void>();
      const start = performance.now();
      loop.callAt(loop.time() + ms / 1000, () => {
        out.push(performance.now() - start - ms);
        done.setResult(undefined);
      });
      await loop.runUntilComplete(done);
    }
  } finally {
    loop.close();
  }
  return out;
}

let early = 0;
for (const ms of DELAYS_MS) {
  const host = await hostLateness(ms);
  const ours = await loopLateness(ms);
  early += ours.filter((x) => x < 0).length;
  console.log(
    `${String(ms).padStart(2)} ms  setTimeout: ${stats(host)}   callLater: ${
      stats(ours)
    }`,
  );
}
console.log(`timers fired early: ${early}`);

/** CPU milliseconds per second of a loop idling on a repeating timer. */
async function idleCpu(interval: number, seconds: number): Promise<number> {
  const loop = newEventLoop();
  try {
    const done = loop.createFuture<void>();
    const handle = loop.callRepeatedly(interval, () => {});
    loop.callLater(seconds, () => done.setResult(undefined));
    const before = process.cpuUsage();
    const start = performance.now();
    await loop.runUntilComplete(done);
    const used = process.cpuUsage(before);
    handle.cancel();
    return (used.user + used.system) / 1000 /
      ((performance.now() - start) / 1000);
  } finally {
    loop.close();
  }
}

for (const interval of [0.1, 0.001]) {
  const cpu = await idleCpu(interval, 2);
  console.log(
    `idle loop, one ${interval * 1000} ms repeating timer: ${
      cpu.toFixed(1)
    } ms CPU per second`,
  );
}

// The peer runs in a worker, so that its answers arrive while this thread
// blocks. It answers each byte after a 3 ms host timer.
const PEER = `
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
self.postMessage(listener.addr.port);
for await (const conn of listener) {
  const b = new Uint8Array(16);
  for (let n; (n = await conn.read(b)) !== null;) {
    await new Promise((r) => setTimeout(r, 3));
    await conn.write(b.subarray(0, n));
  }
  conn.close();
}`;

/** Round trips of a raw connection, in ms, with or without a 1 ms timer. */
async function rawRoundTrips(withTimer: boolean): Promise<number[]> {
  const worker = new Worker(
    URL.createObjectURL(new Blob([PEER], { type: "application/javascript" })),
    { type: "module" },
  );
  const port = await new Promise<number>((r) =>
    worker.onmessage = (e) => r(e.data)
  );
  const loop = newEventLoop();
  const ticker = withTimer ? loop.callRepeatedly(0.001, () => {}) : null;
  try {
    return await loop.runUntilComplete(loop.createTask(async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const b = new Uint8Array(1);
      const out: number[] = [];
      for (let i = 0; i < 100; i++) {
        const start = performance.now();
        await conn.write(b);
        await conn.read(b);
        out.push(performance.now() - start);
      }
      conn.close();
      return out;
    }));
  } finally {
    ticker?.cancel();
    loop.close();
    worker.terminate();
  }
}

const floor = await rawRoundTrips(false);
const timed = await rawRoundTrips(true);
console.log(
  `raw Deno round trip, peer answers in 3 ms: no timer ${stats(floor)}; ` +
    `1 ms repeating timer ${stats(timed)}`,
);
