import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { collect } from "../_gc.ts";
import { Deque } from "../../futures/_deque.ts";
import { prng } from "../_helpers.ts";

Deno.test("Deque starts empty and shift()/pop() give undefined", () => {
  const d = new Deque<number>();
  assertEquals(d.length, 0);
  assertEquals(d.peek(), undefined);
  assertEquals(d.shift(), undefined);
  assertEquals(d.pop(), undefined);
  assertEquals([...d], []);
});

Deno.test("Deque works at both ends", () => {
  const d = new Deque<string>();
  d.push("b");
  d.unshift("a");
  d.push("c");
  assertEquals([...d], ["a", "b", "c"]);
  assertEquals(d.peek(), "a");
  assertEquals(d.pop(), "c");
  assertEquals(d.shift(), "a");
  assertEquals(d.shift(), "b");
  assertEquals(d.length, 0);
});

Deno.test("Deque grows past its capacity from either end, wrapping around", () => {
  const d = new Deque<number>();
  for (let i = 0; i < 40; i++) d.unshift(i);
  for (let i = 0; i < 40; i++) d.push(100 + i);
  assertEquals(d.length, 80);
  const expected = [
    ...Array.from({ length: 40 }, (_, i) => 39 - i),
    ...Array.from({ length: 40 }, (_, i) => 100 + i),
  ];
  assertEquals([...d], expected);
});

Deno.test("Deque.clear() and filter() keep order and length right", () => {
  const d = new Deque<number>();
  for (let i = 0; i < 100; i++) d.push(i);
  d.filter((x) => x % 3 === 0);
  assertEquals(d.length, 34);
  assertEquals(d.shift(), 0);
  assertEquals(d.pop(), 99);
  d.clear();
  assertEquals(d.length, 0);
  d.push(7);
  assertEquals([...d], [7]);
});

Deno.test("Deque matches an array model under random operations at both ends", () => {
  const random = prng(42);
  const d = new Deque<number>();
  const model: number[] = [];
  for (let step = 0; step < 20000; step++) {
    const r = random();
    // Drift between growing and shrinking so capacity changes many times.
    const growing = Math.floor(step / 2500) % 2 === 0;
    if (r < (growing ? 0.3 : 0.2)) {
      d.push(step);
      model.push(step);
    } else if (r < (growing ? 0.6 : 0.4)) {
      d.unshift(step);
      model.unshift(step);
    } else if (r < (growing ? 0.8 : 0.7)) {
      assertEquals(d.shift(), model.shift());
    } else {
      assertEquals(d.pop(), model.pop());
    }
    assertEquals(d.length, model.length);
    assertEquals(d.peek(), model[0]);
  }
  assertEquals([...d], model);
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

Deno.test("Deque shrinks as it drains, not only once empty: a burst does not pin its memory while a few items stay", async () => {
  const d = new Deque<number>();
  d.push(-1);
  await collect();
  const before = Deno.memoryUsage().heapUsed;
  for (let i = 0; i < 1 << 20; i++) d.push(i);
  for (let i = 0; i < (1 << 20) - 10; i++) d.shift();
  await collect();
  const grown = Deno.memoryUsage().heapUsed - before;
  assert(grown < 1 << 20, `${grown >> 10} KiB kept for 11 items`);
  assertEquals(
    [...d],
    Array.from({ length: 11 }, (_, i) => (1 << 20) - 11 + i),
  );
  for (let i = 0; i < 5; i++) d.pop();
  assertEquals(d.shift(), (1 << 20) - 11);
  assertEquals(d.length, 5);
});
