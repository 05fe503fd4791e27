// JsonRpcProtocol over a real TCP connection on 127.0.0.1.

import { assert, assertEquals, assertRejects } from "@std/assert";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { JsonRpcError } from "../../jsonrpc/json_rpc_error.ts";
import {
  type JsonRpcContext,
  type JsonRpcFraming,
  JsonRpcProtocol,
} from "../../jsonrpc/json_rpc_protocol.ts";
import { Protocol } from "../../protocols/protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
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

Deno.test("JsonRpcProtocol keeps its write buffer bounded for a TCP client that never reads", async () => {
  const loop = new DenoEventLoop();
  const servers: JsonRpcProtocol[] = [];
  const got = await within(
    loop,
    loop.createTask(async () => {
      const server = await loop.createServer(
        () => {
          const p = new JsonRpcProtocol({}, { loop });
          servers.push(p);
          return p;
        },
        "127.0.0.1",
        0,
      );
      const { port } = server.addresses()[0] as Deno.NetAddr;
      const [transport] = await loop.createConnection(
        () => new Protocol(),
        "127.0.0.1",
        port,
      );
      transport.pauseReading();
      // Each 2 KB line asks for about 110 KB of errors: 4 MiB of them would
      // make ~230 MiB of replies if the server answered them all.
      const line = new TextEncoder().encode(
        `[${new Array(1000).fill("1").join(",")}]\n`,
      );
      const count = Math.ceil(4 * 1024 * 1024 / line.length);
      for (let i = 0; i < count; i++) transport.write(line);
      let peak = 0;
      let reading = true;
      for (let i = 0; i < 40; i++) {
        await sleep(0.025);
        const t = servers[0]?.transport;
        if (t) {
          peak = Math.max(peak, t.getWriteBufferSize());
          reading = t.isReading();
        }
      }
      transport.abort();
      server.close();
      await server.waitClosed();
      return { peak, reading };
    }),
  );
  // The 64 KiB high-water mark plus a few replies, not hundreds of MiB.
  assert(got.peak < 1024 * 1024, `write buffer reached ${got.peak}`);
  assertEquals(got.reading, false);
  loop.close();
});
