import { assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import {
  checkWriteData,
  gatherWriteData,
  refuseWrite,
} from "../../transports/write_checks.ts";

// ---- checkWriteData ----

Deno.test("checkWriteData() accepts a Uint8Array and its subclasses", () => {
  checkWriteData(new Uint8Array(0));
  class Bytes extends Uint8Array {}
  checkWriteData(new Bytes(2));
});

Deno.test("checkWriteData() names the method and the value received", () => {
  assertThrows(
    () => checkWriteData("hi"),
    TypeError,
    'Cannot call write(): data must be a Uint8Array, received "hi"',
  );
  assertThrows(
    () => checkWriteData(new ArrayBuffer(2), "sendto"),
    TypeError,
    "Cannot call sendto(): data must be a Uint8Array, received ArrayBuffer",
  );
  assertThrows(
    () => checkWriteData(new Uint16Array(1)),
    TypeError,
    "received Uint16Array(1)",
  );
  assertThrows(() => checkWriteData(null), TypeError, "received null");
});

// ---- gatherWriteData ----

Deno.test("gatherWriteData() joins the items in order", () => {
  const data = gatherWriteData(
    new Set([new Uint8Array([1, 2]), new Uint8Array(0), new Uint8Array([3])]),
  );
  assertEquals(data, new Uint8Array([1, 2, 3]));
  assertEquals(gatherWriteData([]), new Uint8Array(0));
});

Deno.test("gatherWriteData() returns a single item itself, uncopied", () => {
  const only = new Uint8Array([9]);
  assertStrictEquals(gatherWriteData([only]), only);
});

Deno.test("gatherWriteData() checks every item before gathering any", () => {
  let read = 0;
  function* items(): Generator<Uint8Array> {
    read++;
    yield new Uint8Array(1);
    read++;
    yield "x" as never;
    read++;
    yield new Uint8Array(1);
  }
  assertThrows(
    () => gatherWriteData(items()),
    TypeError,
    'Cannot call writelines(): every item must be a Uint8Array, received "x"',
  );
  assertEquals(read, 2);
});

Deno.test("gatherWriteData() refuses a string, a single buffer or no iterable as the list", () => {
  for (
    const [list, shown] of [
      ["ab", '"ab"'],
      [null, "null"],
      [undefined, "undefined"],
      [new ArrayBuffer(2), "ArrayBuffer"],
      [new Uint8Array(3), "Uint8Array(3) (call write() for a single buffer)"],
    ] as const
  ) {
    assertThrows(
      () => gatherWriteData(list as never),
      TypeError,
      `Cannot call writelines(): list must be an iterable of Uint8Array, received ${shown}`,
    );
  }
  assertEquals(
    gatherWriteData(new Set([new Uint8Array([1])])),
    new Uint8Array([1]),
  );
});

// ---- refuseWrite ----

Deno.test("refuseWrite() says writeEof() was called before saying closing", () => {
  assertThrows(
    () => refuseWrite("writelines", true),
    InvalidStateError,
    "Cannot call writelines(): writeEof() was called",
  );
  const error = assertThrows(
    () => refuseWrite("write", false),
    InvalidStateError,
  );
  assertEquals(error.message, "Cannot call write(): transport is closing");
});
