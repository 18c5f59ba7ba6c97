// Agents belong to the provider that enrolled them: a single-use enrollment token in the agent's config, bound at
// registration. The provider's key sees its agents (and no other); a second agent with the same token is refused
// (EE-REG-ENROLLMENT, close 4003) while the first may present it again; an agent dedicated to tenant A is not
// placed for tenant B (EE-PLACE-DEDICATED in preflight and in the 409's details). Real CP and agents.
import test from "ava";
import {
  agentConfig,
  type CpApi,
  RawAgent,
  startTestAgent,
  startTestCp,
  waitFor,
} from "../helpers/cluster.ts";
import { postAs, webCompose } from "../helpers/workloads.ts";

interface Err {
  error: {
    code: string;
    details?: { agents: { agent_id: string; reasons: string[]; vm_name: string | null }[] };
  };
}

async function account(api: CpApi, name: string, kind: string, scopes: string[]) {
  const acc = await postAs<{ account_id: string }>(api, "/api/v2/accounts", { name, kind });
  const key = await postAs<{ token: string }>(api, `/api/v2/accounts/${acc.body.account_id}/keys`, {
    scopes,
  });
  return { id: acc.body.account_id, token: key.body.token };
}

test("enrollment binds an agent to its provider, once, and dedication keeps other tenants off it", async (t) => {
  const { cp, api, devDir } = await startTestCp(t);
  const provider = await account(api, "metal-co", "provider", ["agents:read", "agents:enroll"]);
  const tenantA = await account(api, "tenant-a", "tenant", ["deploy", "read"]);
  const tenantB = await account(api, "tenant-b", "tenant", ["deploy", "read"]);

  // The provider mints its own token, dedicated to tenant A; a tenant cannot, nor for another account.
  const minted = await postAs<{ token_id: string; token: string; dedicated_to: string | null }>(
    api,
    `/api/v2/accounts/${provider.id}/enrollment-tokens`,
    { dedicated_to: tenantA.id },
    provider.token,
  );
  t.is(minted.status, 201, JSON.stringify(minted.body));
  t.regex(minted.body.token, /^eet_[0-9a-f]{24}_/);
  t.is(minted.body.dedicated_to, tenantA.id);
  const byTenant = await postAs<Err>(
    api,
    `/api/v2/accounts/${provider.id}/enrollment-tokens`,
    {},
    tenantA.token,
  );
  t.is(byTenant.status, 403);
  t.is(byTenant.body.error.code, "EE-AUTH-SCOPE");
  const notProvider = await postAs<Err>(api, `/api/v2/accounts/${tenantA.id}/enrollment-tokens`, {});
  t.is(notProvider.status, 400, "only provider accounts enroll agents");

  const enrolled = await startTestAgent(
    t,
    agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-enrolled", enrollment_token: minted.body.token }),
  );
  const plain = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-plain" }));
  for (const a of [enrolled, plain])
    await waitFor("registration", () => cp.index.get(a.agentId)?.state === "registered");

  const seen = await api<{ agents: { agent_id: string }[] }>("/api/v2/agents", { token: provider.token });
  t.deepEqual(
    seen.body.agents.map((a) => a.agent_id),
    [enrolled.agentId],
    "the provider sees the agent it enrolled, not the other",
  );
  t.is((await api(`/api/v2/agents/${plain.agentId}`, { token: provider.token })).status, 404);
  t.is((await api(`/api/v2/agents/${enrolled.agentId}`, { token: provider.token })).status, 200);
  t.is(
    (await api(`/api/v2/agents/${enrolled.agentId}/logs`, { token: provider.token })).status,
    403,
    "a provider never reads its tenants' logs",
  );

  // Single use: another agent presenting the token is refused; the enrolled one may present it again.
  const thief = await RawAgent.connect(t, cp.wsUrl);
  const { body: challenge } = await thief.next("challenge");
  thief.send(
    "register",
    await thief.registerBody(devDir, challenge.nonce, {
      vm_name: "vm-thief",
      enrollment_token: minted.body.token,
    }),
  );
  const err = await thief.next("error");
  t.is(err.body.code, "EE-REG-ENROLLMENT");
  t.is((await thief.closed).code, 4003);
  t.is(cp.index.get(thief.agentId), undefined, "nothing registered");

  // The agent that used a token presents it again on every registration (it is in its config): accepted.
  const second = await postAs<{ token: string }>(
    api,
    `/api/v2/accounts/${provider.id}/enrollment-tokens`,
    {},
  );
  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir, { vm_name: "vm-raw", enrollment_token: second.body.token });
  raw.ws.terminate();
  const again = await RawAgent.connect(t, cp.wsUrl, raw.key);
  const re = await again.register(devDir, { vm_name: "vm-raw", enrollment_token: second.body.token });
  t.is(re.body.agent_id, raw.agentId);

  // Dedication: B's preflight and deploy never land on A's agent; A's do.
  const body = { app: "web-b", compose: webCompose(), agent_id: enrolled.agentId };
  const preB = await postAs<{
    ok: boolean;
    placement: { candidates: { reasons: string[]; vm_name: string | null }[] };
  }>(api, "/api/v2/preflight", body, tenantB.token);
  t.false(preB.body.ok);
  t.true(preB.body.placement.candidates[0]!.reasons.includes("EE-PLACE-DEDICATED"));
  t.is(preB.body.placement.candidates[0]!.vm_name, null, "a tenant is not told the providers' host names");
  const deployB = await postAs<Err>(api, "/api/v2/deployments", body, tenantB.token);
  t.is(deployB.status, 409);
  t.deepEqual(
    deployB.body.error.details?.agents.map((a) => [a.reasons, a.vm_name]),
    [[["EE-PLACE-DEDICATED"], null]],
  );
  const preA = await postAs<{ ok: boolean }>(
    api,
    "/api/v2/preflight",
    { ...body, app: "web-a" },
    tenantA.token,
  );
  t.true(preA.body.ok, "the dedicated tenant may use it");
  const preAdmin = await postAs<{ ok: boolean; placement: { chosen: { vm_name: string } } }>(
    api,
    "/api/v2/preflight",
    { ...body, app: "web-admin" },
  );
  t.true(preAdmin.body.ok, "the admin is not turned away");
  t.is(preAdmin.body.placement.chosen.vm_name, "vm-enrolled");

  const audit = await api<{ records: { action: string; outcome: string; target: string }[] }>(
    "/api/v2/audit?limit=1000",
  );
  const actions = audit.body.records.map((r) => `${r.action} ${r.outcome} ${r.target}`);
  t.true(actions.includes(`agent.enroll ok agent:${enrolled.agentId}`), actions.join("\n"));
  t.true(actions.includes(`agent.enroll EE-REG-ENROLLMENT agent:${thief.agentId}`), actions.join("\n"));
});
