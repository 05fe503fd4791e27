// getaddrinfo and getnameinfo through the system resolver (the hosts file
// maps localhost; nothing here needs outside DNS). Needs --allow-net.

import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { DenoEventLoop } from "../../loop/deno_event_loop.ts";
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
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--no-lock", "--allow-read", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = out.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const { stdout, stderr } = await out.output();
  const text = new TextDecoder().decode(stdout).trim();
  assertEquals(
    text,
    'NotCapable: Cannot resolve host: requires net access to "localhost", run again with the --allow-net flag, received "localhost"',
    new TextDecoder().decode(stderr),
  );
});
