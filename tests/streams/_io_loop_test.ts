import { assertStrictEquals, assertThrows } from "@std/assert";
import { ioLoop } from "../../streams/_io_loop.ts";
import { InvalidStateError } from "../../futures/errors.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";

Deno.test("ioLoop() prefers the given loop, then the running one", async () => {
  const loop = new DenoEventLoop();
  assertStrictEquals(ioLoop(loop, "connect"), loop);
  let found: unknown = null;
  loop.callSoon(() => {
    found = ioLoop(undefined, "connect");
  });
  await loop.runUntilComplete(Promise.resolve());
  assertStrictEquals(found, loop);
  loop.close();
});

Deno.test("ioLoop() throws InvalidStateError outside a loop", () => {
  assertThrows(
    () => ioLoop(undefined, "open a connection"),
    InvalidStateError,
    "Cannot open a connection: no event loop is running",
  );
});
