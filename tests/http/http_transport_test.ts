import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import { HttpClientProtocol } from "../../http/http_client_protocol.ts";
import {
  type HttpHandler,
  HttpServerProtocol,
} from "../../http/http_server_protocol.ts";
import {
  HttpTransport,
  type HttpTransportOptions,
} from "../../http/http_transport.ts";
import { JsonRpcError } from "../../jsonrpc/json_rpc_error.ts";
import { jsonRpcHttpHandler } from "../../jsonrpc/json_rpc_http_handler.ts";
import type { JsonRpcProtocolOptions } from "../../jsonrpc/json_rpc_protocol.ts";
import { BufferedProtocol, Protocol } from "../../protocols/protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import { transportPair } from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import type { Transport } from "../../transports/transport.ts";
import { bytes, rpcOverHttp, SPLITS, text } from "./_http_helpers.ts";

/** A protocol on top of the HttpTransport that records what happens. */
class Top extends Protocol {
  readonly events: string[] = [];
  readonly data: string[] = [];
  lostWith: Error | undefined | null = null;
  override connectionMade(_t: Transport): void {
    this.events.push("made");
  }
  override dataReceived(data: Uint8Array): void {
    this.data.push(text(data));
    this.events.push("data");
  }
  override eofReceived(): boolean {
    this.events.push("eof");
    return false;
  }
  override connectionLost(exc?: Error): void {
    this.lostWith = exc;
    this.events.push("lost");
  }
  override pauseWriting(): void {
    this.events.push("pauseWriting");
  }
  override resumeWriting(): void {
    this.events.push("resumeWriting");
  }
}

interface Stack {
  loop: VirtualTimeLoop;
  client: HttpClientProtocol;
  server: HttpServerProtocol;
  transport: HttpTransport;
  top: Top;
  bodies: string[];
}

/**
 * An HttpTransport with a recording protocol on an HTTP client joined in
 * memory to a server whose handler records each body and answers with
 * `answer(body)`.
 */
async function stack(
  answer: (body: string) => Response | Promise<Response>,
  options?: Partial<HttpTransportOptions>,
  pair?: Parameters<typeof transportPair>[2],
): Promise<Stack> {
  const loop = new VirtualTimeLoop();
  const bodies: string[] = [];
  const handler: HttpHandler = async (request) => {
    const body = await request.text();
    bodies.push(body);
    return answer(body);
  };
  const server = new HttpServerProtocol(handler, { loop });
  const client = new HttpClientProtocol({ loop });
  transportPair(client, server, { loop, ...pair });
  await loop.advance(0);
  const transport = new HttpTransport(client, { path: "/t", loop, ...options });
  const top = new Top();
  transport.setProtocol(top);
  top.connectionMade(transport);
  return { loop, client, server, transport, top, bodies };
}

async function finish(s: Stack): Promise<void> {
  s.client.close();
  await s.loop.advance(10);
  s.loop.close();
}

// ---- Construction ----

Deno.test("HttpTransport() checks its client and options", async () => {
  const loop = new VirtualTimeLoop();
  const client = new HttpClientProtocol({ loop });
  transportPair(client, new Protocol(), { loop });
  await loop.advance(0);
  assertThrows(
    () => new HttpTransport({} as never, { path: "/", loop }),
    TypeError,
  );
  assertThrows(
    () => new HttpTransport(client, { path: "rpc", loop }),
    TypeError,
    'starting with "/"',
  );
  assertThrows(
    () => new HttpTransport(client, { path: "/", method: "GET", loop }),
    RangeError,
  );
  const t = new HttpTransport(client, { path: "/", loop });
  assertThrows(() => t.write("x" as never), TypeError);
  assertEquals(
    t.getExtraInfo("peername"),
    { transport: "tcp", hostname: "127.0.0.1", port: 40002 },
  );
  assertEquals(t.getExtraInfo("nothing", 7), 7);
  assertEquals(t.canWriteEof(), true);
  assertEquals(String(t), "[object HttpTransport open]");
  client.close();
  await loop.advance(1);
  loop.close();
});

// ---- Writing and reading ----

Deno.test("HttpTransport sends each write as one request and delivers the answers in order", async () => {
  for (const split of SPLITS) {
    const s = await stack(
      async (body) => {
        if (body === "slow") await sleep(1);
        return new Response(body.toUpperCase());
      },
      {},
      split.options,
    );
    s.transport.write(bytes("slow"));
    s.transport.write(bytes("fast"));
    s.transport.writelines([bytes("a"), bytes("b")]);
    await s.loop.advance(5);
    assertEquals(s.bodies, ["slow", "fast", "ab"], split.name);
    assertEquals(s.top.data.join(""), "SLOWFASTAB", split.name);
    assertEquals(s.server.requestCount, 3);
    await finish(s);
  }
});

Deno.test("HttpTransport delivers response bodies into a BufferedProtocol's own buffer", async () => {
  const s = await stack((body) => new Response(body.toUpperCase()));
  const events: string[] = [];
  let got = "";
  const buffered = new (class extends BufferedProtocol {
    readonly buf = new Uint8Array(4);
    override getBuffer(): Uint8Array {
      return this.buf;
    }
    override bufferUpdated(n: number): void {
      got += text(this.buf.subarray(0, n));
    }
    override eofReceived(): boolean {
      events.push("eof");
      return false;
    }
    override connectionLost(exc?: Error): void {
      events.push(exc === undefined ? "lost" : `lost ${exc.message}`);
    }
  })();
  s.transport.setProtocol(buffered);
  s.transport.write(bytes("hello buffered"));
  s.transport.writeEof();
  await s.loop.advance(5);
  assertEquals(got, "HELLO BUFFERED");
  assertEquals(events, ["eof", "lost"]);
  await finish(s);
});

Deno.test("HttpTransport with coalesce joins the writes of one loop turn into one request", async () => {
  const s = await stack((body) => new Response(`[${body}]`), {
    coalesce: true,
  });
  s.transport.write(bytes("a"));
  s.transport.write(bytes("b"));
  s.transport.writelines([bytes("c"), bytes("d")]);
  await s.loop.advance(1);
  s.transport.write(bytes("e"));
  await s.loop.advance(1);
  assertEquals(s.bodies, ["abcd", "e"]);
  assertEquals(s.top.data.join(""), "[abcd][e]");
  await finish(s);
});

Deno.test("HttpTransport delivers nothing for a 204 or an empty body", async () => {
  const s = await stack((body) =>
    body === "204"
      ? new Response(null, { status: 204 })
      : new Response(body === "empty" ? "" : "x")
  );
  s.transport.write(bytes("204"));
  s.transport.write(bytes("empty"));
  s.transport.write(bytes("x"));
  await s.loop.advance(1);
  assertEquals(s.top.data, ["x"]);
  await finish(s);
});

Deno.test("HttpTransport delivers a streamed response body as it arrives", async () => {
  const s = await stack(() =>
    new Response(
      new ReadableStream({
        async pull(c) {
          await sleep(1);
          c.enqueue(bytes("tick"));
          if (++n === 3) c.close();
        },
      }),
    )
  );
  let n = 0;
  s.transport.write(bytes("go"));
  await s.loop.advance(1.5);
  assertEquals(s.top.data, ["tick"]);
  await s.loop.advance(5);
  assertEquals(s.top.data, ["tick", "tick", "tick"]);
  await finish(s);
});

Deno.test("HttpTransport holds data while reading is paused", async () => {
  const s = await stack((body) => new Response(body));
  s.transport.pauseReading();
  assertEquals(s.transport.isReading(), false);
  s.transport.write(bytes("one"));
  s.transport.write(bytes("two"));
  await s.loop.advance(1);
  assertEquals(s.top.data, []);
  s.transport.resumeReading();
  await s.loop.advance(1);
  assertEquals(s.top.data.join(""), "onetwo");
  await finish(s);
});

Deno.test("HttpTransport counts unanswered bytes in its write buffer and pauses the protocol", async () => {
  const s = await stack(async (body) => {
    await sleep(1);
    return new Response(body);
  });
  s.transport.setWriteBufferLimits(10);
  assertEquals(s.transport.getWriteBufferLimits(), [2, 10]);
  s.transport.write(bytes("0123456789abc"));
  assertEquals(s.transport.getWriteBufferSize(), 13);
  assertEquals(s.top.events, ["made", "pauseWriting"]);
  await s.loop.advance(2);
  assertEquals(s.transport.getWriteBufferSize(), 0);
  assertEquals(s.top.events, ["made", "pauseWriting", "resumeWriting", "data"]);
  await finish(s);
});

Deno.test("HttpTransport closed while the protocol is paused resumes it once the requests are answered, then connectionLost", async () => {
  // As asyncio's transports call resume_writing() while a close() flushes.
  const s = await stack(async (body) => {
    await sleep(1);
    return new Response(body);
  });
  s.transport.setWriteBufferLimits(10);
  s.transport.write(bytes("0123456789abc"));
  s.transport.close();
  await s.loop.advance(2);
  assertEquals(s.transport.getWriteBufferSize(), 0);
  assertEquals(s.top.events, ["made", "pauseWriting", "resumeWriting", "lost"]);
  assertEquals(s.top.lostWith, undefined);
  await finish(s);
});

// ---- Failures and ending ----

Deno.test("HttpTransport fails when the server answers with an error status", async () => {
  const s = await stack(() => new Response("no", { status: 413 }));
  s.transport.write(bytes("x"));
  await s.loop.advance(1);
  assertEquals(s.top.events, ["made", "lost"]);
  assertInstanceOf(s.top.lostWith, Error);
  assertStringIncludes((s.top.lostWith as Error).message, "413");
  assert(s.transport.isClosing());
  // Writes between the failure and connectionLost are dropped; after it,
  // refused.
  assertThrows(() => s.transport.write(bytes("y")), InvalidStateError);
  await finish(s);
});

Deno.test("HttpTransport.close() waits for the answers, drops them, then loses the connection", async () => {
  const s = await stack(async (body) => {
    await sleep(1);
    return new Response(body);
  });
  s.transport.write(bytes("a"));
  s.transport.close();
  assert(s.transport.isClosing());
  assertThrows(() => s.transport.write(bytes("b")), InvalidStateError);
  await s.loop.advance(0.5);
  assertEquals(s.top.events, ["made"]);
  await s.loop.advance(1);
  assertEquals(s.top.events, ["made", "lost"]);
  assertEquals(s.top.lostWith, undefined);
  assertEquals(s.bodies, ["a"]);
  await finish(s);
});

Deno.test("HttpTransport.writeEof() delivers the last answers, then EOF and the end", async () => {
  const s = await stack((body) => new Response(body));
  s.transport.write(bytes("last"));
  s.transport.writeEof();
  assertThrows(() => s.transport.write(bytes("more")), InvalidStateError);
  await s.loop.advance(1);
  assertEquals(s.top.events, ["made", "data", "eof", "lost"]);
  assertEquals(s.top.lostWith, undefined);
  await finish(s);
});

Deno.test("HttpTransport.writeEof() stops its producer: no more bodies can be sent", async () => {
  const s = await stack((body) => new Response(body));
  const calls: string[] = [];
  s.transport.registerProducer({
    resumeProducing: () => calls.push("resume"),
    pauseProducing: () => calls.push("pause"),
    stopProducing: () => calls.push("stop"),
  }, true);
  s.transport.write(bytes("last"));
  s.transport.writeEof();
  assertEquals(calls, ["stop"]);
  await s.loop.advance(1);
  assertEquals(calls, ["stop"]);
  await finish(s);
});

Deno.test("HttpTransport.abort() loses the connection at once", async () => {
  // The handler resumes from request.text() (a promise of the host) after
  // advance() returned, outside the loop's run: it names its loop.
  const s: Stack = await stack(async (body) => {
    await sleep(5, undefined, { loop: s.loop });
    return new Response(body);
  });
  s.transport.write(bytes("a"));
  s.transport.abort();
  await s.loop.advance(0);
  assertEquals(s.top.events, ["made", "lost"]);
  await s.loop.advance(10);
  assertEquals(s.top.events, ["made", "lost"]);
  await finish(s);
});

Deno.test("HttpTransport is lost with the client's connection", async () => {
  const s = await stack(async (body) => {
    await sleep(5);
    return new Response(body);
  });
  s.transport.write(bytes("a"));
  await s.loop.advance(1);
  s.client.transport!.abort();
  await s.loop.advance(1);
  assertEquals(s.top.events, ["made", "lost"]);
  assertInstanceOf(s.top.lostWith, Deno.errors.ConnectionReset);
  await finish(s);

  // Idle when the client closes: lost without an error.
  const t = await stack((body) => new Response(body));
  t.client.close();
  await t.loop.advance(1);
  assertEquals(t.top.events, ["made", "lost"]);
  assertEquals(t.top.lostWith, undefined);
  await finish(t);
});

Deno.test("HttpTransport paused for reading still hears its client's connection end", async () => {
  // Cut mid-body: lost with the client's error, though nothing is read.
  const s = await stack(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        start: (controller) => controller.enqueue(bytes("part")),
      }),
    )
  );
  s.transport.pauseReading();
  s.transport.write(bytes("a"));
  await s.loop.advance(1);
  assertEquals(s.top.events, ["made"]);
  s.client.transport!.abort();
  await s.loop.advance(1);
  assertEquals(s.top.events, ["made", "lost"]);
  assertInstanceOf(s.top.lostWith, Deno.errors.ConnectionReset);
  await finish(s);

  // Closed after a whole answer: the answer waits for resumeReading(),
  // then the end follows it.
  const t = await stack((body) => new Response(body));
  t.transport.pauseReading();
  t.transport.write(bytes("whole"));
  await t.loop.advance(1);
  t.client.close();
  await t.loop.advance(1);
  assertEquals(t.top.events, ["made"]);
  t.transport.resumeReading();
  await t.loop.advance(1);
  assertEquals(t.top.events, ["made", "data", "lost"]);
  assertEquals(t.top.data, ["whole"]);
  assertEquals(t.top.lostWith, undefined);
  await finish(t);
});

Deno.test("HttpTransport paused past the client's unreadBodyTimeout, with a request behind the body it holds, is lost", async () => {
  // The first answer streams 100 KiB and goes on; the second waits behind
  // it. Paused for longer than unreadBodyTimeout (60 s), the transport is
  // lost with the client's connection.
  const s = await stack((body) =>
    body === "a"
      ? new Response(
        new ReadableStream<Uint8Array>({
          start: (controller) => controller.enqueue(new Uint8Array(100 << 10)),
        }),
      )
      : new Response(body)
  );
  s.transport.pauseReading();
  s.transport.write(bytes("a"));
  s.transport.write(bytes("b"));
  await s.loop.advance(59);
  assertEquals(s.top.events, ["made"]);
  await s.loop.advance(2);
  assertEquals(s.top.events, ["made", "lost"]);
  assertStringIncludes(String(s.top.lostWith), "unreadBodyTimeout (60 s)");
  await finish(s);
});

// ---- PEP 3153's stack ----

// A JSON-RPC server over HTTP rarely ends its body with a newline (and may
// pretty-print it): made without a framing option, JsonRpcProtocol takes
// the raw framing over an HttpTransport.
Deno.test("JsonRpcProtocol without a framing option reads JSON bodies with no newline, or pretty-printed, over an HttpTransport", async () => {
  for (const body of ['{"jsonrpc":"2.0","id":1,"result":7}', pretty()]) {
    const loop = new VirtualTimeLoop();
    const server = new HttpServerProtocol(
      () =>
        new Response(body, { headers: { "content-type": "application/json" } }),
      { loop },
    );
    const http = new HttpClientProtocol({ loop });
    transportPair(http, server, { loop });
    await loop.advance(0);
    const { transport, rpc } = rpcOverHttp(http, loop, {});
    assertEquals(rpc.framing, "raw");
    assertEquals(await loop.runUntilComplete(rpc.call("seven"), 5), 7);
    transport.close();
    http.close();
    await loop.advance(10);
    loop.close();
  }
});

function pretty(): string {
  return JSON.stringify({ jsonrpc: "2.0", id: 1, result: 7 }, null, 2);
}

// SPEC: `new JsonRpcProtocol(methods?)` "runs over any transport (a TCP
// connection, an HttpTransport)" — made as SPEC shows it, with its default
// framing, as well as with the raw framing.
Deno.test("JsonRpcProtocol runs over HttpTransport over HttpClientProtocol to jsonRpcHttpHandler", async () => {
  const framings: [string, JsonRpcProtocolOptions][] = [
    ["raw framing", { framing: "raw" }],
    ["default framing", {}],
  ];
  for (
    const [split, [framing, options]] of SPLITS.flatMap((s) =>
      framings.map((f) => [s, f] as const)
    )
  ) {
    const name = `${split.name}, ${framing}`;
    const loop = new VirtualTimeLoop();
    const logged: unknown[] = [];
    const server = new HttpServerProtocol(
      jsonRpcHttpHandler({
        add: ([a, b]: number[]) => a + b,
        slow: async ([x]: number[]) => {
          await sleep(1, undefined, { loop });
          return x;
        },
        log: (params) => {
          logged.push(params);
        },
        fail: () => {
          throw new JsonRpcError(-32000, "Refused");
        },
      }, { loop }),
      { loop },
    );
    const http = new HttpClientProtocol({ loop });
    transportPair(http, server, { loop, ...split.options });
    await loop.advance(0);
    const { transport, rpc } = rpcOverHttp(http, loop, options);
    const got = await loop.runUntilComplete(
      (async () => {
        const sum = await rpc.call("add", [40, 2]);
        rpc.notify("log", ["quiet"]);
        const batch = await rpc.batch([
          { method: "slow", params: [9] },
          { method: "log", params: ["b"], notify: true },
          { method: "fail" },
        ]);
        const concurrent = await Promise.all([
          rpc.call("slow", [1]),
          rpc.call("add", [2, 2]),
          rpc.call("slow", [3]),
        ]);
        return { sum, batch, concurrent };
      })(),
      60,
    );
    assertEquals(got.sum, 42, name);
    assertEquals(got.batch[0], 9);
    assertEquals(got.batch[1], undefined);
    assertInstanceOf(got.batch[2], JsonRpcError);
    assertEquals(got.concurrent, [1, 4, 3]);
    assertEquals(logged, [["quiet"], ["b"]]);
    transport.close();
    http.close();
    await loop.advance(10);
    assertEquals(rpc.transport, null);
    loop.close();
  }
});
