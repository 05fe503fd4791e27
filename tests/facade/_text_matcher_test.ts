import { assertEquals, assertStrictEquals } from "@std/assert";
import { CONTEXT, TextMatcher } from "../../facade/_text_matcher.ts";

/** Feeds `text` in pieces of `size` characters; the first match, if any. */
function feed(
  matcher: TextMatcher,
  text: string,
  size: number,
): RegExpExecArray | null {
  for (let i = 0; i < text.length; i += size) {
    const match = matcher.add(text.slice(i, i + size));
    if (match !== null) return match;
  }
  return null;
}

/** A RegExp that counts the characters handed to exec(). */
function counting(pattern: RegExp): [RegExp, { chars: number; calls: number }] {
  const counter = { chars: 0, calls: 0 };
  class CountingRegExp extends RegExp {
    override exec(text: string): RegExpExecArray | null {
      counter.calls += 1;
      counter.chars += text.length;
      return super.exec(text);
    }
  }
  return [new CountingRegExp(pattern.source, pattern.flags), counter];
}

Deno.test("TextMatcher finds the same match whatever the pieces", () => {
  const text = "Welcome to héllo 🦕\nlogin: rest";
  for (const size of [1, 2, 3, 7, text.length]) {
    const match = feed(new TextMatcher(/(\w+): /g, 16), text, size);
    assertEquals(match?.[1], "login", `size ${size}`);
    assertEquals(match?.index, text.indexOf("login"));
  }
});

Deno.test("TextMatcher gives the match index, input and indices of the whole text", () => {
  const text = "x".repeat(500) + "key=value;" + "tail";
  const matcher = new TextMatcher(/(?<key>\w+)=(?<value>\w+);/d, 32);
  const match = feed(matcher, text, 1)!;
  // The leftmost match in the window, which starts 32 characters back.
  const start = 510 - 32;
  assertEquals(match.index, start);
  assertEquals(match.input, text.slice(0, 510));
  assertEquals({ ...match.groups }, {
    key: "x".repeat(22) + "key",
    value: "value",
  });
  const indices = match.indices!;
  assertEquals(indices[0], [start, 510]);
  assertStrictEquals(indices.groups!.value, indices[2]);
  assertEquals(indices[2], [504, 509]);
  assertEquals(text.slice(...indices[2]!), "value");
});

Deno.test("TextMatcher keeps ^ at the start of the whole text once the window moved on", () => {
  const text = "ab".repeat(200);
  assertEquals(feed(new TextMatcher(/^b/, 8), text, 1), null);
  // With the m flag, ^ still sees the line break before the window.
  const lines = "-".repeat(100) + "\nb";
  assertEquals(feed(new TextMatcher(/^b/, 8, "m"), lines, 1)?.index, 101);
});

Deno.test("TextMatcher lookbehinds see the context before the window", () => {
  const text = "-".repeat(300) + "Password: " + "-".repeat(20) + "secret!";
  const matcher = new TextMatcher(/(?<=Password: -+)secret/, 8);
  assertEquals(feed(matcher, text, 1)?.index, text.indexOf("secret"));
  assertEquals(CONTEXT >= 30, true);
});

Deno.test("TextMatcher fed one character at a time sees a lookbehind that reaches past the window and its context, as the search does (astral characters take two)", () => {
  const text = "Name: " + "\u{1F600}".repeat(34) + "!";
  const matcher = new TextMatcher(/(?<=Name: .{34})!/u, 8);
  assertEquals(feed(matcher, text, 1)?.index, text.length - 1);
});

Deno.test("TextMatcher ignores the pattern's g and y flags and does not change the pattern", () => {
  const pattern = /b/gy;
  pattern.lastIndex = 5;
  const match = feed(new TextMatcher(pattern, 4), "aaab", 1);
  assertEquals(match?.index, 3);
  assertEquals(pattern.lastIndex, 5);
});

Deno.test("TextMatcher does not find a match longer than its window", () => {
  assertEquals(feed(new TextMatcher(/a+b/, 4), "aaaaaaab", 1)?.[0], "aaab");
  assertEquals(feed(new TextMatcher(/<[^>]*>/, 4), "<abcdefgh>", 1), null);
  assertEquals(
    feed(new TextMatcher(/<[^>]*>/, 10), "<abcdefgh>", 1)?.[0],
    "<abcdefgh>",
  );
});

Deno.test("TextMatcher tries cost at most its window, so feeding one character at a time is linear", () => {
  const window = 32;
  const work = (n: number) => {
    const [pattern, counter] = counting(/END/);
    const matcher = new TextMatcher(pattern, window);
    const match = feed(matcher, "x".repeat(n) + "END", 1);
    assertEquals(match?.index, n);
    return counter;
  };
  const small = work(5_000);
  const large = work(20_000);
  // One try per character, each over a bounded string.
  assertEquals(large.calls, 20_003);
  const perTry = 2 * window + CONTEXT;
  assertEquals(large.chars <= large.calls * perTry, true, `${large.chars}`);
  // Four times the text, four times the work (a full rescan would be 16).
  const ratio = large.chars / small.chars;
  assertEquals(ratio > 3.5 && ratio < 4.5, true, `ratio ${ratio}`);
});

Deno.test("TextMatcher fed one character at a time does not search the window again where no match can end (a flood of word characters against /(\\w+): $/)", () => {
  const text = "a".repeat(30_000) + " login: ";
  const started = performance.now();
  const match = feed(new TextMatcher(/(\w+): $/, 512), text, 1);
  const took = performance.now() - started;
  assertEquals(match?.[1], "login");
  assertEquals(match?.index, 30_001);
  // Searching the window after each character took about 7 s.
  assertEquals(took < 1000, true, `${took} ms`);
});

Deno.test("TextMatcher still finds, one character at a time, matches that end before the last character (lookahead, \\b) or use backreferences", () => {
  assertEquals(feed(new TextMatcher(/ \b/, 16), "ab cd", 1)?.index, 2);
  assertEquals(feed(new TextMatcher(/ab(?=c)/, 16), "xxabc", 1)?.index, 2);
  // Tried at "ab", before the "c" came.
  assertEquals(feed(new TextMatcher(/ab(?!c)/, 16), "abcabd", 1)?.index, 0);
  assertEquals(feed(new TextMatcher(/(\w)\1/, 16), "abcdde", 1)?.[0], "dd");
  assertEquals(
    feed(new TextMatcher(/(?<q>['"]).*\k<q>/, 16), `x"a"`, 1)?.[0],
    `"a"`,
  );
  // $ and ^ with the m flag, and a class, decide at the last character
  // (here the space after "250": .* takes nothing, and $ is the end).
  assertEquals(
    feed(new TextMatcher(/^250 (.*)$/, 64, "m"), "250-a\n250 ok", 1)?.index,
    6,
  );
  assertEquals(feed(new TextMatcher(/[0-9]+;/, 16), "ab12;", 1)?.[0], "12;");
});
