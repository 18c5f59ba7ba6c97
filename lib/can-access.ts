// Whether a path can be accessed, for checks that only branch on it (is a config there yet, is a program on PATH,
// does systemd run). Imports node:fs.
import { access } from "node:fs/promises";

/** True when `path` exists (or allows `mode`, e.g. fs.constants.X_OK); false on any error. */
export function canAccess(path: string, mode?: number): Promise<boolean> {
  return access(path, mode).then(
    () => true,
    () => false,
  );
}
