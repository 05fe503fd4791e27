/**
 * Clients that never read (HTTP, echo) or read slowly (JSON-RPC): the
 * server must stop reading while its answers back up, so its memory
 * stays bounded, and lose no answer.
 *
 * @module
 */

import { delay } from "../../harness/_proc.ts";
import {
  bytes,
  deadline,
  get,
  httpProbe,
  PatternCounter,
  writeAll,
} from "../_net.ts";
import { type Ctx, mib, type Scenario } from "../_scenario.ts";
import type { RssWatch, ServerUnderTest } from "../_server.ts";

/** The issue's goal for 100 such clients together. */
const GOAL_KIB = 100 * 1024;
/** Past this the server is killed: it is not going to hold its limits. */
const KILL_KIB = 400 * 1024;

const CLIENTS = 100;

/**
 * The JSON-RPC answers' size: small enough that what a bounded server
 * holds by design (its calls in flight and write buffer, per connection)
 * stays well under the goal, while the 100,000 answers (100 MiB) are far
 * over it if the server produces them faster than they are read.
 */
const REPLY_BYTES = 1024;

/** `text` repeated up to `size` bytes (whole copies only). */
function repeated(text: string, size: number): Uint8Array {
  return bytes(text.repeat(Math.max(1, Math.floor(size / text.length))));
}

/** The verdict on a server's memory over a run; prints the figures. */
function judgeMemory(
  ctx: Ctx,
  server: ServerUnderTest,
  growthKiB: number,
  tripped: boolean,
): void {
  ctx.figure(
    "server RSS growth",
    `${mib(growthKiB)} at the peak (${
      (growthKiB / CLIENTS).toFixed(0)
    } KiB per client; goal ≤ ${mib(GOAL_KIB)} in all)`,
  );
  if (tripped) {
    ctx.fail(`the server grew past ${mib(KILL_KIB)} and was killed`);
  } else if (growthKiB > GOAL_KIB) {
    ctx.fail(`RSS grew ${mib(growthKiB)} (goal ≤ ${mib(GOAL_KIB)})`);
  } else if (server.exited) {
    ctx.fail(`the server exited: ${server.stderrTail}`);
  }
}

/** The RSS has reached a plateau when its peak rose less than this… */
const PLATEAU_KIB = 2 * 1024;
/** …for this long. */
const PLATEAU_S = 1.5;

/**
 * Waits until the server's RSS stops growing (a bounded server soon
 * does) or `limit` seconds pass or the watch trips; the seconds waited.
 */
async function plateau(watch: RssWatch, limit: number): Promise<number> {
  const start = performance.now();
  let mark = watch.peakKiB;
  let since = start;
  for (;;) {
    await delay(100);
    const now = performance.now();
    if (watch.peakKiB - mark >= PLATEAU_KIB) {
      mark = watch.peakKiB;
      since = now;
    }
    if (
      watch.tripped || now - start >= limit * 1000 ||
      now - since >= PLATEAU_S * 1000
    ) {
      return (now - start) / 1000;
    }
  }
}

/**
 * 100 clients each write `perClient` bytes of `unit` and never read;
 * the server's RSS is sampled until it stops growing, at most `limit`
 * seconds (`fixed`: for all `limit` seconds).
 */
async function neverRead(
  ctx: Ctx,
  server: ServerUnderTest,
  unit: string,
  perClient: number,
  limit: number,
  fixed = false,
): Promise<void> {
  const data = repeated(unit, perClient);
  await delay(300);
  const watch = server.watch(KILL_KIB);
  let accepted = 0;
  let whole = 0;
  for (let i = 0; i < CLIENTS; i++) {
    const conn = await ctx.connect(server.port);
    writeAll(conn, data, (n) => accepted += n).then(
      () => whole++,
      () => {}, // closed under it at the end, or reset by the server
    );
  }
  const seconds = fixed ? (await delay(limit * 1000), limit) : await plateau(
    watch,
    limit,
  );
  watch.stop();
  ctx.figure(
    "clients",
    `${CLIENTS}, each writing ${mib(data.length / 1024)} and never reading`,
  );
  ctx.figure(
    "written",
    `${mib(accepted / 1024)} accepted by the kernel (the sockets' buffers, ` +
      `then the server); ${whole} clients wrote all of theirs`,
  );
  ctx.figure(
    "sampled",
    `${seconds.toFixed(1)} s, ${
      watch.tripped
        ? "until the kill switch"
        : fixed
        ? "a fixed time"
        : seconds >= limit
        ? "the limit: RSS still growing"
        : `until RSS stopped growing (< ${mib(PLATEAU_KIB)} in ${PLATEAU_S} s)`
    }`,
  );
  judgeMemory(ctx, server, watch.growthKiB, watch.tripped);
  if (!watch.tripped && !server.exited) {
    const { jsKiB, committedKiB, youngKiB, handled } = await server
      .memory();
    ctx.figure(
      "server after a full GC, the clients still there",
      `RSS +${mib(server.rssKiB() - watch.startKiB)}, JS memory ` +
        `${mib(jsKiB)}, V8 heap committed ${mib(committedKiB)} ` +
        `(its young generation before the GC: ${mib(youngKiB)})`,
    );
    if (handled > 0) {
      ctx.figure("requests the handler answered", handled.toLocaleString("en"));
    }
  }
}

async function noReadHttp(
  ctx: Ctx,
  kind: "http" | "deno_serve" = "http",
): Promise<void> {
  const server = await ctx.server(kind);
  await neverRead(
    ctx,
    server,
    get("/"),
    1024 * 1024,
    ctx.pick(6, 15),
    // The whole burst: V8's young generation can grow late in it.
    true,
  );
  if (!server.exited) {
    const latency = await httpProbe(server.port).catch(() => NaN);
    ctx.figure("a normal request meanwhile", `${latency.toFixed(1)} ms`);
    if (Number.isNaN(latency)) ctx.fail("a normal request was not answered");
  }
}

async function noReadEcho(ctx: Ctx): Promise<void> {
  const server = await ctx.server("echo");
  await neverRead(
    ctx,
    server,
    "0123456789abcdef",
    ctx.pick(1024 * 1024, 4 * 1024 * 1024),
    ctx.pick(6, 15),
  );
}

/**
 * 100 clients each send 1,000 calls of `blob(1024)` at once and read
 * 4 KiB every 100 ms; then they read at full speed, and every call must
 * have its answer (a result or an error).
 */
async function slowJsonRpc(ctx: Ctx): Promise<void> {
  const calls = 1000;
  const slowSeconds = ctx.pick(2, 8);
  const server = await ctx.server("jsonrpc");
  await delay(300);
  const heap0 = await server.heapKiB();
  const watch = server.watch(KILL_KIB);
  let fast = false;
  const answered = new Array<number>(CLIENTS).fill(0);
  const errors = new Array<PatternCounter>(CLIENTS);
  const done: Promise<void>[] = [];
  for (let c = 0; c < CLIENTS; c++) {
    const conn = await ctx.connect(server.port);
    let text = "";
    for (let id = 0; id < calls; id++) {
      text +=
        `{"jsonrpc":"2.0","id":${id},"method":"blob","params":[${REPLY_BYTES}]}\n`;
    }
    writeAll(conn, bytes(text)).catch(() => {});
    const errorCounter = new PatternCounter('"error"');
    errors[c] = errorCounter;
    done.push((async () => {
      const slowBuf = new Uint8Array(4096);
      const fastBuf = new Uint8Array(256 * 1024);
      while (answered[c] < calls) {
        const buf = fast ? fastBuf : slowBuf;
        const n = await conn.read(buf).catch(() => null);
        if (n === null) return;
        const chunk = buf.subarray(0, n);
        for (const b of chunk) if (b === 10) answered[c]++;
        errorCounter.push(chunk);
        if (!fast) await delay(100);
      }
    })());
  }
  await delay(slowSeconds * 1000);
  // Judged: the peak while the clients read slowly, when back-pressure
  // must hold. Draining at full speed churns answers through the heap
  // faster than V8 collects them; that peak is only reported.
  const slowGrowth = watch.growthKiB;
  const slowTripped = watch.tripped;
  const heap = slowTripped ? NaN : await server.heapKiB();
  fast = true;
  const drainStart = performance.now();
  const drainLimit = ctx.pick(15, 60);
  await deadline(Promise.all(done), drainLimit * 1000, "draining").catch(
    () => {},
  );
  const drainSeconds = (performance.now() - drainStart) / 1000;
  watch.stop();
  const total = answered.reduce((a, b) => a + b, 0);
  const errorAnswers = errors.reduce((a, e) => a + e.count, 0);
  ctx.figure(
    "clients",
    `${CLIENTS}, each sending ${calls} calls of blob(${REPLY_BYTES}) at ` +
      `once, reading 4 KiB per 100 ms for ${slowSeconds} s, then at full ` +
      `speed`,
  );
  ctx.figure(
    "answered",
    `${total} of ${CLIENTS * calls} (${errorAnswers} errors) after ` +
      `draining ${drainSeconds.toFixed(1)} s`,
  );
  ctx.figure(
    "server JS memory after GC at the end of the slow reading",
    `${mib(heap)} (${mib(heap0)} at the start)`,
  );
  ctx.figure(
    "server RSS growth while draining",
    `${mib(watch.growthKiB)} at the peak (not judged)`,
  );
  judgeMemory(ctx, server, slowGrowth, slowTripped || watch.tripped);
  if (total < CLIENTS * calls) {
    ctx.fail(
      `${CLIENTS * calls - total} of ${CLIENTS * calls} calls unanswered`,
    );
  }
}

/** `noread-http`, `noread-http-deno-serve`, `noread-jsonrpc`, `noread-echo`. */
export const noReadScenarios: Scenario[] = [
  {
    name: "noread-http",
    summary: "100 clients pipelining 1 MiB of GETs each and never " +
      "reading: server RSS growth ≤ 100 MiB",
    run: noReadHttp,
  },
  {
    name: "noread-http-deno-serve",
    summary: "for reference: the clients of noread-http against Deno.serve " +
      "with the same handler, sampled for the whole time limit",
    run: (ctx) => noReadHttp(ctx, "deno_serve"),
  },
  {
    name: "noread-jsonrpc",
    summary: "100 slow-reading JSON-RPC clients with 1,000 calls each: " +
      "RSS growth ≤ 100 MiB, every call answered",
    run: slowJsonRpc,
  },
  {
    name: "noread-echo",
    summary: "100 echo clients writing 4 MiB each (quick: 1 MiB) and " +
      "never reading: RSS growth ≤ 100 MiB",
    run: noReadEcho,
  },
];
