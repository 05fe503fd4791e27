// Real-socket tests of server-side TLS upgrades (startTls() with
// serverSide: true, StreamWriter.startTls() on a server's writer): a
// STARTTLS line server upgraded with tulip's client and with openssl
// s_client, a client that pipelines its ClientHello after the command,
// the handshake timeout, and the options' checks. The client side's tests
// are in tls_start_tls_test.ts.

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { InvalidStateError, TimeoutError } from "../../futures/errors.ts";
import type { Future } from "../../futures/future.ts";
import type { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import type { Server } from "../../loop/event_loop.ts";
import { BufferedProtocol, Protocol } from "../../protocols/protocol.ts";
import { openConnection } from "../../streams/open_connection.ts";
import { startServer } from "../../streams/start_server.ts";
import type { StreamReader } from "../../streams/stream_reader.ts";
import type { StreamWriter } from "../../streams/stream_writer.ts";
import type { Transport } from "../../transports/transport.ts";
import {
  accepted,
  portOf,
  Recorder,
  recordingServer,
  sleepTick,
  withLoop,
} from "./_stream_helpers.ts";
import { fixturePath, opensslMissing, testCerts } from "./_tls_certs.ts";
import { command, HAS_PYTHON, needing } from "./_tools.ts";

const HOST = "127.0.0.1";
const certs = await testCerts();
const missing = await opensslMissing();
if (missing !== null) {
  console.warn(`Skipping the openssl s_client -starttls test: ${missing}`);
}
const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A line server: "STARTTLS" gets "220 go ahead" and an upgrade with
 * `options` (reading goes on: the ClientHello ends the read in flight),
 * "EHLO" a list naming STARTTLS, "QUIT" a close, and any other line its
 * echo, prefixed with "tls " once upgraded. Bytes after the STARTTLS line
 * in the same chunk are plain text the client had no business sending:
 * they are dropped (RFC 3207 §4.2), never read as TLS-protected.
 */
class LineServer extends Protocol {
  transport: Transport | null = null;
  plain: Transport | null = null;
  upgrade: Future<Transport> | null = null;
  lost: Error | undefined | null = null;
  lostCalls = 0;
  made = 0;
  dropped = 0;
  #pending = "";

  /**
   * @param loop The loop.
   * @param options More options for startTls().
   * @param when When to upgrade: `"now"`, in the dataReceived() that
   * brought the command; `"soon"`, on the next turn of the loop, once the
   * transport's next read is in flight (the ClientHello then ends it);
   * `"later"`, when the test calls `upgradeNow()` (reading is paused on
   * the next turn of the loop, with that read in flight: it is held).
   */
  constructor(
    readonly loop: DenoEventLoop,
    readonly options: Record<string, unknown> = {},
    readonly when: "now" | "soon" | "later" = "now",
  ) {
    super();
  }

  override connectionMade(t: Transport): void {
    this.transport = this.plain = t;
    this.made++;
    t.write(enc.encode("220 line server ready\r\n"));
  }

  override dataReceived(data: Uint8Array): void {
    this.#pending += dec.decode(data);
    let at;
    while ((at = this.#pending.indexOf("\n")) >= 0) {
      const line = this.#pending.slice(0, at).trimEnd();
      this.#pending = this.#pending.slice(at + 1);
      this.#line(line);
    }
  }

  #line(line: string): void {
    const t = this.transport!;
    const upgraded = t !== this.plain;
    if (line.toUpperCase().startsWith("EHLO")) {
      t.write(enc.encode("250-line.test\r\n250 STARTTLS\r\n"));
    } else if (line.toUpperCase() === "STARTTLS" && !upgraded) {
      this.dropped = this.#pending.length;
      this.#pending = "";
      t.write(enc.encode("220 go ahead\r\n"));
      if (this.when === "now") this.upgradeNow();
      else if (this.when === "soon") {
        this.loop.callSoon(() => this.upgradeNow());
      } else this.loop.callSoon(() => t.pauseReading());
    } else if (line.toUpperCase() === "QUIT") {
      t.write(enc.encode("221 bye\r\n"));
      t.close();
    } else {
      t.write(enc.encode(`${upgraded ? "tls " : ""}${line}\r\n`));
    }
  }

  upgradeNow(): void {
    this.upgrade = this.loop.startTls(this.transport!, this, {
      serverSide: true,
      cert: certs.cert,
      key: certs.key,
      ...this.options,
    });
    this.upgrade.addDoneCallback((f) => {
      if (!f.cancelled() && f.exception() === undefined) {
        this.transport = f.result();
      }
    });
  }

  override connectionLost(exc?: Error): void {
    this.lost = exc;
    this.lostCalls++;
  }
}

async function lineServer(
  loop: DenoEventLoop,
  options: Record<string, unknown> = {},
  when: "now" | "soon" | "later" = "now",
): Promise<{ server: Server; protocols: LineServer[] }> {
  const protocols: LineServer[] = [];
  const server = await loop.createServer(
    () => {
      const p = new LineServer(loop, options, when);
      protocols.push(p);
      return p;
    },
    HOST,
    0,
  );
  return { server, protocols };
}

/** Waits until `p`'s bytes, as text, include `text`. */
async function untilText(loop: DenoEventLoop, p: Recorder, text: string) {
  while (!dec.decode(p.data()).includes(text)) await sleepTick(loop);
}

/**
 * A tulip client of a line server that sends STARTTLS and upgrades after
 * the go-ahead, offering `alpn`.
 */
/**
 * A client past the server's go-ahead: connected (after the greeting, if
 * the server sends one), `STARTTLS` sent and answered.
 */
async function goAhead(
  loop: DenoEventLoop,
  server: Server,
  greeted = true,
): Promise<{ client: Recorder; plain: Transport }> {
  const client = new Recorder(loop);
  const [plain] = await loop.createConnection(
    () => client,
    HOST,
    portOf(server),
  );
  if (greeted) await untilText(loop, client, "ready\r\n");
  plain.write(enc.encode("STARTTLS\r\n"));
  await untilText(loop, client, "220 go ahead\r\n");
  return { client, plain };
}

/** A client upgraded to TLS after the go-ahead. */
async function upgradedClient(
  loop: DenoEventLoop,
  server: Server,
  alpn?: string[],
): Promise<{ client: Recorder; tls: Transport }> {
  const { client, plain } = await goAhead(loop, server);
  const tls = await loop.startTls(plain, client, {
    serverHostname: "tulip.test",
    caCerts: [certs.ca],
    alpnProtocols: alpn,
  });
  return { client, tls };
}

Deno.test("startTls({ serverSide: true }) upgrades a STARTTLS line server's connection for tulip's client: the read in flight brings the ClientHello, ALPN is reported, connectionMade() runs once", async () => {
  await withLoop(async (loop) => {
    // Upgraded with the next read in flight: the ClientHello ends it.
    const { server, protocols } = await lineServer(loop, {
      alpnProtocols: ["smtp", "x"],
    }, "soon");
    const { client, tls } = await upgradedClient(loop, server, ["x"]);
    assertEquals(tls.getExtraInfo("alpnProtocol"), "x");
    const p = protocols[0];
    const upgraded = await p.upgrade!;
    assertEquals(upgraded.getExtraInfo("alpnProtocol"), "x");
    assertEquals(
      (upgraded.getExtraInfo("peername") as Deno.NetAddr).port,
      (tls.getExtraInfo("sockname") as Deno.NetAddr).port,
    );
    assert(upgraded.isReading());
    const before = client.received;
    tls.write(enc.encode("hello\r\n"));
    while (client.received < before + 11) await sleepTick(loop);
    assertEquals(dec.decode(client.data().subarray(before)), "tls hello\r\n");
    assertEquals(p.made, 1);
    assertEquals(p.dropped, 0);
    assertThrows(
      () =>
        loop.startTls(upgraded, p, {
          serverSide: true,
          cert: certs.cert,
          key: certs.key,
        }),
      InvalidStateError,
      "TLS already",
    );
    // The server tracks the upgraded connection: closing its clients
    // closes it, and waitClosed() waits for it.
    server.close();
    server.closeClients();
    await client.lost;
    await server.waitClosed();
    assertEquals(p.lostCalls, 1);
    assertEquals(p.lost, undefined);
  });
});

Deno.test({
  name: "startTls({ serverSide: true }) serves openssl s_client -starttls smtp",
  ignore: missing !== null,
  async fn() {
    await withLoop(async (loop) => {
      const { server, protocols } = await lineServer(loop);
      const child = new Deno.Command("openssl", {
        args: [
          "s_client",
          "-connect",
          `${HOST}:${portOf(server)}`,
          "-starttls",
          "smtp",
          "-servername",
          "localhost",
          "-CAfile",
          fixturePath("ca.pem"),
          "-verify_return_error",
          "-quiet",
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      while (protocols.length < 1 || protocols[0].upgrade === null) {
        await sleepTick(loop);
      }
      const p = protocols[0];
      await p.upgrade;
      await writer.write(enc.encode("over tls\nQUIT\n"));
      await writer.close();
      const out = await child.output();
      const stdout = dec.decode(out.stdout);
      assertStringIncludes(stdout, "tls over tls\r\n221 bye\r\n");
      while (p.lostCalls === 0) await sleepTick(loop);
      assertEquals(p.lost, undefined);
      server.close();
      await server.waitClosed();
    });
  },
});

/** An asyncio client: STARTTLS, `StreamWriter.start_tls()`, a line, QUIT. */
const ASYNCIO_CLIENT = `
import asyncio, ssl, sys

async def main(port, ca):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    async def say(line):
        w.write(line)
        await w.drain()
        print((await r.readline()).decode().strip())
    print((await r.readline()).decode().strip())
    await say(b"STARTTLS\\r\\n")
    ctx = ssl.create_default_context(cafile=ca)
    await w.start_tls(ctx, server_hostname="tulip.test")
    await say(b"hello\\r\\n")
    await say(b"QUIT\\r\\n")
    print(repr(await r.read()))
    w.close()

asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
`;

Deno.test({
  name: needing(
    "startTls({ serverSide: true }) serves asyncio's StreamWriter.start_tls()",
    "python3",
    HAS_PYTHON,
  ),
  ignore: !HAS_PYTHON,
  async fn() {
    await withLoop(async (loop) => {
      const { server, protocols } = await lineServer(loop, {}, "soon");
      const out = await command("python3", [
        "-c",
        ASYNCIO_CLIENT,
        String(portOf(server)),
        fixturePath("ca.pem"),
      ]);
      assertEquals(out.stderr, "");
      assertEquals(out.stdout.split("\n"), [
        "220 line server ready",
        "220 go ahead",
        "tls hello",
        "221 bye",
        "b''",
        "",
      ]);
      while (protocols[0].lostCalls === 0) await sleepTick(loop);
      assertEquals(protocols[0].lost, undefined);
      server.close();
      await server.waitClosed();
    });
  },
});

/**
 * The bytes of a ClientHello for "tulip.test", as Deno's TLS client sends
 * them first (captured from a listener that answers nothing).
 */
async function clientHello(): Promise<Uint8Array> {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const conn = await Deno.connect({
    hostname: HOST,
    port: (listener.addr as Deno.NetAddr).port,
  });
  const far = await listener.accept();
  listener.close();
  const tls = Deno.startTls(conn, { hostname: "tulip.test" });
  const buf = new Uint8Array(4096);
  const n = (await far.read(buf))!;
  far.close();
  await (await tls.catch(() => null))?.handshake().catch(() => {});
  try {
    (await tls.catch(() => null))?.close();
  } catch {
    // Closed by the failed handshake.
  }
  return buf.slice(0, n);
}

/** Reads from `conn` until `text` has arrived. */
async function readUntil(conn: Deno.Conn, text: string): Promise<string> {
  let got = "";
  const buf = new Uint8Array(1024);
  while (!got.includes(text)) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`ended before ${JSON.stringify(text)}`);
    got += dec.decode(buf.subarray(0, n));
  }
  return got;
}

/** Whether `conn` ends (end of stream or an error) within `ms`. */
async function endsWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const buf = new Uint8Array(1024);
  const deadline = Date.now() + ms;
  let id: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"late">((resolve) => {
    id = setTimeout(() => resolve("late"), ms);
  });
  try {
    while (Date.now() < deadline) {
      const r = await Promise.race([conn.read(buf).catch(() => null), timeout]);
      if (r === "late") return false;
      if (r === null) return true;
    }
    return false;
  } finally {
    clearTimeout(id);
  }
}

Deno.test("a STARTTLS command pipelined with the ClientHello: on a stream, the server's startTls() refuses the unread bytes and aborts; on a protocol that drops them, the handshake times out and the protocol hears once", async () => {
  const hello = await clientHello();
  await withLoop(async (loop) => {
    // Streams: the reader holds the ClientHello, read in plain text.
    let refused: Error | null = null;
    const streamServer = await startServer(
      async (reader: StreamReader, writer: StreamWriter) => {
        await reader.readline();
        writer.write(enc.encode("220 go ahead\r\n"));
        try {
          await writer.startTls({
            serverSide: true,
            cert: certs.cert,
            key: certs.key,
          });
        } catch (error) {
          refused = error as Error;
        }
      },
      HOST,
      0,
      { loop },
    );
    const packet = new Uint8Array(10 + hello.length);
    packet.set(enc.encode("STARTTLS\r\n"));
    packet.set(hello, 10);
    const a = await Deno.connect({
      hostname: HOST,
      port: portOf(streamServer),
    });
    await a.write(packet);
    assert(await endsWithin(a, 5000), "the server should hang up");
    a.close();
    while (refused === null) await sleepTick(loop);
    assertInstanceOf(refused, InvalidStateError);
    assertStringIncludes(
      (refused as Error).message,
      `${hello.length} bytes`,
    );
    streamServer.close();
    await streamServer.waitClosed();

    // A protocol that drops what followed the command: the handshake
    // waits for a ClientHello that will not come, and times out.
    const { server, protocols } = await lineServer(loop, {
      handshakeTimeout: 0.3,
    });
    const { p } = await timesOut(loop, server, protocols, packet);
    assert(p.dropped > 0);
  });
});

/**
 * Sends `command` to a line server from a raw client that starts no
 * handshake after the go-ahead; checks that the upgrade times out, the
 * socket closes, the protocol hears once, and the server forgets the
 * connection (its waitClosed() does not wait for it).
 */
async function timesOut(
  loop: DenoEventLoop,
  server: Server,
  protocols: LineServer[],
  command: Uint8Array,
): Promise<{ p: LineServer; error: Error }> {
  const conn = await Deno.connect({ hostname: HOST, port: portOf(server) });
  await readUntil(conn, "ready\r\n");
  await conn.write(command);
  await readUntil(conn, "220 go ahead\r\n");
  while (protocols.length < 1 || protocols[0].upgrade === null) {
    await sleepTick(loop);
  }
  const p = protocols[0];
  const error = await assertRejects(
    () => Promise.resolve(p.upgrade!),
    TimeoutError,
  );
  assert(await endsWithin(conn, 2000), "the socket should be closed");
  conn.close();
  while (p.lostCalls === 0) await sleepTick(loop);
  await sleepTick(loop);
  assertEquals(p.lostCalls, 1);
  assertInstanceOf(p.lost, TimeoutError);
  server.close();
  await server.waitClosed();
  return { p, error };
}

Deno.test("startTls({ serverSide: true }) closes the socket when handshakeTimeout passes against a client that never starts its handshake, and the protocol and the server hear of it once", async () => {
  await withLoop(async (loop) => {
    const { server, protocols } = await lineServer(loop, {
      handshakeTimeout: 0.2,
    });
    const { error } = await timesOut(
      loop,
      server,
      protocols,
      enc.encode("STARTTLS\r\n"),
    );
    assertStringIncludes(error.message, "0.2 s");
  });
});

Deno.test("abort() on a transport upgraded with serverSide: true closes its socket at once, and the plain transport's abort() reaches it", async () => {
  await withLoop(async (loop) => {
    const { server, protocols } = await lineServer(loop);
    const { client, tls } = await upgradedClient(loop, server);
    const p = protocols[0];
    await p.upgrade;
    // The server's handle on the connection is the plain transport.
    p.plain!.abort();
    const lost = await client.lost;
    assert(lost === undefined || lost instanceof Error);
    assert(tls.isClosing());
    while (p.lostCalls === 0) await sleepTick(loop);
    assertEquals(p.lostCalls, 1);
    server.close();
    await server.waitClosed();
  });
});

Deno.test("startTls({ serverSide: true }) hands a read held while reading was paused (the ClientHello) to TLS", async () => {
  await withLoop(async (loop) => {
    const { server, protocols } = await lineServer(loop, {}, "later");
    const { client, plain } = await goAhead(loop, server);
    const p = protocols[0];
    while (p.transport!.isReading()) await sleepTick(loop);
    const upgrading = loop.startTls(plain, client, {
      serverHostname: "tulip.test",
      caCerts: [certs.ca],
    });
    // The ClientHello arrives in the paused server's read, which holds it.
    for (let i = 0; i < 50; i++) await sleepTick(loop);
    assertEquals(upgrading.done(), false);
    p.upgradeNow();
    const tls = await upgrading;
    await p.upgrade;
    const before = client.received;
    tls.write(enc.encode("held\r\n"));
    while (client.received < before + 10) await sleepTick(loop);
    assertEquals(dec.decode(client.data().subarray(before)), "tls held\r\n");
    tls.close();
    await client.lost;
    server.close();
    await server.waitClosed();
    assertEquals(p.lostCalls, 1);
  });
});

/**
 * A BufferedProtocol server: "STARTTLS\r\n" gets "220 go ahead\r\n" and,
 * on the next turn of the loop (a read into this protocol's buffer in
 * flight), an upgrade; then it echoes what it reads.
 */
class BufferedStartTls extends BufferedProtocol {
  transport: Transport | null = null;
  upgrade: Future<Transport> | null = null;
  readonly buffer = new Uint8Array(2048);

  constructor(readonly loop: DenoEventLoop) {
    super();
  }

  override connectionMade(t: Transport): void {
    this.transport = t;
  }

  override getBuffer(): Uint8Array {
    return this.buffer;
  }

  override bufferUpdated(n: number): void {
    const data = this.buffer.slice(0, n);
    if (this.upgrade !== null) {
      this.transport!.write(data);
      return;
    }
    this.transport!.write(enc.encode("220 go ahead\r\n"));
    this.loop.callSoon(() => {
      this.upgrade = this.loop.startTls(this.transport!, this, {
        serverSide: true,
        cert: certs.cert,
        key: certs.key,
      });
      this.upgrade.addDoneCallback((f) => this.transport = f.result());
    });
  }
}

Deno.test("startTls({ serverSide: true }) on a BufferedProtocol's transport hands the read in flight into the protocol's buffer to TLS", async () => {
  await withLoop(async (loop) => {
    const protocols: BufferedStartTls[] = [];
    const server = await loop.createServer(
      () => {
        const p = new BufferedStartTls(loop);
        protocols.push(p);
        return p;
      },
      HOST,
      0,
    );
    const { client, plain } = await goAhead(loop, server, false);
    const tls = await loop.startTls(plain, client, {
      serverHostname: "tulip.test",
      caCerts: [certs.ca],
    });
    await protocols[0].upgrade;
    const before = client.received;
    tls.write(enc.encode("lent"));
    while (client.received < before + 4) await sleepTick(loop);
    assertEquals(dec.decode(client.data().subarray(before)), "lent");
    tls.close();
    await client.lost;
    server.close();
    await server.waitClosed();
  });
});

Deno.test("closing the loop during a server-side upgrade closes the socket and leaves nothing open", async () => {
  const reports: string[] = [];
  const conn = await withLoop(async (loop) => {
    loop.setExceptionHandler((_, context) => reports.push(context.message));
    const { server, protocols } = await lineServer(loop);
    const conn = await Deno.connect({ hostname: HOST, port: portOf(server) });
    await readUntil(conn, "ready\r\n");
    await conn.write(enc.encode("STARTTLS\r\n"));
    await readUntil(conn, "220 go ahead\r\n");
    while (protocols.length < 1 || protocols[0].upgrade === null) {
      await sleepTick(loop);
    }
    server.close();
    return conn;
  });
  assert(await endsWithin(conn, 2000), "the socket should be closed");
  conn.close();
  assertEquals(reports, []);
});

Deno.test("StreamWriter.startTls({ serverSide: true }) upgrades a server's stream after its go-ahead, for tulip's client stream", async () => {
  await withLoop(async (loop) => {
    const served: string[] = [];
    const server = await startServer(
      async (reader, writer) => {
        served.push(dec.decode(await reader.readline()));
        writer.write(enc.encode("220 go ahead\n"));
        await writer.startTls({
          serverSide: true,
          cert: certs.cert,
          key: certs.key,
          alpnProtocols: ["x"],
        });
        served.push(String(writer.getExtraInfo("alpnProtocol")));
        const line = await reader.readline();
        writer.write(enc.encode(`tls ${dec.decode(line)}`));
        await writer.drain();
        writer.close();
      },
      HOST,
      0,
      { loop },
    );
    const [reader, writer] = await openConnection(HOST, portOf(server), {
      loop,
    });
    writer.write(enc.encode("STARTTLS\n"));
    assertEquals(dec.decode(await reader.readline()), "220 go ahead\n");
    await writer.startTls({
      serverHostname: "tulip.test",
      caCerts: [certs.ca],
      alpnProtocols: ["x"],
    });
    writer.write(enc.encode("hello\n"));
    assertEquals(dec.decode(await reader.readline()), "tls hello\n");
    assertEquals(dec.decode(await reader.read()), "");
    assertEquals(served, ["STARTTLS\n", "x"]);
    writer.close();
    await writer.waitClosed();
    server.close();
    await server.waitClosed();
  });
});

Deno.test("startTls() checks the server side's options, naming what is wrong", async () => {
  await withLoop(async (loop) => {
    const { server, protocols } = await recordingServer(loop);
    const [plain] = await loop.createConnection(
      () => new Recorder(loop),
      HOST,
      portOf(server),
    );
    const far = await accepted(loop, protocols, 1);
    const t = far.transport;
    const side = assertThrows(
      () => loop.startTls(t, far, {}),
      InvalidStateError,
      "server side",
    );
    assertStringIncludes(side.message, "serverSide: true");
    assertStringIncludes(side.message, "cert and key");
    assertThrows(
      () => loop.startTls(t, far, { serverSide: true }),
      TypeError,
      "needs cert and key",
    );
    assertThrows(
      () =>
        loop.startTls(t, far, {
          serverSide: true,
          cert: certs.cert,
          key: certs.key,
          serverHostname: "x",
          caCerts: [certs.ca],
        }),
      TypeError,
      "serverHostname and caCerts mean nothing with serverSide: true",
    );
    assertThrows(
      () =>
        loop.startTls(t, far, {
          serverSide: true,
          cert: certs.cert,
          key: certs.key,
          caCerts: [certs.ca],
        }),
      TypeError,
      "caCerts means nothing with serverSide: true",
    );
    // serverHostname null is none (asyncio's server_hostname=None).
    const none = assertThrows(
      () =>
        loop.startTls(t, far, {
          serverSide: true,
          cert: certs.cert,
          key: certs.key,
          serverHostname: null as never,
          caCerts: [certs.ca],
        }),
      TypeError,
      "caCerts means nothing with serverSide: true",
    );
    assertStringIncludes(none.message, "received caCerts");
    assertThrows(
      () =>
        loop.startTls(t, far, {
          serverSide: "yes" as unknown as boolean,
          cert: certs.cert,
          key: certs.key,
        }),
      TypeError,
      "serverSide must be a boolean",
    );
    assertThrows(
      () => loop.startTls(plain, new Protocol(), { cert: certs.cert }),
      TypeError,
      "cert and key are the server's",
    );
    assertThrows(
      () =>
        loop.startTls(plain, new Protocol(), {
          serverSide: true,
          cert: certs.cert,
          key: certs.key,
        }),
      InvalidStateError,
      "client side",
    );
    // A key that is no PEM: the upgrade fails, closing the connection.
    const bad = loop.startTls(t, far, {
      serverSide: true,
      cert: certs.cert,
      key: "not a key",
    });
    await assertRejects(() => Promise.resolve(bad), Deno.errors.InvalidData);
    assertInstanceOf(await far.lost, Deno.errors.InvalidData);
    assert(t.isClosing());
    plain.close();
    server.close();
    await server.waitClosed();
  });
});
