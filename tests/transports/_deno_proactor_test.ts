import { assert, assertEquals } from "@std/assert";
import { DenoProactor, watchFuture } from "../../transports/_deno_proactor.ts";
import {
  connRid,
  INTERNALS_ENABLED,
} from "../../transports/_deno_internals.ts";
import { CancelledError } from "../../futures/errors.ts";
import type { Completion } from "../../transports/_proactor.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { VirtualTimeDenoLoop } from "../_helpers.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import type { Handle } from "../../loop/handle.ts";
import { collect } from "../_gc.ts";
import fc from "fast-check";
import { settings } from "../_property.ts";
import {
  noteAwaitParked,
  requestMicrotaskCheckpoint,
} from "../../futures/_runtime.ts";

/** A loop that counts the callbacks scheduled with `callSoon()`. */
class CountingLoop extends VirtualTimeLoop {
  scheduled = 0;
  override callSoon<A extends unknown[]>(
    cb: (...args: A) => unknown,
    ...args: A
  ): Handle {
    this.scheduled++;
    return super.callSoon(cb, ...args);
  }
}

/** A promise with its settle functions. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A completion that logs what reaches it. */
function logging<T>(log: string[], name: string): Completion<T> {
  return {
    done: (v) => log.push(`${name} done ${String(v)}`),
    failed: (e) => log.push(`${name} failed ${(e as Error).message}`),
    orphaned: (v) => log.push(`${name} orphaned ${String(v)}`),
  };
}

/** Lets settled promises run their reactions. */
async function microtasks(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

Deno.test("DenoProactor hands completions to the loop, never inline", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new DenoProactor(loop);
  const log: string[] = [];
  const op = deferred<number>();
  proactor.watch(op.promise, proactor.bind(logging(log, "a")));
  assertEquals(proactor.pending, 1);
  op.resolve(7);
  await microtasks();
  assertEquals(log, []);
  assertEquals(proactor.pending, 0);
  await loop.advance(0);
  assertEquals(log, ["a done 7"]);
  loop.close();
});

Deno.test("DenoProactor runs completions that arrive together in order, in one callback", async () => {
  const loop = new CountingLoop();
  const proactor = new DenoProactor(loop);
  const log: string[] = [];
  const ops = [deferred<number>(), deferred<number>(), deferred<number>()];
  ops.forEach((op, i) =>
    proactor.watch(op.promise, proactor.bind(logging(log, `op${i}`)))
  );
  ops[2].resolve(2);
  ops[0].reject(new Error("zero"));
  ops[1].resolve(1);
  await microtasks();
  assertEquals(loop.scheduled, 1);
  await loop.advance(0);
  assertEquals(log, ["op2 done 2", "op0 failed zero", "op1 done 1"]);
  loop.close();
});

Deno.test("DenoProactor lets async code a completion resumed run before the next completion", async () => {
  const loop = new CountingLoop();
  const proactor = new DenoProactor(loop);
  const log: string[] = [];
  const resuming = (name: string): Completion<number> => ({
    done: (v) => {
      log.push(`${name} done ${v}`);
      // As an HTTP server answering pipelined requests from an async
      // handler's promise: async code goes on in microtasks.
      requestMicrotaskCheckpoint();
      Promise.resolve().then(() => log.push(`${name} resumed`)).then(() => {
        log.push(`${name} waits`);
        noteAwaitParked();
      });
    },
    failed: () => {},
  });
  const ops = [deferred<number>(), deferred<number>(), deferred<number>()];
  proactor.watch(ops[0].promise, proactor.bind(resuming("a")));
  proactor.watch(ops[1].promise, proactor.bind(logging(log, "b")));
  proactor.watch(ops[2].promise, proactor.bind(resuming("c")));
  ops.forEach((op, i) => op.resolve(i));
  await microtasks();
  assertEquals(loop.scheduled, 1);
  await loop.advance(0);
  assertEquals(log, [
    "a done 0",
    "a resumed",
    "a waits",
    "b done 1",
    "c done 2",
    "c resumed",
    "c waits",
  ]);
  loop.close();
});

Deno.test("DenoProactor.closeAll() gives completions waiting behind a resumption to orphaned(), once", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new DenoProactor(loop);
  const log: string[] = [];
  const a = deferred<number>();
  const b = deferred<number>();
  proactor.watch(
    a.promise,
    proactor.bind<number>({
      done: (v) => {
        log.push(`a done ${v}`);
        requestMicrotaskCheckpoint();
        Promise.resolve().then(() => {
          proactor.closeAll();
          noteAwaitParked();
        });
      },
      failed: () => {},
    }),
  );
  proactor.watch(b.promise, proactor.bind(logging(log, "b")));
  a.resolve(1);
  b.resolve(2);
  await microtasks();
  await loop.advance(0);
  assertEquals(log, ["a done 1", "b orphaned 2"]);
  loop.close();
});

Deno.test("DenoProactor's queue keeps no room for completions run while others kept arriving behind a resumption", async () => {
  // Two connections answering in turn, each completion resuming async
  // code and starting the next operation: every run ends early with the
  // other's completion left, and the next settlement arrives behind it,
  // so the queue is never empty. The slots of the completions already
  // run must be reused, not added to.
  const loop = new VirtualTimeLoop();
  const proactor = new DenoProactor(loop);
  const rounds = 300_000;
  let done = 0;
  const chain = () => {
    const port = proactor.bind<number>({
      done: () => {
        requestMicrotaskCheckpoint();
        Promise.resolve().then(noteAwaitParked);
        if (++done === rounds) loop.stop();
        else proactor.watch(Promise.resolve(done), port);
      },
      failed: () => {},
    });
    proactor.watch(Promise.resolve(0), port);
  };
  await collect();
  const before = Deno.memoryUsage().heapUsed;
  chain();
  chain();
  await loop.runForever();
  await collect();
  const grown = Deno.memoryUsage().heapUsed - before;
  assertEquals(done, rounds);
  assert(
    grown < 1 << 20,
    `${grown >> 10} KiB kept after ${rounds} completions`,
  );
  assert(proactor.pending <= 1); // (the proactor is still alive here)
  loop.close();
});

Deno.test("DenoProactor property: each settlement reaches its completion once, in the order they settled, however runs end early", async () => {
  // Completions that resume async code (which waits again after a few
  // microtask turns, or never tells), settlements that arrive from that
  // code and between the loop's turns, and closeAll() at some point.
  const spec = fc.record({
    resumes: fc.boolean(),
    parkAfter: fc.oneof(fc.nat(3), fc.constant(-1)),
    spawn: fc.nat(2),
    fails: fc.boolean(),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(spec, { minLength: 1, maxLength: 40 }),
      fc.array(fc.nat(4), { minLength: 1, maxLength: 12 }),
      fc.option(fc.nat(12)),
      async (specs, batches, closeAt) => {
        const loop = new VirtualTimeLoop();
        const proactor = new DenoProactor(loop);
        const settled: number[] = [];
        const reached: string[] = [];
        let next = 0;
        const settle = (): void => {
          if (next === specs.length) return;
          const i = next++;
          const s = specs[i];
          const op = deferred<number>();
          op.promise.then(() => settled.push(i), () => settled.push(i));
          proactor.watch(
            op.promise,
            proactor.bind<number>({
              done: (v) => {
                reached.push(`${v}`);
                if (!s.resumes) return;
                requestMicrotaskCheckpoint();
                let p = Promise.resolve();
                for (let k = 0; k < s.spawn; k++) p = p.then(settle);
                if (s.parkAfter < 0) return;
                for (let k = 0; k < s.parkAfter; k++) p = p.then();
                p.then(noteAwaitParked);
              },
              failed: (e) => reached.push(`${(e as Error).message}`),
              orphaned: (v, e) => reached.push(`${v ?? (e as Error).message}`),
            }),
          );
          if (s.fails) op.reject(new Error(`${i}`));
          else op.resolve(i);
        };
        for (const [turn, batch] of batches.entries()) {
          for (let k = 0; k < batch; k++) settle();
          await microtasks();
          if (closeAt === turn) proactor.closeAll();
          await loop.advance(0);
        }
        while (next < specs.length) {
          settle();
          await microtasks();
          await loop.advance(0);
        }
        await microtasks();
        await loop.advance(0);
        assertEquals(reached, settled.map(String));
        loop.close();
      },
    ),
    settings(300),
  );
});

Deno.test("DenoProactor skips done() when inline() finishes the completion", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new DenoProactor(loop);
  const log: string[] = [];
  const port = proactor.bind<number>({
    ...logging<number>(log, "w"),
    inline: (n) => {
      log.push(`inline ${n}`);
      return n === 10;
    },
  });
  const a = deferred<number>();
  const b = deferred<number>();
  proactor.watch(a.promise, port);
  proactor.watch(b.promise, port);
  a.resolve(10);
  b.resolve(3);
  await microtasks();
  assertEquals(log, ["inline 10", "inline 3"]);
  await loop.advance(0);
  assertEquals(log, ["inline 10", "inline 3", "w done 3"]);
  loop.close();
});

Deno.test("DenoProactor gives settlements after the loop closed to orphaned()", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new DenoProactor(loop);
  const log: string[] = [];
  const a = deferred<string>();
  const b = deferred<string>();
  proactor.watch(a.promise, proactor.bind(logging(log, "a")));
  proactor.watch(b.promise, proactor.bind(logging(log, "b")));
  loop.close();
  a.resolve("conn");
  b.reject(new Error("late"));
  await microtasks();
  assertEquals(log, ["a orphaned conn", "b orphaned undefined"]);
  assertEquals(proactor.pending, 0);
});

Deno.test("DenoProactor reports a completion that throws and runs the others", async () => {
  const loop = new VirtualTimeLoop();
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, c) => errors.push(c));
  const proactor = new DenoProactor(loop);
  const log: string[] = [];
  const a = deferred<number>();
  const b = deferred<number>();
  proactor.watch(
    a.promise,
    proactor.bind<number>({
      done: () => {
        throw new Error("bug");
      },
      failed: () => {},
    }),
  );
  proactor.watch(b.promise, proactor.bind(logging(log, "b")));
  a.resolve(1);
  b.resolve(2);
  await microtasks();
  await loop.advance(0);
  assertEquals(log, ["b done 2"]);
  assertEquals(errors.length, 1);
  assertEquals((errors[0].exception as Error).message, "bug");
  loop.close();
});

Deno.test("DenoProactor starts reads, writes, shutdowns and accepts on the handles", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new DenoProactor(loop);
  const calls: string[] = [];
  const conn = {
    read: (b: Uint8Array) => {
      calls.push(`read ${b.length}`);
      b[0] = 42;
      return Promise.resolve(1);
    },
    write: (d: Uint8Array) => {
      calls.push(`write ${d.length}`);
      return Promise.resolve(d.length);
    },
    closeWrite: () => {
      calls.push("closeWrite");
      return Promise.resolve();
    },
    close: () => {
      calls.push("close");
      throw new Deno.errors.BadResource("closed twice");
    },
  } as unknown as Deno.Conn;
  const listener = {
    accept: () => {
      calls.push("accept");
      return Promise.resolve(conn);
    },
  } as unknown as Deno.Listener;
  const log: string[] = [];
  const buf = new Uint8Array(4);
  proactor.startRead(conn, buf, proactor.bind(logging(log, "read")));
  proactor.startWrite(
    conn,
    new Uint8Array(3),
    proactor.bind(logging(log, "write")),
  );
  proactor.startShutdown(conn, proactor.bind(logging(log, "shutdown")));
  proactor.startAccept(
    listener,
    proactor.bind<Deno.Conn>({
      done: (c) => log.push(`accept done ${c === conn}`),
      failed: () => {},
    }),
  );
  proactor.close(conn); // the error of a second close is swallowed
  assertEquals(calls, ["read 4", "write 3", "closeWrite", "accept", "close"]);
  await microtasks();
  await loop.advance(0);
  assertEquals(log, [
    "read done 1",
    "write done 3",
    "shutdown done undefined",
    "accept done true",
  ]);
  assertEquals(buf[0], 42);
  loop.close();
});

Deno.test("DenoProactor.wakeUp() schedules an iteration and is safe after close", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new DenoProactor(loop);
  let ran = false;
  loop.callSoon(() => ran = true);
  proactor.wakeUp();
  await loop.advance(0);
  assert(ran);
  loop.close();
  proactor.wakeUp();
});

Deno.test("DenoProactor calls Deno's ops directly on real connections, EOF as null", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const server = await listener.accept();
  listener.close();
  // Real connections take the fast path (unless the internals are
  // switched off); anything else goes through the connection's own
  // methods (the test above). Results are the same either way.
  assertEquals(
    typeof connRid(server),
    INTERNALS_ENABLED ? "number" : "undefined",
  );
  assertEquals(connRid({ read() {} } as unknown as Deno.Conn), undefined);
  const loop = new VirtualTimeDenoLoop();
  const proactor = new DenoProactor(loop);
  const log: string[] = [];
  const buf = new Uint8Array(8);
  const reads = proactor.bind(logging<number | null>(log, "read"));
  proactor.startRead(server, buf, reads);
  proactor.startWrite(
    client,
    new Uint8Array([1, 2, 3]),
    proactor.bind(logging(log, "write")),
  );
  while (log.length < 2) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    await loop.advance(0);
  }
  assertEquals(log.sort(), ["read done 3", "write done 3"]);
  assertEquals([...buf.subarray(0, 3)], [1, 2, 3]);
  client.close();
  proactor.startRead(server, buf, reads);
  while (log.length < 3) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    await loop.advance(0);
  }
  assertEquals(log[2], "read done null");
  server.close();
  loop.close();
});

// ---- watchFuture ----

Deno.test("watchFuture() settles the future on the loop, counting the operation as pending", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new DenoProactor(loop);
  const ok = deferred<number>();
  const bad = deferred<number>();
  const gone = deferred<number>();
  const a = watchFuture({ loop, proactor }, ok.promise);
  const b = watchFuture({ loop, proactor }, bad.promise);
  const c = watchFuture({ loop, proactor }, gone.promise);
  assertEquals(proactor.pending, 3);
  ok.resolve(1);
  bad.reject(new RangeError("no"));
  gone.reject(new CancelledError("stopped"));
  await microtasks();
  assertEquals(proactor.pending, 0);
  assert(!a.done());
  await loop.advance(0);
  assertEquals(a.result(), 1);
  assertEquals((b.exception() as Error).message, "no");
  assert(c.cancelled());
  loop.close();
});

Deno.test("watchFuture() releases a result nobody takes: the future was cancelled or the loop closed", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new DenoProactor(loop);
  const released: string[] = [];
  const release = (v: string) => released.push(v);
  const early = deferred<string>();
  const late = deferred<string>();
  const failing = deferred<string>();
  const cancelled = watchFuture({ loop, proactor }, early.promise, release);
  const orphan = watchFuture({ loop, proactor }, late.promise, release);
  watchFuture({ loop, proactor }, failing.promise, release);
  cancelled.cancel();
  early.resolve("early");
  await microtasks();
  await loop.advance(0);
  assertEquals(released, ["early"]);
  loop.close();
  late.resolve("late");
  failing.reject(new Error("nobody hears this"));
  await microtasks();
  assertEquals(released, ["early", "late"]);
  assert(!orphan.done());
  assertEquals(proactor.pending, 0);
});

Deno.test("DenoProactor.closeAll() releases what is still owned, once, and counts what its owners left open", () => {
  const loop = new VirtualTimeLoop();
  const proactor = new DenoProactor(loop);
  const released: string[] = [];
  const owned = (name: string, open: boolean) => ({
    release() {
      released.push(name);
      if (name === "broken") throw new Error("already gone");
      return open;
    },
  });
  const server = owned("server", true);
  const closing = owned("closing", false);
  const gone = owned("gone", true);
  proactor.own(server, "server");
  proactor.own(owned("conn", true), "transport");
  proactor.own(closing, "transport");
  proactor.own(owned("pipe", true), "transport");
  proactor.own(owned("broken", true), "transport");
  proactor.own(gone, "transport");
  proactor.disown(gone);
  assertEquals(released, []);
  // Owned again with another kind: counted as that kind only.
  const relayEnd = owned("relay end", true);
  proactor.own(relayEnd, "transport");
  proactor.own(relayEnd, "internal");
  assertEquals(proactor.closeAll(), { transports: 2, servers: 1 });
  assertEquals(released, [
    "server",
    "conn",
    "closing",
    "pipe",
    "broken",
    "relay end",
  ]);
  assertEquals(proactor.closeAll(), { transports: 0, servers: 0 });
  loop.close();
});
