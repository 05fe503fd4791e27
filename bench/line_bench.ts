/**
 * Line framing throughput: `LineReceiver` cutting 1 MiB of 40-byte lines
 * (26,214 lines, `\r\n`-terminated), fed in 64 KiB chunks that end in the
 * middle of lines — directly through `dataReceived`, and end to end over
 * `transportPair` — against two native baselines: a plain `indexOf` split
 * loop over the same chunks, and web streams (`TextDecoderStream` plus a
 * line-splitting `TransformStream`). Lines per second = 26,214 / time per
 * iteration. `bench/line_vs_asyncio.ts` compares with asyncio.
 *
 * deno bench bench/line_bench.ts
 *
 * @module
 */

import { LineReceiver, Protocol, type Transport } from "../mod.ts";
import { transportPair, VirtualTimeLoop } from "../testing/mod.ts";
import { check, CHUNK, chunks, input, LINES } from "./_line_input.ts";

// ---- Native baseline: indexOf over the chunks, carrying partial lines ----

Deno.bench("indexOf split loop (native)", {
  group: "lines",
  baseline: true,
}, () => {
  let lines = 0;
  let bytes = 0;
  let carry: Uint8Array | null = null;
  for (const chunk of chunks) {
    let data = chunk;
    if (carry !== null) {
      data = new Uint8Array(carry.length + chunk.length);
      data.set(carry);
      data.set(chunk, carry.length);
      carry = null;
    }
    let start = 0;
    while (true) {
      const lf = data.indexOf(10, start);
      if (lf === -1) break;
      if (lf > start && data[lf - 1] === 13) {
        const line = data.subarray(start, lf - 1);
        lines++;
        bytes += line.length;
      }
      start = lf + 1;
    }
    if (start < data.length) carry = data.slice(start);
  }
  check(lines, bytes);
});

// ---- LineReceiver, fed directly ----

Deno.bench("LineReceiver.dataReceived", { group: "lines" }, () => {
  let lines = 0;
  let bytes = 0;
  const receiver = new LineReceiver((line) => {
    lines++;
    bytes += line.length;
  });
  for (const chunk of chunks) receiver.dataReceived(chunk);
  check(lines, bytes);
});

// ---- LineReceiver end to end over an in-memory transport ----

const loop = new VirtualTimeLoop();
let pairLines = 0;
let pairBytes = 0;
let pairDone = loop.createFuture<void>();
const sink = new LineReceiver((line) => {
  pairLines++;
  pairBytes += line.length;
  if (pairLines === LINES) pairDone.setResult(undefined);
});
const source = new Protocol();
const [sourceTransport]: [Transport, Transport] = transportPair(source, sink, {
  loop,
  chunkSize: CHUNK,
});
await loop.advance(0);

Deno.bench("LineReceiver over transportPair (64 KiB deliveries)", {
  group: "lines",
}, async () => {
  pairLines = 0;
  pairBytes = 0;
  pairDone = loop.createFuture<void>();
  sourceTransport.write(input);
  await loop.runUntilComplete(pairDone);
  check(pairLines, pairBytes);
});

// ---- Web streams: TextDecoderStream + a line TransformStream ----

function lineSplitter(): TransformStream<string, string> {
  let partial = "";
  return new TransformStream({
    transform(text, controller) {
      const parts = (partial + text).split("\r\n");
      partial = parts.pop()!;
      for (const line of parts) controller.enqueue(line);
    },
    flush(controller) {
      if (partial !== "") controller.enqueue(partial);
    },
  });
}

Deno.bench("TextDecoderStream + line TransformStream (web streams)", {
  group: "lines",
}, async () => {
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else controller.close();
    },
  });
  let lines = 0;
  let bytes = 0;
  for await (
    const line of stream.pipeThrough(new TextDecoderStream()).pipeThrough(
      lineSplitter(),
    )
  ) {
    lines++;
    bytes += line.length;
  }
  check(lines, bytes);
});

globalThis.addEventListener("unload", () => {
  sourceTransport.close();
  loop.close();
});
