/**
 * `Handle` and `TimerHandle`: what the loop's scheduling calls return.
 *
 * @module
 */

export { Handle, TimerHandle } from "./_handle.ts";
