// The chat example under a simulation: talkers whose hosts crash and
// restart (and reconnect), and an observer that checks what the room
// delivered. Shared by the chat simulation test and the benchmark.

import type { Future } from "../../futures/future.ts";
import type { EventLoop } from "../../loop/event_loop.ts";
import { LineReceiver } from "../../protocols/line_receiver.ts";
import { sleep } from "../../tasks/sleep.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import type { Simulation } from "../../testing/simulation.ts";
import { startChat } from "../../examples/chat_server.ts";

const decoder = new TextDecoder();
const PORT = 7000;

/** A chat connection that lets a script wait for lines. */
class Talker extends LineReceiver {
  readonly lost: Future<void>;
  readonly #loop: EventLoop;
  #waiting: [RegExp, Future<string>][] = [];
  #unclaimed: string[] = [];
  onLine: (line: string) => void = () => {};

  constructor(loop: EventLoop) {
    super(undefined, { maxLength: 4096 });
    this.#loop = loop;
    this.lost = loop.createFuture();
  }

  override lineReceived(bytes: Uint8Array): void {
    const line = decoder.decode(bytes);
    this.onLine(line);
    const i = this.#waiting.findIndex(([pattern]) => pattern.test(line));
    if (i < 0) {
      // Kept for a next() still to come: a line may arrive before the
      // script, resuming from its last await, asks for it.
      this.#unclaimed.push(line);
      if (this.#unclaimed.length > 100) this.#unclaimed.shift();
      return;
    }
    const [[, future]] = this.#waiting.splice(i, 1);
    if (!future.done()) future.setResult(line);
  }

  override connectionLost(exc?: Error): void {
    super.connectionLost(exc);
    this.lost.setResult(undefined);
  }

  /** The next line matching `pattern`, or a TimeoutError after 5 s. */
  next(pattern: RegExp): Future<string> {
    const future = this.#loop.createFuture<string>();
    const i = this.#unclaimed.findIndex((line) => pattern.test(line));
    if (i >= 0) future.setResult(this.#unclaimed.splice(i, 1)[0]);
    else this.#waiting.push([pattern, future]);
    return waitFor(future, 5);
  }
}

/** Connects and takes `nick`, retrying until the room lets it. */
async function join(loop: EventLoop, nick: string): Promise<Talker> {
  for (;;) {
    let talker: Talker;
    try {
      [, talker] = await loop.createConnection(
        () => new Talker(loop),
        "chat",
        PORT,
      );
    } catch {
      await sleep(0.1 + Math.random() * 0.1);
      continue;
    }
    try {
      const welcome = talker.next(/^Welcome/);
      await welcome;
      const answer = talker.next(/^(\* you are now|! the nick)/);
      talker.writeLine(`/nick ${nick}`);
      if ((await answer).startsWith("*")) return talker;
      // The room still holds this nick: the connection of a crashed
      // incarnation, until its reset arrives.
    } catch {
      // Reset, or no answer in time: try again.
    }
    talker.transport?.abort();
    await sleep(0.1 + Math.random() * 0.1);
  }
}

/** Options of the chat scenario. */
export interface ChatScenarioOptions {
  /** The talkers' names; their hosts crash and restart. */
  talkers: string[];
  /** Messages each talker sends. */
  messages: number;
}

/**
 * Adds the chat server, the talkers and the observer to `sim`. Faults
 * (crashes of the talkers) come from the simulation's options.
 */
export function chatScenario(
  sim: Simulation,
  { talkers, messages }: ChatScenarioOptions,
): void {
  const epochs = new Map<string, number>();
  const finished = new Map<string, number>();
  const observing = { in: false };
  sim.host("chat", (loop) => startChat(loop, PORT, "0.0.0.0", () => {}));
  for (const name of talkers) {
    sim.client(name, async (loop) => {
      // A talker that finished before its host crashed stays away: the
      // observer, done once every talker finished, checks for ghosts.
      if (finished.has(name)) return;
      const epoch = (epochs.get(name) ?? 0) + 1;
      epochs.set(name, epoch);
      // Talk once the observer is in the room, so it hears every line.
      while (!observing.in) await sleep(0.05);
      for (;;) {
        const talker = await join(loop, name);
        try {
          for (let i = 0; i < messages; i++) {
            talker.writeLine(`m ${epoch} ${i}`);
            await sleep(0.02 + Math.random() * 0.05);
            if (talker.lost.done()) throw new Error("lost");
          }
          finished.set(name, epoch);
          const bye = talker.next(/^\* bye/);
          talker.writeLine("/quit");
          await bye;
          await waitFor(talker.lost, 5);
          return;
        } catch {
          // The connection broke halfway: send the messages again.
          talker.transport?.abort();
        }
      }
    });
  }
  sim.client("observer", async (loop) => {
    // The last index seen per talker and epoch: each sequence must arrive
    // in order, without gaps (a crash may only cut its end short).
    const last = new Map<string, number>();
    const observer = await join(loop, "observer");
    observing.in = true;
    observer.onLine = (line) => {
      const m = /^<([\w-]+)> m (\d+) (\d+)$/.exec(line);
      if (m === null) return;
      const key = `${m[1]} ${m[2]}`;
      const i = Number(m[3]);
      const expected = (last.get(key) ?? -1) + 1;
      // A talker that lost its connection resends from 0.
      if (i !== expected && i !== 0) {
        throw new Error(
          `the observer got "${line}" after index ${expected - 1}`,
        );
      }
      last.set(key, i);
    };
    const complete = () =>
      talkers.every((name) => {
        const epoch = finished.get(name);
        return epoch !== undefined &&
          last.get(`${name} ${epoch}`) === messages - 1;
      });
    while (!complete()) {
      if (observer.lost.done()) {
        throw new Error("the observer lost its connection");
      }
      await sleep(0.1);
    }
    // Every talker quit, and the resets of crashed ones have arrived:
    // the room must hold the observer alone.
    await sleep(1);
    const who = observer.next(/^\* in the room/);
    observer.writeLine("/who");
    const room = await who;
    if (room !== "* in the room: observer") {
      throw new Error(`the room still holds ghosts: ${room}`);
    }
    observer.writeLine("/quit");
    await waitFor(observer.lost, 5);
  });
}
