/**
 * Testing helpers: a loop with a virtual clock, and in-memory transports
 * that join two protocols without sockets.
 *
 * ```ts
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { sleep } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * await loop.runUntilComplete(sleep(3600, undefined, { loop }));
 * assertEquals(loop.time(), 3600);
 * loop.close();
 * ```
 *
 * @module
 */

export * from "./transport_pair.ts";
export * from "./virtual_time_loop.ts";
export * from "./simulation.ts";
export * from "./loop_test.ts";
