// HttpClientProtocol against a raw server on 127.0.0.1 that writes what
// each test tells it: slow readers, credentials in URLs, statuses out of
// range, and broken or hostile responses.

import { assert, assertEquals, assertRejects } from "@std/assert";
import { TimeoutError } from "../../futures/errors.ts";
import {
  HttpClientProtocol,
  type HttpClientProtocolOptions,
} from "../../http/http_client_protocol.ts";
import type { EventLoop } from "../../loop/event_loop.ts";
import { newEventLoop } from "../../loop/policy.ts";
import { sleep } from "../../tasks/sleep.ts";
import { waitFor } from "../../tasks/wait_for.ts";
import { bytes, text } from "./_http_helpers.ts";

/** Writes all of `data` to `conn`. */
async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let at = 0;
  while (at < data.length) at += await conn.write(data.subarray(at));
}

/** Reads from `conn` until `end` is seen (or the peer closes). */
async function readUntil(conn: Deno.Conn, end = "\r\n\r\n"): Promise<string> {
  const buffer = new Uint8Array(4096);
  let got = "";
  while (!got.includes(end)) {
    const n = await conn.read(buffer);
    if (n === null) break;
    got += text(buffer.subarray(0, n));
  }
  return got;
}

/**
 * A client connected to a raw server on 127.0.0.1 that runs `serve` on its
 * one connection; `test` runs with both, then everything is closed. The
 * server's errors once the client is gone (a broken pipe) are ignored.
 */
async function withServer(
  serve: (conn: Deno.Conn) => Promise<void>,
  test: (client: HttpClientProtocol, loop: EventLoop) => Promise<void>,
  options: HttpClientProtocolOptions = {},
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    try {
      await serve(conn);
      // Waits for the client to close.
      while ((await conn.read(new Uint8Array(4096))) !== null);
    } catch {
      // The client closed or aborted first.
    } finally {
      conn.close();
    }
  })();
  const loop = newEventLoop();
  try {
    const [, client] = await loop.runUntilComplete(
      loop.createConnection(
        () => new HttpClientProtocol(options),
        "127.0.0.1",
        (listener.addr as Deno.NetAddr).port,
      ),
    );
    try {
      await test(client, loop);
    } finally {
      client.close();
      await loop.runUntilComplete(waitFor(client.waitClosed(), 5));
    }
  } finally {
    loop.close();
    listener.close();
    await served;
  }
}

/** A response head with a `Content-Length` of `size`, and its body. */
function sized(size: number, fill = 120): Uint8Array {
  const head = bytes(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`);
  const all = new Uint8Array(head.length + size).fill(fill);
  all.set(head);
  return all;
}

// ---- A slow reader is no silent server ----

Deno.test("HttpClientProtocol over TCP: a reader that waits longer than bodyTimeout still gets the whole body", async () => {
  const size = 4 * 1024 * 1024;
  await withServer(
    async (conn) => {
      await readUntil(conn);
      await writeAll(conn, sized(size));
    },
    async (client, loop) => {
      const response = await loop.runUntilComplete(
        client.request(new Request("http://h/")),
      );
      await loop.runUntilComplete(sleep(1, undefined, { loop }));
      const body = await loop.runUntilComplete(response.arrayBuffer());
      assertEquals(body.byteLength, size);
    },
    { bodyTimeout: 0.3, headersTimeout: 0.3 },
  );
});

Deno.test("HttpClientProtocol over TCP: a pipelined response waiting behind an unread body is not timed out", async () => {
  // The first body ends while it waits unread over 64 KiB: reading stays
  // paused for it, so the second response cannot come, and its timers
  // must not run.
  const first = 64 * 1024 + 100;
  const second = 1024 * 1024;
  await withServer(
    async (conn) => {
      await readUntil(conn, "/b HTTP/1.1\r\nhost: h\r\n\r\n");
      // All but the end of the first body, read at once (under 64 KiB);
      // then its last bytes, which take it over 64 KiB and end it, in the
      // same read as (the start of) the second response.
      const a = sized(first, 97);
      const cut = a.length - 200;
      await writeAll(conn, a.subarray(0, cut));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const b = sized(second, 98);
      const rest = new Uint8Array(a.length - cut + b.length);
      rest.set(a.subarray(cut));
      rest.set(b, a.length - cut);
      await writeAll(conn, rest);
    },
    async (client, loop) => {
      const a = client.request(new Request("http://h/a"));
      const b = client.request(new Request("http://h/b"));
      const ra = await loop.runUntilComplete(a);
      await loop.runUntilComplete(sleep(1, undefined, { loop }));
      const bodyA = new Uint8Array(
        await loop.runUntilComplete(ra.arrayBuffer()),
      );
      assertEquals(bodyA.length, first);
      assert(bodyA.every((x) => x === 97));
      const rb = await loop.runUntilComplete(b);
      const bodyB = new Uint8Array(
        await loop.runUntilComplete(rb.arrayBuffer()),
      );
      assertEquals(bodyB.length, second);
      assert(bodyB.every((x) => x === 98));
    },
    { bodyTimeout: 0.3, headersTimeout: 0.3 },
  );
});

Deno.test("HttpClientProtocol over TCP: a server that stalls mid-body while the reader waits still times out", async () => {
  const stop = Promise.withResolvers<void>();
  await withServer(
    async (conn) => {
      await readUntil(conn);
      await writeAll(
        conn,
        bytes("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nabc"),
      );
      await stop.promise;
    },
    async (client, loop) => {
      const response = await loop.runUntilComplete(
        client.request(new Request("http://h/")),
      );
      try {
        await assertRejects(
          () => loop.runUntilComplete(response.arrayBuffer()),
          TimeoutError,
          "no body bytes came for bodyTimeout (0.2 s)",
        );
      } finally {
        stop.resolve();
      }
    },
    { bodyTimeout: 0.2 },
  );
});
