// LineReceiver against CPython's asyncio streams over TCP on 127.0.0.1: a
// Python client (asyncio.open_connection + readline) against a tulip
// LineReceiver server, and a tulip LineReceiver client against a Python
// asyncio.start_server. Lines include an empty one, one split across
// writes in the middle of its "\r\n", non-ASCII text and one of exactly
// maxLength bytes. Each Python process bounds itself with wait_for, and is
// killed by pid if it outlives the test.

import { assertEquals, assertInstanceOf } from "@std/assert";
import { LimitOverrunError } from "../../futures/errors.ts";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { LineReceiver } from "../../protocols/line_receiver.ts";
import { bytes, portOf, run, text } from "./_stream_helpers.ts";
import { HAS_PYTHON, needing } from "./_tools.ts";

const HOST = "127.0.0.1";
const MAX_LENGTH = 1000;

/** ASCII upper case, byte for byte (other bytes unchanged). */
function upper(line: Uint8Array): Uint8Array {
  return line.map((b) => (b >= 0x61 && b <= 0x7a ? b - 0x20 : b));
}

/** Ends a Python child that is still running; waits for it either way. */
async function reap(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch {
    // Exited already.
  }
  await child.status;
}

// Talks to the line server at argv[1]: lines one by one, a line split
// inside its "\r\n", a line of exactly argv[2] bytes, then a line one byte
// longer, after which the server hangs up. Prints a JSON summary.
const CLIENT = `
import asyncio, json, sys

async def main(port, max_length):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    async def ask(line):
        writer.write(line + b"\\r\\n")
        await writer.drain()
        answers.append((await reader.readline()).decode())
    for line in [b"hello", b"", b"Mixed Case 123", "h\\u00e9llo w\\u00f6rld".encode()]:
        await ask(line)
    # One line in three writes, split between its CR and LF.
    for piece in [b"sp", b"lit\\r", b"\\n"]:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.02)
    answers.append((await reader.readline()).decode())
    # Two lines in one write.
    writer.write(b"one\\r\\ntwo\\r\\n")
    answers.append((await reader.readline()).decode())
    answers.append((await reader.readline()).decode())
    long = bytes(97 + i % 26 for i in range(max_length))
    writer.write(long + b"\\r\\n")
    long_answer = await reader.readline()
    # One byte over the limit: the server closes the connection.
    writer.write(long + b"z\\r\\n")
    after = await reader.read()
    writer.close()
    print(json.dumps({
        "answers": answers,
        "long_ok": long_answer == long.upper() + b"\\r\\n",
        "after_over_long": after.decode(),
    }))

asyncio.run(asyncio.wait_for(main(int(sys.argv[1]), int(sys.argv[2])), 15))
`;

Deno.test({
  name: needing(
    "LineReceiver serves a CPython asyncio streams client line by line",
    "python3",
    HAS_PYTHON,
  ),
  ignore: !HAS_PYTHON,
  fn: async () => {
    const loop = new DenoEventLoop();
    const received: string[] = [];
    const lost = loop.createFuture<Error | undefined>();
    await run(loop, async () => {
      const server = await loop.createServer(
        () =>
          new LineReceiver({
            chunkReceived(line, protocol) {
              received.push(text(line));
              protocol.writeLine(upper(line));
            },
            connectionLost(exc) {
              lost.setResult(exc);
            },
          }, { maxLength: MAX_LENGTH }),
        HOST,
        0,
      );
      const child = new Deno.Command("python3", {
        args: ["-c", CLIENT, String(portOf(server)), String(MAX_LENGTH)],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      try {
        const out = await child.output();
        assertEquals(out.code, 0, text(out.stderr));
        assertEquals(JSON.parse(text(out.stdout)), {
          answers: [
            "HELLO\r\n",
            "\r\n",
            "MIXED CASE 123\r\n",
            "HéLLO WöRLD\r\n",
            "SPLIT\r\n",
            "ONE\r\n",
            "TWO\r\n",
          ],
          long_ok: true,
          after_over_long: "",
        });
      } finally {
        await reap(child);
      }
      assertInstanceOf(await lost, LimitOverrunError);
      server.close();
      await server.waitClosed();
    });
    loop.close();
    assertEquals(received.slice(0, 7), [
      "hello",
      "",
      "Mixed Case 123",
      "héllo wörld",
      "split",
      "one",
      "two",
    ]);
    assertEquals(received[7].length, MAX_LENGTH);
    assertEquals(received.length, 8);
  },
});

// An asyncio.start_server that answers each line with "<its length in
// bytes>:<its text reversed>", serves one client until its EOF, then prints the lines it
// read as JSON, and exits.
const SERVER = `
import asyncio, json, sys

async def main():
    lines = []
    finished = asyncio.Event()
    async def handle(reader, writer):
        while True:
            line = await reader.readline()
            if not line:
                break
            body = line.rstrip(b"\\r\\n")
            lines.append(body.decode())
            reversed_text = body.decode()[::-1].encode()
            writer.write(str(len(body)).encode() + b":" + reversed_text + b"\\r\\n")
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        finished.set()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await finished.wait()
    server.close()
    await server.wait_closed()
    print(json.dumps(lines), flush=True)

asyncio.run(asyncio.wait_for(main(), 15))
`;

Deno.test({
  name: needing(
    "LineReceiver talks to a CPython asyncio streams server",
    "python3",
    HAS_PYTHON,
  ),
  ignore: !HAS_PYTHON,
  fn: async () => {
    const loop = new DenoEventLoop();
    const child = new Deno.Command("python3", {
      args: ["-c", SERVER],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const stdout = child.stdout.getReader();
    let printed = "";
    async function nextLine(): Promise<string> {
      while (!printed.includes("\n")) {
        const { value, done } = await stdout.read();
        if (done) throw new Error(`Python exited early: ${await stderr}`);
        printed += text(value);
      }
      const at = printed.indexOf("\n");
      const line = printed.slice(0, at);
      printed = printed.slice(at + 1);
      return line;
    }
    // The answer to the long line is exactly MAX_LENGTH bytes: "996:" + 996.
    const long = "x".repeat(MAX_LENGTH - 4);
    const sent = ["first", "", "  spaces  ", "ünïcödé", long, "last"];
    try {
      const port = Number(await nextLine());
      const answers: string[] = [];
      const lost = loop.createFuture<Error | undefined>();
      await run(loop, async () => {
        const [transport, client] = await loop.createConnection(
          () =>
            new LineReceiver({
              chunkReceived(line) {
                answers.push(text(line));
              },
              connectionLost(exc) {
                lost.setResult(exc);
              },
            }, { maxLength: MAX_LENGTH }),
          HOST,
          port,
        );
        client.writeLine(sent[0]);
        client.writeLine(sent[1]);
        // The rest in one write of several lines.
        transport.writelines(sent.slice(2).map((s) => bytes(`${s}\r\n`)));
        transport.writeEof();
        // The server closes after our EOF, once it answered everything.
        assertEquals(await lost, undefined);
      });
      const reverse = (s: string) => [...s].reverse().join("");
      assertEquals(
        answers,
        sent.map((s) => `${bytes(s).length}:${reverse(s)}`),
      );
      assertEquals(bytes(answers[4]).length, MAX_LENGTH);
      assertEquals(JSON.parse(await nextLine()), sent);
      while (!(await stdout.read()).done) { /* drain */ }
      const status = await child.status;
      assertEquals(status.code, 0, await stderr);
    } finally {
      loop.close();
      await reap(child);
      await stderr;
    }
  },
});
