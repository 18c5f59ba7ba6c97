// Desired state beyond apps and measurements, end to end on real nats-servers and CPs: the master's drains,
// measurement policy and trust roots reach the dc and apply there, and a dc refuses an app version that differs
// from the master's catalog. The master and the dc use different dev roots, so which one the dc trusts shows.
import test from "ava";
import { policySchema } from "../../attestation/policy.ts";
import {
  agentConfig,
  agentState,
  devRoot,
  startTestAgent,
  startTestCp,
  type TestCp,
  waitFor,
} from "../helpers/cluster.ts";
import { agentsOf, dc1Federation, federation } from "../helpers/federation.ts";
import { postJson, SLEEP_COMPOSE } from "../helpers/workloads.ts";

const GOOD = "11".repeat(48);
const OTHER = "22".repeat(48);

type Events = { events: { kind: string; agent_id?: string; data: Record<string, unknown> }[] };
type Candidate = { agent_id: string; reasons: string[] };
const eventsOf = async (cp: TestCp, kind: string) =>
  (await cp.api<Events>(`/api/v2/events?kind=${kind}&limit=1000`)).body.events;
const drainedOn = async (cp: TestCp, id: string) =>
  (await cp.api<{ drained: boolean }>(`/api/v2/agents/${id}`)).body.drained;

test.serial(
  "the master's policy, trust roots and drains apply on the dc; a dc refuses an app version off the master's catalog",
  async (t) => {
    const dcRoot = await devRoot("dc");
    const {
      nats,
      master,
      dc: firstDc,
    } = await federation(t, {
      desired: true,
      // The master admits only GOOD; the dc on its own (dev default) would admit anything its own root signed.
      master: { policy: policySchema.parse({ mrtd: { mode: "strict", allow: { tiny: [GOOD] } } }) },
      dc: { devAttestationDir: dcRoot },
    });
    let dc = firstDc;
    await waitFor("the master's policy and roots applied on the dc", async () =>
      (await eventsOf(dc, "federation.desired_applied")).find(
        (e) => e.data.policy === true && e.data.trust_roots === 1,
      ),
    );
    const onDc = (vm: string, devDir: string, mrtd: string) =>
      startTestAgent(
        t,
        agentConfig(t, dc.cp.wsUrl, devDir, {
          vm_name: vm,
          attestation: { provider: "dev", dir: devDir, mrtd },
        }),
      );
    // Signed by the master's root with an MRTD its policy allows: admitted on the dc.
    const good = await onDc("vm-good", master.devDir, GOOD);
    await waitFor(
      "the good agent registered on the dc",
      () => agentState(dc.cp, good.agentId) === "registered",
      30_000,
    );
    // The dc's own policy would admit OTHER; the master's refuses it.
    const otherMrtd = await onDc("vm-other-mrtd", master.devDir, OTHER);
    // The dc's own root is not one the master lists: untrusted, whatever the MRTD.
    const dcRooted = await onDc("vm-dc-root", dcRoot, GOOD);
    const refusal = async (agentId: string) =>
      (await eventsOf(dc, "agent.rejected")).find((e) => e.agent_id === agentId)?.data.reason;
    t.is(await waitFor("the MRTD refused", () => refusal(otherMrtd.agentId)), "EE-ATT-MRTD-NOT-ALLOWED");
    t.is(
      await waitFor("the dc's own root refused", () => refusal(dcRooted.agentId)),
      "EE-ATT-ROOT-UNTRUSTED",
    );

    // A drain on the master of the dc's agent reaches the dc.
    await waitFor("the agent listed on the master", async () =>
      (await agentsOf(master)).find((a) => a.agent_id === good.agentId),
    );
    const drained = await master.api<{ drained: boolean; dc_id: string }>(
      `/api/v2/agents/${good.agentId}/drain`,
      {
        method: "POST",
      },
    );
    t.is(drained.status, 200);
    t.like(drained.body, { drained: true, dc_id: "dc1" });
    const startedAt = Date.now();
    await waitFor(
      "the drain applied on the dc",
      async () => (await drainedOn(dc, good.agentId)) || undefined,
    );
    t.log(`drain on the master → drained on the dc: ${Date.now() - startedAt} ms`);
    const direct = await postJson<{ error: { code: string; details: { agents: Candidate[] } } }>(
      dc.api,
      "/api/v2/deployments",
      { app: "p", compose: SLEEP_COMPOSE, agent_id: good.agentId },
    );
    t.is(direct.status, 409);
    t.deepEqual(direct.body.error.details.agents[0]?.reasons, ["EE-PLACE-AGENT-DRAINED"]);
    // The master does not send it there either.
    const viaMaster = await postJson<{ error: { code: string; details: { agents: Candidate[] } } }>(
      master.api,
      "/api/v2/deployments",
      { app: "p", compose: SLEEP_COMPOSE, agent_id: good.agentId },
    );
    t.is(viaMaster.status, 409);
    t.deepEqual(viaMaster.body.error.details.agents[0]?.reasons, ["EE-PLACE-AGENT-DRAINED"]);
    // A restarted dc takes the master's drain, policy and roots back from DATA_DIR/fed-desired.json before it
    // serves (the mirror's replay of the same snapshot changes nothing): the good agent, whose root is the
    // master's, registers again, and is still drained.
    await firstDc.cp.stop();
    dc = await startTestCp(t, {
      dataDir: firstDc.dataDir,
      devAttestationDir: dcRoot,
      port: firstDc.cp.port,
      federation: dc1Federation(nats, master),
    });
    await waitFor(
      "the good agent back on the restarted dc",
      () => agentState(dc.cp, good.agentId) === "registered",
      30_000,
    );
    t.true(await drainedOn(dc, good.agentId), "still drained after the dc's restart");
    // The dc cannot lift the master's drain; the master can.
    t.true(
      (await dc.api<{ drained: boolean }>(`/api/v2/agents/${good.agentId}/undrain`, { method: "POST" })).body
        .drained,
    );
    t.is((await master.api(`/api/v2/agents/${good.agentId}/undrain`, { method: "POST" })).status, 200);
    await waitFor(
      "the undrain applied on the dc",
      async () => !(await drainedOn(dc, good.agentId)) || undefined,
    );

    // web@2.0.0 registered on the dc first, then on the master with another compose: the master's catalog wins.
    const ours = `services:\n  app:\n    image: busybox\n    command: ["sleep", "301"]\n`;
    t.is(
      (await postJson(dc.api, "/api/v2/apps", { name: "web", version: "2.0.0", compose: ours })).status,
      201,
    );
    t.is(
      (await postJson(master.api, "/api/v2/apps", { name: "web", version: "2.0.0", compose: SLEEP_COMPOSE }))
        .status,
      201,
    );
    await waitFor("the master's catalog applied on the dc", async () =>
      (await eventsOf(dc, "federation.desired_applied")).find((e) => e.data.apps === 1),
    );
    const deploy = await postJson<{ error: { code: string; details: Record<string, string> } }>(
      dc.api,
      "/api/v2/deployments",
      { app: "web@2.0.0", agent_id: good.agentId },
    );
    t.is(deploy.status, 409);
    t.is(deploy.body.error.code, "EE-CONFLICT-STATE");
    t.regex(deploy.body.error.details.master_compose_hash ?? "", /^[0-9a-f]{64}$/);
    const register = await postJson<{ error: { code: string } }>(dc.api, "/api/v2/apps", {
      name: "web",
      version: "3.0.0",
      compose: ours,
    });
    t.is(register.status, 201, "a version the master does not hold is the dc's to register");
  },
);
