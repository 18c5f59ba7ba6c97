// Billing end to end on a real CP (REST held to spec/control-plane.yaml) with real tenants: the admin creates a
// tenant account with a deploy/read key and a provider account whose enrollment token the (raw) agent registers
// with, sets rates and deposits; the tenant deploys with its own key and, with the billing clock driven by the
// test, is charged exactly three times, split 70/30 between the agent's provider and the platform; verify passes
// over REST and through eectl; retried deposits and charges change nothing; deposits and rate changes are on the
// business audit chain; a tenant that cannot pay gets 402 at preflight and deploy; another tenant cannot read the
// first's balance or ledger; a dry tenant's deployment is undeployed after the grace period, audited. The payment
// webhook is signed.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { signWebhook } from "../../billing/webhook.ts";
import type { LedgerEntryJson } from "../../contract/rest-responses.ts";
import { eectl } from "../helpers/cli.ts";
import { ADMIN_TOKEN, type CpApi, RawAgent, startTestCp, tempDir, waitFor } from "../helpers/cluster.ts";

const PERIOD_S = 3600;
const GRACE_S = 600;
const RATE = 3_600_000; // micro-units per hour: one period costs 3 600 000
const JSON_HEADERS = { "content-type": "application/json" };
const WEB = { app: "web", compose: "services:\n  web:\n    image: ee-test/busybox:1\n" };

interface ErrorBody {
  error: { code: string; details?: Record<string, unknown> };
}

interface AuditRecordJson {
  principal: string;
  action: string;
  target: string | null;
  details: Record<string, unknown> | null;
}

const post = <T>(api: CpApi, path: string, body: unknown, token?: string) =>
  api<T>(path, {
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify(body),
    ...(token !== undefined ? { token } : {}),
  });

/** An account made by the admin, with a key of `scopes`. */
async function account(api: CpApi, name: string, kind: string, scopes: string[]) {
  const acc = await post<{ account_id: string }>(api, "/api/v2/accounts", { name, kind });
  const key = await post<{ token: string }>(api, `/api/v2/accounts/${acc.body.account_id}/keys`, { scopes });
  return { id: acc.body.account_id, token: key.body.token };
}

async function billedCp(t: import("ava").ExecutionContext, extra: { webhookSecretFile?: string } = {}) {
  // 100 s into the current real period, so the grace period below ends before the next period closes, and the
  // first boundary the test moves past is after the (real) time the deployment turns healthy.
  const clock = { now: Math.floor(Date.now() / (PERIOD_S * 1000)) * PERIOD_S * 1000 + 100_000 };
  const tcp = await startTestCp(t, {
    heartbeatMs: 100,
    staleAfterMs: 5000,
    billing: { periodS: PERIOD_S, graceS: GRACE_S, now: () => clock.now, tickMs: 50, ...extra },
  });
  // The first tick closes the period before the start (nothing ran then); later ones follow the clock.
  await tcp.cp.charger.tick();
  return { ...tcp, clock };
}

test("a tenant runs three periods, charged three times 70/30; verify passes; retries change nothing; dry → undeployed after grace", async (t) => {
  const { cp, api, devDir, dataDir, clock } = await billedCp(t);
  const acme = await account(api, "acme", "tenant", ["deploy", "read"]);
  const globex = await account(api, "globex", "tenant", ["deploy", "read"]);
  const metal = await account(api, "metal-co", "provider", ["agents:read", "agents:enroll"]);
  const enrollment = await post<{ token: string }>(api, `/api/v2/accounts/${metal.id}/enrollment-tokens`, {});
  t.is(enrollment.status, 201);
  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir, { enrollment_token: enrollment.body.token });
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
  const byTenant = await api<ErrorBody>("/api/v2/billing/rates", { token: acme.token });
  t.is(byTenant.status, 403, "the rate card is the admin's");

  // No money yet: the tenant's preflight and deploy are 402, and nothing is placed. The admin's own deployments
  // belong to no account and are never charged: its preflight of the same body is fine.
  const broke = await post<ErrorBody>(api, "/api/v2/preflight", WEB, acme.token);
  t.is(broke.status, 402);
  t.is(broke.body.error.code, "EE-PLACE-INSUFFICIENT-FUNDS");
  t.like(broke.body.error.details, {
    tenant: acme.id,
    balance_micros: 0,
    needed_micros: RATE,
    node_size: "tiny",
  });
  const refused = await post<ErrorBody>(api, "/api/v2/deployments", WEB, acme.token);
  t.is(refused.status, 402);
  t.is(cp.index.get(raw.agentId)?.state, "registered", "the agent was not given the deployment");
  t.like((await post(api, "/api/v2/preflight", WEB)).body, { ok: true });

  // Deposits are the admin's: three periods and a little more; the same deposit again credits nothing.
  const deposit = { amount_micros: 3 * RATE + 1_000_000, idempotency_key: "inv-1" };
  const depositsOf = (id: string) => `/api/v2/accounts/${id}/deposits`;
  const bySelf = await post<ErrorBody>(api, depositsOf(acme.id), deposit, acme.token);
  t.is(bySelf.status, 403, "a tenant cannot credit itself");
  t.is(bySelf.body.error.code, "EE-AUTH-SCOPE");
  const first = await post<{ journal_id: string; balance_micros: number }>(api, depositsOf(acme.id), deposit);
  t.is(first.status, 201);
  t.is(first.body.balance_micros, 3 * RATE + 1_000_000);
  const again = await post<{ journal_id: string; replayed: boolean }>(api, depositsOf(acme.id), deposit);
  t.is(again.status, 200);
  t.true(again.body.replayed);
  t.is(again.body.journal_id, first.body.journal_id);
  const toProvider = await post<ErrorBody>(api, depositsOf(metal.id), deposit);
  t.is(toProvider.status, 400, "deposits credit tenants only");
  t.is((await post(api, depositsOf("acc_000000000000000000000000"), deposit)).status, 404);

  const chain = async (action: string) =>
    (await api<{ records: AuditRecordJson[] }>("/api/v2/audit?limit=1000")).body.records.filter(
      (r) => r.action === action,
    );
  const deposits = await chain("billing.deposit");
  t.is(deposits.length, 1, "the retried deposit is not audited as another");
  t.like(deposits[0], {
    principal: "admin",
    target: `ledger:tenant:${acme.id}`,
    details: { amount_micros: deposit.amount_micros, source: "admin", journal_id: first.body.journal_id },
  });
  t.is((await chain("billing.rates_set")).length, 1, "the refused card is not audited");

  const posted = await post<{ deployment_id: string }>(api, "/api/v2/deployments", WEB, acme.token);
  t.is(posted.status, 202);
  const deploy = await raw.next("deploy");
  raw.send("deploy_status", { deployment_id: deploy.body.deployment_id, step: "running", at: Date.now() });
  await waitFor("healthy", () => cp.index.get(raw.agentId)?.state === "healthy");

  // The tenant reads its own statement.
  const usage = async () =>
    (
      await api<{ entries: LedgerEntryJson[] }>(`/api/v2/accounts/${acme.id}/ledger`, { token: acme.token })
    ).body.entries.filter((e) => e.kind === "usage");
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
  const balance = async (id: string, token?: string) =>
    (await api<{ balance_micros: number }>(`/api/v2/accounts/${id}/balance`, token ? { token } : {})).body
      .balance_micros;
  t.is(await balance(acme.id, acme.token), 1_000_000);
  t.is(await balance(metal.id), 3 * 2_520_000, "70% to the provider that enrolled the agent");
  t.is(await balance(metal.id, metal.token), 3 * 2_520_000, "the provider reads its own earnings");
  t.is(await balance("platform"), 3 * 1_080_000, "30% to the platform");

  // Another tenant learns nothing of acme's money; the platform's account is the admin's.
  for (const path of ["balance", "ledger"]) {
    const peek = await api<ErrorBody>(`/api/v2/accounts/${acme.id}/${path}`, { token: globex.token });
    t.is(peek.status, 404, `another tenant's ${path}`);
  }
  t.is((await api(`/api/v2/accounts/platform/balance`, { token: globex.token })).status, 403);

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
  t.is(await balance(acme.id), 1_000_000);

  // 1 000 000 left cannot pay the next period: the tenant is dry, preflight says so (priced by the requested
  // node_size, the only agent being busy), and after the grace period (no further period closes meanwhile) the
  // deployment is undeployed, both on the audit chain.
  const dry = await post<ErrorBody>(api, "/api/v2/preflight", { ...WEB, node_size: "tiny" }, acme.token);
  t.is(dry.status, 402);
  const low = await waitFor("funds_low audited", async () => (await chain("billing.funds_low"))[0]);
  t.like(low, {
    principal: "system",
    details: { deployment_id: posted.body.deployment_id, tenant: acme.id },
  });
  t.is(cp.deployments.get(posted.body.deployment_id).status, "healthy", "still within the grace period");
  clock.now += GRACE_S * 1000;
  const undeploy = await raw.next("undeploy", 15_000);
  t.is(undeploy.body.deployment_id, posted.body.deployment_id);
  raw.send("deploy_status", { deployment_id: posted.body.deployment_id, step: "stopped", at: Date.now() });
  await waitFor("undeployed", () => cp.deployments.get(posted.body.deployment_id).status === "undeployed");
  const gone = await waitFor("undeploy audited", async () => (await chain("billing.undeployed"))[0]);
  t.like(gone, {
    principal: "system",
    target: `deployment:${posted.body.deployment_id}`,
    details: {
      tenant: acme.id,
      balance_micros: 1_000_000,
      needed_micros: RATE,
      reason: "EE-PLACE-INSUFFICIENT-FUNDS",
    },
  });
  t.is((await usage()).length, 3, "exactly three charges");
  t.deepEqual((await api("/api/v2/billing/verify")).body, { ok: true, journals: 4 });
});

test("the payment webhook credits only with a valid signature, once per payment id", async (t) => {
  const secretFile = join(tempDir(t), "webhook.secret");
  const secret = "whsec-0123456789abcdef";
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const { api } = await billedCp(t, { webhookSecretFile: secretFile });
  const acme = await account(api, "acme", "tenant", ["read"]);
  const body = JSON.stringify({ account_id: acme.id, amount_micros: 2_000_000, idempotency_key: "pay_1" });
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
  const balance = await api<{ balance_micros: number }>(`/api/v2/accounts/${acme.id}/balance`, {
    token: acme.token,
  });
  t.is(balance.body.balance_micros, 2_000_000);
  const unknown = JSON.stringify({
    account_id: "acc_000000000000000000000000",
    amount_micros: 1,
    idempotency_key: "pay_2",
  });
  t.is((await send(signWebhook(Buffer.from(secret), unknown), unknown)).status, 404, "no such account");
  const audited = await api<{ records: AuditRecordJson[] }>("/api/v2/audit?limit=1000");
  const deposits = audited.body.records.filter((r) => r.action === "billing.deposit");
  t.is(deposits.length, 1, "one credited payment, one record");
  t.like(deposits[0], {
    principal: "webhook",
    target: `ledger:tenant:${acme.id}`,
    details: { source: "webhook" },
  });
});

test("without a webhook secret the payment webhook refuses everything", async (t) => {
  const { api } = await billedCp(t);
  const body = JSON.stringify({
    account_id: "acc_000000000000000000000000",
    amount_micros: 1,
    idempotency_key: "pay_1",
  });
  const res = await api<ErrorBody>("/api/v2/billing/webhook", {
    method: "POST",
    token: null,
    headers: { ...JSON_HEADERS, "x-ee-signature": signWebhook(Buffer.from(""), body) },
    body,
  });
  t.is(res.status, 401);
  t.is(res.body.error.code, "EE-AUTH-WEBHOOK-SIGNATURE");
});
