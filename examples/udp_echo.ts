/**
 * A UDP echo server and two clients with `DatagramProtocol`: one endpoint connected to the server (`sendto(data)`), one not (`sendto(data, addr)`), each waiting for its echoes with a timeout and a resend, as datagrams may be lost.
 *
 * deno run --allow-net=127.0.0.1 examples/udp_echo.ts
 *
 * @module
 */

import {
  DatagramProtocol,
  type DatagramTransport,
  type EventLoop,
  type Future,
  getEventLoop,
  run,
  TimeoutError,
  waitFor,
} from "../mod.ts";

const HOST = "127.0.0.1";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Sends every datagram back to where it came from, in upper case. */
class EchoServer extends DatagramProtocol {
  #transport: DatagramTransport | null = null;
  received = 0;

  override connectionMade(transport: DatagramTransport): void {
    this.#transport = transport;
  }

  override datagramReceived(data: Uint8Array, addr: Deno.Addr): void {
    this.received++;
    const text = decoder.decode(data);
    console.log(
      `server: ${JSON.stringify(text)} from port ${
        (addr as Deno.NetAddr).port
      }`,
    );
    this.#transport!.sendto(encoder.encode(text.toUpperCase()), addr);
  }

  override errorReceived(exc: Error): void {
    console.log(`server: error ${exc}`);
  }
}

/** Hands each datagram to whoever waits for the next one. */
class EchoClient extends DatagramProtocol {
  readonly #loop: EventLoop;
  #next: Future<string> | null = null;

  constructor(loop: EventLoop) {
    super();
    this.#loop = loop;
  }

  override datagramReceived(data: Uint8Array): void {
    const waiting = this.#next;
    this.#next = null;
    waiting?.setResult(decoder.decode(data)); // Nobody waiting: dropped.
  }

  override errorReceived(exc: Error): void {
    console.log(`client: error ${exc}`);
  }

  /** The next datagram received. */
  next(): Future<string> {
    this.#next = this.#loop.createFuture<string>();
    return this.#next;
  }
}

/** Sends `text` and waits for its echo, resending after each timeout. */
async function ask(
  client: EchoClient,
  send: () => void,
  tries = 3,
): Promise<string> {
  for (let i = 1;; i++) {
    const answer = client.next();
    send();
    try {
      return await waitFor(answer, 0.5);
    } catch (e) {
      if (!(e instanceof TimeoutError) || i === tries) throw e;
      console.log("client: no answer in 0.5 s, sending again");
    }
  }
}

await run(async () => {
  const loop = getEventLoop();
  const [serverTransport, server] = await loop.createDatagramEndpoint(
    () => new EchoServer(),
    { localAddr: { hostname: HOST, port: 0 } },
  );
  const serverAddr = serverTransport.getExtraInfo("sockname") as Deno.NetAddr;
  console.log(`server: listening on udp ${HOST}:${serverAddr.port}`);
  const closeAll: DatagramTransport[] = [serverTransport];
  loop.addSignalHandler("SIGINT", () => {
    console.log("SIGINT: closing");
    for (const t of closeAll) t.close();
  });
  try {
    // A connected endpoint: sendto() without an address goes to the server.
    const [connected, c1] = await loop.createDatagramEndpoint(
      () => new EchoClient(loop),
      {
        localAddr: { hostname: HOST, port: 0 },
        remoteAddr: { hostname: HOST, port: serverAddr.port },
      },
    );
    closeAll.push(connected);
    for (const word of ["ping", "hello", "tulip"]) {
      const echo = await ask(c1, () => connected.sendto(encoder.encode(word)));
      console.log(`connected client: sent ${word}, got ${echo}`);
    }

    // An unconnected endpoint names the address on every sendto().
    const [free, c2] = await loop.createDatagramEndpoint(
      () => new EchoClient(loop),
      { localAddr: { hostname: HOST, port: 0 } },
    );
    closeAll.push(free);
    const echo = await ask(
      c2,
      () => free.sendto(encoder.encode("over here"), serverAddr),
    );
    console.log(`unconnected client: got ${echo}`);
    console.log(`server received ${server.received} datagrams`);
  } finally {
    loop.removeSignalHandler("SIGINT");
    for (const t of closeAll) t.close();
  }
});
