// Runs each example as its doc comment says (the `deno run` line is read
// from the file, so the documented permissions are the ones tested), as a
// subprocess of this Deno, and checks that it exits by itself with code 0
// and prints what it should. Each run is bounded: a process that outlives
// its bound is killed by pid and the test fails.

import { assert, assertEquals, assertMatch } from "@std/assert";
import { delay } from "@std/async/delay";

const root = new URL("../", import.meta.url);
/** A guard against a hung example, never a claim about its speed. */
const BOUND_MS = 60_000;

interface Command {
  flags: string[];
  args: string[];
}

/** The first `deno run …` line of the file's module doc, split. */
async function documentedCommand(file: string): Promise<Command> {
  const source = await Deno.readTextFile(new URL(file, root));
  const doc = source.match(/^\/\*\*([\s\S]*?)\*\//)?.[1];
  if (doc === undefined) throw new Error(`${file} has no module doc`);
  assert(doc.includes("@module"), `${file}'s first comment is not @module`);
  const line = doc.split("\n")
    .map((l) => l.replace(/^\s*\*\s?/, "").trim())
    .find((l) => l.startsWith("deno run "));
  if (line === undefined) {
    throw new Error(`${file}'s module doc has no deno run line`);
  }
  const tokens = line.split(/\s+/).slice(2);
  const at = tokens.indexOf(file);
  assert(at >= 0, `${file}'s deno run line runs another file: ${line}`);
  const flags = tokens.slice(0, at);
  for (const flag of flags) {
    // Narrow permissions only: each names what it allows. The one unstable
    // API an example may need is reusePort (serve_workers.ts).
    assertMatch(
      flag,
      /^(--allow-[a-z]+=\S+|--unstable-net)$/,
      `${file}: ${flag}`,
    );
  }
  return { flags, args: tokens.slice(at + 1) };
}

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `deno run <flags> <file> <args>` from the repository root, killing
 * the process if it runs past the bound; `drive` may talk to it meanwhile.
 */
async function runExample(
  file: string,
  command: Command,
  drive?: (child: Deno.ChildProcess) => Promise<string>,
  boundMs = BOUND_MS,
): Promise<Outcome> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...command.flags, file, ...command.args],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited meanwhile.
    }
  }, boundMs);
  try {
    const stderr = new Response(child.stderr).text();
    const stdout = drive === undefined
      ? new Response(child.stdout).text()
      : drive(child);
    const [status, out, err] = await Promise.all([
      child.status,
      stdout,
      stderr,
    ]);
    assert(!timedOut, `${file} was still running after ${boundMs} ms`);
    return { code: status.code, stdout: out, stderr: err };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs an example as documented and checks its exit and output. */
async function check(file: string, expected: (string | RegExp)[]) {
  const { code, stdout, stderr } = await runExample(
    file,
    await documentedCommand(file),
  );
  assertEquals(code, 0, `${file} failed:\n${stdout}\n${stderr}`);
  for (const e of expected) {
    if (typeof e === "string") {
      assert(stdout.includes(e), `${file} did not print ${e}:\n${stdout}`);
    } else {
      assertMatch(stdout, e);
    }
  }
}

Deno.test("examples/tcp_echo_protocol.ts echoes and stops when its clients are gone", async () => {
  await check("examples/tcp_echo_protocol.ts", [
    "client: data received: Re: This is the message. It will be echoed.",
    "idle for 1 s, closing",
    "server closed; bye",
  ]);
});

Deno.test("examples/tcp_echo_streams.ts serves a generator client and an async client", async () => {
  await check("examples/tcp_echo_streams.ts", [
    'generator client: sent gamma, got "echo 3: gamma"',
    'async client: got "echo 4: four"',
    "server: closed",
  ]);
});

Deno.test("examples/chat_server.ts drops then disconnects the client that stops reading", async () => {
  await check("examples/chat_server.ts", [
    "  bob   | ! the nick alice is taken",
    "  carol | <alice> hello everyone",
    /carol \| ! \d+ messages were dropped while you were not reading/,
    "* carol was disconnected: not reading (over 200 messages dropped)",
    "  alice | * bye",
    "server: closed",
  ]);
});

Deno.test("examples/json_rpc_tcp.ts makes calls, a notification, a batch and errors", async () => {
  await check("examples/json_rpc_tcp.ts", [
    "add(2, 3) = 5",
    "greet() = Hello, Ada!",
    "batch = 2, undefined, 2.5, error -32601",
    'divide(1, 0) failed: code 1001, "Division by zero", data {"dividend":1}',
    "TimeoutError",
    'server log: ["a notification: nobody answers this","a notification inside a batch"]',
  ]);
});

Deno.test("examples/tcp_proxy.ts proxies 8 MiB to a slow upstream with bounded memory", async () => {
  await check("examples/tcp_proxy.ts", [
    "upstream got 8388608 bytes",
    /most buffered in the proxy: \d+ KiB \(high-water mark 64 KiB, low 16 KiB\)/,
    "memory stayed bounded",
  ]);
});

Deno.test("examples/udp_echo.ts gets its datagrams echoed", async () => {
  await check("examples/udp_echo.ts", [
    "connected client: sent tulip, got TULIP",
    "unconnected client: got OVER HERE",
  ]);
});

Deno.test("examples/subprocess_pipeline.ts pipes printf into sort", async () => {
  await check("examples/subprocess_pipeline.ts", [
    "printf exited with 0",
    "sort exited with 0",
    "sort printed 60000 lines",
    "output is sorted: OK",
  ]);
});

Deno.test("examples/compile_server.ts --once serves one request and stops gracefully", async () => {
  await check("examples/compile_server.ts", [
    '--once: got 200 "Hello from a compiled tulip server\\n"',
    "stopping: --once: one request served",
    "all connections closed",
  ]);
});

Deno.test("examples/facade.ts runs its echo over the completion facade", async () => {
  await check("examples/facade.ts", [
    'client  got "TULIP"; closing',
    "nothing pending: run() returned",
  ]);
});

Deno.test("examples/http_client.ts talks to its own server", async () => {
  // The chunked body's lines may come as one piece or several: pieces
  // waiting for their reader are copied together.
  await check("examples/http_client.ts", [
    "transfer-encoding: chunked",
    'three\\n"',
    "done",
  ]);
});

Deno.test("examples/json_rpc_http.ts runs JSON-RPC over HTTP", async () => {
  await check("examples/json_rpc_http.ts", [
    "greet = Hello, PEP 3153!",
    "squares, pipelined on one connection: [ 1, 4, 9 ]",
    "done",
  ]);
});

Deno.test("examples/http_server.ts stops after its request limit", async () => {
  const file = "examples/http_server.ts";
  const command = await documentedCommand(file);
  // The documented port and limit, made safe for a shared machine.
  const args = [...command.args];
  args[args.indexOf("--port") + 1] = "0";
  args[args.indexOf("--requests") + 1] = "2";
  const { code, stdout, stderr } = await runExample(
    file,
    { flags: command.flags, args },
    async (child) => {
      const decoder = new TextDecoder();
      let out = "";
      const reader = child.stdout.getReader();
      let port: string | undefined;
      while (port === undefined) {
        const { value, done } = await reader.read();
        if (done) return out;
        out += decoder.decode(value, { stream: true });
        port = out.match(/Listening on http:\/\/127\.0\.0\.1:(\d+)\//)?.[1];
      }
      // Two pipelined requests on one connection; the server closes it
      // after the second answer, its last.
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: +port });
      await conn.write(new TextEncoder().encode(
        "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
      ));
      const answer = await new Response(conn.readable).text();
      assertMatch(
        answer,
        /^HTTP\/1\.1 200 [\s\S]*Hello from tulip![\s\S]*HTTP\/1\.1 404 /,
      );
      while (true) {
        const { value, done } = await reader.read();
        if (done) return out;
        out += decoder.decode(value, { stream: true });
      }
    },
  );
  assertEquals(code, 0, `${file} failed:\n${stdout}\n${stderr}`);
  assert(stdout.includes("#2 GET /nowhere"), stdout);
  assert(stdout.includes("Stopping: served"), stdout);
});

Deno.test("examples/serve_workers.ts answers from every worker, then closes them", async () => {
  await check("examples/serve_workers.ts", [
    /^2 workers listening on http:\/\/127\.0\.0\.1:\d+\/$/m,
    /^\d+ × Hello from worker 0$/m,
    /^\d+ × Hello from worker 1$/m,
    "all workers closed",
  ]);
});

Deno.test("examples/demo.ts tours the core, I/O and protocols and exits", async () => {
  await check("examples/demo.ts", [
    "sibling cancelled: true",
    'tcp client got back "hello, tulip"',
    'udp client got "PING"',
    "exited with code 3",
    'bob heard "<alice> hi bob"',
    '200 "GET /hello"',
    "add(2, 40) over HTTP = 42",
    "main       done",
  ]);
});

Deno.test("examples/simulation.ts finds the naive client's failing seeds and passes the robust one", async () => {
  await check("examples/simulation.ts", [
    /naive client: Simulation failed \(seed \d+\)/,
    "the events before seed",
    "robust client: passed all 200 seeds",
  ]);
});

// ---- Servers: serving until a signal, as their doc comments say ----

/** A running example's stdout, read as it comes. */
class Output {
  text = "";
  /** Resolves with the whole output once it ends. */
  readonly ended: Promise<string>;
  #changed = Promise.withResolvers<void>();

  constructor(child: Deno.ChildProcess) {
    this.ended = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        this.text += decoder.decode(chunk, { stream: true });
        this.#changed.resolve();
        this.#changed = Promise.withResolvers();
      }
      this.#changed.resolve();
      return this.text;
    })();
  }

  /** Resolves when more output comes (or it ends). */
  more(): Promise<void> {
    return this.#changed.promise;
  }

  /** Waits until `pattern` matches the output; returns the match. */
  async until(pattern: RegExp): Promise<RegExpMatchArray> {
    let ended = false;
    this.ended.then(() => ended = true);
    while (true) {
      const match = this.text.match(pattern);
      if (match !== null) return match;
      if (ended) {
        throw new Error(`the output ended without ${pattern}:\n${this.text}`);
      }
      await this.more();
    }
  }
}

/**
 * Runs a server example: waits for the port it prints (`listening`'s
 * first group), lets `drive` talk to it, then checks that it exited with
 * 0; returns its output.
 */
async function serveExample(
  file: string,
  command: Command,
  listening: RegExp,
  drive: (child: Deno.ChildProcess, out: Output, port: number) => Promise<void>,
  boundMs?: number,
): Promise<string> {
  const { code, stdout, stderr } = await runExample(
    file,
    command,
    async (child) => {
      const out = new Output(child);
      await drive(child, out, +(await out.until(listening))[1]);
      return await out.ended;
    },
    boundMs,
  );
  assertEquals(code, 0, `${file} failed:\n${stdout}\n${stderr}`);
  return stdout;
}

/** What the HTTP examples print once they listen, with the port. */
const HTTP_ON = /http:\/\/127\.0\.0\.1:(\d+)\//;
/** What examples/compile_server.ts prints once it listens. */
const COMPILE_SERVER_ON = /http:\/\/0\.0\.0\.0:(\d+)\//;

/** The documented command with `--port` set to 0 (any free port). */
async function onAnyPort(file: string, extra: string[] = []) {
  const command = await documentedCommand(file);
  const args = command.args.filter((a) => a !== "--once");
  const at = args.indexOf("--port");
  if (at >= 0) args[at + 1] = "0";
  else args.push("--port", "0");
  return { flags: command.flags, args: [...args, ...extra] };
}

/** `command` with `--requests 0`: serving until a signal. */
function noRequestLimit(command: Command): Command {
  const args = [...command.args];
  args[args.indexOf("--requests") + 1] = "0";
  return { flags: command.flags, args };
}

/** Opens a keep-alive connection, makes one request, and reads its answer. */
async function keepAlive(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
  );
  const buffer = new Uint8Array(4096);
  const n = await conn.read(buffer);
  assertMatch(
    new TextDecoder().decode(buffer.subarray(0, n ?? 0)),
    /^HTTP\/1\.1 200 /,
  );
  return conn;
}

/** Reads `conn` until EOF (or an error); returns the time it came. */
async function closedAt(conn: Deno.Conn): Promise<number> {
  const buffer = new Uint8Array(4096);
  try {
    while (await conn.read(buffer) !== null) { /* discard */ }
  } catch {
    // Reset: closed too.
  } finally {
    conn.close();
  }
  return performance.now();
}

Deno.test("examples/http_server.ts on Ctrl-C closes an idle keep-alive connection at once", async () => {
  const file = "examples/http_server.ts";
  let signalled = 0;
  let closed = 0;
  const stdout = await serveExample(
    file,
    await onAnyPort(file),
    HTTP_ON,
    async (child, _out, port) => {
      const conn = await keepAlive(port);
      signalled = performance.now();
      child.kill("SIGINT");
      closed = await closedAt(conn);
    },
  );
  assert(stdout.includes("Stopping: interrupted"), stdout);
  // Not after the server's 5 s keep-alive timeout.
  const waited = closed - signalled;
  assert(waited < 3000, `the idle connection was closed after ${waited} ms`);
});

/**
 * Asks examples/compile_server.ts for /slow (its handler sleeps 1 s) and
 * returns, once the server has read the request, its answer to come.
 */
async function slowInFlight(
  port: number,
): Promise<{ answer: Promise<string> }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"),
  );
  const answer = new Response(conn.readable).text();
  // Those bytes were there before the next connection was: once it is
  // answered, the server has read /slow.
  (await keepAlive(port)).close();
  return { answer };
}

Deno.test("examples/compile_server.ts on SIGTERM finishes the request in flight, then stops", async () => {
  const file = "examples/compile_server.ts";
  let slow = "";
  const stdout = await serveExample(
    file,
    await onAnyPort(file),
    COMPILE_SERVER_ON,
    async (child, _out, port) => {
      const idle = await keepAlive(port);
      const idleClosed = closedAt(idle);
      const { answer } = await slowInFlight(port);
      child.kill("SIGTERM");
      slow = await answer;
      await idleClosed;
    },
  );
  assertMatch(
    slow,
    /^HTTP\/1\.1 200 [\s\S]*connection: close[\s\S]*slow but done/i,
  );
  assertMatch(stdout, /stopping: SIGTERM/);
  assertMatch(stdout, /stopped listening; 1 request\(s\) in flight/);
  assertMatch(stdout, /all connections closed/);
});

Deno.test("examples/serve_workers.ts --requests 0 serves until SIGINT, then closes its workers", async () => {
  const file = "examples/serve_workers.ts";
  const stdout = await serveExample(
    file,
    noRequestLimit(await documentedCommand(file)),
    HTTP_ON,
    async (child, out, port) => {
      await out.until(/Ctrl-C closes them gracefully/);
      const conn = await keepAlive(port);
      const closed = closedAt(conn);
      child.kill("SIGINT");
      await closed;
    },
  );
  assert(stdout.includes("all workers closed"), stdout);
});

/**
 * Runs examples/chat_server.ts --serve with a client who chats and one who
 * stops reading until the server drops its messages, then calls `stop`;
 * returns what the chatty client heard and the run's outcome.
 */
async function chatWithSilentClient(
  stop: (child: Deno.ChildProcess, out: Output) => Promise<void>,
): Promise<void> {
  const file = "examples/chat_server.ts";
  const encoder = new TextEncoder();
  let heard = "";
  const stdout = await serveExample(
    file,
    await onAnyPort(file, ["--serve"]),
    /chat on 127\.0\.0\.1:(\d+)/,
    async (child, out, port) => {
      const connect = () => Deno.connect({ hostname: "127.0.0.1", port });
      // One who talks and listens, one who never reads.
      const ann = await connect();
      const silent = await connect();
      await out.until(/guest-2 joined/);
      const annHeard = new Response(ann.readable).text();
      await ann.write(encoder.encode("/nick ann\r\n/who\r\nhello\r\n"));
      // Ann floods the room until the silent client falls behind for
      // good (the kernel may take more of its bytes, at first).
      const lines = encoder.encode(`${"x".repeat(1000)}\r\n`.repeat(64));
      const behind = () =>
        out.text.lastIndexOf("is not reading") >
          out.text.lastIndexOf("caught up");
      // It is then dropped after 200 more lines; these stop before.
      for (let since = 0; since < 10; since = behind() ? since + 1 : 0) {
        if (!behind()) await ann.write(lines);
        await Promise.race([out.more(), delay(10)]);
      }
      await stop(child, out);
      heard = await annHeard;
      try {
        await out.ended; // The silent client still connected.
      } finally {
        silent.close();
      }
    },
    20_000, // The server's grace is 5 s.
  );
  assertMatch(heard, /\* you are now ann\r\n/);
  assertMatch(heard, /\* in the room: ann, guest-2\r\n/);
  assert(stdout.includes("server: closed"), stdout);
}

Deno.test("examples/chat_server.ts --serve chats, and on Ctrl-C closes even a client that stopped reading", async () => {
  await chatWithSilentClient((child) => {
    child.kill("SIGINT");
    return Promise.resolve();
  });
});

Deno.test("examples/chat_server.ts --serve: a second Ctrl-C cuts the grace period short", async () => {
  let signalled = 0;
  await chatWithSilentClient(async (child, out) => {
    child.kill("SIGINT");
    await out.until(/SIGINT: closing the server/);
    signalled = performance.now();
    child.kill("SIGINT");
  });
  const waited = performance.now() - signalled;
  // Not after the 5 s grace period.
  assert(
    waited < 3000,
    `the server closed ${waited} ms after the second SIGINT`,
  );
});

Deno.test("deno task demo runs examples/demo.ts as its doc comment says", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", root)),
  );
  const { flags, args } = await documentedCommand("examples/demo.ts");
  assertEquals(
    config.tasks.demo,
    ["deno run", ...flags, "examples/demo.ts", ...args].join(" "),
  );
});

/** The README's code block that contains `marker`. */
async function readmeBlock(marker: string): Promise<string> {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const block = [...readme.matchAll(/^```ts[^\n]*\n([\s\S]*?)^```$/gm)]
    .map((m) => m[1])
    .find((code) => code.includes(marker));
  if (block === undefined) throw new Error(`no README block has ${marker}`);
  return block;
}

Deno.test("README's echo server echoes, and Ctrl-C stops it with a client connected", async () => {
  const marker = 'loop.createServer(() => new Echo(), "127.0.0.1", 8888)';
  const code = (await readmeBlock(marker))
    .replace(marker, marker.replace("8888", "0"))
    // Says which port it got, for this test.
    .replace(
      /^(loop\.addSignalHandler\("SIGINT")/m,
      "console.log(`port ${(server.addresses()[0] as Deno.NetAddr).port}`);\n$1",
    );
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, code);
    // Run as a project that maps @tulip/tulip to this checkout would.
    const flags = [
      "--allow-net=127.0.0.1",
      "--config",
      new URL("deno.json", root).pathname,
    ];
    await serveExample(
      file,
      { flags, args: [] },
      /^port (\d+)$/m,
      async (child, _out, port) => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(new TextEncoder().encode("ping"));
        const buffer = new Uint8Array(16);
        const n = await conn.read(buffer);
        assertEquals(new TextDecoder().decode(buffer.subarray(0, n!)), "ping");
        child.kill("SIGINT");
        await closedAt(conn); // The server hangs up.
      },
      20_000,
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("examples/json_rpc_tcp.ts on Ctrl-C while it waits for the server to close still closes cleanly", async () => {
  const file = "examples/json_rpc_tcp.ts";
  const { code, stdout, stderr } = await runExample(
    file,
    await documentedCommand(file),
    async (child) => {
      const out = new Output(child);
      // The client is done; the server still runs the call that timed
      // out on the client (0.3 s) before it closes the connection.
      await out.until(/slowEcho\(0\.05 s\) = on time/);
      child.kill("SIGINT");
      return await out.ended;
    },
  );
  assertEquals(code, 0, `${file} failed:\n${stdout}\n${stderr}`);
  assert(stdout.includes("SIGINT: closing"), stdout);
});

Deno.test("examples/compile_server.ts: a second SIGTERM cuts off the request in flight, and the server still stops cleanly", async () => {
  const file = "examples/compile_server.ts";
  let slow = "";
  const stdout = await serveExample(
    file,
    await onAnyPort(file),
    COMPILE_SERVER_ON,
    async (child, out, port) => {
      const answer = (await slowInFlight(port)).answer.catch(() => "");
      child.kill("SIGTERM");
      await out.until(/1 request\(s\) in flight/);
      child.kill("SIGTERM");
      slow = await answer;
    },
  );
  assertEquals(slow, "", "the request in flight was answered");
  assertMatch(stdout, /SIGTERM again: cutting off the connections/);
  assertMatch(stdout, /all connections closed/);
});

Deno.test("examples/http_server.ts --requests 0 serves until Ctrl-C", async () => {
  const file = "examples/http_server.ts";
  let answers = "";
  const stdout = await serveExample(
    file,
    noRequestLimit(await onAnyPort(file)),
    HTTP_ON,
    async (child, out, port) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode(
        "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /time HTTP/1.1\r\nHost: x\r\n\r\n",
      ));
      // Both answered, on a connection kept open.
      await out.until(/#2 GET \/time/);
      const decoder = new TextDecoder();
      const buffer = new Uint8Array(4096);
      while ((answers.match(/HTTP\/1\.1 200 /g) ?? []).length < 2) {
        const n = await conn.read(buffer);
        if (n === null) break;
        answers += decoder.decode(buffer.subarray(0, n), { stream: true });
      }
      child.kill("SIGINT");
      await closedAt(conn);
    },
  );
  assertEquals((answers.match(/HTTP\/1\.1 200 /g) ?? []).length, 2, answers);
  assert(!/connection: close/i.test(answers), answers);
  assert(stdout.includes("Stopping: interrupted"), stdout);
});
