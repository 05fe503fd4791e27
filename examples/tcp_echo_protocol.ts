/**
 * A TCP echo server and client in the Protocol style, as tulip's `examples/tcp_echo.py`: callbacks, a per-connection idle timer, `runForever()` until the clients are gone (or Ctrl-C).
 *
 * deno run --allow-net=127.0.0.1 examples/tcp_echo_protocol.ts
 *
 * @module
 */

import {
  type EventLoop,
  newEventLoop,
  Protocol,
  setEventLoop,
  type TimerHandle,
  type Transport,
} from "../mod.ts";

const HOST = "127.0.0.1";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Echoes what it receives, prefixed with "Re: "; closes idle connections. */
class EchoServer extends Protocol {
  /** Seconds without data before the server hangs up. */
  static readonly TIMEOUT = 1.0;
  readonly #loop: EventLoop;
  #transport: Transport | null = null;
  #timeout: TimerHandle | null = null;
  #peer = "";

  constructor(loop: EventLoop) {
    super();
    this.#loop = loop;
  }

  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    this.#peer = `port ${
      (transport.getExtraInfo("peername") as Deno.NetAddr).port
    }`;
    console.log(`server: connection made from ${this.#peer}`);
    this.#restartTimer();
  }

  override dataReceived(data: Uint8Array): void {
    console.log(
      `server: data received from ${this.#peer}: ${decoder.decode(data)}`,
    );
    this.#transport!.write(encoder.encode("Re: "));
    this.#transport!.write(data);
    this.#restartTimer();
  }

  override eofReceived(): boolean {
    console.log(`server: EOF from ${this.#peer}`);
    return false; // Let the transport close itself.
  }

  override connectionLost(exc?: Error): void {
    console.log(
      `server: connection from ${this.#peer} lost: ${exc ?? "closed"}`,
    );
    this.#timeout?.cancel();
  }

  #restartTimer(): void {
    this.#timeout?.cancel();
    this.#timeout = this.#loop.callLater(EchoServer.TIMEOUT, () => {
      console.log(
        `server: ${this.#peer} idle for ${EchoServer.TIMEOUT} s, closing`,
      );
      this.#transport!.close();
    });
  }
}

/** Sends a message, prints the echo, and hangs up a moment later. */
class EchoClient extends Protocol {
  readonly #loop: EventLoop;
  readonly #name: string;
  readonly #message: string | null;
  readonly #onLost: () => void;
  #transport: Transport | null = null;

  constructor(
    loop: EventLoop,
    name: string,
    message: string | null,
    onLost: () => void,
  ) {
    super();
    this.#loop = loop;
    this.#name = name;
    this.#message = message;
    this.#onLost = onLost;
  }

  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    if (this.#message === null) {
      console.log(`${this.#name}: connected; staying silent`);
      return;
    }
    transport.write(encoder.encode(this.#message));
    console.log(`${this.#name}: data sent: ${this.#message}`);
  }

  override dataReceived(data: Uint8Array): void {
    console.log(`${this.#name}: data received: ${decoder.decode(data)}`);
    // Disconnect a little later (tcp_echo.py waits 10 seconds).
    this.#loop.callLater(0.2, () => this.#transport!.close());
  }

  override eofReceived(): boolean {
    console.log(`${this.#name}: EOF from the server`);
    return false;
  }

  override connectionLost(exc?: Error): void {
    console.log(`${this.#name}: connection lost: ${exc ?? "closed"}`);
    this.#onLost();
  }
}

const loop = newEventLoop();
setEventLoop(loop);
loop.addSignalHandler("SIGINT", () => {
  console.log("SIGINT: stopping");
  loop.stop();
});

const server = await loop.runUntilComplete(
  loop.createServer(() => new EchoServer(loop), HOST, 0),
);
const { port } = server.addresses()[0] as Deno.NetAddr;
console.log(`serving on ${HOST}:${port}`);

// Two clients: one talks, one stays silent until the server times it out.
let clients = 2;
const onLost = () => {
  if (--clients === 0) loop.stop();
};
await loop.runUntilComplete(loop.createConnection(
  () =>
    new EchoClient(
      loop,
      "client",
      "This is the message. It will be echoed.",
      onLost,
    ),
  HOST,
  port,
));
await loop.runUntilComplete(
  loop.createConnection(
    () => new EchoClient(loop, "quiet client", null, onLost),
    HOST,
    port,
  ),
);

try {
  await loop.runForever();
} finally {
  server.close();
  server.closeClients();
  await loop.runUntilComplete(server.waitClosed());
  loop.removeSignalHandler("SIGINT");
  setEventLoop(null);
  loop.close();
  console.log("server closed; bye");
}
