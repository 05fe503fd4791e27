/**
 * `DenoServer`: the `Server` that `createServer` and `createUnixServer`
 * return, accepting through the proactor.
 *
 * @module
 */

import { InvalidStateError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { BaseProtocol } from "../protocols/protocol.ts";
import type { EventLoop, Server, ServerShutdownOptions } from "./event_loop.ts";
import type { TimerHandle } from "./handle.ts";
import type { CompletionPort } from "./_proactor.ts";
import {
  DenoStreamTransport,
  type StreamContext,
} from "./_deno_stream_transport.ts";

/** How long to wait before accepting again after an accept error, in seconds. */
const ACCEPT_RETRY_DELAY = 1;

/** How long `shutdown()` lets connections finish by default, in seconds. */
const DEFAULT_GRACE = 10;

/** A protocol that can be asked to finish before its server goes. */
interface ClosingAware {
  serverClosing(): void;
}

/** Options for `DenoServer`. */
export interface DenoServerOptions {
  /** The listener serves TLS: each connection's handshake comes first. */
  tls?: boolean;
  /** A Unix socket's path, removed when the server closes. */
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
  readonly #unixPath: string | undefined;
  readonly #acceptPorts: CompletionPort<Deno.Conn>[];
  readonly #connections = new Set<DenoStreamTransport>();
  #serving = false;
  #closed = false;
  #accepting = 0;
  #handshaking = 0;
  #retry: TimerHandle | null = null;
  #waiters: Future<void>[] = [];
  #forever: Future<void> | null = null;
  #shuttingDown = false;
  #grace: TimerHandle | null = null;
  #graceWhen = Infinity;

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
    this.#unixPath = options?.unixPath;
    this.#acceptPorts = listeners.map((_, i) =>
      ctx.proactor.bind<Deno.Conn>({
        done: (conn) => this.#accepted(i, conn),
        failed: (error) => this.#acceptFailed(i, error),
        orphaned: (conn) => {
          if (conn !== undefined) ctx.proactor.close(conn);
        },
      })
    );
  }

  /**
   * Stops listening; open connections are left alone. Calling it again
   * does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#serving = false;
    for (const listener of this.#listeners) this.#ctx.proactor.close(listener);
    this.#retry?.cancel();
    this.#retry = null;
    if (this.#unixPath !== undefined) {
      try {
        Deno.removeSync(this.#unixPath);
      } catch {
        // Gone already, or not ours to remove.
      }
    }
    this.#forever?.cancel();
    this.#maybeClosed();
  }

  /**
   * Stops listening, asks every open connection to finish (through its
   * protocol's `serverClosing()` when it has one, else by closing it),
   * and aborts those left after `grace` seconds.
   *
   * @param options The grace period, in seconds.
   * @returns A future that resolves once every connection is gone.
   * @throws {RangeError} When `grace` is negative or not a number.
   */
  shutdown(options?: ServerShutdownOptions): Future<void> {
    const grace = options?.grace ?? DEFAULT_GRACE;
    if (typeof grace !== "number" || !(grace >= 0)) {
      throw new RangeError(
        `Cannot shut the server down: grace must be a number of seconds >= 0, received ${
          String(grace)
        }`,
      );
    }
    this.close();
    if (!this.#shuttingDown) {
      this.#shuttingDown = true;
      for (const t of [...this.#connections]) this.#askToFinish(t);
    }
    const loop = this.#ctx.loop;
    const when = loop.time() + grace;
    if (when < this.#graceWhen && !this.#idle()) {
      this.#grace?.cancel();
      this.#graceWhen = when;
      this.#grace = loop.callAt(when, () => {
        this.#grace = null;
        this.abortClients();
      });
    }
    return this.waitClosed();
  }

  /** Closes every open connection gracefully (each flushes first). */
  closeClients(): void {
    for (const t of [...this.#connections]) t.close();
  }

  /** Aborts every open connection at once. */
  abortClients(): void {
    for (const t of [...this.#connections]) t.abort();
  }

  /**
   * Resolves once the server is closed and every connection it accepted
   * is gone.
   *
   * @returns A future of `undefined`.
   */
  waitClosed(): Future<void> {
    const fut = this.#ctx.loop.createFuture<void>();
    if (this.#idle()) fut.setResult(undefined);
    else this.#waiters.push(fut);
    return fut;
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
   * Accepts until the server is closed, which cancels the future;
   * cancelling the future closes the server.
   *
   * @returns A future that never has a result.
   * @throws {InvalidStateError} When the server is closed or already
   * serving forever.
   */
  serveForever(): Future<void> {
    if (this.#forever !== null) {
      throw new InvalidStateError(
        "Cannot call serveForever(): the server is already serving forever",
      );
    }
    this.startServing();
    const forever = this.#ctx.loop.createFuture<void>();
    this.#forever = forever;
    forever.addDoneCallback(() => this.close());
    return forever;
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
   * Returns the addresses listened on.
   *
   * @returns The addresses.
   */
  addresses(): Deno.Addr[] {
    return [...this.#addresses];
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
    return `Server ${state} connections=${this.#connections.size}`;
  }

  #accept(i: number): void {
    this.#accepting++;
    this.#ctx.proactor.startAccept(this.#listeners[i], this.#acceptPorts[i]);
  }

  #accepted(i: number, conn: Deno.Conn): void {
    this.#accepting--;
    if (this.#closed) {
      this.#ctx.proactor.close(conn);
      this.#maybeClosed();
      return;
    }
    this.#accept(i);
    if (this.#tls) this.#handshake(conn as Deno.TlsConn);
    else this.#serve(conn);
  }

  #acceptFailed(i: number, error: unknown): void {
    this.#accepting--;
    if (this.#closed) {
      this.#maybeClosed();
      return;
    }
    const loop = this.#ctx.loop;
    loop.callExceptionHandler({
      message: "Error on accepting a connection",
      exception: error,
      server: this,
    });
    // Out of descriptors or a similar passing trouble: try again later.
    this.#retry = loop.callLater(ACCEPT_RETRY_DELAY, () => {
      this.#retry = null;
      if (!this.#closed) this.#accept(i);
    });
  }

  #handshake(conn: Deno.TlsConn): void {
    this.#handshaking++;
    const proactor = this.#ctx.proactor;
    proactor.watch(
      conn.handshake(),
      proactor.bind({
        done: () => {
          this.#handshaking--;
          this.#serve(conn);
        },
        failed: (exception) => {
          this.#handshaking--;
          proactor.close(conn);
          const loop = this.#ctx.loop;
          if (loop.getDebug()) {
            loop.callExceptionHandler({
              message: "TLS handshake failed",
              exception,
              server: this,
            });
          }
          this.#maybeClosed();
        },
        orphaned: () => proactor.close(conn),
      }),
    );
  }

  /** Asks a connection to finish, as `shutdown()` explains. */
  #askToFinish(t: DenoStreamTransport): void {
    const protocol = t.getProtocol() as Partial<ClosingAware>;
    if (typeof protocol.serverClosing !== "function") {
      t.close();
      return;
    }
    try {
      protocol.serverClosing();
    } catch (exception) {
      this.#ctx.loop.callExceptionHandler({
        message: "Error in protocol.serverClosing()",
        exception,
        server: this,
        protocol: protocol as BaseProtocol,
        transport: t,
      });
      t.close();
    }
  }

  #serve(conn: Deno.Conn): void {
    if (this.#shuttingDown) {
      // Finished its TLS handshake during the shutdown.
      this.#ctx.proactor.close(conn);
      this.#maybeClosed();
      return;
    }
    let protocol: BaseProtocol;
    try {
      protocol = this.#factory();
    } catch (exception) {
      this.#ctx.proactor.close(conn);
      this.#ctx.loop.callExceptionHandler({
        message: "Error in the protocol factory of a server",
        exception,
        server: this,
      });
      this.#maybeClosed();
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
        onLost: () => {
          this.#connections.delete(transport);
          this.#maybeClosed();
        },
      },
    );
    this.#connections.add(transport);
  }

  #idle(): boolean {
    return this.#closed && this.#connections.size === 0 &&
      this.#accepting === 0 && this.#handshaking === 0;
  }

  #maybeClosed(): void {
    if (!this.#idle()) return;
    this.#grace?.cancel();
    this.#grace = null;
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const fut of waiters) if (!fut.done()) fut.setResult(undefined);
  }
}
