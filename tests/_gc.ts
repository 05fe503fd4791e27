// A real garbage collection for the tests that check what is let go.
// `--expose-gc` cannot be passed per test, but V8 accepts it at run time
// through node:v8, and a new context then hands out `gc`.

import v8 from "node:v8";
import vm from "node:vm";

v8.setFlagsFromString("--expose-gc");

/** Collects garbage now. */
export const gc = vm.runInNewContext("gc") as () => void;

/**
 * Collects garbage a few times, a macrotask apart, so that what a job kept
 * alive (a WeakRef made in it) and finalizers have gone too.
 */
export async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 0));
  }
}

/** How many of `refs` still point at something after `collect()`. */
export async function stillAlive(refs: WeakRef<object>[]): Promise<number> {
  await collect();
  return refs.filter((r) => r.deref() !== undefined).length;
}

/** The bytes of ArrayBuffers alive after `collect()`, and other external memory. */
export async function externalBytes(): Promise<number> {
  await collect();
  return Deno.memoryUsage().external;
}
