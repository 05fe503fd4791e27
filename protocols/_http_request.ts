/**
 * A web `Request` made only when the handler needs one.
 *
 * Making a `Request` costs more than parsing and answering a small HTTP
 * request (the constructor converts and checks every part of its init,
 * parses the URL and makes a signal). Many handlers never look at the
 * request, or only at its method and URL. So the server hands its handler
 * a stand-in: a `Proxy` that answers `method` and `url` itself and, on any
 * other use, makes the real `Request` once and forwards everything to it
 * — property reads and writes, method calls (Deno's own brand checks pass
 * through the proxy), `instanceof Request`, `new Request(proxy)`,
 * `fetch(proxy)`, inspection. The proxy also answers for the signal, both
 * `signal` and the key Deno's own code reads it by (`clone()`, `new
 * Request(proxy)`), so the real request is made without one: following a
 * signal costs a third of a `Request`.
 *
 * @module
 */

import { REQUEST_SIGNAL_KEY } from "./_deno_body.ts";

/** The methods `new Request()` uppercases (fetch spec "normalize"). */
const NORMALIZED = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]);

/** Returns the method as `new Request()` would spell it. */
function normalizeMethod(method: string): string {
  if (method === "GET" || method === "POST" || method === "HEAD") return method;
  const upper = method.toUpperCase();
  return NORMALIZED.has(upper) ? upper : method;
}

/**
 * What a lazy request is made from, and the proxy's target: a subclass
 * gives the parts (the server's per-request state is one, which saves an
 * object per request); the real request is kept here once made.
 */
export abstract class LazyRequestSource {
  /** The real request, once made. */
  lazyReal: Request | null = null;
  /** The normalized URL, once asked for. */
  lazyHref: string | null = null;

  /** The method as the client sent it. */
  abstract get method(): string;
  /** The absolute URL, not yet normalized. */
  abstract get url(): string;
  /** The header fields, as received. */
  abstract get headers(): Array<[string, string]>;
  /** Makes the body stream; returns `null` for no body. */
  abstract bodyStream(): ReadableStream<Uint8Array> | null;
  /** Makes the signal aborted when the client goes away. */
  abstract signal(): AbortSignal;

  /** Makes the real request, once. */
  materialize(): Request {
    let real = this.lazyReal;
    if (real === null) {
      const init: RequestInit & { duplex?: "half" } = {
        method: this.method,
        headers: this.headers,
      };
      // Following a signal is a third of the cost of a Request: where the
      // proxy can answer for the signal, the real request goes without.
      if (REQUEST_SIGNAL_KEY === null) init.signal = this.signal();
      const body = this.bodyStream();
      if (body !== null) {
        init.body = body;
        init.duplex = "half";
      }
      real = this.lazyReal = new Request(this.url, init);
    }
    return real;
  }

  // Consoles inspect a proxy's target, not the proxy: show the request.
  [Symbol.for("Deno.customInspect")](
    inspect: (value: unknown, options: unknown) => string,
    options: unknown,
  ): string {
    return inspect(this.materialize(), options);
  }
}

const HANDLER: ProxyHandler<LazyRequestSource> = {
  get(target, key) {
    if (
      REQUEST_SIGNAL_KEY !== null &&
      (key === "signal" || key === REQUEST_SIGNAL_KEY)
    ) {
      return target.signal();
    }
    if (target.lazyReal === null) {
      if (key === "method") return normalizeMethod(target.method);
      if (key === "url") return target.lazyHref ??= new URL(target.url).href;
    }
    return Reflect.get(target.materialize(), key);
  },
  set(target, key, value) {
    return Reflect.set(target.materialize(), key, value);
  },
  has(target, key) {
    return Reflect.has(target.materialize(), key);
  },
  ownKeys(target) {
    return Reflect.ownKeys(target.materialize());
  },
  getOwnPropertyDescriptor(target, key) {
    return Reflect.getOwnPropertyDescriptor(target.materialize(), key);
  },
  defineProperty(target, key, descriptor) {
    return Reflect.defineProperty(target.materialize(), key, descriptor);
  },
  deleteProperty(target, key) {
    return Reflect.deleteProperty(target.materialize(), key);
  },
  getPrototypeOf() {
    return Request.prototype;
  },
  // The proxy's invariants tie these to the target, which is not the
  // request: refuse them rather than lie.
  setPrototypeOf() {
    return false;
  },
  preventExtensions() {
    return false;
  },
};

/**
 * Returns a `Request` that is made from `source` only when first used
 * beyond its `method` and `url`.
 *
 * @param source The request's parts.
 * @returns The request.
 */
export function lazyRequest(source: LazyRequestSource): Request {
  return new Proxy(source, HANDLER) as unknown as Request;
}
