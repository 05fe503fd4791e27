/**
 * `HttpServerProtocol`: an HTTP/1.1 server as a protocol, answering web
 * `Request`s with web `Response`s, so that `Deno.serve` handlers run on
 * any tulip transport unchanged.
 *
 * @module
 */

import { formatReceived } from "../futures/errors.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { TimerHandle } from "../loop/handle.ts";
import type { Transport } from "../transports/transport.ts";
import { bodyUnknown, fastStaticBody, readReadyBody } from "./_deno_body.ts";
import { connectionReset } from "./_deno_errors.ts";
import {
  BodyQueue,
  type BodyQueueOwner,
  checkSeconds,
  describe,
  sendBodyStream,
} from "./_http_body.ts";
import {
  HttpParseError,
  type HttpParserCallbacks,
  type HttpRequestHead,
  HttpRequestParser,
} from "./_http_parser.ts";
import {
  lazyRequest,
  type LazyRequestSource,
  materialize,
  unsupportedMethod,
} from "./_http_request.ts";
import { statusText } from "./_http_serialize.ts";
import { FastResponses } from "./_fast_response.ts";
import {
  connectionLine,
  DateLine,
  plainResponse,
  planResponse,
} from "./_response_head.ts";
import { Protocol } from "../protocols/protocol.ts";
import { PeerLog } from "../protocols/peer_log.ts";
import {
  checkOptions,
  checkpointsTaken,
  CONNECTION_LOG,
  noteAwaitParked,
  requestMicrotaskCheckpoint,
} from "../futures/_runtime.ts";

/** The second argument of an {@linkcode HttpHandler}, as `Deno.serve` gives. */
export interface HttpServeInfo {
  /** The client's address: the transport's `"peername"`. */
  readonly remoteAddr: Deno.Addr | undefined;
  /**
   * Resolves when the exchange is over: the response fully handed to the
   * transport, or the connection lost. It never rejects.
   */
  readonly completed: Promise<void>;
}

/**
 * A request handler: the same shape as `Deno.serve`'s, so the same
 * function serves both.
 *
 * @param request The request; its body is a stream that reads from the
 * connection as the handler reads it.
 * @param info The client's address and a promise of the exchange's end.
 * @returns The response, or a promise of it.
 */
export type HttpHandler = (
  request: Request,
  info: HttpServeInfo,
) => Response | PromiseLike<Response>;

/** Options for {@linkcode HttpServerProtocol}. */
export interface HttpServerProtocolOptions {
  /**
   * How long, in seconds, a connection may sit idle — from the end of one
   * response (or the connection's start) to the first byte of the next
   * request — before the server closes it. Time the server itself spends
   * (handling a request, waiting for its answer to be read) does not
   * count. `Infinity` never closes.
   *
   * @default {5}
   */
  keepAliveTimeout?: number;
  /**
   * How long, in seconds, a request head may take to arrive, from its
   * first byte to its empty line. Over it the server answers 408 and
   * closes. `Infinity` waits for ever.
   *
   * @default {60}
   */
  headersTimeout?: number;
  /**
   * How long, in seconds, a whole request (head and body) may take to
   * arrive, from its first byte; time the server spends not reading (its
   * handler not reading the body, its answers not read) does not count.
   * Over it the server answers 408 (or, when the response has started,
   * closes) and the handler's read of the body fails. `Infinity` waits for
   * ever.
   *
   * @default {300}
   */
  requestTimeout?: number;
  /**
   * How long, in seconds, the server's unsent answer may make no progress
   * — the transport's write buffer not shrinking because the client does
   * not read — before the connection is aborted (its buffer dropped).
   * `Infinity` waits for ever.
   *
   * @default {60}
   */
  writeTimeout?: number;
  /**
   * How many requests one connection may carry; the response to the last
   * one says `Connection: close`.
   *
   * @default {Infinity}
   */
  maxRequestsPerConnection?: number;
  /**
   * The most bytes a request head may take (request line, header lines,
   * the empty line). Over it the server answers 431.
   *
   * @default {16384}
   */
  maxHeaderBytes?: number;
  /**
   * The most header fields a request may have. Over it: 431.
   *
   * @default {100}
   */
  maxHeaders?: number;
  /**
   * The most body bytes a request may have, or `Infinity`. Over it: 413
   * (at once for a `Content-Length` over it; for a chunked body, the
   * handler's read of the body fails and the response is 413 unless the
   * handler answered otherwise).
   *
   * @default {16777216}
   */
  maxBodyBytes?: number;
  /**
   * The most bytes the request line, or a chunk-size line of a chunked
   * body, may have. Over it: 414 (400 for a chunk-size line).
   *
   * @default {8192}
   */
  maxLineBytes?: number;
  /**
   * The most bytes of chunk extensions a chunked request body may have in
   * all. Over it the handler's read of the body fails and the answer is
   * 413 (as for `maxBodyBytes`).
   *
   * @default {16384}
   */
  maxChunkExtensionBytes?: number;
  /**
   * The scheme of the request URLs the handler sees: `"https"` when the
   * transport is TLS.
   *
   * @default {"http"}
   */
  scheme?: "http" | "https";
  /**
   * The loop whose timers and exception handler the protocol uses.
   *
   * @default {the running loop when the connection is made}
   */
  loop?: SchedulingLoop;
}

const ENCODER = new TextEncoder();
/**
 * Deno's `Response` global is a getter that loads the class on first use;
 * read it once (each request would otherwise call the getter).
 */
const WebResponse = Response;
/** Why the transport is paused, as bits: reading resumes when none is left. */
const PAUSE_PARSER = 1;
const PAUSE_BODY = 2;
const PAUSE_WRITE = 4;
/**
 * Input held by the paused parser above which the transport is paused:
 * small, because what is held pins the read chunks it lies in, and a
 * client that pipelines faster than it is answered holds them across
 * several turns of the loop, long enough for V8 to promote them (100
 * such clients left ~50 MiB of chunks to the next full collection).
 */
const HELD_LIMIT = 4 * 1024;
/** How many times the connection's ticker ticks per shortest timeout. */
const TICKS = 8;
/**
 * How long, in seconds, a closing connection keeps reading (and dropping)
 * what the client still sends once its answers are all handed to the
 * system, so that closing does not reset the connection and destroy
 * answers the client has not read yet.
 */
const LINGER = 2;
const CONTINUE = ENCODER.encode("HTTP/1.1 100 Continue\r\n\r\n");
/** The body of a request without content (a `Request` copies it). */
const NO_CONTENT = new Uint8Array(0);
/**
 * The most bytes of a request body the server still reads and drops once
 * the response is sent without the handler having read it all, to keep
 * the connection (as Go's `net/http`). A body with more left closes the
 * connection instead: the response says `Connection: close` when the
 * server knows it then (a `Content-Length` body, a response held in
 * memory); a chunked body not finished within it closes after the answer.
 */
const DISCARD_LIMIT = 256 * 1024;

function formatAddr(addr: unknown): string {
  const a = addr as { hostname?: string; port?: number } | undefined;
  if (a?.hostname === undefined) return "localhost";
  const host = a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname;
  return a.port === undefined ? host : `${host}:${a.port}`;
}

/** A timeout in ticks of `period` seconds, rounded up; `Infinity` stays. */
function inTicks(timeout: number, period: number): number {
  return timeout === Infinity ? Infinity : Math.ceil(timeout / period - 1e-9);
}

/**
 * What the requests of one connection make their URLs from, and the last
 * URL made: pipelined and kept-alive requests mostly repeat a target, and
 * finding the target and `Host` the same as bytes skips decoding the header
 * section and parsing the URL.
 */
class UrlMemo {
  /** `"http://"` or `"https://"`. */
  readonly scheme: string;
  /** The scheme and local address, for requests without a `Host`. */
  localBase = "http://localhost";
  /** The last URL's target and `Host` (`HttpRequestHead.targetKey()`). */
  key: Uint8Array | null = null;
  /** The last URL, normalized. */
  href = "";

  constructor(scheme: string) {
    this.scheme = scheme;
  }
}

/** One request and its response. */
class Exchange implements LazyRequestSource {
  readonly head: HttpRequestHead;
  readonly body: BodyQueue | null;
  readonly #urls: UrlMemo;
  keepAlive: boolean;
  /** The parser reported the end of the request. */
  requestDone = false;
  /** A response is being written (the handler answered). */
  responding = false;
  /** The response head was handed to the transport. */
  headSent = false;
  /** The whole response was handed to the transport. */
  responseDone = false;
  continueSent = false;
  /**
   * Body bytes still read and dropped after the response before the
   * connection closes instead ({@linkcode DISCARD_LIMIT}); -1 while the
   * body is not being dropped.
   */
  discardLeft = -1;
  /** The connection was lost during the exchange. */
  lost: Error | null = null;
  /** The client closed its side (EOF) before the response was sent. */
  peerClosed: Error | null = null;
  parseError: HttpParseError | null = null;
  /** Why `request.signal` aborts (the first of these), once it does. */
  abortedBy: Error | null = null;
  abort: AbortController | null = null;
  completed: PromiseWithResolvers<void> | null = null;
  lazyReal: Request | null = null;

  constructor(
    head: HttpRequestHead,
    urls: UrlMemo,
    keepAlive: boolean,
    body: BodyQueue | null,
  ) {
    this.head = head;
    this.#urls = urls;
    this.keepAlive = keepAlive;
    this.body = body;
  }

  get method(): string {
    return this.head.method;
  }

  get url(): string {
    const head = this.head;
    const form = head.targetForm;
    if (form === "absolute") return head.target;
    const host = head.host;
    const urls = this.#urls;
    const base = host === "" ? urls.localBase : urls.scheme + host;
    return base + (form === "asterisk" ? "/*" : head.target);
  }

  href(): string {
    const urls = this.#urls;
    const head = this.head;
    if (urls.key !== null && head.sameTarget(urls.key)) return urls.href;
    const href = new URL(this.url).href;
    urls.key = head.targetKey();
    urls.href = href;
    return href;
  }

  get headers(): Array<[string, string]> {
    return this.head.headers.pairs;
  }

  bodyStream(): ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null {
    const method = this.head.method;
    // `new Request()` refuses a body on GET and HEAD; such a body is
    // read and dropped.
    if (method === "GET" || method === "HEAD") return null;
    // No content, however framed (none, `Content-Length: 0`): an empty
    // body, as a chunked `0` gives and as Deno.serve gives every method
    // but GET and HEAD.
    return this.body?.stream() ?? NO_CONTENT;
  }

  signal(): AbortSignal {
    const abort = this.abort ??= new AbortController();
    if (this.abortedBy !== null) abortRequest(abort, this.abortedBy);
    return abort.signal;
  }

  /**
   * Aborts `request.signal` for `why`, now or when the handler first reads
   * it: either way it says the same.
   */
  abortSignal(why: Error): void {
    this.abortedBy ??= why;
    if (this.abort !== null) abortRequest(this.abort, this.abortedBy);
  }

  /** The exchange is over: settle `completed`. */
  settle(): void {
    this.completed?.resolve();
  }

  // The request is a proxy of this object, and consoles inspect a proxy's
  // target: show the request.
  [Symbol.for("Deno.customInspect")](
    inspect: (value: unknown, options: unknown) => string,
    options: unknown,
  ): string {
    return inspect(materialize(this), options);
  }
}

/** The `info` argument of a handler. */
class ServeInfo implements HttpServeInfo {
  readonly #exchange: Exchange;
  readonly #remoteAddr: Deno.Addr | undefined;
  /** The connection's peer log, for a handler that reports (see `_runtime.ts`). */
  readonly [CONNECTION_LOG]: PeerLog;

  constructor(
    exchange: Exchange,
    remoteAddr: Deno.Addr | undefined,
    log: PeerLog,
  ) {
    this.#exchange = exchange;
    this.#remoteAddr = remoteAddr;
    this[CONNECTION_LOG] = log;
  }

  get remoteAddr(): Deno.Addr | undefined {
    return this.#remoteAddr;
  }

  get completed(): Promise<void> {
    const ex = this.#exchange;
    if (ex.completed === null) {
      ex.completed = Promise.withResolvers<void>();
      if (ex.responseDone || ex.lost !== null) ex.completed.resolve();
    }
    return ex.completed.promise;
  }
}

/**
 * An HTTP/1.1 server protocol: one instance per connection, answering each
 * request by calling `handler` with a web `Request` and sending the
 * `Response` it returns, as `Deno.serve` does.
 *
 * Use it with `loop.createServer(() => new HttpServerProtocol(handler),
 * host, port)`, or over any other stream transport.
 *
 * Requests:
 *
 * - Keep-alive and pipelining: requests on a connection are answered one
 *   at a time, in order. After a request the parser waits until its
 *   response is written before it reads the next one (pipelined requests
 *   wait in the parser; above 4 KiB of them the transport is paused).
 *   While the transport's write buffer is over its high-water mark (the
 *   client is not reading its answers) no further request is handled and
 *   nothing is read, so a client that pipelines and never reads costs one
 *   read buffer plus the high-water mark.
 * - The request's body is a `ReadableStream` fed from the connection as
 *   the handler reads it, with `Content-Length` or chunked framing. Above
 *   64 KiB unread the transport is paused until the handler reads. A body
 *   the handler leaves unread is read and dropped after the response, up
 *   to 256 KiB, so the connection stays usable (as Go's `net/http` does);
 *   with more of it left the connection closes after the response, which
 *   says `Connection: close` when the server knows it then (the body's
 *   `Content-Length` leaves more than 256 KiB to come when a response held
 *   in memory is sent; a chunked body closes once past the bound). Read
 *   after the response was sent, a dropped body fails. A body the handler
 *   cancels is not read further until it answers. A body on GET or HEAD is
 *   dropped the same way (`new Request()` refuses one); any other request
 *   has a body, empty when it has no content (no framing,
 *   `Content-Length: 0`), as under `Deno.serve`. Each piece it reads is
 *   the handler's own: it may keep, change or transfer its buffer
 *   (`postMessage()` with a transfer list, a byte stream's `enqueue()`)
 *   without touching the next request or the connection.
 * - `Expect: 100-continue`: the `100 Continue` goes out when the handler
 *   first reads the body (whether or not the body already arrived, so the
 *   answer never depends on how the bytes were cut), or just before a
 *   streamed response head (its stream may be the request body). If the
 *   handler answers otherwise without reading the body, no `100` is sent
 *   and the connection closes after the response, since the client may or
 *   may not send the body then.
 * - The `Request` is made lazily: until the handler uses more than
 *   `method`, `url` and `signal`, it is a stand-in (a `Proxy`) that makes
 *   the real one on first use and forwards everything to it — `instanceof
 *   Request`, `new Request(request)` and `fetch(request)` all work. The
 *   request head is decoded to text only when the handler reads it too (a
 *   handler that never looks at the request costs nothing for it); until
 *   then the request holds the bytes it arrived in, a view of the
 *   connection's read buffer of at most 64 KiB.
 * - `request.signal` is aborted when the connection is lost before the
 *   response is written, or the client closes its side (its EOF) before
 *   the response is sent: a closed client looks like a half-closed one
 *   until a write to it fails, so the handler is told, as Go cancels the
 *   request's context; the answer still goes out. Its reason is an
 *   `AbortError` `DOMException`, as under `Deno.serve`, whose `cause` is
 *   the error that says why. Copies of the request (`clone()`, `new
 *   Request(request)`, `fetch(request)`) follow it. The handler's second
 *   argument gives the client's address (`remoteAddr`) and a `completed`
 *   promise, as `Deno.serve`'s `info` does.
 * - Malformed or over-limit requests are answered with 400, 413, 414,
 *   431, 501 or 505 and a plain-text reason, then the connection is
 *   closed. Conflicting `Content-Length` / `Transfer-Encoding` fields are
 *   rejected (no request smuggling); so are a bad `Host`, a request-target
 *   with a byte RFC 3986 does not allow there (a `\` in the path, which
 *   the URL would read as `/`; a `#`), and `CONNECT`, `TRACE` and
 *   `TRACK` in any case, which a web `Request` cannot carry (501), nor a
 *   method it would respell: methods are case-sensitive, and `get` (or
 *   `Head`, `post`…) would reach the handler as `GET` (501). Equal
 *   `Content-Length` values repeated (`3, 3`) reach the handler as one.
 *
 * Responses:
 *
 * - A body held in memory (a string, bytes, JSON…) is sent with
 *   `Content-Length`, head and body in one write; a `ReadableStream` body
 *   is sent chunked as it is produced (to an HTTP/1.0 client: until the
 *   connection closes), waiting while the transport's write buffer is over
 *   its high-water mark — or, when the handler gives it a valid
 *   `Content-Length` (a file's size, say), by that length, as `Deno.serve`
 *   does. Every response gets a `Date` header unless it has
 *   one. A HEAD response keeps the headers, `Content-Length` included,
 *   without the body. The handler's `Transfer-Encoding`, `Connection` and
 *   `Keep-Alive` fields, and its `Content-Length` except on a stream, a
 *   HEAD or a 304 answer, are replaced by the server's own framing (whose
 *   `Connection` lists `upgrade` when the response has an `Upgrade` field,
 *   as RFC 9110 §7.8 asks).
 * - `Connection: close` is honoured both ways: from the request, or from
 *   the handler's response. HTTP/1.0 clients get keep-alive only when they
 *   ask for it.
 * - If the handler throws, rejects or returns something other than a
 *   `Response`, the loop's exception handler is told and the client gets
 *   500 (or the parse error's status, when reading a malformed or late
 *   body made the handler fail: that is the client's doing and is not
 *   reported). If a streamed body fails midway (or is longer or shorter
 *   than a length it declared) the error is reported and the connection
 *   closes without the body's end, which tells the client the response is
 *   cut. A client must not be able to make the server log more than it
 *   sent: only the first failure of a connection is reported in full, the
 *   others are counted and reported as one line when it closes, and the
 *   log stays within what the clients sent plus a reserve the loop's
 *   servers share (see `PeerLog`).
 *
 * Limits and timeouts (each an option; over a limit the client gets an
 * answer or loses its connection, never the server):
 *
 * | Limit | Default | Exceeded |
 * | --- | --- | --- |
 * | `keepAliveTimeout`: idle, from a response's end (or the connection's start) to a request's first byte | 5 s | closed |
 * | `headersTimeout`: a head, from its first byte to its end | 60 s | 408, closed |
 * | `requestTimeout`: a whole request, head and body, from its first byte | 300 s | 408 (or cut, if the response began), closed |
 * | `writeTimeout`: the unsent answer not shrinking (the client not reading) | 60 s | aborted |
 * | `maxLineBytes`: the request line (a chunk-size line) | 8 KiB | 414 (400), closed |
 * | `maxHeaderBytes`: the head | 16 KiB | 431, closed |
 * | `maxHeaders`: header fields | 100 | 431, closed |
 * | `maxBodyBytes`: a body | 16 MiB | 413, closed |
 * | `maxChunkExtensionBytes`: chunk extensions, per body | 16 KiB | 413, closed |
 * | `maxRequestsPerConnection` | unlimited | the last answer says `Connection: close` |
 * | pipelined input held unparsed | 4 KiB | reading paused |
 * | unread request body | 64 KiB | reading paused until the handler reads |
 * | request body left unread when the response is sent | 256 KiB, read and dropped | closed after the response |
 * | write buffer (the transport's high-water mark) | 64 KiB | no request handled, nothing read, until it drains |
 *
 * The timeouts measure the client's silence, not the server's: the
 * keep-alive, head and request clocks stand still while the server does
 * not read (its answers unread, or a body its handler has not read yet)
 * or is answering. One coarse timer per connection (`loop.callLater`)
 * ticks eight times per shortest timeout and checks them all, so that
 * requests cost no timer work; a timeout fires at most an eighth of the
 * shortest timeout late, never early.
 *
 * Closing: every close the server decides (`Connection: close`, an error
 * answer, a timeout, shutdown) is a "lingering close", as in Go and nginx:
 * the answers are sent, the sending side is shut (`writeEof()`), what the
 * client still sends is read and dropped until it closes too or for 2
 * seconds after the answers left, and only then is the connection closed.
 * Closing a TCP socket with bytes unread makes the system reset the
 * connection, which would destroy answers the client has not read yet.
 * At server shutdown (`Server.shutdown()`, which calls
 * {@linkcode HttpServerProtocol.serverClosing}) an idle connection closes
 * at once and a busy one answers its request with `Connection: close`.
 *
 * PEP 3156: the HTTP server the PEP promises among the ready-made
 * protocols ("decent though not necessarily excellent").
 *
 * @example Answering over an in-memory connection
 * ```ts
 * import { HttpClientProtocol, HttpServerProtocol } from "@tulip/tulip/http";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const server = new HttpServerProtocol(
 *   (request) => new Response(`Hello from ${new URL(request.url).pathname}`),
 *   { loop },
 * );
 * const client = new HttpClientProtocol({ loop });
 * transportPair(client, server, { loop });
 * await loop.advance(0);
 * const response = await loop.runUntilComplete(
 *   client.request(new Request("http://example.com/docs")),
 * );
 * assertEquals(response.status, 200);
 * assertEquals(await loop.runUntilComplete(response.text()), "Hello from /docs");
 * client.close();
 * await loop.advance(0);
 * loop.close();
 * ```
 *
 * @example Serving on a TCP port
 * ```ts ignore
 * import { HttpServerProtocol } from "@tulip/tulip/http";
 * import { newEventLoop } from "@tulip/tulip/loop";
 *
 * const loop = newEventLoop();
 * const server = await loop.runUntilComplete(loop.createServer(
 *   () => new HttpServerProtocol(() => new Response("Hello, World!")),
 *   "127.0.0.1",
 *   8000,
 * ));
 * await loop.runUntilComplete(server.serveForever());
 * ```
 */
export class HttpServerProtocol extends Protocol {
  readonly #handler: HttpHandler;
  readonly #parser: HttpRequestParser;
  readonly #keepAliveTimeout: number;
  readonly #maxRequests: number;
  readonly #urls: UrlMemo;
  #loop: SchedulingLoop | null;
  #transport: Transport | null = null;
  #remoteAddr: Deno.Addr | undefined = undefined;
  #current: Exchange | null = null;
  /**
   * The exchange whose answer waits for a promise, if any: its handler's,
   * or (without Deno's internals) its response body being read.
   */
  #awaited: Exchange | null = null;
  /**
   * While this connection's pipelined requests are answered from one
   * handler's promise to the next, in microtasks: the loop's checkpoint
   * count when it was asked to let them run before its next callback;
   * -1 otherwise (see #chain()).
   */
  #chainAt = -1;
  #requests = 0;
  #readPause = 0;
  #writePaused = false;
  #drainWaiters: Array<() => void> = [];
  /** Cancels the response body being streamed, if any. */
  #stopStream: ((reason: unknown) => void) | null = null;
  /** No more requests will be read: the connection closes when done. */
  #closing = false;
  #lingering = false;
  #eof = false;
  #lost = false;
  /** Idle periods begun so far (each exchange's end begins one). */
  #idlePeriods = 0;
  // The ticker: one coarse timer per connection checks every timeout (see
  // #tick). The limits are in ticks of #period seconds; each watched
  // state has the key it was seen with at the last tick (-1: not in it)
  // and the ticks counted in it since.
  readonly #period: number;
  readonly #idleLimit: number;
  readonly #headLimit: number;
  readonly #requestLimit: number;
  readonly #writeLimit: number;
  #ticker: TimerHandle | null = null;
  #idleKey = -1;
  #idleTicks = 0;
  #headKey = -1;
  #headTicks = 0;
  #requestKey = -1;
  #requestTicks = 0;
  #lastBuffered = 0;
  #stallTicks = 0;
  /** `#resumeRequests` is scheduled. */
  #resumeScheduled = false;
  /** The lingering close waits for the write buffer to empty. */
  #lingerFlushing = false;
  // The last fast response, reused while nothing in it changes.
  readonly #fast = new FastResponses();
  #date: DateLine | null = null;
  #lingerTimer: TimerHandle | null = null;
  readonly #bodyOwner: BodyQueueOwner;
  // Reports: the first failure of a connection is reported, later ones
  // counted and summed up at the end, within what the client sent.
  readonly #log: PeerLog;

  /**
   * Makes the protocol of one connection.
   *
   * @param handler Called with each request; returns the response.
   * @param options Timeouts, limits, scheme and loop.
   * @throws {TypeError} When `handler` is not a function, `options` not an
   * object, its `loop` no event loop, or a timeout not a number.
   * @throws {RangeError} When a timeout or limit is out of range, or
   * `scheme` is neither `"http"` nor `"https"`.
   */
  constructor(handler: HttpHandler, options?: HttpServerProtocolOptions) {
    super();
    if (typeof handler !== "function") {
      throw new TypeError(
        `Cannot make an HttpServerProtocol: handler must be a function, received ${
          describe(handler)
        }`,
      );
    }
    checkOptions(
      options,
      "make an HttpServerProtocol",
      "{ keepAliveTimeout, maxBodyBytes, … }",
    );
    this.#handler = handler;
    const keepAlive = this.#keepAliveTimeout = checkSeconds(
      "make an HttpServerProtocol",
      "keepAliveTimeout",
      options?.keepAliveTimeout ?? 5,
    );
    const headers = checkSeconds(
      "make an HttpServerProtocol",
      "headersTimeout",
      options?.headersTimeout ?? 60,
    );
    const request = checkSeconds(
      "make an HttpServerProtocol",
      "requestTimeout",
      options?.requestTimeout ?? 300,
    );
    const write = checkSeconds(
      "make an HttpServerProtocol",
      "writeTimeout",
      options?.writeTimeout ?? 60,
    );
    const period = this.#period = Math.min(keepAlive, headers, request, write) /
      TICKS;
    this.#idleLimit = inTicks(keepAlive, period);
    this.#headLimit = inTicks(headers, period);
    this.#requestLimit = inTicks(request, period);
    this.#writeLimit = inTicks(write, period);
    const max = options?.maxRequestsPerConnection ?? Infinity;
    if (
      typeof max !== "number" ||
      !(max === Infinity || (Number.isSafeInteger(max) && max >= 1))
    ) {
      throw new RangeError(
        `Cannot make an HttpServerProtocol: maxRequestsPerConnection must be a whole number >= 1 or Infinity, received ${
          formatReceived(max)
        }`,
      );
    }
    this.#maxRequests = max;
    const scheme = options?.scheme ?? "http";
    if (scheme !== "http" && scheme !== "https") {
      throw new RangeError(
        `Cannot make an HttpServerProtocol: scheme must be "http" or "https", received ${
          formatReceived(scheme)
        }`,
      );
    }
    this.#urls = new UrlMemo(scheme + "://");
    this.#loop = options?.loop ?? null;
    this.#log = new PeerLog({ loop: options?.loop });
    const callbacks: HttpParserCallbacks<HttpRequestHead> = {
      onHead: (head) => this.#onHead(head),
      onBody: (chunk, own) => this.#onBody(chunk, own),
      onMessageComplete: () => this.#onMessageComplete(),
      onError: (error) => this.#onParseError(error),
    };
    this.#parser = new HttpRequestParser(callbacks, {
      maxHeaderBytes: options?.maxHeaderBytes,
      maxHeaders: options?.maxHeaders,
      maxBodyBytes: options?.maxBodyBytes,
      maxLineBytes: options?.maxLineBytes,
      maxChunkExtensionBytes: options?.maxChunkExtensionBytes,
    });
    this.#bodyOwner = {
      pauseBody: () => this.#pauseRead(PAUSE_BODY),
      resumeBody: () => this.#resumeRead(PAUSE_BODY),
      firstRead: () => this.#sendContinue(),
      bodyCancelled: () => {
        // Read no more of an unwanted body while the handler works: once
        // it answers, the rest is dropped (up to DISCARD_LIMIT) or the
        // connection closes.
        const ex = this.#current;
        if (ex !== null && !ex.requestDone && !ex.responseDone) {
          this.#pauseRead(PAUSE_BODY);
        }
      },
    };
  }

  /** How many requests this connection has received. */
  get requestCount(): number {
    return this.#requests;
  }

  /**
   * Keeps the transport and starts the idle timer.
   *
   * @param transport The connection's transport.
   */
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    this.#loop ??= getRunningLoop();
    this.#remoteAddr = transport.getExtraInfo("peername") as
      | Deno.Addr
      | undefined;
    this.#urls.localBase = this.#urls.scheme +
      formatAddr(transport.getExtraInfo("sockname"));
    this.#becomeIdle();
    const loop = this.#loop;
    if (this.#period !== Infinity && loop !== null) {
      this.#ticker = loop.callLater(this.#period, this.#tick);
    }
    // The server began shutting down before the connection was made.
    if (this.#closing) this.#closeGracefully();
  }

  /**
   * Parses the bytes; complete request heads call the handler.
   *
   * @param data The bytes received.
   */
  override dataReceived(data: Uint8Array): void {
    this.#log.received(data.length);
    if (this.#lingering) return;
    const parser = this.#parser;
    const before = this.#requests;
    parser.feed(data);
    if (parser.paused && parser.bufferedBytes > HELD_LIMIT) {
      this.#pauseRead(PAUSE_PARSER);
    }
    if (this.#requests !== before) this.#chain();
  }

  /**
   * Called after parsing outside a handler's promise, when it called the
   * handler: if that handler's promise is pending and pipelined requests
   * wait behind it, they are answered one after the other in microtasks,
   * each from the previous one's promise. The loop is asked to let them
   * run before its next callback (the next connection's read, above all),
   * as it lets a resumed task run: otherwise the connections served in
   * one turn of the loop answer in lockstep, every one with an exchange
   * alive at once, and the objects that V8's scavenges find alive add up
   * (ten times as many bytes with 100 pipelining clients). A handler
   * still pending from an earlier turn is not waited for again.
   */
  #chain(): void {
    if (
      this.#chainAt < 0 && this.#awaited !== null &&
      this.#parser.bufferedBytes > 0
    ) {
      requestMicrotaskCheckpoint();
      this.#chainAt = checkpointsTaken();
    }
  }

  /**
   * After a promise an answer waited for settled: unless the answer or
   * the next pipelined request's waits for another, this connection's
   * requests stop for now, and the loop may go on (unless it already took
   * its checkpoint, which cleared the request).
   */
  #chainStep(): void {
    if (this.#awaited !== null) return;
    if (checkpointsTaken() === this.#chainAt) noteAwaitParked();
    this.#chainAt = -1;
  }

  /**
   * The client will send nothing more: the response in progress (and any
   * to requests already received) is still sent, then the connection
   * closes. The `request.signal` of each request not yet answered aborts.
   *
   * @returns `true` while a response is still to be written (to the
   *   request in progress, or to those held unparsed meanwhile).
   */
  override eofReceived(): boolean {
    this.#eof = true;
    if (this.#lingering) return false;
    const ex = this.#current;
    if (ex !== null) this.#peerClosed(ex);
    this.#parser.feedEof();
    // A paused parser between requests holds requests received while
    // writing was paused, or parses them in a callback already scheduled:
    // #nextRequest() closes once they are answered.
    return this.#current !== null || this.#parser.paused;
  }

  /**
   * Ends the exchange in progress: its request body fails and its
   * `request.signal` aborts; timers stop.
   *
   * @param exc The error that ended the connection, if any.
   */
  override connectionLost(exc?: Error): void {
    this.#lost = true;
    this.#closing = true;
    this.#ticker?.cancel();
    this.#ticker = null;
    this.#lingerTimer?.cancel();
    this.#lingerTimer = null;
    const ex = this.#current;
    this.#current = null;
    if (ex !== null) {
      const error = exc ??
        connectionReset(
          "Cannot finish the HTTP exchange: the connection was closed",
        );
      ex.lost = error;
      ex.body?.fail(error);
      ex.abortSignal(error);
      ex.settle();
      // A streamed body waiting on its producer: tell it now, not at a
      // next chunk that may never come.
      const stop = this.#stopStream;
      this.#stopStream = null;
      stop?.(error);
    }
    this.#wakeWriters();
    this.#log.close("HTTP connection", { protocol: this });
    this.#transport = null;
  }

  /**
   * The transport's buffer is over its high-water mark: stop reading, and
   * handle no further pipelined request, until it drains.
   */
  override pauseWriting(): void {
    this.#writePaused = true;
    this.#pauseRead(PAUSE_WRITE);
  }

  /**
   * The transport's buffer drained: go on writing, reading and handling
   * pipelined requests.
   */
  override resumeWriting(): void {
    this.#writePaused = false;
    this.#wakeWriters();
    this.#resumeRead(PAUSE_WRITE);
    if (this.#current !== null || this.#transport === null) return;
    if (this.#closing) {
      // Shutting down: the requests held meanwhile are not answered.
      this.#closeGracefully();
    } else if (
      this.#parser.paused && !this.#resumeScheduled && this.#loop !== null
    ) {
      // Not from inside the transport's write completion: the next
      // handler's writes would run inside it.
      this.#resumeScheduled = true;
      this.#loop.callSoon(this.#resumeRequests);
    }
  }

  /**
   * Tells the protocol its server is shutting down: an idle connection
   * closes at once; a busy one finishes the request in progress (and one
   * whose head has begun to arrive), answering with `Connection: close`,
   * then closes. Pipelined requests not yet begun are not answered; the
   * `Connection: close` tells the client to send them again elsewhere.
   *
   * Called by the server's `shutdown()`.
   *
   * @example Closing an idle connection at shutdown
   * ```ts
   * import { HttpServerProtocol } from "@tulip/tulip/http";
   * import { Protocol } from "@tulip/tulip/protocols";
   * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
   * import { assert } from "@std/assert";
   *
   * const loop = new VirtualTimeLoop();
   * const server = new HttpServerProtocol(() => new Response("hi"), { loop });
   * let eof = false;
   * const client = new (class extends Protocol {
   *   override eofReceived() {
   *     eof = true;
   *     return false;
   *   }
   * })();
   * transportPair(client, server, { loop });
   * await loop.advance(0);
   * server.serverClosing();
   * await loop.advance(0);
   * assert(eof);
   * loop.close();
   * ```
   */
  serverClosing(): void {
    if (this.#lost) return;
    this.#closing = true;
    if (this.#transport === null) return;
    const parser = this.#parser;
    // Between requests: the requests held while the client was not
    // reading are not answered either.
    if (this.#current === null && (parser.idle || parser.paused)) {
      this.#closeGracefully();
    }
  }

  // ---- Requests ----

  /** The client closed its side before `ex` was answered: its signal aborts. */
  #peerClosed(ex: Exchange): void {
    if (ex.responseDone || ex.peerClosed !== null) return;
    ex.peerClosed = connectionReset(
      "Cannot finish the HTTP exchange: the client closed its side of the connection",
    );
    ex.abortSignal(ex.peerClosed);
  }

  #onHead(head: HttpRequestHead): void {
    const n = ++this.#requests;
    const keepAlive = head.keepAlive && n < this.#maxRequests &&
      !this.#closing;
    const body = head.bodyKind === "none" ? null : new BodyQueue(
      this.#bodyOwner,
    );
    let reject = 0;
    let why = "";
    const method = head.method;
    const form = head.targetForm;
    const unsupported = unsupportedMethod(method);
    if (unsupported !== null) {
      reject = 501;
      why = unsupported;
    } else if (
      form === "other" || (form === "asterisk" && method !== "OPTIONS")
    ) {
      reject = 400;
      why = "the request-target is not a path or an absolute URL";
    }
    const ex = new Exchange(
      head,
      this.#urls,
      keepAlive,
      body,
    );
    this.#current = ex;
    if (this.#eof) this.#peerClosed(ex);
    if (reject !== 0) {
      ex.keepAlive = false;
      ex.responding = true;
      this.#sendPlain(
        ex,
        reject,
        `${statusText(reject)}: Cannot serve the HTTP request: ${why}`,
      );
      return;
    }
    let result: Response | PromiseLike<Response>;
    try {
      result = this.#handler(
        lazyRequest(ex),
        new ServeInfo(ex, this.#remoteAddr, this.#log),
      );
    } catch (error) {
      this.#handlerFailed(ex, error);
      return;
    }
    if (result instanceof WebResponse) {
      this.#respond(ex, result);
    } else if (
      result !== null && typeof result === "object" &&
      typeof (result as PromiseLike<Response>).then === "function"
    ) {
      this.#awaited = ex;
      (result as PromiseLike<Response>).then(
        (response) => {
          if (this.#awaited === ex) this.#awaited = null;
          this.#respond(ex, response);
          if (this.#chainAt >= 0) this.#chainStep();
        },
        (error) => {
          if (this.#awaited === ex) this.#awaited = null;
          this.#handlerFailed(ex, error);
          if (this.#chainAt >= 0) this.#chainStep();
        },
      );
    } else {
      this.#handlerFailed(
        ex,
        new TypeError(
          `Cannot answer the HTTP request: the handler must return a Response or a promise of one, received ${
            describe(result)
          }`,
        ),
      );
    }
  }

  #onBody(chunk: Uint8Array, own: boolean): void {
    const ex = this.#current;
    if (ex === null || ex.body === null) return;
    const left = ex.discardLeft;
    if (left < 0) ex.body.push(chunk, own);
    else if ((ex.discardLeft = left - chunk.length) < 0) {
      // Answered, and the body goes on past what is dropped to keep the
      // connection: close it (the answer is sent first).
      this.#closeNow();
    }
  }

  #onMessageComplete(): void {
    const ex = this.#current;
    if (ex === null) return;
    ex.requestDone = true;
    ex.body?.end();
    if (ex.responseDone) this.#exchangeDone(ex);
    else this.#parser.pause();
  }

  #onParseError(error: HttpParseError): void {
    const ex = this.#current;
    this.#closing = true;
    if (ex !== null) {
      // The body of the request in progress is malformed: its reader
      // fails, the response (if any) says Connection: close.
      ex.parseError = error;
      ex.body?.fail(error);
      if (ex.responseDone) this.#closeNow();
      return;
    }
    if (this.#eof || this.#transport === null) {
      this.#closeNow();
      return;
    }
    const status = error.status;
    this.#transport.writelines(
      plainResponse(
        status,
        `${statusText(status)}: ${error.message}`,
        this.#dates().line(),
        connectionLine(false, 1),
      ),
    );
    this.#linger();
  }

  /**
   * Sends `100 Continue` when the handler first reads an expecting body —
   * even if the body already arrived, so that the answer does not depend
   * on how the bytes were cut.
   */
  #sendContinue(): void {
    const ex = this.#current;
    if (
      ex === null || !ex.head.expectContinue || ex.continueSent ||
      ex.headSent || this.#transport === null
    ) return;
    ex.continueSent = true;
    this.#transport.write(CONTINUE);
  }

  // ---- Responses ----

  #respond(ex: Exchange, response: Response): void {
    if (ex !== this.#current || ex.responding) {
      // The connection was lost, or the exchange already answered (500
      // after a throw): drop the response.
      if (response instanceof WebResponse && !response.bodyUsed) {
        response.body?.cancel().catch(() => {});
      }
      return;
    }
    if (!(response instanceof WebResponse)) {
      this.#handlerFailed(
        ex,
        new TypeError(
          `Cannot answer the HTTP request: the handler must return a Response, received ${
            describe(response)
          }`,
        ),
      );
      return;
    }
    ex.responding = true;
    try {
      const fast = fastStaticBody(response);
      if (fast !== null && this.#sendFast(ex, response, fast)) return;
      if (
        bodyUnknown(response) &&
        (ex.body === null || response.body !== ex.body.streamMade)
      ) {
        // Without Deno's internals: a body held in memory is known by
        // being ready at once, and goes with its length too (the request
        // body, echoed, is a stream).
        this.#awaited = ex;
        readReadyBody(response.body!).then((body) => {
          if (this.#awaited === ex) this.#awaited = null;
          this.#sendRead(ex, response, body);
          if (this.#chainAt >= 0) this.#chainStep();
        });
        return;
      }
      this.#sendResponse(ex, response);
    } catch (error) {
      this.#sendFailed(ex, error);
    }
  }

  /** Sends a response whose body `readReadyBody()` took. */
  #sendRead(
    ex: Exchange,
    response: Response,
    body: Uint8Array | ReadableStream<Uint8Array>,
  ): void {
    if (ex !== this.#current || this.#transport === null) {
      if (body instanceof ReadableStream) body.cancel().catch(() => {});
      return;
    }
    try {
      this.#sendResponse(ex, response, body);
    } catch (error) {
      this.#sendFailed(ex, error);
    }
  }

  /** Sending the response failed: cut it, or answer 500 if not begun. */
  #sendFailed(ex: Exchange, error: unknown): void {
    if (ex.headSent) {
      this.#report("HTTP response failed", error);
      this.#closing = true;
      this.#parser.pause();
      this.#transport?.close();
    } else {
      ex.responding = false;
      this.#handlerFailed(ex, error);
    }
  }

  /**
   * Whether the connection may carry another request after `ex`, answered
   * now with a body held in memory, or with a stream (`streaming`: the
   * handler may still read the request body meanwhile).
   */
  #keepAliveFor(ex: Exchange, streaming = false): boolean {
    if (!ex.keepAlive || this.#closing) return false;
    // The rest of an unread body is dropped after the answer, up to
    // DISCARD_LIMIT: past it the connection closes, and says so now.
    if (
      !streaming && ex.body !== null && !ex.requestDone &&
      this.#parser.bodyRemaining > DISCARD_LIMIT
    ) return false;
    // The client waits for a 100 that never came: it may or may not send
    // the body now, so the connection cannot be trusted — unless the
    // framing says there is no body to send.
    return ex.requestDone || !ex.head.expectContinue || ex.continueSent ||
      ex.head.bodyKind === "none";
  }

  /** The loop's date line, found on first use. */
  #dates(): DateLine {
    return this.#date ??= DateLine.of(this.#loop);
  }

  /**
   * Sends a 200 response with a body in memory and at most a
   * Content-Type, in one write. Returns `false` when the content type
   * needs the general path.
   */
  #sendFast(
    ex: Exchange,
    response: Response,
    body: string | Uint8Array,
  ): boolean {
    const keepAlive = this.#keepAliveFor(ex);
    const out = this.#fast.encode(
      response,
      body,
      ex.head.method !== "HEAD",
      this.#dates().line(),
      connectionLine(keepAlive, ex.head.versionMinor),
    );
    if (out === null) return false;
    ex.headSent = true;
    if (out instanceof Uint8Array) this.#transport!.write(out);
    else this.#transport!.writelines(out);
    this.#responseFinished(ex, keepAlive);
    return true;
  }

  /** Sends any response: framing picked from what the body is. */
  #sendResponse(
    ex: Exchange,
    response: Response,
    body?: Uint8Array | ReadableStream<Uint8Array>,
  ): void {
    const plan = planResponse(response, {
      body,
      request: ex.head,
      keepAlive: (streaming) => this.#keepAliveFor(ex, streaming),
      // The stream may be made from the request body: let it come.
      beforeStream: () => this.#sendContinue(),
      date: this.#dates().value(),
    });
    const transport = this.#transport!;
    ex.headSent = true;
    if (plan.data !== null && plan.data.length > 0) {
      transport.writelines([plan.head, plan.data]);
    } else transport.write(plan.head);
    if (plan.stream === null) this.#responseFinished(ex, plan.keepAlive);
    else {
      this.#streamBody(
        ex,
        plan.stream,
        plan.chunked,
        plan.length,
        plan.keepAlive,
      );
    }
  }

  /** Sends a streamed body, waiting while the write buffer is full. */
  #streamBody(
    ex: Exchange,
    stream: ReadableStream<Uint8Array>,
    chunked: boolean,
    length: number,
    keepAlive: boolean,
  ): void {
    sendBodyStream(stream, {
      what: "response",
      chunked,
      length,
      sending: () => ex === this.#current,
      drained: () =>
        this.#writePaused && ex === this.#current
          ? new Promise<void>((resolve) => this.#drainWaiters.push(resolve))
          : null,
      transport: () => this.#transport!,
      stoppable: (stop) => {
        this.#stopStream = stop;
      },
      finished: () => {
        this.#stopStream = null;
        this.#responseFinished(ex, keepAlive);
      },
      failed: (error) => {
        this.#stopStream = null;
        if (ex !== this.#current) return;
        // The head is out: the response cannot be completed or replaced.
        // Closing without the end of the body tells the client so.
        this.#report("HTTP response body failed", error);
        this.#closing = true;
        this.#parser.pause();
        this.#transport?.close();
      },
    });
  }

  /** Answers with a short plain-text response. */
  #sendPlain(ex: Exchange, status: number, text: string): void {
    const keepAlive = this.#keepAliveFor(ex);
    const [head, body] = plainResponse(
      status,
      text,
      this.#dates().line(),
      connectionLine(keepAlive, ex.head.versionMinor),
    );
    ex.headSent = true;
    if (ex.head.method === "HEAD") this.#transport!.write(head);
    else this.#transport!.writelines([head, body]);
    this.#responseFinished(ex, keepAlive);
  }

  #handlerFailed(ex: Exchange, error: unknown): void {
    // A CancelledError too: no task waits here to receive it, and the
    // client still needs an answer. A request found malformed or late
    // fails the handler's read of its body: that is the client's doing,
    // answered with its status, not the handler's failure.
    if (ex.parseError === null) this.#report("HTTP handler failed", error);
    if (ex !== this.#current || ex.responding) return;
    ex.responding = true;
    const parseError = ex.parseError;
    if (parseError === null) this.#sendPlain(ex, 500, statusText(500));
    else {
      const status = parseError.status;
      this.#sendPlain(
        ex,
        status,
        `${statusText(status)}: ${parseError.message}`,
      );
    }
  }

  #responseFinished(ex: Exchange, keepAlive: boolean): void {
    ex.keepAlive = keepAlive;
    ex.responseDone = true;
    ex.settle();
    if (ex !== this.#current) return;
    if (!keepAlive) this.#closing = true;
    // Reading was paused for the handler (a body cancelled, or waiting
    // unread): the rest is dropped now, or the connection closes.
    this.#resumeRead(PAUSE_BODY);
    if (ex.requestDone) {
      // What the handler left unread of the body is dropped: held, it
      // kept reading paused for good when it passed the high-water mark.
      ex.body?.discard(
        connectionReset(
          "Cannot read the HTTP request body: the response was already sent",
        ),
      );
      this.#exchangeDone(ex);
    } else if (ex.body !== null) {
      if (this.#closing || this.#parser.bodyRemaining > DISCARD_LIMIT) {
        // Too much of the body is left to read it for nothing, or the
        // connection closes anyway (the body turned out malformed while
        // a streamed answer went out, the server shuts down).
        this.#closeNow();
      } else {
        // The rest of the request body is read and dropped, up to
        // DISCARD_LIMIT bytes (a chunked body may go on past it).
        ex.discardLeft = DISCARD_LIMIT;
        ex.body.discard(
          connectionReset(
            "Cannot read the HTTP request body: the response was already sent",
          ),
        );
      }
    }
    // Else the request (without a body) completes at once, in the parser.
  }

  /** The exchange is over: close, or go on to the next request. */
  #exchangeDone(ex: Exchange): void {
    if (this.#current !== ex) return;
    this.#current = null;
    if (this.#transport === null) return;
    if (this.#closing) {
      this.#parser.pause();
      this.#closeNow();
      return;
    }
    this.#becomeIdle();
    if (this.#writePaused) {
      // The client is not reading the answers: handle no pipelined
      // request until it does (resumeWriting()).
      this.#parser.pause();
      return;
    }
    this.#nextRequest();
  }

  readonly #resumeRequests = (): void => {
    this.#resumeScheduled = false;
    if (
      this.#current === null && !this.#writePaused && !this.#closing &&
      this.#transport !== null
    ) {
      const before = this.#requests;
      this.#nextRequest();
      if (this.#requests !== before) this.#chain();
    }
  };

  /** Parses the requests held meanwhile, and reads again. */
  #nextRequest(): void {
    const parser = this.#parser;
    if (parser.paused) {
      this.#resumeRead(PAUSE_PARSER);
      parser.resume();
    }
    if (this.#eof && this.#current === null) this.#closeNow();
  }

  // ---- Connection ----

  #closeNow(): void {
    this.#current = null;
    this.#closeGracefully();
  }

  /**
   * Closes without cutting an answer: closing a TCP socket that has
   * received bytes it did not read makes the system reset the connection,
   * which destroys answers the client has not read yet. So, as Go's and
   * nginx's "lingering close": half-close once the answers are sent, drop
   * what the client still sends, and close once it stops (EOF) or
   * `LINGER` seconds after the write buffer emptied. A client that stops
   * reading meanwhile is aborted by the write timeout.
   */
  #closeGracefully(): void {
    const transport = this.#transport;
    this.#closing = true;
    if (transport === null || this.#lingering) return;
    this.#parser.pause();
    if (this.#eof || !transport.canWriteEof()) {
      // The client sent its EOF: nothing of it is left unread.
      transport.close();
      return;
    }
    this.#linger();
  }

  /**
   * After an error reply or at a graceful close: half-close, drop what
   * the client still sends, close once it stops (EOF) or `LINGER` seconds
   * after the answers are sent.
   */
  #linger(): void {
    const transport = this.#transport!;
    this.#lingering = true;
    this.#closing = true;
    if (!transport.canWriteEof()) {
      transport.close();
      return;
    }
    transport.writeEof();
    this.#readPause = 0;
    transport.resumeReading();
    this.#lingerFlushing = true;
    this.#lingerTimer = this.#loop!.callLater(
      Math.min(LINGER, this.#period * TICKS),
      this.#lingerTick,
    );
  }

  readonly #lingerTick = (): void => {
    this.#lingerTimer = null;
    const transport = this.#transport;
    if (transport === null) return;
    const wait = Math.min(LINGER, this.#period * TICKS);
    if (transport.getWriteBufferSize() > 0) {
      // Still sending: the linger starts once all is handed over.
      this.#lingerTimer = this.#loop!.callLater(wait, this.#lingerTick);
    } else if (this.#lingerFlushing) {
      this.#lingerFlushing = false;
      this.#lingerTimer = this.#loop!.callLater(wait, this.#lingerTick);
    } else {
      transport.close();
    }
  };

  #pauseRead(reason: number): void {
    const before = this.#readPause;
    this.#readPause = before | reason;
    if (before === 0 && this.#transport !== null && !this.#lingering) {
      this.#transport.pauseReading();
    }
  }

  #resumeRead(reason: number): void {
    const before = this.#readPause;
    if ((before & reason) === 0) return;
    this.#readPause = before & ~reason;
    if (this.#readPause === 0 && this.#transport !== null) {
      this.#transport.resumeReading();
    }
  }

  #wakeWriters(): void {
    const waiters = this.#drainWaiters;
    if (waiters.length === 0) return;
    this.#drainWaiters = [];
    for (const wake of waiters) wake();
  }

  #becomeIdle(): void {
    this.#idlePeriods++;
  }

  // The ticker ticks TICKS times per shortest timeout for the whole life
  // of the connection, so that requests cost no timer work and no clock
  // reading. Each tick looks at what the connection waits for and counts
  // ticks per state; a state seen with a new key (a new idle period, a new
  // request) starts counting from 0, so a timeout fires between its
  // length and one tick (an eighth of the shortest timeout) later, never
  // early. Only the peer's silence is counted: the keep-alive, head and
  // request clocks stand still while the server is not reading (paused by
  // back-pressure or by an unread request body) or is answering.
  readonly #tick = (): void => {
    this.#ticker = null;
    const transport = this.#transport;
    if (this.#lost || transport === null) return;
    this.#ticker = this.#loop!.callLater(this.#period, this.#tick);
    // Writing: the buffer has not shrunk since the last tick.
    const buffered = transport.getWriteBufferSize();
    if (buffered > 0 && buffered >= this.#lastBuffered) {
      if (this.#lastBuffered > 0 && ++this.#stallTicks >= this.#writeLimit) {
        transport.abort();
        return;
      }
    } else this.#stallTicks = 0;
    this.#lastBuffered = buffered;
    if (this.#lingering) return;
    const reading = this.#readPause === 0;
    const ex = this.#current;
    // Idle: waiting for the first byte of a request.
    const idle = ex === null && buffered === 0 && reading &&
      !this.#closing && this.#parser.idle;
    if (!idle) this.#idleKey = -1;
    else if (this.#idleKey !== this.#idlePeriods) {
      this.#idleKey = this.#idlePeriods;
      this.#idleTicks = 0;
    } else if (++this.#idleTicks >= this.#idleLimit) {
      // Nothing to send and nothing unread: a plain close, at once.
      this.#closing = true;
      transport.close();
      return;
    }
    // A request arriving: its head (no exchange yet), or its body.
    const n = ex === null
      ? (idle || this.#parser.idle ? -1 : this.#requests + 1)
      : ex.requestDone || ex.body === null
      ? -1
      : this.#requests;
    if (n !== this.#requestKey) {
      this.#requestKey = n;
      this.#requestTicks = 0;
    } else if (n !== -1 && reading) {
      if (++this.#requestTicks >= this.#requestLimit) {
        this.#timedOut(ex, "requestTimeout", this.#requestLimit);
        return;
      }
    }
    const head = ex === null ? n : -1;
    if (head !== this.#headKey) {
      this.#headKey = head;
      this.#headTicks = 0;
    } else if (head !== -1 && reading) {
      if (++this.#headTicks >= this.#headLimit) {
        this.#timedOut(null, "headersTimeout", this.#headLimit);
      }
    }
  };

  /** A request took too long to arrive: 408, then close. */
  #timedOut(ex: Exchange | null, option: string, ticks: number): void {
    const error = new HttpParseError(
      408,
      `Cannot read the HTTP request: it took longer than ${option} (${
        Math.round(ticks * this.#period * 1000) / 1000
      } s)`,
    );
    this.#closing = true;
    if (ex === null) {
      this.#parser.pause();
      this.#onParseError(error);
      return;
    }
    ex.parseError = error;
    ex.body?.fail(error);
    ex.abortSignal(error);
    if (!ex.responding) {
      ex.responding = true;
      this.#sendPlain(ex, 408, `${statusText(408)}: ${error.message}`);
    } else if (ex.responseDone) {
      this.#closeNow();
    } else {
      // The response has begun and cannot be replaced: cut it.
      this.#parser.pause();
      this.#transport?.close();
    }
  }

  /**
   * Reports a failure a client may cause again and again: the first of a
   * connection in full, the rest counted and summed up at its end.
   */
  #report(message: string, exception: unknown): void {
    this.#log.report("failures", {
      message,
      exception,
      protocol: this,
      transport: this.#transport ?? undefined,
    });
  }
}

/**
 * Aborts a request's signal as `Deno.serve` does, with a `DOMException`
 * named `AbortError` (so `fetch(url, { signal: request.signal })` fails as
 * an abort, as under `Deno.serve`), whose `cause` says why.
 */
function abortRequest(abort: AbortController, why: Error): void {
  if (abort.signal.aborted) return;
  const reason = new DOMException(why.message, "AbortError");
  Object.defineProperty(reason, "cause", { value: why, configurable: true });
  abort.abort(reason);
}
