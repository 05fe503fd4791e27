/**
 * `Deque`: a double-ended queue, O(1) at both ends at any length. Private
 * to `futures/`; other folders get it through `_runtime.ts`.
 *
 * @module
 */

const MIN_CAPACITY = 16;

/**
 * A double-ended queue on a power-of-two ring buffer: O(1) push and shift
 * at the back and at the front at any length (`Array.prototype.shift` is
 * O(n) on long arrays). It shrinks as it drains (to twice what it holds
 * once an eighth full), so a burst does not pin memory for ever, even when
 * a few items always stay. The loop's ready queue, the waiter lists
 * and the FIFO storage of the coordination primitives are built on it.
 *
 * @typeParam T The type of the items.
 */
export class Deque<T> {
  #items: (T | undefined)[] = new Array(MIN_CAPACITY);
  #mask = MIN_CAPACITY - 1;
  #head = 0;
  #length = 0;

  /** The number of items held. */
  get length(): number {
    return this.#length;
  }

  /**
   * Adds an item at the back.
   *
   * @param item The item.
   */
  push(item: T): void {
    if (this.#length > this.#mask) this.#resize((this.#mask + 1) * 2);
    this.#items[(this.#head + this.#length) & this.#mask] = item;
    this.#length++;
  }

  /**
   * Adds an item at the front.
   *
   * @param item The item.
   */
  unshift(item: T): void {
    if (this.#length > this.#mask) this.#resize((this.#mask + 1) * 2);
    this.#head = (this.#head - 1) & this.#mask;
    this.#items[this.#head] = item;
    this.#length++;
  }

  /**
   * Removes and returns the front item.
   *
   * @returns The item, or `undefined` when empty.
   */
  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const i = this.#head;
    const item = this.#items[i];
    this.#items[i] = undefined;
    this.#head = (i + 1) & this.#mask;
    if (--this.#length <= (this.#mask + 1) >> 3 && this.#mask >= 63) {
      this.#shrink();
    }
    return item;
  }

  /**
   * Removes and returns the back item.
   *
   * @returns The item, or `undefined` when empty.
   */
  pop(): T | undefined {
    if (this.#length === 0) return undefined;
    const i = (this.#head + this.#length - 1) & this.#mask;
    const item = this.#items[i];
    this.#items[i] = undefined;
    if (--this.#length <= (this.#mask + 1) >> 3 && this.#mask >= 63) {
      this.#shrink();
    }
    return item;
  }

  /**
   * Returns the front item without removing it.
   *
   * @returns The item, or `undefined` when empty.
   */
  peek(): T | undefined {
    return this.#length === 0 ? undefined : this.#items[this.#head];
  }

  /** Removes every item. */
  clear(): void {
    this.#items = new Array(MIN_CAPACITY);
    this.#mask = MIN_CAPACITY - 1;
    this.#head = 0;
    this.#length = 0;
  }

  /**
   * Keeps only the items for which `keep` returns `true`, in order; O(n).
   *
   * @param keep The test.
   */
  filter(keep: (item: T) => boolean): void {
    const kept: T[] = [];
    for (const item of this) if (keep(item)) kept.push(item);
    this.clear();
    for (const item of kept) this.push(item);
  }

  /**
   * Iterates front to back.
   *
   * @returns An iterator over the items.
   */
  *[Symbol.iterator](): Generator<T> {
    for (let i = 0; i < this.#length; i++) {
      yield this.#items[(this.#head + i) & this.#mask] as T;
    }
  }

  // An item left a big ring now at most an eighth full: back to the
  // start once empty, else down to twice what it holds.
  #shrink(): void {
    if (this.#length === 0) {
      this.clear();
      return;
    }
    let fit = 2 * MIN_CAPACITY;
    while (fit < 2 * this.#length) fit *= 2;
    this.#resize(fit);
  }

  #resize(capacity: number): void {
    const items = new Array<T | undefined>(capacity);
    for (let i = 0; i < this.#length; i++) {
      items[i] = this.#items[(this.#head + i) & this.#mask];
    }
    this.#items = items;
    this.#mask = capacity - 1;
    this.#head = 0;
  }
}
