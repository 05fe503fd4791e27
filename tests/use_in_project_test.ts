// README's "Use it in your project": a throwaway project outside the
// repository, beside a checkout (here a symlink to this one), imports
// "@tulip/tulip" through the import map the README shows, and runs.

import { assertEquals } from "@std/assert";

const CHECKOUT = new URL("..", import.meta.url);

function readmeImportMap(readme: string): string {
  const section = readme.split("\n## Use it in your project\n")[1]
    ?.split("\n## ")[0];
  const json = section?.match(/```json\n([\s\S]*?)```/)?.[1];
  if (json === undefined) {
    throw new Error('README has no import map under "Use it in your project"');
  }
  return json;
}

Deno.test("README's import map lets a project outside the repository import @tulip/tulip", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", CHECKOUT));
  const config = readmeImportMap(readme);
  const dir = await Deno.makeTempDir({ prefix: "tulip_project_" });
  try {
    await Deno.symlink(CHECKOUT.pathname, `${dir}/tulip`);
    await Deno.mkdir(`${dir}/app`);
    await Deno.writeTextFile(`${dir}/app/deno.json`, config);
    await Deno.writeTextFile(
      `${dir}/app/main.ts`,
      `import { run, sleep } from "@tulip/tulip";
import { VirtualTimeLoop } from "@tulip/tulip/testing";

const answer = await run(function* () {
  yield* sleep(0.001);
  return 6 * 7;
});
const loop = new VirtualTimeLoop();
await loop.runUntilComplete(sleep(60, undefined, { loop }));
console.log(answer, loop.time() >= 60);
loop.close();
`,
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "main.ts"],
      cwd: `${dir}/app`,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const err = new TextDecoder().decode(stderr);
    assertEquals(code, 0, err);
    assertEquals(new TextDecoder().decode(stdout), "42 true\n", err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
