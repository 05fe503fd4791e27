// Helpers for the HTTP protocol tests: a recording peer, conversations over
// transportPair() on a virtual-time loop, the ways to split the bytes, and
// PEP 3153's stack of JSON-RPC on an HTTP client.

import { Protocol } from "../../protocols/protocol.ts";
import type { Transport } from "../../transports/transport.ts";
import {
  transportPair,
  type TransportPairOptions,
} from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import type { Future } from "../../futures/future.ts";
import type { HttpClientProtocol } from "../../http/http_client_protocol.ts";
import { HttpTransport } from "../../http/http_transport.ts";
import {
  JsonRpcProtocol,
  type JsonRpcProtocolOptions,
} from "../../jsonrpc/json_rpc_protocol.ts";
import type { SchedulingLoop } from "../../loop/event_loop.ts";

/**
 * PEP 3153's stack on `http`: a JsonRpcProtocol (with `options`; raw
 * framing unless told) over an HttpTransport that POSTs JSON to `/rpc`,
 * connected.
 */
export function rpcOverHttp(
  http: HttpClientProtocol,
  loop: SchedulingLoop,
  options: JsonRpcProtocolOptions = { framing: "raw" },
): { transport: HttpTransport; rpc: JsonRpcProtocol } {
  const transport = new HttpTransport(http, {
    path: "/rpc",
    headers: { "content-type": "application/json" },
    loop,
  });
  const rpc = new JsonRpcProtocol({}, { ...options, loop });
  transport.setProtocol(rpc);
  rpc.connectionMade(transport);
  return { transport, rpc };
}

/** The ways each test cuts the traffic (both directions). */
export const SPLITS: { name: string; options: TransportPairOptions }[] = [
  { name: "whole", options: {} },
  { name: "1-byte chunks", options: { chunkSize: 1 } },
  { name: "2-byte chunks", options: { chunkSize: 2 } },
  { name: "3-byte chunks", options: { chunkSize: 3 } },
  { name: "7-byte chunks", options: { chunkSize: 7 } },
  { name: "chunks of 5, 1, 7", options: { chunkSize: [5, 1, 7] } },
];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Text to bytes. */
export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Bytes to text. */
export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

/** Replaces the values of `date` fields, which change with the clock. */
export function normalize(output: string): string {
  return output.replace(/^date: [^\r]*\r\n/gim, "date: X\r\n");
}

/**
 * A peer that records what it receives and when its connection ends; it
 * closes when the other side does.
 */
export class Recorder extends Protocol {
  transport: Transport | null = null;
  readonly chunks: Uint8Array[] = [];
  eof = false;
  lostWith: Error | undefined | null = null;
  lostAt = -1;
  readonly lost: Future<void>;
  readonly #loop: VirtualTimeLoop;

  constructor(loop: VirtualTimeLoop) {
    super();
    this.#loop = loop;
    this.lost = loop.createFuture<void>();
  }

  override connectionMade(transport: Transport): void {
    this.transport = transport;
  }

  override dataReceived(data: Uint8Array): void {
    this.chunks.push(data.slice());
  }

  override eofReceived(): boolean {
    this.eof = true;
    return false;
  }

  override connectionLost(exc?: Error): void {
    this.lostWith = exc;
    this.lostAt = this.#loop.time();
    this.lost.setResult();
  }

  /** Everything received, as text. */
  get text(): string {
    const size = this.chunks.reduce((n, c) => n + c.length, 0);
    const all = new Uint8Array(size);
    let at = 0;
    for (const c of this.chunks) {
      all.set(c, at);
      at += c.length;
    }
    return text(all);
  }
}

/** What a conversation gave. */
export interface Conversation<P> {
  /** What the peer received, with dates normalized. */
  output: string;
  /** The loop time when the peer's connection ended, in seconds. */
  closedAt: number;
  /** The protocol under test. */
  protocol: P;
  /** The recording peer. */
  peer: Recorder;
  /** Errors the loop's exception handler received. */
  errors: unknown[];
}

/**
 * Joins `make(loop)` to a recording peer over transportPair(), has the
 * peer write `input` (each string of an array after the previous one's
 * answer is due: on the next turns), and runs the loop until the
 * connection ends.
 */
export async function converse<P extends Protocol>(
  make: (loop: VirtualTimeLoop) => P,
  input: string | Uint8Array,
  pair?: TransportPairOptions,
  during?: (loop: VirtualTimeLoop, peer: Recorder, protocol: P) => void,
): Promise<Conversation<P>> {
  const loop = new VirtualTimeLoop();
  const errors: unknown[] = [];
  loop.setExceptionHandler((_loop, context) => {
    errors.push(context.exception ?? context.message);
  });
  try {
    const peer = new Recorder(loop);
    const protocol = make(loop);
    transportPair(peer, protocol, { loop, ...pair });
    loop.callSoon(() => {
      peer.transport!.write(typeof input === "string" ? bytes(input) : input);
      during?.(loop, peer, protocol);
    });
    await loop.runUntilComplete(peer.lost);
    // Let the protocol's connectionLost run too.
    await loop.advance(0);
    return {
      output: normalize(peer.text),
      closedAt: peer.lostAt,
      protocol,
      peer,
      errors,
    };
  } finally {
    loop.close();
  }
}

/**
 * Runs `converse` once per split and checks that the output never
 * changes; returns the first conversation.
 */
export async function converseEverySplit<P extends Protocol>(
  make: (loop: VirtualTimeLoop) => P,
  input: string | Uint8Array,
  check: (c: Conversation<P>, split: string) => void,
  pair?: TransportPairOptions,
): Promise<void> {
  for (const split of SPLITS) {
    const c = await converse(make, input, { ...pair, ...split.options });
    check(c, split.name);
  }
}
