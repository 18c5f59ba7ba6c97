// Secrets stay out of logs and REST: a real CP and agent (in-process, their logs captured at trace level as JSON
// lines), a real htpasswd registry behind TLS and Docker. A deployment carries a compose environment secret and
// registry_auth; a second one carries wrong credentials, so the failure paths log too. No log line of either
// program and no REST answer an operator can read (deployments, events, agents, relayed snapshot and stats,
// preflight) holds a secret value.
import test from "ava";
import { createLogger, type Logger } from "../../lib/log.ts";
import { agentConfig, startTestAgent, startTestCp, waitFor } from "../helpers/cluster.ts";
import { requireDocker } from "../helpers/docker.ts";
import { BUSYBOX_IMAGE, busyboxImage } from "../helpers/images.ts";
import { pushImage, registryAvailable, startRegistry } from "../helpers/registry.ts";
import { deploymentIn, postJson } from "../helpers/workloads.ts";

const CREDS = { username: "ee-secret-user", password: "pull-password-3b1f9c" };
const WRONG_PASSWORD = "wrong-password-77ad02";
const ENV_SECRET = "env-secret-value-5e0c4d";
const SECRETS = [CREDS.password, WRONG_PASSWORD, ENV_SECRET];

function capturingLogger(name: string, lines: string[]): Logger {
  return createLogger(name, "trace", { isTTY: false, write: (line: string) => void lines.push(line) });
}

test("a compose env secret and registry_auth never show in the CP's or the agent's log or in any REST answer", async (t) => {
  const docker = await requireDocker(t);
  if (!docker || !registryAvailable(t)) return;
  await busyboxImage(docker);
  const registry = await startRegistry(t, { auth: CREDS });
  const pushed = await pushImage(docker, registry, BUSYBOX_IMAGE, `secret-app-${process.pid}:1.0`);

  const cpLines: string[] = [];
  const agentLines: string[] = [];
  // A generous stale_after: on a loaded machine a missed heartbeat must not take the agent out of placement.
  const { cp, api, devDir } = await startTestCp(t, {
    log: capturingLogger("control-plane", cpLines),
    heartbeatMs: 500,
    staleAfterMs: 15_000,
  });
  const config = agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-secrets" });
  const agent = await startTestAgent(t, config, { log: capturingLogger("agent", agentLines) });
  await waitFor("registration", () => cp.index.get(agent.agentId)?.state === "registered");

  const compose = (image: string) =>
    `services:\n  app:\n    image: ${image}\n    command: ["sleep", "300"]\n    environment:\n      DB_PASSWORD: ${ENV_SECRET}\n`;
  const answers: unknown[] = [];
  const keep = async <T>(p: Promise<{ status: number; body: T }>) => {
    const res = await p;
    answers.push(res.body);
    return res;
  };

  await keep(postJson(api, "/api/v2/preflight", { app: "private", compose: compose(pushed.ref) }));
  const ok = await keep(
    postJson<{ deployment_id: string }>(api, "/api/v2/deployments", {
      app: "private",
      compose: compose(pushed.ref),
      registry_auth: { [registry.host]: CREDS },
    }),
  );
  t.is(ok.status, 202, JSON.stringify(ok.body));
  const healthy = await deploymentIn(api, ok.body.deployment_id, ["healthy", "failed"], 60_000);
  t.is(healthy.status, "healthy", `${healthy.code}: ${healthy.message}`);
  answers.push(healthy);

  // The agent runs one deployment at a time: undeploy, then let wrong credentials fail a pull on it.
  await keep(api(`/api/v2/deployments/${ok.body.deployment_id}/undeploy`, { method: "POST" }));
  await deploymentIn(api, ok.body.deployment_id, ["undeployed", "failed"], 60_000);
  const bad = await keep(
    postJson<{ deployment_id: string }>(api, "/api/v2/deployments", {
      app: "private-wrong",
      compose: compose(pushed.ref),
      registry_auth: { [registry.host]: { username: CREDS.username, password: WRONG_PASSWORD } },
    }),
  );
  t.is(bad.status, 202, JSON.stringify(bad.body));
  const failed = await deploymentIn(api, bad.body.deployment_id, ["failed", "healthy"], 60_000);
  t.is(failed.code, "EE-WORKLOAD-PULL-AUTH");
  answers.push(failed);

  for (const path of [
    "/api/v2/deployments",
    `/api/v2/deployments/${ok.body.deployment_id}`,
    `/api/v2/deployments/${bad.body.deployment_id}`,
    "/api/v2/events?limit=1000",
    "/api/v2/agents",
    `/api/v2/agents/${agent.agentId}`,
    `/api/v2/agents/${agent.agentId}/snapshot`,
    `/api/v2/agents/${agent.agentId}/stats`,
  ]) {
    const res = await keep(api(path));
    t.is(res.status, 200, path);
  }

  t.true(cpLines.length > 10 && agentLines.length > 10, "both programs logged what they did");
  const rest = JSON.stringify(answers);
  for (const secret of SECRETS) {
    t.false(rest.includes(secret), `REST answers hold ${secret}`);
    const cpLeak = cpLines.find((l) => l.includes(secret));
    t.is(cpLeak, undefined, `the CP logged ${secret}`);
    const agentLeak = agentLines.find((l) => l.includes(secret));
    t.is(agentLeak, undefined, `the agent logged ${secret}`);
  }
});
