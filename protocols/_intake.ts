/**
 * What the framers (`ChunkProtocol`, `Int32StringReceiver`) share in taking
 * bytes in: they never frame recursively, and they can be paused, resumed
 * and stopped from their own callbacks (Twisted's `_PauseableMixin`).
 *
 * @module
 */

import type { Transport } from "../transports/transport.ts";

/**
 * The bytes a framer has received but not framed yet, and whether it may
 * frame them now.
 *
 * The framer's loop checks `stopped` and `paused` after each delivery and,
 * when either is set, gives the rest of its bytes to `holdRest()`.
 */
export class Intake {
  /** Set for good: nothing more is framed or delivered. */
  stopped = false;
  /** Set by `pause()`: bytes are held until `resume()`. */
  paused = false;
  readonly #frame: (data: Uint8Array) => void;
  // Inside the framer (or a callback it made): bytes received meanwhile
  // are held rather than framed recursively.
  #busy = false;
  // Received but not framed yet, in order.
  #held: Uint8Array[] | null = null;

  /**
   * Makes the intake of one framer.
   *
   * @param frame Frames bytes (and delivers what they complete).
   */
  constructor(frame: (data: Uint8Array) => void) {
    this.#frame = frame;
  }

  /**
   * Bytes received: framed now, or — from a callback, or while paused —
   * after what came before them.
   *
   * @param data The bytes.
   */
  receive(data: Uint8Array): void {
    if (this.#busy || this.paused || this.stopped) {
      if (!this.stopped && data.length > 0) (this.#held ??= []).push(data);
      return;
    }
    this.#run(data);
  }

  /**
   * Bytes that come before anything held (handed back by a raw handler):
   * framed now, or first once it may.
   *
   * @param data The bytes.
   */
  receiveFirst(data: Uint8Array): void {
    if (this.stopped) return;
    if (this.#busy || this.paused) (this.#held ??= []).unshift(data);
    else this.#run(data);
  }

  /**
   * The framer stopped or paused before the end of its bytes: keeps the
   * rest, first, unless stopped.
   *
   * @param rest The bytes not framed.
   */
  holdRest(rest: Uint8Array): void {
    if (!this.stopped) (this.#held ??= []).unshift(rest);
  }

  /**
   * Holds bytes back from now on, and pauses the transport's reading.
   *
   * @param transport The framer's transport, if connected.
   */
  pause(transport: Transport | null): void {
    if (this.stopped) return;
    this.paused = true;
    if (transport !== null && !transport.isClosing()) transport.pauseReading();
  }

  /**
   * Frames what was held back, then resumes the transport's reading
   * unless a callback paused or stopped again.
   *
   * @param transport The framer's transport, if connected.
   */
  resume(transport: Transport | null): void {
    if (this.stopped) return;
    this.paused = false;
    if (!this.#busy && this.#held !== null) this.#run(null);
    if (
      !this.paused && !this.stopped && transport !== null &&
      !transport.isClosing()
    ) transport.resumeReading();
  }

  /**
   * Stops for good and drops what is held.
   *
   * @param transport A transport to close too (`stopProducing()`).
   */
  stop(transport?: Transport | null): void {
    this.stopped = true;
    this.#held = null;
    transport?.close();
  }

  // Frames `data` (if any), then what is held, until paused or stopped.
  #run(data: Uint8Array | null): void {
    this.#busy = true;
    try {
      if (data !== null) this.#frame(data);
      let held: Uint8Array[] | null;
      while ((held = this.#held) !== null && !this.stopped && !this.paused) {
        const next = held.shift()!;
        if (held.length === 0) this.#held = null;
        this.#frame(next);
      }
    } finally {
      this.#busy = false;
    }
  }
}
