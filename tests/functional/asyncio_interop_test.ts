// Interoperability with CPython's asyncio over TCP on 127.0.0.1: a Python
// asyncio client against a tulip server, and a tulip client against a
// Python asyncio server. Each Python process is bounded by its own
// timeout, and killed by the test if it outlives the test.

import { assertEquals } from "@std/assert";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { bytes, portOf, Recorder, run, text } from "./_stream_helpers.ts";
import { HAS_PYTHON, needing } from "./_tools.ts";

const HOST = "127.0.0.1";

// Sends three lines and a 200 000-byte block to the echo server at
// argv[1], half-closes, reads everything back until EOF, and prints a JSON
// summary.
const CLIENT = `
import asyncio, json, sys

async def main(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = []
    for word in ["alpha", "beta", "gamma"]:
        writer.write(word.encode() + b"\\n")
        await writer.drain()
        lines.append((await reader.readline()).decode().strip())
    block = bytes(i % 251 for i in range(200000))
    writer.write(block)
    writer.write_eof()
    rest = await reader.read()
    writer.close()
    await writer.wait_closed()
    print(json.dumps({"lines": lines, "block_ok": rest == block, "n": len(rest)}))

asyncio.run(asyncio.wait_for(main(int(sys.argv[1])), 15))
`;

// Serves an asyncio Protocol echo on port 0, prints the port, and exits
// when its stdin closes (or after 15 seconds).
const SERVER = `
import asyncio, sys

class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(data)
    def eof_received(self):
        return False

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()
    await server.wait_closed()

asyncio.run(asyncio.wait_for(main(), 15))
`;

Deno.test({
  name: needing(
    "A CPython asyncio client talks to a tulip echo server",
    "python3",
    HAS_PYTHON,
  ),
  ignore: !HAS_PYTHON,
  fn: async () => {
    const loop = new DenoEventLoop();
    await run(loop, async () => {
      const server = await loop.createServer(
        () => new Recorder(loop, { echo: true }),
        HOST,
        0,
      );
      const child = new Deno.Command("python3", {
        args: ["-c", CLIENT, String(portOf(server))],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      try {
        const out = await child.output();
        const stderr = text(out.stderr);
        assertEquals(out.code, 0, stderr);
        assertEquals(JSON.parse(text(out.stdout)), {
          lines: ["alpha", "beta", "gamma"],
          block_ok: true,
          n: 200000,
        });
      } finally {
        try {
          child.kill();
        } catch {
          // Exited already.
        }
      }
      server.close();
      await server.waitClosed();
    });
    loop.close();
  },
});

Deno.test({
  name: needing(
    "A tulip client talks to a CPython asyncio echo server",
    "python3",
    HAS_PYTHON,
  ),
  ignore: !HAS_PYTHON,
  fn: async () => {
    const loop = new DenoEventLoop();
    await run(loop, async () => {
      const child = new Deno.Command("python3", {
        args: ["-c", SERVER],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stdout = child.stdout.getReader();
      const stderr = new Response(child.stderr).text();
      try {
        let first = "";
        while (!first.includes("\n")) {
          const { value, done } = await stdout.read();
          if (done) break;
          first += text(value);
        }
        const port = Number(first.trim());
        const client = new Recorder(loop);
        client.keepOpen = true;
        const [t] = await loop.createConnection(() => client, HOST, port);
        t.write(bytes("hello from tulip\n"));
        const block = new Uint8Array(300_000).map((_, i) => i % 253);
        t.writelines([block.subarray(0, 1000), block.subarray(1000)]);
        t.writeEof();
        await client.eof;
        const got = client.data();
        assertEquals(text(got.subarray(0, 17)), "hello from tulip\n");
        assertEquals(got.subarray(17), block);
        t.close();
        assertEquals(await client.lost, undefined);
      } finally {
        // Closing its stdin ends the Python server.
        await child.stdin.close();
        while (!(await stdout.read()).done) { /* drain */ }
      }
      const status = await child.status;
      assertEquals(status.code, 0, await stderr);
    });
    loop.close();
  },
});
