// HTTP/1.1 interoperability over real TCP on 127.0.0.1, with peers that
// are not tulip: tulip's HttpClientProtocol against Deno.serve and
// Python's http.server (HTTP/1.1), and tulip's HttpServerProtocol against
// Deno's fetch(), curl and Python's http.client. Bodies of a few MiB go
// both ways so that back-pressure is exercised on each side. Every child
// process is bounded in time and stopped by pid; tests needing python3 or
// curl are skipped, with the reason in their name, where it is missing.

import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { HttpClientProtocol } from "../../http/http_client_protocol.ts";
import {
  type HttpHandler,
  HttpServerProtocol,
} from "../../http/http_server_protocol.ts";
import { JsonRpcError } from "../../jsonrpc/json_rpc_error.ts";
import { jsonRpcHttpHandler } from "../../jsonrpc/json_rpc_http_handler.ts";
import { sleep } from "../../tasks/sleep.ts";
import { portOf, run } from "./_stream_helpers.ts";
import { command, HAS_CURL, HAS_PYTHON, needing } from "./_tools.ts";
import { rpcOverHttp } from "../http/_http_helpers.ts";

const HOST = "127.0.0.1";
const MIB = 1024 * 1024;
/** A gzip body, which the HTTP layer must pass on untouched. */
const GZIP = new Uint8Array(
  await new Response(
    new Blob(["zipped"]).stream().pipeThrough(new CompressionStream("gzip")),
  ).arrayBuffer(),
);

/** A stream of `size` bytes of `fill`, made in 64 KiB pieces as read. */
function zeros(size: number, fill = 0): ReadableStream<Uint8Array> {
  let left = size;
  return new ReadableStream({
    pull(c) {
      if (left <= 0) return c.close();
      const n = Math.min(65536, left);
      left -= n;
      c.enqueue(new Uint8Array(n).fill(fill));
    },
  });
}

/** Counts a body's bytes, checking each is `fill`; pauses now and then. */
async function drain(
  body: ReadableStream<Uint8Array> | null,
  fill = 0,
  pause?: () => PromiseLike<unknown>,
): Promise<number> {
  let n = 0;
  let next = MIB;
  for await (const piece of body ?? []) {
    if (piece.some((b) => b !== fill)) throw new Error(`bad byte near ${n}`);
    n += piece.length;
    if (pause !== undefined && n >= next) {
      next += MIB;
      await pause();
    }
  }
  return n;
}

/**
 * One handler, served by Deno.serve and by HttpServerProtocol alike, so
 * that each client meets the same answers from both.
 */
const handler: HttpHandler = async (request) => {
  const url = new URL(request.url);
  const size = Number(url.searchParams.get("size") ?? 0);
  switch (url.pathname) {
    case "/download":
      return new Response(zeros(size, 1));
    case "/fixed":
      return new Response(new Uint8Array(size).fill(2));
    case "/file":
      // A stream of known size, as a file is served.
      return new Response(zeros(size, 5), {
        headers: { "content-length": String(size) },
      });
    case "/count": {
      const n = await drain(request.body);
      return Response.json({
        n,
        te: request.headers.get("transfer-encoding"),
        cl: request.headers.get("content-length"),
      });
    }
    case "/echo":
      return new Response(request.body);
    case "/headers": {
      const headers = new Headers();
      headers.append("set-cookie", "a=1");
      headers.append("set-cookie", "b=2; Path=/");
      headers.set("x-latin", "caf\u00e9");
      headers.set("x-seen", request.headers.get("x-latin") ?? "none");
      headers.set("x-cookie", request.headers.get("cookie") ?? "none");
      return new Response("h", { headers });
    }
    case "/gzip":
      return new Response(GZIP, {
        headers: { "content-encoding": "gzip", "content-type": "text/plain" },
      });
    case "/reject":
      // Answers without reading the body.
      return new Response("no", { status: 413 });
    case "/close":
      return new Response("bye", { headers: { connection: "close" } });
    case "/empty":
      return new Response(null, { status: 204 });
    default:
      return new Response(`hi ${url.pathname}`);
  }
};

/** Runs `fn` with a Deno.serve server of `handler`, then stops it. */
async function withDenoServe<T>(fn: (port: number) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const server = Deno.serve({
    hostname: HOST,
    port: 0,
    signal: controller.signal,
    onListen() {},
  }, handler as Deno.ServeHandler);
  try {
    return await fn(server.addr.port);
  } finally {
    controller.abort();
    await server.finished;
  }
}

/**
 * Runs `fn` with an HttpServerProtocol server of `handler` on a fresh
 * loop, counting connections, then shuts it down.
 */
async function withTulipServe(
  fn: (
    port: number,
    connections: HttpServerProtocol[],
    loop: DenoEventLoop,
  ) => Promise<void>,
  options: { keepAliveTimeout?: number } = {},
): Promise<void> {
  const loop = new DenoEventLoop();
  try {
    await run(loop, async () => {
      const connections: HttpServerProtocol[] = [];
      const server = await loop.createServer(
        () => {
          const p = new HttpServerProtocol(handler, { loop, ...options });
          connections.push(p);
          return p;
        },
        HOST,
        0,
      );
      try {
        await fn(portOf(server), connections, loop);
      } finally {
        await server.shutdown();
      }
    });
  } finally {
    loop.close();
  }
}

/** Connects a new HttpClientProtocol to 127.0.0.1:`port`. */
async function connect(
  loop: DenoEventLoop,
  port: number,
): Promise<HttpClientProtocol> {
  const [, client] = await loop.createConnection(
    () => new HttpClientProtocol({ loop, headersTimeout: 10, bodyTimeout: 10 }),
    HOST,
    port,
  );
  return client;
}

// ---- tulip client → Deno.serve ----

Deno.test("HttpClientProtocol against Deno.serve: MiB bodies both ways, pipelining, header fields kept as sent", async () => {
  await withDenoServe(async (port) => {
    const loop = new DenoEventLoop();
    await run(loop, async () => {
      const base = `http://${HOST}:${port}`;
      const client = await connect(loop, port);
      const get = (path: string, init?: RequestInit) =>
        client.request(new Request(base + path, init));

      // A streamed download read slowly: the client pauses reading and
      // Deno.serve waits for it.
      const down = await get(`/download?size=${6 * MIB}`);
      assertEquals(down.headers.get("transfer-encoding"), "chunked");
      const slowly = () => sleep(0.02, undefined, { loop });
      assertEquals(await drain(down.body, 1, slowly), 6 * MIB);
      const fixed = await get(`/fixed?size=${5 * MIB}`);
      assertEquals(fixed.headers.get("content-length"), String(5 * MIB));
      assertEquals(await drain(fixed.body, 2), 5 * MIB);
      const file = await get(`/file?size=${3 * MIB}`);
      assertEquals(file.headers.get("content-length"), String(3 * MIB));
      assertEquals(await drain(file.body, 5), 3 * MIB);

      // Uploads: bytes in memory with a length, a stream chunked.
      const sized = await get("/count", {
        method: "PUT",
        body: new Uint8Array(5 * MIB),
      });
      assertEquals(await sized.json(), {
        n: 5 * MIB,
        te: null,
        cl: String(5 * MIB),
      });
      const streamed = await get("/count", {
        method: "POST",
        body: zeros(6 * MIB),
        duplex: "half",
      } as RequestInit);
      assertEquals(await streamed.json(), {
        n: 6 * MIB,
        te: "chunked",
        cl: null,
      });
      // Expect: 100-continue is the caller's to add; Deno.serve's 100
      // comes before the answer and is skipped.
      const expecting = await get("/count", {
        method: "POST",
        body: new Uint8Array(2 * MIB),
        headers: { expect: "100-continue" },
      });
      assertEquals((await expecting.json()).n, 2 * MIB);

      // Many requests pipelined at once, answered in order.
      const pipelined = await Promise.all(
        Array.from({ length: 50 }, (_, i) => get(`/p${i}`)),
      );
      for (const [i, r] of pipelined.entries()) {
        assertEquals(await r.text(), `hi /p${i}`);
      }

      // Header fields as the server sent them: both Set-Cookie lines,
      // latin-1 both ways, a gzip body untouched, no body for a 204.
      const headers = await get("/headers", {
        headers: { "x-latin": "na\u00efve" },
      });
      await headers.body?.cancel();
      assertEquals(headers.headers.getSetCookie(), ["a=1", "b=2; Path=/"]);
      assertEquals(headers.headers.get("x-latin"), "caf\u00e9");
      assertEquals(headers.headers.get("x-seen"), "na\u00efve");
      const gzip = await get("/gzip");
      assertEquals(gzip.headers.get("content-encoding"), "gzip");
      assertEquals(new Uint8Array(await gzip.arrayBuffer()), GZIP);
      const empty = await get("/empty");
      assertEquals([empty.status, empty.body], [204, null]);
      const head = await get(`/fixed?size=${MIB}`, { method: "HEAD" });
      assertEquals(head.headers.get("content-length"), String(MIB));
      assertEquals(head.body, null);

      // All of it on one connection, until the server says close.
      const close = await get("/close");
      assertEquals(close.headers.get("connection"), "close");
      assertEquals(await close.text(), "bye");
      await client.waitClosed();
      assertThrows(() => get("/after"), InvalidStateError, "Connection: close");
    });
    loop.close();
  });
});

Deno.test("HttpClientProtocol against Deno.serve: an echo that answers while the upload still streams", async () => {
  await withDenoServe(async (port) => {
    const loop = new DenoEventLoop();
    await run(loop, async () => {
      // The answer streams back while the client is still sending: each
      // side's back-pressure holds up the other, and neither stalls.
      const client = await connect(loop, port);
      const echo = await client.request(
        new Request(`http://${HOST}:${port}/echo`, {
          method: "POST",
          body: zeros(4 * MIB, 3),
          duplex: "half",
        } as RequestInit),
      );
      assertEquals(await drain(echo.body, 3), 4 * MIB);
      client.close();
      await client.waitClosed();
    });
    loop.close();
  });
});

// ---- tulip client → Python ----

/**
 * Starts `python3 -c script`, which prints the port it listens on, runs
 * `fn` with the port, then kills it by pid.
 */
async function withPython(
  script: string,
  fn: (port: number) => Promise<void>,
  args: string[] = [],
): Promise<void> {
  const child = new Deno.Command("python3", {
    args: ["-u", "-c", script, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  try {
    let seen = "";
    while (!seen.includes("\n")) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`python3 exited: ${seen}`);
      seen += value;
    }
    await fn(Number(seen.trim()));
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await reader.cancel();
    await child.stderr.cancel();
    await child.status;
  }
}

/** http.server speaking HTTP/1.1: files from argv[1], POST counts a body. */
const PY_HTTP11 = String.raw`
import http.server, os, sys
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        if self.headers.get("transfer-encoding") == "chunked":
            n = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0: break
                n += len(self.rfile.read(size)); self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""): pass
        else:
            n = len(self.rfile.read(int(self.headers["content-length"])))
        if self.path == "/trailers":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Sum")
            self.end_headers()
            for part in (b"one,", b"two"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Sum: 7\r\n\r\n")
            return
        body = str(n).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.end_headers()
        self.wfile.write(body)
os.chdir(sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
`;

Deno.test({
  name: needing(
    "HttpClientProtocol against Python's http.server on HTTP/1.1: kept alive through HEAD, 100-continue, trailers and a 404 that closes",
    "python3",
    HAS_PYTHON,
  ),
  ignore: !HAS_PYTHON,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await Deno.writeFile(`${dir}/big.bin`, new Uint8Array(4 * MIB).fill(4));
    await Deno.writeTextFile(`${dir}/a.txt`, "aaa");
    const loop = new DenoEventLoop();
    try {
      await withPython(PY_HTTP11, (port) =>
        run(loop, async () => {
          const base = `http://${HOST}:${port}`;
          const client = await connect(loop, port);
          const get = (path: string, init?: RequestInit) =>
            client.request(new Request(base + path, init));
          const big = await get("/big.bin");
          assertEquals(await drain(big.body, 4), 4 * MIB);
          const head = await get("/big.bin", { method: "HEAD" });
          assertEquals(head.headers.get("content-length"), String(4 * MIB));
          assertEquals(head.body, null);
          for (let i = 0; i < 20; i++) {
            assertEquals(await (await get("/a.txt")).text(), "aaa");
          }
          // Python answers Expect: 100-continue with a 100 first.
          const posted = await get("/count", {
            method: "POST",
            body: new Uint8Array(3 * MIB),
            headers: { expect: "100-continue" },
          });
          assertEquals(await posted.text(), String(3 * MIB));
          assertEquals(posted.headers.getSetCookie(), ["a=1", "b=2"]);
          const chunked = await get("/count", {
            method: "POST",
            body: zeros(2 * MIB),
            duplex: "half",
          } as RequestInit);
          assertEquals(await chunked.text(), String(2 * MIB));
          // The trailer section is read and dropped, as fetch() does.
          const trailers = await get("/trailers", { method: "POST", body: "" });
          assertEquals(await trailers.text(), "one,two");
          assertEquals(trailers.headers.get("x-sum"), null);
          // send_error() closes the connection on HTTP/1.1.
          const missing = await get("/nope");
          assertEquals(missing.status, 404);
          assertEquals(missing.headers.get("connection"), "close");
          await missing.text();
          await client.waitClosed();
          const error = assertThrows(() => get("/a.txt"), InvalidStateError);
          assertStringIncludes(error.message, "Connection: close");
        }), [dir]);
    } finally {
      loop.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * A raw socket server: answers the first request of a connection, then
 * reads the next request and closes without answering it ("drop"), or
 * closes as soon as the first answer is sent ("idle"); or ("toclose")
 * answers with 4 MiB delimited by the close.
 */
const PY_CLOSER = String.raw`
import socket, sys, threading
mode = sys.argv[1]
s = socket.socket()
s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
def head(c):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d: return False
        buf += d
    return True
def serve(c):
    if not head(c): pass
    elif mode == "toclose":
        c.sendall(b"HTTP/1.1 200 OK\r\n\r\n" + b"\x06" * (4 * 1024 * 1024))
        c.shutdown(socket.SHUT_WR)
        c.recv(1)
    else:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        if mode == "drop": head(c)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

Deno.test({
  name: needing(
    "HttpClientProtocol notices a kept-alive connection the server closed: no new request is taken, one sent into the close fails; a body read to the close",
    "python3",
    HAS_PYTHON,
  ),
  ignore: !HAS_PYTHON,
  fn: async () => {
    const loop = new DenoEventLoop();
    // Runs `then` once the server (in `mode`) has answered a first request.
    const afterFirst = (
      mode: string,
      then: (client: HttpClientProtocol, url: string) => Promise<void>,
    ) =>
      withPython(PY_CLOSER, (port) =>
        run(loop, async () => {
          const url = `http://${HOST}:${port}/`;
          const client = await connect(loop, port);
          const first = await client.request(new Request(url));
          assertEquals(await first.text(), "ok");
          await then(client, url);
        }), [mode]);
    try {
      await afterFirst("idle", async (client, url) => {
        await client.waitClosed();
        const error = assertThrows(
          () => client.request(new Request(url)),
          InvalidStateError,
        );
        assertStringIncludes(
          error.message,
          "Cannot send an HTTP request: the server closed the connection (an idle",
        );
      });
      // A body with neither length nor chunks, read slowly to the close.
      await withPython(PY_CLOSER, (port) =>
        run(loop, async () => {
          const client = await connect(loop, port);
          const response = await client.request(
            new Request(`http://${HOST}:${port}/`),
          );
          const slowly = () => sleep(0.02, undefined, { loop });
          assertEquals(await drain(response.body, 6, slowly), 4 * MIB);
          await client.waitClosed();
        }), ["toclose"]);
      // Read by the server, never answered: failed, not sent again.
      await afterFirst("drop", async (client, url) => {
        await assertRejects(
          () => client.request(new Request(url, { method: "POST" })),
          Deno.errors.ConnectionReset,
          "the server closed the connection before it arrived",
        );
      });
    } finally {
      loop.close();
    }
  },
});

// ---- fetch() → tulip server ----

Deno.test("HttpServerProtocol against fetch(): MiB bodies both ways on one kept-alive connection, header fields, Connection: close and the idle timeout", async () => {
  await withTulipServe(async (port, connections, loop) => {
    const base = `http://${HOST}:${port}`;
    const down = await fetch(`${base}/download?size=${6 * MIB}`);
    assertEquals(down.headers.get("transfer-encoding"), "chunked");
    const slowly = () => sleep(0.02, undefined, { loop });
    assertEquals(await drain(down.body, 1, slowly), 6 * MIB);
    const fixed = await fetch(`${base}/fixed?size=${5 * MIB}`);
    assertEquals(await drain(fixed.body, 2), 5 * MIB);
    // A stream with the handler's Content-Length goes by that length.
    const file = await fetch(`${base}/file?size=${3 * MIB}`);
    assertEquals(file.headers.get("content-length"), String(3 * MIB));
    assertEquals(file.headers.get("transfer-encoding"), null);
    assertEquals(await drain(file.body, 5), 3 * MIB);
    const sized = await fetch(`${base}/count`, {
      method: "PUT",
      body: new Uint8Array(5 * MIB),
    });
    assertEquals(await sized.json(), {
      n: 5 * MIB,
      te: null,
      cl: String(5 * MIB),
    });
    const streamed = await fetch(`${base}/count`, {
      method: "POST",
      body: zeros(6 * MIB),
    });
    assertEquals(await streamed.json(), {
      n: 6 * MIB,
      te: "chunked",
      cl: null,
    });
    const echo = await fetch(`${base}/echo`, {
      method: "POST",
      body: zeros(4 * MIB, 3),
    });
    assertEquals(await drain(echo.body, 3), 4 * MIB);
    for (let i = 0; i < 30; i++) {
      assertEquals(await (await fetch(`${base}/n${i}`)).text(), `hi /n${i}`);
    }
    // Kept alive: fetch() may open a second connection while a body ends.
    assert(connections.length <= 2, `${connections.length} connections`);

    const headers = await fetch(`${base}/headers`, {
      headers: { "x-latin": "na\u00efve" },
    });
    await headers.body?.cancel();
    assertEquals(headers.headers.getSetCookie(), ["a=1", "b=2; Path=/"]);
    assertEquals(headers.headers.get("x-latin"), "caf\u00e9");
    assertEquals(headers.headers.get("x-seen"), "na\u00efve");
    // fetch() decodes gzip; the server must not have touched it.
    const gzip = await fetch(`${base}/gzip`);
    assertEquals(gzip.headers.get("content-encoding"), "gzip");
    assertEquals(gzip.headers.get("content-length"), String(GZIP.length));
    assertEquals(await gzip.text(), "zipped");
    const head = await fetch(`${base}/fixed?size=${MIB}`, { method: "HEAD" });
    assertEquals(head.headers.get("content-length"), String(MIB));
    assertEquals(await head.text(), "");

    // The idle connections are closed by the server (keepAliveTimeout);
    // fetch() notices and connects again rather than failing.
    await sleep(1.6, undefined, { loop });
    const before = connections.length;
    assertEquals(await (await fetch(`${base}/later`)).text(), "hi /later");
    assertEquals(connections.length, before + 1);
    // Connection: close from the handler, then fetch() connects again.
    const close = await fetch(`${base}/close`);
    assertEquals(await close.text(), "bye");
    assertEquals(await (await fetch(`${base}/again`)).text(), "hi /again");
    assertEquals(connections.length, before + 2);
    // A second between requests: a busy machine's pauses between the ~40
    // requests above must not close the connection they keep alive.
  }, { keepAliveTimeout: 1 });
});

// ---- curl → tulip server ----

Deno.test({
  name: needing(
    "HttpServerProtocol against curl: Expect: 100-continue both ways, HTTP/1.0 with and without keep-alive, HEAD, MiB uploads",
    "curl",
    HAS_CURL,
  ),
  ignore: !HAS_CURL,
  fn: async () => {
    await withTulipServe(async (port, connections) => {
      const base = `http://${HOST}:${port}`;
      const curl = (args: string[], stdin?: Uint8Array) =>
        command("curl", ["-sS", "-m", "20", ...args], stdin, 25);
      const dir = await Deno.makeTempDir();
      try {
        // curl sends Expect: 100-continue for a body over 1 KiB and waits
        // (up to 1 s) for the 100, which comes when the handler reads.
        await Deno.writeFile(`${dir}/up.bin`, new Uint8Array(2 * MIB));
        const upload = (path: string) =>
          curl([
            "-v",
            "--expect100-timeout",
            "10",
            "--data-binary",
            `@${dir}/up.bin`,
            base + path,
          ]);
        const posted = await upload("/count");
        assertStringIncludes(posted.stderr, "> Expect: 100-continue");
        assertStringIncludes(posted.stderr, "< HTTP/1.1 100 Continue");
        assertEquals(JSON.parse(posted.stdout).n, 2 * MIB);
        // Refused without reading: no 100, and the connection closes
        // (curl may or may not have sent the body).
        const refused = await upload("/reject");
        assertStringIncludes(refused.stderr, "< HTTP/1.1 413 ");
        assert(!refused.stderr.includes("100 Continue"), refused.stderr);
        assertStringIncludes(refused.stderr, "< connection: close");
        assertEquals(refused.stdout, "no");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }

      // A streamed upload of unknown size goes chunked.
      const piped = await curl(
        ["-T", "-", `${base}/count`],
        new Uint8Array(4 * MIB),
      );
      assertEquals(JSON.parse(piped.stdout), {
        n: 4 * MIB,
        te: "chunked",
        cl: null,
      });

      // HTTP/1.0: closed after each answer unless keep-alive is asked for;
      // a streamed answer is sent unframed, up to the close.
      const plain = await curl(["-v", "--http1.0", `${base}/a`, `${base}/b`]);
      assertEquals(plain.stdout, "hi /ahi /b");
      assert(!plain.stderr.includes("Re-using"), plain.stderr);
      const before = connections.length;
      const kept = await curl([
        "-v",
        "--http1.0",
        "-H",
        "Connection: keep-alive",
        `${base}/a`,
        `${base}/b`,
      ]);
      assertEquals(kept.stdout, "hi /ahi /b");
      assertStringIncludes(kept.stderr, "Re-using existing connection");
      assertStringIncludes(kept.stderr, "< connection: keep-alive");
      assertEquals(connections.length - before, 1);
      // An answer of unknown length is sent to an HTTP/1.0 client up to
      // the close.
      const unframed = await curl([
        "-sS",
        "-i",
        "--http1.0",
        `${base}/download?size=${MIB}`,
      ]);
      assertStringIncludes(unframed.stdout, "connection: close\r\n");
      assert(!unframed.stdout.includes("transfer-encoding"), unframed.stdout);
      assertEquals(unframed.stdout.split("\r\n\r\n")[1].length, MIB);

      const head = await curl(["-I", `${base}/fixed?size=${MIB}`]);
      assertStringIncludes(head.stdout, `content-length: ${MIB}\r\n`);
      const down = await curl([
        "-o",
        "/dev/null",
        "-w",
        "%{size_download}",
        `${base}/download?size=${6 * MIB}`,
      ]);
      assertEquals(down.stdout, String(6 * MIB));
    });
  },
});

// ---- Python's http.client → tulip server ----

const PY_CLIENT = String.raw`
import http.client, json, socket, sys
port = int(sys.argv[1])
out = {}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
# obs-text: bytes over 0x7f in a field value, read as latin-1.
c.putrequest("GET", "/headers")
c.putheader("X-Latin", "na\u00efve".encode("latin-1"))
# Two Cookie fields, as an HTTP/2-to-1.1 proxy may pass on.
c.putheader("Cookie", "c=1; d=2")
c.putheader("Cookie", "e=3")
c.endheaders()
r = c.getresponse()
out["cookies"] = r.headers.get_all("set-cookie")
out["latin"] = r.getheader("x-latin")
out["seen"] = r.getheader("x-seen")
out["cookie"] = r.getheader("x-cookie")
r.read()
c.request("HEAD", "/fixed?size=1048576")
r = c.getresponse()
out["head"] = [r.status, r.getheader("content-length"), r.read().decode()]
c.request("PUT", "/count", body=iter([b"\0" * 65536] * 48), encode_chunked=True)
out["chunked"] = json.loads(c.getresponse().read())
c.request("GET", "/download?size=3145728")
out["download"] = len(c.getresponse().read())
c.request("GET", "/close")
r = c.getresponse()
out["close"] = [r.read().decode(), r.will_close]
def raw(data, half_close=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    if half_close: s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = s.recv(65536)
        if not d: break
        got += d
    s.close()
    return got.decode("latin-1")
# HTTP/1.0 keep-alive, pipelined, then a plain HTTP/1.0 request.
out["http10"] = raw(
    b"POST /count HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n\0\0\0"
    b"GET /x HTTP/1.0\r\n\r\nGET /ignored HTTP/1.0\r\n\r\n")
# A client that half-closes after its request still gets the answer.
out["half"] = raw(b"GET /half HTTP/1.1\r\nHost: x\r\n\r\n", half_close=True)
print(json.dumps(out))
`;

Deno.test({
  name: needing(
    "HttpServerProtocol against Python's http.client: obs-text, Cookie and Set-Cookie twice, HEAD, chunked upload, HTTP/1.0 keep-alive, a half-closed client",
    "python3",
    HAS_PYTHON,
  ),
  ignore: !HAS_PYTHON,
  fn: async () => {
    await withTulipServe(async (port) => {
      const result = await command(
        "python3",
        ["-c", PY_CLIENT, String(port)],
        undefined,
        25,
      );
      assertEquals(result.code, 0, result.stderr);
      const out = JSON.parse(result.stdout);
      assertEquals(out.cookies, ["a=1", "b=2; Path=/"]);
      assertEquals(out.latin, "caf\u00e9");
      assertEquals(out.seen, "na\u00efve");
      assertEquals(out.cookie, "c=1; d=2; e=3");
      assertEquals(out.head, [200, String(MIB), ""]);
      assertEquals(out.chunked, { n: 3 * MIB, te: "chunked", cl: null });
      assertEquals(out.download, 3 * MIB);
      assertEquals(out.close, ["bye", true]);
      const [first, second, rest] = out.http10.split("\r\n\r\n");
      assertStringIncludes(first, "connection: keep-alive");
      assert(second.startsWith('{"n":3,'), second);
      assertStringIncludes(second, "connection: close");
      assertEquals(rest, "hi /x");
      assert(out.half.startsWith("HTTP/1.1 200 OK\r\n"), out.half);
      assert(out.half.endsWith("\r\n\r\nhi /half"), out.half);
    });
  },
});

// ---- PEP 3153's stack → Deno.serve ----

Deno.test("JsonRpcProtocol over HttpTransport over HttpClientProtocol to jsonRpcHttpHandler under Deno.serve", async () => {
  const controller = new AbortController();
  const logged: unknown[] = [];
  const server = Deno.serve(
    { hostname: HOST, port: 0, signal: controller.signal, onListen() {} },
    jsonRpcHttpHandler({
      add: ([a, b]: number[]) => a + b,
      log: (params) => {
        logged.push(params);
      },
      fail: () => {
        throw new JsonRpcError(-32000, "Refused");
      },
    }),
  );
  const loop = new DenoEventLoop();
  try {
    await run(loop, async () => {
      const http = await connect(loop, server.addr.port);
      const { transport, rpc } = rpcOverHttp(http, loop);
      // A notification's empty answer (204) delivers nothing.
      rpc.notify("log", ["one"]);
      assertEquals(await rpc.call("add", [40, 2]), 42);
      const [sum, failed] = await rpc.batch([
        { method: "add", params: [1, 2] },
        { method: "fail" },
      ]);
      assertEquals(sum, 3);
      assertEquals((failed as JsonRpcError).code, -32000);
      assertEquals(
        await Promise.all([1, 2, 3].map((n) => rpc.call("add", [n, n]))),
        [2, 4, 6],
      );
      assertEquals(logged, [["one"]]);
      transport.close();
      http.close();
      await http.waitClosed();
    });
  } finally {
    loop.close();
    controller.abort();
    await server.finished;
  }
});
