// Connection over an in-memory transport pair: no sockets needed.

import { assert, assertEquals, assertFalse } from "@std/assert";
import { Connection } from "../../facade/connection.ts";
import { StreamReader } from "../../streams/stream_reader.ts";
import { StreamReaderProtocol } from "../../streams/stream_reader_protocol.ts";
import { StreamWriter } from "../../streams/stream_writer.ts";
import { transportPair } from "../../testing/transport_pair.ts";
import { VirtualTimeLoop } from "../../testing/virtual_time_loop.ts";

/** Two connected ends: [client, server]. */
function ends(loop: VirtualTimeLoop): [Connection, Connection] {
  const make = () => {
    const reader = new StreamReader({ loop });
    return [
      reader,
      new StreamReaderProtocol(reader, undefined, { loop }),
    ] as const;
  };
  const [serverReader, serverProtocol] = make();
  const [clientReader, clientProtocol] = make();
  const [serverTransport, clientTransport] = transportPair(
    serverProtocol,
    clientProtocol,
    { loop },
  );
  return [
    new Connection(
      clientReader,
      new StreamWriter(clientTransport, clientProtocol, {
        reader: clientReader,
        loop,
      }),
    ),
    new Connection(
      serverReader,
      new StreamWriter(serverTransport, serverProtocol, {
        reader: serverReader,
        loop,
      }),
    ),
  ];
}

Deno.test("Connection joins a reader and a writer of one connection", async () => {
  const loop = new VirtualTimeLoop();
  const [client, server] = ends(loop);
  client.writer.write(new TextEncoder().encode("ping\n"));
  const line = await loop.runUntilComplete(server.reader.readline());
  assertEquals(new TextDecoder().decode(line), "ping\n");
  client.close();
  server.close();
  await loop.runUntilComplete(client.waitClosed());
  await loop.runUntilComplete(server.waitClosed());
  loop.close();
});

Deno.test("Connection.close() makes isClosing() true and waitClosed() finish, once", async () => {
  const loop = new VirtualTimeLoop();
  const [client, server] = ends(loop);
  assertFalse(client.isClosing());
  client.close();
  client.close();
  assert(client.isClosing());
  await loop.runUntilComplete(client.waitClosed());
  assert(client.waitClosed().done());
  // The peer reads the end of the stream.
  const rest = await loop.runUntilComplete(server.reader.read());
  assertEquals(rest.length, 0);
  server.close();
  await loop.runUntilComplete(server.waitClosed());
  loop.close();
});

Deno.test("Connection.getExtraInfo() asks the transport, with a default", () => {
  const loop = new VirtualTimeLoop();
  const [client, server] = ends(loop);
  assertEquals(client.getExtraInfo("no-such-info", "fallback"), "fallback");
  client.writer.transport.abort();
  server.writer.transport.abort();
  loop.close();
});

Deno.test("Connection prints its state and closes under await using", async () => {
  const loop = new VirtualTimeLoop();
  const [client, server] = ends(loop);
  assert(String(client).includes("Connection open"));
  await loop.runUntilComplete(loop.createTask(async () => {
    await using conn = server;
    assertFalse(conn.isClosing());
  }));
  assert(server.isClosing());
  assert(String(server).includes("closing"));
  client.close();
  await loop.runUntilComplete(client.waitClosed());
  loop.close();
});
