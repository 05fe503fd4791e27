// A server run as a child process by accept_test.ts, under a low
// `ulimit -n`: it greets each connection with "ok\n", keeps it open until
// the client closes, prints its port on stdout, writes one line per
// exception-handler report on stderr ("report <message> <code>"), and
// closes when its stdin ends, printing "closed <connections made>".

import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { Protocol } from "../../protocols/protocol.ts";
import type { Transport } from "../../transports/transport.ts";

const loop = new DenoEventLoop();
const encoder = new TextEncoder();
let made = 0;

loop.setExceptionHandler((_loop, context) => {
  const code = (context.exception as { code?: unknown } | undefined)?.code;
  Deno.stderr.writeSync(
    encoder.encode(`report ${context.message} ${String(code)}\n`),
  );
});

class Greet extends Protocol {
  override connectionMade(transport: Transport): void {
    made++;
    transport.write(encoder.encode("ok\n"));
  }
}

const server = await loop.runUntilComplete(
  loop.createServer(() => new Greet(), "127.0.0.1", 0),
);
const { port } = server.addresses()[0] as Deno.NetAddr;
Deno.stdout.writeSync(encoder.encode(`${port}\n`));

// Stdin's end is the signal to stop.
const stdinDone = loop.createFuture<void>();
(async () => {
  const buffer = new Uint8Array(64);
  while (await Deno.stdin.read(buffer) !== null) {
    // Nothing to read but the end.
  }
})().finally(() => stdinDone.setResult(undefined));
await loop.runUntilComplete(stdinDone);
server.close();
server.abortClients();
await loop.runUntilComplete(server.waitClosed());
loop.close();
Deno.stdout.writeSync(encoder.encode(`closed ${made}\n`));
