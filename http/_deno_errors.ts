/**
 * The Deno errors the stream classes report, so that they match what a
 * real socket gives.
 *
 * @module
 */

/**
 * Returns Deno's `ConnectionReset` error: asyncio's `ConnectionResetError`
 * on Deno.
 *
 * @param message What happened.
 * @returns A `Deno.errors.ConnectionReset`.
 */
export function connectionReset(message: string): Error {
  return new Deno.errors.ConnectionReset(message);
}
