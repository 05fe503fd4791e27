/**
 * Event loop policy: which loop `getEventLoop()` returns.
 *
 * There is one loop per isolate: the main program and each Worker have
 * their own.
 *
 * @module
 */

import { formatReceived } from "../futures/errors.ts";
import { getRunningLoop } from "../futures/running_loop.ts";
import { setCurrentLoopFinder } from "../futures/_runtime.ts";
import { DenoEventLoop } from "./deno_event_loop.ts";
import type { EventLoop } from "./event_loop.ts";

/**
 * Decides which loop `getEventLoop()` returns and makes new ones.
 *
 * PEP 3156: the event loop policy.
 */
export interface EventLoopPolicy {
  /** Returns the current loop, making one if there is none. */
  getEventLoop(): EventLoop;
  /** Sets (or, with `null`, clears) the current loop. */
  setEventLoop(loop: EventLoop | null): void;
  /** Makes a new loop. */
  newEventLoop(): EventLoop;
  /** Returns the current loop (maybe closed) without making one, or `null`. */
  peekEventLoop?(): EventLoop | null;
}

/**
 * The default policy: one `DenoEventLoop` per isolate, made on first use.
 *
 * PEP 3156: `DefaultEventLoopPolicy`.
 *
 * @example
 * ```ts
 * import { DefaultEventLoopPolicy } from "@tulip/tulip/loop";
 * import { assertStrictEquals } from "@std/assert";
 *
 * const policy = new DefaultEventLoopPolicy();
 * const loop = policy.getEventLoop();
 * assertStrictEquals(policy.getEventLoop(), loop);
 * loop.close();
 * ```
 */
export class DefaultEventLoopPolicy implements EventLoopPolicy {
  #loop: EventLoop | null = null;

  /**
   * Returns the current loop; makes one if there is none or it is closed.
   *
   * @returns The loop.
   */
  getEventLoop(): EventLoop {
    if (this.#loop === null || this.#loop.isClosed()) {
      this.#loop = this.newEventLoop();
    }
    return this.#loop;
  }

  /**
   * Returns the current loop without making one, even when it is closed
   * (so that a future made for it reports "the loop is closed" rather than
   * that there is no loop).
   *
   * @returns The loop, or `null` when there is none.
   */
  peekEventLoop(): EventLoop | null {
    return this.#loop;
  }

  /**
   * Sets the current loop.
   *
   * @param loop The loop, or `null` (or `undefined`) to forget it.
   * @throws {TypeError} When `loop` is not an event loop (an object with
   * `callSoon()` and `isClosed()`), as asyncio's `set_event_loop()`.
   */
  setEventLoop(loop: EventLoop | null): void {
    if (loop === null || loop === undefined) {
      this.#loop = null;
      return;
    }
    const candidate = loop as Partial<EventLoop>;
    if (
      typeof loop !== "object" || typeof candidate.callSoon !== "function" ||
      typeof candidate.isClosed !== "function"
    ) {
      throw new TypeError(
        `Cannot set the event loop: it must be an event loop or null, received ${
          formatReceived(loop)
        }`,
      );
    }
    this.#loop = loop;
  }

  /**
   * Makes a new `DenoEventLoop`; it does not become the current loop.
   *
   * @returns The new loop.
   */
  newEventLoop(): EventLoop {
    return new DenoEventLoop() as unknown as EventLoop;
  }
}

let policy: EventLoopPolicy | null = null;
setCurrentLoopFinder(() => policy?.peekEventLoop?.() ?? null);

/**
 * Returns the current policy, making the default one on first use.
 *
 * PEP 3156: `get_event_loop_policy()`.
 *
 * @returns The policy.
 *
 * @example
 * ```ts
 * import { getEventLoopPolicy } from "@tulip/tulip/loop";
 * import { assert } from "@std/assert";
 *
 * assert(typeof getEventLoopPolicy().newEventLoop === "function");
 * ```
 */
export function getEventLoopPolicy(): EventLoopPolicy {
  return policy ??= new DefaultEventLoopPolicy();
}

/**
 * Replaces the policy; `null` restores the default.
 *
 * PEP 3156: `set_event_loop_policy()`.
 *
 * @param newPolicy The policy, or `null`.
 * @throws {TypeError} When `newPolicy` lacks a method of `EventLoopPolicy`,
 * as asyncio's `set_event_loop_policy()` refuses what is not a policy.
 *
 * @example
 * ```ts
 * import { DefaultEventLoopPolicy, setEventLoopPolicy } from "@tulip/tulip/loop";
 *
 * setEventLoopPolicy(new DefaultEventLoopPolicy());
 * setEventLoopPolicy(null);
 * ```
 */
export function setEventLoopPolicy(newPolicy: EventLoopPolicy | null): void {
  if (newPolicy !== null && newPolicy !== undefined) {
    const candidate = newPolicy as Partial<EventLoopPolicy>;
    if (
      typeof newPolicy !== "object" ||
      typeof candidate.getEventLoop !== "function" ||
      typeof candidate.setEventLoop !== "function" ||
      typeof candidate.newEventLoop !== "function"
    ) {
      throw new TypeError(
        `Cannot set the event loop policy: it must have getEventLoop(), setEventLoop() and newEventLoop(), or be null, received ${
          formatReceived(newPolicy)
        }`,
      );
    }
  }
  policy = newPolicy ?? null;
}

/**
 * Returns the running loop if a callback of one is running, else the
 * policy's current loop (made on first use, and made anew when closed).
 *
 * PEP 3156: `get_event_loop()`.
 *
 * @returns The loop.
 *
 * @example
 * ```ts
 * import { getEventLoop } from "@tulip/tulip/loop";
 * import { assertStrictEquals } from "@std/assert";
 *
 * assertStrictEquals(getEventLoop(), getEventLoop());
 * ```
 */
export function getEventLoop(): EventLoop {
  const loop = getRunningLoop() as EventLoop | null;
  if (loop !== null && !loop.isClosed()) return loop;
  return getEventLoopPolicy().getEventLoop();
}

/**
 * Makes `loop` the policy's current loop.
 *
 * PEP 3156: `set_event_loop()`.
 *
 * @param loop The loop, or `null`.
 * @throws {TypeError} From the default policy, when `loop` is not an event
 * loop.
 *
 * @example
 * ```ts
 * import { newEventLoop, setEventLoop, getEventLoop } from "@tulip/tulip/loop";
 * import { assertStrictEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * setEventLoop(loop);
 * assertStrictEquals(getEventLoop(), loop);
 * setEventLoop(null);
 * loop.close();
 * ```
 */
export function setEventLoop(loop: EventLoop | null): void {
  getEventLoopPolicy().setEventLoop(loop);
}

/**
 * Makes a new loop through the policy.
 *
 * PEP 3156: `new_event_loop()`.
 *
 * @returns The new loop.
 *
 * @example
 * ```ts
 * import { newEventLoop } from "@tulip/tulip/loop";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * assertEquals(loop.isRunning(), false);
 * loop.close();
 * ```
 */
export function newEventLoop(): EventLoop {
  return getEventLoopPolicy().newEventLoop();
}
