// eectl install against a temp root that no service manager runs (mode none): the files, their modes and
// contents, the bundle (built from this checkout, pruned of dev dependencies), version switches, idempotency,
// and input that must install nothing. The supervised path (a real agent) is in supervised.test.ts.
import { lstat, mkdir, readdir, readFile, readlink, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import test from "ava";
import { buildBundle, packBundle } from "../../installer/bundle.ts";
import { parseEnvFile } from "../../installer/env-file.ts";
import { installAgent, rollbackAgent, uninstallAgent, upgradeAgent } from "../../installer/install.ts";
import { canAccess as exists } from "../../lib/can-access.ts";
import { eectl } from "../helpers/cli.ts";
import { agentConfig, tempDir } from "../helpers/cluster.ts";

const mode = async (path: string) => (await stat(path)).mode & 0o777;
const agentDir = (root: string) => join(root, "opt/easyenclave/agent");

/** A valid agent config file (dev attestation; nothing connects in these tests). */
async function configFile(
  t: Parameters<typeof tempDir>[0] & Parameters<typeof agentConfig>[0],
  root: string,
) {
  const file = join(tempDir(t, "ee-inst-cfg-"), "agent.json");
  const cfg = agentConfig(t, "ws://127.0.0.1:1", "/nonexistent-dev-dir", {
    data_dir: join(root, "var/lib/easyenclave"),
  });
  await writeFile(file, JSON.stringify(cfg));
  return file;
}

function installRoot(t: Parameters<typeof tempDir>[0]): string {
  const root = tempDir(t, "ee-inst-root-");
  // Runs before the temp dir goes (teardowns run last-registered first).
  t.teardown(() => uninstallAgent({ root }));
  return root;
}

test("install agent writes the tree, env, config and unit with their modes; status --json says so", async (t) => {
  const root = installRoot(t);
  const config = await configFile(t, root);
  const run = await eectl([
    "install",
    "agent",
    "--root",
    root,
    "--version",
    "1.0.0-a",
    "--config",
    config,
    "--env",
    "EE_LOG_LEVEL=warn",
    "--env",
    'ODD=a "quoted" \\ value',
  ]);
  t.is(run.code, 0, run.stderr);

  t.is(await readlink(join(agentDir(root), "current")), "1.0.0-a");
  const bundle = join(agentDir(root), "1.0.0-a");
  t.is(await mode(join(bundle, "bin/easyenclave-agent")), 0o755);
  t.is(JSON.parse(await readFile(join(bundle, "package.json"), "utf8")).version, "1.0.0-a");
  // Production dependencies only: tsx runs the agent, ava and typescript are dev tools.
  t.true(await exists(join(bundle, "node_modules/tsx/package.json")));
  t.true(await exists(join(bundle, "node_modules/dockerode/package.json")));
  t.false(await exists(join(bundle, "node_modules/ava")));
  t.false(await exists(join(bundle, "node_modules/typescript")));
  t.false(await exists(join(bundle, "test")));

  const envPath = join(root, "etc/easyenclave/agent.env");
  const cfgPath = join(root, "etc/easyenclave/config.json");
  t.is(await mode(envPath), 0o600);
  t.is(await mode(cfgPath), 0o600);
  const env = parseEnvFile(await readFile(envPath, "utf8"));
  t.is(env.get("EASYENCLAVE_CONFIG"), cfgPath);
  t.is(env.get("EE_LOG_LEVEL"), "warn");
  t.is(env.get("ODD"), 'a "quoted" \\ value');
  t.deepEqual(JSON.parse(await readFile(cfgPath, "utf8")), JSON.parse(await readFile(config, "utf8")));

  const unitPath = join(root, "etc/systemd/system/easyenclave-agent.service");
  const unit = await readFile(unitPath, "utf8");
  t.true(unit.includes(`\nExecStart=${root}/opt/easyenclave/agent/current/bin/easyenclave-agent\n`));
  t.true(unit.includes("\nRestart=always\n"));
  t.true(unit.includes(`\nEnvironmentFile=${envPath}\n`));
  t.true(unit.includes(`\nReadWritePaths=${root}/var/lib/easyenclave\n`));
  for (const line of ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes"]) {
    t.true(unit.includes(`\n${line}\n`), line);
  }
  // No service manager runs this root: the unit is enabled for its next boot, nothing started.
  t.is(
    await readlink(join(root, "etc/systemd/system/multi-user.target.wants/easyenclave-agent.service")),
    "../easyenclave-agent.service",
  );

  const status = await eectl(["install", "status", "--root", root, "--json"]);
  t.is(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout);
  t.like(s, {
    version: "1.0.0-a",
    previous_version: null,
    running: false,
    unit_path: unitPath,
    env_path: envPath,
  });
});

test("installing the same version twice changes nothing", async (t) => {
  const root = installRoot(t);
  const config = await configFile(t, root);
  const first = await installAgent({ root, version: "1.0.0-a", config });
  t.true(first.changed);
  const files = ["etc/easyenclave/agent.env", "etc/easyenclave/config.json", "opt/easyenclave/agent/1.0.0-a"];
  const before = await Promise.all(files.map((f) => stat(join(root, f))));
  const again = await installAgent({ root, version: "1.0.0-a", config });
  t.false(again.changed);
  const after = await Promise.all(files.map((f) => stat(join(root, f))));
  t.deepEqual(
    after.map((s) => [s.ino, s.mtimeMs]),
    before.map((s) => [s.ino, s.mtimeMs]),
  );
  t.deepEqual((await readdir(agentDir(root))).sort(), ["1.0.0-a", "current", "state.json"]);
});

test("an invalid config or a bad --env installs nothing", async (t) => {
  const root = installRoot(t);
  const bad = join(tempDir(t, "ee-inst-bad-"), "agent.json");
  await writeFile(bad, JSON.stringify({ control_plane_url: "http://not-ws", vm_name: "vm-1" }));
  const cases: [string, string[]][] = [
    ["invalid config", ["--config", bad]],
    ["missing config", ["--config", join(root, "nope.json")]],
    ["lowercase key", ["--env", "lower=x"]],
    ["no =", ["--env", "NOVALUE"]],
    ["newline in value", ["--env", "A=b\nc"]],
    ["bad version", ["--version", "../escape"]],
  ];
  for (const [what, args] of cases) {
    const run = await eectl(["install", "agent", "--root", root, ...args]);
    t.is(run.code, 1, what);
    t.regex(run.stderr, /^eectl: EE-CONFIG-INVALID: /, what);
    t.deepEqual(await readdir(root), [], what);
  }
  // Plain ws:// to a host that is not loopback would carry the session secret in clear.
  const insecure = JSON.parse(await readFile(await configFile(t, root), "utf8"));
  await writeFile(bad, JSON.stringify({ ...insecure, control_plane_url: "ws://cp.example.internal:8080" }));
  const run = await eectl(["install", "agent", "--root", root, "--config", bad]);
  t.is(run.code, 1);
  t.regex(run.stderr, /^eectl: EE-CONFIG-INSECURE-TRANSPORT: file:.*allow_insecure_transport/);
  t.deepEqual(await readdir(root), []);
});

test("upgrade switches versions beside each other; rollback switches back; old versions are pruned", async (t) => {
  const root = installRoot(t);
  await installAgent({ root, version: "1.0.0-a" });
  const state = async () => JSON.parse(await readFile(join(agentDir(root), "state.json"), "utf8"));

  t.like(await upgradeAgent({ root, version: "1.0.0-b" }), {
    version: "1.0.0-b",
    previous_version: "1.0.0-a",
  });
  t.is(await readlink(join(agentDir(root), "current")), "1.0.0-b");
  t.like(await state(), { version: "1.0.0-b", previous_version: "1.0.0-a" });
  t.true((await lstat(join(agentDir(root), "1.0.0-a"))).isDirectory());

  t.false((await upgradeAgent({ root, version: "1.0.0-b" })).changed);

  const back = await eectl(["install", "rollback", "--root", root, "--json"]);
  t.is(back.code, 0, back.stderr);
  t.like(JSON.parse(back.stdout), { version: "1.0.0-a", previous_version: "1.0.0-b" });
  t.is(await readlink(join(agentDir(root), "current")), "1.0.0-a");

  await upgradeAgent({ root, version: "1.0.0-c" });
  t.deepEqual((await readdir(agentDir(root))).sort(), ["1.0.0-a", "1.0.0-c", "current", "state.json"]);
  t.like(await state(), { version: "1.0.0-c", previous_version: "1.0.0-a" });
});

test("rollback without a previous version and upgrade without an install are refused", async (t) => {
  const root = installRoot(t);
  const upgrade = await eectl(["install", "upgrade", "--root", root, "--version", "2.0.0"]);
  t.is(upgrade.code, 1);
  t.regex(upgrade.stderr, /EE-CONFLICT-STATE: no agent installed/);
  t.deepEqual(await readdir(root), []);
  await installAgent({ root, version: "1.0.0-a" });
  await t.throwsAsync(rollbackAgent({ root }), { message: /no previous version/ });
});

test("a state record that is not one is refused with EE-CONFIG-INVALID and nothing is switched", async (t) => {
  // No installRoot teardown: uninstall refuses the same record.
  const root = tempDir(t, "ee-inst-root-");
  const stateFile = join(agentDir(root), "state.json");
  await mkdir(agentDir(root), { recursive: true });
  for (const text of ["{", JSON.stringify({ version: "1.0.0-a", previous_version: null, mode: "launchd" })]) {
    await writeFile(stateFile, text);
    for (const op of [() => installAgent({ root, version: "1.0.0-a" }), () => rollbackAgent({ root })]) {
      await t.throwsAsync(op(), { code: "EE-CONFIG-INVALID", message: /not an installation record/ }, text);
    }
    t.deepEqual(await readdir(agentDir(root)), ["state.json"], text);
    t.is(await readFile(stateFile, "utf8"), text);
  }
});

test("a tarball bundle installs; its manifest names the version", async (t) => {
  const out = tempDir(t, "ee-inst-tar-");
  const dir = join(out, "easyenclave-agent-3.1.4");
  await buildBundle({ version: "3.1.4", dest: dir });
  await packBundle(dir, `${dir}.tar.gz`);
  const root = installRoot(t);
  t.like(await installAgent({ root, bundle: `${dir}.tar.gz` }), { version: "3.1.4" });
  t.is(await mode(join(agentDir(root), "3.1.4/bin/easyenclave-agent")), 0o755);
  await t.throwsAsync(upgradeAgent({ root, version: "9.9.9", bundle: `${dir}.tar.gz` }), {
    message: /the bundle .* is version 3\.1\.4/,
  });
});

test("uninstall removes what install wrote, keeps the data dir unless --purge, and succeeds twice", async (t) => {
  const root = installRoot(t);
  await installAgent({ root, version: "1.0.0-a", config: await configFile(t, root) });
  const data = join(root, "var/lib/easyenclave");
  await mkdir(data, { recursive: true });
  await writeFile(join(data, "agent-key.pem"), "key");
  for (let i = 0; i < 2; i++) {
    const run = await eectl(["install", "uninstall", "--root", root]);
    t.is(run.code, 0, run.stderr);
  }
  for (const gone of ["opt/easyenclave", "etc/easyenclave", "etc/systemd/system/easyenclave-agent.service"]) {
    t.false(await exists(join(root, gone)), gone);
  }
  t.true(await exists(join(data, "agent-key.pem")));
  await uninstallAgent({ root, purge: true });
  t.false(await exists(data));
});
