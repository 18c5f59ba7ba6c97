// The CP attestation envelope end to end: real CPs with (or without) a dev quote over their identity key, real
// agents with cp_envelope policy `required`. Acceptance runs a real workload (Docker); refusals happen before the
// runtime, so they need no engine, and the agent must end up running nothing.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import type { AgentConfig } from "../../agent/config.ts";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import { CP_PIN_FILE } from "../../attestation/cp-envelope.ts";
import { createDevQuoteProvider } from "../../attestation/providers/dev.ts";
import { signedHeaders } from "../../transport/request-signing.ts";
import {
  agentConfig,
  type CpApi,
  devRoot,
  spawnCp,
  startTestAgent,
  startTestCp,
  type TestCp,
  tempDir,
  waitFor,
} from "../helpers/cluster.ts";
import { agentContract } from "../helpers/contract.ts";
import { requireDocker } from "../helpers/docker.ts";
import { busyboxImage } from "../helpers/images.ts";
import { closedPort } from "../helpers/temp.ts";
import { type DeploymentJson, deploymentIn, postJson, WEB_PORT, webCompose } from "../helpers/workloads.ts";

const MRTD_A = "a1".repeat(48);
const MRTD_B = "b2".repeat(48);
// The CP accepts any bind mount (the agent's allowlist decides), the agent refuses it: a deploy that passes the
// envelope check and is then refused by the agent, with nothing run.
const BIND_COMPOSE = 'services:\n  web:\n    image: ee-test/busybox:1\n    volumes: ["/etc:/host-etc"]\n';

async function cpWith(t: ExecutionContext, mrtd: string | null): Promise<TestCp> {
  const devDir = await devRoot();
  return startTestCp(
    t,
    mrtd === null ? {} : { quoteProvider: createDevQuoteProvider({ dir: devDir, mrtd }) },
  );
}

async function agentOn(
  tcp: TestCp,
  t: ExecutionContext,
  cpEnvelope: Partial<AgentConfig["cp_envelope"]>,
  over: Partial<AgentConfig> = {},
) {
  const config = agentConfig(t, tcp.cp.wsUrl, tcp.devDir, {
    cp_envelope: { policy: "required", trusted_mrtds: [], pin_first_seen: false, ...cpEnvelope },
    ...over,
  });
  const agent = await startTestAgent(t, config);
  await waitFor("registration", () => tcp.cp.index.get(agent.agentId)?.state === "registered");
  return { agent, config };
}

async function deployAndSettle(
  api: CpApi,
  body: Record<string, unknown>,
  statuses: string[],
): Promise<DeploymentJson> {
  // Refused placements (409: the agent not registered yet; 503: the CP not ready) create nothing: try again.
  const res = await waitFor("the deployment to be accepted", async () => {
    const r = await postJson<DeploymentJson>(api, "/api/v2/deployments", body);
    if (r.status !== 202 && r.status !== 409 && r.status !== 503)
      throw new Error(`deploy answered ${r.status}: ${JSON.stringify(r.body)}`);
    return r.status === 202 ? r : undefined;
  });
  return deploymentIn(api, res.body.deployment_id, statuses);
}

/** The agent's workload as its signed snapshot read tells it, with the secret the CP issued it. */
async function agentWorkload(tcp: TestCp, agent: { apiUrl: string; agentId: string }): Promise<unknown> {
  const secret = tcp.cp.supervisor.apiSecret(agent.agentId);
  if (!secret) throw new Error("the agent has no API secret: not registered");
  const headers = signedHeaders(secret, "GET", "/api/state-snapshot", new Uint8Array(0));
  const snap = (await (
    await agentContract.fetch(`${agent.apiUrl}/api/state-snapshot`, { headers })
  ).json()) as {
    workload: unknown;
  };
  return snap.workload;
}

test.serial(
  "a CP quoted with a trusted MRTD deploys and undeploys on an agent that requires the envelope",
  async (t) => {
    const docker = await requireDocker(t);
    if (!docker) return t.pass();
    await busyboxImage(docker);
    const tcp = await cpWith(t, MRTD_A);
    const { agent } = await agentOn(tcp, t, { trusted_mrtds: [MRTD_A] });
    const runtime = new DockerRuntime({ docker });
    const body = { app: "web", compose: webCompose(), health: { port: WEB_PORT, path: "/", timeout_s: 20 } };
    const healthy = await deployAndSettle(tcp.api, body, ["healthy", "failed"]);
    t.teardown(() => runtime.remove(healthy.deployment_id));
    t.is(healthy.status, "healthy", `${healthy.code}: ${healthy.message}`);
    t.is(healthy.agent_id, agent.agentId);
    t.is((await (await agentContract.fetch(`${agent.apiUrl}/index.html`)).text()).trim(), "ok");

    const undeploy = await tcp.api(`/api/v2/deployments/${healthy.deployment_id}/undeploy`, {
      method: "POST",
    });
    t.is(undeploy.status, 202);
    const gone = await deploymentIn(tcp.api, healthy.deployment_id, ["undeployed"], 10_000);
    t.is(gone.status, "undeployed");
  },
);

test("an agent that trusts another MRTD refuses the deploy with EE-ENV-MRTD and runs nothing", async (t) => {
  const tcp = await cpWith(t, MRTD_A);
  const { agent } = await agentOn(tcp, t, { trusted_mrtds: [MRTD_B] });
  const failed = await deployAndSettle(tcp.api, { app: "web", compose: webCompose() }, ["healthy", "failed"]);
  t.is(failed.status, "failed");
  t.is(failed.code, "EE-ENV-MRTD", failed.message ?? "");
  t.deepEqual(
    failed.progress.map((p) => p.step),
    ["dispatched", "failed"],
  );
  t.is(await agentWorkload(tcp, agent), null);
  // The agent is free again: the refusal changed nothing there.
  await waitFor(
    "the agent back in registered",
    () => tcp.cp.index.get(agent.agentId)?.state === "registered",
  );
});

test("a CP without a quote provider is refused by an agent that requires the envelope: EE-ENV-QUOTE", async (t) => {
  const tcp = await cpWith(t, null);
  const { agent } = await agentOn(tcp, t, {});
  const failed = await deployAndSettle(tcp.api, { app: "web", compose: webCompose() }, ["healthy", "failed"]);
  t.is(failed.code, "EE-ENV-QUOTE", failed.message ?? "");
  t.is(await agentWorkload(tcp, agent), null);
});

test("an agent that pins the first CP MRTD refuses a second CP with another MRTD: EE-ENV-PIN", async (t) => {
  const first = await cpWith(t, MRTD_A);
  const dataDir = tempDir(t, "ee-agent-pin-");
  const a = await agentOn(first, t, { pin_first_seen: true }, { data_dir: dataDir });
  // Accepted by the envelope check (and pinned), then refused by the agent's bind-mount allowlist.
  const accepted = await deployAndSettle(first.api, { app: "web", compose: BIND_COMPOSE }, [
    "healthy",
    "failed",
  ]);
  t.is(accepted.code, "EE-COMPOSE-BIND-MOUNT", accepted.message ?? "");
  t.is(JSON.parse(readFileSync(join(dataDir, CP_PIN_FILE), "utf8")).mrtd, MRTD_A);
  await a.agent.stop();

  // The same agent (same data dir, so the same pin), now pointed at another CP in a TD with another MRTD.
  const second = await cpWith(t, MRTD_B);
  const b = await agentOn(second, t, { pin_first_seen: true }, { data_dir: dataDir });
  t.is(b.agent.agentId, a.agent.agentId);
  const refused = await deployAndSettle(second.api, { app: "web", compose: BIND_COMPOSE }, [
    "healthy",
    "failed",
  ]);
  t.is(refused.code, "EE-ENV-PIN", refused.message ?? "");
  t.is(JSON.parse(readFileSync(join(dataDir, CP_PIN_FILE), "utf8")).mrtd, MRTD_A);
});

test("eectl control-plane --attestation dev:DIR:MRTD quotes the CP with that MRTD", async (t) => {
  const devDir = await devRoot();
  const cp = await spawnCp(t, {
    port: await closedPort(),
    dataDir: tempDir(t, "ee-cp-"),
    devDir,
    args: ["--attestation", `dev:${devDir}:${MRTD_B}`, "--ready-settle-ms", "1"],
  });
  const config = agentConfig(t, cp.wsUrl, devDir, {
    cp_envelope: { policy: "required", trusted_mrtds: [MRTD_A], pin_first_seen: false },
  });
  await startTestAgent(t, config);
  const failed = await deployAndSettle(cp.api, { app: "web", compose: BIND_COMPOSE }, ["healthy", "failed"]);
  t.is(failed.code, "EE-ENV-MRTD", failed.message ?? "");
  t.true(failed.message?.includes(MRTD_B), failed.message ?? "");
});

test("the CP identity key is created once in the data dir (0600) and survives a restart", async (t) => {
  const dataDir = tempDir(t, "ee-cp-id-");
  const first = await startTestCp(t, { dataDir });
  const key = readFileSync(join(dataDir, "cp-identity.key"), "utf8");
  await first.cp.stop();
  await startTestCp(t, { dataDir });
  t.is(readFileSync(join(dataDir, "cp-identity.key"), "utf8"), key);
  t.is(statSync(join(dataDir, "cp-identity.key")).mode & 0o777, 0o600);
});

test("under a required policy the agent's own HTTP deploy/undeploy need the CP envelope too, not just the HMAC", async (t) => {
  const tcp = await startTestCp(t);
  const config = agentConfig(t, tcp.cp.wsUrl, tcp.devDir, {
    vm_name: "vm-http-env",
    cp_envelope: { policy: "required", trusted_mrtds: [], pin_first_seen: false },
  });
  const agent = await startTestAgent(t, config);
  await waitFor("registered", () => tcp.cp.index.get(agent.agentId)?.state === "registered");
  const secret = tcp.cp.supervisor.apiSecret(agent.agentId)!;
  for (const [path, payload] of [
    ["/api/deploy", { deployment_id: "d-http", app: "x", compose: BIND_COMPOSE }],
    ["/api/undeploy", { deployment_id: "d-http" }],
  ] as const) {
    const body = Buffer.from(JSON.stringify(payload));
    const res = await agentContract.fetch(`${agent.apiUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...signedHeaders(secret, "POST", path, body) },
      body,
    });
    t.is(res.status, 403, path);
    t.is(((await res.json()) as { error: { code: string } }).error.code, "EE-ENV-MISSING", path);
  }
  t.is(await agentWorkload(tcp, agent), null, "nothing was deployed");
});
