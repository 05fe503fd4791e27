// TLS against a peer nobody here wrote: the openssl binary's s_server and
// s_client, with the certificates in tests/fixtures/tls/. Skipped, with
// the reason printed, where openssl is not installed.
//
// STARTTLS: openssl s_server speaks TLS from the first byte and knows no
// plain-text prelude, so the STARTTLS tests put a small plain-TCP front,
// written here with raw Deno APIs, before it: the front greets the client
// in plain text, answers "STARTTLS" with a go-ahead, and from then on only
// copies bytes between the client and s_server. The TLS session is
// between tulip and openssl; the front never sees a plain byte after the
// go-ahead.

import {
  assert,
  assertEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import { openConnection } from "../../streams/open_connection.ts";
import { Protocol } from "../../protocols/protocol.ts";
import type { Transport } from "../../transports/transport.ts";
import type { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import type { CreateConnectionOptions } from "../../loop/event_loop.ts";
import {
  accepted,
  collectErrors,
  portOf,
  recordingServer,
  sleepTick,
  withLoop,
} from "./_stream_helpers.ts";
import { fixturePath, opensslMissing, testCerts } from "./_tls_certs.ts";

const HOST = "127.0.0.1";
const certs = await testCerts();
const missing = await opensslMissing();
if (missing !== null) {
  console.warn(`Skipping the openssl interop tests: ${missing}`);
}
const enc = new TextEncoder();
const dec = new TextDecoder();

/** A free port on 127.0.0.1 for s_server (bound and released). */
function freePort(): number {
  const l = Deno.listen({ hostname: HOST, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Runs `openssl s_server -rev` (it answers each line reversed) for one
 * connection, with extra arguments; resolves once it listens.
 */
async function sServer(
  args: string[],
): Promise<{ port: number; stop: () => Promise<string> }> {
  const port = freePort();
  const child = new Deno.Command("openssl", {
    args: [
      "s_server",
      "-accept",
      `${HOST}:${port}`,
      "-cert",
      fixturePath("server.pem"),
      "-key",
      fixturePath("server.key"),
      "-naccept",
      "1",
      "-rev",
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out: string[] = [];
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  // s_server prints ACCEPT once it listens.
  while (!out.join("").includes("ACCEPT")) {
    const { value, done } = await reader.read();
    if (done) break;
    out.push(value);
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      out.push(value);
    }
  })();
  return {
    port,
    stop: async () => {
      try {
        child.kill();
      } catch {
        // Exited already.
      }
      await rest;
      const err = await new Response(child.stderr).text();
      await child.status;
      return out.join("") + err;
    },
  };
}

/**
 * The plain-TCP front described at the top: greets, answers STARTTLS
 * with a go-ahead, then copies bytes to and from `tlsPort`. `stop()`
 * closes whatever is still open and waits for the front to finish.
 */
function starttlsFront(
  tlsPort: number,
): { port: number; stop: () => Promise<void>; clientGone: Promise<void> } {
  const gone = Promise.withResolvers<void>();
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const open = new Set<Deno.Conn>();
  const close = (c: Deno.Conn | Deno.Listener) => {
    try {
      c.close();
    } catch {
      // Closed already.
    }
  };
  const done = (async () => {
    const conn = await listener.accept();
    close(listener);
    open.add(conn);
    await conn.write(enc.encode("220 tulip test front\r\n"));
    const buf = new Uint8Array(64);
    let got = "";
    while (!got.includes("\r\n")) {
      const n = await conn.read(buf);
      if (n === null) return;
      got += dec.decode(buf.subarray(0, n));
    }
    assertEquals(got, "STARTTLS\r\n");
    await conn.write(enc.encode("220 Ready to start TLS\r\n"));
    const backend = await Deno.connect({ hostname: HOST, port: tlsPort });
    open.add(backend);
    const copy = async (from: Deno.Conn, to: Deno.Conn) => {
      const chunk = new Uint8Array(16 * 1024);
      try {
        for (;;) {
          const n = await from.read(chunk);
          if (n === null) break;
          let at = 0;
          while (at < n) at += await to.write(chunk.subarray(at, n));
        }
        await to.closeWrite();
      } catch {
        // One side went away.
      }
    };
    await Promise.all([
      copy(conn, backend).then(gone.resolve),
      copy(backend, conn),
    ]);
  })().catch(() => {}).finally(() => {
    close(listener);
    for (const c of open) close(c);
  });
  return {
    clientGone: gone.promise,
    port: (listener.addr as Deno.NetAddr).port,
    stop: async () => {
      close(listener);
      for (const c of open) close(c);
      await done;
    },
  };
}

/**
 * Runs `fn` in a fresh loop while an s_server with `args` runs; stops the
 * server whatever happens and returns what it printed.
 */
async function withSServer(
  args: string[],
  fn: (loop: DenoEventLoop, port: number) => Promise<void>,
): Promise<string> {
  const server = await sServer(args);
  let log = "";
  try {
    await withLoop((loop) => fn(loop, server.port));
  } finally {
    log = await server.stop();
  }
  return log;
}

/**
 * Runs `fn` in a fresh loop with a STARTTLS front before an s_server that
 * offers the ALPN protocols `alpn`; stops both whatever happens.
 */
async function withStarttlsFront(
  alpn: string,
  fn: (
    loop: DenoEventLoop,
    front: ReturnType<typeof starttlsFront>,
  ) => Promise<void>,
): Promise<void> {
  const server = await sServer(["-alpn", alpn]);
  const front = starttlsFront(server.port);
  try {
    await withLoop((loop) => fn(loop, front));
  } finally {
    await server.stop();
    await front.stop();
  }
}

/**
 * Upgrades `plain` for `client` to TLS towards localhost, offering `alpn`,
 * and checks that openssl chose it and the peer is still the front.
 */
async function upgrade(
  loop: DenoEventLoop,
  plain: Transport,
  client: Client,
  alpn: string,
  frontPort: number,
): Promise<Transport> {
  const tls = await loop.startTls(plain, client, {
    serverHostname: "localhost",
    caCerts: [certs.ca],
    alpnProtocols: [alpn],
  });
  client.transport = tls;
  assertEquals(tls.getExtraInfo("alpnProtocol"), alpn);
  assertEquals(
    (tls.getExtraInfo("peername") as Deno.NetAddr).port,
    frontPort,
  );
  return tls;
}

/** Connects a fresh `Client` to `localhost:port` over TLS with `ssl`. */
async function connectTls(
  loop: DenoEventLoop,
  port: number,
  ssl: CreateConnectionOptions["ssl"],
): Promise<[Transport, Client]> {
  const client = new Client(false);
  const [t] = await loop.createConnection(
    () => client,
    "localhost",
    port,
    { ssl },
  );
  return [t, client];
}

/** s_server arguments that require a client certificate signed by our CA. */
const REQUIRE_CLIENT_CERT = ["-Verify", "1", "-CAfile", fixturePath("ca.pem")];

/** A line-minded STARTTLS client protocol. */
class Client extends Protocol {
  transport: Transport | null = null;
  text = "";
  lost: Error | undefined | null = null;
  #waiters: Array<[string, () => void]> = [];
  readonly pauseAtGoAhead: boolean;

  constructor(pauseAtGoAhead: boolean) {
    super();
    this.pauseAtGoAhead = pauseAtGoAhead;
  }
  override connectionMade(t: Transport): void {
    this.transport = t;
  }
  override dataReceived(data: Uint8Array): void {
    this.text += dec.decode(data);
    if (this.pauseAtGoAhead && this.text.includes("220 Ready")) {
      // The last plain-text message: no read may be in flight at the upgrade.
      this.transport!.pauseReading();
    }
    this.#waiters = this.#waiters.filter(([s, wake]) => {
      if (!this.text.includes(s)) return true;
      wake();
      return false;
    });
  }
  override connectionLost(exc?: Error): void {
    this.lost = exc;
  }
  /** Resolves once the text received includes `s`. */
  until(s: string): Promise<void> {
    if (this.text.includes(s)) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push([s, resolve]);
    return promise;
  }
}

Deno.test({
  name:
    "DenoEventLoop.startTls() upgrades a connection after a plain-text STARTTLS exchange, against openssl s_server",
  ignore: missing !== null,
  async fn() {
    await withStarttlsFront("h2,imap", async (loop, front) => {
      const client = new Client(true);
      const [plain] = await loop.createConnection(
        () => client,
        HOST,
        front.port,
      );
      await client.until("220 tulip test front\r\n");
      plain.write(enc.encode("STARTTLS\r\n"));
      await client.until("220 Ready to start TLS\r\n");
      const tls = await upgrade(loop, plain, client, "imap", front.port);
      assert(plain.isClosing(), "the plain transport is replaced");
      tls.write(enc.encode("tulip over tls\n"));
      await client.until("slt revo pilut");
      // Nothing before the upgrade was lost or seen twice.
      assertEquals(
        client.text.split("220 ").length,
        3,
        `plain text seen: ${JSON.stringify(client.text)}`,
      );
      tls.close();
      while (client.lost === null) await sleepTick(loop);
    });
  },
});

Deno.test({
  name:
    "DenoEventLoop.startTls() with a read in flight relays the connection and still upgrades it, against openssl s_server",
  ignore: missing !== null,
  async fn() {
    await withStarttlsFront("h2", async (loop, front) => {
      // Reading is never paused: a read is in flight at the upgrade.
      const client = new Client(false);
      const [plain] = await loop.createConnection(
        () => client,
        HOST,
        front.port,
      );
      plain.write(enc.encode("STARTTLS\r\n"));
      await client.until("220 Ready to start TLS\r\n");
      const tls = await upgrade(loop, plain, client, "h2", front.port);
      // More than the relay's buffers hold at once, both ways.
      const line = "0123456789abcdef".repeat(1000) + "\n";
      tls.write(enc.encode(line));
      const reversed = [...line.slice(0, -1)].reverse().join("");
      await client.until(reversed);
      assertEquals(client.text.split("220 ").length, 3);
      tls.close();
      while (client.lost === null) await sleepTick(loop);
      assertEquals(client.lost, undefined);
      // The relay closes the plain connection behind the TLS one.
      await front.clientGone;
    });
  },
});

Deno.test({
  name:
    "StreamWriter.startTls() upgrades an openConnection() stream after reading the go-ahead, against openssl s_server",
  ignore: missing !== null,
  async fn() {
    await withStarttlsFront("imap", async (loop, front) => {
      const [reader, writer] = await openConnection(HOST, front.port, {
        loop,
      });
      assertEquals(
        dec.decode(await reader.readline()),
        "220 tulip test front\r\n",
      );
      writer.write(enc.encode("STARTTLS\r\n"));
      assertEquals(
        dec.decode(await reader.readline()),
        "220 Ready to start TLS\r\n",
      );
      await writer.startTls({
        serverHostname: "localhost",
        caCerts: [certs.ca],
        alpnProtocols: ["imap"],
      });
      assertEquals(writer.getExtraInfo("alpnProtocol"), "imap");
      writer.write(enc.encode("hello tls\n"));
      let reply = "";
      while (!reply.includes("slt olleh")) {
        reply += dec.decode(await reader.read(100));
      }
      writer.close();
      await writer.waitClosed();
    });
  },
});

Deno.test({
  name: "createConnection() offers ALPN protocols and reports openssl's choice",
  ignore: missing !== null,
  async fn() {
    await withSServer(["-alpn", "h2,http/1.1"], async (loop, port) => {
      const [t, client] = await connectTls(loop, port, {
        caCerts: [certs.ca],
        alpnProtocols: ["http/1.1", "x"],
      });
      assertEquals(t.getExtraInfo("alpnProtocol"), "http/1.1");
      t.write(enc.encode("abc\n"));
      await client.until("cba");
      t.close();
    });
  },
});

Deno.test({
  name:
    "createConnection() presents a client certificate to an openssl s_server that requires one",
  ignore: missing !== null,
  async fn() {
    const log = await withSServer(REQUIRE_CLIENT_CERT, async (loop, port) => {
      const [t, client] = await connectTls(loop, port, {
        caCerts: [certs.ca],
        cert: certs.clientCert,
        key: certs.clientKey,
      });
      t.write(enc.encode("mutual\n"));
      await client.until("lautum");
      t.close();
    });
    assertStringIncludes(log, "tulip test client");
  },
});

Deno.test({
  name:
    "createConnection() without a client certificate is refused by an openssl s_server that requires one",
  ignore: missing !== null,
  async fn() {
    await withSServer(REQUIRE_CLIENT_CERT, async (loop, port) => {
      const client = new Client(false);
      // TLS 1.3: the server asks for the certificate after the client's
      // handshake is done, so the refusal comes as the connection's error.
      try {
        const [t] = await loop.createConnection(
          () => client,
          "localhost",
          port,
          { ssl: { caCerts: [certs.ca] } },
        );
        t.write(enc.encode("anonymous\n"));
        while (client.lost === null) await sleepTick(loop);
        assert(client.lost !== undefined, "the connection failed");
        assertStringIncludes(String(client.lost), "Certificate");
        assertEquals(client.text, "");
      } catch (error) {
        assertStringIncludes(String(error), "Certificate");
      }
    });
  },
});

Deno.test({
  name:
    "createServer() picks an ALPN protocol that openssl s_client offers, and refuses startTls() on its transports",
  ignore: missing !== null,
  async fn() {
    await withLoop(async (loop) => {
      const { server, protocols } = await recordingServer(loop, {
        echo: true,
        ssl: {
          cert: certs.cert,
          key: certs.key,
          alpnProtocols: ["h2", "acme"],
        },
      });
      const child = new Deno.Command("openssl", {
        args: [
          "s_client",
          "-connect",
          `${HOST}:${portOf(server)}`,
          "-servername",
          "localhost",
          "-CAfile",
          fixturePath("ca.pem"),
          "-alpn",
          "acme",
          "-quiet",
          "-no_ign_eof",
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(enc.encode("ping\n"));
      const p = await accepted(loop, protocols, 1);
      const t = p.transport!;
      assertEquals(t.getExtraInfo("alpnProtocol"), "acme");
      const error = assertThrows(
        () => loop.startTls(t, p, {}),
        InvalidStateError,
      );
      assertStringIncludes(error.message, "TLS already");
      await p.until(5);
      assertEquals(dec.decode(p.data()), "ping\n");
      await writer.close();
      await child.output();
      server.close();
      await server.waitClosed();
    });
  },
});

/**
 * Runs `openssl s_client` against `port` with `args`, typing `lines` one
 * by one a little apart (s_client reads "R" as "renegotiate"), and
 * returns what it printed once it exits (killed after 10 s).
 */
async function sClient(
  port: number,
  args: string[],
  lines: string[],
): Promise<string> {
  const child = new Deno.Command("openssl", {
    args: [
      "s_client",
      "-connect",
      `${HOST}:${port}`,
      "-servername",
      "localhost",
      "-CAfile",
      fixturePath("ca.pem"),
      ...args,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill(), 10_000);
  const writer = child.stdin.getWriter();
  try {
    for (const line of lines) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await writer.write(enc.encode(`${line}\n`));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    await writer.close();
  } catch {
    // s_client exited early.
  }
  const out = await child.output();
  clearTimeout(timer);
  return dec.decode(out.stdout) + dec.decode(out.stderr);
}

Deno.test({
  name:
    "createServer() with ssl refuses TLS 1.0 and 1.1 with an alert and a TLS 1.2 client's renegotiation, reports none of it, and goes on serving",
  ignore: missing !== null,
  async fn() {
    await withLoop(async (loop) => {
      const errors = collectErrors(loop);
      const { server, protocols } = await recordingServer(loop, {
        echo: true,
        ssl: { cert: certs.cert, key: certs.key },
      });
      const port = portOf(server);
      for (const version of ["-tls1", "-tls1_1"]) {
        // SECLEVEL=0: this openssl would not offer them otherwise.
        const out = await sClient(port, [
          version,
          "-cipher",
          "DEFAULT@SECLEVEL=0",
        ], []);
        assertStringIncludes(out, "alert handshake failure");
      }
      assertEquals(protocols.length, 0);
      const out = await sClient(port, ["-tls1_2"], ["hello", "R", "again"]);
      assertStringIncludes(out, "RENEGOTIATING");
      assertStringIncludes(out, "no renegotiation");
      const p = await accepted(loop, protocols, 1);
      await p.lost;
      // The TLS session before the attempt served as usual.
      assertEquals(dec.decode(p.data()), "hello\n");
      // Another client is served.
      const conn = await Deno.connectTls({
        hostname: "localhost",
        port,
        caCerts: [certs.ca],
      });
      await conn.write(enc.encode("ping"));
      const buf = new Uint8Array(4);
      assertEquals(await conn.read(buf), 4);
      conn.close();
      assertEquals(errors, []);
      server.close();
      await server.waitClosed();
    });
  },
});
