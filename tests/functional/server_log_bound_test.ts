// A peer cannot make a server log much more than it sent, whatever the
// server's protocol: many connections over real TCP on 127.0.0.1, each
// causing one failure in a protocol that does not count its peer's bytes
// itself (a plain Protocol, a LineReceiver, a protocol factory).

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
  assertStringIncludes,
} from "@std/assert";
import type { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import { AsyncEngine } from "../../facade/async_engine.ts";
import { LineReceiver } from "../../protocols/line_receiver.ts";
import { PeerLog } from "../../protocols/peer_log.ts";
import { Protocol } from "../../protocols/protocol.ts";
import type { Transport } from "../../transports/transport.ts";
import { collectErrors, portOf, withLoop } from "./_stream_helpers.ts";

const HOST = "127.0.0.1";
const CONNECTIONS = 300;

/**
 * Opens `CONNECTIONS` connections, a few at a time, each sending `data`
 * and reading until the server closes it; returns the bytes sent.
 */
async function hostileClients(port: number, data: string): Promise<number> {
  const payload = new TextEncoder().encode(data);
  let sent = 0;
  const one = async () => {
    const conn = await Deno.connect({ hostname: HOST, port });
    try {
      if (payload.length > 0) {
        const n = await conn.write(payload);
        sent += n;
      }
      const buf = new Uint8Array(64);
      while ((await conn.read(buf)) !== null);
    } catch {
      // Reset by the server: as good as closed.
    } finally {
      conn.close();
    }
  };
  for (let i = 0; i < CONNECTIONS; i += 30) {
    await Promise.all(Array.from({ length: 30 }, one));
  }
  return sent;
}

function logged(errors: ExceptionContext[]): number {
  return errors.reduce((n, context) => n + PeerLog.sizeOf(context), 0);
}

/**
 * Serves `factory`'s protocols while the hostile clients send `data`;
 * checks that the log stayed within what they sent (and the loop's
 * reserve) and returns what it was given.
 */
async function serveThenAttack(
  loop: DenoEventLoop,
  factory: () => Protocol,
  data: string,
): Promise<ExceptionContext[]> {
  const errors = collectErrors(loop);
  const server = await loop.createServer(factory, HOST, 0);
  const sent = await hostileClients(portOf(server), data);
  server.close();
  await server.waitClosed();
  assertEquals(sent, data.length * CONNECTIONS);
  assert(errors.length > 0, "the first failure is reported");
  const size = logged(errors);
  assert(
    size <= sent + PeerLog.RESERVE,
    `${size} characters of log for ${sent} bytes sent`,
  );
  return errors;
}

Deno.test("a Protocol whose dataReceived() throws at every peer logs within what the peers sent", async () => {
  await withLoop(async (loop) => {
    class Throwing extends Protocol {
      override dataReceived(): void {
        throw new Error("cannot take this");
      }
    }
    const errors = await serveThenAttack(loop, () => new Throwing(), "x");
    assertStringIncludes(errors[0].message, "protocol.dataReceived()");
    assert((errors[0].exception as Error).stack !== undefined);
  });
});

Deno.test("a LineReceiver whose lineReceived() throws at every peer logs within what the peers sent", async () => {
  await withLoop(async (loop) => {
    const onLine = () => {
      throw new Error("bad line");
    };
    await serveThenAttack(loop, () => new LineReceiver(onLine), "?\r\n");
  });
});

Deno.test("a Protocol whose connectionMade() throws logs within the reserve for peers that send nothing", async () => {
  await withLoop(async (loop) => {
    class Throwing extends Protocol {
      override connectionMade(): void {
        throw new Error("cannot start");
      }
    }
    const errors = await serveThenAttack(loop, () => new Throwing(), "");
    assertStringIncludes(errors[0].message, "protocol.connectionMade()");
  });
});

Deno.test("the first connectionMade() failure of a protocol holding a 64 KiB buffer is logged whole, with its stack, though its peer sent nothing", async () => {
  await withLoop(async (loop) => {
    class Throwing extends Protocol {
      readonly buffer = new Uint8Array(64 * 1024);
      override connectionMade(): void {
        throw new Error("cannot start");
      }
    }
    const errors = collectErrors(loop);
    const server = await loop.createServer(() => new Throwing(), HOST, 0);
    const conn = await Deno.connect({ hostname: HOST, port: portOf(server) });
    try {
      while ((await conn.read(new Uint8Array(64))) !== null);
    } catch {
      // Reset by the server: as good as closed.
    } finally {
      conn.close();
    }
    server.close();
    await server.waitClosed();
    assertStringIncludes(errors[0].message, "protocol.connectionMade()");
    // Whole: the exception itself, not one line of it.
    const exception = errors[0].exception;
    assertInstanceOf(exception, Error, errors[0].message);
    assertStringIncludes((exception as Error).stack ?? "", "cannot start");
  });
});

Deno.test("a Protocol whose connectionLost() throws at every peer's end logs within what the peers sent", async () => {
  await withLoop(async (loop) => {
    class Throwing extends Protocol {
      #transport: Transport | null = null;
      override connectionMade(transport: Transport): void {
        this.#transport = transport;
      }
      override dataReceived(): void {
        this.#transport!.close();
      }
      override connectionLost(): void {
        throw new Error("cannot end");
      }
    }
    const errors = await serveThenAttack(loop, () => new Throwing(), "x");
    assertStringIncludes(errors[0].message, "protocol.connectionLost()");
  });
});

Deno.test("a server whose protocol factory throws at every connection reports it at most once in 10 s, counting the rest", async () => {
  await withLoop(async (loop) => {
    let calls = 0;
    const errors = collectErrors(loop);
    const server = await loop.createServer(
      () => {
        calls++;
        throw new Error("no protocol");
      },
      HOST,
      0,
    );
    await hostileClients(portOf(server), "");
    assertEquals(calls, CONNECTIONS);
    assertEquals(errors.length, 1);
    assertStringIncludes(errors[0].message, "protocol factory");
    server.close();
    await server.waitClosed();
    // The count of those left out is not lost: close() tells it.
    assertEquals(errors.length, 2);
    assertEquals(
      errors[1].message,
      `Server closed: ${
        CONNECTIONS - 1
      } factory failures not reported since the last report`,
    );
  });
});

Deno.test("an AsyncEngine server whose callback rethrows each peer's error reports it once, not once per connection", async () => {
  const engine = new AsyncEngine();
  const messages: string[] = [];
  engine.getLoop().setExceptionHandler((_loop, context) =>
    messages.push(context.message)
  );
  let clients: Promise<number> | null = null;
  engine.listen(HOST, 0, {
    failure: (error) => {
      throw error;
    },
    success(listener) {
      let accepted = 0;
      const acceptOne = () =>
        engine.accept(listener, {
          failure: () => {},
          success(conn) {
            if (++accepted < CONNECTIONS) acceptOne();
            else listener.close();
            engine.expectLine(conn, "HELLO", {
              success: () => conn.close(),
              failure: (error) => {
                conn.close();
                throw error;
              },
            });
          },
        });
      acceptOne();
      const { port } = listener.addresses()[0] as Deno.NetAddr;
      clients = hostileClients(port, "x\n");
    },
  });
  await engine.run();
  assert(await clients! > 0);
  await engine.close();
  assertEquals(messages.length, 2);
  assertEquals(
    messages[0],
    "Error in the failure callback of AsyncEngine.expectLine()",
  );
  // The count of those left out, at close.
  assertMatch(
    messages[1],
    /^AsyncEngine closed: \d+ errors of the failure callback of AsyncEngine\.expectLine\(\) not reported since the last report$/,
  );
});
