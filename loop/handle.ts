/**
 * `Handle` and `TimerHandle`: what the loop's scheduling calls return.
 *
 * @module
 */

export { type AnyCallback, Handle, TimerHandle } from "./_handle.ts";
