/**
 * Simulated datagram endpoints: UDP as the network treats it — each
 * datagram may be dropped, duplicated or overtaken, as the seed decides.
 * Multicast (IPv4) reaches every host's endpoint on the port that joined
 * the group, and a broadcast (255.255.255.255, with `allowBroadcast`)
 * every host's endpoint on the port bound to every address, each copy
 * subject to the same faults.
 *
 * Everything else is as on the Deno loop (`transports/_deno_datagram.ts`),
 * through the same checks (`address_checks.ts`, `write_checks.ts`): the
 * arguments and their errors, remote names looked up first and paired with
 * `localAddr` by family, the send queue counting 8-byte headers and
 * bounded at 1 MiB, broadcast refused without `allowBroadcast`.
 *
 * @module
 */

import { InvalidStateError } from "../futures/errors.ts";
import { makeProtocol } from "../futures/_runtime.ts";
import type { Future } from "../futures/future.ts";
import type { AddrInfo, DatagramEndpointOptions } from "../loop/event_loop.ts";
import type { BaseProtocol, DatagramProtocol } from "../protocols/protocol.ts";
import { PeerLog } from "../protocols/peer_log.ts";
import {
  broadcastRefusal,
  canonicalAddress,
  checkDatagramEndpointArgs,
  checkDatagramFamilies,
  checkDatagramTarget,
  checkMulticastGroup,
  describeAddress,
  ipFamily,
} from "../transports/address_checks.ts";
import {
  FlowControlledTransport,
  WriteFlowControl,
} from "../transports/flow_control.ts";
import type { DatagramTransport } from "../transports/transport.ts";
import {
  checkWriteData,
  DATAGRAM_HEADER_SIZE,
  datagramDropReporter,
  datagramQueueRefusal,
  refuseWrite,
} from "../transports/write_checks.ts";
import {
  addrInUse,
  addrNotAvailable,
  notFound,
  permissionDenied,
  wouldBlock,
} from "./_deno_errors.ts";
import { simHost, type SimNetLoop, simWorld } from "./_sim_loop.ts";
import {
  bindOf,
  binds,
  bindsOverlap,
  loopbackAddress,
  type SimHost,
  type World,
} from "./_sim_world.ts";

/** The largest UDP payload over IPv4, in bytes. */
const MAX_DATAGRAM = 65507;

/** The IPv4 limited-broadcast address, a broadcast on every network. */
const LIMITED_BROADCAST = "255.255.255.255";

/** An IPv4 multicast group (224.0.0.0/4): a datagram to it fans out. */
const MULTICAST_V4 =
  /^(22[4-9]|23\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)$/;

/** A bound datagram endpoint of a simulated host. */
export class SimDatagram extends FlowControlledTransport
  implements DatagramTransport {
  readonly #world: World;
  readonly #host: SimHost;
  readonly #loop: SimNetLoop;
  readonly #generation: number;
  readonly port: number;
  readonly #local: Deno.NetAddr;
  readonly #remote: Deno.NetAddr | undefined;
  /** The name `remoteAddr` was given by, accepted by `sendto()` too. */
  readonly #remoteName: string | undefined;
  readonly #allowBroadcast: boolean;
  /** What it is bound to (see `bindOf()`): the addresses it takes. */
  readonly bound: string;
  #protocol: DatagramProtocol;
  /** Closing or closed: no more sends, nothing more received. */
  #closed = false;
  /** Gone from its port, `connectionLost` scheduled. */
  #finished = false;
  /** `connectionLost` called (or the host crashed): nothing more is. */
  #lost = false;
  // As on the Deno loop, the first datagram of an iteration goes out at
  // once (in flight) and the others wait in the queue until the next
  // iteration: abort() drops them, close() sends them first. The queue is
  // what a producer registered here is paced by.
  #inFlight = 0;
  #queued = 0;
  #queue: [Uint8Array, { hostname: string; port: number }][] = [];
  /** Counts what a full queue drops, reported once per turn. */
  readonly #dropped: (queued: number, length: number) => void;
  readonly #flow: WriteFlowControl;
  /** Multicast memberships: `group%iface` to the group. */
  readonly #groups = new Map<string, string>();
  // Bytes received (each datagram with its 8-byte header), what pays for
  // the reports of the protocol's failures (see PeerLog), and how many the
  // log was told of; the log, made on the first failure; the methods whose
  // first failure was reported.
  #received = 0;
  #paid = 0;
  #log: PeerLog | null = null;
  #failed: Set<string> | null = null;

  constructor(
    loop: SimNetLoop,
    port: number,
    local: Deno.NetAddr,
    remote: Deno.NetAddr | undefined,
    protocol: DatagramProtocol,
    bound: string,
    remoteName: string | undefined,
    allowBroadcast: boolean,
  ) {
    super();
    this.#loop = loop;
    this.#world = simWorld(loop);
    this.#host = simHost(loop);
    this.#generation = simHost(loop).generation;
    this.port = port;
    this.#local = local;
    this.#remote = remote;
    this.#remoteName = remoteName;
    this.#allowBroadcast = allowBroadcast;
    this.bound = bound;
    this.#protocol = protocol;
    this.#flow = new WriteFlowControl(loop, this);
    // Reported even when abort() came in the turn of the drops (as on the
    // Deno loop, whose connectionLost waits for the receive in flight),
    // but never after connectionLost.
    this.#dropped = datagramDropReporter(loop, (message) => {
      if (!this.#lost) {
        this.#call(
          "errorReceived",
          (p) => p.errorReceived(wouldBlock(message)),
        );
      }
    });
  }

  protected override flowControl(): WriteFlowControl {
    return this.#flow;
  }

  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    if (name === "sockname") return this.#local;
    if (name === "peername" && this.#remote !== undefined) return this.#remote;
    return defaultValue;
  }

  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol as DatagramProtocol;
  }

  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  isClosing(): boolean {
    return this.#closed;
  }

  getWriteBufferSize(): number {
    return this.#inFlight + this.#queued;
  }

  sendto(data: Uint8Array, addr?: Deno.Addr): void {
    checkWriteData(data, "sendto");
    if (this.#closed) refuseWrite("sendto", false);
    const target = checkDatagramTarget(addr, this.#remote, this.#remoteName);
    const to = {
      hostname: canonicalAddress(target.hostname),
      port: target.port,
    };
    if (to.hostname === LIMITED_BROADCAST && !this.#allowBroadcast) {
      this.#error(
        permissionDenied(broadcastRefusal(to, data.length)),
      );
      return;
    }
    const queued = this.getWriteBufferSize();
    if (datagramQueueRefusal(queued, data.length) !== undefined) {
      this.#dropped(queued, data.length);
      return;
    }
    const size = data.length + DATAGRAM_HEADER_SIZE;
    if (this.#inFlight === 0) {
      this.#loop.callSoon(() => this.#drain());
      this.#inFlight = size;
      this.#send(data.slice(), to);
    } else {
      this.#queue.push([data.slice(), to]);
      this.#queued += size;
    }
    this.#flow.update(this.getWriteBufferSize());
  }

  /** Puts one datagram (a copy of the caller's) on the network. */
  #send(data: Uint8Array, to: { hostname: string; port: number }): void {
    const world = this.#world;
    const host = this.#host;
    if (data.length > MAX_DATAGRAM) {
      // Deno's send rejects with a plain Error (EMSGSIZE) too.
      this.#error(
        new Error(
          `Message too long: a UDP datagram holds at most ${MAX_DATAGRAM} bytes, received ${data.length}`,
        ),
      );
      return;
    }
    if (MULTICAST_V4.test(to.hostname)) {
      // Every endpoint on the port that joined the group gets its own copy
      // (this host's too, as with IP_MULTICAST_LOOP), with its own faults.
      const from: Deno.NetAddr = {
        transport: "udp",
        hostname: host.address,
        port: this.port,
      };
      for (const dest of world.hosts) {
        const members = dest.up ? dest.datagrams.get(to.port) : undefined;
        if (members?.some((ep) => ep.#joined(to.hostname))) {
          this.#transmit(dest, to, from, data.slice(), to.hostname, null);
        }
      }
      return;
    }
    if (to.hostname === LIMITED_BROADCAST) {
      // Allowed (sendto() refused it otherwise): every host, this one too,
      // hears it on the port's endpoints bound to every address.
      const from: Deno.NetAddr = {
        transport: "udp",
        hostname: host.address,
        port: this.port,
      };
      for (const dest of world.hosts) {
        if (dest.up && dest.datagrams.has(to.port)) {
          this.#transmit(dest, to, from, data.slice(), null, LIMITED_BROADCAST);
        }
      }
      return;
    }
    const dest = world.resolve(host, to.hostname);
    if (dest === null) {
      this.#error(
        notFound(`Cannot send to ${to.hostname}: no simulated host has it`),
      );
      return;
    }
    // Over loopback, the datagram goes to and comes from that address.
    const loopback = dest === host ? loopbackAddress(to.hostname) : undefined;
    const from: Deno.NetAddr = {
      transport: "udp",
      hostname: loopback ?? host.address,
      port: this.port,
    };
    this.#transmit(
      dest,
      to,
      from,
      data,
      null,
      loopback ?? dest.address,
    );
  }

  /**
   * Sends one datagram to `dest`, dropped or duplicated as the faults
   * say; on arrival it goes to the endpoint on the port bound to `address`
   * (the one sent to) that accepts the sender, or for a `group` to every
   * endpoint on the port still a member. With none, it is dropped.
   */
  #transmit(
    dest: SimHost,
    to: { hostname: string; port: number },
    from: Deno.NetAddr,
    copy: Uint8Array,
    group: string | null,
    address: string | null,
  ): void {
    const world = this.#world;
    const { datagramDrop, datagramDuplicate } = world.settings;
    if (world.rng.chance(datagramDrop)) {
      world.record(
        this.#host.name,
        "drop",
        `datagram to ${to.hostname}:${to.port}${
          group === null ? "" : ` (member ${dest.name})`
        }`,
      );
      return;
    }
    const copies = world.rng.chance(datagramDuplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      world.send(this.#host, dest, copy.length, "datagram", () => {
        const takers = dest.up
          ? SimDatagram.#takers(
            dest.datagrams.get(to.port),
            from,
            group,
            address,
          )
          : [];
        if (takers.length === 0) {
          world.record(dest.name, "drop", `datagram for port ${to.port}`);
          return;
        }
        world.record(
          dest.name,
          "datagram",
          `${from.hostname}:${from.port}>${
            group === null ? "" : group + ":"
          }${to.port} ${copy.length}`,
        );
        takers.forEach((ep, j) =>
          ep.#loop.callSoon(() => {
            if (ep.#closed) return;
            const data = i === 0 && j === 0 ? copy : copy.slice();
            ep.#received += data.length + DATAGRAM_HEADER_SIZE;
            ep.#call("datagramReceived", (p) =>
              p.datagramReceived(data, { ...from }));
          })
        );
      });
    }
  }

  /**
   * Who on a port takes a datagram from `from`: for a `group`, every
   * member; else the one endpoint bound to `address` that accepts the
   * sender — where several do (`reuseAddress`), the one bound to that very
   * address, then a connected one, then the last bound, as a kernel
   * prefers the most specific socket.
   */
  static #takers(
    endpoints: SimDatagram[] | undefined,
    from: Deno.NetAddr,
    group: string | null,
    address: string | null,
  ): SimDatagram[] {
    const accepting = (endpoints ?? []).filter((ep) =>
      ep.#accepts(from) &&
      (group === null ? binds(ep.bound, address!) : ep.#joined(group))
    );
    if (group !== null || accepting.length < 2) return accepting;
    const score = (ep: SimDatagram) =>
      (ep.bound === address ? 2 : 0) + (ep.#remote === undefined ? 0 : 1);
    let best = accepting[0];
    for (const ep of accepting) if (score(ep) >= score(best)) best = ep;
    return [best];
  }

  /**
   * Joins a multicast group: datagrams sent to `group` on this endpoint's
   * port then reach it, from any host. A simulated host has one interface
   * and IPv4 only: `iface` may be `"0.0.0.0"` or the host's address, and
   * an IPv6 group fails as on a host without IPv6.
   */
  joinMulticast(group: string, iface?: string | number): Future<void> {
    const [family, key] = checkMulticastGroup("joinMulticast", group, iface);
    if (this.#closed) {
      throw new InvalidStateError(
        "Cannot call joinMulticast(): transport is closing",
      );
    }
    if (this.#groups.has(key)) {
      throw new InvalidStateError(
        `Cannot call joinMulticast(): the endpoint already joined ${group} on that interface, received group=${
          JSON.stringify(group)
        } iface=${JSON.stringify(iface)}`,
      );
    }
    const fut = this.#loop.createFuture<void>();
    const host = this.#host;
    if (family === 6) {
      fut.setException(
        addrNotAvailable(
          `Cannot join multicast group ${group}: simulated hosts have IPv4 addresses only`,
        ),
      );
    } else if (
      iface !== undefined && iface !== "0.0.0.0" && iface !== host.address
    ) {
      fut.setException(
        addrNotAvailable(
          `Cannot join multicast group ${group}: ${iface} is not the address of host ${host.name} (${host.address})`,
        ),
      );
    } else {
      this.#groups.set(key, group);
      this.#world.record(host.name, "join", `${group} udp ${this.port}`);
      fut.setResult(undefined);
    }
    return fut;
  }

  /** Leaves a group joined with `joinMulticast(group, iface)`. */
  leaveMulticast(group: string, iface?: string | number): Future<void> {
    const [, key] = checkMulticastGroup("leaveMulticast", group, iface);
    if (!this.#groups.delete(key)) {
      throw new InvalidStateError(
        `Cannot call leaveMulticast(): the endpoint has not joined ${group} on that interface, received group=${
          JSON.stringify(group)
        } iface=${JSON.stringify(iface)}`,
      );
    }
    this.#world.record(this.#host.name, "leave", `${group} udp ${this.port}`);
    const fut = this.#loop.createFuture<void>();
    fut.setResult(undefined);
    return fut;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // The producer stops; resumeWriting() still comes until connectionLost.
    this.#flow.endWrites();
    // What is queued goes out first, at the next iteration.
    if (this.#queue.length === 0) this.#finish();
  }

  abort(): void {
    if (this.#finished) return;
    this.#closed = true;
    this.#queue = [];
    this.#queued = 0;
    this.#finish();
  }

  /** Leaves the port and tells the protocol; once. */
  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#flow.close();
    const list = this.#host.datagrams.get(this.port)?.filter((ep) =>
      ep !== this
    );
    if (list === undefined || list.length === 0) {
      this.#host.datagrams.delete(this.port);
    } else this.#host.datagrams.set(this.port, list);
    this.#loop.callSoon(() => {
      this.#lost = true;
      this.#call("connectionLost", (p) => p.connectionLost(undefined));
      // What the peers sent since the last failure pays for the sum-up.
      this.#log?.received(this.#received - this.#paid);
      this.#log?.close("Datagram endpoint", { transport: this });
    });
  }

  #drain(): void {
    this.#inFlight = 0;
    const queue = this.#queue;
    this.#queue = [];
    this.#queued = 0;
    if (this.#host.generation !== this.#generation) return;
    for (const [data, to] of queue) this.#send(data, to);
    this.#flow.update(0);
    // Once the sends' errors are reported, as they are on the Deno loop.
    if (this.#closed) this.#loop.callSoon(() => this.#finish());
  }

  /** The host crashed: what is queued is lost. */
  crash(): void {
    this.#closed = true;
    this.#finished = true;
    this.#lost = true;
    this.#queue = [];
    this.#queued = 0;
  }

  #joined(group: string): boolean {
    for (const g of this.#groups.values()) if (g === group) return true;
    return false;
  }

  #accepts(from: Deno.NetAddr): boolean {
    if (this.#closed || this.#host.generation !== this.#generation) {
      return false;
    }
    // A connected endpoint hears its peer's very address only (a name was
    // looked up when it was made), as a connected socket does.
    const r = this.#remote;
    return r === undefined ||
      (r.hostname === from.hostname && r.port === from.port);
  }

  /** Reports `error` on the next turn, unless the endpoint is gone by then. */
  #error(error: Error): void {
    this.#loop.callSoon(() => {
      if (!this.#finished) {
        this.#call("errorReceived", (p) => p.errorReceived(error));
      }
    });
  }

  /**
   * Calls a method of the protocol; what it throws goes to the loop's
   * exception handler, naming the method, the transport and the protocol,
   * and the endpoint carries on. As the Deno loop's endpoints report it:
   * the first failure of each method whole, the rest paid for by what the
   * peers sent.
   */
  #call(method: string, call: (protocol: DatagramProtocol) => void): void {
    const protocol = this.#protocol;
    try {
      call(protocol);
    } catch (exception) {
      const context = {
        message: `Exception in protocol.${method}()`,
        exception,
        transport: this,
        protocol,
      };
      const failed = this.#failed ??= new Set();
      if (!failed.has(method)) {
        failed.add(method);
        this.#loop.callExceptionHandler(context);
        return;
      }
      const log = this.#log ??= new PeerLog({
        loop: this.#loop,
        perKind: Number.MAX_SAFE_INTEGER,
      });
      log.received(this.#received - this.#paid);
      this.#paid = this.#received;
      log.report(`${method}() failures`, context);
    }
  }
}

type Address = { hostname: string; port: number };

/**
 * Opens a datagram endpoint on `loop`'s host, as the Deno loop does: the
 * arguments checked at once in its words, a remote name looked up (in a
 * numeric `localAddr`'s family) before the endpoint is made, and
 * addresses of two families refused.
 */
export function openDatagram<P extends DatagramProtocol>(
  loop: SimNetLoop,
  factory: () => P,
  options?: DatagramEndpointOptions,
): Future<[DatagramTransport, P]> {
  const args = checkDatagramEndpointArgs(factory, options);
  const fut = loop.createFuture<[DatagramTransport, P]>();
  const remote = args.remoteAddr;
  const open = (peer: Address | undefined) => {
    // Nobody waits for an endpoint whose future was cancelled.
    if (fut.done()) return;
    try {
      bindDatagram(loop, fut, factory, args.localAddr, peer, {
        remoteName: remote?.hostname,
        reuseAddress: args.reuseAddress,
        allowBroadcast: args.allowBroadcast,
      });
    } catch (error) {
      fut.setException(error);
    }
  };
  if (remote === undefined) open(undefined);
  else if (ipFamily(remote.hostname) !== 0) {
    open({ hostname: canonicalAddress(remote.hostname), port: remote.port });
  } else {
    const local = args.localAddr;
    const family = local === undefined ? 0 : ipFamily(local.hostname);
    loop.getaddrinfo(remote.hostname, remote.port, { family })
      .addDoneCallback((found) => {
        if (fut.done()) return;
        const error = found.exception();
        if (error !== undefined && error !== null) fut.setException(error);
        else {
          const [first] = found.result() as AddrInfo[];
          open({ hostname: first.hostname, port: remote.port });
        }
      });
  }
  return fut;
}

/**
 * Binds the endpoint for `peer` (resolved already) and makes its
 * transport; `connectionMade` follows on the loop's next turn, then `fut`
 * is done (or fails with what `connectionMade` threw, the endpoint
 * closed).
 */
function bindDatagram<P extends DatagramProtocol>(
  loop: SimNetLoop,
  fut: Future<[DatagramTransport, P]>,
  factory: () => P,
  localAddr: Address | undefined,
  peer: Address | undefined,
  options: {
    remoteName: string | undefined;
    reuseAddress: boolean;
    allowBroadcast: boolean;
  },
): void {
  const world = simWorld(loop);
  const host = simHost(loop);
  if (peer?.hostname === LIMITED_BROADCAST && !options.allowBroadcast) {
    // A socket without SO_BROADCAST cannot connect to a broadcast address.
    throw permissionDenied(
      `Cannot create a datagram endpoint: remoteAddr ${
        describeAddress(peer)
      } is a broadcast address and allowBroadcast is not true, received allowBroadcast=false`,
    );
  }
  // With only a remote, the endpoint binds its family and loopback-ness,
  // so that a loopback client is not open on every interface.
  const local = localAddr ?? {
    hostname: peer === undefined ? "0.0.0.0" : loopbackAddress(peer.hostname) ??
      (ipFamily(peer.hostname) === 6 ? "::" : "0.0.0.0"),
    port: 0,
  };
  if (local.hostname !== "::" && world.resolve(host, local.hostname) !== host) {
    throw addrNotAvailable(
      `Cannot bind ${local.hostname}:${local.port}: not an address of host ${host.name}`,
    );
  }
  const sockname: Deno.NetAddr = {
    transport: "udp",
    hostname: loopbackAddress(local.hostname) ?? host.address,
    port: local.port,
  };
  if (peer !== undefined) {
    // A socket of one family cannot send to the other's addresses; a name
    // binds the host's (IPv4) address.
    const family = ipFamily(local.hostname);
    checkDatagramFamilies(
      family === 0 ? sockname : local,
      localAddr,
      peer,
    );
  }
  // One port takes an endpoint per address, as a listener's does.
  const bound = bindOf(local.hostname, host);
  let port = local.port;
  if (port === 0) {
    port = host.allocPort((p) => host.datagrams.has(p));
  } else if (
    host.datagrams.get(port)?.some((ep) => bindsOverlap(ep.bound, bound)) &&
    !options.reuseAddress
  ) {
    throw addrInUse(`Cannot bind ${local.hostname}:${port}: address in use`);
  }
  const protocol = makeProtocol(factory, "call createDatagramEndpoint()");
  const transport = new SimDatagram(
    loop,
    port,
    { ...sockname, port },
    peer === undefined ? undefined : { transport: "udp", ...peer },
    protocol,
    bound,
    options.remoteName,
    options.allowBroadcast,
  );
  host.datagrams.set(port, [...(host.datagrams.get(port) ?? []), transport]);
  world.record(host.name, "bind", `udp ${port}`);
  loop.callSoon(() => {
    try {
      protocol.connectionMade(transport);
    } catch (error) {
      transport.abort();
      if (!fut.done()) fut.setException(error);
      return;
    }
    // Nobody waits for an endpoint whose future was cancelled.
    if (fut.done()) transport.abort();
    else fut.setResult([transport, protocol]);
  });
}
