/**
 * Graceful shutdown under load: SIGTERM while requests are in flight,
 * keep-alive clients are sending, and idle keep-alive connections wait.
 * No request the server has taken may be lost, and it exits within its
 * grace period.
 *
 * @module
 */

import { delay } from "../../harness/_proc.ts";
import { bytes, deadline, get, Reader, writeAll } from "../_net.ts";
import { type Ctx, ms, type Scenario } from "../_scenario.ts";

/** Seconds a Deno process may take to exit once its server is closed. */
const EXIT_SLACK_S = 1;

/** What one keep-alive client, sending GETs back to back, saw. */
interface Loader {
  answered: number;
  /** Saw an answer with `Connection: close` and stopped. */
  toldToClose: boolean;
  /** Closed before any byte of an answer: retryable (RFC 9112 §9.3.1). */
  closedBetween: "FIN" | "RST" | null;
  /** An answer cut off mid-way, or a reset: lost. */
  cut: string | null;
}

async function load(conn: Deno.Conn): Promise<Loader> {
  const reader = new Reader(conn);
  const out: Loader = {
    answered: 0,
    toldToClose: false,
    closedBetween: null,
    cut: null,
  };
  const request = bytes(get("/"));
  for (;;) {
    try {
      await writeAll(conn, request);
    } catch {
      out.closedBetween = "RST"; // closed before our request went out
      return out;
    }
    let res;
    try {
      res = await reader.response();
    } catch (e) {
      out.cut = e instanceof Error ? e.message : String(e);
      return out;
    }
    if (res === null) {
      out.closedBetween = reader.reset ? "RST" : "FIN";
      return out;
    }
    out.answered++;
    if (res.headers.get("connection")?.toLowerCase() === "close") {
      out.toldToClose = true;
      return out;
    }
  }
}

async function shutdown(ctx: Ctx): Promise<void> {
  const grace = ctx.pick(2, 3);
  const slowMs = ctx.pick(500, 1000);
  const inFlight = ctx.pick(20, 50);
  const idle = ctx.pick(20, 50);
  const loaders = 8;
  const server = await ctx.server("http", {
    "keep-alive-timeout": 600,
    grace,
  });

  const idleClosed: number[] = [];
  let sigterm = 0;
  for (let i = 0; i < idle; i++) {
    const conn = await ctx.connect(server.port);
    await writeAll(conn, bytes(get("/")));
    const reader = new Reader(conn);
    await reader.response();
    reader.rest().then(() => {
      idleClosed.push(performance.now() - sigterm);
      ctx.close(conn); // as a client does at EOF
    });
  }
  // Each in-flight answer: its status and whether it said
  // `Connection: close`, or what went wrong. The client then closes, as
  // a real one does after `Connection: close`.
  const slow: Promise<{ status: string; close: boolean }>[] = [];
  for (let i = 0; i < inFlight; i++) {
    const conn = await ctx.connect(server.port);
    await writeAll(conn, bytes(get(`/slow?ms=${slowMs}`)));
    slow.push(
      new Reader(conn).response().then(
        (res) => ({
          status: res === null ? "closed unanswered" : `${res.status}`,
          close: res?.headers.get("connection")?.toLowerCase() === "close",
        }),
        (e) => ({
          status: e instanceof Error ? e.message : String(e),
          close: false,
        }),
      ).finally(() => ctx.close(conn)),
    );
  }
  const loads: Promise<Loader>[] = [];
  for (let i = 0; i < loaders; i++) {
    const conn = await ctx.connect(server.port);
    loads.push(load(conn).finally(() => ctx.close(conn)));
  }
  await delay(slowMs / 2);

  sigterm = performance.now();
  server.terminate();
  const status = await deadline(
    server.status,
    (grace + 10) * 1000,
    "the server's exit",
  );
  const exitMs = performance.now() - sigterm;
  const said = await server.nextLine();
  const results = await Promise.all(slow);
  const loaded = await Promise.all(loads);

  const ok = results.filter((r) => r.status === "200");
  const lostSlow = results.filter((r) => r.status !== "200");
  const noClose = ok.filter((r) => !r.close).length;
  const cut = loaded.filter((l) => l.cut !== null);
  ctx.figure(
    "load at SIGTERM",
    `${inFlight} requests in flight (${slowMs} ms handlers), ${loaders} ` +
      `keep-alive clients sending, ${idle} idle keep-alive connections`,
  );
  ctx.figure(
    "in flight",
    `${ok.length} of ${inFlight} answered, ${ok.length - noClose} with ` +
      `"Connection: close"` +
      (lostSlow.length > 0
        ? `; lost: ${lostSlow[0].status} × ${lostSlow.length}`
        : ""),
  );
  ctx.figure(
    "keep-alive clients",
    `${loaded.reduce((a, l) => a + l.answered, 0)} answered; ` +
      `${loaded.filter((l) => l.toldToClose).length} told ` +
      `"Connection: close"; closed before an answer (retryable): ${
        loaded.filter((l) => l.closedBetween === "FIN").length
      } by FIN, ${loaded.filter((l) => l.closedBetween === "RST").length} ` +
      `by RST; ${cut.length} cut mid-answer`,
  );
  ctx.figure(
    "idle connections closed",
    `${idleClosed.length} of ${idle}` +
      (idleClosed.length > 0
        ? `, the last ${ms(Math.max(...idleClosed))} after SIGTERM`
        : ""),
  );
  ctx.figure(
    "exit",
    `code ${status.code} ${ms(exitMs)} after SIGTERM (grace ${grace} s); ` +
      `the server said: ${said ?? "nothing"}`,
  );
  if (lostSlow.length > 0) {
    ctx.fail(`${lostSlow.length} of ${inFlight} in-flight requests lost`);
  }
  if (noClose > 0) {
    ctx.fail(
      `${noClose} answers during the shutdown without "Connection: close"`,
    );
  }
  if (cut.length > 0) {
    ctx.fail(`${cut.length} answers cut mid-way: ${cut[0].cut}`);
  }
  if (exitMs > (grace + EXIT_SLACK_S) * 1000) {
    ctx.fail(`exited ${ms(exitMs)} after SIGTERM (grace ${grace} s)`);
  }
  if (status.code !== 0) {
    ctx.fail(`exit code ${status.code}: connections outlived the grace`);
  }
}

/** `shutdown`. */
export const shutdownScenarios: Scenario[] = [{
  name: "shutdown",
  summary: "SIGTERM under load (50 in flight, 8 sending, 50 idle; quick: " +
    "20, 8, 20): nothing in flight lost, exit within the grace",
  run: shutdown,
}];
