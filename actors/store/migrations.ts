// Versioned schema migrations for the CP's SQLite store. Append only: a released migration is never edited,
// a change is a new entry. Each runs once, in a transaction, recorded in schema_migrations.

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "event log and known agents",
    sql: `
      -- Append-only: rows are never updated or deleted. id is the monotonic sequence number that audit
      -- readers and (later) the federation outbox page by.
      CREATE TABLE events (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        at       INTEGER NOT NULL,
        kind     TEXT    NOT NULL,
        agent_id TEXT,
        data     TEXT    NOT NULL
      );
      CREATE INDEX events_agent ON events (agent_id, id);
      CREATE INDEX events_kind ON events (kind, id);

      -- Durable record of agents that ever registered: business history, never read for liveness.
      CREATE TABLE agents (
        agent_id           TEXT PRIMARY KEY,
        vm_name            TEXT NOT NULL,
        node_size          TEXT NOT NULL,
        datacenter         TEXT NOT NULL,
        mrtd               TEXT NOT NULL,
        first_registered_at INTEGER NOT NULL,
        last_registered_at  INTEGER NOT NULL,
        registrations      INTEGER NOT NULL DEFAULT 1
      );
    `,
  },
  {
    version: 2,
    name: "trusted measurements and baselines",
    sql: `
      -- Admin-approved measurements (business state), accepted alongside the policy file's allowlists.
      -- rtmr: JSON array of RTMR0..3 as lowercase hex; NULL accepts any RTMRs with this MRTD.
      CREATE TABLE trusted_measurements (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        node_size TEXT    NOT NULL,
        mrtd      TEXT    NOT NULL,
        rtmr      TEXT,
        note      TEXT,
        added_by  TEXT    NOT NULL,
        added_at  INTEGER NOT NULL
      );
      -- NULLs are distinct in a UNIQUE constraint, so "any RTMRs" is keyed as ''.
      CREATE UNIQUE INDEX trusted_measurements_key ON trusted_measurements (node_size, mrtd, COALESCE(rtmr, ''));

      -- Measurements of registrations refused by the MRTD/RTMR allowlists, for an admin to review and approve.
      CREATE TABLE measurement_baselines (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        node_size     TEXT    NOT NULL,
        mrtd          TEXT    NOT NULL,
        rtmr          TEXT    NOT NULL,
        first_seen    INTEGER NOT NULL,
        last_seen     INTEGER NOT NULL,
        count         INTEGER NOT NULL DEFAULT 1,
        last_vm_name  TEXT,
        last_agent_id TEXT,
        UNIQUE (node_size, mrtd, rtmr)
      );
    `,
  },
  {
    version: 3,
    name: "deployments, apps and idempotency keys",
    sql: `
      -- Durable business state: one row per deployment, rewritten on each status change. The agent is the
      -- truth for what runs; this is the record of what was asked and what happened.
      CREATE TABLE deployments (
        deployment_id TEXT PRIMARY KEY,
        app           TEXT NOT NULL,
        app_version   TEXT,
        agent_id      TEXT NOT NULL,
        status        TEXT NOT NULL,
        code          TEXT,
        message       TEXT,
        compose_hash  TEXT,
        images        TEXT NOT NULL DEFAULT '{}',
        progress      TEXT NOT NULL DEFAULT '[]',
        request       TEXT NOT NULL,
        compose       TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
      );
      CREATE INDEX deployments_agent ON deployments (agent_id, created_at);
      CREATE INDEX deployments_status ON deployments (status, created_at);

      -- A retried POST with the same Idempotency-Key returns the first result.
      CREATE TABLE idempotency_keys (
        key           TEXT PRIMARY KEY,
        request_hash  TEXT NOT NULL,
        deployment_id TEXT NOT NULL,
        created_at    INTEGER NOT NULL
      );

      -- Registered compose files, deployable as name@version.
      CREATE TABLE apps (
        name         TEXT NOT NULL,
        version      TEXT NOT NULL,
        compose      TEXT NOT NULL,
        compose_hash TEXT NOT NULL,
        health       TEXT,
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (name, version)
      );
    `,
  },
  {
    version: 4,
    name: "rehydrated deployments and the runtime checkpoint",
    sql: `
      -- A deployment the CP learned from an agent after losing its records (compose text unknown: '').
      ALTER TABLE deployments ADD COLUMN rehydrated INTEGER NOT NULL DEFAULT 0;

      -- Which agents were live, written every few seconds and at shutdown. Read once at start, only to decide
      -- readiness (a quorum of them back); liveness never reads it.
      CREATE TABLE runtime_checkpoint (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        at          INTEGER NOT NULL,
        live_agents TEXT    NOT NULL
      );
    `,
  },
];
