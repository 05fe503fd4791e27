/**
 * `gather`: run awaitables side by side and collect their results in
 * order.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import { Future } from "../futures/future.ts";
import { CancelledError } from "../futures/errors.ts";
import {
  checkBoolean,
  checkOptions,
  takingCancelledError,
} from "../futures/_runtime.ts";
import { type Awaitable, ensureFuture } from "./task.ts";
import type { AwaitableResult } from "./awaitable_result.ts";
import { checkCollection } from "./_awaitables.ts";

/** Options for `gather`. */
export interface GatherOptions {
  /**
   * Put errors (a `CancelledError` for a cancelled child) in the results
   * instead of failing on the first one.
   *
   * @default {false}
   */
  returnExceptions?: boolean;
  /**
   * The loop to run coroutines and follow promises on, and of the
   * returned future.
   *
   * @default {the loop of the first future, else the running loop}
   */
  loop?: SchedulingLoop;
}

/**
 * The results of `gather(aws)`: a tuple (or array) with the result type of
 * each awaitable, in order.
 *
 * @typeParam T The tuple (or array) of awaitables.
 */
export type GatherResults<T extends readonly unknown[]> = {
  -readonly [K in keyof T]: AwaitableResult<T[K]>;
};

/**
 * The results of `gather(aws, { returnExceptions: true })`: each entry is
 * the result or the error of its awaitable (errors are passed on as
 * thrown; tulip's own, `CancelledError` included, are `Error`s).
 *
 * @typeParam T The tuple (or array) of awaitables.
 */
export type GatherSettledResults<T extends readonly unknown[]> = {
  -readonly [K in keyof T]: AwaitableResult<T[K]> | Error;
};

// The future gather() returns: cancelling it cancels the children.
class GatheringFuture<T> extends Future<T> {
  readonly #children: Future<unknown>[];
  #cancelRequested = false;
  #cancelMessage: string | undefined = undefined;

  constructor(children: Future<unknown>[], loop: SchedulingLoop) {
    super({ loop });
    this.#children = children;
  }

  get cancelRequested(): boolean {
    return this.#cancelRequested;
  }

  get cancelMessage(): string | undefined {
    return this.#cancelMessage;
  }

  override cancel(msg?: string): boolean {
    if (this.done()) return false;
    let any = false;
    for (const child of this.#children) any = child.cancel(msg) || any;
    if (any) {
      this.#cancelRequested = true;
      this.#cancelMessage = msg;
    }
    return any;
  }

  /**
   * Finishes with a `CancelledError`, as asyncio's gather does, rather
   * than cancelled: awaiting it throws the error all the same, but
   * `cancelled()` is `false` and `exception()` returns it.
   */
  failCancelled(msg?: string): void {
    takingCancelledError(() => this.setException(new CancelledError(msg)));
  }
}

/**
 * Runs the awaitables side by side and returns a future of their results,
 * in the order given (not the order they finish). Coroutines are wrapped
 * in tasks; the same awaitable given twice runs once.
 *
 * On the first error (or cancelled child) the future fails with it — a
 * cancelled child makes it fail with `CancelledError` — and the other
 * children keep running. With `returnExceptions`, errors take their place
 * among the results, a cancelled child giving a `CancelledError`.
 * Cancelling the returned future cancels every child that is not done;
 * the future then fails with `CancelledError` even with
 * `returnExceptions`. Either way, as in asyncio, the future is not
 * `cancelled()` itself: it finishes with the `CancelledError`, which
 * `exception()` returns and awaiting it throws. An empty list gives `[]`.
 *
 * A promise is only followed: cancelling the returned future does not
 * stop it. The promise of an async function called in an async-function
 * task, `gather([work(x)])`, runs its body as part of that task, so
 * cancelling the task reaches the body all the same; for the returned
 * future's `cancel()` to reach it too, give a task instead:
 * `gather([loop.createTask(() => work(x))])`.
 *
 * PEP 3156: `tulip.gather()`, with asyncio's semantics.
 *
 * @typeParam T The tuple (or array) of awaitables.
 * @param aws The awaitables: futures, tasks, coroutines or promises.
 * @param options Whether to return errors, and the loop to use.
 * @returns A future of the results, typed per position.
 * @throws {TypeError} When `aws` is not an iterable of awaitables, or
 * `options` is not an object (`returnExceptions` given positionally
 * included), or `returnExceptions` is not a boolean.
 *
 * @example Results in order, typed per position
 * ```ts
 * import { gather, sleep } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * function* main(): Coroutine<string> {
 *   const [word, count] = yield* gather([sleep(2, "two"), sleep(1, 1)]);
 *   return word.repeat(count + 1);
 * }
 * assertEquals(await loop.runUntilComplete(main()), "twotwo");
 * assertEquals(loop.time(), 2);
 * loop.close();
 * ```
 *
 * @example Errors among the results
 * ```ts
 * import { gather, sleep } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals, assertInstanceOf } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const main = loop.createTask(async () => {
 *   const fail = async () => {
 *     await sleep(1);
 *     throw new RangeError("too big");
 *   };
 *   return await gather([sleep(2, "ok"), fail()], { returnExceptions: true });
 * });
 * const [ok, err] = await loop.runUntilComplete(main);
 * assertEquals(ok, "ok");
 * assertInstanceOf(err, RangeError);
 * loop.close();
 * ```
 */
export function gather<const T extends readonly Awaitable<unknown>[]>(
  aws: T,
  options: GatherOptions & { returnExceptions: true },
): Future<GatherSettledResults<T>>;
/**
 * Runs the awaitables side by side and returns a future of their results,
 * in the order given; fails on the first error. See the first signature
 * for the whole contract.
 *
 * @typeParam T The tuple (or array) of awaitables.
 * @param aws The awaitables: futures, tasks, coroutines or promises.
 * @param options The loop to use (`returnExceptions` false).
 * @returns A future of the results, typed per position.
 * @throws {TypeError} When `aws` is not an iterable of awaitables, or
 * `options` is not an object.
 */
export function gather<const T extends readonly Awaitable<unknown>[]>(
  aws: T,
  options?: GatherOptions,
): Future<GatherResults<T>>;
export function gather<const T extends readonly Awaitable<unknown>[]>(
  aws: T,
  options?: GatherOptions,
): Future<GatherResults<T> | GatherSettledResults<T>> {
  checkCollection(aws, "gather");
  checkOptions(options, "gather", "{ returnExceptions }");
  const returnExceptions = options?.returnExceptions ?? false;
  checkBoolean(returnExceptions, "gather", "returnExceptions");
  let loop = options?.loop;
  const byArg = new Map<unknown, Future<unknown>>();
  const children: Future<unknown>[] = [];
  for (const aw of aws) {
    let fut = byArg.get(aw);
    if (fut === undefined) {
      fut = ensureFuture(aw, { loop });
      loop ??= fut.getLoop();
      byArg.set(aw, fut);
    }
    children.push(fut);
  }
  type R = GatherResults<T>;
  if (children.length === 0) {
    const empty = new Future<R>({ loop });
    empty.setResult([] as unknown as R);
    return empty;
  }
  const outer = new GatheringFuture<R>(children, loop!);
  const unique = [...byArg.values()];
  let finished = 0;
  const onChildDone = (fut: Future<unknown>): void => {
    finished++;
    if (outer.done()) {
      if (!fut.cancelled()) fut.exception(); // retrieved: nobody else will
      return;
    }
    if (!returnExceptions) {
      if (fut.cancelled()) {
        outer.failCancelled(cancelMessageOf(fut));
        return;
      }
      const exc = fut.exception();
      if (exc instanceof CancelledError) {
        // A gather() child finished with one: passed on the same way.
        outer.failCancelled(exc.message || undefined);
        return;
      }
      if (exc !== undefined) {
        outer.setException(exc);
        return;
      }
    }
    if (finished < unique.length) return;
    if (outer.cancelRequested) {
      outer.failCancelled(outer.cancelMessage);
      return;
    }
    const results = children.map((child) => {
      try {
        return child.result();
      } catch (e) {
        return e;
      }
    });
    outer.setResult(results as unknown as R);
  };
  for (const fut of unique) {
    // Like asyncio: children already done are counted at once, so that a
    // gather of finished futures is itself finished on return.
    if (fut.done()) onChildDone(fut);
    else fut.addDoneCallback(onChildDone);
  }
  return outer;
}

function cancelMessageOf(fut: Future<unknown>): string | undefined {
  try {
    fut.result();
  } catch (e) {
    if (e instanceof CancelledError) return e.message || undefined;
  }
  return undefined;
}
