import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import {
  BUDGET_CAP,
  ReportBudget,
  reportSize,
} from "../../http/_report_budget.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

Deno.test("ReportBudget reports until its bytes run out, then counts, and refills from credit", () => {
  const loop = new VirtualTimeLoop();
  const seen: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => seen.push(context));
  const budget = ReportBudget.of(loop);
  assert(ReportBudget.of(loop) === budget, "one budget per loop");
  const error = new Error("boom");
  const cost = reportSize("failed", error);
  const fit = Math.floor(BUDGET_CAP / cost);
  for (let i = 0; i < fit + 10; i++) {
    budget.report({ message: "failed", exception: error });
  }
  assertEquals(seen.length, fit);
  assertEquals(budget.suppressed, 10);
  budget.credit(10 * cost);
  assertEquals(budget.report({ message: "failed", exception: error }), true);
  assertStringIncludes(
    seen.at(-1)!.message,
    "and 10 reports before it not shown",
  );
  assertEquals(budget.suppressed, 0);
  budget.credit(10 * BUDGET_CAP);
  const before = seen.length;
  for (let i = 0; i < 10 * fit; i++) {
    budget.report({ message: "failed", exception: error });
  }
  assert(seen.length - before <= fit, "credit is capped");
  loop.close();
});
