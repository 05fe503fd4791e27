// UDP endpoints over Deno.listenDatagram: a DatagramTransport with one
// receive and one send in flight, a bounded send queue, and completions
// brought back to the loop by the proactor.

import { InvalidStateError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { BaseProtocol, DatagramProtocol } from "../protocols/protocol.ts";
import { PeerLog } from "../protocols/peer_log.ts";
import { FlowControlledTransport, WriteFlowControl } from "./flow_control.ts";
import type { DatagramTransport } from "./transport.ts";
import type {
  AddrInfo,
  DatagramEndpointOptions,
  SchedulingLoop,
} from "../loop/event_loop.ts";
import { isIoError, toError } from "./_deno_pipes.ts";
import { makeProtocol } from "../futures/_runtime.ts";
import {
  checkWriteData,
  DATAGRAM_HEADER_SIZE,
  datagramDropReporter,
  datagramQueueRefusal,
  refuseWrite,
} from "./write_checks.ts";
import type { DenoIo } from "./_deno_proactor.ts";
import type { CompletionPort, Owned, Proactor } from "./_proactor.ts";
import {
  broadcastRefusal,
  canonicalAddress,
  checkDatagramEndpointArgs,
  checkDatagramFamilies,
  checkDatagramTarget,
  checkMulticastGroup,
  describeAddress as describe,
  ipFamily,
} from "./address_checks.ts";
import { resolveHost, withAddress } from "./_deno_names.ts";

type Address = { hostname: string; port: number };

/**
 * Whether Deno's unstable net API is on (`--unstable-net`, or
 * `"unstable": ["net"]` in deno.json): `Deno.listenDatagram` exists only
 * then. `Deno.listen({ reusePort })` needs it too, and without it Deno ends
 * the whole process instead of throwing, so callers ask first.
 */
export function hasUnstableNet(): boolean {
  return typeof (Deno as { listenDatagram?: unknown }).listenDatagram ===
    "function";
}

/**
 * The error for a feature that needs `--unstable-net` when it is off.
 *
 * @param what What could not be done, as "call createDatagramEndpoint()".
 * @param feature What needs the flag, as "UDP".
 */
export function unstableNetError(what: string, feature: string): Error {
  return new Deno.errors.NotSupported(
    `Cannot ${what}: ${feature} needs Deno's unstable net API; run deno with --unstable-net or add "unstable": ["net"] to your deno.json, received a Deno without it`,
  );
}

/** The IPv4 limited-broadcast address, a broadcast on every network. */
const LIMITED_BROADCAST = "255.255.255.255";

function ipv4ToInt(address: string): number {
  return address.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

/**
 * The IPv4 broadcast addresses a send without `allowBroadcast` is refused
 * to: 255.255.255.255, and the directed broadcast of each local network
 * when Deno may list the interfaces (`--allow-sys=networkInterfaces`; the
 * permission is queried, never prompted for).
 */
function broadcastAddresses(): Set<string> {
  const out = new Set([LIMITED_BROADCAST]);
  let granted = false;
  try {
    granted = Deno.permissions.querySync({
      name: "sys",
      kind: "networkInterfaces",
    }).state === "granted";
  } catch {
    // No permissions API in this runtime: the limited broadcast only.
  }
  if (!granted) return out;
  try {
    for (const iface of Deno.networkInterfaces()) {
      if (iface.family !== "IPv4" || iface.netmask === "255.255.255.255") {
        continue;
      }
      const mask = ipv4ToInt(iface.netmask);
      const bcast = (ipv4ToInt(iface.address) | (~mask >>> 0)) >>> 0;
      out.add(
        [bcast >>> 24, (bcast >>> 16) & 255, (bcast >>> 8) & 255, bcast & 255]
          .join("."),
      );
    }
  } catch {
    // Interfaces unavailable: the limited broadcast only.
  }
  return out;
}

/**
 * The local address a connected endpoint binds: the family and
 * loopback-ness of its remote, so that it is not open on every interface.
 */
function localFor(peer: Address): string {
  const host = peer.hostname;
  if (ipFamily(host) === 6) {
    return host === "::1" || /^0*:(0*:)*0*1$/.test(host) ? "::1" : "::";
  }
  return host.startsWith("127.") ? "127.0.0.1" : "0.0.0.0";
}

/**
 * The receive buffer's size: the largest UDP payload over IPv6 (65527
 * bytes) fits, where Deno's own buffer of 65507 (IPv4's largest) cuts a
 * longer datagram without a word.
 */
const RECEIVE_BUFFER_SIZE = 65536;

/** What Deno's joins give back: a way to leave. */
type Membership = { leave(): Promise<void> };

/** Options the endpoint checks at send time. */
interface EndpointPolicy {
  /** Broadcast addresses refused without `allowBroadcast`, or `null`. */
  refused: Set<string> | null;
}

/** The transport of one UDP endpoint. */
class DenoDatagramTransport extends FlowControlledTransport
  implements DatagramTransport {
  readonly #loop: SchedulingLoop;
  readonly #proactor: Proactor<Deno.Conn, Deno.Listener>;
  readonly #sends: CompletionPort<number>;
  readonly #receives: CompletionPort<[Uint8Array, Deno.Addr]>;
  readonly #conn: Deno.DatagramConn;
  readonly #remote: Deno.NetAddr | undefined;
  readonly #remoteName: string | undefined;
  readonly #flow: WriteFlowControl;
  #protocol: DatagramProtocol;
  /** Where each datagram lands; one receive is in flight at a time. */
  readonly #buffer = new Uint8Array(RECEIVE_BUFFER_SIZE);
  #queue: [Uint8Array, Deno.NetAddr][] = [];
  #queued = 0;
  #inFlight = 0;
  /** The datagram in flight (while `#sending`): its length and target. */
  #sendingTo: [number, Deno.NetAddr] | null = null;
  #sending = false;
  #receiving = false;
  #started = false;
  #closing = false;
  #connClosed = false;
  #lost = false;
  #error: Error | undefined = undefined;
  /** Counts what a full queue drops, reported once per turn. */
  readonly #dropped: (queued: number, length: number) => void;
  // Bytes received (each datagram with its 8-byte header), what pays for
  // the reports of the protocol's failures, and how many the log was told
  // of; the log, made on the first failure; the methods whose first
  // failure was reported.
  #received = 0;
  #paid = 0;
  #log: PeerLog | null = null;
  #failed: Set<string> | null = null;
  readonly #refused: Set<string> | null;
  /** Multicast groups joined or being joined, by `group%iface`. */
  readonly #groups = new Map<string, Promise<Membership>>();
  /** Joins and leaves in flight; `connectionLost` waits for them. */
  #groupOps = 0;
  // Registered with the proactor until the socket is closed, so that
  // closing the loop closes it.
  readonly #owned: Owned = {
    release: () => {
      const open = !this.#closing;
      this.#release();
      return open;
    },
  };

  constructor(
    io: DenoIo,
    protocol: DatagramProtocol,
    conn: Deno.DatagramConn,
    remote: Address | undefined,
    remoteName: string | undefined,
    policy: EndpointPolicy,
  ) {
    super();
    const loop = io.loop;
    this.#loop = loop;
    this.#proactor = io.proactor;
    const release = () => this.#release();
    this.#sends = io.proactor.bind<number>({
      done: () => this.#onSent(undefined),
      failed: this.#onSent,
      orphaned: release,
    });
    this.#receives = io.proactor.bind<[Uint8Array, Deno.Addr]>({
      done: ([data, addr]) => this.#onReceived(data, addr),
      failed: this.#onReceiveError,
      orphaned: release,
    });
    this.#protocol = protocol;
    this.#conn = conn;
    this.#remote = remote && { transport: "udp", ...remote };
    this.#remoteName = remoteName;
    this.#refused = policy.refused;
    this.#flow = new WriteFlowControl(loop, this);
    this.#dropped = datagramDropReporter(
      loop,
      (message) => this.#errorReceived(new Deno.errors.WouldBlock(message)),
    );
    io.proactor.own(this.#owned, "transport");
  }

  protected override flowControl(): WriteFlowControl {
    return this.#flow;
  }

  /** Starts receiving; called once, after `connectionMade`. */
  start(): void {
    this.#started = true;
    this.#receive();
  }

  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    switch (name) {
      case "sockname":
        return this.#conn.addr;
      case "peername":
        return this.#remote ?? defaultValue;
      case "socket":
        return this.#conn;
      default:
        return defaultValue;
    }
  }

  isClosing(): boolean {
    return this.#closing;
  }

  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol as DatagramProtocol;
  }

  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  sendto(data: Uint8Array, addr?: Deno.Addr): void {
    checkWriteData(data, "sendto");
    if (this.#closing) refuseWrite("sendto", false);
    const target = this.#target(addr);
    if (this.#refused?.has(target.hostname)) {
      this.#loop.callSoon(
        this.#errorReceived,
        new Deno.errors.PermissionDenied(broadcastRefusal(target, data.length)),
      );
      return;
    }
    const queued = this.getWriteBufferSize();
    if (datagramQueueRefusal(queued, data.length) !== undefined) {
      this.#dropped(queued, data.length);
      return;
    }
    this.#queue.push([data.slice(), target]);
    this.#queued += data.length + DATAGRAM_HEADER_SIZE;
    if (!this.#sending) this.#sendNext();
    this.#flow.update(this.getWriteBufferSize());
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    // The producer stops; resumeWriting() still comes until connectionLost.
    this.#flow.endWrites();
    if (!this.#sending) this.#closeConn();
  }

  abort(): void {
    this.#fail(undefined);
  }

  getWriteBufferSize(): number {
    return this.#queued + this.#inFlight;
  }

  /**
   * Joins the multicast group `group` on one interface: for IPv4 the
   * interface's address (default `"0.0.0.0"`: the system picks), for IPv6
   * its index (default 0: the system picks).
   *
   * @param group The group's address.
   * @param iface The interface.
   * @returns A future done once joined.
   */
  joinMulticast(group: string, iface?: string | number): Future<void> {
    const [family, key, on] = checkMulticastGroup(
      "joinMulticast",
      group,
      iface,
    );
    if (this.#closing) {
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
    let joining: Promise<Membership>;
    try {
      joining = family === 4
        ? this.#conn.joinMulticastV4(group, on as string)
        : this.#conn.joinMulticastV6(group, on as number);
    } catch (error) {
      joining = Promise.reject(error);
    }
    this.#groups.set(key, joining);
    return this.#groupOp(joining.then(() => {}, (error) => {
      this.#groups.delete(key);
      throw withAddress(error, `Cannot join multicast group ${group}`);
    }));
  }

  /**
   * Leaves a multicast group joined with `joinMulticast(group, iface)`.
   *
   * @param group The group's address.
   * @param iface The interface, as given to `joinMulticast`.
   * @returns A future done once left.
   */
  leaveMulticast(group: string, iface?: string | number): Future<void> {
    const [, key] = checkMulticastGroup("leaveMulticast", group, iface);
    const joined = this.#groups.get(key);
    if (joined === undefined) {
      throw new InvalidStateError(
        `Cannot call leaveMulticast(): the endpoint has not joined ${group} on that interface, received group=${
          JSON.stringify(group)
        } iface=${JSON.stringify(iface)}`,
      );
    }
    this.#groups.delete(key);
    if (this.#connClosed) {
      // Closing the socket left every group.
      const fut = this.#loop.createFuture<void>();
      fut.setResult(undefined);
      return fut;
    }
    return this.#groupOp(
      joined.then((membership) => membership.leave()).catch((error) => {
        throw withAddress(error, `Cannot leave multicast group ${group}`);
      }),
    );
  }

  /** A future of a join or leave, counted until it settles. */
  #groupOp(operation: Promise<void>): Future<void> {
    const fut = this.#loop.createFuture<void>();
    this.#groupOps++;
    this.#proactor.watch(
      operation,
      this.#proactor.bind<void>({
        done: () => {
          this.#groupOps--;
          if (!fut.done()) fut.setResult(undefined);
          this.#maybeFinish();
        },
        failed: (error) => {
          this.#groupOps--;
          if (!fut.done()) fut.setException(error);
          this.#maybeFinish();
        },
        orphaned: () => this.#release(),
      }),
    );
    return fut;
  }

  #target(addr: Deno.Addr | undefined): Deno.NetAddr {
    const target = checkDatagramTarget(addr, this.#remote, this.#remoteName);
    return target === this.#remote
      ? this.#remote
      : { transport: "udp", ...target };
  }

  #sendNext(): void {
    const [data, addr] = this.#queue.shift()!;
    this.#queued -= data.length + DATAGRAM_HEADER_SIZE;
    this.#inFlight = data.length + DATAGRAM_HEADER_SIZE;
    this.#sendingTo = [data.length, addr];
    this.#sending = true;
    let sent: Promise<number>;
    try {
      sent = this.#conn.send(data, addr);
    } catch (error) {
      sent = Promise.reject(error);
    }
    this.#proactor.watch(sent, this.#sends);
  }

  #onSent = (error: unknown): void => {
    this.#sending = false;
    this.#inFlight = 0;
    if (this.#connClosed) {
      this.#maybeFinish();
      return;
    }
    if (error !== undefined) {
      const [length, to] = this.#sendingTo!;
      this.#errorReceived(toError(withAddress(
        error,
        `Cannot send a datagram of ${length} bytes to ${describe(to)}`,
      )));
    }
    if (this.#connClosed) return;
    if (this.#queue.length > 0) this.#sendNext();
    this.#flow.update(this.getWriteBufferSize());
    if (this.#closing && !this.#sending) this.#closeConn();
  };

  #receive(): void {
    if (!this.#started || this.#receiving || this.#closing) return;
    this.#receiving = true;
    let received: Promise<[Uint8Array, Deno.Addr]>;
    try {
      received = this.#conn.receive(this.#buffer);
    } catch (error) {
      received = Promise.reject(error);
    }
    this.#proactor.watch(received, this.#receives);
  }

  #onReceived(data: Uint8Array, addr: Deno.Addr): void {
    this.#receiving = false;
    if (this.#closing) {
      this.#maybeFinish();
      return;
    }
    const remote = this.#remote;
    const from = addr as Deno.NetAddr;
    // An endpoint with a remote address hears only from it, as a
    // connected socket would.
    if (
      remote === undefined ||
      (from.hostname === remote.hostname && from.port === remote.port)
    ) {
      this.#received += data.length + DATAGRAM_HEADER_SIZE;
      // A copy of its own size: a datagram the protocol keeps holds no
      // more memory than the peer sent, and the buffer is free again.
      const datagram = data.slice();
      try {
        this.#protocol.datagramReceived(datagram, addr);
      } catch (exception) {
        this.#report(exception, "datagramReceived");
      }
    }
    this.#receive();
  }

  #onReceiveError = (error: unknown): void => {
    this.#receiving = false;
    if (this.#closing) {
      this.#maybeFinish();
      return;
    }
    const exc = toError(error);
    // The socket itself is gone: nothing more can be received.
    if (
      exc instanceof Deno.errors.BadResource ||
      exc instanceof Deno.errors.Interrupted || !isIoError(exc)
    ) {
      this.#fail(exc);
      return;
    }
    this.#errorReceived(exc);
    this.#receive();
  };

  #errorReceived = (error: Error): void => {
    if (this.#lost) return;
    try {
      this.#protocol.errorReceived(error);
    } catch (exception) {
      this.#report(exception, "errorReceived");
    }
  };

  /**
   * Reports a failure of the protocol's, which the endpoint outlives. The
   * first of each method is reported whole, whatever the loop's peer logs
   * spent: it is how a developer sees why their code broke, and the
   * application, not its peers, makes endpoints. What the peers sent pays
   * for the rest, as `PeerLog` counts, so that peers whose every datagram
   * makes the protocol fail cannot make the log grow more than they sent
   * (asyncio logs each one). What the log cannot pay for is counted, and
   * summed up in one line after `connectionLost()`.
   */
  #report(exception: unknown, method: string): void {
    const kind = `${method}() failures`;
    const context = {
      message: `Exception in protocol.${method}()`,
      exception,
      transport: this,
      protocol: this.#protocol,
    };
    const failed = this.#failed ??= new Set();
    if (!failed.has(kind)) {
      failed.add(kind);
      this.#loop.callExceptionHandler(context);
      return;
    }
    const log = this.#log ??= new PeerLog({
      loop: this.#loop,
      perKind: Number.MAX_SAFE_INTEGER,
    });
    log.received(this.#received - this.#paid);
    this.#paid = this.#received;
    log.report(kind, context);
  }

  /** Closes at once, dropping the queue; `connectionLost(error)` follows. */
  #fail(error: Error | undefined): void {
    if (this.#connClosed) return;
    this.#error = error;
    this.#closing = true;
    this.#queue = [];
    this.#queued = 0;
    this.#flow.close();
    this.#closeConn();
  }

  /**
   * Closes the socket after the loop closed (an operation settled then):
   * nothing is reported, and nothing else is done.
   */
  #release(): void {
    this.#lost = true;
    this.#closing = true;
    this.#queue = [];
    this.#queued = 0;
    this.#proactor.disown(this.#owned);
    if (this.#connClosed) return;
    this.#connClosed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  #closeConn(): void {
    if (this.#connClosed) return;
    this.#connClosed = true;
    this.#proactor.disown(this.#owned);
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    this.#maybeFinish();
  }

  // connectionLost waits for the receive and send in flight to settle, so
  // that no Deno operation outlives the endpoint.
  #maybeFinish(): void {
    if (this.#lost || !this.#connClosed) return;
    if (this.#receiving || this.#sending || this.#groupOps > 0) return;
    this.#lost = true;
    this.#flow.close();
    this.#loop.callSoon(() => {
      try {
        this.#protocol.connectionLost(this.#error);
      } catch (exception) {
        this.#report(exception, "connectionLost");
      }
      // What the peers sent since the last failure pays for the sum-up.
      this.#log?.received(this.#received - this.#paid);
      this.#log?.close("Datagram endpoint", { transport: this });
    });
  }
}

/**
 * Opens the socket for `peer` (resolved already) and makes the transport;
 * `connectionMade` follows on the loop's next turn, then `future` is done.
 */
function openEndpoint<P extends DatagramProtocol>(
  io: DenoIo,
  future: Future<[DatagramTransport, P]>,
  protocolFactory: () => P,
  local: Address | undefined,
  peer: Address | undefined,
  remoteName: string | undefined,
  reuseAddress: boolean,
  allowBroadcast: boolean,
): void {
  const policy: EndpointPolicy = {
    refused: allowBroadcast ? null : broadcastAddresses(),
  };
  if (peer !== undefined && policy.refused?.has(peer.hostname)) {
    // A socket without SO_BROADCAST cannot connect to a broadcast address.
    throw new Deno.errors.PermissionDenied(
      `Cannot create a datagram endpoint: remoteAddr ${
        describe(peer)
      } is a broadcast address and allowBroadcast is not true, received allowBroadcast=false`,
    );
  }
  const hostname = local?.hostname ??
    (peer !== undefined ? localFor(peer) : "0.0.0.0");
  const port = local?.port ?? 0;
  let conn: Deno.DatagramConn;
  try {
    conn = Deno.listenDatagram({
      transport: "udp",
      hostname,
      port,
      reuseAddress,
      // Multicast sent by this endpoint reaches listeners on this host
      // too, as a socket's IP_MULTICAST_LOOP default is.
      loopback: true,
    });
  } catch (error) {
    throw withAddress(
      error,
      `Cannot create a datagram endpoint on ${describe({ hostname, port })}`,
    );
  }
  if (peer !== undefined) {
    try {
      checkDatagramFamilies(conn.addr as Deno.NetAddr, local, peer);
    } catch (error) {
      conn.close();
      throw error;
    }
  }
  let protocol: P;
  try {
    protocol = makeProtocol(protocolFactory, "call createDatagramEndpoint()");
  } catch (error) {
    conn.close();
    throw error;
  }
  const transport = new DenoDatagramTransport(
    io,
    protocol,
    conn,
    peer,
    remoteName,
    policy,
  );
  io.loop.callSoon(() => {
    try {
      protocol.connectionMade(transport);
    } catch (error) {
      transport.abort();
      if (!future.done()) future.setException(error);
      return;
    }
    transport.start();
    // Nobody waits for an endpoint whose future was cancelled.
    if (future.done()) transport.abort();
    else future.setResult([transport, protocol]);
  });
}

/** Opens a UDP endpoint and connects a `DatagramProtocol` to it. */
export function createDatagramEndpoint<P extends DatagramProtocol>(
  io: DenoIo,
  protocolFactory: () => P,
  options?: DatagramEndpointOptions,
): Future<[DatagramTransport, P]> {
  const {
    localAddr: local,
    remoteAddr: remote,
    reuseAddress,
    allowBroadcast,
  } = checkDatagramEndpointArgs(protocolFactory, options);
  if (!hasUnstableNet()) {
    throw unstableNetError("call createDatagramEndpoint()", "UDP");
  }
  const future = io.loop.createFuture<[DatagramTransport, P]>();
  const open = (peer: Address | undefined) => {
    // Nobody waits for an endpoint whose future was cancelled.
    if (future.done()) return;
    try {
      openEndpoint(
        io,
        future,
        protocolFactory,
        local,
        peer,
        remote?.hostname,
        reuseAddress,
        allowBroadcast,
      );
    } catch (error) {
      future.setException(error);
    }
  };
  if (remote === undefined) open(undefined);
  else if (ipFamily(remote.hostname) !== 0) {
    open({ hostname: canonicalAddress(remote.hostname), port: remote.port });
  } else {
    // A name is looked up in the family of a numeric localAddr, as asyncio
    // pairs the two addresses by family.
    const family = local === undefined ? 0 : ipFamily(local.hostname);
    io.proactor.watch(
      resolveHost(remote.hostname, remote.port, family),
      io.proactor.bind<AddrInfo[]>({
        done: ([first]) =>
          open({ hostname: first.hostname, port: remote.port }),
        failed: (error) => {
          if (!future.done()) future.setException(error);
        },
      }),
    );
  }
  return future;
}
