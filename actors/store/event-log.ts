// The append-only event log: the audit trail now, the federation outbox later. Appends are queued and flushed
// in one transaction per tick, so a registration storm or a burst of state changes costs one fsync-free
// commit per batch instead of one per event. Readers page by the monotonic id.
import type { Db } from "./db.ts";
import { perTick } from "./per-tick.ts";

export interface EventRecord {
  id: number;
  at: number;
  kind: string;
  agent_id: string | null;
  data: Record<string, unknown>;
}

export interface NewEvent {
  at: number;
  kind: string;
  agent_id?: string | null;
  data?: Record<string, unknown>;
}

/** Known-agent upserts ride in the same batches as events. */
export interface KnownAgent {
  agent_id: string;
  vm_name: string;
  node_size: string;
  datacenter: string;
  mrtd: string;
  at: number;
}

export class EventLog {
  readonly #db: Db;
  readonly #insert;
  readonly #upsertAgent;
  #events: NewEvent[] = [];
  #agents: KnownAgent[] = [];
  readonly #schedule = perTick(() => this.flush());
  readonly #onError: (err: unknown) => void;

  constructor(db: Db, onError: (err: unknown) => void) {
    this.#db = db;
    this.#onError = onError;
    this.#insert = db.prepare("INSERT INTO events (at, kind, agent_id, data) VALUES (?, ?, ?, ?)");
    this.#upsertAgent = db.prepare(`
      INSERT INTO agents (agent_id, vm_name, node_size, datacenter, mrtd, first_registered_at, last_registered_at)
      VALUES (@agent_id, @vm_name, @node_size, @datacenter, @mrtd, @at, @at)
      ON CONFLICT (agent_id) DO UPDATE SET vm_name = excluded.vm_name, node_size = excluded.node_size,
        datacenter = excluded.datacenter, mrtd = excluded.mrtd, last_registered_at = excluded.last_registered_at,
        registrations = registrations + 1`);
  }

  append(event: NewEvent): void {
    this.#events.push(event);
    this.#schedule();
  }

  recordAgent(agent: KnownAgent): void {
    this.#agents.push(agent);
    this.#schedule();
  }

  /** Writes everything queued. Called by the tick, by readers (read-your-writes) and on shutdown. */
  flush(): void {
    if (this.#events.length === 0 && this.#agents.length === 0) return;
    const events = this.#events;
    const agents = this.#agents;
    this.#events = [];
    this.#agents = [];
    try {
      this.#db.transaction(() => {
        for (const a of agents) this.#upsertAgent.run(a);
        for (const e of events)
          this.#insert.run(e.at, e.kind, e.agent_id ?? null, JSON.stringify(e.data ?? {}));
      })();
    } catch (err) {
      // The store failing must not take runtime state down with it (liveness never depends on the DB).
      this.#onError(err);
    }
  }

  list(opts: { after?: number; limit?: number; agentId?: string; kind?: string } = {}): EventRecord[] {
    this.flush();
    const where = ["id > @after"];
    if (opts.agentId) where.push("agent_id = @agentId");
    if (opts.kind) where.push("kind = @kind");
    const rows = this.#db
      .prepare(
        `SELECT id, at, kind, agent_id, data FROM events WHERE ${where.join(" AND ")} ORDER BY id LIMIT @limit`,
      )
      .all({
        after: opts.after ?? 0,
        limit: Math.min(opts.limit ?? 100, 1000),
        agentId: opts.agentId,
        kind: opts.kind,
      }) as {
      id: number;
      at: number;
      kind: string;
      agent_id: string | null;
      data: string;
    }[];
    return rows.map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> }));
  }

  knownAgentCount(): number {
    this.flush();
    return (this.#db.prepare("SELECT COUNT(*) AS n FROM agents").get() as { n: number }).n;
  }
}
