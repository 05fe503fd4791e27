// The loop's timer queue: a binary min-heap ordered by (when, seq), so that
// timers due at the same time fire in scheduling order. Cancellation is
// lazy: a cancelled timer stays in the heap and is skipped when it reaches
// the top, and the heap compacts itself (O(n)) once cancelled timers are
// more than half of it, so schedule-and-cancel cycles cannot leak.

import {
  placeTimer,
  timerBefore,
  type TimerHandle,
  type TimerQueueLike,
} from "./_handle.ts";

const COMPACT_MIN = 64;

/** A min-heap of timer handles with lazy cancellation. */
export class TimerHeap implements TimerQueueLike {
  #heap: TimerHandle[] = [];
  #cancelled = 0;
  #seq = 0;

  /** The number of timers held, cancelled ones included. */
  get size(): number {
    return this.#heap.length;
  }

  /** The number of cancelled timers still held. */
  get cancelledCount(): number {
    return this.#cancelled;
  }

  /** Adds `timer`, due at `when`. */
  push(timer: TimerHandle, when: number): void {
    placeTimer(timer, when, this.#seq++, this);
    const heap = this.#heap;
    let i = heap.length;
    heap.push(timer);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent];
      if (!timerBefore(timer, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = timer;
  }

  /**
   * Returns the earliest live timer without removing it, dropping cancelled
   * ones from the top on the way.
   */
  peek(): TimerHandle | undefined {
    const heap = this.#heap;
    while (heap.length > 0 && heap[0].cancelled) {
      this.#pop();
      this.#cancelled--;
    }
    return heap[0];
  }

  /** Removes and returns the earliest timer (after `peek()` found it live). */
  pop(): TimerHandle {
    const top = this.#pop();
    placeTimer(top, top.when, 0, null);
    return top;
  }

  /** Counts a timer cancelled while queued; compacts when they dominate. */
  timerCancelled(): void {
    this.#cancelled++;
    const n = this.#heap.length;
    if (n >= COMPACT_MIN && this.#cancelled * 2 > n) this.#compact();
  }

  /** Drops every timer. */
  clear(): void {
    for (const t of this.#heap) placeTimer(t, t.when, 0, null);
    this.#heap = [];
    this.#cancelled = 0;
  }

  #pop(): TimerHandle {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      this.#siftDown(0);
    }
    return top;
  }

  #compact(): void {
    const live = this.#heap.filter((t) => !t.cancelled);
    this.#heap = live;
    this.#cancelled = 0;
    for (let i = (live.length >> 1) - 1; i >= 0; i--) this.#siftDown(i);
  }

  #siftDown(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const item = heap[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && timerBefore(heap[r], heap[l]) ? r : l;
      if (!timerBefore(heap[c], item)) break;
      heap[i] = heap[c];
      i = c;
    }
    heap[i] = item;
  }
}
