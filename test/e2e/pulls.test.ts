// Images pulled from a real registry end to end: Debian's docker-registry on a loopback port (plain, or htpasswd
// behind TLS), images pushed to it through the Engine API, a real CP and agent deploying them over REST. Covers
// pulls by tag and by digest, the codes of a wrong digest, a missing image, bad credentials and a registry that
// goes away mid-pull, and that a failed pull leaves nothing behind.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import type Docker from "dockerode";
import { LABELS } from "../../agent/runtime/runtime.ts";
import { agentConfig, startTestAgent, startTestCp, type TestCp, waitFor } from "../helpers/cluster.ts";
import { requireDocker } from "../helpers/docker.ts";
import { BUSYBOX_IMAGE, bigImage, busyboxImage } from "../helpers/images.ts";
import { engineLacks, pushImage, registryAvailable, startRegistry } from "../helpers/registry.ts";
import {
  type DeploymentJson,
  deploymentIn,
  postJson,
  SLEEP_COMPOSE,
  WEB_PORT,
  webCompose,
} from "../helpers/workloads.ts";

const CREDS = { username: "ee-user", password: "s3cret-pull-password" };

async function setup(t: ExecutionContext, registryOpts: Parameters<typeof startRegistry>[1] = {}) {
  const docker = await requireDocker(t);
  if (!docker || !registryAvailable(t)) return null;
  await busyboxImage(docker);
  const registry = await startRegistry(t, registryOpts);
  // The agent runs in this process: a loaded machine can stall its heartbeats past the default second.
  const tcp = await startTestCp(t, { staleAfterMs: 30_000 });
  const config = agentConfig(t, tcp.cp.wsUrl, tcp.devDir, { vm_name: "vm-pull" });
  const agent = await startTestAgent(t, config);
  await waitFor("registration", () => tcp.cp.index.get(agent.agentId)?.state === "registered");
  return { docker, registry, tcp, agent, agentDataDir: config.data_dir };
}

/** A unique repository per test: tests share one engine, and a pull must not find another test's image. */
const repo = (t: ExecutionContext, name: string) =>
  `${name}-${Buffer.from(t.title).toString("hex").slice(0, 12)}-${process.hrtime.bigint() % 100000n}`;

async function deploy(tcp: TestCp, body: Record<string, unknown>) {
  const res = await postJson<Record<string, unknown>>(tcp.api, "/api/v2/deployments", body);
  return res;
}

/** Nothing labelled with the deployment is left on the engine. */
async function nothingLeft(docker: Docker, id: string): Promise<boolean> {
  const filters = { label: [`${LABELS.deployment}=${id}`] };
  const [containers, networks] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
  ]);
  return containers.length === 0 && networks.length === 0;
}

async function failsWith(
  t: ExecutionContext,
  s: { tcp: TestCp; docker: Docker },
  body: Record<string, unknown>,
  code: string,
): Promise<DeploymentJson> {
  const res = await deploy(s.tcp, body);
  t.is(res.status, 202, JSON.stringify(res.body));
  const id = res.body.deployment_id as string;
  const failed = await deploymentIn(s.tcp.api, id, ["failed", "healthy"], 60_000);
  t.is(failed.status, "failed");
  t.is(failed.code, code, failed.message ?? "");
  t.true(failed.progress.some((p) => p.step === "pulling"));
  t.true(await nothingLeft(s.docker, id), "no container or network is left behind");
  return failed;
}

const sleepOn = (ref: string) => SLEEP_COMPOSE.replace(BUSYBOX_IMAGE, ref);

test("an image pulled by tag runs, is reported with its registry digest, and goes with the undeploy", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const name = repo(t, "web");
  // 30 MB no engine has seen: the pull measured below downloads it all.
  const big = await bigImage(s.docker, 30 * 1024 * 1024);
  const pushed = await pushImage(s.docker, s.registry, big, `${name}:1.0`);
  await s.docker.getImage(big).remove({ force: true });
  t.true(await engineLacks(s.docker, `${s.registry.host}/${name}`));
  const posted = Date.now();
  const res = await deploy(s.tcp, {
    app: "pulled",
    compose: webCompose().replace(BUSYBOX_IMAGE, pushed.ref),
    health: { port: WEB_PORT, path: "/", timeout_s: 30 },
  });
  t.is(res.status, 202, JSON.stringify(res.body));
  const id = res.body.deployment_id as string;
  const healthy = await deploymentIn(s.tcp.api, id, ["healthy", "failed"], 60_000);
  t.is(healthy.status, "healthy", `${healthy.code}: ${healthy.message}`);
  t.deepEqual(healthy.images, [{ service: "web", ref: pushed.ref, digest: pushed.digest }]);
  const steps = healthy.progress.map((p) => p.step);
  t.deepEqual(steps, ["dispatched", "pulling", "preparing", "starting", "gating", "running"]);
  const at = (step: string) => Date.parse(healthy.progress.find((p) => p.step === step)!.at);
  t.log(`pull of 30 MB ${at("preparing") - at("pulling")} ms; POST to healthy ${Date.now() - posted} ms`);
  t.false(await engineLacks(s.docker, `${s.registry.host}/${name}`));

  const undeploy = await s.tcp.api(`/api/v2/deployments/${id}/undeploy`, { method: "POST" });
  t.is(undeploy.status, 202);
  await deploymentIn(s.tcp.api, id, ["undeployed"]);
  t.true(await engineLacks(s.docker, `${s.registry.host}/${name}`), "the pulled image went with it");
});

test("an image pinned by digest runs and reports that digest", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const name = repo(t, "pinned");
  const pushed = await pushImage(s.docker, s.registry, BUSYBOX_IMAGE, `${name}:1.0`);
  const ref = `${s.registry.host}/${name}@${pushed.digest}`;
  const res = await deploy(s.tcp, { app: "pinned", compose: sleepOn(ref) });
  t.is(res.status, 202, JSON.stringify(res.body));
  const healthy = await deploymentIn(
    s.tcp.api,
    res.body.deployment_id as string,
    ["healthy", "failed"],
    60_000,
  );
  t.is(healthy.status, "healthy", `${healthy.code}: ${healthy.message}`);
  t.deepEqual(healthy.images, [{ service: "app", ref, digest: pushed.digest }]);
});

test("a digest the registry does not have fails with EE-WORKLOAD-DIGEST-MISMATCH", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const name = repo(t, "wrong");
  await pushImage(s.docker, s.registry, BUSYBOX_IMAGE, `${name}:1.0`);
  const ref = `${s.registry.host}/${name}@sha256:${"0".repeat(64)}`;
  await failsWith(t, s, { app: "wrong", compose: sleepOn(ref) }, "EE-WORKLOAD-DIGEST-MISMATCH");
});

test("an image the registry does not have fails with EE-WORKLOAD-IMAGE-MISSING", async (t) => {
  const s = await setup(t);
  if (!s) return;
  const ref = `${s.registry.host}/${repo(t, "absent")}:1.0`;
  const failed = await failsWith(t, s, { app: "absent", compose: sleepOn(ref) }, "EE-WORKLOAD-IMAGE-MISSING");
  t.regex(failed.message ?? "", /absent/);
});

test("registry_auth opens an htpasswd registry behind TLS, and is never echoed or stored", async (t) => {
  const s = await setup(t, { auth: CREDS });
  if (!s) return;
  const name = repo(t, "private");
  const pushed = await pushImage(s.docker, s.registry, BUSYBOX_IMAGE, `${name}:1.0`);
  const res = await deploy(s.tcp, {
    app: "private",
    compose: sleepOn(pushed.ref),
    registry_auth: { [s.registry.host]: CREDS },
  });
  t.is(res.status, 202, JSON.stringify(res.body));
  const id = res.body.deployment_id as string;
  const healthy = await deploymentIn(s.tcp.api, id, ["healthy", "failed"], 60_000);
  t.is(healthy.status, "healthy", `${healthy.code}: ${healthy.message}`);
  t.deepEqual(healthy.images, [{ service: "app", ref: pushed.ref, digest: pushed.digest }]);
  t.false(JSON.stringify(res.body).includes(CREDS.password));
  t.false(JSON.stringify(healthy).includes(CREDS.password));
  const events = await s.tcp.api<unknown>("/api/v2/events");
  t.false(JSON.stringify(events.body).includes(CREDS.password));
  await s.tcp.cp.stop();
  for (const dir of [s.tcp.dataDir, s.agentDataDir]) {
    for (const f of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!f.isFile()) continue;
      const bytes = readFileSync(join(f.parentPath, f.name));
      t.false(bytes.includes(CREDS.password), `${f.name} does not hold the password`);
      t.false(bytes.includes(CREDS.username), `${f.name} does not hold the username`);
    }
  }
});

test("bad credentials fail with EE-WORKLOAD-PULL-AUTH at once and leave nothing behind", async (t) => {
  const s = await setup(t, { auth: CREDS });
  if (!s) return;
  const name = repo(t, "denied");
  const pushed = await pushImage(s.docker, s.registry, BUSYBOX_IMAGE, `${name}:1.0`);
  const started = Date.now();
  await failsWith(
    t,
    s,
    {
      app: "denied",
      compose: sleepOn(pushed.ref),
      registry_auth: { [s.registry.host]: { username: CREDS.username, password: "wrong" } },
    },
    "EE-WORKLOAD-PULL-AUTH",
  );
  t.log(`refused after ${Date.now() - started} ms`);
  t.true(await engineLacks(s.docker, `${s.registry.host}/${name}`), "no image was pulled");
});

test("a registry that goes away mid-pull fails with EE-WORKLOAD-PULL-FAILED after bounded retries", async (t) => {
  const s = await setup(t, { throttleBytesPerSec: 4 * 1024 * 1024 });
  if (!s) return;
  const name = repo(t, "big");
  const big = await bigImage(s.docker, 30 * 1024 * 1024);
  const pushed = await pushImage(s.docker, s.registry, big, `${name}:1.0`);
  await s.docker.getImage(big).remove({ force: true });
  const res = await deploy(s.tcp, { app: "big", compose: sleepOn(pushed.ref) });
  t.is(res.status, 202, JSON.stringify(res.body));
  const id = res.body.deployment_id as string;
  // The first progress with bytes is the pull under way: the registry goes away then.
  const pulling = await waitFor(
    "pull progress",
    async () => {
      const r = await s.tcp.api<DeploymentJson>(`/api/v2/deployments/${id}`);
      return r.body.progress.find((p) => p.step === "pulling" && (p.bytes_done ?? 0) > 0);
    },
    60_000,
  );
  t.true((pulling.bytes_total ?? 0) >= 30 * 1024 * 1024, JSON.stringify(pulling));
  const killedAt = Date.now();
  await s.registry.kill();
  const failed = await deploymentIn(s.tcp.api, id, ["failed", "healthy"], 60_000);
  t.is(failed.status, "failed");
  t.is(failed.code, "EE-WORKLOAD-PULL-FAILED", failed.message ?? "");
  t.log(`failed ${Date.now() - killedAt} ms after the registry went away`);
  t.true(await nothingLeft(s.docker, id));
  t.true(await engineLacks(s.docker, `${s.registry.host}/${name}`));
});

test("--require-pinned-images refuses tag-only images at deploy and preflight with EE-COMPOSE-UNPINNED, creating nothing", async (t) => {
  const tcp = await startTestCp(t, { requirePinnedImages: true });
  const tagged =
    "services:\n  web:\n    image: 127.0.0.1:5000/app:1.2\n  db:\n    image: db@sha256:" +
    "a".repeat(64) +
    "\n";
  for (const path of ["/api/v2/deployments", "/api/v2/preflight"]) {
    const res = await postJson<{ error: { code: string; message: string } }>(tcp.api, path, {
      app: "web",
      compose: tagged,
    });
    t.is(res.status, 400, path);
    t.is(res.body.error.code, "EE-COMPOSE-UNPINNED", path);
    t.regex(res.body.error.message, /web \(127\.0\.0\.1:5000\/app:1\.2\)/);
    t.notRegex(res.body.error.message, /db/, "a pinned image is not named");
  }
  const list = await tcp.api<{ deployments: unknown[] }>("/api/v2/deployments");
  t.deepEqual(list.body.deployments, []);
  // Pinned (and built) images pass the policy: the preflight goes on to placement.
  const pinned = `services:\n  web:\n    image: 127.0.0.1:5000/app@sha256:${"b".repeat(64)}\n`;
  const ok = await postJson<{ ok: boolean }>(tcp.api, "/api/v2/preflight", { app: "web", compose: pinned });
  t.is(ok.status, 200, JSON.stringify(ok.body));
});

test("without --require-pinned-images a tag-only image passes the control plane's checks", async (t) => {
  const tcp = await startTestCp(t);
  const res = await postJson<{ ok: boolean }>(tcp.api, "/api/v2/preflight", {
    app: "web",
    compose: "services:\n  web:\n    image: 127.0.0.1:5000/app:1.2\n",
  });
  t.is(res.status, 200, JSON.stringify(res.body));
});

test("a malformed registry_auth is 400 EE-REQ-INVALID that does not echo the password, and creates nothing", async (t) => {
  const tcp = await startTestCp(t);
  const compose = "services:\n  web:\n    image: 127.0.0.1:5000/app:1.2\n";
  const secret = "x".repeat(5000);
  for (const registry_auth of [
    { "not a host!": { username: "u", password: "p-secret" } },
    { "127.0.0.1:5000": { username: "u", password: secret } },
    { "127.0.0.1:5000": { username: "u", password: "p-secret", token: "t-secret" } },
  ]) {
    const res = await postJson<{ error: { code: string } }>(
      tcp.api,
      "/api/v2/deployments",
      { app: "web", compose, registry_auth },
      {},
      { badRequest: true },
    );
    t.is(res.status, 400);
    t.is(res.body.error.code, "EE-REQ-INVALID");
    const text = JSON.stringify(res.body);
    for (const s of ["p-secret", "t-secret", secret]) t.false(text.includes(s));
  }
  const list = await tcp.api<{ deployments: unknown[] }>("/api/v2/deployments");
  t.deepEqual(list.body.deployments, []);
});
