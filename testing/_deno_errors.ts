/**
 * The Deno errors the in-memory transports report, so that a fake reset
 * looks exactly like a real socket's.
 *
 * @module
 */

/**
 * Returns Deno's `ConnectionReset` error, the one a socket read rejects
 * with when the peer resets the connection.
 *
 * @param message What happened.
 * @returns A `Deno.errors.ConnectionReset`.
 */
export function connectionReset(message: string): Error {
  return new Deno.errors.ConnectionReset(message);
}
