// The transport conformance suite: one set of cases, run against every
// transport (TCP, TLS, Unix sockets, pipes, subprocess pipes,
// transportPair, the simulator's and VirtualTimeLoop's streams,
// HttpTransport) and a smaller set
// against every datagram transport. Same behaviour, same errors; a case a
// transport cannot support is skipped by its declared capabilities, with
// the reason in the test's name.

import {
  assert,
  assertEquals,
  assertFalse,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { InvalidStateError } from "../../futures/errors.ts";
import type { Producer, WriteTransport } from "../../transports/transport.ts";
import {
  type Capabilities,
  concat,
  DATAGRAM_FACTORIES,
  type DatagramFixture,
  type Fixture,
  Probe,
  settle,
  STREAM_FACTORIES,
  waitUntil,
} from "./_transport_conformance.ts";

const encoder = new TextEncoder();
const bytes = (s: string) => encoder.encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** `n` bytes of a pattern that shows reordering. */
function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed + (i >> 8)) & 0xff;
  return out;
}

interface Case {
  name: string;
  needs: (keyof Capabilities)[];
  body: (fx: Fixture) => Promise<void>;
}

const CASES: Case[] = [];
function conformance(
  name: string,
  needs: (keyof Capabilities)[],
  body: (fx: Fixture) => Promise<void>,
): void {
  CASES.push({ name, needs, body });
}

/** Waits until the peer holds `n` bytes. */
function peerHas(fx: Fixture, n: number): Promise<void> {
  return waitUntil(
    () => fx.peer.received().length >= n,
    `the peer to receive ${n} bytes (has ${fx.peer.received().length})`,
  );
}

/**
 * Writes 16 KiB blocks until the protocol is told to pause writing; the
 * peer must be paused first. Bounded at 64 MiB.
 */
async function fillUntilPaused(fx: Fixture): Promise<number> {
  let written = 0;
  for (let i = 0; i < 4096 && fx.probe.count("pause") === 0; i++) {
    fx.transport.write(pattern(16 * 1024, i));
    written += 16 * 1024;
    if (i % 16 === 15) await settle(0.001);
  }
  assertEquals(fx.probe.count("pause"), 1, "pauseWriting() was not called");
  return written;
}

// ---- Writing ----

conformance("write(a); write(b) reaches the peer as write(a + b)", [
  "write",
], async (fx) => {
  const a = pattern(3000, 1);
  const b = pattern(5000, 2);
  fx.transport.write(a);
  fx.transport.write(b);
  fx.transport.write(new Uint8Array(0));
  await peerHas(fx, 8000);
  await settle();
  assertEquals(fx.peer.received(), concat([a, b]));
});

conformance("write() of a non-Uint8Array throws the same TypeError", [
  "write",
], (fx) => {
  assertThrows(
    () => fx.transport.write("text" as never),
    TypeError,
    'Cannot call write(): data must be a Uint8Array, received "text"',
  );
  assertThrows(
    () => fx.transport.write(null as never),
    TypeError,
    "Cannot call write(): data must be a Uint8Array, received null",
  );
  assertThrows(
    () => fx.transport.write(new ArrayBuffer(2) as never),
    TypeError,
    "Cannot call write(): data must be a Uint8Array, received ArrayBuffer",
  );
  assertThrows(
    () => fx.transport.writelines([bytes("x"), "y" as never]),
    TypeError,
    'Cannot call writelines(): every item must be a Uint8Array, received "y"',
  );
  assertThrows(
    () => fx.transport.writelines(5 as never),
    TypeError,
    "Cannot call writelines(): list must be an iterable of Uint8Array, received 5",
  );
  assertThrows(
    () => fx.transport.writelines(bytes("ab") as never),
    TypeError,
    "Cannot call writelines(): list must be an iterable of Uint8Array, received Uint8Array(2) (call write() for a single buffer)",
  );
  assertEquals(fx.transport.getWriteBufferSize(), 0);
  assertFalse(fx.transport.isClosing());
  return Promise.resolve();
});

conformance("writelines() sends the items in order, as one write", [
  "write",
], async (fx) => {
  const items = [bytes("ab"), new Uint8Array(0), bytes("cde"), bytes("f")];
  fx.transport.writelines(items);
  fx.transport.writelines([]);
  fx.transport.writelines(new Set([bytes("gh")]));
  await peerHas(fx, 8);
  await settle();
  assertEquals(text(fx.peer.received()), "abcdefgh");
});

conformance(
  "write() after writeEof() throws InvalidStateError; the peer sees EOF",
  [
    "write",
    "writeEof",
  ],
  async (fx) => {
    assert(fx.transport.canWriteEof());
    fx.transport.write(bytes("last"));
    fx.transport.writeEof();
    fx.transport.writeEof(); // a no-op the second time
    assertThrows(
      () => fx.transport.write(bytes("x")),
      InvalidStateError,
      "Cannot call write(): writeEof() was called",
    );
    assertThrows(
      () => fx.transport.writelines([bytes("x")]),
      InvalidStateError,
      "Cannot call writelines(): writeEof() was called",
    );
    await peerHas(fx, 4);
    if (CAPS.get(fx)!.peerSeesEof) {
      await waitUntil(() => fx.peer.ended(), "the peer to see EOF");
    }
    await settle();
    assertEquals(text(fx.peer.received()), "last");
  },
);

conformance("canWriteEof() matches the declared capability", [], (fx) => {
  const writeEof = typeof fx.transport.canWriteEof === "function"
    ? fx.transport.canWriteEof()
    : false;
  assertEquals(writeEof, CAPS.get(fx)!.writeEof);
  return Promise.resolve();
});

conformance("write() after close() throws InvalidStateError", [
  "write",
], async (fx) => {
  fx.transport.close();
  assertThrows(
    () => fx.transport.write(bytes("x")),
    InvalidStateError,
    "Cannot call write(): transport is closing",
  );
  assertThrows(
    () => fx.transport.writelines([bytes("x")]),
    InvalidStateError,
    "Cannot call writelines(): transport is closing",
  );
  await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
});

// ---- Ending ----

conformance("close() flushes the buffer, then connectionLost(undefined) once", [
  "write",
], async (fx) => {
  const data = pattern(256 * 1024, 5);
  fx.transport.write(data);
  fx.transport.close();
  assert(fx.transport.isClosing());
  fx.transport.close(); // a no-op the second time
  await peerHas(fx, data.length);
  await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
  await settle();
  assertEquals(fx.peer.received(), data);
  assertEquals(fx.probe.count("lost"), 1);
  assertStrictEquals(fx.probe.lostWith, undefined);
  assertEquals(fx.transport.getWriteBufferSize(), 0);
  assert(fx.transport.isClosing());
  if (CAPS.get(fx)!.peerSeesEof) {
    await waitUntil(() => fx.peer.ended(), "the peer to see the end");
  }
});

conformance("close() calls connectionLost(undefined) once", [], async (fx) => {
  assertFalse(fx.transport.isClosing());
  fx.transport.close();
  assert(fx.transport.isClosing());
  await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
  fx.transport.close();
  fx.transport.abort?.();
  await settle();
  assertEquals(fx.probe.count("lost"), 1);
  assertStrictEquals(fx.probe.lostWith, undefined);
  assertEquals(fx.probe.events.at(-1), "lost");
});

conformance("abort() drops the buffer and calls connectionLost once", [
  "write",
  "backpressure",
], async (fx) => {
  fx.peer.pause!();
  fx.transport.setWriteBufferLimits(64 * 1024);
  const written = await fillUntilPaused(fx);
  assert(fx.transport.getWriteBufferSize() > 0);
  fx.transport.abort();
  assert(fx.transport.isClosing());
  fx.transport.abort();
  fx.transport.close();
  assertEquals(fx.transport.getWriteBufferSize(), 0);
  fx.peer.resume!();
  await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
  await settle(0.05);
  assertEquals(fx.probe.count("lost"), 1);
  assert(fx.peer.received().length < written, "the buffer was sent anyway");
});

conformance("abort() with nothing buffered calls connectionLost once", [
  "write",
], async (fx) => {
  fx.transport.abort();
  assert(fx.transport.isClosing());
  await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
  await settle();
  assertEquals(fx.probe.count("lost"), 1);
  assertThrows(
    () => fx.transport.write(bytes("x")),
    InvalidStateError,
    "Cannot call write(): transport is closing",
  );
});

// ---- Write buffer and flow control ----

conformance(
  "setWriteBufferLimits() checks its arguments with the same RangeError",
  [
    "write",
  ],
  (fx) => {
    const t = fx.transport;
    assertThrows(
      () => t.setWriteBufferLimits(4, 8),
      RangeError,
      "Cannot set write buffer limits: high must be >= low, received high=4 low=8",
    );
    assertThrows(
      () => t.setWriteBufferLimits(-1),
      RangeError,
      "Cannot set write buffer limits: high must be >= 0, received high=-1",
    );
    assertThrows(
      () => t.setWriteBufferLimits(undefined, -1),
      RangeError,
      "Cannot set write buffer limits: low must be >= 0, received low=-1",
    );
    assertThrows(
      () => t.setWriteBufferLimits("8" as never),
      TypeError,
      "Cannot set write buffer limits: high must be a number, received string",
    );
    t.setWriteBufferLimits(100, 10);
    assertEquals(t.getWriteBufferLimits(), [10, 100]);
    t.setWriteBufferLimits(100);
    assertEquals(t.getWriteBufferLimits(), [25, 100]);
    t.setWriteBufferLimits(undefined, 16);
    assertEquals(t.getWriteBufferLimits(), [16, 64]);
    t.setWriteBufferLimits();
    assertEquals(t.getWriteBufferLimits(), [16 * 1024, 64 * 1024]);
    assertEquals(t.getWriteBufferSize(), 0);
    return Promise.resolve();
  },
);

conformance(
  "pauseWriting() strictly above the high mark, resumeWriting() at or below the low one",
  [
    "write",
    "backpressure",
  ],
  async (fx) => {
    fx.peer.pause!();
    fx.transport.setWriteBufferLimits(32 * 1024, 8 * 1024);
    const written = await fillUntilPaused(fx);
    assert(fx.probe.pausedAt[0] > 32 * 1024, `paused at ${fx.probe.pausedAt}`);
    assert(fx.transport.getWriteBufferSize() > 32 * 1024);
    fx.peer.resume!();
    await waitUntil(() => fx.probe.count("resume") > 0, "resumeWriting");
    assert(
      fx.probe.resumedAt[0] <= 8 * 1024,
      `resumed at ${fx.probe.resumedAt}`,
    );
    await peerHas(fx, written);
    await waitUntil(
      () => fx.transport.getWriteBufferSize() === 0,
      "the buffer to drain",
    );
    assertEquals(fx.probe.events.filter((e) => e !== "made"), [
      "pause",
      "resume",
    ]);
  },
);

conformance(
  "close() while writing is paused: resumeWriting() once the buffer is sent, then connectionLost(undefined)",
  [
    "write",
    "backpressure",
  ],
  async (fx) => {
    fx.peer.pause!();
    const written = await fillUntilPaused(fx);
    fx.transport.close();
    fx.peer.resume!();
    await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
    await peerHas(fx, written);
    await settle();
    assertEquals(fx.probe.events.filter((e) => e !== "made"), [
      "pause",
      "resume",
      "lost",
    ]);
    assertStrictEquals(fx.probe.lostWith, undefined);
  },
);

conformance("Lowering the high mark under the buffered size pauses at once", [
  "write",
  "backpressure",
], async (fx) => {
  fx.peer.pause!();
  fx.transport.setWriteBufferLimits(64 * 1024 * 1024);
  for (let i = 0; i < 1024 && fx.transport.getWriteBufferSize() < 4096; i++) {
    fx.transport.write(pattern(16 * 1024, i));
    if (i % 16 === 15) await settle(0.001);
  }
  assertEquals(fx.probe.count("pause"), 0);
  const size = fx.transport.getWriteBufferSize();
  assert(size >= 4096, `only ${size} bytes buffered`);
  fx.transport.setWriteBufferLimits(size - 1, 0);
  assertEquals(fx.probe.count("pause"), 1);
  fx.peer.resume!();
  await waitUntil(() => fx.probe.count("resume") > 0, "resumeWriting");
  assertEquals(fx.probe.resumedAt, [0]);
});

conformance(
  "registerProducer(): a push producer is paused above the mark and resumed below",
  [
    "write",
    "backpressure",
  ],
  async (fx) => {
    const calls: string[] = [];
    const producer: Producer = {
      pauseProducing: () => calls.push("pause"),
      resumeProducing: () => calls.push("resume"),
      stopProducing: () => calls.push("stop"),
    };
    fx.transport.registerProducer(producer, true);
    assertThrows(
      () => fx.transport.registerProducer(producer, true),
      InvalidStateError,
      "Cannot register a producer: one is already registered, received a second one",
    );
    fx.peer.pause!();
    fx.transport.setWriteBufferLimits(32 * 1024, 8 * 1024);
    await fillUntilPaused(fx);
    assertEquals(calls, ["pause"]);
    fx.peer.resume!();
    await waitUntil(() => calls.length > 1, "resumeProducing");
    assertEquals(calls, ["pause", "resume"]);
    fx.transport.unregisterProducer();
    fx.transport.close();
    await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
    assertEquals(calls, ["pause", "resume"]);
  },
);

conformance("registerProducer(): close() stops the producer", [
  "write",
], async (fx) => {
  const calls: string[] = [];
  fx.transport.registerProducer({
    pauseProducing: () => calls.push("pause"),
    resumeProducing: () => calls.push("resume"),
    stopProducing: () => calls.push("stop"),
  }, true);
  fx.transport.close();
  await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
  assertEquals(calls, ["stop"]);
});

// ---- Reading ----

conformance("pauseReading() stops dataReceived until resumeReading()", [
  "read",
], async (fx) => {
  assert(fx.transport.isReading());
  fx.peer.send!(bytes("one"));
  await waitUntil(() => fx.probe.data().length >= 3, "the first data");
  fx.transport.pauseReading();
  fx.transport.pauseReading();
  assertFalse(fx.transport.isReading());
  fx.peer.send!(bytes("two"));
  await settle(0.05);
  assertEquals(text(fx.probe.data()), "one");
  fx.transport.resumeReading();
  fx.transport.resumeReading();
  assert(fx.transport.isReading());
  await waitUntil(() => fx.probe.data().length >= 6, "the held data");
  assertEquals(text(fx.probe.data()), "onetwo");
});

conformance(
  "EOF from the peer: eofReceived() false closes, connectionLost(undefined) once",
  [
    "read",
    "ownProtocol",
  ],
  async (fx) => {
    fx.peer.send!(bytes("bye"));
    fx.peer.sendEof!();
    await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
    await settle();
    assertEquals(text(fx.probe.data()), "bye");
    assertEquals(fx.probe.events.filter((e) => e !== "data"), [
      "made",
      "eof",
      "lost",
    ]);
    assertStrictEquals(fx.probe.lostWith, undefined);
  },
);

conformance(
  "EOF from the peer: eofReceived() true keeps the transport half-open",
  [
    "read",
    "write",
    "halfOpen",
  ],
  async (fx) => {
    fx.probe.keepOpen = true;
    fx.peer.sendEof!();
    await waitUntil(() => fx.probe.count("eof") > 0, "eofReceived");
    await settle();
    assertFalse(fx.transport.isClosing());
    assertEquals(fx.probe.count("lost"), 0);
    fx.transport.write(bytes("still here"));
    await peerHas(fx, 10);
    assertEquals(text(fx.peer.received()), "still here");
    fx.transport.close();
    await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
    await settle();
    assertEquals(fx.probe.count("lost"), 1);
    assertEquals(fx.probe.count("eof"), 1);
  },
);

conformance(
  "Writing on after the peer closed: its reset fails the next write with BrokenPipe",
  ["write", "halfOpen", "tcpResets"],
  async (fx) => {
    // The peer's FIN leaves this end in CLOSE_WAIT; the reset its closed
    // socket answers a write with is EPIPE there (Linux's tcp_reset()),
    // and with nothing reading, the next write is what finds it.
    fx.probe.keepOpen = true;
    fx.peer.transport!.close();
    await waitUntil(() => fx.probe.count("eof") > 0, "eofReceived");
    fx.transport.write(bytes("anyone there?"));
    await settle(0.05);
    assertEquals(fx.probe.count("lost"), 0);
    fx.transport.write(bytes("hello?"));
    await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
    await settle();
    assertEquals(fx.probe.count("lost"), 1);
    assertEquals(fx.probe.lostWith?.name, "BrokenPipe");
  },
);

conformance(
  "abort() with nothing unread ends the peer's stream, as closing a socket does (FIN)",
  ["write", "tcpResets"],
  async (fx) => {
    // abort() closes the socket, as asyncio's does: the kernel sends what
    // it holds, then a FIN; only the transport's own buffer is dropped.
    fx.transport.write(bytes("bye"));
    await peerHas(fx, 3);
    fx.transport.abort();
    const peer = fx.peer.probe!;
    await waitUntil(() => peer.count("lost") > 0, "the peer's connectionLost");
    assertEquals(peer.count("eof"), 1);
    assertStrictEquals(peer.lostWith, undefined);
    assertStrictEquals(fx.probe.lostWith, undefined);
  },
);

for (const how of ["abort", "close"] as const) {
  conformance(
    `${how}() with bytes received that its protocol was not given: the peer sees the end, then the reset (BrokenPipe)`,
    ["read", "tcpResets"],
    async (fx) => {
      // Deno shuts the socket's write side, then closes it: a FIN, then,
      // with unread bytes in it, a reset (RFC 2525 section 2.17), which the
      // peer, in CLOSE_WAIT, finds as EPIPE. The bytes wait in the socket
      // past the one read a Deno transport may have had in flight.
      const peer = fx.peer.probe!;
      peer.keepOpen = true;
      fx.transport.pauseReading();
      fx.peer.send!(pattern(96 * 1024));
      await settle(0.05);
      assertEquals(fx.probe.count("data"), 0);
      fx.transport[how]();
      await waitUntil(
        () => peer.count("eof") > 0 || peer.count("lost") > 0,
        "the peer to see the end",
      );
      await settle(0.05);
      if (peer.count("lost") === 0) fx.peer.send!(bytes("anyone there?"));
      await waitUntil(
        () => peer.count("lost") > 0,
        "the peer's connectionLost",
      );
      assertEquals(peer.lostWith?.name, "BrokenPipe");
      assertStrictEquals(fx.probe.lostWith, undefined);
    },
  );
}

conformance(
  "abort() with nothing unread: the peer's next write reaches a closed socket, whose reset the write after finds",
  ["read", "write", "tcpResets"],
  async (fx) => {
    const peer = fx.peer.probe!;
    peer.keepOpen = true;
    fx.transport.abort();
    await waitUntil(() => peer.count("eof") > 0, "eofReceived");
    fx.peer.send!(bytes("anyone there?"));
    await settle(0.05);
    assertEquals(peer.count("lost"), 0);
    fx.peer.send!(bytes("hello?"));
    await waitUntil(() => peer.count("lost") > 0, "the peer's connectionLost");
    assertEquals(peer.lostWith?.name, "BrokenPipe");
  },
);

conformance("pauseReading() holds back EOF too, until resumeReading()", [
  "read",
  "ownProtocol",
], async (fx) => {
  fx.transport.pauseReading();
  fx.peer.send!(bytes("data"));
  fx.peer.sendEof!();
  await settle(0.05);
  assertEquals(fx.probe.events, ["made"]);
  fx.transport.resumeReading();
  await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
  assertEquals(text(fx.probe.data()), "data");
  assertEquals(fx.probe.events.filter((e) => e !== "data"), [
    "made",
    "eof",
    "lost",
  ]);
});

conformance(
  "isReading() is false once closing; pauseReading() and resumeReading() then do nothing",
  [
    "read",
  ],
  async (fx) => {
    fx.transport.close();
    assertFalse(fx.transport.isReading());
    fx.transport.pauseReading();
    fx.transport.resumeReading();
    assertFalse(fx.transport.isReading());
    await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
    fx.transport.resumeReading();
    assertFalse(fx.transport.isReading());
    assertEquals(fx.probe.count("lost"), 1);
  },
);

conformance("close() while reading is paused still calls connectionLost once", [
  "read",
], async (fx) => {
  fx.transport.pauseReading();
  fx.peer.send!(bytes("unread"));
  await settle();
  fx.transport.close();
  await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
  await settle();
  assertEquals(fx.probe.count("lost"), 1);
  assertEquals(fx.probe.count("data"), 0);
});

conformance("writeEof() after close() does nothing", [
  "write",
  "writeEof",
], async (fx) => {
  fx.transport.close();
  fx.transport.writeEof();
  await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
  fx.transport.writeEof();
  await settle();
  assertEquals(fx.probe.count("lost"), 1);
  assertStrictEquals(fx.probe.lostWith, undefined);
});

conformance("write() after connectionLost() still throws InvalidStateError", [
  "write",
], async (fx) => {
  fx.transport.close();
  await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
  for (const data of [bytes("x"), new Uint8Array(0)]) {
    assertThrows(
      () => fx.transport.write(data),
      InvalidStateError,
      "Cannot call write(): transport is closing",
    );
  }
});

conformance("getWriteBufferLimits() starts at 16 KiB and 64 KiB", [
  "write",
], (fx) => {
  assertEquals(fx.transport.getWriteBufferLimits(), [16 * 1024, 64 * 1024]);
  return Promise.resolve();
});

conformance(
  "A dataReceived() that throws is reported and fails the transport, connectionLost once; the peer sees the end of the stream, as after abort()",
  [
    "read",
    "ownProtocol",
    "tcpResets",
  ],
  async (fx) => {
    const peer = fx.peer.probe!;
    peer.keepOpen = true;
    const reports: string[] = [];
    fx.loop.setExceptionHandler((_loop, context) => {
      reports.push(context.message);
    });
    const boom = new Error("boom");
    fx.probe.dataReceived = () => {
      throw boom;
    };
    fx.peer.send!(bytes("x"));
    await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
    await settle();
    assert(fx.transport.isClosing());
    assertEquals(fx.probe.count("lost"), 1);
    assertEquals(reports, ["Fatal error: protocol.dataReceived() call failed"]);
    assertStrictEquals(fx.probe.lostWith, boom);
    // The socket closes as abort() closes it: a FIN (the byte that failed
    // was given to the protocol), no reset.
    await waitUntil(() => peer.count("eof") > 0, "the peer's eofReceived");
    assertEquals(peer.count("lost"), 0);
  },
);
conformance(
  "A connectionLost() that throws is reported with the transport and protocol, once",
  ["ownProtocol"],
  async (fx) => {
    const reports: {
      message: string;
      transport: unknown;
      protocol: unknown;
      exception: unknown;
    }[] = [];
    fx.loop.setExceptionHandler((_loop, context) => {
      reports.push(context as never);
    });
    const boom = new Error("boom");
    fx.probe.connectionLost = () => {
      throw boom;
    };
    fx.transport.close();
    await waitUntil(() => reports.length > 0, "the report");
    await settle();
    assertEquals(reports.map((r) => r.message), [
      "Exception in protocol.connectionLost()",
    ]);
    assertStrictEquals(reports[0].exception, boom);
    assertStrictEquals(reports[0].transport, fx.transport);
    assertStrictEquals(reports[0].protocol, fx.probe);
  },
);

// ---- Protocol and extra info ----

conformance("connectionMade() comes first, exactly once", [
  "ownProtocol",
], (fx) => {
  assertEquals(fx.probe.events, ["made"]);
  assertStrictEquals(fx.probe.transport, fx.transport);
  return Promise.resolve();
});

conformance("getProtocol() and setProtocol() switch where data goes", [
  "ownProtocol",
], async (fx) => {
  assertStrictEquals(fx.transport.getProtocol(), fx.probe);
  const next = new Probe();
  fx.transport.setProtocol(next);
  assertStrictEquals(fx.transport.getProtocol(), next);
  if (CAPS.get(fx)!.read) {
    fx.peer.send!(bytes("to the new one"));
    await waitUntil(() => next.data().length >= 14, "the data");
    assertEquals(fx.probe.count("data"), 0);
  }
  fx.transport.close();
  await waitUntil(() => next.count("lost") > 0, "connectionLost");
  assertEquals(fx.probe.count("lost"), 0);
});

conformance(
  "getExtraInfo() gives the addresses the peer sees the other way round",
  [
    "addresses",
  ],
  (fx) => {
    const peer = fx.peer.transport!;
    const peername = fx.transport.getExtraInfo("peername");
    const sockname = fx.transport.getExtraInfo("sockname");
    assert(peername !== undefined && sockname !== undefined);
    assertEquals(peername, peer.getExtraInfo("sockname"));
    assertEquals(sockname, peer.getExtraInfo("peername"));
    return Promise.resolve();
  },
);

conformance(
  "getExtraInfo() returns the default for an unknown name",
  [],
  (fx) => {
    assertStrictEquals(fx.transport.getExtraInfo("no-such-thing"), undefined);
    assertStrictEquals(fx.transport.getExtraInfo("no-such-thing", 7), 7);
    return Promise.resolve();
  },
);

// ---- Running the cases ----

const CAPS = new WeakMap<Fixture, Capabilities>();

for (const factory of STREAM_FACTORIES) {
  for (const c of CASES) {
    const missing = c.needs.filter((n) => !factory.caps[n]);
    const name = `${factory.name}: ${c.name}` +
      (missing.length > 0
        ? ` (skipped: not declared ${missing.join(", ")})`
        : "");
    Deno.test({
      name,
      ignore: missing.length > 0,
      fn: () =>
        factory.run(async (fx) => {
          CAPS.set(fx, factory.caps);
          await c.body(fx);
        }),
    });
  }
}

// ---- Datagrams ----

interface DatagramCase {
  name: string;
  body: (fx: DatagramFixture) => Promise<void>;
}

const DATAGRAM_CASES: DatagramCase[] = [
  {
    name: "sendto() delivers one datagram as sent",
    body: async (fx) => {
      fx.transport.sendto(bytes("hello"), fx.target);
      await waitUntil(() => fx.receiver.got.length > 0, "the datagram");
      assertEquals(text(fx.receiver.got[0]), "hello");
    },
  },
  {
    name: "sendto() of a non-Uint8Array throws the same TypeError",
    body: (fx) => {
      assertThrows(
        () => fx.transport.sendto("text" as never, fx.target),
        TypeError,
        'Cannot call sendto(): data must be a Uint8Array, received "text"',
      );
      assertThrows(
        () => fx.transport.sendto([1] as never, fx.target),
        TypeError,
        "Cannot call sendto(): data must be a Uint8Array, received Array",
      );
      return Promise.resolve();
    },
  },
  {
    name:
      "sendto() of an empty datagram delivers it, counting its 8-byte header",
    body: async (fx) => {
      fx.transport.sendto(new Uint8Array(0), fx.target);
      assertEquals(fx.transport.getWriteBufferSize(), 8);
      await waitUntil(() => fx.receiver.got.length > 0, "the datagram");
      assertEquals(fx.receiver.got[0].length, 0);
      assertEquals(fx.transport.getWriteBufferSize(), 0);
    },
  },
  {
    name: "sendto() to a malformed address throws the same errors",
    body: (fx) => {
      assertThrows(
        () => fx.transport.sendto(bytes("x"), { ...fx.target, hostname: "" }),
        RangeError,
        "Cannot call sendto(): host must not be empty",
      );
      assertThrows(
        () => fx.transport.sendto(bytes("x")),
        TypeError,
        "Cannot call sendto(): the endpoint has no remote address, so addr is required, received undefined",
      );
      return Promise.resolve();
    },
  },
  {
    name: "close() calls connectionLost(undefined) once; sendto() then throws",
    body: async (fx) => {
      assertFalse(fx.transport.isClosing());
      fx.transport.close();
      assert(fx.transport.isClosing());
      fx.transport.close();
      assertThrows(
        () => fx.transport.sendto(bytes("x"), fx.target),
        InvalidStateError,
        "Cannot call sendto(): transport is closing",
      );
      await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
      fx.transport.abort();
      await settle();
      assertEquals(fx.probe.count("lost"), 1);
      assertStrictEquals(fx.probe.lostWith, undefined);
    },
  },
  {
    name:
      "close() while writing is paused: resumeWriting() once the queue is sent, then connectionLost(undefined)",
    body: async (fx) => {
      fx.probe.pauseWriting = () => fx.probe.events.push("pause");
      fx.probe.resumeWriting = () => fx.probe.events.push("resume");
      // Every datagram transport has the marks, as asyncio's do, though
      // the interface (as asyncio's DatagramTransport) does not name them.
      (fx.transport as unknown as Pick<WriteTransport, "setWriteBufferLimits">)
        .setWriteBufferLimits(1000, 0);
      for (let i = 0; i < 20; i++) {
        fx.transport.sendto(new Uint8Array(100), fx.target);
      }
      assertEquals(fx.probe.events, ["pause"]);
      fx.transport.close();
      await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
      await settle();
      assertEquals(fx.probe.events, ["pause", "resume", "lost"]);
      assertStrictEquals(fx.probe.lostWith, undefined);
    },
  },
  {
    name: "abort() calls connectionLost once",
    body: async (fx) => {
      fx.transport.sendto(bytes("x"), fx.target);
      fx.transport.abort();
      assert(fx.transport.isClosing());
      fx.transport.abort();
      fx.transport.close();
      await waitUntil(() => fx.probe.count("lost") > 0, "connectionLost");
      await settle();
      assertEquals(fx.probe.count("lost"), 1);
      assertEquals(fx.transport.getWriteBufferSize(), 0);
    },
  },
  {
    name: "getExtraInfo() returns the default for an unknown name",
    body: (fx) => {
      assertStrictEquals(fx.transport.getExtraInfo("no-such-thing", 7), 7);
      return Promise.resolve();
    },
  },
];

for (const factory of DATAGRAM_FACTORIES) {
  for (const c of DATAGRAM_CASES) {
    Deno.test(`${factory.name}: ${c.name}`, () => factory.run(c.body));
  }
}
