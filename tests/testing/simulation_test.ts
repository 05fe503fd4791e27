import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertMatch,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import { getRunningLoop } from "../../futures/running_loop.ts";
import { run } from "../../loop/run.ts";
import type { EventLoop } from "../../loop/event_loop.ts";
import { DatagramProtocol, Protocol } from "../../protocols/protocol.ts";
import { openConnection } from "../../streams/open_connection.ts";
import { startServer } from "../../streams/start_server.ts";
import { deadline } from "@std/async/deadline";
import { delay } from "@std/async/delay";
import { sleep } from "../../tasks/sleep.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import type {
  DatagramTransport,
  Transport,
} from "../../transports/transport.ts";
import {
  simulate,
  Simulation,
  SimulationError,
  type SimulationOptions,
} from "../../testing/simulation.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Records what a stream protocol is told. */
class Recorder extends Protocol {
  transport: Transport | null = null;
  chunks: Uint8Array[] = [];
  events: string[] = [];
  lostWith: Error | undefined | null = null;
  keepOpen = false;
  readonly lost: Promise<Error | undefined>;
  #resolveLost!: (e: Error | undefined) => void;

  constructor() {
    super();
    this.lost = new Promise((r) => this.#resolveLost = r);
  }

  override connectionMade(t: Transport): void {
    this.transport = t;
    this.events.push("made");
  }

  override dataReceived(data: Uint8Array): void {
    this.chunks.push(data);
  }

  override eofReceived(): boolean {
    this.events.push("eof");
    return this.keepOpen;
  }

  override pauseWriting(): void {
    this.events.push("pause");
  }

  override resumeWriting(): void {
    this.events.push("resume");
  }

  override connectionLost(exc?: Error): void {
    this.events.push(`lost ${exc?.name ?? "clean"}`);
    this.lostWith = exc;
    this.#resolveLost(exc);
  }

  bytes(): Uint8Array {
    const n = this.chunks.reduce((a, c) => a + c.length, 0);
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function pattern(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + (i >> 8)) & 255;
  return out;
}

/** A server host whose connections are recorded in `accepted`. */
function recordingServer(
  sim: Simulation,
  name: string,
  port: number,
  accepted: Recorder[],
  make: () => Recorder = () => new Recorder(),
): void {
  sim.host(name, async (loop) => {
    await loop.createServer(
      () => {
        const r = make();
        accepted.push(r);
        return r;
      },
      "0.0.0.0",
      port,
    );
  });
}

/**
 * A simulation made with `options` and a recording server at "server" port
 * 80; `accepted` lists the protocols the server made, in order.
 */
function simWithServer(
  options: SimulationOptions,
): { sim: Simulation; accepted: Recorder[] } {
  const sim = new Simulation(options);
  const accepted: Recorder[] = [];
  recordingServer(sim, "server", 80, accepted);
  return { sim, accepted };
}

/** A `Recorder` that stays open for writing after the peer's FIN. */
function halfOpen(): Recorder {
  const r = new Recorder();
  r.keepOpen = true;
  return r;
}

/**
 * The server's `n`th connection, once it is accepted: half a round trip
 * after the client's connect completes (the ACK), as in real TCP.
 */
async function acceptedAt(accepted: Recorder[], n = 0): Promise<Recorder> {
  while (accepted.length <= n) await sleep(0.001);
  return accepted[n];
}

/** Adds host "server" on port 80, counting the protocols it makes. */
function countingServer(sim: Simulation): { made: number } {
  const server = { made: 0 };
  sim.host("server", async (loop) => {
    await loop.createServer(
      () => {
        server.made++;
        return new Protocol();
      },
      "0.0.0.0",
      80,
    );
  });
  return server;
}

/** Connects a fresh `Recorder` to "server" port 80. */
function connectRecorder(loop: EventLoop) {
  return loop.createConnection(() => new Recorder(), "server", 80);
}

// ---- Streams ----------------------------------------------------------

Deno.test("Simulation streams keep bytes in order while cutting them into random segments", async () => {
  const sizes: number[][] = [];
  for (const seed of [1, 2]) {
    const { sim, accepted } = simWithServer({ seed });
    const data = pattern(200_000);
    sim.client("client", async (loop) => {
      const [t] = await connectRecorder(loop);
      t.write(data.subarray(0, 1000));
      t.write(data.subarray(1000));
      t.close();
      await (await acceptedAt(accepted)).lost;
    });
    await sim.run();
    const got = accepted[0];
    assertEquals(got.bytes(), data);
    assert(got.chunks.length > 3, `only ${got.chunks.length} deliveries`);
    assertEquals(got.events, ["made", "eof", "lost clean"]);
    sizes.push(got.chunks.map((c) => c.length));
  }
  assertNotEquals(sizes[0], sizes[1]);
});

Deno.test("Simulation streams: a reader that stops reading pushes back on the writer", async () => {
  const { sim, accepted } = simWithServer({ seed: 3, receiveBuffer: 16384 });
  const writerEvents: string[][] = [];
  sim.client("client", async (loop) => {
    const [t, p] = await connectRecorder(loop);
    t.setWriteBufferLimits(32768);
    await sleep(0.01);
    const reader = accepted[0];
    reader.transport!.pauseReading();
    t.write(pattern(100_000));
    await sleep(1);
    // The receive window (16 KiB) is full, the rest waits in the writer.
    assertEquals(reader.bytes().length, 0);
    assertEquals(t.getWriteBufferSize(), 100_000 - 16384);
    assertEquals(p.events, ["made", "pause"]);
    reader.transport!.resumeReading();
    await sleep(1);
    assertEquals(t.getWriteBufferSize(), 0);
    assertEquals(reader.bytes(), pattern(100_000));
    writerEvents.push([...p.events]);
    t.close();
  });
  await sim.run();
  assertEquals(writerEvents, [["made", "pause", "resume"]]);
});

Deno.test("Simulation streams: half-close lets the peer answer after the end of stream", async () => {
  const sim = new Simulation({ seed: 4 });
  sim.host("server", async (loop) => {
    class Answer extends Protocol {
      #t!: Transport;
      #n = 0;
      override connectionMade(t: Transport) {
        this.#t = t;
      }
      override dataReceived(d: Uint8Array) {
        this.#n += d.length;
      }
      override eofReceived() {
        this.#t.write(encoder.encode(`got ${this.#n}`));
        this.#t.close();
        return true;
      }
    }
    await loop.createServer(() => new Answer(), "0.0.0.0", 80);
  });
  let answer = "";
  let events: string[] = [];
  sim.client("client", async (loop) => {
    const [t, p] = await connectRecorder(loop);
    t.write(pattern(5000));
    t.writeEof();
    assertThrows(() => t.write(new Uint8Array(1)), InvalidStateError);
    await p.lost;
    answer = decoder.decode(p.bytes());
    events = p.events;
  });
  await sim.run();
  assertEquals(answer, "got 5000");
  assertEquals(events, ["made", "eof", "lost clean"]);
});

Deno.test("Simulation streams: startTls() keeps the plaintext connection, the exchange goes on", async () => {
  const sim = new Simulation({ seed: 5 });
  sim.host("server", async (loop) => {
    await startServer(
      async (reader, writer) => {
        assertEquals(await reader.readline(), encoder.encode("STARTTLS\n"));
        writer.write(encoder.encode("220 go ahead\n"));
        const line = await reader.readline();
        writer.write(encoder.encode(`echo ${decoder.decode(line)}`));
        writer.close();
      },
      "0.0.0.0",
      25,
      { loop },
    );
  });
  let answer = "";
  sim.client("client", async (loop) => {
    const [reader, writer] = await openConnection("server", 25, { loop });
    writer.write(encoder.encode("STARTTLS\n"));
    assertEquals(await reader.readline(), encoder.encode("220 go ahead\n"));
    await writer.startTls({ serverHostname: "server" });
    writer.write(encoder.encode("hello\n"));
    answer = decoder.decode(await reader.read(100));
    writer.close();
  });
  await sim.run();
  assertEquals(answer, "echo hello\n");
});

Deno.test("Simulation streams: abort() ends the peer's stream with a FIN, as the Deno loop's closed socket does; connectionLost comes once on each side", async () => {
  const { sim, accepted } = simWithServer({ seed: 5 });
  sim.client("client", async (loop) => {
    const [t, p] = await connectRecorder(loop);
    t.write(pattern(10));
    await sleep(0.01);
    t.abort();
    t.abort();
    assertEquals(await p.lost, undefined);
    assertEquals(await accepted[0].lost, undefined);
    await sleep(1);
    assertEquals(p.events, ["made", "lost clean"]);
    assertEquals(accepted[0].events, ["made", "eof", "lost clean"]);
    assertEquals(accepted[0].bytes(), pattern(10));
  });
  await sim.run();
  const server = sim.trace.filter((e) => e.host === "server").map((e) =>
    e.kind
  );
  assert(server.includes("fin") && !server.includes("rst"), server.join());
});

Deno.test("Simulation streams: abort() with bytes its protocol was not given sends a FIN, then a reset the peer's next write finds as BrokenPipe", async () => {
  const sim = new Simulation({ seed: 5 });
  const talkers: Recorder[] = [];
  // Half-open: the server goes on writing after the client's FIN.
  recordingServer(sim, "server", 80, talkers, halfOpen);
  sim.client("client", async (loop) => {
    const [t, p] = await connectRecorder(loop);
    t.pauseReading();
    await sleep(0.01);
    talkers[0].transport!.write(encoder.encode("never read"));
    await sleep(0.1);
    t.abort();
    assertEquals(await p.lost, undefined);
    assertEquals(p.bytes().length, 0);
    await sleep(0.1);
    const server = talkers[0];
    assertEquals(server.events, ["made", "eof"]);
    server.transport!.write(encoder.encode("anyone there?"));
    assertEquals((await server.lost)?.name, "BrokenPipe");
  });
  await sim.run();
  const server = sim.trace.filter((e) => e.host === "server").map((e) =>
    e.kind
  );
  assert(
    server.indexOf("fin") >= 0 && server.indexOf("fin") < server.indexOf("rst"),
    server.join(),
  );
});

Deno.test("Simulation streams: bytes that reach an aborted end are answered with a reset", async () => {
  // The client aborts while the server's bytes are on the way: the
  // kernel answers them with a reset, which the server's next write finds.
  const sim = new Simulation({ seed: 5 });
  const talkers: Recorder[] = [];
  // Half-open: the server goes on writing after the client's FIN.
  recordingServer(sim, "server", 80, talkers, halfOpen);
  sim.client("client", async (loop) => {
    const [t, p] = await connectRecorder(loop);
    await sleep(0.2);
    talkers[0].transport!.write(encoder.encode("in flight"));
    t.abort();
    assertEquals(await p.lost, undefined);
    await sleep(0.5);
    const server = talkers[0];
    assertEquals(server.events, ["made", "eof"]);
    server.transport!.write(encoder.encode("hello?"));
    assertEquals((await server.lost)?.name, "BrokenPipe");
  });
  sim.link("server", "client", { latency: 0.05 });
  await sim.run();
  const client = sim.trace.filter((e) => e.host === "client").map((e) =>
    e.kind
  );
  assert(client.includes("rst-sent"), client.join());
});

Deno.test("Simulation streams: writing to a peer that closed gets a reset, which the next write finds as BrokenPipe", async () => {
  const sim = new Simulation({ seed: 6 });
  sim.host("server", async (loop) => {
    class CloseAtOnce extends Protocol {
      override connectionMade(t: Transport) {
        t.close();
      }
    }
    await loop.createServer(() => new CloseAtOnce(), "0.0.0.0", 80);
  });
  sim.client("client", async (loop) => {
    const [t, p] = await loop.createConnection(
      () => {
        const r = new Recorder();
        r.keepOpen = true; // half-open: go on writing after the server's FIN
        return r;
      },
      "server",
      80,
    );
    await sleep(0.1);
    t.write(encoder.encode("anyone there?"));
    await sleep(0.1);
    // The reset came back; in CLOSE_WAIT it is EPIPE, for the next write.
    assertEquals(p.lostWith, null);
    t.write(encoder.encode("hello?"));
    assertEquals((await p.lost)?.name, "BrokenPipe");
  });
  await sim.run();
});

Deno.test("Simulation streams: closing with bytes unread sends the FIN, then a reset (RFC 2525 2.17), as the Deno loop's socket does", async () => {
  // A server that never reads what it is sent, answers, and closes: Deno
  // shuts the socket's write side (a FIN after the answer), then the
  // kernel throws the unread bytes away and resets the connection, which
  // the client, in CLOSE_WAIT, finds as EPIPE on its next write.
  const sim = new Simulation({ seed: 6 });
  sim.host("server", async (loop) => {
    class Deaf extends Protocol {
      override connectionMade(t: Transport) {
        t.pauseReading();
        loop.callLater(1, () => {
          t.write(encoder.encode("bye"));
          t.close();
        });
      }
    }
    await loop.createServer(() => new Deaf(), "0.0.0.0", 80);
  });
  sim.client("client", async (loop) => {
    const [t, p] = await loop.createConnection(halfOpen, "server", 80);
    t.write(encoder.encode("request nobody reads"));
    while (!p.events.includes("eof")) await sleep(0.1);
    assertEquals(decoder.decode(p.bytes()), "bye");
    await sleep(0.1);
    t.write(encoder.encode("still there?"));
    assertEquals((await p.lost)?.name, "BrokenPipe");
  });
  await sim.run();
  const kinds = sim.trace.filter((e) => e.host === "client").map((e) => e.kind);
  const fin = kinds.indexOf("fin");
  assert(fin >= 0 && fin < kinds.indexOf("rst"), kinds.join());
});

Deno.test("Simulation streams: bytes that arrive while a close is flushing make a reset follow the FIN once the socket closes", async () => {
  // The server's close() waits for its buffer to drain into a client that
  // reads slowly; the client writes meanwhile; those bytes are never read.
  const sim = new Simulation({ seed: 7, receiveBuffer: 1000 });
  sim.host("server", async (loop) => {
    class Bulk extends Protocol {
      override connectionMade(t: Transport) {
        t.write(pattern(5000));
        t.close();
      }
    }
    await loop.createServer(() => new Bulk(), "0.0.0.0", 80);
  });
  sim.client("client", async (loop) => {
    const [t, p] = await loop.createConnection(halfOpen, "server", 80);
    t.pauseReading();
    await sleep(0.1);
    t.write(encoder.encode("late words"));
    await sleep(0.1);
    t.resumeReading();
    while (!p.events.includes("eof")) await sleep(0.1);
    assertEquals(p.bytes(), pattern(5000));
    await sleep(0.1);
    t.write(encoder.encode("still there?"));
    assertEquals((await p.lost)?.name, "BrokenPipe");
  });
  await sim.run();
  const server = sim.trace.filter((e) => e.host === "server").map((e) =>
    e.kind
  );
  assert(server.includes("rst-sent"), server.join());
});

Deno.test("Simulation streams: a connection is refused when nothing listens, a name must exist", async () => {
  const sim = new Simulation({ seed: 7 });
  sim.host("server", () => {});
  sim.client("client", async (loop) => {
    const start = loop.time();
    const refused = await assertRejects(() =>
      loop.createConnection(() => new Recorder(), "server", 81)
    );
    assertEquals((refused as Error).name, "ConnectionRefused");
    assertEquals(loop.time() - start, 0.002); // one round trip
    const unknown = await assertRejects(() =>
      loop.createConnection(() => new Recorder(), "nowhere", 80)
    );
    assertEquals((unknown as Error).name, "NotFound");
  });
  await sim.run();
});

Deno.test("Simulation streams: getaddrinfo resolves host names to their simulated addresses", async () => {
  const sim = new Simulation({ seed: 8 });
  sim.host("db", () => {});
  sim.client("app", async (loop) => {
    assertEquals(await loop.getaddrinfo("db", 5432), [
      { family: 4, hostname: "10.0.0.1", port: 5432 },
    ]);
    assertEquals(await loop.getaddrinfo("localhost", 1), [
      { family: 4, hostname: "127.0.0.1", port: 1 },
    ]);
    assertEquals(await loop.getaddrinfo("10.0.0.1", 2), [
      { family: 4, hostname: "10.0.0.1", port: 2 },
    ]);
    await assertRejects(
      () => loop.getaddrinfo("db", 1, { family: 6 }),
      Deno.errors.NotFound,
      "Cannot resolve db: it has no IPv6 address",
    );
    assertEquals(await loop.getnameinfo({ hostname: "10.0.0.2", port: 9 }), [
      "app",
      "9",
    ]);
    await assertRejects(() => loop.getaddrinfo("nowhere", 1));
  });
  await sim.run();
});

Deno.test("Simulation streams: Unix sockets connect within a host", async () => {
  const sim = new Simulation({ seed: 9 });
  let reply = "";
  sim.client("box", async (loop) => {
    class Hello extends Protocol {
      override connectionMade(t: Transport) {
        t.write(encoder.encode("hi"));
        t.close();
      }
    }
    const server = await loop.createUnixServer(() => new Hello(), "/run/s");
    const [, p] = await loop.createUnixConnection(
      () => new Recorder(),
      "/run/s",
    );
    await p.lost;
    reply = decoder.decode(p.bytes());
    server.close();
    await server.waitClosed();
  });
  await sim.run();
  assertEquals(reply, "hi");
});

Deno.test("Simulation links: latency and bandwidth set how long a transfer takes", async () => {
  const { sim, accepted } = simWithServer({ seed: 10 });
  let took = 0;
  sim.client("client", async (loop) => {
    const [t] = await connectRecorder(loop);
    const start = loop.time();
    t.write(pattern(50_000));
    t.close();
    await (await acceptedAt(accepted)).lost;
    took = loop.time() - start;
  });
  sim.link("server", "client", { latency: 0.05, bandwidth: 100_000 });
  await sim.run();
  // 0.5 s on the wire plus at least one latency; window updates add more.
  assert(took > 0.54 && took < 1, `took ${took}`);
});

// ---- Hardship ---------------------------------------------------------

/**
 * Checks that `cut` between "client" and "server" keeps `size` bytes and a
 * second connect from arriving for `wait` seconds, and that both arrive
 * once `mend` undoes it.
 */
async function assertHeldUntilMended(
  seed: number,
  size: number,
  wait: number,
  cut: (sim: Simulation) => void,
  mend: (sim: Simulation) => void,
): Promise<void> {
  const { sim, accepted } = simWithServer({ seed });
  sim.client("client", async (loop) => {
    const [t] = await connectRecorder(loop);
    await acceptedAt(accepted);
    cut(sim);
    t.write(pattern(size));
    const second = connectRecorder(loop);
    await sleep(wait);
    assertEquals(accepted[0].bytes().length, 0);
    assertEquals(accepted.length, 1);
    mend(sim);
    const [t2] = await second;
    await sleep(0.1);
    assertEquals(accepted[0].bytes(), pattern(size));
    t.close();
    t2.close();
  });
  await sim.run();
}

Deno.test("Simulation.partition() holds a stream's bytes until repair(), and connects wait", async () => {
  await assertHeldUntilMended(
    11,
    3000,
    5,
    (sim) => sim.partition("client", "server"),
    (sim) => sim.repair("client", "server"),
  );
});

Deno.test("Simulation.partition() that outlasts the timeouts fails connects and connections with TimedOut", async () => {
  const { sim } = simWithServer({
    seed: 12,
    connectTimeout: 10,
    retransmitTimeout: 20,
  });
  sim.client("client", async (loop) => {
    const [t, p] = await connectRecorder(loop);
    sim.partition("server", "client");
    const start = loop.time();
    const e = await assertRejects(() => connectRecorder(loop));
    assertEquals((e as Error).name, "TimedOut");
    assertEquals(loop.time() - start, 10);
    t.write(pattern(10));
    assertEquals((await p.lost)?.name, "TimedOut");
    assert(loop.time() - start >= 20);
  });
  await sim.run();
});

Deno.test("Simulation.crash() resets the host's connections; restart() runs its main again", async () => {
  const sim = new Simulation({ seed: 13 });
  let starts = 0;
  sim.host("server", async (loop) => {
    starts++;
    await loop.createServer(() => new Recorder(), "0.0.0.0", 80);
  });
  sim.client("client", async (loop) => {
    const [, p] = await connectRecorder(loop);
    sim.crash("server");
    assertEquals((await p.lost)?.name, "ConnectionReset");
    const e = await assertRejects(() => connectRecorder(loop));
    assertEquals((e as Error).name, "TimedOut"); // nobody answers a host that is down
    sim.restart("server");
    await sleep(0.01);
    const [t] = await connectRecorder(loop);
    t.close();
  });
  await sim.run();
  assertEquals(starts, 2);
  const kinds = sim.trace.filter((e) => e.host === "server").map((e) => e.kind);
  assert(kinds.includes("crash") && kinds.includes("restart"), String(kinds));
});

Deno.test("Simulation datagrams: partition drops them, hold delays them, faults drop and duplicate", async () => {
  const run = async (
    seed: number,
    faults: { drop?: number; duplicate?: number },
    setup: (sim: Simulation) => void,
  ) => {
    const sim = new Simulation({ seed, faults });
    const got: string[] = [];
    sim.host("sink", async (loop) => {
      class Sink extends DatagramProtocol {
        override datagramReceived(d: Uint8Array) {
          got.push(decoder.decode(d));
        }
      }
      await loop.createDatagramEndpoint(() => new Sink(), {
        localAddr: { hostname: "0.0.0.0", port: 53 },
      });
    });
    sim.client("source", async (loop) => {
      const [t] = await loop.createDatagramEndpoint(
        () => new DatagramProtocol(),
        {
          remoteAddr: { hostname: "sink", port: 53 },
        },
      );
      setup(sim);
      for (let i = 0; i < 100; i++) t.sendto(encoder.encode(`${i}`));
      await sleep(1);
      sim.release("source", "sink");
      await sleep(1);
      (t as DatagramTransport).close();
    });
    await sim.run();
    return got;
  };
  assertEquals((await run(1, {}, () => {})).length, 100);
  assertEquals(
    (await run(1, {}, (sim) => sim.partition("source", "sink"))).length,
    0,
  );
  assertEquals(
    (await run(1, {}, (sim) => sim.hold("source", "sink"))).length,
    100,
  );
  const lossy = await run(1, { drop: 0.3, duplicate: 0.3 }, () => {});
  assert(new Set(lossy).size < 100, `${new Set(lossy).size} distinct`);
  assert(lossy.length > new Set(lossy).size, "nothing duplicated");
});

Deno.test("Simulation faults: crashes, partitions and resets at random, from the seed", async () => {
  const sim = new Simulation({
    seed: 14,
    faults: { crash: 0.5, partition: 0.5, reset: 1, hosts: ["server"] },
  });
  sim.host("server", async (loop) => {
    await loop.createServer(() => new Recorder(), "0.0.0.0", 80);
  });
  sim.host("other", () => {});
  let failures = 0;
  sim.client("client", async (loop) => {
    for (let i = 0; i < 40; i++) {
      try {
        const [t, r] = await connectRecorder(loop);
        await sleep(0.5);
        // Reset, or cut by a crash (a connect to a host that is down
        // waits for it to come back, as TCP's SYN is sent again).
        if (r.lostWith) failures++;
        t.close();
      } catch {
        failures++;
        await sleep(0.5);
      }
    }
  });
  await sim.run();
  const kinds = new Set(sim.trace.map((e) => e.kind));
  assert(kinds.has("crash") && kinds.has("restart"), [...kinds].join());
  assert(failures > 0);
});

// ---- Runs -------------------------------------------------------------

/** A busy system: chatty clients, a server, latency, jitter and faults. */
function busy(sim: Simulation): void {
  sim.host("server", async (loop) => {
    await startServer(
      async (reader, writer) => {
        for (;;) {
          const line = await reader.readline();
          if (line.length === 0) break;
          writer.write(line);
          await writer.drain();
        }
        writer.close();
      },
      "0.0.0.0",
      7,
      { loop },
    );
  });
  for (const name of ["a", "b", "c"]) {
    sim.client(name, async (loop) => {
      for (let round = 0; round < 5; round++) {
        try {
          const [reader, writer] = await openConnection("server", 7, { loop });
          for (let i = 0; i < 20; i++) {
            writer.write(
              encoder.encode(`${name} ${round} ${i} ${"x".repeat(i * 50)}\n`),
            );
          }
          writer.writeEof();
          await reader.read(-1);
          writer.close();
        } catch {
          await sleep(Math.random());
        }
      }
    });
  }
  sim.link("server", "a", { latency: 0.01, jitter: 0.01 });
}

Deno.test("Simulation: the same seed gives the same trace, byte for byte", async () => {
  const traces: string[] = [];
  for (const seed of [21, 21, 22]) {
    const sim = new Simulation({
      seed,
      faults: { reset: 2, partition: 1, repairAfter: 0.2 },
    });
    busy(sim);
    await sim.run();
    assert(sim.trace.length > 200, `${sim.trace.length} events`);
    traces.push(JSON.stringify(sim.trace));
  }
  assertEquals(traces[0], traces[1]);
  assertNotEquals(traces[0], traces[2]);
});

Deno.test("Simulation.run() rejects with the first client error, the seed and the last events", async () => {
  const sim = new Simulation({ seed: 99 });
  sim.host("server", () => {});
  sim.client("good", async () => {
    await sleep(10);
  });
  sim.client("bad", async () => {
    await sleep(1);
    throw new Error("the answer was wrong");
  });
  const e = await assertRejects(() => sim.run(), SimulationError);
  assertEquals(e.seed, 99);
  assertEquals(e.time, 1);
  assertStringIncludes(e.message, "seed 99");
  assertStringIncludes(
    e.message,
    "client bad failed: Error: the answer was wrong",
  );
  assertMatch(e.events.at(-1)!, /bad fail/);
  assertInstanceOf(e.cause, Error);
});

Deno.test("Simulation.run() reports a deadlock instead of hanging", async () => {
  const sim = new Simulation({ seed: 1 });
  sim.client("stuck", async (loop) => {
    await loop.createFuture();
  });
  const e = await assertRejects(() => sim.run(), SimulationError);
  assertStringIncludes(e.message, "clients stuck are not done");
  // A wait for something outside the simulation (a promise that no host
  // settles) looks the same to it: the message names that too.
  const outside = new Simulation({ seed: 1 });
  outside.client("waiter", async () => {
    await new Promise(() => {});
  });
  const e2 = await assertRejects(() => outside.run(), SimulationError);
  assertStringIncludes(
    e2.message,
    "clients waiter are not done: a deadlock, a wait with no timeout, or a wait for something outside the simulation (a real timer, a file's stream), which the run cannot see",
  );
});

Deno.test("Simulation.run() stops at until, and fails a client still running at the limit", async () => {
  const sim = new Simulation({ seed: 1 });
  let ticks = 0;
  sim.host("clock", (loop) => {
    loop.callRepeatedly(1, () => ticks++);
  });
  await sim.run({ until: 10.5 });
  assertEquals(ticks, 10);
  assertEquals(sim.time(), 10.5);
  const sim2 = new Simulation({ seed: 1 });
  sim2.client("forever", async () => {
    for (;;) await sleep(60);
  });
  const e = await assertRejects(
    () => sim2.run({ limit: 600 }),
    SimulationError,
  );
  assertStringIncludes(e.message, "after 600 simulated seconds");
});

Deno.test("Simulation.run() fails loudly on real I/O, and seeds Math.random and the clocks", async () => {
  const realConnect = Deno.connect;
  const realRandom = Math.random;
  const seen: number[][] = [];
  for (let i = 0; i < 2; i++) {
    const sim = new Simulation({ seed: 5 });
    sim.client("c", async () => {
      await sleep(2);
      seen.push([Math.random(), Date.now(), performance.now()]);
    });
    await sim.run();
  }
  assertEquals(seen[0], seen[1]);
  assertEquals(seen[0][1], 946684802000);
  assertEquals(seen[0][2], 2000);
  const sim = new Simulation({ seed: 5 });
  sim.client("c", async () => {
    await Deno.connect({ hostname: "127.0.0.1", port: 9 });
  });
  const e = await assertRejects(() => sim.run(), SimulationError);
  assertStringIncludes(
    e.message,
    "Cannot call Deno.connect() inside a simulation",
  );
  assertEquals(Deno.connect, realConnect);
  assertEquals(Math.random, realRandom);
});

Deno.test("Simulation.run() seeds crypto's random values and gives new Date() the virtual clock", async () => {
  const RealDate = Date;
  const realGetRandomValues = crypto.getRandomValues;
  const seen: unknown[][] = [];
  for (const seed of [5, 5, 6]) {
    const sim = new Simulation({ seed });
    sim.client("c", async () => {
      await sleep(2);
      const date = new Date();
      seen.push([
        date.getTime(),
        date instanceof RealDate,
        typeof Date(),
        new Date(0).getTime(),
        Date.UTC(2000, 0, 1),
        crypto.randomUUID(),
        [...crypto.getRandomValues(new Uint8Array(8))],
        [...crypto.getRandomValues(new Uint32Array(2))],
      ]);
    });
    await sim.run();
  }
  assertEquals(seen[0], seen[1]);
  assertNotEquals(seen[0][5], seen[2][5]);
  assertNotEquals(seen[0][6], seen[2][6]);
  assertEquals(seen[0].slice(0, 5), [
    946684802000,
    true,
    "string",
    0,
    946684800000,
  ]);
  assertMatch(
    seen[0][5] as string,
    /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  );
  // All restored after the run.
  assertEquals(Date, RealDate);
  assertEquals(crypto.getRandomValues, realGetRandomValues);
  assert(new Date().getFullYear() > 2020);
});

Deno.test("Simulation.run() gives a host's setTimeout() and setInterval() the virtual clock; code outside the hosts keeps the real ones", async () => {
  const realSetTimeout = setTimeout;
  const realClearInterval = clearInterval;
  const seen: string[][] = [];
  for (let i = 0; i < 2; i++) {
    const log: string[] = [];
    const sim = new Simulation({ seed: 8 });
    sim.host("ticker", (loop) => {
      let n = 0;
      const id = setInterval(
        (what: string) => {
          log.push(`${what} ${++n} at ${loop.time()}`);
          if (n === 3) clearInterval(id);
        },
        1500,
        "tick",
      );
    });
    sim.client("c", async (loop) => {
      await new Promise((r) => setTimeout(r, 5000));
      log.push(`slept 5 s: ${loop.time()}`);
      await delay(250); // @std/async: setTimeout underneath
      log.push(`delay: ${loop.time()}`);
      const cancelled = setTimeout(() => log.push("never"), 10);
      clearTimeout(cancelled);
      // As on Deno (Node's rules): a delay under 1 ms, or not a number,
      // or over 2^31 - 1 ms, is 1 ms.
      for (const ms of [0, -5, NaN, 2 ** 31]) {
        const start = loop.time();
        await new Promise((r) => setTimeout(r, ms));
        log.push(`${ms}: ${(loop.time() - start).toFixed(3)}`);
      }
      const t = setTimeout(() => {}, 10);
      assertEquals(t.unref(), t);
      clearTimeout(t);
    });
    // The caller's own timer, made while the run runs, is a real one.
    let outside = false;
    const running = sim.run();
    realSetTimeout(() => outside = true, 0);
    setTimeout(() => outside = true, 0);
    await running;
    await new Promise((r) => realSetTimeout(r, 5));
    assert(outside);
    seen.push(log);
  }
  assertEquals(seen[0], seen[1]);
  assertEquals(seen[0], [
    "tick 1 at 1.5",
    "tick 2 at 3",
    "tick 3 at 4.5",
    "slept 5 s: 5",
    "delay: 5.25",
    "0: 0.001",
    "-5: 0.001",
    "NaN: 0.001",
    "2147483648: 0.001",
  ]);
  assertEquals(setTimeout, realSetTimeout);
  assertEquals(clearInterval, realClearInterval);
});

Deno.test("Simulation: a host's timer refreshed after it fired runs again, and clearTimeout() still cancels it, as on Deno", async () => {
  const log: string[] = [];
  const sim = new Simulation({ seed: 8 });
  sim.client("c", async (loop) => {
    const t = setTimeout(() => log.push(`fired at ${loop.time()}`), 10);
    await sleep(1);
    t.refresh();
    await sleep(1);
    t.refresh();
    clearTimeout(t);
    await sleep(1);
  });
  await sim.run();
  assertEquals(log, ["fired at 0.01", "fired at 1.01"]);
});

Deno.test("Simulation: a crashed host's timers never fire, nor timers its old code sets after a restart", async () => {
  const sim = new Simulation({ seed: 8 });
  const log: string[] = [];
  let wake!: () => void;
  const woken = new Promise<void>((r) => wake = r);
  let lives = 0;
  sim.host("h", async (loop) => {
    const life = ++lives;
    setTimeout(() => log.push(`life ${life} timer at ${loop.time()}`), 3000);
    if (life > 1) return;
    await woken; // settled by another host, once this life is over
    setTimeout(() => log.push("old life's timer"), 10);
  });
  sim.client("c", async () => {
    await sleep(1);
    sim.crash("h");
    await sleep(1);
    sim.restart("h");
    wake();
    await sleep(5);
  });
  await sim.run();
  assertEquals(log, ["life 2 timer at 5"]);
});

Deno.test("Simulation hosts cannot run subprocesses, signals, Deno sockets or their own loop", async () => {
  const sim = new Simulation({ seed: 1 });
  sim.client("c", (loop: EventLoop) => {
    const connect = assertThrows(
      () => loop.sockConnect({ hostname: "server", port: 80 }),
      InvalidStateError,
    );
    assertEquals(
      connect.message,
      "Cannot call sockConnect() on a simulated host: a simulated host has no Deno sockets (use createConnection() or createUnixConnection() instead), received server:80",
    );
    assertThrows(
      () => loop.sockRecv({} as Deno.Conn, 10),
      InvalidStateError,
      "use createConnection() or createServer()",
    );
    assertThrows(
      () => loop.sockAccept({} as Deno.Listener),
      InvalidStateError,
      "no Deno sockets",
    );
    assertThrows(
      () => loop.subprocessExec(() => new Protocol() as never, "ls"),
      InvalidStateError,
      "cannot start processes",
    );
    assertThrows(
      () => loop.addSignalHandler("SIGINT", () => {}),
      InvalidStateError,
      "receives no signals",
    );
    assertThrows(
      () => loop.runInExecutor(null, () => 1),
      InvalidStateError,
      "no worker pool",
    );
    assertThrows(
      () => loop.runUntilComplete(sleep(1)),
      InvalidStateError,
      "the Simulation runs it",
    );
  });
  await sim.run();
});

Deno.test("Simulation checks its arguments", () => {
  assertThrows(() => new Simulation({ seed: "x" as never }), TypeError);
  const sim = new Simulation({ seed: 1 });
  sim.host("a", () => {});
  assertThrows(() => sim.host("a", () => {}), RangeError, "has that name");
  assertThrows(() => sim.partition("a", "zz"), RangeError, "no host");
  assertThrows(() => sim.client("", () => {}), TypeError);
  // Names every host resolves to itself, and addresses, name no other host.
  for (const name of ["localhost", "127.0.0.1", "::1", "0.0.0.0", "10.0.0.7"]) {
    assertThrows(
      () => sim.host(name, () => {}),
      RangeError,
      "a loopback name or an address",
    );
  }
});

Deno.test("Simulation checks link() options, fault probabilities, and refuses hosts once it has run", async () => {
  const sim = new Simulation({ seed: 1 });
  sim.host("a", () => {});
  sim.host("b", () => {});
  assertThrows(
    () => sim.link("a", "b", undefined as never),
    TypeError,
    "Cannot set a link: options must be an object",
  );
  assertThrows(
    () => sim.link("a", "a", { latency: 1 }),
    RangeError,
    "a host's link to itself",
  );
  sim.link("a", "b", {});
  for (const key of ["latency", "jitter"]) {
    assertThrows(
      () => sim.link("a", "b", { [key]: Infinity }),
      RangeError,
      `${key} must be a finite number >= 0, received Infinity`,
    );
    assertThrows(
      () => new Simulation({ seed: 1, link: { [key]: Infinity } }),
      RangeError,
      `link.${key} must be a finite number >= 0`,
    );
  }
  assertThrows(
    () => new Simulation({ seed: 1, faults: { drop: 1.5 } }),
    RangeError,
    "faults.drop must be a probability from 0 to 1, received 1.5",
  );
  assertThrows(
    () => new Simulation({ seed: 1, faults: { duplicate: 2 } }),
    RangeError,
    "faults.duplicate must be a probability",
  );
  for (const key of ["crash", "partition", "hold", "reset"]) {
    assertThrows(
      () => new Simulation({ seed: 1, faults: { [key]: Infinity } }),
      RangeError,
      `faults.${key} must be a finite number >= 0, received Infinity`,
    );
  }
  assertThrows(
    () => new Simulation({ seed: 1, faults: { hosts: "a" as never } }),
    TypeError,
    "faults.hosts must be an array of host names",
  );
  await sim.run();
  assertThrows(
    () => sim.host("c", () => {}),
    InvalidStateError,
    "the simulation has run",
  );
  assertThrows(
    () => sim.client("d", () => {}),
    InvalidStateError,
    "the simulation has run",
  );
});

// ---- simulate ---------------------------------------------------------

Deno.test("simulate() takes a whole number of seeds", async () => {
  await assertRejects(
    () => simulate(1.5, () => {}),
    RangeError,
    "seeds must be a whole number >= 0",
  );
  assertEquals((await simulate(0, () => {})).runs, 0);
});

Deno.test("simulate() runs many seeds and names the ones that fail", async () => {
  const report = await simulate(50, (sim) => {
    sim.client("c", async () => await sleep(Math.random()));
  });
  assertEquals(report, { runs: 50, failures: [] });
  const e = await assertRejects(
    () =>
      simulate(20, (sim) => {
        sim.client("c", async () => {
          await sleep(1);
          if (sim.seed % 7 === 3) throw new Error("unlucky");
        });
      }),
    SimulationError,
  );
  assertStringIncludes(e.message, "3 of 20 seeds failed: 3, 10, 17");
  assertStringIncludes(
    e.message,
    "simulate([3], scenario, { fullTrace: true })",
  );
  const full = await assertRejects(
    () =>
      simulate([3], (sim) => {
        sim.client("c", async () => {
          await sleep(1);
          throw new Error("unlucky");
        });
      }, { fullTrace: true }),
    SimulationError,
  );
  assertEquals(full.events[0], "0.000000 c start");
});

// A scenario that runs its simulation itself, to check what the run left
// (the only place it can, after the run): simulate() does not run it again.
Deno.test("simulate() takes a scenario that runs its simulation itself", async () => {
  const replies: string[] = [];
  const report = await simulate(5, async (sim) => {
    sim.host("server", async (loop) => {
      await startServer(
        async (reader, writer) => {
          writer.write(await reader.readline());
          writer.close();
        },
        "0.0.0.0",
        7,
        { loop },
      );
    });
    let reply = "";
    sim.client("client", async (loop) => {
      const [reader, writer] = await openConnection("server", 7, { loop });
      writer.write(encoder.encode("hello\n"));
      reply = new TextDecoder().decode(await reader.read());
    });
    await sim.run();
    assertEquals(reply, "hello\n");
    replies.push(reply);
  });
  assertEquals(report, { runs: 5, failures: [] });
  assertEquals(replies.length, 5);
  const e = await assertRejects(
    () =>
      simulate([4], async (sim) => {
        sim.client("c", () => {});
        await sim.run();
        throw new Error("checked after the run");
      }),
    SimulationError,
  );
  assertStringIncludes(e.message, "checked after the run");
  // A run the scenario started without waiting for it: simulate() waits,
  // and its client's failure fails the seed.
  const unawaited = await assertRejects(
    () =>
      simulate([4, 5], (sim) => {
        sim.client("c", () => {
          throw new Error("client broke");
        });
        sim.run();
      }),
    SimulationError,
  );
  assertStringIncludes(unawaited.message, "client broke");
  // A run its own checks refused is no run: simulate() runs the system.
  let ran = 0;
  const refused = await simulate(2, async (sim) => {
    sim.client("c", () => {
      ran++;
    });
    await assertRejects(() => sim.run({ until: -1 }), RangeError);
  });
  assertEquals([refused.failures.length, ran], [0, 2]);
  // A scenario that throws after starting a run: the seed fails with its
  // error once the run is over, and the next seed runs its own.
  const threw = await assertRejects(
    () =>
      simulate([6, 7], async (sim) => {
        sim.client("c", () => {});
        sim.run();
        await Promise.resolve();
        throw new Error("scenario broke");
      }),
    SimulationError,
  );
  assertStringIncludes(threw.message, "scenario broke");
});

Deno.test("Simulation records errors hosts report, and fails on them with failOnError", async () => {
  for (const failOnError of [false, true]) {
    const sim = new Simulation({ seed: 1, failOnError });
    sim.host("server", async (loop) => {
      class Broken extends Protocol {
        override dataReceived() {
          throw new Error("parser bug");
        }
      }
      await loop.createServer(() => new Broken(), "0.0.0.0", 80);
    });
    sim.client("client", async (loop) => {
      const [t, p] = await connectRecorder(loop);
      t.write(encoder.encode("x"));
      // The server's socket closes as the Deno loop's does: the end of
      // the stream, no reset.
      assertEquals(await p.lost, undefined);
    });
    if (failOnError) {
      const e = await assertRejects(() => sim.run(), SimulationError);
      assertStringIncludes(
        e.message,
        "host server reported an error: Fatal error: protocol.dataReceived() call failed: Error: parser bug",
      );
    } else {
      await sim.run();
      assert(
        sim.trace.some((e) =>
          e.kind === "error" && e.detail.includes("parser bug")
        ),
      );
    }
  }
});

Deno.test("Simulation: code resuming outside a task (a promise reaction) finds its own host's loop", async () => {
  const sim = new Simulation({ seed: 1 });
  const seen: string[] = [];
  for (const name of ["a", "b", "c"]) {
    sim.client(name, async (loop) => {
      for (let i = 0; i < 3; i++) {
        await new Promise<void>((resolve) =>
          loop.callSoon(() => {
            Promise.resolve().then(() => Promise.resolve()).then(() => {
              seen.push(getRunningLoop() === loop ? "own" : `wrong in ${name}`);
              resolve();
            });
          })
        );
      }
    });
  }
  await sim.run();
  assertEquals(seen, Array(9).fill("own"));
});

Deno.test("Simulation: stalled bytes time out at any fractional time (no rounding spin)", async () => {
  for (let k = 0; k < 40; k++) {
    const { sim } = simWithServer({ seed: k, retransmitTimeout: 3 });
    sim.client("client", async (loop) => {
      const [t, p] = await connectRecorder(loop);
      await sleep(0.1 + k * 0.0137 + Math.random());
      sim.partition("client", "server");
      t.write(pattern(100));
      assertEquals((await p.lost)?.name, "TimedOut");
    });
    sim.link("client", "server", { latency: 0.01, jitter: 0.01 });
    await sim.run();
  }
});

Deno.test("Simulation.hold() keeps a stream's bytes and connects until release()", async () => {
  await assertHeldUntilMended(
    15,
    500,
    10,
    (sim) => sim.hold("client", "server"),
    (sim) => sim.release("client", "server"),
  );
});

Deno.test("Simulation listeners queue connections until startServing(), up to the backlog; beyond it a SYN is dropped and sent again, as on Linux", async () => {
  const sim = new Simulation({ seed: 16, connectTimeout: 20 });
  const accepted: Recorder[] = [];
  sim.client("box", async (loop) => {
    const server = await loop.createServer(
      () => {
        const r = new Recorder();
        accepted.push(r);
        return r;
      },
      "0.0.0.0",
      80,
      { startServing: false, backlog: 1 },
    );
    const [t] = await loop.createConnection(() => new Recorder(), "box", 80);
    t.write(encoder.encode("early"));
    // The backlog is full: no answer (not a refusal) while it stays so.
    const second = loop.createConnection(() => new Recorder(), "box", 80);
    await sleep(2);
    assertFalse(second.done());
    assertEquals(accepted.length, 0);
    server.startServing();
    await sleep(0.01);
    assertEquals(accepted.length, 1);
    assertEquals(decoder.decode(accepted[0].bytes()), "early");
    // The SYN sent again (after 1 s, 2 s, 4 s, …) now gets in.
    const [t2] = await second;
    assert(loop.time() < 8, `connected at ${loop.time()}`);
    assertEquals(accepted.length, 2);
    // A backlog that stays full times the attempt out, as silence does.
    const full = await loop.createServer(() => new Recorder(), "0.0.0.0", 81, {
      startServing: false,
      backlog: 0,
    });
    const e = await assertRejects(() =>
      loop.createConnection(() => new Recorder(), "box", 81)
    );
    assertEquals((e as Error).name, "TimedOut");
    t.close();
    t2.close();
    server.close();
    full.close();
    await server.waitClosed();
  });
  await sim.run();
  assert(sim.trace.some((e) => e.kind === "syn-drop"));
});

Deno.test("Simulation listeners count the accept queue when the ACK arrives: two SYNs let in together, the ACK the full queue cannot take is dropped and comes again with the SYN-ACK, as on Linux", async () => {
  const sim = new Simulation({ seed: 17, link: { latency: 0.05 } });
  const accepted: Recorder[] = [];
  const acceptedAt: number[] = [];
  let server!: { startServing(): unknown };
  sim.host("server", async (loop) => {
    server = await loop.createServer(
      () => {
        const r = new Recorder();
        accepted.push(r);
        acceptedAt.push(Math.round(loop.time() * 1000));
        return r;
      },
      "0.0.0.0",
      80,
      { startServing: false, backlog: 1 },
    );
  });
  sim.client("client", async (loop) => {
    await sleep(1);
    // Both SYNs find the accept queue empty; both clients are connected
    // (the SYN-ACK came); the second ACK finds it full and is dropped.
    const [[t1], [t2]] = await Promise.all([
      connectRecorder(loop),
      connectRecorder(loop),
    ]);
    t1.write(encoder.encode("one"));
    t2.write(encoder.encode("two"));
    await sleep(3);
    assertEquals(accepted.length, 0);
    server.startServing();
    await sleep(6);
    assertEquals(accepted.map((r) => decoder.decode(r.bytes())), [
      "one",
      "two",
    ]);
    t1.close();
    t2.close();
  });
  await sim.run();
  // The first from the queue at startServing() (4.1 s); the second's ACK,
  // dropped at 1.15 s and 2.25 s, comes again with the SYN-ACK sent 2 s
  // after the last drop, and finds room.
  assertEquals(acceptedAt, [4100, 4350]);
  assertEquals(
    sim.trace.filter((e) => e.kind === "ack-drop").map((e) =>
      Math.round(e.time * 1000)
    ),
    [1150, 2250],
  );
  assertEquals(sim.trace.filter((e) => e.kind === "syn-drop").length, 0);
});

// A half-open connection whose ACK the full queue dropped waits for the
// next ACK; a client host that crashed after closing its end sends none.
for (const restarts of [true, false]) {
  Deno.test(
    `Simulation listeners drop a half-open connection whose client host crashed${
      restarts
        ? " and restarted (it resets the SYN-ACK sent again)"
        : " (the SYN-ACKs sent again go unanswered)"
    }`,
    async () => {
      const sim = new Simulation({ seed: 1, link: { latency: 0.05 } });
      sim.host("server", async (loop) => {
        await loop.createServer(() => new Protocol(), "0.0.0.0", 80, {
          startServing: false,
          backlog: 1,
        });
      });
      sim.host("client", async (loop) => {
        if (loop.time() > 0) return;
        await sleep(1);
        // The second ACK finds the queue full (1.15 s, then 2.25 s).
        await Promise.all([0, 1].map(async () => {
          const [t] = await connectRecorder(loop);
          t.write(encoder.encode("hi"));
          t.close();
        }));
        await sleep(1.5);
        sim.crash("client");
      });
      sim.client("observer", async () => {
        await sleep(3);
        if (restarts) sim.restart("client");
        await sleep(60);
      });
      await sim.run();
      const half = "10.0.0.1:80>10.0.0.2:49153";
      const events = (kind: string) =>
        sim.trace.filter((e) => e.kind === kind && e.detail.startsWith(half))
          .map((e) => `${Math.round(e.time * 1000)} ${e.host}`);
      if (restarts) {
        // The SYN-ACK sent again at 4.25 s finds a host that knows nothing
        // of the connection: its reset ends it.
        assertEquals(
          sim.trace.filter((e) => e.kind === "rst-sent").map((e) =>
            `${Math.round(e.time * 1000)} ${e.host} ${e.detail}`
          ),
          ["4300 client 10.0.0.2:49153>10.0.0.1:80"],
        );
        assertEquals(events("lost"), ["4350 server"]);
      } else {
        // Sent again at 4.25, 8.3, 16.35 and 32.4 s: the server gives up.
        assertEquals(events("rst-sent"), ["32450 server"]);
        assertEquals(events("lost"), ["32450 server"]);
      }
    },
  );
}

// The server's SYN-ACKs go unanswered while the ACK is held: Linux gives
// the half-open connection up, and the ACK that comes later is reset.
for (const writes of [true, false]) {
  Deno.test(
    `Simulation streams: an ACK held longer than retransmitTimeout never reaches the server's application (a client that ${
      writes ? "writes times out" : "is idle is reset"
    })`,
    async () => {
      const sim = new Simulation({ seed: 1, link: { latency: 0.05 } });
      const server = countingServer(sim);
      sim.client("client", async (loop) => {
        await sleep(1);
        const [t, p] = await connectRecorder(loop);
        // Connected at 1.1 s; the ACK, on the wire, meets the hold.
        sim.hold("client", "server");
        if (writes) t.write(encoder.encode("hi"));
        await sleep(70);
        sim.release("client", "server");
        // Released at 71.1 s: an ACK let through would arrive at 71.15 s.
        await sleep(1);
        assertEquals(
          (await p.lost)?.name,
          writes ? "TimedOut" : "ConnectionReset",
        );
        assertEquals(server.made, 0);
      });
      await sim.run();
      assertEquals(sim.trace.filter((e) => e.kind === "accept"), []);
    },
  );
}

Deno.test("Simulation.run() refuses to run beside another run, and twice", async () => {
  const a = new Simulation({ seed: 1 });
  a.client("c", async () => await sleep(1));
  const b = new Simulation({ seed: 2 });
  b.client("c", async () => await sleep(1));
  const first = a.run();
  await assertRejects(() => b.run(), InvalidStateError, "another simulation");
  await first;
  await assertRejects(() => a.run(), InvalidStateError, "has run already");
});

Deno.test("Simulation.run() without clients ends when idle, or fails at the limit when never idle", async () => {
  const idle = new Simulation({ seed: 1 });
  idle.host("h", (loop) => {
    loop.callLater(5, () => {});
  });
  await idle.run();
  assertEquals(idle.time(), 5);
  const busy = new Simulation({ seed: 1 });
  busy.host("h", (loop) => {
    loop.callRepeatedly(1, () => {});
  });
  const e = await assertRejects(
    () => busy.run({ limit: 100 }),
    SimulationError,
  );
  assertStringIncludes(e.message, "only until ends a run that never goes idle");
});

Deno.test("Simulation.run({ until }) past the default limit runs until then", async () => {
  const sim = new Simulation({ seed: 1 });
  let ticks = 0;
  sim.host("h", (loop) => {
    loop.callRepeatedly(1000, () => ticks++);
  });
  await sim.run({ until: 100000.5 });
  assertEquals(sim.time(), 100000.5);
  assertEquals(ticks, 100);
  // A limit given as well still applies.
  const limited = new Simulation({ seed: 1 });
  limited.host("h", (loop) => {
    loop.callRepeatedly(1000, () => {});
  });
  await assertRejects(
    () => limited.run({ until: 100000, limit: 5000 }),
    SimulationError,
    "after 5000 simulated seconds",
  );
});

Deno.test("Simulation listeners: a port in use, an address of another host, reusePort", async () => {
  const sim = new Simulation({ seed: 17 });
  sim.host("other", () => {});
  sim.client("box", async (loop) => {
    const server = await loop.createServer(() => new Recorder(), "0.0.0.0", 80);
    const inUse = await assertRejects(() =>
      loop.createServer(() => new Recorder(), "0.0.0.0", 80)
    );
    assertEquals((inUse as Error).name, "AddrInUse");
    const foreign = await assertRejects(() =>
      loop.createServer(() => new Recorder(), "other", 81)
    );
    assertEquals((foreign as Error).name, "AddrNotAvailable");
    assertEquals(server.addresses(), [
      { transport: "tcp", hostname: "10.0.0.2", port: 80 },
    ]);
    const a = await loop.createServer(() => new Recorder(), "box", 82, {
      reusePort: true,
    });
    const b = await loop.createServer(() => new Recorder(), "box", 82, {
      reusePort: true,
    });
    const local = await loop.createServer(() => new Recorder(), "127.0.0.1", 0);
    const { port } = local.addresses()[0] as Deno.NetAddr;
    assert(port >= 49152);
    // A loopback listener is out of reach from the host's own address.
    const e = await assertRejects(() =>
      loop.createConnection(() => new Recorder(), "box", port)
    );
    assertEquals((e as Error).name, "ConnectionRefused");
    const [t] = await loop.createConnection(
      () => new Recorder(),
      "localhost",
      port,
    );
    assertEquals(
      (t.getExtraInfo("peername") as Deno.NetAddr).hostname,
      "127.0.0.1",
    );
    t.close();
    // A listener on the host's own address is out of reach over loopback.
    const refused = await assertRejects(() =>
      loop.createConnection(() => new Recorder(), "localhost", 82)
    );
    assertEquals((refused as Error).name, "ConnectionRefused");
    for (const s of [server, a, b, local]) s.close();
  });
  await sim.run();
});

Deno.test("Simulation: a partition and a hold are undone separately — release() leaves a partition, repair() a hold", async () => {
  const sim = new Simulation({ seed: 17 });
  const got: [number, string][] = [];
  sim.host("sink", async (loop) => {
    class Sink extends DatagramProtocol {
      override datagramReceived(d: Uint8Array) {
        got.push([loop.time(), decoder.decode(d)]);
      }
    }
    await loop.createDatagramEndpoint(() => new Sink(), {
      localAddr: { hostname: "0.0.0.0", port: 53 },
    });
  });
  sim.client("source", async (loop) => {
    const [t] = await loop.createDatagramEndpoint(
      () => new DatagramProtocol(),
      { remoteAddr: { hostname: "sink", port: 53 } },
    );
    const send = async (what: string) => {
      t.sendto(encoder.encode(what));
      await sleep(1);
    };
    sim.partition("source", "sink");
    sim.release("source", "sink"); // nothing was held: still partitioned
    await send("lost to the partition");
    sim.repair("source", "sink");
    await send("after repair");
    sim.hold("source", "sink");
    sim.repair("source", "sink"); // nothing was partitioned: still held
    await send("held");
    sim.partition("source", "sink");
    sim.release("source", "sink"); // still partitioned
    await send("lost while held and partitioned");
    sim.repair("source", "sink");
    await send("after both");
    (t as DatagramTransport).close();
  });
  await sim.run();
  assertEquals(got.map(([, s]) => s), ["after repair", "held", "after both"]);
  // The held datagram crossed once neither held nor partitioned (at 4 s),
  // not when repair() was called on the held link (at 2 s).
  assert(got[1][0] > 4 && got[1][0] < 4.01, `crossed at ${got[1][0]}`);
});

/**
 * A host `name` with a datagram endpoint on every address at `port`;
 * `received` hears each datagram with the time it arrived.
 */
function datagramSink(
  sim: Simulation,
  name: string,
  port: number,
  received: (data: Uint8Array, time: number) => void,
): void {
  sim.host(name, async (loop) => {
    class Sink extends DatagramProtocol {
      override datagramReceived(d: Uint8Array) {
        received(d, loop.time());
      }
    }
    await loop.createDatagramEndpoint(() => new Sink(), {
      localAddr: { hostname: "0.0.0.0", port },
    });
  });
}

Deno.test("Simulation.partition() loses a datagram sent into it or on the wire when it starts, even if repaired before the datagram would arrive", async () => {
  const sim = new Simulation({ seed: 5, link: { latency: 0.01 } });
  const got: string[] = [];
  datagramSink(sim, "sink", 53, (d) => got.push(decoder.decode(d)));
  sim.client("source", async (loop) => {
    const [t] = await loop.createDatagramEndpoint(
      () => new DatagramProtocol(),
      { remoteAddr: { hostname: "sink", port: 53 } },
    );
    sim.partition("source", "sink");
    t.sendto(encoder.encode("sent into the partition"));
    await sleep(0.005);
    sim.repair("source", "sink"); // before it would have arrived
    await sleep(0.1);
    t.sendto(encoder.encode("on the wire when cut"));
    await sleep(0.005);
    sim.partition("source", "sink");
    sim.repair("source", "sink");
    await sleep(0.1);
    t.sendto(encoder.encode("after repair"));
    await sleep(0.1);
    (t as DatagramTransport).close();
  });
  await sim.run();
  assertEquals(got, ["after repair"]);
  assertEquals(
    sim.trace.filter((e) => e.kind === "drop").map((e) => e.detail),
    ["datagram from source", "datagram from source"],
  );
});

Deno.test("Simulation.run() gives Temporal.Now the virtual clock, as Date.now()", async () => {
  const now = Temporal.Now;
  const real = { instant: now.instant, plain: now.plainDateTimeISO };
  const seen: string[] = [];
  const sim = new Simulation({ seed: 5 });
  sim.client("c", async () => {
    await sleep(2.5);
    seen.push(
      Temporal.Now.instant().toString(),
      String(Temporal.Now.instant().epochMilliseconds === Date.now()),
      Temporal.Now.zonedDateTimeISO("UTC").toString(),
      Temporal.Now.plainDateTimeISO("UTC").toString(),
      Temporal.Now.plainDateISO("UTC").toString(),
      Temporal.Now.plainTimeISO("UTC").toString(),
    );
  });
  await sim.run();
  assertEquals(seen, [
    "2000-01-01T00:00:02.5Z",
    "true",
    "2000-01-01T00:00:02.5+00:00[UTC]",
    "2000-01-01T00:00:02.5",
    "2000-01-01",
    "00:00:02.5",
  ]);
  // Restored after the run.
  assertEquals(Temporal.Now.instant, real.instant);
  assertEquals(Temporal.Now.plainDateTimeISO, real.plain);
  assert(Temporal.Now.instant().epochMilliseconds > 946684800000 * 1.5);
});

Deno.test("Simulation.run(): Temporal.Now's instant is Date.now()'s millisecond at every virtual time", async () => {
  const sim = new Simulation({ seed: 5 });
  const differ: string[] = [];
  sim.client("c", async () => {
    // 1.029 s and 2.058 s (among others) are where a float's rounding
    // differs between milliseconds and nanoseconds.
    for (const at of [1.029, 1.043, 2.058, 2.086]) {
      await sleep(at - sim.time());
      const date = Date.now();
      const instant = Temporal.Now.instant();
      if (instant.epochMilliseconds !== date) {
        differ.push(`${at}: ${instant.epochMilliseconds} != ${date}`);
      }
      // Still within the millisecond Date.now() reads.
      const ns = instant.epochNanoseconds - BigInt(date) * 1000000n;
      if (ns < 0n || ns >= 1000000n) differ.push(`${at}: ${ns} ns`);
    }
  });
  await sim.run();
  assertEquals(differ, []);
});

Deno.test("Simulation.run() fails loudly on a WebSocket or an EventSource, as on fetch()", async () => {
  const RealWebSocket = WebSocket;
  const RealEventSource = EventSource;
  for (
    const [name, open] of [
      ["WebSocket", () => new WebSocket("ws://127.0.0.1:9/")],
      ["EventSource", () => new EventSource("http://127.0.0.1:9/")],
    ] as const
  ) {
    const sim = new Simulation({ seed: 5 });
    sim.client("c", () => {
      open();
    });
    const e = await assertRejects(() => sim.run(), SimulationError);
    assertStringIncludes(
      e.message,
      `Cannot make a ${name} inside a simulation: a simulated host has no real network`,
    );
  }
  assertEquals(WebSocket, RealWebSocket);
  assertEquals(EventSource, RealEventSource);
});

Deno.test("Simulation: seeds that differ only past 32 bits, in sign or in a fraction give different runs", async () => {
  const runOf = async (seed: number) => {
    const sim = new Simulation({ seed, link: { jitter: 0.5 } });
    let drawn = 0;
    sim.host("server", async (loop) => {
      await loop.createServer(() => new Recorder(), "0.0.0.0", 80);
    });
    sim.client("c", async (loop) => {
      drawn = Math.random();
      const [t] = await connectRecorder(loop);
      t.close();
    });
    await sim.run();
    return JSON.stringify([drawn, sim.time()]);
  };
  for (
    const [a, b] of [
      [0, 2 ** 32],
      [5, 5 + 2 ** 40],
      [-1, 2 ** 32 - 1],
      [0.25, 0.75],
      [1, 1.5],
    ]
  ) {
    assertNotEquals(await runOf(a), await runOf(b), `seeds ${a} and ${b}`);
    assertEquals(await runOf(b), await runOf(b), `seed ${b} replays`);
  }
});

Deno.test('Simulation streams: getExtraInfo("socket") is a socket view, as on the Deno loop, with its addresses and options', async () => {
  const sim = new Simulation({ seed: 2 });
  const views: Record<string, unknown>[] = [];
  const accepted: Recorder[] = [];
  recordingServer(sim, "server", 80, accepted);
  sim.client("c", async (loop) => {
    const [t] = await connectRecorder(loop);
    await sleep(0.01);
    for (const end of [t, accepted[0].transport!]) {
      const socket = end.getExtraInfo("socket") as {
        localAddr: Deno.Addr;
        remoteAddr: Deno.Addr;
        setNoDelay(on?: boolean): void;
        setKeepAlive(on?: boolean): void;
        ref(): void;
        unref(): void;
      };
      // What a program tunes on a real socket works here too.
      socket.setNoDelay(true);
      socket.setKeepAlive(true);
      socket.ref();
      socket.unref();
      assertEquals(socket.localAddr, end.getExtraInfo("sockname"));
      assertEquals(socket.remoteAddr, end.getExtraInfo("peername"));
      views.push({ ...socket.localAddr });
    }
    t.close();
  });
  await sim.run();
  assertEquals(views, [
    { transport: "tcp", hostname: "10.0.0.2", port: 49152 },
    { transport: "tcp", hostname: "10.0.0.1", port: 80 },
  ]);
});

Deno.test("Simulation: partition() or hold() by hand during a random one lasts until its own repair() or release(), not until the random one ends", async () => {
  for (
    const [block, unblock] of [["partition", "repair"], [
      "hold",
      "release",
    ]] as const
  ) {
    for (const seed of [0, 7, 8, 9]) {
      const sim = new Simulation({
        seed,
        faults: {
          [block]: 1,
          repairAfter: 1,
          releaseAfter: 1,
          hosts: ["a", "b"],
        },
      });
      const got: number[] = [];
      datagramSink(sim, "b", 9, (_, time) => got.push(time));
      sim.client("a", async (loop) => {
        const [t] = await loop.createDatagramEndpoint(
          () => new DatagramProtocol(),
          { remoteAddr: { hostname: "b", port: 9 } },
        );
        await sleep(1);
        sim[block]("a", "b");
        for (let i = 0; i < 200; i++) {
          t.sendto(encoder.encode("x"));
          await sleep(0.01);
        }
        sim[unblock]("a", "b");
        await sleep(0.5);
        (t as DatagramTransport).close();
      });
      await sim.run();
      const early = got.filter((time) => time < 3);
      assertEquals(early, [], `seed ${seed}: ${block}() by hand was undone`);
    }
  }
});

Deno.test("Simulation streams: a connect given up on before its SYN arrives never reaches the server's application", async () => {
  const sim = new Simulation({ seed: 1, link: { latency: 0.01 } });
  const made: number[] = [];
  sim.host("server", async (loop) => {
    class Counted extends Protocol {
      override connectionMade(): void {
        made.push(loop.time());
      }
    }
    await loop.createServer(() => new Counted(), "0.0.0.0", 80);
  });
  sim.client("client", async (loop) => {
    // A connect given up on while its SYN is held (turmoil's
    // client_hangup_on_connect), then released: nothing to accept.
    sim.hold("client", "server");
    await assertRejects(() =>
      waitFor(loop.createConnection(() => new Protocol(), "server", 80), 1)
    );
    sim.release("client", "server");
    await sleep(2);
    assertEquals(made, []);
    // The next connect is accepted.
    const [t] = await loop.createConnection(() => new Protocol(), "server", 80);
    await sleep(0.1);
    t.close();
    assertEquals(made.length, 1);
  });
  await sim.run();
  assertEquals(
    sim.trace.filter((e) => e.kind === "accept").map((e) =>
      Math.round(e.time * 1000)
    ),
    // Connect at 3 s; the ACK, after the SYN and the SYN-ACK, at 3.03 s.
    [3030],
  );
});

// Real TCP keeps a connection half-open in the server kernel's SYN queue
// until the client's ACK (the third packet); a client that gave up answers
// the SYN-ACK with a reset, and the server's application never hears of it.
for (
  const [how, giveUp] of [
    ["cancelled", "cancel"],
    ["timed out by waitFor", "waitFor"],
    ["whose host crashed", "crash"],
  ] as const
) {
  Deno.test(`Simulation streams: a connect ${how} between its SYN's arrival and the SYN-ACK's never reaches the server's protocol factory`, async () => {
    const sim = new Simulation({ seed: 2, link: { latency: 0.05 } });
    const server = countingServer(sim);
    sim.host("client", async (loop) => {
      await sleep(1);
      const connect = loop.createConnection(() => new Protocol(), "server", 80);
      // The SYN arrives at 1.05, the SYN-ACK would at 1.1.
      if (giveUp === "waitFor") {
        await assertRejects(() => waitFor(connect, 0.07));
      } else {
        await sleep(0.07);
        if (giveUp === "cancel") connect.cancel();
        else sim.crash("client");
      }
      await sleep(5);
    });
    sim.client("observer", async () => {
      await sleep(10);
      assertEquals(server.made, 0);
    });
    await sim.run();
    assertEquals(sim.trace.filter((e) => e.kind === "accept"), []);
  });
}

Deno.test("Simulation streams: a listener closed while a connection is half-open resets the client when its ACK arrives; the protocol factory is never called", async () => {
  const sim = new Simulation({ seed: 6, link: { latency: 0.05 } });
  let made = 0;
  sim.host("server", async (loop) => {
    const server = await loop.createServer(
      () => {
        made++;
        return new Protocol();
      },
      "0.0.0.0",
      80,
    );
    // The SYN arrived at 1.05 s; the ACK would at 1.15 s.
    await sleep(1.07);
    server.close();
  });
  sim.client("client", async (loop) => {
    await sleep(1);
    const [, p] = await loop.createConnection(
      () => new Recorder(),
      "server",
      80,
    );
    assertEquals((await p.lost)?.name, "ConnectionReset");
    assertEquals(Math.round(loop.time() * 1000), 1200);
    assertEquals(made, 0);
  });
  await sim.run();
});

Deno.test("Simulation streams: the handshake takes real TCP's times: connected after a round trip, accepted half a round trip later, first data after the accept", async () => {
  const sim = new Simulation({ seed: 4, link: { latency: 0.05 } });
  const events: string[] = [];
  const at = (loop: EventLoop) => Math.round(loop.time() * 1000);
  sim.host("server", async (loop) => {
    await loop.createServer(
      () => {
        class Server extends Protocol {
          override connectionMade(): void {
            events.push(`server made ${at(loop)}`);
          }
          override dataReceived(data: Uint8Array): void {
            events.push(`server got ${decoder.decode(data)} ${at(loop)}`);
          }
        }
        return new Server();
      },
      "0.0.0.0",
      80,
    );
  });
  sim.client("client", async (loop) => {
    await sleep(1);
    const [t] = await loop.createConnection(() => new Protocol(), "server", 80);
    events.push(`client connected ${at(loop)}`);
    t.write(encoder.encode("hi"));
    await sleep(1);
    t.close();
  });
  await sim.run();
  assertEquals(events, [
    "client connected 1100",
    "server made 1150",
    "server got hi 1150",
  ]);
});

Deno.test("Simulation streams: a connect given up on records no connect-timeout later", async () => {
  const sim = new Simulation({ seed: 3, link: { latency: 0.05 } });
  sim.host("server", async (loop) => {
    await loop.createServer(() => new Protocol(), "0.0.0.0", 80);
  });
  sim.client("c", async (loop) => {
    const connect = loop.createConnection(() => new Protocol(), "server", 80);
    await sleep(0.01);
    connect.cancel();
    await sleep(200);
  });
  await sim.run();
  // It said "connect-timeout" 75 s after it was given up on.
  assertEquals(
    sim.trace.filter((e) => e.kind === "connect-timeout").map((e) => e.time),
    [],
  );
});

Deno.test("Simulation: a host whose main is an async generator function fails saying so, instead of spinning", async () => {
  const sim = new Simulation({ seed: 1 });
  sim.client("c", async function* () {
    await sleep(1);
    yield 1;
  } as never);
  const e = await assertRejects(() => sim.run(), SimulationError);
  assertStringIncludes(
    e.message,
    "client c failed: TypeError: Cannot start host c: main returned an async generator; make main an async function or a generator function",
  );
});

Deno.test("Simulation.partition() that cuts off the peer's acknowledgements fails a writer waiting for them with TimedOut", async () => {
  const sim = new Simulation({
    seed: 1,
    link: { latency: 0.01 },
    retransmitTimeout: 5,
  });
  let cutAt = -1;
  sim.host("server", async (loop) => {
    class CutOnFullWindow extends Recorder {
      override dataReceived(data: Uint8Array): void {
        super.dataReceived(data);
        // The whole receive window arrived: its acknowledgements are
        // on their way back when the link goes down.
        if (this.bytes().length === 65536 && cutAt < 0) {
          cutAt = loop.time();
          sim.partition("server", "client");
        }
      }
    }
    await loop.createServer(() => new CutOnFullWindow(), "0.0.0.0", 80);
  });
  sim.client("client", async (loop) => {
    const [t, p] = await connectRecorder(loop);
    t.write(pattern(200_000));
    // The writer's unacknowledged bytes are sent again and again, as TCP
    // retransmits them, until the retransmission timeout gives up.
    assertEquals((await p.lost)?.name, "TimedOut");
    const waited = loop.time() - cutAt;
    assert(waited >= 5 && waited < 5.1, `timed out after ${waited} s`);
  });
  await sim.run({ limit: 60 });
});

Deno.test("Simulation.run() gives a host's AbortSignal.timeout() (and so @std/async's deadline()) the virtual clock", async () => {
  const realTimeout = AbortSignal.timeout;
  const log: string[] = [];
  const sim = new Simulation({ seed: 8 });
  sim.client("c", async (loop) => {
    const signal = AbortSignal.timeout(2000);
    assertEquals(signal.aborted, false);
    await new Promise((r) => signal.addEventListener("abort", r));
    const reason = signal.reason as DOMException;
    log.push(`aborted at ${loop.time()}: ${reason.name}`);
    const e = await assertRejects(() => deadline(sleep(60).then(), 500));
    log.push(`deadline at ${loop.time()}: ${(e as Error).name}`);
    // A huge timeout is kept, not cut to 1 ms as setTimeout()'s is.
    const long = AbortSignal.timeout(2 ** 32);
    await sleep(10);
    log.push(`long aborted: ${long.aborted}`);
    assertThrows(() => AbortSignal.timeout(-1), TypeError);
  });
  await sim.run();
  assertEquals(log, [
    "aborted at 2: TimeoutError",
    "deadline at 2.5: TimeoutError",
    "long aborted: false",
  ]);
  assertEquals(AbortSignal.timeout, realTimeout);
});

Deno.test("Simulation.run() while another runs is refused, and the first still puts everything back", async () => {
  const real = {
    connect: Deno.connect,
    now: Date.now,
    timeout: AbortSignal.timeout,
  };
  const first = new Simulation({ seed: 1 });
  first.client("c", async () => {
    await sleep(1);
  });
  const running = first.run();
  const second = new Simulation({ seed: 2 });
  second.client("c", () => {});
  await assertRejects(
    () => second.run(),
    InvalidStateError,
    "another simulation is running",
  );
  await running;
  assertEquals(
    { connect: Deno.connect, now: Date.now, timeout: AbortSignal.timeout },
    real,
  );
});

Deno.test("Simulation.run() that cannot replace a global puts back what it replaced, says which, and lets the next run start", async () => {
  const real = { connect: Deno.connect, fetch: globalThis.fetch };
  const random = Object.getOwnPropertyDescriptor(Math, "random")!;
  Object.defineProperty(Math, "random", { ...random, writable: false });
  try {
    const sim = new Simulation({ seed: 1 });
    sim.client("c", () => {});
    await assertRejects(
      () => sim.run(),
      TypeError,
      "Cannot run the simulation: cannot replace Math.random",
    );
    // Deno.connect and fetch (replaced before Math.random) are back.
    assertEquals({ connect: Deno.connect, fetch: globalThis.fetch }, real);
  } finally {
    Object.defineProperty(Math, "random", random);
  }
  const next = new Simulation({ seed: 1 });
  let drawn = -1;
  next.client("c", () => {
    drawn = Math.random();
  });
  await next.run();
  assert(drawn >= 0 && drawn < 1);
  assertEquals({ connect: Deno.connect, fetch: globalThis.fetch }, real);
});

Deno.test("Simulation.run() that spins without virtual time moving names the host that spun and the seed", async () => {
  const sim = new Simulation({ seed: 11 });
  sim.host("idle", async () => {
    await sleep(5);
  });
  sim.host("spinner", (loop) => {
    const again = () => loop.callSoon(again);
    again();
  });
  sim.client("c", async () => {
    await sleep(1);
  });
  const e = await assertRejects(
    () => sim.run({ maxSteps: 1000 }),
    SimulationError,
  );
  assertEquals(e.seed, 11);
  assertStringIncludes(
    e.message,
    "(seed 11) at 0.000000 s: the hosts ran 1000 steps without virtual time moving: a busy loop on host spinner",
  );
  const awaiting = new Simulation({ seed: 12 });
  awaiting.client("poller", async () => {
    while (true) await sleep(0);
  });
  const e2 = await assertRejects(
    () => awaiting.run({ maxSteps: 1000 }),
    SimulationError,
  );
  assertStringIncludes(e2.message, "a busy loop on host poller");
});

Deno.test("Simulation.run() fails, naming the host and the seed, on an error a host's code left uncaught (a promise nobody awaited, a queueMicrotask() callback) instead of the process dying", async () => {
  const sim = new Simulation({ seed: 15 });
  sim.host("h", () => {
    (async () => {
      await sleep(0.5);
      throw new Error("fire and forget");
    })();
  });
  sim.client("c", async () => {
    await sleep(1);
  });
  const e = await assertRejects(() => sim.run(), SimulationError);
  assertEquals(e.seed, 15);
  assertStringIncludes(
    e.message,
    "(seed 15) at 0.500000 s: host h left a promise rejection unhandled: Error: fire and forget",
  );
  assertInstanceOf(e.cause, Error);
  assertEquals(sim.trace.at(-1)?.kind, "fail");
  const micro = new Simulation({ seed: 16 });
  micro.client("c", async () => {
    await sleep(0.25);
    queueMicrotask(() => {
      throw new Error("micro boom");
    });
    await sleep(1);
  });
  const e2 = await assertRejects(() => micro.run(), SimulationError);
  assertStringIncludes(
    e2.message,
    "(seed 16) at 0.250000 s: client c threw an uncaught error: Error: micro boom",
  );
  // Outside a run, such errors are the process's again: the handlers
  // are gone.
  const seen: string[] = [];
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    seen.push(String(e.reason));
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  try {
    Promise.reject(new Error("after"));
    await new Promise((r) => setTimeout(r, 10));
  } finally {
    globalThis.removeEventListener("unhandledrejection", onRejection);
  }
  assertEquals(seen, ["Error: after"]);
});

Deno.test("Simulation: a rejection a host's code handles before its loop waits fails no run, as on a real loop; one still unhandled then does", async () => {
  const scenario = async () => {
    const loop = getRunningLoop()!;
    await sleep(0.01);
    const p = Promise.reject(new Error("handled an iteration later"));
    loop.callSoon(() => p.catch(() => {}));
    const q = Promise.reject(new Error("handled after sleep(0)"));
    await sleep(0);
    await sleep(0);
    await q.catch(() => {});
    await sleep(0.05);
    return "done";
  };
  // A real loop runs its iterations back to back: Deno sees nothing.
  assertEquals(await run(scenario), "done");
  const sim = new Simulation({ seed: 24 });
  let result = "";
  sim.client("c", async () => {
    result = await scenario();
  });
  await sim.run();
  assertEquals(result, "done");
  // Still unhandled when the loop waits: Deno would end the process.
  const late = new Simulation({ seed: 25 });
  late.client("c", async () => {
    await sleep(0.01);
    const p = Promise.reject(new Error("handled too late"));
    await sleep(0.01);
    await p.catch(() => {});
  });
  const e = await assertRejects(() => late.run(), SimulationError);
  assertStringIncludes(
    e.message,
    "(seed 25) at 0.010000 s: client c left a promise rejection unhandled: Error: handled too late",
  );
});

Deno.test("Simulation: a host's setImmediate() is a callback on its loop, so the run sees it and replays it", async () => {
  const descriptor = Object.getOwnPropertyDescriptor(
    globalThis,
    "setImmediate",
  );
  const run = async () => {
    const log: string[] = [];
    const sim = new Simulation({ seed: 14 });
    sim.client("c", async (loop) => {
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setImmediate(r));
        log.push(`immediate ${i} at ${loop.time()}`);
        await sleep(Math.random());
      }
      const cancelled = setImmediate(() => log.push("never"));
      clearImmediate(cancelled);
      await sleep(0.1);
    });
    await sim.run();
    return log;
  };
  const first = await run();
  assertEquals(first.length, 3);
  assertEquals(await run(), first);
  // A host spinning on setImmediate() is a busy loop the run catches.
  const sim = new Simulation({ seed: 14 });
  sim.client("spin", async () => {
    while (true) await new Promise((r) => setImmediate(r));
  });
  const e = await assertRejects(
    () => sim.run({ maxSteps: 1000 }),
    SimulationError,
  );
  assertStringIncludes(e.message, "a busy loop on host spin");
  // Put back as it was (Deno's is an accessor).
  assertEquals(
    Object.getOwnPropertyDescriptor(globalThis, "setImmediate"),
    descriptor,
  );
});

Deno.test("Simulation.run() gives performance.timeOrigin, performance.mark() and measure(), and Intl.DateTimeFormat's format() of now the virtual clock", async () => {
  const run = async () => {
    const seen: unknown[] = [];
    const sim = new Simulation({ seed: 3 });
    sim.client("c", async () => {
      await sleep(2.5);
      // OpenTelemetry's clock: timeOrigin + now() is the time of day.
      seen.push(performance.timeOrigin + performance.now(), Date.now());
      seen.push(performance.mark("simdet-mark").startTime, performance.now());
      seen.push(performance.measure("simdet-measure").duration);
      seen.push(
        performance.measure("simdet-since", { start: "simdet-mark" }).duration,
      );
      const format = new Intl.DateTimeFormat("en", {
        timeZone: "UTC",
        dateStyle: "short",
        timeStyle: "medium",
      });
      seen.push(format.format(), format.format(new Date()));
      seen.push(
        format.formatToParts().map((p) => p.value).join(""),
        format.format(undefined),
      );
    });
    await sim.run();
    performance.clearMarks("simdet-mark");
    performance.clearMeasures("simdet-measure");
    performance.clearMeasures("simdet-since");
    return seen;
  };
  const seen = await run();
  assertEquals(seen, [
    946684802500,
    946684802500,
    2500,
    2500,
    2500,
    0,
    "1/1/00, 12:00:02 AM",
    "1/1/00, 12:00:02 AM",
    "1/1/00, 12:00:02 AM",
    "1/1/00, 12:00:02 AM",
  ]);
  assertEquals(await run(), seen);
  // Real again once the run is over.
  assert(performance.timeOrigin > 1.7e12);
  assertNotEquals(
    new Intl.DateTimeFormat("en", { dateStyle: "short" }).format(),
    "1/1/00",
  );
});

Deno.test("Simulation.run() gives each run a performance timeline of its own: no earlier run's marks, nor the caller's, change it", async () => {
  const run = async (seed: number, mark: boolean) => {
    const seen: unknown[] = [];
    const sim = new Simulation({ seed });
    sim.client("c", async () => {
      seen.push(performance.getEntries().map((e) => e.name));
      await sleep(seed);
      if (mark) performance.mark("request");
      await sleep(0.5);
      try {
        seen.push(performance.measure("took", "request").duration);
      } catch (e) {
        seen.push((e as Error).name);
      }
    });
    await sim.run();
    return seen;
  };
  performance.mark("caller's", { startTime: 5, detail: { kept: true } });
  performance.mark("caller's later", { startTime: 10 });
  // From a later mark to an earlier one: a negative duration.
  performance.measure("caller's span", "caller's later", "caller's");
  const before = performance.getEntries().map((e) => e.toJSON());
  try {
    const alone = await run(1, false);
    assertEquals(alone, [[], "SyntaxError"]);
    assertEquals(await run(2, true), [[], 500]);
    // The same seed after another run: the same run.
    assertEquals(await run(1, false), alone);
    // The caller's are back as they were, and the runs' are gone.
    assertEquals(performance.getEntries().map((e) => e.toJSON()), before);
  } finally {
    performance.clearMarks();
    performance.clearMeasures();
  }
});

Deno.test("Simulation.run() fails, naming the host and the seed, when a host's setTimeout(), setInterval() or setImmediate() callback throws, as the process would die", async () => {
  const cases: [string, () => void][] = [
    ["setTimeout", () =>
      setTimeout(() => {
        throw new Error("timeout boom");
      }, 100)],
    ["setInterval", () => {
      let n = 0;
      setInterval(() => {
        if (++n === 2) throw new Error("interval boom");
      }, 50);
    }],
    ["setImmediate", () =>
      setTimeout(() =>
        setImmediate(() => {
          throw new Error("immediate boom");
        }), 100)],
  ];
  const seen: string[] = [];
  for (const [what, start] of cases) {
    const sim = new Simulation({ seed: 21 });
    sim.host("h", start);
    sim.client("c", async () => {
      await sleep(1);
    });
    const e = await assertRejects(() => sim.run(), SimulationError);
    seen.push(`${what}: ${e.message.split("\n")[0]}`);
  }
  assertEquals(seen, [
    "setTimeout: Simulation failed (seed 21) at 0.100000 s: host h threw an uncaught error: Error: timeout boom",
    "setInterval: Simulation failed (seed 21) at 0.100000 s: host h threw an uncaught error: Error: interval boom",
    "setImmediate: Simulation failed (seed 21) at 0.100000 s: host h threw an uncaught error: Error: immediate boom",
  ]);
});

Deno.test("Simulation: what a crashed host's old code leaves uncaught is the dead process's, and fails no run", async () => {
  let wake: () => void = () => {};
  const woken = new Promise<void>((r) => wake = r);
  const sim = new Simulation({ seed: 22 });
  sim.host("a", () => {
    // Resumed by the client after the crash: a life the host lost.
    (async () => {
      await woken;
      throw new Error("zombie");
    })();
  });
  sim.client("c", async () => {
    await sleep(0.1);
    sim.crash("a");
    await sleep(0.1);
    wake();
    await sleep(0.1);
  });
  await sim.run();
  assertEquals(sim.trace.filter((e) => e.kind === "fail"), []);
});

Deno.test("Simulation: an error left uncaught by code outside the hosts while a run runs is not the run's", async () => {
  const seen: string[] = [];
  const onRejection = (e: PromiseRejectionEvent) => {
    if (e.defaultPrevented) return;
    e.preventDefault();
    seen.push(String(e.reason));
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  try {
    const sim = new Simulation({ seed: 23 });
    sim.client("c", async () => {
      await sleep(1);
    });
    const running = sim.run();
    // The caller's own code, in a real timer, during the run.
    await new Promise((r) => setTimeout(r, 0));
    Promise.reject(new Error("outside"));
    await running;
    await new Promise((r) => setTimeout(r, 0));
    assertEquals(sim.trace.filter((e) => e.kind === "fail"), []);
  } finally {
    globalThis.removeEventListener("unhandledrejection", onRejection);
  }
  assertEquals(seen, ["Error: outside"]);
});

Deno.test("Simulation streams: an end that timed out answers the peer's later bytes with a reset, as a kernel that dropped the socket does", async () => {
  for (const closeAfter of [false, true]) {
    const { sim, accepted } = simWithServer({
      seed: 41,
      retransmitTimeout: 20,
    });
    sim.client("client", async (loop) => {
      const [t, p] = await connectRecorder(loop);
      const server = await acceptedAt(accepted);
      sim.partition("server", "client");
      t.write(pattern(10));
      assertEquals((await p.lost)?.name, "TimedOut");
      // The application may close the transport it lost, or not.
      if (closeAfter) t.close();
      sim.repair("server", "client");
      await sleep(1);
      // The server never heard of it: its next write draws the reset.
      assertEquals(server.lostWith, null);
      server.transport!.write(pattern(5));
      assertEquals((await server.lost)?.name, "ConnectionReset");
    });
    await sim.run();
    assert(
      sim.trace.some((e) => e.host === "client" && e.kind === "rst-sent"),
      `closeAfter ${closeAfter}`,
    );
  }
});

Deno.test("Simulation: a protocol factory that returns no protocol fails with a TypeError that says so; a server reports it and drops the connection", async () => {
  const seen: string[] = [];
  const sim = new Simulation({ seed: 41 });
  sim.host("s", async (loop) => {
    loop.setExceptionHandler((_loop, context) =>
      seen.push(`${context.message}: ${context.exception}`)
    );
    await loop.createServer(() => null as never, "0.0.0.0", 80);
    await sleep(10);
  });
  sim.client("c", async (loop) => {
    for (
      const call of [
        () => loop.createConnection(() => undefined as never, "s", 80),
        () =>
          loop.createDatagramEndpoint(() => 7 as never, {
            localAddr: { hostname: "0.0.0.0", port: 0 },
          }),
      ]
    ) {
      seen.push(`${await call().then(() => "made", (e) => e)}`);
    }
    const lost = loop.createFuture<void>();
    await loop.createConnection(
      () =>
        new (class extends Protocol {
          override connectionLost() {
            lost.setResult();
          }
        })(),
      "s",
      80,
    );
    await lost;
    seen.push("lost");
  });
  await sim.run();
  const no =
    "protocolFactory must return a protocol (an object with connectionMade())";
  assertEquals(seen, [
    `TypeError: Cannot call createConnection(): ${no}, received undefined`,
    `TypeError: Cannot call createDatagramEndpoint(): ${no}, received 7`,
    `Protocol factory failed: TypeError: Cannot serve a connection: ${no}, received null`,
    "lost",
  ]);
});
