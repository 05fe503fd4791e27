import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import v8 from "node:v8";
import vm from "node:vm";
import { CancelledError, InvalidStateError } from "../../futures/errors.ts";
import { Future, isFuture } from "../../futures/future.ts";
import { getRunningLoop } from "../../futures/running_loop.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import { gather } from "../../tasks/gather.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Coroutine } from "../../tasks/task.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

// ---- Construction ----

Deno.test("Future() without a loop throws InvalidStateError when none is running", () => {
  assertEquals(getRunningLoop(), null);
  const e = assertThrows(() => new Future<number>(), InvalidStateError);
  assert(e.message.startsWith("Cannot create a Future: "));
});

Deno.test("Future() binds to the loop given in its options", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  assertStrictEquals(fut.getLoop(), loop);
  loop.close();
});

Deno.test("Future() refuses options that are not an options object, or a loop given bare", () => {
  const loop = new VirtualTimeLoop();
  const bad: [unknown, string][] = [
    [42, "options must be an object like { loop }, received 42"],
    [null, "options must be an object like { loop }, received null"],
    [loop, "pass the loop as { loop }, received VirtualTimeLoop"],
    [{ loop: 42 }, "loop must be an event loop, received 42"],
    [{ loop: {} }, "loop must be an event loop, received Object"],
  ];
  for (const [options, message] of bad) {
    assertThrows(
      () => new Future<number>(options as never),
      TypeError,
      `Cannot create a Future: ${message}`,
    );
  }
  assertThrows(() => new Future<number>({}), InvalidStateError);
  loop.close();
});

Deno.test("Future() binds to the running loop by default", async () => {
  const loop = new VirtualTimeLoop();
  const made: Future<number>[] = [];
  loop.callSoon(() => {
    made.push(new Future<number>());
    loop.stop();
  });
  await loop.runForever();
  assertStrictEquals(made[0].getLoop(), loop);
  loop.close();
});

Deno.test("Future starts pending", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  assertFalse(fut.done());
  assertFalse(fut.cancelled());
  loop.close();
});

// ---- result() and exception() ----

Deno.test("Future.result() and exception() throw InvalidStateError while pending", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  const e1 = assertThrows(() => fut.result(), InvalidStateError);
  assertEquals(e1.message, "Cannot get result: future is pending");
  const e2 = assertThrows(() => fut.exception(), InvalidStateError);
  assertEquals(e2.message, "Cannot get exception: future is pending");
  loop.close();
});

Deno.test("Future.setResult() makes the future done with that result", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  fut.setResult(42);
  assert(fut.done());
  assertFalse(fut.cancelled());
  assertEquals(fut.result(), 42);
  assertEquals(fut.exception(), undefined);
  loop.close();
});

Deno.test("Future.setResult() accepts undefined as a result", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<undefined>({ loop });
  fut.setResult(undefined);
  assert(fut.done());
  assertEquals(fut.result(), undefined);
  loop.close();
});

Deno.test("Future.setException() makes result() throw the error", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  const err = new RangeError("boom");
  fut.setException(err);
  assert(fut.done());
  assertFalse(fut.cancelled());
  assertStrictEquals(fut.exception(), err);
  assertStrictEquals(assertThrows(() => fut.result()), err);
  loop.close();
});

Deno.test("Future.setException() accepts values that are not Errors", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  fut.setException("plain string");
  assertEquals(fut.exception(), "plain string");
  assertThrows(() => fut.result());
  loop.close();
});

Deno.test("Future.setException() refuses a CancelledError with a TypeError", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  assertThrows(
    () => fut.setException(new CancelledError()),
    TypeError,
    "call cancel() instead",
  );
  assertFalse(fut.done());
  loop.close();
});

Deno.test("Future.setException() with an error whose message getter throws leaves the future pending", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  const hostile = new Error("x");
  Object.defineProperty(hostile, "message", {
    get() {
      throw new RangeError("no message");
    },
  });
  assertThrows(() => fut.setException(hostile), RangeError, "no message");
  assertFalse(fut.done());
  fut.setResult(1);
  assertEquals(fut.result(), 1);
  loop.close();
});

Deno.test("Future.setResult() and setException() throw InvalidStateError once done", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  fut.setResult(1);
  assertThrows(
    () => fut.setResult(2),
    InvalidStateError,
    "Cannot call setResult(): future is already finished",
  );
  assertThrows(
    () => fut.setException(new Error("x")),
    InvalidStateError,
    "Cannot call setException(): future is already finished",
  );
  assertEquals(fut.result(), 1);

  const cancelled = new Future<number>({ loop });
  cancelled.cancel();
  assertThrows(
    () => cancelled.setResult(2),
    InvalidStateError,
    "Cannot call setResult(): future is already cancelled",
  );
  loop.close();
});

Deno.test("Future.setException() makes an error of an Error class given instead of an instance", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  fut.setException(RangeError);
  assertInstanceOf(fut.exception(), RangeError);
  const plain = new Future<number>({ loop });
  plain.setException(Error);
  assertInstanceOf(plain.exception(), Error);
  const cancelled = new Future<number>({ loop });
  assertThrows(
    () => cancelled.setException(CancelledError),
    TypeError,
    "call cancel() instead",
  );
  assertFalse(cancelled.done());
  loop.close();
});

// ---- cancel() ----

Deno.test("Future.cancel() cancels a pending future and returns true", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  assert(fut.cancel());
  assert(fut.cancelled());
  assert(fut.done());
  loop.close();
});

Deno.test("Future.cancel() returns false once the future is done", () => {
  const loop = new VirtualTimeLoop();
  const a = new Future<number>({ loop });
  a.setResult(1);
  assertFalse(a.cancel());
  assertFalse(a.cancelled());
  assertEquals(a.result(), 1);

  const b = new Future<number>({ loop });
  b.cancel();
  assertFalse(b.cancel());
  assert(b.cancelled());
  loop.close();
});

Deno.test("Future.result() and exception() throw CancelledError with the cancel message", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  fut.cancel("stop now");
  const e1 = assertThrows(() => fut.result(), CancelledError);
  assertEquals(e1.message, "stop now");
  const e2 = assertThrows(() => fut.exception(), CancelledError);
  assertEquals(e2.message, "stop now");
  loop.close();
});

Deno.test("Future.cancel() without a message gives an empty CancelledError message", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  fut.cancel();
  assertEquals(assertThrows(() => fut.result(), CancelledError).message, "");
  loop.close();
});

// ---- Done callbacks ----

Deno.test("Future.setResult() schedules done callbacks instead of running them", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  const seen: unknown[] = [];
  fut.addDoneCallback((f) => seen.push(f));
  fut.setResult(1);
  assertEquals(seen, []);
  await loop.runOnce();
  assertEquals(seen.length, 1);
  assertStrictEquals(seen[0], fut);
  loop.close();
});

Deno.test("Future done callbacks run after setResult() returns, never inline", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  let returned = false;
  const observed: boolean[] = [];
  fut.addDoneCallback(() => observed.push(returned));
  loop.callSoon(() => {
    fut.setResult(1);
    returned = true;
  });
  await loop.runUntilComplete(fut);
  assertEquals(observed, [true]);
  loop.close();
});

Deno.test("Future.setException() schedules done callbacks instead of running them", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  let calls = 0;
  fut.addDoneCallback(() => calls++);
  fut.setException(new Error("x"));
  assertEquals(calls, 0);
  await loop.runOnce();
  assertEquals(calls, 1);
  fut.exception();
  loop.close();
});

Deno.test("Future.cancel() schedules done callbacks instead of running them", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  const states: boolean[] = [];
  fut.addDoneCallback((f) => states.push(f.cancelled()));
  fut.cancel();
  assertEquals(states, []);
  await loop.runOnce();
  assertEquals(states, [true]);
  loop.close();
});

Deno.test("Future.addDoneCallback() on a done future schedules the callback", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  fut.setResult(5);
  const seen: number[] = [];
  fut.addDoneCallback((f) => seen.push(f.result()));
  assertEquals(seen, []);
  await loop.runOnce();
  assertEquals(seen, [5]);
  loop.close();
});

Deno.test("Future done callbacks run in the order they were added", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  const order: string[] = [];
  fut.addDoneCallback(() => order.push("a"));
  fut.addDoneCallback(() => order.push("b"));
  fut.addDoneCallback(() => order.push("c"));
  fut.setResult(0);
  await loop.runOnce();
  assertEquals(order, ["a", "b", "c"]);
  loop.close();
});

Deno.test("Future done callbacks are queued behind callbacks scheduled earlier", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  const order: string[] = [];
  fut.addDoneCallback(() => order.push("done"));
  loop.callSoon(() => order.push("first"));
  fut.setResult(0);
  loop.callSoon(() => order.push("last"));
  await loop.runOnce();
  assertEquals(order, ["first", "done", "last"]);
  loop.close();
});

Deno.test("Future done callbacks each run once even if the future is done twice over", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  let calls = 0;
  fut.addDoneCallback(() => calls++);
  fut.setResult(1);
  assertFalse(fut.cancel());
  await loop.runOnce();
  loop.callSoon(() => {});
  await loop.runOnce();
  assertEquals(calls, 1);
  loop.close();
});

Deno.test("Future.addDoneCallback() refuses a Handle, a non-function or a coroutine function at once", async () => {
  // PEP 3156: a done callback is called with the future alone and should
  // not be a Handle. Accepted, it failed setResult() later, after the
  // future was done, and the valid callbacks behind it never ran.
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  const handle = loop.callSoon(() => {});
  const refused = [
    handle,
    42,
    null,
    function* gen() {},
    async () => {},
  ];
  for (const fn of refused) {
    const e = assertThrows(
      () => fut.addDoneCallback(fn as never),
      TypeError,
      "Cannot add a done callback: ",
    );
    assert(e.message.includes("received "), e.message);
  }
  const done = loop.createFuture<number>();
  done.setResult(1);
  assertThrows(() => done.addDoneCallback(handle as never), TypeError);
  const seen: unknown[] = [];
  fut.addDoneCallback((f) => seen.push(f.result()));
  fut.setResult(7);
  await loop.advance(0);
  assertEquals(seen, [7]);
  loop.close();
});

Deno.test("Future.removeDoneCallback() removes every registration and returns the count", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  const order: string[] = [];
  const a = () => order.push("a");
  const b = () => order.push("b");
  fut.addDoneCallback(a);
  fut.addDoneCallback(b);
  fut.addDoneCallback(a);
  assertEquals(fut.removeDoneCallback(a), 2);
  assertEquals(fut.removeDoneCallback(a), 0);
  fut.setResult(1);
  await loop.runOnce();
  assertEquals(order, ["b"]);
  loop.close();
});

Deno.test("Future.removeDoneCallback() returns 0 for an unknown callback or no callbacks", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  assertEquals(fut.removeDoneCallback(() => {}), 0);
  fut.addDoneCallback(() => {});
  assertEquals(fut.removeDoneCallback(() => {}), 0);
  loop.close();
});

Deno.test("Future.removeDoneCallback() of the last callback leaves the future usable", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  const a = () => {};
  fut.addDoneCallback(a);
  assertEquals(fut.removeDoneCallback(a), 1);
  let calls = 0;
  fut.addDoneCallback(() => calls++);
  fut.setResult(1);
  await loop.runOnce();
  assertEquals(calls, 1);
  loop.close();
});

Deno.test("Future.removeDoneCallback() after the future is done removes nothing", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  let calls = 0;
  const a = () => calls++;
  fut.addDoneCallback(a);
  fut.setResult(1);
  assertEquals(fut.removeDoneCallback(a), 0);
  await loop.runOnce();
  assertEquals(calls, 1);
  loop.close();
});

Deno.test("Future done callback errors go to the loop's exception handler", async () => {
  const loop = new VirtualTimeLoop();
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
  const fut = new Future<number>({ loop });
  const err = new Error("in callback");
  let after = false;
  fut.addDoneCallback(() => {
    throw err;
  });
  fut.addDoneCallback(() => after = true);
  fut.setResult(1);
  await loop.runOnce();
  assert(after);
  assertEquals(contexts.length, 1);
  assertStrictEquals(contexts[0].exception, err);
  loop.close();
});

// ---- yield* ----

Deno.test("Future iterator yields a pending future itself, then returns its result", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  const it = fut[Symbol.iterator]();
  const first = it.next();
  assertFalse(first.done);
  assertStrictEquals(first.value, fut);
  fut.setResult(7);
  assertEquals(it.next(), { done: true, value: 7 });
  loop.close();
});

Deno.test("Future iterator of a done future returns at once without yielding", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  fut.setResult(3);
  assertEquals(fut[Symbol.iterator]().next(), { done: true, value: 3 });
  loop.close();
});

Deno.test("Future iterator throws the future's error or CancelledError", () => {
  const loop = new VirtualTimeLoop();
  const failed = new Future<number>({ loop });
  const err = new Error("bad");
  failed.setException(err);
  assertStrictEquals(
    assertThrows(() => failed[Symbol.iterator]().next()),
    err,
  );
  const cancelled = new Future<number>({ loop });
  cancelled.cancel("gone");
  assertThrows(
    () => cancelled[Symbol.iterator]().next(),
    CancelledError,
    "gone",
  );
  loop.close();
});

Deno.test("Future works with yield* in a generator coroutine", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  function* main(): Coroutine<number> {
    const x = yield* fut;
    return x + 1;
  }
  loop.callSoon(() => fut.setResult(41));
  assertEquals(await loop.runUntilComplete(main()), 42);
  loop.close();
});

Deno.test("Future error is thrown at the yield* in a generator coroutine", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  function* main(): Coroutine<string> {
    try {
      yield* fut;
      return "no";
    } catch (e) {
      return (e as Error).message;
    }
  }
  loop.callSoon(() => fut.setException(new Error("caught")));
  assertEquals(await loop.runUntilComplete(main()), "caught");
  loop.close();
});

// ---- await / then ----

Deno.test("Future works with await in an async function", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  loop.callSoon(() => fut.setResult(20));
  const task = loop.createTask(async () => (await fut) + 1);
  assertEquals(await loop.runUntilComplete(task), 21);
  loop.close();
});

Deno.test("Future rejects an await with its error or with CancelledError", async () => {
  const loop = new VirtualTimeLoop();
  const failed = loop.createFuture<number>();
  const cancelled = loop.createFuture<number>();
  const err = new Error("nope");
  loop.callSoon(() => {
    failed.setException(err);
    cancelled.cancel("bye");
  });
  const task = loop.createTask(async () => {
    const out: unknown[] = [];
    try {
      await failed;
    } catch (e) {
      out.push(e);
    }
    try {
      await cancelled;
    } catch (e) {
      out.push(e);
    }
    return out;
  });
  const [e1, e2] = await loop.runUntilComplete(task);
  assertStrictEquals(e1, err);
  assertInstanceOf(e2, CancelledError);
  assertEquals((e2 as CancelledError).message, "bye");
  loop.close();
});

Deno.test("Future.then() on a pending future settles only on the loop's turn", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  const seen: number[] = [];
  const p = fut.then((v) => seen.push(v));
  fut.setResult(1);
  for (let i = 0; i < 10; i++) await Promise.resolve();
  assertEquals(seen, []);
  await loop.runOnce();
  await p;
  assertEquals(seen, [1]);
  loop.close();
});

Deno.test("Future.then() on a done future settles without the loop", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  fut.setResult(1);
  assertEquals(await fut.then((v) => v + 1), 2);
  const failed = loop.createFuture<number>();
  failed.setException(new Error("done already"));
  await assertRejects(() => failed.then(), Error, "done already");
  assertFalse(loop.isRunning());
  loop.close();
});

Deno.test("Future.then() passes handler results and handler errors along", async () => {
  const loop = new VirtualTimeLoop();
  const ok = loop.createFuture<number>();
  const bad = loop.createFuture<number>();
  ok.setResult(2);
  bad.setException(new Error("e"));
  assertEquals(await ok.then((v) => v * 2), 4);
  assertEquals(
    await bad.then(null, (e) => `recovered ${(e as Error).message}`),
    "recovered e",
  );
  await assertRejects(
    () =>
      ok.then(() => {
        throw new TypeError("from handler");
      }),
    TypeError,
    "from handler",
  );
  await assertRejects(() => bad.then((v) => v), Error, "e");
  assertEquals(await ok.then(), 2);
  await assertRejects(
    () =>
      bad.then(null, () => {
        throw new RangeError("again");
      }),
    RangeError,
    "again",
  );
  loop.close();
});

Deno.test("Future.then() handlers of a pending future see the outcome on the loop's turn", async () => {
  const loop = new VirtualTimeLoop();
  const ok = loop.createFuture<number>();
  const bad = loop.createFuture<number>();
  const doubled = ok.then((v) => v * 2);
  const recovered = bad.then(null, (e) => `recovered ${(e as Error).message}`);
  loop.callSoon(() => {
    ok.setResult(2);
    bad.setException(new Error("e"));
  });
  await loop.runUntilComplete(bad.then(null, () => {}));
  assertEquals(await doubled, 4);
  assertEquals(await recovered, "recovered e");
  loop.close();
});

Deno.test("Future.then() rejects with a TypeError for a future whose result is the future itself, as a promise resolved with itself does, instead of following it for ever", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<unknown>();
  fut.setResult(fut);
  await assertRejects(
    async () => await fut,
    TypeError,
    "its result is the future itself",
  );
  // The common way to get there: a task that returns itself (asyncio's
  // run_until_complete() would return it; a promise can only follow it).
  const box: { task?: Future<unknown> } = {};
  const task: Future<unknown> = box.task = loop.createTask(
    function* (): Coroutine<unknown> {
      yield;
      return box.task;
    }(),
  );
  await assertRejects(
    () => loop.runUntilComplete(task),
    TypeError,
    "its result is the future itself",
  );
  assertStrictEquals(task.result(), task);
  loop.close();
});

Deno.test("Future.then() rejects with a TypeError for futures whose results lead back to one of them, instead of following them for ever", async () => {
  const loop = new VirtualTimeLoop();
  const a = loop.createFuture<unknown>();
  const b = loop.createFuture<unknown>();
  a.setResult(b);
  // Each hop of a promise following the chain calls then() once; cut the
  // chain after many, so that the test ends when the defect is there.
  let hops = 0;
  for (const f of [a, b]) {
    const then = f.then.bind(f);
    Object.defineProperty(f, "then", {
      value: (...args: Parameters<typeof then>) => {
        if (++hops <= 1000) return then(...args);
        args[1]?.(new Error("followed the futures for ever"));
        return new Promise(() => {});
      },
    });
  }
  // Closed when b finishes: the promise already follows a to b.
  const awaited = (async () => await a)();
  awaited.catch(() => {}); // Looked at below.
  await Promise.resolve();
  b.setResult(a);
  await loop.runUntilComplete(sleep(0, undefined, { loop }));
  await assertRejects(() => awaited, TypeError, "leads back to it");
  await assertRejects(async () => await b, TypeError, "leads back to it");
  assert(hops < 10, `then() was called ${hops} times`);
  loop.close();
});

Deno.test("Future.then() returns a native Promise", () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  assertInstanceOf(fut.then(), Promise);
  fut.cancel();
  loop.close();
});

// ---- Printing ----

Deno.test("Future.describe() names the state and the outcome", () => {
  const loop = new VirtualTimeLoop();
  const a = loop.createFuture<number>();
  assertEquals(a.describe(), "Future pending");
  a.setResult(42);
  assertEquals(a.describe(), "Future finished result=42");
  const b = loop.createFuture<number>();
  b.setException(new Error("x"));
  assertEquals(b.describe(), "Future finished exception=Error: x");
  const c = loop.createFuture<number>();
  c.cancel();
  assertEquals(c.describe(), "Future cancelled");
  loop.close();
});

Deno.test("Future.describe() prints any outcome on one short line, as asyncio's repr", () => {
  const loop = new VirtualTimeLoop();
  const bare = loop.createFuture<unknown>();
  bare.setResult(Object.create(null));
  assertEquals(bare.describe(), "Future finished result=Object");
  assertEquals(Deno.inspect(bare), "Future finished result=Object");
  const text = loop.createFuture<string>();
  text.setResult("x".repeat(1000));
  assertEquals(text.describe(), `Future finished result="${"x".repeat(80)}…"`);
  const hostile = loop.createFuture<unknown>();
  hostile.setException({
    toString() {
      throw new Error("no");
    },
  });
  assertEquals(hostile.describe(), "Future finished exception=Object");
  loop.close();
});

Deno.test("Future.describe() of a pending future names its done callbacks", () => {
  const loop = new VirtualTimeLoop();
  function first() {}
  function last() {}
  const fut = loop.createFuture<number>();
  fut.addDoneCallback(first);
  assertEquals(fut.describe(), "Future pending cb=[first()]");
  fut.addDoneCallback(last);
  assertEquals(fut.describe(), "Future pending cb=[first(), last()]");
  for (let i = 0; i < 8; i++) fut.addDoneCallback(() => {});
  fut.addDoneCallback(last);
  assertEquals(fut.describe(), "Future pending cb=[first(), <9 more>, last()]");
  fut.cancel();
  assertEquals(fut.describe(), "Future cancelled");
  loop.close();
});

Deno.test("Future prints its state through toStringTag and Deno.inspect", () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  assertEquals(Object.prototype.toString.call(fut), "[object Future pending]");
  assertEquals(Deno.inspect(fut), "Future pending");
  fut.setResult(1);
  assertEquals(
    Object.prototype.toString.call(fut),
    "[object Future finished]",
  );
  assertEquals(Deno.inspect(fut), "Future finished result=1");
  loop.close();
});

// ---- isFuture ----

Deno.test("isFuture() is true for futures and false for promises and thenables", () => {
  const loop = new VirtualTimeLoop();
  assert(isFuture(loop.createFuture()));
  assertFalse(isFuture(Promise.resolve(1)));
  assertFalse(isFuture({ then() {} }));
  assertFalse(isFuture(null));
  assertFalse(isFuture(undefined));
  loop.close();
});

// ---- Exceptions never retrieved ----

// The report comes from a FinalizationRegistry, so it needs a garbage
// collection. `--expose-gc` cannot be passed per test, but V8 accepts it at
// run time through node:v8, and a new context then hands out `gc`.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

function failFuture(loop: VirtualTimeLoop, retrieve: boolean): void {
  const fut = loop.createFuture<number>();
  fut.setException(new Error("lost"));
  if (retrieve) fut.exception();
}

// A loop and the contexts its exception handler receives.
function reportingLoop(): [VirtualTimeLoop, ExceptionContext[]] {
  const loop = new VirtualTimeLoop();
  const seen: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => seen.push(ctx));
  return [loop, seen];
}

// A few more rounds, for what would be reported by mistake.
async function collectRounds(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 0));
  }
}

// Fails a control future nobody looks at, collects until it is reported
// (and a few rounds more), and checks that it is all that was reported.
async function assertOnlyControlReported(
  loop: VirtualTimeLoop,
  seen: ExceptionContext[],
): Promise<void> {
  failFuture(loop, false);
  await collectUntil(() => seen.length > 0);
  await collectRounds(3);
  assertEquals(seen.map((c) => (c.exception as Error).message), ["lost"]);
}

async function collectUntil(done: () => boolean): Promise<void> {
  // Finalizers run in a later macrotask; give them a bounded number of
  // chances (no timing involved: each round is one full GC and one hop).
  for (let i = 0; i < 50 && !done(); i++) {
    gc();
    await new Promise((r) => setTimeout(r, 0));
  }
}

Deno.test("Future in debug mode reports an exception never retrieved once collected", async () => {
  const loop = new VirtualTimeLoop();
  loop.setDebug(true);
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
  failFuture(loop, false);
  await collectUntil(() => contexts.length > 0);
  assertEquals(contexts.length, 1);
  assertEquals(contexts[0].message, "Future exception was never retrieved");
  assertEquals((contexts[0].exception as Error).message, "lost");
  assert(String(contexts[0].sourceTraceback).includes("lost"));
  loop.close();
});

Deno.test("Future in debug mode does not report an exception that was retrieved", async () => {
  const loop = new VirtualTimeLoop();
  loop.setDebug(true);
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
  failFuture(loop, true);
  // A control future that is never retrieved tells us when finalizers ran.
  failFuture(loop, false);
  await collectUntil(() => contexts.length > 0);
  assertEquals(contexts.length, 1);
  loop.close();
});

Deno.test("Future outside debug mode reports an exception never retrieved too, without the stack", async () => {
  const [loop, seen] = reportingLoop();
  failFuture(loop, true);
  failFuture(loop, false);
  await collectUntil(() => seen.length > 0);
  assertEquals(seen.length, 1);
  assertEquals(seen[0].message, "Future exception was never retrieved");
  assertEquals((seen[0].exception as Error).message, "lost");
  assertEquals(seen[0].sourceTraceback, undefined);
  loop.close();
});

Deno.test("Future outside debug mode reports an exception never retrieved with just message and exception, as asyncio's context has no source_traceback then", async () => {
  const [loop, seen] = reportingLoop();
  const error = new Error("kept");
  (() => {
    const fut = loop.createFuture<number>();
    fut.setException(error);
  })();
  await collectUntil(() => seen.length > 0);
  assertEquals(seen.length, 1);
  assertEquals(Object.keys(seen[0]).sort(), ["exception", "message"]);
  assertEquals(seen[0], {
    message: "Future exception was never retrieved",
    exception: error,
  });
  loop.close();
});

Deno.test("Future failed by a callback that holds it is still collected and reported", async () => {
  // The error's stack keeps the frames' closures, and so the future, alive
  // as long as the error is: the report must not hold the error strongly.
  const [loop, seen] = reportingLoop();
  let collected!: WeakRef<Future<number>>;
  (() => {
    const fut = loop.createFuture<number>();
    collected = new WeakRef(fut);
    loop.callSoon(() => fut.setException(new RangeError("held")));
  })();
  await loop.runUntilComplete(loop.createTask(function* () {
    yield;
  }()));
  await collectUntil(() => seen.length > 0);
  assertEquals(collected.deref(), undefined);
  assertEquals(seen.length, 1);
  assertEquals(seen[0].message, "Future exception was never retrieved");
  assertInstanceOf(seen[0].exception, RangeError);
  assertEquals((seen[0].exception as Error).message, "held");
  loop.close();
});

Deno.test("Future.cancel() of a failed future silences its never-retrieved report", async () => {
  const [loop, seen] = reportingLoop();
  (() => {
    const fut = loop.createFuture<number>();
    fut.setException(new Error("silenced"));
    assertFalse(fut.cancel());
  })();
  await assertOnlyControlReported(loop, seen);
  loop.close();
});

Deno.test("Task.cancel() of a failed task silences its never-retrieved report", async () => {
  const [loop, seen] = reportingLoop();
  // Held in an object, and touched in plain functions only: a suspended
  // async function keeps its temporaries alive.
  const held: { task: Future<number> | null } = {
    task: loop.createTask(function* (): Coroutine<number> {
      yield;
      throw new Error("silenced");
    }()),
  };
  await loop.runUntilComplete(loop.createTask(function* () {
    yield;
    yield;
  }()));
  (() => {
    const task = held.task!;
    assert(task.done());
    assertFalse(task.cancel());
    held.task = null;
  })();
  await assertOnlyControlReported(loop, seen);
  loop.close();
});

Deno.test("Future's never-retrieved report is made once, only for an unseen error", async () => {
  const [loop, seen] = reportingLoop();
  (() => {
    const viaResult = loop.createFuture<number>();
    viaResult.setException(new Error("result"));
    assertThrows(() => viaResult.result());
    const succeeded = loop.createFuture<number>();
    succeeded.setResult(1);
    loop.createFuture<number>(); // abandoned pending
  })();
  await assertOnlyControlReported(loop, seen);
  loop.close();
});

Deno.test("Task's never-retrieved report names the Task", async () => {
  const [loop, seen] = reportingLoop();
  loop.createTask(function* (): Coroutine<number> {
    yield;
    throw new Error("task lost");
  }());
  await loop.runUntilComplete(loop.createTask(function* () {
    yield;
    yield;
  }()));
  await collectUntil(() => seen.length > 0);
  assertEquals(seen.length, 1);
  assertEquals(seen[0].message, "Task exception was never retrieved");
  assertEquals((seen[0].exception as Error).message, "task lost");
  loop.close();
});

Deno.test("A private Future subclass is reported as a Future: gather()'s future", async () => {
  const [loop, seen] = reportingLoop();
  (() => {
    const child = loop.createFuture<number>();
    gather([child], { loop });
    child.setException(new Error("gathered lost"));
    child.exception();
  })();
  await loop.runUntilComplete(loop.createTask(function* () {
    yield;
    yield;
  }()));
  await collectUntil(() => seen.length > 0);
  assertEquals(seen.map((c) => c.message), [
    "Future exception was never retrieved",
  ]);
  assertEquals((seen[0].exception as Error).message, "gathered lost");
  loop.close();
});

Deno.test("A private Task subclass is reported as a Task: waitFor()'s task", async () => {
  const [loop, seen] = reportingLoop();
  (() => {
    const inner = loop.createFuture<number>();
    waitFor(inner, 10, { loop });
    inner.setException(new Error("waited lost"));
    inner.exception();
  })();
  await loop.runUntilComplete(loop.createTask(function* () {
    yield;
    yield;
    yield;
  }()));
  await collectUntil(() => seen.length > 0);
  assertEquals(seen.map((c) => c.message), [
    "Task exception was never retrieved",
  ]);
  assertEquals((seen[0].exception as Error).message, "waited lost");
  loop.close();
});

Deno.test("Future in debug mode does not report once its loop is closed", async () => {
  const closed = new VirtualTimeLoop();
  const open = new VirtualTimeLoop();
  closed.setDebug(true);
  open.setDebug(true);
  const closedSeen: ExceptionContext[] = [];
  const openSeen: ExceptionContext[] = [];
  closed.setExceptionHandler((_loop, ctx) => closedSeen.push(ctx));
  open.setExceptionHandler((_loop, ctx) => openSeen.push(ctx));
  failFuture(closed, false);
  failFuture(open, false);
  closed.close();
  await collectUntil(() => openSeen.length > 0);
  assertEquals(openSeen.length, 1);
  assertEquals(closedSeen, []);
  open.close();
});

Deno.test("Future.running() is always false", () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  assertEquals(fut.running(), false);
  fut.setResult(1);
  assertEquals(fut.running(), false);
  loop.close();
});

// ---- Cases from CPython's test_futures.py ----

// Mirrors CPython's BaseFutureTests.test_future_iter_throw (the form
// without the deprecated three arguments).
Deno.test("Future iterator: an error thrown into it comes out, before or after it yielded", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  const zebra = new Error("zebra");
  assertStrictEquals(
    assertThrows(() => fut[Symbol.iterator]().throw(zebra)),
    zebra,
  );
  const it = fut[Symbol.iterator]();
  assertStrictEquals(it.next().value, fut);
  const elephant = new RangeError("elephant");
  assertStrictEquals(assertThrows(() => it.throw(elephant)), elephant);
  assertFalse(fut.done(), "the future itself is untouched");
  loop.close();
});

// Mirrors CPython's BaseFutureTests.test_yield_from_twice.
Deno.test("Future: a generator that takes the same future twice yields it once and gets the result both times", () => {
  const loop = new VirtualTimeLoop();
  const f = new Future<number>({ loop });
  function* fixture(): Generator<unknown, void, unknown> {
    yield "A";
    const x = yield* f;
    yield ["B", x];
    const y = yield* f;
    yield ["C", y];
  }
  const g = fixture();
  assertEquals(g.next().value, "A");
  assertStrictEquals(g.next().value, f);
  f.setResult(42);
  assertEquals(g.next().value, ["B", 42]);
  assertEquals(g.next().value, ["C", 42]);
  loop.close();
});

// Mirrors CPython's BaseFutureDoneCallbackTests.test_schedule_callbacks_list_mutation_1.
Deno.test("Future: a done callback that removes the others after they were scheduled does not stop them", async () => {
  const loop = new VirtualTimeLoop();
  const f = new Future<number>({ loop });
  const ran: string[] = [];
  const other = () => ran.push("other");
  f.addDoneCallback(() => {
    ran.push("mut");
    assertEquals(f.removeDoneCallback(other), 0, "already scheduled");
  });
  f.addDoneCallback(other);
  f.addDoneCallback(other);
  f.setResult(1);
  await loop.runUntilComplete(f);
  await loop.runUntilComplete(loop.createTask(async () => {}));
  assertEquals(ran, ["mut", "other", "other"]);
  loop.close();
});

// Mirrors CPython's GatherTestsBase.test_exception_marking (CoroutineGatherTests).
Deno.test("gather(): a child failing after the gather already failed is marked retrieved, never reported", async () => {
  const [loop, seen] = reportingLoop();
  const a = loop.createFuture<void>();
  const b = loop.createFuture<void>();
  let outerError: unknown;
  (() => {
    const inner = async (f: Future<void>) => {
      await f;
      throw new RangeError("should not be ignored");
    };
    const outer = loop.createTask(async () => {
      await gather([inner(a), inner(b)]);
    });
    outer.addDoneCallback((t) => outerError = t.exception());
  })();
  const turn = () => loop.runUntilComplete(sleep(0, undefined, { loop }));
  await turn();
  a.setResult();
  await turn();
  b.setResult();
  await turn();
  await turn();
  assertInstanceOf(outerError, RangeError);
  await assertOnlyControlReported(loop, seen);
  loop.close();
});
