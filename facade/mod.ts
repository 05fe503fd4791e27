/**
 * The completion facade (the async-facade proposal): an `AsyncEngine`
 * whose calls all return at once and report to a callback object — its
 * `success`, its `failure`, or a `TimeoutError` after its `timeout` —
 * and give it a `cancel` function. It is built on the loop and the
 * streams: each call is a task using `openConnection`, `startServer`,
 * `StreamReader`, `StreamWriter` and `timeout()`.
 *
 * ```ts
 * import { AsyncEngine, type Connection } from "@tulip/tulip/facade";
 * import { assertEquals } from "@std/assert";
 *
 * const engine = new AsyncEngine();
 * const log: string[] = [];
 * const fail = (e: unknown) => log.push(`failed: ${e}`);
 * engine.listen("127.0.0.1", 0, {
 *   failure: fail,
 *   success(listener) {
 *     const { port } = listener.addresses()[0] as Deno.NetAddr;
 *     engine.acceptThenWrite(listener, "hello\n", [
 *       { success: () => listener.close(), failure: fail },
 *       { success: () => {}, failure: fail },
 *     ]);
 *     engine.connectThenExpectLine("127.0.0.1", port, "hello", [
 *       { success: () => {}, failure: fail },
 *       { success: (line) => log.push(line), failure: fail, timeout: 10 },
 *     ]);
 *   },
 * });
 * await engine.run(); // until nothing is pending
 * assertEquals(log, ["hello"]);
 * await engine.close(); // closes the connections and the engine's loop
 * ```
 *
 * @module
 */

export * from "./async_engine.ts";
export * from "./connection.ts";
export * from "./listener.ts";
export * from "./unexpected_line_error.ts";
