/**
 * `Simulation` and `simulate`: whole systems of hosts on one virtual
 * clock and a simulated network, reproducible from a seed.
 *
 * @module
 */

import { formatReceived, InvalidStateError } from "../futures/errors.ts";
import {
  hostHop,
  setCurrentLoopFinder,
  setTaskNumber,
} from "../futures/_runtime.ts";
import type { EventLoop } from "../loop/event_loop.ts";
import { installSimulationGuards } from "./_deno_sim_guard.ts";
import {
  describeError,
  formatEvent,
  SELF_NAMES,
  type SimHost,
  type TraceEvent,
  World,
} from "./_sim_world.ts";

export type { TraceEvent } from "./_sim_world.ts";

/** How a link between two hosts behaves, each direction alike. */
export interface LinkOptions {
  /**
   * The one-way delay, in seconds.
   *
   * @default {0.001}
   */
  latency?: number;
  /**
   * A random extra delay of 0 to `jitter` seconds per message. A stream's
   * bytes still arrive in order; datagrams may overtake each other.
   *
   * @default {0}
   */
  jitter?: number;
  /**
   * Bytes per second each direction carries; messages queue behind each
   * other on the wire.
   *
   * @default {Infinity}
   */
  bandwidth?: number;
}

/**
 * Random hardship, drawn from the seed. Rates are mean events per
 * simulated second over the whole system; durations are means, in
 * seconds, of exponential distributions.
 */
export interface FaultOptions {
  /**
   * Crashes per second (a random host of `hosts`; a client that is done
   * is left alone).
   *
   * @default {0}
   */
  crash?: number;
  /** Mean time before a crashed host restarts, in seconds. @default {1} */
  restartAfter?: number;
  /**
   * Partitions per second (a random pair of `hosts`, whose link is up); a
   * `partition()` by hand during one takes it over, and only `repair()`
   * undoes it then.
   *
   * @default {0}
   */
  partition?: number;
  /** Mean time before a partition is repaired, in seconds. @default {1} */
  repairAfter?: number;
  /**
   * Holds per second (a random pair of `hosts`, whose link is up); a
   * `hold()` by hand during one takes it over, and only `release()` undoes
   * it then.
   *
   * @default {0}
   */
  hold?: number;
  /** Mean time before held traffic is released, in seconds. @default {0.5} */
  releaseAfter?: number;
  /** Connection resets per second (a random open connection). @default {0} */
  reset?: number;
  /** The probability that a datagram is dropped. @default {0} */
  drop?: number;
  /** The probability that a datagram is delivered twice. @default {0} */
  duplicate?: number;
  /**
   * The hosts crashes, partitions and holds may hit.
   *
   * @default {every host}
   */
  hosts?: string[];
}

/** Options for `new Simulation()`. */
export interface SimulationOptions {
  /**
   * The seed: the same seed, the same run, event for event. Any finite
   * number; another seed gives another run, whether it differs in its low
   * 32 bits, past them, in sign or in a fraction (`Math.random()` makes a
   * seed).
   */
  seed: number;
  /**
   * Random hardship injected during the run.
   *
   * @default {none}
   */
  faults?: FaultOptions;
  /**
   * How links behave unless `link()` says otherwise.
   *
   * @default {{ latency: 0.001, jitter: 0, bandwidth: Infinity }}
   */
  link?: LinkOptions;
  /**
   * Each connection end's receive buffer, in bytes: how far a writer may
   * get ahead of a reader that does not read before its own write buffer
   * grows (and `pauseWriting()` follows).
   *
   * @default {65536}
   */
  receiveBuffer?: number;
  /**
   * How long a connection attempt that gets no answer (a partition, a
   * host that is down) waits before it fails with `TimedOut`, in seconds.
   *
   * @default {75}
   */
  connectTimeout?: number;
  /**
   * How long a connection's bytes may wait on a broken link before the
   * connection fails with `TimedOut`, in seconds.
   *
   * @default {60}
   */
  retransmitTimeout?: number;
  /**
   * Fail the run when a host's loop reports an error to its exception
   * handler (a protocol callback that threw, a callback's unhandled
   * error). Otherwise such reports are only recorded in the trace, as
   * `error` events, as a server would log them. A host may install its
   * own handler with `loop.setExceptionHandler()`. A failed future whose
   * exception nobody retrieved is reported when the run ends (a real loop
   * reports it when the garbage collector takes it, which would make the
   * run depend on when the collector runs).
   *
   * @default {false}
   */
  failOnError?: boolean;
  /**
   * How many of the last events `trace` keeps.
   *
   * @default {100000}
   */
  traceLimit?: number;
}

/** Options for `sim.run()`. */
export interface SimulationRunOptions {
  /**
   * Stop at this virtual time, in seconds, even if clients are not done
   * (the run then resolves). Without clients, the run goes on until
   * `until` or until nothing is scheduled.
   *
   * @default {when every client is done}
   */
  until?: number;
  /**
   * Fail the run if clients are still running at this virtual time, in
   * seconds.
   *
   * @default {86400, or `until` if later}
   */
  limit?: number;
  /**
   * Fail the run if the hosts run this many loop iterations without
   * virtual time moving (a busy loop: the error names the hosts that
   * spun).
   *
   * @default {100000}
   */
  maxSteps?: number;
}

/** A dotted-quad IPv4 address. */
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** How many of the last events a failure's message shows. */
const TRACE_TAIL = 30;

/**
 * A simulation run failed: a client (or host) threw, the hosts
 * deadlocked, or time ran out. The message names the seed that replays
 * it and shows the last events of the trace.
 *
 * @example Catching a failed run
 * ```ts
 * import { Simulation, SimulationError } from "@tulip/tulip/testing";
 * import { assertEquals, assertRejects } from "@std/assert";
 *
 * const sim = new Simulation({ seed: 7 });
 * sim.client("c", () => { throw new Error("boom"); });
 * const e = await assertRejects(() => sim.run(), SimulationError);
 * assertEquals(e.seed, 7);
 * ```
 */
export class SimulationError extends Error {
  /** The seed of the failed run. */
  readonly seed: number;
  /** The virtual time of the failure, in seconds. */
  readonly time: number;
  /** The last events before the failure, formatted. */
  readonly events: string[];

  /**
   * Makes the error.
   *
   * @param seed The seed of the run.
   * @param time The virtual time of the failure, in seconds.
   * @param reason What went wrong.
   * @param events The last events, formatted.
   * @param cause The error behind it, if any.
   */
  constructor(
    seed: number,
    time: number,
    reason: string,
    events: string[],
    cause?: unknown,
  ) {
    super(
      `Simulation failed (seed ${seed}) at ${time.toFixed(6)} s: ${reason}\n` +
        `Last ${events.length} events:\n  ${events.join("\n  ")}`,
      cause === undefined ? undefined : { cause },
    );
    this.name = "SimulationError";
    this.seed = seed;
    this.time = time;
    this.events = events;
  }
}

/** What a host or client runs: `main(loop)` starts its software. */
export type HostMain = (loop: EventLoop) => unknown;

function checkNumber(
  what: string,
  name: string,
  v: unknown,
  min = 0,
  finite = false,
): number {
  if (
    typeof v !== "number" || Number.isNaN(v) || v < min ||
    (finite && v === Infinity)
  ) {
    throw new RangeError(
      `Cannot ${what}: ${name} must be a ${
        finite ? "finite " : ""
      }number >= ${min}, received ${formatReceived(v)}`,
    );
  }
  return v;
}

/** The run `sim.run()` started, if any (for `simulate()`). */
let runOf: (sim: Simulation) => Promise<void> | null;

/**
 * A simulated network of named hosts, all on one virtual clock, every
 * random choice drawn from one seed — so a run can be replayed exactly.
 *
 * Each host gets its own event loop: the full `EventLoop` interface
 * (`createServer`, `createConnection`, `createDatagramEndpoint`,
 * `getaddrinfo` resolving host names to simulated addresses `10.0.0.N`,
 * timers, tasks), so real tulip servers and clients run unchanged.
 * `host(name, main)` adds a server-like host; `client(name, main)` a host
 * whose `main` finishing is what the run waits for. `run()` runs until
 * every client is done, and rejects with a `SimulationError` naming the
 * seed and the last events if a client fails or the system deadlocks.
 *
 * The network keeps socket semantics: a stream's bytes arrive in order
 * but cut into random segments; half-close, resets, a refused connection
 * when nothing listens (a listener takes connections to the addresses it
 * listens on: `127.0.0.1` or `::1` over loopback only, `0.0.0.0` every
 * IPv4 address, `::` or no host every address; one that is not serving
 * yet queues up to its `backlog`, and beyond it drops the SYN, which is
 * sent again after 1, 2, 4, … 32 s, as on Linux, as is a SYN to a host
 * that is down, so a connect reaches a host that restarts), a TCP
 * handshake of three messages (the client is connected when the SYN-ACK
 * arrives, one round trip after its SYN left; the listener gets the
 * connection half a round trip later, with the client's ACK, so a connect
 * given up on before the SYN-ACK arrived only sends a reset and never
 * reaches the server's application; an ACK that finds the backlog full is
 * dropped and comes again with the SYN-ACK, sent again after 1, 2, … 16 s;
 * one held longer than `retransmitTimeout` finds the connection given up,
 * and the client is reset), and finite buffers (a reader that does not read
 * fills its receive buffer, then the
 * writer's buffer grows and its protocol gets `pauseWriting()`). Writing to a peer that closed gets a reset, as
 * from a real kernel (after the peer's end of stream, Linux's `EPIPE`:
 * the next write fails the connection with `BrokenPipe`), and so does the
 * peer of a socket closed or aborted with bytes it never read (RFC 2525,
 * section 2.17): as on the Deno loop, which shuts a socket's write side
 * before it closes it, the end of the stream comes first, then the reset.
 * `abort()` drops what the transport holds and sends the end of the
 * stream at once. Datagrams may be dropped, duplicated and (with
 * jitter) reordered; an endpoint takes those sent to the address it is
 * bound to, by the listeners' rules (endpoints on one port and different
 * addresses each take their own; one sent to an address:port nobody bound
 * is dropped); one sent to an IPv4 multicast group reaches every
 * endpoint on its port that joined the group, each copy meeting its own
 * faults (a simulated host has one interface and no IPv6). A server's
 * `shutdown({ grace })` follows the real server's rules on the virtual
 * clock. Subprocesses, signals, pipes and the `sock*` calls on Deno's own
 * sockets throw `InvalidStateError`: their timing is the machine's. TLS options are accepted and ignored: the simulated
 * network carries plaintext and checks no certificates. Hardship comes by
 * hand — `link()`, `partition()`, `hold()`, `crash()`, … — or at random
 * from `faults`.
 *
 * While `run()` runs, the process's `Deno.connect`, `Deno.listen`,
 * `Deno.connectTls`, `Deno.listenTls`, `Deno.listenDatagram`,
 * `Deno.resolveDns`, `Deno.startTls`, `Deno.serve`, `fetch`, `WebSocket`
 * and `EventSource` (and `Deno.connectQuic`, `WebSocketStream`,
 * `WebTransport` where the runtime has them) throw (a host must use its
 * loop), as do a host's `Worker`, `MessageChannel`, `BroadcastChannel`,
 * `Deno.Command` and `Deno.addSignalListener()` (what they bring comes
 * when the machine delivers it) and a host's `node:net` socket and
 * `node:child_process` (fail the run once made; a `node:net` server's
 * `listen()` and a `node:dgram` socket's `bind()` fail it first),
 * `Math.random`, `crypto.getRandomValues` and
 * `crypto.randomUUID` are seeded, and `Date.now`, `new Date()`,
 * `performance.now` (and `performance.timeOrigin`, `mark()` and `measure()`,
 * on a timeline of the run's own), `Intl.DateTimeFormat`'s `format()` of now
 * and `Temporal.Now` read the virtual clock (starting at 2000-01-01), and a
 * host's `setTimeout`/`setInterval`, `setImmediate` and
 * `AbortSignal.timeout()` are on its loop, on the virtual clock (so
 * `@std/async`'s `delay` and `deadline` wait virtual time; code outside
 * the hosts keeps the real timers); all are restored when the run ends.
 * So only one simulation runs at a time.
 * Nor does the garbage collector change a run: a failed future whose
 * exception nobody retrieved is reported on its host when the run ends,
 * not when it is collected (a crashed host reports nothing), and what a
 * `WeakRef` made in the run points to, or what the run registers with a
 * `FinalizationRegistry`, is held until the run ends. An error a host's
 * code leaves uncaught (a rejected promise nobody handles before the
 * hosts wait, when a real loop's runtime would look; a
 * `queueMicrotask()`, `setTimeout()`, `setInterval()` or `setImmediate()`
 * callback that throws), which would end a real process, fails the run,
 * naming the host.
 * `node:timers`' and `node:timers/promises`' `setTimeout`, `setInterval`
 * and `setImmediate` are on the host's loop too (with `TULIP_NO_INTERNALS`
 * set, a host that makes one fails the run, naming it), `node:crypto`'s
 * `randomBytes` and `randomUUID` read the seed (imported by name too), and
 * its `randomInt`, `randomFill` and `randomFillSync` read the seed when
 * called through its default export (`require("crypto")`). A
 * host's `crypto.subtle` calls and `Deno`'s file calls (`readFile`,
 * `stat`, `open` and an `FsFile`'s `read()`, ...) take no virtual time:
 * the run waits for each before anything else runs, so its result comes
 * at the same step on every replay, after those of the calls made before it
 * (an `FsFile`'s `lock()` of a lock another task or host holds is tried
 * again on the host's clock, after 1 ms, doubling up to 1 s).
 * Code that waits for anything else outside the simulation (a file's
 * `readable`, `Deno.readDir()`, `node:fs`)
 * makes the run depend on the machine, as does what nothing replaced
 * reaches (`node:crypto`'s `randomInt`, `randomFill` and `randomFillSync`
 * imported by name, and the key pairs `crypto.subtle.generateKey()` makes:
 * its HMAC and AES keys read the seed); and a host that never yields to
 * its loop (`for (;;) await null`: microtasks alone) blocks the process,
 * as it would a real one: no code runs to stop it (a loop that awaits
 * `sleep(0)` instead is a busy loop the run reports).
 *
 * The scheduler: the network's events due now run first, in the order
 * they were scheduled; then each host with work due runs one loop
 * iteration, in the order hosts were added, and pending microtasks (async
 * functions resuming) settle; when nothing is left at this instant, the
 * clock jumps to the next event or timer.
 *
 * Inspired by tokio's turmoil and FoundationDB's simulator.
 *
 * @example A client and a server
 * ```ts
 * import { Simulation } from "@tulip/tulip/testing";
 * import { openConnection, startServer } from "@tulip/tulip/protocols";
 * import { assertEquals } from "@std/assert";
 *
 * const sim = new Simulation({ seed: 1 });
 * sim.host("server", async (loop) => {
 *   await startServer(async (reader, writer) => {
 *     writer.write(await reader.readline());
 *     writer.close();
 *   }, "0.0.0.0", 7, { loop });
 * });
 * let reply = "";
 * sim.client("client", async (loop) => {
 *   const [reader, writer] = await openConnection("server", 7, { loop });
 *   writer.write(new TextEncoder().encode("hello\n"));
 *   reply = new TextDecoder().decode(await reader.read());
 * });
 * await sim.run();
 * assertEquals(reply, "hello\n");
 * ```
 */
export class Simulation {
  readonly #world: World;
  readonly #faults: FaultOptions;
  #ran = false;
  // The run, once started (simulate() waits for one a scenario started).
  #running: Promise<void> | null = null;

  static {
    runOf = (sim) => sim.#running;
  }

  /**
   * Makes an empty simulation.
   *
   * @param options The seed, the faults and the network's defaults.
   * @throws {TypeError} When `seed` is not a number, or `faults.hosts`
   * not an array of names.
   * @throws {RangeError} When an option is out of range.
   */
  constructor(options: SimulationOptions) {
    const seed = options?.seed;
    if (typeof seed !== "number" || !Number.isFinite(seed)) {
      throw new TypeError(
        `Cannot make a simulation: seed must be a number, received ${
          formatReceived(seed)
        }`,
      );
    }
    const what = "make a simulation";
    const link = options.link ?? {};
    const faults = options.faults ?? {};
    for (
      const key of [
        "crash",
        "restartAfter",
        "partition",
        "repairAfter",
        "hold",
        "releaseAfter",
        "reset",
        "drop",
        "duplicate",
      ] as const
    ) {
      if (faults[key] !== undefined) {
        // A rate of Infinity would fault for ever without time moving.
        const rate = ["crash", "partition", "hold", "reset"].includes(key);
        checkNumber(what, `faults.${key}`, faults[key], 0, rate);
      }
    }
    const pool = faults.hosts;
    if (
      pool !== undefined &&
      !(Array.isArray(pool) && pool.every((n) => typeof n === "string"))
    ) {
      throw new TypeError(
        `Cannot make a simulation: faults.hosts must be an array of host names, received ${
          formatReceived(pool)
        }`,
      );
    }
    for (const key of ["drop", "duplicate"] as const) {
      const p = faults[key];
      if (p !== undefined && p > 1) {
        throw new RangeError(
          `Cannot make a simulation: faults.${key} must be a probability from 0 to 1, received ${p}`,
        );
      }
    }
    this.#faults = faults;
    this.#world = new World({
      seed,
      link: {
        latency: checkNumber(
          what,
          "link.latency",
          link.latency ?? 0.001,
          0,
          true,
        ),
        jitter: checkNumber(what, "link.jitter", link.jitter ?? 0, 0, true),
        bandwidth: checkNumber(
          what,
          "link.bandwidth",
          link.bandwidth ?? Infinity,
          1,
        ),
      },
      receiveBuffer: checkNumber(
        what,
        "receiveBuffer",
        options.receiveBuffer ?? 65536,
        1,
      ),
      connectTimeout: checkNumber(
        what,
        "connectTimeout",
        options.connectTimeout ?? 75,
      ),
      retransmitTimeout: checkNumber(
        what,
        "retransmitTimeout",
        options.retransmitTimeout ?? 60,
      ),
      traceLimit: checkNumber(what, "traceLimit", options.traceLimit ?? 100000),
      datagramDrop: faults.drop ?? 0,
      datagramDuplicate: faults.duplicate ?? 0,
      failOnError: options.failOnError ?? false,
    });
  }

  /** The seed of this simulation. */
  get seed(): number {
    return this.#world.settings.seed;
  }

  /**
   * The events of the run so far, oldest first (the last `traceLimit` of
   * them): connections, segments received, resets, crashes, partitions,
   * clients finishing, errors. The same seed gives the same trace.
   */
  get trace(): TraceEvent[] {
    return this.#world.trace();
  }

  /**
   * Returns the virtual time, in seconds.
   *
   * @returns The time.
   */
  time(): number {
    return this.#world.now;
  }

  /**
   * Returns a number in [0, 1) from the seed, for scenarios that choose
   * at random (the same sequence `Math.random` gives inside a run).
   *
   * @returns The number.
   */
  random(): number {
    return this.#world.userRng.next();
  }

  /**
   * Adds a host that runs `main(loop)` when the run starts (and again on
   * each `restart()`). A host's `main` may return; its servers and tasks
   * keep running. An error thrown by it fails the run.
   *
   * @param name The host's name, resolved by `getaddrinfo` and
   * `createConnection` on every host.
   * @param main Starts the host's software on its loop.
   * @throws {TypeError} When `name` is not a non-empty string or `main`
   * not a function.
   * @throws {RangeError} When a host has that name already, or it is a
   * loopback name (`localhost`) or an address.
   * @throws {InvalidStateError} When the simulation has run.
   */
  host(name: string, main: HostMain): void {
    this.#add("host", name, main, false);
  }

  /**
   * Adds a client: a host whose `main(loop)` finishing is what `run()`
   * waits for. An error thrown by it fails the run.
   *
   * @param name The host's name.
   * @param main The client's work.
   * @throws {TypeError} When `name` is not a non-empty string or `main`
   * not a function.
   * @throws {RangeError} When a host has that name already, or it is a
   * loopback name (`localhost`) or an address.
   * @throws {InvalidStateError} When the simulation has run.
   */
  client(name: string, main: HostMain): void {
    this.#add("client", name, main, true);
  }

  /**
   * Runs the simulation: starts every host, then runs until every client
   * is done (or until `until`).
   *
   * @param options A virtual deadline and the run's limits.
   * @returns A promise that resolves when the run is over.
   * @throws {SimulationError} When a client or host fails, the hosts
   * deadlock, or a limit is reached (the promise rejects).
   * @throws {InvalidStateError} When the simulation has run already.
   */
  run(options?: SimulationRunOptions): Promise<void> {
    const running = this.#run(options);
    // Only a run that started (its options passed the checks) is recorded.
    if (this.#ran) this.#running ??= running;
    return running;
  }

  async #run(options?: SimulationRunOptions): Promise<void> {
    if (this.#ran) {
      throw new InvalidStateError(
        "Cannot run the simulation: it has run already (make a new one with the same seed to replay it)",
      );
    }
    const until = options?.until;
    if (until !== undefined) checkNumber("run the simulation", "until", until);
    // An until past the default limit is the limit: the run was asked to
    // go that far.
    const limit = checkNumber(
      "run the simulation",
      "limit",
      options?.limit ?? Math.max(86400, until ?? 0),
    );
    const maxSteps = checkNumber(
      "run the simulation",
      "maxSteps",
      options?.maxSteps ?? 100000,
      1,
    );
    const world = this.#world;
    const restore = installSimulationGuards(
      () => world.userRng.next(),
      () => world.now,
      world.timers,
    );
    this.#ran = true;
    // What a host's code leaves uncaught fails the run (with its seed)
    // instead of the process.
    const onError = (e: ErrorEvent) => {
      if (world.uncaught(e.error)) e.preventDefault();
    };
    const onRejection = (e: PromiseRejectionEvent) => {
      if (world.unhandled(e.promise, e.reason)) e.preventDefault();
    };
    const onHandled = (e: PromiseRejectionEvent) => world.handled(e.promise);
    addEventListener("error", onError);
    addEventListener("unhandledrejection", onRejection);
    addEventListener("rejectionhandled", onHandled);
    // Code that runs outside any task and callback (a promise's reaction)
    // looks up the loop of the host it belongs to: the host that ran last.
    const previousFinder = setCurrentLoopFinder(() =>
      world.current ?? previousFinder?.() ?? null
    );
    world.running = true;
    // Tasks named by default count from 1 in each run, as in its replays.
    const taskNumber = setTaskNumber(0);
    try {
      for (const h of world.hosts) {
        if (h.downAtStart) {
          world.record(h.name, "down");
          continue;
        }
        world.start(h);
      }
      this.#scheduleFaults();
      await world.drive(until, limit, maxSteps);
    } finally {
      world.reportUnretrieved();
      world.shutdown();
      // Let whatever the closed loops left in the microtask queue settle
      // before the real clock and network come back.
      await hostHop();
      setCurrentLoopFinder(previousFinder);
      setTaskNumber(Math.max(taskNumber, setTaskNumber(0)));
      removeEventListener("error", onError);
      removeEventListener("unhandledrejection", onRejection);
      removeEventListener("rejectionhandled", onHandled);
      restore();
      world.current = null;
      world.running = false;
    }
    const failure = world.failure;
    if (failure !== null) {
      const trace = world.trace();
      throw new SimulationError(
        this.seed,
        world.now,
        failure.message,
        trace.slice(-TRACE_TAIL).map(formatEvent),
        failure.cause,
      );
    }
  }

  /**
   * Cuts the link between `a` and `b`: datagrams are lost (those on the
   * wire now too, even if `repair()` comes before they would have
   * arrived), a stream's bytes and their acknowledgements wait (and the
   * writer's connection fails with `TimedOut` after `retransmitTimeout`),
   * connection attempts wait (and fail after `connectTimeout`). An idle
   * connection lives through it.
   *
   * @param a A host's name.
   * @param b Another host's name.
   * @throws {RangeError} When a name is unknown or `a` and `b` are the
   * same host.
   */
  partition(a: string, b: string): void {
    this.#block("partition", a, b);
  }

  /**
   * Repairs the link between `a` and `b`: waiting traffic goes on,
   * unless the link is also held (a hold lasts until `release()`).
   *
   * @param a A host's name.
   * @param b Another host's name.
   * @throws {RangeError} When a name is unknown or `a` and `b` are the
   * same host.
   */
  repair(a: string, b: string): void {
    this.#block("repair", a, b);
  }

  /**
   * Holds all traffic between `a` and `b` (datagrams too) until
   * `release()`. TCP's timers still run: a stream's bytes held longer than
   * `retransmitTimeout` fail their connection with `TimedOut`, and a
   * connection attempt held longer than `connectTimeout` fails.
   *
   * @param a A host's name.
   * @param b Another host's name.
   * @throws {RangeError} When a name is unknown or `a` and `b` are the
   * same host.
   */
  hold(a: string, b: string): void {
    this.#block("hold", a, b);
  }

  /**
   * Releases the traffic held between `a` and `b`: it goes on, unless
   * the link is also partitioned (a partition lasts until `repair()`).
   *
   * @param a A host's name.
   * @param b Another host's name.
   * @throws {RangeError} When a name is unknown or `a` and `b` are the
   * same host.
   */
  release(a: string, b: string): void {
    this.#block("release", a, b);
  }

  /**
   * Crashes a host: its loop stops for good (nothing scheduled on it
   * runs), its listeners vanish, and each of its connections is reset
   * (the peer gets `ConnectionReset` one link latency later). Before
   * `run()`, the host starts crashed.
   *
   * @param name The host's name.
   * @throws {RangeError} When the name is unknown.
   */
  crash(name: string): void {
    this.#world.crash(this.#find("crash", name));
  }

  /**
   * Restarts a crashed host: a fresh loop, and its `main` runs again. A
   * host that is up is left alone.
   *
   * @param name The host's name.
   * @throws {RangeError} When the name is unknown.
   */
  restart(name: string): void {
    this.#world.restart(this.#find("restart", name));
  }

  /**
   * Sets how the link between `a` and `b` behaves from now on.
   *
   * @param a A host's name.
   * @param b Another host's name.
   * @param options Latency, jitter and bandwidth.
   * @throws {TypeError} When `options` is not an object.
   * @throws {RangeError} When a name is unknown, `a` and `b` are the same
   * host, or a value is out of range.
   */
  link(a: string, b: string, options: LinkOptions): void {
    const what = "set a link";
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `Cannot ${what}: options must be an object such as { latency: 0.05 }, received ${
          formatReceived(options)
        }`,
      );
    }
    const ha = this.#find(what, a);
    const hb = this.#find(what, b);
    if (ha === hb) {
      throw new RangeError(
        `Cannot ${what}: a host's link to itself is instant and never breaks, received ${a} twice`,
      );
    }
    const link = this.#world.link(ha, hb);
    if (options.latency !== undefined) {
      link.latency = checkNumber(what, "latency", options.latency, 0, true);
    }
    if (options.jitter !== undefined) {
      link.jitter = checkNumber(what, "jitter", options.jitter, 0, true);
    }
    if (options.bandwidth !== undefined) {
      link.bandwidth = checkNumber(what, "bandwidth", options.bandwidth, 1);
    }
  }

  #add(kind: string, name: string, main: HostMain, client: boolean): void {
    if (typeof name !== "string" || name === "" || /\s/.test(name)) {
      throw new TypeError(
        `Cannot add a ${kind}: name must be a non-empty string without spaces, received ${
          JSON.stringify(name)
        }`,
      );
    }
    if (typeof main !== "function") {
      throw new TypeError(
        `Cannot add ${kind} ${name}: main must be a function, received ${typeof main}`,
      );
    }
    // Every host resolves these to itself, and addresses to their host.
    if (SELF_NAMES.has(name) || name.includes(":") || IPV4.test(name)) {
      throw new RangeError(
        `Cannot add ${kind} ${name}: a loopback name or an address cannot name a host (hosts get addresses 10.0.0.N), received ${name}`,
      );
    }
    if (this.#ran) {
      throw new InvalidStateError(
        `Cannot add ${kind} ${name}: the simulation has run (make a new one to run again)`,
      );
    }
    if (this.#world.byName.has(name)) {
      throw new RangeError(
        `Cannot add ${kind} ${name}: a host has that name already, received ${name}`,
      );
    }
    this.#world.addHost(name, client, main);
  }

  #find(what: string, name: string): SimHost {
    const host = this.#world.byName.get(name);
    if (host === undefined) {
      throw new RangeError(
        `Cannot ${what}: no host is named ${JSON.stringify(name)}`,
      );
    }
    return host;
  }

  #block(
    what: "partition" | "repair" | "hold" | "release",
    a: string,
    b: string,
  ): void {
    const ha = this.#find(what, a);
    const hb = this.#find(what, b);
    if (ha === hb) {
      throw new RangeError(
        `Cannot ${what}: a host's link to itself never breaks, received ${a} twice`,
      );
    }
    const world = this.#world;
    // A call by hand takes over a random fault of its kind: only a call
    // by hand undoes it now.
    const link = world.link(ha, hb);
    const kind = what === "partition" || what === "repair"
      ? "partition"
      : "hold";
    if (link.fault?.kind === kind) link.fault = null;
    world.record("sim", what, `${a} ${b}`);
    world.block(ha, hb, what);
  }

  #scheduleFaults(): void {
    const world = this.#world;
    const f = this.#faults;
    const names = f.hosts ?? world.hosts.map((h) => h.name);
    const pool = names.map((n) => this.#find("inject faults", n));
    const rng = world.rng;
    const every = (rate: number | undefined, act: () => void) => {
      if (rate === undefined || rate <= 0) return;
      const next = () => {
        world.at(world.now + rng.exponential(1 / rate), () => {
          act();
          next();
        });
      };
      next();
    };
    const pair = (): [SimHost, SimHost] | null => {
      if (pool.length < 2) return null;
      const i = rng.int(pool.length);
      let j = rng.int(pool.length - 1);
      if (j >= i) j++;
      return [pool[i], pool[j]];
    };
    every(f.crash, () => {
      if (pool.length === 0) return;
      const host = pool[rng.int(pool.length)];
      // A client that is done has nothing left to get wrong.
      if (!host.up || host.done) return;
      world.crash(host);
      world.at(world.now + rng.exponential(f.restartAfter ?? 1), () => {
        world.restart(host);
      });
    });
    const blockFor = (state: "partition" | "hold", mean: number) => {
      const p = pair();
      if (p === null) return;
      const link = world.link(p[0], p[1]);
      if (link.blocked !== "") return;
      const fault = { kind: state };
      link.fault = fault;
      world.record("sim", state, `${p[0].name} ${p[1].name}`);
      world.block(p[0], p[1], state);
      world.at(world.now + rng.exponential(mean), () => {
        // Taken over by hand (partition() during it): left to repair().
        if (link.fault !== fault) return;
        link.fault = null;
        const undo = state === "partition" ? "repair" : "release";
        world.record("sim", undo, `${p[0].name} ${p[1].name}`);
        world.block(p[0], p[1], undo);
      });
    };
    every(f.partition, () => blockFor("partition", f.repairAfter ?? 1));
    every(f.hold, () => blockFor("hold", f.releaseAfter ?? 0.5));
    every(f.reset, () => {
      const ends = world.hosts.flatMap((h) => [...h.ends]);
      if (ends.length === 0) return;
      ends[rng.int(ends.length)].reset();
    });
  }
}

/** Options for `simulate()`: each run's simulation options and limits. */
export interface SimulateOptions
  extends Omit<SimulationOptions, "seed">, SimulationRunOptions {
  /**
   * Put each failure's whole trace in the error message, instead of its
   * last events (for re-running one seed).
   *
   * @default {false}
   */
  fullTrace?: boolean;
  /**
   * Stop after this many failing seeds.
   *
   * @default {10}
   */
  maxFailures?: number;
}

/** What `simulate()` found. */
export interface SimulateReport {
  /** How many seeds ran. */
  runs: number;
  /** The failing seeds, with their errors. */
  failures: { seed: number; error: SimulationError }[];
}

/**
 * Runs a scenario once per seed and fails if any seed fails. `scenario`
 * gets a fresh `Simulation` for each seed, adds its hosts and clients
 * (and may set links or hardship); `simulate` then runs it — unless the
 * scenario ran it itself (`await sim.run()`), say to check what the run
 * left, in which case an error thrown after the run fails that seed too. The error
 * lists every failing seed, shows the first failure with the last events
 * of its trace, and says how to replay one seed with its whole trace.
 *
 * @param seeds How many seeds (`0 … n-1`), or the seeds themselves.
 * @param scenario Sets up one simulation.
 * @param options Each simulation's options (`faults`, `link`, …), the
 * run's limits, and how much to report.
 * @returns A promise of the report, once every seed passed.
 * @throws {SimulationError} When a seed fails (the promise rejects), with
 * the failing seeds in its message.
 * @throws {RangeError} When `seeds` is a number but not a whole one >= 0
 * (the promise rejects).
 *
 * @example A hundred seeds
 * ```ts
 * import { simulate } from "@tulip/tulip/testing";
 * import { sleep } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * const report = await simulate(100, (sim) => {
 *   sim.client("c", async () => {
 *     await sleep(Math.random()); // seeded: each seed its own delay
 *   });
 * });
 * assertEquals(report.runs, 100);
 * ```
 *
 * @example Checking what each run left
 * ```ts
 * import { simulate } from "@tulip/tulip/testing";
 * import { sleep } from "@tulip/tulip";
 * import { assertEquals } from "@std/assert";
 *
 * await simulate(10, async (sim) => {
 *   let steps = 0;
 *   sim.client("c", async () => {
 *     for (let i = 0; i < 3; i++) {
 *       await sleep(Math.random());
 *       steps++;
 *     }
 *   });
 *   await sim.run();
 *   assertEquals(steps, 3);
 * });
 * ```
 */
export async function simulate(
  seeds: number | Iterable<number>,
  scenario: (sim: Simulation) => void | Promise<void>,
  options?: SimulateOptions,
): Promise<SimulateReport> {
  if (typeof scenario !== "function") {
    throw new TypeError(
      `Cannot simulate: scenario must be a function, received ${typeof scenario}`,
    );
  }
  if (
    typeof seeds === "number" && !(Number.isSafeInteger(seeds) && seeds >= 0)
  ) {
    throw new RangeError(
      `Cannot simulate: seeds must be a whole number >= 0 or a list of seeds, received ${
        formatReceived(seeds)
      }`,
    );
  }
  const list = typeof seeds === "number"
    ? Array.from({ length: seeds }, (_, i) => i)
    : [...seeds];
  const maxFailures = options?.maxFailures ?? 10;
  const failures: { seed: number; error: SimulationError }[] = [];
  let runs = 0;
  for (const seed of list) {
    const sim = new Simulation({
      ...options,
      seed,
      traceLimit: options?.traceLimit,
    });
    runs++;
    try {
      await scenario(sim);
      // A scenario may run its simulation itself, to check what it left
      // (with the run's options it gave, not these).
      await (runOf(sim) ?? sim.run({
        until: options?.until,
        limit: options?.limit,
        maxSteps: options?.maxSteps,
      }));
    } catch (e) {
      // A run the scenario started goes on: wait for its end (its failure
      // is the scenario's), so that its rejection is handled and the next
      // seed does not find it running.
      await runOf(sim)?.catch(() => {});
      const error = e instanceof SimulationError ? e : new SimulationError(
        seed,
        sim.time(),
        `the scenario threw: ${describeError(e)}`,
        sim.trace.slice(-TRACE_TAIL).map(formatEvent),
        e,
      );
      const full = options?.fullTrace
        ? new SimulationError(
          seed,
          error.time,
          error.message.split("\n")[0].replace(
            /^Simulation failed \(seed \d+\) at \S+ s: /,
            "",
          ),
          sim.trace.map(formatEvent),
          error.cause,
        )
        : error;
      failures.push({ seed, error: full });
      if (failures.length >= maxFailures) break;
    }
  }
  if (failures.length > 0) {
    const first = failures[0];
    const seedList = failures.map((f) => f.seed).join(", ");
    const error = new SimulationError(
      first.seed,
      first.error.time,
      `${failures.length} of ${runs} seeds failed: ${seedList}${
        failures.length >= maxFailures ? " (stopped there)" : ""
      }. Replay one with its whole trace: simulate([${first.seed}], scenario, { fullTrace: true }). First failure: ${
        first.error.message.split("\n")[0]
      }`,
      first.error.events,
      first.error,
    );
    throw error;
  }
  return { runs, failures };
}
