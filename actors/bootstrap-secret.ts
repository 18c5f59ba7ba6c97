// The CP's symmetric bootstrap secrets: 32 random bytes each in a file of the data dir (hex, 0600; bootstrap state
// like the CP identity key, never in the DB, never logged, never in REST), created on the first start and the same
// bytes on every later one. PLACEMENT_SECRET_FILE keys placement's tie-break, so which idle agent takes a
// deployment is unpredictable to agents yet stable across restarts; STORE_KEY_FILE seals secret values in the
// SQLite store (store/sealed-text.ts), so losing it makes those values unreadable.
import { randomBytes } from "node:crypto";
import { linkSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempNameFor } from "../lib/write-file-atomic.ts";
import { ValidationError } from "../spec/errors.ts";

export const PLACEMENT_SECRET_FILE = "placement.key";
export const STORE_KEY_FILE = "store.key";

/** DATA_DIR/`name`'s secret, created on the first start. */
export function loadOrCreateSecret(dataDir: string, name: string): Buffer {
  const file = join(dataDir, name);
  createExclusive(file, `${randomBytes(32).toString("hex")}\n`);
  const text = readFileSync(file, "utf8").trim();
  if (!/^[0-9a-f]{64}$/.test(text))
    throw new ValidationError("EE-CONFIG-INVALID", `${file} is not 32 hex-encoded bytes`);
  return Buffer.from(text, "hex");
}

/**
 * Writes a complete file at `file` unless one exists: written beside it, then hard-linked into place, which fails
 * when the name is taken. Two CPs starting on one data dir thus agree on the first one's secret; a rename would let
 * the second replace a key the first already sealed rows with.
 */
function createExclusive(file: string, text: string): void {
  const tmp = tempNameFor(file);
  try {
    writeFileSync(tmp, text, { mode: 0o600, flag: "wx" });
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
}
