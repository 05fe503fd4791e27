/**
 * tulip's `HttpServerProtocol` for the soak suite.
 *
 * ```sh
 * deno run -A bench/soak/servers/http.ts --port=0 --keep-alive-timeout=60 \
 *   --headers-timeout=2 --request-timeout=4 --write-timeout=5 --grace=2
 * ```
 *
 * Every argument is optional (a timeout left out keeps the protocol's
 * default). Routes:
 *
 * - `GET /` answers `Hello, World!`;
 * - `GET /big?bytes=N` answers N bytes;
 * - `GET /slow?ms=N` answers `slow` after N ms;
 * - any other method reads the whole body and answers its length.
 *
 * Prints `listening <port>`; SIGTERM shuts it down (see `_serve.ts`).
 *
 * @module
 */

import { HttpServerProtocol } from "../../../mod.ts";
import type { HttpServerProtocolOptions } from "../../../mod.ts";
import { Args, serve } from "./_serve.ts";

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

const BIG_MAX = 64 * 1024 * 1024;

async function handle(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (request.method !== "GET" && request.method !== "HEAD") {
    const body = await request.arrayBuffer();
    return new Response(`${body.byteLength}`);
  }
  switch (url.pathname) {
    case "/big": {
      const bytes = Number(url.searchParams.get("bytes") ?? "1048576");
      return new Response(new Uint8Array(Math.min(bytes, BIG_MAX)).fill(120));
    }
    case "/slow": {
      const ms = Number(url.searchParams.get("ms") ?? "1000");
      await new Promise((resolve) => setTimeout(resolve, ms));
      return new Response("slow");
    }
    default:
      return new Response("Hello, World!");
  }
}

await serve(args, () => new HttpServerProtocol(handle, options));
