// Which command-line tools the interop tests can use here.

/**
 * Whether the command-line tool `cmd` runs here (`args` should make it
 * exit at once with success). Interop tests that need one (python3, curl)
 * use it to skip, with the reason in their name, on a machine without it.
 */
export async function hasTool(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output()).success;
  } catch {
    return false;
  }
}

const DECODER = new TextDecoder();

/** Whether python3 runs here. */
export const HAS_PYTHON = await hasTool("python3", ["-c", "pass"]);
/** Whether curl runs here. */
export const HAS_CURL = await hasTool("curl", ["--version"]);

/**
 * The name of a test that needs `tool`: as given when the tool is there,
 * with " (skipped: <tool> not found)" when it is not, so the skip shows in
 * the test report with its reason.
 */
export function needing(name: string, tool: string, present: boolean): string {
  return present ? name : `${name} (skipped: ${tool} not found)`;
}

/** Runs a command to completion, killing it by pid if it outlives `seconds`. */
export async function command(
  cmd: string,
  args: string[],
  stdin?: Uint8Array,
  seconds = 15,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, seconds * 1000);
  try {
    if (stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(stdin);
      await writer.close();
    }
    const out = await child.output();
    return {
      code: out.code,
      stdout: DECODER.decode(out.stdout),
      stderr: DECODER.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}
