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

export * from "./as_completed.ts";
export * from "./awaitable_result.ts";
export * from "./barrier.ts";
export * from "./condition.ts";
export * from "./event.ts";
export * from "./gather.ts";
export * from "./lock.ts";
export * from "./queue.ts";
export * from "./semaphore.ts";
export * from "./shield.ts";
export * from "./sleep.ts";
export * from "./task.ts";
export * from "./task_group.ts";
export * from "./timeout.ts";
export * from "./wait.ts";
export * from "./wait_for.ts";
