// SimServer.shutdown(): DenoServer's graceful shutdown on the virtual
// clock, driven through the simulation with the HTTP server protocol.

import {
  assert,
  assertEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import type { ExceptionContext, Server } from "../../loop/event_loop.ts";
import { HttpClientProtocol } from "../../http/http_client_protocol.ts";
import { HttpServerProtocol } from "../../http/http_server_protocol.ts";
import { PeerLog } from "../../protocols/peer_log.ts";
import { Protocol } from "../../protocols/protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Transport } from "../../transports/transport.ts";
import { Simulation } from "../../testing/simulation.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

const encoder = new TextEncoder();

/** A client protocol that notes when and how its connection ended. */
class Watcher extends Protocol {
  transport: Transport | null = null;
  received = "";
  lostAt = -1;
  lostWith: Error | undefined;
  readonly #now: () => number;

  constructor(now: () => number) {
    super();
    this.#now = now;
  }

  override connectionMade(t: Transport): void {
    this.transport = t;
  }

  override dataReceived(data: Uint8Array): void {
    this.received += new TextDecoder().decode(data);
  }

  override connectionLost(exc?: Error): void {
    this.lostAt = this.#now();
    this.lostWith = exc;
  }
}

/** Writes more than the receive window holds as soon as it connects. */
class Flooder extends Protocol {
  override connectionMade(t: Transport): void {
    t.write(new Uint8Array(256 * 1024));
  }
}

/**
 * An HTTP server host that shuts down at `at` seconds with `grace`;
 * `log.done` is when its shutdown future resolved.
 */
function httpHost(
  sim: Simulation,
  handler: (request: Request) => Response | Promise<Response>,
  at: number,
  grace: number,
  log: { done: number; server: Server | null },
): void {
  sim.host("web", async (loop) => {
    const server = await loop.createServer(
      () => new HttpServerProtocol(handler),
      "0.0.0.0",
      80,
    );
    log.server = server;
    await sleep(at);
    await server.shutdown({ grace });
    log.done = loop.time();
  });
}

Deno.test("SimServer.shutdown() closes an idle keep-alive HTTP connection at once", async () => {
  const sim = new Simulation({ seed: 1 });
  const log = { done: -1, server: null as Server | null };
  httpHost(sim, () => new Response("hi"), 1, 10, log);
  let closedAt = -1;
  sim.client("browser", async (loop) => {
    const [, http] = await loop.createConnection(
      () => new HttpClientProtocol(),
      "web",
      80,
    );
    const response = await http.request(new Request("http://web/"));
    assertEquals(await response.text(), "hi");
    // Kept alive (the server's keepAliveTimeout is 5 s), until shutdown.
    await http.waitClosed();
    closedAt = loop.time();
    // The run ends with its clients: stay until the server is done too.
    await sleep(1);
  });
  await sim.run();
  assert(closedAt >= 1 && closedAt < 1.1, `closed at ${closedAt}`);
  assert(log.done >= 1 && log.done < 1.1, `shutdown done at ${log.done}`);
  assertEquals(log.server!.isServing(), false);
});

Deno.test("SimServer.shutdown() lets a request in flight finish, answered with Connection: close", async () => {
  const sim = new Simulation({ seed: 2 });
  const log = { done: -1, server: null as Server | null };
  httpHost(
    sim,
    async () => {
      await sleep(2);
      return new Response("late but whole");
    },
    1,
    10,
    log,
  );
  let connection: string | null = "";
  let body = "";
  let closedAt = -1;
  sim.client("browser", async (loop) => {
    const [, http] = await loop.createConnection(
      () => new HttpClientProtocol(),
      "web",
      80,
    );
    const response = await http.request(new Request("http://web/slow"));
    connection = response.headers.get("connection");
    body = await response.text();
    await http.waitClosed();
    closedAt = loop.time();
    // The run ends with its clients: stay until the server is done too.
    await sleep(1);
  });
  await sim.run();
  assertEquals(body, "late but whole");
  assertEquals(connection, "close");
  // The answer left at about 2 s; the grace (until 11 s) was not needed.
  assert(closedAt >= 2 && closedAt < 2.1, `closed at ${closedAt}`);
  assert(log.done >= 2 && log.done < 2.1, `shutdown done at ${log.done}`);
});

Deno.test("SimServer.shutdown() aborts a stuck client after the grace period", async () => {
  const sim = new Simulation({ seed: 3 });
  const log = { done: -1, server: null as Server | null };
  httpHost(sim, () => new Response("never asked"), 1, 3, log);
  let stuck: Watcher | null = null;
  sim.client("slowloris", async (loop) => {
    const w = stuck = new Watcher(() => loop.time());
    const [t] = await loop.createConnection(() => w, "web", 80);
    // A head begun and never finished: the server waits for the rest.
    t.write(encoder.encode("GET / HTTP/1.1\r\nHost: web\r\n"));
    while (w.lostAt < 0) await sleep(0.5);
  });
  await sim.run();
  const w = stuck! as Watcher;
  // Aborted at 1 + 3 s, not at the 60-second headersTimeout: the socket
  // closed, the client sees the end of the stream (a FIN, as on the Deno
  // loop) and closes too.
  assert(w.lostAt >= 4 && w.lostAt < 4.6, `lost at ${w.lostAt}`);
  assertEquals(w.lostWith, undefined);
  assertEquals(w.received, "");
  assert(log.done >= 4 && log.done < 4.1, `shutdown done at ${log.done}`);
  assert(sim.trace.some((e) => e.kind === "shutdown" && e.host === "web"));
});

Deno.test("SimServer.shutdown() again gives the same end; a shorter grace brings it forward", async () => {
  const sim = new Simulation({ seed: 4 });
  const ends: number[] = [];
  let lostAt = -1;
  sim.host("server", async (loop) => {
    // A plain protocol has no serverClosing(): its transport is closed,
    // which waits to flush what the client, not reading, never takes.
    const server = await loop.createServer(
      () => new Flooder(),
      "0.0.0.0",
      7,
    );
    await sleep(1);
    const first = server.shutdown({ grace: 100 });
    assertThrows(
      () => server.shutdown({ grace: -1 }),
      RangeError,
      "grace must be a number of seconds >= 0, received -1",
    );
    assertThrows(
      () => server.shutdown({ grace: NaN }),
      RangeError,
      "received NaN",
    );
    await sleep(1);
    const second = server.shutdown({ grace: 2 });
    // A longer grace does not push the deadline back.
    const third = server.shutdown({ grace: 50 });
    for (const f of [first, second, third]) {
      f.addDoneCallback(() => ends.push(loop.time()));
    }
    await first;
  });
  sim.client("client", async (loop) => {
    const w = new Watcher(() => loop.time());
    const [t] = await loop.createConnection(() => w, "server", 7);
    t.pauseReading();
    // The abort's FIN waits behind the bytes this end has not read.
    await sleep(10);
    assertEquals(w.lostAt, -1);
    t.resumeReading();
    while (w.lostAt < 0) await sleep(0.25);
    lostAt = w.lostAt;
  });
  await sim.run();
  assertEquals(ends.length, 3);
  for (const t of ends) assert(t >= 4 && t < 4.1, `resolved at ${t}`);
  const aborted = sim.trace.find((e) =>
    e.kind === "abort" && e.host === "server"
  );
  assert(
    aborted !== undefined && aborted.time >= 4 && aborted.time < 4.1,
    `aborted at ${aborted?.time}`,
  );
  assert(lostAt >= 10, `lost at ${lostAt}`);
});

Deno.test("SimServer.addresses() lists the listening address until close(), then none", async () => {
  const sim = new Simulation({ seed: 6 });
  const seen: unknown[] = [];
  sim.client("solo", async (loop) => {
    const server = await loop.createServer(() => new Protocol(), "0.0.0.0", 9);
    seen.push(server.addresses().length);
    server.close();
    seen.push(server.addresses());
    await server.waitClosed();
  });
  await sim.run();
  assertEquals(seen, [1, []]);
});

Deno.test("SimServer.shutdown() waits for nothing when no connection is open, and await using shuts down", async () => {
  const sim = new Simulation({ seed: 5 });
  let doneAt = -1;
  let closedAt = -1;
  sim.client("solo", async (loop) => {
    const server = await loop.createServer(() => new Protocol(), undefined, 9);
    await server.shutdown();
    doneAt = loop.time();
    {
      await using again = await loop.createServer(
        () => new HttpServerProtocol(() => new Response("x")),
        undefined,
        9,
      );
      const [, http] = await loop.createConnection(
        () => new HttpClientProtocol(),
        "127.0.0.1",
        9,
      );
      assertEquals(
        await (await http.request(new Request("http://solo/"))).text(),
        "x",
      );
      http.waitClosed().addDoneCallback(() => closedAt = loop.time());
      assert(again.isServing());
    }
    assert(closedAt >= 0, "the idle connection outlived await using");
  });
  await sim.run();
  assertEquals(doneAt, 0);
  assertStringIncludes(
    sim.trace.map((e) => `${e.kind} ${e.detail}`).join("\n"),
    "shutdown",
  );
});

Deno.test("servers on the in-memory network log a protocol's failure at each peer within what the peers sent, a failing factory once in 10 s", async () => {
  const loop = new VirtualTimeLoop();
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => errors.push(context));
  class Throwing extends Protocol {
    override dataReceived(): void {
      throw new Error("cannot take this");
    }
  }
  /** Writes one byte, then waits for the end. */
  class OneByte extends Protocol {
    readonly lost = loop.createFuture<void>();
    override connectionMade(t: Transport): void {
      t.write(new Uint8Array(1));
    }
    override connectionLost(): void {
      this.lost.setResult();
    }
  }
  const attack = async (factory: () => Protocol, port: number) => {
    const server = await loop.createServer(factory, "127.0.0.1", port);
    for (let i = 0; i < 300; i++) {
      const [, client] = await loop.createConnection(
        () => new OneByte(),
        "127.0.0.1",
        port,
      );
      await (client as OneByte).lost;
    }
    server.close();
    await server.waitClosed();
  };
  await loop.runUntilComplete(loop.createTask(async () => {
    await attack(() => new Throwing(), 8000);
    const size = errors.reduce((n, c) => n + PeerLog.sizeOf(c), 0);
    assert(errors.length > 0);
    assert(size <= 300 + PeerLog.RESERVE, `${size} characters of log`);
    errors.length = 0;
    await attack(() => {
      throw new Error("no protocol");
    }, 8001);
    // Once, and the count of the rest when the server closed.
    assertEquals(errors.map((c) => c.message), [
      "Protocol factory failed",
      "Server closed: 299 factory failures not reported since the last report",
    ]);
  }));
  loop.close();
});
