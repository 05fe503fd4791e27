/**
 * A short tour of tulip, printing what happens: tasks in both coroutine
 * styles, timers, cancellation and a task group; a TCP echo server and
 * client, a UDP exchange and a subprocess; then protocols: a line chat,
 * HTTP/1.1 with web Request/Response, and JSON-RPC stacked on HTTP.
 *
 * deno run --allow-net=127.0.0.1 --allow-run=sh examples/demo.ts
 *
 * @module
 */

import {
  CancelledError,
  type Coroutine,
  DatagramProtocol,
  type DatagramTransport,
  getEventLoop,
  HttpClientProtocol,
  HttpServerProtocol,
  HttpTransport,
  jsonRpcHttpHandler,
  JsonRpcProtocol,
  LineReceiver,
  Protocol,
  run,
  sleep,
  SubprocessProtocol,
  TaskGroup,
  type Transport,
} from "../mod.ts";

const text = new TextDecoder();
const bytes = (s: string) => new TextEncoder().encode(s);

const t0 = performance.now();
function say(who: string, what: string): void {
  const ms = (performance.now() - t0).toFixed(0).padStart(4);
  console.log(`${ms} ms  ${who.padEnd(10)} ${what}`);
}

function* ticker(name: string, every: number): Coroutine<never> {
  for (let i = 1;; i++) {
    yield* sleep(every);
    say(name, `tick ${i}`);
  }
}

function* stubborn(): Coroutine<string> {
  try {
    yield* sleep(10);
    return "finished";
  } catch (e) {
    if (!(e instanceof CancelledError)) throw e;
    say("stubborn", "cancelled; cleaning up for 30 ms first");
    yield* sleep(0.03);
    throw e;
  }
}

async function core(): Promise<void> {
  const loop = getEventLoop();
  say("loop", "callSoon and callLater");
  loop.callLater(0.05, () => say("timer", "50 ms timer fired"));
  loop.callSoon(() => say("callback", "callSoon ran first"));

  const tick = loop.createTask(ticker("ticker", 0.02), { name: "ticker" });
  const slow = loop.createTask(stubborn(), { name: "stubborn" });
  await sleep(0.07);
  say("main", "cancelling the ticker and the stubborn task");
  tick.cancel();
  slow.cancel();
  for (const t of [tick, slow]) {
    try {
      await t;
    } catch (e) {
      say("main", `${t.getName()} ended: ${(e as Error).name}`);
    }
  }

  say("main", "a TaskGroup where one child fails");
  const group = new TaskGroup();
  group.createTask(async () => {
    await sleep(0.01);
    throw new Error("boom");
  }, { name: "failing" });
  const sibling = group.createTask(async () => {
    try {
      await sleep(1);
    } catch (e) {
      say("sibling", `stopped by its group: ${(e as Error).name}`);
      throw e;
    }
  }, { name: "sibling" });
  try {
    await group.wait();
  } catch (e) {
    const errors = (e as AggregateError).errors.map((x) => x.message);
    say("main", `group failed with ${JSON.stringify(errors)}`);
  }
  say("main", `sibling cancelled: ${sibling.cancelled()}`);
}

class EchoServer extends Protocol {
  #transport?: Transport;
  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    const peer = transport.getExtraInfo("peername") as Deno.NetAddr;
    say("tcp server", `connection from port ${peer.port}`);
  }
  override dataReceived(data: Uint8Array): void {
    say("tcp server", `echoing ${JSON.stringify(text.decode(data))}`);
    this.#transport!.write(data);
  }
  override eofReceived(): boolean {
    say("tcp server", "client sent EOF; closing");
    return false;
  }
}

class EchoClient extends Protocol {
  readonly done = getEventLoop().createFuture<string>();
  #received = "";
  override connectionMade(transport: Transport): void {
    transport.write(bytes("hello, "));
    transport.write(bytes("tulip"));
    transport.writeEof();
  }
  override dataReceived(data: Uint8Array): void {
    this.#received += text.decode(data);
  }
  override connectionLost(): void {
    this.done.setResult(this.#received);
  }
}

class Ping extends DatagramProtocol {
  readonly pong = getEventLoop().createFuture<string>();
  override datagramReceived(data: Uint8Array): void {
    this.pong.setResult(text.decode(data));
  }
}

class Pong extends DatagramProtocol {
  #transport?: DatagramTransport;
  override connectionMade(transport: DatagramTransport): void {
    this.#transport = transport;
  }
  override datagramReceived(data: Uint8Array, addr: Deno.Addr): void {
    say("udp server", `got ${JSON.stringify(text.decode(data))}`);
    this.#transport!.sendto(bytes(text.decode(data).toUpperCase()), addr);
  }
}

class Child extends SubprocessProtocol {
  readonly exited = getEventLoop().createFuture<void>();
  override pipeDataReceived(fd: number, data: Uint8Array): void {
    say("child", `fd ${fd}: ${JSON.stringify(text.decode(data).trim())}`);
  }
  override processExited(): void {
    this.exited.setResult(undefined);
  }
}

async function io(): Promise<void> {
  const loop = getEventLoop();
  const server = await loop.createServer(
    () => new EchoServer(),
    "127.0.0.1",
    0,
  );
  const { port } = server.addresses()[0] as Deno.NetAddr;
  say("tcp server", `listening on 127.0.0.1:${port}`);
  const [, client] = await loop.createConnection(
    () => new EchoClient(),
    "127.0.0.1",
    port,
  );
  say("tcp client", `got back ${JSON.stringify(await client.done)}`);
  server.close();
  await server.waitClosed();
  say("tcp server", "closed");

  const [pongT] = await loop.createDatagramEndpoint(() => new Pong(), {
    localAddr: { hostname: "127.0.0.1", port: 0 },
  });
  const pongAddr = pongT.getExtraInfo("sockname") as Deno.NetAddr;
  const [pingT, ping] = await loop.createDatagramEndpoint(() => new Ping(), {
    localAddr: { hostname: "127.0.0.1", port: 0 },
    remoteAddr: { hostname: "127.0.0.1", port: pongAddr.port },
  });
  pingT.sendto(bytes("ping"));
  say("udp client", `got ${JSON.stringify(await ping.pong)}`);
  pingT.close();
  pongT.close();

  const [child, proto] = await loop.subprocessExec(
    () => new Child(),
    "sh",
    ["-c", "echo out; echo err >&2; exit 3"],
  );
  say("child", `started, pid ${child.getPid()}`);
  await proto.exited;
  say("child", `exited with code ${child.getReturncode()}`);
  child.close();
}

// A tiny chat room: every line a member sends goes to the others.
class ChatMember extends LineReceiver {
  static readonly room = new Set<ChatMember>();
  /** Called when someone joins the room. */
  static onJoin = () => {};
  name = "?";
  constructor() {
    super((line, self) => (self as ChatMember).said(text.decode(line)));
  }
  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    ChatMember.room.add(this);
    ChatMember.onJoin();
  }
  override connectionLost(exc?: Error): void {
    ChatMember.room.delete(this);
    super.connectionLost(exc);
  }
  said(line: string): void {
    if (line.startsWith("/nick ")) {
      this.name = line.slice(6);
      return;
    }
    for (const other of ChatMember.room) {
      if (other !== this) other.writeLine(bytes(`<${this.name}> ${line}`));
    }
  }
}

async function protocols(): Promise<void> {
  const loop = getEventLoop();
  const chat = await loop.createServer(() => new ChatMember(), "127.0.0.1", 0);
  const chatPort = (chat.addresses()[0] as Deno.NetAddr).port;
  const heard = loop.createFuture<string>();
  const bothIn = loop.createFuture<void>();
  ChatMember.onJoin = () => {
    if (ChatMember.room.size === 2 && !bothIn.done()) bothIn.setResult();
  };
  const [aliceT, alice] = await loop.createConnection(
    () => new LineReceiver(),
    "127.0.0.1",
    chatPort,
  );
  const [bobT] = await loop.createConnection(
    () => new LineReceiver((line) => heard.setResult(text.decode(line))),
    "127.0.0.1",
    chatPort,
  );
  // The server may take its time accepting them: wait until both are
  // in the room, or bob would never hear alice.
  await bothIn;
  alice.writeLine(bytes("/nick alice"));
  alice.writeLine(bytes("hi bob"));
  say("chat", `bob heard ${JSON.stringify(await heard)}`);
  aliceT.close();
  bobT.close();
  chat.close();
  await chat.waitClosed();

  // The same handler shape as Deno.serve.
  const handler = (req: Request) =>
    new Response(`${req.method} ${new URL(req.url).pathname}`);
  const web = await loop.createServer(
    () => new HttpServerProtocol(handler),
    "127.0.0.1",
    0,
  );
  const webPort = (web.addresses()[0] as Deno.NetAddr).port;
  const [, http] = await loop.createConnection(
    () => new HttpClientProtocol(),
    "127.0.0.1",
    webPort,
  );
  const res = await http.request(
    new Request(`http://127.0.0.1:${webPort}/hello`),
  );
  say("http", `${res.status} ${JSON.stringify(await res.text())}`);
  http.close();
  await http.waitClosed();
  web.close();
  await web.waitClosed();

  // PEP 3153's stack: TCP → HTTP → HttpTransport → JSON-RPC → application.
  const rpcServer = await loop.createServer(
    () =>
      new HttpServerProtocol(
        jsonRpcHttpHandler({ add: ([a, b]: number[]) => a + b }),
      ),
    "127.0.0.1",
    0,
  );
  const rpcPort = (rpcServer.addresses()[0] as Deno.NetAddr).port;
  const [, carrier] = await loop.createConnection(
    () => new HttpClientProtocol(),
    "127.0.0.1",
    rpcPort,
  );
  const overHttp = new HttpTransport(carrier, {
    path: "/rpc",
    headers: { "content-type": "application/json" },
  });
  const rpc = new JsonRpcProtocol({}, { framing: "raw" });
  overHttp.setProtocol(rpc);
  rpc.connectionMade(overHttp);
  say("json-rpc", `add(2, 40) over HTTP = ${await rpc.call("add", [2, 40])}`);
  overHttp.close();
  carrier.close();
  await carrier.waitClosed();
  rpcServer.close();
  await rpcServer.waitClosed();
}

await run(core);
await run(io);
await run(protocols);
say("main", "done");
