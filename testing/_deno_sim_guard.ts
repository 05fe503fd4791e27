/**
 * What a simulation run replaces in the process while it runs: Deno's real
 * network calls (so that a host reaching for a real socket fails loudly
 * instead of making the run depend on the machine), `Math.random` (seeded),
 * and the clocks `Date.now` and `performance.now` (virtual).
 *
 * @module
 */

import { InvalidStateError } from "../futures/errors.ts";

const REAL_IO = [
  "connect",
  "connectTls",
  "listen",
  "listenTls",
  "listenDatagram",
  "resolveDns",
  "startTls",
  "serve",
] as const;

/** The simulated time of the Unix epoch's date a run starts at: 2000-01-01. */
const EPOCH_MS = 946684800000;

let installed = false;

/**
 * Replaces the real I/O entry points and the sources of nondeterminism,
 * and returns the function that puts them back. Only one run may hold them
 * at a time.
 *
 * @param random The seeded generator standing in for `Math.random`.
 * @param now The virtual clock, in seconds.
 * @returns The function that restores everything.
 * @throws {InvalidStateError} When another simulation run holds them.
 */
export function installSimulationGuards(
  random: () => number,
  now: () => number,
): () => void {
  if (installed) {
    throw new InvalidStateError(
      "Cannot run the simulation: another simulation is running in this process, received a second run()",
    );
  }
  installed = true;
  const deno = Deno as unknown as Record<string, unknown>;
  const saved: [Record<string, unknown>, string, unknown, boolean][] = [];
  const replace = (owner: Record<string, unknown>, key: string, v: unknown) => {
    saved.push([owner, key, owner[key], Object.hasOwn(owner, key)]);
    owner[key] = v;
  };
  for (const name of REAL_IO) {
    replace(deno, name, () => {
      throw new Error(
        `Cannot call Deno.${name}() inside a simulation: a simulated host has no real network; use the loop it was given (loop.createConnection(), loop.createServer(), ...)`,
      );
    });
  }
  replace(globalThis as unknown as Record<string, unknown>, "fetch", () => {
    throw new Error(
      "Cannot call fetch() inside a simulation: a simulated host has no real network; use HttpClientProtocol on the loop it was given",
    );
  });
  replace(Math as unknown as Record<string, unknown>, "random", random);
  replace(
    Date as unknown as Record<string, unknown>,
    "now",
    () => EPOCH_MS + Math.floor(now() * 1000),
  );
  replace(
    performance as unknown as Record<string, unknown>,
    "now",
    () => now() * 1000,
  );
  return () => {
    for (let i = saved.length - 1; i >= 0; i--) {
      const [owner, key, value, own] = saved[i];
      if (own) owner[key] = value;
      else delete owner[key];
    }
    installed = false;
  };
}
