import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { ReadableStreamProducer } from "../../transports/readable_stream_producer.ts";
import type {
  BaseTransport,
  DatagramTransport,
  Producer,
  Transport,
} from "../../transports/transport.ts";
import { WriteFlowControl } from "../../transports/flow_control.ts";
import { Protocol } from "../../protocols/protocol.ts";
import {
  transportPair,
  type TransportPairOptions,
} from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { CancelledError, InvalidStateError } from "../../futures/errors.ts";
import { splitCases } from "../_every_split.ts";

class Sink extends Protocol {
  chunks: Uint8Array[] = [];
  received = 0;
  eof = false;
  lost: Error | undefined | null = null;
  override dataReceived(data: Uint8Array): void {
    this.chunks.push(data);
    this.received += data.length;
  }
  override eofReceived(): boolean {
    this.eof = true;
    return true;
  }
  override connectionLost(exc?: Error): void {
    this.lost = exc;
  }
  bytes(): number[] {
    return this.chunks.flatMap((c) => [...c]);
  }
}

/** A stream of `pieces`, pulled one at a time; counts pulls and cancels. */
function counted(pieces: unknown[]) {
  const state = { pulled: 0, cancelled: false, reason: undefined as unknown };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.pulled === pieces.length) return controller.close();
      controller.enqueue(pieces[state.pulled++] as Uint8Array);
    },
    cancel(reason) {
      state.cancelled = true;
      state.reason = reason;
    },
  }, { highWaterMark: 0 });
  return { stream, state };
}

function setup(options?: TransportPairOptions) {
  const loop = new VirtualTimeLoop();
  const sink = new Sink();
  const [ta, tb] = transportPair(new Protocol(), sink, { loop, ...options });
  return { loop, sink, ta, tb };
}

// ---- Sending ----

Deno.test("ReadableStreamProducer sends every chunk in order, in every split", async () => {
  const pieces = [[1, 2, 3], [4], [5, 6, 7, 8], [9, 10]].map((p) =>
    new Uint8Array(p)
  );
  for (const { name, options } of splitCases(10)) {
    const { loop, sink, ta } = setup(options);
    const producer = new ReadableStreamProducer(counted(pieces).stream, {
      loop,
      end: "writeEof",
    });
    const sent = await loop.runUntilComplete(producer.start(ta));
    await loop.advance(1);
    assertEquals(sent, 10, name);
    assertEquals(producer.bytesWritten, 10, name);
    assertEquals(sink.bytes(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], name);
    assert(sink.eof, name);
    assertEquals(ta.isClosing(), false, name); // half-closed only
    ta.close();
    loop.close();
  }
});

Deno.test("ReadableStreamProducer with end 'close' closes the consumer after the last chunk", async () => {
  const { loop, sink, ta } = setup();
  const producer = new ReadableStreamProducer(
    counted([new Uint8Array(5)]).stream,
    { loop, end: "close" },
  );
  assertEquals(await loop.runUntilComplete(producer.start(ta)), 5);
  assert(ta.isClosing());
  await loop.advance(1);
  assertEquals(sink.received, 5);
  assert(sink.eof);
  loop.close();
});

Deno.test("ReadableStreamProducer with end 'none' leaves the consumer open and unregistered", async () => {
  const { loop, sink, ta } = setup();
  const producer = new ReadableStreamProducer(
    counted([new Uint8Array([1])]).stream,
    { loop },
  );
  await loop.runUntilComplete(producer.start(ta));
  assertEquals(ta.isClosing(), false);
  // A second producer may now register: the first one unregistered.
  const second = new ReadableStreamProducer(
    counted([new Uint8Array([2])]).stream,
    { loop },
  );
  await loop.runUntilComplete(second.start(ta));
  await loop.advance(1);
  assertEquals(sink.bytes(), [1, 2]);
  ta.close();
  loop.close();
});

// ---- Back-pressure ----

Deno.test("ReadableStreamProducer stops reading while the consumer's buffer is over its high-water mark", async () => {
  // The peer reads 100 bytes a second; the stream could give 100 kB at once.
  const { loop, sink, ta } = setup({ bufferSize: 0, chunkSize: 100, delay: 1 });
  ta.setWriteBufferLimits(1000, 200);
  const pieces = Array.from({ length: 200 }, () => new Uint8Array(500));
  const { stream, state } = counted(pieces);
  const producer = new ReadableStreamProducer(stream, { loop, end: "close" });
  const done = producer.start(ta);
  let most = 0;
  let mostAhead = 0;
  let pausedSeen = 0;
  while (!done.done()) {
    await loop.advance(1);
    most = Math.max(most, ta.getWriteBufferSize());
    // Pulled from the stream but not yet written: at most one held chunk.
    mostAhead = Math.max(mostAhead, state.pulled * 500 - producer.bytesWritten);
    if (String(producer).endsWith("paused]")) pausedSeen++;
  }
  assertEquals(done.result(), 100_000);
  assert(pausedSeen > 0, "the producer was never paused");
  assert(most > 1000, `the buffer never passed the high-water mark: ${most}`);
  assert(most <= 1500, `buffered ${most} bytes, above high + one chunk`);
  assert(mostAhead <= 500, `read ${mostAhead} bytes ahead of the consumer`);
  await loop.advance(10);
  assertEquals(sink.received, 100_000);
  loop.close();
});

Deno.test("ReadableStreamProducer is paused at once on a consumer that is already full", async () => {
  const { loop, ta } = setup({ bufferSize: 0 });
  ta.setWriteBufferLimits(10);
  ta.write(new Uint8Array(50)); // the peer reads it on the next iteration
  const { stream, state } = counted([new Uint8Array(1)]);
  const producer = new ReadableStreamProducer(stream, { loop });
  const done = producer.start(ta);
  assertEquals(String(producer), "[object ReadableStreamProducer paused]");
  assertEquals(state.pulled, 0);
  assertEquals(await loop.runUntilComplete(done), 1);
  ta.close();
  loop.close();
});

// ---- Failures ----

Deno.test("ReadableStreamProducer fails with the stream's error and leaves the consumer open", async () => {
  const { loop, ta } = setup();
  const boom = new Error("disk on fire");
  let n = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (n++ === 2) controller.error(boom);
      else controller.enqueue(new Uint8Array(3));
    },
  }, { highWaterMark: 0 });
  const producer = new ReadableStreamProducer(stream, { loop, end: "close" });
  const done = producer.start(ta);
  const error = await assertRejects(() => loop.runUntilComplete(done));
  assertEquals(error, boom);
  assertEquals(producer.bytesWritten, 6);
  assertEquals(ta.isClosing(), false);
  ta.close();
  loop.close();
});

Deno.test("ReadableStreamProducer rejects a chunk that is not bytes and cancels the stream", async () => {
  const { loop, ta } = setup();
  const { stream, state } = counted([
    new Uint8Array(1),
    "text",
    new Uint8Array(1),
  ]);
  const producer = new ReadableStreamProducer(stream, { loop });
  const error = await assertRejects(
    () => loop.runUntilComplete(producer.start(ta)),
    TypeError,
  );
  assertEquals(
    error.message,
    'Cannot write the stream\'s chunk: chunks must be Uint8Array, received "text"',
  );
  assert(state.cancelled);
  assertEquals(state.reason, error);
  ta.close();
  loop.close();
});

Deno.test("ReadableStreamProducer is stopped when the consumer closes, and cancels the stream", async () => {
  const { loop, ta } = setup({ bufferSize: 0, chunkSize: 10, delay: 1 });
  ta.setWriteBufferLimits(100);
  const { stream, state } = counted(
    Array.from({ length: 100 }, () => new Uint8Array(50)),
  );
  const producer = new ReadableStreamProducer(stream, { loop, end: "close" });
  const done = producer.start(ta);
  await loop.advance(3);
  ta.abort();
  const error = await assertRejects(() => loop.runUntilComplete(done), Error);
  assertMatch(
    error.message,
    /^Cannot finish sending the stream: the consumer stopped the producer .*received \d+ bytes written$/,
  );
  await loop.advance(1);
  assert(state.cancelled);
  assert(state.pulled < 100);
  loop.close();
});

Deno.test("ReadableStreamProducer on a consumer already closed fails at once", async () => {
  const { loop, ta } = setup();
  ta.close();
  const { stream, state } = counted([new Uint8Array(1)]);
  const producer = new ReadableStreamProducer(stream, { loop });
  await assertRejects(() => loop.runUntilComplete(producer.start(ta)), Error);
  assertEquals(state.pulled, 0);
  assert(state.cancelled);
  loop.close();
});

Deno.test("ReadableStreamProducer: cancelling the future stops it and cancels the stream", async () => {
  const { loop, ta } = setup({ bufferSize: 0, chunkSize: 10, delay: 1 });
  ta.setWriteBufferLimits(100);
  const { stream, state } = counted(
    Array.from({ length: 100 }, () => new Uint8Array(50)),
  );
  const producer = new ReadableStreamProducer(stream, { loop });
  const done = producer.start(ta);
  await loop.advance(2);
  done.cancel();
  await assertRejects(() => loop.runUntilComplete(done), CancelledError);
  await loop.advance(1);
  assert(state.cancelled);
  assertEquals(String(producer), "[object ReadableStreamProducer finished]");
  // It unregistered: another producer may take its place.
  ta.registerProducer({ resumeProducing() {} }, false);
  ta.close();
  loop.close();
});

// ---- Arguments ----

Deno.test("ReadableStreamProducer checks its arguments", () => {
  const loop = new VirtualTimeLoop();
  assertThrows(
    () => new ReadableStreamProducer("x" as unknown as ReadableStream),
    TypeError,
    'stream must be a ReadableStream, received "x"',
  );
  assertThrows(
    () =>
      new ReadableStreamProducer(new ReadableStream(), {
        end: "flush" as "close",
      }),
    RangeError,
    'end must be "writeEof", "close" or "none", received "flush"',
  );
  const producer = new ReadableStreamProducer(new ReadableStream(), { loop });
  assertThrows(
    () => producer.start({} as Transport),
    TypeError,
    "the consumer's write() must be a function, received undefined",
  );
  const locked = new ReadableStream();
  locked.getReader();
  assertThrows(
    () => new ReadableStreamProducer(locked, { loop }).start({} as Transport),
    TypeError,
  );
  loop.close();
});

Deno.test("ReadableStreamProducer.start() refuses a second start and a start after stopProducing()", async () => {
  const { loop, ta } = setup();
  const producer = new ReadableStreamProducer(
    counted([new Uint8Array(1)]).stream,
    { loop },
  );
  await loop.runUntilComplete(producer.start(ta));
  const error = assertThrows(() => producer.start(ta), InvalidStateError);
  assertInstanceOf(error, InvalidStateError);
  const stopped = new ReadableStreamProducer(new ReadableStream(), { loop });
  stopped.stopProducing();
  assertThrows(() => stopped.start(ta), InvalidStateError, "it was stopped");
  ta.close();
  loop.close();
});

Deno.test("ReadableStreamProducer stopped by the consumer's writeEof() says so", async () => {
  const { loop, ta } = setup({ bufferSize: 0, chunkSize: 10, delay: 1 });
  ta.setWriteBufferLimits(100);
  const { stream, state } = counted(
    Array.from({ length: 100 }, () => new Uint8Array(50)),
  );
  const producer = new ReadableStreamProducer(stream, { loop });
  const done = producer.start(ta);
  await loop.advance(3);
  ta.writeEof();
  const error = await assertRejects(() => loop.runUntilComplete(done), Error);
  // Not "it closed or lost its connection": it is open, half-closed.
  assertMatch(
    error.message,
    /the consumer stopped the producer \(.*writeEof\(\)/,
  );
  await loop.advance(1);
  assert(state.cancelled);
  ta.close();
  loop.close();
});

Deno.test("ReadableStreamProducer.start() on a consumer that has a producer throws and leaves the stream unlocked", async () => {
  const { loop, ta, sink } = setup();
  ta.registerProducer({ resumeProducing() {}, pauseProducing() {} }, true);
  const { stream } = counted([new Uint8Array([1, 2])]);
  const producer = new ReadableStreamProducer(stream, { loop });
  assertThrows(
    () => producer.start(ta),
    InvalidStateError,
    "already registered",
  );
  assertEquals(stream.locked, false);
  assertEquals(String(producer), "[object ReadableStreamProducer idle]");
  // Once the consumer is free, the same producer can start.
  ta.unregisterProducer();
  assertEquals(await loop.runUntilComplete(producer.start(ta)), 2);
  await loop.advance(0);
  assertEquals(sink.bytes(), [1, 2]);
  ta.close();
  loop.close();
});

// ---- Datagrams ----

/** A datagram consumer whose send queue drains `rate` bytes a second. */
class FakeDatagrams {
  sent: Uint8Array[] = [];
  queued = 0;
  most = 0;
  closed = false;
  readonly protocol = new Protocol();
  readonly flow: WriteFlowControl;
  constructor(readonly loop: VirtualTimeLoop, rate: number) {
    this.flow = new WriteFlowControl(
      loop,
      this as unknown as BaseTransport,
      { high: 3000 },
    );
    const drain = () => {
      this.queued = Math.max(0, this.queued - rate);
      this.flow.update(this.queued);
      if (!this.closed) loop.callLater(1, drain);
    };
    loop.callLater(1, drain);
  }
  getProtocol() {
    return this.protocol;
  }
  sendto(data: Uint8Array): void {
    this.sent.push(data);
    this.queued += data.length;
    this.most = Math.max(this.most, this.queued);
    this.flow.update(this.queued);
  }
  registerProducer(producer: Producer, streaming: boolean): void {
    this.flow.registerProducer(producer, streaming);
  }
  unregisterProducer(): void {
    this.flow.unregisterProducer();
  }
  isClosing(): boolean {
    return this.closed;
  }
  close(): void {
    this.closed = true;
    this.flow.close();
  }
}

Deno.test("ReadableStreamProducer sends each chunk as one datagram, paced by the send queue", async () => {
  const loop = new VirtualTimeLoop();
  const datagrams = new FakeDatagrams(loop, 1000);
  const pieces = Array.from(
    { length: 40 },
    (_, i) => new Uint8Array(100 + i).fill(i),
  );
  const { stream } = counted(pieces);
  const producer = new ReadableStreamProducer(stream, {
    loop,
    end: "writeEof",
  });
  const total = pieces.reduce((n, p) => n + p.length, 0);
  const sent = await loop.runUntilComplete(
    producer.start(datagrams as unknown as DatagramTransport),
  );
  assertEquals(sent, total);
  assertEquals(datagrams.sent, pieces); // boundaries kept
  assert(datagrams.most > 3000, "the queue never passed the mark");
  assert(datagrams.most <= 3000 + 139, `queued ${datagrams.most} bytes`);
  assert(datagrams.closed); // no half-close for datagrams: closed
  loop.close();
});
