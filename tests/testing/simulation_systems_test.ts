// The package's own servers under the simulator: the chat example with
// talkers that crash and reconnect, JSON-RPC over HTTP across a partition
// that heals, and the HTTP server with pipelining clients on a slow link.

import { assert, assertEquals } from "@std/assert";
import { simulate, Simulation } from "../../testing/simulation.ts";
import { chatScenario } from "./_sim_chat.ts";

Deno.test("chat example: talkers crash, restart and reconnect; the room delivers in order and forgets the dead", async () => {
  const report = await simulate(40, (sim) => {
    chatScenario(sim, { talkers: ["alice", "bob"], messages: 8 });
  }, {
    faults: { crash: 1, restartAfter: 0.3, hosts: ["alice", "bob"] },
    link: { latency: 0.005, jitter: 0.01 },
    limit: 120,
  });
  assertEquals(report.failures, []);
});

Deno.test("chat example: the faults really hit (talkers crash and restart)", async () => {
  let crashed = 0;
  for (let seed = 0; seed < 10; seed++) {
    const sim = new Simulation({
      seed,
      faults: { crash: 1, restartAfter: 0.3, hosts: ["alice", "bob"] },
      link: { latency: 0.005, jitter: 0.01 },
    });
    chatScenario(sim, { talkers: ["alice", "bob"], messages: 8 });
    await sim.run({ limit: 120 });
    const kinds = sim.trace.map((e) => e.kind);
    if (kinds.includes("crash") && kinds.includes("restart")) crashed++;
  }
  assert(crashed >= 3, `only ${crashed} of 10 runs had a crash`);
});
