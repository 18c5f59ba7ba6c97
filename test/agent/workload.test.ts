// The workload manager over the real Docker runtime: busybox workloads gated by an HTTP health spec or a settle
// period, failures that leave nothing behind, refusals, and the persisted record. Skipped without Docker.
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import {
  createWorkloads,
  type DeployRequest,
  loadPersistedWorkload,
  PERSIST_FILE,
  type WorkloadStatus,
  type Workloads,
  type WorkloadsOptions,
} from "../../agent/workload.ts";
import { silentLogger } from "../../lib/log.ts";
import { ComposeError, NotFoundError, ValidationError, WorkloadError } from "../../spec/errors.ts";
import type { WorkloadStep } from "../../spec/protocol.ts";
import { cleanupDeployment, requireDocker, testDeploymentId } from "../helpers/docker.ts";
import { busyboxImage, gzipBomb } from "../helpers/images.ts";
import { closedPort, tempDir } from "../helpers/temp.ts";
import { DEAF_PORT, WEB_PORT, webCompose } from "../helpers/workloads.ts";

const ENDS: ReadonlySet<WorkloadStep> = new Set(["running", "failed", "stopped"]);

async function setup(t: ExecutionContext, extra: Partial<WorkloadsOptions> = {}) {
  const docker = await requireDocker(t);
  if (!docker) return null;
  const image = await busyboxImage(docker);
  const runtime = new DockerRuntime({ log: silentLogger });
  const dataDir = tempDir(t);
  const workloads = createWorkloads({
    runtime,
    dataDir,
    log: silentLogger,
    pollMs: 200,
    settleMs: 500,
    ...extra,
  });
  const steps: WorkloadStep[] = [];
  workloads.subscribe((s) => steps.push(s.step));
  t.teardown(() => workloads.stop());
  /** A fresh deployment id, removed from the engine when the test ends. */
  const newId = () => {
    const id = testDeploymentId();
    cleanupDeployment(t, docker, id);
    return id;
  };
  return { docker, image, runtime, dataDir, workloads, steps, newId };
}

/** Resolves with the status once a published step satisfies `done`. */
function until(workloads: Workloads, done: (s: WorkloadStatus) => boolean): Promise<WorkloadStatus> {
  return new Promise((resolve) => {
    const now = workloads.current();
    if (now && done(now)) return resolve(now);
    const off = workloads.subscribe((s) => {
      if (!done(s)) return;
      off();
      resolve(s);
    });
  });
}
const settled = (w: Workloads) => until(w, (s) => ENDS.has(s.step));

test("an httpd workload passes its health gate on its container port, answers, refuses others and undeploys to nothing", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = s.newId();
  const req: DeployRequest = {
    deployment_id: id,
    app: "web",
    compose: webCompose(),
    health: { port: WEB_PORT, path: "/", timeout_s: 20 },
  };
  const first = s.workloads.deploy(req);
  t.like(first, { deployment_id: id, app: "web", step: "pulling", health: req.health });
  t.regex(first.compose_hash, /^[0-9a-f]{64}$/);

  const running = await settled(s.workloads);
  t.is(running.step, "running", running.message);
  t.deepEqual(s.steps, ["pulling", "preparing", "starting", "gating", "running"]);
  t.like(running.images, [{ service: "web" }]);
  t.regex(running.images[0]!.digest, /^sha256:[0-9a-f]{64}$/);
  // Nothing is published: the target is the container's address on the deployment's network.
  const [web] = await s.runtime.inspect(id);
  t.deepEqual(web?.ports, []);
  t.regex(web?.ip ?? "", /^\d+\.\d+\.\d+\.\d+$/);
  t.like(s.workloads.proxyTarget(), { host: web?.ip, port: WEB_PORT });
  const res = await fetch(`http://${web?.ip}:${WEB_PORT}/`);
  t.is(res.status, 200);
  t.is((await res.text()).trim(), "ok");

  t.deepEqual(s.workloads.deploy(req), running, "redeploying the same id answers its status");
  const busy = t.throws(() => s.workloads.deploy({ ...req, deployment_id: s.newId() }), {
    instanceOf: WorkloadError,
  });
  t.is(busy?.code, "EE-WORKLOAD-BUSY");

  const persisted = loadPersistedWorkload(s.dataDir);
  t.like(persisted?.status, { deployment_id: id, step: "running", compose_hash: running.compose_hash });
  t.deepEqual(persisted?.request, {
    deployment_id: id,
    app: "web",
    compose: req.compose,
    health: req.health,
  });
  t.is(statSync(join(s.dataDir, PERSIST_FILE)).mode & 0o777, 0o600);

  const { containers, host } = await s.workloads.stats();
  t.deepEqual(
    containers.map((c) => c.service),
    ["web"],
  );
  t.true(host.cpus > 0 && host.memory_total_bytes > 0);

  t.is(s.workloads.undeploy(id).step, "stopping");
  const stopped = await until(s.workloads, (st) => st.step === "stopped");
  t.is(stopped.deployment_id, id);
  t.deepEqual(await s.runtime.inspect(id), []);
  t.is(s.workloads.proxyTarget(), null);
  t.is(s.workloads.undeploy(id).step, "stopped", "undeploy is idempotent");
  t.is(loadPersistedWorkload(s.dataDir)?.status.step, "stopped");
});

test("a health check that never passes fails with EE-WORKLOAD-HEALTH-TIMEOUT and leaves nothing", async (t) => {
  const s = await setup(t);
  if (!s) return;

  const id = s.newId();
  const began = Date.now();
  s.workloads.deploy({
    deployment_id: id,
    app: "web",
    compose: webCompose(),
    health: { port: DEAF_PORT, path: "/", timeout_s: 2 },
  });
  const failed = await settled(s.workloads);
  t.like(failed, { step: "failed", code: "EE-WORKLOAD-HEALTH-TIMEOUT" });
  t.true(Date.now() - began >= 2000);
  t.deepEqual(s.steps, ["pulling", "preparing", "starting", "gating", "failed"]);
  t.deepEqual(await s.runtime.inspect(id), []);
  t.like(loadPersistedWorkload(s.dataDir)?.status, { step: "failed", code: "EE-WORKLOAD-HEALTH-TIMEOUT" });
});

test("a container that exits at once fails with EE-WORKLOAD-EXITED naming the service and code", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = s.newId();
  s.workloads.deploy({
    deployment_id: id,
    app: "job",
    compose: `services:\n  once:\n    image: ${s.image}\n    command: ["sh", "-c", "exit 3"]\n`,
  });
  const failed = await settled(s.workloads);
  t.like(failed, { step: "failed", code: "EE-WORKLOAD-EXITED" });
  t.regex(failed.message ?? "", /service once exited with code 3/);
  t.deepEqual(await s.runtime.inspect(id), []);
  t.is(s.workloads.proxyTarget(), null);
  const err = await t.throwsAsync(async () => {
    for await (const _ of s.workloads.logs({})) break;
  });
  t.is((err as WorkloadError).code, "EE-WORKLOAD-NONE");
});

test("a deploy without a health spec runs once its containers have settled", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = s.newId();
  s.workloads.deploy({ deployment_id: id, app: "web", compose: webCompose() });
  const running = await settled(s.workloads);
  t.is(running.step, "running", running.message);
  t.is(s.workloads.proxyTarget(), null, "no health port and nothing published: nothing to proxy to");
  const lines: string[] = [];
  for await (const line of s.workloads.logs({ tail: 10 }))
    lines.push(`${line.service} ${line.stream} ${line.text}`);
  t.deepEqual(lines, ["web stdout started"]);
});

test("an invalid compose throws ComposeError synchronously and starts nothing", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = s.newId();
  const bad = (compose: string) =>
    t.throws(() => s.workloads.deploy({ deployment_id: id, app: "web", compose }), {
      instanceOf: ComposeError,
    });
  t.is(bad("services: [")?.code, "EE-COMPOSE-INVALID");
  t.is(
    bad(`services:\n  web:\n    image: ${s.image}\n    privileged: true\n`)?.code,
    "EE-COMPOSE-UNSUPPORTED",
  );
  t.is(
    bad(`services:\n  web:\n    image: ${s.image}\n    volumes: ["/etc:/host-etc"]\n`)?.code,
    "EE-COMPOSE-BIND-MOUNT",
  );
  t.is(s.workloads.current(), null);
  t.deepEqual(s.steps, []);
  t.throws(() => s.workloads.undeploy(id), { instanceOf: NotFoundError });
  t.deepEqual(await s.runtime.inspect(id), []);
  t.is(loadPersistedWorkload(s.dataDir), null);
});

test("a service with a Docker health check runs once the check passes", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = s.newId();
  const compose = `services:
  app:
    image: ${s.image}
    command: ["sh", "-c", "sleep 1 && touch /ready && exec sleep 3600"]
    healthcheck:
      test: ["CMD", "test", "-f", "/ready"]
      interval: 200ms
      timeout: 1s
      retries: 50
`;
  s.workloads.deploy({ deployment_id: id, app: "app", compose });
  const running = await settled(s.workloads);
  t.is(running.step, "running", running.message);
  const [app] = await s.runtime.inspect(id);
  t.is(app?.health, "healthy");
  t.is(s.workloads.proxyTarget(), null, "nothing published, nothing to proxy to");
});

test("a corrupt workload.json is refused, not guessed at", (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, PERSIST_FILE), "{");
  t.throws(() => loadPersistedWorkload(dir), { instanceOf: ValidationError });
  writeFileSync(join(dir, PERSIST_FILE), JSON.stringify({ request: {}, status: {} }));
  t.throws(() => loadPersistedWorkload(dir), { instanceOf: ValidationError });
});

test("a compose publishing a host port is refused by default with EE-COMPOSE-PORTS and starts nothing", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = s.newId();
  const compose = `${webCompose()}\n    ports:\n      - "${await closedPort()}:${WEB_PORT}"\n`;
  const err = t.throws(() => s.workloads.deploy({ deployment_id: id, app: "web", compose }), {
    instanceOf: ComposeError,
  });
  t.is(err?.code, "EE-COMPOSE-PORTS");
  t.is(s.workloads.current(), null);
  t.deepEqual(await s.runtime.inspect(id), []);
});

test("when the policy allows published ports they bind 127.0.0.1 only and the proxy falls back to them", async (t) => {
  const s = await setup(t, { publishedPorts: "loopback" });
  if (!s) return;
  const port = await closedPort();
  const everywhere = `${webCompose()}\n    ports:\n      - "0.0.0.0:${port}:${WEB_PORT}"\n`;
  const wide = t.throws(
    () => s.workloads.deploy({ deployment_id: s.newId(), app: "web", compose: everywhere }),
    { instanceOf: ComposeError },
  );
  t.is(wide?.code, "EE-COMPOSE-PORTS");

  const id = s.newId();
  const compose = `${webCompose()}\n    ports:\n      - "${port}:${WEB_PORT}"\n`;
  s.workloads.deploy({ deployment_id: id, app: "web", compose });
  const running = await settled(s.workloads);
  t.is(running.step, "running", running.message);
  const [web] = await s.runtime.inspect(id);
  const info = await s.docker.getContainer(web!.id).inspect();
  t.deepEqual(info.HostConfig.PortBindings, {
    [`${WEB_PORT}/tcp`]: [{ HostIp: "127.0.0.1", HostPort: `${port}` }],
  });
  t.like(s.workloads.proxyTarget(), { host: "127.0.0.1", port });
  t.is((await (await fetch(`http://127.0.0.1:${port}/`)).text()).trim(), "ok");
});

test("a build context that unpacks past the limit fails EE-COMPOSE-CONTEXT-TOO-LARGE before any image work", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const id = s.newId();
  const context = await gzipBomb(256 * 1024 * 1024);
  s.workloads.deploy({
    deployment_id: id,
    app: "bomb",
    compose: "services:\n  app:\n    build: .\n",
    context,
  });
  const failed = await settled(s.workloads);
  t.like(failed, { step: "failed", code: "EE-COMPOSE-CONTEXT-TOO-LARGE" });
  t.deepEqual(s.steps, ["pulling", "preparing", "failed"]);
  t.false((await s.runtime.deployments()).some((d) => d.deploymentId === id));
});

test("registry_auth serves the pulls only: workload.json never holds it, at any step", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const password = "never-on-disk-0123";
  const host = `127.0.0.1:${await closedPort()}`;
  const written: string[] = [];
  // publish() persists before it calls listeners: each listener call sees the file as that step wrote it.
  s.workloads.subscribe(() => written.push(readFileSync(join(s.dataDir, PERSIST_FILE), "utf8")));
  const req: DeployRequest = {
    deployment_id: s.newId(),
    app: "private",
    compose: `services:\n  app:\n    image: ${host}/private:1\n`,
    registry_auth: { [host]: { username: "u", password } },
  };
  s.workloads.deploy(req);
  const end = await settled(s.workloads);
  t.like(end, { step: "failed", code: "EE-WORKLOAD-PULL-FAILED" });
  t.true(written.length >= 2, `${written.length} writes`);
  for (const text of written) t.false(text.includes(password));
  t.is(req.registry_auth, undefined, "the manager dropped the credentials once the pulls were done");
});

test("a workload.json from before images had digests still loads, with no images known", (t) => {
  const dataDir = tempDir(t);
  const status = {
    deployment_id: "d-old",
    app: "web",
    step: "running",
    compose_hash: "ab".repeat(32),
    images: { web: `sha256:${"cd".repeat(32)}` },
    since: 1,
    health: null,
  };
  const request = { deployment_id: "d-old", app: "web", compose: "services: {}" };
  writeFileSync(join(dataDir, PERSIST_FILE), JSON.stringify({ request, status }));
  t.deepEqual(loadPersistedWorkload(dataDir)?.status.images, []);
});

test("an update in place runs beside the running deployment, takes the proxy once it runs and stops the old one; replaces must name the running one", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const health = { port: WEB_PORT, path: "/", timeout_s: 20 };
  const oldId = s.newId();
  s.workloads.deploy({ deployment_id: oldId, app: "web", compose: webCompose({ text: "v1" }), health });
  t.is((await settled(s.workloads)).step, "running");
  const oldTarget = s.workloads.proxyTarget();
  const seen: string[] = [];
  s.workloads.subscribe((st) => seen.push(`${st.deployment_id === oldId ? "old" : "new"}:${st.step}`));

  const v2 = { app: "web", compose: webCompose({ text: "v2" }), health };
  const err = t.throws(() => s.workloads.deploy({ ...v2, deployment_id: s.newId(), replaces: "d-other" }), {
    instanceOf: WorkloadError,
  });
  t.is(err?.code, "EE-WORKLOAD-BUSY");
  const newId = s.newId();
  t.is(s.workloads.deploy({ ...v2, deployment_id: newId, replaces: oldId }).step, "pulling");
  const second = t.throws(() => s.workloads.deploy({ ...v2, deployment_id: s.newId(), replaces: oldId }), {
    instanceOf: WorkloadError,
  });
  t.is(second?.code, "EE-WORKLOAD-BUSY");
  // Until the switch the old one is the agent's: reported, persisted and proxied to.
  t.is(s.workloads.current()?.deployment_id, oldId);
  t.deepEqual(s.workloads.proxyTarget()?.host, oldTarget?.host);

  await until(s.workloads, (st) => st.deployment_id === oldId && st.step === "stopped");
  t.deepEqual(seen, [
    "new:pulling",
    "new:preparing",
    "new:starting",
    "new:gating",
    "new:running",
    "old:stopping",
    "old:stopped",
  ]);
  t.is(s.workloads.current()?.deployment_id, newId);
  const [web] = await s.runtime.inspect(newId);
  t.like(s.workloads.proxyTarget(), { host: web?.ip, port: WEB_PORT });
  t.deepEqual(await s.runtime.inspect(oldId), []);
  t.is(loadPersistedWorkload(s.dataDir)?.status.deployment_id, newId);
});
