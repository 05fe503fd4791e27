// This file deliberately does not import tasks/: it owns the await hook
// while it runs (each test file runs in its own isolate).

import { assertEquals, assertFalse, assertStrictEquals } from "@std/assert";
import { Future } from "../../futures/future.ts";
import { getRunningLoop } from "../../futures/running_loop.ts";
import {
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

Deno.test("Future done callback of an awaited future lets the awaiting code run before the next callback", async () => {
  const loop = new BaseEventLoop();
  const fut = new Future<number>({ loop });
  const order: string[] = [];
  const p = (async () => {
    const v = await fut;
    order.push("resumed");
    return v;
  })();
  loop.callSoon(() => fut.setResult(3));
  // Scheduled right after the done callback, in the next iteration.
  loop.callSoon(() =>
    loop.callSoon(() => {
      order.push("next");
      loop.stop();
    })
  );
  await loop.runForever();
  assertEquals(order, ["resumed", "next"]);
  assertEquals(await p, 3);
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

Deno.test("Future.then() on a pending future counts as waiting; on a done one, as going on", () => {
  const loop = new BaseEventLoop();
  takeMicrotaskCheckpoint();
  requestMicrotaskCheckpoint();
  // The resumed code awaits a done future: it does not wait, so it is
  // still counted as resuming (asyncio's await of a done future does not
  // yield).
  const done = new Future<number>({ loop });
  done.setResult(1);
  done.then(() => {});
  assertEquals(pendingResumptions(), 1);
  const pending = new Future<number>({ loop });
  pending.then(() => {});
  assertEquals(pendingResumptions(), 0);
  takeMicrotaskCheckpoint();
  loop.close();
});
