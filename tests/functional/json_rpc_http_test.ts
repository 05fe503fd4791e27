// JSON-RPC over real HTTP on 127.0.0.1: jsonRpcHttpHandler under Deno.serve,
// called with fetch and with a JsonRpcProtocol stacked on an HTTP-based
// transport (PEP 3153's stack).

import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { JsonRpcError } from "../../jsonrpc/json_rpc_error.ts";
import { jsonRpcHttpHandler } from "../../jsonrpc/json_rpc_http_handler.ts";
import {
  type JsonRpcMethods,
  JsonRpcProtocol,
} from "../../jsonrpc/json_rpc_protocol.ts";
import type { Protocol } from "../../protocols/protocol.ts";
import type { Transport } from "../../transports/transport.ts";
import { within } from "./_io_helpers.ts";

const methods: JsonRpcMethods = {
  add: ([a, b]: number[]) => a + b,
  slow: async ([x]: number[]) => {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return x;
  },
  fail: () => {
    throw new JsonRpcError(-32000, "Refused", "why");
  },
  log: () => {},
};

/** Serves `methods` on 127.0.0.1, port 0, until `fn` is done. */
async function serving<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: controller.signal,
    onListen() {},
  }, jsonRpcHttpHandler(methods, { maxMessageBytes: 1000 }));
  try {
    return await fn(`http://127.0.0.1:${server.addr.port}/rpc`);
  } finally {
    controller.abort();
    await server.finished;
  }
}

function rpc(url: string, body: string, method = "POST") {
  return fetch(url, {
    method,
    headers: { "content-type": "application/json" },
    body: method === "GET" ? undefined : body,
  });
}

Deno.test("jsonRpcHttpHandler() serves calls, batches and notifications under Deno.serve", async () => {
  await serving(async (url) => {
    const one = await rpc(
      url,
      '{"jsonrpc":"2.0","method":"add","params":[40,2],"id":1}',
    );
    assertEquals(one.status, 200);
    assertEquals(await one.json(), { jsonrpc: "2.0", result: 42, id: 1 });

    const batch = await rpc(
      url,
      JSON.stringify([
        { jsonrpc: "2.0", method: "slow", params: [7], id: "a" },
        { jsonrpc: "2.0", method: "log" },
        { jsonrpc: "2.0", method: "fail", id: "b" },
      ]),
    );
    assertEquals(await batch.json(), [
      { jsonrpc: "2.0", result: 7, id: "a" },
      {
        jsonrpc: "2.0",
        error: { code: -32000, message: "Refused", data: "why" },
        id: "b",
      },
    ]);

    const note = await rpc(url, '{"jsonrpc":"2.0","method":"log"}');
    assertEquals(note.status, 204);
    assertEquals(await note.text(), "");

    const parse = await rpc(url, "{oops");
    assertEquals((await parse.json()).error.code, -32700);

    const get = await rpc(url, "", "GET");
    assertEquals(get.status, 405);
    await get.body?.cancel();

    const big = await rpc(url, `[${'"x",'.repeat(300)}1]`);
    assertEquals(big.status, 413);
    await big.body?.cancel();
  });
});

/**
 * A minimal HTTP-based transport for this test: each write is POSTed as a
 * request body, and each response body is delivered to the protocol as
 * one `dataReceived` (nothing for a 204). It stands in for HttpTransport.
 */
function fetchTransport(
  loop: DenoEventLoop,
  url: string,
  protocol: Protocol,
): Transport {
  let closing = false;
  const inFlight = new Set<Promise<void>>();
  const transport = {
    write(data: Uint8Array) {
      const sent = fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: data.slice(),
      }).then(async (response) => {
        const body = new Uint8Array(await response.arrayBuffer());
        if (body.length > 0 && !closing) {
          loop.callSoon(() => protocol.dataReceived(body));
        }
      });
      inFlight.add(sent);
      sent.finally(() => inFlight.delete(sent));
    },
    writelines(list: Uint8Array[]) {
      const all = new Uint8Array(list.reduce((n, d) => n + d.length, 0));
      let at = 0;
      for (const d of list) {
        all.set(d, at);
        at += d.length;
      }
      this.write(all);
    },
    isClosing: () => closing,
    close() {
      if (closing) return;
      closing = true;
      Promise.allSettled([...inFlight]).then(() =>
        loop.callSoon(() => protocol.connectionLost(undefined))
      );
    },
    getExtraInfo: (_name: string, defaultValue?: unknown) => defaultValue,
  };
  return transport as unknown as Transport;
}

Deno.test("JsonRpcProtocol runs unchanged over an HTTP-based transport", async () => {
  await serving(async (url) => {
    const loop = new DenoEventLoop();
    const client = new JsonRpcProtocol({}, { loop, framing: "raw" });
    const transport = fetchTransport(loop, url, client);
    const got = await within(
      loop,
      loop.createTask(async () => {
        client.connectionMade(transport);
        const sum = await client.call("add", [1, 2]);
        client.notify("log", ["quiet"]);
        const [slow, failed] = await client.batch([
          { method: "slow", params: [9] },
          { method: "fail" },
        ]);
        const concurrent = await Promise.all([
          client.call("add", [10, 1]),
          client.call("add", [20, 2]),
          client.call("slow", [30]),
        ]);
        transport.close();
        return { sum, slow, failed, concurrent };
      }),
    );
    assertEquals(got.sum, 3);
    assertEquals(got.slow, 9);
    assertInstanceOf(got.failed, JsonRpcError);
    assertEquals((got.failed as JsonRpcError).code, -32000);
    assertEquals(got.concurrent, [11, 22, 30]);
    // Let connectionLost run.
    await within(
      loop,
      loop.createTask(async () => {
        while (client.transport !== null) {
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      }),
    );
    assert(client.transport === null);
    loop.close();
  });
});
