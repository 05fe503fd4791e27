// The task behind `Timeout.run()` and `waitFor()`. Private to tasks/.

import { Task } from "./task.ts";

/**
 * A task that runs a combinator around some work (a timeout scope, a
 * zero-timeout `waitFor`). asyncio runs such a combinator inline in the
 * caller's task, so a cancellation of the caller always finds it waiting
 * for the work, and reaches the work. Here it runs in a task of its own,
 * which starts one loop turn after the call: a cancellation in between
 * would end the task before it ever waited, leaving the work running
 * unawaited. So a cancellation that comes before the coroutine runs is
 * held until the coroutine calls `started()`, and then delivered at its
 * first wait, where it cancels the work and waits for it.
 */
export class WrapperTask<T> extends Task<T> {
  #started = false;
  #held: (string | undefined)[] = [];

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
