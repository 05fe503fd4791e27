/**
 * tulip's `HttpServerProtocol` for the soak suite.
 *
 * ```sh
 * deno run -A bench/soak/servers/http.ts --port=0 --keep-alive-timeout=60 \
 *   --headers-timeout=2 --request-timeout=4 --write-timeout=5 --grace=2
 * ```
 *
 * Every argument is optional (a timeout left out keeps the protocol's
 * default). The routes are `_handler.ts`'s.
 *
 * Prints `listening <port>`; SIGTERM shuts it down (see `_serve.ts`).
 *
 * @module
 */

import { HttpServerProtocol } from "../../../mod.ts";
import type { HttpServerProtocolOptions } from "../../../mod.ts";
import { Args, serve } from "./_serve.ts";
import { handle, handled } from "./_handler.ts";

/** The options this script sets; one left out keeps the protocol's default. */
type Options = Pick<
  HttpServerProtocolOptions,
  "keepAliveTimeout" | "headersTimeout" | "requestTimeout" | "writeTimeout"
>;

const args = new Args(Deno.args);
const options: Options = {
  keepAliveTimeout: args.number("keep-alive-timeout"),
  headersTimeout: args.number("headers-timeout"),
  requestTimeout: args.number("request-timeout"),
  writeTimeout: args.number("write-timeout"),
};
for (const key of Object.keys(options) as (keyof Options)[]) {
  if (options[key] === undefined) delete options[key];
}

await serve(args, () => new HttpServerProtocol(handle, options), handled);
