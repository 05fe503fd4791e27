import { assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import { Int32StringReceiver } from "../../protocols/int32_string_receiver.ts";
import { InvalidStateError, LimitOverrunError } from "../../futures/errors.ts";
import { pauseForASecond } from "./_pausing.ts";
import { Protocol } from "../../protocols/protocol.ts";
import type { Transport } from "../../transports/transport.ts";
import { transportPair } from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { bytes, receiveEverySplit, text } from "../_every_split.ts";

function frame(...messages: (string | Uint8Array)[]): Uint8Array {
  const parts: number[] = [];
  for (const m of messages) {
    const b = typeof m === "string" ? bytes(m) : m;
    const n = b.length;
    parts.push(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255, ...b);
  }
  return new Uint8Array(parts);
}

function recorder(options?: { maxLength?: number; skip?: boolean }) {
  const log: string[] = [];
  const p = new Int32StringReceiver({
    stringReceived: (data) => log.push(`msg ${text(data)}`),
    connectionLost: (exc) => log.push(`lost ${exc?.name ?? "clean"}`),
  }, {
    maxLength: options?.maxLength,
    onLengthExceeded: options?.skip
      ? (e) => log.push(`too long ${e.consumed}`)
      : undefined,
  });
  return Object.assign(p, { log });
}

Deno.test("Int32StringReceiver delivers the same messages however the input is split", async () => {
  const input = frame("hello", "", "x", "a longer message");
  const results = await receiveEverySplit(
    input,
    () => recorder(),
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(result, [
      "msg hello",
      "msg ",
      "msg x",
      "msg a longer message",
      "lost clean",
    ], name);
  }
});

Deno.test("Int32StringReceiver drops an incomplete message at the end of the stream", async () => {
  const input = new Uint8Array([...frame("ok"), 0, 0, 0, 9, 1, 2]);
  const results = await receiveEverySplit(
    input,
    () => recorder(),
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(result, ["msg ok", "lost clean"], name);
  }
});

Deno.test("Int32StringReceiver allows maxLength bytes and closes on a longer prefix", async () => {
  const input = frame("abc", "abcd", "never");
  const results = await receiveEverySplit(
    input,
    () => recorder({ maxLength: 3 }),
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(result, ["msg abc", "lost LimitOverrunError"], name);
  }
});

Deno.test("Int32StringReceiver skips an over-long message when onLengthExceeded keeps going", async () => {
  const input = frame("abc", "abcdefgh", "", "xyz");
  const results = await receiveEverySplit(
    input,
    () => recorder({ maxLength: 3, skip: true }),
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(result, [
      "msg abc",
      "too long 8",
      "msg ",
      "msg xyz",
      "lost clean",
    ], name);
  }
});

Deno.test("Int32StringReceiver reports a huge prefix without buffering the message", () => {
  const errors: LimitOverrunError[] = [];
  const p = new Int32StringReceiver(() => {}, {
    onLengthExceeded: (e) => errors.push(e),
  });
  p.dataReceived(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
  assertEquals(errors.length, 1);
  assertInstanceOf(errors[0], LimitOverrunError);
  assertEquals(errors[0].consumed, 0xffff_ffff);
});

Deno.test("Int32StringReceiver delivers a whole message without copying it", () => {
  const got: Uint8Array[] = [];
  const p = new Int32StringReceiver((d) => got.push(d));
  const data = frame("abc", "de");
  p.dataReceived(data);
  assertEquals(got.map(text), ["abc", "de"]);
  assertEquals(got[0].buffer, data.buffer);
});

Deno.test("Int32StringReceiver.sendString() writes a big-endian prefix and the bytes", () => {
  const sent: Uint8Array[][] = [];
  const p = new Int32StringReceiver();
  assertThrows(() => p.sendString("x"), InvalidStateError);
  p.connectionMade(
    {
      writelines: (l: Uint8Array[]) => sent.push([...l]),
    } as unknown as Transport,
  );
  p.sendString("hé");
  p.sendString(new Uint8Array(300));
  assertEquals(sent[0], [new Uint8Array([0, 0, 0, 3]), bytes("hé")]);
  assertEquals(sent[1][0], new Uint8Array([0, 0, 1, 44]));
  assertThrows(() => p.sendString(1 as never), TypeError);
});

Deno.test("Int32StringReceiver round-trips messages over a transport pair", async () => {
  const loop = new VirtualTimeLoop();
  const got: string[] = [];
  const done = loop.createFuture<void>();
  const server = new Int32StringReceiver((d, p) => p.sendString(d));
  const client = new Int32StringReceiver((d) => {
    got.push(text(d));
    if (got.length === 3) done.setResult();
  });
  transportPair(server, client, { loop, chunkSize: [3, 1] });
  loop.callSoon(() => {
    client.sendString("one");
    client.sendString("");
    client.sendString("three");
  });
  await loop.runUntilComplete(done);
  assertEquals(got, ["one", "", "three"]);
  loop.close();
});

Deno.test("Int32StringReceiver validates maxLength and its callback", () => {
  assertThrows(
    () => new Int32StringReceiver(() => {}, { maxLength: 2 ** 32 }),
    RangeError,
  );
  assertThrows(() => new Int32StringReceiver("x" as never), TypeError);
  class Sub extends Int32StringReceiver {
    got = 0;
    override stringReceived(): void {
      this.got++;
    }
  }
  const s = new Sub();
  s.dataReceived(frame("a", "b"));
  assertEquals([s.got, s.maxLength], [2, 1024 * 1024]);
});

Deno.test("Int32StringReceiver refuses a sink that is neither a callback nor a receiver", () => {
  assertThrows(
    () => new Int32StringReceiver(7 as unknown as () => void),
    TypeError,
    "Cannot make an Int32StringReceiver: onString must be a function or an object with stringReceived(), received number",
  );
  assertThrows(
    () => new Int32StringReceiver({} as unknown as () => void),
    TypeError,
    "received object",
  );
});

Deno.test("Int32StringReceiver refuses an onLengthExceeded that is not a function when made, not when a message is too long", () => {
  assertThrows(
    () => new Int32StringReceiver(() => {}, { onLengthExceeded: 7 as never }),
    TypeError,
    "Cannot make an Int32StringReceiver: onLengthExceeded must be a function, received number",
  );
});

// ---- Callbacks that feed, pause or stop the framing ----

Deno.test("Int32StringReceiver delivers nothing after connectionLost", () => {
  const log: string[] = [];
  const p = new Int32StringReceiver((data) => log.push(text(data)));
  p.dataReceived(frame("a", "b").subarray(0, 7));
  p.connectionLost();
  p.dataReceived(frame("a", "b").subarray(7));
  p.dataReceived(frame("c"));
  assertEquals(log, ["a"]);
});

Deno.test("Int32StringReceiver frames bytes fed from a callback after those already received", () => {
  // A callback feeding part of a message must not splice it into the
  // message being framed.
  const log: string[] = [];
  const p = new Int32StringReceiver((data, self) => {
    log.push(text(data));
    if (text(data) === "a") self.dataReceived(frame("xy").subarray(0, 5));
    if (text(data) === "b") self.dataReceived(frame("xy").subarray(5));
  });
  p.dataReceived(frame("a", "b"));
  assertEquals(log, ["a", "b", "xy"]);
});

Deno.test("Int32StringReceiver.pauseProducing() in a callback holds the messages already received until resumeProducing()", async () => {
  const results = await receiveEverySplit(
    frame("one", "pause", "", "three"),
    () => {
      const log: string[] = [];
      const p = new Int32StringReceiver((data, self) => {
        log.push(`msg ${text(data)}`);
        if (text(data) !== "pause") return;
        pauseForASecond(self, log);
      });
      return Object.assign(p, { log });
    },
    (p) => p.log,
  );
  for (const { name, result } of results) {
    assertEquals(result, [
      "msg one",
      "msg pause",
      "reading false",
      "resume",
      "msg ",
      "msg three",
    ], name);
  }
});

Deno.test("Int32StringReceiver.stopProducing() drops what is held and closes the transport", async () => {
  const loop = new VirtualTimeLoop();
  const log: string[] = [];
  const p = new Int32StringReceiver({
    stringReceived: (data, self) => {
      log.push(text(data));
      if (text(data) === "stop") self.stopProducing();
    },
    connectionLost: (exc) => log.push(`lost ${exc?.name ?? "clean"}`),
  });
  const [a] = transportPair(new Protocol(), p, { loop });
  a.write(frame("one", "stop", "three"));
  await loop.advance(1);
  assertEquals(log, ["one", "stop", "lost clean"]);
  loop.close();
});
