// The order in which tasks run relative to each other, as in CPython's
// asyncio tests (test_locks, test_queues): after one `sleep(0)` of the main
// task, the tasks made ready before it have run their step, in the order
// they were made ready, whether they are generators or async functions.
// An async function's `await` of a done future (an uncontended acquire, a
// set event) does not wait, as in asyncio: its step runs on to the next
// real wait before the next task's step.

import { assert, assertEquals, assertFalse } from "@std/assert";
import { CancelledError, TimeoutError } from "../../futures/errors.ts";
import type { Future } from "../../futures/future.ts";
import { wrapFuture } from "../../futures/wrap_future.ts";
import { Condition } from "../../tasks/condition.ts";
import { Event } from "../../tasks/event.ts";
import { gather } from "../../tasks/gather.ts";
import { Lock } from "../../tasks/lock.ts";
import { Queue } from "../../tasks/queue.ts";
import { Semaphore } from "../../tasks/semaphore.ts";
import { sleep } from "../../tasks/sleep.ts";
import { timeout } from "../../tasks/timeout.ts";
import { FIRST_COMPLETED, wait } from "../../tasks/wait.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import { type Coroutine, currentTask, type Task } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { run, settle } from "../_helpers.ts";

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
        let resolve!: () => void;
        const promise = new Promise<void>((r) => resolve = r);
        loop.createTask(async () => {
          await (wrap ? wrapFuture(promise) : promise);
          result.push(1);
        });
        recorder(loop, "generator", result, 2, () => ev.wait());
        recorder(loop, "async", result, 3, () => ev.wait());
        yield* sleep(0);
        // One iteration: the promise settles, a generator task steps, then
        // an async task resumes.
        loop.callSoon(resolve);
        ev.set();
        yield* sleep(0);
        yield* sleep(0);
        assertEquals(result, wrap ? [2, 3, 1] : [2, 1, 3]);
      });
    },
  );
}

/**
 * Starts a task that runs `steps` in turn, waiting for the future a step
 * returns; written as an async function or as a generator. Its result is
 * the last future's.
 */
function task<T>(
  loop: VirtualTimeLoop,
  style: Style,
  ...steps: (() => Future<unknown> | void)[]
): Task<T> {
  if (style === "async") {
    return loop.createTask(async () => {
      let value: unknown;
      for (const step of steps) {
        const f = step();
        value = f === undefined ? value : await f;
      }
      return value as T;
    });
  }
  return loop.createTask(function* (): Coroutine<T> {
    let value: unknown;
    for (const step of steps) {
      const f = step();
      value = f === undefined ? value : yield* f;
    }
    return value as T;
  });
}

for (const style of STYLES) {
  Deno.test(`asyncio order (${style} tasks): Condition.notify(1) then notify(2048) wakes the waiters in turn (test_notify)`, async () => {
    await run(function* (loop) {
      const cond = new Condition(undefined, { loop });
      const result: number[] = [];
      const tasks = [1, 2, 3].map((n) =>
        task(
          loop,
          style,
          () => cond.acquire(),
          () => cond.wait(),
          () => {
            result.push(n);
            cond.release();
          },
        )
      );
      yield* sleep(0);
      assertEquals(result, []);
      yield* cond.acquire();
      cond.notify(1);
      cond.release();
      yield* sleep(0);
      assertEquals(result, [1]);
      yield* cond.acquire();
      cond.notify(1);
      cond.notify(2048);
      cond.release();
      yield* sleep(0);
      assertEquals(result, [1, 2, 3]);
      assert(tasks.every((t) => t.done()));
    });
  });

  Deno.test(`asyncio order (${style} tasks): Condition.notifyAll() wakes every waiter in one step (test_notify_all)`, async () => {
    await run(function* (loop) {
      const cond = new Condition(undefined, { loop });
      const result: number[] = [];
      const tasks = [1, 2].map((n) =>
        task(
          loop,
          style,
          () => cond.acquire(),
          () => cond.wait(),
          () => {
            result.push(n);
            cond.release();
          },
        )
      );
      yield* sleep(0);
      yield* cond.acquire();
      cond.notifyAll();
      cond.release();
      yield* sleep(0);
      assertEquals(result, [1, 2]);
      assert(tasks.every((t) => t.done()));
    });
  });

  Deno.test(`asyncio order (${style} tasks): Condition.waitFor() re-checks its predicate at each notify (test_wait_for)`, async () => {
    await run(function* (loop) {
      const cond = new Condition(undefined, { loop });
      let holds = false;
      const result: number[] = [];
      const t = task(
        loop,
        style,
        () => cond.acquire(),
        () => cond.waitFor(() => holds),
        () => {
          result.push(1);
          cond.release();
        },
      );
      yield* sleep(0);
      assertEquals(result, []);
      yield* cond.acquire();
      cond.notify();
      cond.release();
      yield* sleep(0);
      assertEquals(result, []);
      holds = true;
      yield* cond.acquire();
      cond.notify();
      cond.release();
      yield* sleep(0);
      assertEquals(result, [1]);
      assert(t.done());
    });
  });

  Deno.test(`asyncio order (${style} tasks): Lock released by a holder as its waiter is cancelled goes to the next waiter (test_cancel_race)`, async () => {
    await run(function* (loop) {
      const lock = new Lock({ loop });
      const lockit = (blocker: Future<unknown> | null) =>
        task(
          loop,
          style,
          () => lock.acquire(),
          () => blocker ?? undefined,
          () => lock.release(),
        );
      const fa = loop.createFuture();
      const ta = lockit(fa);
      yield* sleep(0);
      assert(lock.locked());
      const tb = lockit(null);
      yield* sleep(0);
      const tc = lockit(null);
      yield* sleep(0);
      fa.setResult(undefined);
      tb.cancel();
      yield* sleep(0);
      // Unlike asyncio (documented): the lock was handed to tc at once.
      assert(lock.locked());
      assert(ta.done());
      assert(tb.cancelled());
      yield* tc;
    });
  });

  Deno.test(`asyncio order (${style} tasks): Lock with a woken waiter cancelled wakes the next one (test_finished_waiter_cancelled)`, async () => {
    await run(function* (loop) {
      const lock = new Lock({ loop });
      yield* lock.acquire();
      const tb = task(loop, style, () => lock.acquire());
      yield* sleep(0);
      const tc = task(loop, style, () => lock.acquire());
      tb.cancel();
      lock.release();
      yield* sleep(0);
      assert(lock.locked());
      assert(tb.cancelled());
      assertEquals(yield* tc, true);
    });
  });

  Deno.test(`asyncio order (${style} tasks): Lock release racing a cancellation hands the lock to one task only (test_cancel_release_race)`, async () => {
    await run(function* (loop) {
      const lock = new Lock({ loop });
      let locked = 0;
      let calls = 0;
      const lockit = () =>
        task(loop, style, () => {
          calls++;
        }, () =>
          lock.acquire(), () => {
          locked++;
        });
      yield* lock.acquire();
      const t1 = lockit();
      const t2 = lockit();
      const t3 = lockit();
      yield* sleep(0);
      loop.callSoon(() => {
        t1.cancel();
        lock.release();
      });
      yield* settle(t1);
      assertEquals([locked, calls], [1, 3]);
      assert(t1.cancelled() && t2.done());
      t3.cancel();
      yield* sleep(0);
      assert(t3.cancelled());
    });
  });

  Deno.test(`asyncio order (${style} tasks): Semaphore released once for two waiters, the first cancelled, wakes the second (test_acquire_hang)`, async () => {
    await run(function* (loop) {
      const sem = new Semaphore(0, { loop });
      const t1 = task(loop, style, () => sem.acquire());
      const t2 = task(loop, style, () => sem.acquire());
      yield* sleep(0);
      t1.cancel();
      sem.release();
      yield* sleep(0);
      yield* sleep(0);
      assert(sem.locked());
      assert(t2.done());
    });
  });

  Deno.test(`asyncio order (${style} tasks): Semaphore waiters cancelled before they wake pass the release on in order (test_acquire_cancel_before_awoken)`, async () => {
    await run(function* (loop) {
      const sem = new Semaphore(0, { loop });
      const [t1, t2, t3, t4] = [1, 2, 3, 4].map(() =>
        task(loop, style, () => sem.acquire())
      );
      yield* sleep(0);
      t1.cancel();
      t2.cancel();
      sem.release();
      yield* sleep(0);
      yield* sleep(0);
      assert(t3.done());
      assertFalse(t4.done());
      t3.cancel();
      t4.cancel();
      yield* sleep(0);
    });
  });

  Deno.test(`asyncio order (${style} tasks): Semaphore waiters acquire first come first served, a release and re-acquire queueing behind (test_acquire_fifo_order_2)`, async () => {
    await run(function* (loop) {
      const sem = new Semaphore(1, { loop });
      const result: number[] = [];
      const t1 = task(loop, style, () => sem.acquire(), () => {
        result.push(1);
      });
      const t2 = task(
        loop,
        style,
        () => sem.acquire(),
        () => {
          result.push(2);
          sem.release();
        },
        () => sem.acquire(),
        () => {
          result.push(4);
        },
      );
      const t3 = task(loop, style, () => sem.acquire(), () => {
        result.push(3);
      });
      yield* sleep(0);
      sem.release();
      sem.release();
      yield* gather([t1, t2, t3]);
      assertEquals(result, [1, 2, 3, 4]);
    });
  });

  Deno.test(`asyncio order (${style} tasks): Semaphore skips a cancelled waiter (test_acquire_fifo_order_3)`, async () => {
    await run(function* (loop) {
      const sem = new Semaphore(0, { loop });
      const result: number[] = [];
      const tasks = [1, 2, 3].map((n) =>
        task(loop, style, () => sem.acquire(), () => {
          result.push(n);
        })
      );
      yield* sleep(0);
      tasks[0].cancel();
      yield* sleep(0);
      sem.release();
      sem.release();
      yield* gather(tasks, { returnExceptions: true });
      assertEquals(result, [2, 3]);
    });
  });
}

for (const style of STYLES) {
  Deno.test(`asyncio order (${style} tasks): a Queue putter puts up to maxsize, then one more per get (test_maxsize)`, async () => {
    await run(function* (loop) {
      const q = new Queue<number>(2, { loop });
      const put: number[] = [];
      const t = task(
        loop,
        style,
        ...[0, 1, 2].flatMap((i) => [() => q.put(i), () => {
          put.push(i);
        }]),
      );
      yield* sleep(0);
      yield* sleep(0);
      assertEquals(put, [0, 1]);
      assertEquals(yield* q.get(), 0);
      yield* sleep(0);
      assertEquals(put, [0, 1, 2]);
      assertEquals(yield* q.get(), 1);
      assertEquals(yield* q.get(), 2);
      assert(t.done());
    });
  });

  Deno.test(`asyncio order (${style} tasks): a Queue getter cancelled before an item comes leaves it to the next (test_get_cancelled_race)`, async () => {
    await run(function* (loop) {
      const q = new Queue<string>(0, { loop });
      const t1 = task<string>(loop, style, () => q.get());
      const t2 = task<string>(loop, style, () => q.get());
      yield* sleep(0);
      t1.cancel();
      yield* sleep(0);
      assert(t1.done());
      yield* q.put("a");
      yield* sleep(0);
      assertEquals(yield* t2, "a");
    });
  });

  Deno.test(`asyncio order (${style} tasks): Queue putters put in turn, a cancelled one skipped (test_put_cancelled_race)`, async () => {
    await run(function* (loop) {
      const q = new Queue<string>(1, { loop });
      const putA = task(loop, style, () => q.put("a"));
      const putB = task(loop, style, () => q.put("b"));
      const putC = task(loop, style, () => q.put("X"));
      yield* sleep(0);
      assert(putA.done());
      assertFalse(putB.done());
      putC.cancel();
      yield* sleep(0);
      assert(putC.done());
      assertEquals(q.getNowait(), "a");
      yield* sleep(0);
      assertEquals(q.getNowait(), "b");
      yield* putB;
    });
  });

  Deno.test(`asyncio order (${style} tasks): a Queue getter cancelled after the items came drops none (test_get_cancel_drop_one_pending_reader)`, async () => {
    await run(function* (loop) {
      const q = new Queue<number>(0, { loop });
      let reader = task<number>(loop, style, () => q.get());
      yield* sleep(0);
      q.putNowait(1);
      q.putNowait(2);
      reader.cancel();
      try {
        yield* reader;
      } catch {
        reader = task<number>(loop, style, () => q.get());
        yield* reader;
      }
      assertEquals(reader.result(), 1);
    });
  });

  Deno.test(`asyncio order (${style} tasks): a Queue putter cancelled after room was made puts nothing twice (test_put_cancel_drop)`, async () => {
    await run(function* (loop) {
      const q = new Queue<number>(1, { loop });
      q.putNowait(1);
      let writer = task(loop, style, () => q.put(2));
      yield* sleep(0);
      assertEquals(q.getNowait(), 1);
      writer.cancel();
      try {
        yield* writer;
      } catch {
        writer = task(loop, style, () => q.put(2));
        yield* writer;
      }
      assertEquals(q.getNowait(), 2);
      assertEquals(q.qsize(), 0);
    });
  });
}

// test_tasks: which task runs, and what a cancellation reaches, after one
// step.
for (const style of STYLES) {
  Deno.test(`asyncio order (${style} tasks): currentTask() follows interleaving tasks (test_current_task_with_interleaving_tasks)`, async () => {
    await run(function* (loop) {
      const fut1 = loop.createFuture<boolean>();
      const fut2 = loop.createFuture<boolean>();
      const seen: [string, boolean][] = [];
      const check = (name: string, t: () => Task<unknown>) => () => {
        seen.push([name, currentTask() === t()]);
      };
      const task1: Task<unknown> = task(
        loop,
        style,
        check("1 start", () => task1),
        () => fut1,
        check("1 resumed", () => task1),
        () => fut2.setResult(true),
      );
      const task2: Task<unknown> = task(
        loop,
        style,
        check("2 start", () => task2),
        () => fut1.setResult(true),
        () => fut2,
        check("2 resumed", () => task2),
      );
      yield* gather([task1, task2]);
      assertEquals(seen, [
        ["1 start", true],
        ["2 start", true],
        ["1 resumed", true],
        ["2 resumed", true],
      ]);
    });
  });

  Deno.test(`asyncio order (${style} tasks): a gather whose child finished in the same iteration refuses cancel() (test_cancel_gather_1)`, async () => {
    await run(function* (loop) {
      const fut = loop.createFuture<number>();
      const gathered = gather([task<number>(loop, style, () => fut)]);
      yield* sleep(0);
      let cancelled: boolean | null = null;
      // Runs right after the child's wake-up, in the same iteration.
      fut.addDoneCallback(() => cancelled = gathered.cancel());
      fut.setResult(42);
      assertEquals(yield* gathered, [42]);
      assertEquals(cancelled, false);
    });
  });

  Deno.test(`asyncio order (${style} tasks): cancel() reaches the future the task awaits after one step (test_cancel_task_catching)`, async () => {
    await run(function* (loop) {
      const fut1 = loop.createFuture<void>();
      const fut2 = loop.createFuture<void>();
      const t = style === "async"
        ? loop.createTask(async () => {
          await fut1;
          try {
            await fut2;
          } catch (e) {
            if (e instanceof CancelledError) return 42;
            throw e;
          }
          return 0;
        })
        : loop.createTask(function* () {
          yield* fut1;
          try {
            yield* fut2;
          } catch (e) {
            if (e instanceof CancelledError) return 42;
            throw e;
          }
          return 0;
        });
      yield* sleep(0);
      fut1.setResult();
      yield* sleep(0);
      assert(t.cancel());
      assert(fut2.cancelled());
      assertEquals(yield* t, 42);
      assertFalse(t.cancelled());
    });
  });

  Deno.test(`asyncio order (${style} tasks): wait(FIRST_COMPLETED) sees a task that finished one step after the first as done too (test_wait_really_done)`, async () => {
    await run(function* (loop) {
      const a = task(loop, style, () => sleep(0));
      const b = task(loop, style, () => sleep(0), () => sleep(0));
      const waiting = task<[Set<Future<unknown>>, Set<Future<unknown>>]>(
        loop,
        style,
        () => wait([b, a], { returnWhen: FIRST_COMPLETED }),
      );
      const [done, pending] = yield* waiting;
      assertEquals(done, new Set([a, b]));
      assertEquals(pending.size, 0);
    });
  });

  Deno.test(`asyncio order (${style} tasks): a task cancelling itself has its next wait cancelled at once (test_cancel_current_task)`, async () => {
    await run(function* (loop) {
      const t: Task<unknown> = task(
        loop,
        style,
        () => {
          t.cancel();
        },
        () => sleep(100),
      );
      yield* settle(t);
      assert(t.cancelled());
      assertEquals(loop.time(), 0);
    });
  });
}

// asyncio: a task that cancels itself has the future of its next wait
// cancelled (Task.__step), and resumes with the CancelledError through
// that future's callback, on the loop's next turn: the tasks made ready
// before run first, for an async function as for a generator.
for (const style of STYLES) {
  for (const kind of ["sleep(0)", "a pending future"] as const) {
    Deno.test(`asyncio order (${style} tasks): a task cancelling itself gets the CancelledError at its next wait, ${kind}, on the loop's next turn`, async () => {
      await run(function* (loop) {
        const log: string[] = [];
        const next = () =>
          kind === "sleep(0)" ? sleep(0) : loop.createFuture<void>();
        const note = (e: unknown) =>
          log.push(e instanceof CancelledError ? "cancelled" : "not cancelled");
        const self = style === "async"
          ? loop.createTask(async () => {
            currentTask()!.cancel();
            try {
              await next();
            } catch (e) {
              note(e);
            }
          })
          : loop.createTask(function* () {
            currentTask()!.cancel();
            try {
              yield* next();
            } catch (e) {
              note(e);
            }
          });
        const other = loop.createTask(function* () {
          for (let i = 0; i < 2; i++) {
            log.push(`other ${i}`);
            yield* sleep(0);
          }
        });
        yield* settle(self);
        yield* other;
        assertEquals(log, ["other 0", "cancelled", "other 1"]);
      });
    });
  }
}

// asyncio: the self-cancellation cancels the wait under timeout(0); the
// timeout fires (call_soon) before the task resumes and cancels it again,
// which Task.__step delivers in place of the first: the scope turns it
// into a TimeoutError, and the task, having caught it, ends normally.
for (const style of STYLES) {
  Deno.test(`asyncio order (${style} tasks): a task that cancelled itself and then timed out in timeout(0) ends normally once it catches the TimeoutError`, async () => {
    await run(function* (loop) {
      const event = new Event({ loop });
      const seen: unknown[] = [];
      const self = style === "async"
        ? loop.createTask(async () => {
          currentTask()!.cancel();
          try {
            await timeout(0).scope(async () => await event.wait());
          } catch (e) {
            seen.push(e instanceof TimeoutError);
          }
          return "finished";
        })
        : loop.createTask(function* () {
          currentTask()!.cancel();
          try {
            yield* timeout(0).scope(function* () {
              return yield* event.wait();
            });
          } catch (e) {
            seen.push(e instanceof TimeoutError);
          }
          return "finished";
        });
      yield* settle(self);
      assertEquals(seen, [true]);
      assertFalse(self.cancelled());
      assertEquals(self.result(), "finished");
    });
  });
}

// test_timeouts, test_waitfor: a deadline already passed fires before the
// step that `sleep(0)` gives back, as asyncio schedules it with call_soon.
for (const style of STYLES) {
  for (const delay of [0, -11]) {
    Deno.test(`asyncio order (${style} tasks): timeout(${delay}) cancels a body that only yields one step (test_timeout_zero_sleep_zero, test_timeout_in_the_past_sleep_zero)`, async () => {
      await run(function* (loop) {
        const t = timeout(delay);
        const body = style === "async"
          ? loop.createTask(async () => {
            await t.scope(async () => {
              await sleep(0);
            });
          })
          : loop.createTask(function* () {
            yield* t.scope(function* () {
              yield* sleep(0);
            });
          });
        try {
          yield* body;
        } catch (e) {
          assert(e instanceof TimeoutError);
        }
        assert(body.done() && !body.cancelled() && body.exception());
        assert(t.expired());
        assertEquals(loop.time(), 0);
      });
    });
  }

  for (const limit of [0, -1]) {
    Deno.test(`asyncio order (${style} tasks): waitFor(running task, ${limit}) cancels it and waits for its cleanup (test_wait_for_timeout_less_then_0_or_0)`, async () => {
      await run(function* (loop) {
        let running: boolean | null = null;
        const started = loop.createFuture<void>();
        const fut = task(loop, style, () => {
          running = true;
          started.setResult();
        }, () => {
          const nap = sleep(10);
          nap.addDoneCallback(() => running = false);
          return nap;
        });
        yield* started;
        try {
          yield* waitFor(fut, limit);
          throw new Error("no TimeoutError");
        } catch (e) {
          assert(e instanceof TimeoutError);
        }
        assert(fut.cancelled());
        assertEquals(running, false);
      });
    });
  }

  Deno.test(`asyncio order (${style} tasks): waitFor(coroutine, 0) never starts it (test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started)`, async () => {
    await run(function* (loop) {
      let started = false;
      // A coroutine that would finish at once, if it ever started.
      // deno-lint-ignore require-yield
      const coro = (function* (): Coroutine<void> {
        started = true;
      })();
      const waiting = task(loop, style, () => waitFor(coro, 0));
      try {
        yield* waiting;
      } catch (e) {
        assert(e instanceof TimeoutError);
      }
      assert(waiting.exception() instanceof TimeoutError);
      assertFalse(started);
    });
  });

  // asyncio's Task.__step cancels the future a task cancelled while running
  // then waits for (its _must_cancel), and the task resumes with the
  // CancelledError when that future's callbacks run, on the next turn: a
  // task made ready meanwhile runs first.
  for (const delay of [0, 1]) {
    Deno.test(`asyncio order (${style} tasks): a task that cancelled itself gets the CancelledError of its next wait one turn later (sleep(${delay}))`, async () => {
      await run(function* (loop) {
        const log: string[] = [];
        const caught = (e: unknown) => {
          assert(e instanceof CancelledError);
          log.push("A cancelled");
        };
        const cancelled = style === "async"
          ? loop.createTask(async () => {
            log.push("A started");
            currentTask()!.cancel();
            try {
              await sleep(delay);
              log.push("A slept");
            } catch (e) {
              caught(e);
            }
          })
          : loop.createTask(function* (): Coroutine<void> {
            log.push("A started");
            currentTask()!.cancel();
            try {
              yield* sleep(delay);
              log.push("A slept");
            } catch (e) {
              caught(e);
            }
          });
        recorder(loop, "generator", [], 0, () => {
          log.push("B started");
          return sleep(0);
        }, () => {
          log.push("B slept");
          return sleep(0);
        });
        yield* cancelled;
        assertEquals(log, ["A started", "B started", "A cancelled", "B slept"]);
        assertEquals(loop.time(), 0);
      });
    });
  }

  Deno.test(`asyncio order (${style} tasks): a cancel() before a self-cancelled task resumes is taken by the same CancelledError`, async () => {
    await run(function* (loop) {
      const log: string[] = [];
      const again = (t: Task<unknown>) =>
        loop.callSoon(() => log.push(`cancel again ${t.cancel()}`));
      const cancelled = style === "async"
        ? loop.createTask(async () => {
          const self = currentTask()!;
          self.cancel();
          again(self);
          try {
            await sleep(1);
          } catch (e) {
            assert(e instanceof CancelledError);
            log.push("caught");
          }
          await sleep(0);
          log.push(`slept, cancelling=${self.cancelling()}`);
          return "done";
        })
        : loop.createTask(function* (): Coroutine<string> {
          const self = currentTask()!;
          self.cancel();
          again(self);
          try {
            yield* sleep(1);
          } catch (e) {
            assert(e instanceof CancelledError);
            log.push("caught");
          }
          yield* sleep(0);
          log.push(`slept, cancelling=${self.cancelling()}`);
          return "done";
        });
      assertEquals(yield* cancelled, "done");
      assertEquals(log, ["cancel again true", "caught", "slept, cancelling=2"]);
    });
  });
}

// asyncio's run_until_complete() stops after the iteration in which the
// main task's done callback runs: a task resumed in that iteration runs
// its whole step (here an await of a promise that is already settled, which
// costs microtasks but no wait), and is done when the call returns.
Deno.test("asyncio order (async tasks): a task resumed in the run's last iteration finishes its step before runUntilComplete() returns", async () => {
  const loop = new VirtualTimeLoop();
  try {
    const fut = loop.createFuture<string>();
    const main = loop.createTask(function* (): Coroutine<void> {
      yield* sleep(0);
    });
    const resumed = loop.createTask(async () => {
      const value = await fut;
      return await Promise.resolve(value);
    });
    // The future completes in the iteration where main ends, and the task
    // resumes in the last one, with the callback that stops the run.
    loop.callSoon(() => loop.callSoon(() => fut.setResult("value")));
    await loop.runUntilComplete(main);
    assert(resumed.done());
    assertEquals(resumed.result(), "value");
  } finally {
    loop.close();
  }
});
