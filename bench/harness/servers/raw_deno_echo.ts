/**
 * A raw Deno TCP echo server: the baseline tulip is measured against.
 *
 * `Deno.listen` plus one async read/write loop per connection, each with
 * its own reused 64 KiB buffer. No event loop of ours, no protocol
 * objects: just what the runtime gives.
 *
 * ```sh
 * deno run -A bench/harness/servers/raw_deno_echo.ts 8000
 * ```
 *
 * Prints `listening <port>` when ready, then serves forever.
 *
 * @module
 */

const port = Number(Deno.args[0] ?? "8000");
const listener = Deno.listen({ hostname: "127.0.0.1", port });
console.log(`listening ${listener.addr.port}`);

async function serve(conn: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    conn.setNoDelay(true);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await conn.write(buf.subarray(off, n));
    }
  } catch {
    // A reset by the peer ends the connection like EOF does.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

for await (const conn of listener) serve(conn);
