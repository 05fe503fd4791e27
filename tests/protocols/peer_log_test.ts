import { assert, assertEquals, assertThrows } from "@std/assert";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import { PeerLog } from "../../protocols/peer_log.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

/** A loop that records what reaches its exception handler. */
function recording() {
  const loop = new VirtualTimeLoop();
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => contexts.push(context));
  return { loop, contexts };
}

/** Spends the whole of `loop`'s reserve. */
function drain(loop: VirtualTimeLoop): void {
  const log = new PeerLog({ loop });
  assert(log.report("x", { message: "x".repeat(PeerLog.RESERVE - 1) }));
  assertEquals(log.report("y", { message: "y" }), false);
}

function used(contexts: ExceptionContext[]): number {
  return contexts.reduce((n, c) => n + PeerLog.sizeOf(c), 0);
}

Deno.test("PeerLog's summary of one held report says problem, not problems", () => {
  const { loop, contexts } = recording();
  const log = new PeerLog({ loop });
  log.report("stray responses", { message: "first" });
  log.report("stray responses", { message: "second" });
  log.close("Test connection");
  assertEquals(
    contexts.map((c) => c.message),
    [
      "first",
      "Test connection: 1 problem was counted but not logged (2 stray responses)",
    ],
  );
});

Deno.test("PeerLog passes on the first report of each kind and counts the rest", () => {
  const { loop, contexts } = recording();
  const log = new PeerLog({ loop });
  for (let i = 0; i < 50; i++) {
    log.report("a", { message: `a ${i}`, exception: new Error(`e ${i}`) });
    log.report("b", { message: `b ${i}` });
  }
  assertEquals(contexts.map((c) => c.message), ["a 0", "b 0"]);
  assertEquals([log.count("a"), log.count("b"), log.count()], [50, 50, 100]);
  assertEquals(log.held, 98);
  log.close("Test connection", { protocol: "p" });
  assertEquals(contexts.length, 3);
  assertEquals(
    contexts[2].message,
    "Test connection: 98 problems were counted but not logged (50 a, 50 b)",
  );
  assertEquals(contexts[2].protocol, "p");
  // Closed: counted only, no second summary.
  log.report("a", { message: "late" });
  log.close("Test connection");
  assertEquals(contexts.length, 3);
  assertEquals(log.count("a"), 51);
  loop.close();
});

Deno.test("PeerLog's perKind sets how many reports of a kind are passed on", () => {
  const { loop, contexts } = recording();
  const log = new PeerLog({ loop, perKind: 3 });
  for (let i = 0; i < 10; i++) log.report("a", { message: `a ${i}` });
  assertEquals(contexts.length, 3);
  const none = new PeerLog({ loop, perKind: 0 });
  assertEquals(none.report("a", { message: "a" }), false);
  assertEquals(contexts.length, 3);
  assertThrows(() => new PeerLog({ perKind: -1 }), RangeError);
  assertThrows(
    () => new PeerLog({ perKind: 1.5 }),
    RangeError,
    "Cannot make a PeerLog: perKind must be a whole number >= 0, received 1.5",
  );
  loop.close();
});

Deno.test("PeerLog's logs on one loop write no more than the reserve plus what their peers sent", () => {
  const { loop, contexts } = recording();
  const big = new Error("x".repeat(500));
  let sent = 0;
  for (let round = 0; round < 40; round++) {
    for (const budget of [0, 10, 47, 60, 100, 300, 1000, 5000]) {
      const log = new PeerLog({ loop, perKind: 1000 });
      log.received(budget);
      sent += budget;
      for (let i = 0; i < 100; i++) {
        log.report(`k${i % 3}`, {
          message: "The peer did something",
          exception: big,
          protocol: { name: "p" },
        });
      }
      log.close("Test connection", { protocol: { name: "p" } });
      assertEquals(log.count(), 100);
      assert(
        used(contexts) <= PeerLog.RESERVE + sent,
        `${used(contexts)} for ${sent}`,
      );
    }
  }
  loop.close();
});

Deno.test("PeerLog shares one reserve per loop, refilled by what closed connections did not spend", () => {
  const { loop, contexts } = recording();
  drain(loop);
  const before = contexts.length;
  const silent = new PeerLog({ loop });
  assertEquals(
    silent.report("a", { message: "The peer did something" }),
    false,
  );
  silent.close("Test connection");
  assertEquals(contexts.length, before);
  // Another loop has its own reserve.
  const other = recording();
  assert(new PeerLog({ loop: other.loop }).report("a", { message: "m" }));
  other.loop.close();
  // A connection that sent much and logged little gives the rest back.
  const quiet = new PeerLog({ loop });
  quiet.received(1000);
  quiet.close("Test connection");
  const next = new PeerLog({ loop });
  assert(next.report("a", { message: "m".repeat(900) }));
  loop.close();
});

Deno.test("PeerLog shortens a report that does not fit whole to one line", () => {
  const { loop, contexts } = recording();
  drain(loop);
  contexts.length = 0;
  const log = new PeerLog({ loop });
  log.received(120);
  const e = new TypeError("Broken\nover lines");
  assert(
    PeerLog.sizeOf({ message: "Notification failed", exception: e }) > 120,
  );
  log.report("a", { message: "Notification failed", exception: e });
  assertEquals(contexts.length, 1);
  assertEquals(contexts[0].exception, undefined);
  assertEquals(
    contexts[0].message,
    "Notification failed: TypeError: Broken over lines",
  );
  // Too small for even that: counted only.
  const tiny = new PeerLog({ loop });
  tiny.received(20);
  tiny.report("a", { message: "Notification failed", exception: e });
  assertEquals(contexts.length, 1);
  assertEquals(tiny.held, 1);
  loop.close();
});

Deno.test("PeerLog counts a report it has no room for without measuring it: a flood of failures formats no stack", () => {
  const { loop, contexts } = recording();
  drain(loop);
  contexts.length = 0;
  const log = new PeerLog({ loop, perKind: Number.MAX_SAFE_INTEGER });
  let reads = 0;
  const e = new Error("cannot take this");
  const stack = e.stack;
  Object.defineProperty(e, "stack", {
    get: () => {
      reads++;
      return stack;
    },
  });
  const context = { message: "Exception in protocol.datagramReceived()" };
  log.received(8); // an empty datagram's header
  for (let i = 0; i < 100; i++) {
    assertEquals(log.report("failures", { ...context, exception: e }), false);
  }
  assertEquals(log.held, 100);
  assertEquals(contexts.length, 0);
  assertEquals(reads, 0);
  loop.close();
});

Deno.test("PeerLog reports an exception that throws when inspected", () => {
  const { loop, contexts } = recording();
  const hostile = new Proxy({}, {
    getPrototypeOf() {
      throw new Error("getPrototypeOf trap");
    },
    get() {
      throw new Error("get trap");
    },
  });
  const nullCircular: Record<string, unknown> = Object.create(null);
  nullCircular.self = nullCircular;
  const log = new PeerLog({ loop, perKind: 2 });
  assert(log.report("a", { message: "Failed", exception: hostile }));
  assertEquals(contexts.length, 1);
  // With no reserve left: shortened to one line naming no message.
  drain(loop);
  contexts.length = 0;
  for (const exception of [hostile, nullCircular]) {
    const short = new PeerLog({ loop });
    short.received(100);
    assert(short.report("a", { message: "Failed", exception }));
  }
  assertEquals(contexts.map((c) => c.message), [
    "Failed: (an exception that cannot be shown)",
    "Failed: (an exception that cannot be shown)",
  ]);
  loop.close();
});

Deno.test("PeerLog counts, and passes nothing on, without a loop", () => {
  const log = new PeerLog();
  log.received(100_000);
  assertEquals(log.report("a", { message: "m" }), false);
  assertEquals([log.count("a"), log.held], [1, 1]);
  log.close("Test connection");
});

Deno.test("PeerLog.sizeOf() covers what the default exception handler prints", () => {
  const cases: ExceptionContext[] = [
    { message: "m" },
    { message: "m", exception: new Error("boom") },
    { message: "m", exception: { code: -1, data: "y".repeat(300) } },
    { message: "m", exception: "a string", transport: { a: 1 } },
    // Fields a protocol adds, printed whole: a line the peer sent.
    { message: "m", line: "z".repeat(5000) },
    { message: "m", line: "\x00\x9b".repeat(2000) },
    { message: "m", request: { url: "u".repeat(3000), method: "GET" } },
  ];
  for (const c of cases) {
    const { message, exception, ...details } = c;
    let printed = message.length + 1;
    if (Object.keys(details).length > 0) {
      printed += Deno.inspect(details).length;
    }
    if (exception !== undefined) printed += Deno.inspect(exception).length;
    assert(PeerLog.sizeOf(c) >= printed, `${PeerLog.sizeOf(c)} < ${printed}`);
  }
});

Deno.test("PeerLog.received() refuses a count that is not a number of bytes", () => {
  // A NaN would poison the loop's shared reserve: every later report
  // would pass, without a bound.
  const { loop, contexts } = recording();
  const log = new PeerLog({ loop });
  for (const bad of [NaN, -1, Infinity, undefined]) {
    assertThrows(
      () => log.received(bad as number),
      RangeError,
      "bytes must be a whole number >= 0",
    );
  }
  drain(loop);
  const other = new PeerLog({ loop });
  assertEquals(other.report("a", { message: "m".repeat(1000) }), false);
  assertEquals(contexts.length, 1);
  loop.close();
});

Deno.test("PeerLog passes a protocol's first failure whole though the protocol holds a 64 KiB buffer (Deno's console prints 100 of its items)", () => {
  const { loop, contexts } = recording();
  const log = new PeerLog({ loop });
  const protocol = {
    buffer: new Uint8Array(64 * 1024),
    chunks: [new Uint8Array(64 * 1024)],
  };
  const exception = new Error("bug in connectionMade()");
  const context = { message: "Fatal error", exception, protocol };
  assert(
    PeerLog.sizeOf(context) < 4096,
    `${PeerLog.sizeOf(context)} characters`,
  );
  assert(log.report("fatal errors", context));
  assertEquals(contexts.length, 1);
  assertEquals(contexts[0].exception, exception);
  loop.close();
});
