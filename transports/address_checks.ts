/**
 * The argument checks of the loop's address calls (`createConnection`,
 * `createServer`, `getaddrinfo`, the `sock*` calls), shared by every loop
 * so that a bad port or family is refused in the same words on Deno's
 * network and on a simulated one.
 *
 * @module
 */

import { formatReceived } from "../futures/errors.ts";
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
 * Checks `getaddrinfo()`'s arguments (synchronously, so that misuse throws
 * rather than failing the future): a non-empty host, a port, a family of
 * 0, 4 or 6, and numbers for `type`, `proto` and `flags`.
 *
 * @param host The host name or address.
 * @param port The port.
 * @param options The options.
 * @throws {TypeError} When `host` is not a string, `port` or an option not
 * a number.
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
