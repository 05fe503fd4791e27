/**
 * The event loop: scheduling (`BaseEventLoop`), I/O on Deno
 * (`DenoEventLoop`), the policy functions, `run()`, and `serveWorkers()`
 * for serving from every core.
 *
 * ```ts
 * import { run } from "@tulip/tulip/loop";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(await run(async () => "hello"), "hello");
 * ```
 *
 * @module
 */

export * from "./base_event_loop.ts";
export * from "./deno_event_loop.ts";
export * from "./deno_serve_workers.ts";
export * from "./event_loop.ts";
export * from "./handle.ts";
export * from "./policy.ts";
export * from "./run.ts";
export * from "./worker_executor.ts";
