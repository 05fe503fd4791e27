// MessageQueue: the messages JsonRpcProtocol received while it could not
// serve them, in order. Their bytes go into one buffer, appended end to
// end, with one length per message: a message costs its bytes and a
// number, not two objects and a backing store of its own, which matters
// when a burst of small calls waits (100 clients x 1,000 calls made
// 20 MiB of short-lived objects that outlived the young generation).
//
// The bytes a view returned by shift() shows never change: the buffer is
// only appended to, growing copies what is still queued into a new
// buffer, and an emptied queue drops its buffer.

import { Deque } from "../futures/_runtime.ts";

/** The first buffer's size, in bytes. */
export const FIRST_BUFFER = 4 * 1024;

const EMPTY = new Uint8Array(0);

/** A FIFO of byte messages stored end to end in one buffer. */
export class MessageQueue {
  #buf: Uint8Array = EMPTY;
  #start = 0;
  #end = 0;
  #lengths = new Deque<number>();

  /** How many messages are queued. */
  get length(): number {
    return this.#lengths.length;
  }

  /** The size of the buffer the queue holds, in bytes (0 when empty). */
  get capacity(): number {
    return this.#buf.length;
  }

  /** Appends a copy of `data`. */
  push(data: Uint8Array): void {
    const n = data.length;
    if (this.#end + n > this.#buf.length) this.#grow(n);
    this.#buf.set(data, this.#end);
    this.#end += n;
    this.#lengths.push(n);
  }

  /**
   * Takes the oldest message: a view that stays as it is (the queue
   * never writes where a message was).
   */
  shift(): Uint8Array | undefined {
    const n = this.#lengths.shift();
    if (n === undefined) return undefined;
    const view = this.#buf.subarray(this.#start, this.#start + n);
    this.#start += n;
    if (this.#lengths.length === 0) this.clear();
    return view;
  }

  /** Drops every message and the buffer. */
  clear(): void {
    this.#buf = EMPTY;
    this.#start = 0;
    this.#end = 0;
    this.#lengths.clear();
  }

  // A new buffer, at least twice what is queued plus `n`, with what is
  // queued copied to its front: sized by what is queued now, not by the
  // old buffer, so a burst's buffer goes even if the queue never empties.
  #grow(n: number): void {
    const queued = this.#end - this.#start;
    let size = FIRST_BUFFER;
    while (size < 2 * queued + n) size *= 2;
    const buf = new Uint8Array(size);
    buf.set(this.#buf.subarray(this.#start, this.#end));
    this.#buf = buf;
    this.#start = 0;
    this.#end = queued;
  }
}
