// Checks that keep the tree in the shape STYLE.md describes.

import { assertEquals } from "@std/assert";

const SOURCE_FOLDERS = [
  "facade",
  "futures",
  "http",
  "jsonrpc",
  "loop",
  "protocols",
  "streams",
  "tasks",
  "testing",
  "transports",
];

const root = new URL("../", import.meta.url);

async function* sourceFiles(): AsyncGenerator<[string, string]> {
  for (const folder of SOURCE_FOLDERS) {
    for await (const entry of Deno.readDir(new URL(`${folder}/`, root))) {
      if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
      const path = `${folder}/${entry.name}`;
      yield [path, await Deno.readTextFile(new URL(path, root))];
    }
  }
}

function withoutComments(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

Deno.test("only deno_*.ts files use the Deno namespace at run time", async () => {
  const offenders: string[] = [];
  for await (const [path, source] of sourceFiles()) {
    const name = path.split("/").pop()!;
    if (/^_?deno_/.test(name)) continue;
    // A lower-case member (Deno.connect, Deno.errors) is a value; an
    // upper-case one (Deno.Addr, Deno.Signal) is a type.
    const uses = withoutComments(source).match(/(?<!["'])\bDeno\.[a-z]\w*/g);
    if (uses !== null) offenders.push(`${path}: ${[...new Set(uses)]}`);
  }
  assertEquals(offenders, []);
});

// The runtime's plumbing (the running-loop slot and its hooks) is the one
// private file every folder may import; no mod.ts re-exports it.
const RUNTIME = "futures/_runtime.ts";
// Deno's I/O (the proactor, the concrete transports, the operations that
// make them) lives in transports/, below the loop; the Deno loop creates
// transports through this one entry, and nothing else crosses.
const DENO_IO = "transports/_deno_io.ts";
const DENO_IO_USERS = ["loop/deno_event_loop.ts"];
// Deno's private internals (core ops, internal symbols) are probed in one
// module, which the transports and HTTP's fast paths read.
const DENO_INTERNALS = "transports/_deno_internals.ts";

Deno.test("private files are imported only from their own folder", async () => {
  const offenders: string[] = [];
  for await (const [path, source] of sourceFiles()) {
    for (const m of source.matchAll(/from\s+"(\.\.\/[^"]+)"/g)) {
      const target = m[1].split("/").pop()!;
      if (!target.startsWith("_")) continue;
      const href = new URL(m[1], new URL(path, root)).href;
      if (href === new URL(RUNTIME, root).href) continue;
      if (href === new URL(DENO_INTERNALS, root).href) continue;
      if (
        href === new URL(DENO_IO, root).href && DENO_IO_USERS.includes(path)
      ) {
        continue;
      }
      offenders.push(`${path} -> ${m[1]}`);
    }
  }
  assertEquals(offenders, []);
});

// A transport is made where it is used up: the host's in transports/, the
// fakes in testing/, HTTP's in http/. The loop only schedules and makes
// them through transports/_deno_io.ts.
const TRANSPORT_FOLDERS = ["transports", "testing", "http"];

// The layers of ARCHITECTURE.md: code (not types) may come only from a
// lower layer. Type imports are free: they leave nothing at run time.
const LAYER: Record<string, number> = {
  futures: 0,
  tasks: 1,
  protocols: 2,
  transports: 3,
  loop: 4,
  streams: 5,
  http: 5,
  jsonrpc: 5,
  facade: 6,
  testing: 6,
};

/** The relative modules a module takes code (not only types) from. */
function valueImportPaths(source: string): string[] {
  const paths: string[] = [];
  const statement =
    /^(?:import|export)\s+(type\s+)?([^;]*?)\s+from\s+"(\.\.?\/[^"]+)";/gms;
  for (const m of source.matchAll(statement)) {
    const onlyTypes = /^\{(\s*type\s+[\w$]+(\s+as\s+[\w$]+)?\s*,?)+\s*\}$/
      .test(m[2].trim());
    if (m[1] === undefined && !onlyTypes) paths.push(m[3]);
  }
  // Bare and dynamic imports load a module too.
  for (const m of source.matchAll(/\bimport\s*\(?\s*"(\.\.?\/[^"]+)"/g)) {
    paths.push(m[1]);
  }
  return paths;
}

/** The folders a module takes code (not only types) from. */
function valueImports(source: string): string[] {
  return valueImportPaths(source).flatMap((p) => {
    const m = /^\.\.\/([a-z_]+)\//.exec(p);
    return m === null ? [] : [m[1]];
  });
}

Deno.test("code is imported only from lower layers", async () => {
  const offenders: string[] = [];
  for await (const [path, source] of sourceFiles()) {
    const folder = path.split("/")[0];
    for (const target of valueImports(source)) {
      // ./protocols re-exports the names that moved out of it, for one
      // version (see protocols/mod.ts).
      if (path === "protocols/mod.ts" && LAYER[target] === 5) continue;
      if (!(LAYER[target] < LAYER[folder])) {
        offenders.push(`${path} -> ${target}`);
      }
    }
  }
  assertEquals(offenders, []);
});

// The testing layer does not depend on Deno's I/O: a VirtualTimeLoop's
// sockets are the simulator's, in memory. The Deno loop and transports are
// the files named deno_*.ts in loop/ and transports/.
const DENO_IO_FILE = /^(loop|transports)\/_?deno_/;

Deno.test("testing/virtual_time_loop.ts reaches no Deno I/O module, even through others", async () => {
  const start = "testing/virtual_time_loop.ts";
  const parents = new Map<string, string>([[start, ""]]);
  const queue = [start];
  const offenders: string[] = [];
  while (queue.length > 0) {
    const path = queue.shift()!;
    if (DENO_IO_FILE.test(path)) {
      const chain = [path];
      for (let p = parents.get(path)!; p !== ""; p = parents.get(p)!) {
        chain.unshift(p);
      }
      offenders.push(chain.join(" -> "));
      continue;
    }
    const source = await Deno.readTextFile(new URL(path, root));
    for (const specifier of valueImportPaths(withoutComments(source))) {
      const target = new URL(specifier, new URL(path, root)).href.slice(
        root.href.length,
      );
      if (parents.has(target)) continue;
      parents.set(target, path);
      queue.push(target);
    }
  }
  assertEquals(offenders, []);
  // The walk did follow imports (the loop's own base, at least).
  assertEquals(parents.has("loop/base_event_loop.ts"), true);
});

Deno.test("only transports/_deno_internals.ts reaches Deno's private internals", async () => {
  // Deno.internal (core ops, internal symbols) and the descriptions of
  // Deno's private symbols are looked up in one module, so that a Deno
  // upgrade that moves them fails its test instead of dropping a fast
  // path unnoticed.
  const PRIVATE = /Deno\.internal\b|getOwnPropertySymbols|\.description\b/;
  const offenders: string[] = [];
  for await (const [path, source] of sourceFiles()) {
    if (path === DENO_INTERNALS) continue;
    if (PRIVATE.test(withoutComments(source))) offenders.push(path);
  }
  assertEquals(offenders, []);
});

Deno.test("concrete transports live in transports/, testing/ or http/", async () => {
  const offenders: string[] = [];
  for await (const [path, source] of sourceFiles()) {
    if (TRANSPORT_FOLDERS.includes(path.split("/")[0])) continue;
    if (
      /^(export )?class \w+ (extends \w+\s+)?implements [\w, ]*Transport\b/m
        .test(source)
    ) {
      offenders.push(path);
    }
  }
  assertEquals(offenders, []);
});

Deno.test("no mod.ts re-exports the runtime's plumbing", async () => {
  const offenders: string[] = [];
  const runtime = new URL(RUNTIME, root).href;
  const entries = ["mod.ts", ...SOURCE_FOLDERS.map((f) => `${f}/mod.ts`)];
  for (const entry of entries) {
    const url = new URL(entry, root);
    const source = await Deno.readTextFile(url);
    for (const m of source.matchAll(/^export .* from "([^"]+)";$/gm)) {
      if (new URL(m[1], url).href === runtime) offenders.push(entry);
    }
  }
  // Nor does any public file pass one of its names on.
  for await (const [path, source] of sourceFiles()) {
    if (path === RUNTIME) continue;
    for (const m of source.matchAll(/^export [^;]* from "([^"]+)";$/gm)) {
      if (new URL(m[1], new URL(path, root)).href === runtime) {
        offenders.push(path);
      }
    }
  }
  assertEquals(offenders, []);
  const mod = await import("../mod.ts");
  const plumbing = Object.keys(await import(`../${RUNTIME}`));
  assertEquals(plumbing.filter((name) => name in mod), []);
});

Deno.test("each folder's mod.ts only re-exports public files", async () => {
  const offenders: string[] = [];
  for (const folder of SOURCE_FOLDERS) {
    const source = await Deno.readTextFile(new URL(`${folder}/mod.ts`, root));
    for (const m of source.matchAll(/^export .* from "([^"]+)";$/gm)) {
      if (m[1].split("/").pop()!.startsWith("_")) {
        offenders.push(`${folder}/mod.ts -> ${m[1]}`);
      }
    }
    const body = withoutComments(source).replace(
      /^export \* from "[^"]+";$/gm,
      "",
    )
      .trim();
    if (body !== "") {
      offenders.push(`${folder}/mod.ts has more than re-exports`);
    }
  }
  assertEquals(offenders, []);
});

// Profiler logs and dated benchmark results are made by runs, not written:
// git keeps neither (bench/README.md holds the current figures).
const GENERATED = /(-v8\.log|\.cpuprofile|\.heapsnapshot)$|results\/20[0-9-]+T/;

Deno.test("no generated file is tracked by git", async () => {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("git", {
      args: ["ls-files"],
      cwd: root,
      stdout: "piped",
      stderr: "null",
    }).output();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    console.warn("skipped: git is not installed");
    return;
  }
  if (!out.success) {
    console.warn("skipped: not a git checkout");
    return;
  }
  const tracked = new TextDecoder().decode(out.stdout).split("\n");
  assertEquals(tracked.filter((path) => GENERATED.test(path)), []);
});
