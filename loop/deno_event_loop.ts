/**
 * `DenoEventLoop`: the event loop with I/O on Deno's sockets, TLS,
 * datagrams, subprocesses, signals and workers.
 *
 * @module
 */

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type {
  BaseProtocol,
  BufferedProtocol,
  DatagramProtocol,
  Protocol,
  SubprocessProtocol,
} from "../protocols/protocol.ts";
import type {
  DatagramTransport,
  ReadTransport,
  SubprocessTransport,
  Transport,
  WriteTransport,
} from "../transports/transport.ts";
import { BaseEventLoop } from "./base_event_loop.ts";
import type {
  AddrInfo,
  CreateConnectionOptions,
  CreateServerOptions,
  DatagramEndpointOptions,
  Executor,
  GetaddrinfoOptions,
  Server,
  StartTlsOptions,
  SubprocessOptions,
} from "./event_loop.ts";
import { checkHandle, Handle } from "./_handle.ts";
import { WorkerExecutor } from "./worker_executor.ts";
import {
  cancelQueuedJob,
  checkExecutor,
  checkExecutorFn,
} from "./_executor_jobs.ts";
import { checkSignalName, SignalHandlers } from "./_deno_signals.ts";
import {
  checkAddrinfoArgs,
  checkUnixPath,
} from "../transports/address_checks.ts";
import {
  checkNameinfoArgs,
  connectReadPipe,
  connectWritePipe,
  createDatagramEndpoint,
  DenoProactor,
  DenoSockets,
  nameinfo,
  openConnection,
  openServer,
  resolveHost,
  startTls,
  subprocessExec,
  subprocessShell,
  watchFuture,
} from "../transports/_deno_io.ts";
import type { DenoIo, StreamContext } from "../transports/_deno_io.ts";

/**
 * The default event loop on Deno.
 *
 * PEP 3156: the default event loop implementation.
 *
 * @example
 * ```ts
 * import { DenoEventLoop } from "@tulip/tulip/loop";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new DenoEventLoop();
 * assertEquals(await loop.runUntilComplete(Promise.resolve(1)), 1);
 * loop.close();
 * ```
 */
export class DenoEventLoop extends BaseEventLoop {
  // ---- Streams: TCP, TLS, Unix sockets, servers ----

  #streams: StreamContext | null = null;

  /**
   * Opens a TCP connection to `host:port` (TLS with `ssl`), makes the
   * protocol, and calls its `connectionMade(transport)`.
   *
   * The transport keeps one read in flight while reading is on: small
   * reads while the connection waits, large ones while data streams in. A
   * `BufferedProtocol` is read into directly (`getBuffer()` /
   * `bufferUpdated()`). Writes never block: `write()` starts sending at
   * once or queues; over the high-water mark (64 KiB by default) the
   * protocol's `pauseWriting()` is called, and `resumeWriting()` once the
   * buffer drains to the low one. `writeEof()` half-closes (TCP, TLS and
   * Unix sockets all can); `close()` flushes then closes; `abort()` drops
   * the buffer. `connectionLost` is called exactly once, after the
   * connection is fully closed. `getExtraInfo()` knows `"peername"`,
   * `"sockname"` (`Deno.NetAddr`) and `"socket"` (a view with
   * `setNoDelay()`, `setKeepAlive()`, `ref()`, `unref()`); Deno does not
   * expose the peer's certificate, so there is no `"peercert"`. Nagle's
   * algorithm is off (`TCP_NODELAY`), as in asyncio.
   *
   * With `ssl: true` the server's certificate is checked against the
   * system's roots, with `ssl: { caCerts }` against those too, and its name
   * against `serverHostname` (default: `host`). The handshake completes
   * before the future is done, so a bad certificate fails the call; a
   * server that has not finished it within `ssl.handshakeTimeout` seconds
   * (60 by default) fails it with `TimeoutError`, and the connection is
   * closed: its resource goes at once (nothing trips
   * `--sanitize-resources`, nothing keeps the process alive), but Deno's
   * TLS keeps the TCP socket open in a handshake task of its own until the
   * server answers or hangs up, so the server sees no close until then
   * (see the `ssl` option; a server side, or an upgrade over the loopback
   * relay, frees its socket at once).
   * Deno cannot bind before connecting, so a `localAddr` is checked
   * against the address the system chose: a mismatch (any specific port,
   * for one) closes the connection and fails the call with
   * `Deno.errors.NotSupported`.
   * Cancelling the future abandons the attempt and closes the connection.
   *
   * PEP 3156: `loop.create_connection()`.
   *
   * @typeParam P The protocol type.
   * @param protocolFactory Makes the protocol, once connected.
   * @param host The host name or address.
   * @param port The port.
   * @param options `ssl` (`caCerts`, `handshakeTimeout` in seconds),
   * `serverHostname` and `localAddr`.
   * @returns A future of `[transport, protocol]`, done after
   * `connectionMade`; it fails with Deno's error (such as
   * `Deno.errors.ConnectionRefused`) and a message naming `host:port`, or
   * with `TimeoutError` when the TLS handshake takes too long. A host name
   * that does not resolve fails as `getaddrinfo()` does
   * (`Deno.errors.NotFound` for no such host); Deno resolves it itself, so
   * `--allow-net=name` is enough.
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `port` is out of range, `serverHostname` is
   * given without `ssl`, `ssl.handshakeTimeout` is not a positive finite
   * number, or `localAddr.hostname` is not an IP address.
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example An echo round trip on 127.0.0.1
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { Protocol } from "@tulip/tulip/protocols";
   * import type { Transport } from "@tulip/tulip/transports";
   * import { assertEquals } from "@std/assert";
   *
   * class Echo extends Protocol {
   *   #t?: Transport;
   *   override connectionMade(t: Transport) { this.#t = t; }
   *   override dataReceived(data: Uint8Array) { this.#t!.write(data); }
   * }
   * const loop = new DenoEventLoop();
   * const server = await loop.runUntilComplete(
   *   loop.createServer(() => new Echo(), "127.0.0.1", 0),
   * );
   * const { port } = server.addresses()[0] as Deno.NetAddr;
   * const reply = loop.createFuture<string>();
   * class Client extends Protocol {
   *   override dataReceived(data: Uint8Array) {
   *     reply.setResult(new TextDecoder().decode(data));
   *   }
   * }
   * const [transport] = await loop.runUntilComplete(
   *   loop.createConnection(() => new Client(), "127.0.0.1", port),
   * );
   * transport.write(new TextEncoder().encode("ping"));
   * assertEquals(await loop.runUntilComplete(reply), "ping");
   * transport.close();
   * server.close();
   * await loop.runUntilComplete(server.waitClosed());
   * loop.close();
   * ```
   */
  createConnection<P extends Protocol | BufferedProtocol>(
    protocolFactory: () => P,
    host: string,
    port: number,
    options?: CreateConnectionOptions,
  ): Future<[Transport, P]> {
    return openConnection(
      this.#streamContext("createConnection"),
      "createConnection",
      protocolFactory,
      { host, port },
      options,
    );
  }

  /**
   * Opens a connection to the Unix socket at `path`; otherwise as
   * `createConnection()`. Needs `--allow-read` and `--allow-write` for the
   * path as well as `--allow-net`.
   *
   * PEP 3156: `loop.create_unix_connection()`.
   *
   * @typeParam P The protocol type.
   * @param protocolFactory Makes the protocol, once connected.
   * @param path The socket's path, or a `file:` URL (asyncio takes
   * path-like objects).
   * @param options Unused for Unix sockets (TLS is refused).
   * @returns A future of `[transport, protocol]`, done after
   * `connectionMade`.
   * @throws {TypeError} When `path` is neither a non-empty string nor a
   * `file:` URL.
   * @throws {RangeError} When `ssl` is given.
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example A Unix socket in a temporary directory
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { Protocol } from "@tulip/tulip/protocols";
   * import type { Transport } from "@tulip/tulip/transports";
   * import { assertEquals } from "@std/assert";
   *
   * const dir = Deno.makeTempDirSync();
   * const path = `${dir}/echo.sock`;
   * class Greet extends Protocol {
   *   override connectionMade(t: Transport) {
   *     t.write(new TextEncoder().encode("hi"));
   *     t.close();
   *   }
   * }
   * const loop = new DenoEventLoop();
   * const server = await loop.runUntilComplete(
   *   loop.createUnixServer(() => new Greet(), path),
   * );
   * const got = loop.createFuture<string>();
   * let text = "";
   * class Read extends Protocol {
   *   override dataReceived(d: Uint8Array) { text += new TextDecoder().decode(d); }
   *   override connectionLost() { got.setResult(text); }
   * }
   * await loop.runUntilComplete(loop.createUnixConnection(() => new Read(), path));
   * assertEquals(await loop.runUntilComplete(got), "hi");
   * server.close();
   * await loop.runUntilComplete(server.waitClosed());
   * loop.close();
   * Deno.removeSync(dir, { recursive: true });
   * ```
   */
  createUnixConnection<P extends Protocol | BufferedProtocol>(
    protocolFactory: () => P,
    path: string | URL,
    options?: CreateConnectionOptions,
  ): Future<[Transport, P]> {
    const ctx = this.#streamContext("createUnixConnection");
    return openConnection(
      ctx,
      "createUnixConnection",
      protocolFactory,
      { path: checkUnixPath(path, "call createUnixConnection()") },
      options,
    );
  }

  /**
   * Upgrades a TCP connection to TLS (STARTTLS, as SMTP, IMAP, POP3 and
   * PostgreSQL do), as the client or, with `serverSide: true`, as the
   * server: resolves with a new transport over TLS, which replaces
   * `transport` — do not use the old one again. `protocol` goes on over
   * the new transport; its `connectionMade()` is not called again, so a
   * protocol that keeps its transport takes the new one from the result.
   *
   * The server side (`serverSide: true`, with the server's `cert` and
   * `key` in PEM, and `alpnProtocols` it accepts; the transport must be
   * one a server accepted): reading stops at once, and from then on what
   * the socket brings is the client's TLS — including a read in flight
   * (a STARTTLS server that says "220 go ahead" keeps reading, and the
   * client's ClientHello ends that read) and one done but held while the
   * protocol paused reading; both go to the TLS layer, so no relay is
   * needed. Buffered writes (the go-ahead) are sent before the handshake.
   * TLS runs through `node:tls` over the TCP socket, as tulip's TLS
   * servers do, so a timeout, a failure, `abort()` or `close()` frees the
   * socket at once. The server keeps tracking the connection: its
   * `closeClients()`, `abortClients()` and `waitClosed()` reach the new
   * transport. Bytes the protocol was given after the STARTTLS command
   * (a client that pipelined them) are plain text TLS did not protect:
   * the protocol must drop them (RFC 3207 §4.2), not pass them on, and
   * the handshake then waits for a ClientHello that will not come, until
   * `handshakeTimeout`; a stream refuses the upgrade instead (see
   * `StreamWriter.startTls`).
   *
   * The client side: Deno's TLS (`Deno.startTls()`) takes over a connection only while
   * nobody reads it. So reading stops at once; bytes already read go to
   * the protocol (plain text sent before the upgrade), and buffered
   * writes are sent before the handshake. If a read is still in flight —
   * it is, unless the protocol paused reading in the `dataReceived()`
   * that brought the go-ahead, and a STARTTLS server says nothing more
   * until the client's handshake — the connection cannot be handed over:
   * TLS then runs on one end of a loopback TCP pair, and the plain
   * transport relays bytes to and from the other end (with back-pressure
   * both ways; two more sockets, one more copy per byte, and a brief
   * listener on 127.0.0.1, so it needs `--allow-net=127.0.0.1`). Pause
   * reading in `dataReceived()` to avoid the relay. Over the relay, a
   * graceful `close()` ends the stream and drops what the server still
   * sends until it ends its own (at most 5 s), so that nothing written is
   * cut off. Without the relay, `close()` or `abort()` of the plain
   * transport while the handshake runs fails the upgrade at once with
   * `InvalidStateError`; and an upgrade that times out or fails frees its
   * resource at once but, as for `createConnection()` with `ssl`, Deno
   * keeps the TCP socket open until the server answers or hangs up (over
   * the relay, the socket to the server closes at once).
   *
   * The new transport reads at once (as asyncio resumes reading after the
   * upgrade); `pauseReading()`/`resumeReading()` on the old transport act
   * on the new one, so a `StreamReader` keeps its flow control. `close()`
   * or `abort()` on the old transport during the handshake ends the
   * upgrade (it fails, and the protocol is told); without the relay, they
   * act on the new transport afterwards.
   *
   * A transport a server accepted is refused without `serverSide: true`,
   * and one `createConnection()` made with it. The client cannot present
   * a certificate here (`Deno.startTls()` takes none); use
   * `createConnection()` with `ssl.cert` for mutual TLS. Nor can the
   * server ask for one.
   *
   * PEP 3156 / asyncio 3.7: `loop.start_tls()` (`server_side`).
   *
   * @param transport A plain TCP transport made by this loop's
   * `createConnection()`, or with `serverSide: true` accepted by this
   * loop's `createServer()`.
   * @param protocol The protocol to go on with (the transport's).
   * @param options The client's `serverHostname` (default: the peer's
   * address) and `caCerts`; or `serverSide: true` with the server's `cert`
   * and `key`; both sides' `alpnProtocols`, and `handshakeTimeout` in
   * seconds (default 60), which bounds the whole upgrade (flushing, relay
   * set-up and handshake).
   * @returns A future of the TLS transport; it fails (and the connection
   * is closed, the protocol told with `connectionLost(error)`) when the
   * handshake fails or takes too long (`TimeoutError`).
   * @throws {TypeError} When `transport` is not a TCP transport of a
   * `DenoEventLoop`, or an option has the wrong type; with
   * `serverSide: true`, when `cert` or `key` is missing or
   * `serverHostname` or `caCerts` is given; without it, when `cert` or
   * `key` is given.
   * @throws {InvalidStateError} When the transport is not of the side
   * `serverSide` names, TLS already, closing, half-closed, or upgrading.
   * @throws {RangeError} When `handshakeTimeout` is not a positive finite
   * number.
   * @throws {TypeError} When `options` is not an object, or an option has
   * the wrong type.
   *
   * @example Upgrading after a plain-text go-ahead
   * ```ts ignore
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { Protocol } from "@tulip/tulip/protocols";
   * import type { Transport } from "@tulip/tulip/transports";
   *
   * class Smtp extends Protocol {
   *   transport: Transport | null = null;
   *   goAhead = Promise.withResolvers<void>();
   *   override connectionMade(t: Transport) {
   *     this.transport = t;
   *   }
   *   override dataReceived(data: Uint8Array) {
   *     if (new TextDecoder().decode(data).startsWith("220 Ready")) {
   *       this.transport!.pauseReading(); // no read in flight: no relay
   *       this.goAhead.resolve();
   *     }
   *   }
   * }
   * const loop = new DenoEventLoop();
   * const [plain, smtp] = await loop.createConnection(() => new Smtp(), "mail.example", 25);
   * plain.write(new TextEncoder().encode("STARTTLS\r\n"));
   * await smtp.goAhead.promise;
   * const tls = await loop.startTls(plain, smtp, { serverHostname: "mail.example" });
   * smtp.transport = tls;
   * ```
   *
   * @example The server side: "STARTTLS", "220 go ahead", then TLS
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { Protocol } from "@tulip/tulip/protocols";
   * import type { Transport } from "@tulip/tulip/transports";
   * import { assertEquals } from "@std/assert";
   *
   * const pem = (name: string) =>
   *   Deno.readTextFile(`tests/fixtures/tls/${name}`);
   * const [cert, key, ca] = await Promise.all(
   *   ["server.pem", "server.key", "ca.pem"].map(pem),
   * );
   * const loop = new DenoEventLoop();
   * class StartTlsEcho extends Protocol {
   *   transport: Transport | null = null;
   *   override connectionMade(t: Transport) {
   *     this.transport = t;
   *   }
   *   override dataReceived(data: Uint8Array) {
   *     const t = this.transport!;
   *     if (new TextDecoder().decode(data) !== "STARTTLS\r\n") {
   *       t.write(data); // an echo, over TLS once upgraded
   *       return;
   *     }
   *     t.write(new TextEncoder().encode("220 go ahead\r\n"));
   *     loop.startTls(t, this, { serverSide: true, cert, key })
   *       .addDoneCallback((f) => this.transport = f.result());
   *   }
   * }
   * const server = await loop.runUntilComplete(
   *   loop.createServer(() => new StartTlsEcho(), "127.0.0.1", 0),
   * );
   * const { port } = server.addresses()[0] as Deno.NetAddr;
   * // A plain Deno client; the loop runs while it waits.
   * const echoed = await loop.runUntilComplete((async () => {
   *   const plain = await Deno.connect({ hostname: "127.0.0.1", port });
   *   await plain.write(new TextEncoder().encode("STARTTLS\r\n"));
   *   const buf = new Uint8Array(64);
   *   await plain.read(buf); // "220 go ahead\r\n"
   *   const tls = await Deno.startTls(plain, {
   *     hostname: "tulip.test",
   *     caCerts: [ca],
   *   });
   *   await tls.write(new TextEncoder().encode("hello"));
   *   const n = await tls.read(buf);
   *   tls.close();
   *   return new TextDecoder().decode(buf.subarray(0, n!));
   * })());
   * assertEquals(echoed, "hello");
   * server.close();
   * await loop.runUntilComplete(server.waitClosed());
   * loop.close();
   * ```
   */
  startTls(
    transport: Transport,
    protocol: Protocol | BufferedProtocol,
    options?: StartTlsOptions,
  ): Future<Transport> {
    return startTls(
      this.#streamContext("startTls"),
      transport,
      protocol,
      options,
    );
  }

  /**
   * Listens on `host:port` (port 0: the system picks one) and serves each
   * connection with a fresh protocol from `protocolFactory`, on a
   * transport as `createConnection()` describes. With `ssl: { cert, key }`
   * (PEM) it serves TLS; each connection's handshake completes before its
   * `connectionMade`, and a failed handshake just closes the connection,
   * as does one not finished within `ssl.handshakeTimeout` seconds of the
   * accept (60 by default); its socket is closed at once, as is an
   * aborted connection's, however the client stalls (TLS is served
   * through `node:tls` over TCP sockets tulip owns: Deno's own TLS
   * listener keeps a closed connection's socket until its handshake ends
   * and its buffer is sent, with no time limit).
   *
   * The server accepts at once unless `startServing: false`.
   * `server.close()` stops listening and leaves open connections alone;
   * `server.waitClosed()` resolves when it is closed and they are gone;
   * `await using` closes it, closes its connections and waits.
   * `reusePort` sets `SO_REUSEPORT` (Linux); it needs Deno's unstable net
   * API (`--unstable-net`, or `"unstable": ["net"]` in your deno.json).
   * `backlog` sets the listen queue's length.
   *
   * `host` may be a list: the server listens on each (with port 0, all on
   * the port the first one got), and `addresses()` lists them all; a host
   * listed twice, or two names of one address (`"localhost"` and
   * `"127.0.0.1"`), is listened on once, as asyncio does. With `host`
   * `undefined` (or `""`) it listens on every interface, as asyncio does: on
   * `::` and `0.0.0.0`, or on `::` alone where that socket takes IPv4 too
   * (Linux's default), or on `0.0.0.0` alone where IPv6 is off or
   * `--allow-net` does not already grant `[::]` (it is never prompted for).
   * If any host fails, the listeners already open are closed.
   *
   * When the process runs out of descriptors or memory (`EMFILE`,
   * `ENFILE`, `ENOBUFS`, `ENOMEM`), accepting pauses 5 ms, doubling up to
   * 1 s, until an accept succeeds; waiting clients stay in the listen
   * queue. A connection reset before it was accepted is skipped at once
   * and only counted (`failedAccepts` in the server's tag). Accept
   * failures are reported to the exception handler at most once per 10 s.
   *
   * PEP 3156: `loop.create_server()` (the PEP's `start_serving()`).
   *
   * @param protocolFactory Makes one protocol per connection.
   * @param host The address to listen on (`"0.0.0.0"`: every IPv4 one), a
   * list of them, or `undefined` for every interface (`null` and `""` too,
   * as asyncio's `None` and `''`); an address named twice is listened on
   * once.
   * @param port The port; 0 for any free one.
   * @param options `ssl` (`cert`, `key`, `handshakeTimeout` in seconds),
   * `reusePort`, `backlog`, `startServing`.
   * @returns A future of the `Server`; it fails with Deno's error (such as
   * `Deno.errors.AddrInUse`) and a message naming `host:port` (for a host
   * name that does not resolve, as `getaddrinfo()` does).
   * @throws {TypeError} When an argument has the wrong type.
   * @throws {RangeError} When `port` or `backlog` is out of range, the list
   * of hosts is empty, or `ssl.handshakeTimeout` is not a positive finite
   * number.
   * @throws {InvalidStateError} When the loop is closed.
   * @throws {Deno.errors.NotSupported} When `reusePort` is asked for
   * without `--unstable-net`.
   *
   * @example A server that greets and hangs up
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { Protocol } from "@tulip/tulip/protocols";
   * import type { Transport } from "@tulip/tulip/transports";
   * import { assertEquals } from "@std/assert";
   *
   * class Greet extends Protocol {
   *   override connectionMade(t: Transport) {
   *     t.write(new TextEncoder().encode("hello\n"));
   *     t.close();
   *   }
   * }
   * const loop = new DenoEventLoop();
   * const server = await loop.runUntilComplete(
   *   loop.createServer(() => new Greet(), "127.0.0.1", 0),
   * );
   * assertEquals(server.isServing(), true);
   * const { port } = server.addresses()[0] as Deno.NetAddr;
   * // A plain Deno client; the loop runs while it waits.
   * const text = await loop.runUntilComplete((async () => {
   *   const conn = await Deno.connect({ hostname: "127.0.0.1", port });
   *   return await new Response(conn.readable).text();
   * })());
   * assertEquals(text, "hello\n");
   * server.close();
   * await loop.runUntilComplete(server.waitClosed());
   * loop.close();
   * ```
   *
   * @example Listening on a list of hosts, all on one port
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { Protocol } from "@tulip/tulip/protocols";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const server = await loop.runUntilComplete(
   *   loop.createServer(() => new Protocol(), ["127.0.0.1", "127.0.0.2"], 0),
   * );
   * const [a, b] = server.addresses() as Deno.NetAddr[];
   * assertEquals([a.hostname, b.hostname], ["127.0.0.1", "127.0.0.2"]);
   * assertEquals(a.port, b.port);
   * server.close();
   * await loop.runUntilComplete(server.waitClosed());
   * loop.close();
   * ```
   */
  createServer(
    protocolFactory: () => Protocol | BufferedProtocol,
    host: string | readonly string[] | undefined,
    port: number,
    options?: CreateServerOptions,
  ): Future<Server> {
    return openServer(
      this.#streamContext("createServer"),
      "createServer",
      protocolFactory,
      { host, port },
      options,
    );
  }

  /**
   * Listens on the Unix socket at `path` (a stale socket file there is
   * removed first); otherwise as `createServer()`.
   *
   * `close()` removes the socket file as asyncio does: only while the
   * path is still the socket this server bound (same device and inode),
   * and a path already gone is no error. But Deno 2.9 unlinks the path
   * itself when its listener closes, whatever is there then — a file or
   * another server's socket put there since is removed too; only a
   * directory is left. Don't replace the path of a server still
   * listening.
   *
   * PEP 3156: `loop.create_unix_server()`.
   *
   * @param protocolFactory Makes one protocol per connection.
   * @param path The socket's path, or a `file:` URL; removed by the
   * server's `close()`.
   * @param options `startServing` (`ssl` is refused).
   * @returns A future of the `Server`.
   * @throws {TypeError} When `path` is neither a non-empty string nor a
   * `file:` URL.
   * @throws {RangeError} When `ssl` is given.
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example Listening on a Unix socket
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { Protocol } from "@tulip/tulip/protocols";
   * import { assertEquals } from "@std/assert";
   *
   * const dir = Deno.makeTempDirSync();
   * const loop = new DenoEventLoop();
   * const server = await loop.runUntilComplete(
   *   loop.createUnixServer(() => new Protocol(), `${dir}/s.sock`),
   * );
   * assertEquals(server.addresses()[0].transport, "unix");
   * server.close();
   * await loop.runUntilComplete(server.waitClosed());
   * loop.close();
   * Deno.removeSync(dir, { recursive: true });
   * ```
   */
  createUnixServer(
    protocolFactory: () => Protocol | BufferedProtocol,
    path: string | URL,
    options?: CreateServerOptions,
  ): Future<Server> {
    const ctx = this.#streamContext("createUnixServer");
    return openServer(
      ctx,
      "createUnixServer",
      protocolFactory,
      { path: checkUnixPath(path, "call createUnixServer()") },
      options,
    );
  }

  /** The loop and proactor the stream transports share. */
  #streamContext(what: string): StreamContext {
    this.#checkIoOpen(what);
    return this.#streams ??= {
      loop: this,
      proactor: new DenoProactor(this),
    };
  }

  /**
   * The loop and the proactor through which every Deno operation reports:
   * datagrams, pipes, subprocesses, names and executor jobs share the
   * stream transports' one.
   */
  #io(what: string): DenoIo {
    return this.#streamContext(what);
  }

  // ---- Datagrams, subprocesses, pipes, signals, names, executor ----

  #signals: SignalHandlers | null = null;
  #defaultExecutor: Executor | null = null;
  #ownsDefaultExecutor = false;
  #defaultExecutorShutdown = false;

  /**
   * Opens a UDP endpoint: binds `localAddr` (by default any address, port
   * chosen by the system), calls the protocol's `connectionMade`, then
   * delivers each datagram to `datagramReceived(data, addr)`.
   *
   * With `remoteAddr`, `sendto(data)` needs no address, `sendto()` to any
   * other address throws, and only datagrams from `remoteAddr` are
   * delivered (as with a connected socket). Send failures and addresses
   * Deno rejects reach `errorReceived` (Deno's error, its message naming
   * the datagram's length and address: `Cannot send a datagram of 70000
   * bytes to 127.0.0.1:5000: Message too long …`), and the endpoint stays
   * open. The send queue (`getWriteBufferSize()`, counting each datagram's
   * 8-byte header as asyncio does) is bounded (1 MiB: a datagram beyond
   * that is dropped, and what is dropped before the loop's next turn is
   * reported to `errorReceived` once, counted in its message) and drives
   * `pauseWriting()` / `resumeWriting()` by its water marks. `close()`
   * sends what is queued, `abort()` drops it; `connectionLost` follows
   * once. What the protocol's `datagramReceived()`, `errorReceived()` or
   * `connectionLost()` throws goes to the exception handler and the
   * endpoint carries on: the first failure of each method whole, the
   * rest within what the peers sent (see `PeerLog`); once the loop's
   * reserve is spent, a flood of datagrams that each make the protocol
   * fail is logged as far as their bytes (each with its 8-byte header)
   * pay, shortened, then only counted, the count summed up after
   * `connectionLost` if the log can pay for it (asyncio logs each one).
   * Deno's UDP sockets are never connected, so a datagram sent to a port
   * nobody listens on is lost without a word: no `ConnectionRefused`
   * reaches `errorReceived`, where asyncio's connected endpoint gets
   * `ConnectionRefusedError` on Linux.
   * `getExtraInfo("sockname")` and `("peername")` give `Deno.NetAddr`s.
   * An endpoint with `remoteAddr` and no `localAddr` binds the remote's
   * family and loopback-ness (`127.0.0.1` for a 127.x remote, `::1` for
   * `::1`, else `0.0.0.0` or `::`), so a loopback client is not open on
   * every interface. With both, a remote host name is looked up in the
   * family of a numeric `localAddr`, and addresses of two families fail
   * the endpoint (an IPv4 socket cannot send to IPv6), as in asyncio.
   *
   * Sends to broadcast addresses need `allowBroadcast: true` (see
   * `DatagramEndpointOptions`). `transport.joinMulticast(group, iface)`
   * and `leaveMulticast(group, iface)` manage multicast groups; multicast
   * the endpoint sends is looped back to this host's listeners, as the
   * system's default is.
   *
   * Needs `--allow-net` and Deno's unstable net API: run with
   * `--unstable-net`, or put `"unstable": ["net"]` in your project's
   * deno.json (this repository's has it). Without it this throws
   * `Deno.errors.NotSupported` naming the flag.
   *
   * PEP 3156: `loop.create_datagram_endpoint()`.
   *
   * @typeParam P The protocol type.
   * @param protocolFactory Makes the endpoint's protocol.
   * @param options The local and remote addresses, `reuseAddress` and
   * `allowBroadcast`.
   * @returns A future of `[transport, protocol]`, done after
   * `connectionMade`; it fails with Deno's error (such as
   * `Deno.errors.AddrInUse`) when the address cannot be bound, its message
   * naming it (`Cannot create a datagram endpoint on 127.0.0.1:5000: …`),
   * with `Deno.errors.PermissionDenied` for a broadcast `remoteAddr`
   * without `allowBroadcast`, and with a `RangeError` for `localAddr` and
   * `remoteAddr` of different families.
   * @throws {TypeError} When an address is not `{ hostname, port }` or an
   * option is not a boolean.
   * @throws {RangeError} When a port is out of range or a hostname empty.
   * @throws {Deno.errors.NotSupported} Without `--unstable-net`.
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example Two endpoints on 127.0.0.1
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { DatagramProtocol } from "@tulip/tulip/protocols";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const got = loop.createFuture<string>();
   * const lost = loop.createFuture<void>();
   * class Receiver extends DatagramProtocol {
   *   override datagramReceived(data: Uint8Array) {
   *     got.setResult(new TextDecoder().decode(data));
   *   }
   *   override connectionLost() { lost.setResult(); }
   * }
   * const [server] = await loop.runUntilComplete(
   *   loop.createDatagramEndpoint(() => new Receiver(), {
   *     localAddr: { hostname: "127.0.0.1", port: 0 },
   *   }),
   * );
   * const [client] = await loop.runUntilComplete(
   *   loop.createDatagramEndpoint(() => new DatagramProtocol(), {
   *     localAddr: { hostname: "127.0.0.1", port: 0 },
   *     remoteAddr: server.getExtraInfo("sockname") as Deno.NetAddr,
   *   }),
   * );
   * client.sendto(new TextEncoder().encode("ping"));
   * assertEquals(await loop.runUntilComplete(got), "ping");
   * client.close();
   * server.close();
   * await loop.runUntilComplete(lost);
   * loop.close();
   * ```
   *
   * @example Joining a multicast group on the loopback interface
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { DatagramProtocol } from "@tulip/tulip/protocols";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const got = loop.createFuture<string>();
   * const lost = loop.createFuture<void>();
   * class Listener extends DatagramProtocol {
   *   override datagramReceived(data: Uint8Array) {
   *     got.setResult(new TextDecoder().decode(data));
   *   }
   *   override connectionLost() { lost.setResult(); }
   * }
   * // Bound to the group's address: it hears the group only.
   * const [listener] = await loop.runUntilComplete(
   *   loop.createDatagramEndpoint(() => new Listener(), {
   *     localAddr: { hostname: "239.255.0.7", port: 0 },
   *   }),
   * );
   * await loop.runUntilComplete(listener.joinMulticast("239.255.0.7", "127.0.0.1"));
   * const { port } = listener.getExtraInfo("sockname") as Deno.NetAddr;
   * const [sender] = await loop.runUntilComplete(
   *   loop.createDatagramEndpoint(() => new DatagramProtocol(), {
   *     // Sent from 127.0.0.1, the datagram goes out on loopback.
   *     localAddr: { hostname: "127.0.0.1", port: 0 },
   *     remoteAddr: { hostname: "239.255.0.7", port },
   *   }),
   * );
   * sender.sendto(new TextEncoder().encode("to all"));
   * assertEquals(await loop.runUntilComplete(got), "to all");
   * sender.close();
   * listener.close(); // leaves the group
   * await loop.runUntilComplete(lost);
   * loop.close();
   * ```
   */
  createDatagramEndpoint<P extends DatagramProtocol>(
    protocolFactory: () => P,
    options?: DatagramEndpointOptions,
  ): Future<[DatagramTransport, P]> {
    return createDatagramEndpoint(
      this.#io("createDatagramEndpoint"),
      protocolFactory,
      options,
    );
  }

  /**
   * Starts the program `cmd` with `args` (no shell) and connects a
   * `SubprocessProtocol`: `connectionMade(transport)` first, then
   * `pipeDataReceived(fd, data)` for output on stdout (1) and stderr (2),
   * `pipeConnectionLost(fd, exc)` as each pipe closes, `processExited()`
   * once the exit code is known, and `connectionLost()` once the child has
   * exited and all its pipes are closed.
   *
   * `getPipeTransport(0)` is a `WriteTransport` to the child's stdin (with
   * water marks; its `pauseWriting()` / `resumeWriting()` go to the
   * subprocess protocol), 1 and 2 are `ReadTransport`s with
   * `pauseReading()`. The return code of a child killed by a signal is
   * minus the signal's number, as in asyncio. When the child exits, its
   * stdin pipe is closed. `close()` closes the pipes and kills a child that
   * still runs. Needs `--allow-run`.
   *
   * Deno cannot cancel a write to stdin that the child (or a grandchild
   * holding its stdin) never reads: once the transport is closed or
   * aborted, or the loop closed, it no longer keeps the process alive, so
   * that `run()` returns and the program exits. With `TULIP_NO_INTERNALS`
   * set it does keep it alive, until the reader reads or exits.
   *
   * PEP 3156: `loop.subprocess_exec()`.
   *
   * @typeParam P The protocol type.
   * @param protocolFactory Makes the protocol.
   * @param cmd The program: a path (or a `file:` URL, as `Deno.Command`
   * takes) or a name looked up in `PATH`.
   * @param args Its arguments.
   * @param options Pipes (`"pipe"`, `"inherit"` or `"null"` for each of
   * stdin, stdout and stderr), `cwd`, `env`, `clearEnv`.
   * @returns A future of `[transport, protocol]`, done after
   * `connectionMade`; it fails (with `Deno.errors.NotFound`, say) when the
   * program cannot be started.
   * @throws {TypeError} When `cmd` is neither a string nor a URL, `args`
   * not strings, `cwd` neither a string nor a URL, `env` not an object of
   * strings, or `clearEnv` not a boolean; or when `cmd`, an argument,
   * `cwd`, or an `env` name or value holds a NUL byte (the message names
   * which).
   * @throws {RangeError} When a pipe option is not a known value.
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example Reading a child's output
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { SubprocessProtocol } from "@tulip/tulip/protocols";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const done = loop.createFuture<string>();
   * let out = "";
   * class Collect extends SubprocessProtocol {
   *   override pipeDataReceived(_fd: number, data: Uint8Array) {
   *     out += new TextDecoder().decode(data);
   *   }
   *   override connectionLost() { done.setResult(out); }
   * }
   * await loop.runUntilComplete(
   *   loop.subprocessExec(() => new Collect(), "echo", ["hello"]),
   * );
   * assertEquals(await loop.runUntilComplete(done), "hello\n");
   * loop.close();
   * ```
   */
  subprocessExec<P extends SubprocessProtocol>(
    protocolFactory: () => P,
    cmd: string | URL,
    args?: string[],
    options?: SubprocessOptions,
  ): Future<[SubprocessTransport, P]> {
    return subprocessExec(
      this.#io("subprocessExec"),
      protocolFactory,
      cmd,
      args,
      options,
    );
  }

  /**
   * Starts `cmd` through the shell (`/bin/sh -c cmd`; `cmd.exe /d /s /c`
   * on Windows) and connects a `SubprocessProtocol`, as `subprocessExec`
   * does. Quote anything that comes from outside the program.
   *
   * PEP 3156: `loop.subprocess_shell()`.
   *
   * @typeParam P The protocol type.
   * @param protocolFactory Makes the protocol.
   * @param cmd The shell command line.
   * @param options Pipes, `cwd`, `env`, `clearEnv`, as for
   * `subprocessExec`.
   * @returns A future of `[transport, protocol]`, done after
   * `connectionMade`.
   * @throws {TypeError} When `cmd` is not a string or holds a NUL byte, or
   * an option is wrong (as for `subprocessExec()`).
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example The exit code of a shell command
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { SubprocessProtocol } from "@tulip/tulip/protocols";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const lost = loop.createFuture<void>();
   * class Wait extends SubprocessProtocol {
   *   override connectionLost() { lost.setResult(); }
   * }
   * const [transport] = await loop.runUntilComplete(
   *   loop.subprocessShell(() => new Wait(), "exit 3"),
   * );
   * await loop.runUntilComplete(lost);
   * assertEquals(transport.getReturncode(), 3);
   * loop.close();
   * ```
   */
  subprocessShell<P extends SubprocessProtocol>(
    protocolFactory: () => P,
    cmd: string,
    options?: SubprocessOptions,
  ): Future<[SubprocessTransport, P]> {
    return subprocessShell(
      this.#io("subprocessShell"),
      protocolFactory,
      cmd,
      options,
    );
  }

  /**
   * Connects a protocol to a Web `ReadableStream` of bytes (such as
   * `Deno.stdin.readable` or a child's stdout): `connectionMade`, then
   * `dataReceived` for each chunk, then at the end of the stream
   * `eofReceived()` (its return value is ignored: a read pipe has nothing
   * left to keep open) and `connectionLost(undefined)`; a stream error
   * gives `connectionLost(error)`. `pauseReading()` stops pulling from the
   * stream (a read already in flight completes and is held until
   * `resumeReading()`). `close()` cancels the stream. The stream is locked
   * to the transport.
   *
   * PEP 3156: `loop.connect_read_pipe()`.
   *
   * @typeParam P The protocol type.
   * @param protocolFactory Makes the protocol.
   * @param readable The stream to read.
   * @returns A future of `[transport, protocol]`, done after
   * `connectionMade`.
   * @throws {TypeError} When `readable` is not a `ReadableStream`.
   * @throws {InvalidStateError} When the loop is closed, or the stream is
   * locked.
   *
   * @example Reading a stream through a protocol
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { Protocol } from "@tulip/tulip/protocols";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const done = loop.createFuture<string[]>();
   * const events: string[] = [];
   * class Record extends Protocol {
   *   override dataReceived(data: Uint8Array) { events.push(`data ${data.length}`); }
   *   override eofReceived() { events.push("eof"); }
   *   override connectionLost() { done.setResult(events); }
   * }
   * const readable = ReadableStream.from([new Uint8Array(3), new Uint8Array(2)]);
   * await loop.runUntilComplete(loop.connectReadPipe(() => new Record(), readable));
   * assertEquals(await loop.runUntilComplete(done), ["data 3", "data 2", "eof"]);
   * loop.close();
   * ```
   */
  connectReadPipe<P extends Protocol>(
    protocolFactory: () => P,
    readable: ReadableStream<Uint8Array>,
  ): Future<[ReadTransport, P]> {
    return connectReadPipe(
      this.#io("connectReadPipe"),
      protocolFactory,
      readable,
    );
  }

  /**
   * Connects a protocol to a Web `WritableStream` of bytes (such as
   * `Deno.stdout.writable` or a child's stdin) through a `WriteTransport`.
   * One chunk is written at a time, once the stream's writer is ready (its
   * backpressure); writes made meanwhile gather in the transport's buffer,
   * whose water marks call the protocol's `pauseWriting()` and
   * `resumeWriting()` and drive registered producers. `close()` and
   * `writeEof()` flush, close the stream, then call
   * `connectionLost(undefined)`; `abort()` drops the buffer and aborts the
   * stream (a chunk the stream already has is finished first, as Web
   * streams do), then calls `connectionLost(undefined)`; a write error
   * gives `connectionLost(error)`. `connectionLost` always comes after the
   * stream has settled, so nothing of it outlives the transport.
   *
   * On a stream Deno made over a resource (`Deno.stdout.writable`, a
   * file's `writable`, a child's stdin), each write calls Deno's write op
   * itself, so that a write nobody reads, which Deno cannot cancel, no
   * longer keeps the process alive once the transport is aborted or the
   * loop closed. On any other stream, or with `TULIP_NO_INTERNALS` set,
   * such a write keeps it alive until the stream's sink settles.
   *
   * PEP 3156: `loop.connect_write_pipe()`.
   *
   * @typeParam P The protocol type.
   * @param protocolFactory Makes the protocol.
   * @param writable The stream to write.
   * @returns A future of `[transport, protocol]`, done after
   * `connectionMade`.
   * @throws {TypeError} When `writable` is not a `WritableStream`.
   * @throws {InvalidStateError} When the loop is closed, or the stream is
   * locked.
   *
   * @example Writing through a transport into a stream
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { BaseProtocol } from "@tulip/tulip/protocols";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const chunks: string[] = [];
   * const writable = new WritableStream<Uint8Array>({
   *   write(chunk) { chunks.push(new TextDecoder().decode(chunk)); },
   * });
   * const lost = loop.createFuture<void>();
   * class Done extends BaseProtocol {
   *   override connectionLost() { lost.setResult(); }
   * }
   * const [transport] = await loop.runUntilComplete(
   *   loop.connectWritePipe(() => new Done(), writable),
   * );
   * transport.write(new TextEncoder().encode("hello "));
   * transport.write(new TextEncoder().encode("world"));
   * transport.close();
   * await loop.runUntilComplete(lost);
   * assertEquals(chunks.join(""), "hello world");
   * loop.close();
   * ```
   */
  connectWritePipe<P extends BaseProtocol>(
    protocolFactory: () => P,
    writable: WritableStream<Uint8Array>,
  ): Future<[WriteTransport, P]> {
    return connectWritePipe(
      this.#io("connectWritePipe"),
      protocolFactory,
      writable,
    );
  }

  /**
   * Calls `cb(...args)` on the loop (the returned handle is scheduled with
   * `callSoonThreadsafe`) each time the process receives signal `sig`. A
   * signal has at most one handler: adding another replaces it. Cancelling
   * the returned handle stops the calls, even one a signal queued already;
   * `removeSignalHandler(sig)` stops those of later signals. While handlers
   * are installed, a loop waiting for events keeps the process alive, so
   * that a signal can still arrive. `close()` removes them all. On Windows
   * Deno only supports `"SIGINT"` and `"SIGBREAK"`.
   *
   * `cb` may be an immediate `Handle` instead (PEP 3156's note on
   * Handles), standing for its callback and arguments: cancelling it
   * stops the calls too; a cancelled one installs nothing and is returned.
   *
   * PEP 3156: `loop.add_signal_handler()`.
   *
   * @typeParam A The callback's argument types.
   * @param sig The signal's name, such as `"SIGINT"`.
   * @param cb The callback, or an immediate `Handle`.
   * @param args Its positional arguments (none with a `Handle`).
   * @returns The handle of the calls.
   * @throws {TypeError} When `sig` is not a string, or `cb` not a function
   * or a coroutine function (as asyncio; run those with `createTask()`),
   * or a `TimerHandle`, or a `Handle` comes with arguments.
   * @throws {RangeError} When `sig` is unknown or cannot be caught
   * (`"SIGKILL"`, `"SIGSTOP"`).
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example Handling SIGUSR1
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const got = loop.createFuture<string>();
   * loop.addSignalHandler("SIGUSR1", (name: string) => got.setResult(name), "usr1");
   * Deno.kill(Deno.pid, "SIGUSR1");
   * assertEquals(await loop.runUntilComplete(got), "usr1");
   * loop.close(); // removes the handler
   * ```
   */
  addSignalHandler<A extends unknown[]>(
    sig: Deno.Signal,
    cb: ((...args: A) => unknown) | Handle,
    ...args: A
  ): Handle {
    this.#checkIoOpen("addSignalHandler");
    this.#signals ??= new SignalHandlers(this);
    return this.#signals.add(
      sig,
      cb as ((...a: never[]) => unknown) | Handle,
      args,
    );
  }

  /**
   * Removes the handler of signal `sig`.
   *
   * PEP 3156: `loop.remove_signal_handler()`.
   *
   * @param sig The signal's name.
   * @returns `true` if a handler was removed, `false` if there was none.
   * @throws {TypeError} When `sig` is not a string.
   * @throws {RangeError} When `sig` names no signal, or on Linux one that
   * Linux has not (`"SIGEMT"`), as `addSignalHandler` (PEP 3156: the same
   * exceptions).
   *
   * @example Removing a handler
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * assertEquals(loop.removeSignalHandler("SIGUSR2"), false);
   * loop.close();
   * ```
   */
  removeSignalHandler(sig: Deno.Signal): boolean {
    if (this.#signals === null) {
      checkSignalName(sig, "remove a signal handler");
      return false;
    }
    return this.#signals.remove(sig);
  }

  /**
   * Runs `fn(...args)` in `executor`, or with `null` in the loop's default
   * executor: a `WorkerExecutor` (Web Workers, one per CPU core at most),
   * made on first use and shut down by `close()`. With the default
   * executor, a plain `fn` is sent as source and must be self-contained,
   * while a `workerFunction(moduleUrl, exportName)` reference runs a
   * module's export and may use its imports; the arguments and result
   * are structured-cloned — see `WorkerExecutor` for what can be sent. The loop goes on running while the job runs.
   * Cancelling the future drops the job if it still waits for one of a
   * `WorkerExecutor`'s workers (as asyncio cancels the executor's future);
   * a job already running goes on, and its result is dropped. `fn` may also be an
   * immediate `Handle` (PEP 3156's note on Handles), standing for its
   * callback and arguments; a cancelled one runs nothing, and the future's
   * result is `undefined`.
   *
   * PEP 3156: `loop.run_in_executor()`.
   *
   * @typeParam A The argument types.
   * @typeParam R The result type.
   * @param executor The executor, or `null` (or `undefined`) for the
   * default one.
   * @param fn The function to run, a `workerFunction()` reference, or an
   * immediate `Handle`.
   * @param args Its arguments (none with a `Handle`).
   * @returns A future of the result.
   * @throws {TypeError} When `fn` is not a function, or is a generator
   * function (a coroutine: `createTask()` runs those), or the executor
   * refuses it, or `fn` is a `TimerHandle` or a `Handle` with arguments,
   * or `executor` has no `submit()` method, or its `submit()` returns no
   * promise.
   * @throws {InvalidStateError} When the loop is closed, or `executor` is
   * `null` after `shutdownDefaultExecutor()`.
   *
   * @example CPU work off the loop
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const fib = (n: number): number => {
   *   const f = (k: number): number => (k < 2 ? k : f(k - 1) + f(k - 2));
   *   return f(n);
   * };
   * assertEquals(await loop.runUntilComplete(loop.runInExecutor(null, fib, 20)), 6765);
   * loop.close(); // terminates the workers
   * ```
   */
  runInExecutor<A extends unknown[], R>(
    executor: Executor | null,
    fn: ((...args: A) => R | PromiseLike<R>) | Handle,
    ...args: A
  ): Future<R> {
    const io = this.#io("runInExecutor");
    if (fn instanceof Handle) {
      checkHandle(fn, args, "runInExecutor");
      if (!fn.cancelled) {
        return this.runInExecutor(
          executor,
          fn.callback as (...a: unknown[]) => R | PromiseLike<R>,
          ...fn.args,
        );
      }
      const skipped = this.createFuture<R>();
      skipped.setResult(undefined as R);
      return skipped;
    }
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot call runInExecutor(): fn must be a function, received ${typeof fn}`,
      );
    }
    checkExecutorFn(fn);
    checkExecutor(executor);
    if (executor === null || executor === undefined) {
      if (this.#defaultExecutorShutdown) {
        throw new InvalidStateError(
          "Cannot call runInExecutor(): the default executor was shut down by shutdownDefaultExecutor(); pass an executor",
        );
      }
      if (this.#defaultExecutor === null) {
        this.#defaultExecutor = new WorkerExecutor();
        this.#ownsDefaultExecutor = true;
      }
      executor = this.#defaultExecutor;
    }
    const job = executor.submit(fn, ...args);
    if (typeof (job as { then?: unknown } | null)?.then !== "function") {
      throw new TypeError(
        `Cannot call runInExecutor(): executor.submit() must return a promise, received ${
          job === null ? "null" : typeof job
        }`,
      );
    }
    const future = watchFuture(io, job);
    const cancel = cancelQueuedJob.get(job as Promise<unknown>);
    if (cancel !== undefined) {
      future.addDoneCallback((done) => {
        if (done.cancelled()) cancel();
      });
    }
    return future;
  }

  /**
   * Sets the executor that `runInExecutor(null, …)` uses. A default
   * executor the loop made itself is shut down once its jobs are done;
   * one given here is shut down by `close()`.
   *
   * PEP 3156: `loop.set_default_executor()`.
   *
   * @param executor The executor.
   * @throws {TypeError} When `executor` has no `submit()` method.
   *
   * @example A custom executor that runs on the loop's thread
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import type { Executor } from "@tulip/tulip/loop";
   * import { assertEquals } from "@std/assert";
   *
   * const inline: Executor = {
   *   submit: (fn, ...args) => Promise.resolve().then(() => fn(...args)),
   *   shutdown() {},
   * };
   * const loop = new DenoEventLoop();
   * loop.setDefaultExecutor(inline);
   * const double = (x: number) => x * 2;
   * assertEquals(await loop.runUntilComplete(loop.runInExecutor(null, double, 21)), 42);
   * loop.close();
   * ```
   */
  setDefaultExecutor(executor: Executor): void {
    if (
      typeof executor !== "object" || executor === null ||
      typeof executor.submit !== "function"
    ) {
      throw new TypeError(
        `Cannot set the default executor: it must have a submit() method, received ${
          executor === null ? "null" : typeof executor
        }`,
      );
    }
    const old = this.#defaultExecutor;
    if (old !== null && this.#ownsDefaultExecutor && old !== executor) {
      (old as WorkerExecutor).shutdown();
    }
    this.#defaultExecutor = executor;
    this.#ownsDefaultExecutor = false;
  }

  /**
   * Shuts the default executor down once the jobs submitted to it are
   * done, and waits for that; from then on `runInExecutor(null, …)` is
   * refused. With a `timeout`, it waits at most that many seconds, then
   * reports it through the exception handler and shuts the executor down
   * without waiting (the jobs still running are dropped and their futures
   * cancelled). `run()` calls it before it closes the loop, so that the
   * jobs `main` left behind finish, as `asyncio.run()` does.
   *
   * PEP 3156 (as asyncio 3.9+): `loop.shutdown_default_executor(timeout)`.
   *
   * @param timeout The most seconds to wait; `undefined` or `null`: no
   * limit.
   * @returns A future that is done once the executor is shut down (at
   * once when there is none).
   * @throws {TypeError} When `timeout` is not a number.
   * @throws {RangeError} When `timeout` is negative.
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const double = (x: number) => x * 2;
   * const job = loop.runInExecutor(null, double, 21);
   * await loop.runUntilComplete(loop.shutdownDefaultExecutor());
   * assertEquals(await loop.runUntilComplete(job), 42);
   * loop.close();
   * ```
   */
  shutdownDefaultExecutor(timeout?: number | null): Future<void> {
    const io = this.#io("shutdownDefaultExecutor");
    const limit = timeout ?? null;
    if (limit !== null) {
      if (typeof limit !== "number" || Number.isNaN(limit)) {
        throw new TypeError(
          `Cannot call shutdownDefaultExecutor(): timeout must be a number of seconds or null, received ${
            formatReceived(limit)
          }`,
        );
      }
      if (limit < 0) {
        throw new RangeError(
          `Cannot call shutdownDefaultExecutor(): timeout must be >= 0, received ${limit}`,
        );
      }
    }
    this.#defaultExecutorShutdown = true;
    const finished = this.createFuture<void>();
    const executor = this.#defaultExecutor;
    if (executor === null) {
      finished.setResult(undefined);
      return finished;
    }
    const forget = () => {
      if (this.#defaultExecutor === executor) this.#defaultExecutor = null;
    };
    const stopped = watchFuture(
      io,
      new Promise<void>((resolve) =>
        resolve(executor.shutdown({ wait: true }))
      ),
    );
    const timer = limit === null ? null : this.callLater(limit, () => {
      forget();
      this.callExceptionHandler({
        message:
          `The default executor did not finish its jobs within ${limit} seconds; it is shut down without waiting for them`,
      });
      new Promise<void>((resolve) =>
        resolve(executor.shutdown({ wait: false }))
      ).catch((exception) =>
        this.callExceptionHandler({
          message: "The default executor failed to shut down",
          exception,
        })
      );
      if (!finished.done()) finished.setResult(undefined);
    });
    stopped.addDoneCallback(() => {
      timer?.cancel();
      forget();
      const exception = stopped.cancelled() ? undefined : stopped.exception();
      if (finished.done()) return;
      if (exception !== undefined) finished.setException(exception);
      else finished.setResult(undefined);
    });
    return finished;
  }

  /**
   * Resolves `host` with the system resolver (the hosts file, then DNS, as
   * the C library's `getaddrinfo` does) to numeric addresses, each paired
   * with `port`; duplicates are dropped, the resolver's order is kept.
   * Needs `--allow-net`.
   *
   * PEP 3156: `loop.getaddrinfo()`. `type`, `proto` and `flags` are
   * accepted for parity and do not change the answer.
   *
   * @param host A host name or a numeric address.
   * @param port The port to pair with each address.
   * @param options `family`: 4 or 6 to restrict the answer (0: both).
   * @returns A future of the addresses; it fails with
   * `Deno.errors.NotFound` when the host is unknown.
   * @throws {TypeError} When `host` is not a string or `port` not a number.
   * @throws {RangeError} When `host` is empty, `port` out of range, or
   * `family` not 0, 4 or 6.
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example Resolving localhost
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { assert } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const infos = await loop.runUntilComplete(loop.getaddrinfo("localhost", 80));
   * assert(infos.some((i) => i.hostname === "127.0.0.1" || i.hostname === "::1"));
   * loop.close();
   * ```
   */
  getaddrinfo(
    host: string,
    port: number,
    options?: GetaddrinfoOptions,
  ): Future<AddrInfo[]> {
    const io = this.#io("getaddrinfo");
    checkAddrinfoArgs(host, port, options);
    return watchFuture(io, resolveHost(host, port, options?.family ?? 0));
  }

  /**
   * Finds the host name and service name of an address with the system
   * resolver (the C library's `getnameinfo`). `flags` may combine `1`
   * (`NI_NUMERICHOST`: keep the numeric address), `2` (`NI_NUMERICSERV`:
   * keep the port number) and `8` (`NI_NAMEREQD`: fail when the address has
   * no name, and always with `NI_NUMERICHOST`); without `NI_NAMEREQD`, an
   * address that has no name is given in numeric form, as the C library
   * does. A host name in `sockaddr` is resolved first.
   *
   * PEP 3156: `loop.getnameinfo()`.
   *
   * @param sockaddr The address and port.
   * @param flags The flags above; 0 (the default) for names.
   * @returns A future of `[host, service]`.
   * @throws {TypeError} When `sockaddr` is not `{ hostname, port }`.
   * @throws {RangeError} When the port is out of range or `flags` has an
   * unknown bit.
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example Naming 127.0.0.1
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const [host, service] = await loop.runUntilComplete(
   *   loop.getnameinfo({ hostname: "127.0.0.1", port: 8080 }, 1 | 2),
   * );
   * assertEquals([host, service], ["127.0.0.1", "8080"]);
   * loop.close();
   * ```
   */
  getnameinfo(
    sockaddr: { hostname: string; port: number },
    flags = 0,
  ): Future<[string, string]> {
    const io = this.#io("getnameinfo");
    checkNameinfoArgs(sockaddr, flags);
    return watchFuture(io, nameinfo(sockaddr, flags));
  }

  // ---- Sockets: asyncio's sock_* calls on Deno's connections ----

  #sockets: DenoSockets | null = null;

  #socks(what: string): DenoSockets {
    const { proactor } = this.#streamContext(what);
    return this.#sockets ??= new DenoSockets(this, proactor);
  }

  /**
   * Reads up to `n` bytes from `conn`: the future's result has 1 to `n`
   * bytes (at most 256 KiB per call, however large `n` is), or none at
   * end of stream (and at every read after it). With `n` = 0 it is done at
   * once with no bytes and reads nothing, as asyncio's `sock_recv(sock, 0)`
   * (so no bytes means end of stream only for an `n` above 0). A
   * connection has one read in flight at a time; calls made meanwhile
   * wait their turn, in order.
   *
   * Deno cannot stop a read once started, so cancelling the future takes
   * the call out of line and leaves the read in flight; whatever it brings
   * back (bytes, end of stream, an error) goes to the next `sockRecv` or
   * `sockRecvInto` on `conn`, so nothing is lost. So do the bytes of a
   * read whose task was cancelled after the read completed but before the
   * task resumed, once every taker of the future dropped them (asyncio's
   * would be lost; tulip's `StreamReader` reads give them back alike) —
   * unless another read took later bytes meanwhile: then they are lost,
   * rather than read after those.
   * Close the connection to end a read for good.
   *
   * Closing the loop cancels the calls still waiting, as asyncio's
   * proactor loop does, and leaves `conn` open and as the application set
   * it (`ref()` / `unref()`). A read still in flight then cannot be
   * withdrawn: it takes the next bytes the peer sends, and they, with any
   * bytes read and not yet taken, go to the next `sockRecv` or
   * `sockRecvInto` on `conn` on any loop, which waits for that read first,
   * so nothing is lost. Read such a connection with another loop's
   * `sock*` calls, not with `conn.read()` or `conn.readable`: Deno serves
   * reads in order, so those would get the bytes after the ones that read
   * took, which only the `sock*` calls give back. That read no longer
   * keeps the process alive (while no loop waits for it); without Deno's
   * internal ops (`TULIP_NO_INTERNALS=1`) this goes through
   * `conn.unref()` until it settles, then `conn.ref()` (undoing an
   * `unref()` of the application's own), so meanwhile the connection's
   * other reads do not keep the process alive either.
   *
   * PEP 3156: `loop.sock_recv()` (asyncio), on a `Deno.Conn` since Deno
   * has no raw sockets.
   *
   * @param conn The connection (TCP, TLS or Unix).
   * @param n The most bytes to read, a non-negative integer.
   * @returns A future of the bytes read; it fails with Deno's error (such
   * as `Deno.errors.ConnectionReset`, or `BadResource` once closed).
   * @throws {TypeError} When `conn` is not a `Deno.Conn`.
   * @throws {RangeError} When `n` is not a non-negative integer.
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example Reading what a peer sent
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * const [client, server] = await loop.runUntilComplete(Promise.all([
   *   loop.sockConnect({ hostname: "127.0.0.1", port: listener.addr.port }),
   *   loop.sockAccept(listener),
   * ]));
   * await loop.runUntilComplete(
   *   loop.sockSendall(client, new TextEncoder().encode("hello")),
   * );
   * client.close();
   * const data = await loop.runUntilComplete(loop.sockRecv(server, 1024));
   * assertEquals(new TextDecoder().decode(data), "hello");
   * // At the end of the stream: no bytes.
   * assertEquals((await loop.runUntilComplete(loop.sockRecv(server, 1024))).length, 0);
   * server.close();
   * listener.close();
   * loop.close();
   * ```
   *
   * @example A read in flight when the loop is closed loses nothing
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { assert, assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * const [client, server] = await loop.runUntilComplete(Promise.all([
   *   loop.sockConnect({ hostname: "127.0.0.1", port: listener.addr.port }),
   *   loop.sockAccept(listener),
   * ]));
   * const reading = loop.sockRecv(server, 1024);
   * loop.close();
   * assert(reading.cancelled());
   * await client.write(new TextEncoder().encode("late"));
   * client.close();
   * // The read left in flight took "late": another loop's sockRecv gets it.
   * const next = new DenoEventLoop();
   * const data = await next.runUntilComplete(next.sockRecv(server, 1024));
   * assertEquals(new TextDecoder().decode(data), "late");
   * server.close();
   * listener.close();
   * next.close();
   * ```
   */
  sockRecv(conn: Deno.Conn, n: number): Future<Uint8Array> {
    return this.#socks("sockRecv").recv(conn, n);
  }

  /**
   * Reads from `conn` into `buf`: the future's result is the count read,
   * at most 256 KiB per call, 0 at end of stream (and at once for an empty
   * `buf`, as asyncio's `sock_recv_into()`). Otherwise as `sockRecv()`.
   * Deno reads into a buffer of the loop's, copied into `buf` only when
   * the call is still waiting, so a cancelled call never writes into `buf`
   * (as asyncio's), and what its read still brings goes to the next
   * `sockRecv` or `sockRecvInto` on `conn`. That buffer, as large as the
   * largest `buf` of this loop's calls on `conn` (at most 256 KiB), is kept
   * for its next reads until it reaches end of stream or fails.
   *
   * PEP 3156: `loop.sock_recv_into()` (asyncio).
   *
   * @param conn The connection.
   * @param buf Where the bytes land.
   * @returns A future of the count read.
   * @throws {TypeError} When `conn` is not a `Deno.Conn` or `buf` not a
   * `Uint8Array`, or its `ArrayBuffer` is detached.
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example Reading into a buffer of one's own
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * const [client, server] = await loop.runUntilComplete(Promise.all([
   *   loop.sockConnect({ hostname: "127.0.0.1", port: listener.addr.port }),
   *   loop.sockAccept(listener),
   * ]));
   * await loop.runUntilComplete(loop.sockSendall(client, new Uint8Array([1, 2, 3])));
   * const buf = new Uint8Array(8);
   * const n = await loop.runUntilComplete(loop.sockRecvInto(server, buf));
   * assertEquals([...buf.subarray(0, n)], [1, 2, 3]);
   * client.close();
   * server.close();
   * listener.close();
   * loop.close();
   * ```
   */
  sockRecvInto(conn: Deno.Conn, buf: Uint8Array): Future<number> {
    return this.#socks("sockRecvInto").recvInto(conn, buf);
  }

  /**
   * Writes all of `data` to `conn`, however many writes it takes; the
   * future is done once the last byte is handed to the system. Calls on
   * one connection are written in the order made, never interleaved. Leave
   * `data` unchanged until the future is done (it is not copied).
   *
   * Cancelling the future stops sending after the write in flight: the
   * peer may have received part of `data`, and, as with asyncio, nothing
   * says how much. Deno cannot stop that write: it still reads `data`,
   * and while the peer does not read it waits until the peer reads or the
   * connection is closed. It no longer keeps the process alive once no
   * call waits for it or behind it (or the loop is closed) — except
   * without Deno's internal ops (`TULIP_NO_INTERNALS=1`, or a Deno where
   * they are not found): `Deno.Conn`'s `write()` hides the promise that
   * `unref()` would need, so there the write holds the process until the
   * connection is closed. Close the connection to give up on a peer that
   * stopped reading.
   *
   * Closing the loop cancels the calls still waiting, as asyncio's
   * proactor loop does, as if each were cancelled: the write in flight
   * still goes out while the process runs (it no longer keeps it alive,
   * as above), the rest of its `data` and the calls behind it are not
   * sent. `conn` stays open.
   *
   * PEP 3156: `loop.sock_sendall()` (asyncio).
   *
   * @param conn The connection.
   * @param data The bytes.
   * @returns A future done once all is written; it fails with Deno's
   * error (such as `Deno.errors.BrokenPipe`), or a `TypeError` when
   * `data` was detached or shrunk before all of it was written.
   * @throws {TypeError} When `conn` is not a `Deno.Conn` or `data` not a
   * `Uint8Array`, or its `ArrayBuffer` is detached.
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example Sending a megabyte in one call
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * const [client, server] = await loop.runUntilComplete(Promise.all([
   *   loop.sockConnect({ hostname: "127.0.0.1", port: listener.addr.port }),
   *   loop.sockAccept(listener),
   * ]));
   * const sent = loop.createTask(function* () {
   *   yield* loop.sockSendall(client, new Uint8Array(1 << 20).fill(7));
   *   client.close();
   * });
   * let total = 0;
   * for (;;) {
   *   const chunk = await loop.runUntilComplete(loop.sockRecv(server, 65536));
   *   if (chunk.length === 0) break;
   *   total += chunk.length;
   * }
   * await loop.runUntilComplete(sent);
   * assertEquals(total, 1 << 20);
   * server.close();
   * listener.close();
   * loop.close();
   * ```
   */
  sockSendall(conn: Deno.Conn, data: Uint8Array): Future<void> {
    return this.#socks("sockSendall").sendall(conn, data);
  }

  /**
   * Connects as `Deno.connect(options)` does — TCP (`{ hostname, port }`)
   * or a Unix socket (`{ transport: "unix", path }`) — and gives the
   * `Deno.Conn`. Deno has no unconnected sockets, so this takes the address
   * instead of a socket to connect. Cancelling the future abandons the
   * attempt (TCP connects are aborted; a connection that still arrives is
   * closed). Nagle's algorithm is left as Deno sets it. Closing the loop
   * cancels a call still waiting, as cancelling it does.
   *
   * PEP 3156: `loop.sock_connect()` (asyncio).
   *
   * @param options `Deno.connect`'s options.
   * @returns A future of the connection; it fails with Deno's error (such
   * as `Deno.errors.ConnectionRefused`) with a message naming the address
   * (`Cannot connect to 127.0.0.1:9: …`, `Cannot connect to unix:/path:
   * …`; the original is its `cause`), or for a host name that does not
   * resolve as `getaddrinfo()` does (`Deno.errors.NotFound` for no such
   * host).
   * @throws {TypeError} When `options` or a field has the wrong type.
   * @throws {RangeError} When `port` is out of range, `hostname` is empty
   * or `transport` is neither `"tcp"` nor `"unix"`.
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example A refused connection
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { assertRejects } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * const { port } = listener.addr;
   * listener.close(); // nobody listens there now
   * await assertRejects(
   *   () => loop.runUntilComplete(loop.sockConnect({ hostname: "127.0.0.1", port })),
   *   Deno.errors.ConnectionRefused,
   * );
   * loop.close();
   * ```
   */
  sockConnect(
    options: Deno.ConnectOptions | Deno.UnixConnectOptions,
  ): Future<Deno.Conn> {
    return this.#socks("sockConnect").connect(options);
  }

  /**
   * Accepts one connection on `listener` (from `Deno.listen`,
   * `Deno.listenTls` or a Unix `Deno.listen`). A listener has one accept
   * in flight at a time; calls made meanwhile wait their turn. Deno cannot
   * stop an accept, so cancelling the future takes the call out of line;
   * a connection the abandoned accept still brings goes to the next
   * `sockAccept` on `listener` (or is closed by the loop's `close()`).
   * When the listener is closed, every waiting call fails.
   *
   * Closing the loop cancels the calls still waiting, as asyncio's
   * proactor loop does, and leaves `listener` open. The accept still in
   * flight no longer keeps the process alive: Deno offers only
   * `listener.unref()` for that, so until it settles the listener's other
   * accepts do not keep it alive either; once it settles, `listener.ref()`
   * gives the listener back (undoing an `unref()` of the application's
   * own). Deno refuses a second accept on the listener meanwhile: the next
   * `sockAccept` on it, on any loop, waits for that accept and gets the
   * connection it brings (closed if no call waits for it then).
   *
   * PEP 3156: `loop.sock_accept()` (asyncio); the result is the
   * connection alone, its `remoteAddr` being the address.
   *
   * @param listener The listener.
   * @returns A future of the connection.
   * @throws {TypeError} When `listener` is not a `Deno.Listener`.
   * @throws {InvalidStateError} When the loop is closed.
   *
   * @example Accepting a connection
   * ```ts
   * import { DenoEventLoop } from "@tulip/tulip/loop";
   * import { assertEquals } from "@std/assert";
   *
   * const loop = new DenoEventLoop();
   * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * const accepted = loop.sockAccept(listener);
   * const client = await loop.runUntilComplete(
   *   loop.sockConnect({ hostname: "127.0.0.1", port: listener.addr.port }),
   * );
   * const server = await loop.runUntilComplete(accepted);
   * assertEquals(
   *   (server.remoteAddr as Deno.NetAddr).port,
   *   (client.localAddr as Deno.NetAddr).port,
   * );
   * client.close();
   * server.close();
   * listener.close();
   * loop.close();
   * ```
   */
  sockAccept(listener: Deno.Listener): Future<Deno.Conn> {
    return this.#socks("sockAccept").accept(listener);
  }

  /**
   * Turns what `defaultExceptionHandler()` logs into text as Deno's
   * console prints it to stderr (colours on a terminal).
   *
   * @param value A field of the report, or its exception.
   * @returns The text.
   */
  protected override logText(value: unknown): string {
    if (typeof value === "string") return value;
    return Deno.inspect(value, {
      colors: !Deno.noColor && Deno.stderr.isTerminal(),
    });
  }

  /**
   * Closes the loop as `BaseEventLoop.close()` does, then removes its
   * signal handlers, closes connections accepted for `sockAccept` calls
   * that were cancelled (the reads and accepts of `sock*` calls still in
   * flight on your own sockets, which it leaves open, are unref'd), and
   * shuts down its default executor with `shutdown({ wait: false })`, as
   * asyncio does (a `WorkerExecutor` terminates its workers at once: jobs
   * still running are dropped).
   *
   * It also releases every Deno resource its transports and servers still
   * hold, so that nothing the loop started keeps the process alive (as
   * asyncio's proactor loop cancels its pending I/O): the listeners of
   * servers still open, connections (TLS included, and those still
   * connecting or in their handshake), datagram sockets and pipes are
   * closed, reads and accepts in flight end without a word to anyone, and
   * no protocol is called again. Child processes are not
   * killed (as in asyncio), but no longer keep the process alive (call
   * `ref()` on the `Deno.ChildProcess` to wait for one). Those transports
   * are unusable afterwards. If some were still open (never closed), one
   * report goes to the exception handler, as asyncio's `ResourceWarning`
   * would: "The event loop was closed with 1 open transport and 2
   * servers still open: close them before closing the loop".
   *
   * PEP 3156: `loop.close()`.
   *
   * @example A server left open does not keep the process alive
   * ```ts
   * import { newEventLoop, Protocol } from "@tulip/tulip";
   * import { assertEquals, assertStringIncludes } from "@std/assert";
   *
   * const loop = newEventLoop();
   * const reports: string[] = [];
   * loop.setExceptionHandler((_, context) => reports.push(context.message));
   * await loop.runUntilComplete(
   *   loop.createServer(() => new Protocol(), "127.0.0.1", 0),
   * ); // and never closed
   * loop.close(); // closes its listener: the accept in flight ends
   * assertEquals(reports.length, 1);
   * assertStringIncludes(reports[0], "0 open transports and 1 server still");
   * await new Promise((resolve) => setTimeout(resolve, 10));
   * ```
   *
   * @throws {InvalidStateError} When the loop is running.
   */
  override close(): void {
    if (this.isClosed()) return;
    // While their callbacks can still be scheduled (a running loop is
    // refused below).
    if (!this.isRunning()) this.#sockets?.cancelWaiting();
    super.close();
    const left = this.#streams?.proactor.closeAll();
    if (left !== undefined && left.transports + left.servers > 0) {
      this.callExceptionHandler({
        message: `The event loop was closed with ${
          count(left.transports, "open transport")
        } and ${
          count(left.servers, "server")
        } still open: close them before closing the loop`,
      });
    }
    this.#signals?.clear();
    this.#sockets?.close();
    const executor = this.#defaultExecutor;
    this.#defaultExecutor = null;
    if (executor !== null) {
      const stopped = executor.shutdown({ wait: false });
      Promise.resolve(stopped).catch((exception) =>
        this.defaultExceptionHandler({
          message: "The default executor failed to shut down",
          exception,
        })
      );
    }
  }

  /**
   * Waits for events as `BaseEventLoop` does; while signal handlers are
   * installed it also keeps the process alive (Deno's signal listeners do
   * not), so that a loop waiting only for a signal gets it.
   *
   * @param deadline The loop time, in seconds, to wake up at, or `null`.
   * @returns A promise that resolves when the wait is over.
   */
  protected override waitForEvents(deadline: number | null): Promise<void> {
    const waiting = super.waitForEvents(deadline);
    if (this.#signals === null || this.#signals.size === 0) return waiting;
    const keepAlive = setInterval(() => {}, 0x7fffffff);
    return waiting.finally(() => clearInterval(keepAlive));
  }

  /**
   * Returns whether I/O may complete while the loop waits for a timer: an
   * operation of its proactor is in flight (a read, an accept, a
   * subprocess, an executor's job), or a signal handler is installed.
   *
   * @returns Whether I/O is in flight.
   */
  protected override ioPending(): boolean {
    return (this.#streams !== null && this.#streams.proactor.pending > 0) ||
      (this.#signals !== null && this.#signals.size > 0);
  }

  #checkIoOpen(what: string): void {
    if (this.isClosed()) {
      throw new InvalidStateError(`Cannot call ${what}(): the loop is closed`);
    }
  }
}

/** `n` and `noun`, made plural unless `n` is 1: "2 servers". */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
