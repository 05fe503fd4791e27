import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import {
  connectionLine,
  connectionValue,
  DateLine,
  plainResponse,
  planResponse,
} from "../../http/_response_head.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";
import { Framing } from "../_helpers.ts";

const decoder = new TextDecoder();

Deno.test("connectionValue() closes, keeps an HTTP/1.0 client, or says nothing", () => {
  assertEquals(connectionValue(false, 1), "close");
  assertEquals(connectionValue(false, 0), "close");
  assertEquals(connectionValue(true, 0), "keep-alive");
  assertEquals(connectionValue(true, 1), null);
  for (const keepAlive of [true, false]) {
    for (const minor of [0, 1]) {
      const value = connectionValue(keepAlive, minor);
      assertEquals(
        connectionLine(keepAlive, minor),
        value === null ? "" : `connection: ${value}\r\n`,
      );
    }
  }
});

Deno.test("DateLine is one per loop and gives the date of now", () => {
  const a = new VirtualTimeLoop();
  const b = new VirtualTimeLoop();
  assertStrictEquals(DateLine.of(a), DateLine.of(a));
  assert(DateLine.of(a) !== DateLine.of(b));
  assert(DateLine.of(null) !== DateLine.of(null));
  const dates = DateLine.of(a);
  const before = Math.floor(Date.now() / 1000) * 1000;
  const value = dates.value();
  assertEquals(dates.line(), `date: ${value}\r\n`);
  const shown = Date.parse(value);
  assert(shown >= before && shown <= Date.now(), value);
  a.close();
  b.close();
});

Framing.test("plainResponse() gives the bytes planResponse() gives for the same answer", () => {
  for (const [status, text] of [[500, "Internal Server Error"], [408, "é"]]) {
    for (const keepAlive of [true, false]) {
      for (const versionMinor of [0, 1]) {
        const date = "Sun, 06 Dec 2026 12:00:00 GMT";
        const [head, body] = plainResponse(
          status as number,
          text as string,
          `date: ${date}\r\n`,
          connectionLine(keepAlive, versionMinor),
        );
        const plan = planResponse(
          new Response(`${text}\n`, {
            status: status as number,
            headers: { "content-type": "text/plain; charset=utf-8" },
          }),
          {
            request: { method: "GET", versionMinor },
            keepAlive: () => keepAlive,
            beforeStream: () => {},
            date,
          },
        );
        assertEquals(
          decoder.decode(head) + decoder.decode(body),
          decoder.decode(plan.head) + decoder.decode(plan.data!),
        );
      }
    }
  }
});
