/**
 * CPU time per scheduler operation, read with `process.cpuUsage()`, which
 * on a shared machine swings far less than wall time: a `callSoon` chain
 * (per callback), and a task awaiting a pending future set by a `callSoon`
 * (per await-and-resume round), written as an async function and as a
 * generator. Prints the least and the median of 11 runs.
 *
 * To compare two versions of the loop side by side, point it at another
 * checkout of the tree and alternate:
 *
 * deno run -A bench/scheduler_cpu.ts [--tree /path/to/other/tree]
 *
 * @module
 */

import { cpuNs, treeUrl } from "./_cpu.ts";

const RUNS = 11;
const CHAIN = 1_000_000;
const ROUNDS = 100_000;

const tree = treeUrl();
const mod = await import(new URL("mod.ts", tree).href);
const { BaseEventLoop, Future } = mod;

type Fut = { setResult(v: number): void };
const loop = new BaseEventLoop();
const settle = (f: Fut, v: number) => f.setResult(v);

async function measure(
  per: number,
  body: () => Promise<void>,
): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const start = cpuNs();
    await body();
    out.push((cpuNs() - start) / per);
  }
  return out.sort((a, b) => a - b);
}

const chain = await measure(CHAIN, async () => {
  let n = 0;
  const tick = () => {
    if (++n < CHAIN) loop.callSoon(tick);
    else loop.stop();
  };
  loop.callSoon(tick);
  await loop.runForever();
});

const asyncAwait = await measure(ROUNDS, async () => {
  await loop.runUntilComplete(loop.createTask(async () => {
    for (let i = 0; i < ROUNDS; i++) {
      const f = new Future({ loop });
      loop.callSoon(settle, f, i);
      await f;
    }
  }));
});

const generatorAwait = await measure(ROUNDS, async () => {
  function* waiter(): Generator<unknown, void, unknown> {
    for (let i = 0; i < ROUNDS; i++) {
      const f = new Future({ loop });
      loop.callSoon(settle, f, i);
      yield* f;
    }
  }
  await loop.runUntilComplete(loop.createTask(waiter()));
});

loop.close();
const show = (name: string, xs: number[]) =>
  console.log(
    `${name.padEnd(52)} min ${xs[0].toFixed(0).padStart(5)} ns, median ${
      xs[xs.length >> 1].toFixed(0).padStart(5)
    } ns`,
  );
console.log(`tree: ${tree}`);
show("callSoon chain, per callback", chain);
show("async task: await a pending Future, per round", asyncAwait);
show("generator task: yield* a pending Future, per round", generatorAwait);
