// Placement as a table: each row is a request and the agents the read model holds, and the answer placement must
// give (the chosen agent and every other agent's EE-PLACE-* reasons, in their fixed order). Pure: no CP runs.
import test from "ava";
import type { AgentRecord } from "../../actors/agent-index.ts";
import { isWarm, place } from "../../actors/placement.ts";
import type { PlacementReason, PlacementRequest } from "../../contract/deployments.ts";
import { agentRecord } from "../helpers/agent-record.ts";

const NOW = 10_000_000;
const MAX_AGE = 60_000;
const SECRET = new Uint8Array(32).fill(7);

const agent = (agent_id: string, over: Partial<AgentRecord> = {}) =>
  agentRecord(agent_id, NOW, { vm_name: `vm-${agent_id}`, node_size: "small", ...over });

interface Row {
  name: string;
  req: PlacementRequest;
  agents: AgentRecord[];
  replacingOn?: string;
  dedicated?: Record<string, string>;
  /** The chosen agent, or null when nothing fits. */
  chosen: string | null;
  /** Reasons per agent; an agent not listed is eligible. */
  reasons: Record<string, PlacementReason[]>;
}

const ROWS: Row[] = [
  { name: "one idle agent takes it", req: {}, agents: [agent("a")], chosen: "a", reasons: {} },
  { name: "no agents: nothing chosen", req: {}, agents: [], chosen: null, reasons: {} },
  {
    name: "node_size and datacenter filter",
    req: { node_size: "large", datacenter: "dc2" },
    agents: [
      agent("a"),
      agent("b", { node_size: "large" }),
      agent("c", { node_size: "large", datacenter: "dc2" }),
    ],
    chosen: "c",
    reasons: { a: ["EE-PLACE-NODE-SIZE", "EE-PLACE-DATACENTER"], b: ["EE-PLACE-DATACENTER"] },
  },
  {
    name: "a named agent excludes every other",
    req: { agent_id: "b" },
    agents: [agent("a"), agent("b")],
    chosen: "b",
    reasons: { a: ["EE-PLACE-NOT-REQUESTED"] },
  },
  {
    name: "stale, disconnected and challenged agents are stale",
    req: {},
    agents: [
      agent("a", { state: "stale" }),
      agent("b", { connected: false }),
      agent("c", { state: "challenged", attested_at: null, attestation_status: "failed" }),
    ],
    chosen: null,
    reasons: { a: ["EE-PLACE-STALE"], b: ["EE-PLACE-STALE"], c: ["EE-PLACE-STALE", "EE-PLACE-NOT-ATTESTED"] },
  },
  {
    name: "a failed, missing or too old attestation does not count",
    req: {},
    agents: [
      agent("a", { attestation_status: "failed" }),
      agent("b", { attested_at: null }),
      agent("c", { attested_at: NOW - MAX_AGE - 1 }),
      agent("d", { attested_at: NOW - MAX_AGE }),
    ],
    chosen: "d",
    reasons: { a: ["EE-PLACE-NOT-ATTESTED"], b: ["EE-PLACE-NOT-ATTESTED"], c: ["EE-PLACE-NOT-ATTESTED"] },
  },
  {
    name: "deploying, healthy or holding a deployment is busy",
    req: {},
    agents: [
      agent("a", { state: "deploying" }),
      agent("b", { state: "healthy" }),
      agent("c", { deployment_id: "dep-1" }),
    ],
    chosen: null,
    reasons: { a: ["EE-PLACE-BUSY"], b: ["EE-PLACE-BUSY"], c: ["EE-PLACE-BUSY"] },
  },
  {
    name: "an update in place: the replaced deployment's agent is not busy",
    req: { agent_id: "b" },
    agents: [agent("a"), agent("b", { state: "healthy", deployment_id: "dep-1" })],
    replacingOn: "b",
    chosen: "b",
    reasons: { a: ["EE-PLACE-NOT-REQUESTED"] },
  },
  {
    name: "the least loaded eligible agent wins",
    req: {},
    agents: [agent("a", { state: "healthy", deployment_id: "dep-1" }), agent("b")],
    replacingOn: "a",
    chosen: "b",
    reasons: {},
  },
  {
    name: "an agent dedicated to another tenant refuses a tenant, not the admin's request",
    req: { tenant: "acc_1" },
    agents: [agent("a"), agent("b")],
    dedicated: { a: "acc_2", b: "acc_1" },
    chosen: "b",
    reasons: { a: ["EE-PLACE-DEDICATED"] },
  },
  {
    name: "the admin (no tenant) is placed on a dedicated agent",
    req: {},
    agents: [agent("a")],
    dedicated: { a: "acc_2" },
    chosen: "a",
    reasons: {},
  },
  {
    name: "every reason at once, in the fixed order",
    req: { agent_id: "z", node_size: "large", datacenter: "dc2", tenant: "acc_1" },
    agents: [agent("a", { state: "stale", attestation_status: "failed", deployment_id: "dep-1" })],
    dedicated: { a: "acc_2" },
    chosen: null,
    reasons: {
      a: [
        "EE-PLACE-NOT-REQUESTED",
        "EE-PLACE-NODE-SIZE",
        "EE-PLACE-DATACENTER",
        "EE-PLACE-STALE",
        "EE-PLACE-NOT-ATTESTED",
        "EE-PLACE-BUSY",
        "EE-PLACE-DEDICATED",
      ],
    },
  },
];

for (const row of ROWS) {
  test(`placement: ${row.name}`, (t) => {
    const placed = place(row.req, row.agents, {
      now: NOW,
      attestationMaxAgeMs: MAX_AGE,
      secret: SECRET,
      deploymentId: "dep-new",
      explain: true,
      ...(row.replacingOn ? { replacingOn: row.replacingOn } : {}),
      ...(row.dedicated ? { dedicatedTo: (id: string) => row.dedicated?.[id] } : {}),
    });
    t.is(placed.chosen?.agent_id ?? null, row.chosen);
    t.is(placed.considered, row.agents.length);
    const reasons = Object.fromEntries(
      placed.candidates.filter((c) => !c.eligible).map((c) => [c.agent_id, c.reasons]),
    );
    t.deepEqual(reasons, row.reasons);
    const counts: Record<string, number> = {};
    for (const rs of Object.values(row.reasons)) for (const r of rs) counts[r] = (counts[r] ?? 0) + 1;
    t.deepEqual(placed.counts, counts);
    // Eligible candidates come first, each group in agent_id order.
    const order = placed.candidates.map((c) => `${c.eligible ? 0 : 1}${c.agent_id}`);
    t.deepEqual(order, [...order].sort());
    // Without explain the same agent is chosen, and no candidates are built.
    const quick = place(row.req, row.agents, {
      now: NOW,
      attestationMaxAgeMs: MAX_AGE,
      secret: SECRET,
      deploymentId: "dep-new",
      ...(row.replacingOn ? { replacingOn: row.replacingOn } : {}),
      ...(row.dedicated ? { dedicatedTo: (id: string) => row.dedicated?.[id] } : {}),
    });
    t.is(quick.chosen?.agent_id ?? null, row.chosen);
    t.deepEqual(quick.candidates, []);
  });
}

test("warm is placeable with no request: idle, live, freshly attested", (t) => {
  const o = { now: NOW, attestationMaxAgeMs: MAX_AGE };
  t.true(isWarm(agent("a"), o));
  t.false(isWarm(agent("a", { state: "stale" }), o));
  t.false(isWarm(agent("a", { deployment_id: "dep-1" }), o));
  t.false(isWarm(agent("a", { attested_at: NOW - MAX_AGE - 1 }), o));
  // A size or datacenter of its own never makes an agent cold.
  t.true(isWarm(agent("a", { node_size: "large", datacenter: "dc9" }), o));
});
