// The API key token format: `eek_<key id>_<secret>`, key id 24 hex characters (the lookup key), secret 32 random
// bytes base64url (256 bits). Only SHA-256(secret) is stored; a presented token is found by its id and its
// secret compared in constant time. Imports node:crypto only.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

const TOKEN = /^eek_([0-9a-f]{24})_([A-Za-z0-9_-]{43})$/;

export function newKeyToken(): { keyId: string; token: string; digest: Buffer } {
  const keyId = randomBytes(12).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  return { keyId, token: `eek_${keyId}_${secret}`, digest: secretDigest(secret) };
}

/** The id and secret of a well-formed key token, else null. */
export function parseKeyToken(token: string): { keyId: string; secret: string } | null {
  const m = TOKEN.exec(token);
  return m ? { keyId: m[1]!, secret: m[2]! } : null;
}

export function secretMatches(secret: string, digest: Buffer): boolean {
  const presented = secretDigest(secret);
  return presented.length === digest.length && timingSafeEqual(presented, digest);
}

function secretDigest(secret: string): Buffer {
  return createHash("sha256").update(secret, "utf8").digest();
}
