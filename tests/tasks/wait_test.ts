import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { CancelledError } from "../../futures/errors.ts";
import { Future } from "../../futures/future.ts";
import { asCompleted } from "../../tasks/as_completed.ts";
import { gather } from "../../tasks/gather.ts";
import { sleep } from "../../tasks/sleep.ts";
import { type Coroutine, Task } from "../../tasks/task.ts";
import {
  ALL_COMPLETED,
  FIRST_COMPLETED,
  FIRST_EXCEPTION,
  type ReturnWhen,
  wait,
} from "../../tasks/wait.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

function* failAfter(delay: number, message: string): Coroutine<number> {
  yield* sleep(delay);
  throw new Error(message);
}

// ---- The three conditions ----

Deno.test("wait() waits for all by default (ALL_COMPLETED)", async () => {
  const loop = new VirtualTimeLoop();
  const a = sleep(1, "a", { loop });
  const b = sleep(3, "b", { loop });
  const [done, pending] = await loop.runUntilComplete(wait([a, b]));
  assertEquals(done, new Set([a, b]));
  assertEquals(pending.size, 0);
  assertEquals(loop.time(), 3);
  loop.close();
});

Deno.test("wait() with ALL_COMPLETED also waits through errors", async () => {
  const loop = new VirtualTimeLoop();
  const bad = new Task(failAfter(1, "bad"), { loop });
  const good = sleep(2, 2, { loop });
  const fut = wait([bad, good], { returnWhen: ALL_COMPLETED });
  const [done, pending] = await loop.runUntilComplete(fut);
  assertEquals([done.size, pending.size, loop.time()], [2, 0, 2]);
  assertInstanceOf(bad.exception(), Error);
  loop.close();
});

Deno.test("wait() with FIRST_COMPLETED returns when one finishes", async () => {
  const loop = new VirtualTimeLoop();
  const fast = sleep(1, "fast", { loop });
  const slow = sleep(5, "slow", { loop });
  const [done, pending] = await loop.runUntilComplete(
    wait([slow, fast], { returnWhen: FIRST_COMPLETED }),
  );
  assertEquals([...done], [fast]);
  assertEquals([...pending], [slow]);
  assertFalse(slow.cancelled(), "nothing is cancelled");
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("wait() with FIRST_COMPLETED counts a cancellation as completion", async () => {
  const loop = new VirtualTimeLoop();
  const a = sleep(5, "a", { loop });
  const b = sleep(5, "b", { loop });
  loop.callLater(1, () => b.cancel());
  const [done] = await loop.runUntilComplete(
    wait([a, b], { returnWhen: FIRST_COMPLETED }),
  );
  assertEquals([...done], [b]);
  loop.close();
});

Deno.test("wait() with FIRST_EXCEPTION returns at the first error", async () => {
  const loop = new VirtualTimeLoop();
  const ok = sleep(1, "ok", { loop });
  const bad = new Task(failAfter(2, "bad"), { loop });
  const slow = sleep(9, "slow", { loop });
  const [done, pending] = await loop.runUntilComplete(
    wait([ok, bad, slow], { returnWhen: FIRST_EXCEPTION }),
  );
  assertEquals(done, new Set<Future<unknown>>([ok, bad]));
  assertEquals([...pending], [slow]);
  assertEquals(loop.time(), 2);
  loop.close();
});

Deno.test("wait() with FIRST_EXCEPTION ignores cancellations and waits for all without errors", async () => {
  const loop = new VirtualTimeLoop();
  const a = sleep(1, "a", { loop });
  const b = sleep(2, "b", { loop });
  const c = sleep(9, "c", { loop });
  loop.callLater(1.5, () => b.cancel());
  const [done, pending] = await loop.runUntilComplete(
    wait([a, b, c], { returnWhen: FIRST_EXCEPTION }),
  );
  assertEquals([done.size, pending.size, loop.time()], [3, 0, 9]);
  loop.close();
});

Deno.test("wait() returns at once when the condition already holds", async () => {
  const loop = new VirtualTimeLoop();
  const done = new Future<string>({ loop });
  done.setResult("x");
  const later = sleep(10, "y", { loop });
  const [d, p] = await loop.runUntilComplete(
    wait([done, later], { returnWhen: FIRST_COMPLETED }),
  );
  assertEquals([[...d], [...p]], [[done], [later]]);
  assertEquals(loop.time(), 0);
  loop.close();
});

// ---- Timeouts ----

Deno.test("wait() with a timeout returns what is done and cancels nothing", async () => {
  const loop = new VirtualTimeLoop();
  const a = sleep(1, "a", { loop });
  const b = sleep(60, "b", { loop });
  const [done, pending] = await loop.runUntilComplete(
    wait([a, b], { timeout: 30 }),
  );
  assertEquals([[...done], [...pending]], [[a], [b]]);
  assertEquals(loop.time(), 30);
  assertFalse(b.done());
  assertEquals(await loop.runUntilComplete(b), "b");
  loop.close();
});

Deno.test("wait() with a timeout returns early when the condition holds", async () => {
  const loop = new VirtualTimeLoop();
  const a = sleep(1, "a", { loop });
  const fut = wait([a], { timeout: 30 });
  const [done] = await loop.runUntilComplete(fut);
  assertEquals([...done], [a]);
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("wait() with a timeout and nothing done gives an empty done set", async () => {
  const loop = new VirtualTimeLoop();
  const a = sleep(5, "a", { loop });
  const [done, pending] = await loop.runUntilComplete(
    wait([a], { timeout: 0 }),
  );
  assertEquals([done.size, pending.size], [0, 1]);
  loop.close();
});

// ---- Inputs ----

Deno.test("wait() wraps coroutines and promises in futures", async () => {
  const loop = new VirtualTimeLoop();
  function* coro(): Coroutine<string> {
    return yield* sleep(1, "coro");
  }
  const main = loop.createTask(async () => {
    const [done, pending] = await wait([coro(), Promise.resolve("promise")]);
    return [
      pending.size,
      [...done].every((f) => f instanceof Future),
      [...done].map((f) => f.result()).sort(),
    ];
  });
  assertEquals(await loop.runUntilComplete(main), [0, true, [
    "coro",
    "promise",
  ]]);
  loop.close();
});

Deno.test("wait() counts an awaitable given twice once", async () => {
  const loop = new VirtualTimeLoop();
  const a = sleep(1, "a", { loop });
  const [done] = await loop.runUntilComplete(wait([a, a, a]));
  assertEquals(done.size, 1);
  loop.close();
});

Deno.test("wait() works from a generator coroutine", async () => {
  const loop = new VirtualTimeLoop();
  function* main(): Coroutine<number> {
    const [done] = yield* wait([sleep(1, 1), sleep(2, 2)], {
      returnWhen: FIRST_COMPLETED,
    });
    return [...done][0].result();
  }
  assertEquals(await loop.runUntilComplete(main()), 1);
  loop.close();
});

// ---- Cancellation ----

Deno.test("wait(): cancelling the result leaves the awaitables running", async () => {
  const loop = new VirtualTimeLoop();
  const a = sleep(5, "a", { loop });
  const fut = wait([a], { timeout: 10 });
  loop.callLater(1, () => fut.cancel());
  await assertRejects(() => loop.runUntilComplete(fut), CancelledError);
  assertFalse(a.done());
  assertEquals(await loop.runUntilComplete(a), "a");
  loop.close();
});

Deno.test("wait(): cancelling the waiting task leaves the awaitables running", async () => {
  const loop = new VirtualTimeLoop();
  const a = sleep(5, "a", { loop });
  const main = loop.createTask(async () => await wait([a]));
  loop.callLater(1, () => main.cancel());
  await assertRejects(() => loop.runUntilComplete(main), CancelledError);
  assertFalse(a.done());
  a.cancel();
  loop.close();
});

// ---- Misuse ----

Deno.test("wait() of nothing throws RangeError", () => {
  const loop = new VirtualTimeLoop();
  assertThrows(() => wait([], { loop }), RangeError, "empty");
  loop.close();
});

Deno.test("wait() rejects an unknown returnWhen with RangeError", () => {
  const loop = new VirtualTimeLoop();
  const a = sleep(1, "a", { loop });
  assertThrows(
    () => wait([a], { returnWhen: "FIRST" as ReturnWhen }),
    RangeError,
    "returnWhen",
  );
  loop.close();
});

Deno.test("wait() rejects a single future, a coroutine and a bad timeout with TypeError", () => {
  const loop = new VirtualTimeLoop();
  const a = sleep(1, "a", { loop });
  assertThrows(
    () => wait(a as unknown as Future<string>[]),
    TypeError,
    "single future",
  );
  assertThrows(
    () => wait(failAfter(1, "x") as unknown as Future<number>[]),
    TypeError,
    "coroutine",
  );
  assertThrows(
    () => wait([a], { timeout: "1" as unknown as number }),
    TypeError,
  );
  loop.close();
});

Deno.test("FIRST_COMPLETED, FIRST_EXCEPTION and ALL_COMPLETED are distinct strings", () => {
  const all = new Set([FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED]);
  assertEquals(all.size, 3);
  assert([...all].every((x) => typeof x === "string"));
});

// ---- Scenarios from asyncio's own tests ----

Deno.test("wait() with a timeout sorts futures when the caller resumes, not when the timer fires", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<void> {
    const a = loop.createTask(function* () {
      yield* sleep(0.1);
    });
    const b = loop.createTask(function* () {
      yield* sleep(0.15);
    });
    yield* sleep(0); // a's timer now fires just before wait()'s
    const [done, pending] = yield* wait([a, b], { timeout: 0.1 });
    assert(a.done());
    assertEquals([[...done], [...pending]], [[a], [b]]);
    yield* b;
  });
  await loop.runUntilComplete(main);
  loop.close();
});

Deno.test("wait() from an async function sorts futures when it resumes", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const a = loop.createTask(function* () {
      yield* sleep(0.1);
    });
    const b = loop.createTask(function* () {
      yield* sleep(0.15);
    });
    await sleep(0); // a's timer now fires just before wait()'s
    const [done, pending] = await wait([a, b], { timeout: 0.1 });
    assertEquals([a.done(), done.has(a), pending.has(a)], [true, true, false]);
    assert(pending.has(b));
    await b;
  });
  await loop.runUntilComplete(main);
  loop.close();
});

Deno.test("wait() refuses options that are not an object, so that a timeout or returnWhen given positionally is not silently ignored", () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  for (const options of [5, "FIRST_COMPLETED", null, loop]) {
    assertThrows(
      () => wait([fut], options as never),
      TypeError,
      "Cannot wait: options must be an object like { timeout, returnWhen }",
    );
  }
  loop.close();
});

// ---- Cases from CPython's test_tasks.py ----

// Mirrors CPython's BaseTaskTests.test_wait_with_iterator_of_tasks.
Deno.test("wait() takes an array iterator of tasks", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<number> {
    const a = loop.createTask(() => sleep(0.1));
    const b = loop.createTask(() => sleep(0.15));
    const [done, pending] = yield* wait([b, a][Symbol.iterator]());
    assertEquals(done, new Set([a, b]));
    assertEquals(pending.size, 0);
    return 42;
  });
  assertEquals(await loop.runUntilComplete(main), 42);
  assertEquals(loop.time(), 0.15);
  loop.close();
});

// Mirrors CPython's BaseTaskTests.test_wait_generator: asyncio takes a
// generator of tasks; here a generator object is a coroutine, so wait(),
// gather() and asCompleted() refuse it and say to spread it into an array.
Deno.test("wait(), gather() and asCompleted() given a generator say to pass [...gen] instead", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<void> {
    function* tasks() {
      // deno-lint-ignore require-await
      for (let i = 0; i < 10; i++) yield loop.createTask(async () => i);
    }
    for (
      const call of [
        () => wait(tasks()),
        () => gather(tasks() as unknown as Task<number>[]),
        () => asCompleted(tasks()),
      ]
    ) {
      assertThrows(call, TypeError, "[...");
    }
    const [done, pending] = yield* wait([...tasks()]);
    assertEquals(done.size, 10);
    assertEquals(pending.size, 0);
  });
  await loop.runUntilComplete(main);
  loop.close();
});

// Mirrors CPython's BaseTaskTests.test_wait_really_done.
Deno.test("wait(FIRST_COMPLETED) reports every awaitable done by the time the caller resumes", async () => {
  const loop = new VirtualTimeLoop();
  const a = loop.createTask(async () => {
    await sleep(0);
  });
  const b = loop.createTask(async () => {
    await sleep(0);
    await sleep(0);
  });
  const [done, pending] = await loop.runUntilComplete(
    loop.createTask(() => wait([b, a], { returnWhen: FIRST_COMPLETED })),
  );
  assertEquals(done, new Set([a, b]));
  assertEquals(pending.size, 0);
  loop.close();
});

// Mirrors CPython's BaseTaskTests.test_wait_first_exception_in_wait and
// test_wait_concurrent_complete.
Deno.test("wait(FIRST_EXCEPTION) returns at an error raised while it waits; a timeout equal to a sleep leaves that sleep pending", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<void> {
    const a = loop.createTask(() => sleep(10));
    const b = loop.createTask(async () => {
      await sleep(0.01);
      throw new RangeError("err");
    });
    const [done, pending] = yield* wait([b, a], {
      returnWhen: FIRST_EXCEPTION,
    });
    assertEquals(done, new Set([b]));
    assertEquals(pending, new Set([a]));
    assertEquals(loop.time(), 0.01);
    a.cancel();
    // The timer of wait()'s timeout is set before the sleeps' timers (the
    // tasks have not started), so at the shared deadline it fires first,
    // as asyncio's does for an `await asyncio.wait(...)` inside a task.
    const c = loop.createTask(() => sleep(0.1));
    const d = loop.createTask(() => sleep(0.15));
    const [done2, pending2] = yield* wait([d, c], { timeout: 0.1 });
    assertEquals(done2.size, 0);
    assertEquals(pending2, new Set([c, d]));
    yield* wait([c, d]);
  });
  await loop.runUntilComplete(main);
  loop.close();
});

// Mirrors CPython's BaseTaskTests.test_cancel_with_message_before_starting_task.
Deno.test("a task cancelled with a message before it started: its CancelledError, message kept, goes through wait() and exception()", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const t = loop.createTask(async () => {
      await sleep(10);
    });
    t.cancel("my message");
    await wait([t]);
    t.exception();
  });
  const err = await assertRejects(
    () => loop.runUntilComplete(main),
    CancelledError,
  );
  assertEquals(err.message, "my message");
  loop.close();
});

// Mirrors CPython's BaseTaskTests.test_yield_wait_does_not_shield_cancel.
Deno.test("wait(): a cancelled waiting task ends, the task it waited for runs on to its end", async () => {
  const loop = new VirtualTimeLoop();
  let proof = 0;
  const waiter = new Future<void>({ loop });
  const outer = loop.createTask(async () => {
    await wait([loop.createTask(async () => {
      await waiter;
      proof += 1;
    })]);
    proof += 100;
  });
  await loop.runUntilComplete(sleep(0, undefined, { loop }));
  outer.cancel();
  await assertRejects(() => loop.runUntilComplete(outer), CancelledError);
  waiter.setResult();
  await loop.runUntilComplete(sleep(0, undefined, { loop }));
  assertEquals(proof, 1);
  loop.close();
});
