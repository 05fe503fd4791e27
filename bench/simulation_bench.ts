// The simulator's speed: a 100-host system making 10,000 connections (how
// many simulated seconds pass per wall second), and the chat example under
// crashes (seeds per second).
//
//   deno bench bench/simulation_bench.ts                # Deno.bench figures
//   deno run bench/simulation_bench.ts --report         # the two headline figures

import type { EventLoop } from "../loop/event_loop.ts";
import { Protocol } from "../protocols/protocol.ts";
import { sleep } from "../tasks/sleep.ts";
import { simulate, Simulation } from "../testing/simulation.ts";
import type { Transport } from "../transports/transport.ts";
import { chatScenario } from "../tests/testing/_sim_chat.ts";

const SERVERS = 10;
const CLIENTS = 90;
const CONNECTIONS = 10_000;
const PER_CLIENT = Math.ceil(CONNECTIONS / CLIENTS);
const request = new Uint8Array(200);
const response = new Uint8Array(2000);

/** Answers each 200-byte request with 2,000 bytes, then closes. */
class Answer extends Protocol {
  #t!: Transport;
  #got = 0;
  override connectionMade(t: Transport) {
    this.#t = t;
  }
  override dataReceived(d: Uint8Array) {
    this.#got += d.length;
    if (this.#got >= request.length) {
      this.#t.write(response);
      this.#t.close();
    }
  }
}

/** Sends a request and waits for the whole answer and the close. */
class Ask extends Protocol {
  got = 0;
  readonly done: Promise<void>;
  #resolve!: () => void;
  constructor() {
    super();
    this.done = new Promise((r) => this.#resolve = r);
  }
  override connectionMade(t: Transport) {
    t.write(request);
  }
  override dataReceived(d: Uint8Array) {
    this.got += d.length;
  }
  override connectionLost() {
    this.#resolve();
  }
}

/** 10 servers, 90 clients, about 10,000 connections; returns the count. */
function manyHosts(sim: Simulation, counter: { n: number }): void {
  for (let s = 0; s < SERVERS; s++) {
    sim.host(`s${s}`, async (loop: EventLoop) => {
      await loop.createServer(() => new Answer(), "0.0.0.0", 80);
    });
  }
  for (let c = 0; c < CLIENTS; c++) {
    sim.client(`c${c}`, async (loop: EventLoop) => {
      // Four connections at a time, each to a random server.
      const worker = async (k: number) => {
        for (let i = k; i < PER_CLIENT; i += 4) {
          const server = `s${Math.floor(Math.random() * SERVERS)}`;
          const [, p] = await loop.createConnection(
            () => new Ask(),
            server,
            80,
          );
          await p.done;
          if (p.got !== response.length) throw new Error(`got ${p.got}`);
          counter.n++;
          await sleep(Math.random() * 0.01);
        }
      };
      await Promise.all([0, 1, 2, 3].map(worker));
    });
  }
  sim.link("s0", "c0", { latency: 0.02 }); // one slow pair, for variety
}

async function runMany(seed: number): Promise<[number, number, number]> {
  const sim = new Simulation({
    seed,
    link: { latency: 0.002, jitter: 0.001 },
  });
  const counter = { n: 0 };
  manyHosts(sim, counter);
  const start = performance.now();
  await sim.run();
  return [sim.time(), (performance.now() - start) / 1000, counter.n];
}

const chatOptions = {
  faults: { crash: 1, restartAfter: 0.3, hosts: ["alice", "bob"] },
  link: { latency: 0.005, jitter: 0.01 },
  limit: 120,
};

function chat(sim: Simulation): void {
  chatScenario(sim, { talkers: ["alice", "bob"], messages: 8 });
}

Deno.bench({
  name: "100 hosts, 10,000 connections (one run)",
  group: "simulation",
  n: 1,
  warmup: 0,
  async fn() {
    await runMany(1);
  },
});

Deno.bench({
  name: "chat example under crashes (one seed)",
  group: "simulation",
  baseline: true,
  async fn() {
    await simulate(1, chat, chatOptions);
  },
});

if (Deno.args.includes("--report")) {
  const [simulated, wall, connections] = await runMany(1);
  console.log(
    `100 hosts, ${connections} connections: ${
      simulated.toFixed(2)
    } simulated s in ${wall.toFixed(2)} wall s = ${
      (simulated / wall).toFixed(2)
    } simulated s per wall s (${
      Math.round(connections / wall)
    } connections per wall s)`,
  );
  const seeds = 500;
  const start = performance.now();
  await simulate(seeds, chat, chatOptions);
  const took = (performance.now() - start) / 1000;
  console.log(
    `chat under crashes: ${seeds} seeds in ${took.toFixed(2)} s = ${
      Math.round(seeds / took)
    } seeds per s`,
  );
}
