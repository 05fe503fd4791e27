/**
 * How late timers fire: the host's own `setTimeout` against tulip's
 * `callLater`, for delays from 1 to 20 ms. Prints median and p99 lateness
 * in milliseconds, and checks that no timer fired early. Then the CPU time
 * an idle loop spends per second of waiting on a repeating timer (100 ms,
 * and 1 ms: the loop finishes short waits by blocking the thread, within a
 * budget), read with `process.cpuUsage()`.
 *
 * deno run -A bench/timer_lateness.ts
 *
 * @module
 */

import process from "node:process";
import { newEventLoop } from "../mod.ts";

const DELAYS_MS = [1, 2, 5, 10, 20];
const SAMPLES = 50;

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
