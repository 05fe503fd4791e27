import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { CancelledError, InvalidStateError } from "../../futures/errors.ts";
import { Future } from "../../futures/future.ts";
import type { AwaitableResult } from "../../tasks/awaitable_result.ts";
import { gather } from "../../tasks/gather.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Coroutine } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

function* after<T>(delay: number, value: T): Coroutine<T> {
  yield* sleep(delay);
  return value;
}

function* failAfter(delay: number, message: string): Coroutine<never> {
  yield* sleep(delay);
  throw new Error(message);
}

// ---- Results ----

Deno.test("gather() gives results in input order, not completion order", async () => {
  const loop = new VirtualTimeLoop();
  const fut = gather([
    sleep(3, "third", { loop }),
    sleep(1, "first", { loop }),
    sleep(2, "second", { loop }),
  ]);
  assertEquals(await loop.runUntilComplete(fut), ["third", "first", "second"]);
  assertEquals(loop.time(), 3);
  loop.close();
});

Deno.test("gather() types its result as a tuple per position", async () => {
  const loop = new VirtualTimeLoop();
  function* main(): Coroutine<string> {
    const [s, n, b] = yield* gather([
      sleep(1, "a"),
      after(2, 2),
      Promise.resolve(true),
    ]);
    // Each position keeps its own type.
    const typed: [string, number, boolean] = [s, n, b];
    return typed.join();
  }
  assertEquals(await loop.runUntilComplete(main()), "a,2,true");
  loop.close();
});

Deno.test("gather() is typed per position, with or without returnExceptions", async () => {
  const loop = new VirtualTimeLoop();
  const plain: Future<[string, number]> = gather([
    sleep(1, "a", { loop }),
    sleep(1, 2, { loop }),
  ]);
  const settled: Future<[string | Error, number | Error]> = gather(
    [sleep(1, "a", { loop }), sleep(1, 2, { loop })],
    { returnExceptions: true },
  );
  const list: Future<number[]> = gather(
    [1, 2].map((n) => sleep(n, n, { loop })),
  );
  assertEquals(await loop.runUntilComplete(plain), ["a", 2]);
  assertEquals(await loop.runUntilComplete(settled), ["a", 2]);
  assertEquals(await loop.runUntilComplete(list), [1, 2]);
  loop.close();
});

Deno.test("AwaitableResult unwraps futures, coroutines and promises", () => {
  type Check<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false)
    : false;
  const checks: [
    Check<AwaitableResult<Future<number>>, number>,
    Check<AwaitableResult<Coroutine<string>>, string>,
    Check<AwaitableResult<Promise<boolean>>, boolean>,
  ] = [true, true, true];
  assertEquals(checks, [true, true, true]);
});

Deno.test("gather() accepts futures, tasks, coroutines and promises", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () =>
    await gather([
      sleep(1, "future"),
      loop.createTask(async () => await sleep(1, "task")),
      after(1, "coroutine"),
      (async () => await sleep(1, "async"))(),
    ])
  );
  assertEquals(await loop.runUntilComplete(main), [
    "future",
    "task",
    "coroutine",
    "async",
  ]);
  loop.close();
});

Deno.test("gather() of an empty list gives an empty array", async () => {
  const loop = new VirtualTimeLoop();
  const fut = gather([], { loop });
  assert(fut.done());
  assertEquals(fut.result(), []);
  assertEquals(await loop.runUntilComplete(fut), []);
  loop.close();
});

Deno.test("gather() of finished futures is finished on return", () => {
  const loop = new VirtualTimeLoop();
  const a = new Future<number>({ loop });
  const b = new Future<number>({ loop });
  a.setResult(1);
  b.setResult(2);
  const fut = gather([a, b]);
  assert(fut.done());
  assertEquals(fut.result(), [1, 2]);
  loop.close();
});

Deno.test("gather() runs an awaitable given twice once and reports it twice", async () => {
  const loop = new VirtualTimeLoop();
  let runs = 0;
  function* once(): Coroutine<string> {
    runs++;
    return yield* sleep(1, "x");
  }
  const coro = once();
  const fut = sleep(2, "y", { loop });
  const all = gather([coro, fut, coro, fut], { loop });
  assertEquals(await loop.runUntilComplete(all), ["x", "y", "x", "y"]);
  assertEquals(runs, 1);
  loop.close();
});

Deno.test("gather() works from both coroutine styles", async () => {
  const loop = new VirtualTimeLoop();
  function* gen(): Coroutine<number> {
    const [a, b] = yield* gather([after(1, 1), after(2, 2)]);
    return a + b;
  }
  const viaAsync = loop.createTask(async () => {
    const [a, b] = await gather([after(1, 10), after(2, 20)]);
    return a + b;
  });
  assertEquals(await loop.runUntilComplete(gen()), 3);
  assertEquals(await loop.runUntilComplete(viaAsync), 30);
  loop.close();
});

// ---- Errors ----

Deno.test("gather() fails with the first error and leaves the others running", async () => {
  const loop = new VirtualTimeLoop();
  const slow = loop.createTask(after(5, "slow"));
  const fut = gather([slow, failAfter(1, "first"), failAfter(2, "second")], {
    loop,
  });
  await assertRejects(() => loop.runUntilComplete(fut), Error, "first");
  assertEquals(loop.time(), 1);
  assertFalse(slow.done());
  assertEquals(await loop.runUntilComplete(slow), "slow");
  loop.close();
});

Deno.test("gather() with returnExceptions puts errors among the results", async () => {
  const loop = new VirtualTimeLoop();
  const fut = gather([after(2, "ok"), failAfter(1, "bad"), after(3, 3)], {
    loop,
    returnExceptions: true,
  });
  const [ok, bad, three] = await loop.runUntilComplete(fut);
  assertEquals(ok, "ok");
  assertInstanceOf(bad, Error);
  assertEquals(bad.message, "bad");
  assertEquals(three, 3);
  loop.close();
});

Deno.test("gather() with returnExceptions gives a CancelledError for a cancelled child", async () => {
  const loop = new VirtualTimeLoop();
  const child = sleep(5, "never", { loop });
  loop.callLater(1, () => child.cancel("stop it"));
  const fut = gather([after(2, "ok"), child], { loop, returnExceptions: true });
  const [ok, cancelled] = await loop.runUntilComplete(fut);
  assertEquals(ok, "ok");
  assertInstanceOf(cancelled, CancelledError);
  assertEquals((cancelled as Error).message, "stop it");
  loop.close();
});

Deno.test("gather() fails with CancelledError when a child is cancelled, without being cancelled itself (asyncio's test_one_cancellation)", async () => {
  const loop = new VirtualTimeLoop();
  const other = loop.createTask(after(5, "other"));
  const child = sleep(5, "never", { loop });
  loop.callLater(1, () => child.cancel("stop"));
  const fut = gather([other, child], { loop });
  await assertRejects(() => loop.runUntilComplete(fut), CancelledError);
  assertFalse(fut.cancelled());
  assertInstanceOf(fut.exception(), CancelledError);
  assertEquals((fut.exception() as Error).message, "stop");
  assertFalse(other.done(), "the other children are not cancelled");
  other.cancel();
  loop.close();
});

Deno.test("gather() of a gather() whose child is cancelled fails with its CancelledError too, the other children running on", async () => {
  const loop = new VirtualTimeLoop();
  const child = sleep(5, "never", { loop });
  const other = sleep(5, "other", { loop });
  loop.callLater(1, () => child.cancel("bye"));
  const inner = gather([child], { loop });
  const outer = gather([inner, other], { loop });
  const err = await loop.runUntilComplete(outer).catch((e) => e);
  assertInstanceOf(err, CancelledError);
  assertEquals(err.message, "bye");
  assertFalse(outer.cancelled());
  assertEquals(loop.time(), 1);
  assertFalse(other.done());
  other.cancel();
  loop.close();
});

// ---- Cancelling the gather ----

Deno.test("gather(): cancelling the result cancels every child", async () => {
  const loop = new VirtualTimeLoop();
  const a = loop.createTask(after(5, "a"));
  const b = sleep(6, "b", { loop });
  const fut = gather([a, b], { loop });
  loop.callLater(1, () => assert(fut.cancel("enough")));
  const err = await loop.runUntilComplete(fut).catch((e) => e);
  assertInstanceOf(err, CancelledError);
  assert(a.cancelled() && b.cancelled());
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("gather(): cancelling the result fails it even with returnExceptions", async () => {
  const loop = new VirtualTimeLoop();
  const a = loop.createTask(after(5, "a"));
  const fut = gather([a, sleep(1, "done", { loop })], {
    loop,
    returnExceptions: true,
  });
  loop.callLater(2, () => fut.cancel());
  await assertRejects(() => loop.runUntilComplete(fut), CancelledError);
  // As asyncio's: it finishes with the CancelledError once the children
  // are done, rather than cancelled.
  assertFalse(fut.cancelled());
  assertInstanceOf(fut.exception(), CancelledError);
  assert(a.cancelled());
  loop.close();
});

Deno.test("gather(): cancelling after every child is done does nothing", async () => {
  const loop = new VirtualTimeLoop();
  const a = new Future<number>({ loop });
  a.setResult(1);
  const fut = gather([a]);
  assertFalse(fut.cancel());
  assertEquals(await loop.runUntilComplete(fut), [1]);
  loop.close();
});

Deno.test("gather(): a child that refuses cancellation still fails the gather", async () => {
  const loop = new VirtualTimeLoop();
  const stubborn = loop.createTask(function* (): Coroutine<string> {
    try {
      yield* sleep(5);
    } catch {
      // refused
    }
    return "kept going";
  });
  const fut = gather([stubborn], { loop });
  loop.callLater(1, () => fut.cancel());
  await assertRejects(() => loop.runUntilComplete(fut), CancelledError);
  assertEquals(stubborn.result(), "kept going");
  loop.close();
});

Deno.test("gather(): cancelling the waiting task cancels the children (both styles)", async () => {
  const loop = new VirtualTimeLoop();
  const children: Future<unknown>[] = [];
  const gen = loop.createTask(function* (): Coroutine<void> {
    const c = sleep(10);
    children.push(c);
    yield* gather([c, after(10, 1)]);
  });
  const asy = loop.createTask(async () => {
    const c = sleep(10);
    children.push(c);
    await gather([c, after(10, 1)]);
  });
  loop.callLater(1, () => {
    gen.cancel();
    asy.cancel();
  });
  await assertRejects(() => loop.runUntilComplete(gen), CancelledError);
  await assertRejects(() => loop.runUntilComplete(asy), CancelledError);
  assert(children.every((c) => c.cancelled()));
  assertEquals(loop.time(), 1);
  loop.close();
});

// ---- Misuse ----

Deno.test("gather() rejects a single future or a non-iterable", () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  assertThrows(
    () => gather(fut as unknown as Future<number>[]),
    TypeError,
    "single future",
  );
  assertThrows(() => gather(42 as unknown as []), TypeError);
  assertThrows(() => gather([42 as unknown as Future<number>]), TypeError);
  loop.close();
});

Deno.test("gather() without a loop throws InvalidStateError", () => {
  assertThrows(() => gather([]), InvalidStateError);
  assertStrictEquals(typeof gather, "function");
});

Deno.test("gather() refuses options that are not an object, so that returnExceptions given positionally is not silently ignored", () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  for (const options of [true, null, loop]) {
    assertThrows(
      () => gather([fut], options as never),
      TypeError,
      "Cannot gather: options must be an object like { returnExceptions }",
    );
  }
  loop.close();
});

Deno.test("gather() names an async generator or iterable given as its collection: it takes a plain iterable", () => {
  const loop = new VirtualTimeLoop();
  // deno-lint-ignore require-yield
  async function* agen(): AsyncGenerator<never, number> {
    return 1;
  }
  // It said "received object" (before, "a coroutine"): an async generator
  // no longer counts as one.
  assertThrows(
    () => gather(agen() as unknown as []),
    TypeError,
    "received an async iterable",
  );
  loop.close();
});

// ---- Cases from CPython's test_tasks.py ----

// Mirrors CPython's BaseTaskTests.test_cancel_gather_1.
Deno.test("gather(): cancel() from a callback of the last child's future, before the gather finished, is refused", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<number>({ loop });
  // deno-lint-ignore require-await
  const { gt } = await loop.runUntilComplete(loop.createTask(async () => {
    // A coroutine between fut and gather(), so that the gather finishes a
    // turn after fut does.
    const g = gather([(async () => await fut)()]);
    return { gt: g };
  }));
  let refused: boolean | undefined;
  fut.addDoneCallback(() => refused = !gt.cancel());
  fut.setResult(42);
  assertEquals(await loop.runUntilComplete(gt), [42]);
  assertEquals(refused, true);
  assertFalse(gt.cancelled());
  loop.close();
});

// Mirrors CPython's BaseTaskTests.test_cancel_gather_2.
Deno.test("gather(returnExceptions) in a loop: the task cancelled with a message ends with that message", async () => {
  for (const msg of [undefined, "my message"]) {
    const loop = new VirtualTimeLoop();
    const main = loop.createTask(async () => {
      const worker = loop.createTask(async () => {
        for (let t = 0; t <= 1; t += 0.05) {
          await gather([sleep(0.05)], { returnExceptions: true });
        }
      });
      await sleep(0.2);
      worker.cancel(msg);
      await worker;
    });
    const err = await assertRejects(
      () => loop.runUntilComplete(main),
      CancelledError,
    );
    assertEquals(err.message, msg ?? "");
    loop.close();
  }
});

// Mirrors CPython's GatherTestsBase.test_cancellation_broadcast (CoroutineGatherTests).
Deno.test("gather(): cancelling the task that waits for it cancels the children and what they wait for; the gather then refuses cancel()", async () => {
  const loop = new VirtualTimeLoop();
  let proof = 0;
  const waiter = new Future<void>({ loop });
  const inner = async () => {
    await waiter;
    proof += 1;
  };
  const c1 = loop.createTask(inner);
  const c2 = loop.createTask(inner);
  let gathered: Future<unknown> | undefined;
  const outer = loop.createTask(async () => {
    gathered = gather([c1, c2]);
    await gathered;
    proof += 100;
  });
  await loop.runUntilComplete(sleep(0, undefined, { loop }));
  assert(outer.cancel());
  await assertRejects(() => loop.runUntilComplete(outer), CancelledError);
  assertFalse(gathered!.cancel());
  assert(waiter.cancelled() && c1.cancelled() && c2.cancelled());
  await loop.runUntilComplete(sleep(0, undefined, { loop }));
  assertEquals(proof, 0);
  loop.close();
});

// What gather()'s doc states of promises of async functions already called:
// their bodies run as part of the calling task, so cancelling that task
// reaches them (as asyncio's gather of coroutines does), while cancelling
// the gather future itself cannot. A task made of the function can be.
Deno.test("gather() of async functions' promises: the calling task's cancellation reaches their bodies, the gather future's cannot, a task's can", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const work = async (name: string) => {
    try {
      await sleep(5);
      log.push(`${name} done`);
    } catch (e) {
      log.push(`${name} ${(e as Error).name}`);
      throw e;
    }
  };
  const main = loop.createTask(async () =>
    await gather([work("a"), work("b")])
  );
  loop.callLater(1, () => main.cancel());
  await assertRejects(() => loop.runUntilComplete(main), CancelledError);
  assertEquals(log.splice(0), ["a CancelledError", "b CancelledError"]);

  let fut: Future<unknown> | null = null;
  const main2 = loop.createTask(async () => {
    fut = gather([work("c"), loop.createTask(() => work("d"))]);
    await fut;
  });
  loop.callLater(1, () => fut!.cancel());
  await assertRejects(() => loop.runUntilComplete(main2), CancelledError);
  await loop.advance(10);
  assertEquals(log, ["d CancelledError", "c done"]);
  loop.close();
});
