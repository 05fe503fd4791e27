/**
 * Simulated stream sockets: connections with TCP's promises (bytes in
 * order, any segmentation, half-close, resets, a receive window that makes
 * a slow reader push back on its writer), listeners, and the `Server`
 * that `createServer` returns.
 *
 * @module
 */

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import { makeProtocol, ReportPacer } from "../futures/_runtime.ts";
import type { Future } from "../futures/future.ts";
import type {
  CreateServerOptions,
  EventLoop,
  Server,
  ServerShutdownOptions,
} from "../loop/event_loop.ts";
import type {
  BaseProtocol,
  BufferedProtocol,
  Protocol,
} from "../protocols/protocol.ts";
import { WriteBuffer } from "../transports/write_buffer.ts";
import { ServerShutdown } from "../transports/server_shutdown.ts";
import type { Transport } from "../transports/transport.ts";
import {
  addrInUse,
  addrNotAvailable,
  brokenPipe,
  connectionRefused,
  connectionReset,
  notFound,
  timedOut,
} from "./_deno_errors.ts";
import { simHost, type SimNetLoop, simWorld } from "./_sim_loop.ts";
import { StreamEnd } from "./_stream_end.ts";
import {
  bindOf,
  binds,
  bindsOverlap,
  describeError,
  loopbackAddress,
  type SimHost,
  type World,
} from "./_sim_world.ts";

type StreamProtocol = Protocol | BufferedProtocol;

function addrText(a: Deno.Addr): string {
  return a.transport === "unix" || a.transport === "unixpacket"
    ? `unix:${(a as Deno.UnixAddr).path}`
    : `${(a as Deno.NetAddr).hostname}:${(a as Deno.NetAddr).port}`;
}

// One end of a simulated connection. Its write path has StreamEnd's three
// states; here writes queue in sendBuf and leave as the peer's receive
// window allows (what has not left counts as the write buffer), and the
// end of the stream is a FIN after the buffer drains (abort() drops the
// buffer and sends it at once), then a reset when bytes arrived that the
// application never read, as the Deno loop's socket does (Deno shuts the
// write side before it closes a socket). The receive side keeps
// arrived bytes in order (segments may arrive out of order after a
// partition heals) and hands them to the protocol while it reads; each
// delivery returns window to the writer, one link latency later.
export class SimStream extends StreamEnd {
  readonly #world: World;
  readonly host: SimHost;
  readonly #loop: SimNetLoop;
  readonly #generation: number;
  readonly #local: Deno.Addr;
  readonly #remote: Deno.Addr;
  readonly #name: string;
  #protocol: StreamProtocol | null = null;
  #peer!: SimStream;
  server: SimServer | null = null;
  // Sending.
  readonly #sendBuf = new WriteBuffer();
  #sent = 0;
  #unacked = 0;
  #finPending = false;
  #finSent = false;
  #lastArrival = 0;
  // Receiving.
  readonly #recvBuf = new WriteBuffer();
  #recvNext = 0;
  readonly #outOfOrder = new Map<number, Uint8Array>();
  #delivered = 0;
  #finAt = -1;
  #eofDelivered = false;
  // Bytes arrived that the application never read before close(): a
  // reset follows the FIN when the socket closes.
  #unread = false;
  // A reset that came after the peer's FIN, waiting for the next write.
  #latent: Error | null = null;
  // Timed out: the kernel gave up and dropped the socket, so it answers
  // whatever comes for it later with a reset, closed here or not.
  #dropped = false;
  // Lost before a protocol was attached: attach() tells the protocol.
  #lostUnmade: { exc: Error | undefined } | null = null;

  constructor(
    world: World,
    host: SimHost,
    local: Deno.Addr,
    remote: Deno.Addr,
  ) {
    super(host.loop!);
    this.#world = world;
    this.host = host;
    this.#loop = host.loop!;
    this.#generation = host.generation;
    this.#local = local;
    this.#remote = remote;
    this.#name = `${addrText(local)}>${addrText(remote)}`;
    host.ends.add(this);
  }

  static join(a: SimStream, b: SimStream): void {
    a.#peer = b;
    b.#peer = a;
  }

  protected get label(): string {
    return `SimStream ${this.#name}`;
  }

  /**
   * Gives the end its protocol and calls `connectionMade` (on its loop);
   * what that threw, if it did (the end is then lost with it).
   */
  attach(protocol: StreamProtocol): { failed: unknown } | undefined {
    this.#protocol = protocol;
    // Reset before its protocol was made (a fault, or the peer's host
    // crashing as the handshake completed): as a socket whose reset its
    // first read finds, it is made, then lost.
    const made = this.connectionMade();
    if (!this.lost) {
      if (made === undefined) this.schedule();
    } else if (this.#lostUnmade !== null) {
      const { exc } = this.#lostUnmade;
      this.#lostUnmade = null;
      this.#loop.callSoon(() => this.notifyLost(exc));
    }
    return made;
  }

  /** Whether the connection is lost (reset, closed or crashed). */
  isLost(): boolean {
    return this.lost;
  }

  /** Closed or aborted here (its listener closed), not reset by the peer. */
  closedHere(): boolean {
    return this.closeCalled;
  }

  // ---- Transport ----

  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    if (name === "peername") return this.#remote;
    if (name === "sockname") return this.#local;
    if (name === "socket") {
      // The Deno loop's view of a socket: its options change nothing a
      // simulated socket does, and the run waits for no socket anyway.
      return {
        localAddr: this.#local,
        remoteAddr: this.#remote,
        setNoDelay: (_on = true) => {},
        setKeepAlive: (_on = true) => {},
        ref: () => {},
        unref: () => {},
      };
    }
    return defaultValue;
  }

  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol as StreamProtocol;
  }

  getProtocol(): BaseProtocol {
    return this.#protocol!;
  }

  override pauseReading(): void {
    super.pauseReading();
    this.delivery?.cancel();
    this.delivery = null;
  }

  getWriteBufferSize(): number {
    return this.lost ? 0 : this.#sendBuf.size;
  }

  // ---- What the simulation does to an end ----

  /** A fault: the connection is reset, both ends learn it now. */
  reset(): void {
    if (this.lost) return;
    this.#world.record(this.host.name, "reset", this.#name);
    this.lose(connectionReset("Connection reset by peer"));
    this.#peer.lose(connectionReset("Connection reset by peer"));
  }

  /** The host crashed: the peer gets a reset; nothing runs here any more. */
  crash(): void {
    if (this.lost) return;
    this.#sendReset();
    this.lost = true;
    this.lostNotified = true;
    this.delivery = null;
    this.flow.close();
    this.host.ends.delete(this);
    this.server?.connectionGone(this);
  }

  protected send(data: Uint8Array): void {
    if (this.#latent !== null) return this.lose(this.#latent);
    this.#sendBuf.push(data);
    this.#transmit();
  }

  protected sendEof(): void {
    this.#finPending = true;
    this.#transmit();
  }

  protected startClose(): void {
    if (this.#recvBuf.size > 0 || this.#outOfOrder.size > 0) {
      this.#unread = true;
    }
    this.#recvBuf.clear();
    this.#outOfOrder.clear();
    this.sendEof();
  }

  protected startAbort(): void {
    this.#world.record(this.host.name, "abort", this.#name);
    this.#closeSocket();
    this.lose(undefined);
  }

  protected broken(exc: Error | undefined): void {
    this.#closeSocket();
    this.lose(exc);
  }

  /** The segment the connection was made with arrived for a dead end. */
  refuse(): void {
    this.#world.record(this.host.name, "rst-sent", this.#name);
    this.#sendReset();
    this.lose(undefined);
  }

  /** What this end sends arrives no earlier than `time` (the ACK's). */
  follow(time: number): void {
    this.#lastArrival = Math.max(this.#lastArrival, time);
  }

  // ---- Internals ----

  #alive(): boolean {
    return !this.lost && this.host.up &&
      this.host.generation === this.#generation;
  }

  /** Sends what the peer's window allows, then a pending FIN. */
  #transmit(): void {
    if (!this.#alive()) return;
    const world = this.#world;
    const buf = this.#sendBuf;
    const window = world.settings.receiveBuffer;
    const peer = this.#peer;
    while (buf.size > 0 && this.#unacked < window) {
      const n = world.cut(Math.min(buf.size, window - this.#unacked));
      const data = buf.take(n);
      const offset = this.#sent;
      this.#sent += n;
      this.#unacked += n;
      this.#lastArrival = world.send(
        this.host,
        peer.host,
        n,
        "stream",
        () => peer.#segment(offset, data),
        this.#lastArrival,
        this.#onTimeout,
      );
    }
    this.flow.update(buf.size);
    if (buf.size === 0 && this.closeCalled && this.#unread) {
      this.#closeSocket();
      this.lose(undefined);
      return;
    }
    if (buf.size === 0 && this.#finPending && !this.#finSent) this.#sendFin();
    if (buf.size === 0 && this.#finSent && this.closeCalled) {
      this.lose(undefined);
    }
  }

  /**
   * Closes the socket as the Deno loop's transports do (Deno shuts a
   * socket's write side before it closes it): what was not sent is
   * dropped, a FIN follows the bytes that left, and when bytes arrived
   * that the protocol was never given, the kernel resets the connection
   * after it (RFC 2525 section 2.17; the peer, in CLOSE_WAIT, finds it as
   * EPIPE).
   */
  #closeSocket(): void {
    const unread = this.#unread || this.#recvBuf.size > 0 ||
      this.#outOfOrder.size > 0;
    this.#sendBuf.clear();
    if (this.#alive() && !this.#finSent) this.#sendFin();
    if (unread) {
      this.#world.record(this.host.name, "rst-sent", this.#name);
      this.#sendReset();
    }
  }

  /** Sends the end of the stream, after the bytes sent so far. */
  #sendFin(): void {
    this.#finSent = true;
    const at = this.#sent;
    const peer = this.#peer;
    this.#lastArrival = this.#world.send(
      this.host,
      peer.host,
      0,
      "stream",
      () => peer.#fin(at),
      this.#lastArrival,
      this.#onTimeout,
    );
  }

  #onTimeout = (): void => {
    if (this.lost) return;
    this.#world.record(this.host.name, "timeout", this.#name);
    this.#dropped = true;
    this.lose(timedOut("Connection timed out"));
  };

  #sendReset(): void {
    const peer = this.#peer;
    this.#world.send(
      this.host,
      peer.host,
      0,
      "control",
      () => peer.#resetArrived(),
      this.#lastArrival,
    );
  }

  #resetArrived(): void {
    if (!this.#alive()) return;
    this.#world.record(this.host.name, "rst", this.#name);
    // A connection still half-open (its ACK was dropped) is dropped, with
    // whatever came with it.
    const halfOpen = this.server === null && this.#protocol === null;
    if (this.#finAt >= 0 && !this.closeCalled && !halfOpen) {
      // In CLOSE_WAIT (the peer's FIN came, this end has not closed) a
      // reset is EPIPE, as Linux's tcp_reset() sets it; with nothing
      // left to read, the next write finds it, or one waiting now.
      const error = brokenPipe("Broken pipe");
      if (this.#sendBuf.size > 0) this.lose(error);
      else this.#latent = error;
      return;
    }
    this.lose(connectionReset("Connection reset by peer"));
  }

  /** Bytes from the peer arrive (on no loop: the world runs this). */
  #segment(offset: number, data: Uint8Array): void {
    if (!this.#alive()) {
      // A socket closed here (or timed out, or lost in a crash the host
      // came back from): the kernel answers data for it with a reset.
      const forgotten = this.closeCalled || this.#dropped ||
        this.host.generation !== this.#generation;
      if (this.lost && this.host.up && forgotten) {
        this.#world.record(this.host.name, "rst-sent", this.#name);
        this.#sendReset();
      }
      return;
    }
    this.#world.record(
      this.host.name,
      "recv",
      `${this.#name} ${data.length}@${offset}`,
    );
    if (this.closeCalled) {
      // Never to be read: the socket resets once it closes.
      if (data.length > 0 && !this.#unread) {
        this.#unread = true;
        this.#transmit();
      }
      return;
    }
    if (offset === this.#recvNext) {
      this.#recvBuf.push(data);
      this.#recvNext += data.length;
      const ooo = this.#outOfOrder;
      while (ooo.size > 0) {
        const next = ooo.get(this.#recvNext);
        if (next === undefined) break;
        ooo.delete(this.#recvNext);
        this.#recvBuf.push(next);
        this.#recvNext += next.length;
      }
    } else if (offset > this.#recvNext) {
      this.#outOfOrder.set(offset, data);
    }
    this.schedule();
  }

  #fin(at: number): void {
    if (!this.#alive()) return;
    this.#world.record(this.host.name, "fin", this.#name);
    this.#finAt = at;
    this.schedule();
  }

  #acked(n: number): void {
    if (!this.#alive()) return;
    this.#unacked -= n;
    this.#transmit();
  }

  protected schedule(): void {
    if (this.delivery !== null || !this.reading) return;
    if (this.closeCalled || this.lost || this.#protocol === null) return;
    const pending = this.#recvBuf.size > 0 ||
      (this.#finAt >= 0 && !this.#eofDelivered &&
        this.#delivered === this.#finAt);
    if (!pending) return;
    this.delivery = this.#loop.callSoon(this.#deliver);
  }

  #deliver = (): void => {
    this.delivery = null;
    if (!this.reading || this.closeCalled || this.lost) return;
    const buf = this.#recvBuf;
    if (buf.size > 0) {
      const n = this.portion(this.#world.cut(buf.size));
      if (n < 0) return;
      const data = buf.take(n);
      this.#delivered += n;
      const peer = this.#peer;
      // Held back too long, the acknowledgement times out the writer, which
      // would be retransmitting the bytes it has not heard of.
      this.#world.send(
        this.host,
        peer.host,
        0,
        "control",
        () => peer.#acked(n),
        0,
        peer.#onTimeout,
      );
      if (!this.feed(data)) return;
    } else if (this.#finAt >= 0 && !this.#eofDelivered) {
      this.#eofDelivered = true;
      this.deliverEof();
    }
    this.schedule();
  };

  protected dropped(exc: Error | undefined): void {
    this.#sendBuf.clear();
    this.#recvBuf.clear();
    this.#outOfOrder.clear();
    this.host.ends.delete(this);
    this.#world.record(
      this.host.name,
      "lost",
      `${this.#name}${exc === undefined ? "" : " " + describeError(exc)}`,
    );
    const loop = this.#loop;
    if (loop.isClosed() || !this.host.up) return;
    loop.callSoon(() => {
      this.server?.connectionGone(this);
      // An end whose protocol is not made yet: attach() tells it, if ever.
      if (this.#protocol !== null) this.notifyLost(exc);
      else this.#lostUnmade = { exc };
    });
  }
}

/** Where a stream connects or listens: a port (with a name) or a path. */
export type StreamTarget = { name: string; port: number } | { path: string };

/**
 * Opens a connection from `loop`'s host. The handshake crosses the link
 * (SYN, then SYN-ACK or a reset), so a refused connection or one into a
 * partition takes virtual time to fail.
 */
export function connectStream<P extends StreamProtocol>(
  loop: SimNetLoop,
  factory: () => P,
  target: StreamTarget,
): Future<[Transport, P]> {
  const world = simWorld(loop);
  const host = simHost(loop);
  const fut = loop.createFuture<[Transport, P]>();
  const label = "path" in target
    ? `unix:${target.path}`
    : `${target.name}:${target.port}`;
  const dest = "path" in target ? host : world.resolve(host, target.name);
  if (dest === null) {
    world.record(host.name, "resolve", `${label} not found`);
    fut.setException(
      notFound(
        `Cannot connect to ${label}: no simulated host has this name or address`,
      ),
    );
    return fut;
  }
  const generation = host.generation;
  const key = "path" in target ? `unix:${target.path}` : `${target.port}`;
  let settled = false;
  const giveUp = (error: Error) => {
    if (settled) return;
    settled = true;
    if (host.generation !== generation || fut.done()) return;
    fut.setException(error);
  };
  world.record(host.name, "connect", `${label} (${dest.name})`);
  world.at(world.now + world.settings.connectTimeout, () => {
    // Given up on (cancelled): nothing timed out.
    if (settled || fut.cancelled()) return;
    world.record(host.name, "connect-timeout", label);
    giveUp(timedOut(`Cannot connect to ${label}: connection timed out`));
  });
  const loopback = "path" in target ||
    (dest === host && target.name !== host.name &&
      target.name !== host.address);
  // The address connected to, which a listener must be bound to.
  const destAddress = "path" in target
    ? ""
    : loopback
    ? loopbackAddress(target.name) ?? "127.0.0.1"
    : dest.address;
  // SYN; one that gets no answer — a host that is down, a TCP listener
  // whose backlog is full (Linux drops the SYN) — is sent again 1 s, 2 s,
  // 4 s, … 32 s after the last; the connect times out 64 s after the last
  // (Linux's six retries, 127 s in all) if `connectTimeout` did not first.
  const sendSyn = (rto: number): void => {
    const sentAt = world.now;
    world.send(host, dest, 0, "control", () => onSyn(rto, sentAt));
  };
  const unanswered = (rto: number, sentAt: number): void => {
    world.at(Math.max(world.now, sentAt + rto), () => {
      if (settled || fut.cancelled() || host.generation !== generation) {
        return;
      }
      if (rto < 64) return sendSyn(rto * 2);
      world.record(host.name, "connect-timeout", label);
      giveUp(timedOut(`Cannot connect to ${label}: connection timed out`));
    });
  };
  const onSyn = (rto: number, sentAt: number): void => {
    if (settled) return;
    // A host that is down answers nothing.
    if (!dest.up) return unanswered(rto, sentAt);
    // A connect given up on (cancelled) before its SYN arrived: the
    // client's kernel answers the SYN-ACK with a reset, and the server's
    // application never hears of it.
    if (fut.cancelled()) return;
    const server = pickServer(world, dest, key, destAddress);
    if (
      server === null && !("path" in target) &&
      dest.listeners.get(key)?.some((s) =>
        s.listening() && s.takes(destAddress)
      )
    ) {
      world.record(dest.name, "syn-drop", label);
      return unanswered(rto, sentAt);
    }
    if (server === null) {
      world.send(dest, host, 0, "control", () => {
        if (settled) return;
        world.record(host.name, "refused", label);
        giveUp(connectionRefused(`Cannot connect to ${label}: refused`));
      });
      return;
    }
    const localPort = "path" in target
      ? 0
      : host.allocPort((p) => host.listeners.has(`${p}`));
    // Over loopback both ends have the address connected to.
    const clientAddr: Deno.Addr = "path" in target
      ? { transport: "unix", path: "" }
      : {
        transport: "tcp",
        hostname: loopback ? destAddress : host.address,
        port: localPort,
      };
    const serverAddr: Deno.Addr = "path" in target
      ? { transport: "unix", path: target.path }
      : { transport: "tcp", hostname: destAddress, port: target.port };
    if (host.loop === null || !host.up || host.generation !== generation) {
      return;
    }
    // A TCP server's kernel holds the connection half-open (its SYN queue)
    // and answers with a SYN-ACK; the listener gets it only when the
    // client's ACK arrives, so a connect given up on meanwhile never
    // reaches the server's application. A Unix socket's connect is queued
    // at the listener at once.
    const clientEnd = new SimStream(world, host, clientAddr, serverAddr);
    const serverEnd = new SimStream(world, dest, serverAddr, clientAddr);
    SimStream.join(clientEnd, serverEnd);
    if ("path" in target) server.accept(serverEnd);
    // SYN-ACK.
    world.send(dest, host, 0, "control", () => {
      // A client host that crashed reset its ends as it did.
      if (host.generation !== generation) return;
      if (settled || fut.cancelled()) {
        // Given up on: the client's kernel answers with a reset.
        clientEnd.refuse();
        return;
      }
      settled = true;
      world.record(host.name, "connected", `${label}`);
      // ACK; what the client writes next follows it.
      if (!("path" in target)) {
        clientEnd.follow(handshake(server, clientEnd, serverEnd)(1));
      }
      loop.callSoon(() => {
        if (fut.done()) return clientEnd.abort();
        let protocol: P;
        try {
          protocol = makeProtocol(
            factory,
            `call ${
              "path" in target ? "createUnixConnection" : "createConnection"
            }()`,
          );
        } catch (e) {
          clientEnd.abort();
          fut.setException(e);
          return;
        }
        const made = clientEnd.attach(protocol);
        if (made !== undefined) fut.setException(made.failed);
        else fut.setResult([clientEnd, protocol]);
      });
    });
  };
  // The rest of a TCP handshake, once `clientEnd` got the SYN-ACK: gives
  // the sending of the client's ACK, which returns the ACK's arrival time
  // (`rto`: when the server sends its SYN-ACK again if the ACK is dropped).
  const handshake = (
    server: SimServer,
    clientEnd: SimStream,
    serverEnd: SimStream,
  ): (rto: number) => number => {
    // One held on a broken link longer than `retransmitTimeout` finds the
    // connection given up (the server's SYN-ACKs went unanswered
    // meanwhile): the server resets it, and its application never hears
    // of it.
    const sendAck = (rto: number): number =>
      world.send(host, dest, 0, "control", () => onAck(rto), 0, () => {
        if (!serverEnd.isLost() && serverEnd.server === null) {
          serverEnd.refuse();
        }
      });
    // The ACK completes the handshake: the connection joins the listener's
    // accept queue. A full queue drops the ACK, as Linux does, and the
    // server sends its SYN-ACK again 1 s, 2 s, … 16 s later (Linux's five
    // retries), each answered by the client's ACK; then it gives the
    // connection up, and the client is reset.
    const onAck = (rto: number): void => {
      if (serverEnd.isLost()) return;
      if (!server.listening()) return serverEnd.refuse();
      if (server.canQueue()) return server.accept(serverEnd);
      world.record(dest.name, "ack-drop", label);
      resendSynAck(rto);
    };
    // A client host that restarted meanwhile knows nothing of the
    // connection and answers the SYN-ACK with a reset; one that is down
    // answers nothing, and the server goes on resending until it gives up.
    const resendSynAck = (rto: number): void => {
      if (rto > 16) return serverEnd.refuse();
      world.at(world.now + rto, () => {
        if (serverEnd.isLost()) return;
        world.send(dest, host, 0, "control", () => {
          if (!host.up) return resendSynAck(rto * 2);
          if (host.generation !== generation) return clientEnd.refuse();
          sendAck(rto * 2);
        });
      });
    };
    return sendAck;
  };
  sendSyn(1);
  return fut;
}

function pickServer(
  world: World,
  host: SimHost,
  key: string,
  address: string,
): SimServer | null {
  const servers = host.listeners.get(key)?.filter((s) =>
    s.canQueue() && s.takes(address)
  );
  if (servers === undefined || servers.length === 0) return null;
  return servers.length === 1
    ? servers[0]
    : servers[world.rng.int(servers.length)];
}

/** Starts listening on `loop`'s host. */
export function listenStream(
  loop: SimNetLoop,
  factory: () => StreamProtocol,
  target: { hosts: string[]; port: number } | { path: string },
  options?: CreateServerOptions,
): Future<Server> {
  const world = simWorld(loop);
  const host = simHost(loop);
  const fut = loop.createFuture<Server>();
  let key: string;
  let addresses: Deno.Addr[];
  // A Unix socket takes every connection to its path.
  let bound = ["::"];
  if ("path" in target) {
    key = `unix:${target.path}`;
    addresses = [{ transport: "unix", path: target.path }];
  } else {
    let port = target.port;
    // No host: every address, IPv4 and IPv6, as Deno's "::" listener.
    const names = target.hosts.length === 0 ? ["::"] : target.hosts;
    const foreign = names.find((n) =>
      ![
        "0.0.0.0",
        "::",
        "127.0.0.1",
        "localhost",
        "::1",
        host.name,
        host.address,
      ]
        .includes(n)
    );
    if (foreign !== undefined) {
      fut.setException(
        addrNotAvailable(
          `Cannot listen on ${foreign}:${port}: not an address of host ${host.name}`,
        ),
      );
      return fut;
    }
    bound = [...new Set(names.map((n) => bindOf(n, host)))];
    if (port === 0) port = host.allocPort((p) => host.listeners.has(`${p}`));
    key = `${port}`;
    // One address per distinct one listened on, all on the one port.
    const hostnames = new Set(names.map(loopbackAddress));
    addresses = [...hostnames].map((hostname) => ({
      transport: "tcp",
      hostname: hostname ?? host.address,
      port,
    }));
  }
  const existing = host.listeners.get(key);
  const clash = existing?.filter((s) =>
    s.bound.some((a) => bound.some((b) => bindsOverlap(a, b)))
  );
  if (
    clash !== undefined && clash.length > 0 &&
    !(options?.reusePort && clash.every((s) => s.reusePort))
  ) {
    fut.setException(
      addrInUse(`Cannot listen on ${addrText(addresses[0])}: address in use`),
    );
    return fut;
  }
  const backlog = options?.backlog ?? 128;
  if (!Number.isInteger(backlog) || backlog < 0) {
    throw new RangeError(
      `Cannot call createServer(): backlog must be a whole number >= 0, received ${
        formatReceived(backlog)
      }`,
    );
  }
  const server = new SimServer(loop, key, addresses, factory, {
    bound,
    reusePort: options?.reusePort ?? false,
    backlog,
  });
  host.listeners.set(key, [...(existing ?? []), server]);
  world.record(host.name, "listen", addrText(addresses[0]));
  if (options?.startServing !== false) server.startServing();
  fut.setResult(server);
  return fut;
}

/**
 * A simulated listener and the `Server` handed to the application.
 *
 * `shutdown()` keeps `DenoServer`'s rules on the virtual clock: both keep
 * their connections and grace period in a `ServerShutdown`.
 */
export class SimServer implements Server {
  readonly #loop: SimNetLoop;
  readonly #key: string;
  readonly #addresses: Deno.Addr[];
  readonly #factory: () => StreamProtocol;
  /** What it is bound to (see `bindOf()`). */
  readonly bound: readonly string[];
  readonly reusePort: boolean;
  readonly #shutdown: ServerShutdown<SimStream>;
  readonly #backlogLimit: number;
  #backlog: SimStream[] = [];
  // Protocol factory failures are reported at most once in 10 s.
  readonly #factoryReports = new ReportPacer(10);
  #serving = false;
  #closed = false;

  constructor(
    loop: SimNetLoop,
    key: string,
    addresses: Deno.Addr[],
    factory: () => StreamProtocol,
    flags: { bound: string[]; reusePort: boolean; backlog: number },
  ) {
    this.#backlogLimit = flags.backlog;
    this.#loop = loop;
    this.#key = key;
    this.#addresses = addresses;
    this.#factory = factory;
    this.bound = flags.bound;
    this.reusePort = flags.reusePort;
    this.#shutdown = new ServerShutdown(loop, this, () => !this.#closed);
  }

  /** Whether it is bound to `address`. */
  takes(address: string): boolean {
    return this.bound.some((b) => binds(b, address));
  }

  /** Whether it is still listening (not closed). */
  listening(): boolean {
    return !this.#closed;
  }

  /**
   * Whether a new connection can be taken: serving, or listening with room
   * in the backlog (connections wait there until `startServing()`).
   */
  canQueue(): boolean {
    return !this.#closed &&
      (this.#serving || this.#backlog.length < this.#backlogLimit);
  }

  /** A connection reached this listener: its protocol is made on the loop. */
  accept(end: SimStream): void {
    end.server = this;
    this.#shutdown.add(end);
    if (!this.#serving) {
      this.#backlog.push(end);
      return;
    }
    this.#serve(end);
  }

  #serve(end: SimStream): void {
    simWorld(this.#loop).record(
      simHost(this.#loop).name,
      "accept",
      String(addrText(end.getExtraInfo("peername") as Deno.Addr)),
    );
    this.#loop.callSoon(() => {
      // One reset meanwhile is still accepted, as Linux's accept() returns
      // it: attach() makes it, then loses it.
      if (end.closedHere()) return;
      let protocol: StreamProtocol;
      try {
        protocol = makeProtocol(this.#factory, "serve a connection");
      } catch (exception) {
        // Once per connection: paced, as a Deno server paces it.
        this.#factoryReports.report(
          this.#loop,
          { message: "Protocol factory failed", exception },
          "factory failures",
        );
        end.abort();
        return;
      }
      end.attach(protocol);
    });
  }

  connectionGone(end: SimStream): void {
    this.#shutdown.delete(end);
  }

  /** The host crashed: nothing of the server is left to wait for. */
  crash(): void {
    this.#closed = true;
    this.#serving = false;
    this.#shutdown.clear();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#serving = false;
    this.#factoryReports.sumUp(this.#loop, "Server closed", "factory failures");
    // Connections never accepted are refused, as a closed listener's are.
    for (const end of this.#backlog) end.abort();
    this.#backlog = [];
    const host = simHost(this.#loop);
    const list = host.listeners.get(this.#key)?.filter((s) => s !== this);
    if (list === undefined || list.length === 0) {
      host.listeners.delete(this.#key);
    } else host.listeners.set(this.#key, list);
    simWorld(this.#loop).record(
      host.name,
      "unlisten",
      addrText(this.#addresses[0]),
    );
    this.#shutdown.closed();
    this.#shutdown.settle();
  }

  shutdown(options?: ServerShutdownOptions): Future<void> {
    return this.#shutdown.shutdown(
      options,
      () => this.close(),
      () =>
        simWorld(this.#loop).record(
          simHost(this.#loop).name,
          "shutdown",
          `${addrText(this.#addresses[0])} connections=${this.#shutdown.size}`,
        ),
    );
  }

  closeClients(): void {
    this.#shutdown.closeClients();
  }

  abortClients(): void {
    this.#shutdown.abortClients();
  }

  waitClosed(): Future<void> {
    return this.#shutdown.waitClosed();
  }

  startServing(): Future<void> {
    if (this.#closed) {
      throw new InvalidStateError(
        "Cannot start serving: the server is closed",
      );
    }
    this.#serving = true;
    const waiting = this.#backlog;
    this.#backlog = [];
    for (const end of waiting) this.#serve(end);
    const fut = this.#loop.createFuture<void>();
    fut.setResult(undefined);
    return fut;
  }

  serveForever(): Future<void> {
    return this.#shutdown.serveForever(
      this.#closed,
      () => this.startServing(),
      () => this.close(),
    );
  }

  isServing(): boolean {
    return this.#serving;
  }

  addresses(): Deno.Addr[] {
    return this.#closed ? [] : [...this.#addresses];
  }

  getLoop(): EventLoop {
    return this.#loop;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }
}
