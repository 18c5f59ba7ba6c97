// The admin token's bootstrap state: its SHA-256 digest in DATA_DIR/admin-token.sha256 (the token itself never
// touches the disk). Resolved at start but written only once the CP serves, so a start that fails leaves nothing
// that would lock the operator out; replaced by `eectl admin-token rotate`, and re-read by a running CP.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, unwatchFile, watchFile } from "node:fs";
import { join } from "node:path";
import { hashToken } from "../lib/token-digest.ts";
import { writeFileAtomicSync } from "../lib/write-file-atomic.ts";
import { ValidationError } from "../spec/errors.ts";

export const ADMIN_DIGEST_FILE = "admin-token.sha256";

/** How often a running CP looks at the digest file for a rotation (a stat, no read unless it changed). */
const WATCH_INTERVAL_MS = 1_000;

export interface AdminToken {
  /** What requests are checked against; updated in place when the file changes (see watch). */
  digest: Buffer;
  /** Set only when this start generated the token: shown once, after `persist`. */
  generated: string | null;
  /** True when the digest came from the file, from an earlier start or a rotation. */
  stored: boolean;
  file: string;
  /** Writes the digest for the next start; called once the CP serves. */
  persist(): void;
}

/** The given token (stored for the next start), else the stored digest, else a newly generated token. */
export function resolveAdminToken(dataDir: string, token: string | undefined): AdminToken {
  const file = join(dataDir, ADMIN_DIGEST_FILE);
  if (token === undefined && existsSync(file))
    return { digest: readDigest(file), generated: null, stored: true, file, persist: () => {} };
  const generated = token === undefined ? newToken() : null;
  const given = token ?? (generated as string);
  if (given.length < 16)
    throw new ValidationError("EE-CONFIG-INVALID", "the admin token must be at least 16 characters");
  const digest = hashToken(given);
  return { digest, generated, stored: false, file, persist: () => writeDigest(file, digest) };
}

/** A new admin token for the data dir: its digest replaces the stored one; the token is returned, never stored. */
export function rotateAdminToken(dataDir: string): { token: string; file: string } {
  const file = join(dataDir, ADMIN_DIGEST_FILE);
  const token = newToken();
  writeDigest(file, hashToken(token));
  return { token, file };
}

/**
 * Follows rotations while the CP runs: when the file changes, the new digest is copied into `admin.digest` (the
 * buffer the auth middleware holds), so the old token stops working and the new one works without a restart.
 * A file that is removed or unreadable keeps the current token. Returns the function that stops watching.
 */
export function watchAdminToken(admin: AdminToken, onRotated: (err?: unknown) => void): () => void {
  const changed = () => {
    try {
      if (!existsSync(admin.file)) return;
      const next = readDigest(admin.file);
      if (next.equals(admin.digest)) return;
      next.copy(admin.digest);
      onRotated();
    } catch (err) {
      onRotated(err);
    }
  };
  watchFile(admin.file, { interval: WATCH_INTERVAL_MS, persistent: false }, changed);
  return () => unwatchFile(admin.file, changed);
}

function newToken(): string {
  return `ee_${randomBytes(24).toString("base64url")}`;
}

function readDigest(file: string): Buffer {
  const hex = readFileSync(file, "utf8").trim();
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new ValidationError("EE-CONFIG-INVALID", `${file} is not a SHA-256 hex digest`);
  return Buffer.from(hex, "hex");
}

function writeDigest(file: string, digest: Buffer): void {
  // Atomic: a running CP that re-reads the file never sees half a digest.
  writeFileAtomicSync(file, `${digest.toString("hex")}\n`, 0o600);
}
