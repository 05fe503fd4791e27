/**
 * I/O and timers while the loop is busy: an echo server whose loop runs
 * CPU-bound work — a `callSoon` chain, or an async task looping on
 * `await sleep(0)` — while a client in another process times one-byte
 * round trips. Also reports how many callbacks (or sleeps) the busy work
 * got through per second, and how late a host `setTimeout` in user code and
 * a loop timer fire meanwhile (every 10 ms). The same server in CPython
 * asyncio and uvloop runs beside it (skipped, visibly, when python3 or
 * uvloop is missing).
 *
 * deno run -A bench/busy_io.ts [--seconds 1.5] [--runs 3] [--only tulip,asyncio,uvloop]
 *
 * @module
 */

import process from "node:process";
import { DenoEventLoop } from "../loop/deno_event_loop.ts";
import { Protocol } from "../protocols/protocol.ts";
import { sleep } from "../tasks/sleep.ts";
import type { Transport } from "../transports/transport.ts";

type Kind = "chain" | "sleep";
interface ServerReport {
  ops: number;
  seconds: number;
  cpuSeconds: number;
  hostLate: number[];
  loopLate: number[];
}

// The server starts its busy work when the client's first byte arrives,
// and keeps echoing after it until it is killed.
const WARMUP = 0.1;
let started: (() => void) | null = null;

// ---- tulip server (run as a child: --server KIND SECONDS) ----

class Echo extends Protocol {
  #t?: Transport;
  override connectionMade(t: Transport) {
    this.#t = t;
  }
  override dataReceived(d: Uint8Array) {
    started?.();
    started = null;
    this.#t!.write(d);
  }
}

async function tulipServer(kind: Kind, seconds: number): Promise<void> {
  const loop = new DenoEventLoop();
  const server = await loop.runUntilComplete(
    loop.createServer(() => new Echo(), "127.0.0.1", 0),
  );
  console.log((server.addresses()[0] as Deno.NetAddr).port);
  const go = loop.createFuture<void>();
  started = () => go.setResult(undefined);
  await loop.runUntilComplete(go);
  const report: ServerReport = {
    ops: 0,
    seconds,
    cpuSeconds: 0,
    hostLate: [],
    loopLate: [],
  };
  const end = performance.now() + seconds * 1000;
  const cpu = process.cpuUsage();
  let busy = true;
  const hostTimer = () => {
    const due = performance.now() + 10;
    setTimeout(() => {
      report.hostLate.push(performance.now() - due);
      if (busy) hostTimer();
    }, 10);
  };
  const loopTimer = () => {
    const due = performance.now() + 10;
    loop.callLater(0.01, () => {
      report.loopLate.push(performance.now() - due);
      if (busy) loopTimer();
    });
  };
  hostTimer();
  loopTimer();
  const done = loop.createFuture<void>();
  loop.callLater(seconds, () => {
    busy = false;
    done.setResult(undefined);
  });
  if (kind === "chain") {
    const tick = () => {
      report.ops++;
      if (busy) loop.callSoon(tick);
    };
    loop.callSoon(tick);
  } else {
    loop.createTask(async () => {
      while (busy) {
        await sleep(0);
        report.ops++;
      }
    });
  }
  await loop.runUntilComplete(done);
  report.seconds = (performance.now() - end) / 1000 + seconds;
  const used = process.cpuUsage(cpu);
  report.cpuSeconds = (used.user + used.system) / 1e6;
  console.log(JSON.stringify(report));
  await loop.runForever();
}

// ---- the same server in Python (asyncio, or uvloop with argv[3] = 1) ----

const PYTHON_SERVER = `
import asyncio, json, sys, time
kind, seconds, use_uvloop = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1"
if use_uvloop:
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

started = None
class Echo(asyncio.Protocol):
    def connection_made(self, t): self.t = t
    def data_received(self, d):
        if not started.done(): started.set_result(None)
        self.t.write(d)

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    global started
    started = loop.create_future()
    await started
    report = {"ops": 0, "seconds": seconds, "cpuSeconds": 0, "hostLate": [], "loopLate": []}
    state = {"busy": True}
    def loop_timer():
        due = time.perf_counter() + 0.01
        def fire():
            report["loopLate"].append((time.perf_counter() - due) * 1000)
            if state["busy"]: loop_timer()
        loop.call_later(0.01, fire)
    loop_timer()
    start = time.perf_counter()
    cpu = time.process_time()
    done = loop.create_future()
    def stop():
        state["busy"] = False
        done.set_result(None)
    loop.call_later(seconds, stop)
    if kind == "chain":
        def tick():
            report["ops"] += 1
            if state["busy"]: loop.call_soon(tick)
        loop.call_soon(tick)
    else:
        async def sleeper():
            while state["busy"]:
                await asyncio.sleep(0)
                report["ops"] += 1
        loop.create_task(sleeper())
    await done
    report["seconds"] = time.perf_counter() - start
    report["cpuSeconds"] = time.process_time() - cpu
    print(json.dumps(report), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
`;

// ---- the client (run as a child: --client PORT SECONDS) ----

async function client(port: number, seconds: number): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const one = new Uint8Array([120]);
  const buf = new Uint8Array(16);
  // The first byte starts the server's busy work; measure while it lasts.
  await conn.write(one);
  await conn.read(buf);
  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  const end = performance.now() + (seconds - 2 * WARMUP) * 1000;
  const rtt: number[] = [];
  while (performance.now() < end) {
    const t = performance.now();
    await conn.write(one);
    await conn.read(buf);
    rtt.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 1));
  }
  conn.close();
  console.log(JSON.stringify(rtt));
}

// ---- orchestration ----

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
}

async function lines(
  stream: ReadableStream<Uint8Array>,
): Promise<AsyncIterator<string>> {
  const it = stream.pipeThrough(new TextDecoderStream()).pipeThrough(
    new TransformStream<string, string>(
      {
        buffer: "",
        transform(chunk, ctl) {
          this.buffer += chunk;
          const parts = this.buffer.split("\n");
          this.buffer = parts.pop()!;
          for (const p of parts) ctl.enqueue(p);
        },
        flush(ctl) {
          if (this.buffer) ctl.enqueue(this.buffer);
        },
      } as Transformer<string, string> & { buffer: string },
    ),
  );
  return await Promise.resolve(it[Symbol.asyncIterator]());
}

interface Row {
  name: string;
  kind: Kind;
  rtt: number[];
  report: ServerReport;
}

async function runOne(
  name: string,
  cmd: string,
  args: string[],
  kind: Kind,
  seconds: number,
): Promise<Row> {
  const server = new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = await lines(server.stdout);
  const port = Number((await out.next()).value);
  const c = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      import.meta.filename!,
      "--client",
      `${port}`,
      `${seconds}`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const rtt = JSON.parse(new TextDecoder().decode(c.stdout)) as number[];
  const report = JSON.parse((await out.next()).value) as ServerReport;
  server.kill();
  await server.status;
  return { name, kind, rtt, report };
}

async function has(cmd: string, args: string[]): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(cmd, {
      args,
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const argv = Deno.args;
  const opt = (name: string, dflt: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : dflt;
  };
  if (argv[0] === "--server") {
    return await tulipServer(argv[1] as Kind, Number(argv[2]));
  }
  if (argv[0] === "--client") {
    return await client(Number(argv[1]), Number(argv[2]));
  }
  const seconds = Number(opt("--seconds", "1.5"));
  const runs = Number(opt("--runs", "3"));
  const only = opt("--only", "tulip,asyncio,uvloop").split(",");
  const python = await has("python3", ["-c", "import asyncio"]);
  // uvloop from Debian's python3-uvloop lives with the system's python3,
  // which may not be the first on PATH.
  let uvPython = "";
  for (const py of ["python3", "/usr/bin/python3"]) {
    if (await has(py, ["-c", "import uvloop"])) {
      uvPython = py;
      break;
    }
  }
  const servers: [string, string, (k: Kind) => string[]][] = [];
  if (only.includes("tulip")) {
    servers.push(["tulip", Deno.execPath(), (k) => [
      "run",
      "-A",
      import.meta.filename!,
      "--server",
      k,
      `${seconds}`,
    ]]);
  }
  const peers = [
    ["asyncio", python ? "python3" : "", "0", "python3"],
    ["uvloop", uvPython, "1", "python3-uvloop"],
  ] as const;
  for (const [name, py, flag, what] of peers) {
    if (!only.includes(name)) continue;
    if (py === "") {
      console.log(`${name}: skipped (${what} not found)`);
      continue;
    }
    servers.push([
      name,
      py,
      (k) => ["-c", PYTHON_SERVER, k, `${seconds}`, flag],
    ]);
  }
  console.log(
    "server   busy   rtt median  rtt p90   ops/s (busy work)  ops/CPU-s   host timer late med/max  loop timer late med/max (ms)",
  );
  for (let run = 0; run < runs; run++) {
    for (
      const kind of (Deno.env.get("KINDS") ?? "chain,sleep").split(
        ",",
      ) as Kind[]
    ) {
      for (const [name, cmd, args] of servers) {
        const r = await runOne(name, cmd, args(kind), kind, seconds);
        const f = (x: number) => x.toFixed(3).padStart(7);
        const late = (xs: number[]) =>
          xs.length === 0
            ? "      —        "
            : `${f(quantile(xs, 0.5))} /${f(Math.max(...xs))}`;
        console.log(
          `${name.padEnd(8)} ${kind.padEnd(6)} ${f(quantile(r.rtt, 0.5))}    ${
            f(quantile(r.rtt, 0.9))
          }   ${
            Math.round(r.report.ops / r.report.seconds).toLocaleString("en")
              .padStart(12)
          } ${
            Math.round(r.report.ops / r.report.cpuSeconds).toLocaleString("en")
              .padStart(12)
          }       ${late(r.report.hostLate)}      ${late(r.report.loopLate)}`,
        );
      }
    }
  }
}

await main();
