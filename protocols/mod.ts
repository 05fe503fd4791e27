/**
 * Protocols: the application side of PEP 3156's transport/protocol pair,
 * and ready-made ones from PEP 3153.
 *
 * ```ts
 * import { Protocol } from "@tulip/tulip/protocols";
 * import { assert } from "@std/assert";
 *
 * class Quiet extends Protocol {}
 * assert(new Quiet() instanceof Protocol);
 * ```
 *
 * @module
 */

export * from "./protocol.ts";
