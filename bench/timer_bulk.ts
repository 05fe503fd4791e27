/**
 * Timers in bulk, measured in CPU time: 100,000 `callLater` timers with
 * delays spread over 0–100 ms, scheduled from one loop callback, every
 * other one cancelled, the rest run; and Deno's `setTimeout` /
 * `clearTimeout` doing the same. Prints the median and quartiles over 30
 * rounds (the first 5 dropped as warm-up) of the process's CPU time per
 * timer (`process.cpuUsage()`: every thread, the collector's included) and
 * of the wall time. On a shared machine wall time counts the time other
 * programs held the core; CPU time does not, so compare CPU figures.
 *
 * deno run -A bench/timer_bulk.ts
 *
 * @module
 */

import process from "node:process";
import { BaseEventLoop, type TimerHandle } from "../mod.ts";

const TIMERS = 100_000;
const ROUNDS = 30;
const WARMUP = 5;

function noop() {}

// A fixed-seed spread of delays over 0–100 ms, in seconds.
const delays = new Float64Array(TIMERS);
let seed = 12345;
for (let i = 0; i < TIMERS; i++) {
  seed = (seed * 1103515245 + 12345) >>> 0;
  delays[i] = (seed / 2 ** 32) * 0.1;
}

/** CPU and wall time, in ns, since `from` (both from `mark()`). */
function mark(): [number, number] {
  const { user, system } = process.cpuUsage();
  return [(user + system) * 1000, performance.now() * 1e6];
}

const samples = new Map<string, { cpu: number[]; wall: number[] }>();

function record(what: string, from: [number, number], count: number): void {
  const to = mark();
  let s = samples.get(what);
  if (s === undefined) samples.set(what, s = { cpu: [], wall: [] });
  s.cpu.push((to[0] - from[0]) / count);
  s.wall.push((to[1] - from[1]) / count);
}

const loop = new BaseEventLoop();
const handles = new Array<TimerHandle>(TIMERS);
const ids = new Array<ReturnType<typeof setTimeout>>(TIMERS);

for (let round = 0; round < ROUNDS; round++) {
  // tulip: schedule and cancel within one callback (a shared clock read).
  loop.callSoon(() => {
    // Due in the past, so that the next iteration runs the live half.
    const base = loop.time() - 1;
    let t = mark();
    for (let i = 0; i < TIMERS; i++) {
      handles[i] = loop.callAt(base + delays[i], noop);
    }
    record("tulip callAt, per timer", t, TIMERS);
    t = mark();
    for (let i = 0; i < TIMERS; i += 2) handles[i].cancel();
    record("tulip cancel(), per timer", t, TIMERS / 2);
    loop.stop();
  });
  await loop.runForever();
  let t = mark();
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  record("tulip: run the 50,000 live ones, per timer", t, TIMERS / 2);

  // tulip, as programs schedule them: callLater from a callback.
  loop.callSoon(() => {
    const t = mark();
    for (let i = 0; i < TIMERS; i++) {
      handles[i] = loop.callLater(delays[i], noop);
    }
    record("tulip callLater, per timer", t, TIMERS);
    for (let i = 0; i < TIMERS; i++) handles[i].cancel();
    loop.stop();
  });
  await loop.runForever();

  // Native.
  t = mark();
  for (let i = 0; i < TIMERS; i++) ids[i] = setTimeout(noop, delays[i] * 1000);
  record("setTimeout, per timer", t, TIMERS);
  t = mark();
  for (let i = 0; i < TIMERS; i += 2) clearTimeout(ids[i]);
  record("clearTimeout, per timer", t, TIMERS / 2);
  for (let i = 1; i < TIMERS; i += 2) clearTimeout(ids[i]);
}
loop.close();

function quartiles(values: number[]): string {
  const v = values.slice(WARMUP).sort((a, b) => a - b);
  const at = (p: number) => v[Math.floor((v.length - 1) * p)].toFixed(0);
  return `${at(0.5)} (${at(0.25)}–${at(0.75)})`;
}

console.log(
  "| ns per timer | CPU: median (quartiles) | wall: median (quartiles) |",
);
console.log("| --- | ---: | ---: |");
for (const [what, s] of samples) {
  console.log(`| ${what} | ${quartiles(s.cpu)} | ${quartiles(s.wall)} |`);
}
