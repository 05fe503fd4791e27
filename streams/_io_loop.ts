/**
 * Finds the loop the stream helpers do I/O on.
 *
 * @module
 */

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import { checkLoopOption } from "../futures/_runtime.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import type { EventLoop } from "../loop/event_loop.ts";

/**
 * Returns `loop`, or else the running loop, once it is known to do the
 * I/O asked of it.
 *
 * @param loop The loop given in the options, if any.
 * @param what What the caller could not do without a loop, for the error.
 * @param method The loop method the caller goes on to call.
 * @returns The loop.
 * @throws {InvalidStateError} When no loop is given and none is running.
 * @throws {TypeError} When `loop` is not an event loop, or one without
 * `method` (a `BaseEventLoop`, which does no I/O).
 */
export function ioLoop(
  loop: EventLoop | undefined,
  what: string,
  method: keyof EventLoop,
): EventLoop {
  checkLoopOption(loop, what);
  const found = loop ?? (getRunningLoop() as EventLoop | null);
  if (found === null) {
    throw new InvalidStateError(
      `Cannot ${what}: no event loop is running, received loop=undefined`,
    );
  }
  if (typeof found[method] !== "function") {
    throw new TypeError(
      `Cannot ${what}: the loop has no ${method}() (a BaseEventLoop does no I/O; use a DenoEventLoop, newEventLoop() or a VirtualTimeLoop), received ${
        formatReceived(found)
      }`,
    );
  }
  return found;
}
