import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  type HttpHandler,
  HttpServerProtocol,
  type HttpServerProtocolOptions,
} from "../../http/http_server_protocol.ts";
import { HttpParseError } from "../../http/_http_parser.ts";
import { PeerLog } from "../../protocols/peer_log.ts";
import { sleep } from "../../tasks/sleep.ts";
import { transportPair } from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import type { Transport } from "../../transports/transport.ts";
import {
  bytes,
  type Conversation,
  converse,
  converseEverySplit,
  Recorder,
} from "./_http_helpers.ts";
import { Framing } from "../_helpers.ts";

function server(handler: HttpHandler, options?: HttpServerProtocolOptions) {
  return (loop: VirtualTimeLoop) =>
    new HttpServerProtocol(handler, { loop, ...options });
}

const hello: HttpHandler = () => new Response("Hello, World!");

const HELLO_RESPONSE = "HTTP/1.1 200 OK\r\n" +
  "content-type: text/plain;charset=UTF-8\r\n" +
  "content-length: 13\r\n" +
  "date: X\r\n" +
  "\r\n" +
  "Hello, World!";

/** Every split gives `expected`; returns nothing. */
async function expectEverySplit(
  handler: HttpHandler,
  input: string,
  expected: string,
  options?: HttpServerProtocolOptions,
  more?: (c: Conversation<HttpServerProtocol>) => void,
): Promise<void> {
  await converseEverySplit(server(handler, options), input, (c, split) => {
    assertEquals(c.output, expected, split);
    more?.(c);
  });
}

// ---- Construction ----

Deno.test("HttpServerProtocol() checks its handler and options", () => {
  assertThrows(
    () => new HttpServerProtocol("x" as never),
    TypeError,
    "handler must be a function",
  );
  assertThrows(
    () => new HttpServerProtocol(hello, { keepAliveTimeout: 0 }),
    RangeError,
    "keepAliveTimeout must be > 0",
  );
  assertThrows(
    () => new HttpServerProtocol(hello, { keepAliveTimeout: "5" as never }),
    TypeError,
  );
  assertThrows(
    () => new HttpServerProtocol(hello, { maxRequestsPerConnection: 0 }),
    RangeError,
  );
  assertThrows(
    () => new HttpServerProtocol(hello, { scheme: "ftp" as never }),
    RangeError,
  );
  assertThrows(
    () => new HttpServerProtocol(hello, { maxHeaderBytes: -1 }),
    RangeError,
  );
});

// ---- Basic exchanges, keep-alive, pipelining ----

Deno.test("HttpServerProtocol answers a GET with Content-Length and Date, then closes on Connection: close", async () => {
  await expectEverySplit(
    hello,
    // The request after the closing one is never answered.
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" +
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    HELLO_RESPONSE.replace("date: X\r\n", "date: X\r\nconnection: close\r\n"),
    undefined,
    (c) => assertEquals(c.protocol.requestCount, 1),
  );
});

Deno.test("HttpServerProtocol sends a real Date header", async () => {
  const loop = new VirtualTimeLoop();
  const peer = new Recorder(loop);
  transportPair(peer, new HttpServerProtocol(hello, { loop }), { loop });
  loop.callSoon(() =>
    peer.transport!.write(
      bytes("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
    )
  );
  await loop.runUntilComplete(peer.lost);
  loop.close();
  const date = peer.text.match(/\r\ndate: ([^\r]*)\r\n/)![1];
  assert(Math.abs(Date.parse(date) - Date.now()) < 60_000, date);
  assert(date.endsWith(" GMT"));
});

Framing.test("HttpServerProtocol reads the clock for Date once per turn of the event loop", async () => {
  const realNow = Date.now;
  let now = Date.UTC(2030, 0, 2, 3, 4, 5, 600);
  let reads = 0;
  Date.now = () => {
    reads++;
    return now;
  };
  const sent: string[] = [];
  const transport = {
    write: (data: Uint8Array) => sent.push(new TextDecoder().decode(data)),
    getExtraInfo: () => undefined,
    // Used when a body is streamed (Deno's internals switched off) and the
    // stream is cut by the loop closing.
    close: () => {},
  } as unknown as Transport;
  const loop = new VirtualTimeLoop();
  try {
    const protocol = new HttpServerProtocol(hello, { loop });
    protocol.connectionMade(transport);
    const request = bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    // Wait out any turn begun before this test: the clock is read anew.
    await Promise.resolve();
    reads = 0;
    protocol.dataReceived(request.slice());
    protocol.dataReceived(request.slice());
    assertEquals(reads, 1);
    await Promise.resolve();
    now += 1000;
    protocol.dataReceived(request.slice());
    assertEquals(reads, 2);
    const dates = sent.map((r) => r.match(/\r\ndate: ([^\r]*)\r\n/)![1]);
    assertEquals(dates, [
      "Wed, 02 Jan 2030 03:04:05 GMT",
      "Wed, 02 Jan 2030 03:04:05 GMT",
      "Wed, 02 Jan 2030 03:04:06 GMT",
    ]);
  } finally {
    Date.now = realNow;
    loop.close();
  }
});

Deno.test("HttpServerProtocol keeps the connection alive and answers pipelined requests in order", async () => {
  const handler: HttpHandler = async (request) => {
    const path = new URL(request.url).pathname;
    // The first request takes longest: its answer must still come first.
    if (path === "/slow") await sleep(1);
    else await Promise.resolve();
    return new Response(path);
  };
  const input = "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n" +
    "GET /fast HTTP/1.1\r\nHost: a\r\n\r\n" +
    "GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  const one = (path: string, close = false) =>
    "HTTP/1.1 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\n" +
    `content-length: ${path.length}\r\ndate: X\r\n` +
    (close ? "connection: close\r\n" : "") + "\r\n" + path;
  await expectEverySplit(
    handler,
    input,
    one("/slow") + one("/fast") + one("/last", true),
    undefined,
    (c) => assertEquals(c.protocol.requestCount, 3),
  );
});

Deno.test("HttpServerProtocol answers synchronous handlers for pipelined requests in order", async () => {
  let n = 0;
  const handler: HttpHandler = () => new Response(`#${++n}`);
  const input = "GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(3) +
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  await converseEverySplit(server(handler), input, (c) => {
    const bodies = [...c.output.matchAll(/\r\n\r\n(#\d+)/g)].map((m) => m[1]);
    assertEquals(bodies.length, 4);
    n = 0;
  });
});

Deno.test("HttpServerProtocol answers one connection's pipelined requests before the loop's next callback", async () => {
  // An async handler's answer goes on in a microtask, and so does the
  // next pipelined request: the loop lets them all run before it hands
  // the next connection its bytes, rather than answer the connections in
  // lockstep (a1 b1 a2 b2 ...), each with an exchange alive meanwhile.
  const loop = new VirtualTimeLoop();
  try {
    const order: string[] = [];
    const handler: HttpHandler = (request) => {
      order.push(new URL(request.url).pathname);
      return Promise.resolve(new Response("ok"));
    };
    const peers = ["a", "b"].map(() => {
      const peer = new Recorder(loop);
      transportPair(peer, new HttpServerProtocol(handler, { loop }), { loop });
      return peer;
    });
    await loop.advance(0);
    loop.callSoon(() => {
      for (const [i, peer] of peers.entries()) {
        const name = i === 0 ? "a" : "b";
        peer.transport!.write(bytes(
          [1, 2, 3].map((n) => `GET /${name}${n} HTTP/1.1\r\nHost: h\r\n\r\n`)
            .join(""),
        ));
      }
    });
    await loop.advance(0);
    assertEquals(order, ["/a1", "/a2", "/a3", "/b1", "/b2", "/b3"]);
    for (const peer of peers) {
      assertEquals(peer.text.split("HTTP/1.1 200 OK").length - 1, 3);
      peer.transport!.close();
    }
    await loop.advance(0);
  } finally {
    loop.close();
  }
});

Deno.test("HttpServerProtocol closes an idle keep-alive connection after keepAliveTimeout", async () => {
  const c = await converse(
    server(hello, { keepAliveTimeout: 2 }),
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
  );
  assertEquals(c.output, HELLO_RESPONSE);
  assert(
    c.closedAt >= 2 && c.closedAt <= 2 * (1 + 1 / 8) + 1e-9,
    `${c.closedAt}`,
  );
});

Deno.test("HttpServerProtocol gives a head that has begun headersTimeout, not keepAliveTimeout", async () => {
  const c = await converse(
    server(hello, { keepAliveTimeout: 3, headersTimeout: 7 }),
    "GET / HT",
  );
  assert(c.output.startsWith("HTTP/1.1 408 Request Timeout\r\n"), c.output);
  assert(c.closedAt >= 7 && c.closedAt <= 8, `${c.closedAt}`);
});

Deno.test("HttpServerProtocol keeps a busy connection open past keepAliveTimeout", async () => {
  const handler: HttpHandler = async () => {
    await sleep(10);
    return new Response("late");
  };
  const c = await converse(
    server(handler, { keepAliveTimeout: 1 }),
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
  );
  assertStringIncludes(c.output, "\r\n\r\nlate");
  assert(c.closedAt >= 11 && c.closedAt <= 11.2, `${c.closedAt}`);
});

Deno.test("HttpServerProtocol closes after maxRequestsPerConnection requests", async () => {
  const input = "GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(3);
  await converseEverySplit(
    server(hello, { maxRequestsPerConnection: 2 }),
    input,
    (c) => {
      assertEquals(
        c.output,
        HELLO_RESPONSE +
          HELLO_RESPONSE.replace(
            "date: X\r\n",
            "date: X\r\nconnection: close\r\n",
          ),
      );
      assertEquals(c.protocol.requestCount, 2);
    },
  );
});

// ---- HTTP/1.0 ----

Deno.test("HttpServerProtocol closes after an HTTP/1.0 request without keep-alive", async () => {
  await expectEverySplit(
    hello,
    "GET / HTTP/1.0\r\n\r\n",
    HELLO_RESPONSE.replace("date: X\r\n", "date: X\r\nconnection: close\r\n"),
  );
});

Deno.test("HttpServerProtocol keeps an HTTP/1.0 connection alive when asked", async () => {
  const input = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" +
    "GET / HTTP/1.0\r\n\r\n";
  await expectEverySplit(
    hello,
    input,
    HELLO_RESPONSE.replace(
      "date: X\r\n",
      "date: X\r\nconnection: keep-alive\r\n",
    ) +
      HELLO_RESPONSE.replace("date: X\r\n", "date: X\r\nconnection: close\r\n"),
  );
});

Deno.test("HttpServerProtocol sends a streamed body to an HTTP/1.0 client until it closes", async () => {
  const handler: HttpHandler = () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(bytes("ab"));
          c.enqueue(bytes("cd"));
          c.close();
        },
      }),
    );
  await expectEverySplit(
    handler,
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "HTTP/1.1 200 OK\r\ndate: X\r\nconnection: close\r\n\r\nabcd",
  );
});

// ---- Request bodies ----

const echo: HttpHandler = async (request) =>
  new Response(`${request.method} ${await request.text()}`);

Deno.test("HttpServerProtocol gives the handler a Content-Length body", async () => {
  const input = "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n" +
    "hello world" +
    "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
  await converseEverySplit(server(echo), input, (c) => {
    assertStringIncludes(c.output, "content-length: 16\r\n");
    assertStringIncludes(c.output, "\r\n\r\nPOST hello world");
    assert(c.output.endsWith("\r\n\r\nPOST ok"), c.output);
  });
});

Deno.test("HttpServerProtocol gives the handler a chunked body, trailers ignored", async () => {
  const input =
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
    "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\n" +
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  await converseEverySplit(server(echo), input, (c) => {
    assertStringIncludes(c.output, "\r\n\r\nPOST hello world");
    assert(c.output.endsWith("\r\n\r\nGET "), c.output);
  });
});

Deno.test("HttpServerProtocol streams a request body to the handler piece by piece", async () => {
  const seen: number[] = [];
  const handler: HttpHandler = async (request) => {
    let total = 0;
    for await (const piece of request.body!) {
      seen.push(piece.length);
      total += piece.length;
    }
    return new Response(String(total));
  };
  const body = "x".repeat(1000);
  const c = await converse(
    server(handler),
    `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n${body}`,
    { chunkSize: 100 },
  );
  assert(c.output.endsWith("\r\n\r\n1000"));
  assert(seen.length > 1, `${seen}`);
});

Deno.test("HttpServerProtocol drops an unread request body and serves the next request", async () => {
  const input = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabcde" +
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  await expectEverySplit(
    hello,
    input,
    HELLO_RESPONSE + HELLO_RESPONSE +
      HELLO_RESPONSE.replace("date: X\r\n", "date: X\r\nconnection: close\r\n"),
  );
});

Deno.test("HttpServerProtocol fails a read of the body that comes after the answer, whole or not", async () => {
  // Deno.serve fails it too ("Request closed"): the body was dropped, and
  // an empty or never-ending read would pass for a body.
  for (
    const [what, input] of [
      [
        "arrived whole",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
      ],
      [
        "still arriving",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nhello",
      ],
    ]
  ) {
    let late: Promise<string> | null = null;
    const handler: HttpHandler = (request) => {
      late = Promise.resolve().then(() => sleep(0.01)).then(() =>
        request.text()
      );
      late.catch(() => {});
      return new Response("ok");
    };
    const c = await converse(
      server(handler),
      input,
      {},
      (loop, peer) => {
        loop.callLater(0.1, () => peer.transport!.write(bytes("mor")));
        loop.callLater(0.2, () => peer.transport!.close());
      },
    );
    assert(c.output.includes("\r\n\r\nok"), `${what}: ${c.output}`);
    await assertRejects(() => late!, Error, "already sent", what);
  }
});

Deno.test("HttpServerProtocol lets a handler transfer a small body piece without breaking the connection", async () => {
  // A body piece is a view of the bytes received, which hold the next
  // request too: a handler that transfers the piece (a byte stream's
  // enqueue() does, as under Deno.serve it may) must not detach them.
  const handler: HttpHandler = async (request) => {
    const reader = request.body!.getReader();
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += await new Response(
        new ReadableStream({
          type: "bytes",
          start(c) {
            c.enqueue(value);
            c.close();
          },
        }),
      ).bytes().then((b) => b.length);
    }
    return new Response(`got ${n}`);
  };
  const post = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
  const c = await converse(
    server(handler),
    post + post.replace("Host: a", "Host: a\r\nConnection: close"),
  );
  assertEquals([...c.output.matchAll(/\r\n\r\ngot 5/g)].length, 2, c.output);
});

Deno.test("HttpServerProtocol drops the body of a GET", async () => {
  const handler: HttpHandler = (request) =>
    new Response(String(request.body === null));
  const input = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  await converseEverySplit(server(handler), input, (c) => {
    assertEquals([...c.output.matchAll(/\r\n\r\ntrue/g)].length, 2, c.output);
  });
});

Deno.test("HttpServerProtocol gives a request without content an empty body, whatever its framing, as Deno.serve does", async () => {
  // RFC 9112 §6: no framing, `Content-Length: 0` and an empty chunked body
  // all mean no content; the handler sees the same for each, as under
  // Deno.serve (an empty stream for every method but GET and HEAD). The
  // `Content-Length: 0` request got a null body, the chunked one an empty
  // stream, so `request.body!.getReader()` failed on the first only.
  const handler: HttpHandler = async (request) => {
    const body = request.body;
    if (body === null) return new Response(`${request.method} null`);
    let n = 0;
    for await (const chunk of body) n += chunk.length;
    return new Response(`${request.method} ${n} bytes`);
  };
  const h = "Host: a\r\n";
  const input = `POST / HTTP/1.1\r\n${h}Content-Length: 0\r\n\r\n` +
    `POST / HTTP/1.1\r\n${h}\r\n` +
    `POST / HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n` +
    `DELETE / HTTP/1.1\r\n${h}\r\n` +
    `OPTIONS * HTTP/1.1\r\n${h}\r\n` +
    `PURGE / HTTP/1.1\r\n${h}\r\n` +
    `POST / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n` +
    `GET / HTTP/1.1\r\n${h}Content-Length: 0\r\n\r\n` +
    `HEAD / HTTP/1.1\r\n${h}Connection: close\r\n\r\n`;
  await converseEverySplit(server(handler), input, (c, split) => {
    const bodies = [...c.output.matchAll(/\r\n\r\n([A-Z]+ [a-z0-9 ]+)/g)]
      .map((m) => m[1]);
    assertEquals(bodies, [
      ...["POST", "POST", "POST", "DELETE", "OPTIONS", "PURGE", "POST"]
        .map((method) => `${method} 0 bytes`),
      "GET null",
    ], split);
  });
});

Deno.test("HttpServerProtocol pauses reading while a request body waits unread", async () => {
  const loop = new VirtualTimeLoop();
  let resume!: () => void;
  const gate = new Promise<void>((r) => resume = r);
  const handler: HttpHandler = async (request) => {
    await gate;
    return new Response(String((await request.bytes()).length));
  };
  const peer = new Recorder(loop);
  const protocol = new HttpServerProtocol(handler, { loop });
  const [, serverSide] = transportPair(peer, protocol, {
    loop,
    chunkSize: 4096,
  });
  const size = 300 * 1024;
  loop.callSoon(() => {
    peer.transport!.write(
      bytes(
        `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`,
      ),
    );
    peer.transport!.write(new Uint8Array(size));
  });
  await loop.advance(1);
  assertEquals(serverSide.isReading(), false);
  resume();
  await loop.runUntilComplete(peer.lost);
  assert(peer.text.endsWith(`\r\n\r\n${size}`), peer.text.slice(-50));
  loop.close();
});

Deno.test("HttpServerProtocol reads again after an answer that left more than 64 KiB of a whole body unread", async () => {
  const loop = new VirtualTimeLoop();
  const peer = new Recorder(loop);
  const protocol = new HttpServerProtocol(async (request) => {
    // Answers once the whole body waits unread, over the high-water mark.
    if (request.method === "POST") await sleep(1, undefined, { loop });
    return new Response("ok");
  }, { loop });
  transportPair(peer, protocol, { loop, chunkSize: 64 * 1024 });
  const size = 100 * 1024;
  loop.callSoon(() => {
    peer.transport!.write(
      bytes(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`),
    );
    peer.transport!.write(new Uint8Array(size));
  });
  // The next request comes after the answer, in a read of its own.
  loop.callLater(
    2,
    () =>
      peer.transport!.write(
        bytes("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
      ),
  );
  await loop.advance(4);
  assertEquals(peer.text.split("HTTP/1.1 200 OK").length - 1, 2, peer.text);
  assert(peer.lost.done(), "the connection is closed");
  loop.close();
});

Deno.test("HttpServerProtocol fails the body read with the parse error and answers its status", async () => {
  const c = await converse(
    server(echo, { maxBodyBytes: 4 }),
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
  );
  assert(c.output.startsWith("HTTP/1.1 413 Content Too Large\r\n"), c.output);
  assertStringIncludes(c.output, "connection: close\r\n");
  // The answer says what was wrong, as one to a malformed head does.
  assertStringIncludes(
    c.output,
    "\r\n\r\nContent Too Large: Cannot parse HTTP request: the body is larger than maxBodyBytes (4)",
  );
  // The client's doing, answered with its status: nothing is logged.
  assertEquals(c.errors, []);
});

Deno.test("HttpServerProtocol closes after a streamed answer when the body turned malformed meanwhile", async () => {
  // The rest of the request cannot be found: the connection closes once
  // the answer is out, as Deno.serve closes it (it waited for
  // requestTimeout).
  const handler: HttpHandler = () =>
    new Response(
      new ReadableStream({
        async pull(c) {
          await sleep(0.5);
          c.enqueue(bytes("done"));
          c.close();
        },
      }),
    );
  const c = await converse(
    server(handler),
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    {},
    (loop, peer) => {
      loop.callLater(0.1, () => peer.transport!.write(bytes("ZZZ\r\n")));
    },
  );
  assert(c.output.endsWith("4\r\ndone\r\n0\r\n\r\n"), c.output);
  assert(c.closedAt < 5, `closed at ${c.closedAt} s`);
});

Deno.test("HttpServerProtocol answers 413 when chunk extensions pass maxChunkExtensionBytes", async () => {
  const input =
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
    "1;abcdefghi\r\nx\r\n".repeat(3) + "0\r\n\r\n";
  const c = await converse(
    server(echo, { maxChunkExtensionBytes: 29 }),
    input,
  );
  assert(c.output.startsWith("HTTP/1.1 413 Content Too Large\r\n"), c.output);
  const ok = await converse(
    server(echo, { maxChunkExtensionBytes: 30 }),
    input,
  );
  assert(ok.output.startsWith("HTTP/1.1 200 OK\r\n"), ok.output);
});

// ---- 100-continue ----

Deno.test("HttpServerProtocol sends 100 Continue when the handler reads the body", async () => {
  const input = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n" +
    "Content-Length: 2\r\n\r\nhi" +
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  await converseEverySplit(server(echo), input, (c) => {
    assert(
      c.output.startsWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
      c.output,
    );
    assertStringIncludes(c.output, "\r\n\r\nPOST hi");
    assert(c.output.endsWith("\r\n\r\nGET "));
  });
});

Deno.test("HttpServerProtocol answers without 100 Continue and closes when the handler ignores the body", async () => {
  const c = await converse(
    server(hello),
    "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
  );
  assertEquals(
    c.output,
    HELLO_RESPONSE.replace("date: X\r\n", "date: X\r\nconnection: close\r\n"),
  );
});

Deno.test("HttpServerProtocol keeps the connection after an Expect: 100-continue request with no body", async () => {
  // No content is to come (RFC 9110 §10.1.1), so the framing is sure.
  for (const length of ["", "Content-Length: 0\r\n"]) {
    const c = await converse(
      server(hello),
      `POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n${length}\r\n` +
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assertEquals(
      c.output,
      HELLO_RESPONSE +
        HELLO_RESPONSE.replace(
          "date: X\r\n",
          "date: X\r\nconnection: close\r\n",
        ),
      length,
    );
  }
});

Deno.test("HttpServerProtocol sends 100 Continue before a response streamed from the request body", async () => {
  const handler: HttpHandler = (request) => new Response(request.body);
  const input = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n" +
    "Content-Length: 5\r\nConnection: close\r\n\r\nabcde";
  // The body is echoed chunk by chunk as it arrives, so the chunking
  // follows the split: compare the payload.
  await converseEverySplit(server(handler), input, (c, split) => {
    const head = "HTTP/1.1 100 Continue\r\n\r\n" +
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ndate: X\r\n" +
      "connection: close\r\n\r\n";
    assert(c.output.startsWith(head), `${split}: ${c.output}`);
    assertEquals(dechunk(c.output.slice(head.length)), "abcde", split);
  });
});

function dechunk(body: string): string {
  let out = "";
  let rest = body;
  for (;;) {
    const line = rest.indexOf("\r\n");
    const size = parseInt(rest.slice(0, line), 16);
    if (size === 0) return out;
    out += rest.slice(line + 2, line + 2 + size);
    rest = rest.slice(line + 4 + size);
  }
}

// ---- Responses ----

Deno.test("HttpServerProtocol streams a ReadableStream body chunked", async () => {
  const handler: HttpHandler = () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(bytes("hello"));
          c.enqueue(new Uint8Array(0));
          c.enqueue(bytes(" world, this is longer"));
          c.close();
        },
      }),
      { headers: { "x-a": "1" } },
    );
  await expectEverySplit(
    handler,
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "HTTP/1.1 200 OK\r\nx-a: 1\r\ntransfer-encoding: chunked\r\ndate: X\r\nconnection: close\r\n\r\n" +
      "5\r\nhello\r\n16\r\n world, this is longer\r\n0\r\n\r\n",
  );
});

Deno.test("HttpServerProtocol sends a stream with the handler's Content-Length by that length, as Deno.serve does", async () => {
  const streamed = (text: string, length: string) => () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(bytes(text.slice(0, 2)));
          c.enqueue(bytes(text.slice(2)));
          c.close();
        },
      }),
      { headers: { "content-length": length, "x-a": "1" } },
    );
  // Framed by the length, as the HEAD answer already says; an HTTP/1.0
  // client keeps its connection.
  await expectEverySplit(
    streamed("hello", "5"),
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 5\r\ndate: X\r\nconnection: close\r\n\r\nhello",
  );
  await expectEverySplit(
    streamed("hello", "5"),
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 5\r\ndate: X\r\nconnection: keep-alive\r\n\r\nhello",
  );
  // A length that is no length is ignored: the stream goes chunked.
  for (const length of ["five", "-5", "5, 6", "0x5"]) {
    const c = await converse(
      server(streamed("hello", length)),
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assertStringIncludes(c.output, "transfer-encoding: chunked\r\n", length);
    assert(!c.output.includes("content-length"), length);
  }
  // A stream shorter or longer than its length is reported and the
  // connection closed (kept-alive though it was) with no more than the
  // length sent: the client sees the body cut.
  for (
    const [text, length, sent] of [["hello", "9", "hello"], [
      "hello!",
      "3",
      "he",
    ]]
  ) {
    const c = await converse(
      server(streamed(text, length)),
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assertStringIncludes(c.output, `content-length: ${length}\r\n`);
    assert(c.output.endsWith(`\r\n\r\n${sent}`), c.output);
    assertEquals(c.errors.length, 1);
    assertInstanceOf(c.errors[0], RangeError);
  }
});

Deno.test("HttpServerProtocol sends known bodies with Content-Length in any form", async () => {
  const cases: [HttpHandler, string][] = [
    [
      () => new Response(new Uint8Array([104, 105])),
      "content-length: 2\r\ndate: X\r\nconnection: close\r\n\r\nhi",
    ],
    [
      () => new Response("é"),
      "content-type: text/plain;charset=UTF-8\r\ncontent-length: 2\r\n",
    ],
    [
      () => Response.json({ a: 1 }),
      "content-type: application/json\r\ncontent-length: 7\r\n",
    ],
    [
      () => new Response("nf", { status: 404 }),
      "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain;charset=UTF-8\r\ncontent-length: 2\r\n",
    ],
    [
      () => new Response("x".repeat(5000), { headers: { "x-b": "2" } }),
      "content-length: 5000\r\n",
    ],
    [() => new Response(new Blob(["abc"])), "content-length: 3\r\n"],
    [
      () => new Response(null, { status: 201 }),
      "HTTP/1.1 201 Created\r\ncontent-length: 0\r\n",
    ],
    [() => new Response(new URLSearchParams("a=1")), "content-length: 3\r\n"],
    [
      () => new Response("ok", { status: 299, statusText: "Fine" }),
      "HTTP/1.1 299 Fine\r\n",
    ],
    // The reason phrase is kept on a 200 too, whichever way it is sent.
    [
      () => new Response("ok", { statusText: "Fine" }),
      "HTTP/1.1 200 Fine\r\n",
    ],
  ];
  for (const [handler, expected] of cases) {
    const c = await converse(
      server(handler),
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assertStringIncludes(c.output, expected);
    assert(!c.output.includes("chunked"), c.output);
  }
});

Deno.test("HttpServerProtocol reuses the bytes of a repeated answer without mixing answers", async () => {
  let n = 0;
  const handler: HttpHandler = () =>
    new Response(n++ % 2 === 0 ? "even" : "odd!");
  const input = "GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(4) +
    "HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  const c = await converse(server(handler), input);
  const bodies = c.output.split("HTTP/1.1 200 OK").slice(1).map((r) =>
    r.split("\r\n\r\n")[1]
  );
  assertEquals(bodies, ["even", "odd!", "even", "odd!", ""]);
});

Deno.test("HttpServerProtocol answers HEAD with the headers and no body", async () => {
  const cases: [HttpHandler, string][] = [
    [hello, HELLO_RESPONSE.replace("Hello, World!", "")],
    [
      () => new Response("nf", { status: 404 }),
      "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain;charset=UTF-8\r\ncontent-length: 2\r\ndate: X\r\n\r\n",
    ],
    [
      () =>
        new Response(
          new ReadableStream({
            pull(c) {
              c.enqueue(bytes("x"));
            },
          }),
        ),
      "HTTP/1.1 200 OK\r\ndate: X\r\n\r\n",
    ],
    [
      () => new Response(null, { headers: { "content-length": "42" } }),
      "HTTP/1.1 200 OK\r\ncontent-length: 42\r\ndate: X\r\n\r\n",
    ],
    // A length that is not a number of bytes is not sent (RFC 9110 §8.6),
    // as Deno.serve drops it: a client would take the answer as broken.
    [
      () => new Response(null, { headers: { "content-length": "abc" } }),
      "HTTP/1.1 200 OK\r\ncontent-length: 0\r\ndate: X\r\n\r\n",
    ],
    [
      () =>
        new Response(new ReadableStream(), {
          headers: { "content-length": "-1" },
        }),
      "HTTP/1.1 200 OK\r\ndate: X\r\n\r\n",
    ],
  ];
  for (const [handler, expected] of cases) {
    // The HEAD answer, then a GET on the same connection: nothing of a
    // body was sent in between.
    await expectEverySplit(
      (request) =>
        request.method === "HEAD"
          ? handler(request, undefined as never)
          : new Response("next"),
      "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
      expected +
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\ncontent-length: 4\r\ndate: X\r\nconnection: close\r\n\r\nnext",
    );
  }
});

Deno.test("HttpServerProtocol sends no body and no length for 204 and keeps a 304's valid length", async () => {
  const c204 = await converse(
    server(() => new Response(null, { status: 204 })),
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
  );
  assertEquals(
    c204.output,
    "HTTP/1.1 204 No Content\r\ndate: X\r\nconnection: close\r\n\r\n",
  );
  const c304 = await converse(
    server(() =>
      new Response(null, {
        status: 304,
        headers: { "content-length": "10", etag: '"a"' },
      })
    ),
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
  );
  assertEquals(
    c304.output,
    'HTTP/1.1 304 Not Modified\r\netag: "a"\r\ncontent-length: 10\r\ndate: X\r\nconnection: close\r\n\r\n',
  );
  const bad = await converse(
    server(() =>
      new Response(null, {
        status: 304,
        headers: { "content-length": "10, 11" },
      })
    ),
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
  );
  assertEquals(
    bad.output,
    "HTTP/1.1 304 Not Modified\r\ndate: X\r\nconnection: close\r\n\r\n",
  );
});

Deno.test("HttpServerProtocol honours Connection: close from the handler's response", async () => {
  await expectEverySplit(
    () => new Response("bye", { headers: { connection: "Close" } }),
    "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "HTTP/1.1 200 OK\r\ncontent-type: text/plain;charset=UTF-8\r\ncontent-length: 3\r\ndate: X\r\nconnection: close\r\n\r\nbye",
  );
});

Deno.test("HttpServerProtocol lists the upgrade option in Connection when a response has Upgrade", async () => {
  // RFC 9110 §7.8: a sender of Upgrade also sends Connection: upgrade.
  const handler: HttpHandler = () =>
    new Response("use h2c", {
      status: 426,
      headers: { upgrade: "h2c", connection: "upgrade" },
    });
  const head = "HTTP/1.1 426 Upgrade Required\r\n" +
    "content-type: text/plain;charset=UTF-8\r\nupgrade: h2c\r\n" +
    "content-length: 7\r\ndate: X\r\n";
  const cases: [string, string][] = [
    ["GET / HTTP/1.1\r\nHost: a\r\n\r\n", "connection: upgrade\r\n"],
    [
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
      "connection: close, upgrade\r\n",
    ],
    [
      "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "connection: keep-alive, upgrade\r\n",
    ],
  ];
  for (const [input, connection] of cases) {
    const c = await converse(server(handler), input);
    assertEquals(c.output, head + connection + "\r\nuse h2c", input);
  }
});

Deno.test("HttpServerProtocol replaces the handler's framing fields and keeps its Date", async () => {
  const handler: HttpHandler = () =>
    new Response("abc", {
      headers: {
        "content-length": "99",
        "transfer-encoding": "gzip",
        "keep-alive": "timeout=1",
        date: "Thu, 01 Jan 1970 00:00:00 GMT",
        "set-cookie": "a=1",
      },
    });
  const c = await converse(
    server(handler),
    "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
  );
  assertStringIncludes(c.output, "content-length: 3\r\n");
  assertStringIncludes(c.output, "set-cookie: a=1\r\n");
  assert(!c.output.includes("99"));
  assert(!c.output.includes("gzip"));
  assert(!c.output.includes("keep-alive"));
  assertEquals([...c.output.matchAll(/date: /g)].length, 1);
});

Deno.test("HttpServerProtocol waits while the write buffer is full when streaming a body", async () => {
  const loop = new VirtualTimeLoop();
  let pulls = 0;
  const handler: HttpHandler = () =>
    new Response(
      new ReadableStream({
        pull(c) {
          pulls++;
          if (pulls > 100) c.close();
          else c.enqueue(new Uint8Array(16 * 1024));
        },
      }),
    );
  const peer = new Recorder(loop);
  const protocol = new HttpServerProtocol(handler, { loop });
  // Deliveries of at most 8 KiB: one delivery taking more than 64
  // buffered writes at once trips a bug in transportPair's Link.take().
  transportPair(peer, protocol, { loop, bufferSize: 1024, chunkSize: 8192 });
  loop.callSoon(() => {
    peer.transport!.write(
      bytes("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
    );
    peer.transport!.pauseReading();
  });
  await loop.advance(1);
  assert(pulls < 20, `${pulls} pulls with the peer not reading`);
  peer.transport!.resumeReading();
  await loop.runUntilComplete(peer.lost);
  assertEquals(pulls, 101);
  assertStringIncludes(peer.text, "\r\n0\r\n\r\n");
  loop.close();
});

// ---- Handler errors ----

Deno.test("HttpServerProtocol answers 500 when the handler throws or rejects, and reports it", async () => {
  const handlers: HttpHandler[] = [
    () => {
      throw new Error("boom");
    },
    () => Promise.reject(new Error("boom")),
    () => "text" as never,
    () => Promise.resolve(42 as never),
    () => new Response("x", { status: 101 } as never),
  ];
  for (const handler of handlers) {
    const input = "GET / HTTP/1.1\r\nHost: a\r\n\r\n" +
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    const c = await converse(server(handler), input);
    const responses = c.output.split("HTTP/1.1 ").slice(1);
    assertEquals(responses.length, 2, c.output);
    assert(responses[0].startsWith("500 Internal Server Error\r\n"));
    assertStringIncludes(responses[0], "content-length: 22\r\n");
    assertEquals(c.errors.length, 2);
  }
});

Deno.test("HttpServerProtocol aborts the connection when a streamed body fails midway", async () => {
  const handler: HttpHandler = () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(bytes("part"));
        },
        pull(c) {
          c.error(new Error("broken"));
        },
      }),
    );
  const c = await converse(
    server(handler),
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
  );
  assertStringIncludes(c.output, "4\r\npart\r\n");
  assert(!c.output.includes("0\r\n\r\n"), "the body's end is not sent");
  assertEquals(c.errors.length, 1);
  assertInstanceOf(c.errors[0], Error);
});

// ---- Bad requests ----

async function rejected(
  input: string,
  status: string,
  options?: HttpServerProtocolOptions,
) {
  let called = false;
  const handler: HttpHandler = () => {
    called = true;
    return new Response("no");
  };
  await converseEverySplit(server(handler, options), input, (c, split) => {
    assert(
      c.output.startsWith(`HTTP/1.1 ${status}\r\n`),
      `${split}: ${c.output}`,
    );
    assertStringIncludes(c.output, "connection: close\r\n");
    assertStringIncludes(
      c.output,
      "content-type: text/plain; charset=utf-8\r\n",
    );
    assert(c.peer.eof, "the server half-closes");
  });
  assertEquals(called, false);
}

Deno.test("HttpServerProtocol answers 400 to a malformed request and closes", async () => {
  await rejected(
    "GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
    "400 Bad Request",
  );
  await rejected("GET / HTTP/1.1\nHost: a\n\n", "400 Bad Request");
  await rejected("GET / HTTP/1.1\r\n\r\n", "400 Bad Request");
  await rejected("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "400 Bad Request");
  await rejected("GET foo HTTP/1.1\r\nHost: a\r\n\r\n", "400 Bad Request");
});

Deno.test("HttpServerProtocol answers 400 before the handler to a Host or target no URL can hold", async () => {
  for (
    const input of [
      "GET / HTTP/1.1\r\nHost: x:99999\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a%b\r\n\r\n",
      "GET http://a:99999/ HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /\r\nHost: a\r\n\r\n",
    ]
  ) {
    let called = false;
    const handler: HttpHandler = (request) => {
      called = true;
      return new Response(request.url);
    };
    await converseEverySplit(server(handler), input, (c, split) => {
      assert(
        c.output.startsWith("HTTP/1.1 400 Bad Request\r\n"),
        `${split}: ${c.output}`,
      );
      assertEquals(c.errors, [], "nothing is logged as a handler failure");
    });
    assertEquals(called, false, input);
  }
});

Deno.test("HttpServerProtocol answers 400 before the handler to a path the URL parser would rewrite", async () => {
  // "\\" becomes "/" in a URL's path, so "/public\\..\\admin" would reach
  // the handler as "/admin".
  for (
    const [target, why] of [
      [
        "/public\\..\\admin",
        `the request-target's path has "\\\\", which RFC 3986 does not allow (percent-encode it), received "/public\\\\..\\\\admin"`,
      ],
      [
        "/a#/../admin",
        `the request-target has "#" (a fragment, which a request does not send), received "/a#/../admin"`,
      ],
      [
        "/<script>",
        `the request-target's path has "<", which RFC 3986 does not allow (percent-encode it), received "/<script>"`,
      ],
    ]
  ) {
    let called = false;
    const handler: HttpHandler = (request) => {
      called = true;
      return new Response(request.url);
    };
    await converseEverySplit(
      server(handler),
      `GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`,
      (c, split) => {
        assert(
          c.output.startsWith("HTTP/1.1 400 Bad Request\r\n"),
          `${split}: ${c.output}`,
        );
        assertStringIncludes(c.output, "connection: close\r\n");
        assertStringIncludes(
          c.output,
          `\r\n\r\nBad Request: Cannot parse HTTP request: ${why}`,
        );
        assertEquals(c.errors, []);
      },
    );
    assertEquals(called, false, target);
  }
  // What browsers send unencoded in a query reaches the handler.
  const seen: string[] = [];
  await converse(
    server((request) => {
      seen.push(request.url);
      return new Response("ok");
    }),
    "GET /a?x[]=1&y={2}|3^`\\ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
  );
  assertEquals(seen, ["http://a/a?x[]=1&y={2}|3^`\\"]);
});

Deno.test('HttpServerProtocol gives the handler several Cookie fields as one, joined by "; ", as Deno.serve does', async () => {
  // A cookie-string is "; "-separated (RFC 6265 §5.4); joined by ", " the
  // second cookie would become part of the first one's value.
  const seen: unknown[] = [];
  const c = await converse(
    server((request) => {
      seen.push(request.headers.get("cookie"), [...request.headers].length);
      return new Response("ok");
    }),
    "GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1; b=2\r\nX-A: b\r\n" +
      "cookie: c=3\r\nCOOKIE: d=4\r\nConnection: close\r\n\r\n",
  );
  assert(c.output.startsWith("HTTP/1.1 200 OK\r\n"), c.output);
  assertEquals(seen, ["a=1; b=2; c=3; d=4", 4]);
});

Deno.test("HttpServerProtocol gives the handler repeated equal Content-Length values as one", async () => {
  for (
    const fields of [
      "Content-Length: 3, 3\r\n",
      "Content-Length: 3\r\nX-A: b\r\ncontent-length: 3\r\n",
    ]
  ) {
    const seen: unknown[] = [];
    const c = await converse(
      server(async (request) => {
        seen.push([...request.headers], await request.text());
        return new Response("ok");
      }),
      `POST / HTTP/1.1\r\nHost: a\r\n${fields}Connection: close\r\n\r\nabc`,
    );
    assert(c.output.startsWith("HTTP/1.1 200 OK\r\n"), c.output);
    const headers = seen[0] as Array<[string, string]>;
    assertEquals(
      headers.filter(([name]) => name === "content-length"),
      [["content-length", "3"]],
    );
    assertEquals(seen[1], "abc");
  }
  await rejected(
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd",
    "400 Bad Request",
  );
});

Deno.test("HttpServerProtocol rejects conflicting framing (no request smuggling)", async () => {
  await rejected(
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "400 Bad Request",
  );
  await rejected(
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    "400 Bad Request",
  );
  await rejected(
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "400 Bad Request",
  );
  await rejected(
    "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "400 Bad Request",
  );
});

Deno.test("HttpServerProtocol answers 413, 414, 431, 501 and 505", async () => {
  await rejected(
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n",
    "413 Content Too Large",
    { maxBodyBytes: 10 },
  );
  await rejected(
    `GET /${"a".repeat(100)} HTTP/1.1\r\nHost: a\r\n\r\n`,
    "414 URI Too Long",
    { maxLineBytes: 50 },
  );
  await rejected(
    `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${"b".repeat(200)}\r\n\r\n`,
    "431 Request Header Fields Too Large",
    { maxHeaderBytes: 100 },
  );
  await rejected(
    "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
    "431 Request Header Fields Too Large",
    { maxHeaders: 2 },
  );
  await rejected(
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "501 Not Implemented",
  );
  await rejected(
    "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    "501 Not Implemented",
  );
  await rejected(
    "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    "505 HTTP Version Not Supported",
  );
});

Deno.test("HttpServerProtocol answers 501 to a method a web Request would respell or refuses, in any case (RFC 9110 §9.1)", async () => {
  // `new Request()` makes these GET, HEAD, POST…: the handler would see
  // another method than the one sent (and fail on a `get` with a body);
  // it refuses CONNECT, TRACE and TRACK in any case.
  for (
    const method of [
      "get",
      "Get",
      "head",
      "post",
      "put",
      "delete",
      "options",
      "trace",
      "Track",
      "connect",
    ]
  ) {
    await rejected(
      `${method} / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc`,
      "501 Not Implemented",
    );
  }
  // Methods it keeps as sent reach the handler as sent.
  const c = await converse(
    server((request) => new Response(request.method)),
    "patch / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
  );
  assert(c.output.endsWith("\r\n\r\npatch"), c.output);
});

Deno.test("HttpServerProtocol closes without answering when a request is cut short", async () => {
  const loop = new VirtualTimeLoop();
  const peer = new Recorder(loop);
  transportPair(peer, new HttpServerProtocol(hello, { loop }), { loop });
  loop.callSoon(() => {
    peer.transport!.write(bytes("GET / HTTP/1.1\r\nHo"));
    peer.transport!.writeEof();
  });
  await loop.runUntilComplete(peer.lost);
  assertEquals(peer.text, "");
  loop.close();
});

Deno.test("HttpServerProtocol answers requests before a half-close", async () => {
  const loop = new VirtualTimeLoop();
  const peer = new Recorder(loop);
  const handler: HttpHandler = async () => {
    await sleep(1);
    return new Response("ok");
  };
  transportPair(peer, new HttpServerProtocol(handler, { loop }), { loop });
  loop.callSoon(() => {
    peer.transport!.write(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(2)));
    peer.transport!.writeEof();
  });
  await loop.runUntilComplete(peer.lost);
  assertEquals([...peer.text.matchAll(/\r\n\r\nok/g)].length, 2);
  loop.close();
});

Deno.test("HttpServerProtocol aborts request.signal when the client closes its side, and still answers", async () => {
  // A closed client looks like a half-closed one until a write fails:
  // the handler is told (as Go cancels the request's context, and
  // Deno.serve and Node abort the request) so that it can stop work that
  // writes nothing; its answer still goes out.
  const loop = new VirtualTimeLoop();
  const peer = new Recorder(loop);
  const signals: AbortSignal[] = [];
  const handler: HttpHandler = async (request) => {
    if (new URL(request.url).pathname === "/early") {
      signals.push(request.signal);
    }
    await sleep(1);
    if (new URL(request.url).pathname === "/late") {
      signals.push(request.signal);
    }
    return new Response(`aborted: ${request.signal.aborted}`);
  };
  transportPair(peer, new HttpServerProtocol(handler, { loop }), { loop });
  loop.callSoon(() => {
    peer.transport!.write(
      bytes(
        "GET /early HTTP/1.1\r\nHost: a\r\n\r\nGET /late HTTP/1.1\r\nHost: a\r\n\r\n",
      ),
    );
    peer.transport!.writeEof();
  });
  await loop.advance(0.5);
  assertEquals(signals.length, 1);
  assertEquals(signals[0].aborted, true);
  // As under Deno.serve: an AbortError, so that a fetch() given the signal
  // fails as an abort; its cause says why.
  assertInstanceOf(signals[0].reason, DOMException);
  assertEquals(signals[0].reason.name, "AbortError");
  assertStringIncludes(signals[0].reason.message, "closed its side");
  assertInstanceOf(signals[0].reason.cause, Deno.errors.ConnectionReset);
  await loop.runUntilComplete(peer.lost);
  assertEquals(signals.length, 2);
  assertEquals(signals[1].aborted, true);
  assertEquals(
    [...peer.text.matchAll(/\r\n\r\naborted: true/g)].length,
    2,
    peer.text,
  );
  loop.close();
});

// ---- The request ----

Deno.test("HttpServerProtocol gives the handler a real-acting Request and the client's address", async () => {
  const seen: Record<string, unknown> = {};
  const handler: HttpHandler = async (request, info) => {
    seen.isRequest = request instanceof Request;
    seen.method = request.method;
    seen.url = request.url;
    seen.header = request.headers.get("x-token");
    seen.host = request.headers.get("host");
    seen.copy = new Request(request.clone()).url;
    seen.body = await request.text();
    seen.used = request.bodyUsed;
    seen.addr = info.remoteAddr;
    seen.aborted = request.signal.aborted;
    info.completed.then(() => seen.completed = true);
    return new Response("ok");
  };
  await converse(
    server(handler),
    "PUT /a/../b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nX-Token: t\r\n" +
      "Content-Length: 4\r\nConnection: close\r\n\r\nbody",
  );
  assertEquals(seen, {
    isRequest: true,
    method: "PUT",
    url: "http://example.com:8080/b?q=1",
    header: "t",
    host: "example.com:8080",
    copy: "http://example.com:8080/b?q=1",
    body: "body",
    used: true,
    addr: { transport: "tcp", hostname: "127.0.0.1", port: 40001 },
    aborted: false,
    completed: true,
  });
});

Deno.test("HttpServerProtocol builds URLs from the scheme, an absolute target, or the local address", async () => {
  const urls: string[] = [];
  const handler: HttpHandler = (request) => {
    urls.push(request.url);
    return new Response("ok");
  };
  await converse(
    server(handler, { scheme: "https" }),
    "GET /x HTTP/1.1\r\nHost: h\r\n\r\n" +
      "GET http://other.example/y HTTP/1.1\r\nHost: h\r\n\r\n" +
      "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n" +
      "GET /z HTTP/1.0\r\n\r\n",
  );
  assertEquals(urls, [
    "https://h/x",
    "http://other.example/y",
    "https://h/*",
    "https://127.0.0.1:40002/z",
  ]);
});

Deno.test("HttpServerProtocol reuses a connection's last URL only for the same target and Host bytes", async () => {
  const urls: string[] = [];
  const handler: HttpHandler = (request) => {
    urls.push(request.url);
    return new Response("ok");
  };
  await converse(
    server(handler),
    "GET /a HTTP/1.1\r\nHost: h\r\n\r\n" +
      "GET /a HTTP/1.1\r\nHost: h\r\n\r\n" +
      "GET /a HTTP/1.1\r\nHost: h2\r\n\r\n" +
      "GET /a HTTP/1.1\r\nX: 1\r\nHost: h2\r\n\r\n" +
      "GET /ah HTTP/1.1\r\nHost: 2\r\n\r\n" +
      "GET /a/./b HTTP/1.1\r\nHost: h\r\n\r\n" +
      "GET /%C3%A9 HTTP/1.1\r\nHost: h\r\n\r\n" +
      "GET /a/./b HTTP/1.0\r\n\r\n",
  );
  assertEquals(urls, [
    "http://h/a",
    "http://h/a",
    "http://h2/a",
    "http://h2/a",
    "http://0.0.0.2/ah",
    "http://h/a/b",
    "http://h/%C3%A9",
    "http://127.0.0.1:40002/a/b",
  ]);
});

Deno.test("HttpServerProtocol aborts request.signal and fails the body when the connection is lost", async () => {
  const loop = new VirtualTimeLoop();
  const peer = new Recorder(loop);
  const seen: { signal?: AbortSignal; failure?: unknown } = {};
  const handler: HttpHandler = async (request) => {
    seen.signal = request.signal;
    seen.failure = await assertRejects(() => request.text());
    return new Response("never sent");
  };
  transportPair(peer, new HttpServerProtocol(handler, { loop }), { loop });
  loop.callSoon(() =>
    peer.transport!.write(
      bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"),
    )
  );
  await loop.advance(1);
  peer.transport!.abort();
  await loop.advance(1);
  assertEquals(seen.signal?.aborted, true);
  assertInstanceOf(seen.failure, Error);
  loop.close();
});

Deno.test("HttpServerProtocol gives the same method and url before and after the Request is made", async () => {
  const handler: HttpHandler = (request) => {
    const before = `${request.method} ${request.url}`;
    const headers = request.headers; // Makes the real Request.
    return new Response(
      `${before} ${headers.get("host")} ${request.method} ${request.url}`,
    );
  };
  const c = await converse(
    server(handler),
    "patch /a/./p%41 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
  );
  assert(
    c.output.endsWith("patch http://h/a/p%41 h patch http://h/a/p%41"),
    c.output,
  );
});

Deno.test("HttpServerProtocol cancels a streamed body when the connection is lost", async () => {
  const loop = new VirtualTimeLoop();
  let cancelled: unknown = "no";
  let completed = false;
  const handler: HttpHandler = (_request, info) => {
    info.completed.then(() => completed = true);
    return new Response(
      new ReadableStream({
        async pull(c) {
          await sleep(0.1, undefined, { loop });
          c.enqueue(bytes("tick"));
        },
        cancel(reason) {
          cancelled = reason;
        },
      }),
    );
  };
  const peer = new Recorder(loop);
  transportPair(peer, new HttpServerProtocol(handler, { loop }), { loop });
  loop.callSoon(() =>
    peer.transport!.write(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
  );
  await loop.advance(1);
  assertStringIncludes(peer.text, "4\r\ntick\r\n");
  peer.transport!.abort();
  await loop.advance(1);
  assert(cancelled !== "no", "the body stream was cancelled");
  assert(completed, "info.completed resolved");
  loop.close();
});

Deno.test("HttpServerProtocol cancels a streamed body waiting on its producer when the connection is lost", async () => {
  // As Deno.serve does: the producer learns at once that nobody reads,
  // not at its next chunk, which may never come.
  const loop = new VirtualTimeLoop();
  let cancelled: unknown = "no";
  const handler: HttpHandler = () =>
    new Response(
      new ReadableStream({
        start(c) {
          c.enqueue(bytes("first"));
        },
        pull: () => new Promise(() => {}),
        cancel(reason) {
          cancelled = reason;
        },
      }),
    );
  const peer = new Recorder(loop);
  transportPair(peer, new HttpServerProtocol(handler, { loop }), { loop });
  loop.callSoon(() =>
    peer.transport!.write(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
  );
  await loop.advance(1);
  assertStringIncludes(peer.text, "5\r\nfirst\r\n");
  peer.transport!.abort();
  await loop.advance(1);
  assertInstanceOf(cancelled, Deno.errors.ConnectionReset);
  loop.close();
});

Deno.test("HttpServerProtocol stops reading requests while its answers are not read", async () => {
  const loop = new VirtualTimeLoop();
  const protocol = new HttpServerProtocol(hello, { loop });
  const peer = new Recorder(loop);
  // Deliveries of at most 8 KiB (see the streaming test above).
  const [, serverSide] = transportPair(peer, protocol, {
    loop,
    bufferSize: 1024,
    chunkSize: 8192,
  });
  const count = 3000;
  loop.callSoon(() => {
    peer.transport!.pauseReading();
    peer.transport!.write(
      bytes(
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(count - 1) +
          "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
      ),
    );
  });
  await loop.advance(1);
  assertEquals(serverSide.isReading(), false);
  assert(protocol.requestCount < count, `${protocol.requestCount} answered`);
  peer.transport!.resumeReading();
  await loop.runUntilComplete(peer.lost);
  assertEquals(protocol.requestCount, count);
  assertEquals([...peer.text.matchAll(/Hello, World!/g)].length, count);
  loop.close();
});

// ---- Back-pressure, timeouts, lingering close ----

const GET = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
const GET_CLOSE = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

Deno.test("HttpServerProtocol handles no pipelined request while paused for writing", async () => {
  const loop = new VirtualTimeLoop();
  let calls = 0;
  const answer = new Uint8Array(16 * 1024).fill(97);
  const handler: HttpHandler = () => {
    calls++;
    return new Response(answer);
  };
  const protocol = new HttpServerProtocol(handler, { loop });
  const peer = new Recorder(loop);
  const [, serverSide] = transportPair(peer, protocol, {
    loop,
    bufferSize: 1024,
    chunkSize: 8192,
  });
  const count = 2000;
  loop.callSoon(() => {
    peer.transport!.pauseReading();
    peer.transport!.write(bytes(GET.repeat(count - 1) + GET_CLOSE));
  });
  await loop.advance(1);
  // The high-water mark (64 KiB) plus the answer that crossed it.
  const size = serverSide.getWriteBufferSize();
  assert(size <= 64 * 1024 + 17 * 1024, `${size} bytes buffered`);
  assert(calls <= 6, `${calls} requests handled with nobody reading`);
  assertEquals(serverSide.isReading(), false);
  peer.transport!.resumeReading();
  await loop.runUntilComplete(peer.lost);
  assertEquals(calls, count);
  assertEquals(peer.text.split("HTTP/1.1 200 OK").length - 1, count);
  loop.close();
});

Deno.test("HttpServerProtocol does not count the time it is paused for writing as idle", async () => {
  const loop = new VirtualTimeLoop();
  const protocol = new HttpServerProtocol(hello, {
    loop,
    keepAliveTimeout: 2,
  });
  const peer = new Recorder(loop);
  transportPair(peer, protocol, { loop, bufferSize: 1024, chunkSize: 8192 });
  const count = 3000;
  loop.callSoon(() => {
    peer.transport!.pauseReading();
    peer.transport!.write(bytes(GET.repeat(count - 1) + GET_CLOSE));
  });
  // Ten keep-alive timeouts with nothing read.
  await loop.advance(20);
  assertEquals(peer.lostAt, -1, "the connection is still open");
  peer.transport!.resumeReading();
  await loop.runUntilComplete(peer.lost);
  assertEquals(protocol.requestCount, count);
  assertEquals([...peer.text.matchAll(/Hello, World!/g)].length, count);
  loop.close();
});

Deno.test("HttpServerProtocol closes an idle connection that never sent a byte after keepAliveTimeout", async () => {
  const c = await converse(server(hello, { keepAliveTimeout: 3 }), "");
  assertEquals(c.output, "");
  assert(c.closedAt >= 3 && c.closedAt <= 3.4, `${c.closedAt}`);
});

/** Sends `piece` every `every` seconds until the connection ends. */
function trickle(
  loop: VirtualTimeLoop,
  peer: Recorder,
  piece: string,
  every: number,
): void {
  const send = () => {
    if (peer.lostAt >= 0 || peer.transport!.isClosing()) return;
    peer.transport!.write(bytes(piece));
    loop.callLater(every, send);
  };
  loop.callLater(every, send);
}

Deno.test("HttpServerProtocol answers a malformed request line before the rest of its head", async () => {
  // An HTTP/0.9 client sends `GET /` and waits: it hears at once why it is
  // refused, not a 408 when headersTimeout ends.
  let called = false;
  const c = await converse(
    server(() => {
      called = true;
      return new Response("no");
    }, { headersTimeout: 10 }),
    "GET /\r\n",
  );
  assert(c.output.startsWith("HTTP/1.1 400 Bad Request\r\n"), c.output);
  assertStringIncludes(
    c.output,
    "the request line has no HTTP version (HTTP/0.9 is not supported)",
  );
  assert(c.closedAt < 1, `closed after ${c.closedAt} s`);
  assertEquals(called, false);
  assertEquals(c.errors, []);
});

Deno.test("HttpServerProtocol answers 408 to a head that takes longer than headersTimeout", async () => {
  let called = false;
  const c = await converse(
    server(() => {
      called = true;
      return new Response("no");
    }, { keepAliveTimeout: 2, headersTimeout: 10 }),
    "GET / HTTP/1.1\r\nHost: a\r\n",
    undefined,
    (loop, peer) => trickle(loop, peer, "x-a: b\r\n", 1),
  );
  assert(
    c.output.startsWith("HTTP/1.1 408 Request Timeout\r\n"),
    c.output,
  );
  assertStringIncludes(c.output, "connection: close\r\n");
  assert(c.closedAt >= 10 && c.closedAt <= 12, `${c.closedAt}`);
  assertEquals(called, false);
  assertEquals(c.errors, []);
});

Deno.test("HttpServerProtocol answers 408 to a body that takes longer than requestTimeout", async () => {
  let failure: unknown = null;
  const handler: HttpHandler = async (request) => {
    try {
      return new Response(await request.text());
    } catch (error) {
      failure = error;
      throw error;
    }
  };
  const c = await converse(
    server(handler, { requestTimeout: 20 }),
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n",
    undefined,
    (loop, peer) => trickle(loop, peer, "x", 2),
  );
  assert(
    c.output.startsWith("HTTP/1.1 408 Request Timeout\r\n"),
    c.output,
  );
  assertStringIncludes(c.output, "connection: close\r\n");
  assert(c.closedAt >= 20 && c.closedAt <= 23, `${c.closedAt}`);
  assert(failure !== null, "the handler's read of the body failed");
});

Deno.test("HttpServerProtocol aborts request.signal for a body past requestTimeout, however late the handler first reads it", async () => {
  // The same request's signal, whether read before the 408 or only after
  // (in the handler's catch of the failed body read), says the same.
  for (const early of [true, false]) {
    let signal: AbortSignal | null = null;
    const handler: HttpHandler = async (request) => {
      if (early) signal = request.signal;
      try {
        return new Response(await request.text());
      } catch (error) {
        signal ??= request.signal;
        throw error;
      }
    };
    await converse(
      server(handler, { requestTimeout: 20 }),
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n",
      undefined,
      (loop, peer) => trickle(loop, peer, "x", 2),
    );
    const reason = signal!.reason;
    assertEquals(signal!.aborted, true, `read early: ${early}`);
    assertEquals(reason.name, "AbortError");
    assertInstanceOf(reason.cause, HttpParseError);
    assertEquals(reason.cause.status, 408);
  }
});

Deno.test("HttpServerProtocol aborts a connection whose answer is not read for writeTimeout", async () => {
  for (const last of [GET, GET_CLOSE]) {
    const loop = new VirtualTimeLoop();
    const big = new Uint8Array(512 * 1024);
    const protocol = new HttpServerProtocol(() => new Response(big), {
      loop,
      writeTimeout: 10,
    });
    const peer = new Recorder(loop);
    transportPair(peer, protocol, { loop, bufferSize: 1024, chunkSize: 8192 });
    loop.callSoon(() => {
      peer.transport!.pauseReading();
      peer.transport!.write(bytes(last));
    });
    await loop.advance(60);
    assert(
      peer.lostAt >= 10 && peer.lostAt <= 12,
      `${JSON.stringify(last)}: lost at ${peer.lostAt}`,
    );
    loop.close();
  }
});

Deno.test("HttpServerProtocol keeps a slow reader's connection while it makes progress", async () => {
  const loop = new VirtualTimeLoop();
  const big = new Uint8Array(256 * 1024);
  const protocol = new HttpServerProtocol(() => new Response(big), {
    loop,
    writeTimeout: 4,
  });
  const peer = new Recorder(loop);
  transportPair(peer, protocol, { loop, bufferSize: 1024, chunkSize: 8192 });
  loop.callSoon(() => {
    peer.transport!.pauseReading();
    peer.transport!.write(bytes(GET_CLOSE));
  });
  // Read a little every 3 seconds: 30 s in all, never 4 s without progress.
  for (let i = 0; i < 10; i++) {
    await loop.advance(3);
    peer.transport!.resumeReading();
    await loop.advance(0);
    peer.transport!.pauseReading();
  }
  peer.transport!.resumeReading();
  await loop.runUntilComplete(peer.lost);
  assertEquals(peer.lostWith, undefined);
  assert(peer.text.length > 256 * 1024, `${peer.text.length} bytes`);
  loop.close();
});

// ---- What a client can make the server log ----

Deno.test("HttpServerProtocol reports the first handler failure of a connection and counts the rest", async () => {
  const failing: HttpHandler = () => {
    throw new Error("boom");
  };
  const c = await converse(
    server(failing),
    GET.repeat(999) + GET_CLOSE,
  );
  assertEquals(c.output.split("HTTP/1.1 500 ").length - 1, 1000);
  assertEquals(c.errors.length, 2);
  assertEquals(
    String(c.errors[1]),
    "HTTP connection: 999 problems were counted but not logged (1000 failures)",
  );
});

Deno.test("HttpServerProtocol logs no more than the loop's reserve plus what its clients sent", async () => {
  const loop = new VirtualTimeLoop();
  let logged = 0;
  let whole = 0;
  loop.setExceptionHandler((_loop, context) => {
    if (context.exception !== undefined) whole++;
    logged += PeerLog.sizeOf(context);
  });
  const failing: HttpHandler = () => {
    throw new Error("boom");
  };
  const connections = 400;
  let sent = 0;
  for (let i = 0; i < connections; i++) {
    const peer = new Recorder(loop);
    transportPair(peer, new HttpServerProtocol(failing, { loop }), { loop });
    loop.callSoon(() => peer.transport!.write(bytes(GET_CLOSE)));
    sent += GET_CLOSE.length;
    await loop.runUntilComplete(peer.lost);
    assertStringIncludes(peer.text, "HTTP/1.1 500 ");
  }
  await loop.advance(0);
  assert(
    logged <= PeerLog.RESERVE + sent,
    `${logged} bytes logged for ${sent}`,
  );
  // Past the reserve, a failure is told in a line no longer than the
  // request, without its stack.
  assert(whole < connections, `${whole} whole reports`);
  loop.close();
});

Deno.test("HttpServerProtocol reports nothing for malformed or late requests", async () => {
  for (
    const [input, options] of [
      ["GET / HTTP/1.1\r\nBad Header\r\n\r\n", {}],
      ["GET /\r\n\r\n", {}],
      [
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        {},
      ],
      ["GET / HTTP/1.1\r\nHost: a\r\n", { headersTimeout: 1 }],
    ] as const
  ) {
    const c = await converse(
      server(async (request) => new Response(await request.text()), options),
      input,
    );
    assertEquals(c.errors, [], input);
  }
});

// ---- Server shutdown ----

Deno.test("HttpServerProtocol.serverClosing() finishes the request in progress with Connection: close", async () => {
  const loop = new VirtualTimeLoop();
  const handler: HttpHandler = async () => {
    await sleep(1);
    return new Response("late");
  };
  const protocol = new HttpServerProtocol(handler, { loop });
  const peer = new Recorder(loop);
  transportPair(peer, protocol, { loop });
  loop.callSoon(() => peer.transport!.write(bytes(GET + GET)));
  await loop.advance(0.5);
  protocol.serverClosing();
  await loop.runUntilComplete(peer.lost);
  const answers = peer.text.split("HTTP/1.1 200 OK").length - 1;
  assertEquals(answers, 1, peer.text);
  assertStringIncludes(peer.text, "connection: close\r\n");
  assert(peer.text.endsWith("\r\n\r\nlate"), peer.text);
  assert(peer.lostAt < 2, `${peer.lostAt}`);
  loop.close();
});

Deno.test("HttpServerProtocol.serverClosing() before the connection is made closes it once made", async () => {
  const loop = new VirtualTimeLoop();
  const protocol = new HttpServerProtocol(hello, { loop });
  protocol.serverClosing();
  const peer = new Recorder(loop);
  transportPair(peer, protocol, { loop });
  await loop.runUntilComplete(peer.lost);
  assertEquals(peer.eof, true);
  assertEquals(peer.text, "");
  loop.close();
});

Deno.test("HttpServerProtocol answers a request held while writing was paused when the client's EOF comes before it is parsed", async () => {
  // The transport held the client's last bytes and its EOF while reading
  // was paused; resumeWriting() resumes reading, which delivers them
  // before the held request is parsed: the connection stays open for its
  // answer.
  const loop = new VirtualTimeLoop();
  const written: string[] = [];
  let closing = false;
  const write = (data: Uint8Array) => {
    if (closing) throw new Error("write after close()");
    written.push(new TextDecoder().decode(data));
  };
  const transport = {
    write,
    writelines: (list: Uint8Array[]) => list.forEach(write),
    writeEof() {
      closing = true;
    },
    canWriteEof: () => true,
    close() {
      closing = true;
    },
    isClosing: () => closing,
    abort() {
      closing = true;
    },
    pauseReading() {},
    resumeReading() {},
    getExtraInfo: () => undefined,
    getWriteBufferSize: () => 0,
  } as unknown as Transport;
  const p = new HttpServerProtocol(
    (request) => new Response(new URL(request.url).pathname),
    { loop },
  );
  p.connectionMade(transport);
  p.pauseWriting();
  p.dataReceived(bytes(
    "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
  ));
  p.resumeWriting();
  const keepOpen = p.eofReceived();
  if (!keepOpen) transport.close();
  await loop.advance(0);
  assertEquals(keepOpen, true);
  const output = written.join("");
  assertEquals(output.split("HTTP/1.1 200 OK").length - 1, 2, output);
  assert(output.endsWith("\r\n\r\n/b"), output);
  p.connectionLost();
  loop.close();
});
