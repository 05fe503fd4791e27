// Helpers for the datagram, subprocess, signal, name and executor tests.

import type { Future } from "../../futures/future.ts";
import { ensureFuture } from "../../tasks/task.ts";
import type { Awaitable } from "../../tasks/task.ts";
import type { DenoEventLoop } from "../../loop/deno_event_loop.ts";

/**
 * Runs the loop until `aw` is done, but gives up (cancelling it) after
 * `seconds` of real time, so that a broken test fails instead of hanging.
 * The bound is a guard, never an assertion about speed.
 */
export async function within<T>(
  loop: DenoEventLoop,
  aw: Awaitable<T>,
  seconds = 20,
): Promise<T> {
  const future: Future<T> = ensureFuture(aw, { loop });
  const guard = loop.callLater(
    seconds,
    () => future.cancel(`Test gave up after ${seconds} seconds`),
  );
  try {
    return await loop.runUntilComplete(future);
  } finally {
    guard.cancel();
  }
}

/** Encodes text as UTF-8 bytes. */
export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Decodes UTF-8 bytes. */
export function text(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}
