// An async-function task remembers the futures it awaits (one slot, or a
// set while it awaits several at once) so that cancel() reaches them.

import { assert, assertEquals, assertRejects } from "@std/assert";
import { CancelledError } from "../../futures/errors.ts";
import { Future } from "../../futures/future.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { sleep } from "../../tasks/sleep.ts";

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

Deno.test("awaiting a Promise.all() of n pending futures costs the task O(n) checks, not a scan per future", async () => {
  // The set of awaited futures drops done ones lazily; pruning it at every
  // addition once it held 8 made a Promise.all() of 20,000 futures take
  // 20,000²/2 done() calls (about 0.3 s of CPU).
  let checks = 0;
  class Counted<T> extends Future<T> {
    override done(): boolean {
      checks++;
      return super.done();
    }
  }
  const loop = new VirtualTimeLoop();
  const n = 2000;
  const futures = Array.from(
    { length: n },
    () => new Counted<number>({ loop }),
  );
  const task = loop.createTask(async () => {
    const all = Promise.all(futures);
    // Some complete meanwhile, one per callback.
    futures.forEach((f, i) => loop.callSoon(() => f.setResult(i)));
    return (await all).length;
  });
  assertEquals(await loop.runUntilComplete(task), n);
  assert(checks < 20 * n, `${checks} done() calls for ${n} futures`);
  loop.close();
});

for (const next of ["several futures", "one future"] as const) {
  Deno.test(`after a Promise.all() of many futures, the task's next wait on ${next} lets the finished ones go`, async () => {
    // A finished batch left the set of awaited futures at twice its size
    // (it is pruned when it has doubled), so the task kept every result of
    // its largest Promise.all() alive, for good if it then awaited one
    // future at a time.
    let checked = 0;
    class Counted<T> extends Future<T> {
      override done(): boolean {
        checked++;
        return super.done();
      }
    }
    const loop = new VirtualTimeLoop();
    const n = 1000;
    const batch = Array.from(
      { length: n },
      () => new Counted<number>({ loop }),
    );
    const task = loop.createTask(async () => {
      const all = Promise.all(batch);
      batch.forEach((f, i) => loop.callSoon(() => f.setResult(i)));
      await all;
      checked = 0;
      if (next === "one future") await sleep(0.1, undefined, { loop });
      else {
        const [a, b] = [loop.createFuture(), loop.createFuture()];
        loop.callSoon(() => a.setResult(1));
        await Promise.race([a, b]);
      }
      return checked;
    });
    const pruned = await loop.runUntilComplete(task);
    assert(pruned >= n - 1, `${pruned} of ${n} finished futures looked at`);
    loop.close();
  });
}

Deno.test("cancelling a task reaches the future it awaits after its set of awaited futures was pruned empty", async () => {
  const loop = new VirtualTimeLoop();
  const x = loop.createFuture<number>(); // pending: keeps the one slot
  const rest = Array.from({ length: 7 }, () => loop.createFuture<number>());
  const [g, y] = [loop.createFuture<number>(), loop.createFuture<number>()];
  const task = loop.createTask(async () => {
    Promise.all([x, ...rest]).catch(() => {});
    rest.forEach((f, i) => loop.callSoon(() => f.setResult(i)));
    loop.callSoon(() => loop.callSoon(() => g.setResult(0)));
    await g;
    await y; // the set, all done, is pruned as y joins it
  });
  await loop.advance(0);
  task.cancel();
  await loop.advance(0);
  assert(y.cancelled(), "the future the task awaits was not cancelled");
  assert(task.cancelled());
  loop.close();
});

Deno.test("cancelling a task that awaits a Promise.all() of many futures cancels every pending one", async () => {
  const loop = new VirtualTimeLoop();
  const futures = Array.from(
    { length: 100 },
    () => loop.createFuture<number>(),
  );
  const task = loop.createTask(async () => await Promise.all(futures));
  await loop.advance(0);
  // Half complete; the set is pruned as it grows, never losing a pending one.
  futures.slice(0, 50).forEach((f, i) => f.setResult(i));
  await loop.advance(0);
  task.cancel();
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assert(futures.slice(50).every((f) => f.cancelled()));
  loop.close();
});

// An async function runs on in microtasks after its loop closed (a
// foreign promise it awaited settles later, as one that another simulated
// host resolves after this host crashed): a task cancelled while it
// awaited such a promise, which then awaits a pending future, gets the
// CancelledError at once, since no loop turn will come, and not the
// closed loop's refusal to schedule its resumption.
Deno.test("a cancelled async task that awaits a pending future after its loop closed gets the CancelledError", async () => {
  const loop = new VirtualTimeLoop();
  const future = loop.createFuture<number>();
  const { promise, resolve } = Promise.withResolvers<void>();
  const seen: unknown[] = [];
  const task = loop.createTask(async () => {
    await promise;
    try {
      await future;
    } catch (e) {
      seen.push(e);
    }
  });
  await loop.advance(0);
  task.cancel();
  loop.close();
  resolve();
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(seen.length, 1);
  assert(
    seen[0] instanceof CancelledError,
    `the await rejected with ${seen[0]}`,
  );
  assert(future.cancelled());
});

Deno.test("the completion that ends a Promise.all() or Promise.race() in a task resumes it before the next callback, as one future's would", async () => {
  for (const kind of ["all", "race", "all rejected"] as const) {
    const loop = new VirtualTimeLoop();
    const fs = Array.from({ length: 3 }, () => loop.createFuture<number>());
    const seen: string[] = [];
    const task = loop.createTask(async () => {
      try {
        if (kind === "race") await Promise.race(fs);
        else await Promise.all(fs);
      } catch {
        // all rejected: the first error ends it.
      }
      seen.push("task");
    });
    await loop.advance(0);
    // Completing the one that ends the wait schedules its then() callbacks
    // before the callback below.
    const last = kind === "race" ? fs[1] : fs[2];
    if (kind !== "race") {
      fs[0].setResult(0);
      fs[1].setResult(1);
      await loop.advance(0);
    }
    if (kind === "all rejected") last.setException(new Error("no"));
    else last.setResult(2);
    loop.callSoon(() => seen.push("callback"));
    await loop.runUntilComplete(task);
    assertEquals(seen, ["task", "callback"], kind);
    loop.close();
  }
});

Deno.test("after a Promise.race() whose loser is still pending, a task's next await of one future is waited on as a lone await: its step is not cut by the next callback", async () => {
  const chain = async (depth: number): Promise<void> => {
    if (depth > 0) await chain(depth - 1);
  };
  const loop = new VirtualTimeLoop();
  const [a, b, c] = [0, 1, 2].map(() => loop.createFuture<number>());
  const seen: string[] = [];
  const task = loop.createTask(async () => {
    // b wins; a, the first the race registered on, stays pending.
    loop.callSoon(() => b.setResult(1));
    await Promise.race([a, b]);
    loop.callSoon(() => {
      c.setResult(2);
      loop.callSoon(() => seen.push("callback"));
    });
    await c;
    await chain(40);
    seen.push("chain");
  });
  await loop.runUntilComplete(task);
  assertEquals(seen, ["chain", "callback"]);
  a.cancel();
  loop.close();
});

Deno.test("cancelling an async task inside a Promise.all() of futures, before or after some completed, cancels it", async () => {
  for (const completed of [0, 1, 2]) {
    const loop = new VirtualTimeLoop();
    const fs = Array.from({ length: 3 }, () => loop.createFuture<number>());
    const task = loop.createTask(async () => await Promise.all(fs));
    await loop.advance(0);
    for (let k = 0; k < completed; k++) {
      fs[k].setResult(k);
      await loop.advance(0);
    }
    task.cancel();
    await assertRejects(() => loop.runUntilComplete(task), CancelledError);
    assertEquals(
      fs.map((f) => f.cancelled()),
      fs.map((_, k) => k >= completed),
      `${completed} completed`,
    );
    loop.close();
  }
});

Deno.test("cancel() of a task whose await is done but not yet resumed is delivered, though a race's pending loser is cancelled too", async () => {
  // The loser of an earlier Promise.race() stays pending, and cancel()
  // still reaches it; the task's own wait (g) is already done, so, as in
  // asyncio's Task.cancel() with its waiter done, the CancelledError must
  // come at the resumption instead of being taken as delivered.
  const loop = new VirtualTimeLoop();
  const [a, b, g] = [0, 1, 2].map(() => loop.createFuture<number>());
  const task = loop.createTask(async () => {
    loop.callSoon(() => a.setResult(1));
    await Promise.race([a, b]);
    loop.callSoon(() => {
      g.setResult(2);
      task.cancel();
    });
    await g;
    return "finished";
  });
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assert(task.cancelled());
  assert(b.cancelled());
  loop.close();
});

Deno.test("cancel() of a task inside Promise.all() of futures, one already done, is delivered once", async () => {
  const loop = new VirtualTimeLoop();
  const [a, b] = [0, 1].map(() => loop.createFuture<number>());
  let caught = 0;
  const task = loop.createTask(async () => {
    loop.callSoon(() => {
      a.setResult(1);
      task.cancel();
    });
    try {
      await Promise.all([a, b]);
    } catch (e) {
      if (e instanceof CancelledError) caught++;
    }
    await sleep(0);
    return "went on";
  });
  assertEquals(await loop.runUntilComplete(task), "went on");
  assertEquals(caught, 1);
  loop.close();
});

Deno.test("cancel() of a task whose Promise.race() or Promise.all() was decided by a completion not yet handed over is delivered", async () => {
  // The deciding completion is done but its then() callback has not run:
  // cancel() still finds the other futures pending and cancels them, but
  // the combinator has its outcome already and drops their errors. As in
  // asyncio's Task.cancel() with its waiter done, the CancelledError must
  // come at the resumption.
  for (const kind of ["race", "all rejected"] as const) {
    const loop = new VirtualTimeLoop();
    const [a, b] = [0, 1].map(() => loop.createFuture<number>());
    const task = loop.createTask(async () => {
      loop.callSoon(() => {
        if (kind === "race") a.setResult(1);
        else a.setException(new Error("no"));
        task.cancel();
      });
      try {
        if (kind === "race") await Promise.race([a, b]);
        else await Promise.all([a, b]);
      } catch (e) {
        if (!(e instanceof CancelledError)) return `caught ${e}`;
        throw e;
      }
      return "finished";
    });
    await assertRejects(() => loop.runUntilComplete(task), CancelledError);
    assert(b.cancelled(), kind);
    loop.close();
  }
});

Deno.test("a Promise.race() loser completing before the task's own wait resumes does not take the cancellation meant for it", async () => {
  // The loser's then() callback runs first; it belongs to a wait that is
  // over, so the cancellation must go to the task's await of g.
  for (const loserFirst of [true, false]) {
    const loop = new VirtualTimeLoop();
    const [a, b, g] = [0, 1, 2].map(() => loop.createFuture<number>());
    const [winner, loser] = loserFirst ? [b, a] : [a, b];
    const task = loop.createTask(async () => {
      loop.callSoon(() => winner.setResult(1));
      await Promise.race([a, b]);
      loop.callSoon(() => {
        loser.setResult(0);
        g.setResult(2);
        task.cancel();
      });
      await g;
      return "finished";
    });
    await assertRejects(
      () => loop.runUntilComplete(task),
      CancelledError,
      undefined,
      loserFirst ? "loser registered first" : "loser registered second",
    );
    loop.close();
  }
});

Deno.test("a task cancelled while it runs, then again before the future it went on to await resumes it, gets one CancelledError", async () => {
  // As asyncio's __step: the first cancel() cancels the future the task
  // awaits next; the second finds it done and is taken by the resumption.
  const loop = new VirtualTimeLoop();
  const f = loop.createFuture<number>();
  let caught = 0;
  const task = loop.createTask(async () => {
    await sleep(0);
    task.cancel();
    loop.callSoon(() => task.cancel());
    try {
      await f;
    } catch (e) {
      if (e instanceof CancelledError) caught++;
    }
    try {
      await sleep(0);
    } catch (e) {
      if (e instanceof CancelledError) caught++;
    }
    return "went on";
  });
  assertEquals(await loop.runUntilComplete(task), "went on");
  assertEquals(caught, 1);
  assertEquals(task.cancelling(), 2);
  loop.close();
});

Deno.test("a task awaiting nested combinators resumes within a few callbacks of a busy loop, not once the loop is idle", async () => {
  // Promise.all([Promise.race([a, b]), c]) is one joined wait of a, b and
  // c: c took its first result, so b's completion, which ends the race and
  // so the all, is not taken for a resumption. The combinators' code needs
  // a microtask turn per step; the loop gave one at the end of b's
  // iteration only, and a chain of callbacks then starved the task until
  // the loop went idle.
  const loop = new VirtualTimeLoop();
  const [a, b, c] = [0, 1, 2].map(() => loop.createFuture<number>());
  const seen: string[] = [];
  const task = loop.createTask(async () => {
    await Promise.all([Promise.race([a, b]), c]);
    seen.push("task");
  });
  await loop.advance(0);
  c.setResult(3);
  await loop.advance(0);
  b.setResult(2);
  const tick = (n: number) => {
    seen.push(`cb${n}`);
    if (n < 100) loop.callSoon(tick, n + 1);
  };
  loop.callSoon(tick, 0);
  await loop.runUntilComplete(task);
  const at = seen.indexOf("task");
  assert(at >= 0 && at < 10, `resumed at ${at}: ${seen.slice(0, 12)}`);
  a.cancel();
  await loop.advance(1);
  loop.close();
});

Deno.test("async functions side by side in one task (Promise.all of them) each resume before the next callback when their future completes", async () => {
  // Their awaits join one wait, as a Promise.all() of futures does; the
  // second result is not one that ends a single combinator, yet it resumes
  // the function awaiting it. It resumed at the end of the iteration,
  // after the callback behind it.
  const loop = new VirtualTimeLoop();
  const seen: string[] = [];
  const futs = [0, 1, 2].map(() =>
    [0, 1].map(() => loop.createFuture<number>())
  );
  const side = async (w: number) => {
    for (let i = 0; i < 2; i++) {
      await futs[w][i];
      // A done future's await takes microtask turns too.
      await futs[w][0];
      seen.push(`w${w}.${i}`);
    }
  };
  const task = loop.createTask(async () => {
    await Promise.all([side(0), side(1), side(2)]);
  });
  await loop.advance(0);
  const order = [1, 2, 0, 0, 2, 1];
  let step = 0;
  const tick = () => {
    const w = order[step];
    seen.push("cb");
    futs[w][step < 3 ? 0 : 1].setResult(step);
    if (++step < order.length) loop.callSoon(tick);
  };
  loop.callSoon(tick);
  await loop.runUntilComplete(task);
  assertEquals(
    seen.join(" "),
    "cb w1.0 cb w2.0 cb w0.0 cb w0.1 cb w2.1 cb w1.1",
  );
  loop.close();
});

Deno.test("a task that left a Promise.all() of futures unawaited beside an await resumes from that await before the next callback", async () => {
  // c, awaited after the unawaited Promise.all() registered on a and b,
  // joins their wait; a took its first result.
  const loop = new VirtualTimeLoop();
  const [a, b, c] = [0, 1, 2].map(() => loop.createFuture<number>());
  const seen: string[] = [];
  const task = loop.createTask(async () => {
    const p = Promise.all([a, b]);
    await c;
    seen.push("task");
    await p;
  });
  await loop.advance(0);
  a.setResult(0);
  await loop.advance(0);
  c.setResult(1);
  loop.callSoon(() => seen.push("callback"));
  await loop.advance(0);
  assertEquals(seen, ["task", "callback"]);
  b.setResult(2);
  await loop.runUntilComplete(task);
  loop.close();
});

// Every completion of a future an async task awaits, one of several it
// awaits together included, gets the loop's full wait for resumed code (16
// microtask turns, then a host hop): then() cannot tell an await inside
// async functions run side by side from a combinator's registration, and
// code resumed through either must run its step before the next callback.

const chain = async (n: number): Promise<number> =>
  n === 0 ? 0 : 1 + await chain(n - 1);

Deno.test("async functions side by side in one task run each step, deep async calls included, before the next callback", async () => {
  const loop = new VirtualTimeLoop();
  const seen: string[] = [];
  const futs = [0, 1, 2].map(() => loop.createFuture<number>());
  const worker = async (w: number) => {
    await futs[w];
    seen.push(`w${w}<`);
    await chain(10);
    seen.push(`w${w}>`);
  };
  const task = loop.createTask(async () => {
    await Promise.all([worker(0), worker(1), worker(2)]);
    seen.push("task");
  });
  await loop.advance(0);
  let step = 0;
  const order = [1, 2, 0];
  const tick = () => {
    seen.push("cb");
    futs[order[step]].setResult(step);
    if (++step < order.length) loop.callSoon(tick);
    else loop.callSoon(() => seen.push("cb"));
  };
  loop.callSoon(tick);
  await loop.runUntilComplete(task);
  await loop.advance(0);
  assertEquals(seen.join(" "), "cb w1< w1> cb w2< w2> cb w0< w0> task cb");
  loop.close();
});

Deno.test("nested allSettled() whose inner wait ends with a completion of the outer one resumes the task before the next callback", async () => {
  const loop = new VirtualTimeLoop();
  const seen: string[] = [];
  const [a, b, c, d] = [0, 1, 2, 3].map(() => loop.createFuture<number>());
  const wrap = async (p: Promise<unknown>) => await p;
  const task = loop.createTask(async () => {
    await Promise.allSettled([
      a,
      wrap(wrap(wrap(Promise.allSettled([Promise.all([b, c]), d])))),
    ]);
    seen.push("task");
  });
  await loop.advance(0);
  b.setException(new Error("b"));
  await loop.advance(0);
  loop.callSoon(() => {
    seen.push("cb");
    a.setResult(0);
    d.setResult(1);
    loop.callSoon(() => seen.push("cb2"));
  });
  await loop.runUntilComplete(task);
  assertEquals(seen.join(" "), "cb task cb2");
  c.setResult(2);
  await loop.advance(0);
  loop.close();
});

Deno.test("a task cancelled inside Promise.allSettled() of futures goes on, as the README says; inside gather() with returnExceptions it gets the CancelledError", async () => {
  const loop = new VirtualTimeLoop();
  const settled = loop.createTask(async () => {
    const r = await Promise.allSettled([sleep(5), sleep(6)]);
    return r.map((x) => x.status);
  });
  loop.callLater(1, () => settled.cancel());
  assertEquals(await loop.runUntilComplete(settled), ["rejected", "rejected"]);
  const { gather } = await import("../../tasks/gather.ts");
  const gathered = loop.createTask(async () =>
    await gather([sleep(5), sleep(6)], { returnExceptions: true })
  );
  loop.callLater(1, () => gathered.cancel());
  await assertRejects(() => loop.runUntilComplete(gathered), CancelledError);
  loop.close();
});
