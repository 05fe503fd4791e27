/**
 * `JsonRpcProtocol`: JSON-RPC 2.0 over any stream transport, serving calls
 * and making them on the same connection.
 *
 * @module
 */

import {
  formatReceived,
  InvalidStateError,
  LimitOverrunError,
  TimeoutError,
} from "../futures/errors.ts";
import { Future } from "../futures/future.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { TimerHandle } from "../loop/handle.ts";
import type { Transport } from "../transports/transport.ts";
import { connectionReset } from "./_deno_errors.ts";
import {
  CallLimiter,
  describe,
  dispatch,
  type Front,
  isResponseOnly,
  type MethodTable,
  type Parsed,
  parseMessage,
  refusal,
} from "./_json_rpc_dispatch.ts";
import { PeerLog } from "../protocols/peer_log.ts";
import { JsonSplitter } from "./_json_splitter.ts";
import { ChunkProtocol } from "../protocols/chunk_protocol.ts";
import { Int32StringReceiver } from "../protocols/int32_string_receiver.ts";
import { JsonRpcError } from "./json_rpc_error.ts";
import { MessageQueue } from "./_message_queue.ts";
import { EncodePool } from "./_encode_pool.ts";
import { Protocol } from "../protocols/protocol.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** The default `maxMessageBytes`: 1 MiB. */
const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
/** The largest `maxMessageBytes` (what a 4-byte length prefix can carry). */
const MAX_MESSAGE_BYTES = 0xffff_ffff;
/** The default `maxBatch`. */
const DEFAULT_MAX_BATCH = 1000;
/** The default `maxConcurrentCalls`. */
const DEFAULT_MAX_CONCURRENT_CALLS = 100;
const STRAY_RESPONSE = "stray responses";
/**
 * How many calls given up on (timed out, cancelled) without an answer are
 * remembered, so that an error with id null the peer sends for one of them
 * later is counted as late.
 */
const GIVEN_UP_KEPT = 64;
const FAILED_NOTIFICATION = "failed notifications";
const FRAMINGS: readonly JsonRpcFraming[] = ["newline", "length", "raw"];
const CR = 0x0d;
const NEWLINE = new Uint8Array([0x0a]);

const encoder = new TextEncoder();
/**
 * What a waiting message counts in the inbox beyond its bytes: its framing
 * and bookkeeping, so that a flood of tiny messages is bounded too.
 */
const INBOX_ENTRY_BYTES = 16;

/** A JSON-RPC request id: this library sends numbers, and answers any kind. */
export type JsonRpcId = string | number | null;

/** A call's parameters: by position (an array) or by name (an object). */
export type JsonRpcParams = unknown[] | Record<string, unknown>;

/**
 * What a method is told besides its params: who called, how, and when to
 * give up.
 */
export interface JsonRpcContext {
  /** The method's name, as called. */
  readonly method: string;
  /**
   * The request's id, or `undefined` for a notification (no reply). A
   * number id a double cannot hold exactly is the nearest double here; the
   * reply echoes it as the peer wrote it.
   */
  readonly id: JsonRpcId | undefined;
  /**
   * Aborted when the answer can no longer be delivered: when the
   * connection is lost (`JsonRpcProtocol`) or the HTTP client went away
   * (`jsonRpcHttpHandler`, the request's own signal).
   */
  readonly signal: AbortSignal;
  /**
   * The protocol serving the call, to call the peer back on the same
   * connection; `undefined` under `jsonRpcHttpHandler`.
   */
  readonly protocol?: JsonRpcProtocol;
  /** The HTTP request that carried the call, under `jsonRpcHttpHandler`. */
  readonly request?: Request;
}

/**
 * A method served over JSON-RPC. It receives the call's params (an array,
 * an object, or `undefined` when the call had none) and a context, and
 * returns the result: a JSON value, a promise, a `Future`, or a coroutine
 * (a generator object, run as a task on the loop). `undefined` is sent as
 * `null`. To answer with a chosen error, throw (or reject with) a
 * `JsonRpcError`, for example `JsonRpcError.INVALID_PARAMS`; anything else
 * thrown is sent as -32603 with the error's message only, never its stack.
 */
export type JsonRpcMethod = {
  // A method signature, so that a function taking narrower params (say
  // `([a, b]: number[]) => a + b`) still fits.
  bivarianceHack(
    params: JsonRpcParams | undefined,
    context: JsonRpcContext,
  ): unknown;
}["bivarianceHack"];

/**
 * The methods a side serves, by name. Only the object's own and inherited
 * functions count, and never under a name `Object.prototype` has
 * (`toString`, `constructor`, `valueOf`…), even one the object defines
 * itself (a class's `toString()` is for its logs, not its peers); a
 * method is called with the object as `this`. Names that begin with `rpc.`
 * are reserved by JSON-RPC 2.0 for extensions: one given here is served
 * (to implement such an extension, say OpenRPC's `rpc.discover`), any
 * other is not found (-32601). `JsonRpcProtocol` and
 * `jsonRpcHttpHandler` also take a `Map` from name to function: its
 * entries are the methods (called with the map as `this`), never the
 * map's own `get`, `set` or `clear`.
 */
export type JsonRpcMethods = Record<string, JsonRpcMethod>;

/** How JSON-RPC messages are cut out of the byte stream. */
export type JsonRpcFraming = "newline" | "length" | "raw";

/** Options for `JsonRpcProtocol`. */
export interface JsonRpcProtocolOptions {
  /**
   * How messages are framed on the transport:
   *
   * - `"newline"`: one JSON text per line, ending in `\n` (a `\r\n` is
   *   accepted too; blank lines are skipped; a last line the peer ends
   *   with its end of stream instead is taken as well). JSON text never
   *   holds a raw newline, so this is the common choice over TCP.
   * - `"length"`: each message after a 4-byte big-endian length, as
   *   `Int32StringReceiver` frames them.
   * - `"raw"`: no framing bytes at all; messages are cut out of the stream
   *   by their JSON syntax (brackets matched outside strings, whitespace
   *   and byte order marks between them skipped). Use it over
   *   message-oriented transports such as `HttpTransport`, where each
   *   response body is one JSON text: it works whether a message arrives
   *   whole in one `dataReceived`, spread over several, or several
   *   together.
   *
   * @default {"raw" over a transport that names a URL
   * (`getExtraInfo("url")`: an `HttpTransport`, whose response bodies
   * rarely end with a newline), else "newline"}
   */
  framing?: JsonRpcFraming;
  /**
   * The longest message accepted, in bytes (framing excluded). A longer one
   * is answered with a -32600 Invalid Request error (id null) and the
   * connection is closed; the calls still waiting then fail with an error
   * whose `cause` is the `LimitOverrunError`. No message is ever buffered
   * beyond this size.
   *
   * @default {1048576}
   */
  maxMessageBytes?: number;
  /**
   * The longest batch served, in items. A longer one is answered with one
   * -32600 Invalid Request error (id null) naming the limit, and none of
   * its calls run; the connection goes on. The peer's responses to this
   * side's calls do not count: the answer to a `batch()` longer than this
   * is taken whole.
   *
   * @default {1000}
   */
  maxBatch?: number;
  /**
   * The most methods running at once on this connection, batch items
   * included. When they are all taken, further calls wait: the rest of a
   * batch in line, later messages in an inbox of at most about
   * `maxMessageBytes` (then the transport stops reading until calls
   * finish). The peer's responses to this side's calls are still taken
   * meanwhile, so methods that call the peer back do not lock up.
   *
   * @default {100}
   */
  maxConcurrentCalls?: number;
  /**
   * The default timeout of `call()` and `batch()`, in seconds; `null` for
   * none.
   *
   * @default {null}
   */
  timeout?: number | null;
  /**
   * The loop of the futures `call()` returns, of the timers, of the tasks
   * running coroutine methods, and whose exception handler hears about
   * stray responses.
   *
   * @default {the running loop, looked up when first needed}
   */
  loop?: SchedulingLoop;
}

/** Options for `JsonRpcProtocol.call()` and `JsonRpcProtocol.batch()`. */
export interface JsonRpcCallOptions {
  /**
   * How long to wait for the response, in seconds; `null` for ever. When
   * it runs out the future fails with a `TimeoutError` and the call is
   * forgotten: a response that comes later is ignored.
   *
   * @default {the protocol's timeout option}
   */
  timeout?: number | null;
}

/** One call of a `JsonRpcProtocol.batch()`. */
export interface JsonRpcBatchCall {
  /** The method to call. */
  method: string;
  /**
   * The params, an array or an object.
   *
   * @default {undefined (none sent)}
   */
  params?: JsonRpcParams;
  /**
   * Send it as a notification: no id, no response; its slot in the
   * results is `undefined`.
   *
   * @default {false}
   */
  notify?: boolean;
}

/** A call (or a batch of calls) waiting for its responses. */
interface Outgoing {
  readonly future: Future<unknown>;
  /** Names the call in errors: `call "add" (id 3)`. */
  readonly what: string;
  readonly ids: readonly number[];
  timer: TimerHandle | null;
  /** For a batch: each id's index in `results`. */
  readonly slots: Map<number, number> | null;
  readonly results: unknown[] | null;
  left: number;
  /** Whether any response for it came (or an error with id null). */
  answered: boolean;
}

/** The protocol that frames bytes into messages, and how to send one. */
interface Framer {
  readonly protocol: Protocol;
  /** Sends one message's JSON text, encoded and framed. */
  send(text: string): void;
}

/** Serializes params to JSON text, or `undefined` for none. */
function serializeParams(params: unknown, what: string): string | undefined {
  if (params === undefined) return undefined;
  if (typeof params !== "object" || params === null) {
    throw new TypeError(
      `Cannot ${what}: params must be an array or an object, received ${
        describe(params)
      }`,
    );
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(params);
  } catch (e) {
    throw new TypeError(
      `Cannot ${what}: params must be serializable as JSON, received ${
        e instanceof Error ? e.message : String(e)
      }`,
    );
  }
  if (text === undefined || (text[0] !== "[" && text[0] !== "{")) {
    throw new TypeError(
      `Cannot ${what}: params must serialize to a JSON array or object, received ${
        text === undefined ? "undefined" : text.slice(0, 40)
      }`,
    );
  }
  return text;
}

function checkMethod(method: unknown, what: string): string {
  if (typeof method !== "string") {
    throw new TypeError(
      `Cannot ${what}: method must be a string, received ${describe(method)}`,
    );
  }
  return method;
}

function checkCount(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot make a JsonRpcProtocol: ${name} must be a whole number >= 1, received ${
        formatReceived(value)
      }`,
    );
  }
  return value;
}

function checkTimeout(value: unknown, what: string): number | null {
  if (value === undefined || value === null || value === Infinity) return null;
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(
      `Cannot ${what}: timeout must be a number of seconds or null, received ${
        formatReceived(value)
      }`,
    );
  }
  return value;
}

function requestText(method: string, params: string | undefined, id?: number) {
  return `{"jsonrpc":"2.0","method":${JSON.stringify(method)}${
    params === undefined ? "" : `,"params":${params}`
  }${id === undefined ? "" : `,"id":${id}`}}`;
}

/** The first item of `items` (that passes `test`), in insertion order. */
function first<T>(
  items: Iterable<T>,
  test?: (item: T) => boolean,
): T | undefined {
  for (const item of items) if (test === undefined || test(item)) return item;
  return undefined;
}

function isErrorValue(x: unknown): boolean {
  return x !== undefined && x !== null;
}

/** Reads a response object into a result, or the error to fail with. */
function readResponse(
  response: Record<string, unknown>,
): { ok: true; value: unknown } | { ok: false; value: JsonRpcError } {
  const error = response.error;
  if (isErrorValue(error)) {
    if (
      typeof error === "object" && error !== null &&
      Number.isSafeInteger((error as Record<string, unknown>).code)
    ) {
      const e = error as Record<string, unknown>;
      return {
        ok: false,
        value: new JsonRpcError(
          e.code as number,
          typeof e.message === "string" ? e.message : String(e.message ?? ""),
          Object.hasOwn(e, "data") ? e.data : undefined,
        ),
      };
    }
    return {
      ok: false,
      value: new JsonRpcError(
        JsonRpcError.INTERNAL_ERROR,
        "Invalid response: the error member is not an object with an integer code",
        error,
      ),
    };
  }
  if (Object.hasOwn(response, "result")) {
    return { ok: true, value: response.result };
  }
  return {
    ok: false,
    value: new JsonRpcError(
      JsonRpcError.INTERNAL_ERROR,
      "Invalid response: it has neither a result nor an error",
    ),
  };
}

/**
 * A JSON-RPC 2.0 endpoint over a stream transport. Both ends of a
 * connection are peers: each serves the `methods` it was given and may call
 * the other's at the same time, so a server can call its client back.
 *
 * Serving: requests are answered as their methods finish (not necessarily
 * in order; ids tell the answers apart), notifications get no answer, and a
 * batch (a JSON array) gets one array of answers in the batch's order, sent
 * when all of its calls are done — or nothing when it held only
 * notifications; an empty array is answered with one -32600 error. Errors
 * follow the specification: -32700 for a message that is not JSON,
 * -32600 for one that is not a request, -32601 for an unknown method, the
 * code of a `JsonRpcError` a method throws (say -32602 for bad params), and
 * -32603 with the message for anything else a method throws. A method that
 * fails on a notification is reported to the loop's exception handler,
 * since no answer can say so.
 *
 * Limits, so that a hostile or slow peer costs a bounded amount: a message
 * over `maxMessageBytes` is answered with -32600 and closes the connection;
 * a batch over `maxBatch` items is answered with one -32600 error and not
 * run; at most `maxConcurrentCalls` methods run at once, later calls wait
 * (reading stops once about `maxMessageBytes` of them wait); and while
 * the transport's write buffer is over its high-water mark (`pauseWriting`)
 * no new call starts and reading stops, so replies held for a peer that
 * does not read stay near the high-water mark. The peer's responses to
 * this side's calls are taken meanwhile.
 *
 * Logging: what the peer causes (responses matching no call, notifications
 * whose method fails) is counted in `strayResponses` and
 * `failedNotifications`; only the first of each kind per connection goes to
 * the loop's exception handler, shortened to one line when it would be
 * longer than what the peer has sent, and one summary line at the end
 * counts the rest. A peer never makes this side log more than it sent.
 *
 * Calling: `call(method, params)` returns a `Future` of the result, which
 * fails with a `JsonRpcError` (its `code`, `message` and `data`) when the
 * peer answers with an error, with a `TimeoutError` after the timeout, and
 * with a `Deno.errors.ConnectionReset` naming the method when the
 * connection is lost first. Cancelling the future forgets the call.
 * `notify()` sends a notification; `batch()` sends several calls in one
 * array. Ids are numbers, unique on the connection. A peer that cannot
 * parse or accept a whole message answers with one error whose id is null
 * (a batch over its `maxBatch`, say); since it does so as soon as it reads
 * the message, that error fails the oldest batch still waiting for any
 * answer, or with no such batch the one call waiting, if only one is (see
 * `batch()`). A response that comes after its call timed out or was
 * cancelled is ignored, only counted in `lateResponses`; one for an id
 * this side never sent, or an error with id null that fits no waiting
 * call, is counted and reported as above. Neither ever breaks the
 * connection.
 *
 * The protocol runs unchanged over TCP, a pipe, `transportPair()` or an
 * `HttpTransport` (PEP 3153's stack: TCP transport, HTTP protocol,
 * HTTP-based transport, JSON-RPC protocol, application); only the framing
 * (`framing` option) depends on the transport, and one thing besides:
 * over a transport that names a URL (`getExtraInfo("url")`: this side is
 * an HTTP client, reading the server's response bodies), a body that is no
 * JSON-RPC answer (not JSON, or not a response) is not answered, since
 * the reply would be POSTed to the server as a new request; its -32700 or
 * -32600 error is taken as the server's answer instead, with the id the
 * message names, else id null (see `batch()`), and an empty array (what
 * some servers answer a batch of notifications with) is ignored. When the
 * peer sends its end of stream, the answers still being computed are
 * written before the connection closes.
 *
 * PEP 3153: the JSON-RPC protocol of its stacking example.
 *
 * @example Calling a method over an in-memory connection
 * ```ts
 * import { JsonRpcProtocol } from "@tulip/tulip/jsonrpc";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const server = new JsonRpcProtocol({
 *   add: ([a, b]: number[]) => a + b,
 * }, { loop });
 * const client = new JsonRpcProtocol({}, { loop });
 * const [, clientTransport] = transportPair(server, client, { loop });
 * const sum = await loop.runUntilComplete(loop.createTask(async () => {
 *   return await client.call("add", [2, 3]);
 * }));
 * assertEquals(sum, 5);
 * clientTransport.close();
 * await loop.advance(0);
 * loop.close();
 * ```
 *
 * @example Errors carry the JSON-RPC code
 * ```ts
 * import { JsonRpcError, JsonRpcProtocol } from "@tulip/tulip/jsonrpc";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const methods = {
 *   sqrt([x]: number[]) {
 *     if (x < 0) throw new JsonRpcError(JsonRpcError.INVALID_PARAMS, "Negative number", x);
 *     return Math.sqrt(x);
 *   },
 * };
 * // Both ends must frame alike; here with a 4-byte length prefix.
 * const server = new JsonRpcProtocol(methods, { loop, framing: "length" });
 * const client = new JsonRpcProtocol({}, { loop, framing: "length" });
 * transportPair(server, client, { loop });
 * await loop.advance(0);
 * const bad = await assertRejects(() => loop.runUntilComplete(client.call("sqrt", [-4])), JsonRpcError);
 * assertEquals([bad.code, bad.data], [-32602, -4]);
 * const missing = await assertRejects(() => loop.runUntilComplete(client.call("cbrt", [8])), JsonRpcError);
 * assertEquals(missing.code, JsonRpcError.METHOD_NOT_FOUND);
 * client.transport!.close();
 * await loop.advance(0);
 * loop.close();
 * ```
 *
 * @example Calls both ways, and a batch
 * ```ts
 * import { JsonRpcError, type JsonRpcContext, JsonRpcProtocol } from "@tulip/tulip/jsonrpc";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals, assertInstanceOf } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const server = new JsonRpcProtocol({
 *   // The server asks the client back on the same connection.
 *   greet: async (_params, ctx: JsonRpcContext) => `Hello, ${await ctx.protocol!.call("name")}`,
 *   double: ([x]: number[]) => 2 * x,
 * }, { loop });
 * const client = new JsonRpcProtocol({ name: () => "Ada" }, { loop });
 * transportPair(server, client, { loop, chunkSize: 3 });
 * await loop.advance(0);
 * assertEquals(await loop.runUntilComplete(client.call("greet")), "Hello, Ada");
 * const results = await loop.runUntilComplete(client.batch([
 *   { method: "double", params: [21] },
 *   { method: "log", params: ["hi"], notify: true },
 *   { method: "triple", params: [1] },
 * ]));
 * assertEquals(results.slice(0, 2), [42, undefined]);
 * assertInstanceOf(results[2], JsonRpcError);
 * client.transport!.close();
 * await loop.advance(0);
 * loop.close();
 * ```
 *
 * @example Limits: a batch over maxBatch gets one error, which fails it
 * ```ts
 * import { JsonRpcError, JsonRpcProtocol } from "@tulip/tulip/jsonrpc";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const server = new JsonRpcProtocol(
 *   { ping: () => "pong" },
 *   { loop, maxBatch: 2, maxConcurrentCalls: 10 },
 * );
 * const client = new JsonRpcProtocol({}, { loop });
 * transportPair(server, client, { loop });
 * await loop.advance(0);
 * const ok = await loop.runUntilComplete(client.batch([{ method: "ping" }, { method: "ping" }]));
 * assertEquals(ok, ["pong", "pong"]);
 * // Three calls: the server answers with one error (id null) naming no
 * // call, and the batch fails with it at once (no timeout needed).
 * const over = client.batch([{ method: "ping" }, { method: "ping" }, { method: "ping" }]);
 * const error = await assertRejects(() => loop.runUntilComplete(over), JsonRpcError);
 * assertEquals(error.code, JsonRpcError.INVALID_REQUEST);
 * assertEquals(client.strayResponses, 0);
 * client.transport!.close();
 * await loop.advance(0);
 * loop.close();
 * ```
 */
export class JsonRpcProtocol extends Protocol {
  #framing: JsonRpcFraming;
  /** The longest message accepted, in bytes. */
  readonly maxMessageBytes: number;
  /** The longest batch served, in items. */
  readonly maxBatch: number;
  /** The most methods running at once on this connection. */
  readonly maxConcurrentCalls: number;

  readonly #methods: MethodTable;
  readonly #timeout: number | null;
  #framer: Framer;
  /** Whether `framing` was chosen by the `framing` option. */
  readonly #framingGiven: boolean;

  /**
   * How messages are framed on the transport: the `framing` option, else
   * `"newline"`, or `"raw"` while the transport `connectionMade()` gave
   * names a URL (an `HttpTransport`).
   *
   * @returns The framing.
   */
  get framing(): JsonRpcFraming {
    return this.#framing;
  }
  readonly #front: Front;
  readonly #abort = new AbortController();
  #loop: SchedulingLoop | null;
  #pool: EncodePool | null = null;
  #transport: Transport | null = null;
  #connected = false;
  #nextId = 1;
  readonly #pending = new Map<number, Outgoing>();
  // Calls and batches waiting with no response yet, oldest first: what an
  // error with id null (a whole message the peer rejected) can answer.
  readonly #waitingCalls = new Set<Outgoing>();
  readonly #waitingBatches = new Set<Outgoing>();
  // Calls and batches given up on with no response yet, oldest first (the
  // last GIVEN_UP_KEPT of them).
  readonly #givenUp = new Set<Outgoing>();
  // Messages being served (their methods still running).
  #serving = 0;
  // EOF came while serving: close once the last answer is written.
  #closeWhenIdle = false;
  // Why this side closed the connection (an over-long message).
  #closeError: Error | undefined = undefined;
  readonly #limiter: CallLimiter;
  // Messages received while calls could not start (all slots taken, or
  // replies backed up), in order, with what each counts in bytes.
  readonly #inbox = new MessageQueue();
  #inboxBytes = 0;
  #draining = false;
  // Replies back up: the transport is over its high-water mark.
  #writePaused = false;
  // Whether this side asked the transport to stop reading.
  #readPaused = false;
  readonly #log: PeerLog;
  #lateResponses = 0;
  // The transport names a URL: this side is an HTTP client, and what it
  // receives are the server's response bodies.
  #overUrl = false;

  /**
   * Makes a JSON-RPC endpoint.
   *
   * @param methods The methods this side serves, by name (an object, or a
   * `Map` from name to function); none by default.
   * @param options `framing`, `maxMessageBytes`, `maxBatch`,
   * `maxConcurrentCalls`, `timeout` and `loop`.
   * @throws {TypeError} When `methods` or `options` is not an object, its
   * `loop` no event loop, or `timeout` not a number.
   * @throws {RangeError} When `framing` is unknown, `maxMessageBytes` is
   * not a whole number from 1 to 2^32 - 1, or `maxBatch` or
   * `maxConcurrentCalls` is not a whole number >= 1.
   */
  constructor(
    methods?: JsonRpcMethods | Map<string, JsonRpcMethod>,
    options?: JsonRpcProtocolOptions,
  ) {
    super();
    if (
      methods !== undefined &&
      (typeof methods !== "object" || methods === null ||
        Array.isArray(methods))
    ) {
      throw new TypeError(
        `Cannot make a JsonRpcProtocol: methods must be an object, received ${
          describe(methods)
        }`,
      );
    }
    checkOptions(
      options,
      "make a JsonRpcProtocol",
      "{ framing, maxBatch, timeout, … }",
    );
    this.#methods = methods ?? {};
    const framing = options?.framing ?? "newline";
    if (!(FRAMINGS as readonly unknown[]).includes(framing)) {
      throw new RangeError(
        `Cannot make a JsonRpcProtocol: framing must be "newline", "length" or "raw", received ${
          formatReceived(framing)
        }`,
      );
    }
    this.#framing = framing;
    this.#framingGiven = options?.framing !== undefined;
    const max = options?.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (
      typeof max !== "number" || !Number.isSafeInteger(max) || max < 1 ||
      max > MAX_MESSAGE_BYTES
    ) {
      throw new RangeError(
        `Cannot make a JsonRpcProtocol: maxMessageBytes must be a whole number from 1 to ${MAX_MESSAGE_BYTES}, received ${
          formatReceived(max)
        }`,
      );
    }
    this.maxMessageBytes = max;
    this.maxBatch = checkCount(
      options?.maxBatch,
      DEFAULT_MAX_BATCH,
      "maxBatch",
    );
    this.maxConcurrentCalls = checkCount(
      options?.maxConcurrentCalls,
      DEFAULT_MAX_CONCURRENT_CALLS,
      "maxConcurrentCalls",
    );
    this.#limiter = new CallLimiter(
      this.maxConcurrentCalls,
      () => this.#drain(),
    );
    this.#log = new PeerLog({ loop: options?.loop });
    this.#timeout = checkTimeout(
      options?.timeout,
      "make a JsonRpcProtocol",
    );
    this.#loop = options?.loop ?? null;
    this.#framer = this.#makeFramer();
    this.#front = {
      context: (method, id) => ({
        method,
        id,
        signal: this.#abort.signal,
        protocol: this,
      }),
      loop: () => this.#loop ?? getRunningLoop(),
      onResponse: (response, inArray) =>
        this.#responseReceived(response, inArray),
      awaits: (id) => typeof id === "number" && this.#pending.has(id),
      onInvalid: (code, message, id, inArray) =>
        this.#overUrl &&
        this.#invalidAnswer(new JsonRpcError(code, message), id, inArray),
      onNotificationError: (error, context) =>
        this.#log.report(FAILED_NOTIFICATION, {
          message: `JSON-RPC notification ${
            JSON.stringify(context.method.slice(0, 100))
          } failed`,
          exception: error,
          protocol: this,
          transport: this.#transport,
        }),
      maxBatch: this.maxBatch,
      limiter: this.#limiter,
    };
  }

  /**
   * The connection's transport, or `null` before `connectionMade` and
   * after `connectionLost`.
   */
  get transport(): Transport | null {
    return this.#transport;
  }

  /**
   * How many calls are waiting for a response (each call of a batch
   * counts).
   */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * How many responses the peer sent that match no call this side made
   * (unknown ids, errors with id null that fit no waiting call or batch —
   * see `batch()` — and, over a transport that names a URL, such bodies
   * that are no JSON-RPC answer). The first is reported to the loop's
   * exception handler; the rest are only counted (see `JsonRpcProtocol`'s
   * note on logging).
   */
  get strayResponses(): number {
    return this.#log.count(STRAY_RESPONSE);
  }

  /**
   * How many responses the peer sent for calls this side no longer waits
   * for: calls that timed out, were cancelled, or were answered already
   * (including an error with id null rejecting a batch given up on).
   * They are dropped without a report and without closing anything (they
   * are not `strayResponses`).
   *
   * @example A call that timed out, answered late
   * ```ts
   * import { JsonRpcProtocol } from "@tulip/tulip/jsonrpc";
   * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
   * import { sleep } from "@tulip/tulip";
   * import { assertEquals, assertRejects } from "@std/assert";
   *
   * const loop = new VirtualTimeLoop();
   * const server = new JsonRpcProtocol({ slow: () => sleep(2, "done") }, { loop });
   * const client = new JsonRpcProtocol({}, { loop });
   * transportPair(server, client, { loop });
   * await loop.advance(0);
   * await assertRejects(() => loop.runUntilComplete(client.call("slow", [], { timeout: 1 })));
   * await loop.advance(2);
   * assertEquals([client.lateResponses, client.strayResponses], [1, 0]);
   * client.transport!.close();
   * await loop.advance(0);
   * loop.close();
   * ```
   */
  get lateResponses(): number {
    return this.#lateResponses;
  }

  /**
   * How many notifications from the peer had a method that failed. The
   * first is reported to the loop's exception handler; the rest are only
   * counted.
   */
  get failedNotifications(): number {
    return this.#log.count(FAILED_NOTIFICATION);
  }

  /**
   * Keeps the transport and starts framing.
   *
   * @param transport The connection's transport.
   */
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    this.#connected = true;
    this.#loop ??= getRunningLoop();
    this.#overUrl = typeof transport.getExtraInfo?.("url") === "string";
    if (!this.#framingGiven) {
      // A transport that names a URL carries messages (an HttpTransport's
      // response bodies): each is one JSON text, with or without a newline
      // after it, pretty-printed or not, so it is cut by its syntax.
      const framing = this.#overUrl ? "raw" : "newline";
      if (framing !== this.#framing) {
        this.#framing = framing;
        this.#framer = this.#makeFramer();
      }
    }
    this.#framer.protocol.connectionMade(transport);
  }

  /**
   * Frames the bytes into messages, and serves or matches each one.
   *
   * @param data The bytes received.
   */
  override dataReceived(data: Uint8Array): void {
    this.#log.received(data.length);
    this.#framer.protocol.dataReceived(data);
  }

  /**
   * The peer will send nothing more: serves a last line it left without
   * its newline (`"newline"` framing), then closes the connection, or —
   * while answers are still being computed — keeps it open until they are
   * written, then closes it.
   *
   * @returns `true` while answers are still to be written.
   */
  override eofReceived(): boolean {
    const framer = this.#framer.protocol;
    // A last line ended by the EOF instead of a newline is still a
    // message, as asyncio's readline() returns it.
    if (framer instanceof ChunkProtocol && framer.bufferedBytes > 0) {
      framer.dataReceived(NEWLINE);
    }
    framer.eofReceived();
    if (this.#serving === 0 && this.#inbox.length === 0) {
      return false;
    }
    this.#closeWhenIdle = true;
    return true;
  }

  /**
   * The peer is not reading our replies fast enough: start no new call and
   * stop reading its requests until the write buffer drains, so that
   * neither buffer grows without bound.
   */
  override pauseWriting(): void {
    this.#writePaused = true;
    this.#updateReading();
  }

  /** The write buffer drained: take requests again. */
  override resumeWriting(): void {
    this.#writePaused = false;
    this.#drain();
  }

  /**
   * Fails every call still waiting with a `Deno.errors.ConnectionReset`
   * naming its method (its `cause` is `exc`, or the `LimitOverrunError`
   * when an over-long message made this side close), and aborts the
   * `signal` the running methods were given.
   *
   * @param exc The error that ended the connection, if any.
   */
  override connectionLost(exc?: Error): void {
    this.#framer.protocol.connectionLost(exc);
    this.#transport = null;
    this.#inbox.clear();
    this.#inboxBytes = 0;
    this.#limiter.clear();
    this.#log.close("JSON-RPC connection", { protocol: this });
    const cause = exc ?? this.#closeError;
    const ops = new Set(this.#pending.values());
    this.#pending.clear();
    this.#waitingCalls.clear();
    this.#waitingBatches.clear();
    this.#givenUp.clear();
    for (const op of ops) {
      op.timer?.cancel();
      if (op.future.done()) continue;
      const error = connectionReset(
        `Cannot finish ${op.what}: the connection was lost`,
      );
      if (cause !== undefined) error.cause = cause;
      op.future.setException(error);
    }
    this.#abort.abort(
      cause ?? connectionReset("The JSON-RPC connection was closed"),
    );
  }

  /**
   * Calls `method` on the peer and returns a future of its result.
   *
   * The future fails with a `JsonRpcError` when the peer answers with an
   * error (-32603 "Invalid response" when its answer, a message with the
   * call's id and neither a method nor params, has neither a result nor a
   * well-formed error), a `TimeoutError` when no answer comes within
   * `timeout`, and a `Deno.errors.ConnectionReset` when the connection is
   * lost first.
   * Cancelling it forgets the call (a later answer is ignored). An error
   * with id null (the peer could not parse a message) fails the call only
   * when this call is the only one waiting and no batch, waiting or given
   * up on, is unanswered (see `batch()`); with several calls waiting,
   * which one it answers is unknown, and it is counted in
   * `strayResponses`.
   *
   * @typeParam T The result's type (not checked: it is whatever the peer
   * sent).
   * @param method The method's name.
   * @param params Its params, an array or an object; none if omitted.
   * @param options `timeout`, in seconds.
   * @returns A future of the result.
   * @throws {TypeError} When `method` is not a string, `params` is not an
   * array or object serializable as JSON, or `timeout` is not a number.
   * @throws {InvalidStateError} When the protocol is not connected, or the
   * transport is closing.
   */
  call<T = unknown>(
    method: string,
    params?: JsonRpcParams,
    options?: JsonRpcCallOptions,
  ): Future<T> {
    const what = "make a JSON-RPC call";
    checkMethod(method, what);
    const paramsText = serializeParams(params, what);
    const timeout = this.#timeoutOf(options, what);
    const loop = this.#checkWritable(what);
    const id = this.#nextId++;
    const future = new Future<unknown>({ loop });
    const op: Outgoing = {
      future,
      what: `call ${JSON.stringify(method)} (id ${id})`,
      ids: [id],
      timer: null,
      slots: null,
      results: null,
      left: 1,
      answered: false,
    };
    this.#start(op, loop, timeout, requestText(method, paramsText, id));
    return future as Future<T>;
  }

  /**
   * Sends a notification: a call with no id, which the peer never
   * answers.
   *
   * @param method The method's name.
   * @param params Its params, an array or an object; none if omitted.
   * @throws {TypeError} When `method` is not a string or `params` is not
   * an array or object serializable as JSON.
   * @throws {InvalidStateError} When the protocol is not connected, or the
   * transport is closing.
   */
  notify(method: string, params?: JsonRpcParams): void {
    const what = "send a JSON-RPC notification";
    checkMethod(method, what);
    const paramsText = serializeParams(params, what);
    this.#checkWritable(what);
    this.#send(requestText(method, paramsText));
  }

  /**
   * Sends several calls (and notifications) in one JSON-RPC batch, and
   * returns a future of their results, in the order of `calls`.
   *
   * Each slot holds the call's result, or the `JsonRpcError` the peer
   * answered it with (check with `instanceof JsonRpcError`; a JSON result
   * is never an `Error`), or `undefined` for a notification. The future
   * fails as a whole with a `TimeoutError` (the batch took longer than
   * `timeout`), a `Deno.errors.ConnectionReset`, or a `JsonRpcError` with
   * the peer's `code`, `message` and `data` when the peer rejects the whole
   * batch with one error whose id is null instead of an array (JSON-RPC
   * 2.0, section 6: a batch it cannot parse or accept, such as one over its
   * `maxBatch`). Such an error names no call, so it is given to the oldest
   * batch still waiting for any answer: over one connection a server
   * rejects a batch as soon as it reads it, before it answers anything sent
   * later. (A batch sent earlier whose methods are still running when a
   * later one is rejected would take the error instead; its own answer is
   * then counted in `lateResponses`.) With no batch waiting, an error for
   * one that timed out or was cancelled is counted in `lateResponses`. A
   * batch of notifications only is done once sent; should the peer reject
   * one, its error is taken for a rejection of the oldest batch waiting.
   *
   * @param calls The calls: `{ method, params?, notify? }`.
   * @param options `timeout`, in seconds, for the whole batch.
   * @returns A future of the results, in order.
   * @throws {TypeError} When `calls` is not an array of calls, a method is
   * not a string, params are not an array or object serializable as JSON,
   * or `timeout` is not a number.
   * @throws {RangeError} When `calls` is empty (the specification makes an
   * empty batch an invalid request).
   * @throws {InvalidStateError} When the protocol is not connected, or the
   * transport is closing.
   */
  batch(
    calls: readonly JsonRpcBatchCall[],
    options?: JsonRpcCallOptions,
  ): Future<unknown[]> {
    const what = "send a JSON-RPC batch";
    if (!Array.isArray(calls)) {
      throw new TypeError(
        `Cannot ${what}: calls must be an array, received ${describe(calls)}`,
      );
    }
    if (calls.length === 0) {
      throw new RangeError(
        `Cannot ${what}: calls must not be empty, received 0 calls`,
      );
    }
    const prepared = calls.map((c: unknown) => {
      if (typeof c !== "object" || c === null) {
        throw new TypeError(
          `Cannot ${what}: each call must be an object, received ${
            describe(c)
          }`,
        );
      }
      const call = c as JsonRpcBatchCall;
      return {
        method: checkMethod(call.method, what),
        params: serializeParams(call.params, what),
        notify: call.notify === true,
      };
    });
    const timeout = this.#timeoutOf(options, what);
    const loop = this.#checkWritable(what);
    const future = new Future<unknown[]>({ loop });
    const results: unknown[] = new Array(calls.length).fill(undefined);
    const slots = new Map<number, number>();
    const ids: number[] = [];
    const parts = prepared.map(({ method, params, notify }, i) => {
      if (notify) return requestText(method, params);
      const id = this.#nextId++;
      ids.push(id);
      slots.set(id, i);
      return requestText(method, params, id);
    });
    const text = `[${parts.join(",")}]`;
    if (ids.length === 0) {
      this.#send(text);
      future.setResult(results);
      return future;
    }
    const names = prepared.slice(0, 5).map((c) => JSON.stringify(c.method));
    if (prepared.length > 5) names.push("…");
    const op: Outgoing = {
      future: future as Future<unknown>,
      what: `batch of ${calls.length} calls (${names.join(", ")})`,
      ids,
      timer: null,
      slots,
      results,
      left: ids.length,
      answered: false,
    };
    this.#start(op, loop, timeout, text);
    return future;
  }

  #makeFramer(): Framer {
    const received = (data: Uint8Array) => this.#messageReceived(data);
    const overLong = (error: LimitOverrunError) => this.#overLong(error);
    const max = this.maxMessageBytes;
    if (this.#framing === "length") {
      const p = new Int32StringReceiver(received, {
        maxLength: max,
        onLengthExceeded: overLong,
      });
      return {
        protocol: p,
        send: (text) => p.sendString(encoder.encode(text)),
      };
    }
    if (this.#framing === "raw") {
      const p = new JsonSplitter(received, max, overLong);
      return {
        protocol: p,
        send: (text) => this.#transport!.write(this.#encode(text, false)),
      };
    }
    const tooLong = (size: number) =>
      new LimitOverrunError(
        `Cannot receive a JSON message: it is longer than maxMessageBytes=${max}, received at least ${size} bytes`,
        size,
      );
    // One more byte than the limit, for the `\r` of a `\r\n` line ending.
    const p = new ChunkProtocol("\n", (line) => {
      const end = line.length > 0 && line[line.length - 1] === CR
        ? line.length - 1
        : line.length;
      if (end > max) return overLong(tooLong(end));
      for (let i = 0; i < end; i++) {
        const c = line[i];
        if (c !== 0x20 && c !== 0x09 && c !== 0x0d) {
          return received(line.subarray(0, end));
        }
      }
      // A blank line: skipped.
    }, {
      maxLength: max + 1,
      onLengthExceeded: () => overLong(tooLong(max + 2)),
    });
    // The text and its newline encoded together and written at once: no
    // list for the transport to gather into a second copy.
    return {
      protocol: p,
      send: (text) => this.#transport!.write(this.#encode(text, true)),
    };
  }

  #messageReceived(data: Uint8Array): void {
    const parsed = parseMessage(data);
    if (this.#inbox.length === 0 && !this.#blocked()) {
      return this.#serve(parsed);
    }
    // Responses run no method and send nothing: take them at once, so that
    // methods waiting on the peer's answers can finish and free slots.
    if (parsed.ok && isResponseOnly(parsed.value, this.#front)) {
      return this.#serve(parsed);
    }
    // The bytes wait, not the parsed value, which can take several times
    // their size; they are parsed again when served.
    this.#inbox.push(data);
    this.#inboxBytes += data.length + INBOX_ENTRY_BYTES;
    this.#updateReading();
  }

  // Whether a message must wait in the inbox instead of being served.
  #blocked(): boolean {
    return this.#writePaused || this.#limiter.full;
  }

  #serve(parsed: Parsed): void {
    if (!parsed.ok) {
      const text = refusal(
        this.#front,
        JsonRpcError.PARSE_ERROR,
        parsed.message,
        null,
      );
      if (text !== undefined) this.#sendIfOpen(text);
      return this.#closeIfDone();
    }
    if (
      this.#overUrl && Array.isArray(parsed.value) && parsed.value.length === 0
    ) {
      // A server's answer to a batch of notifications only, where JSON-RPC
      // 2.0 (section 6) has it send nothing: it answers no call.
      return this.#closeIfDone();
    }
    this.#serving++;
    dispatch(this.#methods, parsed.value, this.#front, (text) => {
      this.#serving--;
      if (text !== undefined) this.#sendIfOpen(text);
      this.#closeIfDone();
    });
  }

  // Serves what waits in the inbox while calls can start, then reads again
  // if nothing holds reading back.
  #drain(): void {
    if (this.#draining) return;
    // A closing transport sends no reply: what is held is not served
    // (resumeWriting() still comes as a close() flushes).
    if (this.#transport?.isClosing() === true) return;
    this.#draining = true;
    try {
      while (this.#inbox.length > 0 && !this.#blocked()) {
        const data = this.#inbox.shift()!;
        this.#inboxBytes -= data.length + INBOX_ENTRY_BYTES;
        this.#serve(parseMessage(data));
      }
    } finally {
      this.#draining = false;
    }
    this.#updateReading();
    this.#closeIfDone();
  }

  // Reads while replies flow and the inbox holds less than one message's
  // worth; asks the transport only when that changes.
  #updateReading(): void {
    const transport = this.#transport;
    if (transport === null || transport.isClosing()) return;
    const pause = this.#writePaused ||
      this.#inboxBytes >= this.maxMessageBytes;
    if (pause === this.#readPaused) return;
    this.#readPaused = pause;
    if (pause) transport.pauseReading();
    else transport.resumeReading();
  }

  // After the peer's EOF: closes once everything received is answered.
  #closeIfDone(): void {
    if (
      this.#closeWhenIdle && this.#serving === 0 &&
      this.#inbox.length === 0
    ) {
      this.#transport?.close();
    }
  }

  // An over-long message: say so to the peer, then close.
  #overLong(error: LimitOverrunError): void {
    // The framers word it in their own terms (maxLength): restate it.
    this.#closeError = new LimitOverrunError(
      `Cannot receive a JSON-RPC message: it is longer than maxMessageBytes=${this.maxMessageBytes}`,
      error.consumed,
    );
    const text = refusal(
      this.#front,
      JsonRpcError.INVALID_REQUEST,
      `Invalid Request: the message is longer than maxMessageBytes=${this.maxMessageBytes}`,
      null,
    );
    if (text !== undefined) this.#sendIfOpen(text);
    this.#transport?.close();
  }

  /**
   * Over a transport that names a URL, a response body that is no
   * JSON-RPC answer (not JSON, not a response) cannot be answered: a reply
   * would be POSTed to the server as a new request, which answers it with
   * another such body. The error is taken as the server's answer instead:
   * to the call whose id the message names, or, naming none, as an error
   * with id null (which a whole body may be, not an item of an array).
   * Returns `true`: nothing is sent.
   */
  #invalidAnswer(error: JsonRpcError, id: unknown, inArray: boolean): boolean {
    if (typeof id === "number") {
      this.#responseReceived({
        jsonrpc: "2.0",
        error: { code: error.code, message: error.message },
        id,
      }, inArray);
    } else if (id !== null || inArray || !this.#rejected(error)) {
      this.#log.report(STRAY_RESPONSE, {
        message: "JSON-RPC server answered with a body that is no response",
        exception: error,
        protocol: this,
        transport: this.#transport,
      });
    }
    return true;
  }

  #responseReceived(
    response: Record<string, unknown>,
    inArray: boolean,
  ): void {
    const id = response.id;
    const op = typeof id === "number" ? this.#pending.get(id) : undefined;
    if (op === undefined) {
      if (
        typeof id === "number" && Number.isSafeInteger(id) && id >= 1 &&
        id < this.#nextId
      ) {
        // Late: its call timed out, was cancelled or is answered.
        this.#lateResponses++;
        if (this.#givenUp.size > 0) this.#forgetGivenUp(id);
        return;
      }
      if (id === null && isErrorValue(response.error)) {
        const read = readResponse(response);
        if (!inArray && !read.ok && this.#rejected(read.value)) return;
        this.#log.report(STRAY_RESPONSE, {
          message: "JSON-RPC peer answered with an error that names no request",
          exception: read.value,
          protocol: this,
          transport: this.#transport,
        });
        return;
      }
      const shown = JSON.stringify(id) ?? "undefined";
      this.#log.report(STRAY_RESPONSE, {
        message: "JSON-RPC peer answered a call that was never made",
        exception: new Error(
          `Cannot match a JSON-RPC response: no call was sent with id ${
            shown.length > 100 ? `${shown.slice(0, 99)}…` : shown
          }`,
        ),
        protocol: this,
        transport: this.#transport,
      });
      return;
    }
    this.#pending.delete(id as number);
    op.answered = true;
    this.#waitingBatches.delete(op);
    if (op.future.done()) {
      this.#lateResponses++;
      return this.#finish(op);
    }
    const read = readResponse(response);
    if (op.slots === null) {
      if (read.ok) op.future.setResult(read.value);
      else op.future.setException(read.value);
      return this.#finish(op);
    }
    op.results![op.slots.get(id as number)!] = read.value;
    if (--op.left === 0) {
      op.future.setResult(op.results);
      this.#finish(op);
    }
  }

  /**
   * The peer answered a whole message with one error whose id is null:
   * it could not parse or accept it (a batch over its limit, say), so it
   * could not tell which calls it held. A server does that as soon as it
   * reads the message, so the error answers the oldest batch still waiting
   * for any answer (an answered one was accepted); failing no batch, the
   * one single call waiting, if it is the only one. An error for a call or
   * batch given up on is late. Returns whether the error was placed.
   */
  #rejected(error: JsonRpcError): boolean {
    let op: Outgoing | undefined = first(this.#waitingBatches);
    if (op === undefined) {
      op = first(this.#givenUp, (o) => o.slots !== null);
    }
    if (op === undefined && this.#waitingCalls.size === 1) {
      op = first(this.#waitingCalls);
    }
    if (op === undefined && this.#waitingCalls.size === 0) {
      op = first(this.#givenUp);
    }
    if (op === undefined) return false;
    op.answered = true;
    this.#givenUp.delete(op);
    this.#waitingBatches.delete(op);
    if (op.future.done()) this.#lateResponses++;
    else op.future.setException(error);
    this.#finish(op);
    return true;
  }

  // A late response for `id`: the call or batch it answers is answered.
  #forgetGivenUp(id: number): void {
    for (const op of this.#givenUp) {
      if (op.slots === null ? op.ids[0] === id : op.slots.has(id)) {
        op.answered = true;
        this.#givenUp.delete(op);
        return;
      }
    }
  }

  /** `text` as bytes to send, in a slab shared with the loop's connections. */
  #encode(text: string, newline: boolean): Uint8Array {
    this.#pool ??= EncodePool.of(this.#loop ?? getRunningLoop());
    return this.#pool.encode(text, newline);
  }

  #start(
    op: Outgoing,
    loop: SchedulingLoop,
    timeout: number | null,
    text: string,
  ): void {
    for (const id of op.ids) this.#pending.set(id, op);
    (op.slots === null ? this.#waitingCalls : this.#waitingBatches).add(op);
    try {
      this.#send(text);
    } catch (e) {
      this.#finish(op);
      throw e;
    }
    if (timeout !== null) {
      op.timer = loop.callLater(timeout, () => {
        op.timer = null;
        if (!op.future.done()) {
          op.future.setException(
            new TimeoutError(
              `Cannot finish ${op.what}: no response within ${timeout} seconds`,
            ),
          );
        }
        this.#finish(op);
      });
    }
    // Cancelling the future forgets the call.
    op.future.addDoneCallback(() => this.#finish(op));
  }

  // Forgets a call: its timer and its ids. One given up on with no answer
  // yet is remembered a while, to count its answer as late.
  #finish(op: Outgoing): void {
    op.timer?.cancel();
    op.timer = null;
    for (const id of op.ids) {
      if (this.#pending.get(id) === op) this.#pending.delete(id);
    }
    this.#waitingCalls.delete(op);
    this.#waitingBatches.delete(op);
    if (!op.answered && op.future.done() && this.#transport !== null) {
      this.#givenUp.add(op);
      if (this.#givenUp.size > GIVEN_UP_KEPT) {
        this.#givenUp.delete(first(this.#givenUp)!);
      }
    }
  }

  #timeoutOf(
    options: JsonRpcCallOptions | undefined,
    what: string,
  ): number | null {
    if (options === undefined || !Object.hasOwn(options, "timeout")) {
      return this.#timeout;
    }
    return checkTimeout(options.timeout, what);
  }

  // Checks that a message can be sent now; returns the loop for futures.
  #checkWritable(what: string): SchedulingLoop {
    if (this.#transport === null) {
      throw new InvalidStateError(
        `Cannot ${what}: the protocol is not connected${
          this.#connected ? " (the connection was lost)" : ""
        }`,
      );
    }
    if (this.#transport.isClosing()) {
      throw new InvalidStateError(`Cannot ${what}: the transport is closing`);
    }
    const loop = this.#loop ?? getRunningLoop();
    if (loop === null) {
      throw new InvalidStateError(
        `Cannot ${what}: no event loop is running, received loop=undefined`,
      );
    }
    this.#loop = loop;
    return loop;
  }

  #send(text: string): void {
    this.#framer.send(text);
  }

  // Answers are dropped once the connection is going away.
  #sendIfOpen(text: string): void {
    if (this.#transport === null || this.#transport.isClosing()) return;
    this.#send(text);
  }
}
