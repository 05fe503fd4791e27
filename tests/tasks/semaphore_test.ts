import {
  assert,
  assertEquals,
  assertFalse,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import type { Future } from "../../futures/future.ts";
import { BoundedSemaphore, Semaphore } from "../../tasks/semaphore.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Coroutine, Task } from "../../tasks/task.ts";
import { withTaskGroup } from "../../tasks/task_group.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { prng, run, settle } from "../_helpers.ts";

// How many slots are free: takes them all at once, then gives them back.
function freeSlots(sem: Semaphore): number {
  const taken: Future<true>[] = [];
  for (;;) {
    const f = sem.acquire();
    if (!f.done()) {
      f.cancel();
      break;
    }
    taken.push(f);
  }
  for (const _ of taken) sem.release();
  return taken.length;
}

// ---- Construction ----

Deno.test("Semaphore() checks its initial value", () => {
  assertThrows(() => new Semaphore(-1), RangeError, "received -1");
  assertThrows(() => new Semaphore(1.5), RangeError, "received 1.5");
  assertThrows(() => new Semaphore(NaN), RangeError);
  assertThrows(
    () => new Semaphore("2" as unknown as number),
    TypeError,
    "received string",
  );
  assertThrows(() => new BoundedSemaphore(-3), RangeError);
  assertFalse(new Semaphore().locked());
  assert(new Semaphore(0).locked());
});

// ---- Basics ----

Deno.test("Semaphore.acquire() takes free slots at once, then waits", async () => {
  await run(function* (loop) {
    const sem = new Semaphore(2, { loop });
    assert(sem.acquire().done());
    assertFalse(sem.locked());
    assert(sem.acquire().done());
    assert(sem.locked());
    const third = sem.acquire();
    yield* sleep(1);
    assertFalse(third.done());
    assertEquals(Deno.inspect(sem), "Semaphore locked waiters=1");
    sem.release();
    assertEquals(yield* third, true);
    assert(sem.locked());
  });
});

Deno.test("Semaphore.release() may raise the count above its initial value", async () => {
  await run(function* (loop) {
    const sem = new Semaphore(1, { loop });
    sem.release();
    sem.release();
    assertEquals(freeSlots(sem), 3);
    assertEquals(
      Object.prototype.toString.call(sem),
      "[object Semaphore unlocked value=3]",
    );
    yield* sleep(0);
  });
});

Deno.test("BoundedSemaphore.release() above the initial value throws InvalidStateError", async () => {
  await run(function* (loop) {
    const sem = new BoundedSemaphore(2, { loop });
    const e = assertThrows(() => sem.release(), InvalidStateError);
    assertEquals(
      e.message,
      "Cannot release a BoundedSemaphore: it was released too many times, received value=2 bound=2",
    );
    yield* sem.acquire();
    yield* sem.acquire();
    const waiter = sem.acquire();
    sem.release(); // handed to the waiter: the count stays 0
    sem.release();
    sem.release();
    assertThrows(() => sem.release(), InvalidStateError);
    yield* waiter;
    assertEquals(freeSlots(sem), 2);
  });
});

// ---- Fairness ----

Deno.test("Semaphore serves waiters first come first served", async () => {
  await run(function* (loop) {
    const sem = new Semaphore(2, { loop });
    const order: number[] = [];
    function* worker(i: number): Coroutine<void> {
      yield* sem.acquire();
      order.push(i);
      yield* sleep(1);
      sem.release();
    }
    yield* sem.acquire();
    yield* sem.acquire();
    const tasks = [0, 1, 2, 3, 4, 5].map((i) => loop.createTask(worker(i)));
    yield* sleep(1);
    sem.release();
    sem.release();
    for (const t of tasks) yield* t;
    assertEquals(order, [0, 1, 2, 3, 4, 5]);
    assertEquals(freeSlots(sem), 2);
  });
});

Deno.test("Semaphore.acquire() does not overtake a waiter that was handed a slot", async () => {
  await run(function* (loop) {
    const sem = new Semaphore(1, { loop });
    const log: string[] = [];
    yield* sem.acquire();
    const b = loop.createTask(function* () {
      yield* sem.acquire();
      log.push("b");
      sem.release();
    });
    yield* sleep(0);
    sem.release();
    assert(sem.locked());
    yield* sem.acquire();
    log.push("main");
    sem.release();
    yield* b;
    assertEquals(log, ["b", "main"]);
  });
});

Deno.test("Semaphore.acquire() queues behind waiters handed slots that have not resumed yet", async () => {
  // asyncio's test_acquire_fifo_order_2, in both coroutine styles.
  for (const style of ["generator", "async"] as const) {
    await run(function* (loop) {
      const sem = new Semaphore(1, { loop });
      const result: number[] = [];
      function* genParty(n: number, again: boolean): Coroutine<void> {
        yield* sem.acquire();
        result.push(n);
        if (!again) return;
        sem.release(); // the slot is free, but 3 was handed one and goes first
        yield* sem.acquire();
        result.push(4);
      }
      const asyncParty = (n: number, again: boolean) => async () => {
        await sem.acquire();
        result.push(n);
        if (!again) return;
        sem.release();
        await sem.acquire();
        result.push(4);
      };
      const tasks = [[1, false], [2, true], [3, false]].map(([n, again]) =>
        loop.createTask(
          style === "generator"
            ? genParty(n as number, again as boolean)
            : asyncParty(n as number, again as boolean),
        )
      );
      yield* sleep(0);
      sem.release();
      sem.release();
      assert(sem.locked(), "both slots are on their way to 2 and 3");
      for (const t of tasks) yield* t;
      assertEquals(result, [1, 2, 3, 4], style);
    });
  }
});

// ---- Cancellation ----

Deno.test("Semaphore drops a cancelled waiter", async () => {
  await run(function* (loop) {
    const sem = new Semaphore(0, { loop });
    const f = sem.acquire();
    const g = sem.acquire();
    f.cancel();
    sem.release();
    assertEquals(yield* g, true);
    assertEquals(freeSlots(sem), 0);
    sem.release();
    assertEquals(freeSlots(sem), 1);
  });
});

Deno.test("Semaphore: waiters handed slots and cancelled before resuming give them back", async () => {
  // The asyncio 3.12 regression (gh-90155): several releases, then the
  // woken waiters are cancelled; no slot may be lost.
  await run(function* (loop) {
    const sem = new Semaphore(0, { loop });
    const got: number[] = [];
    const tasks = [0, 1, 2, 3].map((i) =>
      loop.createTask(function* () {
        yield* sem.acquire();
        got.push(i);
      })
    );
    yield* sleep(0);
    sem.release();
    sem.release();
    tasks[0].cancel(); // handed a slot
    tasks[1].cancel(); // handed a slot
    for (const t of tasks) yield* settle(t);
    assertEquals(got, [2, 3]);
    assertEquals(freeSlots(sem), 0, "tasks 2 and 3 keep their slots");
    assert(tasks[0].cancelled() && tasks[1].cancelled());
  });
});

Deno.test("Semaphore: an async waiter cancelled after the hand-over passes its slot on without running", async () => {
  await run(function* (loop) {
    const sem = new Semaphore(0, { loop });
    const got: string[] = [];
    function worker(name: string) {
      return async () => {
        await sem.acquire();
        got.push(name);
      };
    }
    const b = loop.createTask(worker("b"));
    const c = loop.createTask(worker("c"));
    yield* sleep(0);
    sem.release(); // handed to b...
    b.cancel(); // ...which is cancelled before it resumes
    yield* settle(b);
    yield* c;
    assert(b.cancelled());
    assertEquals(got, ["c"]);
    assertEquals(freeSlots(sem), 0, "c holds the slot");
  });
});

Deno.test("Semaphore.hold() releases the slot when the handle is disposed", async () => {
  await run(function* (loop) {
    const sem = new Semaphore(1, { loop });
    {
      using _slot = yield* sem.hold();
      assert(sem.locked());
    }
    assertFalse(sem.locked());
    const handle = yield* sem.hold();
    handle[Symbol.dispose]();
    handle[Symbol.dispose]();
    assertEquals(freeSlots(sem), 1);
  });
});

// ---- Property: random operations with cancellations at every point ----

interface Counts {
  refusals: number;
}

async function semaphoreScenario(seed: number, counts: Counts): Promise<void> {
  const random = prng(seed);
  const loop = new VirtualTimeLoop();
  const capacity = 1 + (seed % 3);
  const bounded = seed % 2 === 0;
  const sem = bounded
    ? new BoundedSemaphore(capacity, { loop })
    : new Semaphore(capacity, { loop });
  const tasks: Task<void>[] = [];
  const waiting = new Map<number, Task<void>>();
  // Tickets in the order slots were granted: done callbacks are
  // scheduled in the order the futures complete.
  const granted: number[] = [];
  const noteGrant = (f: Future<true>, ticket: number) =>
    f.addDoneCallback((g) => {
      if (!g.cancelled()) granted.push(ticket);
    });
  let holders = 0;
  let seq = 0;

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
  function* genWorker(index: number, delay: number, hold: number) {
    yield* sleep(delay);
    const ticket = seq++;
    const f = sem.acquire();
    noteGrant(f, ticket);
    waiting.set(ticket, tasks[index]);
    try {
      yield* f;
    } catch (e) {
      if (f.done() && !f.cancelled()) counts.refusals++;
      throw e;
    } finally {
      waiting.delete(ticket);
    }
    holders++;
    assert(holders <= capacity, `seed ${seed}: too many holders`);
    try {
      yield* sleep(hold);
    } finally {
      holders--;
      sem.release();
      chaos();
    }
  }
  async function asyncWorker(index: number, delay: number, hold: number) {
    await sleep(delay);
    const ticket = seq++;
    waiting.set(ticket, tasks[index]);
    try {
      const f = sem.acquire();
      noteGrant(f, ticket);
      await f;
    } finally {
      waiting.delete(ticket);
    }
    holders++;
    assert(holders <= capacity, `seed ${seed}: too many holders`);
    try {
      await sleep(hold);
    } finally {
      holders--;
      sem.release();
      chaos();
    }
  }
  for (let i = 0; i < 25; i++) {
    const delay = Math.floor(random() * 6);
    const hold = Math.floor(random() * 3);
    tasks.push(
      random() < 0.7
        ? loop.createTask(genWorker(i, delay, hold))
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
  assertEquals(holders, 0);
  assertEquals(freeSlots(sem), capacity, `seed ${seed}: a slot was lost`);
  assert(granted.length > 0);
  for (let i = 1; i < granted.length; i++) {
    assert(granted[i - 1] < granted[i], `seed ${seed}: out of order`);
  }
  loop.close();
}

Deno.test("Semaphore never loses a slot nor breaks FIFO order under random cancellations", async () => {
  const counts: Counts = { refusals: 0 };
  for (let seed = 1; seed <= 30; seed++) {
    await semaphoreScenario(seed, counts);
  }
  assert(counts.refusals > 0, "the hand-over window was never hit");
});

// ---- Cases from CPython's test_locks.py (SemaphoreTests) ----

// Mirrors CPython's SemaphoreTests.test_acquire.
Deno.test("Semaphore(3): two releases let exactly two of three waiting tasks in, one turn later", async () => {
  await run(function* (loop) {
    const sem = new Semaphore(3, { loop });
    const got: number[] = [];
    assert(yield* sem.acquire());
    assert(yield* sem.acquire());
    assertFalse(sem.locked());
    const taker = (n: number) => async () => {
      await sem.acquire();
      got.push(n);
      return true;
    };
    const t1 = loop.createTask(taker(1));
    const t2 = loop.createTask(taker(2));
    const t3 = loop.createTask(taker(3));
    yield* sleep(0);
    assertEquals(got, [1]);
    assert(sem.locked());
    assertEquals(Deno.inspect(sem), "Semaphore locked waiters=2");
    const t4 = loop.createTask(taker(4));
    sem.release();
    sem.release();
    yield* sleep(0);
    assertEquals(got.length, 3);
    assert(sem.locked());
    assertEquals(Deno.inspect(sem), "Semaphore locked waiters=1");
    assertEquals(t1.result(), true);
    assertEquals([t2, t3, t4].filter((t) => t.done()).length, 2);
    sem.release();
    for (const t of [t2, t3, t4]) assertEquals(yield* t, true);
  });
});

// Mirrors CPython's SemaphoreTests.test_acquire_cancel_before_awoken and
// test_acquire_hang.
Deno.test("Semaphore(0): waiters cancelled before a release do not take its slot from the next one", async () => {
  await run(function* (loop) {
    const sem = new Semaphore(0, { loop });
    const t = [0, 1, 2, 3].map(() => loop.createTask(() => sem.acquire()));
    yield* sleep(0);
    t[0].cancel();
    t[1].cancel();
    sem.release();
    yield* sleep(0);
    yield* sleep(0);
    assert(t[2].done() && !t[2].cancelled());
    assertFalse(t[3].done());
    assert(sem.locked());
    t[3].cancel();
    yield* settle(t[3]);
  });
});

// Mirrors CPython's SemaphoreTests.test_acquire_no_hang.
Deno.test("Semaphore: a waiter cancelled by the holder just after its release gives the slot back", async () => {
  await run(function* (loop) {
    const sem = new Semaphore(1, { loop });
    let entered = false;
    // deno-lint-ignore prefer-const
    let t2: Task<void>;
    const t1 = loop.createTask(async () => {
      {
        using _ = await sem.hold();
        await sleep(0);
      }
      t2.cancel();
    });
    t2 = loop.createTask(async () => {
      using _ = await sem.hold();
      entered = true;
    });
    yield* settle(t1);
    yield* settle(t2);
    assertEquals(t1.result(), undefined);
    assert(t2.cancelled());
    assertFalse(entered);
    yield* waitFor(sem.acquire(), 1);
    assertEquals(loop.time(), 0);
  });
});

// Mirrors CPython's SemaphoreTests.test_acquire_fifo_order.
Deno.test("Semaphore(1): three tasks that each take it twice take turns in order", async () => {
  await run(function* (loop) {
    const sem = new Semaphore(1, { loop });
    const log: string[] = [];
    const party = (tag: string) => async () => {
      for (const round of [1, 2]) {
        await sem.acquire();
        log.push(`${tag}_${round}`);
        await sleep(0.01);
        sem.release();
      }
    };
    yield* withTaskGroup(function* (tg) {
      for (const tag of ["c1", "c2", "c3"]) tg.createTask(party(tag));
    });
    assertEquals(log, ["c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"]);
  });
});

// Mirrors CPython's SemaphoreTests.test_acquire_fifo_order_3.
Deno.test("Semaphore(0): a waiter cancelled before the releases leaves them to the next two in order", async () => {
  await run(function* (loop) {
    const sem = new Semaphore(0, { loop });
    const got: number[] = [];
    const t = [1, 2, 3].map((n) =>
      loop.createTask(async () => {
        await sem.acquire();
        got.push(n);
      })
    );
    yield* sleep(0);
    t[0].cancel();
    yield* sleep(0);
    sem.release();
    sem.release();
    for (const task of t) yield* settle(task);
    assertEquals(got, [2, 3]);
  });
});

// Mirrors CPython's SemaphoreTests.test_acquire_fifo_order_4.
Deno.test("Semaphore(0): three releases by one waiting party serve the line in order, a task made by the first runs after the third", async () => {
  await run(function* (loop) {
    const sem = new Semaphore(0, { loop });
    const got: number[] = [];
    let t4: Task<void> | undefined;
    const t1 = loop.createTask(async () => {
      await sem.acquire();
      // deno-lint-ignore require-await
      t4 = loop.createTask(async () => {
        got.push(4);
      });
      got.push(1);
    });
    const t2 = loop.createTask(async () => {
      sem.release();
      sem.release();
      sem.release();
      assert(sem.locked(), "1 has not resumed yet");
      await sem.acquire();
      got.push(2);
    });
    const t3 = loop.createTask(async () => {
      await sem.acquire();
      assert(sem.locked());
      got.push(3);
    });
    yield* sleep(0);
    assertStringIncludes(Deno.inspect(sem), "waiters=");
    yield* sleep(0);
    for (const t of [t1, t2, t3]) yield* t;
    yield* t4!;
    assertEquals(got, [1, 2, 3, 4]);
  });
});
