// The placement secret: 32 random bytes in DATA_DIR/placement.key (hex, 0600; bootstrap state like the CP identity
// key, never in the DB, never logged, never in REST). It keys placement's tie-break, so which idle agent takes a
// deployment is unpredictable to agents yet stable across restarts of this CP.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomicSync } from "../lib/write-file-atomic.ts";
import { ValidationError } from "../spec/errors.ts";

export const PLACEMENT_SECRET_FILE = "placement.key";

/** The stored secret, created on the first start. */
export function loadOrCreatePlacementSecret(dataDir: string): Buffer {
  const file = join(dataDir, PLACEMENT_SECRET_FILE);
  if (!existsSync(file)) writeFileAtomicSync(file, `${randomBytes(32).toString("hex")}\n`, 0o600);
  const text = readFileSync(file, "utf8").trim();
  if (!/^[0-9a-f]{64}$/.test(text))
    throw new ValidationError("EE-CONFIG-INVALID", `${file} is not 32 hex-encoded bytes`);
  return Buffer.from(text, "hex");
}
