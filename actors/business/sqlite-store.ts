// The business store on SQLite: its own file (DATA_DIR/business.db, WAL) opened through actors/store/db.ts with
// BUSINESS_MIGRATIONS. Each change and its audit record commit in one better-sqlite3 transaction; the chain's
// head is read inside it, so records are gapless and linked even with several writers on the file.
import { type Db, openDatabase } from "../store/db.ts";
import type { AppRow } from "../store/deployment-store.ts";
import type { TextSealer } from "../store/sealed-text.ts";
import { openApp, type RawApp, sealAppCompose } from "./app-rows.ts";
import { type AuditEntry, type AuditRecord, nextRecord } from "./audit-chain.ts";
import { BUSINESS_DB_FILE, BUSINESS_MIGRATIONS } from "./migrations.ts";
import type {
  Account,
  AppRegistry,
  BusinessStore,
  EnrollmentRow,
  KeyRow,
  OidcBindingRow,
  OwnedKind,
  Owner,
} from "./store.ts";

/** Keys and OIDC bindings keep their scopes as JSON text; both adapters read rows through these. */
export type RawKey = Omit<KeyRow, "scopes"> & { scopes: string };
export const keyFromRaw = (r: RawKey): KeyRow => ({ ...r, scopes: JSON.parse(r.scopes) as string[] });
export type RawBinding = Omit<OidcBindingRow, "scopes"> & { scopes: string };
export const bindingFromRaw = (r: RawBinding): OidcBindingRow => ({
  ...r,
  scopes: JSON.parse(r.scopes) as string[],
});
interface RawAudit extends Omit<AuditRecord, "details"> {
  details: string | null;
}

export function openBusinessDb(dataDir: string): Db {
  return openDatabase(dataDir, BUSINESS_MIGRATIONS, BUSINESS_DB_FILE);
}

export const auditFromRaw = (r: RawAudit): AuditRecord => ({
  ...r,
  details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>),
});

export class SqliteBusinessStore implements BusinessStore, AppRegistry {
  readonly #db: Db;
  readonly #now: () => number;
  readonly #sealer: TextSealer;
  readonly #q;
  readonly #append: (e: AuditEntry) => AuditRecord;

  /** `sealer` seals app composes (their environment values are the workloads' secrets) before they are stored. */
  constructor(db: Db, sealer: TextSealer, now: () => number = Date.now) {
    this.#db = db;
    this.#sealer = sealer;
    this.#now = now;
    this.#append = auditAppender(db, now);
    this.#q = {
      insertAccount: db.prepare(
        "INSERT INTO accounts (account_id, name, kind, created_at) VALUES (@account_id, @name, @kind, @created_at)",
      ),
      accounts: db.prepare("SELECT * FROM accounts ORDER BY created_at, account_id"),
      account: db.prepare("SELECT * FROM accounts WHERE account_id = ?"),
      insertKey:
        db.prepare(`INSERT INTO api_keys (key_id, account_id, origin, digest, scopes, created_at, created_by,
        expires_at, revoked_at, last_used_at) VALUES (@key_id, @account_id, @origin, @digest, @scopes, @created_at,
        @created_by, @expires_at, @revoked_at, @last_used_at)`),
      key: db.prepare("SELECT * FROM api_keys WHERE key_id = ?"),
      keys: db.prepare("SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at, key_id"),
      revoke: db.prepare("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL"),
      touch: db.prepare("UPDATE api_keys SET last_used_at = ? WHERE key_id = ?"),
      owner: db.prepare("SELECT account_id FROM owners WHERE kind = ? AND resource_id = ?"),
      owned: db.prepare("SELECT resource_id FROM owners WHERE kind = ? AND account_id = ?"),
      claim: db.prepare(
        "INSERT INTO owners (kind, resource_id, account_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
      ),
      auditAfter: db.prepare("SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?"),
      // Principals are `account:ID/key:ID`: a prefix range on the text, no LIKE escaping needed.
      auditOfAccount: db.prepare(
        "SELECT * FROM audit WHERE seq > ? AND principal >= ? AND principal < ? ORDER BY seq LIMIT ?",
      ),
      insertEnrollment: db.prepare(`INSERT INTO enrollment_tokens (token_id, account_id, digest, dedicated_to,
        created_at, created_by, expires_at, used_at, agent_id) VALUES (@token_id, @account_id, @digest,
        @dedicated_to, @created_at, @created_by, @expires_at, @used_at, @agent_id)`),
      enrollments: db.prepare("SELECT * FROM enrollment_tokens ORDER BY created_at"),
      useEnrollment: db.prepare(
        "UPDATE enrollment_tokens SET used_at = ?, agent_id = ? WHERE token_id = ? AND used_at IS NULL",
      ),
      enrollmentAccount: db.prepare("SELECT account_id FROM enrollment_tokens WHERE token_id = ?"),
      insertBinding:
        db.prepare(`INSERT INTO oidc_bindings (binding_id, account_id, repository_id, repository_owner_id,
        ref, environment, scopes, created_at, created_by) VALUES (@binding_id, @account_id, @repository_id,
        @repository_owner_id, @ref, @environment, @scopes, @created_at, @created_by)`),
      bindings: db.prepare("SELECT * FROM oidc_bindings ORDER BY created_at, binding_id"),
      bindingsOf: db.prepare(
        "SELECT * FROM oidc_bindings WHERE repository_id = ? ORDER BY created_at, binding_id",
      ),
      forgetSpent: db.prepare("DELETE FROM oidc_spent WHERE until <= ?"),
      spend: db.prepare("INSERT INTO oidc_spent (jti, until) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING"),
      appPut: db.prepare(
        "INSERT INTO apps (name, version, compose, compose_hash, health, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      ),
      appGet: db.prepare("SELECT * FROM apps WHERE name = ? AND version = ?"),
      appLatest: db.prepare(
        "SELECT * FROM apps WHERE name = ? ORDER BY created_at DESC, version DESC LIMIT 1",
      ),
      appList: db.prepare("SELECT * FROM apps ORDER BY name, created_at DESC, version DESC"),
      setAgentOwner: db.prepare(
        "INSERT OR REPLACE INTO owners (kind, resource_id, account_id, created_at) VALUES ('agent', ?, ?, ?)",
      ),
    };
  }

  async createAccount(account: Account, audit: AuditEntry): Promise<void> {
    this.#tx(audit, () => this.#q.insertAccount.run(account));
  }

  async accounts(): Promise<Account[]> {
    return this.#q.accounts.all() as Account[];
  }

  async account(accountId: string): Promise<Account | undefined> {
    return this.#q.account.get(accountId) as Account | undefined;
  }

  async createKey(key: KeyRow, audit: AuditEntry): Promise<void> {
    this.#tx(audit, () => this.#q.insertKey.run({ ...key, scopes: JSON.stringify(key.scopes) }));
  }

  async key(keyId: string): Promise<KeyRow | undefined> {
    const raw = this.#q.key.get(keyId) as RawKey | undefined;
    return raw && keyFromRaw(raw);
  }

  async keys(accountId: string): Promise<KeyRow[]> {
    return (this.#q.keys.all(accountId) as RawKey[]).map(keyFromRaw);
  }

  async revokeKey(keyId: string, at: number, audit: AuditEntry): Promise<boolean> {
    return this.#db.transaction(() => {
      if (this.#q.revoke.run(at, keyId).changes === 0) return false;
      this.#append(audit);
      return true;
    })();
  }

  async touchKey(keyId: string, at: number): Promise<void> {
    this.#q.touch.run(at, keyId);
  }

  async owner(kind: OwnedKind, resourceId: string): Promise<Owner> {
    const row = this.#q.owner.get(kind, resourceId) as { account_id: string | null } | undefined;
    return row?.account_id;
  }

  async owned(kind: OwnedKind, accountId: string): Promise<Set<string>> {
    const rows = this.#q.owned.all(kind, accountId) as { resource_id: string }[];
    return new Set(rows.map((r) => r.resource_id));
  }

  async claim(
    kind: OwnedKind,
    resourceId: string,
    accountId: string | null,
    audit: AuditEntry,
  ): Promise<boolean> {
    return this.#db.transaction(() => {
      if (this.#q.claim.run(kind, resourceId, accountId, this.#now()).changes === 1) {
        this.#append(audit);
        return true;
      }
      const row = this.#q.owner.get(kind, resourceId) as { account_id: string | null };
      return row.account_id === accountId;
    })();
  }

  async createEnrollment(row: EnrollmentRow, audit: AuditEntry): Promise<void> {
    this.#tx(audit, () => this.#q.insertEnrollment.run(row));
  }

  async enrollments(): Promise<EnrollmentRow[]> {
    return this.#q.enrollments.all() as EnrollmentRow[];
  }

  async useEnrollment(tokenId: string, agentId: string, at: number, audit: AuditEntry): Promise<boolean> {
    return this.#db.transaction(() => {
      if (this.#q.useEnrollment.run(at, agentId, tokenId).changes === 0) return false;
      const { account_id } = this.#q.enrollmentAccount.get(tokenId) as { account_id: string };
      // An agent enrolled again (a new token) changes hands: the latest enrollment is its owner.
      this.#q.setAgentOwner.run(agentId, account_id, at);
      this.#append(audit);
      return true;
    })();
  }

  async createBinding(row: OidcBindingRow, audit: AuditEntry): Promise<void> {
    this.#tx(audit, () => this.#q.insertBinding.run({ ...row, scopes: JSON.stringify(row.scopes) }));
  }

  async bindings(repositoryId?: number): Promise<OidcBindingRow[]> {
    const rows = (
      repositoryId === undefined ? this.#q.bindings.all() : this.#q.bindingsOf.all(repositoryId)
    ) as RawBinding[];
    return rows.map(bindingFromRaw);
  }

  async spendJti(jti: string, until: number, now: number): Promise<boolean> {
    return this.#db.transaction(() => {
      this.#q.forgetSpent.run(now);
      return this.#q.spend.run(jti, until).changes === 1;
    })();
  }

  async putApp(app: AppRow, audit: AuditEntry | null): Promise<boolean> {
    try {
      this.#db.transaction(() => {
        this.#q.appPut.run(
          app.name,
          app.version,
          sealAppCompose(app, this.#sealer),
          app.compose_hash,
          app.health ? JSON.stringify(app.health) : null,
          app.created_at,
        );
        if (audit) this.#append(audit);
      })();
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_PRIMARYKEY") return false;
      throw err;
    }
  }

  app(name: string, version?: string): AppRow | undefined {
    const r = (version === undefined ? this.#q.appLatest.get(name) : this.#q.appGet.get(name, version)) as
      | RawApp
      | undefined;
    return r && this.#appOf(r);
  }

  apps(): AppRow[] {
    return (this.#q.appList.all() as RawApp[]).map((r) => this.#appOf(r));
  }

  #appOf(r: RawApp): AppRow {
    return openApp(r, this.#sealer);
  }

  /**
   * Copies the apps a runtime DB of before the business store holds (its migration 3 table), once: rows already
   * here are kept. Not audited: nothing changes hands.
   */
  importApps(runtimeDb: Db): number {
    const rows = runtimeDb.prepare("SELECT * FROM apps").all() as RawApp[];
    const insert = this.#db.prepare(
      "INSERT OR IGNORE INTO apps (name, version, compose, compose_hash, health, created_at) VALUES (@name, @version, @compose, @compose_hash, @health, @created_at)",
    );
    let n = 0;
    this.#db.transaction(() => {
      for (const r of rows) n += insert.run(r).changes;
    })();
    return n;
  }

  async audit(entry: AuditEntry): Promise<AuditRecord> {
    return this.#db.transaction(() => this.#append(entry))();
  }

  async auditAfter(after: number, limit: number, accountId?: string): Promise<AuditRecord[]> {
    const rows =
      accountId === undefined
        ? this.#q.auditAfter.all(after, limit)
        : this.#q.auditOfAccount.all(after, `account:${accountId}/`, `account:${accountId}0`, limit);
    return (rows as RawAudit[]).map(auditFromRaw);
  }

  close(): void {
    this.#db.close();
  }

  #tx(audit: AuditEntry, change: () => void): void {
    this.#db.transaction(() => {
      change();
      this.#append(audit);
    })();
  }
}

/**
 * Appends to the audit chain of a business DB: call inside a transaction of `db`, so the head read and the new
 * record commit with the change they record (the ledger's store on the same file uses it too).
 */
export function auditAppender(db: Db, now: () => number = Date.now): (e: AuditEntry) => AuditRecord {
  const head = db.prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1");
  const insert = db.prepare(`INSERT INTO audit (seq, at, principal, client, action, target, outcome, details,
    prev_hash, hash) VALUES (@seq, @at, @principal, @client, @action, @target, @outcome, @details, @prev_hash,
    @hash)`);
  return (e) => {
    const record = nextRecord(head.get() as { seq: number; hash: string } | undefined, e, now());
    insert.run({ ...record, details: record.details && JSON.stringify(record.details) });
    return record;
  };
}
