import { assertEquals, assertThrows } from "@std/assert";
import {
  deliverData,
  isBufferedProtocol,
  lentBuffer,
} from "../../protocols/deliver_data.ts";
import {
  BaseProtocol,
  BufferedProtocol,
  Protocol,
} from "../../protocols/protocol.ts";

Deno.test("isBufferedProtocol goes by shape, not class", () => {
  assertEquals(isBufferedProtocol(new BufferedProtocol()), true);
  assertEquals(isBufferedProtocol(new Protocol()), false);
  assertEquals(isBufferedProtocol(new BaseProtocol()), false);
  const duck = Object.assign(new BaseProtocol(), {
    getBuffer: () => new Uint8Array(1),
    bufferUpdated: () => {},
  });
  assertEquals(isBufferedProtocol(duck), true);
});

Deno.test("deliverData gives a Protocol the very buffer", () => {
  const seen: Uint8Array[] = [];
  class P extends Protocol {
    override dataReceived(data: Uint8Array) {
      seen.push(data);
    }
  }
  const data = new Uint8Array([1, 2, 3]);
  deliverData(new P(), data);
  assertEquals(seen.length, 1);
  assertEquals(seen[0] === data, true);
});

Deno.test("deliverData copies across as many lent buffers as it takes", () => {
  const updates: number[] = [];
  const out: number[] = [];
  class B extends BufferedProtocol {
    buf = new Uint8Array(3);
    override getBuffer(hint: number) {
      assertEquals(hint > 0, true);
      return this.buf;
    }
    override bufferUpdated(n: number) {
      updates.push(n);
      out.push(...this.buf.subarray(0, n));
    }
  }
  deliverData(new B(), new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
  assertEquals(updates, [3, 3, 1]);
  assertEquals(out, [1, 2, 3, 4, 5, 6, 7]);
});

Deno.test("lentBuffer refuses an empty or non-bytes buffer in the transports' words", () => {
  for (const bad of [new Uint8Array(0), "x", null]) {
    const protocol = Object.assign(new BufferedProtocol(), {
      getBuffer: () => bad as Uint8Array,
    });
    assertThrows(
      () => lentBuffer(protocol, 4),
      TypeError,
      "Cannot read into the protocol's buffer: getBuffer() must return a non-empty Uint8Array, received",
    );
    assertThrows(() => deliverData(protocol, new Uint8Array(1)), TypeError);
  }
});

Deno.test("deliverData passes nothing on for no bytes: dataReceived() always gets some", () => {
  // PEP 3156: data_received()'s argument is always a non-empty bytes object.
  let calls = 0;
  const p = Object.assign(new Protocol(), { dataReceived: () => void calls++ });
  deliverData(p, new Uint8Array(0));
  assertEquals(calls, 0);
});

Deno.test("deliverData tells `failed` which protocol call threw, in place of the throw", () => {
  const boom = new Error("boom");
  const seen: [unknown, string][] = [];
  const failed = (e: unknown, call: string) => seen.push([e, call]);
  class P extends Protocol {
    override dataReceived() {
      throw boom;
    }
  }
  class Lender extends BufferedProtocol {
    constructor(readonly wrong: "throw" | "empty" | "updated") {
      super();
    }
    override getBuffer() {
      if (this.wrong === "throw") throw boom;
      return new Uint8Array(this.wrong === "empty" ? 0 : 4);
    }
    override bufferUpdated() {
      throw boom;
    }
  }
  const one = new Uint8Array([1]);
  assertEquals(deliverData(new P(), one, failed), false);
  assertEquals(deliverData(new Lender("throw"), one, failed), false);
  assertEquals(deliverData(new Lender("updated"), one, failed), false);
  assertEquals(deliverData(new Lender("empty"), one, failed), false);
  assertEquals(deliverData(new Protocol(), one, failed), true);
  assertEquals(seen.map(([, call]) => call), [
    "dataReceived",
    "getBuffer",
    "bufferUpdated",
    "getBuffer",
  ]);
  assertEquals(seen.slice(0, 3).map(([e]) => e === boom), [true, true, true]);
  assertThrows(() => deliverData(new Lender("throw"), one), Error, "boom");
});
