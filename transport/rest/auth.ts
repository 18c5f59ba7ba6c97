// Bearer-token authentication for the REST API. The admin token is held only as a SHA-256 digest and compared in
// constant time, so neither memory dumps nor timing reveal it; account keys are checked by the IdentityPort
// (actors/business/identity.ts) the same way. The principal lands in ctx.state.principal for the guards.
import type { Middleware } from "koa";
import { tokenMatches } from "../../lib/token-digest.ts";
import { AuthError } from "../../spec/errors.ts";
import { ADMIN, type Principal } from "../../spec/scopes.ts";

/** Resolves a presented bearer token (null: none) from a client address to a principal, or throws AuthError. */
export type Authenticate = (token: string | null, client: string) => Promise<Principal>;

/** Only the admin token: what a REST app without an identity service accepts. */
export function adminOnly(adminDigest: Buffer): Authenticate {
  return async (token) => {
    if (token === null) throw new AuthError("EE-AUTH-MISSING", "an Authorization: Bearer token is required");
    if (!tokenMatches(token, adminDigest)) throw new AuthError("EE-AUTH-INVALID");
    return ADMIN;
  };
}

/** Requires `Authorization: Bearer <token>` on every request that reaches it. */
export function requireBearer(authenticate: Authenticate): Middleware {
  return async (ctx, next) => {
    const header = ctx.get("authorization");
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const token = header ? (match?.[1] ?? "") : null;
    ctx.state.principal = await authenticate(token, ctx.request.socket.remoteAddress ?? "unknown");
    await next();
  };
}
