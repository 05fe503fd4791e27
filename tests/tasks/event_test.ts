import { assert, assertEquals, assertFalse, assertThrows } from "@std/assert";
import { CancelledError, InvalidStateError } from "../../futures/errors.ts";
import { Event } from "../../tasks/event.ts";
import { sleep } from "../../tasks/sleep.ts";

import { run } from "../_helpers.ts";

Deno.test("Event starts unset and set()/clear() flip the flag", () => {
  const ev = new Event();
  assertFalse(ev.isSet());
  ev.set();
  assert(ev.isSet());
  ev.set();
  assert(ev.isSet());
  ev.clear();
  assertFalse(ev.isSet());
});

Deno.test("Event.wait() completes at once when the flag is set", async () => {
  await run(function* (loop) {
    const ev = new Event({ loop });
    ev.set();
    const f = ev.wait();
    assert(f.done());
    assertEquals(yield* f, true);
  });
});

Deno.test("Event.set() wakes every waiter, generator and async alike", async () => {
  await run(function* (loop) {
    const ev = new Event({ loop });
    const woke: string[] = [];
    const a = loop.createTask(function* () {
      yield* ev.wait();
      woke.push("a");
    });
    const b = loop.createTask(async () => {
      await ev.wait();
      woke.push("b");
    });
    const c = loop.createTask(function* () {
      yield* ev.wait();
      woke.push("c");
    });
    yield* sleep(3);
    assertEquals(woke, []);
    assertEquals(Deno.inspect(ev), "Event unset waiters=3");
    ev.set();
    yield* a;
    yield* b;
    yield* c;
    assertEquals(woke.sort(), ["a", "b", "c"]);
    assertEquals(loop.time(), 3);
    assertEquals(Deno.inspect(ev), "Event set");
  });
});

Deno.test("Event waiters woken by set() stay woken if clear() follows at once", async () => {
  await run(function* (loop) {
    const ev = new Event({ loop });
    const w = ev.wait();
    ev.set();
    ev.clear();
    assertEquals(yield* w, true);
    assertFalse(ev.isSet());
    const later = ev.wait();
    yield* sleep(1);
    assertFalse(later.done());
    later.cancel();
  });
});

Deno.test("Event drops a cancelled waiter and still wakes the others", async () => {
  await run(function* (loop) {
    const ev = new Event({ loop });
    const a = loop.createTask(function* () {
      yield* ev.wait();
      return "a";
    });
    const b = loop.createTask(function* () {
      yield* ev.wait();
      return "b";
    });
    yield* sleep(0);
    assertEquals(Deno.inspect(ev), "Event unset waiters=2");
    a.cancel();
    yield* sleep(0);
    assertEquals(Deno.inspect(ev), "Event unset waiters=1");
    ev.set();
    assertEquals(yield* b, "b");
    assert(a.cancelled());
    try {
      yield* a;
    } catch (e) {
      assert(e instanceof CancelledError);
    }
  });
});

Deno.test("Event.wait() without a loop outside a running loop throws InvalidStateError", () => {
  assertThrows(() => new Event().wait(), InvalidStateError);
});

Deno.test("Event prints its state via toStringTag", () => {
  const ev = new Event();
  assertEquals(Object.prototype.toString.call(ev), "[object Event unset]");
});

// ---- Cases from CPython's test_locks.py (EventTests) ----

// Mirrors CPython's EventTests.test_wait.
Deno.test("Event.set(): a task created before set() but not yet started resumes before the waiters set() woke", async () => {
  await run(function* (loop) {
    const ev = new Event({ loop });
    const got: number[] = [];
    const waiter = (n: number) => async () => {
      if (await ev.wait()) got.push(n);
    };
    const t1 = loop.createTask(waiter(1));
    const t2 = loop.createTask(waiter(2));
    yield* sleep(0);
    assertEquals(got, []);
    const t3 = loop.createTask(waiter(3));
    ev.set();
    yield* sleep(0);
    assertEquals(got, [3, 1, 2]);
    for (const t of [t1, t2, t3]) assertEquals(t.result(), undefined);
  });
});

// Mirrors CPython's EventTests.test_clear_with_waiters.
Deno.test("Event: set(), clear(), set(), set() wakes a waiter once and leaves no waiter behind", async () => {
  await run(function* (loop) {
    const ev = new Event({ loop });
    let woken = 0;
    const t = loop.createTask(async () => {
      if (await ev.wait()) woken++;
      return true;
    });
    yield* sleep(0);
    ev.set();
    ev.clear();
    assertFalse(ev.isSet());
    ev.set();
    ev.set();
    yield* sleep(0);
    assertEquals(woken, 1);
    assertEquals(t.result(), true);
    assertFalse(Deno.inspect(ev).includes("waiters"), Deno.inspect(ev));
  });
});
