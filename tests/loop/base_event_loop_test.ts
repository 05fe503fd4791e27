import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { CancelledError, InvalidStateError } from "../../futures/errors.ts";
import { Future } from "../../futures/future.ts";
import { BaseEventLoop } from "../../loop/base_event_loop.ts";
import type { EventLoop, ExceptionContext } from "../../loop/event_loop.ts";
import { Handle, TimerHandle } from "../../loop/handle.ts";
import { type Coroutine, currentTask, Task } from "../../tasks/task.ts";
import { sleep } from "../../tasks/sleep.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { prng } from "../_helpers.ts";
import { stillAlive } from "../_gc.ts";

// ---- Helpers ----

/**
 * A scheduler whose clock the test (or a callback) sets by hand: a callback
 * can "take" time by moving `now`, which VirtualTimeLoop cannot do. When
 * idle it jumps to the next timer instead of waiting.
 */
class ManualClockLoop extends BaseEventLoop {
  now = 0;
  override time(): number {
    return this.now;
  }
  protected override waitForEvents(deadline: number | null): Promise<void> {
    if (deadline === null) return super.waitForEvents(null);
    if (deadline > this.now) this.now = deadline;
    return Promise.resolve();
  }
}

function collectErrors(loop: BaseEventLoop): ExceptionContext[] {
  const seen: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => seen.push(ctx));
  return seen;
}

// ---- callSoon ----

Deno.test("BaseEventLoop.callSoon() runs callbacks in the order they were scheduled", async () => {
  const loop = new BaseEventLoop();
  const order: unknown[] = [];
  for (let i = 0; i < 100; i++) loop.callSoon((x: number) => order.push(x), i);
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  assertEquals(order, Array.from({ length: 100 }, (_, i) => i));
  loop.close();
});

Deno.test("BaseEventLoop.callSoon() passes positional arguments", async () => {
  const loop = new BaseEventLoop();
  const seen: unknown[] = [];
  loop.callSoon(
    (a: string, b: number, c: boolean) => seen.push(a, b, c),
    "abc",
    42,
    true,
  );
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  assertEquals(seen, ["abc", 42, true]);
  loop.close();
});

Deno.test("BaseEventLoop.callSoon() returns a Handle with its callback and args", () => {
  const loop = new BaseEventLoop();
  const cb = (_x: number, _y: string) => {};
  const h = loop.callSoon(cb, 1, "two");
  assertInstanceOf(h, Handle);
  assertStrictEquals(h.callback, cb);
  assertEquals(h.args, [1, "two"]);
  assertFalse(h.cancelled);
  loop.close();
});

Deno.test("BaseEventLoop.callSoon() throws TypeError for a callback that is not a function", () => {
  const loop = new BaseEventLoop();
  assertThrows(
    () => loop.callSoon("nope" as never),
    TypeError,
    "Cannot call callSoon(): callback must be a function, received string",
  );
  loop.close();
});

Deno.test("BaseEventLoop scheduling calls refuse coroutine functions, as asyncio's call_soon() does", () => {
  // Calling a generator function only makes a generator (nothing runs), and
  // an async function's error would bypass the exception handler: both
  // belong in createTask().
  const loop = new BaseEventLoop();
  const kinds = [
    function* gen() {},
    async function af() {},
    async () => {},
    async function* ag() {},
  ];
  for (const fn of kinds) {
    for (
      const [what, schedule] of [
        ["callSoon", () => loop.callSoon(fn)],
        ["callSoonThreadsafe", () => loop.callSoonThreadsafe(fn)],
        ["callLater", () => loop.callLater(1, fn)],
        ["callAt", () => loop.callAt(1, fn)],
        ["callRepeatedly", () => loop.callRepeatedly(1, fn)],
      ] as const
    ) {
      assertThrows(
        schedule,
        TypeError,
        `Cannot call ${what}(): callback must be a plain function, not a coroutine function`,
      );
    }
  }
  // Plain, bound and class-method callbacks are fine.
  class C {
    m() {}
  }
  loop.callSoon(function plain() {});
  loop.callSoon((() => {}).bind(null));
  loop.callSoon(new C().m);
  loop.close();
});

Deno.test("BaseEventLoop runs callbacks scheduled during an iteration in the next one", async () => {
  const loop = new VirtualTimeLoop();
  const order: string[] = [];
  loop.callSoon(() => {
    order.push("a");
    loop.callSoon(() => order.push("c"));
  });
  loop.callSoon(() => order.push("b"));
  await loop.runOnce();
  assertEquals(order, ["a", "b"]);
  await loop.runOnce();
  assertEquals(order, ["a", "b", "c"]);
  loop.close();
});

for (const drive of ["runOnce", "runForever"] as const) {
  Deno.test(`BaseEventLoop.${drive}() lets an async function it resumed run before the iteration's next callback`, async () => {
    const loop = new BaseEventLoop();
    const order: string[] = [];
    const f = new Future<number>({ loop });
    for (const name of ["a", "b"]) {
      loop.createTask(async () => {
        await f;
        order.push(name);
      });
    }
    // The tasks start, and wait for f.
    await loop.runOnce();
    f.setResult(1);
    loop.callSoon(() => order.push("c"));
    if (drive === "runOnce") await loop.runOnce();
    else {
      loop.callSoon(() => loop.stop());
      await loop.runForever();
    }
    assertEquals(order, ["a", "b", "c"]);
    loop.close();
  });
}

Deno.test("BaseEventLoop: stop() from an async function resumed mid-iteration ends the run after the iteration, as in asyncio", async () => {
  const loop = new BaseEventLoop();
  const order: string[] = [];
  const f = new Future<number>({ loop });
  loop.createTask(async () => {
    await f;
    order.push("resumed");
    loop.stop();
    loop.callSoon(() => order.push("next run"));
  });
  await loop.runOnce();
  f.setResult(1);
  loop.callSoon(() => order.push("same iteration"));
  await loop.runForever();
  assertEquals(order, ["resumed", "same iteration"]);
  await loop.runOnce();
  assertEquals(order, ["resumed", "same iteration", "next run"]);
  loop.close();
});

Deno.test("BaseEventLoop.callSoonThreadsafe() schedules like callSoon", async () => {
  const loop = new BaseEventLoop();
  const order: string[] = [];
  loop.callSoon(() => order.push("a"));
  const h = loop.callSoonThreadsafe((x: string) => order.push(x), "b");
  loop.callSoon(() => loop.stop());
  assertInstanceOf(h, Handle);
  await loop.runForever();
  assertEquals(order, ["a", "b"]);
  loop.close();
});

Deno.test("BaseEventLoop calls a callback with the loop as this, so the loop's own methods schedule unbound", async () => {
  // PEP 3156's idioms: ev.call_soon_threadsafe(ev.call_later, when, cb)
  // and ev.call_later(delay, ev.stop), with methods passed as values.
  const loop = new BaseEventLoop();
  const seen: unknown[] = [];
  loop.callSoon(function (this: unknown) {
    seen.push(this === loop);
  });
  loop.callSoonThreadsafe(loop.callLater, 0.001, () => seen.push("later"));
  loop.callLater(0.005, loop.stop);
  await loop.runForever();
  assertEquals(seen, [true, "later"]);
  loop.close();
});

Deno.test("BaseEventLoop.callSoonThreadsafe() from a host callback wakes an idle loop", async () => {
  const loop = new BaseEventLoop();
  let ran = false;
  const id = setTimeout(() =>
    loop.callSoonThreadsafe(() => {
      ran = true;
      loop.stop();
    }), 0);
  try {
    await loop.runForever();
  } finally {
    clearTimeout(id);
  }
  assert(ran);
  loop.close();
});

// ---- Handle ----

Deno.test("Handle.cancel() stops a scheduled callback from running", async () => {
  const loop = new BaseEventLoop();
  const order: string[] = [];
  loop.callSoon(() => order.push("a"));
  const h = loop.callSoon(() => order.push("b"));
  loop.callSoon(() => order.push("c"));
  h.cancel();
  assert(h.cancelled);
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  assertEquals(order, ["a", "c"]);
  loop.close();
});

Deno.test("Handle.cancel() from an earlier callback of the same iteration stops it", async () => {
  const loop = new BaseEventLoop();
  const order: string[] = [];
  let later: Handle | null = null;
  loop.callSoon(() => later!.cancel());
  later = loop.callSoon(() => order.push("later"));
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  assertEquals(order, []);
  loop.close();
});

Deno.test("Handle.cancel() after the callback ran changes nothing", async () => {
  const loop = new BaseEventLoop();
  let calls = 0;
  const h = loop.callSoon(() => calls++);
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  h.cancel();
  h.cancel();
  assertEquals(calls, 1);
  assert(h.cancelled);
  loop.close();
});

Deno.test("Handle prints its state and callback name", () => {
  const loop = new BaseEventLoop();
  function named() {}
  const h = loop.callSoon(named);
  assertEquals(Object.prototype.toString.call(h), "[object Handle]");
  assertEquals(Deno.inspect(h), "Handle named()");
  h.cancel();
  assertEquals(Deno.inspect(h), "Handle cancelled");
  const t = loop.callLater(1, () => {});
  assertEquals(Object.prototype.toString.call(t), "[object TimerHandle]");
  assertEquals(Deno.inspect(t), `TimerHandle when=${t.when} anonymous()`);
  t.cancel();
  assertEquals(
    Object.prototype.toString.call(t),
    "[object TimerHandle cancelled]",
  );
  loop.close();
});

// ---- callLater and callAt ----

Deno.test("BaseEventLoop.callLater() returns a TimerHandle due delay seconds from now", async () => {
  const loop = new VirtualTimeLoop();
  await loop.advance(3);
  const cb = (_x: string) => {};
  const t = loop.callLater(2.5, cb, "x");
  assertInstanceOf(t, TimerHandle);
  assertEquals(t.when, 5.5);
  assertStrictEquals(t.callback, cb);
  assertEquals(t.args, ["x"]);
  assertEquals(loop.callAt(7, () => {}).when, 7);
  loop.close();
});

Deno.test("BaseEventLoop.callLater() fires timers in order of due time", async () => {
  const loop = new VirtualTimeLoop();
  const fired: [string, number][] = [];
  const at = (name: string) => () => fired.push([name, loop.time()]);
  loop.callLater(3, at("c"));
  loop.callLater(1, at("a"));
  loop.callAt(2, at("b"));
  loop.callLater(4, () => loop.stop());
  await loop.runForever();
  assertEquals(fired, [["a", 1], ["b", 2], ["c", 3]]);
  loop.close();
});

Deno.test("BaseEventLoop runs timers due at the same time in scheduling order", async () => {
  const loop = new VirtualTimeLoop();
  const order: number[] = [];
  for (let i = 0; i < 50; i++) {
    if (i % 2 === 0) loop.callLater(1, (x: number) => order.push(x), i);
    else loop.callAt(1, (x: number) => order.push(x), i);
  }
  loop.callLater(2, () => loop.stop());
  await loop.runForever();
  assertEquals(order, Array.from({ length: 50 }, (_, i) => i));
  loop.close();
});

Deno.test("BaseEventLoop.callLater() with a delay <= 0 runs in order with callSoon", async () => {
  const loop = new VirtualTimeLoop();
  const order: string[] = [];
  loop.callSoon(() => order.push("a"));
  const zero = loop.callLater(0, () => order.push("b"));
  loop.callLater(-5, () => order.push("c"));
  loop.callSoon(() => order.push("d"));
  loop.callLater(0, () => order.push("e"));
  assertInstanceOf(zero, TimerHandle);
  assertEquals(zero.when, 0);
  await loop.runOnce();
  assertEquals(order, ["a", "b", "c", "d", "e"]);
  loop.close();
});

Deno.test("BaseEventLoop.callLater() with a delay <= 0 can be cancelled", async () => {
  const loop = new VirtualTimeLoop();
  const order: string[] = [];
  const t = loop.callLater(0, () => order.push("zero"));
  loop.callSoon(() => order.push("soon"));
  t.cancel();
  await loop.runOnce();
  assertEquals(order, ["soon"]);
  loop.close();
});

Deno.test("BaseEventLoop.callAt() in the past runs on the next iteration", async () => {
  const loop = new VirtualTimeLoop();
  await loop.advance(10);
  const seen: number[] = [];
  loop.callAt(2, () => seen.push(loop.time()));
  await loop.runOnce();
  assertEquals(seen, [10]);
  loop.close();
});

Deno.test("BaseEventLoop.callLater() and callAt() throw TypeError for a bad time or callback", () => {
  const loop = new BaseEventLoop();
  assertThrows(
    () => loop.callLater("1" as never, () => {}),
    TypeError,
    'Cannot call callLater(): delay must be a number of seconds, received "1"',
  );
  assertThrows(
    () => loop.callLater(NaN, () => {}),
    TypeError,
    "received NaN",
  );
  assertThrows(
    () => loop.callAt(undefined as never, () => {}),
    TypeError,
    "Cannot call callAt(): when must be a number of seconds, received undefined",
  );
  assertThrows(() => loop.callLater(1, null as never), TypeError);
  assertThrows(() => loop.callAt(1, 5 as never), TypeError);
  loop.close();
});

Deno.test("TimerHandle.cancel() stops the timer and the clock never jumps to it", async () => {
  const loop = new VirtualTimeLoop();
  const fired: string[] = [];
  const t = loop.callLater(100, () => fired.push("cancelled"));
  loop.callLater(1, () => fired.push("kept"));
  loop.callLater(2, () => loop.stop());
  t.cancel();
  assert(t.cancelled);
  await loop.runForever();
  assertEquals(fired, ["kept"]);
  assertEquals(loop.time(), 2);
  loop.close();
});

Deno.test("TimerHandle.cancel() from a callback stops a timer due in the same iteration", async () => {
  const loop = new VirtualTimeLoop();
  const fired: string[] = [];
  let second: TimerHandle | null = null;
  loop.callLater(1, () => {
    fired.push("first");
    second!.cancel();
  });
  second = loop.callLater(1, () => fired.push("second"));
  loop.callLater(2, () => loop.stop());
  await loop.runForever();
  assertEquals(fired, ["first"]);
  loop.close();
});

Deno.test("BaseEventLoop.callLater() never fires before its due time on the real clock", async () => {
  const loop = new BaseEventLoop();
  const checks: boolean[] = [];
  const timers: TimerHandle[] = [];
  for (const delay of [0.003, 0.001, 0.002]) {
    const t: TimerHandle = loop.callLater(delay, () => {
      checks.push(loop.time() >= t.when);
      if (checks.length === 3) loop.stop();
    });
    timers.push(t);
  }
  await loop.runForever();
  assertEquals(checks, [true, true, true]);
  loop.close();
});

Deno.test("BaseEventLoop fires real-clock timers in order of due time", async () => {
  const loop = new BaseEventLoop();
  const order: number[] = [];
  const base = loop.time();
  for (const ms of [4, 1, 3, 2]) {
    loop.callAt(base + ms / 1000, () => {
      order.push(ms);
      if (order.length === 4) loop.stop();
    });
  }
  await loop.runForever();
  assertEquals(order, [1, 2, 3, 4]);
  loop.close();
});

Deno.test({
  name:
    "BaseEventLoop.callLater() outside an iteration counts from the current time",
  fn() {
    const loop = new ManualClockLoop();
    const a = loop.callLater(1, () => {});
    loop.now = 10;
    const b = loop.callLater(1, () => {});
    assertEquals(a.when, 1);
    assertEquals(b.when, 11);
    loop.close();
  },
});

Deno.test("BaseEventLoop.callLater() inside a callback counts from the iteration's clock reading", async () => {
  const loop = new ManualClockLoop();
  const whens: number[] = [];
  loop.callSoon(() => {
    loop.now += 5; // a slow callback
  });
  loop.callSoon(() => whens.push(loop.callLater(1, () => {}).when));
  loop.callSoon(() => whens.push(loop.callAt(loop.time() + 1, () => {}).when));
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  // callLater uses the reading taken for the iteration (documented);
  // callAt(loop.time() + delay) is the exact basis.
  assert(whens[0] >= 1 && whens[0] <= 6);
  assertEquals(whens[1], 6);
  loop.close();
});

// ---- callRepeatedly ----

Deno.test("BaseEventLoop.callRepeatedly() calls every interval until cancelled", async () => {
  const loop = new VirtualTimeLoop();
  const times: number[] = [];
  const h = loop.callRepeatedly(
    2,
    (_tag: string) => times.push(loop.time()),
    "tick",
  );
  assertInstanceOf(h, TimerHandle);
  assertEquals(h.when, 2);
  await loop.advance(7);
  assertEquals(times, [2, 4, 6]);
  assertEquals(h.when, 8);
  h.cancel();
  await loop.advance(10);
  assertEquals(times, [2, 4, 6]);
  loop.close();
});

Deno.test("BaseEventLoop.callRepeatedly() stops when cancelled from its own callback", async () => {
  const loop = new VirtualTimeLoop();
  const times: number[] = [];
  const h = loop.callRepeatedly(1, () => {
    times.push(loop.time());
    if (times.length === 3) h.cancel();
  });
  await loop.advance(10);
  assertEquals(times, [1, 2, 3]);
  assert(h.cancelled);
  loop.close();
});

Deno.test("BaseEventLoop.callRepeatedly() stops when its callback throws", async () => {
  const loop = new VirtualTimeLoop();
  const errors = collectErrors(loop);
  const times: number[] = [];
  const err = new Error("tick failed");
  loop.callRepeatedly(1, function ticker() {
    times.push(loop.time());
    if (times.length === 2) throw err;
  });
  await loop.advance(10);
  assertEquals(times, [1, 2]);
  assertEquals(errors.length, 1);
  assertStrictEquals(errors[0].exception, err);
  assertEquals(errors[0].message, "Exception in callback ticker");
  loop.close();
});

Deno.test("BaseEventLoop.callRepeatedly() shifts later calls after a late call", async () => {
  const loop = new ManualClockLoop();
  const times: number[] = [];
  // A slow callback at 0.5 holds the loop until 1.25: the first tick is
  // late by 0.25, and every later one follows it.
  loop.callAt(0.5, () => loop.now = 1.25);
  const h = loop.callRepeatedly(1, () => {
    times.push(loop.time());
    if (times.length === 3) {
      h.cancel();
      loop.stop();
    }
  });
  await loop.runForever();
  assertEquals(times, [1.25, 2.25, 3.25]);
  loop.close();
});

Deno.test("BaseEventLoop.callRepeatedly() keeps repeating across stop and run", async () => {
  const loop = new VirtualTimeLoop();
  const times: number[] = [];
  const h = loop.callRepeatedly(1, () => times.push(loop.time()));
  await loop.advance(2);
  await loop.advance(2);
  assertEquals(times, [1, 2, 3, 4]);
  h.cancel();
  loop.close();
});

Deno.test("BaseEventLoop.callRepeatedly() rejects an interval that is not > 0", () => {
  const loop = new BaseEventLoop();
  assertThrows(
    () => loop.callRepeatedly(0, () => {}),
    RangeError,
    "Cannot call callRepeatedly(): interval must be > 0, received 0",
  );
  assertThrows(() => loop.callRepeatedly(-1, () => {}), RangeError);
  assertThrows(() => loop.callRepeatedly(NaN, () => {}), TypeError);
  assertThrows(() => loop.callRepeatedly(1, "x" as never), TypeError);
  loop.close();
});

// ---- runForever, stop ----

Deno.test("BaseEventLoop.isRunning() is true only while the loop runs", async () => {
  const loop = new BaseEventLoop();
  const seen: boolean[] = [];
  assertFalse(loop.isRunning());
  const p = loop.runForever();
  // Nothing was ready, so the loop is now waiting: still running.
  assert(loop.isRunning());
  loop.callSoon(() => {
    seen.push(loop.isRunning());
    loop.stop();
  });
  await p;
  assertFalse(loop.isRunning());
  assertEquals(seen, [true]);
  loop.close();
});

Deno.test("BaseEventLoop.stop() finishes the current iteration first", async () => {
  const loop = new BaseEventLoop();
  const order: string[] = [];
  loop.callSoon(() => {
    order.push("stop");
    loop.stop();
    loop.callSoon(() => order.push("next iteration"));
  });
  loop.callSoon(() => order.push("same iteration"));
  await loop.runForever();
  assertEquals(order, ["stop", "same iteration"]);
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  assertEquals(order, ["stop", "same iteration", "next iteration"]);
  loop.close();
});

Deno.test("BaseEventLoop.stop() from an async task ends the run with the iteration that resumed it, as from a generator task", async () => {
  // An async task resumes in the microtasks after its iteration, which
  // count as part of it: the callbacks it schedules before stop() wait
  // for the next run, as asyncio's do.
  for (const style of ["async", "generator"]) {
    const loop = new BaseEventLoop();
    const order: string[] = [];
    const body = (): void => {
      order.push("task");
      loop.callSoon(() => order.push("next iteration"));
      loop.stop();
    };
    const ready = loop.createFuture<void>();
    loop.callSoon(() => ready.setResult());
    if (style === "async") {
      loop.createTask(async () => {
        await ready;
        body();
      });
    } else {
      loop.createTask(function* (): Coroutine<void> {
        yield* ready;
        body();
      });
    }
    await loop.runForever();
    assertEquals(order, ["task"], style);
    loop.callSoon(() => loop.stop());
    await loop.runForever();
    assertEquals(order, ["task", "next iteration"], style);
    loop.close();
  }
});

Deno.test("BaseEventLoop.stop() then runForever() again loses no callback or timer", async () => {
  const loop = new VirtualTimeLoop();
  const order: string[] = [];
  loop.callLater(5, () => order.push("timer at 5"));
  loop.callLater(1, () => {
    order.push("stopper");
    loop.stop();
    loop.callSoon(() => order.push("ready after stop"));
    loop.callLater(1, () => order.push("timer at 2"));
  });
  await loop.runForever();
  assertEquals(order, ["stopper"]);
  assertEquals(loop.time(), 1);
  loop.callLater(10, () => loop.stop());
  await loop.runForever();
  assertEquals(order, [
    "stopper",
    "ready after stop",
    "timer at 2",
    "timer at 5",
  ]);
  loop.close();
});

Deno.test("BaseEventLoop.stop() before runForever() runs one iteration", async () => {
  const loop = new BaseEventLoop();
  const order: string[] = [];
  loop.callSoon(() => {
    order.push("first");
    loop.callSoon(() => order.push("second"));
  });
  loop.stop();
  await loop.runForever();
  assertEquals(order, ["first"]);
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  assertEquals(order, ["first", "second"]);
  loop.close();
});

Deno.test("BaseEventLoop.stop() from a host callback wakes an idle loop", async () => {
  const loop = new BaseEventLoop();
  const id = setTimeout(() => loop.stop(), 0);
  try {
    await loop.runForever();
  } finally {
    clearTimeout(id);
  }
  assertFalse(loop.isRunning());
  loop.close();
});

Deno.test("BaseEventLoop.stop() while waiting for a timer leaves the timer queued", async () => {
  const loop = new BaseEventLoop();
  let fired = false;
  loop.callLater(0.002, () => {
    fired = true;
    loop.stop();
  });
  const id = setTimeout(() => loop.stop(), 0);
  try {
    await loop.runForever();
    // Stopped from outside; unless the timer was due by then, it is still
    // queued and stops the next run.
    if (!fired) await loop.runForever();
  } finally {
    clearTimeout(id);
  }
  assert(fired);
  loop.close();
});

Deno.test("BaseEventLoop.runForever() throws InvalidStateError when already running", async () => {
  const loop = new BaseEventLoop();
  const errors: unknown[] = [];
  loop.callSoon(() => {
    try {
      loop.runForever();
    } catch (e) {
      errors.push(e);
    }
    loop.stop();
  });
  await loop.runForever();
  assertEquals(errors.length, 1);
  assertInstanceOf(errors[0], InvalidStateError);
  assertEquals(
    (errors[0] as Error).message,
    "Cannot call runForever(): the loop is already running",
  );
  loop.close();
});

Deno.test("BaseEventLoop.runUntilComplete() and runOnce() reject when already running", async () => {
  const loop = new BaseEventLoop();
  const pending: Promise<unknown>[] = [];
  loop.callSoon(() => {
    pending.push(loop.runUntilComplete(Promise.resolve(1)));
    pending.push(loop.runOnce());
    loop.stop();
  });
  await loop.runForever();
  await assertRejects(() => pending[0], InvalidStateError, "already running");
  await assertRejects(() => pending[1], InvalidStateError, "already running");
  loop.close();
});

// ---- runUntilComplete ----

Deno.test("BaseEventLoop.runUntilComplete() resolves with a future's result", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<string>();
  loop.callLater(1, () => fut.setResult("ready"));
  assertEquals(await loop.runUntilComplete(fut), "ready");
  assertFalse(loop.isRunning());
  loop.close();
});

Deno.test("BaseEventLoop.runUntilComplete() accepts tasks, coroutines and promises", async () => {
  const loop = new VirtualTimeLoop();
  function* gen(): Coroutine<number> {
    yield;
    return 1;
  }
  const task = loop.createTask(gen());
  assertEquals(await loop.runUntilComplete(task), 1);
  assertEquals(await loop.runUntilComplete(gen()), 1);
  assertEquals(await loop.runUntilComplete(Promise.resolve(2)), 2);
  assertEquals(
    await loop.runUntilComplete((async () => await Promise.resolve(3))()),
    3,
  );
  loop.close();
});

Deno.test("BaseEventLoop.runUntilComplete() rejects with the future's error", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<string>();
  const err = new Error("failed");
  loop.callSoon(() => fut.setException(err));
  assertStrictEquals(
    await assertRejects(() => loop.runUntilComplete(fut)),
    err,
  );
  loop.close();
});

Deno.test("BaseEventLoop.runUntilComplete() rejects with CancelledError for a cancelled future", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<string>();
  loop.callSoon(() => fut.cancel("called off"));
  await assertRejects(
    () => loop.runUntilComplete(fut),
    CancelledError,
    "called off",
  );
  loop.close();
});

Deno.test("BaseEventLoop.runUntilComplete() resolves for a future that is already done", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  fut.setResult(9);
  assertEquals(await loop.runUntilComplete(fut), 9);
  loop.close();
});

Deno.test("BaseEventLoop.runUntilComplete() rejects with InvalidStateError when stopped first", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  loop.callSoon(() => loop.stop());
  await assertRejects(
    () => loop.runUntilComplete(fut),
    InvalidStateError,
    "Cannot finish runUntilComplete(): the loop was stopped before the future was done",
  );
  assertFalse(fut.done());
  assertFalse(fut.cancelled());
  // The future still works, and no longer stops the loop when done.
  const order: string[] = [];
  loop.callSoon(() => fut.setResult(1));
  loop.callLater(1, () => order.push("still running"));
  loop.callLater(2, () => loop.stop());
  await loop.runForever();
  assertEquals(order, ["still running"]);
  assertEquals(fut.result(), 1);
  loop.close();
});

Deno.test("BaseEventLoop.runUntilComplete() refuses a future of another loop", async () => {
  const loop = new VirtualTimeLoop();
  const other = new VirtualTimeLoop();
  const fut = other.createFuture<number>();
  await assertRejects(() => loop.runUntilComplete(fut), InvalidStateError);
  assertFalse(loop.isRunning());
  loop.close();
  other.close();
});

Deno.test("BaseEventLoop.runUntilComplete() lets an awaiting async function resume before the next iteration", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  const order: string[] = [];
  const task = loop.createTask(async () => {
    await fut;
    order.push("resumed");
  });
  loop.callLater(1, () => {
    fut.setResult(1);
    // Iteration n+1 runs the done callback that settles the await; this
    // one runs in n+2: the async function must resume between them.
    loop.callSoon(() =>
      loop.callSoon(() => order.push("two iterations later"))
    );
  });
  await loop.runUntilComplete(task);
  await loop.advance(1);
  assertEquals(order, ["resumed", "two iterations later"]);
  loop.close();
});

// ---- runOnce ----

Deno.test("BaseEventLoop.runOnce() runs the ready callbacks once", async () => {
  const loop = new VirtualTimeLoop();
  const order: string[] = [];
  loop.callSoon(() => {
    order.push("a");
    loop.callSoon(() => order.push("b"));
  });
  await loop.runOnce();
  assertEquals(order, ["a"]);
  assertFalse(loop.isRunning());
  loop.close();
});

Deno.test("BaseEventLoop.runOnce() waits for the next timer when nothing is ready", async () => {
  const loop = new VirtualTimeLoop();
  const seen: number[] = [];
  loop.callLater(4, () => seen.push(loop.time()));
  loop.callLater(8, () => seen.push(loop.time()));
  await loop.runOnce();
  assertEquals(seen, [4]);
  loop.close();
});

Deno.test("BaseEventLoop.runOnce() after stop() runs what is ready without waiting, as asyncio's _run_once() while stopping", async () => {
  // asyncio polls with a zero timeout while a stop() is pending: the
  // iteration runs only what is ready, and no timer is waited for.
  for (const loop of [new VirtualTimeLoop(), new BaseEventLoop()]) {
    const seen: string[] = [];
    const timer = loop.callLater(10, () => seen.push("timer"));
    const start = loop.time();
    loop.stop();
    let guard: ReturnType<typeof setTimeout> | undefined;
    const waited = await Promise.race([
      loop.runOnce().then(() => false),
      new Promise<boolean>((resolve) => {
        guard = setTimeout(() => resolve(true), 2000);
      }),
    ]);
    clearTimeout(guard);
    assertFalse(waited, `${loop.constructor.name}.runOnce() waited`);
    assertEquals(seen, []);
    assert(loop.time() - start < 10, "the clock did not jump to the timer");
    // The stop was the iteration's: the next runOnce() waits as usual.
    if (loop instanceof VirtualTimeLoop) {
      await loop.runOnce();
      assertEquals(seen, ["timer"]);
    } else timer.cancel();
    loop.close();
  }
});

Deno.test("BaseEventLoop.runOnce() waits for a real-clock timer", async () => {
  const loop = new BaseEventLoop();
  let fired = false;
  loop.callLater(0.001, () => fired = true);
  while (!fired) await loop.runOnce();
  assert(fired);
  loop.close();
});

// Mirrors asyncio's test_timeout_rounding: waits far shorter than the host's
// timer resolution must neither return early and spin nor be lost.
Deno.test("BaseEventLoop.runOnce() sleeps of 10 ms down to 1e-10 s take a few iterations each, not a spin", async () => {
  const loop = new BaseEventLoop();
  const task = loop.createTask(async () => {
    for (const delay of [1e-2, 1e-4, 1e-6, 1e-8, 1e-10]) await sleep(delay);
  });
  let iterations = 0;
  while (!task.done() && iterations < 1000) {
    await loop.runOnce();
    iterations++;
  }
  assert(task.done());
  // Two per sleep (wait, then resume) and one to start: 11 at best.
  assert(iterations <= 20, `took ${iterations} iterations`);
  loop.close();
});

Deno.test("BaseEventLoop.runOnce() lets the async functions it resumed run until they wait again", async () => {
  // As runForever() does after each iteration: an async task resumes
  // within the iteration that woke it, like a generator task.
  const loop = new BaseEventLoop();
  const fut = loop.createFuture<number>();
  const order: string[] = [];
  const task = loop.createTask(async () => {
    const v = await fut;
    order.push("resumed");
    await null;
    await null;
    order.push("ran on");
    return v * 2;
  });
  await loop.runOnce(); // the task starts and awaits fut
  fut.setResult(21);
  await loop.runOnce(); // fut's done callback wakes the task
  assertEquals(order, ["resumed", "ran on"]);
  assert(task.done());
  assertEquals(task.result(), 42);
  loop.close();
});

Deno.test("BaseEventLoop.runOnce() with only real-clock timers runs the first one due", async () => {
  // The host timer is armed a little early and the loop finishes the wait
  // in a later turn: one runOnce() still covers the whole wait.
  const loop = new BaseEventLoop();
  const seen: string[] = [];
  // Far apart, so that a busy machine cannot make both due at once.
  for (const delay of [0.01, 0.2]) {
    loop.callLater(delay, () => seen.push(`at ${delay}`));
  }
  await loop.runOnce();
  assertEquals(seen, ["at 0.01"]);
  await loop.runOnce();
  assertEquals(seen, ["at 0.01", "at 0.2"]);
  loop.close();
});

Deno.test("BaseEventLoop.runOnce() waiting for a timer returns at stop() or a ready callback", async () => {
  const loop = new BaseEventLoop();
  loop.callLater(30, () => {});
  setTimeout(() => loop.stop(), 5);
  const start = performance.now();
  await loop.runOnce();
  setTimeout(() => loop.callSoonThreadsafe(() => {}), 5);
  await loop.runOnce();
  assert(performance.now() - start < 5_000);
  loop.close();
});

// ---- close ----

Deno.test("BaseEventLoop.close() is idempotent", () => {
  const loop = new BaseEventLoop();
  assertFalse(loop.isClosed());
  loop.close();
  assert(loop.isClosed());
  loop.close();
  assert(loop.isClosed());
});

Deno.test("BaseEventLoop.close() drops pending callbacks and timers", () => {
  const loop = new BaseEventLoop();
  loop.callSoon(() => {});
  loop.callLater(1, () => {});
  loop.callLater(2, () => {}).cancel();
  assertEquals(Deno.inspect(loop), "BaseEventLoop stopped ready=1 timers=1");
  loop.close();
  assertEquals(Deno.inspect(loop), "BaseEventLoop closed ready=0 timers=0");
});

Deno.test("BaseEventLoop throws InvalidStateError for scheduling on a closed loop", () => {
  const loop = new BaseEventLoop();
  loop.close();
  const cb = () => {};
  assertThrows(
    () => loop.callSoon(cb),
    InvalidStateError,
    "Cannot call callSoon(): the loop is closed",
  );
  assertThrows(
    () => loop.callSoonThreadsafe(cb),
    InvalidStateError,
    "Cannot call callSoonThreadsafe(): the loop is closed",
  );
  assertThrows(
    () => loop.callLater(1, cb),
    InvalidStateError,
    "the loop is closed",
  );
  assertThrows(() => loop.callLater(0, cb), InvalidStateError);
  assertThrows(() => loop.callAt(1, cb), InvalidStateError);
  assertThrows(() => loop.callRepeatedly(1, cb), InvalidStateError);
  assertThrows(
    () => loop.createTask(async () => {}),
    InvalidStateError,
    "Cannot call createTask(): the loop is closed",
  );
});

Deno.test("BaseEventLoop.createFuture() on a closed loop still returns a future, as asyncio's does", () => {
  const loop = new BaseEventLoop();
  loop.close();
  const fut = loop.createFuture<number>();
  assertStrictEquals(fut.getLoop(), loop);
  fut.setResult(1);
  assertEquals(fut.result(), 1);
  const watched = loop.createFuture<number>();
  watched.addDoneCallback(() => {});
  assertThrows(() => watched.setResult(2), InvalidStateError, "closed");
});

Deno.test("BaseEventLoop refuses to run once closed", async () => {
  const loop = new BaseEventLoop();
  loop.close();
  assertThrows(
    () => loop.runForever(),
    InvalidStateError,
    "Cannot call runForever(): the loop is closed",
  );
  await assertRejects(
    () => loop.runUntilComplete(Promise.resolve(1)),
    InvalidStateError,
    "Cannot call runUntilComplete(): the loop is closed",
  );
  await assertRejects(() => loop.runOnce(), InvalidStateError);
});

Deno.test("BaseEventLoop.close() throws InvalidStateError while running", async () => {
  const loop = new BaseEventLoop();
  const errors: unknown[] = [];
  let after = false;
  loop.callSoon(() => {
    try {
      loop.close();
    } catch (e) {
      errors.push(e);
    }
    loop.callSoon(() => {
      after = true;
      loop.stop();
    });
  });
  await loop.runForever();
  assertEquals(errors.length, 1);
  assertInstanceOf(errors[0], InvalidStateError);
  assertEquals(
    (errors[0] as Error).message,
    "Cannot close the loop: it is running",
  );
  assert(after);
  assertFalse(loop.isClosed());
  loop.close();
});

Deno.test("BaseEventLoop [Symbol.asyncDispose]() closes a stopped loop", async () => {
  let seen: BaseEventLoop | null = null;
  {
    await using loop = new BaseEventLoop();
    seen = loop;
    loop.callSoon(() => loop.stop());
    await loop.runForever();
  }
  assert(seen.isClosed());
});

Deno.test("BaseEventLoop [Symbol.asyncDispose]() stops a running loop, then closes it", async () => {
  const loop = new BaseEventLoop();
  loop.callRepeatedly(0.001, () => {});
  const running = loop.runForever();
  assert(loop.isRunning());
  await loop[Symbol.asyncDispose]();
  await running;
  assertFalse(loop.isRunning());
  assert(loop.isClosed());
  // The repeating timer went with the loop.
  assertEquals(Deno.inspect(loop), "BaseEventLoop closed ready=0 timers=0");
});

// ---- Exception handling ----

Deno.test("BaseEventLoop sends callback errors to the exception handler and goes on", async () => {
  const loop = new BaseEventLoop();
  const errors = collectErrors(loop);
  const order: string[] = [];
  const err = new Error("callback failed");
  function failing() {
    throw err;
  }
  const h = loop.callSoon(failing);
  loop.callSoon(() => order.push("same iteration"));
  loop.callSoon(() => loop.callSoon(() => order.push("next iteration")));
  loop.callSoon(() => loop.callSoon(() => loop.stop()));
  await loop.runForever();
  assertEquals(order, ["same iteration", "next iteration"]);
  assertEquals(errors.length, 1);
  assertEquals(errors[0].message, "Exception in callback failing");
  assertStrictEquals(errors[0].exception, err);
  assertStrictEquals(errors[0].handle, h);
  loop.close();
});

Deno.test("BaseEventLoop sends timer errors to the exception handler and goes on", async () => {
  const loop = new VirtualTimeLoop();
  const errors = collectErrors(loop);
  const fired: number[] = [];
  loop.callLater(1, () => {
    throw new TypeError("timer failed");
  });
  loop.callLater(1, () => fired.push(loop.time()));
  loop.callLater(2, () => fired.push(loop.time()));
  await loop.advance(3);
  assertEquals(fired, [1, 2]);
  assertEquals(errors.length, 1);
  assertEquals(errors[0].message, "Exception in callback anonymous");
  assertInstanceOf(errors[0].exception, TypeError);
  loop.close();
});

Deno.test("BaseEventLoop.setExceptionHandler() installs a handler that getExceptionHandler() returns", () => {
  const loop = new BaseEventLoop();
  assertEquals(loop.getExceptionHandler(), null);
  const handler = () => {};
  loop.setExceptionHandler(handler);
  assertStrictEquals(loop.getExceptionHandler(), handler);
  loop.setExceptionHandler(null);
  assertEquals(loop.getExceptionHandler(), null);
  assertThrows(
    () => loop.setExceptionHandler("x" as never),
    TypeError,
    "Cannot set exception handler: expected a function or null, received string",
  );
  loop.close();
});

Deno.test("BaseEventLoop.callExceptionHandler() passes the loop and the context", () => {
  const loop = new BaseEventLoop();
  const calls: [EventLoop, ExceptionContext][] = [];
  loop.setExceptionHandler((l, ctx) => calls.push([l, ctx]));
  const ctx = { message: "something", extra: 1 };
  loop.callExceptionHandler(ctx);
  assertEquals(calls.length, 1);
  assertStrictEquals(calls[0][0] as unknown, loop);
  assertStrictEquals(calls[0][1], ctx);
  loop.close();
});

class RecordingLoop extends BaseEventLoop {
  logged: ExceptionContext[] = [];
  override defaultExceptionHandler(context: ExceptionContext): void {
    this.logged.push(context);
  }
}

Deno.test("BaseEventLoop.callExceptionHandler() uses defaultExceptionHandler() without a handler", () => {
  const loop = new RecordingLoop();
  const ctx = { message: "default" };
  loop.callExceptionHandler(ctx);
  assertEquals(loop.logged, [ctx]);
  loop.setExceptionHandler(() => {});
  loop.callExceptionHandler({ message: "custom" });
  loop.setExceptionHandler(null);
  loop.callExceptionHandler({ message: "default again" });
  assertEquals(loop.logged.map((c) => c.message), ["default", "default again"]);
  loop.close();
});

Deno.test("BaseEventLoop.callExceptionHandler() logs an error thrown by the handler instead of throwing", () => {
  const loop = new RecordingLoop();
  const err = new Error("handler broke");
  loop.setExceptionHandler(() => {
    throw err;
  });
  const ctx = { message: "original" };
  loop.callExceptionHandler(ctx);
  assertEquals(loop.logged.length, 1);
  assertEquals(loop.logged[0].message, "Unhandled error in exception handler");
  assertStrictEquals(loop.logged[0].exception, err);
  assertStrictEquals(loop.logged[0].context, ctx);
  loop.close();
});

// A loop whose defaultExceptionHandler() itself throws, as asyncio's
// test_default_exc_handler_broken makes one.
class BrokenDefaultLoop extends BaseEventLoop {
  seen: ExceptionContext[] = [];
  override defaultExceptionHandler(context: ExceptionContext): void {
    this.seen.push(context);
    throw new RangeError("default broke");
  }
}

function capturingConsoleError<T>(fn: () => T): [T, unknown[][]] {
  const lines: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => lines.push(args);
  try {
    return [fn(), lines];
  } finally {
    console.error = original;
  }
}

Deno.test("BaseEventLoop.callExceptionHandler() logs an error thrown by an overridden defaultExceptionHandler() to the console, as asyncio logs it", () => {
  const loop = new BrokenDefaultLoop();
  const ctx = { message: "original" };
  const [, lines] = capturingConsoleError(() => loop.callExceptionHandler(ctx));
  assertEquals(loop.seen, [ctx]);
  assertEquals(lines.length, 1);
  assertEquals(lines[0][0], "Exception in default exception handler");
  assertStringIncludes(lines[0].at(-1) as string, "RangeError: default broke");
  loop.close();
});

Deno.test("BaseEventLoop.callExceptionHandler() logs to the console when both the handler and defaultExceptionHandler() throw", () => {
  const loop = new BrokenDefaultLoop();
  loop.setExceptionHandler(() => {
    throw new TypeError("handler broke");
  });
  const ctx = { message: "original" };
  const [, lines] = capturingConsoleError(() => loop.callExceptionHandler(ctx));
  assertEquals(loop.seen.length, 1);
  assertEquals(loop.seen[0].message, "Unhandled error in exception handler");
  assertStrictEquals(loop.seen[0].context, ctx);
  assertEquals(lines.length, 1);
  assertEquals(
    lines[0][0],
    "Exception in default exception handler while handling an unexpected error in custom exception handler",
  );
  assertStringIncludes(lines[0].at(-1) as string, "RangeError: default broke");
  loop.close();
});
Deno.test("BaseEventLoop.defaultExceptionHandler() logs the message, details and error to console.error", () => {
  const loop = new BaseEventLoop();
  const lines: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => lines.push(args);
  try {
    const err = new Error("x");
    loop.defaultExceptionHandler({
      message: "with all",
      exception: err,
      where: 1,
    });
    loop.defaultExceptionHandler({ message: "bare" });
    // As text: the console keeps what it is given alive.
    assertEquals(lines, [
      ["with all", "{ where: 1 }", Deno.inspect(err)],
      ["bare"],
    ]);
  } finally {
    console.error = original;
  }
  loop.close();
});

Deno.test("BaseEventLoop.defaultExceptionHandler() says 'Unhandled exception in event loop' for a context without a message, as asyncio's does", () => {
  const loop = new BaseEventLoop();
  const err = new Error("x");
  const [, lines] = capturingConsoleError(() => {
    // A JavaScript caller can leave the message out or empty.
    loop.defaultExceptionHandler({ exception: err } as ExceptionContext);
    loop.defaultExceptionHandler({ message: "" });
    loop.callExceptionHandler({} as ExceptionContext);
  });
  assertEquals(lines, [
    ["Unhandled exception in event loop", Deno.inspect(err)],
    ["Unhandled exception in event loop"],
    ["Unhandled exception in event loop"],
  ]);
  loop.close();
});

// The console keeps the arguments of its last thousand messages alive (V8
// stores them for an inspector that may attach later); only a real
// collection shows it.

Deno.test("BaseEventLoop.defaultExceptionHandler() logs text: what a report names is not kept alive by the console", async () => {
  const loop = new BaseEventLoop();
  const refs: WeakRef<object>[] = [];
  (() => {
    for (let i = 0; i < 3; i++) {
      // A connection's protocol and transport, with their buffers, and
      // an error made in the protocol's method: its stack keeps `this`.
      const protocol = {
        buffer: new Uint8Array(1 << 20),
        fail() {
          return new Error(`this test logs three reports on purpose (${i})`);
        },
      };
      const transport = { buffer: new Uint8Array(1 << 20) };
      refs.push(new WeakRef(protocol), new WeakRef(transport));
      loop.defaultExceptionHandler({
        message: "Expected report",
        exception: protocol.fail(),
        protocol,
        transport,
      });
    }
  })();
  assertEquals(await stillAlive(refs), 0);
  loop.close();
});

// ---- Debug mode ----

Deno.test("BaseEventLoop.setDebug() turns debug mode on and off", () => {
  const loop = new BaseEventLoop();
  assertFalse(loop.getDebug());
  loop.setDebug(true);
  assert(loop.getDebug());
  loop.setDebug(false);
  assertFalse(loop.getDebug());
  assertEquals(loop.slowCallbackDuration, 0.1);
  loop.close();
});

Deno.test("BaseEventLoop in debug mode reports slow callbacks", async () => {
  const loop = new ManualClockLoop();
  loop.setDebug(true);
  const errors = collectErrors(loop);
  function slowOne() {
    loop.now += 0.5;
  }
  function quickOne() {}
  const h = loop.callSoon(slowOne);
  loop.callSoon(quickOne);
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  assertEquals(errors.length, 1);
  assertEquals(errors[0].message, "Executing slowOne took 0.500 seconds");
  assertStrictEquals(errors[0].handle, h);
  loop.close();
});

Deno.test("BaseEventLoop in debug mode names the task of a slow task step, as asyncio's test_log_slow_callbacks expects", async () => {
  const loop = new ManualClockLoop();
  loop.setDebug(true);
  const errors = collectErrors(loop);
  const fut = loop.createFuture<void>();
  const task = loop.createTask(function* slowSteps() {
    loop.now += 0.5; // its first step
    yield* fut;
    loop.now += 0.25; // the step its wake-up runs
  }, { name: "stepper" });
  loop.callSoon(() => fut.setResult());
  await loop.runUntilComplete(task);
  assertEquals(errors.map((e) => e.message), [
    'Executing Task "stepper" took 0.500 seconds',
    'Executing Task "stepper" took 0.250 seconds',
  ]);
  assertStrictEquals(errors[0].task, task);
  assertStrictEquals(errors[1].task, task);
  loop.close();
});

Deno.test("BaseEventLoop in debug mode names a slow callback that cancels its own handle", async () => {
  const loop = new ManualClockLoop();
  loop.setDebug(true);
  const errors = collectErrors(loop);
  const h = loop.callSoon(function selfCancelling() {
    h.cancel();
    loop.now += 0.5;
  });
  const t = loop.callRepeatedly(1, function tick() {
    t.cancel();
    loop.now += 0.25;
    loop.stop();
  });
  await loop.runForever();
  assertEquals(errors.map((e) => e.message), [
    "Executing selfCancelling took 0.500 seconds",
    "Executing tick took 0.250 seconds",
  ]);
  loop.close();
});

Deno.test("BaseEventLoop in debug mode honours slowCallbackDuration", async () => {
  const loop = new ManualClockLoop();
  loop.setDebug(true);
  loop.slowCallbackDuration = 1;
  const errors = collectErrors(loop);
  loop.callSoon(() => loop.now += 0.5);
  loop.callSoon(() => loop.now += 1);
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  assertEquals(errors.map((e) => e.message), [
    "Executing a callback took 1.000 seconds",
  ]);
  loop.close();
});

Deno.test("BaseEventLoop.slowCallbackDuration refuses what is not a number of seconds >= 0", () => {
  const loop = new BaseEventLoop();
  for (const bad of ["0.1", null, undefined, NaN]) {
    const error = assertThrows(
      () => loop.slowCallbackDuration = bad as unknown as number,
      TypeError,
    );
    assertStringIncludes(error.message, "slowCallbackDuration");
  }
  assertThrows(
    () => loop.slowCallbackDuration = -1,
    RangeError,
    "Cannot set slowCallbackDuration: it must be >= 0 seconds, received -1",
  );
  assertEquals(loop.slowCallbackDuration, 0.1);
  loop.slowCallbackDuration = 0;
  assertEquals(loop.slowCallbackDuration, 0);
  loop.slowCallbackDuration = Infinity;
  assertEquals(loop.slowCallbackDuration, Infinity);
  loop.close();
});

Deno.test("BaseEventLoop in debug mode reports async functions that run too long once resumed by their task, as asyncio reports a slow task step", async () => {
  for (const drive of ["runForever", "runOnce"] as const) {
    for (const debugFirst of [true, false]) {
      const loop = new ManualClockLoop();
      // A task made before debug mode is on is not known by name.
      if (debugFirst) loop.setDebug(true);
      const errors = collectErrors(loop);
      const fut = loop.createFuture<void>();
      const next = loop.createFuture<void>();
      const task = loop.createTask(async () => {
        await fut;
        loop.now += 0.5; // slow after its first step
        loop.callSoon(() => next.setResult());
        await next;
        loop.now += 0.01; // quick
      }, { name: "resumed" });
      loop.setDebug(true);
      loop.callSoon(() => fut.setResult());
      if (drive === "runOnce") {
        while (!task.done()) await loop.runOnce();
      } else await loop.runUntilComplete(task);
      const what = debugFirst
        ? 'Task "resumed"'
        : "the async code a callback resumed";
      assertEquals(errors.map((e) => e.message), [
        `Executing ${what} took 0.500 seconds`,
      ], drive);
      assertStrictEquals(errors[0].task, debugFirst ? task : undefined);
      loop.close();
    }
  }
});

Deno.test("BaseEventLoop outside debug mode does not report slow callbacks", async () => {
  const loop = new ManualClockLoop();
  const errors = collectErrors(loop);
  loop.callSoon(() => loop.now += 10);
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  assertEquals(errors, []);
  loop.close();
});

Deno.test("BaseEventLoop in debug mode reports a busy callback on the real clock", async () => {
  const loop = new BaseEventLoop();
  loop.setDebug(true);
  loop.slowCallbackDuration = 0.001;
  const errors = collectErrors(loop);
  function busy() {
    const start = loop.time();
    while (loop.time() - start < 0.002) {
      // Spin: the report is what is checked, not how long this takes.
    }
  }
  loop.callSoon(busy);
  loop.callSoon(() => loop.stop());
  await loop.runForever();
  // Only busy() is sure to be slow; on a loaded machine the stop callback
  // may be reported too, so count the reports about busy().
  const reports = errors.filter((e) =>
    e.message.startsWith("Executing busy took ")
  );
  assertEquals(reports.length, 1);
  loop.close();
});

Deno.test("BaseEventLoop in debug mode still routes errors and skips cancelled handles", async () => {
  const loop = new VirtualTimeLoop();
  loop.setDebug(true);
  const errors = collectErrors(loop);
  const order: string[] = [];
  loop.callSoon(() => {
    throw new Error("debug error");
  });
  loop.callSoon(() => order.push("cancelled")).cancel();
  loop.callSoon(() => order.push("after"));
  loop.callLater(1, () => order.push("timer"));
  await loop.advance(2);
  assertEquals(order, ["after", "timer"]);
  assertEquals(errors.length, 1);
  assertEquals((errors[0].exception as Error).message, "debug error");
  loop.close();
});

Deno.test("BaseEventLoop in debug mode tells where a failing callback was scheduled, as asyncio's handle source_traceback", async () => {
  const loop = new VirtualTimeLoop();
  const errors = collectErrors(loop);
  const fail = () => {
    throw new Error("boom");
  };
  loop.callSoon(fail); // not in debug mode: nothing recorded
  await loop.advance(0);
  loop.setDebug(true);
  function schedulesSoon() {
    return loop.callSoon(fail);
  }
  function schedulesLater() {
    return loop.callLater(1, fail);
  }
  const soon = schedulesSoon();
  const later = schedulesLater();
  await loop.advance(2);
  assertEquals(errors.length, 3);
  assertFalse("sourceTraceback" in errors[0]);
  assertStrictEquals(errors[1].handle, soon);
  assertStrictEquals(errors[2].handle, later);
  const soonTb = errors[1].sourceTraceback!;
  const laterTb = errors[2].sourceTraceback!;
  assert(/^\s+at /.test(soonTb), soonTb);
  assert(soonTb.includes("schedulesSoon"), soonTb);
  assert(laterTb.includes("schedulesLater"), laterTb);
  assert(soonTb.includes("base_event_loop_test.ts"), soonTb);
  loop.close();
});

// ---- Futures and tasks ----

Deno.test("BaseEventLoop.createFuture() makes a pending future of this loop", () => {
  const loop = new BaseEventLoop();
  const fut = loop.createFuture<number>();
  assertInstanceOf(fut, Future);
  assertStrictEquals(fut.getLoop(), loop);
  assertFalse(fut.done());
  loop.close();
});

Deno.test("BaseEventLoop.createTask() makes a named task of this loop", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(() => Promise.resolve(5), { name: "five" });
  assertInstanceOf(task, Task);
  assertStrictEquals(task.getLoop(), loop);
  assertEquals(task.getName(), "five");
  assertEquals(await loop.runUntilComplete(task), 5);
  loop.close();
});

// ---- Time, printing ----

Deno.test("BaseEventLoop.time() is a non-decreasing number of seconds", () => {
  const loop = new BaseEventLoop();
  let last = loop.time();
  for (let i = 0; i < 1000; i++) {
    const now = loop.time();
    assert(now >= last);
    last = now;
  }
  loop.close();
});

Deno.test("BaseEventLoop prints its state", async () => {
  const loop = new BaseEventLoop();
  assertEquals(
    Object.prototype.toString.call(loop),
    "[object BaseEventLoop stopped]",
  );
  const seen: string[] = [];
  loop.callSoon(() => {
    seen.push(Object.prototype.toString.call(loop));
    loop.stop();
  });
  await loop.runForever();
  assertEquals(seen, ["[object BaseEventLoop running]"]);
  loop.close();
  assertEquals(
    Object.prototype.toString.call(loop),
    "[object BaseEventLoop closed]",
  );
  const v = new VirtualTimeLoop();
  assertEquals(
    Object.prototype.toString.call(v),
    "[object VirtualTimeLoop stopped]",
  );
  v.close();
});

// ---- Fairness ----

Deno.test("BaseEventLoop lets host timers run under a flood of callbacks", async () => {
  const loop = new BaseEventLoop();
  let hostRan = false;
  let spins = 0;
  const limit = 50_000_000;
  function spin() {
    spins++;
    if (hostRan || spins >= limit) loop.stop();
    else loop.callSoon(spin);
  }
  const id = setTimeout(() => hostRan = true, 0);
  loop.callSoon(spin);
  try {
    await loop.runForever();
  } finally {
    clearTimeout(id);
  }
  assert(hostRan, `host timer starved for ${spins} callbacks`);
  loop.close();
});

// ---- Property: random timer schedules ----

Deno.test("BaseEventLoop fires random timer schedules in order, each live one exactly once", async () => {
  for (const seed of [11, 22, 33, 44, 55]) {
    const rand = prng(seed);
    const loop = new VirtualTimeLoop();
    interface Entry {
      seq: number;
      when: number;
      handle: TimerHandle;
      cancelled: boolean;
      fired: number;
    }
    const entries: Entry[] = [];
    const fired: Entry[] = [];
    let seq = 0;
    const schedule = (depth: number) => {
      const delay = (1 + Math.floor(rand() * 40)) / 4;
      const entry: Entry = {
        seq: seq++,
        when: loop.time() + delay,
        handle: null as unknown as TimerHandle,
        cancelled: false,
        fired: 0,
      };
      const fire = () => {
        entry.fired++;
        assertEquals(loop.time(), entry.when);
        fired.push(entry);
        const r = rand();
        if (r < 0.3 && depth < 3) schedule(depth + 1);
        else if (r < 0.5) {
          // Cancel some timer that has not fired yet.
          const open = entries.filter((e) => e.fired === 0 && !e.cancelled);
          if (open.length > 0) {
            const victim = open[Math.floor(rand() * open.length)];
            victim.handle.cancel();
            victim.cancelled = true;
          }
        }
      };
      entry.handle = rand() < 0.5
        ? loop.callLater(delay, fire)
        : loop.callAt(entry.when, fire);
      assertEquals(entry.handle.when, entry.when);
      entries.push(entry);
    };
    for (let i = 0; i < 300; i++) schedule(0);
    for (const e of entries) {
      if (rand() < 0.2) {
        e.handle.cancel();
        e.cancelled = true;
      }
    }
    await loop.advance(1000);
    for (let i = 1; i < fired.length; i++) {
      const a = fired[i - 1];
      const b = fired[i];
      assert(
        a.when < b.when || (a.when === b.when && a.seq < b.seq),
        `seed ${seed}: #${a.seq}@${a.when} fired before #${b.seq}@${b.when}`,
      );
    }
    for (const e of entries) {
      assertEquals(
        e.fired,
        e.cancelled ? 0 : 1,
        `seed ${seed}: timer #${e.seq} fired ${e.fired} times`,
      );
    }
    assertEquals(
      Deno.inspect(loop),
      "VirtualTimeLoop stopped ready=0 timers=0",
    );
    loop.close();
  }
});

// ---- runUntilComplete(future, timeout) ----

Deno.test("BaseEventLoop.runUntilComplete() rejects with TimeoutError when the timeout expires first, without cancelling the future", async () => {
  const { TimeoutError } = await import("../../futures/errors.ts");
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<string>();
  loop.callLater(10, () => fut.setResult("late"));
  const start = loop.time();
  await assertRejects(() => loop.runUntilComplete(fut, 5), TimeoutError);
  assertEquals(loop.time() - start, 5);
  assertFalse(fut.done());
  assertEquals(await loop.runUntilComplete(fut, 10), "late");
  assertEquals(loop.time() - start, 10);
  loop.close();
});

Deno.test("BaseEventLoop.runUntilComplete() with a timeout returns the result of a future done in time and leaves no timer", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  loop.callLater(1, () => fut.setResult(7));
  assertEquals(await loop.runUntilComplete(fut, 2), 7);
  // The timeout's timer is gone: an idle run ends at once.
  const probe = loop.createFuture<void>();
  loop.callSoon(() => probe.setResult());
  await loop.runUntilComplete(probe);
  assertEquals(loop.time() < 2, true);
  loop.close();
});

Deno.test("BaseEventLoop.runUntilComplete() whose future is done in the iteration that stops the loop leaves no stop for the next run", async () => {
  // The loop stops before the future's done callback (which stops it too)
  // runs: by the timeout expiring in that iteration, or by a stop() there.
  const ends: Array<(loop: VirtualTimeLoop, fut: Future<number>) => void> = [
    (loop, fut) => {
      loop.callLater(1, () => fut.setResult(7));
      loop.callLater(1, () => {});
    },
    (loop, fut) => {
      loop.callLater(1, () => {
        fut.setResult(7);
        loop.stop();
      });
    },
  ];
  for (const [i, end] of ends.entries()) {
    const loop = new VirtualTimeLoop();
    const fut = loop.createFuture<number>();
    end(loop, fut);
    assertEquals(await loop.runUntilComplete(fut, i === 0 ? 1 : 5), 7);
    const next = loop.createFuture<number>();
    loop.callLater(1, () => next.setResult(8));
    assertEquals(await loop.runUntilComplete(next, 5), 8);
    assertEquals(loop.time(), 2);
    loop.close();
  }
});

Deno.test("BaseEventLoop.runUntilComplete() keeps InvalidStateError for stop() when a timeout is given", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<void>();
  loop.callLater(1, () => loop.stop());
  await assertRejects(
    () => loop.runUntilComplete(fut, 5),
    InvalidStateError,
    "stopped before the future was done",
  );
  loop.close();
});

Deno.test("BaseEventLoop.runUntilComplete() refuses a timeout that is not a number of seconds >= 0", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<void>();
  await assertRejects(() => loop.runUntilComplete(fut, -1), RangeError);
  await assertRejects(
    () => loop.runUntilComplete(fut, "1" as unknown as number),
    TypeError,
  );
  loop.close();
});

// ---- A Handle where a callback goes ----

Deno.test("BaseEventLoop.callSoon(handle) queues the handle again and returns it", async () => {
  const loop = new VirtualTimeLoop();
  const seen: number[] = [];
  const h = loop.callSoon((n: number) => seen.push(n), 1);
  assertStrictEquals(loop.callSoon(h), h);
  assertStrictEquals(loop.callSoonThreadsafe(h), h);
  await loop.runUntilComplete(Promise.resolve());
  await loop.runUntilComplete(loop.createTask(function* () {
    yield;
  }));
  assertEquals(seen, [1, 1, 1]);
  loop.close();
});

Deno.test("BaseEventLoop.callSoon() with a cancelled handle is a no-op returning the handle", async () => {
  const loop = new VirtualTimeLoop();
  const seen: number[] = [];
  const h = loop.callSoon(() => seen.push(1));
  h.cancel();
  assertStrictEquals(loop.callSoon(h), h);
  const t = loop.callLater(1, h);
  assertInstanceOf(t, TimerHandle);
  assert(t.cancelled);
  assert(loop.callAt(loop.time() + 1, h).cancelled);
  await loop.runUntilComplete(loop.createTask(function* () {
    yield;
  }));
  await loop.advance(2);
  assertEquals(seen, []);
  loop.close();
});

Deno.test("BaseEventLoop.callLater(delay, handle) calls the handle's callback at the time unless the handle is cancelled", async () => {
  const loop = new VirtualTimeLoop();
  const seen: [string, number][] = [];
  const a = loop.callSoon((s: string) => seen.push([s, loop.time()]), "a");
  const b = loop.callSoon((s: string) => seen.push([s, loop.time()]), "b");
  const start = loop.time();
  const ta = loop.callLater(1, a);
  loop.callAt(start + 2, b);
  assertEquals(ta.args, ["a"]);
  await loop.advance(0);
  seen.length = 0;
  b.cancel();
  await loop.advance(3);
  assertEquals(seen, [["a", start + 1]]);
  loop.close();
});

Deno.test("BaseEventLoop.callRepeatedly(interval, handle) stops when the handle is cancelled", async () => {
  const loop = new VirtualTimeLoop();
  let n = 0;
  const h = loop.callSoon(() => n++);
  await loop.advance(0);
  loop.callRepeatedly(1, h);
  await loop.advance(3);
  assertEquals(n, 4);
  h.cancel();
  await loop.advance(3);
  assertEquals(n, 4);
  loop.close();
});

Deno.test("BaseEventLoop.callSoon() refuses a TimerHandle and a Handle with arguments", () => {
  const loop = new VirtualTimeLoop();
  const h = loop.callSoon(() => {});
  const t = loop.callLater(1, () => {});
  assertThrows(() => loop.callSoon(t), TypeError, "a TimerHandle cannot");
  assertThrows(() => loop.callLater(1, t), TypeError, "a TimerHandle cannot");
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => (loop.callSoon as any)(h, 1),
    TypeError,
    "a Handle takes no extra arguments, received 1 argument",
  );
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => (loop.callAt as any)(0, h, 1, 2),
    TypeError,
    "received 2 arguments",
  );
  // callSoonThreadsafe() names itself, not the callSoon() it hands on to.
  assertThrows(
    () => loop.callSoonThreadsafe(t),
    TypeError,
    "Cannot call callSoonThreadsafe(): a TimerHandle cannot stand for a callback",
  );
  assertThrows(
    // deno-lint-ignore no-explicit-any
    () => (loop.callSoonThreadsafe as any)(h, 1),
    TypeError,
    "Cannot call callSoonThreadsafe(): a Handle takes no extra arguments, received 1 argument",
  );
  t.cancel();
  loop.close();
});

Deno.test("runUntilComplete() takes an async or generator function uncalled and runs it as a task of the loop, with no current loop set", async () => {
  // asyncio's `loop.run_until_complete(main())` idiom: called here, an
  // async main() would start before the loop runs, where sleep() finds no
  // loop; passed uncalled it runs as a task of this loop.
  const loop = new BaseEventLoop();
  try {
    const ran = await loop.runUntilComplete(async () => {
      await sleep(0.001);
      return { task: currentTask() };
    });
    assertInstanceOf(ran.task, Task);
    assertStrictEquals(ran.task?.getLoop(), loop);
    assertEquals(
      await loop.runUntilComplete(function* () {
        yield* sleep(0.001);
        return 7;
      }),
      7,
    );
  } finally {
    loop.close();
  }
});

Deno.test("a future made with no loop running or current says how to pass an async main uncalled", () => {
  const err = assertThrows(() => new Future(), InvalidStateError);
  assertStringIncludes(err.message, "runUntilComplete(main)");
});

Deno.test("runUntilComplete() given a plain function refuses what it returns, as run() does: a TypeError that says to pass an async or generator function", async () => {
  // A function that forgot `async` returns at once: the loop would not run
  // for what it started, and asyncio's run_until_complete(lambda: 5)
  // raises TypeError.
  const loop = new BaseEventLoop();
  try {
    const err = await assertRejects(
      () => loop.runUntilComplete((() => 5) as never),
      TypeError,
    );
    assertStringIncludes(err.message, "async or generator function");
    assertStringIncludes(err.message, "it returned 5");
    // An async function, or one returning a promise or a generator, runs.
    assertEquals(await loop.runUntilComplete(() => Promise.resolve(6)), 6);
  } finally {
    loop.close();
  }
});
