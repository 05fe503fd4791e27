/**
 * `StreamWriter`: writes to a stream connection, with `drain()` for flow
 * control.
 *
 * @module
 */

import { Future } from "../futures/future.ts";
import type { SchedulingLoop, StartTlsOptions } from "../loop/event_loop.ts";
import type { BaseProtocol } from "../protocols/protocol.ts";
import type { Producer, Transport } from "../transports/transport.ts";
import type { StreamReader } from "./stream_reader.ts";
import { readerFriends } from "./_reader_friends.ts";
import { InvalidStateError } from "../futures/errors.ts";
import { shield } from "../tasks/shield.ts";

/**
 * What a `StreamWriter` needs of its protocol: a way to wait while the
 * transport's write buffer is full, and a way to wait for the end of the
 * connection. `StreamReaderProtocol` implements it.
 */
export interface WriterProtocol {
  /**
   * Returns a future that is done when writing may go on: at once unless
   * the protocol is paused (`pauseWriting()`), else at `resumeWriting()`.
   * It fails with `Deno.errors.ConnectionReset` once the connection is
   * lost, and with the connection's error if it is lost while waiting.
   */
  drainHelper(): Future<void>;
  /**
   * Returns a future that is done when the connection is lost: with no
   * result after a clean close, with the error otherwise.
   */
  getCloseWaiter(): Future<void>;
}

/** Options for `StreamWriter`. */
export interface StreamWriterOptions {
  /**
   * The reader of the same connection: `drain()` fails with its error.
   *
   * @default {null}
   */
  reader?: StreamReader | null;
  /**
   * The loop that `drain()` futures are bound to.
   *
   * @default {the loop of the protocol's close waiter}
   */
  loop?: SchedulingLoop;
}

/** Makes `target` follow `source`; cancelling `target` cancels `source`. */
function chain(source: Future<void>, target: Future<void>): void {
  source.addDoneCallback((s) => {
    if (target.done()) return;
    if (s.cancelled()) target.cancel();
    else if (s.exception() !== undefined) target.setException(s.exception());
    else target.setResult();
  });
  target.addDoneCallback((t) => {
    if (t.cancelled()) source.cancel();
  });
}

/**
 * The writing half of a stream connection: `write()` never waits, and
 * `drain()` waits while the transport's buffer is over its high-water
 * mark — the asyncio idiom is `writer.write(data); await writer.drain()`.
 *
 * `writable` is a Web `WritableStream<Uint8Array>` view whose writes drain
 * and whose `close()` half-closes the connection.
 *
 * Every wait returns a `Future`, for `yield*` and `await` alike.
 *
 * PEP 3156 (as in asyncio): `StreamWriter`.
 *
 * @example Writing lines over an in-memory connection
 * ```ts
 * import { StreamReader, StreamReaderProtocol, StreamWriter } from "@tulip/tulip/streams";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const serverReader = new StreamReader({ loop });
 * const server = new StreamReaderProtocol(serverReader, undefined, { loop });
 * const client = new StreamReaderProtocol(new StreamReader({ loop }), undefined, { loop });
 * const [, clientTransport] = transportPair(server, client, { loop });
 * const writer = new StreamWriter(clientTransport, client, { loop });
 * const main = loop.createTask(async () => {
 *   writer.write(new TextEncoder().encode("one\ntwo\n"));
 *   await writer.drain();
 *   writer.close();
 *   await writer.waitClosed();
 *   const lines: string[] = [];
 *   for await (const line of serverReader) lines.push(new TextDecoder().decode(line));
 *   return lines;
 * });
 * assertEquals(await loop.runUntilComplete(main), ["one\n", "two\n"]);
 * loop.close();
 * ```
 */
export class StreamWriter implements AsyncDisposable {
  #transport: Transport;
  readonly #protocol: WriterProtocol;
  readonly #reader: StreamReader | null;
  readonly #loop: SchedulingLoop;
  #writable: WritableStream<Uint8Array> | null = null;

  /**
   * Wraps a transport and its protocol. `openConnection()` and
   * `startServer()` make writers; tests may make their own.
   *
   * @param transport The connection's transport.
   * @param protocol The connection's protocol (a `StreamReaderProtocol`).
   * @param options The reader of the same connection, and the loop.
   */
  constructor(
    transport: Transport,
    protocol: WriterProtocol,
    options?: StreamWriterOptions,
  ) {
    this.#transport = transport;
    this.#protocol = protocol;
    this.#reader = options?.reader ?? null;
    this.#loop = options?.loop ?? protocol.getCloseWaiter().getLoop();
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `StreamWriter ${this.#transport.isClosing() ? "closing" : "open"}`;
  }

  /** The connection's transport. */
  get transport(): Transport {
    return this.#transport;
  }

  /**
   * Queues bytes for sending; never waits. Follow with `drain()` to
   * respect flow control.
   *
   * PEP 3156 (as in asyncio): `StreamWriter.write()`.
   *
   * @param data The bytes.
   * @throws {TypeError} When `data` is not a `Uint8Array`.
   * @throws {Error} The connection's error (the one `drain()` gives), once
   * the connection failed, so that a write-and-drain loop ends with it.
   * @throws {InvalidStateError} After `writeEof()` or `close()`.
   */
  write(data: Uint8Array): void {
    if (this.#transport.isClosing()) this.#throwIfFailed();
    this.#transport.write(data);
  }

  /**
   * Queues several buffers, gathered into one write.
   *
   * PEP 3156 (as in asyncio): `StreamWriter.writelines()`.
   *
   * @param list The buffers, in order.
   * @throws {TypeError} When an item is not a `Uint8Array`.
   * @throws {Error} The connection's error, once the connection failed.
   * @throws {InvalidStateError} After `writeEof()` or `close()`.
   */
  writelines(list: Iterable<Uint8Array>): void {
    if (this.#transport.isClosing()) this.#throwIfFailed();
    this.#transport.writelines(list);
  }

  // The transport refuses writes once the connection is lost, with an
  // error that blames a close() nobody called: give the connection's own.
  #throwIfFailed(): void {
    const exc = this.#reader?.exception();
    if (exc !== undefined) throw exc;
  }

  /**
   * Closes the write end after the buffered bytes are sent; reading goes
   * on.
   *
   * PEP 3156 (as in asyncio): `StreamWriter.write_eof()`.
   */
  writeEof(): void {
    this.#transport.writeEof();
  }

  /**
   * Returns `true` when the transport supports `writeEof()`.
   *
   * @returns Whether the connection can be half-closed.
   */
  canWriteEof(): boolean {
    return this.#transport.canWriteEof();
  }

  /**
   * Closes the connection after the buffered bytes are sent. Follow with
   * `waitClosed()` to know when it is gone. A peer that never reads keeps
   * the bytes, and the connection, waiting: bound `waitClosed()` with
   * `waitFor()` and `writer.transport.abort()` on timeout.
   *
   * PEP 3156 (as in asyncio): `StreamWriter.close()`.
   */
  close(): void {
    this.#transport.close();
  }

  /**
   * Returns `true` once the connection is closing or closed.
   *
   * @returns Whether `close()` was called or the connection is lost.
   */
  isClosing(): boolean {
    return this.#transport.isClosing();
  }

  /**
   * Upgrades the connection to TLS (STARTTLS), as the client or, with
   * `serverSide: true` and the server's `cert` and `key`, on a server's
   * writer, as the server: waits for the write buffer to drain (the
   * go-ahead), then has the loop's `startTls()` upgrade the transport.
   * Afterwards the writer writes, and the reader reads, over TLS;
   * `transport` and `getExtraInfo()` are the new transport's
   * (`getExtraInfo("alpnProtocol")` included).
   *
   * The loop's `startTls()` notes apply: as a stream reads ahead, a read
   * is in flight once the go-ahead (or, on the server, the command) has
   * been read; the client then runs TLS over a loopback relay, the server
   * hands that read's bytes to TLS (see `DenoEventLoop.startTls`).
   *
   * Bytes the reader holds unread when the upgrade would start came in
   * plain text after the go-ahead or the command, where the peer should
   * have sent nothing: TLS would not protect them, yet read afterwards
   * they would pass for TLS-protected (STARTTLS injection, both ways). So
   * the upgrade fails and the connection is aborted; the bytes stay
   * readable. This holds for a client that pipelines its ClientHello
   * after the command too: the server cannot tell it from plain text.
   * (asyncio, since gh-142352, hands them to TLS: on the client side its
   * handshake fails on them, on the server side a pipelined ClientHello
   * goes through.)
   *
   * PEP 3156 (as in asyncio 3.11): `StreamWriter.start_tls()`.
   *
   * @param options The client's `serverHostname` and `caCerts`, or
   * `serverSide: true` with the server's `cert` and `key`; `alpnProtocols`
   * and `handshakeTimeout` in seconds (default 60).
   * @returns A future done once the handshake is; it fails as the loop's
   * `startTls()` does, or with the error `drain()` gives, or with an
   * `InvalidStateError` when the reader holds unread bytes.
   * @throws {TypeError} When the writer's loop cannot start TLS.
   *
   * @example Upgrading after a plain-text go-ahead
   * ```ts ignore
   * import { openConnection } from "@tulip/tulip/protocols";
   *
   * const [reader, writer] = await openConnection("mail.example", 25);
   * writer.write(new TextEncoder().encode("STARTTLS\r\n"));
   * await reader.readline(); // "220 Ready to start TLS"
   * await writer.startTls({ serverHostname: "mail.example" });
   * ```
   *
   * @example The server side, on a server's writer
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { openConnection, startServer } from "@tulip/tulip/streams";
   * import { assertEquals } from "@std/assert";
   *
   * const pem = (name: string) =>
   *   Deno.readTextFile(`tests/fixtures/tls/${name}`);
   * const [cert, key, ca] = await Promise.all(
   *   ["server.pem", "server.key", "ca.pem"].map(pem),
   * );
   * const enc = new TextEncoder();
   * const loop = new DenoEventLoop();
   * await loop.runUntilComplete((async () => {
   *   const server = await startServer(async (reader, writer) => {
   *     await reader.readline(); // "STARTTLS\n"
   *     writer.write(enc.encode("220 go ahead\n"));
   *     await writer.startTls({ serverSide: true, cert, key });
   *     writer.write(await reader.readline()); // an echo, over TLS
   *     writer.close();
   *   }, "127.0.0.1", 0, { loop });
   *   const { port } = server.addresses()[0] as Deno.NetAddr;
   *   const [reader, writer] = await openConnection("127.0.0.1", port, {
   *     loop,
   *   });
   *   writer.write(enc.encode("STARTTLS\n"));
   *   await reader.readline(); // "220 go ahead\n"
   *   await writer.startTls({ serverHostname: "tulip.test", caCerts: [ca] });
   *   writer.write(enc.encode("hello\n"));
   *   assertEquals(new TextDecoder().decode(await reader.readline()), "hello\n");
   *   writer.close();
   *   server.close();
   *   await server.waitClosed();
   * })());
   * loop.close();
   * ```
   */
  startTls(options?: StartTlsOptions): Future<void> {
    const loop = this.#loop as SchedulingLoop & {
      startTls?: (
        transport: Transport,
        protocol: BaseProtocol,
        options?: StartTlsOptions,
      ) => Future<Transport>;
    };
    if (typeof loop.startTls !== "function") {
      throw new TypeError(
        `Cannot call startTls(): the writer's loop has no startTls(), received ${
          Object.prototype.toString.call(loop)
        }`,
      );
    }
    const result = new Future<void>({ loop });
    const upgrade = (): void => {
      const unread = this.#reader === null
        ? 0
        : readerFriends.buffered(this.#reader);
      if (unread > 0) {
        this.#transport.abort();
        result.setException(
          new InvalidStateError(
            `Cannot call startTls(): the reader holds ${unread} bytes the peer sent before the TLS handshake, which TLS would not protect (injected by a man in the middle, or sent by a server that does not wait for the handshake); the connection is aborted, connect again`,
          ),
        );
        return;
      }
      let started: Future<Transport>;
      try {
        started = loop.startTls!(
          this.#transport,
          this.#transport.getProtocol(),
          options,
        );
      } catch (error) {
        result.setException(error);
        return;
      }
      result.addDoneCallback((r) => {
        if (r.cancelled()) started.cancel();
      });
      started.addDoneCallback((f) => {
        if (result.done()) return;
        if (f.cancelled()) return void result.cancel();
        const exc = f.exception();
        if (exc !== undefined) return result.setException(exc);
        this.#transport = f.result();
        result.setResult();
      });
    };
    this.drain().addDoneCallback((d) => {
      if (result.done()) return;
      if (d.cancelled()) return void result.cancel();
      const exc = d.exception();
      if (exc !== undefined) result.setException(exc);
      else upgrade();
    });
    return result;
  }

  /**
   * Waits until the connection is lost.
   *
   * Each call has its own future: cancelling one (a timeout around it,
   * say) leaves the other waiters, and later calls, to see the close. (In
   * asyncio they all share one, and a cancelled wait cancels it for good.)
   *
   * PEP 3156 (as in asyncio): `StreamWriter.wait_closed()`.
   *
   * @returns A future done when the connection is gone; it fails with the
   * connection's error if there was one.
   */
  waitClosed(): Future<void> {
    const waiter = shield(this.#protocol.getCloseWaiter(), {
      loop: this.#loop,
    });
    // Seen here, so that a waitClosed() nobody awaits is not reported
    // when the connection ends with an error.
    waiter.addDoneCallback((f) => {
      if (!f.cancelled()) f.exception();
    });
    return waiter;
  }

  /**
   * Registers a PEP 3153 producer that writes into this connection; the
   * transport's write buffer paces it as it paces `drain()`: a push
   * producer (`streaming = true`) is paused above the high-water mark and
   * resumed at the low one, a pull producer is asked for more each time
   * the buffer drains. So a writer is a consumer, and a
   * `ReadableStreamProducer` sends a Web stream (a file, a `fetch` body)
   * through it; `stream.pipeTo(writer.writable)` does the same with
   * promises.
   *
   * PEP 3153: `Consumer.register_producer()`.
   *
   * @param producer The producer.
   * @param streaming `true` for a push producer, `false` for a pull one.
   * @throws {InvalidStateError} When a producer is already registered.
   *
   * @example Sending a Web stream through a writer
   * ```ts
   * import {
   *   StreamReader,
   *   StreamReaderProtocol,
   *   StreamWriter,
   * } from "@tulip/tulip/protocols";
   * import { ReadableStreamProducer } from "@tulip/tulip/transports";
   * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new VirtualTimeLoop();
   * const serverReader = new StreamReader({ loop });
   * const server = new StreamReaderProtocol(serverReader, undefined, { loop });
   * const client = new StreamReaderProtocol(new StreamReader({ loop }), undefined, { loop });
   * const [, clientTransport] = transportPair(server, client, { loop });
   * const writer = new StreamWriter(clientTransport, client, { loop });
   * const body = new Blob(["one\n", "two\n"]).stream();
   * const producer = new ReadableStreamProducer(body, { loop, end: "writeEof" });
   * assertEquals(await loop.runUntilComplete(producer.start(writer)), 8);
   * const text = await loop.runUntilComplete(serverReader.read(-1));
   * assertEquals(new TextDecoder().decode(text), "one\ntwo\n");
   * writer.close();
   * loop.close();
   * ```
   */
  registerProducer(producer: Producer, streaming: boolean): void {
    this.#transport.registerProducer(producer, streaming);
  }

  /**
   * Forgets the registered producer, if any; it is not called again.
   *
   * PEP 3153: `Consumer.unregister_producer()`.
   */
  unregisterProducer(): void {
    this.#transport.unregisterProducer();
  }

  /**
   * Returns optional information about the transport (`"peername"`,
   * `"sockname"`, …).
   *
   * @param name The name of the information.
   * @param defaultValue Returned when there is no such information.
   * @returns The information.
   */
  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    return this.#transport.getExtraInfo(name, defaultValue);
  }

  /**
   * Waits until writing may go on: at once while the transport's buffer
   * is under its high-water mark; otherwise until it drains to the
   * low-water mark (`resumeWriting()`).
   *
   * There is no time limit, as in asyncio: against a peer that never
   * reads it waits until the connection is lost. Bound it with
   * `waitFor(writer.drain(), seconds)` (each call has its own future, so
   * the timeout cancels only that one) and `writer.transport.abort()` on
   * `TimeoutError`.
   *
   * PEP 3156 (as in asyncio): `StreamWriter.drain()`.
   *
   * @returns A future done when the buffer has room.
   * @throws {Error} (in the future) The reader's error, if the connection
   * failed; a `Deno.errors.ConnectionReset` once the connection is lost.
   */
  drain(): Future<void> {
    const exc = this.#reader?.exception();
    if (exc !== undefined) {
      const failed = new Future<void>({ loop: this.#loop });
      failed.setException(exc);
      return failed;
    }
    if (!this.#transport.isClosing()) return this.#protocol.drainHelper();
    // Closing: give connectionLost one iteration to run, so that a lost
    // connection is reported rather than waited for.
    const future = new Future<void>({ loop: this.#loop });
    this.#loop.callSoon(() => {
      if (!future.done()) chain(this.#protocol.drainHelper(), future);
    });
    return future;
  }

  /**
   * A Web `WritableStream` view of this writer: each chunk is written and
   * drained before the next; closing the stream half-closes the connection
   * (`writeEof()`, or `close()` when the transport cannot half-close);
   * aborting it aborts the transport. The writer's loop must be running.
   *
   * @example Piping a Web stream into a connection
   * ```ts
   * import { StreamReader, StreamReaderProtocol, StreamWriter } from "@tulip/tulip/streams";
   * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new VirtualTimeLoop();
   * const serverReader = new StreamReader({ loop });
   * const server = new StreamReaderProtocol(serverReader, undefined, { loop });
   * const client = new StreamReaderProtocol(new StreamReader({ loop }), undefined, { loop });
   * const [, clientTransport] = transportPair(server, client, { loop });
   * const writer = new StreamWriter(clientTransport, client, { loop });
   * const main = loop.createTask(async () => {
   *   await ReadableStream.from(["a", "b", "c"])
   *     .pipeThrough(new TextEncoderStream())
   *     .pipeTo(writer.writable);
   *   return new TextDecoder().decode(await serverReader.read());
   * });
   * assertEquals(await loop.runUntilComplete(main), "abc");
   * loop.close();
   * ```
   */
  get writable(): WritableStream<Uint8Array> {
    if (this.#writable === null) {
      this.#writable = new WritableStream<Uint8Array>({
        write: async (chunk) => {
          this.write(chunk);
          await this.drain();
        },
        close: async () => {
          if (this.#transport.isClosing()) return;
          if (this.canWriteEof()) this.writeEof();
          else this.close();
          await this.drain();
        },
        abort: () => {
          this.#transport.abort();
        },
      });
    }
    return this.#writable;
  }

  /**
   * Closes the connection and waits for it to be gone, for
   * `await using writer = …`; an error of the connection is not thrown.
   *
   * @returns A promise that resolves once the connection is lost.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    try {
      await this.waitClosed();
    } catch {
      // The connection is gone either way; its error was the reader's.
    }
  }
}
