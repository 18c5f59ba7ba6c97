// Drills for losing the control plane: the CP runs as a real child process and is SIGKILLed; agents (with real
// containers) keep their workloads and rebuild the CP's runtime state when it comes back, with or without its
// database. Container start times prove nothing was restarted. A wipe takes the runtime database, not the
// business DB (accounts, keys, the audit chain, the ledger) nor the bootstrap files beside it (the identity key
// agents pinned): the deployments come back recognized as the CP's own.
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import Database from "better-sqlite3";
import { DB_FILE } from "../../actors/store/db.ts";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import { eectl } from "../helpers/cli.ts";
import {
  agentConfig,
  type CpProcess,
  devRoot,
  spawnAgent,
  spawnCp,
  startTestAgent,
  tempDir,
  waitFor,
} from "../helpers/cluster.ts";
import { cpContract } from "../helpers/contract.ts";
import { requireDocker } from "../helpers/docker.ts";
import { busyboxImage } from "../helpers/images.ts";
import { closedPort } from "../helpers/temp.ts";
import {
  type DeploymentJson,
  deploymentIn,
  postAs,
  postJson,
  WEB_PORT,
  webCompose,
} from "../helpers/workloads.ts";

interface AgentJson {
  agent_id: string;
  state: string;
  deployment_id: string | null;
  rehydrated: boolean;
}

async function deploy(cp: CpProcess, agentId: string, delayS = 0, timeoutS = 30, token?: string) {
  const res = await cp.api<{ deployment_id: string }>("/api/v2/deployments", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      // A tenant deploys under its own app name (the admin's "web" is not its to take).
      app: token ? "web-tenant" : "web",
      compose: webCompose({ delayS }),
      agent_id: agentId,
      health: { port: WEB_PORT, path: "/", timeout_s: timeoutS },
    }),
    ...(token ? { token } : {}),
  });
  if (res.status !== 202) throw new Error(`deploy: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.deployment_id;
}

function deploymentIs(cp: CpProcess, id: string, status: string, timeoutMs?: number) {
  return deploymentIn(cp.api, id, [status], timeoutMs);
}

/** Waits for GET /readyz to answer 200 and returns its body. */
function ready(cp: CpProcess, timeoutMs: number) {
  return waitFor(
    "ready",
    async () => {
      const r = await cpContract.fetch(`${cp.url}/readyz`);
      return r.status === 200 ? ((await r.json()) as { rule: string }) : undefined;
    },
    timeoutMs,
  );
}

const index = async (cp: CpProcess) =>
  (await cp.api<{ agents: AgentJson[] }>("/api/v2/agents")).body.agents
    .map((a) => ({ agent_id: a.agent_id, state: a.state, deployment_id: a.deployment_id }))
    .sort((a, b) => a.agent_id.localeCompare(b.agent_id));

async function startTimes(runtime: DockerRuntime, ids: string[]) {
  const out: Record<string, (string | null)[]> = {};
  for (const id of ids) out[id] = (await runtime.inspect(id)).map((c) => c.startedAt);
  return out;
}

/** Deletes the CP's database (with its WAL and shared-memory files), keeping its bootstrap files. */
function wipeDatabase(dataDir: string): void {
  for (const f of readdirSync(dataDir))
    if (f.startsWith(DB_FILE)) rmSync(join(dataDir, f), { recursive: true, force: true });
}

/** The agents in the CP's last runtime checkpoint (none before the first), read beside the running CP. */
function checkpointed(dataDir: string): string[] {
  const db = new Database(join(dataDir, DB_FILE), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare("SELECT live_agents FROM runtime_checkpoint WHERE id = 1").get() as
      | { live_agents: string }
      | undefined;
    return row ? (JSON.parse(row.live_agents) as string[]) : [];
  } finally {
    db.close();
  }
}

/** A CP child with three in-process agents, two of them running a healthy deployment. */
async function cluster(t: ExecutionContext) {
  const docker = await requireDocker(t);
  if (!docker) return null;
  await busyboxImage(docker);
  const runtime = new DockerRuntime({ docker });
  const devDir = await devRoot();
  const port = await closedPort();
  const dataDir = tempDir(t, "ee-cp-drill-");
  const args = ["--ready-settle-ms", "500"];
  const cp = await spawnCp(t, { port, dataDir, devDir, args });
  const agents = [];
  for (const vm of ["vm-a", "vm-b", "vm-c"])
    agents.push(await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: vm })));
  await waitFor("three registered agents", async () =>
    (await index(cp)).filter((a) => a.state === "registered").length === 3 ? true : undefined,
  );
  await ready(cp, 10_000);
  const ids = [await deploy(cp, agents[0]!.agentId), await deploy(cp, agents[1]!.agentId)];
  for (const id of ids) t.teardown(() => runtime.remove(id));
  for (const id of ids) await deploymentIs(cp, id, "healthy");
  await waitFor("agents healthy in the index", async () =>
    (await index(cp)).filter((a) => a.state === "healthy").length === 2 ? true : undefined,
  );
  return { cp, port, dataDir, devDir, args, agents, ids, runtime };
}

test.serial(
  "DB wipe: SIGKILL the CP, delete its runtime DB, restart on the same port — everything is back, nothing restarted, accounts and keys intact",
  async (t) => {
    const c = await cluster(t);
    if (!c) return;
    const tenant = await tenantWithKey(c.cp);
    const app = await postJson(c.cp.api, "/api/v2/apps", {
      name: "kept",
      version: "1.0.0",
      compose: webCompose(),
    });
    t.is(app.status, 201);
    const deposit = await postJson(c.cp.api, `/api/v2/accounts/${tenant.accountId}/deposits`, {
      amount_micros: 5_000_000,
      idempotency_key: "drill-1",
    });
    t.is(deposit.status, 201);
    const before = await index(c.cp);
    const started = await startTimes(c.runtime, c.ids);
    await c.cp.kill();
    wipeDatabase(c.dataDir);

    const t0 = Date.now();
    // A settle window long enough that the not-ready answer below is about the wipe, not about how soon a loaded
    // machine gets to ask: a wiped CP knows no agents to wait for, so only the window holds it not ready.
    const args = ["--ready-settle-ms", "8000"];
    const cp = await spawnCp(t, { port: c.port, dataDir: c.dataDir, devDir: c.devDir, args });
    const notReady = await cpContract.fetch(`${cp.url}/readyz`);
    t.is(notReady.status, 503, "not ready before the agents are back");
    const refused = await postJson<{ error: { code: string } }>(cp.api, "/api/v2/preflight", {
      app: "x",
      compose: webCompose(),
    });
    t.is(refused.body.error.code, "EE-NOT-READY");
    await ready(cp, 30_000);
    await waitFor("the same runtime index", async () =>
      JSON.stringify(await index(cp)) === JSON.stringify(before) ? true : undefined,
    );
    const rehydrateMs = Date.now() - t0;
    t.log(
      `rehydrated ${before.length} agents and ${c.ids.length} workloads in ${rehydrateMs} ms (readiness included)`,
    );

    const agents = (await cp.api<{ agents: AgentJson[] }>("/api/v2/agents")).body.agents;
    t.true(
      agents.filter((a) => a.deployment_id).every((a) => a.rehydrated),
      "agents with workloads are marked",
    );
    for (const id of c.ids) {
      const d = await cp.api<DeploymentJson>(`/api/v2/deployments/${id}`);
      t.is(d.status, 200, `the deployment record ${id} is recreated`);
      t.is(d.body.status, "healthy");
      t.true(d.body.rehydrated);
      t.false(d.body.unrecognized, "signed by this CP's key, which the wipe kept: its own");
    }
    t.true(existsSync(join(c.dataDir, "cp-identity.key")), "the identity key survived the wipe");
    t.deepEqual(await startTimes(c.runtime, c.ids), started, "no container was restarted");

    t.is((await cp.api("/api/v2/apps/kept@1.0.0")).status, 200, "registered apps are business state too");
    // So is the ledger (business.db): the tenant's balance and the journal behind it are intact.
    const balance = await cp.api<{ balance_micros: number }>(`/api/v2/accounts/${tenant.accountId}/balance`, {
      token: tenant.token,
    });
    t.is(balance.body.balance_micros, 5_000_000, "the ledger survived the wipe");
    t.deepEqual((await cp.api("/api/v2/billing/verify")).body, { ok: true, journals: 1 });
    // Accounts and keys came through: the tenant's key still works, and deploys on the rebuilt runtime.
    const keys = await cp.api<{ keys: { key_id: string }[] }>(`/api/v2/accounts/${tenant.accountId}/keys`, {
      token: tenant.token,
    });
    t.is(keys.status, 200);
    t.deepEqual(
      keys.body.keys.map((k) => k.key_id),
      [tenant.keyId],
    );
    const fresh = await deploy(cp, c.agents[2]!.agentId, 0, 30, tenant.token);
    t.teardown(() => c.runtime.remove(fresh));
    await deploymentIn(cp.api, fresh, ["healthy"]);
    const mine = await cp.api<{ deployments: { deployment_id: string }[] }>("/api/v2/deployments", {
      token: tenant.token,
    });
    t.deepEqual(
      mine.body.deployments.map((d) => d.deployment_id),
      [fresh],
      "the tenant sees its own deployment only",
    );
    await cp.kill();
    const verify = await eectl(["audit", "verify", "--data-dir", c.dataDir, "--json"]);
    t.is(verify.code, 0, verify.stdout);
    t.true(
      (JSON.parse(verify.stdout) as { ok: boolean; records: number }).records >= 3,
      "the chain verifies",
    );
  },
);

/** A tenant account with a deploy+read key, made by the admin before the wipe. */
async function tenantWithKey(cp: CpProcess) {
  const acc = await postAs<{ account_id: string }>(cp.api, "/api/v2/accounts", {
    name: "drill-tenant",
    kind: "tenant",
  });
  const key = await postAs<{ key_id: string; token: string }>(
    cp.api,
    `/api/v2/accounts/${acc.body.account_id}/keys`,
    {
      scopes: ["deploy", "read"],
    },
  );
  return { accountId: acc.body.account_id, keyId: key.body.key_id, token: key.body.token };
}

test.serial(
  "CP restart with its database intact: quorum readiness, the same index, deployments resumed",
  async (t) => {
    const c = await cluster(t);
    if (!c) return;
    const before = await index(c.cp);
    const started = await startTimes(c.runtime, c.ids);
    // Let a checkpoint of the live agents land before the crash.
    await waitFor(
      "a checkpoint of the three live agents",
      () => (c.agents.every((a) => checkpointed(c.dataDir).includes(a.agentId)) ? true : undefined),
      20_000,
    );
    await c.cp.kill();
    const cp = await spawnCp(t, { port: c.port, dataDir: c.dataDir, devDir: c.devDir, args: c.args });
    t.is((await ready(cp, 20_000)).rule, "quorum");
    await waitFor("the same runtime index", async () =>
      JSON.stringify(await index(cp)) === JSON.stringify(before) ? true : undefined,
    );
    for (const id of c.ids) {
      const d = await cp.api<DeploymentJson>(`/api/v2/deployments/${id}`);
      t.is(d.body.status, "healthy");
      t.false(d.body.rehydrated, "the record survived; nothing to rehydrate");
    }
    t.deepEqual(await startTimes(c.runtime, c.ids), started);
  },
);

test.serial(
  "kill the CP mid-deploy: the deployment ends healthy once the CP is back, with or without its database",
  async (t) => {
    const c = await cluster(t);
    if (!c) return;
    // Undeploy one of the two so an agent is free for the slow deploy.
    await c.cp.api(`/api/v2/deployments/${c.ids[0]}/undeploy`, { method: "POST" });
    await deploymentIs(c.cp, c.ids[0]!, "undeployed");
    const slow = await deploy(c.cp, c.agents[0]!.agentId, 3);
    t.teardown(() => c.runtime.remove(slow));
    await deploymentIs(c.cp, slow, "deploying", 10_000);
    await c.cp.kill();
    wipeDatabase(c.dataDir);
    const cp = await spawnCp(t, { port: c.port, dataDir: c.dataDir, devDir: c.devDir, args: c.args });
    const d = await deploymentIs(cp, slow, "healthy", 30_000);
    t.is(d.agent_id, c.agents[0]!.agentId);
    t.true(d.rehydrated);
    t.false(d.unrecognized);
  },
);

/** A CP child and one agent child (so it can be SIGKILLed) running a healthy deployment. */
async function agentChildWithWorkload(t: ExecutionContext, vm: string) {
  const docker = await requireDocker(t);
  if (!docker) return null;
  await busyboxImage(docker);
  const runtime = new DockerRuntime({ docker });
  const devDir = await devRoot();
  const cp = await spawnCp(t, { port: await closedPort(), dataDir: tempDir(t, "ee-cp-drill-"), devDir });
  const config = agentConfig(t, cp.wsUrl, devDir, { vm_name: vm });
  const child = spawnAgent(t, config);
  const agentId = await waitFor(
    "registration",
    async () => (await index(cp)).find((a) => a.state === "registered")?.agent_id,
    20_000,
  );
  await ready(cp, 20_000);
  const id = await deploy(cp, agentId);
  t.teardown(() => runtime.remove(id));
  await deploymentIs(cp, id, "healthy");
  return { docker, runtime, cp, config, child, agentId, id };
}

test.serial(
  "agent restart: SIGKILL the agent, start it again — its workload is re-adopted, not restarted",
  async (t) => {
    const s = await agentChildWithWorkload(t, "vm-restart");
    if (!s) return;
    const started = await startTimes(s.runtime, [s.id]);
    s.child.kill("SIGKILL");
    spawnAgent(t, s.config);
    await waitFor(
      "the agent back and healthy",
      async () => {
        const a = (await index(s.cp)).find((x) => x.agent_id === s.agentId);
        return a?.state === "healthy" && a.deployment_id === s.id ? true : undefined;
      },
      30_000,
    );
    t.deepEqual(await startTimes(s.runtime, [s.id]), started, "re-adopted, not restarted");
    t.is((await s.cp.api<DeploymentJson>(`/api/v2/deployments/${s.id}`)).body.status, "healthy");
  },
);

test.serial(
  "agent restart mid-update: the old deployment is re-adopted still serving, the new one is removed and ends failed",
  async (t) => {
    const s = await agentChildWithWorkload(t, "vm-mid-update");
    if (!s) return;
    const started = await startTimes(s.runtime, [s.id]);
    // The new one serves only after 60 s: the restart finds it gating.
    const res = await postJson<{ deployment_id: string }>(s.cp.api, "/api/v2/deployments", {
      app: "web",
      compose: webCompose({ delayS: 60, text: "v2" }),
      health: { port: WEB_PORT, path: "/", timeout_s: 120 },
      replaces: s.id,
    });
    t.is(res.status, 202, JSON.stringify(res.body));
    const newId = res.body.deployment_id;
    t.teardown(() => s.runtime.remove(newId));
    await waitFor(
      "the new one gating",
      async () => {
        const r = await s.cp.api<DeploymentJson>(`/api/v2/deployments/${newId}`);
        return r.body.progress?.some((p) => p.step === "gating") ? true : undefined;
      },
      30_000,
    );
    s.child.kill("SIGKILL");
    spawnAgent(t, s.config);
    const failed = await deploymentIs(s.cp, newId, "failed", 30_000);
    t.is(failed.code, "EE-WORKLOAD-AGENT-LOST");
    // Failed by the CP as soon as the agent is stale or back without it; the restarted agent removes its orphans.
    await waitFor(
      "the new one's containers removed as orphans",
      async () => ((await s.runtime.inspect(newId)).length === 0 ? true : undefined),
      30_000,
    );
    await waitFor(
      "the agent back and healthy with the old one",
      async () => {
        const a = (await index(s.cp)).find((x) => x.agent_id === s.agentId);
        return a?.state === "healthy" && a.deployment_id === s.id ? true : undefined;
      },
      30_000,
    );
    const old = await deploymentIs(s.cp, s.id, "healthy");
    t.is(old.replaced_by, null);
    t.deepEqual(await startTimes(s.runtime, [s.id]), started, "the old one re-adopted, not restarted");
  },
);

test.serial(
  "a workload that died while its agent was down is reported failed with the agent's reason",
  async (t) => {
    const s = await agentChildWithWorkload(t, "vm-died");
    if (!s) return;
    s.child.kill("SIGKILL");
    for (const c of await s.runtime.inspect(s.id)) await s.docker.getContainer(c.id).kill();
    spawnAgent(t, s.config);
    const failed = await deploymentIs(s.cp, s.id, "failed", 30_000);
    t.is(failed.code, "EE-WORKLOAD-EXITED");
    await waitFor(
      "nothing left",
      async () => ((await s.runtime.inspect(s.id)).length === 0 ? true : undefined),
      20_000,
    );
    await waitFor("the agent free", async () => {
      const a = (await index(s.cp)).find((x) => x.agent_id === s.agentId);
      return a?.state === "registered" ? true : undefined;
    });
  },
);
