// Secrets at rest (issue 14 item 7): a compose `environment` value reaches the container, yet no byte of it is in
// the CP's database files (the database, its WAL, its shared memory), before or after a restart; a restarted CP
// still resumes the deployment and deploys the registered app from its sealed compose. A real CP, agent and
// containers.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { DB_FILE } from "../../actors/store/db.ts";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import { agentConfig, startTestAgent, startTestCp, type TestCp, waitFor } from "../helpers/cluster.ts";
import { requireDocker } from "../helpers/docker.ts";
import { BUSYBOX_IMAGE, busyboxImage } from "../helpers/images.ts";
import { deploymentIn, postJson } from "../helpers/workloads.ts";

const SECRET = `pw-${Math.random().toString(36).slice(2)}-at-rest`;
const COMPOSE = [
  "services:",
  "  app:",
  `    image: ${BUSYBOX_IMAGE}`,
  '    command: ["sleep", "300"]',
  "    environment:",
  `      DB_PASSWORD: ${SECRET}`,
  "",
].join("\n");

/** Which of the data dir's database files (WAL and SHM included) hold the secret's bytes. */
function filesWithSecret(dataDir: string): string[] {
  return readdirSync(dataDir)
    .filter((f) => f.startsWith(DB_FILE))
    .filter((f) => readFileSync(join(dataDir, f)).includes(Buffer.from(SECRET)));
}

async function envOf(runtime: DockerRuntime, docker: import("dockerode"), deploymentId: string) {
  const [c] = await runtime.inspect(deploymentId);
  const info = await docker.getContainer(c!.id).inspect();
  return info.Config.Env;
}

test("compose environment values are sealed in the database; deploys, resumes and app deploys still work across a restart", async (t) => {
  const docker = await requireDocker(t);
  if (!docker) return;
  await busyboxImage(docker);
  const runtime = new DockerRuntime({ docker });
  const first = await startTestCp(t);
  const agent = await startTestAgent(t, agentConfig(t, first.cp.wsUrl, first.devDir));
  await waitFor("registration", () => first.cp.index.get(agent.agentId)?.state === "registered");

  t.is(
    (await postJson(first.api, "/api/v2/apps", { name: "db", version: "1", compose: COMPOSE })).status,
    201,
  );
  const res = await postJson<{ deployment_id: string }>(first.api, "/api/v2/deployments", { app: "db@1" });
  t.is(res.status, 202, JSON.stringify(res.body));
  const id = res.body.deployment_id;
  t.teardown(() => runtime.remove(id));
  t.is((await deploymentIn(first.api, id, ["healthy", "failed"], 60_000)).status, "healthy");
  t.true((await envOf(runtime, docker, id)).includes(`DB_PASSWORD=${SECRET}`), "the container got the value");
  t.deepEqual(filesWithSecret(first.dataDir), [], "not in the database, WAL or SHM while serving");

  await first.cp.stop();
  t.deepEqual(filesWithSecret(first.dataDir), [], "not in the database after a checkpoint at close");
  const second: TestCp = await startTestCp(t, {
    dataDir: first.dataDir,
    devAttestationDir: first.devDir,
    port: first.cp.port,
  });
  await waitFor("re-registration", () => second.cp.index.get(agent.agentId)?.state !== undefined, 30_000);
  t.is((await deploymentIn(second.api, id, ["healthy"], 30_000)).status, "healthy", "resumed");
  const app = await second.api<{ compose: string }>("/api/v2/apps/db@1");
  t.is(app.body.compose, COMPOSE, "the registered compose reads back as given");

  // An update in place from the registered app: the agent gets the opened compose, value included.
  const again = await postJson<{ deployment_id: string }>(second.api, "/api/v2/deployments", {
    app: "db@1",
    replaces: id,
  });
  t.is(again.status, 202, JSON.stringify(again.body));
  const next = again.body.deployment_id;
  t.teardown(() => runtime.remove(next));
  t.is((await deploymentIn(second.api, next, ["healthy", "failed"], 60_000)).status, "healthy");
  t.true((await envOf(runtime, docker, next)).includes(`DB_PASSWORD=${SECRET}`));
  t.deepEqual(filesWithSecret(second.dataDir), []);
});
