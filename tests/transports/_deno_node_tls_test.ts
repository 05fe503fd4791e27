// The server side of TLS over a TCP socket tulip owns (node:tls), checked
// on its own, over real loopback sockets.

import { assert, assertEquals } from "@std/assert";
import {
  loadNodeTls,
  nodeTlsConfig,
  NodeTlsConn,
} from "../../transports/_deno_node_tls.ts";
import { testCerts } from "../functional/_tls_certs.ts";

const certs = await testCerts();

/** `conn`, with the size of each buffer a read is given recorded. */
function recordingReads(conn: Deno.TcpConn, sizes: number[]): Deno.TcpConn {
  return new Proxy(conn, {
    get(target, key) {
      if (key === "read") {
        return (buffer: Uint8Array) => {
          sizes.push(buffer.length);
          return target.read(buffer);
        };
      }
      const value = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

async function waitFor(what: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !what(); i++) {
    await new Promise((r) => setTimeout(r, 2));
  }
  assert(what());
}

Deno.test("NodeTlsConn: an idle connection's pending read holds a small buffer, a bulk transfer reads in large ones", async () => {
  const config = nodeTlsConfig(await loadNodeTls(), certs.cert, certs.key, [
    "h2",
  ]);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = Deno.connectTls({
    hostname: "127.0.0.1",
    port: listener.addr.port,
    caCerts: [certs.ca],
  });
  const sizes: number[] = [];
  const conn = new NodeTlsConn(
    recordingReads(await listener.accept(), sizes),
    config,
  );
  const peer = await client;
  await Promise.all([conn.handshake(), peer.handshake()]);
  // Idle after the handshake: what the waiting read holds, for each of
  // thousands of such connections, is small.
  await waitFor(() => sizes.length >= 2);
  assert(sizes.at(-1)! <= 4096, `idle read of ${sizes.at(-1)} bytes`);
  // A megabyte in bulk is read in large pieces.
  const big = new Uint8Array(1 << 20).fill(7);
  const sent = (async () => {
    let at = 0;
    while (at < big.length) at += await peer.write(big.subarray(at));
  })();
  const buffer = new Uint8Array(1 << 16);
  let got = 0;
  while (got < big.length) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error(`the end after ${got} bytes`);
    got += n;
  }
  await sent;
  assertEquals(Math.max(...sizes), 64 * 1024);
  // Quiet again: the next waiting read is small again.
  const before = sizes.length;
  await peer.write(new Uint8Array(10));
  assertEquals(await conn.read(buffer), 10);
  await waitFor(() => sizes.length > before);
  assert(sizes.at(-1)! <= 4096, `idle read of ${sizes.at(-1)} bytes`);
  conn.close();
  peer.close();
  listener.close();
});
