// Bad input across the public API: each call is refused at once (not in a
// callback, not by a hang, not by a generic "x is not a function"), with a
// TypeError, RangeError or InvalidStateError whose message names the call,
// the parameter and what was received.

import { assertThrows } from "@std/assert";
import {
  allTasks,
  AsyncEngine,
  Barrier,
  BaseEventLoop,
  ChunkProtocol,
  Condition,
  Connection,
  currentTask,
  DatagramProtocol,
  DenoEventLoop,
  ensureFuture,
  Event,
  gather,
  HttpClientProtocol,
  HttpServerProtocol,
  HttpTransport,
  Int32StringReceiver,
  InvalidStateError,
  jsonRpcHttpHandler,
  JsonRpcProtocol,
  LineReceiver,
  Lock,
  openConnection,
  openUnixConnection,
  PeerLog,
  Protocol,
  Queue,
  ReadableStreamProducer,
  relay,
  run,
  runLoopTest,
  Semaphore,
  shield,
  sleep,
  startServer,
  startUnixServer,
  StreamReader,
  StreamReaderProtocol,
  StreamWriter,
  SubprocessProtocol,
  TaskGroup,
  timeout,
  transportPair,
  VirtualTimeLoop,
  waitFor,
  withTaskGroup,
  WorkerExecutor,
} from "../mod.ts";

type ErrorClass = new (...args: never[]) => Error;
type Row = [
  call: string,
  fn: () => unknown,
  error: ErrorClass,
  message: string,
];

// deno-lint-ignore no-explicit-any
const bad = (x: unknown): any => x;
const noop = () => {};

function check(rows: Row[]): void {
  for (const [call, fn, error, message] of rows) {
    try {
      assertThrows(fn, error, message);
    } catch (e) {
      throw new Error(`${call}: ${(e as Error).message}`);
    }
  }
}

Deno.test("a loop option that is no event loop is refused where it is given", () => {
  const loop = new VirtualTimeLoop();
  const future = loop.createFuture();
  const opts = bad({ loop: 5 });
  const received = "loop must be an event loop, received 5";
  check([
    [
      "new Lock()",
      () => new Lock(opts),
      TypeError,
      `create a Lock: ${received}`,
    ],
    ["new Event()", () => new Event(opts), TypeError, received],
    ["new Queue()", () => new Queue(0, opts), TypeError, received],
    ["new Semaphore()", () => new Semaphore(1, opts), TypeError, received],
    ["new Barrier()", () => new Barrier(2, opts), TypeError, received],
    [
      "new Condition()",
      () => new Condition(undefined, opts),
      TypeError,
      received,
    ],
    ["new TaskGroup()", () => new TaskGroup(opts), TypeError, received],
    ["sleep()", () => sleep(1, undefined, opts), TypeError, received],
    ["shield()", () => shield(future, opts), TypeError, received],
    ["waitFor()", () => waitFor(future, 1, opts), TypeError, received],
    ["timeout()", () => timeout(1, opts), TypeError, received],
    ["ensureFuture()", () => ensureFuture(future, opts), TypeError, received],
    [
      "new StreamReader()",
      () => new StreamReader(opts),
      TypeError,
      `make a StreamReader: ${received}`,
    ],
    [
      "new StreamReaderProtocol()",
      () =>
        new StreamReaderProtocol(new StreamReader({ loop }), undefined, opts),
      TypeError,
      `make a StreamReaderProtocol: ${received}`,
    ],
    [
      "new HttpServerProtocol()",
      () => new HttpServerProtocol(() => new Response(), opts),
      TypeError,
      `make an HttpServerProtocol: ${received}`,
    ],
    [
      "new HttpClientProtocol()",
      () => new HttpClientProtocol(opts),
      TypeError,
      `make an HttpClientProtocol: ${received}`,
    ],
    [
      "new HttpTransport()",
      () =>
        new HttpTransport(new HttpClientProtocol({ loop }), {
          path: "/rpc",
          loop: bad(5),
        }),
      TypeError,
      `make an HttpTransport: ${received}`,
    ],
    [
      "new JsonRpcProtocol()",
      () => new JsonRpcProtocol({}, opts),
      TypeError,
      `make a JsonRpcProtocol: ${received}`,
    ],
    [
      "jsonRpcHttpHandler()",
      () => jsonRpcHttpHandler({}, opts),
      TypeError,
      `make a JSON-RPC HTTP handler: ${received}`,
    ],
    [
      "new PeerLog()",
      () => new PeerLog(opts),
      TypeError,
      `make a PeerLog: ${received}`,
    ],
    [
      "openConnection()",
      () => openConnection("127.0.0.1", 80, opts),
      TypeError,
      `open a connection: ${received}`,
    ],
  ]);
  loop.close();
});

Deno.test("the stream helpers refuse a loop that does no I/O, by name", () => {
  const loop = new BaseEventLoop();
  const missing = "(a BaseEventLoop does no I/O";
  check([
    [
      "openConnection()",
      () => openConnection("127.0.0.1", 80, { loop: bad(loop) }),
      TypeError,
      `Cannot open a connection: the loop has no createConnection() ${missing}`,
    ],
    [
      "openUnixConnection()",
      () => openUnixConnection("/tmp/x.sock", { loop: bad(loop) }),
      TypeError,
      "the loop has no createUnixConnection()",
    ],
    [
      "startServer()",
      () => startServer(noop, "127.0.0.1", 0, { loop: bad(loop) }),
      TypeError,
      "Cannot start a server: the loop has no createServer()",
    ],
    [
      "startUnixServer()",
      () => startUnixServer(noop, "/tmp/x.sock", { loop: bad(loop) }),
      TypeError,
      "the loop has no createUnixServer()",
    ],
  ]);
  loop.close();
});

Deno.test("what cannot be awaited or called is refused at the call", async () => {
  const loop = new VirtualTimeLoop();
  const [ta] = transportPair(new Protocol(), new Protocol(), { loop });
  check([
    [
      "waitFor(5)",
      () => waitFor(bad(5), 1, { loop }),
      TypeError,
      "Cannot wait for an awaitable: aw must be a Future, a coroutine, a promise or a function that makes one, received number",
    ],
    [
      "waitFor(null, 0)",
      () => waitFor(bad(null), 0, { loop }),
      TypeError,
      "aw must be a Future, a coroutine, a promise or a function that makes one, received null",
    ],
    [
      "timeout().run(5)",
      () => timeout(1, { loop }).run(bad(5)),
      TypeError,
      "Cannot call run(): aw must be a Future",
    ],
    [
      "withTaskGroup(5)",
      () => withTaskGroup(bad(5)),
      TypeError,
      "Cannot run withTaskGroup(): body must be a generator function or an async function, received 5",
    ],
    [
      "relay(null, t)",
      () => relay(bad(null), ta),
      TypeError,
      "Cannot call relay(): ta must be a stream transport, received null",
    ],
    [
      "relay(t, {})",
      () => relay(ta, bad({})),
      TypeError,
      "Cannot call relay(): tb must be a stream transport, received Object",
    ],
    [
      "callExceptionHandler(null)",
      () => loop.callExceptionHandler(bad(null)),
      TypeError,
      "Cannot call callExceptionHandler(): context must be an object like { message, exception }, received null",
    ],
  ]);
  // A promise-returning call rejects rather than throws.
  let refused: unknown;
  await runLoopTest(bad(null)).catch((e) => refused = e);
  check([[
    "runLoopTest(null)",
    () => {
      throw refused;
    },
    TypeError,
    "Cannot run a loop test: fn must be a function, received null",
  ]]);
  ta.abort();
  await loop.advance(0);
  loop.close();
});

Deno.test("a Handle of another loop is not queued on this one (a timer copies it)", () => {
  const loop = new BaseEventLoop();
  const other = new BaseEventLoop();
  const handle = other.callSoon(noop);
  const message = "the Handle belongs to another loop";
  // A timer copies the handle: its errors go to the timer's loop.
  loop.callLater(0, handle).cancel();
  check([
    [
      "callSoon()",
      () => loop.callSoon(handle),
      InvalidStateError,
      `Cannot call callSoon(): ${message}`,
    ],
    [
      "callSoonThreadsafe()",
      () => loop.callSoonThreadsafe(handle),
      InvalidStateError,
      message,
    ],
  ]);
  loop.close();
  other.close();
});

Deno.test("empty hosts and option values of the wrong type are refused at the call", () => {
  const loop = new DenoEventLoop();
  const factory = () => new Protocol();
  const engine = new AsyncEngine(loop);
  const cb = { success: noop, failure: noop };
  check([
    [
      "createConnection('')",
      () => loop.createConnection(factory, "", 80),
      RangeError,
      'Cannot call createConnection(): host must not be empty, received ""',
    ],
    [
      "createConnection(..., 5)",
      () => loop.createConnection(factory, "127.0.0.1", 80, bad(5)),
      TypeError,
      "Cannot call createConnection(): options must be an object like { ssl, serverHostname, localAddr }, received 5",
    ],
    [
      "createServer([''])",
      () => loop.createServer(factory, [""], 0),
      RangeError,
      'Cannot call createServer(): a host in the list must not be empty (leave host undefined for every interface), received ""',
    ],
    [
      "createServer(..., 5)",
      () => loop.createServer(factory, "127.0.0.1", 0, bad(5)),
      TypeError,
      "Cannot call createServer(): options must be an object like { ssl, reusePort, backlog }, received 5",
    ],
    [
      "createServer({ reusePort: 'yes' })",
      () =>
        loop.createServer(factory, "127.0.0.1", 0, { reusePort: bad("yes") }),
      TypeError,
      'Cannot call createServer(): reusePort must be a boolean, received "yes"',
    ],
    [
      "createServer({ startServing: 0 })",
      () =>
        loop.createServer(factory, "127.0.0.1", 0, { startServing: bad(0) }),
      TypeError,
      "Cannot call createServer(): startServing must be a boolean, received 0",
    ],
    [
      "engine.connect('')",
      () => engine.connect("", 80, cb),
      RangeError,
      'Cannot call connect(): host must not be empty, received ""',
    ],
    [
      "engine.getaddrinfo('')",
      () => engine.getaddrinfo("", 80, cb),
      RangeError,
      'Cannot call getaddrinfo(): host must not be empty, received ""',
    ],
    [
      "new HttpServerProtocol({ keepAliveTimeout: NaN })",
      () =>
        new HttpServerProtocol(() => new Response(), { keepAliveTimeout: NaN }),
      TypeError,
      "keepAliveTimeout must be a number of seconds, received NaN",
    ],
    [
      "new PeerLog({ perKind: 'x' })",
      () => new PeerLog({ perKind: bad("x") }),
      RangeError,
      'perKind must be a whole number >= 0, received "x"',
    ],
  ]);
  loop.close();
});

Deno.test("a simulated connection to an empty host is refused in the Deno loop's words", () => {
  const loop = new VirtualTimeLoop();
  assertThrows(
    () => loop.createConnection(() => new Protocol(), "", 80),
    RangeError,
    'Cannot call createConnection(): host must not be empty, received ""',
  );
  loop.close();
});

Deno.test("a value given bare where options go is refused, not ignored", async () => {
  const loop = new DenoEventLoop();
  const future = loop.createFuture();
  const like = "options must be an object like";
  const executor = new WorkerExecutor();
  check([
    [
      "new WorkerExecutor(4)",
      () => new WorkerExecutor(bad(4)),
      TypeError,
      `Cannot make a WorkerExecutor: ${like} { maxWorkers, maxQueued }, received 4`,
    ],
    [
      "executor.shutdown(false)",
      () => executor.shutdown(bad(false)),
      TypeError,
      `Cannot call shutdown(): ${like} { wait }, received false`,
    ],
    [
      "executor.shutdown({ wait: 0 })",
      () => executor.shutdown({ wait: bad(0) }),
      TypeError,
      "Cannot call shutdown(): wait must be a boolean, received 0",
    ],
    [
      "new StreamReader(1024)",
      () => new StreamReader(bad(1024)),
      TypeError,
      `Cannot make a StreamReader: ${like} { limit, loop }, received 1024`,
    ],
    [
      "new ChunkProtocol(d, f, 5)",
      () => new ChunkProtocol(";", noop, bad(5)),
      TypeError,
      `Cannot make a ChunkProtocol: ${like} { maxLength }, received 5`,
    ],
    [
      "new LineReceiver(f, 1024)",
      () => new LineReceiver(noop, bad(1024)),
      TypeError,
      `${like} { maxLength }, received 1024`,
    ],
    [
      "new Int32StringReceiver(f, 1024)",
      () => new Int32StringReceiver(noop, bad(1024)),
      TypeError,
      `Cannot make an Int32StringReceiver: ${like} { maxLength }, received 1024`,
    ],
    [
      "new HttpServerProtocol(h, 5)",
      () => new HttpServerProtocol(() => new Response(), bad(5)),
      TypeError,
      `Cannot make an HttpServerProtocol: ${like}`,
    ],
    [
      "new HttpClientProtocol(5)",
      () => new HttpClientProtocol(bad(5)),
      TypeError,
      `Cannot make an HttpClientProtocol: ${like}`,
    ],
    [
      "new JsonRpcProtocol({}, 5)",
      () => new JsonRpcProtocol({}, bad(5)),
      TypeError,
      `Cannot make a JsonRpcProtocol: ${like}`,
    ],
    [
      "jsonRpcHttpHandler({}, 5)",
      () => jsonRpcHttpHandler({}, bad(5)),
      TypeError,
      `Cannot make a JSON-RPC HTTP handler: ${like}`,
    ],
    [
      "jsonRpcHttpHandler({}, { strictContentType: 'yes' })",
      () => jsonRpcHttpHandler({}, { strictContentType: bad("yes") }),
      TypeError,
      'strictContentType must be a boolean, received "yes"',
    ],
    [
      "transportPair(a, b, 5)",
      () => transportPair(new Protocol(), new Protocol(), bad(5)),
      TypeError,
      `Cannot make a transport pair: ${like}`,
    ],
    [
      "getaddrinfo(host, port, 4)",
      () => loop.getaddrinfo("localhost", 80, bad(4)),
      TypeError,
      `Cannot call getaddrinfo(): ${like} { family, type, proto, flags }, received 4`,
    ],
    [
      "createDatagramEndpoint(factory, 5)",
      () => loop.createDatagramEndpoint(() => new DatagramProtocol(), bad(5)),
      TypeError,
      `Cannot create a datagram endpoint: ${like}`,
    ],
    [
      "gather([f], { returnExceptions: 'yes' })",
      () => gather([future], { returnExceptions: bad("yes") }),
      TypeError,
      'Cannot gather: returnExceptions must be a boolean, received "yes"',
    ],
    [
      "setDebug('yes')",
      () => loop.setDebug(bad("yes")),
      TypeError,
      'Cannot call setDebug(): enabled must be a boolean, received "yes"',
    ],
    [
      "currentTask(5)",
      () => currentTask(bad(5)),
      TypeError,
      "Cannot call currentTask(): loop must be an event loop, received 5",
    ],
    [
      "allTasks(5)",
      () => allTasks(bad(5)),
      TypeError,
      "Cannot call allTasks(): loop must be an event loop, received 5",
    ],
  ]);
  await executor.shutdown();
  loop.close();
  // run() returns a promise, so it rejects; no loop is made.
  for (
    const [options, message] of [
      [5, `Cannot call run(): ${like} { debug, loopFactory }, received 5`],
      [
        { debug: "yes" },
        'Cannot call run(): debug must be a boolean, received "yes"',
      ],
    ] as const
  ) {
    let refused: unknown;
    await run(async () => {}, bad(options)).catch((e) => refused = e);
    check([[
      `run(main, ${JSON.stringify(options)})`,
      () => {
        throw refused;
      },
      TypeError,
      message,
    ]]);
  }
});

Deno.test("a Future of another loop is refused at the call, saying so", () => {
  const loop = new BaseEventLoop();
  const other = new BaseEventLoop();
  const theirs = other.createFuture();
  const message =
    "it belongs to another loop than the one given (a future is awaited only on its own loop: make it there), received a Future of another loop";
  check([
    [
      "waitFor()",
      () => waitFor(theirs, 1, { loop }),
      InvalidStateError,
      message,
    ],
    [
      "waitFor(..., 0)",
      () => waitFor(theirs, 0, { loop }),
      InvalidStateError,
      message,
    ],
    [
      "timeout().run()",
      () => timeout(1, { loop }).run(theirs),
      InvalidStateError,
      message,
    ],
    [
      "gather()",
      () => gather([loop.createFuture(), theirs]),
      InvalidStateError,
      message,
    ],
    ["shield()", () => shield(theirs, { loop }), InvalidStateError, message],
  ]);
  // The refused run() left the scope unused.
  const scope = timeout(1, { loop });
  assertThrows(() => scope.run(theirs), InvalidStateError);
  scope.run(loop.createFuture()).cancel();
  loop.close();
  other.close();
});

Deno.test("a grace or a read size given bare is refused, not ignored", async () => {
  const loop = new VirtualTimeLoop();
  const server = await loop.runUntilComplete(
    loop.createServer(() => new Protocol(), "127.0.0.1", 0),
  );
  const engine = new AsyncEngine(loop);
  const reader = new StreamReader({ loop });
  const protocol = new StreamReaderProtocol(reader, undefined, { loop });
  const [transport] = transportPair(protocol, new Protocol(), { loop });
  const conn = new Connection(
    reader,
    new StreamWriter(transport, protocol, { reader, loop }),
  );
  const cb = { success: noop, failure: noop };
  const like = "options must be an object like";
  check([
    [
      "server.shutdown(5)",
      () => server.shutdown(bad(5)),
      TypeError,
      `Cannot shut the server down: ${like} { grace }, received 5`,
    ],
    [
      "engine.read(conn, cb, 1024)",
      () => engine.read(conn, cb, bad(1024)),
      TypeError,
      `Cannot call read(): ${like} { size }, received 1024`,
    ],
    [
      "engine.connect(host, port, cb, 5)",
      () => engine.connect("127.0.0.1", 80, cb, bad(5)),
      TypeError,
      `Cannot call connect(): ${like} { ssl, limit }, received 5`,
    ],
    [
      "engine.listen(host, port, cb, 5)",
      () => engine.listen("127.0.0.1", 0, cb, bad(5)),
      TypeError,
      `Cannot call listen(): ${like} { backlog, limit }, received 5`,
    ],
  ]);
  transport.abort();
  server.close();
  await loop.runUntilComplete(server.waitClosed());
  loop.close();
});

Deno.test("relay, producer and HttpTransport options are checked at the call", () => {
  const loop = new VirtualTimeLoop();
  const [ta, tb] = transportPair(new Protocol(), new Protocol(), { loop });
  const like = "options must be an object like";
  check([
    [
      "relay(ta, tb, 5)",
      () => relay(ta, tb, bad(5)),
      TypeError,
      `Cannot make a relay: ${like} { high, low, loop }, received 5`,
    ],
    [
      "relay(ta, tb, { loop: 5 })",
      () => relay(ta, tb, { loop: bad(5) }),
      TypeError,
      "Cannot make a relay: loop must be an event loop, received 5",
    ],
    [
      "new ReadableStreamProducer(stream, 5)",
      () => new ReadableStreamProducer(new ReadableStream(), bad(5)),
      TypeError,
      `Cannot make a ReadableStreamProducer: ${like} { end, loop }, received 5`,
    ],
    [
      "new ReadableStreamProducer(stream, { loop: 5 })",
      () => new ReadableStreamProducer(new ReadableStream(), { loop: bad(5) }),
      TypeError,
      "Cannot make a ReadableStreamProducer: loop must be an event loop, received 5",
    ],
    [
      "new HttpTransport(client, { method: 5 })",
      () =>
        new HttpTransport(new HttpClientProtocol({ loop }), {
          path: "/rpc",
          method: bad(5),
          loop,
        }),
      TypeError,
      "Cannot make an HttpTransport: method must be a string, received 5",
    ],
  ]);
  ta.abort();
  tb.abort();
  loop.close();
});

Deno.test("a subprocess's env and clearEnv are checked at the call", () => {
  const loop = new DenoEventLoop();
  const factory = () => new SubprocessProtocol();
  check([
    [
      "subprocessExec({ env: 5 })",
      () => loop.subprocessExec(factory, "true", [], { env: bad(5) }),
      TypeError,
      "Cannot start the subprocess: env must be an object of strings, received 5",
    ],
    [
      "subprocessExec({ env: { N: 1 } })",
      () => loop.subprocessExec(factory, "true", [], { env: bad({ N: 1 }) }),
      TypeError,
      "Cannot start the subprocess: env.N must be a string, received 1",
    ],
    [
      "subprocessShell({ clearEnv: 'yes' })",
      () => loop.subprocessShell(factory, "true", { clearEnv: bad("yes") }),
      TypeError,
      'Cannot start the subprocess: clearEnv must be a boolean, received "yes"',
    ],
  ]);
  loop.close();
});

Deno.test("startTls() checks its options, named as given", async () => {
  const loop = new DenoEventLoop();
  const server = await loop.runUntilComplete(
    loop.createServer(() => new Protocol(), "127.0.0.1", 0),
  );
  const { port } = server.addresses()[0] as Deno.NetAddr;
  const [transport, protocol] = await loop.runUntilComplete(
    loop.createConnection(() => new Protocol(), "127.0.0.1", port),
  );
  check([
    [
      "startTls(t, p, 5)",
      () => loop.startTls(transport, protocol, bad(5)),
      TypeError,
      "Cannot call startTls(): options must be an object like { serverHostname, handshakeTimeout, … }, received 5",
    ],
    [
      "startTls(t, p, { handshakeTimeout: -1 })",
      () => loop.startTls(transport, protocol, { handshakeTimeout: -1 }),
      RangeError,
      "Cannot call startTls(): handshakeTimeout must be a positive number of seconds, received -1",
    ],
    [
      "startTls(t, p, { handshakeTimeout: '1' })",
      () => loop.startTls(transport, protocol, { handshakeTimeout: bad("1") }),
      TypeError,
      "Cannot call startTls(): handshakeTimeout must be a number of seconds, received string",
    ],
  ]);
  transport.abort();
  server.close();
  await loop.runUntilComplete(server.waitClosed());
  loop.close();
});

Deno.test("null options and option values mean the default, on real and simulated loops alike", async () => {
  // asyncio's reuse_port=None; a loop of null is the running loop.
  const loop = new DenoEventLoop();
  const server = await loop.runUntilComplete(
    loop.createServer(() => new Protocol(), "127.0.0.1", 0, {
      reusePort: null as never,
    }),
  );
  server.close();
  await loop.runUntilComplete(server.waitClosed());
  const fut = loop.createFuture<number>();
  if (ensureFuture(fut, { loop: null as never }) !== fut) {
    throw new Error("ensureFuture() with loop: null made a new future");
  }
  loop.close();
});

Deno.test("a simulated loop refuses bad server and connection options as a DenoEventLoop does", () => {
  const loop = new VirtualTimeLoop();
  const factory = () => new Protocol();
  check([
    [
      "createServer() options given bare",
      () => loop.createServer(factory, "127.0.0.1", 80, 5 as never),
      TypeError,
      "Cannot call createServer(): options must be an object",
    ],
    [
      "createServer() reusePort not a boolean",
      () =>
        loop.createServer(factory, "127.0.0.1", 81, {
          reusePort: "yes" as never,
        }),
      TypeError,
      "Cannot call createServer(): reusePort must be a boolean",
    ],
    [
      "createConnection() options given bare",
      () => loop.createConnection(factory, "127.0.0.1", 80, 5 as never),
      TypeError,
      "options must be an object",
    ],
  ]);
  loop.close();
});
