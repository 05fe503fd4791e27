// Factories for the transport conformance suite: each one sets up one kind
// of transport joined to an observable peer, runs a test body against it,
// and tears everything down. A factory declares what its transport can do
// (capabilities) so that the suite skips, by name, what does not apply.

import { concatBytes } from "../../transports/write_buffer.ts";
import type { EventLoop } from "../../loop/event_loop.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import {
  DatagramProtocol,
  Protocol,
  SubprocessProtocol,
} from "../../protocols/protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import { transportPair } from "../../testing/transport_pair.ts";
import { Simulation } from "../../testing/simulation.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { HttpClientProtocol } from "../../http/http_client_protocol.ts";
import { HttpServerProtocol } from "../../http/http_server_protocol.ts";
import { HttpTransport } from "../../http/http_transport.ts";
import type {
  DatagramTransport,
  Transport,
} from "../../transports/transport.ts";
import { testCerts } from "./_tls_certs.ts";
import { within } from "./_io_helpers.ts";

/** What a transport under test can do. */
export interface Capabilities {
  /** It has a write side. */
  write: boolean;
  /**
   * It has a read side the peer can send to, and half-close, whenever it
   * likes (an HttpTransport's data only comes as answers to its writes).
   */
  read: boolean;
  /** `canWriteEof()` is `true`: it can half-close its write side. */
  writeEof: boolean;
  /** The peer can half-close towards it, and `eofReceived() === true` keeps it open for writing. */
  halfOpen: boolean;
  /** The peer can stop reading, so that the write buffer fills up. */
  backpressure: boolean;
  /** Its events reach the protocol passed to the factory (not an adapter). */
  ownProtocol: boolean;
  /** The peer receives EOF when the transport closes. */
  peerSeesEof: boolean;
  /** `"peername"` and `"sockname"` mirror the peer's, as on a socket. */
  addresses: boolean;
  /**
   * The peer is a TCP socket (real or simulated): a segment that reaches
   * it once it closed gets a reset back.
   */
  tcpResets?: boolean;
}

/** Records what a protocol is told, for the suite's assertions. */
export class Probe extends Protocol {
  readonly events: string[] = [];
  readonly chunks: Uint8Array[] = [];
  lostWith: Error | undefined | null = null;
  /** What `eofReceived()` returns. */
  keepOpen = false;
  /** The write buffer size seen at each pauseWriting()/resumeWriting(). */
  readonly pausedAt: number[] = [];
  readonly resumedAt: number[] = [];
  transport: Transport | null = null;

  override connectionMade(t: Transport): void {
    this.transport = t;
    this.events.push("made");
  }
  override dataReceived(data: Uint8Array): void {
    this.events.push("data");
    this.chunks.push(data.slice());
  }
  override eofReceived(): boolean {
    this.events.push("eof");
    return this.keepOpen;
  }
  override connectionLost(exc?: Error): void {
    this.events.push("lost");
    this.lostWith = exc;
  }
  override pauseWriting(): void {
    this.events.push("pause");
    this.pausedAt.push(this.transport?.getWriteBufferSize() ?? -1);
  }
  override resumeWriting(): void {
    this.events.push("resume");
    this.resumedAt.push(this.transport?.getWriteBufferSize() ?? -1);
  }
  /** How many times `event` happened. */
  count(event: string): number {
    return this.events.filter((e) => e === event).length;
  }
  /** Everything received, in one array. */
  data(): Uint8Array {
    return concat(this.chunks);
  }
}

/** The other end of the transport under test, seen from the test. */
export interface Peer {
  /** The bytes the peer received so far. */
  received(): Uint8Array;
  /** The peer saw the end of the stream (EOF or connection lost). */
  ended(): boolean;
  /** Sends bytes to the transport under test (capability `read`). */
  send?(data: Uint8Array): void;
  /** Half-closes towards the transport under test (capability `read`). */
  sendEof?(): void;
  /** Stops reading, so that the tested transport's buffer fills. */
  pause?(): void;
  /** Reads again after `pause()`. */
  resume?(): void;
  /** The peer's own transport, when it has one. */
  transport?: Transport;
  /** The peer's protocol, when it is a Probe on a stream connection. */
  probe?: Probe;
}

/** One transport under test, its probe protocol and its peer. */
export interface Fixture {
  loop: EventLoop;
  transport: Transport;
  probe: Probe;
  peer: Peer;
}

/** Makes a transport of one kind and runs a test body against it. */
export interface TransportFactory {
  name: string;
  caps: Capabilities;
  run(body: (fx: Fixture) => Promise<void>): Promise<void>;
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  // A copy even of a single chunk: the caller may reuse its buffers.
  return chunks.length === 1 ? chunks[0].slice() : concatBytes(chunks, n);
}

/**
 * Polls `cond` every millisecond (of the running loop's time) until it
 * holds; fails after `limit` seconds so that a broken case ends.
 */
export async function waitUntil(
  cond: () => boolean,
  what: string,
  limit = 10,
): Promise<void> {
  for (let i = 0; i < limit * 1000; i++) {
    if (cond()) return;
    await sleep(0.001);
  }
  throw new Error(`Gave up waiting for ${what}`);
}

/** Lets the loop run for `seconds` (of its own time). */
export function settle(seconds = 0.02): Promise<void> {
  return Promise.resolve(sleep(seconds));
}

const HOST = "127.0.0.1";

async function withDenoLoop(fn: (loop: DenoEventLoop) => Promise<void>) {
  const loop = new DenoEventLoop();
  try {
    await within(loop, loop.createTask(() => fn(loop)), 30);
  } finally {
    loop.close();
  }
}

/** A peer that is a Probe on the other end of a stream connection. */
function probePeer(p: Probe): Peer {
  return {
    received: () => p.data(),
    ended: () => p.events.includes("eof") || p.events.includes("lost"),
    send: (d) => p.transport!.write(d),
    sendEof: () => p.transport!.writeEof(),
    pause: () => p.transport!.pauseReading(),
    resume: () => p.transport!.resumeReading(),
    transport: p.transport!,
    probe: p,
  };
}

const SOCKET: Capabilities = {
  write: true,
  read: true,
  writeEof: true,
  halfOpen: true,
  backpressure: true,
  ownProtocol: true,
  peerSeesEof: true,
  addresses: true,
};

/** A client connection to a server, both on `loop`; the client is tested. */
function socketFactory(
  name: string,
  caps: Capabilities,
  connect: (
    loop: DenoEventLoop,
    serverSide: () => Probe,
    clientSide: () => Probe,
  ) => Promise<{ transport: Transport; cleanup: () => Promise<void> }>,
): TransportFactory {
  return {
    name,
    caps,
    run: (body) =>
      withDenoLoop(async (loop) => {
        const peers: Probe[] = [];
        const probe = new Probe();
        const { transport, cleanup } = await connect(
          loop,
          () => {
            const p = new Probe();
            peers.push(p);
            return p;
          },
          () => probe,
        );
        try {
          await waitUntil(
            () => peers.length === 1 && peers[0].transport !== null,
            "the server side",
          );
          await body({ loop, transport, probe, peer: probePeer(peers[0]) });
        } finally {
          transport.abort();
          peers[0]?.transport?.abort();
          await settle();
          await cleanup();
        }
      }),
  };
}

/** A TCP socket's capabilities, its resets too. */
const TCP_SOCKET: Capabilities = { ...SOCKET, tcpResets: true };

export const tcp: TransportFactory = socketFactory(
  "TCP",
  TCP_SOCKET,
  async (loop, serverSide, clientSide) => {
    const server = await loop.createServer(serverSide, HOST, 0);
    const port = (server.addresses()[0] as Deno.NetAddr).port;
    const [transport] = await loop.createConnection(clientSide, HOST, port);
    return {
      transport,
      cleanup: async () => {
        server.close();
        await server.waitClosed();
      },
    };
  },
);

export const tls: TransportFactory = socketFactory(
  "TLS",
  SOCKET,
  async (loop, serverSide, clientSide) => {
    const certs = await testCerts();
    const server = await loop.createServer(serverSide, HOST, 0, {
      ssl: { cert: certs.cert, key: certs.key },
    });
    const port = (server.addresses()[0] as Deno.NetAddr).port;
    const [transport] = await loop.createConnection(clientSide, HOST, port, {
      ssl: { caCerts: [certs.ca] },
    });
    return {
      transport,
      cleanup: async () => {
        server.close();
        await server.waitClosed();
      },
    };
  },
);

export const unix: TransportFactory = socketFactory(
  "Unix socket",
  SOCKET,
  async (loop, serverSide, clientSide) => {
    const dir = await Deno.makeTempDir({ prefix: "tulip-conf-" });
    const path = `${dir}/s.sock`;
    const server = await loop.createUnixServer(serverSide, path);
    const [transport] = await loop.createUnixConnection(clientSide, path);
    return {
      transport,
      cleanup: async () => {
        server.close();
        await server.waitClosed();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
);

/**
 * `transportPair()` with `options` (and the running loop); without
 * `bufferSize` the peer's buffer is unbounded, so writes never back up.
 */
function pairFactory(
  name: string,
  caps: Capabilities,
  options: Parameters<typeof transportPair>[2],
): TransportFactory {
  return {
    name,
    caps,
    run: (body) =>
      withDenoLoop(async (loop) => {
        const probe = new Probe();
        const peer = new Probe();
        const [transport] = transportPair(probe, peer, { loop, ...options });
        try {
          await waitUntil(() => peer.transport !== null, "connectionMade");
          await body({ loop, transport, probe, peer: probePeer(peer) });
        } finally {
          transport.abort();
          peer.transport?.abort();
          await settle();
        }
      }),
  };
}

/**
 * `transportPair()` as protocol tests use it, with no options: the peer's
 * buffer is unbounded, so the write buffer never fills.
 */
export const pair: TransportFactory = pairFactory(
  "transportPair",
  { ...SOCKET, backpressure: false },
  {},
);

/** `transportPair()` with a 64 KiB receive buffer, as a socket has. */
export const pairBuffered: TransportFactory = pairFactory(
  "transportPair (bufferSize)",
  SOCKET,
  { bufferSize: 64 * 1024 },
);

/** `transportPair()` delivering in small, uneven chunks. */
export const pairChunked: TransportFactory = pairFactory(
  "transportPair (chunkSize)",
  SOCKET,
  { bufferSize: 64 * 1024, chunkSize: [1, 3, 1500] },
);

/** A connection between two simulated hosts; the client end is tested. */
export const simulated: TransportFactory = {
  name: "Simulation stream",
  caps: TCP_SOCKET,
  run: async (body) => {
    const sim = new Simulation({ seed: 7 });
    let peer: Probe | null = null;
    let failure: unknown = null;
    let ran = false;
    sim.host("server", async (loop) => {
      await loop.createServer(() => peer = new Probe(), "0.0.0.0", 80);
    });
    sim.client("client", async (loop) => {
      const probe = new Probe();
      await sleep(0.01);
      const [transport] = await loop.createConnection(
        () => probe,
        "server",
        80,
      );
      try {
        await waitUntil(() => peer?.transport != null, "the server side");
        await body({ loop, transport, probe, peer: probePeer(peer!) });
        ran = true;
      } catch (e) {
        failure = e;
      } finally {
        transport.abort();
        peer?.transport?.abort();
        await settle();
      }
    });
    await sim.run({ until: 600 });
    if (failure !== null) throw failure;
    if (!ran) throw new Error("The simulated client did not run the case");
  },
};

/**
 * Runs `fn` as a task on a fresh `VirtualTimeLoop`, giving up after 600
 * virtual seconds.
 */
async function withVirtualLoop(
  fn: (loop: VirtualTimeLoop) => Promise<void>,
): Promise<void> {
  const loop = new VirtualTimeLoop();
  try {
    const task = loop.createTask(() => fn(loop));
    const guard = loop.callLater(600, () => task.cancel("Test gave up"));
    await loop.runUntilComplete(task);
    guard.cancel();
  } finally {
    loop.close();
  }
}

/**
 * A loopback connection on a `VirtualTimeLoop` (its in-memory network);
 * the client end is tested.
 */
export const virtual: TransportFactory = {
  name: "VirtualTimeLoop stream",
  caps: TCP_SOCKET,
  run: (body) =>
    withVirtualLoop(async (loop) => {
      let peer = null as Probe | null;
      const server = await loop.createServer(
        () => peer = new Probe(),
        HOST,
        0,
      );
      const port = (server.addresses()[0] as Deno.NetAddr).port;
      const probe = new Probe();
      const [transport] = await loop.createConnection(() => probe, HOST, port);
      try {
        await waitUntil(() => peer?.transport != null, "the server side");
        await body({ loop, transport, probe, peer: probePeer(peer!) });
      } finally {
        transport.abort();
        peer?.transport?.abort();
        await settle();
        server.close();
        await server.waitClosed();
      }
    }),
};

/**
 * `connectWritePipe()` into a `TransformStream` whose readable end the
 * test reads as the peer.
 */
export const writePipe: TransportFactory = {
  name: "write pipe",
  caps: {
    write: true,
    read: false,
    writeEof: true,
    halfOpen: false,
    backpressure: true,
    ownProtocol: true,
    peerSeesEof: true,
    addresses: false,
  },
  run: (body) =>
    withDenoLoop(async (loop) => {
      const stream = new TransformStream<Uint8Array, Uint8Array>();
      const probe = new Probe();
      const [transport] = await loop.connectWritePipe(
        () => probe,
        stream.writable,
      );
      const got: Uint8Array[] = [];
      let ended = false;
      let paused = false;
      let wake: (() => void) | null = null;
      const reader = stream.readable.getReader();
      const pump = (async () => {
        try {
          while (true) {
            while (paused) await new Promise<void>((r) => wake = r);
            const { done, value } = await reader.read();
            if (done) break;
            got.push(value);
          }
        } catch {
          // The pipe was aborted: the peer sees the end.
        }
        ended = true;
      })();
      const peer: Peer = {
        received: () => concat(got),
        ended: () => ended,
        pause: () => paused = true,
        resume: () => {
          paused = false;
          wake?.();
        },
      };
      try {
        await body({ loop, transport: transport as Transport, probe, peer });
      } finally {
        transport.abort();
        peer.resume!();
        await settle();
        await reader.cancel().catch(() => {});
        await pump;
      }
    }),
};

/**
 * `connectReadPipe()` from a `TransformStream` whose writable end the test
 * writes as the peer.
 */
export const readPipe: TransportFactory = {
  name: "read pipe",
  caps: {
    write: false,
    read: true,
    writeEof: false,
    halfOpen: false,
    backpressure: false,
    ownProtocol: true,
    peerSeesEof: false,
    addresses: false,
  },
  run: (body) =>
    withDenoLoop(async (loop) => {
      const stream = new TransformStream<Uint8Array, Uint8Array>();
      const probe = new Probe();
      const [transport] = await loop.connectReadPipe(
        () => probe,
        stream.readable,
      );
      probe.transport = transport as Transport;
      const writer = stream.writable.getWriter();
      const peer: Peer = {
        received: () => new Uint8Array(0),
        ended: () => false,
        send: (d) => void writer.write(d).catch(() => {}),
        sendEof: () => void writer.close().catch(() => {}),
      };
      try {
        await body({ loop, transport: transport as Transport, probe, peer });
      } finally {
        transport.close();
        await settle();
        await writer.abort().catch(() => {});
      }
    }),
};

/** Forwards a child's stdin events to a Probe; stdout is the peer. */
class CatProtocol extends SubprocessProtocol {
  readonly out: Uint8Array[] = [];
  outEnded = false;
  exited = false;
  constructor(readonly probe: Probe) {
    super();
  }
  override pipeDataReceived(fd: number, data: Uint8Array): void {
    if (fd === 1) this.out.push(data.slice());
  }
  override pipeConnectionLost(fd: number, exc?: Error): void {
    if (fd === 0) this.probe.connectionLost(exc);
    if (fd === 1) this.outEnded = true;
  }
  override pauseWriting(): void {
    this.probe.pauseWriting();
  }
  override resumeWriting(): void {
    this.probe.resumeWriting();
  }
  override processExited(): void {
    this.exited = true;
  }
}

/** The stdin pipe of `cat`, whose stdout is the peer. */
export const subprocessStdin: TransportFactory = {
  name: "subprocess stdin",
  caps: {
    write: true,
    read: false,
    writeEof: true,
    halfOpen: false,
    backpressure: true,
    ownProtocol: false,
    peerSeesEof: true,
    addresses: false,
  },
  run: (body) =>
    withDenoLoop(async (loop) => {
      const probe = new Probe();
      const cat = new CatProtocol(probe);
      const [sub] = await loop.subprocessExec(() => cat, "cat", [], {
        stderr: "null",
      });
      const transport = sub.getPipeTransport(0) as Transport;
      probe.transport = transport;
      const stdout = sub.getPipeTransport(1) as Transport;
      const peer: Peer = {
        received: () => concat(cat.out),
        ended: () => cat.outEnded,
        pause: () => stdout.pauseReading(),
        resume: () => stdout.resumeReading(),
      };
      try {
        await body({ loop, transport, probe, peer });
      } finally {
        stdout.resumeReading();
        transport.abort();
        await waitUntil(() => cat.exited && cat.outEnded, "cat to exit");
        sub.close();
        await settle();
      }
    }),
};

/** Forwards a child's stdout events to a Probe. */
class StdoutProtocol extends SubprocessProtocol {
  exited = false;
  constructor(readonly probe: Probe) {
    super();
  }
  override pipeDataReceived(fd: number, data: Uint8Array): void {
    if (fd === 1) this.probe.dataReceived(data);
  }
  override pipeConnectionLost(fd: number, exc?: Error): void {
    if (fd === 1) this.probe.connectionLost(exc);
  }
  override processExited(): void {
    this.exited = true;
  }
}

/**
 * The stdout pipe of `cat`, fed by the peer through its stdin. Its events
 * reach a SubprocessProtocol, which has no `eofReceived()`.
 */
export const subprocessStdout: TransportFactory = {
  name: "subprocess stdout",
  caps: {
    write: false,
    read: true,
    writeEof: false,
    halfOpen: false,
    backpressure: false,
    ownProtocol: false,
    peerSeesEof: false,
    addresses: false,
  },
  run: (body) =>
    withDenoLoop(async (loop) => {
      const probe = new Probe();
      const protocol = new StdoutProtocol(probe);
      const [sub] = await loop.subprocessExec(() => protocol, "cat", [], {
        stderr: "null",
      });
      const transport = sub.getPipeTransport(1) as Transport;
      probe.transport = transport;
      const stdin = sub.getPipeTransport(0) as Transport;
      const peer: Peer = {
        received: () => new Uint8Array(0),
        ended: () => false,
        send: (d) => stdin.write(d),
        sendEof: () => stdin.writeEof(),
      };
      try {
        await body({ loop, transport, probe, peer });
      } finally {
        if (!stdin.isClosing()) stdin.close();
        await waitUntil(() => protocol.exited, "cat to exit");
        transport.close();
        sub.close();
        await settle();
      }
    }),
};

/**
 * An `HttpTransport` over an HTTP client connected by real TCP to an HTTP
 * server whose handler collects the request bodies as the peer's stream
 * and answers with what the test queued (`send`), so reads are driven by
 * writes.
 */
export const http: TransportFactory = {
  name: "HttpTransport",
  caps: {
    write: true,
    read: false,
    writeEof: true,
    halfOpen: false,
    backpressure: false,
    ownProtocol: true,
    peerSeesEof: false,
    addresses: false,
  },
  run: (body) =>
    withDenoLoop(async (loop) => {
      const bodies: Uint8Array[] = [];
      const server = await loop.createServer(
        () =>
          new HttpServerProtocol(async (request) => {
            bodies.push(new Uint8Array(await request.arrayBuffer()));
            return new Response(null, { status: 204 });
          }),
        HOST,
        0,
      );
      const port = (server.addresses()[0] as Deno.NetAddr).port;
      const [, client] = await loop.createConnection(
        () => new HttpClientProtocol(),
        HOST,
        port,
      );
      const transport = new HttpTransport(client, { path: "/c", loop });
      const probe = new Probe();
      transport.setProtocol(probe);
      probe.connectionMade(transport);
      const peer: Peer = {
        received: () => concat(bodies),
        ended: () => false,
      };
      try {
        await body({ loop, transport, probe, peer });
      } finally {
        transport.abort();
        client.close();
        await settle();
        server.close();
        await server.waitClosed();
      }
    }),
};

/** Every stream transport factory. */
export const STREAM_FACTORIES: TransportFactory[] = [
  tcp,
  tls,
  unix,
  pair,
  pairBuffered,
  pairChunked,
  simulated,
  virtual,
  writePipe,
  readPipe,
  subprocessStdin,
  subprocessStdout,
  http,
];

// ---- Datagrams ----

/** Records a datagram protocol's events. */
export class DatagramProbe extends DatagramProtocol {
  readonly events: string[] = [];
  readonly got: Uint8Array[] = [];
  lostWith: Error | undefined | null = null;
  override datagramReceived(data: Uint8Array): void {
    this.events.push("datagram");
    this.got.push(data.slice());
  }
  override errorReceived(): void {
    this.events.push("error");
  }
  override connectionLost(exc?: Error): void {
    this.events.push("lost");
    this.lostWith = exc;
  }
  count(event: string): number {
    return this.events.filter((e) => e === event).length;
  }
}

/** One datagram endpoint under test, and a receiving one it sends to. */
export interface DatagramFixture {
  transport: DatagramTransport;
  probe: DatagramProbe;
  /** Where the receiver listens. */
  target: Deno.NetAddr;
  receiver: DatagramProbe;
}

export interface DatagramFactory {
  name: string;
  run(body: (fx: DatagramFixture) => Promise<void>): Promise<void>;
}

async function datagramPair(
  loop: EventLoop,
  host: string,
  body: (fx: DatagramFixture) => Promise<void>,
): Promise<void> {
  const receiver = new DatagramProbe();
  const [rt] = await loop.createDatagramEndpoint(() => receiver, {
    localAddr: { hostname: host, port: 9000 },
  });
  const probe = new DatagramProbe();
  const [transport] = await loop.createDatagramEndpoint(() => probe, {
    localAddr: { hostname: host, port: 0 },
  });
  try {
    await body({
      transport,
      probe,
      receiver,
      target: { transport: "udp", hostname: host, port: 9000 },
    });
  } finally {
    transport.abort();
    rt.abort();
    await settle();
  }
}

export const udp: DatagramFactory = {
  name: "UDP",
  run: (body) =>
    withDenoLoop(async (loop) => {
      // Port 0 for the receiver: the real socket picks a free one.
      const receiver = new DatagramProbe();
      const [rt] = await loop.createDatagramEndpoint(() => receiver, {
        localAddr: { hostname: HOST, port: 0 },
      });
      const probe = new DatagramProbe();
      const [transport] = await loop.createDatagramEndpoint(() => probe, {
        localAddr: { hostname: HOST, port: 0 },
      });
      const at = rt.getExtraInfo("sockname") as Deno.NetAddr;
      try {
        await body({
          transport,
          probe,
          receiver,
          target: { transport: "udp", hostname: HOST, port: at.port },
        });
      } finally {
        transport.abort();
        rt.abort();
        await settle();
      }
    }),
};

export const simulatedDatagram: DatagramFactory = {
  name: "Simulation datagram",
  run: async (body) => {
    const sim = new Simulation({ seed: 3 });
    let failure: unknown = null;
    let ran = false;
    sim.client("a", async (loop) => {
      try {
        await datagramPair(loop, "a", body);
        ran = true;
      } catch (e) {
        failure = e;
      }
    });
    await sim.run({ until: 600 });
    if (failure !== null) throw failure;
    if (!ran) throw new Error("The simulated client did not run the case");
  },
};

export const virtualDatagram: DatagramFactory = {
  name: "VirtualTimeLoop datagram",
  run: (body) => withVirtualLoop((loop) => datagramPair(loop, HOST, body)),
};

export const DATAGRAM_FACTORIES: DatagramFactory[] = [
  udp,
  simulatedDatagram,
  virtualDatagram,
];
