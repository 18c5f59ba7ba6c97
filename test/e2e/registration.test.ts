// End to end on loopback: real CP, real agents (in-process and child processes), real SQLite and WebSockets.
import test from "ava";
import {
  agentConfig,
  agentState,
  RawAgent,
  spawnAgent,
  startTestAgent,
  startTestCp,
  waitFor,
} from "../helpers/cluster.ts";

interface AgentJson {
  agent_id: string;
  vm_name: string;
  state: string;
  last_heartbeat_at: string | null;
  deployment_id: string | null;
  machine?: { value: unknown; context: Record<string, unknown> };
}

test("two agents register within seconds and are listed over REST", async (t) => {
  const { cp, devDir, api } = await startTestCp(t);
  const started = Date.now();
  const [a, b] = await Promise.all([
    startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-a" })),
    startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-b", node_size: "standard" })),
  ]);
  await waitFor(
    "both registered",
    () => agentState(cp, a.agentId) === "registered" && agentState(cp, b.agentId) === "registered",
  );
  t.true(Date.now() - started < 5000);

  const list = await api<{ agents: AgentJson[] }>("/api/v2/agents");
  t.is(list.status, 200);
  t.deepEqual(list.body.agents.map((x) => x.vm_name).sort(), ["vm-a", "vm-b"]);
  for (const x of list.body.agents) {
    t.is(x.state, "registered");
    t.is(x.deployment_id, null);
    t.truthy(x.last_heartbeat_at);
  }
  const one = await api<AgentJson>(`/api/v2/agents/${a.agentId}`);
  t.is(one.status, 200);
  t.is(one.body.agent_id, a.agentId);
  t.is(one.body.machine?.value, "registered");
  t.is((one.body.machine!.context.facts as { vm_name: string }).vm_name, "vm-a");
  t.is(a.state().state, "registered");

  const events = await api<{ events: { kind: string; agent_id: string }[] }>(
    "/api/v2/events?kind=agent.registered",
  );
  t.is(events.body.events.length, 2);
});

test("a killed agent goes stale within stale_after_ms plus one heartbeat, and recovers when it returns", async (t) => {
  const { cp, devDir } = await startTestCp(t, { heartbeatMs: 200, staleAfterMs: 1000 });
  const config = agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-k" });
  const child = spawnAgent(t, config);
  const agentId = await waitFor(
    "child agent registered",
    () => [...cp.index.values()].find((r) => r.vm_name === "vm-k" && r.state === "registered")?.agent_id,
    20_000,
  );
  // Killed once it heartbeats at the CP's cadence, so the bound below is one heartbeat past stale_after_ms.
  await waitFor(
    "heartbeats",
    () => ((cp.index.get(agentId)?.heartbeat_seq ?? 0) >= 2 ? true : undefined),
    10_000,
  );
  const killedAt = Date.now();
  child.kill("SIGKILL");
  await waitFor("stale", () => agentState(cp, agentId) === "stale", 5000);
  const elapsed = Date.now() - killedAt;
  t.true(elapsed <= 1000 + 200 + 150, `stale after ${elapsed} ms`);
  t.is(cp.index.get(agentId)?.reason, "heartbeat timeout");

  // The same data dir means the same key, so the restarted agent comes back as the same agent.
  spawnAgent(t, config);
  await waitFor("back to registered", () => agentState(cp, agentId) === "registered", 20_000);
  t.is(cp.index.size, 1);
});

test("a stale agent that heartbeats again on its connection comes back", async (t) => {
  const { cp, devDir } = await startTestCp(t, { heartbeatMs: 100, staleAfterMs: 300 });
  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir);
  t.is(agentState(cp, raw.agentId), "registered");
  await waitFor("stale", () => agentState(cp, raw.agentId) === "stale");
  raw.send("heartbeat", { seq: 1, sent_at: Date.now(), workload: null });
  const ack = await raw.next("heartbeat_ack");
  t.is(ack.body.seq, 1);
  t.is(agentState(cp, raw.agentId), "registered");
});

test("agents reconnect after a CP restart and keep their agent ids", async (t) => {
  const first = await startTestCp(t);
  const port = first.cp.port;
  const agents = await Promise.all(
    ["vm-r1", "vm-r2"].map((vm) =>
      startTestAgent(t, agentConfig(t, first.cp.wsUrl, first.devDir, { vm_name: vm })),
    ),
  );
  await waitFor("registered", () => agents.every((a) => agentState(first.cp, a.agentId) === "registered"));
  await first.cp.stop();
  await waitFor("agents notice", () => agents.every((a) => a.state().state !== "registered"));

  const second = await startTestCp(t, { port, dataDir: first.dataDir });
  await waitFor(
    "re-registered",
    () => agents.every((a) => agentState(second.cp, a.agentId) === "registered"),
    20_000,
  );
  t.is(second.cp.index.size, 2);
});

test("a second connection of the same agent supersedes the first", async (t) => {
  const { cp, devDir } = await startTestCp(t, { staleAfterMs: 120_000 });
  const one = await RawAgent.connect(t, cp.wsUrl);
  await one.register(devDir);
  const two = await RawAgent.connect(t, cp.wsUrl, one.key);
  await two.register(devDir);
  const closed = await one.closed;
  t.is(closed.code, 4009);
  t.is(closed.reason, "EE-PROTO-SUPERSEDED");
  t.is(cp.index.size, 1);
  t.is(agentState(cp, one.agentId), "registered");
});

test("after heartbeats, agents show reports the agent's liveness as the listing does, from one source", async (t) => {
  const { cp, devDir, api } = await startTestCp(t, { heartbeatMs: 100, staleAfterMs: 2000 });
  const agent = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-live" }));
  const listed = () =>
    api<{ agents: (AgentJson & { registered_at: string; heartbeat_seq?: number })[] }>("/api/v2/agents").then(
      (r) => r.body.agents.find((a) => a.agent_id === agent.agentId),
    );
  // Several heartbeats after the registration, as the listing sees them.
  await waitFor("heartbeats listed", async () => {
    const a = await listed();
    return a?.last_heartbeat_at && Date.parse(a.last_heartbeat_at) - Date.parse(a.registered_at) >= 500
      ? a
      : undefined;
  });
  const show = await api<
    AgentJson & {
      registered_at: string;
      heartbeat_seq: number;
      machine: { context: Record<string, unknown> };
    }
  >(`/api/v2/agents/${agent.agentId}`);
  const after = (await listed())!;
  t.true(show.body.heartbeat_seq >= 2, `heartbeat_seq ${show.body.heartbeat_seq}`);
  t.true(Date.parse(show.body.last_heartbeat_at!) - Date.parse(show.body.registered_at) >= 500);
  // The listing read after the show is the same or newer, never older.
  t.true(Date.parse(after.last_heartbeat_at!) >= Date.parse(show.body.last_heartbeat_at!));
  t.true(after.heartbeat_seq! >= show.body.heartbeat_seq);
  const ctx = show.body.machine.context;
  t.false("lastHeartbeatAt" in ctx, "no second, frozen copy of the heartbeat time in the machine context");
  t.false("heartbeatSeq" in ctx);
  t.is(ctx.registeredAt, show.body.registered_at, "the context's times are ISO 8601 like the rest");
});

test("with only stale_after set, agents follow the CP's heartbeat and stay healthy whatever interval they were configured with", async (t) => {
  // No heartbeatMs: the CP asks for a third of stale_after (1 s); the agent's own guess would be stale 10 times over.
  // Three seconds, not one: the agent runs in this process, and a loaded machine can stall it past a second.
  const { cp, devDir } = await startTestCp(t, { heartbeatMs: undefined, staleAfterMs: 3000 });
  const stale: string[] = [];
  const off = cp.index.onTransition((x) => {
    if (x.to === "stale") stale.push(x.agent_id);
  });
  t.teardown(off);
  const agent = await startTestAgent(
    t,
    agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-follow", heartbeat_interval_ms: 30_000 }),
  );
  await waitFor("registered", () => agent.state().registered);
  t.is(agent.state().heartbeatMs, 1000);
  // Three stale_after windows of heartbeats.
  await waitFor("heartbeats", () => (cp.index.get(agent.agentId)?.heartbeat_seq ?? 0) >= 9, 60_000);
  t.deepEqual(stale, [], "never stale");
  t.is(agentState(cp, agent.agentId), "registered");
});
