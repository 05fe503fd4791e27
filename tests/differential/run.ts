/**
 * The differential check against asyncio 3.13 at scale (README.md here):
 *
 *     deno run -A tests/differential/run.ts START COUNT   # seeds START…START+COUNT-1
 *     deno run -A tests/differential/run.ts --show SEED   # both traces of one
 *
 * @module
 */

import { asyncioTraces, findPython313 } from "./_python.ts";
import { classify, runProgram } from "./_tulip_programs.ts";

const found = await findPython313();
if ("missing" in found) {
  console.error(found.missing);
  Deno.exit(2);
}
if (Deno.args[0] === "--show") {
  const seed = Number(Deno.args[1]);
  const [{ program, trace }] = await asyncioTraces(found.python, seed, 1);
  const tulip = await runProgram(program);
  console.log(JSON.stringify(program));
  console.log(`class: ${classify(trace, tulip)}`);
  for (let i = 0; i < Math.max(trace.length, tulip.length); i++) {
    const a = trace[i] ?? "";
    const b = tulip[i] ?? "";
    console.log(`${a === b ? " " : "≠"} ${a.padEnd(40)} ${b}`);
  }
} else {
  const start = Number(Deno.args[0] ?? 1);
  const count = Number(Deno.args[1] ?? 1000);
  const counts = { struct: 0, order: 0, msg: 0 };
  const batch = 500;
  for (let from = start; from < start + count; from += batch) {
    const n = Math.min(batch, start + count - from);
    for (
      const { seed, program, trace } of await asyncioTraces(
        found.python,
        from,
        n,
      )
    ) {
      const verdict = classify(trace, await runProgram(program));
      if (verdict === null) continue;
      counts[verdict]++;
      if (verdict !== "msg") console.log(`seed ${seed}: ${verdict}`);
    }
  }
  console.log(`${count} programs from seed ${start}:`, counts);
}
