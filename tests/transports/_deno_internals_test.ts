import { assert, assertEquals } from "@std/assert";
import {
  BODY_FIELDS,
  connRid,
  CORE_OPS,
  INTERNALS_ENABLED,
  LAZY_BODY,
  NO_INTERNALS_ENV,
  probeInternals,
  REQUEST_SIGNAL_KEY,
  SERVE_FAST,
  writableRid,
} from "../../transports/_deno_internals.ts";

/** A connected pair of real TCP connections on 127.0.0.1. */
async function tcpPair(): Promise<[Deno.Conn, Deno.Conn]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const server = await listener.accept();
  listener.close();
  return [client, server];
}

// ---------------------------------------------------------------------------
// The report: every probe matches this Deno, or every one is switched off

Deno.test("probeInternals() finds every internal on the pinned Deno, or none when switched off", async () => {
  const [client, server] = await tcpPair();
  try {
    const results = probeInternals(server);
    assertEquals(results.length, 10);
    // Listed by name so that a failure says which probe stopped matching
    // (after a Deno upgrade: update the probe in transports/_deno_internals.ts,
    // or drop its fast path).
    const missing = results.filter((r) => r.found !== INTERNALS_ENABLED)
      .map((r) => `${r.name} (${r.usedBy})`);
    assertEquals(
      missing,
      [],
      INTERNALS_ENABLED
        ? `Deno ${Deno.version.deno}: these internals no longer match`
        : `${NO_INTERNALS_ENV} is set, yet these were found`,
    );
  } finally {
    client.close();
    server.close();
  }
});

Deno.test("probeInternals() without a connection reports the resource id once one was seen", async () => {
  const [client, server] = await tcpPair();
  try {
    connRid(server);
    assertEquals(probeInternals()[1].found, INTERNALS_ENABLED);
  } finally {
    client.close();
    server.close();
  }
});

Deno.test("the switch is read from TULIP_NO_INTERNALS", () => {
  const value = Deno.env.get(NO_INTERNALS_ENV);
  assertEquals(
    INTERNALS_ENABLED,
    value === undefined || value === "" || value === "0",
  );
});

/**
 * Loads the module in a new Deno process with `flags` and the switch set,
 * after running `before` (a change to Deno's globals), and returns what
 * `expression` (over the module `m`) prints as JSON.
 */
async function inChild(
  flags: string[],
  expression: string,
  before = "",
): Promise<unknown> {
  const url = new URL("../../transports/_deno_internals.ts", import.meta.url);
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/main.ts`;
    await Deno.writeTextFile(
      script,
      `${before}\nconst m = await import(${JSON.stringify(url.href)});\n` +
        `console.log(JSON.stringify(${expression}));\n`,
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", ...flags, script],
      cwd: dir,
      env: { [NO_INTERNALS_ENV]: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(output.success, new TextDecoder().decode(output.stderr));
    return JSON.parse(new TextDecoder().decode(output.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the switch never prompts: without env permission it counts as not set", async () => {
  assertEquals(
    await inChild([], "m.probeInternals().map((r) => r.found)"),
    [true, false, true, true, true, true, true, true, true, true],
  );
});

Deno.test("the switch turns every probe off when set", async () => {
  assertEquals(
    await inChild(
      [`--allow-env=${NO_INTERNALS_ENV}`],
      "m.probeInternals().map((r) => r.found)",
    ),
    [false, false, false, false, false, false, false, false, false, false],
  );
});

Deno.test("a probe that finds Deno's internals changed reports them not found, and the module still loads", async () => {
  // A Deno whose Response URL list refuses the probe's write (here frozen).
  const frozenUrlList = `const Native = Response;
globalThis.Response = class extends Native {
  constructor(...args) {
    super(...args);
    const key = Object.getOwnPropertySymbols(this)
      .find((s) => s.description === "response");
    Object.freeze(this[key].urlList);
  }
};`;
  assertEquals(
    await inChild(
      [],
      `m.probeInternals().find((r) => r.name === "Response URL list").found`,
      frozenUrlList,
    ),
    false,
  );
});

// ---------------------------------------------------------------------------
// What each probe gives, when found

Deno.test("writableRid() gives the resource under a stream Deno made, and nothing for any other", () => {
  const plain = new WritableStream<Uint8Array>();
  assertEquals(writableRid(plain), undefined);
  if (!INTERNALS_ENABLED) {
    assertEquals(writableRid(Deno.stdout.writable), undefined);
    return;
  }
  assertEquals(writableRid(Deno.stdout.writable), 1);
  assertEquals(writableRid(plain), undefined, "after a stream Deno made");
});

Deno.test("CORE_OPS reads and writes a real connection as Deno.Conn does", async () => {
  const [client, server] = await tcpPair();
  try {
    if (!INTERNALS_ENABLED) {
      assertEquals([CORE_OPS, connRid(server)], [null, undefined]);
      return;
    }
    const rid = connRid(server)!;
    assertEquals(typeof rid, "number");
    assertEquals(await CORE_OPS!.write(rid, new Uint8Array([5, 6])), 2);
    const buf = new Uint8Array(4);
    assertEquals(await client.read(buf), 2);
    assertEquals([...buf.subarray(0, 2)], [5, 6]);
    await client.write(new Uint8Array([7]));
    assertEquals(await CORE_OPS!.read(rid, buf), 1);
    assertEquals(buf[0], 7);
    client.close();
    // EOF is 0 on the op (Conn.read() makes it null).
    assertEquals(await CORE_OPS!.read(rid, buf), 0);
  } finally {
    try {
      client.close();
    } catch {
      // Closed above.
    }
    server.close();
  }
});

Deno.test("connRid() refuses connections that are not Deno's own", () => {
  const fake = { read() {}, write() {} } as unknown as Deno.Conn;
  assertEquals(connRid(fake), undefined);
});

Deno.test("BODY_FIELDS, LAZY_BODY, SERVE_FAST read a Response as Deno keeps it", () => {
  if (!INTERNALS_ENABLED) {
    assertEquals([BODY_FIELDS, LAZY_BODY, SERVE_FAST], [null, null, null]);
    return;
  }
  const response = new Response("hi") as unknown as Record<symbol, unknown>;
  assertEquals(response[LAZY_BODY!], "hi");
  assertEquals(response[SERVE_FAST!.body], "hi");
  assertEquals(response[SERVE_FAST!.status], 200);
  const inner = response[BODY_FIELDS!.response] as { body: unknown };
  assert("body" in inner);
});

Deno.test("REQUEST_SIGNAL_KEY reads a request's signal as Deno's own code does", () => {
  if (!INTERNALS_ENABLED) {
    assertEquals(REQUEST_SIGNAL_KEY, null);
    return;
  }
  const controller = new AbortController();
  const request = new Request("http://h/", { signal: controller.signal });
  const signal = (request as unknown as Record<symbol, AbortSignal>)[
    REQUEST_SIGNAL_KEY!
  ];
  assertEquals(signal, request.signal);
});
