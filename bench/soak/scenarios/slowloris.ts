/**
 * Slowloris: many connections trickling a request head, or a body, at one
 * byte a second. The server must close them by its `headersTimeout` /
 * `requestTimeout` and meanwhile answer a normal client promptly.
 *
 * @module
 */

import { delay } from "../../harness/_proc.ts";
import { bytes, httpProbe, percentile, probeWhile, Reader } from "../_net.ts";
import { type Ctx, ms, pool, type Scenario } from "../_scenario.ts";

/** A normal request's latency meanwhile: its median, and its worst. */
const MAX_PROBE_MEDIAN_MS = 50;
const MAX_PROBE_MS = 1000;

/** Seconds past the timeout the server may take to close a connection. */
const SLACK_S = 2;

/** The head trickled byte by byte: it never ends. */
const HEAD = "GET / HTTP/1.1\r\nHost: soak\r\nX-Slow: ";
/** The head sent at once before a body trickled byte by byte. */
const BODY_HEAD = "POST /upload HTTP/1.1\r\nHost: soak\r\n" +
  "Content-Length: 100000\r\n\r\n";

interface Slow {
  conn: Deno.Conn;
  sent: number;
  /** Ms from the start to the server's close; null while open. */
  closedAt: number | null;
  /** The first line the server sent before closing, if any. */
  answer: string;
}

async function slowloris(ctx: Ctx, part: "head" | "body"): Promise<void> {
  const n = ctx.pick(100, 500);
  const headersTimeout = ctx.pick(1, 3);
  const requestTimeout = ctx.pick(2, 6);
  const timeout = part === "head" ? headersTimeout : requestTimeout;
  // The keep-alive timeout outlasts the scenario, so that only the head
  // and request timeouts can end these connections.
  const server = await ctx.server("http", {
    "keep-alive-timeout": 600,
    "headers-timeout": headersTimeout,
    "request-timeout": requestTimeout,
  });
  const base: number[] = [];
  for (let i = 0; i < 10; i++) base.push(await httpProbe(server.port));

  const start = performance.now();
  const slow: Slow[] = [];
  await pool(n, 50, async () => {
    const conn = await ctx.connect(server.port);
    const s: Slow = { conn, sent: 0, closedAt: null, answer: "" };
    slow.push(s);
    if (part === "body") await conn.write(bytes(BODY_HEAD));
    new Reader(conn).rest().then((got) => {
      s.closedAt = performance.now() - start;
      s.answer = new TextDecoder().decode(got).split("\r\n")[0];
    });
  });
  const trickle = () => {
    for (const s of slow) {
      if (s.closedAt !== null) continue;
      const byte = part === "head" && s.sent < HEAD.length
        ? HEAD.charCodeAt(s.sent)
        : 120; // "x"
      s.sent++;
      s.conn.write(new Uint8Array([byte])).catch(() => {});
    }
  };
  trickle();
  const ticker = setInterval(trickle, 1000);
  const allowed = (timeout + SLACK_S) * 1000;
  const ended = (async () => {
    while (performance.now() - start < allowed + 500) {
      if (slow.every((s) => s.closedAt !== null)) return;
      await delay(50);
    }
  })();
  const probes = await probeWhile(() => httpProbe(server.port), 100, ended);
  clearInterval(ticker);

  const closed = slow.filter((s) => s.closedAt !== null);
  const times = closed.map((s) => s.closedAt!);
  const answers = new Map<string, number>();
  for (const s of closed) {
    const key = s.answer === "" ? "(closed without an answer)" : s.answer;
    answers.set(key, (answers.get(key) ?? 0) + 1);
  }
  ctx.figure(
    "slow connections",
    `${n}, ${part === "head" ? "a head" : "a body"} at 1 byte/s; ` +
      `headersTimeout ${headersTimeout} s, requestTimeout ${requestTimeout} s`,
  );
  ctx.figure(
    "closed by the server",
    `${closed.length} of ${n}` +
      (times.length > 0
        ? `, after ${ms(percentile(times, 50))} median, ` +
          `${ms(Math.max(...times))} worst`
        : ""),
  );
  for (const [answer, count] of answers) {
    ctx.figure("  answered", `${answer} × ${count}`);
  }
  ctx.figure(
    "normal request",
    `${ms(percentile(base, 50))} median before; meanwhile ${
      ms(percentile(probes.latencies, 50))
    } median, ${ms(Math.max(...probes.latencies, 0))} worst over ` +
      `${probes.latencies.length} probes, ${probes.failures.length} failed`,
  );
  ctx.figure("server log", `${server.stderrBytes} bytes`);
  if (closed.length < n) {
    ctx.fail(
      `${n - closed.length} of ${n} slow connections still open after ` +
        `${((performance.now() - start) / 1000).toFixed(1)} s ` +
        `(${part === "head" ? "headersTimeout" : "requestTimeout"} ` +
        `${timeout} s)`,
    );
  } else if (Math.max(...times) > allowed) {
    ctx.fail(
      `the last slow connection closed after ${ms(Math.max(...times))} ` +
        `(allowed ${allowed} ms)`,
    );
  }
  if (probes.failures.length > 0) {
    ctx.fail(
      `${probes.failures.length} normal requests failed: ` +
        probes.failures[0],
    );
  }
  const median = percentile(probes.latencies, 50);
  const worst = Math.max(...probes.latencies, 0);
  if (median > MAX_PROBE_MEDIAN_MS || worst > MAX_PROBE_MS) {
    ctx.fail(
      `a normal request took ${ms(median)} median, ${ms(worst)} worst ` +
        `(limits ${MAX_PROBE_MEDIAN_MS} ms, ${MAX_PROBE_MS} ms)`,
    );
  }
}

/** `slowloris-head` and `slowloris-body`. */
export const slowlorisScenarios: Scenario[] = [
  {
    name: "slowloris-head",
    summary: "500 connections sending a request head at 1 byte/s " +
      "(quick: 100): closed by headersTimeout, normal clients served",
    run: (ctx) => slowloris(ctx, "head"),
  },
  {
    name: "slowloris-body",
    summary: "500 connections sending a body at 1 byte/s (quick: 100): " +
      "closed by requestTimeout, normal clients served",
    run: (ctx) => slowloris(ctx, "body"),
  },
];
