import { assertEquals, assertThrows } from "@std/assert";
import {
  broadcastRefusal,
  checkAddrinfoArgs,
  checkHost,
  checkMulticastGroup,
  checkPort,
  checkUnixPath,
  ipFamily,
} from "../../transports/address_checks.ts";

Deno.test("checkPort takes 0 to 65535 and refuses the rest in one wording", () => {
  assertEquals(checkPort(0, "call createServer()"), 0);
  assertEquals(checkPort(65535, "call createServer()"), 65535);
  assertThrows(
    () => checkPort("80", "call createServer()"),
    TypeError,
    "Cannot call createServer(): port must be a number, received string",
  );
  for (const bad of [-1, 65536, 1.5, NaN]) {
    assertThrows(
      () => checkPort(bad, "call createConnection()"),
      RangeError,
      "Cannot call createConnection(): port must be an integer from 0 to 65535, received",
    );
  }
});

Deno.test("checkHost refuses what is not a non-empty string", () => {
  assertEquals(checkHost("a", "call getnameinfo()"), "a");
  assertThrows(
    () => checkHost(7, "call getnameinfo()"),
    TypeError,
    "Cannot call getnameinfo(): host must be a string, received number",
  );
  assertThrows(() => checkHost("", "call getnameinfo()"), RangeError);
});

Deno.test("checkAddrinfoArgs checks host, port, family and the numeric options", () => {
  checkAddrinfoArgs("localhost", 80);
  checkAddrinfoArgs("localhost", 80, {
    family: 6,
    type: 1,
    proto: 6,
    flags: 0,
  });
  assertThrows(
    () => checkAddrinfoArgs("localhost", 80, { family: 5 as 4 }),
    RangeError,
    "Cannot call getaddrinfo(): family must be 0, 4 or 6, received 5",
  );
  assertThrows(
    () =>
      checkAddrinfoArgs("localhost", 80, { type: "x" as unknown as number }),
    TypeError,
    "Cannot call getaddrinfo(): type must be a number, received string",
  );
  assertThrows(() => checkAddrinfoArgs("", 80), RangeError);
  assertThrows(() => checkAddrinfoArgs("h", 70000), RangeError);
});

Deno.test("ipFamily tells numeric addresses from names", () => {
  assertEquals(ipFamily("10.0.0.1"), 4);
  assertEquals(ipFamily("256.0.0.1"), 0);
  assertEquals(ipFamily("fe80::1%eth0"), 6);
  assertEquals(ipFamily("example.com"), 0);
});

Deno.test("checkMulticastGroup checks the group and the interface of its family", () => {
  assertEquals(checkMulticastGroup("joinMulticast", "ff02::1", undefined), [
    6,
    "ff02::1%0",
    0,
  ]);
  assertEquals(
    checkMulticastGroup("leaveMulticast", "224.0.0.1", "10.0.0.2"),
    [4, "224.0.0.1%10.0.0.2", "10.0.0.2"],
  );
  assertThrows(
    () => checkMulticastGroup("joinMulticast", 7, undefined),
    TypeError,
    "Cannot call joinMulticast(): group must be a string, received number",
  );
  assertThrows(
    () => checkMulticastGroup("joinMulticast", "240.0.0.1", undefined),
    RangeError,
    "group must be an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address",
  );
  assertThrows(
    () => checkMulticastGroup("joinMulticast", "224.0.0.1", 3),
    TypeError,
    "for an IPv4 group, iface must be the interface's IPv4 address, received 3",
  );
  assertThrows(
    () => checkMulticastGroup("joinMulticast", "ff02::1", -1),
    TypeError,
    "for an IPv6 group, iface must be the interface's index",
  );
});

Deno.test("broadcastRefusal() says why a send to a broadcast address is refused, in one set of words for every loop", () => {
  assertEquals(
    broadcastRefusal({ hostname: "255.255.255.255", port: 9 }, 3),
    "Cannot send to 255.255.255.255:9: it is a broadcast address and the endpoint was made without allowBroadcast: true, received 3 bytes",
  );
});

Deno.test("checkUnixPath() reads a file: URL as Deno's file APIs do: a stray % kept, a host refused", () => {
  const what = "call createUnixServer()";
  assertEquals(
    checkUnixPath(new URL("file:///tmp/a%20b.sock"), what),
    "/tmp/a b.sock",
  );
  // Deno.stat(new URL("file:///tmp/100%zz")) reads /tmp/100%zz.
  assertEquals(
    checkUnixPath(new URL("file:///tmp/100%zz"), what),
    "/tmp/100%zz",
  );
  // localhost is no host in a file: URL.
  assertEquals(
    checkUnixPath(new URL("file://localhost/tmp/a.sock"), what),
    "/tmp/a.sock",
  );
  // Another machine's path is not this one's (Deno: "Host must be empty").
  assertThrows(
    () => checkUnixPath(new URL("file://server/tmp/a.sock"), what),
    TypeError,
    'Cannot call createUnixServer(): path must be a file: URL without a host, received "file://server/tmp/a.sock"',
  );
});
