// The runtime checkpoint: which agents were live, written every few seconds and at shutdown, read once at
// start by the readiness rule. One row; never read for liveness (state classes: ARCHITECTURE.md).
import type { Db } from "./db.ts";

export class RuntimeCheckpoint {
  readonly #put;
  readonly #get;

  constructor(db: Db) {
    this.#put = db.prepare(
      "INSERT INTO runtime_checkpoint (id, at, live_agents) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at, live_agents = excluded.live_agents",
    );
    this.#get = db.prepare("SELECT at, live_agents FROM runtime_checkpoint WHERE id = 1");
  }

  /** The agents live at the last checkpoint, or null when there is none (an empty or new database). */
  read(): Set<string> | null {
    const row = this.#get.get() as { at: number; live_agents: string } | undefined;
    return row ? new Set(JSON.parse(row.live_agents) as string[]) : null;
  }

  write(liveAgents: Iterable<string>, at: number): void {
    this.#put.run(at, JSON.stringify([...liveAgents]));
  }
}
