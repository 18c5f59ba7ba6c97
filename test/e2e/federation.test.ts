// Federation end to end on real nats-servers (a hub and a leaf from `eectl nats config`), a master and a dc CP
// and real agents (dev attestation): a dc's agent shows on the master with its dc_id, a deploy sent to the master
// runs behind the dc (Docker) and turns healthy in the master's view, and through a hub outage the dc keeps
// serving while the master marks it degraded, then catches up without duplicates; a master SIGKILLed and
// restarted replays the hub mirror with no gap; the dc's own server down leaves the outbox waiting in SQLite.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import test from "ava";
import { policySchema } from "../../attestation/policy.ts";
import { eectl } from "../helpers/cli.ts";
import {
  ADMIN_TOKEN,
  agentConfig,
  agentState,
  devRoot,
  spawnCp,
  startTestAgent,
  startTestCp,
  type TestCp,
  tempDir,
  waitFor,
} from "../helpers/cluster.ts";
import { requireDocker } from "../helpers/docker.ts";
import {
  agentsOf,
  dc1Federation,
  dcOf,
  dcsOf,
  federation,
  metricOf,
  natsOf,
  recordingLogger,
} from "../helpers/federation.ts";
import { busyboxImage } from "../helpers/images.ts";
import { natsClient, startNatsFederation } from "../helpers/nats.ts";
import { closedPort } from "../helpers/temp.ts";
import { deploymentIn, postJson, SLEEP_COMPOSE, WEB_PORT, webCompose } from "../helpers/workloads.ts";

test.serial(
  "a dc's agents show on the master with their dc_id, direct agents with dc_id master (servers without auth)",
  async (t) => {
    const { master, dc } = await federation(t, { auth: "none" });
    const behind = await startTestAgent(t, agentConfig(t, dc.cp.wsUrl, dc.devDir, { vm_name: "vm-dc1" }));
    const direct = await startTestAgent(
      t,
      agentConfig(t, master.cp.wsUrl, master.devDir, { vm_name: "vm-direct" }),
    );
    const started = Date.now();
    const seen = await waitFor(
      "the dc's agent on the master",
      async () => {
        const agents = await agentsOf(master);
        const a = agents.find((x) => x.agent_id === behind.agentId);
        return a?.state === "registered" ? agents : undefined;
      },
      30_000,
    );
    t.log(`registration on the dc → listed on the master: ${Date.now() - started} ms`);
    t.is(seen.find((a) => a.agent_id === behind.agentId)?.dc_id, "dc1");
    await waitFor("the direct agent", async () =>
      (await agentsOf(master)).find((a) => a.agent_id === direct.agentId && a.state === "registered"),
    );
    t.is((await agentsOf(master)).find((a) => a.agent_id === direct.agentId)?.dc_id, "master");
    t.is((await agentsOf(dc)).find((a) => a.agent_id === behind.agentId)?.dc_id, "dc1");
    const d = await dcOf(master);
    t.is(d?.dc_id, "dc1");
    t.is(d?.status, "healthy");
    t.is(d?.agents.total, 1);
    // Mixed mode: the direct agent came the dcs' way, through the master's own stream on the hub (dc master).
    const own = await dcOf(master, "master");
    t.like(own, { status: "healthy", agents: { total: 1 } });
    t.true(own!.last_seq > 0 && own!.outbox_seq > 0);
    t.deepEqual(await dcsOf(dc), [], "a dc CP has no datacenters of its own");
    // The operator's view: eectl datacenters, and the agents table's DC column.
    const auth = ["--cp", master.cp.url, "--token", ADMIN_TOKEN];
    const dcs = await eectl(["datacenters", "--json", ...auth]);
    t.is(dcs.code, 0, dcs.stderr);
    t.like(JSON.parse(dcs.stdout).datacenters[0], { dc_id: "dc1", status: "healthy" });
    const table = await eectl(["agents", "list", ...auth]);
    t.regex(table.stdout, /^AGENT\s+DC\s+VM/m);
    t.regex(table.stdout, new RegExp(`^${behind.agentId}\\s+dc1\\s+vm-dc1`, "m"));
  },
);

test.serial(
  "a deploy sent to the master for a dc's agent runs behind the dc and turns healthy on the master",
  async (t) => {
    const docker = await requireDocker(t);
    if (!docker) return;
    await busyboxImage(docker);
    const { master, dc } = await federation(t);
    const behind = await startTestAgent(t, agentConfig(t, dc.cp.wsUrl, dc.devDir, { vm_name: "vm-dc1" }));
    await waitFor(
      "the dc's agent on the master",
      async () =>
        (await agentsOf(master)).find((a) => a.agent_id === behind.agentId && a.state === "registered"),
      30_000,
    );
    const res = await postJson<{ deployment_id: string; agent_id: string; status: string }>(
      master.api,
      "/api/v2/deployments",
      {
        app: "web",
        compose: webCompose(),
        health: { port: WEB_PORT, path: "/", timeout_s: 30 },
        agent_id: behind.agentId,
      },
    );
    t.is(res.status, 202, JSON.stringify(res.body));
    t.is(res.body.agent_id, behind.agentId);
    t.is(res.body.status, "pending");
    const id = res.body.deployment_id;
    const started = Date.now();
    const healthy = await deploymentIn(master.api, id, ["healthy", "failed"], 90_000);
    t.log(`deploy on the master → healthy in the master's view: ${Date.now() - started} ms`);
    t.is(healthy.status, "healthy", `${healthy.code}: ${healthy.message}`);
    t.is((healthy as { dc_id?: string }).dc_id, "dc1");
    // The same deployment, under the same id, is the dc's own.
    const onDc = await dc.api<{ status: string; agent_id: string }>(`/api/v2/deployments/${id}`);
    t.is(onDc.body.status, "healthy");
    t.is(onDc.body.agent_id, behind.agentId);
    await waitFor("the agent healthy on the master", async () =>
      (await agentsOf(master)).find((a) => a.agent_id === behind.agentId && a.state === "healthy"),
    );
    // Listed among the master's deployments; undeployed through the master.
    const listed = await master.api<{ deployments: { deployment_id: string }[] }>("/api/v2/deployments");
    t.true(listed.body.deployments.some((d) => d.deployment_id === id));
    const un = await master.api(`/api/v2/deployments/${id}/undeploy`, { method: "POST" });
    t.is(un.status, 202);
    const gone = await deploymentIn(master.api, id, ["undeployed", "failed"], 60_000);
    t.is(gone.status, "undeployed");
    // No agent named and no direct agent: placement chooses among the healthy dcs' agents.
    await waitFor("the agent idle again on the master", async () =>
      (await agentsOf(master)).find((a) => a.agent_id === behind.agentId && a.state === "registered"),
    );
    const placed = await postJson<{ deployment_id: string; agent_id: string }>(
      master.api,
      "/api/v2/deployments",
      {
        app: "sleeper",
        compose: SLEEP_COMPOSE,
      },
    );
    t.is(placed.status, 202, JSON.stringify(placed.body));
    t.is(placed.body.agent_id, behind.agentId);
    const running = await deploymentIn(master.api, placed.body.deployment_id, ["healthy", "failed"], 90_000);
    t.is(running.status, "healthy", `${running.code}: ${running.message}`);
  },
);

test.serial(
  "through a hub outage the dc keeps serving, the master marks it degraded, then catches up once",
  async (t) => {
    const masterLog = recordingLogger();
    const { nats, master, dc } = await federation(t, {
      degradedAfterMs: 3_000,
      lagWarnMs: 2_000,
      masterLog: masterLog.log,
    });
    const first = await startTestAgent(t, agentConfig(t, dc.cp.wsUrl, dc.devDir, { vm_name: "vm-a" }));
    await waitFor(
      "the first agent on the master",
      async () =>
        (await agentsOf(master)).find((a) => a.agent_id === first.agentId && a.state === "registered"),
      30_000,
    );
    await nats.hub.kill();
    const downAt = Date.now();
    await waitFor(
      "the dc degraded on the master",
      async () => (await dcOf(master))?.status === "degraded" || undefined,
      30_000,
    );
    t.log(`hub killed → dc degraded on the master: ${Date.now() - downAt} ms (threshold 3000 ms)`);
    // The seeds' guardrail: lag above --dc-lag-warn-ms is a gauge on /metrics and one warn line.
    const lagGauge = 'ee_federation_dc_lag_above_threshold{dc_id="dc1"}';
    await waitFor(
      "the lag guardrail raised",
      async () => (await metricOf(master, lagGauge)) === 1 || undefined,
    );
    t.true((await metricOf(master, 'ee_federation_dc_lag_seconds{dc_id="dc1"}'))! > 2);
    await waitFor("the guardrail's warn line", async () =>
      masterLog.lines.find((l) => l.msg === "federation: sync lag above the guardrail" && l.level === 40),
    );
    // The dc serves on: a new agent registers there while the master cannot hear of it.
    const second = await startTestAgent(t, agentConfig(t, dc.cp.wsUrl, dc.devDir, { vm_name: "vm-b" }));
    await waitFor("the second agent on the dc", async () =>
      (await agentsOf(dc)).find((a) => a.agent_id === second.agentId && a.state === "registered"),
    );
    t.falsy((await agentsOf(master)).find((a) => a.agent_id === second.agentId));
    // Placement skips a degraded dc, with its reason code.
    const refused = await postJson<{ error: { code: string } }>(master.api, "/api/v2/deployments", {
      app: "web",
      compose: SLEEP_COMPOSE,
      agent_id: first.agentId,
    });
    t.is(refused.status, 409);
    t.is(refused.body.error.code, "EE-PLACE-DC-DEGRADED");
    await nats.hub.start();
    const upAt = Date.now();
    await waitFor(
      "the master caught up",
      async () => {
        const d = await dcOf(master);
        const seen = (await agentsOf(master)).find((a) => a.agent_id === second.agentId);
        return d?.status === "healthy" && seen?.state === "registered" ? d : undefined;
      },
      60_000,
    );
    t.log(`hub back → master caught up (dc healthy, new agent listed): ${Date.now() - upAt} ms`);
    const newest = (await dc.api<{ events: { id: number }[] }>("/api/v2/events?tail=1")).body.events[0]!.id;
    const caughtUp = await waitFor("every dc event applied", async () => {
      const d = await dcOf(master);
      return d && d.outbox_seq >= newest ? d : undefined;
    });
    t.true(caughtUp.lag_s !== null && caughtUp.lag_s < 3, `lag ${caughtUp.lag_s} s`);
    await waitFor(
      "the lag guardrail lowered",
      async () => (await metricOf(master, lagGauge)) === 0 || undefined,
    );
    await waitFor("the guardrail's recovery line", async () =>
      masterLog.lines.find((l) => l.msg === "federation: sync lag back under the guardrail"),
    );
    const warned = masterLog.lines.filter((l) => l.msg === "federation: sync lag above the guardrail");
    t.is(warned.filter((l) => l.dc_id === "dc1").length, 1, "one warn line per crossing, not one per check");
    // The master's own stream is on the hub too (dc master): it lagged as well (and its reader, on the hub,
    // may hiccup once more while the restarted server settles).
    t.true(warned.some((l) => l.dc_id === "master"));
    const ids = (await agentsOf(master)).map((a) => a.agent_id);
    t.is(new Set(ids).size, ids.length, "no agent listed twice");
    t.deepEqual(
      ids.filter((id) => id === first.agentId || id === second.agentId).sort(),
      [first.agentId, second.agentId].sort(),
    );
  },
);

test.serial(
  "the leaf's allow-lists: a dc can neither delete the hub's streams nor speak as another dc",
  async (t) => {
    const { nats, master } = await federation(t);
    await waitFor(
      "dc1 known to the master",
      async () => (await dcOf(master))?.status === "healthy" || undefined,
      30_000,
    );
    const leaf = nats.leaves.get("dc1")!;
    const nc = await natsClient(t, leaf);
    const hubApi = (what: string) => nc.request(`$JS.hub.API.${what}`, "", { timeout: 2_000 });
    // Allowed (the dc's own command stream, which its mirror reads): an answer comes back.
    const info = JSON.parse(new TextDecoder().decode((await hubApi("STREAM.INFO.EE_DOWN_DC1")).data));
    t.is(info.config?.name, "EE_DOWN_DC1");
    // Not on the list: the hub never sees the request.
    await t.throwsAsync(hubApi("STREAM.DELETE.EE_DOWN_DC1"));
    await t.throwsAsync(hubApi("STREAM.DELETE.EE_UP_DC1"));
    await t.throwsAsync(hubApi("STREAM.PURGE.EE_UP_DC1"));
    // Nor read or create anything else: another dc's commands (a hub that got the request would answer "not
    // found", not stay silent), a stream of its own making, a KV bucket.
    await t.throwsAsync(hubApi("CONSUMER.CREATE.EE_DOWN_DC2"));
    await t.throwsAsync(hubApi("STREAM.INFO.EE_DOWN_DC2"));
    await t.throwsAsync(hubApi("STREAM.CREATE.KV_ee_desired"));
    // The desired-state bucket is read-only to a dc: its mirror may read it, nothing may write or purge it.
    const kvInfo = JSON.parse(new TextDecoder().decode((await hubApi("STREAM.INFO.KV_ee_desired")).data));
    t.is(kvInfo.config?.name, "KV_ee_desired");
    const kvLastSeq: number = kvInfo.state.last_seq;
    await t.throwsAsync(nc.request("$KV.ee_desired.snapshot", "{}", { timeout: 2_000 }));
    await t.throwsAsync(hubApi("STREAM.PURGE.KV_ee_desired"));
    await t.throwsAsync(hubApi("STREAM.MSG.DELETE.KV_ee_desired"));
    await t.throwsAsync(hubApi("STREAM.NAMES"));
    await t.throwsAsync(
      nc.request("ee.hello.dc2", JSON.stringify({ dc_id: "dc2", at: Date.now() }), { timeout: 2_000 }),
    );
    const hubNc = await natsClient(t, nats.hub);
    const hubJsm = await jetstreamManager(hubNc);
    t.is((await hubJsm.streams.info("EE_DOWN_DC1")).config.name, "EE_DOWN_DC1", "still there");
    t.is((await hubJsm.streams.info("KV_ee_desired")).state.last_seq, kvLastSeq, "the bucket unwritten");
    t.deepEqual(
      (await dcsOf(master)).map((d) => d.dc_id),
      ["dc1", "master"],
      "no dc2 learned from a spoofed hello",
    );
    // Nor can it write into the master's own stream (mixed mode): the hub would ack a publish it stored.
    await t.throwsAsync(nc.request("ee.up.master.event", "{}", { timeout: 2_000 }));
  },
);

test.serial(
  "a master SIGKILLed while the dc registers an agent shows it once back, every message applied once, no gap",
  async (t) => {
    const nats = await startNatsFederation(t, ["dc1"]);
    const dc = await startTestCp(t, {
      federation: dc1Federation(nats),
    });
    const port = await closedPort();
    const dataDir = tempDir(t, "ee-master-");
    const devDir = await devRoot();
    const masterArgs = ["--role", "master", "--nats", nats.hub.url, "--nats-creds", nats.hub.credsFile!];
    const spawnMaster = () => spawnCp(t, { port, dataDir, devDir, args: masterArgs });
    let master = await spawnMaster();
    const asTestCp = { api: master.api } as TestCp;
    const first = await startTestAgent(t, agentConfig(t, dc.cp.wsUrl, dc.devDir, { vm_name: "vm-1" }));
    await waitFor(
      "the first agent on the master",
      async () =>
        (await agentsOf(asTestCp)).find((a) => a.agent_id === first.agentId && a.state === "registered"),
      30_000,
    );
    await master.kill();
    const second = await startTestAgent(t, agentConfig(t, dc.cp.wsUrl, dc.devDir, { vm_name: "vm-2" }));
    await waitFor("the second agent on the dc", async () =>
      (await agentsOf(dc)).find((a) => a.agent_id === second.agentId && a.state === "registered"),
    );
    const restartedAt = Date.now();
    master = await spawnMaster();
    asTestCp.api = master.api;
    await waitFor(
      "the second agent on the restarted master",
      async () =>
        (await agentsOf(asTestCp)).find((a) => a.agent_id === second.agentId && a.state === "registered"),
      30_000,
    );
    t.log(`master restarted → agent registered while it was down listed: ${Date.now() - restartedAt} ms`);
    const newest = (await dc.api<{ events: { id: number }[] }>("/api/v2/events?tail=1")).body.events[0]!.id;
    const d = await waitFor("every dc event applied", async () => {
      const x = await dcOf(asTestCp);
      return x && x.outbox_seq >= newest ? x : undefined;
    });
    // Replayed from the mirror's first message: each applied once, none skipped, none missing.
    t.is(d.applied, d.last_seq, "every stream sequence from 1 applied: no gap");
    t.is(d.duplicates_skipped, 0);
    const ids = (await agentsOf(asTestCp)).map((a) => a.agent_id).sort();
    t.deepEqual(ids, [first.agentId, second.agentId].sort());
  },
);

test.serial(
  "with the dc's own nats-server down the dc serves on; its outbox reaches the master once the server is back",
  async (t) => {
    const { nats, master, dc } = await federation(t, { degradedAfterMs: 3_000 });
    const leaf = nats.leaves.get("dc1")!;
    await waitFor("dc1 healthy", async () => (await dcOf(master))?.status === "healthy" || undefined, 30_000);
    await leaf.kill();
    const agent = await startTestAgent(t, agentConfig(t, dc.cp.wsUrl, dc.devDir, { vm_name: "vm-offline" }));
    await waitFor("the agent registered on the dc", async () =>
      (await agentsOf(dc)).find((a) => a.agent_id === agent.agentId && a.state === "registered"),
    );
    await waitFor(
      "dc1 degraded",
      async () => (await dcOf(master))?.status === "degraded" || undefined,
      30_000,
    );
    await leaf.start();
    const backAt = Date.now();
    await waitFor(
      "the agent on the master",
      async () =>
        (await agentsOf(master)).find((a) => a.agent_id === agent.agentId && a.state === "registered"),
      60_000,
    );
    t.log(`leaf server back → outbox event on the master: ${Date.now() - backAt} ms`);
    const d = await dcOf(master);
    t.is(d?.status, "healthy");
    t.is(d?.duplicates_skipped, 0);
  },
);

test.serial(
  "a deploy sent while the dc's server is down waits on the hub and runs once the dc is back",
  async (t) => {
    const docker = await requireDocker(t);
    if (!docker) return;
    await busyboxImage(docker);
    // A long threshold: the master still counts the dc healthy while its link is down, so it queues the deploy.
    const { nats, master, dc } = await federation(t, { degradedAfterMs: 120_000 });
    const behind = await startTestAgent(t, agentConfig(t, dc.cp.wsUrl, dc.devDir, { vm_name: "vm-q" }));
    await waitFor(
      "the agent on the master",
      async () =>
        (await agentsOf(master)).find((a) => a.agent_id === behind.agentId && a.state === "registered"),
      30_000,
    );
    const leaf = nats.leaves.get("dc1")!;
    await leaf.kill();
    const res = await postJson<{ deployment_id: string }>(master.api, "/api/v2/deployments", {
      app: "queued",
      compose: SLEEP_COMPOSE,
      agent_id: behind.agentId,
    });
    t.is(res.status, 202, JSON.stringify(res.body));
    const id = res.body.deployment_id;
    t.is((await dc.api(`/api/v2/deployments/${id}`)).status, 404, "not on the dc while its link is down");
    await leaf.start();
    const backAt = Date.now();
    const healthy = await deploymentIn(master.api, id, ["healthy", "failed"], 90_000);
    t.is(healthy.status, "healthy", `${healthy.code}: ${healthy.message}`);
    t.log(`leaf back → queued deploy healthy on the master: ${Date.now() - backAt} ms`);
    const onDc = await dc.api<{ deployments: { deployment_id: string }[] }>("/api/v2/deployments");
    t.is(onDc.body.deployments.filter((d) => d.deployment_id === id).length, 1, "run once");
  },
);

test.serial(
  "desired state: a measurement trusted on the master admits an agent behind the dc; tampered and rolled-back values are refused",
  async (t) => {
    const GOOD = "11".repeat(48);
    const NEW = "22".repeat(48);
    const OTHER = "33".repeat(48);
    const nats = await startNatsFederation(t, ["dc1"]);
    const master = await startTestCp(t, { federation: { role: "master", nats: natsOf(nats.hub) } });
    const dc = await startTestCp(t, {
      policy: policySchema.parse({ mrtd: { mode: "strict", allow: { tiny: [GOOD] } } }),
      federation: dc1Federation(nats, master),
    });
    type Trusted = { trusted: { mrtd: string; added_by: string }[] };
    type Events = { events: { kind: string; data: { code?: string; seq?: number | null } }[] };
    const dcEvents = async (kind: string) =>
      (await dc.api<Events>(`/api/v2/events?kind=${kind}&limit=100`)).body.events;
    // The master's first snapshot (nothing trusted yet) reaches the dc.
    await waitFor(
      "the first snapshot applied",
      async () => (await dcEvents("federation.desired_applied"))[0],
    );
    const hubNc = await natsClient(t, nats.hub);
    const hubJsm = await jetstreamManager(hubNc);
    const current = async () =>
      (await hubJsm.streams.getMessage("KV_ee_desired", { last_by_subj: "$KV.ee_desired.snapshot" }))!.data;
    const first = await current();

    // An agent whose MRTD the dc's policy does not allow is refused there...
    const agent = await startTestAgent(
      t,
      agentConfig(t, dc.cp.wsUrl, dc.devDir, {
        vm_name: "vm-new-image",
        attestation: { provider: "dev", dir: dc.devDir, mrtd: NEW },
      }),
    );
    await waitFor("the agent refused on the dc", async () => (await dcEvents("agent.rejected"))[0]);
    // ...until the master trusts it: the dc trusts it too (from the master) and the agent registers.
    const added = await postJson(master.api, "/api/v2/measurements", { node_size: "tiny", mrtd: NEW });
    t.is(added.status, 201);
    const startedAt = Date.now();
    await waitFor(
      "the agent registered on the dc",
      () => agentState(dc.cp, agent.agentId) === "registered",
      30_000,
    );
    t.log(`trusted on the master → agent registered behind the dc: ${Date.now() - startedAt} ms`);
    const trustedOnDc = (await dc.api<Trusted>("/api/v2/measurements")).body.trusted;
    t.like(
      trustedOnDc.find((e) => e.mrtd === NEW),
      { added_by: "federation:master" },
    );

    // The master's user (or anyone holding the hub) rewrites the value: another MRTD, the signature kept.
    const js = jetstream(hubNc);
    const genuine = JSON.parse(new TextDecoder().decode(await current()));
    await js.publish(
      "$KV.ee_desired.snapshot",
      JSON.stringify({ ...genuine, payload: genuine.payload.replace(NEW, OTHER) }),
    );
    const tampered = await waitFor("the tampered value refused", async () =>
      (await dcEvents("federation.desired_refused")).find((e) => e.data.code === "EE-FED-DESIRED-SIGNATURE"),
    );
    t.is(tampered.data.seq, null);
    // A genuine but older snapshot (the first, nothing trusted) put back: a rollback, refused.
    await js.publish("$KV.ee_desired.snapshot", first);
    const rolledBack = await waitFor("the rollback refused", async () =>
      (await dcEvents("federation.desired_refused")).find((e) => e.data.code === "EE-FED-DESIRED-ROLLBACK"),
    );
    t.is(rolledBack.data.seq, 1);
    const after = (await dc.api<Trusted>("/api/v2/measurements")).body.trusted.map((e) => e.mrtd);
    t.true(after.includes(NEW), "the applied snapshot stands");
    t.false(after.includes(OTHER), "nothing of the tampered value applied");

    // The master withdraws it: the dc follows (a newer snapshot), and only the master's own entry goes.
    const entryId = (
      await master.api<{ trusted: { id: number; mrtd: string }[] }>("/api/v2/measurements")
    ).body.trusted.find((e) => e.mrtd === NEW)!.id;
    t.is((await master.api(`/api/v2/measurements/${entryId}`, { method: "DELETE" })).status, 204);
    await waitFor(
      "the withdrawal applied on the dc",
      async () =>
        (await dc.api<Trusted>("/api/v2/measurements")).body.trusted.every((e) => e.mrtd !== NEW) ||
        undefined,
    );
    // A restarted dc keeps its applied sequence (DATA_DIR/fed-desired.json): the old snapshot is refused again.
    const seqBefore = (await dcEvents("federation.desired_applied")).at(-1)!.data.seq!;
    await dc.cp.stop();
    // Put back while the dc is down: the old snapshot is then the only value its mirror holds at restart.
    await js.publish("$KV.ee_desired.snapshot", first);
    const again = await startTestCp(t, {
      dataDir: dc.dataDir,
      devAttestationDir: dc.devDir,
      federation: dc1Federation(nats, master),
    });
    const refusedAgain = await waitFor("the rollback refused after a restart", async () => {
      const { events } = (await again.api<Events>("/api/v2/events?kind=federation.desired_refused&limit=100"))
        .body;
      return events.filter((e) => e.data.code === "EE-FED-DESIRED-ROLLBACK").length >= 2 ? events : undefined;
    });
    t.is(refusedAgain.at(-1)!.data.seq, 1);
    t.true(seqBefore > 1);
  },
);
