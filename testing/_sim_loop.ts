/**
 * The loops on the simulator's in-memory network: `SimNetLoop`, the full
 * `EventLoop` interface on one host of it, which `VirtualTimeLoop` (one
 * host of its own) and `SimulatedLoop` share; and `SimulatedLoop`, the
 * loop of one simulated host, on the simulation's virtual clock.
 *
 * Both live in this one file: the world imports `SimulatedLoop` and the
 * transports import the world, so a base class in a file of its own would
 * be evaluated after the class that extends it whenever the base's file
 * is the one imported first.
 *
 * @module
 */

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import { wrapFuture } from "../futures/wrap_future.ts";
import { hostHop, keepUnretrieved } from "../futures/_runtime.ts";
import { BaseEventLoop } from "../loop/base_event_loop.ts";
import type {
  AddrInfo,
  CreateConnectionOptions,
  CreateServerOptions,
  DatagramEndpointOptions,
  EventLoop,
  Executor,
  GetaddrinfoOptions,
  Server,
  StartTlsOptions,
  SubprocessOptions,
} from "../loop/event_loop.ts";
import { Handle, type TimerHandle } from "../loop/handle.ts";
import type {
  BaseProtocol,
  BufferedProtocol,
  DatagramProtocol,
  Protocol,
  SubprocessProtocol,
} from "../protocols/protocol.ts";
import type {
  DatagramTransport,
  ReadTransport,
  SubprocessTransport,
  Transport,
  WriteTransport,
} from "../transports/transport.ts";
import { checkOptions } from "../futures/_runtime.ts";
import {
  checkAddrinfoArgs,
  checkHost,
  checkPort,
  checkServerHosts,
  checkServerOptions,
  checkUnixPath,
  ipFamily,
} from "../transports/address_checks.ts";
import { notFound } from "./_deno_errors.ts";
import { openDatagram } from "./_sim_datagram.ts";
import { connectStream, listenStream } from "./_sim_stream.ts";
import type { LoopControls, SimHost, World } from "./_sim_world.ts";

/** The addresses every host answers on for itself. */
const LOOPBACK_ADDRESSES = new Set(["127.0.0.1", "::1"]);

/** What the in-memory network does not have, for `refuse()`. */
export type Lacking =
  | "processes"
  | "pipes"
  | "signals"
  | "sockets"
  | "executor";

/**
 * The world a simulated loop belongs to, and the host it runs: for the
 * simulator's transports (friend accessors, see `loop/_handle.ts`).
 */
export let simWorld: (loop: SimNetLoop) => World;
/** See {@linkcode simWorld}. */
export let simHost: (loop: SimNetLoop) => SimHost;

/**
 * The full `EventLoop` interface on one host of the in-memory network:
 * streams, servers and datagrams are the simulator's (`_sim_stream.ts`,
 * `_sim_datagram.ts`), names resolve among the world's hosts. What cannot
 * exist in memory (processes, pipes, signals, Deno's own sockets, the
 * default worker pool) goes to `refuse()`, which each loop words for its
 * users; TLS goes to `tls()`.
 *
 * @internal Shared by `SimulatedLoop` and `VirtualTimeLoop`; not public.
 */
export abstract class SimNetLoop extends BaseEventLoop implements EventLoop {
  readonly #world: World;
  readonly #host: SimHost;
  #executor: Executor | null = null;

  /**
   * Makes the loop of `host` in `world`.
   *
   * @param world The network.
   * @param host The host whose loop this is.
   */
  constructor(world: World, host: SimHost) {
    super();
    this.#world = world;
    this.#host = host;
  }

  static {
    simWorld = (loop) => loop.#world;
    simHost = (loop) => loop.#host;
  }

  /**
   * Throws the `InvalidStateError` for a call the network cannot serve.
   *
   * @param what The method called.
   * @param lacking What the network does not have.
   * @param hint What to use instead, or `""`.
   * @param received What the call was given, as text.
   */
  protected abstract refuse(
    what: string,
    lacking: Lacking,
    hint: string,
    received: string,
  ): never;

  /**
   * Called before a TLS connection, server or upgrade: returns to let it
   * go on as plaintext, or throws.
   *
   * @param what The method called.
   */
  protected abstract tls(what: string): void;

  // ---- Streams ----

  createConnection<P extends Protocol | BufferedProtocol>(
    protocolFactory: () => P,
    host: string,
    port: number,
    options?: CreateConnectionOptions,
  ): Future<[Transport, P]> {
    this.checkOpen("createConnection");
    checkOptions(options, "call createConnection()", "{ ssl, localAddr }");
    if (options?.ssl) this.tls("createConnection");
    checkHost(host, "call createConnection()");
    return connectStream(this, protocolFactory, {
      name: host,
      port: checkPort(port, "call createConnection()"),
    });
  }

  /**
   * Where the network carries TLS as plaintext (see `tls()`), an upgrade
   * keeps the connection as it is: the future resolves with the same
   * transport, now driving `protocol`.
   */
  startTls(
    transport: Transport,
    protocol: Protocol | BufferedProtocol,
    _options?: StartTlsOptions,
  ): Future<Transport> {
    this.checkOpen("startTls");
    this.tls("startTls");
    if (transport.isClosing()) {
      throw new InvalidStateError(
        "Cannot call startTls(): transport is closing",
      );
    }
    transport.setProtocol(protocol);
    const upgraded = this.createFuture<Transport>();
    upgraded.setResult(transport);
    return upgraded;
  }

  createUnixConnection<P extends Protocol | BufferedProtocol>(
    protocolFactory: () => P,
    path: string | URL,
    options?: CreateConnectionOptions,
  ): Future<[Transport, P]> {
    this.checkOpen("createUnixConnection");
    checkOptions(options, "call createUnixConnection()", "{ ssl }");
    if (options?.ssl) this.tls("createUnixConnection");
    return connectStream(this, protocolFactory, {
      path: checkUnixPath(path, "call createUnixConnection()"),
    });
  }

  createServer(
    protocolFactory: () => Protocol | BufferedProtocol,
    host: string | string[] | undefined,
    port: number,
    options?: CreateServerOptions,
  ): Future<Server> {
    this.checkOpen("createServer");
    checkServerOptions(options, "call createServer()");
    if (options?.ssl !== undefined) this.tls("createServer");
    return listenStream(this, protocolFactory, {
      hosts: [...checkServerHosts(host, "call createServer()") ?? []],
      port: checkPort(port, "call createServer()"),
    }, options);
  }

  createUnixServer(
    protocolFactory: () => Protocol | BufferedProtocol,
    path: string | URL,
    options?: CreateServerOptions,
  ): Future<Server> {
    this.checkOpen("createUnixServer");
    checkServerOptions(options, "call createUnixServer()");
    if (options?.ssl !== undefined) this.tls("createUnixServer");
    return listenStream(this, protocolFactory, {
      path: checkUnixPath(path, "call createUnixServer()"),
    }, options);
  }

  // ---- Datagrams ----

  createDatagramEndpoint<P extends DatagramProtocol>(
    protocolFactory: () => P,
    options?: DatagramEndpointOptions,
  ): Future<[DatagramTransport, P]> {
    this.checkOpen("createDatagramEndpoint");
    return openDatagram(this, protocolFactory, options);
  }

  // ---- What the in-memory network does not have ----

  subprocessExec<P extends SubprocessProtocol>(
    _protocolFactory: () => P,
    cmd: string | URL,
    _args?: string[],
    _options?: SubprocessOptions,
  ): Future<[SubprocessTransport, P]> {
    this.refuse("subprocessExec", "processes", "", `cmd=${cmd}`);
  }

  subprocessShell<P extends SubprocessProtocol>(
    _protocolFactory: () => P,
    cmd: string,
    _options?: SubprocessOptions,
  ): Future<[SubprocessTransport, P]> {
    this.refuse("subprocessShell", "processes", "", `cmd=${cmd}`);
  }

  connectReadPipe<P extends Protocol>(
    _protocolFactory: () => P,
    _readable: ReadableStream<Uint8Array>,
  ): Future<[ReadTransport, P]> {
    this.refuse("connectReadPipe", "pipes", "", "a ReadableStream");
  }

  connectWritePipe<P extends BaseProtocol>(
    _protocolFactory: () => P,
    _writable: WritableStream<Uint8Array>,
  ): Future<[WriteTransport, P]> {
    this.refuse("connectWritePipe", "pipes", "", "a WritableStream");
  }

  addSignalHandler<A extends unknown[]>(
    sig: Deno.Signal,
    _cb: ((...args: A) => unknown) | Handle,
    ..._args: A
  ): Handle {
    this.refuse("addSignalHandler", "signals", "", formatReceived(sig));
  }

  // asyncio's sock_* calls work on Deno's own sockets, which the
  // in-memory network does not have (a real socket's timing is the
  // machine's); the network is reached through transports.

  sockRecv(_conn: Deno.Conn, _n: number): Future<Uint8Array> {
    this.refuse(
      "sockRecv",
      "sockets",
      "use createConnection() or createServer() and a protocol",
      "a Deno.Conn",
    );
  }

  sockRecvInto(_conn: Deno.Conn, _buf: Uint8Array): Future<number> {
    this.refuse(
      "sockRecvInto",
      "sockets",
      "use createConnection() or createServer() and a BufferedProtocol",
      "a Deno.Conn",
    );
  }

  sockSendall(_conn: Deno.Conn, _data: Uint8Array): Future<void> {
    this.refuse(
      "sockSendall",
      "sockets",
      "use createConnection() or createServer() and write to the transport",
      "a Deno.Conn",
    );
  }

  sockConnect(
    options: Deno.ConnectOptions | Deno.UnixConnectOptions,
  ): Future<Deno.Conn> {
    const o = (options ?? {}) as { hostname?: string; port?: number } & {
      path?: string;
    };
    const target = o.path !== undefined
      ? `path=${o.path}`
      : `${o.hostname ?? "127.0.0.1"}:${o.port}`;
    this.refuse(
      "sockConnect",
      "sockets",
      "use createConnection() or createUnixConnection() instead",
      target,
    );
  }

  sockAccept(_listener: Deno.Listener): Future<Deno.Conn> {
    this.refuse(
      "sockAccept",
      "sockets",
      "use createServer() or createUnixServer() instead",
      "a Deno.Listener",
    );
  }

  removeSignalHandler(_sig: Deno.Signal): boolean {
    return false;
  }

  runInExecutor<A extends unknown[], R>(
    executor: Executor | null,
    fn: ((...args: A) => R | PromiseLike<R>) | Handle,
    ...args: A
  ): Future<R> {
    this.checkOpen("runInExecutor");
    if (fn instanceof Handle) {
      // PEP 3156's note on Handles, as DenoEventLoop's runInExecutor(): an
      // immediate handle stands for its callback and arguments, and a
      // cancelled one runs nothing.
      this.checkHandle(fn, args, "runInExecutor");
      if (fn.cancelled) {
        const skipped = this.createFuture<R>();
        skipped.setResult(undefined as R);
        return skipped;
      }
      return this.runInExecutor(
        executor,
        fn.callback as (...a: unknown[]) => R | PromiseLike<R>,
        ...fn.args,
      );
    }
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot call runInExecutor(): fn must be a function, received ${typeof fn}`,
      );
    }
    this.checkExecutorFn(fn);
    this.checkExecutor(executor);
    const chosen = executor ?? this.#executor;
    if (chosen === null) {
      this.refuse("runInExecutor", "executor", "", "executor=null");
    }
    return wrapFuture(chosen.submit(fn, ...args), { loop: this });
  }

  setDefaultExecutor(executor: Executor): void {
    if (
      typeof executor !== "object" || executor === null ||
      typeof executor.submit !== "function"
    ) {
      throw new TypeError(
        `Cannot set the default executor: it must have a submit() method, received ${
          executor === null ? "null" : typeof executor
        }`,
      );
    }
    this.#executor = executor;
  }

  // ---- Names ----

  getaddrinfo(
    host: string,
    port: number,
    options?: GetaddrinfoOptions,
  ): Future<AddrInfo[]> {
    this.checkOpen("getaddrinfo");
    checkAddrinfoArgs(host, port, options);
    const family = options?.family ?? 0;
    const fut = this.createFuture<AddrInfo[]>();
    const target = this.#world.resolve(this.#host, host);
    if (target === null) {
      this.#world.record(this.#host.name, "resolve", `${host} not found`);
      fut.setException(
        notFound(
          `Cannot resolve ${host}: no simulated host has this name or address`,
        ),
      );
      return fut;
    }
    // A numeric address is its own answer, as with the C library; a name
    // means the host's IPv4 address ("localhost": 127.0.0.1, as a hosts
    // file maps it).
    const literal = ipFamily(host);
    const found = literal === 6 ? 6 : 4;
    if (family !== 0 && family !== found) {
      fut.setException(
        notFound(
          literal !== 0
            ? `Cannot resolve host: "${host}" is an IPv${literal} address and family ${family} was asked for`
            : `Cannot resolve ${host}: it has no IPv6 address`,
        ),
      );
    } else {
      const hostname = literal !== 0
        ? host
        : host === "localhost"
        ? "127.0.0.1"
        : target.address;
      fut.setResult([{ family: found, hostname, port }]);
    }
    return fut;
  }

  getnameinfo(
    sockaddr: { hostname: string; port: number },
    flags = 0,
  ): Future<[string, string]> {
    this.checkOpen("getnameinfo");
    if (typeof sockaddr?.hostname !== "string") {
      throw new TypeError(
        `Cannot call getnameinfo(): sockaddr must be { hostname, port }, received ${
          formatReceived(sockaddr)
        }`,
      );
    }
    const fut = this.createFuture<[string, string]>();
    const target = this.#world.resolve(this.#host, sockaddr.hostname);
    const service = String(sockaddr.port);
    if ((flags & 9) === 9) {
      // NI_NUMERICHOST and NI_NAMEREQD: the C library fails them together.
      fut.setException(
        notFound(
          `Cannot find a name for the address: NI_NAMEREQD wants one and NI_NUMERICHOST forbids looking it up, received "${sockaddr.hostname}"`,
        ),
      );
    } else if (target === null) {
      if (flags & 8) {
        fut.setException(
          notFound(
            `Cannot name ${sockaddr.hostname}: no simulated host has it`,
          ),
        );
      } else fut.setResult([sockaddr.hostname, service]);
    } else if (LOOPBACK_ADDRESSES.has(sockaddr.hostname)) {
      // A host calls its own loopback addresses "localhost", as the C
      // library's resolver does from the hosts file.
      fut.setResult([flags & 1 ? sockaddr.hostname : "localhost", service]);
    } else {
      fut.setResult([flags & 1 ? target.address : target.name, service]);
    }
    return fut;
  }

  /**
   * Throws `InvalidStateError` when the loop is closed.
   *
   * @param what The method called.
   */
  protected checkOpen(what: string): void {
    if (this.isClosed()) {
      throw new InvalidStateError(`Cannot call ${what}(): the loop is closed`);
    }
  }
}

// Why a simulated host lacks each: whatever it would do would make a run
// depend on the machine, not on the seed.
const LACKS: Record<Lacking, string> = {
  processes:
    "a simulated host cannot start processes (their timing is the machine's, not the seed's)",
  pipes:
    "a simulated host has no pipes (a stream's timing is outside the simulation)",
  signals: "a simulated host receives no signals (use sim.crash() to stop it)",
  sockets: "a simulated host has no Deno sockets",
  executor:
    "a simulated host has no worker pool (workers run on real time); pass an executor or call setDefaultExecutor()",
};

/**
 * The loop of one simulated host. Its clock is the simulation's virtual
 * clock; its sockets are the simulated network's; the simulation runs it
 * (one iteration at a time, hosts in a fixed order), so nothing else may
 * call `runForever()`, `runUntilComplete()` or `runOnce()`.
 *
 * Subprocesses, signals, pipes, Deno's own sockets (the `sock*` calls)
 * and the default executor do not exist in a simulation (they would make
 * a run depend on the machine): those methods throw `InvalidStateError`
 * saying so. `runInExecutor` works with an
 * executor given explicitly (or set with `setDefaultExecutor`). TLS
 * options are accepted and ignored: the simulated network carries
 * plaintext.
 */
export class SimulatedLoop extends SimNetLoop {
  #driving = false;

  constructor(
    world: World,
    host: SimHost,
    register: (controls: LoopControls) => void,
  ) {
    super(world, host);
    // What the collector would report, the simulation reports when the
    // run ends: when the collector runs must not change the run.
    keepUnretrieved(this);
    register({
      step: () => {
        this.#driving = true;
        try {
          return this.runOnce();
        } finally {
          this.#driving = false;
        }
      },
      readyCount: () => this.readyCount(),
      nextTimerWhen: () => this.nextTimerWhen(),
    });
  }

  /** The host's name. */
  get hostname(): string {
    return simHost(this).name;
  }

  override time(): number {
    return simWorld(this).now;
  }

  // Scheduling marks the host for the simulation's driver, which skips
  // hosts nothing was scheduled on since it last looked.

  override callSoon<A extends unknown[]>(
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): Handle {
    simHost(this).dirty = true;
    return super.callSoon(cb, ...args);
  }

  override callLater<A extends unknown[]>(
    delay: number,
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): TimerHandle {
    simHost(this).dirty = true;
    return super.callLater(delay, cb, ...args);
  }

  override callAt<A extends unknown[]>(
    when: number,
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): TimerHandle {
    simHost(this).dirty = true;
    return super.callAt(when, cb, ...args);
  }

  override callRepeatedly<A extends unknown[]>(
    interval: number,
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): TimerHandle {
    simHost(this).dirty = true;
    return super.callRepeatedly(interval, cb, ...args);
  }

  override runForever(): Promise<void> {
    if (!this.#driving) this.#refuseRun("runForever");
    return super.runForever();
  }

  override runUntilComplete<T>(
    aw: Parameters<BaseEventLoop["runUntilComplete"]>[0],
    timeout?: number | null,
  ): Promise<T> {
    if (!this.#driving) this.#refuseRun("runUntilComplete");
    return super.runUntilComplete(aw, timeout) as Promise<T>;
  }

  override runOnce(): Promise<void> {
    if (!this.#driving) this.#refuseRun("runOnce");
    return super.runOnce();
  }

  protected override waitForEvents(_deadline: number | null): Promise<void> {
    // The simulation only runs this loop when something is due; let
    // pending microtasks settle first, as an idle wait would.
    return hostHop();
  }

  #refuseRun(what: string): never {
    throw new InvalidStateError(
      `Cannot call ${what}() on a simulated host's loop: the Simulation runs it (await sim.run())`,
    );
  }

  protected refuse(
    what: string,
    lacking: Lacking,
    hint: string,
    received: string,
  ): never {
    throw new InvalidStateError(
      `Cannot call ${what}() on a simulated host: ${LACKS[lacking]}${
        hint === "" ? "" : ` (${hint})`
      }, received ${received}`,
    );
  }

  // The simulated network carries TLS as plaintext: a program written for
  // TLS runs in a simulation unchanged.
  protected tls(_what: string): void {}
}
