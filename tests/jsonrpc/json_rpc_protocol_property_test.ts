// Property tests of the JSON-RPC dispatcher and JsonRpcProtocol: whatever a
// peer sends, in any framing and cut at any points, nothing throws out of
// the protocol, nothing is held past its limit, and the answers are the
// same as for the stream delivered whole.

import { assert, assertEquals } from "@std/assert";
import fc from "fast-check";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import {
  CallLimiter,
  dispatch,
  type Front,
} from "../../jsonrpc/_json_rpc_dispatch.ts";
import { JsonRpcError } from "../../jsonrpc/json_rpc_error.ts";
import {
  type JsonRpcFraming,
  type JsonRpcMethods,
  JsonRpcProtocol,
} from "../../jsonrpc/json_rpc_protocol.ts";
import { transportPair } from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { frame, Peer } from "./_json_rpc_peer.ts";

const methods: JsonRpcMethods = {
  echo: (p) => p,
  fail: () => {
    throw new JsonRpcError(-32000, "Failed", { why: "asked" });
  },
  boom: () => {
    throw new Error("Boom");
  },
};

/** Something shaped like a JSON-RPC message, valid or not. */
const item: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({
    jsonrpc: fc.constantFrom("2.0", "1.0", 2),
    method: fc.oneof(
      fc.constantFrom("echo", "fail", "boom", "missing", "toString"),
      fc.string({ maxLength: 5 }),
      fc.integer(),
    ),
    params: fc.oneof(
      fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), {
        maxKeys: 2,
      }),
      fc.jsonValue({ maxDepth: 1 }),
    ),
    id: fc.oneof(fc.integer(), fc.string({ maxLength: 4 }), fc.constant(null)),
  }, { requiredKeys: [] }),
  fc.record({
    jsonrpc: fc.constant("2.0"),
    result: fc.jsonValue({ maxDepth: 1 }),
    id: fc.oneof(fc.integer({ min: -2, max: 5 }), fc.constant(null)),
  }, { requiredKeys: ["result"] }),
  fc.jsonValue({ maxDepth: 2 }),
);

/** One message: an item or a batch of them. */
const message = fc.oneof(
  { weight: 3, arbitrary: item },
  { weight: 1, arbitrary: fc.array(item, { maxLength: 6 }) },
);

/** Whether `x` is a response: an object with a result or an error and no method. */
function isResponse(x: unknown): boolean {
  return typeof x === "object" && x !== null && !Array.isArray(x) &&
    !("method" in x) && ("result" in x || "error" in x);
}

function front(maxBatch: number): Front {
  return {
    context: (method, id) => ({
      method,
      id,
      signal: new AbortController().signal,
    }),
    loop: () => null,
    onResponse: () => {},
    onNotificationError: () => {},
    maxBatch,
    limiter: new CallLimiter(2),
  };
}

Deno.test("dispatch() answers any JSON value exactly once, with JSON, within maxBatch", () => {
  fc.assert(
    fc.property(message, fc.integer({ min: 1, max: 4 }), (m, maxBatch) => {
      const replies: (string | undefined)[] = [];
      dispatch(methods, m, front(maxBatch), (text) => replies.push(text));
      // Every method here is synchronous: the reply is already there.
      assertEquals(replies.length, 1);
      const text = replies[0];
      if (text === undefined) return;
      const reply = JSON.parse(text);
      // Responses in a batch are taken, not served: only the rest count.
      if (
        Array.isArray(m) && m.filter((x) => !isResponse(x)).length > maxBatch
      ) {
        assertEquals(reply.error.code, -32600);
        return;
      }
      if (Array.isArray(reply)) {
        assert(Array.isArray(m));
        assert(reply.length <= (m as unknown[]).length);
        for (const r of reply) assertEquals(r.jsonrpc, "2.0");
      } else {
        assertEquals(reply.jsonrpc, "2.0");
      }
    }),
    { numRuns: 500 },
  );
});

/** What a JsonRpcProtocol answers to `data` cut at `cuts`. */
async function serve(
  framing: JsonRpcFraming,
  data: Uint8Array,
  cuts: number[],
  maxMessageBytes: number,
) {
  const loop = new VirtualTimeLoop();
  const contexts: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, ctx) => contexts.push(ctx));
  const protocol = new JsonRpcProtocol(methods, {
    loop,
    framing,
    maxMessageBytes,
    maxBatch: 4,
    maxConcurrentCalls: 2,
  });
  const peer = new Peer();
  const [, peerT] = transportPair(protocol, peer, {
    loop,
    // Deliveries from the peer end at the cut points.
    split: (offset) => {
      const next = cuts.find((c) => c > offset);
      return next === undefined ? Infinity : next - offset;
    },
  });
  await loop.advance(0);
  peer.send(data);
  await loop.advance(1);
  const closed = peer.lost || peer.eof;
  peerT.close();
  await loop.advance(1);
  loop.close();
  // Only the protocol's own reports: nothing escaped from a callback.
  for (const c of contexts) {
    assert(c.message.startsWith("JSON-RPC"), c.message);
  }
  return {
    replies: peer.messages(framing),
    closed,
    stray: protocol.strayResponses,
    failed: protocol.failedNotifications,
  };
}

for (const framing of ["newline", "length", "raw"] as JsonRpcFraming[]) {
  Deno.test(`JsonRpcProtocol answers any stream the same whole and cut anywhere (${framing})`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            { weight: 4, arbitrary: message.map((m) => JSON.stringify(m)) },
            // Garbage: never a newline, which would cut it in two.
            {
              weight: 1,
              arbitrary: fc.string({ maxLength: 10 }).map((s) =>
                s.replace(/[\n\r]/g, " ")
              ),
            },
          ),
          { maxLength: 8 },
        ).chain((texts) => {
          const data = frame(framing, ...texts);
          return fc.tuple(
            fc.constant(data),
            fc.uniqueArray(fc.integer({ min: 0, max: data.length }), {
              maxLength: 10,
            }).map((c) => c.sort((a, b) => a - b)),
            fc.constantFrom(40, 120, 100_000),
          );
        }),
        async ([data, cuts, max]) => {
          const whole = await serve(framing, data, [], max);
          const split = await serve(framing, data, cuts, max);
          assertEquals(split, whole);
        },
      ),
      { numRuns: 100 },
    );
  });
}

/** Counts the bytes it was given. */
class Counting extends JsonRpcProtocol {
  received = 0;
  override dataReceived(data: Uint8Array): void {
    this.received += data.length;
    super.dataReceived(data);
  }
}

Deno.test("JsonRpcProtocol reads no more than maxMessageBytes past its busy calls, whatever the chunks", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 64, max: 4096 }),
      fc.integer({ min: 1, max: 3000 }),
      fc.integer({ min: 1, max: 4 }),
      fc.constantFrom<JsonRpcFraming>("newline", "length", "raw"),
      async (max, chunk, slots, framing) => {
        const loop = new VirtualTimeLoop();
        const protocol = new Counting({
          // Never settles: every slot stays taken.
          hang: () => new Promise(() => {}),
        }, { loop, framing, maxMessageBytes: max, maxConcurrentCalls: slots });
        const peer = new Peer();
        const [, peerT] = transportPair(protocol, peer, {
          loop,
          chunkSize: chunk,
          bufferSize: 1024,
        });
        await loop.advance(0);
        const request = (i: number) =>
          JSON.stringify({ jsonrpc: "2.0", method: "hang", id: i });
        const texts = Array.from({ length: 400 }, (_, i) => request(i));
        peer.send(frame(framing, ...texts));
        await loop.advance(1);
        // The calls running, an inbox that stops at max (plus the message
        // that crossed it), a partial message in the framer, one read.
        const bound = max + chunk + (slots + 2) * 64;
        assert(
          protocol.received <= bound,
          `read ${protocol.received} > ${bound}`,
        );
        assertEquals(protocol.transport!.isReading(), false);
        peerT.abort();
        await loop.advance(1);
        loop.close();
      },
    ),
    { numRuns: 60 },
  );
});
