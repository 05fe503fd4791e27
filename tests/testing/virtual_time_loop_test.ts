import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  CancelledError,
  InvalidStateError,
  TimeoutError,
} from "../../futures/errors.ts";
import { BaseEventLoop } from "../../loop/base_event_loop.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import type { Executor, Server } from "../../loop/event_loop.ts";
import { Handle, type TimerHandle } from "../../loop/handle.ts";
import {
  BufferedProtocol,
  DatagramProtocol,
  Protocol,
} from "../../protocols/protocol.ts";
import { openConnection } from "../../streams/open_connection.ts";
import { startServer } from "../../streams/start_server.ts";
import { StreamReader } from "../../streams/stream_reader.ts";
import { StreamReaderProtocol } from "../../streams/stream_reader_protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import type { Coroutine } from "../../tasks/task.ts";
import type { Transport } from "../../transports/transport.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

Deno.test("VirtualTimeLoop is a BaseEventLoop, not a DenoEventLoop, whose clock starts at 0", () => {
  const loop = new VirtualTimeLoop();
  assertInstanceOf(loop, BaseEventLoop);
  assertFalse(loop instanceof DenoEventLoop);
  assertEquals(loop.time(), 0);
  assertEquals(loop.time(), 0);
  loop.close();
});

// ---- advance() ----

Deno.test("VirtualTimeLoop.advance() runs the timers due on the way, in order", async () => {
  const loop = new VirtualTimeLoop();
  const fired: [string, number][] = [];
  const at = (name: string) => () => fired.push([name, loop.time()]);
  loop.callLater(15, at("c"));
  loop.callLater(5, at("a"));
  loop.callLater(10, at("b"));
  await loop.advance(10);
  assertEquals(fired, [["a", 5], ["b", 10]]);
  assertEquals(loop.time(), 10);
  await loop.advance(10);
  assertEquals(fired, [["a", 5], ["b", 10], ["c", 15]]);
  assertEquals(loop.time(), 20);
  loop.close();
});

Deno.test("VirtualTimeLoop.advance() also runs what those timers schedule up to the new time", async () => {
  const loop = new VirtualTimeLoop();
  const fired: number[] = [];
  loop.callLater(2, () => {
    fired.push(loop.time());
    loop.callLater(3, () => fired.push(loop.time()));
    loop.callLater(20, () => fired.push(loop.time()));
    loop.callLater(8, () => fired.push(loop.time())); // due at exactly 10
    loop.callSoon(() => fired.push(loop.time()));
  });
  await loop.advance(10);
  assertEquals(fired, [2, 2, 5, 10]);
  assertEquals(loop.time(), 10);
  loop.close();
});

Deno.test("VirtualTimeLoop.advance() runs timers due exactly at the new time", async () => {
  const loop = new VirtualTimeLoop();
  const fired: string[] = [];
  loop.callAt(3, () => fired.push("at 3"));
  loop.callAt(3.000001, () => fired.push("just after"));
  await loop.advance(3);
  assertEquals(fired, ["at 3"]);
  loop.close();
});

Deno.test("VirtualTimeLoop.advance(0) runs the ready callbacks without moving the clock", async () => {
  const loop = new VirtualTimeLoop();
  const order: string[] = [];
  loop.callSoon(() => order.push("ready"));
  loop.callLater(1, () => order.push("timer"));
  await loop.advance(0);
  assertEquals(order, ["ready"]);
  assertEquals(loop.time(), 0);
  loop.close();
});

Deno.test("VirtualTimeLoop.advance() calls add up", async () => {
  const loop = new VirtualTimeLoop();
  for (let i = 0; i < 8; i++) await loop.advance(0.25);
  assertEquals(loop.time(), 2);
  loop.close();
});

Deno.test("VirtualTimeLoop.advance() calls of 0.1 add up without drift: ten reach a timer at 1", async () => {
  const loop = new VirtualTimeLoop();
  const fired: number[] = [];
  loop.callLater(1, () => fired.push(loop.time()));
  for (let i = 0; i < 10; i++) await loop.advance(0.1);
  assertEquals(loop.time(), 1);
  assertEquals(fired, [1]);
  for (let i = 0; i < 100_000; i++) {
    const before = loop.time();
    await loop.advance(0.1);
    assert(loop.time() > before);
  }
  assertEquals(loop.time(), 10_001);
  loop.close();
  // A step below the nanosecond still moves the clock, and reaches its timer.
  const fine = new VirtualTimeLoop();
  fine.callLater(1e-12, () => fired.push(fine.time()));
  await fine.advance(1e-12);
  assertEquals(fine.time(), 1e-12);
  assertEquals(fired, [1, 1e-12]);
  fine.close();
});

Deno.test("VirtualTimeLoop.advance() rejects a negative amount with RangeError, a non-number or NaN with TypeError", async () => {
  const loop = new VirtualTimeLoop();
  await assertRejects(
    () => loop.advance(-1),
    RangeError,
    "Cannot advance the clock: seconds must be >= 0, received -1",
  );
  // As callLater(), sleep() and runUntilComplete() refuse them.
  await assertRejects(
    () => loop.advance(NaN),
    TypeError,
    "Cannot advance the clock: seconds must be a number of seconds, received NaN",
  );
  await assertRejects(() => loop.advance("1" as never), TypeError);
  assertEquals(loop.time(), 0);
  loop.close();
});

Deno.test("VirtualTimeLoop.advance() rejects Infinity: the clock would never come back", async () => {
  const loop = new VirtualTimeLoop();
  loop.callLater(5, () => {});
  await assertRejects(
    () => loop.advance(Infinity),
    RangeError,
    "seconds must be finite",
  );
  assertEquals(loop.time(), 0);
  await loop.advance(5);
  assertEquals(loop.time(), 5);
  loop.close();
});

Deno.test("VirtualTimeLoop.advance() rejects with InvalidStateError while running", async () => {
  const loop = new VirtualTimeLoop();
  const attempts: Promise<void>[] = [];
  loop.callSoon(() => {
    attempts.push(loop.advance(1));
    loop.stop();
  });
  await loop.runForever();
  await assertRejects(
    () => attempts[0],
    InvalidStateError,
    "Cannot advance the clock: the loop is running",
  );
  assertEquals(loop.time(), 0);
  loop.close();
});

Deno.test("VirtualTimeLoop.advance() called again before the last one settled says to await it", async () => {
  const loop = new VirtualTimeLoop();
  const first = loop.advance(1);
  await assertRejects(
    () => loop.advance(1),
    InvalidStateError,
    "await the advance() under way before the next",
  );
  await first;
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("VirtualTimeLoop.advance() rejects with InvalidStateError once closed", async () => {
  const loop = new VirtualTimeLoop();
  loop.close();
  await assertRejects(() => loop.advance(1), InvalidStateError);
});

// ---- Jumping when idle ----

Deno.test("VirtualTimeLoop jumps to the next timer when nothing is ready", async () => {
  const loop = new VirtualTimeLoop();
  assertEquals(
    await loop.runUntilComplete(sleep(3600, "an hour", { loop })),
    "an hour",
  );
  assertEquals(loop.time(), 3600);
  loop.close();
});

Deno.test("VirtualTimeLoop runs a 30-second timeout built from sleep and cancel at once", async () => {
  const loop = new VirtualTimeLoop();
  function* withTimeout(): Coroutine<string> {
    const work = sleep(60, "finished");
    const timer = loop.callLater(30, () => work.cancel("timed out"));
    try {
      return yield* work;
    } catch (e) {
      if (e instanceof CancelledError) return `${e.message} at ${loop.time()}`;
      throw e;
    } finally {
      timer.cancel();
    }
  }
  assertEquals(await loop.runUntilComplete(withTimeout()), "timed out at 30");
  assertEquals(loop.time(), 30);
  loop.close();
});

Deno.test("VirtualTimeLoop fires timers at exactly their due time", async () => {
  const loop = new VirtualTimeLoop();
  const seen: [number, number][] = [];
  for (const d of [0.1, 0.2, 0.3, 7, 1e6]) {
    const t: TimerHandle = loop.callLater(
      d,
      () => seen.push([t.when, loop.time()]),
    );
  }
  await loop.runUntilComplete(sleep(1e6 + 1, undefined, { loop }));
  assertEquals(seen.length, 5);
  for (const [when, at] of seen) assertEquals(at, when);
  loop.close();
});

Deno.test("VirtualTimeLoop does not jump while callbacks are ready", async () => {
  const loop = new VirtualTimeLoop();
  const times: number[] = [];
  let n = 0;
  function tick() {
    times.push(loop.time());
    if (++n < 5) loop.callSoon(tick);
  }
  loop.callSoon(tick);
  loop.callLater(1, () => loop.stop());
  await loop.runForever();
  assertEquals(times, [0, 0, 0, 0, 0]);
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("VirtualTimeLoop lets async functions schedule before it jumps", async () => {
  const loop = new VirtualTimeLoop();
  const task = loop.createTask(async () => {
    await sleep(10);
    // Resumed in a microtask: this sleep must count from 10, not from a
    // later jump.
    await Promise.resolve();
    await sleep(1);
    return loop.time();
  });
  loop.callLater(100, () => {});
  assertEquals(await loop.runUntilComplete(task), 11);
  loop.close();
});

Deno.test("VirtualTimeLoop with no timers waits for real events without moving the clock", async () => {
  const loop = new VirtualTimeLoop();
  const fut = loop.createFuture<string>();
  const id = setTimeout(
    () => loop.callSoonThreadsafe(() => fut.setResult("from the host")),
    0,
  );
  try {
    assertEquals(await loop.runUntilComplete(fut), "from the host");
  } finally {
    clearTimeout(id);
  }
  assertEquals(loop.time(), 0);
  loop.close();
});

Deno.test("VirtualTimeLoop never jumps to a timer at Infinity: sleep(Infinity) sleeps for ever", async () => {
  const loop = new VirtualTimeLoop();
  let fired = false;
  loop.callLater(Infinity, () => fired = true);
  const forever = loop.createTask(async () => {
    await sleep(Infinity);
    return "woke up";
  });
  const fut = loop.createFuture<string>();
  forever.addDoneCallback(() => fut.setResult("woke up"));
  const id = setTimeout(
    () => loop.callSoonThreadsafe(() => fut.setResult("from the host")),
    20,
  );
  try {
    assertEquals(await loop.runUntilComplete(fut), "from the host");
  } finally {
    clearTimeout(id);
  }
  assertEquals(loop.time(), 0);
  assertFalse(fired);
  await loop.advance(10);
  assertEquals(loop.time(), 10);
  assertFalse(forever.done());
  forever.cancel();
  await assertRejects(() => loop.runUntilComplete(forever), CancelledError);
  loop.close();
});

Deno.test("VirtualTimeLoop.runOnce() jumps to the next timer and runs it", async () => {
  const loop = new VirtualTimeLoop();
  const fired: number[] = [];
  loop.callLater(4, () => fired.push(loop.time()));
  loop.callLater(9, () => fired.push(loop.time()));
  await loop.runOnce();
  assertEquals(fired, [4]);
  await loop.runOnce();
  assertEquals(fired, [4, 9]);
  assertFalse(loop.isRunning());
  loop.close();
});

Deno.test("VirtualTimeLoop skips cancelled timers when it jumps", async () => {
  const loop = new VirtualTimeLoop();
  const fired: number[] = [];
  const skipped = loop.callLater(5, () => fired.push(5));
  loop.callLater(8, () => fired.push(loop.time()));
  skipped.cancel();
  await loop.runOnce();
  assertEquals(fired, [8]);
  assertEquals(loop.time(), 8);
  loop.close();
});

Deno.test("VirtualTimeLoop runs callRepeatedly on the virtual clock", async () => {
  const loop = new VirtualTimeLoop();
  const times: number[] = [];
  const h = loop.callRepeatedly(0.5, () => times.push(loop.time()));
  await loop.advance(2);
  h.cancel();
  assertEquals(times, [0.5, 1, 1.5, 2]);
  loop.close();
});

Deno.test("VirtualTimeLoop prints its class and state", () => {
  const loop = new VirtualTimeLoop();
  loop.callLater(1, () => {});
  assertEquals(Deno.inspect(loop), "VirtualTimeLoop stopped ready=0 timers=1");
  loop.close();
  assert(loop.isClosed());
});

// ---- The in-memory network ----

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** Connects a bare `Protocol` to `host:port` on `loop`, to the end. */
function connect(
  loop: VirtualTimeLoop,
  host: string,
  port: number,
): Promise<[Transport, Protocol]> {
  return loop.runUntilComplete(
    loop.createConnection(() => new Protocol(), host, port),
  );
}

/** Listens with a bare `Protocol` on `127.0.0.1:port` of `loop`. */
function listen(loop: VirtualTimeLoop, port: number): Promise<Server> {
  return loop.runUntilComplete(
    loop.createServer(() => new Protocol(), "127.0.0.1", port),
  );
}

Deno.test("VirtualTimeLoop carries a server's and a client's bytes in memory, on its clock", async () => {
  const loop = new VirtualTimeLoop();
  const seen = await loop.runUntilComplete(loop.createTask(async () => {
    const server = await startServer(
      async (reader, writer) => {
        const line = await reader.readline();
        await sleep(5);
        writer.write(encode(`echo ${decode(line)}`));
        await writer.drain();
        writer.close();
      },
      "127.0.0.1",
      0,
    );
    const { hostname, port } = server.addresses()[0] as Deno.NetAddr;
    const [reader, writer] = await openConnection("localhost", port);
    writer.write(encode("hi\n"));
    const sent = loop.time();
    const reply = decode(await reader.read(100));
    const at = loop.time();
    const eof = await reader.read(100);
    writer.close();
    server.close();
    await server.waitClosed();
    return { hostname, reply, sent, at, eof: eof.length };
  }));
  // The reply came exactly when the server's sleep ended: the bytes took
  // no time, and nothing waited for the machine's clock.
  assertEquals(seen, {
    hostname: "127.0.0.1",
    reply: "echo hi\n",
    sent: 0,
    at: 5,
    eof: 0,
  });
  loop.close();
});

Deno.test("VirtualTimeLoop streams ask a pull producer for more after each write the peer's window took", async () => {
  const loop = new VirtualTimeLoop();
  let got = "";
  const server = await loop.runUntilComplete(
    loop.createServer(
      () => {
        const p = new Protocol();
        p.dataReceived = (data: Uint8Array) => {
          got += decode(data);
        };
        return p;
      },
      "127.0.0.1",
      8000,
    ),
  );
  const [transport] = await connect(loop, "127.0.0.1", 8000);
  const parts = ["abc", "def", "ghi"];
  transport.registerProducer({
    resumeProducing: () => {
      const next = parts.shift();
      if (next === undefined) transport.unregisterProducer();
      else transport.write(encode(next));
    },
  }, false);
  await loop.advance(1);
  assertEquals(got, "abcdefghi");
  transport.close();
  server.close();
  await loop.runUntilComplete(server.waitClosed());
  loop.close();
});

Deno.test("VirtualTimeLoop times a silent peer out at exactly the virtual deadline", async () => {
  const loop = new VirtualTimeLoop();
  const result = await loop.runUntilComplete(loop.createTask(async () => {
    const server = await startServer(() => {}, "127.0.0.1", 0);
    const { port } = server.addresses()[0] as Deno.NetAddr;
    const [reader, writer] = await openConnection("127.0.0.1", port);
    try {
      await waitFor(reader.read(1), 30);
      return "read";
    } catch (e) {
      return e instanceof TimeoutError ? `timed out at ${loop.time()}` : e;
    } finally {
      writer.close();
      server.close();
      server.abortClients();
      await server.waitClosed();
    }
  }));
  assertEquals(result, "timed out at 30");
  loop.close();
});

Deno.test("VirtualTimeLoop keeps its simulated network to itself", () => {
  const loop = new VirtualTimeLoop();
  for (const name of ["world", "host"]) {
    assertEquals(name in loop, false, name);
  }
  loop.close();
});

Deno.test("VirtualTimeLoop resolves only loopback names, and refuses a port nobody listens on", async () => {
  const loop = new VirtualTimeLoop();
  for (const name of ["localhost", "127.0.0.1"]) {
    assertEquals(await loop.runUntilComplete(loop.getaddrinfo(name, 80)), [
      { family: 4, hostname: "127.0.0.1", port: 80 },
    ]);
  }
  assertEquals(await loop.runUntilComplete(loop.getaddrinfo("::1", 80)), [
    { family: 6, hostname: "::1", port: 80 },
  ]);
  await assertRejects(
    () => loop.runUntilComplete(loop.getaddrinfo("::1", 80, { family: 4 })),
    Deno.errors.NotFound,
    'Cannot resolve host: "::1" is an IPv6 address and family 4 was asked for',
  );
  await assertRejects(
    () =>
      loop.runUntilComplete(loop.getaddrinfo("localhost", 80, { family: 6 })),
    Deno.errors.NotFound,
    "Cannot resolve localhost: it has no IPv6 address",
  );
  await assertRejects(
    () => loop.runUntilComplete(loop.getaddrinfo("example.com", 80)),
    Deno.errors.NotFound,
    "Cannot resolve example.com",
  );
  await assertRejects(
    () => connect(loop, "10.0.0.1", 80),
    Deno.errors.NotFound,
  );
  await assertRejects(
    () => connect(loop, "127.0.0.1", 9),
    Deno.errors.ConnectionRefused,
  );
  loop.close();
});

Deno.test("VirtualTimeLoop reports each address a server listens on, and ::1 as ::1, as a DenoEventLoop does", async () => {
  const loop = new VirtualTimeLoop();
  await loop.runUntilComplete(loop.createTask(async () => {
    const both = await loop.createServer(
      () => new Protocol(),
      ["127.0.0.1", "::1"],
      0,
    );
    const { port } = both.addresses()[0] as Deno.NetAddr;
    assertEquals(both.addresses(), [
      { transport: "tcp", hostname: "127.0.0.1", port },
      { transport: "tcp", hostname: "::1", port },
    ]);
    const [t] = await loop.createConnection(() => new Protocol(), "::1", port);
    assertEquals(t.getExtraInfo("peername"), {
      transport: "tcp",
      hostname: "::1",
      port,
    });
    assertEquals(
      (t.getExtraInfo("sockname") as Deno.NetAddr).hostname,
      "::1",
    );
    t.close();
    both.close();
    const six = await loop.createServer(() => new Protocol(), "::1", 0);
    assertEquals(
      six.addresses().map((a) => (a as Deno.NetAddr).hostname),
      ["::1"],
    );
    six.close();
    await both.waitClosed();
    await six.waitClosed();
  }));
  loop.close();
});

Deno.test("VirtualTimeLoop servers take connections only on the addresses they listen on, as sockets do", async () => {
  const loop = new VirtualTimeLoop();
  await loop.runUntilComplete(loop.createTask(async () => {
    const reach = async (bind: string | null | undefined, to: string) => {
      const server = await loop.createServer(
        () => new Protocol(),
        bind as string | undefined,
        0,
      );
      const { port } = server.addresses()[0] as Deno.NetAddr;
      try {
        const [t] = await loop.createConnection(() => new Protocol(), to, port);
        t.close();
        return "connected";
      } catch (e) {
        return (e as Error).name;
      } finally {
        server.close();
        await server.waitClosed();
      }
    };
    assertEquals(await reach("127.0.0.1", "::1"), "ConnectionRefused");
    assertEquals(await reach("::1", "127.0.0.1"), "ConnectionRefused");
    assertEquals(await reach("::1", "localhost"), "ConnectionRefused");
    assertEquals(await reach("0.0.0.0", "::1"), "ConnectionRefused");
    assertEquals(await reach("0.0.0.0", "127.0.0.1"), "connected");
    assertEquals(await reach("::", "::1"), "connected");
    assertEquals(await reach("::", "127.0.0.1"), "connected");
    assertEquals(await reach(undefined, "::1"), "connected");
    assertEquals(await reach(undefined, "localhost"), "connected");
    // asyncio's None and '' mean every interface too.
    assertEquals(await reach(null, "::1"), "connected");
    assertEquals(await reach("", "127.0.0.1"), "connected");
    // Different addresses may share a port; overlapping ones may not.
    const v4 = await loop.createServer(() => new Protocol(), "127.0.0.1", 0);
    const { port } = v4.addresses()[0] as Deno.NetAddr;
    const v6 = await loop.createServer(() => new Protocol(), "::1", port);
    await assertRejects(
      () => loop.createServer(() => new Protocol(), "0.0.0.0", port),
      Deno.errors.AddrInUse,
    );
    v4.close();
    v6.close();
    await v4.waitClosed();
    await v6.waitClosed();
  }));
  loop.close();
});

Deno.test("VirtualTimeLoop datagram endpoints keep their loopback address, and take only datagrams sent to it", async () => {
  const loop = new VirtualTimeLoop();
  const seen = await loop.runUntilComplete(loop.createTask(async () => {
    const out: string[] = [];
    for (
      const [bind, to] of [
        ["::1", "::1"],
        ["::", "127.0.0.1"],
        ["::1", "127.0.0.1"],
        ["127.0.0.1", "::1"],
        ["0.0.0.0", "::1"],
      ]
    ) {
      const [receiver] = await loop.createDatagramEndpoint(() => {
        const p = new DatagramProtocol();
        p.datagramReceived = (_data, addr) =>
          out.push(`${bind}<${to}: from ${(addr as Deno.NetAddr).hostname}`);
        return p;
      }, { localAddr: { hostname: bind, port: 0 } });
      const { hostname, port } = receiver.getExtraInfo(
        "sockname",
      ) as Deno.NetAddr;
      out.push(`${bind}: ${hostname}`);
      const [sender] = await loop.createDatagramEndpoint(
        () => new DatagramProtocol(),
        { remoteAddr: { hostname: to, port } },
      );
      sender.sendto(encode("udp"));
      await sleep(1);
      sender.close();
      receiver.close();
    }
    return out;
  }));
  assertEquals(seen, [
    "::1: ::1",
    "::1<::1: from ::1",
    "::: 0.0.0.0",
    "::<127.0.0.1: from 127.0.0.1",
    "::1: ::1",
    "127.0.0.1: 127.0.0.1",
    "0.0.0.0: 0.0.0.0",
  ]);
  loop.close();
});

Deno.test("VirtualTimeLoop datagram endpoints share a port across addresses, as listeners do, each taking what is sent to its own", async () => {
  const loop = new VirtualTimeLoop();
  const got = await loop.runUntilComplete(loop.createTask(async () => {
    const out: string[] = [];
    const bind = async (hostname: string, port: number) => {
      const [t] = await loop.createDatagramEndpoint(() => {
        const p = new DatagramProtocol();
        p.datagramReceived = (data) => out.push(`${hostname}: ${decode(data)}`);
        return p;
      }, { localAddr: { hostname, port } });
      return t;
    };
    const v4 = await bind("127.0.0.1", 0);
    const { port } = v4.getExtraInfo("sockname") as Deno.NetAddr;
    const v6 = await bind("::1", port);
    for (const overlapping of ["0.0.0.0", "::", "localhost"]) {
      await assertRejects(() => bind(overlapping, port), Deno.errors.AddrInUse);
    }
    const [sender] = await loop.createDatagramEndpoint(
      () => new DatagramProtocol(),
      { localAddr: { hostname: "::", port: 0 } },
    );
    sender.sendto(encode("to v4"), {
      transport: "udp",
      hostname: "127.0.0.1",
      port,
    });
    sender.sendto(encode("to v6"), { transport: "udp", hostname: "::1", port });
    await sleep(1);
    // Closing one leaves the other bound, and its address free again.
    v4.close();
    sender.sendto(encode("to v4, closed"), {
      transport: "udp",
      hostname: "127.0.0.1",
      port,
    });
    sender.sendto(encode("to v6 again"), {
      transport: "udp",
      hostname: "::1",
      port,
    });
    await sleep(1);
    const any4 = await bind("0.0.0.0", port);
    sender.sendto(encode("to any v4"), {
      transport: "udp",
      hostname: "127.0.0.1",
      port,
    });
    await sleep(1);
    any4.close();
    v6.close();
    sender.close();
    // A wildcard holds the port for every address it covers.
    const all = await bind("::", 0);
    const allPort = (all.getExtraInfo("sockname") as Deno.NetAddr).port;
    await assertRejects(() => bind("::1", allPort), Deno.errors.AddrInUse);
    all.close();
    return out;
  }));
  assertEquals(got, [
    "127.0.0.1: to v4",
    "::1: to v6",
    "::1: to v6 again",
    "0.0.0.0: to any v4",
  ]);
  loop.close();
});

Deno.test("VirtualTimeLoop: a connect to a listener whose backlog stays full times out after Linux's SYN retries", async () => {
  const loop = new VirtualTimeLoop();
  await loop.runUntilComplete(loop.createTask(async () => {
    const server = await loop.createServer(
      () => new Protocol(),
      "127.0.0.1",
      0,
      { startServing: false, backlog: 0 },
    );
    const { port } = server.addresses()[0] as Deno.NetAddr;
    await assertRejects(
      () => loop.createConnection(() => new Protocol(), "127.0.0.1", port),
      Deno.errors.TimedOut,
    );
    assertEquals(loop.time(), 127);
    server.close();
    await server.waitClosed();
  }));
  loop.close();
});

Deno.test("VirtualTimeLoop names loopback addresses localhost, as the C library does", async () => {
  const loop = new VirtualTimeLoop();
  for (const hostname of ["127.0.0.1", "::1"]) {
    assertEquals(
      await loop.runUntilComplete(loop.getnameinfo({ hostname, port: 80 })),
      ["localhost", "80"],
    );
    // NI_NUMERICHOST keeps the address as given.
    assertEquals(
      await loop.runUntilComplete(loop.getnameinfo({ hostname, port: 80 }, 1)),
      [hostname, "80"],
    );
    // With NI_NAMEREQD as well it fails, as the C library's does.
    await assertRejects(
      () =>
        loop.runUntilComplete(loop.getnameinfo({ hostname, port: 80 }, 1 | 8)),
      Deno.errors.NotFound,
      "NI_NAMEREQD wants one and NI_NUMERICHOST forbids looking it up",
    );
  }
  loop.close();
});

Deno.test("Each VirtualTimeLoop has a network of its own", async () => {
  const a = new VirtualTimeLoop();
  const b = new VirtualTimeLoop();
  const server = await listen(a, 8080);
  // The same port is free on the other loop, and nothing listens there.
  (await listen(b, 8080)).close();
  await assertRejects(
    () => connect(b, "127.0.0.1", 8080),
    Deno.errors.ConnectionRefused,
  );
  server.close();
  a.close();
  b.close();
});

Deno.test("VirtualTimeLoop has Unix sockets and datagrams in memory", async () => {
  const loop = new VirtualTimeLoop();
  const got = await loop.runUntilComplete(loop.createTask(async () => {
    // An echo server on a path, and a client that records what comes back.
    const server = await loop.createUnixServer(
      () =>
        new StreamReaderProtocol(
          new StreamReader({ loop }),
          async (reader, writer) => {
            writer.write(await reader.readline());
            writer.close();
          },
          { loop },
        ),
      "/virtual/socket",
    );
    const echoed = loop.createFuture<string>();
    const [client] = await loop.createUnixConnection(() => {
      const p = new Protocol();
      p.dataReceived = (data) => echoed.setResult(decode(data));
      return p;
      // A file: URL names the same path, as asyncio takes path-like objects.
    }, new URL("file:///virtual/socket"));
    client.write(encode("unix\n"));
    const line = await echoed;
    client.close();
    server.close();
    await server.waitClosed();

    const received = loop.createFuture<string>();
    const [receiver] = await loop.createDatagramEndpoint(() => {
      const p = new DatagramProtocol();
      p.datagramReceived = (data) => received.setResult(decode(data));
      return p;
    }, { localAddr: { hostname: "127.0.0.1", port: 0 } });
    const { port } = receiver.getExtraInfo("sockname") as Deno.NetAddr;
    const [sender] = await loop.createDatagramEndpoint(
      () => new DatagramProtocol(),
      { remoteAddr: { hostname: "127.0.0.1", port } },
    );
    sender.sendto(encode("udp"));
    const datagram = await received;
    sender.close();
    receiver.close();
    return [line, datagram];
  }));
  assertEquals(got, ["unix\n", "udp"]);
  loop.close();
});

Deno.test("VirtualTimeLoop refuses what cannot exist in memory, naming the loop to use instead", async () => {
  const loop = new VirtualTimeLoop();
  const calls: [string, () => unknown][] = [
    [
      "subprocessExec",
      () => loop.subprocessExec(() => new Protocol() as never, "ls"),
    ],
    [
      "subprocessShell",
      () => loop.subprocessShell(() => new Protocol() as never, "ls"),
    ],
    [
      "connectReadPipe",
      () => loop.connectReadPipe(() => new Protocol(), new ReadableStream()),
    ],
    [
      "connectWritePipe",
      () => loop.connectWritePipe(() => new Protocol(), new WritableStream()),
    ],
    ["addSignalHandler", () => loop.addSignalHandler("SIGINT", () => {})],
    ["sockRecv", () => loop.sockRecv({} as Deno.Conn, 1)],
    [
      "sockRecvInto",
      () => loop.sockRecvInto({} as Deno.Conn, new Uint8Array(1)),
    ],
    ["sockSendall", () => loop.sockSendall({} as Deno.Conn, new Uint8Array(1))],
    [
      "sockConnect",
      () => loop.sockConnect({ hostname: "127.0.0.1", port: 80 }),
    ],
    ["sockAccept", () => loop.sockAccept({} as Deno.Listener)],
    ["runInExecutor", () => loop.runInExecutor(null, () => 1)],
    [
      "createConnection",
      () =>
        loop.createConnection(() => new Protocol(), "127.0.0.1", 80, {
          ssl: true,
        }),
    ],
    [
      "createServer",
      () =>
        loop.createServer(() => new Protocol(), "127.0.0.1", 0, {
          ssl: { cert: "", key: "" },
        }),
    ],
  ];
  for (const [what, call] of calls) {
    const e = assertThrows(call, InvalidStateError);
    assertStringIncludes(
      e.message,
      `Cannot call ${what}() on a VirtualTimeLoop`,
    );
    assertStringIncludes(
      e.message,
      "use a DenoEventLoop (in a test, loopTest(name, fn, { virtual: false }))",
    );
  }
  assertFalse(loop.removeSignalHandler("SIGINT"));
  const server = await listen(loop, 0);
  const { port } = server.addresses()[0] as Deno.NetAddr;
  const [transport] = await connect(loop, "127.0.0.1", port);
  assertThrows(
    () => loop.startTls(transport, new Protocol()),
    InvalidStateError,
    "its in-memory network carries no TLS",
  );
  transport.close();
  server.close();
  await loop.runUntilComplete(server.waitClosed());
  loop.close();
});

Deno.test("VirtualTimeLoop.runInExecutor() refuses a generator function (a coroutine) in DenoEventLoop's words", () => {
  const loops = [new DenoEventLoop(), new VirtualTimeLoop()];
  const inline: Executor = {
    submit: (fn, ...args) => Promise.resolve().then(() => fn(...args)),
    shutdown() {},
  };
  const coroutines: (() => unknown)[] = [
    function* work() {},
    async function* () {},
  ];
  for (const fn of coroutines) {
    const [deno, virtual] = loops.map((loop) =>
      assertThrows(() => loop.runInExecutor(inline, fn), TypeError).message
    );
    assertEquals(virtual, deno);
    assertStringIncludes(virtual, "loop.createTask() instead");
  }
  for (const loop of loops) loop.close();
});

Deno.test("VirtualTimeLoop.runInExecutor() refuses an executor without submit() in DenoEventLoop's words", () => {
  const loops = [new DenoEventLoop(), new VirtualTimeLoop()];
  const [deno, virtual] = loops.map((loop) =>
    assertThrows(
      () => loop.runInExecutor({} as Executor, () => 1),
      TypeError,
    ).message
  );
  assertEquals(virtual, deno);
  assertStringIncludes(virtual, "executor must have a submit() method");
  for (const loop of loops) loop.close();
});

Deno.test("VirtualTimeLoop.runInExecutor() takes a Handle for the callback, as DenoEventLoop's does (PEP 3156's note on Handles)", async () => {
  const loop = new VirtualTimeLoop();
  const inline: Executor = {
    submit: (fn, ...args) => Promise.resolve().then(() => fn(...args)),
    shutdown() {},
  };
  const job = loop.callSoon((a: number, b: number) => a * b, 6, 7);
  job.cancel();
  const fresh = new Handle((a: number, b: number) => a * b, [6, 7], loop);
  assertEquals(
    await loop.runUntilComplete(loop.runInExecutor(inline, fresh)),
    42,
  );
  assertEquals(
    await loop.runUntilComplete(loop.runInExecutor(inline, job)),
    undefined,
  );
  assertThrows(
    () => loop.runInExecutor(inline, fresh, 1 as never),
    TypeError,
    "Cannot call runInExecutor(): a Handle takes no extra arguments",
  );
  const timer = loop.callLater(10, () => {});
  assertThrows(
    () => loop.runInExecutor(inline, timer),
    TypeError,
    "a TimerHandle cannot stand for a callback",
  );
  timer.cancel();
  // addSignalHandler() takes a Handle too, as the EventLoop interface
  // says, and refuses it as it refuses any callback: no signals here.
  assertThrows(
    () => loop.addSignalHandler("SIGINT", fresh),
    InvalidStateError,
    "signals",
  );
  loop.close();
});

Deno.test("VirtualTimeLoop: serveForever() ends once the closed server's connections are gone, as on a DenoEventLoop", async () => {
  const loop = new VirtualTimeLoop();
  await loop.runUntilComplete(loop.createTask(async () => {
    const server = await loop.createServer(
      () => new Protocol(),
      "127.0.0.1",
      0,
      {
        startServing: false,
      },
    );
    const forever = server.serveForever();
    assert(server.isServing());
    assertThrows(() => server.serveForever(), InvalidStateError, "already");
    const { port } = server.addresses()[0] as Deno.NetAddr;
    const [t] = await loop.createConnection(
      () => new Protocol(),
      "127.0.0.1",
      port,
    );
    await sleep(0.01);
    forever.cancel();
    await sleep(1);
    assertFalse(server.isServing());
    assertFalse(forever.done());
    assertThrows(() => server.serveForever(), InvalidStateError, "closed");
    t.close();
    await assertRejects(() => Promise.resolve(forever), CancelledError);
  }));
  loop.close();
});

Deno.test('VirtualTimeLoop: createServer() with host "" listens on every interface, as on a DenoEventLoop', async () => {
  const loop = new VirtualTimeLoop();
  await loop.runUntilComplete(loop.createTask(async () => {
    const server = await loop.createServer(() => new Protocol(), "", 0);
    const { port } = server.addresses()[0] as Deno.NetAddr;
    const [t] = await loop.createConnection(() => new Protocol(), "::1", port);
    t.close();
    server.close();
    await server.waitClosed();
  }));
  loop.close();
});

Deno.test("VirtualTimeLoop: createServer() refuses the hosts a DenoEventLoop refuses, in the same words", () => {
  const make = () => new Protocol();
  const cases: unknown[] = [[], ["127.0.0.1", 1], 1, false];
  const virtual = new VirtualTimeLoop();
  const deno = new DenoEventLoop();
  try {
    for (const host of cases) {
      const refusal = (loop: VirtualTimeLoop | DenoEventLoop) => {
        try {
          loop.createServer(make, host as string, 0);
        } catch (e) {
          return `${(e as Error).name}: ${(e as Error).message}`;
        }
        return "accepted";
      };
      const expected = refusal(deno);
      assert(expected !== "accepted", JSON.stringify(host));
      assertEquals(refusal(virtual), expected, JSON.stringify(host));
    }
  } finally {
    virtual.close();
    deno.close();
  }
});

// ---- A protocol whose connectionMade() throws ----

/** Notes what a protocol is told; `connectionMade()` throws `fails`, if set. */
class Made extends Protocol {
  readonly events: string[] = [];
  lostWith: Error | undefined | null = null;
  constructor(readonly fails?: Error) {
    super();
  }
  override connectionMade(): void {
    this.events.push("made");
    if (this.fails !== undefined) throw this.fails;
  }
  override dataReceived(): void {
    this.events.push("data");
  }
  override eofReceived(): void {
    this.events.push("eof");
  }
  override connectionLost(exc?: Error): void {
    this.events.push("lost");
    this.lostWith = exc;
  }
}

Deno.test("VirtualTimeLoop: createConnection() fails with the error connectionMade() throws, reported and lost once, as on a DenoEventLoop", async () => {
  const loop = new VirtualTimeLoop();
  const reports: string[] = [];
  loop.setExceptionHandler((_loop, context) => {
    reports.push(
      `${context.message} ${context.transport !== undefined} ${
        context.protocol !== undefined
      }`,
    );
  });
  const accepted: Made[] = [];
  const server = await loop.runUntilComplete(
    loop.createServer(
      () => {
        const p = new Made();
        accepted.push(p);
        return p;
      },
      "127.0.0.1",
      8000,
    ),
  );
  const boom = new Error("no");
  const client = new Made(boom);
  await assertRejects(
    () =>
      loop.runUntilComplete(
        loop.createConnection(() => client, "127.0.0.1", 8000),
      ),
    Error,
    "no",
  );
  await loop.advance(1);
  assertEquals(client.events, ["made", "lost"]);
  assertEquals(client.lostWith, boom);
  assertEquals(reports, [
    "Fatal error: protocol.connectionMade() call failed true true",
  ]);
  // The server's end sees the connection end.
  assertEquals(accepted[0].events, ["made", "eof", "lost"]);
  server.close();
  await loop.runUntilComplete(server.waitClosed());
  loop.close();
});

Deno.test("VirtualTimeLoop: a server protocol's connectionMade() that throws is reported and closes its connection, as on a DenoEventLoop", async () => {
  const loop = new VirtualTimeLoop();
  const reports: string[] = [];
  loop.setExceptionHandler((_loop, context) => {
    reports.push(context.message);
  });
  const boom = new Error("no");
  const accepted: Made[] = [];
  const server = await loop.runUntilComplete(
    loop.createServer(
      () => {
        const p = new Made(boom);
        accepted.push(p);
        return p;
      },
      "127.0.0.1",
      8000,
    ),
  );
  const client = new Made();
  const [t] = await loop.runUntilComplete(
    loop.createConnection(() => client, "127.0.0.1", 8000),
  );
  await loop.advance(1);
  assertEquals(accepted[0].events, ["made", "lost"]);
  assertEquals(accepted[0].lostWith, boom);
  assertEquals(reports, ["Fatal error: protocol.connectionMade() call failed"]);
  assertEquals(client.events, ["made", "eof", "lost"]);
  assert(t.isClosing());
  server.close();
  await loop.runUntilComplete(server.waitClosed());
  loop.close();
});

Deno.test("VirtualTimeLoop: a BufferedProtocol gets no more bytes once bufferUpdated() closes or pauses reading, as one read into its buffer on a DenoEventLoop", async () => {
  for (const action of ["close", "pauseReading"] as const) {
    const loop = new VirtualTimeLoop();
    const got: string[] = [];
    class Sink extends BufferedProtocol {
      buf = new Uint8Array(2);
      transport: Transport | null = null;
      override connectionMade(t: Transport): void {
        this.transport = t;
      }
      override getBuffer(): Uint8Array {
        return this.buf;
      }
      override bufferUpdated(n: number): void {
        got.push(decode(this.buf.subarray(0, n)));
        if (got.length === 1) this.transport![action]();
      }
    }
    const sink = new Sink();
    const server = await loop.runUntilComplete(
      loop.createServer(() => sink, "127.0.0.1", 8000),
    );
    const [t] = await connect(loop, "127.0.0.1", 8000);
    t.write(encode("abcdef"));
    await loop.advance(1);
    assertEquals(got, ["ab"], action);
    if (action === "pauseReading") {
      sink.transport!.resumeReading();
      await loop.advance(1);
      assertEquals(got, ["ab", "cd", "ef"]);
    }
    t.close();
    sink.transport!.close();
    server.close();
    await loop.runUntilComplete(server.waitClosed());
    loop.close();
  }
});

Deno.test("VirtualTimeLoop: a timer whose due time is a rounding error past the clock's is due, whether set from 0.2 for 0.1 later or repeating every 0.1", async () => {
  // 0.2 + 0.1 is 0.30000000000000004 in floats, while the clock's steps
  // add up to 0.3: the timer was left for a later advance().
  const loop = new VirtualTimeLoop();
  await loop.advance(0.2);
  let fired = false;
  loop.callLater(0.1, () => fired = true);
  await loop.advance(0.1);
  assertEquals([loop.time(), fired], [0.3, true]);
  let n = 0;
  const repeating = loop.callRepeatedly(0.1, () => n++);
  await loop.advance(0.3);
  assertEquals(n, 3);
  repeating.cancel();
  loop.close();
});

Deno.test("VirtualTimeLoop.advance() far from 0 lands on the exact sum where floats are not finer than a nanosecond", async () => {
  // At 1e9 s a float's step is about 1.2e-7 s: there is no whole
  // nanosecond to round to, and 1e9 + 0.125 is exact.
  const loop = new VirtualTimeLoop();
  await loop.advance(1e9);
  let at = -1;
  loop.callAt(1e9 + 0.125, () => at = loop.time());
  await loop.advance(0.125);
  assertEquals([loop.time(), at], [1e9 + 0.125, 1e9 + 0.125]);
  await loop.advance(0.5);
  assertEquals(loop.time(), 1e9 + 0.625);
  loop.close();
  // Where a float's step nears a nanosecond, 4355068.4 * 1e9 rounds to
  // the next nanosecond: the sum stays as it is.
  const near = new VirtualTimeLoop();
  await near.advance(4355068.4);
  assertEquals(near.time(), 4355068.4);
  near.close();
});
