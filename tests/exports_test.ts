// A snapshot of what each entry point exports, so that an accidental
// export (or a lost one) shows up as a failing test. Update it on purpose
// when the public API changes.

import { assertEquals } from "@std/assert";

const EXPECTED: Record<string, string[]> = {
  futures: [
    "CancelledError",
    "Future",
    "IncompleteReadError",
    "InvalidStateError",
    "LimitOverrunError",
    "TimeoutError",
    "formatReceived",
    "getRunningLoop",
    "isFuture",
    "noteAwaitParked",
    "notifyAwait",
    "pendingResumptions",
    "requestMicrotaskCheckpoint",
    "setAwaitHook",
    "setContextLoopFinder",
    "setCurrentLoopFinder",
    "setRunningLoop",
    "takeMicrotaskCheckpoint",
    "wrapFuture",
  ],
  loop: [
    "BaseEventLoop",
    "DefaultEventLoopPolicy",
    "DenoEventLoop",
    "Handle",
    "TimerHandle",
    "WorkerExecutor",
    "getEventLoop",
    "getEventLoopPolicy",
    "newEventLoop",
    "run",
    "setEventLoop",
    "setEventLoopPolicy",
    "workerFunction",
  ],
  tasks: [
    "ALL_COMPLETED",
    "Barrier",
    "BoundedSemaphore",
    "BrokenBarrierError",
    "Condition",
    "Deque",
    "Event",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "LifoQueue",
    "Lock",
    "PriorityQueue",
    "Queue",
    "QueueEmpty",
    "QueueFull",
    "QueueShutDown",
    "Semaphore",
    "Task",
    "TaskGroup",
    "Timeout",
    "allTasks",
    "asCompleted",
    "currentTask",
    "ensureFuture",
    "gather",
    "shield",
    "sleep",
    "timeout",
    "timeoutAt",
    "wait",
    "waitFor",
    "withTaskGroup",
  ],
  transports: ["ReadableStreamProducer", "Relay", "WriteFlowControl", "relay"],
  protocols: [
    "BaseProtocol",
    "BufferedProtocol",
    "ChunkProtocol",
    "DatagramProtocol",
    "HttpClientProtocol",
    "HttpServerProtocol",
    "HttpTransport",
    "Int32StringReceiver",
    "JsonRpcError",
    "JsonRpcProtocol",
    "LineReceiver",
    "Protocol",
    "StreamReader",
    "StreamReaderProtocol",
    "StreamWriter",
    "SubprocessProtocol",
    "jsonRpcHttpHandler",
    "openConnection",
    "startServer",
  ],
  testing: [
    "Simulation",
    "SimulationError",
    "VirtualTimeLoop",
    "loopTest",
    "runLoopTest",
    "simulate",
    "transportPair",
  ],
  facade: ["AsyncEngine", "Connection", "Listener", "UnexpectedLineError"],
};

for (const [folder, names] of Object.entries(EXPECTED)) {
  Deno.test(`${folder}/mod.ts exports exactly its snapshot`, async () => {
    const mod = await import(`../${folder}/mod.ts`);
    assertEquals(Object.keys(mod).sort(), names);
  });
}

Deno.test("mod.ts re-exports every folder and nothing else", async () => {
  const mod = await import("../mod.ts");
  const all = [...new Set(Object.values(EXPECTED).flat())].sort();
  assertEquals(Object.keys(mod).sort(), all);
});
