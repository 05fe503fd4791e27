/**
 * The simulation's seeded random numbers: every choice a simulated network
 * makes comes from here, so that a seed replays a run exactly.
 *
 * @module
 */

const seedView = new DataView(new ArrayBuffer(8));

/**
 * The 32 bits of state a seed starts a generator with: a whole number from
 * 0 to 2^32 - 1 is its own; any other number (a fraction, a negative one,
 * one past 32 bits) is hashed from all 64 bits of its double, so that
 * `0.25` and `0.75`, or `0` and `2 ** 32`, start different runs.
 *
 * @param seed Any finite number.
 * @returns The state, a whole number from 0 to 2^32 - 1.
 */
export function seedBits(seed: number): number {
  if (Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32) return seed;
  seedView.setFloat64(0, seed);
  const hi = seedView.getUint32(0);
  const lo = seedView.getUint32(4);
  // MurmurHash3's finalizer over both words.
  let h = Math.imul(hi ^ (hi >>> 16), 0x85ebca6b) ^ lo;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

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
