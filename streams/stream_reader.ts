/**
 * `StreamReader`: buffered, awaitable reads from a stream connection.
 *
 * @module
 */

import {
  formatReceived,
  IncompleteReadError,
  InvalidStateError,
  LimitOverrunError,
} from "../futures/errors.ts";
import { Future } from "../futures/future.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { ReadTransport } from "../transports/transport.ts";
import { concatBytes } from "../transports/write_buffer.ts";
import { readerFriends } from "./_reader_friends.ts";
import { checkOptions, TAKE_BACK } from "../futures/_runtime.ts";

/** The default `limit`, in bytes (64 KiB, as in asyncio). */
const DEFAULT_LIMIT = 64 * 1024;
/** Buffer room an emptied reader keeps whatever its limit, in bytes. */
const KEEP_AT_LEAST = 1024 * 1024;
const NEWLINE = new Uint8Array([10]);
const EMPTY = new Uint8Array(0);

/** Returned by a read step that needs more data. */
const WAIT: unique symbol = Symbol("wait");
/** What `readuntil()`'s `LimitOverrunError` tells the caller to do. */
const OVERRUN_ADVICE =
  "the bytes stay buffered: read error.consumed of them to get past them, or make the reader with a larger limit";
type Step<T> = () => T | typeof WAIT;

interface PendingRead {
  future: Future<unknown>;
  attempt: () => void;
  name: string;
}

/**
 * A read's future, counting who took its outcome: a task, a `gather()`,
 * `shield()` or `waitFor()` each adds a done callback or awaits it. The
 * bytes of a read go back only once every taker dropped them (tasks all
 * cancelled before they resumed); while one has them, they stay taken.
 */
class ReadFuture<T> extends Future<T> {
  takers = 0;
  drops = 0;
  /** Takes back the bytes of a result every taker dropped. */
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
}

/** Options for `StreamReader`. */
export interface StreamReaderOptions {
  /**
   * The buffer limit in bytes: the longest line or `readuntil()` chunk
   * (separator excluded), and half the size at which the transport is
   * paused.
   *
   * @default {65536}
   */
  limit?: number;
  /**
   * The loop the read futures are bound to.
   *
   * @default {the running loop, looked up at the first read}
   */
  loop?: SchedulingLoop;
}

function checkSeparators(separator: unknown): Uint8Array[] {
  const list = separator instanceof Uint8Array
    ? [separator]
    : Array.isArray(separator)
    ? [...separator]
    : null;
  if (list === null || list.some((s) => !(s instanceof Uint8Array))) {
    throw new TypeError(
      `Cannot call readuntil(): separator must be a Uint8Array or an array of them, received ${
        typeof separator === "string" ? "a string" : typeof separator
      }`,
    );
  }
  if (list.length === 0) {
    throw new RangeError(
      "Cannot call readuntil(): the list of separators must hold at least one, received an empty list",
    );
  }
  if (list.some((s) => s.length === 0)) {
    throw new RangeError(
      "Cannot call readuntil(): a separator must be at least one byte, received an empty one",
    );
  }
  return list.sort((a, b) => a.length - b.length);
}

/**
 * Finds `sep` in `buf[from, end)`; returns its index or -1.
 */
function find(
  buf: Uint8Array,
  sep: Uint8Array,
  from: number,
  end: number,
): number {
  const first = sep[0];
  const n = sep.length;
  const last = end - n;
  // Search the filled part only, not the buffer's spare capacity.
  const view = buf.subarray(0, end);
  let i = from;
  while (i <= last) {
    i = view.indexOf(first, i);
    if (i === -1 || i > last) return -1;
    let k = 1;
    while (k < n && buf[i + k] === sep[k]) k++;
    if (k === n) return i;
    i++;
  }
  return -1;
}

/**
 * Buffered reads from a stream: the application side of a connection
 * opened with `openConnection()` or accepted by `startServer()`.
 *
 * Every read returns a `Future`, so it works with `yield*` in a generator
 * coroutine and with `await` in an async function. Only one read may wait
 * at a time; a second one fails with `InvalidStateError`, as in asyncio.
 * A read waiting for data is woken as soon as data arrives. Cancelling its
 * task loses no bytes: a read whose task is cancelled after the bytes came,
 * but before it resumed with them, puts them back for the next read (as
 * asyncio leaves them buffered until its task resumes and takes them).
 *
 * `limit` bounds what a read may have to buffer: `readline()` and
 * `readuntil()` fail with `LimitOverrunError` when the separator is not
 * within `limit` bytes; and the transport is paused (`pauseReading()`)
 * while more than 2 × `limit` bytes are buffered, and resumed once at most
 * `limit` are (or when a read needs more).
 *
 * The protocol side — `StreamReaderProtocol`, or a test — feeds it with
 * `feedData()`, `feedEof()` and `setException()`.
 *
 * `for await (const line of reader)` iterates over the lines (each with
 * its `\n`) until the end of the stream, and `reader.readable` is a Web
 * `ReadableStream<Uint8Array>` of the same bytes, for `pipeTo`,
 * `TextDecoderStream` or `new Response(reader.readable)`.
 *
 * PEP 3156 (as in asyncio): `StreamReader`.
 *
 * @example Reading lines and exact sizes from fed data
 * ```ts
 * import { StreamReader } from "@tulip/tulip/streams";
 * import { newEventLoop } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const reader = new StreamReader({ loop });
 * const enc = new TextEncoder();
 * reader.feedData(enc.encode("HELLO 3\r\nabc"));
 * reader.feedEof();
 * const main = loop.createTask(async () => {
 *   const header = new TextDecoder().decode(await reader.readline());
 *   const body = await reader.readexactly(3);
 *   return [header, body.length, reader.atEof()];
 * });
 * assertEquals(await loop.runUntilComplete(main), ["HELLO 3\r\n", 3, true]);
 * loop.close();
 * ```
 *
 * @example Waiting in a generator coroutine
 * ```ts
 * import { StreamReader } from "@tulip/tulip/streams";
 * import { newEventLoop } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const reader = new StreamReader({ loop });
 * function* firstWord(): Coroutine<string> {
 *   const word = yield* reader.readuntil(new TextEncoder().encode(" "));
 *   return new TextDecoder().decode(word);
 * }
 * loop.callSoon(() => reader.feedData(new TextEncoder().encode("hi there")));
 * assertEquals(await loop.runUntilComplete(loop.createTask(firstWord())), "hi ");
 * loop.close();
 * ```
 */
export class StreamReader implements AsyncIterable<Uint8Array> {
  /** The buffer limit, in bytes (see the class description). */
  readonly limit: number;

  #loop: SchedulingLoop | null;
  #buf: Uint8Array = EMPTY;
  #start = 0;
  #end = 0;
  #eof = false;
  #exception: unknown = undefined;
  #hasException = false;
  #transport: ReadTransport | null = null;
  #paused = false;
  #pending: PendingRead | null = null;
  // Set while feedData() or feedEof() wakes a read: a verdict that drops
  // bytes (a separator not within the limit, an IncompleteReadError) is
  // then given on the loop's next turn (see #untilStep), and read(-1)
  // takes the bytes then, so a task cancelled in this turn leaves them
  // buffered, as asyncio's read does until its task resumes.
  #feeding = false;
  #retryLater = false;
  #readable: ReadableStream<Uint8Array> | null = null;
  // How many times bytes were consumed: a read's bytes go back only while
  // nothing was consumed after them.
  #consumed = 0;
  // The most buffer room kept once empty: ordinary traffic (up to the
  // pause at 2 × limit, and a read's worth more) reuses it.
  #keep: number;

  static {
    readerFriends.buffered = (reader) => reader.#end - reader.#start;
    readerFriends.capacity = (reader) => reader.#buf.length;
  }

  /**
   * Makes an empty reader.
   *
   * @param options The `limit` and the loop.
   * @throws {TypeError} When `options` is not an object, or its `loop` no
   * event loop.
   * @throws {RangeError} When `limit` is not a whole number > 0.
   */
  constructor(options?: StreamReaderOptions) {
    checkOptions(options, "make a StreamReader", "{ limit, loop }");
    const limit = options?.limit ?? DEFAULT_LIMIT;
    if (
      typeof limit !== "number" || !Number.isSafeInteger(limit) || limit <= 0
    ) {
      throw new RangeError(
        `Cannot make a StreamReader: limit must be a whole number > 0, received ${
          formatReceived(limit)
        }`,
      );
    }
    this.limit = limit;
    this.#keep = Math.max(4 * limit, KEEP_AT_LEAST);
    this.#loop = options?.loop ?? getRunningLoop();
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `StreamReader ${this.#describe()}`;
  }

  /** How Deno's `console.log` prints a reader. */
  [Symbol.for("Deno.customInspect")](): string {
    return `StreamReader ${this.#describe()}`;
  }

  /**
   * Returns the error set by `setException()`, or `undefined`.
   *
   * PEP 3156 (as in asyncio): `StreamReader.exception()`.
   *
   * @returns The error, if any.
   */
  exception(): unknown {
    return this.#exception;
  }

  /**
   * Returns `true` when the end of stream was fed and the buffer is empty:
   * nothing more will ever be read.
   *
   * PEP 3156 (as in asyncio): `StreamReader.at_eof()`.
   *
   * @returns Whether the stream is exhausted.
   */
  atEof(): boolean {
    return this.#eof && this.#end === this.#start;
  }

  /**
   * Sets the transport to pause and resume as the buffer fills and
   * drains. `StreamReaderProtocol` calls it once, on `connectionMade`.
   *
   * @param transport The connection's transport.
   * @throws {InvalidStateError} When a transport is already set.
   */
  setTransport(transport: ReadTransport): void {
    if (this.#transport !== null) {
      throw new InvalidStateError(
        "Cannot call setTransport(): the reader already has a transport",
      );
    }
    this.#transport = transport;
  }

  /**
   * Appends received bytes to the buffer and wakes a waiting read. Pauses
   * the transport when more than 2 × `limit` bytes are buffered.
   *
   * @param data The bytes received.
   * @throws {TypeError} When `data` is not a `Uint8Array`.
   * @throws {InvalidStateError} After `feedEof()`.
   */
  feedData(data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot call feedData(): data must be a Uint8Array, received ${
          data === null ? "null" : typeof data
        }`,
      );
    }
    if (this.#eof) {
      throw new InvalidStateError(
        "Cannot call feedData(): feedEof() was already called",
      );
    }
    if (data.length === 0) return;
    this.#append(data);
    this.#feeding = true;
    try {
      this.#wakeup();
    } finally {
      this.#feeding = false;
    }
    this.#maybePause();
  }

  /**
   * Marks the end of the stream and wakes a waiting read. Calling it
   * again does nothing.
   */
  feedEof(): void {
    this.#eof = true;
    this.#feeding = true;
    try {
      this.#wakeup();
    } finally {
      this.#feeding = false;
    }
  }

  /**
   * Makes every read — the waiting one, and any later one — fail with
   * `exc`. `StreamReaderProtocol` calls it when the connection is lost
   * with an error.
   *
   * @param exc The error.
   */
  setException(exc: unknown): void {
    this.#exception = exc;
    this.#hasException = true;
    this.#wakeup();
  }

  /**
   * Reads up to `n` bytes: as soon as any are buffered, at most `n` of
   * them; with `n < 0`, everything until the end of the stream. At the end
   * of the stream the result is empty.
   *
   * A `read(n)` that waits completes with the bytes of the first
   * `feedData()` that comes; more bytes fed in the same turn of the loop
   * stay buffered for the next read (asyncio's read, which takes the
   * bytes only when its task resumes, would return them too, up to `n`).
   *
   * `read(-1)` is not bounded by `limit` (as in asyncio): it holds all
   * the peer sends until the end, so against a peer that may not end,
   * read in pieces with `read(n)` instead.
   *
   * PEP 3156 (as in asyncio): `StreamReader.read()`.
   *
   * @param n The most bytes to read; negative for all.
   * @returns A future of the bytes (empty at the end of the stream).
   * @throws {TypeError} When `n` is not a whole number.
   */
  read(n = -1): Future<Uint8Array> {
    if (typeof n !== "number" || !Number.isInteger(n)) {
      throw new TypeError(
        `Cannot call read(): n must be a whole number, received ${
          formatReceived(n)
        }`,
      );
    }
    if (n === 0) return this.#empty("read");
    if (n > 0) {
      return this.#run("read", () => {
        this.#throwIfFailed();
        if (this.#end === this.#start && !this.#eof) return WAIT;
        return this.#take(Math.min(n, this.#end - this.#start));
      });
    }
    const blocks: Uint8Array[] = [];
    let total = 0;
    return this.#run("read", () => {
      this.#throwIfFailed();
      if (this.#end > this.#start) {
        if (this.#feeding && !this.#eof) {
          // As asyncio's read(-1), which takes them when its task resumes:
          // bytes fed in the turn its task is cancelled stay buffered.
          this.#retryLater = true;
          return WAIT;
        }
        const size = this.#end - this.#start;
        blocks.push(this.#take(size));
        total += size;
      }
      if (!this.#eof) return WAIT;
      return concatBytes(blocks, total);
    });
  }

  /**
   * Reads one line, up to and including `\n`. At the end of the stream it
   * returns the bytes left (an unterminated last line), then empty lines.
   *
   * PEP 3156 (as in asyncio): `StreamReader.readline()`.
   *
   * @returns A future of the line, `\n` included.
   * @throws {LimitOverrunError} (in the future) When no `\n` comes within
   * `limit` bytes. Unlike `readuntil()`, the over-long line is dropped
   * from the buffer first (up to its `\n` when it was seen, else all that
   * is buffered), so reading can go on. As in asyncio, the verdict waits
   * for the loop's next turn when it would come from data just fed, so
   * the pieces of a line that arrive together are dropped together.
   */
  readline(): Future<Uint8Array> {
    const step = this.#untilStep([NEWLINE], false);
    return this.#run("readline", () => {
      try {
        return step();
      } catch (e) {
        if (e instanceof IncompleteReadError) return e.partial;
        if (e instanceof LimitOverrunError) {
          const size = this.#end - this.#start;
          if (
            e.consumed < size && this.#buf[this.#start + e.consumed] === 10
          ) {
            this.#consume(e.consumed + 1);
          } else {
            this.#consume(size);
          }
          this.#maybeResume();
          throw new LimitOverrunError(
            `Cannot read a line: no \\n within limit=${this.limit} bytes; what was buffered of the line is dropped and reading can go on; for longer lines make the reader with a larger limit`,
            e.consumed,
          );
        }
        throw e;
      }
    });
  }

  /**
   * Reads until `separator` (or the first of several) and returns the
   * bytes up to and including it.
   *
   * With several separators, the shortest result that ends in any of them
   * wins.
   *
   * PEP 3156 (as in asyncio): `StreamReader.readuntil()`.
   *
   * @param separator The separator, or a list of them.
   * @returns A future of the bytes, separator included.
   * @throws {TypeError} When a separator is not a `Uint8Array`.
   * @throws {RangeError} When a separator is empty or the list is.
   * @throws {IncompleteReadError} (in the future) When the stream ends
   * first; its `partial` holds the bytes read, and the buffer is emptied.
   * @throws {LimitOverrunError} (in the future) When the separator is not
   * within `limit` bytes; the data stays buffered, and `consumed` says
   * how much to read to get past it.
   */
  readuntil(
    separator: Uint8Array | Uint8Array[] = NEWLINE,
  ): Future<Uint8Array> {
    const step = this.#untilStep(checkSeparators(separator));
    return this.#run("readuntil", step);
  }

  /**
   * Reads exactly `n` bytes.
   *
   * PEP 3156 (as in asyncio): `StreamReader.readexactly()`.
   *
   * @param n How many bytes.
   * @returns A future of the `n` bytes.
   * @throws {RangeError} When `n` is negative or not a whole number.
   * @throws {IncompleteReadError} (in the future) When the stream ends
   * first; its `partial` holds the bytes read.
   */
  readexactly(n: number): Future<Uint8Array> {
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(
        `Cannot call readexactly(): n must be a whole number >= 0, received ${
          formatReceived(n)
        }`,
      );
    }
    if (n === 0) return this.#empty("readexactly");
    return this.#run("readexactly", () => {
      this.#throwIfFailed();
      const size = this.#end - this.#start;
      if (size >= n) return this.#take(n);
      if (this.#eof) {
        if (this.#feeding) {
          this.#retryLater = true;
          return WAIT;
        }
        const partial = this.#take(size);
        throw new IncompleteReadError(partial, n);
      }
      return WAIT;
    });
  }

  /**
   * Iterates over the lines until the end of the stream:
   * `for await (const line of reader)`. Each line keeps its `\n`.
   *
   * PEP 3156 (as in asyncio): `StreamReader.__aiter__()`.
   *
   * @returns An async iterator of lines.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    while (true) {
      const line = await this.readline();
      if (line.length === 0) return;
      yield line;
    }
  }

  /**
   * A Web `ReadableStream` of the bytes this reader receives, for
   * `pipeTo`, `pipeThrough(new TextDecoderStream())` or
   * `new Response(reader.readable)`. Each pull is a `read(limit)`; the
   * stream closes at the end of the stream and errors with the reader's
   * error. Cancelling it cancels a pending pull. While it is being read,
   * do not call the reader's own read methods. The reader's loop must be
   * running for the stream to make progress.
   *
   * @example Decoding text through a `TextDecoderStream`
   * ```ts
   * import { StreamReader } from "@tulip/tulip/streams";
   * import { newEventLoop } from "@tulip/tulip";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = newEventLoop();
   * const reader = new StreamReader({ loop });
   * reader.feedData(new TextEncoder().encode("héllo"));
   * reader.feedEof();
   * const text = loop.createTask(() => new Response(reader.readable).text());
   * assertEquals(await loop.runUntilComplete(text), "héllo");
   * loop.close();
   * ```
   */
  get readable(): ReadableStream<Uint8Array> {
    if (this.#readable === null) {
      let pulling: Future<Uint8Array> | null = null;
      this.#readable = new ReadableStream<Uint8Array>({
        pull: async (controller) => {
          const future = pulling = this.read(this.limit);
          let chunk: Uint8Array;
          try {
            chunk = await future;
          } finally {
            pulling = null;
          }
          if (chunk.length === 0) controller.close();
          else controller.enqueue(chunk);
        },
        cancel: () => {
          pulling?.cancel();
        },
      }, { highWaterMark: 0 });
    }
    return this.#readable;
  }

  // ---- Reading machinery ----

  #getLoop(what: string): SchedulingLoop {
    const loop = this.#loop ?? getRunningLoop();
    if (loop === null) {
      throw new InvalidStateError(
        `Cannot call ${what}(): no event loop is running, received loop=undefined`,
      );
    }
    this.#loop = loop;
    return loop;
  }

  // A zero-byte read: done at once, without waiting (or the error).
  #empty(what: string): Future<Uint8Array> {
    const future = new Future<Uint8Array>({ loop: this.#getLoop(what) });
    if (this.#hasException) future.setException(this.#exception);
    else future.setResult(EMPTY);
    return future;
  }

  // Runs `step` now and again each time data, EOF or an error arrives,
  // until it returns something other than WAIT or throws.
  #run<T extends Uint8Array>(name: string, step: Step<T>): Future<T> {
    const loop = this.#getLoop(name);
    const pending = this.#pending;
    if (pending !== null && !pending.future.done()) {
      const refused = new Future<T>({ loop });
      refused.setException(
        new InvalidStateError(
          `Cannot call ${name}(): ${pending.name}() is already waiting for incoming data`,
        ),
      );
      return refused;
    }
    this.#pending = null;
    // A read that can finish now does, in a plain future: its task takes
    // the bytes on the spot.
    let now: T | typeof WAIT;
    try {
      now = step();
    } catch (e) {
      const failed = new Future<T>({ loop });
      failed.setException(e);
      return failed;
    }
    if (now !== WAIT) {
      const done = new Future<T>({ loop });
      done.setResult(now);
      return done;
    }
    // One that waits hands its bytes to a task in a later turn of the
    // loop, which a cancellation may come first: they come back then (see
    // TAKE_BACK), once, unless another taker has them.
    const future = new ReadFuture<T>({ loop });
    let retrying = false;
    // The consumption count once the read took its bytes (-1 once they
    // were given back).
    let consumed = -1;
    const settle = (result: T | typeof WAIT): void => {
      if (result === WAIT) {
        this.#pending = { future: future as Future<unknown>, attempt, name };
        if (this.#retryLater) {
          this.#retryLater = false;
          if (!retrying) {
            retrying = true;
            loop.callSoon(attempt);
          }
        }
        if (this.#paused) {
          // The buffer is full but this read needs more: let data in.
          this.#paused = false;
          this.#transport?.resumeReading();
        }
        return;
      }
      this.#pending = null;
      consumed = this.#consumed;
      future.setResult(result);
    };
    const attempt = (): void => {
      retrying = false;
      if (future.done()) {
        // Cancelled while waiting.
        if (this.#pending?.future === future) this.#pending = null;
        return;
      }
      let result: T | typeof WAIT;
      try {
        result = step();
      } catch (e) {
        this.#pending = null;
        future.setException(e);
        return;
      }
      settle(result);
    };
    settle(WAIT);
    future[TAKE_BACK] = (value) => {
      if (++future.drops < future.takers) return;
      const at = consumed;
      consumed = -1;
      this.#giveBack(value, at);
    };
    return future;
  }

  #wakeup(): void {
    this.#pending?.attempt();
  }

  #throwIfFailed(): void {
    if (this.#hasException) throw this.#exception;
  }

  #untilStep(separators: Uint8Array[], deferEnd = true): Step<Uint8Array> {
    const minLen = separators[0].length;
    const maxLen = separators[separators.length - 1].length;
    let offset = 0;
    return () => {
      this.#throwIfFailed();
      const buf = this.#buf;
      const start = this.#start;
      const size = this.#end - start;
      if (size - offset >= minLen) {
        let matchStart = -1;
        let matchEnd = -1;
        for (const sep of separators) {
          const at = find(buf, sep, start + offset, this.#end);
          if (at >= 0) {
            const end = at - start + sep.length;
            if (matchEnd < 0 || end < matchEnd) {
              matchEnd = end;
              matchStart = at - start;
            }
          }
        }
        if (matchEnd >= 0) {
          if (matchStart > this.limit) {
            // Decided on the next turn, as below: until then a cancelled
            // task leaves the line buffered (readline() drops it).
            if (this.#feeding) {
              this.#retryLater = true;
              return WAIT;
            }
            throw new LimitOverrunError(
              `Cannot read until separator: the separator is found, but the chunk is longer than limit=${this.limit} bytes; ${OVERRUN_ADVICE}`,
              matchStart,
            );
          }
          return this.#take(matchEnd);
        }
        const next = Math.max(0, size + 1 - maxLen);
        if (next > this.limit) {
          // Data fed in the same turn may still bring the separator, which
          // decides how much readline() drops: as in asyncio, where the
          // woken read looks again only once the loop gets to it.
          if (this.#feeding) {
            this.#retryLater = true;
            return WAIT;
          }
          throw new LimitOverrunError(
            `Cannot read until separator: the separator is not found within limit=${this.limit} bytes; ${OVERRUN_ADVICE}`,
            next,
          );
        }
        offset = next;
      }
      if (this.#eof) {
        // readline() returns these bytes: a cancelled task gives them back.
        if (this.#feeding && deferEnd) {
          this.#retryLater = true;
          return WAIT;
        }
        throw new IncompleteReadError(this.#take(size), null);
      }
      return WAIT;
    };
  }

  // ---- The buffer: bytes [start, end) of buf ----

  #append(data: Uint8Array): void {
    const n = data.length;
    const size = this.#end - this.#start;
    if (this.#end + n > this.#buf.length) {
      if (size + n <= this.#buf.length && this.#start >= size) {
        // The consumed prefix is at least as big as what is kept: moving
        // the kept bytes down costs no more than they cost to consume.
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const grown = new Uint8Array(
          Math.max(size + n, 2 * this.#buf.length, 1024),
        );
        grown.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = grown;
      }
      this.#start = 0;
      this.#end = size;
    }
    this.#buf.set(data, this.#end);
    this.#end += n;
  }

  #take(n: number): Uint8Array {
    if (n === 0) return EMPTY;
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#consume(n);
    this.#maybeResume();
    return out;
  }

  #consume(n: number): void {
    this.#consumed++;
    this.#start += n;
    const size = this.#end - this.#start;
    if (size === 0) {
      this.#start = this.#end = 0;
      // Emptied after a read bigger than ordinary traffic (readexactly()
      // of a large body): let it go, rather than hold it while idle.
      if (this.#buf.length > this.#keep) this.#buf = EMPTY;
    } else if (this.#buf.length > this.#keep && 4 * size <= this.#keep) {
      // The same, with a few bytes of the peer's next message left: they
      // move to a buffer of their size (as asyncio's bytearray shrinks).
      this.#buf = this.#buf.slice(this.#start, this.#end);
      this.#start = 0;
      this.#end = size;
    }
  }

  // Pauses the transport above 2 × limit, unless a read still waits: it
  // needs more than is buffered.
  #maybePause(): void {
    const transport = this.#transport;
    const pending = this.#pending;
    if (
      transport !== null && !this.#paused &&
      this.#end - this.#start > 2 * this.limit &&
      (pending === null || pending.future.done())
    ) {
      this.#paused = true;
      transport.pauseReading();
    }
  }

  // Puts back in front the bytes of a read whose task was cancelled before
  // it resumed, as asyncio's read leaves them buffered; unless bytes were
  // consumed since (a later read has them, and order would be lost).
  #giveBack(data: Uint8Array, consumed: number): void {
    if (data.length === 0 || consumed !== this.#consumed) return;
    const n = data.length;
    const size = this.#end - this.#start;
    if (this.#start >= n) {
      this.#start -= n;
    } else {
      const grown = new Uint8Array(Math.max(n + size, 1024));
      grown.set(this.#buf.subarray(this.#start, this.#end), n);
      this.#buf = grown;
      this.#start = 0;
      this.#end = n + size;
    }
    this.#buf.set(data, this.#start);
    this.#wakeup();
    this.#maybePause();
  }

  #maybeResume(): void {
    if (this.#paused && this.#end - this.#start <= this.limit) {
      this.#paused = false;
      this.#transport?.resumeReading();
    }
  }

  #describe(): string {
    const parts = [`${this.#end - this.#start} bytes`];
    if (this.#eof) parts.push("eof");
    if (this.limit !== DEFAULT_LIMIT) parts.push(`limit=${this.limit}`);
    if (this.#pending !== null && !this.#pending.future.done()) {
      parts.push(`waiting in ${this.#pending.name}()`);
    }
    if (this.#hasException) parts.push(`exception=${String(this.#exception)}`);
    if (this.#paused) parts.push("paused");
    return parts.join(" ");
  }
}
