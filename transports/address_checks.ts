/**
 * The argument checks of the loop's address calls (`createConnection`,
 * `createServer`, `getaddrinfo`, the `sock*` calls), shared by every loop
 * so that a bad port or family is refused in the same words on Deno's
 * network and on a simulated one.
 *
 * @module
 */

import { formatReceived } from "../futures/errors.ts";
import { checkOptions } from "../futures/_runtime.ts";
import type { GetaddrinfoOptions } from "../loop/event_loop.ts";

/**
 * Checks a port number: an integer from 0 to 65535.
 *
 * @param port The port.
 * @param what The call, worded for the error: `"call createServer()"`.
 * @returns The port.
 * @throws {TypeError} When it is not a number:
 * `Cannot call createServer(): port must be a number, received string`.
 * @throws {RangeError} When it is out of range or not whole:
 * `Cannot call createServer(): port must be an integer from 0 to 65535,
 * received 70000`.
 *
 * @example Refusing a port out of range
 * ```ts
 * import { checkPort } from "@tulip/tulip/transports";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * assertEquals(checkPort(8080, "call createServer()"), 8080);
 * assertThrows(() => checkPort(70000, "call createServer()"), RangeError);
 * ```
 */
export function checkPort(port: unknown, what: string): number {
  if (typeof port !== "number") {
    throw new TypeError(
      `Cannot ${what}: port must be a number, received ${typeof port}`,
    );
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot ${what}: port must be an integer from 0 to 65535, received ${
        formatReceived(port)
      }`,
    );
  }
  return port;
}

/**
 * Checks the `host` argument of `createServer()` and says where to listen:
 * the hosts, or `undefined` for every interface (`host` `undefined`, or
 * `null` or `""` as asyncio's `create_server(host=None)` and `host=''`).
 *
 * @param host The host, a list of hosts, or `undefined`.
 * @param what The call, worded for the error: `"call createServer()"`.
 * @returns The hosts to listen on, or `undefined` for every interface.
 * @throws {TypeError} When `host` is neither a string, a list of strings
 * nor `undefined`.
 * @throws {RangeError} When the list is empty, or holds an empty string.
 *
 * @example Every interface, one host, or a list
 * ```ts
 * import { checkServerHosts } from "@tulip/tulip/transports";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * assertEquals(checkServerHosts(undefined, "call createServer()"), undefined);
 * assertEquals(checkServerHosts("", "call createServer()"), undefined);
 * assertEquals(checkServerHosts(null, "call createServer()"), undefined);
 * assertEquals(checkServerHosts("::1", "call createServer()"), ["::1"]);
 * assertThrows(() => checkServerHosts([], "call createServer()"), RangeError);
 * ```
 */
export function checkServerHosts(
  host: unknown,
  what: string,
): readonly string[] | undefined {
  if (host === undefined || host === null || host === "") return undefined;
  if (typeof host === "string") return [host];
  if (!Array.isArray(host)) {
    throw new TypeError(
      `Cannot ${what}: host must be a string, a list of strings or undefined, received ${typeof host}`,
    );
  }
  if (host.length === 0) {
    throw new RangeError(
      `Cannot ${what}: the list of hosts must not be empty, received []`,
    );
  }
  for (const h of host) {
    if (typeof h !== "string") {
      throw new TypeError(
        `Cannot ${what}: each host must be a string, received ${typeof h}`,
      );
    }
    if (h === "") {
      throw new RangeError(
        `Cannot ${what}: a host in the list must not be empty (leave host undefined for every interface), received ""`,
      );
    }
  }
  return [...host];
}

/**
 * Checks the options of `createServer()` and `createUnixServer()`: an
 * object, with `reusePort` and `startServing` booleans when given.
 * `reusePort: null` is no choice (asyncio's `reuse_port=None`, the
 * default); `startServing: null` is refused, as asyncio reads None as
 * false and tulip's default is `true`.
 *
 * @param options What the caller passed as the options.
 * @param what The call, worded for the error: `"call createServer()"`.
 * @throws {TypeError} When `options` is not an object, or a flag not a
 * boolean: `Cannot call createServer(): reusePort must be a boolean,
 * received "yes"`.
 *
 * @example A flag of the wrong type
 * ```ts
 * import { checkServerOptions } from "@tulip/tulip/transports";
 * import { assertThrows } from "@std/assert";
 *
 * checkServerOptions({ reusePort: null }, "call createServer()");
 * assertThrows(
 *   () => checkServerOptions({ reusePort: "yes" }, "call createServer()"),
 *   TypeError,
 * );
 * ```
 */
export function checkServerOptions(options: unknown, what: string): void {
  checkOptions(options, what, "{ ssl, reusePort, backlog }");
  const given = (options ?? {}) as Record<string, unknown>;
  for (const key of ["reusePort", "startServing"]) {
    const value = given[key];
    if (
      value === undefined || typeof value === "boolean" ||
      (value === null && key === "reusePort")
    ) continue;
    throw new TypeError(
      `Cannot ${what}: ${key} must be a boolean, received ${
        formatReceived(value)
      }`,
    );
  }
}

/**
 * Checks a host name or numeric address: a non-empty string.
 *
 * @param host The host.
 * @param what The call, worded for the error: `"call getnameinfo()"`.
 * @returns The host.
 * @throws {TypeError} When it is not a string:
 * `Cannot call getnameinfo(): host must be a string, received number`.
 * @throws {RangeError} When it is empty.
 *
 * @example Refusing an empty host
 * ```ts
 * import { checkHost } from "@tulip/tulip/transports";
 * import { assertThrows } from "@std/assert";
 *
 * checkHost("example.com", "call getaddrinfo()");
 * assertThrows(() => checkHost("", "call getaddrinfo()"), RangeError);
 * ```
 */
export function checkHost(host: unknown, what: string): string {
  if (typeof host !== "string") {
    throw new TypeError(
      `Cannot ${what}: host must be a string, received ${typeof host}`,
    );
  }
  if (host === "") {
    throw new RangeError(`Cannot ${what}: host must not be empty, received ""`);
  }
  return host;
}

/**
 * Checks a Unix socket's path, as `createUnixServer()` and
 * `createUnixConnection()` take it: a non-empty string, or a `file:` URL
 * (asyncio takes path-like objects; Deno's file APIs take URLs).
 *
 * @param path The path or URL.
 * @param what The call, worded for the error: `"call createUnixServer()"`.
 * @returns The path, as a string.
 * @throws {TypeError} When it is neither a non-empty string nor a `file:`
 * URL: `Cannot call createUnixServer(): path must be a non-empty string or
 * a file: URL, received ""`; or a `file:` URL with a host (another
 * machine's path), as Deno's file APIs refuse one.
 *
 * @example A path and a URL
 * ```ts
 * import { checkUnixPath } from "@tulip/tulip/transports";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * const what = "call createUnixServer()";
 * assertEquals(checkUnixPath("/tmp/a.sock", what), "/tmp/a.sock");
 * assertEquals(checkUnixPath(new URL("file:///tmp/my%20a.sock"), what), "/tmp/my a.sock");
 * assertThrows(() => checkUnixPath("", what), TypeError);
 * ```
 */
export function checkUnixPath(path: unknown, what: string): string {
  if (path instanceof URL && path.protocol === "file:") {
    if (path.host !== "") {
      throw new TypeError(
        `Cannot ${what}: path must be a file: URL without a host, received ${
          JSON.stringify(path.href)
        }`,
      );
    }
    // As Deno's file APIs read one: a % that starts no escape is itself.
    return decodeURIComponent(
      path.pathname.replace(/%(?![0-9A-Fa-f]{2})/g, "%25"),
    );
  }
  if (typeof path === "string" && path !== "") return path;
  throw new TypeError(
    `Cannot ${what}: path must be a non-empty string or a file: URL, received ${
      path instanceof URL
        ? JSON.stringify(path.href)
        : JSON.stringify(path) ?? typeof path
    }`,
  );
}

/**
 * Checks `getaddrinfo()`'s arguments (synchronously, so that misuse throws
 * rather than failing the future): a non-empty host, a port, a family of
 * 0, 4 or 6, and numbers for `type`, `proto` and `flags`.
 *
 * @param host The host name or address.
 * @param port The port.
 * @param options The options.
 * @throws {TypeError} When `host` is not a string, `options` not an object
 * (a family given bare), or `port` or an option not a number.
 * @throws {RangeError} When `host` is empty, `port` out of range, or
 * `family` not 0, 4 or 6:
 * `Cannot call getaddrinfo(): family must be 0, 4 or 6, received 5`.
 *
 * @example Refusing an unknown family
 * ```ts
 * import { checkAddrinfoArgs } from "@tulip/tulip/transports";
 * import { assertThrows } from "@std/assert";
 *
 * checkAddrinfoArgs("localhost", 80, { family: 4 });
 * assertThrows(
 *   () => checkAddrinfoArgs("localhost", 80, { family: 5 as 4 }),
 *   RangeError,
 *   "family must be 0, 4 or 6, received 5",
 * );
 * ```
 */
export function checkAddrinfoArgs(
  host: unknown,
  port: unknown,
  options?: GetaddrinfoOptions,
): void {
  checkHost(host, "call getaddrinfo()");
  checkPort(port, "call getaddrinfo()");
  checkOptions(options, "call getaddrinfo()", "{ family, type, proto, flags }");
  const family = options?.family ?? 0;
  if (family !== 0 && family !== 4 && family !== 6) {
    throw new RangeError(
      `Cannot call getaddrinfo(): family must be 0, 4 or 6, received ${
        formatReceived(family)
      }`,
    );
  }
  for (const key of ["type", "proto", "flags"] as const) {
    const value = options?.[key];
    if (value !== undefined && typeof value !== "number") {
      throw new TypeError(
        `Cannot call getaddrinfo(): ${key} must be a number, received ${typeof value}`,
      );
    }
  }
}

const IPV4 =
  /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*(%[\w.-]+)?$/;

/**
 * Tells a numeric address's family from a host name.
 *
 * @param host A host name or a numeric address.
 * @returns 4 or 6 for a numeric address, 0 for anything else (a name).
 *
 * @example Addresses and names
 * ```ts
 * import { ipFamily } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(ipFamily("127.0.0.1"), 4);
 * assertEquals(ipFamily("::1"), 6);
 * assertEquals(ipFamily("localhost"), 0);
 * ```
 */
export function ipFamily(host: string): 0 | 4 | 6 {
  if (IPV4.test(host)) return 4;
  if (IPV6.test(host)) return 6;
  return 0;
}

/**
 * Checks the arguments of `joinMulticast()`/`leaveMulticast()`: an IPv4
 * (224.0.0.0/4) or IPv6 (ff00::/8) multicast group, and an interface — for
 * IPv4 its address (default `"0.0.0.0"`: the system picks), for IPv6 its
 * index (default 0).
 *
 * @param what The method, for the error: `"joinMulticast"`.
 * @param group The group's address.
 * @param iface The interface, as given.
 * @returns The group's family, the membership's key (`group%iface`) and
 * the interface with its default.
 * @throws {TypeError} When `group` is not a string or `iface` not of the
 * group's kind: `Cannot call joinMulticast(): for an IPv4 group, iface must
 * be the interface's IPv4 address, received 3`.
 * @throws {RangeError} When `group` is not a multicast address.
 *
 * @example A group and the default interface
 * ```ts
 * import { checkMulticastGroup } from "@tulip/tulip/transports";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * assertEquals(
 *   checkMulticastGroup("joinMulticast", "239.1.2.3", undefined),
 *   [4, "239.1.2.3%0.0.0.0", "0.0.0.0"],
 * );
 * assertThrows(
 *   () => checkMulticastGroup("joinMulticast", "10.0.0.1", undefined),
 *   RangeError,
 * );
 * ```
 */
export function checkMulticastGroup(
  what: string,
  group: unknown,
  iface: unknown,
): [4 | 6, string, string | number] {
  if (typeof group !== "string") {
    throw new TypeError(
      `Cannot call ${what}(): group must be a string, received ${typeof group}`,
    );
  }
  const family = ipFamily(group);
  const first = family === 4
    ? Number(group.split(".")[0])
    : family === 6
    ? parseInt(group.split(":")[0] || "0", 16)
    : -1;
  const multicast = family === 4
    ? first >= 224 && first <= 239
    : family === 6 && (first & 0xff00) === 0xff00;
  if (!multicast) {
    throw new RangeError(
      `Cannot call ${what}(): group must be an IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) multicast address, received ${
        JSON.stringify(group)
      }`,
    );
  }
  if (family === 4) {
    const on = iface ?? "0.0.0.0";
    if (typeof on !== "string" || ipFamily(on) !== 4) {
      throw new TypeError(
        `Cannot call ${what}(): for an IPv4 group, iface must be the interface's IPv4 address, received ${
          JSON.stringify(iface) ?? typeof iface
        }`,
      );
    }
    return [4, `${group}%${on}`, on];
  }
  const on = iface ?? 0;
  if (typeof on !== "number" || !Number.isInteger(on) || on < 0) {
    throw new TypeError(
      `Cannot call ${what}(): for an IPv6 group, iface must be the interface's index (a non-negative integer), received ${
        JSON.stringify(iface) ?? typeof iface
      }`,
    );
  }
  return [6, `${group}%${on}`, on];
}

/** A host and port, as the datagram calls take them. */
type HostPort = { hostname: string; port: number };

/** What `checkDatagramEndpointArgs()` found in `createDatagramEndpoint`'s options. */
export interface DatagramEndpointArgs {
  /** The local address, if one was given. */
  localAddr: { hostname: string; port: number } | undefined;
  /** The remote address, if one was given. */
  remoteAddr: { hostname: string; port: number } | undefined;
  /** Whether several endpoints may share the port. */
  reuseAddress: boolean;
  /** Whether sends to broadcast addresses are allowed. */
  allowBroadcast: boolean;
}

function checkEndpointAddress(
  value: unknown,
  name: string,
): HostPort | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object") {
    throw new TypeError(
      `Cannot create a datagram endpoint: ${name} must be { hostname, port }, received ${typeof value}`,
    );
  }
  const { hostname, port } = value as Partial<HostPort>;
  if (typeof hostname !== "string") {
    throw new TypeError(
      `Cannot create a datagram endpoint: ${name}.hostname must be a string, received ${typeof hostname}`,
    );
  }
  if (hostname === "") {
    throw new RangeError(
      `Cannot create a datagram endpoint: ${name}.hostname must not be empty, received ""`,
    );
  }
  checkPort(port, `create a datagram endpoint with ${name}`);
  return { hostname, port: port! };
}

/**
 * Checks `createDatagramEndpoint()`'s arguments (synchronously, so that
 * misuse throws rather than failing the future), with one wording for
 * every loop: a function for the factory, `{ hostname, port }` (or
 * nothing) for each address, booleans for the options.
 *
 * @param protocolFactory What the caller passed as the factory.
 * @param options What the caller passed as the options.
 * @returns The addresses given and the options with their defaults.
 * @throws {TypeError} When the factory is not a function, `options` not
 * an object, an address not `{ hostname, port }` with a string hostname
 * and a number port, or an option not a boolean.
 * @throws {RangeError} When a hostname is empty or a port out of range:
 * `Cannot create a datagram endpoint: localAddr.hostname must not be
 * empty, received ""`.
 *
 * @example Defaults, and an empty hostname refused
 * ```ts
 * import { checkDatagramEndpointArgs } from "@tulip/tulip/transports";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * const factory = () => ({});
 * assertEquals(
 *   checkDatagramEndpointArgs(factory, {
 *     localAddr: { hostname: "127.0.0.1", port: 0 },
 *   }),
 *   {
 *     localAddr: { hostname: "127.0.0.1", port: 0 },
 *     remoteAddr: undefined,
 *     reuseAddress: false,
 *     allowBroadcast: false,
 *   },
 * );
 * assertThrows(
 *   () =>
 *     checkDatagramEndpointArgs(factory, {
 *       remoteAddr: { hostname: "", port: 9 },
 *     }),
 *   RangeError,
 *   "remoteAddr.hostname must not be empty",
 * );
 * ```
 */
export function checkDatagramEndpointArgs(
  protocolFactory: unknown,
  options: unknown,
): DatagramEndpointArgs {
  if (typeof protocolFactory !== "function") {
    throw new TypeError(
      `Cannot create a datagram endpoint: protocolFactory must be a function, received ${typeof protocolFactory}`,
    );
  }
  checkOptions(
    options,
    "create a datagram endpoint",
    "{ localAddr, remoteAddr }",
  );
  const given = (options ?? {}) as Record<string, unknown>;
  const localAddr = checkEndpointAddress(given.localAddr, "localAddr");
  const remoteAddr = checkEndpointAddress(given.remoteAddr, "remoteAddr");
  const flags = { reuseAddress: false, allowBroadcast: false };
  for (const key of ["reuseAddress", "allowBroadcast"] as const) {
    const value = given[key] ?? false;
    if (typeof value !== "boolean") {
      throw new TypeError(
        `Cannot create a datagram endpoint: ${key} must be a boolean, received ${typeof value}`,
      );
    }
    flags[key] = value;
  }
  return { localAddr, remoteAddr, ...flags };
}

/**
 * An address as errors show it: `host:port`, or `[host]:port` for IPv6.
 *
 * @param addr The address.
 * @returns Its text.
 *
 * @example IPv4 and IPv6
 * ```ts
 * import { describeAddress } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(describeAddress({ hostname: "::1", port: 9 }), "[::1]:9");
 * assertEquals(describeAddress({ hostname: "10.0.0.1", port: 9 }), "10.0.0.1:9");
 * ```
 */
export function describeAddress(
  addr: { hostname: string; port: number },
): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/**
 * Says why a datagram to a broadcast address is refused on an endpoint
 * made without `allowBroadcast: true`, as the system refuses it without
 * `SO_BROADCAST`. The transport drops the datagram and reports a
 * `Deno.errors.PermissionDenied` with this message to `errorReceived`.
 *
 * @param to The broadcast address the datagram was sent to.
 * @param length The datagram's length.
 * @returns The refusal's message.
 *
 * @example A refused broadcast
 * ```ts
 * import { broadcastRefusal } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(
 *   broadcastRefusal({ hostname: "255.255.255.255", port: 9 }, 3),
 *   "Cannot send to 255.255.255.255:9: it is a broadcast address and the endpoint was made without allowBroadcast: true, received 3 bytes",
 * );
 * ```
 */
export function broadcastRefusal(
  to: { hostname: string; port: number },
  length: number,
): string {
  return `Cannot send to ${
    describeAddress(to)
  }: it is a broadcast address and the endpoint was made without allowBroadcast: true, received ${length} bytes`;
}

/**
 * Checks a datagram endpoint's `sendto()` address and picks where the
 * datagram goes: a malformed address is the caller's error, thrown at
 * once (asyncio's `socket.sendto()` raises too), while what the network
 * refuses is left to the send. A connected endpoint (one made with
 * `remoteAddr`) sends only to its peer, named by address or by the name
 * it was made with.
 *
 * @param addr What the caller passed (`undefined`: the peer).
 * @param remote The peer's address, for a connected endpoint.
 * @param remoteName The name the peer was given by, if any.
 * @returns `remote` itself for a connected endpoint, else `addr`'s host
 * and port.
 * @throws {TypeError} When `addr` is missing on an endpoint without a peer,
 * or not `{ hostname, port }` with a string and a number.
 * @throws {RangeError} When the host is empty, the port out of range, or
 * the address not the peer's: `Cannot call sendto(): the endpoint only
 * sends to 127.0.0.1:9, received "127.0.0.1":10`.
 *
 * @example A connected endpoint's target
 * ```ts
 * import { checkDatagramTarget } from "@tulip/tulip/transports";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * const peer = { hostname: "127.0.0.1", port: 9 };
 * assertEquals(checkDatagramTarget(undefined, peer), peer);
 * assertEquals(
 *   checkDatagramTarget({ hostname: "localhost", port: 9 }, peer, "localhost"),
 *   peer,
 * );
 * assertThrows(
 *   () => checkDatagramTarget({ hostname: "127.0.0.1", port: 10 }, peer),
 *   RangeError,
 *   "only sends to 127.0.0.1:9",
 * );
 * ```
 */
export function checkDatagramTarget<
  R extends { hostname: string; port: number },
>(
  addr: unknown,
  remote: R | undefined,
  remoteName?: string,
): R | { hostname: string; port: number } {
  if (addr === undefined || addr === null) {
    if (remote !== undefined) return remote;
    throw new TypeError(
      "Cannot call sendto(): the endpoint has no remote address, so addr is required, received undefined",
    );
  }
  if (typeof addr !== "object") {
    throw new TypeError(
      `Cannot call sendto(): addr must be { transport: "udp", hostname, port }, received ${typeof addr}`,
    );
  }
  const { hostname, port } = addr as Partial<HostPort>;
  checkHost(hostname, "call sendto()");
  checkPort(port, "call sendto()");
  if (remote === undefined) return { hostname: hostname!, port: port! };
  if (
    (hostname !== remote.hostname && hostname !== remoteName) ||
    port !== remote.port
  ) {
    throw new RangeError(
      `Cannot call sendto(): the endpoint only sends to ${
        describeAddress(remote)
      }, received ${formatReceived(hostname)}:${String(port)}`,
    );
  }
  return remote;
}

/**
 * Checks that a datagram endpoint's bound address and its peer are of one
 * family: a socket of one family cannot send to the other's addresses, so
 * asyncio refuses such a pair rather than make an endpoint that can never
 * send.
 *
 * @param bound The address the endpoint is bound to (numeric).
 * @param local The `localAddr` given, if any (shown in the error).
 * @param peer The peer's address (numeric).
 * @throws {RangeError} When the families differ: `Cannot create a datagram
 * endpoint: localAddr is IPv4 and remoteAddr is IPv6; give both in one
 * family, received localAddr=127.0.0.1:0 remoteAddr=[::1]:9`.
 *
 * @example An IPv4 socket and an IPv6 peer
 * ```ts
 * import { checkDatagramFamilies } from "@tulip/tulip/transports";
 * import { assertThrows } from "@std/assert";
 *
 * const bound = { hostname: "127.0.0.1", port: 5000 };
 * checkDatagramFamilies(bound, undefined, { hostname: "127.0.0.1", port: 9 });
 * assertThrows(
 *   () => checkDatagramFamilies(bound, undefined, { hostname: "::1", port: 9 }),
 *   RangeError,
 *   "localAddr is IPv4 and remoteAddr is IPv6",
 * );
 * ```
 */
export function checkDatagramFamilies(
  bound: { hostname: string; port: number },
  local: { hostname: string; port: number } | undefined,
  peer: { hostname: string; port: number },
): void {
  const [mine, theirs] = [ipFamily(bound.hostname), ipFamily(peer.hostname)];
  if (mine === theirs) return;
  throw new RangeError(
    `Cannot create a datagram endpoint: localAddr is IPv${mine} and remoteAddr is IPv${theirs}; give both in one family, received localAddr=${
      describeAddress(local ?? bound)
    } remoteAddr=${describeAddress(peer)}`,
  );
}

/**
 * An IPv6 address in the form Deno reports a sender's (RFC 5952: lower
 * case, the longest run of zeros shortened, IPv4-mapped ones dotted), so
 * that an address written long-hand still matches the datagrams from it.
 * Anything else (IPv4, a scoped address, a name) is returned as given.
 *
 * @param host A host name or numeric address.
 * @returns The address in short form, or `host`.
 *
 * @example A long-hand loopback address
 * ```ts
 * import { canonicalAddress } from "@tulip/tulip/transports";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(canonicalAddress("0:0:0:0:0:0:0:1"), "::1");
 * assertEquals(canonicalAddress("::FFFF:7F00:1"), "::ffff:127.0.0.1");
 * assertEquals(canonicalAddress("localhost"), "localhost");
 * ```
 */
export function canonicalAddress(host: string): string {
  if (ipFamily(host) !== 6 || host.includes("%")) return host;
  let out: string;
  try {
    out = new URL(`http://[${host}]/`).hostname.slice(1, -1);
  } catch {
    return host;
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(out);
  if (mapped === null) return out;
  const [hi, lo] = [parseInt(mapped[1], 16), parseInt(mapped[2], 16)];
  return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}
