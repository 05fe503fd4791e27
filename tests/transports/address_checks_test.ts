import { assertEquals, assertThrows } from "@std/assert";
import {
  checkAddrinfoArgs,
  checkHost,
  checkPort,
} from "../../transports/address_checks.ts";

Deno.test("checkPort takes 0 to 65535 and refuses the rest in one wording", () => {
  assertEquals(checkPort(0, "call createServer()"), 0);
  assertEquals(checkPort(65535, "call createServer()"), 65535);
  assertThrows(
    () => checkPort("80", "call createServer()"),
    TypeError,
    "Cannot call createServer(): port must be a number, received string",
  );
  for (const bad of [-1, 65536, 1.5, NaN]) {
    assertThrows(
      () => checkPort(bad, "call createConnection()"),
      RangeError,
      "Cannot call createConnection(): port must be an integer from 0 to 65535, received",
    );
  }
});

Deno.test("checkHost refuses what is not a non-empty string", () => {
  assertEquals(checkHost("a", "call getnameinfo()"), "a");
  assertThrows(
    () => checkHost(7, "call getnameinfo()"),
    TypeError,
    "Cannot call getnameinfo(): host must be a string, received number",
  );
  assertThrows(() => checkHost("", "call getnameinfo()"), RangeError);
});

Deno.test("checkAddrinfoArgs checks host, port, family and the numeric options", () => {
  checkAddrinfoArgs("localhost", 80);
  checkAddrinfoArgs("localhost", 80, {
    family: 6,
    type: 1,
    proto: 6,
    flags: 0,
  });
  assertThrows(
    () => checkAddrinfoArgs("localhost", 80, { family: 5 as 4 }),
    RangeError,
    "Cannot call getaddrinfo(): family must be 0, 4 or 6, received 5",
  );
  assertThrows(
    () =>
      checkAddrinfoArgs("localhost", 80, { type: "x" as unknown as number }),
    TypeError,
    "Cannot call getaddrinfo(): type must be a number, received string",
  );
  assertThrows(() => checkAddrinfoArgs("", 80), RangeError);
  assertThrows(() => checkAddrinfoArgs("h", 70000), RangeError);
});
