/**
 * Connect/close churn: many short connections, then the server's RSS and
 * fd count against what they were before (no leak).
 *
 * @module
 */

import { delay } from "../../harness/_proc.ts";
import {
  bytes,
  closeQuietly,
  connect,
  get,
  Reader,
  writeAll,
} from "../_net.ts";
import { type Ctx, mib, pool, type Scenario } from "../_scenario.ts";
import type { ServerKind } from "../_server.ts";

/**
 * Heap growth allowed over the measured round, after a full garbage
 * collection (RSS is printed too, but V8 keeps the pages a busy moment
 * grew, so it is no measure of a leak).
 */
const MAX_HEAP_GROWTH_KIB = 2 * 1024;

/**
 * One short connection. Echo: one byte there and back. HTTP: even `i`
 * — a kept-alive GET the client closes after the answer; odd `i` — a GET
 * with `Connection: close` that the server closes.
 */
async function once(kind: ServerKind, port: number, i: number) {
  const conn = await connect(port);
  try {
    if (kind === "echo") {
      await conn.write(new Uint8Array([1]));
      if (await conn.read(new Uint8Array(1)) !== 1) throw new Error("EOF");
      return;
    }
    await writeAll(conn, bytes(get("/", i % 2 === 1)));
    const reader = new Reader(conn);
    const res = await reader.response();
    if (res?.status !== 200) throw new Error(`got ${res?.status ?? "EOF"}`);
    if (i % 2 === 1) await reader.rest();
  } finally {
    closeQuietly(conn);
  }
}

async function churn(ctx: Ctx, kind: ServerKind): Promise<void> {
  const n = ctx.pick(2000, 20000);
  const server = await ctx.server(kind);
  let errors = 0;
  const run = (count: number) =>
    pool(count, 32, async (i) => {
      try {
        await once(kind, server.port, i);
      } catch {
        errors++;
      }
    });
  // A first round as long as the measured one grows the heap to its
  // working size; a leak then shows as growth over the second.
  await run(n);
  await delay(300);
  const rss0 = server.rssKiB();
  const heap0 = await server.heapKiB();
  const fds0 = server.fds();
  errors = 0;
  const start = performance.now();
  await run(n);
  const seconds = (performance.now() - start) / 1000;
  const fds1 = await server.fdsSettle(fds0, 3);
  await delay(300);
  const rss1 = server.rssKiB();
  const heap1 = await server.heapKiB();
  ctx.figure(
    "connections",
    `${n} in ${seconds.toFixed(1)} s (${(n / seconds).toFixed(0)}/s), ` +
      `${errors} failed`,
  );
  ctx.figure("server fds", `${fds0} before, ${fds1} after`);
  ctx.figure(
    "server RSS",
    `${mib(rss0)} before, ${mib(rss1)} after (${rss1 - rss0 >= 0 ? "+" : ""}${
      mib(rss1 - rss0)
    })`,
  );
  ctx.figure(
    "server JS memory after GC",
    `${mib(heap0)} before, ${mib(heap1)} after (${
      heap1 - heap0 >= 0 ? "+" : ""
    }${mib(heap1 - heap0)})`,
  );
  if (errors > 0) ctx.fail(`${errors} of ${n} connections failed`);
  if (fds1 > fds0) ctx.fail(`${fds1 - fds0} fds leaked`);
  if (heap1 - heap0 > MAX_HEAP_GROWTH_KIB) {
    ctx.fail(
      `JS memory grew ${mib(heap1 - heap0)} after GC ` +
        `(limit ${mib(MAX_HEAP_GROWTH_KIB)})`,
    );
  }
}

/** `churn-echo` and `churn-http`. */
export const churnScenarios: Scenario[] = (["echo", "http"] as const).map((
  kind,
) => ({
  name: `churn-${kind}`,
  summary: `20,000 connect/close cycles on the ${kind} server ` +
    `(quick: 2,000): RSS and fds before/after`,
  run: (ctx: Ctx) => churn(ctx, kind),
}));
