// Pipe transports over Web streams: a ReadTransport that pulls a
// ReadableStream<Uint8Array> and a WriteTransport that feeds a
// WritableStream<Uint8Array>. connectReadPipe/connectWritePipe use them, and
// so do subprocess pipes. Each of the streams' promises is an operation
// watched by the proactor, which brings its completion to the loop, as in
// asyncio's proactor pipe transports.

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import type { Future } from "../futures/future.ts";
import type { BaseProtocol, Protocol } from "../protocols/protocol.ts";
import { deliverData, isBufferedProtocol } from "../protocols/deliver_data.ts";
import { FlowControlledTransport, WriteFlowControl } from "./flow_control.ts";
import { concatBytes } from "./write_buffer.ts";
import {
  checkWriteData,
  gatherWriteData,
  refuseWrite,
} from "./write_checks.ts";
import type { ReadTransport, Transport, WriteTransport } from "./transport.ts";
import type { SchedulingLoop } from "../loop/event_loop.ts";
import type { DenoIo } from "./_deno_proactor.ts";
import type { CompletionPort, Proactor } from "./_proactor.ts";
import { CORE_OPS, writableRid } from "./_deno_internals.ts";
import { makeProtocol } from "../futures/_runtime.ts";

/**
 * What a read pipe needs of its protocol (a `Protocol` has it all; a
 * `BufferedProtocol`'s `getBuffer()`/`bufferUpdated()` are used instead of
 * `dataReceived()`).
 */
export interface ReadPipeProtocol extends BaseProtocol {
  /** Receives each chunk read. */
  dataReceived(data: Uint8Array): void;
  /** Told of the end of the stream; the return value is ignored. */
  eofReceived(): boolean | void;
}

function noop(): void {}

/** Calls a protocol method, routing an error to the exception handler. */
export function callProtocol(
  loop: SchedulingLoop,
  transport: unknown,
  protocol: unknown,
  what: string,
  call: () => unknown,
): boolean {
  try {
    call();
    return true;
  } catch (exception) {
    loop.callExceptionHandler({
      message: `Exception in ${what}`,
      exception,
      transport,
      protocol,
    });
    return false;
  }
}

/**
 * Tells `protocol` its connection is lost, the last call a transport makes
 * to it; an exception goes to the loop's handler.
 */
export function reportLost(
  loop: SchedulingLoop,
  transport: unknown,
  protocol: BaseProtocol,
  error: Error | undefined,
): void {
  callProtocol(
    loop,
    transport,
    protocol,
    "protocol.connectionLost()",
    () => protocol.connectionLost(error),
  );
}

/** Makes an `Error` of anything thrown or rejected. */
export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

const IO_ERRORS = Object.values(Deno.errors) as (new () => Error)[];

// Deno's own I/O errors report a broken connection; anything else reaching
// a transport is a bug worth logging (as asyncio logs non-OSError errors).
export function isIoError(error: unknown): boolean {
  for (const cls of IO_ERRORS) if (error instanceof cls) return true;
  return false;
}

// Reports a pipe's fatal error to the loop's exception handler, unless it
// is Deno's report of a broken pipe (which connectionLost alone tells).
function reportUnlessIo(
  loop: SchedulingLoop,
  error: Error,
  message: string,
  transport: ReadTransport | WriteTransport,
  protocol: BaseProtocol,
): void {
  if (isIoError(error)) return;
  loop.callExceptionHandler({ message, exception: error, transport, protocol });
}

/**
 * A read transport over a `ReadableStream<Uint8Array>`.
 *
 * One read is in flight at a time, and only while reading: `pauseReading()`
 * stops pulling (a read already in flight completes, and its data is held
 * until `resumeReading()`). The end of the stream calls `eofReceived()`,
 * then `connectionLost(undefined)`; a stream error calls
 * `connectionLost(error)`. `close()` cancels the stream.
 */
export class ReadPipeTransport implements ReadTransport {
  readonly #loop: SchedulingLoop;
  readonly #proactor: Proactor<Deno.Conn, Deno.Listener>;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #extra: Record<string, unknown>;
  readonly #reads: CompletionPort<ReadableStreamReadResult<Uint8Array>>;
  #protocol: ReadPipeProtocol;
  #started = false;
  #paused = false;
  #reading = false;
  #closing = false;
  #lost = false;
  #held: ReadableStreamReadResult<Uint8Array> | null = null;
  // Ends the wait for the host's timer turn that `#cancel()` started, for
  // `release()`: a loop closed meanwhile leaves no timer behind.
  #endTurn: (() => void) | null = null;

  constructor(
    io: DenoIo,
    protocol: ReadPipeProtocol,
    readable: ReadableStream<Uint8Array>,
    extra: Record<string, unknown> = {},
  ) {
    this.#loop = io.loop;
    this.#proactor = io.proactor;
    this.#protocol = protocol;
    this.#reader = readable.getReader();
    this.#extra = { pipe: readable, ...extra };
    this.#reads = io.proactor.bind({
      done: this.#onRead,
      failed: this.#onReadError,
      orphaned: () => this.release(),
    });
  }

  /** Starts reading; called once, after `connectionMade`. */
  start(): void {
    this.#started = true;
    this.#readMore();
  }

  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    return name in this.#extra ? this.#extra[name] : defaultValue;
  }

  isClosing(): boolean {
    return this.#closing;
  }

  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol as ReadPipeProtocol;
  }

  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  isReading(): boolean {
    return !this.#paused && !this.#closing;
  }

  pauseReading(): void {
    if (this.#closing) return;
    this.#paused = true;
  }

  resumeReading(): void {
    if (this.#closing || !this.#paused) return;
    this.#paused = false;
    const held = this.#held;
    this.#held = null;
    if (held !== null) this.#loop.callSoon(this.#onRead, held);
    else this.#readMore();
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#held = null;
    this.#cancel(undefined);
  }

  /**
   * Cancels the stream after the loop closed (an operation settled then,
   * or the loop's `close()` releases what is open): nothing is reported,
   * and nothing else is done.
   *
   * @returns Whether the transport was still open.
   */
  release(): boolean {
    const open = !this.#closing;
    this.#proactor.disown(this);
    this.#closing = true;
    this.#lost = true;
    this.#held = null;
    this.#endTurn?.();
    // A reader whose lock was released at EOF rejects: nothing to free.
    this.#reader.cancel().catch(noop);
    return open;
  }

  /** Closes because of `error`, which `connectionLost` receives. */
  fail(error: Error, message: string): void {
    if (this.#lost) return;
    reportUnlessIo(this.#loop, error, message, this, this.#protocol);
    if (this.#closing) return;
    this.#closing = true;
    this.#held = null;
    this.#cancel(error);
  }

  /**
   * Cancels the stream; `connectionLost(error)` follows once the cancel is
   * done, or on the host's next timer turn when a read is in flight: a
   * source may finish its cancel only after that read
   * (`ReadableStream.from()` of an async generator waits for its next
   * item), which may be never. Not sooner: a stream Deno made (a child's
   * output) frees its pipe only once Deno's next turn has ended the read in
   * flight, and asyncio closes the pipe before it calls `connectionLost`
   * (a child writing after it must meet a closed pipe).
   */
  #cancel(error: Error | undefined): void {
    const finish = () => this.#finish(error);
    this.#proactor.watch(
      this.#reader.cancel(error),
      this.#proactor.bind<void>(
        this.#reading
          ? { done: noop, failed: noop }
          : { done: finish, failed: finish },
      ),
    );
    if (this.#reading) {
      const turn = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 0);
        this.#endTurn = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#proactor.watch(
        turn,
        this.#proactor.bind<void>({ done: finish, failed: finish }),
      );
    }
  }

  #readMore(): void {
    if (!this.#started || this.#paused || this.#reading || this.#closing) {
      return;
    }
    this.#reading = true;
    this.#proactor.watch(this.#reader.read(), this.#reads);
  }

  #onRead = (result: ReadableStreamReadResult<Uint8Array>): void => {
    this.#reading = false;
    if (this.#closing) return;
    if (this.#paused) {
      this.#held = result;
      return;
    }
    if (result.done) {
      this.#closing = true;
      const protocol = this.#protocol;
      callProtocol(
        this.#loop,
        this,
        protocol,
        "protocol.eofReceived()",
        () => protocol.eofReceived(),
      );
      this.#reader.releaseLock();
      this.#finish(undefined);
      return;
    }
    const data = result.value;
    if (!(data instanceof Uint8Array)) {
      this.fail(
        new TypeError(
          `Cannot read the pipe: chunks must be Uint8Array, received ${typeof data}`,
        ),
        "Fatal read error on pipe transport",
      );
      return;
    }
    if (data.length > 0) {
      const protocol = this.#protocol;
      // A short read is a view of the stream's whole read buffer (64 KiB
      // for a child's output): copied, so that a protocol keeping the
      // chunks holds at most twice what was written. A BufferedProtocol
      // gets the bytes in its own buffer instead.
      const delivered = deliverData(
        protocol,
        !isBufferedProtocol(protocol) &&
          2 * data.length < data.buffer.byteLength
          ? data.slice()
          : data,
        (error, call) =>
          this.fail(
            toError(error),
            `Fatal error: protocol.${call}() call failed`,
          ),
      );
      if (!delivered) return;
    }
    this.#readMore();
  };

  #onReadError = (error: unknown): void => {
    this.#reading = false;
    if (this.#closing) return;
    this.fail(toError(error), "Fatal read error on pipe transport");
  };

  #finish = (error: Error | undefined): void => {
    if (this.#lost) return;
    this.#lost = true;
    this.#closing = true;
    this.#proactor.disown(this);
    reportLost(this.#loop, this, this.#protocol, error);
  };
}

const EMPTY = new Uint8Array(0);

/**
 * A write transport over a `WritableStream<Uint8Array>`.
 *
 * Write path states, as in asyncio's proactor pipe transport:
 * - idle: nothing in flight, the buffer is empty;
 * - writing: one `writer.write()` is in flight (started once the writer is
 *   `ready`, which is the stream's backpressure); later writes gather in
 *   the buffer and go out as one chunk when it completes;
 * - closing: `close()` or `writeEof()` was called; the buffer is flushed,
 *   then the stream is closed and `connectionLost(undefined)` follows.
 * `abort()` drops the buffer and aborts the stream. A write error closes
 * the transport with `connectionLost(error)`. The bytes in flight plus the
 * buffer drive the water marks (`pauseWriting()` / `resumeWriting()`).
 *
 * On a stream Deno made over a resource (a child's stdin,
 * `Deno.stdout.writable`), each write calls Deno's write op itself (see
 * `writableRid()` in `_deno_internals.ts`): a write that a reader never
 * takes cannot be cancelled, but once the transport is aborted or the loop
 * closed, its op no longer keeps the process alive. Through the stream's
 * own `write()` (any other stream, or with the internals switched off), it
 * does until the reader reads or goes.
 */
export class WritePipeTransport extends FlowControlledTransport
  implements WriteTransport {
  readonly #loop: SchedulingLoop;
  readonly #proactor: Proactor<Deno.Conn, Deno.Listener>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #extra: Record<string, unknown>;
  readonly #flow: WriteFlowControl;
  readonly #writes: CompletionPort<void>;
  /** The resource written by its op directly, or -1 for the writer. */
  readonly #rid: number;
  readonly #opWrites: CompletionPort<number>;
  /** The write op in flight on the direct path, and what it writes. */
  #op: Promise<number> | null = null;
  #opData: Uint8Array = EMPTY;
  #protocol: BaseProtocol;
  #buffer: Uint8Array[] = [];
  #buffered = 0;
  #inFlight = 0;
  #closing = false;
  #eof = false;
  #failed = false;
  #failedWith: Error | undefined = undefined;
  #lost = false;
  #writerClosed = false;

  constructor(
    io: DenoIo,
    protocol: BaseProtocol,
    writable: WritableStream<Uint8Array>,
    extra: Record<string, unknown> = {},
  ) {
    super();
    const proactor = io.proactor;
    this.#loop = io.loop;
    this.#proactor = proactor;
    this.#protocol = protocol;
    this.#writer = writable.getWriter();
    // Only a stream still open with nothing queued may be bypassed: one
    // closed, errored or still writing goes through its writer, as ever.
    const size = this.#writer.desiredSize;
    this.#rid = size !== null && size > 0 ? writableRid(writable) ?? -1 : -1;
    this.#extra = { pipe: writable, ...extra };
    this.#flow = new WriteFlowControl(io.loop, this);
    const release = () => this.release();
    this.#writes = proactor.bind<void>({
      done: this.#onWritten,
      failed: this.#onWriteError,
      orphaned: release,
    });
    this.#opWrites = proactor.bind<number>({
      done: this.#onOpWritten,
      failed: this.#onWriteError,
      orphaned: release,
    });
    // Hear of the stream failing even while idle: watching its end is an
    // operation in flight for as long as the stream is open.
    proactor.watch(
      this.#writer.closed,
      proactor.bind<void>({
        done: noop,
        failed: this.#onWriteError,
        orphaned: release,
      }),
    );
  }

  protected override flowControl(): WriteFlowControl {
    return this.#flow;
  }

  getExtraInfo(name: string, defaultValue?: unknown): unknown {
    return name in this.#extra ? this.#extra[name] : defaultValue;
  }

  isClosing(): boolean {
    return this.#closing;
  }

  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol;
  }

  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  write(data: Uint8Array): void {
    checkWriteData(data);
    this.#write(data, "write");
  }

  writelines(list: Iterable<Uint8Array>): void {
    this.#write(gatherWriteData(list), "writelines");
  }

  #write(data: Uint8Array, what: string): void {
    if (this.#eof) refuseWrite(what, true);
    if (this.#closing) {
      // Failed, connectionLost not yet delivered: dropped quietly, as
      // asyncio does; otherwise refused, as by every transport.
      if (this.#failedWith !== undefined && !this.#lost) return;
      refuseWrite(what, false);
    }
    if (data.length === 0) return;
    // Copy: the caller may reuse its buffer once write() returns.
    this.#buffer.push(data.slice());
    this.#buffered += data.length;
    if (this.#inFlight === 0) this.#startWrite();
    this.#flow.update(this.getWriteBufferSize());
  }

  writeEof(): void {
    if (this.#eof) return;
    this.close();
    this.#eof = true;
  }

  canWriteEof(): boolean {
    return true;
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    // The producer stops; resumeWriting() still comes until connectionLost.
    this.#flow.endWrites();
    if (this.#inFlight === 0) this.#closeWriter();
  }

  abort(): void {
    this.#drop(undefined);
  }

  getWriteBufferSize(): number {
    return this.#buffered + this.#inFlight;
  }

  /**
   * Aborts the stream after the loop closed (an operation settled then,
   * or the loop's `close()` releases what is open): nothing is reported,
   * and nothing else is done. A close still flushing is cut short.
   *
   * @returns Whether the transport was still open.
   */
  release(): boolean {
    const open = !this.#closing;
    this.#proactor.disown(this);
    this.#lost = true;
    this.#failed = true;
    this.#closing = true;
    this.#buffer = [];
    this.#buffered = 0;
    this.#writerClosed = true;
    this.#unrefOp();
    // Rejects when the stream is closed or errored already: nothing to free.
    this.#writer.abort().catch(noop);
    return open;
  }

  /** Closes at once because of `error`, which `connectionLost` receives. */
  fail(error: Error, message: string): void {
    if (this.#lost || this.#failed) return;
    reportUnlessIo(this.#loop, error, message, this, this.#protocol);
    this.#drop(error);
  }

  /**
   * Closes at once because the reading end is gone: `connectionLost`
   * receives `error` when data was still buffered, else `undefined`.
   * Either way the pipe broke, so writes until then are dropped quietly.
   */
  peerGone(error: Error): void {
    if (this.#lost) return;
    this.#drop(this.getWriteBufferSize() > 0 ? error : undefined, error);
  }

  #startWrite(): void {
    const chunk = concatBytes(this.#buffer, this.#buffered);
    this.#buffer = [];
    this.#buffered = 0;
    this.#inFlight = chunk.length;
    if (this.#rid >= 0) return this.#startOp(chunk);
    const writer = this.#writer;
    this.#proactor.watch(
      writer.ready.then(() => writer.write(chunk)),
      this.#writes,
    );
  }

  #startOp(data: Uint8Array): void {
    this.#opData = data;
    const op = this.#op = CORE_OPS!.write(this.#rid, data);
    this.#proactor.watch(op, this.#opWrites);
  }

  /** Lets the process exit while the write op in flight is pending. */
  #unrefOp(): void {
    if (this.#op !== null) CORE_OPS!.unrefOpPromise(this.#op);
    this.#op = null;
    // Deno's op holds what it writes until it settles; the transport need not.
    this.#opData = EMPTY;
  }

  #onOpWritten = (n: number): void => {
    this.#op = null;
    if (this.#lost || this.#failed) return;
    // The op writes what the resource takes at once: the rest goes next.
    const rest = this.#opData.subarray(n);
    if (rest.length === 0) {
      // An empty view would still hold the whole chunk's buffer.
      this.#opData = EMPTY;
      return this.#onWritten();
    }
    this.#inFlight = rest.length;
    this.#startOp(rest);
    this.#flow.update(this.getWriteBufferSize());
  };

  #onWritten = (): void => {
    this.#inFlight = 0;
    if (this.#lost || this.#failed) return;
    if (this.#buffered > 0) this.#startWrite();
    this.#flow.update(this.getWriteBufferSize());
    if (this.#closing && this.#inFlight === 0) this.#closeWriter();
  };

  #onWriteError = (error: unknown): void => {
    this.#inFlight = 0;
    if (this.#writerClosed) return;
    this.fail(toError(error), "Fatal write error on pipe transport");
  };

  #closeWriter(): void {
    if (this.#writerClosed) return;
    this.#writerClosed = true;
    this.#proactor.watch(
      this.#writer.close(),
      this.#proactor.bind<void>({
        done: () => this.#finish(undefined),
        failed: (error) => this.#finish(toError(error)),
      }),
    );
  }

  /**
   * Drops the buffer, aborts the stream, then reports `error`: once the
   * abort is done, or on the loop's next turn when a write or a close is
   * in flight, since the stream aborts only after that write, which a
   * reader that never reads holds forever (asyncio's abort() closes the
   * pipe at once). With a `cause` (the pipe broke), writes until then are
   * dropped quietly; without one (`abort()`), refused.
   */
  #drop(error: Error | undefined, cause: Error | undefined = error): void {
    if (this.#failed || this.#lost) return;
    const writing = this.#inFlight > 0;
    this.#failed = true;
    this.#failedWith = cause;
    this.#closing = true;
    this.#buffer = [];
    this.#buffered = 0;
    this.#inFlight = 0;
    this.#flow.close();
    this.#unrefOp();
    const done = () => this.#finish(error);
    if (this.#writerClosed) {
      // A close is under way, which a stream may never finish: the
      // transport is lost at once all the same.
      this.#loop.callSoon(done);
      return;
    }
    this.#writerClosed = true;
    this.#proactor.watch(
      this.#writer.abort(error),
      this.#proactor.bind<void>(
        writing ? { done: noop, failed: noop } : { done, failed: done },
      ),
    );
    if (writing) this.#loop.callSoon(done);
  }

  #finish = (error: Error | undefined): void => {
    if (this.#lost) return;
    this.#lost = true;
    this.#closing = true;
    this.#proactor.disown(this);
    this.#flow.close();
    reportLost(this.#loop, this, this.#protocol, error);
  };
}

/**
 * Checks that a protocol factory is a function, at once (before anything
 * is opened); `what` completes "Cannot ...".
 */
export function checkProtocolFactory(factory: unknown, what: string): void {
  if (typeof factory !== "function") {
    throw new TypeError(
      `Cannot ${what}: protocolFactory must be a function, received ${typeof factory}`,
    );
  }
}

/**
 * Makes the protocol (`what` completes "Cannot ..." if the factory makes
 * none) and its transport, then calls `connectionMade` on the loop's next
 * turn; the future is done after it (or fails with what the
 * factory or `connectionMade` threw; the transport then fails with it, as
 * a fatal error: reported, and given to `connectionLost`, as on a Deno
 * stream transport).
 * A future cancelled before then closes the transport, as asyncio does.
 */
function connectPipe<P, T extends { close(): void }>(
  loop: SchedulingLoop,
  what: string,
  protocolFactory: () => P,
  makeTransport: (protocol: P) => T,
  made: (protocol: P, transport: T) => void,
  undo: (transport: T, error: Error) => void,
): Future<[T, P]> {
  const future = loop.createFuture<[T, P]>();
  let protocol: P;
  try {
    protocol = makeProtocol(protocolFactory, what);
  } catch (error) {
    future.setException(error);
    return future;
  }
  const transport = makeTransport(protocol);
  loop.callSoon(() => {
    try {
      made(protocol, transport);
    } catch (error) {
      undo(transport, toError(error));
      if (!future.done()) future.setException(error);
      return;
    }
    if (!future.done()) future.setResult([transport, protocol]);
    else transport.close();
  });
  return future;
}

/**
 * What to pass instead of `given`, for what asyncio's pipes take: a file
 * (Deno's have a stream of each way), a stream of the other way, or a file
 * descriptor.
 */
function streamHint(given: unknown, name: "readable" | "writable"): string {
  if (typeof given === "number") {
    return ` (a file descriptor: Deno gives streams instead, such as ${
      name === "readable" ? "Deno.stdin.readable" : "Deno.stdout.writable"
    })`;
  }
  if (typeof given !== "object" || given === null) return "";
  const other = name === "readable" ? WritableStream : ReadableStream;
  if (given instanceof other) {
    const method = name === "readable" ? "connectWritePipe" : "connectReadPipe";
    return ` (${method}() takes that kind)`;
  }
  const own = name === "readable" ? ReadableStream : WritableStream;
  return (given as Record<string, unknown>)[name] instanceof own
    ? ` (pass its .${name})`
    : "";
}

/** Checks the stream a pipe is connected to: of its kind, and unlocked. */
function checkStream(
  what: string,
  stream: unknown,
  kind: typeof ReadableStream | typeof WritableStream,
  holder: "reader" | "writer",
): void {
  const name = holder === "reader" ? "readable" : "writable";
  if (!(stream instanceof kind)) {
    throw new TypeError(
      `Cannot call ${what}(): ${name} must be a ${kind.name}, received ${
        formatReceived(stream)
      }${streamHint(stream, name)}`,
    );
  }
  if (stream.locked) {
    throw new InvalidStateError(
      `Cannot call ${what}(): the stream is locked to another ${holder}`,
    );
  }
}

/**
 * Registers a pipe transport with the proactor, so that closing the loop
 * releases it (a subprocess's pipes are its transport's to release).
 */
function owned<T extends ReadPipeTransport | WritePipeTransport>(
  io: DenoIo,
  transport: T,
): T {
  io.proactor.own(transport, "transport");
  return transport;
}

const MADE_FAILED = "Fatal error: protocol.connectionMade() call failed";

/** Connects a protocol to a readable stream; `connectionMade` comes first. */
export function connectReadPipe<P extends Protocol>(
  io: DenoIo,
  protocolFactory: () => P,
  readable: ReadableStream<Uint8Array>,
): Future<[ReadTransport, P]> {
  checkProtocolFactory(protocolFactory, "call connectReadPipe()");
  checkStream("connectReadPipe", readable, ReadableStream, "reader");
  return connectPipe<P, ReadPipeTransport>(
    io.loop,
    "call connectReadPipe()",
    protocolFactory,
    (protocol) => owned(io, new ReadPipeTransport(io, protocol, readable)),
    (protocol, transport) => {
      // Protocol types its transport as a full Transport; a read pipe is
      // only a ReadTransport, as in asyncio.
      protocol.connectionMade(transport as unknown as Transport);
      transport.start();
    },
    (transport, error) => transport.fail(error, MADE_FAILED),
  );
}

/** Connects a protocol to a writable stream; `connectionMade` comes first. */
export function connectWritePipe<P extends BaseProtocol>(
  io: DenoIo,
  protocolFactory: () => P,
  writable: WritableStream<Uint8Array>,
): Future<[WriteTransport, P]> {
  checkProtocolFactory(protocolFactory, "call connectWritePipe()");
  checkStream("connectWritePipe", writable, WritableStream, "writer");
  return connectPipe<P, WritePipeTransport>(
    io.loop,
    "call connectWritePipe()",
    protocolFactory,
    (protocol) => owned(io, new WritePipeTransport(io, protocol, writable)),
    (protocol, transport) => protocol.connectionMade(transport),
    (transport, error) => transport.fail(error, MADE_FAILED),
  );
}
