// Real-socket tests of TLS upgrades (startTls) and ALPN between tulip's
// own TLS client and server, with the certificates in tests/fixtures/tls/.
// The tests against openssl are in tls_openssl_interop_test.ts.

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { InvalidStateError, TimeoutError } from "../../futures/errors.ts";
import type { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { Protocol } from "../../protocols/protocol.ts";
import { openConnection } from "../../streams/open_connection.ts";
import { transportPair } from "../../testing/transport_pair.ts";
import type { Transport } from "../../transports/transport.ts";
import {
  accepted,
  hangUpServer,
  pattern,
  portOf,
  Recorder,
  recordingServer,
  sleepTick,
  withLoop,
} from "./_stream_helpers.ts";
import { testCerts } from "./_tls_certs.ts";

const HOST = "127.0.0.1";
const certs = await testCerts();
const enc = new TextEncoder();

/** Pauses reading in the dataReceived() that brings `goAhead`. */
class Upgrading extends Protocol {
  transport: Transport | null = null;
  lost: Error | undefined | null = null;
  lostCalls = 0;
  constructor(readonly goAhead: string) {
    super();
  }
  override connectionMade(t: Transport): void {
    this.transport = t;
  }
  override dataReceived(data: Uint8Array): void {
    if (new TextDecoder().decode(data).includes(this.goAhead)) {
      this.transport!.pauseReading();
    }
  }
  override connectionLost(exc?: Error): void {
    this.lost = exc;
    this.lostCalls++;
  }
}

/** A plain server that says "go" and then says nothing more. */
async function silentAfterGo(loop: DenoEventLoop) {
  return await recordingServer(loop);
}

/**
 * A plain connection to a server that says "go" and nothing more, whose
 * client paused reading on the go-ahead (so no relay is needed).
 */
async function pausedAfterGo(loop: DenoEventLoop) {
  const { server, protocols } = await silentAfterGo(loop);
  const client = new Upgrading("go");
  const [plain] = await loop.createConnection(
    () => client,
    HOST,
    portOf(server),
  );
  const far = await accepted(loop, protocols, 1);
  far.transport.write(enc.encode("go"));
  while (plain.isReading()) await sleepTick(loop);
  return { server, client, plain, far };
}

/**
 * Once a failed upgrade told the protocol: the server closes (Deno keeps
 * a socket whose handshake is pending until the peer sends or closes, and
 * the handshake settles), and the protocol heard of it once.
 */
async function afterFailedUpgrade(
  loop: DenoEventLoop,
  { server, client, far }: Awaited<ReturnType<typeof pausedAfterGo>>,
): Promise<void> {
  while (client.lost === null) await sleepTick(loop);
  far.transport.abort();
  await far.lost;
  for (let i = 0; i < 20; i++) await sleepTick(loop);
  assertEquals(client.lostCalls, 1);
  server.close();
  await server.waitClosed();
}

Deno.test("startTls() fails with TimeoutError after handshakeTimeout when the server never answers the handshake, and the protocol hears of it once", async () => {
  await withLoop(async (loop) => {
    const upgrading = await pausedAfterGo(loop);
    const { client, plain } = upgrading;
    const error = await assertRejects(
      () =>
        Promise.resolve(
          loop.startTls(plain, client, { handshakeTimeout: 0.2 }),
        ),
      TimeoutError,
    );
    assertStringIncludes(error.message, "no handshake within 0.2 s");
    while (client.lost === null) await sleepTick(loop);
    assertInstanceOf(client.lost, TimeoutError);
    await afterFailedUpgrade(loop, upgrading);
  });
});

for (const how of ["close", "abort"] as const) {
  Deno.test(`${how}() on the plain transport while startTls() waits for the server's handshake ends the upgrade: it fails at once, and the protocol hears of it once`, async () => {
    await withLoop(async (loop) => {
      const upgrading = await pausedAfterGo(loop);
      const { client, plain, far } = upgrading;
      const upgrade = loop.startTls(plain, client, { handshakeTimeout: 5 });
      // The ClientHello reached the server, which never answers.
      while (far.received === 0) await sleepTick(loop);
      const start = loop.time();
      plain[how]();
      const error = await assertRejects(
        () => Promise.resolve(upgrade),
        InvalidStateError,
      );
      assert(loop.time() - start < 1, `Failed after ${loop.time() - start} s`);
      assertStringIncludes(
        error.message,
        "the connection was closed during the TLS handshake",
      );
      await afterFailedUpgrade(loop, upgrading);
    });
  });
}

Deno.test("startTls() fails with ConnectionReset when the server hangs up during the handshake", async () => {
  await withLoop(async (loop) => {
    const server = hangUpServer();
    const client = new Upgrading("never");
    const [plain] = await loop.createConnection(
      () => client,
      HOST,
      server.port,
    );
    plain.pauseReading();
    const error = await assertRejects(
      () =>
        Promise.resolve(
          loop.startTls(plain, client, {
            serverHostname: "localhost",
            caCerts: [certs.ca],
          }),
        ),
      Deno.errors.ConnectionReset,
    );
    assertStringIncludes(
      error.message,
      "the peer closed the connection during the TLS handshake",
    );
    while (client.lost === null) await sleepTick(loop);
    assertEquals(client.lostCalls, 1);
    await server.done;
  });
});

Deno.test("startTls() rejects a server whose certificate it does not trust, and closes the connection", async () => {
  await withLoop(async (loop) => {
    const { server: tlsServer } = await recordingServer(loop, {
      ssl: { cert: certs.cert, key: certs.key },
    });
    // A plain connection straight to a TLS server: the upgrade is the
    // handshake, without the system's roots knowing the test CA.
    const client = new Upgrading("never");
    const [plain] = await loop.createConnection(
      () => client,
      HOST,
      portOf(tlsServer),
    );
    plain.pauseReading();
    await assertRejects(() =>
      Promise.resolve(
        loop.startTls(plain, client, { serverHostname: "localhost" }),
      )
    );
    while (client.lost === null) await sleepTick(loop);
    assert(client.lost !== undefined);
    tlsServer.close();
    await tlsServer.waitClosed();
  });
});

/**
 * An echoing TLS server, a client connected in plain TCP and upgraded
 * while reading (so through the loopback relay) for `serverHostname`,
 * with the ALPN protocols each side offers.
 */
async function overRelay(
  loop: DenoEventLoop,
  serverHostname: string,
  alpn?: { server: string[]; client: string[] },
) {
  const { server: tlsServer, protocols } = await recordingServer(loop, {
    echo: true,
    ssl: { cert: certs.cert, key: certs.key, alpnProtocols: alpn?.server },
  });
  const client = new Recorder(loop);
  const [plain] = await loop.createConnection(
    () => client,
    HOST,
    portOf(tlsServer),
  );
  await client.made;
  const tls = await loop.startTls(plain, client, {
    serverHostname,
    caCerts: [certs.ca],
    alpnProtocols: alpn?.client,
  });
  return { tlsServer, protocols, client, plain, tls };
}

Deno.test("startTls() upgrades a plain connection to tulip's own TLS server, and the new transport reports ALPN and the peer's address", async () => {
  await withLoop(async (loop) => {
    const { tlsServer, protocols, client, tls } = await overRelay(
      loop,
      "tulip.test",
      { server: ["b"], client: ["a", "b"] },
    );
    // The client never paused reading: the upgrade went through the relay.
    assertEquals(tls.getExtraInfo("alpnProtocol"), "b");
    assertEquals(
      (tls.getExtraInfo("peername") as Deno.NetAddr).port,
      portOf(tlsServer),
    );
    const far = await accepted(loop, protocols, 1);
    assertEquals(far.transport.getExtraInfo("alpnProtocol"), "b");
    tls.write(enc.encode("over tls"));
    await client.until(8);
    assertEquals(new TextDecoder().decode(client.data()), "over tls");
    // connectionMade once, on the plain transport.
    assertEquals(client.events.filter((e) => e === "made").length, 1);
    assertThrows(
      () => loop.startTls(tls, client, {}),
      InvalidStateError,
      "TLS already",
    );
    tls.close();
    await client.lost;
    tlsServer.close();
    await tlsServer.waitClosed();
  });
});

Deno.test("startTls() takes serverHostname: null as none, as createConnection() does (asyncio's server_hostname=None): the peer's address is checked", async () => {
  await withLoop(async (loop) => {
    // It was refused: "serverHostname must be a string, received object".
    const { tlsServer, client, tls } = await overRelay(loop, null as never);
    tls.write(enc.encode("over tls"));
    await client.until(8);
    assertEquals(new TextDecoder().decode(client.data()), "over tls");
    tls.close();
    await client.lost;
    tlsServer.close();
    await tlsServer.waitClosed();
  });
});

Deno.test("closing the loop right after closing a TLS transport upgraded over the relay reports nothing: the relay's connections are not the application's", async () => {
  const reports: string[] = [];
  await withLoop(async (loop) => {
    loop.setExceptionHandler((_, context) => reports.push(context.message));
    const { tlsServer, protocols, tls } = await overRelay(loop, "tulip.test");
    (await accepted(loop, protocols, 1)).transport.abort();
    tls.abort();
    tlsServer.close();
  });
  // The relay's two transports were still open: released, not counted.
  assertEquals(reports, []);
});

Deno.test('getExtraInfo("alpnProtocol") is null on TLS without ALPN, and the default on plain TCP', async () => {
  await withLoop(async (loop) => {
    const { server: tlsServer } = await recordingServer(loop, {
      ssl: { cert: certs.cert, key: certs.key },
    });
    const [tls] = await loop.createConnection(
      () => new Recorder(loop),
      "localhost",
      portOf(tlsServer),
      { ssl: { caCerts: [certs.ca], alpnProtocols: ["h2"] } },
    );
    assertEquals(tls.getExtraInfo("alpnProtocol", "none"), null);
    tls.close();
    const { server: plainServer } = await recordingServer(loop);
    const [plain] = await loop.createConnection(
      () => new Recorder(loop),
      HOST,
      portOf(plainServer),
    );
    assertEquals(plain.getExtraInfo("alpnProtocol", "none"), "none");
    plain.close();
    for (const s of [tlsServer, plainServer]) {
      s.close();
      await s.waitClosed();
    }
  });
});

Deno.test("startTls() refuses what Deno cannot upgrade, naming why", async () => {
  await withLoop(async (loop) => {
    const [a] = transportPair(new Protocol(), new Protocol(), { loop });
    assertThrows(
      () => loop.startTls(a, new Protocol(), {}),
      TypeError,
      "TCP transport made by a DenoEventLoop",
    );
    a.abort();
    const { server, protocols } = await recordingServer(loop);
    const [plain] = await loop.createConnection(
      () => new Recorder(loop),
      HOST,
      portOf(server),
    );
    const far = await accepted(loop, protocols, 1);
    assertThrows(
      () => loop.startTls(far.transport, far, {}),
      InvalidStateError,
      "server side of its connection: pass serverSide: true",
    );
    assertThrows(
      () => loop.startTls(plain, new Protocol(), { handshakeTimeout: 0 }),
      RangeError,
    );
    assertThrows(
      () =>
        loop.startTls(plain, new Protocol(), {
          alpnProtocols: "h2" as unknown as string[],
        }),
      TypeError,
      "alpnProtocols must be an array of strings",
    );
    plain.close();
    server.close();
    await server.waitClosed();
  });
});

Deno.test("createConnection() checks its TLS options: cert and key together, serverHostname with a client certificate", async () => {
  await withLoop((loop) => {
    assertThrows(
      () =>
        loop.createConnection(() => new Protocol(), HOST, 1, {
          ssl: { cert: certs.clientCert },
        }),
      TypeError,
      "ssl.cert and ssl.key go together",
    );
    assertThrows(
      () =>
        loop.createConnection(() => new Protocol(), HOST, 1, {
          ssl: { cert: certs.clientCert, key: certs.clientKey },
          serverHostname: "tulip.test",
        }),
      RangeError,
      "client certificate",
    );
    assertThrows(
      () =>
        loop.createServer(() => new Protocol(), HOST, 0, {
          ssl: {
            cert: certs.cert,
            key: certs.key,
            alpnProtocols: [1] as unknown as string[],
          },
        }),
      TypeError,
      "ssl.alpnProtocols",
    );
    return Promise.resolve();
  });
});

Deno.test("startTls() over the relay carries 4 MiB each way intact, with the reader paused part of the time", async () => {
  await withLoop(async (loop) => {
    const { tlsServer, protocols, client, plain, tls } = await overRelay(
      loop,
      "localhost",
    );
    const data = pattern(4 * 1024 * 1024, 7);
    tls.write(data);
    // Pausing the old transport pauses the new one (and so the relay).
    await client.until(1024 * 1024);
    plain.pauseReading();
    assert(!tls.isReading());
    const seen = client.received;
    for (let i = 0; i < 20; i++) await sleepTick(loop);
    assert(client.received - seen <= 1024 * 1024, "reading was paused");
    plain.resumeReading();
    await client.until(data.length);
    assertEquals(client.data(), data);
    tls.close();
    await client.lost;
    await (await accepted(loop, protocols, 1)).lost;
    tlsServer.close();
    await tlsServer.waitClosed();
  });
});

for (
  const [echo, eofFirst] of [[false, false], [true, false], [true, true]]
) {
  Deno.test(
    `close()${
      eofFirst ? " after writeEof()" : ""
    } right after a large write on a transport upgraded over the relay still delivers every byte${
      echo ? ", to a server that echoes them meanwhile" : ""
    }`,
    async () => {
      await withLoop(async (loop) => {
        const { server, protocols } = await recordingServer(loop, {
          ssl: { cert: certs.cert, key: certs.key },
          echo,
        });
        const client = new Recorder(loop);
        const [plain] = await loop.createConnection(
          () => client,
          "127.0.0.1",
          portOf(server),
        );
        await client.made;
        // A read is in flight: the upgrade runs over the relay.
        const tls = await loop.startTls(plain, client, {
          serverHostname: "localhost",
          caCerts: [certs.ca],
        });
        const data = pattern(16 * 1024 * 1024, 3);
        tls.write(data);
        if (eofFirst) tls.writeEof();
        tls.close();
        await client.lost;
        const far = await accepted(loop, protocols, 1);
        await far.lost;
        assertEquals(far.received, data.length);
        server.close();
        await server.waitClosed();
      });
    },
  );
}

Deno.test("StreamWriter.startTls() refuses to upgrade while the reader holds bytes sent before the handshake (STARTTLS response injection), and closes the connection", async () => {
  // A man in the middle appends a plain-text line to the go-ahead; read
  // after the upgrade it would pass for one the server sent over TLS.
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const serving = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(64);
    await conn.read(buf);
    await conn.write(enc.encode("GO\nINJECTED\n"));
    // Until the client hangs up: no TLS here, a handshake would time out.
    while ((await conn.read(buf).catch(() => null)) !== null);
    conn.close();
  })();
  await withLoop(async (loop) => {
    const [reader, writer] = await openConnection(
      HOST,
      (listener.addr as Deno.NetAddr).port,
      { loop },
    );
    writer.write(enc.encode("STARTTLS\n"));
    assertEquals(new TextDecoder().decode(await reader.readline()), "GO\n");
    // Both lines came in one segment: the second is in the reader's buffer.
    const error = await assertRejects(
      () => writer.startTls({ caCerts: [certs.ca], handshakeTimeout: 5 }),
      InvalidStateError,
      "9 bytes",
    );
    assertStringIncludes(error.message, "before the TLS handshake");
    assert(writer.isClosing());
    // Nothing is lost silently: the bytes stay readable, then the end.
    assertEquals(
      new TextDecoder().decode(await reader.readline()),
      "INJECTED\n",
    );
    await writer.waitClosed().then(() => {}, () => {});
  });
  listener.close();
  await serving;
});
