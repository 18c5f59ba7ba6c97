// The ledger's tables: the rate card and the double-entry journal, business DB migration 6
// (actors/business/migrations.ts). Portable SQL: standard types, BIGINT money, no SQLite-only functions, so a
// PostgreSQL business store runs it unchanged. Imports nothing.

export const LEDGER_SCHEMA_SQL = `
  -- The rate card: micro-units per hour by node_size, and the platform's fee (one settings row).
  CREATE TABLE billing_rates (
    node_size       TEXT   PRIMARY KEY,
    micros_per_hour BIGINT NOT NULL CHECK (micros_per_hour >= 0)
  );
  CREATE TABLE billing_settings (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    platform_fee_bps BIGINT  NOT NULL CHECK (platform_fee_bps BETWEEN 0 AND 10000),
    updated_at       BIGINT  NOT NULL
  );

  -- Journals are append-only; idempotency_key makes a retried deposit or charge a no-op.
  CREATE TABLE ledger_journals (
    journal_id      TEXT   PRIMARY KEY,
    idempotency_key TEXT   NOT NULL UNIQUE,
    request_hash    TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    deployment_id   TEXT,
    period          BIGINT,
    memo            TEXT
  );
  -- A journal's entries sum to zero (checked on every post and by verify).
  CREATE TABLE ledger_entries (
    journal_id    TEXT    NOT NULL REFERENCES ledger_journals (journal_id),
    seq           INTEGER NOT NULL,
    account       TEXT    NOT NULL,
    amount_micros BIGINT  NOT NULL,
    PRIMARY KEY (journal_id, seq)
  );
  CREATE INDEX ledger_entries_account ON ledger_entries (account);
  -- Each account's balance, kept in the same transaction as its entries; verify recomputes it.
  CREATE TABLE ledger_balances (
    account        TEXT   PRIMARY KEY,
    balance_micros BIGINT NOT NULL
  );
`;
