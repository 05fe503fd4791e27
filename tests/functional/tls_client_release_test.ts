// Real-socket tests that a TLS client frees its TCP socket (its file
// descriptor) as soon as it gives up on a connection: a handshake timed
// out against a server that never answers, or a transport aborted while
// the server reads nothing. A hostile server must not keep a client's
// descriptor for longer than the client's limits allow.

import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import { TimeoutError } from "../../futures/errors.ts";
import { Protocol } from "../../protocols/protocol.ts";
import type { Transport } from "../../transports/transport.ts";
import { withLoop } from "./_stream_helpers.ts";
import { testCerts } from "./_tls_certs.ts";

const HOST = "127.0.0.1";
const certs = await testCerts();

/** Why `ss` cannot count sockets here, or `null` when it can. */
function ssMissing(): string | null {
  try {
    const out = new Deno.Command("ss", { args: ["-tn"] }).outputSync();
    return out.success ? null : "ss -tn failed";
  } catch (error) {
    return `no ss command (${(error as Error).message})`;
  }
}
const noSs = ssMissing();
if (noSs !== null) {
  console.warn(`Skipping the socket-count tests: ${noSs}`);
}

/**
 * The client's established TCP connections to `port`, as `ss` lists them
 * (the client's side only: its remote port is `port`).
 */
function clientSockets(port: number): number {
  const out = new Deno.Command("ss", {
    args: ["-tnH", "state", "established", `( dport = :${port} )`],
  }).outputSync();
  return new TextDecoder().decode(out.stdout).split("\n")
    .filter((line) => line.trim() !== "").length;
}

/** Waits until `ss` lists none of the client's sockets to `port`. */
async function clientSocketsGone(port: number, bound: number): Promise<void> {
  const start = performance.now();
  while (clientSockets(port) !== 0) {
    const took = (performance.now() - start) / 1000;
    assert(took < bound, `The client's socket still open after ${took} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Reads from `conn` until the client's side ends (EOF, a reset, or an
 * error) and resolves with the seconds that took from `start`, or with
 * `Infinity` if it has not ended within `bound` seconds. What it reads is
 * dropped.
 */
async function endedWithin(
  conn: Deno.Conn,
  start: number,
  bound: number,
): Promise<number> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<number>((resolve) => {
    timer = setTimeout(() => resolve(Infinity), bound * 1000);
  });
  const ended = (async () => {
    const buf = new Uint8Array(16384);
    try {
      while (await conn.read(buf) !== null) { /* dropped */ }
    } catch {
      // A reset: ended too.
    }
    return (performance.now() - start) / 1000;
  })();
  try {
    return await Promise.race([ended, late]);
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed already.
    }
    await ended;
  }
}

/** A protocol that keeps its transport and when it was lost. */
class Keeper extends Protocol {
  transport: Transport | null = null;
  lost: PromiseWithResolvers<Error | undefined> = Promise.withResolvers();
  override connectionMade(transport: Transport): void {
    this.transport = transport;
  }
  override connectionLost(exc?: Error): void {
    this.lost.resolve(exc);
  }
}

Deno.test("startTls() over the loopback relay closes the socket when handshakeTimeout passes against a server that never answers", async () => {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  try {
    await withLoop(async (loop) => {
      const accepting = listener.accept();
      const protocol = new Keeper();
      const [plain] = await loop.createConnection(
        () => protocol,
        HOST,
        listener.addr.port,
      );
      const silent = await accepting;
      // A read is in flight: the upgrade runs over the relay.
      assert(plain.isReading());
      let error: unknown;
      try {
        await loop.startTls(plain, protocol, {
          caCerts: [certs.ca],
          serverHostname: "localhost",
          handshakeTimeout: 0.3,
        });
      } catch (e) {
        error = e;
      }
      assertInstanceOf(error, TimeoutError);
      const took = await endedWithin(silent, performance.now(), 2);
      assert(took < 2, `The client's socket was still open after 2 s`);
    });
  } finally {
    listener.close();
  }
});

Deno.test({
  name:
    "abort() on a TLS transport upgraded over the loopback relay frees the socket at once though the server reads nothing",
  ignore: noSs !== null,
  fn: async () => {
    const listener = Deno.listenTls({
      hostname: HOST,
      port: 0,
      cert: certs.cert,
      key: certs.key,
    });
    const port = listener.addr.port;
    let server: Deno.TlsConn | null = null;
    try {
      await withLoop(async (loop) => {
        const accepting = listener.accept();
        const protocol = new Keeper();
        const [plain] = await loop.createConnection(() => protocol, HOST, port);
        server = await accepting;
        // A read is in flight: the upgrade runs over the relay.
        assert(plain.isReading());
        const [transport] = await Promise.all([
          loop.startTls(plain, protocol, {
            caCerts: [certs.ca],
            serverHostname: "localhost",
          }),
          server.handshake(),
        ]);
        // More than the socket buffers (the relay's loopback pair's too)
        // hold, which the server never reads.
        for (let i = 0; i < 64; i++) {
          transport.write(new Uint8Array(256 * 1024));
        }
        // Until the socket buffers are full: the transport's stops
        // shrinking.
        let last = -1;
        while (transport.getWriteBufferSize() !== last) {
          last = transport.getWriteBufferSize();
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        assert(last > 0, "The server took everything");
        assertEquals(clientSockets(port), 1);
        transport.abort();
        await protocol.lost.promise;
        await clientSocketsGone(port, 2);
      });
    } finally {
      (server as Deno.TlsConn | null)?.close();
      listener.close();
    }
  },
});
