// DenoEventLoop.runInExecutor with the default executor (Web Workers):
// CPU work runs beside the loop, not on it.

import {
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import type { Executor } from "../../loop/event_loop.ts";
import { Handle } from "../../loop/handle.ts";
import { WorkerExecutor, workerFunction } from "../../loop/worker_executor.ts";
import { AsyncEngine, type Callback } from "../../facade/async_engine.ts";
import { within } from "./_io_helpers.ts";

/** Keeps a CPU busy for `ms` milliseconds; self-contained, sent as source. */
function spin(ms: number): number {
  const end = performance.now() + ms;
  let n = 0;
  while (performance.now() < end) n++;
  return n;
}

Deno.test("runInExecutor() runs a 200 ms CPU job without delaying a 10 ms timer on the loop", async () => {
  const loop = new DenoEventLoop();
  const order: string[] = [];
  const job = loop.runInExecutor(null, spin, 200);
  job.addDoneCallback(() => order.push("job done"));
  loop.callLater(0.01, () => order.push("timer"));
  const spins = await within(loop, job);
  assertEquals(order, ["timer", "job done"]);
  assertEquals(typeof spins, "number");
  loop.close();
});

Deno.test("runInExecutor() job keeps running while loop callbacks run", async () => {
  const loop = new DenoEventLoop();
  // The job blocks until a loop callback releases it: it can only finish
  // if the loop goes on running while it is in progress.
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const job = loop.runInExecutor(null, (f: Int32Array) => {
    const result = Atomics.wait(f, 0, 0, 10_000);
    return result === "timed-out" ? "timed out" : "released";
  }, flag);
  loop.callLater(0.01, () => {
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  });
  assertEquals(await within(loop, job), "released");
  loop.close();
});

Deno.test("runInExecutor() fails its future with the job's error", async () => {
  const loop = new DenoEventLoop();
  await assertRejects(
    () =>
      within(
        loop,
        loop.runInExecutor(null, (x: number) => {
          throw new RangeError(`too big: ${x}`);
        }, 99),
      ),
    RangeError,
    "too big: 99",
  );
  loop.close();
});

Deno.test("runInExecutor() uses a given executor, and setDefaultExecutor() replaces the default", async () => {
  const loop = new DenoEventLoop();
  const calls: string[] = [];
  const inline: Executor = {
    submit(fn, ...args) {
      calls.push("submit");
      return Promise.resolve().then(() => fn(...args));
    },
    shutdown(options) {
      calls.push(`shutdown ${JSON.stringify(options)}`);
    },
  };
  const add = (a: number, b: number) => a + b;
  assertEquals(await within(loop, loop.runInExecutor(inline, add, 1, 2)), 3);
  loop.setDefaultExecutor(inline);
  assertEquals(await within(loop, loop.runInExecutor(null, add, 3, 4)), 7);
  assertEquals(calls, ["submit", "submit"]);
  // close() shuts the default executor down without waiting, as asyncio's
  // BaseEventLoop.close() does.
  loop.close();
  assertEquals(calls, ["submit", "submit", 'shutdown {"wait":false}']);
});

Deno.test("runInExecutor() with an explicit WorkerExecutor leaves it to its owner", async () => {
  const loop = new DenoEventLoop();
  const executor = new WorkerExecutor({ maxWorkers: 1 });
  assertEquals(
    await within(
      loop,
      loop.runInExecutor(executor, (s: string) => s.length, "four"),
    ),
    4,
  );
  loop.close();
  // Still usable: the loop only shuts down its default executor.
  assertEquals(await executor.submit(() => "alive"), "alive");
  await executor.shutdown();
});

Deno.test("DenoEventLoop.close() terminates the default executor's workers, even mid-job", async () => {
  const loop = new DenoEventLoop();
  const job = loop.runInExecutor(null, () => new Promise(() => {}));
  await within(loop, Promise.resolve());
  loop.close();
  // The resource sanitizer checks that no worker is left; the job's future
  // stays pending, as its loop is closed.
  assertEquals(job.done(), false);
});

Deno.test("runInExecutor() takes a Handle for the callback (PEP 3156's note on Handles); a cancelled one gives undefined", async () => {
  const loop = new DenoEventLoop();
  const job = new Handle((a: number, b: number) => a * b, [6, 7], loop);
  assertEquals(await within(loop, loop.runInExecutor(null, job)), 42);
  job.cancel();
  const skipped = loop.runInExecutor(null, job);
  assertEquals(await within(loop, skipped), undefined);
  assertThrows(
    () => loop.runInExecutor(null, job, 1 as never),
    TypeError,
    "Cannot call runInExecutor(): a Handle takes no extra arguments",
  );
  const timer = loop.callLater(10, () => {});
  assertThrows(
    () => loop.runInExecutor(null, timer),
    TypeError,
    "a TimerHandle cannot stand for a callback",
  );
  timer.cancel();
  loop.close();
});

Deno.test("runInExecutor() and setDefaultExecutor() reject misuse", () => {
  const loop = new DenoEventLoop();
  assertThrows(
    () => loop.runInExecutor(null, "code" as never),
    TypeError,
    "Cannot call runInExecutor(): fn must be a function, received string",
  );
  assertThrows(
    () => loop.setDefaultExecutor({} as Executor),
    TypeError,
    "Cannot set the default executor: it must have a submit() method, received object",
  );
  // As asyncio's wrap_future() wants a concurrent Future from submit().
  const inline = { submit: (fn: () => number) => fn(), shutdown() {} };
  assertThrows(
    () => loop.runInExecutor(inline as unknown as Executor, () => 1),
    TypeError,
    "Cannot call runInExecutor(): executor.submit() must return a promise, received number",
  );
  loop.close();
  assertThrows(
    () => loop.runInExecutor(null, () => 1),
    InvalidStateError,
    "Cannot call runInExecutor(): the loop is closed",
  );
});

Deno.test("runInExecutor(undefined, ...) uses the default executor, as null does; an executor without submit() is refused by name", async () => {
  const loop = new DenoEventLoop();
  const calls: number[] = [];
  loop.setDefaultExecutor({
    submit: (fn, ...args) => {
      calls.push(args.length);
      return Promise.resolve().then(() => fn(...args));
    },
    shutdown() {},
  });
  const add = (a: number, b: number) => a + b;
  assertEquals(
    await within(loop, loop.runInExecutor(undefined as never, add, 1, 2)),
    3,
  );
  assertEquals(calls, [2]);
  assertThrows(
    () => loop.runInExecutor({} as Executor, add, 1, 2),
    TypeError,
    "Cannot call runInExecutor(): executor must have a submit() method, or be null for the default one, received object",
  );
  loop.close();
});

// ---- Module workers ----

const FIXTURE = new URL("../fixtures/worker_module.ts", import.meta.url);

Deno.test("runInExecutor() runs a workerFunction() export, which imports other modules, in the default executor", async () => {
  const loop = new DenoEventLoop();
  const joinPath = workerFunction<string[], string>(FIXTURE, "joinPath");
  assertEquals(
    await within(loop, loop.runInExecutor(null, joinPath, "dir", "file.txt")),
    "dir/file.txt",
  );
  assertEquals(
    await within(
      loop,
      loop.runInExecutor(null, workerFunction(FIXTURE, "importedClassName")),
    ),
    "CancelledError",
  );
  loop.close();
});

Deno.test("runInExecutor() fails a workerFunction() job on a missing export with the module and export named", async () => {
  const loop = new DenoEventLoop();
  await assertRejects(
    () =>
      within(loop, loop.runInExecutor(null, workerFunction(FIXTURE, "nope"))),
    TypeError,
    `Cannot run nope() from ${FIXTURE.href}: the module has no export named "nope"`,
  );
  loop.close();
});

Deno.test("runInExecutor() explains the ReferenceError of a source function that uses an outside variable", async () => {
  const loop = new DenoEventLoop();
  const outside = 7;
  const error = await assertRejects(
    () => within(loop, loop.runInExecutor(null, () => outside + 1)),
    ReferenceError,
  );
  assertStringIncludes(
    error.message,
    "outside is not defined; the function is sent to the worker as source",
  );
  assertStringIncludes(error.message, "workerFunction(moduleUrl, exportName)");
  loop.close();
});

Deno.test("AsyncEngine.submitWork() takes a workerFunction() reference", async () => {
  const engine = new AsyncEngine(new DenoEventLoop());
  const seen: unknown[] = [];
  const cb: Callback<string> = {
    success: (value) => seen.push(value),
    failure: (error) => seen.push(error),
  };
  engine.submitWork(
    workerFunction<string[], string>(FIXTURE, "joinPath"),
    ["a", "b"],
    cb,
  );
  const loop = engine.getLoop() as DenoEventLoop;
  const guard = loop.callLater(20, () => engine.stop());
  await engine.run();
  guard.cancel();
  assertEquals(seen, ["a/b"]);
  await engine.close();
  loop.close();
});

Deno.test("runInExecutor(): cancelling the future of a queued job drops the job (asyncio cancels the executor's future); a running job goes on", async () => {
  const loop = new DenoEventLoop();
  const executor = new WorkerExecutor({ maxWorkers: 1 });
  // [0]: released by the test; [1]: set by the queued job, if it ran.
  const flags = new Int32Array(new SharedArrayBuffer(8));
  const running = loop.runInExecutor(executor, (f: Int32Array) => {
    Atomics.wait(f, 0, 0, 10_000);
    return "ran";
  }, flags);
  const queued = loop.runInExecutor(executor, (f: Int32Array) => {
    Atomics.store(f, 1, 1);
  }, flags);
  const next = loop.runInExecutor(executor, () => "next");
  queued.cancel();
  running.cancel();
  await within(loop, loop.createTask(async () => {}));
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
  assertEquals(await within(loop, next), "next");
  await executor.shutdown();
  assertEquals(Atomics.load(flags, 1), 0, "the cancelled queued job ran");
  assertEquals([queued.cancelled(), running.cancelled()], [true, true]);
  loop.close();
});

Deno.test("runInExecutor() refuses a generator function (a coroutine), as asyncio refuses coroutine functions", () => {
  const loop = new DenoEventLoop();
  assertThrows(
    () => loop.runInExecutor(null, function* work() {}),
    TypeError,
    "Cannot call runInExecutor(): fn must be a plain or async function, received the generator function work (a coroutine: run it with loop.createTask() instead)",
  );
  assertThrows(
    () => loop.runInExecutor(null, async function* () {}),
    TypeError,
    "received the async generator function anonymous",
  );
  loop.close();
});
