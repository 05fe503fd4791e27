/**
 * `Deno.serve` answering every request with `Hello, World!`: the runtime's
 * own (hyper-based) HTTP server, for the HTTP workload.
 *
 * ```sh
 * deno run -A bench/harness/servers/deno_serve_http.ts 8000
 * ```
 *
 * Prints `listening <port>` when ready, then serves forever.
 *
 * @module
 */

const port = Number(Deno.args[0] ?? "8000");
Deno.serve(
  {
    hostname: "127.0.0.1",
    port,
    onListen: (addr) => console.log(`listening ${addr.port}`),
  },
  () => new Response("Hello, World!"),
);
