// A property of the simulator: any small system — hosts with stream and
// datagram servers, clients that connect, write, half-close, abort, send
// datagrams, sleep, set timers (setTimeout() and setInterval()) and
// immediates (node:timers' setImmediate(), imported by name) and draw
// random numbers (node:crypto's randomBytes() imported by name too),
// links with latency, jitter and bandwidth, random faults and faults by
// hand (partitions, holds, crashes, restarts) — run twice from the same
// seed gives the same run: the same trace, event for event, and the same
// outcome on every host. Another run in between (another seed) leaves
// nothing behind that changes it.

import { assert, assertEquals } from "@std/assert";
import fc from "fast-check";
import { randomBytes } from "node:crypto";
import * as nodeTimers from "node:timers";
import v8 from "node:v8";
import vm from "node:vm";
import type { EventLoop } from "../../loop/event_loop.ts";
import { DatagramProtocol, Protocol } from "../../protocols/protocol.ts";
import { openConnection } from "../../streams/open_connection.ts";
import { sleep } from "../../tasks/sleep.ts";
import type {
  DatagramTransport,
  Transport,
} from "../../transports/transport.ts";
import { formatEvent } from "../../testing/_sim_world.ts";
import { NODE_IMMEDIATES } from "../../transports/_deno_internals.ts";
import { Simulation } from "../../testing/simulation.ts";
import { settings } from "../_property.ts";

type Op =
  | {
    kind: "stream";
    server: number;
    chunks: number[];
    end: "eof" | "close" | "abort";
  }
  | { kind: "datagram"; server: number; count: number; size: number }
  | { kind: "sleep"; seconds: number }
  | { kind: "timers"; ms: number; ticks: number }
  | { kind: "immediates"; count: number }
  | { kind: "random" };

type Action = {
  at: number;
  what: "partition" | "repair" | "hold" | "release" | "crash" | "restart";
  a: number;
  b: number;
};

interface System {
  servers: number;
  clients: Op[][];
  link: { latency: number; jitter: number; bandwidth: number };
  links: { a: number; b: number; latency: number; jitter: number }[];
  faults: {
    crash?: number;
    partition?: number;
    hold?: number;
    reset?: number;
    drop?: number;
    duplicate?: number;
  };
  receiveBuffer: number;
  actions: Action[];
}

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("stream" as const),
    server: fc.nat(3),
    chunks: fc.array(fc.integer({ min: 0, max: 40000 }), { maxLength: 4 }),
    end: fc.constantFrom("eof" as const, "close" as const, "abort" as const),
  }),
  fc.record({
    kind: fc.constant("datagram" as const),
    server: fc.nat(3),
    count: fc.integer({ min: 1, max: 6 }),
    size: fc.integer({ min: 0, max: 2000 }),
  }),
  fc.record({
    kind: fc.constant("sleep" as const),
    seconds: fc.double({ min: 0, max: 2, noNaN: true }),
  }),
  fc.record({
    kind: fc.constant("timers" as const),
    ms: fc.double({ min: -1, max: 1500, noNaN: true }),
    ticks: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({
    kind: fc.constant("immediates" as const),
    count: fc.integer({ min: 1, max: 6 }),
  }),
  fc.record({ kind: fc.constant("random" as const) }),
);

const rate = fc.option(fc.double({ min: 0, max: 1, noNaN: true }), {
  nil: undefined,
});

const system: fc.Arbitrary<System> = fc.record({
  servers: fc.integer({ min: 1, max: 2 }),
  clients: fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), {
    minLength: 1,
    maxLength: 3,
  }),
  link: fc.record({
    latency: fc.double({ min: 0, max: 0.05, noNaN: true }),
    jitter: fc.double({ min: 0, max: 0.05, noNaN: true }),
    bandwidth: fc.constantFrom(Infinity, 1e5, 1e7),
  }),
  links: fc.array(
    fc.record({
      a: fc.nat(4),
      b: fc.nat(4),
      latency: fc.double({ min: 0, max: 0.2, noNaN: true }),
      jitter: fc.double({ min: 0, max: 0.1, noNaN: true }),
    }),
    { maxLength: 2 },
  ),
  faults: fc.record({
    crash: rate,
    partition: rate,
    hold: rate,
    reset: rate,
    drop: rate,
    duplicate: rate,
  }),
  receiveBuffer: fc.constantFrom(65536, 4096, 100),
  actions: fc.array(
    fc.record({
      at: fc.double({ min: 0, max: 10, noNaN: true }),
      what: fc.constantFrom(
        "partition" as const,
        "repair" as const,
        "hold" as const,
        "release" as const,
        "crash" as const,
        "restart" as const,
      ),
      a: fc.nat(4),
      b: fc.nat(4),
    }),
    { maxLength: 4 },
  ),
});

/** Echoes a stream; at its end, echoes the end and closes. */
class Echo extends Protocol {
  #t: Transport | null = null;
  override connectionMade(t: Transport): void {
    this.#t = t;
  }
  override dataReceived(data: Uint8Array): void {
    this.#t!.write(data);
  }
  override eofReceived(): boolean {
    this.#t!.close();
    return true;
  }
}

/** Echoes datagrams to their sender. */
class DatagramEcho extends DatagramProtocol {
  #t: DatagramTransport | null = null;
  override connectionMade(t: DatagramTransport): void {
    this.#t = t;
  }
  override datagramReceived(data: Uint8Array, addr: Deno.NetAddr): void {
    if (!this.#t!.isClosing()) this.#t!.sendto(data, addr);
  }
}

/** Counts datagrams. */
class DatagramCount extends DatagramProtocol {
  got = 0;
  bytes = 0;
  override datagramReceived(data: Uint8Array): void {
    this.got++;
    this.bytes += data.length;
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** A byte pattern, different for each client and op. */
function fill(n: number, salt: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + salt) & 255;
  return out;
}

async function runOp(
  loop: EventLoop,
  op: Op,
  servers: number,
  salt: number,
  log: (s: string) => unknown,
): Promise<void> {
  switch (op.kind) {
    case "sleep":
      await sleep(op.seconds);
      log(`slept ${op.seconds}`);
      return;
    case "timers": {
      // setTimeout() and setInterval(): the host's loop's timers.
      await new Promise((r) => setTimeout(r, op.ms));
      let n = 0;
      await new Promise<void>((done) => {
        const id = setInterval(() => {
          if (++n < op.ticks) return;
          clearInterval(id);
          done();
        }, op.ms);
      });
      log(`timers ${op.ms} x${op.ticks}`);
      return;
    }
    case "immediates": {
      // node:timers' setImmediate() imported by name, where the run puts it
      // on the loop (else a host's fails the run): every other one cleared.
      const set = NODE_IMMEDIATES !== null
        ? nodeTimers.setImmediate
        : setImmediate;
      const order: number[] = [];
      await new Promise<void>((done) => {
        for (let i = 0; i < op.count; i++) {
          const last = i === op.count - 1;
          const made = set(() => {
            order.push(i);
            if (last) done();
          });
          if (i % 2 === 1 && !last) clearImmediate(made);
        }
      });
      log(`immediates ${order.join(",")} ${randomBytes(2).join(",")}`);
      return;
    }
    case "random": {
      const bytes = new Uint8Array(4);
      crypto.getRandomValues(bytes);
      log(
        `random ${Math.random()} ${Date.now()} ${performance.now()} ${
          new Date().toISOString()
        } ${crypto.randomUUID()} ${bytes.join(",")}`,
      );
      return;
    }
    case "datagram": {
      const counter = new DatagramCount();
      const [t] = await loop.createDatagramEndpoint(() => counter, {
        remoteAddr: { hostname: `s${op.server % servers}`, port: 9 },
      });
      for (let i = 0; i < op.count; i++) t.sendto(fill(op.size, salt + i));
      await sleep(0.5);
      t.close();
      log(`datagrams ${counter.got} ${counter.bytes}`);
      return;
    }
    case "stream": {
      const [reader, writer] = await openConnection(
        `s${op.server % servers}`,
        7,
        { loop },
      );
      let sent = 0;
      for (const [i, n] of op.chunks.entries()) {
        writer.write(fill(n, salt + i));
        sent += n;
        await writer.drain();
      }
      if (op.end === "abort") {
        writer.transport.abort();
        log(`stream aborted after ${sent}`);
        return;
      }
      if (op.end === "close") {
        const got = await reader.read(Math.min(sent, 1000));
        writer.close();
        await writer.waitClosed();
        log(`stream closed after ${sent}, read ${got.length}`);
        return;
      }
      writer.writeEof();
      const echo = await reader.read(-1);
      let sum = 0;
      for (const b of echo) sum = (sum * 33 + b) >>> 0;
      writer.close();
      log(`stream echoed ${echo.length} of ${sent} (${sum})`);
      return;
    }
  }
}

/** Runs `sys` from `seed`; returns everything a run can be told apart by. */
async function runSystem(sys: System, seed: number): Promise<string> {
  const sim = new Simulation({
    seed,
    link: sys.link,
    receiveBuffer: sys.receiveBuffer,
    connectTimeout: 3,
    retransmitTimeout: 3,
    faults: {
      ...sys.faults,
      restartAfter: 0.5,
      repairAfter: 0.5,
      releaseAfter: 0.3,
      hosts: [
        ...Array.from({ length: sys.servers }, (_, i) => `s${i}`),
        ...sys.clients.map((_, i) => `c${i}`),
      ],
    },
  });
  const names: string[] = [];
  const log: string[] = [];
  for (let i = 0; i < sys.servers; i++) {
    const name = `s${i}`;
    names.push(name);
    sim.host(name, async (loop) => {
      await loop.createServer(() => new Echo(), "0.0.0.0", 7);
      await loop.createDatagramEndpoint(() => new DatagramEcho(), {
        localAddr: { hostname: "0.0.0.0", port: 9 },
      });
      // A timer chain, so that servers have work of their own.
      let ticks = 0;
      const tick = () => {
        log.push(`${name} tick ${ticks} at ${loop.time()}`);
        if (++ticks < 3) loop.callLater(0.7, tick);
      };
      loop.callLater(0.3, tick);
    });
  }
  for (const [c, ops] of sys.clients.entries()) {
    const name = `c${c}`;
    names.push(name);
    sim.client(name, async (loop) => {
      const say = (s: string) => log.push(`${name} ${loop.time()} ${s}`);
      say("start");
      for (const [i, o] of ops.entries()) {
        try {
          await runOp(loop, o, sys.servers, c * 16 + i, say);
        } catch (e) {
          say(`${o.kind} failed: ${describe(e)}`);
        }
      }
    });
  }
  sim.host("chaos", async () => {
    const actions = [...sys.actions].sort((x, y) => x.at - y.at);
    for (const a of actions) {
      await sleep(Math.max(0, a.at - sim.time()));
      const ha = names[a.a % names.length];
      let hb = names[a.b % names.length];
      if (hb === ha) hb = names[(a.b + 1) % names.length];
      if (a.what === "crash" || a.what === "restart") sim[a.what](ha);
      else if (ha !== hb) sim[a.what](ha, hb);
    }
  });
  for (const l of sys.links) {
    const a = names[l.a % names.length];
    const b = names[l.b % names.length];
    if (a !== b) sim.link(a, b, { latency: l.latency, jitter: l.jitter });
  }
  let result = "done";
  try {
    await sim.run({ until: 60, limit: 60 });
  } catch (e) {
    result = describe(e);
  }
  return JSON.stringify({
    result,
    time: sim.time(),
    log,
    trace: sim.trace.map(formatEvent),
  });
}

/** The first line where two runs part, for the failure message. */
function firstDifference(a: string, b: string): string {
  const x = JSON.parse(a);
  const y = JSON.parse(b);
  for (const key of ["result", "time", "log", "trace"]) {
    const p = JSON.stringify(x[key]);
    const q = JSON.stringify(y[key]);
    if (p === q) continue;
    if (!Array.isArray(x[key])) return `${key}: ${p} vs ${q}`;
    for (let i = 0; i < Math.max(x[key].length, y[key].length); i++) {
      if (x[key][i] !== y[key][i]) {
        return `${key}[${i}]: ${x[key][i]} vs ${y[key][i]}`;
      }
    }
  }
  return "(none)";
}

Deno.test("Simulation: any small system, run twice from one seed, runs the same, event for event", async () => {
  let differed = 0;
  let runs = 0;
  let eventful = 0;
  await fc.assert(
    fc.asyncProperty(system, fc.nat(), async (sys, seed) => {
      const first = await runSystem(sys, seed);
      // Another run between the two, from another seed.
      const other = await runSystem(sys, seed + 1);
      const again = await runSystem(sys, seed);
      runs++;
      if (other !== first) differed++;
      if (JSON.parse(first).trace.length > 20) eventful++;
      assert(
        first === again,
        `seed ${seed} ran differently the second time: ${
          firstDifference(first, again)
        }`,
      );
    }),
    settings(40),
  );
  // The seed matters: most systems draw random segments, delays or faults.
  assert(differed > runs / 4, `only ${differed} of ${runs} differed by seed`);
  assert(eventful > runs / 2, `only ${eventful} of ${runs} runs did much`);
});

Deno.test("Simulation: hosts added in another order, the same seed still replays each", async () => {
  // A system and its mirror image (hosts added in reverse order) are two
  // systems; each must replay itself exactly.
  const build = (reverse: boolean) => async (seed: number) => {
    const sim = new Simulation({
      seed,
      link: { latency: 0.01, jitter: 0.02 },
      faults: { reset: 1, drop: 0.2 },
    });
    const logged: string[] = [];
    const hosts: [string, (loop: EventLoop) => Promise<void>][] = [];
    for (const name of ["x", "y", "z"]) {
      hosts.push([name, async (loop) => {
        await loop.createServer(() => new Echo(), "0.0.0.0", 7);
        for (const peer of ["x", "y", "z"]) {
          if (peer === name) continue;
          try {
            const [r, w] = await openConnection(peer, 7, { loop });
            w.write(fill(5000, peer.charCodeAt(0)));
            w.writeEof();
            const got = await r.read(-1);
            logged.push(`${name}>${peer} ${got.length} ${loop.time()}`);
          } catch (e) {
            logged.push(`${name}>${peer} ${describe(e)}`);
          }
        }
      }]);
    }
    if (reverse) hosts.reverse();
    for (const [name, main] of hosts) sim.client(name, main);
    await sim.run({ limit: 60 });
    return JSON.stringify([logged, sim.trace.map(formatEvent)]);
  };
  for (const reverse of [false, true]) {
    const run = build(reverse);
    for (const seed of [1, 2]) assertEquals(await run(seed), await run(seed));
  }
});

// ---- The garbage collector ----

// `--expose-gc` cannot be passed per test, but V8 accepts it at run time
// through node:v8, and a new context then hands out `gc`.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/**
 * Fails a future that nobody keeps or looks at, and starts a task that
 * waits for ever and that nobody keeps either.
 */
function failAndDrop(loop: EventLoop, message: string): void {
  loop.createFuture<number>().setException(new Error(message));
  loop.createTask(() => new Promise(() => {}), { name: message });
}

/**
 * A client that drops failed futures as it goes, and a collection after
 * each step when `collect` (the collector ran then: the program is the
 * same).
 */
async function droppingRun(
  collect: boolean,
  failOnError: boolean,
): Promise<[string, string[]]> {
  const sim = new Simulation({ seed: 4, failOnError });
  sim.client("c", async (loop) => {
    // Debug mode holds tasks weakly on a real loop, to report the ones the
    // collector takes while pending.
    loop.setDebug(true);
    for (let i = 0; i < 4; i++) {
      failAndDrop(loop, `lost ${i}`);
      await sleep(1);
      // The collector's finalizers run in a later macrotask.
      if (collect) gc();
    }
  });
  let result = "done";
  try {
    await sim.run();
  } catch (e) {
    result = describe(e).split("\n")[0];
  }
  return [result, sim.trace.map(formatEvent)];
}

Deno.test("Simulation: a garbage collection during a run changes nothing; exceptions never retrieved are reported when the run ends", async () => {
  const quiet = await droppingRun(false, false);
  assertEquals(await droppingRun(true, false), quiet);
  assertEquals(quiet[0], "done");
  assertEquals(
    quiet[1].filter((e) => e.includes(" error ")),
    [0, 1, 2, 3].map((i) =>
      `4.000000 c error Future exception was never retrieved: Error: lost ${i}`
    ),
  );
  const failing = await droppingRun(false, true);
  assertEquals(await droppingRun(true, true), failing);
  assertEquals(
    failing[0],
    "SimulationError: Simulation failed (seed 4) at 4.000000 s: host c reported an error: Future exception was never retrieved: Error: lost 0",
  );
});

Deno.test("Simulation: tasks get the same default names on each replay of a seed", async () => {
  const names: string[][] = [];
  for (let i = 0; i < 2; i++) {
    const seen: string[] = [];
    const sim = new Simulation({ seed: 9 });
    sim.client("c", async (loop) => {
      for (let j = 0; j < 3; j++) {
        const task = loop.createTask(() => sleep(0.1));
        seen.push(task.getName());
        await task;
      }
    });
    await sim.run();
    names.push(seen);
  }
  assertEquals(names[0], names[1]);
});

Deno.test("Simulation: the collector clears no WeakRef the run made, nor finalizes what it registered, until the run ends", async () => {
  // A registry made before the run, as a module makes one when it loads.
  const finalizedIn: string[] = [];
  let running = false;
  const before = new FinalizationRegistry<string>((held) => {
    if (running) finalizedIn.push(held);
  });
  let outsideRef: WeakRef<object> | null = null;
  const run = async () => {
    const log: string[] = [];
    const sim = new Simulation({ seed: 9 });
    sim.client("c", async () => {
      const inside = new FinalizationRegistry<string>((held) => {
        if (running) finalizedIn.push(held);
      });
      const refs: WeakRef<object>[] = [];
      for (let i = 0; i < 5; i++) {
        refs.push(new WeakRef({ i }));
        before.register({ i }, `before ${i}`);
        inside.register({ i }, `inside ${i}`);
        // A collection in a later job than the deref() below (which keeps
        // its target until its job ends); the finalizers' macrotask would
        // run during the wait after it.
        await sleep(1);
        gc();
        await sleep(1);
        log.push(refs.map((r) => r.deref() === undefined ? "-" : "+").join(""));
      }
      outsideRef = refs[0];
      assert(refs[0] instanceof WeakRef);
    });
    running = true;
    try {
      await sim.run();
    } finally {
      running = false;
    }
    return log;
  };
  const first = await run();
  assertEquals(first, ["+", "++", "+++", "++++", "+++++"]);
  assertEquals(finalizedIn, []);
  assertEquals(await run(), first);
  // Once the run is over, the collector takes them as usual.
  await new Promise((r) => setTimeout(r, 0));
  gc();
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(outsideRef!.deref(), undefined);
});

Deno.test("Simulation: a WeakRef class or register() that code kept from a run holds nothing once the run is over", async () => {
  let Kept: typeof WeakRef = WeakRef;
  let register = FinalizationRegistry.prototype.register;
  const sim = new Simulation({ seed: 10 });
  sim.client("c", async () => {
    // A library loaded during the run: it subclasses, or keeps, what it
    // finds.
    Kept = class Ref<T extends WeakKey> extends WeakRef<T> {};
    register = FinalizationRegistry.prototype.register;
    await sleep(1);
  });
  await sim.run();
  const finalized: string[] = [];
  const registry = new FinalizationRegistry<string>((held) => {
    finalized.push(held);
  });
  const ref = (() => {
    register.call(registry, {}, "registered after the run");
    return new Kept({});
  })();
  await new Promise((r) => setTimeout(r, 0));
  gc();
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(ref.deref(), undefined);
  assertEquals(finalized, ["registered after the run"]);
});
