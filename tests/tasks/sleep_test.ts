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
import { sleep } from "../../tasks/sleep.ts";
import type { Coroutine } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

Deno.test("sleep() returns a future that completes after the delay", async () => {
  const loop = new VirtualTimeLoop();
  const fut = sleep(2.5, "woke", { loop });
  assertInstanceOf(fut, Future);
  assertStrictEquals(fut.getLoop(), loop);
  assertFalse(fut.done());
  assertEquals(await loop.runUntilComplete(fut), "woke");
  assertEquals(loop.time(), 2.5);
  loop.close();
});

Deno.test("sleep() completes with undefined when no result is given", async () => {
  const loop = new VirtualTimeLoop();
  assertEquals(
    await loop.runUntilComplete(sleep(1, undefined, { loop })),
    undefined,
  );
  loop.close();
});

Deno.test("sleep() is not done a moment before its delay", async () => {
  const loop = new VirtualTimeLoop();
  const fut = sleep(5, 1, { loop });
  await loop.advance(4.999);
  assertFalse(fut.done());
  await loop.advance(0.001);
  assert(fut.done());
  loop.close();
});

Deno.test("sleep() binds to the running loop by default", async () => {
  const loop = new VirtualTimeLoop();
  function* main(): Coroutine<number> {
    const fut = sleep(3, 7);
    assertStrictEquals(fut.getLoop(), loop);
    return yield* fut;
  }
  assertEquals(await loop.runUntilComplete(main()), 7);
  assertEquals(loop.time(), 3);
  loop.close();
});

Deno.test("sleep() without a loop throws InvalidStateError when none is running", () => {
  assertThrows(() => sleep(1), InvalidStateError);
});

Deno.test("sleep() throws TypeError for a delay that is not a number", () => {
  const loop = new VirtualTimeLoop();
  assertThrows(
    () => sleep("1" as never, undefined, { loop }),
    TypeError,
    'Cannot sleep: delay must be a number of seconds, received "1"',
  );
  assertThrows(
    () => sleep(NaN, undefined, { loop }),
    TypeError,
    "received NaN",
  );
  loop.close();
});

Deno.test("sleep(0) yields for exactly one iteration", async () => {
  const loop = new VirtualTimeLoop();
  const order: string[] = [];
  loop.callSoon(() => order.push("before"));
  const fut = sleep(0, "zero", { loop });
  loop.callSoon(() => order.push("after"));
  fut.addDoneCallback(() => order.push("done callback"));
  await loop.runOnce();
  assert(fut.done());
  assertEquals(order, ["before", "after"]);
  await loop.runOnce();
  assertEquals(order, ["before", "after", "done callback"]);
  assertEquals(loop.time(), 0);
  loop.close();
});

Deno.test("sleep() with a negative delay acts like sleep(0)", async () => {
  const loop = new VirtualTimeLoop();
  const fut = sleep(-3, "neg", { loop });
  await loop.runOnce();
  assertEquals(fut.result(), "neg");
  assertEquals(loop.time(), 0);
  loop.close();
});

Deno.test("sleep() futures complete in order of their delays", async () => {
  const loop = new VirtualTimeLoop();
  const order: number[] = [];
  const futs = [3, 1, 2, 1].map((d, i) => {
    const f = sleep(d, i, { loop });
    f.addDoneCallback((x) => order.push(x.result()));
    return f;
  });
  // futs[0] is the last due; its done callback was added before the one
  // runUntilComplete() adds, so it has run when this returns.
  await loop.runUntilComplete(futs[0]);
  assertEquals(order, [1, 3, 2, 0]);
  loop.close();
});

Deno.test("sleep() cancelled cancels its timer", async () => {
  const loop = new VirtualTimeLoop();
  const fut = sleep(100, "never", { loop });
  assert(fut.cancel());
  await assertRejects(() => loop.runUntilComplete(fut), CancelledError);
  assertEquals(Deno.inspect(loop), "VirtualTimeLoop stopped ready=0 timers=0");
  // The clock does not jump to the cancelled timer.
  await loop.runUntilComplete(sleep(1, undefined, { loop }));
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("sleep(0) cancelled never sets a result", async () => {
  const loop = new VirtualTimeLoop();
  const fut = sleep(0, "x", { loop });
  fut.cancel();
  await loop.runOnce();
  assert(fut.cancelled());
  assertEquals(Deno.inspect(loop), "VirtualTimeLoop stopped ready=0 timers=0");
  loop.close();
});

Deno.test("sleep() works with await in an async function", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(async () => {
    const a = await sleep(10, "a");
    const b = await sleep(20, "b");
    return a + b + loop.time();
  });
  assertEquals(await loop.runUntilComplete(task), "ab30");
  loop.close();
});

// ---- Scenarios from asyncio's own tests ----

// Counts iterations: a callback that schedules itself until stopped.
function iterationCounter(loop: VirtualTimeLoop) {
  let n = 0;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    n++;
    loop.callSoon(tick);
  };
  loop.callSoon(tick);
  return {
    count: () => n,
    stop: () => {
      stopped = true;
    },
  };
}

Deno.test("yield* sleep(0) resumes after one iteration, as a bare yield does", async () => {
  const loop = new VirtualTimeLoop();
  const iterations = iterationCounter(loop);
  const main = loop.createTask(function* (): Coroutine<number[]> {
    yield;
    const a = iterations.count();
    yield;
    const b = iterations.count();
    const zero = yield* sleep(0, "zero");
    assertEquals(zero, "zero");
    const c = iterations.count();
    iterations.stop();
    return [b - a, c - b];
  });
  const [bare, slept] = await loop.runUntilComplete(main);
  assertEquals(bare, 1);
  assertEquals(slept, bare);
  loop.close();
});

Deno.test("await sleep(0) resumes after one iteration, as yield* sleep(0) does", async () => {
  const loop = new VirtualTimeLoop();
  const iterations = iterationCounter(loop);
  const main = loop.createTask(async () => {
    await sleep(0);
    const a = iterations.count();
    const zero = await sleep(0, "zero");
    assertEquals(zero, "zero");
    const b = iterations.count();
    iterations.stop();
    return b - a;
  });
  assertEquals(await loop.runUntilComplete(main), 1);
  loop.close();
});

Deno.test("await sleep(0) in a task cancelled meanwhile throws the cancellation", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(async () => {
    await sleep(0);
    return "slept";
  });
  await loop.runOnce(); // the task starts and awaits
  task.cancel("stop");
  await assertRejects(
    () => loop.runUntilComplete(task),
    CancelledError,
    "stop",
  );
  loop.close();
});

Deno.test("sleep() refuses options that are not an object like { loop } (a loop given bare included)", () => {
  const loop = new VirtualTimeLoop();
  for (const options of [loop, 5, null]) {
    assertThrows(
      () => sleep(1, "r", options as never),
      TypeError,
      "Cannot sleep: options must be an object like { loop }",
    );
  }
  loop.close();
});
