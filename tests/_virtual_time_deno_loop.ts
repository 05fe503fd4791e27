// A DenoEventLoop on virtual time, for the tests whose code needs real
// host I/O (sockets, pipes, an AsyncEngine) while they wait out long
// timeouts. `VirtualTimeLoop` itself is the scheduler alone, with no I/O.
// While real I/O is pending the clock still jumps whenever nothing is
// ready, so a test that needs real time runs on a plain DenoEventLoop.

import { DenoEventLoop } from "../loop/deno_event_loop.ts";
import { VirtualClock } from "../testing/_virtual_clock.ts";

/** A `DenoEventLoop` whose clock jumps as a `VirtualTimeLoop`'s does. */
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

  protected override waitForEvents(deadline: number | null): Promise<void> {
    return this.#clock.wait(deadline);
  }
}
