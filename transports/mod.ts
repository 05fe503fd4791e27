/**
 * Transports: the byte-moving side of PEP 3156's transport/protocol pair,
 * with PEP 3153's producers and consumers. The concrete Deno transports
 * live in this folder but are private (the Deno loop makes them); what is
 * public are the interfaces protocols see and the pieces every transport
 * shares, for writing your own: `WriteFlowControl` (water marks and
 * producers) and `FlowControlledTransport` (the transport's methods over
 * it), `WriteBuffer` (unsent bytes) and the write checks
 * (`checkWriteData`, `gatherWriteData`, `refuseWrite`).
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

export * from "./address_checks.ts";
export * from "./flow_control.ts";
export * from "./readable_stream_producer.ts";
export * from "./relay.ts";
export * from "./server_shutdown.ts";
export * from "./transport.ts";
export * from "./write_buffer.ts";
export * from "./write_checks.ts";
