// Without --unstable-net, UDP and reusePort fail with an error naming the
// flag (instead of "Deno.listenDatagram is not a function", or Deno ending
// the process for reusePort). The child runs with --no-config, so that
// this repository's deno.json ("unstable": ["net"]) does not turn it on.

import { assertEquals } from "@std/assert";

Deno.test("createDatagramEndpoint() and createServer({ reusePort }) name --unstable-net when it is off", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const loopUrl = new URL("../../loop/mod.ts", import.meta.url).href;
    const script = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      script,
      `import { DenoEventLoop } from ${JSON.stringify(loopUrl)};
const loop = new DenoEventLoop();
const out: string[] = [];
for (const attempt of [
  () => loop.createDatagramEndpoint(() => ({}) as never),
  () => loop.createServer(() => ({}) as never, "127.0.0.1", 0, { reusePort: true }),
]) {
  try {
    attempt();
    out.push("no error");
  } catch (error) {
    out.push(\`\${(error as Error).name}: \${(error as Error).message}\`);
  }
}
loop.close();
console.log(JSON.stringify(out));
`,
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--allow-net=127.0.0.1", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(code, 0, new TextDecoder().decode(stderr));
    const hint =
      `needs Deno's unstable net API; run deno with --unstable-net or add "unstable": ["net"] to your deno.json, received a Deno without it`;
    assertEquals(JSON.parse(new TextDecoder().decode(stdout)), [
      `NotSupported: Cannot call createDatagramEndpoint(): UDP ${hint}`,
      `NotSupported: Cannot call createServer(): reusePort ${hint}`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
