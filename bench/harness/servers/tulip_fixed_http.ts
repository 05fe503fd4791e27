/**
 * A tulip `Protocol` answering HTTP the way `raw_deno_http.ts` does: it
 * counts the requests in what it receives (a request ends at `\r\n\r\n`;
 * no bodies, no parsing) and writes the same fixed keep-alive response
 * for each. Set beside `raw-deno-http` it measures tulip's loop and
 * transport alone; beside `tulip-http`, what the HTTP layer adds.
 *
 * ```sh
 * deno run -A bench/harness/servers/tulip_fixed_http.ts 8000
 * ```
 *
 * Prints `listening <port>` when ready, then serves forever.
 *
 * @module
 */

import {
  newEventLoop,
  Protocol,
  setEventLoop,
  type Transport,
} from "../../../mod.ts";

const port = Number(Deno.args[0] ?? "8000");
const RESPONSE = new TextEncoder().encode(
  "HTTP/1.1 200 OK\r\n" +
    "Content-Type: text/plain\r\n" +
    "Content-Length: 13\r\n" +
    "\r\n" +
    "Hello, World!",
);
const CR = 13;
const LF = 10;

class FixedHttp extends Protocol {
  #transport: Transport | null = null;
  // The last three bytes seen, so a terminator cut between reads counts.
  #tail = 0;

  override connectionMade(transport: Transport): void {
    this.#transport = transport;
  }

  override dataReceived(data: Uint8Array): void {
    let tail = this.#tail;
    for (let i = 0; i < data.length; i++) {
      tail = ((tail << 8) | data[i]) >>> 0;
      if (tail === ((CR << 24) | (LF << 16) | (CR << 8) | LF) >>> 0) {
        this.#transport!.write(RESPONSE);
      }
    }
    this.#tail = tail;
  }
}

const loop = newEventLoop();
setEventLoop(loop);
await loop.runUntilComplete(
  loop.createServer(() => new FixedHttp(), "127.0.0.1", port),
);
console.log(`listening ${port}`);
await loop.runForever();
