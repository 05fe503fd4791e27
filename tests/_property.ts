// What the property tests of the protocols share: fast-check's settings,
// a way to cut input, and a transport that only records what happens.

import fc from "fast-check";
import type { Transport } from "../transports/transport.ts";

/**
 * Settings for `fc.assert`: a fixed seed, so that a run is the same every
 * time (a failure prints its seed and path to replay), and few enough runs
 * that every property takes well under a second.
 */
export function settings(numRuns = 150): fc.Parameters<unknown> {
  return { seed: 0x7071_1e, numRuns };
}

/** Cuts `data` at `points` (any numbers; taken modulo the length, sorted). */
export function cut(data: Uint8Array, points: number[]): Uint8Array[] {
  const at = [...new Set(points.map((p) => p % (data.length + 1)))].sort((
    a,
    b,
  ) => a - b);
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (const p of at) {
    pieces.push(data.slice(from, p));
    from = p;
  }
  pieces.push(data.slice(from));
  return pieces;
}

/** Arbitrary cut points: none, a few, or many. */
export const cutPoints: fc.Arbitrary<number[]> = fc.oneof(
  fc.constant<number[]>([]),
  fc.array(fc.nat(), { maxLength: 4 }),
  fc.array(fc.nat(), { maxLength: 64, size: "max" }),
);

/** A transport that records `close()` and writes; nothing else happens. */
export class RecordingTransport {
  closing = false;
  readonly written: Uint8Array[] = [];

  isClosing(): boolean {
    return this.closing;
  }
  close(): void {
    this.closing = true;
  }
  abort(): void {
    this.closing = true;
  }
  write(data: Uint8Array): void {
    this.written.push(data);
  }
  writelines(list: Uint8Array[]): void {
    for (const d of list) this.written.push(d);
  }
  pauseReading(): void {}
  resumeReading(): void {}

  /** This object where a `Transport` is wanted. */
  get transport(): Transport {
    return this as unknown as Transport;
  }
}

/** Bytes from a small alphabet, so delimiters and prefixes collide often. */
export function bytesFrom(
  alphabet: number[],
  minLength: number,
  maxLength: number,
): fc.Arbitrary<Uint8Array> {
  return fc.array(fc.constantFrom(...alphabet), {
    minLength,
    maxLength,
    size: "max",
  }).map((a) => Uint8Array.from(a));
}

/** Shows bytes in a failure message. */
export function show(data: Uint8Array): string {
  return JSON.stringify(String.fromCharCode(...data));
}
