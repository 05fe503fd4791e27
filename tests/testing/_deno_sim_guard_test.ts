import { assert, assertEquals, assertThrows } from "@std/assert";
import nodeChildProcess from "node:child_process";
import nodeCrypto from "node:crypto";
import nodeNet from "node:net";
import * as nodeTimers from "node:timers";
import { installSimulationGuards } from "../../testing/_deno_sim_guard.ts";
import { SimTimers } from "../../testing/_sim_timers.ts";
import type { SimNetLoop } from "../../testing/_sim_loop.ts";
import type { SimHost } from "../../testing/_sim_world.ts";
import {
  NODE_IMMEDIATES,
  NODE_TIMERS,
} from "../../transports/_deno_internals.ts";

/**
 * A host's loop reduced to what its immediates use: callbacks queued until
 * the test runs them, while the machine's own check phases come and go.
 */
function fakeHost() {
  const queued: { fn: () => void; cancelled: boolean }[] = [];
  const loop = {
    isClosed: () => false,
    callSoon(fn: () => void) {
      const entry = { fn, cancelled: false };
      queued.push(entry);
      return { cancel: () => entry.cancelled = true };
    },
  };
  const host = { loop, up: true };
  let inHost = false;
  const errors: unknown[] = [];
  const timers = new SimTimers(
    () => inHost ? loop as unknown as SimNetLoop : undefined,
    () => host as unknown as SimHost,
    (e) => errors.push(e),
  );
  const runQueued = () => {
    for (const entry of queued.splice(0)) if (!entry.cancelled) entry.fn();
  };
  return {
    timers,
    queued,
    errors,
    runQueued,
    inHost: (fn: () => void) => {
      inHost = true;
      try {
        fn();
      } finally {
        inHost = false;
      }
    },
  };
}

/** What node:timers' setImmediate() returns. */
type Immediate = ReturnType<typeof nodeTimers.setImmediate>;

/**
 * Real time, in which the machine's check phases run (an immediate of its
 * own makes each run every immediate queued, unreferenced ones included).
 *
 * @param turns How many check phases.
 */
async function realWait(turns: number): Promise<void> {
  for (let i = 0; i < turns; i++) {
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 1));
  }
}

Deno.test({
  name:
    "Simulation guard: a host's node:timers immediate waits for its loop however many of the machine's check phases pass, and clearImmediate() then still cancels it",
  ignore: NODE_IMMEDIATES === null,
  fn: async () => {
    const { timers, queued, errors, runQueued, inHost } = fakeHost();
    const restore = installSimulationGuards(Math.random, () => 0, timers);
    try {
      const log: unknown[] = [];
      let kept!: Immediate, cleared!: Immediate;
      let disposed!: Immediate;
      inHost(() => {
        kept = nodeTimers.setImmediate(
          function (
            this: unknown,
            ...args: unknown[]
          ) {
            log.push([this === kept, ...args]);
          },
          1,
          "two",
        );
        cleared = nodeTimers.setImmediate(() => log.push("cleared"));
        disposed = nodeTimers.setImmediate(() => log.push("disposed"));
        cleared.unref();
      });
      assertEquals(queued.length, 3);
      await realWait(5);
      assertEquals(log, []);
      assertEquals([kept.hasRef(), cleared.hasRef()], [true, false]);
      nodeTimers.clearImmediate(cleared);
      disposed[Symbol.dispose]();
      assertEquals(queued.map((e) => e.cancelled), [false, true, true]);
      runQueued();
      assertEquals(log, [[true, 1, "two"]]);
      assertEquals(
        [kept.hasRef(), cleared.hasRef(), disposed.hasRef()],
        [false, false, false],
      );
      // Spent: clearing it again does nothing.
      nodeTimers.clearImmediate(kept);
      await realWait(5);
      assertEquals(log, [[true, 1, "two"]]);
      // Left pending when the run ends: cleared with it.
      let left!: Immediate;
      inHost(() => {
        left = nodeTimers.setImmediate(() => log.push("left"));
      });
      restore();
      runQueued();
      await realWait(5);
      assertEquals(log, [[true, 1, "two"]]);
      assert(!left.hasRef());
      assertEquals(errors, []);
    } finally {
      restore();
    }
    // After the run, node's own again.
    const after = await new Promise((r) => nodeTimers.setImmediate(r, "own"));
    assertEquals(after, "own");
  },
});

/**
 * Whether the guards fail to install, naming `named`, while `owner[key]`
 * cannot be written.
 */
function refusedWhileReadOnly(
  owner: object,
  key: string,
  named: string,
  timers: SimTimers,
): void {
  const before = Object.getOwnPropertyDescriptor(owner, key)!;
  Object.defineProperty(owner, key, { ...before, writable: false });
  try {
    assertThrows(
      () => installSimulationGuards(Math.random, () => 0, timers),
      TypeError,
      `cannot replace ${named}.${key},`,
    );
  } finally {
    Object.defineProperty(owner, key, before);
  }
}

Deno.test({
  name:
    "Simulation guard: guards that cannot replace node:timers' Timeout leave no hook behind that would still fail a host's node:child_process",
  ignore: NODE_TIMERS === null,
  fn: async () => {
    const { timers, errors, inHost } = fakeHost();
    refusedWhileReadOnly(
      NODE_TIMERS!.timeout,
      "refresh",
      "node:timers' Timeout.prototype",
      timers,
    );
    // No run holds the guards: what the hooks saw would fail no run.
    const done = Promise.withResolvers<void>();
    inHost(() => {
      nodeChildProcess.execFile("true", [], () => done.resolve());
    });
    await done.promise;
    assertEquals(errors, []);
  },
});

Deno.test("Simulation guard: guards that cannot replace a method of node:timers' Immediate, node:net's Server or node:crypto name its owner", () => {
  const { timers } = fakeHost();
  if (NODE_IMMEDIATES !== null) {
    refusedWhileReadOnly(
      NODE_IMMEDIATES.immediate,
      "ref",
      "node:timers' Immediate.prototype",
      timers,
    );
  }
  refusedWhileReadOnly(
    nodeNet.Server.prototype,
    "listen",
    "node:net's Server.prototype",
    timers,
  );
  refusedWhileReadOnly(nodeCrypto, "randomInt", "node:crypto", timers);
  // And then they install.
  installSimulationGuards(Math.random, () => 0, timers)();
});

Deno.test({
  name:
    "Simulation guard: a run that cannot redefine node:timers' Timeout's own symbol-keyed methods puts back what it replaced, says which, and does not hold the guards",
  ignore: NODE_TIMERS === null,
  fn: async () => {
    // In a process of its own: a property made non-configurable stays so.
    const url = (path: string) =>
      JSON.stringify(new URL(path, import.meta.url).href);
    const code = `
      const { Simulation } = await import(${
      url("../../testing/simulation.ts")
    });
      const { NODE_TIMERS } = await import(${
      url("../../transports/_deno_internals.ts")
    });
      const proto = NODE_TIMERS.timeout;
      const key = NODE_TIMERS.createTimer;
      Object.defineProperty(proto, key, { configurable: false });
      const real = { fetch: globalThis.fetch, random: Math.random };
      const seen = [];
      for (let i = 0; i < 2; i++) {
        const sim = new Simulation({ seed: 1 });
        sim.client("c", () => {});
        try {
          await sim.run();
          seen.push("ran");
        } catch (e) {
          seen.push(e.constructor.name + ": " + e.message.split(",")[0]);
        }
      }
      seen.push(globalThis.fetch === real.fetch, Math.random === real.random);
      console.log(JSON.stringify(seen));
    `;
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-prompt", code],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    assert(output.success, text.decode(output.stderr));
    const refusal =
      "TypeError: Cannot run the simulation: cannot replace node:timers' Timeout.prototype.Symbol(createTimer)";
    assertEquals(JSON.parse(text.decode(output.stdout)), [
      refusal,
      refusal,
      true,
      true,
    ]);
  },
});
