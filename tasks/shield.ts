/**
 * `shield`: protect an awaitable from the cancellation of whoever waits
 * for it.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import { Future } from "../futures/future.ts";
import { type Awaitable, ensureFuture } from "./task.ts";
import { copyOutcome } from "./_awaitables.ts";
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
 * Keep a reference to the task behind a shield if you need its result
 * after the waiter gave up.
 *
 * PEP 3156 (as in asyncio): `asyncio.shield()`.
 *
 * @typeParam T The result type.
 * @param aw A future, task, generator coroutine or promise.
 * @param options The loop to use.
 * @returns A future of `aw`'s result.
 * @throws {TypeError} When `aw` is not awaitable, or `options` is not an
 * object like `{ loop }`.
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
 */
export function shield<T>(
  aw: Awaitable<T>,
  options?: ShieldOptions,
): Future<T> {
  checkOptions(options, "shield", "{ loop }");
  const inner = ensureFuture(aw, { loop: options?.loop });
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
