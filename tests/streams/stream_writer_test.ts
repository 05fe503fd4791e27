import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { StreamReader } from "../../streams/stream_reader.ts";
import { StreamReaderProtocol } from "../../streams/stream_reader_protocol.ts";
import { StreamWriter } from "../../streams/stream_writer.ts";
import { InvalidStateError } from "../../futures/errors.ts";
import {
  transportPair,
  type TransportPairOptions,
} from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { bytes, text } from "../_every_split.ts";
import { sleep } from "../../tasks/sleep.ts";

/** Two stream ends joined in memory: a client writer and a server reader. */
function setup(options?: TransportPairOptions) {
  const loop = new VirtualTimeLoop();
  const serverReader = new StreamReader({ loop });
  const server = new StreamReaderProtocol(serverReader, undefined, { loop });
  const clientReader = new StreamReader({ loop });
  const client = new StreamReaderProtocol(clientReader, undefined, { loop });
  const [serverTransport, clientTransport] = transportPair(server, client, {
    loop,
    ...options,
  });
  const writer = new StreamWriter(clientTransport, client, {
    reader: clientReader,
    loop,
  });
  const serverWriter = new StreamWriter(serverTransport, server, {
    reader: serverReader,
    loop,
  });
  return {
    loop,
    serverReader,
    serverWriter,
    clientReader,
    writer,
    serverTransport,
    clientTransport,
  };
}

function run<T>(loop: VirtualTimeLoop, fn: () => Promise<T>): Promise<T> {
  return loop.runUntilComplete(loop.createTask(fn));
}

Deno.test("StreamWriter writes, half-closes and reports its transport", async () => {
  const { loop, writer, serverReader, clientTransport } = setup();
  assertStrictEquals(writer.transport, clientTransport);
  writer.write(bytes("a"));
  writer.writelines([bytes("b"), bytes("c")]);
  assert(writer.canWriteEof());
  writer.writeEof();
  assertFalse(writer.isClosing());
  assertEquals(text(await loop.runUntilComplete(serverReader.read())), "abc");
  assertThrows(() => writer.write(bytes("x")), InvalidStateError);
  assertThrows(() => writer.write("x" as never), TypeError);
  loop.close();
});

Deno.test("StreamWriter.close() and waitClosed() end the connection", async () => {
  const { loop, writer, serverReader } = setup();
  writer.write(bytes("last"));
  writer.close();
  assert(writer.isClosing());
  await loop.runUntilComplete(writer.waitClosed());
  assertEquals(text(await loop.runUntilComplete(serverReader.read())), "last");
  assert(serverReader.atEof());
  loop.close();
});

Deno.test("StreamWriter.waitClosed() fails with the connection's error", async () => {
  const { loop, writer, clientReader } = setup({ resetAfter: 1 });
  writer.write(bytes("xy"));
  const err = await assertRejects(() =>
    loop.runUntilComplete(writer.waitClosed())
  );
  assertInstanceOf(err, Deno.errors.ConnectionReset);
  assertStrictEquals(clientReader.exception(), err);
  loop.close();
});

Deno.test("StreamWriter.waitClosed(): a waiter cancelled (a timeout) leaves the others, and later calls, to see the connection's error", async () => {
  const { loop, writer } = setup({ resetAfter: 1 });
  const cancelled = writer.waitClosed();
  const kept = writer.waitClosed();
  cancelled.cancel();
  writer.write(bytes("xy"));
  await assertRejects(
    () => loop.runUntilComplete(kept),
    Deno.errors.ConnectionReset,
  );
  await assertRejects(
    () => loop.runUntilComplete(writer.waitClosed()),
    Deno.errors.ConnectionReset,
  );
  loop.close();
});

Deno.test("StreamWriter.getExtraInfo() asks the transport", () => {
  const { loop, writer } = setup();
  assertEquals(writer.getExtraInfo("peername"), {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 40001,
  });
  assertEquals(writer.getExtraInfo("nothing", 7), 7);
  loop.close();
});

// ---- drain ----

Deno.test("StreamWriter.drain() is done at once when the buffer has room", async () => {
  const { loop, writer } = setup();
  writer.write(bytes("small"));
  const drained = writer.drain();
  assert(drained.done());
  await loop.runUntilComplete(drained);
  loop.close();
});

Deno.test("StreamWriter.drain() waits under backpressure until the peer reads", async () => {
  const { loop, writer, serverReader, clientTransport, serverTransport } =
    setup({
      bufferSize: 0,
      chunkSize: 1024,
    });
  await loop.advance(1);
  clientTransport.setWriteBufferLimits(4096, 1024);
  serverTransport.pauseReading();
  writer.write(new Uint8Array(10_000));
  const drained = writer.drain();
  assertFalse(drained.done());
  await loop.advance(5);
  assertFalse(drained.done()); // the peer reads nothing
  serverTransport.resumeReading();
  await loop.runUntilComplete(drained);
  assert(clientTransport.getWriteBufferSize() <= 1024);
  assertEquals(
    (await loop.runUntilComplete(serverReader.readexactly(10_000))).length,
    10_000,
  );
  loop.close();
});

Deno.test("StreamWriter write-and-drain loop never lets the buffer grow past the mark", async () => {
  const { loop, writer, serverReader, clientTransport } = setup({
    bufferSize: 100,
    chunkSize: 64,
  });
  clientTransport.setWriteBufferLimits(256, 64);
  let peak = 0;
  const send = loop.createTask(async () => {
    for (let i = 0; i < 200; i++) {
      writer.write(new Uint8Array(50));
      peak = Math.max(peak, clientTransport.getWriteBufferSize());
      await writer.drain();
    }
    writer.writeEof();
  });
  const received = await loop.runUntilComplete(serverReader.read());
  await loop.runUntilComplete(send);
  assertEquals(received.length, 10_000);
  assert(peak <= 256 + 50, `peak ${peak}`);
  loop.close();
});

Deno.test("StreamWriter.drain() fails with ConnectionReset once the connection is lost", async () => {
  const { loop, writer } = setup();
  writer.close();
  await loop.runUntilComplete(writer.waitClosed());
  const err = await assertRejects(() => loop.runUntilComplete(writer.drain()));
  assertInstanceOf(err, Deno.errors.ConnectionReset);
  loop.close();
});

Deno.test("StreamWriter.drain() right after close() reports the loss", async () => {
  const { loop, writer } = setup();
  writer.close();
  const err = await assertRejects(() => loop.runUntilComplete(writer.drain()));
  assertInstanceOf(err, Deno.errors.ConnectionReset);
  loop.close();
});

Deno.test("StreamWriter.drain() fails with the reader's error", async () => {
  const { loop, writer, clientReader } = setup();
  clientReader.setException(new Error("broken"));
  await assertRejects(
    () => loop.runUntilComplete(writer.drain()),
    Error,
    "broken",
  );
  loop.close();
});

Deno.test("StreamWriter.drain() waiting when the connection is reset fails with the reset", async () => {
  const { loop, writer, clientTransport, serverTransport } = setup({
    bufferSize: 0,
  });
  await loop.advance(1);
  clientTransport.setWriteBufferLimits(10, 0);
  serverTransport.pauseReading();
  writer.write(new Uint8Array(20));
  const drained = writer.drain();
  serverTransport.abort();
  const err = await assertRejects(() => loop.runUntilComplete(drained));
  assertInstanceOf(err, Deno.errors.ConnectionReset);
  loop.close();
});

Deno.test("StreamWriter write-and-drain loop ends with the connection's error when the peer resets (asyncio's test_drain_raises)", async () => {
  const { loop, writer } = setup({ resetAfter: 100 });
  let writes = 0;
  const err = await assertRejects(() =>
    run(loop, async () => {
      while (writes < 10_000) {
        writer.write(bytes("foo\n"));
        writes++;
        await writer.drain();
        await sleep(0.001);
      }
    })
  );
  assertInstanceOf(err, Deno.errors.ConnectionReset);
  assert(writes < 10_000, "the loop never ended");
  loop.close();
});

Deno.test("StreamWriter.write() after the connection failed throws the connection's error", async () => {
  const { loop, writer, serverTransport } = setup();
  await loop.advance(1);
  serverTransport.abort();
  await loop.advance(1);
  assertThrows(() => writer.write(bytes("late")), Deno.errors.ConnectionReset);
  assertThrows(
    () => writer.writelines([bytes("late")]),
    Deno.errors.ConnectionReset,
  );
  loop.close();
});

Deno.test("StreamWriter.write() after close() still throws InvalidStateError", async () => {
  const { loop, writer } = setup();
  writer.close();
  assertThrows(() => writer.write(bytes("late")), InvalidStateError);
  await loop.runUntilComplete(writer.waitClosed());
  assertThrows(() => writer.write(bytes("late")), InvalidStateError);
  loop.close();
});

// ---- Web streams ----

Deno.test("StreamWriter.writable pipes a ReadableStream into the connection and half-closes", async () => {
  const { loop, writer, serverReader, serverWriter, clientReader } = setup({
    chunkSize: 3,
  });
  const echoed = loop.createTask(async () => {
    // The server echoes until the end of stream, then closes.
    for await (const line of serverReader) serverWriter.write(line);
    serverWriter.close();
  });
  const reply = await run(loop, async () => {
    await ReadableStream.from(["one\n", "two\n"])
      .pipeThrough(new TextEncoderStream())
      .pipeTo(writer.writable);
    return text(await clientReader.read());
  });
  await loop.runUntilComplete(echoed);
  assertEquals(reply, "one\ntwo\n");
  assertStrictEquals(writer.writable, writer.writable);
  loop.close();
});

Deno.test("StreamWriter.writable waits for drain between chunks", async () => {
  const { loop, writer, serverReader, clientTransport } = setup({
    bufferSize: 0,
    chunkSize: 10,
    delay: 0.1,
  });
  clientTransport.setWriteBufferLimits(20, 5);
  let peak = 0;
  const source = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < 30; i++) c.enqueue(new Uint8Array(15));
      c.close();
    },
  });
  const piping = loop.createTask(() =>
    source.pipeThrough(
      new TransformStream({
        transform(chunk, c) {
          peak = Math.max(peak, clientTransport.getWriteBufferSize());
          c.enqueue(chunk);
        },
      }),
    ).pipeTo(writer.writable)
  );
  const all = await loop.runUntilComplete(serverReader.read());
  await loop.runUntilComplete(piping);
  assertEquals(all.length, 450);
  assert(peak <= 20, `peak ${peak}`);
  loop.close();
});

Deno.test("StreamWriter.writable abort() aborts the transport", async () => {
  const { loop, writer, serverReader } = setup();
  await run(loop, () => writer.writable.abort(new Error("stop")));
  const err = await assertRejects(() =>
    loop.runUntilComplete(serverReader.read())
  );
  assertInstanceOf(err, Deno.errors.ConnectionReset);
  loop.close();
});

Deno.test("StreamWriter supports await using", async () => {
  const { loop, writer, serverReader } = setup();
  await run(loop, async () => {
    await using w = writer;
    w.write(bytes("bye"));
  });
  assert(writer.isClosing());
  assertEquals(text(await loop.runUntilComplete(serverReader.read())), "bye");
  loop.close();
});

// ---- Producers ----

Deno.test("StreamWriter.registerProducer() paces a push producer by the transport's water marks", async () => {
  const { loop, writer, clientTransport, serverReader } = setup({
    bufferSize: 0,
    chunkSize: 10,
    delay: 1,
  });
  clientTransport.setWriteBufferLimits(100, 20);
  const log: string[] = [];
  writer.registerProducer({
    pauseProducing: () => log.push("pause"),
    resumeProducing: () => log.push("resume"),
    stopProducing: () => log.push("stop"),
  }, true);
  writer.write(bytes("x".repeat(150)));
  assertEquals(log, ["pause"]);
  await loop.advance(14);
  assertEquals(log, ["pause", "resume"]);
  writer.unregisterProducer();
  writer.close();
  assertEquals(log, ["pause", "resume"]); // forgotten: not stopped
  assertEquals(
    (await loop.runUntilComplete(serverReader.read(-1))).length,
    150,
  );
  loop.close();
});

Deno.test("StreamWriter.registerProducer() refuses a second producer", () => {
  const { loop, writer, clientTransport } = setup();
  writer.registerProducer({ resumeProducing() {} }, false);
  assertThrows(
    () => writer.registerProducer({ resumeProducing() {} }, false),
    InvalidStateError,
  );
  clientTransport.abort();
  loop.close();
});
