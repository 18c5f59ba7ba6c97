// Billing end to end on a real CP (REST held to spec/control-plane.yaml) with a raw agent reporting its
// deployment running, and the billing clock driven by the test: a tenant with a deposit runs a deployment for
// three periods and is charged exactly three times, split 70/30; verify passes over REST and through eectl;
// retried deposits and charges change nothing; a tenant that cannot pay gets 402 at preflight and deploy; a
// dry tenant's deployment is undeployed after the grace period, audited. The payment webhook is signed.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import type { BillingParties } from "../../billing/parties.ts";
import { signWebhook } from "../../billing/webhook.ts";
import type { EntryJson } from "../../transport/rest/billing.ts";
import { eectl } from "../helpers/cli.ts";
import { ADMIN_TOKEN, RawAgent, startTestCp, tempDir, waitFor } from "../helpers/cluster.ts";

const PERIOD_S = 3600;
const GRACE_S = 600;
const RATE = 3_600_000; // micro-units per hour: one period costs 3 600 000
const JSON_HEADERS = { "content-type": "application/json" };
const WEB = { app: "web", compose: "services:\n  web:\n    image: ee-test/busybox:1\n" };

/** Until tenancy lands the test says who pays: app "web" is tenant acme's, every agent is provider ops's. */
const PARTIES: BillingParties = {
  tenantOf: (d) => (d.app === "web" ? "acme" : null),
  providerOf: () => "ops",
};

interface ErrorBody {
  error: { code: string; details?: Record<string, unknown> };
}

async function billedCp(t: import("ava").ExecutionContext, extra: { webhookSecretFile?: string } = {}) {
  // 100 s into the current real period, so the grace period below ends before the next period closes, and the
  // first boundary the test moves past is after the (real) time the deployment turns healthy.
  const clock = { now: Math.floor(Date.now() / (PERIOD_S * 1000)) * PERIOD_S * 1000 + 100_000 };
  const tcp = await startTestCp(t, {
    heartbeatMs: 100,
    staleAfterMs: 5000,
    billing: {
      periodS: PERIOD_S,
      graceS: GRACE_S,
      now: () => clock.now,
      tickMs: 50,
      parties: PARTIES,
      ...extra,
    },
  });
  // The first tick closes the period before the start (nothing ran then); later ones follow the clock.
  await tcp.cp.charger.tick();
  return { ...tcp, clock };
}

test("three periods, three charges split 70/30; verify passes; retries change nothing; dry → undeployed after grace", async (t) => {
  const { cp, api, devDir, dataDir, clock } = await billedCp(t);
  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir);
  await waitFor("registered", () => cp.index.get(raw.agentId)?.state === "registered");

  const rates = await api("/api/v2/billing/rates", {
    method: "PUT",
    headers: JSON_HEADERS,
    body: JSON.stringify({ rates: { tiny: RATE }, platform_fee_bps: 3000 }),
  });
  t.is(rates.status, 200);
  t.like(rates.body, { rates: { tiny: RATE }, platform_fee_bps: 3000, period_s: PERIOD_S });
  const float = await api<ErrorBody>("/api/v2/billing/rates", {
    method: "PUT",
    headers: JSON_HEADERS,
    body: JSON.stringify({ rates: { tiny: 1.5 }, platform_fee_bps: 3000 }),
    badRequest: true,
  });
  t.is(float.status, 400);
  t.is(float.body.error.code, "EE-REQ-INVALID");

  // No money yet: preflight and deploy are 402, and nothing is placed.
  const broke = await api<ErrorBody>("/api/v2/preflight", {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify(WEB),
  });
  t.is(broke.status, 402);
  t.is(broke.body.error.code, "EE-PLACE-INSUFFICIENT-FUNDS");
  t.like(broke.body.error.details, {
    tenant: "acme",
    balance_micros: 0,
    needed_micros: RATE,
    node_size: "tiny",
  });
  const refused = await api<ErrorBody>("/api/v2/deployments", {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify(WEB),
  });
  t.is(refused.status, 402);
  t.is(cp.index.get(raw.agentId)?.state, "registered", "the agent was not given the deployment");

  // Three periods and a little more; the same deposit again credits nothing.
  const deposit = { amount_micros: 3 * RATE + 1_000_000, idempotency_key: "inv-1" };
  const first = await api<{ journal_id: string; balance_micros: number; replayed: boolean }>(
    "/api/v2/accounts/acme/deposits",
    { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(deposit) },
  );
  t.is(first.status, 201);
  t.is(first.body.balance_micros, 3 * RATE + 1_000_000);
  const again = await api<{ journal_id: string; replayed: boolean }>("/api/v2/accounts/acme/deposits", {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify(deposit),
  });
  t.is(again.status, 200);
  t.true(again.body.replayed);
  t.is(again.body.journal_id, first.body.journal_id);
  const audited = await api<{ events: { kind: string; data: Record<string, unknown> }[] }>(
    "/api/v2/events?kind=billing.deposit",
  );
  t.is(audited.body.events.length, 1, "the retried deposit is not audited as another");
  t.like(audited.body.events[0]?.data, {
    account: "tenant:acme",
    amount_micros: deposit.amount_micros,
    source: "admin",
  });
  const ratesSet = await api<{ events: unknown[] }>("/api/v2/events?kind=billing.rates_set");
  t.is(ratesSet.body.events.length, 1, "the refused card is not audited");

  const posted = await api<{ deployment_id: string }>("/api/v2/deployments", {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify(WEB),
  });
  t.is(posted.status, 202);
  const deploy = await raw.next("deploy");
  raw.send("deploy_status", { deployment_id: deploy.body.deployment_id, step: "running", at: Date.now() });
  await waitFor("healthy", () => cp.index.get(raw.agentId)?.state === "healthy");

  const usage = async () =>
    (await api<{ entries: EntryJson[] }>("/api/v2/accounts/acme/ledger")).body.entries.filter(
      (e) => e.kind === "usage",
    );
  for (let period = 1; period <= 3; period++) {
    clock.now += PERIOD_S * 1000;
    await waitFor(`charge ${period}`, async () => (await usage()).length === period || undefined, 15_000);
  }
  const charges = await usage();
  t.deepEqual(
    charges.map((e) => [e.amount_micros, e.deployment_id]),
    Array(3).fill([-RATE, posted.body.deployment_id]),
  );
  t.is(new Set(charges.map((e) => e.period)).size, 3, "one charge per period");
  const balance = async (id: string) =>
    (await api<{ balance_micros: number }>(`/api/v2/accounts/${id}/balance`)).body.balance_micros;
  t.is(await balance("acme"), 1_000_000);
  t.is(await balance("provider:ops"), 3 * 2_520_000, "70% to the agent's provider");
  t.is(await balance("platform"), 3 * 1_080_000, "30% to the platform");

  const verified = await api("/api/v2/billing/verify");
  t.deepEqual(verified.body, { ok: true, journals: 4 });
  const env = { EE_CP_URL: cp.url, EE_TOKEN: ADMIN_TOKEN };
  const cli = await eectl(["billing", "verify", "--json"], { env });
  t.is(cli.code, 0, cli.stderr);
  t.deepEqual(JSON.parse(cli.stdout), { ok: true, journals: 4 });
  const fromStore = await eectl(["billing", "verify", "--json", "--data-dir", dataDir]);
  t.deepEqual(JSON.parse(fromStore.stdout), { ok: true, journals: 4 });

  // A retried charge of the last period, by this charger or a restarted one, posts nothing.
  t.is(await cp.charger.closePeriod(charges.at(-1)!.period!), 0);
  t.is((await usage()).length, 3);
  t.is(await balance("acme"), 1_000_000);

  // 1 000 000 left cannot pay the next period: the tenant is dry, preflight says so (priced by the requested
  // node_size, the only agent being busy), and after the grace period (no further period closes meanwhile) the
  // deployment is undeployed.
  const dry = await api<ErrorBody>("/api/v2/preflight", {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify({ ...WEB, node_size: "tiny" }),
  });
  t.is(dry.status, 402);
  const lowEvents = await api<{ events: { data: Record<string, unknown> }[] }>(
    "/api/v2/events?kind=billing.funds_low",
  );
  t.like(lowEvents.body.events[0]?.data, { deployment_id: posted.body.deployment_id, tenant: "acme" });
  t.is(cp.deployments.get(posted.body.deployment_id).status, "healthy", "still within the grace period");
  clock.now += GRACE_S * 1000;
  const undeploy = await raw.next("undeploy", 15_000);
  t.is(undeploy.body.deployment_id, posted.body.deployment_id);
  raw.send("deploy_status", { deployment_id: posted.body.deployment_id, step: "stopped", at: Date.now() });
  await waitFor("undeployed", () => cp.deployments.get(posted.body.deployment_id).status === "undeployed");
  const audit = await api<{ events: { data: Record<string, unknown> }[] }>(
    "/api/v2/events?kind=billing.undeployed",
  );
  t.like(audit.body.events[0]?.data, {
    deployment_id: posted.body.deployment_id,
    tenant: "acme",
    balance_micros: 1_000_000,
    needed_micros: RATE,
    reason: "EE-PLACE-INSUFFICIENT-FUNDS",
  });
  t.is((await usage()).length, 3, "exactly three charges");
  t.deepEqual((await api("/api/v2/billing/verify")).body, { ok: true, journals: 4 });
});

test("the payment webhook credits only with a valid signature, once per payment id", async (t) => {
  const secretFile = join(tempDir(t), "webhook.secret");
  const secret = "whsec-0123456789abcdef";
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const { api } = await billedCp(t, { webhookSecretFile: secretFile });
  const body = JSON.stringify({ account_id: "acme", amount_micros: 2_000_000, idempotency_key: "pay_1" });
  const send = (signature: string | null, text = body) =>
    api<{ replayed?: boolean; balance_micros?: number } & Partial<ErrorBody>>("/api/v2/billing/webhook", {
      method: "POST",
      token: null,
      headers: { ...JSON_HEADERS, ...(signature === null ? {} : { "x-ee-signature": signature }) },
      body: text,
      ...(signature === null ? { badRequest: true } : {}),
    });
  const good = signWebhook(Buffer.from(secret), body);
  const paid = await send(good);
  t.is(paid.status, 201);
  t.is(paid.body.balance_micros, 2_000_000);
  const retried = await send(good);
  t.is(retried.status, 200, "a redelivery is answered, not credited again");
  t.true(retried.body.replayed);
  const wrongKey = await send(signWebhook(Buffer.from("another-secret-0123"), body));
  t.is(wrongKey.status, 401);
  t.is(wrongKey.body.error?.code, "EE-AUTH-WEBHOOK-SIGNATURE");
  const tampered = body.replace("2000000", "9000000");
  t.is((await send(good, tampered)).status, 401, "the signature covers the exact body");
  t.is((await send(null)).status, 401);
  const balance = await api<{ balance_micros: number }>("/api/v2/accounts/acme/balance");
  t.is(balance.body.balance_micros, 2_000_000);
});

test("without a webhook secret the payment webhook refuses everything", async (t) => {
  const { api } = await billedCp(t);
  const body = JSON.stringify({ account_id: "acme", amount_micros: 1, idempotency_key: "pay_1" });
  const res = await api<ErrorBody>("/api/v2/billing/webhook", {
    method: "POST",
    token: null,
    headers: { ...JSON_HEADERS, "x-ee-signature": signWebhook(Buffer.from(""), body) },
    body,
  });
  t.is(res.status, 401);
  t.is(res.body.error.code, "EE-AUTH-WEBHOOK-SIGNATURE");
});
