// Properties of Int32StringReceiver on random frames (good, over the
// limit, cut short, garbage) cut at random points: it never throws, never
// holds more than maxLength bytes, and gives the messages a simple model
// gives, however the input is cut.

import { assert, assertEquals } from "@std/assert";
import fc from "fast-check";
import { Int32StringReceiver } from "../../protocols/int32_string_receiver.ts";
import { cut, cutPoints, RecordingTransport, settings } from "../_property.ts";

type Event = string | { overrun: number };

function prefix(size: number): Uint8Array {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, size);
  return p;
}

/** A stream of frames: messages, lengths over the limit, raw bytes. */
const frames = fc.array(
  fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: 24 }) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }).map((n) => ({ n })),
    },
    {
      weight: 1,
      arbitrary: fc.uint8Array({ maxLength: 6 }).map((raw) => ({ raw })),
    },
  ),
  { maxLength: 12 },
).map((parts) => {
  const out: number[] = [];
  for (const part of parts) {
    if (part instanceof Uint8Array) out.push(...prefix(part.length), ...part);
    else if ("n" in part) out.push(...prefix(part.n));
    else out.push(...part.raw);
  }
  return Uint8Array.from(out);
});

function model(input: Uint8Array, maxLength: number, stop: boolean): Event[] {
  const events: Event[] = [];
  const view = new DataView(input.buffer, input.byteOffset, input.length);
  let pos = 0;
  while (input.length - pos >= 4) {
    const size = view.getUint32(pos);
    pos += 4;
    if (size > maxLength) {
      events.push({ overrun: size });
      if (stop) break;
      pos += size;
    } else if (input.length - pos >= size) {
      events.push(String.fromCharCode(...input.subarray(pos, pos + size)));
      pos += size;
    } else break;
  }
  return events;
}

function receive(
  pieces: Uint8Array[],
  maxLength: number,
  stop: boolean,
): Event[] {
  const events: Event[] = [];
  const protocol = new Int32StringReceiver(
    (data) => events.push(String.fromCharCode(...data)),
    {
      maxLength,
      onLengthExceeded: stop
        ? undefined
        : (error) => events.push({ overrun: error.consumed }),
    },
  );
  if (stop) {
    const original = protocol.lengthLimitExceeded.bind(protocol);
    protocol.lengthLimitExceeded = (error) => {
      events.push({ overrun: error.consumed });
      original(error);
    };
  }
  protocol.connectionMade(new RecordingTransport().transport);
  for (const piece of pieces) {
    protocol.dataReceived(piece);
    assert(
      protocol.bufferedBytes <= Math.max(maxLength, 4),
      `holds ${protocol.bufferedBytes} bytes`,
    );
  }
  protocol.connectionLost(undefined);
  return events;
}

Deno.test("Int32StringReceiver frames any input like the model, however it is cut", () => {
  fc.assert(
    fc.property(
      frames,
      fc.nat({ max: 30 }),
      fc.boolean(),
      cutPoints,
      (input, maxLength, stop, points) => {
        const expected = model(input, maxLength, stop);
        assertEquals(receive([input], maxLength, stop), expected);
        assertEquals(
          receive(cut(input, points), maxLength, stop),
          expected,
          `cut at ${points}`,
        );
        assertEquals(
          receive(Array.from(input, (b) => Uint8Array.of(b)), maxLength, stop),
          expected,
          "byte by byte",
        );
      },
    ),
    settings(300),
  );
});
