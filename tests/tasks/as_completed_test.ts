import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { CancelledError, TimeoutError } from "../../futures/errors.ts";
import { Future } from "../../futures/future.ts";
import { asCompleted } from "../../tasks/as_completed.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Coroutine } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

function* failAfter(delay: number, message: string): Coroutine<number> {
  yield* sleep(delay);
  throw new Error(message);
}

// ---- Generator coroutines: for…of ----

Deno.test("asCompleted() in a generator gives futures in completion order", async () => {
  const loop = new VirtualTimeLoop();
  function* main(): Coroutine<[string, number][]> {
    const got: [string, number][] = [];
    for (
      const next of asCompleted([sleep(3, "c"), sleep(1, "a"), sleep(2, "b")])
    ) {
      got.push([yield* next, loop.time()]);
    }
    return got;
  }
  assertEquals(await loop.runUntilComplete(main()), [["a", 1], ["b", 2], [
    "c",
    3,
  ]]);
  loop.close();
});

Deno.test("asCompleted() in a generator delivers each error on its own future", async () => {
  const loop = new VirtualTimeLoop();
  function* main(): Coroutine<string[]> {
    const got: string[] = [];
    for (
      const next of asCompleted([
        sleep(2, 2),
        failAfter(1, "bad"),
        sleep(3, 3),
      ])
    ) {
      try {
        got.push(String(yield* next));
      } catch (e) {
        got.push(`error ${(e as Error).message}`);
      }
    }
    return got;
  }
  assertEquals(await loop.runUntilComplete(main()), ["error bad", "2", "3"]);
  loop.close();
});

Deno.test("asCompleted() in a generator: after the timeout each remaining future fails", async () => {
  const loop = new VirtualTimeLoop();
  const slow1 = sleep(60, "slow1", { loop });
  const slow2 = sleep(70, "slow2", { loop });
  function* main(): Coroutine<string[]> {
    const got: string[] = [];
    for (
      const next of asCompleted([slow1, sleep(1, "fast"), slow2], {
        timeout: 10,
      })
    ) {
      try {
        got.push(yield* next);
      } catch (e) {
        got.push(`${(e as Error).name} at ${loop.time()}`);
      }
    }
    return got;
  }
  assertEquals(await loop.runUntilComplete(main()), [
    "fast",
    "TimeoutError at 10",
    "TimeoutError at 10",
  ]);
  assertFalse(slow1.done() || slow2.done(), "nothing is cancelled");
  slow1.cancel();
  slow2.cancel();
  loop.close();
});

Deno.test("asCompleted() hands out all futures at once if asked, resolving in order", async () => {
  const loop = new VirtualTimeLoop();
  const futures = [...asCompleted([
    sleep(2, "b", { loop }),
    sleep(1, "a", { loop }),
  ])];
  assertEquals(futures.length, 2);
  assertEquals(await loop.runUntilComplete(futures[0]), "a");
  assertEquals(loop.time(), 1);
  assertEquals(await loop.runUntilComplete(futures[1]), "b");
  loop.close();
});

Deno.test("asCompleted() gives a cancelled input as a CancelledError", async () => {
  const loop = new VirtualTimeLoop();
  const victim = sleep(5, "never", { loop });
  loop.callLater(1, () => victim.cancel("gone"));
  const [first] = asCompleted([victim, sleep(2, "ok", { loop })]);
  const err = await loop.runUntilComplete(first).catch((e) => e);
  assertInstanceOf(err, CancelledError);
  assertEquals((err as Error).message, "gone");
  loop.close();
});

// ---- Async functions: for await…of ----

Deno.test("asCompleted() in an async function gives results in completion order", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const got: string[] = [];
    for await (
      const value of asCompleted([sleep(3, "c"), sleep(1, "a"), sleep(2, "b")])
    ) {
      got.push(value);
    }
    return got;
  });
  assertEquals(await loop.runUntilComplete(main), ["a", "b", "c"]);
  loop.close();
});

Deno.test("asCompleted() in an async function throws at the timeout", async () => {
  const loop = new VirtualTimeLoop();
  const slow = sleep(60, "slow", { loop });
  const main = loop.createTask(async () => {
    const got: string[] = [];
    try {
      for await (
        const value of asCompleted([sleep(1, "fast"), slow], { timeout: 5 })
      ) {
        got.push(value);
      }
    } catch (e) {
      got.push(`${(e as Error).name} at ${loop.time()}`);
    }
    return got;
  });
  assertEquals(await loop.runUntilComplete(main), [
    "fast",
    "TimeoutError at 5",
  ]);
  assertFalse(slow.done());
  slow.cancel();
  loop.close();
});

Deno.test("asCompleted() in an async function throws the first error", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const got: number[] = [];
    for await (const v of asCompleted([sleep(1, 1), failAfter(2, "bad")])) {
      got.push(v);
    }
    return got;
  });
  await assertRejects(() => loop.runUntilComplete(main), Error, "bad");
  loop.close();
});

Deno.test("asCompleted(): cancelling an async-function task stops its wait", async () => {
  const loop = new VirtualTimeLoop();
  const slow = sleep(60, "slow", { loop });
  const main = loop.createTask(async () => {
    for await (const _ of asCompleted([slow])) {
      // never reached
    }
  });
  loop.callLater(1, () => main.cancel());
  await assertRejects(() => loop.runUntilComplete(main), CancelledError);
  assert(main.cancelled());
  assertFalse(slow.done(), "the awaitable itself is not cancelled");
  slow.cancel();
  loop.close();
});

// ---- Shared behaviour ----

Deno.test("asCompleted() of nothing iterates zero times both ways", async () => {
  const loop = new VirtualTimeLoop();
  assertEquals([...asCompleted([])].length, 0);
  const main = loop.createTask(async () => {
    let n = 0;
    for await (const _ of asCompleted([])) n++;
    return n;
  });
  assertEquals(await loop.runUntilComplete(main), 0);
  loop.close();
});

Deno.test("asCompleted() takes finished inputs first and counts duplicates once", async () => {
  const loop = new VirtualTimeLoop();
  const done = new Future<string>({ loop });
  done.setResult("done");
  const later = sleep(1, "later", { loop });
  const futures = [...asCompleted([later, done, done])];
  assertEquals(futures.length, 2);
  assertEquals(await loop.runUntilComplete(futures[0]), "done");
  assertEquals(await loop.runUntilComplete(futures[1]), "later");
  loop.close();
});

Deno.test("asCompleted(): both kinds of iteration share one queue", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const it = asCompleted([sleep(1, "a"), sleep(2, "b"), sleep(3, "c")]);
    const [first] = it; // takes one future, then stops
    const got = [await first];
    for await (const v of it) got.push(v);
    return got;
  });
  assertEquals(await loop.runUntilComplete(main), ["a", "b", "c"]);
  loop.close();
});

Deno.test("asCompleted(): a future cancelled by its taker gives its result to the next", async () => {
  const loop = new VirtualTimeLoop();
  const it = asCompleted([sleep(2, "a", { loop }), sleep(3, "b", { loop })]);
  const iterator = it[Symbol.iterator]();
  const first = iterator.next().value!;
  loop.callLater(1, () => first.cancel());
  await assertRejects(() => loop.runUntilComplete(first), CancelledError);
  const rest = [...iterator];
  assertEquals(rest.length, 2, "the cancelled slot is given back");
  assertEquals(await loop.runUntilComplete(rest[0]), "a");
  assertEquals(await loop.runUntilComplete(rest[1]), "b");
  loop.close();
});

Deno.test("asCompleted(): leaving a loop early keeps the futures handed out", async () => {
  const loop = new VirtualTimeLoop();
  const it = asCompleted([sleep(2, "b", { loop }), sleep(1, "a", { loop })]);
  const [first] = it; // destructuring ends the iteration at once
  for (const next of it) {
    assertEquals(await loop.runUntilComplete(first), "a");
    assertEquals(await loop.runUntilComplete(next), "b");
    break;
  }
  assertEquals([...it].length, 0);
  loop.close();
});

Deno.test("asCompleted(): breaking out of for await leaves the rest for a later loop", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const got: string[] = [];
    const it = asCompleted([sleep(1, "a"), sleep(2, "b"), sleep(3, "c")]);
    for await (const v of it) {
      got.push(v);
      break;
    }
    got.push("|");
    for await (const v of it) got.push(v);
    return got;
  });
  assertEquals(await loop.runUntilComplete(main), ["a", "|", "b", "c"]);
  loop.close();
});

Deno.test("asCompleted() rejects a single future, a coroutine and a bad timeout", () => {
  const loop = new VirtualTimeLoop();
  const fut = sleep(1, "x", { loop });
  assertThrows(
    () => asCompleted(fut as unknown as Future<string>[]),
    TypeError,
    "single future",
  );
  assertThrows(
    () => asCompleted(failAfter(1, "x") as unknown as Future<number>[]),
    TypeError,
  );
  assertThrows(
    () => asCompleted([fut], { timeout: NaN }),
    TypeError,
    "timeout",
  );
  loop.close();
});

Deno.test("asCompleted() timeout error names the timeout", async () => {
  const loop = new VirtualTimeLoop();
  const slow = sleep(9, "slow", { loop });
  const [next] = asCompleted([slow], { timeout: 2 });
  const err = await loop.runUntilComplete(next).catch((e) => e);
  assertInstanceOf(err, TimeoutError);
  assert((err as Error).message.includes("timeout=2"));
  slow.cancel();
  loop.close();
});

Deno.test("asCompleted() refuses options that are not an object, so that a timeout given positionally is not silently ignored", () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  for (const options of [5, null, loop]) {
    assertThrows(
      () => asCompleted([fut], options as never),
      TypeError,
      "options must be an object like { timeout }",
    );
  }
  loop.close();
});

// ---- Cases from CPython's test_tasks.py ----

// Mirrors CPython's BaseTaskTests.test_as_completed_resume_iterator.
Deno.test("asCompleted(): the same iterator, left after two results, gives the other two in a second loop, both ways", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    const byFutures = asCompleted([0, 1, 2, 3].map((i) => sleep(i, i)));
    const got: number[] = [];
    for (const f of byFutures) {
      got.push(await f);
      if (got.length === 2) break;
    }
    for (const f of byFutures) got.push(await f);
    const byValues = asCompleted([0, 1, 2, 3].map((i) => sleep(i, i)));
    for await (const v of byValues) {
      got.push(v);
      if (got.length === 6) break;
    }
    for await (const v of byValues) got.push(v);
    return got;
  });
  assertEquals(await loop.runUntilComplete(main), [0, 1, 2, 3, 0, 1, 2, 3]);
  loop.close();
});
