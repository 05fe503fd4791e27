/**
 * The side-by-side benchmark harness: tulip's servers against raw Deno,
 * Node, CPython asyncio (stock loop and uvloop) and a C epoll server, on
 * this machine, under the same load.
 *
 * ```sh
 * deno run -A bench/harness/run.ts [--quick] [--only name,...] [--workload echo|bulk|idle|http|all]
 * ```
 *
 * Other flags: `--runs N` (repeats per server), `--duration S` and
 * `--warmup S` (seconds per measurement), `--idle-connections N`, `--list`
 * (print the server names and exit), `--help`.
 *
 * What it does, per workload and per run (servers in a rotating order):
 * start the server pinned to core 1, wait for its `listening` line, drive
 * it from a client pinned to core 0, read the server's CPU time from
 * `/proc/<pid>/stat` around the measured window, stop the server by pid.
 * It prints markdown tables of the medians and writes
 * `bench/harness/results/<timestamp>.json`, `results/latest.json` and one
 * SVG bar chart per workload. See `bench/harness/README.md`.
 *
 * @module
 */

import {
  capture,
  cpuTicks,
  delay,
  drainStdout,
  killAll,
  onPath,
  type Proc,
  procStatus,
  rssKiB,
  spawn,
  stop,
  stripAnsi,
  tailNote,
  waitForLine,
  withTimeout,
} from "./_proc.ts";
import {
  type Entry,
  type Family,
  fmt,
  markdown,
  type Metrics,
  type MetricSpec,
  type Sample,
  summarise,
  svgChart,
  type WorkloadResult,
} from "./_report.ts";

// ---------------------------------------------------------------------------
// Paths and constants

const HERE = new URL(".", import.meta.url).pathname;
const REPO = new URL("../../", import.meta.url).pathname;
const BUILD = `${HERE}build/`;
const SERVERS = `${HERE}servers/`;
const RESULTS = `${HERE}results/`;
const CLIENT = `${BUILD}echo_client`;
const PYTHON = "/usr/bin/python3";
const HOST = "127.0.0.1";
const CLIENT_CPU = "0";
const SERVER_CPU = "1";
const NOFILE = 65536;
const START_TIMEOUT = 30;
/** Held while a session measures, so two sessions never share the cores. */
const LOCK = "/tmp/tulip-bench-harness.lock";

type Workload = "echo" | "bulk" | "idle" | "http";
const WORKLOADS: readonly Workload[] = ["echo", "bulk", "idle", "http"];

/** What a server needs beyond Deno, gcc and taskset. */
type Need = "node" | "python" | "uvloop";

/** One server under test. */
interface ServerDef {
  /** The name used in tables, charts and `--only`. */
  name: string;
  /** The implementation family; it picks the bar colour. */
  family: Family;
  /** Echo servers run the echo, bulk and idle workloads; HTTP servers http. */
  kind: "echo" | "http";
  /** The command line, given the port. */
  argv(port: number): string[];
  needs?: Need[];
}

function denoServer(file: string, ...args: string[]) {
  return (port: number) => [
    Deno.execPath(),
    "run",
    "-A",
    `${SERVERS}${file}`,
    String(port),
    ...args,
  ];
}

function pythonServer(file: string, ...args: string[]) {
  return (port: number) => [
    PYTHON,
    `${SERVERS}${file}`,
    String(port),
    ...args,
  ];
}

const SERVER_DEFS: readonly ServerDef[] = [
  {
    name: "tulip-protocol",
    family: "tulip",
    kind: "echo",
    argv: denoServer("tulip_echo.ts", "protocol"),
  },
  {
    name: "tulip-buffered",
    family: "tulip",
    kind: "echo",
    argv: denoServer("tulip_echo.ts", "buffered"),
  },
  {
    name: "tulip-streams",
    family: "tulip",
    kind: "echo",
    argv: denoServer("tulip_echo.ts", "streams"),
  },
  {
    name: "raw-deno",
    family: "deno",
    kind: "echo",
    argv: denoServer("raw_deno_echo.ts"),
  },
  {
    name: "node",
    family: "node",
    kind: "echo",
    argv: (port) => ["node", `${SERVERS}node_echo.mjs`, String(port)],
    needs: ["node"],
  },
  {
    name: "asyncio-protocol",
    family: "asyncio",
    kind: "echo",
    argv: pythonServer("asyncio_echo.py", "protocol"),
    needs: ["python"],
  },
  {
    name: "asyncio-streams",
    family: "asyncio",
    kind: "echo",
    argv: pythonServer("asyncio_echo.py", "streams"),
    needs: ["python"],
  },
  {
    name: "uvloop-protocol",
    family: "uvloop",
    kind: "echo",
    argv: pythonServer("asyncio_echo.py", "protocol", "--uvloop"),
    needs: ["python", "uvloop"],
  },
  {
    name: "uvloop-streams",
    family: "uvloop",
    kind: "echo",
    argv: pythonServer("asyncio_echo.py", "streams", "--uvloop"),
    needs: ["python", "uvloop"],
  },
  {
    name: "c-epoll",
    family: "c",
    kind: "echo",
    argv: (port) => [`${BUILD}c_epoll_echo`, String(port)],
  },
  {
    name: "tulip-http",
    family: "tulip",
    kind: "http",
    argv: denoServer("tulip_http.ts"),
  },
  {
    name: "tulip-fixed-http",
    family: "tulip",
    kind: "http",
    argv: denoServer("tulip_fixed_http.ts"),
  },
  {
    name: "deno-serve",
    family: "deno",
    kind: "http",
    argv: denoServer("deno_serve_http.ts"),
  },
  {
    name: "raw-deno-http",
    family: "deno",
    kind: "http",
    argv: denoServer("raw_deno_http.ts"),
  },
  {
    name: "node-http",
    family: "node",
    kind: "http",
    argv: (port) => ["node", `${SERVERS}node_http.mjs`, String(port)],
    needs: ["node"],
  },
  {
    name: "asyncio-http",
    family: "asyncio",
    kind: "http",
    argv: pythonServer("asyncio_http.py"),
    needs: ["python"],
  },
  {
    name: "uvloop-http",
    family: "uvloop",
    kind: "http",
    argv: pythonServer("asyncio_http.py", "--uvloop"),
    needs: ["python", "uvloop"],
  },
];

// ---------------------------------------------------------------------------
// Workloads and their metrics

interface WorkloadSpec extends Metrics {
  id: Workload;
  title: string;
  /** One line on what is measured, for the table and the chart. */
  describe(s: Settings): string;
  kind: "echo" | "http";
}

const REQ_PER_S: MetricSpec = {
  key: "req_per_s",
  label: "req/s",
  digits: 0,
  better: "higher",
};
const CPU_US_PER_REQ: MetricSpec = {
  key: "cpu_us_per_req",
  label: "server CPU µs/req",
  digits: 2,
  better: "lower",
};
const CPU_PCT: MetricSpec = {
  key: "server_cpu_pct",
  label: "server CPU %",
  digits: 0,
  better: "lower",
};

const WORKLOAD_SPECS: Record<Workload, WorkloadSpec> = {
  echo: {
    id: "echo",
    title: "TCP echo, 100-byte ping-pong",
    describe: (s) =>
      `${s.connections} connections, ${s.size}-byte messages, ` +
      `${s.duration} s measured after ${s.warmup} s warm-up, ` +
      `median of ${s.runs} runs`,
    kind: "echo",
    primary: REQ_PER_S,
    secondary: [CPU_US_PER_REQ, CPU_PCT],
    chart: ["req_per_s", "cpu_us_per_req"],
  },
  bulk: {
    id: "bulk",
    title: "TCP echo, 64 KiB messages",
    describe: (s) =>
      `${s.connections} connections, ${s.size / 1024} KiB messages, ` +
      `${s.duration} s measured after ${s.warmup} s warm-up, ` +
      `median of ${s.runs} runs; GB/s counts echoed bytes one way`,
    kind: "echo",
    primary: { key: "gb_per_s", label: "GB/s", digits: 3, better: "higher" },
    secondary: [
      {
        key: "cpu_us_per_req",
        label: "server CPU µs/64 KiB msg",
        digits: 1,
        better: "lower",
      },
      CPU_PCT,
    ],
    chart: ["gb_per_s", "cpu_us_per_req"],
  },
  idle: {
    id: "idle",
    title: "Memory per idle connection",
    describe: (s) =>
      `${s.connections} idle connections (one 1-byte echo each), ` +
      `server VmRSS after minus before, median of ${s.runs} runs`,
    kind: "echo",
    primary: {
      key: "kib_per_conn",
      label: "KiB/idle conn",
      digits: 2,
      better: "lower",
    },
    secondary: [
      {
        key: "rss_before_mib",
        label: "RSS before (MiB)",
        digits: 1,
        better: "lower",
      },
      {
        key: "rss_after_mib",
        label: "RSS after (MiB)",
        digits: 1,
        better: "lower",
      },
    ],
    chart: ["kib_per_conn"],
  },
  http: {
    id: "http",
    title: "HTTP/1.1 keep-alive, 13-byte body (wrk)",
    describe: (s) =>
      `wrk -t1 -c${s.connections}, ${s.duration} s measured after ` +
      `${s.warmup} s warm-up, median of ${s.runs} runs`,
    kind: "http",
    primary: REQ_PER_S,
    secondary: [CPU_US_PER_REQ, CPU_PCT],
    chart: ["req_per_s", "cpu_us_per_req"],
  },
};

/** How one workload is run. */
interface Settings {
  runs: number;
  /** Measured seconds (whole seconds for wrk). */
  duration: number;
  warmup: number;
  connections: number;
  /** Message size in bytes (echo workloads). */
  size: number;
}

function settingsFor(w: Workload, opts: Options): Settings {
  const q = opts.quick;
  const base: Record<Workload, Settings> = {
    echo: {
      runs: q ? 2 : 5,
      duration: q ? 1 : 3,
      warmup: q ? 0.5 : 1,
      connections: 32,
      size: 100,
    },
    bulk: {
      runs: q ? 2 : 5,
      duration: q ? 1 : 3,
      warmup: q ? 0.5 : 1,
      connections: 8,
      size: 64 * 1024,
    },
    idle: {
      runs: q ? 1 : 3,
      duration: 0,
      warmup: 0,
      connections: opts.idleConnections,
      size: 1,
    },
    http: {
      runs: q ? 2 : 5,
      duration: q ? 1 : 3,
      warmup: 1,
      connections: 64,
      size: 0,
    },
  };
  const s = base[w];
  if (opts.runs !== undefined) s.runs = opts.runs;
  if (opts.duration !== undefined && w !== "idle") s.duration = opts.duration;
  if (opts.warmup !== undefined && w !== "idle") s.warmup = opts.warmup;
  if (w === "http") {
    // wrk takes whole seconds only.
    s.duration = Math.max(1, Math.ceil(s.duration));
    s.warmup = Math.max(1, Math.ceil(s.warmup));
  }
  return s;
}

// ---------------------------------------------------------------------------
// Command line

interface Options {
  quick: boolean;
  only: string[] | null;
  workloads: Workload[];
  runs?: number;
  duration?: number;
  warmup?: number;
  idleConnections: number;
  list: boolean;
  /** Re-print and re-chart a results file instead of running. */
  report?: string;
}

const USAGE =
  `usage: deno run -A bench/harness/run.ts [--quick] [--only name,...]
         [--workload echo|bulk|idle|http|all[,...]] [--runs N]
         [--duration S] [--warmup S] [--idle-connections N] [--list]
         [--report results/FILE.json]

--only takes server names or families: "tulip" selects every tulip-*
server, "node" selects node and node-http. --report re-prints the tables
and redraws the charts of a results file without running anything.`;

function parseArgs(args: string[]): Options {
  const opts: Options = {
    quick: false,
    only: null,
    workloads: [...WORKLOADS],
    idleConnections: 5000,
    list: false,
  };
  const value = (i: number, flag: string): string => {
    const v = args[i + 1];
    if (v === undefined) usageError(`Missing value after ${flag}`);
    return v;
  };
  const positive = (v: string, flag: string): number => {
    const n = Number(v);
    if (!(n > 0)) usageError(`${flag} needs a positive number, got "${v}"`);
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    let arg = args[i];
    let inline: string | undefined;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const take = (): string => inline ?? value(i++, arg);
    switch (arg) {
      case "--quick":
        opts.quick = true;
        break;
      case "--only":
        opts.only = take().split(",").map((s) => s.trim()).filter(Boolean);
        break;
      case "--workload": {
        const names = take().split(",").map((s) => s.trim());
        if (names.includes("all")) {
          opts.workloads = [...WORKLOADS];
        } else {
          for (const n of names) {
            if (!WORKLOADS.includes(n as Workload)) {
              usageError(`Unknown workload "${n}"`);
            }
          }
          opts.workloads = WORKLOADS.filter((w) => names.includes(w));
        }
        break;
      }
      case "--runs":
        opts.runs = Math.round(positive(take(), arg));
        break;
      case "--duration":
        opts.duration = positive(take(), arg);
        break;
      case "--warmup":
        opts.warmup = Number(take());
        if (!(opts.warmup >= 0)) usageError("--warmup needs a number >= 0");
        break;
      case "--idle-connections":
        opts.idleConnections = Math.round(positive(take(), arg));
        break;
      case "--list":
        opts.list = true;
        break;
      case "--report":
        opts.report = take();
        break;
      case "--help":
      case "-h":
        console.log(USAGE);
        Deno.exit(0);
        break;
      default:
        usageError(`Unknown argument "${args[i]}"`);
    }
  }
  return opts;
}

function usageError(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  Deno.exit(2);
}

/** Whether `--only` picks this server (by name or by "family-" prefix). */
function selected(def: ServerDef, only: string[] | null): boolean {
  if (only === null) return true;
  return only.some((t) => def.name === t || def.name.startsWith(`${t}-`));
}

// ---------------------------------------------------------------------------
// Servers

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`). */
let clockTicks = 100;

/** User plus system CPU time of a process (all threads), in seconds. */
function cpuSeconds(pid: number): number {
  return cpuTicks(pid) / clockTicks;
}

/** A started server: its process and what /proc says it is. */
interface Running {
  proc: Proc;
  port: number;
  comm: string;
  cpus: string;
}

function freePort(): number {
  const l = Deno.listen({ hostname: HOST, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Starts a server pinned to the server core with a raised fd limit. The
 * wrappers `exec`, so the pid we hold is the server itself.
 */
async function startServer(def: ServerDef): Promise<Running> {
  const port = freePort();
  const wrapper =
    `ulimit -n ${NOFILE} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; ` +
    `exec taskset -c ${SERVER_CPU} "$@"`;
  const proc = spawn(["bash", "-c", wrapper, "bash", ...def.argv(port)]);
  try {
    await withTimeout(
      waitForLine(proc, /^listening\b/i),
      START_TIMEOUT,
      "waiting for the listening line",
    );
    drainStdout(proc);
    const comm = Deno.readTextFileSync(`/proc/${proc.pid}/comm`).trim();
    if (comm === "bash" || comm === "taskset") {
      throw new Error(`pid ${proc.pid} is still the ${comm} wrapper`);
    }
    return {
      proc,
      port,
      comm,
      cpus: procStatus(proc.pid, "Cpus_allowed_list"),
    };
  } catch (e) {
    await stop(proc);
    throw e;
  }
}

// ---------------------------------------------------------------------------
// Measurements

/** One ping-pong run of echo_client against a running server. */
async function measureEcho(srv: Running, s: Settings): Promise<Sample> {
  const pid = srv.proc.pid;
  let cpu0: number | undefined;
  let cpuError: unknown;
  const client = spawn(
    [
      "taskset",
      "-c",
      CLIENT_CPU,
      CLIENT,
      HOST,
      String(srv.port),
      String(s.connections),
      String(s.size),
      String(s.duration),
      String(s.warmup),
    ],
    {
      onStderr: (line) => {
        if (line !== "measuring") return;
        try {
          cpu0 = cpuSeconds(pid);
        } catch (e) {
          cpuError = e;
        }
      },
    },
  );
  try {
    const line = await withTimeout(
      waitForLine(client, /^\{/),
      s.warmup + s.duration + 30,
      "echo_client",
    );
    const cpu1 = cpuSeconds(pid);
    const st = await client.status;
    if (!st.success) throw new Error(`echo_client failed${tailNote(client)}`);
    if (cpuError !== undefined) throw cpuError;
    if (cpu0 === undefined) throw new Error("echo_client never said measuring");
    const r = JSON.parse(line);
    if (r.requests <= 0) throw new Error("no round trip completed");
    const cpu = cpu1 - cpu0;
    return {
      requests: r.requests,
      seconds: r.seconds,
      req_per_s: r.req_per_s,
      bytes_per_s: r.bytes_per_s,
      gb_per_s: r.bytes_per_s / 1e9,
      server_cpu_s: cpu,
      cpu_us_per_req: (cpu * 1e6) / r.requests,
      server_cpu_pct: (100 * cpu) / r.seconds,
    };
  } finally {
    await stop(client);
  }
}

/** Opens `n` idle connections; resolves once all have been echoed once. */
async function hold(port: number, n: number): Promise<Proc> {
  const client = spawn(
    [
      "taskset",
      "-c",
      CLIENT_CPU,
      CLIENT,
      "--hold",
      String(n),
      HOST,
      String(port),
    ],
    { stdin: "piped" },
  );
  try {
    await withTimeout(
      waitForLine(client, /^ready\b/),
      180,
      "echo_client --hold",
    );
    drainStdout(client);
    return client;
  } catch (e) {
    await release(client);
    throw e;
  }
}

/** Lets a holding client go: close its stdin, then stop it. */
async function release(client: Proc): Promise<void> {
  try {
    await client.child.stdin.close();
  } catch {
    // Already closed.
  }
  await Promise.race([client.status, delay(5000)]);
  await stop(client);
}

async function measureIdle(srv: Running, s: Settings): Promise<Sample> {
  const pid = srv.proc.pid;
  // Warm the accept and read paths first, so the baseline has them.
  await release(await hold(srv.port, 50));
  await delay(500);
  const before = rssKiB(pid);
  const client = await hold(srv.port, s.connections);
  try {
    await delay(1000);
    const after = rssKiB(pid);
    return {
      connections: s.connections,
      rss_before_kib: before,
      rss_after_kib: after,
      rss_before_mib: before / 1024,
      rss_after_mib: after / 1024,
      kib_per_conn: (after - before) / s.connections,
    };
  } finally {
    await release(client);
  }
}

interface WrkResult {
  requests: number;
  seconds: number;
  errors: number;
  non2xx: number;
}

async function runWrk(port: number, s: Settings, seconds: number) {
  const wrk = spawn([
    "taskset",
    "-c",
    CLIENT_CPU,
    "wrk",
    "-t1",
    `-c${s.connections}`,
    `-d${seconds}s`,
    `http://${HOST}:${port}/`,
  ]);
  try {
    const out: string[] = [];
    await withTimeout(
      (async () => {
        for (;;) {
          const r = await wrk.out.next();
          if (r.done) break;
          out.push(r.value);
        }
      })(),
      seconds + 30,
      "wrk",
    );
    const st = await wrk.status;
    const text = out.join("\n");
    if (!st.success) throw new Error(`wrk failed${tailNote(wrk)}`);
    return parseWrk(text);
  } finally {
    await stop(wrk);
  }
}

function parseWrk(text: string): WrkResult {
  const m = text.match(/(\d+) requests in ([\d.]+)(us|ms|s|m)\b/);
  if (!m) throw new Error(`cannot read wrk's output: ${text.slice(0, 200)}`);
  const unit = { us: 1e-6, ms: 1e-3, s: 1, m: 60 }[m[3] as "s"];
  const sock = text.match(
    /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/,
  );
  const errors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const non2xx = Number(
    text.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0,
  );
  return {
    requests: Number(m[1]),
    seconds: Number(m[2]) * unit,
    errors,
    non2xx,
  };
}

async function measureHttp(srv: Running, s: Settings): Promise<Sample> {
  const pid = srv.proc.pid;
  await runWrk(srv.port, s, s.warmup);
  const cpu0 = cpuSeconds(pid);
  const r = await runWrk(srv.port, s, s.duration);
  const cpu = cpuSeconds(pid) - cpu0;
  if (r.requests === 0) throw new Error("wrk completed no request");
  if (r.non2xx > 0) throw new Error(`${r.non2xx} responses were not 2xx/3xx`);
  return {
    requests: r.requests,
    seconds: r.seconds,
    req_per_s: r.requests / r.seconds,
    socket_errors: r.errors,
    server_cpu_s: cpu,
    cpu_us_per_req: (cpu * 1e6) / r.requests,
    server_cpu_pct: (100 * cpu) / r.seconds,
  };
}

function measure(w: Workload, srv: Running, s: Settings): Promise<Sample> {
  switch (w) {
    case "echo":
    case "bulk":
      return measureEcho(srv, s);
    case "idle":
      return measureIdle(srv, s);
    case "http":
      return measureHttp(srv, s);
  }
}

// ---------------------------------------------------------------------------
// Main

async function build(): Promise<void> {
  await Deno.mkdir(BUILD, { recursive: true });
  const jobs: [string, string][] = [
    [`${HERE}echo_client.c`, `${BUILD}echo_client`],
    [`${SERVERS}c_epoll_echo.c`, `${BUILD}c_epoll_echo`],
  ];
  for (const [src, bin] of jobs) {
    const out = await new Deno.Command("gcc", {
      args: ["-O2", "-Wall", "-Wextra", "-o", bin, src],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `gcc failed on ${src}:\n${new TextDecoder().decode(out.stderr)}`,
      );
    }
  }
}

interface Machine {
  cpu: string;
  cores: number;
  kernel: string;
  deno: string;
  node: string | null;
  python: string | null;
  uvloop: string | null;
  wrk: string | null;
  gcc: string | null;
  clk_tck: number;
}

async function machine(): Promise<Machine> {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const cpu = cpuinfo.match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown";
  const wrkOut = await new Deno.Command("wrk", {
    args: ["-v"],
    stdout: "piped",
  })
    .output().then((o) => new TextDecoder().decode(o.stdout)).catch(() => "");
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    kernel: (await capture(["uname", "-r"])) ?? "unknown",
    deno: Deno.version.deno,
    node: await capture(["node", "--version"]),
    python: await capture([
      PYTHON,
      "-c",
      "import sys; print(sys.version.split()[0])",
    ]),
    uvloop: await capture([
      PYTHON,
      "-c",
      "import uvloop; print(uvloop.__version__)",
    ]),
    wrk: wrkOut.match(/^wrk (\S+)/)?.[1] ?? null,
    gcc: await capture(["gcc", "-dumpfullversion"]),
    clk_tck: Number(await capture(["getconf", "CLK_TCK"])) || 100,
  };
}

let lockHeld = false;

/**
 * Takes the machine-wide harness lock, waiting while another live session
 * holds it (two sessions at once would measure each other). A lock left by
 * a dead process is taken over.
 */
async function acquireLock(): Promise<void> {
  let told = false;
  for (;;) {
    try {
      const f = Deno.openSync(LOCK, { write: true, createNew: true });
      f.writeSync(new TextEncoder().encode(`${Deno.pid}\n`));
      f.close();
      lockHeld = true;
      return;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    let holder = NaN;
    try {
      holder = parseInt(Deno.readTextFileSync(LOCK));
    } catch {
      // Released meanwhile.
    }
    const alive = Number.isInteger(holder) && holder !== Deno.pid &&
      existsSync(`/proc/${holder}`);
    if (!alive) {
      try {
        Deno.removeSync(LOCK);
      } catch {
        // Someone else removed it.
      }
      continue;
    }
    if (!told) {
      console.error(
        `Another harness session (pid ${holder}) is measuring; waiting ` +
          `for it to finish (${LOCK}).`,
      );
      told = true;
    }
    await delay(1000);
  }
}

function releaseLock(): void {
  if (!lockHeld) return;
  lockHeld = false;
  try {
    Deno.removeSync(LOCK);
  } catch {
    // Already gone.
  }
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The 1-minute load average. */
function loadAverage(): number {
  return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
}

function estimateSeconds(
  opts: Options,
  defs: readonly ServerDef[],
): number {
  let total = 0;
  for (const w of opts.workloads) {
    const s = settingsFor(w, opts);
    const n = defs.filter((d) => d.kind === WORKLOAD_SPECS[w].kind).length;
    const each = w === "idle"
      ? 2 + s.connections / 2000
      : s.warmup + s.duration + 0.8;
    total += n * s.runs * each;
  }
  return total;
}

async function main(): Promise<number> {
  const opts = parseArgs(Deno.args);
  if (opts.report !== undefined) {
    await report(JSON.parse(await Deno.readTextFile(opts.report)));
    return 0;
  }
  Deno.chdir(REPO); // every child runs from the repository root
  if (opts.list) {
    for (const d of SERVER_DEFS) console.log(`${d.name}\t${d.kind}`);
    return 0;
  }
  const defs = SERVER_DEFS.filter((d) => selected(d, opts.only));
  if (defs.length === 0) {
    usageError(`--only ${opts.only?.join(",")} selects no server (see --list)`);
  }

  // Requirements: some are fatal, the rest skip what needs them.
  const missing: string[] = [];
  for (const tool of ["gcc", "taskset", "bash"]) {
    if (!onPath(tool)) missing.push(tool === "taskset" ? "util-linux" : tool);
  }
  if (missing.length) {
    console.error(
      `Missing ${missing.join(", ")}. Install with:\n` +
        `  apt-get install -y ${missing.join(" ")}`,
    );
    return 1;
  }
  await acquireLock();
  const info = await machine();
  clockTicks = info.clk_tck;
  const loadBefore = loadAverage();
  if (loadBefore > 0.5) {
    console.error(
      `Warning: load average is ${loadBefore.toFixed(2)} before starting; ` +
        "something else is using the CPUs, so expect noisy numbers.",
    );
  }
  const have: Record<Need, boolean> = {
    node: info.node !== null,
    python: info.python !== null,
    uvloop: info.uvloop !== null,
  };
  const hints: string[] = [];
  if (!onPath("wrk") && opts.workloads.includes("http")) hints.push("wrk");
  if (!have.uvloop) hints.push("python3-uvloop");
  if (!have.python) hints.push("python3");
  if (!have.node) hints.push("nodejs");
  if (hints.length) {
    console.error(
      `Note: missing ${hints.join(", ")}; what needs them is skipped. ` +
        `To install: apt-get install -y ${hints.join(" ")}`,
    );
  }

  // Keep this orchestrator off the server's core.
  await capture(["taskset", "-a", "-c", "-p", CLIENT_CPU, String(Deno.pid)]);

  console.error("Building the C programs…");
  await build();
  console.error(
    `Servers on core ${SERVER_CPU}, clients on core ${CLIENT_CPU}; ` +
      `about ${Math.ceil(estimateSeconds(opts, defs) / 60)} min to go.`,
  );

  /** Servers that never started this session, with the reason. */
  const startFailures = new Map<string, string>();
  /** Servers that started at least once this session. */
  const startedOnce = new Set<string>();
  const results: WorkloadResult[] = [];
  const started = new Date();

  for (const w of opts.workloads) {
    const spec = WORKLOAD_SPECS[w];
    const s = settingsFor(w, opts);
    const wdefs = defs.filter((d) => d.kind === spec.kind);
    const entries = new Map<string, Entry>();
    for (const d of wdefs) {
      const entry: Entry = {
        server: d.name,
        family: d.family,
        status: "ok",
        runs: [],
        errors: [],
        median: {},
        min: {},
        max: {},
      };
      const lacking = (d.needs ?? []).filter((n) => !have[n]);
      if (lacking.length) {
        entry.status = "skipped";
        entry.note = `needs ${lacking.join(", ")}`;
      } else if (w === "http" && !onPath("wrk")) {
        entry.status = "skipped";
        entry.note = "needs wrk (apt-get install -y wrk)";
      } else if (startFailures.has(d.name)) {
        entry.status = "skipped";
        entry.note = startFailures.get(d.name);
      }
      entries.set(d.name, entry);
    }
    console.error(`\n== ${w}: ${spec.describe(s)}`);
    for (let run = 0; run < s.runs; run++) {
      // Rotate the order each run so no server always goes first.
      const order = wdefs.map((_, i) => wdefs[(i + run) % wdefs.length]);
      for (const d of order) {
        const entry = entries.get(d.name)!;
        if (entry.status === "skipped") continue;
        const tag = `[${w} ${run + 1}/${s.runs}] ${d.name}`;
        let srv: Running;
        try {
          srv = await startServer(d);
        } catch (e) {
          const msg = `failed to start: ${errorText(e)}`;
          if (startedOnce.has(d.name)) {
            // It ran before, so this is one failed run, not a missing server.
            entry.errors.push(msg);
            console.error(`${tag}: run failed: ${msg}`);
            continue;
          }
          startFailures.set(d.name, msg);
          entry.status = "skipped";
          entry.note = msg;
          console.error(`${tag}: SKIPPED, ${msg}`);
          continue;
        }
        startedOnce.add(d.name);
        entry.comm = srv.comm;
        try {
          const sample = await measure(w, srv, s);
          entry.runs.push(sample);
          const sec = spec.secondary[0];
          console.error(
            `${tag}: ${fmt(sample[spec.primary.key], spec.primary.digits)} ` +
              `${spec.primary.label}, ${fmt(sample[sec.key], sec.digits)} ` +
              `${sec.label}`,
          );
        } catch (e) {
          entry.errors.push(errorText(e));
          console.error(`${tag}: run failed: ${errorText(e)}`);
        } finally {
          await stop(srv.proc);
        }
        await delay(200);
      }
    }
    for (const e of entries.values()) summarise(e);
    results.push({
      workload: w,
      title: spec.title,
      description: spec.describe(s),
      settings: { ...s },
      metrics: {
        primary: spec.primary,
        secondary: spec.secondary,
        chart: spec.chart,
      },
      entries: [...entries.values()],
    });
  }

  const doc: ResultsDoc = {
    started: started.toISOString(),
    finished: new Date().toISOString(),
    load_average: { before: loadBefore, after: loadAverage() },
    mode: opts.quick ? "quick" : "full",
    argv: Deno.args,
    machine: info,
    pinning: { server_cpu: SERVER_CPU, client_cpu: CLIENT_CPU },
    workloads: results,
  };
  const stamp = started.toISOString().replace(/[:.]/g, "-");
  const json = JSON.stringify(doc, null, 2) + "\n";
  await Deno.mkdir(RESULTS, { recursive: true });
  await Deno.writeTextFile(`${RESULTS}${stamp}.json`, json);
  // Only a session over every server and workload replaces latest.json and
  // the charts; a partial one (--only, --workload) leaves them alone.
  const complete = opts.only === null &&
    opts.workloads.length === WORKLOADS.length;
  if (complete) await Deno.writeTextFile(`${RESULTS}latest.json`, json);
  await report(
    doc,
    complete
      ? [`${RESULTS}${stamp}.json`, `${RESULTS}latest.json`]
      : [`${RESULTS}${stamp}.json`],
    complete,
  );
  if (!complete) {
    console.error(
      "A partial session: latest.json and the charts are left as they " +
        `were (draw these with --report results/${stamp}.json).`,
    );
  }
  return 0;
}

/** What `results/*.json` holds. */
interface ResultsDoc {
  started: string;
  finished: string;
  load_average: { before: number; after: number };
  mode: "quick" | "full";
  argv: string[];
  machine: Machine;
  pinning: { server_cpu: string; client_cpu: string };
  workloads: WorkloadResult[];
}

/**
 * Prints the markdown tables and, if `charts`, writes one SVG per workload;
 * `written` are files already written, to be formatted along with them.
 */
async function report(
  doc: ResultsDoc,
  written: string[] = [],
  charts = true,
): Promise<void> {
  for (const r of doc.workloads) {
    // Files from before results carried their metric definitions.
    const spec = WORKLOAD_SPECS[r.workload as Workload];
    r.metrics ??= {
      primary: spec.primary,
      secondary: spec.secondary,
      chart: spec.chart,
    };
  }
  doc.load_average ??= { before: NaN, after: NaN };
  const m = doc.machine;
  const { server_cpu: scpu, client_cpu: ccpu } = doc.pinning;
  console.log(`## tulip side-by-side benchmarks (${doc.mode})\n`);
  console.log(
    `${m.cpu}, ${m.cores} cores, Linux ${m.kernel}; Deno ${m.deno}, ` +
      `Node ${m.node ?? "–"}, CPython ${m.python ?? "–"}, ` +
      `uvloop ${m.uvloop ?? "–"}, wrk ${m.wrk ?? "–"}, gcc ${m.gcc ?? "–"}. ` +
      `Server on core ${scpu}, client on core ${ccpu}. Load average ` +
      `(1 min) ${doc.load_average.before.toFixed(2)} before, ` +
      `${doc.load_average.after.toFixed(2)} after. ${doc.started}.\n`,
  );
  for (const r of doc.workloads) console.log(markdown(r));

  const footer = `${m.cpu}, ${m.cores} cores; server pinned to core ` +
    `${scpu}, client to core ${ccpu}; bars are medians, whiskers ` +
    `min–max; ${doc.started.slice(0, 16)}Z`;
  await Deno.mkdir(RESULTS, { recursive: true });
  const files = [...written];
  for (const r of charts ? doc.workloads : []) {
    const file = `${RESULTS}${r.workload}.svg`;
    await Deno.writeTextFile(file, svgChart(r, footer));
    files.push(file);
  }
  // Leave the files as `deno fmt` wants them, so `deno fmt --check` passes.
  await capture([Deno.execPath(), "fmt", "--quiet", ...files]);
  console.error(`\nWrote ${files.map((f) => f.slice(HERE.length)).join(", ")}`);
}

function errorText(e: unknown): string {
  return stripAnsi(e instanceof Error ? e.message : String(e));
}

// Stop every child on Ctrl-C or SIGTERM, by pid, before leaving.
function onSignal(): void {
  console.error("\nInterrupted: stopping every process started here.");
  killAll();
  releaseLock();
  Deno.exit(130);
}
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error(`Harness error: ${e instanceof Error ? e.stack : e}`);
} finally {
  killAll();
  releaseLock();
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
}
Deno.exit(code);
