/**
 * A TCP line-echo server and two clients in the streams style (`startServer`, `openConnection`): one client a generator coroutine, the other an async function, running side by side.
 *
 * deno run --allow-net=127.0.0.1 examples/tcp_echo_streams.ts
 *
 * @module
 */

import {
  type Coroutine,
  gather,
  getEventLoop,
  openConnection,
  run,
  startServer,
  type StreamReader,
  type StreamWriter,
} from "../mod.ts";

const HOST = "127.0.0.1";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads lines until EOF, answering each; a generator coroutine. */
function* handleClient(
  reader: StreamReader,
  writer: StreamWriter,
): Coroutine<void> {
  const peer = (writer.getExtraInfo("peername") as Deno.NetAddr).port;
  console.log(`server: client on port ${peer} connected`);
  let count = 0;
  while (true) {
    const line = yield* reader.readline();
    if (line.length === 0) break; // EOF
    count++;
    writer.write(encoder.encode(`echo ${count}: `));
    writer.write(line);
    yield* writer.drain(); // Wait while the client is slow to read.
  }
  console.log(`server: client on port ${peer} sent EOF after ${count} lines`);
  writer.close();
  yield* writer.waitClosed();
}

/** The generator-coroutine client: `yield*` wherever it waits. */
function* generatorClient(port: number, words: string[]): Coroutine<string[]> {
  const [reader, writer] = yield* openConnection(HOST, port);
  const answers: string[] = [];
  for (const word of words) {
    writer.write(encoder.encode(`${word}\n`));
    yield* writer.drain();
    const answer = decoder.decode(yield* reader.readline()).trimEnd();
    console.log(`generator client: sent ${word}, got "${answer}"`);
    answers.push(answer);
  }
  writer.close();
  yield* writer.waitClosed();
  return answers;
}

/** The async-function client: `await` wherever it waits. */
async function asyncClient(port: number, words: string[]): Promise<string[]> {
  const [reader, writer] = await openConnection(HOST, port);
  // Send everything, then half-close and read the answers until EOF.
  writer.writelines(words.map((w) => encoder.encode(`${w}\n`)));
  writer.writeEof();
  await writer.drain();
  const answers: string[] = [];
  for await (const line of reader) {
    const answer = decoder.decode(line).trimEnd();
    console.log(`async client: got "${answer}"`);
    answers.push(answer);
  }
  writer.close();
  await writer.waitClosed();
  return answers;
}

await run(async () => {
  const loop = getEventLoop();
  const server = await startServer(handleClient, HOST, 0);
  const { port } = server.addresses()[0] as Deno.NetAddr;
  console.log(`server: listening on ${HOST}:${port}`);
  loop.addSignalHandler("SIGINT", () => {
    console.log("SIGINT: closing the server");
    server.close();
    server.abortClients();
  });
  try {
    const [fromGenerator, fromAsync] = await gather([
      generatorClient(port, ["alpha", "beta", "gamma"]),
      asyncClient(port, ["one", "two", "three", "four"]),
    ]);
    console.log(`generator client got ${fromGenerator.length} answers`);
    console.log(`async client got ${fromAsync.length} answers`);
  } finally {
    server.close();
    // Ctrl-C still aborts the connections while this waits for them.
    await server.waitClosed();
    loop.removeSignalHandler("SIGINT");
    console.log("server: closed");
  }
});
