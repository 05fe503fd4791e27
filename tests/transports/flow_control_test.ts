import { assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import {
  FlowControlledTransport,
  WriteFlowControl,
} from "../../transports/flow_control.ts";
import type { BaseTransport, Producer } from "../../transports/transport.ts";
import { BaseProtocol } from "../../protocols/protocol.ts";
import { BaseEventLoop } from "../../loop/base_event_loop.ts";
import type { ExceptionContext } from "../../loop/event_loop.ts";
import { InvalidStateError } from "../../futures/errors.ts";

class Recorder extends BaseProtocol {
  calls: string[] = [];
  override pauseWriting(): void {
    this.calls.push("pause");
  }
  override resumeWriting(): void {
    this.calls.push("resume");
  }
}

function setup(options?: { high?: number; low?: number }) {
  const loop = new BaseEventLoop();
  const errors: ExceptionContext[] = [];
  loop.setExceptionHandler((_l, ctx) => errors.push(ctx));
  let protocol: BaseProtocol = new Recorder();
  const transport = {
    getProtocol: () => protocol,
    setProtocol: (p: BaseProtocol) => protocol = p,
  } as unknown as BaseTransport;
  const flow = new WriteFlowControl(loop, transport, options);
  return {
    loop,
    errors,
    transport,
    flow,
    get protocol() {
      return protocol as Recorder;
    },
  };
}

/** Runs the loop's ready callbacks, and what they schedule. */
function turn(loop: BaseEventLoop): Promise<void> {
  const done = loop.createFuture<void>();
  loop.callSoon(() => loop.callSoon(() => done.setResult()));
  return loop.runUntilComplete(done);
}

function recordingProducer(log: string[]): Required<Producer> {
  return {
    pauseProducing: () => log.push("pauseProducing"),
    resumeProducing: () => log.push("resumeProducing"),
    stopProducing: () => log.push("stopProducing"),
  };
}

// ---- Water marks ----

Deno.test("WriteFlowControl defaults to 64 KiB high and 16 KiB low", () => {
  const { loop, flow } = setup();
  assertEquals(flow.getWriteBufferLimits(), [16384, 65536]);
  loop.close();
});

Deno.test("WriteFlowControl.setWriteBufferLimits() derives the missing mark", () => {
  const { loop, flow } = setup();
  flow.setWriteBufferLimits(1000);
  assertEquals(flow.getWriteBufferLimits(), [250, 1000]);
  flow.setWriteBufferLimits(undefined, 10);
  assertEquals(flow.getWriteBufferLimits(), [10, 40]);
  flow.setWriteBufferLimits(7, 7);
  assertEquals(flow.getWriteBufferLimits(), [7, 7]);
  flow.setWriteBufferLimits(0);
  assertEquals(flow.getWriteBufferLimits(), [0, 0]);
  flow.setWriteBufferLimits();
  assertEquals(flow.getWriteBufferLimits(), [16384, 65536]);
  loop.close();
});

Deno.test("WriteFlowControl.setWriteBufferLimits() rejects high below low", () => {
  const { loop, flow } = setup();
  const err = assertThrows(() => flow.setWriteBufferLimits(4, 8), RangeError);
  assertEquals(
    err.message,
    "Cannot set write buffer limits: high must be >= low, received high=4 low=8",
  );
  assertThrows(() => flow.setWriteBufferLimits(1000, 2000), RangeError);
  assertThrows(() => flow.setWriteBufferLimits(-1), RangeError);
  assertThrows(() => flow.setWriteBufferLimits(10, -1), RangeError);
  assertThrows(() => flow.setWriteBufferLimits(NaN), RangeError);
  assertThrows(
    () => flow.setWriteBufferLimits("10" as unknown as number),
    TypeError,
  );
  // A failed call leaves the marks unchanged.
  assertEquals(flow.getWriteBufferLimits(), [16384, 65536]);
  loop.close();
});

Deno.test("WriteFlowControl constructor validates its options", () => {
  const loop = new BaseEventLoop();
  const t = {} as BaseTransport;
  assertThrows(
    () => new WriteFlowControl(loop, t, { high: 4, low: 8 }),
    RangeError,
    "high must be >= low, received high=4 low=8",
  );
  loop.close();
});

Deno.test("WriteFlowControl pauses only strictly above high and resumes at low", () => {
  const { loop, flow, protocol } = setup({ high: 100, low: 20 });
  flow.update(100);
  assertEquals(protocol.calls, []);
  assertEquals(flow.isPaused(), false);
  flow.update(101);
  assertEquals(protocol.calls, ["pause"]);
  assertEquals(flow.isPaused(), true);
  flow.update(500); // no second pause
  flow.update(21);
  assertEquals(protocol.calls, ["pause"]);
  flow.update(20);
  assertEquals(protocol.calls, ["pause", "resume"]);
  flow.update(10); // no second resume
  flow.update(0);
  assertEquals(protocol.calls, ["pause", "resume"]);
  loop.close();
});

Deno.test("WriteFlowControl.setWriteBufferLimits() applies to the current size at once", () => {
  const { loop, flow, protocol } = setup();
  flow.update(5000);
  assertEquals(protocol.calls, []);
  flow.setWriteBufferLimits(4000);
  assertEquals(protocol.calls, ["pause"]);
  flow.setWriteBufferLimits(100000, 5000);
  assertEquals(protocol.calls, ["pause", "resume"]);
  loop.close();
});

Deno.test("WriteFlowControl calls the transport's current protocol", () => {
  const s = setup({ high: 10, low: 0 });
  const first = s.protocol;
  const second = new Recorder();
  s.transport.setProtocol(second);
  s.flow.update(11);
  assertEquals(first.calls, []);
  assertEquals(second.calls, ["pause"]);
  s.loop.close();
});

Deno.test("WriteFlowControl sends protocol errors to the exception handler", () => {
  const s = setup({ high: 10, low: 0 });
  const boom = new Error("boom");
  class Bad extends BaseProtocol {
    override pauseWriting(): void {
      throw boom;
    }
    override resumeWriting(): void {
      throw boom;
    }
  }
  const bad = new Bad();
  s.transport.setProtocol(bad);
  s.flow.update(11);
  s.flow.update(0);
  assertEquals(s.errors.length, 2);
  assertEquals(s.errors[0].message, "protocol.pauseWriting() failed");
  assertEquals(s.errors[0].exception, boom);
  assertEquals(s.errors[0].protocol, bad);
  assertEquals(s.errors[0].transport, s.transport);
  assertEquals(s.errors[1].message, "protocol.resumeWriting() failed");
  assertEquals(s.flow.isPaused(), false);
  s.loop.close();
});

Deno.test("WriteFlowControl reports a protocol's failing pause and resume once each, and counts the rest at close()", () => {
  const s = setup({ high: 10, low: 0 });
  class Bad extends BaseProtocol {
    override pauseWriting(): void {
      throw new Error("cannot pause");
    }
    override resumeWriting(): void {
      throw new Error("cannot resume");
    }
  }
  s.transport.setProtocol(new Bad());
  // A peer that reads now and then: a pause and a resume each time.
  for (let i = 0; i < 100; i++) {
    s.flow.update(11);
    s.flow.update(0);
  }
  assertEquals(s.errors.map((e) => e.message), [
    "protocol.pauseWriting() failed",
    "protocol.resumeWriting() failed",
  ]);
  s.flow.close();
  assertEquals(
    s.errors[2].message,
    "Transport: 198 problems were counted but not logged (100 pauseWriting() failures, 100 resumeWriting() failures)",
  );
  assertEquals(s.errors[2].transport, s.transport);
  assertEquals(s.errors.length, 3);
  s.loop.close();
});

// ---- Producers ----

Deno.test("WriteFlowControl pauses and resumes a push producer with the marks", () => {
  const { loop, flow, protocol } = setup({ high: 100, low: 10 });
  const log: string[] = [];
  flow.registerProducer(recordingProducer(log), true);
  assertEquals(log, []);
  flow.update(50);
  flow.update(150);
  assertEquals(log, ["pauseProducing"]);
  flow.update(5);
  assertEquals(log, ["pauseProducing", "resumeProducing"]);
  flow.update(0); // still below low, no more calls for a push producer
  assertEquals(log, ["pauseProducing", "resumeProducing"]);
  assertEquals(protocol.calls, ["pause", "resume"]);
  loop.close();
});

Deno.test("WriteFlowControl pauses a push producer registered over the mark", () => {
  const { loop, flow } = setup({ high: 100, low: 10 });
  flow.update(200);
  const log: string[] = [];
  flow.registerProducer(recordingProducer(log), true);
  assertEquals(log, ["pauseProducing"]);
  flow.update(0);
  assertEquals(log, ["pauseProducing", "resumeProducing"]);
  loop.close();
});

Deno.test("WriteFlowControl leaves a push producer paused when resumeWriting() fills the buffer again", () => {
  const { loop, flow, transport } = setup({ high: 100, low: 10 });
  const log: string[] = [];
  let refills = 1;
  class Refiller extends BaseProtocol {
    override resumeWriting(): void {
      log.push("resumeWriting");
      // The protocol writes on, past the mark (once).
      if (refills-- > 0) flow.update(200);
    }
  }
  transport.setProtocol(new Refiller());
  flow.registerProducer(recordingProducer(log), true);
  flow.update(150);
  flow.update(5);
  // The buffer is over the mark again: the producer must stay paused.
  assertEquals(log, ["pauseProducing", "resumeWriting"]);
  assertEquals(flow.isPaused(), true);
  flow.update(0);
  assertEquals(log, [
    "pauseProducing",
    "resumeWriting",
    "resumeWriting",
    "resumeProducing",
  ]);
  loop.close();
});

Deno.test("WriteFlowControl does not ask a pull producer when resumeWriting() fills the buffer again", () => {
  const { loop, flow, transport } = setup({ high: 100, low: 10 });
  let refills = 1;
  class Refiller extends BaseProtocol {
    override resumeWriting(): void {
      // The protocol writes on, past the mark (once).
      if (refills-- > 0) flow.update(200);
    }
  }
  transport.setProtocol(new Refiller());
  let asked = 0;
  flow.registerProducer({ resumeProducing: () => asked++ }, false);
  assertEquals(asked, 1);
  flow.update(150);
  flow.update(5);
  assertEquals(asked, 1); // 200 bytes are buffered: no call for more
  flow.update(0);
  assertEquals(asked, 2);
  loop.close();
});

Deno.test("WriteFlowControl asks a pull producer for more each time the buffer drains", () => {
  const { loop, flow } = setup({ high: 100, low: 10 });
  let size = 0;
  let asked = 0;
  // Each time it is asked, it writes 60 bytes (as a transport would see).
  const producer: Producer = {
    resumeProducing() {
      asked++;
      size += 60;
      flow.update(size);
    },
  };
  flow.registerProducer(producer, false);
  assertEquals(asked, 1);
  assertEquals(size, 60);
  // A partial send that leaves more than low: not asked.
  size = 30;
  flow.update(size);
  assertEquals(asked, 1);
  // Drained: asked, and it writes again from inside update().
  size = 0;
  flow.update(size);
  assertEquals(asked, 2);
  assertEquals(size, 60);
  // Growth never asks.
  size = 90;
  flow.update(size);
  assertEquals(asked, 2);
  loop.close();
});

Deno.test("WriteFlowControl.sentAtOnce() asks a pull producer once, on the next turn", async () => {
  const { loop, flow } = setup({ high: 100, low: 10 });
  let asked = 0;
  flow.registerProducer({ resumeProducing: () => asked++ }, false);
  assertEquals(asked, 1);
  // Two writes that went straight out, in one turn: one ask, not inline.
  flow.sentAtOnce();
  flow.sentAtOnce();
  assertEquals(asked, 1);
  await turn(loop);
  assertEquals(asked, 2);
  // A drain before the next turn asks in its place.
  flow.update(50);
  flow.sentAtOnce();
  flow.update(0);
  assertEquals(asked, 3);
  await turn(loop);
  assertEquals(asked, 3);
  // Above the low mark by then: not asked.
  flow.sentAtOnce();
  flow.update(50);
  await turn(loop);
  assertEquals(asked, 3);
  // Unregistered, or closed, before the turn: not asked.
  flow.update(0);
  assertEquals(asked, 4);
  flow.sentAtOnce();
  flow.unregisterProducer();
  await turn(loop);
  assertEquals(asked, 4);
  flow.registerProducer({ resumeProducing: () => asked++ }, false);
  assertEquals(asked, 5);
  flow.sentAtOnce();
  flow.close();
  await turn(loop);
  assertEquals(asked, 5);
  loop.close();
});

Deno.test("WriteFlowControl.sentAtOnce() leaves a push producer alone", async () => {
  const { loop, flow } = setup({ high: 100, low: 10 });
  const log: string[] = [];
  flow.registerProducer(recordingProducer(log), true);
  flow.sentAtOnce();
  await turn(loop);
  assertEquals(log, []);
  loop.close();
});

Deno.test("WriteFlowControl.registerProducer() rejects a second producer", () => {
  const { loop, flow } = setup();
  flow.registerProducer({ resumeProducing() {} }, false);
  assertThrows(
    () => flow.registerProducer({ resumeProducing() {} }, false),
    InvalidStateError,
    "Cannot register a producer",
  );
  flow.unregisterProducer();
  flow.registerProducer({ resumeProducing() {}, pauseProducing() {} }, true);
  loop.close();
});

Deno.test("WriteFlowControl.registerProducer() checks the producer's methods", () => {
  const { loop, flow } = setup();
  assertThrows(
    () => flow.registerProducer({} as Producer, false),
    TypeError,
    "resumeProducing() must be a function",
  );
  assertThrows(
    () => flow.registerProducer({ resumeProducing() {} }, true),
    TypeError,
    "pauseProducing() must be a function",
  );
  assertEquals(flow.producer, null);
  loop.close();
});

Deno.test("WriteFlowControl.unregisterProducer() stops calls to the producer", () => {
  const { loop, flow } = setup({ high: 10, low: 0 });
  const log: string[] = [];
  const producer = recordingProducer(log);
  flow.registerProducer(producer, true);
  assertEquals(flow.producer, producer);
  flow.unregisterProducer();
  assertEquals(flow.producer, null);
  flow.update(20);
  flow.update(0);
  flow.close();
  assertEquals(log, []);
  loop.close();
});

Deno.test("WriteFlowControl.close() stops the producer once and silences everything", () => {
  const { loop, flow, protocol } = setup({ high: 10, low: 0 });
  const log: string[] = [];
  flow.registerProducer(recordingProducer(log), true);
  flow.close();
  flow.close();
  assertEquals(log, ["stopProducing"]);
  assertEquals(flow.producer, null);
  flow.update(20);
  flow.update(0);
  assertEquals(protocol.calls, []);
  // A producer registered after close is stopped at once.
  const late: string[] = [];
  flow.registerProducer(recordingProducer(late), false);
  assertEquals(late, ["stopProducing"]);
  assertEquals(flow.producer, null);
  loop.close();
});

Deno.test("WriteFlowControl.endWrites() stops the producer but keeps pausing the protocol", () => {
  const { loop, flow, protocol } = setup({ high: 10, low: 0 });
  const log: string[] = [];
  flow.registerProducer(recordingProducer(log), true);
  flow.endWrites();
  flow.endWrites();
  assertEquals(log, ["stopProducing"]);
  assertEquals(flow.producer, null);
  flow.update(20);
  flow.update(0);
  assertEquals(protocol.calls, ["pause", "resume"]);
  const late: string[] = [];
  flow.registerProducer(recordingProducer(late), true);
  assertEquals(late, ["stopProducing"]);
  flow.close();
  assertEquals(log, ["stopProducing"]);
  loop.close();
});

Deno.test("WriteFlowControl sends producer errors to the exception handler", () => {
  const { loop, flow, errors } = setup({ high: 10, low: 0 });
  const boom = new Error("boom");
  const producer: Producer = {
    pauseProducing() {
      throw boom;
    },
    resumeProducing() {},
    stopProducing() {
      throw boom;
    },
  };
  flow.registerProducer(producer, true);
  flow.update(11);
  flow.close();
  assertEquals(errors.map((e) => e.message), [
    "producer.pauseProducing() failed",
    "producer.stopProducing() failed",
  ]);
  assertInstanceOf(errors[0].exception, Error);
  assertEquals(errors[0].producer, producer);
  loop.close();
});

// ---- FlowControlledTransport ----

Deno.test("FlowControlledTransport's methods act on the flow control it is given, made on first need", () => {
  const { loop, flow, protocol } = setup();
  let asked = 0;
  class Lazy extends FlowControlledTransport {
    protected override flowControl(): WriteFlowControl {
      asked++;
      return flow;
    }
  }
  const transport = new Lazy();
  assertEquals(asked, 0);
  transport.setWriteBufferLimits(8);
  assertEquals(transport.getWriteBufferLimits(), [2, 8]);
  assertEquals(flow.getWriteBufferLimits(), [2, 8]);
  const log: string[] = [];
  transport.registerProducer(recordingProducer(log), true);
  flow.update(9);
  transport.unregisterProducer();
  flow.update(0);
  assertEquals(log, ["pauseProducing"]);
  assertEquals(protocol.calls, ["pause", "resume"]);
  assertEquals(asked, 4);
  loop.close();
});
