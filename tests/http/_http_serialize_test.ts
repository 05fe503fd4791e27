import { assertEquals, assertNotStrictEquals, assertThrows } from "@std/assert";
import {
  chunkHeader,
  CRLF,
  serializeRequestHead,
  serializeResponseHead,
  statusText,
} from "../../http/_http_serialize.ts";
import {
  type HttpHeaderList,
  type HttpRequestHead,
  HttpRequestParser,
  type HttpResponseHead,
  HttpResponseParser,
} from "../../http/_http_parser.ts";

/** Decodes one character per byte, so tests see exactly what was written. */
function latin1(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return s;
}

function ascii(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Parses one request and returns its head, body and trailers. */
function parseRequest(data: Uint8Array) {
  const heads: HttpRequestHead[] = [];
  let body = "";
  const trailers: Array<HttpHeaderList | null> = [];
  const p = new HttpRequestParser({
    onHead(h) {
      heads.push(h);
    },
    onBody(c) {
      body += latin1(c);
    },
    onMessageComplete(t) {
      trailers.push(t);
    },
    onError(e) {
      throw e;
    },
  });
  p.feed(data);
  assertEquals(heads.length, 1);
  assertEquals(trailers.length, 1);
  return { head: heads[0], body, trailers: trailers[0] };
}

// ---------------------------------------------------------------------------
// serializeResponseHead
// ---------------------------------------------------------------------------

Deno.test("serializeResponseHead() writes the status line, fields and empty line", () => {
  const out = serializeResponseHead({
    status: 200,
    headers: [["Content-Type", "text/plain"], ["Content-Length", "5"]],
  });
  assertEquals(
    latin1(out),
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n",
  );
});

Deno.test("serializeResponseHead() uses the given reason, even an empty one", () => {
  assertEquals(
    latin1(serializeResponseHead({ status: 404, reason: "Nothing Here" })),
    "HTTP/1.1 404 Nothing Here\r\n\r\n",
  );
  assertEquals(
    latin1(serializeResponseHead({ status: 404, reason: "" })),
    "HTTP/1.1 404 \r\n\r\n",
  );
  assertEquals(
    latin1(serializeResponseHead({ status: 599 })),
    "HTTP/1.1 599 \r\n\r\n",
  );
});

Deno.test("serializeResponseHead() takes a Headers object", () => {
  const headers = new Headers({ "X-A": "1" });
  headers.append("Set-Cookie", "a=1");
  headers.append("Set-Cookie", "b=2");
  assertEquals(
    latin1(serializeResponseHead({ status: 201, headers })),
    "HTTP/1.1 201 Created\r\nset-cookie: a=1\r\nset-cookie: b=2\r\nx-a: 1\r\n\r\n",
  );
});

Deno.test("serializeResponseHead() writes Latin-1 text one byte per character", () => {
  const out = serializeResponseHead({
    status: 200,
    reason: "D\xe9j\xe0 vu",
    headers: [["X-Name", "caf\xe9 \xff"]],
  });
  assertEquals(
    Array.from(out.subarray(13, 20)),
    [0x44, 0xe9, 0x6a, 0xe0, 0x20, 0x76, 0x75],
  );
  assertEquals(
    latin1(out),
    "HTTP/1.1 200 D\xe9j\xe0 vu\r\nX-Name: caf\xe9 \xff\r\n\r\n",
  );
});

Deno.test("serializeResponseHead() returns a fresh buffer every time", () => {
  const a = serializeResponseHead({ status: 200 });
  const b = serializeResponseHead({ status: 200 });
  assertNotStrictEquals(a, b);
  a[0] = 0;
  assertEquals(latin1(b), "HTTP/1.1 200 OK\r\n\r\n");
});

Deno.test("serializeResponseHead() output reads back through HttpResponseParser", () => {
  const heads: HttpResponseHead[] = [];
  const p = new HttpResponseParser({
    onHead(h) {
      heads.push(h);
    },
    onBody() {},
    onMessageComplete() {},
    onError(e) {
      throw e;
    },
  });
  p.expectResponse("GET");
  p.feed(serializeResponseHead({
    status: 418,
    headers: [["Content-Length", "0"], ["X-Tea", "earl grey"]],
  }));
  assertEquals(heads.length, 1);
  assertEquals(heads[0].status, 418);
  assertEquals(heads[0].reason, "I'm a teapot");
  assertEquals(heads[0].headers.get("x-tea"), "earl grey");
});

Deno.test("serializeResponseHead() refuses a status outside 100 to 999", () => {
  for (const status of [99, 1000, 200.5, NaN, -200]) {
    assertThrows(
      () => serializeResponseHead({ status }),
      RangeError,
      `Cannot serialize HTTP response head: status must be an integer from 100 to 999, received ${status}`,
    );
  }
});

Deno.test("serializeResponseHead() refuses CR, LF and other controls (response splitting)", () => {
  const values = [
    "a\r\nSet-Cookie: evil=1",
    "a\nb",
    "a\rb",
    "a\x00b",
    "a\x7fb",
    "a\x1bb",
  ];
  for (const value of values) {
    assertThrows(
      () => serializeResponseHead({ status: 200, headers: [["X-A", value]] }),
      TypeError,
      `Cannot serialize HTTP response head: the value of field "X-A" has a control character (CR, LF and NUL are never allowed), received ${
        JSON.stringify(value)
      }`,
    );
    assertThrows(
      () => serializeResponseHead({ status: 200, reason: value }),
      TypeError,
      "Cannot serialize HTTP response head: the reason phrase has a control character",
    );
  }
  // HTAB is allowed.
  assertEquals(
    latin1(serializeResponseHead({ status: 200, headers: [["X-A", "a\tb"]] })),
    "HTTP/1.1 200 OK\r\nX-A: a\tb\r\n\r\n",
  );
});

Deno.test("serializeResponseHead() refuses field names that are not tokens", () => {
  for (
    const name of ["X A", "X:A", "X\r\nA", "", "caf\xe9", "X\x00", "(x)", "a/b"]
  ) {
    assertThrows(
      () => serializeResponseHead({ status: 200, headers: [[name, "v"]] }),
      TypeError,
      name === ""
        ? "Cannot serialize HTTP response head: a field name is empty"
        : `Cannot serialize HTTP response head: a field name has an invalid character, received ${
          JSON.stringify(name)
        }`,
    );
  }
});

Deno.test("serializeResponseHead() refuses characters above U+00FF", () => {
  assertThrows(
    () => serializeResponseHead({ status: 200, headers: [["X-A", "5 €"]] }),
    TypeError,
    'Cannot serialize HTTP response head: the value of field "X-A" has a character outside Latin-1, received "5 €"',
  );
});

Deno.test("serializeResponseHead() refuses names and values that are not strings", () => {
  assertThrows(
    () =>
      serializeResponseHead({
        status: 200,
        headers: [["X-A", 5 as unknown as string]],
      }),
    TypeError,
    'Cannot serialize HTTP response head: the value of field "X-A" must be a string, received number',
  );
  assertThrows(
    () =>
      serializeResponseHead({
        status: 200,
        headers: [[null as unknown as string, "v"]],
      }),
    TypeError,
    "Cannot serialize HTTP response head: a field name must be a string, received object",
  );
});

Deno.test("serializeResponseHead() shortens long values in error messages", () => {
  const value = "x".repeat(100) + "\n";
  assertThrows(
    () => serializeResponseHead({ status: 200, headers: [["X", value]] }),
    TypeError,
    `received ${JSON.stringify("x".repeat(64) + "…")}`,
  );
});

// ---------------------------------------------------------------------------
// serializeRequestHead
// ---------------------------------------------------------------------------

Deno.test("serializeRequestHead() writes the request line, fields and empty line", () => {
  const out = serializeRequestHead({
    method: "POST",
    target: "/rpc?x=1",
    headers: [["Host", "example.com"], ["Content-Length", "2"]],
  });
  assertEquals(
    latin1(out),
    "POST /rpc?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\n",
  );
  assertEquals(
    latin1(serializeRequestHead({ method: "OPTIONS", target: "*" })),
    "OPTIONS * HTTP/1.1\r\n\r\n",
  );
});

Deno.test("serializeRequestHead() output reads back through HttpRequestParser", () => {
  const head = serializeRequestHead({
    method: "PUT",
    target: "/a%20b",
    headers: new Headers({
      host: "h",
      "content-length": "3",
      "x-v": "caf\xe9",
    }),
  });
  const { head: parsed, body } = parseRequest(concat([head, ascii("abc")]));
  assertEquals(parsed.method, "PUT");
  assertEquals(parsed.target, "/a%20b");
  assertEquals(parsed.headers.get("X-V"), "caf\xe9");
  assertEquals(body, "abc");
});

Deno.test("serializeRequestHead() refuses a bad method or target", () => {
  for (const method of ["", "GE T", "GET\r\n", "G\xc9T"]) {
    assertThrows(
      () => serializeRequestHead({ method, target: "/" }),
      TypeError,
      "Cannot serialize HTTP request head: the method",
    );
  }
  for (const target of ["/a b", "/a\r\nHost: evil", "/caf\xe9", "/\x7f"]) {
    assertThrows(
      () => serializeRequestHead({ method: "GET", target }),
      TypeError,
      `Cannot serialize HTTP request head: the target has a character outside visible ASCII, received ${
        JSON.stringify(target)
      }`,
    );
  }
  assertThrows(
    () => serializeRequestHead({ method: "GET", target: "" }),
    TypeError,
    'Cannot serialize HTTP request head: the target must be a non-empty string, received ""',
  );
});

Deno.test("serializeRequestHead() checks fields like serializeResponseHead()", () => {
  assertThrows(
    () =>
      serializeRequestHead({
        method: "GET",
        target: "/",
        headers: [["Host", "a\r\n\r\nGET /smuggled HTTP/1.1"]],
      }),
    TypeError,
    'Cannot serialize HTTP request head: the value of field "Host" has a control character',
  );
});

// ---------------------------------------------------------------------------
// Chunked coding
// ---------------------------------------------------------------------------

Deno.test("chunkHeader() writes the size in hex and CRLF", () => {
  assertEquals(latin1(chunkHeader(1)), "1\r\n");
  assertEquals(latin1(chunkHeader(255)), "ff\r\n");
  assertEquals(latin1(chunkHeader(65536)), "10000\r\n");
  assertEquals(
    latin1(chunkHeader(Number.MAX_SAFE_INTEGER)),
    "1fffffffffffff\r\n",
  );
});

Deno.test("chunkHeader() refuses sizes that are not positive integers", () => {
  for (const size of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
    assertThrows(
      () => chunkHeader(size),
      RangeError,
      `Cannot frame HTTP chunk: size must be a positive integer, received ${size}`,
    );
  }
});

Deno.test("chunked framing reads back through HttpRequestParser", () => {
  const head = serializeRequestHead({
    method: "POST",
    target: "/",
    headers: [["Host", "a"], ["Transfer-Encoding", "chunked"]],
  });
  const pieces = ["first ", "", "second ", "x".repeat(1000)];
  const data = concat([
    head,
    ...pieces.filter((p) => p !== "").flatMap((p) => [
      chunkHeader(p.length),
      ascii(p),
      CRLF,
    ]),
    chunkHeader(3),
    ascii("end"),
    CRLF,
    ascii("0\r\nTrailer-A: 1\r\n\r\n"),
  ]);
  const { body, trailers } = parseRequest(data);
  assertEquals(body, pieces.join("") + "end");
  assertEquals(trailers?.pairs, [["Trailer-A", "1"]]);
});

Deno.test("CRLF is the two bytes CR LF", () => {
  assertEquals(Array.from(CRLF), [13, 10]);
});

// ---------------------------------------------------------------------------
// statusText
// ---------------------------------------------------------------------------

Deno.test("statusText() gives the standard reason phrase, or an empty string", () => {
  assertEquals(statusText(200), "OK");
  assertEquals(statusText(404), "Not Found");
  assertEquals(statusText(413), "Content Too Large");
  assertEquals(statusText(431), "Request Header Fields Too Large");
  assertEquals(statusText(505), "HTTP Version Not Supported");
  assertEquals(statusText(299), "");
});
