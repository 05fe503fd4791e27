/**
 * The fast way to answer the commonest response — status 200, a body
 * held in memory, at most a `Content-Type` — as one write, reusing the
 * bytes of the previous answer when it was the same. It follows the rules
 * of `_response_head.ts` and gives the same bytes as its general
 * `planResponse()` (a test compares them for every shape taken here).
 *
 * @module
 */

import { DEFAULT_TEXT_TYPE, fastContentType } from "./_deno_body.ts";

const ENCODER = new TextEncoder();
const OK_LINE = "HTTP/1.1 200 OK\r\n";
const OK_TEXT = OK_LINE + "content-type: " + DEFAULT_TEXT_TYPE + "\r\n";
/** Strings up to this length are checked for ASCII and sent in one encode. */
const SHORT_STRING = 1024;

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 127) return false;
  }
  return true;
}

/**
 * Encodes fast responses for one connection, keeping the last answer's
 * bytes: a server that gives the same answer again writes the same
 * bytes, which are never changed, so the transport may hold them twice.
 */
export class FastResponses {
  #body: string | Uint8Array | null = null;
  #start = "";
  #date = "";
  #connection = "";
  #withBody = false;
  #bytes: Uint8Array | null = null;

  /**
   * The bytes of a 200 response whose body `fastStaticBody()` gave.
   *
   * @param response The response (for its content type).
   * @param body Its body.
   * @param withBody `false` to send the head alone (a HEAD request).
   * @param date The date line.
   * @param connection The connection line.
   * @returns The whole response, or its head and body for `writelines`;
   * `null` when the content type needs the general way.
   */
  encode(
    response: Response,
    body: string | Uint8Array,
    withBody: boolean,
    date: string,
    connection: string,
  ): Uint8Array | [Uint8Array, Uint8Array] | null {
    const type = fastContentType(response);
    let start: string;
    if (type === null) start = OK_LINE;
    else if (type === DEFAULT_TEXT_TYPE) start = OK_TEXT;
    else if (isAscii(type)) start = OK_LINE + "content-type: " + type + "\r\n";
    else return null;
    if (
      body === this.#body && start === this.#start && date === this.#date &&
      connection === this.#connection && withBody === this.#withBody
    ) return this.#bytes!;
    if (
      typeof body === "string" && body.length <= SHORT_STRING && isAscii(body)
    ) {
      const head = start + "content-length: " + body.length + "\r\n" + date +
        connection + "\r\n";
      const bytes = ENCODER.encode(withBody ? head + body : head);
      this.#body = body;
      this.#start = start;
      this.#date = date;
      this.#connection = connection;
      this.#withBody = withBody;
      this.#bytes = bytes;
      return bytes;
    }
    const bytes = typeof body === "string" ? ENCODER.encode(body) : body;
    const head = ENCODER.encode(
      start + "content-length: " + bytes.length + "\r\n" + date +
        connection + "\r\n",
    );
    return withBody && bytes.length > 0 ? [head, bytes] : head;
  }
}
