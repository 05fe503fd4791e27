/**
 * A queue of bytes waiting to be sent, for transports that send in pieces
 * of their own size (an in-memory pair, a simulated TCP segment).
 *
 * @module
 */

const EMPTY = new Uint8Array(0);

/**
 * A first-in, first-out queue of byte buffers that hands out any number of
 * bytes at a time, across buffer boundaries.
 *
 * `push()` keeps a reference to the buffer (copy first if the caller may
 * reuse it); `take(n)` returns a view when the bytes lie in one buffer and
 * a new buffer otherwise. Consumed buffers are dropped as the head moves,
 * so a long-lived queue holds only what is still unsent.
 *
 * PEP 3156: the write buffer behind `get_write_buffer_size()`.
 *
 * @example Taking bytes across pushes
 * ```ts
 * import { WriteBuffer } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * const buffer = new WriteBuffer();
 * buffer.push(new Uint8Array([1, 2]));
 * buffer.push(new Uint8Array([3]));
 * assertEquals(buffer.take(3), new Uint8Array([1, 2, 3]));
 * assertEquals(buffer.size, 0);
 * ```
 */
export class WriteBuffer {
  #pieces: Uint8Array[] = [];
  #head = 0;
  #offset = 0;
  #size = 0;

  /**
   * The bytes queued, not yet taken.
   *
   * @returns The count, in bytes.
   */
  get size(): number {
    return this.#size;
  }

  /**
   * Queues `data` after what is queued.
   *
   * @param data The bytes; the queue keeps a reference.
   */
  push(data: Uint8Array): void {
    this.#pieces.push(data);
    this.#size += data.length;
  }

  /**
   * Removes and returns the first `n` bytes.
   *
   * @param n How many bytes, at most `size`.
   * @returns The bytes: a view when they lie in one pushed buffer.
   * @throws {RangeError} When `n` is more than `size`.
   */
  take(n: number): Uint8Array {
    if (n > this.#size) {
      throw new RangeError(
        `Cannot take from the write buffer: n must be <= size, received n=${n} size=${this.#size}`,
      );
    }
    if (n <= 0) return new Uint8Array(0);
    const first = this.#pieces[this.#head];
    this.#size -= n;
    if (first.length - this.#offset >= n) {
      const out = first.subarray(this.#offset, this.#offset + n);
      this.#offset += n;
      if (this.#offset === first.length) this.#next();
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      // #next() may compact the array: read it afresh each time.
      const piece = this.#pieces[this.#head];
      const k = Math.min(piece.length - this.#offset, n - filled);
      out.set(piece.subarray(this.#offset, this.#offset + k), filled);
      filled += k;
      this.#offset += k;
      if (this.#offset === piece.length) this.#next();
    }
    return out;
  }

  /** Drops everything queued. */
  clear(): void {
    this.#pieces = [];
    this.#head = 0;
    this.#offset = 0;
    this.#size = 0;
  }

  #next(): void {
    this.#offset = 0;
    // Sent: let go of it now, not when the array is next compacted.
    this.#pieces[this.#head] = EMPTY;
    this.#head++;
    // Compact once the consumed head is most of the array.
    if (this.#head > 64 && this.#head * 2 > this.#pieces.length) {
      this.#pieces = this.#pieces.slice(this.#head);
      this.#head = 0;
    }
  }
}

/**
 * Joins byte pieces into one buffer, as a transport gathers queued writes
 * (or a reader the blocks of a line) into one; a single piece is returned
 * as is, not copied.
 *
 * @param parts The pieces, in order.
 * @param size Their total length in bytes (the caller has counted it).
 * @returns The joined bytes.
 *
 * @example Gathering two writes
 * ```ts
 * import { concatBytes } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * const parts = [new Uint8Array([1, 2]), new Uint8Array([3])];
 * assertEquals(concatBytes(parts, 3), new Uint8Array([1, 2, 3]));
 * ```
 */
export function concatBytes(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
