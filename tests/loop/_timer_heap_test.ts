import {
  assert,
  assertEquals,
  assertFalse,
  assertStrictEquals,
} from "@std/assert";
import fc from "fast-check";
import { TimerHandle } from "../../loop/_handle.ts";
import { TimerHeap } from "../../loop/_timer_heap.ts";
import type { SchedulingLoop } from "../../loop/event_loop.ts";
import { prng } from "../_helpers.ts";

// The heap never runs callbacks, so the handles need no real loop.
const noLoop = {} as SchedulingLoop;

function timer(id: number): TimerHandle {
  return new TimerHandle(() => {}, [id], noLoop);
}

function idOf(t: TimerHandle): number {
  return t.args[0] as number;
}

/** Pops every live timer, in heap order. */
function drain(heap: TimerHeap): TimerHandle[] {
  const out: TimerHandle[] = [];
  while (heap.peek() !== undefined) out.push(heap.pop());
  return out;
}

// ---- Basic order ----

Deno.test("TimerHeap starts empty", () => {
  const heap = new TimerHeap();
  assertEquals(heap.size, 0);
  assertEquals(heap.cancelledCount, 0);
  assertEquals(heap.peek(), undefined);
});

Deno.test("TimerHeap.push() records the due time on the handle", () => {
  const heap = new TimerHeap();
  const t = timer(0);
  heap.push(t, 12.5);
  assertEquals(t.when, 12.5);
  assertEquals(heap.size, 1);
});

Deno.test("TimerHeap pops timers in order of their due time", () => {
  const heap = new TimerHeap();
  const whens = [5, 1, 4, 2, 3, 0.5, 10];
  whens.forEach((w, i) => heap.push(timer(i), w));
  assertEquals(drain(heap).map((t) => t.when), [0.5, 1, 2, 3, 4, 5, 10]);
  assertEquals(heap.size, 0);
});

Deno.test("TimerHeap pops timers due at the same time in push order", () => {
  const heap = new TimerHeap();
  for (let i = 0; i < 20; i++) heap.push(timer(i), i % 2 === 0 ? 1 : 2);
  const ids = drain(heap).map(idOf);
  assertEquals(ids, [
    0,
    2,
    4,
    6,
    8,
    10,
    12,
    14,
    16,
    18,
    1,
    3,
    5,
    7,
    9,
    11,
    13,
    15,
    17,
    19,
  ]);
});

Deno.test("TimerHeap.peek() returns the earliest timer without removing it", () => {
  const heap = new TimerHeap();
  const a = timer(0);
  const b = timer(1);
  heap.push(b, 2);
  heap.push(a, 1);
  assertStrictEquals(heap.peek(), a);
  assertStrictEquals(heap.peek(), a);
  assertEquals(heap.size, 2);
  assertStrictEquals(heap.pop(), a);
  assertStrictEquals(heap.pop(), b);
});

// ---- Lazy cancellation ----

Deno.test("TimerHeap counts a queued timer's cancel() once", () => {
  const heap = new TimerHeap();
  const t = timer(0);
  heap.push(t, 1);
  heap.push(timer(1), 2);
  t.cancel();
  t.cancel();
  assertEquals(heap.cancelledCount, 1);
  assertEquals(heap.size, 2);
});

Deno.test("TimerHeap.peek() drops cancelled timers from the top", () => {
  const heap = new TimerHeap();
  const a = timer(0);
  const b = timer(1);
  const c = timer(2);
  heap.push(a, 1);
  heap.push(b, 2);
  heap.push(c, 3);
  a.cancel();
  b.cancel();
  assertStrictEquals(heap.peek(), c);
  assertEquals(heap.size, 1);
  assertEquals(heap.cancelledCount, 0);
});

Deno.test("TimerHeap.peek() returns undefined when only cancelled timers remain", () => {
  const heap = new TimerHeap();
  const a = timer(0);
  heap.push(a, 1);
  a.cancel();
  assertEquals(heap.peek(), undefined);
  assertEquals(heap.size, 0);
  assertEquals(heap.cancelledCount, 0);
});

Deno.test("TimerHeap is not told when a popped timer is cancelled", () => {
  const heap = new TimerHeap();
  const a = timer(0);
  heap.push(a, 1);
  heap.push(timer(1), 2);
  assertStrictEquals(heap.pop(), a);
  a.cancel();
  assert(a.cancelled);
  assertEquals(heap.cancelledCount, 0);
});

Deno.test("TimerHeap compacts once cancelled timers are more than half", () => {
  const heap = new TimerHeap();
  const timers = Array.from({ length: 100 }, (_, i) => timer(i));
  timers.forEach((t, i) => heap.push(t, i));
  for (let i = 0; i < 50; i++) timers[i * 2].cancel();
  // Exactly half: not yet.
  assertEquals(heap.size, 100);
  assertEquals(heap.cancelledCount, 50);
  timers[1].cancel();
  assertEquals(heap.size, 49);
  assertEquals(heap.cancelledCount, 0);
  const ids = drain(heap).map(idOf);
  assertEquals(ids, timers.map(idOf).filter((i) => i % 2 === 1 && i !== 1));
});

Deno.test("TimerHeap does not compact a small heap", () => {
  const heap = new TimerHeap();
  const timers = Array.from({ length: 10 }, (_, i) => timer(i));
  timers.forEach((t, i) => heap.push(t, i));
  for (const t of timers.slice(0, 9)) t.cancel();
  assertEquals(heap.size, 10);
  assertEquals(heap.cancelledCount, 9);
  assertEquals(drain(heap).map(idOf), [9]);
});

Deno.test("TimerHeap keeps order for timers pushed after a compaction", () => {
  const heap = new TimerHeap();
  const timers = Array.from({ length: 80 }, (_, i) => timer(i));
  timers.forEach((t) => heap.push(t, 5));
  for (const t of timers.slice(0, 41)) t.cancel();
  assertEquals(heap.size, 39);
  heap.push(timer(100), 5);
  heap.push(timer(101), 1);
  const ids = drain(heap).map(idOf);
  assertEquals(ids, [101, ...timers.slice(41).map(idOf), 100]);
});

// ---- clear() ----

Deno.test("TimerHeap.clear() drops every timer and forgets their queue", () => {
  const heap = new TimerHeap();
  const a = timer(0);
  const b = timer(1);
  heap.push(a, 1);
  heap.push(b, 2);
  b.cancel();
  heap.clear();
  assertEquals(heap.size, 0);
  assertEquals(heap.cancelledCount, 0);
  assertEquals(heap.peek(), undefined);
  a.cancel();
  assertEquals(heap.cancelledCount, 0);
  assertEquals(a.when, 1);
});

// ---- Properties ----

Deno.test("TimerHeap pops random schedules in (when, push order) and never a cancelled timer", () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    const rand = prng(seed);
    const heap = new TimerHeap();
    const live = new Map<number, TimerHandle>();
    const cancelled = new Set<number>();
    const popped: TimerHandle[] = [];
    let next = 0;
    for (let step = 0; step < 5000; step++) {
      const r = rand();
      if (r < 0.55) {
        const t = timer(next++);
        // Coarse due times so that ties are common.
        heap.push(t, Math.floor(rand() * 50) / 4);
        live.set(idOf(t), t);
      } else if (r < 0.8 && live.size > 0) {
        const ids = [...live.keys()];
        const id = ids[Math.floor(rand() * ids.length)];
        live.get(id)!.cancel();
        live.delete(id);
        cancelled.add(id);
      } else if (heap.peek() !== undefined) {
        const t = heap.pop();
        popped.push(t);
        live.delete(idOf(t));
      }
      assert(heap.cancelledCount <= heap.size);
    }
    // Each pop is the minimum of what was queued then; the full check is
    // done on a final drain, which must come out sorted.
    const rest = drain(heap);
    for (let i = 1; i < rest.length; i++) {
      const a = rest[i - 1];
      const b = rest[i];
      assert(
        a.when < b.when || (a.when === b.when && idOf(a) < idOf(b)),
        `seed ${seed}: ${a.when}/${idOf(a)} before ${b.when}/${idOf(b)}`,
      );
    }
    for (const t of [...popped, ...rest]) {
      assertFalse(
        cancelled.has(idOf(t)),
        `seed ${seed}: popped a cancelled timer`,
      );
    }
    assertEquals(
      new Set([...popped, ...rest].map(idOf)).size,
      popped.length + rest.length,
    );
    assertEquals(
      new Set(rest.map(idOf)),
      new Set(live.keys()),
      `seed ${seed}: every live timer comes out exactly once`,
    );
  }
});

Deno.test("TimerHeap pops are non-decreasing in (when, push order) when interleaved with pushes", () => {
  const rand = prng(99);
  const heap = new TimerHeap();
  let now = 0;
  let lastWhen = -Infinity;
  let lastId = -1;
  let next = 0;
  for (let step = 0; step < 20_000; step++) {
    if (rand() < 0.5) {
      // Like a loop: new timers are never due before the current time.
      const t = timer(next++);
      heap.push(t, now + Math.floor(rand() * 8) / 2);
      if (rand() < 0.3) t.cancel();
    } else {
      const top = heap.peek();
      if (top === undefined) continue;
      const t = heap.pop();
      assertFalse(t.cancelled);
      now = t.when;
      assert(
        t.when > lastWhen || (t.when === lastWhen && idOf(t) > lastId),
        `step ${step}: ${t.when}/${idOf(t)} after ${lastWhen}/${lastId}`,
      );
      lastWhen = t.when;
      lastId = idOf(t);
    }
  }
});

Deno.test("TimerHeap does not grow over a million schedule-and-cancel cycles", () => {
  const heap = new TimerHeap();
  const keeper = timer(-1);
  heap.push(keeper, 1e9);
  let maxSize = 0;
  for (let i = 0; i < 1_000_000; i++) {
    const t = timer(i);
    heap.push(t, i);
    t.cancel();
    if (heap.size > maxSize) maxSize = heap.size;
  }
  // Compaction starts at 64 timers and fires when cancelled ones pass half.
  assert(maxSize <= 64, `heap grew to ${maxSize}`);
  assertStrictEquals(heap.peek(), keeper);
  assertEquals(heap.size, 1);
});

Deno.test("TimerHeap stays within twice its live timers under random churn", () => {
  const rand = prng(7);
  const heap = new TimerHeap();
  const live: TimerHandle[] = [];
  for (let i = 0; i < 200_000; i++) {
    const t = timer(i);
    heap.push(t, rand() * 100);
    live.push(t);
    // Cancel a random live timer most of the time: the live set hovers.
    if (live.length > 100 || rand() < 0.5) {
      const k = Math.floor(rand() * live.length);
      live[k].cancel();
      live[k] = live[live.length - 1];
      live.pop();
    }
    assert(heap.size <= Math.max(64, 2 * live.length + 1));
  }
  assertEquals(drain(heap).length, live.length);
});

// ---- Against a model: a sorted array ----

/** One step of a random schedule, as fast-check draws it. */
type Op =
  | { op: "push"; when: number }
  | { op: "cancel"; pick: number }
  | { op: "pop" }
  | { op: "clear" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  // Few distinct due times, so that ties are common; enough pushes that
  // heaps pass the compaction threshold.
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("push" as const),
      when: fc.integer({ min: 0, max: 40 }).map((w) => w / 4),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("cancel" as const),
      pick: fc.nat(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("pop" as const) }) },
  {
    weight: 1,
    arbitrary: fc.constant({ op: "clear" as const }),
  },
);

Deno.test("TimerHeap behaves as a sorted array of its live timers", () => {
  fc.assert(
    fc.property(
      fc.array(opArb, { maxLength: 600, size: "max" }).map((ops) =>
        // Clearing is rare in a loop (only close() does it).
        ops.filter((o, i) => o.op !== "clear" || i % 50 === 0)
      ),
      (ops) => {
        const heap = new TimerHeap();
        // The model: the live timers sorted by (when, push order).
        let model: { t: TimerHandle; when: number; order: number }[] = [];
        let queued: TimerHandle[] = []; // every timer pushed and not popped
        let order = 0;
        for (const o of ops) {
          if (o.op === "push") {
            const t = timer(order);
            heap.push(t, o.when);
            queued.push(t);
            const entry = { t, when: o.when, order: order++ };
            let i = model.length;
            while (i > 0 && model[i - 1].when > o.when) i--;
            model.splice(i, 0, entry);
          } else if (o.op === "cancel") {
            if (queued.length === 0) continue;
            // Cancelling an already cancelled timer must change nothing.
            const t = queued[o.pick % queued.length];
            t.cancel();
            model = model.filter((e) => e.t !== t);
          } else if (o.op === "pop") {
            const top = heap.peek();
            assertStrictEquals(top, model[0]?.t);
            if (top === undefined) continue;
            assertStrictEquals(heap.pop(), top);
            assertEquals(top.when, model[0].when);
            model.shift();
            queued = queued.filter((t) => t !== top);
            // A popped timer is the loop's again: cancelling it is not
            // counted by the heap.
            const before = heap.cancelledCount;
            top.cancel();
            assertEquals(heap.cancelledCount, before);
          } else {
            heap.clear();
            model = [];
            queued = [];
          }
          assertEquals(heap.size - heap.cancelledCount, model.length);
          // A cancel compacts a heap that cancelled timers dominate (pops
          // may leave it so until the next cancel).
          if (o.op === "cancel") {
            assert(
              heap.size < 64 || heap.cancelledCount * 2 <= heap.size,
              `${heap.cancelledCount} of ${heap.size} cancelled`,
            );
          }
        }
        const rest = drain(heap);
        assertEquals(rest.map(idOf), model.map((e) => e.order));
        for (const t of rest) assertFalse(t.cancelled);
      },
    ),
    { seed: 0x71e4, numRuns: 200 },
  );
});

Deno.test("TimerHeap keeps order across growing, compacting and shrinking", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 3000 }),
      fc.integer({ min: 1, max: 100 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      (n, keepEvery, seed) => {
        const rand = prng(seed);
        const heap = new TimerHeap();
        const timers: TimerHandle[] = [];
        const whens: number[] = [];
        for (let i = 0; i < n; i++) {
          const t = timer(i);
          const when = Math.floor(rand() * 64);
          heap.push(t, when);
          timers.push(t);
          whens.push(when);
        }
        // Cancel all but every keepEvery-th: compactions shrink the heap.
        for (let i = 0; i < n; i++) if (i % keepEvery !== 0) timers[i].cancel();
        // Then push more, due at the same times, after the compactions.
        for (let i = n; i < n + 100; i++) {
          const t = timer(i);
          const when = Math.floor(rand() * 64);
          heap.push(t, when);
          whens.push(when);
        }
        const expected = whens
          .map((when, id) => ({ when, id }))
          .filter(({ id }) => id >= n || id % keepEvery === 0)
          .sort((a, b) => a.when - b.when || a.id - b.id)
          .map(({ id }) => id);
        assertEquals(drain(heap).map(idOf), expected);
      },
    ),
    { seed: 0x71e5, numRuns: 60 },
  );
});
