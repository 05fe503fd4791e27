/**
 * Finds the loop the stream helpers do I/O on.
 *
 * @module
 */

import { InvalidStateError } from "../futures/errors.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import type { EventLoop } from "../loop/event_loop.ts";

/**
 * Returns `loop`, or else the running loop.
 *
 * @param loop The loop given in the options, if any.
 * @param what What the caller could not do without a loop, for the error.
 * @returns The loop.
 * @throws {InvalidStateError} When no loop is given and none is running.
 */
export function ioLoop(loop: EventLoop | undefined, what: string): EventLoop {
  const found = loop ?? (getRunningLoop() as EventLoop | null);
  if (found === null) {
    throw new InvalidStateError(
      `Cannot ${what}: no event loop is running, received loop=undefined`,
    );
  }
  return found;
}
