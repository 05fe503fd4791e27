import { assertEquals } from "@std/assert";
import { TimeoutError } from "../../futures/errors.ts";
import { sleep } from "../../tasks/sleep.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import { VirtualTimeDenoLoop } from "../_helpers.ts";

// The clock on a loop with host I/O, as the tests of TLS, pipes and
// subprocesses use it (VirtualTimeLoop's own tests cover it on memory I/O).

Deno.test("VirtualClock jumps a loop's clock to its next timer when idle", async () => {
  const loop = new VirtualTimeDenoLoop();
  assertEquals(loop.time(), 0);
  const result = await loop.runUntilComplete(loop.createTask(async () => {
    try {
      await waitFor(sleep(60), 30);
      return "no timeout";
    } catch (e) {
      return e instanceof TimeoutError ? "timed out" : String(e);
    }
  }));
  assertEquals(result, "timed out");
  assertEquals(loop.time(), 30);
  loop.close();
});

Deno.test("VirtualClock keeps the time while a loop with no timer waits for the host", async () => {
  const loop = new VirtualTimeDenoLoop();
  const done = loop.createFuture<string>();
  // Settled by a host timer: with no loop timer the clock has nowhere to go.
  setTimeout(() => loop.callSoon(() => done.setResult("woken")), 5);
  assertEquals(await loop.runUntilComplete(done), "woken");
  assertEquals(loop.time(), 0);
  loop.close();
});
