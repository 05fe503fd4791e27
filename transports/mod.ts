/**
 * Transports: the byte-moving side of PEP 3156's transport/protocol pair,
 * with PEP 3153's producers and consumers. Concrete transports are private
 * to the loop; these are the interfaces protocols see.
 *
 * ```ts
 * import type { Transport } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * const greet = (t: Transport) => t.write(new TextEncoder().encode("hi"));
 * let n = 0;
 * greet({ write: (d: Uint8Array) => { n = d.length; } } as unknown as Transport);
 * assertEquals(n, 2);
 * ```
 *
 * @module
 */

export * from "./flow_control.ts";
export * from "./readable_stream_producer.ts";
export * from "./relay.ts";
export * from "./transport.ts";
export * from "./write_buffer.ts";
export * from "./write_checks.ts";
