// serveWorkers() over real sockets on 127.0.0.1: connections spread over
// the workers, a crashed or vanished worker is replaced, close() and
// SIGTERM let a request in flight finish, and the supervisor gives up on a
// worker that keeps crashing. Every wait is bounded.

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { LATE_READY_CHANNEL } from "../fixtures/serve_workers_late_ready.ts";
import { HANG_ON_RESTART } from "../fixtures/serve_workers_hang_on_restart.ts";
import { HANG_AFTER_READY } from "../fixtures/serve_workers_hang_after_ready.ts";
import {
  serveWorkers,
  type ServeWorkersOptions,
  type WorkerCrash,
  type WorkerSupervisor,
} from "../../loop/deno_serve_workers.ts";

const MODULE = new URL("../fixtures/serve_workers_module.ts", import.meta.url);
const FAILING = new URL(
  "../fixtures/serve_workers_failing.ts",
  import.meta.url,
);
const HANGING = new URL(
  "../fixtures/serve_workers_hanging.ts",
  import.meta.url,
);
const LATE_READY = new URL(
  "../fixtures/serve_workers_late_ready.ts",
  import.meta.url,
);
const STUCK = new URL("../fixtures/serve_workers_stuck.ts", import.meta.url);
const HANG_ON_RESTART_MODULE = new URL(
  "../fixtures/serve_workers_hang_on_restart.ts",
  import.meta.url,
);
const HANG_AFTER_READY_MODULE = new URL(
  "../fixtures/serve_workers_hang_after_ready.ts",
  import.meta.url,
);
/** A module without a serve export. */
const NO_SERVE = new URL("../fixtures/worker_module.ts", import.meta.url);
const HOST = "127.0.0.1";
/** A guard against a hang, never a claim about speed. */
const BOUND_MS = 15_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function portOf(supervisor: WorkerSupervisor): number {
  return (supervisor.addresses[0] as Deno.NetAddr).port;
}

/** The body of a response, its chunked framing undone. */
function bodyOf(head: string, raw: string): string {
  if (!/transfer-encoding: chunked/i.test(head)) return raw;
  let body = "";
  let rest = raw;
  while (true) {
    const eol = rest.indexOf("\r\n");
    if (eol < 0) return body;
    const size = parseInt(rest.slice(0, eol), 16);
    if (!(size > 0)) return body;
    body += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

/**
 * GETs `path` on a fresh connection, which the server closes after; a
 * connection still open after 5 s is closed, failing the read.
 */
async function get(
  port: number,
  path: string,
): Promise<{ head: string; body: string }> {
  const conn = await Deno.connect({ hostname: HOST, port });
  let open = true;
  const guard = setTimeout(() => {
    if (open) conn.close();
    open = false;
  }, 5000);
  try {
    await conn.write(
      encoder.encode(
        `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      ),
    );
    let text = "";
    const buf = new Uint8Array(4096);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
    }
    const at = text.indexOf("\r\n\r\n");
    assert(at >= 0, `no complete head: ${JSON.stringify(text)}`);
    const head = text.slice(0, at);
    return { head, body: bodyOf(head, text.slice(at + 4)) };
  } finally {
    clearTimeout(guard);
    if (open) conn.close();
    open = false;
  }
}

/** `GET /id` until every worker has answered: index → instance. */
async function instances(
  port: number,
  workers: number,
): Promise<Map<string, string>> {
  const seen = new Map<string, string>();
  for (let i = 0; i < 64 && seen.size < workers; i++) {
    const [index, instance] = (await get(port, "/id")).body.split(" ");
    seen.set(index, instance);
  }
  return seen;
}

/**
 * Asks one worker to end through `path`, then GETs `/id` until that
 * worker answers as a new instance; returns how many answers came from
 * the other worker meanwhile.
 */
async function replaceOne(
  supervisor: WorkerSupervisor,
  path: string,
): Promise<{ index: string; othersServed: number }> {
  const port = portOf(supervisor);
  const before = await instances(port, 2);
  assertEquals(before.size, 2);
  const index = (await get(port, path)).body.split(" ")[1];
  assert(index === "0" || index === "1", index);
  let othersServed = 0;
  const deadline = Date.now() + BOUND_MS;
  while (Date.now() < deadline) {
    let answer: string;
    try {
      answer = (await get(port, "/id")).body;
    } catch {
      // A connection queued on the dying worker's socket is reset.
      continue;
    }
    const [who, instance] = answer.split(" ");
    if (who !== index) othersServed++;
    else if (instance !== before.get(index)) return { index, othersServed };
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`worker ${index} was not replaced within ${BOUND_MS} ms`);
}

/** Connects until the port refuses (bounded): nothing listens any more. */
async function refusedSoon(port: number): Promise<void> {
  const deadline = Date.now() + BOUND_MS;
  while (Date.now() < deadline) {
    try {
      (await Deno.connect({ hostname: HOST, port })).close();
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionRefused) return;
      throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`port ${port} still accepted after ${BOUND_MS} ms`);
}

// ---- Serving ----

Deno.test("serveWorkers() spreads new connections over its workers", async () => {
  let port: number;
  {
    // `await using` closes the workers gracefully and waits for them.
    await using supervisor = await serveWorkers(MODULE, {
      workers: 2,
      signals: false,
    });
    assertEquals(supervisor.workers, 2);
    port = portOf(supervisor);
    assert(port > 0);
    const seen = await instances(port, 2);
    assertEquals([...seen.keys()].sort(), ["0", "1"]);
  }
  await assertRejects(
    () => Deno.connect({ hostname: HOST, port }),
    Deno.errors.ConnectionRefused,
  );
});

// ---- Crashes ----

Deno.test("serveWorkers() replaces a worker that crashes and keeps serving", async () => {
  const crashes: WorkerCrash[] = [];
  const supervisor = await serveWorkers(MODULE, {
    workers: 2,
    signals: false,
    // A second without the crashed worker: the other one answers meanwhile.
    restartDelay: 1,
    onCrash: (crash) => crashes.push(crash),
  });
  try {
    const { index, othersServed } = await replaceOne(supervisor, "/crash");
    assert(othersServed >= 1, `${othersServed}`);
    assertEquals(crashes.length, 1);
    assertEquals(String(crashes[0].index), index);
    assertStringIncludes(crashes[0].error.message, "crash requested");
    assertEquals(crashes[0].restartIn, 1);
    assertEquals(supervisor.restarts, 1);
    // Both serve again.
    assertEquals((await instances(portOf(supervisor), 2)).size, 2);
  } finally {
    await supervisor.close();
  }
  await supervisor.closed;
});

Deno.test("serveWorkers() replaces a worker that ends itself at once, without waiting for its pings (Node's cluster 'exit')", async () => {
  const crashes: WorkerCrash[] = [];
  // The default timeout, 30 s, is beyond the test's bound.
  const supervisor = await serveWorkers(MODULE, {
    workers: 2,
    signals: false,
    onCrash: (crash) => crashes.push(crash),
  });
  try {
    const exited = await replaceOne(supervisor, "/exit");
    const closed = await replaceOne(supervisor, "/close");
    assertEquals(
      crashes.map(({ index, error }) => [String(index), error.message]),
      [
        [exited.index, "it ended itself: Deno.exit(0) was called in it"],
        [closed.index, "it ended itself: self.close() was called in it"],
      ],
    );
  } finally {
    await supervisor.close();
  }
  await supervisor.closed;
});

Deno.test("serveWorkers() replaces a worker that hangs once it stops answering", async () => {
  const crashes: WorkerCrash[] = [];
  const supervisor = await serveWorkers(MODULE, {
    workers: 2,
    signals: false,
    timeout: 0.5,
    onCrash: (crash) => crashes.push(crash),
  });
  try {
    const index = (await get(portOf(supervisor), "/hang")).body.split(" ")[1];
    // No request after this one: a connection the kernel queues on the
    // hung worker's socket would wait for it.
    const deadline = Date.now() + BOUND_MS;
    while (supervisor.restarts === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assertEquals(supervisor.restarts, 1);
    assertEquals(
      crashes.map(({ index, error, restartIn }) => [
        String(index),
        error.message,
        restartIn,
      ]),
      [[
        index,
        "it did not answer for 0.5 s: it hung, or ended by itself",
        0.1,
      ]],
    );
  } finally {
    await supervisor.close();
  }
  await supervisor.closed;
});

/** Crashes the only worker and waits for its next instance. */
async function crashOnce(port: number): Promise<void> {
  const before = (await get(port, "/id")).body;
  assertEquals((await get(port, "/crash")).body, "crashing 0");
  const deadline = Date.now() + BOUND_MS;
  while (Date.now() < deadline) {
    try {
      if ((await get(port, "/id")).body !== before) return;
    } catch {
      // Nothing listens between the crash and the restart.
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no new worker within ${BOUND_MS} ms`);
}

Deno.test("serveWorkers() doubles the restart delay for crashes in a row, up to its cap, and starts over after stableAfter", async () => {
  const crashes: WorkerCrash[] = [];
  const supervisor = await serveWorkers(MODULE, {
    workers: 1,
    signals: false,
    restartDelay: 0.05,
    maxRestartDelay: 0.2,
    stableAfter: 2,
    onCrash: (crash) => crashes.push(crash),
  });
  try {
    const port = portOf(supervisor);
    for (let i = 0; i < 4; i++) await crashOnce(port);
    assertEquals(
      crashes.map((c) => [c.restartIn, c.error.message]),
      [0.05, 0.1, 0.2, 0.2].map((d) => [d, "crash requested"]),
    );
    // Up longer than stableAfter: the next crash starts the delays over.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    await crashOnce(port);
    assertEquals(crashes.at(-1)?.restartIn, 0.05);
    assertEquals(supervisor.restarts, 5);
  } finally {
    await supervisor.close();
  }
  await supervisor.closed;
});

/**
 * The TCP sockets this process has open (Linux, as serveWorkers needs),
 * as `ls` and `cat` list them: Deno's own file API asks for all
 * permissions to read `/proc`. (The runtime's own Unix sockets come and
 * go with its threads.)
 */
async function sockets(): Promise<number> {
  const text = async (command: string, ...args: string[]) =>
    decoder.decode((await new Deno.Command(command, { args }).output()).stdout);
  const fds = await text("ls", "-l", `/proc/${Deno.pid}/fd`);
  const inodes = new Set(
    [...fds.matchAll(/socket:\[(\d+)\]/g)].map((m) => m[1]),
  );
  const tcp = await text("cat", "/proc/net/tcp", "/proc/net/tcp6");
  // The 10th column of each socket's line is its inode.
  return tcp.split("\n").filter((line) =>
    inodes.has(line.trim().split(/\s+/)[9])
  ).length;
}

Deno.test("serveWorkers() leaves no socket behind across 20 restarts", async () => {
  const supervisor = await serveWorkers(MODULE, {
    workers: 1,
    signals: false,
    restartDelay: 0.01,
    maxRestartDelay: 0.01,
    maxCrashes: Infinity,
    onCrash: () => {},
  });
  try {
    const port = portOf(supervisor);
    await get(port, "/id");
    const before = await sockets();
    for (let i = 0; i < 20; i++) await crashOnce(port);
    assertEquals(supervisor.restarts, 20);
    // A terminated worker's sockets go a moment after it.
    const deadline = Date.now() + BOUND_MS;
    while (await sockets() > before && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const after = await sockets();
    assert(after <= before, `${before} sockets before, ${after} after`);
  } finally {
    await supervisor.close();
  }
  await supervisor.closed;
});

/**
 * Serves `module` from one worker, which it then ends through `path`
 * (`/crash` or `/exit`); resolves once the supervisor has heard of it and
 * the worker's own socket has gone (within milliseconds, unless loaded),
 * with its answer to `/id` before and how many sockets the process had
 * then. Closes the supervisor when that fails.
 */
async function endOnlyWorker(
  module: URL,
  path: "/crash" | "/exit",
  options: ServeWorkersOptions,
): Promise<{
  supervisor: WorkerSupervisor;
  port: number;
  before: string;
  serving: number;
  crashes: WorkerCrash[];
}> {
  const crashes: WorkerCrash[] = [];
  const supervisor = await serveWorkers(module, {
    workers: 1,
    onCrash: (crash) => crashes.push(crash),
    ...options,
  });
  try {
    const port = portOf(supervisor);
    const before = (await get(port, "/id")).body;
    const serving = await sockets();
    assertMatch((await get(port, path)).body, /^(crash|exit)ing 0$/);
    const deadline = Date.now() + BOUND_MS;
    while (crashes.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assertEquals(crashes.length, 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    return { supervisor, port, before, serving, crashes };
  } catch (error) {
    await supervisor.close();
    throw error;
  }
}

/**
 * Asserts that no other program can bind `port` now: until the restart,
 * one could, and the new worker would then fail with AddrInUse (or share
 * a stranger's reusePort).
 */
function assertPortHeld(port: number, when: string): void {
  let stranger: Deno.Listener | null = null;
  try {
    stranger = Deno.listen({ hostname: HOST, port });
  } catch (error) {
    assertInstanceOf(error, Deno.errors.AddrInUse);
  } finally {
    stranger?.close();
  }
  assertEquals(stranger, null, `the port was free ${when}`);
}

Deno.test("serveWorkers() keeps the port while its only worker restarts, as a cluster primary or gunicorn's arbiter does, holding what comes meanwhile for the restarted worker", async () => {
  const { supervisor, port, before, crashes } = await endOnlyWorker(
    MODULE,
    "/crash",
    // Longer than the checks below take, shorter than get()'s 5 s.
    { signals: false, restartDelay: 2 },
  );
  try {
    let answer: Promise<string> | null = null;
    for (let i = 0; i < 10; i++) {
      assertPortHeld(port, `${100 + 30 * i} ms after the crash`);
      // A connection meanwhile waits for the restarted worker, which
      // answers it.
      answer ??= get(port, "/id").then(({ body }) => body);
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    const after = await answer!;
    assert(after !== before && after.startsWith("0 "), `${before} ${after}`);
    assertEquals(crashes.map((c) => c.error.message), ["crash requested"]);
    assertEquals(supervisor.restarts, 1);
  } finally {
    await supervisor.close();
  }
  await supervisor.closed;
});

Deno.test("serveWorkers() keeps the port also while its only worker, having ended itself, restarts", async () => {
  const { supervisor, port, before } = await endOnlyWorker(MODULE, "/exit", {
    signals: false,
    restartDelay: 1,
  });
  try {
    // The worker closed its socket itself as it ended.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assertPortHeld(port, "after the worker ended");
    // What comes meanwhile waits for the restarted worker.
    const after = (await get(port, "/id")).body;
    assert(after !== before && after.startsWith("0 "), `${before} ${after}`);
    assertEquals(supervisor.restarts, 1);
  } finally {
    await supervisor.close();
  }
  await supervisor.closed;
});

/**
 * What `conn` reads within `ms`: "EOF", the error's name, or "still open"
 * (then `conn` is closed).
 */
async function outcomeWithin(conn: Deno.Conn, ms: number): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    conn.read(new Uint8Array(4096)).then(
      (n) => n === null ? "EOF" : `read ${n} bytes`,
      (error) => error.name,
    ),
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve("still open"), ms);
    }),
  ]);
  clearTimeout(timer);
  return outcome;
}

Deno.test("serveWorkers() closes a connection it held for holdTimeout with no worker serving, as a load balancer's queue timeout does: the client reads EOF, also when its request went unread", async () => {
  const { supervisor, port } = await endOnlyWorker(MODULE, "/crash", {
    signals: false,
    // Longer than the test: no worker serves meanwhile.
    restartDelay: 10,
    holdTimeout: 0.3,
  });
  const conns: Deno.Conn[] = [];
  try {
    const started = performance.now();
    const silent = await Deno.connect({ hostname: HOST, port });
    conns.push(silent);
    const asking = await Deno.connect({ hostname: HOST, port });
    conns.push(asking);
    await asking.write(encoder.encode("GET /id HTTP/1.1\r\nHost: x\r\n\r\n"));
    const outcomes = await Promise.all([
      outcomeWithin(silent, 3000),
      outcomeWithin(asking, 3000),
    ]);
    const took = performance.now() - started;
    // Linux ends with EOF also a connection whose bytes were never read.
    assertEquals(outcomes, ["EOF", "EOF"]);
    // Not before holdTimeout; the upper bound only pins a hang.
    assert(took >= 290, `${took} ms`);
    assertEquals(supervisor.restarts, 0);
    // The port is still held, and what comes next is held again.
    assertPortHeld(port, "after the held connections timed out");
  } finally {
    for (const conn of conns) conn.close();
    await supervisor.close();
  }
  await supervisor.closed;
});

Deno.test("serveWorkers() loses no connection made while its only worker restarts: what the supervisor accepted meanwhile is served by the restarted worker, also while it listens before it is ready", async () => {
  const channel = new BroadcastChannel(LATE_READY_CHANNEL);
  /** When the restarted worker listened. */
  let listening = Infinity;
  let restarting = false;
  channel.onmessage = () => {
    if (restarting) listening = Date.now();
  };
  try {
    const { supervisor, port } = await endOnlyWorker(LATE_READY, "/crash", {
      signals: false,
      restartDelay: 0.3,
    });
    restarting = true;
    try {
      // A connection every 20 ms: through the restart delay (the
      // supervisor holds the port alone), then the first 400 of the 600 ms
      // in which the restarted worker listens beside it before it is
      // ready; the kernel gives the supervisor's socket about half of
      // them. (Not up to the moment it closes that socket: the kernel
      // resets a connection it queued there that instant.)
      const answers: Promise<string>[] = [];
      let whileListening = 0;
      const deadline = Date.now() + BOUND_MS;
      while (Date.now() < Math.min(deadline, listening + 400)) {
        if (listening < Infinity) whileListening++;
        answers.push(
          get(port, "/id").then(({ body }) => body, (error) => `${error}`),
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const results = await Promise.all(answers);
      const failed = results.filter((r) => !r.startsWith("0 "));
      assertEquals(failed, [], `${failed.length} of ${results.length} failed`);
      assert(whileListening >= 8, `${whileListening} made while listening`);
      assertEquals(supervisor.restarts, 1);
    } finally {
      await supervisor.close();
    }
    await supervisor.closed;
  } finally {
    channel.close();
  }
});

Deno.test("serveWorkers() relays a connection it held to the restarted worker both ways, request after request, and lets it go once the worker closes its end", async () => {
  const { supervisor, port, before, serving } = await endOnlyWorker(
    MODULE,
    "/crash",
    { signals: false, restartDelay: 0.5 },
  );
  let conn: Deno.Conn | null = null;
  try {
    conn = await Deno.connect({ hostname: HOST, port });
    const buf = new Uint8Array(4096);
    let text = "";
    /** Reads until `count` whole answers (each ends with its id) came. */
    const answers = async (count: number) => {
      while ((text.match(/ [0-9a-f-]{36}/g) ?? []).length < count) {
        const n = await conn!.read(buf);
        if (n === null) throw new Error(`EOF after ${JSON.stringify(text)}`);
        text += decoder.decode(buf.subarray(0, n));
      }
    };
    await conn.write(encoder.encode("GET /id HTTP/1.1\r\nHost: x\r\n\r\n"));
    await answers(1);
    await conn.write(
      encoder.encode(
        "GET /id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      ),
    );
    await answers(2);
    const ids = text.match(/0 [0-9a-f-]{36}/g)!;
    assertEquals(ids.length, 2);
    assert(ids[0] !== before && ids[0] === ids[1], `${before} ${ids}`);
    assertEquals(await conn.read(buf), null);
    // The client keeps its end open: the relay still lets both of its
    // sockets go, leaving the restarted worker's and the client's.
    const deadline = Date.now() + BOUND_MS;
    // (Fewer when the ones before have gone since.)
    while (await sockets() > serving + 1 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const left = await sockets();
    assert(left <= serving + 1, `${serving} sockets serving, ${left} left`);
  } finally {
    conn?.close();
    await supervisor.close();
  }
  await supervisor.closed;
});

/**
 * POSTs a body over the worker's `maxBodyBytes`, writing all of it before
 * reading, and returns the status line it gets (or the error).
 */
async function uploadTooLarge(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: HOST, port });
  try {
    const size = 32 * 1024 * 1024;
    await conn.write(
      encoder.encode(
        `POST /id HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`,
      ),
    );
    const chunk = new Uint8Array(64 * 1024);
    for (let sent = 0; sent < size; sent += chunk.length) {
      for (let at = 0; at < chunk.length;) {
        at += await conn.write(chunk.subarray(at));
      }
    }
    let text = "";
    const buf = new Uint8Array(4096);
    for (let n; (n = await conn.read(buf)) !== null;) {
      text += decoder.decode(buf.subarray(0, n));
    }
    return text.split("\r\n")[0];
  } catch (error) {
    return `${error}`;
  } finally {
    conn.close();
  }
}

Deno.test("serveWorkers() relays the worker's lingering close: a held client still sending when the worker answers 413 gets the answer, as it does directly", async () => {
  const { supervisor, port } = await endOnlyWorker(MODULE, "/crash", {
    signals: false,
    restartDelay: 0.5,
  });
  try {
    const relayed = uploadTooLarge(port); // held, then relayed
    const deadline = Date.now() + BOUND_MS;
    while (supervisor.restarts === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const direct = await uploadTooLarge(port); // to the worker itself
    assertEquals({ direct, relayed: await relayed }, {
      direct: "HTTP/1.1 413 Content Too Large",
      relayed: "HTTP/1.1 413 Content Too Large",
    });
  } finally {
    await supervisor.close();
  }
  await supervisor.closed;
});

Deno.test({
  name:
    "serveWorkers() closes a connection its holder accepted in the instant close() released the port",
  // The holder is wrapped (below) to widen that instant at will.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const listen = Deno.listen;
    const gate = Promise.withResolvers<void>();
    let accepted = 0;
    // The holders are the main thread's reusePort listeners (workers have
    // their own Deno.listen): each accept is held at the gate before the
    // holder's loop sees it.
    (Deno as { listen: unknown }).listen = (
      options: Deno.TcpListenOptions & { reusePort?: boolean },
    ) => {
      const real = listen(options);
      if (!options.reusePort) return real;
      return {
        get addr() {
          return real.addr;
        },
        close: () => real.close(),
        async *[Symbol.asyncIterator]() {
          while (true) {
            const conn = await real.accept();
            accepted++;
            await gate.promise;
            yield conn;
          }
        },
      };
    };
    const channel = new BroadcastChannel(LATE_READY_CHANNEL);
    const listening = Promise.withResolvers<void>();
    let restarting = false;
    channel.onmessage = () => {
      if (restarting) listening.resolve();
    };
    let client: Deno.Conn | null = null;
    try {
      const { supervisor, port } = await endOnlyWorker(LATE_READY, "/crash", {
        signals: false,
        restartDelay: 0.5,
      });
      restarting = true;
      client = await Deno.connect({ hostname: HOST, port });
      while (accepted === 0) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      // The restarted worker listens, not yet ready: the exit comes later
      // than close(), and the held accept completes in between.
      await listening.promise;
      const exited = supervisor.close({ grace: 0 });
      gate.resolve();
      await exited;
      await supervisor.closed;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const outcome = await Promise.race([
        client.read(new Uint8Array(16)).then(
          (n) => `read ${n}`,
          (error) => `error ${error.name}`,
        ),
        new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve("still open"), 2000);
        }),
      ]);
      clearTimeout(timer);
      assert(outcome !== "still open", `the client's connection: ${outcome}`);
    } finally {
      (Deno as { listen: unknown }).listen = listen;
      channel.close();
      client?.close();
    }
  },
});

Deno.test("serveWorkers() waits a restart delay beyond 24.8 days (a host timer's range) instead of restarting at once", async () => {
  const crashes: WorkerCrash[] = [];
  const month = 30 * 86400;
  const supervisor = await serveWorkers(MODULE, {
    workers: 1,
    signals: false,
    restartDelay: month,
    maxRestartDelay: month,
    onCrash: (crash) => crashes.push(crash),
  });
  try {
    const port = portOf(supervisor);
    assertEquals((await get(port, "/crash")).body, "crashing 0");
    const deadline = Date.now() + BOUND_MS;
    while (crashes.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assertEquals(crashes.map((c) => c.restartIn), [month]);
    // A setTimeout over 2^31 - 1 ms fires after 1 ms.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assertEquals(supervisor.restarts, 0);
  } finally {
    await supervisor.close();
  }
  await supervisor.closed;
});

Deno.test("serveWorkers() gives up on a worker after maxCrashes crashes in a row", async () => {
  const crashes: WorkerCrash[] = [];
  const supervisor = await serveWorkers(MODULE, {
    workers: 2,
    signals: false,
    maxCrashes: 0,
    onCrash: (crash) => crashes.push(crash),
  });
  const port = portOf(supervisor);
  const index = (await get(port, "/crash")).body.split(" ")[1];
  const error = await assertRejects(() => supervisor.closed, Error);
  assertMatch(
    error.message,
    new RegExp(
      `^Cannot keep worker ${index} running: it crashed 1 time in a row, each before it had served 10 s; the last error: Error: crash requested$`,
    ),
  );
  assertEquals(crashes.map((c) => c.restartIn), [null]);
  // The other worker was closed too. The crashed one was terminated, and
  // Deno releases a terminated worker's socket a moment later.
  await refusedSoon(port);
  await supervisor.close();
});

/**
 * Serves `module` from one worker, which serves longer than `stableAfter`
 * (its crash then starts a new row), then crashes, with the environment
 * variable `env` set (for every worker: its restarts fail): checks that
 * the supervisor gives up on the third crash in a row, the last one's
 * error `lastError`.
 */
async function assertGivenUp(
  module: URL,
  env: string,
  options: ServeWorkersOptions & { stableAfter: number },
  lastError: string,
): Promise<void> {
  const crashes: WorkerCrash[] = [];
  const supervisor = await serveWorkers(module, {
    workers: 1,
    signals: false,
    restartDelay: 0.01,
    maxRestartDelay: 0.01,
    maxCrashes: 2,
    onCrash: (crash) => crashes.push(crash),
    ...options,
  });
  Deno.env.set(env, "1");
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await new Promise((resolve) =>
      setTimeout(resolve, options.stableAfter * 2000)
    );
    await get(portOf(supervisor), "/crash");
    const outcome = await Promise.race([
      supervisor.closed.then(() => "closed", (error) => error),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve("still restarting"), 5000);
      }),
    ]);
    assertInstanceOf(outcome, Error);
    assertEquals(
      outcome.message,
      `Cannot keep worker 0 running: it crashed 3 times in a row, each before it had served ${options.stableAfter} s; the last error: Error: ${lastError}`,
    );
    assertEquals(crashes.map((c) => c.restartIn), [0.01, 0.01, null]);
  } finally {
    clearTimeout(timer);
    Deno.env.delete(env);
    // A worker hung in serve() has no connection to finish.
    await supervisor.close({ grace: 0 });
  }
}

Deno.test("serveWorkers() gives up on a worker whose restarts keep failing, however long each takes to fail: only time spent serving makes a crash not count as in a row (gunicorn halts on a worker that fails to boot)", async () => {
  await assertGivenUp(
    HANG_ON_RESTART_MODULE,
    HANG_ON_RESTART,
    // Each failed start takes longer than stableAfter, as with the
    // defaults (30 s, 10 s).
    { startTimeout: 0.3, stableAfter: 0.1 },
    "it did not start serving within 0.3 s",
  );
});

Deno.test("serveWorkers() gives up on a worker that hangs just after each restart became ready: the time until its pings time out is no time spent serving", async () => {
  await assertGivenUp(
    HANG_AFTER_READY_MODULE,
    HANG_AFTER_READY,
    // Each hang is noticed later than stableAfter, as with the defaults
    // (30 s, 10 s).
    { timeout: 0.4, stableAfter: 0.2 },
    "it did not answer for 0.4 s: it hung, or ended by itself",
  );
});

// ---- Graceful shutdown ----

Deno.test("serveWorkers() close() lets a request in flight finish with its whole answer", async () => {
  const supervisor = await serveWorkers(MODULE, {
    workers: 2,
    signals: false,
  });
  const port = portOf(supervisor);
  const conn = await Deno.connect({ hostname: HOST, port });
  let text = "";
  let closing: Promise<void> | null = null;
  try {
    // Keep-alive: the server, not the client, decides to close.
    await conn.write(encoder.encode("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
    const buf = new Uint8Array(4096);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
      // The answer has begun: its handler is in flight.
      if (closing === null && text.includes("first\n")) {
        closing = supervisor.close();
      }
    }
  } finally {
    conn.close();
  }
  assert(closing !== null, `no answer began: ${JSON.stringify(text)}`);
  await closing;
  const at = text.indexOf("\r\n\r\n");
  const head = text.slice(0, at);
  assertMatch(head, /^HTTP\/1\.1 200 /);
  // The head went out before close(); the server ended the connection
  // after the answer (the read above reached its end).
  assertEquals(bodyOf(head, text.slice(at + 4)), "first\nlast\n");
  await supervisor.closed;
  await assertRejects(
    () => Deno.connect({ hostname: HOST, port }),
    Deno.errors.ConnectionRefused,
  );
});

Deno.test("serveWorkers() close() terminates a worker that has not closed exitTimeout after grace", async () => {
  const supervisor = await serveWorkers(STUCK, {
    workers: 1,
    signals: false,
    exitTimeout: 0.2,
  });
  const started = performance.now();
  await supervisor.close({ grace: 0.1 });
  await supervisor.closed;
  const took = performance.now() - started;
  // Not before grace + exitTimeout; the upper bound only pins a hang.
  assert(took >= 290, `${took} ms`);
  assert(took < BOUND_MS, `${took} ms`);
});

Deno.test("serveWorkers() close() with an endless grace still ends a restarting worker that does not start serving within startTimeout: it has no connection to finish", async () => {
  const supervisor = await serveWorkers(HANG_ON_RESTART_MODULE, {
    workers: 1,
    signals: false,
    startTimeout: 0.5,
    restartDelay: 0.01,
    onCrash: () => {},
  });
  Deno.env.set(HANG_ON_RESTART, "1");
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await get(portOf(supervisor), "/crash");
    const deadline = Date.now() + BOUND_MS;
    while (supervisor.restarts === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assertEquals(supervisor.restarts, 1);
    const started = performance.now();
    const exited = supervisor.close({ grace: Infinity });
    const outcome = await Promise.race([
      supervisor.closed.then(() => "closed"),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve("still closing"), 5000);
      }),
    ]);
    assertEquals(outcome, "closed");
    await exited;
    // Not after its start timeout; the bound above only pins a hang.
    assert(performance.now() - started < 2000);
  } finally {
    clearTimeout(timer);
    Deno.env.delete(HANG_ON_RESTART);
  }
});

Deno.test("serveWorkers() closes gracefully on SIGTERM", async () => {
  const supervisor = await serveWorkers(MODULE, { workers: 1 });
  const port = portOf(supervisor);
  assertEquals((await get(port, "/id")).body.split(" ")[0], "0");
  Deno.kill(Deno.pid, "SIGTERM");
  await supervisor.closed;
  await assertRejects(
    () => Deno.connect({ hostname: HOST, port }),
    Deno.errors.ConnectionRefused,
  );
});

Deno.test("serveWorkers() on SIGTERM while its only worker waits to restart: starts no worker, releases the port and the connections it held, and leaves no socket behind", async () => {
  const baseline = await sockets();
  // A restart delay longer than the test takes.
  const { supervisor, port } = await endOnlyWorker(MODULE, "/crash", {
    restartDelay: 5,
  });
  let signalled = false;
  try {
    // Held by the supervisor until a worker serves.
    const held = get(port, "/id").then(({ body }) => body, (error) => error);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    Deno.kill(Deno.pid, "SIGTERM");
    signalled = true;
    await supervisor.closed;
    assert(Date.now() - started < 2000, `${Date.now() - started} ms`);
    // No worker will serve it: it ends, unanswered, as the supervisor goes.
    assertInstanceOf(await held, Error);
    assertEquals(supervisor.restarts, 0);
    await assertRejects(
      () => Deno.connect({ hostname: HOST, port }),
      Deno.errors.ConnectionRefused,
    );
    // The crashed worker's sockets go a moment after it.
    const deadline = Date.now() + BOUND_MS;
    while (await sockets() > baseline && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assertEquals(await sockets(), baseline);
  } finally {
    if (!signalled) await supervisor.close();
  }
});

// ---- Starting ----

/**
 * Runs `serveWorkers(MODULE, { workers })` with its SIGTERM listener
 * called right after the `at`-th "ready" reaches the supervisor, in the
 * same task: a signal that comes in the same turn of the event loop as a
 * worker's message, which a real signal can.
 */
async function signalAtReady(workers: number, at: number): Promise<unknown> {
  const listeners = new Map<Deno.Signal, () => void>();
  const addSignalListener = Deno.addSignalListener;
  const proto = Worker.prototype;
  const onmessage = Object.getOwnPropertyDescriptor(proto, "onmessage")!;
  let readies = 0;
  Deno.addSignalListener = (sig, listener) => {
    listeners.set(sig, listener);
    addSignalListener(sig, listener);
  };
  Object.defineProperty(proto, "onmessage", {
    ...onmessage,
    set(this: Worker, fn: ((event: MessageEvent) => void) | null) {
      onmessage.set!.call(
        this,
        fn === null ? null : (event: MessageEvent) => {
          fn.call(this, event);
          if (event.data?.type === "ready" && ++readies === at) {
            listeners.get("SIGTERM")!();
          }
        },
      );
    },
  });
  try {
    const started = serveWorkers(MODULE, { workers, grace: 0 });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      started.then((supervisor) => supervisor, (error) => error),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve("still starting"), BOUND_MS);
      }),
    ]);
    clearTimeout(timer);
    if (typeof outcome === "object" && outcome !== null && "close" in outcome) {
      const supervisor = outcome as WorkerSupervisor;
      await supervisor.close({ grace: 0 });
      await Promise.race([
        supervisor.closed,
        new Promise((resolve) => {
          timer = setTimeout(resolve, BOUND_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    return outcome;
  } finally {
    Deno.addSignalListener = addSignalListener;
    Object.defineProperty(proto, "onmessage", onmessage);
  }
}

Deno.test("serveWorkers() stops, and rejects with Interrupted, when a signal comes in the turn a worker becomes ready: it starts no further worker and leaves no timer behind", async () => {
  // The first of two ready: the second was started after the signal's
  // close(), and never told to shut down.
  const first = await signalAtReady(2, 1);
  assertInstanceOf(first, Deno.errors.Interrupted);
  assertStringIncludes(
    (first as Error).message,
    "SIGTERM came while they started",
  );
  // The last one ready: serveWorkers() resolved with a closing supervisor
  // whose ping interval, set after the close, kept the process alive.
  const last = await signalAtReady(1, 1);
  assertInstanceOf(last, Deno.errors.Interrupted);
  assertStringIncludes(
    (last as Error).message,
    "SIGTERM came while they started",
  );
});

Deno.test("serveWorkers() rejects when a worker's serve() fails, naming the worker and the cause", async () => {
  await assertRejects(
    () => serveWorkers(FAILING, { workers: 2, signals: false }),
    Error,
    "Cannot serve from workers: worker 0 failed to start: no server today",
  );
  await assertRejects(
    () => serveWorkers(NO_SERVE, { workers: 1, signals: false }),
    Error,
    `worker 0 failed to start: Cannot serve from ${NO_SERVE.href}: the module must export a function serve(loop, info), received no serve export`,
  );
});

Deno.test("serveWorkers() rejects when a worker cannot share the port, saying that every worker listens with reusePort", async () => {
  const error = await assertRejects(
    () =>
      serveWorkers(
        new URL("../fixtures/serve_workers_no_reuse.ts", import.meta.url),
        { workers: 2, signals: false },
      ),
    Error,
    "Cannot serve from workers: worker 1 failed to start: Cannot listen on 127.0.0.1:",
  );
  assertStringIncludes(
    error.message,
    "; every worker must listen on the port with reusePort: true",
  );
  assertEquals((error.cause as Error).name, "AddrInUse");
});

Deno.test("serveWorkers() rejects when a worker does not start serving within startTimeout", async () => {
  await assertRejects(
    () =>
      serveWorkers(HANGING, {
        workers: 1,
        signals: false,
        startTimeout: 0.3,
      }),
    Error,
    "Cannot serve from workers: worker 0 failed to start: it did not start serving within 0.3 s",
  );
});

Deno.test("serveWorkers() checks its arguments", async () => {
  const cases: [unknown, unknown, ErrorConstructor, string][] = [
    [
      "./worker.ts",
      {},
      TypeError,
      'moduleUrl must be an absolute URL, such as new URL("./worker.ts", import.meta.url), received "./worker.ts"',
    ],
    [
      MODULE,
      { workers: 0 },
      RangeError,
      "workers must be a whole number from 1 to 1024, received 0",
    ],
    [MODULE, { workers: 1.5 }, RangeError, "received 1.5"],
    [MODULE, { workers: NaN }, RangeError, "received NaN"],
    [MODULE, { workers: 1025 }, RangeError, "received 1025"],
    [
      MODULE,
      { port: 70000 },
      RangeError,
      "port must be a whole number from 0 to 65535, received 70000",
    ],
    [
      MODULE,
      { grace: -1 },
      RangeError,
      "grace must be a number of seconds >= 0, received -1",
    ],
    [
      MODULE,
      { timeout: 0 },
      RangeError,
      "timeout and startTimeout must be > 0",
    ],
    [
      MODULE,
      { startTimeout: Infinity },
      RangeError,
      "startTimeout must be a finite number of seconds >= 0, received Infinity",
    ],
    [
      MODULE,
      { holdTimeout: Infinity },
      RangeError,
      "holdTimeout must be a finite number of seconds >= 0, received Infinity",
    ],
    [
      MODULE,
      { restartDelay: 2, maxRestartDelay: 1 },
      RangeError,
      "maxRestartDelay must be >= restartDelay",
    ],
    [
      MODULE,
      { maxCrashes: -1 },
      RangeError,
      "maxCrashes must be a whole number >= 0 or Infinity, received -1",
    ],
    [
      MODULE,
      { signals: "yes" },
      TypeError,
      'signals must be a boolean, received "yes"',
    ],
    [
      MODULE,
      { onCrash: 1 },
      TypeError,
      "onCrash must be a function, received 1",
    ],
    [MODULE, { worker: 2 }, RangeError, 'unknown option, received "worker"'],
  ];
  for (const [url, options, type, message] of cases) {
    const error = await assertRejects(
      // deno-lint-ignore no-explicit-any
      () => serveWorkers(url as any, options as any),
    );
    assertInstanceOf(error, type);
    assertStringIncludes(
      (error as Error).message,
      "Cannot serve from workers: ",
    );
    assertStringIncludes((error as Error).message, message);
  }
});
