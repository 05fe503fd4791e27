// The order in which tasks run relative to each other, as in CPython's
// asyncio tests (test_locks, test_queues): after one `sleep(0)` of the main
// task, the tasks made ready before it have run their step, in the order
// they were made ready, whether they are generators or async functions.
// An async function's `await` of a done future (an uncontended acquire, a
// set event) does not wait, as in asyncio: its step runs on to the next
// real wait before the next task's step.

import { assert, assertEquals, assertFalse } from "@std/assert";
import type { Future } from "../../futures/future.ts";
import { wrapFuture } from "../../futures/wrap_future.ts";
import { Condition } from "../../tasks/condition.ts";
import { Event } from "../../tasks/event.ts";
import { Lock } from "../../tasks/lock.ts";
import { Queue } from "../../tasks/queue.ts";
import { Semaphore } from "../../tasks/semaphore.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Coroutine, Task } from "../../tasks/task.ts";
import type { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { run } from "../_helpers.ts";

type Style = "async" | "generator";
const STYLES: Style[] = ["async", "generator"];

/**
 * Starts a task that waits for each future `steps` makes, in turn, and
 * then records `n` if the last one gave a truthy result: written as an
 * async function or as a generator.
 */
function recorder(
  loop: VirtualTimeLoop,
  style: Style,
  result: number[],
  n: number,
  ...steps: (() => Future<unknown>)[]
): Task<boolean> {
  if (style === "async") {
    return loop.createTask(async () => {
      let value: unknown;
      for (const step of steps) value = await step();
      if (value) result.push(n);
      return true;
    });
  }
  return loop.createTask(function* (): Coroutine<boolean> {
    let value: unknown;
    for (const step of steps) value = yield* step();
    if (value) result.push(n);
    return true;
  });
}

for (const style of STYLES) {
  Deno.test(`asyncio order (${style} tasks): Event wakes a task made before set() first (test_wait)`, async () => {
    await run(function* (loop) {
      const ev = new Event({ loop });
      const result: number[] = [];
      const t1 = recorder(loop, style, result, 1, () => ev.wait());
      const t2 = recorder(loop, style, result, 2, () => ev.wait());
      yield* sleep(0);
      assertEquals(result, []);
      const t3 = recorder(loop, style, result, 3, () => ev.wait());
      ev.set();
      yield* sleep(0);
      assertEquals(result, [3, 1, 2]);
      assert(t1.done() && t2.done() && t3.done());
    });
  });

  Deno.test(`asyncio order (${style} tasks): an async main task sees the Event's waiters as asyncio does (test_wait)`, async () => {
    await run(function* (loop) {
      const ev = new Event({ loop });
      const result: number[] = [];
      const main = loop.createTask(async () => {
        recorder(loop, style, result, 1, () => ev.wait());
        recorder(loop, style, result, 2, () => ev.wait());
        await sleep(0);
        const seen = [[...result]];
        recorder(loop, style, result, 3, () => ev.wait());
        ev.set();
        await sleep(0);
        seen.push([...result]);
        return seen;
      });
      assertEquals(yield* main, [[], [3, 1, 2]]);
    });
  });

  Deno.test(`asyncio order (${style} tasks): Event set, cleared and set again wakes its waiter once (test_clear_with_waiters)`, async () => {
    await run(function* (loop) {
      const ev = new Event({ loop });
      const result: number[] = [];
      const t = recorder(loop, style, result, 1, () => ev.wait());
      yield* sleep(0);
      assertEquals(result, []);
      ev.set();
      ev.clear();
      assertFalse(ev.isSet());
      ev.set();
      ev.set();
      yield* sleep(0);
      assertEquals(result, [1]);
      assert(t.done());
    });
  });

  Deno.test(`asyncio order (${style} tasks): Lock hands over to its waiters one release at a time (test_acquire)`, async () => {
    await run(function* (loop) {
      const lock = new Lock({ loop });
      const result: number[] = [];
      assert(yield* lock.acquire());
      const t1 = recorder(loop, style, result, 1, () => lock.acquire());
      const t2 = recorder(loop, style, result, 2, () => lock.acquire());
      yield* sleep(0);
      assertEquals(result, []);
      lock.release();
      yield* sleep(0);
      assertEquals(result, [1]);
      yield* sleep(0);
      assertEquals(result, [1]);
      const t3 = recorder(loop, style, result, 3, () => lock.acquire());
      lock.release();
      yield* sleep(0);
      assertEquals(result, [1, 2]);
      lock.release();
      yield* sleep(0);
      assertEquals(result, [1, 2, 3]);
      assertEquals([t1.result(), t2.result(), t3.result()], [true, true, true]);
    });
  });

  Deno.test(`asyncio order (${style} tasks): Condition wakes as many waiters as notified, each once the lock is free (test_wait)`, async () => {
    await run(function* (loop) {
      const cond = new Condition(undefined, { loop });
      const result: number[] = [];
      const tasks = [1, 2, 3].map((n) =>
        recorder(
          loop,
          style,
          result,
          n,
          () => cond.acquire(),
          () => cond.wait(),
        )
      );
      yield* sleep(0);
      assertEquals(result, []);
      assertFalse(cond.locked());
      assert(yield* cond.acquire());
      cond.notify();
      yield* sleep(0);
      assertEquals(result, []);
      assert(cond.locked());
      cond.release();
      yield* sleep(0);
      assertEquals(result, [1]);
      assert(cond.locked());
      cond.notify(2);
      yield* sleep(0);
      assertEquals(result, [1]);
      assert(cond.locked());
      cond.release();
      yield* sleep(0);
      assertEquals(result, [1, 2]);
      assert(cond.locked());
      cond.release();
      yield* sleep(0);
      assertEquals(result, [1, 2, 3]);
      assert(cond.locked());
      assert(tasks.every((t) => t.done()));
    });
  });

  Deno.test(`asyncio order (${style} tasks): Semaphore lets waiters in as it is released, first come first served (test_acquire)`, async () => {
    await run(function* (loop) {
      const sem = new Semaphore(3, { loop });
      const result: number[] = [];
      assert(yield* sem.acquire());
      assert(yield* sem.acquire());
      assertFalse(sem.locked());
      const t1 = recorder(loop, style, result, 1, () => sem.acquire());
      const t2 = recorder(loop, style, result, 2, () => sem.acquire());
      const t3 = recorder(loop, style, result, 3, () => sem.acquire());
      yield* sleep(0);
      assertEquals(result, [1]);
      assert(sem.locked());
      const t4 = recorder(loop, style, result, 4, () => sem.acquire());
      sem.release();
      sem.release();
      yield* sleep(0);
      assertEquals(result, [1, 2, 3]);
      assert(t1.done() && t2.done() && t3.done());
      assertFalse(t4.done());
      t4.cancel();
      yield* sleep(0);
    });
  });

  Deno.test(`asyncio order (${style} tasks): Queue getters and putters take turns in the order they came (test_queues)`, async () => {
    await run(function* (loop) {
      const q = new Queue<number>(1, { loop });
      const got: number[] = [];
      const getters = [1, 2].map(() =>
        style === "async"
          ? loop.createTask(async () => {
            got.push(await q.get());
          })
          : loop.createTask(function* () {
            got.push(yield* q.get());
          })
      );
      yield* sleep(0);
      q.putNowait(1);
      // The first getter takes the item; the second finds the queue empty
      // again and keeps waiting.
      yield* sleep(0);
      assertEquals(got, [1]);
      q.putNowait(2);
      yield* sleep(0);
      assertEquals(got, [1, 2]);
      assert(getters.every((t) => t.done()));
    });
  });
}

// What JavaScript cannot match: a native promise is not a Future, so the
// loop does not see it settle. Already settled, it lets no other task in,
// like a done future (the loop lets the step run on while it has not waited
// on a pending future). Pending, the awaiting function resumes at the next
// point where the loop lets microtasks run: here right after the next
// callback that resumes an async function, ahead of that function, where
// asyncio would run it on the next iteration. wrapFuture() restores
// asyncio's order: the wrapped future completes when the promise settles and
// wakes its task through the loop.
Deno.test("asyncio order: an async task awaiting a settled native promise keeps its turn", async () => {
  await run(function* (loop) {
    const ev = new Event({ loop });
    const result: number[] = [];
    loop.createTask(async () => {
      await ev.wait();
      await Promise.resolve();
      result.push(1);
    });
    recorder(loop, "async", result, 2, () => ev.wait());
    yield* sleep(0);
    ev.set();
    yield* sleep(0);
    assertEquals(result, [1, 2]);
  });
});

for (const wrap of [false, true]) {
  Deno.test(
    `asyncio order: an async task awaiting a pending native promise${
      wrap
        ? " wrapped in a Future resumes on the next iteration"
        : " resumes at the next resumption"
    }`,
    async () => {
      await run(function* (loop) {
        const ev = new Event({ loop });
        const result: number[] = [];
        let settle!: () => void;
        const promise = new Promise<void>((resolve) => settle = resolve);
        loop.createTask(async () => {
          await (wrap ? wrapFuture(promise) : promise);
          result.push(1);
        });
        recorder(loop, "generator", result, 2, () => ev.wait());
        recorder(loop, "async", result, 3, () => ev.wait());
        yield* sleep(0);
        // One iteration: the promise settles, a generator task steps, then
        // an async task resumes.
        loop.callSoon(settle);
        ev.set();
        yield* sleep(0);
        yield* sleep(0);
        assertEquals(result, wrap ? [2, 3, 1] : [2, 1, 3]);
      });
    },
  );
}
