/**
 * What every server does to shut down: the open connections it tracks, the
 * grace period, asking each connection to finish, and the futures waiting
 * for it to be closed.
 *
 * @module
 */

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { Coroutine } from "../tasks/task.ts";
import type {
  SchedulingLoop,
  Server,
  ServerShutdownOptions,
} from "../loop/event_loop.ts";
import type { TimerHandle } from "../loop/handle.ts";
import type { BaseProtocol } from "../protocols/protocol.ts";
import { checkOptions } from "../futures/_runtime.ts";

/**
 * How long `Server.shutdown()` lets connections finish by default, in
 * seconds.
 */
const DEFAULT_SHUTDOWN_GRACE = 10;

/** A connection a server tracks: what shutting down does to it. */
export interface ServedConnection {
  /** Closes it gracefully (its buffer is flushed first). */
  close(): void;
  /** Drops it at once. */
  abort(): void;
  /** Its protocol; `null` while none is made yet. */
  getProtocol(): BaseProtocol | null;
}

/** A protocol that can be asked to finish before its server goes. */
interface ClosingAware {
  serverClosing(): void;
}

/**
 * The shutdown bookkeeping of one server, shared by tulip's servers (Deno's
 * and the simulated one) so that `shutdown()`, `waitClosed()`,
 * `closeClients()` and `abortClients()` keep the same rules everywhere.
 *
 * The server adds each connection it serves and deletes it when the
 * connection is lost; it calls `settle()` whenever it may have become idle
 * (closed, no connection left, and nothing of its own pending, which the
 * `busy` callback reports). Settling resolves the `waitClosed()` futures and
 * cancels the grace timer.
 *
 * `shutdown()` asks every connection to finish once — through its protocol's
 * `serverClosing()` when it has one, else by closing it — and aborts those
 * left when the grace period ends; a later call with a shorter grace brings
 * the deadline forward, never back. The grace defaults to 10 seconds.
 *
 * PEP 3156 leaves shutdown out; this is asyncio's `Server.close()` +
 * `wait_closed()` with Python 3.13's `close_clients()`/`abort_clients()`.
 *
 * @typeParam T The server's connections.
 *
 * @example Shutting down: asked to finish, then aborted after the grace
 * ```ts
 * import { ServerShutdown } from "@tulip/tulip/transports";
 * import type { Server } from "@tulip/tulip/loop";
 * import { BaseEventLoop } from "@tulip/tulip/loop";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new BaseEventLoop();
 * const log: string[] = [];
 * const conn = {
 *   close: () => log.push("close"),
 *   abort: () => {
 *     log.push("abort");
 *     shutdown.delete(conn);
 *   },
 *   getProtocol: () => null,
 * };
 * let closed = false;
 * const shutdown = new ServerShutdown(loop, {} as Server, () => !closed);
 * shutdown.add(conn);
 * const done = shutdown.shutdown({ grace: 0.01 }, () => {
 *   closed = true;
 * });
 * assertEquals(log, ["close"]); // no protocol to ask: closed
 * await loop.runUntilComplete(done);
 * assertEquals(log, ["close", "abort"]); // still open after the grace
 * loop.close();
 * ```
 */
export class ServerShutdown<T extends ServedConnection> {
  readonly #loop: SchedulingLoop;
  readonly #server: Server;
  readonly #busy: () => boolean;
  readonly #endPending: (() => void) | undefined;
  readonly #connections = new Set<T>();
  // The waitClosed() futures pending, in order; each leaves once done
  // (cancelled by a timeout, too).
  #waiters = new Set<Future<void>>();
  #shuttingDown = false;
  #grace: TimerHandle | null = null;
  #graceWhen = Infinity;
  #forever: Future<void> | null = null;

  /**
   * Makes the bookkeeping of one server.
   *
   * @param loop The loop of its timer, futures and exception handler.
   * @param server The server, named in the exception handler's context.
   * @param busy Whether the server itself still holds anything back from
   * being closed: not closed yet, or an accept or a handshake pending.
   * @param endPending Ends the connections the server accepted that are
   * not served yet (a TLS handshake in progress): closing or aborting the
   * clients ends them too, as asyncio's server holds a TLS transport from
   * its accept.
   */
  constructor(
    loop: SchedulingLoop,
    server: Server,
    busy: () => boolean,
    endPending?: () => void,
  ) {
    this.#loop = loop;
    this.#server = server;
    this.#busy = busy;
    this.#endPending = endPending;
  }

  /**
   * How many connections are open.
   *
   * @returns The count.
   */
  get size(): number {
    return this.#connections.size;
  }

  /**
   * Whether `shutdown()` was called.
   *
   * @returns `true` once shutting down.
   */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /**
   * Tracks a connection the server serves.
   *
   * @param connection The connection.
   */
  add(connection: T): void {
    this.#connections.add(connection);
  }

  /**
   * Forgets a connection that is gone, then settles.
   *
   * @param connection The connection.
   */
  delete(connection: T): void {
    if (this.#connections.delete(connection)) this.settle();
  }

  /**
   * Whether the server is closed and nothing is left of it.
   *
   * @returns `true` when idle.
   */
  idle(): boolean {
    return this.#connections.size === 0 && !this.#busy();
  }

  /**
   * Finishes the shutdown if the server has become idle: resolves the
   * `waitClosed()` futures and cancels the grace timer.
   */
  settle(): void {
    if (!this.idle()) return;
    this.#grace?.cancel();
    this.#grace = null;
    if (this.#waiters.size === 0) return;
    const waiters = this.#waiters;
    this.#waiters = new Set();
    for (const fut of waiters) if (!fut.done()) fut.setResult(undefined);
  }

  /**
   * Forgets every connection and cancels the grace timer, for a server
   * that is gone with everything it served (a crashed simulated host).
   */
  clear(): void {
    this.#connections.clear();
    this.#grace?.cancel();
    this.#grace = null;
  }

  /**
   * Shuts the server down: checks the grace, stops listening (`close`),
   * asks every connection to finish the first time, and aborts those left
   * after `grace` seconds.
   *
   * @param options The grace period, in seconds.
   * @param close Stops the server listening.
   * @param starting Called once, before the connections are asked to
   * finish (a simulation records the event there).
   * @returns A future that resolves once every connection is gone.
   * @throws {TypeError} When `options` is not an object (the grace given
   * bare): `Cannot shut the server down: options must be an object like
   * { grace }, received 5`.
   * @throws {RangeError} When `grace` is negative or not a number:
   * `Cannot shut the server down: grace must be a number of seconds >= 0,
   * received -1`.
   */
  shutdown(
    options: ServerShutdownOptions | undefined,
    close: () => void,
    starting?: () => void,
  ): Future<void> {
    checkOptions(options, "shut the server down", "{ grace }");
    const grace = options?.grace ?? DEFAULT_SHUTDOWN_GRACE;
    if (typeof grace !== "number" || !(grace >= 0)) {
      throw new RangeError(
        `Cannot shut the server down: grace must be a number of seconds >= 0, received ${
          formatReceived(grace)
        }`,
      );
    }
    close();
    if (!this.#shuttingDown) {
      this.#shuttingDown = true;
      starting?.();
      for (const t of [...this.#connections]) this.#askToFinish(t);
    }
    const loop = this.#loop;
    const when = loop.time() + grace;
    if (when < this.#graceWhen && !this.idle()) {
      this.#grace?.cancel();
      this.#graceWhen = when;
      this.#grace = loop.callAt(when, () => {
        this.#grace = null;
        this.abortClients();
      });
    }
    return this.waitClosed();
  }

  /**
   * Resolves once the server is idle.
   *
   * @returns A future of `undefined`.
   */
  waitClosed(): Future<void> {
    const fut = this.#loop.createFuture<void>();
    if (this.idle()) fut.setResult(undefined);
    else {
      const waiters = this.#waiters;
      waiters.add(fut);
      fut.addDoneCallback(() => waiters.delete(fut));
    }
    return fut;
  }

  /**
   * Serves until the server is closed, as asyncio 3.12's `serve_forever()`:
   * starts serving at once, and returns a task that never has a result.
   * When the server is closed (`close`, `shutdown()`), or the task is
   * cancelled (which closes it), the task waits until the server is idle
   * — its connections gone, as `waitClosed()` — and then ends cancelled.
   *
   * @param closed Whether the server is closed already.
   * @param start Starts the server serving.
   * @param close Closes the server (idempotent).
   * @returns The task serving.
   * @throws {InvalidStateError} When already serving forever, or closed.
   */
  serveForever(
    closed: boolean,
    start: () => void,
    close: () => void,
  ): Future<void> {
    if (this.#forever !== null) {
      throw new InvalidStateError(
        "Cannot call serveForever(): the server is already serving forever",
      );
    }
    if (closed) {
      throw new InvalidStateError(
        "Cannot call serveForever(): the server is closed",
      );
    }
    start();
    const forever = this.#loop.createFuture<void>();
    this.#forever = forever;
    const waitClosed = () => this.waitClosed();
    const forget = () => {
      if (this.#forever === forever) this.#forever = null;
    };
    const task = this.#loop.createTask(
      function* (): Coroutine<void> {
        try {
          yield* forever;
        } catch (error) {
          close();
          yield* waitClosed();
          throw error;
        } finally {
          forget();
        }
      },
      { name: "serveForever" },
    );
    // Cancelled before its first step, the coroutine never runs.
    task.addDoneCallback(close);
    return task;
  }

  /**
   * Ends `serveForever()`: the server closed. Its task goes on until the
   * server is idle; a new `serveForever()` meanwhile is told the server is
   * closed.
   */
  closed(): void {
    const forever = this.#forever;
    this.#forever = null;
    forever?.cancel();
  }

  /**
   * Closes every open connection gracefully (each flushes first), and ends
   * those not served yet.
   */
  closeClients(): void {
    this.#endPending?.();
    for (const t of [...this.#connections]) t.close();
  }

  /** Aborts every open connection at once, and ends those not served yet. */
  abortClients(): void {
    this.#endPending?.();
    for (const t of [...this.#connections]) t.abort();
  }

  #askToFinish(t: T): void {
    // A connection whose protocol is not made yet has nothing to finish.
    const protocol = t.getProtocol() as Partial<ClosingAware> | null;
    if (typeof protocol?.serverClosing !== "function") {
      t.close();
      return;
    }
    try {
      protocol.serverClosing();
    } catch (exception) {
      this.#loop.callExceptionHandler({
        message: "Error in protocol.serverClosing()",
        exception,
        server: this.#server,
        protocol: protocol as BaseProtocol,
        transport: t as never,
      });
      t.close();
    }
  }
}
