/**
 * Splits a `perf record` profile of a Deno server into where the time went
 * per request: kernel, libc, JavaScript compiled by V8 (named through
 * `--perf-basic-prof`), V8's builtins (named through the code log of
 * `--log-code`; perf alone shows them as unnamed addresses in Deno's
 * binary), and the rest of Deno's binary (ops, the garbage collector,
 * Rust). Lists the costliest JavaScript functions and builtins.
 *
 * ```sh
 * deno run -A --v8-flags=--perf-basic-prof,--log-code,--logfile=/tmp/code.log,--no-logfile-per-isolate \
 *   bench/harness/servers/tulip_http.ts 8000 &
 * taskset -c 0 wrk -t1 -c64 -d8 http://127.0.0.1:8000/ &   # note its req/s
 * sleep 2; perf record -e cpu-clock -F 4999 -p <server pid> -o /tmp/perf.data -- sleep 4
 * deno run -A bench/perf_breakdown.ts /tmp/perf.data /tmp/code.log <req/s × 4>
 * ```
 *
 * Needs `perf` on `PATH`. The figures are sample counts turned into time
 * (one sample is 1/4999 s of CPU) and divided by the requests served while
 * perf recorded.
 *
 * @module
 */

const SAMPLE_HZ = 4999;

/** A builtin's code range, from the V8 code log. */
interface Range {
  start: number;
  end: number;
  name: string;
}

function builtinRanges(log: string): Range[] {
  const ranges: Range[] = [];
  for (const line of log.split("\n")) {
    // code-creation,Builtin,<kind>,<time>,<address>,<size>,<name>
    if (
      !line.startsWith("code-creation,Builtin,") &&
      !line.startsWith("code-creation,BytecodeHandler,")
    ) continue;
    const f = line.split(",");
    const start = parseInt(f[4], 16);
    ranges.push({ start, end: start + Number(f[5]), name: f[6] });
  }
  return ranges.sort((a, b) => a.start - b.start);
}

function findRange(ranges: Range[], ip: number): Range | undefined {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid].start <= ip) lo = mid + 1;
    else hi = mid - 1;
  }
  const r = ranges[hi];
  return r !== undefined && ip < r.end ? r : undefined;
}

function add(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

const [perfData, codeLog, requestsArg, topArg] = Deno.args;
const requests = Number(requestsArg);
if (perfData === undefined || codeLog === undefined || !(requests > 0)) {
  console.error(
    "usage: perf_breakdown.ts PERF_DATA CODE_LOG REQUESTS [TOP]",
  );
  Deno.exit(2);
}
const top = Number(topArg ?? "15");
const ranges = builtinRanges(await Deno.readTextFile(codeLog));
const out = await new Deno.Command("perf", {
  args: ["script", "-i", perfData, "-F", "ip,sym,dso"],
  stderr: "null",
}).output();
if (!out.success) throw new Error("perf script failed");
const parts = new Map<string, number>();
const js = new Map<string, number>();
const builtins = new Map<string, number>();
for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
  const m = /^\s*([0-9a-f]+)\s+(.*)\((.*)\)\s*$/.exec(line);
  if (m === null) continue;
  const [, ip, sym, dso] = m;
  if (dso.includes("kernel")) add(parts, "kernel");
  else if (dso.includes("libc")) add(parts, "libc");
  else if (dso.includes("perf-")) {
    add(parts, "JavaScript (JIT)");
    add(js, sym.trim());
  } else if (dso.endsWith("/deno")) {
    const r = findRange(ranges, parseInt(ip, 16));
    if (r === undefined) add(parts, "Deno binary, other");
    else {
      add(parts, "V8 builtins");
      add(builtins, r.name);
    }
  } else add(parts, "other");
}
const ns = (samples: number) => (samples / SAMPLE_HZ) * 1e9 / requests;
const print = (title: string, map: Map<string, number>, n: number) => {
  console.log(`\n${title} (ns per request)`);
  for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`${ns(v).toFixed(0).padStart(7)}  ${k}`);
  }
};
print("where", parts, parts.size);
print("JavaScript functions", js, top);
print("V8 builtins", builtins, top);
