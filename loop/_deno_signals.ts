// The loop's signal handlers, over Deno.addSignalListener: one handler per
// signal, run on the loop with callSoonThreadsafe. A signal is an event the
// host raises, not an operation the loop started and waits on, so it does
// not go through the proactor: nothing is pending, and the loop removes the
// listeners when it closes.
//
// Also run()'s Ctrl-C handling (CtrlC), which stands aside while one of
// these handlers, or serveWorkers()'s, listens for SIGINT.

import { checkCallback, checkHandle, Handle, linkHandle } from "./_handle.ts";
import type { SchedulingLoop } from "./event_loop.ts";

// How many of tulip's own handlers listen for each signal: a loop's
// (addSignalHandler) and serveWorkers()'s. run()'s Ctrl-C handling stands
// aside while one listens for SIGINT, since Deno calls every listener.
const claims = new Map<Deno.Signal, number>();

/**
 * Counts (`by` 1) or uncounts (`by` -1) a handler of tulip's for `sig`,
 * one that decides what the signal does.
 */
export function claimSignal(sig: Deno.Signal, by: 1 | -1): void {
  const count = (claims.get(sig) ?? 0) + by;
  if (count > 0) claims.set(sig, count);
  else claims.delete(sig);
}

/** Whether a handler of tulip's decides what `sig` does. */
export function signalClaimed(sig: Deno.Signal): boolean {
  return claims.has(sig);
}

interface Entry {
  readonly handle: Handle;
  readonly listener: () => void;
}

// Every name of Deno.Signal. Whether the platform has the signal is
// Deno's to say when a listener is added.
const SIGNAL_NAMES: ReadonlySet<string> = new Set<Deno.Signal>([
  "SIGABRT",
  "SIGALRM",
  "SIGBREAK",
  "SIGBUS",
  "SIGCHLD",
  "SIGCONT",
  "SIGEMT",
  "SIGFPE",
  "SIGHUP",
  "SIGILL",
  "SIGINFO",
  "SIGINT",
  "SIGIO",
  "SIGPOLL",
  "SIGUNUSED",
  "SIGKILL",
  "SIGPIPE",
  "SIGPROF",
  "SIGPWR",
  "SIGQUIT",
  "SIGSEGV",
  "SIGSTKFLT",
  "SIGSTOP",
  "SIGSYS",
  "SIGTERM",
  "SIGTRAP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGUSR1",
  "SIGUSR2",
  "SIGVTALRM",
  "SIGWINCH",
  "SIGXCPU",
  "SIGXFSZ",
]);

// The names of Deno.Signal that Deno knows on no Linux, so that removing
// a handler refuses them as adding one does. Elsewhere, Deno alone says
// which signals the platform has, when a listener is added.
const LINUX_ABSENT: ReadonlySet<string> = new Set<Deno.Signal>([
  "SIGBREAK",
  "SIGEMT",
  "SIGINFO",
]);

/**
 * Checks that `sig` is a signal name, and one of the platform's where
 * known (PEP 3156: adding and removing a handler raise alike for a signal
 * that does not exist); `what` completes "Cannot ...".
 */
export function checkSignalName(sig: unknown, what: string): void {
  if (typeof sig !== "string") {
    throw new TypeError(
      `Cannot ${what}: the signal must be a name such as "SIGINT", received ${typeof sig}`,
    );
  }
  if (!SIGNAL_NAMES.has(sig)) {
    throw new RangeError(
      `Cannot ${what}: unknown signal, received ${JSON.stringify(sig)}`,
    );
  }
  const os = Deno.build.os;
  if ((os === "linux" || os === "android") && LINUX_ABSENT.has(sig)) {
    throw new RangeError(
      `Cannot ${what}: unknown signal on ${os}, received ${
        JSON.stringify(sig)
      }`,
    );
  }
}

/** The signal handlers of one loop. */
export class SignalHandlers {
  readonly #loop: SchedulingLoop;
  readonly #entries = new Map<Deno.Signal, Entry>();

  constructor(loop: SchedulingLoop) {
    this.#loop = loop;
  }

  /** How many signals have a handler. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Installs `cb(...args)` for `sig`, replacing any earlier handler. `cb`
   * may be an immediate `Handle` standing for its callback and arguments:
   * cancelling it stops the calls; a cancelled one installs nothing and is
   * returned.
   */
  add(
    sig: Deno.Signal,
    cb: ((...args: never[]) => unknown) | Handle,
    args: unknown[],
  ): Handle {
    checkSignalName(sig, "add a signal handler");
    const loop = this.#loop;
    let handle: Handle;
    if (cb instanceof Handle) {
      checkHandle(cb, args, "addSignalHandler");
      if (cb.cancelled) return cb;
      handle = new Handle(cb.callback, cb.args as unknown[], loop);
      linkHandle(handle, cb);
    } else {
      checkCallback(cb, "add a signal handler");
      handle = new Handle(cb, args, loop);
    }
    const listener = () => {
      if (handle.cancelled) {
        // As asyncio does: a cancelled handler removes itself.
        if (this.#entries.get(sig)?.handle === handle) this.remove(sig);
        return;
      }
      if (loop.isClosed()) return;
      // The handle itself is queued, as asyncio does: cancelled before the
      // loop gets to it, the call it stands for does not run.
      loop.callSoonThreadsafe(handle);
    };
    try {
      Deno.addSignalListener(sig, listener);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const why = /not allowed/i.test(message)
        ? "it cannot be caught"
        : /invalid signal/i.test(message)
        ? "unknown signal"
        : message;
      throw new RangeError(
        `Cannot add a signal handler: ${why}, received "${sig}"`,
        { cause: error },
      );
    }
    const old = this.#entries.get(sig);
    if (old !== undefined) Deno.removeSignalListener(sig, old.listener);
    else claimSignal(sig, 1);
    this.#entries.set(sig, { handle, listener });
    return handle;
  }

  /** Removes the handler of `sig`; returns whether there was one. */
  remove(sig: Deno.Signal): boolean {
    checkSignalName(sig, "remove a signal handler");
    const entry = this.#entries.get(sig);
    if (entry === undefined) return false;
    this.#entries.delete(sig);
    claimSignal(sig, -1);
    Deno.removeSignalListener(sig, entry.listener);
    return true;
  }

  /** Removes every handler. */
  clear(): void {
    for (const sig of [...this.#entries.keys()]) this.remove(sig);
  }
}

/** What CtrlC needs of run()'s main task. */
interface MainTask {
  done(): boolean;
  cancel(): boolean;
}

/**
 * run()'s Ctrl-C handling, as asyncio's Runner: the first SIGINT cancels
 * the main task; the listener then removes itself, so that the next SIGINT
 * ends the process as by default. It stands aside while a handler of
 * tulip's decides what SIGINT does (a loop's addSignalHandler("SIGINT"),
 * serveWorkers()). Deno's signal listeners keep no process alive.
 */
export class CtrlC {
  /** The SIGINTs this handled. */
  count = 0;
  readonly #loop: SchedulingLoop;
  readonly #task: MainTask;
  #installed = false;
  readonly #listener = () => this.#onSigint();

  private constructor(loop: SchedulingLoop, task: MainTask) {
    this.#loop = loop;
    this.#task = task;
  }

  /**
   * Listens for SIGINT, only in the main thread (not in a Worker, whose
   * listener would take Ctrl-C from the whole process) and where Deno can
   * listen for it; returns `null` where not.
   */
  static install(loop: SchedulingLoop, task: MainTask): CtrlC | null {
    const scope = (globalThis as { WorkerGlobalScope?: unknown })
      .WorkerGlobalScope;
    if (typeof scope === "function" && globalThis instanceof scope) {
      return null;
    }
    if (typeof Deno.addSignalListener !== "function") return null;
    const ctrlC = new CtrlC(loop, task);
    try {
      Deno.addSignalListener("SIGINT", ctrlC.#listener);
    } catch {
      // No SIGINT to listen for on this platform: nothing to handle.
      return null;
    }
    ctrlC.#installed = true;
    return ctrlC;
  }

  /** Stops listening. */
  uninstall(): void {
    if (!this.#installed) return;
    this.#installed = false;
    Deno.removeSignalListener("SIGINT", this.#listener);
  }

  /** What run() rejects with when main ended cancelled by Ctrl-C. */
  interrupted(cause: unknown): Error {
    return new Deno.errors.Interrupted(
      'run() was interrupted: SIGINT (Ctrl-C) cancelled the main task (catch the CancelledError in main to clean up or go on, or handle SIGINT yourself with loop.addSignalHandler("SIGINT", callback))',
      { cause },
    );
  }

  #onSigint(): void {
    if (signalClaimed("SIGINT")) return;
    this.uninstall();
    if (this.count++ === 0 && !this.#task.done()) {
      this.#task.cancel();
      // Wakes a loop that waits for I/O or a timer.
      this.#loop.callSoonThreadsafe(() => {});
      return;
    }
    // Main is done (run() is about to remove this listener): SIGINT does
    // what it does by default.
    try {
      Deno.kill(Deno.pid, "SIGINT");
    } catch {
      Deno.exit(130);
    }
  }
}
