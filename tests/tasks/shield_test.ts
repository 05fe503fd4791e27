import {
  assert,
  assertEquals,
  assertFalse,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { CancelledError } from "../../futures/errors.ts";
import { Future } from "../../futures/future.ts";
import { shield } from "../../tasks/shield.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Coroutine } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

Deno.test("shield() passes the result through", async () => {
  const loop = new VirtualTimeLoop();
  const fut = shield(sleep(1, "value", { loop }));
  assertEquals(await loop.runUntilComplete(fut), "value");
  loop.close();
});

Deno.test("shield() passes an error through", async () => {
  const loop = new VirtualTimeLoop();
  const main = loop.createTask(async () => {
    await shield((async () => {
      await sleep(1);
      throw new RangeError("inner");
    })());
  });
  await assertRejects(() => loop.runUntilComplete(main), RangeError, "inner");
  loop.close();
});

Deno.test("shield(): cancelling the shield leaves the inner future running", async () => {
  const loop = new VirtualTimeLoop();
  const inner = sleep(5, "finished", { loop });
  const outer = shield(inner);
  loop.callLater(1, () => outer.cancel());
  await assertRejects(() => loop.runUntilComplete(outer), CancelledError);
  assertEquals(loop.time(), 1);
  assertFalse(inner.done());
  assertEquals(await loop.runUntilComplete(inner), "finished");
  loop.close();
});

Deno.test("shield(): a cancelled generator task gets CancelledError while the work goes on", async () => {
  const loop = new VirtualTimeLoop();
  const work = loop.createTask(function* (): Coroutine<string> {
    return yield* sleep(5, "saved");
  });
  const waiter = loop.createTask(function* (): Coroutine<string> {
    return yield* shield(work);
  });
  loop.callLater(1, () => waiter.cancel());
  await assertRejects(() => loop.runUntilComplete(waiter), CancelledError);
  assert(waiter.cancelled());
  assertEquals(await loop.runUntilComplete(work), "saved");
  loop.close();
});

Deno.test("shield(): a cancelled async-function task gets CancelledError while the work goes on", async () => {
  const loop = new VirtualTimeLoop();
  const work = loop.createTask(async () => await sleep(5, "saved"));
  const waiter = loop.createTask(async () => await shield(work));
  loop.callLater(1, () => waiter.cancel());
  await assertRejects(() => loop.runUntilComplete(waiter), CancelledError);
  assertFalse(work.done());
  assertEquals(await loop.runUntilComplete(work), "saved");
  loop.close();
});

Deno.test("shield(): when the inner future is cancelled, so is the shield", async () => {
  const loop = new VirtualTimeLoop();
  const inner = sleep(5, "never", { loop });
  const outer = shield(inner);
  loop.callLater(1, () => inner.cancel());
  await assertRejects(() => loop.runUntilComplete(outer), CancelledError);
  assert(outer.cancelled());
  loop.close();
});

Deno.test("shield() returns a finished future as is", () => {
  const loop = new VirtualTimeLoop();
  const done = new Future<number>({ loop });
  done.setResult(1);
  assertStrictEquals(shield(done), done);
  loop.close();
});

Deno.test("shield() runs a coroutine in a task", async () => {
  const loop = new VirtualTimeLoop();
  let finished = false;
  function* work(): Coroutine<void> {
    yield* sleep(3);
    finished = true;
  }
  const outer = shield(work(), { loop });
  loop.callLater(1, () => outer.cancel());
  await assertRejects(() => loop.runUntilComplete(outer), CancelledError);
  assertFalse(finished);
  await loop.advance(5);
  assert(finished);
  loop.close();
});

Deno.test("shield(): an error of the inner future after the shield was cancelled changes nothing", async () => {
  const loop = new VirtualTimeLoop();
  const reported: unknown[] = [];
  loop.setExceptionHandler((_loop, ctx) => reported.push(ctx.exception));
  const inner = new Future<number>({ loop });
  const outer = shield(inner);
  outer.cancel();
  await loop.advance(0);
  inner.setException(new Error("late"));
  await loop.advance(1);
  assertEquals(reported, []);
  assert(outer.cancelled());
  loop.close();
});

Deno.test("shield() refuses options that are not an object like { loop } (a loop given bare included)", () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<number>();
  assertThrows(
    () => shield(fut, loop as never),
    TypeError,
    "Cannot shield: options must be an object like { loop }",
  );
  loop.close();
});
