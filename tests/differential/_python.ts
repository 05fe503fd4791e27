/**
 * Finds a Python 3.13 for the differential check: `TULIP_PYTHON`, else
 * `python3.13` or `python3` on the PATH, else a pyenv install of 3.13.
 *
 * @module
 */

/** The command of a Python 3.13, or why there is none. */
export async function findPython313(): Promise<
  { python: string } | { missing: string }
> {
  const home = Deno.env.get("PYENV_ROOT") ??
    `${Deno.env.get("HOME") ?? "/root"}/.pyenv`;
  const candidates = [Deno.env.get("TULIP_PYTHON"), "python3.13", "python3"];
  try {
    for await (const entry of Deno.readDir(`${home}/versions`)) {
      if (/^3\.13\.\d+$/.test(entry.name)) {
        candidates.push(`${home}/versions/${entry.name}/bin/python3`);
      }
    }
  } catch {
    // No pyenv.
  }
  for (const python of candidates) {
    if (python === undefined) continue;
    try {
      const out = await new Deno.Command(python, {
        args: ["-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
        stdout: "piped",
        stderr: "null",
      }).output();
      if (
        out.success && new TextDecoder().decode(out.stdout).trim() === "True"
      ) {
        return { python };
      }
    } catch {
      // Not there: the next one.
    }
  }
  return {
    missing:
      "no Python 3.13 found (set TULIP_PYTHON, or put python3.13 on the PATH)",
  };
}

/** Runs `count` programs from `start` on asyncio: seed, program, trace. */
export async function asyncioTraces(
  python: string,
  start: number,
  count: number,
): Promise<{ seed: number; program: unknown; trace: string[] }[]> {
  const out = await new Deno.Command(python, {
    args: [
      new URL("asyncio_programs.py", import.meta.url).pathname,
      String(start),
      String(count),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `asyncio_programs.py failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout).trim().split("\n").map((line) =>
    JSON.parse(line)
  );
}
