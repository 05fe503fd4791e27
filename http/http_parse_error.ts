/**
 * `HttpParseError`, the error of a message that breaks HTTP/1.1 or a limit:
 * what an `HttpClientProtocol` request fails with when its response does
 * (its `status` says which rule or limit), and what the server answers a
 * request's with. Public so that an application can test for it with
 * `instanceof`.
 *
 * @module
 */

export { HttpParseError } from "./_http_parser.ts";
