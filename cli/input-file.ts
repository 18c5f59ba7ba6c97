// Files named on eectl's command line (--compose, --context): read whole, or EE-CLI-FILE naming the flag and the
// file, so a typo in a path is an operator's mistake with a code rather than a Node stack trace.
import { readFile } from "node:fs/promises";
import { CliError } from "../spec/errors.ts";

const WHY: Record<string, string> = {
  ENOENT: "no such file",
  EISDIR: "is a directory",
  EACCES: "permission denied",
  ENOTDIR: "a parent of it is not a directory",
};

/** The bytes of `path`, given as `flag`; EE-CLI-FILE when it cannot be read. */
export async function readInputFile(path: string, flag: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "";
    throw new CliError("EE-CLI-FILE", `${flag} ${path}: ${WHY[code] ?? `cannot be read (${code || err})`}`, {
      flag,
      path,
    });
  }
}
