// Properties of the HTTP parser on random messages — well formed, cut
// short, mutated, or noise — fed whole, cut at random points and byte by
// byte: it never throws, never holds more than its limits allow, reports
// the same events however the input is cut (which also holds the
// single-pass head path to the general one), reads well-formed messages
// back exactly, accepts only a Host and target a URL can be built from,
// and calls a body piece its reader's own only when transferring its
// buffer at once changes nothing else.

import { assert, assertEquals } from "@std/assert";
import fc from "fast-check";
import {
  HttpParseError,
  type HttpParserCallbacks,
  type HttpParserOptions,
  type HttpRequestHead,
  HttpRequestParser,
  type HttpResponseHead,
  HttpResponseParser,
} from "../../http/_http_parser.ts";
import { cut, cutPoints, settings } from "../_property.ts";

// ---- Events ----

type Event =
  | { head: Record<string, unknown> }
  | { body: string }
  | { complete: Array<[string, string]> | null }
  | { error: number; message: string };

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

function bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** The URL a server builds for a request head (see HttpServerProtocol). */
function urlOf(head: HttpRequestHead): string | null {
  const form = head.targetForm;
  if (form === "absolute") return head.target;
  if (form === "other") return null;
  const base = head.host === "" ? "http://127.0.0.1:80" : "http://" + head.host;
  return base + (form === "asterisk" ? "/*" : head.target);
}

function recorder<H extends HttpRequestHead | HttpResponseHead>(
  events: Event[],
): HttpParserCallbacks<H> {
  return {
    onHead(h) {
      assert(!events.some((e) => "error" in e), "an event after an error");
      const common = {
        version: h.versionMinor,
        headers: h.headers.pairs,
        keepAlive: h.keepAlive,
        bodyKind: h.bodyKind,
        contentLength: h.contentLength,
      };
      if ("method" in h) {
        const url = urlOf(h);
        // What the parser accepts, a URL can be made of.
        assert(url === null || URL.canParse(url), `not a URL: ${url}`);
        events.push({
          head: {
            method: h.method,
            target: h.target,
            form: h.targetForm,
            host: h.host,
            expectContinue: h.expectContinue,
            ...common,
          },
        });
      } else {
        events.push({
          head: { status: h.status, reason: h.reason, ...common },
        });
      }
    },
    onBody(chunk) {
      assert(chunk.length > 0, "an empty body piece");
      const last = events.at(-1);
      if (last !== undefined && "body" in last) last.body += latin1(chunk);
      else events.push({ body: latin1(chunk) });
    },
    onMessageComplete(trailers) {
      events.push({ complete: trailers === null ? null : trailers.pairs });
    },
    onError(error) {
      assert(error instanceof HttpParseError);
      assert(
        [400, 413, 414, 431, 501, 505].includes(error.status),
        `status ${error.status}`,
      );
      events.push({ error: error.status, message: error.message });
    },
  };
}

interface Run {
  options: HttpParserOptions;
  methods: string[];
  eof: boolean;
}

function parse(
  kind: "request" | "response",
  pieces: Uint8Array[],
  run: Run,
): Event[] {
  const events: Event[] = [];
  const o = run.options;
  const parser = kind === "request"
    ? new HttpRequestParser(recorder<HttpRequestHead>(events), o)
    : new HttpResponseParser(recorder<HttpResponseHead>(events), o);
  if (parser instanceof HttpResponseParser) {
    for (const m of run.methods) parser.expectResponse(m);
  }
  const bound = Math.max(
    o.maxHeaderBytes ?? 16384,
    (o.maxLineBytes ?? 8192) + 2,
  );
  for (const piece of pieces) {
    parser.feed(piece);
    assert(
      parser.bufferedBytes <= bound,
      `holds ${parser.bufferedBytes} bytes, over ${bound}`,
    );
  }
  if (run.eof) parser.feedEof();
  return events;
}

// ---- Messages ----

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCXYZ";
const token = fc.string({
  unit: fc.constantFrom(...TCHARS),
  minLength: 1,
  maxLength: 8,
});
const fieldValue = fc.string({
  unit: fc.constantFrom(...'abc 1\t:;,"=\xe9\x80/'),
  maxLength: 12,
});
const FRAMING = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "expect",
]);
const fields = fc.array(
  fc.tuple(token, fieldValue).filter(([n]) => !FRAMING.has(n.toLowerCase())),
  { maxLength: 5 },
);
/** Dotted numbers and names, with a port, near the edges of validity. */
const hostShaped = fc.tuple(
  fc.array(
    fc.oneof(
      fc.integer({ min: 0, max: 300 }).map(String),
      fc.integer({ min: 0, max: 300 }).map((n) => "0" + n),
      fc.constantFrom("0x7f", "a", "xn--9ca", "xn--zz", "-b", "c-", "", "Z9"),
    ),
    { minLength: 1, maxLength: 5 },
  ).map((labels) => labels.join(".")),
  fc.option(
    fc.oneof(
      fc.integer({ min: 0, max: 70000 }).map(String),
      fc.constantFrom("", "0080", "65535", "65536", "00000000080", "+1"),
    ),
    { nil: undefined },
  ),
).map(([name, port]) => port === undefined ? name : `${name}:${port}`);
/** Hosts from authority characters, many of them no URL accepts. */
const host = fc.oneof(
  hostShaped,
  fc.constantFrom(
    "a",
    "example.com",
    "localhost:8000",
    "127.0.0.1:8080",
    "[::1]:80",
    "x:99999",
    "a%b",
    "a%41",
    "1.2.3.256",
    "xn--zz",
  ),
  fc.string({ unit: fc.constantFrom(..."a1x09.:-%[]_"), maxLength: 10 }),
);
const target = fc.oneof(
  fc.string({ unit: fc.constantFrom(..."/ab?=&%.~!*"), maxLength: 10 }).map((
    p,
  ) => "/" + p),
  fc.constant("*"),
  fc.tuple(fc.constantFrom("http://", "HTTPS://", "http:"), host).map((
    [s, h],
  ) => s + h + "/x"),
);
const chunkExt = fc.constantFrom(
  "",
  "",
  ";a",
  " ; a = b",
  ';q="x\\"y"',
  ";",
  ';a="open',
  ";a=",
);
const content = fc.string({
  unit: fc.constantFrom(..."xyz\r\n0"),
  maxLength: 20,
});
/** A body, and how it is framed: none, Content-Length or chunked. */
function bodies(ext: fc.Arbitrary<string>, data = content) {
  return fc.oneof(
    fc.constant({ fields: "", data: "", wire: "" }),
    data.map((d) => ({
      fields: `Content-Length: ${d.length}\r\n`,
      data: d,
      wire: d,
    })),
    fc.tuple(
      fc.array(fc.tuple(data.filter((c) => c.length > 0), ext), {
        maxLength: 4,
      }),
      ext,
      fields,
    ).map(([chunks, lastExt, trailers]) => ({
      fields: "Transfer-Encoding: chunked\r\n",
      data: chunks.map(([c]) => c).join(""),
      wire: chunks.map(([c, e]) => `${c.length.toString(16)}${e}\r\n${c}\r\n`)
        .join("") +
        `0${lastExt}\r\n` +
        trailers.map(([n, v]) => `${n}: ${v}\r\n`).join("") + "\r\n",
    })),
  );
}
const body = bodies(chunkExt);

const request = fc.record({
  method: fc.oneof(fc.constantFrom("GET", "POST", "OPTIONS", "HEAD"), token),
  target,
  minor: fc.constantFrom(1, 1, 0),
  host: fc.option(host, { nil: undefined }),
  fields,
  body,
}).map((r) =>
  `${r.method} ${r.target} HTTP/1.${r.minor}\r\n` +
  (r.host === undefined ? "" : `Host: ${r.host}\r\n`) +
  r.fields.map(([n, v]) => `${n}: ${v}\r\n`).join("") + r.body.fields +
  "\r\n" + r.body.wire
);

const response = fc.record({
  status: fc.constantFrom(200, 204, 304, 100, 404, 500),
  reason: fc.constantFrom("OK", "", "Not Found", "x\xe9"),
  minor: fc.constantFrom(1, 1, 0),
  fields,
  body,
}).map((r) =>
  `HTTP/1.${r.minor} ${r.status} ${r.reason}\r\n` +
  r.fields.map(([n, v]) => `${n}: ${v}\r\n`).join("") + r.body.fields +
  "\r\n" + r.body.wire
);

/** Random damage: a byte changed, inserted or removed, or the end cut. */
function damaged(messages: fc.Arbitrary<string>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(
    fc.array(messages, { minLength: 1, maxLength: 3 }),
    fc.constantFrom("none", "none", "change", "insert", "remove", "truncate"),
    fc.nat(),
    fc.constantFrom(0, 9, 10, 13, 32, 34, 58, 59, 127, 128, 255, 48, 65),
  ).map(([list, how, at, byte]) => {
    const data = [...bytes(list.join(""))];
    const i = at % (data.length + 1);
    if (how === "change" && i < data.length) data[i] = byte;
    else if (how === "insert") data.splice(i, 0, byte);
    else if (how === "remove") data.splice(i, 1);
    else if (how === "truncate") data.length = i;
    return Uint8Array.from(data);
  });
}

const noise = fc.uint8Array({ maxLength: 200, size: "max" });

const limits: fc.Arbitrary<HttpParserOptions> = fc.oneof(
  fc.constant({}),
  fc.record({
    maxHeaderBytes: fc.integer({ min: 1, max: 300 }),
    maxHeaders: fc.integer({ min: 1, max: 6 }),
    maxBodyBytes: fc.integer({ min: 0, max: 40 }),
    maxLineBytes: fc.integer({ min: 1, max: 60 }),
    maxChunkExtensionBytes: fc.integer({ min: 1, max: 12 }),
  }, { requiredKeys: [] }),
);

const runs: fc.Arbitrary<Run> = fc.record({
  options: limits,
  methods: fc.array(fc.constantFrom("GET", "HEAD", "POST", "CONNECT"), {
    minLength: 1,
    maxLength: 4,
  }),
  eof: fc.boolean(),
});

function sameHoweverCut(
  kind: "request" | "response",
  input: Uint8Array,
  run: Run,
  points: number[],
): Event[] {
  const whole = parse(kind, [input.slice()], run);
  const split = parse(kind, cut(input, points), run);
  assertEquals(
    split,
    whole,
    `cut at ${points}: ${JSON.stringify(latin1(input))}`,
  );
  const bytewise = parse(kind, Array.from(input, (b) => Uint8Array.of(b)), run);
  assertEquals(
    bytewise,
    whole,
    `byte by byte: ${JSON.stringify(latin1(input))}`,
  );
  const errors = whole.filter((e) => "error" in e);
  assert(
    errors.length <= 1 && (errors.length === 0 || whole.at(-1) === errors[0]),
  );
  return whole;
}

/**
 * Checks sameHoweverCut() for `kind` on `messages`, damaged or not, and on
 * noise.
 */
function assertSameHoweverCut(
  kind: "request" | "response",
  messages: fc.Arbitrary<string>,
): void {
  fc.assert(
    fc.property(
      fc.oneof({ weight: 5, arbitrary: damaged(messages) }, {
        weight: 1,
        arbitrary: noise,
      }),
      runs,
      cutPoints,
      (input, run, points) => {
        sameHoweverCut(kind, input, run, points);
      },
    ),
    settings(400),
  );
}

Deno.test("HttpRequestParser reports the same events however the input is cut, and never throws", () => {
  assertSameHoweverCut("request", request);
});

Deno.test("HttpResponseParser reports the same events however the input is cut, and never throws", () => {
  assertSameHoweverCut("response", response);
});

/** How reads come: their sizes, where they land, when the parser pauses. */
interface Layout {
  /** The size of read `i` (cycled; the last one may be shorter). */
  sizes: number[];
  /** Whether read `i` starts a buffer of its own (cycled). */
  fresh: boolean[];
  /** The bytes left unread at the end of buffer `i` (cycled). */
  slack: number[];
  /** Whether the parser pauses in the callback of event `i` (cycled). */
  pauses: boolean[];
}

/**
 * Parses `input` as a transport delivers it: a read lands in the rest of
 * the buffer the one before it used, unless it starts a new buffer; and
 * the parser pauses in the callbacks `layout.pauses` picks, resuming once
 * the next read came. A piece the parser calls its reader's own must end its
 * buffer, which is transferred at once; the events are read afterwards,
 * heads and trailers only then, so that anything still reading the
 * transferred bytes shows.
 */
function parseTransferring(
  kind: "request" | "response",
  input: Uint8Array,
  run: Run,
  layout: Layout,
): Event[] {
  const reads: Uint8Array[] = [];
  for (let at = 0, i = 0; at < input.length; i++) {
    const n = layout.sizes[i % layout.sizes.length];
    reads.push(input.subarray(at, at += n));
  }
  const calls: Array<(cb: HttpParserCallbacks<never>) => void> = [];
  const maybePause = () => {
    const pauses = layout.pauses;
    if (pauses[calls.length % pauses.length]) parser.pause();
  };
  const callbacks: HttpParserCallbacks<HttpRequestHead & HttpResponseHead> = {
    onHead(head) {
      calls.push((cb) => cb.onHead(head as never));
      maybePause();
    },
    onBody(chunk, own) {
      const copy = chunk.slice();
      calls.push((cb) => cb.onBody(copy, own));
      if (own) {
        assertEquals(
          chunk.byteOffset + chunk.length,
          chunk.buffer.byteLength,
          "a piece called its reader's own does not end its buffer",
        );
        (chunk.buffer as ArrayBuffer).transfer();
      }
      maybePause();
    },
    onMessageComplete(trailers) {
      calls.push((cb) => cb.onMessageComplete(trailers));
      maybePause();
    },
    onError(error) {
      calls.push((cb) => cb.onError(error));
    },
  };
  const parser = kind === "request"
    ? new HttpRequestParser(callbacks, run.options)
    : new HttpResponseParser(callbacks, run.options);
  if (parser instanceof HttpResponseParser) {
    for (const m of run.methods) parser.expectResponse(m);
  }
  let buffer = new ArrayBuffer(0);
  let at = 0;
  let buffers = 0;
  for (let i = 0; i < reads.length; i++) {
    const read = reads[i];
    if (i === 0 || layout.fresh[i % layout.fresh.length]) {
      // Room for this read and those that share its buffer, plus slack.
      let size = 0;
      let j = i;
      do size += reads[j++].length; while (
        j < reads.length && !layout.fresh[j % layout.fresh.length]
      );
      buffer = new ArrayBuffer(
        size + layout.slack[buffers++ % layout.slack.length],
      );
      at = 0;
    }
    // Throws if an earlier piece's transfer took the rest of its buffer.
    const view = new Uint8Array(buffer, at, read.length);
    view.set(read);
    at += read.length;
    const resume = parser.paused;
    parser.feed(view);
    if (resume) parser.resume();
  }
  while (parser.paused) parser.resume();
  if (run.eof) parser.feedEof();
  while (parser.paused) parser.resume();
  const events: Event[] = [];
  const replay = recorder(events) as HttpParserCallbacks<never>;
  for (const call of calls) call(replay);
  return events;
}

const layouts: fc.Arbitrary<Layout> = fc.record({
  sizes: fc.array(fc.integer({ min: 1, max: 300 }), {
    minLength: 1,
    maxLength: 8,
  }),
  fresh: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
  slack: fc.array(fc.constantFrom(0, 0, 1, 7), { minLength: 1, maxLength: 4 }),
  pauses: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
});

/** Pipelined messages with bodies (chunked ones with trailers at times). */
const withBody = bodies(
  chunkExt,
  fc.string({
    unit: fc.constantFrom(..."xyz\r\n0"),
    maxLength: 300,
    size: "max",
  }),
);
const requestsWithBodies = fc.array(
  fc.record({ fields, body: withBody }).map((r) =>
    "POST /x HTTP/1.1\r\nHost: a\r\n" +
    r.fields.map(([n, v]) => `${n}: ${v}\r\n`).join("") + r.body.fields +
    "\r\n" + r.body.wire
  ),
  { minLength: 1, maxLength: 4 },
);
const responsesWithBodies = fc.array(
  fc.record({ fields, body: withBody }).map((r) =>
    "HTTP/1.1 200 OK\r\n" +
    r.fields.map(([n, v]) => `${n}: ${v}\r\n`).join("") +
    (r.body.fields || "Content-Length: 0\r\n") + "\r\n" + r.body.wire
  ),
  { minLength: 1, maxLength: 4 },
);

/**
 * Checks that `kind` reports the same events when every body piece it
 * calls its reader's own is transferred at once as when nothing is, on
 * pipelined messages with bodies (`lists`) and on damaged ones.
 */
function assertOwnPiecesAreOwn(
  kind: "request" | "response",
  lists: fc.Arbitrary<string[]>,
  messages: fc.Arbitrary<string>,
): void {
  const cases = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.tuple(lists, fc.boolean()).map(([list, eof]) => ({
        input: bytes(list.join("")),
        run: { options: {}, methods: list.map(() => "GET"), eof },
      })),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(damaged(messages), runs).map(([input, run]) => ({
        input,
        run,
      })),
    },
  );
  fc.assert(
    fc.property(cases, layouts, ({ input, run }, layout) => {
      assertEquals(
        parseTransferring(kind, input, run, layout),
        parse(kind, [input.slice()], run),
        `${JSON.stringify(layout)}: ${JSON.stringify(latin1(input))}`,
      );
    }),
    settings(400),
  );
}

Deno.test("HttpRequestParser calls a body piece its reader's own only when transferring its buffer changes nothing else", () => {
  assertOwnPiecesAreOwn("request", requestsWithBodies, request);
});

Deno.test("HttpResponseParser calls a body piece its reader's own only when transferring its buffer changes nothing else", () => {
  assertOwnPiecesAreOwn("response", responsesWithBodies, response);
});

Deno.test("HttpRequestParser reads well-formed requests back exactly", () => {
  const wellFormed = fc.record({
    method: fc.constantFrom("GET", "POST", "PUT", "DELETE"),
    path: fc.string({ unit: fc.constantFrom(..."ab/?=&%"), maxLength: 10 }),
    host: fc.constantFrom("a", "example.com:8080", "127.0.0.1", "[::1]"),
    fields,
    body: bodies(fc.constantFrom("", ";a", " ; a = b", ';q="x\\"y"')),
  });
  fc.assert(
    fc.property(
      fc.array(wellFormed, { minLength: 1, maxLength: 3 }),
      cutPoints,
      (list, points) => {
        const wire = list.map((r) =>
          `${r.method} /${r.path} HTTP/1.1\r\nHost: ${r.host}\r\n` +
          r.fields.map(([n, v]) => `${n}: ${v}\r\n`).join("") +
          r.body.fields + "\r\n" + r.body.wire
        ).join("");
        const events = parse("request", cut(bytes(wire), points), {
          options: {},
          methods: [],
          eof: true,
        });
        const heads = events.filter((e) => "head" in e) as Array<
          { head: Record<string, unknown> }
        >;
        assertEquals(
          heads.map((e) => [e.head.method, e.head.target, e.head.host]),
          list.map((r) => [r.method, "/" + r.path, r.host]),
        );
        // Each message: its head, its body if any, its end.
        const bodies: string[] = [];
        let current: string | null = null;
        for (const e of events) {
          assert(!("error" in e), JSON.stringify(e));
          if ("head" in e) current = "";
          else if ("body" in e) current += e.body;
          else if ("complete" in e) bodies.push(current!);
        }
        assertEquals(bodies, list.map((r) => r.body.data));
      },
    ),
    settings(200),
  );
});

Deno.test("HttpResponseParser reads well-formed responses back exactly", () => {
  const wellFormed = fc.record({
    status: fc.constantFrom(200, 201, 404, 500),
    reason: fc.constantFrom("OK", "", "Not Found", "caf\xe9"),
    fields,
    body: bodies(fc.constantFrom("", ";a", " ; a = b", ';q="x\\"y"')),
  });
  fc.assert(
    fc.property(
      fc.array(wellFormed, { minLength: 1, maxLength: 3 }),
      content,
      cutPoints,
      (list, last, points) => {
        // A response with no framing fields runs until the connection
        // closes: only the last one may.
        const wire = list.map((r) =>
          `HTTP/1.1 ${r.status} ${r.reason}\r\n` +
          r.fields.map(([n, v]) => `${n}: ${v}\r\n`).join("") +
          (r.body.fields || "Content-Length: 0\r\n") + "\r\n" + r.body.wire
        ).join("") + "HTTP/1.0 200 OK\r\n\r\n" + last;
        const events = parse("response", cut(bytes(wire), points), {
          options: {},
          methods: [...list.map(() => "GET"), "GET"],
          eof: true,
        });
        const heads = events.filter((e) => "head" in e) as Array<
          { head: Record<string, unknown> }
        >;
        assertEquals(
          heads.map((e) => [e.head.status, e.head.reason]),
          [...list.map((r) => [r.status, r.reason]), [200, "OK"]],
        );
        const got: string[] = [];
        let current: string | null = null;
        for (const e of events) {
          assert(!("error" in e), JSON.stringify(e));
          if ("head" in e) current = "";
          else if ("body" in e) current += e.body;
          else if ("complete" in e) got.push(current!);
        }
        assertEquals(got, [...list.map((r) => r.body.data), last]);
      },
    ),
    settings(200),
  );
});

Deno.test("HttpResponseParser reads a head whose lines end with bare LFs as the same head with CRLFs, however cut", () => {
  const response = fc.record({
    status: fc.constantFrom(200, 204, 404),
    reason: fc.constantFrom("OK", "", "caf\xe9"),
    fields,
    body: bodies(fc.constantFrom("", ";a")),
    // For each line end of the head: a bare LF, or CRLF.
    bare: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
  });
  fc.assert(
    fc.property(
      fc.array(response, { minLength: 1, maxLength: 3 }),
      cutPoints,
      (list, points) => {
        const wire = (lenient: boolean) =>
          list.map((r) => {
            const lines = [
              `HTTP/1.1 ${r.status} ${r.reason}`,
              ...r.fields.map(([n, v]) => `${n}: ${v}`),
              ...(r.body.fields || "Content-Length: 0\r\n").split("\r\n")
                .filter((line) => line !== ""),
              "",
            ];
            const ends = lines.map((_, i) =>
              lenient && r.bare[i % r.bare.length] ? "\n" : "\r\n"
            );
            const body = r.status === 204 ? "" : r.body.wire;
            return lines.map((line, i) => line + ends[i]).join("") + body;
          }).join("");
        const run = (lenient: boolean, pieces: number[]) =>
          parse("response", cut(bytes(wire(lenient)), pieces), {
            options: {},
            methods: list.map(() => "GET"),
            eof: false,
          });
        const strict = run(false, []);
        assert(!strict.some((e) => "error" in e), JSON.stringify(strict));
        assertEquals(run(true, points), strict);
      },
    ),
    settings(300),
  );
});

Deno.test("HttpRequestParser accepts a Host value exactly when a URL can hold it", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        hostShaped,
        fc.string({
          unit: fc.constantFrom(..."a1x09.:-%[]_~!$&'()*+,;="),
          maxLength: 12,
        }),
      ),
      (h) => {
        const events = parse("request", [
          bytes(`GET / HTTP/1.1\r\nHost: ${h}\r\n\r\n`),
        ], {
          options: {},
          methods: [],
          eof: false,
        });
        const accepted = !("error" in events[0]);
        assertEquals(accepted, h !== "" && URL.canParse(`http://${h}/`), h);
      },
    ),
    settings(1000),
  );
});
