/**
 * PEP 3153's stack in one program: TCP → HTTP client → HttpTransport → JsonRpcProtocol → the application.
 *
 * deno run --allow-net=127.0.0.1 examples/json_rpc_http.ts
 *
 * @module
 */

import {
  getEventLoop,
  HttpClientProtocol,
  HttpServerProtocol,
  HttpTransport,
  JsonRpcError,
  jsonRpcHttpHandler,
  JsonRpcProtocol,
  run,
  sleep,
} from "../mod.ts";
import type { EventLoop } from "../mod.ts";

await run(async () => {
  const loop = getEventLoop() as EventLoop;

  // The server side: JSON-RPC served over HTTP by HttpServerProtocol.
  const methods = {
    add: ([a, b]: number[]) => a + b,
    greet: ({ name }: { name: string }) => `Hello, ${name}!`,
    slowSquare: async ([x]: number[]) => {
      await sleep(0.05);
      return x * x;
    },
    log: (params: unknown) => console.log("server log:", params),
    refuse: () => {
      throw new JsonRpcError(-32000, "Refused", { reason: "demo" });
    },
  };
  const server = await loop.createServer(
    () => new HttpServerProtocol(jsonRpcHttpHandler(methods)),
    "127.0.0.1",
    0,
  );
  const port = (server.addresses()[0] as Deno.NetAddr).port;

  // The client side, layer by layer.
  const [, http] = await loop.createConnection(
    () => new HttpClientProtocol(), // TCP → HTTP
    "127.0.0.1",
    port,
  );
  const transport = new HttpTransport(http, { // HTTP → a Transport
    path: "/rpc",
    headers: { "content-type": "application/json" },
  });
  const rpc = new JsonRpcProtocol({}, { framing: "raw" }); // → JSON-RPC
  transport.setProtocol(rpc);
  rpc.connectionMade(transport);

  // The application.
  console.log("add(2, 3) =", await rpc.call("add", [2, 3]));
  console.log("greet =", await rpc.call("greet", { name: "PEP 3153" }));
  rpc.notify("log", ["a notification: no answer expected"]);
  const squares = await Promise.all(
    [1, 2, 3].map((x) => rpc.call("slowSquare", [x])),
  );
  console.log("squares, pipelined on one connection:", squares);
  const batch = await rpc.batch([
    { method: "add", params: [10, 20] },
    { method: "refuse" },
  ]);
  console.log("batch:", batch[0], "and", String(batch[1]));

  transport.close();
  http.close();
  await http.waitClosed();
  server.close();
  await server.waitClosed();
  console.log("done");
});
