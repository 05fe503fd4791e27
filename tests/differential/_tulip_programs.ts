/**
 * The tulip half of the differential check against asyncio (README.md
 * here): runs a program made by `asyncio_programs.py` on a
 * `VirtualTimeLoop`, with async-function or generator tasks as the program
 * says, and returns its trace in the Python half's notation.
 *
 * @module
 */

import { CancelledError, TimeoutError } from "../../futures/errors.ts";
import type { Future } from "../../futures/future.ts";
import { sleep } from "../../tasks/sleep.ts";
import { timeout } from "../../tasks/timeout.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import { gather } from "../../tasks/gather.ts";
import { shield } from "../../tasks/shield.ts";
import { withTaskGroup } from "../../tasks/task_group.ts";
import { currentTask, type Task } from "../../tasks/task.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

class ValueError extends Error {
  constructor(m: string) {
    super(m);
    this.name = "ValueError";
  }
}

// deno-lint-ignore no-explicit-any
type Any = any;

function desc(e: Any): string {
  if (e instanceof CancelledError) return `Cancelled(${e.message})`;
  if (e instanceof TimeoutError) return "Timeout";
  if (e instanceof AggregateError) {
    return "EG[" + e.errors.map(desc).sort().join(",") + "]";
  }
  if (e instanceof ValueError) return `Value(${e.message})`;
  return `Other(${e?.name}:${e?.message})`;
}

/** Runs one program (its JSON form); the trace, as the Python half writes it. */
export async function runProgram(p: Any): Promise<string[]> {
  const loop = new VirtualTimeLoop();
  loop.setExceptionHandler(() => {});
  const tr: string[] = [];
  const futs: Future<Any>[] = [];
  for (let i = 0; i < p.nf; i++) futs.push(loop.createFuture());
  const tasks = new Map<string, Task<Any>>();
  const ev = (lab: string, s: string) => tr.push(`${lab}:${s}`);
  const fmtVal = (v: Any): string => {
    if (Array.isArray(v)) return "[" + v.map(fmtVal).join(",") + "]";
    if (v instanceof Error) return desc(v);
    return v === undefined ? "None" : String(v);
  };
  // Which style a task's blocks run in: async functions, or generators
  // (p.style "gen"), or by the label's number ("mixed": odd ones).
  const isGen = (lab: string): boolean =>
    p.style === "gen" ||
    (p.style === "mixed" && Number(lab.replace(/\D/g, "")) % 2 === 1);
  const spawn = (lab: string, b: Any[]): Any =>
    isGen(lab) ? gblock(lab, b) : () => block(lab, b);
  const mkTarget = (lab: string, t: Any): Any => {
    if (t[0] === "f") return futs[t[1]];
    if (t[0] === "t") {
      const tk = loop.createTask(spawn(t[1], t[2]));
      tasks.set(t[1], tk);
      return tk;
    }
    return block(lab, t[1]);
  };
  const gTarget = (lab: string, t: Any): Any => {
    if (t[0] === "c") return gblock(lab, t[1]);
    return mkTarget(lab, t);
  };
  function* gblock(lab: string, b: Any[]): Generator<Any, undefined, Any> {
    for (const s of b) yield* gstep(lab, s);
    return undefined;
  }
  function* gstep(lab: string, s: Any): Generator<Any, void, Any> {
    const k = s[0];
    if (k === "mark") ev(lab, `m${s[1]}`);
    else if (k === "fut") {
      const v = yield* futs[s[1]];
      ev(lab, `f${s[1]}=${v}`);
    } else if (k === "sleep0") yield* sleep(0);
    else if (k === "sleep") yield* sleep(s[1]);
    else if (k === "uncancel") ev(lab, `unc=${currentTask()!.uncancel()}`);
    else if (k === "cancelling") {
      ev(lab, `cing=${currentTask()!.cancelling()}`);
    } else if (k === "nest") yield* gblock(lab, s[1]);
    else if (k === "try") {
      const kind = s[1];
      try {
        yield* gblock(lab, s[2]);
      } catch (e) {
        if (kind === "esw") {
          if (e instanceof CancelledError) throw e;
          ev(lab, "esw " + desc(e));
        } else {
          if (!(e instanceof CancelledError)) throw e;
          ev(lab, kind + " " + desc(e));
          if (kind === "cre") throw e;
        }
      }
    } else if (k === "timeout") {
      try {
        yield* timeout(s[1]).scope(() => gblock(lab, s[2]));
      } catch (e) {
        ev(lab, "tmo-out " + desc(e));
        throw e;
      }
    } else if (k === "waitfor" || k === "trun") {
      const t = s[2];
      const aw = t[0] === "c" ? () => gblock(lab, t[1]) : gTarget(lab, t);
      const v = k === "waitfor"
        ? yield* waitFor(aw, s[1])
        : yield* timeout(s[1]).run(aw);
      ev(lab, `wf=${fmtVal(v)}`);
    } else if (k === "gather") {
      const aws = s[1].map((t: Any) => gTarget(lab, t));
      const v = yield* gather(aws, { returnExceptions: s[2] });
      ev(lab, `g=${fmtVal(v)}`);
    } else if (k === "shield") {
      const t = s[1];
      const v = yield* shield(
        t[0] === "c" ? () => gblock(lab, t[1]) : gTarget(lab, t),
      );
      ev(lab, `sh=${fmtVal(v)}`);
    } else if (k === "tg") {
      try {
        yield* withTaskGroup(function* (tg) {
          for (const [clab, cb] of s[1]) {
            tasks.set(clab, tg.createTask(spawn(clab, cb)));
          }
          yield* gblock(lab, s[2]);
        });
      } catch (e) {
        ev(lab, "tg-out " + desc(e));
        throw e;
      }
    } else throw new Error("bad step " + k);
  }
  async function block(lab: string, b: Any[]): Promise<undefined> {
    for (const s of b) await step(lab, s);
    return undefined;
  }
  async function step(lab: string, s: Any): Promise<void> {
    const k = s[0];
    if (k === "mark") ev(lab, `m${s[1]}`);
    else if (k === "fut") {
      const v = await futs[s[1]];
      ev(lab, `f${s[1]}=${v}`);
    } else if (k === "sleep0") await sleep(0);
    else if (k === "sleep") await sleep(s[1]);
    else if (k === "uncancel") ev(lab, `unc=${currentTask()!.uncancel()}`);
    else if (k === "cancelling") {
      ev(lab, `cing=${currentTask()!.cancelling()}`);
    } else if (k === "nest") await block(lab, s[1]);
    else if (k === "try") {
      const kind = s[1];
      try {
        await block(lab, s[2]);
      } catch (e) {
        if (kind === "esw") {
          if (e instanceof CancelledError) throw e;
          ev(lab, "esw " + desc(e));
        } else {
          if (!(e instanceof CancelledError)) throw e;
          ev(lab, kind + " " + desc(e));
          if (kind === "cre") throw e;
        }
      }
    } else if (k === "timeout") {
      try {
        await timeout(s[1]).scope(async () => await block(lab, s[2]));
      } catch (e) {
        ev(lab, "tmo-out " + desc(e));
        throw e;
      }
    } else if (k === "waitfor" || k === "trun") {
      const t = s[2];
      // asyncio's wait_for(coro) runs the coroutine inline; tulip's
      // equivalent is the uncalled function form.
      const aw = t[0] === "c" ? () => block(lab, t[1]) : mkTarget(lab, t);
      const v = k === "waitfor"
        ? await waitFor(aw, s[1])
        : await timeout(s[1]).run(aw);
      ev(lab, `wf=${fmtVal(v)}`);
    } else if (k === "gather") {
      const aws = s[1].map((t: Any) => mkTarget(lab, t));
      const v = await gather(aws, { returnExceptions: s[2] });
      ev(lab, `g=${fmtVal(v)}`);
    } else if (k === "shield") {
      const t = s[1];
      const v = await shield(
        t[0] === "c" ? () => block(lab, t[1]) : mkTarget(lab, t),
      );
      ev(lab, `sh=${fmtVal(v)}`);
    } else if (k === "tg") {
      try {
        await withTaskGroup(async (tg) => {
          for (const [clab, cb] of s[1]) {
            tasks.set(clab, tg.createTask(spawn(clab, cb)));
          }
          await block(lab, s[2]);
        });
      } catch (e) {
        ev(lab, "tg-out " + desc(e));
        throw e;
      }
    } else throw new Error("bad step " + k);
  }
  const top: Task<Any>[] = [];
  p.tasks.forEach((b: Any, i: number) => {
    const t = loop.createTask(spawn(`t${i}`, b));
    tasks.set(`t${i}`, t);
    top.push(t);
  });
  const driver = (i: number) => {
    if (p.ticks) tr.push(`D:it ${i}`);
    for (const a of p.sched) {
      if (a[0] !== i) continue;
      if (a[1] === "cancel") {
        const t = tasks.get(a[2]);
        if (!t) {
          tr.push(`D:nocancel ${a[2]}`);
          continue;
        }
        const r = a[3] !== null ? t.cancel(a[3]) : t.cancel();
        tr.push(`D:cancel ${a[2]} ${r ? "True" : "False"}`);
      } else {
        const f = futs[a[2]];
        if (f.done()) {
          tr.push(`D:fdone ${a[2]}`);
          continue;
        }
        if (a[1] === "set") f.setResult(a[3]);
        else if (a[1] === "exc") f.setException(new ValueError(a[3]));
        else f.cancel(a[3]);
        tr.push(`D:${a[1]} ${a[2]}`);
      }
    }
    if (i < p.K) loop.callSoon(() => driver(i + 1));
    else ddone.setResult(undefined);
  };
  const ddone = loop.createFuture<undefined>();
  loop.callSoon(() => driver(0));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const dl = new Promise<string>((r) => {
    timer = setTimeout(() => r("DEADLOCK"), 3000);
  });
  const r = await Promise.race([
    loop.runUntilComplete(gather([...top, ddone], { returnExceptions: true }))
      .then(
        () => "ok",
        (e) => "RUNERR " + desc(e),
      ),
    dl,
  ]);
  clearTimeout(timer);
  if (r !== "ok") tr.push(r);
  const final = (t: Task<Any>): string => {
    if (!t.done()) return "pending";
    if (t.cancelled()) {
      try {
        t.result();
      } catch (e) {
        return "cancelled " + desc(e);
      }
    }
    const e = t.exception();
    if (e != null) return "exc " + desc(e);
    return "ok";
  };
  for (const lab of [...tasks.keys()].sort()) {
    const t = tasks.get(lab)!;
    tr.push(`F:${lab} ${final(t)} cing=${t.cancelling()}`);
  }
  tr.push(`T=${loop.time().toFixed(6)}`);
  if (r === "ok") loop.close();
  return tr;
}

/** Cancel messages, which CPython drops once gather()/shield() read them. */
function withoutMessages(trace: string[]): string[] {
  return trace.map((x) => x.replace(/Cancelled\([^)]*\)/g, "Cancelled()"));
}

/**
 * How two traces of one program differ: `null` (they don't), `"msg"`
 * (only in cancel messages: CPython's `_make_cancelled_error()` consumes
 * them, tulip keeps them — not followed, see README "PEP 3156 names and
 * ours"), `"order"` (each task did the same, interleaved differently) or
 * `"struct"` (some task did something else).
 */
export function classify(
  asyncio: string[],
  tulip: string[],
): null | "msg" | "order" | "struct" {
  // asyncio hands a cancelled task's own CancelledError to the first
  // retrieval only; tulip hands out the same one each time.
  const finals = (trace: string[]) =>
    trace.map((x) =>
      x.startsWith("F:") ? x.replace(/Cancelled\([^)]*\)/g, "Cancelled()") : x
    );
  const a = finals(asyncio);
  const b = finals(tulip);
  if (a.join("\n") === b.join("\n")) return null;
  const perTask = (trace: string[]) => {
    const out = new Map<string, string[]>();
    for (const x of trace) {
      const label = x.startsWith("F:") || x.startsWith("T=")
        ? x
        : x.split(":", 1)[0];
      out.set(label, [...(out.get(label) ?? []), x]);
    }
    return JSON.stringify([...out].sort());
  };
  const a2 = withoutMessages(a);
  const b2 = withoutMessages(b);
  if (perTask(a2) !== perTask(b2)) return "struct";
  if (a2.join("\n") !== b2.join("\n")) return "order";
  return "msg";
}
