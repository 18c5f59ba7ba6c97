// The reconciler's decision (actors/capacity/plan.ts), pure: shortfall minus in-flight minus awaiting orders,
// reservations kept stable, surplus open orders cancelled; and its cost at 10,000 agents.
import test from "ava";
import { type PlanAgent, planCapacity } from "../../actors/capacity/plan.ts";
import type { Order, OrderStatus } from "../../actors/capacity/store.ts";

const DC = "local:a";
const NOW = 1_000_000_000;
const GRACE = 30 * 60_000;

function agent(id: string, warm = true, over: Partial<PlanAgent> = {}): PlanAgent {
  return { agent_id: id, datacenter: DC, node_size: "tiny", warm, ...over };
}

function order(id: string, status: OrderStatus, over: Partial<Order> = {}): Order {
  return {
    order_id: id,
    datacenter: DC,
    node_size: "tiny",
    status,
    agent_id: null,
    reason: null,
    claimed_by: null,
    lease_expires_at: null,
    created_at: NOW - 1000,
    updated_at: NOW - 1000,
    ...over,
  };
}

const plan = (o: Partial<Parameters<typeof planCapacity>[0]>) =>
  planCapacity({
    now: NOW,
    graceMs: GRACE,
    targets: [{ datacenter: DC, node_size: "tiny", min_warm: 2 }],
    agents: [],
    orders: [],
    reservations: [],
    ...o,
  });

test("a shortfall is ordered, minus orders in flight", (t) => {
  t.is(plan({}).create.length, 2);
  t.is(plan({ agents: [agent("agt_a")] }).create.length, 1);
  t.is(plan({ orders: [order("o1", "claimed")] }).create.length, 1);
  t.is(plan({ orders: [order("o1", "open"), order("o2", "provisioning")] }).create.length, 0);
  // Failed orders cover nothing, nor do agents that are not warm (deployed, stale) or elsewhere.
  const p = plan({
    orders: [order("o1", "failed")],
    agents: [agent("agt_a", false), agent("agt_b", true, { datacenter: "local:b" })],
  });
  t.deepEqual(p.create, [
    { datacenter: DC, node_size: "tiny" },
    { datacenter: DC, node_size: "tiny" },
  ]);
  t.like(p.targets[0], { min_warm: 2, warm: 0, in_flight: 0, ordered: 2 });
});

test("an order whose agent registered covers the shortfall for the grace window while its agent is unseen", (t) => {
  const recent = order("o1", "fulfilled", { agent_id: "agt_gone", updated_at: NOW - 60_000 });
  t.is(plan({ orders: [recent] }).create.length, 1, "the agent is on its way (e.g. after a CP restart)");
  const old = { ...recent, updated_at: NOW - GRACE - 1 };
  t.is(plan({ orders: [old] }).create.length, 2, "past the grace window it no longer counts");
  // A known agent that is not warm (killed: stale) does not hold the replacement back.
  t.is(plan({ orders: [recent], agents: [agent("agt_gone", false)] }).create.length, 2);
  // Nor does one this CP saw and has since forgotten (stale for forget_after_ms).
  t.is(plan({ orders: [recent], seen: new Set(["agt_gone"]) }).create.length, 2);
});

test("reservations: held ones stay, new warm agents fill up to min_warm, others are released", (t) => {
  const agents = [agent("agt_a"), agent("agt_b"), agent("agt_c"), agent("agt_d", false)];
  const reservations = [
    { agent_id: "agt_c", datacenter: DC, node_size: "tiny", created_at: 1 },
    { agent_id: "agt_d", datacenter: DC, node_size: "tiny", created_at: 1 },
    { agent_id: "agt_x", datacenter: "local:z", node_size: "tiny", created_at: 1 },
  ];
  const p = plan({ agents, reservations });
  t.deepEqual(
    p.reserve.map((r) => r.agent_id),
    ["agt_a"],
  );
  t.deepEqual(p.release.sort(), ["agt_d", "agt_x"]);
  t.is(p.create.length, 0);
});

test("a lowered target cancels surplus open orders, newest first, and leaves claimed ones to finish", (t) => {
  const orders = [
    order("o1", "open", { created_at: NOW - 3 }),
    order("o2", "open", { created_at: NOW - 2 }),
    order("o3", "claimed"),
  ];
  const p = plan({ targets: [{ datacenter: DC, node_size: "tiny", min_warm: 1 }], orders });
  t.deepEqual(p.cancel, ["o2", "o1"]);
  t.deepEqual(plan({ targets: [], orders }).cancel, ["o2", "o1"], "no target: every open order goes");
});

test("cost at 10,000 agents", (t) => {
  const agents: PlanAgent[] = [];
  for (let i = 0; i < 10_000; i++)
    agents.push(
      agent(`agt_${i.toString(16).padStart(8, "0")}`, i % 3 !== 0, {
        datacenter: `local:z${i % 10}`,
        node_size: ["tiny", "standard"][i % 2]!,
      }),
    );
  const targets = [];
  for (let z = 0; z < 10; z++)
    for (const size of ["tiny", "standard"])
      targets.push({ datacenter: `local:z${z}`, node_size: size, min_warm: 400 });
  const orders = Array.from({ length: 200 }, (_, i) =>
    order(`o${i}`, "open", { datacenter: `local:z${i % 10}` }),
  );
  planCapacity({ now: NOW, graceMs: GRACE, targets, agents, orders, reservations: [] });
  const runs = 20;
  const started = process.hrtime.bigint();
  let p = planCapacity({ now: NOW, graceMs: GRACE, targets, agents, orders, reservations: [] });
  for (let i = 1; i < runs; i++)
    p = planCapacity({ now: NOW, graceMs: GRACE, targets, agents, orders, reservations: [] });
  const ms = Number(process.hrtime.bigint() - started) / 1e6 / runs;
  t.log(`planCapacity at 10,000 agents, 20 targets, 200 orders: ${ms.toFixed(2)} ms per reconcile`);
  // Zone parity fixes the size (i % 10 and i % 2), so 10 targets hold 1,000 agents (667 warm) and 10 none.
  t.is(p.reserve.length, 10 * 400, "min_warm agents reserved where enough are warm");
  // The orders are all tiny, in every zone: half land on empty targets (odd zones), half are surplus.
  t.is(p.create.length, 10 * 400 - 100, "the empty targets are ordered, minus their open orders");
  t.is(p.cancel.length, 100, "surplus open orders where enough agents are warm");
  t.true(ms < 1000, "a reconcile stays far below its 30 s period");
});
