// Real-socket tests of TLS connections and servers, with a certificate
// authority in tests/fixtures/tls/.

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import type { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import type { Server } from "../../loop/event_loop.ts";
import type { Transport } from "../../transports/transport.ts";
import {
  accepted,
  bytes,
  collectErrors,
  hangUpServer,
  pattern,
  portOf,
  Recorder,
  recordingServer,
  sleepTick,
  text,
  withLoop,
} from "./_stream_helpers.ts";
import { testCerts } from "./_tls_certs.ts";

const HOST = "127.0.0.1";

// Make the certificates before the tests, so no test is charged for them.
const certs = await testCerts();

async function tlsServer(
  loop: DenoEventLoop,
  protocols: Recorder[],
  options?: { keepOpen?: boolean },
): Promise<Server> {
  return await loop.createServer(
    () => {
      const p = new Recorder(loop, { echo: true });
      p.keepOpen = options?.keepOpen ?? false;
      protocols.push(p);
      return p;
    },
    HOST,
    0,
    { ssl: { cert: certs.cert, key: certs.key } },
  );
}

/** Connects `client` over TLS to `server`, trusting the test CA. */
async function connectTls(
  loop: DenoEventLoop,
  server: Server,
  client: Recorder,
  serverHostname?: string,
): Promise<Transport> {
  const [t] = await loop.createConnection(
    () => client,
    HOST,
    portOf(server),
    serverHostname === undefined
      ? { ssl: { caCerts: [certs.ca] } }
      : { ssl: { caCerts: [certs.ca] }, serverHostname },
  );
  return t;
}

async function shutdown(server: Server): Promise<void> {
  server.close();
  await server.waitClosed();
}

Deno.test("createConnection() with ssl checks serverHostname against the CA given", async () => {
  await withLoop(async (loop) => {
    const protocols: Recorder[] = [];
    const server = await tlsServer(loop, protocols);
    const client = new Recorder(loop);
    const t = await connectTls(loop, server, client, "tulip.test");
    assertEquals(client.events, ["made"]);
    t.write(bytes("over TLS"));
    await client.until(8);
    assertEquals(text(client.data()), "over TLS");
    assertEquals(
      (t.getExtraInfo("peername") as Deno.NetAddr).port,
      portOf(server),
    );
    t.close();
    assertEquals(await client.lost, undefined);
    await protocols[0].lost;
    await shutdown(server);
  });
});

Deno.test("createConnection() with ssl checks the host itself by default", async () => {
  await withLoop(async (loop) => {
    const protocols: Recorder[] = [];
    const server = await tlsServer(loop, protocols);
    const client = new Recorder(loop);
    const t = await connectTls(loop, server, client);
    t.write(bytes("ip"));
    await client.until(2);
    t.close();
    await client.lost;
    await shutdown(server);
  });
});

Deno.test("createConnection() with ssl fails on an unknown issuer or a wrong name", async () => {
  await withLoop(async (loop) => {
    const protocols: Recorder[] = [];
    const server = await tlsServer(loop, protocols);
    const port = portOf(server);
    const unknown = await assertRejects(() =>
      Promise.resolve(
        loop.createConnection(() => new Recorder(loop), HOST, port, {
          ssl: true,
        }),
      )
    );
    // As Deno's own TLS reports them: InvalidData, with the reason.
    assertInstanceOf(unknown, Deno.errors.InvalidData);
    assertStringIncludes(
      (unknown as Error).message,
      `Cannot connect to ${HOST}:${port} over TLS: invalid peer certificate: UnknownIssuer`,
    );
    const wrongName = await assertRejects(() =>
      Promise.resolve(
        loop.createConnection(() => new Recorder(loop), HOST, port, {
          ssl: { caCerts: [certs.ca] },
          serverHostname: "elsewhere.test",
        }),
      )
    );
    assertInstanceOf(wrongName, Deno.errors.InvalidData);
    assertStringIncludes(
      (wrongName as Error).message,
      `over TLS: invalid peer certificate: certificate not valid for name "elsewhere.test"`,
    );
    // The server dropped those handshakes and still serves.
    const client = new Recorder(loop);
    const t = await connectTls(loop, server, client, "localhost");
    t.write(bytes("fine"));
    await client.until(4);
    t.close();
    await client.lost;
    await shutdown(server);
  });
});

Deno.test("createConnection() with ssl refuses a certificate that names the host only in its common name, as Deno's TLS does", async () => {
  // An OpenSSL-style check (node:tls's, in Deno too) falls back on the
  // common name when there is no subjectAltName, and would accept it.
  await withLoop(async (loop) => {
    const server = await loop.createServer(
      () => new Recorder(loop),
      HOST,
      0,
      { ssl: { cert: certs.cnOnlyCert, key: certs.cnOnlyKey } },
    );
    const port = portOf(server);
    const error = await assertRejects(
      () =>
        Promise.resolve(
          loop.createConnection(() => new Recorder(loop), HOST, port, {
            ssl: { caCerts: [certs.otherCa] },
            serverHostname: "localhost",
          }),
        ),
      Deno.errors.InvalidData,
    );
    assertStringIncludes(
      error.message,
      `Cannot connect to ${HOST}:${port} over TLS: invalid peer certificate: certificate not valid for name "localhost"`,
    );
    await shutdown(server);
  });
});

Deno.test("createConnection() with ssl fails with ConnectionReset when the server hangs up during the handshake", async () => {
  await withLoop(async (loop) => {
    const server = hangUpServer();
    const error = await assertRejects(
      () =>
        Promise.resolve(
          loop.createConnection(() => new Recorder(loop), HOST, server.port, {
            ssl: { caCerts: [certs.ca] },
            serverHostname: "localhost",
          }),
        ),
      Deno.errors.ConnectionReset,
    );
    assertStringIncludes(
      error.message,
      `Cannot connect to ${HOST}:${server.port} over TLS: the peer closed the connection during the TLS handshake`,
    );
    assert(error.cause instanceof Deno.errors.UnexpectedEof);
    await server.done;
  });
});

Deno.test("A TLS transport carries a megabyte each way intact", async () => {
  await withLoop(async (loop) => {
    const protocols: Recorder[] = [];
    const server = await tlsServer(loop, protocols);
    const client = new Recorder(loop);
    const t = await connectTls(loop, server, client, "localhost");
    const big = pattern(1024 * 1024, 13);
    t.write(big);
    await client.until(big.length);
    assertEquals(client.data(), big);
    t.close();
    await client.lost;
    await shutdown(server);
  });
});

Deno.test("Transport.writeEof() half-closes a TLS connection", async () => {
  await withLoop(async (loop) => {
    const protocols: Recorder[] = [];
    const server = await tlsServer(loop, protocols, { keepOpen: true });
    const client = new Recorder(loop);
    client.keepOpen = true;
    const t = await connectTls(loop, server, client, "localhost");
    assert(t.canWriteEof());
    t.write(bytes("last words"));
    t.writeEof();
    const peer = await accepted(loop, protocols);
    await peer.eof;
    assertEquals(text(peer.data()), "last words");
    // Half-open: the server still writes, the client still reads.
    await client.until(10);
    peer.transport.write(bytes("!"));
    await client.until(11);
    peer.transport.close();
    await client.eof;
    t.close();
    await client.lost;
    await peer.lost;
    await shutdown(server);
  });
});

Deno.test("A TLS server ignores a client that never completes the handshake", async () => {
  await withLoop(async (loop) => {
    const protocols: Recorder[] = [];
    const server = await tlsServer(loop, protocols);
    // A plain TCP client speaking garbage.
    const plain = new Recorder(loop);
    const [pt] = await loop.createConnection(() => plain, HOST, portOf(server));
    pt.write(bytes("GET / HTTP/1.0\r\n\r\n"));
    await plain.lost;
    assertEquals(protocols.length, 0);
    await shutdown(server);
  });
});

Deno.test("A TLS server in debug mode reports a failed handshake with the TLS error, once", async () => {
  await withLoop(async (loop) => {
    loop.setDebug(true);
    const errors = collectErrors(loop);
    const protocols: Recorder[] = [];
    const server = await tlsServer(loop, protocols);
    const plain = new Recorder(loop);
    const [pt] = await loop.createConnection(() => plain, HOST, portOf(server));
    pt.write(bytes("GET / HTTP/1.0\r\n\r\n"));
    await plain.lost;
    while (errors.length === 0) await sleepTick(loop);
    await shutdown(server);
    assertEquals(errors.map((e) => e.message), ["TLS handshake failed"]);
    // What the TLS layer said, not the closed socket's "Bad resource ID".
    assertInstanceOf(errors[0].exception, Deno.errors.InvalidData);
    assertStringIncludes(String(errors[0].exception), "InvalidContentType");
    assertEquals(protocols.length, 0);
  });
});

Deno.test("A TLS server refuses a client none of whose ALPN protocols it accepts with a no_application_protocol alert (RFC 7301 §3.2)", async () => {
  await withLoop(async (loop) => {
    const protocols: Recorder[] = [];
    const server = await loop.createServer(
      () => {
        const p = new Recorder(loop);
        protocols.push(p);
        return p;
      },
      HOST,
      0,
      {
        ssl: { cert: certs.cert, key: certs.key, alpnProtocols: ["http/1.1"] },
      },
    );
    const conn = await Deno.connectTls({
      hostname: HOST,
      port: portOf(server),
      caCerts: [certs.ca],
      alpnProtocols: ["h2"],
    });
    const error = await assertRejects(() => conn.handshake());
    conn.close();
    // The alert, not a bare end of the stream.
    assertStringIncludes(String(error), "NoApplicationProtocol");
    assertEquals(protocols.length, 0);
    await shutdown(server);
  });
});

/** A record of `length` bytes that starts as a ClientHello would. */
function clientHelloRecord(length: number): Uint8Array {
  const record = new Uint8Array(5 + length);
  record.set([0x16, 3, 1, length >> 8, length & 0xff, 1, 0]);
  record.set([(length - 4) >> 8, (length - 4) & 0xff, 3, 3], 7);
  return record;
}

Deno.test("A TLS server answers what is no ClientHello with a fatal alert, in plain text (as Deno's own TLS listener does), then closes", async () => {
  await withLoop(async (loop) => {
    const server = await tlsServer(loop, []);
    for (
      const [sent, description] of [
        // Plain text: decode_error.
        [bytes("GET / HTTP/1.0\r\n\r\n"), 50],
        // An empty application-data record: unexpected_message.
        [new Uint8Array([0x17, 3, 3, 0, 0]), 10],
        // A record longer than TLS allows (2^14 bytes and its expansion):
        // record_overflow, as RFC 8446 §5.1 and §5.2 require (Deno's own
        // listener says decode_error).
        [new Uint8Array([0x16, 3, 1, 0xff, 0xff, 1, 0, 0xff, 0xfb]), 22],
        [new Uint8Array([0x16, 3, 1, 0x48, 0x01, 1]), 22],
        // Just over 2^14 bytes, which node:tls beneath takes up to 2^14 +
        // 2048 (TLS 1.2's bound for an encrypted record).
        [clientHelloRecord(16385), 22],
        [clientHelloRecord(18431), 22],
        // An SSL 3.0 ClientHello: handshake_failure.
        [
          new Uint8Array([
            0x16,
            3,
            0,
            0,
            45,
            1,
            0,
            0,
            41,
            3,
            0,
            ...new Array(32).fill(7),
            0,
            0,
            2,
            0,
            0x2f,
            1,
            0,
          ]),
          40,
        ],
      ] as const
    ) {
      const conn = await Deno.connect({ hostname: HOST, port: portOf(server) });
      await conn.write(sent);
      const got: number[] = [];
      const buf = new Uint8Array(64);
      for (;;) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) break;
        got.push(...buf.subarray(0, n));
      }
      conn.close();
      // An alert record: fatal (2), then the description.
      assertEquals(got, [0x15, 3, 3, 0, 2, 2, description]);
    }
    await shutdown(server);
  });
});

/**
 * A plain TCP relay for one connection to `port`, whose `cut(toClient)`
 * stops one direction and half-closes the socket it fed: the peer sees
 * its TCP stream end with no TLS close_notify before it. `inject(data)`
 * stops relaying the client's bytes and sends `data` to the server in
 * their place (bytes that are no TLS record of the session).
 */
function raggedRelay(port: number) {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const cut = [false, false];
  const conns: Deno.Conn[] = [];
  const pipe = async (from: Deno.Conn, to: Deno.Conn, dir: number) => {
    const buf = new Uint8Array(16384);
    for (;;) {
      const n = await from.read(buf).catch(() => null);
      if (n === null) return;
      if (!cut[dir]) await to.write(buf.subarray(0, n)).catch(() => {});
    }
  };
  const relaying = (async () => {
    const front = await listener.accept();
    const back = await Deno.connect({ hostname: HOST, port });
    conns.push(front, back);
    await Promise.all([pipe(front, back, 0), pipe(back, front, 1)]);
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    cut(toClient: boolean): void {
      cut[toClient ? 1 : 0] = true;
      conns[toClient ? 0 : 1].closeWrite();
    },
    async inject(data: Uint8Array): Promise<void> {
      cut[0] = true;
      await conns[1].write(data);
    },
    async close(): Promise<void> {
      listener.close();
      for (const conn of conns) conn.close();
      await relaying;
    },
  };
}

/**
 * A TLS client connected to `server` through a `raggedRelay()`, once the
 * server has echoed its "hi": the relay, both protocols and the client's
 * transport.
 */
async function throughRelay(
  loop: DenoEventLoop,
  server: Server,
  protocols: Recorder[],
) {
  const relay = raggedRelay(portOf(server));
  const client = new Recorder(loop);
  const [t] = await loop.createConnection(
    () => client,
    HOST,
    relay.port,
    { ssl: { caCerts: [certs.ca] }, serverHostname: "localhost" },
  );
  const peer = await accepted(loop, protocols, protocols.length + 1);
  t.write(bytes("hi"));
  await client.until(2);
  return { relay, client, t, peer };
}

Deno.test("A TLS peer that closes its socket without close_notify ends the stream: eofReceived(), then connectionLost() with no error, on both sides", async () => {
  await withLoop(async (loop) => {
    const protocols: Recorder[] = [];
    const server = await tlsServer(loop, protocols);
    for (const toClient of [true, false]) {
      const { relay, client, t, peer } = await throughRelay(
        loop,
        server,
        protocols,
      );
      relay.cut(toClient);
      const cutOff = toClient ? client : peer;
      assertEquals(await cutOff.lost, undefined);
      assertEquals(cutOff.events, ["made", "data", "eof", "lost"]);
      t.abort();
      peer.transport.abort();
      while (peer.count("lost") + client.count("lost") < 2) {
        await sleepTick(loop);
      }
      await relay.close();
    }
    await shutdown(server);
  });
});

Deno.test("A TLS server's connection that receives what is no valid record after the handshake is lost with the TLS error, not ended", async () => {
  await withLoop(async (loop) => {
    const protocols: Recorder[] = [];
    const server = await tlsServer(loop, protocols, { keepOpen: true });
    for (
      const [garbage, message] of [
        // Plain text where a record belongs.
        [bytes("GARBAGE\r\n"), "InvalidContentType"],
        // An application-data record longer than TLS allows.
        [new Uint8Array([0x17, 3, 3, 0xff, 0xff, 1, 2, 3]), "MessageTooLarge"],
      ] as const
    ) {
      const { relay, client, t, peer } = await throughRelay(
        loop,
        server,
        protocols,
      );
      await relay.inject(garbage);
      const error = await peer.lost;
      // As Deno's own TLS (a client's, or Deno.listenTls()) fails a read.
      assertInstanceOf(error, Deno.errors.InvalidData);
      assertStringIncludes(String(error), message);
      assertEquals(peer.events, ["made", "data", "lost"]);
      t.abort();
      await client.lost;
      await relay.close();
    }
    await shutdown(server);
  });
});

Deno.test("Transport.close() on TLS sends what is buffered, then a close_notify: a strict peer reads it all and a clean end", async () => {
  await withLoop(async (loop) => {
    // Deno's own TLS listener fails a read with UnexpectedEof when the
    // stream ends without a close_notify.
    const listener = Deno.listenTls({
      hostname: HOST,
      port: 0,
      cert: certs.cert,
      key: certs.key,
    });
    const got = (async () => {
      const conn = await listener.accept();
      const buf = new Uint8Array(1 << 16);
      let total = 0;
      try {
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) return `clean end after ${total} bytes`;
          total += n;
        }
      } catch (error) {
        return `${(error as Error).name} after ${total} bytes`;
      } finally {
        conn.close();
      }
    })();
    const client = new Recorder(loop);
    const [t] = await loop.createConnection(
      () => client,
      HOST,
      (listener.addr as Deno.NetAddr).port,
      { ssl: { caCerts: [certs.ca] }, serverHostname: "localhost" },
    );
    t.write(pattern(1 << 20));
    t.close();
    assertEquals(await got, `clean end after ${1 << 20} bytes`);
    assertEquals(await client.lost, undefined);
    listener.close();
  });
});

Deno.test("Transport.close() on a TLS server's connection sends what is buffered, then a close_notify: a strict client reads it all and a clean end", async () => {
  await withLoop(async (loop) => {
    // Deno's own TLS client fails a read with UnexpectedEof when the
    // stream ends without a close_notify.
    const big = pattern(1 << 20, 5);
    const server = await loop.createServer(
      () => {
        const p = new Recorder(loop);
        p.made.then((t) => {
          t.write(big);
          t.close();
        });
        return p;
      },
      HOST,
      0,
      { ssl: { cert: certs.cert, key: certs.key } },
    );
    const conn = await Deno.connectTls({
      hostname: HOST,
      port: portOf(server),
      caCerts: [certs.ca],
    });
    const buf = new Uint8Array(1 << 16);
    let total = 0;
    let end: string;
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) {
          end = "a clean end";
          break;
        }
        total += n;
      }
    } catch (error) {
      end = (error as Error).name;
    } finally {
      conn.close();
    }
    assertEquals([total, end], [big.length, "a clean end"]);
    await shutdown(server);
  });
});

Deno.test("abort() after close() on a TLS server's connection whose client never reads frees it at once", async () => {
  await withLoop(async (loop) => {
    const protocols: Recorder[] = [];
    const server = await tlsServer(loop, protocols);
    const conn = await Deno.connectTls({
      hostname: HOST,
      port: portOf(server),
      caCerts: [certs.ca],
    });
    await conn.handshake();
    const peer = await accepted(loop, protocols);
    // More than the sockets hold: the close_notify waits behind it.
    peer.transport.write(pattern(16 << 20));
    peer.transport.close();
    await sleepTick(loop);
    assertEquals(peer.count("lost"), 0);
    peer.transport.abort();
    assertEquals(await peer.lost, undefined);
    conn.close();
    await shutdown(server);
  });
});

Deno.test("createServer() with ssl rejects a certificate or key that is not PEM, naming which, before listening", async () => {
  await withLoop(async (loop) => {
    for (
      const [cert, key, message] of [
        ["not a certificate", certs.key, "No certificates found"],
        [certs.cert, "not a key", "No keys found"],
      ]
    ) {
      const error = await assertRejects(
        () =>
          Promise.resolve(
            loop.createServer(() => new Recorder(loop), HOST, 0, {
              ssl: { cert, key },
            }),
          ),
        Deno.errors.InvalidData,
      );
      assertStringIncludes(error.message, `Cannot listen on ${HOST}:0`);
      assertStringIncludes(String(error), message);
    }
  });
});

Deno.test("createServer() with ssl rejects a key that does not belong to the certificate, before listening, as Deno.listenTls() and asyncio's load_cert_chain() do", async () => {
  await withLoop(async (loop) => {
    const error = await assertRejects(
      () =>
        Promise.resolve(
          loop.createServer(() => new Recorder(loop), HOST, 0, {
            ssl: { cert: certs.cert, key: certs.clientKey },
          }),
        ),
      Deno.errors.InvalidData,
    );
    assertStringIncludes(error.message, `Cannot listen on ${HOST}:0`);
    assertStringIncludes(
      error.message,
      "the private key (ssl.key) does not belong to the certificate (ssl.cert)",
    );
  });
});

Deno.test("ALPN protocol names must be 1 to 255 ASCII characters (RFC 7301 §3.1; asyncio's set_alpn_protocols()), for createConnection(), createServer() and startTls()", async () => {
  await withLoop(async (loop) => {
    const { server } = await recordingServer(loop);
    const [plain] = await loop.createConnection(
      () => new Recorder(loop),
      HOST,
      portOf(server),
    );
    for (
      const [bad, shown] of [
        ["", '""'],
        ["x".repeat(256), `"${"x".repeat(80)}…"`],
        ["ü", '"ü"'],
      ]
    ) {
      const alpnProtocols = ["h2", bad];
      const calls: [string, () => unknown][] = [
        [
          "createConnection(): ssl.alpnProtocols",
          () =>
            loop.createConnection(() => new Recorder(loop), HOST, 1, {
              ssl: { alpnProtocols },
            }),
        ],
        [
          "createServer(): ssl.alpnProtocols",
          () =>
            loop.createServer(() => new Recorder(loop), HOST, 0, {
              ssl: { cert: certs.cert, key: certs.key, alpnProtocols },
            }),
        ],
        [
          "startTls(): alpnProtocols",
          () => loop.startTls(plain, new Recorder(loop), { alpnProtocols }),
        ],
      ];
      for (const [where, call] of calls) {
        assertThrows(
          call,
          RangeError,
          `Cannot call ${where} must be protocol names of 1 to 255 ASCII characters (RFC 7301 §3.1), received ${shown} at index 1`,
        );
      }
    }
    // 255 characters is the most a name may have.
    assertEquals(
      await loop.createServer(() => new Recorder(loop), HOST, 0, {
        ssl: {
          cert: certs.cert,
          key: certs.key,
          alpnProtocols: ["x".repeat(255)],
        },
      }).then(shutdown),
      undefined,
    );
    plain.close();
    await shutdown(server);
  });
});

Deno.test("A TLS server's connection whose protocol paused reading takes no more than the socket buffers hold from a client that keeps writing", async () => {
  await withLoop(async (loop) => {
    const protocols: Recorder[] = [];
    const server = await tlsServer(loop, protocols);
    const client = await Deno.connectTls({
      hostname: "localhost",
      port: portOf(server),
      caCerts: [certs.ca],
    });
    await client.handshake();
    const peer = await accepted(loop, protocols, 1);
    peer.transport.pauseReading();
    // The client writes 64 MiB while the server reads nothing: the
    // kernel's buffers take a few MiB, then the client's writes wait.
    const chunk = new Uint8Array(256 * 1024);
    let accepted_ = 0;
    const writing = (async () => {
      try {
        while (accepted_ < 64 * 1024 * 1024) {
          accepted_ += await client.write(chunk);
        }
      } catch {
        // Closed under it at the end.
      }
    })();
    const start = Date.now();
    let last = -1;
    while (accepted_ !== last && Date.now() - start < 5000) {
      last = accepted_;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    assert(
      accepted_ < 24 * 1024 * 1024,
      `the client wrote ${accepted_} bytes to a server reading nothing`,
    );
    client.close();
    await writing;
    peer.transport.abort();
    await peer.lost;
    server.close();
    await server.waitClosed();
  });
});
