/**
 * What the soak servers share: `--name=value` arguments, listening on
 * 127.0.0.1, printing the port, and a graceful shutdown on SIGTERM.
 *
 * @module
 */

import v8 from "node:v8";
import { newEventLoop, setEventLoop } from "../../../mod.ts";
import type { EventLoop, Protocol, Server } from "../../../mod.ts";

/** The `--name=value` arguments of the process, by name. */
export class Args {
  readonly #values = new Map<string, string>();

  constructor(argv: readonly string[]) {
    for (const arg of argv) {
      const m = /^--([a-z-]+)=(.*)$/.exec(arg);
      if (m === null) fail(`arguments are --name=value, received "${arg}"`);
      this.#values.set(m[1], m[2]);
    }
  }

  /** A number argument; `fallback` when absent, `undefined` for none. */
  number(name: string): number | undefined;
  number(name: string, fallback: number): number;
  number(name: string, fallback?: number): number | undefined {
    const raw = this.#values.get(name);
    if (raw === undefined) return fallback;
    const value = raw === "Infinity" ? Infinity : Number(raw);
    if (Number.isNaN(value)) {
      fail(`--${name} must be a number, received "${raw}"`);
    }
    return value;
  }
}

/**
 * What a server script prints on SIGUSR2: `heap <js> <committed> <young>
 * <handled>`. After a full garbage collection (when run with
 * `--v8-flags=--expose-gc`): the JS heap in use plus the memory outside it
 * that JS objects hold (array buffers), and the heap V8 has committed,
 * used or not; the size of V8's young generation, read before that
 * collection; all in bytes. Last, the requests the script's handler was
 * called with.
 *
 * @param handled The handler's call count (0 for a server without one).
 * @returns The line.
 */
export function heapLine(handled: number): string {
  const young = v8.getHeapSpaceStatistics()
    .find((s) => s.space_name === "new_space")?.space_size ?? 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const { heapUsed, external, heapTotal } = Deno.memoryUsage();
  return `heap ${heapUsed + external} ${heapTotal} ${young} ${handled}`;
}

/** Exits with a "Cannot start" message. */
export function fail(why: string): never {
  console.error(`Cannot start the soak server: ${why}`);
  Deno.exit(2);
}

/**
 * A server that may have a graceful `shutdown` — added by the hardening
 * work; until then the scripts fall back to `close()` plus
 * `closeClients()`.
 */
type MaybeGraceful = Server & {
  shutdown?: (options: { grace: number }) => unknown;
};

/**
 * Serves `factory` on 127.0.0.1 at `--port` (0: any free port), prints
 * `listening <port>`, and on SIGTERM shuts down gracefully within
 * `--grace` seconds (default 2), printing `closed in <ms> ms` before it
 * exits with code 0 (or 1 when the connections outlived the grace). On
 * SIGUSR2 it prints {@linkcode heapLine}.
 */
export async function serve(
  args: Args,
  factory: (loop: EventLoop) => Protocol,
  handled: () => number = () => 0,
): Promise<void> {
  const loop = newEventLoop();
  setEventLoop(loop);
  const server: MaybeGraceful = await loop.runUntilComplete(
    loop.createServer(() => factory(loop), "127.0.0.1", args.number("port", 0)),
  );
  const grace = args.number("grace", 2);
  const closed = loop.createFuture<number>();
  loop.addSignalHandler("SIGTERM", () => {
    const start = performance.now();
    if (server.shutdown !== undefined) {
      server.shutdown({ grace });
    } else {
      server.close();
      server.closeClients();
    }
    server.waitClosed().addDoneCallback(() => {
      if (!closed.done()) closed.setResult(performance.now() - start);
    });
    // Past the grace, what is left is cut, so that the process ends.
    loop.callLater(grace + 0.5, () => {
      if (closed.done()) return;
      server.abortClients();
      closed.setResult(-1);
    });
  });
  loop.addSignalHandler("SIGUSR2", () => console.log(heapLine(handled())));
  const port = (server.addresses()[0] as Deno.NetAddr).port;
  console.log(`listening ${port}`);
  const ms = await loop.runUntilComplete(closed);
  console.log(ms < 0 ? "aborted after the grace" : `closed in ${ms} ms`);
  loop.close();
  Deno.exit(ms < 0 ? 1 : 0);
}
