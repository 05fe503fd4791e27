/**
 * `asCompleted`: take the results of several awaitables in the order they
 * finish.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { TimerHandle } from "../loop/handle.ts";
import { Future } from "../futures/future.ts";
import { TimeoutError } from "../futures/errors.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import { type Awaitable, ensureFuture } from "./task.ts";
import type { AwaitableResult } from "./awaitable_result.ts";
import { checkCollection, checkTimeout, copyOutcome } from "./_awaitables.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** Options for `asCompleted`. */
export interface AsCompletedOptions {
  /**
   * After this many seconds, every result not taken yet is a
   * `TimeoutError`; `null` for no limit. Nothing is cancelled when it
   * passes.
   *
   * @default {null}
   */
  timeout?: number | null;
  /**
   * The loop to run coroutines and follow promises on.
   *
   * @default {the loop of the first future, else the running loop}
   */
  loop?: SchedulingLoop;
}

/**
 * What `asCompleted()` returns: iterable both ways, one result per
 * awaitable, in the order they finish.
 *
 * - Iterated with `for…of` (for generator coroutines) it gives futures:
 *   the first resolves like whichever awaitable finishes first, the second
 *   like the next, and so on.
 * - Iterated with `for await…of` (in async functions) it gives the results
 *   themselves, and throws the first error.
 *
 * Both views share one queue: each result is handed out once, whichever
 * way it is taken. After the timeout, every result not yet taken is a
 * `TimeoutError`. A future handed out and then cancelled (its task was
 * cancelled while waiting) gives its result back to the next one. Leaving
 * a loop early (`break`, an error, `const [first] = …`) changes nothing:
 * the futures handed out stay valid and a later loop takes the rest.
 *
 * @typeParam T The result type.
 */
export interface AsCompletedIterator<T>
  extends Iterable<Future<T>>, AsyncIterable<T> {
  /**
   * Returns an iterator of futures, one per result not yet taken.
   *
   * @returns The iterator.
   */
  [Symbol.iterator](): IterableIterator<Future<T>>;
  /**
   * Returns an async iterator of the results not yet taken.
   *
   * @returns The async iterator.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<T>;
}

// One result slot: a completed future, or TIMED_OUT.
const TIMED_OUT = null;

class AsCompletedQueue<T> implements AsCompletedIterator<T> {
  #loop: SchedulingLoop | null;
  #todo: Set<Future<T>>;
  #done: (Future<T> | typeof TIMED_OUT)[] = [];
  #getters: Future<T>[] = [];
  #left: number;
  #timer: TimerHandle | null = null;
  #timeout: number | null;

  constructor(
    todo: Set<Future<T>>,
    loop: SchedulingLoop | null,
    timeout: number | null,
  ) {
    this.#todo = todo;
    this.#loop = loop;
    this.#left = todo.size;
    this.#timeout = timeout;
    for (const f of todo) f.addDoneCallback(this.#onCompletion);
    if (todo.size > 0 && timeout !== null) {
      this.#timer = loop!.callLater(timeout, this.#onTimeout);
    }
  }

  *[Symbol.iterator](): IterableIterator<Future<T>> {
    while (this.#left > 0) yield this.#take();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    const iterator: AsyncIterableIterator<T> = {
      next: (): Promise<IteratorResult<T>> => {
        if (this.#left === 0) {
          return Promise.resolve({ done: true, value: undefined });
        }
        // Future.then() lets the awaiting task see (and cancel) the wait.
        return this.#take().then((value) => ({ done: false, value }));
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  #take(): Future<T> {
    this.#left--;
    const out = new Future<T>({ loop: this.#loop! });
    this.#getters.push(out);
    out.addDoneCallback(this.#onGetterDone);
    this.#deliver();
    return out;
  }

  // A future handed out but cancelled by its taker (its task was
  // cancelled) gives its result back to the next one.
  #onGetterDone = (out: Future<T>): void => {
    const i = this.#getters.indexOf(out);
    if (i < 0) return;
    this.#getters.splice(i, 1);
    this.#left++;
  };

  #deliver(): void {
    while (this.#getters.length > 0 && this.#done.length > 0) {
      const out = this.#getters.shift()!;
      if (out.done()) {
        this.#left++; // cancelled by its taker: the result stays queued
        continue;
      }
      const f = this.#done.shift()!;
      if (f === TIMED_OUT) {
        out.setException(
          new TimeoutError(
            `Cannot take the next result: the timeout passed, received timeout=${this.#timeout}`,
          ),
        );
        continue;
      }
      copyOutcome(f, out);
    }
  }

  #onCompletion = (f: Future<T>): void => {
    if (!this.#todo.delete(f)) return; // the timeout came first
    this.#done.push(f);
    if (this.#todo.size === 0) {
      this.#timer?.cancel();
      this.#timer = null;
    }
    this.#deliver();
  };

  #onTimeout = (): void => {
    this.#timer = null;
    for (const f of this.#todo) {
      f.removeDoneCallback(this.#onCompletion);
      this.#done.push(TIMED_OUT);
    }
    this.#todo.clear();
    this.#deliver();
  };
}

/**
 * Returns the results of the awaitables in the order they finish, for
 * `for…of` in generator coroutines (each item a future to `yield*`) and
 * for `for await…of` in async functions (each item a result). Coroutines
 * and promises are wrapped in futures at once; the same awaitable given
 * twice counts once. With `timeout`, the results not taken when it passes
 * are `TimeoutError`s; nothing is cancelled.
 *
 * PEP 3156: `tulip.as_completed()`; like asyncio 3.13's, it works with
 * both kinds of iteration (here async iteration gives results, not
 * futures).
 *
 * @typeParam A The type of the awaitables.
 * @param fs The awaitables: futures, tasks, coroutines or promises.
 * @param options The timeout in seconds, and the loop.
 * @returns An iterable of futures that is also an async iterable of
 * results.
 * @throws {TypeError} When `fs` is a single future or coroutine, or not
 * iterable, or `timeout` is not a number, or `options` is not an object
 * (a timeout given positionally included).
 *
 * @example In a generator coroutine
 * ```ts
 * import { asCompleted, sleep } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * function* main(): Coroutine<string[]> {
 *   const order: string[] = [];
 *   for (const next of asCompleted([sleep(3, "c"), sleep(1, "a"), sleep(2, "b")])) {
 *     order.push(yield* next);
 *   }
 *   return order;
 * }
 * assertEquals(await loop.runUntilComplete(main()), ["a", "b", "c"]);
 * loop.close();
 * ```
 *
 * @example In an async function, with a timeout
 * ```ts
 * import { asCompleted, sleep, TimeoutError } from "@tulip/tulip";
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals, assertInstanceOf } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const main = loop.createTask(async () => {
 *   const got: number[] = [];
 *   try {
 *     for await (const n of asCompleted([sleep(2, 2), sleep(1, 1), sleep(60, 60)], { timeout: 5 })) {
 *       got.push(n);
 *     }
 *   } catch (e) {
 *     assertInstanceOf(e, TimeoutError);
 *   }
 *   return got;
 * });
 * assertEquals(await loop.runUntilComplete(main), [1, 2]);
 * assertEquals(loop.time(), 5);
 * loop.close();
 * ```
 */
export function asCompleted<A extends Awaitable<unknown>>(
  fs: Iterable<A>,
  options?: AsCompletedOptions,
): AsCompletedIterator<AwaitableResult<A>> {
  type F = Future<AwaitableResult<A>>;
  checkCollection(fs, "iterate as completed");
  checkOptions(options, "iterate as completed", "{ timeout }");
  const limit = checkTimeout(options?.timeout, "iterate as completed");
  let loop = options?.loop;
  const todo = new Set<F>();
  for (const aw of new Set<A>(fs)) {
    const fut = ensureFuture(aw, { loop }) as F;
    loop ??= fut.getLoop();
    todo.add(fut);
  }
  return new AsCompletedQueue(todo, loop ?? getRunningLoop(), limit);
}
