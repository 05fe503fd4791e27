import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  CancelledError,
  formatReceived,
  IncompleteReadError,
  InvalidStateError,
  LimitOverrunError,
  TimeoutError,
} from "../../futures/errors.ts";

// ---- CancelledError ----

Deno.test("CancelledError is an Error named CancelledError", () => {
  const e = new CancelledError("shutting down");
  assertInstanceOf(e, Error);
  assertEquals(e.name, "CancelledError");
  assertEquals(e.message, "shutting down");
  assert(e.stack !== undefined);
});

Deno.test("CancelledError has an empty message by default", () => {
  assertEquals(new CancelledError().message, "");
});

// ---- InvalidStateError ----

Deno.test("InvalidStateError is an Error named InvalidStateError", () => {
  const e = new InvalidStateError("Cannot get result: future is pending");
  assertInstanceOf(e, Error);
  assertEquals(e.name, "InvalidStateError");
  assertEquals(e.message, "Cannot get result: future is pending");
});

// ---- TimeoutError ----

Deno.test("TimeoutError is an Error named TimeoutError", () => {
  const e = new TimeoutError("Cannot finish: timed out after 1s");
  assertInstanceOf(e, Error);
  assertEquals(e.name, "TimeoutError");
  assertEquals(e.message, "Cannot finish: timed out after 1s");
});

Deno.test("TimeoutError has a default message", () => {
  assertEquals(new TimeoutError().message, "The operation timed out");
});

// ---- IncompleteReadError ----

Deno.test("IncompleteReadError keeps the partial bytes and the expected count", () => {
  const partial = new Uint8Array([1, 2]);
  const e = new IncompleteReadError(partial, 5);
  assertInstanceOf(e, Error);
  assertEquals(e.name, "IncompleteReadError");
  assertStrictEquals(e.partial, partial);
  assertEquals(e.expected, 5);
  assertEquals(e.message, "Cannot read 5 bytes: stream ended after 2 bytes");
});

Deno.test("IncompleteReadError accepts a null expected count for separator reads", () => {
  const e = new IncompleteReadError(new Uint8Array(3), null);
  assertEquals(e.expected, null);
  assertEquals(
    e.message,
    "Cannot read until separator: stream ended after 3 bytes",
  );
});

// ---- LimitOverrunError ----

Deno.test("LimitOverrunError keeps the consumed count", () => {
  const e = new LimitOverrunError("Cannot read line: over limit", 70000);
  assertInstanceOf(e, Error);
  assertEquals(e.name, "LimitOverrunError");
  assertEquals(e.message, "Cannot read line: over limit");
  assertEquals(e.consumed, 70000);
});

// ---- The classes are distinct ----

Deno.test("PEP 3156 errors are not instances of one another", () => {
  const all = [
    new CancelledError(),
    new InvalidStateError("x"),
    new TimeoutError(),
    new IncompleteReadError(new Uint8Array(0), 1),
    new LimitOverrunError("x", 1),
  ];
  const classes = [
    CancelledError,
    InvalidStateError,
    TimeoutError,
    IncompleteReadError,
    LimitOverrunError,
  ];
  for (let i = 0; i < all.length; i++) {
    for (let j = 0; j < classes.length; j++) {
      if (i === j) assertInstanceOf(all[i], classes[j]);
      else assertFalse(all[i] instanceof classes[j]);
    }
  }
});

// ---- formatReceived ----

Deno.test("formatReceived() quotes strings and names other values as Deno.inspect would, briefly", () => {
  assertEquals(formatReceived("1"), '"1"');
  assertEquals(formatReceived('say "hi"\n'), '"say \\"hi\\"\\n"');
  assertEquals(formatReceived(1), "1");
  assertEquals(formatReceived(-0), "-0");
  assertEquals(formatReceived(NaN), "NaN");
  assertEquals(formatReceived(10n), "10n");
  assertEquals(formatReceived(true), "true");
  assertEquals(formatReceived(null), "null");
  assertEquals(formatReceived(undefined), "undefined");
  assertEquals(formatReceived(Symbol("s")), "Symbol(s)");
  assertEquals(formatReceived(function named() {}), "[Function: named]");
  assertEquals(formatReceived([1, 2]), "Array(2)");
  assertEquals(formatReceived(new Uint8Array(3)), "Uint8Array(3)");
  assertEquals(formatReceived(new Map()), "Map");
  assertEquals(formatReceived(Object.create(null)), "Object");
  assertEquals(formatReceived("x".repeat(200)), `"${"x".repeat(80)}…"`);
});

Deno.test("Error messages quote a string received where a number belongs", async () => {
  const { sleep } = await import("../../tasks/sleep.ts");
  const { VirtualTimeLoop } = await import(
    "../../testing/virtual_time_loop.ts"
  );
  assertThrows(
    () => sleep("1" as unknown as number),
    TypeError,
    'received "1"',
  );
  const loop = new VirtualTimeLoop();
  assertThrows(
    () => loop.callLater("1" as unknown as number, () => {}),
    TypeError,
    'received "1"',
  );
  loop.close();
});
