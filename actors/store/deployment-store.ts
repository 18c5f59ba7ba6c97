// Durable deployment records and idempotency keys (SQLite tables of migration 3; registered apps moved to the
// business store, actors/business/sqlite-store.ts, which keeps the AppRow shape declared here). A new
// deployment and its idempotency key are written at once, in one transaction; status changes are written behind,
// the latest row per deployment in one transaction per tick (1,000 concurrent deploys make ~5,000 changes), and
// every read flushes first. A crash loses at most that tick's changes, which agents report again. The deployment actors are
// the live truth while the CP runs; these rows are what survives it. Compose texts are sealed (sealed-text.ts) on
// their way in and opened on their way out: the database file never holds them in clear.
import type { DeploymentRow } from "../../contract/deployments.ts";
import type { DeploymentStatus } from "../../machines/deployment.ts";
import type { ImageRef } from "../../spec/images.ts";
import type { Db } from "./db.ts";
import { perTick } from "./per-tick.ts";
import type { TextSealer } from "./sealed-text.ts";

export type { AppRow, DeploymentRequestRecord, DeploymentRow } from "../../contract/deployments.ts";

interface RawDeployment extends Omit<DeploymentRow, "images" | "progress" | "request" | "rehydrated"> {
  images: string;
  progress: string;
  request: string;
  rehydrated: number;
}

/** Rows written before images were resolved to digests hold an object (service → image id): no digests known. */
const imagesOf = (v: unknown): ImageRef[] => (Array.isArray(v) ? (v as ImageRef[]) : []);

/** What a sealed compose is bound to: the row it belongs to. */
const deploymentContext = (id: string) => `deployment ${id}`;

function fromRaw(r: RawDeployment, sealer: TextSealer): DeploymentRow {
  return {
    ...r,
    compose: sealer.open(r.compose, deploymentContext(r.deployment_id)),
    images: imagesOf(JSON.parse(r.images)),
    progress: JSON.parse(r.progress),
    request: JSON.parse(r.request),
    rehydrated: r.rehydrated === 1,
  };
}

export class DeploymentStore {
  readonly #db: Db;
  readonly #sealer: TextSealer;
  readonly #pending = new Map<string, DeploymentRow>();
  readonly #onError: (err: unknown) => void;
  // Readers' flushes throw; the tick's is reported.
  readonly #schedule = perTick(() => {
    try {
      this.flush();
    } catch (err) {
      this.#onError(err);
    }
  });
  readonly #upsert;
  readonly #update;
  readonly #get;
  readonly #list;
  readonly #listByStatus;
  readonly #active;
  readonly #keyGet;
  readonly #keyPut;

  constructor(db: Db, sealer: TextSealer, onError: (err: unknown) => void = () => {}) {
    this.#db = db;
    this.#sealer = sealer;
    this.#onError = onError;
    this.#upsert = db.prepare(`
      INSERT INTO deployments (deployment_id, app, app_version, agent_id, status, code, message, compose_hash,
        images, progress, request, compose, created_at, updated_at, rehydrated)
      VALUES (@deployment_id, @app, @app_version, @agent_id, @status, @code, @message, @compose_hash,
        @images, @progress, @request, @compose, @created_at, @updated_at, @rehydrated)
      ON CONFLICT (deployment_id) DO UPDATE SET status = excluded.status, code = excluded.code,
        message = excluded.message, compose_hash = excluded.compose_hash, images = excluded.images,
        progress = excluded.progress, request = excluded.request, updated_at = excluded.updated_at`);
    // A status change leaves the compose as it is: no sealing on the hot path (~5 changes per deployment).
    this.#update = db.prepare(`
      UPDATE deployments SET status = @status, code = @code, message = @message, compose_hash = @compose_hash,
        images = @images, progress = @progress, request = @request, updated_at = @updated_at
      WHERE deployment_id = @deployment_id`);
    this.#get = db.prepare("SELECT * FROM deployments WHERE deployment_id = ?");
    this.#list = db.prepare("SELECT * FROM deployments ORDER BY created_at DESC, deployment_id LIMIT ?");
    this.#listByStatus = db.prepare(
      "SELECT * FROM deployments WHERE status = ? ORDER BY created_at DESC, deployment_id LIMIT ?",
    );
    this.#active = db.prepare(
      "SELECT * FROM deployments WHERE status IN ('pending', 'deploying', 'healthy', 'undeploying')",
    );
    this.#keyGet = db.prepare("SELECT request_hash, deployment_id FROM idempotency_keys WHERE key = ?");
    this.#keyPut = db.prepare(
      "INSERT INTO idempotency_keys (key, request_hash, deployment_id, created_at) VALUES (?, ?, ?, ?)",
    );
  }

  /** Queues the row's current state; written with the tick's other changes (see flush). */
  save(row: DeploymentRow): void {
    this.#pending.set(row.deployment_id, row);
    this.#schedule();
  }

  /** Writes every queued change in one transaction. Reads call it first, so they see their own writes. */
  flush(): void {
    if (this.#pending.size === 0) return;
    const rows = [...this.#pending.values()];
    this.#pending.clear();
    this.#db.transaction(() => {
      for (const row of rows) this.#write(row);
    })();
  }

  /** Updates the row, or inserts it (compose sealed) when it is new. */
  #write(row: DeploymentRow): void {
    const changed = {
      deployment_id: row.deployment_id,
      status: row.status,
      code: row.code,
      message: row.message,
      compose_hash: row.compose_hash,
      images: JSON.stringify(row.images),
      progress: JSON.stringify(row.progress),
      request: JSON.stringify(row.request),
      updated_at: row.updated_at,
    };
    if (this.#update.run(changed).changes > 0) return;
    this.#upsert.run({
      ...row,
      ...changed,
      compose: this.#sealer.seal(row.compose, deploymentContext(row.deployment_id)),
      rehydrated: row.rehydrated ? 1 : 0,
    });
  }

  get(id: string): DeploymentRow | undefined {
    this.flush();
    const r = this.#get.get(id) as RawDeployment | undefined;
    return r && fromRaw(r, this.#sealer);
  }

  list(opts: { status?: DeploymentStatus; limit?: number } = {}): DeploymentRow[] {
    this.flush();
    const limit = Math.min(opts.limit ?? 100, 1000);
    const rows = (
      opts.status ? this.#listByStatus.all(opts.status, limit) : this.#list.all(limit)
    ) as RawDeployment[];
    return rows.map((r) => fromRaw(r, this.#sealer));
  }

  /** Deployments not in a final status: what a restarted CP resumes. */
  active(): DeploymentRow[] {
    this.flush();
    return (this.#active.all() as RawDeployment[]).map((r) => fromRaw(r, this.#sealer));
  }

  idempotencyKey(key: string): { request_hash: string; deployment_id: string } | undefined {
    return this.#keyGet.get(key) as { request_hash: string; deployment_id: string } | undefined;
  }

  /** Saves the deployment and its idempotency key in one transaction, so a retry never sees one without the other. */
  create(row: DeploymentRow, key?: { key: string; requestHash: string }): void {
    this.#pending.delete(row.deployment_id);
    this.#db.transaction(() => {
      this.#write(row);
      if (key) this.#keyPut.run(key.key, key.requestHash, row.deployment_id, row.created_at);
    })();
  }
}
