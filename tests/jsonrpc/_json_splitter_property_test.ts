// Property tests of JsonSplitter: any bytes, cut anywhere, give the same
// values as the whole stream; it never throws and never holds more than
// maxLength bytes.

import { assert, assertEquals } from "@std/assert";
import fc from "fast-check";
import { JsonSplitter } from "../../jsonrpc/_json_splitter.ts";
import { bytes, text } from "../_every_split.ts";

const RUNS = { numRuns: 300 };

/** Feeds `data` cut at `cuts` and records values, overruns and the most held. */
function feed(data: Uint8Array, cuts: number[], maxLength: number) {
  const values: string[] = [];
  const overruns: number[] = [];
  const splitter = new JsonSplitter(
    (v) => {
      assert(v.length <= maxLength, `value of ${v.length} > ${maxLength}`);
      values.push(text(v));
    },
    maxLength,
    (e) => overruns.push(e.consumed),
  );
  let peak = 0;
  let at = 0;
  for (const cut of [...cuts, data.length]) {
    if (cut < at) continue;
    splitter.dataReceived(data.subarray(at, cut));
    peak = Math.max(peak, splitter.buffered);
    at = cut;
  }
  return { values, overruns: overruns.length, peak };
}

/** Cut points within `n` bytes, sorted. */
function cutsOf(n: number) {
  return fc.uniqueArray(fc.integer({ min: 0, max: n }), { maxLength: 12 })
    .map((c) => c.sort((a, b) => a - b));
}

/** A stream of JSON texts and garbage, separated by whitespace or not. */
const stream = fc.array(
  fc.oneof(
    fc.json({ maxDepth: 3 }),
    fc.constantFrom("}", "]", "{", "[", '"', "\\", "tru", "1e", "\n", " "),
    fc.string({ maxLength: 8 }),
  ),
  { maxLength: 12 },
).chain((parts) =>
  fc.array(fc.constantFrom("", " ", "\n", "\r\n\t"), {
    minLength: parts.length,
    maxLength: parts.length,
  }).map((gaps) => parts.map((p, i) => p + gaps[i]).join(""))
);

Deno.test("JsonSplitter gives the same values whole and cut at any points, within maxLength", () => {
  fc.assert(
    fc.property(
      stream.chain((s) =>
        fc.tuple(
          fc.constant(bytes(s)),
          cutsOf(bytes(s).length),
          fc.integer({ min: 1, max: 64 }),
        )
      ),
      ([data, cuts, maxLength]) => {
        const whole = feed(data, [], maxLength);
        const split = feed(data, cuts, maxLength);
        assert(split.peak <= maxLength, `held ${split.peak} > ${maxLength}`);
        if (whole.overruns === 0) {
          assertEquals(split.overruns, 0);
          assertEquals(split.values, whole.values);
        } else {
          // Stops at the first over-long value: the same values before it.
          assertEquals(split.overruns, 1);
          assertEquals(split.values, whole.values);
        }
      },
    ),
    RUNS,
  );
});

Deno.test("JsonSplitter delivers every JSON text of a whitespace-separated stream as itself", () => {
  fc.assert(
    fc.property(
      fc.array(fc.json({ maxDepth: 4 }), { maxLength: 10 }).chain((texts) =>
        fc.tuple(
          fc.constant(texts),
          cutsOf(bytes(texts.join(" ") + " ").length),
        )
      ),
      ([texts, cuts]) => {
        const data = bytes(texts.join(" ") + " ");
        const { values } = feed(data, cuts, Infinity);
        assertEquals(
          values.map((v) => JSON.parse(v)),
          texts.map((t) => JSON.parse(t)),
        );
      },
    ),
    RUNS,
  );
});

Deno.test("JsonSplitter never throws on arbitrary bytes", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 200 }).chain((d) =>
        fc.tuple(fc.constant(d), cutsOf(d.length))
      ),
      ([data, cuts]) => {
        const whole = feed(data, [], 32);
        const split = feed(data, cuts, 32);
        assertEquals(split.values, whole.values);
        assert(split.peak <= 32);
      },
    ),
    RUNS,
  );
});
