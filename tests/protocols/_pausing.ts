// A callback's part in the pausing tests: pause, note that reading
// stopped, and resume one virtual second later.

import { getRunningLoop } from "../../futures/running_loop.ts";
import type { Transport } from "../../transports/transport.ts";

/** A framer that can be paused from its own callback. */
interface Pausable {
  readonly transport: Transport | null;
  pauseProducing(): void;
  resumeProducing(): void;
}

/** Pauses `framer`, logs whether its transport reads, resumes it later. */
export function pauseForASecond(framer: Pausable, log: string[]): void {
  framer.pauseProducing();
  log.push(`reading ${framer.transport!.isReading()}`);
  getRunningLoop()!.callLater(1, () => {
    log.push("resume");
    framer.resumeProducing();
  });
}
