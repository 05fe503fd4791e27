/**
 * Many idle connections: the server's memory per connection held open.
 *
 * @module
 */

import { delay } from "../../harness/_proc.ts";
import { bytes, get, Reader, writeAll } from "../_net.ts";
import { type Ctx, pool, type Scenario } from "../_scenario.ts";
import type { ServerKind, ServerUnderTest } from "../_server.ts";

/** The most a held connection may cost; a 64 KiB read buffer each fails. */
const MAX_KIB_PER_CONNECTION = 32;

/** One request (HTTP) or one echoed byte, so the server surely serves it. */
async function touch(kind: ServerKind, conn: Deno.Conn): Promise<void> {
  if (kind === "http") {
    await writeAll(conn, bytes(get("/")));
    const res = await new Reader(conn).response();
    if (res?.status !== 200) throw new Error(`got ${res?.status ?? "EOF"}`);
  } else {
    await conn.write(new Uint8Array([1]));
    if (await conn.read(new Uint8Array(1)) !== 1) throw new Error("no echo");
  }
}

async function idle(ctx: Ctx, kind: ServerKind): Promise<void> {
  // Full counts in --quick too: they take a second or two, and over 500
  // connections a collection's timing alone moved the figure by 10 KiB.
  const n = 2000;
  // The keep-alive timeout must outlast the scenario, or it closes them.
  const server: ServerUnderTest = await ctx.server(
    kind,
    kind === "http" ? { "keep-alive-timeout": 600 } : {},
  );
  // A first round, opened and closed, grows the heap to its working size
  // so that the measured round shows what connections hold.
  const fdsStart = server.fds();
  const warm: Deno.Conn[] = [];
  await pool(n, 50, async () => {
    const conn = await ctx.connect(server.port);
    warm.push(conn);
    await touch(kind, conn);
  });
  for (const conn of warm) ctx.close(conn);
  await server.fdsSettle(fdsStart, 3);
  await delay(300);
  const rss0 = server.rssKiB();
  const fds0 = server.fds();
  const conns: Deno.Conn[] = [];
  let errors = 0;
  await pool(n, 50, async () => {
    try {
      const conn = await ctx.connect(server.port);
      conns.push(conn);
      await touch(kind, conn);
    } catch {
      errors++;
    }
  });
  await delay(500);
  const rss1 = server.rssKiB();
  const fds1 = server.fds();
  const perConn = (rss1 - rss0) / n;
  ctx.figure("connections held", `${n - errors} of ${n}`);
  ctx.figure("RSS", `${rss0} KiB → ${rss1} KiB`);
  ctx.figure("per connection", `${perConn.toFixed(1)} KiB`);
  ctx.figure("server fds", `${fds0} → ${fds1}`);
  if (errors > 0) ctx.fail(`${errors} of ${n} connections were not served`);
  if (perConn > MAX_KIB_PER_CONNECTION) {
    ctx.fail(
      `${perConn.toFixed(1)} KiB per idle connection ` +
        `(limit ${MAX_KIB_PER_CONNECTION} KiB)`,
    );
  }
  for (const conn of conns) ctx.close(conn);
  const fds2 = await server.fdsSettle(fds0, 3);
  ctx.figure("server fds after closing them", `${fds2}`);
  if (fds2 > fds0) ctx.fail(`${fds2 - fds0} fds still open after the close`);
}

/** `idle-echo` and `idle-http`. */
export const idleScenarios: Scenario[] = (["echo", "http"] as const).map((
  kind,
) => ({
  name: `idle-${kind}`,
  summary: `2,000 idle connections to the ${kind} server: ` +
    `RSS per connection`,
  run: (ctx: Ctx) => idle(ctx, kind),
}));
