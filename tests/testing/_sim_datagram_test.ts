// Multicast on simulated datagram endpoints: membership decides who gets
// a group's datagrams, with the same faults as unicast.

import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import type { EventLoop } from "../../loop/event_loop.ts";
import { DatagramProtocol } from "../../protocols/protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { DatagramTransport } from "../../transports/transport.ts";
import { Simulation } from "../../testing/simulation.ts";

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
