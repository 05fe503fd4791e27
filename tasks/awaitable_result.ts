/**
 * `AwaitableResult`: the type an awaitable gives back.
 *
 * @module
 */

/**
 * The result type of an awaitable: `T` for a `Future<T>`, a `Task<T>`, a
 * generator `Coroutine<T>` or a `PromiseLike<T>`. `gather`, `wait` and
 * `asCompleted` use it to type what they give back, so that
 * `gather([sleep(1, "a"), sleep(1, 2)])` is a `Future<[string, number]>`.
 *
 * @typeParam A The awaitable's type.
 *
 * @example Naming the result of a coroutine
 * ```ts
 * import type { AwaitableResult, Coroutine, Future } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * function* answer(): Coroutine<number> {
 *   return 42;
 * }
 * const a: AwaitableResult<ReturnType<typeof answer>> = 42;
 * const b: AwaitableResult<Future<string>> = "ok";
 * assertEquals([a, b], [42, "ok"]);
 * ```
 */
export type AwaitableResult<A> = A extends Generator<unknown, infer R, never>
  ? R
  : Awaited<A>;
