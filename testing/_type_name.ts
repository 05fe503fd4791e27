/**
 * How the in-memory transports name a value of the wrong type in their
 * error messages, worded as the Deno transports word it, so that every
 * transport throws the same message.
 *
 * @module
 */

/**
 * Names the type of `value` for an error message: `"null"`, the class of
 * an object (`"ArrayBuffer"`, `"Array"`), else `typeof value`.
 */
export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") {
    return (value as object).constructor?.name ?? "object";
  }
  return typeof value;
}
