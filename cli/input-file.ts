// Files named on eectl's command line (--compose, --context): read whole, or EE-CLI-FILE naming the flag and the
// file, so a typo in a path is an operator's mistake with a code rather than a Node stack trace.
import { readFile } from "node:fs/promises";
import { readProblem } from "../lib/read-problem.ts";
import { CliError } from "../spec/errors.ts";

/** The bytes of `path`, given as `flag`; EE-CLI-FILE when it cannot be read. */
export async function readInputFile(path: string, flag: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new CliError("EE-CLI-FILE", `${flag} ${path}: ${readProblem(err)}`, {
      flag,
      path,
    });
  }
}
