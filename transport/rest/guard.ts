// Authorization checks for REST handlers: the scope a route needs, admin-only routes, and ownership of the
// resource asked for (another account's resource answers 404, as if it did not exist). The scope table per
// endpoint is in spec/scopes.md. Imports spec/ and contract/ types only.
import type Koa from "koa";
import type { OwnedKind, Owner } from "../../contract/identity.ts";
import { AuthError, NotFoundError } from "../../spec/errors.ts";
import type { Principal, Scope } from "../../spec/scopes.ts";

/** Ownership lookups (the business store's owners table); absent when the app runs without tenancy. */
export interface OwnersPort {
  owner(kind: OwnedKind, id: string): Promise<Owner>;
  owned(kind: OwnedKind, accountId: string): Promise<Set<string>>;
}

/** Set by requireBearer (auth.ts) on every /api/v2 request; a route outside it has no principal. */
export function principalOf(ctx: Koa.Context): Principal {
  const p = ctx.state.principal as Principal | undefined;
  if (!p) throw new AuthError("EE-AUTH-MISSING", "an Authorization: Bearer token is required");
  return p;
}

/** The principal, when it is the admin or holds `scope`; else 403 EE-AUTH-SCOPE. */
export function need(ctx: Koa.Context, scope: Scope): Principal {
  const p = principalOf(ctx);
  if (p.kind === "account" && !p.scopes.has(scope))
    throw new AuthError("EE-AUTH-SCOPE", `this operation needs the ${scope} scope`);
  return p;
}

export function adminOnly(ctx: Koa.Context): void {
  if (principalOf(ctx).kind !== "admin") throw new AuthError("EE-AUTH-SCOPE", "this operation is admin only");
}

/** adminOnly as route middleware, for routes that are admin only as a whole. */
export const adminRoute: Koa.Middleware = async (ctx, next) => {
  adminOnly(ctx);
  await next();
};

/** Whether the principal may see the resource: the admin always, an account when it owns it. */
export async function owns(p: Principal, owners: OwnersPort | undefined, kind: OwnedKind, id: string) {
  if (p.kind === "admin") return true;
  return owners !== undefined && (await owners.owner(kind, id)) === p.accountId;
}

/** 404 unless the principal may see the resource (`what` names it in the message, e.g. `deployment X`). */
export async function mustOwn(
  p: Principal,
  owners: OwnersPort | undefined,
  kind: OwnedKind,
  id: string,
  what: string,
): Promise<void> {
  if (!(await owns(p, owners, kind, id))) throw new NotFoundError("EE-NOT-FOUND", `${what} does not exist`);
}

/** The ids of `kind` an account owns, or null for the admin (everything). */
export async function visible(p: Principal, owners: OwnersPort | undefined, kind: OwnedKind) {
  if (p.kind === "admin") return null;
  return owners ? owners.owned(kind, p.accountId) : new Set<string>();
}
