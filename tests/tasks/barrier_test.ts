import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { CancelledError } from "../../futures/errors.ts";
import type { Future } from "../../futures/future.ts";
import { Barrier, BrokenBarrierError } from "../../tasks/barrier.ts";
import { gather } from "../../tasks/gather.ts";
import { sleep } from "../../tasks/sleep.ts";
import { type Coroutine, currentTask } from "../../tasks/task.ts";

import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { run } from "../_helpers.ts";

// Waits for a future and returns its error, or undefined.
function* failure(f: Future<unknown>): Coroutine<unknown> {
  try {
    yield* f;
  } catch (e) {
    return e;
  }
  return undefined;
}

Deno.test("Barrier() checks the number of parties", () => {
  assertThrows(() => new Barrier(0), RangeError, "received 0");
  assertThrows(() => new Barrier(2.5), RangeError);
  assertThrows(() => new Barrier("3" as unknown as number), TypeError);
  const b = new Barrier(3);
  assertEquals(b.parties, 3);
  assertEquals(b.nWaiting, 0);
  assertFalse(b.broken);
  assertEquals(
    Object.prototype.toString.call(b),
    "[object Barrier waiting=0/3]",
  );
});

Deno.test("Barrier lets every party pass once the last one arrives", async () => {
  await run(function* (loop) {
    const barrier = new Barrier(3, { loop });
    const passed: number[] = [];
    const parties = [4, 0, 2].map((delay) =>
      loop.createTask(function* () {
        yield* sleep(delay);
        const index = yield* barrier.wait();
        passed.push(loop.time());
        return index;
      })
    );
    yield* sleep(3);
    assertEquals(barrier.nWaiting, 2);
    assertEquals(Deno.inspect(barrier), "Barrier waiting=2/3");
    const indices: number[] = [];
    for (const p of parties) indices.push(yield* p);
    assertEquals(indices, [2, 0, 1], "indices follow the order of arrival");
    assertEquals(passed, [4, 4, 4]);
    assertEquals(barrier.nWaiting, 0);
  });
});

Deno.test("Barrier of one party never waits", async () => {
  await run(function* (loop) {
    const barrier = new Barrier(1, { loop });
    const f = barrier.wait();
    assert(f.done());
    assertEquals(yield* f, 0);
  });
});

Deno.test("Barrier is reusable round after round", async () => {
  await run(function* (loop) {
    const barrier = new Barrier(2, { loop });
    const log: string[] = [];
    function* party(name: string): Coroutine<void> {
      for (let round = 0; round < 3; round++) {
        yield* sleep(name === "a" ? 1 : 2);
        yield* barrier.wait();
        log.push(`${name}${round}@${loop.time()}`);
      }
    }
    const a = loop.createTask(party("a"));
    const b = loop.createTask(party("b"));
    yield* a;
    yield* b;
    // Within a round the last to arrive goes on first: its future was
    // complete before it could wait.
    assertEquals(log, ["b0@2", "a0@2", "b1@4", "a1@4", "b2@6", "a2@6"]);
  });
});

Deno.test("Barrier.wait() in async functions", async () => {
  await run(function* (loop) {
    const barrier = new Barrier(2, { loop });
    const a = loop.createTask(async () => await barrier.wait());
    const b = loop.createTask(async () => {
      await sleep(1);
      return await barrier.wait();
    });
    assertEquals([yield* a, yield* b], [0, 1]);
  });
});

Deno.test("Barrier: a cancelled party leaves the round, which needs one more arrival", async () => {
  await run(function* (loop) {
    const barrier = new Barrier(2, { loop });
    const first = barrier.wait();
    assertEquals(barrier.nWaiting, 1);
    first.cancel();
    assertEquals(barrier.nWaiting, 0);
    const second = barrier.wait();
    yield* sleep(1);
    assertFalse(second.done());
    const third = barrier.wait();
    assertEquals([yield* second, yield* third], [0, 1]);
    assertInstanceOf(yield* failure(first), CancelledError);
  });
});

Deno.test("Barrier.abort() fails the waiters and later waits until reset()", async () => {
  await run(function* (loop) {
    const barrier = new Barrier(3, { loop });
    const w1 = barrier.wait();
    const w2 = barrier.wait();
    barrier.abort();
    assert(barrier.broken);
    assertEquals(barrier.nWaiting, 0);
    assertEquals(Deno.inspect(barrier), "Barrier broken parties=3");
    const e1 = yield* failure(w1);
    assertInstanceOf(e1, BrokenBarrierError);
    assertEquals(
      (e1 as Error).message,
      "Cannot pass a Barrier: it was aborted",
    );
    assertInstanceOf(yield* failure(w2), BrokenBarrierError);
    const late = barrier.wait();
    assert(late.done());
    const e3 = yield* failure(late);
    assertInstanceOf(e3, BrokenBarrierError);
    assertEquals((e3 as Error).message, "Cannot pass a Barrier: it is broken");
    barrier.reset();
    assertFalse(barrier.broken);
    const a = barrier.wait();
    const b = barrier.wait();
    const c = barrier.wait();
    assertEquals([yield* a, yield* b, yield* c], [0, 1, 2]);
  });
});

Deno.test("Barrier.reset() fails the current waiters and starts a new round", async () => {
  await run(function* (loop) {
    const barrier = new Barrier(2, { loop });
    const old = barrier.wait();
    barrier.reset();
    assertFalse(barrier.broken);
    const e = yield* failure(old);
    assertInstanceOf(e, BrokenBarrierError);
    assertEquals((e as Error).name, "BrokenBarrierError");
    assertEquals(
      (e as Error).message,
      "Cannot pass a Barrier: it was reset while waiting",
    );
    const a = barrier.wait();
    const b = barrier.wait();
    assertEquals([yield* a, yield* b], [0, 1]);
  });
});

Deno.test("BrokenBarrierError has a default message", () => {
  const e = new BrokenBarrierError();
  assertEquals(e.message, "Cannot pass a Barrier: it is broken");
  assert(e instanceof Error);
});

// ---- Draining: a round is over once every party of it has resumed ----

Deno.test("Barrier: a party that waits again before its round has drained joins the next round (reset by the last leaves it alone)", async () => {
  await run(function* (loop) {
    const N = 5;
    const barrier = new Barrier(N, { loop });
    const secondOk: boolean[] = [];
    const secondFailed: boolean[] = [];
    const thirdOk: boolean[] = [];
    let count = 0;
    const party = async () => {
      await barrier.wait();
      count++;
      if (count === N) {
        barrier.reset(); // the last to leave: nobody is inside any more
        await barrier.wait();
      } else {
        try {
          await barrier.wait(); // blocked until the round has drained
          secondOk.push(true);
        } catch {
          secondFailed.push(true);
        }
      }
      await barrier.wait();
      thirdOk.push(true);
    };
    const tasks = Array.from({ length: N }, () => loop.createTask(party));
    for (const t of tasks) yield* t;
    assertEquals(secondOk.length, N - 1);
    assertEquals(secondFailed.length, 0);
    assertEquals(thirdOk.length, N);
    assertFalse(barrier.broken);
    assertEquals(barrier.nWaiting, 0);
  });
});

Deno.test("Barrier.reset() or abort() while a round drains fails the parties that have not resumed", async () => {
  // As asyncio's test_{reset,abort}_barrier_when_tasks_half_draining_half_blocking:
  // the third party to resume resets or aborts; the two after it had not
  // resumed, the two before it wait for the next round (which a reset
  // leaves alone and an abort breaks).
  for (const action of ["reset", "abort"] as const) {
    for (const style of ["generator", "async"] as const) {
      await run(function* (loop) {
        const N = 5;
        const blocking = 2;
        const barrier = new Barrier(N, { loop });
        const brokenFirst: boolean[] = [];
        const brokenSecond: boolean[] = [];
        let count = 0;
        const again = action === "reset";
        function* partyGen(): Coroutine<void> {
          try {
            yield* barrier.wait();
          } catch (e) {
            assertInstanceOf(e, BrokenBarrierError);
            brokenFirst.push(true);
            if (again) yield* barrier.wait();
            return;
          }
          if (++count > blocking) {
            barrier[action]();
            if (again) yield* barrier.wait();
            return;
          }
          try {
            yield* barrier.wait();
          } catch (e) {
            assertInstanceOf(e, BrokenBarrierError);
            brokenSecond.push(true);
          }
        }
        const partyAsync = async () => {
          try {
            await barrier.wait();
          } catch (e) {
            assertInstanceOf(e, BrokenBarrierError);
            brokenFirst.push(true);
            if (again) await barrier.wait();
            return;
          }
          if (++count > blocking) {
            barrier[action]();
            if (again) await barrier.wait();
            return;
          }
          try {
            await barrier.wait();
          } catch (e) {
            assertInstanceOf(e, BrokenBarrierError);
            brokenSecond.push(true);
          }
        };
        const tasks = Array.from(
          { length: N },
          () =>
            loop.createTask(style === "generator" ? partyGen() : partyAsync),
        );
        for (const t of tasks) yield* t;
        const what = `${action}, ${style}`;
        assertEquals(brokenFirst, [true, true], what);
        assertEquals(brokenSecond, again ? [] : [true, true], what);
        assertEquals(barrier.broken, !again, what);
        assertEquals(barrier.nWaiting, 0);
      });
    }
  }
});

Deno.test("Barrier: the last party of a round to resume finds it filling again, the others find it draining (test_draining_state)", async () => {
  for (const style of ["generator", "async"] as const) {
    await run(function* (loop) {
      const N = 5;
      const barrier = new Barrier(N, { loop });
      const draining: boolean[] = [];
      const seen = () => String(barrier).includes("draining");
      function* partyGen(): Coroutine<void> {
        yield* barrier.wait();
        draining.push(seen());
      }
      const partyAsync = async () => {
        await barrier.wait();
        draining.push(seen());
      };
      const tasks = Array.from(
        { length: N },
        () => loop.createTask(style === "generator" ? partyGen() : partyAsync),
      );
      for (const t of tasks) yield* t;
      assertEquals(draining, [true, true, true, true, false], style);
      assertEquals(barrier.nWaiting, 0);
      assertFalse(barrier.broken);
    });
  }
});

Deno.test("Barrier: the last party to resume may reset it at once, failing nobody, and everyone passes again", async () => {
  await run(function* (loop) {
    const N = 3;
    const barrier = new Barrier(N, { loop });
    const passed: number[] = [];
    let resumed = 0;
    const party = async () => {
      await barrier.wait();
      if (++resumed === N) {
        assertEquals(barrier.nWaiting, 0);
        barrier.reset(); // nobody is inside: nothing to fail
      }
      passed.push(await barrier.wait());
    };
    const tasks = Array.from({ length: N }, () => loop.createTask(party));
    for (const t of tasks) yield* t;
    assertEquals(passed.toSorted(), [0, 1, 2]);
    assertFalse(barrier.broken);
  });
});

// The state a task finds, from the description ("waiting" is filling).
const state = (b: Barrier) => {
  const w = String(b).replace(/^\[object Barrier (\w+).*$/, "$1");
  return w === "waiting" ? "filling" : w;
};

// asyncio: reset() while a round drains: the parties not yet resumed raise
// BrokenBarrierError, and the last of them to leave wait() sets the barrier
// FILLING (Barrier._exit with _count == 0) — it sees "filling", as the last
// party of test_draining_state does.
for (const style of ["generator", "async"] as const) {
  Deno.test(`Barrier (${style} tasks): reset() by the opener of a round: the last party it fails finds the barrier filling, as in asyncio`, async () => {
    const loop = new VirtualTimeLoop();
    const N = 3;
    const barrier = new Barrier(N, { loop });
    const seen: string[] = [];
    const after = (i: number) => {
      if (i === N - 1) barrier.reset(); // the opener resumes first
    };
    const gen = function* (): Coroutine<void> {
      try {
        after(yield* barrier.wait());
      } catch (e) {
        assertInstanceOf(e, BrokenBarrierError);
        seen.push(state(barrier));
      }
    };
    const asy = async () => {
      try {
        after(await barrier.wait());
      } catch (e) {
        assertInstanceOf(e, BrokenBarrierError);
        seen.push(state(barrier));
      }
    };
    const tasks = Array.from(
      { length: N },
      () => loop.createTask(style === "generator" ? gen() : asy),
    );
    for (const t of tasks) await loop.runUntilComplete(t);
    assertEquals(seen, ["resetting", "filling"]);
    loop.close();
  });
}

// asyncio: abort() while draining, everyone has left (count 0), then reset():
// FILLING at once (Barrier.reset: `_count == 0` branch).
Deno.test("Barrier: reset() after abort() once every party of the round has left is filling at once, as in asyncio", async () => {
  const loop = new VirtualTimeLoop();
  const N = 3;
  const barrier = new Barrier(N, { loop });
  const seen: string[] = [];
  let failed = 0;
  const asy = async () => {
    try {
      const i = await barrier.wait();
      if (i === N - 1) barrier.abort();
    } catch (e) {
      assertInstanceOf(e, BrokenBarrierError);
      if (++failed === N - 1) {
        barrier.reset(); // nobody is inside any more
        seen.push(state(barrier));
      }
    }
  };
  const tasks = Array.from({ length: N }, () => loop.createTask(asy));
  for (const t of tasks) await loop.runUntilComplete(t);
  assertEquals(seen, ["filling"]);
  loop.close();
});

// A released party whose task is cancelled before it resumes still leaves
// the round (asyncio: its wait()'s finally runs _exit). Generator and async
// tasks should agree on when the round ends.
Deno.test("Barrier: a released party cancelled before it resumes leaves the round alike in async and generator tasks", async () => {
  const out: Record<string, string> = {};
  for (const style of ["generator", "async"] as const) {
    const loop = new VirtualTimeLoop();
    const barrier = new Barrier(2, { loop });
    const gen = function* (): Coroutine<void> {
      yield* barrier.wait();
    };
    const asy = async () => {
      await barrier.wait();
    };
    const first = loop.createTask(style === "generator" ? gen() : asy); // index 0: released second
    await loop.runUntilComplete(loop.createTask(async () => {}));
    const opener = loop.createTask(async () => {
      await barrier.wait();
      // index 0 is released too, and resumes in the next iteration:
      // cancel it now, before it resumes, and look after it has had its
      // turn.
      first.cancel();
      loop.callSoon(() => {
        loop.callSoon(() => {
          out[style] = state(barrier);
        });
      });
    });
    await loop.runUntilComplete(opener);
    await assertRejects(() => loop.runUntilComplete(first), CancelledError);
    loop.close();
  }
  assertEquals(out.async, out.generator);
});

// asyncio (3.11 and 3.13 alike): the opener goes on at once, and the
// condition's notify_all() wakes every other party of the round for the
// next iteration, where each takes the free lock and leaves wait() — they
// do not pass one per iteration.
for (const style of ["generator", "async"] as const) {
  Deno.test(`Barrier (${style} tasks): the other parties of a round resume together in the iteration after the opener, as in asyncio`, async () => {
    await run(function* (loop) {
      const barrier = new Barrier(4, { loop });
      const log: string[] = [];
      const gen = function* (n: number): Coroutine<void> {
        for (let i = 0; i < n; i++) yield* sleep(0);
        log.push(`party ${n} passes with ${yield* barrier.wait()}`);
      };
      const asy = async (n: number) => {
        for (let i = 0; i < n; i++) await sleep(0);
        log.push(`party ${n} passes with ${await barrier.wait()}`);
      };
      const ticker = loop.createTask(function* () {
        for (let i = 0; i < 6; i++) {
          log.push(`tick ${i}`);
          yield* sleep(0);
        }
      });
      const parties = [0, 1, 2, 3].map((n) =>
        loop.createTask(style === "generator" ? gen(n) : () => asy(n))
      );
      for (const p of parties) yield* p;
      yield* ticker;
      assertEquals(log, [
        "tick 0",
        "tick 1",
        "tick 2",
        "tick 3",
        "party 3 passes with 3",
        "tick 4",
        "party 0 passes with 0",
        "party 1 passes with 1",
        "party 2 passes with 2",
        "tick 5",
      ]);
    });
  });
}

// asyncio: reset() while parties wait makes the barrier RESETTING; they
// raise BrokenBarrierError when they resume, and the last to leave sets it
// FILLING again. A party arriving meanwhile waits for that (Barrier._block)
// instead of joining the parties that are failing.
Deno.test("Barrier: reset() while parties wait is resetting until they have left, as in asyncio", async () => {
  await run(function* (loop) {
    const barrier = new Barrier(2, { loop });
    const log: unknown[] = [];
    const waiter = (n: number) =>
      loop.createTask(function* () {
        try {
          log.push([n, yield* barrier.wait()]);
        } catch (e) {
          assertInstanceOf(e, BrokenBarrierError);
          log.push([n, "broken", barrier.nWaiting]);
        }
      });
    const first = waiter(0);
    yield* sleep(0);
    barrier.reset();
    log.push(["after reset", barrier.nWaiting, state(barrier)]);
    const second = waiter(1);
    yield* sleep(0);
    log.push(["next", barrier.nWaiting, state(barrier)]);
    const third = waiter(2);
    for (const t of [first, second, third]) yield* t;
    assertEquals(log, [
      ["after reset", 0, "resetting"],
      [0, "broken", 0],
      ["next", 1, "filling"],
      [2, 1],
      [1, 0],
    ]);
  });
});

// asyncio: the last party to leave a round sets the barrier FILLING, so if
// it calls wait() again at once it arrives before the parties that waited
// for the round to drain: they arrive only when they run.
Deno.test("Barrier: a party that leaves a round and waits again at once arrives before those that waited for the round to drain, as in asyncio", async () => {
  await run(function* (loop) {
    const barrier = new Barrier(2, { loop });
    const log: number[][] = [];
    const twice = (n: number) =>
      loop.createTask(function* () {
        for (let i = 0; i < 2; i++) log.push([n, yield* barrier.wait()]);
      });
    const tasks = [twice(0), twice(1)];
    for (const t of tasks) yield* t;
    assertEquals(log, [[1, 1], [0, 0], [1, 1], [0, 0]]);
  });
});

// asyncio: the last party to leave a round notifies the parties that
// waited for the drain; they look at the barrier when they run. If it
// aborts and resets the barrier at once, they arrive in the reset barrier
// rather than fail.
Deno.test("Barrier: a party that waited for a drain arrives in a barrier aborted and reset before it ran, as in asyncio", async () => {
  await run(function* (loop) {
    const barrier = new Barrier(2, { loop });
    const log: unknown[] = [];
    const first = loop.createTask(function* () {
      log.push(["first", yield* barrier.wait()]);
      barrier.abort();
      barrier.reset();
    });
    const second = loop.createTask(function* () {
      log.push(["second", yield* barrier.wait()]);
    });
    const late = loop.createTask(function* () {
      log.push(["late", yield* barrier.wait()]);
    });
    for (let i = 0; i < 3; i++) yield* sleep(0);
    log.push(["waiting", barrier.nWaiting, barrier.broken]);
    yield* first;
    yield* second;
    late.cancel();
    assertInstanceOf(yield* failure(late), CancelledError);
    assertEquals(log, [["second", 1], ["first", 0], ["waiting", 1, false]]);
  });
});

// asyncio: the party whose arrival opens the barrier never suspends in
// wait(), so a cancellation of its task pending from before is delivered
// at its next wait, not instead of its index (as for an uncontended
// Lock.acquire()); generator and async tasks alike.
for (const style of ["generator", "async"] as const) {
  Deno.test(`Barrier (${style} tasks): the opener passes with its index though its task has a cancellation pending, as in asyncio`, async () => {
    await run(function* (loop) {
      const barrier = new Barrier(2, { loop });
      const waiting = loop.createTask(function* () {
        return yield* barrier.wait();
      });
      yield* sleep(0);
      const seen: unknown[] = [];
      const opener = style === "async"
        ? loop.createTask(async () => {
          currentTask()!.cancel();
          seen.push(await barrier.wait());
          await sleep(0);
        })
        : loop.createTask(function* () {
          currentTask()!.cancel();
          seen.push(yield* barrier.wait());
          yield* sleep(0);
        });
      assertInstanceOf(yield* failure(opener), CancelledError);
      assertEquals(seen, [1]);
      assertEquals(yield* waiting, 0);
    });
  });
}

// ---- Cases from CPython's test_locks.py (BarrierTests) ----

const N = 5;

function* runAll(
  loop: VirtualTimeLoop,
  party: () => Promise<void>,
): Coroutine<void> {
  yield* gather(Array.from({ length: N }, () => loop.createTask(party)));
}

// Mirrors CPython's BarrierTests.test_blocking_tasks_while_draining.
Deno.test("Barrier: parties that wait again at once are held until the round has drained, the others pass a second barrier", async () => {
  await run(function* (loop) {
    const barrier = new Barrier(N, { loop });
    const others = new Barrier(N - 2, { loop });
    let again = 2;
    yield* runAll(loop, async () => {
      await barrier.wait();
      if (again > 0) {
        again--;
        await barrier.wait();
      } else {
        await others.wait();
        await barrier.wait();
      }
    });
    assertEquals(barrier.nWaiting, 0);
    assertEquals(loop.time(), 0);
  });
});

// Mirrors CPython's BarrierTests.test_reset_barrier_when_tasks_half_draining_half_blocking.
Deno.test("Barrier.reset() by a released party fails only the parties already waiting for the next round", async () => {
  await run(function* (loop) {
    const barrier = new Barrier(N, { loop });
    const blocking = Math.floor(N / 2);
    let passed = 0;
    let brokenFirst = 0;
    let brokenSecond = 0;
    yield* runAll(loop, async () => {
      try {
        await barrier.wait();
      } catch (e) {
        if (!(e instanceof BrokenBarrierError)) throw e;
        brokenFirst++;
        await barrier.wait();
        return;
      }
      passed++;
      if (passed > blocking) {
        barrier.reset();
        await barrier.wait();
      } else {
        try {
          await barrier.wait();
        } catch (e) {
          if (!(e instanceof BrokenBarrierError)) throw e;
          brokenSecond++;
        }
      }
    });
    assertEquals(brokenFirst, blocking);
    assertEquals(brokenSecond, 0);
    assertEquals(barrier.nWaiting, 0);
    assertFalse(Deno.inspect(barrier).includes("resetting"));
    assertFalse(barrier.broken);
  });
});

// Mirrors CPython's BarrierTests.test_abort_barrier_when_tasks_half_draining_half_blocking.
Deno.test("Barrier.abort() by a released party fails the parties waiting again and those that have not resumed", async () => {
  await run(function* (loop) {
    const barrier = new Barrier(N, { loop });
    const blocking = Math.floor(N / 2);
    let passed = 0;
    let brokenFirst = 0;
    let brokenSecond = 0;
    yield* runAll(loop, async () => {
      try {
        await barrier.wait();
      } catch (e) {
        if (!(e instanceof BrokenBarrierError)) throw e;
        brokenFirst++;
        return;
      }
      passed++;
      if (passed > blocking) {
        barrier.abort();
      } else {
        try {
          await barrier.wait();
        } catch (e) {
          if (!(e instanceof BrokenBarrierError)) throw e;
          brokenSecond++;
        }
      }
    });
    assert(barrier.broken);
    assertEquals(brokenFirst, blocking);
    assertEquals(brokenSecond, N - blocking - 1);
    assertEquals(barrier.nWaiting, 0);
    assertFalse(Deno.inspect(barrier).includes("resetting"));
  });
});

// Mirrors CPython's BarrierTests.test_abort_barrier_when_exception and
// test_abort_barrier_when_exception_then_resetting.
Deno.test("Barrier: a party that fails after the first round aborts the barrier for all others; a reset between two syncs makes it usable again", async () => {
  await run(function* (loop) {
    const b1 = new Barrier(N, { loop });
    const b2 = new Barrier(N, { loop });
    let second = 0;
    let broken = 0;
    let last = 0;
    yield* runAll(loop, async () => {
      try {
        const i = await b1.wait();
        if (i === Math.floor(N / 2)) throw new RangeError("party failed");
        await b1.wait();
        second++;
      } catch (e) {
        if (e instanceof BrokenBarrierError) broken++;
        else if (e instanceof RangeError) b1.abort();
        else throw e;
      }
      const j = await b2.wait();
      if (j === Math.floor(N / 2)) b1.reset();
      await b2.wait();
      await b1.wait();
      last++;
    });
    assertEquals(second, 0);
    assertEquals(broken, N - 1);
    assertEquals(last, N);
    assertFalse(b1.broken);
    assertEquals(b1.nWaiting, 0);
  });
});
