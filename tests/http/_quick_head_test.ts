import { assertEquals } from "@std/assert";
import { HeadScan } from "../../http/_head_scan.ts";
import { quickHead } from "../../http/_quick_head.ts";

const LIMITS = { maxLineBytes: 8192, maxHeaders: 100, maxHeaderBytes: 16384 };
const encoder = new TextEncoder();

function scan(text: string, limits = LIMITS): [number, HeadScan] {
  const s = new HeadScan();
  const data = encoder.encode("xx" + text);
  return [quickHead(data, 2, data.length, s, limits), s];
}

Deno.test("quickHead() reads a whole request head and where its parts lie", () => {
  const head = "GET /a?b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  const [end, s] = scan(head + "body");
  assertEquals(end, 2 + head.length);
  assertEquals(
    [s.start, s.methodEnd, s.textStart, s.textEnd, s.fieldsAt],
    [2, 5, 6, 10, 21],
  );
  assertEquals([s.count, s.minor, s.hosts, s.close], [2, 1, 1, true]);
  assertEquals([s.hostStart, s.hostEnd], [27, 28]);
});

Deno.test("quickHead() leaves to the general path what it does not read", () => {
  for (
    const text of [
      "GET / HTTP/1.1\r\nHost: h\r\n", // not whole
      "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
      "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\n\r\n",
      "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
      "GET /\r\n\r\n",
      " GET / HTTP/1.1\r\n\r\n",
      // A byte RFC 3986 does not allow in a path (or a query), or an IPv6
      // literal in an absolute-form target.
      "GET /a\\b HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /?a<b HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET http://[::1]/ HTTP/1.1\r\nHost: h\r\n\r\n",
    ]
  ) {
    assertEquals(scan(text)[0], -1, JSON.stringify(text));
  }
  const head = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
  assertEquals(scan(head, { ...LIMITS, maxHeaders: 1 })[0], -1);
  assertEquals(scan(head, { ...LIMITS, maxLineBytes: 13 })[0], -1);
  assertEquals(
    scan(head, { ...LIMITS, maxHeaderBytes: head.length - 1 })[0],
    -1,
  );
  assertEquals(
    scan(head, { ...LIMITS, maxHeaderBytes: head.length })[0],
    2 + head.length,
  );
});

Deno.test("quickHead() reads a query with what browsers send unencoded", () => {
  const head = "GET /p?a[]={b}|c^`\\?d HTTP/1.1\r\nHost: h\r\n\r\n";
  const [end, s] = scan(head);
  assertEquals(end, 2 + head.length);
  assertEquals([s.textStart, s.textEnd], [6, 6 + "/p?a[]={b}|c^`\\?d".length]);
});
