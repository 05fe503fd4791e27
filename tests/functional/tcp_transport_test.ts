// Real-socket tests of DenoEventLoop's TCP connections and servers, on
// 127.0.0.1 port 0.

import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { BufferedProtocol, Protocol } from "../../protocols/protocol.ts";
import type { Producer } from "../../transports/transport.ts";
import { CancelledError, InvalidStateError } from "../../futures/errors.ts";
import type { Server } from "../../loop/event_loop.ts";
import {
  accepted,
  bytes,
  collectErrors,
  pattern,
  portOf,
  Recorder,
  sleepTick,
  text,
  within,
  withLoop,
} from "./_stream_helpers.ts";

const HOST = "127.0.0.1";

/** A server whose protocols are Recorders, and the list of them. */
async function recordingServer(
  loop: DenoEventLoop,
  options?: { echo?: boolean; setup?: (p: Recorder) => void },
): Promise<[Server, Recorder[]]> {
  const protocols: Recorder[] = [];
  const server = await loop.createServer(
    () => {
      const p = new Recorder(loop, { echo: options?.echo });
      options?.setup?.(p);
      protocols.push(p);
      return p;
    },
    HOST,
    0,
  );
  return [server, protocols];
}

async function shutdown(server: Server): Promise<void> {
  server.close();
  await server.waitClosed();
}

// ---- Connecting and the call order ----

Deno.test("createConnection() resolves after connectionMade with the transport and protocol", async () => {
  await withLoop(async (loop) => {
    const [server] = await recordingServer(loop, { echo: true });
    const client = new Recorder(loop);
    const [transport, protocol] = await loop.createConnection(
      () => client,
      HOST,
      portOf(server),
    );
    assertEquals(protocol, client);
    assertEquals(client.events, ["made"]);
    assertEquals(client.transport, transport);
    transport.write(bytes("ping"));
    await client.until(4);
    assertEquals(text(client.data()), "ping");
    transport.close();
    assertEquals(await client.lost, undefined);
    await shutdown(server);
  });
});

Deno.test("A stream transport calls made, data, eof and lost in order, lost exactly once", async () => {
  await withLoop(async (loop) => {
    const [server, accepted_] = await recordingServer(loop);
    const client = new Recorder(loop);
    const [transport] = await loop.createConnection(
      () => client,
      HOST,
      portOf(server),
    );
    const peer = await accepted(loop, accepted_);
    peer.transport.write(bytes("hello"));
    peer.transport.close();
    await client.lost;
    await peer.lost;
    // The client's data may arrive in one piece or several.
    const events = client.events.filter((e, i, a) =>
      e !== "data" || a[i - 1] !== "data"
    );
    assertEquals(events, ["made", "data", "eof", "lost"]);
    assertEquals(text(client.data()), "hello");
    assert(transport.isClosing());
    await sleepTick(loop);
    assertEquals(client.count("lost"), 1);
    assertEquals(peer.count("lost"), 1);
    await shutdown(server);
  });
});

Deno.test("createConnection() honours a localAddr the system's choice meets, and fails one it does not", async () => {
  // SPEC: createConnection's opts include localAddr. Deno connects without
  // binding first, so the address the system picked is checked instead.
  await withLoop(async (loop) => {
    const [server] = await recordingServer(loop);
    const port = portOf(server);
    for (const hostname of [HOST, "0.0.0.0"]) {
      const [transport] = await loop.createConnection(
        () => new Protocol(),
        HOST,
        port,
        { localAddr: { hostname, port: 0 } },
      );
      const sockname = transport.getExtraInfo("sockname") as Deno.NetAddr;
      assertEquals(sockname.hostname, HOST);
      transport.close();
    }
    const taken = Deno.listen({ hostname: HOST, port: 0 });
    const busy = taken.addr.port;
    taken.close();
    const err = await assertRejects(
      () =>
        loop.createConnection(() => new Protocol(), HOST, port, {
          localAddr: { hostname: HOST, port: busy },
        }),
      Deno.errors.NotSupported,
    );
    assertStringIncludes(err.message, `localAddr=${HOST}:${busy}`);
    await shutdown(server);
  });
});

Deno.test("createConnection() names host and port when the connection is refused", async () => {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = listener.addr.port;
  listener.close();
  const loop = new DenoEventLoop();
  const err = await assertRejects(
    () => within(loop, loop.createConnection(() => new Protocol(), HOST, port)),
    Deno.errors.ConnectionRefused,
  );
  assertStringIncludes(err.message, `Cannot connect to ${HOST}:${port}`);
  assertInstanceOf(err.cause, Deno.errors.ConnectionRefused);
  loop.close();
});

Deno.test("createConnection() with ssl: null connects in plain TCP, as ssl: false does (asyncio's ssl=None)", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop, { echo: true });
    const client = new Recorder(loop);
    const [transport] = await loop.createConnection(
      () => client,
      HOST,
      portOf(server),
      { ssl: null as unknown as false },
    );
    transport.write(bytes("plain"));
    await client.until(5);
    assertEquals(text(client.data()), "plain");
    assertEquals(transport.getExtraInfo("alpnProtocol"), undefined);
    transport.close();
    await client.lost;
    for (const p of protocols) await p.lost;
    await shutdown(server);
  });
});

Deno.test("createServer() with ssl: null serves plain TCP, as createConnection() takes ssl: null (asyncio's ssl=None)", async () => {
  await withLoop(async (loop) => {
    const protocols: Recorder[] = [];
    // It was refused: "ssl must be { cert, key } in PEM, received object".
    const server = await loop.createServer(
      () => {
        const p = new Recorder(loop, { echo: true });
        protocols.push(p);
        return p;
      },
      HOST,
      0,
      { ssl: null as never },
    );
    const client = new Recorder(loop);
    const [transport] = await loop.createConnection(
      () => client,
      HOST,
      portOf(server),
    );
    transport.write(bytes("plain"));
    await client.until(5);
    assertEquals(text(client.data()), "plain");
    transport.close();
    await client.lost;
    for (const p of protocols) await p.lost;
    await shutdown(server);
  });
});

Deno.test("createConnection() can be cancelled while connecting", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const made: string[] = [];
    class P extends Protocol {
      override connectionMade() {
        made.push("made");
      }
    }
    const fut = loop.createConnection(() => new P(), HOST, portOf(server));
    fut.cancel();
    await assertRejects(() => Promise.resolve(fut), CancelledError);
    // Whatever the server accepted goes away again.
    await sleepTick(loop);
    for (const p of protocols) await p.lost;
    assertEquals(made, []);
    await shutdown(server);
  });
});

Deno.test("createConnection() and createServer() check their arguments", () => {
  const loop = new DenoEventLoop();
  const f = () => new Protocol();
  assertThrows(() => loop.createConnection(f, HOST, 70000), RangeError, "port");
  assertThrows(() => loop.createConnection(f, HOST, 1.5), RangeError, "port");
  assertThrows(
    () => loop.createConnection("x" as never, HOST, 1),
    TypeError,
    "protocolFactory",
  );
  assertThrows(
    () => loop.createConnection(f, HOST, 1, { serverHostname: "a" }),
    RangeError,
    "serverHostname needs ssl",
  );
  assertThrows(
    () =>
      loop.createConnection(f, HOST, 1, {
        ssl: true,
        serverHostname: 5 as never,
      }),
    TypeError,
    "Cannot call createConnection(): serverHostname must be a string, received number",
  );
  // null is no serverHostname (asyncio's server_hostname=None), TLS or not.
  loop.createConnection(f, HOST, 1, { serverHostname: null as never })
    .cancel();
  assertThrows(
    () =>
      loop.createConnection(f, HOST, 1, { localAddr: { port: 0 } as never }),
    TypeError,
    "localAddr.hostname",
  );
  assertThrows(
    () =>
      loop.createConnection(f, HOST, 1, {
        localAddr: { hostname: HOST, port: -1 },
      }),
    RangeError,
    "localAddr.port",
  );
  assertThrows(
    () =>
      loop.createConnection(f, HOST, 1, {
        localAddr: { hostname: "localhost", port: 0 },
      }),
    RangeError,
    "localAddr.hostname must be an IP address",
  );
  assertThrows(() => loop.createServer(f, HOST, -1), RangeError, "port");
  assertThrows(
    () => loop.createServer(f, HOST, 0, { backlog: -3 }),
    RangeError,
    "backlog",
  );
  assertThrows(
    () => loop.createServer(f, HOST, 0, { ssl: { cert: 1 } as never }),
    TypeError,
    "ssl",
  );
  loop.close();
  assertThrows(
    () => loop.createConnection(f, HOST, 1),
    InvalidStateError,
    "closed",
  );
});

Deno.test("createServer() names the address it cannot listen on", async () => {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const loop = new DenoEventLoop();
  const err = await assertRejects(
    () =>
      within(
        loop,
        loop.createServer(() => new Protocol(), HOST, listener.addr.port),
      ),
    Deno.errors.AddrInUse,
  );
  assertStringIncludes(err.message, `${HOST}:${listener.addr.port}`);
  listener.close();
  loop.close();
});

// ---- Writing ----

Deno.test("Transport.write() calls in a row arrive as one byte stream", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    const whole = pattern(300_000);
    // Many writes of odd sizes, made before any completes.
    let at = 0;
    for (let size = 1; at < whole.length; size = (size * 7 + 3) % 9000 + 1) {
      t.write(whole.subarray(at, Math.min(at + size, whole.length)));
      at += size;
    }
    assert(t.getWriteBufferSize() > 0);
    const peer = await accepted(loop, protocols);
    await peer.until(whole.length);
    assertEquals(peer.data(), whole);
    t.close();
    await client.lost;
    await shutdown(server);
  });
});

Deno.test("Transport.writelines() sends the buffers in order", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    t.writelines([bytes("one\r\n"), bytes(""), bytes("two\r\n")]);
    t.writelines(new Set([bytes("three\r\n")]));
    const peer = await accepted(loop, protocols);
    await peer.until(17);
    assertEquals(text(peer.data()), "one\r\ntwo\r\nthree\r\n");
    assertThrows(
      () => t.writelines([bytes("a"), "b" as never]),
      TypeError,
      'Cannot call writelines(): every item must be a Uint8Array, received "b"',
    );
    t.close();
    await client.lost;
    await shutdown(server);
  });
});

Deno.test("Transport.write() rejects a string with a TypeError saying bytes are expected", async () => {
  await withLoop(async (loop) => {
    const [server] = await recordingServer(loop);
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    const err = assertThrows(() => t.write("hello" as never), TypeError);
    assertEquals(
      err.message,
      'Cannot call write(): data must be a Uint8Array, received "hello"',
    );
    assertThrows(() => t.write(new ArrayBuffer(2) as never), TypeError);
    t.close();
    await client.lost;
    await shutdown(server);
  });
});

Deno.test("Transport.close() flushes 8 MiB before connectionLost(undefined), called once", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    const big = pattern(8 * 1024 * 1024, 7);
    for (let at = 0; at < big.length; at += 1 << 20) {
      t.write(big.subarray(at, at + (1 << 20)));
    }
    t.close();
    assert(t.isClosing());
    assertThrows(() => t.write(bytes("late")), InvalidStateError, "closing");
    t.close(); // a second close is a no-op
    const peer = await accepted(loop, protocols);
    await peer.eof;
    assertEquals(peer.received, big.length);
    assertEquals(peer.data(), big);
    assertEquals(await client.lost, undefined);
    assertEquals(client.count("lost"), 1);
    assertEquals(t.getWriteBufferSize(), 0);
    await shutdown(server);
  });
});

Deno.test("Transport.abort() drops the buffer and closes at once", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    const peer = await accepted(loop, protocols);
    peer.transport.pauseReading(); // let the buffer back up
    for (let i = 0; i < 64; i++) t.write(new Uint8Array(256 * 1024));
    assert(t.getWriteBufferSize() > 0);
    t.abort();
    assertEquals(t.getWriteBufferSize(), 0);
    assert(t.isClosing());
    assertEquals(await client.lost, undefined);
    assertEquals(client.count("lost"), 1);
    peer.transport.resumeReading();
    await peer.lost;
    assert(peer.received < 64 * 256 * 1024);
    await shutdown(server);
  });
});

Deno.test("Transport.writeEof() half-closes: the peer reads EOF and can still answer", async () => {
  await withLoop(async (loop) => {
    // The server answers "bye" once it reads EOF, and stays half-open.
    class Answer extends Recorder {
      override eofReceived(): boolean {
        super.eofReceived();
        this.transport.write(bytes(`got ${this.received}`));
        this.transport.close();
        return true;
      }
    }
    const server = await loop.createServer(() => new Answer(loop), HOST, 0);
    const client = new Recorder(loop);
    client.keepOpen = true;
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    assert(t.canWriteEof());
    t.write(bytes("12345"));
    t.writeEof();
    t.writeEof(); // twice is fine
    assertThrows(() => t.write(bytes("x")), InvalidStateError, "writeEof");
    await client.eof;
    assertEquals(text(client.data()), "got 5");
    t.close();
    assertEquals(await client.lost, undefined);
    await shutdown(server);
  });
});

Deno.test("Protocol.eofReceived() returning true keeps the transport open for writing", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop, {
      setup: (p) => p.keepOpen = true,
    });
    const client = new Recorder(loop);
    client.keepOpen = true;
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    const peer = await accepted(loop, protocols);
    t.writeEof();
    await peer.eof;
    assertFalse(peer.transport.isClosing());
    peer.transport.write(bytes("still here"));
    peer.transport.close();
    await client.eof;
    assertEquals(text(client.data()), "still here");
    await peer.lost;
    t.close();
    await client.lost;
    await shutdown(server);
  });
});

Deno.test("Protocol.eofReceived() returning nothing closes the transport", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    const peer = await accepted(loop, protocols);
    t.writeEof();
    await peer.eof;
    assertEquals(await peer.lost, undefined);
    assert(peer.transport.isClosing());
    await client.lost;
    await shutdown(server);
  });
});

// ---- Reading ----

Deno.test("Transport.pauseReading() stops delivery until resumeReading()", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    class PauseAtFirst extends Recorder {
      override dataReceived(data: Uint8Array): void {
        super.dataReceived(data);
        this.transport.pauseReading();
      }
    }
    const client = new PauseAtFirst(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    assert(t.isReading());
    const peer = await accepted(loop, protocols);
    peer.transport.write(bytes("a"));
    await client.until(1);
    assertFalse(t.isReading());
    peer.transport.write(bytes("bc"));
    // Give the bytes every chance to arrive: nothing is delivered.
    for (let i = 0; i < 20; i++) await sleepTick(loop);
    assertEquals(client.received, 1);
    t.pauseReading(); // no-op
    t.resumeReading();
    assert(t.isReading());
    await client.until(3);
    assertEquals(text(client.data()), "abc");
    t.resumeReading(); // no-op
    t.close();
    assertFalse(t.isReading());
    await client.lost;
    await shutdown(server);
  });
});

Deno.test("A stream transport delivers a large transfer intact in streaming-size reads", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    const peer = await accepted(loop, protocols);
    const big = pattern(4 * 1024 * 1024, 3);
    peer.transport.write(big);
    await client.until(big.length);
    const got = client.data();
    assertEquals(got, big);
    // Reads grew beyond the idle size while data streamed in.
    assert(Math.max(...client.chunks.map((c) => c.length)) > 1024);
    // Every chunk handed over stays intact: none was reused for later data.
    let at = 0;
    for (const c of client.chunks) {
      assertEquals(c, big.subarray(at, at + c.length));
      at += c.length;
    }
    t.close();
    await client.lost;
    await shutdown(server);
  });
});

Deno.test("BufferedProtocol receives reads straight into its own buffer", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const done = loop.createFuture<void>();
    const hints: number[] = [];
    let eof = 0;
    class Sink extends BufferedProtocol {
      readonly buf = new Uint8Array(1 << 20);
      n = 0;
      lost: Error | undefined | null = null;
      override getBuffer(sizeHint: number): Uint8Array {
        hints.push(sizeHint);
        return this.buf.subarray(this.n, this.n + 1000);
      }
      override bufferUpdated(nbytes: number): void {
        this.n += nbytes;
      }
      override eofReceived(): boolean {
        eof++;
        return false;
      }
      override connectionLost(exc?: Error): void {
        this.lost = exc;
        done.setResult(undefined);
      }
    }
    const sink = new Sink();
    await loop.createConnection(() => sink, HOST, portOf(server));
    const peer = await accepted(loop, protocols);
    const data = pattern(100_000, 5);
    peer.transport.write(data);
    peer.transport.close();
    await done;
    assertEquals(sink.n, data.length);
    assertEquals(sink.buf.subarray(0, sink.n), data);
    assertEquals(eof, 1);
    assertEquals(sink.lost, undefined);
    assert(hints.every((h) => h > 0));
    await shutdown(server);
  });
});

Deno.test("A stream transport reports protocol errors and closes with them", async () => {
  await withLoop(async (loop) => {
    const errors = collectErrors(loop);
    const [server, protocols] = await recordingServer(loop);
    const boom = new Error("boom");
    class Fails extends Recorder {
      override dataReceived(): void {
        throw boom;
      }
    }
    const client = new Fails(loop);
    await loop.createConnection(() => client, HOST, portOf(server));
    const peer = await accepted(loop, protocols);
    peer.transport.write(bytes("x"));
    assertEquals(await client.lost, boom);
    assertEquals(errors.length, 1);
    assertStringIncludes(errors[0].message, "dataReceived");
    assertEquals(errors[0].exception, boom);
    await peer.lost;
    await shutdown(server);
  });
});

Deno.test("A BufferedProtocol swapped in during a read that fails is reported under the call that failed, getBuffer() or bufferUpdated()", async () => {
  for (const firstKind of ["Protocol", "BufferedProtocol"]) {
    for (const call of ["getBuffer", "bufferUpdated"]) {
      await withLoop(async (loop) => {
        const errors = collectErrors(loop);
        const [server, protocols] = await recordingServer(loop);
        const boom = new Error(`${call} failed`);
        // The first protocol's read is in flight when the second takes over.
        class Lends extends BufferedProtocol {
          override getBuffer(): Uint8Array {
            return new Uint8Array(100);
          }
          override bufferUpdated(): void {}
        }
        class Fails extends BufferedProtocol {
          readonly lost = loop.createFuture<Error | undefined>();
          override getBuffer(): Uint8Array {
            if (call === "getBuffer") throw boom;
            return new Uint8Array(100);
          }
          override bufferUpdated(): void {
            throw boom;
          }
          override connectionLost(exc?: Error): void {
            this.lost.setResult(exc);
          }
        }
        const first = firstKind === "Protocol"
          ? new Recorder(loop)
          : new Lends();
        const [t] = await loop.createConnection(
          () => first,
          HOST,
          portOf(server),
        );
        const second = new Fails();
        t.setProtocol(second);
        const peer = await accepted(loop, protocols);
        peer.transport.write(bytes("x"));
        assertEquals(await second.lost, boom);
        assertEquals(
          errors.map((e) => e.message),
          [`Fatal error: protocol.${call}() call failed`],
          `first a ${firstKind}`,
        );
        assertEquals(errors[0].exception, boom);
        await peer.lost;
        await shutdown(server);
      });
    }
  }
});

Deno.test("createConnection() fails with the error connectionMade() throws", async () => {
  await withLoop(async (loop) => {
    const errors = collectErrors(loop);
    const [server, protocols] = await recordingServer(loop);
    const boom = new Error("no");
    const lost: unknown[] = [];
    class Fails extends Protocol {
      override connectionMade(): void {
        throw boom;
      }
      override connectionLost(exc?: Error): void {
        lost.push(exc);
      }
    }
    await assertRejects(
      () =>
        Promise.resolve(
          loop.createConnection(() => new Fails(), HOST, portOf(server)),
        ),
      Error,
      "no",
    );
    await (await accepted(loop, protocols)).lost;
    await sleepTick(loop);
    assertEquals(lost, [boom]);
    assertEquals(errors.length, 1);
    await shutdown(server);
  });
});

// ---- Extra information and protocols ----

Deno.test("Transport.getExtraInfo() gives the addresses and a socket view", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    const peer = await accepted(loop, protocols);
    const peername = t.getExtraInfo("peername") as Deno.NetAddr;
    const sockname = t.getExtraInfo("sockname") as Deno.NetAddr;
    assertEquals(peername, {
      transport: "tcp",
      hostname: HOST,
      port: portOf(server),
    });
    assertEquals(sockname.transport, "tcp");
    assertEquals(peer.transport.getExtraInfo("peername"), sockname);
    const socket = t.getExtraInfo("socket") as {
      setNoDelay(on?: boolean): void;
      remoteAddr: Deno.NetAddr;
    };
    assertEquals(socket.remoteAddr, peername);
    socket.setNoDelay(true);
    assertEquals(t.getExtraInfo("peercert"), undefined);
    assertEquals(t.getExtraInfo("nothing", 42), 42);
    t.close();
    await client.lost;
    await shutdown(server);
  });
});

Deno.test("Transport.setProtocol() sends later events to the new protocol", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const first = new Recorder(loop);
    const [t] = await loop.createConnection(() => first, HOST, portOf(server));
    const second = new Recorder(loop);
    t.setProtocol(second);
    assertEquals(t.getProtocol(), second);
    const peer = await accepted(loop, protocols);
    peer.transport.write(bytes("for the second"));
    peer.transport.close();
    await second.lost;
    assertEquals(text(second.data()), "for the second");
    assertEquals(first.events, ["made"]);
    await shutdown(server);
  });
});

// ---- Flow control ----

Deno.test("A slow reader drives pauseWriting() and resumeWriting()", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const total = 16 * 1024 * 1024;
    const chunk = pattern(64 * 1024, 9);
    let sent = 0;
    const finished = loop.createFuture<void>();
    // Writes as long as it may; stops at pauseWriting, goes on at resume.
    class Pump extends Recorder {
      paused = false;
      pump(): void {
        while (!this.paused && sent < total) {
          this.transport.write(chunk);
          sent += chunk.length;
        }
        if (sent >= total && !finished.done()) finished.setResult(undefined);
      }
      override pauseWriting(): void {
        super.pauseWriting();
        this.paused = true;
      }
      override resumeWriting(): void {
        super.resumeWriting();
        this.paused = false;
        this.pump();
      }
    }
    const client = new Pump(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    const peer = await accepted(loop, protocols);
    peer.transport.pauseReading();
    client.pump();
    assertEquals(client.events.at(-1), "pause");
    assert(t.getWriteBufferSize() > 64 * 1024);
    const [low, high] = t.getWriteBufferLimits();
    assertEquals([low, high], [16384, 65536]);
    peer.transport.resumeReading();
    await finished;
    await peer.until(total);
    assert(client.count("pause") >= 1);
    assertEquals(
      client.count("pause"),
      client.count("resume") + (client.paused ? 1 : 0),
    );
    assertEquals(peer.received, total);
    t.close();
    await client.lost;
    await peer.lost;
    await shutdown(server);
  });
});

Deno.test("Transport.setWriteBufferLimits() validates and applies the marks", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    const err = assertThrows(() => t.setWriteBufferLimits(4, 8), RangeError);
    assertEquals(
      err.message,
      "Cannot set write buffer limits: high must be >= low, received high=4 low=8",
    );
    t.setWriteBufferLimits(10, 0);
    assertEquals(t.getWriteBufferLimits(), [0, 10]);
    const peer = await accepted(loop, protocols);
    t.write(new Uint8Array(11));
    assertEquals(client.events.at(-1), "pause");
    await peer.until(11);
    while (client.events.at(-1) !== "resume") await sleepTick(loop);
    t.close();
    await client.lost;
    await shutdown(server);
  });
});

Deno.test("Transport.registerProducer() pauses and resumes a push producer", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    const peer = await accepted(loop, protocols);
    peer.transport.pauseReading();
    const total = 8 * 1024 * 1024;
    const log: string[] = [];
    let sent = 0;
    let paused = false;
    const finished = loop.createFuture<void>();
    const producer: Producer = {
      pauseProducing() {
        log.push("pause");
        paused = true;
      },
      resumeProducing() {
        log.push("resume");
        paused = false;
        produce();
      },
      stopProducing() {
        log.push("stop");
      },
    };
    function produce() {
      while (!paused && sent < total) {
        t.write(new Uint8Array(32 * 1024));
        sent += 32 * 1024;
      }
      if (sent >= total && !finished.done()) finished.setResult(undefined);
    }
    t.registerProducer(producer, true);
    assertThrows(
      () => t.registerProducer(producer, true),
      InvalidStateError,
    );
    produce();
    assertEquals(log, ["pause"]);
    peer.transport.resumeReading();
    await finished;
    await peer.until(total);
    assert(log.filter((e) => e === "resume").length >= 1);
    t.close();
    assertEquals(log.at(-1), "stop");
    await client.lost;
    await shutdown(server);
  });
});

Deno.test("Transport.registerProducer() asks a pull producer for more as the buffer drains", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    const whole = pattern(2 * 1024 * 1024, 11);
    let at = 0;
    let asked = 0;
    const producer: Producer = {
      resumeProducing() {
        asked++;
        if (at >= whole.length) {
          t.unregisterProducer();
          t.close();
          return;
        }
        t.write(whole.subarray(at, at + 100_000));
        at += 100_000;
      },
    };
    t.registerProducer(producer, false);
    const peer = await accepted(loop, protocols);
    await client.lost;
    await peer.eof;
    assertEquals(peer.data(), whole);
    assertEquals(asked, Math.ceil(whole.length / 100_000) + 1);
    await shutdown(server);
  });
});

Deno.test("A stream transport stops its producer when the connection is lost", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    const log: string[] = [];
    t.registerProducer({
      pauseProducing: () => log.push("pause"),
      resumeProducing: () => log.push("resume"),
      stopProducing: () => log.push("stop"),
    }, true);
    const peer = await accepted(loop, protocols);
    peer.transport.abort();
    await client.lost;
    assertEquals(log, ["stop"]);
    await shutdown(server);
  });
});

// ---- Errors from the peer ----

Deno.test("A peer reset in the middle of a write reaches connectionLost(err)", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const client = new Recorder(loop);
    client.keepOpen = true;
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    // The server stops reading; once unread bytes wait in its receive
    // buffer, it hangs up, and the kernel resets the connection.
    const peer = await accepted(loop, protocols);
    peer.transport.pauseReading();
    const chunk = new Uint8Array(1024 * 1024);
    for (let i = 0; i < 16; i++) t.write(chunk);
    await sleepTick(loop);
    peer.transport.abort();
    const exc = await client.lost;
    assertInstanceOf(exc, Error);
    assertEquals(client.count("lost"), 1);
    // Writes after the reset but before connectionLost were dropped quietly;
    // after connectionLost they throw.
    assertThrows(() => t.write(bytes("x")), InvalidStateError);
    await shutdown(server);
  });
});

Deno.test("A write after the connection broke, but before connectionLost runs, is dropped quietly", async () => {
  // The peer is not tulip: it accepts and hangs up at once.
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const hangUp = listener.accept().then((conn) => conn.close());
  await withLoop(async (loop) => {
    const client = new Recorder(loop);
    client.keepOpen = true;
    const [t] = await loop.createConnection(
      () => client,
      HOST,
      (listener.addr as Deno.NetAddr).port,
    );
    // Write every iteration until connectionLost: some write comes after
    // the transport saw the failure and scheduled connectionLost.
    const refused: unknown[] = [];
    let lost = false;
    client.lost.then(() => lost = true, () => lost = true);
    const pump = (): void => {
      if (lost || client.count("lost") > 0) return;
      try {
        t.write(new Uint8Array(4096));
      } catch (e) {
        refused.push(e);
        return;
      }
      loop.callSoon(pump);
    };
    pump();
    await client.lost.then(() => {}, () => {});
    assertEquals(refused, []);
    assertThrows(() => t.write(bytes("x")), InvalidStateError);
  });
  await hangUp;
  listener.close();
});

// ---- Servers ----

Deno.test("Server.close() stops listening and leaves open connections working", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop, { echo: true });
    assert(server.isServing());
    assertEquals(server.getLoop(), loop);
    const port = portOf(server);
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, port);
    await accepted(loop, protocols);
    server.close();
    server.close();
    assertFalse(server.isServing());
    // Refused, or reset if the kernel queued it before the socket closed.
    const err = await assertRejects(() =>
      Promise.resolve(loop.createConnection(() => new Protocol(), HOST, port))
    );
    assertStringIncludes((err as Error).message, `${HOST}:${port}`);
    let closed = false;
    const waiting = server.waitClosed();
    waiting.addDoneCallback(() => closed = true);
    t.write(bytes("still echoing"));
    await client.until(13);
    assertEquals(text(client.data()), "still echoing");
    assertFalse(closed);
    t.close();
    await client.lost;
    await waiting;
    assert(closed);
    await server.waitClosed(); // done at once now
  });
});

Deno.test("Server's asyncDispose closes it and its connections", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const clients = [new Recorder(loop), new Recorder(loop)];
    for (const c of clients) {
      await loop.createConnection(() => c, HOST, portOf(server));
    }
    await accepted(loop, protocols, 2);
    await server[Symbol.asyncDispose]();
    assertFalse(server.isServing());
    for (const c of clients) {
      await c.eof;
      await c.lost;
    }
    for (const p of protocols) assertEquals(p.count("lost"), 1);
  });
});

Deno.test("createServer() with startServing false accepts only once started", async () => {
  await withLoop(async (loop) => {
    const protocols: Recorder[] = [];
    const server = await loop.createServer(
      () => {
        const p = new Recorder(loop, { echo: true });
        protocols.push(p);
        return p;
      },
      HOST,
      0,
      { startServing: false, backlog: 16, reusePort: true },
    );
    assertFalse(server.isServing());
    await server.startServing();
    assert(server.isServing());
    await server.startServing(); // again: nothing changes
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    t.write(bytes("x"));
    await client.until(1);
    t.close();
    await client.lost;
    await shutdown(server);
    assertThrows(() => server.startServing(), InvalidStateError);
  });
});

Deno.test("Server.serveForever() runs until cancelled, then the server is closed", async () => {
  await withLoop(async (loop) => {
    const [server] = await recordingServer(loop);
    const forever = server.serveForever();
    assert(server.isServing());
    assertThrows(() => server.serveForever(), InvalidStateError);
    loop.callLater(0.01, () => forever.cancel());
    await assertRejects(() => Promise.resolve(forever), CancelledError);
    assertFalse(server.isServing());
    await server.waitClosed();
  });
});

Deno.test("Server.addresses() lists the bound sockets until close(), then none, as asyncio's Server.sockets", async () => {
  await withLoop(async (loop) => {
    const server = await loop.createServer(() => new Protocol(), HOST, 0, {
      startServing: false,
    });
    // Bound before it serves.
    assertEquals(server.addresses().length, 1);
    assertEquals((server.addresses()[0] as Deno.NetAddr).hostname, HOST);
    server.close();
    assertEquals(server.addresses(), []);
    await server.waitClosed();
    assertEquals(server.addresses(), []);
  });
});

Deno.test("Server.close() cancels serveForever()", async () => {
  await withLoop(async (loop) => {
    const [server] = await recordingServer(loop);
    const forever = server.serveForever();
    loop.callSoon(() => server.close());
    await assertRejects(() => Promise.resolve(forever), CancelledError);
    await server.waitClosed();
  });
});

Deno.test("Server.serveForever() ends only once the server's connections are gone, as asyncio 3.12's serve_forever() awaits wait_closed()", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const forever = server.serveForever();
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    await accepted(loop, protocols);
    server.close();
    for (let i = 0; i < 5; i++) await sleepTick(loop);
    // Closed, but a connection is still open: serving has not ended.
    assertFalse(forever.done());
    t.close();
    await assertRejects(() => Promise.resolve(forever), CancelledError);
    assert(forever.cancelled());
    assertEquals(protocols[0].count("lost"), 1);
    await server.waitClosed(); // done at once now
  });
});

Deno.test("Server.serveForever() cancelled closes the server and waits for its connections", async () => {
  await withLoop(async (loop) => {
    const [server, protocols] = await recordingServer(loop);
    const forever = server.serveForever();
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(() => client, HOST, portOf(server));
    await accepted(loop, protocols);
    forever.cancel();
    await sleepTick(loop);
    assertFalse(server.isServing());
    assertEquals(server.addresses(), []);
    assertFalse(forever.done());
    t.close();
    await assertRejects(() => Promise.resolve(forever), CancelledError);
    assert(forever.cancelled());
  });
});

Deno.test("Server.serveForever() cancelled before it ran still closes the server", async () => {
  await withLoop(async (loop) => {
    const [server] = await recordingServer(loop);
    const forever = server.serveForever();
    forever.cancel();
    await assertRejects(() => Promise.resolve(forever), CancelledError);
    assertFalse(server.isServing());
    await server.waitClosed();
  });
});

Deno.test("Server.serveForever() on a closed server says it is closed, also after an earlier serveForever() (asyncio test_start_server_1)", async () => {
  await withLoop(async (loop) => {
    const [server] = await recordingServer(loop);
    const forever = server.serveForever();
    server.close();
    // asyncio's close() forgets the serve_forever() it ended at once.
    assertThrows(
      () => server.serveForever(),
      InvalidStateError,
      "the server is closed",
    );
    await assertRejects(() => Promise.resolve(forever), CancelledError);
    assertThrows(
      () => server.serveForever(),
      InvalidStateError,
      "the server is closed",
    );
    const [other] = await recordingServer(loop);
    other.close();
    assertThrows(
      () => other.serveForever(),
      InvalidStateError,
      "Cannot call serveForever(): the server is closed",
    );
  });
});

Deno.test("A server serves many clients at once", async () => {
  await withLoop(async (loop) => {
    const [server] = await recordingServer(loop, { echo: true });
    const clients = Array.from({ length: 20 }, () => new Recorder(loop));
    const transports = await Promise.all(
      clients.map((c) => loop.createConnection(() => c, HOST, portOf(server))),
    );
    transports.forEach(([t], i) => t.write(pattern(10_000 + i, i)));
    await Promise.all(clients.map((c, i) => c.until(10_000 + i)));
    clients.forEach((c, i) => assertEquals(c.data(), pattern(10_000 + i, i)));
    for (const [t] of transports) t.close();
    await Promise.all(clients.map((c) => c.lost));
    await shutdown(server);
  });
});

Deno.test("A server reports a failing protocol factory and goes on serving", async () => {
  await withLoop(async (loop) => {
    const errors = collectErrors(loop);
    let n = 0;
    const server = await loop.createServer(
      () => {
        if (n++ === 0) throw new Error("factory");
        return new Recorder(loop, { echo: true });
      },
      HOST,
      0,
    );
    const first = new Recorder(loop);
    await loop.createConnection(() => first, HOST, portOf(server));
    await first.lost;
    const second = new Recorder(loop);
    const [t] = await loop.createConnection(() => second, HOST, portOf(server));
    t.write(bytes("ok"));
    await second.until(2);
    assertEquals(errors.length, 1);
    assertStringIncludes(errors[0].message, "protocol factory");
    t.close();
    await second.lost;
    await shutdown(server);
  });
});

Deno.test("A protocol factory that returns no protocol fails createConnection() with a TypeError that says so, and a server reports it once", async () => {
  await withLoop(async (loop) => {
    const errors = collectErrors(loop);
    let n = 0;
    const server = await loop.createServer(
      () => n++ === 0 ? 5 as never : new Recorder(loop, { echo: true }),
      HOST,
      0,
    );
    // The first connection gets the factory's 5: the server reports it
    // and closes the connection; nothing reaches a protocol method.
    const first = new Recorder(loop);
    await loop.createConnection(() => first, HOST, portOf(server));
    await first.lost;
    await sleepTick(loop);
    assertEquals(errors.length, 1);
    assertStringIncludes(errors[0].message, "protocol factory");
    assertInstanceOf(errors[0].exception, TypeError);
    assertEquals(
      (errors[0].exception as Error).message,
      "Cannot serve a connection: protocolFactory must return a protocol (an object with connectionMade()), received 5",
    );
    await assertRejects(
      () => loop.createConnection(() => null as never, HOST, portOf(server)),
      TypeError,
      "Cannot call createConnection(): protocolFactory must return a protocol (an object with connectionMade()), received null",
    );
    await assertRejects(
      () => loop.createConnection(() => ({}) as never, HOST, portOf(server)),
      TypeError,
      "Cannot call createConnection(): protocolFactory must return a protocol (an object with connectionMade()), received Object",
    );
    await sleepTick(loop);
    assertEquals(errors.length, 1, "the client's TypeError is not reported");
    await shutdown(server);
  });
});

Deno.test("the socket view's unref() lets the process end while a read waits", async () => {
  // A child process whose only pending work is its connection's read (the
  // loop runs, not awaited): with the read unref'd, Deno lets it end.
  const mod = new URL("../../mod.ts", import.meta.url).href;
  const script = `
    import { newEventLoop, Protocol } from "${mod}";
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepting = listener.accept();
    const loop = newEventLoop();
    const [t] = await loop.runUntilComplete(
      loop.createConnection(() => new Protocol(), "127.0.0.1", listener.addr.port),
    );
    await accepting;
    listener.close();
    t.getExtraInfo("socket").unref();
    console.log("unref");
    loop.runForever();
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill(), 20_000);
  const { success, signal, stdout } = await child.output();
  clearTimeout(timer);
  assertEquals(
    signal,
    null,
    "the child had to be killed: the read kept it alive",
  );
  assertEquals(new TextDecoder().decode(stdout).trim(), "unref");
  assert(success);
});
