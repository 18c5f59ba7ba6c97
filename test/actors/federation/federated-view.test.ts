// The master's federated view, pure: each dc's events applied once (a replayed mirror or a republished outbox
// event changes nothing), agents keyed by id with their dc, a dc degraded once its newest state is too old, and a
// deploy command the dc refused shown failed with its code.
import test from "ava";
import type { AgentRecord } from "../../../actors/agent-index.ts";
import { FederatedView } from "../../../actors/federation/federated-view.ts";
import { COMMAND_REFUSED, type UpEvent, type UpHealth } from "../../../actors/federation/messages.ts";

const A1 = `agt_${"1".repeat(24)}`;
const A2 = `agt_${"2".repeat(24)}`;

function agent(id: string, state = "registered"): AgentRecord {
  return {
    agent_id: id,
    vm_name: `vm-${id.slice(-2)}`,
    node_size: "tiny",
    datacenter: "baremetal:local",
    state,
    connected: true,
    registered_at: 1,
    last_heartbeat_at: 1,
    heartbeat_seq: 0,
    deployment_id: null,
    app: null,
    mrtd: null,
    trust_root: "dev",
    attestation_status: "ok",
    attested_at: 1,
    reason: null,
    restored: false,
    rehydrated: false,
  } as AgentRecord;
}

function event(
  seq: number,
  at: number,
  agentId: string,
  rec: AgentRecord | null,
  kind = "agent.registered",
): UpEvent {
  return { type: "event", seq, at, kind, agent_id: agentId, agent: rec, deployment: null, data: {} };
}

const health = (at: number, outbox = 0): UpHealth => ({
  type: "health",
  at,
  outbox_seq: outbox,
  agents: { total: 0, connected: 0, by_state: {} },
});

test("an event is applied once: a replayed stream message and a republished outbox event are skipped", (t) => {
  const v = new FederatedView();
  t.true(v.apply("dc1", 1, event(10, 1000, A1, agent(A1))));
  t.false(v.apply("dc1", 1, event(10, 1000, A1, agent(A1, "stale"))), "same stream sequence");
  t.false(v.apply("dc1", 2, event(10, 1000, A1, agent(A1, "stale"))), "same outbox seq, republished");
  t.is(v.agent(A1)?.state, "registered");
  t.is(v.agent(A1)?.dc_id, "dc1");
  const [d] = v.datacenters(1500, 30_000);
  t.like(d, { dc_id: "dc1", last_seq: 2, outbox_seq: 10, applied: 1, duplicates_skipped: 2 });
  t.is(v.resumeSeq("dc1"), 3);
});

test("a forgotten agent leaves the view; an agent reported by another dc moves there", (t) => {
  const v = new FederatedView();
  v.apply("dc1", 1, event(1, 1000, A1, agent(A1)));
  v.apply("dc1", 2, event(2, 1000, A2, agent(A2)));
  v.apply("dc1", 3, event(3, 1100, A2, null, "agent.forgotten"));
  t.deepEqual(
    [...v.agents()].map((a) => a.agent_id),
    [A1],
  );
  v.apply("dc2", 1, event(1, 1200, A1, agent(A1)));
  t.deepEqual(
    [...v.agents()].map((a) => `${a.dc_id}/${a.agent_id}`),
    [`dc2/${A1}`],
  );
  t.is(v.datacenters(1200, 30_000).find((d) => d.dc_id === "dc1")?.agents.total, 0);
});

test("mixed mode: an agent the master's own dc reports is its direct agent, which no dc re-homes", (t) => {
  const v = new FederatedView({ own: "master" });
  v.apply("dc1", 1, event(1, 1000, A1, agent(A1)));
  // The master's own stream reports it (the agent connected to the master): it moves there, and stays.
  v.apply("master", 1, event(1, 1100, A1, agent(A1)));
  v.apply("dc1", 2, event(2, 1200, A1, agent(A1, "stale")));
  t.like(v.agent(A1), { dc_id: "master", state: "registered" });
  t.deepEqual(
    [...v.agents()].map((a) => `${a.dc_id}/${a.agent_id}`),
    [`master/${A1}`],
    "listed once",
  );
  // Another dc's agent stays the dc's; a view without an own dc re-homes as before.
  v.apply("dc1", 3, event(3, 1300, A2, agent(A2)));
  t.is(v.agent(A2)?.dc_id, "dc1");
  t.deepEqual(
    v.datacenters(1300, 30_000).map((d) => [d.dc_id, d.agents.total]),
    [
      ["dc1", 1],
      ["master", 1],
    ],
  );
});

test("a dc is healthy while its newest state is recent, degraded past the threshold, with lag in seconds", (t) => {
  const v = new FederatedView();
  v.know("dc1");
  t.like(v.datacenters(0, 3_000)[0], { status: "degraded", lag_s: null }, "nothing heard yet");
  v.apply("dc1", 1, health(10_000));
  t.like(v.datacenters(10_500, 3_000)[0], { status: "healthy", lag_s: 0.5 });
  t.like(v.datacenters(13_001, 3_000)[0], { status: "degraded", lag_s: 3 });
  t.true(v.isHealthy("dc1", 13_000, 3_000));
  t.false(v.isHealthy("dc1", 13_001, 3_000));
  // Old summaries applied during a catch-up never move the view back in time.
  v.apply("dc1", 2, health(20_000));
  v.apply("dc1", 3, health(15_000));
  t.like(v.datacenters(20_000, 3_000)[0], { lag_s: 0, last_seq: 3 });
});

test("a deploy command the dc refused shows failed with the dc's code on the master", (t) => {
  const v = new FederatedView();
  v.dispatched({
    deployment_id: "d-1",
    app: "web",
    app_version: null,
    agent_id: A1,
    status: "pending",
    code: null,
    message: null,
    compose_hash: null,
    images: [],
    progress: [{ step: "dispatched", at: 1 }],
    request: { agent_id: A1 },
    created_at: 1,
    updated_at: 1,
    rehydrated: false,
    dc_id: "dc1",
  });
  v.apply("dc1", 1, {
    ...event(5, 2000, A1, agent(A1), COMMAND_REFUSED),
    data: { deployment_id: "d-1", code: "EE-PLACE-NO-AGENT", message: "busy" },
  });
  t.like(v.deployment("d-1"), {
    status: "failed",
    code: "EE-PLACE-NO-AGENT",
    message: "busy",
    updated_at: 2000,
  });
});

test("a dc's summary vouches for the heartbeats of the agents it holds live, not for stale or disconnected ones", (t) => {
  const v = new FederatedView();
  const A3 = `agt_${"3".repeat(24)}`;
  v.apply("dc1", 1, event(1, 1000, A1, agent(A1)));
  v.apply("dc1", 2, event(2, 1000, A2, agent(A2, "stale"), "agent.stale"));
  v.apply("dc1", 3, event(3, 1000, A3, { ...agent(A3), connected: false }));
  t.is(v.agent(A1)?.last_heartbeat_at, 1, "before any summary: as of its last event");
  v.apply("dc1", 4, health(60_000, 3));
  t.is(v.agent(A1)?.last_heartbeat_at, 60_000);
  t.is([...v.agents()].find((a) => a.agent_id === A1)?.last_heartbeat_at, 60_000, "the listing agrees");
  t.is(v.agent(A2)?.last_heartbeat_at, 1, "a stale agent is not vouched for");
  t.is(v.agent(A3)?.last_heartbeat_at, 1, "nor a disconnected one");
});
