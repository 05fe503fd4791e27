/**
 * Byte helpers.
 *
 * @module
 */

/**
 * Joins byte pieces into one array; a single piece is returned as is.
 *
 * @param parts The pieces, in order.
 * @param size Their total length in bytes.
 * @returns The joined bytes.
 */
export function concat(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
