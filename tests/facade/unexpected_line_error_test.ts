import { assertEquals, assertInstanceOf } from "@std/assert";
import { UnexpectedLineError } from "../../facade/unexpected_line_error.ts";

Deno.test("UnexpectedLineError keeps both lines and names them in its message", () => {
  const error = new UnexpectedLineError("HELLO", 'say "hi"');
  assertInstanceOf(error, Error);
  assertEquals(error.name, "UnexpectedLineError");
  assertEquals([error.expected, error.received], ["HELLO", 'say "hi"']);
  assertEquals(
    error.message,
    'Cannot match the line: expected "HELLO", received "say \\"hi\\""',
  );
});
