// eectl install --no-systemd for real: the supervisor runs the installed agent, which registers with a control
// plane; a failed upgrade (a bundle whose launcher exits at once) leaves the previous version running; uninstall
// stops the agent. Each test's teardown uninstalls, so no supervisor outlives it.
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { MANIFEST } from "../../installer/bundle.ts";
import { agentStatus, installAgent, uninstallAgent } from "../../installer/install.ts";
import { isAlive } from "../../installer/service.ts";
import { eectl } from "../helpers/cli.ts";
import { agentConfig, startTestCp, tempDir, waitFor } from "../helpers/cluster.ts";

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
  const run = await eectl([
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
  ]);
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
