/**
 * `Barrier`: let a fixed number of tasks wait for each other.
 *
 * @module
 */

import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { Future } from "../futures/future.ts";
import { bindLoop, checkCount, rejected, resolved, Waiter } from "./_waiter.ts";
import { checkOptions } from "../futures/_runtime.ts";

/** Options for `Barrier`. */
export interface BarrierOptions {
  /**
   * The loop the barrier's futures belong to.
   *
   * @default {the running loop at the first wait}
   */
  loop?: SchedulingLoop;
}

/**
 * The error of a `Barrier` wait that cannot pass: the barrier was aborted,
 * or reset while the task waited.
 *
 * PEP 3156 (as in asyncio): `BrokenBarrierError`.
 *
 * @example
 * ```ts
 * import { BrokenBarrierError } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(new BrokenBarrierError("Cannot pass a Barrier: it was aborted").name, "BrokenBarrierError");
 * ```
 */
export class BrokenBarrierError extends Error {
  /**
   * Makes the error.
   *
   * @param message Why the barrier could not be passed.
   */
  constructor(message = "Cannot pass a Barrier: it is broken") {
    super(message);
    this.name = "BrokenBarrierError";
  }
}

// The states of asyncio's Barrier: parties arrive (FILLING); the round
// opens and its parties resume (DRAINING); reset() came while they did
// (RESETTING); abort() (BROKEN).
const FILLING = 0;
const DRAINING = 1;
const RESETTING = 2;
const BROKEN = 3;
const STATE_NAMES = ["filling", "draining", "resetting", "broken"] as const;

const RESET = "Cannot pass a Barrier: it was reset while waiting";
const ABORTED = "Cannot pass a Barrier: it was aborted";

// A party's wait. When the barrier opens it has its index, but until its
// consumer takes it (reads the result: the waiting task resumes) a reset()
// or abort() can still turn it into a BrokenBarrierError, as in asyncio,
// where a released task looks at the barrier's state when it resumes.
class Party extends Waiter<number> {
  #draining: Set<Party> | null = null;
  #left: ((draining: Set<Party>) => void) | null = null;
  #broken: BrokenBarrierError | null = null;

  /**
   * Opens the barrier for this party; it is in `draining` (if given) until
   * it resumes, and then calls `left(draining)`.
   */
  release(
    index: number,
    draining: Set<Party> | null,
    left: ((draining: Set<Party>) => void) | null = null,
  ): void {
    this.#draining = draining;
    this.#left = left;
    draining?.add(this);
    this.setResult(index);
  }

  /** Breaks a released party that has not resumed yet. */
  break(message: string): void {
    this.#broken = new BrokenBarrierError(message);
  }

  override result(): number {
    const index = super.result();
    this.#leave();
    if (this.#broken !== null) throw this.#broken;
    return index;
  }

  override exception(): unknown {
    const exc = super.exception();
    if (exc !== undefined) return exc;
    this.#leave();
    return this.#broken ?? undefined;
  }

  #leave(): void {
    const draining = this.#draining;
    if (draining === null) return;
    this.#draining = null;
    draining.delete(this);
    this.#left!(draining);
  }
}

/**
 * A meeting point for a fixed number of tasks (the parties): each calls
 * `wait()`, and all of them pass together once the last one arrives.
 *
 * As in asyncio, the task whose arrival opened the barrier goes on at once,
 * and the other parties of the round resume together in the next loop
 * iteration, in order of arrival; the round is over once they all have (the
 * barrier is "draining" until then): a task that calls `wait()` again
 * meanwhile waits for the round to drain, and then arrives in the next
 * round, so a quick party cannot fill the next round while others of its
 * round have not even left. A `reset()` or `abort()` while the round drains
 * reaches the parties that have not resumed yet: they get
 * `BrokenBarrierError` instead of their index (and `abort()` fails the tasks
 * waiting for the next round too).
 *
 * `wait()` completes with the task's arrival index, `0` to `parties - 1`,
 * different for each task of a round (`parties - 1` for the task whose
 * arrival opened the barrier), so that one of them can be picked for extra
 * work. (asyncio's index is the number of parties inside at arrival, which
 * repeats after a cancellation; this one never does.) A waiter that is
 * cancelled leaves the round, which then needs one more arrival. `abort()`
 * breaks the barrier: waits fail with `BrokenBarrierError` until
 * `reset()`; `reset()` fails the current waiters with `BrokenBarrierError`
 * and starts a new round.
 *
 * Unlike asyncio, `reset()` and `abort()` do not wait (there is no lock to
 * take on a single thread), so they return nothing.
 *
 * PEP 3156 (as in asyncio): `Barrier`.
 *
 * @example Three tasks meet
 * ```ts
 * import { Barrier, newEventLoop, sleep } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = newEventLoop();
 * const barrier = new Barrier(3, { loop });
 * const order: string[] = [];
 * // Each party arrives after `turns` iterations of the loop.
 * async function party(name: string, turns: number): Promise<number> {
 *   for (let i = 0; i < turns; i++) await sleep(0);
 *   order.push(`${name} arrives`);
 *   const index = await barrier.wait();
 *   order.push(`${name} passes`);
 *   return index;
 * }
 * const tasks = [
 *   loop.createTask(() => party("a", 3)),
 *   loop.createTask(() => party("b", 1)),
 *   loop.createTask(() => party("c", 2)),
 * ];
 * const indices: number[] = [];
 * for (const t of tasks) indices.push(await loop.runUntilComplete(t));
 * assertEquals(indices, [2, 0, 1]);
 * assertEquals(order.slice(0, 3), ["b arrives", "c arrives", "a arrives"]);
 * loop.close();
 * ```
 */
export class Barrier {
  #loop: SchedulingLoop | null;
  readonly #parties: number;
  #state = FILLING;
  // The parties of the round being filled, in order of arrival.
  #waiters = new Set<Party>();
  // The released parties that have not resumed (read their index) yet.
  #draining = new Set<Party>();
  // Parties that arrived while the last round drained or was reset.
  #blocked = new Set<Party>();
  // The drain is over and the blocked parties arrive in the next
  // iteration: they look at the barrier only then.
  #admitPending = false;

  /**
   * Makes a barrier for `parties` tasks.
   *
   * @param parties How many tasks must arrive before they all pass: an
   * integer >= 1.
   * @param options The loop to use.
   * @throws {TypeError} When `parties` is not a number.
   * @throws {RangeError} When `parties` is below 1 or not an integer.
   */
  constructor(parties: number, options?: BarrierOptions) {
    this.#parties = checkCount(parties, 1, "a Barrier");
    checkOptions(options, "create a Barrier", "{ loop }");
    this.#loop = options?.loop ?? null;
  }

  /**
   * How many tasks must arrive for the barrier to open.
   *
   * PEP 3156 (as in asyncio): `Barrier.parties`.
   */
  get parties(): number {
    return this.#parties;
  }

  /**
   * How many tasks wait in the current round.
   *
   * PEP 3156 (as in asyncio): `Barrier.n_waiting`.
   */
  get nWaiting(): number {
    return this.#state === FILLING ? this.#waiters.size : 0;
  }

  /**
   * Whether the barrier is broken (aborted and not reset since).
   *
   * PEP 3156 (as in asyncio): `Barrier.broken`.
   */
  get broken(): boolean {
    return this.#state === BROKEN;
  }

  /**
   * Arrives at the barrier and waits for the other parties. The last to
   * arrive opens the barrier for everyone in the round. While the last
   * round drains (or is being reset), the task first waits for it to end.
   *
   * PEP 3156 (as in asyncio): `Barrier.wait()`.
   *
   * @returns A future of the arrival index, `0` to `parties - 1`; it fails
   * with `BrokenBarrierError` if the barrier is broken, or is aborted or
   * reset before it opens.
   * @throws {InvalidStateError} When no loop was given and none is running.
   */
  wait(): Future<number> {
    const loop = this.#loop = bindLoop(this.#loop, "Barrier");
    if (this.#state === BROKEN) {
      return rejected(
        loop,
        new BrokenBarrierError("Cannot pass a Barrier: it is broken"),
      );
    }
    const party: Party = new Party(loop, undefined, {
      onCancel: () => {
        this.#waiters.delete(party);
        this.#blocked.delete(party);
      },
    });
    // Once a round has drained (its last party left), a new party arrives
    // at once; the parties that waited for the drain arrive when they run
    // (#admitBlocked), as asyncio's wake up then.
    if (this.#state === FILLING) {
      this.#arrive(party);
      // The party that opened the barrier goes on at once, as asyncio's
      // never waits: a plain done future, which a cancellation its task
      // had pending does not turn down (it comes at the next wait).
      if (party.done()) return resolved(loop, party.result());
    } else {
      this.#blocked.add(party);
    }
    return party;
  }

  /**
   * Starts a new round: tasks waiting now fail with `BrokenBarrierError`
   * (and so do the parties of a draining round that have not resumed
   * yet), and a broken barrier is usable again. As in asyncio, the failed
   * parties are inside until they resume: till then the barrier is
   * "resetting", and a `wait()` waits for them to leave.
   *
   * PEP 3156 (as in asyncio): `Barrier.reset()`.
   */
  reset(): void {
    switch (this.#state) {
      case FILLING:
        if (this.#waiters.size > 0) {
          this.#state = RESETTING;
          this.#breakWaiters(RESET);
        }
        break;
      case DRAINING:
        this.#state = RESETTING;
        this.#failRound(RESET);
        this.#drained(this.#draining); // over if nobody is left to resume
        break;
      case BROKEN:
        // Filling at once when nobody of the aborted round is still inside.
        this.#state = this.#draining.size > 0 ? RESETTING : FILLING;
        break;
    }
  }

  /**
   * Breaks the barrier: tasks waiting now (the parties of a draining round
   * that have not resumed yet too), and every later `wait()` until
   * `reset()`, fail with `BrokenBarrierError`. Use it when a party cannot
   * come, so that the others do not wait for ever.
   *
   * PEP 3156 (as in asyncio): `Barrier.abort()`.
   */
  abort(): void {
    this.#state = BROKEN;
    this.#failRound(ABORTED);
    this.#breakWaiters(ABORTED);
    if (!this.#admitPending) this.#fail(this.#blocked, ABORTED);
  }

  /** The tag printed by `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return `Barrier ${this.#describe()}`;
  }

  /** How Deno's `console.log` prints a barrier. */
  [Symbol.for("Deno.customInspect")](): string {
    return `Barrier ${this.#describe()}`;
  }

  #describe(): string {
    switch (this.#state) {
      case FILLING:
        return `waiting=${this.#waiters.size}/${this.#parties}`;
      case BROKEN:
        return `broken parties=${this.#parties}`;
      default:
        return `${STATE_NAMES[this.#state]} parties=${this.#parties}`;
    }
  }

  #arrive(party: Party): void {
    const waiters = this.#waiters;
    waiters.add(party);
    if (waiters.size < this.#parties) return;
    if (this.#parties === 1) {
      // The opener is the whole round: it has left once it goes on.
      waiters.clear();
      party.release(0, null);
      return;
    }
    // Open: indices in order of arrival. The party whose arrival opened
    // the barrier goes on at once, and the others resume together in the
    // next iteration, as asyncio's condition wakes them all and none has
    // to wait for its lock. The round has drained once the last of them
    // has resumed: only then do the parties that arrived meanwhile fill
    // the next round.
    this.#waiters = new Set();
    this.#state = DRAINING;
    const round = [...waiters];
    const opener = round.pop()!;
    const draining = this.#draining = new Set();
    opener.release(round.length, draining, this.#drained);
    round.forEach((party, index) => {
      party.release(index, draining, this.#drained);
    });
    // The parties resume in the next iteration (async functions: in the
    // microtasks right after their wake-up); the round ends after them.
    this.#loop!.callSoon(this.#endDrain, draining);
  }

  // reset() or abort() while a round fills: its parties fail, but (as in
  // asyncio, where they leave wait() when they resume) they are inside
  // the barrier until they resume, and a reset barrier is resetting till
  // then: later parties wait for them to leave.
  #breakWaiters(message: string): void {
    const waiters = [...this.#waiters];
    if (waiters.length === 0) return;
    this.#waiters = new Set();
    const draining = this.#draining = new Set();
    waiters.forEach((party, index) => {
      party.release(index, draining, this.#drained);
      party.break(message);
    });
    this.#loop!.callSoon(this.#endDrain, draining);
  }

  // A party of the round has resumed: once the last has, the round is
  // over, as asyncio's barrier is filling again once its last task has
  // left wait() — even for that task, which finds the barrier filling.
  // The parties that waited meanwhile arrive in the next iteration
  // (#admitBlocked), as asyncio's are notified then and arrive when they
  // run.
  #drained = (draining: Set<Party>): void => {
    if (
      draining === this.#draining && draining.size === 0 &&
      this.#state !== BROKEN
    ) {
      this.#state = FILLING;
      if (this.#blocked.size > 0 && !this.#admitPending) {
        this.#admitPending = true;
        this.#loop!.callSoon(this.#admitBlocked);
      }
    }
  };

  // The round's parties had their turn to resume: who has not resumed by
  // now keeps its index, and the round is over.
  #endDrain = (draining: Set<Party>): void => {
    if (draining !== this.#draining || draining.size === 0) return;
    this.#draining = new Set();
    if (this.#state === BROKEN) return;
    this.#state = FILLING;
    this.#admitBlocked();
  };

  // The parties that waited for the last round to drain arrive (or fail,
  // if the barrier was aborted since the drain ended).
  #admitBlocked = (): void => {
    this.#admitPending = false;
    if (this.#state === BROKEN) this.#fail(this.#blocked, ABORTED);
    if (this.#state !== FILLING) return;
    const blocked = [...this.#blocked];
    this.#blocked.clear();
    for (const p of blocked) {
      if (this.#state === FILLING) this.#arrive(p);
      else this.#blocked.add(p);
    }
  };

  // reset() or abort() while the round drains: the parties that have not
  // resumed get BrokenBarrierError instead of their index.
  #failRound(message: string): void {
    for (const p of [...this.#draining]) p.break(message);
  }

  #fail(parties: Set<Party>, message: string): void {
    const failed = [...parties];
    parties.clear();
    for (const p of failed) p.setException(new BrokenBarrierError(message));
  }
}
