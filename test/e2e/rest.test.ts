// The REST surface: auth, probes, errors in the contract's shape, the served OpenAPI document, and the watch
// stream of transitions.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { ADMIN_DIGEST_FILE } from "../../actors/admin-token.ts";
import {
  ADMIN_TOKEN,
  agentConfig,
  RawAgent,
  startTestAgent,
  startTestCp,
  waitFor,
} from "../helpers/cluster.ts";
import { cpContract } from "../helpers/contract.ts";
import { postJson, SLEEP_COMPOSE } from "../helpers/workloads.ts";

test("every /api/v2 route needs the admin token", async (t) => {
  const { api } = await startTestCp(t);
  for (const path of ["/api/v2/agents", "/api/v2/agents/agt_x", "/api/v2/events", "/api/v2/agents/events"]) {
    const missing = await api<{ error: { code: string } }>(path, { token: null });
    t.is(missing.status, 401, path);
    t.is(missing.body.error.code, "EE-AUTH-MISSING");
    const wrong = await api<{ error: { code: string } }>(path, { token: "not-the-token-at-all" });
    t.is(wrong.status, 401);
    t.is(wrong.body.error.code, "EE-AUTH-INVALID");
  }
});

test("the admin token is checked as a SHA-256 digest: near misses of any length are 401, only the digest is on disk", async (t) => {
  const { api, dataDir } = await startTestCp(t);
  const last = ADMIN_TOKEN.at(-1) === "x" ? "y" : "x";
  // A raw constant-time compare throws on a length mismatch (a 500); comparing digests makes every length equal.
  for (const near of [
    `${ADMIN_TOKEN.slice(0, -1)}${last}`,
    ADMIN_TOKEN.slice(0, -1),
    `${ADMIN_TOKEN}x`,
    ADMIN_TOKEN.toUpperCase(),
    "x",
    "x".repeat(8192),
  ]) {
    const res = await api<{ error: { code: string } }>("/api/v2/agents", { token: near });
    t.is(res.status, 401, `${near.length} characters`);
    t.is(res.body.error.code, "EE-AUTH-INVALID");
  }
  t.is((await api("/api/v2/agents")).status, 200);
  const digest = createHash("sha256").update(ADMIN_TOKEN).digest("hex");
  t.is(readFileSync(join(dataDir, ADMIN_DIGEST_FILE), "utf8").trim(), digest);
  for (const f of readdirSync(dataDir, { recursive: true, withFileTypes: true })) {
    if (f.isFile()) t.false(readFileSync(join(f.parentPath, f.name)).includes(ADMIN_TOKEN), f.name);
  }
});

test("probes and the contract are public; errors have the contract's shape", async (t) => {
  const { api } = await startTestCp(t);
  t.deepEqual((await api("/healthz", { token: null })).body, { status: "ok" });
  t.is((await api("/readyz", { token: null })).status, 200);
  const doc = await api<{ openapi: string; paths: Record<string, unknown> }>("/openapi.json", {
    token: null,
  });
  t.is(doc.body.openapi, "3.1.0");
  t.truthy(doc.body.paths["/api/v2/agents/{agent_id}"]);
  const nf = await api<{ error: { code: string; message: string } }>("/api/v2/agents/agt_nobody");
  t.is(nf.status, 404);
  t.is(nf.body.error.code, "EE-NOT-FOUND");
  const noRoute = await api<{ error: { code: string } }>("/api/v2/nothing-here", { badRequest: true });
  t.is(noRoute.status, 404);
  const badQuery = await api<{ error: { code: string } }>("/api/v2/events?after=-1", { badRequest: true });
  t.is(badQuery.status, 400);
  t.is(badQuery.body.error.code, "EE-REQ-INVALID");
});

test("the agents listing filters by state", async (t) => {
  const { cp, devDir, api } = await startTestCp(t);
  const a = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-f" }));
  await waitFor("registered", () => cp.index.get(a.agentId)?.state === "registered");
  t.is((await api<{ agents: unknown[] }>("/api/v2/agents?state=registered")).body.agents.length, 1);
  t.is((await api<{ agents: unknown[] }>("/api/v2/agents?state=stale")).body.agents.length, 0);
});

test("the watch stream reports transitions as they happen", async (t) => {
  const { cp, devDir } = await startTestCp(t, { heartbeatMs: 100, staleAfterMs: 300 });
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const res = await cpContract.fetch(`${cp.url}/api/v2/agents/events`, {
    headers: { authorization: "Bearer test-admin-token-0123456789" },
    signal: abort.signal,
  });
  t.is(res.headers.get("content-type"), "text/event-stream");
  const reader = res.body!.getReader();
  let text = "";
  const read = async (until: RegExp) => {
    while (!until.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
  };
  await read(/event: ready/);
  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir);
  await read(/"to":"stale"/);
  const transitions = text
    .split("\n\n")
    .filter((b) => b.startsWith("event: transition"))
    .map((b) => JSON.parse(b.split("data: ")[1]!) as { from: string | null; to: string; agent_id: string });
  t.deepEqual(
    transitions.map((x) => `${x.from}->${x.to}`),
    ["null->challenged", "challenged->registered", "registered->stale"],
  );
  t.true(transitions.every((x) => x.agent_id === raw.agentId));
});

test("GET /api/v2/events?follow=true streams the backlog, then each new event, as documented ndjson lines", async (t) => {
  const { cp, devDir } = await startTestCp(t);
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const first = await RawAgent.connect(t, cp.wsUrl);
  await first.register(devDir);
  const res = await cpContract.fetch(`${cp.url}/api/v2/events?follow=true&after=0&kind=agent.registered`, {
    headers: { authorization: "Bearer test-admin-token-0123456789" },
    signal: abort.signal,
  });
  t.is(res.status, 200);
  t.is(res.headers.get("content-type"), "application/x-ndjson");
  const reader = res.body!.getReader();
  let text = "";
  const lines = async (n: number) => {
    while (text.split("\n").filter(Boolean).length < n) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    return text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { kind: string; agent_id: string; at: string });
  };
  t.deepEqual(
    (await lines(1)).map((e) => e.agent_id),
    [first.agentId],
  );
  const second = await RawAgent.connect(t, cp.wsUrl);
  await second.register(devDir, { vm_name: "raw-2" });
  const events = await lines(2);
  t.deepEqual(
    events.map((e) => [e.kind, e.agent_id]),
    [
      ["agent.registered", first.agentId],
      ["agent.registered", second.agentId],
    ],
  );
});

test("GET /metrics is public Prometheus text with agent counts by state", async (t) => {
  const { cp, devDir } = await startTestCp(t);
  const a = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-m" }));
  await waitFor("registered", () => cp.index.get(a.agentId)?.state === "registered");
  const res = await cpContract.fetch(`${cp.url}/metrics`);
  t.is(res.status, 200);
  t.regex(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  t.regex(text, /^# TYPE ee_agents gauge$/m);
  t.regex(text, /^ee_agents\{state="registered"\} 1$/m);
  t.regex(text, /^ee_agents_connected 1$/m);
  t.regex(text, /^process_resident_memory_bytes \d+$/m);
  t.false(text.includes(a.agentId), "no identities in metrics");
});

/** Keys that name a time on the REST surface: at, …At, …_at, and the baselines' first_seen/last_seen. */
const TIME_KEY = /^at$|[a-z]At$|_at$|_seen$/;
const ISO_8601 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Every time-named value under `value`, with its path. */
function times(value: unknown, path = "$"): [string, unknown][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => times(v, `${path}[${i}]`));
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) => [
    ...(TIME_KEY.test(k) && v !== null && typeof v !== "object"
      ? [[`${path}.${k}`, v] as [string, unknown]]
      : []),
    ...times(v, `${path}.${k}`),
  ]);
}

test("every time in agents, events, deployments and measurements responses is an ISO 8601 string", async (t) => {
  const { cp, devDir, api } = await startTestCp(t, { heartbeatMs: 1000, staleAfterMs: 60_000 });
  const raw = await RawAgent.connect(t, cp.wsUrl);
  await raw.register(devDir);
  raw.send("heartbeat", { seq: 1, sent_at: Date.now(), workload: null });
  await raw.next("heartbeat_ack");
  const placed = await postJson<{ deployment_id: string }>(api, "/api/v2/deployments", {
    app: "iso",
    compose: SLEEP_COMPOSE,
    agent_id: raw.agentId,
  });
  t.is(placed.status, 202, JSON.stringify(placed.body));
  t.is(
    (await postJson(api, "/api/v2/measurements", { node_size: "tiny", mrtd: "ab".repeat(48) })).status,
    201,
  );

  const found: [string, unknown][] = [];
  for (const path of [
    "/api/v2/agents",
    `/api/v2/agents/${raw.agentId}`,
    "/api/v2/events",
    `/api/v2/deployments/${placed.body.deployment_id}`,
    "/api/v2/measurements",
  ]) {
    const { status, body } = await api(path);
    t.is(status, 200, path);
    found.push(...times(body, path));
  }
  for (const [where, v] of found) t.true(typeof v === "string" && ISO_8601.test(v), `${where} = ${v}`);
  const keys = new Set(found.map(([where]) => where.replace(/\[\d+\]/g, "[]")));
  for (const expected of [
    "/api/v2/agents.agents[].last_heartbeat_at",
    `/api/v2/agents/${raw.agentId}.machine.context.registeredAt`,
    `/api/v2/agents/${raw.agentId}.machine.context.attestation.at`,
    "/api/v2/events.events[].at",
    `/api/v2/deployments/${placed.body.deployment_id}.created_at`,
    "/api/v2/measurements.trusted[].added_at",
  ])
    t.true(keys.has(expected), `${expected} is checked`);
});
