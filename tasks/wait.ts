/**
 * `wait`: wait for several awaitables until some condition, and tell the
 * finished from the pending; with the `FIRST_COMPLETED`,
 * `FIRST_EXCEPTION` and `ALL_COMPLETED` conditions.
 *
 * @module
 */

import { formatReceived } from "../futures/errors.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { TimerHandle } from "../loop/handle.ts";
import { Future } from "../futures/future.ts";
import { type Awaitable, ensureFuture } from "./task.ts";
import type { AwaitableResult } from "./awaitable_result.ts";
import { checkCollection, checkTimeout } from "./_awaitables.ts";
import { checkOptions } from "../futures/_runtime.ts";

/**
 * `wait()` returns as soon as any awaitable finishes or is cancelled.
 *
 * PEP 3156: `tulip.FIRST_COMPLETED`.
 *
 * @example
 * ```ts
 * import { FIRST_COMPLETED } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(FIRST_COMPLETED, "FIRST_COMPLETED");
 * ```
 */
export const FIRST_COMPLETED = "FIRST_COMPLETED";

/**
 * `wait()` returns as soon as any awaitable fails with an error (a
 * cancellation does not count), or when all are done.
 *
 * PEP 3156: `tulip.FIRST_EXCEPTION`.
 *
 * @example
 * ```ts
 * import { FIRST_EXCEPTION } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(FIRST_EXCEPTION, "FIRST_EXCEPTION");
 * ```
 */
export const FIRST_EXCEPTION = "FIRST_EXCEPTION";

/**
 * `wait()` returns when every awaitable is done (the default).
 *
 * PEP 3156: `tulip.ALL_COMPLETED`.
 *
 * @example
 * ```ts
 * import { ALL_COMPLETED } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(ALL_COMPLETED, "ALL_COMPLETED");
 * ```
 */
export const ALL_COMPLETED = "ALL_COMPLETED";

/** When `wait()` returns: one of the three constants. */
export type ReturnWhen =
  | typeof FIRST_COMPLETED
  | typeof FIRST_EXCEPTION
  | typeof ALL_COMPLETED;

/** Options for `wait`. */
export interface WaitOptions {
  /**
   * Return after this many seconds at most, even if the condition is not
   * met; `null` for no limit. Nothing is cancelled when it passes.
   *
   * @default {null}
   */
  timeout?: number | null;
  /**
   * When to return: `FIRST_COMPLETED`, `FIRST_EXCEPTION` or
   * `ALL_COMPLETED`.
   *
   * @default {ALL_COMPLETED}
   */
  returnWhen?: ReturnWhen;
  /**
   * The loop to run coroutines and follow promises on, and of the
   * returned future.
   *
   * @default {the loop of the first future, else the running loop}
   */
  loop?: SchedulingLoop;
}

/**
 * Waits for the awaitables until `returnWhen` is met or `timeout` seconds
 * pass, and returns a future of two sets: the futures that are done and
 * those still pending. Nothing is cancelled, neither on timeout nor when
 * the returned future is cancelled.
 *
 * The two sets are made when the result is first read — when the waiting
 * coroutine resumes, as asyncio's `wait()` sorts the futures after its
 * waiter wakes — so a future that finished in the iteration between the
 * timeout (or the completion) and the caller's resumption is in `done`.
 *
 * Coroutines and promises are wrapped (in tasks, with `wrapFuture`), and
 * the sets then hold the wrappers: pass futures or tasks to recognise
 * them. The same awaitable given twice counts once.
 *
 * PEP 3156: `tulip.wait()`.
 *
 * @typeParam A The type of the awaitables.
 * @param fs The awaitables: futures, tasks, coroutines or promises.
 * @param options The timeout in seconds, when to return, and the loop.
 * @returns A future of `[done, pending]`.
 * @throws {TypeError} When `fs` is a single future or coroutine, or not
 * iterable, or `timeout` is not a number, or `options` is not an object
 * (a timeout given positionally included).
 * @throws {RangeError} When `fs` is empty or `returnWhen` is unknown.
 *
 * @example The first to finish
 * ```ts
 * import { FIRST_COMPLETED, sleep, wait } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * function* main(): Coroutine<string> {
 *   const slow = sleep(10, "slow");
 *   const fast = sleep(1, "fast");
 *   const [done, pending] = yield* wait([slow, fast], { returnWhen: FIRST_COMPLETED });
 *   assertEquals(pending.has(slow), true);
 *   slow.cancel();
 *   return [...done].map((f) => f.result()).join();
 * }
 * assertEquals(await loop.runUntilComplete(main()), "fast");
 * assertEquals(loop.time(), 1);
 * loop.close();
 * ```
 *
 * @example A timeout leaves the rest running
 * ```ts
 * import { sleep, wait } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const main = loop.createTask(async () => {
 *   const [done, pending] = await wait([sleep(1), sleep(60)], { timeout: 5 });
 *   return [done.size, pending.size, loop.time()];
 * });
 * assertEquals(await loop.runUntilComplete(main), [1, 1, 5]);
 * loop.close();
 * ```
 */
export function wait<A extends Awaitable<unknown>>(
  fs: Iterable<A>,
  options?: WaitOptions,
): Future<
  [Set<Future<AwaitableResult<A>>>, Set<Future<AwaitableResult<A>>>]
> {
  type F = Future<AwaitableResult<A>>;
  checkCollection(fs, "wait");
  checkOptions(options, "wait", "{ timeout, returnWhen }");
  const limit = checkTimeout(options?.timeout, "wait");
  const returnWhen = options?.returnWhen ?? ALL_COMPLETED;
  if (
    returnWhen !== FIRST_COMPLETED && returnWhen !== FIRST_EXCEPTION &&
    returnWhen !== ALL_COMPLETED
  ) {
    throw new RangeError(
      `Cannot wait: returnWhen must be FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED, received ${
        formatReceived(returnWhen)
      }`,
    );
  }
  const args = new Set<A>(fs);
  if (args.size === 0) {
    throw new RangeError(
      "Cannot wait: the set of awaitables is empty, received 0 awaitables",
    );
  }
  let loop = options?.loop;
  const futures = new Set<F>();
  for (const aw of args) {
    const fut = ensureFuture(aw, { loop }) as F;
    loop ??= fut.getLoop();
    futures.add(fut);
  }
  const result = new WaitResult<F>(futures, { loop });
  let counter = futures.size;
  let timer: TimerHandle | null = null;

  const finish = (): void => {
    cleanup();
    if (result.done()) return;
    result.setResult(split(futures));
  };
  const cleanup = (): void => {
    timer?.cancel();
    timer = null;
    for (const f of futures) f.removeDoneCallback(onCompletion);
  };
  const onCompletion = (f: F): void => {
    counter--;
    if (
      counter <= 0 || returnWhen === FIRST_COMPLETED ||
      (returnWhen === FIRST_EXCEPTION && !f.cancelled() &&
        f.exception() !== undefined)
    ) {
      finish();
    }
  };

  for (const f of futures) f.addDoneCallback(onCompletion);
  if (limit !== null) timer = result.getLoop().callLater(limit, finish);
  result.addDoneCallback(() => {
    if (result.cancelled()) cleanup();
  });
  return result;
}

function split<F extends Future<unknown>>(futures: Set<F>): [Set<F>, Set<F>] {
  const done = new Set<F>();
  const pending = new Set<F>();
  for (const f of futures) (f.done() ? done : pending).add(f);
  return [done, pending];
}

// The future wait() returns: its sets are made again when the result is
// first read, so that they are current when the caller resumes.
class WaitResult<F extends Future<unknown>> extends Future<[Set<F>, Set<F>]> {
  readonly #futures: Set<F>;
  #sets: [Set<F>, Set<F>] | null = null;

  constructor(futures: Set<F>, options: { loop?: SchedulingLoop }) {
    super(options);
    this.#futures = futures;
  }

  override result(): [Set<F>, Set<F>] {
    super.result(); // throws if pending or cancelled
    return this.#sets ??= split(this.#futures);
  }
}
