/**
 * Incoming HTTP bodies as web streams, with flow control, for the HTTP
 * server (request bodies) and client (response bodies).
 *
 * @module
 */

/** Above this many queued bytes the owner is asked to stop reading. */
const HIGH_WATER = 64 * 1024;
/** At or below this many queued bytes the owner may read again. */
const LOW_WATER = 16 * 1024;

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
}

/**
 * The body of one message as it arrives: pieces are queued until read,
 * and handed out through a `ReadableStream` made on first demand.
 *
 * The stream has no queue of its own (high-water mark 0), so the bytes
 * wait here, where they are counted: above 64 KiB the owner pauses its
 * transport, and resumes it when reads bring the queue down to 16 KiB.
 * Pieces are handed out as given, without copying; they must not be
 * changed afterwards (the transports never reuse what they deliver).
 */
export class BodyQueue {
  readonly #owner: BodyQueueOwner;
  #chunks: Uint8Array[] = [];
  #head = 0;
  #bytes = 0;
  #ended = false;
  #failed = false;
  #error: unknown = undefined;
  #discarding = false;
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

  /** `true` once the reader has asked for bytes. */
  get readStarted(): boolean {
    return this.#readStarted;
  }

  /**
   * Adds a piece of body.
   *
   * @param chunk The bytes, not empty.
   */
  push(chunk: Uint8Array): void {
    if (this.#discarding || this.#ended || this.#failed) return;
    if (this.#wanted) {
      this.#wanted = false;
      this.#controller!.enqueue(chunk);
      return;
    }
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
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
    if (this.#controller !== null && !wasDone && !this.#failed) {
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
    const chunks = this.#chunks;
    if (this.#head < chunks.length) {
      const chunk = chunks[this.#head];
      chunks[this.#head++] = undefined as never;
      if (this.#head === chunks.length) {
        chunks.length = 0;
        this.#head = 0;
      }
      this.#bytes -= chunk.length;
      controller.enqueue(chunk);
      if (this.#ended && this.#bytes === 0) controller.close();
      else if (this.#paused && this.#bytes <= LOW_WATER) {
        this.#paused = false;
        this.#owner.resumeBody();
      }
      return;
    }
    if (this.#ended) controller.close();
    else if (!this.#failed && !this.#discarding) this.#wanted = true;
  }

  #clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#bytes = 0;
    if (this.#paused) {
      this.#paused = false;
      this.#owner.resumeBody();
    }
  }
}
