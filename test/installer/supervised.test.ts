// eectl install --no-systemd for real: the supervisor runs the installed agent, which registers with a control
// plane; a failed upgrade (a bundle whose launcher exits at once) leaves the previous version running; uninstall
// stops the agent. Install waits for the agent to register: README's agent.json (relative paths) comes up
// registered; an agent that exits, or one whose CP is unreachable, fails the install naming why. Each test's
// teardown uninstalls, so no supervisor outlives it.
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { MANIFEST } from "../../installer/bundle.ts";
import { agentStatus, installAgent, uninstallAgent } from "../../installer/install.ts";
import { isAlive } from "../../installer/service.ts";
import { eectl } from "../helpers/cli.ts";
import { agentConfig, startTestCp, tempDir, waitFor } from "../helpers/cluster.ts";
import { closedPort } from "../helpers/temp.ts";

const CHECK = ["--start-timeout-ms", "20000", "--settle-ms", "2000"];

async function installedAgent(t: ExecutionContext) {
  const tcp = await startTestCp(t);
  const root = tempDir(t, "ee-sup-root-");
  t.teardown(() => uninstallAgent({ root }));
  const vmName = `vm-inst-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  const config = join(tempDir(t, "ee-sup-cfg-"), "agent.json");
  const cfg = agentConfig(t, tcp.cp.wsUrl, tcp.devDir, {
    vm_name: vmName,
    data_dir: join(root, "var/lib/easyenclave"),
  });
  await writeFile(config, JSON.stringify(cfg));
  const registered = () =>
    waitFor(
      `${vmName} to register`,
      () =>
        [...tcp.cp.index.values()].find(
          (r) => r.vm_name === vmName && r.connected && r.state === "registered",
        ),
      30_000,
    );
  return { tcp, root, config, registered };
}

test("the supervised agent registers with the CP, status says running, uninstall stops it", async (t) => {
  const { root, config, registered } = await installedAgent(t);
  const run = await install(root, config);
  t.is(run.code, 0, run.stderr);
  await registered();

  const status = JSON.parse((await eectl(["install", "status", "--root", root, "--json"])).stdout);
  t.like(status, { version: "1.0.0-a", running: true, mode: "supervisor" });
  const agentPid = status.agent_pid as number;
  const supervisorPid = Number(await readFile(join(root, "run/easyenclave-agent.pid"), "utf8"));
  t.true(isAlive(agentPid) && isAlive(supervisorPid));

  // Installing the same thing again leaves the same agent process running.
  t.false(
    (await installAgent({ root, version: "1.0.0-a", noSystemd: true, config, env: ["EE_LOG_LEVEL=warn"] }))
      .changed,
  );
  t.is((await agentStatus(root)).agent_pid, agentPid);

  const un = await eectl(["install", "uninstall", "--root", root]);
  t.is(un.code, 0, un.stderr);
  t.false(isAlive(agentPid));
  t.false(isAlive(supervisorPid));
  t.like(await agentStatus(root), { version: null, running: false });
});

test("a failed upgrade switches back, leaves the previous version running and exits 1", async (t) => {
  const { root, config, registered } = await installedAgent(t);
  await installAgent({ root, version: "1.0.0-a", noSystemd: true, config, env: ["EE_LOG_LEVEL=warn"] });
  const first = await registered();

  // A bundle whose launcher exits at once.
  const broken = tempDir(t, "ee-sup-broken-");
  await mkdir(join(broken, "bin"));
  await writeFile(
    join(broken, MANIFEST),
    JSON.stringify({ name: "easyenclave-agent", version: "1.0.0-broken" }),
  );
  await writeFile(join(broken, "bin/easyenclave-agent"), "#!/bin/sh\necho broken >&2\nexit 1\n");
  await chmod(join(broken, "bin/easyenclave-agent"), 0o755);

  const up = await eectl([
    "install",
    "upgrade",
    "--root",
    root,
    "--version",
    "1.0.0-broken",
    "--bundle",
    broken,
    ...CHECK,
  ]);
  t.is(up.code, 1);
  t.regex(up.stderr, /EE-INSTALL-START-FAILED: version 1\.0\.0-broken did not start: .*exited/);
  t.regex(up.stderr, /a failed upgrade leaves the previous version running/);

  const status = await agentStatus(root);
  t.like(status, { version: "1.0.0-a", previous_version: null, running: true });
  // The previous version is back: the same agent (its key is in the data dir) registers again.
  const again = await registered();
  t.is(again.agent_id, first.agent_id);
  t.true((await readFile(join(root, "var/log/easyenclave-agent.log"), "utf8")).includes("broken"));

  // And a good upgrade goes through, with rollback returning to 1.0.0-a.
  const good = await eectl(["install", "upgrade", "--root", root, "--version", "1.0.0-b", ...CHECK]);
  t.is(good.code, 0, good.stderr);
  t.like(await agentStatus(root), { version: "1.0.0-b", previous_version: "1.0.0-a", running: true });
  const back = await eectl(["install", "rollback", "--root", root, ...CHECK]);
  t.is(back.code, 0, back.stderr);
  t.like(await agentStatus(root), { version: "1.0.0-a", previous_version: "1.0.0-b", running: true });
});

/**
 * README's agent.json, in a folder of its own beside a `dev-root` (the test CP's dev attestation root), with
 * the CP's URL, a free API port and `over` put in.
 */
async function readmeConfig(t: ExecutionContext, cpWsUrl: string, devDir: string, over: object = {}) {
  const folder = tempDir(t, "ee-readme-");
  await symlink(devDir, join(folder, "dev-root"));
  const vmName = `vm-readme-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  const config = {
    control_plane_url: cpWsUrl,
    vm_name: vmName,
    node_size: "tiny",
    datacenter: "baremetal:local",
    api_listen: `127.0.0.1:${await closedPort()}`,
    data_dir: "./agent1",
    heartbeat_interval_ms: 5000,
    attestation: { provider: "dev", dir: "./dev-root" },
    ...over,
  };
  const file = join(folder, "agent.json");
  await writeFile(file, JSON.stringify(config));
  const root = tempDir(t, "ee-sup-root-");
  t.teardown(() => uninstallAgent({ root }));
  return { folder, file, root, vmName };
}

const install = (root: string, config: string, ...more: string[]) =>
  eectl([
    "install",
    "agent",
    "--root",
    root,
    "--version",
    "1.0.0-a",
    "--no-systemd",
    "--config",
    config,
    "--env",
    "EE_LOG_LEVEL=warn",
    ...more,
  ]);

test("README's agent.json with relative paths installs and returns once its agent is registered", async (t) => {
  // The README's CP: agents heartbeat every 5 s, so stale only after 15 s of silence.
  const tcp = await startTestCp(t, { staleAfterMs: 15_000, heartbeatMs: 5_000 });
  const { folder, file, root, vmName } = await readmeConfig(t, tcp.cp.wsUrl, tcp.devDir);
  // eectl runs in the repository, the supervisor in /: neither is the config's folder.
  const run = await install(root, file, "--wait-s", "60", "--json");
  t.is(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  t.like(out, { version: "1.0.0-a", mode: "supervisor" });
  t.regex(out.agent_id, /^agt_/);
  // Registered when install returned: the CP's read model says so without any waiting.
  const record = tcp.cp.index.get(out.agent_id);
  t.like(record, { vm_name: vmName, connected: true, state: "registered" });

  t.true(existsSync(join(folder, "agent1/agent-key.pem")), "data_dir ./agent1 is beside agent.json");
  const installed = JSON.parse(await readFile(join(root, "etc/easyenclave/config.json"), "utf8"));
  t.is(installed.data_dir, join(folder, "agent1"));
  t.is(installed.attestation.dir, join(folder, "dev-root"));
  t.like(await agentStatus(root), { running: true });
});

test("an agent that exits before registering fails the install with its own error, and is stopped", async (t) => {
  const tcp = await startTestCp(t);
  const { file, root, folder } = await readmeConfig(t, tcp.cp.wsUrl, tcp.devDir, {
    attestation: { provider: "dev", dir: "./no-such-dev-root" },
  });
  const run = await install(root, file, "--wait-s", "60");
  t.is(run.code, 1);
  t.regex(
    run.stderr,
    /^eectl: EE-INSTALL-START-FAILED: the agent process \(pid \d+\) exited with 1 before it registered: eectl: EE-CONFIG-INVALID: cannot read \S+\/no-such-dev-root\/attestation\.key \(ENOENT\)/,
  );
  t.true(run.stderr.includes(`; the service is stopped`), run.stderr);
  t.true(run.stderr.includes(join(root, "var/log/easyenclave-agent.log")), run.stderr);
  t.true(run.stderr.includes(join(folder, "no-such-dev-root")), "the path resolved beside agent.json");
  t.like(await agentStatus(root), { version: "1.0.0-a", running: false });
});

test("an agent whose CP is unreachable fails the install naming the CP, and keeps trying", async (t) => {
  const tcp = await startTestCp(t);
  const cpUrl = `ws://127.0.0.1:${await closedPort()}`;
  const { file, root } = await readmeConfig(t, cpUrl, tcp.devDir);
  // Long enough for the agent to start and answer on a busy machine, not to register.
  const run = await install(root, file, "--wait-s", "15");
  t.is(run.code, 1);
  t.regex(
    run.stderr,
    /^eectl: EE-INSTALL-NOT-REGISTERED: agent agt_\w+ runs but has not registered with its CP within 15 s \(its CP link is \w+/,
  );
  t.true(run.stderr.includes(`the CP is unreachable at ${cpUrl} (ECONNREFUSED)`), run.stderr);
  t.regex(run.stderr, /the agent keeps trying \(install --no-wait does not wait for the CP\)/);
  t.like(await agentStatus(root), { version: "1.0.0-a", running: true });

  // --no-wait installs without asking; the same install then changes nothing.
  const again = await install(root, file, "--no-wait", "--json");
  t.is(again.code, 0, again.stderr);
  t.like(JSON.parse(again.stdout), { changed: false, agent_id: null });
});
