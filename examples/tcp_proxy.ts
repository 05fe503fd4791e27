/**
 * A TCP proxy in a few lines (a `Relay` per client), in front of a deliberately slow upstream: 8 MiB go through while the proxy buffers no more than its 64 KiB high-water mark plus one read.
 *
 * deno run --allow-net=127.0.0.1 examples/tcp_proxy.ts
 *
 * @module
 */

import {
  type EventLoop,
  newEventLoop,
  openConnection,
  Protocol,
  Relay,
  type Transport,
} from "../mod.ts";

const HOST = "127.0.0.1";
const TOTAL = 8 * 1024 * 1024;

// ---- The proxy: each client gets a relay to the upstream ----

function proxyTo(loop: EventLoop, host: string, port: number, relays: Relay[]) {
  return () => {
    const relay = new Relay({ loop });
    relays.push(relay);
    loop.createConnection(() => relay.b, host, port)
      .then(undefined, () => relay.close()); // upstream down: drop the client
    return relay.a;
  };
}

// ---- A slow upstream: one read every 2 ms, then a summary at EOF ----

class SlowSink extends Protocol {
  readonly #loop: EventLoop;
  #transport: Transport | null = null;
  #received = 0;

  constructor(loop: EventLoop) {
    super();
    this.#loop = loop;
  }

  override connectionMade(transport: Transport): void {
    this.#transport = transport;
  }

  override dataReceived(data: Uint8Array): void {
    this.#received += data.length;
    const transport = this.#transport!;
    transport.pauseReading();
    this.#loop.callLater(0.002, () => transport.resumeReading());
  }

  override eofReceived(): boolean {
    this.#transport!.write(
      new TextEncoder().encode(`upstream got ${this.#received} bytes`),
    );
    return false; // close after the answer is written
  }
}

const loop = newEventLoop();
const relays: Relay[] = [];
const upstream = await loop.runUntilComplete(
  loop.createServer(() => new SlowSink(loop), HOST, 0),
);
const upstreamPort = (upstream.addresses()[0] as Deno.NetAddr).port;
const proxy = await loop.runUntilComplete(
  loop.createServer(proxyTo(loop, HOST, upstreamPort, relays), HOST, 0),
);
const proxyPort = (proxy.addresses()[0] as Deno.NetAddr).port;
console.log(
  `proxy on ${HOST}:${proxyPort} -> upstream on ${HOST}:${upstreamPort}`,
);

// Watch how much the proxy holds for the slow upstream.
let most = 0;
const watch = () => {
  const size = relays[0]?.transportB?.getWriteBufferSize() ?? 0;
  most = Math.max(most, size);
  timer = loop.callLater(0.001, watch);
};
let timer = loop.callLater(0.001, watch);

const answer = await loop.runUntilComplete(loop.createTask(async () => {
  const [reader, writer] = await openConnection(HOST, proxyPort);
  const piece = new Uint8Array(64 * 1024);
  for (let sent = 0; sent < TOTAL; sent += piece.length) {
    writer.write(piece);
    await writer.drain(); // the client is paced by the proxy in turn
  }
  writer.writeEof();
  const text = new TextDecoder().decode(await reader.read(-1));
  writer.close();
  await writer.waitClosed();
  return text;
}));
await loop.runUntilComplete(relays[0].closed);
timer.cancel();

console.log(answer);
const [low, high] = relays[0].transportB!.getWriteBufferLimits();
console.log(
  `most buffered in the proxy: ${Math.ceil(most / 1024)} KiB ` +
    `(high-water mark ${high / 1024} KiB, low ${low / 1024} KiB)`,
);
console.log(
  most <= high + 64 * 1024 ? "memory stayed bounded" : "memory ran away",
);

proxy.close();
upstream.close();
await loop.runUntilComplete(proxy.waitClosed());
await loop.runUntilComplete(upstream.waitClosed());
loop.close();
