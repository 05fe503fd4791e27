/**
 * Benchmarks of the scheduler: callbacks, timers, task switches, futures.
 * Each bench does a fixed number of operations; divide by it for a per-op
 * figure (bench/README.md lists them).
 *
 * deno task bench  (or: deno bench bench/loop_bench.ts)
 *
 * @module
 */

import {
  BaseEventLoop,
  type Coroutine,
  Future,
  sleep,
  type TimerHandle,
} from "../mod.ts";
import { VirtualTimeLoop } from "../testing/mod.ts";

const CHAIN = 1_000_000;
const TIMERS = 100_000;
const SWITCHES = 100_000;
const FUTURES = 100_000;
const POLLS = 10_000;

const loop = new BaseEventLoop();
const vloop = new VirtualTimeLoop();

// ---- callSoon chain: 1,000,000 callbacks, each scheduling the next ----

Deno.bench("callSoon chain (1,000,000 callbacks)", {
  group: "chain",
  baseline: true,
}, async () => {
  let n = 0;
  const tick = () => {
    if (++n < CHAIN) loop.callSoon(tick);
    else loop.stop();
  };
  loop.callSoon(tick);
  await loop.runForever();
});

Deno.bench("queueMicrotask chain (1,000,000; never polls I/O)", {
  group: "chain",
}, async () => {
  let n = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      if (++n < CHAIN) queueMicrotask(tick);
      else resolve();
    };
    queueMicrotask(tick);
  });
});

Deno.bench("setImmediate chain (100,000; polls I/O each hop)", {
  group: "chain",
}, async () => {
  let n = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      if (++n < CHAIN / 10) setImmediate(tick);
      else resolve();
    };
    setImmediate(tick);
  });
});

// ---- timers: schedule 100,000 over 0–100 ms, cancel half ----
// Scheduled from a callback, as programs do: timers set within one
// iteration share a clock read (see BaseEventLoop.callLater).

function noop() {}

/** Runs `fn` as a callback of the loop and waits for the loop to stop. */
async function inLoop(fn: () => void): Promise<void> {
  loop.callSoon(() => {
    fn();
    loop.stop();
  });
  await loop.runForever();
}

function schedule(handles: TimerHandle[]): void {
  for (let i = 0; i < TIMERS; i++) {
    handles[i] = loop.callLater((i % 1000) * 0.0001, noop);
  }
}

Deno.bench("callLater ×100,000 + cancel half", {
  group: "timers",
  baseline: true,
}, async () => {
  const handles = new Array<TimerHandle>(TIMERS);
  await inLoop(() => {
    schedule(handles);
    for (let i = 0; i < TIMERS; i += 2) handles[i].cancel();
  });
  for (let i = 1; i < TIMERS; i += 2) handles[i].cancel();
});

Deno.bench("callLater ×100,000 (schedule only)", {
  group: "timers",
}, async (b) => {
  const handles = new Array<TimerHandle>(TIMERS);
  await inLoop(() => {
    b.start();
    schedule(handles);
    b.end();
  });
  for (const h of handles) h.cancel();
});

Deno.bench("TimerHandle.cancel ×100,000", { group: "timers" }, async (b) => {
  const handles = new Array<TimerHandle>(TIMERS);
  await inLoop(() => schedule(handles));
  b.start();
  for (let i = 0; i < TIMERS; i++) handles[i].cancel();
  b.end();
});

Deno.bench("setTimeout ×100,000 + clearTimeout all (native)", {
  group: "timers",
}, () => {
  const ids = new Array(TIMERS);
  for (let i = 0; i < TIMERS; i++) ids[i] = setTimeout(noop, i % 100);
  for (let i = 0; i < TIMERS; i++) clearTimeout(ids[i]);
});

// ---- an iteration that polls the host ----

Deno.bench("loop.runOnce() ×10,000, one callback ready each", {
  group: "poll",
  baseline: true,
}, async () => {
  for (let i = 0; i < POLLS; i++) {
    loop.callSoon(noop);
    await loop.runOnce();
  }
});

Deno.bench("setImmediate hop ×10,000 (native)", { group: "poll" }, async () => {
  for (let i = 0; i < POLLS; i++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
});

// ---- task switches ----

Deno.bench("generator task: bare yield ×100,000", {
  group: "switch",
  baseline: true,
}, async () => {
  function* spin(): Coroutine<void> {
    for (let i = 0; i < SWITCHES; i++) yield;
  }
  await loop.runUntilComplete(loop.createTask(spin()));
});

Deno.bench("generator task: yield* done future ×100,000", {
  group: "switch",
}, async () => {
  const done = loop.createFuture<number>();
  done.setResult(1);
  function* spin(): Coroutine<number> {
    let sum = 0;
    for (let i = 0; i < SWITCHES; i++) sum += yield* done;
    return sum;
  }
  await loop.runUntilComplete(loop.createTask(spin()));
});

Deno.bench("async function: await null ×100,000 (native)", {
  group: "switch",
}, async () => {
  for (let i = 0; i < SWITCHES; i++) await null;
});

// ---- futures ----

Deno.bench("Future: create + setResult ×100,000", {
  group: "future",
  baseline: true,
}, () => {
  for (let i = 0; i < FUTURES; i++) {
    const f = new Future<number>({ loop });
    f.setResult(i);
  }
});

Deno.bench("Promise: create + resolve ×100,000 (native)", {
  group: "future",
}, () => {
  for (let i = 0; i < FUTURES; i++) {
    let resolve!: (v: number) => void;
    new Promise<number>((r) => resolve = r);
    resolve(i);
  }
});

Deno.bench("async task: await a resolved Future ×100,000", {
  group: "await",
  baseline: true,
}, async () => {
  await loop.runUntilComplete(loop.createTask(async () => {
    for (let i = 0; i < FUTURES; i++) {
      const f = new Future<number>({ loop });
      f.setResult(i);
      await f;
    }
  }));
});

function settle(f: Future<number>, v: number): void {
  f.setResult(v);
}

Deno.bench("async task: await a pending Future ×100,000 (set by callSoon)", {
  group: "await",
}, async () => {
  await loop.runUntilComplete(loop.createTask(async () => {
    for (let i = 0; i < FUTURES; i++) {
      const f = new Future<number>({ loop });
      loop.callSoon(settle, f, i);
      await f;
    }
  }));
});

Deno.bench(
  "generator task: yield* a pending Future ×100,000 (set by callSoon)",
  {
    group: "await",
  },
  async () => {
    function* waiter(): Coroutine<void> {
      for (let i = 0; i < FUTURES; i++) {
        const f = new Future<number>({ loop });
        loop.callSoon(settle, f, i);
        yield* f;
      }
    }
    await loop.runUntilComplete(loop.createTask(waiter()));
  },
);

Deno.bench("async function: await a resolved Promise ×100,000 (native)", {
  group: "await",
}, async () => {
  for (let i = 0; i < FUTURES; i++) await Promise.resolve(i);
});

// ---- virtual time ----

Deno.bench("VirtualTimeLoop: sleep(30) ×1,000 in a task", {
  group: "virtual",
  baseline: true,
}, async () => {
  await vloop.runUntilComplete(vloop.createTask(async () => {
    for (let i = 0; i < 1000; i++) await sleep(30);
  }));
});

Deno.bench("VirtualTimeLoop: sleep(30) ×1,000 in a generator", {
  group: "virtual",
}, async () => {
  function* sleeper(): Coroutine<void> {
    for (let i = 0; i < 1000; i++) yield* sleep(30);
  }
  await vloop.runUntilComplete(vloop.createTask(sleeper()));
});

globalThis.addEventListener("unload", () => {
  loop.close();
  vloop.close();
});
