/**
 * The completion facade (the async-facade proposal): an `AsyncEngine`
 * whose calls all return at once and report to a callback object — its
 * `success`, its `failure`, or a `TimeoutError` after its `timeout` —
 * and give it a `cancel` function. It is built on the loop and the
 * streams: each call is a task using `openConnection`, `startServer`,
 * `StreamReader`, `StreamWriter` and `timeout()`.
 *
 * Besides reads of sizes, separators and lines, three calls wait for
 * text: `readUntilRegex(conn, /login: $/, cb)` reads until a pattern
 * matches, `readUntilLineglob(conn, "Done in * s", cb)` reads lines until
 * one matches a shell-style glob, and
 * `acceptThenExpectMultilineRegex(listener, /^250 .*$/, [cb1, cb2])`
 * accepts a connection and reads whole lines until they match. Each takes
 * time linear in what it reads and stops at the connection's read limit.
 * `submitWork(workerFunction(moduleUrl, "name"), args, cb)` runs a
 * module's export in a worker.
 *
 * ```ts
 * import { AsyncEngine } from "@tulip/tulip/facade";
 * import { assertEquals } from "@std/assert";
 *
 * const engine = new AsyncEngine();
 * const log: string[][] = [];
 * const fail = (e: unknown) => log.push([`failed: ${e}`]);
 * engine.listen("127.0.0.1", 0, {
 *   failure: fail,
 *   success(listener) {
 *     const { port } = listener.addresses()[0] as Deno.NetAddr;
 *     engine.acceptThenWrite(listener, "building\nDone in 2 s\n", [
 *       { success: () => listener.close(), failure: fail },
 *       { success: () => {}, failure: fail },
 *     ]);
 *     engine.connect("127.0.0.1", port, {
 *       failure: fail,
 *       success(conn) {
 *         engine.readUntilLineglob(conn, "Done in * s", {
 *           success: (lines) => log.push(lines),
 *           failure: fail,
 *           timeout: 10,
 *         });
 *       },
 *     });
 *   },
 * });
 * await engine.run(); // until nothing is pending
 * assertEquals(log, [["building", "Done in 2 s"]]);
 * await engine.close(); // closes the connections and the engine's loop
 * ```
 *
 * @module
 */

export * from "./async_engine.ts";
export * from "./connection.ts";
export * from "./listener.ts";
export * from "./unexpected_line_error.ts";
