// The TLS test certificates: a CA, a server certificate for "localhost",
// "tulip.test" and 127.0.0.1, and a client certificate; and, from a second
// CA, a server certificate that names "localhost" only in its common name;
// all in tests/fixtures/tls/ (made once by tests/fixtures/tls/make.sh, valid for
// 100 years), so that the TLS tests need no openssl. Interop tests that
// run the openssl binary ask `opensslMissing()` first.

/** PEM texts of the test CA and the certificates it signed. */
export interface TestCerts {
  /** The CA's certificate. */
  ca: string;
  /** The server's certificate. */
  cert: string;
  /** The server's private key. */
  key: string;
  /** The client's certificate (for mutual TLS). */
  clientCert: string;
  /** The client's private key. */
  clientKey: string;
  /** The second CA's certificate. */
  otherCa: string;
  /**
   * A server certificate from the second CA with "localhost" in its common
   * name and no subjectAltName: valid for no name.
   */
  cnOnlyCert: string;
  /** Its private key. */
  cnOnlyKey: string;
}

const DIR = new URL("../fixtures/tls/", import.meta.url);

/** Absolute path of a fixture file, for the openssl command line. */
export function fixturePath(name: string): string {
  return new URL(name, DIR).pathname;
}

function read(name: string): Promise<string> {
  return Deno.readTextFile(new URL(name, DIR));
}

let loaded: Promise<TestCerts> | null = null;

/** Loads the certificates (once; later calls share them). */
export function testCerts(): Promise<TestCerts> {
  return loaded ??= (async () => ({
    ca: await read("ca.pem"),
    cert: await read("server.pem"),
    key: await read("server.key"),
    clientCert: await read("client.pem"),
    clientKey: await read("client.key"),
    otherCa: await read("other_ca.pem"),
    cnOnlyCert: await read("cn_only.pem"),
    cnOnlyKey: await read("cn_only.key"),
  }))();
}

let probe: Promise<string | null> | null = null;

/**
 * Why the openssl binary cannot be used, or `null` when it can. Interop
 * tests pass it to `Deno.test`'s `ignore` and print it, so that a machine
 * without openssl skips them visibly.
 */
export function opensslMissing(): Promise<string | null> {
  return probe ??= (async () => {
    try {
      const out = await new Deno.Command("openssl", {
        args: ["version"],
        stdout: "null",
        stderr: "null",
      }).output();
      return out.success ? null : "`openssl version` failed";
    } catch (error) {
      return `openssl is not installed (${(error as Error).name})`;
    }
  })();
}
