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
 * signal costs a third of a `Request`. That key is one of Deno's private
 * internals (found in `transports/_deno_internals.ts`); without it, the real
 * request is made with the signal.
 *
 * @module
 */

import { REQUEST_SIGNAL_KEY } from "../transports/_deno_internals.ts";

/** The methods `new Request()` uppercases (fetch spec "normalize"). */
const NORMALIZED = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]);

/** Returns the method as `new Request()` would spell it. */
function normalizeMethod(method: string): string {
  if (method === "GET" || method === "POST" || method === "HEAD") return method;
  const upper = method.toUpperCase();
  return NORMALIZED.has(upper) ? upper : method;
}

/**
 * Why a web `Request` cannot carry the method a client sent, or `null`
 * when it can: `new Request()` refuses CONNECT, TRACE and TRACK in any
 * case, and uppercases a case variant of six methods (`get` would be
 * GET, which it is not: methods are case-sensitive, RFC 9110 §9.1).
 *
 * @param method The method, as sent.
 * @returns The reason, or `null`.
 */
export function unsupportedMethod(method: string): string | null {
  if (method === "GET" || method === "POST" || method === "HEAD") return null;
  const upper = method.toUpperCase();
  if (upper === "CONNECT" || upper === "TRACE" || upper === "TRACK") {
    return `the method ${method} is not supported`;
  }
  if (upper !== method && NORMALIZED.has(upper)) {
    return `the method ${method} is not supported (methods are ` +
      `case-sensitive; a web Request would read it as ${upper})`;
  }
  return null;
}

/**
 * What a lazy request is made from, and the proxy's target: the server's
 * per-request state implements it (which saves an object per request;
 * an interface rather than a base class, since a derived class costs a
 * second constructor call per request). The real request is kept in it
 * once made.
 */
export interface LazyRequestSource {
  /** The real request, once made; `null` before. */
  lazyReal: Request | null;
  /** The method as the client sent it. */
  readonly method: string;
  /** The absolute URL, not yet normalized. */
  readonly url: string;
  /** Returns the URL normalized, as `Request.url` spells it. */
  href(): string;
  /** The header fields, as received. */
  readonly headers: Array<[string, string]>;
  /** Makes the body: a stream, bytes, or `null` for none. */
  bodyStream(): ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null;
  /** Makes the signal aborted when the client goes away. */
  signal(): AbortSignal;
}

/**
 * Makes the real request of `source`, once.
 *
 * @param source The request's parts.
 * @returns The request.
 */
export function materialize(source: LazyRequestSource): Request {
  let real = source.lazyReal;
  if (real === null) {
    const init: RequestInit & { duplex?: "half" } = {
      method: source.method,
      headers: source.headers,
    };
    // Following a signal is a third of the cost of a Request: where the
    // proxy can answer for the signal, the real request goes without.
    if (REQUEST_SIGNAL_KEY === null) init.signal = source.signal();
    const body = source.bodyStream();
    if (body !== null) {
      init.body = body;
      if (body instanceof ReadableStream) init.duplex = "half";
    }
    real = source.lazyReal = new Request(source.url, init);
  }
  return real;
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
      if (key === "url") return target.href();
    }
    return Reflect.get(materialize(target), key);
  },
  set(target, key, value) {
    return Reflect.set(materialize(target), key, value);
  },
  has(target, key) {
    return Reflect.has(materialize(target), key);
  },
  ownKeys(target) {
    return Reflect.ownKeys(materialize(target));
  },
  getOwnPropertyDescriptor(target, key) {
    return Reflect.getOwnPropertyDescriptor(materialize(target), key);
  },
  defineProperty(target, key, descriptor) {
    return Reflect.defineProperty(materialize(target), key, descriptor);
  },
  deleteProperty(target, key) {
    return Reflect.deleteProperty(materialize(target), key);
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
 * beyond its `method` and `url`. Consoles inspect a proxy's target, so
 * `source` should show `materialize(source)` when inspected.
 *
 * @param source The request's parts.
 * @returns The request.
 */
export function lazyRequest(source: LazyRequestSource): Request {
  return new Proxy(source, HANDLER) as unknown as Request;
}
