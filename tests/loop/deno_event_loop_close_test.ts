// DenoEventLoop.close() releases the Deno resources its transports and
// servers still hold, so that a program whose main coroutine returns with
// one still open exits (asyncio.run() returns and Python exits), and
// reports once how many were left open.

import {
  assert,
  assertEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { INTERNALS_ENABLED } from "../../transports/_deno_internals.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import {
  DatagramProtocol,
  Protocol,
  SubprocessProtocol,
} from "../../protocols/protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import type { Transport } from "../../transports/transport.ts";

const MOD = new URL("../../mod.ts", import.meta.url).href;

/**
 * Runs `body` (the inside of `run(async () => { ... })`, with `loop`
 * bound) in a child Deno and returns its exit code, whether it had to be
 * killed after 10 s, and its output.
 */
async function runChild(
  body: string,
  prelude = "",
): Promise<{ code: number; killed: boolean; out: string; err: string }> {
  const script = `
    import { getEventLoop, Protocol, DatagramProtocol, SubprocessProtocol, run } from "${MOD}";
    ${prelude}
    await run(async () => {
      const loop = getEventLoop();
      ${body}
    });
    console.log("after run");
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", "--unstable-net", script],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, 10_000);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(timer);
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code, killed, out: decode(stdout), err: decode(stderr) };
}

/**
 * Checks that the child exited by itself, with success, after `run()`;
 * `reported` says whether the loop reported what was left open (not
 * checked when `null`).
 */
function assertExited(
  result: { code: number; killed: boolean; out: string; err: string },
  what: string,
  reported: boolean | null = true,
): void {
  assert(
    !result.killed,
    `the process did not exit: ${what} kept it alive\n${result.err}`,
  );
  assertEquals(result.code, 0, result.err);
  assertEquals(result.out.trim(), "after run");
  if (reported !== null) {
    assertEquals(result.err.includes("still open: close them"), reported);
  }
}

Deno.test("run() returns and the process exits with a server left open", async () => {
  assertExited(
    await runChild(`
      await loop.createServer(() => new Protocol(), "127.0.0.1", 0);
    `),
    "the server's listener",
  );
});

Deno.test("run() returns and the process exits with a connection left open", async () => {
  assertExited(
    await runChild(
      `
      const [t] = await loop.createConnection(
        () => new Protocol(), "127.0.0.1", listener.addr.port,
      );
      await accepting;
      listener.close();
    `,
      `
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const accepting = listener.accept();
    `,
    ),
    "the connection's read",
  );
});

Deno.test("run() returns and the process exits with both ends of a connection left open", async () => {
  assertExited(
    await runChild(`
      const server = await loop.createServer(() => new Protocol(), "127.0.0.1", 0);
      const port = server.addresses()[0].port;
      await loop.createConnection(() => new Protocol(), "127.0.0.1", port);
      await new Promise((r) => setTimeout(r, 50));
    `),
    "the connections' reads",
  );
});

const TLS = new URL("../fixtures/tls/", import.meta.url);
const readFixture = (name: string) => Deno.readTextFile(new URL(name, TLS));

Deno.test("run() returns and the process exits while a TLS server waits for a client's handshake", async () => {
  const [cert, key] = await Promise.all(
    ["server.pem", "server.key"].map(readFixture),
  );
  assertExited(
    await runChild(
      `
      const server = await loop.createServer(() => new Protocol(), "127.0.0.1", 0, {
        ssl: { cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} },
      });
      // A client that connects and never starts its handshake.
      silent = await Deno.connect(server.addresses()[0]);
      await new Promise((r) => setTimeout(r, 100));
    `,
      "let silent;",
    ),
    "the handshake",
  );
});

Deno.test("run() returns and the process exits while a TLS connection waits for the server's handshake", async () => {
  const ca = await readFixture("ca.pem");
  const result = await runChild(
    `
      // Not awaited: the server accepts and never answers.
      loop.createConnection(() => new Protocol(), "localhost", listener.addr.port, {
        ssl: { caCerts: [${JSON.stringify(ca)}] },
      });
      silent = await listener.accept();
      listener.close();
      await new Promise((r) => setTimeout(r, 100));
    `,
    `
      let silent;
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    `,
  );
  assertExited(result, "the handshake", false);
});

Deno.test("run() returns and the process exits while startTls() waits for the server's handshake", async () => {
  const ca = await readFixture("ca.pem");
  for (const paused of [true, false]) {
    const result = await runChild(
      `
      const [plain, p] = await loop.createConnection(
        () => new class extends Protocol {
          connectionMade(t) {
            // Paused before any read: the connection is handed over whole.
            if (${paused}) t.pauseReading();
          }
        }(), "127.0.0.1", listener.addr.port,
      );
      silent = await listener.accept();
      listener.close();
      // Not awaited: the server never answers.
      loop.startTls(plain, p, {
        serverHostname: "localhost",
        caCerts: [${JSON.stringify(ca)}],
      });
      await new Promise((r) => setTimeout(r, 100));
    `,
      `
      let silent;
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    `,
    );
    assertExited(result, `paused=${paused}: the handshake`, null);
  }
});

Deno.test("run() returns and the process exits with sockAccept() and sockRecv() calls in flight on the program's own sockets", async () => {
  const result = await runChild(
    `
      // Not awaited: nobody connects, nothing is sent.
      loop.sockAccept(listener);
      const other = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      conn = await Deno.connect(other.addr);
      peer = await other.accept();
      other.close();
      loop.sockRecv(conn, 100);
      await new Promise((r) => setTimeout(r, 50));
    `,
    `
      let conn, peer;
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    `,
  );
  assertExited(result, "a call in flight", false);
});

Deno.test("run() returns and the process exits with a UDP endpoint left open", async () => {
  assertExited(
    await runChild(`
      await loop.createDatagramEndpoint(() => new DatagramProtocol(), {
        localAddr: { hostname: "127.0.0.1", port: 0 },
      });
    `),
    "the endpoint's receive",
  );
});

/**
 * Runs `body`, which prints `pid=` and the id of a process it starts that
 * still runs when `run()` returns, and checks that the child Deno exited
 * (see {@linkcode assertExited}); that process is stopped here.
 */
async function assertExitedBeside(
  body: string,
  what: string,
  reported: boolean | null,
): Promise<void> {
  const result = await runChild(body);
  const pid = Number(/pid=(\d+)/.exec(result.err)?.[1]);
  assert(pid > 0, result.err);
  try {
    assertExited(result, what, reported);
  } finally {
    // Still running (signalling it succeeds), and stopped here.
    Deno.kill(pid, "SIGKILL");
  }
}

Deno.test({
  name:
    "run() returns and the process exits with a child's pipes left open (the child is not killed)",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await assertExitedBeside(
      `
      const [t] = await loop.subprocessExec(() => new SubprocessProtocol(), "sleep", [
        "30",
      ], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
      console.error("pid=" + t.getPid());
    `,
      "the child's pipes",
      true,
    );
  },
});

Deno.test({
  name:
    "run() returns and the process exits with a write to a child's stdin in flight that the child never reads (the child is not killed)",
  // Deno's write to the pipe cannot be cancelled; only its op can be made
  // not to keep the process alive (see WritePipeTransport).
  ignore: Deno.build.os === "windows" || !INTERNALS_ENABLED,
  fn: async () => {
    await assertExitedBeside(
      `
      const [t] = await loop.subprocessExec(() => new SubprocessProtocol(), "sleep", [
        "30",
      ], { stdin: "pipe", stdout: "null", stderr: "null" });
      console.error("pid=" + t.getPid());
      t.getPipeTransport(0).write(new Uint8Array(4 << 20));
      await new Promise((r) => setTimeout(r, 100));
    `,
      "the write to the child's stdin",
      true,
    );
  },
});

Deno.test({
  name:
    "run() returns and the process exits after close() with a write in flight to a stdin that a grandchild holds and never reads",
  ignore: Deno.build.os === "windows" || !INTERNALS_ENABLED,
  fn: async () => {
    // The shell is killed by close(); the sleep it started keeps the
    // child's stdin and stdout open.
    await assertExitedBeside(
      `
      let pid;
      const seen = new Promise((resolve) => pid = resolve);
      const [t] = await loop.subprocessShell(() => new class extends SubprocessProtocol {
        pipeDataReceived(fd, data) { pid(new TextDecoder().decode(data).trim()); }
      }(), "exec 3<&0; sleep 30 0<&3 3<&- & echo $!; wait");
      console.error("pid=" + await seen);
      t.getPipeTransport(0).write(new Uint8Array(4 << 20));
      await new Promise((r) => setTimeout(r, 100));
      t.close();
      await new Promise((r) => setTimeout(r, 100));
    `,
      "the write to the grandchild's stdin",
      null,
    );
  },
});

Deno.test("close() releases an open server's listener and reports once", async () => {
  const loop = new DenoEventLoop();
  const reports: ExceptionContext[] = [];
  loop.setExceptionHandler((_, context) => reports.push(context));
  const server = await loop.runUntilComplete(
    loop.createServer(() => new Protocol(), "127.0.0.1", 0),
  );
  const port = (server.addresses()[0] as Deno.NetAddr).port;
  loop.close();
  assertEquals(reports.length, 1);
  assertEquals(
    reports[0].message,
    "The event loop was closed with 0 open transports and 1 server still open: close them before closing the loop",
  );
  // The accept in flight ends (nobody is told), and the port is free.
  await new Promise((resolve) => setTimeout(resolve, 0));
  const again = Deno.listen({ hostname: "127.0.0.1", port });
  again.close();
  loop.close();
  assertEquals(reports.length, 1, "a second close() reports nothing");
});

Deno.test("close() releases open connections, both ends, and counts them", async () => {
  const loop = new DenoEventLoop();
  const reports: ExceptionContext[] = [];
  const calls: string[] = [];
  loop.setExceptionHandler((_, context) => reports.push(context));
  class Recorder extends Protocol {
    override connectionLost() {
      calls.push("connectionLost");
    }
    override eofReceived() {
      calls.push("eofReceived");
    }
  }
  const server = await loop.runUntilComplete(
    loop.createServer(() => new Recorder(), "127.0.0.1", 0),
  );
  const port = (server.addresses()[0] as Deno.NetAddr).port;
  await loop.runUntilComplete(
    loop.createConnection(() => new Recorder(), "127.0.0.1", port),
  );
  await loop.runUntilComplete(sleep(0.02, undefined, { loop }));
  server.close();
  loop.close();
  assertEquals(reports.length, 1);
  assertStringIncludes(
    reports[0].message,
    "closed with 2 open transports and 0 servers still open",
  );
  // The reads in flight end; no protocol hears of it (the sanitizers
  // check that they ended).
  await new Promise((resolve) => setTimeout(resolve, 20));
  assertEquals(calls, []);
});

Deno.test("close() reports nothing when everything was closed", async () => {
  const loop = new DenoEventLoop();
  const reports: ExceptionContext[] = [];
  loop.setExceptionHandler((_, context) => reports.push(context));
  const accepted: Transport[] = [];
  const server = await loop.runUntilComplete(
    loop.createServer(
      () =>
        new class extends Protocol {
          override connectionMade(t: Transport) {
            accepted.push(t);
          }
        }(),
      "127.0.0.1",
      0,
    ),
  );
  const port = (server.addresses()[0] as Deno.NetAddr).port;
  const [t] = await loop.runUntilComplete(
    loop.createConnection(() => new Protocol(), "127.0.0.1", port),
  );
  while (accepted.length === 0) {
    await loop.runUntilComplete(sleep(0.01, undefined, { loop }));
  }
  t.close();
  accepted[0].close();
  server.close();
  loop.close();
  assertEquals(reports, []);
  await new Promise((resolve) => setTimeout(resolve, 20));
});

Deno.test("a closed DenoEventLoop refuses new I/O with InvalidStateError, as each method's @throws says", () => {
  const loop = new DenoEventLoop();
  loop.close();
  const calls: [string, () => unknown][] = [
    [
      "createConnection",
      () => loop.createConnection(() => new Protocol(), "127.0.0.1", 9),
    ],
    [
      "createServer",
      () => loop.createServer(() => new Protocol(), "127.0.0.1", 0),
    ],
    [
      "createDatagramEndpoint",
      () =>
        loop.createDatagramEndpoint(() => new DatagramProtocol(), {
          localAddr: { hostname: "127.0.0.1", port: 0 },
        }),
    ],
    [
      "subprocessExec",
      () => loop.subprocessExec(() => new SubprocessProtocol(), "true"),
    ],
    [
      "subprocessShell",
      () => loop.subprocessShell(() => new SubprocessProtocol(), "true"),
    ],
    [
      "connectReadPipe",
      () => loop.connectReadPipe(() => new Protocol(), new ReadableStream()),
    ],
    [
      "connectWritePipe",
      () => loop.connectWritePipe(() => new Protocol(), new WritableStream()),
    ],
    ["getaddrinfo", () => loop.getaddrinfo("localhost", 80)],
    [
      "getnameinfo",
      () => loop.getnameinfo({ hostname: "127.0.0.1", port: 80 }),
    ],
    ["runInExecutor", () => loop.runInExecutor(null, () => 1)],
  ];
  for (const [name, call] of calls) {
    assertThrows(
      call,
      InvalidStateError,
      `Cannot call ${name}(): the loop is closed`,
    );
  }
});
