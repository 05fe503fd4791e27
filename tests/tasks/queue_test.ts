import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { InvalidStateError, TimeoutError } from "../../futures/errors.ts";
import type { Future } from "../../futures/future.ts";
import {
  LifoQueue,
  PriorityQueue,
  Queue,
  QueueEmpty,
  QueueFull,
  QueueShutDown,
} from "../../tasks/queue.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Coroutine, Task } from "../../tasks/task.ts";
import { withTaskGroup } from "../../tasks/task_group.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { prng, run, settle } from "../_helpers.ts";

// Waits for a future and returns its error, or undefined.
function* failure(f: Future<unknown>): Coroutine<unknown> {
  try {
    yield* f;
  } catch (e) {
    return e;
  }
  return undefined;
}

function drain<T>(q: Queue<T>): T[] {
  const out: T[] = [];
  while (!q.empty()) out.push(q.getNowait());
  return out;
}

// ---- Construction ----

Deno.test("a Queue with a negative maxsize has no limit, as asyncio's (maxsize <= 0)", () => {
  for (const Kind of [Queue, PriorityQueue, LifoQueue]) {
    const q = new Kind<number>(-1);
    assertEquals(q.maxsize, -1);
    for (let i = 0; i < 1000; i++) q.putNowait(i);
    assertEquals(q.full(), false);
    assertEquals(q.qsize(), 1000);
  }
});

Deno.test("Queue() checks maxsize", () => {
  assertThrows(
    () => new Queue(1.5),
    RangeError,
    "Cannot create a Queue: expected an integer or Infinity, received 1.5",
  );
  assertThrows(() => new Queue(NaN), RangeError);
  assertThrows(
    () => new PriorityQueue(-Infinity),
    RangeError,
    "a PriorityQueue",
  );
  assertThrows(() => new LifoQueue(0.5), RangeError, "a LifoQueue");
  assertThrows(
    () => new Queue("3" as unknown as number),
    TypeError,
    "received string",
  );
  assertEquals(new Queue().maxsize, 0);
  assertEquals(new Queue(5).maxsize, 5);
  assertEquals(new Queue(Infinity).maxsize, Infinity);
  assertThrows(
    () =>
      new PriorityQueue(0, {
        compare: 1 as unknown as (a: number, b: number) => number,
      }),
    TypeError,
    "compare must be a function",
  );
});

// ---- Without waiting ----

Deno.test("Queue.putNowait() and getNowait() keep first-in first-out order", () => {
  const q = new Queue<string>();
  assert(q.empty());
  assertFalse(q.full());
  q.putNowait("a");
  q.putNowait("b");
  q.putNowait("c");
  assertEquals(q.qsize(), 3);
  assertFalse(q.empty());
  assertEquals(drain(q), ["a", "b", "c"]);
  const e = assertThrows(() => q.getNowait(), QueueEmpty);
  assertEquals(e.message, "Cannot get an item: the queue is empty");
});

Deno.test("Queue.putNowait() throws QueueFull at maxsize", () => {
  const q = new Queue<number>(2);
  q.putNowait(1);
  assertFalse(q.full());
  q.putNowait(2);
  assert(q.full());
  const e = assertThrows(() => q.putNowait(3), QueueFull);
  assertEquals(
    e.message,
    "Cannot put an item: the queue is full, received maxsize=2",
  );
  assertEquals(e.name, "QueueFull");
  assertEquals(q.qsize(), 2);
});

Deno.test("Queue without a limit never gets full", () => {
  for (const q of [new Queue<number>(), new Queue<number>(Infinity)]) {
    for (let i = 0; i < 1000; i++) q.putNowait(i);
    assertFalse(q.full());
    assertEquals(q.qsize(), 1000);
  }
});

Deno.test("Queue passes many items through in order", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(1000, { loop });
    const n = 100_000;
    const producer = loop.createTask(function* () {
      for (let i = 0; i < n; i++) yield* q.put(i);
    });
    for (let i = 0; i < n; i++) {
      const got = yield* q.get();
      if (got !== i) throw new Error(`expected ${i}, got ${got}`);
    }
    yield* producer;
    assert(q.empty());
  });
});

Deno.test("Queue prints its state", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(1, { loop });
    assertEquals(
      Object.prototype.toString.call(q),
      "[object Queue maxsize=1 qsize=0]",
    );
    const g = q.get();
    assertEquals(Deno.inspect(q), "Queue maxsize=1 qsize=0 getters=1");
    q.putNowait(1);
    yield* g;
    q.putNowait(2);
    const p = q.put(3);
    assertEquals(
      Deno.inspect(q),
      "Queue maxsize=1 qsize=1 putters=1 unfinished=2",
    );
    p.cancel();
    q.shutdown();
    assertEquals(
      Deno.inspect(q),
      "Queue maxsize=1 qsize=1 unfinished=2 shutdown",
    );
    assertEquals(Deno.inspect(new LifoQueue()), "LifoQueue maxsize=0 qsize=0");
  });
});

// ---- Waiting ----

Deno.test("Queue.get() waits for an item, which goes straight to the getter", async () => {
  await run(function* (loop) {
    const q = new Queue<string>(0, { loop });
    const g = q.get();
    yield* sleep(1);
    assertFalse(g.done());
    q.putNowait("x");
    assertEquals(q.qsize(), 0, "handed over, not queued");
    assertEquals(yield* g, "x");
  });
});

Deno.test("Queue.get() completes at once when an item is there", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(0, { loop });
    q.putNowait(7);
    const g = q.get();
    assert(g.done());
    assertEquals(yield* g, 7);
  });
});

Deno.test("Queue.put() waits while the queue is full", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(1, { loop });
    const first = q.put(1);
    assert(first.done());
    const second = q.put(2);
    yield* sleep(1);
    assertFalse(second.done());
    assertEquals(yield* q.get(), 1);
    assert(second.done(), "moved in as the slot freed");
    assertEquals(q.qsize(), 1);
    assertEquals(yield* q.get(), 2);
  });
});

Deno.test("Queue serves waiting getters first come first served", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(0, { loop });
    const got: string[] = [];
    const tasks = ["a", "b", "c"].map((name) =>
      loop.createTask(function* () {
        got.push(`${name}${yield* q.get()}`);
      })
    );
    yield* sleep(1);
    q.putNowait(1);
    q.putNowait(2);
    q.putNowait(3);
    for (const t of tasks) yield* t;
    assertEquals(got, ["a1", "b2", "c3"]);
  });
});

Deno.test("Queue serves waiting putters first come first served", async () => {
  await run(function* (loop) {
    const q = new Queue<string>(1, { loop });
    q.putNowait("first");
    const tasks = ["a", "b", "c"].map((name) =>
      loop.createTask(function* () {
        yield* q.put(name);
      })
    );
    yield* sleep(1);
    assertThrows(() => q.putNowait("late"), QueueFull);
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push(yield* q.get());
    assertEquals(got, ["first", "a", "b", "c"]);
    for (const t of tasks) yield* t;
  });
});

Deno.test("Queue works from async functions", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(2, { loop });
    const producer = loop.createTask(async () => {
      for (let i = 0; i < 10; i++) await q.put(i);
    });
    const consumer = loop.createTask(async () => {
      let sum = 0;
      for (let i = 0; i < 10; i++) sum += await q.get();
      return sum;
    });
    yield* producer;
    assertEquals(yield* consumer, 45);
  });
});

// ---- taskDone() and join() ----

Deno.test("Queue.join() waits until every item had its taskDone()", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(0, { loop });
    const idle = q.join();
    assert(idle.done());
    q.putNowait(1);
    q.putNowait(2);
    const joined = q.join();
    q.getNowait();
    q.getNowait();
    q.taskDone();
    yield* sleep(1);
    assertFalse(joined.done());
    q.taskDone();
    yield* joined;
    const e = assertThrows(() => q.taskDone(), InvalidStateError);
    assertEquals(
      e.message,
      "Cannot call taskDone(): called more times than items were put, received unfinished=0",
    );
  });
});

Deno.test("Queue.join() can be cancelled", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(0, { loop });
    q.putNowait(1);
    const j1 = q.join();
    const j2 = q.join();
    j1.cancel();
    q.getNowait();
    q.taskDone();
    yield* j2;
    assert(j1.cancelled());
  });
});

// ---- Cancellation ----

Deno.test("Queue drops a cancelled getter: the item goes to the next one", async () => {
  await run(function* (loop) {
    const q = new Queue<string>(0, { loop });
    const a = q.get();
    const b = q.get();
    a.cancel();
    q.putNowait("x");
    assertEquals(yield* b, "x");
    assert(q.empty());
  });
});

Deno.test("Queue: a generator getter cancelled after the hand-over puts the item back in front", async () => {
  await run(function* (loop) {
    const q = new Queue<string>(0, { loop });
    const a = loop.createTask(function* () {
      return yield* q.get();
    });
    yield* sleep(0);
    q.putNowait("x"); // handed to a...
    q.putNowait("y");
    a.cancel(); // ...which is cancelled before it resumes
    yield* settle(a);
    assert(a.cancelled());
    assertEquals(drain(q), ["x", "y"], "x is back, in front");
    q.taskDone();
    q.taskDone();
    assert(q.join().done(), "the accounting is intact");
  });
});

Deno.test("Queue: a refused item goes to the next waiting getter", async () => {
  await run(function* (loop) {
    const q = new Queue<string>(0, { loop });
    const a = loop.createTask(function* () {
      return yield* q.get();
    });
    const b = loop.createTask(function* () {
      return yield* q.get();
    });
    yield* sleep(0);
    q.putNowait("x");
    a.cancel();
    yield* settle(a);
    assertEquals(yield* b, "x");
  });
});

Deno.test("Queue: an async getter cancelled after the hand-over puts the item back", async () => {
  await run(function* (loop) {
    const q = new Queue<string>(0, { loop });
    let got = "";
    const a = loop.createTask(async () => {
      got = await q.get();
    });
    const b = loop.createTask(async () => await q.get());
    yield* sleep(0);
    q.putNowait("x"); // handed to a...
    a.cancel(); // ...which is cancelled before it resumes
    yield* settle(a);
    assert(a.cancelled());
    assertEquals(got, "", "a never saw the item");
    assertEquals(yield* b, "x", "the next getter has it");
  });
});

Deno.test("Queue: a cancelled putter's item is not added", async () => {
  await run(function* (loop) {
    const q = new Queue<string>(1, { loop });
    q.putNowait("first");
    const p1 = q.put("dropped");
    const p2 = q.put("kept");
    p1.cancel();
    assertEquals(yield* q.get(), "first");
    yield* p2;
    assertEquals(drain(q), ["kept"]);
    q.taskDone();
    q.taskDone();
    assert(q.join().done());
  });
});

Deno.test("Queue: a generator putter cancelled after a slot was handed to it does not enqueue", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(1, { loop });
    q.putNowait(1);
    const p = loop.createTask(function* () {
      yield* q.put(2);
    });
    yield* sleep(0);
    assertEquals(q.getNowait(), 1); // a slot for 2...
    p.cancel(); // ...whose task is cancelled before it resumes
    yield* settle(p);
    assert(p.cancelled());
    assertEquals(q.qsize(), 0);
    q.taskDone();
    assert(q.join().done(), "the accounting is intact");
  });
});

Deno.test("Queue: an async putter cancelled after a slot was handed to it does not enqueue", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(1, { loop });
    q.putNowait(1);
    const p = loop.createTask(async () => {
      await q.put(2);
    });
    yield* sleep(0);
    assertEquals(q.getNowait(), 1);
    p.cancel();
    yield* settle(p);
    assert(p.cancelled());
    assertEquals(q.qsize(), 0);
  });
});

Deno.test("Queue: a refused slot goes to the next waiting putter", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(1, { loop });
    q.putNowait(1);
    const p = loop.createTask(async () => {
      await q.put(2);
    });
    const r = loop.createTask(function* () {
      yield* q.put(3);
    });
    yield* sleep(0);
    assertEquals(q.getNowait(), 1); // the slot goes to p...
    p.cancel(); // ...who refuses it: r gets it
    yield* settle(p);
    yield* r;
    assertEquals(drain(q), [3]);
  });
});

Deno.test("Queue: a refused item may briefly leave the queue over maxsize", async () => {
  await run(function* (loop) {
    const q = new Queue<string>(1, { loop });
    const a = loop.createTask(function* () {
      return yield* q.get();
    });
    yield* sleep(0);
    q.putNowait("x"); // handed to a
    q.putNowait("y"); // fills the queue
    a.cancel();
    yield* settle(a);
    assertEquals(q.qsize(), 2);
    assert(q.full());
    assertThrows(() => q.putNowait("z"), QueueFull);
    assertEquals(drain(q), ["x", "y"]);
  });
});

// ---- shutdown() ----

Deno.test("Queue.shutdown() fails puts and lets gets drain the items first", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(2, { loop });
    q.putNowait(1);
    q.putNowait(2);
    const blocked = q.put(3);
    q.shutdown();
    const e = yield* failure(blocked);
    assertInstanceOf(e, QueueShutDown);
    assertEquals(
      (e as Error).message,
      "Cannot put an item: the queue was shut down",
    );
    assertThrows(() => q.putNowait(4), QueueShutDown);
    assertInstanceOf(yield* failure(q.put(5)), QueueShutDown);
    assertEquals(yield* q.get(), 1);
    assertEquals(q.getNowait(), 2);
    assertThrows(
      () => q.getNowait(),
      QueueShutDown,
      "Cannot get an item: the queue is shut down and empty",
    );
    assertInstanceOf(yield* failure(q.get()), QueueShutDown);
  });
});

Deno.test("Queue.shutdown() fails the waiting getters", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(0, { loop });
    const getters = [q.get(), q.get()];
    const consumer = loop.createTask(async () => {
      try {
        await q.get();
        return "got";
      } catch (e) {
        return (e as Error).name;
      }
    });
    yield* sleep(1);
    q.shutdown();
    for (const g of getters) assertInstanceOf(yield* failure(g), QueueShutDown);
    assertEquals(yield* consumer, "QueueShutDown");
  });
});

Deno.test("Queue.shutdown(true) drops the items and releases join()", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(0, { loop });
    q.putNowait(1);
    q.putNowait(2);
    q.putNowait(3);
    q.getNowait(); // taken, not yet done
    const joined = q.join();
    q.shutdown(true);
    assert(q.empty());
    assertThrows(() => q.getNowait(), QueueShutDown);
    yield* sleep(1);
    assertFalse(joined.done(), "the item taken is still unfinished");
    q.taskDone();
    yield* joined;
  });
});

Deno.test("Queue.shutdown() can be upgraded to immediate, and checks its argument", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(0, { loop });
    q.putNowait(1);
    q.shutdown();
    assertEquals(q.qsize(), 1);
    q.shutdown(true);
    assertEquals(q.qsize(), 0);
    assert(q.join().done());
    assertThrows(
      () => q.shutdown("yes" as unknown as boolean),
      TypeError,
      "immediate must be a boolean",
    );
    yield* sleep(0);
  });
});

Deno.test("Queue: an item refused after shutdown(true) is dropped and counts as done", async () => {
  await run(function* (loop) {
    const q = new Queue<string>(0, { loop });
    const a = loop.createTask(function* () {
      return yield* q.get();
    });
    yield* sleep(0);
    q.putNowait("x");
    q.shutdown(true);
    a.cancel();
    yield* settle(a);
    assert(q.empty());
    assert(q.join().done());
  });
});

Deno.test("Queue.shutdown(true) drops the item a woken getter had not taken yet: the get fails", async () => {
  // asyncio: the woken getter resumes to an empty, shut-down queue.
  for (const style of ["generator", "async"] as const) {
    await run(function* (loop) {
      const q = new Queue<string>(0, { loop });
      const a = style === "generator"
        ? loop.createTask(function* () {
          return yield* q.get();
        })
        : loop.createTask(async () => await q.get());
      yield* sleep(0);
      q.putNowait("x"); // wakes a
      q.shutdown(true); // before a resumes
      assertEquals(q.qsize(), 0);
      assert(q.join().done(), "x counts as done");
      assertInstanceOf(yield* failure(a), QueueShutDown, style);
    });
  }
});

Deno.test("Queue.shutdown() fails a put whose item moved in but whose task had not resumed: the item comes out", async () => {
  // asyncio: the woken putter resumes to a shut-down queue and never puts.
  for (const style of ["generator", "async"] as const) {
    await run(function* (loop) {
      const q = new Queue<string>(1, { loop });
      q.putNowait("a");
      const p = style === "generator"
        ? loop.createTask(function* () {
          yield* q.put("b");
        })
        : loop.createTask(async () => await q.put("b"));
      yield* sleep(0);
      assertEquals(q.getNowait(), "a"); // b moves in, p is woken
      q.taskDone();
      q.shutdown();
      assertEquals(q.qsize(), 0, "b is out again");
      assert(q.join().done(), "b was never put");
      assertInstanceOf(yield* failure(p), QueueShutDown, style);
    });
  }
});

// asyncio's _QueueShutdownTestMixin, run for each kind of queue.
for (const Kind of [Queue, LifoQueue, PriorityQueue]) {
  Deno.test(`${Kind.name}.shutdown() of an empty queue fails the waiting getter, and join() returns (test_shutdown_empty)`, async () => {
    await run(function* (loop) {
      const q = new Kind<string>(0, { loop });
      const getter = loop.createTask(function* () {
        return yield* q.get();
      });
      yield* sleep(0);
      q.shutdown();
      assertEquals(q.qsize(), 0);
      yield* q.join();
      yield* sleep(0);
      assert(getter.done());
      assertInstanceOf(yield* failure(getter), QueueShutDown);
      assertInstanceOf(yield* failure(q.put("data")), QueueShutDown);
      assertThrows(() => q.putNowait("data"), QueueShutDown);
      assertInstanceOf(yield* failure(q.get()), QueueShutDown);
      assertThrows(() => q.getNowait(), QueueShutDown);
      assertEquals(Deno.inspect(q), `${Kind.name} maxsize=0 qsize=0 shutdown`);
    });
  });

  Deno.test(`${Kind.name}.shutdown() of a full queue fails the waiting putter; join() waits for the last taskDone() (test_shutdown_nonempty)`, async () => {
    await run(function* (loop) {
      const q = new Kind<string>(1, { loop });
      q.putNowait("data");
      const joiner = loop.createTask(function* () {
        yield* q.join();
      });
      const putter = loop.createTask(function* () {
        yield* q.put("data2");
      });
      yield* sleep(0);
      assertFalse(putter.done());
      q.shutdown();
      assertEquals(q.qsize(), 1);
      yield* sleep(0);
      assertInstanceOf(yield* failure(putter), QueueShutDown);
      assertEquals(yield* q.get(), "data");
      yield* sleep(0);
      assertFalse(joiner.done());
      assertInstanceOf(yield* failure(q.put("data")), QueueShutDown);
      assertInstanceOf(yield* failure(q.get()), QueueShutDown);
      q.taskDone();
      yield* sleep(0);
      assert(joiner.done());
      assertThrows(() => q.taskDone());
    });
  });

  Deno.test(`${Kind.name}.shutdown(true) drops the items: join() returns, taskDone() has nothing left (test_shutdown_immediate, test_shutdown_immediate_with_unfinished)`, async () => {
    await run(function* (loop) {
      const q = new Kind<string>(0, { loop });
      q.putNowait("a");
      const all = loop.createTask(function* () {
        yield* q.join();
      });
      q.shutdown(true);
      assertEquals(q.qsize(), 0);
      yield* sleep(0);
      assert(all.done());
      assertThrows(() => q.taskDone());

      const r = new Kind<string>(0, { loop });
      r.putNowait("a");
      r.putNowait("b");
      const rest = loop.createTask(function* () {
        yield* r.join();
      });
      yield* r.get(); // taken, not yet done
      r.shutdown(true); // unfinished: 2 -> 1
      yield* sleep(0);
      assertFalse(rest.done());
      assertInstanceOf(yield* failure(r.get()), QueueShutDown);
      r.taskDone();
      assertThrows(() => r.taskDone());
      yield* sleep(0);
      assert(rest.done());
    });
  });
}

// ---- PriorityQueue ----

Deno.test("PriorityQueue hands out numbers and strings smallest first", () => {
  const nums = new PriorityQueue<number>();
  for (const n of [5, 1, 4, 1, 3, 9, 2, 6]) nums.putNowait(n);
  assertEquals(drain(nums), [1, 1, 2, 3, 4, 5, 6, 9]);
  const strs = new PriorityQueue<string>();
  for (const s of ["pear", "apple", "fig"]) strs.putNowait(s);
  assertEquals(drain(strs), ["apple", "fig", "pear"]);
  const big = new PriorityQueue<bigint>();
  big.putNowait(10n);
  big.putNowait(2n);
  assertEquals(drain(big), [2n, 10n]);
});

Deno.test("PriorityQueue orders [priority, …] arrays, never comparing payload objects", () => {
  const q = new PriorityQueue<[number, { job: string }]>();
  q.putNowait([2, { job: "b" }]);
  q.putNowait([1, { job: "a" }]);
  q.putNowait([2, { job: "c" }]);
  q.putNowait([0, { job: "z" }]);
  assertEquals(drain(q).map(([, p]) => p.job), ["z", "a", "b", "c"]);
  const t = new PriorityQueue<[number, string]>();
  t.putNowait([1, "b"]);
  t.putNowait([1, "a"]);
  t.putNowait([0, "c"]);
  assertEquals(drain(t), [[0, "c"], [1, "a"], [1, "b"]]);
});

Deno.test("PriorityQueue keeps ties first in, first out", () => {
  const q = new PriorityQueue<{ p: number; id: number }>(0, {
    compare: (a, b) => a.p - b.p,
  });
  for (let id = 0; id < 50; id++) q.putNowait({ p: id % 3, id });
  const out = drain(q);
  for (let i = 1; i < out.length; i++) {
    const [a, b] = [out[i - 1], out[i]];
    assert(a.p < b.p || (a.p === b.p && a.id < b.id));
  }
});

Deno.test("PriorityQueue refuses items it cannot order, unchanged", () => {
  const q = new PriorityQueue<unknown>();
  q.putNowait(1);
  const e = assertThrows(() => q.putNowait({}), TypeError);
  assertEquals(
    e.message,
    "Cannot order PriorityQueue items: expected numbers, strings or arrays (or give a compare option), received object and object",
  );
  assertThrows(() => q.putNowait("a"), TypeError, "string and number");
  assertThrows(() => q.putNowait(null), TypeError);
  assertEquals(q.qsize(), 1);
  assertEquals(q.getNowait(), 1);
});

Deno.test("PriorityQueue is left intact when the comparator throws", () => {
  const q = new PriorityQueue<number>(0, {
    compare: (a, b) => {
      if (a === 13 || b === 13) throw new Error("unlucky");
      return a - b;
    },
  });
  for (const n of [8, 3, 10, 1, 6, 14, 4, 7]) q.putNowait(n);
  assertThrows(() => q.putNowait(13), Error, "unlucky");
  assertEquals(q.qsize(), 8);
  assertEquals(drain(q), [1, 3, 4, 6, 7, 8, 10, 14]);
});

Deno.test("PriorityQueue: a waiting put whose item cannot be ordered fails when a slot frees", async () => {
  await run(function* (loop) {
    let armed = false;
    const q = new PriorityQueue<number>(2, {
      loop,
      compare: (a, b) => {
        if (armed) throw new Error("boom");
        return a - b;
      },
    });
    q.putNowait(1);
    q.putNowait(5);
    const p = q.put(3); // waits: the queue is full
    armed = true;
    assertEquals(q.getNowait(), 1); // 3 would move in, but cannot be ordered
    const e = yield* failure(p);
    assertInstanceOf(e, Error);
    assertEquals((e as Error).message, "boom");
    armed = false;
    assertEquals(drain(q), [5]);
  });
});

Deno.test("PriorityQueue matches a sorted model under random operations", () => {
  const random = prng(7);
  const q = new PriorityQueue<number>();
  const model: number[] = [];
  for (let step = 0; step < 5000; step++) {
    if (random() < 0.55 || model.length === 0) {
      const n = Math.floor(random() * 100);
      q.putNowait(n);
      model.push(n);
      model.sort((a, b) => a - b);
    } else {
      assertEquals(q.getNowait(), model.shift());
    }
    assertEquals(q.qsize(), model.length);
  }
  assertEquals(drain(q), model);
});

Deno.test("PriorityQueue: a refused item comes back before its ties", async () => {
  await run(function* (loop) {
    const q = new PriorityQueue<[number, string]>(0, { loop });
    const a = loop.createTask(function* () {
      return yield* q.get();
    });
    yield* sleep(0);
    q.putNowait([1, "x"]); // handed to a
    q.putNowait([1, "x"]);
    q.putNowait([0, "y"]);
    a.cancel();
    yield* settle(a);
    assertEquals(drain(q), [[0, "y"], [1, "x"], [1, "x"]]);
  });
});

// ---- LifoQueue ----

Deno.test("LifoQueue hands out the newest item first", async () => {
  await run(function* (loop) {
    const q = new LifoQueue<number>(3, { loop });
    for (const n of [1, 2, 3]) q.putNowait(n);
    assert(q.full());
    const p = q.put(4);
    assertEquals(yield* q.get(), 3);
    yield* p;
    assertEquals(drain(q), [4, 2, 1]);
  });
});

Deno.test("LifoQueue: a getter cancelled after it was woken leaves every item in place", async () => {
  await run(function* (loop) {
    const q = new LifoQueue<string>(0, { loop });
    const a = loop.createTask(function* () {
      return yield* q.get();
    });
    yield* sleep(0);
    q.putNowait("x"); // wakes a
    q.putNowait("y");
    a.cancel(); // before a resumes: it takes nothing
    yield* settle(a);
    assert(a.cancelled());
    assertEquals(drain(q), ["y", "x"], "newest first, as in asyncio");
  });
});

// ---- Property: random operations with cancellations at every point ----

type QueueKind = "Queue" | "PriorityQueue" | "LifoQueue";

async function queueScenario(
  kind: QueueKind,
  seed: number,
  counts: { refusals: number },
): Promise<void> {
  const random = prng(seed * 7919);
  const loop = new VirtualTimeLoop();
  const maxsize = Math.floor(random() * 4);
  const q = kind === "Queue"
    ? new Queue<number>(maxsize, { loop })
    : kind === "PriorityQueue"
    ? new PriorityQueue<number>(maxsize, { loop })
    : new LifoQueue<number>(maxsize, { loop });
  const puts: [number, Future<void>][] = [];
  const received: number[] = [];
  const tasks: Task<void>[] = [];
  const getting = new Set<Task<void>>();
  let nextItem = 0;

  const chaos = () => {
    if (random() < 0.4 || getting.size === 0) return;
    const all = [...getting];
    const victim = random() < 0.6
      ? all[0]
      : all[Math.floor(random() * all.length)];
    const hops = Math.floor(random() * 3);
    const hit = (n: number) => {
      if (n === 0) victim.cancel();
      else loop.callSoon(hit, n - 1);
    };
    hit(hops);
  };
  function* producer(count: number): Coroutine<void> {
    for (let i = 0; i < count; i++) {
      yield* sleep(Math.floor(random() * 3));
      const item = nextItem++;
      const f = q.put(item);
      puts.push([item, f]);
      if (random() < 0.1) loop.callSoon(() => f.cancel());
      yield* f;
      chaos();
    }
  }
  async function asyncProducer(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      await sleep(Math.floor(random() * 3));
      const item = nextItem++;
      const f = q.put(item);
      puts.push([item, f]);
      await f;
      chaos();
    }
  }
  function* consumer(self: () => Task<void>): Coroutine<void> {
    for (;;) {
      yield* sleep(Math.floor(random() * 3));
      const f = q.get();
      if (random() < 0.1) loop.callSoon(() => f.cancel());
      getting.add(self());
      let item: number;
      try {
        item = yield* f;
      } catch (e) {
        if (f.done() && !f.cancelled()) counts.refusals++;
        throw e;
      } finally {
        getting.delete(self());
      }
      received.push(item);
    }
  }
  async function asyncConsumer(self: () => Task<void>): Promise<void> {
    for (;;) {
      await sleep(Math.floor(random() * 3));
      getting.add(self());
      let item: number;
      try {
        item = await q.get();
      } finally {
        getting.delete(self());
      }
      received.push(item);
    }
  }

  for (let i = 0; i < 4; i++) {
    const count = 5 + Math.floor(random() * 10);
    tasks.push(
      random() < 0.6
        ? loop.createTask(producer(count))
        : loop.createTask(() => asyncProducer(count)),
    );
  }
  for (let i = 0; i < 5; i++) {
    const ref: { task?: Task<void> } = {};
    const self = () => ref.task!;
    const task = ref.task = random() < 0.6
      ? loop.createTask(consumer(self))
      : loop.createTask(() => asyncConsumer(self));
    tasks.push(task);
  }
  for (let i = 0; i < 6; i++) {
    const victim = tasks[Math.floor(random() * tasks.length)];
    loop.callLater(Math.floor(random() * 15), () => victim.cancel());
  }
  await loop.runUntilComplete(loop.createTask(function* () {
    yield* sleep(200);
    for (const t of tasks) t.cancel();
    for (const t of tasks) yield* settle(t);
  }));

  const succeeded = puts
    .filter(([, f]) => f.done() && !f.cancelled() && !f.exception())
    .map(([item]) => item);
  const left = drain(q);
  const all = [...received, ...left].sort((a, b) => a - b);
  assertEquals(
    all,
    succeeded.sort((a, b) => a - b),
    `seed ${seed}: items lost or duplicated`,
  );
  for (let i = 0; i < all.length; i++) q.taskDone();
  assert(q.join().done(), `seed ${seed}: unfinished count is off`);
  loop.close();
}

for (const kind of ["Queue", "PriorityQueue", "LifoQueue"] as const) {
  Deno.test(`${kind} never loses nor duplicates an item under random cancellations`, async () => {
    const counts = { refusals: 0 };
    for (let seed = 1; seed <= 25; seed++) {
      await queueScenario(kind, seed, counts);
    }
    assert(counts.refusals > 0, "the hand-over window was never hit");
  });
}

Deno.test("Queue keeps FIFO order from several producers to several consumers", async () => {
  await run(function* (loop) {
    const random = prng(99);
    const q = new Queue<number>(3, { loop });
    const putOrder: number[] = [];
    const getOrder: number[] = [];
    let next = 0;
    const producers = [0, 1, 2].map(() =>
      loop.createTask(function* () {
        for (let i = 0; i < 30; i++) {
          yield* sleep(Math.floor(random() * 3));
          const f = q.put(next);
          // Items enter the queue in the order their futures complete.
          const item = next++;
          f.addDoneCallback(() => putOrder.push(item));
          yield* f;
        }
      })
    );
    const consumers = [0, 1].map(() =>
      loop.createTask(function* () {
        for (;;) {
          yield* sleep(Math.floor(random() * 3));
          const f = q.get();
          f.addDoneCallback((g) => getOrder.push(g.result()));
          yield* f;
        }
      })
    );
    for (const p of producers) yield* p;
    yield* sleep(100);
    for (const c of consumers) c.cancel();
    for (const c of consumers) yield* settle(c);
    assertEquals(getOrder.length, 90);
    assertEquals(getOrder, putOrder);
  });
});

// ---- A woken getter takes what is next when it resumes (as asyncio) ----

Deno.test("PriorityQueue and LifoQueue: a waiting getter takes the item that is next when it resumes", async () => {
  for (const style of ["generator", "async"] as const) {
    await run(function* (loop) {
      const pq = new PriorityQueue<number>(0, { loop });
      const lq = new LifoQueue<number>(0, { loop });
      const got: number[][] = [[], []];
      const consume = (q: Queue<number>, out: number[]) =>
        style === "generator"
          ? loop.createTask(function* () {
            for (let i = 0; i < 3; i++) out.push(yield* q.get());
          })
          : loop.createTask(async () => {
            for (let i = 0; i < 3; i++) out.push(await q.get());
          });
      const a = consume(pq, got[0]);
      const b = consume(lq, got[1]);
      yield* sleep(0); // both wait
      for (const n of [3, 1, 2]) {
        pq.putNowait(n); // 3 wakes the getter, which has not resumed yet
        lq.putNowait(n);
      }
      assertEquals(
        [pq.qsize(), lq.qsize()],
        [2, 2],
        "one item is the getter's",
      );
      yield* a;
      yield* b;
      assertEquals(got[0], [1, 2, 3], `${style}: smallest first`);
      assertEquals(got[1], [2, 1, 3], `${style}: newest first`);
    });
  }
});

// ---- Cases from CPython's test_queues.py ----

// Mirrors CPython's QueueBasicTests.test_maxsize.
Deno.test("Queue: a putter blocks at maxsize and moves its last item in once a get frees a slot", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(2, { loop });
    assertEquals(q.maxsize, 2);
    const put: number[] = [];
    const putter = loop.createTask(async () => {
      for (let i = 0; i < 3; i++) {
        await q.put(i);
        put.push(i);
      }
      return true;
    });
    yield* sleep(0);
    yield* sleep(0);
    assertEquals(put, [0, 1], "stuck on the third");
    assertEquals(yield* q.get(), 0);
    yield* sleep(0);
    assertEquals(put, [0, 1, 2]);
    assertEquals(yield* q.get(), 1);
    assertEquals(yield* q.get(), 2);
    assert(putter.done());
    assertEquals(putter.result(), true);
  });
});

// Mirrors CPython's QueueGetTests.test_blocking_get_wait.
Deno.test("Queue.get() in a task wakes for an item put by a timer callback", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(0, { loop });
    let finished = false;
    const getter = loop.createTask(async () => {
      const v = await q.get();
      finished = true;
      return v;
    });
    yield* sleep(0);
    assertFalse(finished);
    loop.callLater(0.01, () => q.putNowait(1));
    assertEquals(yield* getter, 1);
    assert(finished);
  });
});

// Mirrors CPython's QueuePutTests.test_blocking_put_wait.
Deno.test("Queue.put() in a task wakes when a timer callback takes an item", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(1, { loop });
    let finished = false;
    loop.callLater(0.01, () => q.getNowait());
    const putter = loop.createTask(async () => {
      await q.put(1);
      await q.put(2);
      finished = true;
    });
    yield* sleep(0);
    assertFalse(finished);
    yield* putter;
    assert(finished);
    assertEquals(loop.time(), 0.01);
  });
});

// Mirrors CPython's QueueGetTests.test_get_cancelled_race.
Deno.test("Queue: a getter task cancelled before any item leaves the next item to the other getter", async () => {
  await run(function* (loop) {
    const q = new Queue<string>(0, { loop });
    const t1 = loop.createTask(() => q.get());
    const t2 = loop.createTask(() => q.get());
    yield* sleep(0);
    t1.cancel();
    yield* sleep(0);
    assert(t1.done());
    yield* q.put("a");
    yield* sleep(0);
    assertEquals(yield* t2, "a");
  });
});

// Mirrors CPython's QueueGetTests.test_get_with_waiting_putters.
Deno.test("Queue.get() takes the items of two waiting putter tasks in order", async () => {
  await run(function* (loop) {
    const q = new Queue<string>(1, { loop });
    loop.createTask(() => q.put("a"));
    loop.createTask(() => q.put("b"));
    assertEquals(yield* q.get(), "a");
    assertEquals(yield* q.get(), "b");
  });
});

// Mirrors CPython's QueueGetTests.test_why_are_getters_waiting and
// QueuePutTests.test_why_are_putters_waiting.
Deno.test("Queue(1) between a producer and a consumer task finishes without a stuck waiter", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(1, { loop });
    yield* withTaskGroup(function* (tg) {
      tg.createTask(async () => {
        for (let i = 0; i < 5; i++) await q.put(i);
      });
      tg.createTask(async () => {
        for (let i = 0; i < 5; i++) await q.get();
      });
    });
    const r = new Queue<number>(2, { loop });
    yield* withTaskGroup(function* (tg) {
      tg.createTask(async () => {
        await sleep(0);
        const n = r.qsize();
        for (let i = 0; i < n; i++) r.getNowait();
      });
      for (let i = 0; i < 4; i++) tg.createTask(() => r.put(i));
    });
    assertEquals(r.qsize(), 2, "the last two putters moved in");
    assertEquals(loop.time(), 0);
  });
});

// Mirrors CPython's QueueGetTests.test_cancelled_getters_not_being_held_in_self_getters.
Deno.test("Queue: a get timed out by waitFor() leaves no waiting getter behind", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(5, { loop });
    let err: unknown;
    try {
      yield* waitFor(q.get(), 0.1);
    } catch (e) {
      err = e;
    }
    assertInstanceOf(err, TimeoutError);
    assertEquals(Deno.inspect(q), "Queue maxsize=5 qsize=0");
    q.putNowait(1);
    assertEquals(q.qsize(), 1, "nobody took it");
  });
});

// Mirrors CPython's QueuePutTests.test_cancelled_puts_not_being_held_in_self_putters.
Deno.test("Queue: a cancelled putter task leaves no waiting putter behind", async () => {
  await run(function* (loop) {
    const q = new Queue<number>(1, { loop });
    q.putNowait(1);
    const p = loop.createTask(() => q.put(1));
    yield* sleep(0);
    assertStringIncludes(Deno.inspect(q), "putters=1");
    p.cancel();
    yield* settle(p);
    assert(p.cancelled());
    assertFalse(Deno.inspect(q).includes("putters"));
  });
});

// Mirrors CPython's _QueueJoinTestMixin.test_task_done and test_join_empty_queue.
for (const Kind of [Queue, LifoQueue, PriorityQueue]) {
  Deno.test(`${Kind.name}.join() returns once two workers called taskDone() for 100 items`, async () => {
    await run(function* (loop) {
      const q = new Kind<number>(0, { loop });
      yield* q.join();
      yield* q.join();
      for (let i = 0; i < 100; i++) q.putNowait(i);
      let sum = 0;
      let running = true;
      yield* withTaskGroup(function* (tg) {
        for (let w = 0; w < 2; w++) {
          tg.createTask(async () => {
            while (running) {
              sum += await q.get();
              q.taskDone();
            }
          });
        }
        yield* q.join();
        assertEquals(sum, 4950);
        running = false;
        q.putNowait(0);
        q.putNowait(0);
      });
      assertThrows(() => q.taskDone(), InvalidStateError);
    });
  });
}
