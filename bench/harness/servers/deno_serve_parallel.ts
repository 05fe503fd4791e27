/**
 * A `deno serve` module answering every request with `Hello, World!`, for
 * the multi-core HTTP workload (`DENO_JOBS` sets the number of workers).
 *
 * ```sh
 * DENO_JOBS=2 deno serve --parallel --host 127.0.0.1 --port 8000 bench/harness/servers/deno_serve_parallel.ts
 * ```
 *
 * @module
 */

export default {
  fetch(): Response {
    return new Response("Hello, World!");
  },
} satisfies Deno.ServeDefaultExport;
