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
];
