/**
 * An HTTP server ready for `deno compile`: port from `--port` or `PORT` (default 8000), one log line per request, and a graceful stop on SIGINT/SIGTERM (stop listening, let requests in flight finish, then close the connections; a second signal cuts them off); `--once` serves one scripted request and exits, for CI.
 *
 * deno run --allow-net=0.0.0.0,127.0.0.1 --allow-env=PORT examples/compile_server.ts --once --port 0
 *
 * To serve until stopped: `deno run --allow-net=0.0.0.0 --allow-env=PORT
 * examples/compile_server.ts --port 8000`. To build a single executable
 * (`deno compile` downloads a Deno runtime for the target the first time):
 *
 *     deno compile --allow-net=0.0.0.0 --allow-env=PORT -o tulip-server examples/compile_server.ts
 *     PORT=8080 ./tulip-server
 *
 * `deno check examples/compile_server.ts` type-checks it without building.
 *
 * @module
 */

import {
  type EventLoop,
  getEventLoop,
  HttpClientProtocol,
  type HttpServeInfo,
  HttpServerProtocol,
  run,
  type Server,
  sleep,
  waitFor,
} from "../mod.ts";

const HOST = "0.0.0.0";
/** Seconds requests in flight get to finish once a stop is asked for. */
const GRACE = 10;

function log(message: string): void {
  console.log(`${new Date().toISOString()} ${message}`);
}

/** `--port N`, else `$PORT`, else 8000. */
function portSetting(): number {
  const i = Deno.args.indexOf("--port");
  let text = i >= 0 ? Deno.args[i + 1] : undefined;
  if (text === undefined) {
    try {
      text = Deno.env.get("PORT");
    } catch {
      // No --allow-env=PORT: keep the default.
    }
  }
  const port = Number(text ?? 8000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot start the server: the port must be 0 to 65535, received ${text}`,
    );
  }
  return port;
}

/** Answers requests and counts those still running. */
class App {
  inFlight = 0;
  stopping = false;
  #idle: (() => void) | null = null;

  handle = async (request: Request, info: HttpServeInfo): Promise<Response> => {
    const started = performance.now();
    this.inFlight++;
    info.completed.then(() => {
      if (--this.inFlight === 0) this.#idle?.();
    });
    const url = new URL(request.url);
    let response: Response;
    if (url.pathname === "/") {
      response = new Response("Hello from a compiled tulip server\n");
    } else if (url.pathname === "/health") {
      response = Response.json({ ok: true, stopping: this.stopping });
    } else if (url.pathname === "/slow") {
      await sleep(1);
      response = new Response("slow but done\n");
    } else {
      response = new Response("Not Found\n", { status: 404 });
    }
    // Once stopping, ask clients not to reuse the connection.
    if (this.stopping) response.headers.set("connection", "close");
    const peer = info.remoteAddr as Deno.NetAddr | undefined;
    log(
      `${
        peer?.hostname ?? "?"
      } ${request.method} ${url.pathname} ${response.status} ${
        (performance.now() - started).toFixed(1)
      } ms`,
    );
    return response;
  };

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#idle = resolve;
    });
  }
}

/** Stops listening, waits for requests in flight, then closes connections. */
async function shutDown(server: Server, app: App) {
  app.stopping = true;
  server.close();
  log(`stopped listening; ${app.inFlight} request(s) in flight`);
  try {
    await waitFor(app.idle(), GRACE);
  } catch {
    log(`requests still running after ${GRACE} s; cutting them off`);
  }
  server.closeClients(); // Idle keep-alive connections, gracefully.
  try {
    await waitFor(server.waitClosed(), 2);
  } catch {
    server.abortClients();
    await server.waitClosed();
  }
  log("all connections closed");
}

/** The scripted request of `--once`. */
async function once(loop: EventLoop, port: number): Promise<void> {
  const [, client] = await loop.createConnection(
    () => new HttpClientProtocol(),
    "127.0.0.1",
    port,
  );
  const response = await client.request(
    new Request(`http://127.0.0.1:${port}/`),
  );
  log(
    `--once: got ${response.status} ${JSON.stringify(await response.text())}`,
  );
  client.close();
  await client.waitClosed();
}

await run(async () => {
  const loop = getEventLoop();
  const app = new App();
  const server = await loop.createServer(
    () => new HttpServerProtocol(app.handle),
    HOST,
    portSetting(),
  );
  const { port } = server.addresses()[0] as Deno.NetAddr;
  log(`listening on http://${HOST}:${port}/ (pid ${Deno.pid})`);

  const stop = loop.createFuture<string>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    loop.addSignalHandler(signal, () => {
      if (!stop.done()) stop.setResult(signal);
    });
  }
  if (Deno.args.includes("--once")) {
    once(loop, port).then(
      () => stop.done() || stop.setResult("--once: one request served"),
      (e) => stop.done() || stop.setException(e),
    );
  }
  try {
    log(`stopping: ${await stop}`);
  } finally {
    // A second signal cuts off what is still running.
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      loop.addSignalHandler(signal, () => {
        log(`${signal} again: cutting off the connections`);
        server.abortClients();
      });
    }
    await shutDown(server, app);
    loop.removeSignalHandler("SIGINT");
    loop.removeSignalHandler("SIGTERM");
  }
});
