/**
 * Timers in bulk: 100,000 `callLater` timers with delays spread over
 * 0–100 ms, scheduled from one loop callback, every other one cancelled,
 * next to the same with Deno's `setTimeout` / `clearTimeout`. The schedule
 * and cancel phases are timed apart (`b.start()` / `b.end()`): divide a
 * schedule bench's time by 100,000 and a cancel bench's by 50,000 for the
 * per-timer figures in bench/README.md.
 *
 * deno bench -A bench/timer_bench.ts
 *
 * @module
 */

import { BaseEventLoop, type TimerHandle } from "../mod.ts";

const TIMERS = 100_000;

const loop = new BaseEventLoop();

function noop() {}

// The same spread for every iteration and both timer kinds; drawn from a
// fixed-seed generator so runs compare.
const delays = new Float64Array(TIMERS);
let seed = 12345;
for (let i = 0; i < TIMERS; i++) {
  seed = (seed * 1103515245 + 12345) >>> 0;
  delays[i] = (seed / 2 ** 32) * 0.1;
}

/** Runs `fn` as a callback of the loop and waits for the loop to stop. */
async function inLoop(fn: () => void): Promise<void> {
  loop.callSoon(() => {
    fn();
    loop.stop();
  });
  await loop.runForever();
}

const handles = new Array<TimerHandle>(TIMERS);

/** Cancels the timers an iteration left, outside the timed part. */
function cancelAll(): void {
  for (let i = 0; i < TIMERS; i++) handles[i].cancel();
}

Deno.bench("callLater ×100,000 over 0–100 ms (schedule)", {
  group: "schedule",
  baseline: true,
}, async (b) => {
  await inLoop(() => {
    b.start();
    for (let i = 0; i < TIMERS; i++) {
      handles[i] = loop.callLater(delays[i], noop);
    }
    b.end();
  });
  cancelAll();
});

const ids = new Array<ReturnType<typeof setTimeout>>(TIMERS);

Deno.bench("setTimeout ×100,000 over 0–100 ms (native)", {
  group: "schedule",
}, (b) => {
  b.start();
  for (let i = 0; i < TIMERS; i++) ids[i] = setTimeout(noop, delays[i] * 1000);
  b.end();
  for (let i = 0; i < TIMERS; i++) clearTimeout(ids[i]);
});

Deno.bench("TimerHandle.cancel ×50,000 of 100,000 (every other one)", {
  group: "cancel",
  baseline: true,
}, async (b) => {
  await inLoop(() => {
    for (let i = 0; i < TIMERS; i++) {
      handles[i] = loop.callLater(delays[i], noop);
    }
    b.start();
    for (let i = 0; i < TIMERS; i += 2) handles[i].cancel();
    b.end();
  });
  cancelAll();
});

Deno.bench("clearTimeout ×50,000 of 100,000 (native)", {
  group: "cancel",
}, (b) => {
  for (let i = 0; i < TIMERS; i++) ids[i] = setTimeout(noop, delays[i] * 1000);
  b.start();
  for (let i = 0; i < TIMERS; i += 2) clearTimeout(ids[i]);
  b.end();
  for (let i = 1; i < TIMERS; i += 2) clearTimeout(ids[i]);
});

Deno.bench("callLater ×100,000, cancel half, run the rest (fire)", {
  group: "fire",
}, async (b) => {
  // Due at once (the loop's clock is pushed past them): measures popping
  // 50,000 live timers among 50,000 cancelled ones and running them.
  b.start();
  await inLoop(() => {
    for (let i = 0; i < TIMERS; i++) {
      handles[i] = loop.callLater(delays[i] - 0.2, noop);
    }
    for (let i = 0; i < TIMERS; i += 2) handles[i].cancel();
  });
  await inLoop(noop);
  b.end();
});
