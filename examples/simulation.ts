/**
 * Deterministic simulation: an echo server and its clients on a simulated network whose server crashes and whose links break, run for 200 seeds each — a client that never retries fails on some seeds (printed, with the events that led there), one that times out and retries passes them all.
 *
 * deno run examples/simulation.ts
 *
 * @module
 */

import {
  type EventLoop,
  type Future,
  LineReceiver,
  sleep,
  type Transport,
  waitFor,
} from "../mod.ts";
import { simulate, type Simulation, SimulationError } from "../testing/mod.ts";

const decoder = new TextDecoder();

/** The server: answers each line in upper case. */
function serve(loop: EventLoop) {
  return loop.createServer(
    () =>
      new LineReceiver((line, p) =>
        p.writeLine(decoder.decode(line).toUpperCase())
      ),
    "0.0.0.0",
    7,
  );
}

/** A client connection: `ask(line)` is the next line that comes back. */
class Asker extends LineReceiver {
  #waiting: Future<string>[] = [];
  #loop: EventLoop;

  constructor(loop: EventLoop) {
    super();
    this.#loop = loop;
  }

  ask(line: string): Future<string> {
    const answer = this.#loop.createFuture<string>();
    this.#waiting.push(answer);
    this.writeLine(line);
    return answer;
  }

  override lineReceived(line: Uint8Array): void {
    this.#waiting.shift()?.setResult(decoder.decode(line));
  }

  override connectionLost(exc?: Error): void {
    super.connectionLost(exc);
    const error = exc ?? new Error("connection closed");
    for (const w of this.#waiting.splice(0)) {
      if (!w.done()) w.setException(error); // a timed-out ask was cancelled
    }
  }
}

async function connect(loop: EventLoop): Promise<[Transport, Asker]> {
  return await loop.createConnection(() => new Asker(loop), "server", 7);
}

/** Asks five questions on one connection, trusting the network. */
async function naiveClient(loop: EventLoop): Promise<void> {
  const [transport, asker] = await connect(loop);
  for (let i = 0; i < 5; i++) {
    const answer = await asker.ask(`hello ${i}`);
    if (answer !== `HELLO ${i}`) throw new Error(`wrong answer ${answer}`);
    await sleep(0.5);
  }
  transport.close();
}

/** The same, but every step has a timeout and a failed step is retried. */
async function robustClient(loop: EventLoop): Promise<void> {
  let conn: [Transport, Asker] | null = null;
  for (let i = 0; i < 5; i++) {
    for (;;) {
      try {
        conn ??= await waitFor(connect(loop), 1);
        const answer = await waitFor(conn[1].ask(`hello ${i}`), 1);
        if (answer !== `HELLO ${i}`) throw new Error(`wrong answer ${answer}`);
        break;
      } catch {
        conn?.[0].abort();
        conn = null;
        await sleep(0.2 + Math.random() * 0.3); // seeded, like all of a run
      }
    }
    await sleep(0.5);
  }
  conn?.[0].close();
}

function scenario(client: (loop: EventLoop) => Promise<void>) {
  return (sim: Simulation) => {
    sim.host("server", serve);
    sim.client("client", client);
  };
}

const hardship = {
  faults: {
    crash: 0.2, // server crashes per simulated second...
    restartAfter: 0.5, // ...each restarting after 0.5 s on average
    partition: 0.2,
    repairAfter: 1,
    hosts: ["server", "client"],
  },
  link: { latency: 0.02, jitter: 0.01 },
  connectTimeout: 3,
  retransmitTimeout: 3,
};

const start = performance.now();
try {
  await simulate(200, scenario(naiveClient), hardship);
  console.log("naive client: passed every seed (unexpected)");
} catch (e) {
  if (!(e instanceof SimulationError)) throw e;
  console.log(`naive client: ${e.message.split(". ")[0]}`);
  console.log(`the events before seed ${e.seed} failed:`);
  for (const line of e.events.slice(-6)) console.log(`  ${line}`);
}
const report = await simulate(200, scenario(robustClient), hardship);
console.log(
  `robust client: passed all ${report.runs} seeds (${
    ((performance.now() - start) / 1000).toFixed(1)
  } s for both)`,
);
