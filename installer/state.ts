// The installation's record (opt/easyenclave/agent/state.json): the version `current` points at, the one it
// replaced (what rollback returns to) and how the service runs. Written atomically. Imports node:fs and
// installer/ siblings.
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "./fs-atomic.ts";
import type { Layout } from "./layout.ts";
import type { ServiceMode } from "./service.ts";

export interface InstallState {
  version: string;
  previous_version: string | null;
  mode: ServiceMode;
}

export async function readState(l: Layout): Promise<InstallState | null> {
  const text = await readFile(l.stateFile, "utf8").catch(() => null);
  return text === null ? null : (JSON.parse(text) as InstallState);
}

export async function writeState(l: Layout, state: InstallState): Promise<void> {
  await writeFileAtomic(l.stateFile, `${JSON.stringify(state, null, 2)}\n`, 0o644);
}
