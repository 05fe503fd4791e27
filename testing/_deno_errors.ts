/**
 * The Deno errors the in-memory transports and the simulated network
 * report, so that a fake failure looks exactly like a real socket's.
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

/**
 * Returns Deno's `BrokenPipe` error, the one a socket write rejects with
 * once the peer reset a connection whose other half it had closed.
 *
 * @param message What happened.
 * @returns A `Deno.errors.BrokenPipe`.
 */
export function brokenPipe(message: string): Error {
  return new Deno.errors.BrokenPipe(message);
}

/**
 * Returns Deno's `ConnectionRefused` error: nothing listens at the address.
 *
 * @param message What happened.
 * @returns A `Deno.errors.ConnectionRefused`.
 */
export function connectionRefused(message: string): Error {
  return new Deno.errors.ConnectionRefused(message);
}

/**
 * Returns Deno's `TimedOut` error: the peer never answered.
 *
 * @param message What happened.
 * @returns A `Deno.errors.TimedOut`.
 */
export function timedOut(message: string): Error {
  return new Deno.errors.TimedOut(message);
}

/**
 * Returns Deno's `NotFound` error, as the resolver gives for an unknown
 * name.
 *
 * @param message What happened.
 * @returns A `Deno.errors.NotFound`.
 */
export function notFound(message: string): Error {
  return new Deno.errors.NotFound(message);
}

/**
 * Returns Deno's `AddrInUse` error: something already listens there.
 *
 * @param message What happened.
 * @returns A `Deno.errors.AddrInUse`.
 */
export function addrInUse(message: string): Error {
  return new Deno.errors.AddrInUse(message);
}

/**
 * Returns Deno's `AddrNotAvailable` error: the address is not this host's.
 *
 * @param message What happened.
 * @returns A `Deno.errors.AddrNotAvailable`.
 */
export function addrNotAvailable(message: string): Error {
  return new Deno.errors.AddrNotAvailable(message);
}

/**
 * Returns Deno's `WouldBlock` error: a full send queue dropped a datagram.
 *
 * @param message What happened.
 * @returns A `Deno.errors.WouldBlock`.
 */
export function wouldBlock(message: string): Error {
  return new Deno.errors.WouldBlock(message);
}

/**
 * Returns Deno's `PermissionDenied` error, as a socket without
 * `SO_BROADCAST` gives for a broadcast address.
 *
 * @param message What happened.
 * @returns A `Deno.errors.PermissionDenied`.
 */
export function permissionDenied(message: string): Error {
  return new Deno.errors.PermissionDenied(message);
}
