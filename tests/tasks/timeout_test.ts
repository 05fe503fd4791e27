import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  CancelledError,
  InvalidStateError,
  TimeoutError,
} from "../../futures/errors.ts";
import { Future } from "../../futures/future.ts";
import { sleep } from "../../tasks/sleep.ts";
import { type Coroutine, currentTask, Task } from "../../tasks/task.ts";
import { type Timeout, timeout, timeoutAt } from "../../tasks/timeout.ts";
import { withTaskGroup } from "../../tasks/task_group.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { assertCancelledAfter } from "../_helpers.ts";

// ---- Generator scopes ----

Deno.test("timeout().scope() turns its own cancellation into TimeoutError at the deadline", async () => {
  const loop = new VirtualTimeLoop();
  let t: Timeout | undefined;
  function* main(): Coroutine<unknown> {
    t = timeout(30);
    try {
      yield* t.scope(function* () {
        yield* sleep(3600);
      });
    } catch (e) {
      return e;
    }
  }
  const err = await loop.runUntilComplete(main());
  assertInstanceOf(err, TimeoutError);
  assertInstanceOf((err as Error).cause, CancelledError);
  assertEquals(loop.time(), 30);
  assert(t!.expired());
  loop.close();
});

Deno.test("timeout().scope() returns the body's value when it finishes in time", async () => {
  const loop = new VirtualTimeLoop();
  const t = timeout(10, { loop });
  const main = loop.createTask(function* (): Coroutine<string> {
    const v = yield* t.scope(function* () {
      return yield* sleep(1, "quick");
    });
    // The timer is disarmed: waiting past the deadline is fine.
    yield* sleep(20);
    return v;
  });
  assertEquals(await loop.runUntilComplete(main), "quick");
  assertFalse(t.expired());
  assertEquals(loop.time(), 21);
  loop.close();
});

Deno.test("timeout().scope() raises TimeoutError only after the body's cleanup", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const main = loop.createTask(function* (): Coroutine<void> {
    yield* timeout(5).scope(function* () {
      try {
        yield* sleep(60);
      } finally {
        log.push(`cleanup from ${loop.time()}`);
        yield* sleep(2);
        log.push(`cleanup done ${loop.time()}`);
      }
    });
  });
  await assertRejects(() => loop.runUntilComplete(main), TimeoutError);
  assertEquals(log, ["cleanup from 5", "cleanup done 7"]);
  assertEquals(loop.time(), 7);
  loop.close();
});

Deno.test("timeout().scope() passes other errors through unchanged", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<void> {
    yield* timeout(5).scope(function* () {
      yield* sleep(1);
      throw new RangeError("bad");
    });
  });
  await assertRejects(() => loop.runUntilComplete(main), RangeError, "bad");
  loop.close();
});

Deno.test("timeout().scope() returns normally when the body swallows the cancellation", async () => {
  const loop = new VirtualTimeLoop();
  const t = timeout(1, { loop });
  const main = loop.createTask(function* (): Coroutine<[string, number]> {
    const v = yield* t.scope(function* () {
      try {
        yield* sleep(60);
      } catch {
        // refused
      }
      return "refused";
    });
    // The scope's cancellation was withdrawn: the task waits on.
    yield* sleep(1);
    return [v, currentTask()!.cancelling()];
  });
  assertEquals(await loop.runUntilComplete(main), ["refused", 0]);
  assert(t.expired());
  assertFalse(main.cancelled());
  loop.close();
});

Deno.test("timeout().scope() in a coroutine created outside any task enters when it starts", async () => {
  const loop = new VirtualTimeLoop();
  const t = timeout(2, { loop });
  const coro = t.scope(function* () {
    yield* sleep(10);
  });
  await assertRejects(() => loop.runUntilComplete(coro), TimeoutError);
  assertEquals(loop.time(), 2);
  loop.close();
});

// ---- Async-function scopes ----

Deno.test("timeout().scope() with an async body works in an async-function task", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const fast = await timeout(5).scope(async () => await sleep(1, "fast"));
    try {
      await timeout(5).scope(async () => {
        await sleep(60);
      });
    } catch (e) {
      return [fast, (e as Error).name, loop.time()];
    }
  });
  assertEquals(await loop.runUntilComplete(main), ["fast", "TimeoutError", 6]);
  loop.close();
});

Deno.test("timeout(0).scope() around await sleep(0) raises TimeoutError", async () => {
  const loop = new VirtualTimeLoop();
  let t: Timeout | undefined;
  const main = loop.createTask(async () => {
    t = timeout(0);
    await t.scope(async () => {
      await sleep(0);
    });
  });
  await assertRejects(() => loop.runUntilComplete(main), TimeoutError);
  assert(t!.expired());
  loop.close();
});

Deno.test("timeoutAt() a past deadline around await sleep(0) raises TimeoutError", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    await sleep(5);
    await timeoutAt(loop.time() - 1).scope(async () => {
      await sleep(0);
    });
  });
  await assertRejects(() => loop.runUntilComplete(main), TimeoutError);
  loop.close();
});

Deno.test("timeout(0).scope() around yield* sleep(0) raises TimeoutError", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<void> {
    yield* timeout(0).scope(function* () {
      yield* sleep(0);
    });
  });
  await assertRejects(() => loop.runUntilComplete(main), TimeoutError);
  loop.close();
});

Deno.test("timeout().scope() with an async body outside a task throws InvalidStateError", async () => {
  const loop = new VirtualTimeLoop();
  const t = timeout(1, { loop });
  assertThrows(
    () => t.scope(async () => await Promise.resolve(1)),
    InvalidStateError,
    "inside a task",
  );
  await loop.advance(0);
  loop.close();
});

Deno.test("Timeout.enter() and exit() work as a hand-written scope", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const t = timeout(3);
    t.enter();
    try {
      await sleep(10);
    } catch (e) {
      const out = t.exit(e);
      return [(out as Error).name, t.expired()];
    }
    t.exit();
    return ["finished", t.expired()];
  });
  assertEquals(await loop.runUntilComplete(main), ["TimeoutError", true]);
  loop.close();
});

Deno.test("Timeout.exit() without an error after expiry withdraws the pending cancellation", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const task = currentTask()!;
    const t = timeout(1);
    t.enter();
    // A foreign promise cannot be interrupted: the timeout fires at 1 while
    // the task waits for it, and the cancellation stays pending.
    await new Promise<void>((resolve) => loop.callLater(2, resolve));
    const during = task.cancelling();
    assertEquals(t.exit(), undefined);
    assert(t.expired());
    await sleep(1); // not cancelled: the request was withdrawn
    return [during, task.cancelling(), loop.time()];
  });
  assertEquals(await loop.runUntilComplete(main), [1, 0, 3]);
  loop.close();
});

// ---- run() ----

Deno.test("Timeout.run() accepts a future, a coroutine, a promise and an async function", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const a = await timeout(5).run(sleep(1, "future"));
    const b = await timeout(5).run((function* (): Coroutine<string> {
      return yield* sleep(1, "coroutine");
    })());
    const c = await timeout(5).run(Promise.resolve("promise"));
    const d = await timeout(5).run(async () => await sleep(1, "async"));
    return [a, b, c, d];
  });
  assertEquals(await loop.runUntilComplete(main), [
    "future",
    "coroutine",
    "promise",
    "async",
  ]);
  loop.close();
});

Deno.test("Timeout.run() cancels an async function and fails once it has finished", async () => {
  const loop = new VirtualTimeLoop();
  let finishedAt = -1;
  const work = async () => {
    try {
      await sleep(60);
    } finally {
      await sleep(1);
      finishedAt = loop.time();
    }
  };
  const fut = timeout(10, { loop }).run(work);
  await assertRejects(() => loop.runUntilComplete(fut), TimeoutError);
  assertEquals([finishedAt, loop.time()], [11, 11]);
  loop.close();
});

Deno.test("Timeout.run() from a generator coroutine", async () => {
  const loop = new VirtualTimeLoop();
  function* main(): Coroutine<string> {
    try {
      yield* timeout(1).run(sleep(2));
    } catch (e) {
      if (e instanceof TimeoutError) return "timed out";
    }
    return "no";
  }
  assertEquals(await loop.runUntilComplete(main()), "timed out");
  loop.close();
});

Deno.test("Timeout.run(): cancelling the returned future cancels the work, without TimeoutError", async () => {
  const loop = new VirtualTimeLoop();
  const inner = sleep(60, undefined, { loop });
  const fut = timeout(10, { loop }).run(inner);
  await assertCancelledAfter(loop, fut, 3);
  assert(inner.cancelled());
  assertEquals(loop.time(), 3);
  loop.close();
});

// ---- Cooperation with other cancellations ----

Deno.test("timeout() never swallows an outer cancellation", async () => {
  const loop = new VirtualTimeLoop();
  const t = timeout(5, { loop });
  const main = loop.createTask(function* (): Coroutine<void> {
    yield* t.scope(function* () {
      yield* sleep(60);
    });
  });
  await assertCancelledAfter(loop, main, 2);
  assertFalse(t.expired());
  assertEquals(loop.time(), 2);
  loop.close();
});

Deno.test("timeout() keeps an outer cancellation that arrives with the deadline", async () => {
  const loop = new VirtualTimeLoop();
  const t = timeout(5, { loop });
  const main = loop.createTask(function* (): Coroutine<void> {
    yield* t.scope(function* () {
      yield* sleep(60);
    });
  });
  // At the very time of the deadline.
  loop.callAt(5, () => main.cancel());
  await assertRejects(() => loop.runUntilComplete(main), CancelledError);
  assert(t.expired());
  assertEquals(main.cancelling(), 1);
  loop.close();
});

Deno.test("timeout() keeps an outer cancellation of an async-function task", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    await timeout(5).scope(async () => {
      await sleep(60);
    });
  });
  await assertCancelledAfter(loop, main, 5);
  assert(main.cancelled());
  loop.close();
});

// asyncio enters `async with timeout()` before the block runs: a
// cancellation the block makes before its first wait is an outside one.
Deno.test("timeout().scope() with an async body is entered before the body runs: its own cancellation is not a timeout", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const t = timeout(1);
    const log: string[] = [];
    try {
      await t.scope(async () => {
        log.push(Object.prototype.toString.call(t));
        currentTask()!.cancel();
        try {
          await sleep(2);
        } catch (e) {
          log.push(`swallowed ${(e as Error).name}`);
        }
        await sleep(2); // the deadline passes here
      });
    } catch (e) {
      log.push(`${(e as Error).name} expired=${t.expired()}`);
    }
    return log;
  });
  assertEquals(await loop.runUntilComplete(main), [
    "[object Timeout active]",
    "swallowed CancelledError",
    "CancelledError expired=true",
  ]);
  loop.close();
});

Deno.test("timeout().scope() exits when the body throws before returning its promise", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const t = timeout(1);
    const bad = (): Promise<void> => {
      throw new RangeError("at once");
    };
    assertThrows(() => t.scope(bad), RangeError, "at once");
    assertEquals(Deno.inspect(t), "Timeout finished when=1");
    await sleep(5); // the timer was disarmed
  });
  await loop.runUntilComplete(main);
  loop.close();
});

// asyncio's test_timeout_after_cancellation and
// test_cancel_in_timeout_after_cancellation: a task that swallowed a
// cancellation (still counted) can time out its cleanup, and a new
// cancellation inside that cleanup's timeout is not a timeout.
Deno.test("timeout() in the cleanup after a swallowed cancellation times out, and a new cancellation in it goes on", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const log: string[] = [];
    try {
      currentTask()!.cancel();
      await sleep(1);
    } catch {
      // swallowed: cancelling() stays 1
    } finally {
      try {
        await timeout(0).scope(async () => await sleep(1));
      } catch (e) {
        log.push((e as Error).name);
      }
      try {
        await timeout(1).scope(async () => {
          currentTask()!.cancel();
          await sleep(2);
        });
      } catch (e) {
        log.push((e as Error).name);
      }
    }
    return log;
  });
  assertEquals(await loop.runUntilComplete(main), [
    "TimeoutError",
    "CancelledError",
  ]);
  loop.close();
});

Deno.test("timeout() in a generator cleanup after a swallowed cancellation times out", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<string> {
    try {
      currentTask()!.cancel();
      yield* sleep(1);
    } catch {
      // swallowed
    }
    try {
      yield* timeout(0).scope(function* () {
        yield* sleep(1);
      });
    } catch (e) {
      return (e as Error).name;
    }
    return "no timeout";
  });
  assertEquals(await loop.runUntilComplete(main), "TimeoutError");
  loop.close();
});

Deno.test("Timeout.reschedule() while the scope's cancellation is on its way throws InvalidStateError (test_timeout_expiring)", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    await timeout(1).scope(async (t) => {
      await assertRejects(() => sleep(10), CancelledError);
      assertThrows(() => t.reschedule(5), InvalidStateError, "expiring");
    });
    return loop.time();
  });
  assertEquals(await loop.runUntilComplete(main), 1);
  loop.close();
});

Deno.test("nested timeout in the cleanup of an expired one: each reports its own TimeoutError (test_nested_timeout_in_finally)", async () => {
  for (const style of ["async", "generator"] as const) {
    const loop = new VirtualTimeLoop();
    const log: string[] = [];
    const main = style === "async"
      ? loop.createTask(async () => {
        await timeout(1).scope(async () => {
          try {
            await sleep(10);
          } finally {
            try {
              await timeout(1).scope(async () => await sleep(10));
            } catch (e) {
              log.push(`inner ${(e as Error).name} at ${loop.time()}`);
            }
          }
        });
      })
      : loop.createTask(function* (): Coroutine<void> {
        yield* timeout(1).scope(function* () {
          try {
            yield* sleep(10);
          } finally {
            try {
              yield* timeout(1).scope(function* () {
                yield* sleep(10);
              });
            } catch (e) {
              log.push(`inner ${(e as Error).name} at ${loop.time()}`);
            }
          }
        });
      });
    const err = await loop.runUntilComplete(main).catch((e) => e);
    assertInstanceOf(err, TimeoutError, style);
    assertEquals(log, ["inner TimeoutError at 2"], style);
    assertEquals(main.cancelling(), 0, style);
    loop.close();
  }
});

Deno.test("Timeout.reschedule() from outside the task, then a cancellation from outside: not expired (test_reschedule)", async () => {
  const loop = new VirtualTimeLoop();
  const entered = new Future<Timeout>({ loop });
  const main = loop.createTask(async () => {
    await timeoutAt(10).scope(async (t) => {
      entered.setResult(t);
      await sleep(50);
    });
  });
  const t = await loop.runUntilComplete(entered);
  assertEquals(t.when(), 10);
  t.reschedule(30);
  assertEquals(t.when(), 30);
  t.reschedule(null);
  assertEquals(t.when(), null);
  await assertCancelledAfter(loop, main, 40);
  assertFalse(t.expired());
  loop.close();
});

Deno.test("nested timeouts: when the outer fires, the outer one reports", async () => {
  const loop = new VirtualTimeLoop();
  const outer = timeout(1, { loop });
  const inner = timeout(5, { loop });
  const seen: string[] = [];
  const main = loop.createTask(function* (): Coroutine<void> {
    yield* outer.scope(function* () {
      try {
        yield* inner.scope(function* () {
          yield* sleep(60);
        });
      } catch (e) {
        seen.push((e as Error).name);
        throw e;
      }
    });
  });
  await assertRejects(() => loop.runUntilComplete(main), TimeoutError);
  assertEquals(seen, ["CancelledError"]);
  assert(outer.expired());
  assertFalse(inner.expired());
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("nested timeouts: when the inner fires, the outer scope goes on", async () => {
  const loop = new VirtualTimeLoop();
  const outer = timeout(10, { loop });
  const main = loop.createTask(function* (): Coroutine<string> {
    return yield* outer.scope(function* () {
      try {
        yield* timeout(1).scope(function* () {
          yield* sleep(60);
        });
      } catch (e) {
        if (!(e instanceof TimeoutError)) throw e;
      }
      return yield* sleep(2, "outer finished");
    });
  });
  assertEquals(await loop.runUntilComplete(main), "outer finished");
  assertFalse(outer.expired());
  assertEquals(loop.time(), 3);
  loop.close();
});

Deno.test("nested timeouts with the same deadline: the inner lets the cancellation through", async () => {
  const loop = new VirtualTimeLoop();
  const outer = timeout(2, { loop });
  const inner = timeout(2, { loop });
  let innerSaw = "";
  const main = loop.createTask(function* (): Coroutine<void> {
    yield* outer.scope(function* () {
      try {
        yield* inner.scope(function* () {
          yield* sleep(60);
        });
      } catch (e) {
        innerSaw = (e as Error).name;
        throw e;
      }
    });
  });
  await assertRejects(() => loop.runUntilComplete(main), TimeoutError);
  assertEquals(innerSaw, "CancelledError");
  assert(outer.expired() && inner.expired());
  assertEquals(main.cancelling(), 0);
  loop.close();
});

Deno.test("nested async timeouts: when the outer fires, the outer one reports", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    await timeout(1).scope(async () => {
      await timeout(5).scope(async () => {
        await sleep(60);
      });
    });
  });
  await assertRejects(() => loop.runUntilComplete(main), TimeoutError);
  assertEquals(loop.time(), 1);
  loop.close();
});

// ---- Deadlines ----

Deno.test("Timeout.reschedule() moves the deadline later and earlier", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<number> {
    const t = timeout(1);
    try {
      yield* t.scope(function* () {
        t.reschedule(loop.time() + 10);
        yield* sleep(5);
        t.reschedule(loop.time() + 1);
        yield* sleep(60);
      });
    } catch (e) {
      if (!(e instanceof TimeoutError)) throw e;
    }
    return loop.time();
  });
  assertEquals(await loop.runUntilComplete(main), 6);
  loop.close();
});

Deno.test("Timeout.reschedule() to the past fires on the next turn, null disarms", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<string[]> {
    const out: string[] = [];
    const t = timeout(1);
    yield* t.scope(function* () {
      t.reschedule(null);
      yield* sleep(30);
    });
    out.push(`disarmed ${loop.time()} ${t.when()}`);
    const u = timeout(100);
    try {
      yield* u.scope(function* () {
        u.reschedule(loop.time() - 1);
        yield* sleep(30);
      });
    } catch (e) {
      out.push(`${(e as Error).name} ${loop.time()}`);
    }
    return out;
  });
  assertEquals(await loop.runUntilComplete(main), [
    "disarmed 30 null",
    "TimeoutError 30",
  ]);
  loop.close();
});

Deno.test("timeout(null) never fires until given a deadline", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<number> {
    const t = timeout(null);
    assertEquals(t.when(), null);
    yield* t.scope(function* () {
      yield* sleep(100);
    });
    const u = timeout(null);
    try {
      yield* u.scope(function* () {
        u.reschedule(loop.time() + 5);
        yield* sleep(100);
      });
    } catch (e) {
      if (!(e instanceof TimeoutError)) throw e;
    }
    return loop.time();
  });
  assertEquals(await loop.runUntilComplete(main), 105);
  loop.close();
});

Deno.test("timeoutAt() uses an absolute loop time", async () => {
  const loop = new VirtualTimeLoop();
  await loop.advance(100);
  const t = timeoutAt(103, { loop });
  assertEquals(t.when(), 103);
  const fut = t.run(sleep(60, undefined, { loop }));
  await assertRejects(() => loop.runUntilComplete(fut), TimeoutError);
  assertEquals(loop.time(), 103);
  loop.close();
});

Deno.test("Timeout.reschedule() before the scope is entered throws InvalidStateError saying what to do, and changes nothing (asyncio 3.13: RuntimeError 'Timeout has not been entered')", async () => {
  const loop = new VirtualTimeLoop();
  const t = timeoutAt(110, { loop });
  assertThrows(
    () => t.reschedule(103),
    InvalidStateError,
    "Cannot reschedule the timeout: it has not been entered; enter it first (run(), scope() or enter()), or give the deadline to timeout()/timeoutAt()",
  );
  assertEquals(t.when(), 110);
  // Still usable: entering it arms the original deadline.
  const fut = t.run(sleep(200, undefined, { loop }));
  await assertRejects(() => loop.runUntilComplete(fut), TimeoutError);
  assertEquals(loop.time(), 110);
  loop.close();
});

Deno.test("Timeout.reschedule() after expiry throws InvalidStateError", async () => {
  const loop = new VirtualTimeLoop();
  const t = timeout(1, { loop });
  await assertRejects(
    () => loop.runUntilComplete(t.run(sleep(5, undefined, { loop }))),
    TimeoutError,
  );
  assertThrows(() => t.reschedule(10), InvalidStateError, "expired");
  loop.close();
});

// ---- Misuse ----

Deno.test("timeout() rejects a delay that is not a number", () => {
  const loop = new VirtualTimeLoop();
  assertThrows(() => timeout("1" as unknown as number, { loop }), TypeError);
  assertThrows(() => timeout(NaN, { loop }), TypeError);
  assertThrows(() => timeoutAt(undefined as unknown as number), TypeError);
  loop.close();
});

Deno.test("timeout() without a loop throws InvalidStateError", () => {
  assertThrows(() => timeout(1), InvalidStateError, "no event loop");
});

Deno.test("a Timeout is entered at most once", async () => {
  const loop = new VirtualTimeLoop();
  const t = timeout(5, { loop });
  const fut = t.run(sleep(1, "x", { loop }));
  assertThrows(
    () => t.run(sleep(1, "y", { loop })),
    InvalidStateError,
    "already entered",
  );
  const other = loop.createTask(function* (): Coroutine<void> {
    assertThrows(() => t.enter(), InvalidStateError, "already entered");
    assertThrows(
      () => t.scope(function* () {}),
      InvalidStateError,
      "already entered",
    );
    yield;
  });
  assertEquals(await loop.runUntilComplete(fut), "x");
  await loop.runUntilComplete(other);
  loop.close();
});

Deno.test("Timeout.enter() outside a task throws InvalidStateError", () => {
  const loop = new VirtualTimeLoop();
  const t = timeout(5, { loop });
  assertThrows(() => t.enter(), InvalidStateError, "inside a task");
  loop.close();
});

Deno.test("Timeout.exit() before entering throws InvalidStateError", () => {
  const t = timeoutAt(5);
  assertThrows(() => t.exit(), InvalidStateError, "created");
});

Deno.test("Timeout.scope() rejects a body that returns neither a generator nor a promise", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<void> {
    const bad = (() => 42) as unknown as () => Coroutine<number>;
    assertThrows(() => timeout(1).scope(bad), TypeError);
    yield;
  });
  await loop.runUntilComplete(main);
  loop.close();
});

Deno.test("Timeout prints its state and deadline", async () => {
  const loop = new VirtualTimeLoop();
  const t = timeoutAt(7, { loop });
  assertEquals(Object.prototype.toString.call(t), "[object Timeout created]");
  assertEquals(Deno.inspect(t), "Timeout created when=7");
  const task = new Task(
    t.scope(function* () {
      assertEquals(
        String(Object.prototype.toString.call(t)),
        "[object Timeout active]",
      );
      yield* sleep(1);
    }),
    { loop },
  );
  await loop.runUntilComplete(task);
  assertEquals(Deno.inspect(t), "Timeout finished when=7");
  assertStrictEquals(t.expired(), false);
  loop.close();
});

Deno.test("timeout(), timeoutAt() and new Timeout() refuse options that are not an object like { loop } (a loop given bare included)", () => {
  const loop = new VirtualTimeLoop();
  for (const make of [timeout, timeoutAt]) {
    assertThrows(
      () => make(1, loop as never),
      TypeError,
      "options must be an object like { loop }",
    );
  }
  loop.close();
});

// ---- Cases from CPython's test_timeouts.py ----

// Mirrors CPython's TimeoutTests.test_timeout_zero and
// test_timeout_in_the_past_sleep_zero.
Deno.test("timeout(0) and timeout(-11) keep a deadline at or before the time they were made", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<void> {
    yield* sleep(3);
    const t0 = loop.time();
    const zero = timeout(0);
    const past = timeout(-11);
    for (const t of [zero, past]) {
      let err: unknown;
      try {
        yield* t.scope(function* () {
          yield* sleep(10);
        });
      } catch (e) {
        err = e;
      }
      assertInstanceOf(err, TimeoutError);
      assert(t.expired());
    }
    assertEquals(loop.time(), t0, "no virtual time passed");
    assertEquals(zero.when(), t0);
    assertEquals(past.when(), t0 - 11);
  });
  await loop.runUntilComplete(main);
  loop.close();
});

// Mirrors CPython's TimeoutTests.test_timeout_not_called,
// test_timeout_disabled and test_timeout_at_disabled.
Deno.test("a timeout that never fires keeps its deadline and is not expired; a null one has no deadline", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<void> {
    const far = timeout(10);
    yield* far.scope(function* () {
      yield* sleep(0.01);
    });
    assertFalse(far.expired());
    assert(far.when()! > loop.time());
    for (const t of [timeout(null), timeoutAt(null)]) {
      yield* t.scope(function* () {
        yield* sleep(0.01);
      });
      assertFalse(t.expired());
      assertEquals(t.when(), null);
    }
  });
  await loop.runUntilComplete(main);
  loop.close();
});

// Mirrors CPython's TimeoutTests.test_foreign_exception_on_timeout.
Deno.test("timeout(): an error the body's cleanup throws after the deadline replaces the TimeoutError", async () => {
  const loop = new VirtualTimeLoop();
  const t = timeout(0.01, { loop });
  const main = loop.createTask(async () => {
    await t.scope(async () => {
      try {
        await sleep(1);
      } finally {
        // deno-lint-ignore no-unsafe-finally
        throw new RangeError("cleanup");
      }
    });
  });
  const err = await assertRejects(
    () => loop.runUntilComplete(main),
    RangeError,
  );
  assertEquals(err.message, "cleanup");
  assert(t.expired());
  assertEquals(loop.time(), 0.01);
  loop.close();
});

// Mirrors CPython's TimeoutTests.test_foreign_cancel_doesnt_timeout_if_not_expired.
Deno.test("timeout(): the task cancelling itself inside the scope is a CancelledError, not a timeout", async () => {
  const loop = new VirtualTimeLoop();
  const t = timeout(10, { loop });
  const main = loop.createTask(async () => {
    await t.scope(async () => {
      currentTask()!.cancel();
      await sleep(10);
    });
  });
  await assertRejects(() => loop.runUntilComplete(main), CancelledError);
  assertFalse(t.expired());
  assertEquals(loop.time(), 0);
  loop.close();
});

// Mirrors CPython's TimeoutTests.test_outer_task_is_not_cancelled.
Deno.test("timeout(): a task that catches its scope's TimeoutError ends normally, not cancelled", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    try {
      await timeout(0.001).scope(async () => {
        await sleep(10);
      });
    } catch (e) {
      if (!(e instanceof TimeoutError)) throw e;
      return "timed out";
    }
  });
  assertEquals(await loop.runUntilComplete(main), "timed out");
  assertFalse(main.cancelled());
  assertEquals(main.cancelling(), 0);
  loop.close();
});

// Mirrors CPython's TimeoutTests.test_timeout_finished and
// test_timeout_expired.
Deno.test("Timeout.reschedule() after the scope finished or expired throws InvalidStateError naming the state", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<void> {
    const done = timeout(0.01);
    yield* done.scope(function* () {});
    const a = assertThrows(() => done.reschedule(0.02), InvalidStateError);
    assert(/finished|left|exited/.test(a.message), a.message);
    const late = timeout(0.01);
    try {
      yield* late.scope(function* () {
        yield* sleep(1);
      });
    } catch (e) {
      if (!(e instanceof TimeoutError)) throw e;
    }
    const b = assertThrows(() => late.reschedule(0.02), InvalidStateError);
    assert(/expired/.test(b.message), b.message);
  });
  await loop.runUntilComplete(main);
  loop.close();
});

// Mirrors CPython's TimeoutTests.test_nested_timeouts_loop_busy and
// test_nested_timeouts_concurrent: both deadlines pass while the loop is
// blocked, so both timers fire in one turn.
Deno.test("nested timeouts whose deadlines both pass in one blocked turn: the outer one reports", async () => {
  const loop = new DenoEventLoop();
  const log: string[] = [];
  const outer = timeout(0.02, { loop });
  const inner = timeout(0.01, { loop });
  const main = loop.createTask(async () => {
    try {
      await outer.scope(async () => {
        try {
          await inner.scope(async () => {
            const until = performance.now() + 40;
            while (performance.now() < until) { /* the loop is busy */ }
            await sleep(1);
          });
        } catch (e) {
          log.push(`inner ${(e as Error).name}`);
          throw e;
        }
      });
    } catch (e) {
      log.push(`outer ${(e as Error).name}`);
    }
  });
  await loop.runUntilComplete(main);
  assertEquals(log, ["inner CancelledError", "outer TimeoutError"]);
  assert(inner.expired() && outer.expired());
  assertEquals(main.cancelling(), 0);
  loop.close();
});

// Mirrors CPython's TimeoutTests.test_timeout_taskgroup.
Deno.test("timeout() around a TaskGroup whose child fails in its cleanup: the AggregateError wins over the TimeoutError", async () => {
  const loop = new VirtualTimeLoop();
  const t = timeout(0.01, { loop });
  const main = loop.createTask(async () => {
    await t.scope(async () => {
      await withTaskGroup(async (tg) => {
        tg.createTask(async () => {
          try {
            await sleep(2);
          } finally {
            // deno-lint-ignore no-unsafe-finally
            throw new RangeError("child cleanup");
          }
        });
        try {
          throw new TypeError("body");
        } finally {
          await sleep(1);
        }
      });
    });
  });
  const err = await assertRejects(
    () => loop.runUntilComplete(main),
    AggregateError,
  );
  assertEquals(err.errors.length, 1);
  assertInstanceOf(err.errors[0], RangeError);
  assert(t.expired());
  loop.close();
});

// asyncio 3.13's `async with timeout(2): await fut` in the cancelled task
// gives [True, False, 1] for the same cancels (via loop.call_soon()): the
// task ends in the turn fut's cancellation comes back, so the second
// cancel() finds it done. Timeout.run() waits where that would.
for (const kind of ["async", "generator"]) {
  Deno.test(`Timeout.run(): a cancel() of the waiting task ends it in the turn the work's cancellation comes back (${kind})`, async () => {
    const loop = new VirtualTimeLoop();
    const fut = loop.createFuture<void>();
    const seen: unknown[] = [];
    const t = kind === "async"
      ? loop.createTask(async () => {
        await timeout(2).run(fut);
      })
      : loop.createTask(function* (): Coroutine<void> {
        yield* timeout(2).run(fut);
      }());
    loop.callSoon(() =>
      loop.callSoon(() => {
        seen.push(t.cancel());
        loop.callSoon(() => seen.push(t.cancel(), t.cancelling()));
      })
    );
    await assertRejects(() => loop.runUntilComplete(t), CancelledError);
    assertEquals(seen, [true, false, 1]);
    loop.close();
  });
}
