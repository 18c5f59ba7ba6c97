// The capacity store on PostgreSQL (`--business-db postgres://…`): CAPACITY_MIGRATIONS' tables in the business
// database, each method one transaction. A claim locks the oldest open order with FOR UPDATE SKIP LOCKED, so two
// launchers claiming at once get different orders; token consumption locks its token and order rows. Imports the
// port, the PostgreSQL plumbing and spec/errors.
import type pg from "pg";
import { NotFoundError, RegistrationError } from "../../spec/errors.ts";
import { inTx } from "../business/pg-db.ts";
import { ORDER_COLUMNS, type OrderRow, publicOrder } from "./sqlite-store.ts";
import {
  type BootstrapUse,
  bootstrapDecision,
  type CapacityStore,
  type ClaimRequest,
  type Order,
  type ProgressRequest,
  progressLease,
  type Reservation,
  type Target,
} from "./store.ts";

export class PgCapacityStore implements CapacityStore {
  readonly #pool: pg.Pool;

  /** `pool`: the business database, migrated with CAPACITY_MIGRATIONS. */
  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async putTarget(t: Target): Promise<void> {
    await this.#pool.query(
      `INSERT INTO capacity_targets (datacenter, node_size, min_warm, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (datacenter, node_size) DO UPDATE SET min_warm = excluded.min_warm, updated_at = excluded.updated_at`,
      [t.datacenter, t.node_size, t.min_warm, t.updated_at],
    );
  }

  async targets(): Promise<Target[]> {
    return (
      await this.#pool.query<Target>(
        "SELECT datacenter, node_size, min_warm, updated_at FROM capacity_targets ORDER BY datacenter, node_size",
      )
    ).rows;
  }

  async orders(): Promise<Order[]> {
    const { rows } = await this.#pool.query<OrderRow>(
      `SELECT ${ORDER_COLUMNS} FROM capacity_orders ORDER BY created_at, order_id`,
    );
    return rows.map(publicOrder);
  }

  async ordersForPlan(since: number): Promise<Order[]> {
    const { rows } = await this.#pool.query<OrderRow>(
      `SELECT ${ORDER_COLUMNS} FROM capacity_orders WHERE status IN ('open', 'claimed', 'provisioning')
       OR (status IN ('registered', 'fulfilled') AND updated_at >= $1) ORDER BY created_at, order_id`,
      [since],
    );
    return rows.map(publicOrder);
  }

  async addOrders(orders: readonly Order[]): Promise<void> {
    await inTx(this.#pool, async (c) => {
      for (const o of orders)
        await c.query(
          `INSERT INTO capacity_orders (${ORDER_COLUMNS})
           VALUES ($1, $2, $3, 'open', NULL, NULL, NULL, 0, NULL, $4, $5)`,
          [o.order_id, o.datacenter, o.node_size, o.created_at, o.updated_at],
        );
    });
  }

  async cancelOpen(ids: readonly string[], reason: string, now: number): Promise<number> {
    const r = await this.#pool.query(
      "UPDATE capacity_orders SET status = 'failed', reason = $1, updated_at = $2 WHERE order_id = ANY($3) AND status = 'open'",
      [reason, now, [...ids]],
    );
    return r.rowCount ?? 0;
  }

  async claim(req: ClaimRequest): Promise<Order | null> {
    return inTx(this.#pool, async (c) => {
      const size = req.node_size ?? null;
      const { rows } = await c.query<OrderRow>(
        `SELECT ${ORDER_COLUMNS} FROM capacity_orders WHERE status = 'open' AND datacenter = $1
         AND ($2::text IS NULL OR node_size = $2) ORDER BY created_at, order_id LIMIT 1 FOR UPDATE SKIP LOCKED`,
        [req.datacenter, size],
      );
      const row = rows[0];
      if (!row) return null;
      await c.query(
        `UPDATE capacity_orders SET status = 'claimed', claimed_by = $1, claim_seq = claim_seq + 1,
         lease_expires_at = $2, reason = NULL, updated_at = $3 WHERE order_id = $4`,
        [req.claimer, req.now + req.leaseMs, req.now, row.order_id],
      );
      await c.query(
        "INSERT INTO capacity_bootstrap_tokens (token_digest, order_id, claim_seq) VALUES ($1, $2, $3)",
        [req.tokenDigest, row.order_id, row.claim_seq + 1],
      );
      return publicOrder(await find(c, row.order_id));
    });
  }

  async progress(orderId: string, req: ProgressRequest): Promise<Order> {
    return inTx(this.#pool, async (c) => {
      const row = await find(c, orderId, true);
      const lease = progressLease(row, req);
      await c.query(
        "UPDATE capacity_orders SET status = $1, reason = $2, lease_expires_at = $3, updated_at = $4 WHERE order_id = $5",
        [req.status, req.reason ?? null, lease, req.now, orderId],
      );
      return publicOrder(await find(c, orderId));
    });
  }

  async expireLeases(now: number): Promise<Order[]> {
    return inTx(this.#pool, async (c) => {
      const { rows } = await c.query<OrderRow>(
        `SELECT ${ORDER_COLUMNS} FROM capacity_orders
         WHERE status IN ('claimed', 'provisioning') AND lease_expires_at <= $1 FOR UPDATE`,
        [now],
      );
      const out: Order[] = [];
      for (const r of rows) {
        const reason = `EE-CAP-LEASE-EXPIRED: the lease of ${r.claimed_by} ended while ${r.status}`;
        await c.query(
          `UPDATE capacity_orders SET status = 'open', claimed_by = NULL, lease_expires_at = NULL, reason = $1,
           updated_at = $2 WHERE order_id = $3`,
          [reason, now, r.order_id],
        );
        out.push(publicOrder(await find(c, r.order_id)));
      }
      return out;
    });
  }

  async consumeBootstrap(use: BootstrapUse): Promise<Order> {
    return inTx(this.#pool, async (c) => {
      const token = (
        await c.query<{ order_id: string; claim_seq: number; used_by: string | null }>(
          "SELECT order_id, claim_seq, used_by FROM capacity_bootstrap_tokens WHERE token_digest = $1 FOR UPDATE",
          [use.tokenDigest],
        )
      ).rows[0];
      if (!token) throw new RegistrationError("EE-REG-BOOTSTRAP-UNKNOWN");
      const order = await find(c, token.order_id, true);
      if (bootstrapDecision(token, order, use) === "again") return publicOrder(order);
      await c.query(
        "UPDATE capacity_bootstrap_tokens SET used_by = $1, used_at = $2 WHERE token_digest = $3",
        [use.agent_id, use.now, use.tokenDigest],
      );
      await c.query(
        `UPDATE capacity_orders SET status = 'registered', agent_id = $1, claimed_by = NULL, lease_expires_at = NULL,
         updated_at = $2 WHERE order_id = $3`,
        [use.agent_id, use.now, order.order_id],
      );
      return publicOrder(await find(c, order.order_id));
    });
  }

  async fulfil(agentId: string, now: number): Promise<Order | null> {
    return inTx(this.#pool, async (c) => {
      const { rows } = await c.query<OrderRow>(
        `UPDATE capacity_orders SET status = 'fulfilled', updated_at = $1
         WHERE order_id = (SELECT order_id FROM capacity_orders WHERE agent_id = $2 AND status = 'registered' LIMIT 1)
         RETURNING ${ORDER_COLUMNS}`,
        [now, agentId],
      );
      return rows[0] ? publicOrder(rows[0]) : null;
    });
  }

  async reservations(): Promise<Reservation[]> {
    return (
      await this.#pool.query<Reservation>(
        "SELECT agent_id, datacenter, node_size, created_at FROM capacity_reservations ORDER BY datacenter, node_size, agent_id",
      )
    ).rows;
  }

  async updateReservations(add: readonly Reservation[], release: readonly string[]): Promise<void> {
    await inTx(this.#pool, async (c) => {
      for (const id of release) await c.query("DELETE FROM capacity_reservations WHERE agent_id = $1", [id]);
      for (const r of add)
        await c.query(
          `INSERT INTO capacity_reservations (agent_id, datacenter, node_size, created_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (agent_id) DO NOTHING`,
          [r.agent_id, r.datacenter, r.node_size, r.created_at],
        );
    });
  }
}

async function find(c: pg.PoolClient, orderId: string, lock = false): Promise<OrderRow> {
  const { rows } = await c.query<OrderRow>(
    `SELECT ${ORDER_COLUMNS} FROM capacity_orders WHERE order_id = $1${lock ? " FOR UPDATE" : ""}`,
    [orderId],
  );
  const row = rows[0];
  if (!row) throw new NotFoundError("EE-NOT-FOUND", `launch order ${orderId} does not exist`);
  return row;
}
