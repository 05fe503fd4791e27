import {
  assert,
  assertEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { JsonRpcError } from "../../jsonrpc/json_rpc_error.ts";
import { jsonRpcHttpHandler } from "../../jsonrpc/json_rpc_http_handler.ts";
import type { JsonRpcMethods } from "../../jsonrpc/json_rpc_protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Coroutine } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { HttpServerProtocol } from "../../http/http_server_protocol.ts";
import { PeerLog } from "../../protocols/peer_log.ts";
import { converse } from "../http/_http_helpers.ts";

const methods: JsonRpcMethods = {
  add: ([a, b]: number[]) => a + b,
  later: async ([x]: number[]) => {
    await Promise.resolve();
    return x;
  },
  fail: () => {
    throw new JsonRpcError(JsonRpcError.INVALID_PARAMS, "Bad", { at: 0 });
  },
  boom: () => {
    throw new Error("Boom");
  },
  log: () => {},
  url: (_p, ctx) => ctx.request?.url,
};

function post(body: BodyInit | null, headers?: HeadersInit): Request {
  return new Request("http://localhost/rpc", {
    method: "POST",
    headers: headers ?? { "content-type": "application/json" },
    body,
  });
}

Deno.test("jsonRpcHttpHandler() answers a call with 200 and a JSON body", async () => {
  const handler = jsonRpcHttpHandler(methods);
  const response = await handler(
    post('{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}'),
  );
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-type"), "application/json");
  assertEquals(await response.json(), { jsonrpc: "2.0", result: 5, id: 1 });
});

Deno.test("jsonRpcHttpHandler() answers a batch with an array in order", async () => {
  const handler = jsonRpcHttpHandler(methods);
  const response = await handler(post(JSON.stringify([
    { jsonrpc: "2.0", method: "later", params: [1], id: 1 },
    { jsonrpc: "2.0", method: "log" },
    { jsonrpc: "2.0", method: "fail", id: 2 },
    { jsonrpc: "2.0", method: "boom", id: 3 },
    { jsonrpc: "2.0", method: "url", id: 4 },
    { jsonrpc: "2.0", method: "missing", id: 5 },
  ])));
  assertEquals(response.status, 200);
  assertEquals(await response.json(), [
    { jsonrpc: "2.0", result: 1, id: 1 },
    {
      jsonrpc: "2.0",
      error: { code: -32602, message: "Bad", data: { at: 0 } },
      id: 2,
    },
    { jsonrpc: "2.0", error: { code: -32603, message: "Boom" }, id: 3 },
    { jsonrpc: "2.0", result: "http://localhost/rpc", id: 4 },
    {
      jsonrpc: "2.0",
      error: { code: -32601, message: 'Method not found: "missing"' },
      id: 5,
    },
  ]);
});

Deno.test("jsonRpcHttpHandler() serves the entries of a Map, never its own methods", async () => {
  const table = new Map([["add", ([a, b]: number[]) => a + b]]);
  const handler = jsonRpcHttpHandler(table);
  const response = await handler(post(JSON.stringify(
    ["add", "set", "clear"].map((method, id) => ({
      jsonrpc: "2.0",
      method,
      params: [2, 3],
      id,
    })),
  )));
  const got = await response.json() as {
    result?: unknown;
    error?: { code: number };
  }[];
  assertEquals(got.map((r) => r.result ?? r.error!.code), [5, -32601, -32601]);
  assertEquals([...table.keys()], ["add"]);
});

Deno.test("jsonRpcHttpHandler() answers notifications only with 204 and no body", async () => {
  const handler = jsonRpcHttpHandler(methods);
  for (
    const body of [
      '{"jsonrpc":"2.0","method":"log"}',
      '[{"jsonrpc":"2.0","method":"log"},{"jsonrpc":"2.0","method":"nope"}]',
    ]
  ) {
    const response = await handler(post(body));
    assertEquals(response.status, 204);
    assertEquals(response.body, null);
  }
});

Deno.test("jsonRpcHttpHandler() answers parse errors and invalid requests in JSON-RPC", async () => {
  const handler = jsonRpcHttpHandler(methods);
  const cases: [string, number][] = [
    ["{nope", -32700],
    ["", -32700],
    ["[]", -32600],
    ['{"jsonrpc":"2.0","method":7,"id":1}', -32600],
    // A response in a body: this side makes no calls.
    ['{"jsonrpc":"2.0","result":1,"id":1}', -32600],
  ];
  for (const [body, code] of cases) {
    const response = await handler(post(body));
    assertEquals(response.status, 200, body);
    const reply = await response.json();
    assertEquals(reply.error.code, code, body);
  }
});

Deno.test("jsonRpcHttpHandler() answers 405 to anything but POST", async () => {
  const handler = jsonRpcHttpHandler(methods);
  for (const method of ["GET", "PUT", "DELETE", "HEAD"]) {
    const response = await handler(
      new Request("http://localhost/rpc", { method }),
    );
    assertEquals(response.status, 405, method);
    assertEquals(response.headers.get("allow"), "POST");
    await response.body?.cancel();
  }
});

Deno.test("jsonRpcHttpHandler() checks the content type only when strict", async () => {
  const body = '{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}';
  const lax = jsonRpcHttpHandler(methods);
  const octets = await lax(
    post(body, { "content-type": "application/octet-stream" }),
  );
  assertEquals(octets.status, 200);
  await octets.body?.cancel();
  const strict = jsonRpcHttpHandler(methods, { strictContentType: true });
  const refused = await strict(post(body, { "content-type": "text/plain" }));
  assertEquals(refused.status, 415);
  await refused.body?.cancel();
  const missing = await strict(post(body, {}));
  assertEquals(missing.status, 415);
  await missing.body?.cancel();
  const ok = await strict(
    post(body, { "content-type": "Application/JSON; charset=utf-8" }),
  );
  assertEquals(ok.status, 200);
  assertEquals((await ok.json()).result, 2);
});

Deno.test("jsonRpcHttpHandler() refuses a body over maxMessageBytes with 413", async () => {
  const body = '{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}';
  const handler = jsonRpcHttpHandler(methods, { maxMessageBytes: body.length });
  const ok = await handler(post(body));
  assertEquals(ok.status, 200);
  await ok.body?.cancel();
  // Declared too long.
  const declared = await handler(post(body + " "));
  assertEquals(declared.status, 413);
  assertStringIncludes(await declared.text(), String(body.length));
  // Streamed with no length: cut off as it arrives.
  const stream = ReadableStream.from([
    new TextEncoder().encode(body),
    new TextEncoder().encode("    "),
  ]);
  const streamed = await handler(post(stream));
  assertEquals(streamed.status, 413);
  await streamed.body?.cancel();
});

Deno.test("jsonRpcHttpHandler() runs coroutine methods on its loop", async () => {
  const loop = new VirtualTimeLoop();
  const handler = jsonRpcHttpHandler({
    *slow(): Coroutine<string> {
      yield* sleep(30);
      return "slept";
    },
  }, { loop });
  const response = await loop.runUntilComplete(
    handler(post('{"jsonrpc":"2.0","method":"slow","id":1}')),
  );
  assertEquals((await response.json()).result, "slept");
  assertEquals(loop.time(), 30);
  loop.close();
});

Deno.test("jsonRpcHttpHandler() checks its arguments", () => {
  assertThrows(
    () => jsonRpcHttpHandler(null as unknown as JsonRpcMethods),
    TypeError,
  );
  assertThrows(
    () => jsonRpcHttpHandler({}, { maxMessageBytes: 0 }),
    RangeError,
  );
});

// --- Limits ------------------------------------------------------------------

Deno.test("jsonRpcHttpHandler() answers a batch over maxBatch with one -32600 error", async () => {
  let calls = 0;
  const handler = jsonRpcHttpHandler({ tick: () => ++calls }, { maxBatch: 4 });
  const item = { jsonrpc: "2.0", method: "tick", id: 1 };
  const over = await handler(post(JSON.stringify(new Array(5).fill(item))));
  assertEquals(over.status, 200);
  const body = await over.json();
  assertEquals(body.error.code, -32600);
  assertEquals(body.id, null);
  assertStringIncludes(body.error.message, "maxBatch=4");
  assertEquals(calls, 0);
  const exact = await handler(post(JSON.stringify(new Array(4).fill(item))));
  assertEquals((await exact.json()).length, 4);
  assertEquals(calls, 4);
});

Deno.test("jsonRpcHttpHandler() keeps the reply to a 1 MiB batch of invalid items small", async () => {
  const handler = jsonRpcHttpHandler({});
  const body = `[${new Array(520_000).fill("1").join(",")}]`;
  const response = await handler(post(body));
  const text = await response.text();
  assert(text.length < 1024, `reply of ${text.length} bytes`);
  assertStringIncludes(text, "maxBatch=1000");
});

Deno.test("jsonRpcHttpHandler() runs at most maxConcurrentCalls of a batch at once", async () => {
  let running = 0;
  let peak = 0;
  const handler = jsonRpcHttpHandler({
    wait: async ([x]: number[]) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 1));
      running--;
      return x;
    },
  }, { maxConcurrentCalls: 3 });
  const batch = Array.from(
    { length: 10 },
    (_, i) => ({ jsonrpc: "2.0", method: "wait", params: [i], id: i }),
  );
  const response = await handler(post(JSON.stringify(batch)));
  const got = await response.json() as { result: number }[];
  assertEquals(got.map((r) => r.result), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assertEquals(peak, 3);
});

Deno.test("jsonRpcHttpHandler() reports the first failed notification of a request, within its size", async () => {
  const loop = new VirtualTimeLoop();
  const contexts: { message: string; exception?: unknown }[] = [];
  loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
  const handler = jsonRpcHttpHandler({
    boom: () => {
      throw new Error("Boom");
    },
  }, { loop });
  const batch = JSON.stringify(
    Array.from({ length: 500 }, (_, i) => ({
      jsonrpc: "2.0",
      method: "boom",
      params: [i],
    })),
  );
  const response = await handler(post(batch));
  assertEquals(response.status, 204);
  assertEquals(contexts.length, 2);
  assertStringIncludes(contexts[0].message, '"boom"');
  assertStringIncludes(contexts[1].message, "499 problems");
  let printed = 0;
  for (const c of contexts) {
    printed += c.message.length + 1;
    if (c.exception !== undefined) printed += Deno.inspect(c.exception).length;
  }
  assert(printed <= batch.length, `${printed} > ${batch.length}`);
  loop.close();
});

Deno.test("jsonRpcHttpHandler() under HttpServerProtocol reports failed notifications once per connection, within what the client sent", async () => {
  // Each request's body was counted by the connection already: were it
  // counted again per request, a keep-alive client could make the server
  // log about twice what it sent.
  const body = JSON.stringify([
    { jsonrpc: "2.0", method: "boom" },
    { jsonrpc: "2.0", method: "boom" },
  ]);
  const request = (close: boolean) =>
    `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n${
      close ? "Connection: close\r\n" : ""
    }\r\n${body}`;
  const input = request(false).repeat(49) + request(true);
  const c = await converse(
    (loop) => new HttpServerProtocol(jsonRpcHttpHandler(methods, { loop })),
    input,
  );
  assertEquals(c.output.split("HTTP/1.1 204 ").length - 1, 50);
  assertEquals(c.errors.length, 2);
  assert(c.errors[0] instanceof Error);
  assertEquals(
    String(c.errors[1]),
    "HTTP connection: 99 problems were counted but not logged (100 failed notifications)",
  );
  const printed = PeerLog.sizeOf({ message: "", exception: c.errors[0] }) +
    String(c.errors[1]).length;
  assert(printed <= input.length, `${printed} > ${input.length}`);
});

Deno.test("jsonRpcHttpHandler() checks maxBatch and maxConcurrentCalls", () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    assertThrows(() => jsonRpcHttpHandler({}, { maxBatch: bad }), RangeError);
    assertThrows(
      () => jsonRpcHttpHandler({}, { maxConcurrentCalls: bad }),
      RangeError,
    );
  }
});
