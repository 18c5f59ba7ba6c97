// The master's deployments port: a deploy naming a dc's agent is queued for that dc under a fresh id and shows
// pending with its dc_id; a direct agent is never sent to a dc, even when a dc reports its id; a degraded dc and
// what cannot be relayed are refused with their codes; an Idempotency-Key replays; with no agent named, a dc's
// agent takes what no direct agent fits. The local coordinator and the link are stand-ins recording calls; the
// view and placement are the real ones.
import test from "ava";
import type { AgentRecord } from "../../../actors/agent-index.ts";
import type { Deployments } from "../../../actors/deployments.ts";
import { federatedDeployments } from "../../../actors/federation/federated-deployments.ts";
import { FederatedView } from "../../../actors/federation/federated-view.ts";
import type { MasterLink } from "../../../actors/federation/master-link.ts";
import { PlacementError } from "../../../spec/errors.ts";

const REMOTE = `agt_${"a".repeat(24)}`;
const DIRECT = `agt_${"d".repeat(24)}`;
const NOW = 1_000_000;

function rec(id: string): AgentRecord {
  return {
    agent_id: id,
    vm_name: "vm",
    node_size: "tiny",
    datacenter: "baremetal:local",
    state: "registered",
    connected: true,
    registered_at: NOW,
    last_heartbeat_at: NOW,
    heartbeat_seq: 0,
    deployment_id: null,
    app: null,
    mrtd: null,
    trust_root: "dev",
    attestation_status: "ok",
    attested_at: NOW,
    reason: null,
    restored: false,
    rehydrated: false,
  } as AgentRecord;
}

function setup(o: { dcAt?: number; localFits?: boolean } = {}) {
  const view = new FederatedView({ own: "master" });
  for (const [seq, id] of [REMOTE, DIRECT].entries())
    view.apply("dc1", seq + 1, {
      type: "event",
      seq: seq + 1,
      at: o.dcAt ?? NOW,
      kind: "agent.registered",
      agent_id: id,
      agent: rec(id),
      deployment: null,
      data: {},
    });
  const sent: { dc: string; command: string; body: Record<string, unknown> }[] = [];
  const localCreates: unknown[] = [];
  const link = {
    degradedAfterMs: 30_000,
    send: async (dc: string, command: string, body: Record<string, unknown>) => {
      sent.push({ dc, command, body });
    },
  } as unknown as MasterLink;
  const local = {
    create: (req: unknown) => {
      localCreates.push(req);
      if (!o.localFits) throw new PlacementError("EE-PLACE-NO-AGENT", "no direct agent fits");
      return { deployment_id: "d-local", agent_id: DIRECT, replayed: false };
    },
    preflight: () => ({ app: "web", app_version: null, compose_hash: "h".repeat(64), services: ["web"] }),
    apps: () => [],
    has: () => false,
  } as unknown as Deployments;
  const port = federatedDeployments({
    local,
    view,
    link,
    placementSecret: new Uint8Array(32),
    attestationMaxAgeMs: 60_000,
    isDirect: (id) => id === DIRECT,
    now: () => NOW + 1_000,
  });
  return { port, view, sent, localCreates };
}

const body = { app: "web", compose: "services:\n  web:\n    image: busybox\n" };

test("a deploy naming a dc's agent is queued for that dc and shows pending with its dc_id", async (t) => {
  const { port, sent, localCreates } = setup();
  const out = await port.create({ ...body, agent_id: REMOTE });
  t.like(out, { agent_id: REMOTE, replayed: false });
  t.deepEqual(localCreates, []);
  t.is(sent.length, 1);
  t.like(sent[0], {
    dc: "dc1",
    command: "deploy",
    body: { deployment_id: out.deployment_id, agent_id: REMOTE },
  });
  t.like(port.get(out.deployment_id), { status: "pending", dc_id: "dc1", agent_id: REMOTE } as never);
});

test("a direct agent stays direct even when a dc reports its id", async (t) => {
  const { port, sent, localCreates } = setup({ localFits: true });
  t.like(await port.create({ ...body, agent_id: DIRECT }), { deployment_id: "d-local" });
  t.is(localCreates.length, 1);
  t.deepEqual(sent, []);
});

test("a degraded dc's agent is EE-PLACE-DC-DEGRADED; credentials and build contexts are not relayed", async (t) => {
  const degraded = setup({ dcAt: NOW - 60_000 });
  await t.throwsAsync(async () => degraded.port.create({ ...body, agent_id: REMOTE }), {
    code: "EE-PLACE-DC-DEGRADED",
  } as never);
  const { port, sent } = setup();
  await t.throwsAsync(async () => port.create({ ...body, agent_id: REMOTE, registry_auth: {} as never }), {
    code: "EE-REQ-INVALID",
  } as never);
  await t.throwsAsync(async () => port.create({ ...body, agent_id: REMOTE, context: new Uint8Array(1) }), {
    code: "EE-REQ-INVALID",
  } as never);
  t.deepEqual(sent, [], "nothing queued");
});

test("an Idempotency-Key replays the first deploy; another body with it is EE-CONFLICT-IDEMPOTENCY", async (t) => {
  const { port, sent } = setup();
  const first = await port.create({ ...body, agent_id: REMOTE }, "key-1");
  t.like(await port.create({ ...body, agent_id: REMOTE }, "key-1"), {
    deployment_id: first.deployment_id,
    replayed: true,
  });
  await t.throwsAsync(async () => port.create({ ...body, app: "other", agent_id: REMOTE }, "key-1"), {
    code: "EE-CONFLICT-IDEMPOTENCY",
  } as never);
  t.is(sent.length, 1);
});

test("with no agent named, a dc's agent takes what no direct agent fits; the direct agent a dc reports is not a candidate", async (t) => {
  const { port, sent } = setup();
  // Each deployment ranks the candidates afresh: eight in a row all reaching REMOTE rule DIRECT out (1 in 256 by luck).
  for (let i = 0; i < 8; i++) t.is((await port.create(body)).agent_id, REMOTE);
  t.true(sent.every((s) => s.dc === "dc1"));
});

test("mixed mode: the master's own agents and deployments in the view stay local, listed once", async (t) => {
  const { port, view, sent, localCreates } = setup();
  // A direct agent that has just left the master's index (isDirect false) but is still in its own dc's view.
  const GONE = `agt_${"e".repeat(24)}`;
  const row = {
    deployment_id: "d-local",
    app: "web",
    app_version: null,
    agent_id: GONE,
    status: "healthy",
    code: null,
    message: null,
    compose_hash: "h".repeat(64),
    images: [],
    progress: [],
    request: {},
    created_at: NOW,
    updated_at: NOW,
    rehydrated: false,
  };
  view.apply("master", 1, {
    type: "event",
    seq: 1,
    at: NOW,
    kind: "deployment.healthy",
    agent_id: GONE,
    agent: rec(GONE),
    deployment: row as never,
    data: { deployment_id: "d-local" },
  });
  await t.throwsAsync(async () => port.create({ ...body, agent_id: GONE }), {
    code: "EE-PLACE-NO-AGENT",
  } as never);
  t.is(localCreates.length, 1, "the master's own dc is never sent a command");
  t.deepEqual(sent, []);
  // Nor is it a dc candidate when no direct agent fits (8 in a row rule it out, as above).
  for (let i = 0; i < 8; i++) t.is((await port.create(body)).agent_id, REMOTE);
  t.true(sent.every((s) => s.dc === "dc1"));
  const local = { list: () => [{ ...row, compose: "" }] };
  const listed = federatedDeployments({
    local: { ...local, has: () => true } as unknown as Deployments,
    view,
    link: { degradedAfterMs: 30_000 } as unknown as MasterLink,
    placementSecret: new Uint8Array(32),
    attestationMaxAgeMs: 60_000,
    isDirect: () => false,
  }).list({});
  t.is(listed.filter((d) => d.deployment_id === "d-local").length, 1, "once, from the local store");
  t.is(listed.length, 9, "and the eight sent to dc1");
});
