// File-system steps that must never leave a half-written state behind: files go through lib/write-file-atomic;
// here a symlink is switched the same way (a temp link renamed over the old one: rename(2) replaces atomically).
import { readlink, rename, rm, symlink } from "node:fs/promises";
import { tempNameFor } from "../lib/write-file-atomic.ts";

export { writeFileAtomic } from "../lib/write-file-atomic.ts";

/** Points the symlink `link` at `target` (relative, so the tree can move); readers see the old or the new. */
export async function switchSymlink(link: string, target: string): Promise<void> {
  if ((await readlink(link).catch(() => null)) === target) return;
  const tmp = tempNameFor(link);
  await symlink(target, tmp);
  try {
    await rename(tmp, link);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
