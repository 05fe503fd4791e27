import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertMatch,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { CancelledError, InvalidStateError } from "../../futures/errors.ts";
import type { Future } from "../../futures/future.ts";
import { getRunningLoop } from "../../futures/running_loop.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import type { EventLoop, ExceptionContext } from "../../loop/event_loop.ts";
import {
  type EventLoopPolicy,
  getEventLoop,
  setEventLoop,
  setEventLoopPolicy,
} from "../../loop/policy.ts";
import { run } from "../../loop/run.ts";
import { sleep } from "../../tasks/sleep.ts";
import { allTasks, type Coroutine, currentTask } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

/** A policy of virtual-time loops, so that run() never waits for real. */
class VirtualPolicy implements EventLoopPolicy {
  current: EventLoop | null = null;
  made: VirtualTimeLoop[] = [];
  setCalls: (EventLoop | null)[] = [];
  getEventLoop(): EventLoop {
    return this.current ??= this.newEventLoop();
  }
  setEventLoop(loop: EventLoop | null): void {
    this.setCalls.push(loop);
    this.current = loop;
  }
  newEventLoop(): EventLoop {
    const loop = new VirtualTimeLoop();
    this.made.push(loop);
    return loop as unknown as EventLoop;
  }
}

async function withVirtualPolicy(
  fn: (policy: VirtualPolicy) => Promise<void>,
): Promise<void> {
  const policy = new VirtualPolicy();
  setEventLoopPolicy(policy);
  try {
    await fn(policy);
  } finally {
    setEventLoopPolicy(null);
    for (const loop of policy.made) loop.close();
  }
}

Deno.test("run() returns what an async function returns", async () => {
  assertEquals(await run(() => Promise.resolve(42)), 42);
});

Deno.test("run() accepts a generator function and a generator object", async () => {
  function* main(): Coroutine<string> {
    yield;
    return "gen";
  }
  assertEquals(await run(main), "gen");
  assertEquals(await run(main()), "gen");
});

Deno.test("run() runs main on a new loop that is closed afterwards", async () => {
  await withVirtualPolicy(async (policy) => {
    let inside: unknown = null;
    let current: unknown = null;
    await run(async () => {
      inside = getRunningLoop();
      current = getEventLoop();
      await sleep(5);
    });
    assertEquals(policy.made.length, 1);
    assertStrictEquals(inside, policy.made[0]);
    assertStrictEquals(current, policy.made[0]);
    assert(policy.made[0].isClosed());
    assertEquals(policy.made[0].time(), 5);
  });
});

Deno.test("run() makes the loop current while it runs, then clears it", async () => {
  await withVirtualPolicy(async (policy) => {
    await run(async () => {});
    assertEquals(policy.setCalls, [policy.made[0], null]);
  });
});

Deno.test("run() names the main task", async () => {
  assertEquals(
    await run(() => Promise.resolve(currentTask()?.getName())),
    "main",
  );
});

Deno.test("run() rejects with main's error and still closes the loop", async () => {
  await withVirtualPolicy(async (policy) => {
    const err = new Error("main failed");
    const e = await assertRejects(() =>
      run(async () => {
        await sleep(1);
        throw err;
      })
    );
    assertStrictEquals(e, err);
    assert(policy.made[0].isClosed());
  });
});

Deno.test("run() rejects with TypeError for something that is not a coroutine", async () => {
  await withVirtualPolicy(async (policy) => {
    await assertRejects(
      () => run(42 as never),
      TypeError,
      "Cannot call run(): main must be a generator, a generator function or an async function, received 42",
    );
    // Refused before a loop is made, as asyncio refuses it.
    assertEquals(policy.made, []);
  });
});

Deno.test("run() rejects with TypeError a function that returns no coroutine, and closes its loop (asyncio's test_asyncio_run_only_coro: lambda: None)", async () => {
  await withVirtualPolicy(async (policy) => {
    for (
      const [main, received] of [[() => undefined, "undefined"], [
        () => 42,
        "42",
      ]] as const
    ) {
      await assertRejects(
        () => run(main as never),
        TypeError,
        `Cannot call run(): main must be a generator, a generator function or an async function; the function returned ${received}, neither a generator nor a promise nor a Future`,
      );
    }
    assertEquals(policy.made.length, 2);
    assert(policy.made.every((loop) => loop.isClosed()));
    // A plain function that returns a promise or a Future is an async
    // function as far as run() can tell.
    assertEquals(await run(() => Promise.resolve(1)), 1);
    assertEquals(
      await run(() => getRunningLoop()!.createTask(() => sleep(0.001, 2))),
      2,
    );
  });
});

Deno.test("run()'s main task gives the function main as its coroutine, as asyncio's gives the coroutine run() was given", async () => {
  await withVirtualPolicy(async () => {
    const main = async () => {
      await sleep(0);
      return currentTask()!.getCoro();
    };
    assertStrictEquals(await run(main), main);
  });
});

Deno.test("run() refuses a promise, saying to pass the async function itself", async () => {
  await withVirtualPolicy(async (policy) => {
    const main = async () => await Promise.resolve(1);
    const promise = main();
    const e = await assertRejects(() => run(promise as never), TypeError);
    assertMatch(
      e.message,
      /^Cannot call run\(\): main must be .*received Promise/,
    );
    assertMatch(
      e.message,
      /pass the async function itself: run\(main\), not run\(main\(\)\)/,
    );
    assertEquals(policy.made, []);
  });
});

Deno.test("run() rejects with CancelledError when main is cancelled", async () => {
  await withVirtualPolicy(async () => {
    await assertRejects(
      () =>
        run(async () => {
          currentTask()!.cancel("self");
          await sleep(1);
        }),
      CancelledError,
      "self",
    );
  });
});

Deno.test("run() cancels the tasks left over and waits for their cleanup", async () => {
  await withVirtualPolicy(async (policy) => {
    const log: string[] = [];
    let leftover: unknown = null;
    const result = await run(function* (): Coroutine<string> {
      const loop = getRunningLoop()!;
      leftover = loop.createTask(function* (): Coroutine<void> {
        try {
          yield* sleep(100);
          log.push("not reached");
        } finally {
          log.push("cleanup started");
          yield* sleep(2);
          log.push("cleanup finished");
        }
      });
      yield* sleep(1);
      return "main done";
    });
    assertEquals(result, "main done");
    assertEquals(log, ["cleanup started", "cleanup finished"]);
    const task = leftover as { cancelled(): boolean };
    assert(task.cancelled());
    assertEquals(policy.made[0].time(), 3);
    assert(policy.made[0].isClosed());
  });
});

Deno.test("run() cancels leftovers even when main fails", async () => {
  await withVirtualPolicy(async () => {
    let leftoverCancelled = false;
    await assertRejects(
      () =>
        run(async () => {
          getRunningLoop()!.createTask(async () => {
            try {
              await sleep(100);
            } catch (e) {
              leftoverCancelled = e instanceof CancelledError;
              throw e;
            }
          });
          await sleep(1);
          throw new RangeError("main failed");
        }),
      RangeError,
    );
    assert(leftoverCancelled);
  });
});

Deno.test("run() reports a leftover that fails while being cancelled", async () => {
  await withVirtualPolicy(async () => {
    const reports: ExceptionContext[] = [];
    const err = new Error("failed in cleanup");
    await run(async () => {
      getRunningLoop()!.setExceptionHandler((_loop, ctx) => reports.push(ctx));
      getRunningLoop()!.createTask(async () => {
        try {
          await sleep(100);
        } catch {
          throw err;
        }
      }, { name: "bad-cleanup" });
      await sleep(1);
    });
    assertEquals(reports.length, 1);
    assertEquals(reports[0].message, "Unhandled error during run() shutdown");
    assertStrictEquals(reports[0].exception, err);
    assertEquals(
      (reports[0].task as { getName(): string }).getName(),
      "bad-cleanup",
    );
  });
});

Deno.test("run() does not report a leftover that refuses cancellation and returns", async () => {
  await withVirtualPolicy(async () => {
    const reports: ExceptionContext[] = [];
    let finished = false;
    await run(async () => {
      getRunningLoop()!.setExceptionHandler((_loop, ctx) => reports.push(ctx));
      getRunningLoop()!.createTask(async () => {
        try {
          await sleep(100);
        } catch {
          await sleep(1);
          finished = true;
        }
      });
      await sleep(1);
    });
    assert(finished);
    assertEquals(reports, []);
  });
});

Deno.test("run() leaves no task behind", async () => {
  await withVirtualPolicy(async (policy) => {
    await run(async () => {
      const loop = getRunningLoop()!;
      for (let i = 0; i < 5; i++) {
        loop.createTask(async () => await sleep(10 + i));
      }
      await sleep(1);
    });
    assertEquals(allTasks(policy.made[0]).size, 0);
  });
});

Deno.test("run() turns on debug mode when asked", async () => {
  await withVirtualPolicy(async () => {
    assert(
      await run(() => Promise.resolve(getRunningLoop()!.getDebug()), {
        debug: true,
      }),
    );
    assertFalse(await run(() => Promise.resolve(getRunningLoop()!.getDebug())));
  });
});

Deno.test("run() with debug: false turns off the debug mode of a policy's loop, and leaves it alone when not asked", async () => {
  class DebugPolicy extends VirtualPolicy {
    override newEventLoop(): EventLoop {
      const loop = super.newEventLoop();
      loop.setDebug(true);
      return loop;
    }
  }
  const policy = new DebugPolicy();
  setEventLoopPolicy(policy);
  try {
    const debugOf = () => Promise.resolve(getRunningLoop()!.getDebug());
    assertFalse(await run(debugOf, { debug: false }));
    assert(await run(debugOf));
  } finally {
    setEventLoopPolicy(null);
    for (const loop of policy.made) loop.close();
  }
});

Deno.test("run() makes its loop with loopFactory, once, and leaves the current loop alone (asyncio's test_asyncio_run_loop_factory)", async () => {
  await withVirtualPolicy(async (policy) => {
    const made: VirtualTimeLoop[] = [];
    const calls: unknown[][] = [];
    const loopFactory = (...args: unknown[]) => {
      calls.push(args);
      const loop = new VirtualTimeLoop();
      made.push(loop);
      return loop as unknown as EventLoop;
    };
    try {
      let inside: unknown = null;
      const result = await run(async () => {
        inside = getRunningLoop();
        await sleep(7);
        return getRunningLoop()!.getDebug();
      }, { loopFactory, debug: true });
      assert(result);
      assertEquals(calls, [[]]);
      assertStrictEquals(inside, made[0]);
      assertEquals(made[0].time(), 7);
      assert(made[0].isClosed());
      // Not the policy's loop, and not made current (asyncio 3.12+).
      assertEquals(policy.made, []);
      assertEquals(policy.setCalls, []);
    } finally {
      for (const loop of made) loop.close();
    }
  });
});

Deno.test("run() refuses a loopFactory that is not a function or returns no event loop, making no loop", async () => {
  await withVirtualPolicy(async (policy) => {
    await assertRejects(
      () => run(async () => {}, { loopFactory: 42 as never }),
      TypeError,
      "Cannot call run(): loopFactory must be a function that returns an event loop, received 42",
    );
    await assertRejects(
      () => run(async () => {}, { loopFactory: (() => ({})) as never }),
      TypeError,
      "Cannot call run(): loopFactory must return an event loop, received Object",
    );
    assertEquals(policy.made, []);
  });
});

Deno.test("run() uses a real DenoEventLoop by default", async () => {
  let loop: unknown = null;
  await run(async () => {
    loop = getRunningLoop();
    await sleep(0.001);
  });
  assertInstanceOf(loop, DenoEventLoop);
  assertFalse(loop instanceof VirtualTimeLoop);
  assert((loop as DenoEventLoop).isClosed());
});

Deno.test("run() inside a running loop throws InvalidStateError instead of hanging", async () => {
  const result = await run(async () => {
    // Another task keeps the outer loop busy while the inner run is tried.
    const other = getEventLoop().createTask(() => sleep(0.01));
    const err = await run(() => Promise.resolve(1)).then(() => null, (e) => e);
    await other;
    return err;
  });
  assertInstanceOf(result, InvalidStateError);
  assertMatch(
    (result as Error).message,
    /cannot be called from a running event loop/,
  );
});

Deno.test("runUntilComplete(sleep(1)) on the closed current loop says the loop is closed", () => {
  const loop = getEventLoop();
  loop.close();
  try {
    assertThrows(
      () => loop.runUntilComplete(sleep(1)),
      InvalidStateError,
      "the loop is closed",
    );
    // A new current loop is made on demand, as before.
    const fresh = getEventLoop();
    assert(fresh !== loop && !fresh.isClosed());
    fresh.close();
  } finally {
    setEventLoop(null);
  }
});

/** Keeps a CPU busy for `ms` milliseconds; self-contained, sent as source. */
function spin(ms: number): number {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* busy */ }
  return ms;
}

Deno.test("run() lets the jobs main left in the default executor finish before closing the loop", async () => {
  let job: Future<number> | null = null;
  await run(() => {
    const loop = getRunningLoop() as unknown as DenoEventLoop;
    job = loop.runInExecutor(null, spin, 100);
    return Promise.resolve();
  });
  const done = job! as Future<number>;
  assert(done.done());
  assertEquals(done.result(), 100);
});

Deno.test("shutdownDefaultExecutor() waits for the default executor's jobs, then runInExecutor(null) is refused", async () => {
  const loop = new DenoEventLoop();
  try {
    const job = loop.runInExecutor(null, spin, 50);
    await loop.runUntilComplete(loop.shutdownDefaultExecutor());
    assertEquals(await loop.runUntilComplete(job), 50);
    assertThrows(
      () => loop.runInExecutor(null, spin, 1),
      InvalidStateError,
      "shutdownDefaultExecutor()",
    );
    // Again, and with no default executor: done at once.
    await loop.runUntilComplete(loop.shutdownDefaultExecutor());
    const fresh = new DenoEventLoop();
    await fresh.runUntilComplete(fresh.shutdownDefaultExecutor());
    fresh.close();
  } finally {
    loop.close();
  }
});

Deno.test("shutdownDefaultExecutor(timeout) stops waiting after timeout and drops the jobs still running", async () => {
  const loop = new DenoEventLoop();
  const reports: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => reports.push(ctx));
  try {
    const job = loop.runInExecutor(null, spin, 2000);
    const started = performance.now();
    await loop.runUntilComplete(loop.shutdownDefaultExecutor(0.1));
    assert(performance.now() - started < 1500);
    await assertRejects(() => loop.runUntilComplete(job), CancelledError);
    assertEquals(reports.length, 1);
    assertMatch(reports[0].message, /did not finish .* within 0\.1 seconds/);
    assertThrows(
      () => loop.shutdownDefaultExecutor(-1),
      RangeError,
      "timeout must be >= 0",
    );
  } finally {
    loop.close();
  }
});
