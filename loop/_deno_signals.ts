// The loop's signal handlers, over Deno.addSignalListener: one handler per
// signal, run on the loop with callSoonThreadsafe. A signal is an event the
// host raises, not an operation the loop started and waits on, so it does
// not go through the proactor: nothing is pending, and the loop removes the
// listeners when it closes.

import { checkCallback, checkHandle, Handle, linkHandle } from "./_handle.ts";
import type { SchedulingLoop } from "./event_loop.ts";

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

/**
 * Checks that `sig` is a signal name (PEP 3156: adding and removing a
 * handler raise alike for a signal that does not exist); `what` completes
 * "Cannot ...".
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
      loop.callSoonThreadsafe(
        handle.callback as (...a: unknown[]) => unknown,
        ...handle.args,
      );
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
    this.#entries.set(sig, { handle, listener });
    return handle;
  }

  /** Removes the handler of `sig`; returns whether there was one. */
  remove(sig: Deno.Signal): boolean {
    checkSignalName(sig, "remove a signal handler");
    const entry = this.#entries.get(sig);
    if (entry === undefined) return false;
    this.#entries.delete(sig);
    Deno.removeSignalListener(sig, entry.listener);
    return true;
  }

  /** Removes every handler. */
  clear(): void {
    for (const sig of [...this.#entries.keys()]) this.remove(sig);
  }
}
