// Reading a small state file that may not exist yet (a persisted workload, a pinned CP MRTD): its text, or null
// when absent. Any other failure is the caller's to report. Imports node:fs only.
import { readFileSync } from "node:fs";

export function readFileIfExists(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}
