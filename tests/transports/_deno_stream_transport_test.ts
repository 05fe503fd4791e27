// The stream transport's state machine, driven by a proactor whose
// operations the test completes by hand.

import {
  assert,
  assertEquals,
  assertFalse,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  BUSY_CHUNK,
  DenoStreamTransport,
  LARGE_CHUNK,
  SMALL_CHUNK,
} from "../../transports/_deno_stream_transport.ts";
import type {
  Completion,
  CompletionPort,
  LeftOpen,
  Proactor,
} from "../../transports/_proactor.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { BufferedProtocol, Protocol } from "../../protocols/protocol.ts";
import type { Transport } from "../../transports/transport.ts";
import { InvalidStateError } from "../../futures/errors.ts";
import fc from "fast-check";
import { settings } from "../_property.ts";

interface Op {
  kind: "read" | "write" | "shutdown";
  buffer: Uint8Array;
  completion: Completion<never>;
}

/** A proactor whose operations wait until the test completes them. */
class ManualProactor implements Proactor<Deno.Conn, Deno.Listener> {
  readonly ops: Op[] = [];
  closed = 0;
  constructor(readonly loop: VirtualTimeLoop) {}
  bind<T>(completion: Completion<T>): CompletionPort<T> {
    return { completion };
  }
  startRead(
    _s: Deno.Conn,
    buffer: Uint8Array,
    port: CompletionPort<number | null>,
  ) {
    this.ops.push({
      kind: "read",
      buffer,
      completion: port.completion as never,
    });
  }
  startWrite(_s: Deno.Conn, data: Uint8Array, port: CompletionPort<number>) {
    this.ops.push({
      kind: "write",
      buffer: data,
      completion: port.completion as never,
    });
  }
  startShutdown(_s: Deno.Conn, port: CompletionPort<void>) {
    this.ops.push({
      kind: "shutdown",
      buffer: new Uint8Array(0),
      completion: port.completion as never,
    });
  }
  startAccept(): void {
    throw new Error("not used");
  }
  watch(): void {
    throw new Error("not used");
  }
  setRef(): void {}
  setReadRef(): void {}
  setWriteRef(): boolean {
    return false;
  }
  /** Closing fails every operation in flight, as Deno does. */
  close(): void {
    this.closed++;
    for (const op of this.ops.splice(0)) {
      this.loop.callSoon(() =>
        op.completion.failed(new Deno.errors.Interrupted("operation canceled"))
      );
    }
  }
  own(): void {}
  disown(): void {}
  closeAll(): LeftOpen {
    return { transports: 0, servers: 0 };
  }
  wakeUp(): void {}
  get pending(): number {
    return this.ops.length;
  }
  /** The operations of one kind in flight. */
  inFlight(kind: Op["kind"]): Op[] {
    return this.ops.filter((op) => op.kind === kind);
  }
  /** Completes the oldest operation of `kind` with `value`. */
  complete(kind: Op["kind"], value: unknown): Op {
    const i = this.ops.findIndex((op) => op.kind === kind);
    if (i < 0) throw new Error(`no ${kind} in flight`);
    const [op] = this.ops.splice(i, 1);
    const c = op.completion as Completion<unknown>;
    if (c.inline?.(value) !== true) this.loop.callSoon(() => c.done(value));
    return op;
  }
  /** Fails the oldest operation of `kind`. */
  fail(kind: Op["kind"], error: Error): void {
    const i = this.ops.findIndex((op) => op.kind === kind);
    const [op] = this.ops.splice(i, 1);
    this.loop.callSoon(() => op.completion.failed(error));
  }
}

const conn = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
  localAddr: { transport: "tcp", hostname: "127.0.0.1", port: 2 },
} as unknown as Deno.Conn;

class Log extends Protocol {
  events: string[] = [];
  data: Uint8Array[] = [];
  transport!: Transport;
  onData?: (d: Uint8Array) => void;
  override connectionMade(t: Transport) {
    this.transport = t;
    this.events.push("made");
  }
  override dataReceived(d: Uint8Array) {
    this.events.push(`data ${d.length}`);
    this.data.push(d);
    this.onData?.(d);
  }
  override eofReceived() {
    this.events.push("eof");
  }
  override connectionLost(exc?: Error) {
    this.events.push(`lost ${exc?.message ?? ""}`.trim());
  }
  override pauseWriting() {
    this.events.push("pause");
  }
  override resumeWriting() {
    this.events.push("resume");
  }
}

async function setup<P extends Protocol | BufferedProtocol = Log>(
  protocol?: P,
) {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const p = protocol ?? new Log();
  const t = new DenoStreamTransport({ loop, proactor }, conn, p);
  await loop.advance(0);
  return { loop, proactor, t, p: p as P };
}

/** Fills the read buffer of the oldest read with `n` bytes and completes it. */
function arrive(proactor: ManualProactor, n: number, byte = 1): Op {
  const op = proactor.inFlight("read")[0];
  op.buffer.fill(byte, 0, n);
  return proactor.complete("read", n);
}

// ---- Reading ----

Deno.test("DenoStreamTransport makes the connection, then keeps one small read in flight", async () => {
  const { loop, proactor, p } = await setup();
  assertEquals(p.events, ["made"]);
  const reads = proactor.inFlight("read");
  assertEquals(reads.length, 1);
  assertEquals(reads[0].buffer.length, SMALL_CHUNK);
  arrive(proactor, 10);
  await loop.advance(0);
  assertEquals(p.events, ["made", "data 10"]);
  assertEquals(proactor.inFlight("read").length, 1);
  loop.close();
});

Deno.test("DenoStreamTransport fills a chunk front to back and never reuses handed-out bytes", async () => {
  const { loop, proactor, p } = await setup();
  const first = arrive(proactor, 100, 7);
  await loop.advance(0);
  const next = proactor.inFlight("read")[0];
  // The next read lands right after the bytes handed over, in the same memory.
  assertStrictEquals(next.buffer.buffer, first.buffer.buffer);
  assertEquals(next.buffer.byteOffset, 100);
  arrive(proactor, 50, 9);
  await loop.advance(0);
  assertEquals(p.data[0], new Uint8Array(100).fill(7));
  assertEquals(p.data[1], new Uint8Array(50).fill(9));
  // Once the rest is too small for a read, a new chunk starts.
  arrive(proactor, proactor.inFlight("read")[0].buffer.length - 100, 3);
  await loop.advance(0);
  const fresh = proactor.inFlight("read")[0];
  assert(fresh.buffer.buffer !== first.buffer.buffer);
  assertEquals(p.data[0], new Uint8Array(100).fill(7));
  loop.close();
});

Deno.test("DenoStreamTransport gives a busy connection bigger chunks, a quiet one small", async () => {
  const { loop, proactor } = await setup();
  // The first chunk is used up at once: the connection is busy.
  arrive(proactor, 500);
  await loop.advance(0);
  arrive(proactor, 400);
  await loop.advance(0);
  assertEquals(proactor.inFlight("read")[0].buffer.length, BUSY_CHUNK);
  // This one takes longer than a second to use up: back to small.
  for (let i = 0; i < 10; i++) {
    arrive(proactor, 700);
    await loop.advance(0.2);
  }
  for (let i = 0; i < 20; i++) {
    if (proactor.inFlight("read")[0].buffer.length === SMALL_CHUNK) break;
    arrive(proactor, 700);
    await loop.advance(0);
  }
  assertEquals(proactor.inFlight("read")[0].buffer.length, SMALL_CHUNK);
  loop.close();
});

Deno.test("DenoStreamTransport reads large chunks while data streams in, small ones after", async () => {
  const { loop, proactor } = await setup();
  arrive(proactor, SMALL_CHUNK); // filled: data is streaming
  await loop.advance(0);
  assertEquals(proactor.inFlight("read")[0].buffer.length, LARGE_CHUNK);
  arrive(proactor, LARGE_CHUNK);
  await loop.advance(0);
  assertEquals(proactor.inFlight("read")[0].buffer.length, LARGE_CHUNK);
  arrive(proactor, 30_000); // short, but long enough to keep streaming
  await loop.advance(0);
  assertEquals(
    proactor.inFlight("read")[0].buffer.length,
    LARGE_CHUNK - 30_000,
  );
  arrive(proactor, 10); // a short read: the connection went quiet
  await loop.advance(0);
  assertEquals(proactor.inFlight("read")[0].buffer.length, SMALL_CHUNK);
  loop.close();
});

Deno.test("DenoStreamTransport streams into busy-sized chunks once the protocol paused reading", async () => {
  const { loop, proactor, t } = await setup();
  arrive(proactor, SMALL_CHUNK); // filled: data is streaming
  await loop.advance(0);
  assertEquals(proactor.inFlight("read")[0].buffer.length, LARGE_CHUNK);
  // The protocol cannot keep up: what it holds meanwhile pins chunks.
  t.pauseReading();
  arrive(proactor, LARGE_CHUNK);
  await loop.advance(0);
  t.resumeReading();
  await loop.advance(0);
  assertEquals(proactor.inFlight("read")[0].buffer.length, BUSY_CHUNK);
  arrive(proactor, BUSY_CHUNK);
  await loop.advance(0);
  assertEquals(proactor.inFlight("read")[0].buffer.length, BUSY_CHUNK);
  arrive(proactor, 10); // the stream ended: large chunks again next time
  await loop.advance(0);
  arrive(proactor, SMALL_CHUNK);
  await loop.advance(0);
  assertEquals(proactor.inFlight("read")[0].buffer.length, LARGE_CHUNK);
  loop.close();
});

Deno.test("DenoStreamTransport reads a throttled stream into one chunk again and hands out copies", async () => {
  const { loop, proactor, p, t } = await setup();
  arrive(proactor, SMALL_CHUNK); // filled: data is streaming
  await loop.advance(0);
  t.pauseReading(); // the protocol cannot keep up
  arrive(proactor, LARGE_CHUNK);
  await loop.advance(0);
  t.resumeReading();
  await loop.advance(0);
  const chunk = proactor.inFlight("read")[0].buffer;
  assertEquals(chunk.length, BUSY_CHUNK);
  arrive(proactor, BUSY_CHUNK, 4);
  await loop.advance(0);
  arrive(proactor, 6000, 5);
  await loop.advance(0);
  // Each read landed at the start of the same chunk...
  const again = proactor.inFlight("read")[0].buffer;
  assertStrictEquals(again.buffer, chunk.buffer);
  assertEquals([again.byteOffset, again.length], [0, BUSY_CHUNK]);
  // ...and the protocol holds copies, whole buffers of their own, that
  // later reads do not write over.
  const [a, b] = p.data.slice(-2);
  assertEquals(a, new Uint8Array(BUSY_CHUNK).fill(4));
  assertEquals(b, new Uint8Array(6000).fill(5));
  for (const d of [a, b]) {
    assert(d.buffer !== chunk.buffer);
    assertEquals([d.byteOffset, d.buffer.byteLength], [0, d.length]);
  }
  arrive(proactor, 10, 6); // the stream ended: the chunk is let go
  await loop.advance(0);
  assertEquals(p.data.at(-1), new Uint8Array(10).fill(6));
  assert(proactor.inFlight("read")[0].buffer.buffer !== chunk.buffer);
  assertEquals(b, new Uint8Array(6000).fill(5));
  loop.close();
});

Deno.test("DenoStreamTransport starts no read while paused", async () => {
  const { loop, proactor, p, t } = await setup();
  p.onData = () => t.pauseReading();
  arrive(proactor, 5);
  await loop.advance(0);
  assertEquals(proactor.inFlight("read").length, 0);
  assertFalse(t.isReading());
  p.onData = undefined;
  t.resumeReading();
  assertEquals(proactor.inFlight("read").length, 1);
  loop.close();
});

Deno.test("DenoStreamTransport holds a read that completes while paused until resumed", async () => {
  const { loop, proactor, p, t } = await setup();
  t.pauseReading();
  arrive(proactor, 8);
  await loop.advance(0);
  assertEquals(p.events, ["made"]);
  assertEquals(proactor.inFlight("read").length, 0);
  t.resumeReading();
  assertEquals(p.events, ["made"]); // delivered on the loop, not inline
  await loop.advance(0);
  assertEquals(p.events, ["made", "data 8"]);
  assertEquals(proactor.inFlight("read").length, 1);
  loop.close();
});

Deno.test("DenoStreamTransport reads into a BufferedProtocol's buffer with a size hint", async () => {
  const hints: number[] = [];
  const updates: number[] = [];
  class Sink extends BufferedProtocol {
    buf = new Uint8Array(4096);
    override getBuffer(hint: number) {
      hints.push(hint);
      return this.buf;
    }
    override bufferUpdated(n: number) {
      updates.push(n);
    }
  }
  const { loop, proactor, p } = await setup(new Sink());
  assertStrictEquals(proactor.inFlight("read")[0].buffer, p.buf);
  arrive(proactor, 4096);
  await loop.advance(0);
  arrive(proactor, 3);
  await loop.advance(0);
  assertEquals(updates, [4096, 3]);
  assertEquals(hints, [SMALL_CHUNK, LARGE_CHUNK, SMALL_CHUNK]);
  loop.close();
});

Deno.test("DenoStreamTransport calls eofReceived once, then closes unless kept open", async () => {
  const { loop, proactor, p, t } = await setup();
  proactor.complete("read", null);
  await loop.advance(0);
  assertEquals(p.events, ["made", "eof", "lost"]);
  assert(t.isClosing());
  assertEquals(proactor.closed, 1);
  loop.close();
});

// ---- Writing ----

Deno.test("DenoStreamTransport starts a write at once, with the caller's buffer", async () => {
  const { loop, proactor, t } = await setup();
  const data = new Uint8Array([1, 2, 3]);
  t.write(data);
  assertStrictEquals(proactor.inFlight("write")[0].buffer, data);
  assertEquals(t.getWriteBufferSize(), 3);
  // A complete write with nothing queued finishes without the loop.
  proactor.complete("write", 3);
  assertEquals(t.getWriteBufferSize(), 0);
  loop.close();
});

Deno.test("DenoStreamTransport gathers writes queued behind one in flight", async () => {
  const { loop, proactor, t } = await setup();
  t.write(new Uint8Array([1]));
  t.write(new Uint8Array([2, 3]));
  t.write(new Uint8Array([4]));
  assertEquals(proactor.inFlight("write").length, 1);
  assertEquals(t.getWriteBufferSize(), 4);
  proactor.complete("write", 1);
  await loop.advance(0);
  const writes = proactor.inFlight("write");
  assertEquals(writes.length, 1);
  assertEquals(writes[0].buffer, new Uint8Array([2, 3, 4]));
  assertEquals(t.getWriteBufferSize(), 3);
  loop.close();
});

Deno.test("DenoStreamTransport keeps the order of small and large writes queued behind one in flight", async () => {
  const { loop, proactor, t } = await setup();
  const bytes = (n: number, first: number) =>
    Uint8Array.from({ length: n }, (_, i) => (first + i) % 251);
  const written = [
    bytes(3, 0),
    bytes(1500, 10), // queued
    bytes(1500, 20), // queued
    bytes(1500, 30), // 4 KiB queued: all three staged
    bytes(40_000, 40), // large: after the staged bytes
    bytes(7, 50),
    bytes(60_000, 60), // staged until it no longer fits
    bytes(9, 70),
  ];
  for (const data of written) t.write(data);
  const sent: number[] = [];
  while (proactor.inFlight("write").length > 0) {
    const op = proactor.inFlight("write")[0];
    // Half of each write, then the rest: partial writes too.
    const half = Math.max(1, op.buffer.length >> 1);
    sent.push(...op.buffer.subarray(0, half));
    proactor.complete("write", half);
    await loop.advance(0);
  }
  assertEquals(sent, written.flatMap((data) => [...data]));
  assertEquals(t.getWriteBufferSize(), 0);
  loop.close();
});

Deno.test("DenoStreamTransport alternates two staging buffers while backed up", async () => {
  const { loop, proactor, t } = await setup();
  t.write(new Uint8Array([1]));
  const buffers: ArrayBufferLike[] = [];
  for (let i = 2; i < 6; i++) {
    t.write(new Uint8Array(5000).fill(i));
    proactor.complete("write", proactor.inFlight("write")[0].buffer.length);
    await loop.advance(0);
    const [op] = proactor.inFlight("write");
    assertEquals(op.buffer, new Uint8Array(5000).fill(i));
    buffers.push(op.buffer.buffer);
  }
  assert(buffers[0] !== buffers[1]);
  assertStrictEquals(buffers[2], buffers[0]);
  assertStrictEquals(buffers[3], buffers[1]);
  loop.close();
});

Deno.test("DenoStreamTransport stages nothing for a few small writes behind a stalled one", async () => {
  const { loop, proactor, t } = await setup();
  t.write(new Uint8Array([1]));
  t.write(new Uint8Array(1000));
  t.write(new Uint8Array(1000));
  proactor.complete("write", 1);
  await loop.advance(0);
  // Gathered to their size: no staging buffer held for 2,000 bytes.
  const [op] = proactor.inFlight("write");
  assertEquals(op.buffer.buffer.byteLength, 2000);
  loop.close();
});

Deno.test("DenoStreamTransport sends the rest of a partial write next", async () => {
  const { loop, proactor, t } = await setup();
  t.write(new Uint8Array([1, 2, 3, 4, 5]));
  t.write(new Uint8Array([6]));
  proactor.complete("write", 2);
  await loop.advance(0);
  assertEquals(proactor.inFlight("write")[0].buffer, new Uint8Array([3, 4, 5]));
  assertEquals(t.getWriteBufferSize(), 4);
  proactor.complete("write", 3);
  await loop.advance(0);
  assertEquals(proactor.inFlight("write")[0].buffer, new Uint8Array([6]));
  loop.close();
});

Deno.test("DenoStreamTransport.writelines() makes one write", async () => {
  const { loop, proactor, t } = await setup();
  t.writelines([new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])]);
  const writes = proactor.inFlight("write");
  assertEquals(writes.length, 1);
  assertEquals(writes[0].buffer, new Uint8Array([1, 2, 3]));
  loop.close();
});

Deno.test("DenoStreamTransport pauses the protocol above the high-water mark", async () => {
  const { loop, proactor, p, t } = await setup();
  t.write(new Uint8Array(65536));
  assertEquals(p.events, ["made"]);
  t.write(new Uint8Array(1));
  assertEquals(p.events, ["made", "pause"]);
  proactor.complete("write", 65536);
  await loop.advance(0);
  assertEquals(p.events, ["made", "pause", "resume"]);
  loop.close();
});

Deno.test("DenoStreamTransport.writeEof() shuts down after the writes in flight", async () => {
  const { loop, proactor, t } = await setup();
  t.write(new Uint8Array(10));
  t.writeEof();
  assertThrows(() => t.write(new Uint8Array(1)), InvalidStateError);
  assertEquals(proactor.inFlight("shutdown").length, 0);
  proactor.complete("write", 10);
  await loop.advance(0);
  assertEquals(proactor.inFlight("shutdown").length, 1);
  loop.close();
});

Deno.test("DenoStreamTransport.writeEof() starts no shutdown when the producer it stops aborts the transport", async () => {
  const { loop, proactor, p, t } = await setup();
  t.registerProducer({
    resumeProducing() {},
    pauseProducing() {},
    // A producer may end its consumer when stopped.
    stopProducing: () => t.abort(),
  }, true);
  t.writeEof();
  // Aborted: no shutdown of the closed connection, and the loss is told.
  assertEquals(proactor.inFlight("shutdown").length, 0);
  await loop.advance(0);
  assertEquals(p.events, ["made", "lost"]);
  loop.close();
});

// ---- Ending ----

Deno.test("DenoStreamTransport.close() flushes, closes, then calls connectionLost once", async () => {
  const { loop, proactor, p, t } = await setup();
  t.write(new Uint8Array(10));
  t.close();
  t.close();
  assertEquals(proactor.closed, 0);
  proactor.complete("write", 10);
  await loop.advance(0);
  assertEquals(proactor.closed, 1);
  // The read in flight failed on close; only then is the protocol told.
  assertEquals(p.events, ["made", "lost"]);
  loop.close();
});

Deno.test("DenoStreamTransport.abort() closes at once and drops the buffer", async () => {
  const { loop, proactor, p, t } = await setup();
  t.write(new Uint8Array(10));
  t.write(new Uint8Array(10));
  t.abort();
  assertEquals(t.getWriteBufferSize(), 0);
  assertEquals(proactor.closed, 1);
  assertEquals(p.events, ["made"]); // scheduled, not inline
  await loop.advance(0);
  assertEquals(p.events, ["made", "lost"]);
  loop.close();
});

Deno.test("DenoStreamTransport passes a write error to connectionLost", async () => {
  const { loop, proactor, p, t } = await setup();
  t.write(new Uint8Array(10));
  proactor.fail("write", new Deno.errors.ConnectionReset("reset by peer"));
  await loop.advance(0);
  assertEquals(p.events, ["made", "lost reset by peer"]);
  assert(t.isClosing());
  loop.close();
});

Deno.test("DenoStreamTransport passes a read error to connectionLost", async () => {
  const { loop, proactor, p } = await setup();
  proactor.fail("read", new Deno.errors.ConnectionReset("reset"));
  await loop.advance(0);
  assertEquals(p.events, ["made", "lost reset"]);
  loop.close();
});

Deno.test("DenoStreamTransport aborted before it starts never calls the protocol", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const p = new Log();
  let ready: unknown = "not called";
  const t = new DenoStreamTransport({ loop, proactor }, conn, p, {
    onReady: (e) => ready = e,
  });
  t.abort();
  await loop.advance(0);
  assertEquals(p.events, []);
  assert(ready instanceof InvalidStateError);
  loop.close();
});

Deno.test("DenoStreamTransport property: every byte reaches the protocol once, in order, and bytes handed over are never written over", async () => {
  // Reads of every size, pauses inside and outside dataReceived, quiet
  // spells (chunk sizes follow how busy the connection is), protocols
  // swapped between a plain and a BufferedProtocol, then EOF.
  type Action =
    | { kind: "read"; size: number; fill: boolean }
    | { kind: "pauseInData" }
    | { kind: "pause" }
    | { kind: "resume" }
    | { kind: "quiet" }
    | { kind: "swap" };
  const action: fc.Arbitrary<Action> = fc.oneof(
    {
      weight: 10,
      arbitrary: fc.record({
        kind: fc.constant("read" as const),
        // Short reads end streaming; reads of 4 KiB or more keep it up.
        size: fc.oneof(
          fc.integer({ min: 1, max: 300 }),
          fc.integer({ min: 1000, max: 4095 }),
          fc.integer({ min: 4096, max: BUSY_CHUNK }),
          fc.integer({ min: 4096, max: LARGE_CHUNK }),
        ),
        fill: fc.boolean(),
      }),
    },
    { weight: 3, arbitrary: fc.constant({ kind: "pauseInData" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "pause" as const }) },
    { weight: 3, arbitrary: fc.constant({ kind: "resume" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "quiet" as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: "swap" as const }) },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(action, { maxLength: 80 }), async (actions) => {
      const received: Uint8Array[] = [];
      const snapshots: Uint8Array[] = [];
      let pauseNext = false;
      const held: { t?: DenoStreamTransport } = {};
      const take = (d: Uint8Array) => {
        received.push(d);
        snapshots.push(d.slice());
        if (pauseNext) {
          pauseNext = false;
          held.t!.pauseReading();
        }
      };
      class Plain extends Protocol {
        override dataReceived(d: Uint8Array) {
          take(d);
        }
      }
      class Lending extends BufferedProtocol {
        buf: Uint8Array | null = null;
        override getBuffer(hint: number) {
          return this.buf = new Uint8Array(hint);
        }
        override bufferUpdated(n: number) {
          take(this.buf!.slice(0, n));
        }
      }
      const plain = new Plain();
      const lending = new Lending();
      const { loop, proactor, t } = await setup<Protocol>(plain);
      held.t = t;
      let next = 0;
      const sent: number[] = [];
      for (const a of actions) {
        if (a.kind === "read") {
          const op = proactor.inFlight("read")[0];
          if (op === undefined) continue;
          const n = a.fill
            ? op.buffer.length
            : Math.min(a.size, op.buffer.length);
          for (let i = 0; i < n; i++) {
            op.buffer[i] = next;
            sent.push(next);
            next = (next + 1) % 251;
          }
          proactor.complete("read", n);
        } else if (a.kind === "pauseInData") pauseNext = true;
        else if (a.kind === "pause") t.pauseReading();
        else if (a.kind === "resume") t.resumeReading();
        else if (a.kind === "swap") {
          t.setProtocol(t.getProtocol() === plain ? lending : plain);
        }
        await loop.advance(a.kind === "quiet" ? 2 : 0);
      }
      pauseNext = false;
      t.resumeReading();
      await loop.advance(0);
      proactor.complete("read", null);
      await loop.advance(0);
      const all = new Uint8Array(sent.length);
      let at = 0;
      for (const d of received) {
        all.set(d, at);
        at += d.length;
      }
      assertEquals(at, sent.length);
      assertEquals(all, Uint8Array.from(sent));
      for (let i = 0; i < received.length; i++) {
        assertEquals(received[i], snapshots[i], `delivery ${i} written over`);
      }
      loop.close();
    }),
    settings(200),
  );
});
