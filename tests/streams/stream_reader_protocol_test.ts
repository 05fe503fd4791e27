import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { StreamReader } from "../../streams/stream_reader.ts";
import {
  type ClientConnectedCallback,
  StreamReaderProtocol,
} from "../../streams/stream_reader_protocol.ts";
import { StreamWriter } from "../../streams/stream_writer.ts";
import { Protocol } from "../../protocols/protocol.ts";
import { PeerLog } from "../../protocols/peer_log.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import type { Coroutine } from "../../tasks/task.ts";
import { gather } from "../../tasks/gather.ts";
import { sleep } from "../../tasks/sleep.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import { TimeoutError } from "../../futures/errors.ts";
import { currentTask } from "../../tasks/mod.ts";
import { transportPair } from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { bytes, text } from "../_every_split.ts";
import { stillAlive } from "../_gc.ts";

/** Serves `onClient` on one end; returns the client's reader and writer. */
function serve(onClient: ClientConnectedCallback) {
  const loop = new VirtualTimeLoop();
  const server = new StreamReaderProtocol(
    new StreamReader({ loop }),
    onClient,
    { loop },
  );
  const clientReader = new StreamReader({ loop });
  const client = new StreamReaderProtocol(clientReader, undefined, { loop });
  const [serverTransport, clientTransport] = transportPair(server, client, {
    loop,
    chunkSize: [1, 4, 2],
  });
  const clientWriter = new StreamWriter(clientTransport, client, {
    reader: clientReader,
    loop,
  });
  return { loop, server, serverTransport, clientReader, clientWriter };
}

async function exchange(onClient: ClientConnectedCallback): Promise<string> {
  const { loop, clientReader, clientWriter } = serve(onClient);
  clientWriter.write(bytes("hello\nworld\n"));
  clientWriter.writeEof();
  const reply = text(await loop.runUntilComplete(clientReader.read()));
  loop.close();
  return reply;
}

Deno.test("StreamReaderProtocol runs an async clientConnected callback in a task", async () => {
  const reply = await exchange(async (reader, writer) => {
    for await (const line of reader) {
      writer.write(bytes(text(line).toUpperCase()));
      await writer.drain();
    }
    writer.close();
  });
  assertEquals(reply, "HELLO\nWORLD\n");
});

Deno.test("StreamReaderProtocol runs a generator clientConnected callback in a task", async () => {
  const reply = await exchange(
    function* (reader, writer): Coroutine<void> {
      while (true) {
        const line = yield* reader.readline();
        if (line.length === 0) break;
        yield* sleep(1);
        writer.write(line.toReversed());
      }
      writer.close();
    },
  );
  assertEquals(reply, "\nolleh\ndlrow");
});

Deno.test("StreamReaderProtocol runs a plain clientConnected callback", async () => {
  const reply = await exchange((reader, writer) => {
    reader.read().addDoneCallback((f) => {
      writer.write(bytes(`${f.result().length} bytes`));
      writer.close();
    });
  });
  assertEquals(reply, "12 bytes");
});

Deno.test("StreamReaderProtocol reports a failing callback and closes the connection", async () => {
  const { loop, clientReader } = serve(async () => {
    await sleep(1);
    throw new Error("handler broke");
  });
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, ctx) => contexts.push(ctx));
  assertEquals(
    await loop.runUntilComplete(clientReader.read()),
    new Uint8Array(),
  );
  assertEquals(contexts.length, 1);
  assertEquals(
    contexts[0].message,
    "Unhandled error in the clientConnected callback",
  );
  assertEquals((contexts[0].exception as Error).message, "handler broke");
  loop.close();
});

Deno.test("StreamReaderProtocol reports failing callbacks within what the peers sent plus PeerLog's reserve", async () => {
  // Each peer sends one byte and hangs up: the callback's readexactly()
  // fails every time. Were each failure logged whole, a client could make
  // the server log a thousand times what it sent.
  const loop = new VirtualTimeLoop();
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, ctx) => contexts.push(ctx));
  const peers = 200;
  for (let i = 0; i < peers; i++) {
    const server = new StreamReaderProtocol(
      new StreamReader({ loop }),
      async (reader) => {
        await reader.readexactly(100);
      },
      { loop },
    );
    const [, clientTransport] = transportPair(server, new Protocol(), {
      loop,
    });
    loop.callSoon(() => {
      clientTransport.write(bytes("x"));
      clientTransport.close();
    });
  }
  await loop.advance(1);
  assert(contexts.length > 0);
  assertInstanceOf(contexts[0].exception, Error);
  const logged = contexts.reduce((sum, c) => sum + PeerLog.sizeOf(c), 0);
  assert(
    logged <= PeerLog.RESERVE + peers,
    `${logged} > ${PeerLog.RESERVE + peers}`,
  );
  loop.close();
});

Deno.test("StreamReaderProtocol closes the connection, quietly, when the callback's task is cancelled (asyncio's test_unhandled_cancel)", async () => {
  const { loop, clientReader } = serve(async (_reader, writer) => {
    writer.write(bytes("hello"));
    await sleep(1);
    currentTask(loop)!.cancel();
    await sleep(1);
  });
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, ctx) => contexts.push(ctx));
  const reply = await loop.runUntilComplete(clientReader.read(), 10);
  assertEquals(text(reply), "hello");
  assertEquals(contexts, []);
  loop.close();
});

Deno.test("StreamReaderProtocol gives the callback's writer the connection's transport", async () => {
  const seen: StreamWriter[] = [];
  const { loop, server, serverTransport, clientWriter } = serve((_r, w) => {
    seen.push(w);
  });
  await loop.advance(1);
  assertEquals(seen.length, 1);
  assertStrictEquals(server.streamWriter, seen[0]);
  assertStrictEquals(seen[0].transport, serverTransport);
  clientWriter.close();
  await loop.advance(1);
  // Half-open: the server may still answer, until it closes too.
  assertStrictEquals(server.streamWriter, seen[0]);
  seen[0].close();
  await loop.advance(1);
  assertEquals(server.streamWriter, null); // forgotten once lost
  loop.close();
});

Deno.test("StreamReaderProtocol passes a connection error to the reader and waitClosed()", async () => {
  const loop = new VirtualTimeLoop();
  const reader = new StreamReader({ loop });
  const protocol = new StreamReaderProtocol(reader, undefined, { loop });
  const [t] = transportPair(protocol, new Protocol(), { loop, resetAfter: 0 });
  const writer = new StreamWriter(t, protocol, { reader, loop });
  const pending = reader.readline();
  t.write(bytes("x"));
  const err = await assertRejects(() => loop.runUntilComplete(pending));
  assertInstanceOf(err, Deno.errors.ConnectionReset);
  await assertRejects(() => loop.runUntilComplete(writer.waitClosed()));
  loop.close();
});

Deno.test("StreamReaderProtocol keeps the connection half-open at EOF", () => {
  const loop = new VirtualTimeLoop();
  const reader = new StreamReader({ loop });
  const protocol = new StreamReaderProtocol(reader, undefined, { loop });
  protocol.connectionMade({
    canWriteEof: () => true,
    pauseReading() {},
    resumeReading() {},
  } as never);
  assertEquals(protocol.eofReceived(), true);
  assert(reader.atEof());
  const tls = new StreamReaderProtocol(new StreamReader({ loop }), undefined, {
    loop,
  });
  tls.connectionMade({ canWriteEof: () => false } as never);
  assertEquals(tls.eofReceived(), false);
  // A read pipe has no write side, nor canWriteEof().
  const pipe = new StreamReaderProtocol(new StreamReader({ loop }), undefined, {
    loop,
  });
  pipe.connectionMade({ pauseReading() {}, resumeReading() {} } as never);
  assertEquals(pipe.eofReceived(), false);
  loop.close();
});

/** A protocol on a new virtual loop, for its drain waits. */
function drainingProtocol() {
  const loop = new VirtualTimeLoop();
  const reader = new StreamReader({ loop });
  return {
    loop,
    protocol: new StreamReaderProtocol(reader, undefined, { loop }),
  };
}

Deno.test("StreamReaderProtocol drainHelper() waits between pauseWriting and resumeWriting", async () => {
  const { loop, protocol } = drainingProtocol();
  assert(protocol.drainHelper().done());
  protocol.pauseWriting();
  const a = protocol.drainHelper();
  const b = protocol.drainHelper();
  b.cancel();
  assert(!a.done());
  protocol.resumeWriting();
  assert(a.done());
  await loop.runUntilComplete(a);
  protocol.pauseWriting();
  const c = protocol.drainHelper();
  protocol.connectionLost(new Error("gone"));
  await assertRejects(() => loop.runUntilComplete(c), Error, "gone");
  const d = protocol.drainHelper();
  assertInstanceOf(
    await assertRejects(() => loop.runUntilComplete(d)),
    Deno.errors.ConnectionReset,
  );
  loop.close();
});

Deno.test("StreamReaderProtocol resumeWriting() wakes every waiting drain, not just one (asyncio's test_multiple_drain)", async () => {
  const { loop, protocol } = drainingProtocol();
  protocol.pauseWriting();
  let drained = 0;
  const drainers = Array.from(
    { length: 10 },
    () =>
      loop.createTask(async () => {
        await protocol.drainHelper();
        drained++;
      }),
  );
  loop.callLater(0.1, () => protocol.resumeWriting());
  await loop.runUntilComplete(gather(drainers));
  assertEquals(drained, 10);
  loop.close();
});

Deno.test("StreamReaderProtocol lets go of drain waits cancelled while paused (waitFor(writer.drain(), t) retried against a peer that never reads)", async () => {
  const { loop, protocol } = drainingProtocol();
  protocol.pauseWriting();
  const kept = protocol.drainHelper();
  const refs: WeakRef<object>[] = [];
  await loop.runUntilComplete(loop.createTask(async () => {
    for (let i = 0; i < 1000; i++) {
      const waiter = protocol.drainHelper();
      refs.push(new WeakRef(waiter));
      await assertRejects(() => waitFor(waiter, 1), TimeoutError);
    }
  }));
  assertEquals(await stillAlive(refs), 0);
  protocol.resumeWriting();
  assert(kept.done());
  await loop.runUntilComplete(kept);
  loop.close();
});

Deno.test("StreamReaderProtocol rejects a callback that is not a function", () => {
  assertThrows(
    () => new StreamReaderProtocol(new StreamReader(), 5 as never),
    TypeError,
  );
});
