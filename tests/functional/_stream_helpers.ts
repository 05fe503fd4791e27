// Helpers for the stream-transport tests (TCP, TLS, Unix sockets).

import { concatBytes } from "../../transports/write_buffer.ts";
import type { Future } from "../../futures/future.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import type {
  CreateServerOptions,
  ExceptionContext,
  Server,
} from "../../loop/event_loop.ts";
import { Protocol } from "../../protocols/protocol.ts";
import type { Transport } from "../../transports/transport.ts";

import { within } from "./_io_helpers.ts";

export { bytes, text, within } from "./_io_helpers.ts";

/**
 * Runs the async function `fn` as a task on `loop` until it is done, with
 * within()'s real-time guard.
 */
export function run<T>(loop: DenoEventLoop, fn: () => Promise<T>): Promise<T> {
  return within(loop, loop.createTask(fn));
}

/**
 * Runs the async function `fn` as a task (see run()) on a fresh
 * DenoEventLoop, and closes the loop afterwards.
 */
export async function withLoop<T>(
  fn: (loop: DenoEventLoop) => Promise<T>,
): Promise<T> {
  const loop = new DenoEventLoop();
  try {
    return await run(loop, () => fn(loop));
  } finally {
    loop.close();
  }
}

/** The TCP port a server listens on. */
export function portOf(server: Server): number {
  return (server.addresses()[0] as Deno.NetAddr).port;
}

/** Waits about a millisecond of real time, letting I/O happen. */
export function sleepTick(loop: DenoEventLoop): Promise<void> {
  const fut = loop.createFuture<void>();
  loop.callLater(0.001, () => fut.setResult(undefined));
  return Promise.resolve(fut);
}

/** Waits until a server has made its `n`-th protocol and connected it. */
export async function accepted<P extends Recorder>(
  loop: DenoEventLoop,
  protocols: P[],
  n = 1,
): Promise<P> {
  while (protocols.length < n) await sleepTick(loop);
  const p = protocols[n - 1];
  await p.made;
  return p;
}

/**
 * A server on 127.0.0.1, port 0, made with `options`, whose connections are
 * `Recorder`s (echoing what arrives with `echo`), listed in `protocols` as
 * the server makes them.
 */
export async function recordingServer(
  loop: DenoEventLoop,
  options: CreateServerOptions & { echo?: boolean } = {},
): Promise<{ server: Server; protocols: Recorder[] }> {
  const { echo, ...serverOptions } = options;
  const protocols: Recorder[] = [];
  const server = await loop.createServer(
    () => {
      const p = new Recorder(loop, { echo });
      protocols.push(p);
      return p;
    },
    "127.0.0.1",
    0,
    serverOptions,
  );
  return { server, protocols };
}

/** Concatenates byte arrays. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  // A copy even of a single chunk: the caller may reuse its buffers.
  return chunks.length === 1 ? chunks[0].slice() : concatBytes(chunks, n);
}

/** `n` bytes of a recognisable pattern (so that reordering would show). */
export function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed + (i >> 8)) & 0xff;
  return out;
}

/** Collects what the loop's exception handler is given. */
export function collectErrors(loop: DenoEventLoop): ExceptionContext[] {
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => errors.push(context));
  return errors;
}

/**
 * A protocol that records every event, keeps what it receives, and offers
 * futures for the moments tests wait for.
 */
export class Recorder extends Protocol {
  readonly events: string[] = [];
  readonly chunks: Uint8Array[] = [];
  readonly made: Future<Transport>;
  readonly eof: Future<void>;
  readonly lost: Future<Error | undefined>;
  transport!: Transport;
  received = 0;
  /** What `eofReceived()` returns. */
  keepOpen = false;
  /** Echo what arrives. */
  echo = false;
  #waiting: [number, Future<void>][] = [];

  constructor(loop: DenoEventLoop, options?: { echo?: boolean }) {
    super();
    this.made = loop.createFuture();
    this.eof = loop.createFuture();
    this.lost = loop.createFuture();
    this.echo = options?.echo ?? false;
  }

  override connectionMade(transport: Transport): void {
    this.events.push("made");
    this.transport = transport;
    this.made.setResult(transport);
  }

  override dataReceived(data: Uint8Array): void {
    this.events.push("data");
    this.chunks.push(data);
    this.received += data.length;
    if (this.echo) this.transport.write(data);
    this.#waiting = this.#waiting.filter(([n, fut]) => {
      if (this.received < n) return true;
      if (!fut.done()) fut.setResult(undefined);
      return false;
    });
  }

  override eofReceived(): boolean {
    this.events.push("eof");
    this.eof.setResult(undefined);
    return this.keepOpen;
  }

  override connectionLost(exc?: Error): void {
    this.events.push("lost");
    this.lost.setResult(exc);
  }

  override pauseWriting(): void {
    this.events.push("pause");
  }

  override resumeWriting(): void {
    this.events.push("resume");
  }

  /** Resolves once at least `n` bytes have arrived in all. */
  until(n: number): Future<void> {
    const fut = this.made.getLoop().createFuture<void>();
    if (this.received >= n) fut.setResult(undefined);
    else this.#waiting.push([n, fut]);
    return fut;
  }

  /** Everything received so far, in one array. */
  data(): Uint8Array {
    return concat(this.chunks);
  }

  /** How many times `event` was recorded. */
  count(event: string): number {
    return this.events.filter((e) => e === event).length;
  }
}

/**
 * A plain TCP server that reads what its one client sends first (a
 * ClientHello) and closes without answering.
 */
export function hangUpServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(4096)).catch(() => null);
    conn.close();
    listener.close();
  })();
  return { port: (listener.addr as Deno.NetAddr).port, done };
}
