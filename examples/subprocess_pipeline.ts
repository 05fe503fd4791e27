/**
 * Two subprocesses piped together on the loop, `printf '%s\n' words… | sort`: the first one's stdout is written into the second one's stdin, and reading pauses whenever that stdin backs up (`pauseWriting` → `pauseReading`).
 *
 * deno run --allow-run=printf,sort examples/subprocess_pipeline.ts
 *
 * @module
 */

import {
  type Future,
  getEventLoop,
  type ReadTransport,
  run,
  SubprocessProtocol,
  type SubprocessTransport,
  type WriteTransport,
} from "../mod.ts";

const WORDS = 60_000;
const decoder = new TextDecoder();

/** The upstream process: what it prints goes into `sink`. */
class Producer extends SubprocessProtocol {
  readonly done: Future<void>;
  readonly #sink: WriteTransport;
  bytes = 0;

  constructor(sink: WriteTransport, done: Future<void>) {
    super();
    this.#sink = sink;
    this.done = done;
  }

  override pipeDataReceived(fd: number, data: Uint8Array): void {
    if (fd === 1) {
      this.bytes += data.length;
      this.#sink.write(data);
    } else {
      console.log(`printf stderr: ${decoder.decode(data).trimEnd()}`);
    }
  }

  override pipeConnectionLost(fd: number): void {
    // The end of the upstream output is the end of the downstream input.
    if (fd === 1) this.#sink.writeEof();
  }

  override connectionLost(): void {
    this.done.setResult(undefined);
  }
}

/** The downstream process: collects its output and drives flow control. */
class Consumer extends SubprocessProtocol {
  readonly done: Future<void>;
  readonly #chunks: Uint8Array[] = [];
  /** The upstream stdout, paused while our stdin is backed up. */
  upstream: ReadTransport | null = null;
  pauses = 0;

  constructor(done: Future<void>) {
    super();
    this.done = done;
  }

  override pipeDataReceived(fd: number, data: Uint8Array): void {
    if (fd === 1) this.#chunks.push(data);
    else console.log(`sort stderr: ${decoder.decode(data).trimEnd()}`);
  }

  /** Our stdin's buffer went above its high-water mark. */
  override pauseWriting(): void {
    this.pauses++;
    this.upstream?.pauseReading();
  }

  /** Our stdin's buffer drained below its low-water mark. */
  override resumeWriting(): void {
    this.upstream?.resumeReading();
  }

  override connectionLost(): void {
    this.done.setResult(undefined);
  }

  output(): string {
    const all = new Uint8Array(
      this.#chunks.reduce((n, c) => n + c.length, 0),
    );
    let at = 0;
    for (const c of this.#chunks) {
      all.set(c, at);
      at += c.length;
    }
    return decoder.decode(all);
  }
}

/** `n` pseudo-random lower-case words of 6 letters (seeded, repeatable). */
function randomWords(n: number): string[] {
  let x = 2463534242; // xorshift32
  const words: string[] = [];
  for (let i = 0; i < n; i++) {
    let w = "";
    for (let k = 0; k < 6; k++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      w += String.fromCharCode(97 + (x >>> 0) % 26);
    }
    words.push(w);
  }
  return words;
}

await run(async () => {
  const loop = getEventLoop();
  const words = randomWords(WORDS);
  const started: SubprocessTransport[] = [];
  loop.addSignalHandler("SIGINT", () => {
    console.log("SIGINT: killing the pipeline");
    for (const t of started) if (t.getReturncode() === null) t.kill();
  });
  try {
    // The downstream process first, so its stdin is there to write into.
    const consumerDone = loop.createFuture<void>();
    const [sortT, sorter] = await loop.subprocessExec(
      () => new Consumer(consumerDone),
      "sort",
      [],
      { env: { LC_ALL: "C" } }, // Byte order, as JavaScript sorts.
    );
    started.push(sortT);
    const sortStdin = sortT.getPipeTransport(0) as WriteTransport;
    sortStdin.setWriteBufferLimits(16 * 1024); // Low-water mark: 4 KiB.
    console.log(`started sort (pid ${sortT.getPid()})`);

    const producerDone = loop.createFuture<void>();
    const [printfT, producer] = await loop.subprocessExec(
      () => new Producer(sortStdin, producerDone),
      "printf",
      ["%s\\n", ...words],
      { stdin: "null" },
    );
    started.push(printfT);
    sorter.upstream = printfT.getPipeTransport(1) as ReadTransport;
    console.log(
      `started printf (pid ${printfT.getPid()}) with ${WORDS} words`,
    );

    await producerDone;
    console.log(
      `printf exited with ${printfT.getReturncode()} after ${producer.bytes} bytes; ` +
        `its stdout was paused ${sorter.pauses} times while sort's stdin was full`,
    );
    await consumerDone;
    console.log(`sort exited with ${sortT.getReturncode()}`);

    const lines = sorter.output().split("\n");
    lines.pop(); // After the last newline.
    const expected = [...words].sort();
    const same = lines.length === expected.length &&
      lines.every((line, i) => line === expected[i]);
    console.log(
      `sort printed ${lines.length} lines: ${
        lines.slice(0, 3).join(", ")
      }, …, ${lines.slice(-3).join(", ")}`,
    );
    console.log(
      same ? "output is sorted: OK" : "output differs from the expected order!",
    );
    if (!same) {
      throw new Error("The pipeline's output is not what sort should give");
    }
  } finally {
    loop.removeSignalHandler("SIGINT");
    for (const t of started) t.close();
  }
});
