/**
 * The simulation's seeded random numbers: every choice a simulated network
 * makes comes from here, so that a seed replays a run exactly.
 *
 * @module
 */

/**
 * A small seeded generator (mulberry32): fast, 32 bits of state, and the
 * same sequence for the same seed on every machine.
 */
export class Random {
  #state: number;

  /**
   * Makes a generator.
   *
   * @param seed Any number; its low 32 bits are used.
   */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /**
   * Returns the next number in [0, 1).
   *
   * @returns A number.
   */
  next(): number {
    const a = this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /**
   * Returns a whole number in [0, n).
   *
   * @param n The bound, at least 1.
   * @returns A whole number.
   */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /**
   * Returns `true` with probability `p`.
   *
   * @param p The probability, 0 to 1.
   * @returns Whether the event happens.
   */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /**
   * Returns a delay drawn from an exponential distribution.
   *
   * @param mean The mean, in seconds.
   * @returns A delay in seconds.
   */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }
}
