// The loop's timer queue: a binary min-heap ordered by (when, seq), so that
// timers due at the same time fire in scheduling order. The heap keeps each
// timer's key in two typed arrays beside the array of handles, so that
// sifting compares numbers laid out side by side instead of reading two
// handles (and the boxed number of each `when`) per step: with 100,000
// timers pending, the handles no longer fit in the caches and those reads
// were most of the cost of a push.
//
// Cancellation is lazy: a cancelled timer stays in the heap and is skipped
// when it reaches the top, and the heap compacts itself (O(n), in place)
// once cancelled timers are more than half of it, so schedule-and-cancel
// cycles cannot leak and `cancel()` stays O(1) amortised.

import {
  placeTimer,
  type TimerHandle,
  type TimerQueueLike,
} from "./_handle.ts";

/** Below this many timers the heap never compacts. */
const COMPACT_MIN = 64;
/** The key arrays' first length, and the least they shrink to. */
const MIN_CAPACITY = 64;

/** A min-heap of timer handles with lazy cancellation. */
export class TimerHeap implements TimerQueueLike {
  // The handles, in heap order; its length is the heap's size.
  #items: TimerHandle[] = [];
  // Their keys, at the same indexes: the due time and the push order.
  #whens = new Float64Array(MIN_CAPACITY);
  #seqs = new Float64Array(MIN_CAPACITY);
  #cancelled = 0;
  #seq = 0;

  /** The number of timers held, cancelled ones included. */
  get size(): number {
    return this.#items.length;
  }

  /** The number of cancelled timers still held. */
  get cancelledCount(): number {
    return this.#cancelled;
  }

  /** Adds `timer`, due at `when`. */
  push(timer: TimerHandle, when: number): void {
    placeTimer(timer, when, this);
    const seq = this.#seq++;
    const items = this.#items;
    let i = items.length;
    if (i === this.#whens.length) this.#resize(2 * i);
    const whens = this.#whens;
    const seqs = this.#seqs;
    items.push(timer);
    // Every timer already queued was pushed earlier, so a tie in `when`
    // leaves the new one below: only a strictly later parent moves down.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const w = whens[parent];
      if (!(when < w)) break;
      items[i] = items[parent];
      whens[i] = w;
      seqs[i] = seqs[parent];
      i = parent;
    }
    items[i] = timer;
    whens[i] = when;
    seqs[i] = seq;
  }

  /**
   * Returns the earliest live timer without removing it, dropping cancelled
   * ones from the top on the way.
   */
  peek(): TimerHandle | undefined {
    const items = this.#items;
    while (items.length > 0 && items[0].cancelled) {
      // Its cancel() counted it (a handle's cancel() cancels the timers
      // standing for it).
      this.#pop();
      this.#cancelled--;
    }
    return items[0];
  }

  /** Removes and returns the earliest timer (after `peek()` found it live). */
  pop(): TimerHandle {
    const top = this.#pop();
    placeTimer(top, top.when, null);
    return top;
  }

  /** Counts a timer cancelled while queued; compacts when they dominate. */
  timerCancelled(): void {
    const cancelled = ++this.#cancelled;
    const n = this.#items.length;
    if (n >= COMPACT_MIN && cancelled * 2 > n) this.#compact();
  }

  /** Drops every timer. */
  clear(): void {
    for (const t of this.#items) placeTimer(t, t.when, null);
    this.#items = [];
    this.#whens = new Float64Array(MIN_CAPACITY);
    this.#seqs = new Float64Array(MIN_CAPACITY);
    this.#cancelled = 0;
  }

  #pop(): TimerHandle {
    const items = this.#items;
    const top = items[0];
    const last = items.pop()!;
    const n = items.length;
    if (n > 0) this.#siftDown(0, last, this.#whens[n], this.#seqs[n]);
    return top;
  }

  /** Drops the cancelled timers in one pass, then rebuilds the heap. */
  #compact(): void {
    const items = this.#items;
    const whens = this.#whens;
    const seqs = this.#seqs;
    let n = 0;
    for (let i = 0; i < items.length; i++) {
      const t = items[i];
      if (t.cancelled) continue;
      items[n] = t;
      whens[n] = whens[i];
      seqs[n] = seqs[i];
      n++;
    }
    items.length = n;
    this.#cancelled = 0;
    if (whens.length > 4 * n && whens.length > MIN_CAPACITY) {
      this.#resize(Math.max(MIN_CAPACITY, 2 * n));
    }
    for (let i = (n >> 1) - 1; i >= 0; i--) {
      this.#siftDown(i, items[i], this.#whens[i], this.#seqs[i]);
    }
  }

  /** Moves the keys to arrays of `capacity` slots. */
  #resize(capacity: number): void {
    const n = this.#items.length;
    const whens = new Float64Array(capacity);
    const seqs = new Float64Array(capacity);
    whens.set(this.#whens.subarray(0, n));
    seqs.set(this.#seqs.subarray(0, n));
    this.#whens = whens;
    this.#seqs = seqs;
  }

  /** Places `item`, keyed (`when`, `seq`), at `i` or below. */
  #siftDown(i: number, item: TimerHandle, when: number, seq: number): void {
    const items = this.#items;
    const whens = this.#whens;
    const seqs = this.#seqs;
    const n = items.length;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      let cw = whens[c];
      let cs = seqs[c];
      const r = c + 1;
      if (r < n) {
        const rw = whens[r];
        if (rw < cw || (rw === cw && seqs[r] < cs)) {
          c = r;
          cw = rw;
          cs = seqs[r];
        }
      }
      if (!(cw < when || (cw === when && cs < seq))) break;
      items[i] = items[c];
      whens[i] = cw;
      seqs[i] = cs;
      i = c;
    }
    items[i] = item;
    whens[i] = when;
    seqs[i] = seq;
  }
}
