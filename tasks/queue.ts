/**
 * `Queue`, `PriorityQueue` and `LifoQueue`: hand items from producer tasks
 * to consumer tasks, and the errors they throw.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { Future } from "../futures/future.ts";
import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import { checkOptions, Deque } from "../futures/_runtime.ts";
import {
  addWaiter,
  bindLoop,
  isPending,
  rejected,
  resolved,
  Waiter,
  WaiterQueue,
} from "./_waiter.ts";

/**
 * Thrown by `getNowait()` when the queue is empty.
 *
 * PEP 3156 (as in asyncio): `QueueEmpty`.
 *
 * @example
 * ```ts
 * import { Queue, QueueEmpty } from "@tulip/tulip";
 * import { assertThrows } from "@std/assert";
 *
 * assertThrows(() => new Queue().getNowait(), QueueEmpty);
 * ```
 */
export class QueueEmpty extends Error {
  /**
   * Makes the error.
   *
   * @param message What could not be done.
   */
  constructor(message = "Cannot get an item: the queue is empty") {
    super(message);
    this.name = "QueueEmpty";
  }
}

/**
 * Thrown by `putNowait()` when the queue holds `maxsize` items.
 *
 * PEP 3156 (as in asyncio): `QueueFull`.
 *
 * @example
 * ```ts
 * import { Queue, QueueFull } from "@tulip/tulip";
 * import { assertThrows } from "@std/assert";
 *
 * const q = new Queue<string>(1);
 * q.putNowait("a");
 * assertThrows(() => q.putNowait("b"), QueueFull);
 * ```
 */
export class QueueFull extends Error {
  /**
   * Makes the error.
   *
   * @param message What could not be done.
   */
  constructor(message = "Cannot put an item: the queue is full") {
    super(message);
    this.name = "QueueFull";
  }
}

/**
 * The error of a put, or of a get from an empty queue, after the queue was
 * shut down with `shutdown()`.
 *
 * PEP 3156 (as in asyncio 3.13): `QueueShutDown`.
 *
 * @example
 * ```ts
 * import { Queue, QueueShutDown } from "@tulip/tulip";
 * import { assertThrows } from "@std/assert";
 *
 * const q = new Queue<number>();
 * q.shutdown();
 * assertThrows(() => q.putNowait(1), QueueShutDown);
 * ```
 */
export class QueueShutDown extends Error {
  /**
   * Makes the error.
   *
   * @param message What could not be done.
   */
  constructor(message = "Cannot use the queue: it is shut down") {
    super(message);
    this.name = "QueueShutDown";
  }
}

// A queue's maxsize: any integer (0 or less: no limit, as in asyncio), or
// Infinity.
function checkMaxsize(value: unknown, what: string): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot create ${what}: expected a number, received ${typeof value}`,
    );
  }
  if (!Number.isInteger(value) && value !== Infinity) {
    throw new RangeError(
      `Cannot create ${what}: expected an integer or Infinity, received ${
        formatReceived(value)
      }`,
    );
  }
  return value;
}

/** Options for `Queue` and `LifoQueue`. */
export interface QueueOptions {
  /**
   * The loop the queue's futures belong to.
   *
   * @default {the running loop at the first wait}
   */
  loop?: SchedulingLoop;
}

/**
 * Options for `PriorityQueue`.
 *
 * @typeParam T The type of the items.
 */
export interface PriorityQueueOptions<T> extends QueueOptions {
  /**
   * Orders two items: negative when `a` comes out first, positive when `b`
   * does, `0` when they tie (ties come out first in, first out).
   *
   * @default {numbers and strings in ascending order; arrays element by
   * element, so `[priority, payload]` pairs sort by priority}
   */
  compare?: (a: T, b: T) => number;
}

// How a queue keeps its items: FIFO, LIFO or a heap.
interface Store<T> {
  readonly length: number;
  /** Throws (a TypeError) if `item` cannot be stored. */
  check(item: T): void;
  push(item: T): void;
  /** Removes the next item; the store is not empty. */
  take(): T;
  /** Puts back an item that was just taken, as the next one out. */
  restore(item: T): void;
  // Takes out the most recently added occurrence of item, if any.
  remove(item: T): boolean;
  clear(): void;
}

class FifoStore<T> implements Store<T> {
  #items = new Deque<T>();
  get length(): number {
    return this.#items.length;
  }
  check(_item: T): void {}
  push(item: T): void {
    this.#items.push(item);
  }
  take(): T {
    return this.#items.shift() as T;
  }
  restore(item: T): void {
    this.#items.unshift(item);
  }
  remove(item: T): boolean {
    const items = this.#items;
    const later: T[] = [];
    let found = false;
    while (items.length > 0) {
      const x = items.pop() as T;
      if (Object.is(x, item)) {
        found = true;
        break;
      }
      later.push(x);
    }
    for (let i = later.length - 1; i >= 0; i--) items.push(later[i]);
    return found;
  }
  clear(): void {
    this.#items.clear();
  }
}

class LifoStore<T> implements Store<T> {
  #items: T[] = [];
  get length(): number {
    return this.#items.length;
  }
  check(_item: T): void {}
  push(item: T): void {
    this.#items.push(item);
  }
  take(): T {
    return this.#items.pop() as T;
  }
  restore(item: T): void {
    this.#items.push(item);
  }
  remove(item: T): boolean {
    const items = this.#items;
    for (let i = items.length - 1; i >= 0; i--) {
      if (Object.is(items[i], item)) {
        items.splice(i, 1);
        return true;
      }
    }
    return false;
  }
  clear(): void {
    this.#items = [];
  }
}

function kind(x: unknown): string {
  if (typeof x === "number" || typeof x === "bigint") return "number";
  if (typeof x === "string") return "string";
  if (Array.isArray(x)) return "array";
  return x === null ? "null" : typeof x;
}

// The default order: numbers (and bigints) and strings ascending, arrays
// element by element. Inside arrays, elements of other kinds count as equal
// (a payload is never compared); two elements of different orderable kinds
// cannot be ordered.
function defaultCompare(a: unknown, b: unknown, nested = false): number {
  const ka = kind(a);
  const kb = kind(b);
  if (ka === kb && (ka === "number" || ka === "string")) {
    return (a as number) < (b as number)
      ? -1
      : (a as number) > (b as number)
      ? 1
      : 0;
  }
  if (ka === "array" && kb === "array") {
    const xs = a as unknown[];
    const ys = b as unknown[];
    const n = Math.min(xs.length, ys.length);
    for (let i = 0; i < n; i++) {
      const c = defaultCompare(xs[i], ys[i], true);
      if (c !== 0) return c;
    }
    return xs.length - ys.length;
  }
  const orderable = (k: string) =>
    k === "number" || k === "string" || k === "array";
  if (nested && (!orderable(ka) || !orderable(kb))) return 0;
  throw new TypeError(
    `Cannot order PriorityQueue items: expected numbers, strings or arrays (or give a compare option), received ${ka} and ${kb}`,
  );
}

interface Entry<T> {
  item: T;
  seq: number;
}

// A binary min-heap. Equal items keep their insertion order (`seq`). Each
// operation finds where items go before moving any, so a comparator that
// throws leaves the heap as it was.
class HeapStore<T> implements Store<T> {
  #heap: Entry<T>[] = [];
  #seq = 0;
  #restored = 0;
  readonly #compare: (a: T, b: T) => number;
  readonly #checked: boolean;

  constructor(compare?: (a: T, b: T) => number) {
    this.#compare = compare ?? defaultCompare;
    this.#checked = compare === undefined;
  }

  get length(): number {
    return this.#heap.length;
  }

  check(item: T): void {
    if (this.#checked) defaultCompare(item, item);
  }

  push(item: T): void {
    this.#insert({ item, seq: this.#seq++ });
  }

  take(): T {
    const heap = this.#heap;
    const top = heap[0];
    const n = heap.length - 1;
    const last = heap[n];
    const path: number[] = [];
    for (let i = 0;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.#less(heap[c + 1], heap[c])) c++;
      if (!this.#less(heap[c], last)) break;
      path.push(c);
      i = c;
    }
    heap.pop();
    if (n > 0) {
      let hole = 0;
      for (const c of path) {
        heap[hole] = heap[c];
        hole = c;
      }
      heap[hole] = last;
    }
    return top.item;
  }

  restore(item: T): void {
    this.#insert({ item, seq: --this.#restored });
  }

  remove(item: T): boolean {
    let victim: Entry<T> | null = null;
    for (const e of this.#heap) {
      if (Object.is(e.item, item) && (victim === null || e.seq > victim.seq)) {
        victim = e;
      }
    }
    if (victim === null) return false;
    // Rare (a cancelled put): rebuild from the remaining entries, which
    // keep their sequence numbers and so their order among ties.
    const rest = this.#heap.filter((e) => e !== victim);
    this.#heap = [];
    for (const e of rest) this.#insert(e);
    return true;
  }

  clear(): void {
    this.#heap = [];
  }

  #less(a: Entry<T>, b: Entry<T>): boolean {
    const c = this.#compare(a.item, b.item);
    return c < 0 || (c === 0 && a.seq < b.seq);
  }

  #insert(entry: Entry<T>): void {
    const heap = this.#heap;
    let steps = 0;
    for (let i = heap.length; i > 0; steps++) {
      const parent = (i - 1) >> 1;
      if (!this.#less(entry, heap[parent])) break;
      i = parent;
    }
    let hole = heap.length;
    heap.push(entry);
    for (; steps > 0; steps--) {
      const parent = (hole - 1) >> 1;
      heap[hole] = heap[parent];
      hole = parent;
    }
    heap[hole] = entry;
  }
}

// A waiting putter (its item is the payload). Its item moves in when a
// slot frees; until its consumer resumes, shutdown() can still take the
// item out and fail the put, as asyncio's woken putter finds the queue shut
// down when it resumes.
class Putter<T> extends Waiter<void, T> {
  #error: { error: unknown } | null = null;

  /** Fails a put whose item moved in but was taken out again. */
  withdraw(error: unknown): void {
    this.#error = { error };
  }

  override result(): void {
    super.result(); // throws when pending, failed or cancelled
    if (this.#error !== null) throw this.#error.error;
  }

  override exception(): unknown {
    const exc = super.exception();
    return exc !== undefined ? exc : this.#error?.error;
  }
}

// A waiting getter. It is woken with a claim on one of the queue's items,
// not with a particular item: the first read of its result (when its
// consumer resumes) takes whatever item is next then, as asyncio's woken
// getter calls get_nowait() when it resumes. So a PriorityQueue or a
// LifoQueue hands it the item due at that moment, not the one whose put
// woke it; and after shutdown(true) dropped the items, the get fails.
class Getter<T> extends Waiter<T> {
  #take: (() => T) | null = null;
  #item: T | undefined = undefined;
  #error: { error: unknown } | null = null;

  /** Wakes the getter; `take` takes its item out of the queue. */
  grant(take: () => T): void {
    this.#take = take;
    this.setResult(undefined as T);
  }

  override result(): T {
    super.result(); // throws when pending, failed or cancelled
    const take = this.#take;
    if (take !== null) {
      this.#take = null;
      try {
        this.#item = take();
      } catch (error) {
        this.#error = { error };
      }
    }
    if (this.#error !== null) throw this.#error.error;
    return this.#item as T;
  }

  override exception(): unknown {
    const exc = super.exception();
    if (exc !== undefined) return exc;
    try {
      this.result();
    } catch (e) {
      return e;
    }
    return undefined;
  }
}

// Lets the subclasses below swap the store without making it public: a
// friend accessor (see loop/_handle.ts), set in Queue's static block.
let setStore: <T>(queue: Queue<T>, store: Store<T>) => void;

/**
 * A first-in, first-out queue for passing items between tasks, optionally
 * bounded.
 *
 * `put()` and `get()` return futures, for `yield*` and `await` alike; `put()`
 * waits while the queue holds `maxsize` items, `get()` while it is empty.
 * `putNowait()` and `getNowait()` never wait: they throw `QueueFull` and
 * `QueueEmpty` instead. Waiting getters and putters are served first come
 * first served. A put wakes the first waiting getter and sets an item aside
 * for it (`qsize()` no longer counts it, and no other get takes it): the
 * getter takes the item that is next when it resumes, as in asyncio, so a
 * `PriorityQueue` or `LifoQueue` getter woken by one put and resuming after
 * more gets the smallest, or newest, item then.
 * `taskDone()` and `join()` track work: `join()` waits until every item put
 * was matched by a `taskDone()`. `shutdown()` stops the queue (Python
 * 3.13): puts then fail with `QueueShutDown`, and so do gets once the queue
 * is empty (at once with `shutdown(true)`, which also drops the items).
 *
 * Cancellation never loses an item. A cancelled getter leaves the line; a
 * getter that was woken but whose task is cancelled before it resumes
 * takes nothing, and its item goes to the next getter (or back to the
 * queue), for `yield*` and `await` alike. A put back item may leave
 * the queue briefly holding more than `maxsize` items. A cancelled
 * putter's item is not added, and neither is that of a putter whose task
 * is cancelled after its item moved in but before it resumed: the item
 * comes out again, as asyncio never adds it.
 *
 * PEP 3156 (as in asyncio): `Queue`.
 *
 * @typeParam T The type of the items.
 *
 * @example A producer and a consumer
 * ```ts
 * import { newEventLoop, Queue, QueueShutDown } from "@tulip/tulip";
 * import type { Coroutine } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const queue = new Queue<number>(2, { loop });
 * const seen: number[] = [];
 * function* consumer(): Coroutine<void> {
 *   try {
 *     for (;;) {
 *       seen.push(yield* queue.get());
 *       queue.taskDone();
 *     }
 *   } catch (e) {
 *     if (!(e instanceof QueueShutDown)) throw e;
 *   }
 * }
 * const worker = loop.createTask(consumer());
 * await loop.runUntilComplete(loop.createTask(function* () {
 *   for (let i = 0; i < 5; i++) yield* queue.put(i);
 *   yield* queue.join(); // every item had its taskDone()
 *   queue.shutdown(); // the consumer's get() fails: it returns
 *   yield* worker;
 * }));
 * assertEquals(seen, [0, 1, 2, 3, 4]);
 * loop.close();
 * ```
 */
export class Queue<T> {
  #loop: SchedulingLoop | null;
  readonly #maxsize: number;
  #store: Store<T> = new FifoStore<T>();
  #getters = new WaiterQueue<Getter<T>>(isPending);
  // Items in the store that belong to woken getters that have not taken
  // them yet: not counted by qsize(), nor available to other gets.
  #claims = 0;
  #putters = new WaiterQueue<Putter<T>>(isPending);
  // Putters whose item moved in, and whose consumer has not resumed yet.
  #admitted = new Set<Putter<T>>();
  #unfinished = 0;
  #joiners = new Set<Waiter<void>>();
  #shutdown = false;
  #dropping = false;

  static {
    setStore = (queue, store) => {
      queue.#store = store;
    };
  }

  /**
   * Makes an empty queue.
   *
   * @param maxsize The most items it holds: an integer, where `0` or less
   * (as in asyncio), or `Infinity`, means no limit.
   * @param options The loop to use.
   * @throws {TypeError} When `maxsize` is not a number.
   * @throws {RangeError} When `maxsize` is not an integer (nor `Infinity`).
   */
  constructor(maxsize = 0, options?: QueueOptions) {
    this.#maxsize = checkMaxsize(maxsize, `a ${new.target.name}`);
    checkOptions(options, `create a ${new.target.name}`, "{ loop }");
    this.#loop = options?.loop ?? null;
  }

  /**
   * The most items the queue holds; `0` or less, or `Infinity`, for no
   * limit.
   *
   * PEP 3156 (as in asyncio): `Queue.maxsize`.
   */
  get maxsize(): number {
    return this.#maxsize;
  }

  /**
   * Returns the number of items in the queue (not counting the items that
   * woken getters are about to take).
   *
   * PEP 3156 (as in asyncio): `Queue.qsize()`.
   *
   * @returns The number of items.
   */
  qsize(): number {
    return this.#store.length - this.#claims;
  }

  /**
   * Returns `true` when the queue holds no item.
   *
   * PEP 3156 (as in asyncio): `Queue.empty()`.
   *
   * @returns Whether the queue is empty.
   */
  empty(): boolean {
    return this.qsize() === 0;
  }

  /**
   * Returns `true` when the queue holds `maxsize` items (never, without a
   * limit).
   *
   * PEP 3156 (as in asyncio): `Queue.full()`.
   *
   * @returns Whether the queue is full.
   */
  full(): boolean {
    return this.#maxsize > 0 && this.qsize() >= this.#maxsize;
  }

  /**
   * Puts an item without waiting.
   *
   * PEP 3156 (as in asyncio): `Queue.put_nowait()`.
   *
   * @param item The item.
   * @throws {QueueFull} When the queue is full.
   * @throws {QueueShutDown} When the queue was shut down.
   * @throws {TypeError} From a `PriorityQueue`, when the item cannot be
   * ordered.
   */
  putNowait(item: T): void {
    if (this.#shutdown) {
      throw new QueueShutDown("Cannot put an item: the queue is shut down");
    }
    this.#store.check(item);
    if (this.full() || this.#putters.size > 0) {
      throw new QueueFull(
        `Cannot put an item: the queue is full, received maxsize=${this.#maxsize}`,
      );
    }
    this.#accept(item);
  }

  /**
   * Puts an item, waiting while the queue is full. Cancelling the future
   * (or the task waiting on it) before it completes withdraws the item. A
   * waiting item moves in as soon as a slot frees (so `qsize()` counts it
   * at once); if the putting task is cancelled before it resumes, the item
   * comes out again and the slot goes to the next putter — nothing is
   * added by a put that ends in `CancelledError`, as in asyncio. (Should a
   * getter take the item in that same iteration, it stays delivered.)
   *
   * PEP 3156 (as in asyncio): `Queue.put()`.
   *
   * @param item The item.
   * @returns A future that completes once the item is in the queue; it
   * fails with `QueueShutDown` if the queue is (or gets) shut down first.
   * @throws {TypeError} From a `PriorityQueue`, when the item cannot be
   * ordered.
   * @throws {InvalidStateError} When no loop was given and none is running.
   */
  put(item: T): Future<void> {
    const loop = this.#bind();
    if (this.#shutdown) {
      return rejected(
        loop,
        new QueueShutDown("Cannot put an item: the queue is shut down"),
      );
    }
    this.#store.check(item);
    if (!this.full() && this.#putters.size === 0) {
      this.#accept(item);
      return resolved(loop, undefined);
    }
    const putters = this.#putters;
    const putter: Putter<T> = new Putter(loop, item, {
      onCancel: () => putters.drop(),
      onRefuse: () => {
        this.#admitted.delete(putter);
        this.#withdraw(item);
      },
      onTake: () => this.#admitted.delete(putter),
    });
    putters.push(putter);
    return putter;
  }

  /**
   * Takes the next item without waiting.
   *
   * PEP 3156 (as in asyncio): `Queue.get_nowait()`.
   *
   * @returns The item.
   * @throws {QueueEmpty} When the queue is empty.
   * @throws {QueueShutDown} When the queue is empty and was shut down.
   */
  getNowait(): T {
    if (this.qsize() === 0) {
      if (this.#shutdown) {
        throw new QueueShutDown(
          "Cannot get an item: the queue is shut down and empty",
        );
      }
      throw new QueueEmpty();
    }
    return this.#take();
  }

  /**
   * Takes the next item, waiting while the queue is empty. Cancelling the
   * future (or the task waiting on it) withdraws from the line, and never
   * loses an item.
   *
   * PEP 3156 (as in asyncio): `Queue.get()`.
   *
   * @returns A future of the item; it fails with `QueueShutDown` if the
   * queue is (or gets) shut down while empty.
   * @throws {InvalidStateError} When no loop was given and none is running.
   */
  get(): Future<T> {
    const loop = this.#bind();
    if (this.qsize() > 0) return resolved(loop, this.#take());
    if (this.#shutdown) {
      return rejected(
        loop,
        new QueueShutDown(
          "Cannot get an item: the queue is shut down and empty",
        ),
      );
    }
    const getters = this.#getters;
    const getter: Getter<T> = new Getter(loop, undefined, {
      onCancel: () => getters.drop(),
      onRefuse: (item) => this.#giveBack(item),
    });
    getters.push(getter);
    return getter;
  }

  /**
   * Tells the queue that the work on an item taken from it is finished.
   * When every item put so far has had its `taskDone()`, `join()` waiters
   * wake.
   *
   * PEP 3156 (as in asyncio): `Queue.task_done()`.
   *
   * @throws {InvalidStateError} When called more times than items were put.
   */
  taskDone(): void {
    if (this.#unfinished <= 0) {
      throw new InvalidStateError(
        "Cannot call taskDone(): called more times than items were put, received unfinished=0",
      );
    }
    if (--this.#unfinished === 0) this.#finish();
  }

  /**
   * Waits until every item put so far has had its `taskDone()`; completes
   * at once when none is unfinished.
   *
   * PEP 3156 (as in asyncio): `Queue.join()`.
   *
   * @returns A future that completes when no item is unfinished.
   * @throws {InvalidStateError} When no loop was given and none is running.
   */
  join(): Future<void> {
    const loop = this.#bind();
    if (this.#unfinished === 0) return resolved(loop, undefined);
    return addWaiter(this.#joiners, loop);
  }

  /**
   * Shuts the queue down: later puts fail with `QueueShutDown`, waiting
   * putters fail with it now, and gets fail with it once the queue is
   * empty (waiting getters at once, since the queue is empty if they
   * wait). With `immediate`, the items left are dropped — each counts as
   * done for `join()` — so gets fail at once too. Calling it again may
   * upgrade to `immediate`.
   *
   * As in asyncio, where woken waiters look at the queue when they
   * resume: a putter whose item moved in but whose task has not resumed
   * yet fails too, and its item comes out; with `immediate`, a getter
   * woken by a put but not resumed yet fails as well.
   *
   * PEP 3156 (as in asyncio 3.13): `Queue.shutdown()`.
   *
   * @param immediate Drop the items left instead of letting them be taken.
   * @throws {TypeError} When `immediate` is not a boolean.
   */
  shutdown(immediate = false): void {
    if (typeof immediate !== "boolean") {
      throw new TypeError(
        `Cannot shut down the queue: immediate must be a boolean, received ${typeof immediate}`,
      );
    }
    this.#shutdown = true;
    // Woken putters that have not resumed do not put: their items come out.
    for (const putter of this.#admitted) {
      if (this.#withdraw(putter.payload)) {
        putter.withdraw(
          new QueueShutDown("Cannot put an item: the queue was shut down"),
        );
      }
    }
    this.#admitted.clear();
    if (immediate) {
      this.#dropping = true;
      // The items woken getters were about to take go too (their gets
      // fail, as asyncio's find the queue empty when they resume).
      const n = this.#store.length;
      this.#store.clear();
      this.#claims = 0;
      if (n > 0 && this.#unfinished > 0) {
        this.#unfinished = Math.max(0, this.#unfinished - n);
        if (this.#unfinished === 0) this.#finish();
      }
    }
    for (let g = this.#getters.shift(); g; g = this.#getters.shift()) {
      g.setException(
        new QueueShutDown("Cannot get an item: the queue was shut down"),
      );
    }
    for (let p = this.#putters.shift(); p; p = this.#putters.shift()) {
      p.setException(
        new QueueShutDown("Cannot put an item: the queue was shut down"),
      );
    }
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `${this.constructor.name} ${this.#describe()}`;
  }

  /** How Deno's `console.log` prints a queue. */
  [Symbol.for("Deno.customInspect")](): string {
    return `${this.constructor.name} ${this.#describe()}`;
  }

  #describe(): string {
    let out = `maxsize=${this.#maxsize} qsize=${this.qsize()}`;
    if (this.#getters.size > 0) out += ` getters=${this.#getters.size}`;
    if (this.#putters.size > 0) out += ` putters=${this.#putters.size}`;
    if (this.#unfinished > 0) out += ` unfinished=${this.#unfinished}`;
    if (this.#shutdown) out += " shutdown";
    return out;
  }

  #bind(): SchedulingLoop {
    return this.#loop = bindLoop(this.#loop, this.constructor.name);
  }

  // A new item enters, and wakes the first waiting getter (who only waits
  // while the queue is empty) with a claim on an item.
  #accept(item: T): void {
    this.#store.push(item);
    this.#unfinished++;
    this.#wakeGetter();
  }

  #wakeGetter(): void {
    const getter = this.#getters.shift();
    if (getter === undefined) return;
    this.#claims++;
    getter.grant(this.#takeClaimed);
  }

  // A woken getter's consumer resumes: it takes the next item. The count
  // of free slots does not change (the item was not counted any more).
  #takeClaimed = (): T => {
    if (this.#dropping) {
      throw new QueueShutDown("Cannot get an item: the queue was shut down");
    }
    this.#claims--;
    return this.#store.take();
  };

  #take(): T {
    const item = this.#store.take();
    this.#admitPutters();
    return item;
  }

  // Slots are free: let waiting putters in, first come first served.
  #admitPutters(): void {
    if (this.#shutdown) return; // the putters failed, or are failing
    while (!this.full() && this.#putters.size > 0) {
      const putter = this.#putters.shift()!;
      try {
        this.#store.push(putter.payload);
      } catch (e) {
        // A custom comparator threw: that put fails, the queue goes on.
        putter.setException(e);
        continue;
      }
      this.#unfinished++;
      this.#admitted.add(putter);
      putter.setResult(undefined);
    }
  }

  // A putter's task was cancelled after its item went in, before it
  // resumed: the put did not happen (as in asyncio, where the item enters
  // only when the putter resumes), so the item comes out and the slot goes
  // to the next putter. If a getter already took the item in that same
  // iteration it stays delivered.
  #withdraw(item: T): boolean {
    if (this.qsize() === 0 || !this.#store.remove(item)) return false;
    if (--this.#unfinished === 0) this.#finish();
    this.#admitPutters();
    return true;
  }

  // A woken getter's task refused its item: it goes back to the front,
  // and wakes the next getter (dropped after shutdown(true)).
  #giveBack(item: T): void {
    if (this.#dropping) {
      if (this.#unfinished > 0 && --this.#unfinished === 0) this.#finish();
      return;
    }
    this.#store.restore(item);
    this.#wakeGetter();
  }

  #finish(): void {
    const joiners = this.#joiners;
    this.#joiners = new Set();
    for (const j of joiners) j.setResult(undefined);
  }
}

/**
 * A queue that hands out the smallest item first, kept in a binary heap.
 *
 * By default numbers and strings come out in ascending order, and arrays
 * are compared element by element, so `[priority, payload]` pairs come out
 * by priority (payloads that are not numbers, strings or arrays are never
 * compared). Give `compare` for anything else. Items that tie come out
 * first in, first out. Everything else is as for `Queue`; an item a
 * refusing getter puts back comes out before the items it ties with.
 *
 * PEP 3156 (as in asyncio): `PriorityQueue`.
 *
 * @typeParam T The type of the items.
 *
 * @example Jobs by priority
 * ```ts
 * import { PriorityQueue } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const q = new PriorityQueue<[number, string]>();
 * q.putNowait([2, "write report"]);
 * q.putNowait([1, "fix bug"]);
 * q.putNowait([2, "answer mail"]); // same priority: the strings decide
 * assertEquals([q.getNowait()[1], q.getNowait()[1], q.getNowait()[1]], [
 *   "fix bug",
 *   "answer mail",
 *   "write report",
 * ]);
 * ```
 *
 * @example A custom order
 * ```ts
 * import { PriorityQueue } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const q = new PriorityQueue<{ due: number }>(0, { compare: (a, b) => a.due - b.due });
 * q.putNowait({ due: 30 });
 * q.putNowait({ due: 10 });
 * assertEquals(q.getNowait().due, 10);
 * ```
 */
export class PriorityQueue<T> extends Queue<T> {
  /**
   * Makes an empty priority queue.
   *
   * @param maxsize The most items it holds: an integer, where `0` or less,
   * or `Infinity`, means no limit.
   * @param options The loop to use, and the order of the items.
   * @throws {TypeError} When `maxsize` is not a number or `compare` not a
   * function.
   * @throws {RangeError} When `maxsize` is not an integer (nor `Infinity`).
   */
  constructor(maxsize = 0, options?: PriorityQueueOptions<T>) {
    super(maxsize, options);
    const compare = options?.compare;
    if (compare !== undefined && typeof compare !== "function") {
      throw new TypeError(
        `Cannot create a PriorityQueue: compare must be a function, received ${typeof compare}`,
      );
    }
    setStore(this, new HeapStore<T>(compare));
  }
}

/**
 * A queue that hands out the newest item first (a stack). Everything else
 * is as for `Queue`.
 *
 * PEP 3156 (as in asyncio): `LifoQueue`.
 *
 * @typeParam T The type of the items.
 *
 * @example Last in, first out
 * ```ts
 * import { LifoQueue } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const q = new LifoQueue<number>();
 * q.putNowait(1);
 * q.putNowait(2);
 * assertEquals([q.getNowait(), q.getNowait()], [2, 1]);
 * ```
 */
export class LifoQueue<T> extends Queue<T> {
  /**
   * Makes an empty LIFO queue.
   *
   * @param maxsize The most items it holds: an integer, where `0` or less,
   * or `Infinity`, means no limit.
   * @param options The loop to use.
   * @throws {TypeError} When `maxsize` is not a number.
   * @throws {RangeError} When `maxsize` is not an integer (nor `Infinity`).
   */
  constructor(maxsize = 0, options?: QueueOptions) {
    super(maxsize, options);
    setStore(this, new LifoStore<T>());
  }
}
