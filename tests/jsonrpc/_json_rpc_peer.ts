// A hand-driven JSON-RPC peer for the protocol tests: it sends exact bytes
// in a given framing and decodes what comes back.

import { Protocol } from "../../protocols/protocol.ts";
import { JsonSplitter } from "../../jsonrpc/_json_splitter.ts";
import type { JsonRpcFraming } from "../../jsonrpc/json_rpc_protocol.ts";
import type { Transport } from "../../transports/transport.ts";
import { bytes, text } from "../_every_split.ts";

/** Frames JSON texts (given as strings or bytes) for `framing`. */
export function frame(
  framing: JsonRpcFraming,
  ...messages: (string | Uint8Array)[]
): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const m of messages) {
    const b = typeof m === "string" ? bytes(m) : m;
    if (framing === "length") {
      const n = b.length;
      parts.push(
        new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]),
      );
    }
    parts.push(b);
    if (framing === "newline") parts.push(new Uint8Array([10]));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Cuts bytes written by a JsonRpcProtocol into its messages' texts. */
export function unframe(framing: JsonRpcFraming, data: Uint8Array): string[] {
  if (framing === "newline") {
    const t = text(data);
    if (t !== "" && !t.endsWith("\n")) throw new Error(`Unterminated: ${t}`);
    return t.split("\n").slice(0, -1);
  }
  if (framing === "length") {
    const out: string[] = [];
    let at = 0;
    while (at < data.length) {
      const n = new DataView(data.buffer, data.byteOffset + at).getUint32(0);
      out.push(text(data.subarray(at + 4, at + 4 + n)));
      at += 4 + n;
    }
    return out;
  }
  const out: string[] = [];
  const splitter = new JsonSplitter((v) => out.push(text(v)), Infinity, () => {
    throw new Error("Too long");
  });
  splitter.dataReceived(data);
  return out;
}

/** Records everything the other side does. */
export class Peer extends Protocol {
  transport: Transport | null = null;
  #data: number[] = [];
  eof = false;
  lost = false;
  lostWith: Error | undefined = undefined;

  override connectionMade(transport: Transport): void {
    this.transport = transport;
  }

  override dataReceived(data: Uint8Array): void {
    this.#data.push(...data);
  }

  override eofReceived(): boolean {
    this.eof = true;
    return true;
  }

  override connectionLost(exc?: Error): void {
    this.lost = true;
    this.lostWith = exc;
  }

  /** Everything received so far. */
  get received(): Uint8Array {
    return new Uint8Array(this.#data);
  }

  /** The messages received so far, parsed. */
  messages(framing: JsonRpcFraming): unknown[] {
    return unframe(framing, this.received).map((t) => JSON.parse(t));
  }

  /** Sends raw bytes. */
  send(data: Uint8Array | string): void {
    this.transport!.write(typeof data === "string" ? bytes(data) : data);
  }
}
