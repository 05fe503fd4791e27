// HttpClientProtocol against a raw server on 127.0.0.1 that writes what
// each test tells it: slow readers, credentials in URLs, statuses out of
// range, and broken or hostile responses.

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { TimeoutError } from "../../futures/errors.ts";
import { HttpParseError } from "../../http/_http_parser.ts";
import {
  HttpClientProtocol,
  type HttpClientProtocolOptions,
} from "../../http/http_client_protocol.ts";
import type { EventLoop } from "../../loop/event_loop.ts";
import { newEventLoop } from "../../loop/policy.ts";
import { sleep } from "../../tasks/sleep.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import { bytes, text } from "./_http_helpers.ts";

/** Writes all of `data` to `conn`. */
async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let at = 0;
  while (at < data.length) at += await conn.write(data.subarray(at));
}

/** Reads from `conn` until `end` is seen (or the peer closes). */
async function readUntil(conn: Deno.Conn, end = "\r\n\r\n"): Promise<string> {
  const buffer = new Uint8Array(4096);
  let got = "";
  while (!got.includes(end)) {
    const n = await conn.read(buffer);
    if (n === null) break;
    got += text(buffer.subarray(0, n));
  }
  return got;
}

/**
 * A client connected to a raw server on 127.0.0.1 that runs `serve` on its
 * one connection; `test` runs with both, then everything is closed. The
 * server's errors once the client is gone (a broken pipe) are ignored.
 */
async function withServer(
  serve: (conn: Deno.Conn) => Promise<void>,
  test: (client: HttpClientProtocol, loop: EventLoop) => Promise<void>,
  options: HttpClientProtocolOptions = {},
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    try {
      await serve(conn);
      // Waits for the client to close.
      while ((await conn.read(new Uint8Array(4096))) !== null);
    } catch {
      // The client closed or aborted first.
    } finally {
      conn.close();
    }
  })();
  const loop = newEventLoop();
  try {
    const [, client] = await loop.runUntilComplete(
      loop.createConnection(
        () => new HttpClientProtocol(options),
        "127.0.0.1",
        (listener.addr as Deno.NetAddr).port,
      ),
    );
    try {
      await test(client, loop);
    } finally {
      client.close();
      await loop.runUntilComplete(waitFor(client.waitClosed(), 5));
    }
  } finally {
    loop.close();
    listener.close();
    await served;
  }
}

/** A response head with a `Content-Length` of `size`, and its body. */
function sized(size: number, fill = 120): Uint8Array {
  const head = bytes(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`);
  const all = new Uint8Array(head.length + size).fill(fill);
  all.set(head);
  return all;
}

// ---- A slow reader is no silent server ----

Deno.test("HttpClientProtocol over TCP: a reader that waits longer than bodyTimeout still gets the whole body", async () => {
  const size = 4 * 1024 * 1024;
  await withServer(
    async (conn) => {
      await readUntil(conn);
      await writeAll(conn, sized(size));
    },
    async (client, loop) => {
      const response = await loop.runUntilComplete(
        client.request(new Request("http://h/")),
      );
      await loop.runUntilComplete(sleep(1, undefined, { loop }));
      const body = await loop.runUntilComplete(response.arrayBuffer());
      assertEquals(body.byteLength, size);
    },
    { bodyTimeout: 0.3, headersTimeout: 0.3 },
  );
});

/**
 * Answers /a and /b, pipelined: all but the end of the first body (of
 * `first` bytes of "a"), read at once (under 64 KiB); then its last
 * bytes, which take it over 64 KiB and end it, in the same read as (the
 * start of) the second response (`second` bytes of "b").
 */
async function endFirstWithSecond(
  conn: Deno.Conn,
  first: number,
  second: number,
): Promise<void> {
  await readUntil(conn, "/b HTTP/1.1\r\nhost: h\r\n\r\n");
  const a = sized(first, 97);
  const cut = a.length - 200;
  await writeAll(conn, a.subarray(0, cut));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const b = sized(second, 98);
  const rest = new Uint8Array(a.length - cut + b.length);
  rest.set(a.subarray(cut));
  rest.set(b, a.length - cut);
  await writeAll(conn, rest);
}

Deno.test("HttpClientProtocol over TCP: a pipelined response waiting behind an unread body is not timed out", async () => {
  // The first body ends while it waits unread over 64 KiB: reading stays
  // paused for it, so the second response cannot come, and its timers
  // must not run.
  const first = 64 * 1024 + 100;
  const second = 1024 * 1024;
  await withServer(
    (conn) => endFirstWithSecond(conn, first, second),
    async (client, loop) => {
      const a = client.request(new Request("http://h/a"));
      const b = client.request(new Request("http://h/b"));
      const ra = await loop.runUntilComplete(a);
      await loop.runUntilComplete(sleep(1, undefined, { loop }));
      const bodyA = new Uint8Array(
        await loop.runUntilComplete(ra.arrayBuffer()),
      );
      assertEquals(bodyA.length, first);
      assert(bodyA.every((x) => x === 97));
      const rb = await loop.runUntilComplete(b);
      const bodyB = new Uint8Array(
        await loop.runUntilComplete(rb.arrayBuffer()),
      );
      assertEquals(bodyB.length, second);
      assert(bodyB.every((x) => x === 98));
    },
    { bodyTimeout: 0.3, headersTimeout: 0.3 },
  );
});

Deno.test("HttpClientProtocol over TCP: the body behind an ended unread one can be read first", async () => {
  // The first body ends over 64 KiB unread in the same read as the second
  // response's head: the second body is read first, then the first.
  const first = 64 * 1024 + 100;
  const second = 1024 * 1024;
  await withServer(
    (conn) => endFirstWithSecond(conn, first, second),
    async (client, loop) => {
      const a = client.request(new Request("http://h/a"));
      const b = client.request(new Request("http://h/b"));
      const ra = await loop.runUntilComplete(a);
      const rb = await loop.runUntilComplete(waitFor(b, 5));
      const bodyB = new Uint8Array(
        await loop.runUntilComplete(waitFor(rb.arrayBuffer(), 5, { loop })),
      );
      assertEquals(bodyB.length, second);
      assert(bodyB.every((x) => x === 98));
      const bodyA = new Uint8Array(
        await loop.runUntilComplete(ra.arrayBuffer()),
      );
      assertEquals(bodyA.length, first);
      assert(bodyA.every((x) => x === 97));
    },
    { bodyTimeout: 0.3, headersTimeout: 0.3 },
  );
});

Deno.test("HttpClientProtocol over TCP: a server that stalls mid-body while the reader waits still times out", async () => {
  const stop = Promise.withResolvers<void>();
  await withServer(
    async (conn) => {
      await readUntil(conn);
      await writeAll(
        conn,
        bytes("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nabc"),
      );
      await stop.promise;
    },
    async (client, loop) => {
      const response = await loop.runUntilComplete(
        client.request(new Request("http://h/")),
      );
      try {
        await assertRejects(
          () => loop.runUntilComplete(response.arrayBuffer()),
          TimeoutError,
          "no body bytes came for bodyTimeout (0.2 s)",
        );
      } finally {
        stop.resolve();
      }
    },
    { bodyTimeout: 0.2 },
  );
});

// ---- A body left unread holds up no one for ever ----

Deno.test("HttpClientProtocol over TCP drops a body left unread for unreadBodyTimeout while a request waits behind it, and closes", async () => {
  // The first body (1 MiB) is never read: over 64 KiB unread, reading
  // pauses, so the second response cannot come. Nobody cancels the body
  // (its Response was dropped, or its reader let go of it): it is taken
  // as abandoned, as a cancelled one is.
  const size = 1024 * 1024;
  await withServer(
    async (conn) => {
      await readUntil(conn, "/b HTTP/1.1\r\nhost: h\r\n\r\n");
      await writeAll(conn, sized(size, 97));
      await writeAll(conn, sized(2, 98));
    },
    async (client, loop) => {
      const a = client.request(new Request("http://h/a"));
      const b = client.request(new Request("http://h/b"));
      const ra = await loop.runUntilComplete(a);
      const started = loop.time();
      const error = await assertRejects(
        () => loop.runUntilComplete(waitFor(b, 5, { loop })),
        Deno.errors.ConnectionReset,
      );
      const waited = loop.time() - started;
      assert(waited >= 0.25 && waited < 2, `waited ${waited} s`);
      assertStringIncludes(error.message, "unreadBodyTimeout (0.3 s)");
      assertInstanceOf(error.cause, TimeoutError);
      await assertRejects(
        () => loop.runUntilComplete(ra.arrayBuffer()),
        TimeoutError,
        "its reader took nothing of it for unreadBodyTimeout (0.3 s)",
      );
      await loop.runUntilComplete(waitFor(client.waitClosed(), 5));
    },
    { unreadBodyTimeout: 0.3 },
  );
});

Deno.test("HttpClientProtocol over TCP lets an ended body left unread stop holding up the response behind it after unreadBodyTimeout, and keeps it readable", async () => {
  // The first body ends over 64 KiB unread before the second response is
  // sent: reading stays paused for it until a body is read, or until
  // unreadBodyTimeout; its bytes have all come, so it is kept.
  const first = 64 * 1024 + 100;
  await withServer(
    async (conn) => {
      await readUntil(conn, "/b HTTP/1.1\r\nhost: h\r\n\r\n");
      // All but its last bytes (under 64 KiB), then those, which take it
      // over 64 KiB and end it; then the second response.
      const a = sized(first, 97);
      const cut = a.length - 200;
      await writeAll(conn, a.subarray(0, cut));
      await new Promise((resolve) => setTimeout(resolve, 100));
      await writeAll(conn, a.subarray(cut));
      await new Promise((resolve) => setTimeout(resolve, 100));
      await writeAll(conn, sized(2, 98));
    },
    async (client, loop) => {
      const a = client.request(new Request("http://h/a"));
      const b = client.request(new Request("http://h/b"));
      const ra = await loop.runUntilComplete(a);
      const rb = await loop.runUntilComplete(waitFor(b, 5, { loop }));
      assertEquals(await loop.runUntilComplete(rb.text()), "bb");
      const bodyA = new Uint8Array(
        await loop.runUntilComplete(ra.arrayBuffer()),
      );
      assertEquals(bodyA.length, first);
      assert(bodyA.every((x) => x === 97));
      assert(client.transport !== null, "the connection is kept");
    },
    { unreadBodyTimeout: 0.3 },
  );
});

Deno.test("HttpClientProtocol over TCP times no body left unread while nothing waits behind it, nor one whose reader keeps reading", async () => {
  const size = 512 * 1024;
  await withServer(
    async (conn) => {
      await readUntil(conn, "/a HTTP/1.1\r\nhost: h\r\n\r\n");
      await writeAll(conn, sized(size, 97));
      await readUntil(conn, "/b HTTP/1.1\r\nhost: h\r\n\r\n");
      await writeAll(conn, sized(2, 98));
    },
    async (client, loop) => {
      const ra = await loop.runUntilComplete(
        client.request(new Request("http://h/a")),
      );
      // Alone: unread for longer than the timeout.
      await loop.runUntilComplete(sleep(0.6, undefined, { loop }));
      const b = client.request(new Request("http://h/b"));
      // With a request behind: read slowly, a piece every 0.1 s.
      const reader = ra.body!.getReader();
      let got = 0;
      for (;;) {
        const { done, value } = await loop.runUntilComplete(reader.read());
        if (done) break;
        got += value.length;
        await loop.runUntilComplete(sleep(0.1, undefined, { loop }));
      }
      assertEquals(got, size);
      const rb = await loop.runUntilComplete(waitFor(b, 5, { loop }));
      assertEquals(await loop.runUntilComplete(rb.text()), "bb");
    },
    { unreadBodyTimeout: 0.3 },
  );
});

// ---- Credentials ----

Deno.test("HttpClientProtocol over TCP sends a URL's credentials in place of an empty Authorization field, and an empty one as it is without them", async () => {
  // Deno's fetch() sends the credentials and the empty field both; Go's
  // client replaces the empty field. Either way the credentials go.
  const cases: Array<[string, string[]]> = [
    ["http://us%40r:pw@h/", ["authorization: Basic " + btoa("us@r:pw")]],
    ["http://h/", ["authorization: "]],
  ];
  for (const [url, expected] of cases) {
    let head = "";
    await withServer(
      async (conn) => {
        head = await readUntil(conn);
        await writeAll(conn, bytes("HTTP/1.1 204 No Content\r\n\r\n"));
      },
      async (client, loop) => {
        const response = await loop.runUntilComplete(
          client.request(
            new Request(url, { headers: { authorization: "" } }),
          ),
        );
        assertEquals(response.status, 204);
      },
    );
    const fields = head.split("\r\n").filter((line) =>
      line.toLowerCase().startsWith("authorization:")
    );
    assertEquals(fields, expected, url);
  }
});

// ---- Broken responses ----

/**
 * Hostile responses, each sent whole to a GET, and what the client makes
 * of it: the response (status, a header, body) or its error. Deno's
 * fetch() (hyper) was run against each: it agrees on each error (it
 * fails them all, with "invalid HTTP header parsed", "invalid
 * content-length parsed" or an error reading the body), except where
 * noted.
 */
const BROKEN: Array<
  [name: string, response: string, expected: string]
> = [
  [
    "a NUL in a field value",
    "HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 2\r\n\r\nok",
    'the value of field "X" has an invalid byte 0x00',
  ],
  [
    "a CR in a field value",
    "HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 2\r\n\r\nok",
    'the value of field "X" has an invalid byte 0x0d',
  ],
  [
    "Content-Length twice, differing",
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk",
    "Content-Length has differing values",
  ],
  [
    "a Content-Length list, differing",
    "HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nokk",
    "Content-Length has differing values",
  ],
  [
    // fetch() reads it as chunked (RFC 9112 §6.3 says to handle it as an
    // error: a sign of smuggling).
    "Transfer-Encoding and Content-Length",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "a message has both Content-Length and Transfer-Encoding",
  ],
  [
    "a negative Content-Length",
    "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok",
    'Content-Length is not a number of bytes, received "-1"',
  ],
  [
    "a huge Content-Length",
    "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nok",
    "Content-Length is too large",
  ],
  [
    "a chunk size past 2^53",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\nok\r\n0\r\n\r\n",
    "a chunk size is too large",
  ],
  [
    "a negative chunk size",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nok\r\n0\r\n\r\n",
    "a chunk size is not a hex number",
  ],
  [
    // fetch() reads it once.
    "chunked twice",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "chunked is applied more than once",
  ],
  [
    "a NUL in the reason phrase",
    "HTTP/1.1 200 O\0K\r\nContent-Length: 2\r\n\r\nok",
    "the reason phrase has an invalid byte",
  ],
  [
    "HTTP/2.0",
    "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "only HTTP/1.x is supported",
  ],
  [
    "a body cut short by the close",
    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok",
    "with 8 body bytes of its Content-Length still due",
  ],
  [
    // fetch() fails it too (hyper rejects obs-fold); RFC 9112 §5.2 lets a
    // user agent unfold it.
    "a folded field",
    "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
    '200 x="a   b" ok',
  ],
  [
    "2000 1xx responses",
    "HTTP/1.1 100 Continue\r\n\r\n".repeat(2000) +
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "200 x=null ok",
  ],
  [
    "a Content-Length in a trailer",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nContent-Length: 5\r\n\r\n",
    "200 x=null ok",
  ],
  [
    // fetch() reads it too (RFC 9112 §2.2 lets a recipient take a bare LF
    // for a line end), as does Go's client.
    "bare LF line ends in the head",
    "HTTP/1.1 200 OK\nX: a\nContent-Length: 2\n\nok",
    '200 x="a" ok',
  ],
  [
    "a bare LF ending one field line",
    "HTTP/1.1 200 OK\r\nX: a\nContent-Length: 2\r\n\r\nok",
    '200 x="a" ok',
  ],
  [
    "a bare CR ending the status line",
    "HTTP/1.1 200 OK\rContent-Length: 2\r\n\r\nok",
    "the reason phrase has an invalid byte",
  ],
  [
    "a CR CR LF line end",
    "HTTP/1.1 200 OK\r\nX: a\r\r\nContent-Length: 2\r\n\r\nok",
    'the value of field "X" has an invalid byte 0x0d',
  ],
  [
    // fetch() too requires CRLF in chunked framing.
    "a chunk-size line ended by a bare LF",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n",
    "a chunk-size line ends with a bare LF",
  ],
  [
    "chunk data followed by a bare LF",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\n0\r\n\r\n",
    "chunk data is not followed by CRLF",
  ],
  [
    "obs-text in a field value",
    "HTTP/1.1 200 OK\r\nX: a\xe9b\r\nContent-Length: 2\r\n\r\nok",
    '200 x="a\xe9b" ok',
  ],
];

Deno.test("HttpClientProtocol over TCP fails broken responses with an HttpParseError naming the fault, and closes", async () => {
  for (const [name, response, expected] of BROKEN) {
    let outcome = "";
    await withServer(
      async (conn) => {
        await readUntil(conn);
        await writeAll(conn, Uint8Array.from(response, (c) => c.charCodeAt(0)));
        // A body cut short ends with the close.
        if (name.includes("cut short")) await conn.closeWrite();
      },
      async (client, loop) => {
        try {
          outcome = await loop.runUntilComplete((async () => {
            const r = await client.request(new Request("http://h/"));
            return `${r.status} x=${
              JSON.stringify(r.headers.get("x"))
            } ${await r
              .text()}`;
          })());
        } catch (error) {
          assertInstanceOf(error, HttpParseError, name);
          outcome = (error as Error).message;
          await loop.runUntilComplete(waitFor(client.waitClosed(), 5));
        }
      },
      { headersTimeout: 5, bodyTimeout: 5 },
    );
    assertStringIncludes(outcome, expected, name);
  }
});

Deno.test("HttpClientProtocol over TCP gives back a response that comes before the request body is sent, as fetch() does", async () => {
  // The server refuses the body at its head (413) and closes its side
  // without reading it: a streamed body stops, and a body held in memory
  // (more than the socket buffers take) does not hide the answer.
  const bodies: Array<[string, () => BodyInit]> = [
    ["a streamed body", () => {
      let n = 0;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          await new Promise((resolve) => setTimeout(resolve, 2));
          if (++n > 500) controller.close();
          else controller.enqueue(new Uint8Array(1024));
        },
      });
    }],
    ["a body in memory", () => new Uint8Array(8 * 1024 * 1024)],
  ];
  for (const [name, body] of bodies) {
    await withServer(
      async (conn) => {
        await readUntil(conn);
        await writeAll(
          conn,
          bytes(
            "HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope",
          ),
        );
        await conn.closeWrite();
      },
      async (client, loop) => {
        const response = await loop.runUntilComplete(
          client.request(
            new Request("http://h/", {
              method: "POST",
              body: body(),
              duplex: "half",
            } as RequestInit),
          ),
        );
        assertEquals(response.status, 413, name);
        assertEquals(await loop.runUntilComplete(response.text()), "nope");
        await loop.runUntilComplete(waitFor(client.waitClosed(), 5));
      },
      { headersTimeout: 5, bodyTimeout: 5 },
    );
  }
});
