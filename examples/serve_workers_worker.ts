/**
 * The worker module of examples/serve_workers.ts (run that one): each worker's HTTP server, on the shared port.
 *
 * deno run --unstable-net --allow-net=127.0.0.1 --allow-read=. examples/serve_workers.ts --workers 2 --port 0 --requests 20
 *
 * @module
 */

import { HttpServerProtocol } from "../mod.ts";
import type { EventLoop, Server, ServeWorkersInfo } from "../mod.ts";

/**
 * Called once in each worker, on the worker's own loop: listens on the
 * shared port with `reusePort: true` and returns the server, which the
 * supervisor shuts down gracefully when it closes.
 */
export function serve(
  loop: EventLoop,
  info: ServeWorkersInfo,
): PromiseLike<Server> {
  return loop.createServer(
    () =>
      new HttpServerProtocol((request) => {
        const { pathname } = new URL(request.url);
        return pathname === "/"
          ? new Response(`Hello from worker ${info.index}\n`)
          : new Response("Not Found\n", { status: 404 });
      }),
    "127.0.0.1",
    info.port,
    { reusePort: true },
  );
}
