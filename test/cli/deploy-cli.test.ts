// eectl's deploy commands run as a user would (a child process via bin/eectl.js) against a real CP, a real
// in-process agent and real containers: deploy --wait, deployments, logs, stats, undeploy, preflight, apps.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { DockerRuntime } from "../../agent/runtime/docker.ts";
import { eectl, eectlRunning } from "../helpers/cli.ts";
import {
  ADMIN_TOKEN,
  agentConfig,
  startTestAgent,
  startTestCp,
  tempDir,
  waitFor,
} from "../helpers/cluster.ts";
import { requireDocker } from "../helpers/docker.ts";
import { BUSYBOX_IMAGE, busyboxImage } from "../helpers/images.ts";
import { pushImage, registryAvailable, startRegistry } from "../helpers/registry.ts";
import { DEAF_PORT, WEB_PORT, webCompose } from "../helpers/workloads.ts";

/** A CP and one registered agent, the env that points eectl at it, and files in a temp dir. */
async function setup(t: ExecutionContext) {
  const tcp = await startTestCp(t);
  const agent = await startTestAgent(t, agentConfig(t, tcp.cp.wsUrl, tcp.devDir, { vm_name: "vm-cli" }));
  await waitFor("registration", () => tcp.cp.index.get(agent.agentId)?.state === "registered");
  const env = { EE_CP_URL: tcp.cp.url, EE_TOKEN: ADMIN_TOKEN };
  const dir = tempDir(t, "ee-deploy-cli-");
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  return { tcp, agent, env, file };
}

/** setup() for tests that run containers: plus the busybox image and a runtime; null without a Docker engine. */
async function setupWithDocker(t: ExecutionContext) {
  const docker = await requireDocker(t);
  if (!docker) return null;
  await busyboxImage(docker);
  return { ...(await setup(t)), runtime: new DockerRuntime({ docker }) };
}

/** `eectl deploy` of the Compose file `compose` as `app`, gated on health at `health.port`, plus `flags`. */
function deployGated(
  env: Record<string, string>,
  app: string,
  compose: string,
  health: { port: string; timeout: string },
  ...flags: string[]
) {
  const args = [
    "--app",
    app,
    "--compose",
    compose,
    "--health-port",
    health.port,
    "--health-timeout",
    health.timeout,
  ];
  return eectl(["deploy", ...args, ...flags], { env });
}

/** The deployment id `deploy` printed first, removed from the engine when the test ends. */
function placedId(t: ExecutionContext, runtime: DockerRuntime, out: string): string {
  const id = /^deployment (d-[0-9a-f]+) on agt_/m.exec(out)?.[1];
  if (!id) throw new Error(`no deployment id in: ${out}`);
  t.teardown(() => runtime.remove(id));
  return id;
}

test.serial(
  "deploy --wait prints each step and ends healthy; show, list, logs, logs -f, stats; undeploy --wait",
  async (t) => {
    const s = await setupWithDocker(t);
    if (!s) return;
    const { env, agent, tcp, runtime } = s;
    const compose = s.file("compose.yaml", webCompose());

    const health = { port: String(WEB_PORT), timeout: "20" };
    const dep = await deployGated(env, "web", compose, health, "--idempotency-key", "ci-job-1", "--wait");
    const id = placedId(t, runtime, dep.stdout);
    t.is(dep.code, 0, dep.stderr);
    // Not a TTY: plain lines, no carriage returns or marks.
    t.true(
      dep.stdout.includes(
        "step dispatched\nstep pulling\nstep preparing\nstep starting\nstep gating\nstep running\n",
      ),
      dep.stdout,
    );
    t.false(dep.stdout.includes("\r"));
    t.true(dep.stdout.includes(`deployment ${id} on ${agent.agentId}\n`));
    t.true(dep.stdout.endsWith(`deployment ${id} is healthy\n`), dep.stdout);

    // A CI retry with the same key and body gets the same deployment back, not a second one.
    const retry = await deployGated(env, "web", compose, health, "--idempotency-key", "ci-job-1");
    t.is(retry.code, 0, retry.stderr);
    t.is(retry.stdout, `deployment ${id} on ${agent.agentId} (healthy, replayed)\n`);

    const show = await eectl(["deployments", "show", id, "--json"], { env });
    t.is(show.code, 0, show.stderr);
    const shown = JSON.parse(show.stdout) as {
      status: string;
      agent_id: string;
      progress: { step: string }[];
    };
    t.is(shown.status, "healthy");
    t.is(shown.agent_id, agent.agentId);
    const text = await eectl(["deployments", "show", id], { env });
    t.regex(text.stdout, /^status: healthy$/m);
    t.regex(text.stdout, /^ {2}\S+ {2}running$/m);

    const list = await eectl(["deployments", "list"], { env });
    t.is(list.code, 0, list.stderr);
    t.regex(list.stdout, /^DEPLOYMENT\s+APP\s+STATUS\s+AGENT\s+UPDATED/);
    t.regex(list.stdout, new RegExp(`^${id}\\s+web\\s+healthy\\s+${agent.agentId}\\s+\\d+s ago$`, "m"));

    const logs = await waitFor("the workload's log line", async () => {
      const r = await eectl(["logs", agent.agentId, "--tail", "10"], { env });
      return r.code === 0 && /^\S+ web stdout\| started$/m.test(r.stdout) ? r : undefined;
    });
    t.regex(logs.stdout, /^\d{4}-\d{2}-\d{2}T\S+ web stdout\| started$/m);
    // --json: one log record per line, the same lines.
    const logsJson = await eectl(["logs", agent.agentId, "--tail", "10", "--json"], { env });
    t.is(logsJson.code, 0, logsJson.stderr);
    const records = logsJson.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, string>);
    t.true(
      records.some((r) => r.service === "web" && r.stream === "stdout" && r.text === "started"),
      logsJson.stdout,
    );
    t.deepEqual(Object.keys(records[0] ?? {}).sort(), ["service", "stream", "text", "ts"]);
    const sinceLater = await eectl(["logs", agent.agentId, "--since", "2999-01-01T00:00:00Z"], { env });
    t.is(sinceLater.code, 0, sinceLater.stderr);
    t.is(sinceLater.stdout, "");

    // Follow: lines stream until SIGINT, which ends the command cleanly with exit 0.
    const follow = eectlRunning(t, ["logs", agent.agentId, "-f", "--since", "1h"], env);
    const followJson = eectlRunning(t, ["logs", agent.agentId, "-f", "--since", "1h", "--json"], env);
    await waitFor("followed line", () => follow.stdout().includes("web stdout| started"), 15_000);
    // A request through the agent's proxy makes httpd -v log a line while we follow (only this one is a 404).
    t.is(
      (await fetch(`${agent.apiUrl}/no-such-page`).then((r) => r.arrayBuffer().then(() => r))).status,
      404,
    );
    await waitFor(
      "a line logged after the follow began",
      () => /web stderr\| .*response:404/.test(follow.stdout()),
      15_000,
    );
    follow.kill("SIGINT");
    t.is(await follow.exited, 0);
    // The JSON follower saw the same line, as a record on a line of its own.
    const followed = () =>
      followJson
        .stdout()
        .split("\n")
        .filter((l) => l.includes("response:404"))
        .map((l) => JSON.parse(l) as { service: string; stream: string });
    await waitFor("the JSON follower's line", () => followed().length > 0, 15_000);
    t.like(followed()[0], { service: "web", stream: "stderr" });
    followJson.kill("SIGINT");
    t.is(await followJson.exited, 0);

    const stats = await eectl(["stats", agent.agentId, "--json"], { env });
    t.is(stats.code, 0, stats.stderr);
    t.deepEqual(
      (JSON.parse(stats.stdout) as { containers: { service: string }[] }).containers.map((c) => c.service),
      ["web"],
    );
    const statsTable = await eectl(["stats", agent.agentId], { env });
    t.regex(statsTable.stdout, /^web\s+[0-9a-f]{12}\s+\d+\.\d/m);

    const undeploy = await eectl(["deployments", "undeploy", id, "--wait"], { env });
    t.is(undeploy.code, 0, undeploy.stderr);
    t.true(undeploy.stdout.endsWith(`deployment ${id} is undeployed\n`), undeploy.stdout);
    const gone = JSON.parse((await eectl(["deployments", "show", id, "--json"], { env })).stdout) as {
      status: string;
    };
    t.is(gone.status, "undeployed");
    t.deepEqual(await runtime.inspect(id), []);
    await waitFor("agent free again", () => tcp.cp.index.get(agent.agentId)?.state === "registered");
  },
);

test.serial(
  "deploy --wait: a health gate that never passes exits 1 with its code; --timeout ends the wait with EE-CLI-TIMEOUT",
  async (t) => {
    const s = await setupWithDocker(t);
    if (!s) return;
    const { env, agent, tcp, runtime } = s;
    const compose = s.file("compose.yaml", webCompose());
    const never = String(DEAF_PORT);

    const impatient = await deployGated(
      env,
      "sick",
      compose,
      { port: never, timeout: "3" },
      "--wait",
      "--timeout",
      "1",
    );
    const first = placedId(t, runtime, impatient.stdout);
    t.is(impatient.code, 1);
    t.regex(
      impatient.stderr,
      new RegExp(`^eectl: EE-CLI-TIMEOUT: deployment ${first} is still \\w+ after 1 s`),
    );
    await waitFor("agent free again", () => tcp.cp.index.get(agent.agentId)?.state === "registered", 20_000);

    const sick = await deployGated(env, "sick", compose, { port: never, timeout: "2" }, "--wait");
    const id = placedId(t, runtime, sick.stdout);
    t.is(sick.code, 1);
    t.regex(sick.stderr, /^eectl: EE-WORKLOAD-HEALTH-TIMEOUT: /);
    t.regex(sick.stdout, /^step gating\n(.*\n)*step failed/m);
    t.false(sick.stdout.includes("is healthy"));
    t.deepEqual(await runtime.inspect(id), []);

    const json = await eectl(["deployments", "show", id, "--json"], { env });
    const d = JSON.parse(json.stdout) as { status: string; code: string };
    t.deepEqual([d.status, d.code], ["failed", "EE-WORKLOAD-HEALTH-TIMEOUT"]);

    // With --json, the failure is the error object alone on stdout, the deployment in its details.
    await waitFor("agent free again", () => tcp.cp.index.get(agent.agentId)?.state === "registered", 20_000);
    const sickJson = await deployGated(
      env,
      "sick",
      compose,
      { port: never, timeout: "2" },
      "--wait",
      "--json",
    );
    t.is(sickJson.code, 1, sickJson.stderr);
    const failure = JSON.parse(sickJson.stdout) as {
      error: { code: string; details: { deployment: { deployment_id: string; status: string } } };
    };
    t.is(failure.error.code, "EE-WORKLOAD-HEALTH-TIMEOUT");
    t.is(failure.error.details.deployment.status, "failed");
    t.teardown(() => runtime.remove(failure.error.details.deployment.deployment_id));
  },
);

test("preflight explains placement; deploy shows every agent's reasons on 409; invalid compose creates nothing", async (t) => {
  const s = await setup(t);
  const { env, agent } = s;
  const compose = s.file("compose.yaml", webCompose());

  const fits = await eectl(["preflight", "--app", "web", "--compose", compose], { env });
  t.is(fits.code, 0, fits.stderr);
  t.regex(fits.stdout, new RegExp(`^placement: ${agent.agentId} \\(vm-cli\\)`, "m"));
  t.regex(
    fits.stdout,
    new RegExp(
      `^\\*\\s+${agent.agentId}\\s+vm-cli\\s+tiny\\s+baremetal:local\\s+registered\\s+eligible$`,
      "m",
    ),
  );

  const llm = await eectl(["preflight", "--app", "web", "--compose", compose, "--node-size", "llm"], { env });
  t.is(llm.code, 1);
  t.regex(llm.stdout, /^placement: no agent fits/m);
  t.regex(
    llm.stdout,
    new RegExp(
      `^\\s+${agent.agentId}\\s+vm-cli\\s+tiny\\s+baremetal:local\\s+registered\\s+EE-PLACE-NODE-SIZE$`,
      "m",
    ),
  );
  const llmJson = await eectl(
    ["preflight", "--app", "web", "--compose", compose, "--node-size", "llm", "--json"],
    {
      env,
    },
  );
  t.is(llmJson.code, 1);
  const diag = JSON.parse(llmJson.stdout) as {
    ok: boolean;
    placement: { candidates: { reasons: string[] }[] };
  };
  t.false(diag.ok);
  t.deepEqual(diag.placement.candidates[0]?.reasons, ["EE-PLACE-NODE-SIZE"]);

  const refused = await eectl(["deploy", "--app", "web", "--compose", compose, "--node-size", "llm"], {
    env,
  });
  t.is(refused.code, 1);
  const [line, header, row] = refused.stderr.split("\n");
  t.regex(line ?? "", /^eectl: EE-PLACE-NO-AGENT: /);
  t.regex(header ?? "", /^AGENT\s+VM\s+SIZE\s+DATACENTER\s+STATE\s+REASONS$/);
  t.regex(
    row ?? "",
    new RegExp(`^${agent.agentId}\\s+vm-cli\\s+tiny\\s+baremetal:local\\s+registered\\s+EE-PLACE-NODE-SIZE$`),
  );

  // --replace goes in the body as `replaces`: an unknown one is the CP's 404.
  const unknown = await eectl(
    ["deploy", "--app", "web", "--compose", compose, "--replace", "d-0000000000000000"],
    { env },
  );
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /^eectl: EE-NOT-FOUND: deployment d-0000000000000000 does not exist/);

  // Compose from stdin; the CP refuses it before placing anything.
  const invalid = await eectl(["deploy", "--app", "bad", "--compose", "-"], {
    env,
    input: "services:\n  app:\n    image: [not, a, string]\n",
  });
  t.is(invalid.code, 1);
  t.regex(invalid.stderr, /^eectl: EE-COMPOSE-[A-Z-]+: /);
  const none = await eectl(["deployments", "list", "--json"], { env });
  t.is(none.code, 0, none.stderr);
  t.deepEqual(JSON.parse(none.stdout), { deployments: [] });
});

test("apps register and list; deploy flags are checked before anything is sent", async (t) => {
  const s = await setup(t);
  const { env } = s;
  const compose = s.file("compose.yaml", webCompose());
  const reg = await eectl(["apps", "register", "web@1.2.0", "--compose", compose, "--health-port", "8080"], {
    env,
  });
  t.is(reg.code, 0, reg.stderr);
  t.regex(reg.stdout, /^registered web@1\.2\.0 \(compose [0-9a-f]{64}\)$/m);
  const list = await eectl(["apps", "list"], { env });
  t.regex(list.stdout, /^web@1\.2\.0\s+[0-9a-f]{16}…\s+:8080\/ 60s\s+\d{4}-/m);
  const json = JSON.parse((await eectl(["apps", "list", "--json"], { env })).stdout) as {
    apps: { ref: string }[];
  };
  t.deepEqual(
    json.apps.map((a) => a.ref),
    ["web@1.2.0"],
  );
  // A registered app is placed like posted Compose.
  const pre = await eectl(["preflight", "--app", "web@1.2.0", "--json"], { env });
  t.is(pre.code, 0, pre.stderr);
  t.is((JSON.parse(pre.stdout) as { app_version: string }).app_version, "1.2.0");

  const bad = await eectl(["apps", "register", "web", "--compose", compose], { env });
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^eectl: EE-CONFIG-INVALID: expected NAME@VERSION/);
  const noPort = await eectl(["deploy", "--app", "web", "--compose", compose, "--health-path", "/x"], {
    env,
  });
  t.is(noPort.code, 1);
  t.regex(noPort.stderr, /^eectl: EE-CONFIG-INVALID: --health-path and --health-timeout need --health-port/);
  const since = await eectl(["logs", "agt_000000000000000000000000", "--since", "yesterday"], { env });
  t.regex(since.stderr, /^eectl: EE-CONFIG-INVALID: --since/);
});

test("every deploy command has --help with an example", async (t) => {
  for (const cmd of [
    ["deploy"],
    ["preflight"],
    ["deployments", "list"],
    ["deployments", "show"],
    ["deployments", "undeploy"],
    ["logs"],
    ["stats"],
    ["apps", "list"],
    ["apps", "register"],
  ]) {
    const r = await eectl([...cmd, "--help"]);
    const name = cmd.join(" ");
    t.is(r.code, 0, name);
    t.regex(r.stdout, /Examples/, name);
    t.true(r.stdout.includes(`eectl ${name} `), name);
  }
});

test("deploy --registry-auth pulls from a registry with a login; show lists each image with its digest", async (t) => {
  const s = await setupWithDocker(t);
  if (!s || !registryAvailable(t)) return;
  const docker = (await requireDocker(t))!;
  const creds = { username: "cli-user", password: "cli-pass-never-printed" };
  const registry = await startRegistry(t, { auth: creds });
  const pushed = await pushImage(docker, registry, BUSYBOX_IMAGE, `cli-${process.pid}:1`);
  const compose = s.file("compose.yaml", webCompose().replace(BUSYBOX_IMAGE, pushed.ref));
  const auth = s.file("auth.json", JSON.stringify({ [registry.host]: creds }));
  const health = { port: String(WEB_PORT), timeout: "30" };
  const dep = await deployGated(s.env, "private", compose, health, "--registry-auth", auth, "--wait");
  const id = placedId(t, s.runtime, dep.stdout);
  t.is(dep.code, 0, dep.stderr);
  t.regex(dep.stdout, /^step pulling/m);
  const show = await eectl(["deployments", "show", id], { env: s.env });
  t.regex(show.stdout, new RegExp(`^images: web=${pushed.ref} \\(${pushed.digest}\\)$`, "m"));
  for (const out of [dep.stdout, dep.stderr, show.stdout]) t.false(out.includes(creds.password));

  const bad = s.file("bad.json", "{not json");
  const refused = await eectl(["deploy", "--app", "x", "--compose", compose, "--registry-auth", bad], {
    env: s.env,
  });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /EE-CLI-FILE: --registry-auth .*bad\.json: not JSON/);
});
