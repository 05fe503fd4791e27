import { assert, assertEquals, assertNotStrictEquals } from "@std/assert";
import {
  EncodePool,
  POOLED_MAX,
  SLAB_BYTES,
} from "../../jsonrpc/_encode_pool.ts";
import { BaseEventLoop } from "../../loop/base_event_loop.ts";

const decode = (data: Uint8Array) => new TextDecoder().decode(data);

Deno.test("EncodePool encodes UTF-8 text, with a newline when asked", () => {
  const encodeMessage = (t: string, n: boolean) =>
    new EncodePool().encode(t, n);
  assertEquals(decode(encodeMessage('{"a":1}', true)), '{"a":1}\n');
  assertEquals(decode(encodeMessage('{"a":1}', false)), '{"a":1}');
  assertEquals(decode(encodeMessage('"é€😀"', true)), '"é€😀"\n');
  assertEquals(encodeMessage("", true), new Uint8Array([0x0a]));
  assertEquals(encodeMessage("", false).length, 0);
  const long = "x".repeat(POOLED_MAX + 1);
  assertEquals(decode(encodeMessage(long, true)), long + "\n");
});

Deno.test("EncodePool puts small messages into one shared buffer", () => {
  const pool = new EncodePool();
  const encodeMessage = (t: string, n: boolean) => pool.encode(t, n);
  const a = encodeMessage("first", true);
  const b = encodeMessage("second", true);
  if (a.buffer === b.buffer) {
    assertEquals(b.byteOffset, a.byteOffset + a.length);
  } else {
    // `a` ended a slab: the next one starts at its front.
    assertEquals(b.byteOffset, 0);
  }
  assertEquals(b.buffer.byteLength, SLAB_BYTES);
  const long = encodeMessage("y".repeat(POOLED_MAX + 1), false);
  assertNotStrictEquals(long.buffer, b.buffer);
});

Deno.test("EncodePool never changes the bytes of a message it returned", () => {
  const pool = new EncodePool();
  const encodeMessage = (t: string, n: boolean) => pool.encode(t, n);
  // Messages of every size up to the pooled limit, across many slabs,
  // some with multi-byte characters that may not fit a slab's rest.
  const made: [Uint8Array, string][] = [];
  const slabs = new Set<ArrayBufferLike>();
  for (let i = 0; i < 400; i++) {
    const text = (i % 3 === 0 ? "€" : "a").repeat(i * 37 % (POOLED_MAX + 1));
    const newline = i % 2 === 0;
    made.push([encodeMessage(text, newline), newline ? text + "\n" : text]);
  }
  for (const [data, text] of made) {
    assertEquals(decode(data), text);
    slabs.add(data.buffer);
  }
  assert(slabs.size > 1, "the messages span several slabs");
});

Deno.test("EncodePool.of() gives each loop its own pool", () => {
  const a = new BaseEventLoop();
  const b = new BaseEventLoop();
  assert(EncodePool.of(a) === EncodePool.of(a));
  assert(EncodePool.of(a) !== EncodePool.of(b));
  assert(EncodePool.of(null) !== EncodePool.of(null));
  a.close();
  b.close();
});
