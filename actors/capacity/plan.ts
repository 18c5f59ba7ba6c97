// The reconciler's decision, pure: from the targets, the agents, the orders and the reservations at `now`, what
// to reserve, release, order and cancel. No I/O and no clock, so it is tested directly and measured at 10,000
// agents (test/actors/capacity-plan.test.ts). Imports the store's types only.
import type { TargetStatus } from "../../contract/capacity.ts";
import { IN_FLIGHT, type Order, type Reservation } from "./store.ts";

export type { TargetStatus } from "../../contract/capacity.ts";

export interface PlanAgent {
  agent_id: string;
  datacenter: string | null;
  node_size: string | null;
  /** Attested, live and undeployed: it could take a deployment now. */
  warm: boolean;
}

export interface PlanInput {
  now: number;
  /** How long an order whose agent registered still covers the shortfall while that agent is not seen. */
  graceMs: number;
  targets: readonly { datacenter: string; node_size: string; min_warm: number }[];
  /** Every agent the CP knows (warm or not): an order's agent that is known is no longer "on its way". */
  agents: Iterable<PlanAgent>;
  /**
   * Agents this CP saw since it started that it no longer lists (forgotten after going stale): their orders
   * are not "on their way" either. Empty right after a start, which is when awaiting orders matter.
   */
  seen?: { has(agentId: string): boolean };
  orders: readonly Order[];
  reservations: readonly Reservation[];
}

export interface Plan {
  /** One launch order per entry. */
  create: { datacenter: string; node_size: string }[];
  /** Open (unclaimed) orders no target needs any more. */
  cancel: string[];
  reserve: Reservation[];
  /** Agent ids whose reservation ends. */
  release: string[];
  targets: TargetStatus[];
}

const keyOf = (datacenter: string | null, nodeSize: string | null) => `${datacenter}\0${nodeSize}`;

export function planCapacity(input: PlanInput): Plan {
  const { now } = input;
  const warmByKey = new Map<string, string[]>();
  const known = new Set<string>();
  for (const a of input.agents) {
    known.add(a.agent_id);
    if (!a.warm) continue;
    const k = keyOf(a.datacenter, a.node_size);
    const list = warmByKey.get(k);
    if (list) list.push(a.agent_id);
    else warmByKey.set(k, [a.agent_id]);
  }
  const ordersByKey = new Map<string, Order[]>();
  for (const o of input.orders) {
    const k = keyOf(o.datacenter, o.node_size);
    const list = ordersByKey.get(k);
    if (list) list.push(o);
    else ordersByKey.set(k, [o]);
  }
  const reservedByKey = new Map<string, Set<string>>();
  for (const r of input.reservations) {
    const k = keyOf(r.datacenter, r.node_size);
    const set = reservedByKey.get(k) ?? new Set<string>();
    set.add(r.agent_id);
    reservedByKey.set(k, set);
  }

  const plan: Plan = { create: [], cancel: [], reserve: [], release: [], targets: [] };
  const targeted = new Set<string>();
  for (const t of input.targets) {
    const k = keyOf(t.datacenter, t.node_size);
    targeted.add(k);
    const warm = warmByKey.get(k) ?? [];
    const warmSet = new Set(warm);
    const reserved = reservedByKey.get(k) ?? new Set<string>();
    // Reservations already held by warm agents stay (stable), then more warm agents in id order, up to min_warm.
    const keep = [...reserved].filter((id) => warmSet.has(id)).sort();
    const kept = new Set(keep.slice(0, t.min_warm));
    for (const id of reserved) if (!kept.has(id)) plan.release.push(id);
    for (const id of warm.sort()) {
      if (kept.size >= t.min_warm) break;
      if (kept.has(id)) continue;
      kept.add(id);
      plan.reserve.push({ agent_id: id, datacenter: t.datacenter, node_size: t.node_size, created_at: now });
    }

    const orders = ordersByKey.get(k) ?? [];
    const inFlight = orders.filter((o) => IN_FLIGHT.has(o.status));
    const awaiting = orders.filter(
      (o) =>
        (o.status === "registered" || o.status === "fulfilled") &&
        o.agent_id !== null &&
        !known.has(o.agent_id) &&
        !input.seen?.has(o.agent_id) &&
        now - o.updated_at < input.graceMs,
    ).length;
    const need = Math.max(0, t.min_warm - warm.length) - inFlight.length - awaiting;
    for (let i = 0; i < need; i++) plan.create.push({ datacenter: t.datacenter, node_size: t.node_size });
    if (need < 0) plan.cancel.push(...surplusOpen(inFlight, -need));
    plan.targets.push({
      datacenter: t.datacenter,
      node_size: t.node_size,
      min_warm: t.min_warm,
      warm: warm.length,
      in_flight: inFlight.length,
      awaiting,
      ordered: Math.max(0, need),
    });
  }
  // No target (any more) for these: their reservations end and their unclaimed orders are cancelled.
  for (const [k, set] of reservedByKey) if (!targeted.has(k)) plan.release.push(...set);
  for (const [k, orders] of ordersByKey)
    if (!targeted.has(k)) plan.cancel.push(...surplusOpen(orders, Number.POSITIVE_INFINITY));
  return plan;
}

/** Up to `n` open orders, newest first: a claimed one is a launcher's work in progress and is left to finish. */
function surplusOpen(orders: readonly Order[], n: number): string[] {
  return orders
    .filter((o) => o.status === "open")
    .sort((a, b) => b.created_at - a.created_at || (a.order_id < b.order_id ? 1 : -1))
    .slice(0, n)
    .map((o) => o.order_id);
}
