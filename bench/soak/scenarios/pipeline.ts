/**
 * A pipelining flood: one client sends 20,000 GETs in one go and starts
 * reading only after longer than the keep-alive timeout. Every request
 * must be answered.
 *
 * @module
 */

import { delay } from "../../harness/_proc.ts";
import { bytes, get, PatternCounter, writeAll } from "../_net.ts";
import type { Ctx, Scenario } from "../_scenario.ts";

/**
 * Each answer's body: 20,000 of them (10 MiB) overflow the sockets'
 * buffers, so the server must hold answers back while the client is not
 * reading — which is when a timer counting our own silence, or a close
 * that cuts an answer, loses some.
 */
const ANSWER_BYTES = 512;
const REQUEST = get(`/big?bytes=${ANSWER_BYTES}`);

async function pipelineFlood(ctx: Ctx): Promise<void> {
  const n = 20000;
  const keepAlive = ctx.pick(2, 5);
  const readAfter = ctx.pick(3, 8);
  const server = await ctx.server("http", { "keep-alive-timeout": keepAlive });
  const conn = await ctx.connect(server.port);
  let written = 0;
  writeAll(conn, bytes(REQUEST.repeat(n)), (k) => written += k).catch(
    () => {},
  );
  await delay(readAfter * 1000);
  const start = performance.now();
  const counter = new PatternCounter("HTTP/1.1 ");
  const buf = new Uint8Array(256 * 1024);
  let end = "all answered";
  const limit = ctx.pick(20, 60) * 1000;
  while (counter.count < n) {
    if (performance.now() - start > limit) {
      end = `no more within ${limit / 1000} s`;
      break;
    }
    let got: number | null;
    try {
      got = await conn.read(buf);
    } catch (e) {
      end = `reset (${e instanceof Error ? e.name : e})`;
      break;
    }
    if (got === null) {
      end = "EOF";
      break;
    }
    counter.push(buf.subarray(0, got));
  }
  const seconds = (performance.now() - start) / 1000;
  ctx.figure(
    "pipelined",
    `${n} GETs of ${ANSWER_BYTES} bytes (${written} of ` +
      `${n * REQUEST.length} bytes written), ` +
      `read from ${readAfter} s on; keepAliveTimeout ${keepAlive} s`,
  );
  ctx.figure(
    "answered",
    `${counter.count} of ${n}, read in ${seconds.toFixed(1)} s; ended: ${end}`,
  );
  if (counter.count < n) {
    ctx.fail(`${n - counter.count} of ${n} requests unanswered (${end})`);
  }
}

/** `pipeline-flood`. */
export const pipelineScenarios: Scenario[] = [{
  name: "pipeline-flood",
  summary: "one client pipelines 20,000 GETs of 512-byte answers and reads " +
    "only after the keep-alive timeout: every request answered",
  run: pipelineFlood,
}];
