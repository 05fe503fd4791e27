// DenoSockets over a proactor whose operations the test settles by hand, so
// that each order of events (a read settling after its caller gave up, a
// partial write) is reached on purpose.

import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { CancelledError } from "../../futures/errors.ts";
import type {
  Completion,
  CompletionPort,
  Proactor,
} from "../../transports/_proactor.ts";
import { DenoSockets } from "../../transports/_deno_sockets.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

type Started =
  | { kind: "read"; buffer: Uint8Array; port: CompletionPort<number | null> }
  | { kind: "write"; data: Uint8Array; port: CompletionPort<number> }
  | { kind: "accept"; port: CompletionPort<Deno.Conn> };

/** A proactor that records operations; `settle*` completes them on the loop. */
class ManualProactor implements Proactor<Deno.Conn, Deno.Listener> {
  readonly started: Started[] = [];
  pending = 0;
  constructor(readonly loop: VirtualTimeLoop) {}
  bind<T>(completion: Completion<T>): CompletionPort<T> {
    return { completion };
  }
  startRead(
    _s: Deno.Conn,
    buffer: Uint8Array,
    port: CompletionPort<number | null>,
  ) {
    this.started.push({ kind: "read", buffer, port });
  }
  startWrite(_s: Deno.Conn, data: Uint8Array, port: CompletionPort<number>) {
    this.started.push({ kind: "write", data, port });
  }
  startShutdown() {}
  startAccept(_l: Deno.Listener, port: CompletionPort<Deno.Conn>) {
    this.started.push({ kind: "accept", port });
  }
  watch<T>(operation: PromiseLike<T>, port: CompletionPort<T>) {
    operation.then((value) =>
      this.loop.callSoon(() => port.completion.done(value))
    );
  }
  setRef() {
    throw new Error("setRef() changes the connection's own setting");
  }
  readonly readRefs: boolean[] = [];
  setReadRef(_s: Deno.Conn, _p: CompletionPort<number | null>, ref: boolean) {
    this.readRefs.push(ref);
  }
  readonly writeRefs: boolean[] = [];
  setWriteRef(_port: CompletionPort<number>, ref: boolean) {
    this.writeRefs.push(ref);
    return true;
  }
  close() {}
  own() {}
  disown() {}
  closeAll() {
    return { transports: 0, servers: 0 };
  }
  wakeUp() {}
  /** Completes the oldest read with `bytes` (copied in), or EOF for null. */
  read(bytes: number[] | null): void {
    const i = this.started.findIndex((s) => s.kind === "read");
    const op = this.started.splice(i, 1)[0] as Extract<
      Started,
      { kind: "read" }
    >;
    if (bytes !== null) op.buffer.set(bytes);
    this.loop.callSoon(() => op.port.completion.done(bytes?.length ?? null));
  }
  /** Completes the oldest read with `bytes` after the loop closed. */
  orphanRead(bytes: number[]): void {
    const i = this.started.findIndex((s) => s.kind === "read");
    const op = this.started.splice(i, 1)[0] as Extract<
      Started,
      { kind: "read" }
    >;
    op.buffer.set(bytes);
    op.port.completion.orphaned!(bytes.length);
  }
  /** Completes the oldest write, having written `n` bytes. */
  wrote(n: number): Uint8Array {
    const i = this.started.findIndex((s) => s.kind === "write");
    const op = this.started.splice(i, 1)[0] as Extract<
      Started,
      { kind: "write" }
    >;
    this.loop.callSoon(() => op.port.completion.done(n));
    return op.data;
  }
}

/**
 * A connection of its own for each test: what is read and not taken stays
 * with the connection, for any loop's next read.
 */
function newConn(): Deno.Conn {
  return { read() {}, write() {} } as unknown as Deno.Conn;
}

/** Runs the loop past every callback scheduled so far. */
async function turn(loop: VirtualTimeLoop): Promise<void> {
  const f = loop.createFuture<void>();
  loop.callSoon(() => loop.callSoon(() => f.setResult()));
  await loop.runUntilComplete(f);
}

Deno.test("DenoSockets: bytes of a read whose caller gave up are split over the next readers", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const gaveUp = socks.recv(conn, 8);
  gaveUp.cancel();
  const a = socks.recv(conn, 2);
  const buf = new Uint8Array(2);
  const b = socks.recvInto(conn, buf);
  const c = socks.recv(conn, 10);
  // One read in flight, for the caller who gave up.
  assertEquals(proactor.started.length, 1);
  proactor.read([1, 2, 3, 4, 5]);
  assertEquals([...await loop.runUntilComplete(a)], [1, 2]);
  assertEquals(await loop.runUntilComplete(b), 2);
  assertEquals([...buf], [3, 4]);
  assertEquals([...await loop.runUntilComplete(c)], [5]);
  // All served from what was kept: no second read was needed.
  assertEquals(proactor.started.length, 0);
  loop.close();
});

Deno.test("DenoSockets: end of stream reached by an abandoned read is seen by every later read", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const gaveUp = socks.recv(conn, 8);
  await turn(loop);
  gaveUp.cancel();
  proactor.read(null);
  await turn(loop);
  assertEquals((await loop.runUntilComplete(socks.recv(conn, 4))).length, 0);
  assertEquals(
    await loop.runUntilComplete(socks.recvInto(conn, new Uint8Array(1))),
    0,
  );
  assertThrows(() => gaveUp.result(), CancelledError);
  loop.close();
});

Deno.test("DenoSockets: sendall() goes on after partial writes and keeps calls in order", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const first = socks.sendall(conn, new Uint8Array([1, 2, 3, 4]));
  const second = socks.sendall(conn, new Uint8Array([5]));
  assertEquals([...proactor.wrote(1)], [1, 2, 3, 4]);
  await turn(loop);
  assertEquals([...proactor.wrote(3)], [2, 3, 4]);
  await loop.runUntilComplete(first);
  assertEquals(second.done(), false);
  assertEquals([...proactor.wrote(1)], [5]);
  await loop.runUntilComplete(second);
  loop.close();
});

Deno.test("DenoSockets: sendall() cancelled part way sends no more of it", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const big = socks.sendall(conn, new Uint8Array([1, 2, 3, 4]));
  const next = socks.sendall(conn, new Uint8Array([9]));
  big.cancel();
  proactor.wrote(2);
  await turn(loop);
  // The next write is the next call's, not the rest of the cancelled one.
  assertEquals([...proactor.wrote(1)], [9]);
  await loop.runUntilComplete(next);
  loop.close();
});

Deno.test("DenoSockets: recvInto() cancelled while its read is in flight never writes into the caller's buffer; the bytes go to the next read", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const buf = new Uint8Array(4);
  const gaveUp = socks.recvInto(conn, buf);
  assertEquals(proactor.started.length, 1);
  gaveUp.cancel();
  // The read the cancelled call started completes afterwards.
  proactor.read([1, 2, 3]);
  await turn(loop);
  assertEquals([...buf], [0, 0, 0, 0]);
  const other = new Uint8Array(2);
  assertEquals(await loop.runUntilComplete(socks.recvInto(conn, other)), 2);
  assertEquals([...other], [1, 2]);
  assertEquals([...await loop.runUntilComplete(socks.recv(conn, 8))], [3]);
  assertEquals([...buf], [0, 0, 0, 0]);
  assertThrows(() => gaveUp.result(), CancelledError);
  loop.close();
});

Deno.test("DenoSockets: recvInto() fills only the count it reports, and the caller's buffer is not touched before the read completes", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const buf = new Uint8Array([9, 9, 9, 9, 9]);
  const reading = socks.recvInto(conn, buf.subarray(1, 4));
  const op = proactor.started[0] as Extract<Started, { kind: "read" }>;
  // The read lands in a buffer of the loop's, not the caller's.
  assertEquals(op.buffer.buffer === buf.buffer, false);
  proactor.read([1, 2]);
  assertEquals(await loop.runUntilComplete(reading), 2);
  assertEquals([...buf], [9, 1, 2, 9, 9]);
  loop.close();
});

Deno.test("DenoSockets: a write in flight whose callers all gave up no longer holds the process; one waiting behind it, or a new call, holds it again", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const a = socks.sendall(conn, new Uint8Array([1, 2, 3, 4]));
  const b = socks.sendall(conn, new Uint8Array([5]));
  a.cancel();
  await turn(loop);
  // b still waits behind the write: it keeps holding the process.
  assertEquals(proactor.writeRefs, []);
  b.cancel();
  await turn(loop);
  assertEquals(proactor.writeRefs, [false]);
  const c = socks.sendall(conn, new Uint8Array([6]));
  assertEquals(proactor.writeRefs, [false, true]);
  proactor.wrote(1);
  await turn(loop);
  assertEquals([...proactor.wrote(1)], [6]);
  await loop.runUntilComplete(c);
  // A write whose caller waits is never let go.
  assertEquals(proactor.writeRefs, [false, true]);
  loop.close();
});

Deno.test("DenoSockets: close() lets go of the writes in flight", () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  socks.sendall(conn, new Uint8Array([1, 2]));
  socks.close();
  assertEquals(proactor.writeRefs, [false]);
  loop.close();
});

Deno.test("DenoSockets: a task cancelled in the turn its recv() completed gives the bytes back to the next read (as tulip's StreamReader does)", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const reader = loop.createTask(async () => await socks.recv(conn, 8));
  await turn(loop);
  proactor.read([1, 2, 3]);
  // Runs after the read's completion, before the task resumes.
  loop.callSoon(() => reader.cancel());
  await turn(loop);
  assert(reader.cancelled());
  assertEquals([...await loop.runUntilComplete(socks.recv(conn, 2))], [1, 2]);
  const buf = new Uint8Array(4);
  assertEquals(await loop.runUntilComplete(socks.recvInto(conn, buf)), 1);
  assertEquals([...buf], [3, 0, 0, 0]);
  loop.close();
});

Deno.test("DenoSockets: a generator task cancelled in the turn its recvInto() completed gives the bytes back too", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const buf = new Uint8Array(4);
  const reader = loop.createTask(function* () {
    return yield* socks.recvInto(conn, buf);
  });
  await turn(loop);
  proactor.read([4, 5]);
  loop.callSoon(() => reader.cancel());
  await turn(loop);
  assert(reader.cancelled());
  assertEquals([...await loop.runUntilComplete(socks.recv(conn, 8))], [4, 5]);
  loop.close();
});

Deno.test("DenoSockets: bytes a cancelled task dropped stay taken while another taker of the future has them", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const read = socks.recv(conn, 8);
  const reader = loop.createTask(async () => await read);
  const other = loop.createTask(async () => await read);
  await turn(loop);
  proactor.read([7]);
  loop.callSoon(() => reader.cancel());
  await turn(loop);
  assertEquals([...await loop.runUntilComplete(other)], [7]);
  const next = socks.recv(conn, 8);
  proactor.read([8]);
  assertEquals([...await loop.runUntilComplete(next)], [8]);
  loop.close();
});

Deno.test("DenoSockets: bytes given back come before those of the read in flight for the next caller", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const reader = loop.createTask(async () => await socks.recv(conn, 8));
  const next = socks.recv(conn, 8);
  await turn(loop);
  proactor.read([1, 2]);
  loop.callSoon(() => reader.cancel());
  await turn(loop);
  // The next caller's read is in flight; it gets the bytes given back.
  assertEquals(proactor.started.length, 1);
  assertEquals([...await loop.runUntilComplete(next)], [1, 2]);
  proactor.read([3]);
  await turn(loop);
  assertEquals([...await loop.runUntilComplete(socks.recv(conn, 8))], [3]);
  loop.close();
});

Deno.test("DenoSockets: recvInto() whose buffer was detached during the call fails, saying so, and its bytes go to the next read", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const buf = new Uint8Array(4);
  const reading = socks.recvInto(conn, buf);
  // Transferring the buffer detaches it: buf is empty from now on.
  buf.buffer.transfer();
  proactor.read([1, 2]);
  await turn(loop);
  const error = await assertRejects(
    () => loop.runUntilComplete(reading),
    TypeError,
  );
  assertEquals(
    error.message,
    "Cannot call sockRecvInto(): buf was detached or shrunk during the call (it has 0 bytes now, 2 came); the bytes go to the next read",
  );
  assertEquals([...await loop.runUntilComplete(socks.recv(conn, 8))], [1, 2]);
  loop.close();
});

Deno.test("DenoSockets: bytes a cancelled task dropped after a later read took the next bytes are not given back out of order", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  // An abandoned read brings four bytes; two callers waiting behind it
  // take two each, in the same turn.
  const gaveUp = socks.recv(conn, 8);
  const reader = loop.createTask(async () => await socks.recv(conn, 2));
  await turn(loop);
  const later = socks.recv(conn, 2);
  gaveUp.cancel();
  proactor.read([1, 2, 3, 4]);
  // The first caller's task is cancelled before it resumes.
  loop.callSoon(() => reader.cancel());
  await turn(loop);
  assert(reader.cancelled());
  assertEquals([...await loop.runUntilComplete(later)], [3, 4]);
  // [1, 2] came before [3, 4]: handing them to the next read now would
  // put them after. They are dropped, as asyncio's would be.
  const next = socks.recv(conn, 8);
  await turn(loop);
  if (proactor.started.length > 0) proactor.read([5]);
  assertEquals([...await loop.runUntilComplete(next)], [5]);
  loop.close();
});

Deno.test("DenoSockets: sendall() whose data was detached during the call fails, saying how much was sent, instead of reporting it all sent", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const sending = socks.sendall(conn, new Uint8Array([1, 2, 3, 4]));
  const data = (proactor.started[0] as Extract<Started, { kind: "write" }>)
    .data;
  // Deno's write holds the bytes it was given; the rest is gone.
  (data.buffer as ArrayBuffer).transfer();
  proactor.wrote(2);
  await turn(loop);
  const error = await assertRejects(
    () => loop.runUntilComplete(sending),
    TypeError,
  );
  assertEquals(
    error.message,
    "Cannot call sockSendall(): data was detached or shrunk during the call (it has 0 bytes now, of 4); 2 were sent",
  );
  // The connection's writes go on.
  const next = socks.sendall(conn, new Uint8Array([5]));
  assertEquals([...proactor.wrote(1)], [5]);
  await loop.runUntilComplete(next);
  loop.close();
});

Deno.test("DenoSockets: close() lets the read in flight go without changing the connection's own setting; what it brings goes to the next reader, of another loop, before any read of its own", async () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const conn = newConn();
  const first = socks.recv(conn, 8);
  socks.cancelWaiting();
  socks.close();
  loop.close();
  assert(first.cancelled());
  assertEquals(proactor.readRefs, [false]);

  const loop2 = new VirtualTimeLoop();
  const proactor2 = new ManualProactor(loop2);
  const socks2 = new DenoSockets(loop2, proactor2);
  const next = socks2.recv(conn, 2);
  // It waits for the closed loop's read, holding the process meanwhile.
  assertEquals(proactor2.started, []);
  assertEquals(proactor.readRefs, [false, true]);
  proactor.orphanRead([1, 2, 3]);
  assertEquals([...await loop2.runUntilComplete(next)], [1, 2]);
  assertEquals([...await loop2.runUntilComplete(socks2.recv(conn, 8))], [3]);
  // Only now a read of its own.
  const last = socks2.recv(conn, 8);
  assertEquals(proactor2.started.map((s) => s.kind), ["read"]);
  proactor2.read(null);
  assertEquals((await loop2.runUntilComplete(last)).length, 0);
  loop2.close();
});

Deno.test("DenoSockets: close() lets an accept in flight go; the listener is given back its setting once that accept settles", () => {
  const loop = new VirtualTimeLoop();
  const proactor = new ManualProactor(loop);
  const socks = new DenoSockets(loop, proactor);
  const refs: boolean[] = [];
  const listener = {
    accept() {},
    ref: () => refs.push(true),
    unref: () => refs.push(false),
  } as unknown as Deno.Listener;
  const accepting = socks.accept(listener);
  socks.cancelWaiting();
  socks.close();
  loop.close();
  assert(accepting.cancelled());
  assertEquals(refs, [false]);
  const op = proactor.started.pop() as Extract<Started, { kind: "accept" }>;
  op.port.completion.orphaned!(newConn());
  assertEquals(refs, [false, true]);
});
