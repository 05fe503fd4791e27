/**
 * `Listener`: the facade's handle on a listening server, with a bounded
 * queue of accepted connections.
 *
 * @module
 */

import type { Future } from "../futures/future.ts";
import type { Server } from "../loop/event_loop.ts";
import type { Queue } from "../tasks/queue.ts";
import type { Connection } from "./connection.ts";

/**
 * A listening server whose incoming connections wait in a queue until
 * they are accepted, as on a listening socket. The `AsyncEngine` makes
 * listeners (`listen()`), puts each new connection in the queue (closing
 * it when the queue is full: the backlog is bounded), and takes them out
 * with `accept()`.
 *
 * `close()` stops listening, closes the connections still waiting in the
 * queue and fails the waiting `accept()` calls; connections already
 * accepted are left alone.
 *
 * PEP 3156: the server `start_serving()` returns, seen through the
 * async-facade proposal's `accept(sock, cb)`.
 *
 * @example Taking a connection with `accept()`, outside the engine
 * ```ts
 * import { AsyncEngine, type Listener } from "@tulip/tulip/facade";
 * import { assertEquals } from "@std/assert";
 *
 * const engine = new AsyncEngine();
 * const loop = engine.getLoop();
 * // A callback object can be a promise's resolve and reject.
 * const listener = await loop.runUntilComplete(
 *   new Promise<Listener>((success, failure) =>
 *     engine.listen("127.0.0.1", 0, { success, failure })
 *   ),
 * );
 * const { port } = listener.addresses()[0] as Deno.NetAddr;
 * engine.connect("127.0.0.1", port, { success: () => {}, failure: console.error });
 * const conn = await loop.runUntilComplete(listener.accept());
 * assertEquals(conn.isClosing(), false);
 * listener.close();
 * await engine.close(); // closes both ends and the loop
 * ```
 */
export class Listener implements AsyncDisposable {
  readonly #server: Server;
  readonly #accepted: Queue<Connection>;
  #closing = false;

  /**
   * Wraps a server whose connections are put into `accepted` by its
   * connection callback (the engine's `listen()` does this).
   *
   * @param server The listening server.
   * @param accepted The queue the server's connections arrive in.
   */
  constructor(server: Server, accepted: Queue<Connection>) {
    this.#server = server;
    this.#accepted = accepted;
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `Listener ${this.#describe()}`;
  }

  /** How Deno's `console.log` prints a listener. */
  [Symbol.for("Deno.customInspect")](): string {
    return `Listener ${this.#describe()}`;
  }

  /**
   * Returns the addresses listened on; with port 0, the port the system
   * picked is here.
   *
   * PEP 3156: `server.sockets` (asyncio's `Server.sockets`).
   *
   * @returns The addresses, as `Deno.Addr`s.
   */
  addresses(): Deno.Addr[] {
    return this.#server.addresses();
  }

  /**
   * Returns how many accepted connections wait in the queue.
   *
   * @returns The number of waiting connections.
   */
  waiting(): number {
    return this.#accepted.qsize();
  }

  /**
   * Takes the next connection, waiting for one if the queue is empty.
   * Cancelling the future (or a generator task waiting on it) never loses
   * a connection.
   *
   * PEP 3156 (as in the async-facade proposal): `accept()`.
   *
   * @returns A future of the connection; it fails with `QueueShutDown`
   * once the listener is closed.
   * @throws {InvalidStateError} When no loop is running and the queue was
   * made without one.
   */
  accept(): Future<Connection> {
    return this.#accepted.get();
  }

  /**
   * Stops listening: closes the server, closes the connections still
   * waiting to be accepted, and fails the waiting `accept()` calls.
   * Connections already accepted stay open. Calling it again does
   * nothing.
   *
   * PEP 3156: `server.close()`.
   */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#server.close();
    const queue = this.#accepted;
    while (!queue.empty()) queue.getNowait().close();
    queue.shutdown();
  }

  /**
   * Returns `true` once `close()` was called.
   *
   * @returns Whether the listener is closing or closed.
   */
  isClosing(): boolean {
    return this.#closing;
  }

  /**
   * Waits until the listener is closed and every connection it accepted
   * is gone.
   *
   * PEP 3156 (as in asyncio): `Server.wait_closed()`.
   *
   * @returns A future done when the server and its connections are gone.
   */
  waitClosed(): Future<void> {
    return this.#server.waitClosed();
  }

  /**
   * Closes the listener and every connection it accepted, then waits
   * until all are gone, for `await using listener = …`.
   *
   * @returns A promise that resolves once everything is closed.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#server[Symbol.asyncDispose]();
  }

  #describe(): string {
    const addr = this.#server.addresses()[0] as
      | { hostname?: string; port?: number; path?: string }
      | undefined;
    const where = addr === undefined
      ? ""
      : addr.path !== undefined
      ? ` on ${addr.path}`
      : ` on ${addr.hostname}:${addr.port}`;
    return `${
      this.#closing ? "closed" : "listening"
    }${where} waiting=${this.#accepted.qsize()}`;
  }
}
