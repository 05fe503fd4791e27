/**
 * Opening stream connections and servers on Deno: the bodies of
 * `DenoEventLoop`'s `createConnection`, `createUnixConnection`,
 * `createServer` and `createUnixServer`.
 *
 * @module
 */

import { formatReceived, TimeoutError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { BaseProtocol } from "../protocols/protocol.ts";
import type { Transport } from "./transport.ts";
import type {
  CreateConnectionOptions,
  CreateServerOptions,
  Server,
} from "../loop/event_loop.ts";
import type { Owned } from "./_proactor.ts";
import { hasUnstableNet, unstableNetError } from "./_deno_datagram.ts";
import {
  canonicalAddress,
  checkHost,
  checkPort,
  checkServerHosts,
  checkServerOptions,
  checkUnixPath,
  describeAddress,
  ipFamily,
} from "./address_checks.ts";
import { handshakeFailure, withAddress } from "./_deno_names.ts";
import { checkProtocolFactory } from "./_deno_pipes.ts";
import { DenoServer, TLS_HANDSHAKE_TIMEOUT } from "./_deno_server.ts";
import {
  loadNodeTls,
  type NodeTlsConfig,
  nodeTlsConfig,
  NodeTlsListener,
  type NodeTlsModules,
} from "./_deno_node_tls.ts";
import {
  DenoStreamTransport,
  type StreamContext,
} from "./_deno_stream_transport.ts";
import { checkOptions, makeProtocol } from "../futures/_runtime.ts";

/** Where to connect: a TCP host and port, or a Unix socket's path. */
export type StreamTarget =
  | { host: string; port: number }
  | { path: string };

/**
 * Where to listen: TCP hosts (one, a list, or `undefined` for every
 * interface) and a port, or a Unix socket's path.
 */
export type ServerTarget =
  | { host: string | readonly string[] | undefined; port: number }
  | { path: string };

/** Checks the protocol factory and the target, common to every opener. */
function checkArgs(
  what: string,
  factory: unknown,
  target: StreamTarget | ServerTarget,
): void {
  checkProtocolFactory(factory, `call ${what}()`);
  if ("path" in target) {
    checkUnixPath(target.path, `call ${what}()`);
    return;
  }
  const host: unknown = target.host;
  if (what === "createServer") checkServerHosts(host, `call ${what}()`);
  else checkHost(host, `call ${what}()`);
  checkPort(target.port, `call ${what}()`);
}

/**
 * Checks a `localAddr` option: an IP address and a port, for TCP.
 *
 * @param value The option as given.
 * @param target Where the connection goes.
 * @param what The method name, for messages.
 * @returns The address, or `undefined` when not given.
 */
function checkLocalAddr(
  value: unknown,
  target: StreamTarget,
  what: string,
): { hostname: string; port: number } | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object") {
    throw new TypeError(
      `Cannot call ${what}(): localAddr must be { hostname, port }, received ${
        formatReceived(value)
      }`,
    );
  }
  if ("path" in target) {
    throw new RangeError(
      `Cannot call ${what}(): localAddr is for TCP, not a Unix socket, received localAddr=${
        JSON.stringify(value)
      }`,
    );
  }
  const { hostname } = value as { hostname?: unknown };
  if (typeof hostname !== "string") {
    throw new TypeError(
      `Cannot call ${what}(): localAddr.hostname must be a string, received ${
        formatReceived(hostname)
      }`,
    );
  }
  if (ipFamily(hostname) === 0) {
    throw new RangeError(
      `Cannot call ${what}(): localAddr.hostname must be an IP address (resolve the name first), received ${
        JSON.stringify(hostname)
      }`,
    );
  }
  const port = checkPort(
    (value as { port?: unknown }).port,
    `call ${what}() with localAddr.port`,
  );
  return { hostname, port };
}

/**
 * The error for a connection whose local address is not the one asked
 * for (Deno cannot bind before connecting), or `null` when it is.
 */
function localMismatch(
  conn: Deno.Conn,
  want: { hostname: string; port: number },
  prefix: string,
): Error | null {
  const got = conn.localAddr as Deno.NetAddr;
  const any = want.hostname === "0.0.0.0" ||
    canonicalAddress(want.hostname) === "::";
  if (
    (any ||
      canonicalAddress(want.hostname) === canonicalAddress(got.hostname)) &&
    (want.port === 0 || want.port === got.port)
  ) return null;
  return new Deno.errors.NotSupported(
    `${prefix}: Deno cannot bind a local address before connecting, and the system chose ${
      describeAddress(got)
    }, received localAddr=${want.hostname}:${want.port} (ask for port 0 and the address the route leaves from)`,
  );
}

/**
 * Checks an `ssl.handshakeTimeout` option (`startTls()`'s
 * `handshakeTimeout`).
 *
 * @param value The option as given.
 * @param what The method name, for messages.
 * @param name The option's name, for messages.
 * @returns The timeout in seconds, the default when not given.
 */
export function checkHandshakeTimeout(
  value: unknown,
  what: string,
  name = "ssl.handshakeTimeout",
): number {
  if (value === undefined) return TLS_HANDSHAKE_TIMEOUT;
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot call ${what}(): ${name} must be a number of seconds, received ${typeof value}`,
    );
  }
  if (!(value > 0 && value < Infinity)) {
    throw new RangeError(
      `Cannot call ${what}(): ${name} must be a positive number of seconds, received ${
        formatReceived(value)
      }`,
    );
  }
  return value;
}

/** A host and port as written in a URL: IPv6 addresses in brackets. */
function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Checks a list of strings in the TLS options (`alpnProtocols`, `caCerts`).
 *
 * @param value The option as given.
 * @param name Its name, for messages.
 * @param what The method name, for messages.
 */
export function checkTlsStrings(
  value: unknown,
  name: string,
  what: string,
): void {
  if (value === undefined) return;
  if (
    !Array.isArray(value) || !value.every((v) => typeof v === "string")
  ) {
    throw new TypeError(
      `Cannot call ${what}(): ${name} must be an array of strings, received ${
        Array.isArray(value) ? "an array with other items" : typeof value
      }`,
    );
  }
}

/**
 * Checks an ALPN option (`alpnProtocols`): a list of protocol names, each
 * 1 to 255 bytes (RFC 7301 §3.1) and ASCII, as asyncio's
 * `set_alpn_protocols()` takes them: an empty or longer name makes a
 * ClientHello the server refuses, or a server that refuses every client,
 * and Deno reads the name ALPN chose back as Latin-1.
 *
 * @param value The option as given.
 * @param name Its name, for messages.
 * @param what The method name, for messages.
 */
export function checkAlpnProtocols(
  value: unknown,
  name: string,
  what: string,
): void {
  checkTlsStrings(value, name, what);
  const names = (value ?? []) as string[];
  const bad = names.findIndex((p) => !/^\p{ASCII}{1,255}$/u.test(p));
  if (bad !== -1) {
    throw new RangeError(
      `Cannot call ${what}(): ${name} must be protocol names of 1 to 255 ASCII characters (RFC 7301 §3.1), received ${
        formatReceived(names[bad])
      } at index ${bad}`,
    );
  }
}

function where(target: StreamTarget): string {
  return "path" in target
    ? `unix:${target.path}`
    : hostPort(target.host, target.port);
}

/**
 * Whether Deno already grants listening on `host:port`: asked without a
 * prompt, so that an optional address never makes Deno prompt the user.
 */
function netGranted(host: string, port: number): boolean {
  try {
    return Deno.permissions.querySync({
      name: "net",
      host: hostPort(host, port),
    }).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Opens one listener per host, all on one port: with port 0, the port the
 * first one got (or, if that is taken for another host, any free one). A
 * host whose address is listened on already is skipped. Without hosts
 * (`undefined` or `""`) it listens on every interface as asyncio does: `::` and
 * `0.0.0.0`, or just `::` where that socket also takes IPv4 (Linux's
 * default), or just `0.0.0.0` where IPv6 is off or not permitted.
 *
 * @param hosts The hosts, or `undefined` for every interface.
 * @param port The port; 0 for any.
 * @param listen Opens one listener.
 * @returns The listeners.
 */
function listenHosts(
  hosts: readonly string[] | undefined,
  port: number,
  listen: (hostname: string, port: number) => Deno.Listener,
): Deno.Listener[] {
  const open = (host: string, p: number): Deno.Listener => {
    try {
      return listen(host, p);
    } catch (error) {
      throw withAddress(error, `Cannot listen on ${hostPort(host, p)}`);
    }
  };
  if (hosts === undefined) {
    let v6: Deno.Listener | null = null;
    if (netGranted("::", port)) {
      try {
        v6 = listen("::", port);
      } catch (error) {
        if (error instanceof Deno.errors.AddrInUse) {
          throw withAddress(error, `Cannot listen on ${hostPort("::", port)}`);
        }
        // No IPv6 on this machine: IPv4 alone.
      }
    }
    if (v6 === null) return [open("0.0.0.0", port)];
    try {
      return [v6, listen("0.0.0.0", (v6.addr as Deno.NetAddr).port)];
    } catch {
      // The IPv6 socket takes IPv4 too (the port is then in use for
      // 0.0.0.0), or IPv4 is not permitted: `::` serves alone.
      return [v6];
    }
  }
  const listeners: Deno.Listener[] = [];
  // A host already listened on, under this name or another (a name and
  // its address, a host listed twice), is bound once, as asyncio does.
  const bound = (l: Deno.Listener): boolean =>
    listeners.some((other) =>
      (other.addr as Deno.NetAddr).hostname ===
        (l.addr as Deno.NetAddr).hostname
    );
  // Listens on `host` at any port to learn the address it names; `null`
  // when that fails too.
  const probe = (host: string): Deno.Listener | null => {
    try {
      return listen(host, 0);
    } catch {
      return null;
    }
  };
  try {
    for (const host of hosts) {
      const first = listeners[0]?.addr as Deno.NetAddr | undefined;
      const p = port === 0 && first !== undefined ? first.port : port;
      let listener: Deno.Listener;
      try {
        listener = listen(host, p);
      } catch (error) {
        if (!(error instanceof Deno.errors.AddrInUse)) {
          throw withAddress(error, `Cannot listen on ${hostPort(host, p)}`);
        }
        // In use: by this server under another name, or (with port 0)
        // for this host by someone else: then any free port will do.
        const other = listeners.length === 0 ? null : probe(host);
        if (other !== null && bound(other)) {
          other.close();
          continue;
        }
        if (port !== 0 || other === null) {
          other?.close();
          throw withAddress(error, `Cannot listen on ${hostPort(host, p)}`);
        }
        listener = other;
      }
      // With reusePort the same address binds again: keep one.
      if (bound(listener)) listener.close();
      else listeners.push(listener);
    }
  } catch (error) {
    for (const listener of listeners) listener.close();
    throw error;
  }
  return listeners;
}

async function connectConn(
  target: StreamTarget,
  options: CreateConnectionOptions | undefined,
  signal: AbortSignal,
): Promise<Deno.Conn> {
  if ("path" in target) {
    return await Deno.connect({ transport: "unix", path: target.path });
  }
  // No TLS for ssl null, as for asyncio's ssl=None.
  const ssl = options?.ssl ?? false;
  if (typeof ssl === "object" && ssl.cert !== undefined) {
    // Only connectTls() presents a client certificate; it checks the
    // server's name against the host it connects to.
    return await Deno.connectTls({
      hostname: target.host,
      port: target.port,
      caCerts: ssl.caCerts,
      alpnProtocols: ssl.alpnProtocols,
      cert: ssl.cert,
      key: ssl.key!,
    });
  }
  const tcp = await Deno.connect({
    hostname: target.host,
    port: target.port,
    signal,
  });
  try {
    tcp.setNoDelay(true);
  } catch {
    // Closed already: the first read reports it.
  }
  if (ssl === false) return tcp;
  const tls = typeof ssl === "object" ? ssl : undefined;
  // The handshake is left to the caller, which times it.
  try {
    return await Deno.startTls(tcp, {
      hostname: options?.serverHostname ?? target.host,
      caCerts: tls?.caCerts,
      alpnProtocols: tls?.alpnProtocols,
    });
  } catch (error) {
    try {
      tcp.close();
    } catch {
      // startTls consumed it.
    }
    throw error;
  }
}

/**
 * Connects and resolves with `[transport, protocol]` once the protocol's
 * `connectionMade()` has run.
 *
 * @param ctx The loop and its proactor.
 * @param what The method name, for messages.
 * @param protocolFactory Makes the protocol.
 * @param target The address.
 * @param options TLS options.
 * @returns A future of the pair.
 */
export function openConnection<P extends BaseProtocol>(
  ctx: StreamContext,
  what: string,
  protocolFactory: () => P,
  target: StreamTarget,
  options?: CreateConnectionOptions,
): Future<[Transport, P]> {
  checkArgs(what, protocolFactory, target);
  checkOptions(options, `call ${what}()`, "{ ssl, serverHostname, localAddr }");
  const ssl = options?.ssl;
  if (
    ssl !== undefined && typeof ssl !== "boolean" && typeof ssl !== "object"
  ) {
    throw new TypeError(
      `Cannot call ${what}(): ssl must be a boolean or an object, received ${typeof ssl}`,
    );
  }
  const tls = ssl !== undefined && ssl !== false && ssl !== null;
  if (tls && "path" in target) {
    throw new RangeError(
      `Cannot call ${what}(): TLS over a Unix socket is not supported, received ssl=${
        JSON.stringify(ssl)
      }`,
    );
  }
  const serverHostname: unknown = options?.serverHostname ?? undefined;
  if (serverHostname !== undefined && typeof serverHostname !== "string") {
    throw new TypeError(
      `Cannot call ${what}(): serverHostname must be a string, received ${typeof serverHostname}`,
    );
  }
  const handshakeTimeout = tls
    ? checkHandshakeTimeout(
      typeof ssl === "object" ? ssl?.handshakeTimeout : undefined,
      what,
    )
    : 0;
  if (typeof ssl === "object" && ssl !== null) {
    checkAlpnProtocols(ssl.alpnProtocols, "ssl.alpnProtocols", what);
    checkTlsStrings(ssl.caCerts, "ssl.caCerts", what);
    if ((ssl.cert === undefined) !== (ssl.key === undefined)) {
      throw new TypeError(
        `Cannot call ${what}(): ssl.cert and ssl.key go together, received only ${
          ssl.cert === undefined ? "key" : "cert"
        }`,
      );
    }
    if (
      ssl.cert !== undefined &&
      (typeof ssl.cert !== "string" || typeof ssl.key !== "string")
    ) {
      throw new TypeError(
        `Cannot call ${what}(): ssl.cert and ssl.key must be PEM strings, received ${typeof ssl
          .cert} and ${typeof ssl.key}`,
      );
    }
    if (
      ssl.cert !== undefined && serverHostname !== undefined &&
      serverHostname !== (target as { host: string }).host
    ) {
      throw new RangeError(
        `Cannot call ${what}(): with a client certificate Deno checks the server's name against the host, received serverHostname=${
          JSON.stringify(serverHostname)
        }`,
      );
    }
  }
  if (serverHostname !== undefined && !tls) {
    throw new RangeError(
      `Cannot call ${what}(): serverHostname needs ssl, received serverHostname=${serverHostname}`,
    );
  }
  const localAddr = checkLocalAddr(options?.localAddr, target, what);
  const { loop, proactor } = ctx;
  const fut = loop.createFuture<[Transport, P]>();
  const abort = new AbortController();
  // The TLS connection while its handshake runs.
  let handshaking: Deno.TlsConn | null = null;
  // Closing the loop gives up the connect and closes a connection whose
  // handshake runs (their timers are gone with it).
  const pending: Owned = {
    release: () => {
      abort.abort();
      if (handshaking !== null) proactor.close(handshaking);
      return false;
    },
  };
  proactor.own(pending, "internal");
  fut.addDoneCallback(() => {
    proactor.disown(pending);
    if (!fut.cancelled()) return;
    abort.abort();
    if (handshaking !== null) proactor.close(handshaking);
  });
  const prefix = `Cannot connect to ${where(target)}${tls ? " over TLS" : ""}`;
  const connected = (conn: Deno.Conn, info?: Deno.TlsHandshakeInfo): void => {
    if (fut.done()) return proactor.close(conn);
    let protocol: P;
    try {
      protocol = makeProtocol(protocolFactory, `call ${what}()`);
    } catch (error) {
      proactor.close(conn);
      fut.setException(error);
      return;
    }
    const transport = new DenoStreamTransport(ctx, conn, protocol, {
      tls: info === undefined ? undefined : {
        alpnProtocol: info.alpnProtocol ?? null,
      },
      onReady: (error) => {
        if (fut.done()) {
          // Cancelled meanwhile: the caller will never see it.
          if (error === undefined) transport.abort();
        } else if (error !== undefined) fut.setException(error);
        else fut.setResult([transport, protocol]);
      },
    });
  };
  const handshake = (conn: Deno.TlsConn): void => {
    if (fut.done()) return proactor.close(conn);
    handshaking = conn;
    // A server that never answers is given up on when time is up.
    let timedOut = false;
    const timer = loop.callLater(handshakeTimeout, () => {
      timedOut = true;
      proactor.close(conn);
    });
    const finish = (
      ok: boolean,
      error?: unknown,
      info?: Deno.TlsHandshakeInfo,
    ): void => {
      timer.cancel();
      handshaking = null;
      if (ok && !timedOut) return connected(conn, info);
      proactor.close(conn);
      if (fut.done()) return;
      fut.setException(
        timedOut
          ? new TimeoutError(
            `${prefix}: no handshake within ${handshakeTimeout} s`,
          )
          : handshakeFailure(error, prefix),
      );
    };
    proactor.watch(
      conn.handshake(),
      proactor.bind<Deno.TlsHandshakeInfo>({
        done: (info) => finish(true, undefined, info),
        failed: (error) => finish(false, error),
        orphaned: () => proactor.close(conn),
      }),
    );
  };
  proactor.watch(
    connectConn(target, options, abort.signal),
    proactor.bind<Deno.Conn>({
      done: (conn) => {
        const wrong = localAddr && localMismatch(conn, localAddr, prefix);
        if (wrong) {
          proactor.close(conn);
          if (!fut.done()) fut.setException(wrong);
        } else if (tls) handshake(conn as Deno.TlsConn);
        else connected(conn);
      },
      failed: (error) => {
        if (!fut.done()) fut.setException(withAddress(error, prefix));
      },
      orphaned: (conn) => {
        if (conn !== undefined) proactor.close(conn);
      },
    }),
  );
  return fut;
}

/**
 * Listens and resolves with the `Server`, accepting unless
 * `startServing: false`.
 *
 * @param ctx The loop and its proactor.
 * @param what The method name, for messages.
 * @param protocolFactory Makes one protocol per connection.
 * @param target The address.
 * @param options TLS and listener options.
 * @returns A future of the server.
 */
export function openServer(
  ctx: StreamContext,
  what: string,
  protocolFactory: () => BaseProtocol,
  target: ServerTarget,
  options?: CreateServerOptions,
): Future<Server> {
  checkArgs(what, protocolFactory, target);
  checkServerOptions(options, `call ${what}()`);
  // No TLS for ssl null, as for asyncio's ssl=None.
  const ssl = options?.ssl ?? undefined;
  if (ssl !== undefined) {
    if (
      typeof ssl !== "object" || ssl === null ||
      typeof ssl.cert !== "string" || typeof ssl.key !== "string"
    ) {
      throw new TypeError(
        `Cannot call ${what}(): ssl must be { cert, key } in PEM, received ${typeof ssl}`,
      );
    }
    checkHandshakeTimeout(ssl.handshakeTimeout, what);
    checkAlpnProtocols(ssl.alpnProtocols, "ssl.alpnProtocols", what);
    if ("path" in target) {
      throw new RangeError(
        `Cannot call ${what}(): TLS over a Unix socket is not supported, received ssl`,
      );
    }
  }
  const backlog = options?.backlog;
  if (
    backlog !== undefined && (!Number.isInteger(backlog) || backlog < 0)
  ) {
    throw new RangeError(
      `Cannot call ${what}(): backlog must be a non-negative integer, received ${
        formatReceived(backlog)
      }`,
    );
  }
  if (options?.reusePort === true && !hasUnstableNet()) {
    // Deno.listen would end the process instead of throwing.
    throw unstableNetError(`call ${what}()`, "reusePort");
  }
  const fut = ctx.loop.createFuture<Server>();
  const listen = (tls: NodeTlsModules | null): void => {
    // Cancelled while node:tls loaded: nothing was bound.
    if (fut.done()) return;
    let listeners: Deno.Listener[];
    try {
      if ("path" in target) {
        removeStaleSocket(target.path);
        listeners = [Deno.listen({ transport: "unix", path: target.path })];
      } else {
        // TLS through node:tls over plain TCP sockets, which tulip can
        // close at once (see _deno_node_tls.ts); the certificate and key are
        // checked, as Deno.listenTls() does, before a socket is bound.
        let config: NodeTlsConfig | null = null;
        const hosts = checkServerHosts(target.host, `call ${what}()`);
        listeners = listenHosts(hosts, target.port, (hostname, port) => {
          if (tls !== null) {
            config ??= nodeTlsConfig(
              tls,
              ssl!.cert,
              ssl!.key,
              ssl!.alpnProtocols,
            );
          }
          const listener = Deno.listen({
            hostname,
            port,
            reusePort: options?.reusePort ?? false,
            tcpBacklog: backlog,
          });
          return config === null
            ? listener
            : new NodeTlsListener(listener, config) as unknown as Deno.Listener;
        });
      }
    } catch (error) {
      fut.setException(
        "path" in target
          ? withAddress(error, `Cannot listen on ${where(target)}`)
          : error,
      );
      return;
    }
    const server = new DenoServer(ctx, listeners, protocolFactory, {
      tls: ssl !== undefined,
      handshakeTimeout: ssl?.handshakeTimeout,
      unixPath: "path" in target ? target.path : undefined,
    });
    if (options?.startServing ?? true) server.startServing();
    fut.setResult(server);
  };
  if (ssl === undefined) {
    listen(null);
    return fut;
  }
  ctx.proactor.watch(
    loadNodeTls(),
    ctx.proactor.bind<NodeTlsModules>({
      done: listen,
      failed: (error) => {
        if (!fut.done()) fut.setException(error);
      },
    }),
  );
  return fut;
}

/** Removes a Unix socket file left by a previous server, as asyncio does. */
function removeStaleSocket(path: string): void {
  try {
    if (Deno.lstatSync(path).isSocket) Deno.removeSync(path);
  } catch {
    // Nothing there, or not ours: listening reports any real trouble.
  }
}
