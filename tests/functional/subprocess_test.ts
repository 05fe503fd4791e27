// Real child processes through DenoEventLoop.subprocessExec/subprocessShell.
// Needs --allow-run.

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertThrows,
} from "@std/assert";
import type { Future } from "../../futures/future.ts";
import { InvalidStateError } from "../../futures/errors.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { DenoProactor } from "../../transports/_deno_proactor.ts";
import { subprocessExec } from "../../transports/_deno_subprocess.ts";
import { SubprocessProtocol } from "../../protocols/protocol.ts";
import type {
  ReadTransport,
  SubprocessTransport,
  WriteTransport,
} from "../../transports/transport.ts";
import { sleep } from "../../tasks/sleep.ts";
import { bytes, text, within } from "./_io_helpers.ts";

/** Records every callback, in order, with the output per descriptor. */
class Recorder extends SubprocessProtocol {
  readonly events: string[] = [];
  readonly output: Record<number, string> = { 1: "", 2: "" };
  readonly exited: Future<void>;
  readonly lost: Future<void>;
  transport?: SubprocessTransport;
  constructor(loop: DenoEventLoop) {
    super();
    this.exited = loop.createFuture();
    this.lost = loop.createFuture();
  }
  override connectionMade(transport: SubprocessTransport) {
    this.transport = transport;
    this.events.push("made");
  }
  override pipeDataReceived(fd: number, data: Uint8Array) {
    this.output[fd] += text(data);
  }
  override pipeConnectionLost(fd: number, exc?: Error) {
    this.events.push(`pipe ${fd} lost${exc ? ` ${exc.name}` : ""}`);
  }
  override processExited() {
    this.events.push(`exited ${this.transport!.getReturncode()}`);
    this.exited.setResult();
  }
  override connectionLost(exc?: Error) {
    this.events.push(exc ? `lost ${exc.name}` : "lost");
    this.lost.setResult();
  }
}

function assertAsyncioOrder(events: string[], pipes: number[]) {
  assertEquals(events[0], "made");
  assertEquals(events.at(-1), "lost");
  const exited = events.findIndex((e) => e.startsWith("exited"));
  assert(exited > 0, `processExited missing: ${events}`);
  for (const fd of pipes) {
    assert(
      events.some((e) => e.startsWith(`pipe ${fd} lost`)),
      `pipe ${fd} not lost: ${events}`,
    );
  }
  assertEquals(events.length, 3 + pipes.length);
}

Deno.test("subprocessExec() delivers echo's output, then processExited, then connectionLost", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  const [transport, p] = await within(
    loop,
    loop.subprocessExec(() => protocol, "echo", ["hello", "world"]),
  );
  assertEquals(p, protocol);
  assert(transport.getPid() > 0);
  assert(transport.getExtraInfo("subprocess") !== undefined);
  await within(loop, protocol.lost);
  assertEquals(protocol.output, { 1: "hello world\n", 2: "" });
  assertEquals(transport.getReturncode(), 0);
  // stdin was a pipe too: it is closed once the child has exited.
  assertAsyncioOrder(protocol.events, [0, 1, 2]);
  // As asyncio's test_proc_exited: an exit is not a close().
  assert(!transport.isClosing());
  transport.close();
  assert(transport.isClosing());
  loop.close();
});

Deno.test("subprocessExec() feeds cat through its stdin pipe", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  const [transport] = await within(
    loop,
    loop.subprocessExec(() => protocol, "cat", [], { stderr: "null" }),
  );
  const stdin = transport.getPipeTransport(0) as WriteTransport;
  stdin.write(bytes("one\n"));
  stdin.writelines([bytes("two"), bytes("\n")]);
  stdin.writeEof();
  await within(loop, protocol.lost);
  assertEquals(protocol.output[1], "one\ntwo\n");
  assertEquals(transport.getReturncode(), 0);
  assertEquals(transport.getPipeTransport(2), null);
  assertAsyncioOrder(protocol.events, [0, 1]);
  loop.close();
});

Deno.test("subprocessShell() reports the exit code of `exit 3`", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  const [transport] = await within(
    loop,
    loop.subprocessShell(() => protocol, "echo oops >&2; exit 3", {
      stdin: "null",
    }),
  );
  await within(loop, protocol.lost);
  assertEquals(transport.getReturncode(), 3);
  assertEquals(protocol.output, { 1: "", 2: "oops\n" });
  assertAsyncioOrder(protocol.events, [1, 2]);
  assert(protocol.events.includes("exited 3"));
  loop.close();
});

Deno.test("SubprocessTransport.terminate() stops sleep with SIGTERM, a negative return code", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  const [transport] = await within(
    loop,
    loop.subprocessExec(() => protocol, "sleep", ["30"], {
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }),
  );
  assertEquals(transport.getReturncode(), null);
  transport.terminate();
  await within(loop, protocol.lost);
  assertEquals(transport.getReturncode(), -15);
  assertEquals(protocol.events, ["made", "exited -15", "lost"]);
  // Once connectionLost has come, the transport has no process left to
  // signal: asyncio's test_proc_exited raises ProcessLookupError there.
  for (const send of [() => transport.kill(), () => transport.terminate()]) {
    assertThrows(send, InvalidStateError, "Cannot send a signal");
  }
  assertThrows(
    () => transport.sendSignal("SIGTERM"),
    InvalidStateError,
    "the subprocess has exited",
  );
  loop.close();
});

Deno.test("SubprocessTransport.sendSignal() between the exit and connectionLost is quietly ignored, as Popen does", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  // The grandchild `sleep` holds stdout after the shell has exited.
  const [transport] = await within(
    loop,
    loop.subprocessShell(() => protocol, "sleep 0.5 &", {
      stdin: "null",
      stderr: "null",
    }),
  );
  await within(loop, protocol.exited);
  assertEquals(transport.getReturncode(), 0);
  assert(!protocol.events.includes("lost"));
  transport.terminate();
  await within(loop, protocol.lost);
  assertAsyncioOrder(protocol.events, [1]);
  loop.close();
});

Deno.test("SubprocessTransport.close() kills a running child and closes its pipes", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  const [transport] = await within(
    loop,
    loop.subprocessExec(() => protocol, "sleep", ["30"]),
  );
  transport.close();
  transport.close();
  assert(transport.isClosing());
  await within(loop, protocol.lost);
  assertEquals(transport.getReturncode(), -9);
  assertAsyncioOrder(protocol.events, [0, 1, 2]);
  loop.close();
});

Deno.test("SubprocessTransport.sendSignal() rejects unknown signals and sends known ones", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  const [transport] = await within(
    loop,
    loop.subprocessExec(() => protocol, "sleep", ["30"], {
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }),
  );
  assertThrows(
    () => transport.sendSignal("SIGNOPE" as Deno.Signal),
    RangeError,
    'Cannot send a signal: unknown signal, received "SIGNOPE"',
  );
  assertThrows(
    () => transport.sendSignal(9 as unknown as Deno.Signal),
    TypeError,
  );
  transport.sendSignal("SIGKILL");
  await within(loop, protocol.lost);
  assertEquals(transport.getReturncode(), -9);
  loop.close();
});

Deno.test("subprocessExec() stdout pipe can be paused and resumed", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  protocol.connectionMade = function (transport: SubprocessTransport) {
    this.transport = transport;
    this.events.push("made");
    (transport.getPipeTransport(1) as ReadTransport).pauseReading();
  };
  const [transport] = await within(
    loop,
    loop.subprocessExec(() => protocol, "echo", ["paused"], {
      stdin: "null",
      stderr: "null",
    }),
  );
  const stdout = transport.getPipeTransport(1) as ReadTransport;
  assertEquals(stdout.isReading(), false);
  await within(loop, protocol.exited);
  // The child is gone, but nothing was read while paused.
  assertEquals(protocol.output[1], "");
  assertEquals(protocol.lost.done(), false);
  stdout.resumeReading();
  await within(loop, protocol.lost);
  assertEquals(protocol.output[1], "paused\n");
  assertEquals(protocol.events, ["made", "exited 0", "pipe 1 lost", "lost"]);
  loop.close();
});

Deno.test("subprocessExec() sends stdin's pauseWriting()/resumeWriting() to the protocol", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  const resumed = loop.createFuture<void>();
  protocol.pauseWriting = function () {
    this.events.push("pause");
  };
  protocol.resumeWriting = function () {
    this.events.push("resume");
    resumed.setResult();
  };
  const [transport] = await within(
    loop,
    loop.subprocessExec(() => protocol, "cat", [], {
      stdout: "null",
      stderr: "null",
    }),
  );
  const stdin = transport.getPipeTransport(0) as WriteTransport;
  stdin.setWriteBufferLimits(8, 0);
  stdin.write(new Uint8Array(16));
  assertEquals(protocol.events, ["made", "pause"]);
  await within(loop, resumed);
  assertEquals(stdin.getWriteBufferSize(), 0);
  assertEquals(protocol.events, ["made", "pause", "resume"]);
  stdin.close();
  await within(loop, protocol.lost);
  loop.close();
});

Deno.test("SubprocessTransport: aborting stdin while the child never reads loses the pipe at once, not at the child's exit", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  const pipeLost = loop.createFuture<void>();
  protocol.pipeConnectionLost = function (fd: number, exc?: Error) {
    this.events.push(`pipe ${fd} lost${exc ? ` ${exc.name}` : ""}`);
    if (fd === 0) pipeLost.setResult();
  };
  const [transport] = await within(
    loop,
    loop.subprocessExec(() => protocol, "sleep", ["30"], {
      stdout: "null",
      stderr: "null",
    }),
  );
  const stdin = transport.getPipeTransport(0) as WriteTransport;
  // More than a pipe holds: a write stays in flight.
  stdin.write(new Uint8Array(1 << 20));
  await within(loop, sleep(0.1, undefined, { loop }));
  stdin.abort();
  await within(loop, pipeLost, 5);
  assertEquals(transport.getReturncode(), null);
  assertEquals(protocol.events, ["made", "pipe 0 lost"]);
  transport.kill();
  await within(loop, protocol.lost);
  assertEquals(protocol.events, ["made", "pipe 0 lost", "exited -9", "lost"]);
  loop.close();
});

Deno.test("subprocessExec() hands each chunk of output in a buffer of about its size, not a view of a 64 KiB one", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  const chunks: Uint8Array[] = [];
  protocol.pipeDataReceived = function (fd: number, data: Uint8Array) {
    chunks.push(data);
    this.output[fd] += text(data);
  };
  await within(
    loop,
    loop.subprocessExec(() => protocol, "sh", [
      "-c",
      "for i in 1 2 3; do printf x; sleep 0.02; done",
    ], { stdin: "null", stderr: "null" }),
  );
  await within(loop, protocol.lost);
  assertEquals(protocol.output[1], "xxx");
  // A protocol that keeps a child's output holds about what it wrote.
  for (const data of chunks) {
    assert(
      data.buffer.byteLength <= 2 * data.length,
      `${data.length} bytes in a buffer of ${data.buffer.byteLength}`,
    );
  }
  loop.close();
});

Deno.test("subprocessExec() fails its future when the program does not exist", async () => {
  const loop = new DenoEventLoop();
  await assertRejects(
    () =>
      within(
        loop,
        loop.subprocessExec(
          () => new SubprocessProtocol(),
          "tulip-no-such-program",
        ),
      ),
    Deno.errors.NotFound,
  );
  loop.close();
});

Deno.test("subprocessExec() passes env and cwd to the child", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  await within(
    loop,
    loop.subprocessShell(() => protocol, 'printf "%s %s" "$TULIP_X" "$PWD"', {
      env: { TULIP_X: "42" },
      cwd: "/",
      stdin: "null",
    }),
  );
  await within(loop, protocol.lost);
  assertEquals(protocol.output[1], "42 /");
  loop.close();
});

Deno.test("subprocessExec() checks its arguments before starting anything", () => {
  const loop = new DenoEventLoop();
  const make = () => new SubprocessProtocol();
  assertThrows(
    () => loop.subprocessExec(make, 42 as unknown as string),
    TypeError,
    "cmd must be a string",
  );
  assertThrows(
    () => loop.subprocessExec(make, "echo", [1 as unknown as string]),
    TypeError,
    "args must be an array of strings",
  );
  assertThrows(
    () => loop.subprocessExec(make, "echo", [], { stdout: "piped" as "pipe" }),
    RangeError,
    'stdout must be "pipe", "inherit" or "null", received "piped"',
  );
  assertThrows(
    () => loop.subprocessShell(make, null as unknown as string),
    TypeError,
  );
  assertThrows(
    () => loop.subprocessExec("make" as never, "echo"),
    TypeError,
    "Cannot start the subprocess: protocolFactory must be a function, received string",
  );
  assertThrows(
    () => loop.subprocessShell(undefined as never, "echo"),
    TypeError,
    "Cannot start the subprocess: protocolFactory must be a function, received undefined",
  );
  loop.close();
});

Deno.test("subprocessExec() fails with a TypeError that says so when the factory returns no protocol, and starts no process", async () => {
  const loop = new DenoEventLoop();
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => errors.push(context));
  const error = await within(
    loop,
    loop.subprocessExec(() => null as never, "true"),
  ).catch((e) => e);
  assertInstanceOf(error, TypeError);
  assertEquals(
    error.message,
    "Cannot start the subprocess: protocolFactory must return a protocol (an object with connectionMade()), received null",
  );
  await within(loop, loop.createTask(() => sleep(0.01)));
  assertEquals(errors, []);
  loop.close();
});

Deno.test("subprocessExec() and subprocessShell() refuse a NUL byte in the program, an argument, env or cwd at once, naming which (Python's ValueError: embedded null byte)", () => {
  const loop = new DenoEventLoop();
  const make = () => new SubprocessProtocol();
  const nul =
    "contains a NUL byte, which no program, argument or environment variable can hold";
  assertThrows(
    () => loop.subprocessExec(make, "ech\0o"),
    TypeError,
    `Cannot start the subprocess: cmd ${nul}, received "ech\\u0000o"`,
  );
  assertThrows(
    () => loop.subprocessExec(make, "echo", ["a", "b\0c"]),
    TypeError,
    `Cannot start the subprocess: args[1] ${nul}, received "b\\u0000c"`,
  );
  assertThrows(
    () => loop.subprocessExec(make, "echo", [], { env: { X: "1\0" } }),
    TypeError,
    `Cannot start the subprocess: env.X ${nul}`,
  );
  assertThrows(
    () => loop.subprocessExec(make, "echo", [], { env: { "X\0Y": "1" } }),
    TypeError,
    `Cannot start the subprocess: an env name ${nul}`,
  );
  assertThrows(
    () => loop.subprocessExec(make, "echo", [], { cwd: "/tmp\0" }),
    TypeError,
    `Cannot start the subprocess: cwd ${nul}`,
  );
  assertThrows(
    () => loop.subprocessExec(make, new URL("file:///bin/ec%00ho")),
    TypeError,
    `Cannot start the subprocess: cmd ${nul}, received "file:///bin/ec%00ho"`,
  );
  assertThrows(
    () =>
      loop.subprocessExec(make, "echo", [], { cwd: new URL("file:///a%00") }),
    TypeError,
    `Cannot start the subprocess: cwd ${nul}`,
  );
  assertThrows(
    () => loop.subprocessShell(make, "echo a\0b"),
    TypeError,
    `Cannot start the subprocess: cmd ${nul}, received "echo a\\u0000b"`,
  );
  loop.close();
});

Deno.test("subprocessExec() refusing a NUL byte shows no environment value (often a secret) and cuts a long argument, as other refusals do", () => {
  const loop = new DenoEventLoop();
  const make = () => new SubprocessProtocol();
  const secret = "s3cr3t-token";
  const env = assertThrows(
    () =>
      loop.subprocessExec(make, "echo", [], { env: { TOKEN: `${secret}\0` } }),
    TypeError,
    "Cannot start the subprocess: env.TOKEN contains a NUL byte",
  );
  assert(!env.message.includes(secret), env.message);
  const long = assertThrows(
    () => loop.subprocessExec(make, "echo", ["x".repeat(100_000) + "\0"]),
    TypeError,
    'args[0] contains a NUL byte, which no program, argument or environment variable can hold, received "xxx',
  );
  assert(long.message.length < 300, `${long.message.length} characters`);
  loop.close();
});

Deno.test("subprocessExec() closes the child when connectionMade() throws", async () => {
  const loop = new DenoEventLoop();
  loop.setExceptionHandler(() => {});
  const lost = loop.createFuture<void>();
  class Bad extends SubprocessProtocol {
    override connectionMade() {
      throw new Error("refused");
    }
    override connectionLost() {
      lost.setResult();
    }
  }
  const error = await within(
    loop,
    loop.subprocessExec(() => new Bad(), "sleep", ["30"]),
  ).catch((e) => e);
  assertInstanceOf(error, Error);
  assertEquals(error.message, "refused");
  await within(loop, lost);
  loop.close();
});

// ---- the proactor: pending work and completions after the loop closed ----

/** Waits, a millisecond at a time and for at most two seconds, for `ok()`. */
async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !ok(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

Deno.test("SubprocessTransport left open: the loop's close() frees the child's pipes, lets go of the child (not killed), calls nothing when it exits, and reports it", async () => {
  const loop = new DenoEventLoop();
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, context) => errors.push(context));
  const protocol = new Recorder(loop);
  const [transport] = await within(
    loop,
    loop.subprocessExec(() => protocol, "cat"),
  );
  loop.close();
  const child = transport.getExtraInfo("subprocess") as Deno.ChildProcess;
  // Still running: the loop let go of it (unref'd), so ref it to wait.
  child.ref();
  child.kill("SIGKILL");
  await child.status;
  const pipes = [0, 1, 2].map((fd) => transport.getPipeTransport(fd)!);
  await until(() => pipes.every((pipe) => pipe.isClosing()));
  for (const pipe of pipes) assert(pipe.isClosing());
  assertEquals(protocol.events, ["made"]);
  assertEquals(errors.map((e) => e.message), [
    "The event loop was closed with 1 open transport and 0 servers still open: close them before closing the loop",
  ]);
});

Deno.test("subprocessExec() counts the child's exit and its pipes' operations in the proactor's pending work", async () => {
  const loop = new DenoEventLoop();
  const proactor = new DenoProactor(loop);
  const protocol = new Recorder(loop);
  const [transport] = await within(
    loop,
    subprocessExec({ loop, proactor }, () => protocol, "cat"),
  );
  // The exit, the end of stdin, and the reads of stdout and stderr.
  assertEquals(proactor.pending, 4);
  (transport.getPipeTransport(0) as WriteTransport).write(bytes("x"));
  assertEquals(proactor.pending, 5);
  transport.close();
  await within(loop, protocol.lost);
  assertEquals(proactor.pending, 0);
  loop.close();
});

Deno.test("SubprocessTransport: a write to stdin after the child exited, before pipeConnectionLost(0), is dropped quietly as for a broken pipe, not refused", async () => {
  // The child's exit closes stdin as a broken pipe would (asyncio's write
  // pipe hears the reading end close): until the protocol is told, a
  // write is dropped, as every transport drops one after its connection
  // broke; once told, it is refused.
  const loop = new DenoEventLoop();
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, context) => errors.push(context));
  const protocol = new Recorder(loop);
  const outcomes: string[] = [];
  const tryWrite = () => {
    const stdin = protocol.transport!.getPipeTransport(0) as WriteTransport;
    try {
      stdin.write(bytes("too late"));
      outcomes.push("dropped");
    } catch (error) {
      outcomes.push((error as Error).name);
    }
  };
  protocol.processExited = function () {
    this.events.push(`exited ${this.transport!.getReturncode()}`);
    // Runs after the exit closed stdin, before pipeConnectionLost(0).
    loop.callSoon(tryWrite);
  };
  await within(
    loop,
    loop.subprocessExec(() => protocol, "true", [], {
      stdout: "null",
      stderr: "null",
    }),
  );
  await within(loop, protocol.lost);
  tryWrite();
  assertEquals(outcomes, ["dropped", "InvalidStateError"]);
  assertEquals(protocol.events, ["made", "exited 0", "pipe 0 lost", "lost"]);
  assertEquals(errors, []);
  loop.close();
});

Deno.test("subprocessExec() takes the program and cwd as file URLs, as Deno.Command does (asyncio's test_create_subprocess_exec_with_path takes path-like objects)", async () => {
  const loop = new DenoEventLoop();
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/hello.sh`;
    await Deno.writeTextFile(script, '#!/bin/sh\nprintf "%s" "$PWD"\n');
    await Deno.chmod(script, 0o755);
    const protocol = new Recorder(loop);
    const dirUrl = new URL(`file://${dir}/`);
    await within(
      loop,
      loop.subprocessExec(() => protocol, new URL("hello.sh", dirUrl), [], {
        cwd: dirUrl,
        stdin: "null",
      }),
    );
    await within(loop, protocol.lost);
    assertEquals(protocol.output[1], await Deno.realPath(dir));
    assertThrows(
      () => loop.subprocessExec(() => protocol, {} as never),
      TypeError,
      "Cannot start the subprocess: cmd must be a string or a URL, received object",
    );
    assertThrows(
      () =>
        loop.subprocessExec(() => protocol, "true", [], { cwd: 1 as never }),
      TypeError,
      "Cannot start the subprocess: cwd must be a string or a URL, received number",
    );
  } finally {
    loop.close();
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- asyncio's test_subprocess.py, at the protocol level ----
// tulip has no Process/communicate(): these feed stdin and gather the
// output through the SubprocessProtocol, as communicate() does inside.

/**
 * Starts `cmd` with `args` and a Recorder (changed by `setup` before the
 * child starts), and gathers what reaches the exception handler.
 */
async function started(
  loop: DenoEventLoop,
  cmd: string,
  args: string[],
  options?: Parameters<DenoEventLoop["subprocessExec"]>[3],
  setup: (protocol: Recorder) => void = () => {},
): Promise<[SubprocessTransport, Recorder, ExceptionContext[]]> {
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, context) => errors.push(context));
  const protocol = new Recorder(loop);
  setup(protocol);
  const [transport] = await within(
    loop,
    loop.subprocessExec(() => protocol, cmd, args, options),
  );
  return [transport, protocol, errors];
}

/** More than any pipe buffer holds (asyncio's PIPE_MAX_SIZE is 4 MiB + 1). */
const PIPE_MAX_SIZE = 4 * 1024 * 1024 + 1;

Deno.test("subprocessExec(): a child that ends without reading its input loses stdin with BrokenPipe, quietly (asyncio's test_stdin_broken_pipe)", async () => {
  const loop = new DenoEventLoop();
  const [transport, protocol, errors] = await started(loop, "sleep", ["0.1"], {
    stdout: "null",
    stderr: "null",
  });
  const stdin = transport.getPipeTransport(0) as WriteTransport;
  stdin.write(new Uint8Array(PIPE_MAX_SIZE));
  await within(loop, protocol.lost);
  assertEquals(protocol.events, [
    "made",
    ...(protocol.events[1] === "exited 0"
      ? ["exited 0", "pipe 0 lost BrokenPipe"]
      : ["pipe 0 lost BrokenPipe", "exited 0"]),
    "lost",
  ]);
  assertEquals(errors, []);
  loop.close();
});

Deno.test("subprocessExec(): input for a child that exits at once neither throws nor reaches the exception handler (asyncio's test_communicate_ignore_broken_pipe)", async () => {
  const loop = new DenoEventLoop();
  const [transport, protocol, errors] = await started(loop, "sh", [
    "-c",
    "exit 0",
  ]);
  const stdin = transport.getPipeTransport(0) as WriteTransport;
  stdin.write(new Uint8Array(PIPE_MAX_SIZE));
  stdin.writeEof();
  await within(loop, protocol.lost);
  assertEquals(transport.getReturncode(), 0);
  assertAsyncioOrder(
    protocol.events.map((e) =>
      e.replace(/^pipe 0 lost BrokenPipe$/, "pipe 0 lost")
    ),
    [0, 1, 2],
  );
  assertEquals(errors, []);
  loop.close();
});

Deno.test("subprocessExec(): megabytes in and out of cat at once, with empty input too (asyncio's test_communicate, test_empty_input)", async () => {
  const loop = new DenoEventLoop();
  const size = 8 * 1024 * 1024;
  const [transport, protocol, errors] = await started(loop, "cat", []);
  let received = 0;
  let wrong = 0;
  protocol.pipeDataReceived = (fd: number, data: Uint8Array) => {
    if (fd !== 1) return;
    for (let i = 0; i < data.length; i++) {
      if (data[i] !== ((received + i) & 0xff)) wrong++;
    }
    received += data.length;
  };
  const input = new Uint8Array(size).map((_, i) => i & 0xff);
  const stdin = transport.getPipeTransport(0) as WriteTransport;
  stdin.write(input);
  stdin.writeEof();
  await within(loop, protocol.lost);
  assertEquals([received, wrong, transport.getReturncode()], [size, 0, 0]);
  assertAsyncioOrder(protocol.events, [0, 1, 2]);

  const [empty, quiet] = await started(loop, "cat", []);
  const emptyIn = empty.getPipeTransport(0) as WriteTransport;
  emptyIn.write(new Uint8Array(0));
  emptyIn.writeEof();
  await within(loop, quiet.lost);
  assertEquals([quiet.output[1], empty.getReturncode()], ["", 0]);
  assertEquals(errors, []);
  loop.close();
});

Deno.test("subprocessExec(): every protocol event comes, each pipe's data before its loss, connectionLost last (asyncio's test_subprocess_protocol_events)", async () => {
  const loop = new DenoEventLoop();
  const order: string[] = [];
  const [, protocol] = await started(
    loop,
    "sh",
    ["-c", "printf stdout; printf stderr >&2"],
    { stdin: "null" },
    (protocol) => {
      protocol.pipeDataReceived = (fd, data) => {
        order.push(`data ${fd}`);
        protocol.output[fd] += text(data);
      };
      protocol.pipeConnectionLost = (fd) => order.push(`lost ${fd}`);
    },
  );
  await within(loop, protocol.lost);
  assertEquals(protocol.output, { 1: "stdout", 2: "stderr" });
  for (const fd of [1, 2]) {
    assertEquals(
      order.filter((e) => e.endsWith(` ${fd}`)),
      [`data ${fd}`, `lost ${fd}`],
    );
  }
  assertEquals(protocol.events, ["made", "exited 0", "lost"]);
  loop.close();
});

Deno.test("SubprocessTransport.kill() of a shell whose child holds stdout gives -9; connectionLost waits for the pipe (asyncio's test_kill_issue43884)", async () => {
  const loop = new DenoEventLoop();
  const [transport, protocol] = await started(loop, "sh", [
    "-c",
    "sleep 0.3; sleep 0.3",
  ], { stdin: "null", stderr: "null" });
  await within(loop, sleep(0.1, undefined, { loop }));
  transport.kill();
  await within(loop, protocol.lost);
  assertEquals(transport.getReturncode(), -9);
  assertEquals(protocol.events, ["made", "exited -9", "pipe 1 lost", "lost"]);
  loop.close();
});

Deno.test('SubprocessTransport.sendSignal("SIGHUP") gives -1 (asyncio\'s test_send_signal)', async () => {
  const loop = new DenoEventLoop();
  const ready = loop.createFuture<void>();
  const [transport, protocol] = await started(
    loop,
    "sh",
    ["-c", "trap - HUP; echo sleeping; exec sleep 30"],
    { stdin: "null", stderr: "null" },
    (protocol) => {
      protocol.pipeDataReceived = () => {
        if (!ready.done()) ready.setResult();
      };
    },
  );
  await within(loop, ready);
  transport.sendSignal("SIGHUP");
  await within(loop, protocol.lost);
  assertEquals(transport.getReturncode(), -1);
  loop.close();
});

Deno.test("subprocessExec(): ten children at once each give their own output (asyncio's test_subprocess_communicate_stdout)", async () => {
  const loop = new DenoEventLoop();
  const protocols = Array.from({ length: 10 }, () => new Recorder(loop));
  await within(
    loop,
    Promise.all(
      protocols.map((p, i) =>
        loop.subprocessExec(() => p, "echo", [`foo${i}`], { stdin: "null" })
      ),
    ),
  );
  await within(loop, Promise.all(protocols.map((p) => p.lost)));
  assertEquals(
    protocols.map((p) => p.output[1]),
    protocols.map((_, i) => `foo${i}\n`),
  );
  loop.close();
});

Deno.test("subprocessExec(): a pipeDataReceived() that throws goes to the exception handler and the output keeps coming, as asyncio calls it as a callback", async () => {
  // asyncio schedules pipe_data_received() with call_soon: an error in it
  // is reported and the pipe reads on. Closing the pipe instead would lose
  // the rest of the output (and kill a child that writes on with SIGPIPE).
  const loop = new DenoEventLoop();
  let calls = 0;
  const [transport, protocol, errors] = await started(
    loop,
    "sh",
    ["-c", "echo one; sleep 0.05; echo two"],
    { stdin: "null", stderr: "null" },
    (protocol) => {
      protocol.pipeDataReceived = (fd, data) => {
        protocol.output[fd] += text(data);
        if (calls++ === 0) throw new Error("bad handler");
      };
    },
  );
  await within(loop, protocol.lost);
  assertEquals(protocol.output[1], "one\ntwo\n");
  assertEquals(transport.getReturncode(), 0);
  assertAsyncioOrder(protocol.events, [1]);
  assertEquals(errors.map((e) => e.message), [
    "Exception in protocol.pipeDataReceived()",
  ]);
  assertEquals((errors[0].exception as Error).message, "bad handler");
  loop.close();
});

Deno.test("subprocessExec() cancelled before it is done kills the child, whose exit and loss still come to the protocol (asyncio's test_cancel_make_subprocess_transport_exec)", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  const starting = loop.subprocessExec(() => protocol, "sleep", ["30"], {
    stdin: "null",
    stdout: "null",
    stderr: "null",
  });
  starting.cancel();
  // Not 30 s: the child is killed, not left to run to its end.
  await within(loop, protocol.lost, 10);
  assertEquals(protocol.transport!.getReturncode(), -9);
  assertEquals(protocol.events, ["made", "exited -9", "lost"]);
  loop.close();
});

Deno.test("subprocessExec(): output read with stdout paused until after the child would have exited all arrives, before connectionLost (asyncio's test_read_stdout_after_process_exit)", async () => {
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  let received = 0;
  protocol.pipeDataReceived = (_fd, data) => {
    received += data.length;
  };
  // 256 KiB, more than the pipe holds: the child exits only once read.
  const [transport] = await within(
    loop,
    loop.subprocessShell(
      () => protocol,
      "head -c 262144 /dev/zero; exit 1",
      { stdin: "null", stderr: "null" },
    ),
  );
  const stdout = transport.getPipeTransport(1) as ReadTransport;
  stdout.pauseReading();
  await within(loop, loop.createTask(() => sleep(0.2)));
  assertEquals(protocol.events, ["made"]);
  stdout.resumeReading();
  await within(loop, protocol.lost);
  assertEquals(received, 262144);
  assertEquals(transport.getReturncode(), 1);
  assertAsyncioOrder(protocol.events, [1]);
  loop.close();
});

Deno.test("SubprocessTransport: once pipeConnectionLost(1) follows closing stdout's pipe transport, the child's next write to it fails (asyncio's test_subprocess_close_client_stream)", async () => {
  // asyncio closes the pipe before it calls pipe_connection_lost(); Deno
  // frees a pipe whose read is in flight only on its next turn.
  const loop = new DenoEventLoop();
  const protocol = new Recorder(loop);
  const stdoutLost = loop.createFuture<void>();
  protocol.pipeConnectionLost = function (fd, exc) {
    Recorder.prototype.pipeConnectionLost.call(this, fd, exc);
    if (fd === 1) stdoutLost.setResult();
  };
  // The shell dies of SIGPIPE at its first echo to a closed stdout.
  const [transport] = await within(
    loop,
    loop.subprocessShell(
      () => protocol,
      "read a; echo out:$a; read b; echo again; echo survived >&2",
    ),
  );
  const stdin = transport.getPipeTransport(0) as WriteTransport;
  stdin.write(bytes("one\n"));
  await within(
    loop,
    loop.createTask(async () => {
      while (protocol.output[1] !== "out:one\n") await sleep(0.01);
    }),
  );
  transport.getPipeTransport(1)!.close();
  await within(loop, stdoutLost);
  stdin.write(bytes("two\n"));
  await within(loop, protocol.lost);
  assertEquals(protocol.output, { 1: "out:one\n", 2: "" });
  assertEquals(transport.getReturncode(), -13);
  loop.close();
});
