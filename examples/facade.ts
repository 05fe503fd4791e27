/**
 * A line-echo server and its client written only with the completion facade (`AsyncEngine`): calls return at once, callbacks report.
 *
 * deno run --allow-net=127.0.0.1 examples/facade.ts
 *
 * @module
 */

import {
  AsyncEngine,
  type Callback,
  type Connection,
  type Listener,
} from "../mod.ts";

const t0 = performance.now();
function say(who: string, what: string): void {
  const ms = (performance.now() - t0).toFixed(0).padStart(4);
  console.log(`${ms} ms  ${who.padEnd(7)} ${what}`);
}

/** A callback object that reports failures and passes success on. */
function on<T>(
  who: string,
  success: (value: T) => void,
  timeout?: number,
): Callback<T> {
  return {
    success,
    failure: (error) => say(who, `failed: ${error}`),
    timeout,
  };
}

const engine = new AsyncEngine();

// ---- The server: answers each line in upper case, except "shh" lines ----

function serve(listener: Listener): void {
  engine.accept(
    listener,
    on("server", (conn) => {
      say("server", "accepted a client");
      // One client is enough for this example: stop listening.
      listener.close();
      echo(conn);
    }),
  );
}

function echo(conn: Connection): void {
  engine.readUntil(conn, "\n", {
    success(data) {
      const line = new TextDecoder().decode(data).trimEnd();
      say("server", `got ${JSON.stringify(line)}`);
      if (line === "shh") {
        echo(conn);
        return;
      }
      engine.writeLine(
        conn,
        line.toUpperCase(),
        on("server", () => echo(conn)),
      );
    },
    failure(error) {
      // IncompleteReadError: the client closed the connection.
      say("server", `client left (${(error as Error).name}); closing`);
      conn.close();
    },
  });
}

// ---- The client: a few exchanges, one timeout, one cancel ----

function client(port: number): void {
  let conn: Connection;
  engine.connectThenWriteLine("127.0.0.1", port, "hello", [
    on("client", (c) => {
      conn = c;
      say("client", "connected");
    }),
    on("client", () => {
      say("client", `sent "hello"`);
      engine.expectLine(
        conn,
        "HELLO",
        on("client", (line) => {
          say("client", `got the expected ${JSON.stringify(line)}`);
          quiet(conn);
        }, 5),
      );
    }),
  ]);
}

function quiet(conn: Connection): void {
  // The server never answers "shh": the 0.2 s timeout reports it.
  engine.writeThenExpectLine(conn, "shh\n", "SHH", [
    on("client", () => say("client", `sent "shh"`)),
    {
      timeout: 0.2,
      success: (line) => say("client", `unexpected answer ${line}`),
      failure(error) {
        say("client", `no answer: ${(error as Error).name}`);
        cancelled(conn);
      },
    },
  ]);
}

function cancelled(conn: Connection): void {
  // A read that nobody waits for any more: cancel() means no callback.
  const cb = on<Uint8Array>("client", () => say("client", "never printed"));
  engine.readChunk(conn, 1000, cb);
  say("client", `cancel() of a pending read returned ${cb.cancel!()}`);
  engine.writeThenExpectLine(conn, "tulip\n", "TULIP", [
    on("client", () => say("client", `sent "tulip"`)),
    on("client", (line) => {
      say("client", `got ${JSON.stringify(line)}; closing`);
      conn.close();
    }),
  ]);
}

// ---- Start, and run until nothing is pending ----

engine.listen(
  "127.0.0.1",
  0,
  on("server", (listener) => {
    const { port } = listener.addresses()[0] as Deno.NetAddr;
    say("server", `listening on 127.0.0.1:${port}`);
    serve(listener);
    client(port);
  }),
);
say("main", `every call returned at once; ${engine.pending()} pending`);
await engine.run();
say("main", "nothing pending: run() returned");
await engine.close();
