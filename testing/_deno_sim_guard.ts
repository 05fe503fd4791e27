/**
 * What a simulation run replaces in the process while it runs: Deno's real
 * network calls and the web's (`fetch`, `WebSocket`, ...), so that a host
 * reaching for a real socket fails loudly instead of making the run depend
 * on the machine, as do a host's `Worker`, `MessageChannel`,
 * `BroadcastChannel`, `Deno.Command` and `Deno.addSignalListener()` (and,
 * seen through `node:async_hooks`, its `node:net` sockets and
 * `node:child_process`, and a `node:net` server's `listen()` and a
 * `node:dgram` socket's `bind()`);
 * `Math.random`, `crypto.getRandomValues` /
 * `crypto.randomUUID` and `node:crypto`'s default export's `randomInt`,
 * `randomFill` and `randomFillSync` (seeded); the clocks `Date.now`,
 * `new Date()`, `performance.now` (its `timeOrigin`, `mark()`,
 * `measure()`), `Intl.DateTimeFormat`'s `format()` of now and
 * `Temporal.Now` (virtual); `crypto.subtle`'s methods and Deno's file calls
 * (a host's result waits for the run); the timers `setTimeout`/
 * `setInterval` and `setImmediate` (`node:timers`' too) and
 * `AbortSignal.timeout()` (a host's are its loop's, on the virtual clock);
 * and `WeakRef` and `FinalizationRegistry.prototype.register`, whose
 * targets it holds until the run ends, so that the collector cannot clear
 * or finalize them during it.
 *
 * @module
 */

import { createHook } from "node:async_hooks";
import nodeCrypto from "node:crypto";
import nodeDgram from "node:dgram";
import nodeNet from "node:net";
import { makingHostHop } from "../futures/_runtime.ts";
import { InvalidStateError } from "../futures/errors.ts";
import {
  NODE_IMMEDIATES,
  NODE_TIMERS,
  type NodeImmediateFields,
  type NodeTimerFields,
} from "../transports/_deno_internals.ts";
import {
  SimImmediate,
  type SimTimeout,
  type SimTimers,
} from "./_sim_timers.ts";

const REAL_IO = [
  "connect",
  "connectTls",
  "listen",
  "listenTls",
  "listenDatagram",
  "resolveDns",
  "startTls",
  "serve",
] as const;

/** Deno's unstable network calls, replaced where the runtime has them. */
const UNSTABLE_IO = ["connectQuic", "QuicEndpoint"] as const;

/** The web's network classes, replaced where the runtime has them. */
const WEB_IO = [
  "WebSocket",
  "WebSocketStream",
  "EventSource",
  "WebTransport",
] as const;

/**
 * The web's threads and channels: their messages come when the machine
 * delivers them, which no host's loop sees, so a host's code may not make
 * one (code outside the hosts still may).
 */
const WEB_THREADS = ["Worker", "MessageChannel", "BroadcastChannel"] as const;

/** Deno's subprocess and signal calls, which a host's code may not make. */
const DENO_PROCESS = ["Command", "addSignalListener"] as const;

/** `SubtleCrypto`'s methods, each a promise of work on another thread. */
const SUBTLE_METHODS = [
  "encrypt",
  "decrypt",
  "sign",
  "verify",
  "digest",
  "generateKey",
  "deriveKey",
  "deriveBits",
  "importKey",
  "exportKey",
  "wrapKey",
  "unwrapKey",
] as const;

/** Deno's file system calls that return a promise. */
const DENO_FS = [
  "readFile",
  "readTextFile",
  "writeFile",
  "writeTextFile",
  "open",
  "create",
  "stat",
  "lstat",
  "realPath",
  "readLink",
  "mkdir",
  "makeTempDir",
  "makeTempFile",
  "remove",
  "rename",
  "copyFile",
  "chmod",
  "chown",
  "truncate",
  "symlink",
  "link",
  "utime",
] as const;

/** `Deno.FsFile`'s methods that return a promise. */
const FS_FILE_METHODS = [
  "read",
  "write",
  "seek",
  "stat",
  "truncate",
  "utime",
  "sync",
  "syncData",
  "tryLock",
  "unlock",
] as const;

/**
 * How the run replaces `owner[key]` with `v` (or defines it by `define`)
 * until it ends.
 */
type Replace = (
  owner: Record<string, unknown>,
  key: string | symbol,
  v: unknown,
  define?: PropertyDescriptor,
) => void;

/** The simulated time of the Unix epoch's date a run starts at: 2000-01-01. */
const EPOCH_MS = 946684800000;

let installed = false;

/**
 * `Date` as a simulated host sees it: `new Date()` and `Date()` read
 * `Date.now()` (the virtual clock); everything else is the real `Date`,
 * whose prototype it shares, so `instanceof Date` holds either way.
 */
function virtualDate(RealDate: DateConstructor): DateConstructor {
  function Date(this: unknown, ...args: unknown[]): unknown {
    if (new.target === undefined) {
      return new RealDate(RealDate.now()).toString();
    }
    return Reflect.construct(
      RealDate,
      args.length === 0 ? [RealDate.now()] : args,
      new.target,
    );
  }
  Object.setPrototypeOf(Date, RealDate);
  Date.prototype = RealDate.prototype;
  return Date as unknown as DateConstructor;
}

/**
 * Replaces the real I/O entry points and the sources of nondeterminism,
 * and returns the function that puts them back. Only one run may hold them
 * at a time.
 *
 * @param random The seeded generator standing in for `Math.random`.
 * @param now The virtual clock, in seconds.
 * @param timers The hosts' timers.
 * @returns The function that restores everything.
 * @throws {InvalidStateError} When another simulation run holds them.
 * @throws {TypeError} When one cannot be replaced (made read-only); what
 * was replaced before it is put back.
 */
export function installSimulationGuards(
  random: () => number,
  now: () => number,
  timers: SimTimers,
): () => void {
  if (installed) {
    throw new InvalidStateError(
      "Cannot run the simulation: another simulation is running in this process, received a second run()",
    );
  }
  installed = true;
  const deno = Deno as unknown as Record<string, unknown>;
  // What each replaced property was (an accessor, such as Deno's
  // setImmediate, stays one), or undefined when inherited.
  const saved: [
    Record<string, unknown>,
    string | symbol,
    PropertyDescriptor | undefined,
  ][] = [];
  // What a WeakRef made in the run points to, and what the run registered
  // with a FinalizationRegistry: held until the run ends (then nothing is,
  // even by a WeakRef class or a register() code kept from the run).
  let held: Set<unknown> | null = new Set<unknown>();
  // The process's marks and measures, put aside while the run has a
  // timeline of its own.
  let aside: PerformanceEntry[] | null = null;
  // Stops the timeouts a host made with node:timers.
  let stopNodeTimers: (() => void) | null = null;
  const restore = () => {
    held = null;
    try {
      stopNodeTimers?.();
      stopNodeTimers = null;
      for (let i = saved.length - 1; i >= 0; i--) {
        const [owner, key, descriptor] = saved[i];
        if (descriptor !== undefined) {
          Object.defineProperty(owner, key, descriptor);
        } else delete owner[key as string];
      }
      if (aside !== null) {
        // The run's go with it; the process's come back as they were.
        performance.clearMarks();
        performance.clearMeasures();
        for (const e of aside) {
          const { detail } = e as PerformanceMark | PerformanceMeasure;
          if (e.entryType === "mark") {
            performance.mark(e.name, { startTime: e.startTime, detail });
          } else {
            // By its end: a measure from a later mark to an earlier one
            // has a negative duration, which measure() refuses.
            performance.measure(e.name, {
              start: e.startTime,
              end: e.startTime + e.duration,
              detail,
            });
          }
        }
        aside = null;
      }
    } finally {
      installed = false;
    }
  };
  const owners = new Map<unknown, string>([
    [Deno, "Deno"],
    [Math, "Math"],
    [Date, "Date"],
    [crypto, "crypto"],
    [performance, "performance"],
    [AbortSignal, "AbortSignal"],
    [FinalizationRegistry.prototype, "FinalizationRegistry.prototype"],
    [SubtleCrypto.prototype, "SubtleCrypto.prototype"],
    [
      (Deno as { FsFile?: { prototype: object } }).FsFile?.prototype,
      "Deno.FsFile.prototype",
    ],
    [Intl.DateTimeFormat.prototype, "Intl.DateTimeFormat.prototype"],
    [
      (globalThis as { Temporal?: typeof Temporal }).Temporal?.Now,
      "Temporal.Now",
    ],
    [nodeCrypto, "node:crypto"],
    [NODE_TIMERS?.timeout, "node:timers' Timeout.prototype"],
    [NODE_IMMEDIATES?.immediate, "node:timers' Immediate.prototype"],
    [nodeNet.Server.prototype, "node:net's Server.prototype"],
    [nodeDgram.Socket.prototype, "node:dgram's Socket.prototype"],
  ]);
  // Sets owner[key] to v, or defines it by `define` (a getter, or a value
  // over an inherited getter that has no setter).
  const replace: Replace = (owner, key, v, define) => {
    const entry: (typeof saved)[number] = [
      owner,
      key,
      Object.getOwnPropertyDescriptor(owner, key),
    ];
    try {
      if (define === undefined) owner[key as string] = v;
      else Object.defineProperty(owner, key, { configurable: true, ...define });
    } catch (error) {
      // Frozen or read-only: put back what was replaced, so that the
      // process keeps its real network and clocks, and a run can start.
      restore();
      throw new TypeError(
        `Cannot run the simulation: cannot replace ${
          owners.get(owner) ?? "globalThis"
        }.${String(key)}, which something made read-only (${
          (error as Error).message
        }); leave it writable while simulations run`,
        { cause: error },
      );
    }
    saved.push(entry);
  };
  const present = UNSTABLE_IO.filter((name) =>
    typeof deno[name] === "function"
  );
  for (const name of [...REAL_IO, ...present]) {
    // A function, not an arrow: `new QuicEndpoint()` must reach the throw.
    replace(deno, name, function () {
      throw new Error(
        `Cannot call Deno.${name}() inside a simulation: a simulated host has no real network; use the loop it was given (loop.createConnection(), loop.createServer(), ...)`,
      );
    });
  }
  const web = globalThis as unknown as Record<string, unknown>;
  for (const name of WEB_IO) {
    if (typeof web[name] !== "function") continue;
    // A function, not an arrow: `new` must reach the throw.
    replace(web, name, function () {
      throw new Error(
        `Cannot make a ${name} inside a simulation: a simulated host has no real network; use the loop it was given (loop.createConnection() and a protocol)`,
      );
    });
  }
  for (const name of WEB_THREADS) {
    const real = web[name];
    if (typeof real !== "function") continue;
    replace(
      web,
      name,
      refusedInHosts(
        real as (...a: unknown[]) => unknown,
        timers,
        `Cannot make a ${name} inside a simulation: its messages come when the machine delivers them, which the simulated hosts' loops cannot see or replay; keep it outside the simulation, or talk between hosts over the simulated network`,
      ),
    );
  }
  // A host's subprocesses and signals are the machine's too.
  for (const name of DENO_PROCESS) {
    const real = deno[name];
    if (typeof real !== "function") continue;
    replace(
      deno,
      name,
      refusedInHosts(
        real as (...a: unknown[]) => unknown,
        timers,
        `Cannot use Deno.${name} inside a simulation: a subprocess's or a signal's timing is the machine's, which the simulated hosts' loops cannot see or replay; run it outside the simulation and give the hosts its result`,
      ),
    );
  }
  replace(globalThis as unknown as Record<string, unknown>, "fetch", () => {
    throw new Error(
      "Cannot call fetch() inside a simulation: a simulated host has no real network; use HttpClientProtocol on the loop it was given",
    );
  });
  replace(Math as unknown as Record<string, unknown>, "random", random);
  const RealDate = Date;
  replace(
    RealDate as unknown as Record<string, unknown>,
    "now",
    () => EPOCH_MS + Math.floor(now() * 1000),
  );
  replace(
    globalThis as unknown as Record<string, unknown>,
    "Date",
    virtualDate(RealDate),
  );
  const fill = (bytes: Uint8Array) => {
    for (let i = 0; i < bytes.length; i++) {
      bytes[i] = Math.floor(random() * 256);
    }
  };
  const realGetRandomValues = crypto.getRandomValues.bind(crypto);
  const cryptoObject = crypto as unknown as Record<string, unknown>;
  replace(
    cryptoObject,
    "getRandomValues",
    <T extends ArrayBufferView | null>(array: T): T => {
      // Anything but an integer array: the real call's checks and errors.
      if (
        !ArrayBuffer.isView(array) || array instanceof Float32Array ||
        array instanceof Float64Array || array instanceof DataView ||
        array.byteLength > 65536
      ) {
        return realGetRandomValues(array as never) as T;
      }
      fill(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
      return array;
    },
  );
  replace(cryptoObject, "randomUUID", () => {
    const b = new Uint8Array(16);
    fill(b);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
    const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${
      hex.slice(16, 20)
    }-${hex.slice(20)}`;
  });
  seededNodeCrypto(fill, random, timers, replace);
  // crypto.subtle's and the file system's work runs on the machine's
  // threads: a host's result waits for the run, so that it comes at the
  // same step on every replay.
  const outside = (
    owner: Record<string, unknown>,
    names: readonly string[],
  ) => {
    for (const name of names) {
      const real = owner[name];
      if (typeof real !== "function") continue;
      replace(owner, name, function (this: unknown, ...args: unknown[]) {
        const work = real.apply(this, args);
        return work instanceof Promise ? timers.outside(work) ?? work : work;
      });
    }
  };
  // generateKey() of a secret key (HMAC, AES): the seed's bytes, imported
  // with the algorithm, extractability and usages the real call checked.
  const subtle = SubtleCrypto.prototype as unknown as Record<string, unknown>;
  const realGenerate = crypto.subtle.generateKey as (
    ...a: unknown[]
  ) => Promise<CryptoKey | CryptoKeyPair>;
  const realImport = crypto.subtle.importKey as (
    ...a: unknown[]
  ) => Promise<CryptoKey>;
  replace(
    subtle,
    "generateKey",
    function (this: SubtleCrypto, ...args: unknown[]) {
      const work = realGenerate.apply(this, args);
      if (!timers.inHost()) return work;
      const size = secretKeySize(args[0]);
      let seeded = work;
      if (size !== null) {
        // Drawn now, in the host's order.
        const material = new Uint8Array(size);
        fill(material);
        seeded = work.then((key) =>
          realImport.call(
            this,
            "raw",
            material,
            (key as CryptoKey).algorithm,
            args[1],
            args[2],
          )
        );
      }
      return timers.outside(seeded) ?? seeded;
    },
  );
  outside(
    subtle,
    SUBTLE_METHODS.filter((name) => name !== "generateKey"),
  );
  outside(deno, DENO_FS);
  const fsFile = (Deno as { FsFile?: { prototype: object } }).FsFile;
  if (fsFile !== undefined) {
    // Before tryLock() is replaced: lock() calls the real one.
    lockOnTheClock(
      fsFile.prototype as Record<string, unknown>,
      timers,
      replace,
    );
    outside(fsFile.prototype as Record<string, unknown>, FS_FILE_METHODS);
  }
  const perf = performance as unknown as Record<string, unknown>;
  const perfNow = () => now() * 1000;
  // The run's marks and measures are its own, as a process's are: a run
  // finds no earlier run's (nor the caller's), whose names a measure()
  // would resolve and whose times are of another clock.
  aside = performance.getEntries().filter((e) =>
    e.entryType === "mark" || e.entryType === "measure"
  );
  performance.clearMarks();
  performance.clearMeasures();
  replace(perf, "now", perfNow);
  // timeOrigin + now() is the time of day Date.now() reads (OpenTelemetry's
  // clock), and a mark or a measure that ends now ends at now().
  replace(perf, "timeOrigin", EPOCH_MS, { value: EPOCH_MS, enumerable: true });
  const realMark = performance.mark.bind(performance);
  replace(
    perf,
    "mark",
    (name: string, options?: PerformanceMarkOptions) =>
      realMark(
        name,
        options?.startTime === undefined
          ? { ...options, startTime: perfNow() }
          : options,
      ),
  );
  const realMeasure = performance.measure.bind(performance);
  replace(
    perf,
    "measure",
    (
      name: string,
      start?: string | PerformanceMeasureOptions,
      end?: string,
    ) => {
      if (end !== undefined) return realMeasure(name, start as string, end);
      if (typeof start === "object" && start !== null) {
        return start.end !== undefined || start.duration !== undefined
          ? realMeasure(name, start)
          : realMeasure(name, { ...start, end: perfNow() });
      }
      return realMeasure(name, { start, end: perfNow() });
    },
  );
  // Intl.DateTimeFormat's format() and formatToParts() of no date: now.
  const dateFormat = Intl.DateTimeFormat.prototype;
  const realFormat = Object.getOwnPropertyDescriptor(dateFormat, "format")
    ?.get;
  const realFormatToParts = dateFormat.formatToParts;
  if (realFormat !== undefined) {
    // Each format's bound function, as the real getter keeps one.
    const bound = new WeakMap<object, (date?: Date | number) => string>();
    replace(dateFormat as unknown as Record<string, unknown>, "format", 0, {
      get(this: Intl.DateTimeFormat) {
        let format = bound.get(this);
        if (format === undefined) {
          const real = realFormat.call(this) as (d?: Date | number) => string;
          format = (date) => real(date === undefined ? Date.now() : date);
          bound.set(this, format);
        }
        return format;
      },
    });
  }
  replace(
    dateFormat as unknown as Record<string, unknown>,
    "formatToParts",
    function (this: Intl.DateTimeFormat, date?: Date | number) {
      return realFormatToParts.call(
        this,
        date === undefined ? Date.now() : date,
      );
    },
  );
  // Temporal.Now: the same instant as Date.now(), in nanoseconds.
  const temporal = (globalThis as { Temporal?: typeof Temporal }).Temporal;
  if (temporal !== undefined) {
    const clock = temporal.Now as unknown as Record<string, unknown>;
    const instant = () => {
      // Date.now()'s millisecond, then the nanoseconds into it: now() *
      // 1e9 alone can round below the millisecond now() * 1000 reads.
      const ms = now() * 1000;
      const whole = Math.floor(ms);
      const ns = Math.min(999999, Math.floor((ms - whole) * 1e6));
      return temporal.Instant.fromEpochNanoseconds(
        BigInt(EPOCH_MS + whole) * 1000000n + BigInt(ns),
      );
    };
    const zoned = (tz?: Temporal.TimeZoneLike) =>
      instant().toZonedDateTimeISO(tz ?? temporal.Now.timeZoneId());
    replace(clock, "instant", instant);
    replace(clock, "zonedDateTimeISO", zoned);
    replace(
      clock,
      "plainDateTimeISO",
      (tz?: Temporal.TimeZoneLike) => zoned(tz).toPlainDateTime(),
    );
    replace(
      clock,
      "plainDateISO",
      (tz?: Temporal.TimeZoneLike) => zoned(tz).toPlainDate(),
    );
    replace(
      clock,
      "plainTimeISO",
      (tz?: Temporal.TimeZoneLike) => zoned(tz).toPlainTime(),
    );
  }
  // The collector runs when the machine decides: a WeakRef made in the run
  // is never cleared, nor is a target registered in the run finalized,
  // before the run ends (then they are let go).
  const RealWeakRef = WeakRef;
  function SimWeakRef(this: unknown, target: WeakKey): unknown {
    // Called without new: the real one's TypeError.
    if (new.target === undefined) {
      return (RealWeakRef as unknown as (t: WeakKey) => unknown)(target);
    }
    const ref = Reflect.construct(RealWeakRef, [target], new.target);
    held?.add(target);
    return ref;
  }
  Object.setPrototypeOf(SimWeakRef, RealWeakRef);
  SimWeakRef.prototype = RealWeakRef.prototype;
  replace(web, "WeakRef", SimWeakRef);
  const registry = FinalizationRegistry.prototype;
  const realRegister = registry.register;
  replace(
    registry as unknown as Record<string, unknown>,
    "register",
    function (
      this: FinalizationRegistry<unknown>,
      target: WeakKey,
      heldValue: unknown,
      token?: WeakKey,
    ): void {
      realRegister.call(this, target, heldValue, token);
      held?.add(target);
    },
  );
  // A host's timers are its loop's; anyone else's are real. Deno's global
  // setTimeout() makes node:timers' Timeout, which nodeTimers() below puts
  // on the loop: left as it is, so that node:timers' clearTimeout() and the
  // global one clear each other's timers, as they do in Deno.
  const global = globalThis as unknown as Record<string, unknown>;
  if (NODE_TIMERS === null) {
    const realSetTimeout = setTimeout as (...a: unknown[]) => unknown;
    const realSetInterval = setInterval as (...a: unknown[]) => unknown;
    const realClearTimeout = clearTimeout as (t: unknown) => void;
    const realClearInterval = clearInterval as (t: unknown) => void;
    replace(
      global,
      "setTimeout",
      (fn: unknown, ms?: unknown, ...args: unknown[]) =>
        timers.set(fn, ms, args, false) ?? realSetTimeout(fn, ms, ...args),
    );
    replace(
      global,
      "setInterval",
      (fn: unknown, ms?: unknown, ...args: unknown[]) =>
        timers.set(fn, ms, args, true) ?? realSetInterval(fn, ms, ...args),
    );
    replace(global, "clearTimeout", (t: unknown) => {
      if (!timers.clear(t)) realClearTimeout(t);
    });
    replace(global, "clearInterval", (t: unknown) => {
      if (!timers.clear(t)) realClearInterval(t);
    });
  }
  // Node's setImmediate(), which Deno has too: a callback on the loop.
  // With the internals nodeImmediates() needs, the global one is left as
  // it is (nodeImmediates() puts a host's on its loop, whatever name the
  // host calls it by), so that node:timers' clearImmediate() and the global
  // one clear each other's, as in Deno.
  if (NODE_IMMEDIATES === null && typeof global.setImmediate === "function") {
    const realSetImmediate = global.setImmediate as (
      ...a: unknown[]
    ) => unknown;
    const realClearImmediate = global.clearImmediate as (t: unknown) => void;
    replace(
      global,
      "setImmediate",
      (fn: unknown, ...args: unknown[]) =>
        timers.immediate(fn, args) ?? realSetImmediate(fn, ...args),
    );
    replace(global, "clearImmediate", (t: unknown) => {
      if (t instanceof SimImmediate) t.cancel();
      else realClearImmediate(t);
    });
  }
  const immediates = NODE_IMMEDIATES !== null
    ? nodeImmediates(NODE_IMMEDIATES, timers, replace)
    : null;
  const stopHandles = nodeHandles(
    timers,
    NODE_TIMERS === null,
    immediates?.made ?? null,
  );
  let stopTimeouts = () => {};
  // Set before nodeTimers() replaces anything: a replacement that fails
  // there restores, which must take the hooks down too.
  stopNodeTimers = () => {
    stopHandles();
    stopTimeouts();
    immediates?.stop();
  };
  if (NODE_TIMERS !== null) {
    stopTimeouts = nodeTimers(NODE_TIMERS, timers, replace);
  }
  // What makes no handle the hooks see: a node:net server's listen()
  // (node:http's, node:https', node:tls' servers are node:net's) and a
  // node:dgram socket's bind() (send() and connect() bind an unbound
  // socket through it).
  const refuseInHost = (owner: object, key: string, what: string) => {
    const o = owner as Record<string, unknown>;
    const real = o[key] as (...a: unknown[]) => unknown;
    replace(o, key, function (this: unknown, ...args: unknown[]) {
      if (!timers.inHost()) return real.apply(this, args);
      const error = nodeNetRefusal(what);
      timers.fail(error);
      throw error;
    });
  };
  refuseInHost(nodeNet.Server.prototype, "listen", NODE_HANDLES.TCPWRAP);
  refuseInHost(nodeDgram.Socket.prototype, "bind", "node:dgram's sockets");
  // A host's AbortSignal.timeout() (@std/async's deadline()) too.
  const realSignalTimeout = AbortSignal.timeout.bind(AbortSignal);
  replace(
    AbortSignal as unknown as Record<string, unknown>,
    "timeout",
    (ms: unknown) => {
      // WebIDL's [EnforceRange] unsigned long long, as the real one checks.
      const n = Math.trunc(Number(ms));
      if (
        !Number.isFinite(Number(ms)) || n < 0 || n > Number.MAX_SAFE_INTEGER
      ) {
        return realSignalTimeout(ms as number);
      }
      return timers.signalTimeout(n) ?? realSignalTimeout(n);
    },
  );
  return restore;
}

/**
 * `real` (a function or a class) for code outside the hosts; a host's call
 * or `new` throws `refusal`. Called without `new`, a class gives the real
 * one's `TypeError`.
 */
function refusedInHosts(
  real: (...a: unknown[]) => unknown,
  timers: SimTimers,
  refusal: string,
): unknown {
  const Guarded = function (this: unknown, ...args: unknown[]): unknown {
    if (timers.inHost()) throw new Error(refusal);
    if (new.target === undefined) return real.apply(this, args);
    return Reflect.construct(
      real as unknown as new (...a: unknown[]) => unknown,
      args,
      new.target,
    );
  };
  Object.setPrototypeOf(Guarded, Object.getPrototypeOf(real));
  Guarded.prototype = real.prototype;
  return Guarded;
}

/** What `Timeout` a host's code made, with the virtual timer it runs on. */
interface NodeTimeout {
  _idleTimeout: number;
  _onTimeout: ((...a: unknown[]) => unknown) | null;
  _timerArgs: unknown[] | undefined;
  _repeat: unknown;
  _destroyed: boolean;
  _timer?: { _onTimeout: unknown };
  [key: symbol]: unknown;
}

/**
 * `node:timers` (and `node:timers/promises`, `scheduler.wait()`), whose
 * functions a module imports by name, so that replacing the globals does
 * not reach them: a `Timeout` a host's code makes runs on a virtual timer
 * of its loop. It is still filed with node's own timers (unreferenced, as
 * far off as a timer goes, its callback a no-op), so that node's
 * `clearTimeout()` finds it by its id.
 */
function nodeTimers(
  fields: NodeTimerFields,
  timers: SimTimers,
  replace: Replace,
): () => void {
  const { createTimer, destroy, refed } = fields;
  const proto = fields.timeout as Record<string | symbol, unknown>;
  const realCreate = proto[createTimer] as (this: object) => number;
  const realDestroy = proto[destroy] as (this: object) => void;
  const realRefresh = proto.refresh as (this: object) => object;
  const realRef = proto.ref as (this: object) => object;
  const realUnref = proto.unref as (this: object) => object;
  const virtual = new Map<NodeTimeout, SimTimeout>();
  // Defined, not set: the symbol-keyed methods are the prototype's own.
  const symbolKeyed = (key: symbol, v: unknown) =>
    replace(proto as Record<string, unknown>, key, v, {
      value: v,
      writable: true,
    });
  symbolKeyed(createTimer, function (this: NodeTimeout): number {
    if (!timers.inHost()) return realCreate.call(this);
    const ms = this._idleTimeout;
    const ref = this[refed];
    this._idleTimeout = 2 ** 31 - 1;
    this[refed] = false;
    let id: number;
    try {
      id = realCreate.call(this);
    } finally {
      this._idleTimeout = ms;
      this[refed] = ref;
    }
    if (this._timer !== undefined) this._timer._onTimeout = () => {};
    const fire = () => {
      const fn = this._onTimeout;
      if (fn === null) return;
      try {
        fn.apply(this, this._timerArgs ?? []);
      } finally {
        // A timeout that fired is done, as node's is, but keeps its
        // callback and delay: refresh() arms it again.
        if (!this._repeat && virtual.has(this)) {
          virtual.delete(this);
          const delay = this._idleTimeout;
          realDestroy.call(this);
          this._onTimeout = fn;
          this._idleTimeout = delay;
        }
      }
    };
    const sim = timers.set(fire, ms, [], Boolean(this._repeat));
    if (sim !== null) virtual.set(this, sim);
    return id;
  });
  symbolKeyed(destroy, function (this: NodeTimeout): void {
    const sim = virtual.get(this);
    if (sim !== undefined) {
      virtual.delete(this);
      timers.clear(sim);
    }
    realDestroy.call(this);
  });
  replace(proto as Record<string, unknown>, "refresh", function (
    this: NodeTimeout,
  ) {
    const sim = virtual.get(this);
    if (sim === undefined) return realRefresh.call(this);
    sim.refresh();
    return this;
  });
  // Node's own timer under a virtual one stays unreferenced.
  replace(proto as Record<string, unknown>, "ref", function (
    this: NodeTimeout,
  ) {
    if (!virtual.has(this)) return realRef.call(this);
    this[refed] = true;
    return this;
  });
  replace(proto as Record<string, unknown>, "unref", function (
    this: NodeTimeout,
  ) {
    if (!virtual.has(this)) return realUnref.call(this);
    this[refed] = false;
    return this;
  });
  // When the run ends, what is left of its timeouts is stopped (their
  // loops are gone), before the methods above are put back.
  return () => {
    for (const t of [...virtual.keys()]) realDestroy.call(t);
    virtual.clear();
  };
}

/** What `Immediate` a host's code made: node's fields the run reads. */
interface NodeImmediate {
  _onImmediate: ((...a: unknown[]) => unknown) | null;
  _argv: unknown[] | undefined;
  _destroyed: boolean;
}

/**
 * `node:timers`' `setImmediate()` (the global one is the same function, so
 * that a name imported from the module is the function the run would
 * replace): an `Immediate` a host's code makes runs on its loop, in the
 * loop's next iteration, as the global one's replacement runs it when the
 * internals are not found. The hooks tell of each immediate made
 * (`made()`), before its constructor calls `ref()`, which takes it over:
 * it stays counted by node but keeps nothing alive, and is taken out of
 * node's queue (after its constructor has queued it, in a microtask, which
 * runs before the machine's next check phase), so that only the loop runs
 * its callback. Node's `clearImmediate()` (the module's, the global one,
 * `Symbol.dispose`) marks it `_destroyed`, which cancels the loop's
 * callback; when that runs, node's bookkeeping is done as node's check
 * phase does it (`_destroyed`, its count, no callback), then the callback
 * with its arguments, `this` being the immediate. `ref()`, `unref()` and
 * `hasRef()` keep the host's choice, as node's do.
 *
 * @returns `made`, for the hooks, and `stop`, which clears what is left
 * of the run's immediates (their loops are gone) before the prototype is
 * put back.
 */
function nodeImmediates(
  fields: NodeImmediateFields,
  timers: SimTimers,
  replace: Replace,
): { made: (immediate: object) => void; stop: () => void } {
  const proto = fields.immediate as Record<string, unknown>;
  const realRef = proto.ref as (this: object) => object;
  const realUnref = proto.unref as (this: object) => object;
  const realHasRef = proto.hasRef as (this: object) => boolean;
  // Each of the run's immediates still to run, with whether the host
  // wants it to keep the process alive.
  const virtual = new Map<object, { refed: boolean }>();
  // The immediate whose constructor is running, about to call ref().
  let fresh: object | null = null;
  const adopt = (immediate: NodeImmediate & object) => {
    const entry = { refed: true };
    virtual.set(immediate, entry);
    // node's clearImmediate() sets it: the loop's callback is cancelled.
    let destroyed = immediate._destroyed;
    let sim: SimImmediate | null = null;
    Object.defineProperty(immediate, "_destroyed", {
      configurable: true,
      enumerable: true,
      get: () => destroyed,
      set: (v: boolean) => {
        destroyed = v;
        if (v && virtual.get(immediate) === entry) {
          virtual.delete(immediate);
          sim?.cancel();
        }
      },
    });
    const callback = immediate._onImmediate;
    const argv = immediate._argv ?? [];
    sim = timers.immediate(() => {
      if (virtual.get(immediate) !== entry) return;
      virtual.delete(immediate);
      fields.clear(immediate);
      callback?.(...argv);
    }, []);
    queueMicrotask(() => {
      if (virtual.get(immediate) === entry) fields.unqueue(immediate);
    });
  };
  replace(proto, "ref", function (this: NodeImmediate & object) {
    const entry = virtual.get(this);
    if (entry !== undefined) entry.refed = true;
    else if (this === fresh) {
      fresh = null;
      adopt(this);
    } else return realRef.call(this);
    return this;
  });
  replace(proto, "unref", function (this: object) {
    const entry = virtual.get(this);
    if (entry === undefined) return realUnref.call(this);
    entry.refed = false;
    return this;
  });
  replace(proto, "hasRef", function (this: object) {
    return virtual.get(this)?.refed ?? realHasRef.call(this);
  });
  return {
    made: (immediate) => {
      fresh = immediate;
    },
    stop: () => {
      fresh = null;
      const left = [...virtual.keys()];
      virtual.clear();
      for (const immediate of left) fields.clear(immediate);
    },
  };
}

/**
 * The refusal of a host's `what` (node's sockets, servers or processes).
 *
 * @param what What the host's code used.
 * @returns The error that fails the run.
 */
function nodeNetRefusal(what: string): Error {
  return new Error(
    `Cannot use ${what} inside a simulation: a simulated host has no real network or processes; use the loop it was given (createConnection(), createServer(), HttpClientProtocol), or keep it outside the simulation`,
  );
}

/**
 * The handles of node's own that a host's code may not make, by their
 * `async_hooks` type: sockets and subprocesses, which reach past the
 * guards on `Deno`'s calls.
 */
const NODE_HANDLES: Record<string, string> = {
  TCPWRAP:
    "node:net's sockets and servers (node:http's, node:https', node:tls')",
  PIPEWRAP: "node:child_process (or node:net over a Unix socket)",
};

/**
 * Node's public `async_hooks` tell of each handle node makes: one of
 * `NODE_HANDLES` a host's code makes fails the run, naming it. With
 * `timeouts`, so does a `node:timers` `Timeout` (closed at once): without
 * the internals `nodeTimers()` needs (not found in this Deno, or switched
 * off by `TULIP_NO_INTERNALS`) it would fire on the real clock, so that the
 * run differs from one replay to the next while other hosts keep virtual
 * time moving. A node `Immediate` a host's code makes (not a loop's own
 * hop) goes to `immediate`, or, when it is `null` (the internals
 * `nodeImmediates()` needs are missing), fails the run likewise, and its
 * callback never runs.
 */
function nodeHandles(
  timers: SimTimers,
  timeouts: boolean,
  immediate: ((resource: object) => void) | null,
): () => void {
  const hook = createHook({
    init(_id, type, _trigger, resource) {
      if (!timers.inHost()) return;
      if (type === "Immediate") {
        if (makingHostHop()) return;
        if (immediate !== null) immediate(resource as object);
        else {
          // Cleared once its constructor has queued it.
          queueMicrotask(() => clearImmediate(resource as never));
          timers.fail(
            new Error(
              "Cannot run node:timers' setImmediate() on a simulated host's loop (imported by name, or the global one kept from before the run: they are the same function): the internals the run needs for it are switched off (TULIP_NO_INTERNALS) or not found in this Deno, and on the machine's check phase the callback would run at a different step on each replay; call globalThis.setImmediate() when the host's code runs, or await sleep(0), in code a simulation runs",
            ),
          );
        }
      } else if (type === "Timeout" && timeouts) {
        (resource as { close(): unknown }).close();
        timers.fail(
          new Error(
            "Cannot run node:timers' setTimeout() or setInterval() on a simulated host's virtual clock (imported by name, or the global ones kept from before the run: they are the same functions): the node:timers internals the run needs for it are switched off (TULIP_NO_INTERNALS) or not found in this Deno, and on the real clock the timer would fire at a different step on each replay; call globalThis.setTimeout()/globalThis.setInterval() when the host's code runs, or await sleep(), in code a simulation runs",
          ),
        );
      } else if (Object.hasOwn(NODE_HANDLES, type)) {
        timers.fail(nodeNetRefusal(NODE_HANDLES[type]));
      }
    },
  });
  hook.enable();
  return () => hook.disable();
}

/**
 * `FsFile.prototype.lock()` in a host. A lock another task or host holds
 * is released by code the run has to go on running, so the run cannot wait
 * for the machine's `lock()` (it would wait for good): the host tries
 * `tryLock()`, which the run waits for, and while the lock is taken tries
 * again on its loop's clock, after 1 ms, then twice as long each time, up
 * to 1 s.
 */
function lockOnTheClock(
  proto: Record<string, unknown>,
  timers: SimTimers,
  replace: Replace,
): void {
  const realLock = proto.lock as (this: unknown, e?: unknown) => unknown;
  const realTryLock = proto.tryLock as (
    this: unknown,
    e?: unknown,
  ) => Promise<boolean>;
  if (typeof realLock !== "function" || typeof realTryLock !== "function") {
    return;
  }
  replace(proto, "lock", function (this: unknown, exclusive?: unknown) {
    if (!timers.inHost()) return realLock.call(this, exclusive);
    return (async () => {
      for (let wait = 1;; wait = Math.min(2 * wait, 1000)) {
        const work = realTryLock.call(this, exclusive);
        if (await (timers.outside(work) ?? work)) return;
        // The host's own timer: on its loop's clock.
        await new Promise((r) => setTimeout(r, wait));
      }
    })();
  });
}

/**
 * `node:crypto`'s `randomInt()`, `randomFillSync()` and `randomFill()`,
 * which read the machine's entropy (`randomBytes()` and `randomUUID()`
 * read `crypto`, already seeded): on the module's default export, which
 * `import crypto from "node:crypto"` and `require("crypto")` (so npm
 * packages) share, a host's calls read the seed. Each first makes the real
 * call's checks (by making it: its bytes are then overwritten), so bad
 * arguments get the real errors; `randomFill()`'s callback comes on the
 * host's loop.
 * (A name imported from the module is bound to the real function, which
 * calls one of Deno's operations, bound when the module loaded: nothing
 * such a call reaches can be replaced. `randomBytes()` and `randomUUID()`,
 * imported by name too, call `crypto`'s functions each time.)
 */
function seededNodeCrypto(
  fill: (bytes: Uint8Array) => void,
  random: () => number,
  timers: SimTimers,
  replace: Replace,
): void {
  const node = nodeCrypto as unknown as Record<string, unknown>;
  const realInt = nodeCrypto.randomInt as (...a: unknown[]) => unknown;
  const realFillSync = nodeCrypto.randomFillSync as (
    ...a: unknown[]
  ) => unknown;
  // The bytes of `buf` from `offset` for `size` elements, as node counts.
  const range = (buf: unknown, offset: unknown, size: unknown) => {
    const b = buf as ArrayBufferView | ArrayBuffer;
    const unit = (b as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
    const start = Number(offset ?? 0) * unit;
    const length = size === undefined
      ? b.byteLength - start
      : Number(size) * unit;
    return ArrayBuffer.isView(b)
      ? new Uint8Array(b.buffer, b.byteOffset + start, length)
      : new Uint8Array(b, start, length);
  };
  // A callback as node gives it: later, here on the host's loop.
  const later = (fn: () => void) => {
    (globalThis.setImmediate as (f: () => void) => unknown)(fn);
  };
  replace(node, "randomInt", (a: unknown, b?: unknown, c?: unknown) => {
    if (!timers.inHost()) return realInt(a, b, c);
    const pair = b === undefined || typeof b === "function";
    const [min, max, callback] = pair ? [0, a, b] : [a, b, c];
    // The real checks: bad bounds or a callback that is not one throw.
    if (callback === undefined) realInt(min, max);
    else {
      realInt(min, max, typeof callback === "function" ? () => {} : callback);
    }
    const n = (min as number) +
      Math.floor(random() * ((max as number) - (min as number)));
    // Deno's calls it back at once.
    if (typeof callback === "function") callback(null, n);
    else return n;
  });
  replace(
    node,
    "randomFillSync",
    (buf: unknown, offset?: unknown, size?: unknown) => {
      const out = realFillSync(buf, offset, size);
      if (timers.inHost()) fill(range(buf, offset, size));
      return out;
    },
  );
  const realFill = nodeCrypto.randomFill as (...a: unknown[]) => unknown;
  replace(
    node,
    "randomFill",
    (buf: unknown, a?: unknown, b?: unknown, c?: unknown) => {
      if (!timers.inHost()) return realFill(buf, a, b, c);
      const [offset, size, callback] = typeof a === "function"
        ? [0, undefined, a]
        : typeof b === "function"
        ? [a, undefined, b]
        : [a, b, c];
      if (typeof callback !== "function") return realFill(buf, a, b, c);
      realFillSync(buf, offset, size);
      fill(range(buf, offset, size));
      later(() => callback(null, buf));
    },
  );
}

/**
 * The size in bytes of the secret key `generateKey(algorithm)` makes (an
 * HMAC or AES key), or `null` for a key pair or an algorithm it refuses.
 */
function secretKeySize(algorithm: unknown): number | null {
  const a = typeof algorithm === "string" ? { name: algorithm } : algorithm;
  if (typeof a !== "object" || a === null) return null;
  const { name, length, hash } = a as {
    name?: unknown;
    length?: unknown;
    hash?: unknown;
  };
  if (typeof name !== "string") return null;
  const upper = name.toUpperCase();
  if (upper.startsWith("AES-")) {
    return length === 128 || length === 192 || length === 256
      ? length / 8
      : null;
  }
  if (upper !== "HMAC") return null;
  if (typeof length === "number" && length > 0) return Math.ceil(length / 8);
  const h = typeof hash === "string"
    ? hash
    : (hash as { name?: unknown })?.name;
  if (typeof h !== "string") return null;
  // The hash's block size.
  return /^SHA-(384|512)$/i.test(h) ? 128 : 64;
}
