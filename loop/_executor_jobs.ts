// What `loop.runInExecutor()` knows of a `WorkerExecutor` beyond the
// `Executor` interface. Private to loop/.

/**
 * For each promise `WorkerExecutor.submit()` returned: drops its job if it
 * still waits for a worker, rejecting the promise with a `CancelledError`,
 * and returns whether it did. `runInExecutor()` calls it when its future
 * is cancelled, as asyncio cancels the executor's future.
 */
export const cancelQueuedJob: WeakMap<Promise<unknown>, () => boolean> =
  new WeakMap();

/**
 * Refuses a generator or async generator function — a coroutine, which
 * `createTask()` runs — as asyncio's `run_in_executor()` refuses a
 * coroutine function. An async function is fine: the executor awaits it.
 */
export function checkExecutorFn(fn: (...args: never[]) => unknown): void {
  const kind = Object.prototype.toString.call(fn);
  if (
    kind === "[object GeneratorFunction]" ||
    kind === "[object AsyncGeneratorFunction]"
  ) {
    throw new TypeError(
      `Cannot call runInExecutor(): fn must be a plain or async function, received the ${
        kind === "[object GeneratorFunction]" ? "generator" : "async generator"
      } function ${
        fn.name || "anonymous"
      } (a coroutine: run it with loop.createTask() instead)`,
    );
  }
}

/**
 * Refuses an `executor` argument that is neither an `Executor` (something
 * with a `submit()` method) nor absent (`null`, or `undefined` as its
 * JavaScript twin, for the default executor).
 */
export function checkExecutor(executor: unknown): void {
  if (executor === null || executor === undefined) return;
  if (
    (typeof executor !== "object" && typeof executor !== "function") ||
    typeof (executor as { submit?: unknown }).submit !== "function"
  ) {
    throw new TypeError(
      `Cannot call runInExecutor(): executor must have a submit() method, or be null for the default one, received ${typeof executor}`,
    );
  }
}
