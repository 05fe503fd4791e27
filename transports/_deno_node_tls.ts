// The server side of TLS over a TCP socket tulip owns: node:tls's
// `TLSSocket` (Deno's port of Node's TLS wrap, on rustls) over a plain
// `Deno.TcpConn`, shaped as the `Deno.TlsConn` the server and transport
// expect.
//
// Why not `Deno.listenTls()`: closing one of its connections hands the
// socket to Deno, which first finishes a pending handshake and sends what
// it buffered and a close_notify, with no time limit (the `Drop` of
// rustls-tokio-stream's `TlsStream`); a client that stalls its handshake,
// trickles it, or never reads keeps the socket for as long as it likes.
// Here the TCP socket is a plain `Deno.TcpConn`, which `close()` releases
// at once, whatever state the TLS session is in.
//
// Clients stay on Deno's TLS: node:tls's client checks a server's
// certificate otherwise (the common name stands in for a missing
// subjectAltName, a self-signed server certificate in `ca` is trusted, a
// rejected chain's reason is lost).
//
// node:tls is imported on first use: loading Deno's Node layer costs tens
// of milliseconds at startup.

import type * as NodeTls from "node:tls";
import type { Duplex as NodeDuplex } from "node:stream";
import type * as NodeCrypto from "node:crypto";

/** The Node modules this file needs, loaded together. */
export interface NodeTlsModules {
  tls: typeof NodeTls;
  Duplex: typeof NodeDuplex;
  crypto: typeof NodeCrypto;
}

let loading: Promise<NodeTlsModules> | null = null;

/**
 * Loads node:tls and node:stream (once; later calls share the promise).
 *
 * @returns The modules.
 */
export function loadNodeTls(): Promise<NodeTlsModules> {
  return loading ??= Promise.all([
    import("node:tls"),
    import("node:stream"),
    import("node:crypto"),
  ]).then(([tls, stream, crypto]) => ({ tls, Duplex: stream.Duplex, crypto }));
}

/** What a TLS server needs to make each connection's session. */
export interface NodeTlsConfig {
  modules: NodeTlsModules;
  context: NodeTls.SecureContext;
  alpnProtocols: string[] | undefined;
}

/**
 * Makes a server's TLS configuration; throws, as `Deno.listenTls()` does,
 * when the certificate or key is not valid PEM, or the key is not the
 * certificate's.
 *
 * @param modules The loaded modules.
 * @param cert The certificate chain, PEM.
 * @param key The private key, PEM.
 * @param alpnProtocols The protocols offered to ALPN, in preference order.
 * @returns The configuration.
 */
export function nodeTlsConfig(
  modules: NodeTlsModules,
  cert: string,
  key: string,
  alpnProtocols: string[] | undefined,
): NodeTlsConfig {
  // node:tls reads them only at the first handshake: checked here, with
  // Deno.listenTls()'s errors.
  let leaf: NodeCrypto.X509Certificate;
  try {
    leaf = new modules.crypto.X509Certificate(cert);
  } catch (cause) {
    throw new Deno.errors.InvalidData(
      "No certificates found in certificate data",
      { cause },
    );
  }
  let privateKey: NodeCrypto.KeyObject;
  try {
    privateKey = modules.crypto.createPrivateKey(key);
  } catch (cause) {
    throw new Deno.errors.InvalidData("No keys found in key data", { cause });
  }
  // node:tls would take them and fail every handshake.
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new Deno.errors.InvalidData(
      "Cannot serve TLS: the private key (ssl.key) does not belong to the certificate (ssl.cert), whose first certificate must be the one the key was made for",
    );
  }
  const context = modules.tls.createSecureContext({ cert, key });
  return { modules, context, alpnProtocols };
}

/**
 * A plain TCP listener whose connections serve TLS through node:tls: its
 * `accept()` gives a {@linkcode NodeTlsConn}.
 */
export class NodeTlsListener {
  readonly #listener: Deno.TcpListener;
  readonly #config: NodeTlsConfig;

  /**
   * @param listener The plain TCP listener, bound.
   * @param config The TLS configuration.
   */
  constructor(listener: Deno.TcpListener, config: NodeTlsConfig) {
    this.#listener = listener;
    this.#config = config;
  }

  /** The address the listener is bound to. */
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /**
   * Accepts a connection; its handshake starts at once.
   *
   * @returns The connection.
   */
  async accept(): Promise<Deno.TlsConn> {
    const conn = await this.#listener.accept();
    return new NodeTlsConn(conn, this.#config) as unknown as Deno.TlsConn;
  }

  /** Closes the listener. */
  close(): void {
    this.#listener.close();
  }

  /** Lets the process exit while only an accept is pending. */
  unref(): void {
    this.#listener.unref();
  }

  /** Makes a pending accept keep the process alive again. */
  ref(): void {
    this.#listener.ref();
  }
}

/**
 * A TLS failure as Deno's own TLS reports one (`InvalidData`, the TLS
 * layer's message), so that a server's connections fail as a client's
 * do; the TCP socket's own errors keep their class.
 */
function tlsError(error: Error): Error {
  return isDenoError(error)
    ? error
    : new Deno.errors.InvalidData(error.message, { cause: error });
}

/** Whether `error` is one of `Deno.errors` (the TCP socket's own). */
function isDenoError(error: Error): boolean {
  return Object.values(Deno.errors).some((cls) => error instanceof cls);
}

/**
 * The alert description (RFC 8446 §6) for a TLS failure, from the TLS
 * layer's (rustls's) message; `null` for the peer's own alert and for the
 * TCP socket's errors, which get none.
 */
function alertFor(error: Error): number | null {
  if (isDenoError(error)) return null;
  const message = error.message;
  if (message.startsWith("received fatal alert")) return null;
  // no_application_protocol
  if (message.includes("any known protocol")) return 120;
  // record_overflow (RFC 8446 §5.1, §5.2: a MUST; Deno's own listener
  // says decode_error)
  if (message.includes("MessageTooLarge")) return 22;
  // decode_error
  if (message.startsWith("received corrupt message")) return 50;
  // unexpected_message
  if (message.startsWith("received unexpected message")) return 10;
  // illegal_parameter
  if (message.startsWith("peer misbehaved")) return 47;
  // handshake_failure
  return 40;
}

/** The error a `NodeTlsConn` gives once closed, as Deno's own. */
function closedError(): Error {
  return new Deno.errors.BadResource("Bad resource ID");
}

/**
 * The server side of one TLS connection: a node:tls `TLSSocket` over a
 * `Deno.TcpConn`, with `Deno.TlsConn`'s methods. `close()` closes the TCP
 * socket at once.
 */
export class NodeTlsConn {
  readonly #conn: Deno.TcpConn;
  readonly #socket: NodeTls.TLSSocket;
  readonly #handshake: Promise<Deno.TlsHandshakeInfo>;
  #closed = false;
  // The stream ended: the TLS socket said so, or the TCP stream ended and
  // the TLS socket took all of it.
  #ended = false;
  #error: Error | null = null;
  // Decrypted bytes a read has not taken yet.
  #rest: Uint8Array | null = null;
  // A read waiting for bytes, the end, or an error.
  #wake: (() => void) | null = null;
  // Reads the TCP socket again after the TLS socket was full.
  readonly #resumeRaw: () => void;
  // The TCP socket's writes, and the end of its writing side.
  readonly #rawWrites: RawWrites;
  // The TLS socket has written to the TCP socket.
  #sent = false;
  // Rejects each write() and closeWrite() node:tls has not called back
  // yet: once the TCP socket failed or was closed, it may never do.
  readonly #unsettled = new Set<(error: Error) => void>();
  /**
   * Told each time the TCP socket took encrypted bytes (a `write()` is
   * done only once all of it was sent: this is how a large one is seen
   * moving).
   */
  onSent: (() => void) | null = null;
  // The alert a failed handshake sends, in flight: the TCP socket closes
  // after it.
  #alerting: Promise<void> | null = null;

  /**
   * @param conn The accepted TCP connection.
   * @param config The TLS configuration.
   * @param first For a connection upgraded from plain text: the bytes a
   * read already in flight on `conn` brings (the client's first TLS
   * bytes), taken before `conn` is read again (`null`: the end of the
   * stream; a rejection: the read failed).
   */
  constructor(
    conn: Deno.TcpConn,
    config: NodeTlsConfig,
    first?: Promise<Uint8Array | null>,
  ) {
    this.#conn = conn;
    let settled = false;
    let resolveHandshake!: (info: Deno.TlsHandshakeInfo) => void;
    let rejectHandshake!: (error: Error) => void;
    this.#handshake = new Promise((resolve, reject) => {
      resolveHandshake = resolve;
      rejectHandshake = reject;
    });
    const failed = (error?: Error) => {
      if (settled) return;
      settled = true;
      rejectHandshake(
        error ?? new Deno.errors.UnexpectedEof(
          "The client closed the connection during the TLS handshake",
        ),
      );
    };
    // The end of the TCP stream ends a pending handshake, and its failure
    // fails the reads: the TLS socket says neither (it just closes).
    // The first record's header, until it has come.
    let header: number[] | null = [];
    const [raw, resumeRaw, rawWrites] = tcpDuplex(config.modules.Duplex, conn, {
      ended: (error) => {
        if (error !== undefined) {
          this.#error ??= error;
          this.#settleAll(this.#error);
        }
        failed(error);
        this.#poke();
      },
      wrote: () => this.#sent = true,
      took: () => this.onSent?.(),
      arrived: (bytes) => {
        if (header === null) return true;
        for (let i = 0; i < bytes.length && header.length < 5; i++) {
          header.push(bytes[i]);
        }
        if (header.length < 5) return true;
        const [type, , , high, low] = header;
        header = null;
        // RFC 8446 §5.1: a plaintext record (the ClientHello's) longer
        // than 2^14 bytes gets record_overflow; node:tls takes up to
        // 2^14 + 2048, the bound of TLS 1.2's encrypted records.
        if (type !== 22 || ((high << 8) | low) <= 16384) return true;
        const error = new Error(
          "received corrupt message of type MessageTooLarge",
        );
        this.#alert(error);
        failed(tlsError(error));
        return false;
      },
      released: (error) => {
        // A handshake the TLS socket gave up on before it said anything:
        // its 'error' handler sends the alert, then closes.
        if (error === null && !settled && !this.#sent && !this.#closed) return;
        this.#closeConn();
      },
      full: () => (this.#socket?.readableLength ?? 0) >= TLS_HELD,
    }, first);
    this.#resumeRaw = resumeRaw;
    this.#rawWrites = rawWrites;
    const socket = this.#socket = new config.modules.tls.TLSSocket(raw, {
      isServer: true,
      secureContext: config.context,
      ALPNProtocols: config.alpnProtocols,
    });
    socket.once("secure", () => {
      if (settled) return;
      settled = true;
      const alpn = socket.alpnProtocol;
      resolveHandshake({
        alpnProtocol: typeof alpn === "string" ? alpn : null,
      });
    });
    socket.once("error", (error: Error) => {
      if (!settled && !this.#sent && !this.#closed) this.#alert(error);
      failed(tlsError(error));
    });
    socket.once("close", () => {
      failed();
      this.#closeConn();
    });
    // Settled by whoever asks; unobserved, it must not be an unhandled
    // rejection.
    this.#handshake.catch(() => {});
    socket.on("readable", () => this.#poke());
    const ended = () => {
      this.#ended = true;
      this.#poke();
    };
    // The TCP stream's end counts once the TLS socket has taken every
    // encrypted byte before it (it reads them only while it wants more)
    // and decrypted them into its buffer: the reads end once that is read.
    // Deno's node:tls does not always say 'end' after a close_notify and a
    // FIN (about one connection in three on a busy machine).
    raw.once("end", ended);
    socket.on("end", ended);
    socket.on("close", ended);
    const broken = (error: Error) => {
      this.#error ??= tlsError(error);
      this.#poke();
    };
    socket.on("error", broken);
    // A record that fails once the handshake is done (one that does not
    // decrypt, is too long, or is no record at all) gets an alert sent
    // and this event only: node:tls says 'error' for it only on a socket a
    // `tls.Server` has released, so the session would sit there, neither
    // ended nor failed, for as long as the peer keeps its socket open.
    socket.on("_tlsError", broken);
  }

  /**
   * Sends the alert for a handshake that failed before the server said
   * anything, in plain text, as Deno's own TLS listener does (node:tls
   * drops it): the client learns why (RFC 8446 §6.2; RFC 7301 §3.2 for
   * ALPN). A few bytes to a socket that has sent nothing: they leave at
   * once, and the socket closes after them.
   */
  #alert(error: Error): void {
    const description = alertFor(error);
    if (description === null) return;
    const record = new Uint8Array([21, 3, 3, 0, 2, 2, description]);
    this.#alerting = writeAll(this.#conn, record).catch(() => {}).then(() => {
      this.#alerting = null;
      this.#closeConn();
    });
  }

  /**
   * Closes the TCP socket, once an alert in flight is sent, and (unless
   * `close()` asked) once the TLS socket's last write is: node:tls
   * destroys itself as soon as both its sides ended (the peer's
   * close_notify came, and `closeWrite()`'s was handed on), while the
   * close_notify is still on its way.
   */
  #closeConn(): void {
    if (this.#alerting !== null) return;
    const sending = this.#closed ? null : this.#rawWrites.sending();
    if (sending !== null) {
      sending.then(() => this.#closeConn());
      return;
    }
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
  }

  /** Rejects every write() and closeWrite() still waiting. */
  #settleAll(error: Error): void {
    const unsettled = [...this.#unsettled];
    this.#unsettled.clear();
    for (const reject of unsettled) reject(error);
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** The local address. */
  get localAddr(): Deno.NetAddr {
    return this.#conn.localAddr;
  }

  /** The peer's address. */
  get remoteAddr(): Deno.NetAddr {
    return this.#conn.remoteAddr;
  }

  /**
   * Resolves once the handshake is done, with the protocol ALPN chose.
   *
   * @returns The handshake's outcome.
   */
  handshake(): Promise<Deno.TlsHandshakeInfo> {
    return this.#handshake;
  }

  /**
   * Reads decrypted bytes into `buffer`.
   *
   * @param buffer Where they land.
   * @returns The count, or `null` at the end of the stream.
   */
  async read(buffer: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.#closed) throw new Deno.errors.Interrupted("operation canceled");
      let chunk = this.#rest;
      this.#rest = null;
      if (chunk === null) {
        chunk = this.#socket.read() as Uint8Array | null;
        if (this.#socket.readableLength < TLS_HELD) this.#resumeRaw();
      }
      if (chunk !== null && chunk.length > 0) {
        const n = Math.min(chunk.length, buffer.length);
        buffer.set(n === chunk.length ? chunk : chunk.subarray(0, n));
        if (n < chunk.length) this.#rest = chunk.subarray(n);
        return n;
      }
      if (this.#error !== null) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
  }

  /**
   * Encrypts and sends `data`.
   *
   * @param data The bytes.
   * @returns Their count, once they are passed on.
   */
  write(data: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(closedError());
    // The TCP socket failed: the TLS socket would take the bytes anyway.
    if (this.#error !== null) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#unsettled.add(reject);
      this.#socket.write(data, (error?: Error | null) => {
        this.#unsettled.delete(reject);
        if (error) reject(error);
        else resolve(data.length);
      });
    });
  }

  /**
   * Sends a close_notify and ends the TCP socket's writing side.
   *
   * @returns Once done: the close_notify is sent; rejects once the TCP
   * socket failed or `close()` was called first.
   */
  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError());
    // The TCP socket failed: node:tls would never call back.
    if (this.#error !== null) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#unsettled.add(reject);
      // node:tls calls back once it has handed its close_notify to the TCP
      // socket, not once that is sent, and never ends the TCP socket's
      // writing side: both are done here, so that a close() after this
      // cannot cut the close_notify off (RFC 8446 §6.1).
      this.#socket.end(() =>
        this.#rawWrites.end().then(() => {
          this.#unsettled.delete(reject);
          resolve();
        })
      );
      this.#socket.once("error", reject);
    });
  }

  /** Closes the TCP socket at once, whatever the session's state. */
  close(): void {
    if (this.#closed) throw closedError();
    this.#closed = true;
    this.#socket.destroy();
    this.#closeConn();
    // Whatever node:tls still owes a callback: a transport waits for it.
    this.#settleAll(new Deno.errors.Interrupted("operation canceled"));
    this.#poke();
  }

  /** Makes pending reads keep the process alive. */
  ref(): void {
    this.#conn.ref();
  }

  /** Lets the process exit while only reads are pending. */
  unref(): void {
    this.#conn.unref();
  }

  /**
   * Sets `TCP_NODELAY`.
   *
   * @param noDelay On or off.
   */
  setNoDelay(noDelay?: boolean): void {
    this.#conn.setNoDelay(noDelay);
  }

  /**
   * Sets `SO_KEEPALIVE`.
   *
   * @param keepAlive On or off.
   */
  setKeepAlive(keepAlive?: boolean): void {
    this.#conn.setKeepAlive(keepAlive);
  }
}

/** The writing side of a {@linkcode tcpDuplex}. */
interface RawWrites {
  /**
   * Settles once no write is in flight (whether it was sent or failed);
   * `null` when none is.
   */
  sending(): Promise<void> | null;
  /**
   * Ends the TCP socket's writing side once no write is in flight;
   * resolves then, whether it could or not (the socket was closed).
   */
  end(): Promise<void>;
}

/** What a {@linkcode tcpDuplex} tells its owner. */
interface TcpDuplexHooks {
  /** The end of the stream, or the error a read or write failed with. */
  ended(error?: Error): void;
  /** Bytes are being written. */
  wrote(): void;
  /** The TCP socket took a chunk. */
  took(): void;
  /**
   * Sees what the TCP socket brings before the TLS socket does; `false`
   * stops reading (the owner ends the connection).
   */
  arrived(bytes: Uint8Array): boolean;
  /**
   * The duplex is destroyed (`error` is `null` unless a read failed): the
   * owner closes the socket.
   */
  released(error: Error | null): void;
  /**
   * Whether the TLS socket holds as much decrypted data as it should: the
   * duplex then stops reading the TCP socket until `resume()` is called.
   */
  full(): boolean;
}

/**
 * A Node `Duplex` over a `Deno.Conn`: the encrypted side of a
 * `TLSSocket`. Reading stops while the `TLSSocket` does not take more.
 */
function tcpDuplex(
  Duplex: typeof NodeDuplex,
  conn: Deno.Conn,
  hooks: TcpDuplexHooks,
  first?: Promise<Uint8Array | null>,
): [NodeDuplex, () => void, RawWrites] {
  let reading = false;
  // The write in flight (the duplex passes on one at a time; one that
  // settles starts the next, if any).
  let writing: Promise<void> | null = null;
  // The TCP socket's writing side ending.
  let ending: Promise<void> | null = null;
  const endWrites = () => ending ??= conn.closeWrite();
  const writes: RawWrites = {
    sending: () =>
      writing === null ? null : (async () => {
        // A destroyed duplex drops the writes it held: only the one in
        // flight goes on.
        while (writing !== null) await writing;
      })(),
    end: async () => {
      await writes.sending();
      await endWrites().catch(() => {});
    },
  };
  // The result of a read that was in flight before the duplex was made,
  // taken before the socket is read again.
  let pending = first;
  // Reused from read to read (a fresh one each time would be zeroed each
  // time): what it brings is copied out. Small while the connection is
  // quiet, as the waiting read of each idle connection holds it; larger
  // while reads fill it (a bulk transfer), small again after a short one.
  let buffer = new Uint8Array(QUIET_READ_SIZE);
  // Reading stopped while the TLS socket is full (see `hooks.full()`).
  let parked = false;
  const pump = () => {
    (async () => {
      try {
        if (pending !== undefined) {
          const bytes = await pending;
          pending = undefined;
          if (duplex.destroyed) return;
          if (bytes === null) {
            hooks.ended();
            duplex.push(null);
            return;
          }
          if (!hooks.arrived(bytes)) return;
          if (bytes.length > 0 && !duplex.push(bytes)) {
            reading = false;
            return;
          }
        }
        for (;;) {
          if (hooks.full()) {
            // Node's TLSSocket reads on however much it holds: the
            // bytes wait in the socket (and its peer) instead.
            parked = true;
            return;
          }
          const n = await conn.read(buffer);
          if (n === null) {
            hooks.ended();
            duplex.push(null);
            return;
          }
          // A copy: the TLS socket may keep what it is given.
          const bytes = buffer.slice(0, n);
          if (!hooks.arrived(bytes)) return;
          const more = duplex.push(bytes);
          if (n === buffer.length && n < READ_SIZE) {
            buffer = new Uint8Array(Math.min(n * 4, READ_SIZE));
          } else if (n < QUIET_READ_SIZE && buffer.length > n * 4) {
            buffer = new Uint8Array(QUIET_READ_SIZE);
          }
          if (!more) break;
        }
      } catch (error) {
        // Destroyed by the TLS socket (failing with its own error, which
        // is the one to report) or by close(): the read was cut short.
        if (duplex.destroyed) return;
        hooks.ended(error as Error);
        duplex.destroy(error as Error);
        return;
      }
      reading = false;
    })();
  };
  const duplex: NodeDuplex = new Duplex({
    read() {
      if (reading) return;
      reading = true;
      pump();
    },
    write(chunk: Uint8Array, _encoding, callback) {
      hooks.wrote();
      const settled = (error?: Error) => {
        if (writing === sent) writing = null;
        if (error !== undefined) hooks.ended(error);
        callback(error);
      };
      const sent = writeAll(conn, chunk, hooks.took).then(
        () => settled(),
        settled,
      );
      writing = sent;
    },
    final(callback) {
      endWrites().then(() => callback(), callback);
    },
    destroy(error, callback) {
      hooks.released(error);
      callback(error);
    },
  });
  const resume = () => {
    if (!parked || duplex.destroyed) return;
    parked = false;
    pump();
  };
  return [duplex, resume, writes];
}

/**
 * The decrypted bytes a connection's TLS socket may hold unread before it
 * stops reading its TCP socket: a protocol that paused reading (or a
 * client faster than the protocol) is then held back by TCP itself.
 */
const TLS_HELD = 64 * 1024;
/** The most encrypted bytes read from the socket at a time. */
const READ_SIZE = 64 * 1024;
/** What a quiet connection reads into (a ClientHello, a small request). */
const QUIET_READ_SIZE = 4 * 1024;

async function writeAll(
  conn: Deno.Conn,
  data: Uint8Array,
  took?: () => void,
): Promise<void> {
  let at = 0;
  while (at < data.length) {
    at += await conn.write(data.subarray(at));
    took?.();
  }
}
