// Drains: agents an admin took out of placement (POST /api/v2/agents/{id}/drain). A drained agent keeps what it
// runs; placement gives it nothing new (EE-PLACE-AGENT-DRAINED). A CP's own drains live in the runtime DB (table
// agent_drains, migrations in their own range 300–309), so they survive a restart but not the DB-wipe drill; each
// change is an `agent.drained` / `agent.undrained` event. A federation dc also honours the drains in the master's
// desired state (setFromMaster), held in memory until the next snapshot replaces them.
// Imports actors/store only.
import { type Db, migrate } from "./store/db.ts";
import type { EventLog } from "./store/event-log.ts";
import type { Migration } from "./store/migrations.ts";

const DRAIN_MIGRATIONS: readonly Migration[] = [
  {
    version: 300,
    name: "agent drains",
    sql: `CREATE TABLE agent_drains (
      agent_id   TEXT PRIMARY KEY,
      drained_by TEXT NOT NULL,
      drained_at INTEGER NOT NULL
    )`,
  },
];

export const AGENT_DRAINED = "agent.drained";
export const AGENT_UNDRAINED = "agent.undrained";

export class Drains {
  readonly #events: EventLog;
  readonly #now: () => number;
  readonly #sql;
  /** This CP's own drains (the table's content, kept in memory: placement asks per agent). */
  readonly #own: Set<string>;
  #fromMaster: ReadonlySet<string> = new Set();

  constructor(o: { db: Db; events: EventLog; now?: () => number }) {
    migrate(o.db, DRAIN_MIGRATIONS);
    this.#events = o.events;
    this.#now = o.now ?? Date.now;
    this.#sql = {
      put: o.db.prepare(
        "INSERT INTO agent_drains (agent_id, drained_by, drained_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
      ),
      delete: o.db.prepare("DELETE FROM agent_drains WHERE agent_id = ?"),
    };
    this.#own = new Set(
      (o.db.prepare("SELECT agent_id FROM agent_drains").all() as { agent_id: string }[]).map(
        (r) => r.agent_id,
      ),
    );
  }

  /** Placement's question: drained here, or by the master (on a dc). */
  has(agentId: string): boolean {
    return this.#own.has(agentId) || this.#fromMaster.has(agentId);
  }

  /** This CP's own drains, sorted: what a master publishes in its desired state. */
  own(): string[] {
    return [...this.#own].sort();
  }

  /** Idempotent: draining a drained agent changes nothing and writes no event. */
  drain(agentId: string, by: string): void {
    if (this.#own.has(agentId)) return;
    this.#sql.put.run(agentId, by, this.#now());
    this.#own.add(agentId);
    this.#events.append({ at: this.#now(), kind: AGENT_DRAINED, data: { agent_id: agentId, by } });
  }

  /** Lifts this CP's own drain; a drain from the master stays until the master lifts it. */
  undrain(agentId: string, by: string): void {
    if (!this.#own.has(agentId)) return;
    this.#sql.delete.run(agentId);
    this.#own.delete(agentId);
    this.#events.append({ at: this.#now(), kind: AGENT_UNDRAINED, data: { agent_id: agentId, by } });
  }

  /** A dc: the drains of the master's applied snapshot replace the previous ones. */
  setFromMaster(agentIds: readonly string[]): void {
    this.#fromMaster = new Set(agentIds);
  }
}
