/**
 * Lines per second, side by side: CPython's asyncio `StreamReader.readline()` (fed with `feed_data()` in-process, timed with `time.perf_counter()`) against tulip's `LineReceiver` and tulip's `StreamReader.readline()`, on the same 1 MiB of 40-byte `\r\n` lines in 64 KiB chunks; prints the medians and the ratio (target: `LineReceiver` ≥ 5× asyncio).
 *
 * deno run --allow-run=python3 bench/line_vs_asyncio.ts
 *
 * @module
 */

import {
  BaseEventLoop,
  type Coroutine,
  LineReceiver,
  StreamReader,
} from "../mod.ts";
import {
  check,
  CHUNK,
  chunks,
  input,
  LINE_BYTES,
  LINES,
} from "./_line_input.ts";

const TARGET = 5;

// The same input on both sides: "line 000123 abcdefghijklmnopqrstuvwxy\r\n".
const PYTHON = `
import asyncio, json, platform, sys, time

LINE_BYTES, LINES, CHUNK = ${LINE_BYTES}, ${LINES}, ${CHUNK}

def make_input():
    parts = []
    for i in range(LINES):
        head = f"line {i:06d} "
        tail = "abcdefghijklmnopqrstuvwxyz"[:LINE_BYTES - 2 - len(head)]
        parts.append((head + tail + "\\r\\n").encode())
    return b"".join(parts)

data = make_input()
chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]

async def once():
    reader = asyncio.StreamReader()
    async def produce():
        for chunk in chunks:
            reader.feed_data(chunk)
            await asyncio.sleep(0)
        reader.feed_eof()
    start = time.perf_counter()
    producer = asyncio.ensure_future(produce())
    lines = total = 0
    while True:
        line = await reader.readline()
        if not line:
            break
        lines += 1
        total += len(line) - 2
    await producer
    elapsed = time.perf_counter() - start
    assert lines == LINES and total == LINES * (LINE_BYTES - 2), (lines, total)
    return elapsed

async def main(warmup, runs):
    for _ in range(warmup):
        await once()
    return [await once() for _ in range(runs)]

times = asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
print(json.dumps({"version": platform.python_version(), "times": times}))
`;

function median(times: number[]): number {
  const s = [...times].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Seconds for one pass of `LineReceiver` over the chunks. */
function lineReceiverOnce(): number {
  let lines = 0;
  let bytes = 0;
  const start = performance.now();
  const receiver = new LineReceiver((line) => {
    lines++;
    bytes += line.length;
  });
  for (const chunk of chunks) receiver.dataReceived(chunk);
  const elapsed = (performance.now() - start) / 1000;
  check(lines, bytes);
  return elapsed;
}

/**
 * Seconds for one pass of tulip's `StreamReader.readline()`, shaped as the
 * Python side: a producer task feeds a chunk per loop iteration while a
 * generator coroutine reads lines.
 */
async function streamReaderOnce(loop: BaseEventLoop): Promise<number> {
  const reader = new StreamReader({ loop });
  function* produce(): Coroutine<void> {
    for (const chunk of chunks) {
      reader.feedData(chunk);
      yield;
    }
    reader.feedEof();
  }
  function* consume(): Coroutine<number> {
    let lines = 0;
    let bytes = 0;
    const start = performance.now();
    const producer = loop.createTask(produce());
    while (true) {
      const line = yield* reader.readline();
      if (line.length === 0) break;
      lines++;
      bytes += line.length - 2;
    }
    yield* producer;
    const elapsed = (performance.now() - start) / 1000;
    check(lines, bytes);
    return elapsed;
  }
  return await loop.runUntilComplete(loop.createTask(consume()));
}

async function python(warmup: number, runs: number) {
  const out = await new Deno.Command("python3", {
    args: ["-c", PYTHON, String(warmup), String(runs)],
    stdin: "null",
  }).output();
  if (out.code !== 0) {
    throw new Error(
      `python3 failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return JSON.parse(new TextDecoder().decode(out.stdout)) as {
    version: string;
    times: number[];
  };
}

function rate(seconds: number): string {
  return `${Math.round(LINES / seconds).toLocaleString("en-US")} lines/s`
    .padStart(20);
}

console.log(
  `input: ${LINES.toLocaleString("en-US")} lines of ${LINE_BYTES} bytes ` +
    `(${input.length.toLocaleString("en-US")} bytes) in ${
      CHUNK / 1024
    } KiB chunks; medians`,
);

const py = await python(3, 15);
const asyncioTime = median(py.times);
console.log(
  `asyncio StreamReader.readline() (CPython ${py.version}): ${
    rate(asyncioTime)
  }  (${py.times.length} runs)`,
);

for (let i = 0; i < 20; i++) lineReceiverOnce();
const lrTimes = Array.from({ length: 100 }, lineReceiverOnce);
const lrTime = median(lrTimes);
console.log(
  `tulip LineReceiver.dataReceived():          ${
    rate(lrTime)
  }  (${lrTimes.length} runs)`,
);

const loop = new BaseEventLoop();
for (let i = 0; i < 5; i++) await streamReaderOnce(loop);
const srTimes: number[] = [];
for (let i = 0; i < 30; i++) srTimes.push(await streamReaderOnce(loop));
loop.close();
const srTime = median(srTimes);
console.log(
  `tulip StreamReader.readline():              ${
    rate(srTime)
  }  (${srTimes.length} runs)`,
);

const ratio = asyncioTime / lrTime;
console.log(
  `LineReceiver / asyncio readline(): ${ratio.toFixed(1)}× ` +
    `(target ≥ ${TARGET}×: ${ratio >= TARGET ? "met" : "missed"})`,
);
console.log(
  `tulip StreamReader / asyncio StreamReader: ${
    (asyncioTime / srTime).toFixed(1)
  }×`,
);
