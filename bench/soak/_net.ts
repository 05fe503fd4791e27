/**
 * The clients' side of the soak suite: raw `Deno.connect` sockets, a
 * minimal HTTP/1.1 response reader, latency probes, and the python3
 * helper that sends resets.
 *
 * @module
 */

import { onPath } from "../harness/_proc.ts";

/** Where every server of the suite listens. */
export const HOST = "127.0.0.1";

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/** Opens a TCP connection to the server under test. */
export function connect(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: HOST, port });
}

/** Closes a connection, ignoring that it may be closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Closed already.
  }
}

/**
 * Writes all of `data`; `progress` hears each partial write's byte count.
 * Rejects when the connection fails or is closed under it.
 */
export async function writeAll(
  conn: Deno.Conn,
  data: Uint8Array,
  progress?: (n: number) => void,
): Promise<void> {
  for (let off = 0; off < data.length;) {
    const n = await conn.write(data.subarray(off));
    off += n;
    progress?.(n);
  }
}

/** Encodes text as UTF-8. */
export function bytes(text: string): Uint8Array {
  return ENCODER.encode(text);
}

/** A GET request for `path`, kept alive unless `close`. */
export function get(path = "/", close = false): string {
  return `GET ${path} HTTP/1.1\r\nHost: soak\r\n${
    close ? "Connection: close\r\n" : ""
  }\r\n`;
}

/** Rejects after `ms` with a message naming `what`. */
export function deadline<T>(
  p: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what}: nothing within ${ms} ms`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

/** One parsed HTTP response. */
export interface HttpResponse {
  status: number;
  headers: Map<string, string>;
  body: Uint8Array;
}

/** Buffered reads over one connection: HTTP responses or bytes to EOF. */
export class Reader {
  readonly #conn: Deno.Conn;
  #buf = new Uint8Array(0);
  #eof = false;
  #reset = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const chunk = new Uint8Array(64 * 1024);
    let n: number | null;
    try {
      n = await this.#conn.read(chunk);
    } catch {
      n = null; // a reset ends the stream like EOF does; `reset` tells
      this.#reset = true;
    }
    if (n === null) {
      this.#eof = true;
      return false;
    }
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  /** Whether the stream ended with a reset (or another read error). */
  get reset(): boolean {
    return this.#reset;
  }

  /**
   * Reads one response with a `Content-Length` body; null at EOF before
   * its first byte. Throws on EOF mid-response or on a chunked body.
   */
  async response(): Promise<HttpResponse | null> {
    let end: number;
    for (;;) {
      end = indexOf(this.#buf, HEAD_END);
      if (end >= 0) break;
      if (!await this.#fill()) {
        if (this.#buf.length === 0) return null;
        throw new Error("the connection ended inside a response head");
      }
    }
    const head = DECODER.decode(this.#buf.subarray(0, end)).split("\r\n");
    const status = Number(head[0].split(" ")[1]);
    const headers = new Map<string, string>();
    for (const line of head.slice(1)) {
      const colon = line.indexOf(":");
      headers.set(
        line.slice(0, colon).trim().toLowerCase(),
        line.slice(colon + 1).trim(),
      );
    }
    const length = Number(headers.get("content-length"));
    if (!Number.isInteger(length)) {
      throw new Error(`a response without Content-Length: ${head[0]}`);
    }
    const total = end + 4 + length;
    while (this.#buf.length < total) {
      if (!await this.#fill()) {
        throw new Error("the connection ended inside a response body");
      }
    }
    const body = this.#buf.slice(end + 4, total);
    this.#buf = this.#buf.slice(total);
    return { status, headers, body };
  }

  /** Reads until EOF (or a reset); returns the bytes read. */
  async rest(): Promise<Uint8Array> {
    while (await this.#fill());
    const all = this.#buf;
    this.#buf = new Uint8Array(0);
    return all;
  }
}

const HEAD_END = bytes("\r\n\r\n");

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i <= hay.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (hay[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

/** Counts the occurrences of a byte pattern across a stream of chunks. */
export class PatternCounter {
  readonly #pattern: Uint8Array;
  #tail = new Uint8Array(0);
  count = 0;

  constructor(pattern: string) {
    this.#pattern = bytes(pattern);
  }

  /** Counts what `chunk` adds, including a match split over chunks. */
  push(chunk: Uint8Array): void {
    const data = new Uint8Array(this.#tail.length + chunk.length);
    data.set(this.#tail);
    data.set(chunk, this.#tail.length);
    let from = 0;
    for (let i = indexOf(data, this.#pattern); i >= 0;) {
      this.count++;
      from = i + this.#pattern.length;
      i = indexOf(data, this.#pattern, from);
    }
    const keep = Math.max(from, data.length - this.#pattern.length + 1);
    this.#tail = data.slice(keep);
  }
}

/**
 * The latency in ms of one normal HTTP request on a fresh connection
 * (connect, GET with `Connection: close`, the whole response); throws
 * past `timeoutMs` or on a response other than 200.
 */
export async function httpProbe(
  port: number,
  timeoutMs = 5000,
): Promise<number> {
  const start = performance.now();
  const conn = await deadline(connect(port), timeoutMs, "connect");
  try {
    await writeAll(conn, bytes(get("/", true)));
    const res = await deadline(
      new Reader(conn).response(),
      timeoutMs,
      "a normal request",
    );
    if (res?.status !== 200) {
      throw new Error(`a normal request got ${res?.status ?? "no answer"}`);
    }
    return performance.now() - start;
  } finally {
    closeQuietly(conn);
  }
}

/**
 * The latency in ms of a fresh connection to the echo server: connect,
 * send one byte, get it back — which needs the server to have accepted.
 */
export async function echoProbe(
  port: number,
  timeoutMs = 5000,
): Promise<number> {
  const start = performance.now();
  const conn = await deadline(connect(port), timeoutMs, "connect");
  try {
    await conn.write(new Uint8Array([42]));
    const n = await deadline(
      conn.read(new Uint8Array(1)),
      timeoutMs,
      "the echo of one byte",
    );
    if (n !== 1) throw new Error("the echo server closed without echoing");
    return performance.now() - start;
  } finally {
    closeQuietly(conn);
  }
}

/**
 * Runs `probe` every `everyMs` until `stop` resolves; the latencies in
 * ms, and the error messages of the probes that failed.
 */
export async function probeWhile(
  probe: () => Promise<number>,
  everyMs: number,
  stop: Promise<unknown>,
): Promise<{ latencies: number[]; failures: string[] }> {
  let stopped = false;
  const end = () => {
    stopped = true;
  };
  stop.then(end, end);
  const latencies: number[] = [];
  const failures: string[] = [];
  while (!stopped) {
    try {
      latencies.push(await probe());
    } catch (e) {
      failures.push(e instanceof Error ? e.message : String(e));
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return { latencies, failures };
}

/** The p-th percentile (0–100) of `values`, NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(
    sorted.length - 1,
    Math.ceil((p / 100) * sorted.length) - 1,
  );
  return sorted[Math.max(0, i)];
}

/** Whether `python3` is there to send resets. */
export function hasPython(): boolean {
  return onPath("python3");
}

/** What `_rst.py` prints when it is done. */
export interface RstReport {
  done: number;
  sent: number;
  errors: number;
}

/**
 * Runs `_rst.py <mode> <port> <count> <seconds>`: connections that end
 * in a reset (SO_LINGER {1, 0}), see that script; none is started after
 * `seconds`.
 */
export async function runRst(
  mode: "mid-request" | "mid-response" | "storm",
  port: number,
  count: number,
  seconds: number,
): Promise<RstReport> {
  const script = new URL("./_rst.py", import.meta.url).pathname;
  const out = await new Deno.Command("python3", {
    args: [script, mode, HOST, String(port), String(count), String(seconds)],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `_rst.py ${mode} failed: ${DECODER.decode(out.stderr).slice(-300)}`,
    );
  }
  return JSON.parse(DECODER.decode(out.stdout)) as RstReport;
}
