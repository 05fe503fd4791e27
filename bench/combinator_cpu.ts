/**
 * A busy loop completing futures that one async task awaits through a
 * promise combinator: a `callSoon` chain completes one of 100 futures per
 * callback while the task waits on `Promise.all()` (all fulfilled),
 * `Promise.allSettled()` (every other one rejected), `Promise.any()` (all
 * but the last rejected) or `Promise.race()` (then an `await` of the last
 * one, so that the other 98 complete after the race is over). Each
 * completion costs the loop's wait for resumed code, though most resume
 * nothing but the combinator (bench/README.md says why). Prints chain
 * callbacks per second, by CPU time
 * (`process.cpuUsage()`) and by wall time: the least and the median of 7
 * runs.
 *
 * To compare two versions of the loop side by side, point it at another
 * checkout of the tree and alternate:
 *
 * deno run -A bench/combinator_cpu.ts [--tree /path/to/other/tree]
 *
 * @module
 */

import { cpuNs, treeUrl } from "./_cpu.ts";

const RUNS = 7;
const WIDTH = 100;
const BATCHES = 200;

const tree = treeUrl();
const mod = await import(new URL("mod.ts", tree).href);
const { BaseEventLoop, Future } = mod;

interface Fut {
  setResult(v: number): void;
  setException(e: unknown): void;
}
type Kind = "all" | "allSettled" | "any" | "race";
const loop = new BaseEventLoop();
const failure = new Error("no");

// One batch: WIDTH futures, a callSoon chain completing one per callback,
// and the task's wait on them.
async function batch(kind: Kind): Promise<void> {
  const fs: Fut[] = [];
  for (let k = 0; k < WIDTH; k++) fs.push(new Future({ loop }));
  let k = 0;
  const tick = () => {
    const f = fs[k];
    const fail = kind === "any"
      ? k < WIDTH - 1
      : kind === "allSettled" && k % 2 === 1;
    if (fail) f.setException(failure);
    else f.setResult(k);
    if (++k < WIDTH) loop.callSoon(tick);
  };
  loop.callSoon(tick);
  const ps = fs as unknown as PromiseLike<number>[];
  if (kind === "all") await Promise.all(ps);
  else if (kind === "allSettled") await Promise.allSettled(ps);
  else if (kind === "any") await Promise.any(ps);
  else {
    await Promise.race(ps);
    await ps[WIDTH - 1];
  }
}

async function measure(kind: Kind): Promise<[number[], number[]]> {
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const c0 = cpuNs();
    const w0 = performance.now();
    await loop.runUntilComplete(loop.createTask(async () => {
      for (let b = 0; b < BATCHES; b++) await batch(kind);
    }));
    const n = BATCHES * WIDTH;
    cpu.push(n / ((cpuNs() - c0) / 1e9));
    wall.push(n / ((performance.now() - w0) / 1e3));
  }
  // Best first.
  return [cpu.sort((a, b) => b - a), wall.sort((a, b) => b - a)];
}

const M = (x: number) => (x / 1e6).toFixed(2);
console.log(`tree: ${tree}`);
for (const kind of ["all", "allSettled", "any", "race"] as const) {
  const [cpu, wall] = await measure(kind);
  const mid = RUNS >> 1;
  console.log(
    `Promise.${kind}() of ${WIDTH}, chain callbacks/s`.padEnd(46) +
      `CPU best ${M(cpu[0])} M, median ${M(cpu[mid])} M; wall best ${
        M(wall[0])
      } M, median ${M(wall[mid])} M`,
  );
}
loop.close();
