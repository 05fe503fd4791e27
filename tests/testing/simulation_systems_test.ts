// The package's own servers under the simulator: the chat example with
// talkers that crash and reconnect, JSON-RPC over HTTP across a partition
// that heals, and the HTTP server with pipelining clients on a slow link.

import { assert, assertEquals } from "@std/assert";
import { TimeoutError } from "../../futures/errors.ts";
import type { EventLoop } from "../../loop/event_loop.ts";
import { HttpClientProtocol } from "../../http/http_client_protocol.ts";
import { HttpServerProtocol } from "../../http/http_server_protocol.ts";
import { HttpTransport } from "../../http/http_transport.ts";
import { jsonRpcHttpHandler } from "../../jsonrpc/json_rpc_http_handler.ts";
import { JsonRpcProtocol } from "../../jsonrpc/json_rpc_protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import { waitFor } from "../../tasks/wait_for.ts";
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

// ---- JSON-RPC over HTTP across a partition ---------------------------

/** One JSON-RPC-over-HTTP connection, PEP 3153's stack. */
async function rpcConnect(loop: EventLoop): Promise<
  { http: HttpClientProtocol; rpc: JsonRpcProtocol }
> {
  const [, http] = await waitFor(
    loop.createConnection(() => new HttpClientProtocol(), "api", 8080),
    2,
  );
  const transport = new HttpTransport(http, {
    path: "/rpc",
    headers: { "content-type": "application/json" },
  });
  const rpc = new JsonRpcProtocol({}, { framing: "raw" });
  transport.setProtocol(rpc);
  rpc.connectionMade(transport);
  return { http, rpc };
}

function rpcScenario(
  sim: Simulation,
  log: { retries: number; results: number[] },
) {
  let served = 0;
  sim.host("api", async (loop) => {
    await loop.createServer(
      () =>
        new HttpServerProtocol(jsonRpcHttpHandler({
          add: ([a, b]: number[]) => {
            served++;
            return a + b;
          },
        })),
      "0.0.0.0",
      8080,
    );
  });
  sim.host("operator", async () => {
    await sleep(1 + Math.random());
    sim.partition("app", "api");
    await sleep(3);
    sim.repair("app", "api");
  });
  sim.client("app", async (loop) => {
    let conn: { http: HttpClientProtocol; rpc: JsonRpcProtocol } | null = null;
    for (let i = 0; i < 20; i++) {
      for (;;) {
        try {
          conn ??= await rpcConnect(loop);
          log.results.push(
            await conn.rpc.call<number>("add", [i, i], { timeout: 0.5 }),
          );
          break;
        } catch (e) {
          if (!(e instanceof TimeoutError) && !(e instanceof Error)) throw e;
          // Timed out or lost: drop the connection, back off, retry.
          log.retries++;
          conn?.rpc.transport?.abort();
          conn?.http.transport?.abort();
          conn = null;
          await sleep(0.25);
        }
      }
      await sleep(0.2);
    }
    conn?.rpc.transport?.close();
    conn?.http.close();
    if (served < 20) throw new Error(`the server answered ${served} calls`);
  });
}

Deno.test("JSON-RPC over HTTP: calls time out across a partition, are retried, and all succeed once it heals", async () => {
  const report = await simulate(20, (sim) => {
    rpcScenario(sim, { retries: 0, results: [] });
  }, { link: { latency: 0.01, jitter: 0.005 }, limit: 300 });
  assertEquals(report.failures, []);
  const log = { retries: 0, results: [] as number[] };
  const sim = new Simulation({ seed: 5 });
  rpcScenario(sim, log);
  await sim.run({ limit: 300 });
  assertEquals(log.results, Array.from({ length: 20 }, (_, i) => 2 * i));
  assert(log.retries > 0, "no call was retried");
  assert(sim.trace.some((e) => e.kind === "partition"));
});

// ---- The HTTP server, pipelined, on a slow link ----------------------

Deno.test("HTTP server: pipelined requests on a slow link are answered in order and in full", async () => {
  const body = (n: number) => `${n}:`.padEnd(2000 + n * 100, "*");
  const report = await simulate(10, (sim) => {
    sim.host("web", async (loop) => {
      await loop.createServer(
        () =>
          new HttpServerProtocol(async (request) => {
            const n = Number(new URL(request.url).searchParams.get("n"));
            await sleep(Math.random() * 0.05);
            return new Response(body(n));
          }),
        "0.0.0.0",
        80,
      );
    });
    sim.client("browser", async (loop) => {
      const [, http] = await loop.createConnection(
        () => new HttpClientProtocol(),
        "web",
        80,
      );
      const start = loop.time();
      const answers = Array.from(
        { length: 16 },
        (_, n) => http.request(new Request(`http://web/?n=${n}`)),
      );
      for (let n = 0; n < 16; n++) {
        const response = await answers[n];
        assertEquals(response.status, 200);
        assertEquals(await response.text(), body(n));
      }
      // About 44 KB of bodies through 20 KB/s.
      const took = loop.time() - start;
      if (took < 2) throw new Error(`the slow link took only ${took} s`);
      http.close();
      await http.waitClosed();
    });
    sim.link("web", "browser", {
      latency: 0.1,
      jitter: 0.02,
      bandwidth: 20_000,
    });
  }, { receiveBuffer: 8192 });
  assertEquals(report.runs, 10);
});

Deno.test("chat example: a seed replays the same run, event for event", async () => {
  const traces: string[] = [];
  for (let i = 0; i < 2; i++) {
    const sim = new Simulation({
      seed: 11,
      faults: { crash: 1, restartAfter: 0.3, hosts: ["alice", "bob"] },
      link: { latency: 0.005, jitter: 0.01 },
    });
    chatScenario(sim, { talkers: ["alice", "bob"], messages: 8 });
    await sim.run({ limit: 120 });
    traces.push(JSON.stringify(sim.trace));
  }
  assertEquals(traces[0], traces[1]);
});
