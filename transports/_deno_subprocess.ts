// Child processes over Deno.Command(...).spawn(): a SubprocessTransport
// whose stdin is a WritePipeTransport and whose stdout and stderr are
// ReadPipeTransports, with asyncio's order of protocol calls.

import type { Future } from "../futures/future.ts";
import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import type {
  BaseProtocol,
  SubprocessProtocol,
} from "../protocols/protocol.ts";
import type {
  ReadTransport,
  SubprocessTransport,
  WriteTransport,
} from "./transport.ts";
import type { SchedulingLoop, SubprocessOptions } from "../loop/event_loop.ts";
import {
  callProtocol,
  checkProtocolFactory,
  ReadPipeTransport,
  reportLost,
  WritePipeTransport,
} from "./_deno_pipes.ts";
import { makeProtocol } from "../futures/_runtime.ts";
import type { DenoIo } from "./_deno_proactor.ts";
import type { Owned, Proactor } from "./_proactor.ts";

type Stdio = "pipe" | "inherit" | "null";

function checkStdio(name: string, value: unknown): Stdio {
  if (value === undefined) return "pipe";
  if (value !== "pipe" && value !== "inherit" && value !== "null") {
    throw new RangeError(
      `Cannot start the subprocess: ${name} must be "pipe", "inherit" or "null", received ${
        JSON.stringify(value)
      }`,
    );
  }
  return value;
}

/**
 * Refuses a string with a NUL byte, which the system's calls take as its
 * end (Deno would say "nul byte found in provided data" without naming
 * which string, or, for the program, that it was not found). The message
 * shows the value cut short, or not at all when `show` is false (an
 * environment variable's value, often a secret).
 */
function checkNoNul(name: string, value: string | URL, show = true): void {
  // A file URL's path holds one as %00.
  const nul = typeof value === "string"
    ? value.includes("\0")
    : value.pathname.includes("%00");
  if (!nul) return;
  throw new TypeError(
    `Cannot start the subprocess: ${name} contains a NUL byte, which no program, argument or environment variable can hold${
      show ? `, received ${formatReceived(String(value))}` : ""
    }`,
  );
}

function denoStdio(value: Stdio): "piped" | "inherit" | "null" {
  return value === "pipe" ? "piped" : value;
}

function checkOptions(options: SubprocessOptions | undefined): {
  stdin: Stdio;
  stdout: Stdio;
  stderr: Stdio;
} {
  if (
    options !== undefined && (typeof options !== "object" || options === null)
  ) {
    throw new TypeError(
      `Cannot start the subprocess: options must be an object, received ${typeof options}`,
    );
  }
  const cwd = options?.cwd;
  if (cwd !== undefined && typeof cwd !== "string" && !(cwd instanceof URL)) {
    throw new TypeError(
      `Cannot start the subprocess: cwd must be a string or a URL, received ${typeof cwd}`,
    );
  }
  if (cwd !== undefined) checkNoNul("cwd", cwd);
  const env: unknown = options?.env;
  if (env !== undefined) {
    if (typeof env !== "object" || env === null || Array.isArray(env)) {
      throw new TypeError(
        `Cannot start the subprocess: env must be an object of strings, received ${
          formatReceived(env)
        }`,
      );
    }
    for (const [name, value] of Object.entries(env)) {
      if (typeof value !== "string") {
        throw new TypeError(
          `Cannot start the subprocess: env.${name} must be a string, received ${
            formatReceived(value)
          }`,
        );
      }
      checkNoNul("an env name", name);
      checkNoNul(`env.${name}`, value, false);
    }
  }
  const clearEnv: unknown = options?.clearEnv;
  if (clearEnv !== undefined && typeof clearEnv !== "boolean") {
    throw new TypeError(
      `Cannot start the subprocess: clearEnv must be a boolean, received ${
        formatReceived(clearEnv)
      }`,
    );
  }
  return {
    stdin: checkStdio("stdin", options?.stdin),
    stdout: checkStdio("stdout", options?.stdout),
    stderr: checkStdio("stderr", options?.stderr),
  };
}

/** Deno reports a death by signal as 128 + its number; asyncio as -number. */
function returncodeOf(status: Deno.CommandStatus): number {
  if (status.signal !== null && status.code > 128) return 128 - status.code;
  return status.code;
}

interface Pipe {
  readonly transport: ReadPipeTransport | WritePipeTransport;
  disconnected: boolean;
}

/** The transport of one child process. */
class DenoSubprocessTransport implements SubprocessTransport {
  readonly #loop: SchedulingLoop;
  readonly #child: Deno.ChildProcess;
  readonly #pipes = new Map<number, Pipe>();
  #protocol: SubprocessProtocol;
  #returncode: number | null = null;
  #closed = false;
  #finished = false;
  readonly #proactor: Proactor<Deno.Conn, Deno.Listener>;
  // Registered with the proactor until connectionLost, so that closing
  // the loop releases the pipes and lets go of the child (which is not
  // killed, as asyncio does not kill it).
  readonly #owned: Owned = {
    release: () => {
      try {
        this.#child.unref();
      } catch {
        // Exited and reaped already: nothing holds the process.
      }
      for (const pipe of this.#pipes.values()) pipe.transport.release();
      return !this.#closed;
    },
  };

  constructor(
    io: DenoIo,
    protocol: SubprocessProtocol,
    child: Deno.ChildProcess,
    stdio: { stdin: Stdio; stdout: Stdio; stderr: Stdio },
  ) {
    this.#loop = io.loop;
    this.#proactor = io.proactor;
    this.#protocol = protocol;
    this.#child = child;
    if (stdio.stdin === "pipe") {
      const forward = {
        connectionMade() {},
        connectionLost: (exc?: Error) => this.#pipeLost(0, exc),
        pauseWriting: () => this.#protocol.pauseWriting(),
        resumeWriting: () => this.#protocol.resumeWriting(),
      } as BaseProtocol;
      this.#pipes.set(0, {
        transport: new WritePipeTransport(io, forward, child.stdin, {
          subprocess: child,
        }),
        disconnected: false,
      });
    }
    for (const fd of [1, 2] as const) {
      if ((fd === 1 ? stdio.stdout : stdio.stderr) !== "pipe") continue;
      const forward = {
        connectionMade() {},
        // As asyncio, which calls it from a callback: an error is reported
        // and the pipe reads on (closing it would lose the rest of the
        // output, and a child writing on would die of SIGPIPE).
        dataReceived: (data: Uint8Array) => {
          const protocol = this.#protocol;
          callProtocol(
            this.#loop,
            this,
            protocol,
            "protocol.pipeDataReceived()",
            () => protocol.pipeDataReceived(fd, data),
          );
        },
        eofReceived() {},
        connectionLost: (exc?: Error) => this.#pipeLost(fd, exc),
        pauseWriting() {},
        resumeWriting() {},
      };
      const stream = fd === 1 ? child.stdout : child.stderr;
      this.#pipes.set(fd, {
        transport: new ReadPipeTransport(io, forward, stream, {
          subprocess: child,
        }),
        disconnected: false,
      });
    }
    io.proactor.watch(
      child.status,
      io.proactor.bind<Deno.CommandStatus>({
        done: (status) => this.#exited(returncodeOf(status)),
        // Deno does not fail `status`; should it, count the child as gone.
        failed: () => this.#exited(-1),
        // The loop closed while the child ran: free its pipes, whose
        // operations may never settle now that it is gone.
        orphaned: () => {
          for (const pipe of this.#pipes.values()) pipe.transport.release();
        },
      }),
    );
    io.proactor.own(this.#owned, "transport");
  }

  /** Starts reading the child's output; called after `connectionMade`. */
  start(): void {
    for (const fd of [1, 2]) {
      const pipe = this.#pipes.get(fd);
      if (pipe !== undefined && !pipe.disconnected) {
        (pipe.transport as ReadPipeTransport).start();
      }
    }
  }

  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    return name === "subprocess" ? this.#child : defaultValue;
  }

  isClosing(): boolean {
    return this.#closed;
  }

  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol as SubprocessProtocol;
  }

  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  getPid(): number {
    return this.#child.pid;
  }

  getReturncode(): number | null {
    return this.#returncode;
  }

  getPipeTransport(fd: number): WriteTransport | ReadTransport | null {
    return this.#pipes.get(fd)?.transport ?? null;
  }

  sendSignal(signal: Deno.Signal): void {
    if (typeof signal !== "string") {
      throw new TypeError(
        `Cannot send a signal: it must be a name such as "SIGTERM", received ${typeof signal}`,
      );
    }
    // As asyncio: once connectionLost has come, there is no process left.
    if (this.#finished) {
      throw new InvalidStateError(
        `Cannot send a signal: the subprocess has exited and its transport has finished, received "${signal}"`,
      );
    }
    // As Python's Popen: a child known to have exited gets nothing.
    if (this.#returncode !== null) return;
    try {
      this.#child.kill(signal);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // The child exited and Deno knows before the loop does.
      if (/already terminated/i.test(message)) return;
      if (/invalid signal/i.test(message)) {
        throw new RangeError(
          `Cannot send a signal: unknown signal, received "${signal}"`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  terminate(): void {
    this.sendSignal("SIGTERM");
  }

  kill(): void {
    this.sendSignal("SIGKILL");
  }

  /**
   * Closes the pipes and kills the child if it still runs;
   * `connectionLost` follows once it has exited and every pipe is closed.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const pipe of this.#pipes.values()) pipe.transport.close();
    if (this.#returncode === null) this.sendSignal("SIGKILL");
  }

  #exited(returncode: number): void {
    this.#returncode = returncode;
    const protocol = this.#protocol;
    callProtocol(
      this.#loop,
      this,
      protocol,
      "protocol.processExited()",
      () => protocol.processExited(),
    );
    // Nobody reads the child's stdin any more: close it, as the kernel
    // tells asyncio's pipe transport when the child's end closes.
    const stdin = this.#pipes.get(0);
    if (stdin !== undefined && !stdin.disconnected) {
      (stdin.transport as WritePipeTransport).peerGone(
        new Deno.errors.BrokenPipe(
          "Cannot write to the subprocess: it has exited",
        ),
      );
    }
    this.#tryFinish();
  }

  #pipeLost(fd: number, exc: Error | undefined): void {
    const pipe = this.#pipes.get(fd);
    if (pipe === undefined || pipe.disconnected) return;
    pipe.disconnected = true;
    const protocol = this.#protocol;
    callProtocol(
      this.#loop,
      this,
      protocol,
      "protocol.pipeConnectionLost()",
      () => protocol.pipeConnectionLost(fd, exc),
    );
    this.#tryFinish();
  }

  #tryFinish(): void {
    if (this.#finished || this.#returncode === null) return;
    for (const pipe of this.#pipes.values()) {
      if (!pipe.disconnected) return;
    }
    // As asyncio, an exit is not a close(): isClosing() stays as it was.
    this.#finished = true;
    this.#proactor.disown(this.#owned);
    this.#loop.callSoon(() => {
      reportLost(this.#loop, this, this.#protocol, undefined);
    });
  }
}

/**
 * Starts `cmd` (a path or `file:` URL, or a name looked up in `PATH`) with
 * `args` and connects a `SubprocessProtocol` to it.
 */
export function subprocessExec<P extends SubprocessProtocol>(
  io: DenoIo,
  protocolFactory: () => P,
  cmd: string | URL,
  args: string[] = [],
  options?: SubprocessOptions,
): Future<[SubprocessTransport, P]> {
  checkProtocolFactory(protocolFactory, "start the subprocess");
  if (typeof cmd !== "string" && !(cmd instanceof URL)) {
    throw new TypeError(
      `Cannot start the subprocess: cmd must be a string or a URL, received ${typeof cmd}`,
    );
  }
  if (!Array.isArray(args) || args.some((a) => typeof a !== "string")) {
    throw new TypeError(
      `Cannot start the subprocess: args must be an array of strings, received ${
        Array.isArray(args) ? "an array with a non-string" : typeof args
      }`,
    );
  }
  checkNoNul("cmd", cmd);
  args.forEach((arg, i) => checkNoNul(`args[${i}]`, arg));
  const stdio = checkOptions(options);
  const loop = io.loop;
  const future = loop.createFuture<[SubprocessTransport, P]>();
  let protocol: P;
  let child: Deno.ChildProcess;
  try {
    protocol = makeProtocol(protocolFactory, "start the subprocess");
    child = new Deno.Command(cmd, {
      args,
      cwd: options?.cwd,
      env: options?.env,
      clearEnv: options?.clearEnv,
      stdin: denoStdio(stdio.stdin),
      stdout: denoStdio(stdio.stdout),
      stderr: denoStdio(stdio.stderr),
    }).spawn();
  } catch (error) {
    future.setException(error);
    return future;
  }
  const transport = new DenoSubprocessTransport(io, protocol, child, stdio);
  // Scheduled before the child's exit can be, so connectionMade comes first.
  loop.callSoon(() => {
    try {
      protocol.connectionMade(transport);
    } catch (error) {
      transport.close();
      if (!future.done()) future.setException(error);
      return;
    }
    transport.start();
    if (!future.done()) future.setResult([transport, protocol]);
    else transport.close();
  });
  return future;
}

/** Starts `cmd` through the shell (`/bin/sh -c`, or `cmd.exe /c`). */
export function subprocessShell<P extends SubprocessProtocol>(
  io: DenoIo,
  protocolFactory: () => P,
  cmd: string,
  options?: SubprocessOptions,
): Future<[SubprocessTransport, P]> {
  checkProtocolFactory(protocolFactory, "start the subprocess");
  if (typeof cmd !== "string") {
    throw new TypeError(
      `Cannot start the subprocess: cmd must be a string, received ${typeof cmd}`,
    );
  }
  checkNoNul("cmd", cmd);
  if (Deno.build.os === "windows") {
    return subprocessExec(
      io,
      protocolFactory,
      "cmd.exe",
      ["/d", "/s", "/c", cmd],
      options,
    );
  }
  return subprocessExec(io, protocolFactory, "/bin/sh", ["-c", cmd], options);
}
