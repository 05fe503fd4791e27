// createServer on a list of hosts and on every interface (host undefined).

import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { Protocol } from "../../protocols/protocol.ts";
import type { Transport } from "../../transports/transport.ts";
import { within } from "./_io_helpers.ts";

/** Writes "hi" and hangs up. */
class Greet extends Protocol {
  override connectionMade(t: Transport) {
    t.write(new TextEncoder().encode("hi"));
    t.close();
  }
}

/** Connects with plain Deno and reads everything. */
async function fetchGreeting(hostname: string, port: number): Promise<string> {
  const conn = await Deno.connect({ hostname, port });
  return await new Response(conn.readable).text();
}

function hasIpv6Loopback(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("createServer() on a list of hosts listens on each, on one port, and lists them all", async () => {
  const loop = new DenoEventLoop();
  const server = await within(
    loop,
    loop.createServer(() => new Greet(), ["127.0.0.1", "127.0.0.2"], 0),
  );
  const addrs = server.addresses() as Deno.NetAddr[];
  assertEquals(addrs.map((a) => a.hostname), ["127.0.0.1", "127.0.0.2"]);
  assertEquals(addrs[0].port, addrs[1].port);
  for (const a of addrs) {
    assertEquals(await within(loop, fetchGreeting(a.hostname, a.port)), "hi");
  }
  server.close();
  await within(loop, server.waitClosed());
  loop.close();
});

Deno.test("createServer() with host undefined listens on every interface, IPv4 and IPv6 where there is IPv6", async () => {
  const loop = new DenoEventLoop();
  const server = await within(
    loop,
    loop.createServer(() => new Greet(), undefined, 0),
  );
  const addrs = server.addresses() as Deno.NetAddr[];
  assert(addrs.length === 1 || addrs.length === 2);
  for (const a of addrs) {
    assert(a.hostname === "::" || a.hostname === "0.0.0.0");
  }
  const port = addrs[0].port;
  assert(addrs.every((a) => a.port === port));
  assertEquals(await within(loop, fetchGreeting("127.0.0.1", port)), "hi");
  if (hasIpv6Loopback()) {
    assertEquals(addrs[0].hostname, "::");
    assertEquals(await within(loop, fetchGreeting("::1", port)), "hi");
  } else {
    console.warn("skipped the ::1 half: this machine has no IPv6 loopback");
  }
  server.close();
  await within(loop, server.waitClosed());
  loop.close();
});

Deno.test("createServer() with host null or \"\" listens on every interface, as asyncio's None and ''", async () => {
  const loop = new DenoEventLoop();
  for (const host of [null, ""]) {
    const server = await within(
      loop,
      loop.createServer(() => new Greet(), host as never, 0),
    );
    const addrs = server.addresses() as Deno.NetAddr[];
    assert(addrs.length === 1 || addrs.length === 2);
    for (const a of addrs) {
      assert(a.hostname === "::" || a.hostname === "0.0.0.0", a.hostname);
    }
    assertEquals(
      await within(loop, fetchGreeting("127.0.0.1", addrs[0].port)),
      "hi",
    );
    server.close();
    await within(loop, server.waitClosed());
  }
  loop.close();
});

Deno.test("createServer() on a list of hosts closes what it opened when one host fails", async () => {
  const loop = new DenoEventLoop();
  const taken = Deno.listen({ hostname: "127.0.0.2", port: 0 });
  const { port } = taken.addr;
  await assertRejects(
    () =>
      within(
        loop,
        loop.createServer(() => new Greet(), ["127.0.0.1", "127.0.0.2"], port),
      ),
    Deno.errors.AddrInUse,
    `Cannot listen on 127.0.0.2:${port}`,
  );
  taken.close();
  // The first host's listener was closed: the port is free there again.
  Deno.listen({ hostname: "127.0.0.1", port }).close();
  loop.close();
});

Deno.test("createServer() checks its list of hosts at once", () => {
  const loop = new DenoEventLoop();
  const make = () => new Greet();
  assertThrows(
    () => loop.createServer(make, [], 0),
    RangeError,
    "Cannot call createServer(): the list of hosts must not be empty, received []",
  );
  assertThrows(
    () => loop.createServer(make, ["127.0.0.1", 1 as never], 0),
    TypeError,
    "Cannot call createServer(): each host must be a string, received number",
  );
  assertThrows(
    () => loop.createServer(make, 1 as never, 0),
    TypeError,
    "host must be a string, a list of strings or undefined, received number",
  );
  loop.close();
});

Deno.test("createServer() binds a host listed twice, or two names of one address, once (asyncio's create_server)", async () => {
  const loop = new DenoEventLoop();
  const cases: [string[], number][] = [
    [["127.0.0.1", "127.0.0.1"], 0],
    [["localhost", "127.0.0.1"], 0],
    [["127.0.0.1", "127.0.0.2", "127.0.0.1"], 0],
  ];
  // A fixed port: the one a probe got (closed again at once).
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const fixed = probe.addr.port;
  probe.close();
  cases.push([["127.0.0.1", "localhost"], fixed]);
  for (const [hosts, port] of cases) {
    const server = await within(
      loop,
      loop.createServer(() => new Greet(), hosts, port),
    );
    const addrs = server.addresses() as Deno.NetAddr[];
    const names = addrs.map((a) => a.hostname);
    assertEquals(new Set(names).size, names.length, `${hosts}: ${names}`);
    assert(addrs.every((a) => a.port === addrs[0].port));
    if (port !== 0) assertEquals(addrs[0].port, port);
    for (const a of addrs) {
      assertEquals(await within(loop, fetchGreeting(a.hostname, a.port)), "hi");
    }
    server.close();
    await within(loop, server.waitClosed());
  }
  loop.close();
});

Deno.test("createServer() with host \"\" listens on every interface, as asyncio's create_server(host='')", async () => {
  const loop = new DenoEventLoop();
  const server = await within(
    loop,
    loop.createServer(() => new Greet(), "", 0),
  );
  const addrs = server.addresses() as Deno.NetAddr[];
  assert(addrs.every((a) => a.hostname === "::" || a.hostname === "0.0.0.0"));
  assertEquals(
    await within(loop, fetchGreeting("127.0.0.1", addrs[0].port)),
    "hi",
  );
  server.close();
  await within(loop, server.waitClosed());
  loop.close();
});
