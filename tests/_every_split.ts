// Feeds the same bytes to a protocol over transportPair(), split every way.

import { Protocol } from "../protocols/protocol.ts";
import type { BaseProtocol } from "../protocols/protocol.ts";
import {
  transportPair,
  type TransportPairOptions,
} from "../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../testing/virtual_time_loop.ts";
import type { Future } from "../futures/future.ts";

/** One way to cut the stream. */
export interface SplitCase {
  name: string;
  options: TransportPairOptions;
}

/**
 * Every single split point, one byte at a time, and a few cycled size
 * lists; for short inputs also every pair of split points.
 */
export function splitCases(length: number): SplitCase[] {
  const cases: SplitCase[] = [{ name: "whole", options: {} }];
  for (let k = 1; k < length; k++) {
    cases.push({
      name: `split at ${k}`,
      options: { split: (offset) => offset < k ? k - offset : Infinity },
    });
  }
  if (length <= 24) {
    for (let i = 1; i < length; i++) {
      for (let j = i + 1; j < length; j++) {
        cases.push({
          name: `split at ${i} and ${j}`,
          options: {
            split: (offset) =>
              offset < i ? i - offset : offset < j ? j - offset : Infinity,
          },
        });
      }
    }
  }
  cases.push({ name: "one byte at a time", options: { chunkSize: 1 } });
  for (const sizes of [[2], [3], [1, 2], [2, 1, 3], [5, 1, 7]]) {
    cases.push({ name: `sizes ${sizes}`, options: { chunkSize: sizes } });
  }
  return cases;
}

/** Calls `done` once `protocol`'s connection is lost. */
function onLost(protocol: BaseProtocol, done: Future<void>): void {
  const original = protocol.connectionLost.bind(protocol);
  protocol.connectionLost = (exc?: Error) => {
    original(exc);
    if (!done.done()) done.setResult();
  };
}

/**
 * For each split case, makes a receiving protocol with `make()`, sends it
 * `input` from a plain protocol over transportPair() (then closes the
 * sender unless `keepOpen`), runs the loop until every receiver lost its
 * connection, and returns `observe(receiver)` per case.
 */
export async function receiveEverySplit<P extends BaseProtocol, R>(
  input: Uint8Array,
  make: () => P,
  observe: (receiver: P) => R,
  options?: { keepOpen?: boolean; extra?: TransportPairOptions },
): Promise<{ name: string; result: R }[]> {
  const loop = new VirtualTimeLoop();
  try {
    const runs: { name: string; receiver: P; lost: Future<void> }[] = [];
    for (const { name, options: split } of splitCases(input.length)) {
      const receiver = make();
      const lost = loop.createFuture<void>();
      onLost(receiver, lost);
      const [sender] = transportPair(
        new Protocol(),
        receiver as unknown as Protocol,
        { ...options?.extra, ...split, loop },
      );
      loop.callSoon(() => {
        sender.write(input);
        if (!options?.keepOpen) sender.close();
      });
      runs.push({ name, receiver, lost });
    }
    for (const run of runs) await loop.runUntilComplete(run.lost);
    return runs.map((run) => ({
      name: run.name,
      result: observe(run.receiver),
    }));
  } finally {
    loop.close();
  }
}

/** Text to bytes. */
export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Bytes to text. */
export function text(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}
