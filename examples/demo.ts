/**
 * A short tour of tulip, printing what happens: tasks in both coroutine
 * styles, timers, cancellation and a task group on one loop.
 *
 * deno run --allow-net=127.0.0.1 --allow-run --allow-read --allow-env examples/demo.ts
 *
 * @module
 */

import {
  CancelledError,
  type Coroutine,
  getEventLoop,
  run,
  sleep,
  TaskGroup,
} from "../mod.ts";

const t0 = performance.now();
function say(who: string, what: string): void {
  const ms = (performance.now() - t0).toFixed(0).padStart(4);
  console.log(`${ms} ms  ${who.padEnd(10)} ${what}`);
}

function* ticker(name: string, every: number): Coroutine<never> {
  for (let i = 1;; i++) {
    yield* sleep(every);
    say(name, `tick ${i}`);
  }
}

function* stubborn(): Coroutine<string> {
  try {
    yield* sleep(10);
    return "finished";
  } catch (e) {
    if (!(e instanceof CancelledError)) throw e;
    say("stubborn", "cancelled; cleaning up for 30 ms first");
    yield* sleep(0.03);
    throw e;
  }
}

async function core(): Promise<void> {
  const loop = getEventLoop();
  say("loop", "callSoon and callLater");
  loop.callLater(0.05, () => say("timer", "50 ms timer fired"));
  loop.callSoon(() => say("callback", "callSoon ran first"));

  const tick = loop.createTask(ticker("ticker", 0.02), { name: "ticker" });
  const slow = loop.createTask(stubborn(), { name: "stubborn" });
  await sleep(0.07);
  say("main", "cancelling the ticker and the stubborn task");
  tick.cancel();
  slow.cancel();
  for (const t of [tick, slow]) {
    try {
      await t;
    } catch (e) {
      say("main", `${t.getName()} ended: ${(e as Error).name}`);
    }
  }

  say("main", "a TaskGroup where one child fails");
  const group = new TaskGroup();
  group.createTask(async () => {
    await sleep(0.01);
    throw new Error("boom");
  }, { name: "failing" });
  const sibling = group.createTask(async () => {
    try {
      await sleep(1);
    } catch (e) {
      say("sibling", `stopped by its group: ${(e as Error).name}`);
      throw e;
    }
  }, { name: "sibling" });
  try {
    await group.wait();
  } catch (e) {
    const errors = (e as AggregateError).errors.map((x) => x.message);
    say("main", `group failed with ${JSON.stringify(errors)}`);
  }
  say("main", `sibling cancelled: ${sibling.cancelled()}`);
}

await run(core);
say("main", "done");
