/**
 * The worker module of `tulip_http_workers.ts`: tulip's
 * `HttpServerProtocol` answering every request with `Hello, World!`, on
 * the port the workers share.
 *
 * @module
 */

import { HttpServerProtocol } from "../../../mod.ts";
import type { EventLoop, Server, ServeWorkersInfo } from "../../../mod.ts";

/** Listens on the shared port with `reusePort`. */
export function serve(
  loop: EventLoop,
  info: ServeWorkersInfo,
): PromiseLike<Server> {
  return loop.createServer(
    () => new HttpServerProtocol(() => new Response("Hello, World!")),
    "127.0.0.1",
    info.port,
    { reusePort: true },
  );
}
