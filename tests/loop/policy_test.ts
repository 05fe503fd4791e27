import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertNotStrictEquals,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { BaseEventLoop } from "../../loop/base_event_loop.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import type { EventLoop } from "../../loop/event_loop.ts";
import {
  DefaultEventLoopPolicy,
  type EventLoopPolicy,
  getEventLoop,
  getEventLoopPolicy,
  newEventLoop,
  setEventLoop,
  setEventLoopPolicy,
} from "../../loop/policy.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

/** A policy that hands out virtual-time loops and records what it did. */
class RecordingPolicy implements EventLoopPolicy {
  current: EventLoop | null = null;
  made: EventLoop[] = [];
  setCalls: (EventLoop | null)[] = [];
  getEventLoop(): EventLoop {
    return this.current ??= this.newEventLoop();
  }
  setEventLoop(loop: EventLoop | null): void {
    this.setCalls.push(loop);
    this.current = loop;
  }
  newEventLoop(): EventLoop {
    const loop = new VirtualTimeLoop() as unknown as EventLoop;
    this.made.push(loop);
    return loop;
  }
}

// ---- DefaultEventLoopPolicy ----

Deno.test("DefaultEventLoopPolicy.getEventLoop() makes a loop once and returns it after", () => {
  const policy = new DefaultEventLoopPolicy();
  const loop = policy.getEventLoop();
  assertInstanceOf(loop, DenoEventLoop);
  assertStrictEquals(policy.getEventLoop(), loop);
  loop.close();
});

Deno.test("DefaultEventLoopPolicy.getEventLoop() replaces a closed loop", () => {
  const policy = new DefaultEventLoopPolicy();
  const first = policy.getEventLoop();
  first.close();
  const second = policy.getEventLoop();
  assertNotStrictEquals(second, first);
  assertFalse(second.isClosed());
  second.close();
});

Deno.test("DefaultEventLoopPolicy.setEventLoop() sets and clears the current loop", () => {
  const policy = new DefaultEventLoopPolicy();
  const mine = new VirtualTimeLoop() as unknown as EventLoop;
  policy.setEventLoop(mine);
  assertStrictEquals(policy.getEventLoop(), mine);
  policy.setEventLoop(null);
  const fresh = policy.getEventLoop();
  assertNotStrictEquals(fresh, mine);
  fresh.close();
  mine.close();
});

Deno.test("DefaultEventLoopPolicy.setEventLoop() refuses what is not a loop, as asyncio's set_event_loop(object()) does", () => {
  const policy = new DefaultEventLoopPolicy();
  for (const bad of [{}, 42, "loop"]) {
    assertThrows(
      () => policy.setEventLoop(bad as unknown as EventLoop),
      TypeError,
      "Cannot set the event loop: it must be an event loop or null, received",
    );
  }
  assertThrows(() => setEventLoop({} as unknown as EventLoop), TypeError);
  // Nothing was set.
  assertStrictEquals(policy.peekEventLoop(), null);
  // undefined forgets the loop, as null does.
  const mine = new VirtualTimeLoop() as unknown as EventLoop;
  policy.setEventLoop(mine);
  policy.setEventLoop(undefined as unknown as null);
  assertStrictEquals(policy.peekEventLoop(), null);
  const fresh = policy.getEventLoop();
  assertNotStrictEquals(fresh, mine);
  fresh.close();
  mine.close();
});

Deno.test("DefaultEventLoopPolicy.newEventLoop() makes a new loop that is not current", () => {
  const policy = new DefaultEventLoopPolicy();
  const current = policy.getEventLoop();
  const made = policy.newEventLoop();
  assertInstanceOf(made, DenoEventLoop);
  assertInstanceOf(made, BaseEventLoop);
  assertNotStrictEquals(made, current);
  assertStrictEquals(policy.getEventLoop(), current);
  assertFalse(made.isRunning());
  assertFalse(made.isClosed());
  made.close();
  current.close();
});

// ---- Global policy ----

Deno.test("getEventLoopPolicy() returns the same default policy each time", () => {
  const policy = getEventLoopPolicy();
  assertInstanceOf(policy, DefaultEventLoopPolicy);
  assertStrictEquals(getEventLoopPolicy(), policy);
});

Deno.test("setEventLoopPolicy() installs a policy the module functions go through", () => {
  const policy = new RecordingPolicy();
  setEventLoopPolicy(policy);
  try {
    assertStrictEquals(getEventLoopPolicy(), policy);
    const made = newEventLoop();
    assertInstanceOf(made, VirtualTimeLoop);
    assertEquals(policy.made, [made]);
    setEventLoop(made);
    assertEquals(policy.setCalls, [made]);
    assertStrictEquals(getEventLoop(), made);
    setEventLoop(null);
    assertEquals(policy.setCalls, [made, null]);
    made.close();
  } finally {
    setEventLoopPolicy(null);
  }
});

Deno.test("setEventLoopPolicy() refuses what is not a policy, as asyncio's does", () => {
  const before = getEventLoopPolicy();
  for (const bad of [{}, 42, { getEventLoop() {} }]) {
    assertThrows(
      () => setEventLoopPolicy(bad as unknown as EventLoopPolicy),
      TypeError,
      "Cannot set the event loop policy: it must have getEventLoop(), setEventLoop() and newEventLoop(), or be null, received",
    );
  }
  assertStrictEquals(getEventLoopPolicy(), before);
});

Deno.test("setEventLoopPolicy(null) restores a fresh default policy", () => {
  const before = getEventLoopPolicy();
  setEventLoopPolicy(new RecordingPolicy());
  setEventLoopPolicy(null);
  const after = getEventLoopPolicy();
  assertInstanceOf(after, DefaultEventLoopPolicy);
  assertNotStrictEquals(after, before);
});

// ---- Module functions ----

Deno.test("getEventLoop() returns the policy's loop outside a running loop", () => {
  const policy = new RecordingPolicy();
  setEventLoopPolicy(policy);
  try {
    const loop = getEventLoop();
    assertStrictEquals(loop, policy.made[0]);
    assertStrictEquals(getEventLoop(), loop);
    loop.close();
  } finally {
    setEventLoopPolicy(null);
  }
});

Deno.test("getEventLoop() returns the running loop inside its callbacks", async () => {
  const policy = new RecordingPolicy();
  setEventLoopPolicy(policy);
  const running = new VirtualTimeLoop();
  try {
    const seen: EventLoop[] = [];
    running.callSoon(() => {
      seen.push(getEventLoop());
      running.stop();
    });
    await running.runForever();
    assertStrictEquals(seen[0] as unknown, running);
    assertEquals(policy.made, []);
  } finally {
    setEventLoopPolicy(null);
    running.close();
  }
});

Deno.test("getEventLoop() on the default policy makes one DenoEventLoop", () => {
  setEventLoopPolicy(null);
  const loop = getEventLoop();
  try {
    assertInstanceOf(loop, DenoEventLoop);
    assertStrictEquals(getEventLoop(), loop);
  } finally {
    setEventLoop(null);
    loop.close();
  }
});

Deno.test("newEventLoop() makes a new stopped loop each time", () => {
  const a = newEventLoop();
  const b = newEventLoop();
  assertNotStrictEquals(a, b);
  assertFalse(a.isRunning());
  assert(typeof a.time() === "number");
  a.close();
  b.close();
});
