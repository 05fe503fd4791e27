// The package's own protocols as a user testing a distributed service
// would run them under the simulator: the HTTP server's timeouts on the
// virtual clock, JSON-RPC both ways across faults, streams and the
// AsyncEngine facade, structured concurrency inside hosts, a graceful
// shutdown, and a server host that crashes while its clients retry. Each
// scenario is checked for replaying event for event from its seed.

import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import { TimeoutError } from "../../futures/errors.ts";
import { AsyncEngine } from "../../facade/async_engine.ts";
import type { Connection } from "../../facade/connection.ts";
import type { EventLoop, Server } from "../../loop/event_loop.ts";
import { HttpClientProtocol } from "../../http/http_client_protocol.ts";
import { HttpServerProtocol } from "../../http/http_server_protocol.ts";
import { JsonRpcError } from "../../jsonrpc/json_rpc_error.ts";
import { JsonRpcProtocol } from "../../jsonrpc/json_rpc_protocol.ts";
import { Protocol } from "../../protocols/protocol.ts";
import { openConnection } from "../../streams/open_connection.ts";
import { startServer } from "../../streams/start_server.ts";
import type { StreamReader } from "../../streams/stream_reader.ts";
import type { StreamWriter } from "../../streams/stream_writer.ts";
import { Queue } from "../../tasks/queue.ts";
import { withTaskGroup } from "../../tasks/task_group.ts";
import { timeout } from "../../tasks/timeout.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import type { Transport } from "../../transports/transport.ts";
import { sleep } from "../../tasks/sleep.ts";
import { Simulation } from "../../testing/simulation.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A raw client: records what arrives and when, and how it ended. */
class Raw extends Protocol {
  transport: Transport | null = null;
  received = "";
  lostAt = -1;
  lost: Error | undefined | null = null;
  eofAt = -1;
  constructor(readonly loop: EventLoop) {
    super();
  }
  override connectionMade(t: Transport): void {
    this.transport = t;
  }
  override dataReceived(data: Uint8Array): void {
    this.received += decoder.decode(data);
  }
  override eofReceived(): boolean {
    this.eofAt = this.loop.time();
    return false;
  }
  override connectionLost(exc?: Error): void {
    this.lostAt = this.loop.time();
    this.lost = exc;
  }
}

/** Runs `setup` on a fresh simulation of `seed`, returns its trace. */
async function replay(
  seed: number,
  setup: (sim: Simulation) => () => unknown,
): Promise<{ trace: string; result: string }> {
  const sim = new Simulation({ seed });
  const result = setup(sim);
  await sim.run({ limit: 600 });
  return { trace: JSON.stringify(sim.trace), result: JSON.stringify(result()) };
}

/** The same seed replays the run; another seed gives another. */
async function assertDeterministic(
  setup: (sim: Simulation) => () => unknown,
): Promise<void> {
  const a = await replay(3, setup);
  const b = await replay(3, setup);
  assertEquals(a.trace, b.trace);
  assertEquals(a.result, b.result);
  const c = await replay(4, setup);
  assert(a.trace !== c.trace, "seeds 3 and 4 gave the same trace");
}

/**
 * Runs `setup` on seed 1 and gives `check` its result (through JSON, as
 * the replays compare it), then checks that the runs replay.
 */
async function checkScenario(
  setup: (sim: Simulation) => () => unknown,
  check: (result: ReturnType<typeof JSON.parse>) => void,
): Promise<void> {
  const { result } = await replay(1, setup);
  check(JSON.parse(result));
  await assertDeterministic(setup);
}

// ---- The HTTP server's own timeouts, on the virtual clock -------------

function httpServer(
  sim: Simulation,
  options: ConstructorParameters<typeof HttpServerProtocol>[1],
  body = "ok",
) {
  sim.host("web", async (loop) => {
    await loop.createServer(
      () => new HttpServerProtocol(() => new Response(body), options),
      "0.0.0.0",
      80,
    );
  });
}

function headersTimeoutScenario(sim: Simulation) {
  httpServer(sim, { headersTimeout: 2, keepAliveTimeout: 100 });
  const log = { start: 0, raw: null as Raw | null };
  sim.client("slowloris", async (loop) => {
    const [, raw] = await loop.createConnection(() => new Raw(loop), "web", 80);
    log.raw = raw;
    log.start = loop.time();
    raw.transport!.write(encoder.encode("GET / HTTP/1.1\r\nHost: web\r\n"));
    while (raw.lost === null) await sleep(0.1 + Math.random() * 0.1);
  });
  sim.link("web", "slowloris", { latency: 0.01, jitter: 0.005 });
  return () => ({
    received: log.raw!.received.split("\r\n")[0],
    lost: log.raw!.lost === undefined ? "clean" : String(log.raw!.lost),
    after: log.raw!.lostAt - log.start,
  });
}

Deno.test("HTTP server under simulation: headersTimeout answers 408 and closes after virtual seconds", async () => {
  await checkScenario(headersTimeoutScenario, (r) => {
    assertEquals(r.received, "HTTP/1.1 408 Request Timeout");
    assertEquals(r.lost, "clean");
    assert(
      r.after >= 2 && r.after < 2 + 2 / 8 + 0.05,
      `closed after ${r.after} s`,
    );
  });
});

function keepAliveScenario(sim: Simulation) {
  httpServer(sim, { keepAliveTimeout: 3 });
  const log = { answered: 0, closedAfter: -1, status: 0 };
  sim.client("browser", async (loop) => {
    const [, http] = await loop.createConnection(
      () => new HttpClientProtocol(),
      "web",
      80,
    );
    const response = await http.request(new Request("http://web/"));
    log.status = response.status;
    await response.text();
    log.answered = loop.time();
    await http.waitClosed();
    log.closedAfter = loop.time() - log.answered;
  });
  return () => log;
}

Deno.test("HTTP server under simulation: keepAliveTimeout closes an idle connection after virtual seconds", async () => {
  await checkScenario(keepAliveScenario, (r) => {
    assertEquals(r.status, 200);
    // The server's ticker fires a timeout at most an eighth of it late.
    assert(
      r.closedAfter >= 3 - 0.01 && r.closedAfter < 3 + 3 / 8 + 0.01,
      `closed after ${r.closedAfter} s`,
    );
  });
});

function writeTimeoutScenario(sim: Simulation) {
  const log = { lostAt: -1, lost: "", heldAt: -1 };
  sim.host("web", async (loop) => {
    await loop.createServer(
      () => {
        const p = new HttpServerProtocol(
          () => new Response("x".repeat(1_000_000)),
          { writeTimeout: 2 },
        );
        const lost = p.connectionLost.bind(p);
        p.connectionLost = (exc?: Error) => {
          log.lostAt = loop.time();
          log.lost = exc === undefined ? "clean" : exc.name;
          lost(exc);
        };
        return p;
      },
      "0.0.0.0",
      80,
    );
  });
  sim.client("reader", async (loop) => {
    const [, raw] = await loop.createConnection(
      () => new Raw(loop),
      "web",
      80,
    );
    raw.transport!.write(encoder.encode("GET / HTTP/1.1\r\nHost: web\r\n\r\n"));
    await sleep(0.5);
    sim.hold("web", "reader");
    log.heldAt = loop.time();
    await sleep(10);
    sim.release("web", "reader");
    while (raw.lost === null) await sleep(0.1);
  });
  // 1 MB through 100 kB/s: the hold comes mid-answer.
  sim.link("web", "reader", { bandwidth: 100_000 });
  return () => log;
}

Deno.test("HTTP server under simulation: writeTimeout aborts a connection whose link is held", async () => {
  await checkScenario(writeTimeoutScenario, (r) => {
    assert(r.lostAt >= 0, "the server never lost the connection");
    const after = r.lostAt - r.heldAt;
    // The last acknowledgement before the hold came a latency before it.
    assert(
      after >= 2 - 0.002 && after < 2 + 2 / 8 + 0.01,
      `aborted ${after} s after the hold`,
    );
  });
});

void assertInstanceOf;
void TimeoutError;

// ---- JSON-RPC over TCP, both ways, batches, a partition ---------------

function rpcScenario(sim: Simulation) {
  const log = {
    results: [] as unknown[],
    batch: [] as unknown[],
    timedOutAfter: -1,
    timeoutError: "",
    afterRepair: 0 as unknown,
  };
  sim.host("api", async (loop) => {
    await loop.createServer(
      () =>
        new JsonRpcProtocol({
          // Calls the caller back on the same connection.
          async square([x]: number[], ctx) {
            await sleep(Math.random() * 0.01);
            return await ctx.protocol!.call<number>("times", [x, x], {
              timeout: 1,
            });
          },
          add: ([a, b]: number[]) => a + b,
        }),
      "0.0.0.0",
      4000,
    );
  });
  sim.client("app", async (loop) => {
    const [transport, rpc] = await loop.createConnection(
      () => new JsonRpcProtocol({ times: ([a, b]: number[]) => a * b }),
      "api",
      4000,
    );
    for (let i = 0; i < 5; i++) {
      log.results.push(await rpc.call("square", [i], { timeout: 2 }));
    }
    log.batch = await rpc.batch([
      { method: "add", params: [1, 2] },
      { method: "nope" },
      { method: "add", params: [3, 4], notify: true },
      { method: "square", params: [7] },
    ], { timeout: 2 });
    sim.partition("app", "api");
    const start = loop.time();
    try {
      await rpc.call("add", [1, 1], { timeout: 0.5 });
    } catch (e) {
      log.timeoutError = (e as Error).name;
      log.timedOutAfter = loop.time() - start;
    }
    sim.repair("app", "api");
    // The connection lived through the partition (its bytes waited).
    log.afterRepair = await rpc.call("add", [20, 22], { timeout: 2 });
    transport.close();
  });
  sim.link("api", "app", { latency: 0.02, jitter: 0.01 });
  return () =>
    log.batch.map((r) => r instanceof JsonRpcError ? `error ${r.code}` : r)
      .concat([log]);
}

Deno.test("JSON-RPC under simulation: calls both ways, a batch, a call timing out across a partition on the virtual clock", async () => {
  await checkScenario(rpcScenario, (r) => {
    const log = r.pop();
    assertEquals(r, [3, "error -32601", null, 49]);
    assertEquals(log.results, [0, 1, 4, 9, 16]);
    assertEquals(log.timeoutError, "TimeoutError");
    assert(
      Math.abs(log.timedOutAfter - 0.5) < 1e-9,
      `timed out after ${log.timedOutAfter} s`,
    );
    assertEquals(log.afterRepair, 42);
  });
});

function crashScenario(sim: Simulation) {
  const log = { answers: [] as string[], errors: [] as string[] };
  sim.host("db", async () => {
    await startServer(
      async (reader, writer) => {
        for (;;) {
          const line = await reader.readline();
          if (line.length === 0) break;
          writer.write(encoder.encode(decoder.decode(line).toUpperCase()));
          await writer.drain();
        }
        writer.close();
      },
      "0.0.0.0",
      5432,
    );
  });
  sim.host("chaos", async () => {
    await sleep(0.3);
    sim.crash("db");
    await sleep(1);
    sim.restart("db");
  });
  sim.client("app", async () => {
    let conn: [StreamReader, StreamWriter] | null = null;
    for (let i = 0; i < 30; i++) {
      for (;;) {
        try {
          conn ??= await openConnection("db", 5432);
          const [reader, writer] = conn;
          writer.write(encoder.encode(`q${i}\n`));
          const line = await waitFor(reader.readline(), 0.5);
          if (line.length === 0) throw new Error("end of stream");
          log.answers.push(decoder.decode(line).trim());
          break;
        } catch (e) {
          log.errors.push((e as Error).name);
          conn?.[1].transport.abort();
          conn = null;
          await sleep(0.2);
        }
      }
      await sleep(0.05);
    }
    conn?.[1].close();
    await conn?.[1].waitClosed();
  });
  sim.link("db", "app", { latency: 0.005, jitter: 0.005 });
  return () => log;
}

Deno.test("streams under simulation: the server host crashes and restarts while its client retries; errors are a network's", async () => {
  await checkScenario(crashScenario, (r) => {
    assertEquals(r.answers, Array.from({ length: 30 }, (_, i) => `Q${i}`));
    assert(r.errors.length > 0, "no error: the crash did not hit");
    for (const name of r.errors) {
      assert(
        ["ConnectionReset", "ConnectionRefused", "BrokenPipe", "TimeoutError"]
          .includes(name),
        `a retry saw ${name}: ${r.errors}`,
      );
    }
  });
});

Deno.test("Simulation streams: a connect to a host that is down sends its SYN again, and connects once the host is back, as TCP does", async () => {
  const sim = new Simulation({ seed: 1 });
  sim.host("db", async (loop) => {
    await loop.createServer(() => new Protocol(), "0.0.0.0", 5432);
  });
  let connectedAt = -1;
  sim.client("app", async (loop) => {
    sim.crash("db");
    loop.callLater(2.5, () => sim.restart("db"));
    const [transport] = await loop.createConnection(
      () => new Protocol(),
      "db",
      5432,
    );
    connectedAt = loop.time();
    transport.close();
  });
  await sim.run({ limit: 100 });
  // SYNs at 0, 1, 3 and 7 s: the one at 3 s finds the host back.
  assert(
    connectedAt >= 3 && connectedAt < 3.1,
    `connected at ${connectedAt} s`,
  );
  assert(!sim.trace.some((e) => e.kind === "connect-timeout"));
});

// ---- The AsyncEngine facade inside hosts ------------------------------

function engineScenario(sim: Simulation) {
  const log = { got: [] as string[], failure: "", failedAfter: -1 };
  sim.host("srv", (loop) => {
    const engine = new AsyncEngine(loop);
    engine.listen("0.0.0.0", 23, {
      success: (listener) => {
        const serve = () => {
          engine.acceptThenExpectLine(listener, "HELLO", {
            success: ([conn, line]: [Connection, string]) => {
              serve();
              engine.writeLine(conn, `WELCOME ${line}`, {
                success: () => conn.close(),
                failure: () => conn.close(),
              });
            },
            failure: () => {},
          });
        };
        serve();
      },
      failure: (e) => {
        throw e;
      },
    });
  });
  sim.client("cli", async (loop) => {
    const engine = new AsyncEngine(loop);
    for (let i = 0; i < 3; i++) {
      const answer = loop.createFuture<string>();
      engine.connectThenWriteLine("srv", 23, "HELLO", {
        success: ([conn]: [Connection, number]) => {
          engine.readUntil(conn, "\n", {
            success: (line) => {
              conn.close();
              answer.setResult(decoder.decode(line).trim());
            },
            failure: (e) => answer.setException(e),
            timeout: 1,
          });
        },
        failure: (e: unknown) => answer.setException(e),
      });
      log.got.push(await answer);
    }
    // The server's host goes quiet: the callback's timeout, in virtual
    // seconds, fails the operation with a TimeoutError.
    sim.hold("cli", "srv");
    const start = loop.time();
    const failed = loop.createFuture<string>();
    engine.connect("srv", 23, {
      success: () => failed.setResult("connected"),
      failure: (e) => failed.setResult((e as Error).name),
      timeout: 2,
    });
    log.failure = await failed;
    log.failedAfter = loop.time() - start;
    sim.release("cli", "srv");
  });
  sim.link("srv", "cli", { latency: 0.01, jitter: 0.01 });
  return () => log;
}

Deno.test("AsyncEngine under simulation: callbacks run on the host's loop; a callback's timeout is virtual time", async () => {
  await checkScenario(engineScenario, (r) => {
    assertEquals(r.got, ["WELCOME HELLO", "WELCOME HELLO", "WELCOME HELLO"]);
    assertEquals(r.failure, "TimeoutError");
    assert(Math.abs(r.failedAfter - 2) < 1e-9, `failed after ${r.failedAfter}`);
  });
});

// ---- TaskGroup, timeout() and Queue inside hosts; shutdown({ grace }) --

function fanOutScenario(sim: Simulation) {
  const log = {
    results: [] as string[],
    scoped: "",
    shutdownTook: -1,
    lateStatus: "",
  };
  let server: Server | null = null;
  for (const name of ["w1", "w2", "w3"]) {
    sim.host(name, async (loop) => {
      server = await loop.createServer(
        () =>
          new HttpServerProtocol(async () => {
            await sleep(0.05 + Math.random() * 0.05);
            return new Response(name);
          }),
        "0.0.0.0",
        80,
      );
    });
  }
  // w3's server: the last one made, shut down with a grace period while a
  // slow request is in flight.
  sim.client("boss", async (loop) => {
    const queue = new Queue<string>();
    for (const name of ["w1", "w2", "w3", "w1", "w2", "w3"]) {
      queue.putNowait(name);
    }
    const fetchFrom = async (name: string) => {
      const [, http] = await loop.createConnection(
        () => new HttpClientProtocol(),
        name,
        80,
      );
      try {
        return await (await http.request(new Request(`http://${name}/`)))
          .text();
      } finally {
        http.close();
        await http.waitClosed();
      }
    };
    const work = async () => {
      while (!queue.empty()) {
        const name = queue.getNowait();
        log.results.push(await fetchFrom(name));
      }
    };
    // Three workers: two tasks of the group, and the block itself.
    await withTaskGroup(async (tg) => {
      tg.createTask(work);
      tg.createTask(work);
      await work();
    });
    log.results.sort();
    // A scope's deadline across a partition: cancelled, then TimeoutError.
    sim.partition("boss", "w2");
    try {
      await timeout(0.5).run(fetchFrom("w2"));
    } catch (e) {
      log.scoped = `${(e as Error).name} at ${loop.time().toFixed(3)}`;
    }
    sim.repair("boss", "w2");
  });
  return () => {
    void server;
    return log;
  };
}

Deno.test("TaskGroup, Queue and timeout() under simulation: workers fan out HTTP requests; a scope times out across a partition", async () => {
  await checkScenario(fanOutScenario, (r) => {
    assertEquals(r.results, ["w1", "w1", "w2", "w2", "w3", "w3"]);
    assert(r.scoped.startsWith("TimeoutError"), r.scoped);
  });
});

function shutdownScenario(sim: Simulation) {
  const log = {
    statuses: [] as string[],
    shutdownAt: -1,
    closedAt: -1,
    slowError: "",
  };
  sim.host("web", async (loop) => {
    const server = await loop.createServer(
      () =>
        new HttpServerProtocol(async (request) => {
          const wait = Number(new URL(request.url).searchParams.get("wait"));
          await sleep(wait);
          return new Response(`waited ${wait}`);
        }),
      "0.0.0.0",
      80,
    );
    await sleep(1);
    log.shutdownAt = loop.time();
    await server.shutdown({ grace: 2 });
    log.closedAt = loop.time();
  });
  sim.client("browser", async (loop) => {
    const ask = async (wait: number) => {
      const [, http] = await loop.createConnection(
        () => new HttpClientProtocol(),
        "web",
        80,
      );
      try {
        const response = await http.request(
          new Request(`http://web/?wait=${wait}`),
        );
        log.statuses.push(
          `${response.status} ${await response.text()} ${
            response.headers.get("connection")
          }`,
        );
      } catch (e) {
        log.slowError = (e as Error).name;
      } finally {
        http.close();
      }
    };
    await Promise.all([ask(1.5), ask(10)]);
    // After the shutdown, nothing listens.
    try {
      await loop.createConnection(() => new Protocol(), "web", 80);
    } catch (e) {
      log.statuses.push((e as Error).name);
    }
  });
  sim.link("web", "browser", { latency: 0.01, jitter: 0.01 });
  return () => log;
}

Deno.test("Server.shutdown({ grace }) under simulation: the request that finishes in time is answered with Connection: close, the late one is cut at the grace period", async () => {
  await checkScenario(shutdownScenario, (r) => {
    assertEquals(r.statuses, ["200 waited 1.5 close", "ConnectionRefused"]);
    assertEquals(r.slowError, "ConnectionReset");
    assert(
      Math.abs(r.closedAt - r.shutdownAt - 2) < 0.05,
      `closed ${r.closedAt - r.shutdownAt} s after shutdown began`,
    );
  });
});

Deno.test("Simulation streams: a connection reset as its handshake completes is made, then lost with ConnectionReset, as a socket reset before its first read", async () => {
  const sim = new Simulation({ seed: 1, link: { latency: 0.01 } });
  sim.host("db", async (loop) => {
    await loop.createServer(() => new Protocol(), "0.0.0.0", 5432);
  });
  // The server's host crashes while its SYN-ACK is on the wire: its reset
  // follows the SYN-ACK.
  sim.host("chaos", (loop) => {
    loop.callLater(0.01, () => sim.crash("db"));
  });
  const seen: string[] = [];
  sim.client("app", async (loop) => {
    const [, raw] = await loop.createConnection(
      () => new Raw(loop),
      "db",
      5432,
    );
    seen.push(`made ${raw.transport !== null}`);
    while (raw.lost === null) await sleep(0.01);
    seen.push(`lost ${raw.lost?.name}`);
  });
  await sim.run({ limit: 10 });
  assertEquals(seen, ["made true", "lost ConnectionReset"]);
});

Deno.test("HttpClientProtocol under simulation: a connection reset as it is made refuses a request as lost, and waitClosed() ends", async () => {
  const sim = new Simulation({ seed: 1, link: { latency: 0.01 } });
  httpServer(sim, {});
  sim.host("chaos", (loop) => {
    loop.callLater(0.01, () => sim.crash("web"));
  });
  const seen: string[] = [];
  sim.client("app", async (loop) => {
    const [, http] = await loop.createConnection(
      () => new HttpClientProtocol(),
      "web",
      80,
    );
    try {
      await http.request(new Request("http://web/"));
    } catch (e) {
      seen.push(`${(e as Error).name}: ${(e as Error).message}`);
    }
    await http.waitClosed();
    seen.push("closed");
  });
  await sim.run({ limit: 10 });
  // The reset is found before the request goes.
  assertEquals(seen, [
    "InvalidStateError: Cannot send an HTTP request: the connection was lost",
    "closed",
  ]);
});

// ---- Everything at once, under random faults --------------------------

function mixedScenario(sim: Simulation, errors: Map<string, number>) {
  const note = (e: unknown) => {
    const name = (e as Error)?.name ?? typeof e;
    errors.set(name, (errors.get(name) ?? 0) + 1);
  };
  sim.host("web", async (loop) => {
    await loop.createServer(
      () =>
        new HttpServerProtocol(async (request) => {
          const url = new URL(request.url);
          if (url.pathname === "/stream") {
            let i = 0;
            return new Response(
              new ReadableStream({
                async pull(c) {
                  await sleep(0.05);
                  if (i++ > 10) c.close();
                  else c.enqueue(encoder.encode("z".repeat(1000)));
                },
              }),
            );
          }
          if (request.method === "POST") {
            return new Response(await request.text());
          }
          await sleep(Math.random() * 0.2);
          return new Response("y".repeat(Number(url.searchParams.get("n"))));
        }, { keepAliveTimeout: 0.5, headersTimeout: 1, writeTimeout: 1 }),
      "0.0.0.0",
      80,
    );
    await loop.createServer(
      () =>
        new JsonRpcProtocol({
          echo: async (p) => {
            await sleep(Math.random() * 0.1);
            return p;
          },
          back: async (_p, ctx) =>
            await ctx.protocol!.call("id", [1], { timeout: 0.5 }),
        }),
      "0.0.0.0",
      81,
    );
  });
  for (const name of ["a", "b"]) {
    sim.client(name, async (loop) => {
      let http: HttpClientProtocol | null = null;
      let rpc: JsonRpcProtocol | null = null;
      for (let i = 0; i < 10; i++) {
        try {
          if (http?.transport == null) {
            [, http] = await waitFor(
              loop.createConnection(() => new HttpClientProtocol(), "web", 80),
              2,
            );
          }
          const request = i % 3 === 0
            ? new Request(`http://web/?n=${i * 500}`)
            : i % 3 === 1
            ? new Request("http://web/", {
              method: "POST",
              body: "x".repeat(i),
            })
            : new Request("http://web/stream");
          const response = await waitFor(http.request(request), 2);
          await waitFor(response.text(), 3);
        } catch (e) {
          note(e);
          http?.transport?.abort();
          http = null;
          await sleep(0.1);
        }
        try {
          if (rpc?.transport == null) {
            [, rpc] = await waitFor(
              loop.createConnection(
                () => new JsonRpcProtocol({ id: ([x]: number[]) => x }),
                "web",
                81,
              ),
              2,
            );
          }
          await rpc.call("echo", [i], { timeout: 1 });
          await rpc.batch(
            [{ method: "back" }, { method: "echo", params: [1] }],
            {
              timeout: 1,
            },
          );
        } catch (e) {
          note(e);
          rpc?.transport?.abort();
          rpc = null;
          await sleep(0.1);
        }
      }
      http?.transport?.close();
      rpc?.transport?.close();
    });
  }
}

Deno.test("HTTP and JSON-RPC under random crashes, partitions, holds and resets: no host reports an error, the errors are a network's, each seed replays", async () => {
  const options = {
    failOnError: true,
    faults: {
      crash: 0.2,
      restartAfter: 0.5,
      partition: 0.3,
      repairAfter: 0.5,
      hold: 0.3,
      reset: 0.5,
    },
    link: { latency: 0.01, jitter: 0.01, bandwidth: 200_000 },
    retransmitTimeout: 3,
    connectTimeout: 3,
  };
  const all = new Map<string, number>();
  for (let seed = 0; seed < 8; seed++) {
    const runs: string[] = [];
    for (let k = 0; k < 2; k++) {
      const errors = new Map<string, number>();
      const sim = new Simulation({ seed, ...options });
      mixedScenario(sim, errors);
      await sim.run({ limit: 600 });
      runs.push(JSON.stringify([sim.trace, [...errors]]));
      for (const [name, n] of errors) all.set(name, (all.get(name) ?? 0) + n);
    }
    assertEquals(runs[0], runs[1], `seed ${seed} did not replay`);
  }
  assert((all.get("ConnectionReset") ?? 0) > 0, "no fault hit");
  for (const name of all.keys()) {
    assert(
      [
        "ConnectionReset",
        "ConnectionRefused",
        "TimedOut",
        "TimeoutError",
        "BrokenPipe",
        // A request or call on a connection found lost.
        "InvalidStateError",
      ].includes(name),
      `a client saw ${name}: ${[...all]}`,
    );
  }
});

// ---- Framing over a slow link with small windows ----------------------

for (const framing of ["newline", "length"] as const) {
  Deno.test(`JSON-RPC under simulation: ${framing} framing carries large answers through a slow link with small windows, cut anywhere`, async () => {
    const scenario = (sim: Simulation) => {
      const lengths: number[] = [];
      sim.host("s", async (loop) => {
        await loop.createServer(
          () =>
            new JsonRpcProtocol({ big: ([n]: number[]) => "q".repeat(n) }, {
              framing,
            }),
          "0.0.0.0",
          1,
        );
      });
      sim.client("c", async (loop) => {
        const [t, rpc] = await loop.createConnection(
          () => new JsonRpcProtocol({}, { framing }),
          "s",
          1,
        );
        const answers = await Promise.all(
          [1, 100_000, 5, 70_000, 3].map((n) =>
            rpc.call<string>("big", [n], { timeout: 30 })
          ),
        );
        lengths.push(...answers.map((a) => a.length));
        t.close();
      });
      sim.link("s", "c", { bandwidth: 50_000, jitter: 0.01 });
      return () => lengths;
    };
    const sim = new Simulation({ seed: 1, receiveBuffer: 4096 });
    const lengths = scenario(sim)();
    await sim.run({ limit: 60 });
    assertEquals(lengths, [1, 100_000, 5, 70_000, 3]);
    // About 175 kB through 50 kB/s.
    assert(sim.time() > 3, `took ${sim.time()} s`);
    await assertDeterministic(scenario);
  });
}

// ---- A request's own signal, as fetch() honours it --------------------

Deno.test("HttpClientProtocol under simulation: a Request's signal aborted before its response head fails it with the signal's reason, on the virtual clock", async () => {
  const sim = new Simulation({ seed: 1 });
  sim.host("web", async (loop) => {
    await loop.createServer(
      () =>
        new HttpServerProtocol(async (request) => {
          await sleep(Number(new URL(request.url).searchParams.get("wait")));
          return new Response("late");
        }),
      "0.0.0.0",
      80,
    );
  });
  const seen: string[] = [];
  sim.client("app", async (loop) => {
    const connect = async () =>
      (await loop.createConnection(() => new HttpClientProtocol(), "web", 80))[
        1
      ];
    let http = await connect();
    // Aborted already: nothing is sent, the connection stays usable.
    const controller = new AbortController();
    controller.abort(new Error("not wanted"));
    try {
      await http.request(
        new Request("http://web/?wait=0", { signal: controller.signal }),
      );
    } catch (e) {
      seen.push(`${(e as Error).message} at ${loop.time().toFixed(3)}`);
    }
    const ok = await http.request(new Request("http://web/?wait=0"));
    seen.push(`${ok.status} ${await ok.text()}`);
    // Aborted while the server takes its time: the request fails with the
    // reason, and the connection (its answer half-read) is closed.
    const start = loop.time();
    try {
      await http.request(
        new Request("http://web/?wait=5", {
          signal: AbortSignal.timeout(1000),
        }),
      );
    } catch (e) {
      seen.push(`${(e as Error).name} after ${loop.time() - start}`);
    }
    await http.waitClosed();
    seen.push("closed");
    // A signal that fires after the response head leaves the response be.
    http = await connect();
    const late = await http.request(
      new Request("http://web/?wait=0", { signal: AbortSignal.timeout(1000) }),
    );
    await sleep(2);
    seen.push(`${late.status} ${await late.text()}`);
    http.close();
  });
  await sim.run({ limit: 60 });
  assertEquals(seen, [
    "not wanted at 0.002",
    "200 late",
    "TimeoutError after 1",
    "closed",
    "200 late",
  ]);
});

// The client's host crashes while its connection waits in the server's
// backlog (accepted by the kernel, not yet by the application). Linux
// keeps such a socket in the accept queue: accept() returns it and its
// first read finds the reset (asyncio: connection_made, then
// connection_lost(ConnectionResetError)).
Deno.test("Simulation: a connection reset in the server's backlog is made, then lost, once", async () => {
  const sim = new Simulation({ seed: 1, link: { latency: 0.01 } });
  const calls: string[] = [];
  sim.host("db", async (loop) => {
    const server = await loop.createServer(
      () =>
        new (class extends Protocol {
          override connectionMade() {
            calls.push("made");
          }
          override connectionLost(e?: Error) {
            calls.push(`lost ${e?.name}`);
          }
        })(),
      "0.0.0.0",
      5432,
      { startServing: false },
    );
    await sleep(1);
    server.startServing();
  });
  sim.host("app", async (loop) => {
    await loop.createConnection(() => new Protocol(), "db", 5432);
  });
  sim.host("chaos", (loop) => {
    loop.callLater(0.5, () => sim.crash("app"));
  });
  await sim.run({ until: 5 });
  assertEquals(calls, ["made", "lost ConnectionReset"]);
});
