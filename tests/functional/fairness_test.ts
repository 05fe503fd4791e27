// The loop never starves Deno: a task spinning on `yield` (or sleep(0)),
// or a flood of ready callbacks, must not keep sockets and timers from
// being served.

import { assert, assertEquals, assertRejects } from "@std/assert";
import { CancelledError } from "../../futures/errors.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { Protocol } from "../../protocols/protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Coroutine } from "../../tasks/task.ts";
import type { Transport } from "../../transports/transport.ts";
import { bytes, text, within } from "./_io_helpers.ts";

class Echo extends Protocol {
  #t?: Transport;
  override connectionMade(t: Transport) {
    this.#t = t;
  }
  override dataReceived(d: Uint8Array) {
    this.#t!.write(d);
  }
}

async function roundTripWhileBusy(
  loop: DenoEventLoop,
  busy: () => void,
): Promise<string[]> {
  const events: string[] = [];
  const server = await within(
    loop,
    loop.createServer(() => new Echo(), "127.0.0.1", 0),
  );
  const { port } = server.addresses()[0] as Deno.NetAddr;
  busy();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  // The echo and the timer are served by the loop while it is busy; the
  // client side runs on plain Deno promises.
  const timer = loop.createFuture<void>();
  loop.callLater(0.01, () => {
    events.push("timer");
    timer.setResult(undefined);
  });
  await conn.write(bytes("ping"));
  const buf = new Uint8Array(16);
  const reply = loop.createTask(async () => {
    const n = await conn.read(buf);
    events.push(`echo ${text(buf.subarray(0, n ?? 0))}`);
  });
  await within(loop, reply);
  await within(loop, timer);
  conn.close();
  server.close();
  await within(loop, server.waitClosed());
  return events.sort();
}

Deno.test("DenoEventLoop serves sockets and timers while a task spins on yield", async () => {
  const loop = new DenoEventLoop();
  function* spin(): Coroutine<never> {
    for (;;) yield;
  }
  let spinner: ReturnType<typeof loop.createTask> | undefined;
  const events = await roundTripWhileBusy(loop, () => {
    spinner = loop.createTask(spin());
  });
  assertEquals(events, ["echo ping", "timer"]);
  spinner!.cancel();
  await assertRejects(() => loop.runUntilComplete(spinner!), CancelledError);
  loop.close();
});

Deno.test("DenoEventLoop serves sockets and timers while a task spins on sleep(0)", async () => {
  const loop = new DenoEventLoop();
  let spinner: ReturnType<typeof loop.createTask> | undefined;
  const events = await roundTripWhileBusy(loop, () => {
    spinner = loop.createTask(async () => {
      for (;;) await sleep(0);
    });
  });
  assertEquals(events, ["echo ping", "timer"]);
  spinner!.cancel();
  await assertRejects(() => loop.runUntilComplete(spinner!), CancelledError);
  loop.close();
});

Deno.test("DenoEventLoop serves sockets and timers under a flood of callbacks", async () => {
  const loop = new DenoEventLoop();
  let flooding = true;
  const flood = () => {
    if (!flooding) return;
    for (let i = 0; i < 4; i++) loop.callSoon(noop);
    loop.callSoon(flood);
  };
  const events = await roundTripWhileBusy(loop, () => loop.callSoon(flood));
  assertEquals(events, ["echo ping", "timer"]);
  flooding = false;
  loop.close();
});

function noop() {}

// A generous bound on the echo round trip while the loop is busy: the host
// gets a turn that really polls I/O every millisecond, so a round trip
// takes about a millisecond; a loop whose host turns skip the I/O driver
// took 27–95 ms here. Speed is not what is asserted: 10 ms pins that defect.
const ROUND_TRIPS = 21;
const BOUND_MS = 10;

async function medianRoundTripWhileBusy(
  busy: (loop: DenoEventLoop, stop: () => boolean) => void,
): Promise<number> {
  const loop = new DenoEventLoop();
  const server = await within(
    loop,
    loop.createServer(() => new Echo(), "127.0.0.1", 0),
  );
  const { port } = server.addresses()[0] as Deno.NetAddr;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  let stopped = false;
  busy(loop, () => stopped);
  // The client runs on plain Deno promises in the same process: it is let
  // in only by the loop's host turns.
  const client = loop.createTask(async () => {
    const one = new Uint8Array([1]);
    const buf = new Uint8Array(8);
    const times: number[] = [];
    const deadline = performance.now() + 5000;
    while (times.length < ROUND_TRIPS && performance.now() < deadline) {
      const t = performance.now();
      await conn.write(one);
      await conn.read(buf);
      times.push(performance.now() - t);
    }
    return times.sort((a, b) => a - b)[times.length >> 1];
  });
  try {
    return await within(loop, client);
  } finally {
    stopped = true;
    conn.close();
    server.close();
    await within(loop, server.waitClosed());
    await within(loop, sleep(0.001, undefined, { loop }));
    loop.close();
  }
}

Deno.test(`DenoEventLoop echoes within ${BOUND_MS} ms (median) while a callSoon chain runs`, async () => {
  const median = await medianRoundTripWhileBusy((loop, stop) => {
    const tick = () => {
      if (!stop()) loop.callSoon(tick);
    };
    loop.callSoon(tick);
  });
  assert(median < BOUND_MS, `median round trip ${median.toFixed(2)} ms`);
});

Deno.test(`DenoEventLoop echoes within ${BOUND_MS} ms (median) while a task loops on await sleep(0)`, async () => {
  const median = await medianRoundTripWhileBusy((loop, stop) => {
    loop.createTask(async () => {
      while (!stop()) await sleep(0);
    });
  });
  assert(median < BOUND_MS, `median round trip ${median.toFixed(2)} ms`);
});
