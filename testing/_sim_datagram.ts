/**
 * Simulated datagram endpoints: UDP as the network treats it — each
 * datagram may be dropped, duplicated or overtaken, as the seed decides.
 *
 * @module
 */

import { InvalidStateError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { DatagramEndpointOptions } from "../loop/event_loop.ts";
import type { BaseProtocol, DatagramProtocol } from "../protocols/protocol.ts";
import type { DatagramTransport } from "../transports/transport.ts";
import { addrInUse, addrNotAvailable, notFound } from "./_deno_errors.ts";
import type { SimulatedLoop } from "./_sim_loop.ts";
import type { SimHost, World } from "./_sim_world.ts";

/** The largest UDP payload over IPv4, in bytes. */
const MAX_DATAGRAM = 65507;

function checkAddr(
  what: string,
  addr: unknown,
): { hostname: string; port: number } {
  const a = addr as { hostname?: unknown; port?: unknown };
  if (
    typeof a !== "object" || a === null || typeof a.hostname !== "string" ||
    typeof a.port !== "number"
  ) {
    throw new TypeError(
      `Cannot call ${what}: an address must be { hostname, port }, received ${
        JSON.stringify(addr)
      }`,
    );
  }
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) {
    throw new RangeError(
      `Cannot call ${what}: port must be 0 to 65535, received ${a.port}`,
    );
  }
  return { hostname: a.hostname, port: a.port };
}

/** A bound datagram endpoint of a simulated host. */
export class SimDatagram implements DatagramTransport {
  readonly #world: World;
  readonly #host: SimHost;
  readonly #loop: SimulatedLoop;
  readonly #generation: number;
  readonly port: number;
  readonly #local: Deno.NetAddr;
  readonly #remote: Deno.NetAddr | undefined;
  #protocol: DatagramProtocol;
  #closed = false;

  constructor(
    loop: SimulatedLoop,
    port: number,
    local: Deno.NetAddr,
    remote: Deno.NetAddr | undefined,
    protocol: DatagramProtocol,
  ) {
    this.#loop = loop;
    this.#world = loop.world;
    this.#host = loop.host;
    this.#generation = loop.host.generation;
    this.port = port;
    this.#local = local;
    this.#remote = remote;
    this.#protocol = protocol;
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
    return 0;
  }

  sendto(data: Uint8Array, addr?: Deno.Addr): void {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot call sendto(): data must be a Uint8Array, received ${
          data === null ? "null" : typeof data
        }`,
      );
    }
    if (this.#closed) {
      throw new InvalidStateError(
        "Cannot call sendto(): the transport is closing",
      );
    }
    let to: { hostname: string; port: number };
    if (addr === undefined) {
      if (this.#remote === undefined) {
        throw new TypeError(
          "Cannot call sendto(): no address given and the endpoint has no remoteAddr, received addr=undefined",
        );
      }
      to = this.#remote;
    } else {
      to = checkAddr("sendto()", addr);
      const r = this.#remote;
      if (
        r !== undefined && (r.hostname !== to.hostname || r.port !== to.port)
      ) {
        throw new InvalidStateError(
          `Cannot call sendto(): the endpoint is connected to ${r.hostname}:${r.port}, received ${to.hostname}:${to.port}`,
        );
      }
    }
    const world = this.#world;
    const host = this.#host;
    if (data.length > MAX_DATAGRAM) {
      this.#error(
        new RangeError(
          `Cannot send a datagram: at most ${MAX_DATAGRAM} bytes, received ${data.length}`,
        ),
      );
      return;
    }
    const dest = world.resolve(host, to.hostname);
    if (dest === null) {
      this.#error(
        notFound(`Cannot send to ${to.hostname}: no simulated host has it`),
      );
      return;
    }
    const copy = data.slice();
    const loopback = dest === host &&
      (to.hostname === "127.0.0.1" || to.hostname === "localhost");
    const from: Deno.NetAddr = {
      transport: "udp",
      hostname: loopback ? "127.0.0.1" : host.address,
      port: this.port,
    };
    const { datagramDrop, datagramDuplicate } = world.settings;
    if (world.rng.chance(datagramDrop)) {
      world.record(host.name, "drop", `datagram to ${to.hostname}:${to.port}`);
      return;
    }
    const copies = world.rng.chance(datagramDuplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      world.send(host, dest, copy.length, "datagram", () => {
        const ep = dest.up ? dest.datagrams.get(to.port) : undefined;
        if (ep === undefined || !ep.#accepts(from)) {
          world.record(dest.name, "drop", `datagram for port ${to.port}`);
          return;
        }
        world.record(
          dest.name,
          "datagram",
          `${from.hostname}:${from.port}>${to.port} ${copy.length}`,
        );
        ep.#loop.callSoon(() => {
          if (ep.#closed) return;
          ep.#protocol.datagramReceived(
            i === 0 ? copy : copy.slice(),
            { ...from },
          );
        });
      });
    }
  }

  close(): void {
    this.abort();
  }

  abort(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#host.datagrams.get(this.port) === this) {
      this.#host.datagrams.delete(this.port);
    }
    this.#loop.callSoon(() => this.#protocol.connectionLost(undefined));
  }

  /** The host crashed. */
  crash(): void {
    this.#closed = true;
  }

  #accepts(from: Deno.NetAddr): boolean {
    if (this.#closed || this.#host.generation !== this.#generation) {
      return false;
    }
    const r = this.#remote;
    if (r === undefined) return true;
    const rHost = this.#world.resolve(this.#host, r.hostname);
    const fHost = this.#world.resolve(this.#host, from.hostname);
    return r.port === from.port && rHost === fHost;
  }

  #error(error: Error): void {
    this.#loop.callSoon(() => this.#protocol.errorReceived(error));
  }
}

/** Opens a datagram endpoint on `loop`'s host. */
export function openDatagram<P extends DatagramProtocol>(
  loop: SimulatedLoop,
  factory: () => P,
  options?: DatagramEndpointOptions,
): Future<[DatagramTransport, P]> {
  const world = loop.world;
  const host = loop.host;
  const fut = loop.createFuture<[DatagramTransport, P]>();
  const local = options?.localAddr === undefined
    ? { hostname: "0.0.0.0", port: 0 }
    : checkAddr("createDatagramEndpoint()", options.localAddr);
  const remote = options?.remoteAddr === undefined
    ? undefined
    : checkAddr("createDatagramEndpoint()", options.remoteAddr);
  if (world.resolve(host, local.hostname) !== host) {
    fut.setException(
      addrNotAvailable(
        `Cannot bind ${local.hostname}:${local.port}: not an address of host ${host.name}`,
      ),
    );
    return fut;
  }
  let port = local.port;
  if (port === 0) {
    port = host.allocPort((p) => host.datagrams.has(p));
  } else if (host.datagrams.has(port) && !options?.reuseAddress) {
    fut.setException(
      addrInUse(`Cannot bind ${local.hostname}:${port}: address in use`),
    );
    return fut;
  }
  const loopback = local.hostname === "127.0.0.1" ||
    local.hostname === "localhost";
  let protocol: P;
  try {
    protocol = factory();
  } catch (e) {
    fut.setException(e);
    return fut;
  }
  const transport = new SimDatagram(
    loop,
    port,
    {
      transport: "udp",
      hostname: loopback ? "127.0.0.1" : host.address,
      port,
    },
    remote === undefined ? undefined : { transport: "udp", ...remote },
    protocol,
  );
  host.datagrams.set(port, transport);
  world.record(host.name, "bind", `udp ${port}`);
  loop.callSoon(() => {
    protocol.connectionMade(transport);
    fut.setResult([transport, protocol]);
  });
  return fut;
}
