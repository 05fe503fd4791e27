import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  BodyQueue,
  type BodyQueueOwner,
  checkSeconds,
} from "../../http/_http_body.ts";
import { collect } from "../_gc.ts";

function owner() {
  const calls: string[] = [];
  const o: BodyQueueOwner = {
    pauseBody: () => calls.push("pause"),
    resumeBody: () => calls.push("resume"),
    firstRead: () => calls.push("first"),
    bodyCancelled: () => calls.push("cancelled"),
  };
  return { o, calls };
}

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("BodyQueue hands out what was pushed before and after the reader asks", async () => {
  const { o, calls } = owner();
  const q = new BodyQueue(o);
  q.push(bytes("ab"));
  const reader = q.stream().getReader();
  assertEquals(await reader.read(), { done: false, value: bytes("ab") });
  const pending = reader.read();
  q.push(bytes("cd"));
  assertEquals(await pending, { done: false, value: bytes("cd") });
  q.end();
  assertEquals((await reader.read()).done, true);
  assertEquals(calls, ["first"]);
  assert(q.finished);
  assert(q.stream() === q.stream());
});

Deno.test("BodyQueue pauses its owner above 64 KiB and resumes at 16 KiB", async () => {
  const { o, calls } = owner();
  const q = new BodyQueue(o);
  for (let i = 0; i < 5; i++) q.push(new Uint8Array(16 * 1024));
  assertEquals(calls, ["pause"]);
  const reader = q.stream().getReader();
  for (let i = 0; i < 3; i++) await reader.read();
  assertEquals(calls, ["pause", "first"]);
  await reader.read();
  assertEquals(calls, ["pause", "first", "resume"]);
  q.end();
  await reader.read();
  assertEquals((await reader.read()).done, true);
});

Deno.test("BodyQueue that ended over 64 KiB resumes its owner once read, as one that did not end", async () => {
  // A client's next response comes behind the ended body: reading paused
  // for it must resume once the reader takes it.
  for (const pieces of [5, 2]) {
    const { o, calls } = owner();
    const q = new BodyQueue(o);
    for (let i = 0; i < pieces; i++) q.push(new Uint8Array(40 * 1024));
    q.end();
    const reader = q.stream().getReader();
    while (!(await reader.read()).done);
    assertEquals(calls, ["pause", "first", "resume"], `${pieces} pieces`);
  }
});

Deno.test("BodyQueue.release() resumes its owner for an ended body once, keeping its bytes for the reader", async () => {
  const { o, calls } = owner();
  const q = new BodyQueue(o);
  q.push(new Uint8Array(100 * 1024));
  q.release();
  assertEquals(calls, ["pause"], "not before the body ends");
  q.end();
  q.release();
  q.release();
  assertEquals(calls, ["pause", "resume"]);
  const reader = q.stream().getReader();
  assertEquals((await reader.read()).value?.length, 100 * 1024);
  assertEquals((await reader.read()).done, true);
  assertEquals(calls, ["pause", "resume", "first"]);
});

Deno.test("BodyQueue holds a flood of tiny pieces in few chunks, in order", async () => {
  // A chunked body of 1-byte chunks: each piece costs about a hundred
  // times its byte as an object, so 64 KiB of them unread held 6.8 MB,
  // and were read one by one.
  const { o, calls } = owner();
  const q = new BodyQueue(o);
  const sent: number[] = [];
  for (let i = 0; i < 70_000; i++) {
    sent.push(i % 251);
    q.push(new Uint8Array([i % 251]));
  }
  q.push(new Uint8Array(5000).fill(7)); // a large piece between
  for (let i = 0; i < 10; i++) q.push(new Uint8Array([9]));
  q.end();
  assertEquals(calls, ["pause"]);
  const reader = q.stream().getReader();
  const got: Uint8Array[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    got.push(value);
  }
  // The first 64 pieces are queued as they came; the rest, packed.
  assert(got.length <= 64 + 10, `${got.length} chunks`);
  const all = new Uint8Array(got.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of got) {
    all.set(c, at);
    at += c.length;
  }
  assertEquals(all.length, 70_000 + 5000 + 10);
  assertEquals([...all.subarray(0, 70_000)], sent);
  assert(all.subarray(70_000, 75_000).every((b) => b === 7));
  assert(all.subarray(75_000).every((b) => b === 9));
});

Deno.test("BodyQueue hands out tiny pieces packed together in a buffer of their own", async () => {
  // The reader may transfer what it reads (a byte stream's enqueue()
  // does): the pieces queued after it must not share its buffer.
  const q = new BodyQueue(owner().o);
  const reader = q.stream().getReader();
  q.push(new Uint8Array([1, 2, 3]));
  q.push(new Uint8Array(100).fill(5)); // a large piece between
  q.push(new Uint8Array([4, 5, 6]));
  const first = (await reader.read()).value!;
  assertEquals([...first], [1, 2, 3]);
  const bytesStream = new ReadableStream({
    type: "bytes",
    start(c) {
      c.enqueue(first);
      c.close();
    },
  });
  assertEquals(first.buffer.byteLength, 0, "transferred");
  assertEquals((await new Response(bytesStream).bytes()).length, 3);
  q.push(new Uint8Array([7, 8]));
  q.end();
  const rest: number[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    rest.push(...value);
  }
  assertEquals(rest, [...new Array(100).fill(5), 4, 5, 6, 7, 8]);
});

Deno.test("BodyQueue hands out small pieces in a buffer of their own, queued or awaited", async () => {
  // A transport carves its reads out of one buffer, and a body piece is a
  // view of it: a reader that transfers the piece (a byte stream's
  // enqueue() does) must not detach what the connection reads next.
  const read = new Uint8Array(1024).fill(9);
  const q = new BodyQueue(owner().o);
  q.push(read.subarray(0, 10)); // queued
  const reader = q.stream().getReader();
  const transfer = (piece: Uint8Array) =>
    new ReadableStream({
      type: "bytes",
      start(c) {
        c.enqueue(piece);
        c.close();
      },
    });
  const first = (await reader.read()).value!;
  transfer(first);
  assertEquals(read.buffer.byteLength, 1024, "queued piece: not detached");
  const pending = reader.read(); // awaited
  q.push(read.subarray(10, 20));
  transfer((await pending).value!);
  assertEquals(read.buffer.byteLength, 1024, "awaited piece: not detached");
  assertEquals(read[20], 9);
});

Deno.test("BodyQueue fails the reader, and discards or cancels on demand", async () => {
  const failed = new BodyQueue(owner().o);
  const r1 = failed.stream().getReader();
  failed.fail(new Error("broken"));
  await assertRejects(() => r1.read(), Error, "broken");

  const { o, calls } = owner();
  const discarded = new BodyQueue(o);
  discarded.push(new Uint8Array(70 * 1024));
  const r2 = discarded.stream().getReader();
  discarded.discard(new Error("skipped"));
  await assertRejects(() => r2.read(), Error, "skipped");
  assertEquals(calls, ["pause", "resume"]);
  discarded.push(bytes("ignored"));

  const c = owner();
  const cancelled = new BodyQueue(c.o);
  await cancelled.stream().cancel();
  assertEquals(c.calls, ["cancelled"]);
  assert(cancelled.finished);
});

Deno.test("BodyQueue fails a reader that comes after discard(), unless the body was empty", async () => {
  const whole = new BodyQueue(owner().o);
  whole.push(bytes("hello"));
  whole.end();
  whole.discard(new Error("dropped"));
  await assertRejects(
    () => whole.stream().getReader().read(),
    Error,
    "dropped",
  );

  const partial = new BodyQueue(owner().o);
  partial.push(bytes("hel"));
  partial.discard(new Error("dropped"));
  partial.end();
  await assertRejects(
    () => partial.stream().getReader().read(),
    Error,
    "dropped",
  );

  const empty = new BodyQueue(owner().o);
  empty.end();
  empty.discard(new Error("dropped"));
  assertEquals((await empty.stream().getReader().read()).done, true);
});

Deno.test("checkSeconds() takes a number of seconds above 0", () => {
  assertEquals(checkSeconds("make X", "timeout", 0.5), 0.5);
  assertEquals(checkSeconds("make X", "timeout", Infinity), Infinity);
  assertThrows(
    () => checkSeconds("make X", "timeout", "5"),
    TypeError,
    "Cannot make X: timeout must be a number of seconds, received string",
  );
  assertThrows(
    () => checkSeconds("make X", "timeout", 0),
    RangeError,
    "Cannot make X: timeout must be > 0, received 0",
  );
});

Deno.test("BodyQueue that never empties (a reader always a piece behind) does not grow", async () => {
  const { o } = owner();
  const q = new BodyQueue(o);
  const reader = q.stream().getReader();
  const piece = bytes("x");
  q.push(piece);
  await collect();
  const before = Deno.memoryUsage().heapUsed;
  let read = 0;
  for (let i = 0; i < 300_000; i++) {
    q.push(piece);
    read += (await reader.read()).value!.length;
  }
  await collect();
  const grown = Deno.memoryUsage().heapUsed - before;
  assert(grown < 1 << 20, `${grown >> 10} KiB more for one piece queued`);
  q.end();
  // Small pieces queued together are read together: the reader may have
  // caught up.
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    read += value.length;
  }
  assertEquals(read, 300_001);
});

Deno.test("BodyQueue holding many tiny pieces costs about their bytes, not an object each", async () => {
  // A chunked body of one-byte chunks arrives as one-byte views of the
  // read buffer: 64 KiB of them, held as given, took ~9 MB of heap.
  const { o, calls } = owner();
  const q = new BodyQueue(o);
  const read = bytes("a".repeat(100_000));
  await collect();
  const before = Deno.memoryUsage().heapUsed;
  for (let i = 0; i < read.length; i++) q.push(read.subarray(i, i + 1));
  await collect();
  const grown = Deno.memoryUsage().heapUsed - before;
  assert(grown < 1 << 20, `${grown >> 10} KiB held for 100 KB of body`);
  assertEquals(calls, ["pause"]);
  q.end();
  let total = 0;
  for await (const piece of q.stream()) total += piece.length;
  assertEquals(total, read.length);
  assertEquals(calls, ["pause", "first", "resume"]);
});
