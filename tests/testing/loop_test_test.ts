import {
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { Protocol } from "../../protocols/protocol.ts";
import { sleep } from "../../tasks/sleep.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import { TimeoutError } from "../../futures/errors.ts";
import type { EventLoop } from "../../loop/event_loop.ts";
import type { Transport } from "../../transports/transport.ts";
import { loopTest, runLoopTest } from "../../testing/loop_test.ts";

loopTest("loopTest runs its body on virtual time", async (loop) => {
  await assertRejects(() => waitFor(sleep(60), 30), TimeoutError);
  assertEquals(loop.time(), 30);
});

loopTest("loopTest runs a generator body", function* (loop) {
  yield* sleep(5);
  assertEquals(loop.time(), 5);
});

loopTest("loopTest runs on a real loop with virtual: false", async (loop) => {
  class Echo extends Protocol {
    #t?: Transport;
    override connectionMade(t: Transport) {
      this.#t = t;
    }
    override dataReceived(d: Uint8Array) {
      this.#t!.write(d);
      this.#t!.close();
    }
  }
  const server = await loop.createServer(() => new Echo(), "127.0.0.1", 0);
  const { port } = server.addresses()[0] as Deno.NetAddr;
  const done = loop.createFuture<void>();
  class Client extends Protocol {
    override connectionLost() {
      done.setResult();
    }
  }
  const [t] = await loop.createConnection(
    () => new Client(),
    "127.0.0.1",
    port,
  );
  t.write(new Uint8Array([1]));
  await done;
  server.close();
  await server.waitClosed();
}, { virtual: false });

Deno.test("runLoopTest() fails on a task still pending, and cancels it", async () => {
  let cancelled = false;
  const e = await assertRejects(() =>
    runLoopTest((loop) => {
      loop.createTask(async () => {
        try {
          await sleep(1000);
        } finally {
          cancelled = true;
        }
      }, { name: "forgotten" });
    })
  );
  assertStringIncludes((e as Error).message, "task still pending: forgotten");
  assertEquals(cancelled, true);
});

Deno.test("runLoopTest() fails on a transport left open and a server still listening, on real sockets and in memory", async () => {
  const leaveOpen = async (loop: EventLoop) => {
    const server = await loop.createServer(
      () => new Protocol(),
      "127.0.0.1",
      0,
    );
    const { port } = server.addresses()[0] as Deno.NetAddr;
    await loop.createConnection(() => new Protocol(), "127.0.0.1", port);
    await sleep(0.01);
  };
  for (
    const check of [
      () => runLoopTest(leaveOpen, { virtual: false }),
      // A VirtualTimeLoop's network is watched as a real one is.
      () => runLoopTest(leaveOpen),
    ]
  ) {
    const e = await assertRejects(check);
    assertStringIncludes((e as Error).message, "transport left open");
    assertStringIncludes((e as Error).message, "server still listening");
  }
});

Deno.test("runLoopTest() fails on errors reported to the loop", async () => {
  const e = await assertRejects(() =>
    runLoopTest((loop) => {
      loop.callSoon(() => {
        throw new Error("lost in a callback");
      });
    })
  );
  assertStringIncludes((e as Error).message, "lost in a callback");
});

Deno.test("runLoopTest() passes a clean body and rethrows the body's own error", async () => {
  await runLoopTest(async () => await sleep(1));
  await assertRejects(
    () =>
      runLoopTest(() => {
        throw new RangeError("body failed");
      }),
    RangeError,
    "body failed",
  );
});

Deno.test("loopTest() and runLoopTest() refuse a virtual option that is not a boolean", async () => {
  // A string "false" would otherwise run the body on virtual time.
  await assertRejects(
    () => runLoopTest(() => {}, { virtual: "false" as never }),
    TypeError,
    'options must be { virtual?: boolean }, received virtual="false"',
  );
  assertThrows(
    () => loopTest("never registered", () => {}, { virtual: 0 as never }),
    TypeError,
    "Cannot register a loop test",
  );
});

Deno.test("runLoopTest(): a protocol factory that returns no protocol gets the transport's TypeError, on real sockets and in memory", async () => {
  for (const virtual of [false, true]) {
    await runLoopTest(async (loop: EventLoop) => {
      const error = await loop.createDatagramEndpoint(() => 7 as never, {
        localAddr: { hostname: "127.0.0.1", port: 0 },
      }).then(() => null, (e) => e);
      assertEquals(
        `${error}`,
        "TypeError: Cannot call createDatagramEndpoint(): protocolFactory must return a protocol (an object with connectionMade()), received 7",
        `virtual: ${virtual}`,
      );
    }, { virtual } as { virtual: false });
  }
});
