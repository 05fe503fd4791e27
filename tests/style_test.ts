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

// The private files other folders may import: the runtime plumbing, and
// the one module that probes Deno's private internals (its doc says why).
const SHARED_PRIVATE = new Set([
  "futures/_runtime.ts",
  "loop/_deno_internals.ts",
]);

Deno.test("private files are imported only from their own folder", async () => {
  const offenders: string[] = [];
  for await (const [path, source] of sourceFiles()) {
    for (const m of source.matchAll(/from\s+"(\.\.\/[^"]+)"/g)) {
      const target = new URL(m[1], new URL(path, root)).href.slice(
        root.href.length,
      );
      if (
        target.split("/").pop()!.startsWith("_") && !SHARED_PRIVATE.has(target)
      ) {
        offenders.push(`${path} -> ${m[1]}`);
      }
    }
  }
  assertEquals(offenders, []);
});

Deno.test("only loop/_deno_internals.ts reaches Deno's private internals", async () => {
  // Deno.internal (core ops, internal symbols) and the descriptions of
  // Deno's private symbols are looked up in one module, so that a Deno
  // upgrade that moves them fails its test instead of dropping a fast
  // path unnoticed.
  const PRIVATE = /Deno\.internal\b|getOwnPropertySymbols|\.description\b/;
  const offenders: string[] = [];
  for await (const [path, source] of sourceFiles()) {
    if (path === "loop/_deno_internals.ts") continue;
    if (PRIVATE.test(withoutComments(source))) offenders.push(path);
  }
  assertEquals(offenders, []);
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
