import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertThrows,
} from "@std/assert";
import { ChunkProtocol } from "../../protocols/chunk_protocol.ts";
import { Protocol } from "../../protocols/protocol.ts";
import { InvalidStateError, LimitOverrunError } from "../../futures/errors.ts";
import { pauseForASecond } from "./_pausing.ts";
import type { Transport } from "../../transports/transport.ts";
import { transportPair } from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { bytes, receiveEverySplit, text } from "../_every_split.ts";
import { externalBytes } from "../_gc.ts";

/** A chunk protocol that records what happens to it, as text. */
function recorder(
  delimiter: string,
  options?: { maxLength?: number; skipLong?: boolean },
): ChunkProtocol & { log: string[] } {
  const log: string[] = [];
  const p = new ChunkProtocol(delimiter, {
    chunkReceived: (chunk) => log.push(`chunk ${text(chunk)}`),
    connectionLost: (exc) => log.push(`lost ${exc?.name ?? "clean"}`),
  }, {
    maxLength: options?.maxLength,
    onLengthExceeded: options?.skipLong
      ? (error) => log.push(`too long ${error.consumed}`)
      : undefined,
  });
  return Object.assign(p, { log });
}

async function assertEverySplit(
  delimiter: string,
  input: string,
  expected: string[],
  options?: { maxLength?: number; skipLong?: boolean },
): Promise<void> {
  const results = await receiveEverySplit(
    bytes(input),
    () => recorder(delimiter, options),
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(result, expected, `${name} of ${JSON.stringify(input)}`);
  }
}

// ---- Framing, split every way ----

Deno.test("ChunkProtocol delivers the same chunks however the input is split", async () => {
  await assertEverySplit("|", "ab|cd||e|tail", [
    "chunk ab",
    "chunk cd",
    "chunk ",
    "chunk e",
    "lost clean",
  ]);
});

Deno.test("ChunkProtocol finds a two-byte delimiter split across deliveries", async () => {
  await assertEverySplit("\r\n", "a\r\n\r\nb\rc\r\n\r", [
    "chunk a",
    "chunk ",
    "chunk b\rc",
    "lost clean",
  ]);
});

Deno.test("ChunkProtocol cuts at the first match of a self-overlapping delimiter", async () => {
  await assertEverySplit("aab", "xaaabyaabaab", [
    "chunk xa",
    "chunk y",
    "chunk ",
    "lost clean",
  ]);
  await assertEverySplit("END", "ENENDxEENDEN", [
    "chunk EN",
    "chunk xE",
    "lost clean",
  ]);
});

Deno.test("ChunkProtocol delivers empty chunks for delimiters in a row", async () => {
  await assertEverySplit("--", "------", [
    "chunk ",
    "chunk ",
    "chunk ",
    "lost clean",
  ]);
});

// ---- maxLength ----

Deno.test("ChunkProtocol allows a chunk of exactly maxLength bytes", async () => {
  await assertEverySplit("\r\n", "12345\r\n1234\r\n", [
    "chunk 12345",
    "chunk 1234",
    "lost clean",
  ], { maxLength: 5 });
});

Deno.test("ChunkProtocol closes with LimitOverrunError on an over-long chunk by default", async () => {
  await assertEverySplit("\r\n", "ok\r\n123456\r\nnever\r\n", [
    "chunk ok",
    "lost LimitOverrunError",
  ], { maxLength: 5 });
  // Also when the delimiter never comes.
  await assertEverySplit("\r\n", "ok\r\n1234567890", [
    "chunk ok",
    "lost LimitOverrunError",
  ], { maxLength: 5 });
});

Deno.test("ChunkProtocol skips an over-long chunk when onLengthExceeded keeps the connection", async () => {
  await assertEverySplit("\r\n", "a\r\n123456789\r\nb\r\n123456\r\r\nc\r\n", [
    "chunk a",
    "too long 6",
    "chunk b",
    "too long 6",
    "chunk c",
    "lost clean",
  ], { maxLength: 5, skipLong: true });
});

Deno.test("ChunkProtocol reports an over-long chunk before its delimiter arrives", () => {
  const seen: LimitOverrunError[] = [];
  const p = new ChunkProtocol("\r\n", () => {}, {
    maxLength: 4,
    onLengthExceeded: (e) => seen.push(e),
  });
  // 4 bytes and a possible "\r": could still be a valid chunk.
  p.dataReceived(bytes("abcd\r"));
  assertEquals(seen.length, 0);
  // 6 bytes without "\r\n": over-long whatever comes next.
  p.dataReceived(bytes("x"));
  assertEquals(seen.length, 1);
  assertInstanceOf(seen[0], LimitOverrunError);
  assertEquals(seen[0].consumed, 5);
  // The rest of the over-long chunk is skipped without another report.
  p.dataReceived(new Uint8Array(100_000));
  assertEquals(seen.length, 1);
});

Deno.test("ChunkProtocol lengthExceeded() can be overridden by a subclass", () => {
  const chunks: string[] = [];
  class Lenient extends ChunkProtocol {
    errors = 0;
    override lengthExceeded(_error: LimitOverrunError): void {
      this.errors++;
    }
  }
  const p = new Lenient(";", (c) => chunks.push(text(c)), { maxLength: 2 });
  p.dataReceived(bytes("abc;de;"));
  assertEquals([p.errors, chunks], [1, ["de"]]);
});

Deno.test("ChunkProtocol handles a long chunk fed one byte at a time in linear time", () => {
  const sizes: number[] = [];
  const p = new ChunkProtocol("\r\n", (c) => sizes.push(c.length), {
    maxLength: Infinity,
  });
  const one = new Uint8Array([120]);
  for (let i = 0; i < 200_000; i++) p.dataReceived(one);
  p.dataReceived(bytes("\r"));
  p.dataReceived(bytes("\nab\r\n"));
  assertEquals(sizes, [200_000, 2]);
});

Deno.test("ChunkProtocol lets go of a long chunk's buffer once it is delivered: an idle connection keeps no megabytes", async () => {
  const before = await externalBytes();
  const sizes: number[] = [];
  const kept: ChunkProtocol[] = [];
  const piece = new Uint8Array(64 * 1024).fill(120);
  for (let i = 0; i < 16; i++) {
    const p = new ChunkProtocol("\n", (c) => sizes.push(c.length), {
      maxLength: 4 << 20,
    });
    // A 2 MiB line, as a peer sends it: in pieces, then the start of the
    // next one.
    for (let n = 0; n < 32; n++) p.dataReceived(piece);
    p.dataReceived(bytes("\nnext"));
    kept.push(p);
  }
  const grown = (await externalBytes()) - before;
  assertEquals(sizes, Array(16).fill(2 << 20));
  assert(grown < 8 << 20, `${grown >> 20} MiB kept by 16 idle protocols`);
  kept[0].dataReceived(bytes(" line\n"));
  assertEquals(sizes.at(-1), "next line".length);
});

for (const mode of ["raw mode", "a pause"] as const) {
  Deno.test(`ChunkProtocol lets go of a long chunk's buffer also when the callback switches to ${mode} with bytes left in the read`, async () => {
    const before = await externalBytes();
    const sizes: number[] = [];
    const kept: ChunkProtocol[] = [];
    const piece = new Uint8Array(64 * 1024).fill(120);
    for (let i = 0; i < 16; i++) {
      const p: ChunkProtocol = new ChunkProtocol("\n", (c) => {
        sizes.push(c.length);
        if (mode === "raw mode") p.setRawMode(() => {});
        else p.pauseProducing();
      }, { maxLength: 4 << 20 });
      for (let n = 0; n < 32; n++) p.dataReceived(piece);
      p.dataReceived(bytes("\nmore"));
      kept.push(p);
    }
    const grown = (await externalBytes()) - before;
    assertEquals(sizes, Array(16).fill(2 << 20));
    assert(grown < 8 << 20, `${grown >> 20} MiB kept by 16 idle protocols`);
  });
}

Deno.test("ChunkProtocol delivers many chunks of one delivery as views without copying", () => {
  const chunks: Uint8Array[] = [];
  const p = new ChunkProtocol("\n", (c) => chunks.push(c));
  const data = bytes("a\nbb\nccc\n");
  p.dataReceived(data);
  assertEquals(chunks.map(text), ["a", "bb", "ccc"]);
  assert(chunks.every((c) => c.buffer === data.buffer));
});

// ---- Raw mode ----

Deno.test("ChunkProtocol.setRawMode() hands the bytes after a header through, however split", async () => {
  const input = "LEN 10\r\n0123456789\r\nnot a line";
  const results = await receiveEverySplit(
    bytes(input),
    () => {
      const log: string[] = [];
      const raw: number[] = [];
      const p = new ChunkProtocol("\r\n", (chunk, self) => {
        log.push(text(chunk));
        self.setRawMode((data) => raw.push(...data));
      });
      return Object.assign(p, { log, raw });
    },
    (p) => [p.log, text(new Uint8Array(p.raw)), p.isRawMode()],
  );
  for (const { name, result } of results) {
    assertEquals(result, [["LEN 10"], "0123456789\r\nnot a line", true], name);
  }
});

Deno.test("ChunkProtocol.setChunkMode() frames again, starting with extra bytes", async () => {
  // A header gives a body length; the body is raw; then lines again.
  const input = "5\r\nabcdeX\r\nY\r\n";
  const results = await receiveEverySplit(
    bytes(input),
    () => {
      const log: string[] = [];
      let want = 0;
      const body: number[] = [];
      const p = new ChunkProtocol("\r\n", (chunk, self) => {
        if (log.length === 0) {
          want = Number(text(chunk));
          self.setRawMode((data, s) => {
            const take = Math.min(want - body.length, data.length);
            body.push(...data.subarray(0, take));
            if (body.length === want) {
              log.push(`body ${text(new Uint8Array(body))}`);
              s.setChunkMode(data.subarray(take));
            }
          });
        }
        log.push(`line ${text(chunk)}`);
      });
      return Object.assign(p, { log });
    },
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(result, ["line 5", "body abcde", "line X", "line Y"], name);
  }
});

Deno.test("ChunkProtocol.setRawMode() from outside hands over what is buffered", () => {
  const raw: string[] = [];
  const p = new ChunkProtocol("\n", () => {});
  p.dataReceived(bytes("partial"));
  p.setRawMode((data) => raw.push(text(data)));
  p.dataReceived(bytes("\nmore"));
  assertEquals(raw, ["partial", "\nmore"]);
});

Deno.test("ChunkProtocol.setRawMode() uses an overridden rawDataReceived()", () => {
  class Sub extends ChunkProtocol {
    raw = "";
    override rawDataReceived(data: Uint8Array): void {
      this.raw += text(data);
    }
  }
  const p = new Sub("\n", (_c, self) => self.setRawMode());
  p.dataReceived(bytes("head\nbody"));
  assertEquals(p.raw, "body");
});

Deno.test("ChunkProtocol.setRawMode() without onData or an override throws TypeError", () => {
  const p = new ChunkProtocol("\n", () => {});
  assertThrows(() => p.setRawMode(), TypeError, "Cannot switch to raw mode");
  assertThrows(
    () => p.setRawMode(42 as never),
    TypeError,
    "onData must be a function",
  );
});

// ---- Connection events and writing ----

Deno.test("ChunkProtocol passes connection events to a composed receiver", async () => {
  const loop = new VirtualTimeLoop();
  const events: string[] = [];
  const done = loop.createFuture<void>();
  const p = new ChunkProtocol("\n", {
    connectionMade: (self) => {
      events.push(`made ${self.transport !== null}`);
    },
    chunkReceived: (c) => events.push(text(c)),
    eofReceived: () => {
      events.push("eof");
      return true;
    },
    connectionLost: (exc, self) => {
      events.push(`lost ${exc} ${self.transport}`);
      done.setResult();
    },
  });
  const [a] = transportPair(new Protocol(), p, { loop });
  a.write(bytes("x\ny"));
  a.writeEof();
  loop.callLater(1, () => p.transport!.close());
  await loop.runUntilComplete(done);
  assertEquals(events, ["made true", "x", "eof", "lost undefined null"]);
  loop.close();
});

Deno.test("ChunkProtocol stops delivering once a callback closes the transport", async () => {
  const results = await receiveEverySplit(
    bytes("one\nQUIT\nthree\n"),
    () => {
      const log: string[] = [];
      const p = new ChunkProtocol("\n", (c, self) => {
        log.push(text(c));
        if (text(c) === "QUIT") self.transport!.close();
      });
      return Object.assign(p, { log });
    },
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(result, ["one", "QUIT"], name);
  }
});

Deno.test("ChunkProtocol.writeChunk() sends the chunk and the delimiter in one write", () => {
  const writes: Uint8Array[][] = [];
  const p = new ChunkProtocol("\r\n", () => {});
  p.connectionMade(
    {
      writelines: (list: Uint8Array[]) => writes.push([...list]),
    } as unknown as Transport,
  );
  p.writeChunk("hé");
  p.writeChunk(new Uint8Array([1]));
  assertEquals(writes, [
    [bytes("hé"), bytes("\r\n")],
    [new Uint8Array([1]), bytes("\r\n")],
  ]);
});

Deno.test("ChunkProtocol.writeChunk() round-trips over a transport pair", async () => {
  const loop = new VirtualTimeLoop();
  const got = loop.createFuture<string[]>();
  const seen: string[] = [];
  const server = new ChunkProtocol("\0", (c, self) => self.writeChunk(c));
  const client = new ChunkProtocol("\0", (c) => {
    seen.push(text(c));
    if (seen.length === 3) got.setResult(seen);
  });
  transportPair(server, client, { loop, chunkSize: 1 });
  loop.callSoon(() => {
    client.writeChunk("a");
    client.writeChunk("");
    client.writeChunk("ccc");
  });
  assertEquals(await loop.runUntilComplete(got), ["a", "", "ccc"]);
  loop.close();
});

Deno.test("ChunkProtocol.writeChunk() throws when not connected or given a wrong type", () => {
  const p = new ChunkProtocol("\n", () => {});
  assertThrows(
    () => p.writeChunk("x"),
    InvalidStateError,
    "Cannot call writeChunk(): the protocol is not connected",
  );
  assertThrows(
    () => p.writeChunk(42 as never),
    TypeError,
    "data must be a Uint8Array or a string, received number",
  );
});

// ---- Construction ----

Deno.test("ChunkProtocol validates its delimiter, callback and maxLength", () => {
  assertThrows(() => new ChunkProtocol("", () => {}), RangeError, "empty");
  assertThrows(() => new ChunkProtocol(7 as never, () => {}), TypeError);
  assertThrows(
    () => new ChunkProtocol("\n", 7 as never),
    TypeError,
    "onChunk must be a function or an object with chunkReceived()",
  );
  assertThrows(
    () => new ChunkProtocol("\n", () => {}, { maxLength: -1 }),
    RangeError,
    "maxLength must be a whole number >= 0, received -1",
  );
  assertThrows(
    () => new ChunkProtocol("\n", () => {}, { maxLength: 1.5 }),
    RangeError,
  );
  const p = new ChunkProtocol(new Uint8Array([0]));
  assertEquals([p.delimiter, p.maxLength], [new Uint8Array([0]), 16384]);
});

Deno.test("ChunkProtocol refuses an onLengthExceeded that is not a function when made, not when a chunk is too long", () => {
  assertThrows(
    () => new ChunkProtocol("\n", () => {}, { onLengthExceeded: 7 as never }),
    TypeError,
    "Cannot make a ChunkProtocol: onLengthExceeded must be a function, received number",
  );
});

Deno.test("ChunkProtocol keeps its own copy of the delimiter", () => {
  const delim = bytes(";");
  const chunks: string[] = [];
  const p = new ChunkProtocol(delim, (c) => chunks.push(text(c)));
  delim[0] = 44;
  p.dataReceived(bytes("a;b,"));
  assertEquals(chunks, ["a"]);
});

Deno.test("ChunkProtocol chunkReceived() can be overridden instead of a callback", () => {
  class Upper extends ChunkProtocol {
    out: string[] = [];
    override chunkReceived(chunk: Uint8Array): void {
      this.out.push(text(chunk).toUpperCase());
    }
  }
  const p = new Upper("\n");
  p.dataReceived(bytes("a\nb\n"));
  assertEquals(p.out, ["A", "B"]);
});

// ---- Callbacks that change the framing, pause or stop it ----

Deno.test("ChunkProtocol switches modes many times in one delivery without growing the stack", () => {
  // Twisted's test_stackRecursion: each line turns raw mode on, and the raw
  // handler hands back all but one byte to be framed again.
  const flips = 100_000;
  let lines = 0;
  const p = new ChunkProtocol("\n", (_chunk, self) => {
    lines++;
    self.setRawMode((data, s) => s.setChunkMode(data.subarray(1)));
  });
  p.dataReceived(bytes("x\nx".repeat(flips)));
  assertEquals(lines, flips);
});

Deno.test("ChunkProtocol frames bytes passed to setChunkMode() inside a callback after those already received", () => {
  const log: string[] = [];
  const p = new ChunkProtocol("\n", (chunk, self) => {
    log.push(text(chunk));
    if (text(chunk) === "a") self.setChunkMode(bytes("x\n"));
  });
  p.dataReceived(bytes("a\nb\n"));
  assertEquals(log, ["a", "b", "x"]);
});

Deno.test("ChunkProtocol delivers nothing after connectionLost", () => {
  const log: string[] = [];
  const p = new ChunkProtocol("\n", (chunk) => log.push(text(chunk)));
  p.dataReceived(bytes("a\nb"));
  p.connectionLost();
  p.dataReceived(bytes("c\nd\n"));
  assertEquals(log, ["a"]);
});

Deno.test("ChunkProtocol.pauseProducing() in a callback holds the chunks already received until resumeProducing()", async () => {
  // Twisted's test_pausing, split every way: the chunks after "pause" come
  // only once the protocol is resumed, in order, and reading paused too.
  const results = await receiveEverySplit(
    bytes("one\ntwo\npause\nthree\nfour\n"),
    () => {
      const log: string[] = [];
      const p = new ChunkProtocol("\n", (c, self) => {
        log.push(text(c));
        if (text(c) !== "pause") return;
        pauseForASecond(self, log);
      });
      return Object.assign(p, { log });
    },
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(
      result,
      ["one", "two", "pause", "reading false", "resume", "three", "four"],
      name,
    );
  }
});

Deno.test("ChunkProtocol.pauseProducing() holds raw bytes too, and resumeProducing() hands them over", () => {
  const log: string[] = [];
  const p = new ChunkProtocol("\n", (c, self) => {
    log.push(text(c));
    self.pauseProducing();
    self.setRawMode((data) => log.push(`raw ${text(data)}`));
  });
  p.dataReceived(bytes("head\nbody"));
  p.dataReceived(bytes("-more"));
  assertEquals(log, ["head"]);
  p.resumeProducing();
  assertEquals(log, ["head", "raw body", "raw -more"]);
});

Deno.test("ChunkProtocol.stopProducing() drops what is held and closes the transport", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const p = new ChunkProtocol("\n", {
    chunkReceived: (c, self) => {
      log.push(text(c));
      if (text(c) === "stop") self.stopProducing();
    },
    connectionLost: (exc) => log.push(`lost ${exc?.name ?? "clean"}`),
  });
  const [a] = transportPair(new Protocol(), p, { loop });
  a.write(bytes("one\nstop\nthree\n"));
  await loop.advance(1);
  assertEquals(log, ["one", "stop", "lost clean"]);
  loop.close();
});
