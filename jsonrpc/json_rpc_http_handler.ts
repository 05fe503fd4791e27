/**
 * `jsonRpcHttpHandler`: JSON-RPC 2.0 served over HTTP POST, as a web
 * `Request` → `Response` handler.
 *
 * @module
 */

import { formatReceived } from "../futures/errors.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import {
  CallLimiter,
  dispatch,
  type Front,
  parseMessage,
} from "./_json_rpc_dispatch.ts";
import { PeerLog } from "../protocols/peer_log.ts";
import type { JsonRpcMethod, JsonRpcMethods } from "./json_rpc_protocol.ts";
import { checkOptions, CONNECTION_LOG } from "../futures/_runtime.ts";

/** The default `maxMessageBytes`: 1 MiB. */
const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
/** The default `maxBatch`. */
const DEFAULT_MAX_BATCH = 1000;
/** The default `maxConcurrentCalls`. */
const DEFAULT_MAX_CONCURRENT_CALLS = 100;
/** The media types taken as JSON by `strictContentType`. */
const JSON_TYPES = [
  "application/json",
  "application/json-rpc",
  "application/jsonrequest",
];

/** Options for `jsonRpcHttpHandler`. */
export interface JsonRpcHttpHandlerOptions {
  /**
   * The largest request body accepted, in bytes. A longer one is answered
   * with status 413 and never read whole.
   *
   * @default {1048576}
   */
  maxMessageBytes?: number;
  /**
   * The longest batch served, in items. A longer one is answered (status
   * 200) with one -32600 Invalid Request error (id null) naming the limit,
   * and none of its calls run.
   *
   * @default {1000}
   */
  maxBatch?: number;
  /**
   * The most methods of one request (the items of a batch) running at
   * once; the others wait in line and start as running ones finish.
   *
   * @default {100}
   */
  maxConcurrentCalls?: number;
  /**
   * Answer 415 Unsupported Media Type unless the request's `Content-Type`
   * is `application/json` (or `application/json-rpc`,
   * `application/jsonrequest`). Off by default, so that any client —
   * including an `HttpTransport`, whose bodies are plain bytes — is
   * served; the body is parsed as JSON either way.
   *
   * @default {false}
   */
  strictContentType?: boolean;
  /**
   * The loop that runs methods returning a coroutine, and whose exception
   * handler hears about failed notifications (the first of each request,
   * the rest only counted, and never more log than the body's size; under
   * `HttpServerProtocol`, the first of each connection, paid from what the
   * client sent on it as the server's own reports are).
   *
   * @default {the running loop when the call is made}
   */
  loop?: SchedulingLoop;
}

function checkCount(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot make a JSON-RPC HTTP handler: ${name} must be a whole number >= 1, received ${
        formatReceived(value)
      }`,
    );
  }
  return value;
}

function plain(status: number, text: string, headers?: HeadersInit): Response {
  const h = new Headers(headers);
  h.set("content-type", "text/plain; charset=utf-8");
  return new Response(text, { status, headers: h });
}

/**
 * Reads the body, up to `max` bytes; `null` when it is longer (the rest is
 * never read).
 */
async function readBody(
  request: Request,
  max: number,
): Promise<Uint8Array | null> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > max) {
    await request.body?.cancel();
    return null;
  }
  const body = request.body;
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const parts: Uint8Array<ArrayBuffer>[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      return null;
    }
    parts.push(value);
  }
  return parts.length === 1
    ? parts[0]
    : new Uint8Array(await new Blob(parts).arrayBuffer());
}

/**
 * Makes an HTTP handler that serves JSON-RPC 2.0 calls to `methods`: each
 * POST body is one JSON-RPC message (a request, a notification or a
 * batch), and the response body its answer.
 *
 * The handler takes a web `Request` and gives a `Response`, so it works
 * with `Deno.serve` as with `HttpServerProtocol`. Methods are served by
 * the same dispatcher as `JsonRpcProtocol`, with the same error objects
 * and codes; each method's context has the `request` and its `signal`.
 * Answers: 200 with an `application/json` body (the JSON text and a
 * newline, as `JsonRpcProtocol` frames it by default, so that one stacked
 * on an `HttpTransport` reads it whatever its framing) for anything
 * JSON-RPC can answer — including parse errors and invalid requests, which are
 * JSON-RPC errors, not HTTP ones; 204 with no body when the message held
 * only notifications (sent once their methods are done); 405 (with
 * `Allow: POST`) for any method but POST; 413 for a body over
 * `maxMessageBytes`; 415 for a non-JSON `Content-Type`, with
 * `strictContentType` only. A JSON-RPC response in a body (something that
 * answers a call) is an invalid request: this side makes no calls.
 *
 * PEP 3153: the HTTP end of its stacking example — JSON-RPC carried by
 * HTTP.
 *
 * @param methods The methods served, by name (an object, or a `Map`
 * from name to function).
 * @param options `maxMessageBytes`, `maxBatch`, `maxConcurrentCalls`,
 * `strictContentType` and `loop`.
 * @returns A handler from `Request` to a promise of `Response`.
 * @throws {TypeError} When `methods` or `options` is not an object, its
 * `loop` no event loop, or `strictContentType` not a boolean.
 * @throws {RangeError} When `maxMessageBytes`, `maxBatch` or
 * `maxConcurrentCalls` is not a whole number >= 1.
 *
 * @example Answering a request made by hand
 * ```ts
 * import { jsonRpcHttpHandler } from "@tulip/tulip/jsonrpc";
 * import { assertEquals } from "@std/assert";
 *
 * const handler = jsonRpcHttpHandler({ add: ([a, b]: number[]) => a + b });
 * const response = await handler(new Request("http://localhost/rpc", {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ jsonrpc: "2.0", method: "add", params: [2, 3], id: 1 }),
 * }));
 * assertEquals(response.status, 200);
 * assertEquals(await response.json(), { jsonrpc: "2.0", result: 5, id: 1 });
 * ```
 *
 * @example Serving with Deno.serve
 * ```ts ignore
 * import { jsonRpcHttpHandler } from "@tulip/tulip/jsonrpc";
 *
 * Deno.serve({ port: 8000 }, jsonRpcHttpHandler({ ping: () => "pong" }));
 * ```
 */
export function jsonRpcHttpHandler(
  methods: JsonRpcMethods | Map<string, JsonRpcMethod>,
  options?: JsonRpcHttpHandlerOptions,
): (request: Request) => Promise<Response> {
  if (
    typeof methods !== "object" || methods === null || Array.isArray(methods)
  ) {
    throw new TypeError(
      `Cannot make a JSON-RPC HTTP handler: methods must be an object, received ${
        methods === null
          ? "null"
          : Array.isArray(methods)
          ? "array"
          : typeof methods
      }`,
    );
  }
  checkOptions(
    options,
    "make a JSON-RPC HTTP handler",
    "{ maxMessageBytes, maxBatch, … }",
  );
  const max = options?.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (typeof max !== "number" || !Number.isSafeInteger(max) || max < 1) {
    throw new RangeError(
      `Cannot make a JSON-RPC HTTP handler: maxMessageBytes must be a whole number >= 1, received ${
        formatReceived(max)
      }`,
    );
  }
  const maxBatch = checkCount(options?.maxBatch, DEFAULT_MAX_BATCH, "maxBatch");
  const maxCalls = checkCount(
    options?.maxConcurrentCalls,
    DEFAULT_MAX_CONCURRENT_CALLS,
    "maxConcurrentCalls",
  );
  const strict = options?.strictContentType ?? false;
  if (typeof strict !== "boolean") {
    throw new TypeError(
      `Cannot make a JSON-RPC HTTP handler: strictContentType must be a boolean, received ${
        formatReceived(strict)
      }`,
    );
  }
  const loop = options?.loop;
  return async (request: Request, info?: unknown): Promise<Response> => {
    if (request.method !== "POST") {
      await request.body?.cancel();
      return plain(405, "Method Not Allowed: use POST", { allow: "POST" });
    }
    if (strict) {
      const type = (request.headers.get("content-type") ?? "").split(";")[0]
        .trim().toLowerCase();
      if (!JSON_TYPES.includes(type)) {
        await request.body?.cancel();
        return plain(
          415,
          "Unsupported Media Type: use Content-Type: application/json",
        );
      }
    }
    const body = await readBody(request, max);
    if (body === null) {
      return plain(
        413,
        `Content Too Large: the limit is ${max} bytes`,
      );
    }
    const parsed = parseMessage(body);
    const text = parsed.ok
      ? await new Promise<string | undefined>((resolve) => {
        // Under HttpServerProtocol the connection's log has counted the
        // body already: reports pay from it, once per connection.
        const shared = typeof info === "object" && info !== null
          ? (info as { [CONNECTION_LOG]?: PeerLog })[CONNECTION_LOG]
          : undefined;
        const log = shared ?? new PeerLog({ loop });
        if (shared === undefined) log.received(body.length);
        const front: Front = {
          context: (method, id) => ({
            method,
            id,
            // Read only when a method asks: Deno.serve warns on any access.
            get signal() {
              return request.signal;
            },
            request,
          }),
          loop: () => loop ?? getRunningLoop(),
          onNotificationError: (error, context) =>
            log.report("failed notifications", {
              message: `JSON-RPC notification ${
                JSON.stringify(context.method.slice(0, 100))
              } failed`,
              exception: error,
            }),
          maxBatch,
          limiter: new CallLimiter(maxCalls),
        };
        dispatch(methods, parsed.value, front, (reply) => {
          if (shared === undefined) log.close("JSON-RPC HTTP request");
          resolve(reply);
        });
      })
      : parsed.reply;
    if (text === undefined) return new Response(null, { status: 204 });
    // Ended by a newline, as JsonRpcProtocol frames a message by default:
    // a JsonRpcProtocol over an HttpTransport reads it with any framing.
    return new Response(text + "\n", {
      status: 200,
      headers: { "content-type": "application/json" },
    });
  };
}
