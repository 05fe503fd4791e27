/**
 * Resets (RST) mid-request and mid-response, sent by python3 sockets
 * closed with SO_LINGER {1, 0}. The server must live on, serve a normal
 * client, free every fd, and log no more than the peers sent.
 *
 * @module
 */

import { delay } from "../../harness/_proc.ts";
import { hasPython, httpProbe, runRst } from "../_net.ts";
import { type Ctx, mib, ms, type Scenario } from "../_scenario.ts";

async function resets(
  ctx: Ctx,
  mode: "mid-request" | "mid-response",
): Promise<void> {
  if (!hasPython()) ctx.skip("python3 not found; it sends the resets");
  const count = mode === "mid-request"
    ? ctx.pick(200, 2000)
    : ctx.pick(50, 500);
  const server = await ctx.server("http");
  for (let i = 0; i < 10; i++) await httpProbe(server.port);
  await delay(300);
  const fds0 = server.fds();
  const rss0 = server.rssKiB();
  const log0 = server.stderrBytes;
  const start = performance.now();
  const report = await runRst(mode, server.port, count, ctx.pick(10, 40));
  const seconds = (performance.now() - start) / 1000;
  const fds1 = server.exited ? NaN : await server.fdsSettle(fds0, 5);
  const rss1 = server.exited ? NaN : server.rssKiB();
  ctx.figure(
    "resets",
    `${report.done} of ${count} in ${seconds.toFixed(1)} s ` +
      `(${report.errors} connections failed), ${report.sent} bytes sent`,
  );
  ctx.figure("server fds", `${fds0} before, ${fds1} after`);
  ctx.figure("server RSS", `${mib(rss0)} before, ${mib(rss1)} after`);
  if (server.exited) {
    ctx.fail(`the server exited: ${server.stderrTail}`);
    return;
  }
  try {
    ctx.figure(
      "a normal request after",
      ms(await httpProbe(server.port, ctx.pick(3000, 5000))),
    );
  } catch (e) {
    ctx.fail(`a normal request after failed: ${(e as Error).message}`);
  }
  // Read last: the server may still be logging what the resets caused.
  const log = server.stderrBytes - log0;
  ctx.figure("server log", `${log} bytes`);
  if (fds1 > fds0) ctx.fail(`${fds1 - fds0} fds leaked`);
  if (log > report.sent) {
    ctx.fail(`the server logged ${log} bytes for ${report.sent} sent`);
  }
  if (report.done + report.errors < count) {
    ctx.fail(
      `only ${report.done + report.errors} of ${count} connections in time`,
    );
  }
  if (report.errors > 0) {
    ctx.fail(`${report.errors} of ${count} connections failed`);
  }
}

/** `reset-request` and `reset-response`. */
export const resetScenarios: Scenario[] = [
  {
    name: "reset-request",
    summary: "2,000 HTTP connections reset mid-head or mid-body " +
      "(quick: 200): no crash, no fd leak, log ≤ bytes sent",
    run: (ctx) => resets(ctx, "mid-request"),
  },
  {
    name: "reset-response",
    summary: "500 HTTP connections reset while a 1 MiB answer is sent " +
      "(quick: 50): no crash, no fd leak, log ≤ bytes sent",
    run: (ctx) => resets(ctx, "mid-response"),
  },
];
