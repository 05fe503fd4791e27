/**
 * Upgrading a connection a server accepted to TLS on Deno (STARTTLS, the
 * server side): the body of `DenoEventLoop.startTls` with
 * `serverSide: true`.
 *
 * @module
 */

import { InvalidStateError, TimeoutError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { BaseProtocol } from "../protocols/protocol.ts";
import type { Transport } from "./transport.ts";
import type { Owned } from "./_proactor.ts";
import type { StartTlsOptions } from "../loop/event_loop.ts";
import { handshakeFailure } from "./_deno_names.ts";
import { reportLost } from "./_deno_pipes.ts";
import {
  loadNodeTls,
  nodeTlsConfig,
  NodeTlsConn,
  type NodeTlsModules,
} from "./_deno_node_tls.ts";
import {
  DenoStreamTransport,
  type StreamContext,
} from "./_deno_stream_transport.ts";

/**
 * Upgrades `plain`, a transport a server accepted, to TLS as the server,
 * with node:tls over the TCP socket (as tulip's TLS servers serve, see
 * `_deno_node_tls.ts`). Reading stops at once: from then on what the
 * socket brings is the client's TLS — the read in flight (a STARTTLS
 * server keeps reading after its go-ahead, and the ClientHello ends that
 * read) or one done but held while the protocol paused reading is handed
 * to the TLS layer as its first bytes, so no relay is needed. Buffered
 * writes (the go-ahead) are sent first. Once the handshake is done a new
 * transport over the TLS connection carries on with `protocol`, without
 * its `connectionMade()`, reading at once; it takes over the server's
 * tracking of the connection (`close()`/`abort()` on `plain` end it). On
 * failure, or when `timeout` passes, the socket is closed and the
 * protocol gets `connectionLost(error)`.
 *
 * @param ctx The loop and its proactor.
 * @param plain The plain transport, accepted by this loop's server.
 * @param protocol The protocol to go on with.
 * @param options The TLS options, checked: `cert` and `key` are strings.
 * @param timeout The handshake timeout, in seconds.
 * @returns A future of the new transport.
 */
export function startServerTls(
  ctx: StreamContext,
  plain: DenoStreamTransport,
  protocol: BaseProtocol,
  options: StartTlsOptions,
  timeout: number,
): Future<Transport> {
  const blocker = plain.releaseBlocker(true);
  if (blocker !== null) {
    throw new InvalidStateError(`Cannot call startTls(): ${blocker}`);
  }
  const peer = plain.getExtraInfo("peername") as Deno.NetAddr;
  const prefix = `Cannot start TLS with client ${peer.hostname}:${peer.port}`;
  const { loop, proactor } = ctx;
  const fut = loop.createFuture<Transport>();
  let modules: NodeTlsModules | null = null;
  // The TCP connection, once the plain transport let go of it, and the
  // bytes of the read it had in flight.
  let tcp: Deno.Conn | null = null;
  let first: Promise<Uint8Array | null> | null = null;
  let tls: NodeTlsConn | null = null;
  // The server's hook that forgets the connection, once taken over.
  let onLost: ((forced: boolean) => void) | undefined;
  let done = false;

  const closeAll = (): void => {
    if (tls !== null) proactor.close(tls as unknown as Deno.Conn);
    else if (tcp !== null) proactor.close(tcp);
  };

  /** Ends a failed upgrade: closes the socket, and tells the protocol. */
  const fail = (error: unknown): void => {
    if (done) return;
    done = true;
    timer.cancel();
    if (tcp === null) {
      // The plain transport still has the connection: it tells the
      // protocol (and the server).
      plain.failWith(error as Error);
    } else {
      closeAll();
      loop.callSoon(() => {
        reportLost(loop, plain, protocol, error as Error);
        onLost?.(true);
      });
    }
    if (!fut.done()) fut.setException(error);
  };

  const timer = loop.callLater(timeout, () => {
    fail(new TimeoutError(`${prefix}: no handshake within ${timeout} s`));
  });
  // Closing the loop closes the socket the upgrade holds.
  const pending: Owned = {
    release: () => {
      closeAll();
      return false;
    },
  };
  proactor.own(pending, "internal");
  fut.addDoneCallback(() => {
    proactor.disown(pending);
    if (fut.cancelled()) fail(new InvalidStateError(`${prefix}: cancelled`));
  });

  const handshaken = (info: Deno.TlsHandshakeInfo): void => {
    if (done) return;
    done = true;
    timer.cancel();
    const upgraded = new DenoStreamTransport(
      ctx,
      tls as unknown as Deno.Conn,
      protocol,
      {
        tls: { alpnProtocol: info.alpnProtocol ?? null },
        serverSide: true,
        connectionMade: false,
        onLost,
        onReady: () => {
          if (fut.done()) upgraded.abort();
          else fut.setResult(upgraded);
        },
      },
    );
    plain.succeededBy(upgraded);
    plain.forwardEnds(upgraded);
  };

  /** Starts the TLS session once node:tls is loaded and the socket free. */
  const begin = (): void => {
    if (done || modules === null || tcp === null) return;
    let conn: NodeTlsConn;
    try {
      const config = nodeTlsConfig(
        modules,
        options.cert!,
        options.key!,
        options.alpnProtocols,
      );
      conn = tls = new NodeTlsConn(
        tcp as Deno.TcpConn,
        config,
        first ?? undefined,
      );
    } catch (error) {
      return fail(error);
    }
    proactor.watch(
      conn.handshake(),
      proactor.bind<Deno.TlsHandshakeInfo>({
        done: handshaken,
        failed: (error) => fail(handshakeFailure(error, prefix)),
        orphaned: closeAll,
      }),
    );
  };

  proactor.watch(
    loadNodeTls(),
    proactor.bind<NodeTlsModules>({
      done: (loaded) => {
        modules = loaded;
        begin();
      },
      failed: fail,
    }),
  );
  plain.releaseToTls((conn, bytes, error) => {
    if (conn === null) {
      // The plain transport closed and told the protocol.
      if (done) return;
      done = true;
      timer.cancel();
      fut.setException(
        new InvalidStateError(`${prefix}: ${(error as Error)?.message}`),
      );
      return;
    }
    tcp = conn;
    first = bytes;
    onLost = plain.takeOnLost();
    const end = () => fail(new InvalidStateError(`${prefix}: closed`));
    plain.forwardEnds({ close: end, abort: end });
    if (done) return closeAll();
    begin();
  });
  return fut;
}
