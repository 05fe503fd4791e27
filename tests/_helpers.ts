// Helpers shared by the test files.

import { assertRejects } from "@std/assert";
import { CancelledError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { BaseEventLoop } from "../loop/base_event_loop.ts";
import { DenoEventLoop } from "../loop/deno_event_loop.ts";
import type { Coroutine } from "../tasks/task.ts";
import { VirtualClock } from "../testing/_virtual_clock.ts";
import { VirtualTimeLoop } from "../testing/virtual_time_loop.ts";
import { INTERNALS_ENABLED } from "../transports/_deno_internals.ts";

/** A small seeded PRNG (mulberry32), so that every run sees the same cases. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs a generator coroutine as a task on a fresh VirtualTimeLoop. */
export async function run<T>(
  body: (loop: VirtualTimeLoop) => Coroutine<T>,
): Promise<T> {
  const loop = new VirtualTimeLoop();
  try {
    return await loop.runUntilComplete(loop.createTask(body(loop)));
  } finally {
    loop.close();
  }
}

/**
 * A `DenoEventLoop` on a `VirtualTimeLoop`'s clock, for the tests of what
 * only the machine has (TLS, pipes, subprocesses) under long timeouts.
 * While real I/O is pending the clock still jumps whenever nothing is
 * ready, so a test whose real I/O needs time to pass (a handshake that
 * must complete, not one that must time out) runs on a plain
 * `DenoEventLoop`. Tests of sockets alone use the `VirtualTimeLoop`'s
 * in-memory network instead.
 */
export class VirtualTimeDenoLoop extends DenoEventLoop {
  readonly #clock: VirtualClock = new VirtualClock({
    loop: this,
    readyCount: () => this.readyCount(),
    nextTimerWhen: () => this.nextTimerWhen(),
    waitForEvents: (deadline) => super.waitForEvents(deadline),
  });

  override time(): number {
    return this.#clock.now;
  }

  /** As `VirtualTimeLoop.advance()`. */
  advance(seconds: number): Promise<void> {
    return this.#clock.advance(seconds);
  }

  protected override waitForEvents(deadline: number | null): Promise<void> {
    return this.#clock.wait(deadline);
  }
}

/** Waits for a task and swallows its CancelledError. */
export function* settle(task: Future<unknown>): Coroutine<void> {
  try {
    yield* task;
  } catch (e) {
    if (!(e instanceof CancelledError)) throw e;
  }
}

/**
 * Runs `loop` until `future` is done, cancelling it `delay` seconds from now,
 * and asserts that it ends with CancelledError.
 */
export async function assertCancelledAfter(
  loop: BaseEventLoop,
  future: Future<unknown>,
  delay: number,
): Promise<void> {
  loop.callLater(delay, () => future.cancel());
  await assertRejects(() => loop.runUntilComplete(future), CancelledError);
}

/**
 * Tests that pin the framing of a body held in memory (`Content-Length`,
 * one write) where it is known only through Deno's internals
 * (`transports/_deno_internals.ts`): `Framing.test(name, fn)` registers
 * one. With them switched off (`TULIP_NO_INTERNALS=1`) the server and the
 * client learn such a body a few microtasks later (by its stream being
 * ready at once), so tests that pin when or how a head is made are
 * skipped in that run. The bytes sent are otherwise the same in both
 * runs (a body held in memory goes with its `Content-Length`), and their
 * tests run in both.
 */
export const Framing = {
  /**
   * Registers a test that runs only while Deno's internals are on.
   *
   * @param name The test's name.
   * @param fn The test.
   */
  test(name: string, fn: () => void | Promise<void>): void {
    Deno.test({ name, ignore: !INTERNALS_ENABLED, fn });
  },
};
