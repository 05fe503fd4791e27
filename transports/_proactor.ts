/**
 * The proactor contract: the only way the loop and its transports reach a
 * host's I/O.
 *
 * A host whose I/O is completion-based (Deno's reads, writes and accepts
 * are promises) is driven as asyncio's `proactor_events.py` drives IOCP:
 * the caller *starts* an operation and names a `Completion`; when the
 * operation settles, the proactor schedules `completion.done(value)` or
 * `completion.failed(error)` on the loop with `callSoon`, which also wakes
 * a loop that waits for events. Nothing else crosses the boundary, so
 * another host (Node, a browser, a test double) plugs in by implementing
 * `Proactor` for its own stream and listener handles.
 *
 * @module
 */

/**
 * Where one kind of operation reports. Make one per transport and kind of
 * operation and reuse it for every operation of that kind: the proactor
 * binds it once, so starting an operation allocates nothing of ours.
 */
export interface Completion<T> {
  /** Runs on the loop with the operation's result. */
  done(value: T): void;
  /** Runs on the loop with the operation's error. */
  failed(error: unknown): void;
  /**
   * Runs, outside the loop, when the operation settles after the loop was
   * closed, or had settled without its `done()` or `failed()` having run
   * yet: release whatever the result holds (close an accepted
   * connection), or keep it where no loop is needed to reach it (bytes
   * read from an application's connection). Nothing else may be done then.
   * `value` is `undefined` when the operation failed, with `error`.
   */
  orphaned?(value: T | undefined, error?: unknown): void;
  /**
   * Runs first, outside the loop, when the operation succeeds. It may
   * finish a completion that needs no user code (a write that sent
   * everything, with nobody to tell) by updating its own state, and then
   * returns `true`: `done()` is not scheduled. Returning `false` hands the
   * value to `done()` on the loop as usual.
   */
  inline?(value: T): boolean;
}

/**
 * A bound `Completion`, made by `Proactor.bind()` and passed to every
 * operation that reports to it.
 */
export interface CompletionPort<T> {
  /** The completion it reports to. */
  readonly completion: Completion<T>;
}

/**
 * What an `Owned` counts as when the loop closes: a transport or server
 * of the application, or part of the machinery (a STARTTLS relay's
 * connections), released but not counted.
 */
export type OwnedKind = "transport" | "server" | "internal";

/**
 * Something a transport or server of the loop holds open on the host (a
 * connection, a listener, a socket, a pipe): registered with
 * `Proactor.own()` while open, so that closing the loop can release it.
 */
export interface Owned {
  /**
   * Frees the host's handles at once, without calling back into the loop
   * (it is closed): operations in flight on them fail and reach
   * `orphaned()`. Called once, by `Proactor.closeAll()`.
   *
   * @returns Whether it was still open: its owner never closed it.
   */
  release(): boolean;
}

/** What `Proactor.closeAll()` released that its owners had left open. */
export interface LeftOpen {
  /** Transports (connections, endpoints, pipes, subprocesses). */
  readonly transports: number;
  /** Servers. */
  readonly servers: number;
}

/**
 * The operations a loop needs from a completion-based host.
 *
 * Each `start*` call begins one operation and returns at once; the result
 * arrives through the port's completion, always scheduled on the loop with
 * `callSoon` (never inline). A stream has at most one read and one write in
 * flight; the transports keep to that.
 *
 * @typeParam S The host's stream handle (a connection).
 * @typeParam L The host's listener handle.
 */
export interface Proactor<S, L> {
  /**
   * Binds a completion so that operations can report to it.
   *
   * @param completion Where the operations report.
   * @returns A port to pass to `start*`.
   */
  bind<T>(completion: Completion<T>): CompletionPort<T>;
  /**
   * Reads into `buffer`: completes with the byte count, or `null` at EOF.
   *
   * @param stream The stream.
   * @param buffer Where the bytes land; untouched by anyone until done.
   * @param port Where the count is reported.
   */
  startRead(
    stream: S,
    buffer: Uint8Array,
    port: CompletionPort<number | null>,
  ): void;
  /**
   * Writes `data`: completes with the number of bytes written, which may
   * be fewer than `data.length`.
   *
   * @param stream The stream.
   * @param data The bytes; not modified until done.
   * @param port Where the count is reported.
   */
  startWrite(stream: S, data: Uint8Array, port: CompletionPort<number>): void;
  /**
   * Half-closes the stream: the peer reads EOF, reading goes on.
   *
   * @param stream The stream.
   * @param port Where the end is reported.
   */
  startShutdown(stream: S, port: CompletionPort<void>): void;
  /**
   * Accepts one connection.
   *
   * @param listener The listener.
   * @param port Where the new stream is reported.
   */
  startAccept(listener: L, port: CompletionPort<S>): void;
  /**
   * Watches any other host operation already begun and reports it like the
   * others: a connect, a TLS handshake, a datagram sent or received, a
   * pipe's read, write, close or end, a child's exit, a name lookup, an
   * executor's job. Every promise of the host that the loop waits on goes
   * through here or a `start*` call, so that `pending` counts it and one
   * that settles after the loop closed reaches `orphaned()`.
   *
   * @param operation The host's promise.
   * @param port Where the result is reported.
   */
  watch<T>(operation: PromiseLike<T>, port: CompletionPort<T>): void;
  /**
   * Sets whether the reads of `stream` keep the host process alive, the
   * one in flight included.
   *
   * @param stream The stream.
   * @param port The port its reads report to.
   * @param ref `false` to let the process exit while only they are pending.
   */
  setRef(stream: S, port: CompletionPort<number | null>, ref: boolean): void;
  /**
   * Sets whether the read in flight on `stream` that reports to `port`
   * keeps the host process alive, leaving the stream's later reads as
   * they are where the host can (where it cannot, it sets the stream's
   * own setting, as `setRef()`; `true` then gives it back the host's
   * default).
   *
   * @param stream The stream.
   * @param port The port the read reports to.
   * @param ref `false` to let the process exit while only it is pending.
   */
  setReadRef(
    stream: S,
    port: CompletionPort<number | null>,
    ref: boolean,
  ): void;
  /**
   * Sets whether the write in flight that reports to `port` keeps the host
   * process alive (each write starts out keeping it alive). A host that
   * cannot tell returns `false`, and its writes always keep it alive.
   *
   * @param port The port the write reports to.
   * @param ref `false` to let the process exit while only it is pending.
   * @returns Whether the host could do it.
   */
  setWriteRef(port: CompletionPort<number>, ref: boolean): boolean;
  /**
   * Closes a stream or listener at once; operations in flight on it fail
   * (and still report).
   *
   * @param handle The stream or listener.
   */
  close(handle: S | L): void;
  /**
   * Registers something open that `closeAll()` must release; once per
   * transport or server, when it is made (again to change its kind).
   *
   * @param owned What to release.
   * @param kind What it counts as in `closeAll()`'s result.
   */
  own(owned: Owned, kind: OwnedKind): void;
  /**
   * Forgets `owned` once it is closed (or released); unknown ones are
   * ignored.
   *
   * @param owned What was registered.
   */
  disown(owned: Owned): void;
  /**
   * Releases everything still registered, so that nothing the loop
   * started keeps the host process alive; called by the loop's `close()`,
   * after which completions reach only `orphaned()`. Completions that
   * settled before and still wait for the loop reach `orphaned()` here.
   *
   * @returns How many transports and servers (not counting the internal
   * ones) were still open.
   */
  closeAll(): LeftOpen;
  /**
   * Wakes the loop if it waits for events, so that it runs an iteration
   * even though no callback was scheduled.
   */
  wakeUp(): void;
  /** The number of operations started and not yet settled. */
  readonly pending: number;
}
