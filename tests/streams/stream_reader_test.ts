import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { StreamReader } from "../../streams/stream_reader.ts";
import { StreamReaderProtocol } from "../../streams/stream_reader_protocol.ts";
import { readerFriends } from "../../streams/_reader_friends.ts";
import {
  CancelledError,
  IncompleteReadError,
  InvalidStateError,
  LimitOverrunError,
  TimeoutError,
} from "../../futures/errors.ts";
import type { Future } from "../../futures/future.ts";
import { BaseEventLoop } from "../../loop/base_event_loop.ts";
import type { Coroutine } from "../../tasks/task.ts";
import { gather } from "../../tasks/gather.ts";
import { timeout } from "../../tasks/timeout.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import type { ReadTransport } from "../../transports/transport.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { bytes, receiveEverySplit, text } from "../_every_split.ts";

function setup(limit?: number) {
  const loop = new VirtualTimeLoop();
  const reader = new StreamReader({ loop, limit });
  return { loop, reader };
}

/** Runs an async function as a task to completion. */
function run<T>(loop: VirtualTimeLoop, fn: () => Promise<T>): Promise<T> {
  return loop.runUntilComplete(loop.createTask(fn));
}

/** A read transport that records pauses and resumes. */
function fakeTransport() {
  const calls: string[] = [];
  let reading = true;
  const transport = {
    pauseReading: () => {
      calls.push("pause");
      reading = false;
    },
    resumeReading: () => {
      calls.push("resume");
      reading = true;
    },
    isReading: () => reading,
  } as unknown as ReadTransport;
  return { transport, calls };
}

// ---- read ----

Deno.test("StreamReader.read(n) returns at most n of the buffered bytes", async () => {
  const { loop, reader } = setup();
  reader.feedData(bytes("abcdef"));
  assertEquals(text(await loop.runUntilComplete(reader.read(4))), "abcd");
  assertEquals(text(await loop.runUntilComplete(reader.read(100))), "ef");
  loop.close();
});

Deno.test("StreamReader.read(n) waits for data, then returns what arrived", async () => {
  const { loop, reader } = setup();
  const pending = reader.read(10);
  assertFalse(pending.done());
  loop.callLater(1, () => reader.feedData(bytes("xy")));
  assertEquals(text(await loop.runUntilComplete(pending)), "xy");
  assertEquals(loop.time(), 1);
  loop.close();
});

Deno.test("StreamReader.read() reads everything until the end of the stream", async () => {
  const { loop, reader } = setup(4);
  const { transport, calls } = fakeTransport();
  reader.setTransport(transport);
  const all = reader.read();
  for (let i = 0; i < 5; i++) {
    loop.callLater(i, () => reader.feedData(bytes("0123456789")));
  }
  loop.callLater(5, () => reader.feedEof());
  assertEquals((await loop.runUntilComplete(all)).length, 50);
  // read() consumes as it goes: the buffer never forced a pause.
  assertEquals(calls, []);
  assert(reader.atEof());
  loop.close();
});

Deno.test("StreamReader.read() returns empty at the end of the stream and for n = 0", async () => {
  const { loop, reader } = setup();
  reader.feedData(bytes("a"));
  assertEquals(await loop.runUntilComplete(reader.read(0)), new Uint8Array());
  reader.feedEof();
  assertEquals(text(await loop.runUntilComplete(reader.read())), "a");
  assertEquals(await loop.runUntilComplete(reader.read(5)), new Uint8Array());
  assertEquals(await loop.runUntilComplete(reader.read()), new Uint8Array());
  assertThrows(() => reader.read(1.5), TypeError);
  loop.close();
});

// ---- readline ----

Deno.test("StreamReader.readline() returns lines with their newline, then the rest at EOF", async () => {
  const { loop, reader } = setup();
  reader.feedData(bytes("one\ntwo\r\nthree"));
  reader.feedEof();
  const lines = await run(loop, async () => [
    text(await reader.readline()),
    text(await reader.readline()),
    text(await reader.readline()),
    text(await reader.readline()),
  ]);
  assertEquals(lines, ["one\n", "two\r\n", "three", ""]);
  loop.close();
});

Deno.test("StreamReader.readline() drops an over-long line and throws LimitOverrunError", async () => {
  const { loop, reader } = setup(5);
  reader.feedData(bytes("12345\n123456\nok\n"));
  assertEquals(text(await loop.runUntilComplete(reader.readline())), "12345\n");
  const err = await assertRejects(
    () => loop.runUntilComplete(reader.readline()),
    LimitOverrunError,
  );
  assertEquals(err.consumed, 6);
  // The over-long line is gone, up to its newline.
  assertEquals(text(await loop.runUntilComplete(reader.readline())), "ok\n");
  loop.close();
});

Deno.test("StreamReader.readline() clears the buffer when no newline is within the limit", async () => {
  const { loop, reader } = setup(5);
  const line = reader.readline();
  reader.feedData(bytes("1234"));
  assertFalse(line.done());
  reader.feedData(bytes("567"));
  await assertRejects(() => loop.runUntilComplete(line), LimitOverrunError);
  reader.feedData(bytes("89\nnext\n"));
  // asyncio behaviour: the tail of the long line comes back as a line.
  assertEquals(text(await loop.runUntilComplete(reader.readline())), "89\n");
  assertEquals(text(await loop.runUntilComplete(reader.readline())), "next\n");
  loop.close();
});

Deno.test("StreamReader.readline() drops the whole over-long line when its pieces arrive in one turn of the loop (asyncio's test_readline_limit)", async () => {
  for (const end of ["next\n", "eof"]) {
    const { loop, reader } = setup(7);
    loop.callSoon(() => {
      reader.feedData(bytes("chunk1"));
      reader.feedData(bytes("chunk2"));
      reader.feedData(bytes("chunk3\n"));
      if (end === "eof") reader.feedEof();
      else reader.feedData(bytes(end));
    });
    const err = await assertRejects(
      () => loop.runUntilComplete(reader.readline()),
      LimitOverrunError,
    );
    assertEquals(err.consumed, 18, end);
    // Not "chunk3\n": the tail of the long line went with it.
    assertEquals(
      text(await loop.runUntilComplete(reader.readline())),
      end === "eof" ? "" : end,
    );
    loop.close();
  }
});

Deno.test("StreamReader.readline() over the limit with the line already buffered keeps what follows its newline (asyncio's test_readline_limit_with_existing_data)", async () => {
  let { loop, reader } = setup(3);
  reader.feedData(bytes("li"));
  reader.feedData(bytes("ne1\nline2\n"));
  await assertRejects(
    () => loop.runUntilComplete(reader.readline()),
    LimitOverrunError,
  );
  // What follows the long line's newline stays.
  assertEquals(text(await loop.runUntilComplete(reader.read(100))), "line2\n");
  loop.close();

  ({ loop, reader } = setup(3));
  reader.feedData(bytes("li"));
  reader.feedData(bytes("ne1"));
  reader.feedData(bytes("li"));
  await assertRejects(
    () => loop.runUntilComplete(reader.readline()),
    LimitOverrunError,
  );
  // No newline: all that was buffered is dropped.
  reader.feedEof();
  assert(reader.atEof());
  loop.close();
});

Deno.test("StreamReader.readline() gives the same lines however the input is split", async () => {
  const input = "alpha\nbeta\n\ngamma\r\ndelta";
  const results = await receiveEverySplit(
    bytes(input),
    () => {
      const reader = new StreamReader();
      const lines: string[] = [];
      const protocol = new StreamReaderProtocol(reader, async (r, w) => {
        for await (const line of r) lines.push(text(line));
        w.close();
      });
      return Object.assign(protocol, { lines });
    },
    (p) => p.lines,
  );
  for (const { name, result } of results) {
    assertEquals(
      result,
      ["alpha\n", "beta\n", "\n", "gamma\r\n", "delta"],
      name,
    );
  }
});

// ---- readuntil ----

Deno.test("StreamReader.readuntil() returns the bytes up to and including the separator", async () => {
  const { loop, reader } = setup();
  const got = reader.readuntil(bytes("END"));
  reader.feedData(bytes("abcEN"));
  assertFalse(got.done());
  reader.feedData(bytes("Dxyz"));
  assertEquals(text(await loop.runUntilComplete(got)), "abcEND");
  assertEquals(text(await loop.runUntilComplete(reader.read(10))), "xyz");
  loop.close();
});

Deno.test("StreamReader.readuntil() with several separators returns the shortest match", async () => {
  const { loop, reader } = setup();
  reader.feedData(bytes("key=value;rest"));
  const got = reader.readuntil([bytes(";"), bytes("="), bytes("lue;")]);
  assertEquals(text(await loop.runUntilComplete(got)), "key=");
  const next = reader.readuntil([bytes("lue;"), bytes(";")]);
  assertEquals(text(await loop.runUntilComplete(next)), "value;");
  loop.close();
});

Deno.test("StreamReader.readuntil() throws IncompleteReadError at EOF and empties the buffer", async () => {
  const { loop, reader } = setup();
  reader.feedData(bytes("no sep"));
  reader.feedEof();
  const err = await assertRejects(
    () => loop.runUntilComplete(reader.readuntil(bytes("\r\n"))),
    IncompleteReadError,
  );
  assertEquals([text(err.partial), err.expected], ["no sep", null]);
  assert(reader.atEof());
  loop.close();
});

Deno.test("StreamReader.readuntil() throws LimitOverrunError and keeps the data", async () => {
  const { loop, reader } = setup(4);
  reader.feedData(bytes("12345;"));
  const found = await assertRejects(
    () => loop.runUntilComplete(reader.readuntil(bytes(";"))),
    LimitOverrunError,
    "is found", // asyncio's test_readuntil_limit_found_sep matches this
  );
  assertEquals(found.consumed, 5);
  assertEquals(text(await loop.runUntilComplete(reader.read(3))), "123");
  // Now "45;" fits.
  assertEquals(
    text(await loop.runUntilComplete(reader.readuntil(bytes(";")))),
    "45;",
  );
  reader.feedData(bytes("abcdefgh"));
  const missing = await assertRejects(
    () => loop.runUntilComplete(reader.readuntil(bytes("!!"))),
    LimitOverrunError,
    "not found",
  );
  assertEquals(missing.consumed, 7);
  assertEquals(
    text(await loop.runUntilComplete(reader.read(100))),
    "abcdefgh",
  );
  loop.close();
});

Deno.test("StreamReader.readuntil() allows a chunk of exactly limit bytes", async () => {
  const { loop, reader } = setup(4);
  reader.feedData(bytes("1234;"));
  assertEquals(
    text(await loop.runUntilComplete(reader.readuntil(bytes(";")))),
    "1234;",
  );
  loop.close();
});

Deno.test("StreamReader.readuntil() rejects empty and non-byte separators", () => {
  const { loop, reader } = setup();
  assertThrows(
    () => reader.readuntil(new Uint8Array()),
    RangeError,
    "a separator must be at least one byte, received an empty one",
  );
  assertThrows(
    () => reader.readuntil([bytes(";"), new Uint8Array()]),
    RangeError,
    "a separator must be at least one byte, received an empty one",
  );
  // asyncio's test_readuntil_separator: an empty tuple is its own error.
  assertThrows(
    () => reader.readuntil([]),
    RangeError,
    "the list of separators must hold at least one, received an empty list",
  );
  assertThrows(
    () => reader.readuntil("\n" as never),
    TypeError,
    "received a string",
  );
  loop.close();
});

Deno.test("StreamReader.readuntil() finds a separator split over buffered pieces, and ends at the first one (asyncio's test_readuntil_multi_chunks_1)", async () => {
  const { loop, reader } = setup();
  const cases: [string[], string][] = [
    [["QWEaa", "XYaa", "a"], "QWEaaXYaaa"],
    [["QWEaa", "XYa", "aa"], "QWEaaXYaaa"],
    [["aaa"], "aaa"],
    [["Xaaa"], "Xaaa"],
    [["XXX", "a", "a", "a"], "XXXaaa"],
    [["lineAAAxxx"], "lineAAA"],
  ];
  for (const [pieces, want] of cases) {
    for (const piece of pieces) reader.feedData(bytes(piece));
    const sep = bytes(want.endsWith("AAA") ? "AAA" : "aaa");
    assertEquals(
      text(await loop.runUntilComplete(reader.readuntil(sep))),
      want,
    );
  }
  reader.feedEof();
  assertEquals(text(await loop.runUntilComplete(reader.read())), "xxx");
  loop.close();
});

Deno.test("StreamReader.readuntil() searches only new bytes as data trickles in", async () => {
  const { loop, reader } = setup(1 << 20);
  const got = reader.readuntil(bytes("\r\n"));
  const one = new Uint8Array([97]);
  for (let i = 0; i < 100_000; i++) reader.feedData(one);
  reader.feedData(bytes("\r\n"));
  assertEquals((await loop.runUntilComplete(got)).length, 100_002);
  loop.close();
});

// Mirrors asyncio's test_readuntil_multi_separator_limit.
Deno.test("StreamReader.readuntil() over the limit with several separators ending at the same byte blames the shortest, and keeps the data", async () => {
  const { loop, reader } = setup(3);
  reader.feedData(bytes("a long lineX"));
  // Both end at the X; the one-byte separator is the one that matched, so
  // the chunk before it (11 bytes) is what is over the limit.
  const err = await assertRejects(
    () =>
      loop.runUntilComplete(
        reader.readuntil([bytes("X"), bytes(" long lineX")]),
      ),
    LimitOverrunError,
    "is found",
  );
  assertEquals(err.consumed, 11);
  reader.feedEof();
  assertEquals(
    text(await loop.runUntilComplete(reader.read())),
    "a long lineX",
  );
  loop.close();
});

// Mirrors asyncio's test_readuntil_multi_separator_negative_offset.
Deno.test("StreamReader.readuntil() with a separator longer than what is buffered still finds a short one in bytes that come later", async () => {
  const { loop, reader } = setup();
  reader.feedData(bytes("abc"));
  const got = loop.createTask(() =>
    reader.readuntil([bytes(";"), bytes("a much longer separator")])
  );
  loop.callSoon(() => reader.feedData(bytes("d")));
  loop.callSoon(() => loop.callSoon(() => reader.feedData(bytes(";rest"))));
  assertEquals(text(await loop.runUntilComplete(got)), "abcd;");
  reader.feedEof();
  assertEquals(text(await loop.runUntilComplete(reader.read())), "rest");
  loop.close();
});

// ---- readexactly ----

Deno.test("StreamReader.readexactly() waits for exactly n bytes", async () => {
  const { loop, reader } = setup();
  const got = reader.readexactly(5);
  reader.feedData(bytes("ab"));
  reader.feedData(bytes("cdefg"));
  assertEquals(text(await loop.runUntilComplete(got)), "abcde");
  assertEquals(
    await loop.runUntilComplete(reader.readexactly(0)),
    new Uint8Array(),
  );
  loop.close();
});

Deno.test("StreamReader.readexactly() throws IncompleteReadError with the partial bytes", async () => {
  const { loop, reader } = setup();
  reader.feedData(bytes("abc"));
  reader.feedEof();
  const err = await assertRejects(
    () => loop.runUntilComplete(reader.readexactly(5)),
    IncompleteReadError,
  );
  assertEquals([text(err.partial), err.expected], ["abc", 5]);
  assertThrows(() => reader.readexactly(-1), RangeError);
  loop.close();
});

// Mirrors asyncio's test_read_limit and test_readexactly_limit.
Deno.test("StreamReader.read(n) and readexactly(n) are not bounded by limit, which only bounds separator searches", async () => {
  const { loop, reader } = setup(3);
  reader.feedData(bytes("chunk"));
  assertEquals(text(await loop.runUntilComplete(reader.read(5))), "chunk");
  reader.feedData(bytes("chunk"));
  assertEquals(
    text(await loop.runUntilComplete(reader.readexactly(5))),
    "chunk",
  );
  assertEquals(readerFriends.buffered(reader), 0);
  loop.close();
});

// ---- State, errors, concurrency ----

Deno.test("StreamReader lets go of a large buffer once a big read has emptied it, as asyncio's bytearray does", async () => {
  const { loop, reader } = setup();
  const size = 8 << 20;
  const body = reader.readexactly(size);
  const chunk = new Uint8Array(64 * 1024);
  for (let fed = 0; fed < size; fed += chunk.length) reader.feedData(chunk);
  assertEquals((await loop.runUntilComplete(body)).length, size);
  // An idle connection keeps no megabytes for a read that is over.
  assert(
    readerFriends.capacity(reader) <= 1 << 20,
    `${readerFriends.capacity(reader)} bytes kept`,
  );
  // The buffer of ordinary traffic is kept, not remade for every chunk.
  reader.feedData(chunk);
  await loop.runUntilComplete(reader.read(chunk.length));
  assertEquals(readerFriends.capacity(reader), chunk.length);
  loop.close();
});

Deno.test("StreamReader lets go of a large buffer once a big read leaves a few bytes of the next message", async () => {
  const { loop, reader } = setup();
  const size = 8 << 20;
  const body = reader.readexactly(size);
  const chunk = new Uint8Array(64 * 1024);
  const next = bytes("GET / HT");
  for (let fed = chunk.length; fed < size; fed += chunk.length) {
    reader.feedData(chunk);
  }
  // The last chunk brings the start of what a pipelining peer sends next.
  const last = new Uint8Array(chunk.length + next.length);
  last.set(next, chunk.length);
  reader.feedData(last);
  assertEquals((await loop.runUntilComplete(body)).length, size);
  assert(
    readerFriends.capacity(reader) <= 1 << 20,
    `${readerFriends.capacity(reader)} bytes kept for 8`,
  );
  reader.feedData(bytes("TP/1.1\r\n"));
  assertEquals(
    text(await loop.runUntilComplete(reader.readline())),
    "GET / HTTP/1.1\r\n",
  );
  loop.close();
});

Deno.test("StreamReader.atEof() is true only after EOF with an empty buffer", async () => {
  const { loop, reader } = setup();
  assertFalse(reader.atEof());
  reader.feedData(bytes("x"));
  reader.feedEof();
  assertFalse(reader.atEof());
  await loop.runUntilComplete(reader.read(1));
  assert(reader.atEof());
  loop.close();
});

Deno.test("StreamReader.setException() fails the waiting read and every later one", async () => {
  const { loop, reader } = setup();
  const pending = reader.readline();
  const boom = new Error("boom");
  reader.setException(boom);
  assertStrictEquals(reader.exception(), boom);
  await assertRejects(() => loop.runUntilComplete(pending), Error, "boom");
  reader.feedData(bytes("data\n"));
  for (
    const read of [
      () => reader.read(1),
      () => reader.read(0),
      () => reader.readline(),
      () => reader.readexactly(0),
      () => reader.readuntil(),
    ]
  ) {
    await assertRejects(() => loop.runUntilComplete(read()), Error, "boom");
  }
  loop.close();
});

Deno.test("StreamReader allows one waiting read at a time", async () => {
  const { loop, reader } = setup();
  const first = reader.readline();
  const second = reader.read(1);
  await assertRejects(
    () => loop.runUntilComplete(second),
    InvalidStateError,
    "Cannot call read(): readline() is already waiting for incoming data",
  );
  // Once the first is cancelled, another read may wait.
  first.cancel();
  const third = reader.readexactly(2);
  reader.feedData(bytes("ok"));
  assertEquals(text(await loop.runUntilComplete(third)), "ok");
  await assertRejects(() => loop.runUntilComplete(first), CancelledError);
  loop.close();
});

Deno.test("StreamReader reads can be cancelled through their task", async () => {
  const { loop, reader } = setup();
  const task = loop.createTask(async () => await reader.readline());
  loop.callLater(1, () => task.cancel());
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  reader.feedData(bytes("after\n"));
  assertEquals(text(await loop.runUntilComplete(reader.readline())), "after\n");
  loop.close();
});

// Mirrors asyncio's test_exception_cancel.
Deno.test("StreamReader.setException() after the waiting read's task was cancelled reports nothing and leaves no read waiting", async () => {
  const { loop, reader } = setup();
  const reports: unknown[] = [];
  loop.setExceptionHandler((_loop, context) => reports.push(context));
  const task = loop.createTask(async () => await reader.readline());
  loop.callLater(1, () => task.cancel());
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  const boom = new Error("boom");
  reader.setException(boom);
  await loop.runUntilComplete(loop.createTask(async () => {}));
  assertEquals(reports, []);
  assertFalse(String(reader).includes("waiting"));
  // The next read is not refused as a second waiter: it gets the error.
  await assertRejects(
    () => loop.runUntilComplete(reader.readline()),
    Error,
    "boom",
  );
  loop.close();
});

Deno.test("StreamReader keeps the bytes of a read whose task is cancelled after they came but before it resumed (asyncio leaves them buffered: its task takes them)", async () => {
  const reads: [string, (r: StreamReader) => Future<Uint8Array>][] = [
    ["readline", (r) => r.readline()],
    ["readuntil", (r) => r.readuntil(bytes("\n"))],
    ["readexactly", (r) => r.readexactly(5)],
    ["read", (r) => r.read(100)],
    ["read(-1)", (r) => r.read()],
  ];
  for (const [name, read] of reads) {
    // An async-function task, and a generator task.
    for (const kind of ["async", "generator"]) {
      const { loop, reader } = setup();
      const task = kind === "async"
        ? loop.createTask(async () => await read(reader))
        : loop.createTask(function* (): Coroutine<Uint8Array> {
          return yield* read(reader);
        });
      loop.callSoon(() => {
        reader.feedData(bytes("line\nmore"));
        if (name === "read(-1)") reader.feedEof();
        task.cancel();
      });
      await assertRejects(() => loop.runUntilComplete(task), CancelledError);
      if (name !== "read(-1)") reader.feedEof();
      assertEquals(
        text(await loop.runUntilComplete(reader.read())),
        "line\nmore",
        `${name} in an ${kind} task`,
      );
      loop.close();
    }
  }
});

Deno.test("StreamReader keeps the bytes of a waiting read whose verdict comes in the turn its task is cancelled (asyncio's read gives it only when its task resumes)", async () => {
  // A read, the reader's limit, and what the turn of the cancellation feeds.
  const cases: [
    string,
    (r: StreamReader) => Future<Uint8Array>,
    number,
    (r: StreamReader) => void,
  ][] = [
    ["read(-1) fed", (r) => r.read(), 64, (r) => {
      r.feedData(bytes("one "));
      r.feedData(bytes("two\n"));
    }],
    [
      "readline() over the limit",
      (r) => r.readline(),
      2,
      (r) => r.feedData(bytes("one two\n")),
    ],
    ["readuntil() at the end", (r) => r.readuntil(bytes("!")), 64, (r) => {
      r.feedData(bytes("one two\n"));
      r.feedEof();
    }],
    ["readexactly() at the end", (r) => r.readexactly(10), 64, (r) => {
      r.feedData(bytes("one two\n"));
      r.feedEof();
    }],
  ];
  for (const [name, read, limit, feed] of cases) {
    const { loop, reader } = setup(limit);
    const task = loop.createTask(async () => await read(reader));
    loop.callSoon(() => {
      feed(reader);
      task.cancel();
    });
    await assertRejects(() => loop.runUntilComplete(task), CancelledError);
    reader.feedEof();
    assertEquals(
      text(await loop.runUntilComplete(reader.read())),
      "one two\n",
      name,
    );
    loop.close();
  }
});

Deno.test("StreamReader keeps a line that came as a timeout() around readline() expired", async () => {
  const { loop, reader } = setup();
  const task = loop.createTask(async () => {
    try {
      await timeout(1).scope(() => reader.readline());
    } catch (e) {
      assertInstanceOf(e, TimeoutError);
    }
    return await reader.readline();
  });
  // The line comes in the same turn of the loop as the timeout.
  loop.callLater(1, () => reader.feedData(bytes("late\n")));
  assertEquals(text(await loop.runUntilComplete(task)), "late\n");
  loop.close();
});

Deno.test("StreamReader keeps a line that came as waitFor(readline()) timed out", async () => {
  const { loop, reader } = setup();
  const task = loop.createTask(async () => {
    try {
      await waitFor(reader.readline(), 1);
    } catch (e) {
      assertInstanceOf(e, TimeoutError);
    }
    return await reader.readline();
  });
  loop.callLater(1, () => reader.feedData(bytes("late\n")));
  assertEquals(text(await loop.runUntilComplete(task)), "late\n");
  loop.close();
});

Deno.test("StreamReader gives back a dropped read's bytes before those that came after", async () => {
  const { loop, reader } = setup();
  const task = loop.createTask(async () => await reader.readline());
  loop.callSoon(() => {
    reader.feedData(bytes("one\n"));
    task.cancel();
  });
  loop.callSoon(() => reader.feedData(bytes("two\n")));
  await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  assertEquals(text(await loop.runUntilComplete(reader.readline())), "one\n");
  assertEquals(text(await loop.runUntilComplete(reader.readline())), "two\n");
  loop.close();
});

Deno.test("StreamReader gives a dropped read's bytes back once, though two cancelled tasks awaited it", async () => {
  const { loop, reader } = setup();
  const read = reader.readline();
  const tasks = [0, 1].map(() => loop.createTask(async () => await read));
  loop.callSoon(() => {
    reader.feedData(bytes("one\n"));
    for (const task of tasks) task.cancel();
  });
  for (const task of tasks) {
    await assertRejects(() => loop.runUntilComplete(task), CancelledError);
  }
  reader.feedEof();
  assertEquals(text(await loop.runUntilComplete(reader.read())), "one\n");
  loop.close();
});

Deno.test("StreamReader keeps a read's bytes taken when one task awaiting it is cancelled and another resumes with them (no duplicate)", async () => {
  for (const kind of ["async", "generator", "gather"]) {
    const { loop, reader } = setup();
    const read = reader.readline();
    const dropped = loop.createTask(async () => await read);
    const taker = kind === "async"
      ? loop.createTask(async () => await read)
      : kind === "generator"
      ? loop.createTask(function* (): Coroutine<Uint8Array> {
        return yield* read;
      })
      : loop.createTask(async () => (await gather([read]))[0]);
    loop.callSoon(() => {
      reader.feedData(bytes("one\ntwo\n"));
      dropped.cancel();
    });
    await assertRejects(() => loop.runUntilComplete(dropped), CancelledError);
    assertEquals(text(await loop.runUntilComplete(taker)), "one\n", kind);
    reader.feedEof();
    assertEquals(
      text(await loop.runUntilComplete(reader.read())),
      "two\n",
      kind,
    );
    loop.close();
  }
});

Deno.test("StreamReader.feedData() rejects strings and data after EOF", () => {
  const { loop, reader } = setup();
  assertThrows(() => reader.feedData("x" as never), TypeError);
  reader.feedEof();
  assertThrows(() => reader.feedData(bytes("x")), InvalidStateError);
  loop.close();
});

Deno.test("StreamReader validates its limit and needs a loop to read", () => {
  assertThrows(() => new StreamReader({ limit: 0 }), RangeError);
  assertThrows(() => new StreamReader({ limit: 1.5 }), RangeError);
  const reader = new StreamReader();
  assertEquals(reader.limit, 65536);
  assertThrows(() => reader.read(1), InvalidStateError, "no event loop");
});

// Mirrors asyncio's test_streamreader_constructor_use_running_loop.
Deno.test("StreamReader made without a loop inside a running one reads on that loop", async () => {
  const loop = new VirtualTimeLoop();
  const reader = await loop.runUntilComplete(
    loop.createTask(() => Promise.resolve(new StreamReader())),
  );
  reader.feedData(bytes("x\n"));
  const line = reader.readline();
  assertStrictEquals(line.getLoop(), loop);
  assertEquals(text(await loop.runUntilComplete(line)), "x\n");
  loop.close();
});

Deno.test("StreamReader.setTransport() may be called once", () => {
  const { loop, reader } = setup();
  reader.setTransport(fakeTransport().transport);
  assertThrows(
    () => reader.setTransport(fakeTransport().transport),
    InvalidStateError,
  );
  loop.close();
});

// ---- Transport flow control ----

Deno.test("StreamReader pauses the transport above 2 × limit and resumes at limit", async () => {
  const { loop, reader } = setup(4);
  const { transport, calls } = fakeTransport();
  reader.setTransport(transport);
  reader.feedData(bytes("12345678")); // 8 = 2 × limit: not above
  assertEquals(calls, []);
  reader.feedData(bytes("9")); // 9 > 8
  assertEquals(calls, ["pause"]);
  reader.feedData(bytes("abc"));
  assertEquals(calls, ["pause"]);
  await loop.runUntilComplete(reader.read(7)); // 5 left > 4
  assertEquals(calls, ["pause"]);
  await loop.runUntilComplete(reader.read(1)); // 4 left
  assertEquals(calls, ["pause", "resume"]);
  loop.close();
});

Deno.test("StreamReader resumes a paused transport when a read needs more than the buffer", async () => {
  const { loop, reader } = setup(2);
  const { transport, calls } = fakeTransport();
  reader.setTransport(transport);
  reader.feedData(bytes("0123456789")); // 10 > 4: paused
  assertEquals(calls, ["pause"]);
  const big = reader.readexactly(14); // needs more than is buffered
  assertEquals(calls, ["pause", "resume"]);
  // While a read waits for more, a big buffer does not pause again.
  reader.feedData(bytes("abc"));
  assertEquals(calls, ["pause", "resume"]);
  reader.feedData(bytes("def"));
  assertEquals(text(await loop.runUntilComplete(big)), "0123456789abcd");
  assertEquals(calls, ["pause", "resume"]);
  loop.close();
});

// ---- Iteration and Web streams ----

Deno.test("StreamReader is async-iterable over its lines", async () => {
  const { loop, reader } = setup();
  loop.callLater(1, () => reader.feedData(bytes("a\nb")));
  loop.callLater(2, () => reader.feedData(bytes("\nc")));
  loop.callLater(3, () => reader.feedEof());
  const lines = await run(loop, async () => {
    const out: string[] = [];
    for await (const line of reader) out.push(text(line));
    return out;
  });
  assertEquals(lines, ["a\n", "b\n", "c"]);
  loop.close();
});

Deno.test("StreamReader reads work with yield* in generator coroutines", async () => {
  const { loop, reader } = setup();
  function* header(): Coroutine<[string, number]> {
    const name = yield* reader.readuntil(bytes(":"));
    const size = yield* reader.readexactly(2);
    return [text(name), Number(text(size))];
  }
  loop.callSoon(() => reader.feedData(bytes("len:42")));
  assertEquals(await loop.runUntilComplete(loop.createTask(header())), [
    "len:",
    42,
  ]);
  loop.close();
});

Deno.test("StreamReader.readable pipes into a WritableStream", async () => {
  const { loop, reader } = setup(3);
  const chunks: string[] = [];
  const sink = new WritableStream<Uint8Array>({
    write: (c) => {
      chunks.push(text(c));
    },
  });
  loop.callLater(1, () => reader.feedData(bytes("abcdefg")));
  loop.callLater(2, () => reader.feedEof());
  await run(loop, () => reader.readable.pipeTo(sink));
  assertEquals(chunks, ["abc", "def", "g"]);
  assertStrictEquals(reader.readable, reader.readable);
  loop.close();
});

Deno.test("StreamReader.readable decodes through a TextDecoderStream", async () => {
  const { loop, reader } = setup();
  const euro = bytes("€"); // three bytes, fed one at a time
  for (const b of euro) {
    loop.callSoon(() => reader.feedData(new Uint8Array([b])));
  }
  loop.callLater(1, () => reader.feedEof());
  const textOut = await run(loop, async () => {
    let out = "";
    const stream = reader.readable.pipeThrough(new TextDecoderStream());
    for await (const s of stream) out += s;
    return out;
  });
  assertEquals(textOut, "€");
  loop.close();
});

Deno.test("StreamReader.readable errors with the reader's error", async () => {
  const { loop, reader } = setup();
  loop.callLater(1, () => reader.setException(new Error("reset")));
  await assertRejects(
    () => run(loop, () => new Response(reader.readable).text()),
    Error,
    "reset",
  );
  loop.close();
});

Deno.test("StreamReader.readable cancel() cancels the pending pull", async () => {
  const { loop, reader } = setup();
  const stream = reader.readable;
  const streamReader = stream.getReader();
  const outcome = await run(loop, async () => {
    const pending = streamReader.read();
    await loop.createTask(function* () {
      yield;
    });
    await streamReader.cancel();
    return await pending;
  });
  assertEquals(outcome.done, true);
  // The reader is free for other reads again.
  reader.feedData(bytes("z"));
  assertEquals(text(await loop.runUntilComplete(reader.read(1))), "z");
  loop.close();
});

Deno.test("StreamReader works on a loop without a virtual clock", async () => {
  const loop = new BaseEventLoop();
  const reader = new StreamReader({ loop });
  loop.callSoon(() => reader.feedData(bytes("hi\n")));
  const line: Future<Uint8Array> = reader.readline();
  assertEquals(text(await loop.runUntilComplete(line)), "hi\n");
  assertInstanceOf(reader, StreamReader);
  loop.close();
});
