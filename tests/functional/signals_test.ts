// Real signals sent to our own process: through DenoEventLoop's signal
// handlers, and (in child processes) to run()'s Ctrl-C handling. Needs
// --allow-run (Deno.kill).

import {
  assert,
  assertEquals,
  assertMatch,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { Handle } from "../../loop/handle.ts";
import { within } from "./_io_helpers.ts";

Deno.test("addSignalHandler() runs the callback on the loop with its arguments", async () => {
  const loop = new DenoEventLoop();
  const got = loop.createFuture<[string, number, boolean]>();
  const handle = loop.addSignalHandler(
    "SIGUSR1",
    (name: string, n: number) => {
      got.setResult([name, n, loop.isRunning()]);
    },
    "usr1",
    7,
  );
  assertEquals(handle.args, ["usr1", 7]);
  Deno.kill(Deno.pid, "SIGUSR1");
  // Nothing else keeps the process alive while the loop waits: the loop
  // itself must, as long as a signal handler is installed.
  assertEquals(await within(loop, got), ["usr1", 7, true]);
  assert(loop.removeSignalHandler("SIGUSR1"));
  loop.close();
});

Deno.test("addSignalHandler() takes a Handle for the callback (PEP 3156's note on Handles); a cancelled one installs nothing", async () => {
  const loop = new DenoEventLoop();
  const got = loop.createFuture<string>();
  const source = new Handle(
    (name: string) => got.setResult(name),
    ["usr1"],
    loop,
  );
  const handle = loop.addSignalHandler("SIGUSR1", source);
  assertEquals(handle.args, ["usr1"]);
  Deno.kill(Deno.pid, "SIGUSR1");
  assertEquals(await within(loop, got), "usr1");
  // Cancelling the source stops the calls, as cancelling the result does.
  source.cancel();
  assert(handle.cancelled);
  assert(loop.removeSignalHandler("SIGUSR1"));
  const cancelled = new Handle(() => {}, [], loop);
  cancelled.cancel();
  assertStrictEquals(loop.addSignalHandler("SIGUSR2", cancelled), cancelled);
  assertEquals(loop.removeSignalHandler("SIGUSR2"), false);
  assertThrows(
    () => loop.addSignalHandler("SIGUSR2", source, 1 as never),
    TypeError,
    "Cannot call addSignalHandler(): a Handle takes no extra arguments",
  );
  const timer = loop.callLater(10, () => {});
  assertThrows(
    () => loop.addSignalHandler("SIGUSR2", timer),
    TypeError,
    "a TimerHandle cannot stand for a callback",
  );
  timer.cancel();
  loop.close();
});

Deno.test("addSignalHandler() replaces the earlier handler of the same signal", async () => {
  const loop = new DenoEventLoop();
  const calls: string[] = [];
  const got = loop.createFuture<void>();
  loop.addSignalHandler("SIGUSR2", () => calls.push("first"));
  loop.addSignalHandler("SIGUSR2", () => {
    calls.push("second");
    got.setResult();
  });
  Deno.kill(Deno.pid, "SIGUSR2");
  await within(loop, got);
  assertEquals(calls, ["second"]);
  loop.close();
});

Deno.test("removeSignalHandler() returns whether a handler was removed; a removed one is not called", async () => {
  const loop = new DenoEventLoop();
  let called = 0;
  loop.addSignalHandler("SIGUSR1", () => called++);
  assertEquals(loop.removeSignalHandler("SIGUSR1"), true);
  assertEquals(loop.removeSignalHandler("SIGUSR1"), false);
  // Keep the signal from killing the process while checking nothing runs.
  const arrived = Promise.withResolvers<void>();
  const guard = () => arrived.resolve();
  Deno.addSignalListener("SIGUSR1", guard);
  const keepAlive = setTimeout(() => {}, 60_000);
  Deno.kill(Deno.pid, "SIGUSR1");
  await arrived.promise;
  clearTimeout(keepAlive);
  Deno.removeSignalListener("SIGUSR1", guard);
  await within(loop, Promise.resolve());
  assertEquals(called, 0);
  loop.close();
});

Deno.test("addSignalHandler() handle.cancel() stops the calls", async () => {
  const loop = new DenoEventLoop();
  let called = 0;
  const handle = loop.addSignalHandler("SIGUSR2", () => called++);
  handle.cancel();
  const arrived = Promise.withResolvers<void>();
  const guard = () => arrived.resolve();
  Deno.addSignalListener("SIGUSR2", guard);
  const keepAlive = setTimeout(() => {}, 60_000);
  Deno.kill(Deno.pid, "SIGUSR2");
  await arrived.promise;
  clearTimeout(keepAlive);
  Deno.removeSignalListener("SIGUSR2", guard);
  await within(loop, Promise.resolve());
  assertEquals(called, 0);
  // The cancelled handler removed itself.
  assertEquals(loop.removeSignalHandler("SIGUSR2"), false);
  loop.close();
});

Deno.test("addSignalHandler(): cancelling the handle after the signal came, before the loop ran the call, stops that call (asyncio queues the handle itself)", async () => {
  const loop = new DenoEventLoop();
  const other = new DenoEventLoop();
  const calls: string[] = [];
  const handle = loop.addSignalHandler("SIGUSR1", () => calls.push("loop"));
  // Another loop's handler of the same signal is its own, and still runs.
  other.addSignalHandler("SIGUSR1", () => calls.push("other"));
  const arrived = Promise.withResolvers<void>();
  const guard = () => arrived.resolve();
  Deno.addSignalListener("SIGUSR1", guard);
  // Nothing else keeps the process alive while no loop runs.
  const keepAlive = setTimeout(() => {}, 60_000);
  try {
    Deno.kill(Deno.pid, "SIGUSR1");
    // Deno calls the listeners in the order added: the loops' came first.
    await arrived.promise;
  } finally {
    clearTimeout(keepAlive);
    Deno.removeSignalListener("SIGUSR1", guard);
  }
  handle.cancel();
  await within(
    loop,
    loop.createTask(function* () {
      yield;
    }),
  );
  await within(
    other,
    other.createTask(function* () {
      yield;
    }),
  );
  assertEquals(calls, ["other"]);
  loop.close();
  other.close();
});

Deno.test("addSignalHandler() sends a callback's error to the exception handler", async () => {
  const loop = new DenoEventLoop();
  const seen = loop.createFuture<unknown>();
  loop.setExceptionHandler((_loop, context) =>
    seen.setResult(context.exception)
  );
  loop.addSignalHandler("SIGUSR1", () => {
    throw new Error("handler failed");
  });
  Deno.kill(Deno.pid, "SIGUSR1");
  const error = await within(loop, seen);
  assertEquals((error as Error).message, "handler failed");
  loop.close();
});

Deno.test("addSignalHandler() rejects unknown and uncatchable signals", () => {
  const loop = new DenoEventLoop();
  assertThrows(
    () => loop.addSignalHandler("SIGFOO" as Deno.Signal, () => {}),
    RangeError,
    'Cannot add a signal handler: unknown signal, received "SIGFOO"',
  );
  assertThrows(
    () => loop.addSignalHandler("SIGKILL", () => {}),
    RangeError,
    'Cannot add a signal handler: it cannot be caught, received "SIGKILL"',
  );
  assertThrows(
    () => loop.addSignalHandler(10 as unknown as Deno.Signal, () => {}),
    TypeError,
    "received number",
  );
  assertThrows(
    () => loop.addSignalHandler("SIGUSR1", "nope" as never),
    TypeError,
    "callback must be a function",
  );
  // As asyncio's add_signal_handler(): no coroutine functions.
  assertThrows(
    () => loop.addSignalHandler("SIGUSR1", function* () {}),
    TypeError,
    "Cannot add a signal handler: callback must be a plain function, not a coroutine function",
  );
  assertThrows(
    () => loop.addSignalHandler("SIGUSR1", async () => {}),
    TypeError,
    "not a coroutine function",
  );
  assertEquals(loop.removeSignalHandler("SIGUSR1"), false);
  // PEP 3156: remove_signal_handler() raises as add_signal_handler() does
  // for a signal that does not exist, with or without handlers installed.
  assertThrows(
    () => loop.removeSignalHandler("SIGFOO" as Deno.Signal),
    RangeError,
    'Cannot remove a signal handler: unknown signal, received "SIGFOO"',
  );
  loop.addSignalHandler("SIGUSR2", () => {});
  assertThrows(
    () => loop.removeSignalHandler("sigusr2" as Deno.Signal),
    RangeError,
    "unknown signal",
  );
  assert(loop.removeSignalHandler("SIGUSR2"));
  assertEquals(loop.removeSignalHandler("SIGKILL"), false);
  assertThrows(
    () => loop.removeSignalHandler(10 as unknown as Deno.Signal),
    TypeError,
  );
  loop.close();
});

Deno.test({
  name:
    "removeSignalHandler() of a signal Deno has not on Linux (SIGEMT, SIGINFO, SIGBREAK) throws as addSignalHandler() does (PEP 3156: the same exceptions)",
  ignore: Deno.build.os !== "linux",
  fn: () => {
    const loop = new DenoEventLoop();
    for (const sig of ["SIGEMT", "SIGINFO", "SIGBREAK"] as const) {
      assertThrows(
        () => loop.addSignalHandler(sig, () => {}),
        RangeError,
        `Cannot add a signal handler: unknown signal on linux, received "${sig}"`,
      );
      assertThrows(
        () => loop.removeSignalHandler(sig),
        RangeError,
        `Cannot remove a signal handler: unknown signal on linux, received "${sig}"`,
      );
    }
    // Linux's other names for SIGIO and SIGSYS are known.
    assertEquals(loop.removeSignalHandler("SIGPOLL"), false);
    assertEquals(loop.removeSignalHandler("SIGUNUSED"), false);
    loop.close();
  },
});

Deno.test("DenoEventLoop.close() removes the signal handlers", () => {
  const loop = new DenoEventLoop();
  loop.addSignalHandler("SIGUSR1", () => {});
  loop.addSignalHandler("SIGUSR2", () => {});
  loop.close();
  // The op sanitizer would report the listeners' polls if they were left.
  assertEquals(loop.removeSignalHandler("SIGUSR1"), false);
  assertThrows(
    () => loop.addSignalHandler("SIGUSR1", () => {}),
    InvalidStateError,
    "Cannot call addSignalHandler(): the loop is closed",
  );
});

// ---- run() and Ctrl-C ----
//
// Each test runs a child Deno that sends itself SIGINT, so that a SIGINT
// that ends the process ends the child, not the test runner.

const MOD = new URL("../../mod.ts", import.meta.url).href;
const SERVE_MODULE = new URL(
  "../fixtures/serve_workers_module.ts",
  import.meta.url,
).href;
const SLOW_SERVE_MODULE = new URL(
  "../fixtures/serve_workers_slow.ts",
  import.meta.url,
).href;

interface ChildEnd {
  lines: string[];
  signal: Deno.Signal | null;
  code: number;
  stderr: string;
}

/**
 * Runs `body` as a module in a child Deno, with `run`, `sleep`,
 * `getRunningLoop`, `currentTask`, `CancelledError` and `serveWorkers`
 * imported, and says what it printed and how it ended. A child still
 * running after 20 s is killed.
 */
async function child(body: string): Promise<ChildEnd> {
  const script = `import {
    CancelledError, currentTask, getRunningLoop, run, serveWorkers, sleep,
  } from ${JSON.stringify(MOD)};
  ${body}`;
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--no-lock", "--unstable-net", "-A", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = proc.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  const { stdout, stderr, signal, code } = await proc.output();
  clearTimeout(timer);
  const lines = new TextDecoder().decode(stdout).split("\n").filter((l) =>
    l !== ""
  );
  return { lines, signal, code, stderr: new TextDecoder().decode(stderr) };
}

/** Prints how `run(main)` ended: its result, or its error's name, message and cause. */
const REPORT = `
  async function report(main) {
    try {
      console.log("run() returned " + await run(main));
    } catch (e) {
      console.log("run() threw " + e.name + ": " + e.message);
      if (e.cause !== undefined) console.log("cause: " + e.cause.name);
    }
  }
`;

const posix = { ignore: Deno.build.os === "windows" };

Deno.test({
  name:
    "run(): the first SIGINT cancels main, which may clean up; run() then rejects with Deno.errors.Interrupted",
  ...posix,
  fn: async () => {
    const end = await child(`${REPORT}
      await report(async () => {
        getRunningLoop().createTask(async () => {
          try {
            await sleep(10);
          } finally {
            console.log("leftover cancelled");
          }
        });
        try {
          Deno.kill(Deno.pid, "SIGINT");
          await sleep(10);
          console.log("not reached");
        } catch (e) {
          console.log("main caught " + e.name);
          await sleep(0.01); // cleanup may wait
          console.log("main cleaned up");
          throw e;
        }
      });
      console.log("after run()");
    `);
    assertEquals(end.signal, null, end.stderr);
    assertEquals(end.lines, [
      "main caught CancelledError",
      "main cleaned up",
      "leftover cancelled",
      'run() threw Interrupted: run() was interrupted: SIGINT (Ctrl-C) cancelled the main task (catch the CancelledError in main to clean up or go on, or handle SIGINT yourself with loop.addSignalHandler("SIGINT", callback))',
      "cause: CancelledError",
      "after run()",
    ]);
    assertEquals(end.code, 0, end.stderr);
  },
});

Deno.test({
  name:
    "run(): a main that catches the SIGINT's cancellation and returns makes run() return its value",
  ...posix,
  fn: async () => {
    const end = await child(`${REPORT}
      await report(function* () {
        try {
          Deno.kill(Deno.pid, "SIGINT");
          yield* sleep(10);
          return "not reached";
        } catch (e) {
          if (!(e instanceof CancelledError)) throw e;
          return "stopped early";
        }
      });
    `);
    assertEquals(end.signal, null, end.stderr);
    assertEquals(end.lines, ["run() returned stopped early"]);
  },
});

Deno.test({
  name:
    "run(): a second SIGINT, while main cleans up, ends the process as SIGINT does by default",
  ...posix,
  fn: async () => {
    const end = await child(`${REPORT}
      await report(async () => {
        try {
          Deno.kill(Deno.pid, "SIGINT");
          await sleep(10);
        } catch {
          console.log("cleaning up");
          Deno.kill(Deno.pid, "SIGINT");
          await sleep(10);
          console.log("cleanup not interrupted");
        }
      });
    `);
    assertEquals(end.lines, ["cleaning up"]);
    assertEquals(end.signal, "SIGINT");
  },
});

Deno.test({
  name:
    "run(): a main already cancelled when SIGINT arrives makes run() reject with its CancelledError (asyncio's test_interrupt_cancelled_task)",
  ...posix,
  fn: async () => {
    const end = await child(`${REPORT}
      await report(async () => {
        currentTask().cancel("by main");
        try {
          await sleep(10);
        } catch (e) {
          Deno.kill(Deno.pid, "SIGINT");
          try {
            await sleep(10);
          } catch {
            console.log("SIGINT cancelled main again");
          }
          throw e;
        }
      });
    `);
    assertEquals(end.signal, null, end.stderr);
    assertEquals(end.lines, [
      "SIGINT cancelled main again",
      "run() threw CancelledError: by main",
    ]);
  },
});

Deno.test({
  name:
    "run() stands aside while the loop has a SIGINT handler, and resumes when it is removed",
  ...posix,
  fn: async () => {
    const end = await child(`${REPORT}
      await report(async () => {
        const loop = getRunningLoop();
        const got = loop.createFuture();
        loop.addSignalHandler("SIGINT", () => got.setResult("handled"));
        Deno.kill(Deno.pid, "SIGINT");
        console.log("handler: " + await got);
        await sleep(0.05);
        console.log("main not cancelled");
        loop.removeSignalHandler("SIGINT");
        try {
          Deno.kill(Deno.pid, "SIGINT");
          await sleep(10);
        } catch (e) {
          console.log("then cancelled: " + e.name);
          throw e;
        }
      });
    `);
    assertEquals(end.signal, null, end.stderr);
    assertEquals(end.lines.slice(0, 3), [
      "handler: handled",
      "main not cancelled",
      "then cancelled: CancelledError",
    ]);
    assertMatch(end.lines[3], /^run\(\) threw Interrupted: /);
  },
});

Deno.test({
  name:
    "run(): once main is done, a SIGINT ends the process as by default, during run()'s cleanup and after it",
  ...posix,
  fn: async () => {
    const during = await child(`${REPORT}
      await report(async () => {
        getRunningLoop().createTask(async () => {
          try {
            await sleep(10);
          } finally {
            console.log("leftover cleaning up");
            Deno.kill(Deno.pid, "SIGINT");
            await sleep(10);
          }
        });
        await sleep(0);
        return "done";
      });
      console.log("survived");
    `);
    assertEquals(during.lines, ["leftover cleaning up"]);
    assertEquals(during.signal, "SIGINT");
    const after = await child(`${REPORT}
      await report(() => Promise.resolve("done"));
      Deno.kill(Deno.pid, "SIGINT");
      setTimeout(() => console.log("survived"), 10_000);
    `);
    assertEquals(after.lines, ["run() returned done"]);
    assertEquals(after.signal, "SIGINT");
  },
});

Deno.test({
  name:
    "run() leaves SIGINT to serveWorkers(), whose first SIGINT closes the workers gracefully",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const end = await child(`${REPORT}
      await report(async () => {
        const workers = await serveWorkers(${JSON.stringify(SERVE_MODULE)}, {
          workers: 1,
        });
        Deno.kill(Deno.pid, "SIGINT");
        await workers.closed;
        return "workers closed";
      });
    `);
    assertEquals(end.signal, null, end.stderr);
    assertEquals(end.lines, ["run() returned workers closed"]);
  },
});

Deno.test({
  name:
    "serveWorkers(): a SIGINT under run() or a SIGTERM while the workers start stops them and rejects with Deno.errors.Interrupted, as gunicorn's arbiter stops on a signal during boot",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const underRun = await child(`${REPORT}
      await report(async () => {
        setTimeout(() => Deno.kill(Deno.pid, "SIGINT"), 300);
        await serveWorkers(${
      JSON.stringify(SLOW_SERVE_MODULE)
    }, { workers: 2 });
        return "started";
      });
    `);
    assertEquals(underRun.signal, null, underRun.stderr);
    assertEquals(underRun.lines, [
      "run() threw Interrupted: Cannot serve from workers: SIGINT came while they started; the started ones were closed",
      "cause: Error",
    ]);
    const plain = await child(`
      setTimeout(() => Deno.kill(Deno.pid, "SIGTERM"), 300);
      try {
        await serveWorkers(${
      JSON.stringify(SLOW_SERVE_MODULE)
    }, { workers: 2 });
        console.log("started");
      } catch (e) {
        console.log(e.name + ": " + e.message);
      }
    `);
    assertEquals(plain.signal, null, plain.stderr);
    assertEquals(plain.lines, [
      "Interrupted: Cannot serve from workers: SIGTERM came while they started; the started ones were closed",
    ]);
  },
});

Deno.test({
  name:
    "run() in a Worker leaves SIGINT alone: only the main thread's run() handles it",
  ...posix,
  fn: async () => {
    const worker = `import { run, sleep } from ${JSON.stringify(MOD)};
      await run(async () => {
        self.postMessage("running");
        try {
          await sleep(10);
        } catch (e) {
          self.postMessage("worker main cancelled");
          throw e;
        }
      });`;
    const end = await child(`
      const w = new Worker(
        "data:application/javascript," + encodeURIComponent(${
      JSON.stringify(worker)
    }),
        { type: "module" },
      );
      w.onmessage = (e) => {
        console.log(e.data);
        if (e.data === "running") Deno.kill(Deno.pid, "SIGINT");
      };
      setTimeout(() => w.terminate(), 10_000);
    `);
    assertEquals(end.lines, ["running"]);
    assertEquals(end.signal, "SIGINT");
  },
});
