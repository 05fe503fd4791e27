/**
 * `shield`: protect an awaitable from the cancellation of whoever waits
 * for it.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import { Future } from "../futures/future.ts";
import { type Awaitable, type Coroutine, ensureFuture, Task } from "./task.ts";
import { checkAwaitable, copyOutcome } from "./_awaitables.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** Options for `shield`. */
export interface ShieldOptions {
  /**
   * The loop to run a coroutine or follow a promise on.
   *
   * @default {the loop of `aw` if it is a future, else the running loop}
   */
  loop?: SchedulingLoop;
}

/**
 * Returns a future that follows `aw` but whose cancellation does not
 * reach `aw`. When the task waiting for the shield is cancelled, it gets
 * its `CancelledError` at once while `aw` carries on and its outcome goes
 * to whoever else waits for it. If `aw` itself is
 * cancelled, the shield is cancelled too. A coroutine is wrapped in a task
 * first; if `aw` is already done, it is returned as is.
 *
 * To shield an async function, pass it uncalled — `shield(work)` or
 * `shield(() => work(x))`: it then runs in a task of its own, as asyncio's
 * `shield(coro)` runs the coroutine, and cancelling the caller leaves it
 * alone. A generator function is taken the same way. The promise of an
 * async function already called, `shield(work(x))`, protects nothing in
 * its body: called from an async-function task, the body runs as part of
 * that task, and cancelling the task cancels the futures the body awaits,
 * shield or no shield (a promise cannot be moved to another task once its
 * code runs). Other promises are followed as they are; they are never
 * cancelled anyway.
 *
 * Keep a reference to the task behind a shield if you need its result
 * after the waiter gave up.
 *
 * PEP 3156 (as in asyncio): `asyncio.shield()`.
 *
 * @typeParam T The result type.
 * @param aw A future, task, generator coroutine or promise, or a function
 * (an async function or a generator function) to run in a task of its own.
 * @param options The loop to use.
 * @returns A future of `aw`'s result.
 * @throws {TypeError} When `aw` is not awaitable, or `options` is not an
 * object like `{ loop }`.
 * @throws {InvalidStateError} When `aw` is a future of another loop than
 * `options.loop`.
 *
 * @example The waiter gives up, the work goes on
 * ```ts
 * import { shield, sleep, waitFor, TimeoutError } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const save = loop.createTask(async () => await sleep(5, "saved"));
 * await assertRejects(
 *   () => loop.runUntilComplete(waitFor(shield(save), 1, { loop })),
 *   TimeoutError,
 * );
 * assertEquals(save.cancelled(), false);
 * assertEquals(await loop.runUntilComplete(save), "saved");
 * loop.close();
 * ```
 *
 * @example Shielding an async function: pass it uncalled
 * ```ts
 * import { shield, sleep } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const saved: string[] = [];
 * async function save(name: string): Promise<void> {
 *   await sleep(5);
 *   saved.push(name);
 * }
 * const request = loop.createTask(async () => {
 *   await shield(() => save("report")); // not shield(save("report"))
 * });
 * loop.callLater(1, () => request.cancel());
 * await assertRejects(() => loop.runUntilComplete(request));
 * await loop.advance(5);
 * assertEquals(saved, ["report"]);
 * loop.close();
 * ```
 */
export function shield<T>(
  aw: Awaitable<T> | (() => Coroutine<T> | PromiseLike<T>),
  options?: ShieldOptions,
): Future<T> {
  checkAwaitable(aw, "shield");
  checkOptions(options, "shield", "{ loop }");
  const loop = options?.loop;
  // A function runs in a task of its own, so that what its body awaits is
  // that task's, which nobody but the shield's inner side cancels.
  const inner = typeof aw === "function"
    ? new Task(aw, { loop })
    : ensureFuture(aw, { loop });
  if (inner.done()) return inner;
  const outer = new Future<T>({ loop: inner.getLoop() });
  const onInnerDone = (f: Future<T>): void => {
    if (outer.cancelled()) {
      if (!f.cancelled()) f.exception(); // retrieved: nobody will look now
      return;
    }
    if (!outer.done()) copyOutcome(f, outer);
  };
  inner.addDoneCallback(onInnerDone);
  outer.addDoneCallback(() => {
    if (!inner.done()) inner.removeDoneCallback(onInnerDone);
  });
  return outer;
}
