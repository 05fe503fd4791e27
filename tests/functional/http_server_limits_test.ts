// The HTTP server against hostile and slow clients over real TCP on
// 127.0.0.1: clients that pipeline and never read, read late, trickle
// their bodies, or never read an answer; and graceful shutdown. The
// clients are raw Deno connections, so that they can misbehave.

import {
  assert,
  assertEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import type { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import type { Server } from "../../loop/event_loop.ts";
import {
  type HttpHandler,
  HttpServerProtocol,
  type HttpServerProtocolOptions,
} from "../../http/http_server_protocol.ts";
import { Protocol } from "../../protocols/protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Transport } from "../../transports/transport.ts";
import { bytes, concat, portOf, text, withLoop } from "./_stream_helpers.ts";

const HOST = "127.0.0.1";
const GET = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
const GET_CLOSE = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

/** An HttpServerProtocol that keeps its transport, for the tests to see. */
class Watched extends HttpServerProtocol {
  transport: Transport | null = null;
  /** The bytes the connection delivered. */
  received = 0;
  override connectionMade(transport: Transport): void {
    this.transport = transport;
    super.connectionMade(transport);
  }
  override dataReceived(data: Uint8Array): void {
    this.received += data.length;
    super.dataReceived(data);
  }
}

async function serve(
  loop: DenoEventLoop,
  handler: HttpHandler,
  options?: HttpServerProtocolOptions,
): Promise<{ server: Server; port: number; connections: Watched[] }> {
  const connections: Watched[] = [];
  const server = await loop.createServer(
    () => {
      const p = new Watched(handler, { loop, ...options });
      connections.push(p);
      return p;
    },
    HOST,
    0,
  );
  return { server, port: portOf(server), connections };
}

/** Writes all of `data`, however long the peer takes to read it. */
async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let at = 0;
  while (at < data.length) at += await conn.write(data.subarray(at));
}

/** Reads until EOF (or a reset, which ends the read too). */
async function readAll(
  conn: Deno.Conn,
): Promise<{ data: Uint8Array; reset: boolean }> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(64 * 1024);
  let reset = false;
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
    reset = true;
  }
  return { data: concat(chunks), reset };
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

Deno.test("HttpServerProtocol holds about one high-water mark for a client that pipelines and never reads", async () => {
  await withLoop(async (loop) => {
    let calls = 0;
    const answer = new Uint8Array(16 * 1024).fill(97);
    const { server, port, connections } = await serve(loop, () => {
      calls++;
      return new Response(answer);
    });
    const conn = await Deno.connect({ hostname: HOST, port });
    // About 1 MiB of requests, never read.
    const flood = bytes(GET.repeat(40_000));
    const writing = writeAll(conn, flood).catch(() => {});
    let before = -1;
    while (calls !== before) {
      before = calls;
      await sleep(0.3, undefined, { loop });
    }
    const buffered = connections[0].transport!.getWriteBufferSize();
    // 64 KiB high-water mark plus the answer that crossed it.
    assert(buffered <= 96 * 1024, `${buffered} bytes buffered`);
    assert(calls < 40_000, `${calls} requests answered`);
    conn.close();
    await writing;
    server.close();
    await server.waitClosed();
  });
});

Deno.test("HttpServerProtocol answers all of 20,000 pipelined requests to a client that reads after the keep-alive timeout", async () => {
  await withLoop(async (loop) => {
    // Answers of a kilobyte: 20 MB in all, more than the sockets hold.
    const pad = "x".repeat(1000);
    let n = 0;
    const { server, port } = await serve(
      loop,
      () => new Response(`${pad}#${n++};`),
      { keepAliveTimeout: 0.5 },
    );
    const conn = await Deno.connect({ hostname: HOST, port });
    const total = 20_000;
    const writing = writeAll(conn, bytes(GET.repeat(total - 1) + GET_CLOSE));
    await sleep(1.5, undefined, { loop });
    const { data, reset } = await readAll(conn);
    await writing;
    conn.close();
    const output = text(data);
    assertEquals(reset, false);
    assertEquals(count(output, "HTTP/1.1 200 OK\r\n"), total);
    assert(output.endsWith(`#${total - 1};`), output.slice(-40));
    server.close();
    await server.waitClosed();
  });
});

Deno.test("HttpServerProtocol does not cut an answer when it closes with requests unread", async () => {
  await withLoop(async (loop) => {
    // More than the sockets hold, so that some of it is still in the
    // server's socket when the server closes.
    const big = new Uint8Array(32 * 1024 * 1024).fill(98);
    const { server, port } = await serve(loop, () => new Response(big));
    const conn = await Deno.connect({ hostname: HOST, port });
    // The first request closes the connection; those after it are never
    // read by the server.
    await writeAll(conn, bytes(GET_CLOSE + GET.repeat(2000)));
    await sleep(0.5, undefined, { loop });
    const { data, reset } = await readAll(conn);
    conn.close();
    assertEquals(reset, false);
    const head = text(data.subarray(0, 200));
    assertStringIncludes(head, "content-length: 33554432\r\n");
    const bodyAt = head.indexOf("\r\n\r\n") + 4;
    assertEquals(data.length - bodyAt, big.length);
    server.close();
    await server.waitClosed();
  });
});

/** A stream of `piece`, given a little later: never ready at once. */
function later(piece: string): ReadableStream<Uint8Array> {
  return ReadableStream.from((async function* () {
    await new Promise((resolve) => setTimeout(resolve, 10));
    yield bytes(piece);
  })());
}

/**
 * Sends `head` and `body` (in 16 KiB writes, not awaited: the server may
 * stop reading) then `after`, to a server whose handler answers without
 * reading the body; returns what the client read until the server ended
 * the connection (bounded by the keep-alive timeout).
 */
async function answerUnread(
  head: string,
  body: Uint8Array,
  after: string,
  streamed = false,
): Promise<{ output: string; reset: boolean }> {
  let result!: { output: string; reset: boolean };
  await withLoop(async (loop) => {
    const { server, port } = await serve(
      loop,
      () =>
        streamed
          ? new Response(later("no"), { status: 413 })
          : new Response("no", { status: 413 }),
      { keepAliveTimeout: 1 },
    );
    const conn = await Deno.connect({ hostname: HOST, port });
    const writing = (async () => {
      await writeAll(conn, bytes(head));
      for (let at = 0; at < body.length; at += 16 * 1024) {
        await writeAll(conn, body.subarray(at, at + 16 * 1024));
      }
      await writeAll(conn, bytes(after));
    })().catch(() => {});
    const { data, reset } = await readAll(conn);
    conn.close();
    await writing;
    result = { output: text(data), reset };
    server.close();
    await server.waitClosed();
  });
  return result;
}

Deno.test("HttpServerProtocol closes, saying so, rather than read a large unread Content-Length body", async () => {
  const size = 4 * 1024 * 1024;
  const { output, reset } = await answerUnread(
    `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`,
    new Uint8Array(size),
    GET,
  );
  assertEquals(reset, false);
  // One answer, whole, that says the connection closes; the request after
  // the body is never read.
  assertEquals(count(output, "HTTP/1.1 "), 1, output);
  assertStringIncludes(output, "connection: close\r\n");
  assert(output.startsWith("HTTP/1.1 413 "), output);
});

Deno.test("HttpServerProtocol closes after the answer when a large unread body follows a streamed response", async () => {
  const size = 4 * 1024 * 1024;
  const { output, reset } = await answerUnread(
    `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`,
    new Uint8Array(size),
    GET,
    true,
  );
  assertEquals(reset, false);
  assertEquals(count(output, "HTTP/1.1 "), 1, output);
  assert(output.endsWith("2\r\nno\r\n0\r\n\r\n"), output);
});

Deno.test("HttpServerProtocol drops an unread chunked body up to 256 KiB, and closes after the answer past that", async () => {
  // 16 KiB chunks; a body of 1 MiB is not finished within the bound.
  const chunk = "4000\r\n" + "x".repeat(16 * 1024) + "\r\n";
  const head =
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const big = await answerUnread(
    head,
    bytes(chunk.repeat(64) + "0\r\n\r\n"),
    GET,
  );
  assertEquals(big.reset, false);
  assertEquals(count(big.output, "HTTP/1.1 "), 1, big.output);
  assert(big.output.endsWith("no"), big.output);
  // Within it: dropped, and the connection serves the next request.
  const small = await answerUnread(
    head,
    bytes(chunk.repeat(12) + "0\r\n\r\n"),
    GET_CLOSE,
  );
  assertEquals(count(small.output, "HTTP/1.1 413 "), 2, small.output);
});

Deno.test("HttpServerProtocol stops reading a body its handler cancelled until the answer, then closes rather than read the rest", async () => {
  await withLoop(async (loop) => {
    let atAnswer = -1;
    const { server, port, connections } = await serve(
      loop,
      async (request) => {
        await request.body!.cancel();
        await sleep(0.3, undefined, { loop });
        atAnswer = connections[0].received;
        return new Response("no", { status: 413 });
      },
    );
    const conn = await Deno.connect({ hostname: HOST, port });
    const size = 8 * 1024 * 1024;
    const writing = writeAll(
      conn,
      concat([
        bytes(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`),
        new Uint8Array(size),
        bytes(GET),
      ]),
    ).catch(() => {});
    const { data, reset } = await readAll(conn);
    conn.close();
    await writing;
    const output = text(data);
    assertEquals(reset, false);
    assertEquals(count(output, "HTTP/1.1 "), 1, output);
    assertStringIncludes(output, "connection: close\r\n");
    assert(atAnswer < 1024 * 1024, `${atAnswer} bytes read before the answer`);
    server.close();
    await server.waitClosed();
  });
});

Deno.test("HttpServerProtocol drops an unread Content-Length body within 256 KiB and keeps the connection", async () => {
  const size = 200 * 1024;
  const { output } = await answerUnread(
    `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`,
    new Uint8Array(size),
    GET_CLOSE,
  );
  assertEquals(count(output, "HTTP/1.1 413 "), 2, output);
  assertEquals(count(output, "connection: close\r\n"), 1, output);
});

Deno.test("HttpServerProtocol aborts a client that does not read its answer for writeTimeout", async () => {
  await withLoop(async (loop) => {
    const big = new Uint8Array(16 * 1024 * 1024);
    const { server, port } = await serve(loop, () => new Response(big), {
      writeTimeout: 0.5,
    });
    const conn = await Deno.connect({ hostname: HOST, port });
    await writeAll(conn, bytes(GET));
    await sleep(0.2, undefined, { loop });
    // The server lets go of the connection by itself.
    server.close();
    await server.waitClosed();
    conn.close();
  });
});

/**
 * Writes `piece` every 0.2 s (100 times at most) until the server ends the
 * connection; what the server sent meanwhile.
 */
async function trickleUntilClosed(
  loop: DenoEventLoop,
  conn: Deno.Conn,
  piece: string,
): Promise<Uint8Array> {
  const reading = readAll(conn);
  let open = true;
  reading.finally(() => open = false);
  for (let i = 0; i < 100 && open; i++) {
    await sleep(0.2, undefined, { loop });
    try {
      await conn.write(bytes(piece));
    } catch {
      break;
    }
  }
  return (await reading).data;
}

Deno.test("HttpServerProtocol answers 408 to a body trickled past requestTimeout", async () => {
  await withLoop(async (loop) => {
    const { server, port } = await serve(
      loop,
      async (request) => new Response(await request.text()),
      { requestTimeout: 1 },
    );
    const conn = await Deno.connect({ hostname: HOST, port });
    await writeAll(
      conn,
      bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"),
    );
    const data = await trickleUntilClosed(loop, conn, "x");
    conn.close();
    assert(
      text(data).startsWith("HTTP/1.1 408 Request Timeout\r\n"),
      text(data),
    );
    server.close();
    await server.waitClosed();
  });
});

Deno.test("HttpServerProtocol answers 408 to a head trickled past headersTimeout", async () => {
  await withLoop(async (loop) => {
    let called = false;
    const { server, port } = await serve(loop, () => {
      called = true;
      return new Response("no");
    }, { headersTimeout: 1, keepAliveTimeout: 0.5 });
    const conn = await Deno.connect({ hostname: HOST, port });
    await writeAll(conn, bytes("GET / HTTP/1.1\r\nHost: a\r\n"));
    const data = await trickleUntilClosed(loop, conn, "x-a: b\r\n");
    conn.close();
    assert(
      text(data).startsWith("HTTP/1.1 408 Request Timeout\r\n"),
      text(data),
    );
    assertEquals(called, false);
    server.close();
    await server.waitClosed();
  });
});

// ---- Graceful shutdown ----

/** Sends one kept-alive request and reads its whole answer. */
async function oneRequest(conn: Deno.Conn): Promise<string> {
  await writeAll(conn, bytes(GET));
  const buf = new Uint8Array(4096);
  let got = "";
  while (!/\r\n\r\n[^]*ok$/.test(got)) {
    const n = await conn.read(buf);
    if (n === null) break;
    got += text(buf.subarray(0, n));
  }
  return got;
}

Deno.test("Server.shutdown() closes idle keep-alive HTTP connections at once", async () => {
  await withLoop(async (loop) => {
    const { server, port } = await serve(loop, () => new Response("ok"), {
      keepAliveTimeout: 60,
    });
    const conns: Deno.Conn[] = [];
    for (let i = 0; i < 5; i++) {
      const conn = await Deno.connect({ hostname: HOST, port });
      conns.push(conn);
      const answer = await oneRequest(conn);
      assert(!answer.includes("connection: close"), answer);
    }
    const started = loop.time();
    const done = server.shutdown();
    // Each client sees the end of the connection and closes its side.
    await Promise.all(conns.map(async (conn) => {
      const { data } = await readAll(conn);
      assertEquals(data.length, 0);
      conn.close();
    }));
    await done;
    assert(loop.time() - started < 30, "well before the keep-alive timeout");
    assertEquals(server.isServing(), false);
  });
});

Deno.test("Server.shutdown() lets a request in progress finish, with Connection: close", async () => {
  await withLoop(async (loop) => {
    const release = loop.createFuture<void>();
    const entered = loop.createFuture<void>();
    const { server, port } = await serve(loop, async () => {
      entered.setResult();
      await release;
      return new Response("ok");
    });
    const conn = await Deno.connect({ hostname: HOST, port });
    await writeAll(conn, bytes(GET));
    await entered;
    const done = server.shutdown();
    await sleep(0.1, undefined, { loop });
    assertEquals(done.done(), false);
    release.setResult();
    const { data, reset } = await readAll(conn);
    conn.close();
    assertEquals(reset, false);
    const answer = text(data);
    assert(answer.startsWith("HTTP/1.1 200 OK\r\n"), answer);
    assertStringIncludes(answer, "connection: close\r\n");
    assert(answer.endsWith("\r\n\r\nok"), answer);
    await done;
  });
});

Deno.test("Server.shutdown() aborts a client that does not read after the grace period", async () => {
  await withLoop(async (loop) => {
    const big = new Uint8Array(16 * 1024 * 1024);
    const { server, port } = await serve(loop, () => new Response(big));
    const conn = await Deno.connect({ hostname: HOST, port });
    await writeAll(conn, bytes(GET));
    await sleep(0.2, undefined, { loop });
    const started = loop.time();
    await server.shutdown({ grace: 0.5 });
    assert(loop.time() - started >= 0.5, "not before the grace period");
    conn.close();
  });
});

Deno.test("Server.shutdown() closes the connections of a protocol without serverClosing(), and checks its grace", async () => {
  await withLoop(async (loop) => {
    const server = await loop.createServer(() => new Protocol(), HOST, 0);
    const conn = await Deno.connect({ hostname: HOST, port: portOf(server) });
    await sleep(0.05, undefined, { loop });
    assertThrows(() => server.shutdown({ grace: -1 }), RangeError, "grace");
    const done = server.shutdown();
    const { data } = await readAll(conn);
    assertEquals(data.length, 0);
    conn.close();
    await done;
  });
});
