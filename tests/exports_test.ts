// A snapshot of what each entry point exports, so that an accidental
// export (or a lost one) shows up as a failing test. Update it on purpose
// when the public API changes.

import { assertEquals, assertStrictEquals } from "@std/assert";

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
    "serveWorkers",
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
  transports: [
    "DATAGRAM_HEADER_SIZE",
    "FlowControlledTransport",
    "MAX_DATAGRAM_QUEUE",
    "ReadableStreamProducer",
    "Relay",
    "ServerShutdown",
    "WriteBuffer",
    "WriteFlowControl",
    "broadcastRefusal",
    "canonicalAddress",
    "checkAddrinfoArgs",
    "checkDatagramEndpointArgs",
    "checkDatagramFamilies",
    "checkDatagramTarget",
    "checkHost",
    "checkMulticastGroup",
    "checkPort",
    "checkServerHosts",
    "checkServerOptions",
    "checkUnixPath",
    "checkWriteData",
    "concatBytes",
    "datagramDropReporter",
    "datagramQueueRefusal",
    "describeAddress",
    "gatherWriteData",
    "ipFamily",
    "refuseWrite",
    "relay",
  ],
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
    "PeerLog",
    "Protocol",
    "StreamReader",
    "StreamReaderProtocol",
    "StreamWriter",
    "SubprocessProtocol",
    "deliverData",
    "isBufferedProtocol",
    "jsonRpcHttpHandler",
    "lentBuffer",
    "openConnection",
    "openUnixConnection",
    "startServer",
    "startUnixServer",
  ],
  streams: [
    "StreamReader",
    "StreamReaderProtocol",
    "StreamWriter",
    "openConnection",
    "openUnixConnection",
    "startServer",
    "startUnixServer",
  ],
  http: [
    "HttpClientProtocol",
    "HttpParseError",
    "HttpServerProtocol",
    "HttpTransport",
  ],
  jsonrpc: ["JsonRpcError", "JsonRpcProtocol", "jsonRpcHttpHandler"],
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

// The names that moved out of ./protocols stay importable from it for one
// version; they must be the very same bindings, not copies.
Deno.test("protocols/mod.ts re-exports the moved names as the same bindings", async () => {
  const protocols: Record<string, unknown> = await import(
    "../protocols/mod.ts"
  );
  for (const folder of ["streams", "http", "jsonrpc"]) {
    const mod: Record<string, unknown> = await import(`../${folder}/mod.ts`);
    for (const name of EXPECTED[folder]) {
      // Names added since the move are not re-exported there.
      if (!EXPECTED.protocols.includes(name)) continue;
      assertStrictEquals(protocols[name], mod[name], name);
    }
  }
});
