// Real-socket tests of openConnection() and startServer(), on 127.0.0.1.

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
} from "@std/assert";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import {
  openConnection,
  openUnixConnection,
} from "../../streams/open_connection.ts";
import { startServer, startUnixServer } from "../../streams/start_server.ts";
import { StreamReader } from "../../streams/stream_reader.ts";
import { StreamReaderProtocol } from "../../streams/stream_reader_protocol.ts";
import type { StreamWriter } from "../../streams/stream_writer.ts";
import { CancelledError, LimitOverrunError } from "../../futures/errors.ts";
import type { ExceptionContext, Server } from "../../loop/event_loop.ts";
import { sleep } from "../../tasks/sleep.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import type { Coroutine } from "../../tasks/task.ts";
import { bytes, text, within } from "./_io_helpers.ts";

/** Runs `fn` in a task on `loop`, with the real-time guard of within(). */
function inTask<T>(loop: DenoEventLoop, fn: () => Promise<T>): Promise<T> {
  return within(loop, loop.createTask(fn));
}

function portOf(server: Server): number {
  return (server.addresses()[0] as Deno.NetAddr).port;
}

async function echoLines(reader: StreamReader, writer: StreamWriter) {
  for await (const line of reader) {
    writer.write(line);
    await writer.drain();
  }
  writer.close();
}

Deno.test("openConnection() and startServer() exchange lines over TCP", async () => {
  const loop = new DenoEventLoop();
  const reply = await inTask(loop, async () => {
    const server = await startServer(echoLines, "127.0.0.1", 0, { loop });
    const [reader, writer] = await openConnection(
      "127.0.0.1",
      portOf(server),
      { loop },
    );
    const got: string[] = [];
    for (const word of ["alpha", "beta", "gamma"]) {
      writer.write(bytes(`${word}\n`));
      await writer.drain();
      got.push(text(await reader.readline()));
    }
    writer.close();
    await writer.waitClosed();
    server.close();
    await server.waitClosed();
    return got;
  });
  assertEquals(reply, ["alpha\n", "beta\n", "gamma\n"]);
  loop.close();
});

Deno.test("startServer() accepts a generator function as the client callback", async () => {
  const loop = new DenoEventLoop();
  function* greet(reader: StreamReader, writer: StreamWriter): Coroutine<void> {
    const name = yield* reader.readuntil(bytes("!"));
    writer.write(bytes(`hello ${text(name)}`));
    yield* writer.drain();
    writer.close();
  }
  const reply = await inTask(loop, async () => {
    const server = await startServer(greet, "127.0.0.1", 0, { loop });
    const [reader, writer] = await openConnection(
      "127.0.0.1",
      portOf(server),
      { loop },
    );
    writer.write(bytes("tulip!"));
    const all = text(await reader.read());
    writer.close();
    await writer.waitClosed();
    server.close();
    await server.waitClosed();
    return all;
  });
  assertEquals(reply, "hello tulip!");
  loop.close();
});

Deno.test("openConnection() streams a megabyte each way with drain()", async () => {
  const loop = new DenoEventLoop();
  const size = 1 << 20;
  const [sent, received] = await inTask(loop, async () => {
    const server = await startServer(
      async (reader, writer) => {
        // Echo in blocks until the client half-closes.
        while (true) {
          const block = await reader.read(65536);
          if (block.length === 0) break;
          writer.write(block);
          await writer.drain();
        }
        writer.close();
      },
      "127.0.0.1",
      0,
      { loop },
    );
    const [reader, writer] = await openConnection(
      "127.0.0.1",
      portOf(server),
      { loop },
    );
    const payload = new Uint8Array(size);
    for (let i = 0; i < size; i++) payload[i] = i % 251;
    const sending = loop.createTask(async () => {
      for (let at = 0; at < size; at += 8192) {
        writer.write(payload.subarray(at, at + 8192));
        await writer.drain();
      }
      writer.writeEof();
    });
    const back = await reader.read();
    await sending;
    writer.close();
    await writer.waitClosed();
    server.close();
    await server.waitClosed();
    return [payload, back];
  });
  assertEquals(received.length, size);
  assertEquals(received, sent);
  loop.close();
});

Deno.test("openConnection() gives Web stream views over a real connection", async () => {
  const loop = new DenoEventLoop();
  const reply = await inTask(loop, async () => {
    const server = await startServer(
      async (reader, writer) => {
        // Upper-case everything, through Web streams, until EOF.
        await reader.readable
          .pipeThrough(new TextDecoderStream())
          .pipeThrough(
            new TransformStream<string, string>({
              transform: (s, c) => c.enqueue(s.toUpperCase()),
            }),
          )
          .pipeThrough(new TextEncoderStream())
          .pipeTo(writer.writable);
        writer.close();
      },
      "127.0.0.1",
      0,
      { loop },
    );
    const [reader, writer] = await openConnection(
      "127.0.0.1",
      portOf(server),
      { loop },
    );
    const sending = ReadableStream.from(["stream ", "views ", "work"])
      .pipeThrough(new TextEncoderStream())
      .pipeTo(writer.writable);
    const all = await new Response(reader.readable).text();
    await sending;
    writer.close();
    await writer.waitClosed();
    server.close();
    await server.waitClosed();
    return all;
  });
  assertEquals(reply, "STREAM VIEWS WORK");
  loop.close();
});

Deno.test("openConnection() reports the socket addresses through the writer", async () => {
  const loop = new DenoEventLoop();
  const [client, seenByServer] = await inTask(loop, async () => {
    const peer = loop.createFuture<unknown>();
    const server = await startServer(
      (_r, w) => {
        peer.setResult(w.getExtraInfo("peername"));
        w.close();
      },
      "127.0.0.1",
      0,
      { loop },
    );
    const [, writer] = await openConnection("127.0.0.1", portOf(server), {
      loop,
    });
    const seen = await peer;
    const sockname = writer.getExtraInfo("sockname") as Deno.NetAddr;
    assertEquals(
      (writer.getExtraInfo("peername") as Deno.NetAddr).port,
      portOf(server),
    );
    writer.close();
    await writer.waitClosed();
    server.close();
    await server.waitClosed();
    return [sockname, seen as Deno.NetAddr];
  });
  assertEquals(seenByServer.port, client.port);
  assertEquals(client.hostname, "127.0.0.1");
  loop.close();
});

Deno.test("openConnection() passes limit to the reader", async () => {
  const loop = new DenoEventLoop();
  const err = await inTask(loop, async () => {
    const server = await startServer(
      (_r, w) => {
        w.write(bytes("0123456789\n"));
        w.close();
      },
      "127.0.0.1",
      0,
      { loop },
    );
    const [reader, writer] = await openConnection(
      "127.0.0.1",
      portOf(server),
      { loop, limit: 4 },
    );
    assertEquals(reader.limit, 4);
    let caught: unknown;
    try {
      await reader.readline();
    } catch (e) {
      caught = e;
    }
    writer.close();
    await writer.waitClosed();
    server.close();
    await server.waitClosed();
    return caught;
  });
  assertInstanceOf(err, LimitOverrunError);
  loop.close();
});

Deno.test("a peer that never sends the separator: readline() and readuntil() stop at the limit, and their errors say what to do", async () => {
  const loop = new DenoEventLoop();
  const [until, line, after] = await inTask(loop, async () => {
    // 100 KB without a newline, then one short line.
    const server = await startServer(
      async (_r, w) => {
        w.write(new Uint8Array(100_000).fill(65));
        w.write(bytes("\nok\n"));
        await w.drain();
        w.close();
      },
      "127.0.0.1",
      0,
      { loop },
    );
    const [reader, writer] = await openConnection(
      "127.0.0.1",
      portOf(server),
      { loop, limit: 1024 },
    );
    const caught: LimitOverrunError[] = [];
    try {
      await reader.readuntil(bytes("\r\n"));
    } catch (e) {
      caught.push(e as LimitOverrunError);
    }
    try {
      await reader.readline();
    } catch (e) {
      caught.push(e as LimitOverrunError);
    }
    // The over-long line is dropped: reading goes on after it.
    let rest = "";
    for (;;) {
      try {
        rest = text(await reader.readline());
        break;
      } catch (e) {
        // The rest of the long line, dropped a limit at a time.
        assertInstanceOf(e, LimitOverrunError);
      }
    }
    writer.close();
    await writer.waitClosed();
    server.close();
    await server.waitClosed();
    return [caught[0], caught[1], rest] as const;
  });
  assertInstanceOf(until, LimitOverrunError);
  assertEquals(
    until.message,
    "Cannot read until separator: the separator is not found within limit=1024 bytes; the bytes stay buffered: read error.consumed of them to get past them, or make the reader with a larger limit",
  );
  assertInstanceOf(line, LimitOverrunError);
  assertEquals(
    line.message,
    "Cannot read a line: no \\n within limit=1024 bytes; what was buffered of the line is dropped and reading can go on; for longer lines make the reader with a larger limit",
  );
  assertEquals(after, "ok\n");
  loop.close();
});

Deno.test("waitClosed() cancelled by a timeout leaves the other waiters and later calls to see the close", async () => {
  const loop = new DenoEventLoop();
  const outcome = await inTask(loop, async () => {
    const server = await startServer(
      async (r, w) => {
        await r.read();
        w.close();
      },
      "127.0.0.1",
      0,
      { loop },
    );
    const [, writer] = await openConnection(
      "127.0.0.1",
      portOf(server),
      { loop },
    );
    const other = writer.waitClosed();
    const first = writer.waitClosed();
    first.cancel();
    writer.close();
    const seen: string[] = [];
    for (const waiter of [other, writer.waitClosed()]) {
      try {
        await waiter;
        seen.push("closed");
      } catch (e) {
        seen.push((e as Error).name);
      }
    }
    server.close();
    await server.waitClosed();
    return seen;
  });
  assertEquals(outcome, ["closed", "closed"]);
  loop.close();
});

Deno.test("openConnection() fails when nothing listens", async () => {
  const loop = new DenoEventLoop();
  // Find a free port by listening and closing at once.
  const port = await inTask(loop, async () => {
    const server = await startServer(
      async (r, w) => {
        await r.read();
        w.close();
      },
      "127.0.0.1",
      0,
      { loop },
    );
    const p = portOf(server);
    server.close();
    await server.waitClosed();
    return p;
  });
  await assertRejects(() =>
    within(loop, openConnection("127.0.0.1", port, { loop }))
  );
  loop.close();
});

Deno.test("openConnection() can be cancelled", async () => {
  const loop = new DenoEventLoop();
  const outcome = await inTask(loop, async () => {
    const server = await startServer(
      async (r, w) => {
        await r.read();
        w.close();
      },
      "127.0.0.1",
      0,
      { loop },
    );
    const connecting = openConnection("127.0.0.1", portOf(server), { loop });
    connecting.cancel();
    let result = "connected";
    try {
      await connecting;
    } catch (e) {
      result = e instanceof CancelledError ? "cancelled" : String(e);
    }
    server.close();
    await server.waitClosed();
    return result;
  });
  assertEquals(outcome, "cancelled");
  loop.close();
});

Deno.test("startServer() serves several clients at once", async () => {
  const loop = new DenoEventLoop();
  const replies = await inTask(loop, async () => {
    const server = await startServer(echoLines, "127.0.0.1", 0, { loop });
    const port = portOf(server);
    const clients = await Promise.all(
      [0, 1, 2, 3].map(async (i) => {
        const [reader, writer] = await openConnection("127.0.0.1", port, {
          loop,
        });
        writer.write(bytes(`client ${i}\n`));
        const line = text(await reader.readline());
        writer.close();
        await writer.waitClosed();
        return line;
      }),
    );
    server.close();
    await server.waitClosed();
    return clients;
  });
  assertEquals(replies, [0, 1, 2, 3].map((i) => `client ${i}\n`));
  assert(replies.length === 4);
  loop.close();
});

Deno.test("a write-and-drain loop ends with the connection's error once the server hangs up (asyncio's test_drain_raises)", async () => {
  // As in asyncio's test, the server is not tulip: it accepts and closes.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const hangUp = listener.accept().then((conn) => conn.close());
  const loop = new DenoEventLoop();
  const err = await inTask(loop, async () => {
    const [, writer] = await openConnection(
      "127.0.0.1",
      (listener.addr as Deno.NetAddr).port,
      { loop },
    );
    let error: unknown;
    try {
      while (true) {
        writer.write(bytes("foo\n"));
        await writer.drain();
      }
    } catch (e) {
      error = e;
    }
    writer.close();
    return error;
  });
  await hangUp;
  listener.close();
  assert(
    err instanceof Deno.errors.ConnectionReset ||
      err instanceof Deno.errors.BrokenPipe ||
      err instanceof Deno.errors.ConnectionAborted,
    `expected the connection's error, received ${err}`,
  );
  loop.close();
});

/**
 * Runs `fn` in a task on a new loop, and checks that nothing reached the
 * loop's exception handler, as asyncio's stream tests do.
 */
async function quietly<T>(
  fn: (loop: DenoEventLoop) => Promise<T>,
): Promise<T> {
  const loop = new DenoEventLoop();
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, context) => errors.push(context));
  let result: T;
  try {
    result = await inTask(loop, () => fn(loop));
  } finally {
    loop.close();
  }
  assertEquals(errors, []);
  return result;
}

Deno.test("the reader of a writer closed and waited for is at its end (asyncio's test_eof_feed_when_closing_writer)", async () => {
  const [atEof, rest] = await quietly(async (loop) => {
    const server = await startServer(echoLines, "127.0.0.1", 0, { loop });
    const [reader, writer] = await openConnection(
      "127.0.0.1",
      portOf(server),
      { loop },
    );
    writer.close();
    await writer.waitClosed();
    const atEof = reader.atEof();
    const rest = await reader.read();
    server.close();
    await server.waitClosed();
    return [atEof, rest.length];
  });
  assertEquals([atEof, rest], [true, 0]);
});

Deno.test("a connection lost with an error fails the reader's next read with it, and closing after is quiet (asyncio's test_open_connection_error)", async () => {
  const boom = new RangeError("boom");
  const err = await quietly(async (loop) => {
    const server = await startServer(echoLines, "127.0.0.1", 0, { loop });
    const [reader, writer] = await openConnection(
      "127.0.0.1",
      portOf(server),
      { loop },
    );
    writer.transport.getProtocol().connectionLost(boom);
    const err = await reader.read().then(() => null, (e) => e);
    writer.close();
    await sleep(0.01);
    server.close();
    await server.waitClosed();
    return err;
  });
  assertStrictEquals(err, boom);
});

Deno.test("Server.closeClients() after close() ends the stream handlers' connections, so waitClosed() is done (asyncio 3.13's test_close_clients)", async () => {
  const done = await quietly(async (loop) => {
    const server = await startServer(
      async (reader, writer) => {
        try {
          await reader.read();
        } finally {
          writer.close();
          await writer.waitClosed();
        }
      },
      "127.0.0.1",
      0,
      { loop },
    );
    const [reader, writer] = await openConnection(
      "127.0.0.1",
      portOf(server),
      { loop },
    );
    const closed = loop.createTask(() => server.waitClosed());
    await sleep(0.05);
    const before = closed.done();
    server.close();
    server.closeClients();
    await sleep(0.1);
    const after = closed.done();
    // The client sees the server's end of the stream.
    const rest = await reader.read();
    writer.close();
    await writer.waitClosed();
    return [before, after, rest.length];
  });
  assertEquals(done, [false, true, 0]);
});

Deno.test("Server.abortClients() after close() ends a connection whose writes are stuck, so waitClosed() is done (asyncio 3.13's test_abort_clients)", async () => {
  const done = await quietly(async (loop) => {
    const served = loop.createFuture<StreamWriter>();
    const server = await startServer(
      async (_reader, writer) => {
        served.setResult(writer);
        await writer.waitClosed();
      },
      "127.0.0.1",
      0,
      { loop },
    );
    const [, writer] = await openConnection(
      "127.0.0.1",
      portOf(server),
      { loop, limit: 4096 },
    );
    const serverWriter = await served;
    // More than twice the client's limit: its reader pauses the transport.
    for (let i = 0; i < 3; i++) serverWriter.write(new Uint8Array(4096));
    while (writer.transport.isReading()) await sleep(0.001);
    // Then fill the kernel's buffers until the transport buffers too.
    for (let i = 0; i < 64; i++) {
      serverWriter.write(new Uint8Array(1 << 20));
      if (serverWriter.transport.getWriteBufferSize() > 0) break;
    }
    const buffered = serverWriter.transport.getWriteBufferSize() > 0;
    const closed = loop.createTask(() => server.waitClosed());
    await sleep(0);
    const before = closed.done();
    server.close();
    server.abortClients();
    // asyncio's connection_lost is two turns away; here the aborted
    // socket's operations in flight settle first, within milliseconds.
    await waitFor(closed, 5);
    writer.close();
    await writer.waitClosed();
    return [buffered, before];
  });
  assertEquals(done, [true, false]);
});

Deno.test("a StreamReaderProtocol on a read pipe reads it all, quietly, though the pipe is paused at a limit of 1 (asyncio's test_read_all_from_pipe_reader)", async () => {
  const data = await quietly(async (loop) => {
    const reader = new StreamReader({ loop, limit: 1 });
    const protocol = new StreamReaderProtocol(reader, undefined, { loop });
    const pipe = ReadableStream.from([bytes("data"), bytes("more")]);
    await loop.connectReadPipe(() => protocol, pipe);
    await sleep(0.01);
    return text(await reader.read(-1));
  });
  assertEquals(data, "datamore");
});

Deno.test("startServer() takes a list of hosts, as loop.createServer() does", async () => {
  const loop = new DenoEventLoop();
  const reply = await inTask(loop, async () => {
    const server = await startServer(echoLines, ["127.0.0.1"], 0, { loop });
    const [reader, writer] = await openConnection(
      "127.0.0.1",
      portOf(server),
      { loop },
    );
    writer.write(bytes("listed\n"));
    const line = text(await reader.readline());
    writer.close();
    await writer.waitClosed();
    server.close();
    await server.waitClosed();
    return line;
  });
  assertEquals(reply, "listed\n");
  loop.close();
});

Deno.test("openUnixConnection() and startUnixServer() exchange lines over a Unix socket", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tulip-streams-" });
  const path = `${dir}/echo.sock`;
  const loop = new DenoEventLoop();
  try {
    const outcome = await inTask(loop, async () => {
      const server = await startUnixServer(echoLines, path, {
        loop,
        limit: 16,
      });
      const [reader, writer] = await openUnixConnection(path, {
        loop,
        limit: 4,
      });
      writer.write(bytes("one\ntwo\nlong line\n"));
      const got = [
        text(await reader.readline()),
        text(await reader.readline()),
      ];
      // The client's limit is 4: the third line overruns it.
      const overrun = await reader.readline().then(
        () => "read",
        (e) => e instanceof LimitOverrunError ? "overrun" : String(e),
      );
      writer.close();
      await writer.waitClosed();
      server.close();
      await server.waitClosed();
      return [...got, overrun];
    });
    assertEquals(outcome, ["one\n", "two\n", "overrun"]);
  } finally {
    loop.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openUnixConnection() fails when nothing listens at the path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tulip-streams-" });
  const loop = new DenoEventLoop();
  try {
    await assertRejects(() =>
      within(loop, openUnixConnection(`${dir}/none.sock`, { loop }))
    );
  } finally {
    loop.close();
    await Deno.remove(dir, { recursive: true });
  }
});
