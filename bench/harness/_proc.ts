/**
 * Process plumbing for the harness: spawning with line-wise stdout and a
 * stderr tail, stopping by pid, timeouts, and `/proc` readings.
 *
 * Private to the benchmarks: `bench/harness/run.ts` and the soak suite
 * (`bench/soak/run.ts`).
 *
 * @module
 */

/** A child process, with its stdout as lines and the tail of its stderr. */
export interface Proc {
  readonly pid: number;
  readonly child: Deno.ChildProcess;
  readonly out: AsyncIterator<string>;
  readonly errTail: string[];
  readonly status: Promise<Deno.CommandStatus>;
  exited: boolean;
}

/** Every process started here and not yet seen to exit, by pid. */
const live = new Map<number, Proc>();

async function* lines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    for (let nl = rest.indexOf("\n"); nl >= 0; nl = rest.indexOf("\n")) {
      yield rest.slice(0, nl);
      rest = rest.slice(nl + 1);
    }
  }
  if (rest !== "") yield rest;
}

/**
 * Starts `argv`; `onStderr` sees each stderr line as it arrives (the last
 * 40 are kept for error messages).
 */
export function spawn(
  argv: string[],
  opts: { stdin?: "piped" | "null"; onStderr?: (line: string) => void } = {},
): Proc {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: opts.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errTail: string[] = [];
  const proc: Proc = {
    pid: child.pid,
    child,
    out: lines(child.stdout)[Symbol.asyncIterator](),
    errTail,
    status: child.status,
    exited: false,
  };
  live.set(proc.pid, proc);
  child.status.then(() => {
    proc.exited = true;
    live.delete(proc.pid);
  });
  (async () => {
    for await (const line of lines(child.stderr)) {
      opts.onStderr?.(line);
      errTail.push(line);
      if (errTail.length > 40) errTail.shift();
    }
  })();
  return proc;
}

/** Reads stdout until a line matches; throws if the process exits first. */
export async function waitForLine(p: Proc, re: RegExp): Promise<string> {
  for (;;) {
    const r = await p.out.next();
    if (r.done) {
      const st = await p.status;
      await delay(50); // let the stderr reader catch up
      throw new Error(
        `exited with code ${st.code}${st.signal ? ` (${st.signal})` : ""}` +
          tailNote(p),
      );
    }
    if (re.test(r.value)) return r.value;
  }
}

/** Reads the rest of stdout in the background so the pipe never fills. */
export function drainStdout(p: Proc): void {
  (async () => {
    for (;;) if ((await p.out.next()).done) break;
  })();
}

export function tailNote(p: Proc): string {
  const interesting = p.errTail.filter((l) => l.trim() !== "");
  const err = interesting.find((l) => /error/i.test(l));
  const pick = err ?? interesting.at(-1);
  return pick ? `: ${stripAnsi(pick).trim().slice(0, 300)}` : "";
}

export function stripAnsi(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, "");
}

/** Stops a process by its pid: SIGTERM, then SIGKILL after 3 s. */
export async function stop(p: Proc): Promise<void> {
  if (!p.exited) {
    try {
      Deno.kill(p.pid, "SIGTERM");
    } catch {
      // It exited meanwhile.
    }
    const exited = await Promise.race([
      p.status.then(() => true),
      delay(3000).then(() => false),
    ]);
    if (!exited && !p.exited) {
      try {
        Deno.kill(p.pid, "SIGKILL");
      } catch {
        // It exited meanwhile.
      }
    }
  }
  await p.status;
  live.delete(p.pid);
}

export function killAll(): void {
  for (const p of live.values()) {
    if (p.exited) continue;
    try {
      Deno.kill(p.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function withTimeout<T>(
  p: Promise<T>,
  seconds: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer within ${seconds} s`)),
      seconds * 1000,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Runs a command to completion; its stdout, or null if it failed. */
export async function capture(argv: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).output();
    if (!out.success) return null;
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return null;
  }
}

export function onPath(name: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return true;
    } catch {
      // Not here.
    }
  }
  return false;
}

// ---------------------------------------------------------------------------
// /proc readings

/**
 * User plus system CPU time of a process, all its threads, in clock ticks
 * (`getconf CLK_TCK` of them per second).
 */
export function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after "(comm)": state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

export function procStatus(pid: number, key: string): string {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const line = status.split("\n").find((l) => l.startsWith(`${key}:`));
  if (line === undefined) throw new Error(`no ${key} in /proc/${pid}/status`);
  return line.slice(key.length + 1).trim();
}

/** Resident set size in KiB. */
export function rssKiB(pid: number): number {
  return parseInt(procStatus(pid, "VmRSS"));
}

/** Open file descriptors of a process (sockets, pipes, files). */
export function fdCount(pid: number): number {
  let n = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
  return n;
}
