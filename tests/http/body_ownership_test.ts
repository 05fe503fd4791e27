// A body piece belongs to whoever reads it: a handler (or a client's
// reader, or a protocol over HttpTransport) may transfer its buffer or
// write into it, and the next message on the connection, the head of its
// own message, and the connection itself are unaffected.

import { assertEquals } from "@std/assert";
import { HttpClientProtocol } from "../../http/http_client_protocol.ts";
import {
  type HttpHandler,
  HttpServerProtocol,
} from "../../http/http_server_protocol.ts";
import { HttpTransport } from "../../http/http_transport.ts";
import { newEventLoop } from "../../loop/policy.ts";
import { Protocol } from "../../protocols/protocol.ts";
import { transportPair } from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import type { Transport } from "../../transports/transport.ts";
import { bytes, converse, text } from "./_http_helpers.ts";

/** What a reader may do to a piece once it has looked at it. */
const ABUSES: { name: string; abuse: (piece: Uint8Array) => void }[] = [
  {
    name: "structuredClone() transfer",
    abuse: (piece) => {
      structuredClone(piece, { transfer: [piece.buffer as ArrayBuffer] });
    },
  },
  {
    name: "ArrayBuffer.prototype.transfer()",
    abuse: (piece) => {
      (piece.buffer as ArrayBuffer).transfer();
    },
  },
  {
    name: "zeroing the piece",
    abuse: (piece) => piece.fill(0),
  },
  {
    name: "zeroing the piece's whole buffer",
    abuse: (piece) => new Uint8Array(piece.buffer).fill(0),
  },
];

/** The pieces' bytes as text, each looked at before `abuse` spoils it. */
async function readAbusing(
  body: ReadableStream<Uint8Array>,
  abuse: (piece: Uint8Array) => void,
): Promise<string> {
  let out = "";
  for await (const piece of body) {
    out += text(piece);
    abuse(piece);
  }
  return out;
}

/** Describes `body`: its length and the set of its characters. */
function describeBody(body: string): string {
  return `${body.length} ${[...new Set(body)].join("")}`;
}

/**
 * Answers with the request's path, `x-tag` and body, all read after the
 * body was read and each piece abused.
 */
function abusingHandler(abuse: (piece: Uint8Array) => void): HttpHandler {
  return async (request) => {
    const body = await readAbusing(request.body!, abuse);
    const path = new URL(request.url).pathname;
    const tag = request.headers.get("x-tag");
    return new Response(`${path} ${tag} ${describeBody(body)}`);
  };
}

const BODY_1 = "a".repeat(1500);
const BODY_2 = "b".repeat(1200);
const HEAD_1 =
  `POST /one HTTP/1.1\r\nHost: h\r\nX-Tag: first\r\nContent-Length: ${BODY_1.length}\r\n\r\n`;
const CHUNKED_1 =
  "POST /one HTTP/1.1\r\nHost: h\r\nX-Tag: first\r\nTransfer-Encoding: chunked\r\n\r\n" +
  `${BODY_1.length.toString(16)}\r\n${BODY_1}\r\n0\r\n\r\n`;
const REQUEST_2 =
  `POST /two HTTP/1.1\r\nHost: h\r\nX-Tag: second\r\nContent-Length: ${BODY_2.length}\r\nConnection: close\r\n\r\n${BODY_2}`;
const REQUESTS = [
  { name: "Content-Length", input: HEAD_1 + BODY_1 + REQUEST_2 },
  { name: "chunked", input: CHUNKED_1 + REQUEST_2 },
];
const ANSWERS = [
  `/one first ${describeBody(BODY_1)}`,
  `/two second ${describeBody(BODY_2)}`,
];

/** The bodies of the responses in `output`, in order. */
function answerBodies(output: string): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < output.length) {
    const end = output.indexOf("\r\n\r\n", at);
    if (end < 0) break;
    const head = output.slice(at, end);
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
    out.push(
      `${head.slice(9, 12)} ${output.slice(end + 4, end + 4 + length)}`,
    );
    at = end + 4 + length;
  }
  return out;
}

Deno.test("HttpServerProtocol lets a handler transfer or zero its body pieces while the next request waits in the same bytes", async () => {
  for (const { name, abuse } of ABUSES) {
    for (const { name: framing, input } of REQUESTS) {
      // Whole; and cut so that the end of the first body (over 512
      // bytes), the second head and the second body arrive together.
      const cut = input.indexOf("\r\n\r\n") + 4 + 300;
      for (
        const chunkSize of [undefined, [cut, input.length], [cut + 700, 1e6]]
      ) {
        const what = `${name}, ${framing}, split ${chunkSize ?? "none"}`;
        const c = await converse(
          (loop) => new HttpServerProtocol(abusingHandler(abuse), { loop }),
          input,
          { chunkSize },
        );
        assertEquals(c.errors, [], what);
        assertEquals(
          answerBodies(c.output),
          ANSWERS.map((a) => `200 ${a}`),
          what,
        );
      }
    }
  }
});

/** Reads from `conn` to its end, within 5 s. */
async function readAll(conn: Deno.Conn): Promise<string> {
  const chunks: string[] = [];
  const buf = new Uint8Array(4096);
  const deadline = Date.now() + 5000;
  const decoder = new TextDecoder();
  for (;;) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf),
      new Promise<"late">((resolve) => {
        timer = setTimeout(() => resolve("late"), deadline - Date.now());
      }),
    ]).finally(() => clearTimeout(timer));
    if (n === "late") throw new Error("the server neither answered nor closed");
    if (n === null) break;
    chunks.push(decoder.decode(buf.subarray(0, n), { stream: true }));
  }
  return chunks.join("");
}

Deno.test("HttpServerProtocol over TCP lets a handler transfer or zero its body pieces while the next request waits in the same read", async () => {
  const loop = newEventLoop();
  const cases: { abuse: typeof ABUSES[number]; request: string }[] = [];
  let current = ABUSES[0].abuse;
  const server = await loop.runUntilComplete(
    loop.createServer(
      () => new HttpServerProtocol(abusingHandler((p) => current(p))),
      "127.0.0.1",
      0,
    ),
  );
  const port = (server.addresses()[0] as Deno.NetAddr).port;
  for (const abuse of ABUSES) {
    for (const { input } of REQUESTS) cases.push({ abuse, request: input });
  }
  try {
    for (const { abuse, request } of cases) {
      // Sent whole, then cut: the first body's last 700 bytes come with
      // the second request (a pause lets the first part be read alone).
      for (const cut of [0, request.indexOf(BODY_1) + BODY_1.length - 700]) {
        current = abuse.abuse;
        const what = `${abuse.name}, cut at ${cut}`;
        const output = await loop.runUntilComplete((async () => {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          try {
            if (cut > 0) {
              await conn.write(bytes(request.slice(0, cut)));
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
            await conn.write(bytes(request.slice(cut)));
            return await readAll(conn);
          } finally {
            conn.close();
          }
        })());
        assertEquals(
          answerBodies(output),
          ANSWERS.map((a) => `200 ${a}`),
          what,
        );
      }
    }
  } finally {
    server.close();
    await loop.runUntilComplete(server.waitClosed());
    loop.close();
  }
});

/** Answers with `answer` once it has received `until`. */
class FakeServer extends Protocol {
  transport: Transport | null = null;
  #received = "";
  #answered = false;
  constructor(readonly answer: string, readonly until: string) {
    super();
  }
  override connectionMade(transport: Transport): void {
    this.transport = transport;
  }
  override dataReceived(data: Uint8Array): void {
    this.#received += text(data);
    if (this.#answered || !this.#received.includes(this.until)) return;
    this.#answered = true;
    this.transport!.write(bytes(this.answer));
  }
}

const RESPONSE_BODY_1 = "c".repeat(1500);
const RESPONSE_BODY_2 = "d".repeat(1200);
/** Two responses sent together, the second's body and head after the first. */
const RESPONSES = "HTTP/1.1 200 OK\r\nX-Tag: first\r\n" +
  `Content-Length: ${RESPONSE_BODY_1.length}\r\n\r\n${RESPONSE_BODY_1}` +
  "HTTP/1.1 200 OK\r\nX-Tag: second\r\n" +
  `Content-Length: ${RESPONSE_BODY_2.length}\r\n\r\n${RESPONSE_BODY_2}`;

Deno.test("HttpClientProtocol lets a reader transfer or zero its body pieces while the next response came in the same bytes", async () => {
  for (const { name, abuse } of ABUSES) {
    const cut = RESPONSES.indexOf(RESPONSE_BODY_1) + 300;
    for (const chunkSize of [undefined, [cut, 1e6]]) {
      const what = `${name}, split ${chunkSize ?? "none"}`;
      const loop = new VirtualTimeLoop();
      try {
        const client = new HttpClientProtocol({ loop });
        // Both requests are sent before the server answers them at once.
        transportPair(client, new FakeServer(RESPONSES, "/two"), {
          loop,
          chunkSize,
        });
        await loop.advance(0);
        const result = await loop.runUntilComplete((async () => {
          const first = client.request(new Request("http://h/one"));
          const second = client.request(new Request("http://h/two"));
          const out: string[] = [];
          for (const pending of [first, second]) {
            const response = await pending;
            const body = await readAbusing(response.body!, abuse);
            out.push(
              `${response.status} ${response.headers.get("x-tag")} ${
                describeBody(body)
              }`,
            );
          }
          return out;
        })());
        assertEquals(result, [
          `200 first ${describeBody(RESPONSE_BODY_1)}`,
          `200 second ${describeBody(RESPONSE_BODY_2)}`,
        ], what);
        client.close();
        await loop.advance(1);
      } finally {
        loop.close();
      }
    }
  }
});

/** Records what it receives over an HttpTransport, abusing each piece. */
class Abuser extends Protocol {
  received = "";
  constructor(readonly abuse: (piece: Uint8Array) => void) {
    super();
  }
  override dataReceived(data: Uint8Array): void {
    this.received += text(data);
    this.abuse(data);
  }
}

Deno.test("HttpTransport lets its protocol transfer or zero what dataReceived() gives it", async () => {
  for (const { name, abuse } of ABUSES) {
    const loop = new VirtualTimeLoop();
    try {
      const client = new HttpClientProtocol({ loop });
      transportPair(client, new FakeServer(RESPONSES, "x2"), { loop });
      await loop.advance(0);
      const transport = new HttpTransport(client, { path: "/t", loop });
      const protocol = new Abuser(abuse);
      transport.setProtocol(protocol);
      protocol.connectionMade(transport);
      transport.write(bytes("x1"));
      await loop.advance(0);
      transport.write(bytes("x2"));
      await loop.advance(1);
      assertEquals(
        describeBody(protocol.received),
        describeBody(RESPONSE_BODY_1 + RESPONSE_BODY_2),
        name,
      );
      transport.close();
      client.close();
      await loop.advance(1);
    } finally {
      loop.close();
    }
  }
});

/** Notes the buffers its transport hands it. */
class Noting extends HttpServerProtocol {
  readonly received = new Set<ArrayBufferLike>();
  override dataReceived(data: Uint8Array): void {
    this.received.add(data.buffer);
    super.dataReceived(data);
  }
}

Deno.test("HttpServerProtocol hands a body read that fills a buffer of its own to the handler without copying it", async () => {
  const head = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4096\r\n" +
    "Connection: close\r\n\r\n";
  let protocol: Noting | null = null;
  const c = await converse(
    (loop) =>
      protocol = new Noting(async (request) => {
        const seen: string[] = [];
        for await (const piece of request.body!) {
          seen.push(`${piece.length} ${protocol!.received.has(piece.buffer)}`);
          (piece.buffer as ArrayBuffer).transfer();
        }
        return new Response(seen.join(","));
      }, { loop }),
    head,
    // The body comes in a read of its own, as in a bulk upload.
    { chunkSize: [head.length, 4096] },
    (_loop, peer) => peer.transport!.write(new Uint8Array(4096).fill(7)),
  );
  assertEquals(answerBodies(c.output), ["200 4096 true"]);
});
