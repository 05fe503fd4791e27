// Listener over a stand-in Server and in-memory connections: no sockets.

import { assert, assertEquals, assertFalse, assertRejects } from "@std/assert";
import { Connection } from "../../facade/connection.ts";
import { Listener } from "../../facade/listener.ts";
import type { Future } from "../../futures/future.ts";
import type { EventLoop, Server } from "../../loop/event_loop.ts";
import { StreamReader } from "../../streams/stream_reader.ts";
import { StreamReaderProtocol } from "../../streams/stream_reader_protocol.ts";
import { StreamWriter } from "../../streams/stream_writer.ts";
import { Queue, QueueShutDown } from "../../tasks/queue.ts";
import { transportPair } from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

/** A Server that only records being closed. */
class FakeServer implements Server {
  closed = 0;
  readonly #loop: VirtualTimeLoop;
  constructor(loop: VirtualTimeLoop) {
    this.#loop = loop;
  }
  close(): void {
    this.closed++;
  }
  waitClosed(): Future<void> {
    const f = this.#loop.createFuture<void>();
    f.setResult();
    return f;
  }
  startServing(): Future<void> {
    return this.waitClosed();
  }
  serveForever(): Future<void> {
    return this.#loop.createFuture<void>();
  }
  isServing(): boolean {
    return this.closed === 0;
  }
  addresses(): Deno.Addr[] {
    return [{ transport: "tcp", hostname: "127.0.0.1", port: 4242 }];
  }
  getLoop(): EventLoop {
    return this.#loop;
  }
  shutdown(): Future<void> {
    this.close();
    return this.waitClosed();
  }
  closeClients(): void {}
  abortClients(): void {}
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.waitClosed();
  }
}

/** A server-side Connection and the peer's reader, in memory. */
function connection(loop: VirtualTimeLoop): [Connection, StreamReader] {
  const reader = new StreamReader({ loop });
  const protocol = new StreamReaderProtocol(reader, undefined, { loop });
  const peerReader = new StreamReader({ loop });
  const peer = new StreamReaderProtocol(peerReader, undefined, { loop });
  const [transport] = transportPair(protocol, peer, { loop });
  const writer = new StreamWriter(transport, protocol, { reader, loop });
  return [new Connection(reader, writer), peerReader];
}

function setup(): [
  VirtualTimeLoop,
  FakeServer,
  Queue<Connection>,
  Listener,
] {
  const loop = new VirtualTimeLoop();
  const server = new FakeServer(loop);
  const queue = new Queue<Connection>(10, { loop });
  return [loop, server, queue, new Listener(server, queue)];
}

Deno.test("Listener.accept() takes queued connections in order, and waits for the next", async () => {
  const [loop, , queue, listener] = setup();
  const [a] = connection(loop);
  const [b] = connection(loop);
  queue.putNowait(a);
  assertEquals(listener.waiting(), 1);
  assertEquals(await loop.runUntilComplete(listener.accept()), a);
  const next = listener.accept();
  assertFalse(next.done());
  loop.callSoon(() => queue.putNowait(b));
  assertEquals(await loop.runUntilComplete(next), b);
  a.close();
  b.close();
  await loop.runUntilComplete(a.waitClosed());
  await loop.runUntilComplete(b.waitClosed());
  loop.close();
});

Deno.test("Listener.close() closes the server and the waiting connections, and fails accept()", async () => {
  const [loop, server, queue, listener] = setup();
  const [waitingConn, peer] = connection(loop);
  queue.putNowait(waitingConn);
  listener.close();
  listener.close();
  assertEquals(server.closed, 1);
  assert(listener.isClosing());
  assertEquals(listener.waiting(), 0);
  assert(waitingConn.isClosing());
  // The peer of the dropped connection reads the end of the stream.
  assertEquals((await loop.runUntilComplete(peer.read())).length, 0);
  await assertRejects(
    () => loop.runUntilComplete(listener.accept()),
    QueueShutDown,
  );
  await loop.runUntilComplete(waitingConn.waitClosed());
  loop.close();
});

Deno.test("Listener.close() fails an accept() that is waiting", async () => {
  const [loop, , , listener] = setup();
  const waiting = listener.accept();
  loop.callSoon(() => listener.close());
  await assertRejects(() => loop.runUntilComplete(waiting), QueueShutDown);
  loop.close();
});

Deno.test("Listener gives the server's addresses and prints its state", () => {
  const [loop, , , listener] = setup();
  assertEquals(listener.addresses(), [
    { transport: "tcp", hostname: "127.0.0.1", port: 4242 },
  ]);
  assertEquals(
    String(listener),
    "[object Listener listening on 127.0.0.1:4242 waiting=0]",
  );
  listener.close();
  assert(String(listener).includes("closed"));
  loop.close();
});

Deno.test("Listener closes itself and its server under await using", async () => {
  const [loop, server, , listener] = setup();
  await loop.runUntilComplete(loop.createTask(async () => {
    await using l = listener;
    assertFalse(l.isClosing());
  }));
  assert(listener.isClosing());
  assertEquals(server.closed, 2); // by close(), then by the server's dispose
  loop.close();
});
