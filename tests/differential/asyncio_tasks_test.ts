// tulip's tasks against asyncio 3.13 itself: 500 random programs (seeds
// 1–500) of tasks, cancellation, timeouts, waitFor, gather, shield and
// TaskGroups, on virtual clocks both sides, must leave the same trace —
// every task's steps in the same order — but for cancel messages, which
// CPython drops once gather() or shield() read them (README "PEP 3156
// names and ours"). Needs Python 3.13: skipped, saying so, without it.
// `deno run -A tests/differential/run.ts` runs more seeds (README.md here).

import { assertEquals } from "@std/assert";
import { asyncioTraces, findPython313 } from "./_python.ts";
import { classify, runProgram } from "./_tulip_programs.ts";

const found = await findPython313();

Deno.test({
  name: "500 random programs of tasks run as under asyncio 3.13",
  ignore: "missing" in found,
  async fn() {
    if ("missing" in found) return;
    const differ: string[] = [];
    for (
      const { seed, program, trace } of await asyncioTraces(
        found.python,
        1,
        500,
      )
    ) {
      const verdict = classify(trace, await runProgram(program));
      if (verdict !== null && verdict !== "msg") {
        differ.push(
          `seed ${seed}: ${verdict} (deno run -A tests/differential/run.ts --show ${seed})`,
        );
      }
    }
    assertEquals(differ, []);
  },
});

if ("missing" in found) {
  console.warn(
    `skipped the differential check against asyncio: ${found.missing}`,
  );
}
