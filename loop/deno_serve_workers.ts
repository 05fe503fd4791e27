/**
 * `serveWorkers`: one address served from N Web Workers, each running its
 * own loop, under a supervisor in the main thread that restarts a worker
 * that crashes and shuts them all down gracefully.
 *
 * @module
 */

import { claimSignal } from "./_deno_signals.ts";
import type { ServerShutdownOptions } from "./event_loop.ts";

/**
 * What a worker module's `serve(loop, info)` is told about its worker.
 */
export interface ServeWorkersInfo {
  /** This worker's number, from 0 to `workers - 1`; a restarted worker keeps it. */
  readonly index: number;
  /** How many workers serve together. */
  readonly workers: number;
  /**
   * The port to listen on, with `reusePort: true`: for the first worker
   * the `port` option (0: one of the system's choice), for every other
   * worker and every restart the port the first worker's first server
   * got.
   */
  readonly port: number;
}

/** A worker that crashed, as `ServeWorkersOptions.onCrash` hears of it. */
export interface WorkerCrash {
  /** The worker's number. */
  readonly index: number;
  /** What went wrong. */
  readonly error: Error;
  /**
   * In how many seconds the worker is started again, or `null` when the
   * supervisor gives up (see `maxCrashes`).
   */
  readonly restartIn: number | null;
}

/** Options for `serveWorkers`. */
export interface ServeWorkersOptions {
  /**
   * How many workers to start, from 1 to 1024.
   *
   * @default {navigator.hardwareConcurrency, or 4 when unknown}
   */
  workers?: number;
  /**
   * The port given to the first worker as `info.port`; 0 lets the system
   * pick one, which the other workers are then given.
   *
   * @default {0}
   */
  port?: number;
  /**
   * How long, in seconds, each worker's open connections get to finish
   * when the supervisor closes (`Server.shutdown({ grace })`); `Infinity`
   * waits for ever.
   *
   * @default {10}
   */
  grace?: number;
  /**
   * How long, in seconds, a worker gets beyond `grace` to report that it
   * has closed; then it is terminated (one that was still starting, at
   * its `startTimeout` if that comes sooner: it has nothing to finish
   * until it is ready).
   *
   * @default {5}
   */
  exitTimeout?: number;
  /**
   * How long, in seconds, a worker gets to load its module and start
   * serving; then it counts as crashed.
   *
   * @default {30}
   */
  startTimeout?: number;
  /**
   * How long, in seconds, a serving worker may leave the supervisor's
   * pings (one a second at most) unanswered; then it is taken for hung or
   * gone, terminated, and counts as crashed. gunicorn's `timeout`. (A
   * worker that calls `self.close()`, `Deno.exit()` or `process.exit()`
   * says so as it ends, and counts as crashed at once.) Unlike gunicorn's
   * SIGKILL, Deno's `Worker.terminate()` takes effect only once the
   * worker's JavaScript yields: a worker in an endless loop goes on
   * spinning, with its sockets, and the connections the system gives them
   * wait, until the process ends; `onCrash` may end it (`Deno.exit()`) for
   * a process manager to start it again.
   *
   * @default {30}
   */
  timeout?: number;
  /**
   * How long, in seconds, a connection the supervisor accepted while no
   * worker served (see `serveWorkers`) waits for one to become ready; then
   * it is closed unanswered: the client reads EOF, also when the request
   * it sent went unread (its writes then fail). As long as nginx's
   * `proxy_connect_timeout` and Node's `server.headersTimeout` (60 s),
   * longer than a restart at `maxRestartDelay` plus `startTimeout` takes
   * by default; a connection that can never be served does not wait for
   * ever.
   *
   * @default {60}
   */
  holdTimeout?: number;
  /**
   * The first restart's delay after a crash, in seconds; each further
   * crash in a row doubles it, up to `maxRestartDelay`.
   *
   * @default {0.1}
   */
  restartDelay?: number;
  /**
   * The longest delay before a restart, in seconds.
   *
   * @default {10}
   */
  maxRestartDelay?: number;
  /**
   * How long, in seconds, a worker must have served (since it became
   * ready) for its crash not to count as "in a row" with the ones before:
   * its restart delay starts again from `restartDelay`. A worker that
   * fails to start always counts, however long it took to fail; one that
   * hung served until it last answered (not until `timeout` noticed).
   *
   * @default {10}
   */
  stableAfter?: number;
  /**
   * How many crashes in a row of one worker are restarted; at one more the
   * supervisor gives up: it closes the other workers and `closed` rejects
   * with an error naming the worker and its last error. `Infinity`: never
   * give up.
   *
   * @default {10}
   */
  maxCrashes?: number;
  /**
   * Close gracefully on the first `SIGINT` or `SIGTERM` (the second one
   * terminates the workers at once); one that comes while the workers
   * start stops them, and `serveWorkers()` rejects with
   * `Deno.errors.Interrupted`. `false` leaves signals alone.
   *
   * @default {true}
   */
  signals?: boolean;
  /**
   * Hears of each crash.
   *
   * @default {one line on console.error}
   */
  onCrash?: (crash: WorkerCrash) => void;
}

/**
 * The main thread's handle on the workers `serveWorkers()` started.
 */
export interface WorkerSupervisor extends AsyncDisposable {
  /** How many workers serve. */
  readonly workers: number;
  /** The addresses the first worker listens on (all workers share them). */
  readonly addresses: readonly Deno.Addr[];
  /** How many times a crashed worker has been started again. */
  readonly restarts: number;
  /**
   * Resolves once every worker has exited after `close()` or a signal (a
   * worker that had to be terminated, having crashed or overrun its
   * timeout, releases its sockets a moment later: Deno tells no one when
   * a terminated worker is gone);
   * rejects when the supervisor gave up on a worker that kept crashing
   * (see `maxCrashes`), once the others have exited.
   */
  readonly closed: Promise<void>;
  /**
   * Shuts every worker down gracefully: each worker's servers stop
   * listening, finish what their connections are doing (an HTTP request
   * in flight gets its whole answer, with `Connection: close`) and abort
   * what is left after `grace` seconds; then the worker's loop is closed
   * and the worker ends. Crashed workers are no longer restarted. Calling
   * it again gives the same promise.
   *
   * @param options `grace` in seconds (default: the `grace` option).
   * @returns A promise that resolves once every worker has exited; it
   * never rejects (see `closed`).
   * @throws {RangeError} When `grace` is negative or not a number.
   */
  close(options?: ServerShutdownOptions): Promise<void>;
}

/** The program each worker runs. */
const WORKER_MAIN = new URL("./_deno_worker_main.ts", import.meta.url);

const MAX_WORKERS = 1024;

/**
 * How many connections the supervisor holds while no worker serves;
 * beyond, it closes what it accepts at once.
 */
const MAX_HELD = 1024;

/**
 * The longest delay a host timer takes, in ms: a longer `setTimeout`
 * fires after 1 ms. The supervisor's longer waits are cut to it (24.8
 * days).
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** `setTimeout` for a delay in seconds, cut to what a host timer takes. */
function after(
  seconds: number,
  fn: () => void,
): ReturnType<typeof setTimeout> {
  return setTimeout(fn, Math.min(MAX_TIMER_MS, seconds * 1000));
}

/**
 * How long, in ms, a relay's write to the client may make no progress (the
 * client not reading) before the relay ends. The worker's own
 * `writeTimeout` no longer sees such a client once the relay has taken its
 * bytes, and after the worker gives up, nothing but this ends the relay.
 * The HTTP server's default `writeTimeout`.
 */
const RELAY_WRITE_TIMEOUT_MS = 60_000;

/**
 * How long, in ms, a relay goes on passing the client's bytes to the
 * worker once the worker's end is done: the worker may be reading them
 * away before it closes (a lingering close), and closing the client's
 * connection with bytes unread would reset it, destroying the answer.
 * The HTTP server's own lingering close lasts as long.
 */
const RELAY_LINGER_MS = 2_000;

/**
 * Copies `from`'s bytes to `to`, a write at a time, then half-closes `to`
 * at `from`'s EOF. With `stalled`, a write that makes no progress for
 * `RELAY_WRITE_TIMEOUT_MS` calls it (which closes both).
 */
async function pump(
  from: Deno.Conn,
  to: Deno.Conn,
  stalled?: () => void,
): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  while (true) {
    const n = await from.read(buffer);
    if (n === null) break;
    for (let at = 0; at < n;) {
      const timer = stalled && setTimeout(stalled, RELAY_WRITE_TIMEOUT_MS);
      try {
        at += await to.write(buffer.subarray(at, n));
      } finally {
        clearTimeout(timer);
      }
    }
  }
  await to.closeWrite();
}

/** Closes `conn`, which may be closed already. */
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}

/**
 * Where a relay reaches the workers listening on `hostname`: there, or the
 * loopback for a wildcard. (Not the address the client came to: an IPv6
 * link-local one comes without its zone, and --allow-net would have to
 * allow every address of the host.)
 */
function relayHost(hostname: string): string {
  if (hostname === "0.0.0.0") return "127.0.0.1";
  if (hostname === "::") return "::1";
  return hostname;
}

type SlotState = "starting" | "running" | "stopping" | "waiting" | "gone";

interface Slot {
  readonly index: number;
  worker: Worker | null;
  state: SlotState;
  /**
   * When the worker became ready, in ms (`performance.now()`); `null`
   * while it starts.
   */
  servingSince: number | null;
  /** When the worker last answered, in ms. */
  lastPong: number;
  /** When its start times out, in ms (see `startTimeout`). */
  startDeadline: number;
  /** Crashes in a row (each before it had served `stableAfter`). */
  crashes: number;
  /** The next restart's delay, in seconds. */
  delay: number;
  /** The start timeout, restart delay or exit timeout running. */
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Settled by the first start's outcome while `serveWorkers()` waits. */
  firstStart: PromiseWithResolvers<void> | null;
}

/** The messages a worker posts. */
type WorkerMessage =
  | { type: "ready"; addresses: Deno.Addr[] }
  | { type: "pong"; seq: number }
  | {
    type: "failed";
    error: { name: string; message: string; stack?: string };
  }
  | { type: "closed" };

interface Settings {
  workers: number;
  port: number;
  grace: number;
  exitTimeout: number;
  startTimeout: number;
  timeout: number;
  holdTimeout: number;
  restartDelay: number;
  maxRestartDelay: number;
  stableAfter: number;
  maxCrashes: number;
  signals: boolean;
  onCrash: (crash: WorkerCrash) => void;
}

function defaultWorkers(): number {
  const n = globalThis.navigator?.hardwareConcurrency;
  return typeof n === "number" && n >= 1 ? Math.min(n, MAX_WORKERS) : 4;
}

function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") return String(value);
  return value === null ? "null" : typeof value;
}

/** A number of seconds `>= 0` (finite unless `infinite`), or the default. */
function seconds(
  name: string,
  value: unknown,
  fallback: number,
  infinite = false,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" || !(value >= 0) ||
    (!infinite && value === Infinity)
  ) {
    throw new RangeError(
      `Cannot serve from workers: ${name} must be a ${
        infinite ? "" : "finite "
      }number of seconds >= 0, received ${shown(value)}`,
    );
  }
  return value;
}

function settingsOf(options: ServeWorkersOptions | undefined): Settings {
  if (options !== undefined && (typeof options !== "object" || !options)) {
    throw new TypeError(
      `Cannot serve from workers: options must be an object, received ${
        shown(options)
      }`,
    );
  }
  const o = options ?? {};
  const known = new Set([
    "workers",
    "port",
    "grace",
    "exitTimeout",
    "startTimeout",
    "timeout",
    "holdTimeout",
    "restartDelay",
    "maxRestartDelay",
    "stableAfter",
    "maxCrashes",
    "signals",
    "onCrash",
  ]);
  for (const key of Object.keys(o)) {
    if (!known.has(key)) {
      throw new RangeError(
        `Cannot serve from workers: unknown option, received ${
          JSON.stringify(key)
        }`,
      );
    }
  }
  const workers = o.workers ?? defaultWorkers();
  if (!Number.isInteger(workers) || workers < 1 || workers > MAX_WORKERS) {
    throw new RangeError(
      `Cannot serve from workers: workers must be a whole number from 1 to ${MAX_WORKERS}, received ${
        shown(workers)
      }`,
    );
  }
  const port = o.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot serve from workers: port must be a whole number from 0 to 65535, received ${
        shown(port)
      }`,
    );
  }
  const timeout = seconds("timeout", o.timeout, 30);
  const startTimeout = seconds("startTimeout", o.startTimeout, 30);
  if (timeout === 0 || startTimeout === 0) {
    throw new RangeError(
      `Cannot serve from workers: timeout and startTimeout must be > 0, received timeout=${timeout} startTimeout=${startTimeout}`,
    );
  }
  const restartDelay = seconds("restartDelay", o.restartDelay, 0.1);
  const maxRestartDelay = seconds("maxRestartDelay", o.maxRestartDelay, 10);
  if (maxRestartDelay < restartDelay) {
    throw new RangeError(
      `Cannot serve from workers: maxRestartDelay must be >= restartDelay, received maxRestartDelay=${maxRestartDelay} restartDelay=${restartDelay}`,
    );
  }
  const maxCrashes = o.maxCrashes ?? 10;
  if (
    typeof maxCrashes !== "number" ||
    !(Number.isInteger(maxCrashes) && maxCrashes >= 0 ||
      maxCrashes === Infinity)
  ) {
    throw new RangeError(
      `Cannot serve from workers: maxCrashes must be a whole number >= 0 or Infinity, received ${
        shown(maxCrashes)
      }`,
    );
  }
  if (o.signals !== undefined && typeof o.signals !== "boolean") {
    throw new TypeError(
      `Cannot serve from workers: signals must be a boolean, received ${
        shown(o.signals)
      }`,
    );
  }
  if (o.onCrash !== undefined && typeof o.onCrash !== "function") {
    throw new TypeError(
      `Cannot serve from workers: onCrash must be a function, received ${
        shown(o.onCrash)
      }`,
    );
  }
  return {
    workers,
    port,
    grace: seconds("grace", o.grace, 10, true),
    exitTimeout: seconds("exitTimeout", o.exitTimeout, 5),
    startTimeout,
    timeout,
    holdTimeout: seconds("holdTimeout", o.holdTimeout, 60),
    restartDelay,
    maxRestartDelay,
    stableAfter: seconds("stableAfter", o.stableAfter, 10),
    maxCrashes,
    signals: o.signals ?? true,
    onCrash: o.onCrash ?? logCrash,
  };
}

function logCrash({ index, error, restartIn }: WorkerCrash): void {
  console.error(
    `serveWorkers: worker ${index} crashed: ${error.name}: ${error.message}; ${
      restartIn === null ? "giving up" : `restarting in ${restartIn} s`
    }`,
  );
}

function revive(
  plain: { name: string; message: string; stack?: string },
): Error {
  const error = new Error(plain.message);
  error.name = plain.name;
  if (plain.stack !== undefined) error.stack = plain.stack;
  return error;
}

const SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];

class Supervisor implements WorkerSupervisor {
  readonly #url: string;
  readonly #settings: Settings;
  readonly #slots: Slot[] = [];
  readonly #closed = Promise.withResolvers<void>();
  readonly #exited = Promise.withResolvers<void>();
  #addresses: Deno.Addr[] = [];
  #port: number;
  #restarts = 0;
  #closing = false;
  #failure: Error | null = null;
  #ping: ReturnType<typeof setInterval> | undefined;
  #seq = 0;
  #signalled = 0;
  #listening = false;
  /** Listeners that keep the port while no worker serves (see #holdPort). */
  #holders: Deno.Listener[] = [];
  /** Settles once the holders' accept loops have ended. */
  #accepting: Promise<unknown> = Promise.resolve();
  /**
   * The connections the holders accepted, waiting for a worker, each with
   * where its relay reaches the workers (see relayHost).
   */
  #held: {
    conn: Deno.Conn;
    hostname: string;
    /** Closes it after `holdTimeout` (see #holdPort). */
    timer: ReturnType<typeof setTimeout>;
  }[] = [];
  /** Both ends of every relay running (see #relay), to close on exit. */
  readonly #relayed = new Set<Deno.Conn>();
  /** Settles once every holder's accept loop and every relay has ended. */
  #holding: Promise<void> = Promise.resolve();
  #settled = false;
  /** When close() terminates the workers still running, in ms. */
  #stopDeadline = Infinity;
  /** The first signal that came, while the workers started or served. */
  #signal: Deno.Signal | null = null;
  readonly #onSignal = new Map<Deno.Signal, () => void>(
    SIGNALS.map((sig) => [sig, () => {
      this.#signalled++;
      this.#signal ??= sig;
      if (this.#signalled === 1) this.close();
      else this.#terminateAll();
    }]),
  );

  constructor(url: string, settings: Settings) {
    this.#url = url;
    this.#settings = settings;
    this.#port = settings.port;
    for (let index = 0; index < settings.workers; index++) {
      this.#slots.push({
        index,
        worker: null,
        state: "gone",
        servingSince: null,
        lastPong: 0,
        startDeadline: 0,
        crashes: 0,
        delay: settings.restartDelay,
        timer: undefined,
        firstStart: null,
      });
    }
  }

  get workers(): number {
    return this.#settings.workers;
  }

  get addresses(): readonly Deno.Addr[] {
    return this.#addresses;
  }

  get restarts(): number {
    return this.#restarts;
  }

  get closed(): Promise<void> {
    return this.#closed.promise;
  }

  get [Symbol.toStringTag](): string {
    const running = this.#slots.filter((s) => s.state === "running").length;
    return `WorkerSupervisor ${
      this.#closing ? "closing" : "serving"
    } ${running}/${this.#settings.workers} running, ${this.#restarts} restarts`;
  }

  /** Starts the first worker, then the others on its port. */
  async start(): Promise<void> {
    if (this.#settings.signals) {
      // From the start: a Ctrl-C while the workers start stops them.
      for (const [sig, listener] of this.#onSignal) {
        Deno.addSignalListener(sig, listener);
        // run() leaves these signals to the supervisor meanwhile.
        claimSignal(sig, 1);
      }
      this.#listening = true;
    }
    try {
      await this.#startFirst(this.#slots[0]);
      this.#checkStarting();
      const first = this.#addresses.find((a) => "port" in a) as
        | Deno.NetAddr
        | undefined;
      if (first !== undefined) this.#port = first.port;
      await Promise.all(this.#slots.slice(1).map((s) => this.#startFirst(s)));
      this.#checkStarting();
    } catch (error) {
      await this.close({ grace: 0 });
      if (this.#signal === null) throw error;
      throw new Deno.errors.Interrupted(
        `Cannot serve from workers: ${this.#signal} came while they started; the started ones were closed`,
        { cause: error },
      );
    }
    const { timeout } = this.#settings;
    this.#ping = setInterval(
      () => this.#checkAlive(),
      Math.min(1000, timeout * 250),
    );
  }

  /**
   * Throws when a signal closed the supervisor in the turn a worker became
   * ready, before start() went on: no worker may start after close(), and
   * no ping interval outlive it.
   */
  #checkStarting(): void {
    if (this.#closing) {
      throw new Error("the supervisor closed while the workers started");
    }
  }

  async #startFirst(slot: Slot): Promise<void> {
    slot.firstStart = Promise.withResolvers<void>();
    this.#start(slot);
    try {
      await slot.firstStart.promise;
    } catch (error) {
      // The first worker listened without reusePort: the others cannot.
      const hint = slot.index > 0 && (error as Error).name === "AddrInUse"
        ? "; every worker must listen on the port with reusePort: true"
        : "";
      throw new Error(
        `Cannot serve from workers: worker ${slot.index} failed to start: ${
          (error as Error).message
        }${hint}`,
        { cause: error },
      );
    } finally {
      slot.firstStart = null;
    }
  }

  #start(slot: Slot): void {
    const worker = new Worker(WORKER_MAIN, {
      type: "module",
      name: `tulip serveWorkers ${slot.index}`,
    });
    slot.worker = worker;
    slot.state = "starting";
    slot.servingSince = null;
    slot.startDeadline = performance.now() + this.#settings.startTimeout * 1000;
    worker.onmessage = (event) => {
      if (slot.worker === worker) this.#onMessage(slot, event.data);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      if (slot.worker === worker) {
        this.#crash(slot, event.error ?? new Error(event.message));
      }
    };
    worker.onmessageerror = () => {
      if (slot.worker === worker) {
        this.#crash(slot, new Error("a message from it could not be read"));
      }
    };
    const { startTimeout } = this.#settings;
    slot.timer = after(startTimeout, () => {
      slot.timer = undefined;
      this.#crash(
        slot,
        new Error(`it did not start serving within ${startTimeout} s`),
      );
    });
    worker.postMessage({
      type: "start",
      moduleUrl: this.#url,
      info: {
        index: slot.index,
        workers: this.#settings.workers,
        port: this.#port,
      },
    });
  }

  #onMessage(slot: Slot, message: WorkerMessage): void {
    switch (message?.type) {
      case "ready":
        if (slot.state === "stopping" && slot.servingSince === null) {
          // Told to shut down as it started: its servers now have until
          // close()'s limit, not its start's.
          slot.servingSince = performance.now();
          clearTimeout(slot.timer);
          this.#stopTimer(slot, Infinity);
        }
        if (slot.state !== "starting") return;
        clearTimeout(slot.timer);
        slot.timer = undefined;
        slot.state = "running";
        slot.lastPong = slot.servingSince = performance.now();
        this.#releasePort(true);
        if (slot.index === 0 && this.#addresses.length === 0) {
          this.#addresses = message.addresses;
        }
        slot.firstStart?.resolve();
        return;
      case "pong":
        slot.lastPong = performance.now();
        return;
      case "failed":
        this.#crash(slot, revive(message.error));
        return;
      case "closed":
        this.#gone(slot);
        return;
    }
  }

  #checkAlive(): void {
    const now = performance.now();
    const { timeout } = this.#settings;
    for (const slot of this.#slots) {
      if (slot.state !== "running") continue;
      if (now - slot.lastPong > timeout * 1000) {
        // It served until it last answered, not until this is noticed.
        this.#crash(
          slot,
          new Error(
            `it did not answer for ${timeout} s: it hung, or ended by itself`,
          ),
          slot.lastPong,
        );
      } else {
        slot.worker!.postMessage({ type: "ping", seq: ++this.#seq });
      }
    }
  }

  /**
   * Ends a worker for good: it closed, crashed while closing or starting,
   * or timed out.
   */
  #gone(slot: Slot, error?: Error): void {
    slot.firstStart?.reject(
      error ?? new Error("the supervisor closed while it started"),
    );
    slot.worker?.terminate();
    slot.worker = null;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.state = "gone";
    this.#checkExited();
  }

  /**
   * A worker crashed: it is terminated and started again later, or given
   * up on. `servedUntil` (ms): when it last served, if before now (it
   * hung).
   */
  #crash(slot: Slot, error: Error, servedUntil = performance.now()): void {
    if (slot.state === "gone" || slot.state === "waiting") return;
    if (this.#closing || slot.firstStart !== null) {
      this.#gone(slot, error);
      return;
    }
    const worker = slot.worker;
    const served = slot.state === "running";
    slot.worker = null;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    const s = this.#settings;
    if (
      slot.servingSince !== null &&
      servedUntil - slot.servingSince >= s.stableAfter * 1000
    ) {
      slot.crashes = 0;
      slot.delay = s.restartDelay;
    }
    slot.crashes++;
    if (slot.crashes > s.maxCrashes) {
      worker?.terminate();
      slot.state = "gone";
      this.#failure = new Error(
        `Cannot keep worker ${slot.index} running: it crashed ${slot.crashes} time${
          slot.crashes === 1 ? "" : "s"
        } in a row, each before it had served ${s.stableAfter} s; the last error: ${error.name}: ${error.message}`,
        { cause: error },
      );
      this.#report({ index: slot.index, error, restartIn: null });
      this.close();
      return;
    }
    slot.state = "waiting";
    if (served && !this.#slots.some((other) => other.state === "running")) {
      // Join its socket before it goes with the worker, or take its
      // place when the worker ended itself and closed it already.
      this.#holdPort();
    }
    worker?.terminate();
    const restartIn = slot.delay;
    slot.delay = Math.min(slot.delay * 2, s.maxRestartDelay);
    this.#report({ index: slot.index, error, restartIn });
    slot.timer = after(restartIn, () => {
      slot.timer = undefined;
      this.#restarts++;
      this.#start(slot);
    });
  }

  /**
   * Keeps the port while no worker serves, as a cluster primary or
   * gunicorn's arbiter does by holding the listening socket: without it,
   * another program could bind the port (port 0 gave one of the
   * system's, which it hands out again) and the restarted worker would
   * fail with AddrInUse, or share the port with a stranger's reusePort
   * socket. Each holder listens with `reusePort` beside the crashed
   * worker's socket, or in its place when it ended itself (a worker that
   * listens without `reusePort` makes this fail, and nothing is held),
   * and keeps what it accepts, unread, for the worker that serves next
   * (each up to `holdTimeout`, then closed):
   * closing it at once would lose the request, and the restarted worker
   * listens before it is ready, the kernel meanwhile giving the holder's
   * socket a share of the connections. Released as soon as a worker is
   * ready, its connections then relayed to it (#relay), and on close,
   * its connections then closed.
   */
  #holdPort(): void {
    // Deno.listen({ reusePort }) needs --unstable-net (Deno.listenDatagram
    // exists only then); without it Deno ends the process.
    const unstableNet =
      typeof (Deno as { listenDatagram?: unknown }).listenDatagram ===
        "function";
    if (this.#holders.length > 0 || !unstableNet) return;
    const loops: Promise<void>[] = [];
    for (const address of this.#addresses) {
      if (address.transport !== "tcp") continue;
      let holder: Deno.Listener;
      try {
        holder = Deno.listen({
          hostname: address.hostname,
          port: address.port,
          reusePort: true,
        });
      } catch {
        // Bound without reusePort, or taken: the restart will tell.
        continue;
      }
      this.#holders.push(holder);
      loops.push((async () => {
        try {
          for await (const conn of holder) {
            // Accepted as close() released the port: no worker takes it.
            if (this.#closing) {
              conn.close();
            } else if (this.#held.length < MAX_HELD) {
              const held = {
                conn,
                hostname: relayHost(address.hostname),
                timer: after(this.#settings.holdTimeout, () => {
                  this.#held.splice(this.#held.indexOf(held), 1);
                  conn.close();
                }),
              };
              this.#held.push(held);
            } else {
              conn.close();
            }
          }
        } catch {
          // Closed by #releasePort.
        }
      })());
    }
    this.#accepting = Promise.all(loops);
    this.#holding = joined(this.#holding, this.#accepting);
  }

  /**
   * Closes the holders; `relay`: a worker is ready, and what they
   * accepted is relayed to it, else closed. (What a closing holder still
   * resets: see serveWorkers.)
   */
  #releasePort(relay: boolean): void {
    for (const holder of this.#holders) holder.close();
    this.#holders = [];
    const held = this.#held;
    this.#held = [];
    for (const { timer } of held) clearTimeout(timer);
    if (!relay) {
      for (const { conn } of held) conn.close();
      return;
    }
    if (held.length === 0) return;
    for (const { conn } of held) this.#relayed.add(conn);
    // Once the holders' sockets are gone (Deno drops a listener's socket
    // once its pending accept has ended), the port reaches workers only;
    // before, a relay could land on a holder and be reset with it.
    const relays = this.#accepting.then(() =>
      Promise.all(held.map(({ conn, hostname }) => this.#relay(conn, hostname)))
    );
    this.#holding = joined(this.#holding, relays);
  }

  /**
   * Joins a held connection to a new one to `hostname` (see relayHost),
   * which a worker now serves, and passes bytes both ways until the
   * worker's end is done and the client has sent its last (or
   * RELAY_LINGER_MS), the client stops reading for RELAY_WRITE_TIMEOUT_MS,
   * or either fails (the client's EOF half-closes the worker's end); the
   * worker sees it come from the supervisor's address. Ends, with the
   * client's connection closed, when no worker can be reached.
   */
  async #relay(client: Deno.Conn, hostname: string): Promise<void> {
    if (!this.#relayed.has(client)) return; // The supervisor exited.
    let upstream: Deno.Conn | null = null;
    let toWorker: Promise<void> = Promise.resolve();
    const end = () => {
      for (const conn of [client, upstream]) {
        if (conn !== null && this.#relayed.delete(conn)) closeQuietly(conn);
      }
    };
    try {
      const { port } = client.localAddr as Deno.NetAddr;
      upstream = await Deno.connect({ hostname, port });
      if (!this.#relayed.has(client)) {
        // The supervisor exited meanwhile.
        upstream.close();
        return;
      }
      this.#relayed.add(upstream);
      // A client that keeps its end open once the worker closed its own
      // would otherwise keep the relay too.
      toWorker = pump(client, upstream).catch(end);
      await pump(upstream, client, end);
      // The worker's end is done; the client's bytes still go to it until
      // the client's EOF, a failed write (the worker closed), or
      // RELAY_LINGER_MS.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        toWorker,
        new Promise((resolve) => timer = setTimeout(resolve, RELAY_LINGER_MS)),
      ]);
      clearTimeout(timer);
    } catch {
      // Reset, or closed on exit: the other end goes too.
    } finally {
      end();
      await toWorker;
    }
  }

  /** Closes every relay's connections: the supervisor has exited. */
  #closeRelays(): void {
    for (const conn of this.#relayed) closeQuietly(conn);
    this.#relayed.clear();
  }

  #report(crash: WorkerCrash): void {
    try {
      this.#settings.onCrash(crash);
    } catch (error) {
      console.error("serveWorkers: onCrash threw", error);
    }
  }

  close(options?: ServerShutdownOptions): Promise<void> {
    if (this.#closing) return this.#exited.promise;
    const grace = seconds(
      "grace",
      options?.grace,
      this.#settings.grace,
      true,
    );
    this.#closing = true;
    this.#stopDeadline = performance.now() +
      (grace + this.#settings.exitTimeout) * 1000;
    clearInterval(this.#ping);
    // Listening stops now, as in the workers; no worker takes what is held.
    this.#releasePort(false);
    for (const slot of this.#slots) {
      if (slot.state === "waiting") {
        this.#gone(slot);
      } else if (slot.state === "starting" || slot.state === "running") {
        const starting = slot.state === "starting";
        slot.state = "stopping";
        clearTimeout(slot.timer);
        slot.timer = undefined;
        slot.worker!.postMessage({ type: "shutdown", grace });
        // One still starting has no server to shut down before it is
        // ready: it goes when its start would have timed out, if sooner.
        this.#stopTimer(slot, starting ? slot.startDeadline : Infinity);
      }
    }
    this.#checkExited();
    return this.#exited.promise;
  }

  /**
   * Terminates a stopping worker at close()'s limit (`grace` +
   * `exitTimeout`), or at `deadline` (ms) if sooner; none when both are
   * endless.
   */
  #stopTimer(slot: Slot, deadline: number): void {
    const at = Math.min(this.#stopDeadline, deadline);
    if (at === Infinity) return;
    slot.timer = after(Math.max(0, at - performance.now()) / 1000, () => {
      slot.timer = undefined;
      this.#gone(slot);
    });
  }

  #terminateAll(): void {
    this.#closing = true;
    clearInterval(this.#ping);
    for (const slot of this.#slots) {
      if (slot.state !== "gone") this.#gone(slot);
    }
  }

  #checkExited(): void {
    if (!this.#closing) return;
    if (this.#slots.some((slot) => slot.state !== "gone")) return;
    if (this.#listening) {
      this.#listening = false;
      for (const [sig, listener] of this.#onSignal) {
        Deno.removeSignalListener(sig, listener);
        claimSignal(sig, -1);
      }
    }
    if (this.#settled) return;
    this.#settled = true;
    this.#closeRelays();
    this.#holding.then(() => {
      this.#exited.resolve();
      if (this.#failure !== null) this.#closed.reject(this.#failure);
      else this.#closed.resolve();
    });
  }

  /** Closes gracefully and waits; rejects as `closed` does. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
    await this.#closed.promise;
  }
}

/**
 * Serves one address from `workers` Web Workers, each running its own
 * tulip loop, so that a server uses every core. Each worker imports the
 * module at `moduleUrl` and calls its export `serve(loop, info)`, which
 * creates the worker's server(s) on `info.port` with `reusePort: true`
 * and returns them: a `Server`, an array of them, or a promise of either.
 * The workers' listening sockets share the port, and Linux spreads
 * incoming connections over them (`SO_REUSEPORT`), so no thread hands
 * connections around.
 *
 * The supervisor, in the main thread, starts the first worker, then the
 * others on the port it got, and resolves once all serve. A worker that
 * crashes — an error nothing caught, a rejection nobody handled, a call
 * to `Deno.exit()`, `process.exit()` or `self.close()`, or no answer to
 * pings for `timeout` seconds — is terminated (its open
 * connections are lost) and started again after `restartDelay` seconds,
 * doubling with each crash in a row up to `maxRestartDelay`; after
 * `maxCrashes` crashes in a row the supervisor gives up, closes the other
 * workers, and `closed` rejects. While no worker serves, the supervisor
 * keeps the port itself, listening with `reusePort`, so that no other
 * program takes it before the restart. What it accepts meanwhile (up to
 * 1024 connections; past them it closes what it accepts at once) waits,
 * unread, up to `holdTimeout` seconds (then it is closed), for the worker
 * that serves next, which then gets it relayed
 * over the loopback, bytes both ways (to the address listened on, the
 * loopback for `0.0.0.0` or `::`; the worker sees the supervisor's
 * address as the peer's; a relay whose client stops reading for 60 s
 * ends): a client waits out the restart instead of losing its request,
 * also one the kernel gave the supervisor while the restarted worker
 * listened but was not yet ready. `close()` and giving up close what is
 * held, also what a holder accepts as they do. Only a connection the kernel completes on the
 * supervisor's socket in the instant it closes is reset, as when any
 * listener closes (with Linux's `net.ipv4.tcp_migrate_req = 1` the kernel
 * hands it to a worker instead); so is one queued on a crashed worker's
 * own socket. `close()`, or by default the first SIGINT or SIGTERM, shuts
 * every worker down gracefully: each calls `shutdown({ grace })` on its
 * servers, so an HTTP request in flight gets its whole answer.
 *
 * Workers inherit the program's permissions; Deno checks read access for
 * every module a worker loads, so the program needs `--allow-read` for
 * the worker module's files and tulip's own (`--allow-import` for remote
 * ones). Sharing a port needs
 * Deno's `--unstable-net` (without it, Deno ends the process when the
 * first worker listens with `reusePort`, naming the flag). Only Linux
 * spreads connections over sockets that share a port, and Deno cannot
 * hand an accepted connection to another worker (a `Deno.Conn` sent with
 * `postMessage()` arrives as an empty object), so elsewhere this rejects
 * with `Deno.errors.NotSupported`.
 *
 * Anchors: `deno serve --parallel`, Node's `cluster`, gunicorn's
 * arbiter.
 *
 * @param moduleUrl The worker module's absolute URL, such as
 * `new URL("./worker.ts", import.meta.url)`.
 * @param options The number of workers, the port, the timeouts (in
 * seconds), the restart back-off, and signal handling.
 * @returns A promise of the supervisor, once every worker serves.
 * @throws {TypeError} When `moduleUrl` is not an absolute URL, or an
 * option has the wrong type.
 * @throws {RangeError} When an option is out of range or unknown.
 * @throws {Deno.errors.NotSupported} When the system is not Linux.
 * @throws {Deno.errors.Interrupted} When `SIGINT` or `SIGTERM` came
 * while the workers started (see `signals`).
 * @throws {Error} When a worker fails to start; the message names the
 * worker and the cause (the module did not load, has no `serve` export,
 * `serve()` failed, or did not finish within `startTimeout` seconds).
 *
 * @example Two workers answering on one port
 * ```ts
 * import { serveWorkers } from "@tulip/tulip/loop";
 * import { assertMatch } from "@std/assert";
 *
 * // The worker module; usually a file: new URL("./worker.ts", import.meta.url).
 * const worker = `
 *   import { HttpServerProtocol } from "@tulip/tulip/protocols";
 *   export function serve(loop, info) {
 *     return loop.createServer(
 *       () => new HttpServerProtocol(() => new Response("worker " + info.index)),
 *       "127.0.0.1",
 *       info.port,
 *       { reusePort: true },
 *     );
 *   }
 * `;
 * const workers = await serveWorkers(
 *   `data:application/javascript,${encodeURIComponent(worker)}`,
 *   { workers: 2, signals: false },
 * );
 * const { port } = workers.addresses[0] as Deno.NetAddr;
 * const response = await fetch(`http://127.0.0.1:${port}/`);
 * assertMatch(await response.text(), /^worker [01]$/);
 * await workers.close();
 * await workers.closed;
 * ```
 */
export async function serveWorkers(
  moduleUrl: string | URL,
  options?: ServeWorkersOptions,
): Promise<WorkerSupervisor> {
  let url: string;
  if (moduleUrl instanceof URL) {
    url = moduleUrl.href;
  } else if (typeof moduleUrl === "string" && URL.canParse(moduleUrl)) {
    url = new URL(moduleUrl).href;
  } else {
    throw new TypeError(
      `Cannot serve from workers: moduleUrl must be an absolute URL, such as new URL("./worker.ts", import.meta.url), received ${
        shown(moduleUrl)
      }`,
    );
  }
  const settings = settingsOf(options);
  if (Deno.build.os !== "linux") {
    throw new Deno.errors.NotSupported(
      `Cannot serve from workers: only Linux spreads connections over sockets that share a port (SO_REUSEPORT), and Deno cannot hand an accepted connection to a worker, received ${Deno.build.os}`,
    );
  }
  const supervisor = new Supervisor(url, settings);
  await supervisor.start();
  return supervisor;
}

/**
 * Settles once both have, with no value: a chain of them, one per
 * restart, keeps no nested arrays of earlier results.
 */
function joined(a: Promise<unknown>, b: Promise<unknown>): Promise<void> {
  return Promise.all([a, b]).then(() => {});
}
