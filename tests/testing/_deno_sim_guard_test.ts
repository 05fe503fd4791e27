import { assert, assertEquals } from "@std/assert";
import * as nodeTimers from "node:timers";
import { installSimulationGuards } from "../../testing/_deno_sim_guard.ts";
import { SimTimers } from "../../testing/_sim_timers.ts";
import type { SimNetLoop } from "../../testing/_sim_loop.ts";
import type { SimHost } from "../../testing/_sim_world.ts";
import { NODE_IMMEDIATES } from "../../transports/_deno_internals.ts";

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
