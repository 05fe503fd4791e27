// getaddrinfo and getnameinfo over node:dns, whose lookup() calls the
// system's getaddrinfo (hosts file, nsswitch) in Deno, and whose
// lookupService() calls getnameinfo. node:dns is imported on first use:
// loading Deno's Node layer costs tens of milliseconds at startup.

import { formatReceived } from "../futures/errors.ts";
import type { LookupAddress } from "node:dns";
import type { AddrInfo } from "../loop/event_loop.ts";
import { checkHost, checkPort, ipFamily } from "./address_checks.ts";

// The module cache makes every call after the first cheap.
function loadDns(): Promise<typeof import("node:dns")> {
  return import("node:dns");
}

/** getnameinfo flag: return the numeric address instead of a name. */
export const NI_NUMERICHOST = 1;
/** getnameinfo flag: return the port number instead of a service name. */
export const NI_NUMERICSERV = 2;
/** getnameinfo flag: fail when the address has no name. */
export const NI_NAMEREQD = 8;
const KNOWN_FLAGS = NI_NUMERICHOST | NI_NUMERICSERV | NI_NAMEREQD;

function netGranted(host: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "net", host }).state ===
      "granted";
  } catch {
    return false;
  }
}

// The resolver's codes for "no such host" (node:dns's names for them).
const NO_SUCH_HOST = new Set(["ENOTFOUND", "ENODATA", "EAI_NONAME"]);

function resolveError(host: string, error: unknown): Error {
  const code = (error as { code?: string } | null)?.code ?? "";
  if (NO_SUCH_HOST.has(code)) {
    return new Deno.errors.NotFound(
      `Cannot resolve host: no such host is known, received "${host}"`,
      { cause: error },
    );
  }
  if (code === "EPERM" && !netGranted(host)) {
    // node:dns reports Deno's missing permission as a bare EPERM; say what
    // Deno itself says when an API lacks it.
    return new Deno.errors.NotCapable(
      `Cannot resolve host: requires net access to ${
        JSON.stringify(host)
      }, run again with the --allow-net flag, received ${JSON.stringify(host)}`,
      { cause: error },
    );
  }
  const why = error instanceof Error ? error.message : String(error);
  return new Error(`Cannot resolve host: ${why}, received "${host}"`, {
    cause: error,
  });
}

/** Resolves `host` with the system resolver; the arguments are checked. */
export function resolveHost(
  host: string,
  port: number,
  family: 0 | 4 | 6 = 0,
): Promise<AddrInfo[]> {
  return loadDns().then(({ lookup }) =>
    new Promise((resolve, reject) => {
      lookup(
        host,
        { all: true, family },
        (error: unknown, addresses: LookupAddress[]) => {
          if (error) return reject(resolveError(host, error));
          const seen = new Set<string>();
          const infos: AddrInfo[] = [];
          for (const address of addresses) {
            const found = address.family === 6 ? 6 : 4;
            // node:dns gives a numeric address back whatever the family.
            if (
              seen.has(address.address) || (family !== 0 && found !== family)
            ) {
              continue;
            }
            seen.add(address.address);
            infos.push({ family: found, hostname: address.address, port });
          }
          if (infos.length === 0) {
            const literal = ipFamily(host);
            return reject(
              literal !== 0 && literal !== family
                ? new Deno.errors.NotFound(
                  `Cannot resolve host: "${host}" is an IPv${literal} address and family ${family} was asked for`,
                )
                : resolveError(host, { code: "ENOTFOUND" }),
            );
          }
          resolve(infos);
        },
      );
    })
  );
}

/** Checks getnameinfo's arguments (synchronously, so misuse throws). */
export function checkNameinfoArgs(sockaddr: unknown, flags: unknown): void {
  if (typeof sockaddr !== "object" || sockaddr === null) {
    throw new TypeError(
      `Cannot call getnameinfo(): sockaddr must be { hostname, port }, received ${
        sockaddr === null ? "null" : typeof sockaddr
      }`,
    );
  }
  const { hostname, port } = sockaddr as { hostname: unknown; port: unknown };
  checkHost(hostname, "call getnameinfo()");
  checkPort(port, "call getnameinfo()");
  if (typeof flags !== "number" || !Number.isInteger(flags)) {
    throw new TypeError(
      `Cannot call getnameinfo(): flags must be an integer, received ${
        formatReceived(flags)
      }`,
    );
  }
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new RangeError(
      `Cannot call getnameinfo(): flags may only combine 1 (NUMERICHOST), 2 (NUMERICSERV) and 8 (NAMEREQD), received ${
        formatReceived(flags)
      }`,
    );
  }
}

function lookupServicePromise(
  address: string,
  port: number,
): Promise<[string, string]> {
  return loadDns().then(({ lookupService }) =>
    new Promise((resolve, reject) => {
      lookupService(
        address,
        port,
        (error: unknown, hostname: string, service: string) => {
          if (error) reject(resolveError(address, error));
          else resolve([hostname, service]);
        },
      );
    })
  );
}

/** Turns an address into `[host, service]`; the arguments are checked. */
export async function nameinfo(
  sockaddr: { hostname: string; port: number },
  flags: number,
): Promise<[string, string]> {
  let address = sockaddr.hostname;
  if (ipFamily(address) === 0) {
    address = (await resolveHost(address, sockaddr.port))[0].hostname;
  }
  const port = sockaddr.port;
  const numericHost = (flags & NI_NUMERICHOST) !== 0;
  const numericServ = (flags & NI_NUMERICSERV) !== 0;
  if (numericHost && (flags & NI_NAMEREQD) !== 0) {
    // glibc's and BSD's getnameinfo() fail these together (EAI_NONAME).
    throw new Deno.errors.NotFound(
      `Cannot find a name for the address: NI_NAMEREQD wants one and NI_NUMERICHOST forbids looking it up, received "${address}"`,
    );
  }
  if (numericHost && numericServ) return [address, String(port)];
  // No name wanted: as the C library, ask the resolver nothing about the
  // address (no reverse lookup, no net permission for it).
  if (numericHost) return [address, await serviceName(port, address)];
  let found: [string, string];
  try {
    found = await lookupServicePromise(address, port);
  } catch (error) {
    // Deno asks the resolver with NI_NAMEREQD always, so an address
    // without a name fails here; the C library's getnameinfo() without
    // that flag gives its numeric form instead.
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    if ((flags & NI_NAMEREQD) !== 0) throw noName(address, error);
    return [address, numericServ ? String(port) : await serviceName(port)];
  }
  const [name, service] = found;
  if ((flags & NI_NAMEREQD) !== 0 && ipFamily(name) !== 0) {
    throw noName(address);
  }
  return [name, numericServ ? String(port) : service];
}

function noName(address: string, cause?: unknown): Error {
  return new Deno.errors.NotFound(
    `Cannot find a name for the address: it has none, received "${address}"`,
    { cause },
  );
}

/**
 * The service name of `port` (the system's services database, or the
 * number). The resolver looks a service up only with an address that has
 * a name, so the loopback addresses are asked (then `fallback`, if
 * given), where Deno already lets them be (a lookup never makes it
 * prompt).
 */
async function serviceName(port: number, fallback?: string): Promise<string> {
  const candidates = ["127.0.0.1", "::1"];
  if (fallback !== undefined) candidates.push(fallback);
  for (const address of candidates) {
    const host = address.includes(":")
      ? `[${address}]:${port}`
      : `${address}:${port}`;
    if (!netGranted(host)) continue;
    try {
      return (await lookupServicePromise(address, port))[1];
    } catch {
      // No name for this one (or no permission): try the next.
    }
  }
  return String(port);
}

// How Deno (Rust's standard library) words a failed name lookup in
// Deno.connect() and Deno.listen(): a plain Error, then the C library's
// gai_strerror() text.
const LOOKUP_FAILED = "failed to lookup address information";
// gai_strerror() for EAI_NONAME and EAI_NODATA: glibc, musl, macOS, Windows.
const NO_SUCH_HOST_TEXT =
  /not known|does not resolve|no address associated|no such host/i;

/**
 * The error for Deno's failed lookup of a host name in a connect or a
 * listen: of the class `getaddrinfo()` fails with for it
 * (`Deno.errors.NotFound` for no such host, else `Error`); `null` for
 * another error. The name is resolved by Deno.connect() itself, so that
 * `--allow-net=name` is enough.
 */
function lookupFailure(error: Error, prefix: string): Error | null {
  if (error.constructor !== Error || !error.message.startsWith(LOOKUP_FAILED)) {
    return null;
  }
  const why = error.message.slice(LOOKUP_FAILED.length).replace(/^:\s*/, "");
  if (
    NO_SUCH_HOST.has((error as { code?: string }).code ?? "") ||
    NO_SUCH_HOST_TEXT.test(why)
  ) {
    return new Deno.errors.NotFound(
      `${prefix}: no such host is known; check the host name, or use an IP address`,
      { cause: error },
    );
  }
  return new Error(
    `${prefix}: cannot resolve the host name (${why}); check the resolver (DNS, the hosts file), or use an IP address`,
    { cause: error },
  );
}

/**
 * Re-throws a Deno error with a message naming the address, keeping its
 * class (`Deno.errors.ConnectionRefused` stays one), its `code`
 * (`"ECONNREFUSED"`) and the original as `cause`. A host name Deno could
 * not resolve fails as `getaddrinfo()` does for it (`Deno.errors.NotFound`
 * for no such host).
 */
export function withAddress(error: unknown, prefix: string): unknown {
  if (!(error instanceof Error)) return error;
  const lookup = lookupFailure(error, prefix);
  if (lookup !== null) return lookup;
  const message = `${prefix}: ${error.message}`;
  let out: Error | null = null;
  try {
    const Ctor = error.constructor as new (
      message: string,
      options: ErrorOptions,
    ) => Error;
    out = new Ctor(message, { cause: error });
    if (!(out instanceof Error) || out.name !== error.name) out = null;
  } catch {
    // A constructor with another signature: fall back to a plain Error.
  }
  out ??= new Error(message, { cause: error });
  // Deno's errors carry the system's code, as Node's do: code that checks
  // err.code must find it on the error it catches.
  if (Object.hasOwn(error, "code")) {
    Object.defineProperty(out, "code", {
      value: (error as { code?: unknown }).code,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }
  return out;
}

/**
 * The error of a failed TLS handshake, its message led by `prefix`. A
 * connection the peer ended before the handshake did is a
 * `Deno.errors.ConnectionReset` (asyncio's `ConnectionResetError`), not
 * Deno's `UnexpectedEof`; other errors keep their class.
 *
 * @param error What the handshake failed with.
 * @param prefix What was being done, e.g. `Cannot connect to host:443 over TLS`.
 * @returns The error to report.
 */
export function handshakeFailure(error: unknown, prefix: string): unknown {
  if (error instanceof Deno.errors.UnexpectedEof) {
    return new Deno.errors.ConnectionReset(
      `${prefix}: the peer closed the connection during the TLS handshake`,
      { cause: error },
    );
  }
  return withAddress(error, prefix);
}
