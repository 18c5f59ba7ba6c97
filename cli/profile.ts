// The operator's profile written by `eectl login`: CP URL, CA certificate path and token in one JSON file, 0600,
// at $EE_PROFILE or ~/.config/easyenclave/profile.json. Operator commands fall back to it when neither a flag nor
// the environment names the CP or the token. Imports node: modules and lib/ only.
import { chmodSync, mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { writeFileAtomicSync } from "../lib/write-file-atomic.ts";
import { ValidationError } from "../spec/errors.ts";

export interface Profile {
  cp: string;
  token: string;
  cacert?: string;
}

export function profilePath(): string {
  return process.env.EE_PROFILE ?? join(homedir(), ".config", "easyenclave", "profile.json");
}

/** The stored profile, or null when there is none; a profile that is not ours is EE-CONFIG-INVALID. */
export function readProfile(): Profile | null {
  const file = profilePath();
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new ValidationError("EE-CONFIG-INVALID", `${file}: ${(err as Error).message}`);
  }
  try {
    const p = JSON.parse(text) as Profile;
    if (typeof p.cp === "string" && typeof p.token === "string") return p;
  } catch {
    // reported below
  }
  throw new ValidationError("EE-CONFIG-INVALID", `${file} is not an eectl profile (run eectl login again)`);
}

export function writeProfile(p: Profile): string {
  const file = profilePath();
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomicSync(file, `${JSON.stringify(p, null, 2)}\n`, 0o600);
  chmodSync(file, 0o600);
  return file;
}
