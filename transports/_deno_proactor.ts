/**
 * `DenoProactor`: the proactor contract on Deno's promise-based sockets.
 *
 * @module
 */

import { CancelledError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import type {
  Completion,
  CompletionPort,
  LeftOpen,
  Owned,
  OwnedKind,
  Proactor,
} from "./_proactor.ts";
import { connRid, CORE_OPS as CORE } from "./_deno_internals.ts";
import { pendingResumptions } from "../futures/_runtime.ts";

function noop(): void {}

/**
 * A loop and its proactor: what every Deno transport, endpoint and
 * host-backed future is made with, so that all their operations report
 * through one proactor.
 */
export interface DenoIo {
  /** The loop. */
  readonly loop: SchedulingLoop;
  /** Its proactor. */
  readonly proactor: Proactor<Deno.Conn, Deno.Listener>;
}

/**
 * A future on `io.loop` that settles as `operation` does, through the
 * proactor: the operation counts as pending until it settles, its result
 * is set on the loop, and one that arrives after the loop closed (or after
 * the future was cancelled) goes to `release` instead. A `CancelledError`
 * cancels the future.
 *
 * @param io The loop and its proactor.
 * @param operation The host's promise, already begun.
 * @param release Frees a result nobody will take (closes a connection).
 * @returns The future.
 */
export function watchFuture<T>(
  io: DenoIo,
  operation: PromiseLike<T>,
  release?: (value: T) => void,
): Future<T> {
  const future = io.loop.createFuture<T>();
  io.proactor.watch(
    operation,
    io.proactor.bind<T>({
      done: (value) => {
        if (!future.done()) future.setResult(value);
        else release?.(value);
      },
      failed: (error) => {
        if (future.done()) return;
        if (error instanceof CancelledError) future.cancel(error.message);
        else future.setException(error);
      },
      orphaned: (value) => {
        if (value !== undefined) release?.(value);
      },
    }),
  );
  return future;
}

/** A port with its promise handlers made once, at `bind()` time. */
class DenoPort<T> implements CompletionPort<T> {
  readonly completion: Completion<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
  /** For reads on the fast path: `resolve` with 0 (EOF) made `null`. */
  resolveRead: ((n: number) => void) | null = null;
  /**
   * The read in flight on the fast path, for `setRef()`; the last write
   * started on it, for `setWriteRef()`.
   */
  operation: Promise<unknown> | null = null;
  /** Whether its reads should not keep Deno's event loop alive. */
  unref = false;
  /**
   * The resource id for the fast path (a port serves one connection), -1
   * when the connection's own methods are used, -2 until first needed.
   */
  rid = -2;

  constructor(
    completion: Completion<T>,
    resolve: (value: T) => void,
    reject: (error: unknown) => void,
  ) {
    this.completion = completion;
    this.resolve = resolve;
    this.reject = reject;
  }
}

/** A Deno connection or listener, as far as the proactor cares. */
type Closable = { close(): void };

/** Sets whether an op's promise keeps Deno's event loop alive. */
function setOpRef(operation: Promise<unknown>, ref: boolean): void {
  if (ref) CORE!.refOpPromise(operation);
  else CORE!.unrefOpPromise(operation);
}

/**
 * The proactor on Deno: each operation is a Deno promise whose settlement
 * is handed to the loop with `callSoon` (which wakes a waiting loop).
 * Settlements that arrive together (Deno resolves the operations it polled
 * in one go) share one callback: they queue up, in order, and the first
 * one schedules the run of the queue. A completion that asked the loop to
 * let async code run before its next callback (an HTTP server answering
 * pipelined requests from an async handler's promise) ends the run there,
 * and the rest wait for a callback scheduled anew: the loop runs that code
 * first, as it would between two callbacks. After the loop is closed,
 * settlements go to the completion's `orphaned()` instead, so nothing is
 * scheduled on a closed loop.
 *
 * Reads and writes on connections Deno made call Deno's `read` and
 * `write` ops directly (see `connRid()` in `_deno_internals.ts`), with the
 * same results and errors as `Deno.Conn`'s methods, which are used for
 * anything else and whenever the ops are not found or switched off.
 */
export class DenoProactor implements Proactor<Deno.Conn, Deno.Listener> {
  readonly #loop: SchedulingLoop;
  #pending = 0;
  // Settled operations waiting for the loop, three slots each: the
  // completion, whether it succeeded, and the value or error. The array
  // keeps its length (setting it to 0 would give up its storage, to be
  // grown again by the next batch); `#queued` counts the slots in use,
  // `#next` is the first not run yet (a run ended early).
  #queue: unknown[] = [];
  #queued = 0;
  #next = 0;
  #scheduled = false;
  // What the loop's transports and servers hold open, and what each is.
  readonly #owned = new Map<Owned, OwnedKind>();

  /**
   * Makes the proactor of one loop.
   *
   * @param loop The loop that receives the completions.
   */
  constructor(loop: SchedulingLoop) {
    this.#loop = loop;
  }

  /**
   * The number of operations started and not yet settled.
   *
   * @returns The count.
   */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Binds a completion: its promise handlers are made once, here.
   *
   * @param completion Where operations report.
   * @returns The port to pass to `start*`.
   */
  bind<T>(completion: Completion<T>): CompletionPort<T> {
    const loop = this.#loop;
    return new DenoPort<T>(
      completion,
      (value) => {
        this.#pending--;
        if (loop.isClosed()) completion.orphaned?.(value);
        else if (completion.inline?.(value) !== true) {
          this.#enqueue(completion, true, value);
        }
      },
      (error) => {
        this.#pending--;
        if (loop.isClosed()) completion.orphaned?.(undefined, error);
        else this.#enqueue(completion, false, error);
      },
    );
  }

  /**
   * Starts `stream.read(buffer)`.
   *
   * @param stream The connection.
   * @param buffer Where the bytes land.
   * @param port Where the count (or `null` at EOF) is reported.
   */
  startRead(
    stream: Deno.Conn,
    buffer: Uint8Array,
    port: CompletionPort<number | null>,
  ): void {
    const p = port as DenoPort<number | null>;
    const rid = p.rid === -2 ? p.rid = connRid(stream) ?? -1 : p.rid;
    if (rid < 0) return this.#start(stream.read(buffer), port);
    const resolve = p.resolveRead ??= (n) => {
      p.operation = null;
      p.resolve(n === 0 ? null : n);
    };
    const operation = p.operation = CORE!.read(rid, buffer);
    if (p.unref) CORE!.unrefOpPromise(operation);
    this.#pending++;
    operation.then(resolve, p.reject);
  }

  /**
   * Starts `stream.write(data)`.
   *
   * @param stream The connection.
   * @param data The bytes.
   * @param port Where the count written is reported.
   */
  startWrite(
    stream: Deno.Conn,
    data: Uint8Array,
    port: CompletionPort<number>,
  ): void {
    const p = port as DenoPort<number>;
    const rid = p.rid === -2 ? p.rid = connRid(stream) ?? -1 : p.rid;
    if (rid < 0) return this.#start(stream.write(data), port);
    const operation = p.operation = CORE!.write(rid, data);
    this.#start(operation, port);
  }

  /**
   * Sets whether the write in flight on `port` keeps Deno's event loop
   * alive: possible for a write on the fast path only (`Deno.Conn`'s
   * `write()` hides its op's promise, and its `unref()` covers reads).
   *
   * @param port The port the write reports to.
   * @param ref `false` to let the process exit while only it is pending.
   * @returns Whether it could.
   */
  setWriteRef(port: CompletionPort<number>, ref: boolean): boolean {
    const operation = (port as DenoPort<number>).operation;
    if (operation === null) return false;
    setOpRef(operation, ref);
    return true;
  }

  /**
   * Sets whether the reads of `stream` keep Deno's event loop alive (as
   * `Deno.Conn`'s `ref()` / `unref()` do), the one in flight included.
   *
   * @param stream The connection.
   * @param port The port its reads report to.
   * @param ref `false` to let the process exit while only they are pending.
   */
  setRef(
    stream: Deno.Conn,
    port: CompletionPort<number | null>,
    ref: boolean,
  ): void {
    if (ref) stream.ref();
    else stream.unref();
    const p = port as DenoPort<number | null>;
    p.unref = !ref;
    const operation = p.operation;
    if (operation === null) return;
    setOpRef(operation, ref);
  }

  /**
   * Sets whether the read in flight on `stream` keeps Deno's event loop
   * alive: on the fast path, that read's op alone, so the connection's
   * later reads are as its owner set them; otherwise through `Deno.Conn`'s
   * `ref()` / `unref()` (`Conn.read()` hides its op's promise), `true`
   * giving back Deno's default.
   *
   * @param stream The connection.
   * @param port The port its reads report to.
   * @param ref `false` to let the process exit while only it is pending.
   */
  setReadRef(
    stream: Deno.Conn,
    port: CompletionPort<number | null>,
    ref: boolean,
  ): void {
    const p = port as DenoPort<number | null>;
    if (p.rid < 0) {
      if (ref) stream.ref();
      else stream.unref();
      return;
    }
    const operation = p.operation;
    if (operation === null) return;
    setOpRef(operation, ref);
  }

  /**
   * Starts `stream.closeWrite()`.
   *
   * @param stream The connection.
   * @param port Where the end is reported.
   */
  startShutdown(stream: Deno.Conn, port: CompletionPort<void>): void {
    this.#start(stream.closeWrite(), port);
  }

  /**
   * Starts `listener.accept()`.
   *
   * @param listener The listener.
   * @param port Where the new connection is reported.
   */
  startAccept(listener: Deno.Listener, port: CompletionPort<Deno.Conn>): void {
    this.#start(listener.accept(), port);
  }

  /**
   * Reports a host operation already begun.
   *
   * @param operation The operation's promise.
   * @param port Where its result is reported.
   */
  watch<T>(operation: PromiseLike<T>, port: CompletionPort<T>): void {
    this.#start(operation, port);
  }

  /**
   * Closes a connection or listener; a second close is ignored.
   *
   * @param handle The connection or listener.
   */
  close(handle: Deno.Conn | Deno.Listener): void {
    try {
      (handle as Closable).close();
    } catch {
      // Already closed: Deno throws BadResource, and that is the goal.
    }
  }

  /**
   * Registers something open for `closeAll()`.
   *
   * @param owned What to release.
   * @param kind What it counts as.
   */
  own(owned: Owned, kind: OwnedKind): void {
    this.#owned.set(owned, kind);
  }

  /**
   * Forgets something closed.
   *
   * @param owned What was registered.
   */
  disown(owned: Owned): void {
    this.#owned.delete(owned);
  }

  /**
   * Releases everything still registered: listeners, connections,
   * sockets and pipes are closed (operations in flight on them settle,
   * after the loop closed, into `orphaned()`), children are let go of
   * (not killed). Then operations that settled before the loop closed,
   * whose completions wait for a turn of the loop that will not come,
   * reach `orphaned()`, as later ones do.
   *
   * @returns How many transports and servers were still open.
   */
  closeAll(): LeftOpen {
    let transports = 0;
    let servers = 0;
    const owned = [...this.#owned];
    this.#owned.clear();
    for (const [resource, kind] of owned) {
      let open: boolean;
      try {
        open = resource.release();
      } catch {
        // Freed already, one way or another: nothing is left to release.
        continue;
      }
      if (!open) continue;
      if (kind === "server") servers++;
      else if (kind === "transport") transports++;
    }
    const queue = this.#queue;
    const n = this.#queued;
    const from = this.#next;
    this.#queued = this.#next = 0;
    for (let i = from; i < n; i += 3) {
      const completion = queue[i] as Completion<unknown>;
      const value = queue[i + 2];
      queue[i] = queue[i + 2] = undefined;
      try {
        if (queue[i + 1]) completion.orphaned?.(value);
        else completion.orphaned?.(undefined, value);
      } catch {
        // Releasing what is gone already: nothing is left to do.
      }
    }
    return { transports, servers };
  }

  /** Wakes the loop if it waits, by scheduling a callback that does nothing. */
  wakeUp(): void {
    if (!this.#loop.isClosed()) this.#loop.callSoon(noop);
  }

  #enqueue(completion: Completion<never>, ok: boolean, value: unknown): void {
    const queue = this.#queue;
    const n = this.#queued;
    queue[n] = completion;
    queue[n + 1] = ok;
    queue[n + 2] = value;
    this.#queued = n + 3;
    if (!this.#scheduled) {
      this.#scheduled = true;
      this.#loop.callSoon(this.#run);
    }
  }

  /**
   * Runs the queued completions, in the order they settled, until one asks
   * for a microtask checkpoint (see the class's comment).
   */
  #run = (): void => {
    this.#scheduled = false;
    const queue = this.#queue;
    const n = this.#queued;
    let i = this.#next;
    while (i < n) {
      const completion = queue[i] as Completion<unknown>;
      const value = queue[i + 2];
      const ok = queue[i + 1];
      queue[i] = queue[i + 2] = undefined;
      this.#next = i += 3;
      try {
        if (ok) completion.done(value);
        else completion.failed(value);
      } catch (exception) {
        this.#loop.callExceptionHandler({
          message: "Exception in an I/O completion",
          exception,
        });
      }
      // closeAll() took the rest.
      if (this.#queued === 0) return;
      if (i < n && pendingResumptions() > 0) {
        // Once the completions run are as many as those left, the rest
        // moves to the front: settlements that keep arriving behind runs
        // that end early would otherwise grow the queue for good, never
        // empty to start over.
        const end = this.#queued;
        if (i >= end - i) {
          queue.copyWithin(0, i, end);
          queue.fill(undefined, end - i, end);
          this.#queued = end - i;
          this.#next = 0;
        }
        this.#scheduled = true;
        this.#loop.callSoon(this.#run);
        return;
      }
    }
    this.#next = 0;
    this.#queued = 0;
  };

  #start<T>(operation: PromiseLike<T>, port: CompletionPort<T>): void {
    const p = port as DenoPort<T>;
    this.#pending++;
    operation.then(p.resolve, p.reject);
  }
}
