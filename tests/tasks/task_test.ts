import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertMatch,
  assertNotStrictEquals,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { abortable } from "@std/async/abortable";
import v8 from "node:v8";
import vm from "node:vm";
import { deadline } from "@std/async/deadline";
import { retry } from "@std/async/retry";
import { CancelledError, InvalidStateError } from "../../futures/errors.ts";
import { Future } from "../../futures/future.ts";
import { BaseEventLoop } from "../../loop/base_event_loop.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import { gather } from "../../tasks/gather.ts";
import { sleep } from "../../tasks/sleep.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import {
  allTasks,
  type Coroutine,
  currentTask,
  ensureFuture,
  Task,
  type TaskOptions,
} from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { assertCancelledAfter } from "../_helpers.ts";

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}

// ---- Construction ----

Deno.test("Task runs a generator object to completion", async () => {
  const loop = new VirtualTimeLoop();
  function* main(): Coroutine<number> {
    yield* sleep(1);
    return 7;
  }
  const task = new Task(main(), { loop });
  assertInstanceOf(task, Future);
  assertEquals(await loop.runUntilComplete(task), 7);
  assert(task.done());
  assertEquals(task.result(), 7);
  loop.close();
});

Deno.test("Task runs a generator function, an async function and a plain function", async () => {
  const loop = new VirtualTimeLoop();
  const a = new Task(function* (): Coroutine<string> {
    yield;
    return "gen fn";
  }, { loop });
  const b = new Task(async () => {
    await sleep(1);
    return "async fn";
  }, { loop });
  const c = new Task(() => "plain" as unknown as PromiseLike<string>, { loop });
  assertEquals(await loop.runUntilComplete(a), "gen fn");
  assertEquals(await loop.runUntilComplete(b), "async fn");
  assertEquals(await loop.runUntilComplete(c), "plain");
  loop.close();
});

Deno.test("Task throws TypeError for something that is not a coroutine", () => {
  const loop = new VirtualTimeLoop();
  assertThrows(
    () => new Task(42 as never, { loop }),
    TypeError,
    "Cannot create a Task: expected a generator or a function, received number",
  );
  assertThrows(
    () => new Task(null as never, { loop }),
    TypeError,
    "received null",
  );
  assertThrows(() => new Task({ next() {} } as never, { loop }), TypeError);
  loop.close();
});

Deno.test("Task without a loop throws InvalidStateError when none is running", () => {
  assertThrows(
    () => new Task(async () => {}),
    InvalidStateError,
  );
});

Deno.test("Task binds to the running loop by default", async () => {
  const loop = new VirtualTimeLoop();
  const made: Task<number>[] = [];
  function* main(): Coroutine<number> {
    const inner = new Task(() => Promise.resolve(1));
    made.push(inner);
    return yield* inner;
  }
  assertEquals(await loop.runUntilComplete(main()), 1);
  assertStrictEquals(made[0].getLoop(), loop);
  loop.close();
});

Deno.test("Task schedules its first step instead of running it inline", async () => {
  const loop = new VirtualTimeLoop();
  const order: string[] = [];
  loop.callSoon(() => order.push("before"));
  const task = loop.createTask(function* (): Coroutine<void> {
    order.push("task");
    yield;
  });
  loop.callSoon(() => order.push("after"));
  assertEquals(order, []);
  await loop.runUntilComplete(task);
  assertEquals(order, ["before", "task", "after"]);
  loop.close();
});

Deno.test("Task gets a default name Task-<n> and can be renamed", () => {
  const loop = new VirtualTimeLoop();
  const a = loop.createTask(async () => {});
  const b = loop.createTask(async () => {});
  assertMatch(a.getName(), /^Task-\d+$/);
  assertNotStrictEquals(a.getName(), b.getName());
  const c = loop.createTask(async () => {}, { name: "worker" });
  assertEquals(c.getName(), "worker");
  c.setName("renamed");
  assertEquals(c.getName(), "renamed");
  for (const t of [a, b, c]) t.cancel();
  loop.close();
});

Deno.test("Task names are strings, as asyncio's str(name): a number given as the name is kept as its text", () => {
  const loop = new VirtualTimeLoop();
  const t = loop.createTask(async () => {}, {
    name: 987654321 as unknown as string,
  });
  assertStrictEquals(t.getName(), "987654321");
  t.setName(123456789 as unknown as string);
  assertStrictEquals(t.getName(), "123456789");
  const u = new Task(async () => {}, { name: 7 as unknown as string, loop });
  assertStrictEquals(u.getName(), "7");
  for (const task of [t, u]) task.cancel();
  loop.close();
});

Deno.test("createTask() and new Task() refuse options that are not an object like { name }, rather than dropping the name", () => {
  const loop = new VirtualTimeLoop();
  const other = new VirtualTimeLoop();
  const bad: unknown[] = ["worker", 5, null, other];
  for (const options of bad) {
    assertThrows(
      () => loop.createTask(async () => {}, options as TaskOptions),
      TypeError,
      "Cannot create a Task: ",
    );
    assertThrows(
      () => new Task(async () => {}, options as TaskOptions),
      TypeError,
      "Cannot create a Task: ",
    );
  }
  assertEquals(allTasks(loop).size, 0);
  loop.close();
  other.close();
});

Deno.test("Task.getCoro() returns the generator or the function given", () => {
  const loop = new VirtualTimeLoop();
  function* gen(): Coroutine<void> {}
  const g = gen();
  const fn = async () => {};
  const a = loop.createTask(g);
  const b = loop.createTask(fn);
  assertStrictEquals(a.getCoro(), g);
  assertStrictEquals(b.getCoro(), fn);
  a.cancel();
  b.cancel();
  loop.close();
});

Deno.test("Task.describe() and Deno.inspect show the name and state", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(() => Promise.resolve(42), { name: "answer" });
  assertEquals(task.describe(), 'Task "answer" pending');
  assertEquals(Deno.inspect(task), 'Task "answer" pending');
  await loop.runUntilComplete(task);
  assertEquals(task.describe(), 'Task "answer" finished result=42');
  loop.close();
});

// asyncio's test_cancelling and test_uncancel_basic: repr() says
// "cancelling" while a cancellation is requested and the task not done.
Deno.test("Task.describe() says cancelling while a cancellation is outstanding", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(async () => {
    try {
      await sleep(10);
    } catch {
      currentTask()!.uncancel();
      await sleep(10);
    }
  }, { name: "t" });
  await loop.advance(0.01);
  task.cancel();
  assertEquals(Deno.inspect(task), 'Task "t" cancelling');
  assertEquals(
    Object.prototype.toString.call(task),
    '[object Task "t" cancelling]',
  );
  await loop.advance(0.01);
  assertEquals(task.describe(), 'Task "t" pending', "after uncancel()");
  task.cancel();
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assertEquals(task.describe(), 'Task "t" cancelled');
  loop.close();
});

Deno.test({
  name: "Task toStringTag names the task",
  fn() {
    const loop = new VirtualTimeLoop();
    const task = loop.createTask(async () => {}, { name: "tagged" });
    assertEquals(
      Object.prototype.toString.call(task),
      '[object Task "tagged" pending]',
    );
    task.cancel();
    loop.close();
  },
});

Deno.test("Task.setResult() and setException() throw InvalidStateError", () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(() => Promise.resolve(1));
  assertThrows(
    () => task.setResult(2),
    InvalidStateError,
    "Cannot call setResult() on a Task: its coroutine sets the result",
  );
  assertThrows(
    () => task.setException(new Error()),
    InvalidStateError,
    "Cannot call setException() on a Task: its coroutine sets the error",
  );
  task.cancel();
  loop.close();
});

// ---- Generator coroutines ----

Deno.test("Task resumes a generator with the result of what it yield*s", async () => {
  const loop = new VirtualTimeLoop();
  function* child(x: number): Coroutine<number> {
    yield* sleep(1);
    return x * 2;
  }
  function* main(): Coroutine<number[]> {
    const fut = loop.createFuture<number>();
    loop.callLater(1, () => fut.setResult(1));
    const a = yield* fut;
    const b = yield* child(2);
    const c = yield* loop.createTask(child(3));
    const d = yield* sleep(1, 8);
    return [a, b, c, d];
  }
  assertEquals(await loop.runUntilComplete(main()), [1, 4, 6, 8]);
  assertEquals(loop.time(), 4);
  loop.close();
});

Deno.test("Task passes a coroutine's error to the task", async () => {
  const loop = new VirtualTimeLoop();
  const err = new RangeError("inside");
  const task = loop.createTask(function* (): Coroutine<void> {
    yield;
    throw err;
  });
  assertStrictEquals(
    await assertRejects(() => loop.runUntilComplete(task)),
    err,
  );
  assertStrictEquals(task.exception(), err);
  assertFalse(task.cancelled());
  loop.close();
});

Deno.test("Task gives up one iteration on a bare yield", async () => {
  const loop = new VirtualTimeLoop();
  const order: string[] = [];
  const task = loop.createTask(function* (): Coroutine<void> {
    order.push("task 1");
    loop.callSoon(() => order.push("callback"));
    yield;
    order.push("task 2");
  });
  await loop.runUntilComplete(task);
  assertEquals(order, ["task 1", "callback", "task 2"]);
  loop.close();
});

Deno.test("Task throws TypeError into a coroutine that yields a promise or a value", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(function* (): Coroutine<string[]> {
    const out: string[] = [];
    try {
      yield Promise.resolve(1) as never;
    } catch (e) {
      assertInstanceOf(e, TypeError);
      out.push((e as TypeError).message);
    }
    try {
      yield 5 as never;
    } catch (e) {
      assertInstanceOf(e, TypeError);
      out.push((e as TypeError).message);
    }
    return out;
  }, { name: "bad" });
  const [m1, m2] = await loop.runUntilComplete(task);
  assertMatch(m1, /^Cannot drive Task "bad": its coroutine yielded a promise/);
  assertMatch(m2, /^Cannot drive Task "bad": its coroutine yielded number/);
  loop.close();
});

/**
 * Checks that the task `start` makes, awaiting `foreign` (a future of
 * another loop), fails with InvalidStateError.
 */
async function assertForeignAwaitFails(
  start: (loop: VirtualTimeLoop, foreign: Future<number>) => Task<void>,
): Promise<void> {
  const loop = new VirtualTimeLoop();
  const other = new VirtualTimeLoop();
  const task = start(loop, other.createFuture<number>());
  await assertRejects(
    () => loop.runUntilComplete(task),
    InvalidStateError,
    "it awaited a Future of another loop",
  );
  loop.close();
  other.close();
}

/**
 * Checks that the task `start` makes, awaiting itself (`self()` returns
 * it), fails with InvalidStateError.
 */
async function assertSelfAwaitFails(
  start: (loop: VirtualTimeLoop, self: () => Task<void>) => Task<void>,
): Promise<void> {
  const loop = new VirtualTimeLoop();
  const task: Task<void> = start(loop, () => task);
  await assertRejects(
    () => loop.runUntilComplete(task),
    InvalidStateError,
    "a task cannot await itself",
  );
  loop.close();
}

Deno.test("Task throws InvalidStateError into a coroutine waiting on another loop's future", async () => {
  await assertForeignAwaitFails((loop, foreign) =>
    loop.createTask(function* (): Coroutine<void> {
      yield* foreign;
    })
  );
});

Deno.test("Task throws InvalidStateError into a coroutine that waits on its own task", async () => {
  await assertSelfAwaitFails((loop, self) =>
    loop.createTask(function* (): Coroutine<void> {
      yield* self();
    })
  );
});

// ---- Cancelling generator coroutines ----

Deno.test("Task.cancel() throws CancelledError at the yield where the coroutine waits", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const inner = loop.createFuture<number>();
  const task = loop.createTask(function* (): Coroutine<void> {
    log.push("start");
    try {
      yield* inner;
      log.push("not reached");
    } catch (e) {
      log.push(`caught ${(e as Error).name}: ${(e as Error).message}`);
      throw e;
    }
  });
  loop.callLater(1, () => assert(task.cancel("stop it")));
  await assertRejects(
    () => loop.runUntilComplete(task),
    CancelledError,
    "stop it",
  );
  assertEquals(log, ["start", "caught CancelledError: stop it"]);
  assert(task.cancelled());
  assert(inner.cancelled());
  assertThrows(() => task.result(), CancelledError, "stop it");
  loop.close();
});

Deno.test("Task.cancel() twice before the task resumes: the awaited future's own CancelledError comes in, both requests counted (asyncio's Task.__step)", async () => {
  for (const style of ["generator", "async"] as const) {
    const loop = new VirtualTimeLoop();
    const inner = loop.createFuture<void>();
    let caught: unknown;
    const task = style === "generator"
      ? loop.createTask(function* (): Coroutine<void> {
        try {
          yield* inner;
        } catch (e) {
          caught = e;
          throw e;
        }
      })
      : loop.createTask(async () => {
        try {
          await inner;
        } catch (e) {
          caught = e;
          throw e;
        }
      });
    loop.callLater(1, () => {
      assert(task.cancel("first")); // cancels `inner`
      assert(task.cancel("second")); // `inner` is done: kept for the step
    });
    await assertRejects(() => loop.runUntilComplete(task), CancelledError);
    assertInstanceOf(caught, CancelledError, style);
    assertEquals((caught as Error).message, "first", style);
    assertThrows(() => task.result(), CancelledError, "first");
    assertEquals(task.cancelling(), 2, style);
    loop.close();
  }
});

Deno.test("Task.cancel() before the first step means the coroutine never runs", async () => {
  const loop = new VirtualTimeLoop();
  let started = false;
  const a = loop.createTask(function* (): Coroutine<void> {
    started = true;
    yield;
  });
  let fnCalled = false;
  const b = loop.createTask(() => {
    fnCalled = true;
    return Promise.resolve();
  });
  a.cancel();
  b.cancel();
  await assertRejects(() => loop.runUntilComplete(a), CancelledError);
  await assertRejects(() => loop.runUntilComplete(b), CancelledError);
  assertFalse(started);
  assertFalse(fnCalled);
  loop.close();
});

Deno.test("Task whose coroutine catches CancelledError goes on and returns", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(function* (): Coroutine<string> {
    try {
      yield* sleep(10);
    } catch (e) {
      if (!(e instanceof CancelledError)) throw e;
    }
    yield* sleep(1);
    return "survived";
  });
  loop.callLater(2, () => task.cancel());
  assertEquals(await loop.runUntilComplete(task), "survived");
  assertFalse(task.cancelled());
  assertEquals(task.cancelling(), 1);
  assertEquals(loop.time(), 3);
  loop.close();
});

Deno.test("Task runs a finally block that waits before ending cancelled", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const task = loop.createTask(function* (): Coroutine<void> {
    try {
      yield* sleep(10);
    } finally {
      log.push(`cleanup from ${loop.time()}`);
      yield* sleep(1);
      log.push(`cleanup done at ${loop.time()}`);
    }
  });
  await assertCancelledAfter(loop, task, 2);
  assertEquals(log, ["cleanup from 2", "cleanup done at 3"]);
  assert(task.cancelled());
  loop.close();
});

Deno.test("Task whose coroutine refuses cancellation keeps its result", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(function* (): Coroutine<number> {
    for (;;) {
      try {
        yield* sleep(5);
        return loop.time();
      } catch (e) {
        if (!(e instanceof CancelledError)) throw e;
        // Refused: wait again.
      }
    }
  });
  loop.callLater(1, () => task.cancel());
  loop.callLater(2, () => task.cancel());
  assertEquals(await loop.runUntilComplete(task), 7);
  assertFalse(task.cancelled());
  assertEquals(task.cancelling(), 2);
  loop.close();
});

Deno.test("Task.cancel() during a bare yield throws CancelledError there", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const task = loop.createTask(function* (): Coroutine<void> {
    try {
      for (;;) yield;
    } catch (e) {
      log.push((e as Error).name);
      throw e;
    }
  });
  loop.callSoon(() => loop.callSoon(() => task.cancel()));
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assertEquals(log, ["CancelledError"]);
  loop.close();
});

/**
 * Checks that the task `start` makes, cancelled in the same callback that
 * gives the future it awaits a result, still ends cancelled: its body sees
 * CancelledError (it pushes what it saw to `log`), and the future keeps
 * its result.
 */
async function assertCancelledAfterResult(
  start: (
    loop: VirtualTimeLoop,
    fut: Future<number>,
    log: string[],
  ) => Task<void>,
): Promise<void> {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  const log: string[] = [];
  const task = start(loop, fut, log);
  loop.callLater(1, () => {
    fut.setResult(1);
    task.cancel();
  });
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assertEquals(log, ["CancelledError"]);
  assertEquals(fut.result(), 1);
  loop.close();
}

Deno.test("Task.cancel() after the awaited future finished still cancels at the yield", async () => {
  await assertCancelledAfterResult((loop, fut, log) =>
    loop.createTask(function* (): Coroutine<void> {
      try {
        yield* fut;
        log.push("got result");
      } catch (e) {
        log.push((e as Error).name);
        throw e;
      }
    })
  );
});

Deno.test("Task cancelled by its own coroutine ends cancelled when it returns", async () => {
  const loop = new VirtualTimeLoop();
  const task: Task<string> = loop.createTask(function* (): Coroutine<string> {
    yield;
    task.cancel("self");
    return "ignored";
  });
  await assertRejects(
    () => loop.runUntilComplete(task),
    CancelledError,
    "self",
  );
  assert(task.cancelled());
  loop.close();
});

Deno.test("Task ends cancelled when the future it waits on is cancelled", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  const task = loop.createTask(function* (): Coroutine<number> {
    return yield* fut;
  });
  loop.callLater(1, () => fut.cancel("from outside"));
  await assertRejects(
    () => loop.runUntilComplete(task),
    CancelledError,
    "from outside",
  );
  assert(task.cancelled());
  assertEquals(task.cancelling(), 0);
  loop.close();
});

Deno.test("Task.cancel() returns false once the task is done", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(() => Promise.resolve(1));
  await loop.runUntilComplete(task);
  assertFalse(task.cancel());
  assertEquals(task.cancelling(), 0);
  assertEquals(task.result(), 1);
  loop.close();
});

Deno.test("Task cancelling a task it waits for cancels that task too", async () => {
  const loop = new VirtualTimeLoop();
  const child = loop.createTask(function* (): Coroutine<void> {
    yield* sleep(100);
  });
  const parent = loop.createTask(function* (): Coroutine<void> {
    yield* child;
  });
  await assertCancelledAfter(loop, parent, 1);
  assert(child.cancelled());
  loop.close();
});

// ---- The generator pitfall: waiting in a finally of a delegate ----

Deno.test("Task cancellation propagates after a delegate's finally waits", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  function* sub(): Coroutine<void> {
    try {
      yield* sleep(10);
      log.push("sub not reached");
    } finally {
      yield* sleep(1);
      log.push(`sub cleaned at ${loop.time()}`);
    }
  }
  function* outer(): Coroutine<string> {
    yield* sub();
    log.push("outer after sub: must not run");
    return "finished";
  }
  const task = loop.createTask(outer());
  await assertCancelledAfter(loop, task, 2);
  assertEquals(log, ["sub cleaned at 3"]);
  assert(task.cancelled());
  loop.close();
});

Deno.test("Task cancellation propagates after a sub-sub-coroutine's finally waits", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  function* leaf(): Coroutine<void> {
    try {
      yield* sleep(10);
    } finally {
      yield* sleep(1);
      log.push(`leaf cleaned at ${loop.time()}`);
    }
  }
  function* middle(): Coroutine<void> {
    yield* leaf();
    log.push("middle after leaf: must not run");
  }
  function* outer(): Coroutine<void> {
    yield* middle();
    log.push("outer after middle: must not run");
  }
  const task = loop.createTask(outer());
  await assertCancelledAfter(loop, task, 2);
  assertEquals(log, ["leaf cleaned at 3"]);
  assert(task.cancelled());
  loop.close();
});

Deno.test("Task cancellation runs nested finally blocks that wait, innermost first", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  function* leaf(): Coroutine<void> {
    try {
      yield* sleep(10);
    } finally {
      yield* sleep(1);
      log.push(`leaf at ${loop.time()}`);
    }
  }
  function* middle(): Coroutine<void> {
    try {
      yield* leaf();
      log.push("middle body: must not run");
    } finally {
      yield* sleep(2);
      log.push(`middle at ${loop.time()}`);
    }
  }
  function* outer(): Coroutine<void> {
    yield* middle();
    log.push("outer: must not run");
  }
  const task = loop.createTask(outer());
  await assertCancelledAfter(loop, task, 1);
  assertEquals(log, ["leaf at 2", "middle at 4"]);
  loop.close();
});

Deno.test("Task cancellation propagates after a delegate catches, waits and rethrows", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  function* sub(): Coroutine<void> {
    try {
      yield* sleep(10);
    } catch (e) {
      yield* sleep(1);
      log.push("sub rethrows");
      throw e;
    }
  }
  function* outer(): Coroutine<void> {
    yield* sub();
    log.push("outer: must not run");
  }
  const task = loop.createTask(outer());
  await assertCancelledAfter(loop, task, 2);
  assertEquals(log, ["sub rethrows"]);
  loop.close();
});

Deno.test("Task cancellation propagates after a delegate's finally waits, from a bare yield", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  function* sub(): Coroutine<void> {
    try {
      for (;;) yield;
    } finally {
      yield* sleep(1);
      log.push("sub cleaned");
    }
  }
  function* outer(): Coroutine<void> {
    yield* sub();
    log.push("outer: must not run");
  }
  const task = loop.createTask(outer());
  // The task is always ready, so virtual time cannot move: cancel it a few
  // iterations in.
  loop.callSoon(() => loop.callSoon(() => loop.callSoon(() => task.cancel())));
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assertEquals(log, ["sub cleaned"]);
  loop.close();
});

Deno.test("Task cancelled again while a delegate's finally waits ends cancelled", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  function* sub(): Coroutine<void> {
    try {
      yield* sleep(10);
    } finally {
      log.push("cleanup start");
      yield* sleep(5);
      log.push("cleanup end: must not run");
    }
  }
  function* outer(): Coroutine<void> {
    yield* sub();
    log.push("outer: must not run");
  }
  const task = loop.createTask(outer());
  loop.callLater(1, () => task.cancel());
  await assertCancelledAfter(loop, task, 2);
  assertEquals(log, ["cleanup start"]);
  assertEquals(task.cancelling(), 2);
  assertEquals(loop.time(), 2);
  loop.close();
});

Deno.test("Task where the outer coroutine catches a delegate's cancellation can go on", async () => {
  const loop = new VirtualTimeLoop();
  function* sub(): Coroutine<void> {
    try {
      yield* sleep(10);
    } finally {
      yield* sleep(1);
    }
  }
  function* outer(): Coroutine<string> {
    try {
      yield* sub();
    } catch (e) {
      if (e instanceof CancelledError) return `caught at ${loop.time()}`;
      throw e;
    }
    return "not cancelled";
  }
  const task = loop.createTask(outer());
  loop.callLater(2, () => task.cancel());
  assertEquals(await loop.runUntilComplete(task), "caught at 3");
  loop.close();
});

Deno.test("Task cancellation propagates after an async helper's finally waits", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  async function sub(): Promise<void> {
    try {
      await sleep(10);
    } finally {
      await sleep(1);
      log.push(`sub cleaned at ${loop.time()}`);
    }
  }
  const task = loop.createTask(async () => {
    await sub();
    log.push("outer: must not run");
  });
  await assertCancelledAfter(loop, task, 2);
  assertEquals(log, ["sub cleaned at 3"]);
  assert(task.cancelled());
  loop.close();
});

// ---- cancelling() and uncancel() ----

Deno.test("Task.cancelling() counts cancel requests and uncancel() withdraws them", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(function* (): Coroutine<void> {
    yield* sleep(10);
  });
  assertEquals(task.cancelling(), 0);
  assert(task.cancel());
  assert(task.cancel());
  assertEquals(task.cancelling(), 2);
  assertEquals(task.uncancel(), 1);
  assertEquals(task.uncancel(), 0);
  assertEquals(task.uncancel(), 0);
  assertEquals(task.cancelling(), 0);
  // Every request was withdrawn before the coroutine even started.
  await loop.runUntilComplete(task);
  assertFalse(task.cancelled());
  loop.close();
});

Deno.test("Task.uncancel() down to zero withdraws a cancellation not yet delivered", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const task = loop.createTask(function* (): Coroutine<string> {
    yield; // waiting on nothing: the cancellation is only recorded
    log.push("resumed normally");
    return "ok";
  });
  loop.callSoon(() => {
    task.cancel();
    task.uncancel();
  });
  assertEquals(await loop.runUntilComplete(task), "ok");
  assertEquals(log, ["resumed normally"]);
  loop.close();
});

Deno.test("Task.uncancel() lets a timeout-like scope turn cancellation into its own error", async () => {
  const loop = new VirtualTimeLoop();
  class Expired extends Error {}
  const task = loop.createTask(function* (): Coroutine<string> {
    const self = currentTask(loop)!;
    const timer = loop.callLater(1, () => self.cancel());
    try {
      yield* sleep(10);
      return "no timeout";
    } catch (e) {
      if (e instanceof CancelledError && self.uncancel() === 0) {
        throw new Expired(`expired at ${loop.time()}`);
      }
      throw e;
    } finally {
      timer.cancel();
    }
  });
  await assertRejects(
    () => loop.runUntilComplete(task),
    Expired,
    "expired at 1",
  );
  assertEquals(task.cancelling(), 0);
  assertFalse(task.cancelled());
  loop.close();
});

// ---- signal ----

Deno.test("Task.signal is aborted with the CancelledError on cancel()", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(function* (): Coroutine<void> {
    yield* sleep(10);
  });
  const signal = task.signal;
  assertStrictEquals(task.signal, signal);
  assertFalse(signal.aborted);
  const reasons: unknown[] = [];
  signal.addEventListener("abort", () => reasons.push(signal.reason));
  loop.callLater(1, () => task.cancel("abort it"));
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assert(signal.aborted);
  assertEquals(reasons.length, 1);
  assertInstanceOf(reasons[0], CancelledError);
  assertEquals((reasons[0] as Error).message, "abort it");
  loop.close();
});

Deno.test("Task.signal read after cancel() is already aborted", async () => {
  const loop = new VirtualTimeLoop();
  const pending = loop.createTask(function* (): Coroutine<void> {
    yield* sleep(10);
  });
  pending.cancel("early");
  assert(pending.signal.aborted);
  assertEquals((pending.signal.reason as Error).message, "early");
  await assertRejects(() => loop.runUntilComplete(pending), CancelledError);
  const done = loop.createTask(function* (): Coroutine<void> {
    yield* sleep(10);
  });
  done.cancel();
  await assertRejects(() => loop.runUntilComplete(done), CancelledError);
  assert(done.signal.aborted);
  loop.close();
});

Deno.test("Task.signal stays unaborted when the task finishes normally", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(async () => {
    await sleep(1);
    return currentTask()!.signal;
  });
  const signal = await loop.runUntilComplete(task);
  assertFalse(signal.aborted);
  assertFalse(task.signal.aborted);
  loop.close();
});

// ---- Async-function coroutines ----

Deno.test("Task of an async function awaits futures and returns", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(async () => {
    const a = await sleep(1, 20);
    const b = await loop.createTask(async () => await sleep(1, 22));
    return a + b;
  });
  assertEquals(await loop.runUntilComplete(task), 42);
  assertEquals(loop.time(), 2);
  loop.close();
});

Deno.test("Task of an async function passes its rejection to the task", async () => {
  const loop = new VirtualTimeLoop();
  const err = new Error("async failure");
  const task = loop.createTask(async () => {
    await sleep(1);
    throw err;
  });
  assertStrictEquals(
    await assertRejects(() => loop.runUntilComplete(task)),
    err,
  );
  assertStrictEquals(task.exception(), err);
  loop.close();
});

Deno.test("Task of a function that throws synchronously fails with that error", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(
    (() => {
      throw new SyntaxError("sync");
    }) as () => PromiseLike<void>,
  );
  await assertRejects(() => loop.runUntilComplete(task), SyntaxError, "sync");
  loop.close();
});

Deno.test("Task.cancel() rejects the future an async function awaits with CancelledError", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  const log: string[] = [];
  const task = loop.createTask(async () => {
    try {
      await fut;
      log.push("not reached");
    } catch (e) {
      log.push(`${(e as Error).name}: ${(e as Error).message}`);
      throw e;
    }
  });
  loop.callLater(1, () => task.cancel("async cancel"));
  await assertRejects(
    () => loop.runUntilComplete(task),
    CancelledError,
    "async cancel",
  );
  assertEquals(log, ["CancelledError: async cancel"]);
  assert(fut.cancelled());
  assert(task.cancelled());
  loop.close();
});

Deno.test("Task of an async function that catches CancelledError goes on", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(async () => {
    try {
      await sleep(10);
    } catch (e) {
      if (!(e instanceof CancelledError)) throw e;
    }
    await sleep(1);
    return `went on to ${loop.time()}`;
  });
  loop.callLater(2, () => task.cancel());
  assertEquals(await loop.runUntilComplete(task), "went on to 3");
  assertFalse(task.cancelled());
  loop.close();
});

Deno.test("Task of an async function sees a cancellation at its next await of a future after a foreign promise", async () => {
  const loop = new VirtualTimeLoop();
  const foreign = deferred<string>();
  const log: string[] = [];
  const task = loop.createTask(async () => {
    log.push(await foreign.promise);
    try {
      await sleep(1);
      log.push("not reached");
    } catch (e) {
      log.push((e as Error).name);
      throw e;
    }
  });
  loop.callLater(1, () => {
    task.cancel();
    foreign.resolve("foreign settled");
  });
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assertEquals(log, ["foreign settled", "CancelledError"]);
  loop.close();
});

Deno.test("Task of an async function that returns without another await ends cancelled", async () => {
  const loop = new VirtualTimeLoop();
  const foreign = deferred<void>();
  let returned = false;
  const task = loop.createTask(async () => {
    await foreign.promise;
    returned = true;
    return 1;
  });
  loop.callLater(1, () => {
    task.cancel();
    foreign.resolve();
  });
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assert(returned);
  loop.close();
});

Deno.test({
  name: "Task of an async function ignores its outcome once the loop is closed",
  async fn() {
    const loop = new VirtualTimeLoop();
    const foreign = deferred<number>();
    const task = loop.createTask(async () => await foreign.promise);
    const calls: unknown[] = [];
    task.addDoneCallback((t) => calls.push(t));
    await loop.runOnce(); // first step: the function now awaits `foreign`
    loop.close();
    foreign.resolve(1);
    await foreign.promise;
    await new Promise((r) => setTimeout(r, 0));
    assertEquals(calls, []);
  },
});

Deno.test("Task.signal stops foreign work an async function waits for", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(async () => {
    const signal = currentTask()!.signal;
    await new Promise((_resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), {
        once: true,
      });
    });
  });
  loop.callLater(1, () => task.cancel("via signal"));
  await assertRejects(
    () => loop.runUntilComplete(task),
    CancelledError,
    "via signal",
  );
  assert(task.cancelled());
  loop.close();
});

// ---- currentTask ----

Deno.test("currentTask() returns the task of a running generator coroutine", async () => {
  const loop = new VirtualTimeLoop();
  const seen: unknown[] = [];
  const task = loop.createTask(function* (): Coroutine<void> {
    seen.push(currentTask());
    yield* sleep(1);
    seen.push(currentTask(loop));
  });
  await loop.runUntilComplete(task);
  assertStrictEquals(seen[0], task);
  assertStrictEquals(seen[1], task);
  loop.close();
});

Deno.test("currentTask() returns the task of an async function across awaits", async () => {
  const loop = new VirtualTimeLoop();
  const seen: unknown[] = [];
  const task = loop.createTask(async () => {
    seen.push(currentTask());
    await sleep(1);
    seen.push(currentTask());
    await Promise.resolve();
    await new Promise((r) => setTimeout(r, 0));
    seen.push(currentTask());
    await sleep(1);
    seen.push(currentTask(loop));
  });
  await loop.runUntilComplete(task);
  assertEquals(seen.length, 4);
  for (const t of seen) assertStrictEquals(t, task);
  loop.close();
});

Deno.test("currentTask() tells nested tasks apart", async () => {
  const loop = new VirtualTimeLoop();
  const seen: [string, unknown][] = [];
  const made: Task<void>[] = [];
  const outer = loop.createTask(async () => {
    const inner = loop.createTask(function* (): Coroutine<void> {
      seen.push(["inner", currentTask()]);
      yield* sleep(1);
      seen.push(["inner after sleep", currentTask()]);
    });
    made.push(inner);
    await inner;
    seen.push(["outer", currentTask()]);
  });
  await loop.runUntilComplete(outer);
  assertEquals(seen.map(([where]) => where), [
    "inner",
    "inner after sleep",
    "outer",
  ]);
  assertStrictEquals(seen[0][1], made[0]);
  assertStrictEquals(seen[1][1], made[0]);
  assertStrictEquals(seen[2][1], outer);
  loop.close();
});

Deno.test("currentTask() is null outside tasks and for another loop", async () => {
  const loop = new VirtualTimeLoop();
  const other = new VirtualTimeLoop();
  assertEquals(currentTask(), null);
  const seen: unknown[] = [];
  loop.callSoon(() => seen.push(currentTask()));
  const task = loop.createTask(function* (): Coroutine<void> {
    seen.push(currentTask(other));
    yield;
  });
  await loop.runUntilComplete(task);
  assertEquals(seen, [null, null]);
  assertEquals(currentTask(), null);
  loop.close();
  other.close();
});

Deno.test("currentTask() is null in a plain callback scheduled by a task", async () => {
  const loop = new VirtualTimeLoop();
  const seen: unknown[] = ["unset", "unset"];
  const done = loop.createFuture<void>();
  const task = loop.createTask(async () => {
    await sleep(1);
    loop.callSoon(() => {
      seen[0] = currentTask();
    });
    loop.callLater(1, () => {
      seen[1] = currentTask();
      done.setResult(undefined);
    });
  });
  await loop.runUntilComplete(task);
  await loop.runUntilComplete(done);
  assertEquals(seen, [null, null]);
  loop.close();
});

// ---- allTasks ----

Deno.test("allTasks() returns the loop's pending tasks only", async () => {
  const loop = new VirtualTimeLoop();
  const other = new VirtualTimeLoop();
  const quick = loop.createTask(async () => {});
  const slow = loop.createTask(async () => await sleep(10));
  const foreign = other.createTask(async () => {});
  const before = allTasks(loop);
  assertEquals(before, new Set([quick, slow]));
  await loop.runUntilComplete(quick);
  assertEquals(allTasks(loop), new Set([slow]));
  assert(before.has(quick), "allTasks() returns a new set each time");
  await loop.runUntilComplete(slow);
  assertEquals(allTasks(loop).size, 0);
  assertEquals(allTasks(other), new Set([foreign]));
  foreign.cancel();
  await other.runUntilComplete(foreign).catch(() => {});
  loop.close();
  other.close();
});

Deno.test("allTasks() defaults to the running loop and is empty outside one", async () => {
  const loop = new VirtualTimeLoop();
  assertEquals(allTasks().size, 0);
  const task = loop.createTask(() => Promise.resolve(allTasks()));
  const seen = await loop.runUntilComplete(task);
  assertEquals(seen, new Set([task]));
  loop.close();
});

Deno.test("allTasks() includes tasks made in debug mode", async () => {
  const loop = new VirtualTimeLoop();
  loop.setDebug(true);
  const task = loop.createTask(async () => await sleep(1));
  assertEquals(allTasks(loop), new Set([task]));
  await loop.runUntilComplete(task);
  assertEquals(allTasks(loop).size, 0);
  loop.close();
});

Deno.test("allTasks() forgets cancelled and failed tasks", async () => {
  const loop = new VirtualTimeLoop();
  const a = loop.createTask(async () => await sleep(5));
  const b = loop.createTask(() => Promise.reject(new Error("x")));
  a.cancel();
  await loop.runUntilComplete(a).catch(() => {});
  await loop.runUntilComplete(b).catch(() => {});
  assertEquals(allTasks(loop).size, 0);
  loop.close();
});

// ---- ensureFuture ----

Deno.test("ensureFuture() returns a future or task unchanged", () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  const task = loop.createTask(() => Promise.resolve(1));
  assertStrictEquals(ensureFuture(fut), fut);
  assertStrictEquals(ensureFuture(fut, { loop }), fut);
  assertStrictEquals(ensureFuture(task, { loop }), task);
  task.cancel();
  loop.close();
});

Deno.test("ensureFuture() wraps a coroutine in a task and a promise in a future", async () => {
  const loop = new VirtualTimeLoop();
  function* gen(): Coroutine<string> {
    yield* sleep(1);
    return "coroutine";
  }
  const t = ensureFuture(gen(), { loop });
  assertInstanceOf(t, Task);
  assertStrictEquals(t.getLoop(), loop);
  const f = ensureFuture(Promise.resolve("promise"), { loop });
  assertInstanceOf(f, Future);
  assertFalse(f instanceof Task);
  assertEquals(await loop.runUntilComplete(t), "coroutine");
  assertEquals(await loop.runUntilComplete(f), "promise");
  loop.close();
});

Deno.test("ensureFuture() throws InvalidStateError for a future of another loop", () => {
  const loop = new VirtualTimeLoop();
  const other = new VirtualTimeLoop();
  assertThrows(
    () => ensureFuture(other.createFuture(), { loop }),
    InvalidStateError,
    "Cannot ensure a future: it belongs to another loop",
  );
  loop.close();
  other.close();
});

Deno.test("ensureFuture() throws TypeError for something not awaitable", async () => {
  const loop = new VirtualTimeLoop();
  assertThrows(
    () => ensureFuture(42 as never, { loop }),
    TypeError,
    "Cannot ensure a future: expected a Future, a coroutine or a promise, received number",
  );
  assertThrows(
    () => ensureFuture(null as never, { loop }),
    TypeError,
    "received null",
  );
  assertThrows(() => ensureFuture({} as never, { loop }), TypeError);
  // A coroutine function (rather than the coroutine it makes) is the
  // likely slip: the message says what to pass instead.
  assertThrows(
    () => ensureFuture((async () => await 1) as never, { loop }),
    TypeError,
    "received a function (call it, or pass it to createTask())",
  );
  // runUntilComplete() runs one as a task instead.
  assertEquals(await loop.runUntilComplete(function* () {}), undefined);
  loop.close();
});

// ---- @std/async interop (real timers: kept tiny and bounded) ----

Deno.test("Future works with @std/async deadline() through Promise.resolve()", async () => {
  const loop = new BaseEventLoop();
  const task = loop.createTask(async () => {
    const fut = loop.createFuture<string>();
    loop.callSoon(() => fut.setResult("in time"));
    // deadline() races native promises; a Future is PromiseLike, so give it
    // one (a bare Future would be taken for an async iterable).
    const value = await deadline(Promise.resolve(fut), 60_000);
    const never = loop.createFuture<string>();
    let timedOut: unknown = null;
    try {
      await deadline(Promise.resolve(never), 1);
    } catch (e) {
      timedOut = e;
    }
    never.cancel();
    return [value, timedOut] as const;
  });
  const [value, timedOut] = await loop.runUntilComplete(task);
  assertEquals(value, "in time");
  assertInstanceOf(timedOut, DOMException);
  assertEquals((timedOut as DOMException).name, "TimeoutError");
  loop.close();
});

Deno.test("Task.signal works with @std/async abortable()", async () => {
  const loop = new BaseEventLoop();
  const task = loop.createTask(async () => {
    const never = new Promise<never>(() => {});
    await abortable(never, currentTask()!.signal);
  });
  loop.callSoon(() => task.cancel("aborted by task"));
  await assertRejects(
    () => loop.runUntilComplete(task),
    CancelledError,
    "aborted by task",
  );
  assert(task.cancelled());
  loop.close();
});

Deno.test("Future works with @std/async abortable() through Promise.resolve()", async () => {
  const loop = new BaseEventLoop();
  const task = loop.createTask(async () => {
    const fut = loop.createFuture<number>();
    loop.callSoon(() => fut.setResult(3));
    return await abortable(Promise.resolve(fut), currentTask()!.signal);
  });
  assertEquals(await loop.runUntilComplete(task), 3);
  loop.close();
});

Deno.test("Future works with @std/async retry()", async () => {
  const loop = new BaseEventLoop();
  let attempts = 0;
  const task = loop.createTask(async () => {
    return await retry(() => {
      attempts++;
      const fut = loop.createFuture<string>();
      if (attempts < 3) {
        loop.callSoon(() => fut.setException(new Error("flaky")));
      } else loop.callSoon(() => fut.setResult(`ok after ${attempts}`));
      return fut;
    }, {
      minTimeout: 0,
      maxTimeout: 1,
      multiplier: 1,
      jitter: 0,
      maxAttempts: 5,
    });
  });
  assertEquals(await loop.runUntilComplete(task), "ok after 3");
  assertEquals(attempts, 3);
  loop.close();
});

Deno.test("Task.signal stops an @std/async retry() loop", async () => {
  const loop = new BaseEventLoop();
  let attempts = 0;
  const task: Task<unknown> = loop.createTask(async () => {
    const signal = currentTask()!.signal;
    return await retry(() => {
      attempts++;
      if (attempts === 2) task.cancel("stop retrying");
      return Promise.reject(new Error("always"));
    }, { minTimeout: 0, maxTimeout: 1, jitter: 0, maxAttempts: 1000, signal });
  });
  await assertRejects(
    () => loop.runUntilComplete(task),
    CancelledError,
    "stop retrying",
  );
  assertEquals(attempts, 2);
  loop.close();
});

// ---- Debug mode: pending tasks that are garbage-collected ----

// `--expose-gc` cannot be passed per test, but V8 accepts it at run time
// through node:v8, and a new context then hands out `gc`.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

function abandonTask(loop: VirtualTimeLoop, name: string): void {
  // The task waits on a future that only it references: once the loop
  // has run its first step, nothing outside holds either of them.
  loop.createTask(function* (): Coroutine<void> {
    yield* loop.createFuture<void>();
  }, { name });
}

Deno.test("Task in debug mode is reported when destroyed while pending", async () => {
  const loop = new VirtualTimeLoop();
  loop.setDebug(true);
  const reports: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => reports.push(ctx));
  abandonTask(loop, "forgotten");
  loop.callSoon(() => loop.callSoon(() => loop.stop()));
  await loop.runForever();
  assertEquals(allTasks(loop).size, 1);
  for (let i = 0; i < 50 && reports.length === 0; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 0));
  }
  assertEquals(reports.map((r) => r.message), [
    "Task was destroyed but it is pending: forgotten",
  ]);
  assertEquals(allTasks(loop).size, 0);
  loop.close();
});

Deno.test("Task in debug mode resumed just as its loop stops is reported when destroyed while pending (nothing keeps what it resumed with)", async () => {
  const loop = new VirtualTimeLoop();
  loop.setDebug(true);
  const reports: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => reports.push(ctx));
  (() => {
    const first = loop.createFuture<void>();
    loop.createTask(async () => {
      await first;
      await loop.createFuture<void>();
    }, { name: "forgotten" });
    // The run stops in the iteration that resumes the task, before the
    // loop lets it run: it runs on after, and waits again, abandoned.
    loop.callSoon(() => {
      loop.callSoon(() => loop.stop());
      first.setResult();
    });
  })();
  await loop.runForever();
  for (let i = 0; i < 50 && reports.length === 0; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 0));
  }
  assertEquals(reports.map((r) => r.message), [
    "Task was destroyed but it is pending: forgotten",
  ]);
  loop.close();
});

Deno.test("Task outside debug mode is kept alive while pending", async () => {
  const loop = new VirtualTimeLoop();
  const reports: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => reports.push(ctx));
  abandonTask(loop, "kept");
  loop.callSoon(() => loop.callSoon(() => loop.stop()));
  await loop.runForever();
  // One full collection was enough for the debug-mode report above.
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 0));
  }
  assertEquals(reports, []);
  const [task] = allTasks(loop);
  assertEquals(task.getName(), "kept");
  task.cancel();
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  loop.close();
});

Deno.test("Task of an async function finds its loop when resumed between runs", async () => {
  const loop = new VirtualTimeLoop();
  const gate = Promise.withResolvers<void>();
  const task = loop.createTask(async () => {
    await gate.promise;
    // Resumed by a native promise while the loop is not running.
    return await sleep(1, "ok");
  });
  await loop.runUntilComplete(sleep(0, undefined, { loop }));
  gate.resolve();
  await gate.promise;
  await null;
  assertEquals(await loop.runUntilComplete(task), "ok");
  loop.close();
});

// ---- Scenarios from asyncio's own tests ----

Deno.test("Task.cancel() after the awaited future finished still cancels an async function at its await", async () => {
  await assertCancelledAfterResult((loop, fut, log) =>
    loop.createTask(async () => {
      try {
        await fut;
        log.push("got result");
      } catch (e) {
        log.push((e as Error).name);
        throw e;
      }
    })
  );
});

Deno.test("Task of an async function awaiting another loop's future gets InvalidStateError", async () => {
  await assertForeignAwaitFails((loop, foreign) =>
    loop.createTask(async () => {
      await foreign;
    })
  );
});

Deno.test("Task of an async function awaiting its own task gets InvalidStateError", async () => {
  await assertSelfAwaitFails((loop, self) =>
    loop.createTask(async () => {
      await sleep(0);
      await self();
    })
  );
});

Deno.test("Task awaiting a cancelled task re-raises the same CancelledError object", async () => {
  const loop = new VirtualTimeLoop();
  let raised: unknown;
  const child = loop.createTask(function* (): Coroutine<void> {
    try {
      yield* sleep(10);
    } catch (e) {
      raised = e;
      throw e;
    }
  });
  const seen: unknown[] = [];
  const genParent = loop.createTask(function* (): Coroutine<void> {
    try {
      yield* child;
    } catch (e) {
      seen.push(e);
    }
  });
  const asyncParent = loop.createTask(async () => {
    try {
      await child;
    } catch (e) {
      seen.push(e);
    }
  });
  loop.callLater(1, () => child.cancel("stop"));
  await loop.runUntilComplete(genParent);
  await loop.runUntilComplete(asyncParent);
  assertInstanceOf(raised, CancelledError);
  assertEquals(seen.length, 2);
  assertStrictEquals(seen[0], raised);
  assertStrictEquals(seen[1], raised);
  loop.close();
});

Deno.test("Task of a function that returns a future cancels that future on cancel()", async () => {
  const loop = new VirtualTimeLoop();
  const inner = sleep(100, "late", { loop });
  let waiting: Future<string> | undefined;
  const task = loop.createTask(() => waiting = waitFor(inner, 60));
  loop.callLater(1, () => task.cancel());
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assert(waiting!.cancelled());
  assert(inner.cancelled());
  assertEquals(loop.time(), 1);
  loop.close();
});

// ---- yield future without the * ----

Deno.test("Task: a bare `yield future` waits for the future and evaluates to its result", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<string>();
  loop.callLater(1, () => fut.setResult("done"));
  const task = loop.createTask(function* () {
    const value = yield fut;
    return [value, loop.time()];
  });
  const start = loop.time();
  const [value, at] = await loop.runUntilComplete(task);
  assertEquals(value, "done");
  assertEquals(at, start + 1);
  loop.close();
});

Deno.test("Task: a bare `yield future` throws the future's error at the yield", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<string>();
  const boom = new Error("boom");
  loop.callLater(1, () => fut.setException(boom));
  const task = loop.createTask(function* () {
    try {
      yield fut;
      return "resumed";
    } catch (e) {
      return e;
    }
  });
  assertStrictEquals(await loop.runUntilComplete(task), boom);
  loop.close();
});

Deno.test("Task: yielding a coroutine object without the * says to use yield*", async () => {
  const loop = new VirtualTimeLoop();
  function* inner(): Coroutine<number> {
    yield;
    return 1;
  }
  const task = loop.createTask(function* () {
    yield inner() as unknown as Future<number>;
  });
  await assertRejects(
    () => loop.runUntilComplete(task),
    TypeError,
    "a coroutine object (yield* it to wait for it)",
  );
  loop.close();
});

Deno.test("ensureFuture() refuses options that are not an object like { loop } (a loop given bare included)", () => {
  const loop = new VirtualTimeLoop();
  assertThrows(
    () => ensureFuture(Promise.resolve(1), loop as never),
    TypeError,
    "Cannot ensure a future: options must be an object like { loop }",
  );
  loop.close();
});

Deno.test("an async generator is refused as a task's coroutine with a TypeError, as asyncio refuses one, instead of spinning the loop", async () => {
  // It has next() and throw() like a generator, but its steps are promises:
  // the task took each for a bare yield and spun without end.
  const loop = new VirtualTimeLoop();
  // deno-lint-ignore require-yield
  async function* agen(): AsyncGenerator<never, number> {
    return 1;
  }
  assertThrows(
    () => loop.createTask(agen() as never),
    TypeError,
    "an async generator",
  );
  assertThrows(() => ensureFuture(agen() as never, { loop }), TypeError);
  const task = loop.createTask(agen as never);
  await assertRejects(
    () => loop.runUntilComplete(task),
    TypeError,
    "async generator",
  );
  loop.close();
});

// asyncio's __step keeps any CancelledError thrown in (isinstance check),
// even when the awaited future is not cancelled() but failed with one — a
// gather() whose child was cancelled does. Generator and async tasks must
// agree.
Deno.test("Task.cancel() before the task resumes from a gather() failed with its child's CancelledError keeps that error in both task kinds, as asyncio's __step", async () => {
  const got: Record<string, string> = {};
  for (const style of ["generator", "async"] as const) {
    const loop = new VirtualTimeLoop();
    const child = loop.createFuture<void>();
    const outer = gather([child], { loop });
    const body = (e: unknown) => {
      got[style] = (e as Error).message;
      throw e;
    };
    const task = style === "generator"
      ? loop.createTask(function* (): Coroutine<void> {
        try {
          yield* outer;
        } catch (e) {
          body(e);
        }
      })
      : loop.createTask(async () => {
        try {
          await outer;
        } catch (e) {
          body(e);
        }
      });
    // Added before the task awaits `outer`: runs before its wake-up.
    outer.addDoneCallback(() => task.cancel("task-msg"));
    loop.callLater(1, () => child.cancel("child-msg"));
    await assertRejects(() => loop.runUntilComplete(task), CancelledError);
    loop.close();
  }
  assertEquals(got, { generator: "child-msg", async: "child-msg" });
});

// ---- Cases from CPython's test_tasks.py ----

// Mirrors CPython's BaseTaskTests.test_cancel_both_task_and_inner_future.
Deno.test("Task: cancelling the awaited future and the task in one turn ends both cancelled", async () => {
  const loop = new VirtualTimeLoop();
  const f = new Future<void>({ loop });
  const t = loop.createTask(async () => {
    await f;
    return 12;
  });
  await loop.runUntilComplete(sleep(0, undefined, { loop }));
  f.cancel();
  t.cancel();
  await assertRejects(() => loop.runUntilComplete(t), CancelledError);
  assert(f.cancelled() && t.cancelled());
  loop.close();
});

// Mirrors CPython's BaseTaskTests.test_cancel_awaited_task.
Deno.test("Task that cancels itself and then awaits a task cancels that task and what it waits for", async () => {
  const loop = new VirtualTimeLoop();
  const fut = new Future<void>({ loop });
  let nested: Task<void> | undefined;
  const task: Task<void> = loop.createTask(async () => {
    nested = loop.createTask(async () => {
      await fut;
    });
    await sleep(0);
    task.cancel();
    await nested;
  });
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assert(task.cancelled());
  assert(nested!.cancelled());
  assert(fut.cancelled());
  loop.close();
});

// Mirrors CPython's BaseTaskTests.test_current_task_with_interleaving_tasks.
Deno.test("currentTask() stays right for two async tasks that wake each other", async () => {
  const loop = new VirtualTimeLoop();
  const fut1 = new Future<boolean>({ loop });
  const fut2 = new Future<boolean>({ loop });
  const seen: [string, boolean][] = [];
  const t1: Task<void> = loop.createTask(async () => {
    seen.push(["1 start", currentTask() === t1]);
    await fut1;
    seen.push(["1 woken", currentTask() === t1]);
    fut2.setResult(true);
  });
  const t2: Task<void> = loop.createTask(async () => {
    seen.push(["2 start", currentTask() === t2]);
    fut1.setResult(true);
    await fut2;
    seen.push(["2 woken", currentTask() === t2]);
  });
  await loop.runUntilComplete(loop.createTask(async () => {
    await t1;
    await t2;
  }));
  assertEquals(seen, [
    ["1 start", true],
    ["2 start", true],
    ["1 woken", true],
    ["2 woken", true],
  ]);
  assertEquals(currentTask(loop), null);
  loop.close();
});
