import {
  assert,
  assertEquals,
  assertFalse,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { CancelledError, InvalidStateError } from "../../futures/errors.ts";
import type { Future } from "../../futures/future.ts";
import { wrapFuture } from "../../futures/wrap_future.ts";
import type { Coroutine } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

function deferred<T>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

Deno.test("wrapFuture() follows a promise that fulfils", async () => {
  const loop = new VirtualTimeLoop();
  const fut = wrapFuture(Promise.resolve(41), { loop });
  assertFalse(fut.done());
  assertStrictEquals(fut.getLoop(), loop);
  assertEquals(await loop.runUntilComplete(fut), 41);
  assertEquals(fut.result(), 41);
  loop.close();
});

Deno.test("wrapFuture() follows a promise that rejects", async () => {
  const loop = new VirtualTimeLoop();
  const err = new Error("rejected");
  const fut = wrapFuture(Promise.reject(err), { loop });
  const e = await assertRejects(() => loop.runUntilComplete(fut));
  assertStrictEquals(e, err);
  assertStrictEquals(fut.exception(), err);
  loop.close();
});

Deno.test("wrapFuture() turns a CancelledError rejection into cancellation", async () => {
  const loop = new VirtualTimeLoop();
  const fut = wrapFuture(Promise.reject(new CancelledError("upstream")), {
    loop,
  });
  await assertRejects(
    () => loop.runUntilComplete(fut),
    CancelledError,
    "upstream",
  );
  assert(fut.cancelled());
  loop.close();
});

Deno.test("wrapFuture() returns a Future unchanged", () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  assertStrictEquals(wrapFuture(fut), fut);
  assertStrictEquals(wrapFuture(fut, { loop }), fut);
  loop.close();
});

Deno.test("wrapFuture() accepts any PromiseLike", async () => {
  const loop = new VirtualTimeLoop();
  const thenable: PromiseLike<string> = {
    then(onfulfilled) {
      return Promise.resolve(onfulfilled?.("from thenable")) as never;
    },
  };
  const fut = wrapFuture(thenable, { loop });
  assertEquals(await loop.runUntilComplete(fut), "from thenable");
  loop.close();
});

Deno.test("wrapFuture() follows a thenable as a promise would: a throwing then() fails the future, a thenable result is unwrapped", async () => {
  const loop = new VirtualTimeLoop();
  const throwing: PromiseLike<number> = {
    then() {
      throw new RangeError("bad then");
    },
  };
  const failed = wrapFuture(throwing, { loop });
  await assertRejects(
    () => loop.runUntilComplete(failed),
    RangeError,
    "bad then",
  );
  const nested: PromiseLike<number> = {
    then(onfulfilled) {
      onfulfilled?.(Promise.resolve(7) as unknown as number);
      return Promise.resolve() as never;
    },
  };
  assertEquals(await loop.runUntilComplete(wrapFuture(nested, { loop })), 7);
  loop.close();
});

Deno.test("wrapFuture() refuses what is not a promise, a thenable or a Future", () => {
  const loop = new VirtualTimeLoop();
  for (const bad of [42, null, undefined, "p", {}, { then: 1 }]) {
    assertThrows(
      () => wrapFuture(bad as unknown as PromiseLike<number>, { loop }),
      TypeError,
      "Cannot wrap a future: expected a promise, a thenable or a Future, received",
    );
  }
  loop.close();
});

Deno.test("wrapFuture() refuses a loop given bare instead of as { loop }", () => {
  const loop = new VirtualTimeLoop();
  assertThrows(
    () => wrapFuture(Promise.resolve(1), loop as never),
    TypeError,
    "pass the loop as { loop }",
  );
  loop.close();
});

Deno.test("wrapFuture() binds to the running loop by default", async () => {
  const loop = new VirtualTimeLoop();
  function* main(): Coroutine<[Future<number>, number]> {
    const fut = wrapFuture(Promise.resolve(5));
    return [fut, yield* fut];
  }
  const [fut, value] = await loop.runUntilComplete(main());
  assertStrictEquals(fut.getLoop(), loop);
  assertEquals(value, 5);
  loop.close();
});

Deno.test("wrapFuture() without a loop throws InvalidStateError when none is running", () => {
  assertThrows(() => wrapFuture(Promise.resolve(1)), InvalidStateError);
});

Deno.test("wrapFuture() wakes a loop that is waiting for events", async () => {
  const loop = new VirtualTimeLoop();
  const d = deferred<string>();
  const fut = wrapFuture(d.promise, { loop });
  // Settled by a host timer while the loop waits with nothing to do.
  const id = setTimeout(() => d.resolve("woken"), 0);
  try {
    assertEquals(await loop.runUntilComplete(fut), "woken");
  } finally {
    clearTimeout(id);
  }
  loop.close();
});

Deno.test("wrapFuture() cancelling the future ignores the promise's outcome", async () => {
  const loop = new VirtualTimeLoop();
  const ok = deferred<number>();
  const bad = deferred<number>();
  const f1 = wrapFuture(ok.promise, { loop });
  const f2 = wrapFuture(bad.promise, { loop });
  assert(f1.cancel());
  assert(f2.cancel());
  ok.resolve(1);
  bad.reject(new Error("late"));
  await ok.promise;
  await bad.promise.catch(() => {});
  await Promise.resolve();
  assert(f1.cancelled());
  assert(f2.cancelled());
  loop.close();
});

Deno.test("wrapFuture() ignores a promise that settles after the loop closed", async () => {
  const loop = new VirtualTimeLoop();
  const ok = deferred<number>();
  const bad = deferred<number>();
  const f1 = wrapFuture(ok.promise, { loop });
  const f2 = wrapFuture(bad.promise, { loop });
  loop.close();
  ok.resolve(1);
  bad.reject(new Error("late"));
  await ok.promise;
  await bad.promise.catch(() => {});
  await Promise.resolve();
  assertFalse(f1.done());
  assertFalse(f2.done());
});

Deno.test("wrapFuture() lets a generator coroutine wait for a promise", async () => {
  const loop = new VirtualTimeLoop();
  function* main(): Coroutine<number> {
    const a = yield* wrapFuture(Promise.resolve(40));
    const b = yield* wrapFuture(new Promise<number>((r) => r(2)));
    return a + b;
  }
  assertEquals(await loop.runUntilComplete(main()), 42);
  loop.close();
});
