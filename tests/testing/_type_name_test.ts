import { assertEquals } from "@std/assert";
import { typeName } from "../../testing/_type_name.ts";

Deno.test("typeName() names null, an object's class, else the typeof", () => {
  assertEquals(typeName(null), "null");
  assertEquals(typeName(undefined), "undefined");
  assertEquals(typeName("x"), "string");
  assertEquals(typeName(new ArrayBuffer(1)), "ArrayBuffer");
  assertEquals(typeName([1]), "Array");
  assertEquals(typeName(Object.create(null)), "object");
});
