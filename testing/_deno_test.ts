/**
 * Registers a test with Deno's test runner, for `loopTest`.
 *
 * @module
 */

/**
 * Registers `fn` as a Deno test named `name`.
 *
 * @param name The test's name.
 * @param fn The test body.
 */
export function registerTest(name: string, fn: () => Promise<void>): void {
  Deno.test(name, fn);
}
