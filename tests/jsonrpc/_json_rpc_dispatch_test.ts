import { assertEquals, assertStringIncludes } from "@std/assert";
import {
  CallLimiter,
  dispatch,
  errorReply,
  type Front,
  parseMessage,
} from "../../jsonrpc/_json_rpc_dispatch.ts";
import type {
  JsonRpcContext,
  JsonRpcMethods,
} from "../../jsonrpc/json_rpc_protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Coroutine } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { bytes } from "../_every_split.ts";

function front(extra?: Partial<Front>): Front {
  return {
    context: (method, id) => ({
      method,
      id,
      signal: new AbortController().signal,
    }),
    loop: () => null,
    maxBatch: 1000,
    limiter: new CallLimiter(100),
    ...extra,
  };
}

/** Dispatches and collects every call of `reply` (there must be one). */
function serve(
  methods: JsonRpcMethods,
  message: unknown,
  f: Front = front(),
): Promise<unknown[]> {
  return new Promise((resolve) => {
    const replies: unknown[] = [];
    dispatch(methods, message, f, (text) => {
      replies.push(text === undefined ? undefined : JSON.parse(text));
      // Let a second, wrong call show up before resolving.
      setTimeout(() => resolve(replies), 0);
    });
  });
}

Deno.test("parseMessage() parses UTF-8 JSON or gives the -32700 reply", () => {
  assertEquals(parseMessage(bytes('{"a":"é"}')), {
    ok: true,
    value: { a: "é" },
  });
  for (
    const bad of [bytes("{"), bytes(""), new Uint8Array([0x22, 0xc3, 0x22])]
  ) {
    const parsed = parseMessage(bad);
    assertEquals(parsed.ok, false);
    if (!parsed.ok) {
      const reply = JSON.parse(parsed.reply);
      assertEquals(reply.error.code, -32700);
      assertEquals(reply.id, null);
      assertEquals(reply.jsonrpc, "2.0");
    }
  }
});

Deno.test("dispatch() echoes a number id as it was written, even one a double cannot hold", async () => {
  // JSON-RPC 2.0 §5: the response's id is the same value as the request's.
  const methods: JsonRpcMethods = { add: ([a, b]: number[]) => a + b };
  const ids = [
    "9007199254740993",
    "-12345678901234567890123",
    "0.30000000000000000001",
    "1e400",
  ];
  for (const id of ids) {
    const call = `{"jsonrpc":"2.0","method":"add","params":[1,2],"id":${id}}`;
    const cases: [string, string][] = [
      [call, `{"jsonrpc":"2.0","result":3,"id":${id}}`],
      [
        `{"jsonrpc":"2.0","method":"nope","id":${id}}`,
        `{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: \\"nope\\""},"id":${id}}`,
      ],
      [
        `{"jsonrpc":"1.0","method":"add","id":${id}}`,
        `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: jsonrpc must be \\"2.0\\", received \\"1.0\\""},"id":${id}}`,
      ],
      [
        `[${call},{"jsonrpc":"2.0","method":"add","params":[2,2],"id":{"id":${id}}}]`,
        `[{"jsonrpc":"2.0","result":3,"id":${id}},{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: id must be a string, a number or null, received object"},"id":null}]`,
      ],
    ];
    for (const [message, expected] of cases) {
      const parsed = parseMessage(bytes(message));
      if (!parsed.ok) throw new Error(`Did not parse: ${message}`);
      const text = await new Promise<string | undefined>((resolve) =>
        dispatch(methods, parsed.value, front(), resolve)
      );
      assertEquals(text, expected, message);
    }
  }
});

Deno.test("parseMessage() parses a deeply nested message with an inexact id", () => {
  // Valid JSON (RFC 8259 sets no depth limit): no -32700. Too deep to note
  // how the id was written, it keeps the nearest double.
  const deep = "[".repeat(200_000) + "]".repeat(200_000);
  const parsed = parseMessage(
    bytes(`{"jsonrpc":"2.0","method":"m","params":${deep},"id":1.5}`),
  );
  assertEquals(parsed.ok, true);
  if (parsed.ok) assertEquals((parsed.value as { id: number }).id, 1.5);
});

Deno.test("errorReply() leaves out data that cannot be serialized", () => {
  assertEquals(JSON.parse(errorReply(1, "m", 3, { d: 1 })), {
    jsonrpc: "2.0",
    error: { code: 1, message: "m", data: { d: 1 } },
    id: 3,
  });
  assertEquals(JSON.parse(errorReply(1, "m", "x", 10n)), {
    jsonrpc: "2.0",
    error: { code: 1, message: "m" },
    id: "x",
  });
});

Deno.test("dispatch() replies exactly once, after every call of a batch", async () => {
  const replies = await serve({ a: () => Promise.resolve(1), b: () => 2 }, [
    { jsonrpc: "2.0", method: "a", id: 1 },
    { jsonrpc: "2.0", method: "b" },
    { jsonrpc: "2.0", method: "b", id: 2 },
  ]);
  assertEquals(replies, [[
    { jsonrpc: "2.0", result: 1, id: 1 },
    { jsonrpc: "2.0", result: 2, id: 2 },
  ]]);
});

Deno.test("dispatch() treats a response as an invalid request without onResponse", async () => {
  const message = { jsonrpc: "2.0", result: 5, id: 1 };
  const [reply] = await serve({}, message) as { error: { code: number } }[];
  assertEquals(reply.error.code, -32600);
  const seen: unknown[] = [];
  const taker = front({
    onResponse: (r, inArray) => void seen.push([r, inArray]),
  });
  assertEquals(await serve({}, message, taker), [undefined]);
  assertEquals(await serve({}, [message], taker), [undefined]);
  // Whether it came alone or in an array (a batch's answer) is told.
  assertEquals(seen, [[message, false], [message, true]]);
});

Deno.test("dispatch() gives methods their params and context", async () => {
  const contexts: JsonRpcContext[] = [];
  const params: unknown[] = [];
  const methods: JsonRpcMethods = {
    m: (p, ctx) => {
      params.push(p);
      contexts.push(ctx);
    },
  };
  await serve(methods, { jsonrpc: "2.0", method: "m", params: [1], id: "q" });
  await serve(methods, { jsonrpc: "2.0", method: "m", params: { k: 1 } });
  assertEquals(params, [[1], { k: 1 }]);
  assertEquals(contexts.map((c) => [c.method, c.id]), [["m", "q"], [
    "m",
    undefined,
  ]]);
});

Deno.test("dispatch() runs a coroutine method on the front's loop, or fails without one", async () => {
  const methods: JsonRpcMethods = {
    *co([x]: number[]): Coroutine<number> {
      yield* sleep(3);
      return x + 1;
    },
  };
  const request = { jsonrpc: "2.0", method: "co", params: [1], id: 1 };
  const [failed] = await serve(methods, request) as {
    error: { code: number; message: string };
  }[];
  assertEquals(failed.error.code, -32603);
  assertStringIncludes(failed.error.message, "no event loop");
  const loop = new VirtualTimeLoop();
  const done = loop.createFuture<string | undefined>();
  dispatch(
    methods,
    request,
    front({ loop: () => loop }),
    (text) => done.setResult(text),
  );
  assertEquals(JSON.parse((await loop.runUntilComplete(done))!), {
    jsonrpc: "2.0",
    result: 2,
    id: 1,
  });
  assertEquals(loop.time(), 3);
  loop.close();
});

Deno.test("dispatch() answers a cancelled future with -32603", async () => {
  const loop = new VirtualTimeLoop();
  const done = loop.createFuture<string | undefined>();
  dispatch(
    {
      c: () => {
        const f = loop.createFuture<number>();
        loop.callSoon(() => f.cancel());
        return f;
      },
    },
    { jsonrpc: "2.0", method: "c", id: 7 },
    front(),
    (text) => done.setResult(text),
  );
  const reply = JSON.parse((await loop.runUntilComplete(done))!);
  assertEquals(reply.error.code, -32603);
  assertStringIncludes(reply.error.message, "cancelled");
  loop.close();
});

Deno.test("dispatch() tells onNotificationError about a failed notification", async () => {
  const errors: unknown[] = [];
  const replies = await serve(
    {
      bad: () => {
        throw new Error("x");
      },
    },
    { jsonrpc: "2.0", method: "bad" },
    front({ onNotificationError: (e) => void errors.push(e) }),
  );
  assertEquals(replies, [undefined]);
  assertEquals(errors.length, 1);
});

Deno.test("dispatch() settles once even if a thenable calls back twice", async () => {
  const thenable = {
    then(ok: (v: unknown) => void, fail: (e: unknown) => void) {
      ok(1);
      ok(2);
      fail(new Error("late"));
    },
  };
  const replies = await serve(
    { t: () => thenable },
    { jsonrpc: "2.0", method: "t", id: 1 },
  );
  assertEquals(replies, [{ jsonrpc: "2.0", result: 1, id: 1 }]);
});

Deno.test("dispatch() answers -32603 when what a method returns or throws cannot be inspected", async () => {
  // A value whose every inspection throws (instanceof, property reads).
  const hostile = new Proxy({}, {
    getPrototypeOf() {
      throw new Error("getPrototypeOf trap");
    },
    get() {
      throw new Error("get trap");
    },
  });
  const badMessage = new Error("x");
  Object.defineProperty(badMessage, "message", {
    get() {
      throw new Error("message getter");
    },
  });
  const methods: JsonRpcMethods = {
    thenGetter: () => ({
      get then() {
        throw new Error("then getter");
      },
    }),
    nextGetter: () => ({
      get next() {
        throw new Error("next getter");
      },
    }),
    returnsHostile: () => hostile,
    throwsHostile: () => {
      throw hostile;
    },
    rejectsHostile: () => Promise.reject(hostile),
    throwsBadMessage: () => {
      throw badMessage;
    },
    rejectsBadMessage: () => Promise.reject(badMessage),
  };
  Object.defineProperty(methods, "getter", {
    get() {
      throw new Error("methods getter");
    },
  });
  const limiter = new CallLimiter(100);
  for (const method of [...Object.keys(methods), "getter"]) {
    const errors: unknown[] = [];
    const f = front({ limiter, onNotificationError: (e) => errors.push(e) });
    const [reply] = await serve(methods, { jsonrpc: "2.0", method, id: 1 }, f);
    assertEquals(
      (reply as { error: { code: number } }).error.code,
      -32603,
      method,
    );
    assertEquals(limiter.running, 0, method);
    const notified = await serve(methods, { jsonrpc: "2.0", method }, f);
    assertEquals([notified, errors.length], [[undefined], 1], method);
    assertEquals(limiter.running, 0, method);
  }
});

Deno.test("dispatch() sends a string as the message of what a method throws", async () => {
  // JSON-RPC 2.0 §5.1: the error's message MUST be a string.
  const odd = new Error("x");
  (odd as { message: unknown }).message = { secret: 1 };
  const [reply] = await serve(
    {
      odd: () => {
        throw odd;
      },
    },
    { jsonrpc: "2.0", method: "odd", id: 1 },
  );
  assertEquals(reply, {
    jsonrpc: "2.0",
    error: { code: -32603, message: "Internal error" },
    id: 1,
  });
});

// --- Limits -------------------------------------------------------------------

Deno.test("dispatch() answers a batch over maxBatch with one -32600 error and runs none of it", async () => {
  let calls = 0;
  const methods = { tick: () => ++calls };
  const item = { jsonrpc: "2.0", method: "tick", id: 1 };
  const [over] = await serve(
    methods,
    new Array(4).fill(item),
    front({ maxBatch: 3 }),
  ) as { error: { code: number; message: string }; id: unknown }[];
  assertEquals(calls, 0);
  assertEquals(over.error.code, -32600);
  assertEquals(over.id, null);
  assertStringIncludes(over.error.message, "maxBatch=3");
  const [exact] = await serve(
    methods,
    new Array(3).fill(item),
    front({ maxBatch: 3 }),
  ) as unknown[][];
  assertEquals(calls, 3);
  assertEquals(exact.length, 3);
});

Deno.test("dispatch() starts a batch's calls as the limiter frees slots, replies in order", async () => {
  const resolvers: (() => void)[] = [];
  let running = 0;
  let peak = 0;
  const methods = {
    wait: ([n]: number[]) =>
      new Promise<number>((resolve) => {
        running++;
        peak = Math.max(peak, running);
        resolvers.push(() => {
          running--;
          resolve(n);
        });
      }),
  };
  const limiter = new CallLimiter(2);
  const batch = Array.from(
    { length: 7 },
    (_, i) => ({ jsonrpc: "2.0", method: "wait", params: [i], id: i }),
  );
  const replies = serve(methods, batch, front({ limiter }));
  for (let i = 0; i < 7; i++) {
    await new Promise((r) => setTimeout(r, 0));
    assertEquals(limiter.running, Math.min(2, 7 - i));
    resolvers[i]();
  }
  const [got] = await replies as { result: number }[][];
  assertEquals(got.map((r) => r.result), [0, 1, 2, 3, 4, 5, 6]);
  assertEquals(peak, 2);
  assertEquals(limiter.running, 0);
});

Deno.test("CallLimiter runs waiting calls that settle at once in a loop, not a deep recursion", () => {
  const limiter = new CallLimiter(1);
  let done = 0;
  let hold!: () => void;
  limiter.acquire(() => {
    hold = () => limiter.release();
  });
  for (let i = 0; i < 100_000; i++) {
    limiter.acquire(() => {
      done++;
      limiter.release();
    });
  }
  assertEquals(done, 0);
  assertEquals(limiter.full, true);
  hold();
  assertEquals(done, 100_000);
  assertEquals(limiter.running, 0);
  assertEquals(limiter.full, false);
});
