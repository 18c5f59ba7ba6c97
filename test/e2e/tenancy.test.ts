// Identity and tenancy as a new user meets it: the admin creates two tenants with keys, tenant A deploys a real
// workload and tenant B can neither see nor touch it, a key without `deploy` gets 403, a revoked key 401, every
// change and refusal lands on the audit chain, and editing one stored record makes `eectl audit verify` fail
// naming it. A real CP, a real agent, real containers; every REST exchange is held to the OpenAPI document.
import { join } from "node:path";
import test from "ava";
import Database from "better-sqlite3";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import { eectl } from "../helpers/cli.ts";
import { agentConfig, type CpApi, startTestAgent, startTestCp, waitFor } from "../helpers/cluster.ts";
import { cpContract } from "../helpers/contract.ts";
import { requireDocker } from "../helpers/docker.ts";
import { busyboxImage } from "../helpers/images.ts";
import { type DeploymentJson, deploymentIn, postAs, WEB_PORT, webCompose } from "../helpers/workloads.ts";

interface Err {
  error: { code: string; message: string };
}

async function tenant(api: CpApi, name: string, scopes: string[]) {
  const acc = await postAs<{ account_id: string; name: string; kind: string }>(api, "/api/v2/accounts", {
    name,
    kind: "tenant",
  });
  if (acc.status !== 201) throw new Error(`account: ${acc.status} ${JSON.stringify(acc.body)}`);
  const key = await postAs<{ key_id: string; token: string }>(
    api,
    `/api/v2/accounts/${acc.body.account_id}/keys`,
    { scopes },
  );
  if (key.status !== 201) throw new Error(`key: ${key.status} ${JSON.stringify(key.body)}`);
  return { id: acc.body.account_id, keyId: key.body.key_id, token: key.body.token, account: acc.body };
}

test.serial("two tenants: ownership, scopes, revocation and a tamper-evident audit chain", async (t) => {
  const docker = await requireDocker(t);
  if (!docker) return;
  await busyboxImage(docker);
  const { cp, api, dataDir, devDir } = await startTestCp(t);
  const agent = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-t" }));
  await waitFor("registration", () => cp.index.get(agent.agentId)?.state === "registered");
  const runtime = new DockerRuntime({ docker });

  const a = await tenant(api, "tenant-a", ["deploy", "read"]);
  const b = await tenant(api, "tenant-b", ["deploy", "read"]);
  t.deepEqual(a.account, { account_id: a.id, name: "tenant-a", kind: "tenant" });
  t.regex(a.token, /^eek_[0-9a-f]{24}_[A-Za-z0-9_-]{43}$/);
  t.is(a.token.split("_")[1], a.keyId, "the token carries its key id");

  // No self-service: a tenant's key cannot create accounts.
  const self = await postAs<Err>(api, "/api/v2/accounts", { name: "mallory", kind: "launcher" }, b.token);
  t.is(self.status, 403);
  t.is(self.body.error.code, "EE-AUTH-SCOPE");
  // Nor mint scopes it lacks, nor see other accounts.
  const wider = await postAs<Err>(api, `/api/v2/accounts/${b.id}/keys`, { scopes: ["agents:read"] }, b.token);
  t.is(wider.status, 400, "a tenant account may not hold provider scopes");
  t.is((await api(`/api/v2/accounts/${a.id}`, { token: b.token })).status, 404);
  const listed = await api<{ accounts: { account_id: string }[] }>("/api/v2/accounts", { token: b.token });
  t.deepEqual(
    listed.body.accounts.map((x) => x.account_id),
    [b.id],
  );

  // A follows its events from before it deploys: the new deployment's events reach it, no one else's.
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const followed = await cpContract.fetch(`${cp.url}/api/v2/events?follow=true`, {
    headers: { authorization: `Bearer ${a.token}` },
    signal: abort.signal,
  });
  t.is(followed.status, 200);
  const seenByA = readLines(followed);

  // Tenant A deploys.
  const created = await postAs<{ deployment_id: string; agent_id: string }>(
    api,
    "/api/v2/deployments",
    { app: "web-a", compose: webCompose(), health: { port: WEB_PORT, path: "/", timeout_s: 30 } },
    a.token,
  );
  t.is(created.status, 202, JSON.stringify(created.body));
  const id = created.body.deployment_id;
  t.teardown(() => runtime.remove(id));
  const asA: CpApi = (path, init = {}) => api(path, { ...init, token: a.token });
  await deploymentIn(asA, id, ["healthy"], 60_000);
  const streamed = await waitFor(
    "A's follow to see its deployment healthy",
    () => {
      const events = seenByA();
      return events.some((e) => e.kind === "deployment.healthy") ? events : undefined;
    },
    30_000,
  );
  t.true(
    streamed.every((e) => e.data.deployment_id === id),
    "a follow carries only the tenant's events",
  );
  t.true(
    streamed.some((e) => e.kind === "deployment.created"),
    "including the first, written before its owner",
  );
  const listedA = await api<{ events: Ev[] }>("/api/v2/events?limit=1000", { token: a.token });
  t.true(listedA.body.events.length >= 2 && listedA.body.events.every((e) => e.data.deployment_id === id));
  const listedB = await api<{ events: Ev[] }>("/api/v2/events?limit=1000", { token: b.token });
  t.deepEqual(listedB.body.events, [], "B sees none of A's events");

  // Tenant B cannot see or touch it: 404, as if it did not exist.
  t.is((await api(`/api/v2/deployments/${id}`, { token: b.token })).status, 404);
  const undeployB = await api<Err>(`/api/v2/deployments/${id}/undeploy`, { method: "POST", token: b.token });
  t.is(undeployB.status, 404);
  const listB = await api<{ deployments: DeploymentJson[] }>("/api/v2/deployments", { token: b.token });
  t.deepEqual(listB.body.deployments, []);
  const agentsB = await api<{ agents: unknown[] }>("/api/v2/agents", { token: b.token });
  t.deepEqual(agentsB.body.agents, [], "B sees no agent: none runs its deployments");
  t.is((await api(`/api/v2/agents/${agent.agentId}`, { token: b.token })).status, 404);
  t.is((await api(`/api/v2/agents/${agent.agentId}/logs`, { token: b.token })).status, 404);
  const replaceB = await postAs<Err>(
    api,
    "/api/v2/deployments",
    { app: "web-a", compose: webCompose({ text: "b" }) },
    b.token,
  );
  t.is(replaceB.status, 409, "B cannot deploy under A's app name (no implicit update of A's deployment)");
  t.is(replaceB.body.error.code, "EE-CONFLICT-STATE");
  const viaReplaces = await postAs<Err>(
    api,
    "/api/v2/deployments",
    { app: "web-b", compose: webCompose(), replaces: id },
    b.token,
  );
  t.is(viaReplaces.status, 404, "nor name A's deployment in replaces");
  // A sees its own, and the agent that runs it.
  const listA = await api<{ deployments: DeploymentJson[] }>("/api/v2/deployments", { token: a.token });
  t.deepEqual(
    listA.body.deployments.map((d) => d.deployment_id),
    [id],
  );
  const agentsA = await api<{ agents: { agent_id: string }[] }>("/api/v2/agents", { token: a.token });
  t.deepEqual(
    agentsA.body.agents.map((x) => x.agent_id),
    [agent.agentId],
  );

  // A key without deploy: 403; once revoked: 401.
  const ro = await postAs<{ key_id: string; token: string }>(api, `/api/v2/accounts/${a.id}/keys`, {
    scopes: ["read"],
  });
  const roDeploy = await postAs<Err>(
    api,
    "/api/v2/deployments",
    { app: "web-a", compose: webCompose() },
    ro.body.token,
  );
  t.is(roDeploy.status, 403);
  t.is(roDeploy.body.error.code, "EE-AUTH-SCOPE");
  t.is(
    (await api(`/api/v2/deployments/${id}`, { token: ro.body.token })).status,
    200,
    "read is enough to read",
  );
  t.is((await api(`/api/v2/keys/${ro.body.key_id}`, { method: "DELETE" })).status, 204);
  const revoked = await api<Err>(`/api/v2/deployments/${id}`, { token: ro.body.token });
  t.is(revoked.status, 401);
  t.is(revoked.body.error.code, "EE-AUTH-REVOKED");
  const keys = await api<{
    keys: { key_id: string; revoked_at: string | null; last_used_at: string | null }[];
  }>(`/api/v2/accounts/${a.id}/keys`, { token: a.token });
  t.deepEqual(
    keys.body.keys.map((k) => [k.key_id, k.revoked_at !== null]),
    [
      [a.keyId, false],
      [ro.body.key_id, true],
    ],
  );
  t.truthy(keys.body.keys[0]!.last_used_at, "last use is recorded");
  // The secret is all after eek_<24 hex>_ (base64url may hold "_" itself).
  t.false(JSON.stringify(keys.body).includes(a.token.slice("eek_".length + 25)), "no secret is listed");

  // A undeploys its own.
  t.is((await api(`/api/v2/deployments/${id}/undeploy`, { method: "POST", token: a.token })).status, 202);
  await deploymentIn(asA, id, ["undeployed"], 60_000);

  // The audit chain holds the changes and the refusals, with who did them from where.
  const audit = await api<{
    records: {
      seq: number;
      principal: string;
      client: string;
      action: string;
      target: string;
      outcome: string;
    }[];
  }>("/api/v2/audit?after=0&limit=1000");
  const rows = audit.body.records;
  const has = (action: string, outcome: string, principal?: string) =>
    rows.some(
      (r) => r.action === action && r.outcome === outcome && (!principal || r.principal === principal),
    );
  t.true(has("account.create", "ok", "admin"));
  t.true(has("key.create", "ok", "admin"));
  t.true(has("deployment.create", "ok", `account:${a.id}/key:${a.keyId}`));
  t.true(has("key.revoke", "ok", "admin"));
  t.true(has("POST /api/v2/accounts", "EE-AUTH-SCOPE", `account:${b.id}/key:${b.keyId}`));
  t.true(has("GET /api/v2/deployments/:id", "EE-NOT-FOUND", `account:${b.id}/key:${b.keyId}`));
  t.true(has("POST /api/v2/deployments/:id/undeploy", "ok", `account:${a.id}/key:${a.keyId}`));
  t.true(has("auth.failed", "EE-AUTH-REVOKED", "anonymous"), "failed authentication is audited");
  t.true(rows.every((r) => r.client === "127.0.0.1" || r.client === "::ffff:127.0.0.1"));
  t.deepEqual(
    rows.map((r) => r.seq),
    rows.map((_, i) => i + 1),
  );
  const own = await api<{ records: { principal: string }[] }>("/api/v2/audit?limit=1000", { token: a.token });
  t.true(own.body.records.length > 0);
  t.true(
    own.body.records.every((r) => r.principal.startsWith(`account:${a.id}/`)),
    "a tenant reads only what its own keys did",
  );

  // The stored chain verifies; editing one record in the store makes verify fail naming it.
  await cp.stop();
  const verify = () => eectl(["audit", "verify", "--data-dir", dataDir, "--json"]);
  const good = await verify();
  t.is(good.code, 0, good.stderr);
  t.deepEqual(JSON.parse(good.stdout), { ok: true, records: rows.length + countAfter(rows.length, dataDir) });
  const victim = rows.find((r) => r.action === "deployment.create")!.seq;
  const db = new Database(join(dataDir, "business.db"));
  db.prepare("UPDATE audit SET principal = 'admin' WHERE seq = ?").run(victim);
  db.close();
  const bad = await verify();
  t.is(bad.code, 1);
  const out = JSON.parse(bad.stdout) as { ok: boolean; first_bad_seq: number };
  t.false(out.ok);
  t.is(out.first_bad_seq, victim);
});

interface Ev {
  kind: string;
  data: { deployment_id?: string };
}

/** The ndjson lines a streamed answer has delivered so far, read in the background. */
function readLines(res: Response): () => Ev[] {
  let text = "";
  void (async () => {
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
        text += Buffer.from(chunk).toString("utf8");
    } catch {
      // aborted at the end of the test
    }
  })();
  return () =>
    text
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as Ev);
}

/** Records written after the listing (the listing's own refusal, the 403 above): counted from the store. */
function countAfter(seen: number, dataDir: string): number {
  const db = new Database(join(dataDir, "business.db"), { readonly: true });
  const { n } = db.prepare("SELECT COUNT(*) AS n FROM audit WHERE seq > ?").get(seen) as { n: number };
  db.close();
  return n;
}
