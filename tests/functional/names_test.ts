// getaddrinfo and getnameinfo through the system resolver (the hosts file
// maps localhost; nothing here needs outside DNS). Needs --allow-net.

import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
import { Protocol } from "../../protocols/protocol.ts";
import { openConnection } from "../../streams/open_connection.ts";
import type { Awaitable } from "../../tasks/task.ts";
import { within } from "./_io_helpers.ts";

Deno.test("getaddrinfo() resolves localhost through the hosts file, with the port", async () => {
  const loop = new DenoEventLoop();
  const infos = await within(loop, loop.getaddrinfo("localhost", 8080));
  assert(infos.length > 0);
  assert(
    infos.some((i) => i.hostname === "127.0.0.1" || i.hostname === "::1"),
    JSON.stringify(infos),
  );
  for (const info of infos) {
    assertEquals(info.port, 8080);
    assertEquals(info.family, info.hostname.includes(":") ? 6 : 4);
  }
  const unique = new Set(infos.map((i) => i.hostname));
  assertEquals(unique.size, infos.length);
  loop.close();
});

Deno.test("getaddrinfo() restricts the answer to one family", async () => {
  const loop = new DenoEventLoop();
  const infos = await within(
    loop,
    loop.getaddrinfo("localhost", 0, { family: 4 }),
  );
  assert(infos.length > 0);
  assert(infos.every((i) => i.family === 4));
  loop.close();
});

Deno.test("getaddrinfo() returns a numeric address as it is", async () => {
  const loop = new DenoEventLoop();
  assertEquals(await within(loop, loop.getaddrinfo("127.0.0.1", 53)), [
    { family: 4, hostname: "127.0.0.1", port: 53 },
  ]);
  assertEquals(await within(loop, loop.getaddrinfo("::1", 53)), [
    { family: 6, hostname: "::1", port: 53 },
  ]);
  loop.close();
});

Deno.test("getaddrinfo() applies the family to a numeric address too, as the C library does", async () => {
  const loop = new DenoEventLoop();
  assertEquals(
    await within(loop, loop.getaddrinfo("::1", 53, { family: 6 })),
    [{ family: 6, hostname: "::1", port: 53 }],
  );
  await assertRejects(
    () => within(loop, loop.getaddrinfo("::1", 53, { family: 4 })),
    Deno.errors.NotFound,
    'Cannot resolve host: "::1" is an IPv6 address and family 4 was asked for',
  );
  await assertRejects(
    () => within(loop, loop.getaddrinfo("127.0.0.1", 53, { family: 6 })),
    Deno.errors.NotFound,
    'Cannot resolve host: "127.0.0.1" is an IPv4 address and family 6 was asked for',
  );
  loop.close();
});

Deno.test("getaddrinfo() fails with NotFound naming an unknown host", async () => {
  const loop = new DenoEventLoop();
  await assertRejects(
    () => within(loop, loop.getaddrinfo("no-such-host.invalid", 80)),
    Deno.errors.NotFound,
    'Cannot resolve host: no such host is known, received "no-such-host.invalid"',
  );
  loop.close();
});

Deno.test("getaddrinfo() checks its arguments at once", () => {
  const loop = new DenoEventLoop();
  assertThrows(
    () => loop.getaddrinfo(42 as unknown as string, 80),
    TypeError,
    "host must be a string, received number",
  );
  assertThrows(() => loop.getaddrinfo("", 80), RangeError, "must not be empty");
  assertThrows(
    () => loop.getaddrinfo("localhost", 70000),
    RangeError,
    "port must be an integer from 0 to 65535, received 70000",
  );
  assertThrows(
    () => loop.getaddrinfo("localhost", 80, { family: 5 as 4 }),
    RangeError,
    "family must be 0, 4 or 6, received 5",
  );
  loop.close();
});

Deno.test("getnameinfo() names 127.0.0.1 and a well-known port", async () => {
  const loop = new DenoEventLoop();
  const [host, service] = await within(
    loop,
    loop.getnameinfo({ hostname: "127.0.0.1", port: 22 }),
  );
  assertEquals(host, "localhost");
  // "ssh" where /etc/services lists it, else the number.
  assert(service === "ssh" || service === "22", service);
  loop.close();
});

Deno.test("getnameinfo() keeps numbers with NI_NUMERICHOST and NI_NUMERICSERV", async () => {
  const loop = new DenoEventLoop();
  assertEquals(
    await within(
      loop,
      loop.getnameinfo({ hostname: "127.0.0.1", port: 22 }, 1 | 2),
    ),
    ["127.0.0.1", "22"],
  );
  const [host, service] = await within(
    loop,
    loop.getnameinfo({ hostname: "localhost", port: 65000 }, 2),
  );
  assertEquals([host, service], ["localhost", "65000"]);
  loop.close();
});

Deno.test("getnameinfo() gives an address without a name in numeric form, with its service's name, and fails only with NI_NAMEREQD, as the C library's getnameinfo() does", async () => {
  const loop = new DenoEventLoop();
  // TEST-NET-1 (RFC 5737): no hosts file or DNS names it.
  const NONAME = "192.0.2.1";
  const [, http] = await within(
    loop,
    loop.getnameinfo({ hostname: "127.0.0.1", port: 80 }),
  );
  for (const flags of [0, 1]) {
    assertEquals(
      await within(
        loop,
        loop.getnameinfo({ hostname: NONAME, port: 80 }, flags),
      ),
      [NONAME, http],
      `flags ${flags}`,
    );
  }
  assertEquals(
    await within(loop, loop.getnameinfo({ hostname: NONAME, port: 80 }, 2)),
    [NONAME, "80"],
  );
  await assertRejects(
    () => within(loop, loop.getnameinfo({ hostname: NONAME, port: 80 }, 8)),
    Deno.errors.NotFound,
    `Cannot find a name for the address: it has none, received "${NONAME}"`,
  );
  // NI_NUMERICHOST with NI_NAMEREQD fails for every address, one with a
  // name too, as glibc's and BSD's getnameinfo() do (EAI_NONAME), and so
  // asyncio's.
  for (const hostname of [NONAME, "127.0.0.1"]) {
    await assertRejects(
      () => within(loop, loop.getnameinfo({ hostname, port: 80 }, 8 | 1)),
      Deno.errors.NotFound,
      `Cannot find a name for the address: NI_NAMEREQD wants one and NI_NUMERICHOST forbids looking it up, received "${hostname}"`,
    );
  }
  loop.close();
});

Deno.test("getnameinfo() checks its arguments at once", () => {
  const loop = new DenoEventLoop();
  assertThrows(
    () => loop.getnameinfo(null as never),
    TypeError,
    "sockaddr must be { hostname, port }, received null",
  );
  assertThrows(
    () => loop.getnameinfo({ hostname: "127.0.0.1", port: -1 }),
    RangeError,
  );
  assertThrows(
    () => loop.getnameinfo({ hostname: "127.0.0.1", port: 1 }, 64),
    RangeError,
    "received 64",
  );
  loop.close();
});

Deno.test("getaddrinfo() without net permission names the --allow-net flag", async () => {
  // A child Deno without --allow-net: node:dns only says "EPERM" there.
  const script = `
    import { DenoEventLoop } from ${
    JSON.stringify(new URL("../../loop/deno_event_loop.ts", import.meta.url))
  };
    const loop = new DenoEventLoop();
    try {
      await loop.runUntilComplete(loop.getaddrinfo("localhost", 80));
      console.log("resolved");
    } catch (e) {
      console.log(e.name + ": " + e.message);
    }
    loop.close();
  `;
  const { out, err } = await runChild(script, []);
  assertEquals(
    out,
    'NotCapable: Cannot resolve host: requires net access to "localhost", run again with the --allow-net flag, received "localhost"',
    err,
  );
});

Deno.test("getnameinfo() with NI_NUMERICHOST looks up no name: it needs no net permission for the address, as the C library asks no resolver", async () => {
  const loop = new DenoEventLoop();
  const [, http] = await within(
    loop,
    loop.getnameinfo({ hostname: "127.0.0.1", port: 80 }),
  );
  loop.close();
  const script = `
    import { DenoEventLoop } from ${
    JSON.stringify(new URL("../../loop/deno_event_loop.ts", import.meta.url))
  };
    const loop = new DenoEventLoop();
    try {
      const sockaddr = { hostname: "192.0.2.1", port: 80 };
      console.log(JSON.stringify(
        await loop.runUntilComplete(loop.getnameinfo(sockaddr, 1)),
      ));
    } catch (e) {
      console.log(e.name + ": " + e.message);
    }
    loop.close();
  `;
  // Net access to the loopback only (the service's name is looked up
  // there), none to 192.0.2.1: it failed with NotCapable for it.
  const { out, err } = await runChild(script, [
    "--allow-net=127.0.0.1,[::1]",
  ]);
  assertEquals(out, JSON.stringify(["192.0.2.1", http]), err);
});

/** Runs `script` in a child Deno with --allow-read and `flags`. */
async function runChild(
  script: string,
  flags: string[],
): Promise<{ out: string; err: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--no-lock", "--allow-read", ...flags, "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const { stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { out: decoder.decode(stdout).trim(), err: decoder.decode(stderr) };
}

// ---- Connecting to a name that does not resolve ----

// RFC 6761: no `.invalid` name ever resolves. Whether this machine has DNS
// or not, what a connect fails with must be what getaddrinfo() fails with
// for the same name (NotFound when the resolver says there is no such
// host), not Deno's plain Error.
const NOWHERE = "no-such-host.invalid";

/** The error getaddrinfo() fails with for `host`. */
async function lookupError(loop: DenoEventLoop, host: string): Promise<Error> {
  try {
    await within(loop, loop.getaddrinfo(host, 80));
  } catch (error) {
    return error as Error;
  }
  throw new Error(`getaddrinfo("${host}") resolved: cannot test`);
}

async function failure(
  loop: DenoEventLoop,
  aw: Awaitable<unknown>,
): Promise<Error> {
  try {
    await within(loop, aw);
  } catch (error) {
    assertInstanceOf(error, Error);
    return error as Error;
  }
  throw new Error("it succeeded");
}

function assertLikeLookup(error: Error, expected: Error, where: string): void {
  assertEquals(error.constructor, expected.constructor, String(error));
  assertEquals(error.name, expected.name);
  assertStringIncludes(error.message, where);
  assertStringIncludes(error.message, "or use an IP address");
  assert(error.cause instanceof Error, "Deno's error is kept as the cause");
}

Deno.test("createConnection() to a name that does not resolve fails as getaddrinfo() does, naming the host and port", async () => {
  const loop = new DenoEventLoop();
  const expected = await lookupError(loop, NOWHERE);
  const error = await failure(
    loop,
    loop.createConnection(() => new Protocol(), NOWHERE, 80),
  );
  assertLikeLookup(error, expected, `Cannot connect to ${NOWHERE}:80: `);
  if (expected instanceof Deno.errors.NotFound) {
    assertStringIncludes(error.message, "no such host is known");
  }
  // With ssl too (a client certificate takes Deno.connectTls()).
  const tls = await failure(
    loop,
    loop.createConnection(() => new Protocol(), NOWHERE, 443, { ssl: true }),
  );
  assertLikeLookup(tls, expected, `Cannot connect to ${NOWHERE}:443 over TLS`);
  loop.close();
});

Deno.test("openConnection(), sockConnect() and createServer() on a name that does not resolve fail as getaddrinfo() does", async () => {
  const loop = new DenoEventLoop();
  const expected = await lookupError(loop, NOWHERE);
  assertLikeLookup(
    await failure(loop, openConnection(NOWHERE, 8080, { loop })),
    expected,
    `Cannot connect to ${NOWHERE}:8080: `,
  );
  assertLikeLookup(
    await failure(loop, loop.sockConnect({ hostname: NOWHERE, port: 8080 })),
    expected,
    `Cannot connect to ${NOWHERE}:8080: `,
  );
  assertLikeLookup(
    await failure(loop, loop.createServer(() => new Protocol(), NOWHERE, 0)),
    expected,
    `Cannot listen on ${NOWHERE}:0: `,
  );
  loop.close();
});

Deno.test("createConnection() with --allow-net for the name only: the connect itself resolves it, and fails as getaddrinfo() does", async () => {
  // Nothing is resolved before Deno.connect(), which would need access to
  // the resolver's answer: permission scoped to the name is enough.
  const script = `
    import { DenoEventLoop } from ${
    JSON.stringify(new URL("../../loop/deno_event_loop.ts", import.meta.url))
  };
    import { Protocol } from ${
    JSON.stringify(new URL("../../protocols/protocol.ts", import.meta.url))
  };
    const loop = new DenoEventLoop();
    const names = [];
    for (const aw of [
      () => loop.getaddrinfo("${NOWHERE}", 80),
      () => loop.createConnection(() => new Protocol(), "${NOWHERE}", 80),
      () => loop.createConnection(() => new Protocol(), "example.com", 80),
    ]) {
      try {
        await loop.runUntilComplete(aw());
        names.push("connected");
      } catch (e) {
        names.push(e.name);
      }
    }
    console.log(JSON.stringify(names));
    loop.close();
  `;
  const { out, err } = await runChild(script, [`--allow-net=${NOWHERE}`]);
  const [lookup, connect, other] = JSON.parse(
    out || `["no output: ${err}"]`,
  );
  assertEquals(connect, lookup, out);
  assert(lookup !== "NotCapable" && lookup !== "connected", out);
  assertEquals(other, "NotCapable", "another name stays out of bounds");
});
