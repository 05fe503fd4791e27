import { assertEquals } from "@std/assert";
import { Deque } from "../../tasks/_deque.ts";

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
