// README.md's "Limits and timeouts" table against the options it names:
// each row's default is the `@default` of the option's JSDoc (and, where
// the code shows the value, the code's own default), so that changing
// one without the others fails here.

import { assert, assertEquals } from "@std/assert";
import { JsonRpcProtocol, StreamReader } from "../mod.ts";

const root = new URL("../", import.meta.url);

/** Where each option's JSDoc is: a file and an interface. */
const WHERE: Record<string, [file: string, iface: string]> = {
  server: ["http/http_server_protocol.ts", "HttpServerProtocolOptions"],
  client: ["http/http_client_protocol.ts", "HttpClientProtocolOptions"],
  jsonrpc: ["jsonrpc/json_rpc_protocol.ts", "JsonRpcProtocolOptions"],
  connect: ["loop/event_loop.ts", "CreateConnectionOptions"],
  listen: ["loop/event_loop.ts", "CreateServerOptions"],
  startTls: ["loop/event_loop.ts", "StartTlsOptions"],
  shutdown: ["loop/event_loop.ts", "ServerShutdownOptions"],
  engineClose: ["facade/async_engine.ts", "AsyncEngineCloseOptions"],
  engineListen: ["facade/async_engine.ts", "ListenOptions"],
  chunk: ["protocols/chunk_protocol.ts", "ChunkProtocolOptions"],
  int32: ["protocols/int32_string_receiver.ts", "Int32StringReceiverOptions"],
  reader: ["streams/stream_reader.ts", "StreamReaderOptions"],
  executor: ["loop/worker_executor.ts", "WorkerExecutorOptions"],
  workers: ["loop/deno_serve_workers.ts", "ServeWorkersOptions"],
};

/**
 * The rows checked: section, the start of the first cell, where the
 * options are, and the options (several for a cell such as `16 KiB / 100`).
 */
const ROWS = `
HTTP server | idle connection | server | keepAliveTimeout
HTTP server | time from a head's first byte | server | headersTimeout
HTTP server | whole request | server | requestTimeout
HTTP server | answer not being read | server | writeTimeout
HTTP server | request line | server | maxLineBytes
HTTP server | head size | server | maxHeaderBytes maxHeaders
HTTP server | request body | server | maxBodyBytes
HTTP server | chunk extensions | server | maxChunkExtensionBytes
HTTP server | requests per connection | server | maxRequestsPerConnection
HTTP client | time to the response head | client | headersTimeout
HTTP client | gap between body bytes | client | bodyTimeout
HTTP client | response head size | client | maxHeaderBytes maxHeaders maxLineBytes
HTTP client | response body | client | maxBodyBytes
HTTP client | chunk extensions | client | maxChunkExtensionBytes
JSON-RPC | message size | jsonrpc | maxMessageBytes
JSON-RPC | requests in a batch | jsonrpc | maxBatch
JSON-RPC | calls running at once | jsonrpc | maxConcurrentCalls
Servers | TLS handshake, from accept | listen | handshakeTimeout
Servers | TLS handshake, client side | connect | handshakeTimeout
Servers | STARTTLS upgrade | startTls | handshakeTimeout
Servers | connections waiting to be accepted | listen | backlog
Servers | \`server.shutdown()\` grace | shutdown | grace
Servers | \`AsyncEngine.close()\` grace | engineClose | grace
Servers | \`AsyncEngine\` connections waiting | engineListen | backlog
Framers | a line or chunk | chunk | maxLength
Framers | a message | int32 | maxLength
Framers | a line or \`readuntil()\` chunk | reader | limit
Executor | jobs queued | executor | maxQueued
Workers | a connection held while no worker serves | workers | holdTimeout
`.trim().split("\n").map((line) => line.split(" | "));

/** The table's rows: the section, then the cells (what, default, effect, option). */
async function tableRows(): Promise<string[][]> {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const start = readme.indexOf("## Limits and timeouts");
  assert(start >= 0, "README.md has no Limits and timeouts section");
  const lines = readme.slice(start).split("\n");
  const first = lines.findIndex((line) => line.startsWith("|"));
  const rows: string[][] = [];
  let section = "";
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith("|")) break;
    const cells = line.split(/ \| /).map((c) => c.replace(/^\| ?|\s*\|$/g, ""))
      .map((c) => c.trim());
    const bold = /^\*\*(.+?)\*\* (.*)$/.exec(cells[0]);
    if (bold !== null) {
      section = bold[1];
      cells[0] = bold[2];
    }
    rows.push([section, ...cells]);
  }
  return rows;
}

/** The numbers a default cell states, in order: `16 KiB / 100` is 16384, 100. */
function cellValues(cell: string, count: number): number[] {
  const parts = count === 1 ? [cell] : cell.split(" / ").slice(0, count);
  return parts.map((part) => {
    if (part.startsWith("unlimited")) return Infinity;
    const m = /^(\d[\d,]*)(?: (KiB|MiB))?/.exec(part);
    if (m === null) {
      throw new Error(`no number at the start of ${JSON.stringify(part)}`);
    }
    const n = Number(m[1].replaceAll(",", ""));
    return m[2] === "KiB" ? n * 1024 : m[2] === "MiB" ? n * 1024 * 1024 : n;
  });
}

/** The number an option's JSDoc gives as its `@default`. */
async function jsDocDefault(
  file: string,
  iface: string,
  option: string,
): Promise<number> {
  const source = await Deno.readTextFile(new URL(file, root));
  const start = source.search(new RegExp(`^export interface ${iface}\\b`, "m"));
  assert(start >= 0, `${file} has no interface ${iface}`);
  const body = source.slice(start, source.indexOf("\n}\n", start));
  const m = new RegExp(
    `@default \\{([^}]*)\\}\\s*\\*/\\s*${option}\\?:`,
  ).exec(body);
  if (m === null) {
    throw new Error(`${iface}.${option} in ${file} has no @default`);
  }
  const value = Number(m[1]);
  assert(!Number.isNaN(value), `${iface}.${option}: @default {${m[1]}}`);
  return value;
}

Deno.test("README's limits table names each option and gives its documented default", async () => {
  const rows = await tableRows();
  for (const [section, what, where, names] of ROWS) {
    const row = rows.find(([s, w]) => s === section && w.startsWith(what));
    if (row === undefined) {
      throw new Error(`README.md has no row "${what}" in ${section}`);
    }
    const options = names.split(" ");
    for (const option of options) {
      assert(
        row[4].includes(option),
        `${section}: ${what}: the option cell names no ${option}`,
      );
    }
    const documented = await Promise.all(
      options.map((option) => jsDocDefault(...WHERE[where], option)),
    );
    assertEquals(
      cellValues(row[2], options.length),
      documented,
      `${section}: ${what} (${names})`,
    );
  }
});

Deno.test("the documented defaults are the code's, where the code shows them", async () => {
  const rpc = new JsonRpcProtocol();
  for (const name of ["maxMessageBytes", "maxBatch", "maxConcurrentCalls"]) {
    assertEquals(
      rpc[name as "maxBatch"],
      await jsDocDefault(...WHERE.jsonrpc, name),
      name,
    );
  }
  assertEquals(
    new StreamReader().limit,
    await jsDocDefault(...WHERE.reader, "limit"),
  );
});
