// The installation's record (opt/easyenclave/agent/state.json): the version `current` points at, the one it
// replaced (what rollback returns to) and how the service runs. Written atomically. Imports node:fs, zod,
// spec/errors and installer/ siblings.
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { ValidationError } from "../spec/errors.ts";
import { writeFileAtomic } from "./fs-atomic.ts";
import type { Layout } from "./layout.ts";
import type { ServiceMode } from "./service.ts";

export interface InstallState {
  version: string;
  previous_version: string | null;
  mode: ServiceMode;
}

const stateSchema = z.object({
  version: z.string(),
  previous_version: z.string().nullable(),
  mode: z.enum(["systemd", "supervisor", "none"] satisfies ServiceMode[]),
});

/** The record, or null before the first install. Throws EE-CONFIG-INVALID when it is not one (hand-edited, cut short). */
export async function readState(l: Layout): Promise<InstallState | null> {
  const text = await readFile(l.stateFile, "utf8").catch(() => null);
  if (text === null) return null;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success)
    throw new ValidationError("EE-CONFIG-INVALID", `${l.stateFile}: not an installation record`);
  return parsed.data;
}

export async function writeState(l: Layout, state: InstallState): Promise<void> {
  await writeFileAtomic(l.stateFile, `${JSON.stringify(state, null, 2)}\n`, 0o644);
}
