/**
 * `VirtualTimeLoop`: an event loop whose clock only moves when the test (or
 * an idle loop) moves it, and whose sockets are in memory.
 *
 * @module
 */

import { InvalidStateError } from "../futures/errors.ts";
import type { EventLoop } from "../loop/event_loop.ts";
import { type Lacking, SimNetLoop, simWorld } from "./_sim_loop.ts";
import { SELF_NAMES, SimHost, World } from "./_sim_world.ts";
import { VirtualClock, virtualDueBy } from "./_virtual_clock.ts";

// What a VirtualTimeLoop lacks, in the words of its refusals.
const LACKS: Record<Lacking | "tls", string> = {
  processes: "its I/O is in memory and cannot start processes",
  pipes: "its I/O is in memory and has no pipes",
  signals: "its I/O is in memory and receives no signals",
  sockets: "its I/O is in memory and has no Deno sockets",
  executor:
    "it has no worker pool (workers run on real time); pass an executor or call setDefaultExecutor()",
  tls: "its in-memory network carries no TLS",
};

/**
 * The network of one `VirtualTimeLoop`: the simulator's, with one host
 * that only loopback names reach. Its events (a segment arriving, a FIN, a
 * reset) are the loop's own timers, so the loop's clock jumps to them as
 * to any timer; writes arrive whole, and nothing is traced.
 */
class LoopbackWorld extends World {
  readonly host: SimHost = new SimHost(
    "VirtualTimeLoop",
    1,
    false,
    () => {},
    "0.0.0.0",
  );

  constructor() {
    super({
      seed: 0,
      link: { latency: 0, jitter: 0, bandwidth: Infinity },
      receiveBuffer: 65536,
      // One host answers at once or not at all: nothing waits for a peer.
      connectTimeout: Infinity,
      retransmitTimeout: Infinity,
      traceLimit: 0,
      datagramDrop: 0,
      datagramDuplicate: 0,
      failOnError: false,
    });
    this.host.up = true;
  }

  override resolve(_from: SimHost, name: string): SimHost | null {
    return SELF_NAMES.has(name) ? this.host : null;
  }

  override at(time: number, fn: () => void): void {
    const loop = this.host.loop!;
    // An infinite timeout never fires; a closed loop's network is gone.
    if (time === Infinity || loop.isClosed()) return;
    loop.callAt(time, fn);
  }

  override record(): void {}

  override cut(available: number): number {
    return available;
  }
}

/**
 * An event loop with a virtual clock, for tests. `time()` starts at 0 and
 * moves only by `advance(seconds)`, or — when nothing is ready to run — by
 * jumping straight to the next timer. A test of a 30-second timeout takes
 * microseconds, and timers fire in exactly the order and at exactly the
 * times they were scheduled for.
 *
 * It has the whole interface of the loop a program runs on, with its I/O
 * in memory: one host that answers on `127.0.0.1`, `::1` and `localhost`
 * (`getaddrinfo` resolves those and no other name), with TCP and Unix
 * servers and connections, datagrams and name lookups. Bytes move in
 * virtual time without taking any, in the order they were written, each
 * write arriving whole; a slow reader pushes back on its writer through a
 * 64 KiB receive window. So a test of a protocol's timeouts runs against
 * a real server and client, deterministically, and nothing touches the
 * machine's network. What cannot exist in memory — subprocesses, pipes,
 * signals, TLS, the `sock*` calls on Deno's sockets, the default worker
 * pool — throws `InvalidStateError`: test those on a `DenoEventLoop`
 * (`loopTest(name, fn, { virtual: false })`). For bytes between two
 * protocols without a network use `transportPair()`, and for a network of
 * many hosts with faults `Simulation`.
 *
 * PEP 3156: CPython's `TestLoop`, Twisted's `Clock`.
 *
 * @example A 30-second timeout, instantly
 * ```ts
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { sleep, waitFor, TimeoutError } from "@tulip/tulip";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * await assertRejects(
 *   () => loop.runUntilComplete(loop.createTask(async () => await waitFor(sleep(60), 30))),
 *   TimeoutError,
 * );
 * assertEquals(loop.time(), 30);
 * loop.close();
 * ```
 *
 * @example Driving time by hand
 * ```ts
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const fired: number[] = [];
 * loop.callLater(5, () => fired.push(loop.time()));
 * loop.callLater(15, () => fired.push(loop.time()));
 * await loop.advance(10);
 * assertEquals(fired, [5]);
 * assertEquals(loop.time(), 10);
 * loop.close();
 * ```
 *
 * @example A server and a client on its in-memory network
 * ```ts
 * import { VirtualTimeLoop } from "@tulip/tulip/testing";
 * import { openConnection, startServer } from "@tulip/tulip/streams";
 * import { sleep } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const loop = new VirtualTimeLoop();
 * const reply = await loop.runUntilComplete(loop.createTask(async () => {
 *   // A server that answers each line after ten (virtual) seconds.
 *   const server = await startServer(async (reader, writer) => {
 *     const line = await reader.readline();
 *     await sleep(10);
 *     writer.write(line);
 *     writer.close();
 *   }, "127.0.0.1", 0);
 *   const { port } = server.addresses()[0] as Deno.NetAddr;
 *   const [reader, writer] = await openConnection("localhost", port);
 *   writer.write(new TextEncoder().encode("ping\n"));
 *   const line = new TextDecoder().decode(await reader.readline());
 *   writer.close();
 *   server.close();
 *   await server.waitClosed();
 *   return line;
 * }));
 * assertEquals(reply, "ping\n");
 * assertEquals(loop.time(), 10);
 * loop.close();
 * ```
 */
export class VirtualTimeLoop extends SimNetLoop implements EventLoop {
  readonly #clock: VirtualClock;

  /** Makes a loop at time 0, with its own in-memory network. */
  constructor() {
    const world = new LoopbackWorld();
    super(world, world.host);
    world.host.loop = this;
    this.#clock = new VirtualClock({
      loop: this,
      readyCount: () => this.readyCount(),
      nextTimerWhen: () => this.nextTimerWhen(),
      waitForEvents: (deadline) => super.waitForEvents(deadline),
      // The network reads the time from its world.
      store: world,
    });
  }

  /**
   * Returns the virtual time, in seconds (0 when the loop is made).
   *
   * @returns The virtual time.
   */
  override time(): number {
    return simWorld(this).now;
  }

  /**
   * Returns the latest due time of the timers an iteration at `now` runs:
   * a rounding error past `now` (see `advance()`).
   *
   * @param now The virtual time.
   * @returns The due time in seconds.
   */
  protected override dueBy(now: number): number {
    return virtualDueBy(now);
  }

  /**
   * Moves the clock forward by `seconds`, running every callback and timer
   * due on the way, in order, and everything they schedule up to the new
   * time. Call it while the loop is not running. Steps add up without
   * float drift: ten `advance(0.1)` reach exactly 1 (a sum within rounding
   * error of a whole nanosecond is that nanosecond).
   *
   * @param seconds How far to move, in seconds; not negative, finite.
   * @returns A promise that resolves once the loop reached the new time.
   * @throws {RangeError} When `seconds` is negative, infinite or not a
   * number.
   * @throws {InvalidStateError} When the loop is running or closed, or
   * the last `advance()` has not finished (await each before the next).
   */
  advance(seconds: number): Promise<void> {
    return this.#clock.advance(seconds);
  }

  /**
   * Waits for events without waiting for time: once microtasks have
   * settled and nothing is ready, the clock jumps to the next timer.
   *
   * @param deadline The deadline the scheduler computed, or `null`.
   * @returns A promise that resolves when the loop should iterate.
   */
  protected override waitForEvents(deadline: number | null): Promise<void> {
    return this.#clock.wait(deadline);
  }

  /**
   * Throws the `InvalidStateError` for what the in-memory network does not
   * have, pointing at a `DenoEventLoop`.
   *
   * @param what The method called.
   * @param lacking What the network does not have (TLS too, here).
   * @param hint What to use instead on this loop, or `""`.
   * @param received What the call was given, as text.
   * @internal The in-memory network's hook, not part of the loop's API.
   */
  protected refuse(
    what: string,
    lacking: Lacking | "tls",
    hint: string,
    received: string,
  ): never {
    throw new InvalidStateError(
      `Cannot call ${what}() on a VirtualTimeLoop: ${LACKS[lacking]}${
        hint === "" ? "" : ` (${hint})`
      }; for the real thing use a DenoEventLoop (in a test, loopTest(name, fn, { virtual: false })), received ${received}`,
    );
  }

  /**
   * Refuses TLS: a test that asks for it would otherwise pass on
   * plaintext without testing it.
   *
   * @param what The method called.
   * @internal The in-memory network's hook, not part of the loop's API.
   */
  protected tls(what: string): void {
    this.refuse(what, "tls", "", "TLS options");
  }
}
