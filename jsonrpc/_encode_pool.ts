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
let slab = new Uint8Array(0);
let at = 0;

/**
 * `text` encoded as UTF-8, followed by a newline when `newline` is true;
 * the bytes are never written again.
 */
export function encodeMessage(text: string, newline: boolean): Uint8Array {
  if (text.length > POOLED_MAX) {
    return encoder.encode(newline ? text + "\n" : text);
  }
  const extra = newline ? 1 : 0;
  let { read, written } = encoder.encodeInto(
    text,
    slab.subarray(at, Math.max(at, slab.length - extra)),
  );
  if (read < text.length) {
    // The rest of this slab is too small: leave it to its views. A new
    // slab holds any pooled message (3 bytes per code unit at most).
    slab = new Uint8Array(SLAB_BYTES);
    at = 0;
    ({ read, written } = encoder.encodeInto(text, slab));
  }
  const start = at;
  at += written;
  if (newline) slab[at++] = 0x0a;
  return slab.subarray(start, at);
}
