import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { CancelledError, InvalidStateError } from "../../futures/errors.ts";
import { WorkerExecutor, workerFunction } from "../../loop/worker_executor.ts";
import { externalBytes } from "../_gc.ts";

const FIXTURE = new URL("../fixtures/worker_module.ts", import.meta.url);

Deno.test("WorkerExecutor.submit() runs a function in a worker and returns its result", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  assertEquals(await executor.submit((a: number, b: number) => a + b, 2, 3), 5);
  // Workers have no `window`-style globals of the loop's module.
  assertEquals(
    await executor.submit(() =>
      typeof (globalThis as { WorkerExecutor?: unknown }).WorkerExecutor
    ),
    "undefined",
  );
});

Deno.test("WorkerExecutor.submit() accepts async functions, function expressions and method shorthand", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  assertEquals(
    await executor.submit(async (x: number) => {
      await new Promise((r) => setTimeout(r, 1));
      return x * 2;
    }, 21),
    42,
  );
  assertEquals(
    await executor.submit(function named(s: string) {
      return s.toUpperCase();
    }, "abc"),
    "ABC",
  );
  const holder = {
    triple(x: number) {
      return 3 * x;
    },
  };
  assertEquals(await executor.submit(holder.triple, 5), 15);
});

Deno.test("WorkerExecutor.submit() structured-clones arguments and results", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const input = { list: [1, 2], when: new Date(0), map: new Map([["k", 1]]) };
  const output = await executor.submit((o: typeof input) => {
    o.list.push(3);
    return { ...o, bytes: new Uint8Array([9]) };
  }, input);
  assertEquals(input.list, [1, 2]); // the worker changed its own copy
  assertEquals(output.list, [1, 2, 3]);
  assertInstanceOf(output.when, Date);
  assertEquals(output.map.get("k"), 1);
  assertEquals(output.bytes, new Uint8Array([9]));
});

Deno.test("WorkerExecutor.submit() shares a SharedArrayBuffer with the job", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const shared = new Int32Array(new SharedArrayBuffer(4));
  await executor.submit((buf: Int32Array) => {
    Atomics.store(buf, 0, 99);
  }, shared);
  assertEquals(Atomics.load(shared, 0), 99);
});

Deno.test("WorkerExecutor.submit() rejects with the job's error, class, message and stack", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const error = await assertRejects(
    () =>
      executor.submit(function failing() {
        throw new TypeError("bad input");
      }),
    TypeError,
    "bad input",
  );
  assertStringIncludes(error.stack ?? "", "failing");
  // A thrown non-error comes back as it was.
  const thrown = await executor.submit(() => {
    throw "plain";
  }).catch((e) => e);
  assertEquals(thrown, "plain");
  // The worker survives a failed job.
  assertEquals(await executor.submit(() => "fine"), "fine");
});

Deno.test("WorkerExecutor.submit() reports a result that cannot be cloned", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const error = await executor.submit(() => () => "a function").catch((e) => e);
  assertInstanceOf(error, Error);
  assertEquals(error.name, "DataCloneError");
});

Deno.test("WorkerExecutor.submit() rejects arguments that cannot be cloned", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const error = await executor.submit((f: unknown) => typeof f, () => 1).catch(
    (e) => e,
  );
  assertEquals(error.name, "DataCloneError");
  assertEquals(await executor.submit(() => 1), 1);
});

Deno.test("WorkerExecutor.submit() replaces a worker killed by an uncaught error", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const error = await executor.submit(() =>
    new Promise(() => {
      setTimeout(() => {
        throw new RangeError("escaped");
      }, 0);
    })
  ).catch((e) => e);
  assertInstanceOf(error, Error);
  assertStringIncludes((error as Error).message, "escaped");
  assertEquals(await executor.submit(() => "new worker"), "new worker");
});

Deno.test("WorkerExecutor.submit() refuses what has no JavaScript source", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  assertThrows(
    () => executor.submit(Math.max, 1, 2),
    TypeError,
    "Cannot call submit(): fn must have JavaScript source (not native or bound), received max",
  );
  const bound = ((x: number) => x).bind(null);
  assertThrows(
    () => executor.submit(bound, 1),
    TypeError,
    "not native or bound",
  );
  assertThrows(
    () => executor.submit("x => x" as never),
    TypeError,
    "fn must be a function, received string",
  );
});

Deno.test("WorkerExecutor runs more jobs than workers, all of them, in parallel up to maxWorkers", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 2 });
  // Two jobs that each wait for the other: they can only finish if both
  // run at the same time.
  const flags = new Int32Array(new SharedArrayBuffer(8));
  const meet = (buf: Int32Array, me: number) => {
    Atomics.store(buf, me, 1);
    Atomics.notify(buf, me);
    const other = 1 - me;
    return Atomics.wait(buf, other, 0, 10_000) !== "timed-out";
  };
  const results = await Promise.all([
    executor.submit(meet, flags, 0),
    executor.submit(meet, flags, 1),
    ...[1, 2, 3, 4].map((n) => executor.submit((x: number) => x * x, n)),
  ]);
  assertEquals(results, [true, true, 1, 4, 9, 16]);
});

Deno.test("WorkerExecutor.shutdown() waits for submitted jobs, then refuses new ones", async () => {
  const executor = new WorkerExecutor({ maxWorkers: 1 });
  const jobs = [1, 2, 3].map((n) => executor.submit((x: number) => x + 1, n));
  const stopped = executor.shutdown();
  assert(executor.isShutdown());
  assertThrows(
    () => executor.submit(() => 1),
    InvalidStateError,
    "Cannot call submit(): the executor is shut down",
  );
  assertEquals(await Promise.all(jobs), [2, 3, 4]);
  await stopped;
  await executor.shutdown();
});

Deno.test("WorkerExecutor.shutdown({ wait: false }) terminates at once and cancels unfinished jobs", async () => {
  const executor = new WorkerExecutor({ maxWorkers: 1 });
  const running = executor.submit(() => new Promise(() => {}));
  const queued = executor.submit(() => 1);
  const earlier = executor.shutdown();
  await executor.shutdown({ wait: false });
  await earlier;
  await assertRejects(() => running, CancelledError);
  await assertRejects(() => queued, CancelledError);
});

Deno.test("WorkerExecutor constructor checks maxWorkers", () => {
  assertThrows(
    () => new WorkerExecutor({ maxWorkers: 0 }),
    RangeError,
    "maxWorkers must be an integer >= 1, received 0",
  );
  assertThrows(() => new WorkerExecutor({ maxWorkers: 1.5 }), RangeError);
});

Deno.test("WorkerExecutor constructor checks maxQueued", () => {
  assertThrows(
    () => new WorkerExecutor({ maxQueued: -1 }),
    RangeError,
    "maxQueued must be an integer >= 0, received -1",
  );
});

Deno.test("WorkerExecutor.submit() refuses a job beyond maxQueued, and takes one again once the queue moves", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1, maxQueued: 2 });
  const later = workerFunction<[number, string], string>(FIXTURE, "later");
  const jobs = [executor.submit(later, 50, "a")]; // running
  jobs.push(executor.submit(later, 0, "b"), executor.submit(later, 0, "c"));
  assertThrows(
    () => executor.submit(later, 0, "d"),
    RangeError,
    "Cannot call submit(): the queue is full, received a job beyond maxQueued=2",
  );
  assertEquals(await jobs[0], "a");
  // The first job ended, so "b" runs and one place in the queue is free.
  jobs.push(executor.submit(later, 0, "e"));
  assertEquals(await Promise.all(jobs), ["a", "b", "c", "e"]);
});

// ---- Module workers: workerFunction() ----

Deno.test("workerFunction() runs a module's export in a worker, imports and all", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const joinPath = workerFunction<string[], string>(FIXTURE, "joinPath");
  assertEquals(await executor.submit(joinPath, "a", "b", "c.txt"), "a/b/c.txt");
  // The module imports tulip itself.
  assertEquals(
    await executor.submit(workerFunction(FIXTURE, "importedClassName")),
    "CancelledError",
  );
});

Deno.test("workerFunction() modules are imported once per worker and keep their state", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const count = workerFunction<[], number>(FIXTURE.href, "countCalls");
  const seen: number[] = [];
  for (let i = 0; i < 3; i++) seen.push(await executor.submit(count));
  assertEquals(seen, [1, 2, 3]);
});

Deno.test("workerFunction() references work in an executor on the current thread too", async () => {
  const joinPath = workerFunction<string[], string>(FIXTURE, "joinPath");
  assertEquals(joinPath.moduleUrl, FIXTURE.href);
  assertEquals(joinPath.exportName, "joinPath");
  assertEquals(joinPath.name, "joinPath");
  assertEquals(await joinPath("x", "y"), "x/y");
  await assertRejects(
    () => workerFunction(FIXTURE, "missing")(),
    TypeError,
    `Cannot run missing() from ${FIXTURE.href}: the module has no export named "missing"`,
  );
});

Deno.test("workerFunction() jobs fail with errors naming the module and the export", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const missing = await assertRejects(
    () => executor.submit(workerFunction(FIXTURE, "missing")),
    TypeError,
    `Cannot run missing() from ${FIXTURE.href}: the module has no export named "missing", received exports "countCalls"`,
  );
  assertStringIncludes(missing.message, '"joinPath"');
  await assertRejects(
    () => executor.submit(workerFunction(FIXTURE, "notAFunction")),
    TypeError,
    `Cannot run notAFunction() from ${FIXTURE.href}: the export is not a function, received number`,
  );
  const absent = new URL("../fixtures/no_such_module.ts", import.meta.url);
  await assertRejects(
    () => executor.submit(workerFunction(absent, "f")),
    TypeError,
    `Cannot run f() from ${absent.href}: the module failed to load`,
  );
  // The worker survives all of these.
  assertEquals(
    await executor.submit(workerFunction(FIXTURE, "joinPath"), "ok"),
    "ok",
  );
});

Deno.test("workerFunction() checks its arguments", () => {
  assertThrows(
    () => workerFunction("./work.ts", "f"),
    TypeError,
    'Cannot make a worker function: moduleUrl must be an absolute URL, such as new URL("./work.ts", import.meta.url), received "./work.ts"',
  );
  assertThrows(
    () => workerFunction(42 as unknown as string, "f"),
    TypeError,
    "received number",
  );
  assertThrows(
    () => workerFunction(FIXTURE, ""),
    TypeError,
    'Cannot make a worker function: exportName must be a non-empty string, received ""',
  );
  assertThrows(
    () => workerFunction(FIXTURE, null as unknown as string),
    TypeError,
    "exportName must be a non-empty string, received null",
  );
});

Deno.test("WorkerExecutor.submit() explains a ReferenceError of a function sent as source", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const factor = 3;
  const error = await assertRejects(
    () =>
      executor.submit(function triple(x: number) {
        return x * factor;
      }, 2),
    ReferenceError,
    "Cannot run triple in a worker: factor is not defined; the function is sent to the worker as source, so it cannot use variables or imports from outside itself (export it from a module and pass workerFunction(moduleUrl, exportName) instead)",
  );
  assertInstanceOf(error.cause, ReferenceError);
  assertEquals((error.cause as Error).message, "factor is not defined");
});

Deno.test("WorkerExecutor.shutdown({ wait: true }) waits for running and queued jobs", async () => {
  const executor = new WorkerExecutor({ maxWorkers: 1 });
  const later = workerFunction<[number, string], string>(FIXTURE, "later");
  const settled: string[] = [];
  const running = executor.submit(later, 30, "running").then((v) => {
    settled.push(v);
    return v;
  });
  const queued = executor.submit(later, 0, "queued").then((v) => {
    settled.push(v);
    return v;
  });
  await executor.shutdown({ wait: true });
  assertEquals(settled, ["running", "queued"]);
  assertEquals(await running, "running");
  assertEquals(await queued, "queued");
});

Deno.test("WorkerExecutor.submit() fails a job whose worker ends itself, and later jobs run on a new worker", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const ended = [
    executor.submit(function closing() {
      (globalThis as unknown as { close(): void }).close();
      return new Promise(() => {});
    }),
    executor.submit(function exiting() {
      Deno.exit(3);
    }),
    executor.submit(async function nodeExiting() {
      const { default: process } = await import("node:process");
      process.exit(4);
    }),
  ];
  const queued = executor.submit(() => "still served");
  const errors = await Promise.all(
    ended.map((job) => (job as Promise<never>).catch((e: Error) => e)),
  );
  assertEquals(errors.map((e) => e.constructor), [Error, Error, Error]);
  assertEquals(
    errors.map((e) => e.message),
    [
      "Cannot finish closing: its worker ended (self.close() was called in it) before the job did",
      "Cannot finish exiting: its worker ended (Deno.exit(3) was called in it) before the job did",
      "Cannot finish nodeExiting: its worker ended (Deno.exit(4) was called in it) before the job did",
    ],
  );
  assertEquals(await queued, "still served");
});

Deno.test("WorkerExecutor.submit() keeps an error's name, code, cause and class (built-in, AggregateError, Deno.errors) across the boundary", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const custom = await executor.submit(function failing() {
    class MyError extends Error {
      override name = "MyError";
      code = "E_MINE";
    }
    throw new MyError("mine", { cause: new TypeError("underneath") });
  }).catch((e) => e);
  assertInstanceOf(custom, Error);
  assertEquals(custom.name, "MyError");
  assertEquals(custom.message, "mine");
  assertEquals(custom.code, "E_MINE");
  assertInstanceOf(custom.cause, TypeError);
  assertEquals(custom.cause.message, "underneath");
  assertStringIncludes(custom.stack, "failing");
  const aggregate = await executor.submit(() => {
    throw new AggregateError([new RangeError("one"), "two"], "both");
  }).catch((e) => e);
  assertInstanceOf(aggregate, AggregateError);
  assertEquals(aggregate.message, "both");
  assertInstanceOf(aggregate.errors[0], RangeError);
  assertEquals(aggregate.errors[1], "two");
  const notFound = await executor.submit(() =>
    Deno.readTextFileSync("/no/such/file/for/tulip")
  ).catch((e) => e);
  assertInstanceOf(notFound, Deno.errors.NotFound);
  assertEquals(notFound.name, "NotFound");
  assertEquals(notFound.code, "ENOENT");
  // A DOMException clones as itself.
  const aborted = await executor.submit(() => {
    throw new DOMException("stop", "AbortError");
  }).catch((e) => e);
  assertInstanceOf(aborted, DOMException);
  assertEquals(aborted.name, "AbortError");
});

Deno.test("WorkerExecutor.submit() says whether the arguments or the result could not be cloned", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const result = await executor.submit(function makeFn() {
    return () => 1;
  }).catch((e) => e);
  assertEquals(result.name, "DataCloneError");
  assertStringIncludes(
    result.message,
    "Cannot send the result of makeFn back from its worker:",
  );
  const args = await executor.submit(function takeFn(f: unknown) {
    return typeof f;
  }, () => 1).catch((e) => e);
  assertEquals(args.name, "DataCloneError");
  assertStringIncludes(
    args.message,
    "Cannot send the arguments of takeFn to a worker:",
  );
});

Deno.test("WorkerExecutor.submit() names the argument that cannot be cloned", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const error = await executor.submit(
    function takeFn(_a: number, _b: unknown, _c: string) {
      return 0;
    },
    1,
    () => 1,
    "x",
  ).catch((e) => e);
  assertEquals(error.name, "DataCloneError");
  assertStringIncludes(
    error.message,
    "Cannot send the arguments of takeFn to a worker: argument 1 (counting from 0)",
  );
});

Deno.test("WorkerExecutor.submit() rejects arguments that cannot be cloned at once, though every worker is busy (not once one is free)", async () => {
  const executor = new WorkerExecutor({ maxWorkers: 1 });
  const busy = executor.submit(() => new Promise(() => {}));
  busy.catch(() => {});
  const shared = new SharedArrayBuffer(4);
  const queued = executor.submit(
    (s: SharedArrayBuffer, k: { n: number }) => {
      return new Int32Array(s)[0] + k.n;
    },
    shared,
    { n: 1 },
  );
  queued.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve("still waiting"), 2000);
  });
  try {
    const outcome = await Promise.race([
      executor.submit((f: unknown) => typeof f, Symbol("s")).then(
        () => "resolved",
        (e: Error) => e.name,
      ),
      late,
    ]);
    assertEquals(outcome, "DataCloneError");
  } finally {
    clearTimeout(timer);
    await executor.shutdown({ wait: false });
  }
  await assertRejects(() => busy, CancelledError);
  await assertRejects(() => queued, CancelledError);
});

Deno.test("WorkerExecutor: a message a job posts itself is not taken for its result, and its worker runs no other job meanwhile", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  const chatty = executor.submit(async () => {
    const post = (self as unknown as Worker).postMessage.bind(self);
    post("progress");
    post({ ok: true, value: "forged" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    return "chatty";
  });
  const next = executor.submit(() => "next");
  assertEquals(await chatty, "chatty");
  assertEquals(await next, "next");
  assertEquals(await executor.submit(() => "last"), "last");
});

Deno.test("WorkerExecutor: a message a job posts itself with a numeric id (its own protocol's) is not taken for its result", async () => {
  await using executor = new WorkerExecutor({ maxWorkers: 1 });
  // The first job's id is 1, as are many protocols' first messages.
  const chatty = executor.submit(async () => {
    const post = (self as unknown as Worker).postMessage.bind(self);
    for (let id = 0; id < 4; id++) {
      post({ jsonrpc: "2.0", id, method: "progress" });
      post({ id, ok: true, value: "forged" });
      post({ id, ok: false, fatal: true });
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    return "chatty";
  });
  const next = executor.submit(() => "next");
  assertEquals(await chatty, "chatty");
  assertEquals(await next, "next");
});

Deno.test("WorkerExecutor: a module that sets self.onmessage for its own messages does not stop its worker from taking jobs", async () => {
  const source = `
    self.onmessage = (event) => self.postMessage({ echo: event.data });
    export function twice(x) { return 2 * x; }
  `;
  const url = `data:application/javascript,${encodeURIComponent(source)}`;
  const twice = workerFunction<[number], number>(url, "twice");
  const executor = new WorkerExecutor({ maxWorkers: 1 });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve("still waiting"), 2000);
  });
  try {
    assertEquals(await executor.submit(twice, 1), 2);
    const second = executor.submit(twice, 2);
    second.catch(() => {});
    assertEquals(
      await Promise.race([second, late]),
      4,
      "the job after the module set self.onmessage ran",
    );
  } finally {
    clearTimeout(timer);
    await executor.shutdown({ wait: false });
  }
});

Deno.test("WorkerExecutor: queued jobs hold their arguments, not a copy each (50 jobs given one 16 MiB array do not cost 800 MiB)", async () => {
  const executor = new WorkerExecutor({ maxWorkers: 1 });
  const busy = executor.submit(() => new Promise(() => {}));
  busy.catch(() => {});
  const big = new Uint8Array(16 << 20);
  const before = await externalBytes();
  const queued = Array.from(
    { length: 50 },
    (_, i) => executor.submit((b: Uint8Array, i: number) => b[i], big, i),
  );
  // The copies made only to check the arguments are garbage: collected,
  // what is left is what the queue holds.
  const grown = await externalBytes() - before;
  await executor.shutdown({ wait: false });
  for (const job of queued) await assertRejects(() => job, CancelledError);
  await assertRejects(() => busy, CancelledError);
  assert(
    grown < 200 * 2 ** 20,
    `the queue grew memory by ${(grown / 2 ** 20).toFixed(0)} MiB`,
  );
});
