/**
 * A JSON-RPC 2.0 server and client over TCP, one JSON text per line: calls (positional and named params), a notification, a call back from the server, a batch, errors and a timeout, with the server printing what arrives on the wire.
 *
 * deno run --allow-net=127.0.0.1 examples/json_rpc_tcp.ts
 *
 * @module
 */

import {
  type EventLoop,
  getEventLoop,
  type JsonRpcContext,
  JsonRpcError,
  type JsonRpcMethods,
  JsonRpcProtocol,
  run,
  sleep,
  TimeoutError,
} from "../mod.ts";

const HOST = "127.0.0.1";
const decoder = new TextDecoder();

/** The server's methods; each returns a value, a promise or a future. */
function serverMethods(log: string[]): JsonRpcMethods {
  return {
    add: ([a, b]: number[]) => a + b,
    subtract: ({ minuend, subtrahend }: Record<string, number>) =>
      minuend - subtrahend,
    divide([a, b]: number[]) {
      if (b === 0) {
        // An application error: our own code, and data for the caller.
        throw new JsonRpcError(1001, "Division by zero", { dividend: a });
      }
      return a / b;
    },
    // A notification target: no answer is ever sent.
    log([message]: string[]) {
      log.push(message);
    },
    // Slow on purpose; `sleep` returns a Future, which the protocol awaits.
    slowEcho: ([value, seconds]: [unknown, number]) => sleep(seconds, value),
    // Calls back the client on the same connection.
    greet: async (_params: unknown, ctx: JsonRpcContext) =>
      `Hello, ${await ctx.protocol!.call("name")}!`,
  };
}

/** A JsonRpcProtocol that prints each line it receives. */
class TracingJsonRpc extends JsonRpcProtocol {
  override dataReceived(data: Uint8Array): void {
    for (const line of decoder.decode(data).split("\n")) {
      if (line !== "") console.log(`  wire → server: ${line}`);
    }
    super.dataReceived(data);
  }
}

async function client(loop: EventLoop, port: number): Promise<void> {
  const [transport, rpc] = await loop.createConnection(
    () => new JsonRpcProtocol({ name: () => "Ada" }, { timeout: 5 }),
    HOST,
    port,
  );

  console.log(`add(2, 3) = ${await rpc.call("add", [2, 3])}`);
  const diff = await rpc.call("subtract", { minuend: 42, subtrahend: 23 });
  console.log(`subtract(minuend: 42, subtrahend: 23) = ${diff}`);

  rpc.notify("log", ["a notification: nobody answers this"]);
  console.log(`greet() = ${await rpc.call("greet")}`);

  const results = await rpc.batch([
    { method: "add", params: [1, 1] },
    { method: "log", params: ["a notification inside a batch"], notify: true },
    { method: "divide", params: [10, 4] },
    { method: "nosuch" },
  ]);
  console.log(
    `batch = ${
      results.map((r) =>
        r instanceof JsonRpcError ? `error ${r.code}` : String(r)
      ).join(", ")
    }`,
  );

  try {
    await rpc.call("divide", [1, 0]);
  } catch (e) {
    const err = e as JsonRpcError;
    console.log(
      `divide(1, 0) failed: code ${err.code}, "${err.message}", data ${
        JSON.stringify(err.data)
      }`,
    );
  }
  try {
    await rpc.call("nosuch", []);
  } catch (e) {
    console.log(`nosuch() failed: code ${(e as JsonRpcError).code}`);
  }
  try {
    await rpc.call("slowEcho", ["late", 0.3], { timeout: 0.1 });
  } catch (e) {
    if (!(e instanceof TimeoutError)) throw e;
    console.log("slowEcho(0.3 s) with a 0.1 s timeout: TimeoutError");
  }
  console.log(
    `slowEcho(0.05 s) = ${await rpc.call("slowEcho", ["on time", 0.05])}`,
  );

  transport.close();
}

await run(async () => {
  const loop = getEventLoop();
  const log: string[] = [];
  const server = await loop.createServer(
    () => new TracingJsonRpc(serverMethods(log)),
    HOST,
    0,
  );
  const { port } = server.addresses()[0] as Deno.NetAddr;
  console.log(`JSON-RPC server on ${HOST}:${port}`);
  loop.addSignalHandler("SIGINT", () => {
    console.log("SIGINT: closing");
    server.close();
    server.abortClients();
  });
  try {
    await client(loop, port);
  } finally {
    server.close();
    // Ctrl-C still aborts the connections while this waits for them.
    await server.waitClosed();
    loop.removeSignalHandler("SIGINT");
  }
  console.log(`server log: ${JSON.stringify(log)}`);
});
