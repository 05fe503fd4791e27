/**
 * The conforming event-loop interface of PEP 3156 and the types around it.
 *
 * @module
 */

import type { Future } from "../futures/future.ts";
import type { Handle, TimerHandle } from "./handle.ts";
import type { Awaitable, Coroutine, Task, TaskOptions } from "../tasks/task.ts";
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

/** What the exception handler is told about an error. */
export interface ExceptionContext {
  /** What went wrong, in words. */
  message: string;
  /** The error, when there is one. */
  exception?: unknown;
  /** The future concerned, if any. */
  future?: Future<unknown>;
  /** The task concerned, if any. */
  task?: Task<unknown>;
  /** The callback handle concerned, if any. */
  handle?: Handle;
  /** The protocol concerned, if any. */
  protocol?: unknown;
  /** The transport concerned, if any. */
  transport?: unknown;
  /** Where the object concerned was created, in debug mode. */
  sourceTraceback?: string;
  /** Anything else a loop or transport adds. */
  [key: string]: unknown;
}

/** A function that handles errors the loop could not deliver elsewhere. */
export type ExceptionHandler = (
  loop: EventLoop,
  context: ExceptionContext,
) => void;

/**
 * Something that runs functions away from the loop (PEP 3148's executor).
 * `loop.runInExecutor()` wraps what `submit` returns in a `Future`.
 */
export interface Executor {
  /**
   * Starts `fn(...args)` and returns a promise of its result.
   *
   * @param fn The function to run.
   * @param args Its arguments.
   */
  submit<A extends unknown[], R>(
    fn: (...args: A) => R | PromiseLike<R>,
    ...args: A
  ): PromiseLike<R>;
  /**
   * Stops accepting work and releases the executor's resources: with
   * `wait: true`, once the submitted work is done (PEP 3148's
   * `shutdown(wait=True)`); with `wait: false`, without waiting for it.
   *
   * @param options Whether to wait for submitted work.
   */
  shutdown(options?: { wait?: boolean }): void | PromiseLike<void>;
}

/** Options for `createConnection` and `createUnixConnection`. */
export interface CreateConnectionOptions {
  /**
   * Use TLS: `true` for the system's roots, or an object naming extra CA
   * certificates in PEM, the ALPN protocols to offer, and a client
   * certificate for servers that ask for one (mutual TLS).
   * `handshakeTimeout` bounds the TLS handshake, in seconds from the end
   * of the TCP connect (default 60, as asyncio's `ssl_handshake_timeout`):
   * a server that does not finish it in time fails the call with
   * `TimeoutError`, and the connection is closed. A graceful `close()`
   * whose buffer and close_notify the server takes none of for 30 s (as
   * asyncio's `ssl_shutdown_timeout`) aborts the connection, and the
   * protocol gets `TimeoutError`. Deno's TLS, which clients
   * use, keeps a closed connection's socket until the server finishes the
   * handshake or hangs up (and, after an `abort()`, until it reads what was
   * sent): tulip cannot release it sooner. This holds too for a call
   * cancelled during the handshake, and for one the loop's `close()` ends
   * (the process may still exit): Deno runs the handshake in a task of its
   * own that holds the socket, and nothing in its API stops that task.
   *
   * @default {false}
   */
  ssl?: boolean | {
    /** Extra CA certificates (PEM) to trust besides the system's roots. */
    caCerts?: string[];
    /**
     * The ALPN protocols to offer, most wanted first; the one the server
     * chose is `transport.getExtraInfo("alpnProtocol")`. Each name is 1 to
     * 255 ASCII characters (RFC 7301's length; ASCII as asyncio asks), or
     * the call throws `RangeError`.
     *
     * @default {undefined}
     */
    alpnProtocols?: string[];
    /** The client's certificate chain (PEM), with `key`. */
    cert?: string;
    /** The client's private key (PEM), with `cert`. */
    key?: string;
    /**
     * The longest the TLS handshake may take, in seconds.
     *
     * @default {60}
     */
    handshakeTimeout?: number;
  };
  /**
   * The name to check the server's certificate against.
   *
   * @default {the host}
   */
  serverHostname?: string;
  /**
   * The local address the connection must have (TCP only): an IP address
   * (`"0.0.0.0"` or `"::"` for any) and a port (0 for any). Deno cannot
   * bind a socket before connecting it, so the address the system picked
   * is checked once connected: one that does not match closes the
   * connection and fails the call with `Deno.errors.NotSupported`. A
   * specific port is therefore never met; an address is, when it is the
   * one the route to the host leaves from (a loopback address for a
   * loopback host).
   *
   * PEP 3156: `create_connection()`'s `local_addr`.
   *
   * @default {undefined}
   */
  localAddr?: { hostname: string; port: number };
}

/**
 * Options for `startTls`: the client side of a TLS upgrade, or with
 * `serverSide: true` the server side (`cert` and `key` then, and neither
 * `serverHostname` nor `caCerts`).
 * PEP 3156 / asyncio 3.7: `loop.start_tls()`'s `server_hostname` and
 * `ssl_handshake_timeout`.
 */
export interface StartTlsOptions {
  /**
   * The name to check the server's certificate against.
   *
   * @default {the host the transport is connected to}
   */
  serverHostname?: string;
  /**
   * Extra CA certificates (PEM) to trust besides the system's roots.
   *
   * @default {undefined}
   */
  caCerts?: string[];
  /**
   * The ALPN protocols to offer (with `serverSide`, to accept), most
   * wanted first; each name is 1 to 255 ASCII characters (RFC 7301's
   * length; ASCII as asyncio asks), or the call throws `RangeError`.
   *
   * @default {undefined}
   */
  alpnProtocols?: string[];
  /**
   * Upgrade as the server (asyncio's `server_side`): the transport must be
   * one a server accepted, and `cert` and `key` are required. A
   * server-accepted transport is refused without it.
   *
   * @default {false}
   */
  serverSide?: boolean;
  /**
   * The server's certificate chain, PEM (with `serverSide: true` only).
   *
   * @default {undefined}
   */
  cert?: string;
  /**
   * The server's private key, PEM (with `serverSide: true` only).
   *
   * @default {undefined}
   */
  key?: string;
  /**
   * The longest the upgrade may take, in seconds: letting a read in
   * flight finish, sending what is buffered, and the TLS handshake. On
   * the server side, the socket is closed when time is up. An
   * upgrade over the loopback relay (a read was in flight) closes the
   * socket to the server when time is up; one without it leaves the
   * socket to Deno's TLS, which keeps it until the server answers or
   * hangs up.
   *
   * @default {60}
   */
  handshakeTimeout?: number;
}

/** Options for `createServer` and `createUnixServer`. */
export interface CreateServerOptions {
  /**
   * Serve TLS with this certificate chain and key, both PEM (the key the
   * chain's first certificate was made for: a mismatch fails the call with
   * `Deno.errors.InvalidData`, where `Deno.listenTls()` would fail too).
   * `handshakeTimeout` bounds each connection's TLS handshake, in seconds
   * from its accept (default 60, as asyncio's `ssl_handshake_timeout`): a
   * client that has not finished it by then is closed without reaching the
   * protocol, and no longer counts as one of the server's connections.
   * Its socket is closed then, as is an aborted connection's at once,
   * however the client stalls: on Deno, tulip serves TLS through
   * `node:tls` over TCP sockets it owns, because Deno's own TLS listener
   * keeps a closed connection's socket open, with no time limit, until
   * its handshake ends and its buffer and a close_notify are sent. This
   * costs the server more CPU than Deno's own TLS: some 0.8 ms more per
   * handshake, about twice as much per small message. A graceful
   * `close()` whose buffer and close_notify the client takes none of for
   * 30 s (as asyncio's `ssl_shutdown_timeout`) aborts the connection, and
   * the protocol gets `TimeoutError`.
   */
  ssl?: {
    cert: string;
    key: string;
    /**
     * The ALPN protocols the server accepts, preferred first; the one
     * chosen is each transport's `getExtraInfo("alpnProtocol")`. Each
     * name is 1 to 255 ASCII characters (RFC 7301's length; ASCII as
     * asyncio asks), or the call throws `RangeError`. The server does not
     * ask clients for certificates: there is no mutual TLS on the server
     * side.
     *
     * @default {undefined}
     */
    alpnProtocols?: string[];
    /**
     * The longest a client's TLS handshake may take, in seconds.
     *
     * @default {60}
     */
    handshakeTimeout?: number;
  };
  /**
   * Let several listeners share the port (Linux `SO_REUSEPORT`). Needs
   * Deno's unstable net API: `--unstable-net`, or `"unstable": ["net"]` in
   * your deno.json; without it `createServer` throws
   * `Deno.errors.NotSupported`.
   *
   * @default {false}
   */
  reusePort?: boolean;
  /**
   * The listen backlog: how many connections the system queues before the
   * server accepts them (TCP; a Unix socket keeps the system's own). Deno's
   * default is 511; a simulated host's, 128.
   *
   * @default {511}
   */
  backlog?: number;
  /**
   * Start accepting at once; with `false`, call `serveForever()` or
   * `startServing()`.
   *
   * @default {true}
   */
  startServing?: boolean;
}

/** Options for `createDatagramEndpoint`. */
export interface DatagramEndpointOptions {
  /** The local address to bind. */
  localAddr?: { hostname: string; port: number };
  /** The default address for `sendto()` without an address. */
  remoteAddr?: { hostname: string; port: number };
  /**
   * Let several endpoints share the port.
   *
   * @default {false}
   */
  reuseAddress?: boolean;
  /**
   * Allow sending to broadcast addresses (asyncio's `allow_broadcast`,
   * `SO_BROADCAST`). Without it a send to 255.255.255.255, or to a local
   * network's broadcast address when Deno may list the interfaces
   * (`--allow-sys=networkInterfaces`), is refused with
   * `Deno.errors.PermissionDenied` to `errorReceived`, and such a
   * `remoteAddr` fails the endpoint.
   *
   * @default {false}
   */
  allowBroadcast?: boolean;
}

/** Options for `subprocessExec` and `subprocessShell`. */
export interface SubprocessOptions {
  /** `"pipe"` to connect the child's stdin; `"null"` or `"inherit"`. @default {"pipe"} */
  stdin?: "pipe" | "inherit" | "null";
  /** `"pipe"` to read the child's stdout. @default {"pipe"} */
  stdout?: "pipe" | "inherit" | "null";
  /** `"pipe"` to read the child's stderr. @default {"pipe"} */
  stderr?: "pipe" | "inherit" | "null";
  /** The working directory: a path, or a `file:` URL. */
  cwd?: string | URL;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Start from an empty environment. @default {false} */
  clearEnv?: boolean;
}

/** One answer of `getaddrinfo`. */
export interface AddrInfo {
  /** `4` or `6`. */
  family: 4 | 6;
  /** The address, numeric. */
  hostname: string;
  /** The port. */
  port: number;
}

/** Options for `getaddrinfo`. */
export interface GetaddrinfoOptions {
  /** `4` or `6` to restrict the family; `0` for both. @default {0} */
  family?: 0 | 4 | 6;
  /** Socket type hint, kept for PEP parity. @default {0} */
  type?: number;
  /** Protocol hint, kept for PEP parity. @default {0} */
  proto?: number;
  /** Resolver flags, kept for PEP parity. @default {0} */
  flags?: number;
}

/** Options for {@linkcode Server.shutdown}. */
export interface ServerShutdownOptions {
  /**
   * How long, in seconds, open connections get to finish after
   * `shutdown()` begins; those left then are aborted. `Infinity` waits
   * for ever.
   *
   * @default {10}
   */
  grace?: number;
}

/**
 * A listening server made by `createServer`.
 *
 * PEP 3156: the object `start_serving()` returns (asyncio's `Server`).
 */
export interface Server extends AsyncDisposable {
  /** Stops listening; open connections are left alone. */
  close(): void;
  /**
   * Shuts the server down gracefully: stops listening, asks every open
   * connection to finish, aborts those left after `grace` seconds, and
   * resolves once every connection is gone. A connection whose protocol
   * has a `serverClosing()` method is asked through it (an HTTP server
   * protocol closes an idle connection at once and finishes the request
   * in progress with `Connection: close`); any other is closed (its
   * buffer flushed first). Calling it again gives another future of the
   * same end; a shorter `grace` brings the deadline forward. Connections
   * accepted meanwhile are closed at once.
   *
   * @param options The grace period.
   * @returns A future that resolves once the server and its connections
   * are closed.
   * @throws {RangeError} When `grace` is negative or not a number.
   */
  shutdown(options?: ServerShutdownOptions): Future<void>;
  /** Resolves once the server is closed and its connections are gone. */
  waitClosed(): Future<void>;
  /** Starts accepting, if not already. */
  startServing(): Future<void>;
  /**
   * Accepts until the server is closed. The future never has a result:
   * closing the server (`close()`, `shutdown()`) ends it cancelled once
   * the server's connections are gone (as asyncio 3.12's `serve_forever()`
   * awaits `wait_closed()`), so waiting for it rejects with
   * `CancelledError`; catch that to end a program cleanly. Cancelling the
   * future closes the server, and it too ends once the connections are
   * gone. Calling it while it serves, or on a closed server, throws
   * `InvalidStateError`.
   *
   * @example Serving until the server is closed
   * ```ts ignore
   * import { CancelledError, newEventLoop, Protocol } from "@tulip/tulip";
   *
   * const loop = newEventLoop();
   * const server = await loop.runUntilComplete(
   *   loop.createServer(() => new Protocol(), "127.0.0.1", 8888),
   * );
   * // close() alone would wait for the clients to hang up; shutdown()
   * // asks them to finish and aborts them after its grace period.
   * loop.addSignalHandler("SIGINT", () => server.shutdown({ grace: 5 }));
   * try {
   *   await loop.runUntilComplete(server.serveForever());
   * } catch (e) {
   *   if (!(e instanceof CancelledError)) throw e; // closed: done
   * }
   * loop.close();
   * ```
   */
  serveForever(): Future<void>;
  /** Returns `true` while accepting connections. */
  isServing(): boolean;
  /**
   * Returns the addresses listened on (bound, even before serving); none
   * once the server is closed, as asyncio's `Server.sockets`.
   */
  addresses(): Deno.Addr[];
  /** Returns the loop the server runs on. */
  getLoop(): EventLoop;
  /**
   * Closes every open connection gracefully (their buffers are flushed);
   * a TLS handshake in progress is ended.
   */
  closeClients(): void;
  /**
   * Aborts every open connection (their buffers are dropped), TLS
   * handshakes in progress too.
   */
  abortClients(): void;
}

/**
 * The loop's scheduling half: what futures, tasks and every loop share.
 *
 * PEP 3156: the event loop interface, without I/O.
 */
export interface SchedulingLoop {
  /** Runs until `stop()` is called. */
  runForever(): Promise<void>;
  /**
   * Runs until `aw` is done and resolves with its result; with a
   * `timeout` (seconds), rejects with `TimeoutError` if it expires first.
   * A function (async or generator, uncalled) runs as a task of the loop.
   */
  runUntilComplete<T>(
    aw: Awaitable<T> | (() => Coroutine<T> | PromiseLike<T>),
    timeout?: number | null,
  ): Promise<T>;
  /** Runs one iteration: poll once, run what is ready. */
  runOnce(): Promise<void>;
  /** Stops after the current iteration. */
  stop(): void;
  /** Closes the loop; idempotent. */
  close(): void;
  /** Returns `true` while running. */
  isRunning(): boolean;
  /** Returns `true` once closed. */
  isClosed(): boolean;
  /** Returns the loop's monotonic clock, in seconds. */
  time(): number;
  /** Schedules `cb(...args)` (or an immediate `Handle`) for the next iteration. */
  callSoon<A extends unknown[]>(
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): Handle;
  /** Like `callSoon`, and safe from outside the loop's own turn. */
  callSoonThreadsafe<A extends unknown[]>(
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): Handle;
  /** Schedules `cb(...args)` in `delay` seconds. */
  callLater<A extends unknown[]>(
    delay: number,
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): TimerHandle;
  /** Schedules `cb(...args)` at loop time `when`, in seconds. */
  callAt<A extends unknown[]>(
    when: number,
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): TimerHandle;
  /** Schedules `cb(...args)` every `interval` seconds. */
  callRepeatedly<A extends unknown[]>(
    interval: number,
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): TimerHandle;
  /** Makes a future bound to this loop. */
  createFuture<T>(): Future<T>;
  /** Wraps a coroutine or async function in a task scheduled on this loop. */
  createTask<T>(
    coro: Coroutine<T> | (() => Coroutine<T> | PromiseLike<T>),
    options?: TaskOptions,
  ): Task<T>;
  /** Sets the exception handler; `null` restores the default. */
  setExceptionHandler(handler: ExceptionHandler | null): void;
  /** Returns the exception handler, or `null` for the default. */
  getExceptionHandler(): ExceptionHandler | null;
  /** Passes `context` to the exception handler. */
  callExceptionHandler(context: ExceptionContext): void;
  /** The default handling: log `context` to the console. */
  defaultExceptionHandler(context: ExceptionContext): void;
  /** Turns debug mode on or off. */
  setDebug(enabled: boolean): void;
  /** Returns `true` in debug mode. */
  getDebug(): boolean;
  /** Callbacks slower than this, in seconds, are reported in debug mode. */
  slowCallbackDuration: number;
}

/**
 * The conforming event-loop interface: scheduling plus I/O.
 *
 * PEP 3156: the event loop interface.
 */
export interface EventLoop extends SchedulingLoop {
  /** Opens a TCP (or TLS) connection. */
  createConnection<P extends Protocol | BufferedProtocol>(
    protocolFactory: () => P,
    host: string,
    port: number,
    options?: CreateConnectionOptions,
  ): Future<[Transport, P]>;
  /** Opens a Unix-socket connection; `path` may be a `file:` URL. */
  createUnixConnection<P extends Protocol | BufferedProtocol>(
    protocolFactory: () => P,
    path: string | URL,
    options?: CreateConnectionOptions,
  ): Future<[Transport, P]>;
  /**
   * Upgrades a connection to TLS (the client side, or with
   * `serverSide: true` the server side); resolves with the new transport.
   */
  startTls(
    transport: Transport,
    protocol: Protocol | BufferedProtocol,
    options?: StartTlsOptions,
  ): Future<Transport>;
  /**
   * Listens on TCP (or TLS): on `host`, on each of a list of hosts (an
   * address named twice is listened on once), or on every interface when
   * `host` is `undefined` (or, as asyncio's `None` and `''`, `null` or
   * `""`).
   */
  createServer(
    protocolFactory: () => Protocol | BufferedProtocol,
    host: string | readonly string[] | undefined,
    port: number,
    options?: CreateServerOptions,
  ): Future<Server>;
  /** Listens on a Unix socket; `path` may be a `file:` URL. */
  createUnixServer(
    protocolFactory: () => Protocol | BufferedProtocol,
    path: string | URL,
    options?: CreateServerOptions,
  ): Future<Server>;
  /** Opens a UDP endpoint. */
  createDatagramEndpoint<P extends DatagramProtocol>(
    protocolFactory: () => P,
    options?: DatagramEndpointOptions,
  ): Future<[DatagramTransport, P]>;
  /** Starts a child process from a program and its arguments. */
  subprocessExec<P extends SubprocessProtocol>(
    protocolFactory: () => P,
    cmd: string | URL,
    args?: string[],
    options?: SubprocessOptions,
  ): Future<[SubprocessTransport, P]>;
  /** Starts a child process through `/bin/sh -c`. */
  subprocessShell<P extends SubprocessProtocol>(
    protocolFactory: () => P,
    cmd: string,
    options?: SubprocessOptions,
  ): Future<[SubprocessTransport, P]>;
  /** Reads a Web `ReadableStream` (such as `Deno.stdin.readable`) into a protocol. */
  connectReadPipe<P extends Protocol>(
    protocolFactory: () => P,
    readable: ReadableStream<Uint8Array>,
  ): Future<[ReadTransport, P]>;
  /** Writes a protocol's output into a Web `WritableStream`. */
  connectWritePipe<P extends BaseProtocol>(
    protocolFactory: () => P,
    writable: WritableStream<Uint8Array>,
  ): Future<[WriteTransport, P]>;
  /** Calls `cb(...args)` on the loop whenever signal `sig` arrives. */
  addSignalHandler<A extends unknown[]>(
    sig: Deno.Signal,
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): Handle;
  /** Removes the handler of `sig`; returns whether there was one. */
  removeSignalHandler(sig: Deno.Signal): boolean;
  /**
   * Runs `fn(...args)` in an executor (`null`: the default one); `fn` may
   * be a `workerFunction(moduleUrl, exportName)` reference, or an
   * immediate `Handle` standing for its callback and arguments (a
   * cancelled one runs nothing: the future's result is `undefined`).
   */
  runInExecutor<A extends unknown[], R>(
    executor: Executor | null,
    fn: ((...args: A) => R | PromiseLike<R>) | Handle,
    ...args: A
  ): Future<R>;
  /** Sets the default executor. */
  setDefaultExecutor(executor: Executor): void;
  /**
   * Shuts the default executor down once its jobs are done (at most
   * `timeout` seconds); optional: `run()` calls it when the loop has it.
   */
  shutdownDefaultExecutor?(timeout?: number | null): Future<void>;
  /** Resolves a host name through the system resolver. */
  getaddrinfo(
    host: string,
    port: number,
    options?: GetaddrinfoOptions,
  ): Future<AddrInfo[]>;
  /** Resolves an address to `[host, service]`. */
  getnameinfo(
    sockaddr: { hostname: string; port: number },
    flags?: number,
  ): Future<[string, string]>;
  /** Reads up to `n` bytes from a connection; none at end of stream. */
  sockRecv(conn: Deno.Conn, n: number): Future<Uint8Array>;
  /** Reads from a connection into `buf`; the count, 0 at end of stream. */
  sockRecvInto(conn: Deno.Conn, buf: Uint8Array): Future<number>;
  /** Writes all of `data` to a connection. */
  sockSendall(conn: Deno.Conn, data: Uint8Array): Future<void>;
  /** Connects as `Deno.connect(options)` does. */
  sockConnect(
    options: Deno.ConnectOptions | Deno.UnixConnectOptions,
  ): Future<Deno.Conn>;
  /** Accepts one connection on a listener. */
  sockAccept(listener: Deno.Listener): Future<Deno.Conn>;
}
