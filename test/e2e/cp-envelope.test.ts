// The CP attestation envelope end to end: real CPs with (or without) a dev quote over their identity key, real
// agents with cp_envelope policy `required` or the default `signed`, which pin the key of the CP they first
// register with. Acceptance runs a real workload (Docker); refusals happen before the runtime, so they need no
// engine, and the agent must end up running nothing. A deployment made on an agent past the CP is flagged by the CP.
import { createPublicKey } from "node:crypto";
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import type { AgentConfig } from "../../agent/config.ts";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import { rawPublicKey } from "../../attestation/agent-key.ts";
import { CP_KEY_PIN_FILE, CP_PIN_FILE } from "../../attestation/cp-envelope.ts";
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
    if (!docker) return;
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
  // The operator moves the agent to another CP: its key pin goes (see the next test), its MRTD pin stays.
  rmSync(join(dataDir, CP_KEY_PIN_FILE));

  // The same agent (same data dir, so the same MRTD pin), now pointed at another CP in a TD with another MRTD.
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

test("by default the agent's own HTTP deploy/undeploy need the CP envelope, not just the session's HMAC", async (t) => {
  const tcp = await startTestCp(t);
  const config = agentConfig(t, tcp.cp.wsUrl, tcp.devDir, { vm_name: "vm-http-env" });
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

/** The raw Ed25519 public key of a CP's identity key file, as hex. */
function cpKeyOf(tcp: TestCp): string {
  const pem = readFileSync(join(tcp.dataDir, "cp-identity.key"), "utf8");
  return Buffer.from(rawPublicKey(createPublicKey(pem))).toString("hex");
}

test("by default an agent pins the key of the CP it first registers with and refuses another CP's: EE-ENV-KEY", async (t) => {
  const first = await startTestCp(t);
  const dataDir = tempDir(t, "ee-agent-keypin-");
  const config = (tcp: TestCp) =>
    agentConfig(t, tcp.cp.wsUrl, tcp.devDir, { vm_name: "vm-keypin", data_dir: dataDir });
  const a = await startTestAgent(t, config(first));
  await waitFor("registered", () => first.cp.index.get(a.agentId)?.state === "registered");
  const pin = join(dataDir, CP_KEY_PIN_FILE);
  // The CP counts the agent registered as it sends `registered`; the agent pins on receiving it.
  await waitFor("the key pinned", () => existsSync(pin));
  t.is(JSON.parse(readFileSync(pin, "utf8")).cp_pubkey, cpKeyOf(first));
  t.is(statSync(pin).mode & 0o777, 0o600);
  // Accepted by the envelope check (the first CP is the pinned one), then refused by the bind-mount allowlist.
  const accepted = await deployAndSettle(first.api, { app: "web", compose: BIND_COMPOSE }, [
    "healthy",
    "failed",
  ]);
  t.is(accepted.code, "EE-COMPOSE-BIND-MOUNT", accepted.message ?? "");
  await a.stop();

  // A second CP (its own data dir, so its own identity key): the agent registers, but takes no command from it.
  const second = await startTestCp(t, { devAttestationDir: first.devDir });
  t.not(cpKeyOf(second), cpKeyOf(first));
  const b = await startTestAgent(t, config(second));
  await waitFor(
    "registered with the second CP",
    () => second.cp.index.get(b.agentId)?.state === "registered",
  );
  const refused = await deployAndSettle(second.api, { app: "web", compose: BIND_COMPOSE }, [
    "healthy",
    "failed",
  ]);
  t.is(refused.code, "EE-ENV-KEY", refused.message ?? "");
  t.true(refused.message?.includes(cpKeyOf(first)), "the refusal names the pinned key");
  t.is(JSON.parse(readFileSync(pin, "utf8")).cp_pubkey, cpKeyOf(first), "the pin is unchanged");
  await b.stop();

  // Re-pinning is the operator's act: remove the pin file and restart the agent; it pins the CP it registers with.
  rmSync(pin);
  const c = await startTestAgent(t, config(second));
  await waitFor("registered again", () => second.cp.index.get(c.agentId)?.state === "registered");
  await waitFor("the key pinned again", () => existsSync(pin));
  t.is(JSON.parse(readFileSync(pin, "utf8")).cp_pubkey, cpKeyOf(second));
  const repinned = await deployAndSettle(second.api, { app: "web", compose: BIND_COMPOSE }, [
    "healthy",
    "failed",
  ]);
  t.is(repinned.code, "EE-COMPOSE-BIND-MOUNT", repinned.message ?? "");
});

test.serial(
  "a deployment made on the agent past the CP is flagged unrecognized and audited, not adopted as the CP's own",
  async (t) => {
    const docker = await requireDocker(t);
    if (!docker) return;
    await busyboxImage(docker);
    const tcp = await startTestCp(t);
    // Only an agent whose envelope check is off takes a write with the session's HMAC alone.
    const config = agentConfig(t, tcp.cp.wsUrl, tcp.devDir, {
      vm_name: "vm-foreign",
      cp_envelope: { policy: "disabled", trusted_mrtds: [], pin_first_seen: false },
    });
    const agent = await startTestAgent(t, config);
    await waitFor("registered", () => tcp.cp.index.get(agent.agentId)?.state === "registered");
    const secret = tcp.cp.supervisor.apiSecret(agent.agentId)!;
    const id = "d-foreign-0001";
    const runtime = new DockerRuntime({ docker });
    t.teardown(() => runtime.remove(id));
    const body = Buffer.from(
      JSON.stringify({
        deployment_id: id,
        app: "sideload",
        compose: webCompose(),
        health: { port: WEB_PORT },
      }),
    );
    const res = await agentContract.fetch(`${agent.apiUrl}/api/deploy`, {
      method: "POST",
      headers: { "content-type": "application/json", ...signedHeaders(secret, "POST", "/api/deploy", body) },
      body,
    });
    t.is(res.status, 202, await res.clone().text());

    const flagged = await deploymentIn(tcp.api, id, ["deploying", "healthy"], 30_000);
    t.true(flagged.unrecognized);
    t.is(flagged.agent_id, agent.agentId);
    t.is(flagged.progress[0]?.step, "unrecognized");
    const events = await tcp.api<{
      events: { kind: string; agent_id: string; data: Record<string, unknown> }[];
    }>("/api/v2/events?kind=deployment.unrecognized");
    const audit = events.body.events.find((e) => e.data.deployment_id === id);
    t.is(audit?.agent_id, agent.agentId);
    t.regex(String(audit?.data.reason), /no CP envelope/);
    const created = await tcp.api<{ events: unknown[] }>("/api/v2/events?kind=deployment.created");
    t.deepEqual(created.body.events, [], "the CP created nothing");
    const rehydrated = await tcp.api<{ events: unknown[] }>("/api/v2/events?kind=deployment.rehydrated");
    t.deepEqual(rehydrated.body.events, [], "nor took it as one of its own");

    // The operator removes it through the CP, whose signed undeploy the agent takes.
    const undeploy = await tcp.api(`/api/v2/deployments/${id}/undeploy`, { method: "POST" });
    t.is(undeploy.status, 202);
    t.is((await deploymentIn(tcp.api, id, ["undeployed"], 30_000)).status, "undeployed");
  },
);
