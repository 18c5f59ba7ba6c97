// Capacity: warm targets kept by a reconciler (a timer, or on demand) that reserves warm agents and creates
// launch orders for the shortfall; launchers claim orders with a lease and a single-use bootstrap token, which
// the agent presents at registration. Decisions are planCapacity's (pure); this module does the I/O around it
// (store, agent read model, audit) and serialises reconciles. May import actors/, spec/ and lib/.
import { createHash, randomBytes } from "node:crypto";
import type { ReconcileResult } from "../../contract/capacity.ts";
import type { CapacityHint } from "../../contract/deployments.ts";
import type { MetricFamily } from "../../contract/metrics.ts";
import type { Logger } from "../../lib/log.ts";
import { LIVE_STATES } from "../../machines/agent-session.ts";
import { ValidationError } from "../../spec/errors.ts";
import type { AgentIndex } from "../agent-index.ts";
import { isWarm } from "../placement.ts";
import type { EventLog } from "../store/event-log.ts";
import { CAPACITY_DEFAULTS } from "./defaults.ts";
import { type Plan, planCapacity, type TargetStatus } from "./plan.ts";
import { type SizePreset, sizePresets } from "./sizes.ts";
import { type CapacityStore, IN_FLIGHT, type Order, type Reservation, type Target } from "./store.ts";

export type { ReconcileResult } from "../../contract/capacity.ts";

export type { CapacityHint } from "../../contract/deployments.ts";

export interface CapacityOptions {
  store: CapacityStore;
  index: AgentIndex;
  events: EventLog;
  log: Logger;
  nodeSizes: ReadonlySet<string>;
  sizePresets?: Readonly<Record<string, SizePreset>>;
  /** How old an attestation may be for an agent to count as warm (placement's rule). */
  attestationMaxAgeMs: number;
  /** Drained agents (actors/drains.ts) are not warm: placement gives them nothing. */
  drained?: (agentId: string) => boolean;
  reconcileMs?: number;
  leaseMs?: number;
  graceMs?: number;
  now?: () => number;
}

const BOOTSTRAP_PREFIX = "eebt_";

export const digestToken = (token: string): string => createHash("sha256").update(token).digest("hex");

export class Capacity {
  readonly #o: Required<Omit<CapacityOptions, "sizePresets">> & Pick<CapacityOptions, "sizePresets">;
  #timer: NodeJS.Timeout | null = null;
  /** The reconcile running now: a second request waits for it and then runs its own (it may see newer state). */
  #running: Promise<unknown> = Promise.resolve();
  readonly #offTransitions: () => void;
  /**
   * Agents seen by this process (any transition), with when: an order whose agent was seen and is gone (killed,
   * forgotten) is not waiting for it. Entries older than the grace window are dropped, which bounds the map.
   */
  readonly #seen = new Map<string, number>();
  /** Each target as the last reconcile found it, for /metrics (read without touching the store). */
  #last: TargetStatus[] = [];

  constructor(o: CapacityOptions) {
    this.#o = { ...CAPACITY_DEFAULTS, now: Date.now, drained: () => false, ...o };
    this.#offTransitions = o.index.onTransition((t) => {
      this.#seen.set(t.agent_id, t.at);
      // An order's agent registered and its session is live: the order is fulfilled.
      if (t.from === "challenged" && LIVE_STATES.has(t.to)) void this.#fulfil(t.agent_id);
    });
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.reconcile().catch((err) => this.#o.log.error({ err }, "capacity reconcile failed"));
    }, this.#o.reconcileMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a reconcile in progress, so the store can close after it. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#offTransitions();
    await this.#running;
  }

  sizes() {
    return sizePresets(this.#o.nodeSizes, this.#o.sizePresets);
  }

  /** Warm agents, targets and orders in flight per (datacenter, node_size), as of the last reconcile. */
  metrics(): MetricFamily[] {
    const labelled = (value: (t: TargetStatus) => number) =>
      this.#last.map((t) => ({
        labels: { datacenter: t.datacenter, node_size: t.node_size },
        value: value(t),
      }));
    return [
      {
        name: "ee_capacity_min_warm",
        help: "Warm agents wanted per datacenter and node size (targets).",
        type: "gauge",
        samples: labelled((t) => t.min_warm),
      },
      {
        name: "ee_capacity_warm",
        help: "Warm agents (attested, live, undeployed) per target at the last reconcile.",
        type: "gauge",
        samples: labelled((t) => t.warm),
      },
      {
        name: "ee_capacity_orders_in_flight",
        help: "Launch orders open, claimed or provisioning per target at the last reconcile.",
        type: "gauge",
        samples: labelled((t) => t.in_flight + t.ordered),
      },
    ];
  }

  async setTarget(datacenter: string, nodeSize: string, minWarm: number, by: string): Promise<Target> {
    if (!this.#o.nodeSizes.has(nodeSize))
      throw new ValidationError(
        "EE-REQ-INVALID",
        `node_size "${nodeSize}" is not one of the configured sizes`,
        {
          allowed: [...this.#o.nodeSizes],
        },
      );
    const target = { datacenter, node_size: nodeSize, min_warm: minWarm, updated_at: this.#o.now() };
    await this.#o.store.putTarget(target);
    this.#audit("capacity.target.set", { datacenter, node_size: nodeSize, min_warm: minWarm, by });
    // Acted on now, not at the next tick: the operator who sets a target sees its orders at once.
    await this.reconcile();
    return target;
  }

  targets(): Promise<Target[]> {
    return this.#o.store.targets();
  }

  async orders(): Promise<Order[]> {
    await this.#expire();
    return this.#o.store.orders();
  }

  reservations(): Promise<Reservation[]> {
    return this.#o.store.reservations();
  }

  /** Runs the reconciler now (after any run in progress). */
  reconcile(): Promise<ReconcileResult> {
    const run = this.#running.then(() => this.#reconcileOnce());
    this.#running = run.catch(() => {});
    return run;
  }

  /** The oldest open order for the datacenter (and node size), leased to `claimer`, with its bootstrap token. */
  async claim(
    claimer: string,
    datacenter: string,
    nodeSize?: string,
  ): Promise<{ order: Order; bootstrap_token: string } | null> {
    await this.#expire();
    const token = BOOTSTRAP_PREFIX + randomBytes(32).toString("base64url");
    const order = await this.#o.store.claim({
      datacenter,
      ...(nodeSize ? { node_size: nodeSize } : {}),
      claimer,
      now: this.#o.now(),
      leaseMs: this.#o.leaseMs,
      tokenDigest: digestToken(token),
    });
    if (!order) return null;
    this.#audit("capacity.order.claimed", { order_id: order.order_id, by: claimer });
    return { order, bootstrap_token: token };
  }

  async progress(
    claimer: string,
    orderId: string,
    status: "provisioning" | "failed",
    reason?: string,
  ): Promise<Order> {
    await this.#expire();
    const order = await this.#o.store.progress(orderId, {
      status,
      ...(reason ? { reason } : {}),
      claimer,
      now: this.#o.now(),
      leaseMs: this.#o.leaseMs,
    });
    this.#audit("capacity.order.progress", {
      order_id: orderId,
      status,
      reason: reason ?? null,
      by: claimer,
    });
    return order;
  }

  /**
   * Registration's bootstrap check (after the quote verified): consumes the token for this agent. Throws
   * RegistrationError EE-REG-BOOTSTRAP-*; the refusal reaches the agent and the audit trail like any other.
   */
  async consumeBootstrap(
    token: string,
    agent: { agent_id: string; datacenter: string; node_size: string },
    at: number,
  ): Promise<void> {
    const order = await this.#o.store.consumeBootstrap({
      tokenDigest: digestToken(token),
      ...agent,
      now: at,
    });
    this.#audit("capacity.order.registered", { order_id: order.order_id, agent_id: agent.agent_id });
  }

  /** Why nothing fits, as far as capacity can tell: an order on its way, or none. */
  async hint(req: { datacenter?: string; node_size?: string }): Promise<CapacityHint> {
    await this.#expire();
    const now = this.#o.now();
    const inFlight = (await this.#o.store.ordersForPlan(now)).filter(
      (o) =>
        IN_FLIGHT.has(o.status) &&
        (req.datacenter === undefined || o.datacenter === req.datacenter) &&
        (req.node_size === undefined || o.node_size === req.node_size),
    ).length;
    return inFlight > 0
      ? {
          code: "EE-CAP-WARM-PENDING",
          message: `${inFlight} launch order(s) for this datacenter and node_size are in flight: retry when the agent registers`,
          orders_in_flight: inFlight,
        }
      : {
          code: "EE-CAP-NO-ELIGIBLE",
          message: "no launch order is in flight for this datacenter and node_size: set a capacity target",
          orders_in_flight: 0,
        };
  }

  async #reconcileOnce(): Promise<ReconcileResult> {
    const { store, index } = this.#o;
    const expired = await this.#expire();
    const now = this.#o.now();
    const [targets, orders, reservations] = await Promise.all([
      store.targets(),
      store.ordersForPlan(now - this.#o.graceMs),
      store.reservations(),
    ]);
    for (const [id, at] of this.#seen) if (now - at >= this.#o.graceMs) this.#seen.delete(id);
    const plan = planCapacity({
      now,
      graceMs: this.#o.graceMs,
      targets,
      agents: planAgents(index, {
        now,
        attestationMaxAgeMs: this.#o.attestationMaxAgeMs,
        drained: this.#o.drained,
      }),
      seen: this.#seen,
      orders,
      reservations,
    });
    this.#last = plan.targets;
    return { ...(await this.#apply(plan, now)), expired: expired.map((o) => o.order_id) };
  }

  async #apply(plan: Plan, now: number): Promise<Omit<ReconcileResult, "expired">> {
    const { store } = this.#o;
    const created = plan.create.map((c) => ({
      order_id: `ord-${randomBytes(8).toString("hex")}`,
      datacenter: c.datacenter,
      node_size: c.node_size,
      status: "open" as const,
      agent_id: null,
      reason: null,
      claimed_by: null,
      lease_expires_at: null,
      created_at: now,
      updated_at: now,
    }));
    if (created.length > 0) await store.addOrders(created);
    if (plan.cancel.length > 0)
      await store.cancelOpen(plan.cancel, "EE-CAP-NOT-NEEDED: the target no longer needs it", now);
    if (plan.reserve.length > 0 || plan.release.length > 0)
      await store.updateReservations(plan.reserve, plan.release);
    for (const o of created)
      this.#audit("capacity.order.created", {
        order_id: o.order_id,
        datacenter: o.datacenter,
        node_size: o.node_size,
      });
    for (const id of plan.cancel) this.#audit("capacity.order.cancelled", { order_id: id });
    if (created.length > 0 || plan.cancel.length > 0)
      this.#o.log.info(
        { created: created.length, cancelled: plan.cancel.length },
        "capacity reconciled: launch orders changed",
      );
    return {
      targets: plan.targets,
      created: created.map((o) => o.order_id),
      cancelled: plan.cancel,
      reserved: plan.reserve.map((r) => r.agent_id),
      released: plan.release,
    };
  }

  async #expire(): Promise<Order[]> {
    const expired = await this.#o.store.expireLeases(this.#o.now());
    for (const o of expired) {
      this.#audit("capacity.order.expired", { order_id: o.order_id, reason: o.reason });
      this.#o.log.warn({ order_id: o.order_id }, "launch order lease expired: open again");
    }
    return expired;
  }

  async #fulfil(agentId: string): Promise<void> {
    try {
      const order = await this.#o.store.fulfil(agentId, this.#o.now());
      if (order) this.#audit("capacity.order.fulfilled", { order_id: order.order_id, agent_id: agentId });
    } catch (err) {
      this.#o.log.error({ err, agent_id: agentId }, "marking a launch order fulfilled failed");
    }
  }

  #audit(kind: string, data: Record<string, unknown>): void {
    const agentId = typeof data.agent_id === "string" ? data.agent_id : undefined;
    this.#o.events.append({ at: this.#o.now(), kind, ...(agentId ? { agent_id: agentId } : {}), data });
  }
}

/** The read model as the planner sees it: one pass, no copies of the records. */
function* planAgents(index: AgentIndex, o: Parameters<typeof isWarm>[1]) {
  for (const a of index.values())
    yield { agent_id: a.agent_id, datacenter: a.datacenter, node_size: a.node_size, warm: isWarm(a, o) };
}
