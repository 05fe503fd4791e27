// The one JSON-RPC 2.0 dispatcher behind both front-ends: JsonRpcProtocol
// (any transport) and jsonRpcHttpHandler (web Request/Response). It turns
// one parsed message into the text of its reply; the front-ends only frame
// bytes, give each call its context, and write what comes back.

import { CancelledError } from "../futures/errors.ts";
import { type Future, isFuture } from "../futures/future.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { Coroutine } from "../tasks/task.ts";
import { JsonRpcError } from "./json_rpc_error.ts";
import type {
  JsonRpcContext,
  JsonRpcId,
  JsonRpcMethod,
  JsonRpcMethods,
  JsonRpcParams,
} from "./json_rpc_protocol.ts";

/** What a front-end gives the dispatcher. */
export interface Front {
  /** The context passed to a method. */
  context(method: string, id: JsonRpcId | undefined): JsonRpcContext;
  /** The loop that runs a method returning a coroutine, if there is one. */
  loop(): SchedulingLoop | null;
  /**
   * Takes the responses found among the messages (the peer answering this
   * side's calls), and whether it came as an item of an array (a batch's
   * answer) rather than alone. Without it a response is an invalid
   * request.
   */
  onResponse?(response: Record<string, unknown>, inArray: boolean): void;
  /**
   * Whether `id` is that of a call this side waits for: a message without
   * a method or params that carries it goes to `onResponse` even with
   * neither a result nor an error (a sloppy peer's answer, which fails the
   * call), instead of being answered as an invalid request.
   */
  awaits?(id: unknown): boolean;
  /**
   * Takes an error found in a message received (-32700 or -32600: not
   * JSON, or not a request), in place of answering with it; returns
   * `false` to have it answered as usual. `id` is the one the answer
   * would carry, and `inArray` tells an item of a batch.
   */
  onInvalid?(
    code: number,
    message: string,
    id: JsonRpcId | IdText,
    inArray: boolean,
  ): boolean;
  /** Told when a notification's method fails, since no reply can say so. */
  onNotificationError?(error: unknown, context: JsonRpcContext): void;
  /**
   * The longest batch served; a longer one is answered with one -32600
   * error and none of it runs. Responses in it do not count.
   */
  readonly maxBatch: number;
  /** Bounds the methods running at once. */
  readonly limiter: CallLimiter;
}

/**
 * Bounds how many methods run at once. A call that finds every slot taken
 * waits in line (the rest of a batch, at most `maxBatch` of them) and
 * starts, in order, as running ones settle.
 */
export class CallLimiter {
  /** The most methods running at once. */
  readonly max: number;
  #running = 0;
  #waiting: (() => void)[] = [];
  #head = 0;
  #draining = false;
  readonly #onRelease: (() => void) | undefined;

  /**
   * @param max The most methods running at once, >= 1.
   * @param onRelease Called after a method settles and the waiting calls
   * that could start have started.
   */
  constructor(max: number, onRelease?: () => void) {
    this.max = max;
    this.#onRelease = onRelease;
  }

  /** Methods running now. */
  get running(): number {
    return this.#running;
  }

  /** Whether a new call would have to wait. */
  get full(): boolean {
    return this.#running >= this.max || this.#head < this.#waiting.length;
  }

  /** Runs `start` now if a slot is free, else once one is. */
  acquire(start: () => void): void {
    if (this.full) {
      this.#waiting.push(start);
      return;
    }
    this.#running++;
    start();
  }

  /** A method settled: frees its slot and starts the next waiting call. */
  release(): void {
    this.#running--;
    // A loop, not recursion: a waiting call that settles at once releases
    // again while this one drains.
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#head < this.#waiting.length && this.#running < this.max) {
        const start = this.#waiting[this.#head];
        this.#waiting[this.#head++] = NOOP;
        if (this.#head === this.#waiting.length) {
          this.#waiting = [];
          this.#head = 0;
        }
        this.#running++;
        start();
      }
    } finally {
      this.#draining = false;
    }
    this.#onRelease?.();
  }

  /** Forgets the calls waiting (the connection is gone). */
  clear(): void {
    this.#waiting = [];
    this.#head = 0;
  }
}

function NOOP(): void {}

/**
 * Receives the text of the reply to one message, or `undefined` when
 * nothing is to be sent (notifications, responses). Called exactly once,
 * once every call in the message has finished.
 */
export type Reply = (text: string | undefined) => void;

/**
 * A parsed message, or why it did not parse (the -32700 error's message)
 * and the reply that says so.
 */
export type Parsed =
  | { ok: true; value: unknown }
  | { ok: false; message: string; reply: string };

function parseFailure(message: string): Parsed {
  return {
    ok: false,
    message,
    reply: errorReply(JsonRpcError.PARSE_ERROR, message, null),
  };
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** The longest method name quoted back in a "Method not found" message. */
const QUOTE_LIMIT = 100;

/**
 * Parses one message's bytes as UTF-8 JSON; on failure returns the
 * parse-error reply (id null).
 */
export function parseMessage(data: Uint8Array): Parsed {
  let text: string;
  try {
    text = decoder.decode(data);
  } catch {
    return parseFailure("Parse error: the message is not valid UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return parseFailure(
      `Parse error: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  if (!hasInexactId(value)) return { ok: true, value };
  try {
    return { ok: true, value: parseKeepingIds(text) };
  } catch {
    // Too deeply nested for a reviver (it recurses): the ids stay the
    // nearest doubles.
    return { ok: true, value };
  }
}

/**
 * The source text of number ids that a double does not hold exactly (past
 * 2^53, fractions, beyond the double range), by the request object holding
 * them: a reply echoes the id as it was written (JSON-RPC 2.0 §5).
 */
const ID_TEXT = new WeakMap<object, string>();

function isInexactId(x: unknown): boolean {
  return typeof x === "number" && !Number.isSafeInteger(x);
}

/** Whether a message (or an item of a batch) has an inexact number id. */
function hasInexactId(message: unknown): boolean {
  if (!Array.isArray(message)) {
    return isObject(message) && isInexactId(message.id);
  }
  for (const item of message) {
    if (isObject(item) && isInexactId(item.id)) return true;
  }
  return false;
}

/** Parses `text` again, noting the source text of inexact number ids. */
function parseKeepingIds(text: string): unknown {
  return JSON.parse(
    text,
    function (
      this: unknown,
      key: string,
      value: unknown,
      context?: { source?: string },
    ) {
      if (
        key === "id" && isInexactId(value) && context?.source !== undefined
      ) {
        ID_TEXT.set(this as object, context.source);
      }
      return value;
    },
  );
}

/** The JSON text of an id: as the peer wrote it when a double cannot hold it. */
function idText(id: JsonRpcId | IdText): string {
  return id instanceof IdText ? id.text : JSON.stringify(id);
}

/** An id kept as the text it was written as. */
class IdText {
  constructor(readonly text: string) {}
}

/** The text of an error response. Data that cannot be serialized is left out. */
export function errorReply(
  code: number,
  message: string,
  id: JsonRpcId | IdText,
  data?: unknown,
): string {
  let error: string;
  try {
    error = JSON.stringify(
      data === undefined ? { code, message } : { code, message, data },
    );
  } catch {
    error = JSON.stringify({ code, message });
  }
  return `{"jsonrpc":"2.0","error":${error},"id":${idText(id)}}`;
}

/**
 * The reply for an error found in a message received: its error response,
 * or nothing when `front.onInvalid` takes it.
 */
export function refusal(
  front: Front,
  code: number,
  message: string,
  id: JsonRpcId | IdText,
  inArray = false,
): string | undefined {
  return front.onInvalid?.(code, message, id, inArray) === true
    ? undefined
    : errorReply(code, message, id);
}

/**
 * Serves one parsed message: a request, a notification, a response (given
 * to `front.onResponse`) or a batch of them. `reply` is called exactly
 * once, when every call in it has finished: with one response object, an
 * array of them for a batch, or `undefined` when nothing is to be sent.
 * Calls in a batch run concurrently; their replies keep the batch's order.
 */
export function dispatch(
  methods: MethodTable,
  message: unknown,
  front: Front,
  reply: Reply,
): void {
  if (!Array.isArray(message)) {
    return serveOne(methods, message, front, reply, false);
  }
  const n = message.length;
  if (n === 0) {
    return reply(
      refusal(
        front,
        JsonRpcError.INVALID_REQUEST,
        "Invalid Request: the batch is empty",
        null,
      ),
    );
  }
  if (n > front.maxBatch) {
    // Responses (answers to this side's own batch) run nothing and get no
    // reply: only the other items count.
    let served = 0;
    for (const item of message) if (!takenAsResponse(item, front)) served++;
    if (served > front.maxBatch) {
      return reply(
        refusal(
          front,
          JsonRpcError.INVALID_REQUEST,
          `Invalid Request: the batch is longer than maxBatch=${front.maxBatch}, received ${served} items`,
          null,
        ),
      );
    }
  }
  const parts: (string | undefined)[] = new Array(n);
  let left = n;
  for (let i = 0; i < n; i++) {
    serveOne(methods, message[i], front, (text) => {
      parts[i] = text;
      if (--left > 0) return;
      const out = parts.filter((p) => p !== undefined);
      reply(out.length === 0 ? undefined : `[${out.join(",")}]`);
    }, true);
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function isResponse(x: unknown): boolean {
  return isObject(x) && !Object.hasOwn(x, "method") &&
    (Object.hasOwn(x, "result") || Object.hasOwn(x, "error"));
}

/**
 * Whether `front` takes `x` as a response: one with a result or an error,
 * or a message with neither a method nor params carrying the id of a call
 * it waits for. One with params is shaped as a request: the peer's, however
 * broken, answered with -32600 and failing none of this side's calls.
 */
function takenAsResponse(x: unknown, front: Front): boolean {
  return front.onResponse !== undefined &&
    (isResponse(x) ||
      (isObject(x) && Object.hasOwn(x, "id") && !Object.hasOwn(x, "method") &&
        !Object.hasOwn(x, "params") && front.awaits?.(x.id) === true));
}

/**
 * Whether a parsed message holds only responses `front` takes (a
 * response, or a batch of them): serving it runs no method and sends
 * nothing.
 */
export function isResponseOnly(message: unknown, front: Front): boolean {
  if (!Array.isArray(message)) return takenAsResponse(message, front);
  return message.length > 0 &&
    message.every((item) => takenAsResponse(item, front));
}

/** Names the JSON type of a value for an error message. */
export function describe(x: unknown): string {
  return x === null ? "null" : Array.isArray(x) ? "array" : typeof x;
}

function isId(x: unknown): x is JsonRpcId {
  return x === null || typeof x === "string" ||
    (typeof x === "number" && Number.isFinite(x));
}

/**
 * The methods served: an object's functions, or a map's entries (never
 * the map's own `get`, `set`, `clear`…).
 */
export type MethodTable =
  | JsonRpcMethods
  | Map<string, JsonRpcMethod>;

/**
 * Returns the method called `name`: a map's entry, or an object's
 * function, never one of `Object.prototype`'s.
 */
function lookup(methods: MethodTable, name: string): JsonRpcMethod | null {
  let fn: unknown;
  if (methods instanceof Map) fn = methods.get(name);
  else if (!(name in Object.prototype)) {
    fn = (methods as JsonRpcMethods)[name];
  }
  return typeof fn === "function" ? fn as JsonRpcMethod : null;
}

function isGenerator(x: unknown): x is Coroutine<unknown> {
  return typeof x === "object" && x !== null &&
    typeof (x as Generator).next === "function" &&
    typeof (x as Generator).throw === "function" &&
    typeof (x as Generator)[Symbol.iterator] === "function";
}

function isPromiseLike(x: unknown): x is PromiseLike<unknown> {
  return (typeof x === "object" || typeof x === "function") && x !== null &&
    typeof (x as PromiseLike<unknown>).then === "function";
}

function serveOne(
  methods: MethodTable,
  item: unknown,
  front: Front,
  reply: Reply,
  inArray: boolean,
): void {
  if (!isObject(item)) {
    return reply(
      refusal(
        front,
        JsonRpcError.INVALID_REQUEST,
        `Invalid Request: expected an object, received ${describe(item)}`,
        null,
        inArray,
      ),
    );
  }
  const hasId = Object.hasOwn(item, "id");
  if (takenAsResponse(item, front)) {
    front.onResponse!(item, inArray);
    return reply(undefined);
  }
  const written = ID_TEXT.get(item);
  const validId = hasId && (isId(item.id) || written !== undefined);
  const id = validId ? item.id as JsonRpcId : null;
  const replyId = written === undefined ? id : new IdText(written);
  const invalid = (why: string) =>
    reply(
      refusal(
        front,
        JsonRpcError.INVALID_REQUEST,
        `Invalid Request: ${why}`,
        replyId,
        inArray,
      ),
    );
  if (hasId && !validId) {
    return invalid(
      `id must be a string, a number or null, received ${describe(item.id)}`,
    );
  }
  if (item.jsonrpc !== "2.0") {
    return invalid(
      `jsonrpc must be "2.0", received ${
        typeof item.jsonrpc === "string"
          ? JSON.stringify(item.jsonrpc.slice(0, QUOTE_LIMIT))
          : describe(item.jsonrpc)
      }`,
    );
  }
  const name = item.method;
  if (typeof name !== "string") {
    return invalid(`method must be a string, received ${describe(name)}`);
  }
  const params = item.params;
  if (params === null || (params !== undefined && typeof params !== "object")) {
    return invalid(
      `params must be an array or an object, received ${describe(params)}`,
    );
  }
  let fn: JsonRpcMethod | null;
  try {
    fn = lookup(methods, name);
  } catch (e) {
    // A getter of `methods` threw: the call fails with what it threw.
    fn = () => {
      throw e;
    };
  }
  if (fn === null) {
    return reply(
      hasId
        ? errorReply(
          JsonRpcError.METHOD_NOT_FOUND,
          `Method not found: ${JSON.stringify(name.slice(0, QUOTE_LIMIT))}`,
          replyId,
        )
        : undefined,
    );
  }
  front.limiter.acquire(() =>
    call(fn, methods, params, name, hasId, id, replyId, front, reply)
  );
}

/** Runs a method that holds a slot of `front.limiter`. */
function call(
  fn: JsonRpcMethod,
  methods: MethodTable,
  params: unknown,
  name: string,
  hasId: boolean,
  id: JsonRpcId,
  replyId: JsonRpcId | IdText,
  front: Front,
  reply: Reply,
): void {
  const context = front.context(name, hasId ? id : undefined);
  let settled = false;
  const settle = (ok: boolean, value: unknown): void => {
    if (settled) return;
    settled = true;
    let text: string | undefined;
    try {
      if (hasId) {
        text = ok ? resultReply(value, replyId) : errorReplyFor(value, replyId);
      } else if (!ok) front.onNotificationError?.(value, context);
    } finally {
      try {
        reply(text);
      } finally {
        front.limiter.release();
      }
    }
  };
  let result: unknown;
  try {
    result = fn.call(methods, params as JsonRpcParams | undefined, context);
  } catch (e) {
    return settle(false, e);
  }
  adopt(result, front, settle);
}

/** Waits for what a method returned: a value, a future, a coroutine or a promise. */
function adopt(
  value: unknown,
  front: Front,
  settle: (ok: boolean, value: unknown) => void,
): void {
  let kind: "future" | "coroutine" | "promise" | "value";
  try {
    kind = isFuture(value)
      ? "future"
      : isGenerator(value)
      ? "coroutine"
      : isPromiseLike(value)
      ? "promise"
      : "value";
  } catch (e) {
    // Telling them apart reads `then` and `next`, and a getter or a
    // Proxy's trap can throw: the method failed with that.
    return settle(false, e);
  }
  if (kind === "future") {
    const future = value as Future<unknown>;
    future.addDoneCallback((f) => {
      let result: unknown;
      try {
        result = f.result();
      } catch (e) {
        return settle(false, e);
      }
      settle(true, result);
    });
    return;
  }
  if (kind === "coroutine") {
    const loop = front.loop();
    if (loop === null) {
      return settle(
        false,
        new Error("Cannot run a coroutine method: no event loop is running"),
      );
    }
    let task;
    try {
      task = loop.createTask(value as Coroutine<unknown>);
    } catch (e) {
      return settle(false, e);
    }
    return adopt(task, front, settle);
  }
  if (kind === "promise") {
    try {
      (value as PromiseLike<unknown>).then(
        (v) => settle(true, v),
        (e) => settle(false, e),
      );
    } catch (e) {
      settle(false, e);
    }
    return;
  }
  settle(true, value);
}

function resultReply(value: unknown, id: JsonRpcId | IdText): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    const why = messageOf(e);
    return errorReply(
      JsonRpcError.INTERNAL_ERROR,
      `Internal error: cannot serialize the result${why && `: ${why}`}`,
      id,
    );
  }
  // undefined, functions and symbols have no JSON form: they mean null.
  return `{"jsonrpc":"2.0","result":${text ?? "null"},"id":${idText(id)}}`;
}

/**
 * The reply for what a method threw: a `JsonRpcError` as it is; anything
 * else as -32603 with the error's message only (never its stack).
 */
function errorReplyFor(error: unknown, id: JsonRpcId | IdText): string {
  try {
    if (error instanceof JsonRpcError) {
      return errorReply(error.code, error.message, id, error.data);
    }
    if (error instanceof CancelledError) {
      return errorReply(
        JsonRpcError.INTERNAL_ERROR,
        "Internal error: the call was cancelled",
        id,
      );
    }
  } catch {
    // A Proxy whose traps throw: treated as any other value.
  }
  return errorReply(
    JsonRpcError.INTERNAL_ERROR,
    messageOf(error) || "Internal error",
    id,
  );
}

/**
 * The message of something thrown: an `Error`'s message, a string as it
 * is, else `""` — also when reading it throws (a getter, a Proxy).
 */
function messageOf(error: unknown): string {
  try {
    const message = error instanceof Error ? error.message : error;
    return typeof message === "string" ? message : "";
  } catch {
    return "";
  }
}
