// An async-function task resumes within two iterations of the future it
// awaits completing, however busy the loop is: beside a generator task
// that spins on a bare `yield` (one yield per iteration), on the real
// loop and on VirtualTimeLoop, whose clock does not move.

import { assert } from "@std/assert";
import { CancelledError } from "../../futures/errors.ts";
import { BaseEventLoop } from "../../loop/base_event_loop.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { Condition } from "../../tasks/condition.ts";
import { Event } from "../../tasks/event.ts";
import { Queue } from "../../tasks/queue.ts";
import { sleep } from "../../tasks/sleep.ts";
import { withTaskGroup } from "../../tasks/task_group.ts";
import { timeout } from "../../tasks/timeout.ts";
import type { Coroutine, Task } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { Future } from "../../futures/future.ts";
import {
  pendingResumptions,
  requestMicrotaskCheckpoint,
  takeMicrotaskCheckpoint,
} from "../../futures/_runtime.ts";
import { assertEquals } from "@std/assert";

const LOOPS: [string, () => BaseEventLoop][] = [
  ["BaseEventLoop", () => new BaseEventLoop()],
  ["DenoEventLoop", () => new DenoEventLoop()],
  ["VirtualTimeLoop", () => new VirtualTimeLoop()],
];
// The spinner gives up after this many spins, so a starved task fails the
// test instead of hanging it.
const MAX_SPINS = 20_000;

interface Scenario {
  /** Starts the async side: a task whose result is the spin it resumed at. */
  start(loop: BaseEventLoop, spins: () => number): Task<number>;
  /**
   * Run by the spinner at spin `at` (a generator runs inside the spinner):
   * completes what the task awaits.
   */
  trigger(): void | Coroutine<void>;
}

/**
 * Runs `scenario` beside a spinning generator; returns how many spins
 * passed between the trigger and the async task's resumption.
 */
async function spinsToResume(
  makeLoop: () => BaseEventLoop,
  scenario: (loop: BaseEventLoop) => Scenario,
): Promise<number> {
  const loop = makeLoop();
  const at = 5;
  let spins = 0;
  const s = scenario(loop);
  function* spin(): Coroutine<void> {
    while (!task.done() && spins < MAX_SPINS) {
      spins++;
      if (spins === at) {
        const out = s.trigger();
        if (out !== undefined) yield* out;
      }
      yield;
    }
  }
  const spinner = loop.createTask(spin());
  const task = s.start(loop, () => spins);
  await loop.runUntilComplete(spinner);
  const resumedAt = await loop.runUntilComplete(task);
  loop.close();
  return resumedAt - at;
}

const scenarios: Record<string, (loop: BaseEventLoop) => Scenario> = {
  "Event.wait": () => {
    const event = new Event();
    return {
      start: (loop, spins) =>
        loop.createTask(async () => {
          await event.wait();
          return spins();
        }),
      trigger: () => event.set(),
    };
  },
  "Condition.wait": (loop) => {
    const cond = new Condition(undefined, { loop });
    return {
      start: (loop, spins) =>
        loop.createTask(async () => {
          await cond.acquire();
          await cond.wait();
          cond.release();
          return spins();
        }),
      trigger: function* () {
        yield* cond.acquire();
        cond.notify();
        cond.release();
      },
    };
  },
  "Condition.waitFor": (loop) => {
    const cond = new Condition(undefined, { loop });
    let ready = false;
    return {
      start: (loop, spins) =>
        loop.createTask(async () => {
          await cond.acquire();
          await cond.waitFor(() => ready);
          cond.release();
          return spins();
        }),
      trigger: function* () {
        yield* cond.acquire();
        ready = true;
        cond.notifyAll();
        cond.release();
      },
    };
  },
  "cancelling Queue.put": (loop) => {
    const queue = new Queue<number>(1, { loop });
    queue.putNowait(1);
    let putter: Task<number> | undefined;
    return {
      start: (loop, spins) =>
        putter = loop.createTask(async () => {
          try {
            await queue.put(2);
          } catch (e) {
            assert(e instanceof CancelledError);
          }
          return spins();
        }),
      trigger: () => void putter!.cancel(),
    };
  },
};

for (const [loopName, makeLoop] of LOOPS) {
  for (const [name, scenario] of Object.entries(scenarios)) {
    Deno.test(`${loopName}: an async task awaiting ${name} resumes within two iterations beside a spinning generator`, async () => {
      const late = await spinsToResume(makeLoop, scenario);
      assert(late <= 2, `resumed ${late} spins after the trigger`);
    });
  }
}

Deno.test("an async task that starts beside a spinning generator reaches its first await's resumption at once", async () => {
  for (const [, makeLoop] of LOOPS) {
    const loop = makeLoop();
    let spins = 0;
    let done = -1;
    const spin = function* (): Coroutine<void> {
      while (done < 0 && spins < MAX_SPINS) {
        spins++;
        yield;
      }
    };
    const spinner = loop.createTask(spin());
    loop.createTask(async () => {
      await sleep(0);
      await sleep(0);
      done = spins;
    });
    await loop.runUntilComplete(spinner);
    assert(done >= 0 && done <= 6, `done at spin ${done}`);
    loop.close();
  }
});

Deno.test("a chain of async functions returning into each other resumes within two iterations", async () => {
  for (const [, makeLoop] of LOOPS) {
    const loop = makeLoop();
    let spins = 0;
    const event = new Event({ loop });
    let at = -1;
    const inner = async (): Promise<void> => {
      await event.wait();
    };
    const middle = async (): Promise<void> => {
      await inner();
    };
    const spin = function* (): Coroutine<void> {
      while (at < 0 && spins < MAX_SPINS) {
        if (++spins === 5) event.set();
        yield;
      }
    };
    const spinner = loop.createTask(spin());
    loop.createTask(async () => {
      await middle();
      await sleep(0);
      at = spins;
    });
    await loop.runUntilComplete(spinner);
    assert(at >= 0 && at - 5 <= 3, `resumed at spin ${at}`);
    loop.close();
  }
});

Deno.test("an async task looping on sleep(0) beside a spinning generator gets a turn every iteration, as a bare yield does", async () => {
  for (const [name, makeLoop] of LOOPS) {
    const loop = makeLoop();
    let spins = 0;
    let sleeps = 0;
    const spin = function* (): Coroutine<void> {
      for (; spins < 1000; spins++) yield;
    };
    const sleeper = loop.createTask(async () => {
      for (;;) {
        await sleep(0);
        sleeps++;
      }
    });
    await loop.runUntilComplete(loop.createTask(spin()));
    sleeper.cancel();
    await loop.runUntilComplete(sleeper).catch(() => {});
    assert(sleeps >= 999, `${name}: ${sleeps} sleeps in 1000 spins`);
    loop.close();
  }
});

Deno.test("In a task, Future.then() on a pending future counts as waiting; on a done one, as going on", async () => {
  const loop = new BaseEventLoop();
  const seen: number[] = [];
  const task = loop.createTask(async () => {
    takeMicrotaskCheckpoint();
    requestMicrotaskCheckpoint();
    // The resumed code awaits a done future: it does not wait, so it is
    // still counted as resuming (asyncio's await of a done future does
    // not yield).
    const done = new Future<number>({ loop });
    done.setResult(1);
    done.then(() => {});
    seen.push(pendingResumptions());
    new Future<number>({ loop }).then(() => {});
    seen.push(pendingResumptions());
    await null;
  });
  await loop.runUntilComplete(task);
  assertEquals(seen, [1, 0]);
  loop.close();
});

Deno.test("a task step through deeply nested async code that never waits runs before the next callback, on every loop", async () => {
  // asyncio runs a task's step until it really waits: async functions
  // returning into each other, TaskGroups and timeout scopes with nothing
  // to wait for, however deep, let no callback in. (A Simulation's host,
  // which lets microtasks settle after each iteration, always did.)
  const chain = async (depth: number): Promise<void> => {
    if (depth > 0) await chain(depth - 1);
  };
  const scopes = async (loop: BaseEventLoop, depth: number): Promise<void> => {
    if (depth === 0) return;
    if (depth % 2 === 0) {
      await withTaskGroup(async () => await scopes(loop, depth - 1), { loop });
    } else {
      await timeout(10, { loop }).scope(async () => {
        await scopes(loop, depth - 1);
      });
    }
  };
  for (const [name, makeLoop] of LOOPS) {
    const loop = makeLoop();
    const seen: string[] = [];
    await loop.runUntilComplete(loop.createTask(async () => {
      loop.callSoon(() => seen.push("callback"));
      await chain(40);
      seen.push("chain");
      await sleep(0);
      loop.callSoon(() => seen.push("callback"));
      await scopes(loop, 8);
      seen.push("scopes");
      await sleep(0);
    }));
    assertEquals(seen, ["chain", "callback", "scopes", "callback"], name);
    loop.close();
  }
});
