// Making a program's data directory (0700), with a failure as a typed error that names the path and the setting
// it came from: a data dir under a regular file or without permission is an operator's mistake, not a crash.
// A data dir that group or others can write is refused (EE-DATA-DIR-INSECURE): whoever can write it can swap
// the keys, the database or the pinned state the program trusts. Imports node:fs, node:path and spec/errors.
import { chmodSync, mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { StartupError } from "../spec/errors.ts";

/** Creates `dir` (and its parents) unless it exists; `setting` is how the operator named it (`--data-dir`). */
export function ensureDataDir(dir: string, setting: string): void {
  try {
    // mkdir's mode is filtered by the umask; set it exactly on the directory made here.
    if (mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined) chmodSync(dir, 0o700);
    const mode = statSync(dir).mode & 0o777;
    if ((mode & 0o022) !== 0)
      throw new StartupError(
        "EE-DATA-DIR-INSECURE",
        `${setting} ${dir}: group or others can write it (mode ${mode.toString(8).padStart(4, "0")}); run chmod go-w ${dir} (0700 is best)`,
        { path: dir, setting, mode: `0${mode.toString(8)}` },
      );
  } catch (err) {
    if (err instanceof StartupError) throw err;
    throw new StartupError(
      "EE-DATA-DIR-UNUSABLE",
      `${setting} ${dir}: ${why(dir, err as NodeJS.ErrnoException)}`,
      {
        path: dir,
        setting,
        errno: (err as NodeJS.ErrnoException).code ?? null,
      },
    );
  }
}

/** The reason in the operator's terms: which path component is in the way, or the system's word for it. */
function why(dir: string, err: NodeJS.ErrnoException): string {
  if (err.code === "ENOTDIR" || err.code === "EEXIST") {
    for (let p = resolve(dir); p !== dirname(p); p = dirname(p))
      if (pathKind(p) === "other") return `${p} is a file, not a directory`;
  }
  if (err.code === "EACCES" || err.code === "EPERM") return "permission denied";
  return `cannot create it (${err.code ?? err.message})`;
}

/** What is at `path`: a directory, something else, or nothing (which includes a path under a file). */
export function pathKind(path: string): "directory" | "other" | "missing" {
  try {
    return statSync(path).isDirectory() ? "directory" : "other";
  } catch {
    return "missing";
  }
}
