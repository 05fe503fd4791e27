/**
 * `JsonRpcError`: a JSON-RPC 2.0 error object as an `Error`, with its
 * `code`, `message` and `data`.
 *
 * @module
 */

import { formatReceived } from "../futures/errors.ts";

/**
 * A JSON-RPC 2.0 error: what a method throws to send a chosen error object,
 * and what a call rejects with when the peer answers with one.
 *
 * The `code` is an integer. The specification reserves -32768 to -32000:
 * `PARSE_ERROR` (-32700, the message was not JSON), `INVALID_REQUEST`
 * (-32600, not a valid request object), `METHOD_NOT_FOUND` (-32601),
 * `INVALID_PARAMS` (-32602, throw it from a method whose params do not fit)
 * and `INTERNAL_ERROR` (-32603); -32099 to -32000 are for server errors.
 * Any other integer is an application error. `data` is any JSON value, or
 * `undefined` for none; it is sent as is, so keep secrets and stack traces
 * out of it.
 *
 * The error's `message` is the JSON-RPC message exactly as sent or
 * received (it comes from the peer, so it does not follow this library's
 * message style).
 *
 * PEP 3153: the error half of the JSON-RPC protocol in its stacking
 * example.
 *
 * @example Throwing an application error from a method
 * ```ts
 * import { JsonRpcError } from "@tulip/tulip/jsonrpc";
 * import { assertEquals } from "@std/assert";
 *
 * const e = new JsonRpcError(42, "Out of stock", { item: "tulip" });
 * assertEquals([e.code, e.message, e.data], [42, "Out of stock", { item: "tulip" }]);
 * assertEquals(e.toJSON(), { code: 42, message: "Out of stock", data: { item: "tulip" } });
 * ```
 *
 * @example The reserved codes
 * ```ts
 * import { JsonRpcError } from "@tulip/tulip/jsonrpc";
 * import { assertEquals } from "@std/assert";
 *
 * const e = new JsonRpcError(JsonRpcError.INVALID_PARAMS, "Expected two numbers");
 * assertEquals(e.code, -32602);
 * assertEquals(e.data, undefined);
 * ```
 */
export class JsonRpcError extends Error {
  /** -32700: the message received was not valid JSON. */
  static readonly PARSE_ERROR: -32700 = -32700;
  /** -32600: the JSON sent is not a valid request object. */
  static readonly INVALID_REQUEST: -32600 = -32600;
  /** -32601: the method does not exist. */
  static readonly METHOD_NOT_FOUND: -32601 = -32601;
  /** -32602: the method's params are not valid. */
  static readonly INVALID_PARAMS: -32602 = -32602;
  /** -32603: the method failed for a reason of its own. */
  static readonly INTERNAL_ERROR: -32603 = -32603;

  /** The error code, an integer. */
  readonly code: number;
  /** Extra information about the error, or `undefined` for none. */
  readonly data: unknown;

  /**
   * Makes a JSON-RPC error.
   *
   * @param code The error code, an integer.
   * @param message A short description, sent as the error's `message`.
   * @param data Extra information, any JSON value; `undefined` for none.
   * @throws {TypeError} When `code` is not a number or `message` is not a
   * string.
   * @throws {RangeError} When `code` is not a safe integer.
   */
  constructor(code: number, message: string, data?: unknown) {
    if (typeof code !== "number") {
      throw new TypeError(
        `Cannot make a JsonRpcError: code must be a number, received ${typeof code}`,
      );
    }
    if (!Number.isSafeInteger(code)) {
      throw new RangeError(
        `Cannot make a JsonRpcError: code must be an integer, received ${
          formatReceived(code)
        }`,
      );
    }
    if (typeof message !== "string") {
      throw new TypeError(
        `Cannot make a JsonRpcError: message must be a string, received ${
          message === null ? "null" : typeof message
        }`,
      );
    }
    super(message);
    this.name = "JsonRpcError";
    this.code = code;
    this.data = data;
  }

  /**
   * Returns the JSON-RPC error object: `code`, `message`, and `data` when
   * there is some. `JSON.stringify` uses it.
   *
   * @returns The error object as sent on the wire.
   */
  toJSON(): { code: number; message: string; data?: unknown } {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }
}
