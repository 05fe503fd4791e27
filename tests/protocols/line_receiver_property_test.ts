// Properties of LineReceiver on random input cut at random points: it
// never throws, never holds more than maxLength + 1 bytes, and gives the
// lines a simple model gives, however the input is cut.

import { assert, assertEquals } from "@std/assert";
import fc from "fast-check";
import { LineReceiver } from "../../protocols/line_receiver.ts";
import {
  bytesFrom,
  cut,
  cutPoints,
  RecordingTransport,
  settings,
  show,
} from "../_property.ts";

/** The lines of `input`, or "overrun" for each line over `maxLength`. */
function model(input: Uint8Array, maxLength: number): string[] {
  const text = String.fromCharCode(...input);
  const parts = text.split("\r\n");
  const rest = parts.pop()!;
  const events = parts.map((line) => line.length > maxLength ? "!" : line);
  // The unfinished line is reported once it cannot end within the limit.
  if (rest.length >= maxLength + 2) events.push("!");
  return events;
}

function receive(pieces: Uint8Array[], maxLength: number): string[] {
  const events: string[] = [];
  const protocol = new LineReceiver(
    (line) => events.push(String.fromCharCode(...line)),
    { maxLength, onLengthExceeded: () => events.push("!") },
  );
  protocol.connectionMade(new RecordingTransport().transport);
  for (const piece of pieces) {
    protocol.dataReceived(piece);
    assert(protocol.bufferedBytes <= maxLength + 1);
  }
  protocol.connectionLost(undefined);
  return events;
}

Deno.test("LineReceiver frames any input like the model, however it is cut", () => {
  fc.assert(
    fc.property(
      bytesFrom([120, 13, 10, 13, 10, 0, 255], 0, 120),
      fc.nat({ max: 10 }),
      cutPoints,
      (input, maxLength, points) => {
        const expected = model(input, maxLength);
        assertEquals(receive([input], maxLength), expected, show(input));
        assertEquals(
          receive(cut(input, points), maxLength),
          expected,
          `cut at ${points}: ${show(input)}`,
        );
      },
    ),
    settings(300),
  );
});

Deno.test("LineReceiver gives back the lines written with writeLine()", () => {
  fc.assert(
    fc.property(
      fc.array(fc.string({ maxLength: 20, unit: "grapheme-ascii" }), {
        maxLength: 20,
      }).map((lines) => lines.map((l) => l.replaceAll("\r\n", ""))),
      cutPoints,
      (lines, points) => {
        const writer = new LineReceiver(() => {});
        const transport = new RecordingTransport();
        writer.connectionMade(transport.transport);
        for (const line of lines) writer.writeLine(line);
        const sent = new Uint8Array(
          transport.written.reduce((n, d) => n + d.length, 0),
        );
        let at = 0;
        for (const d of transport.written) {
          sent.set(d, at);
          at += d.length;
        }
        // Lines of ASCII: one byte per character.
        assertEquals(receive(cut(sent, points), 64), lines);
      },
    ),
    settings(100),
  );
});
