/**
 * The `sock*` calls on Deno's connections and listeners: asyncio's
 * `loop.sock_recv()`, `sock_recv_into()`, `sock_sendall()`,
 * `sock_connect()` and `sock_accept()`, each a `Future`, each operation
 * through the proactor.
 *
 * Deno cannot cancel a read or an accept once started. So each
 * connection (and listener) keeps at most one operation in flight, and
 * callers wait in line for it: cancelling a future takes it out of the
 * line, and what the abandoned operation brings back (bytes, or an
 * accepted connection) is kept for the next caller instead of being lost.
 * What was read and not taken outlives the loop: closing it leaves the
 * bytes, and the read it cannot withdraw, to the next loop's calls.
 *
 * @module
 */

import { Future } from "../futures/future.ts";
import { TAKE_BACK } from "../futures/_runtime.ts";
import { formatReceived } from "../futures/errors.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { CompletionPort, Proactor } from "./_proactor.ts";
import { checkPort, describeAddress } from "./address_checks.ts";
import { withAddress } from "./_deno_names.ts";

/**
 * The largest buffer a `sockRecv` read allocates (asyncio's transports
 * read 256 KiB at a time too). A read gives 1 to `n` bytes, so a larger
 * `n` only means that more may come in later calls; allocating `n` bytes
 * would fail, or waste memory, for a large `n`.
 */
const MAX_READ = 256 * 1024;

/** A caller waiting to read: into its own buffer, or up to `n` bytes. */
type ReadWaiter =
  | { future: SockFuture<Uint8Array>; n: number; into: null }
  | { future: SockFuture<number>; n: number; into: Uint8Array };

/**
 * A read's future, counting who took its outcome (a task's done callback
 * or `await`, a `gather()`, `shield()`, `waitFor()`): bytes go back only
 * once every taker dropped them, as `StreamReader`'s reads do.
 */
class SockFuture<T> extends Future<T> {
  takers = 0;
  drops = 0;
  /** Its place among the connection's reads that got an outcome. */
  served = 0;
  declare [TAKE_BACK]: (value: T) => void;

  override addDoneCallback(fn: (future: Future<T>) => void): void {
    super.addDoneCallback(fn);
    this.takers++;
  }

  override removeDoneCallback(fn: (future: Future<T>) => void): number {
    const removed = super.removeDoneCallback(fn);
    this.takers -= removed;
    return removed;
  }

  override then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    this.takers++;
    return super.then(onfulfilled, onrejected);
  }

  // A pending future is taken through the done callback its task adds; a
  // done one, here.
  override *[Symbol.iterator](): Generator<Future<T>, T, unknown> {
    if (this.done()) this.takers++;
    return yield* super[Symbol.iterator]();
  }

  /**
   * Calls `giveBack` with the dropped result once every taker dropped it,
   * and only once.
   */
  onDropped(giveBack: (value: T) => void): void {
    let given = false;
    this[TAKE_BACK] = (value) => {
      if (++this.drops < this.takers || given) return;
      given = true;
      giveBack(value);
    };
  }
}

/** What a connection's abandoned read brought back, for the next reader. */
type Kept =
  | { kind: "data"; data: Uint8Array }
  | { kind: "eof" }
  | { kind: "error"; error: unknown };

/**
 * What was read from a connection and not yet taken, and the read a
 * closed loop left in flight on it: shared by the `sock*` calls of every
 * loop, so that closing one loses no byte of the application's
 * connection.
 */
interface ConnReads {
  /**
   * What was read and not yet taken, oldest first, for the next readers:
   * what abandoned reads brought and what cancelled tasks dropped. An EOF
   * or error comes last; an EOF stays.
   */
  readonly kept: Kept[];
  /** The read a closed loop left in flight, until it settles. */
  orphan: Orphan | null;
}

/** A read that a closed loop left in flight on a connection. */
interface Orphan {
  /** Resolves once it settled and what it brought is in `kept`. */
  readonly settled: Promise<void>;
  /** Sets whether it keeps the process alive. */
  ref(on: boolean): void;
}

/** The reads of each connection, whichever loop made them. */
const connReads = new WeakMap<Deno.Conn, ConnReads>();

/** The reads of one connection on one loop. */
interface ReadState {
  readonly port: CompletionPort<number | null>;
  readonly waiters: ReadWaiter[];
  /** The read in flight: the waiter it serves and the buffer it fills. */
  inFlight: { waiter: ReadWaiter; buffer: Uint8Array } | null;
  /** The connection's reads shared by every loop. */
  readonly shared: ConnReads;
  /** `shared.kept`. */
  readonly kept: Kept[];
  /** Whether a read a closed loop left in flight is waited for. */
  adopting: boolean;
  /** Where the end of that read is reported. */
  readonly adopted: CompletionPort<void>;
  /** Resolves `shared.orphan.settled`, once this loop closed. */
  settle: (() => void) | null;
  /**
   * Where `sockRecvInto` reads land before they are copied into the
   * caller's buffer (reused; grown as callers ask, up to `MAX_READ`).
   */
  scratch: Uint8Array | null;
  /**
   * How many reads got an outcome (bytes, end of stream, an error): bytes
   * dropped go back only if no read was served after theirs, since the
   * next read would otherwise get them after later ones.
   */
  served: number;
}

/** A caller waiting for all of `data` to be written. */
interface WriteWaiter {
  readonly future: Future<void>;
  readonly data: Uint8Array;
  /** `data.length` at the call: less now if it was detached or shrunk. */
  readonly length: number;
  offset: number;
}

/** The writes of one connection. */
interface WriteState {
  readonly port: CompletionPort<number>;
  readonly waiters: WriteWaiter[];
  writing: boolean;
  /** Whether the write in flight was let go of the process (unref'd). */
  unrefd: boolean;
  /** The callers whose done callback has not run yet. */
  live: number;
}

/** The accepts of one listener. */
interface AcceptState {
  readonly port: CompletionPort<Deno.Conn>;
  readonly waiters: Future<Deno.Conn>[];
  accepting: boolean;
  /** Whether the loop's `close()` let the accept in flight go (unref). */
  unrefd: boolean;
  /** A connection accepted for a caller that gave up, for the next one. */
  kept: Deno.Conn | null;
  /** The accept in flight this loop's `close()` left, until it settles. */
  orphan: OrphanAccept | null;
  /** Another closed loop's accept in flight that is waited for. */
  adopting: OrphanAccept | null;
  /** Where the end of that accept is reported. */
  readonly adopted: CompletionPort<void>;
}

/**
 * An accept that a closed loop left in flight on a listener (Deno cannot
 * withdraw it, and refuses another meanwhile): the next loop's
 * `sockAccept` waits for it and gets the connection it brings.
 */
interface OrphanAccept {
  /** Resolves once it settled. */
  readonly settled: Promise<void>;
  readonly settle: () => void;
  /** How many loops wait for it. */
  adopters: number;
  /**
   * The connection it brought while loops waited for it, until the first
   * of them takes it (a closed one closes it).
   */
  conn: Deno.Conn | null;
}

/** The accept a closed loop left in flight on each listener. */
const orphanAccepts = new WeakMap<Deno.Listener, OrphanAccept>();

/** Options of `sockConnect`: Deno's, for TCP or a Unix socket. */
type SockConnectOptions = Deno.ConnectOptions | Deno.UnixConnectOptions;

/**
 * Names what was passed for bytes; for another view of bytes (asyncio
 * takes any buffer), how to pass them.
 */
function describeBytes(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return "a string";
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    return `${formatReceived(value)}; pass its bytes as new Uint8Array(buffer)`;
  }
  if (ArrayBuffer.isView(value)) {
    return `${
      formatReceived(value)
    }; pass its bytes as new Uint8Array(view.buffer, view.byteOffset, view.byteLength)`;
  }
  return typeof value;
}

/**
 * Refuses bytes whose `ArrayBuffer` was detached (transferred): they look
 * empty, so they would be taken for nothing to send, or for a read at end
 * of stream.
 */
function checkAttached(what: string, name: string, bytes: Uint8Array): void {
  if ((bytes.buffer as ArrayBuffer).detached === true) {
    throw new TypeError(
      `Cannot call ${what}(): ${name}'s ArrayBuffer is detached (it was transferred); pass bytes still held`,
    );
  }
}

function isConn(value: unknown): value is Deno.Conn {
  return typeof value === "object" && value !== null &&
    typeof (value as Deno.Conn).read === "function" &&
    typeof (value as Deno.Conn).write === "function";
}

function isListener(value: unknown): value is Deno.Listener {
  return typeof value === "object" && value !== null &&
    typeof (value as Deno.Listener).accept === "function";
}

function checkConn(what: string, conn: unknown): Deno.Conn {
  if (!isConn(conn)) {
    throw new TypeError(
      `Cannot call ${what}(): conn must be a Deno.Conn, received ${
        isListener(conn)
          ? "a Deno.Listener (sockAccept(listener) gives a Deno.Conn)"
          : conn === null
          ? "null"
          : typeof conn
      }`,
    );
  }
  return conn;
}

/**
 * The `sock*` calls of one loop, with the state of each connection and
 * listener they were used on (kept in weak maps: it goes when the
 * connection does).
 */
export class DenoSockets {
  readonly #loop: SchedulingLoop;
  readonly #proactor: Proactor<Deno.Conn, Deno.Listener>;
  readonly #reads = new WeakMap<Deno.Conn, ReadState>();
  readonly #writes = new WeakMap<Deno.Conn, WriteState>();
  readonly #accepts = new WeakMap<Deno.Listener, AcceptState>();
  /** Connects in flight, so `cancelWaiting()` can cancel them. */
  readonly #connecting = new Set<
    { future: Future<Deno.Conn>; abort: AbortController }
  >();
  /** Listeners holding a kept connection, so `close()` can release it. */
  readonly #keeping = new Set<AcceptState>();
  /**
   * Reads in flight (the loop's own, or a closed loop's it waits for), so
   * that `cancelWaiting()` finds their callers and `close()` lets them go.
   */
  readonly #reading = new Map<Deno.Conn, ReadState>();
  /**
   * Writes in flight, so that `cancelWaiting()` finds their callers and
   * `close()` lets them go.
   */
  readonly #writing = new Set<WriteState>();
  #closed = false;
  /**
   * Listeners with an accept in flight, so that `cancelWaiting()` finds
   * their callers and `close()` lets them go.
   */
  readonly #accepting = new Set<Deno.Listener>();

  /**
   * Makes the `sock*` calls of one loop.
   *
   * @param loop The loop.
   * @param proactor Its proactor.
   */
  constructor(
    loop: SchedulingLoop,
    proactor: Proactor<Deno.Conn, Deno.Listener>,
  ) {
    this.#loop = loop;
    this.#proactor = proactor;
  }

  /**
   * Reads up to `n` bytes; an empty array at EOF. For `n` = 0, an empty
   * array at once, as `socket.recv(0)` gives: nothing is read.
   *
   * @param conn The connection.
   * @param n The most bytes to read.
   * @returns A future of the bytes read.
   */
  recv(conn: Deno.Conn, n: number): Future<Uint8Array> {
    checkConn("sockRecv", conn);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(
        `Cannot call sockRecv(): n must be a non-negative integer, received ${
          typeof n === "number" ? n : typeof n
        }`,
      );
    }
    if (n === 0) {
      const future = this.#loop.createFuture<Uint8Array>();
      future.setResult(new Uint8Array(0));
      return future;
    }
    const future = new SockFuture<Uint8Array>({ loop: this.#loop });
    future.onDropped((data) => this.#giveBack(conn, data, future.served));
    this.#read(conn, { future, n, into: null });
    return future;
  }

  /**
   * Reads into `buf`; the count, 0 at EOF. For an empty `buf`, 0 at once,
   * as `socket.recv_into()` gives: nothing is read.
   *
   * @param conn The connection.
   * @param buf Where the bytes land.
   * @returns A future of the count.
   */
  recvInto(conn: Deno.Conn, buf: Uint8Array): Future<number> {
    checkConn("sockRecvInto", conn);
    if (!(buf instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot call sockRecvInto(): buf must be a Uint8Array, received ${
          describeBytes(buf)
        }`,
      );
    }
    checkAttached("sockRecvInto", "buf", buf);
    if (buf.length === 0) {
      const future = this.#loop.createFuture<number>();
      future.setResult(0);
      return future;
    }
    const future = new SockFuture<number>({ loop: this.#loop });
    future.onDropped((count) =>
      this.#giveBack(conn, buf.slice(0, count), future.served)
    );
    this.#read(conn, { future, n: buf.length, into: buf });
    return future;
  }

  /**
   * Writes all of `data`, after the writes asked for before it.
   *
   * @param conn The connection.
   * @param data The bytes; leave them unchanged until the future is done.
   * @returns A future done once everything is written.
   */
  sendall(conn: Deno.Conn, data: Uint8Array): Future<void> {
    checkConn("sockSendall", conn);
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot call sockSendall(): data must be a Uint8Array, received ${
          describeBytes(data)
        }`,
      );
    }
    checkAttached("sockSendall", "data", data);
    const future = this.#loop.createFuture<void>();
    if (data.length === 0) {
      future.setResult(undefined);
      return future;
    }
    let state = this.#writes.get(conn);
    if (state === undefined) {
      const made: WriteState = {
        port: this.#proactor.bind<number>({
          done: (count) => this.#written(conn, made, count),
          failed: (error) =>
            this.#writeFailed(
              conn,
              made,
              onClosed(error, "Cannot write to the connection"),
            ),
        }),
        waiters: [],
        writing: false,
        unrefd: false,
        live: 0,
      };
      this.#writes.set(conn, state = made);
    }
    state.waiters.push({ future, data, length: data.length, offset: 0 });
    const written = state;
    future.addDoneCallback(() => {
      if (--written.live === 0) this.#refWrite(written);
    });
    // Waiting behind a write let go of the process: it holds it again.
    state.live++;
    if (state.unrefd) this.#refWrite(state);
    this.#pumpWrite(conn, state);
    return future;
  }

  /**
   * Connects, as `Deno.connect` does.
   *
   * @param options Deno's connect options (TCP, or Unix with `path`).
   * @returns A future of the connection.
   */
  connect(options: SockConnectOptions): Future<Deno.Conn> {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `Cannot call sockConnect(): options must be Deno.connect's options, received ${
          options === null ? "null" : typeof options
        }`,
      );
    }
    const unix = options.transport === "unix";
    if (unix) {
      const path: unknown = (options as Deno.UnixConnectOptions).path;
      if (typeof path !== "string" || path === "") {
        throw new TypeError(
          `Cannot call sockConnect(): path must be a non-empty string, received ${
            JSON.stringify(path) ?? typeof path
          }`,
        );
      }
    } else {
      const tcp = options as Deno.ConnectOptions;
      if (tcp.transport !== undefined && tcp.transport !== "tcp") {
        throw new RangeError(
          `Cannot call sockConnect(): transport must be "tcp" or "unix", received ${
            JSON.stringify(tcp.transport)
          }`,
        );
      }
      if (tcp.hostname !== undefined && typeof tcp.hostname !== "string") {
        throw new TypeError(
          `Cannot call sockConnect(): hostname must be a string, received ${typeof tcp
            .hostname}`,
        );
      }
      if (tcp.hostname === "") {
        throw new RangeError(
          `Cannot call sockConnect(): hostname must not be empty, received ""; leave it out for Deno.connect's default, 127.0.0.1`,
        );
      }
      checkPort(tcp.port, "call sockConnect()");
    }
    const future = this.#loop.createFuture<Deno.Conn>();
    const abort = new AbortController();
    future.addDoneCallback(() => {
      if (future.cancelled()) abort.abort(future);
    });
    let operation: Promise<Deno.Conn>;
    try {
      operation = unix
        ? Deno.connect(options as Deno.UnixConnectOptions)
        : Deno.connect({
          ...(options as Deno.ConnectOptions),
          signal: abort.signal,
        });
    } catch (error) {
      // A permission refused synchronously, say: report it as a failure.
      operation = Promise.reject(error);
    }
    const proactor = this.#proactor;
    const connecting = { future, abort };
    this.#connecting.add(connecting);
    proactor.watch(
      operation,
      proactor.bind<Deno.Conn>({
        done: (conn) => {
          this.#connecting.delete(connecting);
          // Nobody waits for it any more.
          if (future.done()) proactor.close(conn);
          else future.setResult(conn);
        },
        failed: (error) => {
          this.#connecting.delete(connecting);
          if (future.done()) return;
          // Deno's error, of its class, with the address in its message
          // (asyncio's "Connect call failed (address)"); a name Deno could
          // not resolve as getaddrinfo() reports it.
          const { hostname = "127.0.0.1", port } =
            options as Deno.ConnectOptions;
          const path = (options as Deno.UnixConnectOptions).path;
          future.setException(withAddress(
            error,
            `Cannot connect to ${
              unix ? `unix:${path}` : describeAddress({ hostname, port })
            }`,
          ));
        },
        orphaned: (conn) => {
          this.#connecting.delete(connecting);
          if (conn !== undefined) proactor.close(conn);
        },
      }),
    );
    return future;
  }

  /**
   * Accepts one connection.
   *
   * @param listener The listener.
   * @returns A future of the connection.
   */
  accept(listener: Deno.Listener): Future<Deno.Conn> {
    if (!isListener(listener)) {
      throw new TypeError(
        `Cannot call sockAccept(): listener must be a Deno.Listener, received ${
          isConn(listener)
            ? "a Deno.Conn"
            : listener === null
            ? "null"
            : typeof listener
        }`,
      );
    }
    const future = this.#loop.createFuture<Deno.Conn>();
    let state = this.#accepts.get(listener);
    if (state === undefined) {
      const made: AcceptState = {
        port: this.#proactor.bind<Deno.Conn>({
          done: (conn) => this.#accepted(listener, made, conn),
          failed: (error) => this.#acceptFailed(listener, made, error),
          orphaned: (conn) => {
            made.accepting = false;
            this.#accepting.delete(listener);
            const orphan = made.orphan;
            if (orphan !== null) {
              made.orphan = null;
              if (orphanAccepts.get(listener) === orphan) {
                orphanAccepts.delete(listener);
              }
              if (conn !== undefined && orphan.adopters > 0) {
                orphan.conn = conn;
                conn = undefined;
              }
              orphan.settle();
            }
            if (conn !== undefined) this.#proactor.close(conn);
            if (made.unrefd) {
              // As the application gave it, now that it holds no accept
              // of the loop's.
              made.unrefd = false;
              try {
                listener.ref();
              } catch {
                // Closed by its owner.
              }
            }
          },
        }),
        waiters: [],
        accepting: false,
        unrefd: false,
        kept: null,
        orphan: null,
        adopting: null,
        adopted: this.#proactor.bind<void>({
          done: () => this.#adoptedAccept(listener, made),
          failed: () => this.#adoptedAccept(listener, made),
          orphaned: () => {
            // This loop closed after that accept settled: nobody here
            // takes its connection.
            const conn = takeOrphanConn(made);
            if (conn !== undefined) this.#proactor.close(conn);
          },
        }),
      };
      this.#accepts.set(listener, state = made);
    }
    if (state.kept !== null) {
      future.setResult(state.kept);
      state.kept = null;
      this.#keeping.delete(state);
      return future;
    }
    state.waiters.push(future);
    this.#pumpAccept(listener, state);
    return future;
  }

  /**
   * Cancels the futures of the calls still waiting, as asyncio's proactor
   * loop does when it closes; called just before the loop closes, while
   * their callbacks can still be scheduled. TCP connects are aborted.
   */
  cancelWaiting(): void {
    const message = "The event loop was closed";
    for (const state of this.#reading.values()) {
      for (const waiter of state.waiters.splice(0)) {
        waiter.future.cancel(message);
      }
    }
    for (const state of this.#writing) {
      for (const waiter of state.waiters) waiter.future.cancel(message);
    }
    for (const listener of this.#accepting) {
      for (const waiter of this.#accepts.get(listener)!.waiters.splice(0)) {
        waiter.cancel(message);
      }
    }
    for (const { future, abort } of this.#connecting) {
      future.cancel(message);
      abort.abort(future);
    }
  }

  /**
   * Closes the connections accepted for callers that gave up, and lets
   * the reads, accepts and writes in flight on the caller's sockets (which
   * stay open) no longer keep the process alive (a write only where Deno's
   * ops allow, see `setWriteRef()`): they cannot be cancelled
   * without closing the sockets, which are not the loop's. What a read
   * still brings is kept for the next `sockRecv` or `sockRecvInto` on its
   * connection, from any loop; the connection's own setting (`ref()`) is
   * left as it was where Deno's ops allow, and given back once that read
   * settles otherwise, as the listener's is once its accept settles. The
   * connection that accept brings goes to the next `sockAccept` on the
   * listener, from any loop, if one waits for it then.
   */
  close(): void {
    for (const state of this.#keeping) {
      if (state.kept !== null) this.#proactor.close(state.kept);
      state.kept = null;
    }
    this.#keeping.clear();
    for (const [conn, state] of this.#reading) {
      if (state.adopting) {
        // Another closed loop's read: let go of it again, for the next.
        state.adopting = false;
        state.shared.orphan?.ref(false);
        continue;
      }
      let settle!: () => void;
      const settled = new Promise<void>((resolve) => settle = resolve);
      state.settle = settle;
      state.shared.orphan = {
        settled,
        ref: (on) => this.#setReadRef(conn, state, on),
      };
      this.#setReadRef(conn, state, false);
    }
    this.#reading.clear();
    for (const listener of this.#accepting) {
      const state = this.#accepts.get(listener)!;
      const orphan = state.adopting;
      if (orphan !== null) {
        // Another closed loop's accept: let go of it again, for the next;
        // settled already, its connection is this loop's to close.
        if (orphanAccepts.get(listener) !== orphan) continue;
        state.adopting = null;
        orphan.adopters--;
        try {
          listener.unref();
        } catch {
          // Closed by its owner.
        }
        continue;
      }
      try {
        listener.unref();
        state.unrefd = true;
      } catch {
        // Closed by its owner: nothing is in flight any more.
        continue;
      }
      let settle!: () => void;
      const settled = new Promise<void>((resolve) => settle = resolve);
      orphanAccepts.set(
        listener,
        state.orphan = { settled, settle, adopters: 0, conn: null },
      );
    }
    this.#accepting.clear();
    this.#closed = true;
    for (const state of this.#writing) this.#refWrite(state);
    this.#writing.clear();
  }

  // ---- Reads ----

  #read(conn: Deno.Conn, waiter: ReadWaiter): void {
    let state = this.#reads.get(conn);
    if (state === undefined) {
      let shared = connReads.get(conn);
      if (shared === undefined) {
        connReads.set(conn, shared = { kept: [], orphan: null });
      }
      const made: ReadState = {
        port: this.#proactor.bind<number | null>({
          done: (count) => this.#readDone(conn, made, count),
          failed: (error) =>
            this.#readDone(
              conn,
              made,
              undefined,
              onClosed(error, "Cannot read from the connection"),
            ),
          orphaned: (count, error) =>
            this.#readOrphaned(conn, made, count, error),
        }),
        waiters: [],
        inFlight: null,
        shared,
        kept: shared.kept,
        adopting: false,
        adopted: this.#proactor.bind<void>({
          done: () => this.#adoptDone(conn, made),
          failed: () => this.#adoptDone(conn, made),
        }),
        settle: null,
        scratch: null,
        served: 0,
      };
      this.#reads.set(conn, state = made);
    }
    state.waiters.push(waiter);
    this.#pumpRead(conn, state);
  }

  /** Serves waiting readers from what was kept, then starts a read. */
  #pumpRead(conn: Deno.Conn, state: ReadState): void {
    const waiters = state.waiters;
    while (waiters.length > 0) {
      const waiter = waiters[0];
      if (waiter.future.done()) {
        waiters.shift();
        continue;
      }
      if (state.kept.length === 0) break;
      const kept = state.kept[0];
      waiters.shift();
      if (kept.kind === "error") {
        state.kept.shift();
        waiter.future.served = ++state.served;
        waiter.future.setException(kept.error);
      } else if (kept.kind === "eof") {
        // EOF stays: every later read sees it too, as a socket's would.
        waiter.future.served = ++state.served;
        settleRead(waiter, null, 0);
      } else {
        const data = kept.data;
        const count = Math.min(waiter.n, data.length);
        if (waiter.into !== null && waiter.into.length < count) {
          // Nothing taken: the bytes stay for the next read.
          waiter.future.setException(shrunk(waiter.into, count));
          continue;
        }
        if (waiter.into !== null) waiter.into.set(data.subarray(0, count));
        waiter.future.served = ++state.served;
        settleRead(waiter, data, count);
        if (count === data.length) state.kept.shift();
        else state.kept[0] = { kind: "data", data: data.subarray(count) };
      }
    }
    if (state.inFlight !== null || state.adopting || waiters.length === 0) {
      return;
    }
    const orphan = state.shared.orphan;
    if (orphan !== null) {
      // A closed loop's read is in flight on conn (Deno cannot withdraw
      // it): it takes the next bytes, so wait for them, holding the
      // process as a read of this loop's would.
      state.adopting = true;
      this.#reading.set(conn, state);
      orphan.ref(true);
      this.#proactor.watch(orphan.settled, state.adopted);
      return;
    }
    const waiter = waiters[0];
    const size = Math.min(waiter.n, MAX_READ);
    let buffer: Uint8Array;
    if (waiter.into === null) buffer = new Uint8Array(size);
    else {
      // Never the caller's buffer: Deno cannot cancel a read, so one its
      // caller gave up on would still write there later (asyncio's
      // sock_recv_into() writes nothing once cancelled).
      if (state.scratch === null || state.scratch.length < size) {
        state.scratch = new Uint8Array(size);
      }
      buffer = state.scratch.subarray(0, size);
    }
    state.inFlight = { waiter, buffer };
    this.#reading.set(conn, state);
    this.#proactor.startRead(conn, buffer, state.port);
  }

  #readDone(
    conn: Deno.Conn,
    state: ReadState,
    count: number | null | undefined,
    error?: unknown,
  ): void {
    const { waiter, buffer } = state.inFlight!;
    state.inFlight = null;
    this.#reading.delete(conn);
    // No more bytes come: the scratch buffer is not needed again.
    if (typeof count !== "number") state.scratch = null;
    if (
      waiter.into !== null && typeof count === "number" &&
      waiter.into.length < count && !waiter.future.done()
    ) {
      // The caller's buffer can no longer take them: it hears why, and
      // the bytes are kept below.
      waiter.future.setException(shrunk(waiter.into, count));
    }
    if (!waiter.future.done() && state.kept.length === 0) {
      if (state.waiters[0] === waiter) state.waiters.shift();
      waiter.future.served = ++state.served;
      if (count === undefined) waiter.future.setException(error);
      else {
        if (count !== null && waiter.into !== null) {
          waiter.into.set(buffer.subarray(0, count));
        }
        settleRead(waiter, count === null ? null : buffer, count ?? 0);
      }
    } else if (count === undefined) {
      state.kept.push({ kind: "error", error });
    } else if (count === null) {
      state.kept.push({ kind: "eof" });
    } else {
      // The caller gave up, or bytes given back come first: keep a copy
      // (the buffer is reused, or the caller's own again) for the next
      // read, as asyncio's cancelled sock_recv_into() leaves the bytes in
      // the socket.
      state.kept.push({ kind: "data", data: buffer.slice(0, count) });
    }
    this.#pumpRead(conn, state);
  }

  /**
   * Keeps what a read brought after the loop closed (or brought before,
   * unseen by the loop) for the next reader on conn, from any loop, and
   * gives back the connection's own setting if `close()` changed it.
   * Runs outside the loop.
   */
  #readOrphaned(
    conn: Deno.Conn,
    state: ReadState,
    count: number | null | undefined,
    error: unknown,
  ): void {
    const inFlight = state.inFlight;
    if (inFlight === null) return;
    state.inFlight = null;
    this.#reading.delete(conn);
    if (count === undefined) {
      state.kept.push({
        kind: "error",
        error: onClosed(error, "Cannot read from the connection"),
      });
    } else if (count === null) state.kept.push({ kind: "eof" });
    else {
      state.kept.push({
        kind: "data",
        data: inFlight.buffer.slice(0, count),
      });
    }
    const settle = state.settle;
    if (settle === null) return;
    state.settle = null;
    state.shared.orphan = null;
    this.#setReadRef(conn, state, true);
    settle();
  }

  /** A closed loop's read settled: serve the waiting readers. */
  #adoptDone(conn: Deno.Conn, state: ReadState): void {
    if (!state.adopting) return;
    state.adopting = false;
    this.#reading.delete(conn);
    this.#pumpRead(conn, state);
  }

  #setReadRef(conn: Deno.Conn, state: ReadState, ref: boolean): void {
    try {
      this.#proactor.setReadRef(conn, state.port, ref);
    } catch {
      // Closed by its owner: nothing is in flight any more.
    }
  }

  /**
   * Puts back bytes that a read's every taker dropped (tasks cancelled
   * after it completed, before they resumed), ahead of everything else,
   * and serves a reader waiting meanwhile with them; unless a later read
   * took bytes meanwhile: they would come out of order, so they are lost
   * (as asyncio's are), as `StreamReader` does.
   */
  #giveBack(conn: Deno.Conn, data: Uint8Array, served: number): void {
    const state = this.#reads.get(conn);
    if (state === undefined || data.length === 0) return;
    if (state.served !== served) return;
    state.kept.unshift({ kind: "data", data });
    this.#pumpRead(conn, state);
  }

  // ---- Writes ----

  /**
   * Lets the write in flight hold the process only while a caller still
   * waits for it or a write behind it (and the loop is open): Deno cannot
   * stop a write, so one whose callers all gave up would otherwise keep
   * the process alive until the peer reads or the connection is closed.
   */
  #refWrite(state: WriteState): void {
    if (!state.writing) return;
    const wanted = !this.#closed && state.live > 0;
    if (wanted === !state.unrefd) return;
    if (this.#proactor.setWriteRef(state.port, wanted)) {
      state.unrefd = !wanted;
    }
  }

  #pumpWrite(conn: Deno.Conn, state: WriteState): void {
    if (state.writing) return;
    const waiters = state.waiters;
    while (waiters.length > 0 && waiters[0].future.done()) waiters.shift();
    if (waiters.length === 0) return;
    const head = waiters[0];
    state.writing = true;
    state.unrefd = false;
    this.#writing.add(state);
    this.#proactor.startWrite(
      conn,
      head.offset === 0 ? head.data : head.data.subarray(head.offset),
      state.port,
    );
  }

  #written(conn: Deno.Conn, state: WriteState, count: number): void {
    state.writing = false;
    this.#writing.delete(state);
    const head = state.waiters[0];
    head.offset += count;
    if (head.offset >= head.length) {
      state.waiters.shift();
      if (!head.future.done()) head.future.setResult(undefined);
    } else if (head.data.length < head.length) {
      // Detached or shrunk: the rest is gone. Not all sent, so not done.
      state.waiters.shift();
      if (!head.future.done()) {
        head.future.setException(
          new TypeError(
            `Cannot call sockSendall(): data was detached or shrunk during the call (it has ${head.data.length} bytes now, of ${head.length}); ${head.offset} were sent`,
          ),
        );
      }
    } else if (head.future.done()) {
      // Cancelled part way: the rest is not sent.
      state.waiters.shift();
    }
    this.#pumpWrite(conn, state);
  }

  #writeFailed(conn: Deno.Conn, state: WriteState, error: unknown): void {
    state.writing = false;
    this.#writing.delete(state);
    const head = state.waiters.shift()!;
    if (!head.future.done()) head.future.setException(error);
    this.#pumpWrite(conn, state);
  }

  // ---- Accepts ----

  #accepted(listener: Deno.Listener, state: AcceptState, conn: Deno.Conn) {
    state.accepting = false;
    this.#accepting.delete(listener);
    const waiters = state.waiters;
    while (waiters.length > 0 && waiters[0].done()) waiters.shift();
    const waiter = waiters.shift();
    if (waiter !== undefined) waiter.setResult(conn);
    else {
      state.kept = conn;
      this.#keeping.add(state);
    }
    this.#pumpAccept(listener, state);
  }

  /** A closed loop's accept settled: serve the waiting callers. */
  #adoptedAccept(listener: Deno.Listener, state: AcceptState): void {
    const conn = takeOrphanConn(state);
    this.#accepting.delete(listener);
    if (conn !== undefined) this.#accepted(listener, state, conn);
    else this.#pumpAccept(listener, state);
  }

  #acceptFailed(listener: Deno.Listener, state: AcceptState, error: unknown) {
    state.accepting = false;
    this.#accepting.delete(listener);
    // Every caller waiting now hears of it (the listener was closed, most
    // likely); a later call tries again.
    for (const waiter of state.waiters.splice(0)) {
      if (!waiter.done()) waiter.setException(error);
    }
  }

  #pumpAccept(listener: Deno.Listener, state: AcceptState): void {
    const waiters = state.waiters;
    while (waiters.length > 0 && waiters[0].done()) waiters.shift();
    if (waiters.length === 0 || state.accepting || state.adopting !== null) {
      return;
    }
    const orphan = orphanAccepts.get(listener);
    if (orphan !== undefined) {
      // A closed loop's accept is in flight on listener (Deno cannot
      // withdraw it, and refuses a second): wait for the connection it
      // brings, holding the process as an accept of this loop's would.
      state.adopting = orphan;
      orphan.adopters++;
      this.#accepting.add(listener);
      try {
        listener.ref();
      } catch {
        // Closed by its owner: that accept ends at once.
      }
      this.#proactor.watch(orphan.settled, state.adopted);
      return;
    }
    state.accepting = true;
    this.#accepting.add(listener);
    this.#proactor.startAccept(listener, state.port);
  }
}

/**
 * Takes the connection that the closed loop's accept `state` waited for
 * brought, unless another loop took it first; ends the wait.
 */
function takeOrphanConn(state: AcceptState): Deno.Conn | undefined {
  const orphan = state.adopting;
  state.adopting = null;
  const conn = orphan?.conn ?? undefined;
  if (orphan) orphan.conn = null;
  return conn;
}

/**
 * Deno's errors for a connection closed by its owner, saying so, of the
 * same class: `BadResource` when it was closed before the call (Deno says
 * only "Bad resource ID"), `Interrupted` when closed during it ("operation
 * canceled"); any other error as it is.
 */
function onClosed(error: unknown, prefix: string): unknown {
  if (error instanceof Deno.errors.BadResource) {
    return withAddress(error, `${prefix}: it is closed`);
  }
  if (error instanceof Deno.errors.Interrupted) {
    return withAddress(error, `${prefix}: it was closed during the call`);
  }
  return error;
}

/** The error of a `sockRecvInto` whose `buf` can no longer take `count`. */
function shrunk(buf: Uint8Array, count: number): TypeError {
  return new TypeError(
    `Cannot call sockRecvInto(): buf was detached or shrunk during the call (it has ${buf.length} bytes now, ${count} came); the bytes go to the next read`,
  );
}

/** Gives a reader its result: the bytes (or the count), EOF as empty/0. */
function settleRead(
  waiter: ReadWaiter,
  data: Uint8Array | null,
  count: number,
): void {
  if (waiter.into !== null) {
    waiter.future.setResult(data === null ? 0 : count);
  } else if (data === null) {
    waiter.future.setResult(new Uint8Array(0));
  } else {
    waiter.future.setResult(
      count === data.length ? data : data.slice(0, count),
    );
  }
}
