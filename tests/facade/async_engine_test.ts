// AsyncEngine over real loopback sockets (127.0.0.1, port 0), and over
// in-memory transports where a test needs control of how data arrives.
// Every test closes its engine, which closes its connections, listeners
// and loop.
// Timeouts run on a VirtualTimeLoop, over its in-memory loopback network:
// its clock jumps to the timer once nothing is ready, so no test waits for
// real time.

import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { AsyncEngine, type Callback } from "../../facade/async_engine.ts";
import { Connection } from "../../facade/connection.ts";
import { Listener } from "../../facade/listener.ts";
import { UnexpectedLineError } from "../../facade/unexpected_line_error.ts";
import {
  CancelledError,
  IncompleteReadError,
  InvalidStateError,
  LimitOverrunError,
  TimeoutError,
} from "../../futures/errors.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import type { AddrInfo, Executor } from "../../loop/event_loop.ts";
import { StreamReader } from "../../streams/stream_reader.ts";
import { StreamReaderProtocol } from "../../streams/stream_reader_protocol.ts";
import { StreamWriter } from "../../streams/stream_writer.ts";
import { allTasks } from "../../tasks/task.ts";
import { transportPair } from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

// ---- Helpers ----

const HOST = "127.0.0.1";
/** Real seconds after which a stuck test gives up (a guard, not a timing). */
const GUARD = 20;

type Call<T> =
  | { kind: "success"; value: T }
  | { kind: "failure"; error: unknown };

/** A callback object that records every call made to it. */
class Recorder<T> {
  readonly calls: Call<T>[] = [];
  readonly cb: Callback<T>;

  constructor(timeout?: number | null, onSuccess?: (value: T) => void) {
    this.cb = {
      success: (value) => {
        this.calls.push({ kind: "success", value });
        onSuccess?.(value);
      },
      failure: (error) => {
        this.calls.push({ kind: "failure", error });
      },
      timeout,
    };
  }

  /** The one success value; fails the test on anything else. */
  value(): T {
    assertEquals(this.calls.length, 1, `expected one call: ${this.#show()}`);
    const call = this.calls[0];
    if (call.kind !== "success") {
      throw new Error(`expected success, got failure: ${String(call.error)}`);
    }
    return call.value;
  }

  /** The one failure error; fails the test on anything else. */
  error(): unknown {
    assertEquals(this.calls.length, 1, `expected one call: ${this.#show()}`);
    const call = this.calls[0];
    assertEquals(call.kind, "failure", "expected a failure");
    return (call as { error: unknown }).error;
  }

  /** The one failure error, checked to be an instance of `type`. */
  errorOf<E>(type: abstract new (...args: never[]) => E): E {
    const error = this.error();
    assert(
      error instanceof type,
      `expected ${type.name}, got ${String(error)}`,
    );
    return error as E;
  }

  #show(): string {
    return JSON.stringify(this.calls.map((c) => c.kind));
  }
}

/** Runs the engine until idle, giving up after GUARD real seconds. */
async function drive(engine: AsyncEngine): Promise<void> {
  const loop = engine.getLoop();
  if (loop instanceof VirtualTimeLoop) {
    // A guard timer would be jumped to: rely on the test runner instead.
    await engine.run();
    return;
  }
  let gaveUp = false;
  const guard = loop.callLater(GUARD, () => {
    gaveUp = true;
    engine.stop();
  });
  try {
    await engine.run();
  } finally {
    guard.cancel();
  }
  if (gaveUp) throw new Error(`The engine was still busy after ${GUARD} s`);
}

/** Runs one iteration at a time until `done()`, with the same guard. */
async function until(engine: AsyncEngine, done: () => boolean): Promise<void> {
  const loop = engine.getLoop();
  const deadline = performance.now() + GUARD * 1000;
  // On a real clock, a timer makes sure that runOnce() wakes up.
  const guard = loop instanceof VirtualTimeLoop
    ? null
    : loop.callLater(GUARD, () => {});
  try {
    while (!done()) {
      if (performance.now() > deadline) {
        throw new Error(`The condition was still false after ${GUARD} s`);
      }
      await engine.runOnce();
    }
  } finally {
    guard?.cancel();
  }
}

async function listen(
  engine: AsyncEngine,
  backlog?: number,
): Promise<Listener> {
  const r = new Recorder<Listener>();
  engine.listen(HOST, 0, r.cb, { backlog });
  await drive(engine);
  return r.value();
}

function portOf(listener: Listener): number {
  return (listener.addresses()[0] as Deno.NetAddr).port;
}

/** A listener, a client connection and the server's end of it. */
async function pair(
  engine: AsyncEngine,
): Promise<[Connection, Connection, Listener]> {
  const listener = await listen(engine);
  const client = new Recorder<Connection>();
  const server = new Recorder<Connection>();
  engine.connect(HOST, portOf(listener), client.cb);
  engine.accept(listener, server.cb);
  await drive(engine);
  return [client.value(), server.value(), listener];
}

/** A port that was just free: listened on, then closed. */
async function closedPort(engine: AsyncEngine): Promise<number> {
  const listener = await listen(engine);
  const port = portOf(listener);
  listener.close();
  await drive(engine);
  return port;
}

async function send(
  engine: AsyncEngine,
  conn: Connection,
  data: string,
): Promise<void> {
  const r = new Recorder<number>();
  engine.write(conn, data, r.cb);
  await drive(engine);
  r.value();
}

const text = (data: Uint8Array) => new TextDecoder().decode(data);

/**
 * Two connected ends over an in-memory transport on `loop`, [client,
 * server]; the server's writes reach the client `chunkSize` bytes at a
 * time.
 */
function memoryPair(
  loop: VirtualTimeLoop,
  options: { chunkSize?: number; limit?: number } = {},
): [Connection, Connection] {
  const make = () => {
    const reader = new StreamReader({ loop, limit: options.limit });
    return [
      reader,
      new StreamReaderProtocol(reader, undefined, { loop }),
    ] as const;
  };
  const [clientReader, clientProtocol] = make();
  const [serverReader, serverProtocol] = make();
  const [clientTransport, serverTransport] = transportPair(
    clientProtocol,
    serverProtocol,
    { loop, chunkSize: options.chunkSize },
  );
  const end = (
    reader: StreamReader,
    transport: typeof clientTransport,
    protocol: StreamReaderProtocol,
  ) =>
    new Connection(
      reader,
      new StreamWriter(transport, protocol, { reader, loop }),
    );
  return [
    end(clientReader, clientTransport, clientProtocol),
    end(serverReader, serverTransport, serverProtocol),
  ];
}

/** A RegExp that counts the characters handed to exec(). */
function countingRegExp(
  pattern: RegExp,
): [RegExp, { chars: number; calls: number }] {
  const counter = { chars: 0, calls: 0 };
  class CountingRegExp extends RegExp {
    override exec(text: string): RegExpExecArray | null {
      counter.calls += 1;
      counter.chars += text.length;
      return super.exec(text);
    }
  }
  return [new CountingRegExp(pattern.source, pattern.flags), counter];
}

/** An executor on the loop's own thread, for work without workers. */
const inline: Executor = {
  submit: (fn, ...args) => Promise.resolve().then(() => fn(...args)),
  shutdown() {},
};

// ---- connect, listen, accept ----

Deno.test("AsyncEngine.connect() and accept() give the two ends of one connection", async () => {
  const engine = new AsyncEngine();
  const [client, server, listener] = await pair(engine);
  assertInstanceOf(client, Connection);
  assertInstanceOf(server, Connection);
  const local = client.getExtraInfo("sockname") as Deno.NetAddr;
  const peer = server.getExtraInfo("peername") as Deno.NetAddr;
  assertEquals(peer.port, local.port);
  assertEquals(
    (client.getExtraInfo("peername") as Deno.NetAddr).port,
    portOf(listener),
  );
  await engine.close();
  assert(client.isClosing() && server.isClosing() && listener.isClosing());
});

Deno.test("AsyncEngine.listen() gives a Listener with its addresses", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  assertInstanceOf(listener, Listener);
  const addr = listener.addresses()[0] as Deno.NetAddr;
  assertEquals([addr.transport, addr.hostname], ["tcp", HOST]);
  assert(addr.port > 0);
  assertFalse(listener.isClosing());
  await engine.close();
});

Deno.test("AsyncEngine.listen() reports an address in use to failure", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const r = new Recorder<Listener>();
  engine.listen(HOST, portOf(listener), r.cb);
  await drive(engine);
  assertInstanceOf(r.error(), Deno.errors.AddrInUse);
  await engine.close();
});

Deno.test("AsyncEngine.connect() reports a refused connection to failure", async () => {
  const engine = new AsyncEngine();
  const port = await closedPort(engine);
  const r = new Recorder<Connection>();
  engine.connect(HOST, port, r.cb);
  await drive(engine);
  assertInstanceOf(r.error(), Deno.errors.ConnectionRefused);
  assertEquals(engine.pending(), 0);
  await engine.close();
});

Deno.test("AsyncEngine.accept() queues connections that arrive before it is called", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const clients = [new Recorder<Connection>(), new Recorder<Connection>()];
  for (const c of clients) engine.connect(HOST, portOf(listener), c.cb);
  await drive(engine);
  // Both are accepted by the server and wait in the listener's queue.
  await until(engine, () => listener.waiting() >= 2);
  const accepted = [new Recorder<Connection>(), new Recorder<Connection>()];
  for (const a of accepted) engine.accept(listener, a.cb);
  await drive(engine);
  const servers = accepted.map((a) => a.value());
  const peers = servers.map((s) =>
    (s.getExtraInfo("peername") as Deno.NetAddr).port
  )
    .sort();
  const locals = clients.map((c) =>
    (c.value().getExtraInfo("sockname") as Deno.NetAddr).port
  ).sort();
  assertEquals(peers, locals);
  await engine.close();
});

Deno.test("AsyncEngine.listen() closes connections beyond the backlog", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine, 1);
  const first = new Recorder<Connection>();
  engine.connect(HOST, portOf(listener), first.cb);
  await drive(engine);
  await until(engine, () => listener.waiting() >= 1);
  const second = new Recorder<Connection>();
  engine.connect(HOST, portOf(listener), second.cb);
  await drive(engine);
  // The second one is closed by the server: its client reads the end.
  const eof = new Recorder<Uint8Array>();
  engine.read(second.value(), eof.cb);
  await drive(engine);
  assertEquals(eof.value().length, 0);
  assertEquals(listener.waiting(), 1);
  await engine.close();
});

Deno.test("AsyncEngine.accept() fails with InvalidStateError when the listener closes", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const waiting = new Recorder<Connection>();
  engine.accept(listener, waiting.cb);
  await engine.runOnce();
  listener.close();
  await drive(engine);
  assertInstanceOf(waiting.error(), InvalidStateError);
  const late = new Recorder<Connection>();
  engine.accept(listener, late.cb);
  await drive(engine);
  assertInstanceOf(late.error(), InvalidStateError);
  await engine.close();
});

Deno.test("Listener.close() closes the connections still waiting to be accepted", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const client = new Recorder<Connection>();
  engine.connect(HOST, portOf(listener), client.cb);
  await drive(engine);
  await until(engine, () => listener.waiting() >= 1);
  listener.close();
  assertEquals(listener.waiting(), 0);
  const eof = new Recorder<Uint8Array>();
  engine.readAll(client.value(), eof.cb);
  await drive(engine);
  assertEquals(eof.value().length, 0);
  await engine.close();
});

// ---- Reading ----

Deno.test("AsyncEngine.read() gives what is available, up to size, and empty at the end", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  await send(engine, server, "hello");
  const part = new Recorder<Uint8Array>();
  engine.read(client, part.cb, { size: 2 });
  await drive(engine);
  assertEquals(text(part.value()), "he");
  const rest = new Recorder<Uint8Array>();
  engine.read(client, rest.cb);
  await drive(engine);
  assertEquals(text(rest.value()), "llo");
  server.close();
  const end = new Recorder<Uint8Array>();
  engine.read(client, end.cb);
  await drive(engine);
  assertEquals(end.value().length, 0);
  await engine.close();
});

Deno.test("AsyncEngine.readUntil() takes a string or bytes separator, which it includes", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  await send(engine, server, "key=value;next\r\n");
  const byText = new Recorder<Uint8Array>();
  engine.readUntil(client, "=", byText.cb);
  await drive(engine);
  assertEquals(text(byText.value()), "key=");
  const byBytes = new Recorder<Uint8Array>();
  engine.readUntil(client, new Uint8Array([59]), byBytes.cb);
  await drive(engine);
  assertEquals(text(byBytes.value()), "value;");
  const crlf = new Recorder<Uint8Array>();
  engine.readUntil(client, "\r\n", crlf.cb);
  await drive(engine);
  assertEquals(text(crlf.value()), "next\r\n");
  await engine.close();
});

Deno.test("AsyncEngine.readUntil() fails with IncompleteReadError when the stream ends first", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  await send(engine, server, "no separator");
  server.close();
  const r = new Recorder<Uint8Array>();
  engine.readUntil(client, "\n", r.cb);
  await drive(engine);
  const error = r.errorOf(IncompleteReadError);
  assertEquals(text(error.partial), "no separator");
  await engine.close();
});

Deno.test("AsyncEngine.readUntilRegex() delivers the match and leaves the rest unread", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  await send(engine, server, "Welcome to héllo\nlogin: rest");
  const r = new Recorder<RegExpExecArray>();
  engine.readUntilRegex(client, /(\w+): $/g, r.cb);
  await drive(engine);
  const match = r.value();
  assertEquals(match[1], "login");
  assertEquals(match.input, "Welcome to héllo\nlogin: ");
  const rest = new Recorder<Uint8Array>();
  engine.read(client, rest.cb);
  await drive(engine);
  assertEquals(text(rest.value()), "rest");
  await engine.close();
});

Deno.test("AsyncEngine.readUntilRegex() fails at the end of the stream and at the read limit", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const client = new Recorder<Connection>();
  const server = new Recorder<Connection>();
  engine.connect(HOST, portOf(listener), client.cb, { limit: 8 });
  engine.accept(listener, server.cb);
  await drive(engine);
  await send(engine, server.value(), "0123456789");
  const over = new Recorder<RegExpExecArray>();
  engine.readUntilRegex(client.value(), /x/, over.cb);
  await drive(engine);
  const overrun = over.errorOf(LimitOverrunError);
  assertEquals(overrun.consumed, 8);
  assertEquals(
    overrun.message,
    "Cannot read until the pattern: it did not match within limit=8 bytes; the bytes read are consumed; to wait for more, give connect() or listen() a larger limit",
  );
  server.value().close();
  const end = new Recorder<RegExpExecArray>();
  engine.readUntilRegex(client.value(), /x/, end.cb);
  await drive(engine);
  const incomplete = end.errorOf(IncompleteReadError);
  assertEquals(text(incomplete.partial), "89");
  await engine.close();
});

Deno.test("AsyncEngine.readUntilRegex() does work linear in what it reads, one byte at a time", async () => {
  // Rescanning all the text read after each byte would make the characters
  // scanned grow with the square of the input; the count pins it linear.
  const work = async (n: number) => {
    const loop = new VirtualTimeLoop();
    const engine = new AsyncEngine(loop);
    const [client, server] = memoryPair(loop, { chunkSize: 1, limit: 1 << 20 });
    const [pattern, counter] = countingRegExp(/(\w+): $/);
    const r = new Recorder<RegExpExecArray>();
    engine.readUntilRegex(client, pattern, r.cb);
    server.writer.write(new TextEncoder().encode("-".repeat(n) + "login: "));
    await drive(engine);
    const match = r.value();
    assertEquals([match[1], match.index, match.input.length], [
      "login",
      n,
      n + 7,
    ]);
    await engine.close();
    loop.close();
    return counter;
  };
  const small = await work(20_000);
  const large = await work(80_000);
  // One try per byte (and one of the empty text), each over at most
  // 2 × 1024 + 64 characters.
  assertEquals(large.calls, 1 + 80_000 + 7);
  assert(large.chars <= large.calls * (2 * 1024 + 64), `${large.chars}`);
  // Four times the input, four times the work (a rescan would be 16).
  const ratio = large.chars / small.chars;
  assert(ratio > 3.5 && ratio < 4.5, `ratio ${ratio}`);
});

Deno.test("AsyncEngine.readUntilRegex() finds matches up to maxMatchLength characters", async () => {
  const loop = new VirtualTimeLoop();
  const engine = new AsyncEngine(loop);
  const [client, server] = memoryPair(loop, { chunkSize: 3, limit: 64 });
  server.writer.write(new TextEncoder().encode("<12345678><123>"));
  const r = new Recorder<RegExpExecArray>();
  engine.readUntilRegex(client, /<\d+>/, r.cb, { maxMatchLength: 5 });
  await drive(engine);
  // "<12345678>" is too long to be looked for; "<123>" is not.
  assertEquals(r.value()[0], "<123>");
  assertEquals(r.value().index, 10);
  assertThrows(
    () => engine.readUntilRegex(client, /x/, r.cb, { maxMatchLength: 0 }),
    RangeError,
    "Cannot call readUntilRegex(): maxMatchLength must be a whole number >= 1, received 0",
  );
  assertThrows(
    () =>
      engine.readUntilRegex(client, /x/, r.cb, {
        maxMatchLength: "9" as unknown as number,
      }),
    RangeError,
    'maxMatchLength must be a whole number >= 1, received "9"',
  );
  await engine.close();
  loop.close();
});

// ---- readUntilLineglob ----

Deno.test("AsyncEngine.readUntilLineglob() delivers the lines up to the matching one and leaves the rest unread", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  await send(engine, server, "step 1\r\nstep 2\nDone in 3 s\r\nnext\n");
  const r = new Recorder<string[]>();
  engine.readUntilLineglob(client, "Done in [0-9]* s", r.cb);
  await drive(engine);
  assertEquals(r.value(), ["step 1", "step 2", "Done in 3 s"]);
  const rest = new Recorder<Uint8Array>();
  engine.read(client, rest.cb);
  await drive(engine);
  assertEquals(text(rest.value()), "next\n");
  await engine.close();
});

Deno.test("AsyncEngine.readUntilLineglob() gives the same lines whatever the chunks", async () => {
  const input = "héllo 🦕\nwörld\nEND ✓\ntail";
  for (const chunkSize of [1, 2, 5, 64]) {
    const loop = new VirtualTimeLoop();
    const engine = new AsyncEngine(loop);
    const [client, server] = memoryPair(loop, { chunkSize });
    server.writer.write(new TextEncoder().encode(input));
    const r = new Recorder<string[]>();
    engine.readUntilLineglob(client, "END ?", r.cb);
    await drive(engine);
    assertEquals(r.value(), ["héllo 🦕", "wörld", "END ✓"], `${chunkSize}`);
    await engine.close();
    loop.close();
  }
});

Deno.test("AsyncEngine.readUntilLineglob() fails at the end of the stream and past the read limit", async () => {
  const loop = new VirtualTimeLoop();
  const engine = new AsyncEngine(loop);
  const [client, server] = memoryPair(loop, { limit: 16 });
  server.writer.write(new TextEncoder().encode("aaaaaa\nbbbbbb\ncccccc\nOK\n"));
  const over = new Recorder<string[]>();
  engine.readUntilLineglob(client, "OK", over.cb);
  await drive(engine);
  const overrun = over.errorOf(LimitOverrunError);
  assertEquals(overrun.consumed, 21);
  assertEquals(
    overrun.message,
    "Cannot read until a line matches the glob: none did within limit=16 bytes; the lines read are consumed; to wait for more, give connect() or listen() a larger limit",
  );
  server.writer.write(new TextEncoder().encode("partial"));
  server.writer.writeEof();
  const end = new Recorder<string[]>();
  engine.readUntilLineglob(client, "nothing", end.cb);
  await drive(engine);
  assertEquals(text(end.errorOf(IncompleteReadError).partial), "OK\npartial");
  assertThrows(
    () => engine.readUntilLineglob(client, /x/ as unknown as string, end.cb),
    TypeError,
    "Cannot call readUntilLineglob(): glob must be a string, received object",
  );
  await engine.close();
  loop.close();
});

Deno.test("AsyncEngine.readChunk() gives exactly size bytes, or IncompleteReadError", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  await send(engine, server, "abc");
  const first = new Recorder<Uint8Array>();
  engine.readChunk(client, 6, first.cb);
  // The rest comes in a second write: the chunk waits for it.
  engine.write(server, "defgh", new Recorder<number>().cb);
  await drive(engine);
  assertEquals(text(first.value()), "abcdef");
  const empty = new Recorder<Uint8Array>();
  engine.readChunk(client, 0, empty.cb);
  await drive(engine);
  assertEquals(empty.value().length, 0);
  server.close();
  const short = new Recorder<Uint8Array>();
  engine.readChunk(client, 5, short.cb);
  await drive(engine);
  const error = short.errorOf(IncompleteReadError);
  assertEquals([text(error.partial), error.expected], ["gh", 5]);
  await engine.close();
});

Deno.test("AsyncEngine.readAll() reads until the end of the stream", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  const all = new Recorder<Uint8Array>();
  engine.readAll(client, all.cb);
  engine.write(server, "one ", new Recorder<number>().cb);
  engine.write(server, "two ", new Recorder<number>().cb);
  engine.write(
    server,
    "three",
    new Recorder<number>(null, () => server.close()).cb,
  );
  await drive(engine);
  assertEquals(text(all.value()), "one two three");
  await engine.close();
});

Deno.test("AsyncEngine.expectLine() accepts the line with \\n or \\r\\n", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  await send(engine, server, "HELLO\r\nWORLD\n");
  const a = new Recorder<string>();
  engine.expectLine(client, "HELLO", a.cb);
  await drive(engine);
  assertEquals(a.value(), "HELLO");
  const b = new Recorder<string>();
  engine.expectLine(client, "WORLD\n", b.cb);
  await drive(engine);
  assertEquals(b.value(), "WORLD");
  await engine.close();
});

Deno.test("AsyncEngine.expectLine() fails with UnexpectedLineError on another line", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  await send(engine, server, "BYE\n");
  const r = new Recorder<string>();
  engine.expectLine(client, "HELLO", r.cb);
  await drive(engine);
  const error = r.errorOf(UnexpectedLineError);
  assertEquals([error.expected, error.received], ["HELLO", "BYE"]);
  await engine.close();
});

Deno.test("AsyncEngine.expectLine() fails with IncompleteReadError at the end before a line", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  await send(engine, server, "HEL");
  server.close();
  const partial = new Recorder<string>();
  engine.expectLine(client, "HELLO", partial.cb);
  await drive(engine);
  assertEquals(text((partial.error() as IncompleteReadError).partial), "HEL");
  const nothing = new Recorder<string>();
  engine.expectLine(client, "HELLO", nothing.cb);
  await drive(engine);
  assertInstanceOf(nothing.error(), IncompleteReadError);
  await engine.close();
});

// ---- Writing ----

Deno.test("AsyncEngine.write() and writeLine() report the bytes written", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  const w = new Recorder<number>();
  engine.write(client, new Uint8Array([104, 105, 32]), w.cb);
  const l = new Recorder<number>();
  engine.writeLine(client, "héllo", l.cb);
  await drive(engine);
  assertEquals([w.value(), l.value()], [3, 7]);
  client.close();
  const all = new Recorder<Uint8Array>();
  engine.readAll(server, all.cb);
  await drive(engine);
  assertEquals(text(all.value()), "hi héllo\n");
  await engine.close();
});

Deno.test("AsyncEngine.write() reports a write on a closing connection to failure", async () => {
  const engine = new AsyncEngine();
  const [client] = await pair(engine);
  client.close();
  const r = new Recorder<number>();
  engine.write(client, "late", r.cb);
  await drive(engine);
  assertInstanceOf(r.error(), Error);
  await engine.close();
});

// ---- Names and work ----

Deno.test("AsyncEngine.getaddrinfo() resolves a numeric address", async () => {
  const engine = new AsyncEngine();
  const r = new Recorder<AddrInfo[]>();
  engine.getaddrinfo(HOST, 8080, r.cb);
  await drive(engine);
  assertEquals(r.value(), [{ family: 4, hostname: HOST, port: 8080 }]);
  await engine.close();
});

Deno.test("AsyncEngine.submitWork() runs a self-contained function in a worker", async () => {
  const engine = new AsyncEngine();
  const r = new Recorder<number>();
  engine.submitWork(
    (n: number) => {
      let sum = 0;
      for (let i = 1; i <= n; i++) sum += i;
      return sum;
    },
    [100],
    r.cb,
  );
  await drive(engine);
  assertEquals(r.value(), 5050);
  await engine.close();
});

Deno.test("AsyncEngine.submitWork() reports what the function throws to failure", async () => {
  const engine = new AsyncEngine();
  const r = new Recorder<never>();
  engine.submitWork(
    () => {
      throw new RangeError("too big");
    },
    [],
    r.cb,
    { executor: inline },
  );
  await drive(engine);
  const error = r.errorOf(RangeError);
  assertEquals(error.message, "too big");
  await engine.close();
});

// ---- Chained calls ----

Deno.test("AsyncEngine.connectThenWriteLine() and acceptThenExpectLine() exchange a line", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const order: string[] = [];
  const accepted = new Recorder<Connection>(null, () => order.push("accept"));
  const line = new Recorder<string>(null, () => order.push("line"));
  const connected = new Recorder<Connection>(null, () => order.push("connect"));
  const wrote = new Recorder<number>(null, () => order.push("write"));
  engine.acceptThenExpectLine(listener, "HELLO", [accepted.cb, line.cb]);
  engine.connectThenWriteLine(HOST, portOf(listener), "HELLO", [
    connected.cb,
    wrote.cb,
  ]);
  await drive(engine);
  assertEquals(line.value(), "HELLO");
  assertEquals(wrote.value(), 6);
  assertInstanceOf(accepted.value(), Connection);
  assertInstanceOf(connected.value(), Connection);
  // Each chain tells its first callback before its second.
  assert(order.indexOf("accept") < order.indexOf("line"));
  assert(order.indexOf("connect") < order.indexOf("write"));
  await engine.close();
});

Deno.test("AsyncEngine.acceptThenWrite() and connectThenExpectLine() exchange a line", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const accepted = new Recorder<Connection>();
  const wrote = new Recorder<number>();
  const connected = new Recorder<Connection>();
  const line = new Recorder<string>();
  engine.acceptThenWrite(listener, "WELCOME\r\n", [accepted.cb, wrote.cb]);
  engine.connectThenExpectLine(HOST, portOf(listener), "WELCOME", [
    connected.cb,
    line.cb,
  ]);
  await drive(engine);
  assertEquals([wrote.value(), line.value()], [9, "WELCOME"]);
  await engine.close();
});

Deno.test("AsyncEngine.acceptThenExpectMultilineRegex() reads whole lines until the text matches", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const accepted = new Recorder<Connection>();
  const matched = new Recorder<RegExpExecArray>();
  engine.acceptThenExpectMultilineRegex(listener, /^250 (\w+)$/, [
    accepted.cb,
    matched.cb,
  ]);
  const client = new Recorder<Connection>();
  engine.connect(HOST, portOf(listener), client.cb);
  // Not drive(): the chain waits for lines until they are sent.
  await until(engine, () => client.calls.length + accepted.calls.length === 2);
  await send(engine, client.value(), "250-first\n250-second\n250 LAST\nQUIT\n");
  await drive(engine);
  const match = matched.value();
  assertEquals(match[1], "LAST");
  assertEquals(match.index, "250-first\n250-second\n".length);
  assertEquals(match.input, "250-first\n250-second\n250 LAST\n");
  const rest = new Recorder<string>();
  engine.expectLine(accepted.value(), "QUIT", rest.cb);
  await drive(engine);
  assertEquals(rest.value(), "QUIT");
  await engine.close();
});

Deno.test("AsyncEngine.acceptThenExpectMultilineRegex() spans lines and fails at the end of the stream", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const expect = async (pattern: RegExp, data: string) => {
    const accepted = new Recorder<Connection>();
    const matched = new Recorder<RegExpExecArray>();
    engine.acceptThenExpectMultilineRegex(listener, pattern, [
      accepted.cb,
      matched.cb,
    ]);
    const client = new Recorder<Connection>();
    engine.connect(HOST, portOf(listener), client.cb);
    await until(
      engine,
      () => client.calls.length + accepted.calls.length === 2,
    );
    client.value().writer.write(new TextEncoder().encode(data));
    client.value().close();
    await drive(engine);
    return matched;
  };
  const spanning = await expect(
    /^BEGIN\n(.*\n)*?END$/,
    "x\nBEGIN\na\nb\nEND\n",
  );
  assertEquals(spanning.value()[0], "BEGIN\na\nb\nEND");
  const unended = await expect(/never/, "one\nno end");
  const error = unended.errorOf(IncompleteReadError);
  assertEquals(text(error.partial), "one\nno end");
  await engine.close();
});

Deno.test("AsyncEngine.acceptThenExpectMultilineRegex() stops at the read limit", async () => {
  const engine = new AsyncEngine();
  const made = new Recorder<Listener>();
  engine.listen(HOST, 0, made.cb, { limit: 8 });
  await drive(engine);
  const listener = made.value();
  const accepted = new Recorder<Connection>();
  const matched = new Recorder<RegExpExecArray>();
  engine.acceptThenExpectMultilineRegex(listener, /never/, [
    accepted.cb,
    matched.cb,
  ]);
  const client = new Recorder<Connection>();
  engine.connect(HOST, portOf(listener), client.cb);
  await until(engine, () => client.calls.length + accepted.calls.length === 2);
  await send(engine, client.value(), "1234\n5678\n9\n");
  const overrun = matched.errorOf(LimitOverrunError);
  assertEquals(overrun.consumed, 10);
  assertEquals(
    overrun.message,
    "Cannot read until the pattern: it did not match within limit=8 bytes; the bytes read are consumed; to wait for more, give connect() or listen() a larger limit",
  );
  await engine.close();
});

Deno.test("AsyncEngine chained calls take one callback object, as the proposal's accept_then_expect_multiline_regex(sock, regex, cb)", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const done = new Recorder<[Connection, RegExpExecArray]>();
  engine.acceptThenExpectMultilineRegex(listener, /^250 (\w+)$/, done.cb);
  assertEquals(typeof done.cb.cancel, "function");
  const sent = new Recorder<[Connection, number]>();
  engine.connectThenWriteLine(HOST, portOf(listener), "250-a\n250 OK", sent.cb);
  await drive(engine);
  // One call with both steps' values: the connection stays reachable.
  const [client, wrote] = sent.value();
  assertInstanceOf(client, Connection);
  assertEquals(wrote, "250-a\n250 OK\n".length);
  const [server, match] = done.value();
  assertInstanceOf(server, Connection);
  assertEquals(match[1], "OK");
  await engine.close();
});

Deno.test("AsyncEngine chained calls with one callback: one failure, one timeout for the chain, and the connection it made closed", async () => {
  const loop = new VirtualTimeLoop();
  const engine = new AsyncEngine(loop);
  const listener = await listen(engine);
  const refused = new Recorder<[Connection, number]>();
  engine.connectThenWriteLine(HOST, await closedPort(engine), "x", refused.cb);
  await drive(engine);
  refused.errorOf(Deno.errors.ConnectionRefused);
  // The peer never answers: the one timeout covers both steps.
  const accepted: Connection[] = [];
  engine.accept(
    listener,
    new Recorder<Connection>(null, (c) => accepted.push(c)).cb,
  );
  const start = loop.time();
  const line = new Recorder<[Connection, string]>(3);
  engine.connectThenExpectLine(HOST, portOf(listener), "HELLO", line.cb);
  await drive(engine);
  const error = line.errorOf(TimeoutError);
  assertEquals(
    error.message,
    "Cannot connect to 127.0.0.1:" + portOf(listener) +
      ", then read the expected line: it did not finish in time, received timeout=3",
  );
  assertEquals(loop.time() - start, 3);
  // The connection the caller never got is closed: the server reads the end.
  const end = new Recorder<Uint8Array>();
  engine.readAll(accepted[0], end.cb);
  await drive(engine);
  assertEquals(end.value().length, 0);
  assertThrows(
    () => engine.connectThenWriteLine(HOST, 1, "x", { success() {} } as never),
    TypeError,
    "callbacks must be a callback object or an array of two",
  );
  await engine.close();
  loop.close();
});

Deno.test("AsyncEngine.writeThenExpectLine() writes, then checks the answer", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  // The server answers each line in upper case.
  const question = new Recorder<Uint8Array>(null, (data) => {
    engine.writeLine(
      server,
      text(data).trim().toUpperCase(),
      new Recorder<number>().cb,
    );
  });
  engine.readUntil(server, "\n", question.cb);
  const wrote = new Recorder<number>();
  const answer = new Recorder<string>();
  engine.writeThenExpectLine(client, "ping\n", "PING", [wrote.cb, answer.cb]);
  await drive(engine);
  assertEquals([wrote.value(), answer.value()], [5, "PING"]);
  await engine.close();
});

Deno.test("AsyncEngine.connectThenExpectLine() reports a wrong line to the second callback only", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  engine.acceptThenWrite(listener, "NOPE\n", [
    new Recorder<Connection>().cb,
    new Recorder<number>().cb,
  ]);
  const connected = new Recorder<Connection>();
  const line = new Recorder<string>();
  engine.connectThenExpectLine(HOST, portOf(listener), "YES", [
    connected.cb,
    line.cb,
  ]);
  await drive(engine);
  assertInstanceOf(connected.value(), Connection);
  assertInstanceOf(line.error(), UnexpectedLineError);
  await engine.close();
});

Deno.test("AsyncEngine.getaddrinfoThenConnect() resolves, then connects", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const resolved = new Recorder<AddrInfo[]>();
  const connected = new Recorder<Connection>();
  engine.getaddrinfoThenConnect(HOST, portOf(listener), [
    resolved.cb,
    connected.cb,
  ]);
  await drive(engine);
  assertEquals(resolved.value(), [
    { family: 4, hostname: HOST, port: portOf(listener) },
  ]);
  const peer = connected.value().getExtraInfo("peername") as Deno.NetAddr;
  assertEquals(peer.port, portOf(listener));
  await engine.close();
});

Deno.test("AsyncEngine chained calls report a first-step failure to both callbacks and skip the second step", async () => {
  const engine = new AsyncEngine();
  const port = await closedPort(engine);
  const connected = new Recorder<Connection>();
  const wrote = new Recorder<number>();
  engine.connectThenWriteLine(HOST, port, "never sent", [
    connected.cb,
    wrote.cb,
  ]);
  const resolved = new Recorder<AddrInfo[]>();
  const connectedAny = new Recorder<Connection>();
  engine.getaddrinfoThenConnect(HOST, port, [resolved.cb, connectedAny.cb]);
  await drive(engine);
  const error = connected.errorOf(Deno.errors.ConnectionRefused);
  assertStrictEquals(wrote.error(), error);
  // Resolving worked; connecting is the second step here.
  assertEquals(resolved.value().length, 1);
  assertInstanceOf(connectedAny.error(), Deno.errors.ConnectionRefused);
  await engine.close();
});

// ---- Timeouts ----

Deno.test("AsyncEngine reports a timeout as one TimeoutError, against a server that never answers", async () => {
  const loop = new VirtualTimeLoop();
  const engine = new AsyncEngine(loop);
  const [client, server] = await pair(engine);
  const start = loop.time();
  const r = new Recorder<string>(30);
  engine.expectLine(client, "HELLO", r.cb);
  await drive(engine);
  const error = r.errorOf(TimeoutError);
  assertEquals(
    error.message,
    "Cannot read the expected line: it did not finish in time, received timeout=30",
  );
  assertEquals(loop.time() - start, 30);
  assertEquals(engine.pending(), 0);
  // The connection is still usable: the line is read when it comes.
  await send(engine, server, "HELLO\n");
  const again = new Recorder<string>();
  engine.expectLine(client, "HELLO", again.cb);
  await drive(engine);
  assertEquals(again.value(), "HELLO");
  await engine.close();
  loop.close();
});

Deno.test("AsyncEngine applies each chained callback's timeout to its own step", async () => {
  const loop = new VirtualTimeLoop();
  const engine = new AsyncEngine(loop);
  const listener = await listen(engine);
  const connected = new Recorder<Connection>();
  engine.connect(HOST, portOf(listener), connected.cb);
  await drive(engine);
  // Queued before accepting, so that no I/O is left to wait for.
  await until(engine, () => listener.waiting() >= 1);
  const start = loop.time();
  const accepted = new Recorder<Connection>(5);
  const line = new Recorder<string>(0.05);
  engine.acceptThenExpectLine(listener, "HELLO", [accepted.cb, line.cb]);
  await drive(engine);
  assertInstanceOf(accepted.value(), Connection);
  assertInstanceOf(line.error(), TimeoutError);
  assertEquals(loop.time() - start, 0.05);
  await engine.close();
  loop.close();
});

Deno.test("AsyncEngine reports a first-step timeout to both chained callbacks", async () => {
  const loop = new VirtualTimeLoop();
  const engine = new AsyncEngine(loop);
  const listener = await listen(engine);
  const accepted = new Recorder<Connection>(2);
  const wrote = new Recorder<number>(60);
  engine.acceptThenWrite(listener, "never", [accepted.cb, wrote.cb]);
  await drive(engine);
  const error = accepted.errorOf(TimeoutError);
  assertStrictEquals(wrote.error(), error);
  await engine.close();
  loop.close();
});

Deno.test("AsyncEngine.connect() with a zero timeout fails with TimeoutError and leaves nothing open", async () => {
  const loop = new VirtualTimeLoop();
  const engine = new AsyncEngine(loop);
  const listener = await listen(engine);
  const r = new Recorder<Connection>(0);
  engine.connect(HOST, portOf(listener), r.cb);
  await drive(engine);
  assertInstanceOf(r.error(), TimeoutError);
  await engine.close();
  loop.close();
});

// ---- Cancelling ----

Deno.test("AsyncEngine cancel() before completion calls no callback and loses no data", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  const r = new Recorder<Uint8Array>();
  engine.read(client, r.cb);
  await engine.runOnce();
  assertEquals(engine.pending(), 1);
  assertEquals(r.cb.cancel!(), true);
  assertEquals(r.cb.cancel!(), false);
  await drive(engine);
  assertEquals(engine.pending(), 0);
  await send(engine, server, "kept");
  const next = new Recorder<Uint8Array>();
  engine.read(client, next.cb);
  await drive(engine);
  assertEquals(r.calls, []);
  assertEquals(text(next.value()), "kept");
  await engine.close();
});

Deno.test("AsyncEngine cancel() right after the call starts nothing", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const r = new Recorder<Connection>();
  engine.connect(HOST, portOf(listener), r.cb);
  assertEquals(r.cb.cancel!(), true);
  await drive(engine);
  assertEquals(r.calls, []);
  assertEquals(engine.pending(), 0);
  await engine.close();
});

Deno.test("AsyncEngine cancel() after completion is a no-op and the callback still comes once", async () => {
  const engine = new AsyncEngine();
  const r = new Recorder<AddrInfo[]>();
  engine.getaddrinfo(HOST, 1, r.cb);
  await drive(engine);
  assertEquals(r.cb.cancel!(), false);
  assertEquals(r.value().length, 1);
  await engine.close();
});

Deno.test("AsyncEngine cancel() of an accept loses no connection", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const cancelled = new Recorder<Connection>();
  engine.accept(listener, cancelled.cb);
  await engine.runOnce();
  assert(cancelled.cb.cancel!());
  const client = new Recorder<Connection>();
  engine.connect(HOST, portOf(listener), client.cb);
  await drive(engine);
  await until(engine, () => listener.waiting() >= 1);
  const accepted = new Recorder<Connection>();
  engine.accept(listener, accepted.cb);
  await drive(engine);
  assertEquals(cancelled.calls, []);
  assertInstanceOf(accepted.value(), Connection);
  await engine.close();
});

Deno.test("AsyncEngine chained cancel(): the first callback's cancels the chain until its step is done", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  // Cancelled during the first step: neither callback is called.
  const a1 = new Recorder<Connection>();
  const a2 = new Recorder<string>();
  engine.acceptThenExpectLine(listener, "x", [a1.cb, a2.cb]);
  await engine.runOnce();
  assert(a1.cb.cancel!());
  await drive(engine);
  assertEquals([a1.calls, a2.calls], [[], []]);
  // Cancelled (by the second callback) during the second step: the first
  // step is still reported, and the first callback's cancel is too late.
  const b1 = new Recorder<Connection>();
  const b2 = new Recorder<string>();
  engine.acceptThenExpectLine(listener, "x", [b1.cb, b2.cb]);
  const client = new Recorder<Connection>();
  engine.connect(HOST, portOf(listener), client.cb);
  await until(engine, () => b1.calls.length > 0);
  assertEquals(b1.cb.cancel!(), false);
  assertEquals(b2.cb.cancel!(), true);
  await drive(engine);
  assertInstanceOf(b1.value(), Connection);
  assertEquals(b2.calls, []);
  await engine.close();
});

Deno.test("AsyncEngine reports a cancellation it did not ask for as failure(CancelledError)", async () => {
  const engine = new AsyncEngine();
  const [client] = await pair(engine);
  const r = new Recorder<Uint8Array>();
  engine.read(client, r.cb);
  await engine.runOnce();
  const task = [...allTasks(engine.getLoop())].find((t) =>
    t.getName() === "AsyncEngine.read"
  );
  if (task === undefined) throw new Error("no read task found");
  task.cancel();
  await drive(engine);
  assertInstanceOf(r.error(), CancelledError);
  await engine.close();
});

Deno.test("AsyncEngine reports an outside cancellation in a chain's second step to the second callback only", async () => {
  const engine = new AsyncEngine();
  const listener = await listen(engine);
  const accepted = new Recorder<Connection>();
  const line = new Recorder<string>();
  engine.acceptThenExpectLine(listener, "x", [accepted.cb, line.cb]);
  engine.connect(HOST, portOf(listener), new Recorder<Connection>().cb);
  await until(engine, () => accepted.calls.length > 0);
  const task = [...allTasks(engine.getLoop())].find((t) =>
    t.getName() === "AsyncEngine.acceptThenExpectLine"
  );
  if (task === undefined) throw new Error("no chain task found");
  task.cancel();
  await drive(engine);
  assertInstanceOf(accepted.value(), Connection);
  line.errorOf(CancelledError);
  await engine.close();
});

// ---- The callback contract ----

Deno.test("AsyncEngine never calls a callback from inside the call, even with the result at hand", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  await send(engine, server, "abc\n");
  const first = new Recorder<Uint8Array>();
  engine.read(client, first.cb, { size: 1 });
  await drive(engine);
  assertEquals(text(first.value()), "a");
  // "bc\n" is buffered now: each of these could finish at once.
  const read = new Recorder<Uint8Array>();
  engine.readChunk(client, 0, read.cb);
  const wrote = new Recorder<number>();
  engine.write(client, "x", wrote.cb);
  const work = new Recorder<number>();
  engine.submitWork(() => 1, [], work.cb, { executor: inline });
  const chain = [new Recorder<number>(), new Recorder<string>()] as const;
  engine.writeThenExpectLine(client, "", "bc", [chain[0].cb, chain[1].cb]);
  assertEquals(read.calls.length + wrote.calls.length + work.calls.length, 0);
  assertEquals(chain[0].calls.length + chain[1].calls.length, 0);
  await drive(engine);
  assertEquals([read.value().length, wrote.value(), work.value()], [0, 1, 1]);
  assertEquals(chain[0].value(), 0);
  await engine.close();
});

Deno.test("AsyncEngine passes an error thrown by a callback to the exception handler and goes on", async () => {
  const engine = new AsyncEngine();
  const loop = engine.getLoop();
  const handled: unknown[] = [];
  loop.setExceptionHandler((_loop, context) => handled.push(context.exception));
  const boom = new Error("callback bug");
  const chain: Callback<number> = {
    success: () => {
      throw boom;
    },
    failure: () => {},
  };
  const after = new Recorder<string>();
  engine.submitWork(() => 2, [], chain, { executor: inline });
  engine.submitWork(() => "next", [], after.cb, { executor: inline });
  await drive(engine);
  assertEquals(handled, [boom]);
  assertEquals(after.value(), "next");
  await engine.close();
});

Deno.test("AsyncEngine reports a callback's error at most once in 10 s per callback, counting the rest", async () => {
  const loop = new VirtualTimeLoop();
  const engine = new AsyncEngine(loop);
  const messages: string[] = [];
  loop.setExceptionHandler((_loop, context) => messages.push(context.message));
  const throwing: Callback<number> = {
    success: () => {
      throw new Error("callback bug");
    },
    failure: () => {},
  };
  const batch = async (n: number) => {
    for (let i = 0; i < n; i++) {
      engine.submitWork(() => i, [], throwing, { executor: inline });
    }
    await drive(engine);
  };
  await batch(50);
  assertEquals(messages, [
    "Error in the success callback of AsyncEngine.submitWork()",
  ]);
  // Another callback's error is its own.
  engine.submitWork(
    () => {
      throw new Error("work failed");
    },
    [],
    {
      success: () => {},
      failure: () => {
        throw new Error("failure bug");
      },
    },
    { executor: inline },
  );
  await drive(engine);
  assertEquals(messages.length, 2);
  assertEquals(
    messages[1],
    "Error in the failure callback of AsyncEngine.submitWork()",
  );
  await loop.advance(10);
  await batch(1);
  assertEquals(
    messages.at(-1),
    "Error in the success callback of AsyncEngine.submitWork() (and 49 more not reported since the last report)",
  );
  // Those left out since are counted when the engine closes.
  await batch(3);
  await engine.close();
  assertEquals(
    messages.at(-1),
    "AsyncEngine closed: 3 errors of the success callback of AsyncEngine.submitWork() not reported since the last report",
  );
});

// ---- Running and closing ----

Deno.test("AsyncEngine.run() returns at once with nothing pending", async () => {
  const engine = new AsyncEngine();
  assertEquals(engine.pending(), 0);
  await engine.run();
  await engine.close();
});

Deno.test("AsyncEngine.run() waits for connections closed in callbacks to be gone", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  const r = new Recorder<number>(null, () => client.close());
  engine.write(client, "bye", r.cb);
  await drive(engine);
  assert(client.waitClosed().done());
  const all = new Recorder<Uint8Array>(null, () => server.close());
  engine.readAll(server, all.cb);
  await drive(engine);
  assertEquals(text(all.value()), "bye");
  assert(server.waitClosed().done());
  await engine.close();
});

Deno.test("AsyncEngine.stop() ends run() early and leaves operations pending", async () => {
  const engine = new AsyncEngine();
  const [client, server] = await pair(engine);
  const r = new Recorder<Uint8Array>();
  engine.read(client, r.cb);
  engine.getLoop().callSoon(() => engine.stop());
  await drive(engine);
  assertEquals([engine.pending(), r.calls.length], [1, 0]);
  await send(engine, server, "later");
  assertEquals(text(r.value()), "later");
  await engine.close();
});

Deno.test("AsyncEngine.close() cancels pending operations without calling them and closes the loop it made", async () => {
  const engine = new AsyncEngine();
  const loop = engine.getLoop();
  const listener = await listen(engine);
  const r = new Recorder<Connection>();
  engine.accept(listener, r.cb);
  await engine.runOnce();
  await engine.close();
  assertEquals(r.calls, []);
  assertEquals(engine.pending(), 0);
  assert(loop.isClosed());
  assertThrows(
    () => engine.accept(listener, new Recorder<Connection>().cb),
    InvalidStateError,
  );
  await assertRejects(() => engine.run(), InvalidStateError);
  await engine.close(); // again: nothing to do
});

Deno.test("AsyncEngine.close() aborts a connection whose peer stops reading once the grace is over", async () => {
  const engine = new AsyncEngine();
  // A peer outside the engine that accepts and never reads.
  const peer = Deno.listen({ hostname: HOST, port: 0 });
  const accepted = peer.accept();
  const client = new Recorder<Connection>();
  engine.connect(HOST, (peer.addr as Deno.NetAddr).port, client.cb);
  await drive(engine);
  const conn = client.value();
  // More than the socket buffers hold: the rest stays in the transport.
  conn.writer.write(new Uint8Array(32 * 1024 * 1024));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gaveUp = new Promise<"hung">((resolve) => {
    timer = setTimeout(() => resolve("hung"), 5000);
  });
  await assertRejects(() => engine.close({ grace: -1 }), RangeError, ">= 0");
  await assertRejects(
    // @ts-expect-error: a string for a number
    () => engine.close({ grace: "1" }),
    TypeError,
    "grace must be a number",
  );
  const started = performance.now();
  const closing = engine.close({ grace: 0.2 }).then(() => "closed" as const);
  const outcome = await Promise.race([closing, gaveUp]);
  clearTimeout(timer);
  const [serverSide] = await Promise.all([accepted, peer.close()]);
  serverSide.close();
  assertEquals(outcome, "closed");
  assert(performance.now() - started >= 150, "aborted before the grace");
  assert(conn.isClosing());
});

Deno.test("AsyncEngine.close() called again while closing ends with the first, and a shorter grace brings the abort forward", async () => {
  const engine = new AsyncEngine();
  const peer = Deno.listen({ hostname: HOST, port: 0 });
  const accepted = peer.accept(); // and never read
  const client = new Recorder<Connection>();
  engine.connect(HOST, (peer.addr as Deno.NetAddr).port, client.cb);
  await drive(engine);
  const conn = client.value();
  conn.writer.write(new Uint8Array(32 * 1024 * 1024));
  const closed = conn.waitClosed();
  closed.addDoneCallback((f) => f.exception());
  let timer: ReturnType<typeof setTimeout> | undefined;
  const gaveUp = new Promise<"hung">((resolve) => {
    timer = setTimeout(() => resolve("hung"), 5000);
  });
  const first = engine.close({ grace: 30 });
  // A second call (a caller that will not wait 30 s, or asyncDispose)
  // resolves once the engine is closed, not before; its grace counts.
  const second = await Promise.race([
    engine.close({ grace: 0.1 }).then(() => closed.done()),
    gaveUp,
  ]);
  const outcome = await Promise.race([first.then(() => "closed"), gaveUp]);
  clearTimeout(timer);
  const [serverSide] = await Promise.all([accepted, peer.close()]);
  serverSide.close();
  assertEquals(second, true);
  assertEquals(outcome, "closed");
});

Deno.test("AsyncEngine.close() lets a reading peer have what was written before it", async () => {
  const engine = new AsyncEngine();
  const peer = Deno.listen({ hostname: HOST, port: 0 });
  const received = peer.accept().then(async (conn) => {
    let n = 0;
    for await (const chunk of conn.readable) n += chunk.length;
    return n;
  });
  const client = new Recorder<Connection>();
  engine.connect(HOST, (peer.addr as Deno.NetAddr).port, client.cb);
  await drive(engine);
  const size = 4 * 1024 * 1024;
  client.value().writer.write(new Uint8Array(size));
  await engine.close({ grace: 10 });
  assertEquals(await received, size);
  peer.close();
});

Deno.test("AsyncEngine.close() leaves a loop it was given open", async () => {
  const loop = new DenoEventLoop();
  const engine = new AsyncEngine(loop);
  await engine.close();
  assertFalse(loop.isClosed());
  loop.close();
});

Deno.test("AsyncEngine works under await using", async () => {
  let loop: DenoEventLoop | null = null;
  {
    await using engine = new AsyncEngine();
    loop = engine.getLoop() as DenoEventLoop;
    await listen(engine);
  }
  assert(loop?.isClosed());
});

// ---- Argument checks ----

Deno.test("AsyncEngine calls throw at once on arguments of the wrong type or range", async () => {
  const engine = new AsyncEngine();
  const [client, , listener] = await pair(engine);
  const ok = () => new Recorder<never>().cb;
  const cases: [() => void, typeof TypeError | typeof RangeError][] = [
    [() => engine.connect(HOST, 80, {} as Callback<Connection>), TypeError],
    [() => engine.connect(HOST, 70000, ok()), RangeError],
    [() => engine.connect(42 as unknown as string, 80, ok()), TypeError],
    [() => engine.connect(HOST, 80, { ...ok(), timeout: -1 }), RangeError],
    [
      () =>
        engine.connect(HOST, 80, {
          ...ok(),
          timeout: "1" as unknown as number,
        }),
      TypeError,
    ],
    [() => engine.connect(HOST, 80, ok(), { limit: 0 }), RangeError],
    [() => engine.listen(HOST, 0, ok(), { backlog: 0 }), RangeError],
    [() => engine.accept({} as Listener, ok()), TypeError],
    [() => engine.read({} as Connection, ok()), TypeError],
    [() => engine.read(client, ok(), { size: 0 }), RangeError],
    [() => engine.readUntil(client, "", ok()), RangeError],
    [() => engine.readUntil(client, 7 as unknown as string, ok()), TypeError],
    [
      () => engine.readUntilRegex(client, "x" as unknown as RegExp, ok()),
      TypeError,
    ],
    [() => engine.readChunk(client, -1, ok()), RangeError],
    [() => engine.write(client, 5 as unknown as string, ok()), TypeError],
    [
      () => engine.submitWork("f" as unknown as () => void, [], ok()),
      TypeError,
    ],
    [
      () =>
        engine.acceptThenWrite(listener, "x", [ok()] as unknown as [
          Callback<Connection>,
          Callback<number>,
        ]),
      TypeError,
    ],
    [
      () =>
        engine.acceptThenWrite(listener, "x", [ok(), {
          ...ok(),
          timeout: NaN,
        }]),
      RangeError,
    ],
  ];
  for (const [call, type] of cases) assertThrows(call, type);
  assertEquals(engine.pending(), 0);
  await engine.close();
});

Deno.test("AsyncEngine rejects a loop without I/O", () => {
  assertThrows(
    () => new AsyncEngine({} as unknown as DenoEventLoop),
    TypeError,
    "Cannot make an AsyncEngine",
  );
});
