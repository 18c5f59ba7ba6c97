// Writing a file so that no reader (and no crash) ever sees half of it: write a temp file beside it, then
// rename(2) over the old one. Used for the agent's persisted workload, the CP's collateral cache and the
// installer's files. Imports node:fs only.
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

let counter = 0;

/** A temp name beside `path`, unique within this process and across processes. */
export function tempNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now()}-${counter++}`);
}

/** Writes `text` atomically with `mode`; the temp file never outlives a failure. */
export function writeFileAtomicSync(path: string, text: string, mode: number): void {
  const tmp = tempNameFor(path);
  try {
    // Its callers write into data dirs (CP, agent): a directory made here is theirs alone.
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(tmp, text, { mode });
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Writes `text` atomically with `mode` unless the file already holds exactly that; true when it wrote. */
export async function writeFileAtomic(path: string, text: string, mode: number): Promise<boolean> {
  const old = await readFile(path, "utf8").catch(() => null);
  if (old === text) return false;
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempNameFor(path);
  try {
    await writeFile(tmp, text, { mode });
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
  return true;
}
