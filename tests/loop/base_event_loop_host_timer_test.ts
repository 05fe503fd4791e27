// The idle loop arms its host timer ahead of its own timers' time and
// finishes the wait with a short block of the thread (freely without I/O in
// flight, within a budget with it): whatever the host does, a timer must
// never fire before its time, and each must fire.

import { assert, assertEquals } from "@std/assert";
import { BaseEventLoop } from "../../loop/base_event_loop.ts";

// A loop with I/O in flight blocks within its budget, and runs out of it
// with timers this close together: the waits it cannot finish by blocking
// go on the host timer alone.
class BusyIoLoop extends BaseEventLoop {
  protected override ioPending(): boolean {
    return true;
  }
}

async function neverEarly(loop: BaseEventLoop): Promise<void> {
  const delays = [0.0003, 0.0009, 0.0015, 0.0021, 0.0032, 0.0057, 0.011];
  const early: string[] = [];
  let fired = 0;
  for (let round = 0; round < 3; round++) {
    for (const delay of delays) {
      const done = loop.createFuture<void>();
      const handle = loop.callLater(delay, () => {
        const now = loop.time();
        if (now < handle.when) {
          early.push(`${delay}: ${(handle.when - now) * 1e6} µs early`);
        }
        fired++;
        done.setResult(undefined);
      });
      await loop.runUntilComplete(done);
    }
  }
  loop.close();
  assertEquals(early, []);
  assertEquals(fired, 3 * delays.length);
}

Deno.test("BaseEventLoop: timers waited for with the host timer armed early never fire before their time", async () => {
  await neverEarly(new BaseEventLoop());
});

Deno.test("BaseEventLoop: with I/O in flight, timers waited for within the block budget never fire before their time", async () => {
  await neverEarly(new BusyIoLoop());
});

Deno.test("BaseEventLoop: a wait for a far timer still wakes at once for callSoon from outside", async () => {
  const loop = new BaseEventLoop();
  const far = loop.callLater(60, () => {});
  const got = loop.createFuture<string>();
  const id = setTimeout(() => loop.callSoon(() => got.setResult("woken")), 5);
  assertEquals(await loop.runUntilComplete(got), "woken");
  assert(!far.cancelled);
  far.cancel();
  clearTimeout(id);
  loop.close();
});

Deno.test("BaseEventLoop: a timer beyond the host timer's range (sleep(Infinity), 30 days) waits without spinning", async () => {
  // A host timer over 2^31 - 1 ms fires after 1 ms: the loop would wake
  // every millisecond. Count the idle loop's iterations meanwhile.
  const loop = new BaseEventLoop();
  const delays: number[] = [];
  const realSetTimeout = globalThis.setTimeout;
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    delays.push(ms ?? 0);
    return realSetTimeout(fn, ms);
  }) as typeof setTimeout;
  let fired = 0;
  const forever = loop.callLater(Infinity, () => fired++);
  const month = loop.callLater(30 * 86400, () => fired++);
  const got = loop.createFuture<string>();
  const id = realSetTimeout(
    () => loop.callSoonThreadsafe(() => got.setResult("woken")),
    50,
  );
  try {
    assertEquals(await loop.runUntilComplete(got), "woken");
  } finally {
    globalThis.setTimeout = realSetTimeout;
    clearTimeout(id);
    forever.cancel();
    month.cancel();
    loop.close();
  }
  assertEquals(fired, 0);
  assert(
    delays.length > 0 && delays.length < 5,
    `${delays.length} host timers`,
  );
  assert(delays.every((ms) => ms <= 2 ** 31 - 1), String(delays));
});
