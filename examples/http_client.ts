/**
 * tulip's HTTP/1.1 client against a tulip HTTP server it starts itself: keep-alive, pipelining, bodies both ways.
 *
 * deno run --allow-net=127.0.0.1 examples/http_client.ts
 *
 * @module
 */

import {
  getEventLoop,
  HttpClientProtocol,
  HttpServerProtocol,
  run,
} from "../mod.ts";
import type { EventLoop } from "../mod.ts";

await run(async () => {
  const loop = getEventLoop() as EventLoop;

  // A small server on a free port.
  const server = await loop.createServer(
    () =>
      new HttpServerProtocol(async (request) => {
        const url = new URL(request.url);
        if (url.pathname === "/upper") {
          return new Response((await request.text()).toUpperCase());
        }
        if (url.pathname === "/lines") {
          return new Response(
            new ReadableStream({
              start(controller) {
                for (const line of ["one\n", "two\n", "three\n"]) {
                  controller.enqueue(new TextEncoder().encode(line));
                }
                controller.close();
              },
            }),
          );
        }
        return Response.json({ method: request.method, path: url.pathname });
      }),
    "127.0.0.1",
    0,
  );
  const port = (server.addresses()[0] as Deno.NetAddr).port;
  const base = `http://127.0.0.1:${port}`;

  // One connection, kept alive for every request below.
  const [, client] = await loop.createConnection(
    () => new HttpClientProtocol(),
    "127.0.0.1",
    port,
  );

  const first = await client.request(new Request(`${base}/hello`));
  console.log(
    first.status,
    first.headers.get("content-type"),
    await first.json(),
  );

  const posted = await client.request(
    new Request(`${base}/upper`, { method: "POST", body: "shout this" }),
  );
  console.log(posted.status, await posted.text());

  // Pipelined: all three go out at once; the answers come back in order.
  const answers = await Promise.all(
    ["/a", "/b", "/c"].map((path) => client.request(new Request(base + path))),
  );
  for (const answer of answers) console.log("pipelined:", await answer.json());

  // A chunked response, read as a stream.
  const lines = await client.request(new Request(`${base}/lines`));
  console.log("transfer-encoding:", lines.headers.get("transfer-encoding"));
  for await (const piece of lines.body!.pipeThrough(new TextDecoderStream())) {
    console.log("piece:", JSON.stringify(piece));
  }

  client.close();
  await client.waitClosed();
  server.close();
  await server.waitClosed();
  console.log("done");
});
