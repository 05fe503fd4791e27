/**
 * Reads what Deno keeps inside a `Request` or `Response` about its body,
 * so that the HTTP protocols can send a string or byte body with a
 * `Content-Length` (and in one write) without turning it into a stream.
 *
 * The web API gives no synchronous way to tell a body made from a string
 * from a streamed one: `body` always hands out a `ReadableStream`, and
 * making one (then reading it) costs more than the rest of a small
 * request. `Deno.serve` reads the same fields for the same reason. They
 * are found by their symbols' descriptions once, at load time; if a Deno
 * release renames or reshapes them, every function here answers "not
 * known" (`null` or `undefined`), and the protocols take their general
 * path: slower, never wrong.
 *
 * @module
 */

/** A `Response` field as Deno stores it: symbol-keyed, on the instance. */
type Fields = Record<symbol, unknown>;

/** How Deno keeps a body that is not a stream. */
interface StaticBody {
  body: unknown;
  consumed: boolean;
}

/** What Deno keeps about a body (`InnerBody`). */
interface InnerBody {
  streamOrStatic: unknown;
  length: unknown;
}

function findSymbol(object: object, description: string): symbol | null {
  for (const s of Object.getOwnPropertySymbols(object)) {
    if (s.description === description) return s;
  }
  return null;
}

const probeResponse = new Response("");
const probeRequest = new Request("http://localhost/");

const S_RESPONSE = findSymbol(probeResponse, "response");
const S_REQUEST = findSymbol(probeRequest, "request");
const S_LAZY_BODY = findSymbol(probeResponse, "lazy static body");
const S_FAST_STATUS = findSymbol(probeResponse, "serve fast status");
const S_FAST_BODY = findSymbol(probeResponse, "serve fast body");
const S_FAST_KIND = findSymbol(probeResponse, "serve fast header kind");
const S_FAST_TYPE = findSymbol(probeResponse, "serve fast content type");
const FAST_OK = S_FAST_STATUS !== null && S_FAST_BODY !== null &&
  S_FAST_KIND !== null && S_FAST_TYPE !== null &&
  (probeResponse as unknown as Fields)[S_FAST_STATUS] === 200 &&
  (probeResponse as unknown as Fields)[S_FAST_BODY] === "" &&
  (probeResponse as unknown as Fields)[S_FAST_KIND] === 1;

/**
 * The key of the getter on `Request.prototype` through which Deno's own
 * code reads a request's signal (`clone()`, and `new Request(request)`,
 * which `fetch(request)` uses), or `null` when this Deno has none.
 */
export const REQUEST_SIGNAL_KEY: symbol | null = (() => {
  const key = findSymbol(Request.prototype, "signal");
  const getter = key === null
    ? undefined
    : Object.getOwnPropertyDescriptor(Request.prototype, key)?.get;
  return typeof getter === "function" &&
      (probeRequest as unknown as Fields)[key!] === probeRequest.signal
    ? key
    : null;
})();

/** The content type Deno gives a string body. */
export const DEFAULT_TEXT_TYPE = "text/plain;charset=UTF-8";

/**
 * Returns the body of a response in Deno's "static" form: status 200, no
 * header but at most a `Content-Type`, a string or byte body, not used.
 * Returns `null` for any other response. Read its content type with
 * {@linkcode fastContentType}.
 *
 * @param response The response.
 * @returns The body, or `null`.
 */
export function fastStaticBody(response: Response): string | Uint8Array | null {
  if (!FAST_OK) return null;
  const r = response as unknown as Fields;
  if (r[S_FAST_STATUS!] !== 200) return null;
  const body = r[S_FAST_BODY!];
  if (typeof body !== "string" && !(body instanceof Uint8Array)) return null;
  // A body still in Deno's lazy form was not read (and asking `bodyUsed`
  // would take it out of that form, which costs).
  if (S_LAZY_BODY !== null && typeof r[S_LAZY_BODY] === "string") return body;
  return response.bodyUsed ? null : body;
}

/**
 * Returns the content type of a response for which
 * {@linkcode fastStaticBody} gave a body: `null` for none.
 *
 * @param response The response.
 * @returns The `Content-Type` value, or `null`.
 */
export function fastContentType(response: Response): string | null {
  const r = response as unknown as Fields;
  const kind = r[S_FAST_KIND!];
  if (kind === 1) return DEFAULT_TEXT_TYPE;
  if (kind === 2) {
    const type = r[S_FAST_TYPE!];
    return typeof type === "string" ? type : null;
  }
  return null;
}

function innerBody(message: Request | Response): InnerBody | null | undefined {
  const key = message instanceof Response ? S_RESPONSE : S_REQUEST;
  if (key === null) return undefined;
  const inner = (message as unknown as Fields)[key] as
    | { body?: InnerBody | null }
    | undefined;
  if (inner === undefined || inner === null || !("body" in inner)) {
    return undefined;
  }
  return inner.body ?? null;
}

/**
 * Returns the body of a request or response when it is a string or bytes
 * held in memory and not used; `null` when there is no body; `undefined`
 * when it is a stream or cannot be told.
 *
 * @param message The request or response (a response's `headers` should
 * have been read first, which settles Deno's lazy form).
 * @returns The body, `null`, or `undefined`.
 */
export function staticBody(
  message: Request | Response,
): string | Uint8Array | null | undefined {
  if (S_LAZY_BODY !== null && message instanceof Response) {
    const lazy = (message as unknown as Fields)[S_LAZY_BODY];
    if (typeof lazy === "string") return message.bodyUsed ? undefined : lazy;
  }
  const inner = innerBody(message);
  if (inner === null) return null;
  if (inner === undefined) return undefined;
  const sos = inner.streamOrStatic as StaticBody | ReadableStream | undefined;
  if (
    sos === undefined || sos === null || sos instanceof ReadableStream ||
    sos.consumed !== false
  ) return undefined;
  const body = sos.body;
  if (typeof body === "string" || body instanceof Uint8Array) return body;
  return undefined;
}

/**
 * Returns the length in bytes Deno knows for a streamed body (a `Blob`'s
 * size), or `undefined`.
 *
 * @param message The request or response.
 * @returns The length, or `undefined`.
 */
export function knownBodyLength(
  message: Request | Response,
): number | undefined {
  const inner = innerBody(message);
  if (inner === null || inner === undefined) return undefined;
  const length = inner.length;
  return typeof length === "number" && Number.isSafeInteger(length) &&
      length >= 0
    ? length
    : undefined;
}
