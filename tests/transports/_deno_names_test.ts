// How Deno's failed name lookups in a connect or a listen are reported:
// with the class getaddrinfo() uses for the same failure, whatever the C
// library's wording (the real resolver is exercised in
// tests/functional/names_test.ts).

import {
  assertEquals,
  assertInstanceOf,
  assertStrictEquals,
} from "@std/assert";
import { withAddress } from "../../transports/_deno_names.ts";

const PREFIX = "Cannot connect to nowhere.invalid:80";

Deno.test("withAddress() reports Deno's 'no such host' as NotFound, whatever the C library's words", () => {
  for (
    const why of [
      "Name or service not known", // glibc EAI_NONAME
      "No address associated with hostname", // glibc EAI_NODATA
      "Name does not resolve", // musl
      "nodename nor servname provided, or not known", // macOS
      "No such host is known. (os error 11001)", // Windows
    ]
  ) {
    const cause = new Error(`failed to lookup address information: ${why}`);
    const error = withAddress(cause, PREFIX) as Error;
    assertInstanceOf(error, Deno.errors.NotFound, why);
    assertEquals(
      error.message,
      `${PREFIX}: no such host is known; check the host name, or use an IP address`,
    );
    assertStrictEquals(error.cause, cause);
  }
});

Deno.test("withAddress() reports another lookup failure as getaddrinfo() does, an Error naming it", () => {
  const cause = new Error(
    "failed to lookup address information: Temporary failure in name resolution",
  );
  const error = withAddress(cause, PREFIX) as Error;
  assertStrictEquals(error.constructor, Error);
  assertEquals(
    error.message,
    `${PREFIX}: cannot resolve the host name (Temporary failure in name resolution); check the resolver (DNS, the hosts file), or use an IP address`,
  );
});

Deno.test("withAddress() keeps the class of an error that is no lookup failure", () => {
  const refused = new Deno.errors.ConnectionRefused("Connection refused");
  const wrapped = withAddress(refused, PREFIX) as Error;
  assertInstanceOf(wrapped, Deno.errors.ConnectionRefused);
  assertEquals(wrapped.message, `${PREFIX}: Connection refused`);
  // Deno's code (Node's err.code) stays, on its class or a plain Error.
  const coded = Object.assign(new Deno.errors.ConnectionRefused("refused"), {
    code: "ECONNREFUSED",
  });
  assertEquals(
    (withAddress(coded, PREFIX) as { code?: string }).code,
    "ECONNREFUSED",
  );
  const plain = Object.assign(new Error("Message too long"), {
    code: "EMSGSIZE",
  });
  assertEquals(
    (withAddress(plain, PREFIX) as { code?: string }).code,
    "EMSGSIZE",
  );
  // A class whose code is a getter of its own (as DOMException's) is
  // rebuilt without a word about it.
  class Coded extends Error {
    override name = "Coded";
    get code(): string {
      return "ECODED";
    }
  }
  const rebuilt = withAddress(new Coded("odd"), PREFIX) as Coded;
  assertInstanceOf(rebuilt, Coded);
  assertEquals(rebuilt.code, "ECODED");
  // A NotCapable (no permission) is no lookup failure.
  const denied = new Deno.errors.NotCapable(
    'Requires net access to "nowhere.invalid:80"',
  );
  assertInstanceOf(withAddress(denied, PREFIX), Deno.errors.NotCapable);
});
