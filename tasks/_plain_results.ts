/**
 * @module
 * Tasks whose function must return a coroutine (run()'s main, as asyncio's
 * `run()` refuses `lambda: None`): only the call tells a plain function
 * from an async one, so the task itself refuses what it returned.
 */

/**
 * For each such task, makes the error it fails with when its function
 * returns neither a generator nor a promise nor a `Future`. Weak: an entry
 * lives as long as its task.
 */
export const plainResultRefusals: WeakMap<object, (out: unknown) => Error> =
  new WeakMap();
