// Bearer tokens at rest: a token is held only as its SHA-256 digest and a presented one is compared in constant
// time, so neither a memory dump nor timing reveals it. The REST auth, the admin token file and account keys all
// use these two. Imports node:crypto only.
import { createHash, timingSafeEqual } from "node:crypto";

export function hashToken(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

export function tokenMatches(presented: string, digest: Buffer): boolean {
  return timingSafeEqual(hashToken(presented), digest);
}
