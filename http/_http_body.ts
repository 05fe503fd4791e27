/**
 * HTTP bodies as web streams, with flow control, for the HTTP server and
 * client: incoming ones queued for a reader ({@linkcode BodyQueue}), and
 * outgoing streamed ones written as the transport drains
 * ({@linkcode sendBodyStream}).
 *
 * @module
 */

import { formatReceived } from "../futures/errors.ts";
import { Deque } from "../futures/_runtime.ts";
import type { Transport } from "../transports/transport.ts";
import { chunkHeader, CRLF } from "./_http_serialize.ts";

/** Above this many queued bytes the owner is asked to stop reading. */
const HIGH_WATER = 64 * 1024;
/** At or below this many queued bytes the owner may read again. */
const LOW_WATER = 16 * 1024;
/**
 * Once `MANY_PIECES` pieces wait, pieces shorter than `SMALL_PIECE` are
 * queued copied together, in a buffer of `GATHER` bytes: held one by one,
 * a chunked body of one-byte chunks cost a view object per byte, ~100
 * times the bytes counted. Before that they are copied one by one: a piece
 * is a view of the transport's read buffer, which a small piece would pin.
 */
const MANY_PIECES = 64;
const SMALL_PIECE = 512;
const GATHER = 16 * 1024;

/** What a {@linkcode BodyQueue} tells the protocol that feeds it. */
export interface BodyQueueOwner {
  /** More than 64 KiB wait unread: stop reading the connection. */
  pauseBody(): void;
  /** The queue drained to 16 KiB or less: read again. */
  resumeBody(): void;
  /** The reader asked for body bytes for the first time. */
  firstRead(): void;
  /** The reader cancelled the stream; the rest of the body is unwanted. */
  bodyCancelled(): void;
  /** The reader took bytes of a body that holds it paused. */
  bodyRead?(): void;
}

/**
 * The body of one message as it arrives: pieces are queued until read,
 * and handed out through a `ReadableStream` made on first demand.
 *
 * The stream has no queue of its own (high-water mark 0), so the bytes
 * wait here, where they are counted: above 64 KiB the owner pauses its
 * transport, and resumes it when reads bring the queue down to 16 KiB.
 * Every piece is read in a buffer the reader may keep, change or transfer
 * (a byte stream's `enqueue()`, `structuredClone()` with a transfer list)
 * without touching any other bytes. A piece of 512 bytes or more that its
 * parser says is its own (it ends its buffer, whose earlier bytes nothing
 * refers to: a bulk upload's full reads) is handed out as given; any other
 * is copied: one that shares its buffer with the next message, a head, or
 * the transport's next read, and every smaller one (copied together when
 * many wait).
 */
export class BodyQueue {
  readonly #owner: BodyQueueOwner;
  #chunks = new Deque<Uint8Array>();
  #bytes = 0;
  /** Where small pieces are gathered, after those of `#chunks`. */
  #gather: Uint8Array | null = null;
  #gathered = 0;
  #ended = false;
  #failed = false;
  #error: unknown = undefined;
  #discarding = false;
  #cancelled = false;
  #paused = false;
  #readStarted = false;
  #wanted = false;
  #controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  #stream: ReadableStream<Uint8Array> | null = null;

  /**
   * Makes an empty queue.
   *
   * @param owner The protocol that feeds it.
   */
  constructor(owner: BodyQueueOwner) {
    this.#owner = owner;
  }

  /** `true` once the body is complete, failed, or discarded. */
  get finished(): boolean {
    return this.#ended || this.#failed || this.#discarding;
  }

  /** `true` once the reader has cancelled the stream. */
  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** The stream of the body, once made; else `null`. */
  get streamMade(): ReadableStream<Uint8Array> | null {
    return this.#stream;
  }

  /** `true` once the reader has asked for bytes. */
  get readStarted(): boolean {
    return this.#readStarted;
  }

  /** `true` while it holds its owner paused (over 64 KiB unread). */
  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Adds a piece of body.
   *
   * @param chunk The bytes, not empty; never changed afterwards.
   * @param own Whether nothing else refers to its buffer (the parser's
   * `onBody()` says), so that it may be handed out as it is; without it,
   * a piece is copied.
   */
  push(chunk: Uint8Array, own = false): void {
    if (this.#discarding || this.#ended || this.#failed) return;
    const n = chunk.length;
    const small = n < SMALL_PIECE;
    if (this.#wanted) {
      this.#wanted = false;
      this.#controller!.enqueue(small || !own ? chunk.slice() : chunk);
      return;
    }
    if (
      small && (this.#gathered > 0 || this.#chunks.length >= MANY_PIECES)
    ) {
      let gather = this.#gather;
      if (gather === null || this.#gathered + n > GATHER) {
        this.#flushGathered();
        gather = this.#gather ??= new Uint8Array(GATHER);
      }
      gather.set(chunk, this.#gathered);
      this.#gathered += n;
    } else {
      this.#flushGathered();
      this.#chunks.push(small || !own ? chunk.slice() : chunk);
    }
    this.#bytes += n;
    if (!this.#paused && this.#bytes > HIGH_WATER) {
      this.#paused = true;
      this.#owner.pauseBody();
    }
  }

  /** The body is complete. */
  end(): void {
    if (this.#ended || this.#failed) return;
    this.#ended = true;
    if (this.#wanted) {
      this.#wanted = false;
      this.#controller!.close();
    }
  }

  /**
   * Stops holding the owner paused for a body that has ended: its bytes
   * have all come, so no more can queue up; what is queued stays for the
   * reader.
   */
  release(): void {
    if (!this.#ended || !this.#paused) return;
    this.#paused = false;
    this.#owner.resumeBody();
  }

  /**
   * The body cannot be completed: the reader gets `error`.
   *
   * @param error Why.
   */
  fail(error: unknown): void {
    if (this.#ended || this.#failed) return;
    this.#failed = true;
    this.#error = error;
    this.#clear();
    if (this.#controller !== null) {
      this.#wanted = false;
      try {
        this.#controller.error(error);
      } catch {
        // The stream was cancelled or closed already.
      }
    }
  }

  /**
   * Drops what is queued and what is still to come (the message is being
   * skipped); a reader still holding the stream gets `error`.
   *
   * @param error What a late reader gets.
   */
  discard(error: unknown): void {
    if (this.#discarding) return;
    const wasDone = this.#ended && this.#bytes === 0;
    this.#discarding = true;
    this.#clear();
    if (wasDone || this.#failed) return;
    // A reader that comes later gets the error too, not an empty body (or
    // a read that never ends).
    this.#failed = true;
    this.#error = error;
    if (this.#controller !== null) {
      this.#wanted = false;
      try {
        this.#controller.error(error);
      } catch {
        // The stream was cancelled or closed already.
      }
    }
  }

  /**
   * Returns the stream of the body; the same one on every call.
   *
   * @returns The stream.
   */
  stream(): ReadableStream<Uint8Array> {
    return this.#stream ??= new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        if (this.#failed) controller.error(this.#error);
      },
      pull: (controller) => this.#pull(controller),
      cancel: () => {
        this.#wanted = false;
        this.#cancelled = true;
        this.#discarding = true;
        this.#clear();
        this.#owner.bodyCancelled();
      },
    }, { highWaterMark: 0 });
  }

  #pull(controller: ReadableStreamDefaultController<Uint8Array>): void {
    if (!this.#readStarted) {
      this.#readStarted = true;
      this.#owner.firstRead();
    }
    if (this.#chunks.length === 0) this.#flushGathered();
    const chunk = this.#chunks.shift();
    if (chunk !== undefined) {
      this.#bytes -= chunk.length;
      controller.enqueue(chunk);
      // An ended body too: reading was paused for it, and stays paused
      // until it is read (a client's next response comes behind it).
      if (this.#paused) {
        if (this.#bytes <= LOW_WATER) {
          this.#paused = false;
          this.#owner.resumeBody();
        } else this.#owner.bodyRead?.();
      }
      if (this.#ended && this.#bytes === 0) controller.close();
      return;
    }
    if (this.#ended) controller.close();
    else if (!this.#failed && !this.#discarding) this.#wanted = true;
  }

  /** Queues the small pieces gathered so far as one. */
  #flushGathered(): void {
    const n = this.#gathered;
    if (n === 0) return;
    const gather = this.#gather!;
    this.#gathered = 0;
    if (n === gather.length) {
      this.#gather = null;
      this.#chunks.push(gather);
    } else this.#chunks.push(gather.slice(0, n));
  }

  #clear(): void {
    this.#chunks.clear();
    this.#gather = null;
    this.#gathered = 0;
    this.#bytes = 0;
    if (this.#paused) {
      this.#paused = false;
      this.#owner.resumeBody();
    }
  }
}

const LAST_CHUNK = new TextEncoder().encode("0\r\n\r\n");

/** Whether a comma-separated header value lists `token`, ignoring case. */
export function listsToken(value: string, token: string): boolean {
  for (const part of value.split(",")) {
    if (part.trim().toLowerCase() === token) return true;
  }
  return false;
}

/** Names the type of a value for an error message. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") {
    return (value as object).constructor?.name ?? "object";
  }
  return typeof value;
}

/** Where {@linkcode sendBodyStream} writes a body, and what it reports. */
export interface BodySink {
  /** `"request"` or `"response"`, for error messages. */
  readonly what: string;
  /** Frame the body in chunks (else write it as it comes). */
  readonly chunked: boolean;
  /** The body's declared length in bytes, or -1 when unknown. */
  readonly length: number;
  /** Whether the message still owns the connection; once not, sending stops. */
  sending(): boolean;
  /** A promise that settles when writing may go on, or `null` if it may now. */
  drained(): Promise<void> | null;
  /** The transport, while `sending()`. */
  transport(): Transport;
  /** The whole body is written. */
  finished(): void;
  /** The body could not be sent (bad chunk, wrong length, stream error). */
  failed(error: unknown): void;
  /**
   * Given, once sending starts, a function that cancels the stream with a
   * reason — even while it waits on its producer — and ends the sending
   * quietly; for when the connection is lost.
   */
  stoppable?(stop: (reason: unknown) => void): void;
}

/**
 * Writes a streamed body, waiting while the transport's buffer is full.
 * It stops quietly (cancelling the stream) once the sink is no longer
 * sending, and reports to the sink when the body is written or fails.
 *
 * @param stream The body.
 * @param sink Where it goes.
 */
export async function sendBodyStream(
  stream: ReadableStream<Uint8Array>,
  sink: BodySink,
): Promise<void> {
  const { what, chunked, length } = sink;
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  try {
    const locked = reader = stream.getReader();
    sink.stoppable?.((reason) => {
      locked.cancel(reason).catch(() => {});
    });
    let sent = 0;
    for (;;) {
      const drained = sink.drained();
      if (drained !== null) await drained;
      if (!sink.sending()) {
        await reader.cancel();
        return;
      }
      const { done, value } = await reader.read();
      if (!sink.sending()) {
        if (!done) await reader.cancel();
        return;
      }
      if (done) break;
      if (!(value instanceof Uint8Array)) {
        throw new TypeError(
          `Cannot send the HTTP ${what} body: each chunk must be a Uint8Array, received ${
            describe(value)
          }`,
        );
      }
      const n = value.length;
      if (n === 0) continue;
      sent += n;
      if (length >= 0 && sent > length) {
        throw new RangeError(
          `Cannot send the HTTP ${what} body: it is longer than its length, received more than ${length} bytes`,
        );
      }
      const transport = sink.transport();
      if (chunked) transport.writelines([chunkHeader(n), value, CRLF]);
      else transport.write(value);
    }
    if (length >= 0 && sent !== length) {
      throw new RangeError(
        `Cannot send the HTTP ${what} body: it is shorter than its length ${length}, received ${sent} bytes`,
      );
    }
    if (chunked) sink.transport().write(LAST_CHUNK);
    sink.finished();
  } catch (error) {
    reader?.cancel(error).catch(() => {});
    sink.failed(error);
  }
}

/**
 * Checks a timeout option: a number of seconds above 0 (`Infinity` for
 * none).
 *
 * @param what What could not be done: `"make an HttpServerProtocol"`.
 * @param name The option's name.
 * @param value The value given.
 * @returns The value.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is not above 0.
 */
export function checkSeconds(
  what: string,
  name: string,
  value: unknown,
): number {
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(
      `Cannot ${what}: ${name} must be a number of seconds, received ${
        Number.isNaN(value) ? "NaN" : describe(value)
      }`,
    );
  }
  if (!(value > 0)) {
    throw new RangeError(
      `Cannot ${what}: ${name} must be > 0, received ${formatReceived(value)}`,
    );
  }
  return value;
}
