/**
 * An HTTP/1.1 server on tulip's loop; stops after `--requests` requests (default 10; `--requests 0`: no limit) or on Ctrl-C.
 *
 * deno run --allow-net=127.0.0.1 examples/http_server.ts --port 8000 --requests 10
 *
 * @module
 */

import { getEventLoop, HttpServerProtocol, run } from "../mod.ts";
import type { EventLoop } from "../mod.ts";

function option(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const value = i >= 0 ? Number(Deno.args[i + 1]) : fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`--${name} must be a whole number, received ${value}`);
  }
  return value;
}

const port = option("port", 8000);
const limit = option("requests", 10);

await run(async () => {
  const loop = getEventLoop() as EventLoop;
  const done = loop.createFuture<string>();
  let served = 0;

  // The same handler would run under Deno.serve.
  async function handler(request: Request): Promise<Response> {
    const url = new URL(request.url);
    served++;
    console.log(`#${served} ${request.method} ${url.pathname}`);
    // The last answer closes its connection, so the server can stop.
    const last = limit > 0 && served >= limit;
    if (last && !done.done()) loop.callSoon(() => done.setResult("served"));
    const headers = last ? { connection: "close" } : undefined;
    switch (url.pathname) {
      case "/":
        return new Response("Hello from tulip!\n", { headers });
      case "/echo":
        return new Response(await request.text(), { headers });
      case "/time":
        return Response.json({ now: new Date().toISOString() }, { headers });
      case "/count":
        // A streamed, chunked body.
        return new Response(
          new ReadableStream({
            async start(controller) {
              for (let i = 1; i <= 3; i++) {
                controller.enqueue(new TextEncoder().encode(`${i}\n`));
                await new Promise((resolve) => setTimeout(resolve, 100));
              }
              controller.close();
            },
          }),
          { headers: { "content-type": "text/plain", ...headers } },
        );
      default:
        return new Response("Not Found\n", { status: 404, headers });
    }
  }

  const server = await loop.createServer(
    () => new HttpServerProtocol(handler),
    "127.0.0.1",
    port,
  );
  const addr = server.addresses()[0] as Deno.NetAddr;
  console.log(
    `Listening on http://127.0.0.1:${addr.port}/ (try /, /echo, /time, /count); ` +
      (limit > 0
        ? `stopping after ${limit} requests or Ctrl-C`
        : "Ctrl-C stops"),
  );
  loop.addSignalHandler("SIGINT", () => {
    if (!done.done()) done.setResult("interrupted");
  });
  try {
    console.log(`Stopping: ${await done}`);
  } finally {
    // Stop listening, close idle keep-alive connections at once, let a
    // request in flight finish, and cut off what is left after 5 s, or
    // at a second Ctrl-C.
    loop.addSignalHandler("SIGINT", () => server.shutdown({ grace: 0 }));
    await server.shutdown({ grace: 5 });
    loop.removeSignalHandler("SIGINT");
  }
});
