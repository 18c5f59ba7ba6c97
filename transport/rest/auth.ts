// Bearer-token authentication for the REST API. Tokens are held only as SHA-256 digests and compared in
// constant time, so neither memory dumps nor timing reveal them.
import { createHash, timingSafeEqual } from "node:crypto";
import type { Middleware } from "koa";
import { AuthError } from "../../spec/errors.ts";

export function hashToken(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

export function tokenMatches(presented: string, digest: Buffer): boolean {
  return timingSafeEqual(hashToken(presented), digest);
}

/** Requires `Authorization: Bearer <admin token>` on every request that reaches it. */
export function requireAdmin(adminDigest: Buffer): Middleware {
  return async (ctx, next) => {
    const header = ctx.get("authorization");
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!header) throw new AuthError("EE-AUTH-MISSING", "an Authorization: Bearer token is required");
    if (!match || !tokenMatches(match[1]!, adminDigest)) throw new AuthError("EE-AUTH-INVALID");
    await next();
  };
}
