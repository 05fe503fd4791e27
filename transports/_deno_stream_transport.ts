/**
 * `DenoStreamTransport`: a `Transport` over a Deno connection (TCP, TLS or
 * Unix socket), driven through the proactor.
 *
 * @module
 */

import { InvalidStateError, TimeoutError } from "../futures/errors.ts";
import type {
  BaseProtocol,
  BufferedProtocol,
  Protocol,
} from "../protocols/protocol.ts";
import {
  deliverData,
  isBufferedProtocol,
  lentBuffer,
} from "../protocols/deliver_data.ts";
import { PeerLog } from "../protocols/peer_log.ts";
import { FlowControlledTransport, WriteFlowControl } from "./flow_control.ts";
import {
  checkWriteData,
  gatherWriteData,
  refuseWrite,
} from "./write_checks.ts";
import type { Transport } from "./transport.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { TimerHandle } from "../loop/handle.ts";
import type {
  Completion,
  CompletionPort,
  Owned,
  Proactor,
} from "./_proactor.ts";
import { isIoError } from "./_deno_pipes.ts";
import { NodeTlsConn } from "./_deno_node_tls.ts";

/**
 * How long a TLS transport's graceful `close()` waits for the peer to
 * take more of the buffer and the close_notify, in seconds (asyncio's
 * `SSL_SHUTDOWN_TIMEOUT`), before it aborts the connection.
 */
const TLS_SHUTDOWN_TIMEOUT = 30;

/** The chunk a new or quiet connection reads into, in bytes. */
export const SMALL_CHUNK = 1024;
/** The chunk of a connection busy with small messages, in bytes. */
export const BUSY_CHUNK = 8 * 1024;
/** A chunk used up within this many seconds makes the next one busy-sized. */
const BUSY_WINDOW = 1;
/** The chunk a streaming connection reads into, in bytes. */
export const LARGE_CHUNK = 64 * 1024;
/** The least room a read gets in a small, busy or large chunk, in bytes. */
const SMALL_REGION = 256;
const BUSY_REGION = 1024;
const LARGE_REGION = 16 * 1024;
/** An unfilled read shorter than this ends streaming, in bytes. */
const STREAMING_READ = 4 * 1024;
/** Queued writes are gathered into one write of up to this many bytes. */
const GATHER_LIMIT = 256 * 1024;
/**
 * Writes shorter than this, queued behind one in flight, are copied into
 * the transport's staging buffer rather than queued by reference.
 */
const STAGE_SMALL = 16 * 1024;
/** Staging begins once this many bytes are queued. */
const STAGE_FROM = 4 * 1024;
/** A staging buffer's size, in bytes. */
const STAGE_SIZE = 64 * 1024;
/**
 * Staging buffers of a loop's idle connections, kept for the next to back
 * up (at most 128, 8 MiB): a connection answering pipelined requests goes
 * idle between reads, and a buffer made afresh each time would cost as
 * much as the gathering it replaces. Held weakly: V8's scavenges keep
 * them, its next full collection frees them, so a burst does not leave
 * 8 MiB behind. One pool per loop, as the package's other caches are.
 */
const stagePools = new WeakMap<SchedulingLoop, WeakRef<Uint8Array>[]>();
const STAGE_POOL_MAX = 128;

function takeStage(loop: SchedulingLoop): Uint8Array {
  const pool = stagePools.get(loop);
  let ref;
  while ((ref = pool?.pop()) !== undefined) {
    const stage = ref.deref();
    if (stage !== undefined) return stage;
  }
  return new Uint8Array(STAGE_SIZE);
}

function releaseStage(loop: SchedulingLoop, stage: Uint8Array | null): void {
  if (stage === null) return;
  let pool = stagePools.get(loop);
  if (pool === undefined) stagePools.set(loop, pool = []);
  if (pool.length < STAGE_POOL_MAX) pool.push(new WeakRef(stage));
}

/** `WriteFlowControl`'s default high-water mark, in bytes. */
const DEFAULT_HIGH = 64 * 1024;

/** What a stream transport needs from its loop. */
export interface StreamContext {
  /** The loop. */
  readonly loop: SchedulingLoop;
  /** Its proactor. */
  readonly proactor: Proactor<Deno.Conn, Deno.Listener>;
}

/** Options for `DenoStreamTransport`. */
export interface StreamTransportOptions {
  /** Called once `connectionMade()` returned (or threw: with the error). */
  onReady?: (error?: unknown) => void;
  /**
   * Called after `connectionLost()`; `forced` when the connection was
   * closed at once (`abort()`, an error) rather than once its buffer was
   * sent.
   */
  onLost?: (forced: boolean) => void;
  /** The connection is TLS: what its handshake settled. */
  tls?: { alpnProtocol: string | null };
  /** Made by a server (`startTls()` upgrades it only with `serverSide`). */
  serverSide?: boolean;
  /**
   * The connection whose addresses `"peername"` and `"sockname"` report
   * (a TLS connection relayed over loopback reports the real one's).
   *
   * @default {the transport's own connection}
   */
  addressesOf?: Deno.Conn;
  /**
   * Call the protocol's `connectionMade()` first; `false` for a
   * connection upgraded by `startTls()`, whose protocol goes on from the
   * plain transport.
   *
   * @default {true}
   */
  connectionMade?: boolean;
  /**
   * `close()` ends the stream (`writeEof()`) once the buffer is sent, then
   * reads and drops what still comes, and closes at the peer's end of
   * stream or after this many seconds: a socket closed with bytes unread
   * is reset, and the reset destroys what it had not sent yet (the TLS
   * end of `startTls()`'s loopback relay, whose peer goes on relaying
   * what the server sends). 0: close at once.
   *
   * @default {0}
   */
  lingerOnClose?: number;
}

function gather(chunks: Uint8Array[], from: number, to: number, n: number) {
  const out = new Uint8Array(n);
  let at = 0;
  for (let i = from; i < to; i++) {
    out.set(chunks[i], at);
    at += chunks[i].length;
  }
  return out;
}

/**
 * A stream transport over a Deno connection, in the proactor style: one
 * read in flight unless reading is paused, one write in flight at most,
 * and every completion handled on the loop.
 *
 * Reading: reads land in a chunk of memory that they fill front to back,
 * each read in the unused rest of it; the bytes a read brings are handed
 * to the protocol as a view of the chunk and never touched again, so
 * there is no copy per read and only one allocation per chunk. Chunks are
 * sized by what the connection does, because the read in flight pins its
 * chunk: a new or quiet connection reads into 1 KiB chunks (an idle
 * connection holds little); one that uses up a chunk within a second is
 * busy and gets 8 KiB chunks; a read that fills 1 KiB or more means data
 * is streaming in, and reads use 64 KiB chunks until one comes back
 * shorter than 4 KiB — 8 KiB ones once the protocol has paused reading
 * meanwhile: it is not keeping up, and the bytes it holds pin their
 * chunks across turns of the loop, long enough for V8 to promote them to
 * its old generation, which frees them only at its next full collection.
 * Such a throttled connection reads into one 8 KiB chunk over and over,
 * and the protocol gets a copy of each read: a read in flight pins its
 * memory until the connection's turn comes again, which under load (many
 * connections, each read bringing a few hundred requests) is long enough
 * for V8 to promote a fresh chunk per read, while a copy the protocol is
 * done with in its turn dies young. A `BufferedProtocol` is read into directly
 * (`getBuffer()` with the size the transport would read, then
 * `bufferUpdated()`).
 *
 * Write path, in three states (derived, not stored):
 *
 * - idle: no write in flight and nothing queued. `write()` starts a write
 *   of the caller's buffer at once, without copying it.
 * - writing: one write in flight, nothing queued. When it completes having
 *   sent everything, with nobody to tell, the transport goes back to idle
 *   without a trip through the loop.
 * - backed up: one write in flight and more queued; when it completes,
 *   the queue is gathered into one write (up to 256 KiB at a time).
 *   Once 4 KiB are queued, small writes (under 16 KiB) are copied into a
 *   64 KiB staging buffer, the next write's bytes, and two such buffers
 *   alternate while the connection stays backed up: one in flight, one
 *   filling. A server answering pipelined requests queues hundreds of
 *   small answers per write; held by reference they cost an array of
 *   references and a fresh gathered buffer per write, alive across the
 *   write, which V8's scavenges copy and whose buffers wait for a
 *   collection. Both go back to a shared pool when the connection goes
 *   idle, so an idle connection holds none, and a stalled one with a few
 *   small writes queued holds only those.
 *
 * The buffer size counts the bytes in flight and queued; it drives the
 * protocol's `pauseWriting()` / `resumeWriting()` and any producer through
 * `WriteFlowControl`. A partial write sends its remainder next.
 *
 * Ending: `close()` stops reading, flushes the queue, then closes the
 * connection; `abort()` and errors close it at once. `connectionLost` is
 * called (scheduled) exactly once, after every operation in flight on the
 * connection has settled.
 */
export class DenoStreamTransport extends FlowControlledTransport
  implements Transport {
  static readonly #Reads = class implements Completion<number | null> {
    readonly t: DenoStreamTransport;
    constructor(t: DenoStreamTransport) {
      this.t = t;
    }
    done(n: number | null): void {
      this.t.#readDone(n);
    }
    failed(error: unknown): void {
      this.t.#readFailed(error);
    }
    orphaned(): void {
      this.t.#orphaned();
    }
  };

  static readonly #Writes = class implements Completion<number> {
    readonly t: DenoStreamTransport;
    constructor(t: DenoStreamTransport) {
      this.t = t;
    }
    inline(n: number): boolean {
      return this.t.#writeInline(n);
    }
    done(n: number): void {
      this.t.#writeDone(n);
    }
    failed(error: unknown): void {
      this.t.#writeFailed(error);
    }
    orphaned(): void {
      this.t.#orphaned();
    }
  };

  static readonly #Shutdowns = class implements Completion<void> {
    readonly t: DenoStreamTransport;
    constructor(t: DenoStreamTransport) {
      this.t = t;
    }
    done(): void {
      this.t.#shutdownDone();
    }
    failed(error: unknown): void {
      this.t.#writeFailed(error);
    }
    orphaned(): void {
      this.t.#orphaned();
    }
  };

  static #begin(t: DenoStreamTransport): void {
    t.#start();
  }

  static #finish(t: DenoStreamTransport): void {
    t.#callConnectionLost();
  }

  readonly #loop: SchedulingLoop;
  readonly #proactor: Proactor<Deno.Conn, Deno.Listener>;
  readonly #conn: Deno.Conn;
  #protocol: BaseProtocol;
  #buffered: boolean; // the protocol lends its buffer
  #onReady: ((error?: unknown) => void) | undefined;
  #onLost: ((forced: boolean) => void) | undefined;
  // Closed at once (abort(), an error), not once its buffer was sent.
  #forced = false;
  readonly #tls: { alpnProtocol: string | null } | undefined;
  readonly #serverSide: boolean;
  readonly #addressesOf: Deno.Conn;
  readonly #makeConnection: boolean;
  // A TLS upgrade waiting for the connection (see `release()`).
  #upgrade: ((conn: Deno.Conn | null, error?: unknown) => void) | null = null;
  // The transport that took the connection over; reading control goes to it.
  #successor: DenoStreamTransport | null = null;
  // Where close() and abort() go once a TLS upgrade took the connection
  // (a server that tracks this transport ends the new one).
  #forward: { close(): void; abort(): void } | null = null;
  // A server-side TLS upgrade: what the socket brings from now on is the
  // client's TLS, for whoever takes the connection (see `releaseToTls()`).
  #cipher: PromiseWithResolvers<Uint8Array | null> | null = null;

  // Reading.
  readonly #readPort: CompletionPort<number | null>;
  #reading = false; // a read is in flight
  #paused = false;
  #readEof = false;
  #readBuf: Uint8Array | null = null; // a BufferedProtocol's buffer read into
  #readInto: BufferedProtocol | null = null; // its owner
  #chunk: Uint8Array | null = null;
  #at = 0; // the chunk's first byte not yet handed out
  #chunkBorn = 0; // loop time the chunk was made, in seconds
  #streaming = false;
  // The protocol paused reading since streaming began: it holds what it
  // cannot handle yet, so streaming reads take busy-sized chunks.
  #throttled = false;
  #held: number | null | undefined = undefined; // a read done while paused
  readonly #lingerFor: number; // lingerOnClose
  #lingering: TimerHandle | null = null; // the linger's deadline, once ended
  #giveUp: TimerHandle | null = null; // a TLS close()'s deadline
  #lastSent = 0; // loop time the peer last took bytes, once closing (TLS)
  #lingerMode = false; // close() reads on and drops

  // Writing.
  #writePort: CompletionPort<number> | null = null;
  #flow: WriteFlowControl | null = null;
  #inFlight: Uint8Array | null = null;
  #queue: Uint8Array[] | null = null;
  #queueHead = 0;
  #queued = 0; // bytes queued, in #queue and #stage
  #stage: Uint8Array | null = null; // the tail of the queue, filling
  #staged = 0; // bytes in #stage
  #sending: Uint8Array | null = null; // a staging buffer in flight
  #size = 0; // bytes in flight and queued
  #eofWanted = false; // writeEof() was called
  #shuttingDown = false; // closeWrite() in flight

  // Ending.
  #closing = false;
  #connClosed = false;
  #lostError: Error | undefined = undefined;
  #lostScheduled = false;
  #lostNotified = false; // connectionLost() was called (or is being)
  // Bytes handed to the protocol, what pays for the reports of its
  // failures, and how many the log was told of; the log, made on the
  // first failure.
  #received = 0;
  #paid = 0;
  #log: PeerLog | null = null;
  #started = false;
  // Registered with the proactor until the connection is closed or
  // handed on, so that closing the loop closes it.
  readonly #owned: Owned = {
    release: () => {
      const open = !this.#closing;
      this.#orphaned();
      return open;
    },
  };

  /**
   * Wraps a connected Deno connection; `connectionMade` is scheduled.
   *
   * @param ctx The loop and its proactor.
   * @param conn The connection.
   * @param protocol The protocol.
   * @param options Hooks for the loop or server that made it.
   */
  constructor(
    ctx: StreamContext,
    conn: Deno.Conn,
    protocol: BaseProtocol,
    options?: StreamTransportOptions,
  ) {
    super();
    this.#loop = ctx.loop;
    this.#proactor = ctx.proactor;
    this.#conn = conn;
    this.#protocol = protocol;
    this.#buffered = isBufferedProtocol(protocol);
    this.#onReady = options?.onReady;
    this.#onLost = options?.onLost;
    this.#lingerFor = options?.lingerOnClose ?? 0;
    this.#tls = options?.tls;
    this.#serverSide = options?.serverSide ?? false;
    this.#addressesOf = options?.addressesOf ?? conn;
    this.#makeConnection = options?.connectionMade ?? true;
    this.#readPort = ctx.proactor.bind(new DenoStreamTransport.#Reads(this));
    this.#loop.callSoon(DenoStreamTransport.#begin, this);
    ctx.proactor.own(this.#owned, "transport");
  }

  // ---- BaseTransport ----

  /**
   * Returns `"peername"` or `"sockname"` (`Deno.Addr`), `"socket"` (a
   * limited view of the connection), or for TLS `"alpnProtocol"` (the
   * protocol ALPN chose, `null` when none).
   *
   * @param name The name of the information.
   * @param defaultValue Returned when there is no such information.
   * @returns The information.
   */
  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    let value: unknown;
    switch (name) {
      case "peername":
        value = withTransport(this.#addressesOf.remoteAddr);
        break;
      case "sockname":
        value = withTransport(this.#addressesOf.localAddr);
        break;
      case "socket":
        value = this.#socketView();
        break;
      case "alpnProtocol":
        value = this.#tls?.alpnProtocol;
        break;
    }
    return value === undefined ? defaultValue : value;
  }

  /** Stops reading, flushes the write buffer, then closes. */
  close(): void {
    if (this.#forward !== null) return this.#forward.close();
    if (this.#closing) return;
    this.#closing = true;
    // The producer stops; resumeWriting() still comes until connectionLost.
    this.#flow?.endWrites();
    this.#held = undefined;
    // As asyncio's ssl_shutdown_timeout: a peer that stopped reading must
    // not hold the connection for ever.
    if (this.#tls !== undefined) {
      this.#lastSent = this.#loop.time();
      if (this.#conn instanceof NodeTlsConn) {
        this.#conn.onSent = () => this.#lastSent = this.#loop.time();
      }
      this.#armGiveUp(TLS_SHUTDOWN_TIMEOUT);
    }
    if (this.#conn instanceof NodeTlsConn && !this.#eofWanted) {
      // node:tls's TLS (a server's connections) ends with a close_notify
      // after the buffer, sent as writeEof() sends it, so that a strict
      // peer reads a clean end (Deno's own TLS connections send theirs
      // when closed); abort() still closes at once.
      this.#eofWanted = true;
      if (this.#inFlight === null) this.#startShutdown();
      return;
    }
    if (this.#lingerFor > 0 && !this.#readEof) {
      const ended = this.#eofWanted;
      this.#eofWanted = true;
      this.#lingerMode = true;
      if (this.#inFlight === null && !this.#shuttingDown) {
        if (ended) this.#armLinger();
        else this.#startShutdown();
      }
      this.#startRead();
      return;
    }
    if (this.#inFlight === null && !this.#shuttingDown) this.#closeConn();
  }

  /**
   * (Re)starts a TLS `close()`'s deadline: the peer has taken nothing for
   * `TLS_SHUTDOWN_TIMEOUT` seconds when it passes. Unlike asyncio, whose
   * deadline runs from the `close()`, a peer still reading is not cut
   * off.
   */
  #armGiveUp(delay: number): void {
    this.#giveUp = this.#loop.callLater(delay, () => {
      this.#giveUp = null;
      const idle = this.#loop.time() - this.#lastSent;
      if (idle < TLS_SHUTDOWN_TIMEOUT) {
        return this.#armGiveUp(TLS_SHUTDOWN_TIMEOUT - idle);
      }
      this.#forceClose(
        new TimeoutError(
          `Cannot close the TLS connection gracefully: the peer took none of the buffered data and close_notify for ${TLS_SHUTDOWN_TIMEOUT} s, so the connection was aborted`,
        ),
      );
    });
  }

  #armLinger(): void {
    if (this.#connClosed || this.#lingering !== null) return;
    this.#lingering = this.#loop.callLater(
      this.#lingerFor,
      () => this.#closeConn(),
    );
  }

  /**
   * Returns `true` once closing or closed.
   *
   * @returns Whether the transport is closing.
   */
  isClosing(): boolean {
    return this.#closing;
  }

  /**
   * Replaces the protocol.
   *
   * @param protocol The new protocol.
   */
  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol;
    this.#buffered = isBufferedProtocol(protocol);
  }

  /**
   * Returns the protocol.
   *
   * @returns The current protocol.
   */
  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  // ---- ReadTransport ----

  /** Stops reading; a read already in flight is held until resumed. */
  pauseReading(): void {
    if (this.#successor !== null) return this.#successor.pauseReading();
    if (this.#closing || this.#paused) return;
    this.#paused = true;
    if (this.#streaming) this.#throttled = true;
  }

  /** Resumes reading. */
  resumeReading(): void {
    if (this.#successor !== null) return this.#successor.resumeReading();
    if (this.#closing || !this.#paused || this.#upgrade !== null) return;
    this.#paused = false;
    if (this.#held !== undefined) {
      this.#loop.callSoon(() => this.#deliverHeld());
    } else if (this.#started) {
      this.#startRead();
    }
  }

  /**
   * Returns `true` while delivering data.
   *
   * @returns Whether reading is on.
   */
  isReading(): boolean {
    if (this.#successor !== null) return this.#successor.isReading();
    return !this.#paused && !this.#closing;
  }

  // ---- WriteTransport ----

  /**
   * Queues `data`; the transport keeps a reference to it until it is sent.
   *
   * @param data The bytes.
   */
  write(data: Uint8Array): void {
    // The shared check only words the error: the hot path tests inline.
    if (!(data instanceof Uint8Array)) checkWriteData(data);
    if ((this.#closing || this.#eofWanted) && !this.#checkWritable("write")) {
      return;
    }
    const n = data.length;
    if (n === 0) return;
    if (this.#inFlight === null) {
      this.#inFlight = data;
      this.#proactor.startWrite(
        this.#conn,
        data,
        this.#writePort ??= this.#proactor.bind(
          new DenoStreamTransport.#Writes(this),
        ),
      );
    } else {
      if (n >= STAGE_SMALL || !this.#stageWrite(data)) {
        if (this.#staged > 0) {
          // The staged bytes go before `data`: queue them as they are.
          (this.#queue ??= []).push(this.#stage!.subarray(0, this.#staged));
          this.#stage = null;
          this.#staged = 0;
        }
        (this.#queue ??= []).push(data);
      }
      this.#queued += n;
    }
    const size = this.#size += n;
    const flow = this.#flow;
    if (flow !== null) flow.update(size);
    else if (size > DEFAULT_HIGH) this.flowControl().update(size);
  }

  /**
   * Writes the buffers of `list`, in order, gathered into one write.
   *
   * @param list The buffers.
   */
  writelines(list: Iterable<Uint8Array>): void {
    const data = gatherWriteData(list);
    if (!this.#checkWritable("writelines") || data.length === 0) return;
    this.write(data);
  }

  /** Half-closes once the buffered data is sent. */
  writeEof(): void {
    if (this.#closing || this.#eofWanted) return;
    this.#eofWanted = true;
    if (this.#inFlight === null) this.#startShutdown();
    // Last: the producer's stopProducing() may close or abort this.
    this.#flow?.endWrites();
  }

  /**
   * Returns `true`: Deno half-closes TCP, TLS and Unix connections.
   *
   * @returns Whether `writeEof()` works.
   */
  canWriteEof(): boolean {
    return true;
  }

  /** Closes at once, dropping buffered data. */
  abort(): void {
    if (this.#forward !== null) return this.#forward.abort();
    this.#forceClose(undefined);
  }

  /**
   * Returns the bytes in flight and queued.
   *
   * @returns The count, in bytes.
   */
  getWriteBufferSize(): number {
    return this.#size;
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    const state = this.#lostScheduled
      ? "closed"
      : this.#closing
      ? "closing"
      : "open";
    return `DenoStreamTransport ${state}`;
  }

  /** Made on first need: a fresh one with the default marks is a no-op. */
  protected override flowControl(): WriteFlowControl {
    let flow = this.#flow;
    if (flow === null) {
      flow = this.#flow = new WriteFlowControl(this.#loop, this);
      flow.update(this.#size);
      if (this.#forced || this.#lostScheduled) flow.close();
      else if (this.#closing || this.#eofWanted) flow.endWrites();
    }
    return flow;
  }

  // ---- Reading ----

  #start(): void {
    if (this.#connClosed && this.#lostError === undefined) {
      // Aborted before it started: the protocol never hears of it.
      this.#onReady?.(
        new InvalidStateError(
          "Cannot make the connection: the transport was aborted",
        ),
      );
      this.#onReady = undefined;
      return;
    }
    this.#started = true;
    try {
      if (this.#makeConnection) {
        (this.#protocol as Protocol).connectionMade(this);
      }
    } catch (exception) {
      this.#fatal(
        exception,
        "Fatal error: protocol.connectionMade() call failed",
      );
      const ready = this.#onReady;
      this.#onReady = undefined;
      ready?.(exception);
      return;
    }
    this.#startRead();
    const ready = this.#onReady;
    this.#onReady = undefined;
    ready?.();
  }

  #startRead(): void {
    if (
      this.#reading || this.#readEof || this.#held !== undefined ||
      this.#upgrade !== null ||
      ((this.#paused || this.#closing) && !this.#lingerMode)
    ) return;
    let buf: Uint8Array;
    // Lingering after close(), reads go to a chunk: the protocol is done.
    if (this.#buffered && !this.#lingerMode) {
      const protocol = this.#protocol as BufferedProtocol;
      try {
        buf = lentBuffer(
          protocol,
          this.#streaming ? LARGE_CHUNK : SMALL_CHUNK,
        );
      } catch (exception) {
        this.#fatal(exception, "Fatal error: protocol.getBuffer() call failed");
        return;
      }
      this.#readInto = protocol;
      this.#readBuf = buf;
    } else {
      let chunk = this.#chunk;
      const room = chunk === null ? 0 : chunk.length - this.#at;
      if (
        room <
          (this.#streaming
            ? this.#throttled ? BUSY_REGION : LARGE_REGION
            : chunk !== null && chunk.length === BUSY_CHUNK
            ? BUSY_REGION
            : SMALL_REGION)
      ) {
        chunk = this.#newChunk(chunk);
      }
      buf = this.#at === 0 ? chunk! : new Uint8Array(chunk!.buffer, this.#at);
    }
    this.#reading = true;
    this.#proactor.startRead(this.#conn, buf, this.#readPort);
  }

  /**
   * A chunk for the next reads: large while streaming; otherwise small,
   * or busy-sized when the last one was used up quickly.
   */
  #newChunk(old: Uint8Array | null): Uint8Array {
    let size = this.#throttled ? BUSY_CHUNK : LARGE_CHUNK;
    if (!this.#streaming) {
      // Only a small or busy chunk's age is ever read back.
      const now = this.#loop.time();
      size = old !== null && old.length <= BUSY_CHUNK &&
          now - this.#chunkBorn < BUSY_WINDOW
        ? BUSY_CHUNK
        : SMALL_CHUNK;
      this.#chunkBorn = now;
    }
    this.#at = 0;
    return this.#chunk = new Uint8Array(size);
  }

  #readDone(n: number | null): void {
    this.#reading = false;
    if (this.#cipher !== null) {
      const cipher = this.#cipher;
      this.#cipher = null;
      cipher.resolve(this.#takeRead(n));
      if (this.#connClosed) this.#maybeLost();
      return;
    }
    if (this.#connClosed) return this.#maybeLost();
    if (this.#lingerMode) {
      // Closing: what still comes is dropped, until the peer's end.
      this.#dropRead();
      if (n === null) {
        this.#readEof = true;
        if (this.#inFlight === null && !this.#shuttingDown) this.#closeConn();
        return;
      }
      return this.#startRead();
    }
    if (this.#closing) return this.#dropRead();
    if (this.#upgrade !== null) {
      // Sent before the upgrade: plain text, the protocol's.
      this.#deliver(n);
      return this.#maybeRelease();
    }
    if (this.#paused) {
      this.#held = n;
      return;
    }
    this.#deliver(n);
    this.#startRead();
  }

  #deliverHeld(): void {
    const n = this.#held;
    if (n === undefined || this.#paused || this.#closing) return;
    this.#held = undefined;
    this.#deliver(n);
    this.#startRead();
  }

  /** Hands the result of the last read to the protocol. */
  #deliver(n: number | null): void {
    if (n !== null) this.#received += n;
    const owner = this.#readInto;
    if (owner !== null) return this.#deliverLent(owner, n);
    if (n === null) return this.#eofReceived();
    if (n === 0) return;
    const chunk = this.#chunk!;
    const at = this.#at;
    if (at === 0 && this.#throttled && chunk.length === BUSY_CHUNK) {
      // Throttled (see the class's comment): the protocol gets a copy, and
      // the next read lands in the same chunk again.
      const copy = chunk.slice(0, n);
      if (n < STREAMING_READ) {
        this.#streaming = false;
        this.#throttled = false;
        this.#chunk = null;
      }
      return this.#feed(copy);
    }
    // Made here rather than from the read's view: a constructor call costs
    // less than `subarray()`, and the transport keeps no view per read.
    const data = new Uint8Array(chunk.buffer, at, n);
    // Streaming while reads fill their space; waiting after a short one.
    if (n === chunk.length - at && n >= SMALL_CHUNK) this.#streaming = true;
    else if (this.#streaming && n < STREAMING_READ) {
      this.#streaming = false;
      this.#throttled = false;
      // Let the large chunk go, so that a quiet connection pins little.
      this.#chunk = null;
      this.#at = 0;
      return this.#feed(data);
    }
    this.#at = at + n;
    this.#feed(data);
  }

  /** Hands the result of a read into a `BufferedProtocol`'s buffer. */
  #deliverLent(owner: BufferedProtocol, n: number | null): void {
    const buf = this.#readBuf!;
    this.#readBuf = null;
    this.#readInto = null;
    if (n === null) return this.#eofReceived();
    if (n === 0) return;
    if (n === buf.length && n >= SMALL_CHUNK) this.#streaming = true;
    else if (n < STREAMING_READ) this.#streaming = false;
    if (owner === this.#protocol) {
      try {
        owner.bufferUpdated(n);
      } catch (exception) {
        this.#fatal(
          exception,
          "Fatal error: protocol.bufferUpdated() call failed",
        );
      }
    } else {
      // The protocol changed while the read was in flight: copy it out of
      // the old protocol's buffer.
      this.#feed(buf.slice(0, n));
    }
  }

  /** Gives `data`, now the protocol's, to the protocol. */
  #feed(data: Uint8Array): void {
    const protocol = this.#protocol;
    if (this.#buffered) {
      // Copied into a buffered protocol's buffers, as many as it takes (a
      // protocol swapped in while the read was in flight); a failure is
      // reported under the call that failed.
      deliverData(
        protocol,
        data,
        (exception, call) =>
          this.#fatal(exception, `Fatal error: protocol.${call}() call failed`),
      );
      return;
    }
    try {
      (protocol as Protocol).dataReceived(data);
    } catch (exception) {
      this.#fatal(
        exception,
        "Fatal error: protocol.dataReceived() call failed",
      );
    }
  }

  #eofReceived(): void {
    this.#readEof = true;
    this.#chunk = null;
    let keepOpen: boolean | void;
    try {
      keepOpen = (this.#protocol as Protocol).eofReceived();
    } catch (exception) {
      this.#fatal(exception, "Fatal error: protocol.eofReceived() call failed");
      return;
    }
    if (!keepOpen) this.close();
  }

  #readFailed(error: unknown): void {
    // A TLS peer that closed its socket without a close_notify: the end of
    // the stream, as asyncio's SSL protocol (and Python's ssl module, with
    // its suppress_ragged_eofs) takes it, not a broken connection.
    if (this.#tls !== undefined && error instanceof Deno.errors.UnexpectedEof) {
      return this.#readDone(null);
    }
    this.#reading = false;
    this.#dropRead();
    if (this.#cipher !== null) {
      // The TLS layer reports it: its handshake fails with it.
      this.#cipher.reject(error);
      this.#cipher = null;
      if (this.#connClosed) this.#maybeLost();
      return;
    }
    if (this.#connClosed) return this.#maybeLost();
    if (this.#lingerMode) return this.#closeConn();
    if (this.#closing) return;
    this.#forceClose(error as Error);
  }

  /** A read ended after `close()` or in error: its data is dropped. */
  #dropRead(): void {
    this.#readBuf = null;
    this.#readInto = null;
    this.#chunk = null;
  }

  // ---- Writing ----

  #checkWritable(what: string): boolean {
    if (this.#eofWanted) refuseWrite(what, true);
    if (this.#closing) {
      if (this.#lostError !== undefined && !this.#lostNotified) {
        // The connection broke and the protocol has not been told yet
        // (connectionLost may be scheduled, not yet run): drop the data
        // quietly, as asyncio does.
        return false;
      }
      refuseWrite(what, false);
    }
    return true;
  }

  /** Copies `data` at the end of the staging buffer if it fits there. */
  #stageWrite(data: Uint8Array): boolean {
    let stage = this.#stage;
    if (stage === null) {
      // A few small writes stay queued by reference: a stalled connection
      // should not hold a staging buffer for them.
      if (this.#queued + data.length < STAGE_FROM) return false;
      this.#stage = stage = takeStage(this.#loop);
      this.#staged = this.#moveQueue(stage);
    }
    const at = this.#staged;
    const end = at + data.length;
    if (end > STAGE_SIZE) return false;
    stage.set(data, at);
    this.#staged = end;
    return true;
  }

  /**
   * Copies the queued writes into a new staging buffer when they are all
   * small and fit, and empties the queue; returns the bytes staged.
   */
  #moveQueue(stage: Uint8Array): number {
    const queue = this.#queue;
    const n = this.#queued; // all in the queue: there was no stage
    if (queue === null || n > STAGE_SIZE) return 0;
    const from = this.#queueHead;
    for (let i = from; i < queue.length; i++) {
      if (queue[i].length >= STAGE_SMALL) return 0;
    }
    let at = 0;
    for (let i = from; i < queue.length; i++) {
      stage.set(queue[i], at);
      at += queue[i].length;
    }
    this.#queue = null;
    this.#queueHead = 0;
    return n;
  }

  /**
   * The connection went idle: its staging buffers go back to the pool
   * (the one in flight, if any, has been sent).
   */
  #dropStages(): void {
    releaseStage(this.#loop, this.#stage);
    releaseStage(this.#loop, this.#sending);
    this.#stage = null;
    this.#sending = null;
  }

  /** A write that sent everything, with nothing queued and nobody to tell. */
  #writeInline(n: number): boolean {
    const sent = this.#inFlight;
    if (
      sent === null || n !== sent.length || this.#queued !== 0 ||
      this.#closing || this.#eofWanted || this.#upgrade !== null
    ) return false;
    const flow = this.#flow;
    if (flow !== null) {
      if (flow.isPaused() || flow.producer !== null) return false;
      flow.update(this.#size - n);
    }
    this.#inFlight = null;
    this.#size -= n;
    if (this.#stage !== null || this.#sending !== null) this.#dropStages();
    return true;
  }

  #writeDone(n: number): void {
    if (this.#connClosed) {
      this.#inFlight = null;
      return this.#maybeLost();
    }
    const sent = this.#inFlight!;
    this.#size -= n;
    if (this.#giveUp !== null) this.#lastSent = this.#loop.time();
    if (n < sent.length) {
      const rest = sent.subarray(n);
      this.#inFlight = rest;
      this.#proactor.startWrite(this.#conn, rest, this.#writePort!);
    } else if (this.#queued > 0) {
      this.#startQueued();
    } else {
      this.#inFlight = null;
      if (this.#stage !== null || this.#sending !== null) this.#dropStages();
      if (this.#eofWanted) this.#startShutdown();
      else if (this.#closing) this.#closeConn();
      else if (this.#upgrade !== null) this.#maybeRelease();
    }
    this.#flow?.update(this.#size);
  }

  /** Gathers the head of the queue into the next write. */
  #startQueued(): void {
    const queue = this.#queue;
    if (queue === null) {
      // Only staged bytes: send them, and fill the buffer just sent next.
      const stage = this.#stage!;
      const data = stage.subarray(0, this.#staged);
      this.#stage = this.#sending;
      this.#sending = stage;
      this.#queued -= this.#staged;
      this.#staged = 0;
      this.#inFlight = data;
      this.#proactor.startWrite(this.#conn, data, this.#writePort!);
      return;
    }
    const from = this.#queueHead;
    let to = from;
    let n = 0;
    while (
      to < queue.length && (n === 0 || n + queue[to].length <= GATHER_LIMIT)
    ) {
      n += queue[to].length;
      to++;
    }
    const data = to - from === 1 ? queue[from] : gather(queue, from, to, n);
    if (to === queue.length) {
      this.#queue = null;
      this.#queueHead = 0;
    } else {
      for (let i = from; i < to; i++) queue[i] = undefined as never;
      this.#queueHead = to;
    }
    this.#queued -= n;
    this.#inFlight = data;
    this.#proactor.startWrite(this.#conn, data, this.#writePort!);
  }

  #writeFailed(error: unknown): void {
    this.#inFlight = null;
    this.#shuttingDown = false;
    if (this.#connClosed) return this.#maybeLost();
    this.#forceClose(error as Error);
  }

  #startShutdown(): void {
    this.#shuttingDown = true;
    this.#proactor.startShutdown(
      this.#conn,
      this.#proactor.bind(new DenoStreamTransport.#Shutdowns(this)),
    );
  }

  #shutdownDone(): void {
    this.#shuttingDown = false;
    if (this.#connClosed) return this.#maybeLost();
    if (!this.#closing) return;
    if (this.#lingerMode && !this.#readEof) this.#armLinger();
    else this.#closeConn();
  }

  // ---- Ending ----

  /** An error from the protocol: report it, then close with it. */
  #fatal(exception: unknown, message: string): void {
    this.#report(exception, message);
    this.#forceClose(exception as Error);
  }

  /**
   * Reports a failure of the protocol's: what the peer sent pays for it,
   * as `PeerLog` counts, so that peers that each make the protocol fail
   * cannot make the log grow more than they sent. A failure ends the
   * connection, so there are two at most (one, then `connectionLost()`'s).
   */
  #report(exception: unknown, message: string, kind = "fatal errors"): void {
    const log = this.#log ??= new PeerLog({ loop: this.#loop });
    log.received(this.#received - this.#paid);
    this.#paid = this.#received;
    log.report(kind, {
      message,
      exception,
      transport: this,
      protocol: this.#protocol,
    });
  }

  #forceClose(error: Error | undefined): void {
    if (this.#connClosed) return;
    if (error !== undefined && this.#loop.getDebug() && isIoError(error)) {
      this.#loop.callExceptionHandler({
        message: "Connection lost",
        exception: error,
        transport: this,
        protocol: this.#protocol,
      });
    }
    this.#closing = true;
    this.#forced = true;
    this.#flow?.close();
    this.#held = undefined;
    this.#queue = null;
    this.#queueHead = 0;
    this.#queued = 0;
    // A write may still be in flight from #sending: the pool cannot have it.
    this.#stage = null;
    this.#sending = null;
    this.#staged = 0;
    this.#size = 0;
    this.#lostError = error;
    this.#closeConn();
  }

  /** Closes the connection; operations in flight fail and then report. */
  #closeConn(): void {
    if (this.#connClosed) return;
    this.#lingering?.cancel();
    this.#lingering = null;
    this.#giveUp?.cancel();
    this.#giveUp = null;
    this.#connClosed = true;
    this.#closing = true;
    this.#proactor.disown(this.#owned);
    this.#proactor.close(this.#conn);
    const upgrade = this.#upgrade;
    if (upgrade !== null) {
      this.#upgrade = null;
      upgrade(
        null,
        this.#lostError ??
          new InvalidStateError("the connection was closed first"),
      );
    }
    this.#maybeLost();
  }

  // ---- Upgrading (startTls) ----

  /**
   * Why the connection cannot be handed over for a TLS upgrade now, or
   * `null` when it can.
   *
   * @returns The reason, for an error message.
   */
  releaseBlocker(serverSide = false): string | null {
    if (this.#tls !== undefined) return "the connection is TLS already";
    if (this.#serverSide !== serverSide) {
      return this.#serverSide
        ? "the transport is the server side of its connection: pass serverSide: true, with the server's cert and key"
        : "serverSide: true upgrades only a connection a server accepted, and this transport is the client side (leave serverSide out, and pass serverHostname and caCerts as needed)";
    }
    if (this.#conn.remoteAddr.transport !== "tcp") {
      return `Deno upgrades only TCP connections, received a ${this.#conn.remoteAddr.transport} connection`;
    }
    if (this.#successor !== null) return "the connection was upgraded";
    if (!this.#started) return "the connection is not made yet";
    if (this.#upgrade !== null) return "an upgrade is under way";
    if (this.#closing) return "transport is closing";
    if (this.#eofWanted) return "writeEof() was called";
    if (this.#readEof) return "the peer ended its side of the stream";
    return null;
  }

  /**
   * What the upgrade still waits for: `"read"` (a read in flight, which
   * only the peer can finish), `"write"` (buffered bytes), or `null`.
   *
   * @returns What the release waits for.
   */
  releaseWaitsFor(): "read" | "write" | null {
    if (this.#upgrade === null) return null;
    if (this.#reading) return "read";
    if (this.#inFlight !== null || this.#shuttingDown) return "write";
    return null;
  }

  /**
   * Hands the connection over for a TLS upgrade. Deno upgrades only a
   * connection nobody reads, and a read in flight ends only when the peer
   * sends, which a STARTTLS server does not do before the client's
   * handshake. So: reading stops, and a read done but held (reading was
   * paused) goes to the protocol — plain text sent before the upgrade.
   * Then, with no read in flight, buffered writes are sent, `ready(conn)`
   * is called, and this transport is done with the connection without
   * telling the protocol, which goes on over the upgraded one. With a
   * read in flight, reading goes on instead and `busy()` is called: the
   * caller then relays this transport's bytes to a TLS connection of its
   * own. If the connection ends first, `ready(null, error)` is called and
   * the protocol is told as usual. Check `releaseBlocker()` first.
   *
   * @param ready Called once with the connection, or with the error.
   * @param busy Called instead of `ready` when a read is in flight.
   */
  release(
    ready: (conn: Deno.Conn | null, error?: unknown) => void,
    busy: () => void,
  ): void {
    this.#upgrade = ready;
    this.#paused = true;
    this.#loop.callSoon(() => {
      if (this.#upgrade === null || this.#closing) return;
      const n = this.#held;
      if (n !== undefined) {
        this.#held = undefined;
        this.#deliver(n);
        if (this.#closing) return;
      }
      if (this.#reading) {
        // Reading goes on, to the protocol until the caller's relay takes
        // over: what arrives before the client's handshake is plain text.
        this.#upgrade = null;
        this.#paused = false;
        busy();
        return;
      }
      this.#maybeRelease();
    });
  }

  /**
   * Hands the connection over for a server-side TLS upgrade. Reading
   * stops, and what the socket brought since the last bytes given to the
   * protocol is the client's TLS: a read done but held (reading was
   * paused), or the read in flight, which the client's handshake ends.
   * Once buffered writes are sent (the go-ahead), `ready(conn, first)` is
   * called with the connection and that read's bytes to come (`null`: no
   * read was pending), and this transport is done with the connection
   * without telling the protocol. If the connection ends first,
   * `ready(null, null, error)` is called and the protocol is told as
   * usual. Check `releaseBlocker(true)` first.
   *
   * @param ready Called once with the connection, or with the error.
   */
  releaseToTls(
    ready: (
      conn: Deno.Conn | null,
      first: Promise<Uint8Array | null> | null,
      error?: unknown,
    ) => void,
  ): void {
    let first: Promise<Uint8Array | null> | null = null;
    const n = this.#held;
    if (n !== undefined) {
      this.#held = undefined;
      first = Promise.resolve(this.#takeRead(n));
    } else if (this.#reading) {
      const cipher = this.#cipher = Promise.withResolvers();
      // Settled by whoever takes the connection, if anyone.
      cipher.promise.catch(() => {});
      first = cipher.promise;
    }
    this.#paused = true;
    this.#upgrade = (conn, error) => ready(conn, conn && first, error);
    this.#loop.callSoon(() => this.#maybeRelease());
  }

  /**
   * The bytes of the last read, a copy taken from the chunk or the lent
   * buffer (`null`: the end of the stream).
   */
  #takeRead(n: number | null): Uint8Array | null {
    const lent = this.#readBuf;
    this.#readBuf = null;
    this.#readInto = null;
    if (n === null) return null;
    if (lent !== null) return lent.slice(0, n);
    const chunk = this.#chunk;
    this.#chunk = null;
    return chunk === null
      ? new Uint8Array(0)
      : chunk.slice(this.#at, this.#at + n);
  }

  /**
   * Hands over what tracks this transport (the server's `onLost`, which
   * forgets the connection), for the transport that takes it over.
   *
   * @returns The hook, now the caller's.
   */
  takeOnLost(): ((forced: boolean) => void) | undefined {
    const lost = this.#onLost;
    this.#onLost = undefined;
    return lost;
  }

  /**
   * Sends `close()` and `abort()` on to `to` from now on: the upgrade
   * that took the connection, then the transport it made (a server's
   * tracking ends the connection through this transport).
   *
   * @param to What ends the connection now.
   */
  forwardEnds(to: { close(): void; abort(): void }): void {
    this.#forward = to;
  }

  /** Stops reading, even with a successor (for a relay). */
  pauseOwnReading(): void {
    if (this.#closing || this.#paused) return;
    this.#paused = true;
  }

  /** Resumes reading, even with a successor (for a relay). */
  resumeOwnReading(): void {
    const successor = this.#successor;
    this.#successor = null;
    this.resumeReading();
    this.#successor = successor;
  }

  /**
   * Makes the transport part of the machinery (an end of a STARTTLS
   * relay, which closes when the TLS transport does): the loop's
   * `close()` still releases it but does not count it as left open.
   */
  relaysTls(): void {
    if (!this.#connClosed) this.#proactor.own(this.#owned, "internal");
  }

  /**
   * Names the transport that took the connection over: from then on
   * `pauseReading()`, `resumeReading()` and `isReading()` act on it, so
   * that whoever paces reading through this transport (a `StreamReader`)
   * keeps doing so.
   *
   * @param next The upgraded transport.
   */
  succeededBy(next: DenoStreamTransport): void {
    this.#successor = next;
  }

  /**
   * Closes at once with `error`, which the protocol gets (a failed
   * upgrade that had not taken the connection yet).
   *
   * @param error Why.
   */
  failWith(error: Error): void {
    this.#forceClose(error);
  }

  /** The Deno connection (for a relay's addresses). */
  get connection(): Deno.Conn {
    return this.#conn;
  }

  #maybeRelease(): void {
    const ready = this.#upgrade;
    if (
      ready === null || this.#closing ||
      (this.#reading && this.#cipher === null) ||
      this.#inFlight !== null || this.#shuttingDown
    ) return;
    this.#upgrade = null;
    // Done with the connection: nothing is closed and nobody is told.
    this.#proactor.disown(this.#owned);
    this.#closing = true;
    this.#connClosed = true;
    this.#lostScheduled = true;
    this.#flow?.close();
    // The read in flight of a server-side upgrade still lands in the chunk.
    if (this.#cipher === null) this.#chunk = null;
    ready(this.#conn);
  }

  #maybeLost(): void {
    if (
      this.#lostScheduled || this.#reading || this.#inFlight !== null ||
      this.#shuttingDown
    ) return;
    this.#lostScheduled = true;
    this.#chunk = null;
    this.#loop.callSoon(DenoStreamTransport.#finish, this);
  }

  #callConnectionLost(): void {
    this.#lostNotified = true;
    this.#flow?.close();
    if (this.#started) {
      try {
        this.#protocol.connectionLost(this.#lostError);
      } catch (exception) {
        this.#report(
          exception,
          "Exception in protocol.connectionLost()",
          "connectionLost() failures",
        );
      }
    }
    this.#log?.close("Connection", { transport: this });
    const lost = this.#onLost;
    this.#onLost = undefined;
    lost?.(this.#forced);
  }

  /** An operation settled after the loop closed: release the connection. */
  #orphaned(): void {
    this.#cipher?.reject(new InvalidStateError("the loop was closed"));
    this.#cipher = null;
    this.#proactor.disown(this.#owned);
    this.#connClosed = true;
    this.#closing = true;
    this.#proactor.close(this.#conn);
  }

  #socketView(): unknown {
    const conn = this.#conn as Deno.TcpConn;
    return {
      localAddr: withTransport(conn.localAddr),
      remoteAddr: withTransport(conn.remoteAddr),
      setNoDelay: (on = true) => conn.setNoDelay?.(on),
      setKeepAlive: (on = true) => conn.setKeepAlive?.(on),
      ref: () => this.#proactor.setRef(conn, this.#readPort, true),
      unref: () => this.#proactor.setRef(conn, this.#readPort, false),
    };
  }
}

/**
 * A connection's address as a `Deno.Addr`. The connections
 * `Deno.startTls()` returns (TLS clients) name their addresses without
 * `transport`, which every other connection's addresses have.
 */
function withTransport(addr: Deno.Addr): Deno.Addr {
  if (addr === undefined || "transport" in addr) return addr;
  return { transport: "tcp", ...(addr as Omit<Deno.NetAddr, "transport">) };
}
