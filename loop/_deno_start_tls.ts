/**
 * Upgrading a client connection to TLS on Deno: the body of
 * `DenoEventLoop.startTls`.
 *
 * @module
 */

import { InvalidStateError, TimeoutError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { BaseProtocol } from "../protocols/protocol.ts";
import type { Transport } from "../transports/transport.ts";
import type { StartTlsOptions } from "./event_loop.ts";
import {
  checkHandshakeTimeout,
  checkTlsStrings,
  withAddress,
} from "./_deno_streams.ts";
import {
  DenoStreamTransport,
  type StreamContext,
} from "./_deno_stream_transport.ts";

const WHAT = "startTls";

/**
 * Upgrades `transport`'s connection to TLS, as the client: the transport
 * hands its connection over (see `DenoStreamTransport.release()`), Deno
 * starts TLS on it, and once the handshake is done a new transport over
 * the TLS connection carries on with `protocol`, without calling its
 * `connectionMade()` again. On failure the connection is closed and the
 * protocol gets `connectionLost(error)`.
 *
 * @param ctx The loop and its proactor.
 * @param transport The plain transport, made by this loop.
 * @param protocol The protocol to go on with.
 * @param options The TLS options.
 * @returns A future of the new transport.
 */
export function startTls(
  ctx: StreamContext,
  transport: Transport,
  protocol: BaseProtocol,
  options?: StartTlsOptions,
): Future<Transport> {
  if (!(transport instanceof DenoStreamTransport)) {
    throw new TypeError(
      `Cannot call ${WHAT}(): transport must be a TCP transport made by a DenoEventLoop, received ${
        Object.prototype.toString.call(transport)
      }`,
    );
  }
  if (
    typeof protocol !== "object" || protocol === null ||
    typeof protocol.connectionLost !== "function"
  ) {
    throw new TypeError(
      `Cannot call ${WHAT}(): protocol must be a protocol, received ${typeof protocol}`,
    );
  }
  const timeout = checkHandshakeTimeout(options?.handshakeTimeout, WHAT);
  checkTlsStrings(options?.caCerts, "caCerts", WHAT);
  checkTlsStrings(options?.alpnProtocols, "alpnProtocols", WHAT);
  const serverHostname = options?.serverHostname;
  if (serverHostname !== undefined && typeof serverHostname !== "string") {
    throw new TypeError(
      `Cannot call ${WHAT}(): serverHostname must be a string, received ${typeof serverHostname}`,
    );
  }
  const blocker = transport.releaseBlocker();
  if (blocker !== null) {
    throw new InvalidStateError(`Cannot call ${WHAT}(): ${blocker}`);
  }
  const peer = transport.getExtraInfo("peername") as Deno.NetAddr;
  const prefix = `Cannot start TLS with ${peer.hostname}:${peer.port}`;
  const { loop, proactor } = ctx;
  const fut = loop.createFuture<Transport>();
  // The TLS connection once Deno has it.
  let tls: Deno.TlsConn | null = null;
  let settled = false;

  /** Ends a failed upgrade after the plain transport let go. */
  const fail = (error: unknown): void => {
    if (settled) return;
    settled = true;
    timer.cancel();
    if (tls !== null) proactor.close(tls);
    loop.callSoon(() => {
      try {
        protocol.connectionLost(error as Error);
      } catch (exception) {
        loop.callExceptionHandler({
          message: "Exception in protocol.connectionLost()",
          exception,
          protocol,
        });
      }
    });
    if (!fut.done()) fut.setException(error);
  };

  const timer = loop.callLater(timeout, () => {
    const waiting = transport.releaseWaitsFor();
    const error = new TimeoutError(
      waiting === "read"
        ? `${prefix}: a read was still in flight after ${timeout} s, and Deno upgrades only a connection nobody reads (call transport.pauseReading() in dataReceived() once the last plain-text message arrives)`
        : `${prefix}: no handshake within ${timeout} s`,
    );
    if (tls === null && waiting !== null) {
      // Still the plain transport's: it closes and tells the protocol.
      settled = true;
      transport.failRelease(error);
      if (!fut.done()) fut.setException(error);
    } else fail(error);
  });
  fut.addDoneCallback(() => {
    if (!fut.cancelled() || settled) return;
    const error = new InvalidStateError(`${prefix}: cancelled`);
    if (transport.releaseWaitsFor() !== null) {
      settled = true;
      timer.cancel();
      transport.failRelease(error);
    } else fail(error);
  });

  const handshaken = (info: Deno.TlsHandshakeInfo): void => {
    if (settled) return proactor.close(tls!);
    settled = true;
    timer.cancel();
    const upgraded = new DenoStreamTransport(ctx, tls!, protocol, {
      tls: { alpnProtocol: info.alpnProtocol ?? null },
      connectionMade: false,
      onReady: () => {
        if (fut.done()) upgraded.abort();
        else fut.setResult(upgraded);
      },
    });
  };

  const started = (conn: Deno.TlsConn): void => {
    tls = conn;
    if (settled) return proactor.close(conn);
    proactor.watch(
      conn.handshake(),
      proactor.bind<Deno.TlsHandshakeInfo>({
        done: handshaken,
        failed: (error) => fail(withAddress(error, prefix)),
        orphaned: () => proactor.close(conn),
      }),
    );
  };

  transport.release((conn, error) => {
    if (conn === null) {
      // The plain transport closed and told the protocol.
      if (settled) return;
      settled = true;
      timer.cancel();
      if (!fut.done()) {
        fut.setException(
          new InvalidStateError(`${prefix}: ${(error as Error)?.message}`),
        );
      }
      return;
    }
    if (settled) return proactor.close(conn);
    let upgrade: Promise<Deno.TlsConn>;
    try {
      upgrade = Deno.startTls(conn as Deno.TcpConn, {
        hostname: serverHostname ?? peer.hostname,
        caCerts: options?.caCerts,
        alpnProtocols: options?.alpnProtocols,
      });
    } catch (e) {
      proactor.close(conn);
      return fail(withAddress(e, prefix));
    }
    proactor.watch(
      upgrade,
      proactor.bind<Deno.TlsConn>({
        done: started,
        failed: (e) => {
          proactor.close(conn);
          fail(withAddress(e, prefix));
        },
        orphaned: (c) => {
          if (c !== undefined) proactor.close(c);
        },
      }),
    );
  });
  return fut;
}
