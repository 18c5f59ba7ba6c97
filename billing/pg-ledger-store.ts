// The ledger store on PostgreSQL (`--business-db postgres://…`): the tables of ledger-schema.ts in the business
// database, each method one transaction, a deposit's or rate change's record appended to the business audit chain
// in it (actors/business/pg-db.ts). Balances are upserted row by row, so concurrent posts to one account
// serialise on its row. Imports the port, the PostgreSQL plumbing and the checks the SQLite store applies.
import type pg from "pg";
import type { AuditEntry } from "../actors/business/audit-chain.ts";
import { appendAuditPg, inTx } from "../actors/business/pg-db.ts";
import { ConflictError } from "../spec/errors.ts";
import type {
  EntryRow,
  LedgerAccount,
  LedgerStore,
  NewJournal,
  PostResult,
  RateCard,
  VerifyReport,
} from "./ledger-store.ts";
import {
  checkJournal,
  ENTRIES_SQL,
  entryFromRow,
  MISMATCHED_SQL,
  UNBALANCED_SQL,
} from "./sqlite-ledger-store.ts";

/** The SQLite store's positional `?` parameters as PostgreSQL's `$n`. */
const numbered = (sql: string) => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

export class PgLedgerStore implements LedgerStore {
  readonly #pool: pg.Pool;
  readonly #now: () => number;

  /** `pool`: the business database (openPgPool with BUSINESS_MIGRATIONS). */
  constructor(pool: pg.Pool, now: () => number = Date.now) {
    this.#pool = pool;
    this.#now = now;
  }

  async rates(): Promise<RateCard | null> {
    return inTx(this.#pool, async (c) => {
      const settings = (
        await c.query<{ platform_fee_bps: number; updated_at: number }>(
          "SELECT platform_fee_bps, updated_at FROM billing_settings WHERE id = 1",
        )
      ).rows[0];
      if (!settings) return null;
      const { rows } = await c.query<{ node_size: string; micros_per_hour: number }>(
        "SELECT node_size, micros_per_hour FROM billing_rates ORDER BY node_size",
      );
      return {
        rates: Object.fromEntries(rows.map((r) => [r.node_size, r.micros_per_hour])),
        platform_fee_bps: settings.platform_fee_bps,
        updated_at: settings.updated_at,
      };
    });
  }

  async putRates(card: RateCard, audit: AuditEntry): Promise<void> {
    await inTx(this.#pool, async (c) => {
      await c.query("DELETE FROM billing_rates");
      for (const [size, rate] of Object.entries(card.rates))
        await c.query("INSERT INTO billing_rates (node_size, micros_per_hour) VALUES ($1, $2)", [size, rate]);
      await c.query(
        `INSERT INTO billing_settings (id, platform_fee_bps, updated_at) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET platform_fee_bps = excluded.platform_fee_bps, updated_at = excluded.updated_at`,
        [card.platform_fee_bps, card.updated_at],
      );
      await appendAuditPg(c, audit, this.#now);
    });
  }

  async post(j: NewJournal, audit: AuditEntry | null): Promise<PostResult> {
    checkJournal(j);
    return inTx(this.#pool, async (c) => {
      const balancesOf = async (accounts: Iterable<LedgerAccount>) => {
        const out: Record<LedgerAccount, number> = {};
        for (const a of accounts)
          out[a] =
            (
              await c.query<{ b: number }>(
                "SELECT balance_micros AS b FROM ledger_balances WHERE account = $1",
                [a],
              )
            ).rows[0]?.b ?? 0;
        return out;
      };
      const inserted = await c.query(
        `INSERT INTO ledger_journals
           (journal_id, idempotency_key, request_hash, kind, created_at, deployment_id, period, memo)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (idempotency_key) DO NOTHING`,
        [j.journal_id, j.idempotency_key, j.request_hash, j.kind, j.at, j.deployment_id, j.period, j.memo],
      );
      if (inserted.rowCount === 0) {
        const first = (
          await c.query<{ journal_id: string; request_hash: string }>(
            "SELECT journal_id, request_hash FROM ledger_journals WHERE idempotency_key = $1",
            [j.idempotency_key],
          )
        ).rows[0];
        if (!first || first.request_hash !== j.request_hash)
          throw new ConflictError(
            "EE-CONFLICT-IDEMPOTENCY",
            "this idempotency key was used with a different request",
          );
        const { rows } = await c.query<{ account: string }>(
          "SELECT account FROM ledger_entries WHERE journal_id = $1",
          [first.journal_id],
        );
        return {
          journal_id: first.journal_id,
          replayed: true,
          balances: await balancesOf(new Set(rows.map((r) => r.account))),
        };
      }
      for (const [seq, e] of j.entries.entries()) {
        await c.query(
          "INSERT INTO ledger_entries (journal_id, seq, account, amount_micros) VALUES ($1, $2, $3, $4)",
          [j.journal_id, seq, e.account, e.amount_micros],
        );
        await c.query(
          `INSERT INTO ledger_balances (account, balance_micros) VALUES ($1, $2)
           ON CONFLICT (account) DO UPDATE SET balance_micros = ledger_balances.balance_micros + excluded.balance_micros`,
          [e.account, e.amount_micros],
        );
      }
      let balances: Record<LedgerAccount, number>;
      try {
        balances = await balancesOf(new Set(j.entries.map((e) => e.account)));
      } catch (err) {
        // A balance past the safe range cannot be read back right (pg-db.ts refuses it): refuse the journal.
        if (!(err instanceof RangeError)) throw err;
        throw new ConflictError("EE-CONFLICT-STATE", "a balance of this journal would leave the safe range");
      }
      if (audit)
        await appendAuditPg(
          c,
          { ...audit, details: { ...audit.details, journal_id: j.journal_id } },
          this.#now,
        );
      return { journal_id: j.journal_id, replayed: false, balances };
    });
  }

  async balance(account: LedgerAccount): Promise<number> {
    const { rows } = await this.#pool.query<{ b: number }>(
      "SELECT balance_micros AS b FROM ledger_balances WHERE account = $1",
      [account],
    );
    return rows[0]?.b ?? 0;
  }

  async entries(account: LedgerAccount, limit: number): Promise<EntryRow[]> {
    const { rows } = await this.#pool.query(numbered(ENTRIES_SQL), [account, limit]);
    return rows.map(entryFromRow);
  }

  async verify(): Promise<VerifyReport> {
    // One snapshot for the counts and both checks.
    return inTx(this.#pool, async (c) => {
      await c.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const count = async (sql: string) => (await c.query<{ n: number }>(sql)).rows[0]?.n ?? 0;
      const journals = await count("SELECT COUNT(*) AS n FROM ledger_journals");
      const entries = await count("SELECT COUNT(*) AS n FROM ledger_entries");
      const unbalanced = (await c.query<{ journal_id: string }>(UNBALANCED_SQL)).rows.map(
        (r) => r.journal_id,
      );
      const mismatched = (await c.query(MISMATCHED_SQL)).rows as VerifyReport["mismatched"];
      return {
        ok: unbalanced.length === 0 && mismatched.length === 0,
        journals,
        entries,
        unbalanced,
        mismatched,
      };
    });
  }
}
