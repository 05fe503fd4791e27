/**
 * Tasks and coroutines: drive generator functions and async functions on
 * the loop, wait for several things at once, and coordinate them.
 *
 * ```ts
 * import { gather, run, sleep } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const both = await run(async () => await gather([sleep(0.002, "a"), sleep(0.001, "b")]));
 * assertEquals(both, ["a", "b"]);
 * ```
 *
 * @module
 */

export * from "./sleep.ts";
export * from "./task.ts";
