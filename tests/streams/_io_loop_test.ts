import { assertStrictEquals, assertThrows } from "@std/assert";
import { ioLoop } from "../../streams/_io_loop.ts";
import { InvalidStateError } from "../../futures/errors.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { BaseEventLoop } from "../../loop/base_event_loop.ts";
import type { EventLoop } from "../../loop/event_loop.ts";

Deno.test("ioLoop() prefers the given loop, then the running one", async () => {
  const loop = new DenoEventLoop();
  assertStrictEquals(ioLoop(loop, "connect", "createConnection"), loop);
  let found: unknown = null;
  loop.callSoon(() => {
    found = ioLoop(undefined, "connect", "createConnection");
  });
  await loop.runUntilComplete(Promise.resolve());
  assertStrictEquals(found, loop);
  loop.close();
});

Deno.test("ioLoop() throws InvalidStateError outside a loop", () => {
  assertThrows(
    () => ioLoop(undefined, "open a connection", "createConnection"),
    InvalidStateError,
    "Cannot open a connection: no event loop is running",
  );
});

Deno.test("ioLoop() refuses a loop without the I/O asked of it, or no loop at all", () => {
  const loop = new BaseEventLoop();
  assertThrows(
    () =>
      ioLoop(
        loop as unknown as EventLoop,
        "open a connection",
        "createConnection",
      ),
    TypeError,
    "Cannot open a connection: the loop has no createConnection() (a BaseEventLoop does no I/O",
  );
  loop.close();
  assertThrows(
    () => ioLoop(5 as unknown as EventLoop, "start a server", "createServer"),
    TypeError,
    "Cannot start a server: loop must be an event loop, received 5",
  );
});
