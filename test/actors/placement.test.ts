// Placement as a pure function: least loaded first, then a tie-break keyed by the CP secret and the deployment id,
// so an agent cannot steer deployments to itself by grinding a low agent_id; reasons stay as they were.
import { createHash, randomBytes } from "node:crypto";
import test from "ava";
import type { AgentRecord } from "../../actors/agent-index.ts";
import { isWarm, type PlacementOptions, place } from "../../actors/placement.ts";
import { agentRecord } from "../helpers/agent-record.ts";

const NOW = 1_000_000;

const agent = (agent_id: string, over: Partial<AgentRecord> = {}) => agentRecord(agent_id, NOW, over);

/** Ids as agent_id = sha256(pubkey) makes them, plus the one a grinder found. */
const GROUND = `agt_000${"0".repeat(9)}${createHash("sha256").update("ground").digest("hex").slice(16)}`;
const OTHER = agent(`agt_${createHash("sha256").update("other").digest("hex")}`);
const AGENTS = [
  agent(GROUND),
  ...Array.from({ length: 9 }, (_, i) =>
    agent(`agt_${createHash("sha256").update(`pub${i}`).digest("hex")}`),
  ),
];

function opts(
  secret: Uint8Array,
  deploymentId: string,
  over: Partial<PlacementOptions> & { explain?: boolean } = {},
) {
  return { now: NOW, attestationMaxAgeMs: 60_000, secret, deploymentId, ...over };
}

function winners(secret: Uint8Array, agents = AGENTS): Map<string, number> {
  const wins = new Map<string, number>();
  for (let i = 0; i < 1000; i++) {
    const id = place({}, agents, opts(secret, `d-${i.toString(16).padStart(16, "0")}`)).chosen?.agent_id;
    if (id) wins.set(id, (wins.get(id) ?? 0) + 1);
  }
  return wins;
}

test("a ground agt_000… id wins about 1/N of the deployments, not all of them", (t) => {
  const wins = winners(randomBytes(32));
  const n = AGENTS.length;
  t.true((wins.get(GROUND) ?? 0) < (3 * 1000) / n, `ground id won ${wins.get(GROUND)} of 1000`);
  t.is(wins.size, n, "every idle agent wins some");
  for (const [id, w] of wins) t.true(w > 1000 / n / 3, `${id} won only ${w}`);
});

test("the same secret and deployment id give the same winner; another secret another distribution", (t) => {
  const secret = randomBytes(32);
  for (let i = 0; i < 50; i++) {
    const a = place({}, AGENTS, opts(secret, `d-${i}`)).chosen?.agent_id;
    const b = place({}, [...AGENTS].reverse(), opts(Buffer.from(secret), `d-${i}`)).chosen?.agent_id;
    t.is(a, b);
  }
  t.deepEqual(winners(secret), winners(Buffer.from(secret)));
  t.notDeepEqual(winners(secret), winners(randomBytes(32)));
});

test("a less-loaded agent beats a more-loaded one whatever the scores", (t) => {
  const secret = randomBytes(32);
  // The replaced deployment's agent is eligible but runs one deployment; an idle agent wins every time.
  const busy = agent(GROUND, { state: "healthy", deployment_id: "d-old", app: "x" });
  const idle = OTHER;
  for (let i = 0; i < 200; i++) {
    const o = opts(secret, `d-${i}`, { replacingOn: busy.agent_id });
    t.is(place({}, [busy, idle], o).chosen?.agent_id, idle.agent_id);
    t.is(place({}, [idle, busy], o).chosen?.agent_id, idle.agent_id);
  }
  // Alone, the loaded agent still takes it (an update in place names it).
  const o = opts(secret, "d-x", { replacingOn: busy.agent_id });
  t.is(place({ agent_id: busy.agent_id }, [busy], o).chosen?.agent_id, busy.agent_id);
});

test("ineligible agents keep their reasons, and the listing its order", (t) => {
  const agents = [
    agent("agt_c", { node_size: "l" }),
    agent("agt_b", { datacenter: "dc2", connected: false }),
    agent("agt_a", { attestation_status: "failed", state: "healthy", deployment_id: "d-1" }),
    agent("agt_e"),
    agent("agt_d"),
  ];
  const p = place(
    { node_size: "s", datacenter: "dc1" },
    agents,
    opts(randomBytes(32), "d-1", { explain: true }),
  );
  t.is(p.considered, 5);
  t.true(p.chosen?.agent_id === "agt_d" || p.chosen?.agent_id === "agt_e");
  t.deepEqual(
    p.candidates.map((c) => [c.agent_id, c.eligible, c.reasons]),
    [
      ["agt_d", true, []],
      ["agt_e", true, []],
      ["agt_a", false, ["EE-PLACE-NOT-ATTESTED", "EE-PLACE-BUSY"]],
      ["agt_b", false, ["EE-PLACE-DATACENTER", "EE-PLACE-STALE"]],
      ["agt_c", false, ["EE-PLACE-NODE-SIZE"]],
    ],
  );
  t.deepEqual(p.counts, {
    "EE-PLACE-NODE-SIZE": 1,
    "EE-PLACE-DATACENTER": 1,
    "EE-PLACE-STALE": 1,
    "EE-PLACE-NOT-ATTESTED": 1,
    "EE-PLACE-BUSY": 1,
  });
});

test("a drained agent is never chosen and says EE-PLACE-AGENT-DRAINED; the others still are", (t) => {
  const secret = randomBytes(32);
  const drained = new Set(AGENTS.slice(0, 9).map((a) => a.agent_id));
  const o = opts(secret, "d-drained", { explain: true, drained: (id) => drained.has(id) });
  const p = place({}, AGENTS, o);
  t.is(p.chosen?.agent_id, AGENTS[9]!.agent_id);
  t.is(p.counts["EE-PLACE-AGENT-DRAINED"], 9);
  t.deepEqual(p.candidates.find((c) => c.agent_id === AGENTS[0]!.agent_id)?.reasons, [
    "EE-PLACE-AGENT-DRAINED",
  ]);
  // Named explicitly, a drained agent is still refused.
  const named = place({ agent_id: AGENTS[0]!.agent_id }, [AGENTS[0]!], o);
  t.is(named.chosen, null);
  t.deepEqual(named.candidates[0]?.reasons, ["EE-PLACE-AGENT-DRAINED"]);
});

test("a drained agent is not warm, so capacity counts it out like placement does", (t) => {
  const a = AGENTS[0]!;
  t.true(isWarm(a, { now: NOW, attestationMaxAgeMs: 60_000 }));
  t.false(isWarm(a, { now: NOW, attestationMaxAgeMs: 60_000, drained: (id) => id === a.agent_id }));
});
