import { assertEquals, assertStrictEquals } from "@std/assert";
import { getRunningLoop } from "../../futures/running_loop.ts";
import { BaseEventLoop } from "../../loop/base_event_loop.ts";
import { newEventLoop, setEventLoop } from "../../loop/policy.ts";

Deno.test("getRunningLoop() returns null outside any loop", () => {
  assertEquals(getRunningLoop(), null);
});

Deno.test("getRunningLoop() returns the loop whose callback is running", async () => {
  const loop = new BaseEventLoop();
  const seen: unknown[] = [];
  loop.callSoon(() => {
    seen.push(getRunningLoop());
    loop.stop();
  });
  await loop.runForever();
  assertStrictEquals(seen[0], loop);
  assertEquals(getRunningLoop(), null);
  loop.close();
});

Deno.test("getRunningLoop() follows whichever of two running loops runs a callback", async () => {
  const outer = new BaseEventLoop();
  const inner = new BaseEventLoop();
  const seen: unknown[] = [];
  inner.callSoon(() => {
    seen.push(getRunningLoop());
    inner.stop();
  });
  outer.callSoon(() => {
    seen.push(getRunningLoop());
    outer.stop();
  });
  await Promise.all([outer.runForever(), inner.runForever()]);
  assertEquals(seen.length, 2);
  assertStrictEquals(seen.includes(outer), true);
  assertStrictEquals(seen.includes(inner), true);
  assertEquals(getRunningLoop(), null);
  outer.close();
  inner.close();
});

Deno.test("getRunningLoop() falls back on the loop made current with setEventLoop()", () => {
  const loop = newEventLoop();
  setEventLoop(loop);
  try {
    assertStrictEquals(getRunningLoop(), loop);
  } finally {
    setEventLoop(null);
  }
  assertEquals(getRunningLoop(), null);
  loop.close();
});
