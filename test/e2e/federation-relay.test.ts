// Reads of a dc's agent through the master, relayed over NATS to that dc (issue 17 item 4), on real nats-servers
// (a hub and leaves from `eectl nats config`, password auth and allow-lists), a master and a dc CP and agents
// behind the dc: GET /agents/{id} with the machine fetched live from the dc, stats, plain logs and a follow that
// the dc and the agent stop once the HTTP client leaves; the local path's codes for an unknown or offline agent;
// EE-FED-UNAVAILABLE within seconds when the dc is down; a tenant sees none of it without owning the agent's
// deployment; and the leaf allow-lists keep each dc to its own relay requests and reply space.

import { get, type IncomingMessage } from "node:http";
import type { NatsConnection } from "@nats-io/transport-node";
import test, { type ExecutionContext } from "ava";
import { encodeFrame } from "../../transport/frame.ts";
import {
  ADMIN_TOKEN,
  agentConfig,
  RawAgent,
  startTestAgent,
  startTestCp,
  type TestCp,
  waitFor,
} from "../helpers/cluster.ts";
import { cpContract } from "../helpers/contract.ts";
import { requireDocker } from "../helpers/docker.ts";
import { agentsOf, dc1Federation, natsOf } from "../helpers/federation.ts";
import { busyboxImage } from "../helpers/images.ts";
import { natsClient, startNatsFederation } from "../helpers/nats.ts";
import { deploymentIn, postJson, WEB_PORT, webCompose } from "../helpers/workloads.ts";

type ErrorBody = { error: { code: string; message: string } };
interface AgentWithMachine {
  agent_id: string;
  dc_id?: string;
  state: string;
  machine: { value: unknown; context: Record<string, unknown> };
}

/** A hub, dc1's leaf, a master and dc1's CP; `staleAfterMs` for a hand-driven agent that sends no heartbeat. */
async function relayFederation(t: ExecutionContext, o: { staleAfterMs?: number } = {}) {
  const nats = await startNatsFederation(t, ["dc1"]);
  const master = await startTestCp(t, {
    federation: { role: "master", nats: natsOf(nats.hub), degradedAfterMs: 4_000 },
  });
  const dc = await startTestCp(t, {
    federation: dc1Federation(nats),
    ...(o.staleAfterMs ? { staleAfterMs: o.staleAfterMs } : {}),
  });
  return { nats, master, dc };
}

const onMaster = (master: TestCp, agentId: string, state = "registered") =>
  waitFor(
    `agent ${agentId} ${state} on the master`,
    async () => (await agentsOf(master)).find((a) => a.agent_id === agentId && a.state === state),
    30_000,
  );

async function pendingRequests(cp: TestCp): Promise<number> {
  const metrics = await (await cpContract.fetch(`${cp.cp.url}/metrics`)).text();
  return Number(/^ee_agent_requests_pending (\d+)$/m.exec(metrics)?.[1]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

test.serial(
  "a dc's agent through the master: the agent with its live machine, stats, plain logs and a follow ended by the client",
  async (t) => {
    const docker = await requireDocker(t);
    if (!docker) return t.pass();
    await busyboxImage(docker);
    const { master, dc } = await relayFederation(t);
    const behind = await startTestAgent(t, agentConfig(t, dc.cp.wsUrl, dc.devDir, { vm_name: "vm-dc1" }));
    await onMaster(master, behind.agentId);

    // The agent as the master shows it: its dc, and the machine as the dc's live actor holds it.
    const shown = await master.api<AgentWithMachine>(`/api/v2/agents/${behind.agentId}`);
    t.is(shown.status, 200, JSON.stringify(shown.body));
    t.is(shown.body.dc_id, "dc1");
    const onDc = await dc.api<AgentWithMachine>(`/api/v2/agents/${behind.agentId}`);
    t.deepEqual(shown.body.machine.value, onDc.body.machine.value);
    t.is(shown.body.machine.context.agentId, behind.agentId);

    const res = await postJson<{ deployment_id: string }>(master.api, "/api/v2/deployments", {
      app: "web",
      compose: webCompose(),
      health: { port: WEB_PORT, path: "/", timeout_s: 30 },
      agent_id: behind.agentId,
    });
    t.is(res.status, 202, JSON.stringify(res.body));
    const healthy = await deploymentIn(master.api, res.body.deployment_id, ["healthy", "failed"], 90_000);
    t.is(healthy.status, "healthy", `${healthy.code}: ${healthy.message}`);

    const stats = await master.api<{ containers: { service: string }[] }>(
      `/api/v2/agents/${behind.agentId}/stats`,
    );
    t.is(stats.status, 200, JSON.stringify(stats.body));
    t.deepEqual(
      stats.body.containers.map((c) => c.service),
      ["web"],
    );
    const snapshot = await master.api<{ agent_id: string }>(`/api/v2/agents/${behind.agentId}/snapshot`);
    t.is(snapshot.status, 200);
    t.is(snapshot.body.agent_id, behind.agentId, "the agent's own view of itself");

    const logs = await waitFor(
      "the workload's log line through the master",
      async () => {
        const r = await master.api<{ lines: { text: string; service: string }[] }>(
          `/api/v2/agents/${behind.agentId}/logs?tail=1000`,
        );
        return r.body.lines?.some((l) => l.text.includes("started")) ? r : undefined;
      },
      30_000,
    );
    t.is(logs.status, 200);
    t.is(logs.body.lines[0]?.service, "web");

    // Follow: ndjson from the dc until the client leaves; then the master cancels, the dc cancels the agent's.
    const abort = new AbortController();
    const follow = await cpContract.fetch(
      `${master.cp.url}/api/v2/agents/${behind.agentId}/logs?follow=true&tail=5`,
      { headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, signal: abort.signal },
    );
    t.is(follow.status, 200);
    t.is(follow.headers.get("content-type"), "application/x-ndjson");
    const reader = follow.body!.getReader();
    let seen = "";
    // The first whole line (health checks add lines of their own, so "started" may be past the tail).
    while (!seen.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += Buffer.from(value).toString("utf8");
    }
    t.is((JSON.parse(seen.split("\n")[0]!) as { service: string }).service, "web");
    t.is(await pendingRequests(dc), 1, "the dc follows the agent's logs for the master");
    abort.abort();
    const leftAt = Date.now();
    await waitFor(
      "the dc's follow of the agent to end",
      async () => (await pendingRequests(dc)) === 0 || undefined,
      30_000,
    );
    t.log(`client gone → the dc's agent follow cancelled: ${Date.now() - leftAt} ms`);
  },
);

test.serial(
  "through the master: a follow's first line, then the client leaves and the agent is sent cancel; error codes stay the local path's",
  async (t) => {
    const { master, dc } = await relayFederation(t, { staleAfterMs: 120_000 });
    const agent = await RawAgent.connect(t, dc.cp.wsUrl);
    await agent.register(dc.devDir);
    await onMaster(master, agent.agentId);

    const shown = await master.api<AgentWithMachine>(`/api/v2/agents/${agent.agentId}`);
    t.is(shown.status, 200, JSON.stringify(shown.body));
    t.is(shown.body.dc_id, "dc1");
    t.truthy(shown.body.machine.value);

    // Stats: asked of the agent by the dc, the agent's answer relayed as it is.
    const stats = master.api<{ containers: unknown[]; host: { uptime_s: number } }>(
      `/api/v2/agents/${agent.agentId}/stats`,
    );
    const asked = await agent.next("stats", 15_000);
    agent.ws.send(
      encodeFrame("reply", { result: { containers: [], host: { uptime_s: 42 } } }, { re: asked.id! }),
    );
    t.deepEqual((await stats).body, { containers: [], host: { uptime_s: 42 } });

    // Relay latency of a stats read, the agent answering at once: through the master against on the dc.
    const times = { master: [] as number[], dc: [] as number[] };
    for (let i = 0; i < 20; i++)
      for (const [name, cp] of [
        ["master", master],
        ["dc", dc],
      ] as const) {
        const started = performance.now();
        const read = cp.api(`/api/v2/agents/${agent.agentId}/stats`);
        const frame = await agent.next("stats", 15_000);
        agent.ws.send(encodeFrame("reply", { result: { containers: [] } }, { re: frame.id! }));
        t.is((await read).status, 200);
        times[name].push(performance.now() - started);
      }
    t.log(
      `stats read median: ${median(times.dc).toFixed(1)} ms on the dc, ${median(times.master).toFixed(1)} ms through the master`,
    );

    // An error the agent answers keeps its code and status through the relay.
    const logsRefused = master.api<ErrorBody>(`/api/v2/agents/${agent.agentId}/logs?tail=5`);
    const logsAsked = await agent.next("logs", 15_000);
    agent.ws.send(
      encodeFrame(
        "error",
        { code: "EE-WORKLOAD-NONE", message: "no workload is deployed" },
        { re: logsAsked.id! },
      ),
    );
    const refused = await logsRefused;
    t.is(refused.status, 422);
    t.is(refused.body.error.code, "EE-WORKLOAD-NONE");

    // A follow: headers and the first line, then the client goes away; the agent is told to stop.
    const response = new Promise<IncomingMessage>((resolve, reject) =>
      get(
        `${master.cp.url}/api/v2/agents/${agent.agentId}/logs?follow=true`,
        { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
        resolve,
      ).on("error", reject),
    );
    const { id } = await agent.next("logs", 15_000);
    const line = { service: "web", stream: "stdout" as const, ts: "2026-01-01T00:00:00.000Z", text: "hello" };
    agent.ws.send(encodeFrame("log_chunk", { lines: [line], done: false }, { re: id! }));
    const res = await response;
    t.is(res.statusCode, 200);
    res.setEncoding("utf8");
    const first = await new Promise<string>((resolve) => res.once("data", resolve));
    t.deepEqual(JSON.parse(first.split("\n")[0]!), line);
    res.destroy();
    const cancel = await agent.next("cancel", 15_000);
    t.is(cancel.re, id, "the agent's follow is cancelled");
    await waitFor(
      "nothing pending on the dc",
      async () => (await pendingRequests(dc)) === 0 || undefined,
      30_000,
    );

    // Unknown everywhere: the local path's 404. Known but offline: the dc's code, as the dc answers it.
    const unknown = await master.api<ErrorBody>(`/api/v2/agents/agt_${"0".repeat(24)}/stats`);
    t.is(unknown.status, 404);
    t.is(unknown.body.error.code, "EE-NOT-FOUND");
    agent.ws.terminate();
    await waitFor(
      "the agent disconnected on the dc",
      async () =>
        (await agentsOf(dc)).find(
          (a) => a.agent_id === agent.agentId && (a as { connected?: boolean }).connected === false,
        ),
      30_000,
    );
    const offlineOnDc = await dc.api<ErrorBody>(`/api/v2/agents/${agent.agentId}/stats`);
    const offline = await master.api<ErrorBody>(`/api/v2/agents/${agent.agentId}/stats`);
    t.is(offline.status, offlineOnDc.status);
    t.is(offline.body.error.code, offlineOnDc.body.error.code);
    t.is(offline.body.error.code, "EE-WORKLOAD-AGENT-LOST");
  },
);

test.serial(
  "a dc that is down answers EE-FED-UNAVAILABLE naming it within seconds, not a hang",
  async (t) => {
    const { nats, master, dc } = await relayFederation(t, { staleAfterMs: 120_000 });
    const agent = await RawAgent.connect(t, dc.cp.wsUrl);
    await agent.register(dc.devDir);
    await onMaster(master, agent.agentId);
    const expectUnavailable = async (what: string, path: string) => {
      const started = Date.now();
      const r = await master.api<ErrorBody>(path);
      const ms = Date.now() - started;
      t.is(r.status, 503, `${what}: ${JSON.stringify(r.body)}`);
      t.is(r.body.error.code, "EE-FED-UNAVAILABLE");
      t.regex(r.body.error.message, /dc dc1/);
      t.true(ms < 10_000, `${what}: ${ms} ms`);
      return ms;
    };
    // The dc's CP gone (its nats-server up).
    await dc.cp.stop();
    const cpDown = await expectUnavailable("dc CP down", `/api/v2/agents/${agent.agentId}`);
    // The dc's nats-server gone too: nobody behind the leaf link at all.
    await nats.leaves.get("dc1")!.kill();
    const leafDown = await expectUnavailable("leaf down", `/api/v2/agents/${agent.agentId}/stats`);
    const follow = await expectUnavailable("leaf down", `/api/v2/agents/${agent.agentId}/logs?follow=true`);
    await expectUnavailable("leaf down", `/api/v2/agents/${agent.agentId}/snapshot`);
    t.log(`dc CP down → 503 in ${cpDown} ms; leaf down → 503 in ${leafDown} ms (follow ${follow} ms)`);
  },
);

test.serial(
  "a tenant reads a dc's agent only when it owns the agent's deployment; the dc is asked nothing otherwise",
  async (t) => {
    const { master, dc } = await relayFederation(t, { staleAfterMs: 120_000 });
    const agent = await RawAgent.connect(t, dc.cp.wsUrl);
    await agent.register(dc.devDir);
    await onMaster(master, agent.agentId);
    const account = await postJson<{ account_id: string }>(master.api, "/api/v2/accounts", {
      name: "tenant-a",
      kind: "tenant",
    });
    t.is(account.status, 201, JSON.stringify(account.body));
    const key = await postJson<{ token: string }>(
      master.api,
      `/api/v2/accounts/${account.body.account_id}/keys`,
      { scopes: ["read"] },
    );
    t.is(key.status, 201, JSON.stringify(key.body));
    for (const path of ["", "/stats", "/snapshot", "/logs?tail=1"]) {
      const r = await master.api<ErrorBody>(`/api/v2/agents/${agent.agentId}${path}`, {
        token: key.body.token,
      });
      t.is(r.status, 404, path);
      t.is(r.body.error.code, "EE-NOT-FOUND");
    }
    // Had the master relayed any of them, the dc would have asked the agent by now.
    const stats = master.api(`/api/v2/agents/${agent.agentId}/stats`);
    const asked = await agent.next("stats", 15_000);
    t.deepEqual(
      agent.frames.filter((f) => f.type === "stats" || f.type === "snapshot" || f.type === "logs"),
      [],
      "nothing but the admin's read reached the agent",
    );
    agent.ws.send(encodeFrame("reply", { result: { containers: [] } }, { re: asked.id! }));
    t.is((await stats).status, 200);
  },
);

/** Every subject `nc` receives on `pattern`, in order. */
function received(nc: NatsConnection, pattern: string): string[] {
  const out: string[] = [];
  nc.subscribe(pattern, {
    callback: (_err, m) => {
      out.push(m.subject);
    },
  });
  return out;
}

/**
 * Publishes `marker` from `nc` until `got` has it (subscription interest crosses the leaf link asynchronously).
 * Core NATS keeps one connection's messages in order, so anything published before a delivered marker that was
 * allowed through would have arrived before it.
 */
async function untilMarker(nc: NatsConnection, marker: string, got: string[], before: () => void) {
  await waitFor(
    `${marker} delivered`,
    async () => {
      before();
      nc.publish(marker, "m");
      await nc.flush();
      await new Promise((r) => setTimeout(r, 50));
      return got.includes(marker) || undefined;
    },
    20_000,
  );
}

test.serial(
  "the leaf's allow-lists: a dc receives only its own relay requests, sends none, and answers only into its own reply space",
  async (t) => {
    const nats = await startNatsFederation(t, ["dc1", "dc2"]);
    const hub = await natsClient(t, nats.hub);
    const dc1 = await natsClient(t, nats.leaves.get("dc1")!);
    const dc2 = await natsClient(t, nats.leaves.get("dc2")!);
    const onDc1 = received(dc1, "ee.relay.>");
    const onDc2 = received(dc2, "ee.relay.>");
    await Promise.all([dc1.flush(), dc2.flush(), hub.flush()]);

    // The master asks dc2: dc2 receives it, dc1 never does (dc1's own request, sent after, is its marker).
    await untilMarker(hub, "ee.relay.dc2.read", onDc2, () => {});
    await untilMarker(hub, "ee.relay.dc1.read", onDc1, () => hub.publish("ee.relay.dc2.ctl", "x"));
    t.deepEqual(
      onDc1.filter((s) => !s.startsWith("ee.relay.dc1.")),
      [],
      "dc1 got none of dc2's relay requests",
    );
    t.true(onDc2.includes("ee.relay.dc2.read"));

    // dc1 may answer into its own reply space (the marker), nothing else: no relay request to dc2 or itself,
    // no answer in dc2's name. A listener of its own on the hub, so the master's requests above are not in it.
    const hubListener = await natsClient(t, nats.hub);
    const onHub = received(hubListener, "ee.relay.>");
    const replies = received(hubListener, "ee.reply.>");
    await hubListener.flush();
    await untilMarker(dc1, "ee.reply.dc1.marker", replies, () => {
      dc1.publish("ee.relay.dc2.forged", "{}", { reply: "ee.reply.dc1.x" });
      dc1.publish("ee.relay.dc1.forged", "{}");
      dc1.publish("ee.reply.dc2.spoofed", "{}");
    });
    t.deepEqual(
      replies.filter((s) => s !== "ee.reply.dc1.marker"),
      [],
      "no answer in another dc's name reached the hub",
    );
    t.deepEqual(onHub, [], "dc1's relay requests never reached the hub");
    t.false(onDc2.includes("ee.relay.dc2.forged"), "nor dc2");
  },
);
