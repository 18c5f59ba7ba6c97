// The ledger store on SQLite: the business DB's handle (business.db, whose migration 6 is ledger-schema.ts), so
// a deposit or a rate change commits with its record on the business audit chain in one transaction. The SQL is
// portable: standard types, BIGINT money, ON CONFLICT clauses PostgreSQL accepts unchanged, no SQLite-only
// functions. Each method runs in one transaction. Imports the store port, actors/business' chain appender and
// spec/ only.
import type Database from "better-sqlite3";
import type { AuditEntry } from "../actors/business/audit-chain.ts";
import { auditAppender } from "../actors/business/sqlite-store.ts";
import { ConflictError, InternalError } from "../spec/errors.ts";
import type {
  EntryRow,
  LedgerAccount,
  LedgerStore,
  NewJournal,
  PostResult,
  RateCard,
  VerifyReport,
} from "./ledger-store.ts";

interface JournalRow {
  journal_id: string;
  request_hash: string;
}

/** The account's most recent entries, oldest first (parameters: account, limit). Shared with pg-ledger-store.ts. */
export const ENTRIES_SQL = `SELECT * FROM (
           SELECT e.journal_id, j.kind, e.account, e.amount_micros, j.created_at, j.deployment_id,
                  j.period, j.memo, e.seq
           FROM ledger_entries e JOIN ledger_journals j ON j.journal_id = e.journal_id
           WHERE e.account = ?
           ORDER BY j.created_at DESC, COALESCE(j.period, -1) DESC, e.journal_id DESC, e.seq DESC
           LIMIT ?) AS recent
         ORDER BY created_at, COALESCE(period, -1), journal_id, seq`;

/** A row of ENTRIES_SQL as the store answers it: its journal's time as `at`, the entry's seq left out. */
export function entryFromRow(r: unknown): EntryRow {
  const { seq: _seq, created_at, ...row } = r as Omit<EntryRow, "at"> & { seq: number; created_at: number };
  return { ...row, at: created_at };
}

/** Journals whose entries do not sum to zero, or that have fewer than two. */
export const UNBALANCED_SQL = `SELECT j.journal_id FROM ledger_journals j LEFT JOIN ledger_entries e ON e.journal_id = j.journal_id
             GROUP BY j.journal_id HAVING COALESCE(SUM(e.amount_micros), 0) <> 0 OR COUNT(e.journal_id) < 2
             ORDER BY j.journal_id`;

/** Both directions: a balance row without entries, and entries without a balance row. */
export const MISMATCHED_SQL = `SELECT b.account, b.balance_micros, COALESCE(s.total, 0) AS entries_micros
           FROM ledger_balances b
           LEFT JOIN (SELECT account, SUM(amount_micros) AS total FROM ledger_entries GROUP BY account) s
             ON s.account = b.account
           WHERE b.balance_micros <> COALESCE(s.total, 0)
           UNION ALL
           SELECT s.account, 0 AS balance_micros, s.total AS entries_micros
           FROM (SELECT account, SUM(amount_micros) AS total FROM ledger_entries GROUP BY account) s
           WHERE NOT EXISTS (SELECT 1 FROM ledger_balances b WHERE b.account = s.account)
           ORDER BY account`;

export class SqliteLedgerStore implements LedgerStore {
  readonly #db: Database.Database;
  readonly #post: (j: NewJournal, audit: AuditEntry | null) => PostResult;
  readonly #putRates: (card: RateCard, audit: AuditEntry) => void;

  /** `db`: the business DB (openBusinessDb), whose audit chain records deposits and rate changes. */
  constructor(db: Database.Database, now: () => number = Date.now) {
    this.#db = db;
    const appendAudit = auditAppender(db, now);
    const insertJournal = db.prepare(
      `INSERT INTO ledger_journals
         (journal_id, idempotency_key, request_hash, kind, created_at, deployment_id, period, memo)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (idempotency_key) DO NOTHING`,
    );
    const byKey = db.prepare(
      "SELECT journal_id, request_hash FROM ledger_journals WHERE idempotency_key = ?",
    );
    const insertEntry = db.prepare(
      "INSERT INTO ledger_entries (journal_id, seq, account, amount_micros) VALUES (?, ?, ?, ?)",
    );
    const addBalance = db.prepare(
      `INSERT INTO ledger_balances (account, balance_micros) VALUES (?, ?)
       ON CONFLICT (account) DO UPDATE SET balance_micros = ledger_balances.balance_micros + excluded.balance_micros`,
    );
    const balanceOf = db.prepare("SELECT balance_micros AS b FROM ledger_balances WHERE account = ?");
    const journalAccounts = db.prepare("SELECT account FROM ledger_entries WHERE journal_id = ?");
    const balancesOf = (accounts: Iterable<LedgerAccount>) => {
      const out: Record<LedgerAccount, number> = {};
      for (const a of accounts) out[a] = (balanceOf.get(a) as { b: number } | undefined)?.b ?? 0;
      return out;
    };

    this.#post = db.transaction((j: NewJournal, audit: AuditEntry | null): PostResult => {
      checkJournal(j);
      const inserted = insertJournal.run(
        j.journal_id,
        j.idempotency_key,
        j.request_hash,
        j.kind,
        j.at,
        j.deployment_id,
        j.period,
        j.memo,
      );
      if (inserted.changes === 0) {
        const first = byKey.get(j.idempotency_key) as JournalRow;
        if (first.request_hash !== j.request_hash)
          throw new ConflictError(
            "EE-CONFLICT-IDEMPOTENCY",
            "this idempotency key was used with a different request",
          );
        const accounts = (journalAccounts.all(first.journal_id) as { account: string }[]).map(
          (r) => r.account,
        );
        return { journal_id: first.journal_id, replayed: true, balances: balancesOf(new Set(accounts)) };
      }
      j.entries.forEach((e, seq) => {
        insertEntry.run(j.journal_id, seq, e.account, e.amount_micros);
        addBalance.run(e.account, e.amount_micros);
      });
      const balances = balancesOf(new Set(j.entries.map((e) => e.account)));
      // A balance past the safe range would be read back wrong: refuse the journal (the transaction rolls back).
      for (const [account, b] of Object.entries(balances))
        if (!Number.isSafeInteger(b))
          throw new ConflictError(
            "EE-CONFLICT-STATE",
            `the balance of ${account} would leave the safe range`,
          );
      if (audit) appendAudit({ ...audit, details: { ...audit.details, journal_id: j.journal_id } });
      return { journal_id: j.journal_id, replayed: false, balances };
    });

    const clearRates = db.prepare("DELETE FROM billing_rates");
    const insertRate = db.prepare("INSERT INTO billing_rates (node_size, micros_per_hour) VALUES (?, ?)");
    const putSettings = db.prepare(
      `INSERT INTO billing_settings (id, platform_fee_bps, updated_at) VALUES (1, ?, ?)
       ON CONFLICT (id) DO UPDATE SET platform_fee_bps = excluded.platform_fee_bps, updated_at = excluded.updated_at`,
    );
    this.#putRates = db.transaction((card: RateCard, audit: AuditEntry) => {
      clearRates.run();
      for (const [size, rate] of Object.entries(card.rates)) insertRate.run(size, rate);
      putSettings.run(card.platform_fee_bps, card.updated_at);
      appendAudit(audit);
    });
  }

  async rates(): Promise<RateCard | null> {
    const settings = this.#db
      .prepare("SELECT platform_fee_bps, updated_at FROM billing_settings WHERE id = 1")
      .get() as { platform_fee_bps: number; updated_at: number } | undefined;
    if (!settings) return null;
    const rows = this.#db
      .prepare("SELECT node_size, micros_per_hour FROM billing_rates ORDER BY node_size")
      .all() as { node_size: string; micros_per_hour: number }[];
    return {
      rates: Object.fromEntries(rows.map((r) => [r.node_size, r.micros_per_hour])),
      platform_fee_bps: settings.platform_fee_bps,
      updated_at: settings.updated_at,
    };
  }

  async putRates(card: RateCard, audit: AuditEntry): Promise<void> {
    this.#putRates(card, audit);
  }

  async post(journal: NewJournal, audit: AuditEntry | null): Promise<PostResult> {
    return this.#post(journal, audit);
  }

  async balance(account: LedgerAccount): Promise<number> {
    const row = this.#db
      .prepare("SELECT balance_micros AS b FROM ledger_balances WHERE account = ?")
      .get(account) as { b: number } | undefined;
    return row?.b ?? 0;
  }

  async entries(account: LedgerAccount, limit: number): Promise<EntryRow[]> {
    return this.#db.prepare(ENTRIES_SQL).all(account, limit).map(entryFromRow);
  }

  async verify(): Promise<VerifyReport> {
    return this.#db.transaction((): VerifyReport => {
      const count = (sql: string) => (this.#db.prepare(sql).get() as { n: number }).n;
      const journals = count("SELECT COUNT(*) AS n FROM ledger_journals");
      const entries = count("SELECT COUNT(*) AS n FROM ledger_entries");
      const unbalanced = (this.#db.prepare(UNBALANCED_SQL).all() as { journal_id: string }[]).map(
        (r) => r.journal_id,
      );
      const mismatched = this.#db.prepare(MISMATCHED_SQL).all() as VerifyReport["mismatched"];
      return {
        ok: unbalanced.length === 0 && mismatched.length === 0,
        journals,
        entries,
        unbalanced,
        mismatched,
      };
    })();
  }
}

/** A journal that breaks the double-entry rule is a bug in the caller: nothing is written. */
export function checkJournal(j: NewJournal): void {
  let sum = 0;
  for (const e of j.entries) {
    if (!Number.isSafeInteger(e.amount_micros) || e.amount_micros === 0)
      throw new InternalError(
        "EE-INTERNAL",
        `journal ${j.journal_id}: entry amounts must be non-zero integers`,
      );
    sum += e.amount_micros;
  }
  if (j.entries.length < 2 || sum !== 0)
    throw new InternalError(
      "EE-INTERNAL",
      `journal ${j.journal_id}: entries must be two or more and sum to zero`,
    );
}
