/**
 * A line-based chat server on `LineReceiver` (broadcast, `/nick`, `/who`, `/quit`, bounded buffering for slow clients), shown with three scripted clients, one of which stops reading; `--serve` keeps it open for `telnet`/`nc -C` until Ctrl-C.
 *
 * deno run --allow-net=127.0.0.1 examples/chat_server.ts
 *
 * Flow control policy. Every client's transport has a 64 KiB high-water mark
 * and a 16 KiB low-water mark. When the kernel stops taking a client's bytes
 * and its transport's buffer goes above the high-water mark, the transport
 * calls `pauseWriting()`: from then on the messages for that client are
 * dropped (and counted) instead of buffered, and the room is told the client
 * is lagging. When the buffer drains below the low-water mark,
 * `resumeWriting()` sends the client a notice saying how many messages it
 * missed. A client that misses more than 200 messages in one stall is
 * disconnected (its buffer is aborted). So a client never costs the server
 * more than about 64 KiB plus one line, however long it stops reading.
 *
 * In `--serve` mode (`deno run --allow-net=127.0.0.1 examples/chat_server.ts
 * --serve --port 7000`), connect with `telnet 127.0.0.1 7000` or
 * `nc -C 127.0.0.1 7000` (lines end in `\r\n`).
 *
 * @module
 */

import {
  type EventLoop,
  type Future,
  getEventLoop,
  LineReceiver,
  run,
  type Server,
  type Transport,
} from "../mod.ts";

const HOST = "127.0.0.1";
const HIGH_WATER = 64 * 1024;
const LOW_WATER = 16 * 1024;
const MAX_DROPPED = 200;
const MAX_LINE = 1024;
/** Seconds the clients get to read what they were sent, on Ctrl-C. */
const GRACE = 5;
const NICK = /^[A-Za-z0-9_-]{1,16}$/;
const decoder = new TextDecoder();

// ---- The server --------------------------------------------------------

/** The people connected, and the messages between them. */
export class ChatRoom {
  readonly #members = new Set<ChatClient>();
  #guests = 0;
  /** Where the server's own notes go. */
  readonly log: (line: string) => void;

  constructor(log: (line: string) => void = console.log) {
    this.log = log;
  }

  /** Finds a free guest name. */
  guestName(): string {
    return `guest-${++this.#guests}`;
  }

  /** Returns the member with this nick, if any. */
  find(nick: string): ChatClient | undefined {
    for (const m of this.#members) if (m.nick === nick) return m;
    return undefined;
  }

  /** The nicks, sorted. */
  nicks(): string[] {
    return [...this.#members].map((m) => m.nick).sort();
  }

  join(client: ChatClient): void {
    this.#members.add(client);
    this.log(`server: ${client.nick} joined (${this.#members.size} online)`);
    this.broadcast(`* ${client.nick} joined`, client);
  }

  leave(client: ChatClient, reason: string): void {
    if (!this.#members.delete(client)) return;
    this.log(`server: ${client.nick} ${reason}`);
    this.broadcast(`* ${client.nick} ${reason}`);
  }

  /** Sends `line` to every member but `except`. */
  broadcast(line: string, except?: ChatClient): void {
    // A copy: sending may disconnect a member.
    for (const m of [...this.#members]) if (m !== except) m.send(line);
  }
}

/** One connection: a `LineReceiver` that speaks the chat's commands. */
export class ChatClient extends LineReceiver {
  nick: string;
  readonly #room: ChatRoom;
  #stalled = false;
  #dropped = 0;
  #leaving: string | null = null;

  constructor(room: ChatRoom) {
    super(undefined, {
      maxLength: MAX_LINE,
      // Skip an over-long line and keep the connection.
      onLengthExceeded: () =>
        this.send(`! line too long (at most ${MAX_LINE} bytes); ignored`),
    });
    this.#room = room;
    this.nick = room.guestName();
  }

  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    transport.setWriteBufferLimits(HIGH_WATER, LOW_WATER);
    this.send(
      `Welcome, ${this.nick}! Commands: /nick NAME, /who, /quit`,
    );
    this.#room.join(this);
  }

  override lineReceived(bytes: Uint8Array): void {
    const line = decoder.decode(bytes);
    if (!line.startsWith("/")) {
      if (line.trim() !== "") {
        this.#room.broadcast(`<${this.nick}> ${line}`, this);
      }
      return;
    }
    const [command, ...args] = line.trim().split(/\s+/);
    switch (command) {
      case "/nick":
        return this.#rename(args[0] ?? "");
      case "/who":
        return this.send(`* in the room: ${this.#room.nicks().join(", ")}`);
      case "/quit":
        this.send("* bye");
        this.#leaving = "left";
        this.transport!.close(); // Flushes "* bye" first.
        return;
      default:
        this.send(`! unknown command ${command} (try /nick, /who, /quit)`);
    }
  }

  /**
   * Sends a line unless the client is stalled: then the line is dropped
   * and counted, and past `MAX_DROPPED` the client is disconnected.
   */
  send(line: string): void {
    const transport = this.transport;
    if (transport === null || transport.isClosing()) return;
    if (!this.#stalled) {
      this.writeLine(line);
      return;
    }
    if (++this.#dropped > MAX_DROPPED) {
      this.#leaving =
        `was disconnected: not reading (over ${MAX_DROPPED} messages dropped)`;
      transport.abort();
    }
  }

  /** The buffer went above the high-water mark: drop from now on. */
  override pauseWriting(): void {
    this.#stalled = true;
    this.#room.log(
      `server: ${this.nick} is not reading; dropping its messages`,
    );
    this.#room.broadcast(
      `* ${this.nick} is not keeping up; messages to ${this.nick} are dropped`,
      this,
    );
  }

  /** The buffer drained below the low-water mark: say what was missed. */
  override resumeWriting(): void {
    this.#stalled = false;
    const missed = this.#dropped;
    this.#dropped = 0;
    this.#room.log(`server: ${this.nick} caught up, after ${missed} dropped`);
    this.send(`! ${missed} messages were dropped while you were not reading`);
    this.#room.broadcast(`* ${this.nick} caught up`, this);
  }

  override connectionLost(exc?: Error): void {
    super.connectionLost(exc);
    this.#room.leave(
      this,
      this.#leaving ?? (exc === undefined ? "disconnected" : `lost: ${exc}`),
    );
  }

  #rename(nick: string): void {
    if (!NICK.test(nick)) {
      this.send("! a nick is 1 to 16 letters, digits, _ or -");
    } else if (this.#room.find(nick) !== undefined) {
      this.send(`! the nick ${nick} is taken`);
    } else {
      const old = this.nick;
      this.nick = nick;
      this.send(`* you are now ${nick}`);
      this.#room.broadcast(`* ${old} is now ${nick}`, this);
    }
  }
}

/**
 * Starts the chat server on `loop`, listening on `host:port` (127.0.0.1 by
 * default); `log` receives the server's notes (the console by default).
 */
export function startChat(
  loop: EventLoop,
  port: number,
  host: string = HOST,
  log?: (line: string) => void,
): Future<Server> {
  const room = new ChatRoom(log);
  return loop.createServer(() => new ChatClient(room), host, port);
}

// ---- The scripted clients ----------------------------------------------

const FLOOD_LINE = "x".repeat(1000);
const FLOOD_BATCH = 16;

/** A chat client that prints what it hears and lets the script wait. */
class ScriptClient extends LineReceiver {
  readonly name: string;
  readonly lost: Future<void>;
  /** Flood lines received (counted, not printed). */
  floodLines = 0;
  #waiting: [RegExp, Future<string>][] = [];
  #seen: string[] = [];

  constructor(loop: EventLoop, name: string) {
    super(undefined, { maxLength: 4096 });
    this.name = name;
    this.lost = loop.createFuture();
  }

  override lineReceived(bytes: Uint8Array): void {
    const line = decoder.decode(bytes);
    if (/^<\w+> flood \d+ /.test(line)) {
      this.floodLines++;
    } else {
      console.log(`  ${this.name.padEnd(6)}| ${line}`);
      this.#seen.push(line);
    }
    this.#waiting = this.#waiting.filter(([pattern, future]) => {
      if (!pattern.test(line)) return true;
      future.setResult(line);
      return false;
    });
  }

  override connectionLost(exc?: Error): void {
    super.connectionLost(exc);
    console.log(
      `  ${this.name.padEnd(6)}| (connection closed${exc ? `: ${exc}` : ""})`,
    );
    this.lost.setResult(undefined);
  }

  /** Has a line matching `pattern` been printed already? */
  saw(pattern: RegExp): boolean {
    return this.#seen.some((line) => pattern.test(line));
  }

  /** The next line that matches `pattern`. */
  next(pattern: RegExp): Future<string> {
    const future = this.lost.getLoop().createFuture<string>();
    this.#waiting.push([pattern, future]);
    return future;
  }

  say(line: string): void {
    if (!line.startsWith("flood")) console.log(`${this.name} says: ${line}`);
    this.writeLine(line);
  }
}

/**
 * Alice floods the room, in batches paced by Bob's reading (so that only
 * Carol, who does not read, falls behind), until `stop()` says enough.
 */
async function flood(
  alice: ScriptClient,
  bob: ScriptClient,
  stop: () => boolean,
  counter: { n: number },
): Promise<void> {
  while (!stop()) {
    let last = "";
    for (let i = 0; i < FLOOD_BATCH; i++) {
      last = `flood ${++counter.n} `;
      alice.writeLine(last + FLOOD_LINE);
    }
    await bob.next(new RegExp(`^<alice> ${last}`));
  }
}

async function demo(loop: EventLoop, server: Server): Promise<void> {
  const { port } = server.addresses()[0] as Deno.NetAddr;
  const connect = async (name: string) => {
    const [, client] = await loop.createConnection(
      () => new ScriptClient(loop, name),
      HOST,
      port,
    );
    await client.next(/^Welcome/);
    return client;
  };
  const alice = await connect("alice");
  const bob = await connect("bob");
  const carol = await connect("carol");
  for (const c of [alice, bob, carol]) {
    c.say(`/nick ${c.name}`);
    await c.next(/^\* you are now/);
  }
  bob.say("/nick alice");
  await bob.next(/taken/);
  alice.say("hello everyone");
  await carol.next(/hello everyone/);
  bob.say("/who");
  await bob.next(/in the room/);

  console.log("carol stops reading (pauseReading)");
  carol.transport!.pauseReading();
  console.log("alice floods the room with 1 KB lines");
  const sent = { n: 0 };
  await flood(alice, bob, () => alice.saw(/carol is not keeping up/), sent);
  console.log(
    `after ${sent.n} lines carol fell behind; alice sends 20 more`,
  );
  for (let i = 0; i < 20; i++) {
    alice.writeLine(`flood ${++sent.n} ${FLOOD_LINE}`);
  }
  await bob.next(new RegExp(`^<alice> flood ${sent.n} `));

  console.log("carol reads again (resumeReading)");
  const caughtUp = alice.next(/carol caught up/);
  carol.transport!.resumeReading();
  await carol.next(/messages were dropped/);
  console.log(`carol read ${carol.floodLines} of ${sent.n} flood lines`);
  await caughtUp;

  console.log("carol stops reading again, and alice floods on");
  carol.transport!.pauseReading();
  await flood(alice, bob, () => alice.saw(/carol was disconnected/), sent);
  console.log("carol reads again, to find out");
  carol.transport!.resumeReading();
  await carol.lost;

  bob.say("bye all");
  await alice.next(/bye all/);
  bob.say("/quit");
  alice.say("/quit");
  await Promise.all([alice.lost, bob.lost]);
}

// ---- Main --------------------------------------------------------------

function option(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

if (import.meta.main) await main();

async function main(): Promise<void> {
  await run(async () => {
    const loop = getEventLoop();
    const serveOnly = Deno.args.includes("--serve");
    const server = await startChat(loop, Number(option("port") ?? 0));
    const { port } = server.addresses()[0] as Deno.NetAddr;
    console.log(`server: chat on ${HOST}:${port}`);
    const interrupted = loop.createFuture<void>();
    loop.addSignalHandler("SIGINT", () => {
      console.log("SIGINT: closing the server");
      if (!interrupted.done()) interrupted.setResult(undefined);
    });
    try {
      if (serveOnly) {
        console.log("server: --serve: connect with telnet; Ctrl-C stops");
        await interrupted;
      } else {
        const script = loop.createTask(() => demo(loop, server));
        interrupted.addDoneCallback(() => script.cancel());
        await script;
      }
    } finally {
      // Close every connection once its buffer is flushed, and abort
      // those of clients that do not read it within the grace period,
      // or at a second Ctrl-C.
      loop.addSignalHandler("SIGINT", () => server.shutdown({ grace: 0 }));
      await server.shutdown({ grace: GRACE });
      loop.removeSignalHandler("SIGINT");
      console.log("server: closed");
    }
  });
}
