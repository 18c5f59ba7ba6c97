// What the CP tells its operator in the log: an agent registering, going stale, coming back and disconnecting,
// and a deployment's status changes. A real CP with a hand-driven agent; its log captured as JSON lines.
import test from "ava";
import { createLogger } from "../../lib/log.ts";
import { RawAgent, startTestCp, waitFor } from "../helpers/cluster.ts";
import { postJson, SLEEP_COMPOSE } from "../helpers/workloads.ts";

type Line = Record<string, unknown> & { level: number; msg: string };

test("the CP logs agents registering, going stale, coming back and disconnecting, and deployment status changes", async (t) => {
  const lines: Line[] = [];
  const log = createLogger("control-plane", "info", {
    isTTY: false,
    write: (s: string) => void lines.push(JSON.parse(s) as Line),
  });
  const { cp, devDir, api } = await startTestCp(t, { heartbeatMs: 100, staleAfterMs: 1000, log });
  const logged = (msg: string) =>
    waitFor(`log line "${msg}"`, () => lines.find((l) => l.msg.startsWith(msg)), 20_000);

  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir);
  t.like(await logged("agent registered"), {
    level: 30,
    agent_id: raw.agentId,
    vm_name: "raw-1",
    datacenter: "baremetal:local",
    node_size: "tiny",
    rehydrated: false,
  });

  const placed = await postJson<{ deployment_id: string }>(api, "/api/v2/deployments", {
    app: "logged",
    compose: SLEEP_COMPOSE,
    agent_id: raw.agentId,
  });
  t.is(placed.status, 202, JSON.stringify(placed.body));
  const deployment_id = placed.body.deployment_id;
  t.like(await logged("deployment placed"), {
    level: 30,
    deployment_id,
    agent_id: raw.agentId,
    app: "logged",
  });
  raw.send("deploy_status", { deployment_id, step: "preparing", at: Date.now() });
  t.like(await logged("deployment deploying"), { level: 30, deployment_id });
  raw.send("deploy_status", {
    deployment_id,
    step: "failed",
    at: Date.now(),
    code: "EE-WORKLOAD-START-FAILED",
    message: "boom",
  });
  t.like(await logged("deployment failed"), { level: 40, deployment_id, code: "EE-WORKLOAD-START-FAILED" });

  const stale = await logged("agent stale");
  t.like(stale, { level: 40, agent_id: raw.agentId, vm_name: "raw-1" });
  t.regex(String(stale.last_heartbeat_at), /^\d{4}-\d\d-\d\dT/);
  raw.send("heartbeat", { seq: 1, sent_at: Date.now(), workload: null });
  t.like(await logged("agent back"), { level: 30, agent_id: raw.agentId });
  raw.ws.close();
  t.like(await logged("agent disconnected"), { level: 30, agent_id: raw.agentId, vm_name: "raw-1" });
  t.is(lines.filter((l) => l.msg.startsWith("agent registered")).length, 1, "each once");
});
