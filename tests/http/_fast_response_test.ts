// The fast response writer against the general one: every response shape
// the fast way takes gives the same bytes both ways.

import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { fastStaticBody } from "../../http/_deno_body.ts";
import { FastResponses } from "../../http/_fast_response.ts";
import { connectionLine, planResponse } from "../../http/_response_head.ts";
import { INTERNALS_ENABLED } from "../../transports/_deno_internals.ts";

// The fast writer is fed by fastStaticBody(), which reads Deno's
// internals: with them switched off it is never reached.
const ignore = !INTERNALS_ENABLED;

const DATE = "Sun, 06 Dec 2026 12:00:00 GMT";
const decoder = new TextDecoder();

const SHAPES: [string, () => Response][] = [
  ["short text", () => new Response("Hello, World!")],
  ["empty text", () => new Response("")],
  ["non-ASCII text", () => new Response("héllo wörld")],
  ["long text", () => new Response("x".repeat(5000))],
  ["bytes", () => new Response(new Uint8Array([1, 2, 3]))],
  ["empty bytes", () => new Response(new Uint8Array(0))],
  ["JSON", () => Response.json({ a: 1 })],
  [
    "own content type",
    () =>
      new Response("<p>hi</p>", {
        headers: { "content-type": "text/html; charset=utf-8" },
      }),
  ],
];

function general(
  response: Response,
  method: string,
  versionMinor: number,
  keepAlive: boolean,
): string {
  const plan = planResponse(response, {
    request: { method, versionMinor },
    keepAlive: () => keepAlive,
    beforeStream: () => {
      throw new Error("no shape here streams");
    },
    date: DATE,
  });
  assertStrictEquals(plan.stream, null);
  assertEquals(plan.keepAlive, keepAlive);
  return decoder.decode(plan.head) + decoder.decode(plan.data ?? undefined);
}

function fast(
  writer: FastResponses,
  response: Response,
  method: string,
  versionMinor: number,
  keepAlive: boolean,
): string | null {
  const body = fastStaticBody(response);
  assert(body !== null, "the pinned Deno gives the fast body");
  const out = writer.encode(
    response,
    body!,
    method !== "HEAD",
    `date: ${DATE}\r\n`,
    connectionLine(keepAlive, versionMinor),
  );
  if (out === null) return null;
  return out instanceof Uint8Array
    ? decoder.decode(out)
    : out.map((part) => decoder.decode(part)).join("");
}

Deno.test(
  "FastResponses gives the bytes planResponse() gives, for every shape it takes",
  { ignore },
  () => {
    for (const [name, make] of SHAPES) {
      for (const method of ["GET", "HEAD"]) {
        for (const versionMinor of [0, 1]) {
          for (const keepAlive of [true, false]) {
            const what = `${name}, ${method}, HTTP/1.${versionMinor}, ${
              keepAlive ? "keep-alive" : "close"
            }`;
            const writer = new FastResponses();
            const quick = fast(writer, make(), method, versionMinor, keepAlive);
            assert(quick !== null, what);
            assertEquals(
              quick,
              general(make(), method, versionMinor, keepAlive),
              what,
            );
            // The second time, from the last answer's bytes.
            assertEquals(
              fast(writer, make(), method, versionMinor, keepAlive),
              quick,
              what,
            );
          }
        }
      }
    }
  },
);

Deno.test(
  "FastResponses leaves a content type it cannot send as is to the general way",
  { ignore },
  () => {
    const response = new Response("hi", {
      headers: { "content-type": "text/plain; name=\u00e9" },
    });
    const body = fastStaticBody(response);
    assert(body !== null, "Deno keeps the type in its fast form");
    assertEquals(
      new FastResponses().encode(response, body!, true, "", ""),
      null,
    );
  },
);

Deno.test(
  "FastResponses does not reuse bytes when the connection line changes",
  { ignore },
  () => {
    const writer = new FastResponses();
    const open = fast(writer, new Response("a"), "GET", 1, true);
    const closing = fast(writer, new Response("a"), "GET", 1, false);
    assert(!open!.includes("connection:"), open!);
    assert(closing!.includes("connection: close\r\n"), closing!);
  },
);
