import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { CancelledError, TimeoutError } from "../../futures/errors.ts";
import { Future } from "../../futures/future.ts";
import { shield } from "../../tasks/shield.ts";
import { sleep } from "../../tasks/sleep.ts";
import {
  type Coroutine,
  currentTask,
  ensureFuture,
  Task,
} from "../../tasks/task.ts";
import { gather } from "../../tasks/gather.ts";
import { wait } from "../../tasks/wait.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

// ---- Results and errors ----

Deno.test("waitFor() gives the result when it comes in time", async () => {
  const loop = new VirtualTimeLoop();
  const fut = waitFor(sleep(1, "in time", { loop }), 30);
  assertEquals(await loop.runUntilComplete(fut), "in time");
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("waitFor() passes the awaitable's error through", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    await waitFor(
      (async () => {
        await sleep(1);
        throw new RangeError("inner");
      })(),
      30,
    );
  });
  await assertRejects(() => loop.runUntilComplete(main), RangeError, "inner");
  loop.close();
});

Deno.test("waitFor() accepts a coroutine, a task and a promise", async () => {
  const loop = new VirtualTimeLoop();
  function* coro(): Coroutine<string> {
    return yield* sleep(1, "coroutine");
  }
  const main = loop.createTask(async () => [
    await waitFor(coro(), 5),
    await waitFor(loop.createTask(async () => await sleep(1, "task")), 5),
    await waitFor(Promise.resolve("promise"), 5),
  ]);
  assertEquals(await loop.runUntilComplete(main), [
    "coroutine",
    "task",
    "promise",
  ]);
  loop.close();
});

Deno.test("waitFor() refuses an async generator as createTask() does, naming it", async () => {
  const loop = new VirtualTimeLoop();
  // deno-lint-ignore require-yield
  async function* agen(): AsyncGenerator<never, number> {
    return 1;
  }
  const main = loop.createTask(async () => await waitFor(agen() as never, 5));
  // It failed with "object is not iterable": the generator was driven
  // inline with yield*.
  await assertRejects(
    () => loop.runUntilComplete(main),
    TypeError,
    "an async generator",
  );
  loop.close();
});

Deno.test("waitFor() with a null timeout waits without limit", async () => {
  const loop = new VirtualTimeLoop();
  const fut = waitFor(sleep(86400, "a day later", { loop }), null);
  assertEquals(await loop.runUntilComplete(fut), "a day later");
  loop.close();
});

// ---- Timeouts ----

Deno.test("waitFor() times out after 30 virtual seconds and cancels the awaitable", async () => {
  const loop = new VirtualTimeLoop();
  const inner = sleep(3600, undefined, { loop });
  const err = await loop.runUntilComplete(waitFor(inner, 30)).catch((e) => e);
  assertInstanceOf(err, TimeoutError);
  assert(inner.cancelled());
  assertEquals(loop.time(), 30);
  loop.close();
});

Deno.test("waitFor() fails only once the cancelled task has really finished", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const inner = loop.createTask(function* (): Coroutine<void> {
    try {
      yield* sleep(3600);
    } finally {
      log.push(`cancelled at ${loop.time()}`);
      yield* sleep(5);
      log.push(`cleaned up at ${loop.time()}`);
    }
  });
  const fut = waitFor(inner, 30);
  await assertRejects(() => loop.runUntilComplete(fut), TimeoutError);
  assertEquals(log, ["cancelled at 30", "cleaned up at 35"]);
  assert(inner.cancelled());
  assertEquals(loop.time(), 35);
  loop.close();
});

Deno.test("waitFor() returns the value of an awaitable that refuses the cancellation", async () => {
  const loop = new VirtualTimeLoop();
  const stubborn = loop.createTask(function* (): Coroutine<string> {
    try {
      yield* sleep(3600);
    } catch {
      // refused
    }
    return "kept going";
  });
  assertEquals(
    await loop.runUntilComplete(waitFor(stubborn, 1)),
    "kept going",
  );
  loop.close();
});

Deno.test("waitFor(): an error the awaitable throws in its cleanup after the timeout replaces the TimeoutError (test_wait_for_reraises_exception_during_cancellation)", async () => {
  for (const limit of [1, 0]) {
    const loop = new VirtualTimeLoop();
    const main = loop.createTask(async () => {
      const inner = loop.createTask(async () => {
        try {
          await sleep(10);
        } finally {
          // deno-lint-ignore no-unsafe-finally
          throw new RangeError("cleanup");
        }
      });
      await sleep(0); // inner starts
      await waitFor(inner, limit);
    });
    await assertRejects(
      () => loop.runUntilComplete(main),
      RangeError,
      "cleanup",
    );
    loop.close();
  }
});

Deno.test("waitFor() of a task done in the same turn, then cancelled at the next wait (test_wait_for_issue86296)", async () => {
  const loop = new VirtualTimeLoop();
  const inner = loop.createTask(() => Promise.resolve("done"));
  let reachedEnd = false;
  const task = loop.createTask(async () => {
    await waitFor(inner, 100);
    await sleep(1);
    reachedEnd = true;
  });
  await loop.advance(0); // both run their first step
  task.cancel();
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assertEquals(inner.result(), "done");
  assertFalse(reachedEnd);
  loop.close();
});

Deno.test("waitFor() in a generator coroutine times out a generator coroutine", async () => {
  const loop = new VirtualTimeLoop();
  let cleaned = false;
  function* slow(): Coroutine<number> {
    try {
      yield* sleep(60);
      return 1;
    } finally {
      cleaned = true;
    }
  }
  function* main(): Coroutine<string> {
    try {
      yield* waitFor(slow(), 2);
      return "no timeout";
    } catch (e) {
      return (e as Error).name;
    }
  }
  assertEquals(await loop.runUntilComplete(main()), "TimeoutError");
  assert(cleaned);
  assertEquals(loop.time(), 2);
  loop.close();
});

Deno.test("waitFor() and ensureFuture() of a settled promise give its value while the loop stays busy", async () => {
  // The future wrapping the promise is completed in a microtask; a
  // generator task (waitFor()'s own included) that waited for it asked the
  // loop for no microtask turn, so a loop kept busy by callbacks ran 100
  // iterations before the task went on.
  const loop = new VirtualTimeLoop();
  let iteration = 0;
  const tick = () => {
    if (++iteration < 100) loop.callSoon(tick);
  };
  loop.callSoon(tick);
  const viaWaitFor = loop.createTask(async () => {
    await waitFor(Promise.resolve("a"), 5);
    return iteration;
  });
  const viaGenerator = loop.createTask(function* (): Coroutine<number> {
    yield* ensureFuture(Promise.resolve("b"));
    return iteration;
  });
  const [a, b] = await loop.runUntilComplete(
    gather([viaWaitFor, viaGenerator]),
  );
  assert(a < 5 && b < 5, `resumed at iterations ${a} and ${b}`);
  loop.close();
});

Deno.test("waitFor() with a zero timeout returns a done future's result", async () => {
  const loop = new VirtualTimeLoop();
  const done = new Future<string>({ loop });
  done.setResult("ready");
  assertEquals(await loop.runUntilComplete(waitFor(done, 0)), "ready");
  loop.close();
});

Deno.test("waitFor() with a zero or negative timeout cancels a pending awaitable at once", async () => {
  const loop = new VirtualTimeLoop();
  for (const limit of [0, -5]) {
    const inner = sleep(10, undefined, { loop });
    const err = await loop.runUntilComplete(waitFor(inner, limit)).catch((
      e,
    ) => e);
    assertInstanceOf(err, TimeoutError);
    assertInstanceOf((err as Error).cause, CancelledError);
    assert(inner.cancelled());
  }
  assertEquals(loop.time(), 0);
  loop.close();
});

Deno.test("waitFor() with a zero timeout cancels at the call what is not done then, even if it would finish before the next turn", async () => {
  // asyncio's wait_for(aw, 0) checks done() where it is awaited and cancels
  // at once; the check one turn later let a task made just before run to
  // its end and gave its result instead of the TimeoutError.
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    let ran = false;
    const child = loop.createTask(() => {
      ran = true;
      return Promise.resolve("done");
    });
    const name = (e: unknown) => (e as Error).name;
    const first = await waitFor(child, 0).then(String, name);
    const fut = new Future<string>({ loop });
    loop.callSoon(() => fut.done() || fut.setResult("late"));
    const second = await waitFor(fut, 0).then(String, name);
    return [[first, second], ran, child.cancelled(), fut.cancelled()];
  });
  assertEquals(await loop.runUntilComplete(main), [
    ["TimeoutError", "TimeoutError"],
    false,
    true,
    true,
  ]);
  loop.close();
});

Deno.test("waitFor() with a zero timeout never starts a coroutine", async () => {
  const loop = new VirtualTimeLoop();
  let started = false;
  function* coro(): Coroutine<void> {
    started = true;
    yield* sleep(1);
  }
  const main = loop.createTask(async () => await waitFor(coro(), 0));
  await assertRejects(() => loop.runUntilComplete(main), TimeoutError);
  assertFalse(started);
  loop.close();
});

Deno.test("waitFor() with a zero timeout waits for the awaitable's cleanup", async () => {
  const loop = new VirtualTimeLoop();
  const inner = loop.createTask(function* (): Coroutine<void> {
    try {
      yield* sleep(10);
    } finally {
      yield* sleep(3);
    }
  });
  const main = loop.createTask(function* (): Coroutine<void> {
    yield* sleep(1); // let inner start
    yield* waitFor(inner, 0);
  });
  await assertRejects(() => loop.runUntilComplete(main), TimeoutError);
  assert(inner.cancelled());
  assertEquals(loop.time(), 4);
  loop.close();
});

Deno.test("waitFor() nested: when the outer limit passes first, the outer one times out", async () => {
  const loop = new VirtualTimeLoop();
  const inner = sleep(60, undefined, { loop });
  const innerWait = waitFor(inner, 10);
  const outerWait = waitFor(innerWait, 2);
  await assertRejects(() => loop.runUntilComplete(outerWait), TimeoutError);
  assert(innerWait.cancelled(), "the inner wait is cancelled, not timed out");
  assert(inner.cancelled());
  assertEquals(loop.time(), 2);
  loop.close();
});

// ---- Cancellation ----

Deno.test("waitFor(): cancelling the returned future cancels the awaitable", async () => {
  const loop = new VirtualTimeLoop();
  const inner = sleep(60, undefined, { loop });
  const fut = waitFor(inner, 30);
  loop.callLater(5, () => fut.cancel());
  await assertRejects(() => loop.runUntilComplete(fut), CancelledError);
  assert(inner.cancelled());
  assertEquals(loop.time(), 5);
  loop.close();
});

Deno.test("waitFor(): cancelling the waiting async-function task cancels the awaitable", async () => {
  const loop = new VirtualTimeLoop();
  const inner = sleep(60, undefined, { loop });
  const main = loop.createTask(async () => await waitFor(inner, 30));
  loop.callLater(5, () => main.cancel());
  await assertRejects(() => loop.runUntilComplete(main), CancelledError);
  assert(main.cancelled());
  assert(inner.cancelled());
  loop.close();
});

Deno.test("waitFor(): cancelling the waiting generator task is not turned into a timeout", async () => {
  const loop = new VirtualTimeLoop();
  const inner = sleep(60, undefined, { loop });
  const main = new Task(function* (): Coroutine<void> {
    yield* waitFor(inner, 5);
  }, { loop });
  loop.callAt(5, () => main.cancel()); // at the very time of the deadline
  await assertRejects(() => loop.runUntilComplete(main), CancelledError);
  assert(main.cancelled());
  assert(inner.cancelled());
  loop.close();
});

// asyncio's test_asyncio_wait_for_cancelled: the waiting task is cancelled
// right after it called waitFor(), before waitFor's own task took its first
// step. The awaitable must still be cancelled, and waited for.
function stubbornWork(loop: VirtualTimeLoop, log: string[]): Task<string> {
  return loop.createTask(async () => {
    try {
      await sleep(1);
    } catch (e) {
      log.push((e as Error).name);
      await sleep(1);
    }
    log.push("finished");
    return "kept going";
  });
}

Deno.test("waitFor(): a task cancelled as soon as it waits still cancels and waits for the awaitable (async)", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const main = loop.createTask(async () => {
    const work = stubbornWork(loop, log);
    const waiting = loop.createTask(async () => await waitFor(work, 30));
    await sleep(0);
    waiting.cancel();
    await wait([waiting]);
    log.push(`waiting done at ${loop.time()}`);
  });
  await loop.runUntilComplete(main);
  assertEquals(log, ["CancelledError", "finished", "waiting done at 1"]);
  loop.close();
});

Deno.test("waitFor(): a task cancelled as soon as it waits still cancels and waits for the awaitable (generator)", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const main = loop.createTask(function* (): Coroutine<string> {
    const work = stubbornWork(loop, log);
    const waiting = loop.createTask(function* (): Coroutine<string> {
      return yield* waitFor(work, 30);
    });
    yield* sleep(0);
    waiting.cancel();
    yield* wait([waiting]);
    log.push(`waiting done at ${loop.time()}`);
    return waiting.result();
  });
  assertEquals(await loop.runUntilComplete(main), "kept going");
  assertEquals(log, ["CancelledError", "finished", "waiting done at 1"]);
  loop.close();
});

Deno.test("waitFor(): cancelling the returned future at once cancels the awaitable", async () => {
  const loop = new VirtualTimeLoop();
  for (const limit of [30, 0]) {
    const inner = sleep(60, undefined, { loop });
    const fut = waitFor(inner, limit);
    assert(fut.cancel());
    await assertRejects(() => loop.runUntilComplete(fut), CancelledError);
    assert(inner.cancelled(), `limit ${limit}`);
  }
  assertEquals(loop.time(), 0);
  loop.close();
});

Deno.test("waitFor(shield()) times out but leaves the work running", async () => {
  const loop = new VirtualTimeLoop();
  const work = loop.createTask(async () => await sleep(10, "done"));
  await assertRejects(
    () => loop.runUntilComplete(waitFor(shield(work), 1)),
    TimeoutError,
  );
  assertFalse(work.done());
  assertEquals(await loop.runUntilComplete(work), "done");
  loop.close();
});

// ---- Misuse ----

Deno.test("waitFor() rejects a timeout that is not a number", () => {
  const loop = new VirtualTimeLoop();
  const fut = sleep(1, undefined, { loop });
  assertThrows(() => waitFor(fut, "5" as unknown as number), TypeError);
  assertThrows(() => waitFor(fut, NaN), TypeError);
  loop.close();
});

Deno.test("waitFor() refuses options that are not an object like { loop } (a loop given bare included)", () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  assertThrows(
    () => waitFor(fut, 1, loop as never),
    TypeError,
    "Cannot wait for an awaitable: options must be an object like { loop }",
  );
  loop.close();
});

// ---- Cases from CPython's test_waitfor.py ----

// Mirrors CPython's AsyncioWaitForTest.test_wait_for_race_condition.
Deno.test("waitFor() of a future resolved by a callback on the next turn gives its result", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<string>({ loop });
  const waiting = waitFor(fut, 0.2, { loop });
  loop.callSoon(() => fut.setResult("ok"));
  assertEquals(await loop.runUntilComplete(waiting), "ok");
  assertEquals(loop.time(), 0);
  loop.close();
});

// Mirrors CPython's WaitForShieldTests.test_zero_timeout and test_none_timeout.
Deno.test("waitFor(shield(), 0) times out and cancels the shield, not the work; a null timeout waits for it", async () => {
  const loop = new VirtualTimeLoop();
  const work = loop.createTask(async () => await sleep(0.01, "done"));
  const shielded = shield(work, { loop });
  await assertRejects(
    () => loop.runUntilComplete(waitFor(shielded, 0, { loop })),
    TimeoutError,
  );
  assert(shielded.cancelled());
  assertFalse(work.done());
  await loop.runUntilComplete(sleep(0.1, undefined, { loop }));
  assert(work.done());
  assertFalse(work.cancelled());

  const later = loop.createTask(async () => await sleep(0.1, "later"));
  assertEquals(
    await loop.runUntilComplete(
      waitFor(shield(later, { loop }), null, { loop }),
    ),
    "later",
  );
  loop.close();
});

// ---- An async function: called, or passed uncalled ----

// asyncio's wait_for(coro, t) runs the coroutine in a task, cancels it at
// the timeout and waits for it; waitFor(fn, t) does that with a function.
Deno.test("waitFor() of an uncalled async function cancels it at the timeout and waits for its cleanup", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  let innerTask: Task<unknown> | null = null;
  const inner = async (): Promise<string> => {
    innerTask = currentTask();
    try {
      return await sleep(5, "late");
    } catch (e) {
      log.push(`inner ${(e as Error).name} at ${loop.time()}`);
      await sleep(1);
      log.push(`cleaned up at ${loop.time()}`);
      throw e;
    }
  };
  const main = loop.createTask(async () => {
    const quick = await waitFor(async () => await sleep(1, "quick"), 5);
    try {
      await waitFor(() => inner(), 1);
    } catch (e) {
      log.push(`main ${(e as Error).name} at ${loop.time()}`);
    }
    assert(innerTask !== null && innerTask !== currentTask());
    return quick;
  });
  assertEquals(await loop.runUntilComplete(main), "quick");
  assertEquals(log, [
    "inner CancelledError at 2",
    "cleaned up at 3",
    "main TimeoutError at 3",
  ]);
  loop.close();
});

Deno.test("waitFor() with a zero timeout never starts a function", async () => {
  const loop = new VirtualTimeLoop();
  let started = false;
  const main = loop.createTask(async () =>
    await waitFor(async () => {
      started = true;
      await sleep(1);
    }, 0)
  );
  await assertRejects(() => loop.runUntilComplete(main), TimeoutError);
  assertFalse(started);
  loop.close();
});

Deno.test("waitFor() of an uncalled generator function with a zero timeout times out too", async () => {
  const loop = new VirtualTimeLoop();
  const err = await loop.runUntilComplete(
    waitFor(
      function* (): Coroutine<void> {
        yield* sleep(1);
      },
      0,
      { loop },
    ),
  ).catch((e) => e);
  assertInstanceOf(err, TimeoutError);
  loop.close();
});

// The limit waitFor()'s doc states: a promise of an async function already
// called can only be given up on at the timeout, not stopped; its body runs
// as part of the calling task. Pinned so that the doc stays true.
Deno.test("waitFor() of an async function's promise gives up on it at the timeout and leaves it running", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const inner = async () => {
    await sleep(5);
    log.push(`inner done at ${loop.time()}`);
  };
  const main = loop.createTask(async () => {
    try {
      await waitFor(inner(), 1);
    } catch (e) {
      log.push(`main ${(e as Error).name} at ${loop.time()}`);
    }
  });
  await loop.runUntilComplete(main);
  await loop.advance(10);
  assertEquals(log, ["main TimeoutError at 1", "inner done at 5"]);
  loop.close();
});

// ---- Where the caller waits: as asyncio's inline wait_for() ----
//
// asyncio 3.12+ runs wait_for() in the caller's task: the caller waits on
// the work from the call on, and resumes in the turn the work ends. The
// expected values below are asyncio 3.13's output for the same programs
// (`await asyncio.wait_for(...)`, cancels via loop.call_soon()).

// Cancels `task` two turns in, then again one turn later: the second
// cancel() finds the task done in asyncio, so it returns false and the
// count stays at 1.
function cancelTwice(
  loop: VirtualTimeLoop,
  task: Future<unknown>,
  seen: unknown[],
): void {
  loop.callSoon(() =>
    loop.callSoon(() => {
      seen.push(task.cancel());
      loop.callSoon(() =>
        seen.push(task.cancel(), (task as Task<unknown>).cancelling())
      );
    })
  );
}

Deno.test("waitFor(): a cancel() of the waiting task ends it in the turn the work's cancellation comes back, as asyncio's inline wait_for (async)", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<void>();
  const seen: unknown[] = [];
  const t = loop.createTask(async () => {
    await waitFor(fut, 2);
  });
  cancelTwice(loop, t, seen);
  await assertRejects(() => loop.runUntilComplete(t), CancelledError);
  assertEquals(seen, [true, false, 1]); // asyncio 3.13: [True, False, 1]
  loop.close();
});

Deno.test("waitFor(): a cancel() of the waiting task ends it in the turn the work's cancellation comes back (generator)", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<void>();
  const seen: unknown[] = [];
  const t = loop.createTask(function* (): Coroutine<void> {
    yield* waitFor(fut, 2);
  }());
  cancelTwice(loop, t, seen);
  await assertRejects(() => loop.runUntilComplete(t), CancelledError);
  assertEquals(seen, [true, false, 1]);
  loop.close();
});

Deno.test("waitFor(() => work(), t): the work's cancellation from the caller reaches it, and the caller ends in that turn", async () => {
  const loop = new VirtualTimeLoop();
  const seen: unknown[] = [];
  const t = loop.createTask(async () => {
    await waitFor(async () => {
      try {
        await sleep(10);
      } catch (e) {
        seen.push("work cancelled");
        throw e;
      }
    }, 2);
  });
  cancelTwice(loop, t, seen);
  await assertRejects(() => loop.runUntilComplete(t), CancelledError);
  // asyncio 3.13: [True, 'work cancelled', False, 1]
  assertEquals(seen, [true, "work cancelled", false, 1]);
  loop.close();
});

Deno.test("waitFor(task, t): a cancel() just after the call cancels the task before its first step, as the caller waits on it at once", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<void>();
  const log: unknown[] = [];
  const t = loop.createTask(async () => {
    await fut;
    // deno-lint-ignore require-await
    const child = loop.createTask(async () => {
      log.push("child ran");
    });
    try {
      await waitFor(child, 2);
    } finally {
      log.push(`child cancelled=${child.cancelled()}`);
    }
  });
  loop.callSoon(() => {
    fut.setResult();
    loop.callSoon(() => log.push(t.cancel()));
  });
  await assertRejects(() => loop.runUntilComplete(t), CancelledError);
  // asyncio 3.13: [True, 'child cancelled=True']
  assertEquals(log, [true, "child cancelled=true"]);
  loop.close();
});

Deno.test("waitFor(() => work(), t) runs the work at the call and resumes the caller when it ends, before tasks made after the caller", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const main = loop.createTask(async () => {
    log.push("main");
    // deno-lint-ignore require-await
    const r = await waitFor(async () => {
      log.push("work");
      return 5;
    }, 2);
    log.push(`main ${r}`);
  });
  // deno-lint-ignore require-await
  loop.createTask(async () => {
    log.push("other");
  });
  await loop.runUntilComplete(main);
  // asyncio 3.13: ['main', 'work', 'main 5', 'other']
  assertEquals(log, ["main", "work", "main 5", "other"]);
  loop.close();
});

Deno.test("waitFor() of another loop's future, called in a task, starts on that loop's turn, not inside the calling task", async () => {
  const loop = new VirtualTimeLoop();
  const other = new VirtualTimeLoop();
  const fut = other.createFuture<string>();
  let outer: Future<string> | null = null;
  // deno-lint-ignore require-await
  await loop.runUntilComplete(async () => {
    outer = waitFor(fut, 5, { loop: other });
    // Not stepped here: fut has no waiter yet.
    assertEquals(fut.describe(), "Future pending");
  });
  other.callSoon(() => fut.setResult("done"));
  assertEquals(await other.runUntilComplete(outer!), "done");
  loop.close();
  other.close();
});

// asyncio 3.13 gives ['made', 0, 1, 2, 3, 4, 'gathered', 5, 6] for
// `gather(wait_for(fut, 5))` with fut set in tick 2: gather() hears of the
// wait's end one turn after it, as of any task's. Only a task awaiting
// waitFor()'s future resumes in the turn the work ends.
Deno.test("gather([waitFor(fut, t)]) hears of the wait's end on the next turn, as of any task's", async () => {
  const loop = new VirtualTimeLoop();
  const log: unknown[] = [];
  const fut = loop.createFuture<number>();
  const main = loop.createTask(async () => {
    const g = gather([waitFor(fut, 5)]);
    log.push("made");
    await g;
    log.push("gathered");
  });
  const tick = (i: number) => {
    log.push(i);
    if (i === 2) fut.setResult(1);
    if (i < 8) loop.callSoon(() => tick(i + 1));
  };
  loop.callSoon(() => tick(0));
  await loop.runUntilComplete(main);
  assertEquals(log, ["made", 0, 1, 2, 3, 4, "gathered", 5, 6]);
  loop.close();
});

// ---- Depth: what runs at the call, or in the turn the work ends ----
//
// A waitFor() called in a task takes its task's first step at the call,
// and a finishing task resumes the tasks awaiting it on the spot: both
// nest on the stack. Deep chains must still finish (they did when each
// step took a turn of its own), not overflow the stack.

Deno.test("waitFor(): 1,000 calls nested one in another's work finish (generator)", async () => {
  const loop = new VirtualTimeLoop();
  function* nest(n: number): Coroutine<number> {
    if (n === 0) return yield* sleep(1, 0);
    return 1 + (yield* waitFor(() => nest(n - 1), 100));
  }
  const main = loop.createTask(nest(1000));
  assertEquals(await loop.runUntilComplete(main), 1000);
  loop.close();
});

Deno.test("waitFor(): 1,000 calls nested one in another's work finish (async)", async () => {
  const loop = new VirtualTimeLoop();
  async function nest(n: number): Promise<number> {
    if (n === 0) return await sleep(1, 0);
    return 1 + await waitFor(() => nest(n - 1), 100);
  }
  const main = loop.createTask(() => nest(1000));
  assertEquals(await loop.runUntilComplete(main), 1000);
  loop.close();
});

Deno.test("waitFor(): a chain of 5,000, each waiting for the one before, resumes its caller", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<number> {
    let f: Future<number> = waitFor(sleep(1, 7), 100);
    for (let i = 0; i < 5000; i++) f = waitFor(f, 100);
    return yield* f;
  }());
  // A lost wake-up leaves nothing to run: stop the loop then.
  loop.callLater(1000, () => loop.stop());
  assertEquals(await loop.runUntilComplete(main), 7);
  loop.close();
});

Deno.test("waitFor(): 50 calls nested one in another's work all start at the outer call", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  function* nest(n: number): Coroutine<number> {
    if (n === 0) {
      log.push("innermost work");
      return yield* sleep(1, 0);
    }
    return 1 + (yield* waitFor(() => nest(n - 1), 100));
  }
  const main = loop.createTask(function* (): Coroutine<number> {
    const f = waitFor(() => nest(49), 100);
    log.push("outer call returned");
    return yield* f;
  }());
  assertEquals(await loop.runUntilComplete(main), 49);
  assertEquals(log, ["innermost work", "outer call returned"]);
  loop.close();
});

// ---- Work that ends outside the loop's turns ----

for (const kind of ["generator", "async"]) {
  Deno.test(`waitFor(): work that ends on a host promise while the loop is stopped resumes the awaiting task only when the loop runs (${kind})`, async () => {
    const loop = new VirtualTimeLoop();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => release = resolve);
    const work = async () => {
      await gate; // not the loop's: the host resolves it
      return 1;
    };
    const main = kind === "generator"
      ? loop.createTask(function* (): Coroutine<number> {
        const v = yield* waitFor(work, 100);
        log.push(`resumed, running=${loop.isRunning()}`);
        return v + (yield* sleep(0, 1));
      }())
      : loop.createTask(async () => {
        const v = await waitFor(work, 100);
        log.push(`resumed, running=${loop.isRunning()}`);
        return v + await sleep(0, 1);
      });
    await loop.runUntilComplete(sleep(1, undefined, { loop }));
    release();
    await new Promise((resolve) => setTimeout(resolve, 0));
    assertEquals(log, []);
    assertEquals(await loop.runUntilComplete(main), 2);
    assertEquals(log, ["resumed, running=true"]);
    loop.close();
  });
}

Deno.test("waitFor(): a generator task waiting with a bare yield resumes in the turn the work ends, as with yield*", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const main = loop.createTask(function* (): Coroutine<void> {
    yield* sleep(0);
    yield* waitFor(sleep(0), 5);
    log.push("yield* resumed");
    yield waitFor(sleep(0), 5);
    log.push("yield resumed");
  }());
  loop.createTask(function* (): Coroutine<void> {
    for (let i = 0; i < 6; i++) {
      log.push(`tick ${i}`);
      yield;
    }
  }());
  await loop.runUntilComplete(main);
  // asyncio 3.13, awaiting wait_for() twice: the same first five.
  assertEquals(log.slice(0, 5), [
    "tick 0",
    "tick 1",
    "yield* resumed",
    "tick 2",
    "yield resumed",
  ]);
  loop.close();
});
