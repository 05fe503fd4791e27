/**
 * tulip's `JsonRpcProtocol` over TCP (one JSON text per line) for the soak
 * suite.
 *
 * ```sh
 * deno run -A bench/soak/servers/jsonrpc.ts --port=0 --max-batch=1000 \
 *   --max-concurrent-calls=64
 * ```
 *
 * Every argument is optional. Methods: `echo(x)` → x; `blob(n)` → a string
 * of n bytes (at most 1 MiB); `sleep(ms)` → `"slept"` after ms.
 *
 * Prints `listening <port>`; SIGTERM shuts it down (see `_serve.ts`).
 *
 * @module
 */

import { JsonRpcProtocol } from "../../../mod.ts";
import type { JsonRpcMethods, JsonRpcProtocolOptions } from "../../../mod.ts";
import { Args, serve } from "./_serve.ts";

/** The options this script sets; one left out keeps the protocol's default. */
type Options = Pick<JsonRpcProtocolOptions, "maxBatch" | "maxConcurrentCalls">;

const args = new Args(Deno.args);
const options: Options = {};
const maxBatch = args.number("max-batch");
if (maxBatch !== undefined) options.maxBatch = maxBatch;
const maxConcurrentCalls = args.number("max-concurrent-calls");
if (maxConcurrentCalls !== undefined) {
  options.maxConcurrentCalls = maxConcurrentCalls;
}

const methods: JsonRpcMethods = {
  echo: ([x]: unknown[]) => x,
  blob: ([n]: number[]) => "x".repeat(Math.min(Number(n) || 0, 1 << 20)),
  sleep: ([ms]: number[]) =>
    new Promise((resolve) => setTimeout(() => resolve("slept"), ms)),
};

await serve(args, () => new JsonRpcProtocol(methods, options));
