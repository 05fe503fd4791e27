import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  InvalidStateError,
  LimitOverrunError,
  TimeoutError,
} from "../../futures/errors.ts";
import { Future } from "../../futures/future.ts";
import { HttpClientProtocol } from "../../http/http_client_protocol.ts";
import { HttpServerProtocol } from "../../http/http_server_protocol.ts";
import { HttpTransport } from "../../http/http_transport.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import { JsonRpcError } from "../../jsonrpc/json_rpc_error.ts";
import {
  type JsonRpcContext,
  type JsonRpcFraming,
  type JsonRpcMethods,
  JsonRpcProtocol,
  type JsonRpcProtocolOptions,
} from "../../jsonrpc/json_rpc_protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import { PeerLog } from "../../protocols/peer_log.ts";
import { Protocol } from "../../protocols/protocol.ts";
import type { Coroutine } from "../../tasks/task.ts";
import {
  transportPair,
  type TransportPairOptions,
} from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import type { Transport } from "../../transports/transport.ts";
import { splitCases } from "../_every_split.ts";
import { frame, Peer } from "./_json_rpc_peer.ts";

const FRAMINGS: JsonRpcFraming[] = ["newline", "length", "raw"];
const CHUNK_SIZES: (number | undefined)[] = [1, 2, 3, 7, undefined];

/** Runs an async function as a task on the loop and returns its result. */
function run<T>(loop: VirtualTimeLoop, fn: () => Promise<T>): Promise<T> {
  return loop.runUntilComplete(loop.createTask(fn));
}

/** Two JsonRpcProtocols joined in memory, connected. */
async function connected(
  serverMethods: JsonRpcMethods,
  clientMethods: JsonRpcMethods,
  options?: {
    pair?: TransportPairOptions;
    server?: JsonRpcProtocolOptions;
    client?: JsonRpcProtocolOptions;
    loop?: VirtualTimeLoop;
  },
) {
  const loop = options?.loop ?? new VirtualTimeLoop();
  const server = new JsonRpcProtocol(serverMethods, {
    loop,
    ...options?.server,
  });
  const client = new JsonRpcProtocol(clientMethods, {
    loop,
    ...options?.client,
  });
  const [serverTransport, clientTransport] = transportPair(server, client, {
    loop,
    ...options?.pair,
  });
  await loop.advance(0);
  return { loop, server, client, serverTransport, clientTransport };
}

/** A JsonRpcProtocol facing a hand-driven peer, connected. */
/** What `JsonRpcProtocol` takes as its methods: an object or a Map. */
type Methods = ConstructorParameters<typeof JsonRpcProtocol>[0];

async function facingPeer(
  methods: Methods,
  options?: JsonRpcProtocolOptions & { pair?: TransportPairOptions },
  loop = new VirtualTimeLoop(),
) {
  const protocol = new JsonRpcProtocol(methods, { loop, ...options });
  const peer = new Peer();
  const [transport] = transportPair(protocol, peer, {
    loop,
    ...options?.pair,
  });
  await loop.advance(0);
  return { loop, protocol, peer, transport };
}

/** Sends each request to a fresh server and returns what it answered. */
async function answersTo(
  requests: string[],
  methods: Methods = {},
  framing: JsonRpcFraming = "newline",
  options?: JsonRpcProtocolOptions & { pair?: TransportPairOptions },
): Promise<unknown[]> {
  const { loop, peer } = await facingPeer(methods, { framing, ...options });
  peer.send(frame(framing, ...requests));
  await loop.advance(10);
  peer.transport!.close();
  await loop.advance(0);
  loop.close();
  return peer.messages(framing);
}

const arith: JsonRpcMethods = {
  add: ([a, b]: number[]) => a + b,
  subtract: (params) =>
    Array.isArray(params)
      ? (params[0] as number) - (params[1] as number)
      : (params!.minuend as number) - (params!.subtrahend as number),
  echo: (params) => params,
  nothing: () => undefined,
};

// --- Every split, every framing ---------------------------------------------

Deno.test("JsonRpcProtocol gives the same results over every framing and chunk size", async () => {
  const tricky = 'héllo ✓ "quoted" {brace} [bracket] \\ back\nnewline';
  for (const framing of FRAMINGS) {
    for (const chunkSize of CHUNK_SIZES) {
      const name = `${framing}, chunkSize ${chunkSize ?? "whole"}`;
      const notes: unknown[] = [];
      const { loop, client, clientTransport } = await connected(
        {
          ...arith,
          note: (p) => void notes.push(p),
          fail: () => {
            throw new JsonRpcError(7, "Seven", { why: "because" });
          },
        },
        {},
        {
          pair: chunkSize === undefined ? {} : { chunkSize },
          server: { framing },
          client: { framing },
        },
      );
      const got = await run(loop, async () => {
        client.notify("note", { n: 1 });
        const calls = [
          client.call("add", [2, 3]),
          client.call("echo", [tricky]),
          client.call("subtract", { minuend: 9, subtrahend: 4 }),
          client.call("nothing"),
        ];
        const batch = client.batch([
          { method: "add", params: [1, 1] },
          { method: "note", params: [2], notify: true },
          { method: "missing" },
        ]);
        const failed = await client.call("fail").then<null, unknown[]>(
          () => null,
          (e) => {
            const j = e as JsonRpcError;
            return [j.code, j.message, j.data];
          },
        );
        const results = await Promise.all(calls);
        const batchResults = await batch;
        return {
          results,
          batch: batchResults.map((r) =>
            r instanceof JsonRpcError ? r.code : r
          ),
          failed,
        };
      });
      assertEquals(got, {
        results: [5, [tricky], 5, null],
        batch: [2, undefined, -32601],
        failed: [7, "Seven", { why: "because" }],
      }, name);
      assertEquals(notes, [{ n: 1 }, [2]], name);
      assertEquals(client.pendingCount, 0, name);
      clientTransport.close();
      await loop.advance(0);
      loop.close();
    }
  }
});

Deno.test("JsonRpcProtocol answers the same bytes identically at every split point", async () => {
  for (const framing of FRAMINGS) {
    const input = frame(
      framing,
      '{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}',
      '[{"jsonrpc":"2.0","method":"echo","params":{"s":"}]\\""},"id":"x"},' +
        '{"jsonrpc":"2.0","method":"add","params":[0,0]}]',
      "{bad json}",
      '{"jsonrpc":"2.0","method":"nope","id":2}',
    );
    const expected = [
      { jsonrpc: "2.0", result: 3, id: 1 },
      [{ jsonrpc: "2.0", result: { s: '}]"' }, id: "x" }],
      null, // The parse error: checked below.
      { jsonrpc: "2.0", error: { code: -32601 }, id: 2 },
    ];
    const loop = new VirtualTimeLoop();
    const runs: { name: string; peer: Peer }[] = [];
    for (const { name, options } of splitCases(input.length)) {
      const { peer } = await facingPeer(
        arith,
        { framing, pair: options },
        loop,
      );
      peer.send(input);
      runs.push({ name: `${framing}, ${name}`, peer });
    }
    await loop.advance(1);
    for (const { name, peer } of runs) {
      const got = peer.messages(framing) as Record<string, unknown>[];
      assertEquals(got.length, 4, name);
      assertEquals(got[0], expected[0], name);
      assertEquals(got[1], expected[1], name);
      assertEquals(
        (got[2].error as Record<string, unknown>).code,
        -32700,
        name,
      );
      assertEquals(got[2].id, null, name);
      assertEquals(
        (got[3].error as Record<string, unknown>).code,
        -32601,
        name,
      );
      peer.transport!.close();
    }
    await loop.advance(0);
    loop.close();
  }
});

// --- Both directions ----------------------------------------------------------

Deno.test("JsonRpcProtocol lets both peers call each other at the same time", async () => {
  for (const chunkSize of CHUNK_SIZES) {
    const { loop, server, client, clientTransport } = await connected(
      {
        whoami: () => "server",
        // Serving a call while calling the client back on the same line.
        relay: async ([x]: number[], ctx: JsonRpcContext) =>
          `server got ${await ctx.protocol!.call("double", [x])}`,
      },
      {
        whoami: () => "client",
        double: ([x]: number[]) => sleep(1, 2 * x),
      },
      { pair: chunkSize === undefined ? {} : { chunkSize } },
    );
    const got = await run(loop, () =>
      Promise.all([
        client.call("whoami"),
        server.call("whoami"),
        client.call("relay", [21]),
        server.call("double", [5]),
      ]));
    assertEquals(got, ["server", "client", "server got 42", 10]);
    assertEquals([server.pendingCount, client.pendingCount], [0, 0]);
    clientTransport.close();
    await loop.advance(0);
    loop.close();
  }
});

Deno.test("JsonRpcProtocol answers requests in the order their methods finish", async () => {
  const { loop, peer, transport } = await facingPeer({
    slow: () => sleep(5, "slow"),
    fast: () => sleep(1, "fast"),
  });
  peer.send(
    frame(
      "newline",
      '{"jsonrpc":"2.0","method":"slow","id":1}',
      '{"jsonrpc":"2.0","method":"fast","id":2}',
    ),
  );
  await loop.advance(10);
  assertEquals(peer.messages("newline"), [
    { jsonrpc: "2.0", result: "fast", id: 2 },
    { jsonrpc: "2.0", result: "slow", id: 1 },
  ]);
  transport.close();
  await loop.advance(0);
  loop.close();
});

// --- Serving: the specification's examples ---------------------------------

Deno.test("JsonRpcProtocol answers calls with positional and named params", async () => {
  const got = await answersTo([
    '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}',
    '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}',
    '{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}',
    '{"jsonrpc": "2.0", "method": "echo", "id": "str"}',
    '{"jsonrpc": "2.0", "method": "echo", "params": [], "id": null}',
  ], arith);
  assertEquals(got, [
    { jsonrpc: "2.0", result: 19, id: 1 },
    { jsonrpc: "2.0", result: -19, id: 2 },
    { jsonrpc: "2.0", result: 19, id: 3 },
    { jsonrpc: "2.0", result: null, id: "str" },
    { jsonrpc: "2.0", result: [], id: null },
  ]);
});

Deno.test("JsonRpcProtocol runs notifications without answering them", async () => {
  const seen: unknown[] = [];
  const got = await answersTo([
    '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}',
    '{"jsonrpc": "2.0", "method": "foobar"}',
    '{"jsonrpc": "2.0", "method": "update"}',
  ], { update: (p) => void seen.push(p) });
  assertEquals(got, []);
  assertEquals(seen, [[1, 2, 3, 4, 5], undefined]);
});

Deno.test("JsonRpcProtocol reports a failed notification to the exception handler", async () => {
  const { loop, protocol, peer, transport } = await facingPeer({
    boom: () => {
      throw new TypeError("Broken");
    },
  });
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
  // Long enough to pay for the report, stack included.
  peer.send(
    `{"jsonrpc":"2.0","method":"boom","params":["${"x".repeat(4000)}"]}\n`,
  );
  await loop.advance(1);
  assertEquals(peer.messages("newline"), []);
  assertEquals(contexts.length, 1);
  assertStringIncludes(contexts[0].message, '"boom"');
  assertInstanceOf(contexts[0].exception, TypeError);
  assertEquals(protocol.failedNotifications, 1);
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol reports a notification that failed with a value that cannot be inspected", async () => {
  // Every inspection of it throws: instanceof, property reads, String().
  const hostile = new Proxy({}, {
    getPrototypeOf() {
      throw new Error("getPrototypeOf trap");
    },
    get() {
      throw new Error("get trap");
    },
  });
  const nullCircular: Record<string, unknown> = Object.create(null);
  nullCircular.self = nullCircular;
  const { loop, protocol, peer, transport } = await facingPeer({
    throws: () => {
      throw hostile;
    },
    rejects: () => Promise.reject(hostile),
    // Too big for its report whole: shortened to one line.
    circular: () => Promise.reject(nullCircular),
    ping: () => "pong",
  });
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
  for (const method of ["throws", "rejects"]) {
    peer.send(
      `{"jsonrpc":"2.0","method":"${method}","params":["${
        "x".repeat(500)
      }"]}\n`,
    );
  }
  peer.send('{"jsonrpc":"2.0","method":"circular"}\n');
  peer.send('{"jsonrpc":"2.0","method":"ping","id":1}\n');
  await loop.advance(1);
  assertEquals(peer.messages("newline"), [
    { jsonrpc: "2.0", result: "pong", id: 1 },
  ]);
  assertEquals(protocol.failedNotifications, 3);
  assertEquals(contexts.length, 1);
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol answers a batch with an array in the batch's order", async () => {
  const [got] = await answersTo([
    `[
      {"jsonrpc": "2.0", "method": "add", "params": [1,2], "id": "1"},
      {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
      {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
      {"foo": "boo"},
      {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
      {"jsonrpc": "2.0", "method": "echo", "params": ["x"], "id": "9"}
    ]`.replaceAll("\n", ""),
  ], { ...arith, notify_hello: () => {} });
  const items = got as Record<string, unknown>[];
  assertEquals(items.length, 5);
  assertEquals(items[0], { jsonrpc: "2.0", result: 3, id: "1" });
  assertEquals(items[1], { jsonrpc: "2.0", result: 19, id: "2" });
  assertEquals((items[2].error as { code: number }).code, -32600);
  assertEquals(items[2].id, null);
  assertEquals((items[3].error as { code: number }).code, -32601);
  assertEquals(items[3].id, "5");
  assertEquals(items[4], { jsonrpc: "2.0", result: ["x"], id: "9" });
});

Deno.test("JsonRpcProtocol waits for every call of a batch before answering it", async () => {
  const { loop, peer, transport } = await facingPeer({
    slow: () => sleep(5, "slow"),
    fast: () => "fast",
  });
  peer.send(
    '[{"jsonrpc":"2.0","method":"slow","id":1},{"jsonrpc":"2.0","method":"fast","id":2}]\n',
  );
  await loop.advance(4);
  assertEquals(peer.messages("newline"), []);
  await loop.advance(1);
  assertEquals(peer.messages("newline"), [[
    { jsonrpc: "2.0", result: "slow", id: 1 },
    { jsonrpc: "2.0", result: "fast", id: 2 },
  ]]);
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol sends nothing for a batch of notifications only", async () => {
  let count = 0;
  const got = await answersTo([
    '[{"jsonrpc":"2.0","method":"n","params":[1]},{"jsonrpc":"2.0","method":"n"}]',
  ], { n: () => void count++ });
  assertEquals(got, []);
  assertEquals(count, 2);
});

Deno.test("JsonRpcProtocol answers an empty batch with one Invalid Request error", async () => {
  const got = await answersTo(["[]"]) as Record<string, unknown>[];
  assertEquals(got.length, 1);
  assertFalse(Array.isArray(got[0]));
  assertEquals((got[0].error as { code: number }).code, -32600);
  assertEquals(got[0].id, null);
});

Deno.test("JsonRpcProtocol answers a batch of non-objects with one error each", async () => {
  const [got] = await answersTo(["[1,2,3]"]) as Record<string, unknown>[][];
  assertEquals(got.length, 3);
  for (const item of got) {
    assertEquals((item.error as { code: number }).code, -32600);
    assertEquals(item.id, null);
  }
});

// --- Serving: every error code ---------------------------------------------

Deno.test("JsonRpcProtocol answers malformed JSON and bad UTF-8 with -32700", async () => {
  for (const framing of FRAMINGS) {
    const got = await answersTo(
      [
        '{"jsonrpc": "2.0", "method": "foobar", "params": "bar", "baz"}',
        "{bad}",
        '[{"jsonrpc": "2.0", "method": "add", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method"}]',
        "[1,,2]",
      ],
      arith,
      framing,
    ) as Record<string, unknown>[];
    assertEquals(got.length, 4, framing);
    for (const item of got) {
      assertEquals((item.error as { code: number }).code, -32700, framing);
      assertEquals(item.id, null, framing);
    }
  }
  const { loop, peer, transport } = await facingPeer({}, { framing: "length" });
  peer.send(frame("length", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])));
  await loop.advance(0);
  const [reply] = peer.messages("length") as Record<string, unknown>[];
  const error = reply.error as { code: number; message: string };
  assertEquals(error.code, -32700);
  assertStringIncludes(error.message, "UTF-8");
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol answers invalid request objects with -32600", async () => {
  const got = await answersTo([
    '{"jsonrpc": "2.0", "method": 1, "params": "bar"}',
    '{"jsonrpc": "1.0", "method": "add", "params": [1, 2], "id": 4}',
    '{"method": "add", "params": [1, 2], "id": 5}',
    '{"jsonrpc": "2.0", "method": "add", "params": 3, "id": 6}',
    '{"jsonrpc": "2.0", "method": "add", "params": null, "id": 7}',
    '{"jsonrpc": "2.0", "method": "add", "id": {"no": 1}}',
    '"just a string"',
    "42",
  ], arith) as Record<string, unknown>[];
  assertEquals(got.map((r) => (r.error as { code: number }).code), [
    -32600,
    -32600,
    -32600,
    -32600,
    -32600,
    -32600,
    -32600,
    -32600,
  ]);
  // The id is echoed when it is a valid id, else null.
  assertEquals(got.map((r) => r.id), [null, 4, 5, 6, 7, null, null, null]);
});

Deno.test("JsonRpcProtocol answers an unknown method with -32601", async () => {
  const got = await answersTo([
    '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}',
    '{"jsonrpc": "2.0", "method": "toString", "id": 2}',
    '{"jsonrpc": "2.0", "method": "constructor", "id": 3}',
    '{"jsonrpc": "2.0", "method": "__proto__", "id": 4}',
    '{"jsonrpc": "2.0", "method": "hasOwnProperty", "id": 5}',
    '{"jsonrpc": "2.0", "method": "notAFunction", "id": 6}',
  ], { notAFunction: 3 as unknown as () => void }) as Record<
    string,
    unknown
  >[];
  assertEquals(got.map((r) => (r.error as { code: number }).code), [
    -32601,
    -32601,
    -32601,
    -32601,
    -32601,
    -32601,
  ]);
  assertStringIncludes(
    (got[0].error as { message: string }).message,
    '"foobar"',
  );
  assertEquals(got.map((r) => r.id), ["1", 2, 3, 4, 5, 6]);
});

Deno.test("JsonRpcProtocol serves the entries of a Map, never its own methods", async () => {
  const methods = new Map([["add", ([a, b]: number[]) => a + b]]);
  const got = await answersTo(
    ["add", "set", "get", "clear", "has", "keys", "forEach", "toString"].map(
      (method, id) =>
        JSON.stringify({ jsonrpc: "2.0", method, params: [2, 3], id }),
    ),
    methods,
  ) as { result?: unknown; error?: { code: number } }[];
  assertEquals(got.map((r) => r.result ?? r.error!.code), [
    5,
    -32601,
    -32601,
    -32601,
    -32601,
    -32601,
    -32601,
    -32601,
  ]);
  assertEquals([...methods.keys()], ["add"]);
});

Deno.test("JsonRpcProtocol sends the code, message and data of a thrown JsonRpcError", async () => {
  const got = await answersTo([
    '{"jsonrpc":"2.0","method":"check","params":["x"],"id":1}',
    '{"jsonrpc":"2.0","method":"app","id":2}',
    '{"jsonrpc":"2.0","method":"rejects","id":3}',
    '{"jsonrpc":"2.0","method":"server","id":4}',
  ], {
    check: ([x]: unknown[]) => {
      if (typeof x !== "number") {
        throw new JsonRpcError(
          JsonRpcError.INVALID_PARAMS,
          "Invalid params",
          { expected: "number" },
        );
      }
      return x;
    },
    app: () => {
      throw new JsonRpcError(1234, "Out of tulips");
    },
    rejects: () => Promise.reject(new JsonRpcError(-1, "Async no", [1])),
    server: () => {
      throw new JsonRpcError(-32001, "Busy");
    },
  });
  // The rejected promise answers last: compare in id order.
  (got as { id: number }[]).sort((a, b) => a.id - b.id);
  assertEquals(got, [
    {
      jsonrpc: "2.0",
      error: {
        code: -32602,
        message: "Invalid params",
        data: { expected: "number" },
      },
      id: 1,
    },
    { jsonrpc: "2.0", error: { code: 1234, message: "Out of tulips" }, id: 2 },
    {
      jsonrpc: "2.0",
      error: { code: -1, message: "Async no", data: [1] },
      id: 3,
    },
    { jsonrpc: "2.0", error: { code: -32001, message: "Busy" }, id: 4 },
  ]);
});

Deno.test("JsonRpcProtocol answers any other failure with -32603 and no stack", async () => {
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  const got = await answersTo([
    '{"jsonrpc":"2.0","method":"throws","id":1}',
    '{"jsonrpc":"2.0","method":"rejects","id":2}',
    '{"jsonrpc":"2.0","method":"string","id":3}',
    '{"jsonrpc":"2.0","method":"bigint","id":4}',
    '{"jsonrpc":"2.0","method":"cycle","id":5}',
    '{"jsonrpc":"2.0","method":"future","id":6}',
    '{"jsonrpc":"2.0","method":"empty","id":7}',
  ], {
    throws: () => {
      throw new RangeError("Too big");
    },
    rejects: async () => {
      await sleep(1);
      throw new Error("Later");
    },
    string: () => {
      throw "plain string";
    },
    bigint: () => 10n,
    cycle: () => cycle,
    future: () => {
      const f = new Future<number>();
      f.getLoop().callLater(
        1,
        () => f.setException(new Error("Future failed")),
      );
      return f;
    },
    empty: () => {
      throw new Error();
    },
  }) as Record<string, Record<string, unknown>>[];
  (got as unknown as { id: number }[]).sort((a, b) => a.id - b.id);
  assertEquals(got.map((r) => r.error.code), Array(7).fill(-32603));
  assertEquals(got.map((r) => r.error.message).slice(0, 3), [
    "Too big",
    "Later",
    "plain string",
  ]);
  assertStringIncludes(String(got[3].error.message), "serialize");
  assertStringIncludes(String(got[4].error.message), "serialize");
  assertEquals(got[5].error.message, "Future failed");
  assertEquals(got[6].error.message, "Internal error");
  for (const r of got) {
    assertEquals(Object.keys(r.error).sort(), ["code", "message"]);
    assertFalse(String(r.error.message).includes("    at "));
  }
});

// --- Serving: what methods may return --------------------------------------

Deno.test("JsonRpcProtocol serves methods returning values, promises, futures and coroutines", async () => {
  class Counter {
    n = 10;
    bump() {
      return ++this.n;
    }
  }
  const counter = new Counter();
  const got = await answersTo([
    '{"jsonrpc":"2.0","method":"value","id":1}',
    '{"jsonrpc":"2.0","method":"promise","id":2}',
    '{"jsonrpc":"2.0","method":"future","id":3}',
    '{"jsonrpc":"2.0","method":"coroutine","params":[4],"id":4}',
    '{"jsonrpc":"2.0","method":"bump","id":5}',
    '{"jsonrpc":"2.0","method":"context","id":6}',
  ], {
    value: () => ({ a: [1, "two", true, null] }),
    promise: () => Promise.resolve("promised"),
    future: () => sleep(2, "future"),
    *coroutine([x]: number[]): Coroutine<number> {
      yield* sleep(1);
      return x * 10;
    },
    bump: () => counter.bump(),
    context: (_p, ctx) => [ctx.method, ctx.id, ctx.protocol !== undefined],
  });
  const byId = (got as { id: number; result: unknown }[])
    .toSorted((a, b) => a.id - b.id)
    .map((r) => r.result);
  assertEquals(byId, [
    { a: [1, "two", true, null] },
    "promised",
    "future",
    40,
    11,
    ["context", 6, true],
  ]);
});

Deno.test("JsonRpcProtocol calls a method with its object as this", async () => {
  const methods = {
    base: 5,
    plus([x]: number[]) {
      return this.base + x;
    },
  };
  const got = await answersTo(
    ['{"jsonrpc":"2.0","method":"plus","params":[1],"id":1}'],
    methods as unknown as JsonRpcMethods,
  );
  assertEquals(got, [{ jsonrpc: "2.0", result: 6, id: 1 }]);
});

// --- Calling ----------------------------------------------------------------

Deno.test("JsonRpcProtocol.call() sends numbered requests and matches answers by id", async () => {
  const { loop, protocol, peer, transport } = await facingPeer({});
  const a = protocol.call("a", [1]);
  const b = protocol.call("b", { k: "v" });
  const c = protocol.call("c");
  protocol.notify("n", [true]);
  protocol.notify("m");
  await loop.advance(0);
  assertEquals(peer.messages("newline"), [
    { jsonrpc: "2.0", method: "a", params: [1], id: 1 },
    { jsonrpc: "2.0", method: "b", params: { k: "v" }, id: 2 },
    { jsonrpc: "2.0", method: "c", id: 3 },
    { jsonrpc: "2.0", method: "n", params: [true] },
    { jsonrpc: "2.0", method: "m" },
  ]);
  assertEquals(protocol.pendingCount, 3);
  // Answers in any order, one batched, one without "jsonrpc" (accepted).
  peer.send('{"jsonrpc":"2.0","result":"C","id":3}\n');
  peer.send(
    '[{"jsonrpc":"2.0","result":"B","id":2},{"result":"A","id":1}]\n',
  );
  assertEquals(await loop.runUntilComplete(a), "A");
  assertEquals(await loop.runUntilComplete(b), "B");
  assertEquals(await loop.runUntilComplete(c), "C");
  assertEquals(protocol.pendingCount, 0);
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol.call() fails with a JsonRpcError carrying code, message and data", async () => {
  const { loop, protocol, peer, transport } = await facingPeer({});
  const a = protocol.call("a");
  const b = protocol.call("b");
  const c = protocol.call("c");
  peer.send(
    frame(
      "newline",
      '{"jsonrpc":"2.0","error":{"code":-32000,"message":"Nope","data":{"x":1}},"id":1}',
      '{"jsonrpc":"2.0","error":{"message":"No code"},"id":2}',
      '{"jsonrpc":"2.0","error":null,"id":3}',
    ),
  );
  const ea = await assertRejects(() => loop.runUntilComplete(a), JsonRpcError);
  assertEquals([ea.code, ea.message, ea.data], [-32000, "Nope", { x: 1 }]);
  const eb = await assertRejects(() => loop.runUntilComplete(b), JsonRpcError);
  assertEquals(eb.code, -32603);
  assertStringIncludes(eb.message, "Invalid response");
  const ec = await assertRejects(() => loop.runUntilComplete(c), JsonRpcError);
  assertEquals(ec.code, -32603);
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol takes a message with a waited-for id but no result or error as an invalid response, and answers it nothing", async () => {
  // A sloppy peer's answer to a method that returned undefined:
  // JSON.stringify({ jsonrpc, result: undefined, id }) drops the result.
  const { loop, protocol, peer, transport } = await facingPeer({});
  const call = protocol.call("nothing");
  const batch = protocol.batch([{ method: "a" }, { method: "b" }]);
  await loop.advance(0);
  const sent = peer.messages("newline").length;
  peer.send(
    frame(
      "newline",
      '{"jsonrpc":"2.0","id":1}',
      '[{"jsonrpc":"2.0","result":"A","id":2},{"jsonrpc":"2.0","id":3}]',
      // No call waits for id 7: a request without a method, as before.
      '{"jsonrpc":"2.0","id":7}',
    ),
  );
  const e = await assertRejects(
    () => loop.runUntilComplete(call),
    JsonRpcError,
  );
  assertEquals(e.code, JsonRpcError.INTERNAL_ERROR);
  assertStringIncludes(e.message, "neither a result nor an error");
  const results = await loop.runUntilComplete(batch);
  assertEquals(results[0], "A");
  assertInstanceOf(results[1], JsonRpcError);
  assertEquals((results[1] as JsonRpcError).code, JsonRpcError.INTERNAL_ERROR);
  await loop.advance(0);
  const replies = peer.messages("newline").slice(sent);
  assertEquals(replies.length, 1);
  assertEquals((replies[0] as { id: unknown }).id, 7);
  assertEquals(
    (replies[0] as { error: { code: number } }).error.code,
    JsonRpcError.INVALID_REQUEST,
  );
  assertEquals([protocol.pendingCount, protocol.strayResponses], [0, 0]);
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol answers a request-shaped message without a method as the peer's invalid request, even with a waiting call's id", async () => {
  // JSON-RPC 2.0 section 5: a response has no params. A message carrying
  // params is the peer's request, however broken: it is answered with
  // -32600 under its own id, and the call of ours with that id still waits.
  const { loop, protocol, peer, transport } = await facingPeer({});
  const call = protocol.call("name");
  const batch = protocol.batch([{ method: "a" }]);
  await loop.advance(0);
  const sent = peer.messages("newline").length;
  peer.send(
    frame(
      "newline",
      '{"jsonrpc":"2.0","params":[1],"id":1}',
      '[{"jsonrpc":"2.0","params":{},"id":2}]',
    ),
  );
  await loop.advance(0);
  const replies = peer.messages("newline").slice(sent) as unknown[];
  assertEquals(replies.length, 2);
  const single = replies[0] as { id: unknown; error: { code: number } };
  assertEquals([single.id, single.error.code], [
    1,
    JsonRpcError.INVALID_REQUEST,
  ]);
  const inBatch = (replies[1] as { id: unknown; error: { code: number } }[])[0];
  assertEquals(
    [inBatch.id, inBatch.error.code],
    [2, JsonRpcError.INVALID_REQUEST],
  );
  assertEquals([call.done(), batch.done(), protocol.pendingCount], [
    false,
    false,
    2,
  ]);
  peer.send(
    frame(
      "newline",
      '{"jsonrpc":"2.0","result":"Ada","id":1}',
      '[{"jsonrpc":"2.0","result":"A","id":2}]',
    ),
  );
  assertEquals(await loop.runUntilComplete(call), "Ada");
  assertEquals(await loop.runUntilComplete(batch), ["A"]);
  assertEquals(protocol.strayResponses, 0);
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol.call() checks its arguments and the connection", async () => {
  const loop = new VirtualTimeLoop();
  const protocol = new JsonRpcProtocol({}, { loop });
  assertThrows(() => protocol.call("x"), InvalidStateError, "not connected");
  assertThrows(() => protocol.notify("x"), InvalidStateError);
  const [transport] = transportPair(protocol, new Peer(), { loop });
  await loop.advance(0);
  assertThrows(() => protocol.call(1 as unknown as string), TypeError);
  assertThrows(() => protocol.call("x", 3 as unknown as []), TypeError);
  assertThrows(() => protocol.call("x", null as unknown as []), TypeError);
  assertThrows(() => protocol.call("x", [1n]), TypeError, "JSON");
  assertThrows(
    () => protocol.call("x", new Date() as unknown as []),
    TypeError,
    "array or object",
  );
  assertThrows(
    () => protocol.call("x", [], { timeout: "5" as unknown as number }),
    TypeError,
  );
  assertThrows(() => protocol.notify("x", "y" as unknown as []), TypeError);
  assertEquals(protocol.pendingCount, 0);
  transport.close();
  assertThrows(() => protocol.call("x"), InvalidStateError, "closing");
  await loop.advance(0);
  assertThrows(() => protocol.call("x"), InvalidStateError, "lost");
  loop.close();
});

Deno.test("JsonRpcProtocol.batch() sends one array and gives results in order", async () => {
  const { loop, protocol, peer, transport } = await facingPeer({});
  const done = protocol.batch([
    { method: "a", params: [1] },
    { method: "n", notify: true },
    { method: "b" },
    { method: "c", params: { z: 0 } },
  ]);
  await loop.advance(0);
  assertEquals(peer.messages("newline"), [[
    { jsonrpc: "2.0", method: "a", params: [1], id: 1 },
    { jsonrpc: "2.0", method: "n" },
    { jsonrpc: "2.0", method: "b", id: 2 },
    { jsonrpc: "2.0", method: "c", params: { z: 0 }, id: 3 },
  ]]);
  assertEquals(protocol.pendingCount, 3);
  // Answers out of order, split over two messages.
  peer.send('[{"jsonrpc":"2.0","result":"C","id":3}]\n');
  await loop.advance(0);
  assertFalse(done.done());
  peer.send(
    '[{"jsonrpc":"2.0","error":{"code":5,"message":"B failed"},"id":2},{"jsonrpc":"2.0","result":null,"id":1}]\n',
  );
  const results = await loop.runUntilComplete(done);
  assertEquals(results[0], null);
  assertEquals(results[1], undefined);
  assertInstanceOf(results[2], JsonRpcError);
  assertEquals((results[2] as JsonRpcError).code, 5);
  assertEquals(results[3], "C");
  assertEquals(protocol.pendingCount, 0);
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol.batch() of notifications only is done once sent", async () => {
  const { loop, protocol, peer, transport } = await facingPeer({});
  const done = protocol.batch([
    { method: "x", notify: true },
    { method: "y", params: [1], notify: true },
  ]);
  assert(done.done());
  assertEquals(done.result(), [undefined, undefined]);
  await loop.advance(0);
  assertEquals(peer.messages("newline"), [[
    { jsonrpc: "2.0", method: "x" },
    { jsonrpc: "2.0", method: "y", params: [1] },
  ]]);
  assertThrows(() => protocol.batch([]), RangeError);
  assertThrows(() => protocol.batch("x" as unknown as []), TypeError);
  assertThrows(
    () => protocol.batch([null as unknown as { method: "" }]),
    TypeError,
  );
  assertThrows(
    () => protocol.batch([{ method: 3 as unknown as string }]),
    TypeError,
  );
  transport.close();
  await loop.advance(0);
  loop.close();
});

// --- Timeouts and cancellation ------------------------------------------------

Deno.test("JsonRpcProtocol.call() times out on virtual time and drops the call", async () => {
  const { loop, server, client, clientTransport } = await connected({
    slow: () => sleep(10, "late"),
  }, {});
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
  const call = client.call("slow", [], { timeout: 5 });
  const error = await assertRejects(
    () => loop.runUntilComplete(call),
    TimeoutError,
  );
  assertEquals(loop.time(), 5);
  assertStringIncludes(error.message, '"slow"');
  assertEquals(client.pendingCount, 0);
  // The late answer arrives and is ignored quietly.
  await loop.advance(10);
  assertEquals(contexts, []);
  assertEquals(server.pendingCount, 0);
  clientTransport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol's timeout option is the default for call() and batch()", async () => {
  const { loop, client, clientTransport } = await connected(
    {
      slow: () => sleep(10, "late"),
      quick: () => sleep(1, "quick"),
    },
    {},
    { client: { timeout: 3 } },
  );
  await assertRejects(
    () => loop.runUntilComplete(client.call("slow")),
    TimeoutError,
  );
  assertEquals(loop.time(), 3);
  assertEquals(await loop.runUntilComplete(client.call("quick")), "quick");
  const batch = client.batch([{ method: "quick" }, { method: "slow" }]);
  await assertRejects(() => loop.runUntilComplete(batch), TimeoutError);
  assertEquals(client.pendingCount, 0);
  // An explicit null means no timeout.
  const patient = client.call("slow", [], { timeout: null });
  assertEquals(await loop.runUntilComplete(patient), "late");
  clientTransport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol forgets a cancelled call and ignores its answer", async () => {
  const { loop, protocol, peer, transport } = await facingPeer({});
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
  const call = protocol.call("x", [], { timeout: 100 });
  const batch = protocol.batch([{ method: "y" }, { method: "z" }]);
  assertEquals(protocol.pendingCount, 3);
  call.cancel();
  batch.cancel();
  await loop.advance(0);
  assertEquals(protocol.pendingCount, 0);
  peer.send(
    '{"jsonrpc":"2.0","result":1,"id":1}\n[{"jsonrpc":"2.0","result":2,"id":2}]\n',
  );
  await loop.advance(200);
  assertEquals(contexts, []);
  assert(call.cancelled());
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol counts answers to calls it gave up on, quietly and apart from strays", async () => {
  const { loop, protocol, peer, transport } = await facingPeer({});
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
  const timedOut = protocol.call("a", [], { timeout: 1 });
  const cancelled = protocol.call("b");
  const answered = protocol.call("c");
  const batch = protocol.batch([{ method: "d" }, { method: "e" }], {
    timeout: 1,
  });
  cancelled.cancel();
  await loop.advance(2);
  assert(timedOut.exception() instanceof TimeoutError);
  peer.send(frame(
    "newline",
    '{"jsonrpc":"2.0","result":"c","id":3}',
    '{"jsonrpc":"2.0","result":"late","id":1}',
    '{"jsonrpc":"2.0","error":{"code":1,"message":"late"},"id":2}',
    '{"jsonrpc":"2.0","result":"again","id":3}',
    '[{"jsonrpc":"2.0","result":1,"id":4},{"jsonrpc":"2.0","result":2,"id":5}]',
  ));
  await loop.advance(0);
  assertEquals(answered.result(), "c");
  assertEquals(protocol.lateResponses, 5);
  assertEquals(protocol.strayResponses, 0);
  assert(batch.exception() instanceof TimeoutError);
  // An id never sent is a stray, not late.
  peer.send('{"jsonrpc":"2.0","result":1,"id":6}\n');
  await loop.advance(0);
  assertEquals([protocol.lateResponses, protocol.strayResponses], [5, 1]);
  assertEquals(contexts.length, 1);
  transport.close();
  await loop.advance(0);
  loop.close();
});

// --- A whole batch rejected with one error (id null) --------------------------

const REJECTED =
  '{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: too long","data":{"max":2}},"id":null}';

Deno.test("JsonRpcProtocol.batch() fails with the error a tulip server rejects it with (over maxBatch), without a timeout", async () => {
  const { loop, client, clientTransport } = await connected(
    { ping: () => "pong" },
    {},
    { server: { maxBatch: 2 } },
  );
  const over = client.batch([
    { method: "ping" },
    { method: "ping" },
    { method: "ping" },
  ]);
  await loop.advance(0);
  assert(over.done(), "the batch waits for ever");
  const error = over.exception() as JsonRpcError;
  assertInstanceOf(error, JsonRpcError);
  assertEquals(error.code, JsonRpcError.INVALID_REQUEST);
  assertStringIncludes(error.message, "maxBatch=2");
  assertEquals([client.strayResponses, client.pendingCount], [0, 0]);
  // The connection goes on, and an array answer works as before.
  const ok = client.batch([{ method: "ping" }, { method: "ping" }]);
  assertEquals(await loop.runUntilComplete(ok), ["pong", "pong"]);
  clientTransport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol gives one error with id null to the oldest batch still waiting for an answer", async () => {
  for (const framing of FRAMINGS) {
    const { loop, protocol, peer, transport } = await facingPeer({}, {
      framing,
    });
    const contexts: ExceptionContext[] = [];
    loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
    const single = protocol.call("s"); // id 1
    const first = protocol.batch([{ method: "a" }, { method: "b" }]); // 2, 3
    const second = protocol.batch([{ method: "c" }, { method: "d" }]); // 4, 5
    const third = protocol.batch([{ method: "e" }]); // 6
    await loop.advance(0);
    // The first batch is partly answered: the peer took it, so a rejection
    // is not about it.
    peer.send(frame(framing, '[{"jsonrpc":"2.0","result":"a","id":2}]'));
    await loop.advance(0);
    peer.send(frame(framing, REJECTED));
    await loop.advance(0);
    assertFalse(first.done(), framing);
    const error = second.exception() as JsonRpcError;
    assertInstanceOf(error, JsonRpcError, framing);
    assertEquals(
      [error.code, error.message, error.data],
      [-32600, "Invalid Request: too long", { max: 2 }],
      framing,
    );
    assertFalse(third.done(), framing);
    assertFalse(single.done(), framing);
    assertEquals(protocol.pendingCount, 3, framing);
    // An error with id null inside an array names no batch: a stray.
    peer.send(frame(framing, `[${REJECTED}]`));
    await loop.advance(0);
    assertFalse(third.done(), framing);
    assertEquals(protocol.strayResponses, 1, framing);
    peer.send(frame(
      framing,
      '[{"jsonrpc":"2.0","result":"b","id":3}]',
      '[{"jsonrpc":"2.0","result":"e","id":6}]',
      '{"jsonrpc":"2.0","result":"s","id":1}',
    ));
    await loop.advance(0);
    assertEquals(first.result(), ["a", "b"], framing);
    assertEquals(third.result(), ["e"], framing);
    assertEquals(single.result(), "s", framing);
    // An answer to the rejected batch after all is late.
    peer.send(frame(framing, '[{"jsonrpc":"2.0","result":"c","id":4}]'));
    await loop.advance(0);
    assertEquals(
      [protocol.lateResponses, protocol.strayResponses],
      [1, 1],
      framing,
    );
    assertEquals(contexts.length, 1, framing);
    transport.close();
    await loop.advance(0);
    loop.close();
  }
});

Deno.test("JsonRpcProtocol counts an error with id null for a batch that timed out as late, not as a stray", async () => {
  const { loop, protocol, peer, transport } = await facingPeer({});
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
  const batch = protocol.batch([{ method: "a" }, { method: "b" }], {
    timeout: 1,
  });
  await loop.advance(2);
  assertInstanceOf(batch.exception(), TimeoutError);
  // A call made since is not what the rejection is about.
  const call = protocol.call("c");
  peer.send(frame("newline", REJECTED));
  await loop.advance(0);
  assertEquals([protocol.lateResponses, protocol.strayResponses], [1, 0]);
  assertFalse(call.done());
  assertEquals(contexts, []);
  // The batch is answered for: a second rejection fits the one call.
  peer.send(frame("newline", REJECTED));
  await loop.advance(0);
  assertInstanceOf(call.exception(), JsonRpcError);
  assertEquals([protocol.lateResponses, protocol.strayResponses], [1, 0]);
  // A batch cancelled, then answered with an array after all: a later
  // error with id null has nothing to answer.
  const cancelled = protocol.batch([{ method: "d" }]);
  cancelled.cancel();
  await loop.advance(0);
  peer.send(frame("newline", '[{"jsonrpc":"2.0","result":1,"id":4}]'));
  await loop.advance(0);
  peer.send(frame("newline", REJECTED));
  await loop.advance(0);
  assertEquals([protocol.lateResponses, protocol.strayResponses], [2, 1]);
  // A batch still waiting goes before one given up on: an old batch the
  // peer never answered does not swallow the rejection of a new one.
  const abandoned = protocol.batch([{ method: "e" }], { timeout: 1 });
  await loop.advance(2);
  const fresh = protocol.batch([{ method: "f" }]);
  peer.send(frame("newline", REJECTED));
  await loop.advance(0);
  assertInstanceOf(abandoned.exception(), TimeoutError);
  assertInstanceOf(fresh.exception(), JsonRpcError);
  assertEquals([protocol.lateResponses, protocol.strayResponses], [2, 1]);
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol gives an error with id null to the one call waiting when no batch is, else counts a stray", async () => {
  const { loop, protocol, peer, transport } = await facingPeer({});
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
  const parseError =
    '{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}';
  const one = protocol.call("one");
  peer.send(frame("newline", parseError));
  await loop.advance(0);
  const error = one.exception() as JsonRpcError;
  assertInstanceOf(error, JsonRpcError);
  assertEquals([error.code, error.message], [-32700, "Parse error"]);
  assertEquals([protocol.strayResponses, protocol.pendingCount], [0, 0]);
  // Two calls waiting: which one it answers is unknown.
  const a = protocol.call("a");
  const b = protocol.call("b");
  peer.send(frame("newline", parseError));
  await loop.advance(0);
  assertFalse(a.done());
  assertFalse(b.done());
  assertEquals(protocol.strayResponses, 1);
  a.cancel();
  b.cancel();
  await loop.advance(0);
  // A call that timed out unanswered: its rejection is late.
  const timedOut = protocol.call("t", [], { timeout: 1 });
  await loop.advance(2);
  assertInstanceOf(timedOut.exception(), TimeoutError);
  peer.send(frame("newline", parseError));
  await loop.advance(0);
  assertEquals([protocol.lateResponses, protocol.strayResponses], [1, 1]);
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol reports the first answer to a call it never made, and counts them all", async () => {
  const { loop, protocol, peer, transport } = await facingPeer({});
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
  peer.send(
    frame(
      "newline",
      `{"jsonrpc":"2.0","result":"${"x".repeat(2000)}","id":99}`,
      '{"jsonrpc":"2.0","result":1,"id":"abc"}',
      '{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}',
    ),
  );
  await loop.advance(0);
  assertEquals(contexts.length, 1);
  assertStringIncludes(String(contexts[0].exception), "99");
  assertEquals(contexts[0].protocol, protocol);
  assertEquals(protocol.strayResponses, 3);
  // The connection goes on.
  const call = protocol.call("still");
  peer.send('{"jsonrpc":"2.0","result":"fine","id":1}\n');
  assertEquals(await loop.runUntilComplete(call), "fine");
  assertEquals(peer.messages("newline"), [
    { jsonrpc: "2.0", method: "still", id: 1 },
  ]);
  transport.close();
  await loop.advance(0);
  // One line at the end counts what was held back.
  assertEquals(contexts.length, 2);
  assertStringIncludes(contexts[1].message, "2 problems");
  assertStringIncludes(contexts[1].message, "3 stray responses");
  assertEquals(contexts[1].exception, undefined);
  loop.close();
});

// --- Connection loss ----------------------------------------------------------

Deno.test("JsonRpcProtocol fails waiting calls with ConnectionReset naming the method", async () => {
  const { loop, server, client } = await connected(
    {
      slow: () => sleep(10, "late"),
    },
    {},
    { pair: { resetAfter: 200 } },
  );
  const call = client.call("slow", [1], { timeout: 50 });
  const batch = client.batch([{ method: "slow" }, { method: "other" }]);
  // Enough traffic to reach the reset.
  client.notify("pad", ["x".repeat(200)]);
  const e1 = await assertRejects(
    () => loop.runUntilComplete(call),
    Deno.errors.ConnectionReset,
  );
  assertStringIncludes(e1.message, 'call "slow" (id 1)');
  assertInstanceOf(e1.cause, Deno.errors.ConnectionReset);
  const e2 = await assertRejects(
    () => loop.runUntilComplete(batch),
    Deno.errors.ConnectionReset,
  );
  assertStringIncludes(e2.message, '"slow", "other"');
  assertEquals(client.pendingCount, 0);
  assertEquals(server.transport, null);
  assertThrows(() => client.call("slow"), InvalidStateError);
  await loop.advance(100);
  loop.close();
});

Deno.test("JsonRpcProtocol fails waiting calls when the peer closes cleanly", async () => {
  const { loop, protocol, peer } = await facingPeer({});
  const call = protocol.call("x");
  await loop.advance(0);
  peer.transport!.close();
  const error = await assertRejects(
    () => loop.runUntilComplete(call),
    Deno.errors.ConnectionReset,
  );
  assertStringIncludes(error.message, '"x"');
  assertEquals(error.cause, undefined);
  loop.close();
});

Deno.test("JsonRpcProtocol aborts the signal of running methods when the connection is lost", async () => {
  let signal: AbortSignal | undefined;
  const { loop, peer } = await facingPeer({
    wait: (_p, ctx) => {
      signal = ctx.signal;
      return new Promise((_resolve, reject) =>
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))
      );
    },
  });
  peer.send('{"jsonrpc":"2.0","method":"wait","id":1}\n');
  await loop.advance(1);
  assertFalse(signal!.aborted);
  peer.transport!.abort();
  await loop.advance(1);
  assert(signal!.aborted);
  assertEquals(peer.messages("newline"), []);
  loop.close();
});

Deno.test("JsonRpcProtocol writes pending answers before closing after the peer's EOF", async () => {
  const { loop, protocol, peer } = await facingPeer({
    slow: () => sleep(5, "done"),
  });
  peer.send('{"jsonrpc":"2.0","method":"slow","id":1}\n');
  peer.transport!.writeEof();
  await loop.advance(1);
  assert(protocol.transport !== null);
  await loop.advance(5);
  assertEquals(peer.messages("newline"), [
    { jsonrpc: "2.0", result: "done", id: 1 },
  ]);
  assert(peer.eof);
  assertEquals(protocol.transport, null);
  loop.close();
});

Deno.test("JsonRpcProtocol answers a last request whose line the peer ended with EOF instead of a newline", async () => {
  // As asyncio's readline() returns the last line without its newline.
  const { loop, protocol, peer } = await facingPeer({
    ...arith,
    slow: () => sleep(5, "done"),
  });
  peer.send(
    '{"jsonrpc":"2.0","method":"slow","id":1}\n' +
      '{"jsonrpc":"2.0","method":"add","params":[1,2],"id":2}',
  );
  peer.transport!.writeEof();
  await loop.advance(0);
  assertEquals(peer.messages("newline"), [
    { jsonrpc: "2.0", result: 3, id: 2 },
  ]);
  assert(protocol.transport !== null);
  await loop.advance(5);
  assertEquals(peer.messages("newline"), [
    { jsonrpc: "2.0", result: 3, id: 2 },
    { jsonrpc: "2.0", result: "done", id: 1 },
  ]);
  assertEquals(protocol.transport, null);
  loop.close();
  // Alone, with a CR before the EOF, and answered before closing at once.
  const again = await facingPeer(arith);
  again.peer.send('{"jsonrpc":"2.0","method":"add","params":[2,2],"id":7}\r');
  again.peer.transport!.writeEof();
  await again.loop.advance(0);
  assertEquals(again.peer.messages("newline"), [
    { jsonrpc: "2.0", result: 4, id: 7 },
  ]);
  assertEquals(again.protocol.transport, null);
  again.loop.close();
});

Deno.test("JsonRpcProtocol closes at once on EOF when nothing is being served", async () => {
  const { loop, protocol, peer } = await facingPeer({});
  peer.transport!.writeEof();
  await loop.advance(0);
  assert(peer.eof);
  assertEquals(protocol.transport, null);
  loop.close();
});

// --- Limits and framing details ----------------------------------------------

Deno.test("JsonRpcProtocol accepts maxMessageBytes and rejects one byte more, in every framing", async () => {
  for (const framing of FRAMINGS) {
    const ok = '{"jsonrpc":"2.0","method":"echo","params":["xx"],"id":1}';
    const max = ok.length;
    const long = '{"jsonrpc":"2.0","method":"echo","params":["xxx"],"id":2}';
    for (const chunkSize of CHUNK_SIZES) {
      const name = `${framing}, chunkSize ${chunkSize ?? "whole"}`;
      const { loop, protocol, peer } = await facingPeer(arith, {
        framing,
        maxMessageBytes: max,
        pair: chunkSize === undefined ? {} : { chunkSize },
      });
      const waiting = protocol.call("never");
      peer.send(frame(framing, ok, long, ok));
      const error = await assertRejects(
        () => loop.runUntilComplete(waiting),
        Deno.errors.ConnectionReset,
      );
      assertInstanceOf(error.cause, LimitOverrunError, name);
      assertStringIncludes(
        (error.cause as Error).message,
        `maxMessageBytes=${max}`,
        name,
      );
      await loop.advance(0);
      const got = peer.messages(framing) as Record<string, unknown>[];
      assertEquals(got.length, 3, name); // The call, the answer, the error.
      assertEquals(got[0].method, "never", name);
      assertEquals(got[1], { jsonrpc: "2.0", result: ["xx"], id: 1 }, name);
      assertEquals(
        (got[2].error as { code: number }).code,
        -32600,
        name,
      );
      assertStringIncludes(
        (got[2].error as { message: string }).message,
        `maxMessageBytes=${max}`,
        name,
      );
      assertEquals(got[2].id, null, name);
      assert(peer.eof, name);
      assertEquals(protocol.transport, null, name);
      loop.close();
    }
  }
});

Deno.test("JsonRpcProtocol's newline framing accepts CRLF and skips blank lines", async () => {
  const got = await answersTo([
    '{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}\r',
    "",
    "  \r",
    '{"jsonrpc":"2.0","method":"add","params":[2,2],"id":2}',
  ], arith);
  assertEquals(got, [
    { jsonrpc: "2.0", result: 2, id: 1 },
    { jsonrpc: "2.0", result: 4, id: 2 },
  ]);
});

Deno.test("JsonRpcProtocol's newline framing allows a CRLF line of maxMessageBytes", async () => {
  const ok = '{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}';
  const { loop, peer, transport } = await facingPeer(arith, {
    maxMessageBytes: ok.length,
  });
  peer.send(`${ok}\r\n${ok}\n`);
  await loop.advance(0);
  assertEquals(peer.messages("newline").length, 2);
  assertFalse(peer.lost);
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol's raw framing cuts values by their syntax", async () => {
  const got = await answersTo(
    [
      '  {"jsonrpc":"2.0","method":"echo","params":["a}b{c\\"]"],"id":1}',
      '\n[{"jsonrpc":"2.0","method":"add","params":[[1][0],2],"id":2}]',
      "]",
      "nonsense ",
      '{"jsonrpc":"2.0","method":"add","params":[1,2],"id":3}{"jsonrpc":"2.0","method":"add","params":[3,4],"id":4}',
    ],
    arith,
    "raw",
  ) as Record<string, unknown>[];
  assertEquals(got.length, 6);
  assertEquals(got[0], { jsonrpc: "2.0", result: ['a}b{c"]'], id: 1 });
  // "[[1][0],2]" is not JSON: the batch is one parse error.
  assertEquals((got[1].error as { code: number }).code, -32700);
  assertEquals((got[2].error as { code: number }).code, -32700);
  assertEquals((got[3].error as { code: number }).code, -32700);
  assertEquals(got[4], { jsonrpc: "2.0", result: 3, id: 3 });
  assertEquals(got[5], { jsonrpc: "2.0", result: 7, id: 4 });
});

Deno.test("JsonRpcProtocol ignores a byte order mark before a message, in every framing and chunk size", async () => {
  // RFC 8259 section 8.1: a parser may ignore a BOM (some servers put one
  // before each UTF-8 body); it is no message of its own to answer.
  for (const framing of FRAMINGS) {
    for (const chunkSize of CHUNK_SIZES) {
      const got = await answersTo(
        [
          '\uFEFF{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}',
          '\uFEFF[{"jsonrpc":"2.0","method":"add","params":[3,4],"id":2}]',
          '\uFEFF{"jsonrpc":"2.0","method":"nothing"}',
        ],
        arith,
        framing,
        { pair: { chunkSize } },
      );
      assertEquals(got, [
        { jsonrpc: "2.0", result: 3, id: 1 },
        [{ jsonrpc: "2.0", result: 7, id: 2 }],
      ], `${framing}, chunkSize ${chunkSize}`);
    }
  }
});

Deno.test("JsonRpcProtocol checks its options", () => {
  assertThrows(
    () => new JsonRpcProtocol([] as unknown as JsonRpcMethods),
    TypeError,
  );
  assertThrows(
    () => new JsonRpcProtocol("x" as unknown as JsonRpcMethods),
    TypeError,
  );
  assertThrows(
    () =>
      new JsonRpcProtocol({}, {
        framing: "lines" as unknown as JsonRpcFraming,
      }),
    RangeError,
  );
  for (const maxMessageBytes of [0, 1.5, -1, Infinity, 2 ** 32, NaN]) {
    assertThrows(
      () => new JsonRpcProtocol({}, { maxMessageBytes }),
      RangeError,
      undefined,
      String(maxMessageBytes),
    );
  }
  assertThrows(
    () => new JsonRpcProtocol({}, { timeout: "1" as unknown as number }),
    TypeError,
  );
  for (const bad of [0, 1.5, -1, Infinity, NaN, "2"]) {
    for (const name of ["maxBatch", "maxConcurrentCalls"]) {
      assertThrows(
        () => new JsonRpcProtocol({}, { [name]: bad }),
        RangeError,
        name,
      );
    }
  }
  const p = new JsonRpcProtocol();
  assertEquals([p.framing, p.maxMessageBytes, p.pendingCount, p.transport], [
    "newline",
    1048576,
    0,
    null,
  ]);
  assertEquals([p.maxBatch, p.maxConcurrentCalls], [1000, 100]);
  assertEquals([p.strayResponses, p.failedNotifications], [0, 0]);
});

Deno.test("JsonRpcProtocol sends requests over a framing its peer can read", () => {
  // What each framing puts on the wire for one notification.
  const message = '{"jsonrpc":"2.0","method":"m"}';
  for (const framing of FRAMINGS) {
    const written: Uint8Array[] = [];
    const loop = new VirtualTimeLoop();
    const p = new JsonRpcProtocol({}, { framing, loop });
    const fake = {
      write: (d: Uint8Array) => written.push(d.slice()),
      writelines: (l: Uint8Array[]) =>
        written.push(new Uint8Array(l.flatMap((d) => [...d]))),
      isClosing: () => false,
    };
    p.connectionMade(fake as never);
    p.notify("m");
    const all = new Uint8Array(written.flatMap((d) => [...d]));
    assertEquals(all, frame(framing, message), framing);
    loop.close();
  }
});

Deno.test("JsonRpcProtocol writes a newline-framed message and its newline as one buffer", () => {
  // One allocation and one write per message: no list for the transport
  // to gather into a second copy.
  const loop = new VirtualTimeLoop();
  const p = new JsonRpcProtocol({}, { loop });
  const calls: string[] = [];
  const fake = {
    write: (d: Uint8Array) => calls.push(new TextDecoder().decode(d)),
    writelines: () => calls.push("writelines"),
    isClosing: () => false,
  };
  p.connectionMade(fake as never);
  p.notify("m", ["a"]);
  p.notify("n");
  assertEquals(calls, [
    '{"jsonrpc":"2.0","method":"m","params":["a"]}\n',
    '{"jsonrpc":"2.0","method":"n"}\n',
  ]);
  loop.close();
});

// ---- flow control ----

Deno.test("JsonRpcProtocol stops reading requests while its replies back up", async () => {
  const loop = new VirtualTimeLoop();
  const server = new JsonRpcProtocol({ echo: (p) => p });
  const client = new Protocol();
  const [clientT, serverT] = transportPair(client, server, {
    loop,
    bufferSize: 1024,
  });
  serverT.setWriteBufferLimits(2048, 512);
  clientT.pauseReading();
  const request = (id: number) =>
    new TextEncoder().encode(
      JSON.stringify({
        jsonrpc: "2.0",
        id,
        method: "echo",
        params: ["x".repeat(200)],
      }) +
        "\n",
    );
  for (let i = 1; i <= 40; i++) clientT.write(request(i));
  await loop.advance(1);
  assertFalse(
    serverT.isReading(),
    "server keeps reading with replies backed up",
  );
  clientT.resumeReading();
  await loop.advance(1);
  assert(serverT.isReading(), "server reads again once replies drained");
  clientT.close();
  await loop.advance(1);
  loop.close();
});

// --- Limits: batch length, calls in flight, replies held -------------------

/** A batch of `n` bare numbers: each item is an invalid request. */
function numberBatch(n: number): string {
  return `[${new Array(n).fill("1").join(",")}]`;
}

Deno.test("JsonRpcProtocol answers a batch over maxBatch with one -32600 error and runs none of it", async () => {
  let calls = 0;
  const methods = { tick: () => ++calls };
  const item = '{"jsonrpc":"2.0","method":"tick","id":1}';
  for (const framing of FRAMINGS) {
    calls = 0;
    const over = await answersTo(
      [`[${new Array(6).fill(item).join(",")}]`],
      methods,
      framing,
      { maxBatch: 5 },
    );
    assertEquals(calls, 0, framing);
    assertEquals(over.length, 1, framing);
    const reply = over[0] as { error: { code: number; message: string } };
    assertEquals(reply.error.code, JsonRpcError.INVALID_REQUEST, framing);
    assertStringIncludes(reply.error.message, "maxBatch=5");
    assertStringIncludes(reply.error.message, "6");
    assertEquals((reply as unknown as { id: unknown }).id, null);
    const exact = await answersTo(
      [`[${new Array(5).fill(item).join(",")}]`],
      methods,
      framing,
      { maxBatch: 5 },
    );
    assertEquals(calls, 5, framing);
    assertEquals((exact[0] as unknown[]).length, 5, framing);
  }
});

Deno.test("JsonRpcProtocol's maxBatch bounds the requests of a batch it serves, not the answers to its own", async () => {
  // A batch() longer than this side's maxBatch, to a peer that takes it:
  // its answer is as long, and runs nothing here.
  const { loop, server, client, clientTransport } = await connected(
    { one: () => 1 },
    {},
    { server: { maxBatch: 10 }, client: { maxBatch: 2, timeout: 5 } },
  );
  const batch = client.batch(new Array(3).fill({ method: "one" }));
  assertEquals(await loop.runUntilComplete(batch), [1, 1, 1]);
  assertEquals([client.strayResponses, server.strayResponses], [0, 0]);
  clientTransport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol's default maxBatch keeps the reply to a 1 MiB batch of invalid items small", async () => {
  // 520,000 invalid items in 1 MiB: answering each one would take 58 MiB.
  const [reply] = await answersTo([numberBatch(520_000)]);
  const text = JSON.stringify(reply);
  assert(text.length < 1024, `reply of ${text.length} bytes`);
  assertEquals((reply as { error: { code: number } }).error.code, -32600);
  assertStringIncludes(text, "maxBatch=1000");
});

Deno.test("JsonRpcProtocol runs at most maxConcurrentCalls methods at once, batch items included", async () => {
  for (const asBatch of [false, true]) {
    const running: Future<number>[] = [];
    let peak = 0;
    const { loop, peer, transport } = await facingPeer({
      wait: (_p) => {
        const f = new Future<number>({ loop });
        running.push(f);
        peak = Math.max(peak, running.filter((r) => !r.done()).length);
        return f;
      },
    }, { maxConcurrentCalls: 3 });
    const requests = Array.from(
      { length: 10 },
      (_, i) => `{"jsonrpc":"2.0","method":"wait","id":${i}}`,
    );
    peer.send(
      asBatch ? `[${requests.join(",")}]\n` : frame("newline", ...requests),
    );
    await loop.advance(1);
    assertEquals(running.length, 3, `batch=${asBatch}`);
    running[0].setResult(0);
    await loop.advance(1);
    assertEquals(running.length, 4, `batch=${asBatch}`);
    // Finish them all, as they start.
    for (let i = 1; i < 10; i++) {
      running[i].setResult(i);
      await loop.advance(1);
    }
    assertEquals(running.length, 10);
    assertEquals(peak, 3);
    const got = peer.messages("newline");
    const results = (asBatch ? got[0] as unknown[] : got).map((m) =>
      (m as { result: number }).result
    ).sort((a, b) => a - b);
    assertEquals(results, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    transport.close();
    await loop.advance(0);
    loop.close();
  }
});

Deno.test("JsonRpcProtocol still takes the peer's responses while at maxConcurrentCalls", async () => {
  // Every running method waits for the peer's answer: reading must go on.
  const { loop, client, clientTransport } = await connected(
    {
      greet: async (_p, ctx: JsonRpcContext) =>
        `Hello, ${await ctx.protocol!.call("name")}`,
    },
    { name: () => "Ada" },
    { server: { maxConcurrentCalls: 2 } },
  );
  const calls = Array.from({ length: 6 }, () => client.call("greet"));
  const got = await run(loop, () => Promise.all(calls));
  assertEquals(got, new Array(6).fill("Hello, Ada"));
  clientTransport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol still takes an answer with neither result nor error while at maxConcurrentCalls", async () => {
  // The one slot waits for the peer's answer, which lacks its result.
  const { loop, protocol, peer, transport } = await facingPeer({
    greet: async (_p, ctx: JsonRpcContext) =>
      `Hello, ${await ctx.protocol!.call("name")}`,
  }, { maxConcurrentCalls: 1 });
  peer.send('{"jsonrpc":"2.0","method":"greet","id":"g"}\n');
  await loop.advance(0);
  assertEquals(peer.messages("newline"), [
    { jsonrpc: "2.0", method: "name", id: 1 },
  ]);
  peer.send('{"jsonrpc":"2.0","id":1}\n');
  await loop.advance(0);
  const answer = peer.messages("newline")[1] as {
    error: { code: number; message: string };
    id: unknown;
  };
  assertEquals(answer.id, "g");
  assertEquals(answer.error.code, JsonRpcError.INTERNAL_ERROR);
  assertStringIncludes(answer.error.message, "neither a result nor an error");
  assertEquals(protocol.pendingCount, 0);
  transport.close();
  await loop.advance(0);
  loop.close();
});

Deno.test("JsonRpcProtocol holds a bounded reply buffer for a peer that never reads", async () => {
  for (const framing of FRAMINGS) {
    const loop = new VirtualTimeLoop();
    const server = new JsonRpcProtocol({ echo: (p) => p }, { loop, framing });
    const client = new Protocol();
    const [clientT, serverT] = transportPair(client, server, {
      loop,
      bufferSize: 4096,
    });
    serverT.setWriteBufferLimits(16 * 1024, 4 * 1024);
    clientT.pauseReading();
    // 2 MiB of small batches that each ask for ~110 bytes per 2 bytes sent.
    const line = numberBatch(1000);
    const count = Math.ceil(2 * 1024 * 1024 / line.length);
    let peak = 0;
    for (let i = 0; i < count; i++) {
      clientT.write(frame(framing, line));
      if (i % 64 === 63) {
        await loop.advance(0);
        peak = Math.max(peak, serverT.getWriteBufferSize());
      }
    }
    await loop.advance(1);
    peak = Math.max(peak, serverT.getWriteBufferSize());
    // The high-water mark plus a couple of replies (~110 KiB each), not the
    // ~116 MiB all of them would take.
    assert(peak < 512 * 1024, `${framing}: write buffer reached ${peak}`);
    assertFalse(serverT.isReading(), framing);
    clientT.abort();
    await loop.advance(1);
    loop.close();
  }
});

/** How many echo requests `floodSlowReader()` sends. */
const FLOOD = 400;

/**
 * Connects `server` to a client that does not read and sends it `FLOOD`
 * echo requests of ~150 bytes, one a line: the server's write buffer
 * (limits 4096 and 1024) fills, and it stops reading.
 */
async function floodSlowReader(loop: VirtualTimeLoop, server: JsonRpcProtocol) {
  const client = new Peer();
  const [clientT, serverT] = transportPair(client, server, {
    loop,
    bufferSize: 2048,
    chunkSize: 1500,
  });
  serverT.setWriteBufferLimits(4096, 1024);
  clientT.pauseReading();
  const requests = Array.from(
    { length: FLOOD },
    (_, i) =>
      `{"jsonrpc":"2.0","method":"echo","params":["${
        "y".repeat(100)
      }"],"id":${i}}`,
  );
  clientT.write(frame("newline", ...requests));
  await loop.advance(1);
  assertFalse(serverT.isReading());
  return { client, clientT, serverT };
}

Deno.test("JsonRpcProtocol closed while its replies wait serves none of the requests still held", async () => {
  // Once the transport is closing no reply can go out: the requests held
  // while writing was paused are not run when the buffer drains.
  const loop = new VirtualTimeLoop();
  let calls = 0;
  const server = new JsonRpcProtocol({
    echo: (p) => {
      calls++;
      return p;
    },
  }, { loop });
  const { clientT, serverT } = await floodSlowReader(loop, server);
  const served = calls;
  assert(served < FLOOD, `served ${served}`);
  serverT.close();
  clientT.resumeReading();
  await loop.advance(5);
  assertEquals(calls, served);
  clientT.close();
  await loop.advance(1);
  loop.close();
});

Deno.test("JsonRpcProtocol answers everything a slow reader sent, once it reads", async () => {
  const loop = new VirtualTimeLoop();
  const server = new JsonRpcProtocol({ echo: (p) => p }, { loop });
  const { client, clientT } = await floodSlowReader(loop, server);
  clientT.resumeReading();
  await loop.advance(5);
  const ids = client.messages("newline").map((m) => (m as { id: number }).id);
  assertEquals(
    ids.sort((a, b) => a - b),
    Array.from({ length: FLOOD }, (_, i) => i),
  );
  clientT.close();
  await loop.advance(1);
  loop.close();
});

// --- Log floods -----------------------------------------------------------------

/** What the default exception handler would print for these contexts. */
function printedSize(contexts: ExceptionContext[]): number {
  let size = 0;
  for (const { message, exception, ...details } of contexts) {
    size += message.length + 1;
    if (Object.keys(details).length > 0) size += Deno.inspect(details).length;
    if (exception !== undefined) size += Deno.inspect(exception).length;
  }
  return size;
}

Deno.test("JsonRpcProtocol never logs more than a peer flooding it with stray responses and failing notifications sent", async () => {
  const floods: [string, (i: number) => string][] = [
    ["stray", (i) => `{"jsonrpc":"2.0","result":${i},"id":${1000 + i}}`],
    [
      "stray errors",
      (i) =>
        `{"jsonrpc":"2.0","error":{"code":-1,"message":"m","data":${i}},"id":null}`,
    ],
    [
      "notifications",
      (i) => `{"jsonrpc":"2.0","method":"boom","params":[${i}]}`,
    ],
    ["tiny", () => `{"id":1,"result":0}`],
  ];
  for (const [name, message] of floods) {
    for (const count of [1, 3, 2000]) {
      const { loop, protocol, peer, transport } = await facingPeer({
        boom: ([i]: number[]) => {
          throw new Error(`Broken ${i}`);
        },
      });
      // With the loop's shared reserve spent, the log is paid by what this
      // peer sent alone.
      loop.setExceptionHandler(() => {});
      new PeerLog({ loop }).report("x", {
        message: "x".repeat(PeerLog.RESERVE - 1),
      });
      const contexts: ExceptionContext[] = [];
      loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
      const sent = frame(
        "newline",
        ...Array.from({ length: count }, (_, i) => message(i)),
      );
      peer.send(sent);
      await loop.advance(1);
      assertEquals(
        protocol.strayResponses + protocol.failedNotifications,
        count,
        name,
      );
      transport.close();
      await loop.advance(1);
      const size = printedSize(contexts);
      assert(
        size <= sent.length,
        `${name} x${count}: ${size} bytes of log for ${sent.length} sent`,
      );
      // The first report and one summary line at most.
      assert(contexts.length <= 2, `${name} x${count}: ${contexts.length}`);
      if (count === 2000) {
        assertEquals(contexts.length, 2, name);
        assertStringIncludes(contexts[1].message, "1999 problems");
      }
      loop.close();
    }
  }
});

Deno.test("JsonRpcProtocol without a framing option frames by what each transport it is given carries: raw over one that names a URL, newline over another", async () => {
  const loop = new VirtualTimeLoop();
  const written: Uint8Array[] = [];
  const overUrl = {
    getExtraInfo: (name: string, dflt?: unknown) =>
      name === "url" ? "http://h/rpc" : dflt,
    write: (data: Uint8Array) => written.push(data),
    isClosing: () => false,
    close: () => {},
  } as unknown as Transport;
  const rpc = new JsonRpcProtocol({ one: () => 1 }, { loop });
  assertEquals(rpc.framing, "newline");
  rpc.connectionMade(overUrl);
  assertEquals(rpc.framing, "raw");
  // Given the same transport again, a message under way is kept.
  rpc.dataReceived(new TextEncoder().encode('{"jsonrpc":"2.0","id":1,'));
  rpc.connectionMade(overUrl);
  rpc.dataReceived(new TextEncoder().encode('"method":"one"}'));
  await loop.advance(0);
  assertEquals(
    written.map((d) => JSON.parse(new TextDecoder().decode(d))),
    [{ jsonrpc: "2.0", id: 1, result: 1 }],
  );
  rpc.connectionLost(undefined);
  const peer = new Protocol();
  transportPair(rpc, peer, { loop });
  await loop.advance(0);
  assertEquals(rpc.framing, "newline");
  loop.close();
});

/**
 * A JsonRpcProtocol over an HttpTransport to an HttpServerProtocol serving
 * `handler`, in memory; `close()` ends it all.
 */
async function overHttp(
  loop: VirtualTimeLoop,
  handler: (request: Request) => Promise<Response>,
) {
  const server = new HttpServerProtocol(handler, { loop });
  const http = new HttpClientProtocol({ loop });
  transportPair(http, server, { loop });
  await loop.advance(0);
  const transport = new HttpTransport(http, { path: "/rpc", loop });
  const rpc = new JsonRpcProtocol({}, { loop });
  transport.setProtocol(rpc);
  rpc.connectionMade(transport);
  const close = async () => {
    transport.close();
    http.close();
    await loop.advance(1);
    loop.close();
  };
  return { rpc, close };
}

Deno.test("JsonRpcProtocol over an HttpTransport takes a body that is no JSON-RPC answer as the server's error, and sends nothing back", async () => {
  // Each answer to a body the client cannot use would be POSTed to the
  // server as a new request: an HTML page, answered with one parse error
  // per word, drew a request per word, for ever.
  const bodies = [
    "<html><body>Not here either</body></html>\n",
    '{"status":"ok"}',
    '"hello"',
  ];
  const loop = new VirtualTimeLoop();
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => errors.push(context));
  let posts = 0;
  const { rpc, close } = await overHttp(loop, async (request) => {
    await request.body?.cancel();
    return new Response(bodies[posts++ % bodies.length], {
      headers: { "content-type": "text/html" },
    });
  });
  for (const [i, code] of [-32700, -32600, -32600].entries()) {
    const e = await assertRejects(
      () => loop.runUntilComplete(rpc.call("add", [1, 2], { timeout: 10 })),
      JsonRpcError,
    );
    assertEquals(e.code, code);
    await loop.advance(1);
    assertEquals(posts, i + 1);
  }
  // The page's other words fit no call: counted, the first reported.
  assertEquals(rpc.strayResponses, 2);
  assertEquals(errors.length, 1);
  await close();
});

Deno.test("JsonRpcProtocol over an HttpTransport ignores an empty array, a sloppy server's answer to notifications", async () => {
  // JSON-RPC 2.0 section 6: the server must send nothing; some send [].
  // It answers no call, so it must not fail the one waiting.
  const loop = new VirtualTimeLoop();
  let posts = 0;
  const { rpc, close } = await overHttp(loop, async (request) => {
    posts++;
    const message = await request.json();
    return new Response(
      Array.isArray(message)
        ? "[]"
        : JSON.stringify({ jsonrpc: "2.0", result: 3, id: message.id }),
    );
  });
  rpc.batch([{ method: "log", notify: true }]);
  const sum = rpc.call("add", [1, 2], { timeout: 10 });
  assertEquals(await loop.runUntilComplete(sum), 3);
  await loop.advance(1);
  assertEquals([posts, rpc.strayResponses, rpc.lateResponses], [2, 0, 0]);
  await close();
});

/** A transport that names a URL (as an HttpTransport does), in memory. */
function urlTransport(written: Uint8Array[]): Transport {
  return {
    getExtraInfo: (name: string, dflt?: unknown) =>
      name === "url" ? "http://h/rpc" : dflt,
    write: (data: Uint8Array) => written.push(data),
    isClosing: () => false,
    close: () => {},
  } as unknown as Transport;
}

/**
 * A client JsonRpcProtocol over `urlTransport()` on a virtual loop whose
 * exception handler stays quiet; `written` collects what it sends.
 */
function urlClient() {
  const loop = new VirtualTimeLoop();
  loop.setExceptionHandler(() => {});
  const written: Uint8Array[] = [];
  const rpc = new JsonRpcProtocol({}, { loop });
  rpc.connectionMade(urlTransport(written));
  return { loop, rpc, written };
}

/** Hands `rpc` one body holding `value` as JSON. */
function receiveJson(rpc: JsonRpcProtocol, value: unknown): void {
  rpc.dataReceived(new TextEncoder().encode(JSON.stringify(value)));
}

Deno.test("JsonRpcProtocol over a transport that names a URL: a bad item inside an array body fails no other call, as an error with id null inside an array does not", async () => {
  const { loop, rpc, written } = urlClient();
  const single = rpc.call("c");
  const batch = rpc.batch([{ method: "a" }, { method: "b" }]);
  const ids = written.map((d) => JSON.parse(new TextDecoder().decode(d)))
    .flat().map((m) => m.id);
  receiveJson(rpc, [
    { jsonrpc: "2.0", result: "a", id: ids[1] },
    { jsonrpc: "2.0", result: "b", id: ids[2] },
    42,
  ]);
  await loop.advance(0);
  assertEquals(await loop.runUntilComplete(batch), ["a", "b"]);
  assertEquals(single.done(), false);
  receiveJson(rpc, { jsonrpc: "2.0", result: "c", id: ids[0] });
  assertEquals(await loop.runUntilComplete(single), "c");
  assertEquals(written.length, 2);
  assertEquals(rpc.strayResponses, 1);
  rpc.connectionLost(undefined);
  loop.close();
});

Deno.test("JsonRpcProtocol over a transport that names a URL: a bad body naming an id of no call fails not the call waiting", async () => {
  const { loop, rpc, written } = urlClient();
  const waiting = rpc.call("fast");
  const ids = written.map((d) => JSON.parse(new TextDecoder().decode(d)).id);
  // An answer to a call never made, with neither result nor error: as
  // stray as one with a result.
  receiveJson(rpc, { jsonrpc: "2.0", id: 99 });
  await loop.advance(0);
  assertEquals(waiting.done(), false);
  receiveJson(rpc, { jsonrpc: "2.0", result: "fast", id: ids[0] });
  assertEquals(await loop.runUntilComplete(waiting), "fast");
  assertEquals([written.length, rpc.strayResponses], [1, 1]);
  rpc.connectionLost(undefined);
  loop.close();
});

Deno.test("JsonRpcProtocol over a transport that names a URL: a bad body naming a waiting call's id fails that call, whoever else waits", async () => {
  const { loop, rpc, written } = urlClient();
  const first = rpc.call("a");
  const second = rpc.call("b");
  const ids = written.map((d) => JSON.parse(new TextDecoder().decode(d)).id);
  receiveJson(rpc, { jsonrpc: "2.0", id: ids[1], method: 5 });
  const e = await assertRejects(
    () => loop.runUntilComplete(second),
    JsonRpcError,
    "method must be a string",
  );
  assertEquals(e.code, -32600);
  assertEquals(first.done(), false);
  receiveJson(rpc, { jsonrpc: "2.0", result: "a", id: ids[0] });
  assertEquals(await loop.runUntilComplete(first), "a");
  assertEquals([written.length, rpc.strayResponses], [2, 0]);
  rpc.connectionLost(undefined);
  loop.close();
});
