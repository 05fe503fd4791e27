/**
 * Upgrading a connection to TLS on Deno (the client side here, the server
 * side in `_deno_start_tls_server.ts`): the body of
 * `DenoEventLoop.startTls`.
 *
 * @module
 */

import { InvalidStateError, TimeoutError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { BaseProtocol } from "../protocols/protocol.ts";
import type { Transport } from "./transport.ts";
import type { Owned } from "./_proactor.ts";
import type { StartTlsOptions } from "../loop/event_loop.ts";
import {
  checkAlpnProtocols,
  checkHandshakeTimeout,
  checkTlsStrings,
} from "./_deno_streams.ts";
import { handshakeFailure, withAddress } from "./_deno_names.ts";
import {
  DenoStreamTransport,
  type StreamContext,
} from "./_deno_stream_transport.ts";
import { startServerTls } from "./_deno_start_tls_server.ts";
import { checkOptions } from "../futures/_runtime.ts";

const WHAT = "startTls";
/**
 * How long a graceful `close()` over the relay reads on for the server's
 * end, in seconds, before it closes anyway.
 */
const RELAY_LINGER = 5;
/** Connections to the relay's port from elsewhere that are turned away. */
const RELAY_STRANGERS = 3;

/**
 * Upgrades `transport`'s connection to TLS, as the client. Deno's TLS
 * (`Deno.startTls()`) takes a TCP connection over whole, and only one
 * that nobody reads: a read in flight holds it. So:
 *
 * - With no read in flight (the protocol paused reading when the
 *   go-ahead arrived), the transport sends what it has buffered and hands
 *   its connection over, and Deno starts TLS on it.
 * - With a read in flight — which the peer ends only by sending, and a
 *   STARTTLS server waits for the client's handshake — Deno starts TLS on
 *   one end of a loopback TCP pair made for the purpose, and two relay
 *   protocols copy bytes between the other end and the plain transport,
 *   with back-pressure both ways. The plain transport keeps reading, so
 *   its read in flight brings the server's handshake to the relay. The
 *   cost: two more sockets and one more copy per byte, and a brief
 *   listener on 127.0.0.1 (which needs `--allow-net=127.0.0.1`); the
 *   listener takes only the connection whose address it expects.
 *
 * Either way, once the handshake is done a new transport over the TLS
 * connection carries on with `protocol`, without calling its
 * `connectionMade()` again, reading whether or not the plain one was
 * paused (as asyncio resumes reading after the upgrade), and reporting
 * the plain connection's addresses. On failure the connections are
 * closed and the protocol gets `connectionLost(error)`.
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
  checkOptions(
    options,
    `call ${WHAT}()`,
    "{ serverHostname, handshakeTimeout, … }",
  );
  const timeout = checkHandshakeTimeout(
    options?.handshakeTimeout,
    WHAT,
    "handshakeTimeout",
  );
  checkTlsStrings(options?.caCerts, "caCerts", WHAT);
  checkAlpnProtocols(options?.alpnProtocols, "alpnProtocols", WHAT);
  if (checkSide(options)) {
    return startServerTls(ctx, transport, protocol, options!, timeout);
  }
  // null is no serverHostname (asyncio's server_hostname=None).
  const serverHostname: unknown = options?.serverHostname ?? undefined;
  if (serverHostname !== undefined && typeof serverHostname !== "string") {
    throw new TypeError(
      `Cannot call ${WHAT}(): serverHostname must be a string, received ${typeof serverHostname}`,
    );
  }
  const blocker = transport.releaseBlocker();
  if (blocker !== null) {
    throw new InvalidStateError(`Cannot call ${WHAT}(): ${blocker}`);
  }
  const plain = transport;
  const peer = plain.getExtraInfo("peername") as Deno.NetAddr;
  const prefix = `Cannot start TLS with ${peer.hostname}:${peer.port}`;
  const { loop, proactor } = ctx;
  const fut = loop.createFuture<Transport>();
  // What to close if the upgrade fails once the plain transport let go
  // (or handed its bytes to a relay).
  const owned: Deno.Conn[] = [];
  let relayFar: DenoStreamTransport | null = null;
  let relayBack: Relay | null = null;
  let done = false;
  // Whether the plain transport gave up the protocol (it tells the
  // protocol of a failure until then).
  let handedOver = false;

  /** Ends a failed upgrade: closes everything, and tells the protocol. */
  const fail = (error: unknown): void => {
    if (done) return;
    done = true;
    timer.cancel();
    for (const conn of owned) proactor.close(conn);
    if (!handedOver) {
      plain.failWith(error as Error);
      if (!fut.done()) fut.setException(error);
      return;
    }
    if (relayFar !== null) {
      relayFar.abort();
      plain.abort();
    }
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
    fail(new TimeoutError(`${prefix}: no handshake within ${timeout} s`));
  });
  // Closing the loop closes the connections the upgrade holds (its timer
  // is gone with it); the plain transport counts for itself until then.
  const pending: Owned = {
    release: () => {
      for (const conn of owned) proactor.close(conn);
      return false;
    },
  };
  proactor.own(pending, "internal");
  fut.addDoneCallback(() => {
    proactor.disown(pending);
    if (fut.cancelled()) fail(new InvalidStateError(`${prefix}: cancelled`));
  });

  const handshaken = (tls: Deno.TlsConn, info: Deno.TlsHandshakeInfo) => {
    if (done) return proactor.close(tls);
    done = true;
    timer.cancel();
    const upgraded = new DenoStreamTransport(ctx, tls, protocol, {
      tls: { alpnProtocol: info.alpnProtocol ?? null },
      connectionMade: false,
      addressesOf: relayFar === null ? undefined : plain.connection,
      // Closed with the server's bytes unread, the relay's socket would be
      // reset, destroying what it had not passed on yet.
      lingerOnClose: relayFar === null ? 0 : RELAY_LINGER,
      onReady: () => {
        if (fut.done()) upgraded.abort();
        else fut.setResult(upgraded);
      },
      // Over a relay, the TLS connection's end ends the plain one: once
      // what it sent is relayed, or at once when it was closed at once
      // (a server that reads nothing would otherwise keep the plain
      // socket, and the relay, for as long as it likes).
      onLost: (forced) =>
        forced ? relayBack?.abortBoth() : relayBack?.endOfTls(),
    });
    plain.succeededBy(upgraded);
    if (relayFar === null) plain.forwardEnds(upgraded);
  };

  /** Starts TLS on `conn` (the plain one, or the relay's near end). */
  const startOn = (conn: Deno.Conn): void => {
    let upgrade: Promise<Deno.TlsConn>;
    try {
      upgrade = Deno.startTls(conn as Deno.TcpConn, {
        hostname: serverHostname ?? peer.hostname,
        caCerts: options?.caCerts,
        alpnProtocols: options?.alpnProtocols,
      });
    } catch (e) {
      return fail(withAddress(e, prefix));
    }
    proactor.watch(
      upgrade,
      proactor.bind<Deno.TlsConn>({
        done: (tls) => {
          owned.push(tls);
          if (done) return proactor.close(tls);
          proactor.watch(
            tls.handshake(),
            proactor.bind<Deno.TlsHandshakeInfo>({
              done: (info) => handshaken(tls, info),
              failed: (error) => fail(handshakeFailure(error, prefix)),
              orphaned: () => proactor.close(tls),
            }),
          );
        },
        failed: (e) => fail(withAddress(e, prefix)),
        orphaned: (tls) => {
          if (tls !== undefined) proactor.close(tls);
        },
      }),
    );
  };

  /** The relay path: a read is in flight on the plain transport. */
  const relayed = (): void => {
    if (done) return;
    proactor.watch(
      loopbackPair(),
      proactor.bind<[Deno.TcpConn, Deno.TcpConn]>({
        done: ([near, far]) => {
          owned.push(near, far);
          if (done) {
            proactor.close(near);
            proactor.close(far);
            return;
          }
          if (plain.isClosing()) {
            // It told the protocol.
            done = true;
            timer.cancel();
            proactor.close(near);
            proactor.close(far);
            if (!fut.done()) {
              fut.setException(
                new InvalidStateError(`${prefix}: the connection was closed`),
              );
            }
            return;
          }
          // From here on the plain transport's bytes are TLS records.
          const toFar = new Relay();
          const toPlain = new Relay();
          const farT = new DenoStreamTransport(ctx, far, toPlain);
          toPlain.join(farT, plain);
          toFar.join(plain, farT);
          // Both close after the TLS transport: not the application's.
          farT.relaysTls();
          plain.relaysTls();
          relayFar = farT;
          relayBack = toPlain;
          handedOver = true;
          plain.setProtocol(toFar);
          plain.resumeOwnReading();
          startOn(near);
        },
        failed: (error) =>
          fail(
            withAddress(
              error,
              `${prefix}: a read was in flight, so TLS runs over a loopback relay, which failed`,
            ),
          ),
        orphaned: (pair) => pair?.forEach((c) => proactor.close(c)),
      }),
    );
  };

  plain.release((conn, error) => {
    if (conn === null) {
      // The plain transport closed and told the protocol.
      if (done) return;
      done = true;
      timer.cancel();
      if (!fut.done()) {
        fut.setException(
          new InvalidStateError(`${prefix}: ${(error as Error)?.message}`),
        );
      }
      return;
    }
    owned.push(conn);
    handedOver = true;
    // The plain transport is done with the connection: its close() and
    // abort() end the upgrade, then the upgraded transport.
    const end = () =>
      fail(
        new InvalidStateError(
          `${prefix}: the connection was closed during the TLS handshake`,
        ),
      );
    plain.forwardEnds({ close: end, abort: end });
    if (done) return proactor.close(conn);
    startOn(conn);
  }, relayed);
  return fut;
}

/**
 * Checks the options that tell the sides apart.
 *
 * @returns Whether the upgrade is the server side.
 */
function checkSide(options: StartTlsOptions | undefined): boolean {
  const serverSide = options?.serverSide;
  if (serverSide !== undefined && typeof serverSide !== "boolean") {
    throw new TypeError(
      `Cannot call ${WHAT}(): serverSide must be a boolean, received ${typeof serverSide}`,
    );
  }
  const { cert, key } = options ?? {};
  if (serverSide !== true) {
    if (cert !== undefined || key !== undefined) {
      throw new TypeError(
        `Cannot call ${WHAT}(): cert and key are the server's, for serverSide: true (a client cannot present a certificate here: use createConnection() with ssl.cert for mutual TLS), received ${
          cert !== undefined ? "cert" : "key"
        } without serverSide: true`,
      );
    }
    return false;
  }
  const meaningless = (["serverHostname", "caCerts"] as const).filter((name) =>
    options![name] !== undefined &&
    !(name === "serverHostname" && options![name] === null)
  );
  if (meaningless.length > 0) {
    const names = meaningless.join(" and ");
    throw new TypeError(
      `Cannot call ${WHAT}(): ${names} ${
        meaningless.length === 1 ? "means" : "mean"
      } nothing with serverSide: true (a client checks the server's certificate with them; the server side presents cert and key), received ${names}`,
    );
  }
  if (typeof cert !== "string" || typeof key !== "string") {
    throw new TypeError(
      `Cannot call ${WHAT}(): serverSide: true needs cert and key, the server's certificate chain and private key in PEM, received cert: ${typeof cert}, key: ${typeof key}`,
    );
  }
  return true;
}

/**
 * Two connected TCP sockets on 127.0.0.1, through a listener open only
 * until it has accepted the one connection it expects (others are turned
 * away).
 */
async function loopbackPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const near = await Deno.connect({
      hostname: "127.0.0.1",
      port: listener.addr.port,
    });
    try {
      for (let i = 0; i <= RELAY_STRANGERS; i++) {
        const far = await listener.accept();
        if (far.remoteAddr.port === near.localAddr.port) {
          near.setNoDelay(true);
          far.setNoDelay(true);
          return [near, far];
        }
        far.close();
      }
    } catch (error) {
      near.close();
      throw error;
    }
    near.close();
    throw new Error(
      "other connections kept reaching the relay's listener first",
    );
  } finally {
    listener.close();
  }
}

/**
 * Copies what one transport receives to another, pausing the source while
 * the destination's write buffer is over its high-water mark. An end of
 * stream is passed on as `writeEof()`; when both directions have ended,
 * or either side is lost, both are closed.
 */
class Relay {
  #from: DenoStreamTransport | null = null;
  #to: DenoStreamTransport | null = null;
  #peer: Relay | null = null;
  #eof = false;
  #tlsGone = false;

  /**
   * Joins the relay that reads `from` to its destination `to`.
   *
   * @param from The transport whose bytes this relay receives.
   * @param to Where they go.
   */
  join(from: DenoStreamTransport, to: DenoStreamTransport): void {
    this.#from = from;
    this.#to = to;
    const peer = to.getProtocol();
    if (peer instanceof Relay) {
      this.#peer = peer;
      peer.#peer = this;
    }
  }

  connectionMade(): void {}

  dataReceived(data: Uint8Array): void {
    const to = this.#to!;
    if (!to.isClosing()) to.write(data);
  }

  eofReceived(): boolean {
    this.#eof = true;
    const to = this.#to!;
    if (this.#tlsGone) {
      this.#endBoth();
      return true;
    }
    if (!to.isClosing()) to.writeEof();
    const peer = this.#peer;
    if (peer !== null && peer.#eof) {
      this.#from!.close();
      to.close();
    }
    return true;
  }

  /**
   * The TLS transport (the relay's near end) is gone: once everything it
   * sent has been relayed (this relay reads its end of stream), close the
   * plain connection too — a closed TLS transport closes its connection.
   */
  endOfTls(): void {
    this.#tlsGone = true;
    if (this.#eof) this.#endBoth();
  }

  /**
   * The TLS transport was closed at once (aborted, or failed): so are both
   * ends of this relay, dropping what they hold.
   */
  abortBoth(): void {
    this.#from?.abort();
    this.#to?.abort();
  }

  #endBoth(): void {
    this.#from?.close();
    this.#to?.close();
  }

  connectionLost(exc?: Error): void {
    const to = this.#to;
    if (to === null) return;
    if (exc === undefined) to.close();
    else to.abort();
  }

  /**
   * This relay's source transport is backed up: stop reading the one
   * that feeds it, which is where this relay writes.
   */
  pauseWriting(): void {
    this.#to?.pauseOwnReading();
  }

  /** The source drained: read the transport that feeds it again. */
  resumeWriting(): void {
    this.#to?.resumeOwnReading();
  }
}
