import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import { LimitOverrunError } from "../../futures/errors.ts";
import { JsonSplitter } from "../../jsonrpc/_json_splitter.ts";
import { bytes, receiveEverySplit, text } from "../_every_split.ts";
import { externalBytes } from "../_gc.ts";

function recorder(maxLength = Infinity) {
  const log: string[] = [];
  const p = new JsonSplitter(
    (value) => log.push(text(value)),
    maxLength,
    (e) => log.push(`too long ${e.consumed}`),
  );
  return Object.assign(p, { log });
}

Deno.test("JsonSplitter cuts the same values out of every split of the stream", async () => {
  const input = bytes(
    ' {"a":[1,{"b":"}]"}]}\n["x\\"]", "\\\\"]"str{"\t12 true' +
      '{"nested":{"deep":[[[]]]}}{}[]',
  );
  const results = await receiveEverySplit(
    input,
    () => recorder(),
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(result, [
      '{"a":[1,{"b":"}]"}]}',
      '["x\\"]", "\\\\"]',
      '"str{"',
      "12",
      "true",
      '{"nested":{"deep":[[[]]]}}',
      "{}",
      "[]",
    ], name);
  }
});

Deno.test("JsonSplitter delivers stray closing brackets and garbage as values of their own", async () => {
  const results = await receiveEverySplit(
    bytes('}]oops{"ok":1} x'),
    () => recorder(),
    (p) => p.log,
  );
  for (const { name, result } of results) {
    // The last token " x" has no end before EOF: dropped.
    assertEquals(result, ["}", "]", "oops", '{"ok":1}'], name);
  }
});

Deno.test("JsonSplitter cuts a malformed but balanced value at its closing bracket", async () => {
  const results = await receiveEverySplit(
    bytes('{"a":}[1,,2]{"b":2}'),
    () => recorder(),
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(result, ['{"a":}', "[1,,2]", '{"b":2}'], name);
  }
});

Deno.test("JsonSplitter drops an incomplete value at the end of the stream", async () => {
  const results = await receiveEverySplit(
    bytes('{"a":1} {"b":[2'),
    () => recorder(),
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(result, ['{"a":1}'], name);
  }
});

Deno.test("JsonSplitter allows maxLength bytes and stops at a longer value", async () => {
  const results = await receiveEverySplit(
    bytes("[1,2] [1,22] [3]"),
    () => recorder(5),
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(result.length, 2, name);
    assertEquals(result[0], "[1,2]", name);
    assertEquals(result[1].startsWith("too long"), true, name);
  }
});

Deno.test("JsonSplitter reports an over-long value before it ends", () => {
  const errors: LimitOverrunError[] = [];
  const p = new JsonSplitter(() => {}, 4, (e) => errors.push(e));
  p.dataReceived(bytes("[1,2"));
  assertEquals(errors.length, 0);
  p.dataReceived(bytes(","));
  assertEquals(errors.length, 1);
  assertInstanceOf(errors[0], LimitOverrunError);
  // Stopped: nothing more is delivered.
  p.dataReceived(bytes("3] [4]"));
  assertEquals(errors.length, 1);
});

Deno.test("JsonSplitter delivers a value that arrives whole as a view, without a copy", () => {
  const seen: Uint8Array[] = [];
  const p = new JsonSplitter((v) => seen.push(v), Infinity, () => {});
  const data = bytes('{"a":1}{"b":2}');
  p.dataReceived(data);
  assertEquals(seen.length, 2);
  assertEquals(seen[0].buffer, data.buffer);
  assertEquals(text(seen[1]), '{"b":2}');
});

Deno.test("JsonSplitter lets go of a long value's buffer once it is delivered: an idle connection keeps no megabytes", async () => {
  const before = await externalBytes();
  const sizes: number[] = [];
  const kept: JsonSplitter[] = [];
  const piece = new Uint8Array(64 * 1024).fill(0x61);
  for (let i = 0; i < 16; i++) {
    const p = new JsonSplitter((v) => sizes.push(v.length), 4 << 20, () => {});
    // A 2 MiB string, as a peer sends it: in pieces, then the start of the
    // next value.
    p.dataReceived(bytes('"'));
    for (let n = 0; n < 32; n++) p.dataReceived(piece);
    p.dataReceived(bytes('"{"a"'));
    kept.push(p);
  }
  const grown = (await externalBytes()) - before;
  assertEquals(sizes, Array(16).fill((2 << 20) + 2));
  assert(grown < 8 << 20, `${grown >> 20} MiB kept by 16 idle splitters`);
  kept[0].dataReceived(bytes(":1}"));
  assertEquals(sizes.at(-1), '{"a":1}'.length);
});
