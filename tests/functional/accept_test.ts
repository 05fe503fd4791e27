// Real-socket tests of a server's accept loop against connections that
// fail before they are accepted and against a full descriptor table.

import { assert, assertEquals } from "@std/assert";
import {
  accepted,
  collectErrors,
  portOf,
  recordingServer,
  withLoop,
} from "./_stream_helpers.ts";
import { HAS_PYTHON } from "./_tools.ts";

const HOST = "127.0.0.1";

// python3 makes the resets (`SO_LINGER` 0).
const hasPython = HAS_PYTHON;
const NO_PYTHON = hasPython ? "" : " (skipped: python3 not found)";

/**
 * Opens `n` connections to `port` and resets each at once (`SO_LINGER`
 * on with a zero timeout makes `close()` send RST), from a python3 child.
 */
async function resetConnections(port: number, n: number): Promise<void> {
  const script = `
import socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
`;
  const out = await new Deno.Command("python3", {
    args: ["-c", script, String(port), String(n)],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert(out.success, new TextDecoder().decode(out.stderr));
}

/** Seconds of real time since `start` (from `performance.now()`). */
function since(start: number): number {
  return (performance.now() - start) / 1000;
}

Deno.test({
  name:
    `A server accepts a new client at once after connections reset before accept${NO_PYTHON}`,
  ignore: !hasPython,
  async fn() {
    await withLoop(async (loop) => {
      const errors = collectErrors(loop);
      const { server, protocols } = await recordingServer(loop, {
        startServing: false,
      });
      const port = portOf(server);
      // Ten connections reset while waiting in the listen queue, then a
      // good one behind them.
      await resetConnections(port, 10);
      const first = await Deno.connect({ hostname: HOST, port });
      let start = performance.now();
      server.startServing();
      await accepted(loop, protocols, 1);
      // A pause per failed accept would make this 10 s.
      let waited = since(start);
      assert(waited < 3, `The new client waited ${waited} s`);

      // A storm of resets while the server is accepting, then another
      // client.
      await resetConnections(port, 200);
      const second = await Deno.connect({ hostname: HOST, port });
      start = performance.now();
      const p = await accepted(loop, protocols, protocols.length + 1);
      waited = since(start);
      assert(waited < 3, `The new client waited ${waited} s`);

      // Failures the peers caused are counted, not reported.
      const failed = /failedAccepts=(\d+)/.exec(
        Object.prototype.toString.call(server),
      );
      assert(Number(failed?.[1]) >= 10, String(server));
      assertEquals(errors, []);
      first.close();
      second.close();
      await p.lost;
      server.close();
      server.closeClients();
      await server.waitClosed();
    });
  },
});

// ---- A full descriptor table, in a child process under ulimit -n ----

/** Splits a byte stream into lines as they arrive. */
async function* lines(stream: ReadableStream<Uint8Array>) {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let at;
    while ((at = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, at);
      rest = rest.slice(at + 1);
    }
  }
  if (rest !== "") yield rest;
}

/** Resolves once `check()` holds, polling; rejects after `seconds`. */
async function until(
  what: string,
  check: () => boolean,
  seconds = 20,
): Promise<void> {
  const start = performance.now();
  while (!check()) {
    if (since(start) > seconds) {
      throw new Error(`Gave up after ${seconds} s waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Reads the child's greeting, "ok\n". */
async function greeting(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(3);
  let n = 0;
  while (n < 3) {
    const got = await conn.read(buffer.subarray(n));
    if (got === null) throw new Error("The server closed a connection");
    n += got;
  }
  assertEquals(new TextDecoder().decode(buffer), "ok\n");
}

Deno.test("A server out of file descriptors survives and accepts again once clients close", async () => {
  const fixture = new URL("./_accept_server.ts", import.meta.url).pathname;
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'ulimit -n 64 && exec "$0" run --allow-net=127.0.0.1 "$1"',
      Deno.execPath(),
      fixture,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reports: string[] = [];
  const stderr: string[] = [];
  const stderrDone = (async () => {
    for await (const line of lines(child.stderr)) {
      if (line.startsWith("report ")) reports.push(line);
      else stderr.push(line);
    }
  })();
  const out = lines(child.stdout);
  const conns: Deno.Conn[] = [];
  const readers: Promise<void>[] = [];
  let closing = false;
  let greeted = 0;
  const done: boolean[] = [];
  try {
    const port = Number((await out.next()).value);
    assert(port > 0, `No port from the child: ${stderr.join("\n")}`);
    // More connections than the child has descriptors. Each waits for its
    // greeting; once told to, it closes as soon as it is greeted.
    const N = 100;
    for (let i = 0; i < N; i++) {
      const conn = await Deno.connect({ hostname: HOST, port });
      conns.push(conn);
      done.push(false);
      readers.push((async () => {
        await greeting(conn);
        greeted++;
        done[i] = true;
        if (closing) conn.close();
      })());
    }
    await until(
      "the child to run out of descriptors",
      () => reports.length > 0,
    );
    assert(greeted < N, "Every connection was accepted: no limit was hit");
    // Free the descriptors: the rest must be accepted now.
    closing = true;
    // Those greeted already have no read in flight.
    conns.forEach((conn, i) => done[i] && conn.close());
    await until("every connection to be greeted", () => greeted === N);
    await Promise.all(readers);
    // And a new client after the storm.
    const last = await Deno.connect({ hostname: HOST, port });
    await greeting(last);
    last.close();
  } finally {
    if (!closing) {
      for (const conn of conns) conn.close();
      await Promise.allSettled(readers);
    }
    await child.stdin.close();
  }
  const rest: string[] = [];
  for await (const line of out) rest.push(line);
  const status = await child.status;
  await stderrDone;
  assertEquals(status.code, 0, stderr.join("\n"));
  assertEquals(rest, ["closed 101"]);
  // Reported, not once per failed accept; those left out are counted in
  // one line when the server closes.
  const counted = reports.filter((r) => r.startsWith("report Server closed: "));
  const whole = reports.filter((r) => !counted.includes(r));
  assert(whole.length <= 2 && counted.length <= 1, reports.join("\n"));
  for (const report of whole) {
    assert(
      report.startsWith(
        "report Cannot accept a connection: out of file descriptors or memory, accepting again in ",
      ) && report.endsWith(" EMFILE"),
      report,
    );
  }
  for (const report of counted) {
    assert(/ \d+ accept failures not reported /.test(report), report);
  }
});
