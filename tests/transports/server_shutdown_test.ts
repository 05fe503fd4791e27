import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { ServerShutdown } from "../../transports/server_shutdown.ts";
import { BaseProtocol } from "../../protocols/protocol.ts";
import { BaseEventLoop } from "../../loop/base_event_loop.ts";
import type { ExceptionContext, Server } from "../../loop/event_loop.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import { TimeoutError } from "../../futures/errors.ts";
import { stillAlive } from "../_gc.ts";

/** A connection that logs what is done to it and leaves when aborted. */
function connection(
  log: string[],
  name: string,
  shutdown: () => ServerShutdown<ReturnType<typeof connection>>,
  protocol: BaseProtocol | null = null,
) {
  const conn = {
    close: () => log.push(`${name} close`),
    abort: () => {
      log.push(`${name} abort`);
      shutdown().delete(conn);
    },
    getProtocol: () => protocol,
  };
  return conn;
}

Deno.test("ServerShutdown refuses a bad grace before closing anything", () => {
  const loop = new BaseEventLoop();
  let closed = false;
  const shutdown = new ServerShutdown(loop, {} as Server, () => false);
  for (const grace of [-1, NaN, "1" as unknown as number]) {
    assertThrows(
      () => shutdown.shutdown({ grace }, () => closed = true),
      RangeError,
      "Cannot shut the server down: grace must be a number of seconds >= 0, received",
    );
  }
  assertEquals(closed, false);
  loop.close();
});

Deno.test("ServerShutdown asks each connection once, then aborts after the grace; a shorter grace brings it forward", async () => {
  const loop = new BaseEventLoop();
  const log: string[] = [];
  const handled: ExceptionContext[] = [];
  loop.setExceptionHandler((_loop, context) => handled.push(context));
  class Finishing extends BaseProtocol {
    serverClosing() {
      log.push("b asked");
    }
  }
  class Failing extends BaseProtocol {
    serverClosing() {
      throw new Error("boom");
    }
  }
  let closed = false;
  const server = {} as Server;
  const shutdown: ServerShutdown<ReturnType<typeof connection>> =
    new ServerShutdown(loop, server, () => !closed);
  shutdown.add(connection(log, "a", () => shutdown));
  shutdown.add(connection(log, "b", () => shutdown, new Finishing()));
  shutdown.add(connection(log, "c", () => shutdown, new Failing()));
  const first = shutdown.shutdown({ grace: 60 }, () => closed = true);
  assertEquals(shutdown.shuttingDown, true);
  assertEquals(log, ["a close", "b asked", "c close"]);
  assertEquals(handled.length, 1);
  assertEquals(handled[0].message, "Error in protocol.serverClosing()");
  assertEquals(handled[0].server, server);
  // Asked once only; the deadline moves from 60 s to 0.01 s.
  const second = shutdown.shutdown({ grace: 0.01 }, () => {});
  assertEquals(log.length, 3);
  const started = loop.time();
  await loop.runUntilComplete(second);
  assertEquals(first.done(), true);
  assertEquals(loop.time() - started < 30, true);
  assertEquals(log.slice(3), ["a abort", "b abort", "c abort"]);
  assertEquals(shutdown.size, 0);
  loop.close();
});

Deno.test("ServerShutdown.waitClosed resolves once the server is idle", () => {
  const loop = new BaseEventLoop();
  const log: string[] = [];
  let busy = true;
  const shutdown: ServerShutdown<ReturnType<typeof connection>> =
    new ServerShutdown(loop, {} as Server, () => busy);
  const conn = connection(log, "a", () => shutdown);
  shutdown.add(conn);
  const waiting = shutdown.waitClosed();
  busy = false;
  shutdown.settle();
  assertEquals(waiting.done(), false); // a connection is left
  shutdown.delete(conn);
  assertEquals(waiting.done(), true);
  assertEquals(shutdown.waitClosed().done(), true);
  loop.close();
});

Deno.test("ServerShutdown lets go of waitClosed() futures cancelled while the server serves (a health check's waitFor(server.waitClosed(), t))", async () => {
  const loop = new VirtualTimeLoop();
  const shutdown = new ServerShutdown(loop, {} as Server, () => true);
  const kept = shutdown.waitClosed();
  const refs: WeakRef<object>[] = [];
  await loop.runUntilComplete(loop.createTask(async () => {
    for (let i = 0; i < 1000; i++) {
      const waiter = shutdown.waitClosed();
      refs.push(new WeakRef(waiter));
      await assertRejects(() => waitFor(waiter, 60), TimeoutError);
    }
  }));
  assertEquals(await stillAlive(refs), 0);
  assertEquals(kept.done(), false);
  loop.close();
});
