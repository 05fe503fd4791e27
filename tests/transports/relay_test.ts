import { assert, assertEquals, assertThrows } from "@std/assert";
import { Relay, relay } from "../../transports/relay.ts";
import type { Transport } from "../../transports/transport.ts";
import { Protocol } from "../../protocols/protocol.ts";
import {
  transportPair,
  type TransportPairOptions,
} from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { InvalidStateError } from "../../futures/errors.ts";
import { splitCases } from "../_every_split.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An end that records what it gets and may send, half-close or answer. */
class Peer extends Protocol {
  transport: Transport | null = null;
  text = "";
  received = 0;
  eof = false;
  lost: Error | undefined | null = null;
  constructor(
    readonly send: string | null = null,
    readonly options: { writeEof?: boolean; keepOpen?: boolean } = {},
  ) {
    super();
  }
  override connectionMade(t: Transport): void {
    this.transport = t;
    if (this.send !== null) t.write(encoder.encode(this.send));
    if (this.options.writeEof) t.writeEof();
  }
  override dataReceived(data: Uint8Array): void {
    this.text += decoder.decode(data);
    this.received += data.length;
  }
  override eofReceived(): boolean {
    this.eof = true;
    return this.options.keepOpen ?? false;
  }
  override connectionLost(exc?: Error): void {
    this.lost = exc;
  }
}

/** client ⇄ relay.a … relay.b ⇄ server, over two transport pairs. */
function proxy(
  client: Protocol,
  server: Protocol,
  options: {
    clientSide?: TransportPairOptions;
    serverSide?: TransportPairOptions;
    high?: number;
  } = {},
) {
  const loop = new VirtualTimeLoop();
  const r = new Relay({ loop, high: options.high });
  const [toRelayA, relayA] = transportPair(client, r.a, {
    loop,
    ...options.clientSide,
  });
  const [relayB, toServer] = transportPair(r.b, server, {
    loop,
    ...options.serverSide,
  });
  return { loop, relay: r, toRelayA, relayA, relayB, toServer };
}

// ---- Relaying ----

Deno.test("Relay carries both directions and the end of stream, in every split", async () => {
  const request = "GET / HTTP/1.0\r\n\r\n";
  for (const { name, options } of splitCases(request.length)) {
    const client = new Peer(request, { writeEof: true, keepOpen: false });
    // The server answers once it has the whole request (its EOF).
    class Server extends Peer {
      override eofReceived(): boolean {
        this.eof = true;
        this.transport!.write(encoder.encode(`got ${this.text.length}`));
        return false;
      }
    }
    const server = new Server();
    const { loop, relay: r } = proxy(client, server, {
      clientSide: options,
      serverSide: options,
    });
    const result = await loop.runUntilComplete(r.closed);
    await loop.advance(1);
    assertEquals(server.text, request, name);
    assertEquals(client.text, `got ${request.length}`, name);
    assert(server.eof && client.eof, name);
    assertEquals(result, {
      bytesAToB: request.length,
      bytesBToA: `got ${request.length}`.length,
      errorA: undefined,
      errorB: undefined,
    }, name);
    assertEquals([client.lost, server.lost], [undefined, undefined], name);
    loop.close();
  }
});

Deno.test("Relay half-closes: the side that got EOF can still answer", async () => {
  const client = new Peer("question", { writeEof: true, keepOpen: true });
  const server = new Peer(null, { keepOpen: true });
  const { loop, relay: r, relayA, relayB } = proxy(client, server);
  await loop.advance(1);
  assert(server.eof);
  assertEquals(relayB.isClosing(), false); // half-closed only
  server.transport!.write(encoder.encode("answer"));
  await loop.advance(1);
  assertEquals(client.text, "answer");
  server.transport!.close();
  await loop.runUntilComplete(r.closed);
  assert(relayA.isClosing() && relayB.isClosing());
  assert(client.eof);
  loop.close();
});

Deno.test("Relay reads nothing from a side until the other is connected", async () => {
  const loop = new VirtualTimeLoop();
  const r = new Relay({ loop });
  const client = new Peer("early bytes");
  const [, relayA] = transportPair(client, r.a, { loop });
  await loop.advance(5);
  assertEquals(relayA.isReading(), false);
  assertEquals(String(r), "[object Relay connecting]");
  const server = new Peer();
  transportPair(r.b, server, { loop });
  await loop.advance(1);
  assertEquals(server.text, "early bytes");
  assertEquals(String(r), "[object Relay relaying]");
  r.close();
  await loop.runUntilComplete(r.closed);
  loop.close();
});

// ---- Back-pressure ----

Deno.test("Relay stops reading the source while the destination is over its high-water mark", async () => {
  // A fast client sends 200 kB in 1 kB reads; the server reads 100 bytes a second.
  const total = 200_000;
  class Fast extends Protocol {
    override connectionMade(t: Transport): void {
      t.write(new Uint8Array(total));
      t.writeEof();
    }
  }
  const server = new Peer(null, { keepOpen: false });
  const { loop, relay: r, relayA, relayB } = proxy(new Fast(), server, {
    clientSide: { chunkSize: 1000 },
    serverSide: { bufferSize: 0, chunkSize: 5000, delay: 1 },
    high: 10_000,
  });
  let most = 0;
  let pausedWhileFull = 0;
  let readingWhileFull = 0;
  while (!r.closed.done()) {
    await loop.advance(0.5);
    const size = relayB.getWriteBufferSize();
    most = Math.max(most, size);
    if (size > 10_000) {
      if (relayA.isReading()) readingWhileFull++;
      else pausedWhileFull++;
    }
  }
  assertEquals(server.received, total);
  assertEquals(r.bytesAToB, total);
  assert(most > 10_000, `the buffer never passed the mark: ${most}`);
  assert(most <= 11_000, `buffered ${most} bytes: above high + one read`);
  assert(pausedWhileFull > 0);
  assertEquals(readingWhileFull, 0);
  loop.close();
});

Deno.test("Relay applies back-pressure in the other direction too", async () => {
  class Fast extends Protocol {
    override connectionMade(t: Transport): void {
      t.write(new Uint8Array(50_000));
      t.close();
    }
  }
  const client = new Peer(null, { keepOpen: false });
  const { loop, relay: r, relayA, relayB } = proxy(client, new Fast(), {
    clientSide: { bufferSize: 0, chunkSize: 1000, delay: 1 },
    serverSide: { chunkSize: 500 },
    high: 4000,
  });
  let most = 0;
  let readingWhileFull = 0;
  while (!r.closed.done()) {
    await loop.advance(0.5);
    most = Math.max(most, relayA.getWriteBufferSize());
    if (relayA.getWriteBufferSize() > 4000 && relayB.isReading()) {
      readingWhileFull++;
    }
  }
  assertEquals(client.received, 50_000);
  assert(most > 4000 && most <= 4500, `buffered ${most} bytes`);
  assertEquals(readingWhileFull, 0);
  loop.close();
});

// ---- Losing a side ----

Deno.test("Relay closes the client when the server resets, and reports the error", async () => {
  const client = new Peer(null, { keepOpen: true });
  const server = new Peer("partial answer");
  const { loop, relay: r, toServer } = proxy(client, server);
  await loop.advance(1);
  (toServer as Transport).abort(); // the server's side resets the relay's B
  const result = await loop.runUntilComplete(r.closed);
  await loop.advance(1);
  assertEquals(result.errorB?.name, "ConnectionReset");
  assertEquals(result.errorA, undefined);
  assertEquals(client.text, "partial answer"); // flushed before closing
  assert(client.eof);
  loop.close();
});

Deno.test("Relay closes the server when the client goes away", async () => {
  const client = new Peer("hello");
  const server = new Peer(null, { keepOpen: true });
  const { loop, relay: r, toRelayA } = proxy(client, server);
  await loop.advance(1);
  toRelayA.abort();
  const result = await loop.runUntilComplete(r.closed);
  await loop.advance(1);
  assertEquals(result.errorA?.name, "ConnectionReset");
  assertEquals(server.text, "hello");
  assert(server.eof);
  loop.close();
});

Deno.test("Relay.close() before the second side connects closes the first, then the second on arrival", async () => {
  const loop = new VirtualTimeLoop();
  const r = new Relay({ loop });
  const client = new Peer();
  transportPair(client, r.a, { loop });
  await loop.advance(1);
  r.close(); // say, the upstream connection failed
  const result = await loop.runUntilComplete(r.closed);
  assertEquals(result.bytesAToB, 0);
  await loop.advance(1);
  assertEquals(client.lost, undefined);
  assert(client.eof);
  const late = new Peer();
  const [lateEnd] = transportPair(r.b, late, { loop });
  await loop.advance(1);
  assert(lateEnd.isClosing());
  assert(late.eof);
  loop.close();
});

Deno.test("Relay: a side lost before the other connects gets the other closed on arrival", async () => {
  const loop = new VirtualTimeLoop();
  const r = new Relay({ loop });
  const [toA] = transportPair(new Peer(), r.a, { loop });
  await loop.advance(1);
  toA.abort();
  const result = await loop.runUntilComplete(r.closed);
  assertEquals(result.errorA?.name, "ConnectionReset");
  const late = new Peer();
  const [lateEnd] = transportPair(r.b, late, { loop });
  await loop.advance(1);
  assert(lateEnd.isClosing());
  loop.close();
});

// ---- relay() and arguments ----

Deno.test("relay() adopts two connected transports", async () => {
  const loop = new VirtualTimeLoop();
  const left = new Peer(null, { keepOpen: true });
  const right = new Peer();
  const [leftEnd, ta] = transportPair(left, new Protocol(), { loop });
  const [tb, rightEnd] = transportPair(new Protocol(), right, { loop });
  await loop.advance(1); // connectionMade has run on every end
  const r = relay(ta, tb, { loop, high: 100 });
  assertEquals(ta.getWriteBufferLimits(), [25, 100]);
  leftEnd.write(encoder.encode("ping"));
  rightEnd.write(encoder.encode("pong"));
  await loop.advance(1);
  assertEquals([right.text, left.text], ["ping", "pong"]);
  leftEnd.close();
  const result = await loop.runUntilComplete(r.closed);
  assertEquals([result.bytesAToB, result.bytesBToA], [4, 4]);
  loop.close();
});

Deno.test("relay() refuses a transport that already has a producer", async () => {
  const loop = new VirtualTimeLoop();
  const [, ta] = transportPair(new Protocol(), new Protocol(), { loop });
  const [tb] = transportPair(new Protocol(), new Protocol(), { loop });
  await loop.advance(1);
  tb.registerProducer({ resumeProducing() {} }, false);
  assertThrows(() => relay(ta, tb, { loop }), InvalidStateError);
  ta.abort();
  tb.abort();
  await loop.advance(1);
  loop.close();
});

Deno.test("Relay checks its water marks", () => {
  const loop = new VirtualTimeLoop();
  assertThrows(
    () => new Relay({ loop, high: -1 }),
    RangeError,
    "Cannot make a relay: high must be a number >= 0, received -1",
  );
  assertThrows(
    () => new Relay({ loop, high: 10, low: 20 }),
    RangeError,
    "high must be >= low, received high=10 low=20",
  );
  loop.close();
});
