// REST routes for identity: accounts (admin creates; an account reads itself), API keys (create, list, revoke)
// and the audit chain (GET /api/v2/audit). Bodies are validated here; the IdentityPort
// (actors/business/identity.ts) authorizes key minting, audits every change in the same transaction, and owns the
// tokens. Imports spec/, transport/ and contract/ types only.
import type { Router } from "@koa/router";
import type {
  Account,
  AuditRecord,
  EnrollmentsPort,
  IdentityPort,
  KeyRow,
  NewKey,
} from "../../contract/identity.ts";
import { accountBody, enrollmentBody, keyBody } from "../../contract/rest-bodies.ts";
import type { AccountJson, ApiKeyJson, AuditRecordJson } from "../../contract/rest-responses.ts";
import type { Scope } from "../../spec/scopes.ts";
import { readJsonBody } from "./body.ts";
import { adminOnly, need, principalOf } from "./guard.ts";
import { iso } from "./json.ts";
import { intParam } from "./query.ts";

const ID = /^[a-z0-9_]{1,64}$/;

export const accountJson = (a: Account): AccountJson => ({
  account_id: a.account_id,
  name: a.name,
  kind: a.kind,
  created_at: iso(a.created_at),
});

export const keyJson = (k: KeyRow): ApiKeyJson => ({
  key_id: k.key_id,
  account_id: k.account_id,
  origin: k.origin,
  // Checked against SCOPES when the key was minted (keyBody): the store keeps them as strings.
  scopes: k.scopes as Scope[],
  created_at: iso(k.created_at),
  created_by: k.created_by,
  expires_at: iso(k.expires_at),
  revoked_at: iso(k.revoked_at),
  last_used_at: iso(k.last_used_at),
});

const newKeyJson = (k: NewKey) => ({ key_id: k.key_id, token: k.token, expires_at: iso(k.expires_at) });

export const auditJson = (r: AuditRecord): AuditRecordJson => ({ ...r, at: iso(r.at) });

export const clientOf = (ctx: { request: { socket: { remoteAddress?: string | undefined } } }) =>
  ctx.request.socket.remoteAddress ?? "unknown";

/** Adds the routes to `api` (the authenticated /api/v2 router). */
export function mountAccounts(api: Router, identity: IdentityPort, enrollments?: EnrollmentsPort): void {
  api.post("/accounts", async (ctx) => {
    adminOnly(ctx);
    const { value } = await readJsonBody(ctx, accountBody, 4096);
    const account = await identity.createAccount(principalOf(ctx), clientOf(ctx), value);
    ctx.state.audited = true;
    ctx.status = 201;
    ctx.body = { account_id: account.account_id, name: account.name, kind: account.kind };
  });
  api.get("/accounts", async (ctx) => {
    const p = principalOf(ctx);
    const all = await identity.accounts();
    ctx.body = {
      accounts: all.filter((a) => p.kind === "admin" || a.account_id === p.accountId).map(accountJson),
    };
  });
  api.get("/accounts/:id", async (ctx) => {
    ctx.body = accountJson(await identity.account(principalOf(ctx), pathId(ctx.params.id)));
  });
  api.post("/accounts/:id/keys", async (ctx) => {
    const { value } = await readJsonBody(ctx, keyBody, 4096);
    const key = await identity.createKey(principalOf(ctx), clientOf(ctx), pathId(ctx.params.id), value);
    ctx.state.audited = true;
    ctx.status = 201;
    ctx.body = newKeyJson(key);
  });
  api.get("/accounts/:id/keys", async (ctx) => {
    ctx.body = { keys: (await identity.keys(principalOf(ctx), pathId(ctx.params.id))).map(keyJson) };
  });
  api.delete("/keys/:id", async (ctx) => {
    await identity.revokeKey(principalOf(ctx), clientOf(ctx), pathId(ctx.params.id));
    ctx.state.audited = true;
    ctx.status = 204;
  });
  if (enrollments)
    api.post("/accounts/:id/enrollment-tokens", async (ctx) => {
      const p = need(ctx, "agents:enroll");
      const { value } = await readJsonBody(ctx, enrollmentBody, 4096);
      const e = await enrollments.mint(p, clientOf(ctx), pathId(ctx.params.id), value);
      ctx.state.audited = true;
      ctx.status = 201;
      ctx.body = { ...e, expires_at: iso(e.expires_at) };
    });
  // The admin reads the whole chain; an account's key reads what its account's keys did.
  api.get("/audit", async (ctx) => {
    const after = intParam(ctx, "after", 0, Number.MAX_SAFE_INTEGER) ?? 0;
    const limit = intParam(ctx, "limit", 1, 1000) ?? 100;
    ctx.body = { records: (await identity.auditAfter(principalOf(ctx), after, limit)).map(auditJson) };
  });
}

/** Ids in paths are checked before any lookup, so odd input is a plain 404 and never reaches the store oddly. */
function pathId(v: string | undefined): string {
  return v !== undefined && ID.test(v) ? v : "-";
}
