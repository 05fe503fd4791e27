import type { SchedulingLoop } from "../loop/event_loop.ts";

// Encoding outgoing JSON-RPC messages into slices of shared slabs, as
// Node's Buffer pool does: a small message is encoded into the unused rest
// of the current slab and written as a view of it, so a stream of answers
// costs one allocation per slab instead of one (and one malloc'd backing
// store) per message. With 100 connections answering 100,000 calls in a
// burst, per-message buffers were 100 MiB passing through malloc, freed
// only when the collector got to them and not given back to the system.
//
// A view's bytes never change: a slab is only ever written past its last
// view, and a full slab is left to the views still using it. A view held
// by a stuck connection's write buffer pins at most one slab.

/** The size of a slab, in bytes. */
export const SLAB_BYTES = 16 * 1024;
/** Messages longer than this (in UTF-16 code units) get a buffer of their own. */
export const POOLED_MAX = 4 * 1024;

const encoder = new TextEncoder();

// One pool per loop (the connections of a loop share its slabs), made on
// first use: no state outlives its loop.
const pools = new WeakMap<SchedulingLoop, EncodePool>();

/** The slabs that outgoing messages are encoded into. */
export class EncodePool {
  #slab = new Uint8Array(0);
  #at = 0;

  /**
   * The pool of `loop`; a pool of its own when there is no loop.
   *
   * @param loop The loop whose connections share the pool.
   * @returns The pool.
   */
  static of(loop: SchedulingLoop | null): EncodePool {
    if (loop === null) return new EncodePool();
    let pool = pools.get(loop);
    if (pool === undefined) {
      pool = new EncodePool();
      pools.set(loop, pool);
    }
    return pool;
  }

  /**
   * `text` encoded as UTF-8, followed by a newline when `newline` is true;
   * the bytes are never written again.
   */
  encode(text: string, newline: boolean): Uint8Array {
    if (text.length > POOLED_MAX) {
      return encoder.encode(newline ? text + "\n" : text);
    }
    const extra = newline ? 1 : 0;
    let { read, written } = encoder.encodeInto(
      text,
      this.#slab.subarray(
        this.#at,
        Math.max(this.#at, this.#slab.length - extra),
      ),
    );
    if (read < text.length || this.#at + written + extra > this.#slab.length) {
      // The rest of this slab is too small: leave it to its views. A new
      // slab holds any pooled message (3 bytes per code unit at most).
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#at = 0;
      ({ read, written } = encoder.encodeInto(text, this.#slab));
    }
    const start = this.#at;
    this.#at += written;
    if (newline) this.#slab[this.#at++] = 0x0a;
    return this.#slab.subarray(start, this.#at);
  }
}
