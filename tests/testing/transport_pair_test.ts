import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { transportPair } from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { BufferedProtocol, Protocol } from "../../protocols/protocol.ts";
import { InvalidStateError } from "../../futures/errors.ts";
import type { Future } from "../../futures/future.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import type { Transport } from "../../transports/transport.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A protocol that logs every event, with the loop time for data. */
class Log extends Protocol {
  events: string[] = [];
  received: number[] = [];
  sizes: number[] = [];
  times: number[] = [];
  transport: Transport | null = null;
  keepOpen = false;
  lost: Future<Error | undefined>;
  #loop: VirtualTimeLoop;

  constructor(loop: VirtualTimeLoop) {
    super();
    this.#loop = loop;
    this.lost = loop.createFuture();
  }
  override connectionMade(t: Transport): void {
    this.transport = t;
    this.events.push("made");
  }
  override dataReceived(data: Uint8Array): void {
    this.events.push(`data ${dec.decode(data)}`);
    this.received.push(...data);
    this.sizes.push(data.length);
    this.times.push(this.#loop.time());
  }
  override eofReceived(): boolean {
    this.events.push("eof");
    return this.keepOpen;
  }
  override connectionLost(exc?: Error): void {
    this.events.push(`lost ${exc?.name ?? "clean"}`);
    this.lost.setResult(exc);
  }
  override pauseWriting(): void {
    this.events.push("pause");
  }
  override resumeWriting(): void {
    this.events.push("resume");
  }
}

function setup(options?: Parameters<typeof transportPair>[2]) {
  const loop = new VirtualTimeLoop();
  const a = new Log(loop);
  const b = new Log(loop);
  const [ta, tb] = transportPair(a, b, { loop, ...options });
  return { loop, a, b, ta, tb };
}

// ---- Connection and delivery ----

Deno.test("transportPair() schedules connectionMade on A then B, never inline", async () => {
  const { loop, a, b, ta, tb } = setup();
  assertEquals([a.events, b.events], [[], []]);
  const order: string[] = [];
  a.connectionMade = (t) => order.push(`A ${t === ta}`);
  b.connectionMade = (t) => order.push(`B ${t === tb}`);
  await loop.advance(1);
  assertEquals(order, ["A true", "B true"]);
  assertStrictEquals(ta.getProtocol(), a);
  loop.close();
});

Deno.test("transportPair() delivers write(a); write(b) as the bytes of write(a + b)", async () => {
  const { loop, b, ta } = setup();
  ta.write(enc.encode("hel"));
  ta.write(enc.encode("lo"));
  ta.writelines([enc.encode(" "), enc.encode("wor"), enc.encode("ld")]);
  await loop.advance(1);
  assertEquals(dec.decode(new Uint8Array(b.received)), "hello world");
  // Written in one turn, delivered together, as a socket read would.
  assertEquals(b.sizes, [11]);
  loop.close();
});

Deno.test("transportPair() never calls dataReceived inside write()", async () => {
  const { loop, b, ta } = setup();
  await loop.advance(1);
  ta.write(enc.encode("x"));
  assertEquals(b.received, []);
  await loop.advance(1);
  assertEquals(b.received, [120]);
  loop.close();
});

Deno.test("transportPair() copies written data so later changes do not leak", async () => {
  const { loop, b, ta } = setup();
  const data = enc.encode("abc");
  ta.write(data);
  data.fill(0);
  await loop.advance(1);
  assertEquals(dec.decode(new Uint8Array(b.received)), "abc");
  loop.close();
});

Deno.test("transportPair() sends in both directions", async () => {
  const { loop, a, b, ta, tb } = setup();
  ta.write(enc.encode("ping"));
  tb.write(enc.encode("pong"));
  await loop.advance(1);
  assertEquals([a.events, b.events], [["made", "data pong"], [
    "made",
    "data ping",
  ]]);
  loop.close();
});

// ---- Splitting ----

Deno.test("transportPair() chunkSize cuts deliveries across write boundaries", async () => {
  const { loop, b, ta } = setup({ chunkSize: 2 });
  ta.write(enc.encode("abc"));
  ta.write(enc.encode("defg"));
  await loop.advance(1);
  assertEquals(b.events.slice(1), ["data ab", "data cd", "data ef", "data g"]);
  loop.close();
});

Deno.test("transportPair() chunkSize lists are cycled separately per direction", async () => {
  const { loop, a, b, ta, tb } = setup({ chunkSize: [1, 3] });
  ta.write(enc.encode("abcdefghi"));
  tb.write(enc.encode("12345"));
  await loop.advance(1);
  assertEquals(b.sizes, [1, 3, 1, 3, 1]);
  assertEquals(a.sizes, [1, 3, 1]);
  loop.close();
});

Deno.test("transportPair() split decides each delivery from the offset and what waits", async () => {
  const calls: [number, number][] = [];
  const { loop, b, ta } = setup({
    split: (offset, available) => {
      calls.push([offset, available]);
      return offset === 0 ? 4 : 0.5; // below 1 is clamped to 1
    },
  });
  ta.write(enc.encode("abcdef"));
  await loop.advance(1);
  assertEquals(b.sizes, [4, 1, 1]);
  assertEquals(calls, [[0, 6], [4, 2], [5, 1]]);
  loop.close();
});

Deno.test("transportPair() delivers each chunk in its own loop iteration", async () => {
  const { loop, b, ta } = setup({ chunkSize: 1 });
  let ticks = 0;
  const tick = () => {
    ticks++;
    if (ticks < 10) loop.callSoon(tick);
  };
  await loop.advance(1); // connected
  ta.write(enc.encode("abc"));
  loop.callSoon(tick);
  const seenAt: number[] = [];
  b.dataReceived = () => seenAt.push(ticks);
  await loop.advance(1);
  assertEquals(seenAt, [0, 1, 2]);
  loop.close();
});

// ---- Delay ----

Deno.test("transportPair() delay spaces deliveries in virtual time", async () => {
  const { loop, b, ta } = setup({ delay: 0.5, chunkSize: 1 });
  ta.write(enc.encode("abc"));
  ta.close();
  const lost = await loop.runUntilComplete(b.lost);
  assertEquals(lost, undefined);
  assertEquals(b.times, [0.5, 1, 1.5]);
  assertEquals(loop.time(), 2); // the end of stream took one more delay
  loop.close();
});

// ---- Half-close and close ----

Deno.test("transportPair() writeEof() delivers eofReceived after the data", async () => {
  const { loop, a, b, ta, tb } = setup({ chunkSize: 2 });
  b.keepOpen = true;
  assert(ta.canWriteEof());
  ta.write(enc.encode("abc"));
  ta.writeEof();
  ta.writeEof(); // idempotent
  await loop.advance(1);
  assertEquals(b.events, ["made", "data ab", "data c", "eof"]);
  assertFalse(tb.isClosing());
  // Half-open: B can still answer, and A still reads.
  tb.write(enc.encode("reply"));
  await loop.advance(1);
  assertEquals(a.events, ["made", "data re", "data pl", "data y"]);
  assertThrows(
    () => ta.write(enc.encode("x")),
    InvalidStateError,
    "Cannot call write(): writeEof() was called",
  );
  loop.close();
});

Deno.test("transportPair() close() flushes, then connectionLost(undefined) once on each side", async () => {
  const { loop, a, b, ta, tb } = setup({ chunkSize: 1 });
  ta.write(enc.encode("bye"));
  ta.close();
  ta.close();
  assert(ta.isClosing());
  assertFalse(ta.isReading());
  await loop.runUntilComplete(b.lost);
  await loop.advance(1);
  assertEquals(a.events, ["made", "lost clean"]);
  assertEquals(b.events, [
    "made",
    "data b",
    "data y",
    "data e",
    "eof",
    "lost clean",
  ]);
  assert(tb.isClosing());
  assertThrows(
    () => ta.write(enc.encode("x")),
    InvalidStateError,
    "Cannot call write(): transport is closing",
  );
  loop.close();
});

Deno.test("transportPair() close() waits for a full write buffer to drain before connectionLost", async () => {
  const { loop, a, b, ta, tb } = setup({ bufferSize: 2, chunkSize: 1 });
  await loop.advance(1);
  tb.pauseReading();
  ta.write(enc.encode("abcdef"));
  assertEquals(ta.getWriteBufferSize(), 4);
  ta.close();
  await loop.advance(1);
  assertEquals(a.events, ["made"]); // still flushing
  tb.resumeReading();
  await loop.runUntilComplete(a.lost);
  await loop.runUntilComplete(b.lost);
  assertEquals(dec.decode(new Uint8Array(b.received)), "abcdef");
  loop.close();
});

Deno.test("transportPair() a peer that keeps half-open closes only when it chooses", async () => {
  const { loop, a, b, ta, tb } = setup();
  b.keepOpen = true;
  ta.close();
  await loop.advance(1);
  assertEquals(a.events, ["made", "lost clean"]);
  assertEquals(b.events, ["made", "eof"]);
  tb.write(enc.encode("into the void")); // A is gone: dropped
  tb.close();
  await loop.advance(1);
  assertEquals(b.events, ["made", "eof", "lost clean"]);
  assertEquals(a.received, []);
  loop.close();
});

// ---- Abort and reset ----

Deno.test("transportPair() abort() drops the buffer and resets the peer", async () => {
  const { loop, a, b, ta } = setup({ delay: 1 });
  ta.write(enc.encode("never arrives"));
  ta.abort();
  ta.abort();
  assert(ta.isClosing());
  assertEquals(await loop.runUntilComplete(a.lost), undefined);
  const exc = await loop.runUntilComplete(b.lost);
  assertInstanceOf(exc, Deno.errors.ConnectionReset);
  assertEquals(b.received, []);
  assertEquals(a.events, ["made", "lost clean"]);
  loop.close();
});

Deno.test("transportPair() resetAfter delivers exactly that many bytes, then resets both sides", async () => {
  const { loop, a, b, ta, tb } = setup({ resetAfter: 5, chunkSize: 2 });
  ta.write(enc.encode("abcdefgh"));
  const excB = await loop.runUntilComplete(b.lost);
  const excA = await loop.runUntilComplete(a.lost);
  assertInstanceOf(excA, Deno.errors.ConnectionReset);
  assertInstanceOf(excB, Deno.errors.ConnectionReset);
  assertEquals(b.sizes, [2, 2, 1]);
  assertEquals(dec.decode(new Uint8Array(b.received)), "abcde");
  // Writes after the protocol learned of the loss throw.
  assertThrows(() => tb.write(enc.encode("x")), InvalidStateError);
  loop.close();
});

Deno.test("transportPair() resetAfter counts both directions", async () => {
  const { loop, a, b, ta, tb } = setup({ resetAfter: 3 });
  ta.write(enc.encode("ab"));
  tb.write(enc.encode("xyz"));
  await loop.runUntilComplete(a.lost);
  await loop.runUntilComplete(b.lost);
  assertEquals(a.received.length + b.received.length, 3);
  loop.close();
});

Deno.test("transportPair() drops writes quietly between a reset and connectionLost", async () => {
  const { loop, a, b, ta, tb } = setup({ resetAfter: 1 });
  let wrote = false;
  b.dataReceived = () => {
    // The reset happens after this delivery; B is told on a later turn.
    loop.callSoon(() => {
      tb.write(enc.encode("late"));
      wrote = true;
    });
  };
  ta.write(enc.encode("ab"));
  await loop.runUntilComplete(b.lost);
  await loop.runUntilComplete(a.lost);
  assert(wrote);
  assertEquals(a.received, []);
  loop.close();
});

Deno.test("transportPair() resetAfter 0 resets at the first delivery", async () => {
  const { loop, a, b, ta } = setup({ resetAfter: 0 });
  ta.write(enc.encode("a"));
  await loop.runUntilComplete(b.lost);
  await loop.runUntilComplete(a.lost);
  assertEquals(b.received, []);
  loop.close();
});

// ---- Reading control ----

Deno.test("transportPair() pauseReading() holds deliveries until resumeReading()", async () => {
  const { loop, b, ta, tb } = setup();
  await loop.advance(1);
  tb.pauseReading();
  tb.pauseReading();
  assertFalse(tb.isReading());
  ta.write(enc.encode("held"));
  await loop.advance(1);
  assertEquals(b.received, []);
  tb.resumeReading();
  tb.resumeReading();
  assert(tb.isReading());
  await loop.advance(1);
  assertEquals(dec.decode(new Uint8Array(b.received)), "held");
  loop.close();
});

// ---- Flow control ----

Deno.test("transportPair() bufferSize and water marks drive pauseWriting and resumeWriting", async () => {
  const { loop, a, b, ta, tb } = setup({ bufferSize: 4, chunkSize: 2 });
  await loop.advance(1);
  ta.setWriteBufferLimits(8, 2);
  assertEquals(ta.getWriteBufferLimits(), [2, 8]);
  tb.pauseReading();
  ta.write(new Uint8Array(12)); // 4 at the peer, 8 buffered: at the mark
  assertEquals(ta.getWriteBufferSize(), 8);
  assertEquals(a.events, ["made"]);
  ta.write(new Uint8Array(1)); // 9 > 8
  assertEquals(a.events, ["made", "pause"]);
  tb.resumeReading();
  await loop.advance(1);
  // 13 bytes in 2-byte reads; resumed when the buffer fell to 2.
  assertEquals(b.sizes, [2, 2, 2, 2, 2, 2, 1]);
  assertEquals(a.events, ["made", "pause", "resume"]);
  assertEquals(ta.getWriteBufferSize(), 0);
  loop.close();
});

Deno.test("transportPair() with the default bufferSize never buffers writes", () => {
  const { loop, a, ta } = setup();
  ta.setWriteBufferLimits(0);
  ta.write(new Uint8Array(1_000_000));
  assertEquals(ta.getWriteBufferSize(), 0);
  assertEquals(a.events, []);
  loop.close();
});

Deno.test("transportPair() pauses and resumes a push producer", async () => {
  const { loop, b, ta, tb } = setup({ bufferSize: 0 });
  await loop.advance(1);
  ta.setWriteBufferLimits(4, 0);
  const calls: string[] = [];
  ta.registerProducer({
    pauseProducing: () => calls.push("pause"),
    resumeProducing: () => calls.push("resume"),
    stopProducing: () => calls.push("stop"),
  }, true);
  tb.pauseReading();
  ta.write(new Uint8Array(5));
  assertEquals(calls, ["pause"]);
  tb.resumeReading();
  await loop.advance(1);
  assertEquals(calls, ["pause", "resume"]);
  assertEquals(b.received.length, 5);
  ta.close();
  assertEquals(calls, ["pause", "resume", "stop"]);
  loop.close();
});

Deno.test("transportPair() stops a producer at writeEof(), and one registered after it", async () => {
  const { loop, b, ta } = setup({ bufferSize: 0, chunkSize: 3 });
  await loop.advance(1);
  const calls: string[] = [];
  ta.registerProducer({
    resumeProducing: () => calls.push("resume"),
    stopProducing: () => calls.push("stop"),
  }, false);
  ta.write(enc.encode("abcdef"));
  ta.writeEof();
  await loop.advance(1);
  assertEquals(dec.decode(new Uint8Array(b.received)), "abcdef");
  assertEquals(calls, ["resume", "stop"]);
  ta.registerProducer({
    resumeProducing: () => calls.push("late resume"),
    stopProducing: () => calls.push("late stop"),
  }, false);
  assertEquals(calls, ["resume", "stop", "late stop"]);
  ta.close();
  loop.close();
});

Deno.test("transportPair() asks a pull producer for more as the buffer drains", async () => {
  const { loop, b, ta } = setup({ bufferSize: 0, chunkSize: 3 });
  await loop.advance(1);
  const parts = ["abc", "def", "ghi"];
  ta.registerProducer({
    resumeProducing: () => {
      const next = parts.shift();
      if (next === undefined) ta.unregisterProducer();
      else ta.write(enc.encode(next));
    },
  }, false);
  await loop.advance(1);
  assertEquals(dec.decode(new Uint8Array(b.received)), "abcdefghi");
  // Unregistered by the producer itself: another may register, but only one.
  ta.registerProducer({ resumeProducing() {} }, false);
  assertThrows(
    () => ta.registerProducer({ resumeProducing() {} }, false),
    InvalidStateError,
  );
  loop.close();
});

Deno.test("transportPair() asks a pull producer for more after each write that went straight out", async () => {
  // The default bufferSize takes every write at once: no drain follows,
  // so the next ask comes on the loop's next turn, once per write.
  const { loop, b, ta } = setup();
  await loop.advance(1);
  const parts = ["abc", "def", "ghi"];
  let asked = 0;
  ta.registerProducer({
    resumeProducing: () => {
      asked++;
      const next = parts.shift();
      if (next === undefined) ta.unregisterProducer();
      else ta.write(enc.encode(next));
    },
  }, false);
  assertEquals(asked, 1);
  await loop.runOnce();
  assertEquals(asked, 2);
  await loop.advance(1);
  assertEquals(dec.decode(new Uint8Array(b.received)), "abcdefghi");
  assertEquals(asked, 4);
  loop.close();
});

// ---- Protocol errors, replacement, buffered protocols ----

Deno.test("transportPair() loses the connection when dataReceived throws", async () => {
  const { loop, a, b, ta } = setup();
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, ctx) => contexts.push(ctx));
  const boom = new Error("boom");
  b.dataReceived = () => {
    throw boom;
  };
  ta.write(enc.encode("x"));
  assertStrictEquals(await loop.runUntilComplete(b.lost), boom);
  assertInstanceOf(
    await loop.runUntilComplete(a.lost),
    Deno.errors.ConnectionReset,
  );
  assertEquals(contexts.length, 1);
  assertEquals(
    contexts[0].message,
    "Fatal error: protocol.dataReceived() call failed",
  );
  assertStrictEquals(contexts[0].exception, boom);
  loop.close();
});

Deno.test("transportPair() loses the connection when connectionMade throws, as a Deno transport does", async () => {
  const loop = new VirtualTimeLoop();
  const a = new Log(loop);
  const b = new Log(loop);
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, ctx) => contexts.push(ctx));
  const boom = new Error("boom");
  a.connectionMade = () => {
    throw boom;
  };
  const [ta] = transportPair(a, b, { loop });
  assertStrictEquals(await loop.runUntilComplete(a.lost), boom);
  assertInstanceOf(
    await loop.runUntilComplete(b.lost),
    Deno.errors.ConnectionReset,
  );
  assert(ta.isClosing());
  assertEquals(contexts.length, 1);
  assertEquals(
    contexts[0].message,
    "Fatal error: protocol.connectionMade() call failed",
  );
  assertStrictEquals(contexts[0].exception, boom);
  assertStrictEquals(contexts[0].transport, ta);
  assertStrictEquals(contexts[0].protocol, a);
  loop.close();
});

Deno.test("transportPair() setProtocol() sends later events to the new protocol", async () => {
  const { loop, b, ta, tb } = setup();
  await loop.advance(1);
  const next = new Log(loop);
  tb.setProtocol(next);
  assertStrictEquals(tb.getProtocol(), next);
  ta.write(enc.encode("to next"));
  await loop.advance(1);
  assertEquals(next.events, ["data to next"]);
  assertEquals(b.events, ["made"]);
  loop.close();
});

Deno.test("transportPair() fills a BufferedProtocol's own buffer", async () => {
  const loop = new VirtualTimeLoop();
  class Sink extends BufferedProtocol {
    buf = new Uint8Array(4);
    got: number[] = [];
    hints: number[] = [];
    override getBuffer(hint: number): Uint8Array {
      this.hints.push(hint);
      return this.buf;
    }
    override bufferUpdated(n: number): void {
      this.got.push(...this.buf.subarray(0, n));
    }
  }
  const sink = new Sink();
  const [ta] = transportPair(new Protocol(), sink, { loop });
  ta.write(new Uint8Array([1, 2, 3, 4, 5, 6]));
  await loop.advance(1);
  assertEquals(sink.got, [1, 2, 3, 4, 5, 6]);
  assertEquals(sink.hints, [6, 2]);
  loop.close();
});

Deno.test("transportPair() gives a BufferedProtocol no more bytes once bufferUpdated() closes, aborts or pauses reading, as one read into its buffer on TCP", async () => {
  for (const action of ["close", "abort", "pauseReading"] as const) {
    const loop = new VirtualTimeLoop();
    class Sink extends BufferedProtocol {
      buf = new Uint8Array(2);
      events: string[] = [];
      transport: Transport | null = null;
      override connectionMade(t: Transport): void {
        this.transport = t;
      }
      override getBuffer(): Uint8Array {
        return this.buf;
      }
      override bufferUpdated(n: number): void {
        this.events.push(dec.decode(this.buf.subarray(0, n)));
        if (this.events.length === 1) this.transport![action]();
      }
      override connectionLost(): void {
        this.events.push("lost");
      }
    }
    const sink = new Sink();
    const [ta, tb] = transportPair(new Protocol(), sink, { loop });
    await loop.advance(1);
    ta.write(enc.encode("abcdef"));
    await loop.advance(1);
    assertEquals(
      sink.events,
      action === "pauseReading" ? ["ab"] : ["ab", "lost"],
      action,
    );
    if (action === "pauseReading") {
      tb.resumeReading();
      await loop.advance(1);
      assertEquals(sink.events, ["ab", "cd", "ef"]);
    }
    loop.close();
  }
});

Deno.test("transportPair() names the BufferedProtocol call that failed, as the TCP transport does", async () => {
  for (
    const [method, wrong] of [
      ["getBuffer", "throw"],
      ["getBuffer", "empty"],
      ["bufferUpdated", "throw"],
    ] as const
  ) {
    const loop = new VirtualTimeLoop();
    const contexts: ExceptionContext[] = [];
    loop.setExceptionHandler((_l, ctx) => contexts.push(ctx));
    const boom = new Error("boom");
    class Sink extends BufferedProtocol {
      override getBuffer(): Uint8Array {
        if (method !== "getBuffer") return new Uint8Array(4);
        if (wrong === "empty") return new Uint8Array(0);
        throw boom;
      }
      override bufferUpdated(): void {
        throw boom;
      }
    }
    const [ta] = transportPair(new Protocol(), new Sink(), { loop });
    ta.write(new Uint8Array([1, 2, 3]));
    await loop.advance(1);
    assertEquals(contexts.length, 1);
    assertEquals(
      contexts[0].message,
      `Fatal error: protocol.${method}() call failed`,
    );
    if (wrong === "throw") assertStrictEquals(contexts[0].exception, boom);
    else assertInstanceOf(contexts[0].exception, TypeError);
    loop.close();
  }
});

// ---- Extra info and validation ----

Deno.test("transportPair() getExtraInfo() gives fake peername and sockname", () => {
  const { loop, ta, tb } = setup();
  assertEquals(ta.getExtraInfo("sockname"), {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 40001,
  });
  assertEquals(ta.getExtraInfo("peername"), tb.getExtraInfo("sockname"));
  assertEquals(tb.getExtraInfo("peername"), ta.getExtraInfo("sockname"));
  assertEquals(ta.getExtraInfo("peercert", "none"), "none");
  loop.close();
  const unix: Deno.Addr = { transport: "unix", path: "/tmp/a.sock" };
  const other: Deno.Addr = { transport: "unix", path: "/tmp/b.sock" };
  const loop2 = new VirtualTimeLoop();
  const [ua] = transportPair(new Protocol(), new Protocol(), {
    loop: loop2,
    addresses: [unix, other],
  });
  assertEquals(ua.getExtraInfo("peername"), other);
  loop2.close();
});

Deno.test("transportPair() rejects bad arguments", () => {
  const loop = new VirtualTimeLoop();
  const p = () => new Protocol();
  assertThrows(
    () => transportPair(p(), p()),
    InvalidStateError,
    "Cannot make a transport pair: no event loop is running",
  );
  assertThrows(() => transportPair(null as never, p(), { loop }), TypeError);
  assertThrows(
    () => transportPair(p(), p(), { loop, chunkSize: 0 }),
    RangeError,
  );
  assertThrows(
    () => transportPair(p(), p(), { loop, chunkSize: [] }),
    RangeError,
  );
  assertThrows(
    () => transportPair(p(), p(), { loop, chunkSize: 1, split: () => 1 }),
    RangeError,
    "give chunkSize or split, received both",
  );
  assertThrows(
    () => transportPair(p(), p(), { loop, split: 3 as never }),
    TypeError,
  );
  assertThrows(() => transportPair(p(), p(), { loop, delay: -1 }), RangeError);
  // Bytes delayed for ever would never arrive, and close() never finish.
  assertThrows(
    () => transportPair(p(), p(), { loop, delay: Infinity }),
    RangeError,
    "delay must be a finite number >= 0, received Infinity",
  );
  assertThrows(
    () => transportPair(p(), p(), { loop, bufferSize: NaN }),
    RangeError,
  );
  const [t] = transportPair(p(), p(), { loop });
  assertThrows(
    () => t.write("text" as never),
    TypeError,
    'Cannot call write(): data must be a Uint8Array, received "text"',
  );
  assertThrows(
    () => t.writelines([new Uint8Array(1), 7 as never]),
    TypeError,
    "Cannot call writelines(): every item must be a Uint8Array, received 7",
  );
  loop.close();
});

Deno.test("transportPair() uses the running loop by default", async () => {
  const loop = new VirtualTimeLoop();
  const result = await loop.runUntilComplete(loop.createTask(async () => {
    const got: number[] = [];
    const b = new Protocol();
    b.dataReceived = (d) => got.push(...d);
    const [ta] = transportPair(new Protocol(), b);
    ta.write(new Uint8Array([9]));
    await loop.createTask(function* () {
      for (let i = 0; i < 5; i++) yield;
    });
    return got;
  }));
  assertEquals(result, [9]);
  loop.close();
});

Deno.test("transportPair() delivers one read spanning more than 64 queued writes", async () => {
  const loop = new VirtualTimeLoop();
  const got: number[] = [];
  class Sink extends Protocol {
    override dataReceived(data: Uint8Array) {
      got.push(...data);
    }
  }
  const [a] = transportPair(new Protocol(), new Sink(), {
    loop,
    chunkSize: 1000,
  });
  for (let i = 0; i < 200; i++) a.write(new Uint8Array([i]));
  await loop.advance(0);
  assertEquals(got, Array.from({ length: 200 }, (_, i) => i));
  a.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("transportPair() with a delay gives a BufferedProtocol the bytes its small buffer held back at once, as reads of bytes that arrived, not a delay later each", async () => {
  const loop = new VirtualTimeLoop();
  const got: [number, string][] = [];
  class Sink extends BufferedProtocol {
    buf = new Uint8Array(2);
    override getBuffer(): Uint8Array {
      return this.buf;
    }
    override bufferUpdated(n: number): void {
      got.push([loop.time(), dec.decode(this.buf.subarray(0, n))]);
    }
    override eofReceived(): boolean {
      got.push([loop.time(), "eof"]);
      return false;
    }
  }
  const [ta] = transportPair(new Protocol(), new Sink(), {
    loop,
    delay: 1,
    chunkSize: [4, 2],
  });
  await loop.advance(1);
  ta.write(enc.encode("abcdefgh"));
  ta.writeEof();
  await loop.advance(10);
  // Chunks of 4 and 2 bytes (cycled), each a delay after the one before;
  // the 2-byte buffer reads each chunk in turn as it arrives.
  assertEquals(got, [
    [2, "ab"],
    [2, "cd"],
    [3, "ef"],
    [4, "gh"],
    [5, "eof"],
  ]);
  loop.close();
});

Deno.test("transportPair: an end closing with bytes its peer never reads is lost when the peer closes", async () => {
  const loop = new VirtualTimeLoop();
  const a = new Log(loop);
  const b = new Log(loop);
  transportPair(a, b, { loop, bufferSize: 0 });
  await loop.advance(0);
  b.transport!.pauseReading();
  a.transport!.setWriteBufferLimits(10);
  a.transport!.write(new Uint8Array(100));
  a.transport!.close();
  b.transport!.close();
  await loop.advance(1);
  assertEquals(b.events, ["made", "lost clean"]);
  assertEquals(a.events, ["made", "pause", "resume", "lost clean"]);
  loop.close();
});
