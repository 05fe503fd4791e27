// Real UDP on 127.0.0.1 through DenoEventLoop.createDatagramEndpoint.
// Needs --allow-net and the `net` unstable feature (deno.json).

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import type { Future } from "../../futures/future.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { createDatagramEndpoint } from "../../transports/_deno_datagram.ts";
import { DenoProactor } from "../../transports/_deno_proactor.ts";
import { DatagramProtocol } from "../../protocols/protocol.ts";
import { PeerLog } from "../../protocols/peer_log.ts";
import type { DatagramTransport } from "../../transports/transport.ts";
import { bytes, text, within } from "./_io_helpers.ts";
import { sleep } from "../../tasks/sleep.ts";

const LOCAL = { hostname: "127.0.0.1", port: 0 };

/** Records datagrams and errors; futures for the n-th datagram and the end. */
class Recorder extends DatagramProtocol {
  readonly events: string[] = [];
  readonly received: [string, Deno.NetAddr][] = [];
  readonly errors: Error[] = [];
  readonly lost: Future<Error | undefined>;
  transport?: DatagramTransport;
  #waiters: [number, Future<void>][] = [];
  #errorWaiters: [number, Future<void>][] = [];
  constructor(readonly loop: DenoEventLoop) {
    super();
    this.lost = loop.createFuture();
  }
  override connectionMade(transport: DatagramTransport) {
    this.transport = transport;
    this.events.push("made");
  }
  override datagramReceived(data: Uint8Array, addr: Deno.Addr) {
    this.events.push(`data ${text(data)}`);
    this.received.push([text(data), addr as Deno.NetAddr]);
    this.#waiters = this.#settle(this.#waiters, this.received.length);
  }
  override errorReceived(exc: Error) {
    this.events.push(`error ${exc.name}`);
    this.errors.push(exc);
    this.#errorWaiters = this.#settle(this.#errorWaiters, this.errors.length);
  }
  override connectionLost(exc?: Error) {
    this.events.push(exc ? `lost ${exc.name}` : "lost");
    this.lost.setResult(exc);
  }
  /** A future done once `n` datagrams have arrived. */
  datagrams(n: number): Future<void> {
    return this.#wait(this.#waiters, n, this.received.length);
  }
  /** A future done once `n` errors have been reported. */
  errorCount(n: number): Future<void> {
    return this.#wait(this.#errorWaiters, n, this.errors.length);
  }
  #wait(list: [number, Future<void>][], n: number, have: number) {
    const f = this.loop.createFuture<void>();
    if (have >= n) f.setResult();
    else list.push([n, f]);
    return f;
  }
  #settle(list: [number, Future<void>][], have: number) {
    for (const [n, f] of list) if (have >= n) f.setResult();
    return list.filter(([n]) => have < n);
  }
}

async function endpoint(
  loop: DenoEventLoop,
  options: Parameters<DenoEventLoop["createDatagramEndpoint"]>[1] = {
    localAddr: LOCAL,
  },
): Promise<[DatagramTransport, Recorder]> {
  return await within(
    loop,
    loop.createDatagramEndpoint(() => new Recorder(loop), options),
  );
}

async function closeAll(loop: DenoEventLoop, ...protocols: Recorder[]) {
  for (const p of protocols) p.transport!.close();
  for (const p of protocols) await within(loop, p.lost);
}

Deno.test("createDatagramEndpoint() sends and receives datagrams with the sender's address", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop);
  const [b, pb] = await endpoint(loop);
  const addrA = a.getExtraInfo("sockname") as Deno.NetAddr;
  const addrB = b.getExtraInfo("sockname") as Deno.NetAddr;
  assertEquals(addrA.transport, "udp");
  assertEquals(addrA.hostname, "127.0.0.1");
  assert(addrA.port > 0);
  assertEquals(a.getExtraInfo("peername"), undefined);
  a.sendto(bytes("ping"), addrB);
  await within(loop, pb.datagrams(1));
  const [data, from] = pb.received[0];
  assertEquals(data, "ping");
  assertEquals([from.hostname, from.port], [addrA.hostname, addrA.port]);
  // Reply to whoever sent it.
  b.sendto(bytes("pong"), from);
  await within(loop, pa.datagrams(1));
  assertEquals(pa.received[0][0], "pong");
  await closeAll(loop, pa, pb);
  assertEquals(pa.events, ["made", "data pong", "lost"]);
  assertEquals(pb.events, ["made", "data ping", "lost"]);
  loop.close();
});

Deno.test("createDatagramEndpoint() with remoteAddr sends without an address and hears only its peer", async () => {
  const loop = new DenoEventLoop();
  const [server, ps] = await endpoint(loop);
  const [stranger, pstranger] = await endpoint(loop);
  const serverAddr = server.getExtraInfo("sockname") as Deno.NetAddr;
  const [client, pc] = await endpoint(loop, {
    localAddr: LOCAL,
    remoteAddr: { hostname: "127.0.0.1", port: serverAddr.port },
  });
  assertEquals(client.getExtraInfo("peername"), {
    transport: "udp",
    hostname: "127.0.0.1",
    port: serverAddr.port,
  });
  client.sendto(bytes("hello"));
  await within(loop, ps.datagrams(1));
  const clientAddr = ps.received[0][1];
  // A stranger's datagram is dropped; the server's reply arrives.
  stranger.sendto(bytes("spam"), clientAddr);
  server.sendto(bytes("welcome"), clientAddr);
  await within(loop, pc.datagrams(1));
  assertEquals(pc.received.map(([d]) => d), ["welcome"]);
  assertThrows(
    () => client.sendto(bytes("x"), { ...clientAddr }),
    RangeError,
    "Cannot call sendto(): the endpoint only sends to 127.0.0.1:",
  );
  await closeAll(loop, ps, pstranger, pc);
  loop.close();
});

Deno.test("createDatagramEndpoint() resolves a remote host name such as localhost", async () => {
  const loop = new DenoEventLoop();
  const [server, ps] = await endpoint(loop);
  const port = (server.getExtraInfo("sockname") as Deno.NetAddr).port;
  const [client, pc] = await endpoint(loop, {
    localAddr: LOCAL,
    remoteAddr: { hostname: "localhost", port },
  });
  // The name given is accepted as well as the address it resolved to.
  client.sendto(bytes("a"), { transport: "udp", hostname: "localhost", port });
  client.sendto(bytes("b"));
  await within(loop, ps.datagrams(2));
  assertEquals(ps.received.map(([d]) => d).sort(), ["a", "b"]);
  await closeAll(loop, ps, pc);
  loop.close();
});

Deno.test("DatagramTransport.sendto() reports a bad address to errorReceived and stays open", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop);
  const [b, pb] = await endpoint(loop);
  a.sendto(bytes("nowhere"), {
    transport: "udp",
    hostname: "127.0.0.1",
    port: 0,
  });
  await within(loop, pa.errorCount(1));
  assertInstanceOf(pa.errors[0], Error);
  assertEquals(a.isClosing(), false);
  a.sendto(bytes("still here"), b.getExtraInfo("sockname") as Deno.NetAddr);
  await within(loop, pb.datagrams(1));
  assertEquals(pb.received[0][0], "still here");
  await closeAll(loop, pa, pb);
  assertEquals(pa.events, ["made", "error " + pa.errors[0].name, "lost"]);
  loop.close();
});

Deno.test("DatagramTransport.sendto() of a datagram too long for UDP reports the system's error, naming the size and address, to errorReceived and stays open", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop);
  const [b, pb] = await endpoint(loop);
  const addrB = b.getExtraInfo("sockname") as Deno.NetAddr;
  // IPv4 carries at most 65507 bytes of UDP payload (asyncio's
  // error_received gets EMSGSIZE).
  a.sendto(new Uint8Array(65508), addrB);
  a.sendto(bytes("fits"), addrB);
  await within(loop, pa.errorCount(1));
  assertEquals(
    pa.errors[0].message.startsWith(
      `Cannot send a datagram of 65508 bytes to 127.0.0.1:${addrB.port}: `,
    ),
    true,
    pa.errors[0].message,
  );
  assertInstanceOf(pa.errors[0].cause, Error);
  // The system's error code stays, as on the error Deno's send() throws.
  assertEquals((pa.errors[0] as { code?: string }).code, "EMSGSIZE");
  await within(loop, pb.datagrams(1));
  assertEquals(pb.received.map(([d]) => d), ["fits"]);
  assertEquals(a.isClosing(), false);
  await closeAll(loop, pa, pb);
  loop.close();
});

Deno.test("DatagramTransport.sendto() rejects misuse at once", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop);
  const addr = a.getExtraInfo("sockname") as Deno.NetAddr;
  assertThrows(
    () => a.sendto("text" as unknown as Uint8Array, addr),
    TypeError,
    'Cannot call sendto(): data must be a Uint8Array, received "text"',
  );
  assertThrows(
    () => a.sendto(bytes("x")),
    TypeError,
    "no remote address",
  );
  assertThrows(
    () => a.sendto(bytes("x"), "127.0.0.1:9" as unknown as Deno.Addr),
    TypeError,
  );
  // A malformed address is the caller's error, thrown at once (as
  // socket.sendto() raises TypeError or OverflowError in asyncio, and as
  // the simulated endpoints do); only the network's refusals reach
  // errorReceived.
  assertThrows(
    () => a.sendto(bytes("x"), { ...addr, port: 70000 }),
    RangeError,
    "Cannot call sendto(): port must be an integer from 0 to 65535, received 70000",
  );
  assertThrows(
    () => a.sendto(bytes("x"), { ...addr, port: "9" as unknown as number }),
    TypeError,
    "Cannot call sendto(): port must be a number, received string",
  );
  assertThrows(
    () => a.sendto(bytes("x"), { ...addr, hostname: 7 as unknown as string }),
    TypeError,
    "Cannot call sendto(): host must be a string, received number",
  );
  assertThrows(
    () => a.sendto(bytes("x"), { ...addr, hostname: "" }),
    RangeError,
    "Cannot call sendto(): host must not be empty",
  );
  await within(loop, Promise.resolve());
  assertEquals(pa.errors, []);
  a.close();
  assertThrows(
    () => a.sendto(bytes("x"), addr),
    InvalidStateError,
    "Cannot call sendto(): transport is closing",
  );
  await within(loop, pa.lost);
  loop.close();
});

Deno.test("DatagramTransport.close() sends what is queued, then calls connectionLost once", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop);
  const [b, pb] = await endpoint(loop);
  const addrB = b.getExtraInfo("sockname") as Deno.NetAddr;
  for (const word of ["one", "two", "three"]) a.sendto(bytes(word), addrB);
  assert(a.getWriteBufferSize() > 0);
  a.close();
  a.close();
  assert(a.isClosing());
  assertEquals(await within(loop, pa.lost), undefined);
  await within(loop, pb.datagrams(3));
  assertEquals(pb.received.map(([d]) => d), ["one", "two", "three"]);
  assertEquals(a.getWriteBufferSize(), 0);
  assertEquals(pa.events, ["made", "lost"]);
  await closeAll(loop, pb);
  loop.close();
});

Deno.test("DatagramTransport.abort() drops the queue and calls connectionLost(undefined)", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop);
  const target = { transport: "udp" as const, hostname: "127.0.0.1", port: 9 };
  for (let i = 0; i < 5; i++) a.sendto(new Uint8Array(100), target);
  a.abort();
  assertEquals(a.getWriteBufferSize(), 108); // only the one in flight
  assertEquals(await within(loop, pa.lost), undefined);
  assertEquals(pa.events, ["made", "lost"]);
  loop.close();
});

Deno.test("DatagramTransport bounds its send queue and pauses the protocol above the high-water mark", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop);
  const [b, pb] = await endpoint(loop);
  const calls: string[] = [];
  pa.pauseWriting = () => calls.push("pause");
  pa.resumeWriting = () => calls.push("resume");
  const addrB = b.getExtraInfo("sockname") as Deno.NetAddr;
  const datagram = new Uint8Array(60_000);
  for (let i = 0; i < 20; i++) a.sendto(datagram, addrB);
  // 20 × 60 000 bytes is more than the 1 MiB queue: the excess is dropped.
  assert(a.getWriteBufferSize() <= 1024 * 1024);
  await within(loop, pa.errorCount(1));
  assertEquals(pa.errors[0].name, "WouldBlock");
  assertEquals(calls, ["pause"]);
  a.close();
  await within(loop, pa.lost);
  // The queue drained before connectionLost: the pause is paired, as
  // asyncio's datagram transport resumes its protocol while it flushes.
  assertEquals(calls, ["pause", "resume"]);
  await closeAll(loop, pb);
  loop.close();
});

Deno.test("DatagramTransport sends an empty datagram and counts each datagram's 8-byte header in its buffer, as asyncio does", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop);
  const [b, pb] = await endpoint(loop);
  const calls: string[] = [];
  pa.pauseWriting = () => calls.push("pause");
  pa.resumeWriting = () => calls.push("resume");
  const addrB = b.getExtraInfo("sockname") as Deno.NetAddr;
  a.sendto(new Uint8Array(0), addrB);
  assertEquals(a.getWriteBufferSize(), 8);
  a.sendto(bytes("abc"), addrB);
  assertEquals(a.getWriteBufferSize(), 8 + 11);
  await within(loop, pb.datagrams(2));
  assertEquals(pb.received.map(([d]) => d), ["", "abc"]);
  // Empty datagrams fill the queue too: the protocol is paused above the
  // high-water mark (64 KiB, 8192 headers), and the queue stays bounded.
  for (let i = 0; i < 200_000; i++) a.sendto(new Uint8Array(0), addrB);
  assertEquals(calls[0], "pause");
  assert(a.getWriteBufferSize() <= 1024 * 1024);
  await within(loop, pa.errorCount(1));
  assertEquals(pa.errors[0].name, "WouldBlock");
  a.abort();
  await within(loop, pa.lost);
  await closeAll(loop, pb);
  loop.close();
});

Deno.test("DatagramTransport reports the datagrams a full queue drops in one turn of the loop once, counting them, not with an error each", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop);
  const target = { transport: "udp" as const, hostname: "127.0.0.1", port: 9 };
  const sends = 300_000;
  for (let i = 0; i < sends; i++) a.sendto(new Uint8Array(0), target);
  const queued = a.getWriteBufferSize();
  const dropped = sends - queued / 8;
  assert(dropped > 100_000, `${dropped} dropped`);
  await within(loop, pa.errorCount(1));
  await within(
    loop,
    loop.createTask(() => new Promise<void>((ok) => setTimeout(ok, 50))),
  );
  assertEquals(pa.errors.length, 1);
  assertEquals(pa.errors[0].name, "WouldBlock");
  assertStringIncludes(
    pa.errors[0].message,
    `Cannot queue the datagram: the send queue holds ${queued} of 1048576 bytes (data and 8-byte headers), received 0 bytes more; ${
      dropped - 1
    } more datagrams were dropped before this report`,
  );
  a.abort();
  await within(loop, pa.lost);
  loop.close();
});

Deno.test("DatagramTransport aborted in the turn its full queue dropped datagrams still reports them to errorReceived, before connectionLost", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop);
  const target = { transport: "udp" as const, hostname: "127.0.0.1", port: 9 };
  for (let i = 0; i < 131_072 + 3; i++) a.sendto(new Uint8Array(0), target);
  a.abort();
  await within(loop, pa.lost);
  assertEquals(pa.events, ["made", "error WouldBlock", "lost"]);
  assertStringIncludes(
    pa.errors[0].message,
    "; 2 more datagrams were dropped before this report",
  );
  loop.close();
});

Deno.test("DatagramTransport delivers each datagram whole, in a buffer of its own size: the largest UDP payload arrives uncut, a 3-byte one holds no 64 KiB", async () => {
  // IPv6 carries up to 65527 bytes, 20 more than IPv4's 65507.
  const host = hasIpv6Loopback() ? "::1" : "127.0.0.1";
  const largest = host === "::1" ? 65527 : 65507;
  const loop = new DenoEventLoop();
  const local = { localAddr: { hostname: host, port: 0 } };
  const [a, pa] = await endpoint(loop, local);
  const [b, pb] = await endpoint(loop, local);
  const got: Uint8Array[] = [];
  const record = pb.datagramReceived.bind(pb);
  pb.datagramReceived = (data, addr) => {
    got.push(data);
    record(data, addr);
  };
  const to = b.getExtraInfo("sockname") as Deno.NetAddr;
  a.sendto(new Uint8Array(largest).fill(7), to);
  a.sendto(bytes("abc"), to);
  await within(loop, pb.datagrams(2));
  assertEquals(got.map((d) => d.length), [largest, 3]);
  assertEquals(got[0].at(-1), 7);
  // What a protocol keeps of a datagram costs what the peer sent.
  assertEquals(got[1].buffer.byteLength, 3);
  await closeAll(loop, pa, pb);
  loop.close();
});

Deno.test("createDatagramEndpoint() calls connectionMade before any datagram and fails when the factory throws", async () => {
  const loop = new DenoEventLoop();
  const error = await within(
    loop,
    loop.createDatagramEndpoint(() => {
      throw new Error("no protocol");
    }, { localAddr: LOCAL }),
  ).catch((e) => e);
  assertEquals(error.message, "no protocol");
  const [a, pa] = await endpoint(loop);
  assertEquals(pa.events, ["made"]);
  assertEquals(pa.transport, a);
  await closeAll(loop, pa);
  loop.close();
});

Deno.test("createDatagramEndpoint() fails with a TypeError that says so when the factory returns no protocol, and reports nothing", async () => {
  const loop = new DenoEventLoop();
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => errors.push(context));
  const error = await within(
    loop,
    loop.createDatagramEndpoint(() => 7 as never, { localAddr: LOCAL }),
  ).catch((e) => e);
  assertInstanceOf(error, TypeError);
  assertEquals(
    error.message,
    "Cannot call createDatagramEndpoint(): protocolFactory must return a protocol (an object with connectionMade()), received 7",
  );
  await within(loop, loop.createTask(() => sleep(0.01)));
  assertEquals(errors, []);
  loop.close();
});

Deno.test("createDatagramEndpoint() checks its options at once", () => {
  const loop = new DenoEventLoop();
  const make = () => new DatagramProtocol();
  assertThrows(
    () =>
      loop.createDatagramEndpoint(make, {
        localAddr: { hostname: "127.0.0.1", port: 70000 },
      }),
    RangeError,
    "port must be an integer from 0 to 65535, received 70000",
  );
  assertThrows(
    () =>
      loop.createDatagramEndpoint(make, {
        remoteAddr: { hostname: 1 } as never,
      }),
    TypeError,
    "remoteAddr.hostname must be a string",
  );
  for (const name of ["localAddr", "remoteAddr"]) {
    assertThrows(
      () =>
        loop.createDatagramEndpoint(make, {
          [name]: { hostname: "", port: 9 },
        }),
      RangeError,
      `Cannot create a datagram endpoint: ${name}.hostname must not be empty, received ""`,
    );
  }
  loop.close();
  assertThrows(
    () => loop.createDatagramEndpoint(make),
    InvalidStateError,
    "Cannot call createDatagramEndpoint(): the loop is closed",
  );
});

// ---- Connected endpoints, broadcast, multicast ----

/** Whether this machine can bind an IPv6 loopback socket. */
function hasIpv6Loopback(): boolean {
  try {
    Deno.listenDatagram({ transport: "udp", hostname: "::1", port: 0 })
      .close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("createDatagramEndpoint() with only remoteAddr binds the remote's family and loopback, not every interface", async () => {
  const loop = new DenoEventLoop();
  const [server, ps] = await endpoint(loop);
  const port = (server.getExtraInfo("sockname") as Deno.NetAddr).port;
  const [client, pc] = await endpoint(loop, {
    remoteAddr: { hostname: "127.0.0.1", port },
  });
  const local = client.getExtraInfo("sockname") as Deno.NetAddr;
  assertEquals(local.hostname, "127.0.0.1");
  assert(local.port > 0);
  client.sendto(bytes("hi"));
  await within(loop, ps.datagrams(1));
  assertEquals(ps.received[0][1].port, local.port);
  await closeAll(loop, ps, pc);
  if (!hasIpv6Loopback()) {
    console.warn("skipped the ::1 half: this machine has no IPv6 loopback");
  } else {
    const [server6, ps6] = await endpoint(loop, {
      localAddr: { hostname: "::1", port: 0 },
    });
    const port6 = (server6.getExtraInfo("sockname") as Deno.NetAddr).port;
    const [client6, pc6] = await endpoint(loop, {
      remoteAddr: { hostname: "::1", port: port6 },
    });
    assertEquals(
      (client6.getExtraInfo("sockname") as Deno.NetAddr).hostname,
      "::1",
    );
    client6.sendto(bytes("hi6"));
    await within(loop, ps6.datagrams(1));
    await closeAll(loop, ps6, pc6);
  }
  loop.close();
});

Deno.test("createDatagramEndpoint() fails when localAddr and remoteAddr are of different families, as asyncio does", async () => {
  // An IPv4 socket cannot send to an IPv6 address: asyncio finds no
  // (family, address) pair and raises instead of making an endpoint that
  // can never send.
  const loop = new DenoEventLoop();
  const error = await within(
    loop,
    loop.createDatagramEndpoint(() => new Recorder(loop), {
      localAddr: LOCAL,
      remoteAddr: { hostname: "::1", port: 9 },
    }),
  ).catch((e) => e);
  assertInstanceOf(error, RangeError);
  assertEquals(
    error.message,
    "Cannot create a datagram endpoint: localAddr is IPv4 and remoteAddr is IPv6; give both in one family, received localAddr=127.0.0.1:0 remoteAddr=[::1]:9",
  );
  if (!hasIpv6Loopback()) {
    console.warn("skipped the ::1 half: this machine has no IPv6 loopback");
  } else {
    // A remote host name is looked up in localAddr's family.
    const made = await within(
      loop,
      loop.createDatagramEndpoint(() => new Recorder(loop), {
        localAddr: { hostname: "::1", port: 0 },
        remoteAddr: { hostname: "localhost", port: 9 },
      }),
    ).catch((e) => e);
    if (made instanceof Error) {
      // This machine's localhost has no IPv6 address.
      assertInstanceOf(made, Deno.errors.NotFound);
    } else {
      const [transport, protocol] = made;
      const peer = transport.getExtraInfo("peername") as Deno.NetAddr;
      assert(peer.hostname.includes(":"), `IPv6 peer, got ${peer.hostname}`);
      await closeAll(loop, protocol);
    }
  }
  loop.close();
});

Deno.test("createDatagramEndpoint() fails to bind an address in use with Deno's error naming the address, and makes no protocol", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop);
  const { port } = a.getExtraInfo("sockname") as Deno.NetAddr;
  let made = 0;
  const error = await within(
    loop,
    loop.createDatagramEndpoint(() => {
      made++;
      return new Recorder(loop);
    }, { localAddr: { hostname: "127.0.0.1", port } }),
  ).catch((e) => e);
  assertInstanceOf(error, Deno.errors.AddrInUse);
  assertEquals(
    error.message.startsWith(
      `Cannot create a datagram endpoint on 127.0.0.1:${port}: `,
    ),
    true,
    error.message,
  );
  assertInstanceOf(error.cause, Deno.errors.AddrInUse);
  assertEquals(error.code, "EADDRINUSE");
  assertEquals(made, 0);
  await closeAll(loop, pa);
  loop.close();
});

Deno.test("createDatagramEndpoint() with an IPv6 remoteAddr written long-hand hears its peer and reports the address as the system does", async () => {
  if (!hasIpv6Loopback()) {
    console.warn("skipped: this machine has no IPv6 loopback");
    return;
  }
  const loop = new DenoEventLoop();
  const [server, ps] = await endpoint(loop, {
    localAddr: { hostname: "::1", port: 0 },
  });
  const port = (server.getExtraInfo("sockname") as Deno.NetAddr).port;
  const [client, pc] = await endpoint(loop, {
    remoteAddr: { hostname: "0:0:0:0:0:0:0:1", port },
  });
  assertEquals(client.getExtraInfo("peername"), {
    transport: "udp",
    hostname: "::1",
    port,
  });
  // The form given is still accepted by sendto().
  client.sendto(bytes("hi"), {
    transport: "udp",
    hostname: "0:0:0:0:0:0:0:1",
    port,
  });
  await within(loop, ps.datagrams(1));
  server.sendto(bytes("reply"), ps.received[0][1]);
  await within(loop, pc.datagrams(1));
  assertEquals(pc.received[0][0], "reply");
  await closeAll(loop, ps, pc);
  loop.close();
});

Deno.test("DatagramTransport.sendto() refuses broadcast addresses without allowBroadcast, as a socket without SO_BROADCAST does", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop);
  const [b, pb] = await endpoint(loop);
  const addrB = b.getExtraInfo("sockname") as Deno.NetAddr;
  a.sendto(bytes("x"), {
    transport: "udp",
    hostname: "255.255.255.255",
    port: 9,
  });
  // The loopback network's own broadcast address, known from the
  // interfaces (the tests run with --allow-sys).
  a.sendto(bytes("y"), {
    transport: "udp",
    hostname: "127.255.255.255",
    port: 9,
  });
  a.sendto(bytes("z"), addrB);
  await within(loop, pa.errorCount(2));
  await within(loop, pb.datagrams(1));
  assertEquals(pa.errors.map((e) => e.name), [
    "PermissionDenied",
    "PermissionDenied",
  ]);
  assertEquals(
    pa.errors[0].message,
    "Cannot send to 255.255.255.255:9: it is a broadcast address and the endpoint was made without allowBroadcast: true, received 1 bytes",
  );
  assertEquals(pb.received.map(([d]) => d), ["z"]);
  assertEquals(a.isClosing(), false);
  await closeAll(loop, pa, pb);
  await assertRejects(
    () =>
      within(
        loop,
        loop.createDatagramEndpoint(() => new DatagramProtocol(), {
          remoteAddr: { hostname: "255.255.255.255", port: 9 },
        }),
      ),
    Deno.errors.PermissionDenied,
    "remoteAddr 255.255.255.255:9 is a broadcast address",
  );
  loop.close();
});

Deno.test("createDatagramEndpoint() with allowBroadcast sends to the loopback network's broadcast address", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop, {
    localAddr: LOCAL,
    allowBroadcast: true,
  });
  const [b, pb] = await endpoint(loop);
  a.sendto(bytes("all"), {
    transport: "udp",
    hostname: "127.255.255.255",
    port: 9,
  });
  // Sends go in order: once the next one arrives, the broadcast was sent.
  a.sendto(bytes("next"), b.getExtraInfo("sockname") as Deno.NetAddr);
  await within(loop, pb.datagrams(1));
  assertEquals(pa.errors, []);
  await closeAll(loop, pa, pb);
  assertThrows(
    () =>
      loop.createDatagramEndpoint(() => new DatagramProtocol(), {
        allowBroadcast: "yes" as never,
      }),
    TypeError,
    "allowBroadcast must be a boolean, received string",
  );
  loop.close();
});

const GROUP = "239.255.77.1";

Deno.test("DatagramTransport.joinMulticast() delivers the group's datagrams on loopback; leaveMulticast() leaves the group", async () => {
  const loop = new DenoEventLoop();
  // Bound to the group's address: it hears the group and nothing else, and
  // is not open on every interface.
  const [receiver, pr] = await endpoint(loop, {
    localAddr: { hostname: GROUP, port: 0 },
  });
  const port = (receiver.getExtraInfo("sockname") as Deno.NetAddr).port;
  try {
    await within(loop, receiver.joinMulticast(GROUP, "127.0.0.1"));
  } catch (error) {
    console.warn(
      `skipped: the kernel refused to join ${GROUP} on 127.0.0.1 (${error})`,
    );
    await closeAll(loop, pr);
    loop.close();
    return;
  }
  const [sender, ps] = await endpoint(loop);
  sender.sendto(bytes("to the group"), {
    transport: "udp",
    hostname: GROUP,
    port,
  });
  await within(loop, pr.datagrams(1));
  assertEquals(pr.received[0][0], "to the group");
  assertEquals(
    pr.received[0][1].port,
    (sender.getExtraInfo("sockname") as Deno.NetAddr).port,
  );
  assertThrows(
    () => receiver.joinMulticast(GROUP, "127.0.0.1"),
    InvalidStateError,
    "already joined 239.255.77.1",
  );
  await within(loop, receiver.leaveMulticast(GROUP, "127.0.0.1"));
  assertThrows(
    () => receiver.leaveMulticast(GROUP, "127.0.0.1"),
    InvalidStateError,
    "has not joined 239.255.77.1",
  );
  await closeAll(loop, pr, ps);
  loop.close();
});

Deno.test("DatagramTransport.joinMulticast() checks the group and interface at once", async () => {
  const loop = new DenoEventLoop();
  const [t, p] = await endpoint(loop);
  assertThrows(
    () => t.joinMulticast("10.0.0.1"),
    RangeError,
    'multicast address, received "10.0.0.1"',
  );
  assertThrows(
    () => t.joinMulticast(1 as never),
    TypeError,
    "group must be a string, received number",
  );
  assertThrows(
    () => t.joinMulticast(GROUP, 3),
    TypeError,
    "iface must be the interface's IPv4 address, received 3",
  );
  assertThrows(
    () => t.joinMulticast("ff02::1:3", "lo"),
    TypeError,
    "iface must be the interface's index",
  );
  assertThrows(
    () => t.leaveMulticast(GROUP),
    InvalidStateError,
    "has not joined",
  );
  t.close();
  assertThrows(
    () => t.joinMulticast(GROUP),
    InvalidStateError,
    "transport is closing",
  );
  await within(loop, p.lost);
  loop.close();
});

Deno.test("DatagramTransport.joinMulticast() joins an IPv6 group by interface index", async () => {
  if (!hasIpv6Loopback()) {
    console.warn("skipped: this machine has no IPv6 loopback");
    return;
  }
  const loop = new DenoEventLoop();
  const [t, p] = await endpoint(loop, {
    localAddr: { hostname: "::1", port: 0 },
  });
  try {
    await within(loop, t.joinMulticast("ff02::1:3", 1));
  } catch (error) {
    console.warn(
      `skipped: the kernel refused to join ff02::1:3 on interface 1 (${error})`,
    );
    await closeAll(loop, p);
    loop.close();
    return;
  }
  await within(loop, t.leaveMulticast("ff02::1:3", 1));
  // Joined again, then left by closing.
  await within(loop, t.joinMulticast("ff02::1:3", 1));
  await closeAll(loop, p);
  loop.close();
});

// ---- the proactor: pending work and completions after the loop closed ----

/** Waits, a millisecond at a time and for at most two seconds, for `ok()`. */
async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !ok(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

Deno.test("DatagramTransport left open: the loop's close() closes its socket, calls nothing when a datagram arrives after, and reports it", async () => {
  const loop = new DenoEventLoop();
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, context) => errors.push(context));
  const [t, p] = await endpoint(loop);
  const socket = t.getExtraInfo("socket") as Deno.DatagramConn;
  const addr = t.getExtraInfo("sockname") as Deno.NetAddr;
  loop.close();
  const sender = Deno.listenDatagram({ ...LOCAL, transport: "udp" });
  await sender.send(bytes("late"), addr);
  sender.close();
  await until(() => t.isClosing());
  assert(t.isClosing());
  assertThrows(() => socket.close(), Deno.errors.BadResource);
  assertEquals(p.events, ["made"]);
  assertEquals(errors.map((e) => e.message), [
    "The event loop was closed with 1 open transport and 0 servers still open: close them before closing the loop",
  ]);
});

Deno.test("createDatagramEndpoint() counts its lookup, receive and sends in the proactor's pending work", async () => {
  const loop = new DenoEventLoop();
  const proactor = new DenoProactor(loop);
  const io = { loop, proactor };
  const [server, p] = await within(
    loop,
    createDatagramEndpoint(io, () => new Recorder(loop), { localAddr: LOCAL }),
  );
  assertEquals(proactor.pending, 1); // its receive
  const { port } = server.getExtraInfo("sockname") as Deno.NetAddr;
  const connecting = createDatagramEndpoint(io, () => new Recorder(loop), {
    localAddr: LOCAL,
    remoteAddr: { hostname: "localhost", port },
  });
  assertEquals(proactor.pending, 2); // and the lookup of "localhost"
  const [client, q] = await within(loop, connecting);
  client.sendto(bytes("hi"));
  assertEquals(proactor.pending, 3); // two receives and a send
  await within(loop, p.datagrams(1));
  await closeAll(loop, p, q);
  assertEquals(proactor.pending, 0);
  loop.close();
});

/**
 * Sends `count` datagrams of `size` bytes to `to` from a socket of its own,
 * a few at a time, then gives the loop time to take them.
 */
async function flood(to: Deno.NetAddr, count: number, size: number) {
  const sender = Deno.listenDatagram({ ...LOCAL, transport: "udp" });
  const payload = new Uint8Array(size);
  for (let i = 0; i < count; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, () => sender.send(payload, to)),
    );
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  sender.close();
}

Deno.test("a DatagramProtocol whose datagramReceived() throws at every datagram logs within what the peers sent", async () => {
  const loop = new DenoEventLoop();
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, context) => errors.push(context));
  let calls = 0;
  const lost = loop.createFuture<void>();
  // A plain protocol: one that holds the loop would print differently as
  // the test goes on.
  class Throwing extends DatagramProtocol {
    override datagramReceived(): void {
      calls++;
      throw new Error("cannot take this");
    }
    override connectionLost(): void {
      lost.setResult();
    }
  }
  const [t] = await within(
    loop,
    loop.createDatagramEndpoint(() => new Throwing(), { localAddr: LOCAL }),
  );
  const count = 3000;
  const task = loop.createTask(() =>
    flood(t.getExtraInfo("sockname") as Deno.NetAddr, count, 0)
  );
  await within(loop, task);
  await within(loop, loop.createTask(() => until(() => calls >= count / 2)));
  assert(calls > 100, `only ${calls} datagrams arrived`);
  t.close();
  await within(loop, lost);
  // Each datagram, empty as it is, pays for 8 characters: its UDP header;
  // the first failure, reported whole, is not the peers' to pay for.
  const logged = errors.reduce((n, c) => n + PeerLog.sizeOf(c), 0);
  assert(
    logged <= calls * 8 + PeerLog.RESERVE + PeerLog.sizeOf(errors[0]),
    `${logged} characters of log for ${calls} empty datagrams`,
  );
  assert(errors.length < calls, `${errors.length} reports`);
  assertEquals(errors[0].message, "Exception in protocol.datagramReceived()");
  assert((errors[0].exception as Error).stack !== undefined);
  assertEquals(errors[0].transport, t);
  loop.close();
});

/**
 * A loop whose reserve of peer-log space (see `PeerLog`) another
 * endpoint's, or a server's, peers spent; and what its handler gets.
 */
function spentLoop(): [DenoEventLoop, ExceptionContext[]] {
  const loop = new DenoEventLoop();
  loop.setExceptionHandler(() => {});
  const spent = new PeerLog({ loop, perKind: Number.MAX_SAFE_INTEGER });
  for (let i = 0; i < 200; i++) {
    spent.report("x", { message: "x".repeat(1000) });
  }
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, context) => errors.push(context));
  return [loop, errors];
}

Deno.test("a DatagramProtocol's first datagramReceived() failure is logged whole, with its stack, even once the loop's peer logs spent their reserve and the datagram is empty", async () => {
  const [loop, errors] = spentLoop();
  let calls = 0;
  class Throwing extends DatagramProtocol {
    override datagramReceived(): void {
      calls++;
      throw new Error("the developer's bug");
    }
  }
  const [t] = await within(
    loop,
    loop.createDatagramEndpoint(() => new Throwing(), { localAddr: LOCAL }),
  );
  const sender = Deno.listenDatagram({ ...LOCAL, transport: "udp" });
  const to = t.getExtraInfo("sockname") as Deno.NetAddr;
  await within(loop, loop.createTask(() => sender.send(new Uint8Array(0), to)));
  sender.close();
  await within(loop, loop.createTask(() => until(() => calls >= 1)));
  t.close();
  assertEquals(calls, 1);
  assertEquals(errors.map((c) => c.message), [
    "Exception in protocol.datagramReceived()",
  ]);
  assertStringIncludes(
    (errors[0].exception as Error).stack!,
    "Error: the developer's bug\n    at ",
  );
  assertEquals(errors[0].transport, t);
  await within(loop, loop.createTask(() => until(() => t.isClosing())));
  loop.close();
});

Deno.test("DatagramTransport sums up the failures it held back when it closes, paid for by what the peers sent after the last one", async () => {
  const [loop, errors] = spentLoop();
  let calls = 0;
  const lost = loop.createFuture<void>();
  class Picky extends DatagramProtocol {
    override datagramReceived(data: Uint8Array): void {
      calls++;
      if (data[0] === 0x78) throw new Error("cannot take an x");
    }
    override connectionLost(): void {
      lost.setResult();
    }
  }
  const [t] = await within(
    loop,
    loop.createDatagramEndpoint(() => new Picky(), { localAddr: LOCAL }),
  );
  const to = t.getExtraInfo("sockname") as Deno.NetAddr;
  const sender = Deno.listenDatagram({ ...LOCAL, transport: "udp" });
  const send = async (data: Uint8Array, n: number, total: number) => {
    for (let i = 0; i < n; i++) await sender.send(data, to);
    await until(() => calls >= total);
  };
  await within(loop, loop.createTask(() => send(bytes("x"), 20, 20)));
  // Then the peer sends 10 KB the protocol takes.
  await within(
    loop,
    loop.createTask(() => send(new Uint8Array(100), 100, 120)),
  );
  sender.close();
  assertEquals(calls, 120);
  t.close();
  await within(loop, lost);
  assertEquals(errors[0].message, "Exception in protocol.datagramReceived()");
  assertMatch(
    errors.at(-1)!.message,
    /^Datagram endpoint: \d+ problems were counted but not logged \(19 datagramReceived\(\) failures\)$/,
  );
  loop.close();
});

Deno.test("DatagramTransport keeps receiving after a datagram sent to a port nobody listens on (asyncio's test_datagram_send_to_non_listening_address)", async () => {
  const loop = new DenoEventLoop();
  const [a, pa] = await endpoint(loop);
  const [b, pb] = await endpoint(loop);
  const [c, pc] = await endpoint(loop);
  const addrA = a.getExtraInfo("sockname") as Deno.NetAddr;
  const addrB = b.getExtraInfo("sockname") as Deno.NetAddr;
  const addrC = c.getExtraInfo("sockname") as Deno.NetAddr;
  // A port just freed: nothing listens there any more.
  c.abort();
  await within(loop, pc.lost);
  a.sendto(bytes("a"), addrB);
  await within(loop, pb.datagrams(1));
  b.sendto(bytes("b"), addrA);
  await within(loop, pa.datagrams(1));
  a.sendto(bytes("c"), addrC);
  await within(loop, loop.createTask(() => sleep(0.05)));
  b.sendto(bytes("d"), addrA);
  await within(loop, pa.datagrams(2));
  assertEquals(pa.received.map(([data]) => data), ["b", "d"]);
  assert(!a.isClosing());
  await closeAll(loop, pa, pb);
  loop.close();
});
