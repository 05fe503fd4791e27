import { assertEquals } from "@std/assert";
import { equalsLower, framingField, HeadScan } from "../../http/_head_scan.ts";

const encoder = new TextEncoder();

function read(name: string, value: string, s = new HeadScan()) {
  const src = encoder.encode(name + value);
  const isLength = framingField(
    src,
    0,
    name.length,
    name.length,
    src.length,
    s,
  );
  return { s, isLength };
}

Deno.test("framingField() reads Connection and Transfer-Encoding lists", () => {
  assertEquals(
    read("Connection", " , Keep-Alive,upgrade, CLOSE").s.close,
    true,
  );
  assertEquals(read("connection", "keep-alive").s.keepAlive, true);
  const te = read("Transfer-Encoding", "gzip, chunked").s;
  assertEquals([te.te, te.chunked, te.chunkedLast, te.otherCodings], [
    true,
    1,
    true,
    true,
  ]);
  assertEquals(read("Transfer-Encoding", "chunked, gzip").s.chunkedLast, false);
});

Deno.test("framingField() reads Host and Expect, and leaves Content-Length to the caller", () => {
  const s = read("Host", "example.com").s;
  assertEquals([s.hosts, s.hostStart, s.hostEnd], [1, 4, 15]);
  assertEquals(read("Expect", "100-Continue").s.expectContinue, true);
  assertEquals(read("Expect", "nothing").s.expectContinue, false);
  assertEquals(read("Content-Length", "5").isLength, true);
  assertEquals(read("Content-Type", "x").isLength, false);
  s.reset();
  assertEquals([s.hosts, s.contentLength, s.close], [0, -1, false]);
});

Deno.test("equalsLower() compares with a lower-case literal, ignoring case", () => {
  const src = encoder.encode("xHoStx");
  assertEquals(equalsLower(src, 1, 5, encoder.encode("host")), true);
  assertEquals(equalsLower(src, 1, 4, encoder.encode("host")), false);
  assertEquals(equalsLower(src, 0, 4, encoder.encode("host")), false);
});
