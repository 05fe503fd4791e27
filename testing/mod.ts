/**
 * Testing helpers: a loop with a virtual clock, in-memory transports that
 * join two protocols without sockets, a deterministic simulation of whole
 * systems of hosts (`Simulation`, `simulate`), and `loopTest`, a
 * `Deno.test` that fails on what its body leaves behind.
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

export * from "./loop_test.ts";
export * from "./simulation.ts";
export * from "./transport_pair.ts";
export * from "./virtual_time_loop.ts";
