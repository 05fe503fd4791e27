/**
 * `AsyncEngine`: the completion facade. Every call returns at once; a
 * callback object hears of success, failure or timeout, and gets a cancel
 * function.
 *
 * @module
 */

import {
  CancelledError,
  formatReceived,
  IncompleteReadError,
  InvalidStateError,
  LimitOverrunError,
  TimeoutError,
} from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type {
  AddrInfo,
  CreateConnectionOptions,
  CreateServerOptions,
  EventLoop,
  Executor,
  GetaddrinfoOptions,
  Server,
} from "../loop/event_loop.ts";
import type { TimerHandle } from "../loop/handle.ts";
import { newEventLoop } from "../loop/policy.ts";
import { openConnection } from "../streams/open_connection.ts";
import { startServer } from "../streams/start_server.ts";
import type { StreamReader } from "../streams/stream_reader.ts";
import type { StreamWriter } from "../streams/stream_writer.ts";
import { Queue, QueueShutDown } from "../tasks/queue.ts";
import { checkOptions, ReportPacer } from "../futures/_runtime.ts";
import type { Coroutine, Task } from "../tasks/task.ts";
import { timeout as timeoutScope } from "../tasks/timeout.ts";
import { concatBytes } from "../transports/write_buffer.ts";
import { compileGlob } from "./_glob.ts";
import { TextMatcher } from "./_text_matcher.ts";
import { Connection } from "./connection.ts";
import { Listener } from "./listener.ts";
import { UnexpectedLineError } from "./unexpected_line_error.ts";

/** How many accepted connections a listener keeps waiting, by default. */
const DEFAULT_BACKLOG = 100;
/** The default `maxMatchLength`, in characters. */
const DEFAULT_MAX_MATCH_LENGTH = 1024;
const LF = 10;
/**
 * What one callback (a method's `success`, say) throws is reported at most
 * once per this many seconds; the next report counts those left out.
 */
const CALLBACK_REPORT_INTERVAL = 10;
const NEWLINE = new Uint8Array([LF]);
const encoder = new TextEncoder();

/**
 * The callback object of one `AsyncEngine` call, as in the async-facade
 * proposal: fill in `success`, `failure` and, if you like, `timeout`; the
 * engine fills in `cancel`.
 *
 * The contract, for every call:
 *
 * - Exactly one of `success(value)` and `failure(error)` is called, once —
 *   unless the operation is cancelled with `cancel()` (or by the engine's
 *   `close()`), in which case neither is: cancelling means "I no longer
 *   care". A cancellation from anywhere else (someone cancelling the
 *   engine's task) is reported as `failure(CancelledError)`.
 * - They are always called from the loop, never from inside the call that
 *   started the operation.
 * - When `timeout` seconds pass first, the operation is cancelled and
 *   `failure` gets a `TimeoutError`.
 * - What a callback throws goes to the loop's exception handler: the
 *   first error of each callback (`success` of `accept()`, say) whole, then
 *   at most one every 10 s, which counts those left out (a callback that
 *   rethrows each peer's error must not log once per connection).
 *
 * Use one callback object per call: the engine overwrites `cancel`.
 *
 * PEP 3156 (as in the async-facade proposal): `class Callback` with the
 * slots `success`, `failure`, `timeout` and `cancel`.
 *
 * @typeParam T What `success` receives.
 *
 * @example A callback object with a timeout
 * ```ts
 * import { AsyncEngine, type Callback } from "@tulip/tulip/facade";
 * import type { Executor } from "@tulip/tulip/loop";
 * import { assertEquals } from "@std/assert";
 *
 * // An executor that runs on the loop's thread, for a short example.
 * const inline: Executor = {
 *   submit: (fn, ...args) => Promise.resolve().then(() => fn(...args)),
 *   shutdown() {},
 * };
 * const engine = new AsyncEngine();
 * engine.getLoop().setDefaultExecutor(inline);
 * const seen: string[] = [];
 * const cb: Callback<number> = {
 *   success: (n) => seen.push(`got ${n}`),
 *   failure: (e) => seen.push(`failed: ${e}`),
 *   timeout: 5,
 * };
 * engine.submitWork((a: number, b: number) => a + b, [20, 22], cb);
 * assertEquals(typeof cb.cancel, "function");
 * assertEquals(seen, []); // never called from inside the call
 * await engine.run();
 * assertEquals(seen, ["got 42"]);
 * await engine.close();
 * ```
 */
export interface Callback<T> {
  /**
   * Called once with the result, from the loop.
   *
   * @param value The operation's result.
   */
  success(value: T): void;
  /**
   * Called once with the error, from the loop: a `TimeoutError` when the
   * timeout passed first.
   *
   * @param error Why the operation failed.
   */
  failure(error: unknown): void;
  /**
   * The most time the operation may take, in seconds; `null`, `undefined`
   * or `Infinity` for no limit. In a chained call, each step's callback
   * limits that step, counted from when it starts.
   *
   * @default {undefined}
   */
  timeout?: number | null;
  /**
   * Filled in by the engine when the call returns: cancels the operation
   * if it is still running. Returns `true` when it did — then neither
   * `success` nor `failure` will be called — and `false` when it was too
   * late (the operation already finished, so its callback was or is about
   * to be called) or it was already cancelled.
   */
  cancel?: () => boolean;
}

/**
 * The two callback objects of a chained call: the first hears of the
 * first step, the second of the second step.
 *
 * When the first step fails (or times out), the first callback's
 * `failure` gets the error, the second step is skipped, and the second
 * callback's `failure` gets the same error — so every callback hears
 * exactly once. Either callback's `cancel()` cancels what is left of the
 * chain, and neither callback hears of the steps it stopped; a first step
 * already finished is still reported, and from then on the first
 * callback's `cancel()` returns `false`. Each callback's `timeout` limits
 * its own step.
 *
 * A chained call also takes a single callback object (`ChainCallback`),
 * as the proposal's `accept_then_expect_multiline_regex(sock, regex, cb)`
 * does ("all methods always take at least one callback").
 *
 * @typeParam A What the first step gives.
 * @typeParam B What the second step gives.
 */
export type ChainCallbacks<A, B> = readonly [Callback<A>, Callback<B>];

/**
 * The one callback object of a chained call, in place of two: it hears
 * once, at the end of the chain — `success([a, b])` with both steps'
 * values (so the `Connection` a chain made stays reachable), or
 * `failure(error)` with the first error. Its `timeout` limits the whole
 * chain and its `cancel()` cancels it. A connection the chain made before
 * failing, timing out or being cancelled is closed: nobody else has it.
 *
 * PEP 3156 (as in the async-facade proposal): a chained method given one
 * `cb`, as `accept_then_expect_multiline_regex(sock, regex, cb)`.
 *
 * @typeParam A What the first step gives.
 * @typeParam B What the second step gives.
 *
 * @example Connecting and sending a line, told once
 * ```ts
 * import { AsyncEngine, type ChainCallback, type Connection } from "@tulip/tulip/facade";
 * import { assertEquals } from "@std/assert";
 *
 * const engine = new AsyncEngine();
 * const seen: string[] = [];
 * engine.listen("127.0.0.1", 0, {
 *   failure: (e) => seen.push(`failed: ${e}`),
 *   success(listener) {
 *     const { port } = listener.addresses()[0] as Deno.NetAddr;
 *     engine.acceptThenExpectLine(listener, "HELLO", {
 *       success: ([conn, line]) => { seen.push(`got ${line}`); conn.close(); listener.close(); },
 *       failure: (e) => seen.push(`failed: ${e}`),
 *     });
 *     const cb: ChainCallback<Connection, number> = {
 *       success: ([conn, n]) => { seen.push(`sent ${n}`); conn.close(); },
 *       failure: (e) => seen.push(`failed: ${e}`),
 *       timeout: 10, // for the connect and the write together
 *     };
 *     engine.connectThenWriteLine("127.0.0.1", port, "HELLO", cb);
 *   },
 * });
 * await engine.run();
 * assertEquals(seen.sort(), ["got HELLO", "sent 6"]);
 * await engine.close();
 * ```
 */
export type ChainCallback<A, B> = Callback<[A, B]>;

/** Options for `AsyncEngine.connect()` and the calls that connect. */
export interface ConnectOptions extends CreateConnectionOptions {
  /**
   * The connection's read limit in bytes: the longest line, `readUntil()`
   * or `readUntilRegex()` result.
   *
   * @default {65536}
   */
  limit?: number;
}

/** Options for `AsyncEngine.getaddrinfoThenConnect()`. */
export interface GetaddrinfoThenConnectOptions
  extends ConnectOptions, GetaddrinfoOptions {}

/** Options for `AsyncEngine.listen()`. */
export interface ListenOptions
  extends Omit<CreateServerOptions, "startServing"> {
  /**
   * The most accepted connections kept waiting for `accept()`; one more
   * is closed at once. Also passed to the system as the listen backlog.
   *
   * @default {100}
   */
  backlog?: number;
  /**
   * Each connection's read limit in bytes.
   *
   * @default {65536}
   */
  limit?: number;
}

/** Options for `AsyncEngine.read()`. */
export interface ReadOptions {
  /**
   * The most bytes to deliver.
   *
   * @default {the connection's read limit (64 KiB unless set)}
   */
  size?: number;
}

/**
 * Options for `AsyncEngine.readUntilRegex()` and
 * `AsyncEngine.acceptThenExpectMultilineRegex()`.
 */
export interface RegexReadOptions {
  /**
   * The longest match looked for, in characters. Each try of the pattern
   * looks for a match starting within the last `maxMatchLength`
   * characters read (with a few more before them for `^`, `\b` and short
   * lookbehinds), so a try costs at most about that much whatever was
   * read before, and the whole read takes time linear in its length. A
   * match is never longer: a longer one is not found (the read goes on,
   * up to the read limit), or is found cut short — `/\w+:/` gives at
   * most that many characters.
   *
   * @default {1024}
   */
  maxMatchLength?: number;
}

/** Options for `AsyncEngine.submitWork()`. */
export interface SubmitWorkOptions {
  /**
   * The executor to run the work in; `null` for the loop's default one
   * (Web Workers: pass a `workerFunction()` reference, or a
   * self-contained function).
   *
   * @default {null}
   */
  executor?: Executor | null;
}

/** What the engine keeps about one operation in flight. */
interface Operation {
  cancel(): boolean;
}

/** Options for `AsyncEngine.close()`. */
export interface AsyncEngineCloseOptions {
  /**
   * How long, in seconds, the connections may take to send what they
   * still buffer; those not gone by then are aborted, so that a peer that
   * stops reading cannot hold `close()`. `Infinity` waits for them
   * without limit.
   *
   * @default {10}
   */
  grace?: number;
}

/** The default grace of `AsyncEngine.close()`, in seconds. */
const DEFAULT_CLOSE_GRACE = 10;

/** A callback slot of an operation: its object and the method's name. */
interface Slot {
  cb: Callback<never>;
  method: string;
}

/** Raised inside a chain when its first step fails. */
class FirstStepFailed {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

/**
 * The completion facade of the async-facade proposal, on top of the loop
 * and the streams: every call returns at once, and a callback object
 * (`Callback`) is told of success, failure or timeout and given a
 * `cancel` function.
 *
 * Each call starts a task on the loop that does the work with the stream
 * API (`openConnection`, `startServer`, `StreamReader`, `StreamWriter`)
 * and `timeout()`; the callback is called when the task ends. Operations
 * make progress while the loop runs: call `run()`, which returns once
 * nothing is pending (or at `stop()`), or `runOnce()` for one iteration,
 * or drive the loop yourself.
 *
 * A call throws only for arguments of the wrong type or range, or when
 * the engine is closed; everything else — a refused connection, the end
 * of the stream, a timeout — reaches `failure`. Connections are
 * `Connection`s and listening servers are `Listener`s; close them with
 * their own `close()`.
 *
 * PEP 3156 (as in the async-facade proposal): `class AsyncEngine`.
 *
 * @example A line exchange over 127.0.0.1, written with callbacks only
 * ```ts
 * import { AsyncEngine, type Callback, type Connection } from "@tulip/tulip/facade";
 * import { assertEquals } from "@std/assert";
 *
 * const engine = new AsyncEngine();
 * const log: string[] = [];
 * const fail = (e: unknown) => log.push(`failed: ${e}`);
 * engine.listen("127.0.0.1", 0, {
 *   failure: fail,
 *   success(listener) {
 *     const { port } = listener.addresses()[0] as Deno.NetAddr;
 *     let server: Connection;
 *     engine.acceptThenExpectLine(listener, "HELLO", [
 *       { success: (c) => (server = c), failure: fail },
 *       {
 *         failure: fail,
 *         success(line) {
 *           log.push(`server got ${line}`);
 *           listener.close();
 *           engine.writeLine(server, "WORLD", { success: () => server.close(), failure: fail });
 *         },
 *       },
 *     ]);
 *     let client: Connection;
 *     engine.connectThenWriteLine("127.0.0.1", port, "HELLO", [
 *       { success: (c) => (client = c), failure: fail },
 *       {
 *         failure: fail,
 *         success() {
 *           engine.expectLine(client, "WORLD", {
 *             success: (line) => { log.push(`client got ${line}`); client.close(); },
 *             failure: fail,
 *           });
 *         },
 *       },
 *     ]);
 *   },
 * });
 * await engine.run(); // returns once nothing is pending
 * assertEquals(log, ["server got HELLO", "client got WORLD"]);
 * await engine.close();
 * ```
 */
export class AsyncEngine implements AsyncDisposable {
  readonly #loop: EventLoop;
  readonly #ownsLoop: boolean;
  readonly #operations = new Map<Task<unknown>, Operation>();
  // Connections this engine made, and the listener each came from.
  readonly #connections = new Map<Connection, Listener | null>();
  readonly #listeners = new Set<Listener>();
  #running = false;
  #closed = false;
  /** The end of the first `close()`, which a later call waits for. */
  #closing: Promise<void> | null = null;
  /** When the connections still closing are aborted (loop time). */
  #abortAt = Infinity;
  #abortTimer: TimerHandle | null = null;
  // Per callback ("the success callback of AsyncEngine.accept()"): the
  // pace of its errors' reports.
  readonly #callbackReports = new Map<string, ReportPacer>();

  /**
   * Makes an engine on `loop`, or on a new loop of its own (which
   * `close()` closes).
   *
   * @param loop The loop to run on; it must do I/O (a `DenoEventLoop`).
   * @throws {TypeError} When `loop` is not an event loop with I/O.
   */
  constructor(loop?: EventLoop) {
    if (loop === undefined) {
      this.#loop = newEventLoop();
      this.#ownsLoop = true;
    } else {
      if (
        typeof loop !== "object" || loop === null ||
        typeof loop.createConnection !== "function" ||
        typeof loop.runForever !== "function"
      ) {
        throw new TypeError(
          `Cannot make an AsyncEngine: loop must be an event loop with I/O, received ${
            loop === null ? "null" : typeof loop
          }`,
        );
      }
      this.#loop = loop;
      this.#ownsLoop = false;
    }
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `AsyncEngine ${this.#describe()}`;
  }

  /** How Deno's `console.log` prints an engine. */
  [Symbol.for("Deno.customInspect")](): string {
    return `AsyncEngine ${this.#describe()}`;
  }

  /**
   * Returns the loop the engine runs on.
   *
   * @returns The loop.
   */
  getLoop(): EventLoop {
    return this.#loop;
  }

  /**
   * Returns how many operations are in flight: started, and neither
   * finished nor cancelled.
   *
   * @returns The number of pending operations.
   */
  pending(): number {
    return this.#operations.size;
  }

  // ---- Connections ----

  /**
   * Connects to `host`:`port` over TCP (TLS with `ssl`).
   *
   * PEP 3156 (as in the async-facade proposal): `connect`, built on
   * `open_connection()`.
   *
   * @param host The host name or address.
   * @param port The port.
   * @param cb Told of the `Connection`, or of the error (such as
   * `Deno.errors.ConnectionRefused`).
   * @param options `ssl`, `serverHostname` and the read `limit`.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `host` is empty, or `port`, `limit` or the
   * timeout is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  connect(
    host: string,
    port: number,
    cb: Callback<Connection>,
    options?: ConnectOptions,
  ): void {
    checkAddress("connect", host, port);
    checkOptions(options, "call connect()", "{ ssl, limit }");
    checkLimit("connect", options?.limit);
    this.#single(
      "connect",
      cb,
      `connect to ${host}:${port}`,
      () => this.#connect(host, port, options),
    );
  }

  /**
   * Listens on `host`:`port` (port 0: the system picks one; see
   * `listener.addresses()`). Incoming connections wait in the listener's
   * queue, at most `backlog` of them, until `accept()` takes them.
   *
   * PEP 3156 (as in the async-facade proposal): the listening socket that
   * `accept` takes; built on `start_server()`.
   *
   * @param host The address to listen on.
   * @param port The port; 0 for any free one.
   * @param cb Told of the `Listener`, or of the error (such as
   * `Deno.errors.AddrInUse`).
   * @param options The `backlog`, the read `limit`, `ssl`, `reusePort`.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `port`, `backlog`, `limit` or the timeout is
   * out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  listen(
    host: string,
    port: number,
    cb: Callback<Listener>,
    options?: ListenOptions,
  ): void {
    checkAddress("listen", host, port);
    checkOptions(options, "call listen()", "{ backlog, limit }");
    checkLimit("listen", options?.limit);
    const backlog = options?.backlog ?? DEFAULT_BACKLOG;
    if (!Number.isSafeInteger(backlog) || backlog < 1) {
      throw new RangeError(
        `Cannot call listen(): backlog must be a whole number >= 1, received ${
          formatReceived(backlog)
        }`,
      );
    }
    this.#single(
      "listen",
      cb,
      `listen on ${host}:${port}`,
      () => this.#listen(host, port, backlog, options),
    );
  }

  /**
   * Takes the next connection from `listener`, waiting for one if none is
   * queued.
   *
   * PEP 3156 (as in the async-facade proposal): `accept(sock, cb)`.
   *
   * @param listener A listener from `listen()`.
   * @param cb Told of the `Connection`; or of an `InvalidStateError` when
   * the listener is (or gets) closed.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When the timeout is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  accept(listener: Listener, cb: Callback<Connection>): void {
    checkListener("accept", listener);
    this.#single(
      "accept",
      cb,
      "accept a connection",
      () => this.#accept(listener),
    );
  }

  // ---- Reading ----

  /**
   * Reads what is available, up to `size` bytes, waiting until there is
   * something; at the end of the stream the result is empty.
   *
   * PEP 3156 (as in the async-facade proposal): `read(sock, cb)`, built on
   * `StreamReader.read()`.
   *
   * @param conn The connection.
   * @param cb Told of the bytes (empty at the end of the stream).
   * @param options The most bytes to deliver.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `size` is not a whole number > 0, or the
   * timeout is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  read(
    conn: Connection,
    cb: Callback<Uint8Array>,
    options?: ReadOptions,
  ): void {
    checkConnection("read", conn);
    checkOptions(options, "call read()", "{ size }");
    const size = options?.size ?? conn.reader.limit;
    if (typeof size !== "number") {
      throw new TypeError(
        `Cannot call read(): size must be a number, received ${typeof size}`,
      );
    }
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new RangeError(
        `Cannot call read(): size must be a whole number > 0, received ${
          formatReceived(size)
        }`,
      );
    }
    this.#single("read", cb, "read", () => wait(conn.reader.read(size)));
  }

  /**
   * Reads until `separator` and delivers the bytes up to and including
   * it.
   *
   * PEP 3156 (as in the async-facade proposal): `read_until(sock, bytes,
   * cb)`, built on `StreamReader.readuntil()`.
   *
   * @param conn The connection.
   * @param separator The separator: bytes, or text sent as UTF-8.
   * @param cb Told of the bytes; or of an `IncompleteReadError` when the
   * stream ends first (its `partial` holds what was read), or a
   * `LimitOverrunError` when the separator is not within the read limit
   * (the data stays buffered).
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `separator` is empty, or the timeout is out
   * of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  readUntil(
    conn: Connection,
    separator: Uint8Array | string,
    cb: Callback<Uint8Array>,
  ): void {
    checkConnection("readUntil", conn);
    const sep = toBytes(separator, "readUntil", "separator");
    if (sep.length === 0) {
      throw new RangeError(
        "Cannot call readUntil(): the separator must be at least one byte, received an empty one",
      );
    }
    this.#single(
      "readUntil",
      cb,
      "read until the separator",
      () => wait(conn.reader.readuntil(sep)),
    );
  }

  /**
   * Reads until the text read so far, decoded as UTF-8, matches `pattern`,
   * and delivers the match. The match's `input` is all the text this call
   * read: it ends where the pattern first matched, and the bytes after it
   * stay unread. The pattern is tried after each character, so a pattern
   * ending in `$` matches text that ends so; the `g` and `y` flags are
   * ignored. Each try looks only at the last `maxMatchLength` characters
   * (1024 unless set), so the read takes time linear in what it reads; at
   * most the connection's read limit is read.
   *
   * PEP 3156 (as in the async-facade proposal): `read_until_regex(sock,
   * cb)`.
   *
   * @param conn The connection.
   * @param pattern The regular expression to wait for.
   * @param cb Told of the match; or of an `IncompleteReadError` when the
   * stream ends first (its `partial` holds the bytes read), or a
   * `LimitOverrunError` when the read limit is reached without a match
   * (those bytes are consumed).
   * @param options The longest match looked for.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `maxMatchLength` or the timeout is out of
   * range.
   * @throws {InvalidStateError} When the engine is closed.
   *
   * @example Waiting for a prompt
   * ```ts
   * import { AsyncEngine, Connection } from "@tulip/tulip/facade";
   * import { openConnection } from "@tulip/tulip/protocols";
   * import { assertEquals } from "@std/assert";
   *
   * const engine = new AsyncEngine();
   * const seen: string[] = [];
   * engine.listen("127.0.0.1", 0, {
   *   failure: (e) => seen.push(`failed: ${e}`),
   *   success(listener) {
   *     const { port } = listener.addresses()[0] as Deno.NetAddr;
   *     engine.acceptThenWrite(listener, "Welcome\nlogin: ", [
   *       { success: () => listener.close(), failure: (e) => seen.push(`${e}`) },
   *       { success: () => {}, failure: (e) => seen.push(`${e}`) },
   *     ]);
   *     engine.connect("127.0.0.1", port, {
   *       failure: (e) => seen.push(`${e}`),
   *       success(conn) {
   *         engine.readUntilRegex(conn, /(\w+): $/, {
   *           success: (match) => { seen.push(match[1]); conn.close(); },
   *           failure: (e) => seen.push(`${e}`),
   *         });
   *       },
   *     });
   *   },
   * });
   * await engine.run();
   * assertEquals(seen, ["login"]);
   * await engine.close();
   * ```
   */
  readUntilRegex(
    conn: Connection,
    pattern: RegExp,
    cb: Callback<RegExpExecArray>,
    options?: RegexReadOptions,
  ): void {
    const method = "readUntilRegex";
    checkConnection(method, conn);
    checkPattern(method, pattern);
    const window = checkMaxMatchLength(method, options?.maxMatchLength);
    this.#single(
      method,
      cb,
      "read until the pattern",
      () => readUntilRegex(conn.reader, new TextMatcher(pattern, window)),
    );
  }

  /**
   * Reads lines until one matches the shell-style pattern `glob`, and
   * delivers the lines read, without their endings (`\n` or `\r\n`), the
   * matching one last; nothing after it is read. The glob must match the
   * whole line, read as Python's `fnmatch` reads it: `*` stands for any
   * run of characters, `?` for one, `[abc]` or `[a-z]` for one of a set,
   * `[!abc]` for one not in it; nothing else is special (`\` and a `^`
   * after `[` are ordinary characters; match a `*` with `[*]`). Lines are
   * decoded as UTF-8.
   * Each line is tested once, so the read takes time linear in what it
   * reads; at most the connection's read limit is read (one line more at
   * most).
   *
   * PEP 3156 (as in the async-facade proposal): `read_until_lineglob(sock,
   * cb)`.
   *
   * @param conn The connection.
   * @param glob The pattern a whole line must match.
   * @param cb Told of the lines read; or of an `IncompleteReadError` when
   * the stream ends before a matching line (its `partial` holds the bytes
   * read, an unterminated last line included), or a `LimitOverrunError`
   * when the read limit is reached without a match, or a line is longer
   * than the limit (what was read is consumed).
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When the timeout is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   *
   * @example Reading a log until its last line
   * ```ts
   * import { AsyncEngine } from "@tulip/tulip/facade";
   * import { assertEquals } from "@std/assert";
   *
   * const engine = new AsyncEngine();
   * const seen: string[][] = [];
   * const fail = (e: unknown) => seen.push([`failed: ${e}`]);
   * engine.listen("127.0.0.1", 0, {
   *   failure: fail,
   *   success(listener) {
   *     const { port } = listener.addresses()[0] as Deno.NetAddr;
   *     engine.acceptThenWrite(listener, "step 1\nstep 2\nDone in 3 s\nmore\n", [
   *       { success: () => listener.close(), failure: fail },
   *       { success: () => {}, failure: fail },
   *     ]);
   *     engine.connect("127.0.0.1", port, {
   *       failure: fail,
   *       success(conn) {
   *         engine.readUntilLineglob(conn, "Done in * s", {
   *           success: (lines) => { seen.push(lines); conn.close(); },
   *           failure: fail,
   *         });
   *       },
   *     });
   *   },
   * });
   * await engine.run();
   * assertEquals(seen, [["step 1", "step 2", "Done in 3 s"]]);
   * await engine.close();
   * ```
   */
  readUntilLineglob(
    conn: Connection,
    glob: string,
    cb: Callback<string[]>,
  ): void {
    const method = "readUntilLineglob";
    checkConnection(method, conn);
    if (typeof glob !== "string") {
      throw new TypeError(
        `Cannot call readUntilLineglob(): glob must be a string, received ${
          glob === null ? "null" : typeof glob
        }`,
      );
    }
    const test = compileGlob(glob);
    this.#single(
      method,
      cb,
      "read until a line matches the glob",
      () => readUntilLineglob(conn.reader, test),
    );
  }

  /**
   * Reads exactly `size` bytes.
   *
   * PEP 3156 (as in the async-facade proposal): `read_chunk(sock,
   * chunk_size, cb)`, built on `StreamReader.readexactly()`.
   *
   * @param conn The connection.
   * @param size How many bytes.
   * @param cb Told of the bytes; or of an `IncompleteReadError` when the
   * stream ends first (its `partial` holds what was read).
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `size` is not a whole number >= 0, or the
   * timeout is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  readChunk(conn: Connection, size: number, cb: Callback<Uint8Array>): void {
    checkConnection("readChunk", conn);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new RangeError(
        `Cannot call readChunk(): size must be a whole number >= 0, received ${
          formatReceived(size)
        }`,
      );
    }
    this.#single(
      "readChunk",
      cb,
      `read ${size} bytes`,
      () => wait(conn.reader.readexactly(size)),
    );
  }

  /**
   * Reads until the end of the stream and delivers everything. A timeout
   * or `cancel()` drops what was read so far.
   *
   * PEP 3156 (as in the async-facade proposal): `read_all(sock, cb)`,
   * built on `StreamReader.read(-1)`.
   *
   * @param conn The connection.
   * @param cb Told of all the bytes.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When the timeout is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  readAll(conn: Connection, cb: Callback<Uint8Array>): void {
    checkConnection("readAll", conn);
    this.#single(
      "readAll",
      cb,
      "read until the end of the stream",
      () => wait(conn.reader.read(-1)),
    );
  }

  /**
   * Reads one line and checks that it is `line`. Line endings (`\n` or
   * `\r\n`) are not compared.
   *
   * PEP 3156 (as in the async-facade proposal): the "expect line" step of
   * `accept_then_expect_line()`.
   *
   * @param conn The connection.
   * @param line The line expected, without its line ending (one is
   * ignored if given).
   * @param cb Told of the line (without its ending); or of an
   * `UnexpectedLineError` when another line came, an
   * `IncompleteReadError` when the stream ended before a whole line, or a
   * `LimitOverrunError` when the line is longer than the read limit.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When the timeout is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  expectLine(conn: Connection, line: string, cb: Callback<string>): void {
    checkConnection("expectLine", conn);
    const expected = checkLine("expectLine", line);
    this.#single(
      "expectLine",
      cb,
      "read the expected line",
      () => expectLine(conn.reader, expected),
    );
  }

  // ---- Writing ----

  /**
   * Writes `data` and waits until the connection's write buffer is under
   * its high-water mark (`drain()`). A timeout or `cancel()` does not take
   * back bytes already queued.
   *
   * PEP 3156 (as in the async-facade proposal): `write(sock, buf, cb)`,
   * built on `StreamWriter.write()` and `drain()`.
   *
   * @param conn The connection.
   * @param data The bytes, or text sent as UTF-8.
   * @param cb Told of the number of bytes written; or of the error (the
   * connection is closing or lost).
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When the timeout is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  write(
    conn: Connection,
    data: Uint8Array | string,
    cb: Callback<number>,
  ): void {
    checkConnection("write", conn);
    const bytes = toBytes(data, "write", "data");
    this.#single("write", cb, "write", () => write(conn.writer, bytes));
  }

  /**
   * Writes `line` followed by `\n`, as `write()` does.
   *
   * @param conn The connection.
   * @param line The line, bytes or text sent as UTF-8, without its line
   * ending.
   * @param cb Told of the number of bytes written, `\n` included.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When the timeout is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  writeLine(
    conn: Connection,
    line: Uint8Array | string,
    cb: Callback<number>,
  ): void {
    checkConnection("writeLine", conn);
    const bytes = lineBytes(line, "writeLine");
    this.#single(
      "writeLine",
      cb,
      "write the line",
      () => write(conn.writer, bytes),
    );
  }

  // ---- Names and work ----

  /**
   * Resolves `host` with the system resolver.
   *
   * PEP 3156 (as in the async-facade proposal): `getaddrinfo(host, port,
   * ..., cb)`, built on `loop.getaddrinfo()`.
   *
   * @param host The host name or a numeric address.
   * @param port The port to pair with each address.
   * @param cb Told of the addresses; or of the error (such as
   * `Deno.errors.NotFound` for an unknown host).
   * @param options `family`: 4 or 6 to restrict the answer.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `host` is empty, or `port` or the timeout is
   * out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  getaddrinfo(
    host: string,
    port: number,
    cb: Callback<AddrInfo[]>,
    options?: GetaddrinfoOptions,
  ): void {
    checkAddress("getaddrinfo", host, port);
    this.#single(
      "getaddrinfo",
      cb,
      `resolve ${host}`,
      () => wait(this.#loop.getaddrinfo(host, port, options)),
    );
  }

  /**
   * Runs `fn(...args)` in an executor, off the loop: by default the loop's
   * Web Workers. There `fn` is best a `workerFunction(moduleUrl,
   * exportName)` reference — the worker imports the module and calls the
   * export, which may use anything its module imports; a plain function
   * is sent as source, so it must be self-contained. The arguments and
   * result are structured-cloned. A timeout or `cancel()` stops waiting,
   * not the work.
   *
   * PEP 3156 (as in the async-facade proposal): `submit_work(callable,
   * cb)`, built on `loop.run_in_executor()`.
   *
   * @typeParam A The argument types.
   * @typeParam R The result type.
   * @param fn The function to run, or a `workerFunction()` reference.
   * @param args Its arguments.
   * @param cb Told of the result, or of what `fn` threw.
   * @param options The executor.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When the timeout is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   *
   * @example Running a module's export in a worker
   * ```ts
   * import { AsyncEngine } from "@tulip/tulip/facade";
   * import { workerFunction } from "@tulip/tulip/loop";
   * import { assertEquals } from "@std/assert";
   *
   * // Usually new URL("./work.ts", import.meta.url); a data: URL keeps the
   * // example in one file. The module may import what it needs.
   * const work = `import { basename } from "node:path";
   *   export const base = (path: string) => basename(path);`;
   * const url = `data:application/typescript,${encodeURIComponent(work)}`;
   * const engine = new AsyncEngine();
   * const seen: string[] = [];
   * engine.submitWork(workerFunction<[string], string>(url, "base"), ["/tmp/a.txt"], {
   *   success: (name) => seen.push(name),
   *   failure: (e) => seen.push(`failed: ${e}`),
   * });
   * await engine.run();
   * assertEquals(seen, ["a.txt"]);
   * await engine.close();
   * ```
   */
  submitWork<A extends unknown[], R>(
    fn: (...args: A) => R | PromiseLike<R>,
    args: A,
    cb: Callback<R>,
    options?: SubmitWorkOptions,
  ): void {
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot call submitWork(): fn must be a function, received ${typeof fn}`,
      );
    }
    if (!Array.isArray(args)) {
      throw new TypeError(
        `Cannot call submitWork(): args must be an array, received ${
          args === null ? "null" : typeof args
        }`,
      );
    }
    const executor = options?.executor ?? null;
    this.#single(
      "submitWork",
      cb,
      "finish the work",
      () => wait(this.#loop.runInExecutor(executor, fn, ...args)),
    );
  }

  // ---- Chained calls ----

  /**
   * Connects, then writes `line` followed by `\n` (see `ChainCallbacks`
   * for how the two callbacks are told).
   *
   * PEP 3156 (as in the async-facade proposal):
   * `connect_then_write_line()`.
   *
   * @param host The host name or address.
   * @param port The port.
   * @param line The line, bytes or text sent as UTF-8.
   * @param callbacks Two callback objects, told of the `Connection`, then of
   * the number of bytes written; or one `ChainCallback`, told of both at the
   * end.
   * @param options As for `connect()`.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When a value is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  connectThenWriteLine(
    host: string,
    port: number,
    line: Uint8Array | string,
    callbacks:
      | ChainCallbacks<Connection, number>
      | ChainCallback<Connection, number>,
    options?: ConnectOptions,
  ): void {
    const method = "connectThenWriteLine";
    checkAddress(method, host, port);
    checkLimit(method, options?.limit);
    const bytes = lineBytes(line, method);
    this.#chain(
      method,
      callbacks,
      [() => this.#connect(host, port, options), `connect to ${host}:${port}`],
      [(conn) => write(conn.writer, bytes), "write the line"],
    );
  }

  /**
   * Connects, then reads one line and checks that it is `line` (as
   * `expectLine()` does).
   *
   * PEP 3156 (as in the async-facade proposal):
   * `connect_then_expect_line()`.
   *
   * @param host The host name or address.
   * @param port The port.
   * @param line The line expected, without its line ending.
   * @param callbacks Two callback objects, told of the `Connection`, then of
   * the line; or one `ChainCallback`, told of both at the end.
   * @param options As for `connect()`.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When a value is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  connectThenExpectLine(
    host: string,
    port: number,
    line: string,
    callbacks:
      | ChainCallbacks<Connection, string>
      | ChainCallback<Connection, string>,
    options?: ConnectOptions,
  ): void {
    const method = "connectThenExpectLine";
    checkAddress(method, host, port);
    checkLimit(method, options?.limit);
    const expected = checkLine(method, line);
    this.#chain(
      method,
      callbacks,
      [() => this.#connect(host, port, options), `connect to ${host}:${port}`],
      [(conn) => expectLine(conn.reader, expected), "read the expected line"],
    );
  }

  /**
   * Accepts a connection, then writes `data` to it.
   *
   * PEP 3156 (as in the async-facade proposal): `accept_then_write()`.
   *
   * @param listener A listener from `listen()`.
   * @param data The bytes, or text sent as UTF-8.
   * @param callbacks Two callback objects, told of the `Connection`, then of
   * the number of bytes written; or one `ChainCallback`, told of both at the
   * end.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When a timeout is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  acceptThenWrite(
    listener: Listener,
    data: Uint8Array | string,
    callbacks:
      | ChainCallbacks<Connection, number>
      | ChainCallback<Connection, number>,
  ): void {
    const method = "acceptThenWrite";
    checkListener(method, listener);
    const bytes = toBytes(data, method, "data");
    this.#chain(
      method,
      callbacks,
      [() => this.#accept(listener), "accept a connection"],
      [(conn) => write(conn.writer, bytes), "write"],
    );
  }

  /**
   * Accepts a connection, then reads one line from it and checks that it
   * is `line`.
   *
   * PEP 3156 (as in the async-facade proposal):
   * `accept_then_expect_line()`.
   *
   * @param listener A listener from `listen()`.
   * @param line The line expected, without its line ending.
   * @param callbacks Two callback objects, told of the `Connection`, then of
   * the line; or one `ChainCallback`, told of both at the end.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When a timeout is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  acceptThenExpectLine(
    listener: Listener,
    line: string,
    callbacks:
      | ChainCallbacks<Connection, string>
      | ChainCallback<Connection, string>,
  ): void {
    const method = "acceptThenExpectLine";
    checkListener(method, listener);
    const expected = checkLine(method, line);
    this.#chain(
      method,
      callbacks,
      [() => this.#accept(listener), "accept a connection"],
      [(conn) => expectLine(conn.reader, expected), "read the expected line"],
    );
  }

  /**
   * Accepts a connection, then reads whole lines until the text read,
   * decoded as UTF-8 with the line endings kept, matches `pattern`, and
   * delivers the match. The pattern gets the `m` flag, so `^` and `$`
   * match at each line's start and end; it is tried after each line, and
   * nothing after the matching line is read. As with `readUntilRegex()`,
   * each try looks at the last `maxMatchLength` characters (1024 unless
   * set), so the read takes time linear in what it reads, and at most the
   * connection's read limit is read (one line more at most).
   *
   * PEP 3156 (as in the async-facade proposal):
   * `accept_then_expect_multiline_regex()`.
   *
   * @param listener A listener from `listen()`.
   * @param pattern The regular expression to wait for.
   * @param callbacks Two callback objects, told of the `Connection`, then of
   * the match; the second may hear of an `IncompleteReadError` when the
   * stream ends first (its `partial` holds the bytes read), or a
   * `LimitOverrunError` when the read limit is reached without a match or a
   * line is longer than the limit; or one `ChainCallback`, told of both at
   * the end.
   * @param options The longest match looked for.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `maxMatchLength` or a timeout is out of
   * range.
   * @throws {InvalidStateError} When the engine is closed.
   *
   * @example An SMTP-style multi-line greeting
   * ```ts
   * import { AsyncEngine } from "@tulip/tulip/facade";
   * import { assertEquals } from "@std/assert";
   *
   * const engine = new AsyncEngine();
   * const seen: string[] = [];
   * const fail = (e: unknown) => seen.push(`failed: ${e}`);
   * engine.listen("127.0.0.1", 0, {
   *   failure: fail,
   *   success(listener) {
   *     const { port } = listener.addresses()[0] as Deno.NetAddr;
   *     engine.acceptThenExpectMultilineRegex(listener, /^250 (.*)$/, [
   *       { success: () => listener.close(), failure: fail },
   *       {
   *         failure: fail,
   *         success(match) {
   *           seen.push(match[1], match.input);
   *         },
   *       },
   *     ]);
   *     engine.connectThenWriteLine("127.0.0.1", port, "250-hello\r\n250 OK", [
   *       { success: () => {}, failure: fail },
   *       { success: () => {}, failure: fail },
   *     ]);
   *   },
   * });
   * await engine.run();
   * assertEquals(seen, ["OK", "250-hello\r\n250 OK\n"]);
   * await engine.close();
   * ```
   */
  acceptThenExpectMultilineRegex(
    listener: Listener,
    pattern: RegExp,
    callbacks:
      | ChainCallbacks<Connection, RegExpExecArray>
      | ChainCallback<Connection, RegExpExecArray>,
    options?: RegexReadOptions,
  ): void {
    const method = "acceptThenExpectMultilineRegex";
    checkListener(method, listener);
    checkPattern(method, pattern);
    const window = checkMaxMatchLength(method, options?.maxMatchLength);
    this.#chain(
      method,
      callbacks,
      [() => this.#accept(listener), "accept a connection"],
      [
        (conn) =>
          expectMultilineRegex(
            conn.reader,
            new TextMatcher(pattern, window, "m"),
          ),
        "read until the pattern",
      ],
    );
  }

  /**
   * Writes `data`, then reads one line and checks that it is `line`.
   *
   * PEP 3156 (as in the async-facade proposal):
   * `write_then_expect_line()`.
   *
   * @param conn The connection.
   * @param data The bytes, or text sent as UTF-8.
   * @param line The line expected, without its line ending.
   * @param callbacks Two callback objects, told of the number of bytes
   * written, then of the line; or one `ChainCallback`, told of both at the
   * end.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When a timeout is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  writeThenExpectLine(
    conn: Connection,
    data: Uint8Array | string,
    line: string,
    callbacks:
      | ChainCallbacks<number, string>
      | ChainCallback<number, string>,
  ): void {
    const method = "writeThenExpectLine";
    checkConnection(method, conn);
    const bytes = toBytes(data, method, "data");
    const expected = checkLine(method, line);
    this.#chain(
      method,
      callbacks,
      [() => write(conn.writer, bytes), "write"],
      [() => expectLine(conn.reader, expected), "read the expected line"],
    );
  }

  /**
   * Resolves `host`, then connects to the addresses in the resolver's
   * order until one answers. When every address fails the same way (all
   * refused, say) the connect callback gets the first error; otherwise an
   * `AggregateError` of them all. With `ssl`, certificates are checked
   * against `host` (not the numeric address) unless `serverHostname` says
   * otherwise.
   *
   * PEP 3156 (as in the async-facade proposal):
   * `getaddrinfo_then_connect()`.
   *
   * @param host The host name or address.
   * @param port The port.
   * @param callbacks Two callback objects, told of the addresses, then of the
   * `Connection`; or one `ChainCallback`, told of both at the end.
   * @param options `family` for the resolver, and what `connect()` takes.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When a value is out of range.
   * @throws {InvalidStateError} When the engine is closed.
   */
  getaddrinfoThenConnect(
    host: string,
    port: number,
    callbacks:
      | ChainCallbacks<AddrInfo[], Connection>
      | ChainCallback<AddrInfo[], Connection>,
    options?: GetaddrinfoThenConnectOptions,
  ): void {
    const method = "getaddrinfoThenConnect";
    checkAddress(method, host, port);
    checkLimit(method, options?.limit);
    const { family, type, proto, flags, ...connectOptions } = options ?? {};
    if (connectOptions.ssl && connectOptions.serverHostname === undefined) {
      connectOptions.serverHostname = host;
    }
    this.#chain(
      method,
      callbacks,
      [
        () =>
          wait(
            this.#loop.getaddrinfo(host, port, { family, type, proto, flags }),
          ),
        `resolve ${host}`,
      ],
      [
        (infos) => this.#connectAny(host, port, infos, connectOptions),
        `connect to ${host}:${port}`,
      ],
    );
  }

  // ---- Running ----

  /**
   * Runs one iteration of the loop: waits for the next event if nothing
   * is ready, then runs what is ready (callbacks included). With nothing
   * pending at all it waits until something happens, so check
   * `pending()` first.
   *
   * PEP 3156 (as in the async-facade proposal): `run_once()`.
   *
   * @returns A promise that resolves after the iteration.
   * @throws {InvalidStateError} When the engine is closed, or the loop is
   * already running (do not call it from a callback).
   */
  async runOnce(): Promise<void> {
    this.#checkOpen("runOnce");
    await this.#loop.runOnce();
  }

  /**
   * Runs the loop until nothing is pending — no operation in flight, and
   * no connection or listener of this engine still closing — or until
   * `stop()`. It returns at once when nothing is pending. A listener
   * still closing only counts while every connection it accepted is
   * closing too: a connection you keep open does not hold `run()`.
   *
   * PEP 3156 (as in the async-facade proposal): `run()`, "keep running
   * the event loop until exit".
   *
   * @returns A promise that resolves when the engine is idle or stopped.
   * @throws {InvalidStateError} When the engine is closed, or it or its
   * loop is already running (do not call it from a callback).
   */
  async run(): Promise<void> {
    this.#checkOpen("run");
    await this.#runUntilIdle("run");
  }

  /**
   * Makes `run()` return after the current iteration, leaving pending
   * operations as they are (a later `run()` or `runOnce()` goes on with
   * them). Does nothing while `run()` is not running.
   *
   * PEP 3156: `loop.stop()`.
   */
  stop(): void {
    if (this.#running) this.#loop.stop();
  }

  /**
   * Shuts the engine down: cancels every pending operation (their
   * callbacks are not called), closes every listener and connection it
   * made, runs the loop until they are gone, and closes the loop if the
   * engine made it. A connection sends what it buffers first; one still
   * not gone after `grace` seconds (its peer stopped reading) is aborted.
   * Later calls throw `InvalidStateError`. Calling it again returns once
   * the first call is done; a shorter `grace` brings the abort forward,
   * never back (as `server.shutdown()`).
   *
   * @example Shutting down while a peer does not read
   * ```ts
   * import { AsyncEngine } from "@tulip/tulip/facade";
   * import { assertEquals } from "@std/assert";
   *
   * const peer = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * const accepted = peer.accept(); // and never read
   * const engine = new AsyncEngine();
   * engine.connect("127.0.0.1", (peer.addr as Deno.NetAddr).port, {
   *   success: (conn) => conn.writer.write(new Uint8Array(32 * 1024 * 1024)),
   *   failure: (e) => console.error(e),
   * });
   * await engine.run();
   * await engine.close({ grace: 0.1 }); // aborted after 0.1 s
   * assertEquals(engine.pending(), 0);
   * (await accepted).close();
   * peer.close();
   * ```
   *
   * @param options The grace period.
   * @returns A promise that resolves once everything is closed.
   * @throws {InvalidStateError} When the loop is running (do not call it
   * from a callback).
   * @throws {TypeError} When `grace` is not a number.
   * @throws {RangeError} When `grace` is negative or NaN.
   */
  async close(options?: AsyncEngineCloseOptions): Promise<void> {
    const grace = options?.grace ?? DEFAULT_CLOSE_GRACE;
    if (typeof grace !== "number") {
      throw new TypeError(
        `Cannot close the AsyncEngine: grace must be a number of seconds, received ${typeof grace}`,
      );
    }
    if (!(grace >= 0)) {
      throw new RangeError(
        `Cannot close the AsyncEngine: grace must be >= 0 seconds, received ${grace}`,
      );
    }
    if (this.#closing !== null) {
      this.#abortAfter(grace);
      return await this.#closing;
    }
    if (this.#loop.isRunning()) {
      throw new InvalidStateError(
        "Cannot close the AsyncEngine: its loop is running, received a call from inside the loop",
      );
    }
    this.#closed = true;
    this.#closing = this.#shutDown(grace);
    return await this.#closing;
  }

  async #shutDown(grace: number): Promise<void> {
    for (const operation of [...this.#operations.values()]) operation.cancel();
    for (const listener of this.#listeners) listener.close();
    for (const conn of this.#connections.keys()) conn.close();
    if (!this.#loop.isClosed()) {
      this.#abortAfter(grace);
      try {
        await this.#runUntilIdle("close");
      } finally {
        this.#abortTimer?.cancel();
        this.#abortTimer = null;
      }
    }
    // What callbacks threw and was left out, counted in one line each.
    for (const [callback, pacer] of this.#callbackReports) {
      pacer.sumUp(this.#loop, "AsyncEngine closed", `errors of ${callback}`);
    }
    if (this.#ownsLoop) this.#loop.close();
  }

  /**
   * Aborts the connections still closing `grace` seconds from now, unless
   * they are to be aborted sooner already.
   */
  #abortAfter(grace: number): void {
    if (grace === Infinity || this.#loop.isClosed() || this.#isIdle()) return;
    const when = this.#loop.time() + grace;
    if (when >= this.#abortAt) return;
    this.#abortAt = when;
    this.#abortTimer?.cancel();
    this.#abortTimer = this.#loop.callAt(when, () => {
      this.#abortTimer = null;
      for (const conn of this.#connections.keys()) {
        conn.writer.transport.abort();
      }
    });
  }

  /**
   * Closes the engine, for `await using engine = new AsyncEngine()`.
   *
   * @returns A promise that resolves once the engine is closed.
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- Machinery ----

  /** Runs the loop until idle (or `stop()`). */
  async #runUntilIdle(what: string): Promise<void> {
    if (this.#running) {
      throw new InvalidStateError(
        `Cannot call ${what}(): the engine is already running`,
      );
    }
    if (this.#isIdle()) return;
    this.#running = true;
    try {
      await this.#loop.runForever();
    } finally {
      this.#running = false;
    }
  }

  /** Whether nothing is pending (see `run()`). */
  #isIdle(): boolean {
    if (this.#operations.size > 0) return false;
    for (const conn of this.#connections.keys()) {
      if (conn.isClosing()) return false;
    }
    outer: for (const listener of this.#listeners) {
      if (!listener.isClosing()) continue;
      for (const [conn, from] of this.#connections) {
        if (from === listener && !conn.isClosing()) continue outer;
      }
      return false;
    }
    return true;
  }

  /** Stops `run()` once nothing is pending. */
  #checkIdle(): void {
    if (this.#running && this.#isIdle()) this.#loop.stop();
  }

  #checkOpen(method: string): void {
    if (this.#closed) {
      throw new InvalidStateError(
        `Cannot call ${method}(): the AsyncEngine is closed`,
      );
    }
  }

  /** Keeps track of a connection until it is gone. */
  #adopt(conn: Connection, from: Listener | null): Connection {
    this.#connections.set(conn, from);
    conn.waitClosed().addDoneCallback((closed) => {
      // Seen, so that a connection lost with an error is not reported.
      if (!closed.cancelled()) closed.exception();
      this.#connections.delete(conn);
      this.#checkIdle();
    });
    return conn;
  }

  /** Starts a one-step call. */
  #single<T>(
    method: string,
    cb: Callback<T>,
    what: string,
    body: () => Coroutine<T>,
  ): void {
    this.#start(method, [cb], function* (this: AsyncEngine, timeouts) {
      return yield* this.#limited(body, timeouts[0], what);
    });
  }

  /**
   * Starts the task of a call with one callback, or two for a chain, and
   * reports its end to them. `body` runs with `this` bound to the engine
   * and gets each callback's timeout; a chain reports its first step
   * itself, and sets `stage.firstDone` once it has scheduled that report.
   */
  #start<T>(
    method: string,
    callbacks: Callback<never>[],
    body: (
      this: AsyncEngine,
      timeouts: (number | null)[],
    ) => Coroutine<T>,
    stage?: { firstDone: boolean },
  ): void {
    this.#checkOpen(method);
    const timeouts = callbacks.map((cb, i) => {
      checkCallback(
        method,
        cb,
        callbacks.length === 1 ? "callback" : `callback ${i + 1}`,
      );
      return checkTimeout(method, cb.timeout);
    });
    const task = this.#loop.createTask(body.call(this, timeouts), {
      name: `AsyncEngine.${method}`,
    });
    let requested = false;
    const cancel = (): boolean => {
      if (requested || task.done()) return false;
      requested = true;
      return task.cancel();
    };
    this.#operations.set(task as Task<unknown>, { cancel });
    const slots: Slot[] = callbacks.map((cb) => ({ cb, method }));
    if (stage === undefined) {
      callbacks[0].cancel = cancel;
    } else {
      callbacks[0].cancel = () => !stage.firstDone && cancel();
      callbacks[1].cancel = cancel;
    }
    task.addDoneCallback(() => {
      this.#operations.delete(task as Task<unknown>);
      try {
        // A chain whose first step was reported only owes the second.
        this.#report(
          task,
          requested,
          stage?.firstDone ? slots.slice(1) : slots,
        );
      } finally {
        this.#checkIdle();
      }
    });
  }

  /** Tells the callbacks how a task ended. */
  #report<T>(task: Task<T>, requested: boolean, slots: Slot[]): void {
    if (task.cancelled()) {
      if (requested) return;
      // Cancelled by someone other than cancel(): still tell the caller.
      let error: unknown;
      try {
        task.result();
      } catch (e) {
        error = e;
      }
      for (const slot of slots) this.#call(slot, "failure", error);
      return;
    }
    const last = slots[slots.length - 1];
    const error = task.exception();
    if (error instanceof FirstStepFailed) {
      for (const slot of slots) this.#call(slot, "failure", error.error);
    } else if (error !== undefined) {
      this.#call(last, "failure", error);
    } else {
      this.#call(last, "success", task.result());
    }
  }

  /** Calls a callback; what it throws goes to the exception handler. */
  #call(slot: Slot, kind: "success" | "failure", value: unknown): void {
    const cb = slot.cb as Callback<unknown>;
    try {
      if (kind === "success") cb.success(value);
      else cb.failure(value);
    } catch (exception) {
      this.#reportCallbackError(slot.method, kind, exception);
    }
  }

  /**
   * Passes what a callback threw to the exception handler, at most once per
   * `CALLBACK_REPORT_INTERVAL` for each callback, counting the rest.
   */
  #reportCallbackError(method: string, kind: string, exception: unknown) {
    const callback = `the ${kind} callback of AsyncEngine.${method}()`;
    let pacer = this.#callbackReports.get(callback);
    if (pacer === undefined) {
      pacer = new ReportPacer(CALLBACK_REPORT_INTERVAL);
      this.#callbackReports.set(callback, pacer);
    }
    pacer.report(
      this.#loop,
      { message: `Error in ${callback}`, exception },
      "more",
    );
  }

  /** Starts a two-step chain, in one task. */
  #chain<A, B>(
    method: string,
    callbacks: ChainCallbacks<A, B> | ChainCallback<A, B>,
    first: [() => Coroutine<A>, string],
    second: [(a: A) => Coroutine<B>, string],
  ): void {
    if (!Array.isArray(callbacks)) {
      const cb = callbacks as ChainCallback<A, B>;
      if (
        typeof cb === "object" && cb !== null &&
        typeof cb.success === "function" && typeof cb.failure === "function"
      ) {
        return this.#single(
          method,
          cb,
          `${first[1]}, then ${second[1]}`,
          () => bothSteps(first[0], second[0]),
        );
      }
    }
    if (!Array.isArray(callbacks) || callbacks.length !== 2) {
      throw new TypeError(
        `Cannot call ${method}(): callbacks must be a callback object or an array of two, received ${
          Array.isArray(callbacks)
            ? `${callbacks.length} items`
            : callbacks === null
            ? "null"
            : typeof callbacks
        }`,
      );
    }
    const cb1 = callbacks[0] as Callback<never>;
    const cb2 = callbacks[1] as Callback<never>;
    const stage = { firstDone: false };
    const slot1: Slot = { cb: cb1, method };
    this.#start(
      method,
      [cb1, cb2],
      function* (this: AsyncEngine, timeouts): Coroutine<B> {
        let a: A;
        try {
          a = yield* this.#limited(first[0], timeouts[0], first[1]);
        } catch (e) {
          if (e instanceof CancelledError) throw e;
          throw new FirstStepFailed(e);
        }
        stage.firstDone = true;
        this.#loop.callSoon(() => this.#call(slot1, "success", a));
        return yield* this.#limited(() => second[0](a), timeouts[1], second[1]);
      },
      stage,
    );
  }

  /** Runs `body` with a time limit in seconds, if there is one. */
  *#limited<T>(
    body: () => Coroutine<T>,
    seconds: number | null,
    what: string,
  ): Coroutine<T> {
    if (seconds === null) return yield* body();
    const scope = timeoutScope(seconds, { loop: this.#loop });
    try {
      return yield* scope.scope(body);
    } catch (e) {
      if (e instanceof TimeoutError && scope.expired()) {
        const timedOut = new TimeoutError(
          `Cannot ${what}: it did not finish in time, received timeout=${seconds}`,
        );
        timedOut.cause = e;
        throw timedOut;
      }
      throw e;
    }
  }

  *#connect(
    host: string,
    port: number,
    options: ConnectOptions | undefined,
  ): Coroutine<Connection> {
    const opening = openConnection(host, port, {
      ...options,
      loop: this.#loop,
    });
    let pair: [StreamReader, StreamWriter];
    try {
      pair = yield* opening;
    } catch (e) {
      // Connected just as the operation was cancelled: close it.
      const made = doneWith(opening);
      if (made !== undefined) {
        this.#adopt(new Connection(made[0], made[1]), null).close();
      }
      throw e;
    }
    return this.#adopt(new Connection(pair[0], pair[1]), null);
  }

  *#connectAny(
    host: string,
    port: number,
    infos: AddrInfo[],
    options: ConnectOptions,
  ): Coroutine<Connection> {
    const errors: unknown[] = [];
    for (const info of infos) {
      try {
        return yield* this.#connect(info.hostname, info.port, options);
      } catch (e) {
        if (e instanceof CancelledError) throw e;
        errors.push(e);
      }
    }
    if (errors.length === 0) {
      throw new RangeError(
        `Cannot connect to ${host}:${port}: the name resolved to no address, received 0 addresses`,
      );
    }
    const kind = (errors[0] as object | null)?.constructor;
    if (errors.every((e) => (e as object | null)?.constructor === kind)) {
      throw errors[0];
    }
    throw new AggregateError(
      errors,
      `Cannot connect to ${host}:${port}: every address failed, received ${infos.length} addresses`,
    );
  }

  *#listen(
    host: string,
    port: number,
    backlog: number,
    options: ListenOptions | undefined,
  ): Coroutine<Listener> {
    const queue = new Queue<Connection>(backlog, { loop: this.#loop });
    let listener: Listener | null = null;
    const onClient = (reader: StreamReader, writer: StreamWriter): void => {
      const conn = this.#adopt(new Connection(reader, writer), listener);
      if (listener === null || listener.isClosing() || queue.full()) {
        conn.close();
      } else {
        queue.putNowait(conn);
      }
    };
    const starting = startServer(onClient, host, port, {
      ...options,
      backlog,
      startServing: false,
      loop: this.#loop,
    });
    let server: Server;
    try {
      server = yield* starting;
    } catch (e) {
      doneWith(starting)?.close();
      throw e;
    }
    const made = new Listener(server, queue);
    listener = made;
    this.#listeners.add(made);
    server.waitClosed().addDoneCallback(() => {
      this.#listeners.delete(made);
      this.#checkIdle();
    });
    server.startServing();
    return made;
  }

  *#accept(listener: Listener): Coroutine<Connection> {
    try {
      return yield* listener.accept();
    } catch (e) {
      if (e instanceof QueueShutDown) {
        throw new InvalidStateError(
          "Cannot accept a connection: the listener is closed",
        );
      }
      throw e;
    }
  }

  #describe(): string {
    const state = this.#closed ? "closed" : this.#running ? "running" : "idle";
    return `${state} pending=${this.#operations.size} connections=${this.#connections.size} listeners=${this.#listeners.size}`;
  }
}

// ---- Steps shared by the calls ----

// A chain told to one callback: both values at the end. A connection the
// first step made is closed if the second does not finish: the caller
// never got it.
function* bothSteps<A, B>(
  first: () => Coroutine<A>,
  second: (a: A) => Coroutine<B>,
): Coroutine<[A, B]> {
  const a = yield* first();
  try {
    return [a, yield* second(a)];
  } catch (e) {
    if (a instanceof Connection) a.close();
    throw e;
  }
}

function* wait<T>(future: Future<T>): Coroutine<T> {
  return yield* future;
}

function* write(writer: StreamWriter, bytes: Uint8Array): Coroutine<number> {
  writer.write(bytes);
  yield* writer.drain();
  return bytes.length;
}

/** What a read that reached the connection's limit tells the caller. */
const LIMIT_ADVICE = (what: "bytes" | "lines") =>
  `the ${what} read are consumed; to wait for more, give connect() or listen() a larger limit`;

function* expectLine(
  reader: StreamReader,
  expected: string,
): Coroutine<string> {
  const raw = yield* reader.readline();
  if (raw.length === 0 || raw[raw.length - 1] !== LF) {
    throw new IncompleteReadError(raw, null);
  }
  const line = stripLineEnding(new TextDecoder().decode(raw));
  if (line !== expected) throw new UnexpectedLineError(expected, line);
  return line;
}

// One byte at a time, so that nothing past the match is consumed; a read
// of buffered bytes completes at once, without a loop iteration. Each byte
// is decoded once, and each try costs at most the matcher's window.
function* readUntilRegex(
  reader: StreamReader,
  matcher: TextMatcher,
): Coroutine<RegExpExecArray> {
  const decoder = new TextDecoder();
  const bytes: number[] = [];
  // A pattern that matches empty text needs nothing read.
  const empty = matcher.matchEmpty();
  if (empty !== null) return empty;
  for (;;) {
    const chunk = yield* reader.read(1);
    if (chunk.length === 0) {
      throw new IncompleteReadError(new Uint8Array(bytes), null);
    }
    bytes.push(chunk[0]);
    const match = matcher.add(decoder.decode(chunk, { stream: true }));
    if (match !== null) return match;
    if (bytes.length >= reader.limit) {
      throw new LimitOverrunError(
        `Cannot read until the pattern: it did not match within limit=${reader.limit} bytes; ${
          LIMIT_ADVICE("bytes")
        }`,
        bytes.length,
      );
    }
  }
}

/**
 * Reads one whole line (ending in `\n`), or fails with an
 * `IncompleteReadError` holding `before` and what the stream had left.
 */
function* wholeLine(
  reader: StreamReader,
  before: Uint8Array[],
  size: number,
): Coroutine<Uint8Array> {
  const line = yield* reader.readline();
  if (line.length === 0 || line[line.length - 1] !== LF) {
    throw new IncompleteReadError(
      concatBytes([...before, line], size + line.length),
      null,
    );
  }
  return line;
}

// Line by line, so that nothing past the matching line is read.
function* expectMultilineRegex(
  reader: StreamReader,
  matcher: TextMatcher,
): Coroutine<RegExpExecArray> {
  const decoder = new TextDecoder();
  const lines: Uint8Array[] = [];
  let size = 0;
  const empty = matcher.matchEmpty();
  if (empty !== null) return empty;
  for (;;) {
    const line = yield* wholeLine(reader, lines, size);
    lines.push(line);
    size += line.length;
    const match = matcher.add(decoder.decode(line, { stream: true }));
    if (match !== null) return match;
    if (size >= reader.limit) {
      throw new LimitOverrunError(
        `Cannot read until the pattern: it did not match within limit=${reader.limit} bytes; ${
          LIMIT_ADVICE("bytes")
        }`,
        size,
      );
    }
  }
}

function* readUntilLineglob(
  reader: StreamReader,
  test: (line: string) => boolean,
): Coroutine<string[]> {
  const raw: Uint8Array[] = [];
  const lines: string[] = [];
  let size = 0;
  for (;;) {
    const line = yield* wholeLine(reader, raw, size);
    raw.push(line);
    size += line.length;
    const text = stripLineEnding(new TextDecoder().decode(line));
    lines.push(text);
    if (test(text)) return lines;
    if (size >= reader.limit) {
      throw new LimitOverrunError(
        `Cannot read until a line matches the glob: none did within limit=${reader.limit} bytes; ${
          LIMIT_ADVICE("lines")
        }`,
        size,
      );
    }
  }
}

// ---- Checks and conversions ----

/** The result of a future that succeeded, else `undefined`. */
function doneWith<T>(future: Future<T>): T | undefined {
  if (!future.done() || future.cancelled()) return undefined;
  if (future.exception() !== undefined) return undefined;
  return future.result();
}

function checkPattern(method: string, pattern: unknown): void {
  if (!(pattern instanceof RegExp)) {
    throw new TypeError(
      `Cannot call ${method}(): pattern must be a RegExp, received ${
        pattern === null ? "null" : typeof pattern
      }`,
    );
  }
}

function checkMaxMatchLength(method: string, value: unknown): number {
  if (value === undefined) return DEFAULT_MAX_MATCH_LENGTH;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot call ${method}(): maxMatchLength must be a whole number >= 1, received ${
        typeof value === "string" ? JSON.stringify(value) : String(value)
      }`,
    );
  }
  return value;
}

function stripLineEnding(line: string): string {
  if (line.endsWith("\r\n")) return line.slice(0, -2);
  if (line.endsWith("\n")) return line.slice(0, -1);
  return line;
}

function toBytes(data: unknown, method: string, what: string): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === "string") return encoder.encode(data);
  throw new TypeError(
    `Cannot call ${method}(): ${what} must be a Uint8Array or a string, received ${
      data === null ? "null" : typeof data
    }`,
  );
}

function lineBytes(line: unknown, method: string): Uint8Array {
  const bytes = toBytes(line, method, "line");
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out.set(NEWLINE, bytes.length);
  return out;
}

function checkLine(method: string, line: unknown): string {
  if (typeof line !== "string") {
    throw new TypeError(
      `Cannot call ${method}(): line must be a string, received ${
        line === null ? "null" : typeof line
      }`,
    );
  }
  return stripLineEnding(line);
}

function checkAddress(method: string, host: unknown, port: unknown): void {
  if (typeof host !== "string") {
    throw new TypeError(
      `Cannot call ${method}(): host must be a string, received ${
        host === null ? "null" : typeof host
      }`,
    );
  }
  // listen() takes "" for every interface, as startServer() does.
  if (host === "" && method !== "listen") {
    throw new RangeError(
      `Cannot call ${method}(): host must not be empty, received ""`,
    );
  }
  if (typeof port !== "number") {
    throw new TypeError(
      `Cannot call ${method}(): port must be a number, received ${
        port === null ? "null" : typeof port
      }`,
    );
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot call ${method}(): port must be a whole number from 0 to 65535, received ${
        formatReceived(port)
      }`,
    );
  }
}

function checkLimit(method: string, limit: unknown): void {
  if (limit === undefined) return;
  if (typeof limit !== "number" || !Number.isSafeInteger(limit) || limit <= 0) {
    throw new RangeError(
      `Cannot call ${method}(): limit must be a whole number > 0, received ${
        formatReceived(limit)
      }`,
    );
  }
}

function checkConnection(method: string, conn: unknown): void {
  if (!(conn instanceof Connection)) {
    throw new TypeError(
      `Cannot call ${method}(): conn must be a Connection, received ${
        conn === null ? "null" : typeof conn
      }`,
    );
  }
}

function checkListener(method: string, listener: unknown): void {
  if (!(listener instanceof Listener)) {
    throw new TypeError(
      `Cannot call ${method}(): listener must be a Listener, received ${
        listener === null ? "null" : typeof listener
      }`,
    );
  }
}

function checkCallback(method: string, cb: unknown, which: string): void {
  const c = cb as Partial<Callback<unknown>> | null;
  if (
    typeof c !== "object" || c === null || typeof c.success !== "function" ||
    typeof c.failure !== "function"
  ) {
    throw new TypeError(
      `Cannot call ${method}(): the ${which} must be an object with success() and failure() functions, received ${
        c === null ? "null" : typeof c
      }`,
    );
  }
}

function checkTimeout(method: string, value: unknown): number | null {
  if (value === undefined || value === null || value === Infinity) return null;
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot call ${method}(): timeout must be a number of seconds or null, received ${typeof value}`,
    );
  }
  if (!(value >= 0)) {
    throw new RangeError(
      `Cannot call ${method}(): timeout must be >= 0 seconds, received ${
        formatReceived(value)
      }`,
    );
  }
  return value;
}
