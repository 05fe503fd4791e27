import { assert, assertEquals } from "@std/assert";
import { DenoProactor } from "../../transports/_deno_proactor.ts";
import { acceptErrorKind, DenoServer } from "../../transports/_deno_server.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import { Protocol } from "../../protocols/protocol.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

// ---- Fakes: a listener and a connection that script what Deno reports ----

/** What one `accept()` of the fake listener gives. */
type Step = Error | "conn";

/** A connection that reads nothing until it is closed. */
class FakeConn {
  readonly localAddr: Deno.NetAddr = {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 1,
  };
  readonly remoteAddr: Deno.NetAddr = {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 2,
  };
  #closed = false;
  #reads: ((error: Error) => void)[] = [];
  /** Whether the server asked for its TLS handshake. */
  handshaking = false;

  /** A TLS handshake that is done at once. */
  handshake(): Promise<Deno.TlsHandshakeInfo> {
    this.handshaking = true;
    return Promise.resolve({ alpnProtocol: null });
  }

  read(_buffer: Uint8Array): Promise<number | null> {
    if (this.#closed) return Promise.reject(this.#gone());
    return new Promise((_, reject) => this.#reads.push(reject));
  }

  write(_data: Uint8Array): Promise<number> {
    return Promise.reject(this.#gone());
  }

  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.#closed = true;
    for (const reject of this.#reads.splice(0)) reject(this.#gone());
  }

  ref(): void {}
  unref(): void {}

  #gone(): Error {
    return new Deno.errors.BadResource("Bad resource ID");
  }
}

/**
 * A listener whose `accept()` calls follow a script and are stamped with
 * the loop's virtual time; past the script, an accept waits until
 * `close()`.
 */
class FakeListener {
  readonly addr: Deno.NetAddr = {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 1,
  };
  /** The virtual time of each `accept()` call. */
  readonly calls: number[] = [];
  readonly conns: FakeConn[] = [];
  readonly #loop: VirtualTimeLoop;
  readonly #script: Step[];
  #waiting: ((error: Error) => void) | null = null;

  constructor(loop: VirtualTimeLoop, script: Step[]) {
    this.#loop = loop;
    this.#script = [...script];
  }

  accept(): Promise<Deno.Conn> {
    this.calls.push(this.#loop.time());
    const step = this.#script.shift();
    if (step === undefined) {
      return new Promise((_, reject) => this.#waiting = reject);
    }
    if (step instanceof Error) return Promise.reject(step);
    const conn = new FakeConn();
    this.conns.push(conn);
    return Promise.resolve(conn as unknown as Deno.Conn);
  }

  close(): void {
    this.#waiting?.(new Deno.errors.BadResource("Bad resource ID"));
    this.#waiting = null;
  }
}

/** Deno's error for a descriptor table that is full, as observed. */
function emfile(): Error {
  return Object.assign(new Error("Too many open files (os error 24)"), {
    code: "EMFILE",
  });
}

/** Deno's error for a connection reset before `accept()`, as observed. */
function notConnected(): Error {
  return Object.assign(
    new Deno.errors.NotConnected(
      "Transport endpoint is not connected (os error 107)",
    ),
    { code: "ENOTCONN" },
  );
}

function connectionAborted(): Error {
  return Object.assign(
    new Deno.errors.ConnectionAborted(
      "Software caused connection abort (os error 103)",
    ),
    { code: "ECONNABORTED" },
  );
}

/** The gaps between consecutive accept calls, rounded to microseconds. */
function gaps(calls: number[]): number[] {
  return calls.slice(1).map((t, i) => Math.round((t - calls[i]) * 1e6) / 1e6);
}

/** Serves a fake listener on a virtual-time loop, then tears it all down. */
async function withFakeServer(
  script: Step[],
  fn: (
    loop: VirtualTimeLoop,
    listener: FakeListener,
    server: DenoServer,
    reports: ExceptionContext[],
  ) => Promise<void>,
): Promise<void> {
  const loop = new VirtualTimeLoop();
  const reports: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) =>
    reports.push({ ...context, at: loop.time() })
  );
  const listener = new FakeListener(loop, script);
  const server = new DenoServer(
    { loop, proactor: new DenoProactor(loop) },
    [listener as unknown as Deno.Listener],
    () => new Protocol(),
  );
  try {
    server.startServing();
    await fn(loop, listener, server, reports);
  } finally {
    server.close();
    server.abortClients();
    await loop.runUntilComplete(server.waitClosed());
    loop.close();
  }
}

// ---- Accept errors ----

Deno.test("DenoServer accepts again at once when a connection failed before accept", async () => {
  const script: Step[] = [];
  for (let i = 0; i < 10; i++) script.push(notConnected(), connectionAborted());
  script.push("conn");
  await withFakeServer(script, async (loop, listener, _server, reports) => {
    await loop.advance(0);
    // Twenty failures, the connection, and the accept now waiting: all at
    // once, nothing reported.
    assertEquals(listener.calls.length, 22);
    assertEquals(listener.calls.every((t) => t === 0), true);
    assertEquals(listener.conns.length, 1);
    assertEquals(reports, []);
  });
});

Deno.test("DenoServer backs off from 5 ms doubling to 1 s while out of descriptors", async () => {
  const script: Step[] = [];
  for (let i = 0; i < 10; i++) script.push(emfile());
  script.push("conn", emfile(), emfile());
  await withFakeServer(script, async (loop, listener, _server, reports) => {
    await loop.advance(10);
    assertEquals(gaps(listener.calls), [
      0.005,
      0.01,
      0.02,
      0.04,
      0.08,
      0.16,
      0.32,
      0.64,
      1,
      1,
      // The connection, then the next accept at once; backing off starts
      // over from 5 ms.
      0,
      0.005,
      0.01,
    ]);
    assertEquals(listener.conns.length, 1);
    // Reported once, not once per failure.
    assertEquals(reports.length, 1);
    assertEquals(
      reports[0].message,
      "Cannot accept a connection: out of file descriptors or memory, accepting again in 0.005 s",
    );
    assertEquals((reports[0].exception as { code?: string }).code, "EMFILE");
  });
});

Deno.test("DenoServer retries an unknown accept error at once, then paces it if it repeats", async () => {
  const odd = () =>
    Object.assign(new Error("Odd (os error 99)"), { code: "EODD" });
  const script: Step[] = [odd(), "conn", odd(), odd(), odd(), "conn"];
  await withFakeServer(script, async (loop, listener, _server, reports) => {
    await loop.advance(10);
    // At once after a first failure; a repeat backs off like exhaustion,
    // and a success starts over.
    assertEquals(gaps(listener.calls), [0, 0, 0, 0.005, 0.01, 0]);
    assertEquals(listener.conns.length, 2);
    assertEquals(reports.length, 1);
    assertEquals(
      reports[0].message,
      "Cannot accept a connection: Odd (os error 99), accepting again at once",
    );
  });
});

Deno.test("DenoServer reports accept failures at most once per 10 s, counting the rest", async () => {
  // Out of descriptors for good: a failure a second, once backing off
  // reached its 1 s cap.
  const script: Step[] = [];
  for (let i = 0; i < 40; i++) script.push(emfile());
  await withFakeServer(script, async (loop, listener, _server, reports) => {
    await loop.advance(25);
    const at = reports.map((r) => r.at as number);
    assertEquals(at.length, 3);
    assert(at[1] - at[0] >= 10 && at[2] - at[1] >= 10, `Reported at ${at}`);
    // The second report counts the failures between the first two.
    const between = listener.calls.filter((t) => t > at[0] && t < at[1]);
    assertEquals(
      reports[1].message,
      `Cannot accept a connection: out of file descriptors or memory, accepting again in 1 s (and ${between.length} accept failures not reported since the last report)`,
    );
  });
});

Deno.test("DenoServer counts connections that failed before accept in its tag", async () => {
  await withFakeServer(
    [notConnected(), connectionAborted(), notConnected()],
    async (loop, _listener, server) => {
      assertEquals(
        Object.prototype.toString.call(server),
        "[object Server serving connections=0]",
      );
      await loop.advance(0);
      assertEquals(
        Object.prototype.toString.call(server),
        "[object Server serving connections=0 failedAccepts=3]",
      );
    },
  );
});

Deno.test("DenoServer.close() during a pause cancels the retry", async () => {
  await withFakeServer([emfile()], async (loop, listener, server) => {
    await loop.advance(0);
    assertEquals(listener.calls, [0]);
    server.close();
    await loop.runUntilComplete(server.waitClosed());
    await loop.advance(5);
    assertEquals(listener.calls, [0]);
  });
});

Deno.test("DenoServer.abortClients() ends a TLS connection whose handshake is done but not yet served: it is never served", async () => {
  const loop = new VirtualTimeLoop();
  const listener = new FakeListener(loop, ["conn"]);
  let made = 0;
  const server = new DenoServer(
    { loop, proactor: new DenoProactor(loop) },
    [listener as unknown as Deno.Listener],
    () => {
      made++;
      return new Protocol();
    },
    { tls: true },
  );
  try {
    server.startServing();
    while (listener.conns[0]?.handshaking !== true) await loop.runOnce();
    // The handshake is done; the server hears of it on a later callback.
    server.close();
    server.abortClients();
    await loop.advance(1);
    assertEquals(made, 0);
  } finally {
    server.close();
    server.abortClients();
    await loop.runUntilComplete(server.waitClosed());
    loop.close();
  }
});

Deno.test("acceptErrorKind() sorts exhaustion, failed connections and the rest", () => {
  const coded = (code: string) => Object.assign(new Error(code), { code });
  for (const code of ["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]) {
    assertEquals(acceptErrorKind(coded(code)), "exhausted");
  }
  assertEquals(acceptErrorKind(emfile()), "exhausted");
  for (const code of ["ECONNABORTED", "ENOTCONN", "EPROTO", "EPERM"]) {
    assertEquals(acceptErrorKind(coded(code)), "connection");
  }
  assertEquals(acceptErrorKind(notConnected()), "connection");
  assertEquals(
    acceptErrorKind(new Deno.errors.ConnectionAborted("x")),
    "connection",
  );
  assertEquals(
    acceptErrorKind(new Deno.errors.ConnectionReset("x")),
    "connection",
  );
  assertEquals(acceptErrorKind(new Deno.errors.BadResource("x")), "other");
  assertEquals(acceptErrorKind(new Error("x")), "other");
  assertEquals(acceptErrorKind("a string"), "other");
  assertEquals(acceptErrorKind(null), "other");
});
