/**
 * Reads what Deno keeps inside a `Request` or `Response` about its body,
 * so that the HTTP protocols can send a string or byte body with a
 * `Content-Length` (and in one write) without turning it into a stream.
 *
 * The web API gives no synchronous way to tell a body made from a string
 * from a streamed one: `body` always hands out a `ReadableStream`, and
 * making one (then reading it) costs more than the rest of a small
 * request. `Deno.serve` reads the same fields for the same reason. They
 * are probed for in `transports/_deno_internals.ts`, with Deno's other private
 * internals; when a probe finds nothing (a Deno release renamed or
 * reshaped the fields, or `TULIP_NO_INTERNALS` is set), every function
 * here answers "not known" (`null` or `undefined`), and the protocols take
 * their general path: slower, never wrong.
 *
 * @module
 */

import {
  BODY_FIELDS,
  LAZY_BODY,
  SERVE_FAST,
} from "../transports/_deno_internals.ts";

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

/** The content type Deno gives a string body. */
export const DEFAULT_TEXT_TYPE = "text/plain;charset=UTF-8";

/**
 * Returns the body of a response in Deno's "static" form: status 200, no
 * header but at most a `Content-Type`, a string or byte body, not used —
 * and no reason phrase of its own (the fast way always sends `OK`).
 * Returns `null` for any other response. Read its content type with
 * {@linkcode fastContentType}.
 *
 * @param response The response.
 * @returns The body, or `null`.
 */
export function fastStaticBody(response: Response): string | Uint8Array | null {
  if (SERVE_FAST === null) return null;
  const r = response as unknown as Fields;
  if (r[SERVE_FAST.status] !== 200) return null;
  const body = r[SERVE_FAST.body];
  if (typeof body !== "string" && !(body instanceof Uint8Array)) return null;
  const reason = response.statusText;
  if (reason !== "" && reason !== "OK") return null;
  // A body still in Deno's lazy form was not read (and asking `bodyUsed`
  // would take it out of that form, which costs).
  if (LAZY_BODY !== null && typeof r[LAZY_BODY] === "string") return body;
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
  if (SERVE_FAST === null) return null;
  const r = response as unknown as Fields;
  const kind = r[SERVE_FAST.kind];
  if (kind === 1) return DEFAULT_TEXT_TYPE;
  if (kind === 2) {
    const type = r[SERVE_FAST.type];
    return typeof type === "string" ? type : null;
  }
  return null;
}

function innerBody(message: Request | Response): InnerBody | null | undefined {
  if (BODY_FIELDS === null) return undefined;
  const key = message instanceof Response
    ? BODY_FIELDS.response
    : BODY_FIELDS.request;
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
  if (LAZY_BODY !== null && message instanceof Response) {
    const lazy = (message as unknown as Fields)[LAZY_BODY];
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
