/**
 * `DenoServer`: the `Server` that `createServer` and `createUnixServer`
 * return, accepting through the proactor.
 *
 * @module
 */

import { InvalidStateError, TimeoutError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import { makeProtocol, ReportPacer } from "../futures/_runtime.ts";
import type { BaseProtocol } from "../protocols/protocol.ts";
import type {
  EventLoop,
  Server,
  ServerShutdownOptions,
} from "../loop/event_loop.ts";
import type { TimerHandle } from "../loop/handle.ts";
import type { CompletionPort, Owned, Proactor } from "./_proactor.ts";
import { ServerShutdown } from "./server_shutdown.ts";
import {
  DenoStreamTransport,
  type StreamContext,
} from "./_deno_stream_transport.ts";

/**
 * The pause before accepting again after the system ran out of descriptors
 * or memory, in seconds: it doubles on each failure in a row up to
 * `ACCEPT_BACKOFF_MAX` and starts over after an accept succeeds (Go's
 * `net/http` does the same).
 */
const ACCEPT_BACKOFF_MIN = 0.005;
/** The longest pause between accepts while out of resources, in seconds. */
const ACCEPT_BACKOFF_MAX = 1;
/**
 * Accept failures, and protocol factory failures, are reported at most
 * once per this many seconds (each kind on its own clock); the next report
 * counts those left out.
 */
const REPORT_INTERVAL = 10;

/** The error codes that mean the whole process (or host) ran short. */
const EXHAUSTED = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);

/**
 * The error codes that mean one pending connection failed (reset or
 * aborted before it was accepted, or refused by a firewall rule) and the
 * listener is fine; Linux's accept(2) lists the network ones.
 */
const CONNECTION_FAILED = new Set([
  "ECONNABORTED",
  "ECONNRESET",
  "ENOTCONN",
  "EPROTO",
  "EPERM",
  "ETIMEDOUT",
  "EINTR",
  "EAGAIN",
  "ENETDOWN",
  "ENOPROTOOPT",
  "EHOSTDOWN",
  "ENONET",
  "EHOSTUNREACH",
  "EOPNOTSUPP",
  "ENETUNREACH",
]);

/**
 * Sorts an accept error. Deno rejects `accept()` with a plain `Error` whose
 * `code` is `"EMFILE"` (message "Too many open files (os error 24)") when
 * the descriptor table is full, and with `Deno.errors.NotConnected`
 * (`ENOTCONN`) for a connection reset while it waited in the listen queue.
 *
 * @param error What `accept()` rejected with.
 * @returns `"exhausted"` when out of descriptors or memory, `"connection"`
 * when only the connection being accepted failed, `"other"` otherwise.
 */
export function acceptErrorKind(
  error: unknown,
): "exhausted" | "connection" | "other" {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") {
    if (EXHAUSTED.has(code)) return "exhausted";
    if (CONNECTION_FAILED.has(code)) return "connection";
  }
  const errors = Deno.errors;
  if (
    error instanceof errors.ConnectionAborted ||
    error instanceof errors.ConnectionReset ||
    error instanceof errors.NotConnected ||
    error instanceof errors.Interrupted ||
    error instanceof errors.WouldBlock ||
    error instanceof errors.TimedOut
  ) return "connection";
  return "other";
}

/**
 * The longest a TLS handshake may take when no `handshakeTimeout` is
 * given, in seconds (asyncio's `SSL_HANDSHAKE_TIMEOUT`).
 */
export const TLS_HANDSHAKE_TIMEOUT = 60;

/** Options for `DenoServer`. */
export interface DenoServerOptions {
  /** The listener serves TLS: each connection's handshake comes first. */
  tls?: boolean;
  /**
   * The longest a connection's TLS handshake may take, in seconds from its
   * accept; then the connection is closed.
   *
   * @default {60}
   */
  handshakeTimeout?: number;
  /**
   * A Unix socket's path, just bound: removed when the server closes if it
   * is still that socket.
   */
  unixPath?: string;
}

/**
 * A listening server: one accept in flight per listener while serving;
 * each accepted connection gets a fresh protocol and a
 * `DenoStreamTransport`. `close()` stops listening and leaves open
 * connections alone; `waitClosed()` waits for them too; `shutdown()`
 * stops listening, asks each connection to finish, and aborts what is
 * left after a grace period.
 */
export class DenoServer implements Server {
  readonly #ctx: StreamContext;
  readonly #listeners: Deno.Listener[];
  readonly #addresses: Deno.Addr[];
  readonly #factory: () => BaseProtocol;
  readonly #tls: boolean;
  readonly #handshakeTimeout: number;
  readonly #unixPath: string | undefined;
  // The socket file the server made (as lstat saw it at bind time), so
  // close() removes the path only while it is still that file.
  readonly #unixFile: { dev: number; ino: number | null } | null;
  readonly #acceptPorts: CompletionPort<Deno.Conn>[];
  readonly #shutdown: ServerShutdown<DenoStreamTransport>;
  #serving = false;
  #closed = false;
  #accepting = 0;
  // The connections whose TLS handshake runs, each with whether
  // closeClients() or abortClients() ended it meanwhile.
  readonly #handshaking = new Map<Deno.TlsConn, boolean>();
  // Per listener: the pending retry, the pause before it (0 after an
  // accept succeeded), and whether the last failure was of no known kind.
  readonly #retry: (TimerHandle | null)[];
  readonly #backoff: number[];
  readonly #failedOther: boolean[];
  // Accept failures and protocol factory failures: the pace of each kind's
  // reports; and the connections that failed before they were accepted.
  readonly #reports = {
    accept: new ReportPacer(REPORT_INTERVAL),
    factory: new ReportPacer(REPORT_INTERVAL),
  };
  #failedConnections = 0;
  // Registered with the proactor until close(), so that closing the loop
  // closes the listeners.
  readonly #owned: Owned = {
    release: () => {
      const open = !this.#closed;
      this.#serving = false;
      for (const l of this.#listeners) this.#ctx.proactor.close(l);
      return open;
    },
  };

  /**
   * Wraps listeners that are already bound.
   *
   * @param ctx The loop and its proactor.
   * @param listeners The listeners.
   * @param factory Makes one protocol per connection.
   * @param options TLS and Unix-socket details.
   */
  constructor(
    ctx: StreamContext,
    listeners: Deno.Listener[],
    factory: () => BaseProtocol,
    options?: DenoServerOptions,
  ) {
    this.#ctx = ctx;
    this.#listeners = listeners;
    this.#addresses = listeners.map((l) => l.addr);
    this.#factory = factory;
    this.#tls = options?.tls ?? false;
    this.#handshakeTimeout = options?.handshakeTimeout ?? TLS_HANDSHAKE_TIMEOUT;
    this.#unixPath = options?.unixPath;
    this.#unixFile = this.#unixPath === undefined
      ? null
      : socketFile(this.#unixPath);
    this.#retry = listeners.map(() => null);
    this.#backoff = listeners.map(() => 0);
    this.#failedOther = listeners.map(() => false);
    this.#shutdown = new ServerShutdown(
      ctx.loop,
      this,
      () =>
        !this.#closed || this.#accepting !== 0 || this.#handshaking.size !== 0,
      () => {
        for (const conn of this.#handshaking.keys()) {
          this.#handshaking.set(conn, true);
          ctx.proactor.close(conn);
        }
      },
    );
    this.#acceptPorts = listeners.map((_, i) =>
      ctx.proactor.bind<Deno.Conn>({
        done: (conn) => this.#accepted(i, conn),
        failed: (error) => this.#acceptFailed(i, error),
        orphaned: (conn) => {
          if (conn !== undefined) ctx.proactor.close(conn);
        },
      })
    );
    ctx.proactor.own(this.#owned, "server");
  }

  /**
   * Stops listening; open connections are left alone. Calling it again
   * does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#serving = false;
    this.#reportLeftOut("accept");
    this.#reportLeftOut("factory");
    this.#ctx.proactor.disown(this.#owned);
    for (const listener of this.#listeners) this.#ctx.proactor.close(listener);
    for (let i = 0; i < this.#retry.length; i++) {
      this.#retry[i]?.cancel();
      this.#retry[i] = null;
    }
    // As asyncio's close(): remove the path only while it is still the
    // socket bound, and mind no path that is gone. (Deno unlinks the
    // path too when the listener goes, whatever is there but a
    // directory; see createUnixServer().)
    const file = this.#unixFile;
    if (
      this.#unixPath !== undefined && file !== null &&
      sameFile(socketFile(this.#unixPath), file)
    ) {
      try {
        Deno.removeSync(this.#unixPath);
      } catch {
        // Gone already: nothing to remove.
      }
    }
    this.#shutdown.closed();
    this.#shutdown.settle();
  }

  /**
   * Stops listening, asks every open connection to finish (through its
   * protocol's `serverClosing()` when it has one, else by closing it),
   * and aborts those left after `grace` seconds.
   *
   * @param options The grace period, in seconds.
   * @returns A future that resolves once every connection is gone.
   * @throws {TypeError} When `options` is not an object like `{ grace }`.
   * @throws {RangeError} When `grace` is negative or not a number.
   */
  shutdown(options?: ServerShutdownOptions): Future<void> {
    return this.#shutdown.shutdown(options, () => this.close());
  }

  /**
   * Closes every open connection gracefully (each flushes first); a TLS
   * connection whose handshake runs is closed at once.
   */
  closeClients(): void {
    this.#shutdown.closeClients();
  }

  /** Aborts every open connection at once, handshakes in progress too. */
  abortClients(): void {
    this.#shutdown.abortClients();
  }

  /**
   * Resolves once the server is closed and every connection it accepted
   * is gone.
   *
   * @returns A future of `undefined`.
   */
  waitClosed(): Future<void> {
    return this.#shutdown.waitClosed();
  }

  /**
   * Starts accepting, if not already.
   *
   * @returns A future, already done.
   * @throws {InvalidStateError} When the server is closed.
   */
  startServing(): Future<void> {
    if (this.#closed) {
      throw new InvalidStateError(
        "Cannot start serving: the server is closed",
      );
    }
    if (!this.#serving) {
      this.#serving = true;
      for (let i = 0; i < this.#listeners.length; i++) this.#accept(i);
    }
    const fut = this.#ctx.loop.createFuture<void>();
    fut.setResult(undefined);
    return fut;
  }

  /**
   * Accepts until the server is closed; then, once its connections are
   * gone, the task ends cancelled (so waiting for it rejects with
   * `CancelledError`, as in asyncio 3.12). Cancelling the task closes the
   * server.
   *
   * @returns A task that never has a result.
   * @throws {InvalidStateError} When the server is closed or already
   * serving forever.
   */
  serveForever(): Future<void> {
    return this.#shutdown.serveForever(
      this.#closed,
      () => this.startServing(),
      () => this.close(),
    );
  }

  /**
   * Returns `true` while accepting.
   *
   * @returns Whether the server accepts connections.
   */
  isServing(): boolean {
    return this.#serving;
  }

  /**
   * Returns the addresses listened on (bound, even before serving); none
   * once `close()` was called, as asyncio's `Server.sockets`.
   *
   * @returns The addresses.
   */
  addresses(): Deno.Addr[] {
    return this.#closed ? [] : [...this.#addresses];
  }

  /**
   * Returns the loop.
   *
   * @returns The loop the server runs on.
   */
  getLoop(): EventLoop {
    return this.#ctx.loop as EventLoop;
  }

  /**
   * Shuts the server down (`shutdown()` with the default grace) and waits
   * until everything is closed.
   *
   * @returns A promise that resolves once everything is closed.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    const state = this.#closed
      ? "closed"
      : this.#serving
      ? "serving"
      : "not serving";
    const failed = this.#failedConnections;
    return `Server ${state} connections=${this.#shutdown.size}${
      failed === 0 ? "" : ` failedAccepts=${failed}`
    }`;
  }

  #accept(i: number): void {
    this.#accepting++;
    this.#ctx.proactor.startAccept(this.#listeners[i], this.#acceptPorts[i]);
  }

  #accepted(i: number, conn: Deno.Conn): void {
    this.#accepting--;
    if (this.#closed) {
      this.#ctx.proactor.close(conn);
      this.#shutdown.settle();
      return;
    }
    this.#backoff[i] = 0;
    this.#failedOther[i] = false;
    this.#accept(i);
    if (this.#tls) this.#handshake(conn as Deno.TlsConn);
    else this.#serve(conn);
  }

  #acceptFailed(i: number, error: unknown): void {
    this.#accepting--;
    if (this.#closed) {
      this.#shutdown.settle();
      return;
    }
    const kind = acceptErrorKind(error);
    if (kind === "connection") {
      // The peer's doing, and its connection is gone: counted, never
      // logged (a peer must not make the server log more than it sent),
      // and the next one is accepted at once.
      this.#failedConnections++;
      this.#accept(i);
      return;
    }
    // Out of descriptors or memory, pausing lets connections close and
    // free some; an unknown failure is retried at once, but one that
    // repeats may be the listener's own and is paced the same way, so that
    // it cannot spin.
    const pause = kind === "exhausted" || this.#failedOther[i];
    this.#failedOther[i] = kind === "other";
    const delay = pause
      ? this.#backoff[i] = Math.min(
        this.#backoff[i] === 0 ? ACCEPT_BACKOFF_MIN : this.#backoff[i] * 2,
        ACCEPT_BACKOFF_MAX,
      )
      : 0;
    const why = kind === "exhausted"
      ? "out of file descriptors or memory"
      : (error instanceof Error ? error.message : String(error));
    this.#report(
      "accept",
      `Cannot accept a connection: ${why}, accepting again ${
        delay === 0 ? "at once" : `in ${delay} s`
      }`,
      error,
    );
    if (delay === 0) {
      this.#accept(i);
      return;
    }
    this.#retry[i] = this.#ctx.loop.callLater(delay, () => {
      this.#retry[i] = null;
      if (!this.#closed) this.#accept(i);
    });
  }

  /** At close: one line counting the failures of `kind` left out. */
  #reportLeftOut(kind: "accept" | "factory"): void {
    this.#reports[kind].sumUp(
      this.#ctx.loop,
      "Server closed",
      `${kind} failures`,
      { server: this },
    );
  }

  /**
   * Reports an accept failure or a protocol factory failure, at most once
   * per report interval for each kind: both come once per connection, and
   * a peer must not make the server log more than it sent.
   */
  #report(
    kind: "accept" | "factory",
    message: string,
    exception: unknown,
  ): void {
    this.#reports[kind].report(
      this.#ctx.loop,
      { message, exception, server: this },
      `${kind} failures`,
    );
  }

  #handshake(conn: Deno.TlsConn): void {
    this.#handshaking.set(conn, false);
    const { loop, proactor } = this.#ctx;
    const limit = this.#handshakeTimeout;
    // A client that stalls its handshake is closed when time is up, so
    // that it does not hold a place (or the closing server) forever; the
    // TLS runs over a TCP socket tulip owns (see _deno_node_tls.ts), which the
    // close releases at once.
    let timedOut = false;
    const timer = loop.callLater(limit, () => {
      timedOut = true;
      proactor.close(conn);
    });
    // Closing the loop ends the handshake (its timer is gone with it).
    const pending = handshakeOwner(proactor, conn);
    const finish = (
      ok: boolean,
      exception?: unknown,
      info?: Deno.TlsHandshakeInfo,
    ): void => {
      timer.cancel();
      proactor.disown(pending);
      // Ended by closeClients() or abortClients(), perhaps once the
      // handshake was done: not served.
      const ended = this.#handshaking.get(conn) === true;
      this.#handshaking.delete(conn);
      if (ok && !timedOut && !ended) {
        this.#serve(conn, info?.alpnProtocol ?? null);
        return;
      }
      proactor.close(conn);
      // The peer's doing: reported only when debugging.
      if (loop.getDebug() && !ended) {
        loop.callExceptionHandler(
          timedOut
            ? {
              message:
                `Cannot complete a TLS handshake: the client took longer than ${limit} s`,
              exception: new TimeoutError(
                `Cannot complete a TLS handshake: no handshake within ${limit} s`,
              ),
              server: this,
            }
            : { message: "TLS handshake failed", exception, server: this },
        );
      }
      this.#shutdown.settle();
    };
    proactor.watch(
      conn.handshake(),
      proactor.bind<Deno.TlsHandshakeInfo>({
        done: (info) => finish(true, undefined, info),
        failed: (exception) => finish(false, exception),
        orphaned: () => {
          timer.cancel();
          proactor.close(conn);
        },
      }),
    );
  }

  /**
   * Gives an accepted connection its protocol and transport.
   *
   * @param conn The connection, its TLS handshake done.
   * @param alpnProtocol For TLS: the protocol ALPN chose, or `null`.
   */
  #serve(conn: Deno.Conn, alpnProtocol?: string | null): void {
    if (this.#shutdown.shuttingDown) {
      // Finished its TLS handshake during the shutdown.
      this.#ctx.proactor.close(conn);
      this.#shutdown.settle();
      return;
    }
    let protocol: BaseProtocol;
    try {
      protocol = makeProtocol(this.#factory, "serve a connection");
    } catch (exception) {
      this.#ctx.proactor.close(conn);
      this.#report(
        "factory",
        "Error in the protocol factory of a server",
        exception,
      );
      this.#shutdown.settle();
      return;
    }
    try {
      (conn as Deno.TcpConn).setNoDelay?.(true);
    } catch {
      // Closed already: the transport finds out on its first read.
    }
    const transport: DenoStreamTransport = new DenoStreamTransport(
      this.#ctx,
      conn,
      protocol,
      {
        tls: alpnProtocol === undefined ? undefined : { alpnProtocol },
        serverSide: true,
        onLost: () => {
          this.#shutdown.delete(transport);
        },
      },
    );
    this.#shutdown.add(transport);
  }
}

/** The socket file at `path` (`null`: none there, or not a socket). */
function socketFile(
  path: string,
): { dev: number; ino: number | null } | null {
  try {
    const info = Deno.lstatSync(path);
    return info.isSocket ? { dev: info.dev, ino: info.ino } : null;
  } catch {
    return null;
  }
}

function sameFile(
  a: { dev: number; ino: number | null } | null,
  b: { dev: number; ino: number | null },
): boolean {
  return a !== null && a.dev === b.dev && a.ino === b.ino;
}

/**
 * Registers a TLS connection whose handshake runs, so that closing the
 * loop closes it (it is no transport yet: not counted as left open).
 * Disown the result once the handshake has settled.
 *
 * @param proactor The loop's proactor.
 * @param conn The connection.
 * @returns What to disown.
 */
function handshakeOwner(
  proactor: Proactor<Deno.Conn, Deno.Listener>,
  conn: Deno.Conn,
): Owned {
  const owned: Owned = {
    release: () => {
      proactor.close(conn);
      return false;
    },
  };
  proactor.own(owned, "internal");
  return owned;
}
