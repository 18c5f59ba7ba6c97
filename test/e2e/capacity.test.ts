// Capacity end to end, as an operator would run it: a real CP, `eectl launcher run --provider local` as a child
// process starting real `eectl agent` processes that register with their orders' bootstrap tokens. A target of
// two warm tiny agents in local:a comes up through orders; killing one makes the reconciler order a
// replacement; a spent token is refused; an expired lease reopens its order; an exec launcher's failing command
// fails its order with the command's output; preflight says whether capacity is on its way.
import { readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { eectl, eectlRunning } from "../helpers/cli.ts";
import {
  ADMIN_TOKEN,
  agentConfig,
  type CpApi,
  startTestAgent,
  startTestCp,
  waitFor,
} from "../helpers/cluster.ts";
import { tempDir } from "../helpers/temp.ts";
import { postAs } from "../helpers/workloads.ts";

interface Order {
  order_id: string;
  datacenter: string;
  node_size: string;
  status: string;
  agent_id?: string;
  reason?: string;
}

const DC = "local:a";
const JSON_TYPE = { "content-type": "application/json" };

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The audit event of a registration refused with `code`, if there is one yet. */
async function refusal(api: CpApi, code: string) {
  const { body } = await api<{ events: { agent_id: string; data: { reason?: string } }[] }>(
    "/api/v2/events?kind=agent.rejected",
  );
  return body.events.find((e) => e.data.reason === code);
}
const COMPOSE = "services:\n  web:\n    image: busybox\n";

test("two warm tiny agents come up through a local launcher; a killed one is replaced; a spent token is refused", async (t) => {
  const { cp, api, devDir } = await startTestCp(t, { capacity: { reconcileMs: 300 } });
  const orders = async () => (await api<{ orders: Order[] }>("/api/v2/capacity/orders")).body.orders;
  const warm = async () =>
    (await api<{ targets: { warm: number }[] }>("/api/v2/capacity/reconcile", { method: "POST" })).body
      .targets[0]?.warm ?? 0;

  const started = Date.now();
  const set = await api("/api/v2/capacity/targets", {
    method: "PUT",
    body: JSON.stringify({ datacenter: DC, node_size: "tiny", min_warm: 2 }),
    headers: { "content-type": "application/json" },
  });
  t.is(set.status, 200);
  t.deepEqual(
    (await orders()).map((o) => o.status),
    ["open", "open"],
    "the target's shortfall is ordered at once",
  );

  const workDir = tempDir(t, "ee-launcher-");
  const launcher = eectlRunning(
    t,
    [
      "launcher",
      "run",
      "--provider",
      "local",
      "--datacenter",
      DC,
      "--work-dir",
      workDir,
      "--dev-attestation",
      devDir,
      "--poll-ms",
      "200",
    ],
    { EE_CP_URL: cp.url, EE_TOKEN: ADMIN_TOKEN, EE_LOG_LEVEL: "warn" },
  );
  const fulfilled = await waitFor(
    "two fulfilled orders and two warm agents",
    async () => {
      const done = (await orders()).filter((o) => o.status === "fulfilled");
      return done.length === 2 && (await warm()) === 2 ? done : undefined;
    },
    90_000,
  );
  t.log(`target set → 2 warm agents through orders: ${Date.now() - started} ms`);
  for (const o of fulfilled) {
    t.regex(o.agent_id ?? "", /^agt_/);
    const rec = cp.index.get(o.agent_id!);
    t.like(rec, { datacenter: DC, node_size: "tiny", vm_name: o.order_id });
    t.is(statSync(join(workDir, o.order_id, "config.json")).mode & 0o777, 0o600, "the config holds a token");
  }
  const metrics = await (await fetch(`${cp.url}/metrics`)).text();
  t.regex(metrics, /^ee_capacity_warm\{datacenter="local:a",node_size="tiny"\} 2$/m);
  t.regex(metrics, /^ee_capacity_min_warm\{datacenter="local:a",node_size="tiny"\} 2$/m);
  const reservations = await api<{ reservations: { agent_id: string }[] }>("/api/v2/capacity/reservations");
  t.deepEqual(
    reservations.body.reservations.map((r) => r.agent_id).sort(),
    fulfilled.map((o) => o.agent_id).sort(),
  );

  // A spent token, presented by another agent, is refused and audited with its code.
  const spent = JSON.parse(readFileSync(join(workDir, fulfilled[0]!.order_id, "config.json"), "utf8"));
  await startTestAgent(
    t,
    agentConfig(t, cp.wsUrl, devDir, {
      vm_name: "thief",
      datacenter: DC,
      bootstrap_token: spent.bootstrap_token,
      registration: { max_attempts: 1 },
    }),
  );
  t.truthy(await waitFor("the reused token's refusal", () => refusal(api, "EE-REG-BOOTSTRAP-USED")));

  // Kill one launched agent for real: it goes stale, the reconciler orders a replacement, the launcher fills it.
  const pid = Number(/agent pid (\d+)/.exec(launcher.stdout())?.[1]);
  t.true(pid > 0, launcher.stdout());
  process.kill(pid, "SIGKILL");
  await waitFor(
    "a replacement order fulfilled and two warm agents again",
    async () => {
      const done = (await orders()).filter((o) => o.status === "fulfilled");
      return done.length === 3 && (await warm()) === 2 ? true : undefined;
    },
    90_000,
  );
  launcher.kill("SIGINT");
  t.is(await launcher.exited, 0);
  t.regex(launcher.stdout(), /launcher: stopped/);
  // As documented: the agents a local launcher started stop with it.
  const pids = [...launcher.stdout().matchAll(/agent pid (\d+)/g)].map((m) => Number(m[1]));
  t.is(pids.length, 3, launcher.stdout());
  t.deepEqual(pids.filter(alive), []);
});

test("an expired lease reopens the order with its reason; progress under a lost lease is refused", async (t) => {
  const { cp, api, devDir } = await startTestCp(t, { capacity: { reconcileMs: 60_000, leaseMs: 1_000 } });
  const json = { "content-type": "application/json" };
  await api("/api/v2/capacity/targets", {
    method: "PUT",
    headers: json,
    body: JSON.stringify({ datacenter: DC, node_size: "tiny", min_warm: 1 }),
  });
  const targets = await api<{ targets: { datacenter: string; min_warm: number }[] }>(
    "/api/v2/capacity/targets",
  );
  t.like(targets.body.targets, [{ datacenter: DC, min_warm: 1 }]);
  const sizes = await api<{ sizes: { node_size: string }[] }>("/api/v2/capacity/sizes");
  t.deepEqual(
    sizes.body.sizes.map((x) => x.node_size),
    ["tiny", "standard", "llm"],
  );
  const claim = await api<{ order: Order; bootstrap_token: string }>("/api/v2/capacity/orders/claim", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ datacenter: DC }),
  });
  t.like(claim.body.order, { status: "claimed" });
  t.regex(claim.body.bootstrap_token, /^eebt_[A-Za-z0-9_-]{43}$/);
  const id = claim.body.order.order_id;
  const reopened = await waitFor("the lease to expire", async () => {
    const { body } = await api<{ orders: Order[] }>("/api/v2/capacity/orders");
    return body.orders.find((o) => o.order_id === id && o.status === "open");
  });
  t.regex(reopened.reason ?? "", /^EE-CAP-LEASE-EXPIRED/);
  // The token of the ended claim is refused at registration, by a real agent.
  await startTestAgent(
    t,
    agentConfig(t, cp.wsUrl, devDir, {
      vm_name: "late",
      datacenter: DC,
      bootstrap_token: claim.body.bootstrap_token,
      registration: { max_attempts: 1 },
    }),
  );
  await waitFor("the expired token's refusal", () => refusal(api, "EE-REG-BOOTSTRAP-EXPIRED"));
  const late = await api<{ error: { code: string } }>(`/api/v2/capacity/orders/${id}/progress`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ status: "provisioning" }),
  });
  t.is(late.status, 409);
  t.is(late.body.error.code, "EE-CAP-ORDER-STATE");
  const noReason = await api<{ error: { code: string } }>(`/api/v2/capacity/orders/${id}/progress`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ status: "failed" }),
    badRequest: true,
  });
  t.is(noReason.body.error.code, "EE-REQ-INVALID", "a failure needs a reason");
  const unknown = await api<{ error: { code: string } }>(
    "/api/v2/capacity/orders/ord-0000000000000000/progress",
    {
      method: "POST",
      headers: json,
      body: JSON.stringify({ status: "provisioning" }),
    },
  );
  t.is(unknown.status, 404);
  // Nothing claimable elsewhere: an empty claim, not an error.
  const none = await api<{ order: null }>("/api/v2/capacity/orders/claim", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ datacenter: "local:zz" }),
  });
  t.deepEqual(none.body, { order: null });
  const bad = await api<{ error: { code: string } }>("/api/v2/capacity/targets", {
    method: "PUT",
    headers: json,
    body: JSON.stringify({ datacenter: "no-zone", node_size: "tiny", min_warm: 1 }),
    badRequest: true,
  });
  t.is(bad.body.error.code, "EE-REQ-INVALID");
});

test("an exec launcher's failing command fails the order with its output; preflight names capacity's state", async (t) => {
  const { cp, api } = await startTestCp(t, { capacity: { reconcileMs: 60_000 } });
  const env = { EE_CP_URL: cp.url, EE_TOKEN: ADMIN_TOKEN };
  const preflight = async () =>
    (
      await api<{ ok: boolean; capacity?: { code: string } }>("/api/v2/preflight", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ app: "web", compose: COMPOSE, datacenter: DC, node_size: "tiny" }),
      })
    ).body;
  t.like(await preflight(), { ok: false, capacity: { code: "EE-CAP-NO-ELIGIBLE" } });

  const set = await eectl(
    ["capacity", "targets", "set", "--datacenter", DC, "--node-size", "tiny", "--min-warm", "1", "--json"],
    { env },
  );
  t.is(set.code, 0, set.stderr);
  t.like(JSON.parse(set.stdout), { datacenter: DC, node_size: "tiny", min_warm: 1 });
  t.like(await preflight(), { ok: false, capacity: { code: "EE-CAP-WARM-PENDING" } });
  const deploy = await api<{ error: { code: string; details: { capacity: { code: string } } } }>(
    "/api/v2/deployments",
    {
      method: "POST",
      headers: JSON_TYPE,
      body: JSON.stringify({ app: "web", compose: COMPOSE, datacenter: DC, node_size: "tiny" }),
    },
  );
  t.is(deploy.status, 409);
  t.like(deploy.body.error, {
    code: "EE-PLACE-NO-AGENT",
    details: { capacity: { code: "EE-CAP-WARM-PENDING" } },
  });

  const launcher = eectlRunning(
    t,
    [
      "launcher",
      "run",
      "--provider",
      "exec",
      "--datacenter",
      DC,
      "--poll-ms",
      "200",
      "--command",
      'echo "no $EE_VCPUS-vcpu $EE_NODE_SIZE in $EE_DATACENTER" >&2; test -n "$EE_BOOTSTRAP_TOKEN"; exit 3',
    ],
    env,
  );
  const failed = await waitFor(
    "the order to fail",
    async () => {
      const run = await eectl(["capacity", "orders", "list", "--json"], { env });
      return (JSON.parse(run.stdout) as { orders: Order[] }).orders.find((o) => o.status === "failed");
    },
    30_000,
  );
  t.regex(failed.reason ?? "", /^EE-CAP-LAUNCH-FAILED: the command exited \(3\): no 1-vcpu tiny in local:a/);
  launcher.kill("SIGINT");
  t.is(await launcher.exited, 0);

  const sizes = await eectl(["capacity", "sizes", "--json"], { env });
  t.like(JSON.parse(sizes.stdout).sizes[0], { node_size: "tiny", vcpus: 1, memory_mb: 2048, gpus: 0 });
  const targets = await eectl(["capacity", "targets", "list"], { env });
  t.regex(targets.stdout, /local:a\s+tiny\s+1/);
  const reconcile = await eectl(["capacity", "reconcile", "--json"], { env });
  t.like(JSON.parse(reconcile.stdout).targets[0], { datacenter: DC, min_warm: 1, warm: 0 });
  const badCount = await eectl(
    ["capacity", "targets", "set", "--datacenter", DC, "--node-size", "tiny", "--min-warm", "many", "--json"],
    { env },
  );
  t.is(badCount.code, 1);
  t.is(JSON.parse(badCount.stdout).error.code, "EE-CONFIG-INVALID");
  const badDc = await eectl(
    [
      "capacity",
      "targets",
      "set",
      "--datacenter",
      "nozone",
      "--node-size",
      "tiny",
      "--min-warm",
      "1",
      "--json",
    ],
    { env },
  );
  t.is(JSON.parse(badDc.stdout).error.code, "EE-REQ-INVALID");
  const badProvider = await eectl(["launcher", "run", "--provider", "cloud", "--datacenter", DC], { env });
  t.is(badProvider.code, 1);
  t.regex(badProvider.stderr, /EE-CONFIG-INVALID: --provider: expected local or exec/);
  const badToken = await eectl(
    ["launcher", "run", "--provider", "exec", "--command", "true", "--datacenter", DC],
    {
      env: { ...env, EE_TOKEN: "not-the-token" },
    },
  );
  t.is(badToken.code, 1, "a refused launcher stops instead of retrying for ever");
  t.regex(badToken.stderr, /EE-AUTH-INVALID/);
  for (const args of [
    ["capacity", "orders", "list"],
    ["launcher", "run"],
  ]) {
    const help = await eectl([...args, "--help"]);
    t.is(help.code, 0);
  }
});

test("a token refused for another node size, or a registration refused before it, is not spent; the right agent then fulfils the order", async (t) => {
  const { cp, api, devDir } = await startTestCp(t, {
    capacity: { reconcileMs: 60_000 },
    nodeSizes: ["tiny", "standard"],
  });
  await api("/api/v2/capacity/targets", {
    method: "PUT",
    headers: JSON_TYPE,
    body: JSON.stringify({ datacenter: DC, node_size: "tiny", min_warm: 1 }),
  });
  const claim = await api<{ order: Order; bootstrap_token: string }>("/api/v2/capacity/orders/claim", {
    method: "POST",
    headers: JSON_TYPE,
    body: JSON.stringify({ datacenter: DC, node_size: "tiny" }),
  });
  const token = claim.body.bootstrap_token;
  const provisioning = await api<Order>(`/api/v2/capacity/orders/${claim.body.order.order_id}/progress`, {
    method: "POST",
    headers: JSON_TYPE,
    body: JSON.stringify({ status: "provisioning" }),
  });
  t.like(provisioning.body, { status: "provisioning" });
  const anonymous = await api("/api/v2/capacity/orders/claim", {
    method: "POST",
    headers: JSON_TYPE,
    body: JSON.stringify({ datacenter: DC }),
    token: null,
  });
  t.is(anonymous.status, 401, "launchers authenticate");
  await startTestAgent(
    t,
    agentConfig(t, cp.wsUrl, devDir, {
      vm_name: "wrong-size",
      node_size: "standard",
      datacenter: DC,
      bootstrap_token: token,
      registration: { max_attempts: 1 },
    }),
  );
  await waitFor("the mismatch refusal", () => refusal(api, "EE-REG-BOOTSTRAP-MISMATCH"));
  // A registration refused before the token check (a vm_name held by a live agent) does not spend it either.
  const holder = await startTestAgent(
    t,
    agentConfig(t, cp.wsUrl, devDir, { vm_name: "held", datacenter: DC }),
  );
  await waitFor(
    "the holder registered",
    () => cp.index.get(holder.agentId)?.state === "registered" || undefined,
  );
  await startTestAgent(
    t,
    agentConfig(t, cp.wsUrl, devDir, {
      vm_name: "held",
      datacenter: DC,
      bootstrap_token: token,
      registration: { max_attempts: 1 },
    }),
  );
  await waitFor("the duplicate's refusal", () => refusal(api, "EE-REG-DUPLICATE-VM-NAME"));
  const agent = await startTestAgent(
    t,
    agentConfig(t, cp.wsUrl, devDir, { vm_name: "right-size", datacenter: DC, bootstrap_token: token }),
  );
  const order = await waitFor("the order fulfilled by the right agent", async () => {
    const { body } = await api<{ orders: Order[] }>("/api/v2/capacity/orders");
    return body.orders.find((o) => o.order_id === claim.body.order.order_id && o.status === "fulfilled");
  });
  t.is(order.agent_id, agent.agentId);
  // A direct agent (no token) still registers as before.
  const direct = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "direct" }));
  await waitFor(
    "the direct agent registered",
    () => cp.index.get(direct.agentId)?.state === "registered" || undefined,
  );
});

/** An account of `kind` with one key holding `scopes`, made by the admin. */
async function accountKey(api: CpApi, name: string, kind: string, scopes: string[]) {
  const acc = await postAs<{ account_id: string }>(api, "/api/v2/accounts", { name, kind });
  const key = await postAs<{ token: string }>(api, `/api/v2/accounts/${acc.body.account_id}/keys`, {
    scopes,
  });
  if (key.status !== 201) throw new Error(`key: ${key.status} ${JSON.stringify(key.body)}`);
  return key.body.token;
}

test("launcher accounts claim with the launch scope and hold their leases; others are refused", async (t) => {
  const { api } = await startTestCp(t, { capacity: { reconcileMs: 60_000 } });
  await api("/api/v2/capacity/targets", {
    method: "PUT",
    headers: JSON_TYPE,
    body: JSON.stringify({ datacenter: DC, node_size: "tiny", min_warm: 1 }),
  });
  const launcher = await accountKey(api, "boot-a", "launcher", ["launch"]);
  const rival = await accountKey(api, "boot-b", "launcher", ["launch"]);
  const tenant = await accountKey(api, "acme", "tenant", ["deploy", "read"]);

  const refused = await postAs<{ error: { code: string } }>(
    api,
    "/api/v2/capacity/orders/claim",
    { datacenter: DC },
    tenant,
  );
  t.is(refused.status, 403);
  t.is(refused.body.error.code, "EE-AUTH-SCOPE");
  const listing = await api<{ error: { code: string } }>("/api/v2/capacity/orders", { token: launcher });
  t.is(listing.status, 403, "the rest of capacity is the admin's");

  const claim = await postAs<{ order: Order; bootstrap_token: string }>(
    api,
    "/api/v2/capacity/orders/claim",
    { datacenter: DC },
    launcher,
  );
  t.like(claim.body.order, { status: "claimed" });
  const id = claim.body.order.order_id;
  const stolen = await postAs<{ error: { code: string } }>(
    api,
    `/api/v2/capacity/orders/${id}/progress`,
    { status: "failed", reason: "not mine" },
    rival,
  );
  t.is(stolen.status, 409);
  t.is(stolen.body.error.code, "EE-CAP-LEASE-LOST");
  const mine = await postAs<Order>(
    api,
    `/api/v2/capacity/orders/${id}/progress`,
    { status: "provisioning" },
    launcher,
  );
  t.like(mine.body, { status: "provisioning" });
  // The claim and the progress are in the audit chain under the launcher's account.
  const audit = await api<{ records: { principal: string; action: string; outcome: string }[] }>(
    "/api/v2/audit",
  );
  const actions = audit.body.records.filter((r) => r.action.includes("/capacity/")).map((r) => r.outcome);
  t.true(
    actions.includes("EE-AUTH-SCOPE") && actions.includes("EE-CAP-LEASE-LOST") && actions.includes("ok"),
  );
});

test("capacity state survives the runtime DB's loss (it lives in business.db)", async (t) => {
  const dataDir = tempDir(t, "ee-cp-");
  const first = await startTestCp(t, { dataDir, capacity: { reconcileMs: 60_000 } });
  await first.api("/api/v2/capacity/targets", {
    method: "PUT",
    headers: JSON_TYPE,
    body: JSON.stringify({ datacenter: DC, node_size: "tiny", min_warm: 2 }),
  });
  await first.cp.stop();
  for (const f of ["easyenclave.db", "easyenclave.db-wal", "easyenclave.db-shm"])
    rmSync(join(dataDir, f), { force: true });
  const second = await startTestCp(t, { dataDir, capacity: { reconcileMs: 60_000 } });
  const targets = await second.api<{ targets: { min_warm: number }[] }>("/api/v2/capacity/targets");
  t.like(targets.body.targets, [{ min_warm: 2 }]);
  const orders = await second.api<{ orders: Order[] }>("/api/v2/capacity/orders");
  t.is(orders.body.orders.length, 2, "the open orders too: a restart orders no duplicates");
  t.deepEqual(
    (await second.api<{ created: string[] }>("/api/v2/capacity/reconcile", { method: "POST" })).body.created,
    [],
  );
});
