import { assert, assertEquals } from "@std/assert";
import { collect } from "../_gc.ts";
import { FIRST_BUFFER, MessageQueue } from "../../jsonrpc/_message_queue.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array | undefined) =>
  data === undefined ? undefined : new TextDecoder().decode(data);

Deno.test("MessageQueue gives messages back in order, as they were pushed", () => {
  const q = new MessageQueue();
  assertEquals([q.length, q.capacity, q.shift()], [0, 0, undefined]);
  q.push(bytes("one"));
  q.push(bytes(""));
  q.push(bytes("three"));
  assertEquals(q.length, 3);
  assertEquals([text(q.shift()), text(q.shift())], ["one", ""]);
  q.push(bytes("four"));
  assertEquals([text(q.shift()), text(q.shift())], ["three", "four"]);
  assertEquals([q.length, q.shift()], [0, undefined]);
});

Deno.test("MessageQueue keeps a copy: the pushed buffer may change afterwards", () => {
  const q = new MessageQueue();
  const data = bytes("abc");
  q.push(data);
  data.fill(0x78);
  assertEquals(text(q.shift()), "abc");
});

Deno.test("MessageQueue never changes the bytes of a message it gave out", () => {
  // Pushes after a shift, growth and an emptied queue all leave the views
  // already taken as they were.
  const q = new MessageQueue();
  const taken: [Uint8Array, string][] = [];
  let n = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < round % 7 + 1; i++) {
      q.push(bytes(`message ${n++} `.repeat(round * 13 % 300 + 1)));
    }
    for (let i = 0; i < round % 5 + 1 && q.length > 0; i++) {
      const view = q.shift()!;
      taken.push([view, text(view)!]);
    }
  }
  while (q.length > 0) {
    const view = q.shift()!;
    taken.push([view, text(view)!]);
  }
  assertEquals(taken.length, n);
  for (const [view, was] of taken) assertEquals(text(view), was);
});

Deno.test("MessageQueue grows by doubling and lets its buffer go once empty", () => {
  const q = new MessageQueue();
  q.push(new Uint8Array(10));
  assertEquals(q.capacity, FIRST_BUFFER);
  q.push(new Uint8Array(FIRST_BUFFER));
  assertEquals(q.capacity, 2 * FIRST_BUFFER); // 2 x 10 + 4096 bytes fit
  q.shift();
  q.shift();
  assertEquals([q.length, q.capacity], [0, 0]);
  q.push(new Uint8Array(1));
  q.clear();
  assertEquals([q.length, q.capacity], [0, 0]);
});

Deno.test("MessageQueue that never empties (a peer that keeps the inbox fed) does not grow", async () => {
  const q = new MessageQueue();
  const message = bytes("{}");
  q.push(message);
  await collect();
  const before = Deno.memoryUsage().heapUsed;
  for (let i = 0; i < 1_000_000; i++) {
    q.push(message);
    q.shift();
  }
  await collect();
  const grown = Deno.memoryUsage().heapUsed - before;
  assert(grown < 1 << 20, `${grown >> 10} KiB more for one message queued`);
  assertEquals([q.length, text(q.shift())], [1, "{}"]);
});

Deno.test("MessageQueue kept fed after a burst lets go of the burst's buffer", () => {
  const q = new MessageQueue();
  const msg = new Uint8Array(1024);
  for (let i = 0; i < 10_000; i++) q.push(msg);
  for (let i = 0; i < 9_999; i++) q.shift();
  for (let i = 0; i < 100_000; i++) {
    q.push(msg);
    q.shift();
  }
  assertEquals(q.length, 1);
  assert(q.capacity < 1 << 20, `${q.capacity} bytes for one 1 KiB message`);
});
