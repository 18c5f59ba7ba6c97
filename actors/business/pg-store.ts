// The business store on PostgreSQL (`--business-db postgres://…`): the same tables as business.db (the SQLite
// migrations, translated by pg-db.ts), one transaction per method with the audit record in it. The AppRegistry's
// synchronous reads answer from memory: apps are loaded at open, and a new one joins it once committed. Imports
// pg-db.ts, the port, the chain and the sealer type.
import type pg from "pg";
import type { Db } from "../store/db.ts";
import type { AppRow } from "../store/deployment-store.ts";
import type { TextSealer } from "../store/sealed-text.ts";
import { openApp, type RawApp, sealAppCompose } from "./app-rows.ts";
import type { AuditEntry, AuditRecord } from "./audit-chain.ts";
import { appendAuditPg, inTx } from "./pg-db.ts";
import { auditFromRaw, bindingFromRaw, keyFromRaw, type RawBinding, type RawKey } from "./sqlite-store.ts";
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

const appKey = (name: string, version: string) => `${name}@${version}`;
const UNIQUE_VIOLATION = "23505";
/** Newest first: created_at, then version, as the SQLite store orders them. */
const newestFirst = (a: AppRow, b: AppRow) =>
  b.created_at - a.created_at || (a.version < b.version ? 1 : a.version > b.version ? -1 : 0);

export class PgBusinessStore implements BusinessStore, AppRegistry {
  readonly #pool: pg.Pool;
  readonly #sealer: TextSealer;
  readonly #now: () => number;
  readonly #apps = new Map<string, AppRow>();

  private constructor(pool: pg.Pool, sealer: TextSealer, now: () => number) {
    this.#pool = pool;
    this.#sealer = sealer;
    this.#now = now;
  }

  /** `pool`: migrated (openPgPool with BUSINESS_MIGRATIONS); the apps are read from it once. */
  static async open(
    pool: pg.Pool,
    sealer: TextSealer,
    now: () => number = Date.now,
  ): Promise<PgBusinessStore> {
    const store = new PgBusinessStore(pool, sealer, now);
    const { rows } = await pool.query<RawApp>("SELECT * FROM apps");
    for (const r of rows) store.#remember(r);
    return store;
  }

  async createAccount(a: Account, audit: AuditEntry): Promise<void> {
    await this.#tx(audit, (c) =>
      c.query("INSERT INTO accounts (account_id, name, kind, created_at) VALUES ($1, $2, $3, $4)", [
        a.account_id,
        a.name,
        a.kind,
        a.created_at,
      ]),
    );
  }

  async accounts(): Promise<Account[]> {
    return (await this.#pool.query<Account>("SELECT * FROM accounts ORDER BY created_at, account_id")).rows;
  }

  async account(accountId: string): Promise<Account | undefined> {
    return (await this.#pool.query<Account>("SELECT * FROM accounts WHERE account_id = $1", [accountId]))
      .rows[0];
  }

  async createKey(k: KeyRow, audit: AuditEntry): Promise<void> {
    await this.#tx(audit, (c) =>
      c.query(
        `INSERT INTO api_keys (key_id, account_id, origin, digest, scopes, created_at, created_by, expires_at,
         revoked_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [
          k.key_id,
          k.account_id,
          k.origin,
          k.digest,
          JSON.stringify(k.scopes),
          k.created_at,
          k.created_by,
          k.expires_at,
          k.revoked_at,
          k.last_used_at,
        ],
      ),
    );
  }

  async key(keyId: string): Promise<KeyRow | undefined> {
    const raw = (await this.#pool.query<RawKey>("SELECT * FROM api_keys WHERE key_id = $1", [keyId])).rows[0];
    return raw && keyFromRaw(raw);
  }

  async keys(accountId: string): Promise<KeyRow[]> {
    const { rows } = await this.#pool.query<RawKey>(
      "SELECT * FROM api_keys WHERE account_id = $1 ORDER BY created_at, key_id",
      [accountId],
    );
    return rows.map(keyFromRaw);
  }

  async revokeKey(keyId: string, at: number, audit: AuditEntry): Promise<boolean> {
    return inTx(this.#pool, async (c) => {
      const r = await c.query(
        "UPDATE api_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL",
        [at, keyId],
      );
      if (r.rowCount === 0) return false;
      await appendAuditPg(c, audit, this.#now);
      return true;
    });
  }

  async touchKey(keyId: string, at: number): Promise<void> {
    await this.#pool.query("UPDATE api_keys SET last_used_at = $1 WHERE key_id = $2", [at, keyId]);
  }

  async owner(kind: OwnedKind, resourceId: string): Promise<Owner> {
    const { rows } = await this.#pool.query<{ account_id: string | null }>(
      "SELECT account_id FROM owners WHERE kind = $1 AND resource_id = $2",
      [kind, resourceId],
    );
    return rows[0]?.account_id;
  }

  async owned(kind: OwnedKind, accountId: string): Promise<Set<string>> {
    const { rows } = await this.#pool.query<{ resource_id: string }>(
      "SELECT resource_id FROM owners WHERE kind = $1 AND account_id = $2",
      [kind, accountId],
    );
    return new Set(rows.map((r) => r.resource_id));
  }

  async claim(
    kind: OwnedKind,
    resourceId: string,
    accountId: string | null,
    audit: AuditEntry,
  ): Promise<boolean> {
    return inTx(this.#pool, async (c) => {
      const r = await c.query(
        `INSERT INTO owners (kind, resource_id, account_id, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING`,
        [kind, resourceId, accountId, this.#now()],
      );
      if (r.rowCount === 1) {
        await appendAuditPg(c, audit, this.#now);
        return true;
      }
      const { rows } = await c.query<{ account_id: string | null }>(
        "SELECT account_id FROM owners WHERE kind = $1 AND resource_id = $2",
        [kind, resourceId],
      );
      return rows[0]?.account_id === accountId;
    });
  }

  async createEnrollment(e: EnrollmentRow, audit: AuditEntry): Promise<void> {
    await this.#tx(audit, (c) =>
      c.query(
        `INSERT INTO enrollment_tokens (token_id, account_id, digest, dedicated_to, created_at, created_by,
         expires_at, used_at, agent_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [
          e.token_id,
          e.account_id,
          e.digest,
          e.dedicated_to,
          e.created_at,
          e.created_by,
          e.expires_at,
          e.used_at,
          e.agent_id,
        ],
      ),
    );
  }

  async enrollments(): Promise<EnrollmentRow[]> {
    return (await this.#pool.query<EnrollmentRow>("SELECT * FROM enrollment_tokens ORDER BY created_at"))
      .rows;
  }

  async useEnrollment(tokenId: string, agentId: string, at: number, audit: AuditEntry): Promise<boolean> {
    return inTx(this.#pool, async (c) => {
      const { rows } = await c.query<{ account_id: string }>(
        `UPDATE enrollment_tokens SET used_at = $1, agent_id = $2 WHERE token_id = $3 AND used_at IS NULL
         RETURNING account_id`,
        [at, agentId, tokenId],
      );
      const used = rows[0];
      if (!used) return false;
      // An agent enrolled again (a new token) changes hands: the latest enrollment is its owner.
      await c.query(
        `INSERT INTO owners (kind, resource_id, account_id, created_at) VALUES ('agent', $1, $2, $3)
         ON CONFLICT (kind, resource_id) DO UPDATE SET account_id = excluded.account_id, created_at = excluded.created_at`,
        [agentId, used.account_id, at],
      );
      await appendAuditPg(c, audit, this.#now);
      return true;
    });
  }

  async createBinding(b: OidcBindingRow, audit: AuditEntry): Promise<void> {
    await this.#tx(audit, (c) =>
      c.query(
        `INSERT INTO oidc_bindings (binding_id, account_id, repository_id, repository_owner_id, ref, environment,
         scopes, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [
          b.binding_id,
          b.account_id,
          b.repository_id,
          b.repository_owner_id,
          b.ref,
          b.environment,
          JSON.stringify(b.scopes),
          b.created_at,
          b.created_by,
        ],
      ),
    );
  }

  async bindings(repositoryId?: number): Promise<OidcBindingRow[]> {
    const { rows } = await (repositoryId === undefined
      ? this.#pool.query("SELECT * FROM oidc_bindings ORDER BY created_at, binding_id")
      : this.#pool.query(
          "SELECT * FROM oidc_bindings WHERE repository_id = $1 ORDER BY created_at, binding_id",
          [repositoryId],
        ));
    return (rows as RawBinding[]).map(bindingFromRaw);
  }

  async spendJti(jti: string, until: number, now: number): Promise<boolean> {
    return inTx(this.#pool, async (c) => {
      await c.query("DELETE FROM oidc_spent WHERE until <= $1", [now]);
      const r = await c.query(
        "INSERT INTO oidc_spent (jti, until) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        [jti, until],
      );
      return r.rowCount === 1;
    });
  }

  async putApp(app: AppRow, audit: AuditEntry | null): Promise<boolean> {
    const key = appKey(app.name, app.version);
    if (this.#apps.has(key)) return false;
    const sealed = sealAppCompose(app, this.#sealer);
    try {
      await inTx(this.#pool, async (c) => {
        await c.query(
          `INSERT INTO apps (name, version, compose, compose_hash, health, created_at)
           VALUES ($1, $2, $3, $4, $5, $6)`,
          [
            app.name,
            app.version,
            sealed,
            app.compose_hash,
            app.health ? JSON.stringify(app.health) : null,
            app.created_at,
          ],
        );
        if (audit) await appendAuditPg(c, audit, this.#now);
      });
    } catch (err) {
      // Two puts of one version at once: the primary key lets one through.
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) return false;
      throw err;
    }
    this.#apps.set(key, app);
    return true;
  }

  app(name: string, version?: string): AppRow | undefined {
    if (version !== undefined) return this.#apps.get(appKey(name, version));
    return [...this.#apps.values()].filter((a) => a.name === name).sort(newestFirst)[0];
  }

  apps(): AppRow[] {
    return [...this.#apps.values()].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : newestFirst(a, b),
    );
  }

  /** Copies the apps of a runtime DB of before the business store (see SqliteBusinessStore.importApps), once. */
  async importApps(runtimeDb: Db): Promise<number> {
    const rows = runtimeDb.prepare("SELECT * FROM apps").all() as RawApp[];
    let n = 0;
    await inTx(this.#pool, async (c) => {
      for (const r of rows) {
        const res = await c.query(
          `INSERT INTO apps (name, version, compose, compose_hash, health, created_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
          [r.name, r.version, r.compose, r.compose_hash, r.health, r.created_at],
        );
        n += res.rowCount ?? 0;
      }
    });
    const { rows: all } = await this.#pool.query<RawApp>("SELECT * FROM apps");
    for (const r of all) if (!this.#apps.has(appKey(r.name, r.version))) this.#remember(r);
    return n;
  }

  async audit(entry: AuditEntry): Promise<AuditRecord> {
    return inTx(this.#pool, (c) => appendAuditPg(c, entry, this.#now));
  }

  async auditAfter(after: number, limit: number, accountId?: string): Promise<AuditRecord[]> {
    const { rows } =
      accountId === undefined
        ? await this.#pool.query("SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2", [after, limit])
        : // Principals are `account:ID/key:ID`: a prefix range on the bytes (C collation), no LIKE escaping needed.
          await this.#pool.query(
            `SELECT * FROM audit WHERE seq > $1 AND principal COLLATE "C" >= $2 AND principal COLLATE "C" < $3
             ORDER BY seq LIMIT $4`,
            [after, `account:${accountId}/`, `account:${accountId}0`, limit],
          );
    return rows.map(auditFromRaw);
  }

  /** The pool is the caller's (shared with the ledger and capacity stores): closing it is theirs. */
  close(): void {}

  #remember(r: RawApp): void {
    this.#apps.set(appKey(r.name, r.version), openApp(r, this.#sealer));
  }

  async #tx(audit: AuditEntry, change: (c: pg.PoolClient) => Promise<unknown>): Promise<void> {
    await inTx(this.#pool, async (c) => {
      await change(c);
      await appendAuditPg(c, audit, this.#now);
    });
  }
}
