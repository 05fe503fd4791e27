import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import nodeChildProcess from "node:child_process";
import nodeCrypto, { randomBytes, randomUUID } from "node:crypto";
import nodeDgram from "node:dgram";
import nodeHttp from "node:http";
import nodeNet from "node:net";
import * as nodeTimers from "node:timers";
import * as nodeTimersPromises from "node:timers/promises";
import { sleep } from "../../tasks/sleep.ts";
import {
  NODE_IMMEDIATES,
  NODE_TIMERS,
} from "../../transports/_deno_internals.ts";
import { Simulation, SimulationError } from "../../testing/simulation.ts";

/** The own keys of an object's prototype chain, short of Object's. */
function shape(value: object): string[] {
  const keys = new Set<string>();
  for (
    let p = Object.getPrototypeOf(value);
    p !== null && p !== Object.prototype;
    p = Object.getPrototypeOf(p)
  ) {
    for (const k of Reflect.ownKeys(p)) {
      if (k !== "constructor" && typeof p[k] === "function") {
        keys.add(String(k));
      }
    }
  }
  return [...keys].sort();
}

Deno.test("Simulation: a host's setTimeout(), setInterval() and setImmediate() return what Deno's do, Symbol.dispose included", async () => {
  const realTimeout = setTimeout(() => {}, 1000);
  const realInterval = setInterval(() => {}, 1000);
  const realImmediate = setImmediate(() => {});
  const real = [realTimeout, realInterval, realImmediate].map((t) =>
    shape(t as object)
  );
  clearTimeout(realTimeout);
  clearInterval(realInterval);
  clearImmediate(realImmediate);
  // Deno's Timeout and Immediate are disposable.
  assert(real[0].includes("Symbol(Symbol.dispose)"));
  assert(real[2].includes("Symbol(Symbol.dispose)"));
  const log: string[] = [];
  let seen: string[][] = [];
  const sim = new Simulation({ seed: 5 });
  sim.client("c", async () => {
    const t = setTimeout(() => log.push("timeout"), 10);
    const i = setInterval(() => log.push("interval"), 10);
    const m = setImmediate(() => log.push("immediate"));
    seen = [t, i, m].map((x) => shape(x as object));
    {
      using _t = setTimeout(() => log.push("disposed timeout"), 5);
      using _i = setInterval(() => log.push("disposed interval"), 5);
      using _m = setImmediate(() => log.push("disposed immediate"));
    }
    clearTimeout(t);
    clearInterval(i);
    clearImmediate(m);
    await sleep(0.1);
  });
  await sim.run();
  assertEquals(log, []);
  for (let k = 0; k < 3; k++) {
    for (const key of real[k]) {
      // Node's internal symbols (createTimer, destroy, inspect) aside.
      if (!key.startsWith("Symbol(") || key.startsWith("Symbol(Symbol.")) {
        assert(seen[k].includes(key), `${key} missing from ${seen[k]}`);
      }
    }
  }
});

Deno.test("Simulation: a host that runs a Deno.Command or listens for a signal fails the run at once, naming it", async () => {
  for (
    const [api, use] of [
      ["Deno.Command", () => new Deno.Command("true").spawn()],
      [
        "Deno.addSignalListener",
        () => Deno.addSignalListener("SIGUSR2", () => {}),
      ],
    ] as const
  ) {
    const sim = new Simulation({ seed: 10 });
    sim.client("c", async () => {
      use();
      await sleep(1);
    });
    const e = await assertRejects(() => sim.run(), SimulationError);
    assertStringIncludes(e.message, "(seed 10) at 0.000000 s");
    assertStringIncludes(e.message, `Cannot use ${api} inside a simulation`);
  }
  // Outside the hosts, and after the run, they are the real ones.
  const child = new Deno.Command("true").spawn();
  assertEquals((await child.status).code, 0);
});

for (
  const [api, use] of [
    ["Worker", () => new Worker("data:text/javascript,", { type: "module" })],
    ["MessageChannel", () => new MessageChannel()],
    ["BroadcastChannel", () => new BroadcastChannel("sim")],
  ] as const
) {
  Deno.test(`Simulation: a host that makes a ${api} fails the run at once, naming it`, async () => {
    const sim = new Simulation({ seed: 9 });
    sim.client("c", async () => {
      use();
      await sleep(1);
    });
    const e = await assertRejects(() => sim.run(), SimulationError);
    assertStringIncludes(e.message, "(seed 9) at 0.000000 s");
    assertStringIncludes(
      e.message,
      `Cannot make a ${api} inside a simulation`,
    );
    // Outside the hosts, and after the run, it is the real one.
    const made = use();
    if (made instanceof Worker) made.terminate();
    else if (made instanceof MessageChannel) {
      made.port1.close();
      made.port2.close();
    } else made.close();
  });
}

Deno.test("Simulation: a host's setTimeout() and setInterval() from node:timers and node:timers/promises are on its loop, and replay", async () => {
  const run = async () => {
    const log: string[] = [];
    const sim = new Simulation({ seed: 31 });
    sim.client("c", async (loop) => {
      await nodeTimersPromises.setTimeout(2500);
      log.push(`promise at ${loop.time().toFixed(2)}`);
      await new Promise((r) => nodeTimers.setTimeout(r, 1000));
      log.push(`callback at ${loop.time().toFixed(2)}`);
      const cleared = nodeTimers.setTimeout(() => log.push("never"), 10);
      nodeTimers.clearTimeout(cleared);
      {
        using _disposed = nodeTimers.setTimeout(() => log.push("never"), 10);
      }
      const refreshed = nodeTimers.setTimeout(
        () => log.push(`refreshed at ${loop.time().toFixed(2)}`),
        100,
      );
      await nodeTimersPromises.setTimeout(50);
      refreshed.refresh();
      const again = nodeTimers.setTimeout(
        () => log.push(`again at ${loop.time().toFixed(2)}`),
        10,
      );
      await nodeTimersPromises.setTimeout(20);
      again.refresh(); // fired: armed anew, as node's
      await nodeTimersPromises.setTimeout(20);
      let n = 0;
      const interval = nodeTimers.setInterval(() => {
        log.push(`tick ${++n} at ${loop.time().toFixed(2)}`);
        if (n === 3) nodeTimers.clearInterval(interval);
      }, 200);
      for await (const _ of nodeTimersPromises.setInterval(300)) {
        log.push(`async tick at ${loop.time().toFixed(2)}`);
        if (loop.time() > 4.3) break;
      }
      await nodeTimersPromises.setTimeout(1000);
      // Left pending: stopped when the run ends (the sanitizers see).
      nodeTimers.setTimeout(() => log.push("never"), 100_000);
      nodeTimers.setInterval(() => log.push("never"), 10).unref().ref();
    });
    await sim.run();
    return log;
  };
  if (NODE_TIMERS === null) {
    // Switched off: node's timers would be real, which the run refuses.
    const sim = new Simulation({ seed: 31 });
    sim.client("c", async () => {
      await new Promise((r) => nodeTimers.setTimeout(r, 1000));
    });
    const e = await assertRejects(() => sim.run(), SimulationError);
    assertStringIncludes(e.message, "node:timers");
    return;
  }
  const first = await run();
  assertEquals(first, [
    "promise at 2.50",
    "callback at 3.50",
    "again at 3.56",
    "again at 3.58",
    "refreshed at 3.65",
    "tick 1 at 3.79",
    "async tick at 3.89",
    "tick 2 at 3.99",
    "async tick at 4.19",
    "tick 3 at 4.19",
    "async tick at 4.49",
  ]);
  assertEquals(await run(), first);
});

Deno.test({
  name:
    "Simulation: a host's global timers and node:timers' clear each other's, by the timer or its id, as in Deno",
  // Without the internals a host's node:timers timers fail the run.
  ignore: NODE_TIMERS === null,
  fn: async () => {
    const log: string[] = [];
    const sim = new Simulation({ seed: 42 });
    sim.client("c", async () => {
      const timeout = (what: string) => setTimeout(() => log.push(what), 10);
      const interval = (what: string) => setInterval(() => log.push(what), 10);
      nodeTimers.clearTimeout(timeout("global timeout, node clear"));
      nodeTimers.clearTimeout(+timeout("global timeout, node clear by id"));
      nodeTimers.clearInterval(interval("global interval, node clear"));
      nodeTimers.clearInterval(+interval("global interval, node clear by id"));
      const nodeTimeout = (what: string) =>
        nodeTimers.setTimeout(() => log.push(what), 10);
      const nodeInterval = (what: string) =>
        nodeTimers.setInterval(() => log.push(what), 10);
      clearTimeout(nodeTimeout("node timeout, global clear"));
      clearTimeout(+nodeTimeout("node timeout, global clear by id"));
      clearInterval(nodeInterval("node interval, global clear"));
      clearInterval(+nodeInterval("node interval, global clear by id"));
      setTimeout(() => log.push("kept"), 20);
      await sleep(0.1);
    });
    await sim.run();
    assertEquals(log, ["kept"]);
  },
});

Deno.test({
  name:
    "Simulation: without the node:timers internals (TULIP_NO_INTERNALS), a host's node:timers setTimeout() fails the run at once, naming it, even while other hosts keep time moving",
  ignore: NODE_TIMERS !== null,
  fn: async () => {
    for (const make of ["setTimeout", "setInterval", "promises"]) {
      let woke = false;
      const sim = new Simulation({ seed: 40 });
      sim.host("ticker", async () => {
        for (;;) await sleep(0.001);
      });
      sim.client("c", async () => {
        if (make === "setTimeout") {
          await new Promise((r) => nodeTimers.setTimeout(r, 20));
        } else if (make === "setInterval") {
          await new Promise((r) => nodeTimers.setInterval(r, 20));
        } else await nodeTimersPromises.setTimeout(20);
        woke = true;
      });
      const e = await assertRejects(() => sim.run(), SimulationError);
      assertStringIncludes(e.message, "client c threw");
      assertStringIncludes(e.message, "node:timers");
      assertStringIncludes(e.message, "TULIP_NO_INTERNALS");
      assertEquals(woke, false);
    }
    // Outside the hosts they are the real ones.
    await new Promise((r) => nodeTimers.setTimeout(r, 1));
  },
});

Deno.test({
  name:
    "Simulation: a host's setImmediate() and clearImmediate() from node:timers (and node:timers/promises') run on its loop, in order with its callbacks, and replay",
  // Without the internals a host's node:timers immediate fails the run.
  ignore: NODE_IMMEDIATES === null,
  fn: async () => {
    let ran = 0;
    const run = async (seed: number) => {
      const log: string[] = [];
      const sim = new Simulation({ seed });
      sim.host("ticker", async () => {
        for (;;) await sleep(Math.random() / 100);
      });
      sim.client("c", async (loop) => {
        for (let round = 0; round < 20; round++) {
          await sleep(Math.random() / 50);
          const at = loop.time().toFixed(6);
          const immediate = nodeTimers.setImmediate(
            function (
              this: unknown,
              a: number,
              b: string,
            ) {
              ran++;
              log.push(
                `immediate ${a} ${b} at ${
                  loop.time().toFixed(6)
                } (made ${at}) ${this === immediate}`,
              );
            },
            round,
            "x",
          );
          // Queued after the immediate: runs after it, on the same loop.
          loop.callSoon(() => log.push(`soon ${round}`));
          nodeTimers.clearImmediate(nodeTimers.setImmediate(() => ran++));
          {
            using _disposed = nodeTimers.setImmediate(() => ran++);
          }
          const global = setImmediate(() => ran++);
          nodeTimers.clearImmediate(global);
          nodeTimers.clearImmediate(nodeTimers.setImmediate(() => ran++));
          log.push(`promise ${await nodeTimersPromises.setImmediate(round)}`);
        }
      });
      await sim.run();
      return log;
    };
    const first = await run(12);
    assertEquals(ran, 20);
    assertEquals(first.slice(0, 3), [
      first[0],
      "soon 0",
      "promise 0",
    ]);
    assert(first[0].startsWith("immediate 0 x at "), first[0]);
    assert(first[0].endsWith(" true"), first[0]);
    assertEquals(first.length, 60);
    assertEquals(await run(12), first);
    assertNotEquals(await run(13), first);
    // Nothing the run made runs after it, on the real clock.
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(ran, 60);
  },
});

Deno.test({
  name:
    "Simulation: a host's node:timers immediate keeps ref(), unref() and hasRef() as Deno's",
  ignore: NODE_IMMEDIATES === null,
  fn: async () => {
    const realShape = (() => {
      const i = nodeTimers.setImmediate(() => {});
      const seen = [i.hasRef(), i.unref().hasRef(), i.ref().hasRef()];
      nodeTimers.clearImmediate(i);
      seen.push(i.hasRef());
      return seen;
    })();
    assertEquals(realShape, [true, false, true, false]);
    const seen: unknown[] = [];
    const sim = new Simulation({ seed: 3 });
    sim.client("c", async () => {
      const i = nodeTimers.setImmediate(() => {});
      seen.push(i.hasRef(), i.unref().hasRef(), i.ref().hasRef());
      nodeTimers.clearImmediate(i);
      seen.push(i.hasRef());
      const fired = nodeTimers.setImmediate(() => {});
      await sleep(0.01);
      seen.push(fired.hasRef());
    });
    await sim.run();
    assertEquals(seen, [...realShape, false]);
  },
});

Deno.test({
  name:
    "Simulation: without the internals (TULIP_NO_INTERNALS), a host's setImmediate() from node:timers fails the run at once, naming it, and its callback never runs",
  ignore: NODE_IMMEDIATES !== null,
  fn: async () => {
    let ran = false;
    const sim = new Simulation({ seed: 41 });
    sim.host("ticker", async () => {
      for (;;) await sleep(0.001);
    });
    sim.client("c", async () => {
      nodeTimers.setImmediate(() => ran = true);
      await sleep(1);
    });
    const e = await assertRejects(() => sim.run(), SimulationError);
    assertStringIncludes(e.message, "client c threw");
    assertStringIncludes(e.message, "node:timers' setImmediate()");
    assertStringIncludes(e.message, "TULIP_NO_INTERNALS");
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(ran, false);
    // The global one stays on the loop.
    const log: string[] = [];
    const again = new Simulation({ seed: 41 });
    again.client("c", async () => {
      await new Promise((r) => setImmediate(r));
      log.push("global");
    });
    await again.run();
    assertEquals(log, ["global"]);
  },
});

// What a library keeps from when it loads: Deno's global timers, which are
// node:timers' functions, taken before any run replaces the globals.
const keptSetImmediate = globalThis.setImmediate;
const keptSetTimeout = globalThis.setTimeout;

Deno.test({
  name:
    "Simulation: without the internals (TULIP_NO_INTERNALS), the failure of a host's global setImmediate() or setTimeout() kept from before the run says so, and tells how to call the replaced one",
  ignore: NODE_IMMEDIATES !== null || NODE_TIMERS !== null,
  fn: async () => {
    for (const kept of ["setImmediate", "setTimeout"] as const) {
      const sim = new Simulation({ seed: 42 });
      sim.client("c", async () => {
        await new Promise((r) =>
          kept === "setImmediate" ? keptSetImmediate(r) : keptSetTimeout(r, 5)
        );
      });
      const e = await assertRejects(() => sim.run(), SimulationError);
      assertStringIncludes(e.message, "client c threw");
      // Not only node:timers' imported by name: the global, kept.
      assertStringIncludes(e.message, "kept from before the run");
      assertStringIncludes(e.message, `globalThis.${kept}()`);
    }
  },
});

Deno.test("Simulation: a host's node:net socket (node:http's too) or node:child_process fails the run at once, naming it", async () => {
  // A real listener, so that the connection the socket makes stays here.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  const accepting = (async () => {
    for await (const conn of listener) conn.close();
  })();
  try {
    for (
      const [make, named] of [
        ["net", "node:net"],
        ["http", "node:net"],
        ["child_process", "node:child_process"],
      ] as const
    ) {
      const sim = new Simulation({ seed: 44 });
      sim.host("ticker", async () => {
        for (;;) await sleep(0.001);
      });
      sim.client("c", async () => {
        await new Promise((resolve) => {
          if (make === "net") {
            const socket = nodeNet.createConnection({
              host: "127.0.0.1",
              port,
            });
            socket.on("error", resolve);
            socket.on("connect", () => resolve(socket.destroy()));
          } else if (make === "http") {
            nodeHttp.get(`http://127.0.0.1:${port}/`, resolve)
              .on("error", resolve);
          } else nodeChildProcess.execFile("true", [], resolve);
        });
      });
      const e = await assertRejects(() => sim.run(), SimulationError);
      assertStringIncludes(e.message, "client c");
      assertStringIncludes(e.message, `Cannot use ${named}`);
      // What the host started settles, outside the run.
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    listener.close();
    await accepting.catch(() => {});
  }
});

Deno.test("Simulation: a host's node:net or node:http server that listens fails the run at once, naming node:net, and listens on nothing", async () => {
  for (const make of ["net", "http"] as const) {
    let listening = false;
    const sim = new Simulation({ seed: 45 });
    sim.host("ticker", async () => {
      for (;;) await sleep(0.001);
    });
    sim.client("c", async () => {
      const server = make === "net"
        ? nodeNet.createServer(() => {})
        : nodeHttp.createServer(() => {});
      server.on("listening", () => listening = true);
      try {
        server.listen(0, "127.0.0.1");
      } catch {
        // Caught or not, the run fails.
      }
      await sleep(1);
    });
    const e = await assertRejects(() => sim.run(), SimulationError);
    assertStringIncludes(e.message, "client c");
    assertStringIncludes(e.message, "Cannot use node:net");
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(listening, false);
  }
  // Outside the hosts, and after the run, it listens.
  const server = nodeNet.createServer(() => {});
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  await new Promise((r) => server.close(r));
});

Deno.test("Simulation: a host's node:dgram socket that binds (bind(), or send() and connect() binding it) fails the run at once, naming node:dgram, and binds nothing", async () => {
  for (const use of ["bind", "send", "connect"] as const) {
    let listening = false;
    const sim = new Simulation({ seed: 46 });
    sim.host("ticker", async () => {
      for (;;) await sleep(0.001);
    });
    sim.client("c", async () => {
      const socket = nodeDgram.createSocket("udp4");
      socket.on("listening", () => listening = true);
      socket.on("error", () => {});
      try {
        if (use === "bind") socket.bind(0, "127.0.0.1");
        else if (use === "send") socket.send("x", 9, "127.0.0.1");
        else socket.connect(9, "127.0.0.1");
      } catch {
        // Caught or not, the run fails.
      }
      await sleep(1);
    });
    const e = await assertRejects(() => sim.run(), SimulationError);
    assertStringIncludes(e.message, "client c");
    assertStringIncludes(e.message, "Cannot use node:dgram");
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(listening, false, use);
  }
  // Outside the hosts, and after the run, it binds.
  const socket = nodeDgram.createSocket("udp4");
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", r));
  await new Promise<void>((r) => socket.close(r));
});

Deno.test("Simulation: node:crypto's randomBytes() and randomUUID() imported by name read the seed in a host", async () => {
  const run = async (seed: number) => {
    const seen: unknown[] = [];
    const sim = new Simulation({ seed });
    sim.client("c", async () => {
      seen.push([...randomBytes(8)]);
      seen.push(
        await new Promise((r, j) =>
          randomBytes(8, (e, b) => e ? j(e) : r([...b]))
        ),
      );
      // More than one getRandomValues() call takes.
      const big = randomBytes(70000);
      seen.push([...big.subarray(65530, 65542)]);
      seen.push(randomUUID(), randomUUID({ disableEntropyCache: true }));
      await sleep(0.01);
    });
    await sim.run();
    return seen;
  };
  const first = await run(35);
  assertEquals(await run(35), first);
  assertNotEquals(await run(36), first);
  assertEquals(first.length, 5);
});

Deno.test("Simulation: node:crypto's randomInt(), randomFillSync() and randomFill() read the seed in a host, through the module's default export (and require())", async () => {
  const run = async (seed: number) => {
    const seen: unknown[] = [];
    const sim = new Simulation({ seed });
    sim.client("c", async () => {
      seen.push(nodeCrypto.randomInt(1e9), nodeCrypto.randomInt(-5, 5));
      seen.push(
        await new Promise((r) =>
          nodeCrypto.randomInt(10, 1e12, (_e, n) => r(n))
        ),
      );
      const bytes = new Uint8Array(12);
      nodeCrypto.randomFillSync(bytes, 2, 8);
      seen.push([...bytes]);
      const words = new Uint16Array(4);
      nodeCrypto.randomFillSync(words, 1);
      seen.push([...words]);
      const filled = await new Promise<Uint8Array>((r, j) =>
        nodeCrypto.randomFill(new Uint8Array(6), (e, b) => e ? j(e) : r(b))
      );
      seen.push([...filled]);
      // The real checks and errors.
      assertThrows(() => nodeCrypto.randomInt(5, 1), RangeError);
      assertThrows(() => nodeCrypto.randomFillSync(bytes, 20), RangeError);
      await sleep(0.1);
    });
    await sim.run();
    return seen;
  };
  const first = await run(33);
  assertEquals((first[3] as number[]).slice(0, 2), [0, 0]);
  assertEquals((first[3] as number[]).slice(10), [0, 0]);
  assertEquals((first[4] as number[])[0], 0);
  assertEquals(await run(33), first);
  assertNotEquals(await run(34), first);
  // Outside the hosts they are the real ones (and work).
  assert(nodeCrypto.randomInt(10) < 10);
});

Deno.test("Simulation: a host's crypto.subtle calls settle at the same virtual instant on every replay, while other hosts run", async () => {
  const run = async () => {
    const log: string[] = [];
    const sim = new Simulation({ seed: 35 });
    sim.host("ticker", async () => {
      for (;;) await sleep(0.001);
    });
    sim.client("c", async (loop) => {
      const key = await crypto.subtle.importKey(
        "raw",
        new Uint8Array(32),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign"],
      );
      for (let i = 0; i < 10; i++) {
        await crypto.subtle.digest("SHA-256", new Uint8Array(1 << 16));
        await crypto.subtle.sign("HMAC", key, new Uint8Array(1 << 12));
        log.push(loop.time().toFixed(3));
      }
    });
    await sim.run();
    return log.join(" ");
  };
  const first = await run();
  for (let k = 0; k < 3; k++) assertEquals(await run(), first);
});

Deno.test("Simulation: a host's crypto.subtle and file calls started together settle in the order they were made, whichever the machine finishes first", async () => {
  const path = await Deno.makeTempFile({ prefix: "tulip-sim-" });
  try {
    await Deno.writeFile(path, new Uint8Array(16));
    const run = async () => {
      const log: string[] = [];
      const sim = new Simulation({ seed: 39 });
      sim.client("c", async () => {
        // The first is far longer work than the others.
        await Promise.all([
          crypto.subtle.digest("SHA-512", new Uint8Array(32 << 20))
            .then(() => log.push("big digest")),
          crypto.subtle.digest("SHA-256", new Uint8Array(1))
            .then(() => log.push("small digest")),
          Deno.stat(path).then(() => log.push("stat")),
          crypto.subtle.digest("SHA-256", new Uint8Array(2))
            .then(() => log.push("second small digest")),
        ]);
      });
      await sim.run();
      return log;
    };
    for (let k = 0; k < 3; k++) {
      assertEquals(await run(), [
        "big digest",
        "small digest",
        "stat",
        "second small digest",
      ]);
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("Simulation: a host's file calls settle at the same virtual instant on every replay, while other hosts run", async () => {
  const path = await Deno.makeTempFile({ prefix: "tulip-sim-" });
  try {
    await Deno.writeFile(path, new Uint8Array(4 << 20));
    const run = async () => {
      const log: string[] = [];
      const sim = new Simulation({ seed: 36 });
      sim.host("ticker", async () => {
        for (;;) await sleep(0.001);
      });
      sim.client("c", async (loop) => {
        for (let i = 0; i < 5; i++) {
          const bytes = await Deno.readFile(path);
          const info = await Deno.stat(path);
          using file = await Deno.open(path);
          const some = new Uint8Array(1 << 20);
          await file.read(some);
          log.push(`${bytes.length} ${info.size} ${loop.time().toFixed(3)}`);
        }
      });
      await sim.run();
      return log.join(", ");
    };
    const first = await run();
    for (let k = 0; k < 3; k++) assertEquals(await run(), first);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("Simulation: a host's FsFile.lock() that another task or host holds waits for unlock() on the virtual clock, and replays", async () => {
  const path = await Deno.makeTempFile({ prefix: "tulip-sim-" });
  try {
    const run = async () => {
      const log: string[] = [];
      const sim = new Simulation({ seed: 43 });
      sim.host("holder", async (loop) => {
        using file = await Deno.open(path, { read: true, write: true });
        await file.lock(true);
        log.push(`holder locked at ${loop.time().toFixed(3)}`);
        await sleep(2);
        await file.unlock();
      });
      sim.client("c", async (loop) => {
        using a = await Deno.open(path, { read: true, write: true });
        using b = await Deno.open(path, { read: true, write: true });
        await sleep(0.5);
        // Taken by the other host: a task of this one waits too.
        const first = a.lock(true).then(async () => {
          log.push(`a locked at ${loop.time().toFixed(3)}`);
          await sleep(1);
          await a.unlock();
        });
        await b.lock(false);
        log.push(`b locked at ${loop.time().toFixed(3)}`);
        await first;
        assertEquals(await a.tryLock(true), false);
        await b.unlock();
      });
      await sim.run();
      return log;
    };
    const first = await run();
    assertEquals(first.length, 3);
    assertEquals(first[0], "holder locked at 0.000");
    const at = first.slice(1).map((line) => Number(line.split(" at ")[1]));
    assert(at[0] >= 2 && at[0] < 3, first.join(", "));
    // Tried again at most 1 s apart.
    assert(at[1] >= at[0] + 1 && at[1] <= at[0] + 2, first.join(", "));
    assertEquals(await run(), first);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("Simulation: a host's crypto.subtle.generateKey() of an HMAC or AES key reads the seed", async () => {
  const run = async (seed: number) => {
    const keys: string[] = [];
    const sim = new Simulation({ seed });
    sim.client("c", async () => {
      for (
        const algorithm of [
          { name: "HMAC", hash: "SHA-256" },
          { name: "HMAC", hash: "SHA-512", length: 256 },
          { name: "AES-GCM", length: 256 },
          { name: "aes-ctr", length: 128 },
        ]
      ) {
        const key = await crypto.subtle.generateKey(algorithm, true, [
          ...(algorithm.name === "HMAC" ? ["sign"] : ["encrypt"]),
        ] as KeyUsage[]) as CryptoKey;
        const raw = new Uint8Array(await crypto.subtle.exportKey("raw", key));
        keys.push(
          `${JSON.stringify(key.algorithm)} ${key.usages} ${raw.join(".")}`,
        );
      }
      // The real checks and errors.
      await assertRejects(
        () =>
          crypto.subtle.generateKey({ name: "AES-GCM", length: 100 }, true, [
            "encrypt",
          ]),
      );
      const hidden = await crypto.subtle.generateKey(
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign", "verify"],
      );
      assertEquals(hidden.extractable, false);
      assertEquals(hidden.usages, ["sign", "verify"]);
    });
    await sim.run();
    return keys;
  };
  const first = await run(37);
  assertStringIncludes(first[0], `"length":512`);
  assertStringIncludes(first[1], `"length":256`);
  assertEquals(await run(37), first);
  assertNotEquals(await run(38), first);
});
