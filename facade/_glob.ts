/**
 * Line globs for `AsyncEngine.readUntilLineglob()`: shell-style patterns
 * matched against a whole line.
 *
 * @module
 */

/** One pattern element: a literal, any one character, a class, or `*`. */
type Token =
  | { kind: "char"; char: string }
  | { kind: "any" }
  | { kind: "star" }
  | { kind: "class"; negated: boolean; items: [string, string][] };

/**
 * Compiles a glob into a test of whole lines, as Python's `fnmatchcase()`
 * reads it: `*` matches any run of characters (none included), `?` one
 * character, `[abc]` and `[a-z]` one of a set, `[!abc]` one character not
 * in it. Nothing else is special: `\` is an ordinary character (a special
 * one is matched with a set of it, `[*]`), and so is `^` after `[`. A `]`
 * first in a set belongs to it, a `-` first or last in a set is itself, a
 * range whose ends are reversed takes nothing, and a `[` without a closing
 * `]` is literal. Characters are code points, so `?` matches one emoji.
 *
 * The test runs in time proportional to the line for patterns with at
 * most one `*`, and to the line times the pattern in the worst case; it
 * never backtracks further than the last `*`, unlike a regular expression
 * made from the glob.
 *
 * @param glob The pattern.
 * @returns A function telling whether a line matches.
 */
export function compileGlob(glob: string): (line: string) => boolean {
  const tokens = parse(Array.from(glob));
  return (line) => matches(tokens, Array.from(line));
}

function parse(chars: string[]): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === "*") {
      if (tokens[tokens.length - 1]?.kind !== "star") {
        tokens.push({ kind: "star" });
      }
    } else if (c === "?") {
      tokens.push({ kind: "any" });
    } else if (c === "[") {
      const parsed = parseClass(chars, i);
      if (parsed === null) {
        tokens.push({ kind: "char", char: c });
      } else {
        tokens.push(parsed.token);
        i = parsed.end;
      }
    } else {
      tokens.push({ kind: "char", char: c });
    }
  }
  return tokens;
}

/** Parses the class opened at `start`; `null` when it is never closed. */
function parseClass(
  chars: string[],
  start: number,
): { token: Token; end: number } | null {
  let i = start + 1;
  const negated = chars[i] === "!";
  if (negated) i++;
  const items: [string, string][] = [];
  // A "]" first in the class is one of its characters.
  let first = true;
  for (; i < chars.length; i++) {
    const c = chars[i];
    if (c === "]" && !first) {
      return { token: { kind: "class", negated, items }, end: i };
    }
    first = false;
    if (chars[i + 1] === "-" && i + 2 < chars.length && chars[i + 2] !== "]") {
      items.push([c, chars[i + 2]]);
      i += 2;
    } else {
      items.push([c, c]);
    }
  }
  return null;
}

function matchesOne(token: Token, char: string): boolean {
  switch (token.kind) {
    case "char":
      return token.char === char;
    case "any":
      return true;
    case "class": {
      const point = char.codePointAt(0)!;
      const inside = token.items.some(([from, to]) =>
        point >= from.codePointAt(0)! && point <= to.codePointAt(0)!
      );
      return inside !== token.negated;
    }
    case "star":
      return false;
  }
}

// The classic wildcard match: on a mismatch, go back to the last `*` and
// let it take one more character. Earlier stars never need revisiting,
// since the last one can absorb whatever they would have.
function matches(tokens: Token[], chars: string[]): boolean {
  let t = 0;
  let c = 0;
  let star = -1;
  let starAt = 0;
  while (c < chars.length) {
    const token = tokens[t];
    if (token !== undefined && token.kind === "star") {
      star = t++;
      starAt = c;
    } else if (token !== undefined && matchesOne(token, chars[c])) {
      t++;
      c++;
    } else if (star >= 0) {
      t = star + 1;
      c = ++starAt;
    } else {
      return false;
    }
  }
  while (tokens[t]?.kind === "star") t++;
  return t === tokens.length;
}
