/**
 * What the in-process HTTP benches share (`http_bench.ts`, `http_cpu.ts`):
 * the request heads, and a connection that hands `HttpServerProtocol`
 * each request as a view of a larger chunk, as a transport does, and drops
 * the answers.
 *
 * @module
 */

import type { Protocol, Transport } from "../mod.ts";

/** `wrk`'s two-line GET. */
export const WRK = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n";

/** A browser-sized GET with eight fields. */
export const BROWSER = "GET /api/items?id=12345 HTTP/1.1\r\n" +
  "Host: example.com\r\n" +
  "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101\r\n" +
  "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
  "Accept-Language: en-US,en;q=0.5\r\n" +
  "Accept-Encoding: gzip, deflate, br\r\n" +
  "Connection: keep-alive\r\n" +
  "Cookie: session=abcdef0123456789; theme=dark\r\n" +
  "Cache-Control: max-age=0\r\n\r\n";

const CHUNK = 8 * 1024;
let written = 0;

/** A transport that counts what is written and drops it. */
export const sink = {
  write(data: Uint8Array) {
    written += data.length;
  },
  writelines(list: Uint8Array[]) {
    for (const data of list) written += data.length;
  },
  getExtraInfo(name: string) {
    return {
      transport: "tcp",
      hostname: "127.0.0.1",
      port: name === "peername" ? 40000 : 8000,
    };
  },
  pauseReading() {},
  resumeReading() {},
  close() {},
  isClosing: () => false,
  canWriteEof: () => true,
} as unknown as Transport;

/**
 * Hands `protocol` (connected to `sink`) `count` copies of `head`, each in
 * a fresh view of a chunk; throws if nothing was answered.
 */
export function feed(protocol: Protocol, head: string, count: number): void {
  const bytes = new TextEncoder().encode(head);
  const before = written;
  let chunk = new Uint8Array(CHUNK);
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (chunk.length - at < bytes.length) {
      chunk = new Uint8Array(CHUNK);
      at = 0;
    }
    chunk.set(bytes, at);
    protocol.dataReceived(chunk.subarray(at, at + bytes.length));
    at += bytes.length;
  }
  if (written === before) throw new Error("Bench wrote no response");
}
