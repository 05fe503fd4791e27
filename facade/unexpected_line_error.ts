/**
 * `UnexpectedLineError`: what the facade's "expect line" calls fail with
 * when another line arrives.
 *
 * @module
 */

/**
 * The line read was not the line expected. The `AsyncEngine`'s
 * `…ThenExpectLine` calls report it to the line callback's `failure`.
 * Both lines are kept without their line ending.
 *
 * PEP 3156 (as in the async-facade proposal): the failure of
 * `expect_line`.
 *
 * @example Telling what arrived instead
 * ```ts
 * import { UnexpectedLineError } from "@tulip/tulip/facade";
 * import { assertEquals } from "@std/assert";
 *
 * const e = new UnexpectedLineError("HELLO", "BYE");
 * assertEquals([e.name, e.expected, e.received], ["UnexpectedLineError", "HELLO", "BYE"]);
 * assertEquals(e.message, 'Cannot match the line: expected "HELLO", received "BYE"');
 * ```
 */
export class UnexpectedLineError extends Error {
  /** The line that was expected, without its line ending. */
  readonly expected: string;
  /** The line that was read, without its line ending. */
  readonly received: string;

  /**
   * Makes the error.
   *
   * @param expected The line that was expected.
   * @param received The line that was read.
   */
  constructor(expected: string, received: string) {
    super(
      `Cannot match the line: expected ${JSON.stringify(expected)}, received ${
        JSON.stringify(received)
      }`,
    );
    this.name = "UnexpectedLineError";
    this.expected = expected;
    this.received = received;
  }
}
