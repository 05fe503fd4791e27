// JsonRpcProtocol over a real TCP connection on 127.0.0.1.

import { assertEquals, assertRejects } from "@std/assert";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { JsonRpcError } from "../../protocols/json_rpc_error.ts";
import {
  type JsonRpcContext,
  type JsonRpcFraming,
  JsonRpcProtocol,
} from "../../protocols/json_rpc_protocol.ts";
import { within } from "./_io_helpers.ts";

for (const framing of ["newline", "length", "raw"] as JsonRpcFraming[]) {
  Deno.test(`JsonRpcProtocol calls both ways over TCP with ${framing} framing`, async () => {
    const loop = new DenoEventLoop();
    const got = await within(
      loop,
      loop.createTask(async () => {
        const server = await loop.createServer(
          () =>
            new JsonRpcProtocol({
              add: ([a, b]: number[]) => a + b,
              big: ([n]: number[]) => "x".repeat(n),
              // Calls the client back on the same connection.
              greet: async (_p, ctx: JsonRpcContext) =>
                `Hello, ${await ctx.protocol!.call("name")}`,
            }, { loop, framing }),
          "127.0.0.1",
          0,
        );
        const { port } = server.addresses()[0] as Deno.NetAddr;
        const [transport, client] = await loop.createConnection(
          () => new JsonRpcProtocol({ name: () => "tulip" }, { loop, framing }),
          "127.0.0.1",
          port,
        );
        const results = await Promise.all([
          client.call("add", [1, 2]),
          client.call("greet"),
          client.call("big", [200_000]),
        ]);
        const missing = await assertRejects(
          () => Promise.resolve(client.call("nope")),
          JsonRpcError,
        );
        transport.close();
        server.close();
        await server.waitClosed();
        return [
          results[0],
          results[1],
          (results[2] as string).length,
          missing.code,
        ];
      }),
    );
    assertEquals(got, [3, "Hello, tulip", 200_000, -32601]);
    loop.close();
  });
}
