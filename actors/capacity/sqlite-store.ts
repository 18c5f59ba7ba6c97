// The capacity store on SQLite (better-sqlite3, an injected handle) and its migrations. The SQL is kept portable
// (standard types, BIGINT times, ON CONFLICT upserts, no SQLite-only functions) so a PostgreSQL adapter can
// reuse CAPACITY_MIGRATIONS and the statements. Each method runs in one transaction: claims, lease expiry and
// token consumption are atomic. Imports spec/errors, the store port and actors/store types.
import { NotFoundError, RegistrationError } from "../../spec/errors.ts";
import type { Db } from "../store/db.ts";
import type { Migration } from "../store/migrations.ts";
import {
  type BootstrapUse,
  bootstrapDecision,
  type CapacityStore,
  type ClaimRequest,
  type Order,
  type OrderStatus,
  type ProgressRequest,
  progressLease,
  type Reservation,
  type Target,
} from "./store.ts";

/** Versions 200–249 belong to capacity, so they never collide with the core list or the other business lists. */
export const CAPACITY_MIGRATIONS: readonly Migration[] = [
  {
    version: 200,
    name: "capacity targets, reservations, launch orders and bootstrap tokens",
    sql: `
      CREATE TABLE capacity_targets (
        datacenter TEXT    NOT NULL,
        node_size  TEXT    NOT NULL,
        min_warm   INTEGER NOT NULL,
        updated_at BIGINT  NOT NULL,
        PRIMARY KEY (datacenter, node_size)
      );
      -- One row per warm agent held for a target; released rows are deleted.
      CREATE TABLE capacity_reservations (
        agent_id   TEXT   PRIMARY KEY,
        datacenter TEXT   NOT NULL,
        node_size  TEXT   NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE TABLE capacity_orders (
        order_id         TEXT    PRIMARY KEY,
        datacenter       TEXT    NOT NULL,
        node_size        TEXT    NOT NULL,
        status           TEXT    NOT NULL,
        agent_id         TEXT,
        reason           TEXT,
        claimed_by       TEXT,
        claim_seq        INTEGER NOT NULL DEFAULT 0,
        lease_expires_at BIGINT,
        created_at       BIGINT  NOT NULL,
        updated_at       BIGINT  NOT NULL
      );
      CREATE INDEX capacity_orders_status ON capacity_orders (status, datacenter, node_size, created_at);
      CREATE INDEX capacity_orders_agent ON capacity_orders (agent_id);
      -- Only the SHA-256 of each token. A token belongs to one claim of its order: a later claim issues a
      -- new one, so an old token is told apart (expired) from one never issued (unknown).
      CREATE TABLE capacity_bootstrap_tokens (
        token_digest TEXT    PRIMARY KEY,
        order_id     TEXT    NOT NULL,
        claim_seq    INTEGER NOT NULL,
        used_by      TEXT,
        used_at      BIGINT
      );
    `,
  },
];

export interface OrderRow extends Order {
  claim_seq: number;
}

/** The columns every order query reads (shared with pg-store.ts). */
export const ORDER_COLUMNS =
  "order_id, datacenter, node_size, status, agent_id, reason, claimed_by, claim_seq, lease_expires_at, created_at, updated_at";

export class SqliteCapacityStore implements CapacityStore {
  readonly #db: Db;
  readonly #s;

  constructor(db: Db) {
    this.#db = db;
    this.#s = {
      putTarget: db.prepare(
        `INSERT INTO capacity_targets (datacenter, node_size, min_warm, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (datacenter, node_size) DO UPDATE SET min_warm = excluded.min_warm, updated_at = excluded.updated_at`,
      ),
      targets: db.prepare(
        "SELECT datacenter, node_size, min_warm, updated_at FROM capacity_targets ORDER BY datacenter, node_size",
      ),
      orders: db.prepare(`SELECT ${ORDER_COLUMNS} FROM capacity_orders ORDER BY created_at, order_id`),
      ordersForPlan: db.prepare(
        `SELECT ${ORDER_COLUMNS} FROM capacity_orders WHERE status IN ('open', 'claimed', 'provisioning')
         OR (status IN ('registered', 'fulfilled') AND updated_at >= ?) ORDER BY created_at, order_id`,
      ),
      order: db.prepare(`SELECT ${ORDER_COLUMNS} FROM capacity_orders WHERE order_id = ?`),
      addOrder: db.prepare(
        `INSERT INTO capacity_orders (${ORDER_COLUMNS}) VALUES (?, ?, ?, 'open', NULL, NULL, NULL, 0, NULL, ?, ?)`,
      ),
      cancelOpen: db.prepare(
        "UPDATE capacity_orders SET status = 'failed', reason = ?, updated_at = ? WHERE order_id = ? AND status = 'open'",
      ),
      nextOpen: db.prepare(
        `SELECT ${ORDER_COLUMNS} FROM capacity_orders WHERE status = 'open' AND datacenter = ?
         AND (? IS NULL OR node_size = ?) ORDER BY created_at, order_id LIMIT 1`,
      ),
      setClaimed: db.prepare(
        `UPDATE capacity_orders SET status = 'claimed', claimed_by = ?, claim_seq = claim_seq + 1,
         lease_expires_at = ?, reason = NULL, updated_at = ? WHERE order_id = ?`,
      ),
      addToken: db.prepare(
        "INSERT INTO capacity_bootstrap_tokens (token_digest, order_id, claim_seq) VALUES (?, ?, ?)",
      ),
      setProgress: db.prepare(
        `UPDATE capacity_orders SET status = ?, reason = ?, lease_expires_at = ?, updated_at = ? WHERE order_id = ?`,
      ),
      expired: db.prepare(
        `SELECT ${ORDER_COLUMNS} FROM capacity_orders
         WHERE status IN ('claimed', 'provisioning') AND lease_expires_at <= ?`,
      ),
      reopen: db.prepare(
        `UPDATE capacity_orders SET status = 'open', claimed_by = NULL, lease_expires_at = NULL, reason = ?,
         updated_at = ? WHERE order_id = ?`,
      ),
      token: db.prepare(
        "SELECT token_digest, order_id, claim_seq, used_by FROM capacity_bootstrap_tokens WHERE token_digest = ?",
      ),
      useToken: db.prepare(
        "UPDATE capacity_bootstrap_tokens SET used_by = ?, used_at = ? WHERE token_digest = ? AND used_by IS NULL",
      ),
      setRegistered: db.prepare(
        `UPDATE capacity_orders SET status = 'registered', agent_id = ?, claimed_by = NULL, lease_expires_at = NULL,
         updated_at = ? WHERE order_id = ?`,
      ),
      registeredOf: db.prepare(
        `SELECT ${ORDER_COLUMNS} FROM capacity_orders WHERE agent_id = ? AND status = 'registered'`,
      ),
      setFulfilled: db.prepare(
        "UPDATE capacity_orders SET status = 'fulfilled', updated_at = ? WHERE order_id = ?",
      ),
      reservations: db.prepare(
        "SELECT agent_id, datacenter, node_size, created_at FROM capacity_reservations ORDER BY datacenter, node_size, agent_id",
      ),
      reserve: db.prepare(
        `INSERT INTO capacity_reservations (agent_id, datacenter, node_size, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (agent_id) DO NOTHING`,
      ),
      release: db.prepare("DELETE FROM capacity_reservations WHERE agent_id = ?"),
    };
  }

  async putTarget(t: Target): Promise<void> {
    this.#s.putTarget.run(t.datacenter, t.node_size, t.min_warm, t.updated_at);
  }

  async targets(): Promise<Target[]> {
    return this.#s.targets.all() as Target[];
  }

  async orders(): Promise<Order[]> {
    return (this.#s.orders.all() as OrderRow[]).map(publicOrder);
  }

  async ordersForPlan(since: number): Promise<Order[]> {
    return (this.#s.ordersForPlan.all(since) as OrderRow[]).map(publicOrder);
  }

  async addOrders(orders: readonly Order[]): Promise<void> {
    this.#db.transaction(() => {
      for (const o of orders)
        this.#s.addOrder.run(o.order_id, o.datacenter, o.node_size, o.created_at, o.updated_at);
    })();
  }

  async cancelOpen(ids: readonly string[], reason: string, now: number): Promise<number> {
    return this.#db.transaction(() => {
      let n = 0;
      for (const id of ids) n += this.#s.cancelOpen.run(reason, now, id).changes;
      return n;
    })();
  }

  async claim(req: ClaimRequest): Promise<Order | null> {
    return this.#db.transaction(() => {
      const size = req.node_size ?? null;
      const row = this.#s.nextOpen.get(req.datacenter, size, size) as OrderRow | undefined;
      if (!row) return null;
      this.#s.setClaimed.run(req.claimer, req.now + req.leaseMs, req.now, row.order_id);
      this.#s.addToken.run(req.tokenDigest, row.order_id, row.claim_seq + 1);
      return publicOrder(this.#find(row.order_id));
    })();
  }

  async progress(orderId: string, req: ProgressRequest): Promise<Order> {
    return this.#db.transaction(() => {
      const row = this.#find(orderId);
      const lease = progressLease(row, req);
      this.#s.setProgress.run(req.status, req.reason ?? null, lease, req.now, orderId);
      return publicOrder(this.#find(orderId));
    })();
  }

  async expireLeases(now: number): Promise<Order[]> {
    return this.#db.transaction(() => {
      const rows = this.#s.expired.all(now) as OrderRow[];
      for (const r of rows) {
        const reason = `EE-CAP-LEASE-EXPIRED: the lease of ${r.claimed_by} ended while ${r.status}`;
        this.#s.reopen.run(reason, now, r.order_id);
      }
      return rows.map((r) => publicOrder(this.#find(r.order_id)));
    })();
  }

  async consumeBootstrap(use: BootstrapUse): Promise<Order> {
    return this.#db.transaction(() => {
      const token = this.#s.token.get(use.tokenDigest) as
        | { order_id: string; claim_seq: number; used_by: string | null }
        | undefined;
      if (!token) throw new RegistrationError("EE-REG-BOOTSTRAP-UNKNOWN");
      const order = this.#find(token.order_id);
      if (bootstrapDecision(token, order, use) === "again") return publicOrder(order);
      this.#s.useToken.run(use.agent_id, use.now, use.tokenDigest);
      this.#s.setRegistered.run(use.agent_id, use.now, order.order_id);
      return publicOrder(this.#find(order.order_id));
    })();
  }

  async fulfil(agentId: string, now: number): Promise<Order | null> {
    return this.#db.transaction(() => {
      const row = this.#s.registeredOf.get(agentId) as OrderRow | undefined;
      if (!row) return null;
      this.#s.setFulfilled.run(now, row.order_id);
      return publicOrder(this.#find(row.order_id));
    })();
  }

  async reservations(): Promise<Reservation[]> {
    return this.#s.reservations.all() as Reservation[];
  }

  async updateReservations(add: readonly Reservation[], release: readonly string[]): Promise<void> {
    this.#db.transaction(() => {
      for (const id of release) this.#s.release.run(id);
      for (const r of add) this.#s.reserve.run(r.agent_id, r.datacenter, r.node_size, r.created_at);
    })();
  }

  #find(orderId: string): OrderRow {
    const row = this.#s.order.get(orderId) as OrderRow | undefined;
    if (!row) throw new NotFoundError("EE-NOT-FOUND", `launch order ${orderId} does not exist`);
    return row;
  }
}

export function publicOrder(r: OrderRow): Order {
  const { claim_seq: _, ...order } = r;
  return { ...order, status: order.status as OrderStatus };
}
