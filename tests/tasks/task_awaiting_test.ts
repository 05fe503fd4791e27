// An async-function task remembers the futures it awaits (one slot, or a
// set while it awaits several at once) so that cancel() reaches them.

import { assert, assertEquals, assertRejects } from "@std/assert";
import { CancelledError } from "../../futures/errors.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

Deno.test("cancelling an async task that awaits several futures at once cancels each", async () => {
  const loop = new VirtualTimeLoop();
  const a = loop.createFuture<number>();
  const b = loop.createFuture<number>();
  const c = loop.createFuture<number>();
  const task = loop.createTask(async () => await Promise.all([a, b, c]));
  await loop.advance(0);
  task.cancel();
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assertEquals([a.cancelled(), b.cancelled(), c.cancelled()], [
    true,
    true,
    true,
  ]);
  loop.close();
});

Deno.test("cancelling an async task after many awaits cancels only the future it awaits now", async () => {
  const loop = new VirtualTimeLoop();
  const done: ReturnType<typeof loop.createFuture<number>>[] = [];
  const last = loop.createFuture<number>();
  const task = loop.createTask(async () => {
    for (let i = 0; i < 20; i++) {
      const f = loop.createFuture<number>();
      done.push(f);
      loop.callSoon(() => f.setResult(i));
      await f;
    }
    await last;
  });
  await loop.advance(0);
  assert(!task.done());
  task.cancel();
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assert(last.cancelled());
  assert(done.every((f) => f.done() && !f.cancelled()));
  loop.close();
});
