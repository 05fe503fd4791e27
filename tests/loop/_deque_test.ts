import { assertEquals, assertStrictEquals } from "@std/assert";
import { Deque } from "../../loop/_deque.ts";

// A small seeded PRNG (mulberry32), so that every run sees the same cases.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("Deque starts empty", () => {
  const q = new Deque<number>();
  assertEquals(q.length, 0);
  assertEquals(q.peek(), undefined);
  assertEquals([...q], []);
});

Deno.test("Deque.push() and shift() keep first-in first-out order", () => {
  const q = new Deque<string>();
  q.push("a");
  q.push("b");
  q.push("c");
  assertEquals(q.length, 3);
  assertEquals(q.shift(), "a");
  assertEquals(q.shift(), "b");
  assertEquals(q.length, 1);
  q.push("d");
  assertEquals(q.shift(), "c");
  assertEquals(q.shift(), "d");
  assertEquals(q.length, 0);
});

Deno.test("Deque.peek() returns the front item without removing it", () => {
  const q = new Deque<number>();
  q.push(1);
  q.push(2);
  assertEquals(q.peek(), 1);
  assertEquals(q.length, 2);
  q.shift();
  assertEquals(q.peek(), 2);
});

Deno.test("Deque keeps falsy items", () => {
  const q = new Deque<unknown>();
  for (const x of [0, "", false, null]) q.push(x);
  assertEquals([...q], [0, "", false, null]);
  assertEquals(q.shift(), 0);
  assertEquals(q.peek(), "");
});

Deno.test("Deque grows past its initial capacity while wrapped around", () => {
  const q = new Deque<number>();
  // Move the head into the middle of the ring, then overfill it.
  for (let i = 0; i < 10; i++) q.push(-1);
  for (let i = 0; i < 10; i++) q.shift();
  for (let i = 0; i < 100; i++) q.push(i);
  assertEquals(q.length, 100);
  assertEquals([...q], Array.from({ length: 100 }, (_, i) => i));
  for (let i = 0; i < 100; i++) assertEquals(q.shift(), i);
  assertEquals(q.length, 0);
});

Deno.test("Deque stays correct after it shrinks back when emptied", () => {
  const q = new Deque<number>();
  for (let i = 0; i < 1000; i++) q.push(i);
  for (let i = 0; i < 1000; i++) q.shift();
  assertEquals(q.peek(), undefined);
  for (let i = 0; i < 40; i++) q.push(i);
  assertEquals([...q], Array.from({ length: 40 }, (_, i) => i));
});

Deno.test("Deque.clear() removes every item", () => {
  const q = new Deque<number>();
  for (let i = 0; i < 50; i++) q.push(i);
  q.clear();
  assertEquals(q.length, 0);
  assertEquals(q.peek(), undefined);
  assertEquals([...q], []);
  q.push(7);
  assertEquals(q.shift(), 7);
});

Deno.test("Deque iterates front to back without consuming", () => {
  const q = new Deque<number>();
  q.push(1);
  q.push(2);
  q.shift();
  q.push(3);
  assertEquals([...q], [2, 3]);
  assertEquals(q.length, 2);
});

Deno.test("Deque.shift() drops its reference to the item", () => {
  const q = new Deque<object>();
  const item = {};
  q.push(item);
  assertStrictEquals(q.shift(), item);
  assertEquals([...q], []);
});

Deno.test("Deque behaves like an array queue under random pushes and shifts", () => {
  const rand = prng(0xdec0de);
  const q = new Deque<number>();
  const model: number[] = [];
  let next = 0;
  for (let step = 0; step < 50_000; step++) {
    const r = rand();
    // Phases of growth and of draining, so that the ring grows and shrinks.
    const pushBias = Math.floor(step / 5000) % 2 === 0 ? 0.7 : 0.3;
    if (r < pushBias || model.length === 0) {
      q.push(next);
      model.push(next);
      next++;
    } else if (r < 0.98) {
      assertEquals(q.shift(), model.shift());
    } else {
      q.clear();
      model.length = 0;
    }
    assertEquals(q.length, model.length);
    assertEquals(q.peek(), model[0]);
  }
  assertEquals([...q], model);
});
