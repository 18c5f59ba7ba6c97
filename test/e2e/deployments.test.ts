// Deployments end to end: a real CP, real agents (dev attestation) and real containers on the local Docker
// engine. CI posts Compose over REST; the CP places it, the agent runs it, gates it on health and reports.

import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import type { AgentConfig } from "../../agent/config.ts";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import { createEnvelopeSigner } from "../../attestation/cp-envelope.ts";
import { reportDataFor } from "../../attestation/report-data.ts";
import { workloadHash } from "../../compose/images.ts";
import { signedHeaders } from "../../transport/request-signing.ts";
import {
  ADMIN_TOKEN,
  agentConfig,
  spawnAgent,
  startTestAgent,
  startTestCp,
  type TestCp,
  waitFor,
} from "../helpers/cluster.ts";
import { agentContract, cpContract } from "../helpers/contract.ts";
import { requireDocker, testDeploymentId } from "../helpers/docker.ts";
import { busyboxImage } from "../helpers/images.ts";
import { closedPort } from "../helpers/temp.ts";
import {
  DEAF_PORT,
  type DeploymentJson,
  deploymentIn,
  postJson,
  SLEEP_COMPOSE,
  WEB_PORT,
  webCompose,
} from "../helpers/workloads.ts";

async function setup(
  t: ExecutionContext,
  agents: { vm: string; size?: string; over?: Partial<AgentConfig> }[] = [{ vm: "vm-1" }],
) {
  const docker = await requireDocker(t);
  if (!docker) return null;
  await busyboxImage(docker);
  const tcp = await startTestCp(t);
  const running = [];
  for (const a of agents) {
    const agent = await startTestAgent(
      t,
      agentConfig(t, tcp.cp.wsUrl, tcp.devDir, { vm_name: a.vm, node_size: a.size ?? "tiny", ...a.over }),
    );
    running.push(agent);
  }
  for (const a of running)
    await waitFor("registration", () => tcp.cp.index.get(a.agentId)?.state === "registered");
  const runtime = new DockerRuntime({ docker });
  return { docker, tcp, agents: running, runtime };
}

function deploy(
  tcp: TestCp,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
  opts: { badRequest?: boolean } = {},
) {
  return postJson<Record<string, unknown>>(tcp.api, "/api/v2/deployments", body, headers, opts);
}

test.serial(
  "a busybox web server posted as Compose becomes healthy, answers through the agent's proxy, and undeploys to nothing",
  async (t) => {
    const s = await setup(t);
    if (!s) return;
    const { tcp, agents, runtime } = s;
    // No host port: the health gate and the proxy reach the container port on the deployment's network.
    const res = await deploy(tcp, {
      app: "web",
      compose: webCompose(),
      health: { port: WEB_PORT, path: "/", timeout_s: 20 },
    });
    t.is(res.status, 202, JSON.stringify(res.body));
    const id = res.body.deployment_id as string;
    t.teardown(() => runtime.remove(id));
    t.is(res.body.agent_id, agents[0]!.agentId);

    const healthy = await deploymentIn(tcp.api, id, ["healthy", "failed"]);
    t.is(healthy.status, "healthy", `${healthy.code}: ${healthy.message}`);
    t.deepEqual(
      healthy.progress.map((p) => p.step),
      ["dispatched", "pulling", "preparing", "starting", "gating", "running"],
    );
    t.regex(healthy.compose_hash ?? "", /^[0-9a-f]{64}$/);
    const agentRec = await waitFor("agent healthy", () =>
      tcp.cp.index.get(agents[0]!.agentId)?.state === "healthy"
        ? tcp.cp.index.get(agents[0]!.agentId)
        : undefined,
    );
    t.is(agentRec.deployment_id, id);

    // The agent's proxy forwards every non-/api path to the workload.
    const proxied = await agentContract.fetch(`${agents[0]!.apiUrl}/index.html`);
    t.is(proxied.status, 200);
    t.is((await proxied.text()).trim(), "ok");

    // A health quote now binds the running workload: purpose deployed, with the workload hash the REST record's
    // compose hash and image digests give (a verifier needs nothing else).
    const nonce = "5a".repeat(32);
    const attested = (await (
      await agentContract.fetch(`${agents[0]!.apiUrl}/api/health?attest=true&nonce=${nonce}`)
    ).json()) as {
      attestation: {
        purpose: string;
        compose_hash: string;
        workload_hash: string;
        report_data: string;
        agent_pubkey: string;
      };
    };
    t.is(attested.attestation.purpose, "deployed");
    t.is(attested.attestation.compose_hash, healthy.compose_hash ?? "");
    t.is(healthy.images.length, 1);
    const workload = workloadHash(healthy.compose_hash!, healthy.images);
    t.is(attested.attestation.workload_hash, workload);
    const expected = reportDataFor(
      "deployed",
      Buffer.from(nonce, "hex"),
      Buffer.from(attested.attestation.agent_pubkey, "hex"),
      Buffer.from(workload, "hex"),
    );
    t.is(attested.attestation.report_data, Buffer.from(expected).toString("hex"));

    // Logs and stats through the CP, relayed over the agent's WebSocket.
    const logs = await waitFor("the workload's log line", async () => {
      const r = await tcp.api<{ lines: { text: string; stream: string }[] }>(
        `/api/v2/agents/${agents[0]!.agentId}/logs?tail=50`,
      );
      return r.body.lines?.some((l) => l.text.includes("started")) ? r : undefined;
    });
    t.is(logs.status, 200);
    const stats = await tcp.api<{ containers: { service: string }[] }>(
      `/api/v2/agents/${agents[0]!.agentId}/stats`,
    );
    t.is(stats.status, 200);
    t.deepEqual(
      stats.body.containers.map((c) => c.service),
      ["web"],
    );

    // Follow through the CP: ndjson lines until the client leaves, which cancels the agent's stream.
    const abort = new AbortController();
    const follow = await cpContract.fetch(
      `${tcp.cp.url}/api/v2/agents/${agents[0]!.agentId}/logs?follow=true&tail=5`,
      {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        signal: abort.signal,
      },
    );
    t.is(follow.headers.get("content-type"), "application/x-ndjson");
    const reader = follow.body!.getReader();
    let seen = "";
    while (!seen.includes("started")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += Buffer.from(value).toString("utf8");
    }
    t.is((JSON.parse(seen.split("\n")[0]!) as { service: string }).service, "web");
    abort.abort();
    await waitFor("the relayed follow to end", async () => {
      const m = await (await cpContract.fetch(`${tcp.cp.url}/metrics`)).text();
      return /^ee_agent_requests_pending 0$/m.test(m) ? true : undefined;
    });

    const undeploy = await tcp.api<DeploymentJson>(`/api/v2/deployments/${id}/undeploy`, { method: "POST" });
    t.is(undeploy.status, 202);
    const gone = await deploymentIn(tcp.api, id, ["undeployed"]);
    t.is(gone.status, "undeployed");
    t.deepEqual(await runtime.inspect(id), []);
    await waitFor(
      "agent registered again",
      () => tcp.cp.index.get(agents[0]!.agentId)?.state === "registered",
    );
    const again = await tcp.api<{ error: { code: string } }>(`/api/v2/deployments/${id}/undeploy`, {
      method: "POST",
    });
    t.is(again.status, 409);
    t.is(again.body.error.code, "EE-CONFLICT-STATE");
  },
);

test.serial(
  "a workload whose health never passes ends failed with a reason and no container left",
  async (t) => {
    const s = await setup(t);
    if (!s) return;
    const { tcp, runtime, agents } = s;
    const res = await deploy(tcp, {
      app: "sick",
      compose: webCompose(),
      health: { port: DEAF_PORT, path: "/", timeout_s: 2 },
    });
    t.is(res.status, 202);
    const id = res.body.deployment_id as string;
    t.teardown(() => runtime.remove(id));
    const failed = await deploymentIn(tcp.api, id, ["failed", "healthy"]);
    t.is(failed.status, "failed");
    t.is(failed.code, "EE-WORKLOAD-HEALTH-TIMEOUT");
    t.deepEqual(await runtime.inspect(id), []);
    await waitFor("agent free again", () => tcp.cp.index.get(agents[0]!.agentId)?.state === "registered");
    t.is(tcp.cp.index.get(agents[0]!.agentId)?.reason, "EE-WORKLOAD-HEALTH-TIMEOUT");
  },
);

test.serial(
  "an unreachable registry fails with EE-WORKLOAD-PULL-FAILED and a port clash with EE-WORKLOAD-PORT-CONFLICT",
  async (t) => {
    const s = await setup(t, [
      { vm: "vm-1", over: { workloads: { allow_published_ports: true, limits: {} } } },
    ]);
    if (!s) return;
    const { tcp, runtime } = s;
    // An image the engine lacks is pulled; nothing listens where this one's registry would be.
    const missing = await deploy(tcp, {
      app: "ghost",
      compose: `services:\n  app:\n    image: 127.0.0.1:${await closedPort()}/ghost:1\n`,
    });
    t.is(missing.status, 202);
    const m = await deploymentIn(tcp.api, missing.body.deployment_id as string, ["failed", "healthy"]);
    t.is(m.code, "EE-WORKLOAD-PULL-FAILED");

    const { createServer } = await import("node:net");
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
    t.teardown(() => holder.close());
    const held = (holder.address() as { port: number }).port;
    await waitFor("agent free", () => s.tcp.cp.index.get(s.agents[0]!.agentId)?.state === "registered");
    const clash = await deploy(tcp, {
      app: "clash",
      compose: `${webCompose()}\n    ports:\n      - "${held}:${WEB_PORT}"\n`,
    });
    const c = await deploymentIn(tcp.api, clash.body.deployment_id as string, ["failed", "healthy"]);
    t.is(c.code, "EE-WORKLOAD-PORT-CONFLICT");
    t.deepEqual(await runtime.inspect(clash.body.deployment_id as string), []);
  },
);

test.serial("bad input is refused with a stable code and changes nothing", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const { tcp } = s;
  const cases: [Record<string, unknown>, number, string][] = [
    [
      { app: "x", compose: "services:\n  a:\n    image: busybox\n    privileged: true\n" },
      400,
      "EE-COMPOSE-UNSUPPORTED",
    ],
    [{ app: "x", compose: "services: [" }, 400, "EE-COMPOSE-INVALID"],
    [{ app: "x", compose: "services:\n  a:\n    image: b\n", extra: 1 }, 400, "EE-REQ-INVALID"],
    [{ app: "Bad Name", compose: "services:\n  a:\n    image: b\n" }, 400, "EE-REQ-INVALID"],
    [{ app: "x" }, 404, "EE-NOT-FOUND"],
    [{ app: "x", compose: "services:\n  a:\n    image: b\n", node_size: "llm" }, 409, "EE-PLACE-NO-AGENT"],
  ];
  for (const [body, status, code] of cases) {
    const r = await deploy(tcp, body, {}, { badRequest: true });
    t.is(r.status, status, JSON.stringify(body));
    t.is((r.body as { error: { code: string } }).error.code, code, JSON.stringify(body));
  }
  const list = await tcp.api<{ deployments: unknown[] }>("/api/v2/deployments");
  t.deepEqual(list.body.deployments, []);
  t.is(tcp.cp.index.get(s.agents[0]!.agentId)?.state, "registered");
});

test.serial(
  "an agent refuses a compose that publishes a host port by default: the deployment fails EE-COMPOSE-PORTS",
  async (t) => {
    const s = await setup(t);
    if (!s) return;
    const { tcp, runtime } = s;
    const compose = `${webCompose()}\n    ports:\n      - "${await closedPort()}:${WEB_PORT}"\n`;
    const res = await deploy(tcp, {
      app: "published",
      compose,
      health: { port: WEB_PORT, path: "/", timeout_s: 20 },
    });
    t.is(res.status, 202, "the CP does not know the agent's policy: the agent is the one to refuse");
    const id = res.body.deployment_id as string;
    const failed = await deploymentIn(tcp.api, id, ["failed", "healthy"]);
    t.like(failed, { status: "failed", code: "EE-COMPOSE-PORTS" });
    t.deepEqual(await runtime.inspect(id), []);
  },
);

test.serial(
  "a 10,000-service compose is refused with EE-COMPOSE-TOO-LARGE while heartbeats keep flowing",
  async (t) => {
    const s = await setup(t);
    if (!s) return;
    const { tcp } = s;
    const agentId = s.agents[0]!.agentId;
    const compose = `services:\n${Array.from({ length: 10_000 }, (_, i) => `  s${i}:\n    image: x\n`).join("")}`;
    const seq = () => tcp.cp.index.get(agentId)?.heartbeat_seq ?? 0;
    const start = seq();
    // Refusals back to back, CP and agent in this one process: a stalled event loop would stall the heartbeats.
    let refusals = 0;
    while (seq() < start + 2) {
      const r = await deploy(tcp, { app: "huge", compose }, {}, { badRequest: true });
      t.is(r.status, 400);
      t.is((r.body as { error: { code: string } }).error.code, "EE-COMPOSE-TOO-LARGE");
      refusals++;
      if (refusals > 10_000) return t.fail("heartbeats stopped while refusing");
    }
    t.is(tcp.cp.index.get(agentId)?.state, "registered");
  },
);

test.serial(
  "placement explains itself: every agent is listed with its reasons; preflight changes nothing",
  async (t) => {
    const s = await setup(t, [
      { vm: "vm-a", size: "tiny" },
      { vm: "vm-b", size: "standard" },
    ]);
    if (!s) return;
    const { tcp, agents } = s;
    const compose = SLEEP_COMPOSE;
    const pre = await postJson<{
      ok: boolean;
      placement: { chosen: { agent_id: string }; candidates: { agent_id: string; reasons: string[] }[] };
    }>(tcp.api, "/api/v2/preflight", { app: "p", compose, node_size: "standard" });
    t.is(pre.status, 200);
    t.true(pre.body.ok);
    t.is(pre.body.placement.chosen.agent_id, agents[1]!.agentId);
    const refused = pre.body.placement.candidates.find((c) => c.agent_id === agents[0]!.agentId);
    t.deepEqual(refused?.reasons, ["EE-PLACE-NODE-SIZE"]);
    t.is(tcp.cp.index.get(agents[1]!.agentId)?.state, "registered", "preflight changed nothing");

    const none = await deploy(tcp, {
      app: "p",
      compose,
      node_size: "standard",
      datacenter: "gcp:us-east1-b",
    });
    t.is(none.status, 409);
    const details = (
      none.body as { error: { details: { agents: { agent_id: string; reasons: string[] }[] } } }
    ).error.details;
    t.is(details.agents.length, 2);
    t.deepEqual(details.agents.find((a) => a.agent_id === agents[0]!.agentId)?.reasons, [
      "EE-PLACE-NODE-SIZE",
      "EE-PLACE-DATACENTER",
    ]);

    // Idempotency-Key: the retry returns the first result; the same key with another body is a conflict.
    const key = { "idempotency-key": "ci-run-42" };
    const first = await deploy(tcp, { app: "p", compose, node_size: "standard" }, key);
    t.is(first.status, 202);
    t.teardown(() => s.runtime.remove(first.body.deployment_id as string));
    const retry = await deploy(tcp, { app: "p", compose, node_size: "standard" }, key);
    t.is(retry.status, 202);
    t.is(retry.body.deployment_id, first.body.deployment_id);
    const other = await deploy(tcp, { app: "q", compose, node_size: "standard" }, key);
    t.is(other.status, 409);
    t.is((other.body as { error: { code: string } }).error.code, "EE-CONFLICT-IDEMPOTENCY");

    // The busy agent is now excluded with EE-PLACE-BUSY.
    const busy = await deploy(tcp, { app: "p2", compose, node_size: "standard" });
    t.is(busy.status, 409);
    const d2 = (busy.body as { error: { details: { agents: { agent_id: string; reasons: string[] }[] } } })
      .error.details;
    t.true(d2.agents.find((a) => a.agent_id === agents[1]!.agentId)?.reasons.includes("EE-PLACE-BUSY"));
    // Let the deploy finish before teardown removes it: a half-started one would leave its network behind.
    await deploymentIn(tcp.api, first.body.deployment_id as string, ["healthy", "failed"]);
  },
);

test.serial("apps register as name@version and deploy by reference", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const { tcp } = s;
  const app = { name: "sleeper", version: "1.0.0", compose: SLEEP_COMPOSE };
  const put = await postJson<{ ref: string }>(tcp.api, "/api/v2/apps", app);
  t.is(put.status, 201);
  t.is(put.body.ref, "sleeper@1.0.0");
  const dup = await postJson(tcp.api, "/api/v2/apps", app);
  t.is(dup.status, 409);
  const res = await deploy(tcp, { app: "sleeper@1.0.0" });
  t.is(res.status, 202);
  const id = res.body.deployment_id as string;
  t.teardown(() => s.runtime.remove(id));
  const d = await deploymentIn(tcp.api, id, ["healthy", "failed"]);
  t.is(d.status, "healthy", `${d.code}: ${d.message}`);
  const shown = await tcp.api<{ app: string; app_version: string }>(`/api/v2/deployments/${id}`);
  t.is(shown.body.app, "sleeper");
  t.is(shown.body.app_version, "1.0.0");
});

test.serial(
  "an agent killed mid-deploy: the deployment fails with EE-WORKLOAD-AGENT-LOST and nothing is left running",
  async (t) => {
    const docker = await requireDocker(t);
    if (!docker) return;
    await busyboxImage(docker);
    const tcp = await startTestCp(t);
    const config = agentConfig(t, tcp.cp.wsUrl, tcp.devDir, { vm_name: "vm-kill" });
    const child = spawnAgent(t, config);
    const agentId = await waitFor(
      "registration",
      () => {
        for (const r of tcp.cp.index.values()) if (r.state === "registered") return r.agent_id;
        return undefined;
      },
      20_000,
    );
    const res = await deploy(tcp, {
      app: "slow",
      compose: webCompose(),
      health: { port: DEAF_PORT, path: "/", timeout_s: 60 },
    });
    const id = res.body.deployment_id as string;
    const runtime = new DockerRuntime({ docker });
    t.teardown(() => runtime.remove(id));
    await deploymentIn(tcp.api, id, ["deploying"]);
    await waitFor(
      "containers started",
      async () => ((await runtime.inspect(id)).length > 0 ? true : undefined),
      20_000,
    );
    child.kill("SIGKILL");
    const lost = await deploymentIn(tcp.api, id, ["failed"], 10_000);
    t.is(lost.code, "EE-WORKLOAD-AGENT-LOST");
    // The agent comes back, removes what it left half done, and registers with nothing running.
    spawnAgent(t, config);
    await waitFor(
      "re-registration",
      () =>
        tcp.cp.index.get(agentId)?.state === "registered" && tcp.cp.index.get(agentId)?.connected
          ? true
          : undefined,
      20_000,
    );
    await waitFor(
      "leftovers removed",
      async () => ((await runtime.inspect(id)).length === 0 ? true : undefined),
      20_000,
    );
    t.pass();
  },
);

test.serial(
  "the agent's own deploy endpoint runs a workload only when signed with the session's secret and the CP's envelope",
  async (t) => {
    const s = await setup(t);
    if (!s) return;
    const { tcp, agents, runtime } = s;
    const agentId = agents[0]!.agentId;
    const secret = tcp.cp.supervisor.apiSecret(agentId);
    t.truthy(secret, "the CP issued a secret at registration");
    const deploymentId = testDeploymentId();
    t.teardown(() => runtime.remove(deploymentId));
    const command = { deployment_id: deploymentId, app: "direct", compose: SLEEP_COMPOSE };
    const post = (body: Buffer, headers: Record<string, string>) =>
      agentContract.fetch(`${agents[0]!.apiUrl}/api/deploy`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body,
      });
    const bare = Buffer.from(JSON.stringify(command));
    const unsigned = await post(bare, {});
    t.is(unsigned.status, 401);
    t.is(((await unsigned.json()) as { error: { code: string } }).error.code, "EE-AUTH-SIGNATURE");
    const forged = await post(bare, signedHeaders(new Uint8Array(32).fill(7), "POST", "/api/deploy", bare));
    t.is(forged.status, 401);
    // The session's secret alone does not write: whoever holds it (or sees it) may read, not deploy.
    const hmacOnly = await post(bare, signedHeaders(secret!, "POST", "/api/deploy", bare));
    t.is(hmacOnly.status, 403);
    t.is(((await hmacOnly.json()) as { error: { code: string } }).error.code, "EE-ENV-MISSING");
    t.deepEqual(await runtime.inspect(deploymentId), [], "refused writes changed nothing");

    // The agent pins the CP's key as it takes `registered`, which its health then reports.
    await waitFor("the agent registered (its CP key pinned)", async () => {
      const health = await agentContract.fetch(`${agents[0]!.apiUrl}/api/health`);
      return ((await health.json()) as { registered: boolean }).registered || undefined;
    });
    // Signed by the CP's identity key (only the CP holds it), as the CP signs its WebSocket commands.
    const cp = createEnvelopeSigner({
      privateKey: createPrivateKey(readFileSync(join(tcp.dataDir, "cp-identity.key"))),
    });
    const env = cp.sign("deploy", command, agentId);
    const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
    const body = Buffer.from(
      JSON.stringify({
        ...command,
        envelope: {
          cp_pubkey: hex(env.cp_pubkey),
          issued_at: env.issued_at,
          nonce: hex(env.nonce),
          sig: hex(env.sig),
        },
      }),
    );
    const headers = signedHeaders(secret!, "POST", "/api/deploy", body);
    const ok = await post(body, headers);
    t.is(ok.status, 202);
    await waitFor(
      "the direct workload running",
      async () => {
        const snap = (await (
          await agentContract.fetch(`${agents[0]!.apiUrl}/api/state-snapshot`, {
            headers: signedHeaders(secret!, "GET", "/api/state-snapshot", new Uint8Array(0)),
          })
        ).json()) as {
          workload: { step: string } | null;
        };
        return snap.workload?.step === "running" ? true : undefined;
      },
      20_000,
    );
    const replay = await post(body, headers);
    t.is(replay.status, 401);
    t.is(((await replay.json()) as { error: { code: string } }).error.code, "EE-AUTH-REPLAY");
  },
);
