// Federation end to end on real nats-servers (a hub and a leaf from `eectl nats config`), a master and a dc CP
// and real agents (dev attestation): a dc's agent shows on the master with its dc_id, a deploy sent to the master
// runs behind the dc (Docker) and turns healthy in the master's view, and through a hub outage the dc keeps
// serving while the master marks it degraded, then catches up without duplicates.
import test, { type ExecutionContext } from "ava";
import type { ControlPlaneOptions } from "../../actors/control-plane.ts";
import { agentConfig, startTestAgent, startTestCp, type TestCp, waitFor } from "../helpers/cluster.ts";
import { requireDocker } from "../helpers/docker.ts";
import { busyboxImage } from "../helpers/images.ts";
import { type NatsServer, startNatsFederation, waitLeafLinked } from "../helpers/nats.ts";
import { deploymentIn, postJson, WEB_PORT, webCompose } from "../helpers/workloads.ts";

interface AgentJson {
  agent_id: string;
  state: string;
  dc_id?: string;
}
interface DcJson {
  dc_id: string;
  status: string;
  lag_s: number | null;
  last_seq: number;
  outbox_seq: number;
  duplicates_skipped: number;
  agents: { total: number };
}

function natsOf(server: NatsServer): NonNullable<ControlPlaneOptions["federation"]>["nats"] {
  return { url: server.url, credsFile: server.credsFile };
}

async function federation(t: ExecutionContext, o: { degradedAfterMs?: number } = {}) {
  const nats = await startNatsFederation(t, ["dc1"]);
  const master = await startTestCp(t, {
    federation: { role: "master", nats: natsOf(nats.hub), degradedAfterMs: o.degradedAfterMs ?? 4_000 },
  });
  const dc = await startTestCp(t, {
    federation: { role: "dc", dcId: "dc1", nats: natsOf(nats.leaves.get("dc1")!), summaryMs: 500 },
  });
  return { nats, master, dc };
}

const agentsOf = async (cp: TestCp) => (await cp.api<{ agents: AgentJson[] }>("/api/v2/agents")).body.agents;
const dcsOf = async (cp: TestCp) =>
  (await cp.api<{ datacenters: DcJson[] }>("/api/v2/datacenters")).body.datacenters;

test.serial(
  "a dc's agents show on the master with their dc_id, direct agents with dc_id master",
  async (t) => {
    const { master, dc } = await federation(t);
    const behind = await startTestAgent(t, agentConfig(t, dc.cp.wsUrl, dc.devDir, { vm_name: "vm-dc1" }));
    const direct = await startTestAgent(
      t,
      agentConfig(t, master.cp.wsUrl, master.devDir, { vm_name: "vm-direct" }),
    );
    const started = Date.now();
    const seen = await waitFor(
      "the dc's agent on the master",
      async () => {
        const agents = await agentsOf(master);
        const a = agents.find((x) => x.agent_id === behind.agentId);
        return a?.state === "registered" ? agents : undefined;
      },
      30_000,
    );
    t.log(`registration on the dc → listed on the master: ${Date.now() - started} ms`);
    t.is(seen.find((a) => a.agent_id === behind.agentId)?.dc_id, "dc1");
    await waitFor("the direct agent", async () =>
      (await agentsOf(master)).find((a) => a.agent_id === direct.agentId && a.state === "registered"),
    );
    t.is((await agentsOf(master)).find((a) => a.agent_id === direct.agentId)?.dc_id, "master");
    t.is((await agentsOf(dc)).find((a) => a.agent_id === behind.agentId)?.dc_id, "dc1");
    const [d] = await dcsOf(master);
    t.is(d?.dc_id, "dc1");
    t.is(d?.status, "healthy");
    t.is(d?.agents.total, 1);
    t.deepEqual(await dcsOf(dc), [], "a dc CP has no datacenters of its own");
  },
);
