/**
 * The reliability suite: hostile, slow and broken peers against tulip's
 * servers on loopback, each scenario printing its figures and one
 * `PASS name` or `FAIL name: reason` line. See `README.md` here.
 *
 * ```sh
 * deno task soak                                # every scenario, minutes
 * deno task soak --quick                        # well under a minute
 * deno task soak --only pipeline-flood --quick  # one (or a,b,c)
 * deno task soak --list
 * ```
 *
 * Exits with code 1 if any scenario failed.
 *
 * @module
 */

import { killAll } from "../harness/_proc.ts";
import { Ctx, type Scenario, SkipError } from "./_scenario.ts";
import { acceptStormScenarios } from "./scenarios/accept_storm.ts";
import { churnScenarios } from "./scenarios/churn.ts";
import { idleScenarios } from "./scenarios/idle.ts";
import { noReadScenarios } from "./scenarios/no_read.ts";
import { pipelineScenarios } from "./scenarios/pipeline.ts";
import { resetScenarios } from "./scenarios/reset.ts";
import { shutdownScenarios } from "./scenarios/shutdown.ts";
import { slowlorisScenarios } from "./scenarios/slowloris.ts";

const SCENARIOS: Scenario[] = [
  ...idleScenarios,
  ...churnScenarios,
  ...slowlorisScenarios,
  ...noReadScenarios,
  ...resetScenarios,
  ...pipelineScenarios,
  ...acceptStormScenarios,
  ...shutdownScenarios,
];

/** A scenario that has not ended by then fails (and is cut short). */
const SCENARIO_TIMEOUT_S = { quick: 30, full: 120 };

function usage(why: string): never {
  console.error(`Cannot run the soak suite: ${why}`);
  console.error(
    "usage: deno task soak [--quick] [--only name[,name...]] [--list]",
  );
  Deno.exit(2);
}

function parse(argv: string[]): { quick: boolean; only: string[] | null } {
  let quick = false;
  let only: string[] | null = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--quick") quick = true;
    else if (arg === "--list") {
      for (const s of SCENARIOS) console.log(`${s.name}\t${s.summary}`);
      Deno.exit(0);
    } else if (arg === "--only" || arg.startsWith("--only=")) {
      const value = arg === "--only" ? argv[++i] : arg.slice(7);
      if (value === undefined) usage("--only needs scenario names");
      only = value.split(",").filter((s) => s !== "");
      const unknown = only.filter((n) => !SCENARIOS.some((s) => s.name === n));
      if (unknown.length > 0) {
        usage(`unknown scenario, received "${unknown.join(", ")}"`);
      }
    } else usage(`unknown argument, received "${arg}"`);
  }
  return { quick, only };
}

/** Runs one scenario; its verdict: "PASS", "FAIL" or "SKIP". */
async function runOne(scenario: Scenario, quick: boolean): Promise<string> {
  console.log(`\n== ${scenario.name}: ${scenario.summary}`);
  const ctx = new Ctx(quick);
  const start = performance.now();
  const limit = quick ? SCENARIO_TIMEOUT_S.quick : SCENARIO_TIMEOUT_S.full;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let skipped: string | null = null;
  try {
    await Promise.race([
      scenario.run(ctx),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`did not end within ${limit} s`)),
          limit * 1000,
        );
      }),
    ]);
  } catch (e) {
    if (e instanceof SkipError) skipped = e.message;
    else ctx.fail(e instanceof Error ? e.message : String(e));
  } finally {
    clearTimeout(timer);
    await ctx.cleanUp();
  }
  ctx.figure("took", `${((performance.now() - start) / 1000).toFixed(1)} s`);
  if (skipped !== null) {
    console.log(`SKIP ${scenario.name}: ${skipped}`);
    return "SKIP";
  }
  if (ctx.failures.length === 0) {
    console.log(`PASS ${scenario.name}`);
    return "PASS";
  }
  console.log(`FAIL ${scenario.name}: ${ctx.failures.join("; ")}`);
  return "FAIL";
}

async function main(): Promise<void> {
  const { quick, only } = parse(Deno.args);
  const chosen = only === null
    ? SCENARIOS
    : SCENARIOS.filter((s) => only.includes(s.name));
  const verdicts = new Map<string, string>();
  const start = performance.now();
  for (const scenario of chosen) {
    verdicts.set(scenario.name, await runOne(scenario, quick));
  }
  const seconds = ((performance.now() - start) / 1000).toFixed(0);
  const count = (v: string) => [...verdicts.values()].filter((x) => x === v);
  console.log(
    `\nsoak${quick ? " --quick" : ""}: ${count("PASS").length} passed, ` +
      `${count("FAIL").length} failed, ${count("SKIP").length} skipped ` +
      `in ${seconds} s`,
  );
  for (const [name, verdict] of verdicts) {
    if (verdict === "FAIL") console.log(`  failed: ${name}`);
  }
  killAll();
  // Sockets a scenario gave up on may still hold pending reads.
  Deno.exit(count("FAIL").length > 0 ? 1 : 0);
}

Deno.addSignalListener("SIGINT", () => {
  killAll();
  Deno.exit(130);
});

await main();
