import {
  assert,
  assertEquals,
  assertFalse,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { CancelledError, InvalidStateError } from "../../futures/errors.ts";
import {
  bindLoop,
  checkCount,
  rejected,
  resolved,
  Waiter,
  WaiterQueue,
} from "../../tasks/_waiter.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Coroutine } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { run } from "../_helpers.ts";

// ---- Waiter ----

Deno.test("Waiter.cancel() calls onCancel at once, and only when it cancels", () => {
  const loop = new VirtualTimeLoop();
  let cancels = 0;
  const w = new Waiter<number>(loop, undefined, { onCancel: () => cancels++ });
  assert(w.cancel());
  assertEquals(cancels, 1);
  assertFalse(w.cancel());
  assertEquals(cancels, 1);
  const done = new Waiter<number>(loop, undefined, {
    onCancel: () => cancels++,
  });
  done.setResult(1);
  assertFalse(done.cancel());
  assertEquals(cancels, 1);
  loop.close();
});

Deno.test("Waiter keeps its payload", () => {
  const loop = new VirtualTimeLoop();
  assertEquals(new Waiter<void, string>(loop, "item").payload, "item");
  loop.close();
});

Deno.test("Waiter calls onRefuse when a generator is cancelled after the result was set", async () => {
  await run(function* (loop) {
    const refused: number[] = [];
    const w = new Waiter<number>(loop, undefined, {
      onRefuse: (v) => refused.push(v),
    });
    const t = loop.createTask(function* () {
      return yield* w;
    });
    yield* sleep(0);
    w.setResult(5);
    t.cancel();
    try {
      yield* t;
    } catch (e) {
      assert(e instanceof CancelledError);
    }
    assertEquals(refused, [5]);
  });
});

Deno.test("Waiter does not call onRefuse when the generator took the result", async () => {
  await run(function* (loop) {
    const refused: number[] = [];
    const w = new Waiter<number>(loop, undefined, {
      onRefuse: (v) => refused.push(v),
    });
    const t = loop.createTask(function* () {
      const v = yield* w;
      yield* sleep(1);
      return v;
    });
    yield* sleep(0);
    w.setResult(5);
    yield* sleep(0);
    t.cancel();
    try {
      yield* t;
    } catch (e) {
      assert(e instanceof CancelledError);
    }
    assertEquals(refused, []);
  });
});

Deno.test("Waiter does not call onRefuse when it was cancelled rather than granted", async () => {
  await run(function* (loop) {
    let refusals = 0;
    const w = new Waiter<number>(loop, undefined, {
      onRefuse: () => refusals++,
    });
    const t = loop.createTask(function* () {
      return yield* w;
    });
    yield* sleep(0);
    t.cancel();
    try {
      yield* t;
    } catch (e) {
      assert(e instanceof CancelledError);
    }
    assert(w.cancelled());
    assertEquals(refusals, 0);
  });
});

Deno.test("Waiter withdraws when an error is thrown into a generator waiting on it", () => {
  const loop = new VirtualTimeLoop();
  let cancels = 0;
  const w = new Waiter<number>(loop, undefined, { onCancel: () => cancels++ });
  function* body(): Coroutine<number> {
    return yield* w;
  }
  const gen = body();
  assertStrictEquals(gen.next().value, w);
  assertThrows(() => gen.throw(new Error("stop")), Error, "stop");
  assert(w.cancelled());
  assertEquals(cancels, 1);
  loop.close();
});

Deno.test("Waiter on an already done future returns at once from yield*", () => {
  const loop = new VirtualTimeLoop();
  const w = new Waiter<string>(loop, undefined);
  w.setResult("now");
  function* body(): Coroutine<string> {
    return yield* w;
  }
  const r = body().next();
  assertEquals(r, { value: "now", done: true });
  loop.close();
});

// ---- WaiterQueue ----

interface Fake {
  id: number;
  live: boolean;
}

Deno.test("WaiterQueue.shift() skips dropped waiters and counts live ones", () => {
  const q = new WaiterQueue<Fake>((w) => w.live);
  const ws = [0, 1, 2, 3].map((id) => ({ id, live: true }));
  for (const w of ws) q.push(w);
  assertEquals(q.size, 4);
  ws[0].live = false;
  q.drop();
  ws[2].live = false;
  q.drop();
  assertEquals(q.size, 2);
  assertEquals(q.shift()?.id, 1);
  assertEquals(q.shift()?.id, 3);
  assertEquals(q.shift(), undefined);
  assertEquals(q.size, 0);
});

Deno.test("WaiterQueue compacts when most of its entries are dropped", () => {
  const q = new WaiterQueue<Fake>((w) => w.live);
  const ws = Array.from({ length: 1000 }, (_, id) => ({ id, live: true }));
  for (const w of ws) q.push(w);
  for (const w of ws) {
    if (w.id % 10 !== 0) {
      w.live = false;
      q.drop();
    }
  }
  assertEquals(q.size, 100);
  const order: number[] = [];
  for (let w = q.shift(); w; w = q.shift()) order.push(w.id);
  assertEquals(order, Array.from({ length: 100 }, (_, i) => i * 10));
});

// ---- Helpers ----

Deno.test("bindLoop() uses the bound loop, else the running one", async () => {
  const loop = new VirtualTimeLoop();
  assertStrictEquals(bindLoop(loop, "Lock"), loop);
  assertThrows(
    () => bindLoop(null, "Lock"),
    InvalidStateError,
    "Cannot wait on a Lock: no event loop is running and none was given, received loop=undefined",
  );
  const seen = await loop.runUntilComplete(loop.createTask(function* () {
    yield* sleep(0);
    return bindLoop(null, "Event");
  }));
  assertStrictEquals(seen, loop);
  const other = new VirtualTimeLoop();
  await loop.runUntilComplete(loop.createTask(function* () {
    yield* sleep(0);
    assertThrows(
      () => bindLoop(other, "Queue"),
      InvalidStateError,
      "bound to a different event loop",
    );
  }));
  other.close();
  loop.close();
});

Deno.test("resolved() and rejected() make done futures", () => {
  const loop = new VirtualTimeLoop();
  assertEquals(resolved(loop, 3).result(), 3);
  const err = new Error("x");
  assertStrictEquals(rejected(loop, err).exception(), err);
  loop.close();
});

Deno.test("checkCount() accepts integers from the minimum up", () => {
  assertEquals(checkCount(0, 0, "a Thing"), 0);
  assertEquals(checkCount(Infinity, 0, "a Thing", true), Infinity);
  assertThrows(
    () => checkCount(Infinity, 0, "a Thing"),
    RangeError,
    "Cannot create a Thing: expected an integer >= 0, received Infinity",
  );
  assertThrows(() => checkCount(0, 1, "a Thing"), RangeError);
  assertThrows(
    () => checkCount(null, 1, "a Thing"),
    TypeError,
    "received object",
  );
});
