import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  CancelledError,
  InvalidStateError,
  TimeoutError,
} from "../../futures/errors.ts";
import { Event } from "../../tasks/event.ts";
import { sleep } from "../../tasks/sleep.ts";
import { type Coroutine, currentTask, type Task } from "../../tasks/task.ts";
import { TaskGroup, withTaskGroup } from "../../tasks/task_group.ts";
import { timeout } from "../../tasks/timeout.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { assertCancelledAfter } from "../_helpers.ts";

function* after<T>(delay: number, value: T): Coroutine<T> {
  yield* sleep(delay);
  return value;
}

function* failAfter(delay: number, message: string): Coroutine<never> {
  yield* sleep(delay);
  throw new Error(message);
}

function messages(e: unknown): string[] {
  assertInstanceOf(e, AggregateError);
  return (e as AggregateError).errors.map((x) => (x as Error).message);
}

// ---- Waiting for the children ----

Deno.test("withTaskGroup() in a generator waits for every child and returns the body's value", async () => {
  const loop = new VirtualTimeLoop();
  const tasks: Task<string>[] = [];
  function* main(): Coroutine<string> {
    const v = yield* withTaskGroup(function* (tg) {
      tasks.push(tg.createTask(after(3, "slow")));
      tasks.push(tg.createTask(async () => await sleep(1, "fast")));
      return "body";
    });
    assertEquals(loop.time(), 3);
    return v;
  }
  assertEquals(await loop.runUntilComplete(main()), "body");
  assertEquals(tasks.map((t) => t.result()), ["slow", "fast"]);
  loop.close();
});

Deno.test("withTaskGroup() in an async function waits for every child", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const seen: string[] = [];
    const v = await withTaskGroup(async (tg) => {
      tg.createTask(async () => seen.push(await sleep(2, "b")));
      tg.createTask(async () => seen.push(await sleep(1, "a")));
      await sleep(0.5);
      return "body";
    });
    return [v, seen, loop.time()];
  });
  assertEquals(await loop.runUntilComplete(main), ["body", ["a", "b"], 2]);
  loop.close();
});

Deno.test("TaskGroup with await using waits for the children at the end of the block", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const seen: string[] = [];
    {
      await using tg = new TaskGroup();
      tg.createTask(after(2, "b")).addDoneCallback((t) =>
        seen.push(t.result())
      );
      tg.createTask(after(1, "a")).addDoneCallback((t) =>
        seen.push(t.result())
      );
      seen.push("end of block");
    }
    seen.push(`after block at ${loop.time()}`);
    return seen;
  });
  assertEquals(await loop.runUntilComplete(main), [
    "end of block",
    "a",
    "b",
    "after block at 2",
  ]);
  loop.close();
});

Deno.test("TaskGroup.createTask() refuses options that are not an object like { name }, rather than dropping the name", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<string> {
    const tg = new TaskGroup();
    assertThrows(
      () => tg.createTask(after(1, 1), "worker" as never),
      TypeError,
      "Cannot create a Task: options must be an object like { name }",
    );
    const named = tg.createTask(after(1, 1), {
      name: 42 as unknown as string,
    });
    yield* tg.wait();
    return named.getName();
  });
  assertStrictEquals(await loop.runUntilComplete(main), "42");
  loop.close();
});

Deno.test("TaskGroup.wait() resolves when the children are done, and is the same future each time", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<number> {
    const tg = new TaskGroup();
    tg.createTask(after(1, 1));
    tg.createTask(after(4, 4));
    const w = tg.wait();
    assertStrictEquals(tg.wait(), w);
    yield* w;
    return loop.time();
  });
  assertEquals(await loop.runUntilComplete(main), 4);
  loop.close();
});

Deno.test("TaskGroup.wait() accepts tasks added while it waits", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const tg = new TaskGroup();
    tg.createTask(async () => {
      await sleep(1);
      tg.createTask(after(5, "late child"));
    });
    await tg.wait();
    return loop.time();
  });
  assertEquals(await loop.runUntilComplete(main), 6);
  loop.close();
});

Deno.test("TaskGroup.wait() with no children resolves at once", async () => {
  const loop = new VirtualTimeLoop();
  const tg = new TaskGroup({ loop });
  await loop.runUntilComplete(tg.wait());
  assertEquals(loop.time(), 0);
  loop.close();
});

Deno.test("TaskGroup outside any task has no parent and still waits", async () => {
  const loop = new VirtualTimeLoop();
  const tg = new TaskGroup({ loop });
  const a = tg.createTask(after(2, "a"), { name: "child-a" });
  assertEquals(a.getName(), "child-a");
  await loop.runUntilComplete(tg.wait());
  assertEquals(a.result(), "a");
  loop.close();
});

Deno.test("withTaskGroup() run directly by the loop belongs to the task that runs it", async () => {
  const loop = new VirtualTimeLoop();
  const coro = withTaskGroup(function* (tg) {
    const child = tg.createTask(after(1, "child"));
    yield* sleep(2);
    return child.result();
  }, { loop });
  assertEquals(await loop.runUntilComplete(coro), "child");
  loop.close();
});

Deno.test("TaskGroup: a cancelled child is not an error", async () => {
  const loop = new VirtualTimeLoop();
  function* main(): Coroutine<string> {
    return yield* withTaskGroup(function* (tg) {
      const doomed = tg.createTask(after(10, "never"));
      tg.createTask(after(2, "ok"));
      yield* sleep(1);
      doomed.cancel();
      return "fine";
    });
  }
  assertEquals(await loop.runUntilComplete(main()), "fine");
  assertEquals(loop.time(), 2);
  loop.close();
});

// ---- A failing child ----

Deno.test("withTaskGroup(): a failing child cancels its siblings and the body", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  let sibling: Task<string> | undefined;
  const main = loop.createTask(function* (): Coroutine<string[]> {
    try {
      yield* withTaskGroup(function* (tg) {
        sibling = tg.createTask(after(60, "sibling"));
        tg.createTask(failAfter(1, "boom"));
        try {
          yield* sleep(30);
          log.push("body finished");
        } catch (e) {
          log.push(`body got ${(e as Error).name} at ${loop.time()}`);
          throw e;
        }
      });
    } catch (e) {
      log.push(...messages(e));
    }
    // The parent is not left cancelled: it can wait again.
    yield* sleep(1);
    log.push(`parent cancelling=${currentTask()!.cancelling()}`);
    return log;
  });
  assertEquals(await loop.runUntilComplete(main), [
    "body got CancelledError at 1",
    "boom",
    "parent cancelling=0",
  ]);
  assert(sibling!.cancelled());
  assertFalse(main.cancelled());
  loop.close();
});

Deno.test("withTaskGroup(): a failing child cancels the siblings in an async function", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    let sibling: Task<string> | undefined;
    try {
      await withTaskGroup(async (tg) => {
        sibling = tg.createTask(after(60, "sibling"));
        tg.createTask(failAfter(1, "boom"));
        await sleep(30);
      });
    } catch (e) {
      await sleep(1);
      return [...messages(e), sibling!.cancelled(), loop.time()];
    }
  });
  assertEquals(await loop.runUntilComplete(main), ["boom", true, 2]);
  loop.close();
});

Deno.test("TaskGroup: children that fail together are all reported", async () => {
  const loop = new VirtualTimeLoop();
  const tg = new TaskGroup({ loop });
  tg.createTask(failAfter(1, "one"));
  tg.createTask(failAfter(1, "two"));
  tg.createTask(after(5, "cancelled"));
  const err = await loop.runUntilComplete(tg.wait()).catch((e) => e);
  assertEquals(messages(err), ["one", "two"]);
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("TaskGroup: an error in a sibling's cleanup joins the AggregateError", async () => {
  const loop = new VirtualTimeLoop();
  const tg = new TaskGroup({ loop });
  tg.createTask(function* (): Coroutine<void> {
    try {
      yield* sleep(60);
    } finally {
      yield* sleep(2);
      // deno-lint-ignore no-unsafe-finally
      throw new Error("cleanup failed");
    }
  });
  tg.createTask(failAfter(1, "first"));
  const err = await loop.runUntilComplete(tg.wait()).catch((e) => e);
  assertEquals(messages(err), ["first", "cleanup failed"]);
  assertEquals(loop.time(), 3);
  loop.close();
});

Deno.test("TaskGroup.wait(): a failing child rejects the parent's wait with AggregateError", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<string> {
    const tg = new TaskGroup();
    const sibling = tg.createTask(after(60, "x"));
    tg.createTask(failAfter(1, "boom"));
    try {
      yield* tg.wait();
    } catch (e) {
      assertEquals(messages(e), ["boom"]);
    }
    yield* sleep(1); // not cancelled
    return `${sibling.cancelled()} ${currentTask()!.cancelling()}`;
  });
  assertEquals(await loop.runUntilComplete(main), "true 0");
  loop.close();
});

Deno.test("TaskGroup with await using: a failing child interrupts the block", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const main = loop.createTask(async () => {
    try {
      await using tg = new TaskGroup();
      tg.createTask(failAfter(1, "boom"));
      await sleep(30);
      log.push("block finished");
    } catch (e) {
      // The block's CancelledError is suppressed by the group's error.
      const s = e as { error: unknown; suppressed: unknown };
      log.push(...messages(s.error));
      log.push((s.suppressed as Error).name);
    }
    await sleep(1);
    return log;
  });
  assertEquals(await loop.runUntilComplete(main), ["boom", "CancelledError"]);
  assertEquals(loop.time(), 2);
  loop.close();
});

Deno.test("TaskGroup: a child failing after its parent is done is reported to the loop", async () => {
  const loop = new VirtualTimeLoop();
  const reported: string[] = [];
  loop.setExceptionHandler((_l, ctx) => reported.push(ctx.message));
  const main = loop.createTask(function* (): Coroutine<TaskGroup> {
    const tg = new TaskGroup();
    tg.createTask(failAfter(1, "late"));
    yield;
    return tg; // leaves without waiting
  });
  const tg = await loop.runUntilComplete(main);
  await loop.advance(2);
  assertEquals(reported.length, 1);
  assert(reported[0].includes("parent task is already done"));
  assertEquals(Deno.inspect(tg), "TaskGroup active tasks=0 errors=1");
  loop.close();
});

// ---- The body fails ----

Deno.test("withTaskGroup(): an error in the generator body cancels the children and joins the errors", async () => {
  const loop = new VirtualTimeLoop();
  let child: Task<string> | undefined;
  function* main(): Coroutine<string[]> {
    try {
      yield* withTaskGroup(function* (tg) {
        child = tg.createTask(after(60, "child"));
        yield* sleep(1);
        throw new Error("body failed");
      });
    } catch (e) {
      return messages(e);
    }
    return [];
  }
  assertEquals(await loop.runUntilComplete(main()), ["body failed"]);
  assert(child!.cancelled());
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("withTaskGroup(): children's errors come before the body's", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    try {
      await withTaskGroup(async (tg) => {
        tg.createTask(function* (): Coroutine<void> {
          try {
            yield* sleep(60);
          } finally {
            // deno-lint-ignore no-unsafe-finally
            throw new Error("child cleanup");
          }
        });
        await sleep(1);
        throw new Error("body");
      });
    } catch (e) {
      return messages(e);
    }
  });
  assertEquals(await loop.runUntilComplete(main), ["child cleanup", "body"]);
  loop.close();
});

// ---- Cancellation from outside ----

Deno.test("withTaskGroup(): cancelling the parent cancels the children (generator)", async () => {
  const loop = new VirtualTimeLoop();
  const children: Task<string>[] = [];
  const main = loop.createTask(function* (): Coroutine<void> {
    yield* withTaskGroup(function* (tg) {
      children.push(tg.createTask(after(60, "a")));
      children.push(tg.createTask(after(60, "b")));
    });
  });
  await assertCancelledAfter(loop, main, 1);
  assert(main.cancelled());
  assert(children.every((c) => c.cancelled()));
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("withTaskGroup(): cancelling the parent while the body waits cancels the children (async)", async () => {
  const loop = new VirtualTimeLoop();
  const children: Task<string>[] = [];
  const main = loop.createTask(async () => {
    await withTaskGroup(async (tg) => {
      children.push(tg.createTask(after(60, "a")));
      await sleep(30);
    });
  });
  await assertCancelledAfter(loop, main, 1);
  assert(main.cancelled());
  assert(children[0].cancelled());
  loop.close();
});

Deno.test("TaskGroup.wait(): cancelling the waiting parent cancels the children", async () => {
  const loop = new VirtualTimeLoop();
  let child: Task<string> | undefined;
  const main = loop.createTask(async () => {
    const tg = new TaskGroup();
    child = tg.createTask(after(60, "a"));
    await tg.wait();
  });
  await assertCancelledAfter(loop, main, 1);
  assert(main.cancelled());
  assert(child!.cancelled());
  loop.close();
});

// The four ways to use a group, each as a task body that runs `start` in
// the group and then waits for it; `caught` says whether the group's
// AggregateError is caught, after which the body returns "returned".
type GroupForm = (
  start: (tg: TaskGroup) => void,
  caught: boolean,
) => Coroutine<string> | (() => Promise<string>);
const GROUP_FORMS: [string, GroupForm][] = [
  [
    "withTaskGroup(generator)",
    (start, caught) =>
      (function* (): Coroutine<string> {
        try {
          yield* withTaskGroup(function* (tg): Coroutine<void> {
            start(tg);
          });
        } catch (e) {
          if (!caught || !(e instanceof AggregateError)) throw e;
        }
        return "returned";
      })(),
  ],
  ["withTaskGroup(async)", (start, caught) => async () => {
    try {
      // deno-lint-ignore require-await
      await withTaskGroup(async (tg) => {
        start(tg);
      });
    } catch (e) {
      if (!caught || !(e instanceof AggregateError)) throw e;
    }
    return "returned";
  }],
  ["TaskGroup.wait()", (start, caught) => async () => {
    try {
      const tg = new TaskGroup();
      start(tg);
      await tg.wait();
    } catch (e) {
      if (!caught || !(e instanceof AggregateError)) throw e;
    }
    return "returned";
  }],
  ["await using", (start, caught) => async () => {
    try {
      await using tg = new TaskGroup();
      start(tg);
    } catch (e) {
      if (!caught || !(e instanceof AggregateError)) throw e;
    }
    return "returned";
  }],
];

for (const [form, body] of GROUP_FORMS) {
  // asyncio's TaskGroup cancels its children when the cancelled parent
  // resumes in __aexit__, one loop turn after the cancel(): a child made
  // just before runs its first step (3.11 and 3.13 alike).
  Deno.test(`TaskGroup (${form}): a child made before the parent is cancelled starts before it is cancelled`, async () => {
    const loop = new VirtualTimeLoop();
    const log: string[] = [];
    // Runs first, so the cancel() comes before the child's first step.
    // deno-lint-ignore require-yield
    loop.createTask(function* (): Coroutine<void> {
      loop.callSoon(() => parent.cancel());
    }());
    const parent = loop.createTask(body((tg) => {
      tg.createTask(async () => {
        log.push("child started");
        try {
          await sleep(0);
        } catch (e) {
          log.push(`child ${(e as Error).name}`);
          throw e;
        }
      });
    }, false));
    await assertRejects(() => loop.runUntilComplete(parent), CancelledError);
    assertEquals(log, ["child started", "child CancelledError"]);
    loop.close();
  });

  // asyncio 3.13's exit re-cancels a parent cancelled from outside when
  // errors win (uncancel(), then cancel()) in the parent itself: a parent
  // that catches the ExceptionGroup and returns at once ends cancelled.
  Deno.test(`TaskGroup (${form}): a parent cancelled from outside that catches the group's errors and returns ends cancelled`, async () => {
    const loop = new VirtualTimeLoop();
    const parent = loop.createTask(body((tg) => {
      tg.createTask(async () => {
        try {
          await sleep(10);
        } catch {
          throw new RangeError("cleanup failed");
        }
      });
    }, true));
    loop.callLater(0.5, () => parent.cancel());
    await assertRejects(() => loop.runUntilComplete(parent), CancelledError);
    assertEquals(loop.time(), 0.5);
    loop.close();
  });

  // A parent that cancels itself in the block's last step was not
  // interrupted: asyncio's exit gets the CancelledError at its own wait,
  // cancels the children when the parent resumes there (a child made just
  // before has started), and raises it — the code after the block does
  // not run.
  Deno.test(`TaskGroup (${form}): a parent that cancels itself as the block ends gets the CancelledError from the group`, async () => {
    const loop = new VirtualTimeLoop();
    const log: string[] = [];
    const parent = loop.createTask(body((tg) => {
      tg.createTask(async () => {
        log.push("child started");
        try {
          await sleep(0);
        } catch (e) {
          log.push(`child ${(e as Error).name}`);
          throw e;
        }
      });
      currentTask()!.cancel();
    }, false));
    await assertRejects(() => loop.runUntilComplete(parent), CancelledError);
    assertEquals(log, ["child started", "child CancelledError"]);
    assertEquals(parent.cancelling(), 1);
    loop.close();
  });

  // A cancel() in the turn the last child ended: asyncio's parent resumes
  // in __aexit__ in the slot the cancel() booked (the group's own wait was
  // cancelled), finds no child left and ends there, so a cancel() one turn
  // later finds it done. Pinned against asyncio 3.13's output for
  // `async with TaskGroup() as tg: tg.create_task(noop())` cancelled the
  // same way with loop.call_soon(): `False 1`.
  Deno.test(`TaskGroup (${form}): a cancel() in the turn the last child ended ends the parent in the slot it booked`, async () => {
    const loop = new VirtualTimeLoop();
    const seen: [boolean, number][] = [];
    const parent = loop.createTask(body((tg) => {
      tg.createTask(async () => {});
    }, false));
    // The parent's step, then the child's step, in which turn it is cancelled.
    loop.callSoon(() =>
      loop.callSoon(() => {
        parent.cancel("n1");
        loop.callSoon(() => seen.push([parent.cancel(), parent.cancelling()]));
      })
    );
    await assertRejects(() => loop.runUntilComplete(parent), CancelledError);
    assertEquals(seen, [[false, 1]]);
    loop.close();
  });
}

// asyncio's exit withdraws the cancellation a failing child made (its
// uncancel()) in the parent, when the parent resumes after the last child
// ended, not in that child's done callback: read from a callback each turn,
// the parent's cancelling() is asyncio 3.13's
// [0, 0, 1, 1, 1, 'caught', 0, 0] for the same program (`async with
// TaskGroup()`, a child that fails at once, one that sleeps).
Deno.test("withTaskGroup(async): the group's own cancellation of the parent is withdrawn when the parent resumes, as asyncio's exit does", async () => {
  const loop = new VirtualTimeLoop();
  const log: unknown[] = [];
  const t = loop.createTask(async () => {
    try {
      // deno-lint-ignore require-await
      await withTaskGroup(async (tg) => {
        // deno-lint-ignore require-await
        tg.createTask(async () => {
          throw new RangeError("a");
        });
        tg.createTask(async () => {
          await sleep(10);
        });
      });
    } catch (e) {
      if (!(e instanceof AggregateError)) throw e;
      log.push("caught");
    }
  });
  const tick = (i: number) => {
    log.push(t.cancelling());
    if (i < 6) loop.callSoon(() => tick(i + 1));
  };
  loop.callSoon(() => tick(0));
  await loop.runUntilComplete(t);
  assertEquals(log, [0, 0, 1, 1, 1, "caught", 0, 0]);
  loop.close();
});

// The re-cancellation follows the parent, whoever else waits for the group
// (and whenever they started waiting).
Deno.test("TaskGroup.wait(): a parent cancelled from outside that catches the group's errors and returns ends cancelled though another task waits for the group too", async () => {
  const loop = new VirtualTimeLoop();
  let tg!: TaskGroup;
  const parent = loop.createTask(async () => {
    tg = new TaskGroup();
    tg.createTask(async () => {
      try {
        await sleep(10);
      } catch {
        throw new RangeError("cleanup failed");
      }
    });
    try {
      await tg.wait();
    } catch (e) {
      if (!(e instanceof AggregateError)) throw e;
    }
    return "returned";
  });
  const watcher = loop.createTask(async () => {
    await sleep(0.1);
    await tg.wait().then(() => "ended", (e) => (e as Error).name);
  });
  loop.callLater(0.5, () => parent.cancel());
  await assertRejects(() => loop.runUntilComplete(parent), CancelledError);
  assertEquals(parent.cancelling(), 1);
  await loop.runUntilComplete(watcher);
  loop.close();
});

Deno.test("TaskGroup.wait(): cancelling the future cancels the children and ends once they are done", async () => {
  const loop = new VirtualTimeLoop();
  const tg = new TaskGroup({ loop });
  const child = tg.createTask(function* (): Coroutine<void> {
    try {
      yield* sleep(60);
    } finally {
      yield* sleep(2);
    }
  });
  await loop.advance(1); // the child starts
  const w = tg.wait();
  assert(w.cancel());
  assertFalse(w.done(), "it waits for the children first");
  await assertRejects(() => loop.runUntilComplete(w), CancelledError);
  assert(child.cancelled());
  assertEquals(loop.time(), 3);
  assertFalse(w.cancel());
  loop.close();
});

Deno.test("TaskGroup with await using: cancelling the parent in the block cancels the children", async () => {
  const loop = new VirtualTimeLoop();
  let child: Task<string> | undefined;
  const main = loop.createTask(async () => {
    await using tg = new TaskGroup();
    child = tg.createTask(after(60, "a"));
    await sleep(30);
  });
  await assertCancelledAfter(loop, main, 1);
  assert(main.cancelled());
  assert(child!.cancelled());
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("TaskGroup with await using: cancelling the parent while it waits at the end cancels the children", async () => {
  const loop = new VirtualTimeLoop();
  let child: Task<string> | undefined;
  const main = loop.createTask(async () => {
    {
      await using tg = new TaskGroup();
      child = tg.createTask(after(60, "a"));
    }
    return "not reached";
  });
  await assertCancelledAfter(loop, main, 1);
  assert(main.cancelled());
  assert(child!.cancelled());
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("TaskGroup: the children's cleanup finishes before the parent's cancellation goes on", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const main = loop.createTask(function* (): Coroutine<void> {
    try {
      yield* withTaskGroup(function* (tg) {
        tg.createTask(function* (): Coroutine<void> {
          try {
            yield* sleep(60);
          } finally {
            yield* sleep(5);
            log.push(`child cleaned up at ${loop.time()}`);
          }
        });
      });
    } finally {
      log.push(`parent left at ${loop.time()}`);
    }
  });
  await assertCancelledAfter(loop, main, 1);
  assertEquals(log, ["child cleaned up at 6", "parent left at 6"]);
  loop.close();
});

Deno.test("TaskGroup: an outside cancellation during an abort is delivered after the AggregateError", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const main = loop.createTask(function* (): Coroutine<void> {
    try {
      yield* withTaskGroup(function* (tg) {
        tg.createTask(function* (): Coroutine<void> {
          try {
            yield* sleep(60);
          } finally {
            yield* sleep(5); // a slow cleanup keeps the group aborting
          }
        });
        tg.createTask(failAfter(1, "boom"));
      });
    } catch (e) {
      log.push(...messages(e));
    }
    try {
      yield* sleep(10);
      log.push("not cancelled");
    } catch (e) {
      log.push(`${(e as Error).name} at ${loop.time()}`);
      throw e;
    }
  });
  loop.callLater(2, () => main.cancel()); // while the group aborts
  await assertRejects(() => loop.runUntilComplete(main), CancelledError);
  assertEquals(log, ["boom", "CancelledError at 6"]);
  loop.close();
});

Deno.test("TaskGroup.wait(): an outside cancellation during an abort is delivered after the AggregateError", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const main = loop.createTask(async () => {
    const tg = new TaskGroup();
    tg.createTask(function* (): Coroutine<void> {
      try {
        yield* sleep(60);
      } finally {
        yield* sleep(5);
      }
    });
    tg.createTask(failAfter(1, "boom"));
    try {
      await tg.wait();
    } catch (e) {
      log.push(...messages(e));
    }
    try {
      await sleep(10);
      log.push("not cancelled");
    } catch (e) {
      log.push((e as Error).name);
      throw e;
    }
  });
  await assertCancelledAfter(loop, main, 2);
  assertEquals(log, ["boom", "CancelledError"]);
  loop.close();
});

Deno.test("TaskGroup inside a timeout: the timeout cancels the children and reports TimeoutError", async () => {
  const loop = new VirtualTimeLoop();
  let child: Task<string> | undefined;
  function* main(): Coroutine<void> {
    yield* timeout(5).scope(function* () {
      yield* withTaskGroup(function* (tg) {
        child = tg.createTask(after(60, "a"));
      });
    });
  }
  await assertRejects(() => loop.runUntilComplete(main()), TimeoutError);
  assert(child!.cancelled());
  assertEquals(loop.time(), 5);
  loop.close();
});

Deno.test("TaskGroup inside a timeout (async): a failing child wins over the timeout", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    await timeout(5).scope(async () => {
      await withTaskGroup(async (tg) => {
        tg.createTask(failAfter(1, "boom"));
        await sleep(60);
      });
    });
  });
  const err = await loop.runUntilComplete(main).catch((e) => e);
  assertEquals(messages(err), ["boom"]);
  assertEquals(loop.time(), 1);
  loop.close();
});

// asyncio's test_timeout_taskgroup: the deadline interrupts the body's
// cleanup, a child fails in its own cleanup, the group's error goes out
// through the timeout, and the task is left with no cancellation pending.
Deno.test("TaskGroup inside a timeout (async): a child failing in its cleanup wins, and no cancellation is left over", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const log: unknown[] = [];
    try {
      await timeout(1).scope(async () => {
        await withTaskGroup(async (tg) => {
          tg.createTask(async () => {
            try {
              await sleep(60);
            } finally {
              // deno-lint-ignore no-unsafe-finally
              throw new Error("child cleanup");
            }
          });
          try {
            throw new TypeError("body");
          } finally {
            await sleep(30); // interrupted by the deadline
          }
        });
      });
    } catch (e) {
      log.push(messages(e), currentTask()!.cancelling());
    }
    await sleep(1);
    log.push(`not cancelled at ${loop.time()}`);
    return log;
  });
  assertEquals(await loop.runUntilComplete(main), [
    ["child cleanup"],
    0,
    "not cancelled at 2",
  ]);
  loop.close();
});

Deno.test("nested task groups: the inner group's error fails the outer group", async () => {
  const loop = new VirtualTimeLoop();
  let outerChild: Task<string> | undefined;
  function* main(): Coroutine<string[]> {
    try {
      yield* withTaskGroup(function* (outer) {
        outerChild = outer.createTask(after(60, "x"));
        yield* withTaskGroup(function* (inner) {
          inner.createTask(failAfter(1, "deep"));
        });
      });
    } catch (e) {
      const [innerError] = (e as AggregateError).errors;
      return messages(innerError);
    }
    return [];
  }
  assertEquals(await loop.runUntilComplete(main()), ["deep"]);
  assert(outerChild!.cancelled());
  loop.close();
});

// asyncio's test_nested_groups_both_cancelled: the outer group's child
// cancels the parent after the inner group has ended with an error but
// before the parent resumed. The error wins; the cancellation stays pending.
function* failNow(message: string): Coroutine<never> {
  yield* sleep(0);
  throw new Error(message);
}

Deno.test("nested task groups (async): a cancellation after the inner group failed keeps its error", async () => {
  const loop = new VirtualTimeLoop();
  const log: unknown[] = [];
  const main = loop.createTask(async () => {
    try {
      await withTaskGroup(async (outer) => {
        try {
          await withTaskGroup(async (inner) => {
            inner.createTask(failNow("inner"));
            outer.createTask(failNow("outer"));
            await sleep(0);
          });
        } catch (e) {
          log.push(messages(e), currentTask()!.cancelling());
        }
      });
    } catch (e) {
      log.push(messages(e));
    }
    log.push(currentTask()!.cancelling());
    return log;
  });
  assertEquals(await loop.runUntilComplete(main), [["inner"], 1, ["outer"], 0]);
  loop.close();
});

Deno.test("TaskGroup with await using: a cancellation after the group failed keeps its error and stays pending", async () => {
  const loop = new VirtualTimeLoop();
  const log: unknown[] = [];
  const main = loop.createTask(async () => {
    const other = new TaskGroup();
    try {
      await using tg = new TaskGroup();
      tg.createTask(failNow("mine"));
      other.createTask(failNow("other"));
    } catch (e) {
      log.push(messages(e), currentTask()!.cancelling());
    }
    try {
      await sleep(1);
      log.push("not cancelled");
    } catch (e) {
      log.push((e as Error).name);
    }
    try {
      await other.wait();
    } catch (e) {
      log.push(messages(e));
    }
    return log;
  });
  assertEquals(await loop.runUntilComplete(main), [
    ["mine"],
    1,
    "CancelledError",
    ["other"],
  ]);
  loop.close();
});

Deno.test("TaskGroup.wait() in a generator: a cancellation after the group failed keeps its error", async () => {
  const loop = new VirtualTimeLoop();
  const log: unknown[] = [];
  const main = loop.createTask(function* (): Coroutine<unknown[]> {
    const first = new TaskGroup();
    const second = new TaskGroup();
    first.createTask(failNow("first"));
    second.createTask(failNow("second"));
    try {
      yield* first.wait();
    } catch (e) {
      log.push(messages(e), currentTask()!.cancelling());
    }
    try {
      yield* second.wait();
    } catch (e) {
      log.push(messages(e));
    }
    log.push(currentTask()!.cancelling());
    return log;
  });
  assertEquals(await loop.runUntilComplete(main), [
    ["first"],
    1,
    ["second"],
    0,
  ]);
  loop.close();
});

// ---- asyncio's test_taskgroups cases ----

// A child that counts its cancellation.
function* countCancelled(cancelled: { count: number }): Coroutine<void> {
  try {
    yield* sleep(5);
  } catch (e) {
    cancelled.count++;
    throw e;
  }
}

// An async group body that only starts children, as an `async with` block
// that does not wait itself.
function starting(
  start: (tg: TaskGroup) => void,
): (tg: TaskGroup) => Promise<void> {
  return (tg) => {
    start(tg);
    return Promise.resolve();
  };
}

// A child that fails in its cleanup when cancelled.
function* failInCleanup(message: string): Coroutine<void> {
  try {
    yield* sleep(60);
  } finally {
    // deno-lint-ignore no-unsafe-finally
    throw new Error(message);
  }
}

Deno.test("TaskGroup: children failing in their cleanup win over the cancellation from outside (test_taskgroup_08)", async () => {
  for (const style of ["async", "generator"] as const) {
    const loop = new VirtualTimeLoop();
    const start = (tg: TaskGroup) => {
      for (let i = 0; i < 3; i++) tg.createTask(failInCleanup(`child ${i}`));
    };
    const main = style === "async"
      ? loop.createTask(async () => {
        await withTaskGroup(async (tg) => {
          start(tg);
          await sleep(10);
        });
      })
      : loop.createTask(function* (): Coroutine<void> {
        yield* withTaskGroup(function* (tg) {
          start(tg);
          yield* sleep(10);
        });
      });
    loop.callLater(1, () => main.cancel());
    const err = await loop.runUntilComplete(main).catch((e) => e);
    assertEquals(messages(err), ["child 0", "child 1", "child 2"], style);
    assertFalse(main.cancelled());
    loop.close();
  }
});

Deno.test("nested task groups: inner children failing in their cleanup on a cancellation from outside come out nested (test_taskgroup_11, test_taskgroup_12)", async () => {
  const loop = new VirtualTimeLoop();
  let sleeper: Task<string> | undefined;
  const main = loop.createTask(async () => {
    await withTaskGroup(async (outer) => {
      sleeper = outer.createTask(after(60, "sleeper"));
      await withTaskGroup(async (inner) => {
        inner.createTask(failInCleanup("inner child"));
        await sleep(10);
      });
    });
  });
  loop.callLater(1, () => main.cancel());
  const err = await loop.runUntilComplete(main).catch((e) => e);
  const [innerError, ...rest] = (err as AggregateError).errors;
  assertEquals(rest, []);
  assertEquals(messages(innerError), ["inner child"]);
  assert(sleeper!.cancelled());
  loop.close();
});

Deno.test("nested task groups: the outer child's error cancels the inner group, which adds no error (test_taskgroup_13)", async () => {
  const loop = new VirtualTimeLoop();
  function* main(): Coroutine<string[]> {
    try {
      yield* withTaskGroup(function* (outer) {
        outer.createTask(failAfter(1, "outer child"));
        yield* withTaskGroup(function* (inner) {
          inner.createTask(failAfter(60, "inner child"));
        });
      });
    } catch (e) {
      return messages(e);
    }
    return [];
  }
  assertEquals(await loop.runUntilComplete(main()), ["outer child"]);
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("TaskGroup: a child failing while the cancelled body cleans up wins over the cancellation (test_taskgroup_15, test_taskgroup_16)", async () => {
  for (const nested of [false, true]) {
    for (const style of ["async", "generator"] as const) {
      const loop = new VirtualTimeLoop();
      const body = style === "async"
        ? async () => {
          await withTaskGroup(async (tg) => {
            tg.createTask(failAfter(3, "crash"));
            try {
              await sleep(100);
            } catch (e) {
              await sleep(5); // the child fails meanwhile
              throw e;
            }
          });
        }
        : function* (): Coroutine<void> {
          yield* withTaskGroup(function* (tg) {
            tg.createTask(failAfter(3, "crash"));
            try {
              yield* sleep(100);
            } catch (e) {
              yield* sleep(5);
              throw e;
            }
          });
        };
      const main = nested
        ? loop.createTask(async () => await loop.createTask(body))
        : loop.createTask(body);
      loop.callLater(1, () => main.cancel());
      const err = await loop.runUntilComplete(main).catch((e) => e);
      assertEquals(messages(err), ["crash"], `${style} nested=${nested}`);
      loop.close();
    }
  }
});

Deno.test("TaskGroup: a body that turns the cancellation into its own error fails the group with it (test_taskgroup_18)", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    await withTaskGroup(async () => {
      try {
        await sleep(10);
      } catch {
        throw new Error("instead");
      }
    });
  });
  loop.callLater(1, () => main.cancel());
  const err = await loop.runUntilComplete(main).catch((e) => e);
  assertEquals(messages(err), ["instead"]);
  loop.close();
});

Deno.test("TaskGroup: an error the body throws while the group cancels it joins the child's (test_taskgroup_19)", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    await withTaskGroup(async (tg) => {
      tg.createTask(failAfter(1, "child"));
      try {
        await sleep(10);
      } finally {
        // deno-lint-ignore no-unsafe-finally
        throw new Error("body cleanup");
      }
    });
  });
  const err = await loop.runUntilComplete(main).catch((e) => e);
  assertEquals(messages(err), ["child", "body cleanup"]);
  loop.close();
});

Deno.test("TaskGroup: the cancellation from outside goes on with its message (test_cancellation)", async () => {
  for (const style of ["async", "generator", "await using"] as const) {
    const loop = new VirtualTimeLoop();
    const cancelled = { count: 0 };
    const child = () => countCancelled(cancelled);
    const main = style === "generator"
      ? loop.createTask(function* (): Coroutine<void> {
        yield* withTaskGroup(function* (tg) {
          for (let i = 0; i < 5; i++) tg.createTask(child());
        });
      })
      : style === "async"
      ? loop.createTask(async () => {
        await withTaskGroup(starting((tg) => {
          for (let i = 0; i < 5; i++) tg.createTask(child());
        }));
      })
      : loop.createTask(async () => {
        await using tg = new TaskGroup();
        for (let i = 0; i < 5; i++) tg.createTask(child());
      });
    loop.callLater(1, () => main.cancel("test"));
    const err = await loop.runUntilComplete(main).catch((e) => e);
    assertInstanceOf(err, CancelledError, style);
    assertEquals((err as Error).message, "test", style);
    assertEquals(cancelled.count, 5, style);
    loop.close();
  }
});

Deno.test("TaskGroup: two errors from a child and the body's cleanup, and the parent is not left cancelled (test_taskgroup_context_manager_exit_raises)", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    try {
      await withTaskGroup(async (tg) => {
        try {
          tg.createTask(() => Promise.reject(new Error("child")));
          await sleep(1);
        } finally {
          // deno-lint-ignore no-unsafe-finally
          throw new Error("cleanup");
        }
      });
    } catch (e) {
      return [messages(e), currentTask()!.cancelling()];
    }
  });
  assertEquals(await loop.runUntilComplete(main), [["child", "cleanup"], 0]);
  loop.close();
});

Deno.test("TaskGroup: a cancellation from outside after the group's error stays pending (test_error_and_cancel)", async () => {
  for (const style of ["async", "generator"] as const) {
    const loop = new VirtualTimeLoop();
    const started = new Event({ loop });
    const log: unknown[] = [];
    const child = async () => {
      started.set();
      await sleep(0);
      throw new Error("child");
    };
    const inner = style === "async"
      ? loop.createTask(async () => {
        try {
          await withTaskGroup(async (tg) => {
            tg.createTask(child);
            await sleep(1);
            log.push("body not cancelled");
          });
        } catch (e) {
          log.push(messages(e), currentTask()!.cancelling());
        }
        await sleep(1);
        log.push("not cancelled after the group");
      })
      : loop.createTask(function* (): Coroutine<void> {
        try {
          yield* withTaskGroup(function* (tg) {
            tg.createTask(child);
            yield* sleep(1);
            log.push("body not cancelled");
          });
        } catch (e) {
          log.push(messages(e), currentTask()!.cancelling());
        }
        yield* sleep(1);
        log.push("not cancelled after the group");
      });
    const outer = loop.createTask(async () => {
      await started.wait();
      inner.cancel();
      log.push(inner.cancelling());
      await inner.then(() => {}, () => {});
      return inner.cancelled();
    });
    assert(await loop.runUntilComplete(outer), style);
    assertEquals(log, [1, ["child"], 1], style);
    loop.close();
  }
});

Deno.test("TaskGroup: a child failing while the parent waits at the end leaves no cancellation behind (test_cancellation_does_not_leak_out_of_tg)", async () => {
  for (const style of ["async", "generator", "await using", "wait"] as const) {
    const loop = new VirtualTimeLoop();
    const failing = () => Promise.reject(new Error("child"));
    const main = loop.createTask(async () => {
      try {
        if (style === "async") {
          await withTaskGroup(starting((tg) => tg.createTask(failing)));
        } else if (style === "generator") {
          // deno-lint-ignore require-yield
          await loop.createTask(withTaskGroup(function* (tg) {
            tg.createTask(failing);
          }));
        } else if (style === "await using") {
          await using tg = new TaskGroup();
          tg.createTask(failing);
        } else {
          const tg = new TaskGroup();
          tg.createTask(failing);
          await tg.wait();
        }
      } catch (e) {
        assertEquals(messages(e), ["child"]);
      }
      const cancelling = currentTask()!.cancelling();
      await sleep(0);
      return cancelling;
    });
    assertEquals(await loop.runUntilComplete(main), 0, style);
    loop.close();
  }
});

Deno.test("TaskGroup: a child made by a child just before a sibling fails is cancelled with the rest (test_cancels_task_if_created_during_creation)", async () => {
  const loop = new VirtualTimeLoop();
  let ran = false;
  const main = loop.createTask(async () => {
    try {
      await withTaskGroup(starting((tg) => {
        tg.createTask(async () => {
          tg.createTask(() => Promise.reject(new Error("third")));
          try {
            await sleep(0);
            await sleep(0);
          } catch (e) {
            assertInstanceOf(e, CancelledError);
            ran = true;
          }
        });
      }));
    } catch (e) {
      return messages(e);
    }
  });
  assertEquals(await loop.runUntilComplete(main), ["third"]);
  assert(ran);
  loop.close();
});

Deno.test("TaskGroup: children keep adding children while the parent waits, until one fails (test_taskgroup_24, test_taskgroup_25)", async () => {
  const loop = new VirtualTimeLoop();
  let heads = 0;
  const main = loop.createTask(async () => {
    await withTaskGroup(starting((tg) => {
      tg.createTask(async () => {
        await sleep(0.1);
        tg.createTask(after(0.1, 1));
        tg.createTask(after(0.2, 2));
      });
    }));
    try {
      await withTaskGroup(starting((tg) => {
        const hydra = async (): Promise<void> => {
          heads++;
          await sleep(0.01);
          tg.createTask(hydra);
          tg.createTask(hydra);
        };
        tg.createTask(hydra);
        tg.createTask(async () => {
          while (heads < 10) await sleep(0.015);
          throw new Error("hercules");
        });
      }));
    } catch (e) {
      return messages(e);
    }
  });
  assertEquals(await loop.runUntilComplete(main), ["hercules"]);
  assert(heads >= 10);
  loop.close();
});

// ---- State ----

Deno.test("TaskGroup.createTask() throws InvalidStateError once the group is finished", async () => {
  const loop = new VirtualTimeLoop();
  const tg = new TaskGroup({ loop });
  tg.createTask(after(1, "a"));
  await loop.runUntilComplete(tg.wait());
  let closed = false;
  function* coro(): Coroutine<void> {
    try {
      yield;
    } finally {
      closed = true;
    }
  }
  const gen = coro();
  gen.next();
  assertThrows(() => tg.createTask(gen), InvalidStateError, "finished");
  assert(closed, "the coroutine is closed");
  loop.close();
});

Deno.test("TaskGroup.createTask() throws InvalidStateError while the group shuts down", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const tg = new TaskGroup();
    let refused = "";
    tg.createTask(async () => {
      try {
        await sleep(60);
      } catch (e) {
        try {
          tg.createTask(after(1, "too late"));
        } catch (e2) {
          refused = (e2 as Error).message;
        }
        throw e;
      }
    });
    tg.createTask(failAfter(1, "boom"));
    await tg.wait().then(() => {}, () => {});
    return refused;
  });
  const refused = await loop.runUntilComplete(main);
  assert(refused.includes("shutting down"), refused);
  loop.close();
});

Deno.test("withTaskGroup() rejects a body that returns neither a generator nor a promise", () => {
  const loop = new VirtualTimeLoop();
  const bad = (() => 1) as unknown as () => Coroutine<number>;
  assertThrows(() => withTaskGroup(bad, { loop }), TypeError);
  loop.close();
});

Deno.test("TaskGroup prints its state", async () => {
  const loop = new VirtualTimeLoop();
  const tg = new TaskGroup({ loop });
  tg.createTask(after(1, 1));
  assertEquals(Object.prototype.toString.call(tg), "[object TaskGroup active]");
  assertEquals(Deno.inspect(tg), "TaskGroup active tasks=1 errors=0");
  await loop.runUntilComplete(tg.wait());
  assertEquals(Deno.inspect(tg), "TaskGroup finished tasks=0 errors=0");
  loop.close();
});

Deno.test("new TaskGroup() and withTaskGroup() refuse options that are not an object like { loop } (a loop given bare included)", () => {
  const loop = new VirtualTimeLoop();
  assertThrows(
    () => new TaskGroup(loop as never),
    TypeError,
    "Cannot create a TaskGroup: options must be an object like { loop }",
  );
  loop.close();
});

Deno.test("withTaskGroup() and a timeout scope name an async generator that body returned, as createTask() does", async () => {
  const loop = new VirtualTimeLoop();
  // deno-lint-ignore require-yield
  async function* agen(): AsyncGenerator<never, number> {
    return 1;
  }
  const main = loop.createTask(async () => {
    const messages: string[] = [];
    for (
      const call of [
        () => withTaskGroup(() => agen() as never),
        () => timeout(5).scope(() => agen() as never),
      ]
    ) {
      try {
        await call();
      } catch (e) {
        messages.push((e as Error).message);
      }
    }
    return messages;
  });
  // They said "received object", which a body returning an async
  // generator cannot act on.
  const messages = await loop.runUntilComplete(main);
  assertEquals(messages.length, 2);
  for (const message of messages) {
    assertStringIncludes(message, "received an async generator");
  }
  loop.close();
});

// Mirrors CPython's test_taskgroups.py test_taskgroup_23.
Deno.test("TaskGroup forgets each child as it finishes, while the group is still open", async () => {
  const loop = new VirtualTimeLoop();
  const tasksOf = (tg: TaskGroup) =>
    Number(/tasks=(\d+)/.exec(Deno.inspect(tg))![1]);
  const main = loop.createTask(async () => {
    await withTaskGroup(async (tg) => {
      for (let i = 0; i < 10; i++) {
        await sleep(0.1);
        tg.createTask(() => sleep(0.3));
        if (i === 5) assert(tasksOf(tg) < 5, Deno.inspect(tg));
      }
      await sleep(1.35);
      assertEquals(tasksOf(tg), 0);
    });
  });
  await loop.runUntilComplete(main);
  loop.close();
});

Deno.test("await withTaskGroup(function* …) in an async function runs the body and waits for its tasks, as yield* does in a generator", async () => {
  // Awaited, the generator form used to evaluate to the generator object
  // itself: the body never ran and nothing said so.
  const loop = new VirtualTimeLoop();
  const done: string[] = [];
  const main = loop.createTask(async () => {
    const out = await withTaskGroup(function* (tg): Coroutine<string> {
      tg.createTask(function* (): Coroutine<void> {
        yield* sleep(2);
        done.push("child");
      }());
      yield* sleep(1);
      return "body";
    });
    done.push(`main got ${out} at ${loop.time()}`);
  });
  await loop.runUntilComplete(main);
  assertEquals(done, ["child", "main got body at 2"]);
  // A failing child fails the awaited group as it fails a yield* of it.
  const failing = loop.createTask(async () =>
    await withTaskGroup(function* (tg): Coroutine<void> {
      tg.createTask(function* (): Coroutine<void> {
        yield* sleep(1);
        throw new Error("child broke");
      }());
      yield* sleep(5);
    })
  );
  const err = await assertRejects(() => loop.runUntilComplete(failing));
  assertInstanceOf(err, AggregateError);
  assertEquals(loop.time(), 3);
  // Cancelling the awaiting task cancels the group's tasks.
  let childCancelled = false;
  const outer = loop.createTask(async () =>
    await withTaskGroup(function* (tg): Coroutine<void> {
      tg.createTask(function* (): Coroutine<void> {
        try {
          yield* sleep(10);
        } catch (e) {
          childCancelled = e instanceof CancelledError;
          throw e;
        }
      }());
      yield* sleep(10);
    })
  );
  loop.callLater(1, () => outer.cancel());
  await assertRejects(() => loop.runUntilComplete(outer), CancelledError);
  assert(childCancelled);
  loop.close();
});

Deno.test("await timeout(d).scope(function* …) in an async function runs the body under the deadline", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () =>
    await timeout(1).scope(function* (): Coroutine<string> {
      yield* sleep(5);
      return "late";
    })
  );
  await assertRejects(() => loop.runUntilComplete(main), TimeoutError);
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("yield* timeout(d).scope(() => withTaskGroup(function* …)) still runs the group inline: a scope body's awaitable generator is a coroutine", async () => {
  // The generator withTaskGroup() returns has a then() since it can be
  // awaited; the scope must still take it for the coroutine it is, not
  // for a promise (which yield* cannot drive).
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(function* (): Coroutine<string> {
    const outer = currentTask();
    return yield* timeout(5).scope(() =>
      withTaskGroup(function* (): Coroutine<string> {
        yield* sleep(1);
        return currentTask() === outer ? "inline" : "another task";
      })
    );
  });
  assertEquals(await loop.runUntilComplete(main), "inline");
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("await withTaskGroup(function* …) twice runs the body once and gives its result both times, as a promise would", async () => {
  const loop = new VirtualTimeLoop();
  let runs = 0;
  const main = loop.createTask(async () => {
    const group = withTaskGroup(function* (): Coroutine<number> {
      runs++;
      yield* sleep(1);
      return 7;
    });
    return [await group, await group];
  });
  assertEquals(await loop.runUntilComplete(main), [7, 7]);
  assertEquals(runs, 1);
  loop.close();
});
