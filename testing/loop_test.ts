/**
 * `loopTest`: a `Deno.test` that runs its body on a fresh loop and fails on
 * what the body leaves behind — tulip's own sanitizers.
 *
 * @module
 */

import { formatReceived } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { BaseEventLoop } from "../loop/base_event_loop.ts";
import { DenoEventLoop } from "../loop/deno_event_loop.ts";
import type {
  EventLoop,
  ExceptionContext,
  Server,
} from "../loop/event_loop.ts";
import type { BaseProtocol } from "../protocols/protocol.ts";
import { allTasks } from "../tasks/task.ts";
import type { BaseTransport } from "../transports/transport.ts";
import { registerTest } from "./_deno_test.ts";
import { VirtualTimeLoop } from "./virtual_time_loop.ts";

/** Options for `loopTest`. */
export interface LoopTestOptions {
  /**
   * Run on a `VirtualTimeLoop`, whose sockets are in memory (`true`), or
   * on a real `DenoEventLoop` (`false`, for tests of what only the machine
   * has: its sockets, TLS, pipes, subprocesses, signals, workers).
   *
   * @default {true}
   */
  virtual?: boolean;
}

/**
 * A body of `loopTest`: a function of the loop, sync, async or generator.
 * The loop is a `VirtualTimeLoop` (virtual time) unless the
 * test asks for a real one with `virtual: false`.
 *
 * @typeParam L The loop it is given.
 */
export type LoopTestBody<L = VirtualTimeLoop> = (loop: L) => unknown;

function isGenerator(x: unknown): x is Generator<never, unknown, unknown> {
  return typeof x === "object" && x !== null &&
    typeof (x as Generator).next === "function" &&
    typeof (x as Generator).throw === "function";
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Wraps a protocol factory so that the transports it is given are seen. */
function watching<P extends BaseProtocol>(
  factory: () => P,
  transports: Set<BaseTransport>,
): () => P {
  return () => {
    const protocol = factory();
    // No protocol: the transport's own check says so.
    if (typeof protocol?.connectionMade !== "function") return protocol;
    const made = protocol.connectionMade;
    protocol.connectionMade = function (this: P, t: BaseTransport) {
      transports.add(t);
      return made.call(this, t);
    };
    return protocol;
  };
}

/**
 * Runs `fn(loop)` on a fresh loop as `loopTest` does, closes the loop, and
 * rejects if anything was left behind. Exposed for `loopTest` and its
 * tests.
 *
 * @param fn The test body.
 * @param options Which loop.
 * @returns A promise that resolves when the body passed the checks.
 * @throws {Error} Listing tasks still pending, transports left open,
 * servers still listening, and errors reported to the loop (such as a
 * future's exception never retrieved).
 * @throws {TypeError} When `virtual` is not a boolean.
 *
 * @example A body that leaves nothing behind, then one that does
 * ```ts
 * import { runLoopTest } from "@tulip/tulip/testing";
 * import { assertRejects } from "@std/assert";
 *
 * await runLoopTest(async (loop) => {
 *   await loop.createTask(async () => 42);
 * });
 * await assertRejects(
 *   () =>
 *     runLoopTest((loop) => {
 *       loop.createTask(() => loop.createFuture(), { name: "waits" });
 *     }),
 *   Error,
 *   "task still pending: waits",
 * );
 * ```
 */
export function runLoopTest(
  fn: LoopTestBody,
  options?: LoopTestOptions & { virtual?: true },
): Promise<void>;
/**
 * Runs `fn(loop)` on a fresh real `DenoEventLoop` as `loopTest` does with
 * `virtual: false`, closes the loop, and rejects if anything was left
 * behind.
 *
 * @param fn The test body.
 * @param options `{ virtual: false }`.
 * @returns A promise that resolves when the body passed the checks.
 * @throws {Error} Listing what the body left behind.
 */
export function runLoopTest(
  fn: LoopTestBody<EventLoop>,
  options: LoopTestOptions & { virtual: false },
): Promise<void>;
export function runLoopTest(
  fn: LoopTestBody<never>,
  options?: LoopTestOptions,
): Promise<void> {
  return runChecked(fn, options);
}

/** Throws when `options` is not `LoopTestOptions`. */
function checkOptions(what: string, options: unknown): void {
  if (options === undefined) return;
  const virtual = (options as LoopTestOptions | null)?.virtual;
  if (
    typeof options !== "object" || options === null ||
    (virtual !== undefined && typeof virtual !== "boolean")
  ) {
    throw new TypeError(
      `Cannot ${what}: options must be { virtual?: boolean }, received ${
        typeof options !== "object" || options === null
          ? String(options)
          : `virtual=${JSON.stringify(virtual)}`
      }`,
    );
  }
}

async function runChecked(
  fn: LoopTestBody<never>,
  options?: LoopTestOptions,
): Promise<void> {
  checkOptions("run a loop test", options);
  if (typeof fn !== "function") {
    throw new TypeError(
      `Cannot run a loop test: fn must be a function, received ${
        formatReceived(fn)
      }`,
    );
  }
  const loop: BaseEventLoop = options?.virtual === false
    ? new DenoEventLoop()
    : new VirtualTimeLoop();
  const reports: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => reports.push(context));
  // Debug mode reports futures whose exception was never retrieved (when
  // they are collected); slow callbacks are not this check's business.
  loop.setDebug(true);
  loop.slowCallbackDuration = Infinity;
  const transports = new Set<BaseTransport>();
  const servers = new Set<Server>();
  const wrap = loop as unknown as Record<string, unknown>;
  for (
    const name of [
      "createConnection",
      "createUnixConnection",
      "createServer",
      "createUnixServer",
      "createDatagramEndpoint",
    ]
  ) {
    const original = (wrap[name] as (...a: unknown[]) => Future<unknown>)
      .bind(loop);
    wrap[name] = (factory: () => BaseProtocol, ...rest: unknown[]) => {
      const future = original(watching(factory, transports), ...rest);
      if (name.endsWith("Server")) {
        future.addDoneCallback((f) => {
          if (!f.cancelled() && f.exception() == null) {
            servers.add(f.result() as Server);
          }
        });
      }
      return future;
    };
  }
  const problems: string[] = [];
  try {
    await loop.runUntilComplete(loop.createTask(() => {
      const r = fn(loop as never);
      return isGenerator(r) ? r : Promise.resolve(r);
    }, { name: "loopTest body" }));
    // Let what the body set in motion (closing transports) finish.
    for (let i = 0; i < 3; i++) {
      await loop.runUntilComplete(Promise.resolve());
    }
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc !== undefined) {
      gc();
      await new Promise((r) => setTimeout(r, 0));
      await loop.runUntilComplete(Promise.resolve());
    }
  } finally {
    for (const task of allTasks(loop)) {
      if (task.done()) continue;
      problems.push(`task still pending: ${task.getName()}`);
      task.cancel();
    }
    for (const t of transports) {
      if (t.isClosing()) continue;
      problems.push(
        `transport left open: ${String(t[Symbol.toStringTag as never] ?? t)}`,
      );
      (t as { abort?: () => void }).abort?.() ?? t.close();
    }
    for (const s of servers) {
      if (!s.isServing()) continue;
      problems.push(
        `server still listening on ${
          s.addresses().map((a) => JSON.stringify(a)).join(", ")
        }`,
      );
      s.close();
    }
    // Let the cancelled tasks and aborted transports wind down.
    for (let i = 0; i < 3; i++) {
      await loop.runUntilComplete(Promise.resolve());
    }
    for (const s of servers) {
      s.abortClients();
      await loop.runUntilComplete(s.waitClosed());
    }
    for (const r of reports) {
      problems.push(
        `error reported to the loop: ${r.message}${
          r.exception === undefined ? "" : ` (${describe(r.exception)})`
        }`,
      );
    }
    loop.close();
  }
  if (problems.length > 0) {
    throw new Error(
      `The test left ${problems.length} problem(s) behind:\n  ${
        problems.join("\n  ")
      }`,
    );
  }
}

/**
 * Registers a `Deno.test` that runs `fn(loop)` on a fresh loop — a
 * `VirtualTimeLoop`, or with `virtual: false` a real `DenoEventLoop` —
 * closes the loop after, and fails the test on what the body left behind:
 * tasks still pending (they are cancelled), transports left open and
 * servers still listening (they are closed), and errors reported to the
 * loop's exception handler, such as an exception set on a future that
 * nobody retrieved (found in debug mode when the future is collected: run
 * with `--v8-flags=--expose-gc` to collect before the check). What Deno's
 * sanitizers do for ops and resources, this does for tulip's own.
 *
 * `fn` may be a plain, async or generator function; the body runs as a
 * task on the loop.
 *
 * @param name The test's name.
 * @param fn The body, given the loop.
 * @param options Which loop.
 *
 * @example A timeout test on virtual time
 * ```ts ignore
 * import { loopTest } from "@tulip/tulip/testing";
 * import { sleep, TimeoutError, waitFor } from "@tulip/tulip";
 * import { assertRejects } from "@std/assert";
 *
 * loopTest("waitFor gives up after 30 s", async () => {
 *   await assertRejects(() => waitFor(sleep(60), 30), TimeoutError);
 * });
 * ```
 *
 * @example The checks without registering a test
 * ```ts
 * import { runLoopTest } from "@tulip/tulip/testing";
 * import { assertRejects } from "@std/assert";
 *
 * await assertRejects(
 *   () => runLoopTest((loop) => { loop.createTask(() => new Promise(() => {}), { name: "forgotten" }); }),
 *   Error,
 *   "task still pending: forgotten",
 * );
 * ```
 */
export function loopTest(
  name: string,
  fn: LoopTestBody,
  options?: LoopTestOptions & { virtual?: true },
): void;
/**
 * Registers a `Deno.test` that runs `fn(loop)` on a fresh real
 * `DenoEventLoop`, with the checks `loopTest` makes on virtual time.
 *
 * @param name The test's name.
 * @param fn The body, given the loop.
 * @param options `{ virtual: false }`.
 *
 * @example A test of a real socket
 * ```ts ignore
 * import { loopTest } from "@tulip/tulip/testing";
 * import { Protocol } from "@tulip/tulip/protocols";
 *
 * loopTest("a server listens on a real port", async (loop) => {
 *   const server = await loop.createServer(() => new Protocol(), "127.0.0.1", 0);
 *   server.close();
 *   await server.waitClosed();
 * }, { virtual: false });
 * ```
 */
export function loopTest(
  name: string,
  fn: LoopTestBody<EventLoop>,
  options: LoopTestOptions & { virtual: false },
): void;
export function loopTest(
  name: string,
  fn: LoopTestBody<never>,
  options?: LoopTestOptions,
): void {
  if (typeof name !== "string" || typeof fn !== "function") {
    throw new TypeError(
      `Cannot register a loop test: expected a name and a function, received ${typeof name} and ${typeof fn}`,
    );
  }
  checkOptions("register a loop test", options);
  registerTest(name, () => runChecked(fn, options));
}
