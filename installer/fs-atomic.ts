// File-system steps that must never leave a half-written state behind: a file written to a temp name and
// renamed over the old one, and a symlink switched the same way (rename(2) replaces atomically). Imports node:fs.
import { mkdir, readFile, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now()}`);
}

/** Writes `text` with `mode` unless the file already holds exactly that; true when it wrote. */
export async function writeFileAtomic(path: string, text: string, mode: number): Promise<boolean> {
  const old = await readFile(path, "utf8").catch(() => null);
  if (old === text) return false;
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempName(path);
  try {
    await writeFile(tmp, text, { mode });
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
  return true;
}

/** Points the symlink `link` at `target` (relative, so the tree can move); readers see the old or the new. */
export async function switchSymlink(link: string, target: string): Promise<void> {
  if ((await readlink(link).catch(() => null)) === target) return;
  const tmp = tempName(link);
  await symlink(target, tmp);
  try {
    await rename(tmp, link);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
