// Properties of ChunkProtocol's framing, on random input cut at random
// points: it never throws, never holds more than maxLength + delimiter - 1
// bytes, and gives the same chunks as a simple model, however the input
// is cut.

import { assert, assertEquals } from "@std/assert";
import fc from "fast-check";
import { LimitOverrunError } from "../../futures/errors.ts";
import { ChunkProtocol } from "../../protocols/chunk_protocol.ts";
import {
  bytesFrom,
  cut,
  cutPoints,
  RecordingTransport,
  settings,
  show,
} from "../_property.ts";

type Event = string | "overrun";

/** What framing `input` must give: each chunk, or "overrun". */
function model(
  input: Uint8Array,
  delimiter: Uint8Array,
  maxLength: number,
  stopOnOverrun: boolean,
): Event[] {
  const events: Event[] = [];
  const text = String.fromCharCode(...input);
  const delim = String.fromCharCode(...delimiter);
  let pos = 0;
  for (;;) {
    const at = text.indexOf(delim, pos);
    if (at < 0) {
      // No delimiter: reported as soon as it cannot end a chunk in time.
      if (input.length - pos >= maxLength + delimiter.length) {
        events.push("overrun");
      }
      break;
    }
    if (at - pos > maxLength) {
      events.push("overrun");
      if (stopOnOverrun) break;
    } else events.push(text.slice(pos, at));
    pos = at + delimiter.length;
  }
  return events;
}

/** Feeds `pieces` to a fresh protocol, checking its buffer after each. */
function frame(
  pieces: Uint8Array[],
  delimiter: Uint8Array,
  maxLength: number,
  stopOnOverrun: boolean,
): Event[] {
  const events: Event[] = [];
  const protocol = new ChunkProtocol(
    delimiter,
    (chunk) => events.push(String.fromCharCode(...chunk)),
    {
      maxLength,
      onLengthExceeded: stopOnOverrun ? undefined : (error) => {
        assert(error instanceof LimitOverrunError);
        events.push("overrun");
      },
    },
  );
  if (stopOnOverrun) {
    const original = protocol.lengthExceeded.bind(protocol);
    protocol.lengthExceeded = (error) => {
      events.push("overrun");
      original(error);
    };
  }
  const transport = new RecordingTransport();
  protocol.connectionMade(transport.transport);
  for (const piece of pieces) {
    protocol.dataReceived(piece);
    assert(
      protocol.bufferedBytes <= maxLength + delimiter.length - 1,
      `holds ${protocol.bufferedBytes} bytes`,
    );
  }
  protocol.eofReceived();
  protocol.connectionLost(undefined);
  assertEquals(protocol.bufferedBytes, 0);
  return events;
}

const ALPHABET = [97, 98, 13, 10];

Deno.test("ChunkProtocol frames any input like the model, however it is cut", () => {
  fc.assert(
    fc.property(
      bytesFrom(ALPHABET, 1, 3).filter((d) => d.length > 0),
      bytesFrom(ALPHABET, 0, 200),
      fc.nat({ max: 12 }),
      fc.boolean(),
      cutPoints,
      (delimiter, input, maxLength, stop, points) => {
        const expected = model(input, delimiter, maxLength, stop);
        const whole = frame([input], delimiter, maxLength, stop);
        assertEquals(whole, expected, `whole ${show(input)}`);
        const split = frame(cut(input, points), delimiter, maxLength, stop);
        assertEquals(split, expected, `cut at ${points} ${show(input)}`);
        const bytewise = frame(
          Array.from(input, (b) => Uint8Array.of(b)),
          delimiter,
          maxLength,
          stop,
        );
        assertEquals(bytewise, expected, `byte by byte ${show(input)}`);
      },
    ),
    settings(300),
  );
});

Deno.test("ChunkProtocol stays within its limit on long input without a delimiter", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 160, size: "max" }),
      fc.integer({ min: 0, max: 128 }),
      cutPoints,
      (input, maxLength, points) => {
        // 0xff never occurs in the input: one endless chunk.
        const clean = input.map((b) => b === 0xff ? 0 : b);
        const delimiter = Uint8Array.of(0xff, 0xfe);
        const events = frame(cut(clean, points), delimiter, maxLength, false);
        assertEquals(
          events,
          clean.length >= maxLength + 2 ? ["overrun"] : [],
        );
      },
    ),
    settings(100),
  );
});
