/**
 * The input both line-framing benchmarks read: 1 MiB of 40-byte lines
 * (`line 000123 abcdefghijklmnopqrstuvwxy\r\n`), cut into 64 KiB chunks
 * that end in the middle of lines.
 *
 * @module
 */

/** Bytes per line, `\r\n` included. */
export const LINE_BYTES = 40;
/** Lines in the input. */
export const LINES: number = Math.floor((1024 * 1024) / LINE_BYTES);
/** Bytes per chunk. */
export const CHUNK = 64 * 1024;

function makeInput(): Uint8Array {
  const encoder = new TextEncoder();
  const out = new Uint8Array(LINES * LINE_BYTES);
  for (let i = 0; i < LINES; i++) {
    const head = `line ${String(i).padStart(6, "0")} `;
    const tail = "abcdefghijklmnopqrstuvwxyz".slice(
      0,
      LINE_BYTES - 2 - head.length,
    );
    out.set(encoder.encode(`${head}${tail}\r\n`), i * LINE_BYTES);
  }
  return out;
}

/** The input, whole. */
export const input: Uint8Array = makeInput();

/** The input in `CHUNK`-byte views. */
export const chunks: Uint8Array[] = [];
for (let at = 0; at < input.length; at += CHUNK) {
  chunks.push(input.subarray(at, at + CHUNK));
}

/**
 * Throws unless a reader saw every line and every byte but the line ends.
 *
 * @param lines The lines counted.
 * @param bytes The bytes counted, line ends excluded.
 */
export function check(lines: number, bytes: number): void {
  if (lines !== LINES || bytes !== LINES * (LINE_BYTES - 2)) {
    throw new Error(`Miscounted: ${lines} lines, ${bytes} bytes`);
  }
}
