// Who a REST request acts as, and the scope table: the account kinds, the scopes, which kind may hold which
// (spec/scopes.md is the prose and the per-endpoint table). Shared by the identity service
// (actors/business/identity.ts) and the REST guards (transport/rest/guard.ts). Imports nothing.

export const ACCOUNT_KINDS = ["tenant", "provider", "launcher"] as const;
export type AccountKind = (typeof ACCOUNT_KINDS)[number];

/**
 * deploy: create, update, undeploy and preflight the account's own deployments, register its apps.
 * read: read its own deployments, apps, their agents and logs.
 * agents:read: a provider reads the agents it enrolled. agents:enroll: a provider mints enrollment tokens.
 * launch: reserved for launcher accounts (capacity orders).
 */
export const SCOPES = ["deploy", "read", "agents:read", "agents:enroll", "launch"] as const;
export type Scope = (typeof SCOPES)[number];

/** What each account kind may be given: a tenant never holds provider scopes and the other way round. */
export const SCOPES_BY_KIND: Record<AccountKind, readonly Scope[]> = {
  tenant: ["deploy", "read"],
  provider: ["agents:read", "agents:enroll"],
  launcher: ["launch", "agents:read"],
};

export type Principal =
  | { kind: "admin" }
  | {
      kind: "account";
      accountId: string;
      accountKind: AccountKind;
      keyId: string;
      scopes: ReadonlySet<string>;
    };

export const ADMIN: Principal = { kind: "admin" };

/** How a principal is named in audit records. */
export function principalName(p: Principal | null): string {
  if (p === null) return "anonymous";
  return p.kind === "admin" ? "admin" : `account:${p.accountId}/key:${p.keyId}`;
}

/** The owner id a principal's new resources get: its account, or null for the admin. */
export const ownerOf = (p: Principal): string | null => (p.kind === "admin" ? null : p.accountId);
