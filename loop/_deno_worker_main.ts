/**
 * The program each `serveWorkers()` worker runs: it imports the user's
 * worker module, calls its `serve(loop, info)` on a fresh loop, reports
 * the addresses served, answers the supervisor's pings, and on
 * "shutdown" shuts its servers down gracefully, cleans the loop up as
 * `run()` does, reports "closed" and ends.
 *
 * The messages, parent to worker: `{ type: "start", moduleUrl, info }`
 * (once), `{ type: "ping", seq }`, `{ type: "shutdown", grace }`. Worker
 * to parent: `{ type: "ready", addresses }`, `{ type: "pong", seq }`,
 * `{ type: "failed", error }` (the module did not load, `serve()` failed,
 * a shutdown failed, or the worker is ending itself; `error` is a plain
 * `{ name, message, stack }`),
 * `{ type: "closed" }`.
 *
 * @module
 */

import type { EventLoop, Server } from "./event_loop.ts";
import type { Future } from "../futures/future.ts";
import { getEventLoop } from "./policy.ts";
import { run } from "./run.ts";

/** The parts of a worker's global scope this program uses. */
interface WorkerScope {
  postMessage(message: unknown): void;
  close(): void;
  addEventListener(
    type: "message",
    listener: (event: MessageEvent) => void,
  ): void;
  addEventListener(type: "error", listener: (event: ErrorEvent) => void): void;
  addEventListener(
    type: "unhandledrejection",
    listener: (event: PromiseRejectionEvent) => void,
  ): void;
}

/** What the supervisor tells a worker about itself. */
interface WorkerInfo {
  index: number;
  workers: number;
  port: number;
}

interface StartMessage {
  type: "start";
  moduleUrl: string;
  info: WorkerInfo;
}

const scope = globalThis as unknown as WorkerScope;

let started = false;
/** The grace asked for by a "shutdown" that came before the loop ran. */
let pendingGrace: number | null = null;
/** Passes a "shutdown" to the running loop, once there is one. */
let requestShutdown: ((grace: number) => void) | null = null;

scope.addEventListener("message", (event) => {
  const message = event.data as { type: string; [key: string]: unknown };
  switch (message?.type) {
    case "ping":
      scope.postMessage({ type: "pong", seq: message.seq });
      break;
    case "start":
      if (started) break;
      started = true;
      main(message as unknown as StartMessage);
      break;
    case "shutdown": {
      const grace = message.grace as number;
      if (requestShutdown !== null) requestShutdown(grace);
      else pendingGrace = Math.min(pendingGrace ?? Infinity, grace);
      break;
    }
  }
});

// An error nothing caught (thrown from a host timer, say, or a promise
// rejection nobody handles) is reported as a failure instead of printed;
// the supervisor then replaces this worker.
scope.addEventListener("error", (event) => {
  event.preventDefault();
  scope.postMessage({
    type: "failed",
    error: describe(event.error ?? new Error(event.message)),
  });
});
scope.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  scope.postMessage({ type: "failed", error: describe(event.reason) });
});

// A worker that ends sends no event: `self.close()` and `Deno.exit()`
// (which `process.exit()` calls) report it first, so that the supervisor
// replaces this worker at once instead of after its pings time out.
const closeWorker = scope.close.bind(scope);
function ended(how: string): void {
  scope.postMessage({
    type: "failed",
    error: {
      name: "Error",
      message: `it ended itself: ${how} was called in it`,
    },
  });
}
scope.close = () => {
  ended("self.close()");
  closeWorker();
};
const exitWorker = Deno.exit;
Deno.exit = (code?: number): never => {
  ended(`Deno.exit(${code ?? ""})`);
  return exitWorker(code);
};

/** An error as a plain object, which any `postMessage()` can carry. */
function describe(error: unknown): {
  name: string;
  message: string;
  stack?: string;
} {
  if (error instanceof Error) {
    return { name: error.name, message: error.message, stack: error.stack };
  }
  return { name: "Error", message: String(error) };
}

/** The servers `serve()` gave, or an error saying what it gave instead. */
function serversOf(value: unknown, moduleUrl: string): Server[] {
  const list = Array.isArray(value) ? value : [value];
  for (const server of list) {
    if (
      typeof server !== "object" || server === null ||
      typeof (server as Server).shutdown !== "function" ||
      typeof (server as Server).addresses !== "function"
    ) {
      throw new TypeError(
        `Cannot serve from ${moduleUrl}: serve() must return a Server, an array of them, or a promise of either, received ${
          server === null ? "null" : typeof server
        }`,
      );
    }
  }
  if (list.length === 0) {
    throw new TypeError(
      `Cannot serve from ${moduleUrl}: serve() must return at least one Server, received an empty array`,
    );
  }
  return list as Server[];
}

async function main({ moduleUrl, info }: StartMessage): Promise<void> {
  try {
    await run(async () => {
      const loop = getEventLoop();
      let module: Record<string, unknown>;
      try {
        module = await import(moduleUrl);
      } catch (error) {
        throw new TypeError(
          `Cannot serve from ${moduleUrl}: the module failed to load: ${
            describe(error).message
          }`,
          { cause: error },
        );
      }
      const serve = module.serve;
      if (typeof serve !== "function") {
        throw new TypeError(
          `Cannot serve from ${moduleUrl}: the module must export a function serve(loop, info), received ${
            "serve" in module ? typeof serve : "no serve export"
          }`,
        );
      }
      const servers = serversOf(
        await (serve as (l: EventLoop, i: WorkerInfo) => unknown)(
          loop,
          Object.freeze({ ...info }),
        ),
        moduleUrl,
      );
      const asked = loop.createFuture<number>();
      requestShutdown = (grace) => {
        loop.callSoonThreadsafe(() => {
          if (!asked.done()) asked.setResult(grace);
        });
      };
      if (pendingGrace !== null) requestShutdown(pendingGrace);
      scope.postMessage({
        type: "ready",
        addresses: servers.flatMap((server) => server.addresses()),
      });
      const grace = await asked;
      const closing: Future<void>[] = servers.map((server) =>
        server.shutdown({ grace })
      );
      for (const done of closing) await done;
    });
  } catch (error) {
    scope.postMessage({ type: "failed", error: describe(error) });
    return;
  }
  scope.postMessage({ type: "closed" });
  closeWorker();
}
