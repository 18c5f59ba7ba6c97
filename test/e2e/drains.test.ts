// Drains on a standalone CP, end to end: a real CP, real agents (dev attestation) and a real container. A drained
// agent keeps its workload and gets nothing new (EE-PLACE-AGENT-DRAINED in preflight and in the deploy's 409);
// the drain shows in the agent JSON, is an event, survives a CP restart, and undrain puts the agent back.
import test from "ava";
import { agentConfig, startTestAgent, startTestCp, type TestCp, waitFor } from "../helpers/cluster.ts";
import { requireDocker } from "../helpers/docker.ts";
import { busyboxImage } from "../helpers/images.ts";
import { type DeploymentJson, deploymentIn, postJson, SLEEP_COMPOSE } from "../helpers/workloads.ts";

interface AgentJson {
  agent_id: string;
  drained: boolean;
}
type Candidate = { agent_id: string; reasons: string[] };

const post = (tcp: TestCp, path: string) => tcp.api<AgentJson>(path, { method: "POST" });
const drainedOf = async (tcp: TestCp, id: string) => {
  const one = (await tcp.api<AgentJson>(`/api/v2/agents/${id}`)).body.drained;
  const listed = (await tcp.api<{ agents: AgentJson[] }>("/api/v2/agents")).body.agents.find(
    (a) => a.agent_id === id,
  )?.drained;
  return { one, listed };
};

test("a drained agent keeps its workload, gets no new one, stays drained across a restart; undrain puts it back", async (t) => {
  const docker = await requireDocker(t);
  if (!docker) return t.pass();
  await busyboxImage(docker);
  const tcp = await startTestCp(t);
  const busy = await startTestAgent(t, agentConfig(t, tcp.cp.wsUrl, tcp.devDir, { vm_name: "vm-busy" }));
  const idle = await startTestAgent(t, agentConfig(t, tcp.cp.wsUrl, tcp.devDir, { vm_name: "vm-idle" }));
  for (const a of [busy, idle])
    await waitFor("registration", () => tcp.cp.index.get(a.agentId)?.state === "registered");
  const created = await postJson<{ deployment_id: string }>(tcp.api, "/api/v2/deployments", {
    app: "sleeper",
    compose: SLEEP_COMPOSE,
    agent_id: busy.agentId,
  });
  t.is(created.status, 202);
  const id = created.body.deployment_id;
  await deploymentIn(tcp.api, id, ["healthy"], 60_000);

  t.deepEqual(await drainedOf(tcp, idle.agentId), { one: false, listed: false });
  for (const a of [busy, idle]) {
    const r = await post(tcp, `/api/v2/agents/${a.agentId}/drain`);
    t.is(r.status, 200);
    t.like(r.body, { agent_id: a.agentId, drained: true });
  }
  t.is((await post(tcp, `/api/v2/agents/${idle.agentId}/drain`)).status, 200, "idempotent");
  t.deepEqual(await drainedOf(tcp, idle.agentId), { one: true, listed: true });
  t.is((await post(tcp, "/api/v2/agents/agt_000000000000000000000000/drain")).status, 404);

  // Nothing new anywhere: preflight says why, a deploy is a 409 with the same reasons.
  const pre = await postJson<{ ok: boolean; placement: { candidates: Candidate[] } }>(
    tcp.api,
    "/api/v2/preflight",
    {
      app: "p",
      compose: SLEEP_COMPOSE,
    },
  );
  t.false(pre.body.ok);
  t.deepEqual(pre.body.placement.candidates.find((c) => c.agent_id === idle.agentId)?.reasons, [
    "EE-PLACE-AGENT-DRAINED",
  ]);
  const refused = await postJson<{ error: { code: string; details: { agents: Candidate[] } } }>(
    tcp.api,
    "/api/v2/deployments",
    { app: "p", compose: SLEEP_COMPOSE, agent_id: idle.agentId },
  );
  t.is(refused.status, 409);
  t.is(refused.body.error.code, "EE-PLACE-NO-AGENT");
  t.deepEqual(refused.body.error.details.agents[0]?.reasons, ["EE-PLACE-AGENT-DRAINED"]);
  // The running workload is left alone.
  t.is((await tcp.api<DeploymentJson>(`/api/v2/deployments/${id}`)).body.status, "healthy");
  const { events } = (
    await tcp.api<{ events: { data: { agent_id: string } }[] }>("/api/v2/events?kind=agent.drained")
  ).body;
  t.deepEqual(events.map((e) => e.data.agent_id).sort(), [busy.agentId, idle.agentId].sort());

  // A restart keeps the drains (runtime store); the agents reconnect drained.
  await tcp.cp.stop();
  const again = await startTestCp(t, {
    dataDir: tcp.dataDir,
    devAttestationDir: tcp.devDir,
    port: tcp.cp.port,
  });
  await waitFor(
    "the idle agent back",
    () => again.cp.index.get(idle.agentId)?.state === "registered",
    30_000,
  );
  t.deepEqual(await drainedOf(again, idle.agentId), { one: true, listed: true });
  const undrained = await post(again, `/api/v2/agents/${idle.agentId}/undrain`);
  t.is(undrained.status, 200);
  t.false(undrained.body.drained);
  const preAfter = await postJson<{ ok: boolean; placement: { chosen: { agent_id: string } | null } }>(
    again.api,
    "/api/v2/preflight",
    { app: "p", compose: SLEEP_COMPOSE },
  );
  t.is(preAfter.body.placement.chosen?.agent_id, idle.agentId, "placement chooses it again");
});
