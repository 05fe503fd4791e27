/**
 * `StreamReaderProtocol`: the protocol that joins a transport to a
 * `StreamReader` and a `StreamWriter`.
 *
 * @module
 */

import { CancelledError, InvalidStateError } from "../futures/errors.ts";
import { Future } from "../futures/future.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { Coroutine, Task } from "../tasks/task.ts";
import type { Transport } from "../transports/transport.ts";
import { connectionReset } from "./_deno_errors.ts";
import { PeerLog } from "../protocols/peer_log.ts";
import { Protocol } from "../protocols/protocol.ts";
import type { StreamReader } from "./stream_reader.ts";
import { StreamWriter, type WriterProtocol } from "./stream_writer.ts";
import { checkLoopOption } from "../futures/_runtime.ts";

/**
 * Called with the reader and writer of each new connection. It may be a
 * plain function, an async function or a generator function; it runs in a
 * task of its own.
 */
export type ClientConnectedCallback = (
  reader: StreamReader,
  writer: StreamWriter,
) => void | PromiseLike<void> | Coroutine<void>;

/** Options for `StreamReaderProtocol`. */
export interface StreamReaderProtocolOptions {
  /**
   * The loop for the callback's task and the protocol's futures.
   *
   * @default {the running loop, looked up when first needed}
   */
  loop?: SchedulingLoop;
}

/**
 * A stream protocol that feeds what it receives to a `StreamReader`, and
 * gives a `StreamWriter` the flow control it needs (`drain()` waits
 * between `pauseWriting()` and `resumeWriting()`).
 *
 * With a `clientConnected` callback — as `startServer()` passes — it makes
 * a `StreamWriter` on `connectionMade` and runs
 * `clientConnected(reader, writer)` in a new task; if that task fails, the
 * error goes to the loop's exception handler and the transport is closed,
 * and if it is cancelled, the transport is closed without a report. A
 * failure is often the peer's doing (it hung up mid-read), so the report
 * is paid for from what the peer sent, as `PeerLog` does: past the loop's
 * reserve it is shortened to one line, or only counted.
 *
 * The end of stream is passed to the reader and the connection kept
 * half-open (so the writer can still answer), unless the transport cannot
 * half-close. When the connection is lost, the reader gets the end of
 * stream — or the error, which every read then throws — and waiting
 * `drain()` and `waitClosed()` calls finish.
 *
 * PEP 3156 (as in asyncio): `StreamReaderProtocol`.
 *
 * @example Serving a connection from a generator function
 * ```ts
 * import { StreamReader, StreamReaderProtocol, type StreamWriter } from "@tulip/tulip/streams";
 * import type { Coroutine } from "@tulip/tulip";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * function* shout(reader: StreamReader, writer: StreamWriter): Coroutine<void> {
 *   const line = yield* reader.readline();
 *   writer.write(new TextEncoder().encode(new TextDecoder().decode(line).toUpperCase()));
 *   writer.close();
 * }
 * const server = new StreamReaderProtocol(new StreamReader({ loop }), shout, { loop });
 * const clientReader = new StreamReader({ loop });
 * const client = new StreamReaderProtocol(clientReader, undefined, { loop });
 * const [, clientTransport] = transportPair(server, client, { loop });
 * clientTransport.write(new TextEncoder().encode("hey\n"));
 * const reply = await loop.runUntilComplete(clientReader.read());
 * assertEquals(new TextDecoder().decode(reply), "HEY\n");
 * loop.close();
 * ```
 */
export class StreamReaderProtocol extends Protocol implements WriterProtocol {
  #loop: SchedulingLoop | null;
  #reader: StreamReader | null;
  #clientConnected: ClientConnectedCallback | null;
  #transport: Transport | null = null;
  #writer: StreamWriter | null = null;
  #task: Task<void> | null = null;
  // Pays for reporting the callback's failure from what the peer sent.
  #log: PeerLog | null = null;
  #closed: Future<void> | null = null;
  #paused = false;
  #lost = false;
  // The drain() calls waiting, in order; each leaves once done (one
  // cancelled by a timeout, too, as asyncio's drain helper removes it).
  #drainWaiters = new Set<Future<void>>();

  /**
   * Makes the protocol of one connection.
   *
   * @param reader The reader to feed.
   * @param clientConnected Called with the reader and a new writer once
   * the connection is made; omit it for a client connection, whose writer
   * the caller makes.
   * @param options The loop.
   * @throws {TypeError} When `clientConnected` is given but not a function,
   * or `loop` is not an event loop.
   */
  constructor(
    reader: StreamReader,
    clientConnected?: ClientConnectedCallback,
    options?: StreamReaderProtocolOptions,
  ) {
    super();
    if (
      clientConnected !== undefined && typeof clientConnected !== "function"
    ) {
      throw new TypeError(
        `Cannot make a StreamReaderProtocol: clientConnected must be a function, received ${typeof clientConnected}`,
      );
    }
    this.#reader = reader;
    this.#clientConnected = clientConnected ?? null;
    checkLoopOption(options?.loop, "make a StreamReaderProtocol");
    this.#loop = options?.loop ?? getRunningLoop();
  }

  /** The writer made for `clientConnected`, or `null`. */
  get streamWriter(): StreamWriter | null {
    return this.#writer;
  }

  /**
   * Gives the reader its transport and, for a server connection, starts
   * the `clientConnected` task.
   *
   * @param transport The connection's transport.
   */
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    const reader = this.#reader;
    if (reader === null) return;
    reader.setTransport(transport);
    const callback = this.#clientConnected;
    if (callback === null) return;
    const loop = this.#getLoop();
    const writer = new StreamWriter(transport, this, { reader, loop });
    this.#writer = writer;
    const task = loop.createTask<void>(
      () => callback(reader, writer) as Coroutine<void> | PromiseLike<void>,
    );
    this.#task = task;
    const log = this.#log = new PeerLog({ loop });
    task.addDoneCallback((t) => {
      if (this.#task === t) this.#task = null;
      if (this.#log === log) this.#log = null;
      // Cancelled: nobody is left to serve the connection, so close it
      // (quietly), as asyncio does.
      const exception = t.cancelled() ? undefined : t.exception();
      if (exception !== undefined && !(exception instanceof CancelledError)) {
        // Often the peer's doing (it hung up mid-read): reported whole
        // only while what the peers sent pays for it (see PeerLog).
        log.report("failures", {
          message: "Unhandled error in the clientConnected callback",
          exception,
          task: t as Task<unknown>,
          transport,
          protocol: this,
        });
      }
      log.close("Stream connection", { transport, protocol: this });
      if (t.cancelled() || exception !== undefined) transport.close();
    });
  }

  /**
   * Feeds the bytes to the reader.
   *
   * @param data The bytes received.
   */
  override dataReceived(data: Uint8Array): void {
    this.#log?.received(data.length);
    this.#reader?.feedData(data);
  }

  /**
   * Feeds the end of stream to the reader.
   *
   * @returns `true` (stay half-open so the writer can answer), unless the
   * transport cannot half-close or has no write side (a read pipe).
   */
  override eofReceived(): boolean {
    this.#reader?.feedEof();
    const transport = this.#transport as Partial<Transport> | null;
    if (transport === null) return true;
    return typeof transport.canWriteEof === "function" &&
      transport.canWriteEof();
  }

  /**
   * Passes the end of the connection on: the reader gets the end of
   * stream or the error, waiting `drain()` calls finish (failing with the
   * error, if any), and `waitClosed()` is done.
   *
   * @param exc The error that ended the connection, if any.
   */
  override connectionLost(exc?: Error): void {
    const reader = this.#reader;
    if (reader !== null) {
      if (exc === undefined) reader.feedEof();
      else reader.setException(exc);
    }
    const closed = this.#closeWaiter();
    if (!closed.done()) {
      if (exc === undefined) closed.setResult();
      else {
        closed.setException(exc);
        // Seen here, so an unawaited waitClosed() is not reported.
        closed.exception();
      }
    }
    this.#lost = true;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = new Set();
    if (this.#paused) {
      for (const waiter of waiters) {
        if (waiter.done()) continue;
        if (exc === undefined) waiter.setResult();
        else waiter.setException(exc);
      }
    }
    this.#reader = null;
    this.#writer = null;
    this.#task = null;
    this.#transport = null;
  }

  /** Pauses `drain()`: the transport's buffer is over its high-water mark. */
  override pauseWriting(): void {
    this.#paused = true;
  }

  /** Wakes the `drain()` calls waiting: the buffer drained. */
  override resumeWriting(): void {
    this.#paused = false;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = new Set();
    for (const waiter of waiters) if (!waiter.done()) waiter.setResult();
  }

  /**
   * Returns a future that is done when writing may go on (see
   * `WriterProtocol`); `StreamWriter.drain()` uses it.
   *
   * @returns The future.
   */
  drainHelper(): Future<void> {
    const future = new Future<void>({ loop: this.#getLoop() });
    if (this.#lost) {
      future.setException(connectionReset("Connection lost"));
    } else if (!this.#paused) {
      future.setResult();
    } else {
      const waiters = this.#drainWaiters;
      waiters.add(future);
      future.addDoneCallback(() => waiters.delete(future));
    }
    return future;
  }

  /**
   * Returns the future that is done when the connection is lost;
   * `StreamWriter.waitClosed()` uses it.
   *
   * @returns The future.
   */
  getCloseWaiter(): Future<void> {
    return this.#closeWaiter();
  }

  #closeWaiter(): Future<void> {
    return this.#closed ??= new Future<void>({ loop: this.#getLoop() });
  }

  #getLoop(): SchedulingLoop {
    const loop = this.#loop ?? getRunningLoop();
    if (loop === null) {
      throw new InvalidStateError(
        "Cannot use a StreamReaderProtocol: no event loop is running, received loop=undefined",
      );
    }
    this.#loop = loop;
    return loop;
  }
}
