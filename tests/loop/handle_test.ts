import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import v8 from "node:v8";
import vm from "node:vm";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

// Collection needs a real GC: V8 takes --expose-gc at run time through
// node:v8, and a new context then hands out `gc`.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 0));
  }
}

Deno.test("Handle.cancel() lets go of the callback and its arguments", async () => {
  // As asyncio's Handle.cancel() does: a cancelled timer waits in the queue
  // until it is due, and must not keep what it would have called alive.
  const loop = new VirtualTimeLoop();
  let callbackRef!: WeakRef<object>;
  let argRef!: WeakRef<object>;
  const [timer, soon] = (() => {
    const big = { data: new Uint8Array(1024) };
    const cb = (x: { data: Uint8Array }) => x.data.length;
    callbackRef = new WeakRef(cb);
    argRef = new WeakRef(big);
    const timer = loop.callLater(3600, cb, big);
    const soon = loop.callSoon(cb, big);
    assertStrictEquals(timer.callback, cb);
    assertStrictEquals(soon.args[0], big);
    timer.cancel();
    soon.cancel();
    return [timer, soon];
  })();
  await collect();
  assertEquals(callbackRef.deref(), undefined);
  assertEquals(argRef.deref(), undefined);
  assert(timer.cancelled && soon.cancelled);
  assertEquals([timer.args, soon.args], [[], []]);
  assertEquals(timer.callback(), undefined);
  loop.close();
});

Deno.test("Handle.cancel() from its own callback still names it in an error report", async () => {
  const loop = new VirtualTimeLoop();
  const seen: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => seen.push(ctx));
  const h = loop.callSoon(function selfCancelling() {
    h.cancel();
    throw new Error("after cancel");
  });
  await loop.runOnce();
  assertEquals(seen.map((c) => c.message), [
    "Exception in callback selfCancelling",
  ]);
  loop.close();
});

Deno.test("Handle and TimerHandle print as asyncio's repr does", () => {
  const loop = new VirtualTimeLoop();
  function named() {}
  const h = loop.callSoon(named);
  assertEquals(Deno.inspect(h), "Handle named()");
  h.cancel();
  assertEquals(Deno.inspect(h), "Handle cancelled");
  const t = loop.callAt(123, named);
  assertEquals(Deno.inspect(t), "TimerHandle when=123 named()");
  t.cancel();
  assertEquals(Deno.inspect(t), "TimerHandle cancelled when=123");
  loop.close();
});

Deno.test("Cancelling a Handle releases the timers standing for it and counts each once", async () => {
  const loop = new VirtualTimeLoop();
  const big = { payload: "kept alive by the timer" };
  const h = loop.callSoon(function named(_x: unknown) {}, big);
  const t1 = loop.callLater(10, h);
  const t2 = loop.callAt(loop.time() + 20, h);
  const t3 = loop.callLater(30, h);
  t3.cancel();
  assertEquals(Deno.inspect(loop), "VirtualTimeLoop stopped ready=1 timers=2");
  h.cancel();
  for (const t of [t1, t2, t3]) {
    assert(t.cancelled);
    assertEquals([t.callback.name, t.args], ["released", []]);
  }
  assertEquals(Deno.inspect(loop), "VirtualTimeLoop stopped ready=1 timers=0");
  // Cancelling again, through either handle, counts nothing more.
  t1.cancel();
  h.cancel();
  t2.cancel();
  assertEquals(Deno.inspect(loop), "VirtualTimeLoop stopped ready=1 timers=0");
  loop.callLater(5, () => {});
  assertEquals(Deno.inspect(loop), "VirtualTimeLoop stopped ready=1 timers=1");
  await loop.advance(40);
  assertEquals(Deno.inspect(loop), "VirtualTimeLoop stopped ready=0 timers=0");
  loop.close();
});

Deno.test("Cancelling a Handle that many timers stand for compacts the loop's queue and counts each once", async () => {
  const loop = new VirtualTimeLoop();
  const h = loop.callSoon(() => {});
  const timers = Array.from(
    { length: 100 },
    (_, i) => loop.callLater(i + 1, h),
  );
  loop.callLater(200, () => {});
  h.cancel();
  assert(timers.every((t) => t.cancelled));
  assertEquals(Deno.inspect(loop), "VirtualTimeLoop stopped ready=1 timers=1");
  await loop.advance(300);
  assertEquals(Deno.inspect(loop), "VirtualTimeLoop stopped ready=0 timers=0");
  loop.close();
});

Deno.test("A timer standing for a Handle cancelled later leaves the loop's timer count right", async () => {
  const loop = new VirtualTimeLoop();
  const h = loop.callSoon(() => {});
  loop.callLater(10, h);
  h.cancel();
  await loop.advance(20);
  assertEquals(Deno.inspect(loop), "VirtualTimeLoop stopped ready=0 timers=0");
  loop.callLater(5, () => {});
  assertEquals(Deno.inspect(loop), "VirtualTimeLoop stopped ready=0 timers=1");
  loop.close();
});

Deno.test("Timers made from one Handle and run are not kept by it", async () => {
  // Scheduling one handle again and again (callLater(d, handle)) must not
  // keep every one-shot timer it made: a server doing so once a second
  // would grow for ever.
  const loop = new VirtualTimeLoop();
  const h = loop.callSoon(() => {});
  let collected = 0;
  const registry = new FinalizationRegistry(() => collected++);
  for (let i = 0; i < 100; i++) registry.register(loop.callLater(0, h), i);
  await loop.advance(1);
  await collect();
  await new Promise((r) => setTimeout(r, 10));
  assertEquals(collected, 100);
  h.cancel();
  loop.close();
});
