/**
 * What the CPU benchmarks that compare two trees share: the tree to
 * measure and the process's CPU time.
 *
 * @module
 */

import process from "node:process";

/**
 * The tree to measure, as a `file:` URL ending in `/`: the directory after
 * `--tree` on the command line, else this checkout.
 */
export function treeUrl(): string {
  const i = Deno.args.indexOf("--tree");
  return i >= 0
    ? new URL(`file://${Deno.args[i + 1].replace(/\/?$/, "/")}`).href
    : new URL("../", import.meta.url).href;
}

/** The process's CPU time so far, user and system, in nanoseconds. */
export function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}
