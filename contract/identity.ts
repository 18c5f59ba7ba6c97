// The contract for identity and tenancy as the REST layer and eectl see them: accounts, API keys, OIDC bindings,
// resource owners, audit entries and records, and the ports the REST routes call (implemented by
// actors/business/identity.ts and enrollment.ts). Types only; may import spec/ and identity/ for types.
import type { OidcExchangeResult } from "../identity/oidc-exchange.ts";
import type { AccountKind, Principal } from "../spec/scopes.ts";

export interface AuditEntry {
  /** `admin`, `account:ID/key:ID`, `anonymous`, or `system`. */
  principal: string;
  /** The client's address, when the record comes from a request. */
  client?: string | null;
  /** What was asked, e.g. `account.create`, `key.revoke`, `deployment.create`, `auth.failed`. */
  action: string;
  /** What it was asked of, e.g. `account:acc_…`, or null. */
  target?: string | null;
  /** `ok`, or the refusal's error code. */
  outcome: string;
  details?: Record<string, unknown> | null;
}

export interface AuditRecord {
  seq: number;
  at: number;
  principal: string;
  client: string | null;
  action: string;
  target: string | null;
  outcome: string;
  details: Record<string, unknown> | null;
  prev_hash: string;
  hash: string;
}

export interface Account {
  account_id: string;
  name: string;
  kind: AccountKind;
  created_at: number;
}

export interface KeyRow {
  key_id: string;
  account_id: string;
  /** `key`: an API key an operator minted; `access`: a short-lived token issued by an exchange (OIDC). */
  origin: "key" | "access";
  /** SHA-256 of the token's secret part. */
  digest: Buffer;
  scopes: string[];
  created_at: number;
  created_by: string;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

export interface OidcBindingRow {
  binding_id: string;
  account_id: string;
  /** GitHub's numeric `repository_id` claim. */
  repository_id: number;
  /** GitHub's numeric `repository_owner_id` claim the token must carry; null: any. */
  repository_owner_id: number | null;
  /** The `ref` claim the token must carry (e.g. refs/heads/main); null: any. */
  ref: string | null;
  /** The job's deployment `environment` claim the token must carry; null: any. */
  environment: string | null;
  scopes: string[];
  created_at: number;
  created_by: string;
}

/** Kinds of runtime resources with an owner. */
export type OwnedKind = "deployment" | "app" | "agent";

/** The owner of a resource: an account id, `null` for the admin, `undefined` when nobody claimed it. */
export type Owner = string | null | undefined;

export interface NewKey {
  key_id: string;
  token: string;
  expires_at: number | null;
}

export interface NewEnrollment {
  token_id: string;
  token: string;
  expires_at: number;
  dedicated_to: string | null;
}

/** What a new OIDC binding names (POST /api/v2/oidc/bindings). */
export interface NewBinding {
  account_id: string;
  repository_id: number;
  repository_owner_id?: number;
  ref?: string;
  environment?: string;
  scopes: string[];
}

/** Accounts, keys, ownership and audit, as the REST routes use them (actors/business/identity.ts). */
export interface IdentityPort {
  authenticate(token: string | null, client: string): Promise<Principal>;
  createAccount(by: Principal, client: string, input: { name: string; kind: AccountKind }): Promise<Account>;
  accounts(): Promise<Account[]>;
  /** Throws NotFoundError for an account the caller may not read. */
  account(by: Principal, accountId: string): Promise<Account>;
  createKey(
    by: Principal,
    client: string,
    accountId: string,
    input: { scopes: string[]; expires_in_s?: number },
  ): Promise<NewKey>;
  keys(by: Principal, accountId: string): Promise<KeyRow[]>;
  revokeKey(by: Principal, client: string, keyId: string): Promise<void>;
  owner(kind: OwnedKind, id: string): Promise<Owner>;
  owned(kind: OwnedKind, accountId: string): Promise<Set<string>>;
  claim(kind: OwnedKind, id: string, owner: string | null, audit: AuditEntry): Promise<boolean>;
  audit(entry: AuditEntry): Promise<void>;
  auditAfter(by: Principal, after: number, limit: number): Promise<AuditRecord[]>;
  createBinding(by: Principal, client: string, input: NewBinding): Promise<OidcBindingRow>;
  bindings(repositoryId?: number): Promise<OidcBindingRow[]>;
}

/** Agent enrollment tokens (actors/business/enrollment.ts). */
export interface EnrollmentsPort {
  mint(
    by: Principal,
    client: string,
    accountId: string,
    input: { expires_in_s?: number; dedicated_to?: string },
  ): Promise<NewEnrollment>;
}

/** POST /api/v2/auth/oidc's port: the exchange under the per-source throttle of failed authentication. */
export interface OidcExchangePort {
  exchange(token: string, client: string): Promise<OidcExchangeResult>;
  audit(entry: AuditEntry): Promise<unknown>;
}
