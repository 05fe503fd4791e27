/**
 * `TextMatcher`: a regular expression tried again as text arrives, at a
 * cost per try bounded by the longest match looked for.
 *
 * @module
 */

/**
 * Characters kept before the window, so that `^`, `\b` and short
 * lookbehinds see what precedes a match that starts at the window's edge.
 */
export const CONTEXT = 64;

/**
 * Tries a regular expression against text that grows. Each try looks only
 * for a match starting within the last `window` characters, in a string
 * of at most `2 × window + CONTEXT` characters, so trying after every
 * character costs time linear in the text, where trying against the whole
 * text each time would cost its square. Searching the window may cost the
 * window times the scan from each start (`/(\w+): $/` against a run of
 * letters scans to its end from each), so when one character is added, a
 * match ending at it is looked for first, from the end backwards, and the
 * window searched only if there is one (for patterns whose matches never
 * depend on what follows them; see `endsHere()`).
 *
 * A match that first exists when text is added ends at most `window`
 * characters back — a match longer than the window is not found. The
 * match returned is the pattern's leftmost one in the window, with its
 * `index`, `input` (all the text so far) and `indices` counted from the
 * start of the whole text.
 */
export class TextMatcher {
  readonly #regex: RegExp;
  // Whether a match ends at the last character, or null where that does
  // not tell (see endsHere()).
  readonly #endsHere: RegExp | null;
  readonly #window: number;
  readonly #pieces: string[] = [];
  // The last characters of the text, starting at #tailOffset in it.
  #tail = "";
  #tailOffset = 0;
  #length = 0;

  /**
   * @param pattern The pattern; a copy with the `g` flag (and `extraFlags`)
   * is used, made by its species constructor as `String.prototype.split`
   * does, and its own `g` and `y` flags are ignored.
   * @param window The longest match looked for, in characters.
   * @param extraFlags Flags to add, such as `"m"`.
   */
  constructor(pattern: RegExp, window: number, extraFlags = "") {
    const flags = new Set(pattern.flags.replace(/[gy]/g, "") + extraFlags);
    flags.add("g");
    const species =
      (pattern.constructor as { [Symbol.species]?: RegExpConstructor })[
        Symbol.species
      ] ?? RegExp;
    this.#regex = new species(pattern, [...flags].join(""));
    this.#endsHere = species === RegExp ? endsHere(this.#regex) : null;
    this.#window = window;
  }

  /** How many characters were added. */
  get length(): number {
    return this.#length;
  }

  /**
   * Tries the pattern against the empty text.
   *
   * @returns The match, or `null`.
   */
  matchEmpty(): RegExpExecArray | null {
    this.#regex.lastIndex = 0;
    return this.#regex.exec("");
  }

  /**
   * Adds text and tries the pattern once.
   *
   * @param piece The text that arrived.
   * @returns The match, or `null`.
   */
  add(piece: string): RegExpExecArray | null {
    if (piece.length === 0) return null;
    this.#pieces.push(piece);
    this.#length += piece.length;
    this.#tail += piece;
    const keep = this.#window + CONTEXT;
    if (this.#tail.length > 2 * this.#window + CONTEXT) {
      this.#tailOffset += this.#tail.length - keep;
      this.#tail = this.#tail.slice(-keep);
    }
    // One character more: a match that exists now, and did not before,
    // ends at it; when none does, the window is not searched (the class's
    // comment says why). The test sees the whole tail, as the search does:
    // a lookbehind in the pattern may reach back past the window.
    const endsHere = this.#endsHere;
    if (endsHere !== null && piece.length === 1) {
      endsHere.lastIndex = this.#tail.length;
      if (!endsHere.test(this.#tail)) return null;
    }
    const from = Math.max(0, this.#tail.length - this.#window);
    this.#regex.lastIndex = from;
    const match = this.#regex.exec(this.#tail);
    if (match === null) return null;
    return this.#rebase(match);
  }

  /** Makes a match in the tail a match in the whole text. */
  #rebase(match: RegExpExecArray): RegExpExecArray {
    const text = this.#pieces.join("");
    this.#pieces.length = 0;
    this.#pieces.push(text);
    const offset = this.#tailOffset;
    match.index += offset;
    match.input = text;
    const indices = (match as { indices?: RegExpIndicesArray }).indices;
    if (indices !== undefined && offset > 0) {
      const shift = (pair: [number, number] | undefined) => {
        if (pair !== undefined) {
          pair[0] += offset;
          pair[1] += offset;
        }
      };
      // The groups object holds the same pairs as the array.
      for (const pair of indices) shift(pair);
    }
    return match;
  }
}

/**
 * Makes the test of whether `regex` has a match ending at the end of a
 * string: the pattern in a lookbehind there, which matches from the end
 * backwards, so it costs what the match's own length costs, not the
 * window's. It decides only for a pattern whose match never depends on
 * what follows it (no lookahead, `\b` or `\B`: a match that appears as a
 * character is added then ends at it) and has no backreference (read
 * right to left in a lookbehind, it means something else); for others,
 * and for a source that merely looks so, `null`.
 */
function endsHere(regex: RegExp): RegExp | null {
  if (/\(\?[=!]|\\[bBk1-9]/.test(regex.source)) return null;
  const flags = regex.flags.replace("g", "") + "y";
  try {
    return new RegExp(`(?<=${regex.source})`, flags);
  } catch {
    return null;
  }
}
