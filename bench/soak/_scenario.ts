/**
 * The shape of a soak scenario and the context it runs in: the servers
 * and connections it opens are closed when it ends, whatever happens.
 *
 * @module
 */

import { closeQuietly, connect } from "./_net.ts";
import { type ServerKind, ServerUnderTest } from "./_server.ts";

/** Thrown by `Ctx.skip`: the scenario cannot run here. */
export class SkipError extends Error {
  override name = "SkipError";
}

/** What a scenario is given. */
export class Ctx {
  /** Smaller counts and shorter waits. */
  readonly quick: boolean;
  /** The failures recorded so far; none means PASS. */
  readonly failures: string[] = [];
  readonly #servers: ServerUnderTest[] = [];
  readonly #conns = new Set<Deno.Conn>();

  constructor(quick: boolean) {
    this.quick = quick;
  }

  /** `quick` in quick mode, else `full`. */
  pick<T>(quick: T, full: T): T {
    return this.quick ? quick : full;
  }

  /** Prints one figure: `  label: value`. */
  figure(label: string, value: string): void {
    console.log(`  ${label}: ${value}`);
  }

  /** Records a failure; the scenario goes on and ends as FAIL. */
  fail(reason: string): void {
    this.failures.push(reason);
  }

  /** Ends the scenario as skipped, saying why. */
  skip(why: string): never {
    throw new SkipError(why);
  }

  /** Starts a server script; it is killed when the scenario ends. */
  async server(
    kind: ServerKind,
    args: Record<string, number> = {},
  ): Promise<ServerUnderTest> {
    const server = await ServerUnderTest.start(kind, args);
    this.#servers.push(server);
    return server;
  }

  /** Opens a connection; it is closed when the scenario ends. */
  async connect(port: number): Promise<Deno.TcpConn> {
    const conn = await connect(port);
    this.#conns.add(conn);
    return conn;
  }

  /** Closes a connection opened with `connect`. */
  close(conn: Deno.Conn): void {
    closeQuietly(conn);
    this.#conns.delete(conn);
  }

  /** Closes every connection and kills every server of the scenario. */
  async cleanUp(): Promise<void> {
    for (const conn of this.#conns) closeQuietly(conn);
    this.#conns.clear();
    await Promise.all(this.#servers.map((s) => s.stop()));
    this.#servers.length = 0;
  }
}

/** One scenario of the suite. */
export interface Scenario {
  /** The name `--only` takes. */
  readonly name: string;
  /** One line on what it does. */
  readonly summary: string;
  /** Runs it: figures through `ctx.figure`, failures through `ctx.fail`. */
  run(ctx: Ctx): Promise<void>;
}

/** KiB as MiB with one decimal. */
export function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

/** Milliseconds with one decimal. */
export function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

/** Runs `task(i)` for i in [0, count) with at most `width` at once. */
export async function pool(
  count: number,
  width: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
}
