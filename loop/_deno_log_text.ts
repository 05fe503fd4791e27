/**
 * How the loop's logging turns what it reports into text: as Deno's
 * console prints it to stderr (colours on a terminal). The console keeps
 * the arguments of its last thousand messages alive (V8 stores them for
 * an inspector that may attach), so a report is logged as text, which
 * holds nothing else alive.
 *
 * @module
 */

/**
 * Returns `value` as the console would print it; a string as it is.
 *
 * @param value What to print.
 * @returns The text.
 */
export function logText(value: unknown): string {
  if (typeof value === "string") return value;
  return Deno.inspect(value, {
    colors: !Deno.noColor && Deno.stderr.isTerminal(),
  });
}
