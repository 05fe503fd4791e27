// UDP endpoints over Deno.listenDatagram: a DatagramTransport with one
// receive and one send in flight, a bounded send queue, and completions
// brought back to the loop with callSoon.

import { InvalidStateError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { BaseProtocol, DatagramProtocol } from "../protocols/protocol.ts";
import { WriteFlowControl } from "../transports/flow_control.ts";
import type { DatagramTransport } from "../transports/transport.ts";
import type { DatagramEndpointOptions, SchedulingLoop } from "./event_loop.ts";
import {
  callProtocol,
  checkBytes,
  isIoError,
  post,
  toError,
} from "./_deno_pipes.ts";
import { checkPort, ipFamily, resolveHost } from "./_deno_names.ts";

/**
 * The most bytes the send queue holds. A datagram that would take it past
 * this is dropped, and the protocol's `errorReceived` is told, as a full
 * network buffer drops datagrams; the water marks (`pauseWriting`) warn
 * well before.
 */
export const MAX_QUEUED_BYTES = 1024 * 1024;

type Address = { hostname: string; port: number };

function checkAddress(value: unknown, name: string): Address | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object") {
    throw new TypeError(
      `Cannot create a datagram endpoint: ${name} must be { hostname, port }, received ${typeof value}`,
    );
  }
  const { hostname, port } = value as Partial<Address>;
  if (typeof hostname !== "string") {
    throw new TypeError(
      `Cannot create a datagram endpoint: ${name}.hostname must be a string, received ${typeof hostname}`,
    );
  }
  checkPort(port, `create a datagram endpoint with ${name}`);
  return { hostname, port: port! };
}

function describe(addr: Address): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/** The transport of one UDP endpoint. */
class DenoDatagramTransport implements DatagramTransport {
  readonly #loop: SchedulingLoop;
  readonly #conn: Deno.DatagramConn;
  readonly #remote: Deno.NetAddr | undefined;
  readonly #remoteName: string | undefined;
  readonly #flow: WriteFlowControl;
  #protocol: DatagramProtocol;
  #queue: [Uint8Array, Deno.NetAddr][] = [];
  #queued = 0;
  #inFlight = 0;
  #sending = false;
  #receiving = false;
  #started = false;
  #closing = false;
  #connClosed = false;
  #lost = false;
  #error: Error | undefined = undefined;

  constructor(
    loop: SchedulingLoop,
    protocol: DatagramProtocol,
    conn: Deno.DatagramConn,
    remote: Address | undefined,
    remoteName: string | undefined,
  ) {
    this.#loop = loop;
    this.#protocol = protocol;
    this.#conn = conn;
    this.#remote = remote && { transport: "udp", ...remote };
    this.#remoteName = remoteName;
    this.#flow = new WriteFlowControl(loop, this);
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
    checkBytes(data, "sendto()");
    if (this.#closing) {
      throw new InvalidStateError(
        "Cannot call sendto(): transport is closing",
      );
    }
    const target = this.#target(addr);
    if (this.#queued + this.#inFlight + data.length > MAX_QUEUED_BYTES) {
      const error = new Deno.errors.WouldBlock(
        `Cannot queue the datagram: the send queue holds ${
          this.#queued + this.#inFlight
        } of ${MAX_QUEUED_BYTES} bytes, received ${data.length} more`,
      );
      post(this.#loop, this.#errorReceived, error);
      return;
    }
    this.#queue.push([data.slice(), target]);
    this.#queued += data.length;
    if (!this.#sending) this.#sendNext();
    this.#flow.update(this.getWriteBufferSize());
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#flow.close();
    if (!this.#sending) this.#closeConn();
  }

  abort(): void {
    this.#fail(undefined);
  }

  getWriteBufferSize(): number {
    return this.#queued + this.#inFlight;
  }

  /**
   * Returns the `[low, high]` water marks of the send queue, in bytes.
   *
   * @returns The marks.
   */
  getWriteBufferLimits(): [number, number] {
    return this.#flow.getWriteBufferLimits();
  }

  /**
   * Sets the water marks of the send queue, in bytes.
   *
   * @param high The high-water mark.
   * @param low The low-water mark.
   */
  setWriteBufferLimits(high?: number, low?: number): void {
    this.#flow.setWriteBufferLimits(high, low);
  }

  #target(addr: Deno.Addr | undefined): Deno.NetAddr {
    if (addr === undefined || addr === null) {
      if (this.#remote !== undefined) return this.#remote;
      throw new TypeError(
        "Cannot call sendto(): the endpoint has no remote address, so addr is required, received undefined",
      );
    }
    if (typeof addr !== "object") {
      throw new TypeError(
        `Cannot call sendto(): addr must be { transport: "udp", hostname, port }, received ${typeof addr}`,
      );
    }
    const { hostname, port } = addr as Partial<Deno.NetAddr>;
    const remote = this.#remote;
    if (
      remote !== undefined &&
      ((hostname !== remote.hostname && hostname !== this.#remoteName) ||
        port !== remote.port)
    ) {
      throw new RangeError(
        `Cannot call sendto(): the endpoint only sends to ${
          describe(remote)
        }, received ${String(hostname)}:${String(port)}`,
      );
    }
    // Anything else wrong with the address is Deno's to find at send time,
    // and reaches errorReceived.
    if (remote !== undefined) return remote;
    return {
      transport: "udp",
      hostname: hostname as string,
      port: port as number,
    };
  }

  #sendNext(): void {
    const [data, addr] = this.#queue.shift()!;
    this.#queued -= data.length;
    this.#inFlight = data.length;
    this.#sending = true;
    let sent: Promise<number>;
    try {
      sent = this.#conn.send(data, addr);
    } catch (error) {
      sent = Promise.reject(error);
    }
    sent.then(
      () => post(this.#loop, this.#onSent, undefined),
      (error) => post(this.#loop, this.#onSent, error),
    );
  }

  #onSent = (error: unknown): void => {
    this.#sending = false;
    this.#inFlight = 0;
    if (this.#connClosed) {
      this.#maybeFinish();
      return;
    }
    if (error !== undefined) {
      this.#errorReceived(toError(error));
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
      received = this.#conn.receive();
    } catch (error) {
      received = Promise.reject(error);
    }
    received.then(
      ([data, addr]) => post(this.#loop, this.#onReceived, data, addr),
      (error) => post(this.#loop, this.#onReceiveError, error),
    );
  }

  #onReceived = (data: Uint8Array, addr: Deno.Addr): void => {
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
      const protocol = this.#protocol;
      callProtocol(
        this.#loop,
        this,
        protocol,
        "protocol.datagramReceived()",
        () => protocol.datagramReceived(data, addr),
      );
    }
    this.#receive();
  };

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
    const protocol = this.#protocol;
    callProtocol(
      this.#loop,
      this,
      protocol,
      "protocol.errorReceived()",
      () => protocol.errorReceived(error),
    );
  };

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

  #closeConn(): void {
    if (this.#connClosed) return;
    this.#connClosed = true;
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
    if (this.#receiving || this.#sending) return;
    this.#lost = true;
    post(this.#loop, () => {
      const protocol = this.#protocol;
      callProtocol(
        this.#loop,
        this,
        protocol,
        "protocol.connectionLost()",
        () => protocol.connectionLost(this.#error),
      );
    });
  }
}

async function openEndpoint<P extends DatagramProtocol>(
  loop: SchedulingLoop,
  protocolFactory: () => P,
  local: Address | undefined,
  remote: Address | undefined,
  reuseAddress: boolean,
): Promise<[DatagramTransport, P]> {
  let peer = remote;
  if (remote !== undefined && ipFamily(remote.hostname) === 0) {
    const [first] = await resolveHost(remote.hostname, remote.port);
    peer = { hostname: first.hostname, port: remote.port };
  }
  const hostname = local?.hostname ??
    (peer !== undefined && ipFamily(peer.hostname) === 6 ? "::" : "0.0.0.0");
  const conn = Deno.listenDatagram({
    transport: "udp",
    hostname,
    port: local?.port ?? 0,
    reuseAddress,
  });
  let protocol: P;
  try {
    protocol = protocolFactory();
  } catch (error) {
    conn.close();
    throw error;
  }
  const transport = new DenoDatagramTransport(
    loop,
    protocol,
    conn,
    peer,
    remote?.hostname,
  );
  const made = Promise.withResolvers<[DatagramTransport, P]>();
  post(loop, () => {
    try {
      protocol.connectionMade(transport);
    } catch (error) {
      transport.abort();
      made.reject(error);
      return;
    }
    transport.start();
    made.resolve([transport, protocol]);
  });
  return await made.promise;
}

/** Opens a UDP endpoint and connects a `DatagramProtocol` to it. */
export function createDatagramEndpoint<P extends DatagramProtocol>(
  loop: SchedulingLoop,
  protocolFactory: () => P,
  options?: DatagramEndpointOptions,
): Future<[DatagramTransport, P]> {
  if (typeof protocolFactory !== "function") {
    throw new TypeError(
      `Cannot create a datagram endpoint: protocolFactory must be a function, received ${typeof protocolFactory}`,
    );
  }
  const local = checkAddress(options?.localAddr, "localAddr");
  const remote = checkAddress(options?.remoteAddr, "remoteAddr");
  const reuseAddress = options?.reuseAddress ?? false;
  if (typeof reuseAddress !== "boolean") {
    throw new TypeError(
      `Cannot create a datagram endpoint: reuseAddress must be a boolean, received ${typeof reuseAddress}`,
    );
  }
  const future = loop.createFuture<[DatagramTransport, P]>();
  openEndpoint(loop, protocolFactory, local, remote, reuseAddress).then(
    (pair) => {
      // Nobody waits for an endpoint whose future was cancelled.
      if (future.done() || loop.isClosed()) pair[0].abort();
      else future.setResult(pair);
    },
    (error) => {
      if (!future.done() && !loop.isClosed()) future.setException(error);
    },
  );
  return future;
}
