// HttpServerProtocol against hostile requests over real sockets on
// 127.0.0.1: framing that could desynchronise it from a front proxy
// (RFC 9112 §6.1, §6.3, §7.1; RFC 9110 §8.6), malformed field lines (§5.1,
// §5.2, §2.2) and request lines (§3). Each request is followed, on its
// connection, by a pipelined `GET /next` and a `GET /last` with
// `Connection: close`: what the server answers shows where it thinks each
// request ends, and after a 4xx it must answer nothing more (the connection
// closes). Deno.serve (hyper) answers the same bytes alike, except where a
// case says otherwise.

import { assertEquals } from "@std/assert";
import { HttpServerProtocol } from "../../http/http_server_protocol.ts";
import { newEventLoop } from "../../loop/policy.ts";

const NEXT = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n" +
  "GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
/** The answers to NEXT. */
const REST = ["200 GET /next", "200 GET /last"];

/** A request with `fields` (after Host) and `body`, then NEXT. */
function post(fields: string, body = "", line = "POST / HTTP/1.1"): string {
  return `${line}\r\nHost: h\r\n${fields}\r\n${body}${NEXT}`;
}

const CHUNKED = "Transfer-Encoding: chunked\r\n";

/** [what, the bytes sent, the answers: status, then method, path, body]. */
const CASES: Array<[string, string, string[]]> = [
  // RFC 9112 §6.1, §6.3: framing.
  [
    "Transfer-Encoding and Content-Length",
    post(`Content-Length: 4\r\n${CHUNKED}`, "0\r\n\r\n"),
    ["400"],
  ],
  [
    "Content-Length and Transfer-Encoding",
    post(`${CHUNKED}Content-Length: 40\r\n`, "0\r\n\r\n"),
    ["400"],
  ],
  [
    "differing Content-Length fields",
    post("Content-Length: 3\r\nContent-Length: 4\r\n", "abcd"),
    ["400"],
  ],
  [
    "a list of differing Content-Length values",
    post("Content-Length: 3, 4\r\n", "abcd"),
    ["400"],
  ],
  [
    "equal Content-Length fields (RFC 9110 §8.6)",
    post("Content-Length: 4\r\nContent-Length: 4\r\n", "abcd"),
    ["200 POST / abcd", ...REST],
  ],
  [
    "Transfer-Encoding not ending in chunked",
    post("Transfer-Encoding: chunked, gzip\r\n", "0\r\n\r\n"),
    ["400"],
  ],
  [
    "Transfer-Encoding: gzip alone",
    post("Transfer-Encoding: gzip\r\n", "abcd"),
    ["400"],
  ],
  ["Transfer-Encoding: identity", post("Transfer-Encoding: identity\r\n"), [
    "400",
  ]],
  [
    "Transfer-Encoding: chunked, chunked",
    post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"),
    ["400"],
  ],
  ["Transfer-Encoding: chunked twice", post(CHUNKED + CHUNKED, "0\r\n\r\n"), [
    "400",
  ]],
  [
    "Transfer-Encoding: xchunked",
    post("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"),
    ["400"],
  ],
  [
    "Transfer-Encoding: chunked with a parameter",
    post("Transfer-Encoding: chunked;q=1\r\n", "0\r\n\r\n"),
    ["400"],
  ],
  [
    "Transfer-Encoding behind a vertical tab",
    post("Transfer-Encoding:\x0bchunked\r\n", "0\r\n\r\n"),
    ["400"],
  ],
  // Empty list elements are ignored (RFC 9110 §5.6.1; Node and
  // Deno.serve answer 400).
  [
    "Transfer-Encoding: chunked with an empty list element",
    post("Transfer-Encoding: chunked, \r\n", "4\r\nabcd\r\n0\r\n\r\n"),
    ["200 POST / abcd", ...REST],
  ],
  // A coding the server does not know before chunked: 501 (Deno.serve
  // takes the body as chunked and hands the handler the coded bytes).
  [
    "Transfer-Encoding: gzip, chunked",
    post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
    ["501"],
  ],
  [
    "HTTP/1.0 with Transfer-Encoding",
    post(CHUNKED, "4\r\nabcd\r\n0\r\n\r\n", "POST / HTTP/1.0"),
    ["400"],
  ],
  [
    "HTTP/1.0 with Transfer-Encoding and keep-alive",
    post(
      `Connection: keep-alive\r\n${CHUNKED}`,
      "4\r\nabcd\r\n0\r\n\r\n",
      "POST / HTTP/1.0",
    ),
    ["400"],
  ],
  ["Content-Length: +4", post("Content-Length: +4\r\n", "abcd"), ["400"]],
  ["Content-Length: -1", post("Content-Length: -1\r\n", "abcd"), ["400"]],
  ["Content-Length: 4.0", post("Content-Length: 4.0\r\n", "abcd"), ["400"]],
  ["Content-Length: 0x4", post("Content-Length: 0x4\r\n", "abcd"), ["400"]],
  ["Content-Length: 4 4", post("Content-Length: 4 4\r\n", "abcd"), ["400"]],
  ["an empty Content-Length", post("Content-Length: \r\n", "abcd"), ["400"]],
  [
    "Content-Length with whitespace around it",
    post("Content-Length:  4 \r\n", "abcd"),
    ["200 POST / abcd", ...REST],
  ],
  ["Content-Length: 04", post("Content-Length: 04\r\n", "abcd"), [
    "200 POST / abcd",
    ...REST,
  ]],
  // RFC 9110 §8.6 allows a list of equal values (Node and Deno.serve
  // answer 400).
  ["Content-Length: 4, 4", post("Content-Length: 4, 4\r\n", "abcd"), [
    "200 POST / abcd",
    ...REST,
  ]],
  // Past 2^53 a number loses its last digits (Deno.serve reads on).
  [
    "Content-Length past 2^53",
    post("Content-Length: 9007199254740993\r\n", "abcd"),
    ["400"],
  ],
  [
    "Content-Length past 2^64",
    post("Content-Length: 99999999999999999999999\r\n", "abcd"),
    ["400"],
  ],
  // RFC 9112 §7.1: chunks.
  ["a chunk size with +", post(CHUNKED, "+4\r\nabcd\r\n0\r\n\r\n"), ["400"]],
  ["a chunk size with 0x", post(CHUNKED, "0x4\r\nabcd\r\n0\r\n\r\n"), ["400"]],
  ["a chunk size after a space", post(CHUNKED, " 4\r\nabcd\r\n0\r\n\r\n"), [
    "400",
  ]],
  ["a negative chunk size", post(CHUNKED, "-4\r\nabcd\r\n0\r\n\r\n"), ["400"]],
  [
    "a chunk size past 2^64",
    post(CHUNKED, "10000000000000004\r\nabcd\r\n0\r\n\r\n"),
    ["400"],
  ],
  ["a chunk size ended by a bare LF", post(CHUNKED, "4\nabcd\r\n0\r\n\r\n"), [
    "400",
  ]],
  ["chunk data without CRLF after it", post(CHUNKED, "4\r\nabcdXX0\r\n\r\n"), [
    "400",
  ]],
  ["chunk data followed by a bare LF", post(CHUNKED, "4\r\nabcd\n0\r\n\r\n"), [
    "400",
  ]],
  ["chunk data longer than its size", post(CHUNKED, "2\r\nabcd\r\n0\r\n\r\n"), [
    "400",
  ]],
  [
    "a chunk size with leading zeros",
    post(CHUNKED, "0004\r\nabcd\r\n0\r\n\r\n"),
    ["200 POST / abcd", ...REST],
  ],
  // BWS before ";" is chunk-ext grammar (RFC 9112 §7.1.1; Node answers
  // 400), but a blank with no extension after it is not (Deno.serve
  // takes it).
  [
    "blanks before a chunk extension",
    post(CHUNKED, "4 \t;a\r\nabcd\r\n0\r\n\r\n"),
    ["200 POST / abcd", ...REST],
  ],
  [
    "a chunk size with a blank after it",
    post(CHUNKED, "4 \r\nabcd\r\n0\r\n\r\n"),
    [
      "400",
    ],
  ],
  ["a chunk extension", post(CHUNKED, "4;a=b\r\nabcd\r\n0\r\n\r\n"), [
    "200 POST / abcd",
    ...REST,
  ]],
  // Trailer fields never frame the message (RFC 9110 §6.5.1).
  [
    "a trailer Content-Length",
    post(CHUNKED, "4\r\nabcd\r\n0\r\nContent-Length: 10\r\n\r\n"),
    ["200 POST / abcd", ...REST],
  ],
  [
    "a trailer Transfer-Encoding",
    post(CHUNKED, "4\r\nabcd\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ["200 POST / abcd", ...REST],
  ],
  [
    "a trailer field with whitespace before its colon",
    post(CHUNKED, "4\r\nabcd\r\n0\r\nX : y\r\n\r\n"),
    ["400"],
  ],
  [
    "an obs-fold in the trailer section",
    post(CHUNKED, "4\r\nabcd\r\n0\r\nX: y\r\n z\r\n\r\n"),
    ["400"],
  ],
  // RFC 9112 §5.1, §5.2, §2.2: field lines.
  [
    "whitespace between a field name and its colon",
    post("Content-Length : 4\r\n", "abcd"),
    ["400"],
  ],
  [
    "a tab between a field name and its colon",
    post("Transfer-Encoding\t: chunked\r\n", "0\r\n\r\n"),
    ["400"],
  ],
  ["an obs-fold", post("X: a\r\n b\r\n"), ["400"]],
  [
    "an obs-fold continuing Content-Length",
    post("Content-Length:\r\n 4\r\n", "abcd"),
    ["400"],
  ],
  ["a bare CR in a field value", post("X: a\rb\r\n"), ["400"]],
  [
    "a request line ended by a bare CR",
    "GET / HTTP/1.1\rHost: h\r\n\r\n" + NEXT,
    ["400"],
  ],
  // Deno.serve takes a bare LF for CRLF; RFC 9112 §2.2 allows either.
  ["bare LF line ends", "GET / HTTP/1.1\nHost: h\n\n" + NEXT, ["400"]],
  ["a NUL in a field value", post("X: a\x00b\r\n"), ["400"]],
  ["a control byte in a field value", post("X: a\x01b\r\n"), ["400"]],
  ["DEL in a field value", post("X: a\x7fb\r\n"), ["400"]],
  ["a NUL in a field name", post("X\x00y: a\r\n"), ["400"]],
  ["a field name with a space", post("X Y: a\r\n"), ["400"]],
  ["a field line without a colon", post("Xyz\r\n"), ["400"]],
  ["a field with an empty name", post(": x\r\n"), ["400"]],
  // RFC 9112 §3: request lines.
  ["two spaces after the method", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n" + NEXT, [
    "400",
  ]],
  [
    "two spaces before the version",
    "GET /  HTTP/1.1\r\nHost: h\r\n\r\n" + NEXT,
    ["400"],
  ],
  ["a tab in the request line", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n" + NEXT, [
    "400",
  ]],
  ["a space after the version", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n" + NEXT, [
    "400",
  ]],
  // RFC 9110 §4.2.4: userinfo is not allowed (Deno.serve drops it).
  [
    "an absolute-form target with userinfo",
    "GET http://u:p@h/x HTTP/1.1\r\nHost: h\r\n\r\n" + NEXT,
    ["400"],
  ],
  [
    "an absolute-form target",
    "GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n" + NEXT,
    ["200 GET /x", ...REST],
  ],
  // A higher minor version is read as HTTP/1.1 (RFC 9110 §2.5; Node and
  // Deno.serve answer 400).
  ["HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n" + NEXT, [
    "200 GET /",
    ...REST,
  ]],
  // RFC 3986 has no '"' in a path (Node and Deno.serve percent-encode it).
  [
    "a double quote in the path",
    'GET /a"b HTTP/1.1\r\nHost: h\r\n\r\n' + NEXT,
    [
      "400",
    ],
  ],
  ["two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + NEXT, [
    "400",
  ]],
  // RFC 9112 §3.2: an HTTP/1.1 request without Host (Deno.serve serves it).
  ["no Host", "GET / HTTP/1.1\r\n\r\n" + NEXT, ["400"]],
  [
    "an empty line before the request line",
    "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n" + NEXT,
    ["200 GET /", ...REST],
  ],
  // Bytes the client sent as a body are not a request.
  [
    "Content-Length: 0 before a request",
    post("Content-Length: 0\r\n", "GET /x HTTP/1.1\r\nHost: h\r\n\r\n"),
    ["200 POST /", "200 GET /x", ...REST],
  ],
  [
    "a GET's Content-Length body",
    "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nGET " + NEXT,
    ["200 GET /", ...REST],
  ],
];

/** The answers in `text`: each one's status, and its body when 200. */
function answers(text: string): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf("\r\n\r\n", at);
    if (end < 0) {
      throw new Error(`a cut response: ${JSON.stringify(text.slice(at))}`);
    }
    const head = text.slice(at, end);
    const status = head.slice(9, 12);
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
    const body = text.slice(end + 4, end + 4 + length);
    at = end + 4 + length;
    out.push(status === "200" ? `${status} ${body}` : status);
  }
  return out;
}

/** Sends `request` on a new connection; reads to the end (within 5 s). */
async function exchange(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(Uint8Array.from(request, (c) => c.charCodeAt(0)));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(4096);
    const deadline = Date.now() + 5000;
    while (true) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        conn.read(buf),
        new Promise<"late">((resolve) => {
          timer = setTimeout(() => resolve("late"), deadline - Date.now());
        }),
      ]).finally(() => clearTimeout(timer));
      if (n === "late") {
        throw new Error("the server neither answered nor closed");
      }
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    return new TextDecoder().decode(
      Uint8Array.from(chunks.flatMap((c) => [...c])),
    );
  } finally {
    conn.close();
  }
}

Deno.test("HttpServerProtocol over TCP answers hostile requests as RFC 9112 demands, and closes after each 4xx", async () => {
  const loop = newEventLoop();
  const server = await loop.runUntilComplete(
    loop.createServer(
      () =>
        new HttpServerProtocol(async (request) => {
          const url = new URL(request.url);
          const body = await request.text();
          return new Response(
            `${request.method} ${url.pathname}${body === "" ? "" : " " + body}`,
          );
        }),
      "127.0.0.1",
      0,
    ),
  );
  const port = (server.addresses()[0] as Deno.NetAddr).port;
  try {
    for (const [what, request, expected] of CASES) {
      const text = await loop.runUntilComplete(exchange(port, request));
      assertEquals(answers(text), expected, what);
    }
  } finally {
    server.close();
    await loop.runUntilComplete(server.waitClosed());
    loop.close();
  }
});
