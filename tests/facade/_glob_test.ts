import { assertEquals } from "@std/assert";
import { compileGlob } from "../../facade/_glob.ts";

function check(glob: string, yes: string[], no: string[]): void {
  const test = compileGlob(glob);
  for (const line of yes) assertEquals(test(line), true, `${glob} ~ ${line}`);
  for (const line of no) assertEquals(test(line), false, `${glob} !~ ${line}`);
}

Deno.test("compileGlob() matches the whole line with * and ?", () => {
  check("Done*", ["Done", "Done in 3 s"], ["done", " Done", "Don"]);
  check("*ok", ["ok", "all ok"], ["ok!", "o k"]);
  check("a*b*c", ["abc", "a-b-c", "aXbYbZc"], ["ab", "acb", "abcd"]);
  check("?", ["x", "🦕"], ["", "xy"]);
  check("", [""], [" "]);
  check("***", ["", "anything"], []);
});

Deno.test("compileGlob() classes: sets, ranges, negation with !, a leading ]", () => {
  check("[abc]x", ["ax", "cx"], ["dx", "x", "abx"]);
  check("[a-c0-9]", ["b", "7"], ["d", "-"]);
  check("[!a-c]", ["d", "-"], ["a", "c"]);
  check("[]]", ["]"], ["a"]);
  check("[a-]", ["a", "-"], ["b"]);
});

// Python's fnmatch, which the async-facade proposal's read_until_lineglob
// takes its globs from: only `*`, `?`, `[seq]` and `[!seq]` are special.
// `\\` is an ordinary character (there is no quoting); `^` does not negate;
// a `]` right after `[` or `[!` belongs to the set; a `[` never closed is
// literal; in a set `-` makes a range between its neighbours, except first
// or last, and a range whose ends are reversed matches nothing. Each row:
// the glob, lines it matches, lines it does not (as fnmatchcase() answers).
const FNMATCH: [string, string[], string[]][] = [
  ["\\*", ["\\*", "\\x", "\\"], ["*", "x"]],
  ["a\\?", ["a\\?", "a\\b"], ["a?", "ab"]],
  ["x\\", ["x\\"], ["x"]],
  ["\\[a]", ["\\a"], ["[a]", "\\[a]"]],
  ["[\\]]", ["\\]"], ["]", "\\"]],
  ["[\\a]", ["\\", "a"], ["b"]],
  ["[a\\-z]", ["a", "\\", "m", "z"], ["-", "A"]],
  ["[^a]", ["^", "a"], ["b"]],
  ["[^]", ["^"], ["[^]", "a"]],
  ["[!^]", ["a"], ["^"]],
  ["[a^]", ["^", "a"], ["b"]],
  ["[]]", ["]"], ["a"]],
  ["[]a]", ["]", "a"], ["b"]],
  ["[!]]", ["a"], ["]"]],
  ["[!]a]", ["b"], ["]", "a"]],
  ["[]", ["[]"], ["]", ""]],
  ["[!]", ["[!]"], ["!", "a"]],
  ["[abc", ["[abc"], ["a"]],
  ["[a-", ["[a-"], ["a"]],
  ["a[", ["a["], ["a"]],
  ["[[]", ["["], ["a"]],
  ["[a-c]", ["a", "b", "c"], ["d", "-"]],
  ["[z-a]", [], ["a", "m", "z", "-"]],
  ["[z-ab]", ["b"], ["a", "z"]],
  ["[!z-a]", ["a", "m", "-"], []],
  ["[a-]", ["a", "-"], ["b"]],
  ["[-a]", ["a", "-"], ["b"]],
  ["[!-a]", ["b"], ["a", "-"]],
  ["[a-b-c]", ["a", "b", "-", "c"], ["d"]],
  ["[c-a-z]", ["-", "z"], ["b", "a"]],
  ["[a--]", [], ["a", "-", "b"]],
  ["[--0]", ["-", ".", "0"], ["1"]],
  ["[]-a]", ["]", "^", "a"], ["b"]],
  ["[a-]]", ["a]", "-]"], ["a", "]"]],
  ["[&&b]", ["&", "b"], ["c"]],
  ["*[!a]", ["xb"], ["xa", ""]],
  ["[?*]", ["?", "*"], ["x"]],
  ["[!!]", ["a"], ["!"]],
  ["[a!]", ["!", "a"], ["b"]],
];

Deno.test("compileGlob() treats \\, ^, ] and - as Python's fnmatch does", () => {
  for (const [glob, yes, no] of FNMATCH) check(glob, yes, no);
});

Deno.test("compileGlob() with many stars stays fast on a line that does not match", () => {
  // A regular expression made from this glob backtracks for a very long
  // time on such a line; the last-star rule needs one pass per star.
  const test = compileGlob("*a*a*a*a*a*a*a*b");
  assertEquals(test("a".repeat(5_000)), false);
  assertEquals(test("a".repeat(5_000) + "b"), true);
});
