// HTTP over real TCP on 127.0.0.1: tulip's HTTP client against its HTTP
// server, curl against the server, the client against Python's
// http.server, and PEP 3153's stack (JSON-RPC over HttpTransport over the
// HTTP client) over a socket. Every child process is bounded in time and
// stopped by pid.

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import type { Server } from "../../loop/event_loop.ts";
import { TimeoutError } from "../../futures/errors.ts";
import { HttpParseError } from "../../http/_http_parser.ts";
import { HttpClientProtocol } from "../../http/http_client_protocol.ts";
import {
  type HttpHandler,
  HttpServerProtocol,
} from "../../http/http_server_protocol.ts";
import { JsonRpcError } from "../../jsonrpc/json_rpc_error.ts";
import { jsonRpcHttpHandler } from "../../jsonrpc/json_rpc_http_handler.ts";
import { sleep } from "../../tasks/sleep.ts";
import { bytes, portOf, run, withLoop } from "./_stream_helpers.ts";
import { command, HAS_CURL, HAS_PYTHON, needing } from "./_tools.ts";
import { rpcOverHttp } from "../http/_http_helpers.ts";

const HOST = "127.0.0.1";

/** A handler with a few routes, used by every server here. */
const handler: HttpHandler = async (request, info) => {
  const url = new URL(request.url);
  switch (url.pathname) {
    case "/hello":
      return new Response("Hello, World!");
    case "/echo":
      return new Response(await request.text(), {
        headers: { "x-method": request.method },
      });
    case "/count": {
      let n = 0;
      for await (const piece of request.body ?? []) n += piece.length;
      return Response.json({ bytes: n });
    }
    case "/stream":
      return new Response(
        new ReadableStream({
          async start(c) {
            for (let i = 0; i < 3; i++) {
              c.enqueue(bytes(`part ${i}\n`));
              await Promise.resolve();
            }
            c.close();
          },
        }),
      );
    case "/peer":
      return new Response((info.remoteAddr as Deno.NetAddr).hostname);
    default:
      return new Response("Not Found", { status: 404 });
  }
};

/** Serves `handler` on 127.0.0.1, port 0, counting connections. */
async function serve(
  loop: DenoEventLoop,
  h: HttpHandler = handler,
): Promise<
  { server: Server; port: number; connections: HttpServerProtocol[] }
> {
  const connections: HttpServerProtocol[] = [];
  const server = await loop.createServer(
    () => {
      const p = new HttpServerProtocol(h, { loop });
      connections.push(p);
      return p;
    },
    HOST,
    0,
  );
  return { server, port: portOf(server), connections };
}

// ---- tulip client ↔ tulip server ----

Deno.test("HttpClientProtocol and HttpServerProtocol talk over TCP, kept alive and pipelined", async () => {
  const loop = new DenoEventLoop();
  await run(loop, async () => {
    const { server, port, connections } = await serve(loop);
    const [, client] = await loop.createConnection(
      () => new HttpClientProtocol({ loop }),
      HOST,
      port,
    );
    const base = `http://${HOST}:${port}`;
    const hello = await client.request(new Request(`${base}/hello`));
    assertEquals(hello.status, 200);
    assertEquals(await hello.text(), "Hello, World!");
    assertEquals(hello.headers.get("content-length"), "13");
    assert(hello.headers.has("date"));

    // Pipelined: all sent at once, answered in order.
    const big = new Uint8Array(300_000).fill(7);
    const futures = [
      client.request(
        new Request(`${base}/echo`, { method: "POST", body: "posted" }),
      ),
      client.request(
        new Request(`${base}/count`, { method: "PUT", body: big }),
      ),
      client.request(new Request(`${base}/stream`)),
      client.request(new Request(`${base}/missing`)),
      client.request(new Request(`${base}/hello`, { method: "HEAD" })),
      client.request(new Request(`${base}/peer`)),
    ];
    const [echo, count, stream, missing, head, peer] = await Promise.all(
      futures,
    );
    assertEquals(await echo.text(), "posted");
    assertEquals(echo.headers.get("x-method"), "POST");
    assertEquals(await count.json(), { bytes: 300_000 });
    assertEquals(stream.headers.get("transfer-encoding"), "chunked");
    assertEquals(await stream.text(), "part 0\npart 1\npart 2\n");
    assertEquals(missing.status, 404);
    await missing.body?.cancel();
    assertEquals(head.body, null);
    assertEquals(head.headers.get("content-length"), "13");
    assertEquals(await peer.text(), HOST);

    // A streamed request body goes chunked.
    const upload = new ReadableStream<Uint8Array>({
      async start(c) {
        for (let i = 0; i < 10; i++) {
          c.enqueue(new Uint8Array(50_000));
          await sleep(0, undefined, { loop });
        }
        c.close();
      },
    });
    const counted = await client.request(
      new Request(`${base}/count`, {
        method: "POST",
        body: upload,
        duplex: "half",
      } as RequestInit),
    );
    assertEquals(await counted.json(), { bytes: 500_000 });

    assertEquals(connections.length, 1);
    assertEquals(connections[0].requestCount, 8);
    client.close();
    await client.waitClosed();
    server.close();
    await server.waitClosed();
  });
  loop.close();
});

// ---- tulip client against a hostile server ----

/**
 * Accepts one connection on 127.0.0.1 and runs `talk` on it; returns the
 * port and a promise of the bytes `talk` wrote.
 */
function hostileServer(
  talk: (conn: Deno.Conn) => Promise<number>,
): { port: number; done: Promise<number> } {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    listener.close();
    try {
      return await talk(conn);
    } finally {
      conn.close();
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, done };
}

Deno.test("HttpClientProtocol gives up on a server that sends an endless header", async () => {
  const loop = new DenoEventLoop();
  // The server writes the start of a head and then one header value
  // without end, up to 8 MiB, until the client goes away.
  const { port, done } = hostileServer(async (conn) => {
    const piece = bytes("a".repeat(16384));
    let sent = await conn.write(bytes("HTTP/1.1 200 OK\r\nX-Endless: "));
    try {
      while (sent < 8 * 1024 * 1024) sent += await conn.write(piece);
    } catch {
      // The client reset the connection.
    }
    return sent;
  });
  await run(loop, async () => {
    const [, client] = await loop.createConnection(
      () => new HttpClientProtocol({ loop }),
      HOST,
      port,
    );
    const error = await assertRejects(
      () => client.request(new Request(`http://${HOST}/`)),
      HttpParseError,
    );
    assertEquals(error.status, 431);
    assertStringIncludes(error.message, "maxHeaderBytes (16384)");
    await client.waitClosed();
  });
  const sent = await done;
  assert(sent < 8 * 1024 * 1024, `the client stopped reading (${sent} sent)`);
  loop.close();
});

Deno.test("HttpClientProtocol gives up on a server that never answers after headersTimeout", async () => {
  const loop = new DenoEventLoop();
  const { port, done } = hostileServer(async (conn) => {
    // Read the request, answer nothing, wait for the client to go.
    const buf = new Uint8Array(4096);
    let n = 0;
    while ((await conn.read(buf).catch(() => null)) !== null) n++;
    return n;
  });
  await run(loop, async () => {
    const [, client] = await loop.createConnection(
      () => new HttpClientProtocol({ loop, headersTimeout: 0.2 }),
      HOST,
      port,
    );
    const error = await assertRejects(
      () => client.request(new Request(`http://${HOST}/`)),
      TimeoutError,
    );
    assertStringIncludes(error.message, "headersTimeout");
    await client.waitClosed();
  });
  await done;
  loop.close();
});

// ---- curl against the server ----

Deno.test({
  name: needing(
    "curl gets, posts a chunked body, and reuses a kept-alive connection",
    "curl",
    HAS_CURL,
  ),
  ignore: !HAS_CURL,
  fn: async () => {
    const loop = new DenoEventLoop();
    await run(loop, async () => {
      const { server, port, connections } = await serve(loop);
      const base = `http://${HOST}:${port}`;

      const get = await command("curl", ["-sS", "-i", `${base}/hello`]);
      assertEquals(get.code, 0, get.stderr);
      assert(get.stdout.startsWith("HTTP/1.1 200 OK\r\n"), get.stdout);
      assertStringIncludes(get.stdout, "content-length: 13\r\n");
      assert(get.stdout.endsWith("\r\n\r\nHello, World!"));

      const body = "x".repeat(100_000) + "end";
      const post = await command("curl", [
        "-sS",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "@-",
        `${base}/count`,
      ], bytes(body));
      assertEquals(post.code, 0, post.stderr);
      assertEquals(JSON.parse(post.stdout), { bytes: body.length });

      const echo = await command("curl", [
        "-sS",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "@-",
        `${base}/echo`,
      ], bytes("round trip"));
      assertEquals(echo.stdout, "round trip");

      const before = connections.length;
      const twice = await command("curl", [
        "-sv",
        `${base}/hello`,
        `${base}/stream`,
      ]);
      assertEquals(twice.code, 0, twice.stderr);
      assertEquals(twice.stdout, "Hello, World!part 0\npart 1\npart 2\n");
      assertStringIncludes(twice.stderr, "Re-using existing connection");
      assertEquals(connections.length - before, 1);
      assertEquals(connections[connections.length - 1].requestCount, 2);

      const bad = await command("curl", [
        "-sS",
        "-i",
        "-H",
        "Content-Length: 5",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "x",
        `${base}/echo`,
      ]);
      assert(bad.stdout.startsWith("HTTP/1.1 400 Bad Request\r\n"), bad.stdout);

      server.close();
      await server.waitClosed();
      // Let the idle connections' closes settle.
      await sleep(0.05, undefined, { loop });
    });
    loop.close();
  },
});

// ---- tulip client against Python's http.server ----

Deno.test({
  name: needing(
    "HttpClientProtocol fetches from Python's http.server (HTTP/1.0)",
    "python3",
    HAS_PYTHON,
  ),
  ignore: !HAS_PYTHON,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${dir}/file.txt`, "served by python\n");
    const child = new Deno.Command("python3", {
      args: ["-u", "-m", "http.server", "--bind", HOST, "0"],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    const loop = new DenoEventLoop();
    try {
      // "Serving HTTP on 127.0.0.1 port N (http://127.0.0.1:N/) ..."
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let seen = "";
      let port = 0;
      while (port === 0) {
        const { done, value } = await reader.read();
        if (done) throw new Error(`python exited: ${seen}`);
        seen += value;
        const m = seen.match(/port (\d+)/);
        if (m) port = Number(m[1]);
      }
      await run(loop, async () => {
        const fetchOne = async (path: string) => {
          const [, client] = await loop.createConnection(
            () => new HttpClientProtocol({ loop }),
            HOST,
            port,
          );
          const response = await client.request(
            new Request(`http://${HOST}:${port}${path}`),
          );
          const body = await response.text();
          // HTTP/1.0: the server closes after each response.
          await client.waitClosed();
          return { status: response.status, body, response };
        };
        const file = await fetchOne("/file.txt");
        assertEquals(file.status, 200);
        assertEquals(file.body, "served by python\n");
        assertEquals(file.response.headers.get("content-length"), "17");
        const missing = await fetchOne("/nope");
        assertEquals(missing.status, 404);
        const listing = await fetchOne("/");
        assertStringIncludes(listing.body, "file.txt");
      });
      await reader.cancel();
    } finally {
      loop.close();
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
      await child.stderr.cancel();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// ---- PEP 3153's stack over TCP ----

Deno.test("JsonRpcProtocol over HttpTransport over HttpClientProtocol over TCP to an HttpServerProtocol", async () => {
  const loop = new DenoEventLoop();
  const logged: unknown[] = [];
  await run(loop, async () => {
    const rpcHandler = jsonRpcHttpHandler({
      add: ([a, b]: number[]) => a + b,
      slow: async ([x]: number[]) => {
        await sleep(0.01, undefined, { loop });
        return x;
      },
      log: (params) => {
        logged.push(params);
      },
      fail: () => {
        throw new JsonRpcError(-32000, "Refused", "why");
      },
    }, { loop });
    const { server, port, connections } = await serve(loop, rpcHandler);
    const [, http] = await loop.createConnection(
      () => new HttpClientProtocol({ loop }),
      HOST,
      port,
    );
    const { transport, rpc } = rpcOverHttp(http, loop);

    assertEquals(await rpc.call("add", [40, 2]), 42);
    rpc.notify("log", ["quiet"]);
    const [slow, note, failed] = await rpc.batch([
      { method: "slow", params: [9] },
      { method: "log", params: ["in batch"], notify: true },
      { method: "fail" },
    ]);
    assertEquals(slow, 9);
    assertEquals(note, undefined);
    assertInstanceOf(failed, JsonRpcError);
    assertEquals((failed as JsonRpcError).code, -32000);
    assertEquals(
      await Promise.all([
        rpc.call("slow", [1]),
        rpc.call("add", [2, 3]),
        rpc.call("slow", [3]),
      ]),
      [1, 5, 3],
    );
    assertEquals(logged, [["quiet"], ["in batch"]]);
    assertEquals(connections.length, 1);
    assertEquals(connections[0].requestCount, 6);

    transport.close();
    http.close();
    await http.waitClosed();
    server.close();
    await server.waitClosed();
    while (rpc.transport !== null) await sleep(0.001, undefined, { loop });
  });
  loop.close();
});

Deno.test("HttpServerProtocol puts the same bytes on the wire with Deno's internals on or off: bodies in memory keep their length for HTTP/1.0 keep-alive and HEAD", async () => {
  const output = await withLoop(async (loop) => {
    const server = await loop.createServer(
      () =>
        new HttpServerProtocol((request) => {
          const path = new URL(request.url).pathname;
          if (path === "/json") return Response.json({ a: 1 });
          if (path === "/bytes") return new Response(new Uint8Array([65, 66]));
          if (path === "/none") return new Response(null, { status: 404 });
          return new Response("Hello, World!");
        }, { loop }),
      HOST,
      0,
    );
    const conn = await Deno.connect({ hostname: HOST, port: portOf(server) });
    const ka = "Connection: keep-alive\r\n\r\n";
    await conn.write(bytes(
      `GET /hello HTTP/1.0\r\n${ka}HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\n` +
        `HEAD /json HTTP/1.0\r\n${ka}GET /bytes HTTP/1.0\r\n${ka}` +
        `GET /none HTTP/1.1\r\nHost: a\r\n\r\n` +
        "GET /json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ));
    let text = "";
    const decoder = new TextDecoder();
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
    }
    conn.close();
    server.close();
    await server.waitClosed();
    return text;
  });
  const text = "content-type: text/plain;charset=UTF-8\r\n";
  const json = "content-type: application/json\r\n";
  const keep = "date: X\r\nconnection: keep-alive\r\n\r\n";
  assertEquals(
    output.replace(/date: [^\r]*\r\n/g, "date: X\r\n"),
    `HTTP/1.1 200 OK\r\n${text}content-length: 13\r\n${keep}Hello, World!` +
      `HTTP/1.1 200 OK\r\n${text}content-length: 13\r\ndate: X\r\n\r\n` +
      `HTTP/1.1 200 OK\r\n${json}content-length: 7\r\n${keep}` +
      `HTTP/1.1 200 OK\r\ncontent-length: 2\r\n${keep}AB` +
      "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\ndate: X\r\n\r\n" +
      `HTTP/1.1 200 OK\r\n${json}content-length: 7\r\ndate: X\r\n` +
      'connection: close\r\n\r\n{"a":1}',
  );
});
