import { assertEquals, assertInstanceOf } from "@std/assert";
import { connectionReset } from "../../http/_deno_errors.ts";

Deno.test("connectionReset() makes Deno's ConnectionReset error", () => {
  const e = connectionReset("Connection lost");
  assertInstanceOf(e, Deno.errors.ConnectionReset);
  assertEquals([e.name, e.message], ["ConnectionReset", "Connection lost"]);
});
