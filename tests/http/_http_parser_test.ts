import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  HttpHeaderList,
  HttpParseError,
  type HttpParserCallbacks,
  type HttpParserOptions,
  type HttpRequestHead,
  HttpRequestParser,
  type HttpResponseHead,
  HttpResponseParser,
} from "../../http/_http_parser.ts";

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/** Encodes a string one byte per character (Latin-1), so tests can say "\x00". */
function bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return s;
}

type Pairs = Array<[string, string]>;

type Event =
  | { head: Record<string, unknown> }
  | { body: string }
  | { complete: Pairs | null }
  | { error: number; message: string };

function summarize(
  h: HttpRequestHead | HttpResponseHead,
): Record<string, unknown> {
  const common = {
    version: `${h.versionMajor}.${h.versionMinor}`,
    headers: h.headers.pairs.map(([n, v]) => [n, v]),
    keepAlive: h.keepAlive,
    bodyKind: h.bodyKind,
    contentLength: h.contentLength,
  };
  if ("method" in h) {
    return {
      method: h.method,
      target: h.target,
      ...common,
      expectContinue: h.expectContinue,
    };
  }
  return { status: h.status, reason: h.reason, ...common };
}

/** Callbacks that record events, merging adjacent body pieces. */
function recorder<H extends HttpRequestHead | HttpResponseHead>(
  events: Event[],
): HttpParserCallbacks<H> {
  return {
    onHead(h) {
      events.push({ head: summarize(h) });
    },
    onBody(chunk) {
      assert(chunk.length > 0, "onBody() got an empty chunk");
      const last = events.at(-1);
      if (last !== undefined && "body" in last) last.body += latin1(chunk);
      else events.push({ body: latin1(chunk) });
    },
    onMessageComplete(trailers) {
      events.push({
        complete: trailers === null
          ? null
          : trailers.pairs.map(([n, v]) => [n, v] as [string, string]),
      });
    },
    onError(error) {
      assertInstanceOf(error, HttpParseError);
      events.push({ error: error.status, message: error.message });
    },
  };
}

type Kind = "request" | "response";

interface RunOptions extends HttpParserOptions {
  /** Methods of the requests the response parser awaits (default one GET). */
  methods?: string[];
  /** Call `feedEof()` after the input. */
  eof?: boolean;
}

function parserFor(kind: Kind, events: Event[], opts: RunOptions) {
  if (kind === "request") {
    return new HttpRequestParser(recorder<HttpRequestHead>(events), opts);
  }
  const p = new HttpResponseParser(recorder<HttpResponseHead>(events), opts);
  for (const m of opts.methods ?? ["GET"]) p.expectResponse(m);
  return p;
}

function run(kind: Kind, chunks: Uint8Array[], opts: RunOptions): Event[] {
  const events: Event[] = [];
  const parser = parserFor(kind, events, opts);
  for (const c of chunks) parser.feed(c);
  if (opts.eof) parser.feedEof();
  return events;
}

/** Every way of cutting `input` that the tests try. */
function* chunkings(input: Uint8Array): Generator<[string, Uint8Array[]]> {
  const n = input.length;
  for (let i = 1; i < n; i++) {
    yield [`split at ${i}`, [input.slice(0, i), input.slice(i)]];
  }
  yield [
    "one byte at a time",
    Array.from(input, (_, i) => input.slice(i, i + 1)),
  ];
  yield ["with empty chunks", [
    new Uint8Array(0),
    input.slice(),
    new Uint8Array(0),
  ]];
  if (n <= 120) {
    for (let i = 1; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        yield [`split at ${i} and ${j}`, [
          input.slice(0, i),
          input.slice(i, j),
          input.slice(j),
        ]];
      }
    }
  }
}

/**
 * Parses `input` whole, then cut in every way, asserting the events never
 * change; returns them.
 */
function parseAll(
  kind: Kind,
  input: string | Uint8Array,
  opts: RunOptions = {},
): Event[] {
  const data = typeof input === "string" ? bytes(input) : input;
  const expected = run(kind, [data.slice()], opts);
  for (const [how, chunks] of chunkings(data)) {
    const got = run(kind, chunks, opts);
    assertEquals(got, expected, `events changed when the input was cut ${how}`);
  }
  return expected;
}

const parseRequests = (input: string | Uint8Array, opts?: RunOptions) =>
  parseAll("request", input, opts);
const parseResponses = (input: string | Uint8Array, opts?: RunOptions) =>
  parseAll("response", input, opts);

/** The summary of a request head, with the usual defaults. */
function req(fields: Record<string, unknown>): Event {
  return {
    head: {
      method: "GET",
      target: "/",
      version: "1.1",
      headers: [["Host", "a"]],
      keepAlive: true,
      bodyKind: "none",
      contentLength: 0,
      expectContinue: false,
      ...fields,
    },
  };
}

/** The summary of a response head, with the usual defaults. */
function res(fields: Record<string, unknown>): Event {
  return {
    head: {
      status: 200,
      reason: "OK",
      version: "1.1",
      headers: [],
      keepAlive: true,
      bodyKind: "none",
      contentLength: 0,
      ...fields,
    },
  };
}

const done: Event = { complete: null };

/** The error that ends `events`; fails the test if there is none. */
function lastError(events: Event[]): { error: number; message: string } {
  const last = events.at(-1);
  if (last === undefined || !("error" in last)) {
    throw new Error(`expected an error, got ${JSON.stringify(events)}`);
  }
  return last;
}

/** Asserts the input is rejected with `status` before any head. */
function assertRejected(
  kind: Kind,
  input: string,
  status: number,
  opts: RunOptions = {},
): string {
  const events = parseAll(kind, input, opts);
  const last = lastError(events);
  assertEquals(last.error, status, last.message);
  assertEquals(
    events.length,
    1,
    `events before the error: ${JSON.stringify(events)}`,
  );
  assert(last.message.startsWith(`Cannot parse HTTP ${kind}: `), last.message);
  return last.message;
}

const rejectRequest = (input: string, status: number, opts?: RunOptions) =>
  assertRejected("request", input, status, opts);

/**
 * The messages rejecting a POST to `/` with each of `fields` (header lines
 * after `Host`, each ending in CRLF) and then `body`; each must answer
 * `status` before any head.
 */
function rejectPostFields(
  fields: string[],
  status: number,
  body = "0\r\n\r\n",
): string[] {
  return fields.map((field) =>
    rejectRequest(`POST / HTTP/1.1\r\nHost: a\r\n${field}\r\n${body}`, status)
  );
}

/** The head of a chunked POST, for chunked bodies to follow. */
const CHUNKED =
  "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

/**
 * Asserts a chunked POST with `body` after its head is read as its head then
 * one 400 error whose message includes `why`.
 */
function assertChunkedRejected(body: string, why: string, label: string) {
  const events = parseRequests(CHUNKED + body);
  assertEquals(events.length, 2, label);
  const last = events[1] as { error: number; message: string };
  assertEquals(last.error, 400, label);
  assert(last.message.includes(why), `${label}: ${last.message}`);
}

const GET = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

// ---------------------------------------------------------------------------
// Requests: heads
// ---------------------------------------------------------------------------

Deno.test("HttpRequestParser reads the request line and header fields", () => {
  const events = parseRequests(
    "GET /search?q=tulip HTTP/1.1\r\nHost: example.com\r\n" +
      "User-Agent:  test/1.0 \t\r\nACCEPT:*/*\r\nX-Empty:\r\nX-Empty2:   \r\n\r\n",
  );
  assertEquals(events, [
    req({
      target: "/search?q=tulip",
      headers: [
        ["Host", "example.com"],
        ["User-Agent", "test/1.0"],
        ["ACCEPT", "*/*"],
        ["X-Empty", ""],
        ["X-Empty2", ""],
      ],
    }),
    done,
  ]);
});

/** The heads a request parser reports for the input fed in `chunks`. */
function requestHeads(chunks: string[]): HttpRequestHead[] {
  const heads: HttpRequestHead[] = [];
  const p = new HttpRequestParser({
    onHead(h) {
      heads.push(h);
    },
    onBody() {},
    onMessageComplete() {},
    onError(e) {
      throw e;
    },
  });
  for (const c of chunks) p.feed(bytes(c));
  return heads;
}

Deno.test("HttpRequestParser gives heads a case-insensitive lookup", () => {
  const heads = requestHeads([
    "GET / HTTP/1.1\r\nHost: a\r\nAccept: x\r\naccept: y\r\n\r\n",
  ]);
  assertEquals(heads.length, 1);
  const head = heads[0];
  assertEquals(head.headers.get("ACCEPT"), "x, y");
  assertEquals(head.headers.getAll("accept"), ["x", "y"]);
  assertEquals(head.headers.get("host"), "a");
  assert(head.headers.has("Host"));
  assertFalse(head.headers.has("cookie"));
  assertEquals(head.headers.get("cookie"), undefined);
  assertEquals(new Headers(head.headers.pairs).get("accept"), "x, y");
});

Deno.test("HttpRequestParser accepts any token as a method, keeping its case", () => {
  for (const method of ["PATCH", "M-SEARCH", "get", "X_Custom!"]) {
    const events = parseRequests(`${method} / HTTP/1.1\r\nHost: a\r\n\r\n`);
    assertEquals(events, [req({ method }), done]);
  }
});

Deno.test("HttpRequestParser accepts every request-target form", () => {
  for (
    const target of [
      "*",
      "http://example.com:8080/a?b=c",
      "example.com:443",
      "/%7Euser/a%20b?x=[1]&y={2}",
      // Every byte RFC 3986 allows in a path, and in a query also those
      // browsers send unencoded there.
      "/a-b._~!$&'()*+,;=:@%20/",
      "/?a[]=1&b={x}|y^z`w\\v?/:@",
      "/a/b?",
      "http://[::1]:8080/x?y[0]",
      "http://a",
      "[::1]:443",
    ]
  ) {
    const events = parseRequests(
      `OPTIONS ${target} HTTP/1.1\r\nHost: a\r\n\r\n`,
    );
    assertEquals(events, [req({ method: "OPTIONS", target }), done]);
  }
});

Deno.test("HttpRequestParser rejects bytes RFC 3986 does not allow in the request-target", () => {
  // The URL parser would rewrite them ("\\" to "/" in a path: "/a\\..\\b"
  // becomes "/b") or cut the target at "#": what the handler sees would
  // not be what was sent. A query may hold what browsers send unencoded.
  const path = (c: string) =>
    `the request-target's path has ${
      JSON.stringify(c)
    }, which RFC 3986 does not allow (percent-encode it)`;
  const query = (c: string) =>
    `the request-target's query has ${
      JSON.stringify(c)
    }, which RFC 3986 does not allow (percent-encode it)`;
  const fragment =
    'the request-target has "#" (a fragment, which a request does not send)';
  const cases: Array<[string, string]> = [
    ["/a\\..\\admin", path("\\")],
    ["/\\", path("\\")],
    ["/a<b>", path("<")],
    ['/a"b', path('"')],
    ["/a{b}", path("{")],
    ["/a|b", path("|")],
    ["/a^b", path("^")],
    ["/a`b", path("`")],
    ["/a[0]", path("[")],
    ["/a]", path("]")],
    ["/a#b", fragment],
    ["/a?b#c", fragment],
    ["/?a<b", query("<")],
    ["/?a>b", query(">")],
    ['/?a"b', query('"')],
    ["http://a/b\\c", path("\\")],
    ["http://[::1]:80/b\\c", path("\\")],
    ["http://a/b?c#d", fragment],
    ["http://a#f", fragment],
    ["HTTP://a/<", path("<")],
  ];
  for (const [target, why] of cases) {
    for (
      const input of [
        `GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`,
        `POST ${target} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n`,
      ]
    ) {
      assertEquals(
        rejectRequest(input, 400),
        `Cannot parse HTTP request: ${why}, received ${JSON.stringify(target)}`,
      );
    }
  }
});

Deno.test("HttpRequestParser tells the request-target's form and the Host value", () => {
  const cases: Array<[string, string, string]> = [
    ["/a?b", "origin", "h.example:80"],
    ["http://x/", "absolute", "h.example:80"],
    ["HTTPS://x/", "absolute", "h.example:80"],
    ["*", "asterisk", "h.example:80"],
    ["example.com:443", "other", "h.example:80"],
    ["http:/x", "other", "h.example:80"],
    ["httpx://x", "other", "h.example:80"],
  ];
  for (const [target, form, host] of cases) {
    const [head] = requestHeads([
      `OPTIONS ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    ]);
    assertEquals([head.targetForm, head.host, head.target], [
      form,
      host,
      target,
    ]);
  }
  const [old] = requestHeads(["GET / HTTP/1.0\r\n\r\n"]);
  assertEquals(old.host, "");
  const [v6] = requestHeads(["GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"]);
  assertEquals(v6.host, "[::1]:8080");
});

Deno.test("HttpRequestParser rejects a Host value that is not an authority", () => {
  for (const host of ["", "a b", "a/b", "a@b", "caf\xe9", 'a"b']) {
    const events = parseRequests(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    assertEquals(events.length, 1);
    const error = events[0] as { error: number; message: string };
    assertEquals(error.error, 400);
    assert(error.message.includes("the Host field is not a valid host"));
  }
});

Deno.test("HttpRequestParser rejects a Host value that no URL can hold", () => {
  // Each of these is made of authority characters but is not a host and
  // port `new URL()` accepts: the request gets 400, not a handler failure.
  for (
    const host of [
      "x:99999",
      "x:65536",
      "a%b",
      "a%00",
      "x:1:2",
      ":80",
      "1.2.3.256",
      "a.09",
      "[::g]",
      "[v1.x]",
      "xn--zz",
    ]
  ) {
    const events = parseRequests(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    assertEquals(events.length, 1, host);
    const error = events[0] as { error: number; message: string };
    assertEquals(error.error, 400, host);
    assertEquals(
      error.message,
      `Cannot parse HTTP request: the Host field is not a valid host, received ${
        JSON.stringify(host)
      }`,
    );
  }
  for (
    const host of [
      "x:65535",
      "x:",
      "x:0080",
      "localhost",
      "LOCALHOST:8000",
      "127.0.0.1:8080",
      "010.0.0.1",
      "a.b.",
      "-a_b~c",
      "a%41",
      "[::1]:8080",
      "xn--9ca.example",
    ]
  ) {
    const [head] = requestHeads([`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`]);
    assertEquals(head.host, host);
    assert(URL.canParse(`http://${host}/`), host);
  }
});

Deno.test("HttpRequestParser rejects an absolute-form target that is not a URL or has no valid host", () => {
  const notUrl = "the request-target is not a valid URL";
  // RFC 9110 §4.2.1: an http URI with an empty host MUST be rejected (the
  // URL parser would take the path's first segment for the host); §4.2.4:
  // userinfo is treated as an error, as in Host.
  const badHost =
    "the request-target's host is empty or not valid (userinfo is not allowed)";
  const cases: [string, string][] = [
    ["http://a:99999/", notUrl],
    ["http://a:1:2/", notUrl],
    ["https://a%b/x", notUrl],
    ["http://:80/", notUrl],
    ["http://[::1/", notUrl],
    ["http:///", notUrl],
    ["https://?q", notUrl],
    ["http:///p", badHost],
    ["http://user@a:8080/x?y", badHost],
    ["http://a@b/", badHost],
    ["http://@b/", badHost],
    ["http://a\\@b/", badHost],
  ];
  for (const [target, why] of cases) {
    assertEquals(
      rejectRequest(`GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`, 400),
      `Cannot parse HTTP request: ${why}, received ${JSON.stringify(target)}`,
    );
  }
  const [head] = requestHeads([
    "GET http://a:8080/x?y HTTP/1.1\r\nHost: a\r\n\r\n",
  ]);
  assertEquals(head.target, "http://a:8080/x?y");
});

Deno.test("HttpRequestParser heads decode correctly when read after later input", () => {
  // The first head is cut (so it sits in the parser's reused buffer), the
  // second too; both are read only after all input was parsed.
  const input = "GET /one HTTP/1.1\r\nHost: a\r\nX-Cafe: d\xe9j\xe0\r\n\r\n" +
    "POST /two HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n" +
    "GET /three HTTP/1.1\r\nHost: c\r\n\r\n";
  for (const [name, chunks] of chunkings(bytes(input))) {
    const heads = requestHeads(chunks.map(latin1));
    assertEquals(
      heads.map((h) => [h.method, h.target, h.host, h.headers.pairs]),
      [
        ["GET", "/one", "a", [["Host", "a"], ["X-Cafe", "d\xe9j\xe0"]]],
        ["POST", "/two", "b", [["Host", "b"], ["Content-Length", "0"]]],
        ["GET", "/three", "c", [["Host", "c"]]],
      ],
      name,
    );
  }
});

Deno.test("HttpRequestParser reads HTTP/1.0 requests, with no Host needed", () => {
  const events = parseRequests("GET / HTTP/1.0\r\n\r\n");
  assertEquals(events, [
    req({ version: "1.0", headers: [], keepAlive: false }),
    done,
  ]);
});

Deno.test("HttpRequestParser reads a higher HTTP/1.x minor version as 1.1", () => {
  const events = parseRequests("GET / HTTP/1.7\r\nHost: a\r\n\r\n");
  assertEquals(events, [req({ version: "1.7" }), done]);
});

Deno.test("HttpRequestParser reports keep-alive from the version and Connection", () => {
  const cases: Array<[string, string | null, boolean]> = [
    ["1.1", null, true],
    ["1.1", "close", false],
    ["1.1", "Close", false],
    ["1.1", "keep-alive", true],
    ["1.1", "Upgrade, close", false],
    ["1.1", " foo ,  CLOSE ,", false],
    ["1.1", "closed", true],
    ["1.0", null, false],
    ["1.0", "keep-alive", true],
    ["1.0", "Keep-Alive", true],
    ["1.0", "keep-alive, close", false],
    ["1.0", "close", false],
  ];
  for (const [version, connection, keepAlive] of cases) {
    const headers: Pairs = [["Host", "a"]];
    if (connection !== null) headers.push(["Connection", connection]);
    const input = `GET / HTTP/${version}\r\n` +
      headers.map(([n, v]) => `${n}: ${v}\r\n`).join("") + "\r\n";
    const events = parseRequests(input);
    const expectedHeaders = headers.map(([n, v]) => [n, v.trim()]);
    assertEquals(
      events,
      [req({ version, headers: expectedHeaders, keepAlive }), done],
      `HTTP/${version} with Connection: ${connection}`,
    );
  }
});

Deno.test("HttpRequestParser reports Expect: 100-continue on HTTP/1.1 only", () => {
  const cases: Array<[string, string, boolean]> = [
    ["1.1", "100-continue", true],
    ["1.1", "100-Continue", true],
    ["1.1", "100-continue-ish", false],
    ["1.1", "something-else", false],
    // Expect is a list (RFC 9110 §10.1.1): a member is enough.
    ["1.1", "100-continue, x-foo", true],
    ["1.1", "x-foo ,100-continue", true],
    ["1.1", "100-continue=1", false],
    ["1.0", "100-continue", false],
  ];
  for (const [version, expect, expectContinue] of cases) {
    const events = parseRequests(
      `POST / HTTP/${version}\r\nHost: a\r\nExpect: ${expect}\r\nContent-Length: 1\r\n\r\nx`,
    );
    assertEquals(
      events[0],
      req({
        method: "POST",
        version,
        headers: [["Host", "a"], ["Expect", expect], ["Content-Length", "1"]],
        keepAlive: version === "1.1",
        bodyKind: "length",
        contentLength: 1,
        expectContinue,
      }),
    );
  }
});

Deno.test("HttpRequestParser reads Expect fields as one list", () => {
  for (
    const fields of [
      "Expect: 100-continue\r\nExpect: x-foo\r\n",
      "Expect: x-foo\r\nExpect: 100-continue\r\n",
    ]
  ) {
    const events = parseRequests(
      `POST / HTTP/1.1\r\nHost: a\r\n${fields}Content-Length: 1\r\n\r\nx`,
    );
    assertEquals(
      (events[0] as { head: { expectContinue: boolean } }).head
        .expectContinue,
      true,
      fields,
    );
  }
});

Deno.test("HttpRequestParser ignores empty lines before a request", () => {
  const events = parseRequests(`\r\n\r\n${GET}\r\n${GET}`);
  assertEquals(events, [req({}), done, req({}), done]);
});

Deno.test("HttpRequestParser decodes obs-text in field values as Latin-1", () => {
  const events = parseRequests(
    "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xe9 \x80\xff\r\n\r\n",
  );
  assertEquals(events, [
    req({ headers: [["Host", "a"], ["X-Name", "caf\xe9 \x80\xff"]] }),
    done,
  ]);
});

// ---------------------------------------------------------------------------
// Requests: bodies
// ---------------------------------------------------------------------------

Deno.test("HttpRequestParser delivers a Content-Length body", () => {
  const events = parseRequests(
    "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
  );
  assertEquals(events, [
    req({
      method: "POST",
      target: "/upload",
      headers: [["Host", "a"], ["Content-Length", "11"]],
      bodyKind: "length",
      contentLength: 11,
    }),
    { body: "hello world" },
    done,
  ]);
});

Deno.test("HttpRequestParser treats Content-Length: 0 as no body", () => {
  const events = parseRequests(
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000\r\n\r\n",
  );
  assertEquals(events, [
    req({
      method: "POST",
      headers: [["Host", "a"], ["Content-Length", "000"]],
    }),
    done,
  ]);
});

Deno.test("HttpRequestParser accepts repeated equal Content-Length values as one field", () => {
  // RFC 9112 §6.3 (5), RFC 9110 §8.6: a list of identical values (or
  // repeated identical fields) may be replaced by a single instance.
  const cases: Array<[string, Pairs]> = [
    ["Content-Length: 3, 3\r\n", [["Content-Length", "3"]]],
    ["Content-Length: 3,3 , 3\r\nX: y\r\n", [
      ["Content-Length", "3"],
      ["X", "y"],
    ]],
    ["content-length: 3\r\nX: y\r\nContent-Length: 03\r\n", [
      ["content-length", "3"],
      ["X", "y"],
    ]],
    ["Content-Length: 003\r\n", [["Content-Length", "003"]]],
  ];
  for (const [fields, pairs] of cases) {
    const events = parseRequests(
      `PUT / HTTP/1.1\r\nHost: a\r\n${fields}\r\nabcGET / HTTP/1.0\r\n\r\n`,
    );
    assertEquals(events, [
      req({
        method: "PUT",
        headers: [["Host", "a"], ...pairs],
        bodyKind: "length",
        contentLength: 3,
      }),
      { body: "abc" },
      done,
      req({ version: "1.0", headers: [], keepAlive: false }),
      done,
    ]);
  }
  const [head] = requestHeads([
    "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
  ]);
  assertEquals(head.headers.size, 2);
  assertEquals(head.headers.get("content-length"), "3");
  assertEquals(head.headers.getAll("Content-Length"), ["3"]);
  assertEquals([...head.headers], [["Host", "a"], ["Content-Length", "3"]]);
});

Deno.test("HttpRequestParser hands out body pieces as views, without accumulating", () => {
  const pieces: Uint8Array[] = [];
  const p = new HttpRequestParser({
    onHead() {},
    onBody(c) {
      pieces.push(c);
    },
    onMessageComplete() {},
    onError(e) {
      throw e;
    },
  });
  const first = bytes(
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabc",
  );
  p.feed(first);
  const second = bytes("def");
  p.feed(second);
  assertEquals(pieces.map(latin1), ["abc", "def"]);
  assertStrictEquals(pieces[0].buffer, first.buffer);
  assertStrictEquals(pieces[1], second);
});

Deno.test("HttpRequestParser decodes a chunked body, ignoring extensions", () => {
  const events = parseRequests(
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
      '5\r\nhello\r\n1;name=value\r\n \r\n00A ; a="b c";d\r\n0123456789\r\n' +
      "0000\r\n\r\n",
  );
  assertEquals(events, [
    req({
      method: "POST",
      headers: [["Host", "a"], ["Transfer-Encoding", "chunked"]],
      bodyKind: "chunked",
      contentLength: -1,
    }),
    { body: "hello 0123456789" },
    done,
  ]);
});

Deno.test("HttpRequestParser reads chunked trailers with a lookup", () => {
  const input =
    "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: Chunked\r\n\r\n" +
    "3\r\nabc\r\n0\r\nChecksum: 123\r\nX-Note:  done \r\nchecksum: 456\r\n\r\n";
  const events = parseRequests(input);
  assertEquals(events.slice(1), [
    { body: "abc" },
    {
      complete: [["Checksum", "123"], ["X-Note", "done"], ["checksum", "456"]],
    },
  ]);
  const trailers: Array<HttpHeaderList | null> = [];
  const p = new HttpRequestParser({
    onHead() {},
    onBody() {},
    onMessageComplete(t) {
      trailers.push(t);
    },
    onError(e) {
      throw e;
    },
  });
  p.feed(bytes(input));
  assertInstanceOf(trailers[0], HttpHeaderList);
  assertEquals(trailers[0]?.get("CHECKSUM"), "123, 456");
});

Deno.test("HttpRequestParser reads a chunked body with no data chunks", () => {
  const events = parseRequests(
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
      GET,
  );
  assertEquals(events.slice(1), [done, req({}), done]);
});

Deno.test("HttpRequestParser delivers a body on a GET request too", () => {
  const events = parseRequests(
    "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
  );
  assertEquals(events.slice(1), [{ body: "hi" }, done]);
});

// ---------------------------------------------------------------------------
// Requests: pipelining and pausing
// ---------------------------------------------------------------------------

const PIPELINE = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" +
  "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" +
  "POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n" +
  "GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

const PIPELINE_EVENTS: Event[] = [
  req({ target: "/1" }),
  done,
  req({
    method: "POST",
    target: "/2",
    headers: [["Host", "a"], ["Content-Length", "3"]],
    bodyKind: "length",
    contentLength: 3,
  }),
  { body: "abc" },
  done,
  req({
    method: "POST",
    target: "/3",
    headers: [["Host", "a"], ["Transfer-Encoding", "chunked"]],
    bodyKind: "chunked",
    contentLength: -1,
  }),
  { body: "de" },
  { complete: [["T", "1"]] },
  req({
    target: "/4",
    headers: [["Host", "a"], ["Connection", "close"]],
    keepAlive: false,
  }),
  done,
];

Deno.test("HttpRequestParser reads pipelined requests in order", () => {
  assertEquals(parseRequests(PIPELINE), PIPELINE_EVENTS);
});

Deno.test("HttpRequestParser pausing after each request gives the same events", () => {
  const data = bytes(PIPELINE);
  for (const [how, chunks] of chunkings(data)) {
    if (how.includes(" and ")) continue;
    const events: Event[] = [];
    const rec = recorder<HttpRequestHead>(events);
    let paused = 0;
    const p: HttpRequestParser = new HttpRequestParser({
      ...rec,
      onMessageComplete(t) {
        rec.onMessageComplete(t);
        p.pause();
        paused++;
      },
    });
    for (const c of chunks) {
      p.feed(c);
      // The "response" is sent; read on.
      while (p.paused) {
        const before = events.length;
        p.resume();
        assert(events.length > before || !p.paused);
      }
    }
    assertEquals(events, PIPELINE_EVENTS, how);
    assertEquals(paused, 4);
  }
});

Deno.test("HttpRequestParser.pause() in onMessageComplete holds the next request", () => {
  const events: Event[] = [];
  const rec = recorder<HttpRequestHead>(events);
  const p: HttpRequestParser = new HttpRequestParser({
    ...rec,
    onMessageComplete(t) {
      rec.onMessageComplete(t);
      p.pause();
    },
  });
  const two = bytes(GET + GET);
  p.feed(two);
  assertEquals(events, [req({}), done]);
  assert(p.paused);
  assertEquals(p.bufferedBytes, GET.length);
  assertFalse(p.idle);
  p.feed(bytes("GET /3"));
  assertEquals(events.length, 2, "nothing is parsed while paused");
  assertEquals(p.bufferedBytes, GET.length + 6);
  p.resume();
  assertEquals(events, [req({}), done, req({}), done]);
  assert(p.paused, "paused again after the second request");
  p.resume();
  assertFalse(p.paused);
  assertEquals(events.length, 4);
  assertEquals(p.bufferedBytes, 6);
  p.feed(bytes(" HTTP/1.1\r\nHost: a\r\n\r\n"));
  assertEquals(events.at(-1), done);
  assertEquals(events.at(-2), req({ target: "/3" }));
});

Deno.test("HttpRequestParser.pause() in onHead delays even an empty body's completion", () => {
  const events: Event[] = [];
  const rec = recorder<HttpRequestHead>(events);
  const p: HttpRequestParser = new HttpRequestParser({
    ...rec,
    onHead(h) {
      rec.onHead(h);
      p.pause();
    },
  });
  p.feed(bytes(GET));
  assertEquals(events, [req({})]);
  assertEquals(p.bufferedBytes, 0);
  p.resume();
  assertEquals(events, [req({}), done]);
  assert(p.idle);
});

Deno.test("HttpRequestParser.pause() in onBody stops the body until resume()", () => {
  const events: Event[] = [];
  const rec = recorder<HttpRequestHead>(events);
  const bodies: string[] = [];
  const p: HttpRequestParser = new HttpRequestParser({
    ...rec,
    onBody(c, own) {
      bodies.push(latin1(c));
      rec.onBody(c, own);
      p.pause();
    },
  });
  p.feed(bytes(
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n",
  ));
  assertEquals(bodies, ["abc"]);
  p.feed(bytes("0\r\n\r\n"));
  assertEquals(bodies, ["abc"]);
  p.resume();
  assertEquals(bodies, ["abc", "def"]);
  assertEquals(events.at(-1), { body: "abcdef" });
  p.resume();
  assertEquals(events.at(-1), done);
  assertFalse(p.paused);
});

Deno.test("HttpRequestParser.pause() before any input holds all of it", () => {
  const events: Event[] = [];
  const p = new HttpRequestParser(recorder(events));
  p.pause();
  p.feed(bytes(GET));
  p.feed(bytes(GET));
  assertEquals(events, []);
  assertEquals(p.bufferedBytes, 2 * GET.length);
  p.resume();
  assertEquals(events, [req({}), done, req({}), done]);
  assertEquals(p.bufferedBytes, 0);
});

Deno.test("HttpRequestParser.feedEof() while paused takes effect after resume()", () => {
  const events: Event[] = [];
  const rec = recorder<HttpRequestHead>(events);
  const p: HttpRequestParser = new HttpRequestParser({
    ...rec,
    onMessageComplete(t) {
      rec.onMessageComplete(t);
      p.pause();
    },
  });
  p.feed(bytes(GET + "GET / HT"));
  p.feedEof();
  assertEquals(events, [req({}), done]);
  p.resume();
  assertEquals(events.length, 3);
  assertEquals((events[2] as { error: number }).error, 400);
});

Deno.test("HttpRequestParser.resume() inside a callback just carries on", () => {
  const events: Event[] = [];
  const rec = recorder<HttpRequestHead>(events);
  const p: HttpRequestParser = new HttpRequestParser({
    ...rec,
    onMessageComplete(t) {
      rec.onMessageComplete(t);
      p.pause();
      p.resume();
    },
  });
  p.feed(bytes(GET + GET));
  assertEquals(events, [req({}), done, req({}), done]);
  assertFalse(p.paused);
});

Deno.test("HttpRequestParser.feed() inside a callback is parsed after the current input", () => {
  const events: Event[] = [];
  const rec = recorder<HttpRequestHead>(events);
  let fed = false;
  const p: HttpRequestParser = new HttpRequestParser({
    ...rec,
    onHead(h) {
      rec.onHead(h);
      if (!fed) {
        fed = true;
        p.feed(bytes("GET /late HTTP/1.1\r\nHost: a\r\n\r\n"));
        assertEquals(events.length, 1, "not parsed re-entrantly");
      }
    },
  });
  p.feed(bytes(GET + GET));
  assertEquals(events, [
    req({}),
    done,
    req({}),
    done,
    req({ target: "/late" }),
    done,
  ]);
});

// ---------------------------------------------------------------------------
// Requests: end of input, errors
// ---------------------------------------------------------------------------

Deno.test("HttpRequestParser.feedEof() between messages reports nothing", () => {
  const events = parseRequests(GET, { eof: true });
  assertEquals(events, [req({}), done]);
  const p = new HttpRequestParser(recorder([]));
  assert(p.idle);
  p.feedEof();
  assert(p.idle);
});

Deno.test("HttpRequestParser.feedEof() in the middle of a message is a 400", () => {
  for (
    const input of [
      "G",
      "GET / HTTP/1.1\r\nHost: a\r\n",
      "\r",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nabc",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n",
    ]
  ) {
    const events = parseRequests(input, { eof: true });
    const last = events.at(-1) as { error: number; message: string };
    assertEquals(last.error, 400, input);
    assertStringIncludes(
      last.message,
      "Cannot parse HTTP request: the connection closed before the message was complete, received end of input",
      input,
    );
  }
});

Deno.test("HttpRequestParser ignores input after feedEof()", () => {
  const events: Event[] = [];
  const p = new HttpRequestParser(recorder(events));
  p.feedEof();
  p.feed(bytes(GET));
  p.feedEof();
  assertEquals(events, []);
  assert(p.idle);
});

Deno.test("HttpRequestParser reports nothing after an error", () => {
  const events: Event[] = [];
  const p = new HttpRequestParser(recorder(events));
  p.feed(bytes("GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n" + GET));
  p.feed(bytes(GET));
  p.feedEof();
  assertEquals(events.length, 1);
  assertEquals((events[0] as { error: number }).error, 400);
  assertEquals(p.bufferedBytes, 0);
});

Deno.test("HttpRequestParser passes on an exception from a callback and stops", () => {
  let heads = 0;
  const p = new HttpRequestParser({
    onHead() {
      heads++;
      throw new Error("boom");
    },
    onBody() {},
    onMessageComplete() {},
    onError() {
      throw new Error("onError must not be called");
    },
  });
  assertThrows(() => p.feed(bytes(GET + GET)), Error, "boom");
  p.feed(bytes(GET));
  assertEquals(heads, 1);
});

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

/** A request head of exactly `size` bytes. */
function headOfSize(size: number): string {
  const start = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
  const end = "\r\n\r\n";
  return start + "p".repeat(size - start.length - end.length) + end;
}

Deno.test("HttpRequestParser allows a head of exactly maxHeaderBytes", () => {
  const events = parseRequests(headOfSize(100), { maxHeaderBytes: 100 });
  assertEquals(events.at(-1), done);
});

Deno.test("HttpRequestParser answers 431 to a head over maxHeaderBytes", () => {
  const message = rejectRequest(headOfSize(101), 431, { maxHeaderBytes: 100 });
  assertEquals(
    message,
    "Cannot parse HTTP request: the head is larger than maxHeaderBytes (100)",
  );
});

Deno.test("HttpRequestParser defaults maxHeaderBytes to 16 KiB", () => {
  assertEquals(run("request", [bytes(headOfSize(16384))], {}).at(-1), done);
  assertEquals(
    (run("request", [bytes(headOfSize(16385))], {})[0] as { error: number })
      .error,
    431,
  );
});

Deno.test("HttpRequestParser keeps its buffer within maxHeaderBytes", () => {
  for (const step of [1, 7, 1000]) {
    const events: Event[] = [];
    const p = new HttpRequestParser(recorder(events), { maxHeaderBytes: 4096 });
    const input = bytes(
      "GET / HTTP/1.1\r\nHost: a\r\n" + "X-A: b\r\n".repeat(10000),
    );
    let fed = 0;
    for (let i = 0; i < input.length && events.length === 0; i += step) {
      p.feed(input.slice(i, i + step));
      fed += step;
      assert(p.bufferedBytes <= 4096, `${p.bufferedBytes} bytes buffered`);
    }
    assertEquals((events[0] as { error: number }).error, 431);
    assert(fed <= 4096 + step, `the error came after ${fed} bytes`);
    assertEquals(p.bufferedBytes, 0);
  }
});

Deno.test("HttpRequestParser answers 431 to more than maxHeaders fields", () => {
  const fields = (n: number) =>
    "GET / HTTP/1.1\r\nHost: a\r\n" + "X: y\r\n".repeat(n - 1) + "\r\n";
  assertEquals(parseRequests(fields(5), { maxHeaders: 5 }).at(-1), done);
  const message = rejectRequest(fields(6), 431, { maxHeaders: 5 });
  assertEquals(
    message,
    "Cannot parse HTTP request: the head has more than maxHeaders (5) fields",
  );
  assertEquals(run("request", [bytes(fields(100))], {}).at(-1), done);
  assertEquals(
    (run("request", [bytes(fields(101))], {})[0] as { error: number }).error,
    431,
  );
});

Deno.test("HttpRequestParser answers 414 to a request line over maxLineBytes", () => {
  const line = (n: number) => `GET /${"a".repeat(n - 14)} HTTP/1.1`;
  assertEquals(line(20).length, 20);
  const ok = parseRequests(`${line(20)}\r\nHost: a\r\n\r\n`, {
    maxLineBytes: 20,
  });
  assertEquals(ok.at(-1), done);
  const message = rejectRequest(`${line(21)}\r\nHost: a\r\n\r\n`, 414, {
    maxLineBytes: 20,
  });
  assertEquals(
    message,
    "Cannot parse HTTP request: the request line is longer than maxLineBytes (20)",
  );
  // The default is 8 KiB.
  assertEquals(
    run("request", [bytes(`${line(8192)}\r\nHost: a\r\n\r\n`)], {}).at(-1),
    done,
  );
  assertEquals(
    (run("request", [bytes(`${line(8193)}\r\nHost: a\r\n\r\n`)], {})[0] as {
      error: number;
    })
      .error,
    414,
  );
});

Deno.test("HttpRequestParser reports the same limit however the input is cut", () => {
  // A request line over both limits: whichever a byte-at-a-time reader
  // would hit first is the one reported.
  const long = `GET /${"a".repeat(100)} HTTP/1.1\r\nHost: a\r\n\r\n`;
  rejectRequest(long, 414, { maxLineBytes: 20, maxHeaderBytes: 50 });
  rejectRequest(long, 431, { maxLineBytes: 60, maxHeaderBytes: 50 });
  rejectRequest(long, 414, { maxLineBytes: 49, maxHeaderBytes: 50 });
  rejectRequest(long, 431, { maxLineBytes: 50, maxHeaderBytes: 50 });
});

Deno.test("HttpRequestParser keeps its buffer within maxLineBytes on a long request line", () => {
  const events: Event[] = [];
  const p = new HttpRequestParser(recorder(events), { maxLineBytes: 100 });
  for (let i = 0; i < 1000 && events.length === 0; i++) {
    p.feed(bytes(i === 0 ? "GET /" : "a"));
    assert(p.bufferedBytes <= 101);
  }
  assertEquals((events[0] as { error: number }).error, 414);
});

Deno.test("HttpRequestParser rejects a chunk-size line over maxLineBytes", () => {
  const input = (ext: string) =>
    `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;${ext}\r\nx\r\n0\r\n\r\n`;
  assertEquals(
    parseRequests(input("e".repeat(18)), { maxLineBytes: 20 }).at(-1),
    done,
  );
  const events = parseRequests(input("e".repeat(19)), { maxLineBytes: 20 });
  assertEquals(events.slice(1), [{
    error: 400,
    message:
      "Cannot parse HTTP request: a chunk-size line is longer than maxLineBytes (20)",
  }]);
});

Deno.test("HttpRequestParser answers 413 to a Content-Length over maxBodyBytes", () => {
  const input = (n: number) =>
    `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${n}\r\n\r\n${
      "x".repeat(n)
    }`;
  assertEquals(parseRequests(input(10), { maxBodyBytes: 10 }).at(-1), done);
  const message = rejectRequest(input(11), 413, { maxBodyBytes: 10 });
  assertEquals(
    message,
    "Cannot parse HTTP request: the body is larger than maxBodyBytes (10), received Content-Length 11",
  );
  assertEquals(
    (run("request", [bytes(input(0).replace(": 0", ": 16777217"))], {})[0] as {
      error: number;
    })
      .error,
    413,
  );
});

Deno.test("HttpRequestParser answers 413 once chunks go over maxBodyBytes", () => {
  const input =
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
    "6\r\nabcdef\r\n4\r\nghij\r\n1\r\nk\r\n0\r\n\r\n";
  assertEquals(parseRequests(input, { maxBodyBytes: 11 }).at(-1), done);
  const events = parseRequests(input, { maxBodyBytes: 10 });
  assertEquals(events.slice(1), [
    { body: "abcdefghij" },
    {
      error: 413,
      message:
        "Cannot parse HTTP request: the body is larger than maxBodyBytes (10), received 11 bytes",
    },
  ]);
});

Deno.test("HttpRequestParser allows maxBodyBytes of 0 and of Infinity", () => {
  const post = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx";
  rejectRequest(post, 413, { maxBodyBytes: 0 });
  assertEquals(parseRequests(GET, { maxBodyBytes: 0 }), [req({}), done]);
  assertEquals(parseRequests(post, { maxBodyBytes: Infinity }).at(-1), done);
});

Deno.test("HttpRequestParser limits trailer sections like heads", () => {
  const input = (trailers: string) =>
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n" +
    trailers + "\r\n";
  // The head is 55 bytes; the trailer section has the same 60-byte limit.
  const pad = (n: number) => `A: 1\r\nB: ${"x".repeat(n - 13)}\r\n`;
  const a = parseRequests(input(pad(60)), {
    maxHeaders: 2,
    maxHeaderBytes: 60,
  });
  assertEquals(a.at(-1), { complete: [["A", "1"], ["B", "x".repeat(47)]] });
  const b = parseRequests(input("A: 1\r\nB: 2\r\nC: 3\r\n"), { maxHeaders: 2 });
  assertEquals(b.slice(2), [{
    error: 431,
    message:
      "Cannot parse HTTP request: the trailer section has more than maxHeaders (2) fields",
  }]);
  const c = parseRequests(input(pad(61)), { maxHeaderBytes: 60 });
  assertEquals(c.slice(2), [{
    error: 431,
    message:
      "Cannot parse HTTP request: the trailer section is larger than maxHeaderBytes (60)",
  }]);
});

Deno.test("HttpRequestParser checks trailer fields like header fields", () => {
  const events = parseRequests(
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Name: x\r\n\r\n",
  );
  assertEquals((events.at(-1) as { error: number }).error, 400);
});

Deno.test("HttpRequestParser refuses limits that are not positive integers", () => {
  for (
    const options of [
      { maxHeaderBytes: 0 },
      { maxHeaderBytes: -1 },
      { maxHeaders: 1.5 },
      { maxLineBytes: Infinity },
      { maxLineBytes: NaN },
      { maxBodyBytes: -1 },
      { maxBodyBytes: 0.5 },
    ]
  ) {
    const [name, value] = Object.entries(options)[0];
    assertThrows(
      () => new HttpRequestParser(recorder([]), options),
      RangeError,
      `Cannot create HTTP parser: ${name} must be a`,
    );
    assertThrows(
      () => new HttpResponseParser(recorder([]), options),
      RangeError,
      `received ${value}`,
    );
  }
});

// ---------------------------------------------------------------------------
// Request smuggling and malformed requests
// ---------------------------------------------------------------------------

Deno.test("HttpRequestParser rejects Content-Length with Transfer-Encoding", () => {
  const messages = rejectPostFields([
    "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
    "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
  ], 400);
  for (const message of messages) {
    assertEquals(
      message,
      "Cannot parse HTTP request: a message has both Content-Length and Transfer-Encoding",
    );
  }
});

Deno.test("HttpRequestParser rejects differing Content-Length values", () => {
  const messages = rejectPostFields(
    [
      "Content-Length: 3\r\nContent-Length: 4\r\n",
      "Content-Length: 3, 4\r\n",
      "Content-Length: 3, 3, 30\r\n",
      "Content-Length: 0\r\nContent-Length: 3\r\n",
    ],
    400,
    "abcd",
  );
  for (const message of messages) {
    assert(message.includes("Content-Length has differing values"), message);
  }
});

Deno.test("HttpRequestParser rejects a Content-Length that is not plain digits", () => {
  const values = [
    "-1",
    "+1",
    "0x10",
    "1 2",
    "",
    "1.0",
    "abc",
    "1e3",
    "3,",
    ",3",
    "3,,3",
    "\xb3",
  ];
  const messages = rejectPostFields(
    values.map((value) => `Content-Length: ${value}\r\n`),
    400,
    "",
  );
  for (const message of messages) {
    assert(
      message.includes("Content-Length is not a number of bytes"),
      message,
    );
  }
  const [huge] = rejectPostFields(
    ["Content-Length: 99999999999999999999\r\n"],
    400,
    "",
  );
  assert(huge.includes("Content-Length is too large"), huge);
});

Deno.test("HttpRequestParser rejects a request whose final transfer-coding is not chunked", () => {
  const messages = rejectPostFields([
    "Transfer-Encoding: gzip\r\n",
    "Transfer-Encoding: identity\r\n",
    "Transfer-Encoding: chunked, gzip\r\n",
    "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
    "Transfer-Encoding: xchunked\r\n",
    "Transfer-Encoding: chunked;q=1\r\n",
    'Transfer-Encoding: "chunked"\r\n',
  ], 400);
  for (const message of messages) {
    assertEquals(
      message,
      "Cannot parse HTTP request: the final transfer-coding is not chunked",
    );
  }
});

Deno.test("HttpRequestParser rejects chunked applied twice or an empty Transfer-Encoding", () => {
  const twice = rejectPostFields([
    "Transfer-Encoding: chunked, chunked\r\n",
    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
  ], 400);
  for (const message of twice) {
    assertEquals(
      message,
      "Cannot parse HTTP request: chunked is applied more than once",
    );
  }
  const [empty] = rejectPostFields(["Transfer-Encoding: \r\n"], 400, "");
  assertEquals(empty, "Cannot parse HTTP request: Transfer-Encoding is empty");
});

Deno.test("HttpRequestParser answers 501 to transfer-codings other than chunked", () => {
  const messages = rejectPostFields([
    "Transfer-Encoding: gzip, chunked\r\n",
    "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
  ], 501);
  for (const message of messages) {
    assertEquals(
      message,
      "Cannot parse HTTP request: only the chunked transfer-coding is supported",
    );
  }
});

Deno.test("HttpRequestParser rejects Transfer-Encoding in HTTP/1.0", () => {
  const message = rejectRequest(
    "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    400,
  );
  assertEquals(
    message,
    "Cannot parse HTTP request: an HTTP/1.0 message has Transfer-Encoding",
  );
});

Deno.test("HttpRequestParser rejects whitespace between a field name and the colon", () => {
  for (
    const field of [
      "Content-Length : 3",
      "Transfer-Encoding\t: chunked",
      "Host : a",
    ]
  ) {
    const message = rejectRequest(
      `POST / HTTP/1.1\r\nHost: a\r\n${field}\r\n\r\nabc`,
      400,
    );
    assert(
      message.includes("followed by whitespace before the colon"),
      message,
    );
  }
});

Deno.test("HttpRequestParser rejects folded lines (obs-fold)", () => {
  for (
    const head of [
      "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n",
      "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n , chunked\r\n\r\n",
    ]
  ) {
    const message = rejectRequest(head, 400);
    assert(message.includes("starts with whitespace (obs-fold)"), message);
  }
});

Deno.test("HttpRequestParser rejects bare LF line endings", () => {
  const heads = [
    "GET / HTTP/1.1\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\n\n",
    "GET / HTTP/1.1\r\nHost: a\n\n",
    "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n",
  ];
  for (const head of heads) {
    const message = rejectRequest(head, 400);
    assert(message.includes("bare LF"), `${JSON.stringify(head)}: ${message}`);
  }
  const size = parseRequests(CHUNKED + "3\nabc\r\n0\r\n\r\n");
  assert((size.at(-1) as { message: string }).message.includes("bare LF"));
  const data = parseRequests(CHUNKED + "3\r\nabc\n0\r\n\r\n");
  assert(
    (data.at(-1) as { message: string }).message.includes(
      "not followed by CRLF",
    ),
  );
  const trailer = parseRequests(CHUNKED + "0\r\nA: b\n\r\n");
  assert((trailer.at(-1) as { message: string }).message.includes("bare LF"));
});

Deno.test("HttpRequestParser rejects bare CR", () => {
  for (
    const head of [
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: ab\r\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX\r: ab\r\n\r\n",
      "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n",
    ]
  ) {
    rejectRequest(head, 400);
  }
  const events = parseRequests(
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\r\nabc\r\n0\r\n\r\n",
  );
  assertEquals((events.at(-1) as { error: number }).error, 400);
});

Deno.test("HttpRequestParser rejects invalid bytes in field values", () => {
  for (const byte of ["\x00", "\x01", "\x1f", "\x7f", "\x0b"]) {
    const message = rejectRequest(
      `GET / HTTP/1.1\r\nHost: a\r\nX-Value: a${byte}b\r\n\r\n`,
      400,
    );
    assertEquals(
      message,
      `Cannot parse HTTP request: the value of field "X-Value" has an invalid byte 0x${
        byte.charCodeAt(0).toString(16).padStart(2, "0")
      }`,
    );
  }
});

Deno.test("HttpRequestParser rejects invalid field names", () => {
  const cases: Array<[string, string]> = [
    ["Bad Name: x", "has an invalid byte"],
    ["Bad@Name: x", "has an invalid byte"],
    ["Bad\x00: x", "has an invalid byte"],
    ["caf\xe9: x", "has an invalid byte"],
    ["(x): y", "has an invalid byte"],
    [": x", "is empty"],
    ["NoColon", "has no colon"],
  ];
  for (const [field, why] of cases) {
    const message = rejectRequest(
      `GET / HTTP/1.1\r\nHost: a\r\n${field}\r\n\r\n`,
      400,
    );
    assert(message.includes(why), `${field}: ${message}`);
  }
});

Deno.test("HttpRequestParser rejects invalid chunk sizes", () => {
  const cases: Array<[string, string]> = [
    ["0x5", "is not a hex number"],
    ["-5", "is not a hex number"],
    ["+5", "is not a hex number"],
    [" 5", "is not a hex number"],
    ["5 ", "is not a hex number"],
    ["5\t", "is not a hex number"],
    ["g", "is not a hex number"],
    ["", "is not a hex number"],
    [";ext", "is not a hex number"],
    ["5 x", "is not a hex number"],
    ["5;a\x00b", "chunk extension has an invalid byte"],
    ["5;a\x7f", "chunk extension has an invalid byte"],
    ["20000000000000", "is too large"],
    ["ffffffffffffffffffffffff", "is too large"],
  ];
  for (const [size, why] of cases) {
    assertChunkedRejected(`${size}\r\nhello\r\n0\r\n\r\n`, why, size);
  }
  // The largest safe size is read as a size (and is over maxBodyBytes).
  const big = parseRequests(`${CHUNKED}1fffffffffffff\r\n`);
  assertEquals((big[1] as { error: number }).error, 413);
});

Deno.test("HttpRequestParser accepts chunk extensions that follow RFC 9112's grammar", () => {
  for (
    const ext of [
      ";a",
      ";a=b",
      " ; a = b ;c\t;\td",
      ';a=""',
      ';a="b c;d=e"',
      ';a="q\\"uote\\\\"',
      ";!#$%&'*+-.^_`|~=!#$%&'*+-.^_`|~",
      ';a="caf\xe9"',
    ]
  ) {
    const events = parseRequests(`${CHUNKED}3${ext}\r\nabc\r\n0\r\n\r\n`);
    assertEquals(events.slice(1), [{ body: "abc" }, done], ext);
  }
});

Deno.test("HttpRequestParser rejects chunk extensions outside RFC 9112's grammar", () => {
  const cases: Array<[string, string]> = [
    [";", "a chunk extension has an empty name"],
    ["; ", "a chunk extension has an empty name"],
    [";;a", "a chunk extension has an empty name"],
    [";=b", "a chunk extension has an empty name"],
    [";a=", "a chunk extension has an empty value"],
    [";a= ", "a chunk extension has an empty value"],
    [";a=;b", "a chunk extension has an empty value"],
    [';a="b', "a chunk extension has an unclosed quoted-string"],
    [';a="b\\"', "a chunk extension has an unclosed quoted-string"],
    [';a="b"c', "a chunk extension is malformed"],
    [";a b", "a chunk extension is malformed"],
    [";a ", "a chunk extension is malformed"],
    [";a=b ", "a chunk extension is malformed"],
    [";a=b=c", "a chunk extension has an invalid byte"],
    [";a@b", "a chunk extension has an invalid byte"],
    [";a=(b)", "a chunk extension has an invalid byte"],
    [';a="\x00"', "a chunk extension has an invalid byte"],
    [';a="\\\x7f"', "a chunk extension has an invalid byte"],
  ];
  for (const [ext, why] of cases) {
    assertChunkedRejected(`3${ext}\r\nabc\r\n0\r\n\r\n`, why, ext);
  }
});

Deno.test("HttpRequestParser limits the chunk extension bytes of a message", () => {
  // Ten bytes of extension per chunk (";abcdefghi"), 3 chunks: 30 bytes.
  const body = "1;abcdefghi\r\nx\r\n".repeat(3) + "0\r\n\r\n";
  const ok = parseRequests(CHUNKED + body, { maxChunkExtensionBytes: 30 });
  assertEquals(ok.slice(1), [{ body: "xxx" }, done]);
  const events = parseRequests(CHUNKED + body, { maxChunkExtensionBytes: 29 });
  assertEquals(events.slice(1, -1), [{ body: "xx" }]);
  const last = events.at(-1) as { error: number; message: string };
  assertEquals(last.error, 413);
  assertEquals(
    last.message,
    "Cannot parse HTTP request: the chunk extensions are larger than maxChunkExtensionBytes (29)",
  );
  // The count starts again with each message; the last chunk's count too.
  const two = parseRequests(CHUNKED + body + CHUNKED + "0;abcdefghi\r\n\r\n", {
    maxChunkExtensionBytes: 30,
  });
  assertEquals(two.length, 5);
  assertEquals(two.at(-1), done);
  assertThrows(
    () => new HttpRequestParser(recorder([]), { maxChunkExtensionBytes: -1 }),
    RangeError,
    "maxChunkExtensionBytes",
  );
});

Deno.test("HttpRequestParser rejects chunk data not followed by CRLF", () => {
  for (
    const tail of [
      "abcd\r\n0\r\n\r\n",
      "abc\n\r\n0\r\n\r\n",
      "abc\r0\r\n\r\n",
      "abcX",
    ]
  ) {
    const events = parseRequests(`${CHUNKED}3\r\n${tail}`);
    assertEquals(events.slice(1, 2), [{ body: "abc" }]);
    const last = events.at(-1) as { error: number; message: string };
    assertEquals(last.error, 400);
    assert(
      last.message.includes("chunk data is not followed by CRLF"),
      last.message,
    );
  }
});

Deno.test("HttpRequestParser requires exactly one Host on HTTP/1.1", () => {
  const none = rejectRequest("GET / HTTP/1.1\r\nX: y\r\n\r\n", 400);
  assertEquals(
    none,
    "Cannot parse HTTP request: an HTTP/1.1 request has no Host field",
  );
  const two = rejectRequest(
    "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
    400,
  );
  assertEquals(
    two,
    "Cannot parse HTTP request: a request has more than one Host field",
  );
  rejectRequest("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400);
});

Deno.test("HttpRequestParser rejects malformed request lines", () => {
  const cases: Array<[string, string]> = [
    ["GET  / HTTP/1.1", "request-target is empty or has an invalid byte"],
    ["GET / ", "HTTP version is malformed"],
    [
      "GET /",
      "the request line has no HTTP version (HTTP/0.9 is not supported)",
    ],
    ["GET /a?b", "the request line has no HTTP version"],
    ["GET / HTTP/1.1 ", "HTTP version is malformed"],
    ["GET\t/ HTTP/1.1", "method is not a token"],
    [" GET / HTTP/1.1", "method is not a token"],
    ["G(T / HTTP/1.1", "method is not a token"],
    ["GET /\x7f HTTP/1.1", "request-target is empty or has an invalid byte"],
    ["GET /caf\xe9 HTTP/1.1", "request-target is empty or has an invalid byte"],
    ["GET /a\x00 HTTP/1.1", "request-target is empty or has an invalid byte"],
    ["GET / http/1.1", "HTTP version is malformed"],
    ["GET / HTTP/1.x", "HTTP version is malformed"],
    ["GET / HTTP/11", "HTTP version is malformed"],
    ["GET / HTTP/1.10", "HTTP version is malformed"],
    ["GET / HTTPS/1.1", "HTTP version is malformed"],
    ["GET / HTTP/1,1", "HTTP version is malformed"],
    ["GET", "method is not a token"],
  ];
  for (const [line, why] of cases) {
    const message = rejectRequest(`${line}\r\nHost: a\r\n\r\n`, 400);
    assert(message.includes(why), `${JSON.stringify(line)}: ${message}`);
  }
});

Deno.test("HttpRequestParser rejects a malformed request line once it ends, before the head does", () => {
  const events: Event[] = [];
  const parser = parserFor("request", events, {});
  parser.feed(bytes("GET /\r\nHost: a\r\n"));
  assertEquals(lastError(events), {
    error: 400,
    message:
      'Cannot parse HTTP request: the request line has no HTTP version (HTTP/0.9 is not supported), received "GET /"',
  });
  // A good line waits for the rest of its head.
  const fine: Event[] = [];
  parserFor("request", fine, {}).feed(bytes("GET / HTTP/1.1\r\nHost: a\r\n"));
  assertEquals(fine, []);
});

Deno.test("HttpRequestParser answers 505 to HTTP versions other than 1.x", () => {
  for (const version of ["2.0", "0.9", "3.1"]) {
    const message = rejectRequest(
      `GET / HTTP/${version}\r\nHost: a\r\n\r\n`,
      505,
    );
    assertEquals(
      message,
      `Cannot parse HTTP request: only HTTP/1.x is supported, received "HTTP/${version}"`,
    );
  }
});

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

Deno.test("HttpResponseParser reads the status line and a Content-Length body", () => {
  const events = parseResponses(
    "HTTP/1.1 404 Not  Found\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nnope!",
  );
  assertEquals(events, [
    res({
      status: 404,
      reason: "Not  Found",
      headers: [["Content-Length", "5"], ["Content-Type", "text/plain"]],
      bodyKind: "length",
      contentLength: 5,
    }),
    { body: "nope!" },
    done,
  ]);
});

Deno.test("HttpResponseParser accepts an empty or missing reason phrase", () => {
  for (const line of ["HTTP/1.1 200", "HTTP/1.1 200 "]) {
    const events = parseResponses(`${line}\r\nContent-Length: 0\r\n\r\n`);
    assertEquals(events, [
      res({ reason: "", headers: [["Content-Length", "0"]] }),
      done,
    ]);
  }
});

Deno.test("HttpResponseParser decodes a Latin-1 reason phrase", () => {
  const events = parseResponses(
    "HTTP/1.1 200 D\xe9j\xe0 vu\r\nContent-Length: 0\r\n\r\n",
  );
  assertEquals(
    events[0],
    res({ reason: "D\xe9j\xe0 vu", headers: [["Content-Length", "0"]] }),
  );
});

Deno.test("HttpResponseParser reads a body delimited by the connection closing", () => {
  const events = parseResponses(
    "HTTP/1.1 200 OK\r\nServer: x\r\n\r\nall of this",
    { eof: true },
  );
  assertEquals(events, [
    res({
      headers: [["Server", "x"]],
      keepAlive: false,
      bodyKind: "close",
      contentLength: -1,
    }),
    { body: "all of this" },
    done,
  ]);
  const open = run("response", [bytes("HTTP/1.0 200 OK\r\n\r\nabc")], {});
  assertEquals(open.length, 2, "without feedEof() the body is not complete");
});

Deno.test("HttpResponseParser answers 413 once a close-delimited body passes maxBodyBytes", () => {
  const events = parseResponses("HTTP/1.1 200 OK\r\n\r\n0123456789", {
    maxBodyBytes: 6,
    eof: true,
  });
  assertEquals(events.slice(1), [
    { body: "012345" },
    {
      error: 413,
      message:
        "Cannot parse HTTP response: the body is larger than maxBodyBytes (6)",
    },
  ]);
});

Deno.test("HttpResponseParser reads no body for HEAD, 1xx, 204 and 304 responses, whatever their framing fields say", () => {
  // RFC 9112 §6.3 (1): they end at the empty line "regardless of the
  // header fields present", even a malformed Content-Length.
  const input = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" +
    "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n" +
    "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n" +
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" +
    "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n" +
    "HTTP/1.1 100 Continue\r\nContent-Length: -1\r\n\r\n" +
    "HTTP/1.1 204 No Content\r\nContent-Length: 1, 1, 2\r\n\r\n" +
    "HTTP/1.1 304 Not Modified\r\nContent-Length: 99999999999999999999\r\n\r\n" +
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const events = parseResponses(input, {
    methods: ["HEAD", "GET", "GET", "HEAD", "HEAD", "GET", "GET", "GET"],
  });
  assertEquals(events, [
    res({ headers: [["Content-Length", "5"]] }),
    done,
    res({
      status: 204,
      reason: "No Content",
      headers: [["Content-Length", "5"]],
    }),
    done,
    res({
      status: 304,
      reason: "Not Modified",
      headers: [["Transfer-Encoding", "chunked"]],
    }),
    done,
    res({
      headers: [["Transfer-Encoding", "chunked"], ["Content-Length", "5"]],
    }),
    done,
    res({ headers: [["Content-Length", "abc"]] }),
    done,
    res({
      status: 100,
      reason: "Continue",
      headers: [["Content-Length", "-1"]],
    }),
    done,
    res({
      status: 204,
      reason: "No Content",
      headers: [["Content-Length", "1, 1, 2"]],
    }),
    done,
    res({
      status: 304,
      reason: "Not Modified",
      headers: [["Content-Length", "99999999999999999999"]],
    }),
    done,
    res({
      headers: [["Content-Length", "2"]],
      bodyKind: "length",
      contentLength: 2,
    }),
    { body: "ok" },
    done,
  ]);
});

Deno.test("HttpResponseParser reports 1xx responses before the final one", () => {
  const input = "HTTP/1.1 100 Continue\r\n\r\n" +
    "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" +
    "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nhi" +
    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  const events = parseResponses(input, { methods: ["POST", "GET"] });
  assertEquals(events, [
    res({ status: 100, reason: "Continue" }),
    done,
    res({
      status: 103,
      reason: "Early Hints",
      headers: [["Link", "</a.css>; rel=preload"]],
    }),
    done,
    res({
      status: 201,
      reason: "Created",
      headers: [["Content-Length", "2"]],
      bodyKind: "length",
      contentLength: 2,
    }),
    { body: "hi" },
    done,
    res({ headers: [["Content-Length", "0"]] }),
    done,
  ]);
});

Deno.test("HttpResponseParser.pendingResponses counts final responses only", () => {
  const p = new HttpResponseParser(recorder([]));
  assertEquals(p.pendingResponses, 0);
  p.expectResponse("GET");
  p.expectResponse("GET");
  assertEquals(p.pendingResponses, 2);
  p.feed(bytes("HTTP/1.1 100 Continue\r\n\r\n"));
  assertEquals(p.pendingResponses, 2);
  p.feed(bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  assertEquals(p.pendingResponses, 1);
});

Deno.test("HttpResponseParser reads a chunked response with trailers", () => {
  const events = parseResponses(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n",
  );
  assertEquals(events, [
    res({
      headers: [["Transfer-Encoding", "chunked"]],
      bodyKind: "chunked",
      contentLength: -1,
    }),
    { body: "Wikipedia" },
    { complete: [["Expires", "never"]] },
  ]);
});

Deno.test("HttpResponseParser reports keep-alive from the version and Connection", () => {
  const cases: Array<[string, boolean]> = [
    ["HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true],
    [
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
      false,
    ],
    ["HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false],
    [
      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
      true,
    ],
  ];
  for (const [input, keepAlive] of cases) {
    const events = parseResponses(input);
    assertEquals(
      (events[0] as { head: { keepAlive: boolean } }).head.keepAlive,
      keepAlive,
    );
  }
});

Deno.test("HttpResponseParser rejects a response no request is awaiting", () => {
  const message = assertRejected(
    "response",
    "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n",
    400,
    { methods: [] },
  );
  assert(message.includes("no request is awaiting a response"), message);
  const events = parseResponses(
    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
  );
  assertEquals(events.length, 3);
  assertEquals((events[2] as { error: number }).error, 400);
});

Deno.test("HttpResponseParser stops reading HTTP after 101 or a CONNECT tunnel", () => {
  const upgraded = parseResponses(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
    { eof: true },
  );
  assertEquals(upgraded, [
    res({
      status: 101,
      reason: "Switching Protocols",
      headers: [["Upgrade", "websocket"]],
    }),
    done,
  ]);
  const tunnel = parseResponses(
    "HTTP/1.1 200 Connection established\r\n\r\nbinary...",
    {
      methods: ["CONNECT"],
    },
  );
  assertEquals(tunnel, [res({ reason: "Connection established" }), done]);
});

Deno.test("HttpResponseParser reads to the close a body whose final transfer-coding is not chunked", () => {
  // RFC 9112 §6.3 (4): in a response (unlike a request) such a body runs
  // until the server closes; its bytes are passed on as they came.
  for (
    const fields of [
      "Transfer-Encoding: gzip\r\n",
      "Transfer-Encoding: chunked, gzip\r\n",
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
    ]
  ) {
    const events = parseResponses(
      `HTTP/1.1 200 OK\r\n${fields}\r\n3\r\nabc\r\n0\r\n\r\n`,
      { eof: true },
    );
    assertEquals(events.slice(1), [{ body: "3\r\nabc\r\n0\r\n\r\n" }, done]);
    const head = events[0] as { head: Record<string, unknown> };
    assertEquals(head.head.bodyKind, "close", fields);
    assertEquals(head.head.keepAlive, false, fields);
    assertEquals(head.head.contentLength, -1, fields);
  }
});

Deno.test("HttpResponseParser reads a chunked body under other transfer-codings, leaving them applied", () => {
  // RFC 9112 §6.3 (4): chunked last frames the body whatever came before
  // it; the other codings are the caller's to undo (Transfer-Encoding
  // stays in the head), as with a body read to the close, and as fetch()
  // passes it. Only a request with them is refused (501).
  for (
    const fields of [
      "Transfer-Encoding: gzip, chunked\r\n",
      "Transfer-Encoding: x-custom\r\nTransfer-Encoding: chunked\r\n",
    ]
  ) {
    const events = parseResponses(
      `HTTP/1.1 200 OK\r\n${fields}\r\n3\r\nabc\r\n0\r\n\r\n` +
        "HTTP/1.1 204 No Content\r\n\r\n",
      { methods: ["GET", "GET"] },
    );
    assertEquals(events.slice(1), [
      { body: "abc" },
      done,
      res({ status: 204, reason: "No Content" }),
      done,
    ], fields);
    const head = events[0] as { head: Record<string, unknown> };
    assertEquals(
      [head.head.bodyKind, head.head.keepAlive, head.head.contentLength],
      ["chunked", true, -1],
      fields,
    );
  }
});

Deno.test("HttpResponseParser replaces each obs-fold with spaces", () => {
  // RFC 9112 §5.2: a user agent unfolds a folded response field (a
  // server rejects one in a request); framing fields are read unfolded.
  const input = "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\t\td\r\n" +
    "Content-Length:\r\n 2\r\n\r\nhi" +
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
    "0\r\nX-T: e\r\n\tf\r\n\r\n";
  const events = parseResponses(input, { methods: ["GET", "GET"] });
  assertEquals(events, [
    res({
      headers: [["X-A", "b   c    d"], ["Content-Length", "2"]],
      bodyKind: "length",
      contentLength: 2,
    }),
    { body: "hi" },
    done,
    res({
      headers: [["Transfer-Encoding", "chunked"]],
      bodyKind: "chunked",
      contentLength: -1,
    }),
    { complete: [["X-T", "e   f"]] },
  ]);
  // Whitespace before the first field is no fold: still an error.
  const message = assertRejected(
    "response",
    "HTTP/1.1 200 OK\r\n X-A: b\r\n\r\n",
    400,
  );
  assert(message.includes("starts with whitespace (obs-fold)"), message);
});

Deno.test("HttpResponseParser reads repeated equal Content-Length values as one field", () => {
  const events = parseResponses(
    "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nX: y\r\ncontent-length: 2\r\n\r\nok",
  );
  assertEquals(events, [
    res({
      headers: [["Content-Length", "2"], ["X", "y"]],
      bodyKind: "length",
      contentLength: 2,
    }),
    { body: "ok" },
    done,
  ]);
});

Deno.test("HttpResponseParser rejects conflicting framing", () => {
  const cases: Array<[string, number, string]> = [
    [
      "Transfer-Encoding: chunked\r\nContent-Length: 1\r\n",
      400,
      "both Content-Length",
    ],
    ["Content-Length: 1\r\nContent-Length: 2\r\n", 400, "differing values"],
    ["Content-Length: 1, 1, 2\r\n", 400, "differing values"],
    ["Content-Length: -1\r\n", 400, "not a number of bytes"],
    [
      "Content-Length: x\r\nContent-Length: 2\r\n",
      400,
      "not a number of bytes",
    ],
  ];
  for (const [fields, status, why] of cases) {
    const message = assertRejected(
      "response",
      `HTTP/1.1 200 OK\r\n${fields}\r\n`,
      status,
    );
    assert(message.includes(why), message);
  }
  const old = assertRejected(
    "response",
    "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    400,
  );
  assert(old.includes("HTTP/1.0 message has Transfer-Encoding"), old);
});

Deno.test("HttpResponseParser rejects malformed status lines", () => {
  for (
    const line of [
      "HTTP/1.1 20 OK",
      "HTTP/1.1 2000 OK",
      "HTTP/1.1 099 Odd",
      "HTTP/1.1 200x",
      "HTTP/1.1  200 OK",
      "HTTP/1.1 2a0 OK",
      "http/1.1 200 OK",
      "HTTP/1.1",
      "HTTP/1.1 200 O\x00K",
      "HTTP/1.1 200 O\x7fK",
    ]
  ) {
    const message = assertRejected(
      "response",
      `${line}\r\nContent-Length: 0\r\n\r\n`,
      400,
    );
    assert(
      message.includes("status line is malformed") ||
        message.includes("version is malformed") ||
        message.includes("reason phrase has an invalid byte"),
      `${JSON.stringify(line)}: ${message}`,
    );
  }
  assertRejected("response", "HTTP/2.0 200 OK\r\n\r\n", 505);
  const high = parseResponses(
    "HTTP/1.1 999 Whatever\r\nContent-Length: 0\r\n\r\n",
  );
  assertEquals((high[0] as { head: { status: number } }).head.status, 999);
});

Deno.test("HttpResponseParser rejects a status line over maxLineBytes with 400", () => {
  const message = assertRejected(
    "response",
    `HTTP/1.1 200 ${"O".repeat(30)}\r\n\r\n`,
    400,
    { maxLineBytes: 20 },
  );
  assertEquals(
    message,
    "Cannot parse HTTP response: the status line is longer than maxLineBytes (20)",
  );
});

Deno.test("HttpResponseParser fails a response cut short by the connection closing", () => {
  const events = parseResponses(
    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    {
      eof: true,
    },
  );
  assertEquals(events.slice(1), [
    { body: "abc" },
    {
      error: 400,
      message:
        "Cannot parse HTTP response: the connection closed before the message was complete, received end of input with 7 body bytes of its Content-Length still due",
    },
  ]);
  const chunked = parseResponses(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    { eof: true },
  );
  assertEquals(chunked.at(-1), {
    error: 400,
    message:
      "Cannot parse HTTP response: the connection closed before the message was complete, received end of input before the chunked body's last chunk",
  });
});

Deno.test("HttpResponseParser quotes the part of a head the connection closed in", () => {
  // What a TLS server sends a plain-HTTP client before it closes (an
  // alert): Go's client quotes it too ("malformed HTTP response ...").
  const alert = "\x15\x03\x03\x00\x02\x02\x32";
  for (
    const [input, quoted] of [
      [alert, JSON.stringify(alert)],
      ["HTTP/1.1 200 OK\r\nContent-Le", '"HTTP/1.1 200 OK\\r\\nContent-Le"'],
    ]
  ) {
    // However the input is cut.
    const events = parseResponses(input, { eof: true });
    assertEquals(events.at(-1), {
      error: 400,
      message:
        `Cannot parse HTTP response: the connection closed before the message was complete, received end of input after ${quoted} of its head`,
    }, input);
  }
});

// ---------------------------------------------------------------------------
// HttpHeaderList, HttpParseError
// ---------------------------------------------------------------------------

Deno.test("HttpHeaderList looks names up in any case and keeps the pairs", () => {
  const list = new HttpHeaderList([["Set-Cookie", "a=1"], ["X", "1"], [
    "set-cookie",
    "b=2",
  ]]);
  assertEquals(list.size, 3);
  assertEquals(list.get("SET-COOKIE"), "a=1, b=2");
  assertEquals(list.getAll("set-cookie"), ["a=1", "b=2"]);
  assertEquals(list.getAll("missing"), []);
  assertEquals(list.get("missing"), undefined);
  assert(list.has("x"));
  assertEquals([...list], [["Set-Cookie", "a=1"], ["X", "1"], [
    "set-cookie",
    "b=2",
  ]]);
});

Deno.test("HttpParseError carries its status and name", () => {
  const e = new HttpParseError(431, "Cannot parse HTTP request: too big");
  assertInstanceOf(e, Error);
  assertEquals(e.name, "HttpParseError");
  assertEquals(e.status, 431);
  assertEquals(e.message, "Cannot parse HTTP request: too big");
});

Deno.test("HttpRequestParser reads a head fed whole as it reads the same head cut", () => {
  // A request head that arrives whole is read in one pass; cut, it takes
  // the general path. parseRequests() compares the two, errors included.
  const inputs = [
    "GET /a?b=c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "GET / HTTP/1.0\r\nConnection: Keep-Alive, x\r\n\r\n",
    "PUT / HTTP/1.1\r\nHOST: a\r\nExpect: 100-continue\r\n" +
    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
    "GET http://a/b HTTP/1.1\r\nHost: a\r\nX: \t v \xe9 \t\r\n\r\n",
    GET + GET,
    // Rejected:
    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\nY: z\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    "GET / HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
  ];
  const endings = inputs.map((input) => {
    const last = parseRequests(input, { eof: true }).at(-1)!;
    return "error" in last ? last.error : "ok";
  });
  assertEquals(endings, [
    "ok",
    "ok",
    "ok",
    "ok",
    "ok",
    "ok",
    400,
    400,
    400,
    400,
    400,
    400,
    505,
    400,
  ]);
});

// ---------------------------------------------------------------------------
// Randomized: mutated messages give the same events however they are cut
// ---------------------------------------------------------------------------

/** A small seeded PRNG (mulberry32), so failures can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REQUEST_PIECES = [
  GET,
  "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
  "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: v\r\n\r\n",
  "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
  "\r\n",
];
const RESPONSE_PIECES = [
  "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
  "HTTP/1.1 100 Continue\r\n\r\n",
  "HTTP/1.1 204 No Content\r\n\r\n",
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
  "HTTP/1.0 200 OK\r\n\r\nuntil close",
];
const NOISE = [
  "\r",
  "\n",
  "\r\n",
  " ",
  "\t",
  ":",
  "\x00",
  "a",
  "0",
  ";",
  ",",
  "\xff",
];

function mutate(random: () => number, pieces: string[]): string {
  let s = "";
  const count = 1 + Math.floor(random() * 3);
  for (let i = 0; i < count; i++) {
    s += pieces[Math.floor(random() * pieces.length)];
  }
  const edits = Math.floor(random() * 3);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(random() * (s.length + 1));
    if (random() < 0.5) {
      s = s.slice(0, at) + NOISE[Math.floor(random() * NOISE.length)] +
        s.slice(at);
    } else {
      s = s.slice(0, at) + s.slice(at + 1);
    }
  }
  return s;
}

function fuzz(kind: Kind, pieces: string[], seed: number, opts: RunOptions) {
  const random = prng(seed);
  const statuses = new Set<number | string>();
  for (let i = 0; i < 150; i++) {
    const input = bytes(mutate(random, pieces));
    const expected = run(kind, [input.slice()], opts);
    for (const [how, chunks] of chunkings(input)) {
      if (how.includes(" and ")) continue;
      assertEquals(
        run(kind, chunks, opts),
        expected,
        `input ${JSON.stringify(latin1(input))} cut ${how}`,
      );
    }
    // Byte by byte, the buffer never passes the limits.
    const events: Event[] = [];
    const p = parserFor(kind, events, opts);
    for (let j = 0; j < input.length; j++) {
      p.feed(input.slice(j, j + 1));
      assert(
        p.bufferedBytes <=
          Math.max(opts.maxHeaderBytes!, opts.maxLineBytes! + 2),
      );
    }
    const last = expected.at(-1);
    statuses.add(
      last === undefined ? "none" : "error" in last ? last.error : "ok",
    );
  }
  return statuses;
}

Deno.test("HttpRequestParser gives the same events for mutated requests however cut", () => {
  const limits = {
    maxHeaderBytes: 90,
    maxLineBytes: 30,
    maxHeaders: 4,
    maxBodyBytes: 8,
  };
  const seen = fuzz("request", REQUEST_PIECES, 1, { ...limits, eof: true });
  // The inputs reach both good and bad endings.
  assert(seen.has("ok") && seen.has(400), [...seen].join());
  fuzz("request", REQUEST_PIECES, 2, { ...limits, maxHeaderBytes: 40 });
});

Deno.test("HttpResponseParser gives the same events for mutated responses however cut", () => {
  const limits = {
    maxHeaderBytes: 60,
    maxLineBytes: 30,
    maxHeaders: 4,
    maxBodyBytes: 8,
  };
  const methods = ["GET", "HEAD", "GET", "POST"];
  const seen = fuzz("response", RESPONSE_PIECES, 3, {
    ...limits,
    methods,
    eof: true,
  });
  assert(seen.has("ok") && seen.has(400), [...seen].join());
  fuzz("response", RESPONSE_PIECES, 4, { ...limits, methods });
});

Deno.test("HttpRequestParser says a body piece is its reader's own only when nothing else refers to its buffer", () => {
  const pieces: string[] = [];
  const p = new HttpRequestParser({
    onHead() {},
    onBody(c, own) {
      pieces.push(`${c.length} ${own ? "own" : "shared"}`);
    },
    onMessageComplete() {},
    onError(e) {
      throw e;
    },
  });
  const head = (n: number) =>
    bytes(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${n}\r\n\r\n`);
  const body = (n: number) => new Uint8Array(n).fill(120);

  // A buffer of its own, whole: own.
  p.feed(head(3000));
  p.feed(body(1000));
  // One buffer fed in order, read after read: its last piece is own.
  const b = body(2000);
  p.feed(b.subarray(0, 1200));
  p.feed(b.subarray(1200));
  assertEquals(pieces.splice(0), ["1000 own", "1200 shared", "800 own"]);

  // The head's buffer, which the head keeps a view of: shared.
  const h = head(500);
  const withHead = new Uint8Array(h.length + 500);
  withHead.set(h);
  p.feed(withHead);
  // A buffer whose first bytes were never fed here: shared.
  p.feed(head(1000));
  p.feed(body(1100).subarray(100));
  // Fed out of order, with a gap: shared.
  p.feed(head(1000));
  const gap = body(1100);
  p.feed(gap.subarray(0, 400));
  p.feed(gap.subarray(500));
  assertEquals(pieces.splice(0), [
    "500 shared",
    "1000 shared",
    "400 shared",
    "600 shared",
  ]);

  // A body that ends before the next head in its buffer: shared; the
  // next body, after that head: shared.
  p.feed(head(600));
  const two = new Uint8Array(600 + h.length + 500);
  two.set(body(600));
  two.set(h, 600);
  p.feed(two);
  assertEquals(pieces.splice(0), ["600 shared", "500 shared"]);
});

Deno.test("HttpResponseParser says a body piece is shared when a head in its buffer keeps a view of it, not when the head was copied", () => {
  const pieces: string[] = [];
  const p = new HttpResponseParser({
    onHead() {},
    onBody(c, own) {
      pieces.push(`${c.length} ${own ? "own" : "shared"}`);
    },
    onMessageComplete() {},
    onError(e) {
      throw e;
    },
  });
  for (let i = 0; i < 3; i++) p.expectResponse("GET");
  p.feed(bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
  // Chunk-size lines are not kept.
  p.feed(bytes(`3e8\r\n${"x".repeat(1000)}`));
  p.feed(bytes("\r\n3e8\r\n"));
  p.feed(bytes("x".repeat(1000)));
  // A head cut across two inputs is copied whole: its second input's
  // body is own.
  p.feed(bytes("\r\n0\r\nA: b\r\n\r\nHTTP/1.1 200 OK\r\nContent-Le"));
  p.feed(bytes(`ngth: 1000\r\n\r\n${"y".repeat(1000)}`));
  // A head read where it lies stays a view of it.
  p.feed(bytes(
    `HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n${"z".repeat(1000)}`,
  ));
  assertEquals(pieces, ["1000 own", "1000 own", "1000 own", "1000 shared"]);
});

// ---- Bare LF in responses ----

Deno.test("HttpResponseParser reads a bare LF as a line end in a head, as fetch() does (RFC 9112 §2.2)", () => {
  // Deno's fetch() (hyper) reads each of these as the same response.
  const heads = [
    "HTTP/1.1 200 OK\nX-A: b\r\nContent-Length: 2\r\n\r\n",
    "HTTP/1.1 200 OK\r\nX-A: b\nContent-Length: 2\r\n\r\n",
    "HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 2\r\n\n",
    "HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 2\n\r\n",
    "HTTP/1.1 200 OK\nX-A: b\nContent-Length: 2\n\n",
    "\nHTTP/1.1 200 OK\nX-A: b\nContent-Length: 2\n\n",
    "\r\n\nHTTP/1.1 200 OK\nX-A: b \t\nContent-Length: 2\n\n",
    "HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\nX-A: b\nContent-Length: 2\n\n",
  ];
  for (const head of heads) {
    const events = parseResponses(head + "hi" + "HTTP/1.1 204 No Content\n\n", {
      methods: ["GET", "GET"],
    });
    const interim = head.includes("100")
      ? [res({ status: 100, reason: "Continue" }), done]
      : [];
    assertEquals(events, [
      ...interim,
      res({
        headers: [["X-A", "b"], ["Content-Length", "2"]],
        bodyKind: "length",
        contentLength: 2,
      }),
      { body: "hi" },
      done,
      res({ status: 204, reason: "No Content" }),
      done,
    ], JSON.stringify(head));
  }
  // A status line without a reason, a head of the status line alone, a
  // fold (unfolded, as a CRLF one is), a body that runs to the close.
  assertEquals(
    parseResponses("HTTP/1.1 200\nX-A: b\n c\n\nhi", { eof: true }),
    [
      res({
        reason: "",
        headers: [["X-A", "b   c"]],
        keepAlive: false,
        bodyKind: "close",
        contentLength: -1,
      }),
      { body: "hi" },
      done,
    ],
  );
  assertEquals(parseResponses("HTTP/1.0 200 OK\n\nhi", { eof: true }), [
    res({
      version: "1.0",
      keepAlive: false,
      bodyKind: "close",
      contentLength: -1,
    }),
    { body: "hi" },
    done,
  ]);
});

Deno.test("HttpResponseParser keeps the status line limit with a bare LF", () => {
  const options = { maxLineBytes: 16 };
  // 16 bytes, then 17.
  const ok = parseResponses("HTTP/1.1 204 abc\n\n", options);
  assertEquals(ok, [res({ status: 204, reason: "abc" }), done]);
  const message = assertRejected(
    "response",
    "HTTP/1.1 204 abcd\n\n",
    400,
    options,
  );
  assert(message.includes("longer than maxLineBytes (16)"), message);
});

Deno.test("HttpResponseParser still rejects a bare CR, and a bare LF in chunked framing and trailers, as fetch() does", () => {
  for (
    const head of [
      "HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\nX: a\rb\nContent-Length: 0\n\n",
      "HTTP/1.1 200 OK\nX: ab\r\r\nContent-Length: 0\n\n",
      "HTTP/1.1 200 OK\nContent-Length: 0\n\r\r\n\n",
    ]
  ) {
    const events = parseResponses(head);
    assertEquals(lastError(events).error, 400, JSON.stringify(head));
    assertEquals(events.length, 1, JSON.stringify(head));
  }
  const chunked = "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n";
  const cases: Array<[string, string]> = [
    ["2\nhi\r\n0\r\n\r\n", "a chunk-size line ends with a bare LF"],
    ["2;a=b\nhi\r\n0\r\n\r\n", "a chunk-size line ends with a bare LF"],
    ["2\r\nhi\n0\r\n\r\n", "chunk data is not followed by CRLF"],
    ["2\r\nhi\r\n0\n\r\n", "a chunk-size line ends with a bare LF"],
    ["2\r\nhi\r\n0\r\n\n", "a line ends with a bare LF"],
    ["2\r\nhi\r\n0\r\nX-T: 1\n\r\n", "a line ends with a bare LF"],
  ];
  for (const [body, why] of cases) {
    const error = lastError(parseResponses(chunked + body));
    assertEquals(error.error, 400, body);
    assert(
      error.message.includes(why),
      `${JSON.stringify(body)}: ${error.message}`,
    );
  }
});
