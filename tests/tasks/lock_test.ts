import {
  assert,
  assertEquals,
  assertFalse,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import { Future } from "../../futures/future.ts";

import { Barrier } from "../../tasks/barrier.ts";
import { Condition } from "../../tasks/condition.ts";
import { Event } from "../../tasks/event.ts";
import { Lock } from "../../tasks/lock.ts";
import { LifoQueue, PriorityQueue, Queue } from "../../tasks/queue.ts";
import { BoundedSemaphore, Semaphore } from "../../tasks/semaphore.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Coroutine, Task } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { prng, run, settle } from "../_helpers.ts";

// ---- Basics ----

Deno.test("Lock.acquire() on a free lock completes at once with true", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    assertFalse(lock.locked());
    const f = lock.acquire();
    assert(f.done());
    assertEquals(yield* f, true);
    assert(lock.locked());
    lock.release();
    assertFalse(lock.locked());
  });
});

Deno.test("Lock.release() of an unlocked lock throws InvalidStateError", () => {
  const lock = new Lock();
  const e = assertThrows(() => lock.release(), InvalidStateError);
  assertEquals(
    e.message,
    "Cannot release a Lock: it is not locked, received locked()=false",
  );
});

Deno.test("Lock.acquire() waits while the lock is held", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    yield* lock.acquire();
    const second = lock.acquire();
    yield* sleep(5);
    assertFalse(second.done());
    lock.release();
    assert(lock.locked(), "handed over, so still locked");
    assertEquals(yield* second, true);
    lock.release();
    assertFalse(lock.locked());
  });
});

Deno.test("Lock binds to the running loop and refuses another loop", async () => {
  const lock = new Lock();
  assertThrows(() => lock.acquire(), InvalidStateError, "no event loop");
  await run(function* () {
    yield* lock.acquire();
    lock.release();
  });
  const e = await assertRejects(
    () =>
      run(function* () {
        yield* lock.acquire();
      }),
    InvalidStateError,
  );
  assertEquals(
    e.message,
    "Cannot wait on a Lock: it is bound to a different event loop",
  );
});

Deno.test("Lock prints its state", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    assertEquals(
      Object.prototype.toString.call(lock),
      "[object Lock unlocked]",
    );
    yield* lock.acquire();
    const w = lock.acquire();
    assertEquals(Deno.inspect(lock), "Lock locked waiters=1");
    lock.release();
    yield* w;
    assertEquals(Deno.inspect(lock), "Lock locked");
    lock.release();
  });
});

// ---- Fairness ----

Deno.test("Lock hands itself to waiters first come first served", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    const order: number[] = [];
    function* worker(i: number): Coroutine<void> {
      yield* lock.acquire();
      order.push(i);
      yield* sleep(1);
      lock.release();
    }
    yield* lock.acquire();
    const tasks = [0, 1, 2, 3, 4].map((i) => loop.createTask(worker(i)));
    yield* sleep(1);
    lock.release();
    for (const t of tasks) yield* t;
    assertEquals(order, [0, 1, 2, 3, 4]);
    assertFalse(lock.locked());
  });
});

Deno.test("Lock.acquire() does not barge in ahead of a waiter", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    const log: string[] = [];
    yield* lock.acquire();
    const b = loop.createTask(function* () {
      yield* lock.acquire();
      log.push("b");
      lock.release();
    });
    yield* sleep(0);
    lock.release();
    const again = lock.acquire();
    assertFalse(again.done());
    yield* again;
    log.push("main");
    lock.release();
    yield* b;
    assertEquals(log, ["b", "main"]);
  });
});

Deno.test("Lock works from async functions with await", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    const log: string[] = [];
    async function worker(name: string): Promise<void> {
      await lock.acquire();
      try {
        log.push(`${name} in`);
        await sleep(1);
        log.push(`${name} out`);
      } finally {
        lock.release();
      }
    }
    const a = loop.createTask(() => worker("a"));
    const b = loop.createTask(() => worker("b"));
    yield* a;
    yield* b;
    assertEquals(log, ["a in", "a out", "b in", "b out"]);
  });
});

// ---- Cancellation ----

Deno.test("Lock drops a waiter whose future is cancelled", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    yield* lock.acquire();
    const f = lock.acquire();
    assert(f.cancel());
    lock.release();
    assertFalse(lock.locked());
  });
});

Deno.test("Lock gives the lock to the next waiter when a waiting task is cancelled", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    const got: string[] = [];
    function* worker(name: string): Coroutine<void> {
      yield* lock.acquire();
      got.push(name);
      lock.release();
    }
    yield* lock.acquire();
    const b = loop.createTask(worker("b"));
    const c = loop.createTask(worker("c"));
    yield* sleep(0);
    b.cancel();
    yield* sleep(0);
    lock.release();
    yield* settle(b);
    yield* c;
    assert(b.cancelled());
    assertEquals(got, ["c"]);
    assertFalse(lock.locked());
  });
});

Deno.test("Lock: a generator waiter cancelled after the hand-over passes the lock on", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    const got: string[] = [];
    function* worker(name: string): Coroutine<void> {
      yield* lock.acquire();
      got.push(name);
      lock.release();
    }
    yield* lock.acquire();
    const b = loop.createTask(worker("b"));
    const c = loop.createTask(worker("c"));
    yield* sleep(0);
    lock.release(); // handed to b...
    b.cancel(); // ...which is cancelled before it resumes
    yield* settle(b);
    yield* c;
    assert(b.cancelled());
    assertEquals(got, ["c"]);
    assertFalse(lock.locked());
  });
});

Deno.test("Lock: a refused hand-over with nobody else waiting unlocks the lock", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    yield* lock.acquire();
    const b = loop.createTask(function* () {
      yield* lock.acquire();
      throw new Error("not reached");
    });
    yield* sleep(0);
    lock.release();
    assert(lock.locked());
    b.cancel();
    yield* settle(b);
    assert(b.cancelled());
    assertFalse(lock.locked());
  });
});

Deno.test("Lock: an async waiter cancelled after the hand-over passes the lock on without running", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    const got: string[] = [];
    function worker(name: string) {
      return async () => {
        await lock.acquire();
        got.push(name);
        lock.release();
      };
    }
    yield* lock.acquire();
    const b = loop.createTask(worker("b"));
    const c = loop.createTask(worker("c"));
    yield* sleep(0);
    lock.release(); // handed to b...
    b.cancel(); // ...which is cancelled before it resumes
    yield* settle(b);
    yield* c;
    assert(b.cancelled());
    assertEquals(got, ["c"]);
    assertFalse(lock.locked());
  });
});

Deno.test("Lock.hold() releases the lock when the handle is disposed", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    {
      using _held = yield* lock.hold();
      assert(lock.locked());
    }
    assertFalse(lock.locked());
  });
});

Deno.test("Lock.hold() handle releases only once when disposed twice", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    const handle = yield* lock.hold();
    handle[Symbol.dispose]();
    yield* lock.acquire(); // someone else holds it now
    handle[Symbol.dispose]();
    assert(lock.locked());
    lock.release();
  });
});

Deno.test("Lock.hold() waits in line and releases on an error in the block", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    const log: string[] = [];
    function* failing(): Coroutine<void> {
      using _held = yield* lock.hold();
      log.push("failing in");
      yield* sleep(1);
      throw new Error("boom");
    }
    function* after(): Coroutine<void> {
      using _held = yield* lock.hold();
      log.push("after in");
    }
    const a = loop.createTask(failing());
    const b = loop.createTask(after());
    try {
      yield* a;
    } catch (e) {
      assertEquals((e as Error).message, "boom");
    }
    yield* b;
    assertEquals(log, ["failing in", "after in"]);
    assertFalse(lock.locked());
  });
});

Deno.test("Lock.hold() refused after the hand-over passes the lock on", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    yield* lock.acquire();
    const b = loop.createTask(function* () {
      using _held = yield* lock.hold();
    });
    const c = loop.createTask(function* () {
      using _held = yield* lock.hold();
      return "c ran";
    });
    yield* sleep(0);
    lock.release();
    b.cancel();
    yield* settle(b);
    assertEquals(yield* c, "c ran");
    assertFalse(lock.locked());
  });
});

// ---- Property: random operations with cancellations at every point ----

interface Counts {
  refusals: number;
  cancelledWaits: number;
}

async function lockScenario(seed: number, counts: Counts): Promise<void> {
  const random = prng(seed);
  const loop = new VirtualTimeLoop();
  const lock = new Lock({ loop });
  const tasks: Task<void>[] = [];
  const entered: number[] = [];
  let holders = 0;
  let seq = 0;

  const enter = (ticket: number) => {
    holders++;
    assert(holders <= 1, `seed ${seed}: two holders at once`);
    entered.push(ticket);
  };
  // The tasks waiting for the lock, by ticket.
  const waiting = new Map<number, Task<void>>();
  // Cancels a waiting task — often the head of the line, which was just
  // handed the lock — now, one iteration later, or two.
  const chaos = () => {
    if (random() < 0.3 || waiting.size === 0) return;
    const tickets = [...waiting.keys()];
    const ticket = random() < 0.6
      ? Math.min(...tickets)
      : tickets[Math.floor(random() * tickets.length)];
    const victim = waiting.get(ticket)!;
    const hops = Math.floor(random() * 3);
    const hit = (n: number) => {
      if (n === 0) victim.cancel();
      else loop.callSoon(hit, n - 1);
    };
    hit(hops);
  };

  function* genWorker(
    index: number,
    delay: number,
    hold: number,
    useHold: boolean,
  ): Coroutine<void> {
    yield* sleep(delay);
    const ticket = seq++;
    const f = useHold ? lock.hold() : lock.acquire();
    let value: true | Disposable;
    waiting.set(ticket, tasks[index]);
    try {
      value = yield* f;
    } catch (e) {
      if (f.done() && !f.cancelled()) counts.refusals++;
      else counts.cancelledWaits++;
      throw e;
    } finally {
      waiting.delete(ticket);
    }
    enter(ticket);
    try {
      yield* sleep(hold);
    } finally {
      holders--;
      if (value === true) lock.release();
      else value[Symbol.dispose]();
      chaos();
    }
  }
  async function asyncWorker(
    index: number,
    delay: number,
    hold: number,
  ): Promise<void> {
    await sleep(delay);
    const ticket = seq++;
    waiting.set(ticket, tasks[index]);
    try {
      await lock.acquire();
    } finally {
      waiting.delete(ticket);
    }
    enter(ticket);
    try {
      await sleep(hold);
    } finally {
      holders--;
      lock.release();
      chaos();
    }
  }

  for (let i = 0; i < 25; i++) {
    const delay = Math.floor(random() * 6);
    const hold = Math.floor(random() * 3);
    const r = random();
    tasks.push(
      r < 0.35
        ? loop.createTask(genWorker(i, delay, hold, false))
        : r < 0.7
        ? loop.createTask(genWorker(i, delay, hold, true))
        : loop.createTask(() => asyncWorker(i, delay, hold)),
    );
  }
  for (let i = 0; i < 10; i++) {
    const victim = tasks[Math.floor(random() * tasks.length)];
    loop.callLater(Math.floor(random() * 12), () => victim.cancel());
  }
  await loop.runUntilComplete(loop.createTask(function* () {
    for (const t of tasks) yield* settle(t);
  }));
  assertFalse(lock.locked(), `seed ${seed}: a release was lost`);
  assertEquals(holders, 0);
  for (let i = 1; i < entered.length; i++) {
    assert(entered[i - 1] < entered[i], `seed ${seed}: out of order`);
  }
  // The lock still works.
  const last = lock.acquire();
  assertStrictEquals(last.done(), true);
  lock.release();
  loop.close();
}

Deno.test("Lock never loses a release nor breaks FIFO order under random cancellations", async () => {
  const counts: Counts = { refusals: 0, cancelledWaits: 0 };
  for (let seed = 1; seed <= 30; seed++) {
    await lockScenario(seed, counts);
  }
  assert(counts.refusals > 0, "the hand-over window was never hit");
  assert(counts.cancelledWaits > 0, "no wait was ever cancelled");
});

Deno.test("the coordination primitives refuse options that are not an object like { loop } (a loop given bare included)", () => {
  const loop = new VirtualTimeLoop();
  const makers: [string, () => unknown][] = [
    ["a Lock", () => new Lock(loop as never)],
    ["an Event", () => new Event(loop as never)],
    ["a Condition", () => new Condition(undefined, loop as never)],
    ["a Semaphore", () => new Semaphore(1, loop as never)],
    ["a BoundedSemaphore", () => new BoundedSemaphore(1, loop as never)],
    ["a Barrier", () => new Barrier(2, loop as never)],
    ["a Queue", () => new Queue(0, loop as never)],
    ["a PriorityQueue", () => new PriorityQueue(0, loop as never)],
    ["a LifoQueue", () => new LifoQueue(0, "x" as never)],
  ];
  for (const [what, make] of makers) {
    assertThrows(
      make,
      TypeError,
      `Cannot create ${what}: options must be an object like { loop }`,
    );
  }
  loop.close();
});

// ---- Cases from CPython's test_locks.py (LockTests) ----

// Mirrors CPython's LockTests.test_acquire.
Deno.test("Lock: each release() lets exactly the next waiting task in, one turn later", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    const got: number[] = [];
    assert(yield* lock.acquire());
    const taker = (n: number) => async () => {
      if (await lock.acquire()) got.push(n);
      return true;
    };
    const t1 = loop.createTask(taker(1));
    const t2 = loop.createTask(taker(2));
    yield* sleep(0);
    assertEquals(got, []);
    lock.release();
    yield* sleep(0);
    assertEquals(got, [1]);
    yield* sleep(0);
    assertEquals(got, [1]);
    const t3 = loop.createTask(taker(3));
    lock.release();
    yield* sleep(0);
    assertEquals(got, [1, 2]);
    lock.release();
    yield* sleep(0);
    assertEquals(got, [1, 2, 3]);
    for (const t of [t1, t2, t3]) assertEquals(t.result(), true);
  });
});

// Mirrors CPython's LockTests.test_cancel_race.
Deno.test("Lock: a waiter cancelled in the turn the holder releases is skipped for the next one", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    const lockit = (blocker: Future<void> | null) => async () => {
      await lock.acquire();
      try {
        if (blocker) await blocker;
      } finally {
        lock.release();
      }
    };
    const fa = new Future<void>({ loop });
    const ta = loop.createTask(lockit(fa));
    yield* sleep(0);
    assert(lock.locked());
    const tb = loop.createTask(lockit(null));
    yield* sleep(0);
    assertStringIncludes(Deno.inspect(lock), "waiters=1");
    const tc = loop.createTask(lockit(null));
    yield* sleep(0);
    assertStringIncludes(Deno.inspect(lock), "waiters=2");
    fa.setResult();
    tb.cancel();
    yield* sleep(0);
    assert(ta.done());
    assert(tb.cancelled());
    yield* tc;
    assertFalse(lock.locked());
  });
});

// Mirrors CPython's LockTests.test_cancel_release_race.
Deno.test("Lock: cancelling the first waiter and releasing in one callback lets exactly one other waiter in", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    let calls = 0;
    let taken = 0;
    const lockit = async () => {
      calls++;
      await lock.acquire();
      taken++;
    };
    yield* lock.acquire();
    const t1 = loop.createTask(lockit);
    const t2 = loop.createTask(lockit);
    const t3 = loop.createTask(lockit);
    yield* sleep(0);
    loop.callSoon(() => {
      t1.cancel();
      lock.release();
    });
    yield* settle(t1);
    assertEquals(taken, 1);
    assertEquals(calls, 3);
    assert(t1.cancelled() && t2.done());
    t3.cancel();
    yield* sleep(0);
    assert(t3.cancelled());
  });
});

// Mirrors CPython's LockTests.test_finished_waiter_cancelled.
Deno.test("Lock: the first waiter cancelled before the release does not strand the second", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    yield* lock.acquire();
    const tb = loop.createTask(() => lock.acquire());
    yield* sleep(0);
    const tc = loop.createTask(() => lock.acquire());
    tb.cancel();
    lock.release();
    yield* sleep(0);
    assert(lock.locked());
    assert(tb.cancelled());
    assertEquals(yield* tc, true);
  });
});
