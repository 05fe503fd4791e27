// The task behind `Timeout.run()` and `waitFor()`. Private to tasks/.

import type { SchedulingLoop } from "../loop/event_loop.ts";
import { type Coroutine, currentTask, Task, type TaskOptions } from "./task.ts";
import { lastDoneCallback } from "../futures/_runtime.ts";
import { noteEagerAwaiter, startEagerly } from "./_awaitables.ts";

/**
 * A task that runs a combinator around some work (a timeout scope, a
 * zero-timeout `waitFor`). asyncio runs such a combinator inline in the
 * caller's task, so a cancellation of the caller always finds it waiting
 * for the work, and reaches the work. Here it runs in a task of its own:
 * made in a task, it takes its first step at the call (`startWrapper()`),
 * so it waits for the work from then on, and hands its outcome to its
 * awaiting tasks in the turn it ends, where asyncio's caller would
 * resume. Made outside any task, it starts one loop turn after the call:
 * a cancellation in between would end the task before it ever waited,
 * leaving the work running unawaited. So a cancellation that comes before
 * the coroutine runs is held until the coroutine calls `started()`, and
 * then delivered at its first wait, where it cancels the work and waits
 * for it.
 */
export class WrapperTask<T> extends Task<T> {
  #started = false;
  #held: (string | undefined)[] = [];

  /**
   * Runs `body`, given the task itself (taken in its first step: a task
   * started at once steps before its maker has it).
   */
  constructor(
    body: (task: WrapperTask<T>) => Coroutine<T> | PromiseLike<T> | T,
    options: TaskOptions,
  ) {
    super(() => body(currentTask() as WrapperTask<T>), options);
  }

  // The done callback an async function's await (a then() in a task)
  // adds runs in the turn the task ends (see startEagerly()); a generator
  // task's wake-up is recorded by the task as it begins to wait.
  override then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    const awaited = currentTask() !== null && !this.done();
    const promise = super.then(onfulfilled, onrejected);
    if (awaited && !this.done()) {
      noteEagerAwaiter(this, lastDoneCallback(this));
    }
    return promise;
  }

  override cancel(msg?: string): boolean {
    if (this.#started || this.done()) return super.cancel(msg);
    this.#held.push(msg);
    return true;
  }

  /** Marks the coroutine as running and delivers the held cancellations. */
  started(): void {
    this.#started = true;
    for (const msg of this.#held.splice(0)) super.cancel(msg);
  }
}

/**
 * Makes the wrapper task with `make`: called in a task of its loop (`loop`,
 * or the running loop when not given), it starts at once,
 * as asyncio's combinator runs inline (see `startEagerly()`), so that it
 * waits for the work from the call on; elsewhere on the loop's next turn,
 * as asyncio's `ensure_future()` of the combinator would.
 */
export function startWrapper<T>(
  loop: SchedulingLoop | undefined,
  make: () => WrapperTask<T>,
): WrapperTask<T> {
  const current = currentTask();
  const inTask = current !== null &&
    (loop === undefined || current.getLoop() === loop);
  return inTask ? startEagerly(make) : make();
}
