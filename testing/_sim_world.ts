/**
 * The simulated world: one virtual clock, the hosts, the links between
 * them, the network's event queue, the trace, and the driver that runs
 * every host's loop in a fixed order.
 *
 * @module
 */

import type { Task } from "../tasks/task.ts";
import type { Future } from "../futures/future.ts";
import { hostHop, keptUnretrieved } from "../futures/_runtime.ts";
import { AsyncLocalStorage } from "node:async_hooks";
import { Random, seedBits } from "./_sim_random.ts";
import { SimTimers } from "./_sim_timers.ts";
import { simHost, type SimNetLoop, SimulatedLoop } from "./_sim_loop.ts";
import type { SimStream } from "./_sim_stream.ts";
import type { SimDatagram } from "./_sim_datagram.ts";
import type { SimServer } from "./_sim_stream.ts";

/** One event of a run, as `Simulation.trace` lists it. */
export interface TraceEvent {
  /** The virtual time, in seconds. */
  time: number;
  /** The host it happened on (or `"sim"` for the simulation itself). */
  host: string;
  /** What happened, one word: `connect`, `recv`, `crash`, … */
  kind: string;
  /** The details. */
  detail: string;
}

/** Formats an event as one line of text. */
export function formatEvent(e: TraceEvent): string {
  return `${e.time.toFixed(6)} ${e.host} ${e.kind}${
    e.detail === "" ? "" : " " + e.detail
  }`;
}

/** A link's settings. */
export interface LinkSettings {
  latency: number;
  jitter: number;
  bandwidth: number;
}

/** The state of the link between two hosts, both directions. */
export interface Link extends LinkSettings {
  readonly a: SimHost;
  readonly b: SimHost;
  /**
   * `""` when up, else why nothing crosses it: `"partition"` when
   * partitioned (held or not), `"hold"` when only held.
   */
  blocked: "" | "partition" | "hold";
  /** Partitioned until `repair()`. */
  partitioned: boolean;
  /** Held until `release()`. */
  held: boolean;
  /**
   * The partition or hold random faults put on the link, until they undo
   * it; `null` once a call by hand of the same kind takes it over.
   */
  fault: { kind: "partition" | "hold" } | null;
  /**
   * How many partitions began: a datagram on the wire when one begins is
   * lost, even if the link is repaired before it would have arrived.
   */
  cuts: number;
  /** When each direction's wire is free again (a→b, b→a). */
  busy: [number, number];
  /** Messages waiting for the link to come back. */
  stalled: Stalled[];
  /** The pending check for stalled messages that waited too long. */
  stallCheck: boolean;
}

/** A message that met a blocked link. */
interface Stalled {
  since: number;
  resend: () => void;
  onTimeout?: () => void;
}

/** What kind of traffic a message is: it decides what a partition does. */
export type MessageKind = "stream" | "control" | "datagram";

/** The controls of one host's loop that only the driver uses. */
export interface LoopControls {
  step(): Promise<void>;
  readyCount(): number;
  nextTimerWhen(): number | null;
}

/** Settings the world keeps for the whole run. */
export interface WorldSettings {
  seed: number;
  link: LinkSettings;
  receiveBuffer: number;
  connectTimeout: number;
  retransmitTimeout: number;
  traceLimit: number;
  datagramDrop: number;
  datagramDuplicate: number;
  failOnError: boolean;
}

/** A simulated host: its name, address, loop and network state. */
export class SimHost {
  readonly name: string;
  readonly index: number;
  readonly address: string;
  readonly client: boolean;
  readonly main: (loop: SimulatedLoop) => unknown;
  loop: SimNetLoop | null = null;
  controls: LoopControls | null = null;
  /** Running: not crashed (or not yet started). */
  up = false;
  /** Kept down by `crash()` before the run started. */
  downAtStart = false;
  /** A client whose main finished. */
  done = false;
  /** Something was scheduled on the loop since `ready`/`nextWhen` were read. */
  dirty = true;
  /** The loop had callbacks ready when last looked at. */
  ready = false;
  /** The loop's next timer when last looked at (`Infinity`: none). */
  nextWhen = Infinity;
  /** Bumped on each crash, so late events find the host changed. */
  generation = 0;
  task: Task<unknown> | null = null;
  readonly ends: Set<SimStream> = new Set();
  readonly listeners: Map<string, SimServer[]> = new Map();
  /** Datagram endpoints by port; one port may have one per address. */
  readonly datagrams: Map<number, SimDatagram[]> = new Map();
  #nextPort = 49152;

  constructor(
    name: string,
    index: number,
    client: boolean,
    main: (loop: SimulatedLoop) => unknown,
    address = `10.0.${index >> 8}.${index & 255}`,
  ) {
    this.name = name;
    this.index = index;
    this.address = address;
    this.client = client;
    this.main = main;
  }

  /** A free ephemeral port. */
  allocPort(used: (port: number) => boolean): number {
    for (let i = 0; i < 16384; i++) {
      const port = this.#nextPort;
      this.#nextPort = port >= 65535 ? 49152 : port + 1;
      if (!used(port)) return port;
    }
    throw new RangeError(
      `Cannot pick a port on ${this.name}: all 16384 ephemeral ports are in use`,
    );
  }
}

interface QueuedEvent {
  time: number;
  seq: number;
  fn: () => void;
}

/** A binary heap of events, by time then by order of scheduling. */
class EventQueue {
  #heap: QueuedEvent[] = [];
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(time: number, fn: () => void): void {
    const heap = this.#heap;
    const e = { time, seq: this.#seq++, fn };
    heap.push(e);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, heap[p])) break;
      heap[i] = heap[p];
      i = p;
    }
    heap[i] = e;
  }

  peekTime(): number | null {
    return this.#heap.length > 0 ? this.#heap[0].time : null;
  }

  pop(): QueuedEvent {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      const n = heap.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(heap[r], heap[l]) ? r : l;
        if (!before(heap[c], last)) break;
        heap[i] = heap[c];
        i = c;
      }
      heap[i] = last;
    }
    return top;
  }

  clear(): void {
    this.#heap = [];
  }
}

function before(a: QueuedEvent, b: QueuedEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

/**
 * How long, in real seconds, the run waits for work a host started outside
 * the simulation (`crypto.subtle`, a file call) before it fails.
 */
const OUTSIDE_TIMEOUT = 60;

/** Why a run stopped early. */
export class RunFailure {
  constructor(readonly message: string, readonly cause?: unknown) {}
}

/** The names and addresses by which every host reaches itself. */
export const SELF_NAMES: ReadonlySet<string> = new Set([
  "localhost",
  "127.0.0.1",
  "::1",
  "0.0.0.0",
]);

/** The loopback address a name means (`undefined`: not a loopback one). */
export function loopbackAddress(name: string): string | undefined {
  if (name === "::1") return "::1";
  if (name === "127.0.0.1" || name === "localhost") return "127.0.0.1";
  return undefined;
}

/**
 * What a listener is bound to, for one name it was given: an address, or
 * `"0.0.0.0"` (every IPv4 address) or `"::"` (every address).
 */
export function bindOf(name: string, host: SimHost): string {
  if (name === "0.0.0.0" || name === "::") return name;
  return loopbackAddress(name) ?? host.address;
}

/**
 * Whether a listener (or datagram endpoint) bound to `bind` takes a
 * connection (or datagram) to `address`.
 */
export function binds(bind: string, address: string): boolean {
  return bind === "::" || bind === address ||
    (bind === "0.0.0.0" && address !== "::1");
}

/**
 * Whether two binds share an address, so that one port cannot take both
 * (listeners and datagram endpoints alike).
 */
export function bindsOverlap(a: string, b: string): boolean {
  return binds(a, b) || binds(b, a);
}

/**
 * Everything a simulation shares. `Simulation` is its public face; the
 * loops, transports and servers work on it directly.
 */
export class World {
  readonly settings: WorldSettings;
  /** The network's random choices. */
  readonly rng: Random;
  /** The hosts' own random numbers (`Math.random`, `sim.random()`). */
  readonly userRng: Random;
  now = 0;
  readonly hosts: SimHost[] = [];
  readonly byName: Map<string, SimHost> = new Map();
  readonly byAddress: Map<string, SimHost> = new Map();
  readonly #links = new Map<number, Link>();
  readonly #events = new EventQueue();
  #trace: TraceEvent[] = [];
  #traceStart = 0;
  /** Loops of crashed hosts to close once they stop running. */
  readonly #closing: SimNetLoop[] = [];
  failure: RunFailure | null = null;
  /**
   * The loop of the host whose code runs: its iteration and what that
   * resumes.
   */
  readonly #hostCode = new AsyncLocalStorage<SimNetLoop>();
  /** The timers hosts' code makes with `setTimeout()`/`setInterval()`. */
  readonly timers: SimTimers = new SimTimers(
    () => this.#hostCode.getStore(),
    simHost,
    (error) => this.uncaught(error),
  );
  /**
   * The rejections hosts' code left unhandled, with the loop of the code:
   * a real loop runs its iterations back to back, and the runtime looks
   * for them only when the loop waits (see `unhandled()`).
   */
  readonly #unhandled = new Map<Promise<unknown>, [SimNetLoop, unknown]>();
  /** The loop of the host that ran last: its microtasks are settling. */
  current: SimNetLoop | null = null;
  running = false;
  finished = false;

  constructor(settings: WorldSettings) {
    this.settings = settings;
    const bits = seedBits(settings.seed);
    this.rng = new Random(bits);
    this.userRng = new Random(bits ^ 0x5bd1e995);
  }

  // ---- Trace ----

  record(host: string, kind: string, detail = ""): void {
    const trace = this.#trace;
    trace.push({ time: this.now, host, kind, detail });
    const limit = this.settings.traceLimit;
    if (trace.length - this.#traceStart > limit) {
      this.#traceStart++;
      if (this.#traceStart >= 4096 && this.#traceStart * 2 >= trace.length) {
        this.#trace = trace.slice(this.#traceStart);
        this.#traceStart = 0;
      }
    }
  }

  trace(): TraceEvent[] {
    return this.#trace.slice(this.#traceStart);
  }

  // ---- Events ----

  /** Runs `fn` at virtual time `time` (never earlier than now). */
  at(time: number, fn: () => void): void {
    this.#events.push(time < this.now ? this.now : time, fn);
  }

  // ---- Hosts and names ----

  addHost(
    name: string,
    client: boolean,
    main: (loop: SimulatedLoop) => unknown,
  ): SimHost {
    const host = new SimHost(name, this.hosts.length + 1, client, main);
    this.hosts.push(host);
    this.byName.set(name, host);
    this.byAddress.set(host.address, host);
    return host;
  }

  /** The host a name or address means, seen from `from`; `null` if none. */
  resolve(from: SimHost, name: string): SimHost | null {
    if (SELF_NAMES.has(name)) return from;
    return this.byName.get(name) ?? this.byAddress.get(name) ?? null;
  }

  // ---- Links ----

  link(a: SimHost, b: SimHost): Link {
    const [x, y] = a.index < b.index ? [a, b] : [b, a];
    const key = x.index * 65536 + y.index;
    let link = this.#links.get(key);
    if (link === undefined) {
      link = {
        a: x,
        b: y,
        ...this.settings.link,
        blocked: "",
        partitioned: false,
        held: false,
        fault: null,
        cuts: 0,
        busy: [0, 0],
        stalled: [],
        stallCheck: false,
      };
      this.#links.set(key, link);
    }
    return link;
  }

  /**
   * Partitions, repairs, holds or releases two hosts' link. A partition
   * and a hold are separate: each is undone only by its own call, and
   * stalled traffic goes on once neither is left.
   */
  block(
    a: SimHost,
    b: SimHost,
    what: "partition" | "repair" | "hold" | "release",
  ): void {
    const link = this.link(a, b);
    const was = link.blocked;
    if (what === "partition" || what === "repair") {
      if (what === "partition" && !link.partitioned) link.cuts++;
      link.partitioned = what === "partition";
    } else link.held = what === "hold";
    link.blocked = link.partitioned ? "partition" : link.held ? "hold" : "";
    if (link.blocked !== "" || was === "") return;
    const stalled = link.stalled;
    link.stalled = [];
    for (const s of stalled) s.resend();
  }

  /**
   * Sends a message of `bytes` bytes from `from` to `to`; `arrive` runs
   * when it gets there. Returns the arrival time (`minArrival` keeps a
   * stream's messages in order). On a blocked link the message waits; a
   * datagram sent into a partition, or on the wire when one begins, is
   * lost (a repair before it would have arrived does not bring it back).
   * A stream message that waits longer than the retransmission timeout
   * calls `onTimeout` instead.
   */
  send(
    from: SimHost,
    to: SimHost,
    bytes: number,
    kind: MessageKind,
    arrive: () => void,
    minArrival = 0,
    onTimeout?: () => void,
  ): number {
    let arrival: number;
    // The partitions a datagram must not meet on its way.
    let cuts = 0;
    if (from === to) {
      arrival = this.now;
    } else {
      const link = this.link(from, to);
      cuts = link.partitioned ? -1 : link.cuts;
      const dir = from === link.a ? 0 : 1;
      let depart = this.now;
      if (link.bandwidth !== Infinity && bytes > 0) {
        depart = Math.max(depart, link.busy[dir]) + bytes / link.bandwidth;
        link.busy[dir] = depart;
      }
      arrival = depart + link.latency +
        (link.jitter > 0 ? this.rng.next() * link.jitter : 0);
    }
    if (arrival < minArrival) arrival = minArrival;
    this.at(arrival, () => {
      if (from !== to) {
        const link = this.link(from, to);
        if (kind === "datagram" && link.cuts !== cuts) {
          this.record(to.name, "drop", `datagram from ${from.name}`);
          return;
        }
        if (link.blocked !== "") {
          this.#stall(link, {
            since: this.now,
            resend: () =>
              this.send(from, to, bytes, kind, arrive, 0, onTimeout),
            onTimeout,
          });
          return;
        }
      }
      arrive();
    });
    return arrival;
  }

  #stall(link: Link, s: Stalled): void {
    link.stalled.push(s);
    if (link.stallCheck) return;
    link.stallCheck = true;
    const check = () => {
      link.stallCheck = false;
      if (link.stalled.length === 0) return;
      const rto = this.settings.retransmitTimeout;
      const keep: Stalled[] = [];
      for (const m of link.stalled) {
        // The same sum as the check was scheduled at, so that rounding
        // cannot keep a message due now waiting (and the check spinning).
        if (m.since + rto <= this.now && m.onTimeout !== undefined) {
          m.onTimeout();
        } else keep.push(m);
      }
      link.stalled = keep;
      if (keep.some((m) => m.onTimeout !== undefined)) {
        link.stallCheck = true;
        const first = Math.min(
          ...keep.filter((m) => m.onTimeout !== undefined).map((m) => m.since),
        );
        this.at(first + this.settings.retransmitTimeout, check);
      }
    };
    this.at(this.now + this.settings.retransmitTimeout, check);
  }

  /** A segment size for `available` bytes: whole or cut at random. */
  cut(available: number): number {
    if (available <= 1 || this.rng.next() < 0.5) return available;
    return 1 + this.rng.int(available);
  }

  // ---- Host life ----

  start(host: SimHost): void {
    host.up = true;
    host.done = false;
    let controls: LoopControls | null = null;
    const loop = new SimulatedLoop(this, host, (c) => controls = c);
    host.loop = loop;
    host.controls = controls;
    loop.setExceptionHandler((_loop, context) => {
      const { message, exception } = context;
      const detail = exception === undefined
        ? message
        : `${message}: ${describeError(exception)}`;
      this.record(host.name, "error", detail);
      if (this.settings.failOnError) {
        this.fail(`host ${host.name} reported an error: ${detail}`, exception);
      }
    });
    this.record(host.name, host.generation === 0 ? "start" : "restart");
    const generation = host.generation;
    const task = loop.createTask(() => {
      const r = host.main(loop);
      // An async generator has next() and throw() too, but no task can
      // drive it: its steps would spin without time moving.
      if (isGenerator(r) && Symbol.asyncIterator in r) {
        throw new TypeError(
          `Cannot start host ${host.name}: main returned an async generator; make main an async function or a generator function`,
        );
      }
      if (isGenerator(r)) return r;
      return Promise.resolve(r);
    }, { name: `${host.name} main` });
    host.task = task;
    task.addDoneCallback(() => {
      if (host.generation !== generation || this.finished) return;
      if (task.cancelled()) {
        this.record(host.name, "exit", "cancelled");
        if (host.client) host.done = true;
        return;
      }
      const error = task.exception();
      if (error !== null && error !== undefined) {
        this.record(host.name, "fail", describeError(error));
        this.fail(
          `${host.client ? "client" : "host"} ${host.name} failed: ${
            describeError(error)
          }`,
          error,
        );
        return;
      }
      this.record(host.name, "exit");
      if (host.client) host.done = true;
    });
  }

  crash(host: SimHost): void {
    if (!this.running) {
      host.downAtStart = true;
      return;
    }
    if (!host.up) return;
    host.up = false;
    host.generation++;
    this.record(host.name, "crash");
    for (const end of [...host.ends]) end.crash();
    for (const servers of host.listeners.values()) {
      for (const s of servers) s.crash();
    }
    host.listeners.clear();
    for (const list of host.datagrams.values()) {
      for (const d of list) d.crash();
    }
    host.datagrams.clear();
    const loop = host.loop!;
    host.controls = null;
    host.task = null;
    if (loop.isRunning()) this.#closing.push(loop);
    else loop.close();
  }

  restart(host: SimHost): void {
    if (!this.running) {
      host.downAtStart = false;
      return;
    }
    if (host.up) return;
    this.start(host);
  }

  /**
   * An error a host's code left uncaught (a `queueMicrotask()` or timer
   * callback that threw), which would end the process on a machine: it
   * fails the run, on the host whose code ran.
   *
   * @returns Whether a host's code ran (else the error is not the run's);
   * what a life the host lost in a crash leaves is dropped, as its process
   * is gone.
   */
  uncaught(error: unknown): boolean {
    // The host whose code it was (a promise's reaction keeps the context
    // of the code that awaited): not merely the host that ran last.
    const loop = this.#hostCode.getStore();
    if (loop === undefined || !this.running || this.finished) return false;
    this.#failOn(loop, error, false);
    return true;
  }

  /**
   * A rejection a host's code left unhandled: it fails the run (see
   * `uncaught()`) if it still is when the hosts wait (virtual time is to
   * move on) or the run ends, as a real loop's runtime sees it only when
   * the loop waits; one handled before (`handled()`) fails nothing.
   *
   * @returns Whether a host's code left it (else it is not the run's).
   */
  unhandled(promise: Promise<unknown>, reason: unknown): boolean {
    const loop = this.#hostCode.getStore();
    if (loop === undefined || !this.running || this.finished) return false;
    this.#unhandled.set(promise, [loop, reason]);
    return true;
  }

  /** A rejection left unhandled that code handled since. */
  handled(promise: Promise<unknown>): void {
    this.#unhandled.delete(promise);
  }

  /** Fails the run on the rejections still unhandled, oldest first. */
  #checkUnhandled(): void {
    for (const [loop, reason] of this.#unhandled.values()) {
      this.#failOn(loop, reason, true);
    }
    this.#unhandled.clear();
  }

  #failOn(loop: SimNetLoop, error: unknown, rejection: boolean): void {
    const host = simHost(loop);
    // Code of a life the host lost in a crash: that process is gone.
    if (host.loop !== loop || !host.up) return;
    const what = rejection
      ? "left a promise rejection unhandled"
      : "threw an uncaught error";
    this.record(host.name, "fail", `${what}: ${describeError(error)}`);
    this.fail(
      `${host.client ? "client" : "host"} ${host.name} ${what}: ${
        describeError(error)
      }`,
      error,
    );
  }

  fail(message: string, cause?: unknown): void {
    if (this.failure === null) this.failure = new RunFailure(message, cause);
  }

  // ---- The driver ----

  /**
   * Runs until every client is done, the deadline `until` is reached, or
   * the run fails; `limit` bounds virtual time and `maxSteps` the loop
   * iterations at one instant.
   */
  async drive(
    until: number | undefined,
    limit: number,
    maxSteps: number,
  ): Promise<void> {
    const hosts = this.hosts;
    const clients = hosts.filter((h) => h.client);
    let stepsNow = 0;
    let lastNow = -1;
    // The hosts that ran in this round: a busy loop's, when it fails.
    const spun: string[] = [];
    for (;;) {
      if (this.failure !== null) return;
      // Work hosts started outside the simulation (crypto.subtle, files) ends
      // when the machine says: wait for it here, at the same step on
      // every replay, so its results reach the hosts' loops before
      // anything else runs.
      if (this.timers.outsidePending()) {
        if (!await this.timers.settleOutside(OUTSIDE_TIMEOUT)) {
          this.fail(
            `work a host started outside the simulation (crypto.subtle, a file call) did not settle in ${OUTSIDE_TIMEOUT} real seconds`,
          );
          return;
        }
        continue;
      }
      if (clients.length > 0 && clients.every((c) => c.done)) {
        this.#checkUnhandled();
        return;
      }
      // The network's events due now, in order.
      const events = this.#events;
      let due = 0;
      while (events.size > 0 && events.peekTime()! <= this.now) {
        events.pop().fn();
        if (this.failure !== null) return;
        if (++due > maxSteps * 100) {
          this.fail(
            `the network ran ${due} events without virtual time moving (a simulator bug)`,
          );
          return;
        }
      }
      // Each host with work due runs one iteration, in host order. A host
      // nothing was scheduled on since it was last looked at is skipped on
      // what was seen then.
      let ran = false;
      spun.length = 0;
      for (let i = 0; i < hosts.length; i++) {
        const h = hosts[i];
        const c = h.controls;
        if (c === null) continue;
        if (h.dirty) look(h, c);
        if (h.ready || h.nextWhen <= this.now) {
          ran = true;
          spun.push(h.name);
          this.current = h.loop;
          await this.#hostCode.run(h.loop!, c.step);
          h.dirty = true;
          // Let the host's async functions resume and settle before the
          // next host runs: code outside a task still finds its loop
          // (getRunningLoop() falls back on `current`).
          await hostHop();
          if (this.failure !== null) return;
        }
      }
      this.#closeCrashed();
      if (this.failure !== null) return;
      if (ran || (events.size > 0 && events.peekTime()! <= this.now)) {
        if (this.now !== lastNow) {
          lastNow = this.now;
          stepsNow = 0;
        }
        if (++stepsNow > maxSteps) {
          this.fail(
            `the hosts ran ${maxSteps} steps without virtual time moving: a busy loop on ${
              spun.length === 0
                ? "the network"
                : `host${spun.length > 1 ? "s" : ""} ${spun.join(", ")}`
            } (callbacks that schedule each other with no delay, or a loop awaiting sleep(0)); make it wait for something, or raise maxSteps if the work is finite`,
          );
          return;
        }
        continue;
      }
      // Idle, unless microtasks scheduled something meanwhile: jump to
      // the next event.
      let next = events.peekTime() ?? Infinity;
      let ready = false;
      for (const h of hosts) {
        const c = h.controls;
        if (c === null) continue;
        if (h.dirty) look(h, c);
        if (h.ready) ready = true;
        if (h.nextWhen < next) next = h.nextWhen;
      }
      if (ready) continue;
      // The hosts wait: what their code left unhandled is seen now.
      this.#checkUnhandled();
      if (this.failure !== null) return;
      if (until !== undefined && next > until) {
        this.now = Math.max(this.now, until);
        return;
      }
      if (next === Infinity) {
        if (clients.length === 0) return;
        const waiting = clients.filter((c) => !c.done).map((c) =>
          c.up ? c.name : `${c.name} (crashed)`
        );
        this.fail(
          `every host is idle and nothing is scheduled, but clients ${
            waiting.join(", ")
          } are not done: a deadlock, a wait with no timeout, or a wait for something outside the simulation (a real timer, a file's stream), which the run cannot see`,
        );
        return;
      }
      if (next > limit) {
        this.now = limit;
        if (clients.length === 0) {
          this.fail(
            `the hosts were still busy after ${limit} simulated seconds (the run's limit), and with no clients only until ends a run that never goes idle`,
          );
          return;
        }
        this.fail(
          `clients ${
            clients.filter((c) => !c.done).map((c) => c.name).join(", ")
          } are still running after ${limit} simulated seconds (the run's limit)`,
        );
        return;
      }
      if (next > this.now) this.now = next;
    }
  }

  #closeCrashed(): void {
    const closing = this.#closing;
    for (let i = closing.length - 1; i >= 0; i--) {
      if (!closing[i].isRunning()) {
        closing[i].close();
        closing.splice(i, 1);
      }
    }
  }

  /**
   * Reports, on each host that is up, the failed futures whose exception
   * nobody retrieved, oldest first: the run is over, so nobody will. A
   * real loop reports one when the garbage collector takes it; a host's
   * loop keeps them instead (see `keepUnretrieved()`), so that when the
   * collector runs cannot change the run. A crashed host reports nothing,
   * as a closed loop does not.
   */
  reportUnretrieved(): void {
    for (const h of this.hosts) {
      const loop = h.loop;
      if (loop === null || !h.up || loop.isClosed()) continue;
      const kept = keptUnretrieved(loop);
      if (kept === undefined || kept.size === 0) continue;
      this.current = loop;
      for (const [future, kind] of [...kept]) {
        const f = future as Future<unknown>;
        loop.callExceptionHandler({
          message: `${kind} exception was never retrieved`,
          exception: f.exception(),
          future: f,
        });
      }
    }
  }

  /** Closes every loop; the run is over. */
  shutdown(): void {
    this.finished = true;
    this.#events.clear();
    for (const h of this.hosts) {
      const loop = h.loop;
      if (loop !== null && !loop.isClosed() && !loop.isRunning()) loop.close();
      h.controls = null;
    }
  }
}

/** Reads what a host's loop has due. */
function look(h: SimHost, c: LoopControls): void {
  h.dirty = false;
  h.ready = c.readyCount() > 0;
  h.nextWhen = c.nextTimerWhen() ?? Infinity;
}

function isGenerator(x: unknown): x is Generator<never, unknown, unknown> {
  return typeof x === "object" && x !== null &&
    typeof (x as Generator).next === "function" &&
    typeof (x as Generator).throw === "function";
}

/** `Name: message` for an error, `String(x)` for anything else. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
