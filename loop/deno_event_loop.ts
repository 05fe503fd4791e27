/**
 * `DenoEventLoop`: the event loop with I/O on Deno's sockets, TLS,
 * datagrams, subprocesses, signals and workers.
 *
 * @module
 */

import { BaseEventLoop } from "./base_event_loop.ts";

/**
 * The default event loop on Deno.
 *
 * PEP 3156: the default event loop implementation.
 *
 * @example
 * ```ts
 * import { DenoEventLoop } from "@tulip/tulip/loop";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new DenoEventLoop();
 * assertEquals(await loop.runUntilComplete(Promise.resolve(1)), 1);
 * loop.close();
 * ```
 */
export class DenoEventLoop extends BaseEventLoop {
  // ---- Streams: TCP, TLS, Unix sockets, servers (stream-transport helper) ----

  // ---- Datagrams, subprocesses, pipes, signals, names, executor (other helper) ----
}
