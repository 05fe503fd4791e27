/**
 * `getRunningLoop`: the public face of the running-loop slot.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import { findRunningLoop } from "./_runtime.ts";

/**
 * Returns the loop whose callback is running now — or, in an async
 * function run as a task, that task's loop; or else the loop made current
 * with `setEventLoop()` (`run()` does that); or `null`.
 *
 * PEP 3156 (as in asyncio): `get_running_loop()`, except that it returns
 * `null` instead of throwing.
 *
 * @returns The running loop, or `null`.
 *
 * @example Outside a loop
 * ```ts
 * import { getRunningLoop } from "@tulip/tulip/futures";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(getRunningLoop(), null);
 * ```
 */
export function getRunningLoop(): SchedulingLoop | null {
  return findRunningLoop();
}
