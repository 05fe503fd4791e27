// Real signals sent to our own process through DenoEventLoop's signal
// handlers. Needs --allow-run (Deno.kill).

import {
  assert,
  assertEquals,
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
