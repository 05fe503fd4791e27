// This file deliberately does not import tasks/: it owns the await hook
// while it runs (each test file runs in its own isolate).

import { assertEquals, assertFalse, assertStrictEquals } from "@std/assert";
import { Future } from "../../futures/future.ts";
import { getRunningLoop } from "../../futures/running_loop.ts";
import {
  foreignTurnRequested,
  noteAwaitParked,
  notifyAwait,
  pendingResumptions,
  requestMicrotaskCheckpoint,
  setAwaitHook,
  setRunningLoop,
  takeMicrotaskCheckpoint,
} from "../../futures/_runtime.ts";
import { BaseEventLoop } from "../../loop/base_event_loop.ts";

// ---- The running-loop slot ----

Deno.test("setRunningLoop() sets the slot and returns the previous value", () => {
  const loop = new BaseEventLoop();
  const before = setRunningLoop(loop);
  try {
    assertEquals(before, null);
    assertStrictEquals(getRunningLoop(), loop);
    assertStrictEquals(setRunningLoop(null), loop);
    assertEquals(getRunningLoop(), null);
  } finally {
    setRunningLoop(before);
  }
  loop.close();
});

// ---- The await hook ----

Deno.test("setAwaitHook() installs the function that notifyAwait() calls", () => {
  const seen: unknown[] = [];
  setAwaitHook((f) => seen.push(f));
  try {
    const token = {};
    notifyAwait(token);
    assertEquals(seen.length, 1);
    assertStrictEquals(seen[0], token);
  } finally {
    setAwaitHook(null);
  }
  notifyAwait({});
  assertEquals(seen.length, 1);
});

Deno.test("Future.then() tells the await hook which future is awaited", () => {
  const loop = new BaseEventLoop();
  const seen: unknown[] = [];
  setAwaitHook((f) => seen.push(f));
  try {
    const fut = new Future<number>({ loop });
    fut.then(() => {});
    assertEquals(seen.length, 1);
    assertStrictEquals(seen[0], fut);
  } finally {
    setAwaitHook(null);
  }
  loop.close();
});

// ---- Microtask checkpoints ----

Deno.test("takeMicrotaskCheckpoint() returns whether one was requested and clears it", () => {
  takeMicrotaskCheckpoint();
  assertFalse(takeMicrotaskCheckpoint());
  requestMicrotaskCheckpoint();
  requestMicrotaskCheckpoint();
  assertEquals(takeMicrotaskCheckpoint(), true);
  assertFalse(takeMicrotaskCheckpoint());
});

Deno.test("Code no task runs that awaits a future goes on at the end of the iteration that completed it", async () => {
  const loop = new BaseEventLoop();
  const fut = new Future<number>({ loop });
  const order: string[] = [];
  const p = (async () => {
    const v = await fut;
    order.push("resumed");
    return v;
  })();
  loop.callSoon(() => fut.setResult(3));
  // The done callback runs in the second iteration, beside "same"; "later"
  // runs in the third.
  loop.callSoon(() => {
    loop.callSoon(() => {
      order.push("same");
      loop.callSoon(() => {
        order.push("later");
        loop.stop();
      });
    });
  });
  await loop.runForever();
  assertEquals(order, ["same", "resumed", "later"]);
  assertEquals(await p, 3);
  loop.close();
});

Deno.test("A Promise.all() over futures outside any task does not hold the loop after each callback", async () => {
  const loop = new BaseEventLoop();
  const futures = [new Future<number>({ loop }), new Future<number>({ loop })];
  const all = Promise.all(futures);
  // Microtask turns taken by unrelated code, counted when the callback
  // after the first future's done callback runs: the loop gives no turn
  // in between (such code never says when it waits again, so the loop
  // would give it every turn it allows, after every callback).
  let steps = 0;
  let atNext = -1;
  loop.callSoon(() => futures[0].setResult(0));
  loop.callSoon(() => {
    (async () => {
      for (let i = 0; i < 100; i++) {
        await null;
        steps++;
      }
    })();
    loop.callSoon(() => {
      atNext = steps;
      futures[1].setResult(1);
    });
  });
  assertEquals(await loop.runUntilComplete(all), [0, 1]);
  assertEquals(atNext, 0);
  assertFalse(foreignTurnRequested());
  loop.close();
});

Deno.test("pendingResumptions() counts requested resumptions until the code waits again", () => {
  takeMicrotaskCheckpoint();
  requestMicrotaskCheckpoint();
  requestMicrotaskCheckpoint();
  assertEquals(pendingResumptions(), 2);
  noteAwaitParked();
  assertEquals(pendingResumptions(), 1);
  noteAwaitParked();
  noteAwaitParked();
  assertEquals(pendingResumptions(), 0);
});

Deno.test("Future.then() outside any task neither counts as waiting nor as going on", () => {
  const loop = new BaseEventLoop();
  takeMicrotaskCheckpoint();
  requestMicrotaskCheckpoint();
  const pending = new Future<number>({ loop });
  pending.then(() => {});
  const done = new Future<number>({ loop });
  done.setResult(1);
  done.then(() => {});
  assertEquals(pendingResumptions(), 1);
  takeMicrotaskCheckpoint();
  loop.close();
});
