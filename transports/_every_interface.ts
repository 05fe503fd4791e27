/**
 * What a server's `host` means by "every interface".
 *
 * @module
 */

/**
 * Whether a server's `host` asks for every interface: `undefined`, and
 * `null` and `""` as asyncio's `None` and `''`.
 *
 * @param host The `host` argument as given.
 * @returns `true` for every interface.
 */
export function everyInterface(host: unknown): host is undefined {
  return host === undefined || host === null || host === "";
}
