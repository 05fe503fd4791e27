import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertThrows,
} from "@std/assert";
import { LineReceiver } from "../../protocols/line_receiver.ts";
import { ChunkProtocol } from "../../protocols/chunk_protocol.ts";
import { Protocol } from "../../protocols/protocol.ts";
import { InvalidStateError, LimitOverrunError } from "../../futures/errors.ts";
import type { Transport } from "../../transports/transport.ts";
import { transportPair } from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { bytes, receiveEverySplit, text } from "../_every_split.ts";

Deno.test("LineReceiver delivers the same lines however the input is split", async () => {
  const input =
    "GET / HTTP/1.1\r\nHost: x\r\n\r\nlone \n and \r inside\r\nrest";
  const results = await receiveEverySplit(
    bytes(input),
    () => {
      const lines: string[] = [];
      return Object.assign(new LineReceiver((l) => lines.push(text(l))), {
        lines,
      });
    },
    (p) => p.lines,
  );
  for (const { name, result } of results) {
    assertEquals(result, [
      "GET / HTTP/1.1",
      "Host: x",
      "",
      "lone \n and \r inside",
    ], name);
  }
});

Deno.test("LineReceiver cuts multi-byte UTF-8 text only at line ends", async () => {
  const results = await receiveEverySplit(
    bytes("héllo wörld\r\n日本\r\n"),
    () => {
      const lines: string[] = [];
      return Object.assign(new LineReceiver((l) => lines.push(text(l))), {
        lines,
      });
    },
    (p) => p.lines,
  );
  for (const { name, result } of results) {
    assertEquals(result, ["héllo wörld", "日本"], name);
  }
});

Deno.test("LineReceiver enforces maxLength, allowing exactly maxLength bytes", async () => {
  const results = await receiveEverySplit(
    bytes("1234\r\n12345\r\nlater\r\n"),
    () => {
      const log: string[] = [];
      const p = new LineReceiver({
        chunkReceived: (l) => log.push(text(l)),
        connectionLost: (exc) => log.push(`lost ${exc?.name}`),
      }, { maxLength: 4 });
      return Object.assign(p, { log });
    },
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(result, ["1234", "lost LimitOverrunError"], name);
  }
});

Deno.test("LineReceiver defaults to a maxLength of 16384 bytes", () => {
  const errors: LimitOverrunError[] = [];
  const sizes: number[] = [];
  const p = new LineReceiver((l) => sizes.push(l.length), {
    onLengthExceeded: (e) => errors.push(e),
  });
  assertEquals(p.maxLength, 16384);
  p.dataReceived(new Uint8Array(16384).fill(97));
  p.dataReceived(bytes("\r\n"));
  p.dataReceived(new Uint8Array(16385).fill(97));
  p.dataReceived(bytes("\r\nok\r\n"));
  assertEquals(sizes, [16384, 2]);
  assertEquals(errors.length, 1);
  assertInstanceOf(errors[0], LimitOverrunError);
});

Deno.test("LineReceiver.lineReceived() can be overridden by a subclass", () => {
  class Collect extends LineReceiver {
    lines: string[] = [];
    override lineReceived(line: Uint8Array): void {
      this.lines.push(text(line));
    }
  }
  const p = new Collect();
  p.dataReceived(bytes("a\r\nb\r"));
  p.dataReceived(bytes("\n"));
  assertEquals(p.lines, ["a", "b"]);
  assertEquals(p instanceof ChunkProtocol, true);
});

Deno.test("LineReceiver.writeLine() appends CRLF and accepts strings or bytes", () => {
  const sent: string[] = [];
  const p = new LineReceiver(() => {});
  p.connectionMade(
    {
      writelines: (list: Uint8Array[]) => sent.push(list.map(text).join("")),
    } as unknown as Transport,
  );
  p.writeLine("hi");
  p.writeLine(bytes("there"));
  p.writeLine("");
  assertEquals(sent, ["hi\r\n", "there\r\n", "\r\n"]);
  p.connectionLost();
  assertThrows(
    () => p.writeLine("x"),
    InvalidStateError,
    "Cannot call writeLine(): the protocol is not connected",
  );
  assertThrows(
    () => p.writeLine(3 as never),
    TypeError,
    "Cannot call writeLine(): line must be a Uint8Array or a string, received number",
  );
});

Deno.test("LineReceiver's constructor errors name LineReceiver and its onLine parameter", () => {
  assertThrows(
    () => new LineReceiver(5 as never),
    TypeError,
    "Cannot make a LineReceiver: onLine must be a function or an object with chunkReceived(), received number",
  );
  assertThrows(
    () => new LineReceiver(() => {}, { maxLength: -1 }),
    RangeError,
    "Cannot make a LineReceiver: maxLength must be a whole number >= 0, received -1",
  );
  assertThrows(
    () => new LineReceiver(() => {}, { onLengthExceeded: 1 as never }),
    TypeError,
    "Cannot make a LineReceiver: onLengthExceeded must be a function, received number",
  );
  assertThrows(
    () => new LineReceiver(() => {}, 1024 as never),
    TypeError,
    "Cannot make a LineReceiver: options must be an object like { maxLength }, received 1024",
  );
  // A subclass of LineReceiver is still made as a LineReceiver.
  class Upper extends LineReceiver {}
  assertThrows(
    () => new Upper(() => {}, { maxLength: 1.5 }),
    RangeError,
    "Cannot make a LineReceiver: maxLength must be a whole number >= 0, received 1.5",
  );
  // ChunkProtocol keeps its own words.
  assertThrows(
    () => new ChunkProtocol(";", 5 as never),
    TypeError,
    "Cannot make a ChunkProtocol: onChunk must be a function or an object with chunkReceived(), received number",
  );
});

Deno.test("LineReceiver.setLineMode() returns from raw mode with leftover bytes", () => {
  const log: string[] = [];
  const p = new LineReceiver((line, self) => {
    log.push(`line ${text(line)}`);
    if (text(line) === "RAW") {
      self.setRawMode((data, s) => {
        log.push(`raw ${text(data.subarray(0, 3))}`);
        s.setLineMode(data.subarray(3));
      });
    }
  });
  p.dataReceived(bytes("RAW\r\nxyzA\r\nB\r\n"));
  assertEquals(log, ["line RAW", "raw xyz", "line A", "line B"]);
  assertEquals(p.isRawMode(), false);
});

Deno.test("LineReceiver talks to another LineReceiver over a chunked transport pair", async () => {
  const loop = new VirtualTimeLoop();
  const replies: string[] = [];
  const done = loop.createFuture<void>();
  const server = new LineReceiver((line, p) => {
    const words = text(line);
    if (words === "bye") p.transport!.close();
    else p.writeLine(words.split("").reverse().join(""));
  });
  const client = new LineReceiver({
    chunkReceived: (line) => replies.push(text(line)),
    connectionLost: () => done.setResult(),
  });
  transportPair(server, client, { loop, chunkSize: [1, 3, 2], delay: 0.01 });
  loop.callSoon(() => {
    for (const w of ["abc", "", "hello", "bye", "ignored"]) client.writeLine(w);
  });
  await loop.runUntilComplete(done);
  assertEquals(replies, ["cba", "", "olleh"]);
  loop.close();
});

Deno.test("LineReceiver.lineLengthExceeded() can be overridden by a subclass", () => {
  class Lenient extends LineReceiver {
    lines: string[] = [];
    tooLong = 0;
    override lineReceived(line: Uint8Array): void {
      this.lines.push(text(line));
    }
    override lineLengthExceeded(_error: LimitOverrunError): void {
      this.tooLong++;
    }
  }
  const p = new Lenient(undefined, { maxLength: 3 });
  p.dataReceived(bytes("abc\r\nabcd\r\nxy\r\n"));
  assertEquals([p.lines, p.tooLong], [["abc", "xy"], 1]);
});

Deno.test("LineReceiver registered as its own transport's producer bounds an echo's write buffer", async () => {
  // Twisted's LineReceiver is a push producer: its transport pauses it
  // when the replies pile up, which holds back the lines already received.
  const loop = new VirtualTimeLoop();
  let most = 0;
  const echo = new LineReceiver((line, self) => {
    self.writeLine(line);
    most = Math.max(most, self.transport!.getWriteBufferSize());
  });
  const reader = new Protocol();
  let read = 0;
  reader.dataReceived = (data) => void (read += data.length);
  const [client, server] = transportPair(reader, echo, {
    loop,
    bufferSize: 100,
  });
  server.setWriteBufferLimits(200, 50);
  server.registerProducer(echo, true);
  client.pauseReading();
  loop.callSoon(() => client.write(bytes("0123456789\r\n".repeat(100))));
  await loop.advance(1);
  assert(most <= 200 + 12, `the write buffer reached ${most} bytes`);
  client.resumeReading();
  await loop.advance(1);
  assertEquals(read, 1200);
  loop.close();
});
