import { assertEquals, assertInstanceOf } from "@std/assert";
import { connectionReset } from "../../testing/_deno_errors.ts";

Deno.test("connectionReset() makes the error a real socket reset gives", () => {
  const e = connectionReset("Connection reset by peer");
  assertInstanceOf(e, Deno.errors.ConnectionReset);
  assertEquals(e.message, "Connection reset by peer");
});
