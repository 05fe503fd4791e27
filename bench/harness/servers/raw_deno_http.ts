/**
 * A minimal hand-written HTTP/1.1 server on `Deno.listen`.
 *
 * Each connection reads into a reused 64 KiB buffer, counts the requests
 * it holds (a request ends at `\r\n\r\n`; bodies are not supported, which
 * is fine for `wrk`'s GETs) and answers each with the same fixed
 * keep-alive response whose body is `Hello, World!`. Pipelined requests
 * get their responses in one write.
 *
 * ```sh
 * deno run -A bench/harness/servers/raw_deno_http.ts 8000
 * ```
 *
 * Prints `listening <port>` when ready, then serves forever.
 *
 * @module
 */

const port = Number(Deno.args[0] ?? "8000");
const RESPONSE = new TextEncoder().encode(
  "HTTP/1.1 200 OK\r\n" +
    "Content-Type: text/plain\r\n" +
    "Content-Length: 13\r\n" +
    "\r\n" +
    "Hello, World!",
);
const CR = 13;
const LF = 10;

/** `count` copies of the fixed response, in one buffer. */
function responses(count: number): Uint8Array {
  if (count === 1) return RESPONSE;
  const out = new Uint8Array(RESPONSE.length * count);
  for (let i = 0; i < count; i++) out.set(RESPONSE, i * RESPONSE.length);
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

async function serve(conn: Deno.TcpConn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  let end = 0; // bytes held in buf
  let scan = 0; // where to resume looking for the end of a request
  try {
    conn.setNoDelay(true);
    for (;;) {
      if (end === buf.length) break; // a request head over 64 KiB: give up
      const n = await conn.read(buf.subarray(end));
      if (n === null) break;
      end += n;
      let start = 0;
      let count = 0;
      let i = Math.max(scan, 3);
      while (i < end) {
        if (
          buf[i] === LF && buf[i - 1] === CR && buf[i - 2] === LF &&
          buf[i - 3] === CR
        ) {
          count++;
          start = i + 1;
          i = start + 3; // the next request's terminator lies wholly after
        } else {
          i++;
        }
      }
      if (start < end) buf.copyWithin(0, start, end);
      end -= start;
      scan = end;
      if (count > 0) await writeAll(conn, responses(count));
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

const listener = Deno.listen({ hostname: "127.0.0.1", port });
console.log(`listening ${listener.addr.port}`);
for await (const conn of listener) serve(conn);
