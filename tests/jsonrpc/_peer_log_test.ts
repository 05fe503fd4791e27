import { assert, assertEquals, assertThrows } from "@std/assert";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import { logSize, PeerLog } from "../../jsonrpc/_peer_log.ts";

function recorder(perKind?: number) {
  const contexts: ExceptionContext[] = [];
  const log = new PeerLog((c) => contexts.push(c), { perKind });
  return { log, contexts };
}

Deno.test("PeerLog passes on the first report of each kind and counts the rest", () => {
  const { log, contexts } = recorder();
  log.received(100_000);
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
    "Test connection: 98 problems caused by the peer were counted but not logged (50 a, 50 b)",
  );
  assertEquals(contexts[2].protocol, "p");
  // Closed: counted only, no second summary.
  log.report("a", { message: "late" });
  log.close("Test connection");
  assertEquals(contexts.length, 3);
  assertEquals(log.count("a"), 51);
});

Deno.test("PeerLog's perKind sets how many reports of a kind are passed on", () => {
  const { log, contexts } = recorder(3);
  log.received(100_000);
  for (let i = 0; i < 10; i++) log.report("a", { message: `a ${i}` });
  assertEquals(contexts.length, 3);
  const none = recorder(0);
  none.log.received(100_000);
  none.log.report("a", { message: "a" });
  assertEquals(none.contexts.length, 0);
  assertThrows(() => new PeerLog(() => {}, { perKind: -1 }), RangeError);
  assertThrows(() => new PeerLog(() => {}, { perKind: 1.5 }), RangeError);
});

Deno.test("PeerLog never passes on more than the peer sent", () => {
  const big = new Error("x".repeat(500));
  for (const budget of [0, 10, 47, 60, 100, 300, 1000, 5000]) {
    const { log, contexts } = recorder(1000);
    log.received(budget);
    for (let i = 0; i < 100; i++) {
      log.report(`k${i % 3}`, {
        message: "The peer did something",
        exception: big,
        protocol: { name: "p" },
      });
    }
    log.close("Test connection", { protocol: { name: "p" } });
    const used = contexts.reduce((n, c) => n + logSize(c), 0);
    assert(used <= budget, `budget ${budget}: used ${used}`);
    assertEquals(log.count(), 100);
  }
});

Deno.test("PeerLog shortens a report that does not fit whole to one line", () => {
  const { log, contexts } = recorder();
  log.received(120);
  const e = new TypeError("Broken\nover lines");
  assert(logSize({ message: "Notification failed", exception: e }) > 120);
  log.report("a", { message: "Notification failed", exception: e });
  assertEquals(contexts.length, 1);
  assertEquals(contexts[0].exception, undefined);
  assertEquals(
    contexts[0].message,
    "Notification failed: TypeError: Broken over lines",
  );
  // Too small for even that: counted only.
  const tiny = recorder();
  tiny.log.received(20);
  tiny.log.report("a", { message: "Notification failed", exception: e });
  assertEquals(tiny.contexts.length, 0);
  assertEquals(tiny.log.held, 1);
});

Deno.test("logSize() covers what the default exception handler prints", () => {
  const cases: ExceptionContext[] = [
    { message: "m" },
    { message: "m", exception: new Error("boom") },
    { message: "m", exception: { code: -1, data: "y".repeat(300) } },
    { message: "m", exception: "a string", transport: { a: 1 } },
  ];
  for (const c of cases) {
    const { message, exception, ...details } = c;
    let printed = message.length + 1;
    if (Object.keys(details).length > 0) {
      printed += Deno.inspect(details).length;
    }
    if (exception !== undefined) printed += Deno.inspect(exception).length;
    assert(logSize(c) >= printed, `${logSize(c)} < ${printed}`);
  }
});
