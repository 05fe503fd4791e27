import {
  assert,
  assertEquals,
  assertFalse,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { CancelledError } from "../../futures/errors.ts";
import { Future } from "../../futures/future.ts";
import { gather } from "../../tasks/gather.ts";
import { shield } from "../../tasks/shield.ts";
import { sleep } from "../../tasks/sleep.ts";
import { type Coroutine, currentTask } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

Deno.test("shield() passes the result through", async () => {
  const loop = new VirtualTimeLoop();
  const fut = shield(sleep(1, "value", { loop }));
  assertEquals(await loop.runUntilComplete(fut), "value");
  loop.close();
});

Deno.test("shield() passes an error through", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    await shield((async () => {
      await sleep(1);
      throw new RangeError("inner");
    })());
  });
  await assertRejects(() => loop.runUntilComplete(main), RangeError, "inner");
  loop.close();
});

Deno.test("shield(): cancelling the shield leaves the inner future running", async () => {
  const loop = new VirtualTimeLoop();
  const inner = sleep(5, "finished", { loop });
  const outer = shield(inner);
  loop.callLater(1, () => outer.cancel());
  await assertRejects(() => loop.runUntilComplete(outer), CancelledError);
  assertEquals(loop.time(), 1);
  assertFalse(inner.done());
  assertEquals(await loop.runUntilComplete(inner), "finished");
  loop.close();
});

Deno.test("shield(): a cancelled generator task gets CancelledError while the work goes on", async () => {
  const loop = new VirtualTimeLoop();
  const work = loop.createTask(function* (): Coroutine<string> {
    return yield* sleep(5, "saved");
  });
  const waiter = loop.createTask(function* (): Coroutine<string> {
    return yield* shield(work);
  });
  loop.callLater(1, () => waiter.cancel());
  await assertRejects(() => loop.runUntilComplete(waiter), CancelledError);
  assert(waiter.cancelled());
  assertEquals(await loop.runUntilComplete(work), "saved");
  loop.close();
});

Deno.test("shield(): a cancelled async-function task gets CancelledError while the work goes on", async () => {
  const loop = new VirtualTimeLoop();
  const work = loop.createTask(async () => await sleep(5, "saved"));
  const waiter = loop.createTask(async () => await shield(work));
  loop.callLater(1, () => waiter.cancel());
  await assertRejects(() => loop.runUntilComplete(waiter), CancelledError);
  assertFalse(work.done());
  assertEquals(await loop.runUntilComplete(work), "saved");
  loop.close();
});

Deno.test("shield(): when the inner future is cancelled, so is the shield", async () => {
  const loop = new VirtualTimeLoop();
  const inner = sleep(5, "never", { loop });
  const outer = shield(inner);
  loop.callLater(1, () => inner.cancel());
  await assertRejects(() => loop.runUntilComplete(outer), CancelledError);
  assert(outer.cancelled());
  loop.close();
});

Deno.test("shield() returns a finished future as is", () => {
  const loop = new VirtualTimeLoop();
  const done = new Future<number>({ loop });
  done.setResult(1);
  assertStrictEquals(shield(done), done);
  loop.close();
});

Deno.test("shield() runs a coroutine in a task", async () => {
  const loop = new VirtualTimeLoop();
  let finished = false;
  function* work(): Coroutine<void> {
    yield* sleep(3);
    finished = true;
  }
  const outer = shield(work(), { loop });
  loop.callLater(1, () => outer.cancel());
  await assertRejects(() => loop.runUntilComplete(outer), CancelledError);
  assertFalse(finished);
  await loop.advance(5);
  assert(finished);
  loop.close();
});

Deno.test("shield(): an error of the inner future after the shield was cancelled changes nothing", async () => {
  const loop = new VirtualTimeLoop();
  const reported: unknown[] = [];
  loop.setExceptionHandler((_loop, ctx) => reported.push(ctx.exception));
  const inner = new Future<number>({ loop });
  const outer = shield(inner);
  outer.cancel();
  await loop.advance(0);
  inner.setException(new Error("late"));
  await loop.advance(1);
  assertEquals(reported, []);
  assert(outer.cancelled());
  loop.close();
});

Deno.test("shield() refuses options that are not an object like { loop } (a loop given bare included)", () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  assertThrows(
    () => shield(fut, loop as never),
    TypeError,
    "Cannot shield: options must be an object like { loop }",
  );
  loop.close();
});

// ---- Cases from CPython's test_tasks.py ----

// Mirrors CPython's BaseTaskTests.test_shield_effect, for a generator
// coroutine and a task (asyncio wraps the coroutine in a task; so does
// shield() here). An async function called in place is the case below:
// its body already runs as part of the calling task.
for (const form of ["generator coroutine", "task"] as const) {
  Deno.test(`shield() of a ${form}: cancelling the waiting task leaves the work to finish`, async () => {
    const loop = new VirtualTimeLoop();
    let proof = 0;
    const waiter = new Future<void>({ loop });
    function* inner(): Coroutine<void> {
      yield* waiter;
      proof += 1;
    }
    const outer = loop.createTask(async () => {
      await shield(form === "task" ? loop.createTask(inner()) : inner());
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
}

// Mirrors CPython's BaseTaskTests.test_shield_gather and test_gather_shield.
Deno.test("shield(gather()) and gather() of shields: cancelling the outer future never reaches the children", async () => {
  const loop = new VirtualTimeLoop();
  const turn = () => loop.runUntilComplete(sleep(0, undefined, { loop }));
  const c1 = new Future<number>({ loop });
  const c2 = new Future<number>({ loop });
  const parent = gather([c1, c2]);
  const outer = shield(parent);
  await turn();
  outer.cancel();
  await turn();
  assert(outer.cancelled());
  c1.setResult(1);
  c2.setResult(2);
  await turn();
  assertEquals(parent.result(), [1, 2]);

  const d1 = new Future<number>({ loop });
  const d2 = new Future<number>({ loop });
  const s1 = shield(d1);
  const s2 = shield(d2);
  const both = gather([s1, s2]);
  await turn();
  both.cancel();
  await turn();
  assert(both.exception() instanceof CancelledError);
  assert(s1.cancelled() && s2.cancelled());
  assertFalse(d1.done() || d2.done());
  d1.setResult(1);
  d2.setResult(2);
  await turn();
  loop.close();
});

// test_shield_effect for an async function: asyncio's shield(coro) runs the
// coroutine in a task of its own, which shield(fn) does here, for an async
// function or a generator function passed uncalled.
for (
  const form of [
    "async function",
    "arrow calling an async function",
    "generator function",
  ] as const
) {
  Deno.test(`shield() of an uncalled ${form}: cancelling the waiting task leaves the work to finish`, async () => {
    const loop = new VirtualTimeLoop();
    let proof = 0;
    const waiter = new Future<void>({ loop });
    const inner = async () => {
      await waiter;
      proof += 1;
    };
    function* innerGen(): Coroutine<void> {
      yield* waiter;
      proof += 1;
    }
    const outer = loop.createTask(async () => {
      await shield(
        form === "async function"
          ? inner
          : form === "generator function"
          ? innerGen
          : () => inner(),
      );
      proof += 100;
    });
    await loop.runUntilComplete(sleep(0, undefined, { loop }));
    outer.cancel();
    await assertRejects(() => loop.runUntilComplete(outer), CancelledError);
    assertFalse(waiter.done());
    waiter.setResult();
    await loop.runUntilComplete(sleep(0, undefined, { loop }));
    assertEquals(proof, 1);
    loop.close();
  });
}

Deno.test("shield() of an async function passes its result and error through, and runs it in a task of its own", async () => {
  const loop = new VirtualTimeLoop();
  let outerTask: unknown = null;
  let innerTask: unknown = null;
  const main = loop.createTask(async () => {
    outerTask = currentTask();
    const got = await shield(async () => {
      innerTask = currentTask();
      return await sleep(1, "value");
    });
    try {
      await shield(async () => {
        await sleep(1);
        throw new RangeError("inner");
      });
    } catch (err) {
      return [got, err];
    }
    return [got, null];
  });
  const [got, err] = await loop.runUntilComplete(main);
  assertEquals(got, "value");
  assert(err instanceof RangeError);
  assert(innerTask !== null && innerTask !== outerTask);
  loop.close();
});

Deno.test("shield() of a function outside any task runs it on the loop given", async () => {
  const loop = new VirtualTimeLoop();
  let finished = false;
  const outer = shield(async () => {
    await sleep(3);
    finished = true;
  }, { loop });
  loop.callLater(1, () => outer.cancel());
  await assertRejects(() => loop.runUntilComplete(outer), CancelledError);
  assertFalse(finished);
  await loop.advance(5);
  assert(finished);
  loop.close();
});

Deno.test("shield() refuses what it cannot await, naming itself", () => {
  const loop = new VirtualTimeLoop();
  assertThrows(
    () => shield(5 as never, { loop }),
    TypeError,
    "Cannot shield: aw must be a Future, a coroutine, a promise or a function that makes one, received number",
  );
  loop.close();
});

// The limit shield()'s doc states: a promise of an async function already
// called runs as part of the calling task, so cancelling that task cancels
// the future the body awaits, shield or no shield. Pinned so that the doc
// stays true (and is revisited if this ever changes).
Deno.test("shield() of an async function's promise does not protect its body from the calling task's cancellation", async () => {
  const loop = new VirtualTimeLoop();
  let proof = 0;
  const waiter = new Future<void>({ loop });
  const inner = async () => {
    await waiter;
    proof += 1;
  };
  const outer = loop.createTask(async () => {
    await shield(inner());
    proof += 100;
  });
  await loop.runUntilComplete(sleep(0, undefined, { loop }));
  outer.cancel();
  await assertRejects(() => loop.runUntilComplete(outer), CancelledError);
  assert(waiter.cancelled());
  assertEquals(proof, 0);
  loop.close();
});
