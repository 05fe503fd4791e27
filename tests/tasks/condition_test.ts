import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertThrows,
} from "@std/assert";
import {
  CancelledError,
  InvalidStateError,
  TimeoutError,
} from "../../futures/errors.ts";

import { Condition } from "../../tasks/condition.ts";
import { Event } from "../../tasks/event.ts";
import { Lock } from "../../tasks/lock.ts";
import { sleep } from "../../tasks/sleep.ts";
import { currentTask } from "../../tasks/task.ts";
import { timeout } from "../../tasks/timeout.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import type { Coroutine, Task } from "../../tasks/task.ts";
import type { Future } from "../../futures/future.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { prng, run, settle } from "../_helpers.ts";

// ---- Construction and misuse ----

Deno.test("Condition() makes its own lock or shares the one given", async () => {
  await run(function* (loop) {
    const lock = new Lock({ loop });
    const a = new Condition(lock, { loop });
    const b = new Condition(lock, { loop });
    yield* a.acquire();
    assert(b.locked());
    assert(lock.locked());
    b.release();
    assertFalse(a.locked());
    const own = new Condition(undefined, { loop });
    yield* own.acquire();
    assertFalse(lock.locked());
    own.release();
  });
});

Deno.test("Condition() rejects a lock that is not a Lock", () => {
  assertThrows(
    () => new Condition({} as Lock),
    TypeError,
    "Cannot create a Condition: expected a Lock, received object",
  );
});

Deno.test("Condition.wait(), waitFor() and notify() need the lock held", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    const e = assertThrows(() => cond.wait(), InvalidStateError);
    assertEquals(
      e.message,
      "Cannot call wait() on a Condition: its lock is not acquired, received locked()=false",
    );
    assertThrows(() => cond.waitFor(() => false), InvalidStateError);
    assertThrows(() => cond.notify(), InvalidStateError);
    assertThrows(() => cond.notifyAll(), InvalidStateError);
    yield* cond.acquire();
    assertThrows(() => cond.notify(-1), RangeError, "received -1");
    assertThrows(() => cond.notify(0.5), RangeError);
    assertThrows(
      () => cond.waitFor(5 as unknown as () => boolean),
      TypeError,
      "received number",
    );
    cond.notify(0);
    cond.release();
  });
});

Deno.test("Condition.waitFor() returns a truthy predicate at once even without the lock, as asyncio does", async () => {
  // asyncio's test_wait_for_unacquired: the predicate is checked first, and
  // only a wait needs the lock.
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    assertEquals(yield* cond.waitFor(() => [1, 2, 3]), [1, 2, 3]);
    assertFalse(cond.locked());
    let calls = 0;
    assertThrows(
      () => cond.waitFor(() => ++calls > 5),
      InvalidStateError,
      "Cannot call waitFor() on a Condition: its lock is not acquired",
    );
    assertEquals(calls, 1, "the predicate was checked before the lock");
  });
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    const got = yield* loop.createTask(async () => await cond.waitFor(() => 7));
    assertEquals(got, 7);
    assertFalse(cond.locked());
  });
});

// ---- wait() and notify() ----

Deno.test("Condition.wait() releases the lock and takes it again after notify()", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    const log: string[] = [];
    const waiter = loop.createTask(function* () {
      yield* cond.acquire();
      log.push("waiting");
      const r = yield* cond.wait();
      log.push(`woke ${r} locked=${cond.locked()}`);
      cond.release();
    });
    yield* sleep(1);
    assertFalse(cond.locked(), "wait() released the lock");
    yield* cond.acquire();
    cond.notify();
    yield* sleep(1);
    assertEquals(log, ["waiting"], "the waiter needs the lock first");
    cond.release();
    yield* waiter;
    assertEquals(log, ["waiting", "woke true locked=true"]);
    assertFalse(cond.locked());
  });
});

Deno.test("Condition.notify(n) wakes n waiters first come first served", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    const woke: number[] = [];
    const tasks = [0, 1, 2, 3, 4].map((i) =>
      loop.createTask(function* () {
        yield* cond.acquire();
        try {
          yield* cond.wait();
          woke.push(i);
        } finally {
          cond.release();
        }
      })
    );
    yield* sleep(1);
    assertEquals(Deno.inspect(cond), "Condition unlocked waiters=5");
    yield* cond.acquire();
    cond.notify(2);
    cond.release();
    yield* sleep(1);
    assertEquals(woke, [0, 1]);
    yield* cond.acquire();
    cond.notifyAll();
    cond.release();
    for (const t of tasks) yield* t;
    assertEquals(woke, [0, 1, 2, 3, 4]);
  });
});

Deno.test("Condition.wait() works from async functions", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    let ready = false;
    const waiter = loop.createTask(async () => {
      await cond.acquire();
      try {
        while (!ready) await cond.wait();
        return cond.locked();
      } finally {
        cond.release();
      }
    });
    yield* sleep(1);
    using _held = yield* cond.hold();
    ready = true;
    cond.notify();
    assertFalse(waiter.done());
    _held[Symbol.dispose]();
    assertEquals(yield* waiter, true);
  });
});

// ---- waitFor() ----

Deno.test("Condition.waitFor() completes at once when the predicate holds", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    yield* cond.acquire();
    const f = cond.waitFor(() => "yes");
    assert(f.done());
    assertEquals(yield* f, "yes");
    assert(cond.locked());
    assertThrows(
      () =>
        cond.waitFor(() => {
          throw new Error("bad predicate");
        }),
      Error,
      "bad predicate",
    );
    assert(cond.locked());
    cond.release();
  });
});

Deno.test("Condition.waitFor() re-checks after each wakeup and returns the truthy value", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    let n = 0;
    let checks = 0;
    const waiter = loop.createTask(function* () {
      yield* cond.acquire();
      try {
        return yield* cond.waitFor(() => {
          checks++;
          assert(cond.locked());
          return n >= 3 ? n * 10 : 0;
        });
      } finally {
        cond.release();
      }
    });
    for (let i = 0; i < 3; i++) {
      yield* sleep(1);
      yield* cond.acquire();
      n++;
      cond.notifyAll();
      cond.release();
    }
    assertEquals(yield* waiter, 30);
    assertEquals(checks, 4);
  });
});

Deno.test("Condition.waitFor() fails with the predicate's error, holding the lock", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    let calls = 0;
    const waiter = loop.createTask(function* () {
      yield* cond.acquire();
      try {
        yield* cond.waitFor(() => {
          if (++calls === 2) throw new Error("broken state");
          return false;
        });
      } catch (e) {
        return `${(e as Error).message} locked=${cond.locked()}`;
      } finally {
        cond.release();
      }
    });
    yield* sleep(1);
    yield* cond.acquire();
    cond.notify();
    cond.release();
    assertEquals(yield* waiter, "broken state locked=true");
    assertFalse(cond.locked());
  });
});

// ---- Cancellation ----

Deno.test("Condition.wait() cancelled while waiting completes only once the lock is back", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    const log: string[] = [];
    const waiter = loop.createTask(function* () {
      yield* cond.acquire();
      try {
        yield* cond.wait();
        log.push("notified");
      } catch (e) {
        assertInstanceOf(e, CancelledError);
        log.push(`cancelled locked=${cond.locked()}`);
      } finally {
        cond.release();
      }
    });
    yield* sleep(1);
    yield* cond.acquire();
    waiter.cancel();
    yield* sleep(1);
    assertEquals(log, [], "still waiting for the lock");
    assertFalse(waiter.done());
    cond.release();
    yield* waiter;
    assertEquals(log, ["cancelled locked=true"]);
    assertFalse(cond.locked());
  });
});

Deno.test("Condition.wait() future: cancel() returns true and the future turns cancelled later", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    yield* cond.acquire();
    const f = cond.wait();
    yield* cond.acquire(); // got the lock back from wait()
    assert(f.cancel("first"));
    assert(f.cancel("stop"), "still pending: a second cancel() is accepted");
    assertFalse(f.done());
    cond.release();
    try {
      yield* f;
    } catch (e) {
      assertInstanceOf(e, CancelledError);
      assertEquals((e as Error).message, "stop");
    }
    assert(f.cancelled());
    assert(cond.locked(), "the cancelled wait holds the lock again");
    assertFalse(f.cancel());
    cond.release();
  });
});

Deno.test("Condition: a waiter notified and cancelled before resuming passes the notification on", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    const woke: string[] = [];
    function* waiter(name: string): Coroutine<void> {
      yield* cond.acquire();
      try {
        yield* cond.wait();
        woke.push(name);
      } finally {
        cond.release();
      }
    }
    const a = loop.createTask(waiter("a"));
    const b = loop.createTask(waiter("b"));
    yield* sleep(1);
    yield* cond.acquire();
    cond.notify(1); // a is notified...
    a.cancel(); // ...and cancelled before it gets the lock
    cond.release();
    yield* settle(a);
    yield* b;
    assert(a.cancelled());
    assertEquals(woke, ["b"]);
  });
});

Deno.test("Condition: a waiter cancelled after its wait completed passes the notification on", async () => {
  // Only a wait whose lock is taken back by callbacks (here: the task
  // waits, on a promise, for the wait's done callback, and awaits the wait
  // only then) completes before its task resumes; a task that `yield*`s or
  // `await`s the wait takes the lock back itself.
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    const woke: string[] = [];
    let lockedInCatch = false;
    const a: Task<void> = loop.createTask(async () => {
      await cond.acquire();
      const f = cond.wait();
      // Runs before the task resumes: the wait is over, then the task is
      // cancelled.
      const over = new Promise<void>((resolve) =>
        f.addDoneCallback(() => {
          a.cancel();
          resolve();
        })
      );
      try {
        await over;
        await f;
        woke.push("a");
      } catch (e) {
        lockedInCatch = e instanceof CancelledError && cond.locked();
        throw e;
      } finally {
        cond.release();
      }
    });
    const b = loop.createTask(function* () {
      yield* cond.acquire();
      try {
        yield* cond.wait();
        woke.push("b");
      } finally {
        cond.release();
      }
    });
    yield* sleep(1);
    yield* cond.acquire();
    cond.notify(1);
    cond.release();
    yield* settle(a);
    yield* b;
    assert(a.cancelled());
    assert(lockedInCatch);
    assertEquals(woke, ["b"]);
    assertFalse(cond.locked());
  });
});

Deno.test("Condition.wait() cancelled in an async function rejects once the lock is back", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    let seen = "";
    const waiter = loop.createTask(async () => {
      await cond.acquire();
      try {
        await cond.wait();
      } catch (e) {
        seen = `${(e as Error).name} locked=${cond.locked()}`;
        throw e;
      } finally {
        cond.release();
      }
    });
    yield* sleep(1);
    yield* cond.acquire();
    waiter.cancel();
    yield* sleep(1);
    assertEquals(seen, "");
    cond.release();
    yield* settle(waiter);
    assertEquals(seen, "CancelledError locked=true");
  });
});

Deno.test("Condition.wait() cancelled again while taking the lock back fails with the latest CancelledError", async () => {
  // asyncio's wait() re-raises the most recent CancelledError it caught
  // while re-acquiring the lock.
  for (const kind of ["generator", "async"]) {
    await run(function* (loop) {
      const cond = new Condition(undefined, { loop });
      const seen = (e: unknown) =>
        `${e instanceof CancelledError} ${
          (e as Error).message
        } locked=${cond.locked()}`;
      const waiter = kind === "generator"
        ? loop.createTask(function* () {
          yield* cond.acquire();
          try {
            yield* cond.wait();
            return "woken";
          } catch (e) {
            return seen(e);
          } finally {
            cond.release();
          }
        })
        : loop.createTask(async () => {
          await cond.acquire();
          try {
            await cond.wait();
            return "woken";
          } catch (e) {
            return seen(e);
          } finally {
            cond.release();
          }
        });
      yield* sleep(1);
      yield* cond.acquire();
      waiter.cancel("first");
      yield* sleep(1);
      waiter.cancel("second");
      yield* sleep(1);
      assertFalse(waiter.done());
      cond.release();
      assertEquals(yield* waiter, "true second locked=true", kind);
      assertFalse(cond.locked());
    });
  }
});

Deno.test("Condition.waitFor() cancelled while waiting leaves the line", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    yield* cond.acquire();
    const w = cond.waitFor(() => false);
    yield* cond.acquire();
    assertEquals(Deno.inspect(cond), "Condition locked waiters=1");
    w.cancel();
    assertEquals(Deno.inspect(cond), "Condition locked");
    cond.notifyAll(); // nobody left to wake
    cond.release();
    yield* settle(w);
    assert(w.cancelled());
    assert(cond.locked());
    cond.release();
  });
});

Deno.test("Condition.waitFor(): thousands of waiters whose predicate fails give the lock back without deep recursion", async () => {
  // Each such waiter gives the lock back from inside the release() that
  // handed it over; nested, 10 000 of them overflowed the stack.
  // (Waits watched by a done callback: their lock is taken back by
  // callbacks.)
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    const n = 10_000;
    let go = false;
    let done = 0;
    for (let i = 0; i < n; i++) {
      loop.createTask(async () => {
        await cond.acquire();
        cond.waitFor(() => go).addDoneCallback(() => {
          done++;
          cond.release();
        });
      });
    }
    yield* sleep(1);
    yield* cond.acquire();
    cond.notifyAll();
    cond.release();
    assertFalse(cond.locked(), "every waiter gave the lock back");
    assertEquals(Deno.inspect(cond), `Condition unlocked waiters=${n}`);
    yield* cond.acquire();
    go = true;
    cond.notifyAll();
    cond.release();
    yield* sleep(1);
    assertEquals(done, n);
    assertFalse(cond.locked());
  });
});

// ---- Property: random producers, consumers and cancellations ----

async function conditionScenario(seed: number): Promise<void> {
  const random = prng(seed);
  const loop = new VirtualTimeLoop();
  const cond = new Condition(undefined, { loop });
  let holder: string | null = null;
  let items = 0;
  let produced = 0;
  let consumed = 0;
  const consumers: Task<void>[] = [];
  const waitingConsumers = new Set<Task<void>>();

  const take = (who: string) => {
    assertEquals(
      holder,
      null,
      `seed ${seed}: ${who} and ${holder} both hold`,
    );
    assert(cond.locked());
    holder = who;
  };
  const give = () => {
    holder = null;
    cond.release();
  };

  function* producer(name: string, delay: number): Coroutine<void> {
    yield* sleep(delay);
    yield* cond.acquire();
    take(name);
    items++;
    produced++;
    if (random() < 0.05) cond.notifyAll();
    else cond.notify(1);
    give();
    // Cancel a waiting consumer — often the one just notified — now, or
    // a few iterations later, to hit every step of its wakeup.
    if (random() < 0.6 && waitingConsumers.size > 0) {
      const all = [...waitingConsumers];
      const victim = random() < 0.6
        ? all[0]
        : all[Math.floor(random() * all.length)];
      const hops = Math.floor(random() * 4);
      const hit = (n: number) => {
        if (n === 0) victim.cancel();
        else loop.callSoon(hit, n - 1);
      };
      hit(hops);
    }
  }
  function* genConsumer(name: string, self: () => Task<void>) {
    yield* sleep(Math.floor(random() * 5));
    yield* cond.acquire();
    take(name);
    holder = null;
    waitingConsumers.add(self());
    let ok = false;
    try {
      if (random() < 0.5) {
        yield* cond.waitFor(() => items > 0);
      } else {
        while (items === 0) yield* cond.wait();
      }
      ok = true;
    } finally {
      // Woken or cancelled, the lock is ours again.
      waitingConsumers.delete(self());
      take(name);
      if (!ok) give();
    }
    items--;
    consumed++;
    give();
  }
  async function asyncConsumer(name: string, self: () => Task<void>) {
    await sleep(Math.floor(random() * 5));
    await cond.acquire();
    take(name);
    holder = null;
    waitingConsumers.add(self());
    let ok = false;
    try {
      await cond.waitFor(() => items > 0);
      ok = true;
    } finally {
      waitingConsumers.delete(self());
      take(name);
      if (!ok) give();
    }
    items--;
    consumed++;
    give();
  }

  const producers: Task<void>[] = [];
  for (let i = 0; i < 15; i++) {
    producers.push(
      loop.createTask(producer(`p${i}`, Math.floor(random() * 8))),
    );
  }
  for (let i = 0; i < 20; i++) {
    const ref: { task?: Task<void> } = {};
    const self = () => ref.task!;
    const task = ref.task = random() < 0.7
      ? loop.createTask(genConsumer(`c${i}`, self))
      : loop.createTask(() => asyncConsumer(`c${i}`, self));
    consumers.push(task);
  }
  for (let i = 0; i < 5; i++) {
    const victim = consumers[Math.floor(random() * consumers.length)];
    loop.callLater(Math.floor(random() * 8), () => victim.cancel());
  }
  await loop.runUntilComplete(loop.createTask(function* () {
    for (const p of producers) yield* p;
    yield* sleep(20); // quiescence
    // No item may sit there while a consumer still waits for one.
    const stillWaiting = consumers.filter((c) => !c.done()).length;
    assert(
      items === 0 || stillWaiting === 0,
      `seed ${seed}: ${items} items left, ${stillWaiting} consumers waiting`,
    );
    assertEquals(produced - consumed, items);
    for (const c of consumers) c.cancel();
    for (const c of consumers) yield* settle(c);
  }));
  assertFalse(cond.locked(), `seed ${seed}: the lock was lost`);
  assertEquals(holder, null);
  loop.close();
}

Deno.test("Condition never loses a notification nor doubles the lock under random cancellations", async () => {
  for (let seed = 1; seed <= 60; seed++) await conditionScenario(seed);
});

// ---- Scenarios from asyncio's own tests ----

// Counts loop iterations with a callSoon chain: one tick per iteration.
function ticker(loop: VirtualTimeLoop): { n: number; stop(): void } {
  const t = { n: 0, stopped: false, stop: () => t.stopped = true };
  const tick = () => {
    if (t.stopped) return;
    t.n++;
    loop.callSoon(tick);
  };
  loop.callSoon(tick);
  return t;
}

// asyncio's c1, c2, c3: wait once, log `i` when woken, maybe release.
function* waitAndLog(
  cond: Condition,
  i: number,
  log: number[],
  release: boolean,
): Coroutine<boolean> {
  yield* cond.acquire();
  if (yield* cond.wait()) {
    log.push(i);
    if (release) cond.release();
  }
  return true;
}

Deno.test("Condition: notified generator tasks that release in turn all resume in one iteration (asyncio test_notify, test_notify_all)", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    const result: number[] = [];
    const tasks = [1, 2, 3, 4, 5].map((i) =>
      loop.createTask(waitAndLog(cond, i, result, true))
    );
    yield* sleep(0);
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
    assertEquals(result, [1, 2, 3, 4, 5]);
    assert(tasks.every((t) => t.done() && t.result()));
    assertFalse(cond.locked());
  });
});

Deno.test("Condition: a notified generator task takes the lock back when it resumes (asyncio test_wait)", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    const result: number[] = [];
    const tasks = [1, 2, 3].map((i) =>
      loop.createTask(waitAndLog(cond, i, result, false))
    );
    yield* sleep(0);
    assertEquals(result, []);
    assertFalse(cond.locked());
    yield* cond.acquire();
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
    cond.release();
    yield* sleep(0);
    assertEquals(result, [1, 2]);
    cond.release();
    yield* sleep(0);
    assertEquals(result, [1, 2, 3]);
    assert(cond.locked());
    assert(tasks.every((t) => t.done()));
    cond.release();
  });
});

Deno.test("Condition.waitFor() in a generator task runs the predicate in that task", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    let ready = false;
    const seen: unknown[] = [];
    const waiter: Task<string | false> = loop.createTask(function* () {
      yield* cond.acquire();
      try {
        return yield* cond.waitFor(() => {
          seen.push(currentTask() === waiter && cond.locked());
          return ready && "ok";
        });
      } finally {
        cond.release();
      }
    });
    yield* sleep(0);
    for (const value of [false, true]) {
      yield* cond.acquire();
      ready = value;
      cond.notify();
      cond.release();
      yield* sleep(0);
    }
    assertEquals(yield* waiter, "ok");
    assertEquals(seen, [true, true, true]);
  });
});

Deno.test("Condition.wait() future cancelled directly while its generator task waits", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    let f!: Future<true>;
    const seen: string[] = [];
    const waiter = loop.createTask(function* () {
      yield* cond.acquire();
      f = cond.wait();
      try {
        yield* f;
        seen.push("woken");
      } catch (e) {
        seen.push(`${(e as Error).message} locked=${cond.locked()}`);
      } finally {
        cond.release();
      }
    });
    yield* sleep(0);
    yield* cond.acquire();
    assertEquals(Deno.inspect(cond), "Condition locked waiters=1");
    assert(f.cancel("stop"));
    assertEquals(Deno.inspect(cond), "Condition locked");
    cond.notify(); // nobody left to wake
    yield* sleep(0);
    assertFalse(f.done(), "the lock is not back yet");
    cond.release();
    yield* waiter;
    assertEquals(seen, ["stop locked=true"]);
    assert(f.cancelled());
    assertFalse(cond.locked());
  });
});

Deno.test("Condition: a notified waiter resumes one iteration after the release, as an Event waiter does", async () => {
  await run(function* (loop) {
    const ticks = ticker(loop);
    const cond = new Condition(undefined, { loop });
    const event = new Event({ loop });
    let condResumed = -1;
    let eventResumed = -1;
    const w = loop.createTask(function* () {
      yield* cond.acquire();
      yield* cond.wait();
      condResumed = ticks.n;
      cond.release();
    });
    const e = loop.createTask(function* () {
      yield* event.wait();
      eventResumed = ticks.n;
    });
    yield* sleep(0);
    yield* sleep(0);
    yield* cond.acquire();
    cond.notify();
    cond.release();
    const condStart = ticks.n;
    yield* w;
    event.set();
    const eventStart = ticks.n;
    yield* e;
    ticks.stop();
    assertEquals(eventResumed - eventStart, 1);
    assertEquals(condResumed - condStart, eventResumed - eventStart);
  });
});

// ---- Re-entrance: wakeups that arrive inside the waiter's own release ----

// Takes the lock once A (a generator task) and then B (an async function)
// wait on `cond`, and notifies both: A queues for the lock when it resumes,
// B at once by callbacks — so A gets the lock back after us, and its
// give-back hands the lock to B.
function* wakeInTurn(cond: Condition): Coroutine<void> {
  yield* sleep(2);
  yield* cond.acquire();
  cond.notify(1);
  yield* sleep(0);
  yield* sleep(0);
  cond.notify(1);
}

Deno.test("Condition.waitFor() in a generator task woken inside its own give-back still takes the lock back", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    let flag = false;
    const log: string[] = [];
    let bWait!: Future<true>;
    const a = loop.createTask(function* () {
      yield* cond.acquire();
      yield* cond.waitFor(() => {
        log.push(`A pred ${flag}`);
        return flag;
      });
      log.push("A done");
      cond.release();
    });
    const b = loop.createTask(async () => {
      await sleep(1);
      await cond.acquire();
      bWait = cond.wait();
      try {
        await bWait;
      } catch (e) {
        log.push(`B ${(e as Error).name}`);
      }
      flag = true; // the state changes before B lets the lock go
      cond.release();
    });
    yield* wakeInTurn(cond);
    bWait.cancel();
    // A's predicate fails; A's give-back hands the lock to B, whose
    // cancellation passes its notification on to A, still releasing.
    cond.release();
    yield* sleep(1);
    assertEquals(log, [
      "A pred false",
      "A pred false",
      "B CancelledError",
      "A pred true",
      "A done",
    ]);
    assert(a.done() && b.done());
    assertFalse(cond.locked());
  });
});

Deno.test("Condition.waitFor() in a generator task cancelled inside its own give-back still takes the lock back", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    const log: string[] = [];
    let aWait!: Future<boolean>;
    const a = loop.createTask(function* () {
      yield* cond.acquire();
      aWait = cond.waitFor(() => false);
      try {
        yield* aWait;
      } catch (e) {
        log.push(`A ${(e as Error).message} locked=${cond.locked()}`);
      } finally {
        cond.release();
      }
    });
    const b = loop.createTask(async () => {
      await sleep(1);
      await cond.acquire();
      let checks = 0;
      // Checked at once, then inside A's give-back, which hands B the lock.
      await cond.waitFor(() => ++checks > 1 && aWait.cancel("stop"));
      log.push("B done");
      cond.release();
    });
    yield* wakeInTurn(cond);
    cond.release();
    yield* sleep(1);
    assertEquals(log, ["B done", "A stop locked=true"]);
    assert(a.done() && b.done());
    assert(aWait.cancelled());
    assertFalse(cond.locked());
    assertEquals(Deno.inspect(cond), "Condition unlocked");
  });
});

Deno.test("Condition.waitFor() cancelled by its own predicate after a wakeup turns cancelled, the lock held", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    const log: string[] = [];
    const waitCancelledByPredicate = (name: string) => {
      let checks = 0;
      const f: Future<boolean> = cond.waitFor(() =>
        ++checks > 1 && !f.cancel(`${name} stop`)
      );
      return f;
    };
    const inTask = loop.createTask(function* () {
      yield* cond.acquire();
      try {
        yield* waitCancelledByPredicate("gen");
      } catch (e) {
        log.push(`${(e as Error).message} locked=${cond.locked()}`);
      } finally {
        cond.release();
      }
    });
    const awaited = loop.createTask(async () => {
      await cond.acquire();
      try {
        await waitCancelledByPredicate("async");
      } catch (e) {
        log.push(`${(e as Error).message} locked=${cond.locked()}`);
      } finally {
        cond.release();
      }
    });
    yield* sleep(0);
    yield* cond.acquire();
    cond.notifyAll();
    cond.release();
    yield* sleep(1);
    assertEquals(log.sort(), [
      "async stop locked=true",
      "gen stop locked=true",
    ]);
    assert(inTask.done() && awaited.done());
    assertFalse(cond.locked());
    assertEquals(Deno.inspect(cond), "Condition unlocked");
  });
});

// ---- Cases from CPython's test_locks.py (ConditionTests) ----

// Mirrors CPython's ConditionTests.test_wait_cancel_contested.
Deno.test("Condition.wait(): a notified waiter cancelled while the lock is contested still ends holding the lock", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    yield* cond.acquire();
    const waiter = loop.createTask(() => cond.wait());
    yield* sleep(0);
    assertFalse(cond.locked());
    yield* cond.acquire();
    cond.notify();
    loop.callSoon(() => waiter.cancel());
    loop.callSoon(() => cond.release());
    yield* settle(waiter);
    assert(cond.locked(), "the waiter took the lock back, cancelled or not");
  });
});

// Mirrors CPython's ConditionTests.test_cancelled_error_wakeup and
// test_cancelled_error_re_aquire.
for (const where of ["waiting for the notification", "taking the lock back"]) {
  Deno.test(`Condition.waitFor() cancelled while ${where}: the task ends with the very CancelledError the body saw, message kept`, async () => {
    await run(function* (loop) {
      const cond = new Condition(undefined, { loop });
      let wake = false;
      let seen: unknown;
      const task = loop.createTask(async () => {
        await cond.acquire();
        try {
          await cond.waitFor(() => wake);
        } catch (e) {
          seen = e;
          throw e;
        } finally {
          cond.release();
        }
      });
      yield* sleep(0);
      if (where === "taking the lock back") {
        yield* cond.acquire();
        wake = true;
        cond.notify();
        yield* sleep(0);
        task.cancel("foo");
        cond.release();
      } else {
        task.cancel("foo");
      }
      let err: unknown;
      try {
        yield* task;
      } catch (e) {
        err = e;
      }
      assertInstanceOf(err, CancelledError);
      assertEquals((err as Error).message, "foo");
      assertInstanceOf(seen, CancelledError);
      assertEquals((seen as Error).message, "foo");
      assert(err === seen, "the same CancelledError object");
    });
  });
}

// Mirrors CPython's ConditionTests.test_cancelled_wakeup and
// test_cancelled_wakeup_relock.
for (const relock of [false, true]) {
  Deno.test(`Condition.notify(1): a consumer cancelled ${relock ? "while taking the lock back" : "before it runs"} does not lose the wakeup`, async () => {
    await run(function* (loop) {
      const cond = new Condition(undefined, { loop });
      let state = 0;
      const consumer = async () => {
        await cond.acquire();
        try {
          for (;;) {
            await cond.waitFor(() => state !== 0);
            if (state < 0) return;
            state--;
          }
        } finally {
          cond.release();
        }
      };
      const c = [loop.createTask(consumer), loop.createTask(consumer)];
      yield* sleep(0);
      yield* cond.acquire();
      state++;
      cond.notify(1);
      if (relock) yield* sleep(0);
      c[0].cancel();
      try {
        yield* timeout(0.01).scope(function* () {
          yield* cond.waitFor(() => state === 0);
        });
      } catch (e) {
        if (!(e instanceof TimeoutError)) throw e;
      }
      assertEquals(state, 0, "the item was consumed");
      state = -1;
      cond.notifyAll();
      cond.release();
      yield* c[1];
      yield* settle(c[0]);
    });
  });
}

// Mirrors CPython's ConditionTests.test_timeout_in_block.
Deno.test("Condition.wait() timed out by waitFor() inside the held lock fails with TimeoutError, the lock held again", async () => {
  await run(function* (loop) {
    const cond = new Condition(undefined, { loop });
    yield* cond.acquire();
    let err: unknown;
    try {
      yield* waitFor(cond.wait(), 0.5);
    } catch (e) {
      err = e;
    }
    assertInstanceOf(err, TimeoutError);
    assert(cond.locked());
    assertEquals(loop.time(), 0.5);
    cond.release();
  });
});
