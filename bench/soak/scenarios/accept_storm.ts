/**
 * An accept storm: 1,000 connections reset before the server accepts
 * them, while a new normal client measures how long it waits to be
 * served.
 *
 * @module
 */

import { delay } from "../../harness/_proc.ts";
import {
  echoProbe,
  hasPython,
  percentile,
  probeWhile,
  runRst,
} from "../_net.ts";
import { type Ctx, ms, type Scenario } from "../_scenario.ts";

/** The goal for a new client's accept latency. */
const GOAL_MS = 10;
/** No single new client may wait this long (a 1 s backoff fails it). */
const WORST_MS = 250;

async function acceptStorm(ctx: Ctx): Promise<void> {
  if (!hasPython()) ctx.skip("python3 not found; it sends the resets");
  const count = 1000;
  const server = await ctx.server("echo");
  const base: number[] = [];
  for (let i = 0; i < 20; i++) base.push(await echoProbe(server.port));
  const start = performance.now();
  const storm = runRst("storm", server.port, count, ctx.pick(3, 15));
  // Probe on for a second after the storm: a backoff outlives it.
  const probing = storm.then(() => delay(1000), () => {});
  const probes = await probeWhile(
    () => echoProbe(server.port, ctx.pick(2000, 5000)),
    10,
    probing,
  );
  const report = await storm;
  const seconds = (performance.now() - start) / 1000;
  const median = percentile(probes.latencies, 50);
  const worst = Math.max(...probes.latencies, 0);
  ctx.figure(
    "storm",
    `${report.done} of ${count} connections reset before accept ` +
      `(${report.errors} failed to connect), ${seconds.toFixed(1)} s ` +
      `with the second after`,
  );
  ctx.figure("server log", `${server.stderrBytes} bytes`);
  ctx.figure(
    "new client (connect + 1-byte echo)",
    `${ms(percentile(base, 50))} median before; during: ` +
      `${ms(median)} median, ${ms(percentile(probes.latencies, 95))} p95, ` +
      `${ms(worst)} worst over ${probes.latencies.length} probes, ` +
      `${probes.failures.length} failed`,
  );
  if (report.done < count) {
    ctx.fail(
      `only ${report.done} of ${count} storm connections could be made ` +
        `in time`,
    );
  }
  if (probes.failures.length > 0) {
    ctx.fail(
      `${probes.failures.length} new clients not served: ` +
        probes.failures[0],
    );
  }
  if (median > GOAL_MS || worst > WORST_MS) {
    ctx.fail(
      `a new client waited ${ms(median)} median, ${ms(worst)} worst ` +
        `(limits ${GOAL_MS} ms, ${WORST_MS} ms)`,
    );
  }
}

/** `accept-storm`. */
export const acceptStormScenarios: Scenario[] = [{
  name: "accept-storm",
  summary: "1,000 connections reset before accept: a new client's accept " +
    "latency (goal ≤ 10 ms)",
  run: acceptStorm,
}];
