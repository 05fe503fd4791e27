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
 * here answers "not known" (`null` or `undefined`; but no body is still
 * told), and the protocols take their general path: slower, never wrong.
 * The server and the client then tell a body held in memory from the
 * outside, by its stream being ready at once ({@linkcode readReadyBody}),
 * so that their answers and requests keep their bytes (`Content-Length`,
 * not chunked).
 *
 * @module
 */

import { concatBytes } from "../transports/write_buffer.ts";
import {
  BODY_FIELDS,
  LAZY_BODY,
  RESPONSE_URL_LIST,
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
  // Not known from the inside: no body is still told from the outside.
  if (inner === undefined) return message.body === null ? null : undefined;
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

/**
 * Reads done within this many turns of the microtask queue count as
 * ready: Deno hands out a body held in memory as a stream whose reads
 * settle within two or three.
 */
const READY_TURNS = 8;
/**
 * The reads of a ready body: its one piece and its end, as Deno gives a
 * body held in memory. A stream of more pieces is taken for a stream.
 */
const READY_READS = 2;

/**
 * Whether the message's body must be read to learn whether it is held in
 * memory: when Deno's internals cannot tell (they are switched off or were
 * not found), and the body is an unread stream.
 *
 * @param message The request or response.
 * @returns `true` when {@linkcode readReadyBody} should be asked.
 */
export function bodyUnknown(message: Request | Response): boolean {
  if (BODY_FIELDS !== null) return false;
  const stream = message.body;
  return stream !== null && !stream.locked && !message.bodyUsed;
}

/**
 * Reads a body whose whole content is ready at once, in one piece — one
 * held in memory (a string, bytes, JSON), as Deno's internals would have
 * told — without waiting for one that is not: each read must settle
 * within a few turns of the microtask queue. Returns the bytes when the
 * body ended so, else a stream of the same content (what was read, then
 * the rest), to send as a stream; a stream that failed fails from there
 * too. The web API cannot tell such a body from a stream made with its
 * one piece and its end already queued, which is taken for one too.
 *
 * @param stream The body, not locked.
 * @returns The whole body, or a stream of it.
 */
export async function readReadyBody(
  stream: ReadableStream<Uint8Array>,
): Promise<Uint8Array | ReadableStream<Uint8Array>> {
  const reader = stream.getReader();
  const pieces: Uint8Array[] = [];
  let size = 0;
  for (let reads = 0; reads < READY_READS; reads++) {
    const read = reader.read();
    let result: ReadableStreamReadResult<Uint8Array> | null = null;
    let failed = false;
    read.then((r) => result = r, () => failed = true);
    for (let turn = 0; turn < READY_TURNS; turn++) {
      if (result !== null || failed) break;
      await undefined;
    }
    const r = result as ReadableStreamReadResult<Uint8Array> | null;
    if (r === null) return resumed(pieces, read, reader);
    if (r.done) return concatBytes(pieces, size);
    if (!(r.value instanceof Uint8Array)) return resumed(pieces, read, reader);
    pieces.push(r.value);
    size += r.value.length;
  }
  return resumed(pieces, null, reader);
}

/** A stream of `pieces`, then of `pending` (a read begun), then the rest. */
function resumed(
  pieces: Uint8Array[],
  pending: Promise<ReadableStreamReadResult<Uint8Array>> | null,
  reader: ReadableStreamDefaultReader<Uint8Array>,
): ReadableStream<Uint8Array> {
  let next = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (next < pieces.length) {
        controller.enqueue(pieces[next]);
        pieces[next++] = undefined as never;
        return;
      }
      const read = pending ?? reader.read();
      pending = null;
      const { done, value } = await read;
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/**
 * Gives a response made by the client the URL of its request, as
 * `fetch()` does: in Deno's URL list, which `clone()` copies, or else as
 * the response's own `url`.
 *
 * @param response The response, just made.
 * @param url The request's URL, without its fragment.
 */
export function setResponseUrl(response: Response, url: string): void {
  if (RESPONSE_URL_LIST !== null) {
    const inner = (response as unknown as Fields)[RESPONSE_URL_LIST] as {
      urlList: string[];
    };
    inner.urlList.push(url);
  } else {
    Object.defineProperty(response, "url", { value: url });
  }
}
