import { assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import {
  DEFAULT_TEXT_TYPE,
  fastContentType,
  fastStaticBody,
  knownBodyLength,
  readReadyBody,
  staticBody,
} from "../../http/_deno_body.ts";
import { INTERNALS_ENABLED } from "../../transports/_deno_internals.ts";

// These read Deno's internals (transports/_deno_internals.ts): with them
// switched off, every answer is "not known" and the protocols take their
// general path, which the last test pins.
const ignore = !INTERNALS_ENABLED;

Deno.test(
  "fastStaticBody() finds the body of plain 200 responses",
  { ignore },
  () => {
    const text = new Response("hi");
    assertEquals(fastStaticBody(text), "hi");
    assertEquals(fastContentType(text), DEFAULT_TEXT_TYPE);
    const json = Response.json({ a: 1 });
    assertEquals(fastStaticBody(json), '{"a":1}');
    assertEquals(fastContentType(json), "application/json");
    const raw = new Response(new Uint8Array([1, 2]));
    assertEquals(fastStaticBody(raw), new Uint8Array([1, 2]));
    assertEquals(fastContentType(raw), null);
  },
);

Deno.test(
  "fastStaticBody() refuses other statuses, reason phrases, extra headers, streams and used bodies",
  { ignore },
  async () => {
    assertEquals(fastStaticBody(new Response("x", { status: 404 })), null);
    assertEquals(
      fastStaticBody(new Response("x", { statusText: "Fine" })),
      null,
    );
    assertEquals(fastStaticBody(new Response("x", { statusText: "OK" })), "x");
    assertEquals(
      fastStaticBody(new Response("x", { headers: { "x-a": "1" } })),
      null,
    );
    assertEquals(fastStaticBody(new Response(new ReadableStream())), null);
    const changed = new Response("x");
    changed.headers.set("x-b", "2");
    assertEquals(fastStaticBody(changed), null);
    const used = new Response("x");
    await used.text();
    assertEquals(fastStaticBody(used), null);
  },
);

Deno.test("staticBody() tells bodies in memory from streams and no body", {
  ignore,
}, async () => {
  const r = new Response("nf", { status: 404 });
  r.headers; // Settles Deno's lazy form, as the server does.
  assertEquals(staticBody(r), "nf");
  assertEquals(
    staticBody(new Response(new Uint8Array([7]))),
    new Uint8Array([7]),
  );
  assertEquals(staticBody(new Response(null, { status: 204 })), null);
  assertEquals(staticBody(new Response(new ReadableStream())), undefined);
  const used = new Response("x", { status: 201 });
  await used.text();
  assertEquals(staticBody(used), undefined);
  assertEquals(
    staticBody(new Request("http://h/", { method: "POST", body: "abc" })),
    "abc",
  );
  assertEquals(staticBody(new Request("http://h/")), null);
});

Deno.test("knownBodyLength() gives a Blob body's size", { ignore }, () => {
  assertEquals(knownBodyLength(new Response(new Blob(["abc"]))), 3);
  assertEquals(knownBodyLength(new Response(new ReadableStream())), undefined);
  assertEquals(knownBodyLength(new Response(null)), undefined);
});

Deno.test(
  'with the internals switched off, every answer is "not known" but for no body',
  {
    ignore: INTERNALS_ENABLED,
  },
  () => {
    const text = new Response("hi");
    assertEquals(fastStaticBody(text), null);
    assertEquals(fastContentType(text), null);
    assertEquals(staticBody(text), undefined);
    // No body is still told, from the outside.
    assertEquals(staticBody(new Response(null)), null);
    assertEquals(
      staticBody(new Request("http://h/", { method: "POST", body: "abc" })),
      undefined,
    );
    assertEquals(knownBodyLength(new Response(new Blob(["abc"]))), undefined);
  },
);

Deno.test("readReadyBody() gives a body ready at once in one piece as bytes, and anything else as a stream of the same content", async () => {
  const enc = new TextEncoder();
  assertEquals(await readReadyBody(new Response("hi").body!), enc.encode("hi"));
  assertEquals(
    await readReadyBody(new Response(new Uint8Array(0)).body!),
    new Uint8Array(0),
  );
  const text = async (body: Uint8Array | ReadableStream<Uint8Array>) => {
    assertInstanceOf(body, ReadableStream);
    return await new Response(body as ReadableStream<Uint8Array>).text();
  };
  // Two pieces: a stream.
  const two = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(enc.encode("a"));
      c.enqueue(enc.encode("b"));
      c.close();
    },
  });
  assertEquals(await text(await readReadyBody(two)), "ab");
  // Not ready at once: a stream, whatever comes later.
  const late = ReadableStream.from((async function* () {
    await new Promise((resolve) => setTimeout(resolve, 5));
    yield enc.encode("late");
  })());
  assertEquals(await text(await readReadyBody(late)), "late");
  // A failing stream fails from the stream given back.
  const failing = new ReadableStream<Uint8Array>({
    pull(c) {
      c.error(new RangeError("broken"));
    },
  });
  const body = await readReadyBody(failing);
  assertInstanceOf(body, ReadableStream);
  await assertRejects(
    () => new Response(body as ReadableStream<Uint8Array>).text(),
    RangeError,
    "broken",
  );
});
