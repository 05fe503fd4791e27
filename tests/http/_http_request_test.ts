import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import {
  lazyRequest,
  type LazyRequestSource,
  materialize,
} from "../../http/_http_request.ts";
import { INTERNALS_ENABLED } from "../../transports/_deno_internals.ts";

/** Parts that count how often the real request's pieces are made. */
function parts(method = "GET", body?: string) {
  const made = { body: 0, signal: 0 };
  const controller = new AbortController();
  class Parts implements LazyRequestSource {
    lazyReal: Request | null = null;
    get method() {
      return method;
    }
    get url() {
      return "http://h:80/a/./b?q=1";
    }
    href() {
      return new URL(this.url).href;
    }
    get headers(): Array<[string, string]> {
      return [["Host", "h"], ["X-A", "1"]];
    }
    bodyStream() {
      made.body++;
      return body === undefined ? null : new Blob([body]).stream();
    }
    signal() {
      made.signal++;
      return controller.signal;
    }
    [Symbol.for("Deno.customInspect")](
      inspect: (value: unknown, options: unknown) => string,
      options: unknown,
    ) {
      return inspect(materialize(this), options);
    }
  }
  const p = new Parts();
  return { parts: p, made, controller };
}

Deno.test("lazyRequest() answers method and url without making the request", () => {
  const { parts: p, made } = parts("delete");
  const request = lazyRequest(p);
  assertEquals(request.method, "DELETE");
  assertEquals(request.url, "http://h/a/b?q=1");
  assert(request instanceof Request);
  assertEquals(made, { body: 0, signal: 0 });
  assertEquals(request.headers.get("x-a"), "1");
  // The real request goes without a signal: the proxy answers for it
  // (through Deno's internal signal key; with the internals switched off,
  // the real request is made with the signal).
  assertEquals(made, { body: 1, signal: INTERNALS_ENABLED ? 0 : 1 });
  assertEquals(request.method, "DELETE");
  assertEquals(request.url, "http://h/a/b?q=1");
  assertEquals(lazyRequest(parts("PATCH").parts).method, "PATCH");
});

Deno.test("lazyRequest() forwards body reads, clones, copies and the signal", async () => {
  const { parts: p, controller, made } = parts("POST", "payload");
  const request = lazyRequest(p);
  const clone = request.clone();
  const copy = new Request(clone);
  const direct = new Request(request, { body: "other" });
  assertEquals(await copy.text(), "payload");
  assertEquals(await request.text(), "payload");
  assertEquals(request.bodyUsed, true);
  assertEquals(request.signal.aborted, false);
  assertEquals(made.signal > 0, true);
  controller.abort();
  // Copies follow the signal of the connection, as `fetch(request)` does.
  for (const r of [request, clone, copy, direct]) {
    assertEquals(r.signal.aborted, true);
  }
});

Deno.test("lazyRequest() behaves as an object: keys, in, writes, inspection", () => {
  const request = lazyRequest(parts().parts);
  assert("json" in request);
  assertEquals(Object.keys(request), Object.keys(new Request("http://h/")));
  (request as unknown as Record<string, unknown>).extra = 1;
  assertEquals((request as unknown as Record<string, unknown>).extra, 1);
  assert(Deno.inspect(request).startsWith("Request {"));
  assertEquals(Object.getPrototypeOf(request), Request.prototype);
  assertInstanceOf(request.headers, Headers);
});
