/**
 * A tulip TCP echo server for the soak suite: a `Protocol` that writes
 * back what arrives and stops reading while its transport's write buffer
 * is over the high-water mark.
 *
 * ```sh
 * deno run -A bench/soak/servers/echo.ts --port=0
 * ```
 *
 * Prints `listening <port>`; SIGTERM shuts it down (see `_serve.ts`).
 *
 * @module
 */

import { Protocol } from "../../../mod.ts";
import type { Transport } from "../../../mod.ts";
import { Args, serve } from "./_serve.ts";

/** Writes back whatever arrives; pauses reading while writes back up. */
class Echo extends Protocol {
  #t: Transport | null = null;
  override connectionMade(t: Transport): void {
    this.#t = t;
  }
  override dataReceived(data: Uint8Array): void {
    this.#t?.write(data);
  }
  override pauseWriting(): void {
    this.#t?.pauseReading();
  }
  override resumeWriting(): void {
    this.#t?.resumeReading();
  }
}

await serve(new Args(Deno.args), () => new Echo());
