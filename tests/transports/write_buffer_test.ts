import { assertEquals, assertThrows } from "@std/assert";
import { concatBytes, WriteBuffer } from "../../transports/write_buffer.ts";
import { stillAlive } from "../_gc.ts";

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

Deno.test("WriteBuffer.take() hands out bytes in order across pushes", () => {
  const buffer = new WriteBuffer();
  buffer.push(bytes(1, 2, 3));
  buffer.push(bytes(4));
  buffer.push(bytes(5, 6));
  assertEquals(buffer.size, 6);
  assertEquals(buffer.take(2), bytes(1, 2));
  assertEquals(buffer.take(3), bytes(3, 4, 5));
  assertEquals(buffer.size, 1);
  assertEquals(buffer.take(1), bytes(6));
  assertEquals(buffer.size, 0);
});

Deno.test("WriteBuffer.take() returns a view when the bytes lie in one push", () => {
  const buffer = new WriteBuffer();
  const data = bytes(1, 2, 3);
  buffer.push(data);
  const out = buffer.take(2);
  assertEquals(out.buffer, data.buffer);
  assertEquals(out, bytes(1, 2));
});

Deno.test("WriteBuffer.take() gives the same bytes in every split", () => {
  const pushes = [bytes(1), bytes(2, 3), bytes(), bytes(4, 5, 6), bytes(7)];
  const all = bytes(1, 2, 3, 4, 5, 6, 7);
  for (let step = 1; step <= all.length; step++) {
    const buffer = new WriteBuffer();
    for (const p of pushes) buffer.push(p);
    const out: number[] = [];
    while (buffer.size > 0) {
      out.push(...buffer.take(Math.min(step, buffer.size)));
    }
    assertEquals(new Uint8Array(out), all, `step ${step}`);
  }
});

Deno.test("WriteBuffer keeps its order past many consumed pushes", () => {
  const buffer = new WriteBuffer();
  for (let i = 0; i < 300; i++) buffer.push(bytes(i & 0xff));
  for (let i = 0; i < 300; i++) assertEquals(buffer.take(1), bytes(i & 0xff));
  buffer.push(bytes(7, 8));
  assertEquals(buffer.take(2), bytes(7, 8));
});

Deno.test("WriteBuffer.take() refuses more than it holds", () => {
  const buffer = new WriteBuffer();
  buffer.push(bytes(1));
  assertThrows(
    () => buffer.take(2),
    RangeError,
    "Cannot take from the write buffer: n must be <= size, received n=2 size=1",
  );
  assertEquals(buffer.take(0), bytes());
  buffer.clear();
  assertEquals(buffer.size, 0);
});

Deno.test("concatBytes joins pieces in order and returns a single piece as is", () => {
  const one = new Uint8Array([9]);
  assertEquals(concatBytes([one], 1) === one, true);
  assertEquals(concatBytes([], 0), new Uint8Array(0));
  assertEquals(
    concatBytes([
      new Uint8Array([1, 2]),
      new Uint8Array(0),
      new Uint8Array([3]),
    ], 3),
    new Uint8Array([1, 2, 3]),
  );
});

Deno.test("WriteBuffer lets go of each piece once it is taken whole", async () => {
  const buffer = new WriteBuffer();
  const refs: WeakRef<object>[] = [];
  (() => {
    for (let i = 0; i < 3; i++) {
      const piece = new Uint8Array(1 << 20);
      refs.push(new WeakRef(piece.buffer));
      buffer.push(piece);
    }
    buffer.take(2 << 20);
    buffer.take(1 << 19);
  })();
  // The first two went out; half of the third is still queued.
  assertEquals(await stillAlive(refs), 1);
  assertEquals(buffer.size, 1 << 19);
});
