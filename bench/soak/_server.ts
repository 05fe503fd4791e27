/**
 * The server under test: a child Deno process running one of
 * `servers/*.ts`, with its memory and file descriptors read from `/proc`.
 *
 * @module
 */

import {
  delay,
  drainStdout,
  fdCount,
  type Proc,
  rssKiB,
  spawn,
  waitForLine,
  withTimeout,
} from "../harness/_proc.ts";

/** Which script of `servers/` to run. */
export type ServerKind = "http" | "jsonrpc" | "echo" | "deno_serve";

const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** A running server script and what can be read about it. */
export class ServerUnderTest {
  readonly kind: ServerKind;
  readonly port: number;
  readonly #proc: Proc;
  readonly #log: { bytes: number };

  private constructor(
    kind: ServerKind,
    port: number,
    proc: Proc,
    log: { bytes: number },
  ) {
    this.kind = kind;
    this.port = port;
    this.#proc = proc;
    this.#log = log;
  }

  /**
   * Starts `servers/<kind>.ts` with `--name=value` arguments and waits
   * for its port.
   */
  static async start(
    kind: ServerKind,
    args: Record<string, number> = {},
  ): Promise<ServerUnderTest> {
    const script = new URL(`./servers/${kind}.ts`, import.meta.url).pathname;
    const log = { bytes: 0 };
    const proc = spawn([
      Deno.execPath(),
      "run",
      "--allow-net=127.0.0.1",
      "--no-check",
      "--v8-flags=--expose-gc",
      `--config=${CONFIG}`,
      script,
      "--port=0",
      ...Object.entries(args).map(([k, v]) => `--${k}=${v}`),
    ], { onStderr: (line) => log.bytes += line.length + 1 });
    const line = await withTimeout(
      waitForLine(proc, /^listening \d+$/),
      30,
      `the ${kind} server`,
    );
    return new ServerUnderTest(kind, Number(line.split(" ")[1]), proc, log);
  }

  /** The child's pid. */
  get pid(): number {
    return this.#proc.pid;
  }

  /** Bytes the server wrote to stderr (its log) so far. */
  get stderrBytes(): number {
    return this.#log.bytes;
  }

  /** The last lines of its stderr, for error messages. */
  get stderrTail(): string {
    return this.#proc.errTail.slice(-5).join("\n");
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.#proc.exited;
  }

  /** The exit status, once it has exited. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#proc.status;
  }

  /** Resident memory in KiB. */
  rssKiB(): number {
    return rssKiB(this.pid);
  }

  /**
   * The memory JS objects hold after a full garbage collection — the heap
   * in use plus array buffers outside it — in KiB: unlike RSS, it does
   * not keep the pages a busy moment grew.
   */
  async heapKiB(): Promise<number> {
    return (await this.memory()).jsKiB;
  }

  /**
   * After a full garbage collection: what JS objects hold (see
   * `heapKiB`) and the heap V8 keeps committed, in KiB; V8's young
   * generation before it, in KiB; the requests the server's handler was
   * called with (see `servers/_serve.ts`'s `heapLine`).
   */
  async memory(): Promise<
    { jsKiB: number; committedKiB: number; youngKiB: number; handled: number }
  > {
    Deno.kill(this.pid, "SIGUSR2");
    const line = await withTimeout(this.nextLine(), 10, "the heap figure");
    const m = /^heap (\d+) (\d+) (\d+) (\d+)$/.exec(line ?? "");
    if (m === null) throw new Error(`the server said "${line}", not its heap`);
    return {
      jsKiB: Number(m[1]) / 1024,
      committedKiB: Number(m[2]) / 1024,
      youngKiB: Number(m[3]) / 1024,
      handled: Number(m[4]),
    };
  }

  /** Open file descriptors. */
  fds(): number {
    return fdCount(this.pid);
  }

  /**
   * Waits until the fd count is at most `target` or `seconds` pass;
   * returns the last count.
   */
  async fdsSettle(target: number, seconds: number): Promise<number> {
    const end = performance.now() + seconds * 1000;
    let n = this.fds();
    while (n > target && performance.now() < end) {
      await delay(50);
      n = this.fds();
    }
    return n;
  }

  /**
   * Samples RSS every 50 ms until `stop()`; past `limitKiB` over the
   * starting RSS it kills the server (SIGKILL) so that a runaway server
   * cannot take the machine's memory, and `tripped` says so.
   */
  watch(limitKiB: number): RssWatch {
    return new RssWatch(this, limitKiB);
  }

  /** Sends SIGTERM (the scripts shut down gracefully on it). */
  terminate(): void {
    if (!this.exited) Deno.kill(this.pid, "SIGTERM");
  }

  /** Sends SIGKILL. */
  kill(): void {
    try {
      if (!this.exited) Deno.kill(this.pid, "SIGKILL");
    } catch {
      // It exited meanwhile.
    }
  }

  /** Reads the rest of stdout in the background. */
  drainStdout(): void {
    drainStdout(this.#proc);
  }

  /** The next line of stdout, or null at its end. */
  async nextLine(): Promise<string | null> {
    const r = await this.#proc.out.next();
    return r.done ? null : r.value;
  }

  /** Stops the server: SIGKILL (the suite measures nothing after it). */
  async stop(): Promise<void> {
    this.kill();
    await this.#proc.status;
  }
}

/** A running RSS sampler with a kill switch; see `ServerUnderTest.watch`. */
export class RssWatch {
  readonly startKiB: number;
  #peakKiB: number;
  #tripped = false;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(server: ServerUnderTest, limitKiB: number) {
    this.startKiB = server.rssKiB();
    this.#peakKiB = this.startKiB;
    this.#timer = setInterval(() => {
      if (server.exited) return;
      let rss: number;
      try {
        rss = server.rssKiB();
      } catch {
        return; // exiting
      }
      if (rss > this.#peakKiB) this.#peakKiB = rss;
      if (rss - this.startKiB > limitKiB && !this.#tripped) {
        this.#tripped = true;
        server.kill();
      }
    }, 50);
  }

  /** The highest RSS seen, in KiB. */
  get peakKiB(): number {
    return this.#peakKiB;
  }

  /** The growth from the start to the peak, in KiB. */
  get growthKiB(): number {
    return this.#peakKiB - this.startKiB;
  }

  /** Whether the limit was passed and the server killed. */
  get tripped(): boolean {
    return this.#tripped;
  }

  /** Stops sampling. */
  stop(): void {
    clearInterval(this.#timer);
  }
}
