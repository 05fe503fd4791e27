import { assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import { JsonRpcError } from "../../jsonrpc/json_rpc_error.ts";

Deno.test("JsonRpcError keeps its code, message and data", () => {
  const e = new JsonRpcError(-32000, "Server busy", [1, 2]);
  assertInstanceOf(e, Error);
  assertEquals(e.name, "JsonRpcError");
  assertEquals([e.code, e.message, e.data], [-32000, "Server busy", [1, 2]]);
});

Deno.test("JsonRpcError.toJSON() gives the wire form, without data when there is none", () => {
  assertEquals(
    JSON.stringify(new JsonRpcError(3, "Three")),
    '{"code":3,"message":"Three"}',
  );
  assertEquals(new JsonRpcError(3, "Three", null).toJSON(), {
    code: 3,
    message: "Three",
    data: null,
  });
});

Deno.test("JsonRpcError has the specification's reserved codes", () => {
  assertEquals(
    [
      JsonRpcError.PARSE_ERROR,
      JsonRpcError.INVALID_REQUEST,
      JsonRpcError.METHOD_NOT_FOUND,
      JsonRpcError.INVALID_PARAMS,
      JsonRpcError.INTERNAL_ERROR,
    ],
    [-32700, -32600, -32601, -32602, -32603],
  );
});

Deno.test("JsonRpcError checks its code and message", () => {
  assertThrows(
    () => new JsonRpcError("1" as unknown as number, "m"),
    TypeError,
  );
  assertThrows(() => new JsonRpcError(1.5, "m"), RangeError);
  assertThrows(() => new JsonRpcError(NaN, "m"), RangeError);
  assertThrows(() => new JsonRpcError(1, 2 as unknown as string), TypeError);
});
