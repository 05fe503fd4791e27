import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import type { Future } from "../../futures/future.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import {
  connectReadPipe,
  connectWritePipe,
} from "../../transports/_deno_pipes.ts";
import { DenoProactor } from "../../transports/_deno_proactor.ts";
import {
  BaseProtocol,
  BufferedProtocol,
  Protocol,
} from "../../protocols/protocol.ts";
import type {
  ReadTransport,
  WriteTransport,
} from "../../transports/transport.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { gc } from "../_gc.ts";

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** A protocol that records its events, and a future of its end. */
class Recorder extends Protocol {
  readonly events: string[] = [];
  readonly lost: Future<Error | undefined>;
  transport?: ReadTransport;
  constructor(loop: DenoEventLoop) {
    super();
    this.lost = loop.createFuture();
  }
  override connectionMade(t: never) {
    this.transport = t;
    this.events.push("made");
  }
  override dataReceived(data: Uint8Array) {
    this.events.push(`data ${decode(data)}`);
  }
  override eofReceived() {
    this.events.push("eof");
    return true;
  }
  override connectionLost(exc?: Error) {
    this.events.push(exc === undefined ? "lost" : `lost ${exc.name}`);
    this.lost.setResult(exc);
  }
}

class Writer extends BaseProtocol {
  readonly events: string[] = [];
  readonly lost: Future<Error | undefined>;
  constructor(loop: DenoEventLoop) {
    super();
    this.lost = loop.createFuture();
  }
  override connectionMade() {
    this.events.push("made");
  }
  override pauseWriting() {
    this.events.push("pause");
  }
  override resumeWriting() {
    this.events.push("resume");
  }
  override connectionLost(exc?: Error) {
    this.events.push(exc === undefined ? "lost" : `lost ${exc.message}`);
    this.lost.setResult(exc);
  }
}

function collectErrors(loop: DenoEventLoop): ExceptionContext[] {
  const seen: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => seen.push(context));
  return seen;
}

/** A pull-counting stream that hands out `chunks`, one per pull. */
function countingStream(chunks: string[]) {
  const state = { pulls: 0, cancelled: false as boolean | unknown };
  const readable = new ReadableStream<Uint8Array>({
    pull(controller) {
      state.pulls++;
      const next = chunks.shift();
      if (next === undefined) controller.close();
      else controller.enqueue(encode(next));
    },
    cancel(reason) {
      state.cancelled = reason ?? true;
    },
  }, { highWaterMark: 0 });
  return { readable, state };
}

// ---- connectReadPipe ----

Deno.test("connectReadPipe() delivers chunks, then eofReceived, then connectionLost", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  const readable = ReadableStream.from([encode("ab"), encode("cd")]);
  const [transport, p] = await loop.runUntilComplete(
    loop.connectReadPipe(() => protocol, readable),
  );
  assertStrictEquals(p, protocol);
  assertStrictEquals(transport.getExtraInfo("pipe"), readable);
  assertEquals(await loop.runUntilComplete(protocol.lost), undefined);
  assertEquals(protocol.events, ["made", "data ab", "data cd", "eof", "lost"]);
  assert(transport.isClosing());
  loop.close();
});

Deno.test("connectReadPipe() reads into a BufferedProtocol's own buffer, then eofReceived, then connectionLost", async () => {
  const loop = new DenoEventLoop();
  const errors = collectErrors(loop);
  const events: string[] = [];
  const lost = loop.createFuture<Error | undefined>();
  let got = "";
  const protocol = new (class extends BufferedProtocol {
    readonly buf = new Uint8Array(3);
    override getBuffer(sizeHint: number): Uint8Array {
      events.push(`getBuffer ${sizeHint}`);
      return this.buf;
    }
    override bufferUpdated(n: number): void {
      got += new TextDecoder().decode(this.buf.subarray(0, n));
    }
    override eofReceived(): void {
      events.push("eof");
    }
    override connectionLost(exc?: Error): void {
      events.push("lost");
      lost.setResult(exc);
    }
  })();
  const readable = ReadableStream.from([encode("hello"), encode("pipe")]);
  await loop.runUntilComplete(
    // deno-lint-ignore no-explicit-any
    loop.connectReadPipe(() => protocol as any, readable),
  );
  assertEquals(await loop.runUntilComplete(lost), undefined);
  assertEquals(got, "hellopipe");
  // Each chunk fills the 3-byte buffer as often as it takes.
  assertEquals(events, [
    "getBuffer 5",
    "getBuffer 2",
    "getBuffer 4",
    "getBuffer 1",
    "eof",
    "lost",
  ]);
  assertEquals(errors, []);
  loop.close();
});

Deno.test("connectReadPipe() stops pulling while paused and goes on after resumeReading()", async () => {
  const loop = new DenoEventLoop();
  const { readable, state } = countingStream(["a", "b", "c"]);
  const protocol = new Recorder(loop);
  protocol.dataReceived = function (data: Uint8Array) {
    this.events.push(`data ${decode(data)}`);
    if (decode(data) === "a") this.transport!.pauseReading();
  };
  const [transport] = await loop.runUntilComplete(
    loop.connectReadPipe(() => protocol, readable),
  );
  // Give the loop plenty of turns: nothing more may be pulled.
  for (let i = 0; i < 20; i++) {
    await loop.runUntilComplete(Promise.resolve());
  }
  assertEquals(protocol.events, ["made", "data a"]);
  assertEquals(state.pulls, 1);
  assertEquals(transport.isReading(), false);
  transport.resumeReading();
  assert(transport.isReading());
  await loop.runUntilComplete(protocol.lost);
  assertEquals(protocol.events, [
    "made",
    "data a",
    "data b",
    "data c",
    "eof",
    "lost",
  ]);
  loop.close();
});

Deno.test("connectReadPipe() holds a chunk that arrives while paused until resumeReading()", async () => {
  const loop = new DenoEventLoop();
  const { readable } = countingStream(["a", "b"]);
  const protocol = new Recorder(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectReadPipe(() => protocol, readable),
  );
  // A read is in flight now; pausing lets it land but not be delivered.
  transport.pauseReading();
  for (let i = 0; i < 10; i++) {
    await loop.runUntilComplete(Promise.resolve());
  }
  assertEquals(protocol.events, ["made"]);
  transport.resumeReading();
  await loop.runUntilComplete(protocol.lost);
  assertEquals(protocol.events, ["made", "data a", "data b", "eof", "lost"]);
  loop.close();
});

Deno.test("ReadTransport.close() cancels the stream and calls connectionLost once, without eofReceived", async () => {
  const loop = new DenoEventLoop();
  const { readable, state } = countingStream(["a", "b", "c"]);
  const protocol = new Recorder(loop);
  protocol.dataReceived = function (data: Uint8Array) {
    this.events.push(`data ${decode(data)}`);
    this.transport!.close();
    this.transport!.close();
  };
  await loop.runUntilComplete(loop.connectReadPipe(() => protocol, readable));
  assertEquals(await loop.runUntilComplete(protocol.lost), undefined);
  await loop.runUntilComplete(Promise.resolve());
  assertEquals(protocol.events, ["made", "data a", "lost"]);
  assert(state.cancelled);
  loop.close();
});

Deno.test("ReadTransport.close() calls connectionLost at once when the stream's cancel() waits, as asyncio's close() does", async () => {
  // ReadableStream.from() of an async generator: cancel() waits for the
  // generator's next item, which may never come.
  const loop = new DenoEventLoop();
  const more = Promise.withResolvers<void>();
  async function* source() {
    yield encode("a");
    await more.promise;
    yield encode("b");
  }
  const protocol = new Recorder(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectReadPipe(() => protocol, ReadableStream.from(source())),
  );
  while (protocol.events.length < 2) {
    await loop.runUntilComplete(Promise.resolve());
  }
  transport.close();
  assertEquals(await loop.runUntilComplete(protocol.lost, 5), undefined);
  assertEquals(protocol.events, ["made", "data a", "lost"]);
  more.resolve();
  for (let i = 0; i < 5; i++) await loop.runUntilComplete(Promise.resolve());
  assertEquals(protocol.events, ["made", "data a", "lost"]);
  loop.close();
});

Deno.test("connectReadPipe() reports a stream error to connectionLost", async () => {
  const loop = new DenoEventLoop();
  const errors = collectErrors(loop);
  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encode("x"));
      controller.error(new RangeError("stream broke"));
    },
  });
  const protocol = new Recorder(loop);
  await loop.runUntilComplete(loop.connectReadPipe(() => protocol, readable));
  const exc = await loop.runUntilComplete(protocol.lost);
  assertInstanceOf(exc, RangeError);
  assertEquals(protocol.events.at(-1), "lost RangeError");
  // Not a Deno I/O error: the loop's exception handler hears of it too.
  assertEquals(errors.length, 1);
  loop.close();
});

Deno.test("connectReadPipe() closes the transport when dataReceived() throws", async () => {
  const loop = new DenoEventLoop();
  const errors = collectErrors(loop);
  const { readable, state } = countingStream(["a", "b"]);
  const protocol = new Recorder(loop);
  protocol.dataReceived = () => {
    throw new Error("bad protocol");
  };
  await loop.runUntilComplete(loop.connectReadPipe(() => protocol, readable));
  const exc = await loop.runUntilComplete(protocol.lost);
  assertEquals(exc?.message, "bad protocol");
  assertEquals(errors.length, 1);
  assertEquals(
    errors[0].message,
    "Fatal error: protocol.dataReceived() call failed",
  );
  assert(state.cancelled);
  loop.close();
});

Deno.test("connectReadPipe() fails the transport on a chunk that is not bytes", async () => {
  const loop = new DenoEventLoop();
  collectErrors(loop);
  const readable = ReadableStream.from(["text"]) as unknown as ReadableStream<
    Uint8Array
  >;
  const protocol = new Recorder(loop);
  await loop.runUntilComplete(loop.connectReadPipe(() => protocol, readable));
  assertInstanceOf(await loop.runUntilComplete(protocol.lost), TypeError);
  loop.close();
});

Deno.test("connectReadPipe() rejects what is not a free ReadableStream", () => {
  const loop = new DenoEventLoop();
  assertThrows(
    () => loop.connectReadPipe(() => new Protocol(), "x" as never),
    TypeError,
    "Cannot call connectReadPipe(): readable must be a ReadableStream",
  );
  const readable = new ReadableStream<Uint8Array>();
  const reader = readable.getReader();
  assertThrows(
    () => loop.connectReadPipe(() => new Protocol(), readable),
    InvalidStateError,
    "locked",
  );
  reader.releaseLock();
  // A factory that is no function is refused at once, as createConnection()
  // refuses one.
  assertThrows(
    () => loop.connectReadPipe(42 as never, readable),
    TypeError,
    "Cannot call connectReadPipe(): protocolFactory must be a function, received number",
  );
  assertThrows(
    () => loop.connectWritePipe(null as never, new WritableStream()),
    TypeError,
    "Cannot call connectWritePipe(): protocolFactory must be a function, received object",
  );
  loop.close();
});

Deno.test("connectReadPipe()/connectWritePipe() fail with a TypeError that says so when the factory returns no protocol", async () => {
  const loop = new DenoEventLoop();
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => errors.push(context));
  const readable = new ReadableStream<Uint8Array>();
  const read = await loop.runUntilComplete(
    loop.connectReadPipe(() => "no" as never, readable),
  ).catch((e) => e);
  assertInstanceOf(read, TypeError);
  assertEquals(
    read.message,
    'Cannot call connectReadPipe(): protocolFactory must return a protocol (an object with connectionMade()), received "no"',
  );
  assertEquals(readable.locked, false, "the stream is left as it was");
  const written = await loop.runUntilComplete(
    loop.connectWritePipe(() => ({}) as never, new WritableStream()),
  ).catch((e) => e);
  assertInstanceOf(written, TypeError);
  assertEquals(
    written.message,
    "Cannot call connectWritePipe(): protocolFactory must return a protocol (an object with connectionMade()), received Object",
  );
  assertEquals(errors, []);
  loop.close();
});

Deno.test("connectReadPipe()/connectWritePipe() given a file, a stream of the other way or a file descriptor (what asyncio takes) say what to pass instead", async () => {
  const loop = new DenoEventLoop();
  const file = await Deno.open(new URL(import.meta.url), { read: true });
  try {
    assertThrows(
      () => loop.connectReadPipe(() => new Protocol(), file as never),
      TypeError,
      "Cannot call connectReadPipe(): readable must be a ReadableStream, received FsFile (pass its .readable)",
    );
    assertThrows(
      () =>
        loop.connectWritePipe(() => new BaseProtocol(), Deno.stdout as never),
      TypeError,
      "Cannot call connectWritePipe(): writable must be a WritableStream, received Stdout (pass its .writable)",
    );
    assertThrows(
      () =>
        loop.connectReadPipe(
          () => new Protocol(),
          new WritableStream() as never,
        ),
      TypeError,
      "received WritableStream (connectWritePipe() takes that kind)",
    );
    assertThrows(
      () =>
        loop.connectWritePipe(
          () => new BaseProtocol(),
          new ReadableStream() as never,
        ),
      TypeError,
      "received ReadableStream (connectReadPipe() takes that kind)",
    );
    assertThrows(
      () => loop.connectReadPipe(() => new Protocol(), 0 as never),
      TypeError,
      "received 0 (a file descriptor: Deno gives streams instead, such as Deno.stdin.readable)",
    );
  } finally {
    file.close();
    loop.close();
  }
});

Deno.test("connectReadPipe() fails its future when connectionMade() throws", async () => {
  const loop = new DenoEventLoop();
  const { readable, state } = countingStream(["a"]);
  class Bad extends Protocol {
    override connectionMade() {
      throw new Error("no");
    }
  }
  const future = loop.connectReadPipe(() => new Bad(), readable);
  await loop.runUntilComplete(future).then(
    () => assert(false, "should fail"),
    (e) => assertEquals(e.message, "no"),
  );
  await loop.runUntilComplete(Promise.resolve());
  assert(state.cancelled);
  loop.close();
});

for (const kind of ["read", "write"] as const) {
  Deno.test(`connect${kind === "read" ? "Read" : "Write"}Pipe(): a connectionMade() that throws is a fatal error, reported and given to connectionLost, as on a Deno TCP transport`, async () => {
    // The future failed, but the exception handler heard nothing and
    // connectionLost() came without the error.
    const loop = new DenoEventLoop();
    const contexts: ExceptionContext[] = [];
    loop.setExceptionHandler((_, context) => contexts.push(context));
    const error = new Error("no");
    const lost: (Error | undefined)[] = [];
    class Bad extends Protocol {
      override connectionMade() {
        throw error;
      }
      override connectionLost(exc?: Error) {
        lost.push(exc);
      }
    }
    const future: Future<unknown> = kind === "read"
      ? loop.connectReadPipe(() => new Bad(), countingStream(["a"]).readable)
      : loop.connectWritePipe(() => new Bad(), new WritableStream());
    await loop.runUntilComplete(future).then(
      () => assert(false, "should fail"),
      (e) => assertEquals(e, error),
    );
    for (let i = 0; i < 3 && lost.length === 0; i++) {
      await loop.runUntilComplete(loop.createTask(() => sleepTurn(loop)));
    }
    assertEquals(lost, [error]);
    assertEquals(
      contexts.map((c) => [c.message, c.exception]),
      [["Fatal error: protocol.connectionMade() call failed", error]],
    );
    loop.close();
  });
}

Deno.test("connectReadPipe() closes the transport when its future is cancelled before it is done, as asyncio does", async () => {
  const loop = new DenoEventLoop();
  const { readable, state } = countingStream(["a", "b"]);
  const protocol = new Recorder(loop);
  const future = loop.connectReadPipe(() => protocol, readable);
  future.cancel();
  await loop.runUntilComplete(protocol.lost);
  // connectionMade came (it was scheduled), then the close: nothing read.
  assertEquals(protocol.events, ["made", "lost"]);
  assert(state.cancelled);
  loop.close();
});

// ---- connectWritePipe ----

/** A sink whose writes complete only when the test says so. */
function gatedSink() {
  const written: string[] = [];
  const gates: (() => void)[] = [];
  const state = { aborted: undefined as unknown, closed: false };
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      written.push(decode(chunk));
      return new Promise<void>((resolve) => gates.push(resolve));
    },
    close() {
      state.closed = true;
    },
    abort(reason) {
      state.aborted = reason ?? "aborted";
    },
  });
  const release = () => gates.shift()?.();
  return { writable, written, release, state };
}

Deno.test("connectWritePipe() gathers writes made while one is in flight into one chunk", async () => {
  const loop = new DenoEventLoop();
  const { writable, written, release, state } = gatedSink();
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, writable),
  );
  transport.write(encode("a"));
  transport.write(encode("b"));
  transport.writelines([encode("c"), encode("d")]);
  assertEquals(transport.getWriteBufferSize(), 4);
  transport.close();
  assertThrows(
    () => transport.write(encode("e")),
    InvalidStateError,
    "Cannot call write(): transport is closing",
  );
  while (!protocol.lost.done()) {
    release();
    await loop.runUntilComplete(Promise.resolve());
  }
  assertEquals(written, ["a", "bcd"]);
  assertEquals(transport.getWriteBufferSize(), 0);
  assert(state.closed);
  assertEquals(protocol.events, ["made", "lost"]);
  loop.close();
});

Deno.test("connectWritePipe() copies written bytes, so the caller may reuse its buffer", async () => {
  const loop = new DenoEventLoop();
  const { writable, written, release } = gatedSink();
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, writable),
  );
  const buf = encode("xy");
  transport.write(buf);
  buf.set(encode("zz"));
  transport.close();
  while (!protocol.lost.done()) {
    release();
    await loop.runUntilComplete(Promise.resolve());
  }
  assertEquals(written, ["xy"]);
  loop.close();
});

Deno.test("connectWritePipe() over a file lets go of a written chunk once its write completes", async () => {
  // On Deno's own streams the transport calls the write op itself: what it
  // wrote must not stay referenced until the next write.
  const file = await Deno.open("/dev/null", { write: true });
  const loop = new DenoEventLoop();
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, file.writable),
  );
  gc();
  const before = Deno.memoryUsage().external;
  transport.write(new Uint8Array(32 << 20));
  while (transport.getWriteBufferSize() > 0) {
    await loop.runUntilComplete(Promise.resolve());
  }
  for (let i = 0; i < 3; i++) {
    await loop.runUntilComplete(Promise.resolve());
    gc();
  }
  const held = Deno.memoryUsage().external - before;
  transport.close();
  await loop.runUntilComplete(protocol.lost);
  loop.close();
  assert(held < 16 << 20, `${held >> 20} MiB still held after the write`);
});

Deno.test("connectWritePipe() over a file's stream closed already fails its first write as the stream does", async () => {
  // The write op is used only on a stream still open: this one goes
  // through its writer, whose TypeError is reported as a write error.
  const file = await Deno.open("/dev/null", { write: true });
  await file.writable.close();
  const loop = new DenoEventLoop();
  const seen = collectErrors(loop);
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, file.writable),
  );
  transport.write(encode("x"));
  assertInstanceOf(await loop.runUntilComplete(protocol.lost), TypeError);
  assertEquals(seen.map((c) => c.message), [
    "Fatal write error on pipe transport",
  ]);
  loop.close();
});

Deno.test("connectWritePipe() calls pauseWriting() above the high-water mark and resumeWriting() when drained", async () => {
  const loop = new DenoEventLoop();
  const { writable, release } = gatedSink();
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, writable),
  );
  transport.setWriteBufferLimits(10, 2);
  assertEquals(transport.getWriteBufferLimits(), [2, 10]);
  transport.write(new Uint8Array(10));
  assertEquals(protocol.events, ["made"]);
  transport.write(new Uint8Array(1));
  assertEquals(protocol.events, ["made", "pause"]);
  while (transport.getWriteBufferSize() > 0) {
    release();
    await loop.runUntilComplete(Promise.resolve());
  }
  assertEquals(protocol.events, ["made", "pause", "resume"]);
  transport.abort();
  await loop.runUntilComplete(protocol.lost);
  loop.close();
});

Deno.test("connectWritePipe() waits for the writer's backpressure before writing", async () => {
  const loop = new DenoEventLoop();
  const { writable, written, release } = gatedSink();
  // Take the stream's queue space with a write of our own first.
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, writable),
  );
  transport.write(encode("1"));
  await loop.runUntilComplete(Promise.resolve());
  transport.write(encode("2"));
  await loop.runUntilComplete(Promise.resolve());
  // The first write has not completed: the second waits in the buffer.
  assertEquals(written, ["1"]);
  assertEquals(transport.getWriteBufferSize(), 2);
  release();
  while (written.length < 2) await loop.runUntilComplete(Promise.resolve());
  assertEquals(written, ["1", "2"]);
  release();
  transport.close();
  await loop.runUntilComplete(protocol.lost);
  loop.close();
});

Deno.test("WriteTransport.abort() drops the buffer, aborts the stream and calls connectionLost(undefined)", async () => {
  const loop = new DenoEventLoop();
  const { writable, written, release, state } = gatedSink();
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, writable),
  );
  transport.write(encode("first"));
  while (written.length === 0) await loop.runUntilComplete(Promise.resolve());
  transport.write(encode("dropped"));
  transport.abort();
  transport.abort();
  assert(transport.isClosing());
  assertEquals(transport.getWriteBufferSize(), 0);
  // The stream finishes the write it already has before it aborts.
  release();
  assertEquals(await loop.runUntilComplete(protocol.lost), undefined);
  assertEquals(written, ["first"]);
  assert(state.aborted !== undefined);
  assertEquals(protocol.events, ["made", "lost"]);
  loop.close();
});

Deno.test("WriteTransport.abort() on a pipe whose write never completes calls connectionLost(undefined) at once, as asyncio's abort() does", async () => {
  // A reader that never reads (a child that never reads its stdin, and a
  // grandchild holding it): the stream's own abort waits for the write in
  // flight, which may be forever.
  const loop = new DenoEventLoop();
  const { writable, written, release, state } = gatedSink();
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, writable),
  );
  transport.write(encode("stuck"));
  while (written.length === 0) await loop.runUntilComplete(Promise.resolve());
  transport.abort();
  assertEquals(await loop.runUntilComplete(protocol.lost, 5), undefined);
  assertEquals(protocol.events, ["made", "lost"]);
  assertEquals(transport.getWriteBufferSize(), 0);
  // The stream is aborted once its write is over; nothing more is told.
  release();
  while (state.aborted === undefined) {
    await loop.runUntilComplete(Promise.resolve());
  }
  assertEquals(protocol.events, ["made", "lost"]);
  loop.close();
});

Deno.test("WriteTransport.abort() after close() whose stream never finishes closing calls connectionLost(undefined) at once", async () => {
  const loop = new DenoEventLoop();
  let finishClose!: () => void;
  const writable = new WritableStream<Uint8Array>({
    write() {},
    close: () => new Promise<void>((resolve) => finishClose = resolve),
  });
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, writable),
  );
  transport.write(encode("x"));
  transport.close();
  while (finishClose === undefined) {
    await loop.runUntilComplete(Promise.resolve());
  }
  transport.abort();
  assertEquals(await loop.runUntilComplete(protocol.lost, 5), undefined);
  assertEquals(protocol.events, ["made", "lost"]);
  finishClose();
  await loop.runUntilComplete(Promise.resolve());
  assertEquals(protocol.events, ["made", "lost"]);
  loop.close();
});

Deno.test("connectWritePipe() reports a failed write to connectionLost", async () => {
  const loop = new DenoEventLoop();
  const errors = collectErrors(loop);
  const writable = new WritableStream<Uint8Array>({
    write() {
      throw new Error("disk full");
    },
  });
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, writable),
  );
  transport.write(encode("x"));
  const exc = await loop.runUntilComplete(protocol.lost);
  assertEquals(exc?.message, "disk full");
  assertEquals(errors.length, 1);
  // Once connectionLost has been delivered, a write is refused, as on
  // every transport.
  assertThrows(
    () => transport.write(encode("y")),
    InvalidStateError,
    "Cannot call write(): transport is closing",
  );
  loop.close();
});

Deno.test("WriteTransport.writeEof() on a pipe flushes and closes; later writes throw", async () => {
  const loop = new DenoEventLoop();
  const chunks: string[] = [];
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      chunks.push(decode(chunk));
    },
  });
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, writable),
  );
  assert(transport.canWriteEof());
  transport.write(encode("bye"));
  transport.writeEof();
  assertThrows(
    () => transport.write(encode("more")),
    InvalidStateError,
    "writeEof()",
  );
  await loop.runUntilComplete(protocol.lost);
  assertEquals(chunks, ["bye"]);
  loop.close();
});

Deno.test("WriteTransport.write() on a pipe rejects what is not bytes", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, new WritableStream()),
  );
  assertThrows(
    () => transport.write("text" as never),
    TypeError,
    'Cannot call write(): data must be a Uint8Array, received "text"',
  );
  assertThrows(
    () => transport.writelines([new Uint8Array(1), "text" as never]),
    TypeError,
    'Cannot call writelines(): every item must be a Uint8Array, received "text"',
  );
  transport.writeEof();
  assertThrows(
    () => transport.writelines([new Uint8Array(1)]),
    InvalidStateError,
    "Cannot call writelines(): writeEof() was called",
  );
  transport.close();
  await loop.runUntilComplete(protocol.lost);
  loop.close();
});

Deno.test("connectWritePipe() asks a pull producer for more as the buffer drains", async () => {
  const loop = new DenoEventLoop();
  const { writable, written, release } = gatedSink();
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, writable),
  );
  let left = 3;
  const t: WriteTransport = transport;
  t.registerProducer({
    resumeProducing() {
      if (left > 0) t.write(encode(String(left--)));
      else t.close();
    },
  }, false);
  while (!protocol.lost.done()) {
    release();
    await loop.runUntilComplete(Promise.resolve());
  }
  assertEquals(written.join(""), "321");
  loop.close();
});

// ---- the proactor: pending work and completions after the loop closed ----

/** A stream whose chunks arrive only when the test pushes them. */
function pushedStream() {
  const state = { cancelled: false as unknown };
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const readable = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel(reason) {
      state.cancelled = reason ?? true;
    },
  }, { highWaterMark: 0 });
  return {
    readable,
    state,
    push: (s: string) => controller.enqueue(encode(s)),
  };
}

/** Lets settled promises run their reactions. */
async function microtasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

Deno.test("connectReadPipe() left open: the loop's close() cancels the stream, calls nothing, and reports it", async () => {
  const loop = new DenoEventLoop();
  const errors = collectErrors(loop);
  const { readable, state } = pushedStream();
  const protocol = new Recorder(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectReadPipe(() => protocol, readable),
  );
  loop.close();
  await microtasks();
  assertEquals(protocol.events, ["made"]);
  assert(state.cancelled !== false);
  assert(transport.isClosing());
  assertEquals(errors.map((e) => e.message), [LEFT_OPEN]);
});

Deno.test("ReadTransport.close() with a read in flight, then the loop's close(): no timer is left behind (--sanitize-ops)", async () => {
  // connectionLost() after close() waits for the host's next timer turn
  // when a read is in flight; a loop closed before that turn must not
  // leave the timer running after it.
  const loop = new DenoEventLoop();
  const errors = collectErrors(loop);
  const { readable, state } = pushedStream();
  const protocol = new Recorder(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectReadPipe(() => protocol, readable),
  );
  transport.close();
  loop.close();
  await microtasks();
  assertEquals(protocol.events, ["made"]);
  assert(state.cancelled !== false);
  assertEquals(errors, []);
});

Deno.test("connectWritePipe() left open: the loop's close() aborts the stream, calls nothing when its write completes, and reports it", async () => {
  const loop = new DenoEventLoop();
  const errors = collectErrors(loop);
  const { writable, written, release, state } = gatedSink();
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    loop.connectWritePipe(() => protocol, writable),
  );
  transport.write(encode("sent"));
  while (written.length === 0) await loop.runUntilComplete(Promise.resolve());
  loop.close();
  release();
  await microtasks();
  assertEquals(protocol.events, ["made"]);
  assert(state.aborted !== undefined);
  assert(transport.isClosing());
  assertEquals(errors.map((e) => e.message), [LEFT_OPEN]);
});

/** The loop's report of one transport left open when it closed. */
const LEFT_OPEN =
  "The event loop was closed with 1 open transport and 0 servers still open: close them before closing the loop";

Deno.test("connectReadPipe() counts its read in flight in the proactor's pending work", async () => {
  const loop = new DenoEventLoop();
  const proactor = new DenoProactor(loop);
  const { readable, push } = pushedStream();
  const protocol = new Recorder(loop);
  const [transport] = await loop.runUntilComplete(
    connectReadPipe({ loop, proactor }, () => protocol, readable),
  );
  assertEquals(proactor.pending, 1);
  push("a");
  while (protocol.events.length < 2) {
    await loop.runUntilComplete(Promise.resolve());
  }
  assertEquals(proactor.pending, 1); // the next read
  transport.close();
  await loop.runUntilComplete(protocol.lost);
  assertEquals(proactor.pending, 0);
  loop.close();
});

Deno.test("connectWritePipe() counts its writes, its close and the stream's end in the proactor's pending work", async () => {
  const loop = new DenoEventLoop();
  const proactor = new DenoProactor(loop);
  const { writable, written, release } = gatedSink();
  const protocol = new Writer(loop);
  const [transport] = await loop.runUntilComplete(
    connectWritePipe({ loop, proactor }, () => protocol, writable),
  );
  // The stream's end is watched while it is open.
  assertEquals(proactor.pending, 1);
  transport.write(encode("x"));
  assertEquals(proactor.pending, 2);
  while (written.length === 0) await loop.runUntilComplete(Promise.resolve());
  transport.close();
  release();
  await loop.runUntilComplete(protocol.lost);
  assertEquals(proactor.pending, 0);
  loop.close();
});

Deno.test("connectWritePipe() closes the transport when its future is cancelled before it is done, as asyncio does", async () => {
  const loop = new DenoEventLoop();
  const { writable, state } = gatedSink();
  const protocol = new Writer(loop);
  const future = loop.connectWritePipe(() => protocol, writable);
  future.cancel();
  await loop.runUntilComplete(protocol.lost);
  assertEquals(protocol.events, ["made", "lost"]);
  assert(state.closed);
  loop.close();
});

/** One turn of the host, for what a pipe settles asynchronously. */
function sleepTurn(loop: DenoEventLoop): Promise<void> {
  return new Promise((resolve) => loop.callLater(0.01, resolve));
}
