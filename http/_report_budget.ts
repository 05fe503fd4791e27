/**
 * `ReportBudget`: how much a loop's servers may log about what their
 * peers cause, so that a peer can never make a server log much more than
 * it sent.
 *
 * @module
 */

import type { ExceptionContext, SchedulingLoop } from "../loop/event_loop.ts";

/** The most log, in bytes (estimated), a loop's budget holds. */
export const BUDGET_CAP = 64 * 1024;

/** The estimated size of a report, in bytes: its message and error. */
export function reportSize(message: string, exception: unknown): number {
  let size = message.length + 100;
  if (exception instanceof Error) {
    size += (exception.stack ?? exception.message).length;
  } else if (exception !== undefined) {
    size += 200;
  }
  return size;
}

/**
 * A token bucket of log bytes shared by the servers of one loop: it
 * starts full (so that the first reports, usually a developer's, are
 * shown), each report takes its estimated size, and the bytes the peers
 * send refill it, up to `BUDGET_CAP`. What it cannot pay for is counted
 * and the count is told in the next report it pays for. Over any stretch
 * of time, the log is at most `BUDGET_CAP` plus what the peers sent.
 */
export class ReportBudget {
  /** The budget of `loop`, made on first use. */
  static of(loop: SchedulingLoop): ReportBudget {
    let budget = budgets.get(loop);
    if (budget === undefined) {
      budget = new ReportBudget(loop);
      budgets.set(loop, budget);
    }
    return budget;
  }

  readonly #loop: SchedulingLoop;
  #tokens = BUDGET_CAP;
  #suppressed = 0;

  /**
   * Makes a full budget.
   *
   * @param loop The loop whose exception handler gets the reports.
   */
  constructor(loop: SchedulingLoop) {
    this.#loop = loop;
  }

  /** Reports not made since the last one that was. */
  get suppressed(): number {
    return this.#suppressed;
  }

  /**
   * Adds what peers sent.
   *
   * @param bytes How many bytes they sent.
   */
  credit(bytes: number): void {
    this.#tokens = Math.min(BUDGET_CAP, this.#tokens + bytes);
  }

  /**
   * Gives `context` to the loop's exception handler if the budget pays
   * for it, else counts it.
   *
   * @param context What to report.
   * @returns Whether it was reported.
   */
  report(context: ExceptionContext): boolean {
    const message = this.#suppressed === 0
      ? context.message
      : `${context.message} (and ${this.#suppressed} reports before it not shown: over the log budget)`;
    const cost = reportSize(message, context.exception);
    if (cost > this.#tokens) {
      this.#suppressed++;
      return false;
    }
    this.#tokens -= cost;
    this.#suppressed = 0;
    this.#loop.callExceptionHandler({ ...context, message });
    return true;
  }
}

// One budget per loop, as a per-loop cache: it goes with its loop.
const budgets = new WeakMap<SchedulingLoop, ReportBudget>();
