// Re-adoption after an agent restart, over the real Docker runtime: manager A deploys and stops (its containers
// keep running), manager B on the same data dir restores. A running workload is adopted untouched; one that died
// meanwhile, a deploy cut off while gating and a half-done undeploy are removed; orphans go. Skipped without Docker.
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import { LABELS, type WorkloadRuntime } from "../../agent/runtime/runtime.ts";
import {
  createWorkloads,
  loadPersistedWorkload,
  PERSIST_FILE,
  type WorkloadStatus,
  type Workloads,
} from "../../agent/workload.ts";
import { parseCompose } from "../../compose/compose.ts";
import { silentLogger } from "../../lib/log.ts";
import { WorkloadError } from "../../spec/errors.ts";
import type { HealthSpec, WorkloadStep } from "../../spec/protocol.ts";
import { cleanupDeployment, requireDocker, testDeploymentId } from "../helpers/docker.ts";
import { busyboxImage } from "../helpers/images.ts";
import { tempDir } from "../helpers/temp.ts";
import { DEAF_PORT, WEB_PORT, webCompose } from "../helpers/workloads.ts";

async function setup(t: ExecutionContext) {
  const docker = await requireDocker(t);
  if (!docker) return null;
  const image = await busyboxImage(docker);
  // Other test processes deploy on the same engine at the same time; an owner scopes what this "agent" judges
  // (restore removes every deployment of its own it does not know), as each real agent's runtime is scoped.
  const runtime = new DockerRuntime({ log: silentLogger, owner: `test-${randomBytes(6).toString("hex")}` });
  const engine: WorkloadRuntime = runtime;
  const dataDir = tempDir(t);
  /** A manager on the shared data dir and engine: a new one is a restarted agent. */
  const manager = () => {
    const workloads = createWorkloads({
      runtime: engine,
      dataDir,
      log: silentLogger,
      pollMs: 200,
      settleMs: 500,
    });
    t.teardown(() => workloads.stop());
    return workloads;
  };
  /**
   * Deploys the web workload with manager A, waits for `step` and stops A: the agent goes away, what it
   * started keeps running. Returns the status A reached.
   */
  const deployThenStop = async (id: string, health?: HealthSpec, step: WorkloadStep = "running") => {
    const a = manager();
    a.deploy({ deployment_id: id, app: "web", compose: webCompose(), ...(health ? { health } : {}) });
    const status = await reached(a, step);
    await a.stop();
    return status;
  };
  /** A fresh deployment id, removed from the engine when the test ends. */
  const newId = () => {
    const id = testDeploymentId();
    cleanupDeployment(t, docker, id);
    return id;
  };
  /** Whether the engine holds anything (container, network, volume) labelled with the id. */
  const onEngine = async (id: string) => (await runtime.deployments()).some((d) => d.deploymentId === id);
  return { docker, image, runtime, engine, dataDir, manager, deployThenStop, newId, onEngine };
}

/** Resolves with the status once the workload publishes `step`. */
function reached(workloads: Workloads, step: WorkloadStep): Promise<WorkloadStatus> {
  return new Promise((resolve) => {
    const now = workloads.current();
    if (now?.step === step) return resolve(now);
    const off = workloads.subscribe((s) => {
      if (s.step !== step) return;
      off();
      resolve(s);
    });
  });
}

test("a running workload is re-adopted untouched by a restarted manager and undeploys through it", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = s.newId();
  const running = await s.deployThenStop(id, { port: WEB_PORT, path: "/", timeout_s: 20 });
  const before = (await s.runtime.inspect(id)).map((c) => [c.id, c.startedAt]);
  t.is(before.length, 1);

  const b = s.manager();
  const published: WorkloadStatus[] = [];
  b.subscribe((st) => published.push(st));
  const restored = await b.restore();
  t.deepEqual(restored, running, "same step, since, images and compose hash as before the restart");
  t.deepEqual(published, [running], "the outcome is published like a step");
  t.deepEqual(b.current(), running);
  t.deepEqual(
    (await s.runtime.inspect(id)).map((c) => [c.id, c.startedAt]),
    before,
    "neither restarted nor recreated",
  );
  // The proxy target is looked up again at restore: the container's address, nothing published.
  const [web] = await s.runtime.inspect(id);
  t.like(b.proxyTarget(), { host: web?.ip, port: WEB_PORT });
  const res = await fetch(`http://${web?.ip}:${WEB_PORT}/`);
  t.is(res.status, 200);
  t.is((await res.text()).trim(), "ok");
  t.is(loadPersistedWorkload(s.dataDir)?.status.step, "running");
  const busy = t.throws(() => b.deploy({ deployment_id: s.newId(), app: "x", compose: webCompose() }), {
    instanceOf: WorkloadError,
  });
  t.is(busy?.code, "EE-WORKLOAD-BUSY", "the adopted workload holds the agent");

  t.is(b.undeploy(id).step, "stopping");
  await reached(b, "stopped");
  t.false(await s.onEngine(id), "undeploy through the new manager removes everything");
  t.is(b.proxyTarget(), null);
  t.is(loadPersistedWorkload(s.dataDir)?.status.step, "stopped");
});

test("a workload whose address changed while the agent was away is proxied to its new address", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = s.newId();
  await s.deployThenStop(id, { port: WEB_PORT, path: "/", timeout_s: 20 });
  const [web] = await s.runtime.inspect(id);
  const before = web?.ip;
  // Off the network and back on while another container holds its old address: it comes back elsewhere.
  const network = s.docker.getNetwork(`ee-${id}`);
  await network.disconnect({ Container: web!.id });
  const squatter = await s.docker.createContainer({
    Image: s.image,
    Cmd: ["sleep", "300"],
    Labels: { [LABELS.deployment]: id },
    HostConfig: { NetworkMode: `ee-${id}` },
  });
  await squatter.start();
  await network.connect({ Container: web!.id, EndpointConfig: { Aliases: ["web"] } });
  await squatter.remove({ force: true });
  const [moved] = await s.runtime.inspect(id);
  t.truthy(moved?.ip);
  t.not(moved?.ip, before, "the container has a new address");

  const b = s.manager();
  t.is((await b.restore())?.step, "running");
  t.like(b.proxyTarget(), { host: moved?.ip, port: WEB_PORT });
  t.is((await (await fetch(`http://${moved?.ip}:${WEB_PORT}/`)).text()).trim(), "ok");
});

test("a workload whose container died while the agent was away fails EE-WORKLOAD-EXITED and is removed", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = s.newId();
  await s.deployThenStop(id, { port: WEB_PORT, path: "/", timeout_s: 20 });
  const [web] = await s.runtime.inspect(id);
  await s.docker.getContainer(web?.id ?? "").kill();

  const b = s.manager();
  const restored = await b.restore();
  t.like(restored, { deployment_id: id, step: "failed", code: "EE-WORKLOAD-EXITED" });
  t.regex(restored?.message ?? "", /web \(exited\)/);
  t.false(await s.onEngine(id), "nothing left");
  t.is(b.proxyTarget(), null);
  t.like(loadPersistedWorkload(s.dataDir)?.status, { step: "failed", code: "EE-WORKLOAD-EXITED" });
  t.is(b.undeploy(id).step, "failed", "undeploying what is over answers its status");
});

test("a deploy cut off while gating fails EE-WORKLOAD-INTERRUPTED and leaves nothing", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = s.newId();
  await s.deployThenStop(id, { port: DEAF_PORT, path: "/", timeout_s: 120 }, "gating");
  t.is(loadPersistedWorkload(s.dataDir)?.status.step, "gating");
  t.true(await s.onEngine(id), "the interrupted deploy left containers");

  const b = s.manager();
  const restored = await b.restore();
  t.like(restored, { deployment_id: id, step: "failed", code: "EE-WORKLOAD-INTERRUPTED" });
  t.regex(restored?.message ?? "", /while the deploy was gating/);
  t.false(await s.onEngine(id));
  t.like(loadPersistedWorkload(s.dataDir)?.status, { step: "failed", code: "EE-WORKLOAD-INTERRUPTED" });
  b.deploy({ deployment_id: s.newId(), app: "web", compose: webCompose() });
  t.is((await reached(b, "running")).app, "web", "the agent is free for the next deployment");
});

test("an undeploy cut off while stopping is finished at restore", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = s.newId();
  await s.deployThenStop(id);
  // As if the agent died right after persisting `stopping`, before the engine removed anything.
  const file = join(s.dataDir, PERSIST_FILE);
  const record = JSON.parse(readFileSync(file, "utf8"));
  record.status.step = "stopping";
  writeFileSync(file, JSON.stringify(record));

  const restored = await s.manager().restore();
  t.like(restored, { deployment_id: id, step: "stopped" });
  t.is(restored?.code, undefined);
  t.false(await s.onEngine(id));
});

test("a deployment over before the restart is kept as it was, and orphans on the engine are removed", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = s.newId();
  const a = s.manager();
  const compose = `services:\n  app:\n    image: ${s.image}\n    command: ["sleep", "3600"]\n`;
  a.deploy({ deployment_id: id, app: "app", compose });
  await reached(a, "running");
  a.undeploy(id);
  const stopped = await reached(a, "stopped");
  await a.stop();
  // A crash between creating a deployment and persisting it leaves containers nobody knows.
  const orphan = s.newId();
  await s.engine.start({
    deploymentId: orphan,
    app: "orphan",
    project: parseCompose(compose, { bindAllowlist: [] }),
    composeHash: "0".repeat(64),
  });
  t.true(await s.onEngine(orphan));

  const b = s.manager();
  t.deepEqual(await b.restore(), stopped, "the CP may still need to learn this outcome");
  t.false(await s.onEngine(orphan), "the orphan is removed");
  t.deepEqual(b.current(), stopped);
});

test("an unreadable record starts the manager empty", async (t) => {
  const s = await setup(t);
  if (!s) return;
  writeFileSync(join(s.dataDir, PERSIST_FILE), "{");
  const b = s.manager();
  t.is(await b.restore(), null);
  t.is(b.current(), null);
});
