/**
 * tulip: PEP 3156's asynchronous I/O for Deno — a pluggable event loop,
 * futures, tasks (generator and async-function coroutines), transports and
 * protocols.
 *
 * ```ts
 * import { run, sleep } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * function* countdown(n: number): Coroutine<string> {
 *   while (n > 0) {
 *     yield* sleep(0.001);
 *     n--;
 *   }
 *   return "liftoff";
 * }
 * assertEquals(await run(countdown(3)), "liftoff");
 * ```
 *
 * @module
 */

export * from "./facade/mod.ts";
export * from "./futures/mod.ts";
export * from "./http/mod.ts";
export * from "./jsonrpc/mod.ts";
export * from "./loop/mod.ts";
export * from "./protocols/mod.ts";
export * from "./streams/mod.ts";
export * from "./tasks/mod.ts";
export * from "./testing/mod.ts";
export * from "./transports/mod.ts";
