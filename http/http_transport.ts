/**
 * `HttpTransport`: HTTP used as a transport — writes become request
 * bodies and response bodies become received data — so that any protocol
 * runs over HTTP (PEP 3153's stacking example).
 *
 * @module
 */

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import {
  FlowControlledTransport,
  WriteFlowControl,
} from "../transports/flow_control.ts";
import { concatBytes } from "../transports/write_buffer.ts";
import type { Transport } from "../transports/transport.ts";
import {
  checkWriteData,
  gatherWriteData,
  refuseWrite,
} from "../transports/write_checks.ts";
import { describe } from "./_http_body.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import type { HttpClientProtocol } from "./http_client_protocol.ts";
import { type BaseProtocol, Protocol } from "../protocols/protocol.ts";
import { deliverData } from "../protocols/deliver_data.ts";
import type { EventLoop } from "../loop/event_loop.ts";
import { checkLoopOption } from "../futures/_runtime.ts";

/** Options for {@linkcode HttpTransport}. */
export interface HttpTransportOptions {
  /** The request-target of every request: a path such as `"/rpc"`. */
  path: string;
  /**
   * The method of every request; one that carries a body.
   *
   * @default {"POST"}
   */
  method?: string;
  /**
   * Header fields added to every request, such as a `Content-Type`.
   *
   * @default {{}}
   */
  headers?: HeadersInit;
  /**
   * The `Host` of the requests (and authority of their URL).
   *
   * @default {the client connection's peer address}
   */
  host?: string;
  /**
   * How writes map to requests. `false`: each `write()` (or
   * `writelines()`) is one request, so a protocol that writes one message
   * at a time sends one message per request — what a JSON-RPC endpoint
   * expects. `true`: all writes made before the loop's next iteration are
   * joined into one request (fewer requests for a plain byte stream).
   *
   * @default {false}
   */
  coalesce?: boolean;
  /**
   * The loop that delivers data and runs flow-control callbacks.
   *
   * @default {the running loop}
   */
  loop?: SchedulingLoop;
}

function formatAddr(addr: unknown): string | undefined {
  const a = addr as { hostname?: string; port?: number } | undefined;
  if (a?.hostname === undefined) return undefined;
  const host = a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname;
  return a.port === undefined ? host : `${host}:${a.port}`;
}

/** A request sent and the bytes it carried. */
interface InFlight {
  future: Future<Response>;
  size: number;
}

/**
 * A `Transport` made of HTTP requests on an {@linkcode HttpClientProtocol}:
 * what the protocol writes is sent as request bodies (POST by default, to
 * `path`), and the bodies of the responses are handed to the protocol's
 * `dataReceived`, in order. It gives PEP 3153's stack: TCP → HTTP client
 * → `HttpTransport` → any protocol (such as `JsonRpcProtocol` with
 * `framing: "raw"`) → the application.
 *
 * Wiring: make the transport, `setProtocol(protocol)`, then call
 * `protocol.connectionMade(transport)` yourself — the HTTP connection
 * already exists, so there is nothing to wait for.
 *
 * - Batching: by default each `write()` or `writelines()` call is one
 *   request (message boundaries are kept, as a JSON-RPC server over HTTP
 *   needs: one message per POST). With `coalesce: true`, every write made
 *   before the loop's next iteration goes into one request. Requests are
 *   pipelined on the client's connection.
 * - Reading: response bodies are delivered as they stream in, in request
 *   order, through the loop (`callSoon`). A 204 or an empty body delivers
 *   nothing. A status outside 200–299 means the bytes were not accepted:
 *   the transport fails and `connectionLost` gets an error naming the
 *   status. `pauseReading()` stops delivery (and reading of the current
 *   body, so the HTTP connection's own flow control takes over) until
 *   `resumeReading()`; paused for longer than the client's
 *   `unreadBodyTimeout` with over 64 KiB of a body unread and a request
 *   behind it, the transport is lost with the client's connection.
 * - Writing: the write buffer counts the bytes of requests not yet
 *   answered in full; above the high-water mark (64 KiB by default) the
 *   protocol's `pauseWriting()` is called, as with any transport.
 *   Producers are supported.
 * - Ending: `close()` sends what is batched, drops the responses still to
 *   come, and calls `connectionLost(undefined)` once every request is
 *   answered. `writeEof()` sends what is batched and refuses further
 *   writes; once every response is delivered the protocol gets
 *   `eofReceived()` then `connectionLost(undefined)`. `abort()` drops
 *   everything and calls `connectionLost(undefined)` at once (next
 *   iteration). The HTTP client is not closed by any of them; if its
 *   connection is lost (or the server closes it, say after its keep-alive
 *   timeout), this transport is lost too, with the client's error.
 * - `getExtraInfo("url")` is the URL requests go to; other names are
 *   answered from the client's transport (`"peername"`, `"sockname"`, …).
 *
 * PEP 3153: stacking a protocol on HTTP used as a transport. PEP 3156:
 * `Transport`.
 *
 * @example JSON-RPC over HTTP over an in-memory connection
 * ```ts
 * import { HttpClientProtocol, HttpServerProtocol, HttpTransport } from "@tulip/tulip/http";
 * import { jsonRpcHttpHandler, JsonRpcProtocol } from "@tulip/tulip/jsonrpc";
 * import { transportPair, VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const server = new HttpServerProtocol(
 *   jsonRpcHttpHandler({ add: ([a, b]: number[]) => a + b }, { loop }),
 *   { loop },
 * );
 * const http = new HttpClientProtocol({ loop });
 * transportPair(http, server, { loop });
 * await loop.advance(0);
 * const transport = new HttpTransport(http, { path: "/rpc", loop });
 * const rpc = new JsonRpcProtocol({}, { loop, framing: "raw" });
 * transport.setProtocol(rpc);
 * rpc.connectionMade(transport);
 * assertEquals(await loop.runUntilComplete(rpc.call("add", [2, 3])), 5);
 * transport.close();
 * http.close();
 * await loop.advance(0);
 * loop.close();
 * ```
 */
export class HttpTransport extends FlowControlledTransport
  implements Transport {
  readonly #client: HttpClientProtocol;
  readonly #loop: SchedulingLoop;
  readonly #url: string;
  readonly #method: string;
  readonly #headers: Array<[string, string]>;
  readonly #coalesce: boolean;
  readonly #flow: WriteFlowControl;
  #protocol: BaseProtocol = new Protocol();
  // Writing.
  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  #flushScheduled = false;
  #inflight: InFlight[] = [];
  #size = 0;
  // Reading.
  #reading = true;
  #incoming: Uint8Array[] = [];
  #drainScheduled = false;
  #pumping = false;
  #resume: (() => void) | null = null;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  // Ending: closing (close() called), eof (writeEof() called), dead (no
  // more I/O: aborted, failed or finished), lost (connectionLost
  // scheduled).
  #closing = false;
  #eof = false;
  #dead = false;
  #lost = false;
  #lostDelivered = false;
  #failedWith: Error | undefined = undefined;

  /**
   * Makes a transport over an HTTP client that is connected.
   *
   * @param client The HTTP client; its connection carries the requests.
   * @param options The path, method, headers, host, batching and loop.
   * @throws {TypeError} When `client` has no `request()`, `path` is not a
   * string starting with `/`, `method` is not a string, `headers` is
   * invalid, or `loop` is no event loop.
   * @throws {RangeError} When `method` is GET or HEAD (no request body).
   * @throws {InvalidStateError} When no loop is given and none is running.
   */
  constructor(client: HttpClientProtocol, options: HttpTransportOptions) {
    super();
    if (typeof (client as { request?: unknown })?.request !== "function") {
      throw new TypeError(
        `Cannot make an HttpTransport: client must be an HttpClientProtocol, received ${
          describe(client)
        }`,
      );
    }
    const path = options?.path;
    if (typeof path !== "string" || !path.startsWith("/")) {
      throw new TypeError(
        `Cannot make an HttpTransport: path must be a string starting with "/", received ${
          typeof path === "string" ? JSON.stringify(path) : describe(path)
        }`,
      );
    }
    const method = options.method ?? "POST";
    if (typeof method !== "string") {
      throw new TypeError(
        `Cannot make an HttpTransport: method must be a string, received ${
          formatReceived(method)
        }`,
      );
    }
    const upper = method.toUpperCase();
    if (upper === "GET" || upper === "HEAD") {
      throw new RangeError(
        `Cannot make an HttpTransport: method must allow a request body, received ${
          formatReceived(method)
        }`,
      );
    }
    this.#client = client;
    checkLoopOption(options.loop, "make an HttpTransport");
    const loop = options.loop ?? getRunningLoop() as EventLoop | null;
    if (loop === null) {
      throw new InvalidStateError(
        "Cannot make an HttpTransport: no event loop is running, received loop=undefined",
      );
    }
    this.#loop = loop as EventLoop;
    this.#method = method;
    this.#headers = [...new Headers(options.headers)];
    this.#coalesce = options.coalesce ?? false;
    const host = options.host ??
      formatAddr(client.transport?.getExtraInfo("peername")) ?? "localhost";
    // A bad host or path throws a TypeError now rather than at each write.
    this.#url = new URL(`http://${host}${path}`).href;
    this.#flow = new WriteFlowControl(this.#loop, this);
    client.waitClosed().addDoneCallback(() => this.#clientClosed());
  }

  /**
   * Returns the flow control the water-mark and producer methods act on.
   *
   * @returns The transport's flow control.
   */
  protected override flowControl(): WriteFlowControl {
    return this.#flow;
  }

  // ---- BaseTransport ----

  /**
   * Returns `"url"`, the URL requests go to; other information from the
   * HTTP client's transport.
   *
   * @param name The name of the information, such as `"url"` or
   * `"peername"`.
   * @param defaultValue Returned when there is no such information.
   * @returns The information.
   */
  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    if (name === "url") return this.#url;
    const transport = this.#client.transport;
    return transport === null
      ? defaultValue
      : transport.getExtraInfo(name, defaultValue);
  }

  /**
   * Sends what is batched, drops the responses still to come, and calls
   * `connectionLost(undefined)` once every request is answered.
   */
  close(): void {
    if (this.#closing || this.#dead) return;
    this.#closing = true;
    // No more writes: the producer stops, but the protocol still hears
    // resumeWriting() as the requests are answered, until connectionLost.
    this.#flow.endWrites();
    this.#incoming = [];
    this.#flush();
    this.#wakePump();
    this.#maybeFinish();
  }

  /**
   * Returns `true` once closing or closed.
   *
   * @returns Whether the transport is closing.
   */
  isClosing(): boolean {
    return this.#closing || this.#dead;
  }

  /**
   * Sets the protocol that receives the data.
   *
   * @param protocol The protocol.
   */
  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol;
  }

  /**
   * Returns the protocol.
   *
   * @returns The current protocol.
   */
  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  // ---- ReadTransport ----

  /** Stops delivering response bodies until `resumeReading()`. */
  pauseReading(): void {
    if (this.#closing || this.#dead) return;
    this.#reading = false;
  }

  /** Resumes delivery. */
  resumeReading(): void {
    if (this.#closing || this.#dead || this.#reading) return;
    this.#reading = true;
    this.#scheduleDrain();
    this.#wakePump();
  }

  /**
   * Returns `true` while delivering data.
   *
   * @returns Whether reading is on.
   */
  isReading(): boolean {
    return this.#reading && !this.#closing && !this.#dead;
  }

  // ---- WriteTransport ----

  /**
   * Sends `data` as (part of) a request body; see the batching rule.
   *
   * @param data The bytes.
   * @throws {TypeError} When `data` is not a `Uint8Array`.
   * @throws {InvalidStateError} After `writeEof()` or `close()`.
   */
  write(data: Uint8Array): void {
    checkWriteData(data);
    if (!this.#checkWritable("write") || data.length === 0) return;
    this.#add(data);
  }

  /**
   * Sends the buffers as one write.
   *
   * @param list The buffers.
   * @throws {TypeError} When an item is not a `Uint8Array`.
   * @throws {InvalidStateError} After `writeEof()` or `close()`.
   */
  writelines(list: Iterable<Uint8Array>): void {
    const data = gatherWriteData(list);
    if (!this.#checkWritable("writelines") || data.length === 0) return;
    this.#add(data);
  }

  /**
   * Sends what is batched and refuses further writes; after the last
   * response the protocol gets `eofReceived()`, then `connectionLost()`.
   */
  writeEof(): void {
    if (this.#closing || this.#dead || this.#eof) return;
    this.#eof = true;
    this.#flow.endWrites();
    this.#flush();
    this.#maybeFinish();
  }

  /**
   * Returns `true`: the end of writing is supported.
   *
   * @returns `true`.
   */
  canWriteEof(): boolean {
    return true;
  }

  /** Drops everything; `connectionLost(undefined)` follows. */
  abort(): void {
    this.#die(undefined);
  }

  /**
   * Returns the bytes written whose requests are not answered in full.
   *
   * @returns The count, in bytes.
   */
  getWriteBufferSize(): number {
    return this.#size;
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    const state = this.#lost || this.#dead
      ? "closed"
      : this.#closing
      ? "closing"
      : "open";
    return `HttpTransport ${state}`;
  }

  // ---- Writing ----

  #checkWritable(what: string): boolean {
    if (this.#eof) refuseWrite(what, true);
    if (this.#closing || this.#dead) {
      // Failed, connectionLost not yet delivered: dropped quietly, as
      // asyncio does; otherwise refused, as by every transport.
      if (this.#failedWith !== undefined && !this.#lostDelivered) {
        return false;
      }
      refuseWrite(what, false);
    }
    return true;
  }

  #add(data: Uint8Array): void {
    this.#size += data.length;
    if (this.#coalesce) {
      this.#batch.push(data);
      this.#batchBytes += data.length;
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        this.#loop.callSoon(() => {
          this.#flushScheduled = false;
          this.#flush();
        });
      }
    } else {
      this.#send(data);
    }
    this.#flow.update(this.#size);
  }

  #flush(): void {
    if (this.#batchBytes === 0 || this.#dead) return;
    const body = concatBytes(this.#batch, this.#batchBytes);
    this.#batch = [];
    this.#batchBytes = 0;
    this.#send(body);
  }

  #send(body: Uint8Array): void {
    let future: Future<Response>;
    try {
      future = this.#client.request(
        new Request(this.#url, {
          method: this.#method,
          headers: this.#headers,
          body: body as Uint8Array<ArrayBuffer>,
        }),
      );
    } catch (error) {
      this.#die(error as Error);
      return;
    }
    this.#inflight.push({ future, size: body.length });
    if (!this.#pumping) this.#pump();
  }

  // ---- Reading ----

  /** Reads the responses in order, delivering their bodies. */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#inflight.length > 0 && !this.#dead) {
        const item = this.#inflight[0];
        const response = await item.future;
        if (this.#dead) {
          response.body?.cancel().catch(() => {});
          return;
        }
        if (response.status < 200 || response.status > 299) {
          response.body?.cancel().catch(() => {});
          throw new Error(
            `Cannot deliver the HTTP response: the server answered ${response.status} ${response.statusText}, received status ${response.status}`,
          );
        }
        const body = response.body;
        if (body !== null) {
          const reader = this.#reader = body.getReader();
          for (;;) {
            // Paused: wait, unless the connection is gone, whose end (or
            // error) the protocol must hear even while it reads nothing.
            if (
              !this.#reading && !this.#closing && !this.#dead &&
              this.#client.transport !== null
            ) {
              await new Promise<void>((resolve) => this.#resume = resolve);
            }
            if (this.#dead) {
              await reader.cancel();
              return;
            }
            const { done, value } = await reader.read();
            if (done) break;
            if (!this.#closing && !this.#dead) this.#deliver(value);
          }
          this.#reader = null;
          if (this.#dead) return;
        }
        this.#inflight.shift();
        this.#size -= item.size;
        this.#flow.update(this.#size);
      }
    } catch (error) {
      this.#die(error as Error);
      return;
    } finally {
      this.#pumping = false;
    }
    this.#maybeFinish();
  }

  #wakePump(): void {
    const resume = this.#resume;
    this.#resume = null;
    resume?.();
  }

  #deliver(data: Uint8Array): void {
    this.#incoming.push(data);
    this.#scheduleDrain();
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled || this.#incoming.length === 0) return;
    this.#drainScheduled = true;
    this.#loop.callSoon(() => this.#drain());
  }

  #drain(): void {
    this.#drainScheduled = false;
    const incoming = this.#incoming;
    while (
      incoming.length > 0 && this.#reading && !this.#closing && !this.#dead
    ) {
      const data = incoming.shift()!;
      // A BufferedProtocol gets the bytes in its own buffer.
      let exception: unknown;
      let call = "";
      const delivered = deliverData(this.#protocol, data, (error, failed) => {
        exception = error;
        call = failed;
      });
      if (!delivered) {
        this.#loop.callExceptionHandler({
          message: `Fatal error: protocol.${call}() call failed`,
          exception,
          transport: this,
          protocol: this.#protocol,
        });
        this.#die(exception as Error);
        return;
      }
    }
    this.#maybeFinish();
  }

  // ---- Ending ----

  /** Ends the transport once nothing is left to send or deliver. */
  #maybeFinish(): void {
    if (this.#dead) return;
    const gone = this.#client.transport === null;
    if (!this.#closing && !this.#eof && !gone) return;
    if (
      this.#inflight.length > 0 || this.#batchBytes > 0 ||
      this.#incoming.length > 0 || this.#drainScheduled
    ) return;
    const eof = this.#eof && !this.#closing;
    this.#dead = true;
    this.#flow.close();
    this.#loop.callSoon(() => {
      if (eof) {
        try {
          (this.#protocol as Protocol).eofReceived();
        } catch (exception) {
          this.#loop.callExceptionHandler({
            message: "Fatal error: protocol.eofReceived() call failed",
            exception,
            transport: this,
            protocol: this.#protocol,
          });
        }
      }
      this.#notifyLost(undefined);
    });
  }

  /** Stops all I/O at once; `connectionLost(error)` is scheduled. */
  #die(error: Error | undefined): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#failedWith = error;
    this.#flow.close();
    this.#batch = [];
    this.#batchBytes = 0;
    this.#incoming = [];
    this.#size = 0;
    const reader = this.#reader;
    this.#reader = null;
    reader?.cancel().catch(() => {});
    // Responses still to come are not wanted.
    for (const { future } of this.#inflight.splice(0)) {
      future.addDoneCallback((f) => {
        if (!f.cancelled() && f.exception() === undefined) {
          f.result().body?.cancel().catch(() => {});
        }
      });
    }
    this.#wakePump();
    this.#loop.callSoon(() => this.#notifyLost(error));
  }

  #notifyLost(error: Error | undefined): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#lostDelivered = true;
    try {
      this.#protocol.connectionLost(error);
    } catch (exception) {
      this.#loop.callExceptionHandler({
        message: "Exception in protocol.connectionLost()",
        exception,
        transport: this,
        protocol: this.#protocol,
      });
    }
  }

  /**
   * The client's connection ended: once the responses already received
   * are delivered, the transport is lost too. Requests still in flight
   * fail on their own, with the client's error.
   */
  #clientClosed(): void {
    this.#wakePump();
    this.#maybeFinish();
  }
}
