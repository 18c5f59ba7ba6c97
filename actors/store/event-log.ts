// The append-only event log: the audit trail now, the federation outbox later. Appends are queued and flushed
// in one transaction per tick, so a registration storm or a burst of state changes costs one fsync-free
// commit per batch instead of one per event. Readers page by the monotonic id, or follow what each batch wrote.
import type { EventQuery, EventRecord } from "../../contract/events.ts";
import type { Db } from "./db.ts";
import { perTick } from "./per-tick.ts";

export type { EventQuery, EventRecord } from "../../contract/events.ts";

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
  readonly #followers = new Set<(records: readonly EventRecord[]) => void>();

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
    // Records (with their ids) are built only for followers: the bench's registration storm has none.
    const written: EventRecord[] = [];
    const follow = this.#followers.size > 0;
    try {
      this.#db.transaction(() => {
        for (const a of agents) this.#upsertAgent.run(a);
        for (const { at, kind, agent_id = null, data = {} } of events) {
          const { lastInsertRowid } = this.#insert.run(at, kind, agent_id, JSON.stringify(data));
          if (follow) written.push({ id: Number(lastInsertRowid), at, kind, agent_id, data });
        }
      })();
    } catch (err) {
      // The store failing must not take runtime state down with it (liveness never depends on the DB).
      this.#onError(err);
      return;
    }
    if (written.length === 0) return;
    for (const follower of this.#followers) {
      try {
        follower(written);
      } catch (err) {
        this.#onError(err);
      }
    }
  }

  /**
   * Calls `follower` with the records of every batch written from now on, in id order, once committed (so a
   * follower that reads the log finds them there). Returns the function that stops it.
   */
  follow(follower: (records: readonly EventRecord[]) => void): () => void {
    this.#followers.add(follower);
    return () => this.#followers.delete(follower);
  }

  /** Events after `after` in id order, or with `tail` the last `tail` of them (still in id order). */
  list(opts: EventQuery = {}): EventRecord[] {
    this.flush();
    const where = ["id > @after"];
    if (opts.agentId) where.push("agent_id = @agentId");
    if (opts.kind) where.push("kind = @kind");
    const select = `SELECT id, at, kind, agent_id, data FROM events WHERE ${where.join(" AND ")}`;
    const rows = this.#db
      .prepare(
        opts.tail === undefined
          ? `${select} ORDER BY id LIMIT @limit`
          : `SELECT * FROM (${select} ORDER BY id DESC LIMIT @limit) ORDER BY id`,
      )
      .all({
        after: opts.after ?? 0,
        limit: Math.min(opts.tail ?? opts.limit ?? 100, 1000),
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
