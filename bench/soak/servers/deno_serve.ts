/**
 * `Deno.serve` with the soak suite's HTTP handler (`_handler.ts`), for
 * reference: the `noread-http-deno-serve` scenario runs it under the
 * clients of `noread-http`.
 *
 * ```sh
 * deno run -A bench/soak/servers/deno_serve.ts --port=0
 * ```
 *
 * Prints `listening <port>`; SIGUSR2 prints `_serve.ts`'s `heapLine`;
 * SIGTERM shuts it down (`server.shutdown()`) and prints `closed in <ms>
 * ms`.
 *
 * @module
 */

import { Args, heapLine } from "./_serve.ts";
import { handle, handled } from "./_handler.ts";

const args = new Args(Deno.args);
const server = Deno.serve({
  hostname: "127.0.0.1",
  port: args.number("port", 0),
  onListen: ({ port }) => console.log(`listening ${port}`),
}, handle);
Deno.addSignalListener("SIGUSR2", () => console.log(heapLine(handled())));
Deno.addSignalListener("SIGTERM", async () => {
  const start = performance.now();
  await server.shutdown();
  console.log(`closed in ${performance.now() - start} ms`);
  Deno.exit(0);
});
