/**
 * Friend accessors of `StreamReader` for the rest of `streams/` (the
 * pattern is described in `loop/_handle.ts`). Private: not exported from
 * any `mod.ts`.
 *
 * @module
 */

import type { StreamReader } from "./stream_reader.ts";

/** Internals of `StreamReader`, set by its `static {}` block. */
export const readerFriends: {
  /** How many bytes the reader holds that no read has taken yet. */
  buffered: (reader: StreamReader) => number;
  /** How many bytes the reader's buffer holds room for (for tests). */
  capacity: (reader: StreamReader) => number;
} = {
  buffered: () => 0,
  capacity: () => 0,
};
