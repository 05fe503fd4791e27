// Real-socket tests of Relay (a TCP proxy) and ReadableStreamProducer (a
// file over TCP, datagrams over UDP), on 127.0.0.1 port 0.

import { assert, assertEquals, assertRejects } from "@std/assert";
import { Relay } from "../../transports/relay.ts";
import { ReadableStreamProducer } from "../../transports/readable_stream_producer.ts";
import type { Transport } from "../../transports/transport.ts";
import { DatagramProtocol, Protocol } from "../../protocols/protocol.ts";
import type { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import type { Server } from "../../loop/event_loop.ts";
import {
  collectErrors,
  pattern,
  portOf,
  Recorder,
  withLoop,
} from "./_stream_helpers.ts";

const HOST = "127.0.0.1";
/** The most a Deno stream transport reads at once, in bytes. */
const READ_SIZE = 64 * 1024;

/** A proxy server on port 0 whose clients are relayed to `port`. */
async function proxyServer(
  loop: DenoEventLoop,
  port: number,
  high?: number,
): Promise<[Server, Relay[]]> {
  const relays: Relay[] = [];
  const server = await loop.createServer(
    () => {
      const relay = new Relay({ loop, high });
      relays.push(relay);
      loop.createConnection(() => relay.b, HOST, port)
        .then(undefined, () => relay.close());
      return relay.a;
    },
    HOST,
    0,
  );
  return [server, relays];
}

/** An upstream that reads once every 2 ms and counts what it got. */
class SlowSink extends Protocol {
  transport: Transport | null = null;
  received = 0;
  constructor(readonly loop: DenoEventLoop) {
    super();
  }
  override connectionMade(t: Transport): void {
    this.transport = t;
  }
  override dataReceived(data: Uint8Array): void {
    this.received += data.length;
    const t = this.transport!;
    t.pauseReading();
    this.loop.callLater(0.002, () => t.resumeReading());
  }
  override eofReceived(): boolean {
    this.transport!.write(new TextEncoder().encode(`${this.received}`));
    return false;
  }
}

async function closeAll(...servers: Server[]): Promise<void> {
  for (const s of servers) s.close();
  for (const s of servers) await s.waitClosed();
}

/** Runs `fn` with the path of a fresh temporary file, removed afterwards. */
async function withTempFile(fn: (path: string) => Promise<void>) {
  const path = await Deno.makeTempFile({ prefix: "tulip_producer_" });
  try {
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

/**
 * A server whose connections are `Recorder`s (each handed to `setup`
 * first), listed in `peers`, and a client `transport` connected to it.
 */
async function connectToRecorders(
  loop: DenoEventLoop,
  setup: (r: Recorder) => void = () => {},
): Promise<{ server: Server; peers: Recorder[]; transport: Transport }> {
  const peers: Recorder[] = [];
  const server = await loop.createServer(
    () => {
      const r = new Recorder(loop);
      peers.push(r);
      setup(r);
      return r;
    },
    HOST,
    0,
  );
  const [transport] = await loop.createConnection(
    () => new Protocol(),
    HOST,
    portOf(server),
  );
  return { server, peers, transport };
}

Deno.test("A TCP proxy over Relay holds at most high + one read for a slow upstream", async () => {
  await withLoop(async (loop) => {
    const high = 32 * 1024;
    const total = 16 * 1024 * 1024;
    const sinks: SlowSink[] = [];
    const upstream = await loop.createServer(
      () => {
        const s = new SlowSink(loop);
        sinks.push(s);
        return s;
      },
      HOST,
      0,
    );
    const [proxy, relays] = await proxyServer(loop, portOf(upstream), high);
    const client = new Recorder(loop);
    const [toProxy] = await loop.createConnection(
      () => client,
      HOST,
      portOf(proxy),
    );
    // The client writes everything at once: its own buffer holds it, and
    // the proxy must take it only as fast as the upstream reads.
    toProxy.write(pattern(total));
    toProxy.writeEof();
    let most = 0;
    let overHigh = 0;
    let readingOverHigh = 0;
    const sample = () => {
      const relay = relays[0];
      const out = relay?.transportB;
      if (out && !out.isClosing()) {
        const size = out.getWriteBufferSize();
        most = Math.max(most, size);
        if (size > high) {
          overHigh++;
          if (relay.transportA!.isReading()) readingOverHigh++;
        }
      }
      timer = loop.callLater(0.001, sample);
    };
    let timer = loop.callLater(0.001, sample);
    await client.lost;
    const result = await relays[0].closed;
    timer.cancel();
    assertEquals(new TextDecoder().decode(client.data()), `${total}`);
    assertEquals(sinks[0].received, total);
    assertEquals(result.bytesAToB, total);
    assert(overHigh > 0, `the proxy's buffer never passed ${high}: ${most}`);
    assert(
      most <= high + READ_SIZE,
      `the proxy buffered ${most} bytes, above ${high} + one read`,
    );
    // Reading from the client stopped whenever the buffer was over the mark.
    assertEquals(readingOverHigh, 0);
    await closeAll(proxy, upstream);
  });
});

Deno.test("A TCP proxy closes the client when the upstream refuses the connection", async () => {
  await withLoop(async (loop) => {
    // A port that was just free: nobody listens there any more.
    const gone = await loop.createServer(() => new Protocol(), HOST, 0);
    const port = portOf(gone);
    await closeAll(gone);
    const [proxy, relays] = await proxyServer(loop, port);
    const client = new Recorder(loop);
    await loop.createConnection(() => client, HOST, portOf(proxy));
    await client.eof;
    assertEquals(await client.lost, undefined);
    const result = await relays[0].closed;
    assertEquals(result.bytesAToB, 0);
    await closeAll(proxy);
  });
});

Deno.test("A TCP proxy closes the client after the upstream's answer when the upstream hangs up", async () => {
  await withLoop(async (loop) => {
    class Greeter extends Protocol {
      override connectionMade(t: Transport): void {
        t.write(new TextEncoder().encode("220 hello, bye"));
        t.close();
      }
    }
    const upstream = await loop.createServer(() => new Greeter(), HOST, 0);
    const [proxy, relays] = await proxyServer(loop, portOf(upstream));
    const client = new Recorder(loop);
    await loop.createConnection(() => client, HOST, portOf(proxy));
    assertEquals(await client.lost, undefined);
    assertEquals(new TextDecoder().decode(client.data()), "220 hello, bye");
    const result = await relays[0].closed;
    assertEquals(result.bytesBToA, 14);
    await closeAll(proxy, upstream);
  });
});

Deno.test("ReadableStreamProducer sends a file over TCP and half-closes", async () => {
  await withTempFile(async (path) => {
    const size = 3 * 1024 * 1024 + 17;
    const content = pattern(size, 7);
    await Deno.writeFile(path, content);
    await withLoop(async (loop) => {
      const { server, peers: received, transport } = await connectToRecorders(
        loop,
      );
      const file = await Deno.open(path);
      const producer = new ReadableStreamProducer(file.readable, {
        loop,
        end: "writeEof",
      });
      assertEquals(await producer.start(transport), size);
      await received[0].eof;
      assertEquals(received[0].data(), content);
      transport.close();
      await received[0].lost;
      await closeAll(server);
    });
  });
});

Deno.test("ReadableStreamProducer closes the file when the connection is lost midway", async () => {
  await withTempFile(async (path) => {
    // More than loopback's socket buffers can hold (sparse, so cheap).
    const size = 64 * 1024 * 1024;
    await Deno.truncate(path, size);
    await withLoop(async (loop) => {
      const { server, peers, transport } = await connectToRecorders(
        loop,
        // Never reads: buffers fill.
        (r) => r.made.then((t) => t.pauseReading()),
      );
      const file = await Deno.open(path);
      const producer = new ReadableStreamProducer(file.readable, { loop });
      const done = producer.start(transport);
      // The kernel's buffers fill, then the transport's: paused.
      while (String(producer) !== "[object ReadableStreamProducer paused]") {
        assert(!done.done(), "the whole file went into the socket buffers");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      transport.abort();
      await assertRejects(
        () => Promise.resolve(done),
        Error,
        "the consumer stopped the producer",
      );
      assert(producer.bytesWritten < size);
      // Not reading, the server's end cannot see the reset: close it.
      peers[0].transport.abort();
      await closeAll(server);
    });
    // The sanitizers fail the test if the file were still open.
  });
});

Deno.test("ReadableStreamProducer sends a stream of datagrams paced by the send queue, none refused", async () => {
  const count = 1500;
  const size = 1000; // 1.5 MB in all: more than the send queue holds
  await withLoop(async (loop) => {
    class Counter extends DatagramProtocol {
      received = 0;
      errors: Error[] = [];
      lost = loop.createFuture<void>();
      first = loop.createFuture<void>();
      sizes = new Set<number>();
      override datagramReceived(data: Uint8Array): void {
        this.sizes.add(data.length);
        this.received++;
        if (!this.first.done()) this.first.setResult();
      }
      override errorReceived(exc: Error): void {
        this.errors.push(exc);
      }
      override connectionLost(): void {
        this.lost.setResult();
      }
    }
    const [receiver, counter] = await loop.createDatagramEndpoint(
      () => new Counter(),
      { localAddr: { hostname: HOST, port: 0 } },
    );
    const [sender, senderProtocol] = await loop.createDatagramEndpoint(
      () => new Counter(),
      {
        localAddr: { hostname: HOST, port: 0 },
        remoteAddr: receiver.getExtraInfo("sockname") as Deno.NetAddr,
      },
    );
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled === count) return controller.close();
        controller.enqueue(new Uint8Array(size).fill(pulled++ & 0xff));
      },
    }, { highWaterMark: 0 });
    const producer = new ReadableStreamProducer(stream, { loop, end: "close" });
    let paused = 0;
    const watch = () => {
      if (String(producer).endsWith("paused]")) paused++;
      timer = loop.callLater(0.001, watch);
    };
    let timer = loop.callLater(0.001, watch);
    assertEquals(await producer.start(sender), count * size);
    timer.cancel();
    await senderProtocol.lost;
    // Without pacing, the queue would overflow and refuse datagrams here.
    assertEquals(senderProtocol.errors, []);
    assert(paused > 0, "the send queue never paused the producer");
    // UDP may drop on the receiving side; what arrives is whole: one
    // chunk, one datagram.
    await counter.first;
    assertEquals([...counter.sizes], [size]);
    receiver.close();
    await counter.lost;
  });
});

Deno.test("A datagram endpoint asks a pull producer for more as its send queue drains", async () => {
  const batches = 150;
  const perBatch = 10;
  const size = 1000; // 1.5 MB in all: more than the send queue holds
  await withLoop(async (loop) => {
    class Sender extends DatagramProtocol {
      errors: Error[] = [];
      lost = loop.createFuture<void>();
      override errorReceived(exc: Error): void {
        this.errors.push(exc);
      }
      override connectionLost(): void {
        this.lost.setResult();
      }
    }
    const [receiver] = await loop.createDatagramEndpoint(
      () => new DatagramProtocol(),
      { localAddr: { hostname: HOST, port: 0 } },
    );
    const [sender, protocol] = await loop.createDatagramEndpoint(
      () => new Sender(),
      {
        localAddr: { hostname: HOST, port: 0 },
        remoteAddr: receiver.getExtraInfo("sockname") as Deno.NetAddr,
      },
    );
    let sent = 0;
    let most = 0;
    const done = loop.createFuture<void>();
    sender.registerProducer({
      resumeProducing() {
        if (sent === batches) return;
        for (let i = 0; i < perBatch; i++) {
          sender.sendto(new Uint8Array(size));
        }
        most = Math.max(most, sender.getWriteBufferSize());
        if (++sent === batches) {
          sender.unregisterProducer();
          done.setResult();
        }
      },
    }, false);
    await done;
    sender.close();
    await protocol.lost;
    assertEquals(protocol.errors, []);
    // Asked only at the low-water mark: the queue never held much more.
    const low = 16 * 1024; // the default low-water mark
    assert(most <= low + perBatch * size, `queued ${most} bytes`);
    receiver.close();
  });
});

Deno.test("A half-closed TCP transport stops its producer: it can take no more data", async () => {
  await withLoop(async (loop) => {
    const errors = collectErrors(loop);
    const { server, peers, transport } = await connectToRecorders(loop);
    const calls: string[] = [];
    let eofWritten = false;
    transport.registerProducer({
      resumeProducing() {
        calls.push(eofWritten ? "asked after writeEof" : "asked");
        transport.write(new Uint8Array(1024)); // throws after writeEof
        if (calls.length === 3) {
          eofWritten = true;
          transport.writeEof();
        }
      },
      stopProducing: () => calls.push("stop"),
    }, false);
    await peers[0].eof;
    assertEquals(peers[0].received, 3 * 1024);
    assertEquals(calls, ["asked", "asked", "asked", "stop"]);
    assertEquals(errors.map((e) => e.message), []);
    // A producer registered on the half-closed transport is stopped at once.
    const late: string[] = [];
    transport.registerProducer({
      resumeProducing: () => late.push("asked"),
      stopProducing: () => late.push("stop"),
    }, false);
    assertEquals(late, ["stop"]);
    transport.close();
    await peers[0].lost;
    await closeAll(server);
  });
});
