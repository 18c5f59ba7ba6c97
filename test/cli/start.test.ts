// `npm start` on a terminal, as a developer sees it: run under `script` (util-linux) so stdout and stderr are one
// pseudo-terminal, the banner comes out whole and the CP's and the agent's logs follow it as readable lines,
// never as JSON in the middle of it; Ctrl-C (sent through the terminal) stops both. And its demo as a new user
// runs it: with docker-registry installed, the banner's deploy commands pull the demo image by tag and by digest
// from the local registry npm start runs, and the workload answers through the agent's proxy.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import test from "ava";
import { eectl } from "../helpers/cli.ts";
import { REPO, tempDir, waitFor } from "../helpers/cluster.ts";
import { cleanupDeployment, requireDocker } from "../helpers/docker.ts";
import { engineLacks, registryAvailable } from "../helpers/registry.ts";
import { closedPort } from "../helpers/temp.ts";
import type { DeploymentJson } from "../helpers/workloads.ts";

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour sequences are what is stripped.
const ANSI = /\x1b\[[0-9;]*m/g;

test("npm start on a terminal prints a clean banner, then readable log lines", async (t) => {
  t.timeout(180_000);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EE_HOME: tempDir(t, "ee-start-"),
    EE_PORT: String(await closedPort()),
    EE_AGENT_LISTEN: `127.0.0.1:${await closedPort()}`,
    EE_REGISTRY_PORT: String(await closedPort()),
  };
  // What a developer's shell has: none of the overrides.
  for (const k of ["EE_LOG_LEVEL", "EE_LOG_FORMAT", "EE_ADMIN_TOKEN"]) delete env[k];
  // `exec`: script runs the command through $SHELL, and dash (Debian's /bin/sh, what CI has) forks instead of
  // replacing itself, so the Ctrl-C reached a waiting dash too, which exited 130 whatever npm start did.
  const child = spawn(
    "script",
    ["-qfec", `exec ${process.execPath} --import tsx cli/start.ts`, "/dev/null"],
    {
      cwd: REPO,
      env: { ...env, SHELL: "/bin/sh" },
      detached: true,
    },
  );
  t.teardown(() => {
    if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
  });
  let raw = "";
  child.stdout.on("data", (d: Buffer) => {
    raw += d.toString();
  });
  child.stderr.resume();
  const text = () => raw.replace(ANSI, "").replace(/\r/g, "");
  await waitFor(
    "the banner",
    () => {
      if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${text()}`);
      return text().includes("Ctrl-C stops both.") || undefined;
    },
    150_000,
  );
  // Held while the banner was written, so out right after it.
  await waitFor("the held log lines", () => /agent registered/.test(text()) || undefined, 15_000).catch(
    () => {},
  );

  const out = text();
  const bannerStart = out.indexOf("EasyEnclave is running");
  const bannerEnd = out.indexOf("Ctrl-C stops both.");
  t.true(bannerStart >= 0 && bannerEnd > bannerStart, out);
  t.false(/^\s*\{"level"/m.test(out), "no JSON log lines on a terminal");
  t.false(
    /\((control-plane|agent)\)/.test(out.slice(0, bannerEnd)),
    "no log line before or inside the banner",
  );
  const after = out.slice(bannerEnd);
  t.regex(after, /WARN \(control-plane\): DEV ATTESTATION ENABLED/);
  t.regex(
    after,
    /INFO \(control-plane\): agent registered \{"agent_id":"agt_[0-9a-f]{24}","vm_name":"local-agent"/,
  );

  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  child.stdin.write("\x03");
  t.is(await exited, 0);
});

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });

test("npm start's demo: the banner's commands deploy the image pulled by tag, then by digest", async (t) => {
  t.timeout(300_000);
  const docker = await requireDocker(t);
  if (!docker || !registryAvailable(t)) return;
  const home = tempDir(t, "ee-start-demo-");
  const registryPort = await closedPort();
  const cpUrl = `http://127.0.0.1:${await closedPort()}`;
  const agentListen = `127.0.0.1:${await closedPort()}`;
  const token = "ee_start-demo-test-token-0123456789";
  const child = spawn(process.execPath, ["--import", "tsx", "cli/start.ts"], {
    cwd: REPO,
    env: {
      ...process.env,
      EE_HOME: home,
      EE_PORT: new URL(cpUrl).port,
      EE_AGENT_LISTEN: agentListen,
      EE_REGISTRY_PORT: String(registryPort),
      EE_ADMIN_TOKEN: token,
      EE_LOG_LEVEL: "warn",
    },
    // Its own process group: a failed test kills npm start and the registry it started together.
    detached: true,
  });
  t.teardown(() => {
    if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.resume();
  await waitFor(
    "the banner",
    () => {
      if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${out}`);
      return out.includes("Ctrl-C stops both.") || undefined;
    },
    180_000,
  );

  const repo = `127.0.0.1:${registryPort}/demo/hello`;
  const demo = join(home, "demo");
  t.regex(readFileSync(join(demo, "compose.yaml"), "utf8"), new RegExp(`image: ${repo}:1\n`));
  const pinned = readFileSync(join(demo, "compose-pinned.yaml"), "utf8").match(
    /image: (\S+@sha256:[0-9a-f]{64})\n/,
  );
  t.truthy(pinned, "compose-pinned.yaml names the image by digest");
  t.true(pinned![1]!.startsWith(`${repo}@`));
  const commands = [
    ...out.matchAll(/npx eectl (deploy --app hello --compose \S+ --health-port 8080 --wait)/g),
  ].map((m) => m[1]!.split(" "));
  t.deepEqual(
    commands.map((c) => c[4]!.split("/").pop()),
    ["compose.yaml", "compose-pinned.yaml"],
  );
  t.regex(
    out,
    /npx eectl deploy --app hello --compose \S+\/compose-build\.yaml --context \S+\/context\.tar /,
  );

  const env = { EE_CP_URL: cpUrl, EE_TOKEN: token };
  for (const [args, ref] of [
    [commands[0]!, `${repo}:1`],
    [commands[1]!, pinned![1]!],
  ] as const) {
    t.true(await engineLacks(docker, repo), `the engine lacks ${repo} before deploying ${ref}`);
    const run = await eectl([...args, "--json"], { env });
    t.is(run.code, 0, `${run.stdout}${run.stderr}`);
    const d = JSON.parse(run.stdout) as DeploymentJson;
    cleanupDeployment(t, docker, d.deployment_id);
    t.is(d.status, "healthy", `${d.code}: ${d.message}`);
    t.is(d.images?.[0]?.ref, ref);
    t.regex(d.images?.[0]?.digest ?? "", /^sha256:[0-9a-f]{64}$/);
    t.true(
      d.progress.some((p) => p.step === "pulling"),
      JSON.stringify(d.progress),
    );
    const page = await fetch(`http://${agentListen}/`).then((r) => r.text());
    t.is(page, "hello from a TD\n");
    const undeploy = await eectl(["deployments", "undeploy", d.deployment_id, "--wait"], { env });
    t.is(undeploy.code, 0, undeploy.stderr);
  }

  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  child.kill("SIGINT");
  t.is(await exited, 0);
  t.false(await listening(registryPort), "the registry stopped with npm start");
});
