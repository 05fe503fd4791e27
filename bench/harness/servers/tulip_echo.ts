/**
 * A tulip TCP echo server, in three styles:
 *
 * - `protocol`: a `Protocol` whose `dataReceived` writes the bytes back
 *   (reading pauses while the transport's write buffer is over its
 *   high-water mark).
 * - `buffered`: a `BufferedProtocol` that lends the transport one reused
 *   64 KiB buffer and writes back a copy of each filled part.
 * - `streams`: `startServer` with `reader.read(65536)`, `writer.write()`
 *   and `await writer.drain()`.
 *
 * ```sh
 * deno run -A bench/harness/servers/tulip_echo.ts 8000 protocol
 * ```
 *
 * Prints `listening <port>` when ready, then serves forever.
 *
 * @module
 */

import {
  BufferedProtocol,
  newEventLoop,
  Protocol,
  setEventLoop,
  startServer,
} from "../../../mod.ts";
import type { Transport } from "../../../mod.ts";

const HOST = "127.0.0.1";
const port = Number(Deno.args[0] ?? "8000");
const mode = Deno.args[1] ?? "protocol";

/** Writes back whatever arrives; the data buffer is ours to keep. */
class Echo extends Protocol {
  #t!: Transport;
  override connectionMade(t: Transport): void {
    this.#t = t;
  }
  override dataReceived(data: Uint8Array): void {
    this.#t.write(data);
  }
  override pauseWriting(): void {
    this.#t.pauseReading();
  }
  override resumeWriting(): void {
    this.#t.resumeReading();
  }
}

/** Reads into one reused buffer; writes back a copy of what landed. */
// Zero-copy echo: write a view of the protocol's own buffer and stop
// reading until that write is done, so the next read cannot overwrite it.
// A high-water mark of 0 makes pauseWriting() fire while any byte is
// unsent.
class BufferedEcho extends BufferedProtocol {
  #t!: Transport;
  readonly #buf = new Uint8Array(64 * 1024);
  override connectionMade(t: Transport): void {
    this.#t = t;
    t.setWriteBufferLimits(0);
  }
  override getBuffer(_sizeHint: number): Uint8Array {
    return this.#buf;
  }
  override bufferUpdated(nbytes: number): void {
    this.#t.write(this.#buf.subarray(0, nbytes));
  }
  override pauseWriting(): void {
    this.#t.pauseReading();
  }
  override resumeWriting(): void {
    this.#t.resumeReading();
  }
}

const loop = newEventLoop();
setEventLoop(loop);

switch (mode) {
  case "protocol":
    await loop.runUntilComplete(
      loop.createServer(() => new Echo(), HOST, port),
    );
    break;
  case "buffered":
    await loop.runUntilComplete(
      loop.createServer(() => new BufferedEcho(), HOST, port),
    );
    break;
  case "streams":
    await loop.runUntilComplete(
      startServer(
        async (reader, writer) => {
          try {
            for (;;) {
              const data = await reader.read(65536);
              if (data.length === 0) break;
              writer.write(data);
              await writer.drain();
            }
          } catch {
            // A reset by the peer ends the connection like EOF does.
          }
          writer.close();
        },
        HOST,
        port,
        { loop }, // startServer otherwise looks for a running loop
      ),
    );
    break;
  default:
    console.error(`Cannot start: unknown mode, received "${mode}"`);
    Deno.exit(2);
}

console.log(`listening ${port}`);
await loop.runForever();
