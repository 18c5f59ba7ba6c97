// The token format of API keys (`eek_<id>_<secret>`) and agent enrollment tokens (`eet_<id>_<secret>`): id 24 hex
// characters (the lookup key), secret 32 random bytes base64url (256 bits). Only SHA-256(secret) is stored; a
// presented token is found by its id and its secret compared in constant time. Imports node:crypto only.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** `eek`: an API key or access token; `eet`: an agent enrollment token. */
export type TokenPrefix = "eek" | "eet";

export function newKeyToken(prefix: TokenPrefix = "eek"): { keyId: string; token: string; digest: Buffer } {
  const keyId = randomBytes(12).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  return { keyId, token: `${prefix}_${keyId}_${secret}`, digest: secretDigest(secret) };
}

/** The id and secret of a well-formed token with `prefix`, else null. */
export function parseKeyToken(
  token: string,
  prefix: TokenPrefix = "eek",
): { keyId: string; secret: string } | null {
  const m = /^([a-z]{3})_([0-9a-f]{24})_([A-Za-z0-9_-]{43})$/.exec(token);
  return m && m[1] === prefix ? { keyId: m[2]!, secret: m[3]! } : null;
}

export function secretMatches(secret: string, digest: Buffer): boolean {
  const presented = secretDigest(secret);
  return presented.length === digest.length && timingSafeEqual(presented, digest);
}

function secretDigest(secret: string): Buffer {
  return createHash("sha256").update(secret, "utf8").digest();
}
