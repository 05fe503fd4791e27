// Multicast on simulated datagram endpoints: membership decides who gets
// a group's datagrams, with the same faults as unicast.

import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import type {
  DatagramEndpointOptions,
  EventLoop,
  ExceptionContext,
} from "../../loop/event_loop.ts";
import { PeerLog } from "../../protocols/peer_log.ts";
import { DatagramProtocol } from "../../protocols/protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { DatagramTransport } from "../../transports/transport.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { Simulation } from "../../testing/simulation.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

const GROUP = "239.1.2.3";

/** Binds `port` on `loop`'s host; what arrives is pushed to `got`. */
async function bind(
  loop: EventLoop,
  port: number,
  got: string[],
): Promise<DatagramTransport> {
  class Sink extends DatagramProtocol {
    override datagramReceived(d: Uint8Array, from: Deno.Addr) {
      const a = from as Deno.NetAddr;
      got.push(`${new TextDecoder().decode(d)} ${a.hostname}:${a.port}`);
    }
  }
  const [t] = await loop.createDatagramEndpoint(() => new Sink(), {
    localAddr: { hostname: "0.0.0.0", port },
  });
  return t;
}

/**
 * Members `a` and `b` (and the sender itself) join the group on port
 * 5000; `c` is on the port without joining, `d` joined on another port.
 * The sender sends `count` datagrams, then (after `leaveAfter` of them) `b`
 * leaves.
 */
function scenario(
  sim: Simulation,
  got: Record<string, string[]>,
  count: number,
  leaveAfter = Infinity,
): void {
  // b's membership ends synchronously; the future is done already.
  let bLeaves: (() => unknown) | null = null;
  for (const name of ["a", "b", "c", "d"]) {
    got[name] = [];
    sim.host(name, async (loop) => {
      const t = await bind(loop, name === "d" ? 5001 : 5000, got[name]);
      if (name !== "c") await t.joinMulticast(GROUP);
      if (name === "b") bLeaves = () => t.leaveMulticast(GROUP);
    });
  }
  got.src = [];
  sim.client("src", async (loop) => {
    const t = await bind(loop, 5000, got.src);
    await t.joinMulticast(GROUP, "10.0.0.5");
    await sleep(0.1);
    for (let i = 0; i < count; i++) {
      if (i === leaveAfter) bLeaves!();
      t.sendto(new TextEncoder().encode(`${i}`), {
        transport: "udp",
        hostname: GROUP,
        port: 5000,
      });
      await sleep(0.01);
    }
    await sleep(1);
    t.close();
  });
}

Deno.test("SimDatagram multicast reaches every member on the port, the sender's host too, and no one else", async () => {
  const sim = new Simulation({ seed: 1 });
  const got: Record<string, string[]> = {};
  scenario(sim, got, 10, 6);
  await sim.run();
  const all = Array.from({ length: 10 }, (_, i) => `${i} 10.0.0.5:5000`);
  assertEquals(got.a, all);
  assertEquals(got.src, all);
  // b left after six.
  assertEquals(got.b, all.slice(0, 6));
  assertEquals(got.c, []);
  assertEquals(got.d, []);
  assert(sim.trace.some((e) => e.kind === "leave" && e.host === "b"));
});

Deno.test("SimDatagram multicast: each member's copy meets its own faults and partitions", async () => {
  const sim = new Simulation({
    seed: 7,
    faults: { drop: 0.3, duplicate: 0.3 },
  });
  const got: Record<string, string[]> = {};
  scenario(sim, got, 100);
  await sim.run();
  for (const member of ["a", "b"]) {
    const distinct = new Set(got[member]).size;
    assert(distinct > 30 && distinct < 100, `${member}: ${distinct} distinct`);
    assert(got[member].length > distinct, `${member}: nothing duplicated`);
  }
  assertNotEquals(got.a, got.b);

  const cut = new Simulation({ seed: 7 });
  const got2: Record<string, string[]> = {};
  scenario(cut, got2, 10);
  cut.host("operator", () => cut.partition("src", "b"));
  await cut.run();
  assertEquals(got2.a.length, 10);
  assertEquals(got2.b, []);
});

Deno.test("SimDatagram.joinMulticast() and leaveMulticast() check their arguments and state", async () => {
  const sim = new Simulation({ seed: 2 });
  sim.client("h", async (loop) => {
    const t = await bind(loop, 5000, []);
    assertThrows(() => t.joinMulticast("10.0.0.1"), RangeError, "multicast");
    assertThrows(() => t.joinMulticast(7 as never), TypeError, "string");
    assertThrows(() => t.joinMulticast(GROUP, 3 as never), TypeError, "IPv4");
    assertThrows(
      () => t.leaveMulticast(GROUP),
      InvalidStateError,
      "not joined",
    );
    await t.joinMulticast(GROUP, "0.0.0.0");
    assertThrows(
      () => t.joinMulticast(GROUP, "0.0.0.0"),
      InvalidStateError,
      "already joined",
    );
    await assertRejects(
      async () => await t.joinMulticast("ff02::1"),
      Deno.errors.AddrNotAvailable,
      "IPv4 addresses only",
    );
    await assertRejects(
      async () => await t.joinMulticast("239.9.9.9", "10.0.0.77"),
      Deno.errors.AddrNotAvailable,
      "not the address of host h",
    );
    await t.leaveMulticast(GROUP, "0.0.0.0");
    t.close();
    assertThrows(() => t.joinMulticast(GROUP), InvalidStateError, "closing");
  });
  await sim.run();
});

Deno.test("SimDatagram endpoints on one port and different addresses of a host each take only what is sent to their address", async () => {
  const sim = new Simulation({ seed: 1 });
  const got: string[] = [];
  const sink = (name: string) => () => {
    const p = new DatagramProtocol();
    p.datagramReceived = (d) =>
      got.push(`${name} got ${new TextDecoder().decode(d)}`);
    return p;
  };
  const send = (t: DatagramTransport, text: string, hostname: string) =>
    t.sendto(new TextEncoder().encode(text), {
      transport: "udp",
      hostname,
      port: 5000,
    });
  sim.host("a", async (loop) => {
    const [own] = await loop.createDatagramEndpoint(sink("own"), {
      localAddr: { hostname: "a", port: 5000 },
    });
    const [lo] = await loop.createDatagramEndpoint(sink("lo"), {
      localAddr: { hostname: "127.0.0.1", port: 5000 },
    });
    await assertRejects(
      () =>
        loop.createDatagramEndpoint(sink("any"), {
          localAddr: { hostname: "0.0.0.0", port: 5000 },
        }),
      Deno.errors.AddrInUse,
    );
    // Only loopback on 5001: what another host sends there finds no one.
    await loop.createDatagramEndpoint(sink("lo 5001"), {
      localAddr: { hostname: "127.0.0.1", port: 5001 },
    });
    const [me] = await loop.createDatagramEndpoint(
      () => new DatagramProtocol(),
    );
    send(me, "from a to loopback", "127.0.0.1");
    send(me, "from a to a", "a");
    await sleep(1);
    lo.close();
    await sleep(1);
    own.close();
    me.close();
  });
  sim.client("b", async (loop) => {
    const [t] = await loop.createDatagramEndpoint(() => new DatagramProtocol());
    await sleep(0.5);
    send(t, "from b", "a");
    t.sendto(new TextEncoder().encode("from b to 5001"), {
      transport: "udp",
      hostname: "a",
      port: 5001,
    });
    await sleep(1);
    send(t, "from b after lo closed", "a");
    await sleep(1);
    t.close();
  });
  await sim.run();
  assertEquals(got.sort(), [
    "lo got from a to loopback",
    "own got from a to a",
    "own got from b",
    "own got from b after lo closed",
  ]);
});

// ---- Behaving as the Deno loop's endpoints do ----

const bytes = (s: string) => new TextEncoder().encode(s);

/** Records what an endpoint's protocol is told. */
class Recorder extends DatagramProtocol {
  readonly events: string[] = [];
  readonly errors: Error[] = [];
  override connectionMade() {
    this.events.push("made");
  }
  override datagramReceived(data: Uint8Array, addr: Deno.Addr) {
    const { hostname, port } = addr as Deno.NetAddr;
    this.events.push(
      `data ${new TextDecoder().decode(data)} from ${hostname}:${port}`,
    );
  }
  override errorReceived(exc: Error) {
    this.events.push(`error ${exc.name}`);
    this.errors.push(exc);
  }
  override pauseWriting() {
    this.events.push("pause");
  }
  override resumeWriting() {
    this.events.push("resume");
  }
  override connectionLost(exc?: Error) {
    this.events.push(exc ? `lost ${exc.name}` : "lost");
  }
}

/** Runs `body` on a fresh VirtualTimeLoop, then closes it. */
async function onLoop(body: (loop: VirtualTimeLoop) => Promise<void>) {
  const loop = new VirtualTimeLoop();
  try {
    await loop.runUntilComplete(loop.createTask(() => body(loop)));
  } finally {
    loop.close();
  }
}

async function open(
  loop: EventLoop,
  options: DatagramEndpointOptions = {
    localAddr: { hostname: "127.0.0.1", port: 0 },
  },
): Promise<[DatagramTransport, Recorder]> {
  return await loop.createDatagramEndpoint(() => new Recorder(), options);
}

Deno.test("SimDatagram sends an empty datagram and counts each datagram's 8-byte header, bounding its queue at 1 MiB as the Deno loop does", async () => {
  await onLoop(async (loop) => {
    const [a, pa] = await open(loop);
    const [b, pb] = await open(loop);
    const addrB = b.getExtraInfo("sockname") as Deno.NetAddr;
    a.sendto(new Uint8Array(0), addrB);
    assertEquals(a.getWriteBufferSize(), 8);
    a.sendto(bytes("abc"), addrB);
    assertEquals(a.getWriteBufferSize(), 8 + 11);
    await sleep(0.1);
    assertEquals(a.getWriteBufferSize(), 0);
    const port = (a.getExtraInfo("sockname") as Deno.NetAddr).port;
    assertEquals(pb.events, [
      "made",
      `data  from 127.0.0.1:${port}`,
      `data abc from 127.0.0.1:${port}`,
    ]);
    // Empty datagrams fill the queue too: the protocol is paused above the
    // high-water mark, and what passes 1 MiB is dropped with WouldBlock:
    // one report for what was dropped before it ran, not an error each.
    for (let i = 0; i < 200_000; i++) a.sendto(new Uint8Array(0), addrB);
    assertEquals(a.getWriteBufferSize(), 1024 * 1024);
    await sleep(0.1);
    assertEquals(pa.events[1], "pause");
    assertEquals(pa.errors.map((e) => e.name), ["WouldBlock"]);
    assertEquals(
      pa.errors[0].message,
      `Cannot queue the datagram: the send queue holds 1048576 of 1048576 bytes (data and 8-byte headers), received 0 bytes more; ${
        200_000 - 131_072 - 1
      } more datagrams were dropped before this report`,
    );
    a.close();
    b.close();
  });
});

Deno.test("SimDatagram.sendto() rejects misuse at once, in the Deno loop's words", async () => {
  await onLoop(async (loop) => {
    const [a, pa] = await open(loop);
    const addr = a.getExtraInfo("sockname") as Deno.NetAddr;
    assertThrows(
      () => a.sendto(bytes("x"), null as never),
      TypeError,
      "Cannot call sendto(): the endpoint has no remote address, so addr is required, received undefined",
    );
    assertThrows(
      () => a.sendto(bytes("x"), "127.0.0.1:9" as never),
      TypeError,
      'Cannot call sendto(): addr must be { transport: "udp", hostname, port }, received string',
    );
    assertThrows(
      () => a.sendto(bytes("x"), { ...addr, port: 70000 }),
      RangeError,
      "Cannot call sendto(): port must be an integer from 0 to 65535, received 70000",
    );
    assertThrows(
      () => a.sendto(bytes("x"), { ...addr, port: "9" as never }),
      TypeError,
      "Cannot call sendto(): port must be a number, received string",
    );
    assertThrows(
      () => a.sendto(bytes("x"), { ...addr, hostname: 7 as never }),
      TypeError,
      "Cannot call sendto(): host must be a string, received number",
    );
    assertThrows(
      () => a.sendto(bytes("x"), { ...addr, hostname: "" }),
      RangeError,
      "Cannot call sendto(): host must not be empty",
    );
    await sleep(0.1);
    assertEquals(pa.errors, []);
    // A connected endpoint sends to its peer only, named by address or by
    // the name it was given.
    const [c, pc] = await open(loop, {
      remoteAddr: { hostname: "localhost", port: addr.port },
    });
    assertEquals(c.getExtraInfo("peername"), {
      transport: "udp",
      hostname: "127.0.0.1",
      port: addr.port,
    });
    c.sendto(bytes("by name"), { ...addr, hostname: "localhost" });
    c.sendto(bytes("by address"), addr);
    assertThrows(
      () => c.sendto(bytes("x"), { ...addr, port: addr.port + 1 }),
      RangeError,
      `Cannot call sendto(): the endpoint only sends to 127.0.0.1:${addr.port}, received "127.0.0.1":${
        addr.port + 1
      }`,
    );
    await sleep(0.1);
    assertEquals(pa.events.length, 3);
    a.close();
    c.close();
    assertThrows(
      () => a.sendto(bytes("x"), addr),
      InvalidStateError,
      "Cannot call sendto(): transport is closing",
    );
    await sleep(0.1);
    assertEquals(pc.events, ["made", "lost"]);
  });
});

Deno.test("SimDatagram: createDatagramEndpoint() checks its arguments at once, in the Deno loop's words", async () => {
  const deno = new DenoEventLoop();
  const make = () => new DatagramProtocol();
  const refusal = (f: () => unknown) => {
    const error = assertThrows(f);
    return [(error as Error).constructor, (error as Error).message];
  };
  const bad: Array<[unknown, DatagramEndpointOptions | undefined]> = [
    [make, { localAddr: { hostname: "127.0.0.1", port: 70000 } }],
    [make, { remoteAddr: { hostname: 1 } as never }],
    [make, { localAddr: { hostname: "", port: 9 } }],
    [make, { remoteAddr: { hostname: "", port: 9 } }],
    [make, { reuseAddress: 1 as never }],
    [null, undefined],
  ];
  await onLoop(async (loop) => {
    for (const [factory, options] of bad) {
      const call = (
        l: { createDatagramEndpoint: typeof loop.createDatagramEndpoint },
      ) => refusal(() => l.createDatagramEndpoint(factory as never, options));
      assertEquals(call(loop), call(deno), JSON.stringify(options));
    }
    // null is no address, as undefined is.
    const [t] = await loop.createDatagramEndpoint(make, {
      localAddr: null as never,
    });
    t.close();
  });
  deno.close();
});

Deno.test("SimDatagram: createDatagramEndpoint() pairs localAddr and remoteAddr by family, and resolves a remote name first", async () => {
  await onLoop(async (loop) => {
    const error = await open(loop, {
      localAddr: { hostname: "127.0.0.1", port: 0 },
      remoteAddr: { hostname: "::1", port: 9 },
    }).catch((e) => e);
    assertEquals(error instanceof RangeError, true);
    assertEquals(
      error.message,
      "Cannot create a datagram endpoint: localAddr is IPv4 and remoteAddr is IPv6; give both in one family, received localAddr=127.0.0.1:0 remoteAddr=[::1]:9",
    );
    // A name is looked up in localAddr's family: this host's localhost
    // has no IPv6 address.
    await assertRejects(
      () =>
        open(loop, {
          localAddr: { hostname: "::1", port: 0 },
          remoteAddr: { hostname: "localhost", port: 9 },
        }),
      Deno.errors.NotFound,
    );
    await assertRejects(
      () => open(loop, { remoteAddr: { hostname: "nowhere", port: 9 } }),
      Deno.errors.NotFound,
    );
    // With only remoteAddr, the endpoint binds the remote's loopback.
    const [c] = await open(loop, { remoteAddr: { hostname: "::1", port: 9 } });
    assertEquals(
      (c.getExtraInfo("sockname") as Deno.NetAddr).hostname,
      "::1",
    );
    c.close();
  });
});

Deno.test("SimDatagram keeps an IPv6 remoteAddr in short form, and hears its peer", async () => {
  await onLoop(async (loop) => {
    const [server, ps] = await open(loop, {
      localAddr: { hostname: "::1", port: 0 },
    });
    const { port } = server.getExtraInfo("sockname") as Deno.NetAddr;
    const [client, pc] = await open(loop, {
      remoteAddr: { hostname: "0:0:0:0:0:0:0:1", port },
    });
    assertEquals(client.getExtraInfo("peername"), {
      transport: "udp",
      hostname: "::1",
      port,
    });
    client.sendto(bytes("hi"));
    await sleep(0.1);
    assertEquals(ps.events.length, 2);
    const from = client.getExtraInfo("sockname") as Deno.NetAddr;
    server.sendto(bytes("back"), from);
    await sleep(0.1);
    assertEquals(pc.events, ["made", `data back from ::1:${port}`]);
    client.close();
    server.close();
  });
});

Deno.test("SimDatagram refuses broadcast without allowBroadcast, as a socket without SO_BROADCAST does", async () => {
  await onLoop(async (loop) => {
    const [a, pa] = await open(loop);
    a.sendto(bytes("all"), {
      transport: "udp",
      hostname: "255.255.255.255",
      port: 9,
    });
    await sleep(0.1);
    assertEquals(pa.errors.map((e) => e.name), ["PermissionDenied"]);
    assertEquals(
      pa.errors[0].message,
      "Cannot send to 255.255.255.255:9: it is a broadcast address and the endpoint was made without allowBroadcast: true, received 3 bytes",
    );
    await assertRejects(
      () =>
        open(loop, { remoteAddr: { hostname: "255.255.255.255", port: 9 } }),
      Deno.errors.PermissionDenied,
      "remoteAddr 255.255.255.255:9 is a broadcast address",
    );
    a.close();
  });
});

Deno.test("SimDatagram: a connectionMade() that throws fails the endpoint's future and closes it, as the Deno loop does", async () => {
  await onLoop(async (loop) => {
    const events: string[] = [];
    const error = await (async () =>
      await loop.createDatagramEndpoint(() => {
        const p = new DatagramProtocol();
        p.connectionMade = () => {
          throw new Error("no thanks");
        };
        p.connectionLost = () => events.push("lost");
        return p;
      }, { localAddr: { hostname: "127.0.0.1", port: 5353 } }))().catch((e) =>
        e
      );
    assertEquals(error.message, "no thanks");
    await sleep(0.1);
    assertEquals(events, ["lost"]);
    // Its port is free again.
    const [t] = await open(loop, {
      localAddr: { hostname: "127.0.0.1", port: 5353 },
    });
    // A cancelled endpoint is closed once made, and nobody is told.
    const fut = open(loop, {
      localAddr: { hostname: "127.0.0.1", port: 5354 },
    });
    const cancelled = loop.createDatagramEndpoint(() => new Recorder(), {
      localAddr: { hostname: "127.0.0.1", port: 5355 },
    });
    cancelled.cancel();
    const [u] = await fut;
    await sleep(0.1);
    const [again] = await open(loop, {
      localAddr: { hostname: "127.0.0.1", port: 5355 },
    });
    t.close();
    u.close();
    again.close();
  });
});

Deno.test("SimDatagram.close() sends what is queued, and abort() drops all but the datagram in flight, as the Deno loop does", async () => {
  await onLoop(async (loop) => {
    const [b, pb] = await open(loop);
    const addrB = b.getExtraInfo("sockname") as Deno.NetAddr;
    const [a, pa] = await open(loop);
    for (let i = 0; i < 5; i++) a.sendto(bytes(`${i}`), addrB);
    assertEquals(a.getWriteBufferSize(), 5 * 9);
    a.abort();
    assertEquals(a.getWriteBufferSize(), 9); // only the one in flight
    await sleep(0.1);
    const from = (t: DatagramTransport) =>
      `127.0.0.1:${(t.getExtraInfo("sockname") as Deno.NetAddr).port}`;
    assertEquals(pb.events, ["made", `data 0 from ${from(a)}`]);
    assertEquals(pa.events, ["made", "lost"]);
    assertEquals(a.getWriteBufferSize(), 0);
    // Nor is what the send in flight meets reported once aborted.
    const [d, pd] = await open(loop);
    d.sendto(bytes("x"), { transport: "udp", hostname: "10.9.9.9", port: 9 });
    d.abort();
    await sleep(0.1);
    assertEquals(pd.events, ["made", "lost"]);

    const [c, pc] = await open(loop);
    for (const word of ["one", "two", "three"]) c.sendto(bytes(word), addrB);
    c.close();
    c.close();
    assertEquals(c.isClosing(), true);
    assertEquals(c.getWriteBufferSize(), 3 + 3 + 5 + 3 * 8);
    await sleep(0.1);
    assertEquals(pb.events.slice(2), [
      `data one from ${from(c)}`,
      `data two from ${from(c)}`,
      `data three from ${from(c)}`,
    ]);
    assertEquals(pc.events, ["made", "lost"]);
    assertEquals(c.getWriteBufferSize(), 0);
    b.close();
  });
});

Deno.test("SimDatagram with allowBroadcast sends to 255.255.255.255: every host's endpoint on the port bound to every address gets it", async () => {
  const sim = new Simulation({ seed: 3 });
  const got: string[] = [];
  const listen = (name: string, hostname: string) =>
    sim.host(name, async (loop) => {
      const [t] = await loop.createDatagramEndpoint(() => {
        const p = new DatagramProtocol();
        p.datagramReceived = (d, from) =>
          got.push(
            `${name} got ${new TextDecoder().decode(d)} from ${
              (from as Deno.NetAddr).hostname
            }`,
          );
        return p;
      }, { localAddr: { hostname, port: 5000 } });
      await sleep(2);
      t.close();
    });
  listen("a", "0.0.0.0");
  listen("b", "::");
  listen("c", "c"); // its own address only: no broadcasts
  const errors: string[] = [];
  sim.client("s", async (loop) => {
    const [t] = await loop.createDatagramEndpoint(() => {
      const p = new DatagramProtocol();
      p.errorReceived = (e) => errors.push(e.name);
      return p;
    }, { allowBroadcast: true });
    await sleep(0.5);
    t.sendto(bytes("all"), {
      transport: "udp",
      hostname: "255.255.255.255",
      port: 5000,
    });
    await sleep(1);
    t.close();
  });
  await sim.run();
  assertEquals(errors, []);
  assertEquals(got.sort(), [
    "a got all from 10.0.0.4",
    "b got all from 10.0.0.4",
  ]);
});

Deno.test("SimDatagram reports a protocol method that throws to the loop's handler as the Deno loop does, and keeps receiving", async () => {
  await onLoop(async (loop) => {
    const contexts: string[] = [];
    loop.setExceptionHandler((_loop, context) => {
      contexts.push(
        `${context.message}: ${(context.exception as Error).message} ${
          context.transport !== undefined && context.protocol !== undefined
        }`,
      );
    });
    const got: string[] = [];
    const [b] = await loop.createDatagramEndpoint(() => {
      const p = new DatagramProtocol();
      p.datagramReceived = (d) => {
        got.push(new TextDecoder().decode(d));
        throw new Error("bad datagram");
      };
      p.errorReceived = () => {
        throw new Error("bad error");
      };
      p.connectionLost = () => {
        throw new Error("bad end");
      };
      return p;
    }, { localAddr: { hostname: "127.0.0.1", port: 0 } });
    const addrB = b.getExtraInfo("sockname") as Deno.NetAddr;
    const [a] = await open(loop);
    a.sendto(bytes("one"), addrB);
    await sleep(0.1);
    a.sendto(bytes("two"), addrB);
    await sleep(0.1);
    b.sendto(bytes("x"), { transport: "udp", hostname: "10.9.9.9", port: 9 });
    await sleep(0.1);
    b.close();
    a.close();
    await sleep(0.1);
    assertEquals(got, ["one", "two"]);
    assertEquals(contexts, [
      "Exception in protocol.datagramReceived(): bad datagram true",
      "Exception in protocol.datagramReceived(): bad datagram true",
      "Exception in protocol.errorReceived(): bad error true",
      "Exception in protocol.connectionLost(): bad end true",
    ]);
  });
});

Deno.test("SimDatagram: a datagramReceived() that throws at every datagram logs within what the peers sent, as the Deno loop does", async () => {
  await onLoop(async (loop) => {
    const errors: ExceptionContext[] = [];
    loop.setExceptionHandler((_loop, context) => errors.push(context));
    let calls = 0;
    const [b] = await loop.createDatagramEndpoint(() => {
      const p = new DatagramProtocol();
      p.datagramReceived = () => {
        calls++;
        throw new Error("cannot take this");
      };
      return p;
    }, { localAddr: { hostname: "127.0.0.1", port: 0 } });
    const addrB = b.getExtraInfo("sockname") as Deno.NetAddr;
    const [a] = await open(loop);
    for (let i = 0; i < 3000; i++) {
      a.sendto(new Uint8Array(0), addrB);
      if (i % 100 === 99) await sleep(0.01);
    }
    await sleep(0.1);
    b.close();
    a.close();
    await sleep(0.1);
    assertEquals(calls, 3000);
    // Each datagram, empty as it is, pays for 8 characters: its UDP header;
    // the first failure, reported whole, is not the peers' to pay for.
    const size = errors.reduce((n, c) => n + PeerLog.sizeOf(c), 0);
    const first = PeerLog.sizeOf(errors[0]);
    assert(
      size <= 3000 * 8 + PeerLog.RESERVE + first,
      `${size} characters of log`,
    );
    assertEquals(errors[0].message, "Exception in protocol.datagramReceived()");
    assertEquals(errors[0].transport, b);
  });
});

Deno.test("SimDatagram reports a datagram too long for UDP to errorReceived with the plain Error Deno's send rejects with", async () => {
  await onLoop(async (loop) => {
    const [a, pa] = await open(loop);
    a.sendto(new Uint8Array(70000), a.getExtraInfo("sockname") as Deno.NetAddr);
    await sleep(0.1);
    assertEquals(pa.errors.length, 1);
    assertEquals(pa.errors[0].constructor, Error);
    assertEquals(
      pa.errors[0].message,
      "Message too long: a UDP datagram holds at most 65507 bytes, received 70000",
    );
    a.close();
  });
});

Deno.test("SimDatagram with remoteAddr hears only datagrams from that very address, as a connected socket does", async () => {
  const sim = new Simulation({ seed: 4 });
  const got: string[] = [];
  sim.client("a", async (loop) => {
    const [server] = await loop.createDatagramEndpoint(
      () => new DatagramProtocol(),
      { localAddr: { hostname: "0.0.0.0", port: 5000 } },
    );
    const [client] = await loop.createDatagramEndpoint(() => {
      const p = new DatagramProtocol();
      p.datagramReceived = (d, from) =>
        got.push(
          `${new TextDecoder().decode(d)} from ${
            (from as Deno.NetAddr).hostname
          }`,
        );
      return p;
    }, {
      // Bound to every address: only the peer filter keeps others out.
      localAddr: { hostname: "0.0.0.0", port: 0 },
      remoteAddr: { hostname: "127.0.0.1", port: 5000 },
    });
    const { port } = client.getExtraInfo("sockname") as Deno.NetAddr;
    for (const hostname of ["127.0.0.1", "a"]) {
      server.sendto(bytes(`to ${hostname}`), {
        transport: "udp",
        hostname,
        port,
      });
    }
    await sleep(1);
    client.close();
    server.close();
  });
  await sim.run();
  // What comes from the host's own address is not from 127.0.0.1.
  assertEquals(got, ["to 127.0.0.1 from 127.0.0.1"]);
});

/**
 * Spends the loop's reserve of peer-log space (see `PeerLog`) to nothing,
 * then records what its exception handler gets.
 */
function spendReserve(loop: EventLoop): ExceptionContext[] {
  loop.setExceptionHandler(() => {});
  const log = new PeerLog({ loop, perKind: Number.MAX_SAFE_INTEGER });
  for (let i = 0; i < 200; i++) log.report("x", { message: "x".repeat(1000) });
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => errors.push(context));
  return errors;
}

Deno.test("SimDatagram reports the first failure of each protocol method whole, with its stack, even once the loop's peer logs spent their reserve and the datagram is empty", async () => {
  await onLoop(async (loop) => {
    const errors = spendReserve(loop);
    const [b] = await loop.createDatagramEndpoint(() => {
      const p = new DatagramProtocol();
      p.datagramReceived = () => {
        throw new Error("the developer's bug");
      };
      p.errorReceived = () => {
        throw new Error("another bug");
      };
      return p;
    }, { localAddr: { hostname: "127.0.0.1", port: 0 } });
    const [a] = await open(loop);
    a.sendto(new Uint8Array(0), b.getExtraInfo("sockname") as Deno.NetAddr);
    await sleep(0.1);
    b.sendto(bytes("x"), { transport: "udp", hostname: "10.9.9.9", port: 9 });
    await sleep(0.1);
    b.abort();
    a.close();
    await sleep(0.1);
    assertEquals(errors.map((c) => c.message), [
      "Exception in protocol.datagramReceived()",
      "Exception in protocol.errorReceived()",
    ]);
    assertStringIncludes(
      (errors[0].exception as Error).stack!,
      "Error: the developer's bug\n    at ",
    );
    assertEquals(errors[0].transport, b);
  });
});

Deno.test("SimDatagram aborted in the turn its full queue dropped datagrams still reports them to errorReceived before connectionLost, as the Deno loop does", async () => {
  await onLoop(async (loop) => {
    const [a, pa] = await open(loop);
    const to = { transport: "udp" as const, hostname: "127.0.0.1", port: 9 };
    for (let i = 0; i < 131_072 + 3; i++) a.sendto(new Uint8Array(0), to);
    a.abort();
    await sleep(0.1);
    assertEquals(pa.events, ["made", "pause", "error WouldBlock", "lost"]);
    assertStringIncludes(
      pa.errors[0].message,
      "; 2 more datagrams were dropped before this report",
    );
  });
});

Deno.test("SimDatagram sums up the failures it held back when it closes, paid for by what the peers sent after the last one", async () => {
  await onLoop(async (loop) => {
    const errors = spendReserve(loop);
    const [b] = await loop.createDatagramEndpoint(() => {
      const p = new DatagramProtocol();
      p.datagramReceived = (data) => {
        if (data[0] === 0x78) throw new Error("cannot take an x");
      };
      return p;
    }, { localAddr: { hostname: "127.0.0.1", port: 0 } });
    const addrB = b.getExtraInfo("sockname") as Deno.NetAddr;
    const [a] = await open(loop);
    for (let i = 0; i < 100; i++) a.sendto(bytes("x"), addrB);
    await sleep(0.1);
    // Then the peers send 10 KB the protocol takes.
    for (let i = 0; i < 100; i++) a.sendto(new Uint8Array(100), addrB);
    await sleep(0.1);
    b.close();
    a.close();
    await sleep(0.1);
    assertEquals(errors[0].message, "Exception in protocol.datagramReceived()");
    assertEquals(
      errors.at(-1)!.message.replace(/\d+ problems/, "N problems"),
      "Datagram endpoint: N problems were counted but not logged (99 datagramReceived() failures)",
    );
  });
});
