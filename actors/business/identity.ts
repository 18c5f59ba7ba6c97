// Identity and tenancy service: authenticates bearer tokens (the admin's break-glass token, account API keys and
// access tokens), manages accounts and keys with their audit records, answers ownership questions and writes
// every other audit record. Implements contract/identity.ts's IdentityPort; the store is the BusinessStore port.
import { randomBytes } from "node:crypto";
import type { NewBinding, NewKey } from "../../contract/identity.ts";
import type { Logger } from "../../lib/log.ts";
import { tokenMatches } from "../../lib/token-digest.ts";
import { AuthError, ConflictError, NotFoundError, OidcError, ValidationError } from "../../spec/errors.ts";
import { type AccountKind, ADMIN, type Principal, principalName, SCOPES_BY_KIND } from "../../spec/scopes.ts";
import { newKeyToken, parseKeyToken, secretMatches } from "./api-keys.ts";
import type { AuditEntry, AuditRecord } from "./audit-chain.ts";
import { AuthFailures } from "./auth-failures.ts";
import type { Account, BusinessStore, KeyRow, OidcBindingRow, OwnedKind, Owner } from "./store.ts";

export interface IdentityOptions {
  store: BusinessStore;
  /** The admin token's digest; updated in place on rotation (actors/admin-token.ts). */
  adminDigest: Buffer;
  log: Logger;
  now?: () => number;
  /** Failed authentications a source may have per window before it is throttled (default 120 a minute). */
  failLimit?: number;
  failWindowMs?: number;
}

/** last_used_at is written at most this often per key: a busy key must not turn every request into a write. */
const TOUCH_EVERY_MS = 60_000;
/** Longest lifetime of an access token issued by an exchange. */
export const MAX_ACCESS_TTL_S = 3600;

export class Identity {
  readonly #o: IdentityOptions;
  readonly #now: () => number;
  readonly #failures: AuthFailures;
  readonly #sweep: NodeJS.Timeout;

  constructor(o: IdentityOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    const windowMs = o.failWindowMs ?? 60_000;
    this.#failures = new AuthFailures({
      windowMs,
      limit: o.failLimit ?? 120,
      report: (source, count, first, codes) =>
        this.#record({
          principal: "anonymous",
          client: source,
          action: first ? "auth.failed" : "auth.failed.more",
          outcome: first ? (Object.keys(codes)[0] ?? "EE-AUTH-INVALID") : "refused",
          details: { count, codes },
        }),
    });
    this.#sweep = setInterval(() => this.#failures.sweep(this.#now()), windowMs);
    this.#sweep.unref();
  }

  /** The principal of a bearer token presented by `client`; every failure is counted for that source. */
  async authenticate(token: string | null, client: string): Promise<Principal> {
    return this.attempt(client, (now) => this.#principal(token, now));
  }

  /**
   * One authentication attempt from `client` (a bearer token, an OIDC exchange) under the per-source throttle:
   * 429 EE-AUTH-THROTTLED while the source is over its limit, and each refusal (401) counted and audited in
   * aggregate. Failures of ours (a JWKS that cannot be fetched: 503) are not the client's and are not counted.
   */
  async attempt<T>(client: string, fn: (now: number) => Promise<T>): Promise<T> {
    const now = this.#now();
    const wait = this.#failures.retryAfterS(client, now);
    if (wait > 0)
      throw new AuthError("EE-AUTH-THROTTLED", `too many failed authentications; retry in ${wait} s`, {
        retry_after_s: wait,
      });
    try {
      return await fn(now);
    } catch (err) {
      if ((err instanceof AuthError || err instanceof OidcError) && err.httpStatus === 401)
        this.#failures.failed(client, err.code, now);
      throw err;
    }
  }

  async #principal(token: string | null, now: number): Promise<Principal> {
    if (token === null) throw new AuthError("EE-AUTH-MISSING", "an Authorization: Bearer token is required");
    if (tokenMatches(token, this.#o.adminDigest)) return ADMIN;
    const parsed = parseKeyToken(token);
    const key = parsed && (await this.#o.store.key(parsed.keyId));
    if (!parsed || !key || !secretMatches(parsed.secret, key.digest)) throw new AuthError("EE-AUTH-INVALID");
    if (key.revoked_at !== null) throw new AuthError("EE-AUTH-REVOKED", `key ${key.key_id} was revoked`);
    if (key.expires_at !== null && key.expires_at <= now)
      throw new AuthError("EE-AUTH-EXPIRED", `key ${key.key_id} has expired`);
    const account = await this.#o.store.account(key.account_id);
    if (!account) throw new AuthError("EE-AUTH-INVALID");
    if (key.last_used_at === null || now - key.last_used_at >= TOUCH_EVERY_MS)
      await this.#o.store.touchKey(key.key_id, now);
    return {
      kind: "account",
      accountId: account.account_id,
      accountKind: account.kind,
      keyId: key.key_id,
      scopes: new Set(key.scopes),
    };
  }

  async createAccount(
    by: Principal,
    client: string,
    input: { name: string; kind: AccountKind },
  ): Promise<Account> {
    const account: Account = {
      account_id: `acc_${randomBytes(12).toString("hex")}`,
      name: input.name,
      kind: input.kind,
      created_at: this.#now(),
    };
    const existing = (await this.#o.store.accounts()).find((a) => a.name === input.name);
    if (existing) throw new ConflictError("EE-CONFLICT-STATE", `an account named ${input.name} exists`);
    await this.#o.store.createAccount(account, {
      principal: principalName(by),
      client,
      action: "account.create",
      target: `account:${account.account_id}`,
      outcome: "ok",
      details: { name: account.name, kind: account.kind },
    });
    return account;
  }

  accounts(): Promise<Account[]> {
    return this.#o.store.accounts();
  }

  /** The account, when the principal is the admin or acts for it; else (and when unknown) 404. */
  async account(by: Principal, accountId: string): Promise<Account> {
    const account = await this.#o.store.account(accountId);
    if (!account || (by.kind === "account" && by.accountId !== accountId))
      throw new NotFoundError("EE-NOT-FOUND", `account ${accountId} does not exist`);
    return account;
  }

  /**
   * A new API key. The admin mints keys for any account; an account's key may mint keys for its own account with
   * a subset of its own scopes, except a launcher's (launcher keys come from the admin only).
   */
  async createKey(
    by: Principal,
    client: string,
    accountId: string,
    input: { scopes: string[]; expires_in_s?: number },
  ): Promise<NewKey> {
    const account = await this.account(by, accountId);
    this.#checkScopes(account, input.scopes);
    if (by.kind === "account") {
      if (account.kind === "launcher")
        throw new AuthError("EE-AUTH-SCOPE", "launcher keys are minted by the admin only");
      const extra = input.scopes.filter((s) => !by.scopes.has(s));
      if (extra.length > 0)
        throw new AuthError(
          "EE-AUTH-SCOPE",
          `a key cannot grant scopes it does not hold: ${extra.join(", ")}`,
        );
    }
    const now = this.#now();
    const expiresAt = input.expires_in_s === undefined ? null : now + input.expires_in_s * 1000;
    return this.#mint(account, "key", input.scopes, expiresAt, by, client);
  }

  /**
   * A short-lived bearer token for `accountId` with `scopes` (the OIDC exchange's result): stored hashed like an
   * API key (origin `access`), accepted by `authenticate` until `ttlS` has passed. `by` names what issued it in
   * the audit record (e.g. `oidc:repository_id=123`).
   */
  async issueAccessToken(accountId: string, scopes: string[], ttlS: number, by: string): Promise<NewKey> {
    if (!Number.isInteger(ttlS) || ttlS < 1 || ttlS > MAX_ACCESS_TTL_S)
      throw new ValidationError("EE-REQ-INVALID", `ttl must be 1..${MAX_ACCESS_TTL_S} s`);
    const account = await this.#o.store.account(accountId);
    if (!account) throw new NotFoundError("EE-NOT-FOUND", `account ${accountId} does not exist`);
    this.#checkScopes(account, scopes);
    return this.#mint(account, "access", scopes, this.#now() + ttlS * 1000, by, null);
  }

  async keys(by: Principal, accountId: string): Promise<KeyRow[]> {
    await this.account(by, accountId);
    return this.#o.store.keys(accountId);
  }

  /** Revokes at once: the next request with the key is refused. The admin, or a key of the same account. */
  async revokeKey(by: Principal, client: string, keyId: string): Promise<void> {
    const key = await this.#o.store.key(keyId);
    if (!key || (by.kind === "account" && by.accountId !== key.account_id))
      throw new NotFoundError("EE-NOT-FOUND", `key ${keyId} does not exist`);
    const revoked = await this.#o.store.revokeKey(keyId, this.#now(), {
      principal: principalName(by),
      client,
      action: "key.revoke",
      target: `key:${keyId}`,
      outcome: "ok",
      details: { account_id: key.account_id },
    });
    if (!revoked) throw new ConflictError("EE-CONFLICT-STATE", `key ${keyId} is already revoked`);
  }

  /**
   * Lets CI of GitHub repository `repository_id` (on `ref`, when given) act for the account with `scopes`, through
   * the OIDC exchange (which looks the binding up with `bindings(repository_id)` and calls issueAccessToken).
   */
  async createBinding(by: Principal, client: string, input: NewBinding): Promise<OidcBindingRow> {
    const account = await this.account(by, input.account_id);
    this.#checkScopes(account, input.scopes);
    const row: OidcBindingRow = {
      binding_id: `bnd_${randomBytes(12).toString("hex")}`,
      account_id: account.account_id,
      repository_id: input.repository_id,
      repository_owner_id: input.repository_owner_id ?? null,
      ref: input.ref ?? null,
      environment: input.environment ?? null,
      scopes: [...new Set(input.scopes)].sort(),
      created_at: this.#now(),
      created_by: principalName(by),
    };
    await this.#o.store.createBinding(row, {
      principal: principalName(by),
      client,
      action: "oidc_binding.create",
      target: `binding:${row.binding_id}`,
      outcome: "ok",
      details: {
        account_id: row.account_id,
        repository_id: row.repository_id,
        repository_owner_id: row.repository_owner_id,
        ref: row.ref,
        environment: row.environment,
        scopes: row.scopes,
      },
    });
    return row;
  }

  bindings(repositoryId?: number): Promise<OidcBindingRow[]> {
    return this.#o.store.bindings(repositoryId);
  }

  owner(kind: OwnedKind, id: string): Promise<Owner> {
    return this.#o.store.owner(kind, id);
  }

  owned(kind: OwnedKind, accountId: string): Promise<Set<string>> {
    return this.#o.store.owned(kind, accountId);
  }

  claim(kind: OwnedKind, id: string, owner: string | null, audit: AuditEntry): Promise<boolean> {
    return this.#o.store.claim(kind, id, owner, audit);
  }

  async audit(entry: AuditEntry): Promise<void> {
    await this.#o.store.audit(entry);
  }

  /** The whole chain for the admin; an account's own records (what its keys did) for an account. */
  auditAfter(by: Principal, after: number, limit: number): Promise<AuditRecord[]> {
    return this.#o.store.auditAfter(after, limit, by.kind === "account" ? by.accountId : undefined);
  }

  /** Writes what failure windows still hold and stops the sweep. */
  stop(): void {
    clearInterval(this.#sweep);
    this.#failures.sweep(this.#now(), true);
  }

  #checkScopes(account: Account, scopes: string[]): void {
    const allowed: readonly string[] = SCOPES_BY_KIND[account.kind];
    const bad = scopes.filter((s) => !allowed.includes(s));
    if (bad.length > 0)
      throw new ValidationError(
        "EE-REQ-INVALID",
        `scopes: a ${account.kind} account may hold ${allowed.join(", ")}; not ${bad.join(", ")}`,
      );
  }

  async #mint(
    account: Account,
    origin: KeyRow["origin"],
    scopes: string[],
    expiresAt: number | null,
    by: Principal | string,
    client: string | null,
  ): Promise<NewKey> {
    const { keyId, token, digest } = newKeyToken();
    const createdBy = typeof by === "string" ? by : principalName(by);
    const now = this.#now();
    await this.#o.store.createKey(
      {
        key_id: keyId,
        account_id: account.account_id,
        origin,
        digest,
        scopes: [...new Set(scopes)].sort(),
        created_at: now,
        created_by: createdBy,
        expires_at: expiresAt,
        revoked_at: null,
        last_used_at: null,
      },
      {
        principal: createdBy,
        client,
        action: origin === "key" ? "key.create" : "access_token.issue",
        target: `key:${keyId}`,
        outcome: "ok",
        details: { account_id: account.account_id, scopes, expires_at: expiresAt },
      },
    );
    return { key_id: keyId, token, expires_at: expiresAt };
  }

  /** An audit write that must not fail the request it describes (a refusal is answered regardless). */
  #record(entry: AuditEntry): void {
    this.#o.store
      .audit(entry)
      .catch((err: unknown) => this.#o.log.error({ err }, "audit record write failed"));
  }
}
