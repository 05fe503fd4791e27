/**
 * `HttpClientProtocol`: an HTTP/1.1 client as a protocol, sending web
 * `Request`s on one kept-alive connection and giving back web `Response`s.
 *
 * @module
 */

import {
  CancelledError,
  InvalidStateError,
  TimeoutError,
} from "../futures/errors.ts";
import { Future } from "../futures/future.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { TimerHandle } from "../loop/handle.ts";
import type { Transport } from "../transports/transport.ts";
import {
  bodyUnknown,
  knownBodyLength,
  readReadyBody,
  setResponseUrl,
  staticBody,
} from "./_deno_body.ts";
import { connectionReset } from "./_deno_errors.ts";
import {
  BodyQueue,
  type BodyQueueOwner,
  checkSeconds,
  describe,
  listsToken,
  sendBodyStream,
} from "./_http_body.ts";
import {
  excerpt,
  HttpParseError,
  type HttpParserCallbacks,
  type HttpResponseHead,
  HttpResponseParser,
} from "./_http_parser.ts";
import { serializeRequestHead } from "./_http_serialize.ts";
import { Protocol } from "../protocols/protocol.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** Options for {@linkcode HttpClientProtocol}. */
export interface HttpClientProtocolOptions {
  /**
   * How long, in seconds, a request waits for its response head once it is
   * sent (with its body: written, and taken by the server down to the
   * transport's low-water mark) and the responses before it have ended.
   * Bytes of a head arriving slowly, and 1xx responses, do not restart it;
   * it does not run while a body before it waits for its reader (over 64
   * KiB unread, reading is paused). Past it the request fails with a
   * `TimeoutError` and the connection is aborted. `Infinity` waits for
   * ever.
   *
   * @default {60}
   */
  headersTimeout?: number;
  /**
   * How long, in seconds, a response body may go without a byte arriving
   * while its reader wants more, and a request (its body) may go without
   * the server taking a byte of it while writing is paused (the
   * transport's write buffer over its high-water mark). The buffer
   * shrinks only once the system's socket buffers (often megabytes over
   * TCP) have room: a server that reads less than those per
   * `bodyTimeout` (say 1 KiB a second against the 60 s default) is taken
   * as stalled. The time a response body waits for its reader (over
   * 64 KiB unread, reading is paused) does not count, nor does it for the
   * requests and responses behind it. Past it the body
   * stream (or the request) fails with a `TimeoutError` and the connection
   * is aborted. `Infinity` waits for ever.
   *
   * @default {60}
   */
  bodyTimeout?: number;
  /**
   * How long, in seconds, a response body left unread may hold up the
   * responses behind it: over 64 KiB of it unread (reading is paused),
   * with a request waiting behind it, its reader taking no byte. Past it
   * the body is taken as abandoned (its `Response` dropped, or its reader
   * let go of it without cancelling it): one still coming fails with a
   * `TimeoutError`, the connection is aborted as for a cancelled body, and
   * the requests behind fail with a `Deno.errors.ConnectionReset`; one
   * whose bytes have all come stops holding reading paused and stays for
   * its reader. A body read slowly, or unread while nothing waits behind
   * it (a request cancelled does not wait), is not timed out. `Infinity`
   * waits for ever.
   *
   * @default {60}
   */
  unreadBodyTimeout?: number;
  /**
   * The most bytes a response head (or the trailer section of a chunked
   * body) may take. Over it the response fails with an `HttpParseError`
   * and the connection is aborted; no more than this is buffered.
   *
   * @default {16384}
   */
  maxHeaderBytes?: number;
  /**
   * The most header fields a response may have. Over it the response fails
   * with an `HttpParseError` and the connection is aborted.
   *
   * @default {100}
   */
  maxHeaders?: number;
  /**
   * The most body bytes a response may have, or `Infinity`. A larger
   * `Content-Length` fails the request; a body that grows past it fails
   * its stream; the connection is aborted either way. A body is streamed,
   * never held whole: memory stays bounded by 64 KiB unread whatever this
   * limit.
   *
   * @default {Infinity}
   */
  maxBodyBytes?: number;
  /**
   * The most bytes the status line or a chunk-size line may have. Over it
   * the response fails and the connection is aborted.
   *
   * @default {8192}
   */
  maxLineBytes?: number;
  /**
   * The most bytes of chunk extensions a chunked response body may have in
   * all. Over it the body fails and the connection is aborted.
   *
   * @default {16384}
   */
  maxChunkExtensionBytes?: number;
  /**
   * The loop the futures belong to.
   *
   * @default {the running loop when the connection is made}
   */
  loop?: SchedulingLoop;
}

const ENCODER = new TextEncoder();
const DEFAULT_TIMEOUT = 60;

// What the response timer measures: nothing (no request is sent and next
// in line, or a body waits for its reader with no one behind it), the
// wait for the head of `#waiting[0]`, the silence within its body, —
// writing paused — the server taking none of what was written, or — a
// body left unread holding reading paused with requests behind it — its
// reader taking nothing.
const T_NONE = 0;
const T_HEAD = 1;
const T_BODY = 2;
const T_SEND = 3;
const T_UNREAD = 4;
/** The write buffer's progress is looked at this many times per timeout. */
const SEND_TICKS = 8;
/** Methods whose requests carry a body, so an empty one gets a length. */
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

/**
 * The bytes the URL parser leaves unencoded in a path (`[\]^|`) or a query
 * (those and `` `{} ``) that RFC 3986 does not allow in a request-target.
 */
const NOT_RFC_3986 = /[[\\\]^`{|}]/g;

/**
 * The request-target of `url`: its path and query, with what RFC 3986
 * does not allow in them percent-encoded, as a strict server requires (a
 * `%` is left alone: the URL parser keeps it as given).
 */
function requestTarget(url: URL): string {
  return (url.pathname + url.search).replace(NOT_RFC_3986, percentEncode);
}

function percentEncode(c: string): string {
  return "%" + c.charCodeAt(0).toString(16).toUpperCase();
}

/**
 * The response's `url`: the request's without its fragment (even an
 * empty one, `#`) and without its credentials, which fetch() leaves in
 * it, so that logging it shows no password.
 */
function responseUrl(url: URL): string {
  if (url.username !== "" || url.password !== "") {
    url = new URL(url);
    url.username = "";
    url.password = "";
  }
  const href = url.href;
  const at = href.indexOf("#");
  return at < 0 ? href : href.slice(0, at);
}

const HEX = /^[0-9A-Fa-f]{2}$/;

/**
 * The `Authorization` value for the credentials of `url`
 * (`http://user:password@host/`), as fetch() and Go's client send them:
 * `Basic` with `user:password` percent-decoded (an invalid escape kept as
 * it is, as the URL standard decodes) in base64; `null` without any.
 */
function basicCredentials(url: URL): string | null {
  if (url.username === "" && url.password === "") return null;
  const encoded = ENCODER.encode(`${url.username}:${url.password}`);
  let binary = "";
  for (let i = 0; i < encoded.length; i++) {
    const byte = encoded[i];
    if (byte === 0x25 && i + 2 < encoded.length) {
      const hex = String.fromCharCode(encoded[i + 1], encoded[i + 2]);
      if (HEX.test(hex)) {
        binary += String.fromCharCode(parseInt(hex, 16));
        i += 2;
        continue;
      }
    }
    binary += String.fromCharCode(byte);
  }
  return `Basic ${btoa(binary)}`;
}

/**
 * A request's head, framed by the body's length: `Content-Length` (none
 * for an empty body of a method that takes none), or chunked for -1.
 */
function requestHead(
  method: string,
  target: string,
  fields: Array<[string, string]>,
  length: number,
): Uint8Array {
  const headers = fields.slice();
  if (length > 0 || (length === 0 && BODY_METHODS.has(method))) {
    headers.push(["content-length", String(length)]);
  } else if (length < 0) {
    headers.push(["transfer-encoding", "chunked"]);
  }
  return serializeRequestHead({ method, target, headers });
}

// A request's future: cancelling it tells the protocol at once, so that a
// request that succeeds costs no done callback (and no loop turn for one).
// It also listens to the request's signal, as fetch() honours it, until
// settled: aborted before the response head, the request fails with the
// signal's reason and is dropped as a cancelled one is.
class RequestFuture extends Future<Response> {
  readonly #onCancel: (future: Future<Response>) => void;
  readonly #signal: AbortSignal;
  readonly #onAbort = (): void => {
    if (this.done()) return;
    abortWith(this, this.#signal.reason);
    // cancel() told the protocol already.
    if (!this.cancelled()) this.#onCancel(this);
  };

  constructor(
    loop: SchedulingLoop | undefined,
    onCancel: (future: Future<Response>) => void,
    signal: AbortSignal,
  ) {
    super({ loop });
    this.#onCancel = onCancel;
    this.#signal = signal;
    signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  /**
   * Fails the request with `error`, or with its signal's reason when the
   * signal is aborted (its abort event yet to come, as when one signal
   * aborts several).
   */
  fail(error: Error): void {
    if (this.#signal.aborted) abortWith(this, this.#signal.reason);
    else this.setException(error);
  }

  override setResult(result: Response): void {
    super.setResult(result);
    this.#settled();
  }

  override setException(exception: unknown): void {
    super.setException(exception);
    this.#settled();
  }

  override cancel(msg?: string): boolean {
    if (!super.cancel(msg)) return false;
    this.#settled();
    this.#onCancel(this);
    return true;
  }

  #settled(): void {
    this.#signal.removeEventListener("abort", this.#onAbort);
  }
}

/**
 * Ends `future` as its request's aborted signal says: cancelled for a
 * `CancelledError` (a task's `signal`), which no future may hold as its
 * exception; else failed with the reason.
 */
function abortWith(future: Future<Response>, reason: unknown): void {
  if (reason instanceof CancelledError) future.cancel(reason.message);
  else future.setException(reason);
}

/**
 * The body of a response of zero length, other than to HEAD or with a
 * null body status (204, 205, 304): empty but not `null`, as `fetch()`
 * gives it.
 */
function emptyBody(): ReadableStream<Uint8Array> {
  return new ReadableStream({ start: (controller) => controller.close() });
}

/**
 * What is wrong with a 101 (protocol switch) answering `pending`, for its
 * error: the server's fault when the request offered no upgrade, when the
 * 101 lacks its `Upgrade` or `Connection: upgrade` (RFC 9110 §7.8), or
 * names a protocol the request did not offer; else that this client does
 * not switch.
 */
function switchFault(head: HttpResponseHead, pending: Pending): string {
  const to = head.headers.get("upgrade");
  const connection = head.headers.get("connection");
  const received = `received 101 with Upgrade: ${to ?? "(none)"}`;
  if (pending.upgrade === null) {
    return `the server switched protocols (status 101) though the request asked for no upgrade (it had no Upgrade field), ${received}`;
  }
  const names = (to ?? "").split(",").map((part) => part.trim().toLowerCase())
    .filter((name) => name !== "");
  if (
    names.length === 0 || connection === undefined ||
    !listsToken(connection, "upgrade")
  ) {
    const missing = names.length === 0
      ? "without Upgrade"
      : `with Connection: ${connection ?? "(none)"}`;
    return `a 101 response must name the new protocol in Upgrade and list upgrade in Connection (RFC 9110 §7.8), received 101 ${missing}`;
  }
  const offered = pending.upgrade;
  for (const name of names) {
    if (!listsToken(offered, name)) {
      return `the server switched to a protocol the request did not offer (it offered ${offered}), ${received}`;
    }
  }
  return `HttpClientProtocol cannot switch protocols; open a WebSocket with the WebSocket class, or speak the protocol over a plain transport, ${received}`;
}

/** A request sent, or waiting to be sent, and its response. */
class Pending {
  readonly future: RequestFuture;
  readonly method: string;
  /**
   * The request's URL without its fragment and credentials: the
   * response's `url`.
   */
  readonly url: string;
  body: BodyQueue | null = null;
  /** The request, body included, is written to the transport. */
  sent = false;
  /** The request's future was cancelled before its response ended. */
  cancelled = false;
  /** The request's `Upgrade` field: the protocols it offered, or `null`. */
  readonly upgrade: string | null;

  constructor(
    future: RequestFuture,
    method: string,
    url: string,
    upgrade: string | null,
  ) {
    this.future = future;
    this.method = method;
    this.url = url;
    this.upgrade = upgrade;
  }

  /** Fails the request, or its response's body once the head came. */
  fail(error: Error): void {
    if (this.future.done()) this.body?.fail(error);
    else this.future.fail(error);
  }
}

/**
 * An HTTP/1.1 client protocol: `request()` sends a web `Request` on the
 * connection and returns a `Future` of the web `Response`.
 *
 * Make the connection with `loop.createConnection(() => new
 * HttpClientProtocol(), host, port)` (or over any stream transport), then
 * call `request()` as often as needed:
 *
 * - Requests are pipelined: each is written at once (after the body of
 *   the one before it, when that body is a stream), and the responses are
 *   matched to them in order, as HTTP/1.1 requires. The connection is
 *   kept alive between them.
 * - The future resolves as soon as the response head arrives; its body is
 *   a `ReadableStream` fed from the connection as it is read
 *   (`Content-Length`, chunked, or — from an HTTP/1.0 server — until the
 *   connection closes). Its bytes are the ones sent: unlike `fetch()`,
 *   which asks for `gzip` and `br` and undoes them, the client adds no
 *   `Accept-Encoding` and decodes no `Content-Encoding`, nor a
 *   transfer-coding other than chunked (its `Transfer-Encoding` says
 *   which), as Go's `http.Transport` decodes none that the caller asked
 *   for itself; pipe the body through a `DecompressionStream` for them,
 *   bounding what comes out (deflate expands up to about 1,000 times,
 *   and each piece put in comes out whole at once). The response's `url`
 *   is the request's (without its fragment), as with `fetch()`; its
 *   `statusText` is the reason phrase the server sent (Deno's `fetch()`
 *   gives the standard one for the status instead).
 *   Above 64 KiB unread the transport is paused, so read or cancel every
 *   body: one left unread holds up the responses behind it, and their
 *   `headersTimeout`/`bodyTimeout` do not run meanwhile (the client, not
 *   the server, stopped reading). Once its reader has taken nothing for
 *   `unreadBodyTimeout` seconds (60) while a request waits behind it, it
 *   is taken as abandoned — a `Response` dropped unread, or a reader let
 *   go, is found this way, not by garbage collection: a body still coming
 *   fails with a `TimeoutError` and the connection closes as for a
 *   cancelled one; one whose bytes have all come stays for its reader and
 *   stops holding the others up. Bound a request sooner with its
 *   `signal` (`AbortSignal.timeout()`). Each piece read from a body is
 *   the reader's own: it may keep, change or transfer its buffer without
 *   touching the responses behind it or the connection.
 * - Cancelling a request — its future (or a task awaiting it), or its
 *   response's body stream — before its response has ended closes the
 *   connection, as Go's `http.Transport` and aiohttp do: the rest of the
 *   response could be endless or slow, and would hold up every request
 *   behind it. Those requests fail with a `Deno.errors.ConnectionReset`
 *   saying that an earlier request was cancelled (they are not sent again:
 *   make a new connection for them). A request cancelled while responses
 *   before it are still coming lets them end first; one not written yet
 *   (it waits behind a streamed body, or for its own to be read) is just
 *   dropped. A body cancelled after its response ended (the bytes came,
 *   unread) keeps the connection.
 * - A HEAD response, and 204, 205 and 304, have no body (`body` is
 *   `null`); any other response has one, empty for `Content-Length: 0`,
 *   as with `fetch()`.
 *   Informational (1xx) responses are skipped; a 101 (protocol switch)
 *   is not supported: it fails the request and closes the connection,
 *   the error saying whether the server was at fault (a switch the
 *   request did not ask for, or to a protocol it did not offer, or
 *   without `Upgrade` and `Connection: upgrade`). Redirects (3xx) are given
 *   back as they are, never followed: the protocol speaks to the one
 *   server it is connected to, so following `Location` is the caller's
 *   choice (with a connection to wherever it points). A status of 600
 *   to 999, which a web `Response` cannot hold (RFC 9110 §15 allows
 *   100–599), fails the request with an `HttpParseError` naming it; its
 *   body is dropped and the connection goes on.
 * - Request bodies: a string, bytes, `URLSearchParams`… held in memory go
 *   with `Content-Length` in the same write as the head; a stream goes
 *   chunked as it is read (a `Blob` with its known length), waiting while
 *   the transport's write buffer is over its high-water mark. A `Host`
 *   field is added from the URL unless the request has one, and for the
 *   URL's credentials (`http://user:pass@host/`) an `Authorization:
 *   Basic` field unless it has one (an empty one it replaces), as Go's
 *   client sends them (`fetch()` sends both fields); the response's `url`
 *   leaves them out.
 * - `Connection: close` from the server (or an HTTP/1.0 response without
 *   keep-alive) closes the connection after that response; requests
 *   pipelined behind it fail as soon as its head arrives, since the
 *   server processes none of them (RFC 9112 §9.6): send them again on a
 *   new connection. A request with `Connection: close` is the last one:
 *   later calls throw, and the connection closes once it is answered.
 * - Bytes the server sends when no request awaits an answer (a body
 *   after a HEAD response, junk after a body, a second response) are
 *   never taken as the answer to a later request: the connection is
 *   aborted, as Go's `http.Transport` does, and the next `request()`
 *   throws an `InvalidStateError` quoting them.
 * - Against a slow or hostile server: a request fails with a
 *   `TimeoutError` when its response head has not come `headersTimeout`
 *   seconds (60) after it was sent (its body taken by the server) and the
 *   responses before it ended, or when the server took no byte of what
 *   was written for `bodyTimeout` seconds (60) while writing was paused;
 *   a body fails when no byte of it came for `bodyTimeout` seconds while
 *   its reader waited. A head over `maxHeaderBytes` or `maxHeaders`,
 *   or a body over `maxBodyBytes`, fails with an `HttpParseError`. Each
 *   aborts the connection, and the requests behind fail with a
 *   `Deno.errors.ConnectionReset`.
 * - If the connection is lost, the requests still waiting fail with a
 *   `Deno.errors.ConnectionReset` (whose `cause` is the transport's
 *   error, if any), and a body being read fails with it. The error of
 *   one never written (it waited for a streamed body) says that it can
 *   be sent again on a new connection, whatever its method.
 *
 * PEP 3156: the HTTP client the PEP promises among the ready-made
 * protocols ("decent though not necessarily excellent").
 *
 * @example Two requests on one in-memory connection
 * ```ts
 * import { HttpClientProtocol, HttpServerProtocol } from "@tulip/tulip/http";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const server = new HttpServerProtocol(
 *   async (request) => new Response((await request.text()).toUpperCase()),
 *   { loop },
 * );
 * const client = new HttpClientProtocol({ loop });
 * transportPair(client, server, { loop });
 * await loop.advance(0);
 * const first = client.request(
 *   new Request("http://example.com/", { method: "POST", body: "one" }),
 * );
 * const second = client.request(
 *   new Request("http://example.com/", { method: "POST", body: "two" }),
 * );
 * const texts = await loop.runUntilComplete(
 *   Promise.all([first, second]).then((rs) => Promise.all(rs.map((r) => r.text()))),
 * );
 * assertEquals(texts, ["ONE", "TWO"]);
 * assertEquals(server.requestCount, 2);
 * client.close();
 * await loop.advance(0);
 * loop.close();
 * ```
 *
 * @example Fetching from a server on TCP
 * ```ts ignore
 * import { HttpClientProtocol } from "@tulip/tulip/http";
 * import { newEventLoop } from "@tulip/tulip/loop";
 *
 * const loop = newEventLoop();
 * const [, client] = await loop.runUntilComplete(
 *   loop.createConnection(() => new HttpClientProtocol(), "127.0.0.1", 8000),
 * );
 * const response = await loop.runUntilComplete(
 *   client.request(new Request("http://127.0.0.1:8000/")),
 * );
 * console.log(response.status, await response.text());
 * client.close();
 * ```
 */
export class HttpClientProtocol extends Protocol {
  readonly #parser: HttpResponseParser;
  #loop: SchedulingLoop | null;
  #transport: Transport | null = null;
  /** Requests written, awaiting (the end of) their responses, in order. */
  #waiting: Pending[] = [];
  /** Requests waiting for a streamed body before them to be written. */
  #queue: Array<{ pending: Pending; send: () => void }> = [];
  /**
   * The request whose body is read to learn whether it is held in memory,
   * before its head is written: not sent yet, so no byte answers it.
   */
  #probing: Pending | null = null;
  #sendingStream = false;
  /** The response being read is a final one (not 1xx). */
  #inFinal = false;
  /** A 1xx response came for the first request waiting. */
  #interim = false;
  /** A final response ended on this connection: it is reused. */
  #reused = false;
  #lastRequestSent = false;
  #closing = false;
  #lost = false;
  #eof = false;
  /** A response said the connection closes after it. */
  #serverSaidClose = false;
  /** The bytes the server sent that answer no request, as an excerpt. */
  #unsolicited: string | null = null;
  #lostError: Error | undefined = undefined;
  #closed: Future<void> | null = null;
  #writePaused = false;
  #drainWaiters: Array<() => void> = [];
  readonly #bodyOwner: BodyQueueOwner;
  readonly #headersTimeout: number;
  readonly #bodyTimeout: number;
  readonly #unreadBodyTimeout: number;
  /**
   * What the timer measures (T_NONE, T_HEAD, T_BODY, T_SEND, T_UNREAD)
   * and since when.
   */
  #timing = T_NONE;
  #since = 0;
  /** The write buffer's size when T_SEND last looked at it. */
  #unsent = 0;
  #timer: TimerHandle | null = null;
  #timerDue = 0;
  /**
   * How many bodies wait for their readers with over 64 KiB unread:
   * reading is paused while any does, one that ended included until a
   * body is read (the responses behind it cannot come meanwhile).
   */
  #pausedBodies = 0;
  /**
   * The bodies that ended holding reading paused (over 64 KiB unread):
   * the first read of any body releases them, so that a body read before
   * them can come.
   */
  #endedPaused: BodyQueue[] = [];

  /**
   * Makes the protocol of one connection.
   *
   * @param options Limits and the loop.
   * @throws {TypeError} When `options` is not an object, its `loop` no
   * event loop, or a timeout not a number.
   * @throws {RangeError} When a timeout or limit is out of range.
   */
  constructor(options?: HttpClientProtocolOptions) {
    super();
    checkOptions(
      options,
      "make an HttpClientProtocol",
      "{ headersTimeout, maxBodyBytes, … }",
    );
    this.#loop = options?.loop ?? null;
    this.#headersTimeout = checkSeconds(
      "make an HttpClientProtocol",
      "headersTimeout",
      options?.headersTimeout ?? DEFAULT_TIMEOUT,
    );
    this.#bodyTimeout = checkSeconds(
      "make an HttpClientProtocol",
      "bodyTimeout",
      options?.bodyTimeout ?? DEFAULT_TIMEOUT,
    );
    this.#unreadBodyTimeout = checkSeconds(
      "make an HttpClientProtocol",
      "unreadBodyTimeout",
      options?.unreadBodyTimeout ?? DEFAULT_TIMEOUT,
    );
    const callbacks: HttpParserCallbacks<HttpResponseHead> = {
      onHead: (head) => this.#onHead(head),
      onBody: (chunk, own) => {
        if (this.#timing === T_BODY) this.#since = this.#loop!.time();
        this.#waiting[0]?.body?.push(chunk, own);
      },
      onMessageComplete: () => this.#onMessageComplete(),
      onError: (error) => this.#onParseError(error),
    };
    this.#parser = new HttpResponseParser(callbacks, {
      maxHeaderBytes: options?.maxHeaderBytes,
      maxHeaders: options?.maxHeaders,
      maxBodyBytes: options?.maxBodyBytes ?? Infinity,
      maxLineBytes: options?.maxLineBytes,
      maxChunkExtensionBytes: options?.maxChunkExtensionBytes,
    });
    this.#bodyOwner = {
      // Each change retimes: whether a request waits behind the bodies
      // that hold reading paused depends on which they are.
      pauseBody: () => {
        const first = this.#pausedBodies++ === 0;
        this.#retime();
        if (first) this.#transport?.pauseReading();
      },
      resumeBody: () => {
        const last = --this.#pausedBodies === 0;
        this.#retime();
        if (last) this.#transport?.resumeReading();
      },
      bodyRead: () => {
        if (this.#timing === T_UNREAD) this.#since = this.#loop!.time();
      },
      firstRead: () => {
        // Reading a body is progress for the bodies left unread before it.
        if (this.#timing === T_UNREAD) this.#since = this.#loop!.time();
        // Their bytes have all come: they hold reading paused only until
        // something is read, lest the reader of a body behind them (its
        // head came with their end) wait for ever.
        const ended = this.#endedPaused;
        if (ended.length === 0) return;
        this.#endedPaused = [];
        for (const body of ended) body.release();
      },
      bodyCancelled: () => {
        // The body being read, or one that ended but was left unread?
        if (this.#inFinal && this.#waiting[0]?.body?.cancelled) {
          this.#dropCancelled();
        }
      },
    };
  }

  /**
   * The connection's transport, or `null` before `connectionMade` and
   * after `connectionLost`.
   */
  get transport(): Transport | null {
    return this.#transport;
  }

  /** How many requests are sent or queued and not yet fully answered. */
  get pendingCount(): number {
    return this.#waiting.length + this.#queue.length +
      (this.#probing === null ? 0 : 1);
  }

  /**
   * Sends a request and returns a future of its response, resolved when
   * the response head arrives (the body streams after it).
   *
   * The request's URL gives the request-target (path and query, with
   * what RFC 3986 does not allow there, such as `|`, percent-encoded)
   * and, when the request has no `Host` field, the `Host` (its
   * credentials, if any, an `Authorization: Basic` field, unless the
   * request has one that is not empty); its scheme and host do not
   * choose the connection — this one is used. The body, if any, is read
   * from the request (so the request can be sent once).
   *
   * @param request The request.
   * @returns A future of the response. It fails with a
   * `Deno.errors.ConnectionReset` if the connection is lost first (or
   * closed because an earlier request was cancelled), and with the
   * parser's error for a malformed response. Cancelling it before the
   * response has ended closes the connection, unless it was not written
   * yet (then it is just dropped). The request's `signal`, as `fetch()`
   * honours it, aborted before the response head arrives fails the future
   * with the signal's reason (cancels it, for a task's `CancelledError`)
   * and drops the request as a cancel does (one aborted already sends
   * nothing).
   * @throws {TypeError} When `request` is not a `Request`, its body was
   * already used, or a header cannot be sent.
   * @throws {InvalidStateError} Before `connectionMade`, or once the
   * connection is closing or lost.
   */
  request(request: Request): Future<Response> {
    if (!(request instanceof Request)) {
      throw new TypeError(
        `Cannot send an HTTP request: request must be a Request, received ${
          describe(request)
        }`,
      );
    }
    const transport = this.#transport;
    if (
      transport === null || this.#closing || this.#lastRequestSent ||
      this.#serverSaidClose
    ) {
      const why = this.#unsolicited !== null
        ? `the server sent bytes that answer no request (received ${this.#unsolicited}), so the connection was closed; make a new connection`
        : this.#serverSaidClose
        ? "the server closed the connection after its last response (it said Connection: close, or is HTTP/1.0 without keep-alive); make a new connection"
        : this.#lastRequestSent
        ? "an earlier request asked for Connection: close"
        : this.#eof
        ? "the server closed the connection (an idle kept-alive connection may be closed at any time); make a new connection"
        : this.#lost
        ? "the connection was lost"
        : transport === null
        ? "the connection is not made yet"
        : "the connection is closing";
      throw new InvalidStateError(`Cannot send an HTTP request: ${why}`);
    }
    const url = new URL(request.url);
    const method = request.method;
    const headers: Array<[string, string]> = [];
    let hasHost = false;
    let authorization: [string, string] | null = null;
    let last = false;
    let upgrade: string | null = null;
    for (const pair of request.headers) {
      const name = pair[0];
      if (name === "content-length" || name === "transfer-encoding") continue;
      if (name === "host") hasHost = true;
      else if (name === "authorization") authorization = pair;
      else if (name === "connection" && listsToken(pair[1], "close")) {
        last = true;
      } else if (name === "upgrade") upgrade = pair[1];
      headers.push(pair);
    }
    // The URL's credentials go as fetch() and Go's client send them,
    // unless the request has its own Authorization (fetch() sends both;
    // Go keeps the request's). An empty one is none: Go replaces it, and
    // fetch() sends the credentials beside it.
    const credentials = authorization !== null && authorization[1] !== ""
      ? null
      : basicCredentials(url);
    if (credentials !== null) {
      if (authorization !== null) {
        headers.splice(headers.indexOf(authorization), 1);
      }
      headers.unshift(["authorization", credentials]);
    }
    if (!hasHost) headers.unshift(["host", url.host]);
    let data: Uint8Array | null = null;
    let stream: ReadableStream<Uint8Array> | null = null;
    let length = 0;
    const known = staticBody(request);
    if (known !== null && known !== undefined) {
      data = typeof known === "string" ? ENCODER.encode(known) : known;
      length = data.length;
    } else if (known === undefined) {
      if (request.bodyUsed) {
        throw new TypeError(
          "Cannot send an HTTP request: its body was already read, received a used Request",
        );
      }
      stream = request.body;
      if (stream?.locked) {
        throw new TypeError(
          "Cannot send an HTTP request: its body stream is locked, received a locked ReadableStream",
        );
      }
      if (stream !== null) length = knownBodyLength(request) ?? -1;
    }
    // Without Deno's internals a body held in memory (a string, bytes) is
    // told by its stream being ready at once; it goes with its length too.
    const probe = length < 0 && bodyUnknown(request);
    const target = requestTarget(url);
    const head = requestHead(method, target, headers, length);
    // The request's signal, as fetch() honours it: aborted already,
    // nothing is sent.
    const signal = request.signal;
    if (signal.aborted) {
      const aborted = new Future<Response>({ loop: this.#loop ?? undefined });
      abortWith(aborted, signal.reason);
      return aborted;
    }
    const pending = new Pending(
      new RequestFuture(
        this.#loop ?? undefined,
        this.#requestCancelled,
        signal,
      ),
      method,
      responseUrl(url),
      upgrade,
    );
    if (last) this.#lastRequestSent = true;
    const send = () => {
      const transport = this.#transport!;
      // Read only once its turn comes: a request dropped while queued
      // leaves its body untouched, for its caller to cancel.
      const ready = probe ? readReadyBody(stream!) : null;
      if (ready !== null) {
        // Not sent until its head is written; requests behind it wait
        // until its body is known and sent.
        this.#probing = pending;
        this.#sendingStream = true;
        ready.then((body) => {
          const transport = this.#transport;
          if (
            this.#probing !== pending || transport === null ||
            transport.isClosing()
          ) {
            // Cancelled, or failed, lost or closing meanwhile (then the
            // request fails with the connection).
            if (body instanceof ReadableStream) body.cancel().catch(() => {});
            // Asked again: the stream's cancel() runs at once, and may
            // have closed the connection.
            if (transport !== null && !transport.isClosing()) {
              // Cancelled: the requests behind it go.
              this.#sendingStream = false;
              this.#sendQueued();
            }
            return;
          }
          this.#probing = null;
          this.#parser.expectResponse(method);
          this.#waiting.push(pending);
          this.#lookAtSending();
          if (body instanceof ReadableStream) {
            transport.write(head);
            this.#lookAtSending();
            this.#streamBody(pending, body, true, -1);
          } else {
            const sized = requestHead(method, target, headers, body.length);
            if (body.length > 0) transport.writelines([sized, body]);
            else transport.write(sized);
            this.#lookAtSending();
            this.#bodySent(pending);
          }
        });
        return;
      }
      this.#parser.expectResponse(method);
      this.#waiting.push(pending);
      this.#lookAtSending();
      if (data !== null && data.length > 0) {
        transport.writelines([head, data]);
      } else transport.write(head);
      this.#lookAtSending();
      if (stream !== null) {
        this.#sendingStream = true;
        this.#streamBody(pending, stream, length < 0, length);
      } else {
        pending.sent = true;
        this.#retime();
      }
    };
    if (this.#sendingStream) this.#queue.push({ pending, send });
    else send();
    return pending.future;
  }

  /**
   * Closes the connection (after writing what is buffered). Requests
   * still waiting for their responses fail.
   */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#transport?.close();
  }

  /**
   * Returns a future that resolves when the connection is lost or closed.
   *
   * @returns A future of `undefined`.
   */
  waitClosed(): Future<void> {
    let closed = this.#closed;
    if (closed === null) {
      closed = this.#closed = new Future<void>({
        loop: this.#loop ?? undefined,
      });
      if (this.#lost) closed.setResult();
    }
    return closed;
  }

  /**
   * Keeps the transport.
   *
   * @param transport The connection's transport.
   */
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    this.#loop ??= getRunningLoop();
  }

  /**
   * Parses the bytes into responses.
   *
   * @param data The bytes received.
   */
  override dataReceived(data: Uint8Array): void {
    if (this.#answersNothing()) {
      this.#dropUnsolicited(data, 0);
      return;
    }
    this.#parser.feed(data);
    // Bytes after the last answer (a body after a HEAD response, junk
    // after a body) are held as the start of a response: never the
    // answer to a request sent later.
    const held = this.#parser.bufferedBytes;
    if (held > 0 && this.#answersNothing()) {
      this.#dropUnsolicited(data, Math.max(0, data.length - held));
    }
  }

  /**
   * Nothing sent awaits an answer on an open connection (a request not
   * written yet, queued or reading its body, is not answered by any byte).
   */
  #answersNothing(): boolean {
    return this.#waiting.length === 0 && !this.#closing &&
      this.#transport !== null;
  }

  /**
   * The server sent bytes when no request awaits an answer: they cannot
   * be the answer to a later one, so the connection is aborted (as Go's
   * `http.Transport` does) and the next `request()` says why.
   */
  #dropUnsolicited(data: Uint8Array, start: number): void {
    this.#unsolicited = excerpt(data, start, data.length);
    // Only requests never written wait (queued, or reading their body).
    this.#failAll(
      connectionReset(
        `Cannot get the HTTP response: the server sent bytes that answer no request (received ${this.#unsolicited}), so the connection was closed before the request was sent; send it on a new connection`,
      ),
    );
    this.#parser.pause();
    this.#abort();
  }

  /**
   * The server closed its side: a body that runs to the close completes;
   * the connection closes, and no request is taken from now on.
   *
   * @returns `false`: the transport closes.
   */
  override eofReceived(): boolean {
    this.#eof = true;
    this.#closing = true;
    this.#parser.feedEof();
    return false;
  }

  /**
   * Fails whatever still waits.
   *
   * @param exc The error that ended the connection, if any.
   */
  override connectionLost(exc?: Error): void {
    this.#timing = T_NONE;
    this.#timer?.cancel();
    this.#timer = null;
    this.#lost = true;
    this.#closing = true;
    this.#lostError = exc;
    this.#transport = null;
    this.#failAll(this.#lostFailure(true), this.#lostFailure(false));
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const wake of waiters) wake();
    const closed = this.#closed;
    if (closed !== null && !closed.done()) closed.setResult();
  }

  /**
   * The write buffer is full: a streamed request body waits, and the
   * server has `bodyTimeout` to take a byte.
   */
  override pauseWriting(): void {
    this.#writePaused = true;
    this.#retime();
  }

  /**
   * The write buffer drained: a streamed request body goes on, and a
   * request sent waits for its head.
   */
  override resumeWriting(): void {
    this.#writePaused = false;
    this.#retime();
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const wake of waiters) wake();
  }

  // ---- Responses ----

  #onHead(head: HttpResponseHead): void {
    const status = head.status;
    const pending = this.#waiting[0];
    if (status < 200) {
      this.#interim = true;
      if (status === 101) {
        pending.fail(
          new TypeError(
            `Cannot read the HTTP response: ${switchFault(head, pending)}`,
          ),
        );
        this.#waiting.shift();
        this.#failAll(
          connectionReset(
            "Cannot get the HTTP response: the connection switched protocols",
          ),
        );
        this.#abort();
      }
      return;
    }
    this.#inFinal = true;
    this.#retime();
    if (!head.keepAlive) this.#failBehind(pending);
    const nullBody = status === 204 || status === 205 || status === 304;
    let body: BodyQueue | null = null;
    if (status > 599) {
      // Framed as any response, so the connection goes on: its body is
      // dropped as it comes.
      this.#unrepresentable(head, pending);
      return;
    }
    if (head.bodyKind !== "none") {
      body = pending.body = new BodyQueue(
        this.#bodyOwner,
      );
    }
    let response: Response;
    try {
      response = new Response(
        nullBody || pending.method === "HEAD"
          ? null
          : body === null
          ? emptyBody()
          : body.stream(),
        {
          status,
          statusText: head.reason,
          headers: head.headers.pairs,
        },
      );
    } catch (error) {
      body?.discard(error);
      if (!pending.future.done()) {
        pending.future.setException(
          new TypeError(
            `Cannot read the HTTP response: ${
              error instanceof Error ? error.message : String(error)
            }, received status ${status}`,
            { cause: error },
          ),
        );
      }
      return;
    }
    setResponseUrl(response, pending.url);
    if (pending.future.done() || nullBody) {
      body?.discard(
        connectionReset("Cannot read the HTTP response body: nobody wants it"),
      );
    }
    if (!pending.future.done()) pending.future.setResult(response);
  }

  /**
   * Fails `pending` for a final status of 600 to 999, which the status
   * line's three digits allow but RFC 9110 §15 does not, and a web
   * `Response` cannot hold (`fetch()` gives it as it is); its body, if
   * any, is read and dropped.
   */
  #unrepresentable(head: HttpResponseHead, pending: Pending): void {
    if (head.bodyKind !== "none") {
      pending.body = new BodyQueue(this.#bodyOwner);
      pending.body.discard(
        connectionReset("Cannot read the HTTP response body: nobody wants it"),
      );
    }
    if (pending.future.done()) return;
    const line = `${head.status} ${head.reason}`;
    const quoted = JSON.stringify(line.slice(0, 64)) +
      (line.length > 64 ? "…" : "");
    pending.future.fail(
      new HttpParseError(
        400,
        `Cannot parse HTTP response: the status ${head.status} is outside 100-599, the range RFC 9110 §15 allows and a web Response can hold (RFC 9110 says to take it as a 5xx server error), received ${quoted}`,
      ),
    );
  }

  /**
   * The response to `first` is the last on the connection: a server that
   * closes after it processes no request behind it (RFC 9112 §9.6), so
   * those fail now, not when it ends (a body that runs to the close may
   * never end), and no request is taken from now on.
   */
  #failBehind(first: Pending): void {
    this.#serverSaidClose = true;
    this.#waiting.shift();
    this.#failAll(
      connectionReset(
        "Cannot get the HTTP response: the server closes the connection after an earlier response (Connection: close, or HTTP/1.0 without keep-alive) and processes no request behind it (RFC 9112 §9.6); send it again on a new connection",
      ),
    );
    this.#waiting.push(first);
  }

  #onMessageComplete(): void {
    if (!this.#inFinal) return;
    this.#inFinal = false;
    this.#interim = false;
    this.#reused = true;
    const pending = this.#waiting.shift()!;
    this.#retime();
    const body = pending.body;
    if (body !== null) {
      body.end();
      if (body.paused) this.#endedPaused.push(body);
    }
    // The answer to a request that asked for Connection: close?
    if (this.#closeIfLast()) return;
    if (this.#serverSaidClose) {
      // Its head said so; the requests behind it failed then (#failBehind).
      this.#closing = true;
      // Whatever the server sent after it answers no request.
      this.#parser.pause();
      this.#transport?.close();
    } else if (this.#waiting[0]?.cancelled) {
      // A request cancelled while responses before it were read.
      this.#dropCancelled();
    }
  }

  // ---- Cancellation ----

  /**
   * A request's future was cancelled: one not sent yet is forgotten; one
   * whose response has not ended closes the connection, once the
   * responses before it have ended.
   */
  readonly #requestCancelled = (future: Future<Response>): void => {
    const queued = this.#queue.findIndex((q) => q.pending.future === future);
    if (queued >= 0) {
      this.#queue.splice(queued, 1);
      return;
    }
    if (this.#probing?.future === future) {
      // Its head is not written: the probe's end drops it.
      this.#probing = null;
      return;
    }
    const pending = this.#waiting.find((p) => p.future === future);
    if (pending === undefined) return;
    pending.cancelled = true;
    if (pending === this.#waiting[0]) this.#dropCancelled();
    // It no longer waits behind a body left unread.
    else this.#retime();
  };

  /**
   * Closes the connection because the first request waiting was cancelled
   * (its future, or its body stream) before its response ended: the rest
   * of that response may never end, and would hold up every request
   * behind it. Those fail, saying why.
   */
  #dropCancelled(): void {
    const error = connectionReset(
      "Cannot get the HTTP response: the connection was closed because an earlier request on it was cancelled before its response ended",
    );
    this.#waiting.shift()!.body?.discard(error);
    this.#failAll(error);
    // Nothing more is reported from input already received.
    this.#parser.pause();
    this.#abort();
  }

  // ---- Timeouts ----

  /**
   * Sets what the response timer measures after a change of state:
   * nothing while reading is paused for a body that waits for its reader
   * (the server is not silent while no byte is asked of it, and it may
   * stop taking ours while its answers back up); else the silence in the
   * body of the first request waiting; before its response, while
   * writing is paused, the server taking no byte of what was written (a
   * request held in the write buffer is not sent yet: Go's
   * `ResponseHeaderTimeout` too starts once the request is written); then
   * the head, once it is sent.
   */
  #retime(): void {
    const pending = this.#waiting[0];
    const transport = this.#transport;
    let timing = T_NONE;
    if (transport === null) {
      // Lost: nothing to time.
    } else if (this.#pausedBodies === 0) {
      if (pending !== undefined && this.#inFinal) timing = T_BODY;
      else if (this.#writePaused) timing = T_SEND;
      else if (pending?.sent) timing = T_HEAD;
    } else if (this.#heldUp()) timing = T_UNREAD;
    const timeout = this.#timeoutOf(timing);
    // The same wait goes on: sending another request is no progress.
    if (timing === this.#timing) return;
    this.#timing = timing;
    if (timing === T_NONE || timeout === Infinity) {
      this.#timer?.cancel();
      this.#timer = null;
      return;
    }
    const loop = this.#loop!;
    const since = this.#since = loop.time();
    // Progress in sending is seen only by looking: a few times per wait.
    const delay = timing === T_SEND ? timeout / SEND_TICKS : timeout;
    if (timing === T_SEND) this.#unsent = transport!.getWriteBufferSize();
    // A timer set for a longer wait fires too late for this one.
    if (this.#timer !== null && this.#timerDue > since + delay) {
      this.#timer.cancel();
      this.#timer = null;
    }
    if (this.#timer === null) this.#setTimer(delay);
  }

  /** The timeout of what `timing` measures, in seconds. */
  #timeoutOf(timing: number): number {
    return timing === T_HEAD
      ? this.#headersTimeout
      : timing === T_UNREAD
      ? this.#unreadBodyTimeout
      : this.#bodyTimeout;
  }

  /**
   * While bodies hold reading paused: whether a request waits behind them.
   * The body being read holds up the requests after its own that are not
   * cancelled (one cancelled waits for nothing: the connection closes
   * when its turn comes); one that ended holds up every request still
   * waiting.
   */
  #heldUp(): boolean {
    const first = this.#waiting[0];
    if (first === undefined) return false;
    if (this.#inFinal && first.body?.paused) return this.#waitingBehind();
    return true;
  }

  /** Whether a request not cancelled waits behind the first one. */
  #waitingBehind(): boolean {
    const waiting = this.#waiting;
    for (let i = 1; i < waiting.length; i++) {
      if (!waiting[i].cancelled) return true;
    }
    return false;
  }

  #setTimer(delay: number): void {
    const loop = this.#loop!;
    this.#timerDue = loop.time() + delay;
    this.#timer = loop.callLater(delay, () => this.#onTimer());
  }

  #onTimer(): void {
    this.#timer = null;
    const timing = this.#timing;
    if (timing === T_NONE) return;
    const loop = this.#loop!;
    const timeout = this.#timeoutOf(timing);
    this.#lookAtSending();
    const left = this.#since + timeout - loop.time();
    if (left > 0) {
      // Progress was made or the wait started again since the timer was
      // set: wait out the rest (looking at the sending again meanwhile).
      this.#setTimer(
        timing === T_SEND ? Math.min(left, timeout / SEND_TICKS) : left,
      );
      return;
    }
    this.#timing = T_NONE;
    if (timing === T_UNREAD) {
      this.#abandonUnread();
      return;
    }
    const error = timing === T_HEAD
      ? new TimeoutError(
        "Cannot get the HTTP response: no final response head came within " +
          `headersTimeout (${timeout} s) of the request`,
      )
      : timing === T_BODY
      ? new TimeoutError(
        "Cannot read the HTTP response body: no body bytes came for " +
          `bodyTimeout (${timeout} s)`,
      )
      : new TimeoutError(
        "Cannot send the HTTP request: the server took no byte of what " +
          `was written to it for bodyTimeout (${timeout} s)`,
      );
    const first = this.#waiting.shift();
    first?.fail(error);
    const behind = connectionReset(
      `Cannot get the HTTP response: the connection was aborted when an earlier ${
        timing === T_SEND ? "request" : "response"
      } timed out`,
    );
    Object.defineProperty(behind, "cause", {
      value: error,
      configurable: true,
      writable: true,
    });
    this.#failAll(behind);
    this.#abort();
  }

  /**
   * The bodies holding reading paused were left unread for
   * `unreadBodyTimeout` while requests waited behind them: those that
   * ended stop holding it (their bytes have all come, so no more can
   * queue up; they stay for their readers); the one still coming, if it
   * holds up a request, is dropped as a cancelled one is.
   */
  #abandonUnread(): void {
    const ended = this.#endedPaused;
    this.#endedPaused = [];
    for (const body of ended) body.release();
    const first = this.#waiting[0];
    const body = first?.body;
    if (
      !this.#inFinal || body === null || body === undefined || !body.paused ||
      !this.#waitingBehind()
    ) {
      this.#retime();
      return;
    }
    const timeout = this.#unreadBodyTimeout;
    const error = new TimeoutError(
      `Cannot read the HTTP response body: its reader took nothing of it for unreadBodyTimeout (${timeout} s) while over 64 KiB of it waited unread and requests waited behind it, so the connection was closed`,
    );
    const behind = connectionReset(
      `Cannot get the HTTP response: the connection was aborted when the body of an earlier response was left unread for unreadBodyTimeout (${timeout} s); read or cancel every body`,
    );
    Object.defineProperty(behind, "cause", {
      value: error,
      configurable: true,
      writable: true,
    });
    this.#waiting.shift();
    this.#closing = true;
    // Nothing more is reported from input already received.
    this.#parser.pause();
    this.#failAll(behind);
    body.fail(error);
    this.#abort();
  }

  /**
   * While writing is paused: a write buffer smaller than when last looked
   * at is progress. Looked at before and after the requests written
   * meanwhile (writing may go on while paused), so that what they add
   * is neither progress nor hides it.
   */
  #lookAtSending(): void {
    if (this.#timing !== T_SEND) return;
    const unsent = this.#transport!.getWriteBufferSize();
    if (unsent < this.#unsent) this.#since = this.#loop!.time();
    this.#unsent = unsent;
  }

  #onParseError(error: HttpParseError): void {
    // A whole second response came after the last answer.
    if (this.#answersNothing()) {
      const at = error.message.lastIndexOf(", received ");
      this.#unsolicited = at < 0 ? "a response" : error.message.slice(at + 11);
    }
    this.#failAll(error);
    this.#abort();
  }

  #abort(): void {
    this.#closing = true;
    this.#transport?.abort();
  }

  /**
   * The error for the requests still waiting when the connection is lost:
   * those written, even in part, or those never written (queued behind a
   * streamed body, or waiting for their own to be read), which Go's
   * `http.Transport` retries whatever their method (its
   * `nothingWrittenError`).
   */
  #lostFailure(sent: boolean): Error {
    const error = connectionReset(
      !sent
        ? `Cannot get the HTTP response: ${
          this.#eof
            ? "the server closed the connection"
            : "the connection was closed"
        } before the request was sent (it waited for a streamed request body); nothing of it was written, so it can be sent again on a new connection, whatever its method`
        : !this.#eof
        ? "Cannot get the HTTP response: the connection was closed before it arrived"
        : this.#interim || this.#inFinal || !this.#reused
        ? "Cannot get the HTTP response: the server closed the connection before it arrived"
        // On a reused connection (the server may have closed it as idle
        // while the request went), Go's http.Transport retries such a
        // request on a new connection when its method is idempotent; on a
        // fresh one it does not. One connection cannot retry.
        : "Cannot get the HTTP response: the server closed the connection before it arrived (no byte of it came; an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) can be sent again on a new connection)",
    );
    if (this.#lostError !== undefined) {
      Object.defineProperty(error, "cause", {
        value: this.#lostError,
        configurable: true,
        writable: true,
      });
    }
    return error;
  }

  /**
   * Fails every request still waiting with `error`, or those never
   * written with `unsent`.
   */
  #failAll(error: Error, unsent: Error = error): void {
    const waiting = this.#waiting;
    const queued = this.#queue;
    const probing = this.#probing;
    this.#waiting = [];
    this.#queue = [];
    this.#probing = null;
    for (const pending of waiting) pending.fail(error);
    probing?.fail(unsent);
    for (const { pending } of queued) pending.fail(unsent);
  }

  // ---- Request bodies ----

  /** A request's body, sent after its head, is all written. */
  #bodySent(pending: Pending): void {
    this.#sendingStream = false;
    pending.sent = true;
    this.#retime();
    this.#sendQueued();
  }

  /** Sends the requests queued behind a body, until one waits for its own. */
  #sendQueued(): void {
    const queued = this.#queue;
    while (
      queued.length > 0 && !this.#sendingStream && this.#transport !== null
    ) queued.shift()!.send();
    // The request that asked for Connection: close may have been dropped.
    this.#closeIfLast();
  }

  /**
   * Closes the connection when a request asked for `Connection: close`
   * and nothing is left to send or answer (it was answered, or dropped
   * before it was written).
   */
  #closeIfLast(): boolean {
    if (
      !this.#lastRequestSent || this.#waiting.length > 0 ||
      this.#queue.length > 0 || this.#sendingStream
    ) return false;
    this.#closing = true;
    this.#transport?.close();
    return true;
  }

  #streamBody(
    pending: Pending,
    stream: ReadableStream<Uint8Array>,
    chunked: boolean,
    length: number,
  ): void {
    sendBodyStream(stream, {
      what: "request",
      chunked,
      length,
      // A closing transport takes no more: resumeWriting() comes as its
      // close() flushes, and the request fails at connectionLost.
      sending: () => this.#transport !== null && !this.#transport.isClosing(),
      drained: () =>
        this.#writePaused && this.#transport !== null
          ? new Promise<void>((resolve) => this.#drainWaiters.push(resolve))
          : null,
      transport: () => this.#transport!,
      finished: () => this.#bodySent(pending),
      failed: (error) => {
        // The request cannot be completed on this connection.
        const failure = error instanceof Error
          ? error
          : new Error(String(error));
        this.#failAll(failure);
        this.#abort();
      },
    });
  }
}
