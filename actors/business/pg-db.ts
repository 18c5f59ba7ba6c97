// The business state's PostgreSQL plumbing, shared by its adapters (pg-store.ts, billing/pg-ledger-store.ts,
// actors/capacity/pg-store.ts): the pool (BIGINT and NUMERIC read back as JS numbers, refused past the safe
// range), the migrations (the SQLite lists, their SQLite-only types translated), one-transaction helper and the
// audit chain appender. Imports pg, the chain arithmetic and the migration type.
import pg from "pg";
import { CliError, EeError } from "../../spec/errors.ts";
import type { Migration } from "../store/migrations.ts";
import { type AuditEntry, type AuditRecord, nextRecord } from "./audit-chain.ts";

export type Sql = pg.PoolClient | pg.Pool;

const INT8 = 20;
const NUMERIC = 1700;

/** Millisecond times and micro-unit money are BIGINT; node-postgres reads those (and SUMs) as strings. */
function safeNumber(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`a stored integer left the safe range: ${text}`);
  return n;
}

/** The pool's type parsers (tests reading the tables directly use them too). */
export const PG_TYPES = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8 || oid === NUMERIC
      ? safeNumber
      : pg.types.getTypeParser(oid, format ?? "text")) as pg.CustomTypesConfig["getTypeParser"],
};

/**
 * A pool on `url` with the business migrations applied (one CP at a time migrates: an advisory lock). An idle
 * connection's error (the server restarted) goes to `onError`: unheard, the pool's 'error' event would end the CP.
 */
export async function openPgPool(
  url: string,
  migrations: readonly Migration[],
  onError: (err: unknown) => void,
): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: url, types: PG_TYPES, max: 8 });
  pool.on("error", onError);
  try {
    await migratePg(pool, migrations);
  } catch (err) {
    await pool.end();
    throw err;
  }
  return pool;
}

/**
 * The SQLite schema in PostgreSQL terms: every INTEGER becomes BIGINT (SQLite's INTEGER is 64-bit, PostgreSQL's
 * 32-bit would overflow on millisecond times) and BLOB becomes BYTEA. The rest of the SQL is portable.
 */
export const pgSchemaSql = (sql: string): string =>
  sql.replace(/\bINTEGER\b/g, "BIGINT").replace(/\bBLOB\b/g, "BYTEA");

/** Applies each migration not recorded in schema_migrations yet, per version, as actors/store/db.ts does. */
export async function migratePg(pool: pg.Pool, migrations: readonly Migration[]): Promise<void> {
  await inTx(pool, async (c) => {
    // Two CPs opening one database at once: the second waits, then sees the versions applied.
    await c.query("SELECT pg_advisory_xact_lock(7468373)");
    await c.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
    const { rows } = await c.query<{ version: number }>("SELECT version FROM schema_migrations");
    const applied = new Set(rows.map((r) => r.version));
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      await c.query(pgSchemaSql(m.sql));
      await c.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", [
        m.version,
        m.name,
        Date.now(),
      ]);
    }
  });
}

/** Runs `fn` in one transaction on a client of the pool: committed when it resolves, rolled back when it throws. */
export async function inTx<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query("BEGIN");
    const out = await fn(c);
    await c.query("COMMIT");
    return out;
  } catch (err) {
    await c.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    c.release();
  }
}

/**
 * Appends to the audit chain inside the caller's transaction. The table lock (it conflicts with itself, not with
 * reads) makes concurrent writers take turns from the head read to the commit, so seqs stay gapless and linked.
 */
export async function appendAuditPg(
  c: pg.PoolClient,
  e: AuditEntry,
  now: () => number,
): Promise<AuditRecord> {
  await c.query("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE");
  const { rows } = await c.query<{ seq: number; hash: string }>(
    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
  );
  const record = nextRecord(rows[0], e, now());
  await c.query(
    `INSERT INTO audit (seq, at, principal, client, action, target, outcome, details, prev_hash, hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      record.seq,
      record.at,
      record.principal,
      record.client,
      record.action,
      record.target,
      record.outcome,
      record.details && JSON.stringify(record.details),
      record.prev_hash,
      record.hash,
    ],
  );
  return record;
}

/**
 * Reads a business database without migrating anything (`eectl audit verify` / `billing verify --business-db`)
 * through a pool of its own, ended after; an unreachable server or a database without the tables is EE-CLI-USAGE.
 */
export async function readPg<T>(url: string, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ connectionString: url, types: PG_TYPES, max: 1 });
  try {
    return await fn(pool);
  } catch (err) {
    if (err instanceof EeError) throw err;
    throw new CliError(
      "EE-CLI-USAGE",
      `--business-db: cannot read the business database: ${(err as Error).message}`,
      {
        flag: "--business-db",
      },
    );
  } finally {
    await pool.end();
  }
}
