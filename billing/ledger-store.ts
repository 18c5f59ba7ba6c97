// The ledger's store port: durable business state (rates and a double-entry journal, in the business DB),
// Promise-returning so a PostgreSQL adapter can implement it beside the SQLite one (sqlite-ledger-store.ts). Every
// method is one transaction; `post` is where idempotency, the zero-sum rule and balance bookkeeping hold, and a
// change's audit record joins the business audit chain in the same transaction. Types only.
import type { AuditEntry } from "../actors/business/audit-chain.ts";

/**
 * A ledger account: `tenant:<account_id>`, `provider:<account_id>`, `platform` (the operator's fee) or `external`
 * (money entering from outside: every deposit is a transfer from it, so its balance is minus all deposits).
 */
export type LedgerAccount = string;

export interface RateCard {
  /** Micro-units per hour, by node_size. A node_size without a rate runs free. */
  rates: Record<string, number>;
  platform_fee_bps: number;
  updated_at: number;
}

export type JournalKind = "deposit" | "usage";

export interface NewJournal {
  journal_id: string;
  /** Unique: a second post with the same key and request changes nothing and returns the first journal. */
  idempotency_key: string;
  /** What was asked, hashed: the same key with another request is EE-CONFLICT-IDEMPOTENCY. */
  request_hash: string;
  kind: JournalKind;
  at: number;
  deployment_id: string | null;
  period: number | null;
  memo: string | null;
  /** Must sum to zero; no zero amounts. */
  entries: { account: LedgerAccount; amount_micros: number }[];
}

export interface PostResult {
  journal_id: string;
  replayed: boolean;
  /** Each account of the journal's balance after it, read in the same transaction. */
  balances: Record<LedgerAccount, number>;
}

export interface EntryRow {
  journal_id: string;
  kind: JournalKind;
  account: LedgerAccount;
  amount_micros: number;
  at: number;
  deployment_id: string | null;
  period: number | null;
  memo: string | null;
}

export interface VerifyReport {
  ok: boolean;
  journals: number;
  entries: number;
  /** Journals whose entries do not sum to zero. */
  unbalanced: string[];
  /** Accounts whose stored balance differs from the sum of their entries. */
  mismatched: { account: LedgerAccount; balance_micros: number; entries_micros: number }[];
}

export interface LedgerStore {
  rates(): Promise<RateCard | null>;
  /** Replaces the whole rate card; `audit` is appended to the chain with it. */
  putRates(card: RateCard, audit: AuditEntry): Promise<void>;
  /** `audit` (its details gain the journal_id) is appended only when the journal is new, not for a replay. */
  post(journal: NewJournal, audit: AuditEntry | null): Promise<PostResult>;
  balance(account: LedgerAccount): Promise<number>;
  /** The account's most recent `limit` entries, oldest first (at one instant: by period, then journal id). */
  entries(account: LedgerAccount, limit: number): Promise<EntryRow[]>;
  verify(): Promise<VerifyReport>;
}
