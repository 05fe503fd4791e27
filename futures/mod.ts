/**
 * Futures: results that are not there yet, usable with `yield*` in
 * generator coroutines and with `await` in async functions.
 *
 * ```ts
 * import { newEventLoop } from "@tulip/tulip";
 * import { CancelledError } from "@tulip/tulip/futures";
 * import { assertRejects } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const fut = loop.createFuture<number>();
 * loop.callSoon(() => fut.cancel());
 * await assertRejects(() => loop.runUntilComplete(fut), CancelledError);
 * loop.close();
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export * from "./future.ts";
export * from "./running_loop.ts";
export * from "./wrap_future.ts";
