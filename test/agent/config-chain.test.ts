// The agent's config source chain: file → config drive → kernel command line, each source's "not here" and
// error cases, the cmdline encodings (Python- and Node-made fixtures in test/fixtures/config/), the ISO 9660
// reader and writer (checked against isoinfo/genisoimage when installed), and an `eectl agent` child process
// that registers with a CP from a config given only on a fake kernel command line.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { deflateSync, gunzipSync } from "node:zlib";
import test, { type ExecutionContext } from "ava";
import { configSources, loadAgentConfig, loadFromChain } from "../../agent/config.ts";
import { cmdlineSource, encodeParam, kernelParams } from "../../agent/config-sources/cmdline.ts";
import { driveSource } from "../../agent/config-sources/drive.ts";
import { bufferReader, findRootFile, SECTOR, writeIso9660 } from "../../agent/config-sources/iso9660.ts";
import { ValidationError } from "../../spec/errors.ts";
import { eectl } from "../helpers/cli.ts";
import { REPO, startTestCp, tempDir, waitFor } from "../helpers/cluster.ts";

const FIXTURES = join(REPO, "test/fixtures/config");
const fixtureConfig = JSON.parse(readFileSync(join(FIXTURES, "agent.json"), "utf8")) as Record<
  string,
  unknown
>;

const valid = {
  control_plane_url: "ws://127.0.0.1:8080",
  vm_name: "agent-1",
  node_size: "tiny",
  datacenter: "baremetal:local",
  api_listen: "127.0.0.1:9001",
  data_dir: "/var/lib/easyenclave",
  attestation: { provider: "tsm" },
};
const named = (vm_name: string) => ({ ...valid, vm_name });

const b64 = (text: string | Uint8Array) => Buffer.from(text).toString("base64");
const zb64 = (text: string) => deflateSync(Buffer.from(text)).toString("base64");

function driveImage(config: unknown, label = "EE_CONFIG", name = "CONFIG.JSON"): Uint8Array {
  const text = typeof config === "string" ? config : JSON.stringify(config);
  return writeIso9660(label, [{ name, data: Buffer.from(text) }]);
}

/** Files for one chain: each argument is the content of that source, or undefined for none. */
async function chainFiles(
  t: ExecutionContext,
  o: { file?: unknown; drive?: Uint8Array; cmdline?: string },
): Promise<{ dir: string; env: NodeJS.ProcessEnv }> {
  const dir = tempDir(t, "ee-chain-");
  const env: NodeJS.ProcessEnv = {
    EASYENCLAVE_CONFIG_DRIVES: join(dir, "absent.iso"),
    EASYENCLAVE_CMDLINE: join(dir, "cmdline"),
  };
  await writeFile(join(dir, "cmdline"), o.cmdline ?? "console=ttyS0 quiet\n");
  if (o.file !== undefined) {
    env.EASYENCLAVE_CONFIG = join(dir, "config.json");
    await writeFile(env.EASYENCLAVE_CONFIG, JSON.stringify(o.file));
  }
  if (o.drive) {
    env.EASYENCLAVE_CONFIG_DRIVES = `${join(dir, "absent.iso")},${join(dir, "drive.iso")}`;
    await writeFile(join(dir, "drive.iso"), o.drive);
  }
  return { dir, env };
}

async function configError(t: ExecutionContext, p: Promise<unknown>): Promise<ValidationError> {
  const err = await t.throwsAsync(p, { instanceOf: ValidationError });
  t.is(err.code, "EE-CONFIG-INVALID");
  return err;
}

async function fromCmdline(t: ExecutionContext, cmdline: string) {
  const path = join(tempDir(t, "ee-cmdline-"), "cmdline");
  await writeFile(path, cmdline);
  return { path, read: () => loadFromChain([cmdlineSource(path)]) };
}

// The chain

test("the sources come in order: file, each drive, cmdline; defaults without the environment", (t) => {
  t.deepEqual(
    configSources({ env: {} }).map((s) => s.name),
    [
      "file:/etc/easyenclave/config.json",
      "drive:/dev/sr0",
      "drive:/dev/sr1",
      "drive:/dev/cdrom",
      "cmdline:/proc/cmdline",
    ],
  );
  const env = {
    EASYENCLAVE_CONFIG: "/a.json",
    EASYENCLAVE_CONFIG_DRIVES: " /b.iso, ,/dev/sr9",
    EASYENCLAVE_CMDLINE: "/c",
  };
  t.deepEqual(
    configSources({ env }).map((s) => s.name),
    ["file:/a.json", "drive:/b.iso", "drive:/dev/sr9", "cmdline:/c"],
  );
  t.is(
    configSources({ configPath: "/d.json", env })[0]!.name,
    "file:/d.json",
    "--config beats the environment",
  );
});

test("a file beats a drive, which beats the command line", async (t) => {
  const all = {
    file: named("from-file"),
    drive: driveImage(named("from-drive")),
    cmdline: `ro ${encodeParam(JSON.stringify(named("from-cmdline")))}\n`,
  };
  const withFile = await chainFiles(t, all);
  let loaded = await loadAgentConfig({ env: withFile.env });
  t.is(loaded.config.vm_name, "from-file");
  t.is(loaded.source, `file:${withFile.dir}/config.json`);

  loaded = await loadAgentConfig({ env: (await chainFiles(t, { ...all, file: undefined })).env });
  t.is(loaded.config.vm_name, "from-drive");
  t.regex(loaded.source, /^drive:.*\/drive\.iso config\.json$/);

  const { dir, env } = await chainFiles(t, { cmdline: all.cmdline });
  loaded = await loadAgentConfig({ env });
  t.is(loaded.config.vm_name, "from-cmdline");
  t.is(loaded.source, `cmdline:${dir}/cmdline easyenclave.configz`);
});

test("a drive that is not ISO 9660, another volume or a blank disc means no config there", async (t) => {
  const cmdline = `${encodeParam(JSON.stringify(named("from-cmdline")))}\n`;
  for (const drive of [
    Buffer.from("not an image at all"),
    new Uint8Array(40 * SECTOR),
    driveImage(named("other"), "CIDATA"),
  ]) {
    const { env } = await chainFiles(t, { drive, cmdline });
    t.is((await loadAgentConfig({ env })).config.vm_name, "from-cmdline");
  }
});

test("with no config anywhere, the error lists every source tried and how to give one", async (t) => {
  const { dir, env } = await chainFiles(t, {});
  const err = await configError(t, loadAgentConfig({ env }));
  t.regex(err.message, /no agent config found/);
  t.true(err.message.includes(`drive:${dir}/absent.iso, cmdline:${dir}/cmdline`), err.message);
  t.regex(
    err.message,
    /--config FILE or set EASYENCLAVE_CONFIG.*EE_CONFIG config drive.*easyenclave\.configz=/,
  );
});

test("EASYENCLAVE_CONFIG naming a missing file lets the chain go on to the drive and the command line", async (t) => {
  const drive = await chainFiles(t, { drive: driveImage(named("from-drive")) });
  const missing = `${drive.dir}/nope.json`;
  const fromDrive = await loadAgentConfig({ env: { ...drive.env, EASYENCLAVE_CONFIG: missing } });
  t.is(fromDrive.config.vm_name, "from-drive");
  t.is(fromDrive.source, `drive:${drive.dir}/drive.iso config.json`);

  const cmdline = await chainFiles(t, { cmdline: `${encodeParam(JSON.stringify(named("from-cmdline")))}\n` });
  const env = { ...cmdline.env, EASYENCLAVE_CONFIG: `${cmdline.dir}/nope.json` };
  t.is((await loadAgentConfig({ env })).config.vm_name, "from-cmdline");
  t.is(configSources({ env })[0]!.name, `file:${cmdline.dir}/nope.json`);
});

test("--config naming a missing file, or a named command line that does not exist, is an error", async (t) => {
  const { dir, env } = await chainFiles(t, { drive: driveImage(named("from-drive")) });
  const err = await configError(t, loadAgentConfig({ configPath: `${dir}/nope.json`, env }));
  t.is(err.message, `file:${dir}/nope.json: cannot read the config file (ENOENT)`);
  const cmd = await configError(t, loadFromChain([cmdlineSource(`${dir}/nope`)]));
  t.is(cmd.message, `cmdline:${dir}/nope: cannot read the kernel command line (ENOENT)`);
  t.is(await cmdlineSource(`${dir}/nope`, { optional: true }).read(), null);
});

test("a relative path from a config drive or the command line is refused: neither has a folder", async (t) => {
  const relative = { ...valid, data_dir: "./agent1", attestation: { provider: "dev", dir: "dev-root" } };
  const { dir, env } = await chainFiles(t, { drive: driveImage(relative) });
  const err = await configError(t, loadAgentConfig({ env }));
  t.is(
    err.message,
    `drive:${dir}/drive.iso config.json: data_dir: must be an absolute path (this source has no folder to ` +
      "resolve a relative one against); attestation.dir: must be an absolute path (this source has no folder " +
      "to resolve a relative one against)",
  );
  t.like(err.details, { issues: [{ key: "data_dir" }, { key: "attestation.dir" }] });
  const cmd = await fromCmdline(t, encodeParam(JSON.stringify({ ...valid, docker_socket: "docker.sock" })));
  const cmdErr = await configError(t, cmd.read());
  t.regex(cmdErr.message, /easyenclave\.configz: docker_socket: must be an absolute path/);
});

// The kernel command line

test("the command line is split the way the kernel does it", (t) => {
  const p = kernelParams('a=1 b="two words" quiet c=x=y a=3 -- d=4\n');
  t.deepEqual(
    [...p],
    [
      ["a", "3"],
      ["b", "two words"],
      ["c", "x=y"],
    ],
  );
});

test("a configz made by Python's zlib decodes to the config it was made from", async (t) => {
  for (const fixture of [
    "python-configz.cmdline",
    "python-configz-urlsafe.cmdline",
    "node-configz.cmdline",
  ]) {
    const path = join(FIXTURES, fixture);
    const loaded = await loadFromChain([cmdlineSource(path)]);
    t.is(loaded.source, `cmdline:${path} easyenclave.configz`, fixture);
    t.like(loaded.config, fixtureConfig, fixture);
  }
  const python = readFileSync(join(FIXTURES, "python-configz.cmdline"), "utf8");
  t.true(
    kernelParams(python).get("easyenclave.configz")!.includes("/"),
    "the fixture exercises the standard alphabet",
  );
});

test("the encoder picks configz when compression makes it shorter, and its output decodes back", async (t) => {
  const param = encodeParam(JSON.stringify(fixtureConfig));
  t.true(param.startsWith("easyenclave.configz="));
  t.true(param.length < `easyenclave.config=${b64(JSON.stringify(fixtureConfig))}`.length);
  const { read } = await fromCmdline(t, `root=/dev/vda1 ${param}`);
  t.like((await read()).config, fixtureConfig);
  t.is(encodeParam("{}"), `easyenclave.config=${b64("{}")}`, "a tiny JSON does not pay for zlib's header");
});

test("easyenclave.config= (plain base64) is read; configz wins when both are given", async (t) => {
  const plain = `easyenclave.config=${b64(JSON.stringify(named("plain")))}`;
  let r = await fromCmdline(t, `ro ${plain}\n`);
  t.is((await r.read()).config.vm_name, "plain");
  t.is((await r.read()).source, `cmdline:${r.path} easyenclave.config`);
  r = await fromCmdline(t, `${plain} easyenclave.configz=${zb64(JSON.stringify(named("zipped")))}`);
  t.is((await r.read()).config.vm_name, "zipped");
  r = await fromCmdline(t, `easyenclave.config="${b64(JSON.stringify(named("quoted")))}"`);
  t.is((await r.read()).config.vm_name, "quoted");
});

test("stripped padding and the URL-safe alphabet are accepted", async (t) => {
  // Grow the JSON until its base64 needs padding and uses + or /, so both fixes are exercised.
  let json = JSON.stringify({ ...named("padded"), data_dir: "/var/lib/ee/\u00ff\u00fe?" });
  while (!/[+/]/.test(b64(json)) || !b64(json).endsWith("=")) json += " ";
  const stripped = b64(json).replace(/=+$/, "");
  t.not(stripped, b64(json));
  let r = await fromCmdline(t, `easyenclave.config=${stripped}`);
  t.is((await r.read()).config.vm_name, "padded");
  const urlSafe = Buffer.from(json).toString("base64url");
  t.regex(urlSafe, /[-_]/);
  r = await fromCmdline(t, `easyenclave.config=${urlSafe}`);
  t.is((await r.read()).config.vm_name, "padded");
});

test("broken payloads are errors naming the source and the parameter", async (t) => {
  const cases: [string, string, RegExp][] = [
    ["easyenclave.config", "abc$def", /not base64 \(neither the standard nor the URL-safe alphabet\)/],
    ["easyenclave.config", "ab+_cd", /not base64/],
    ["easyenclave.config", "abcde", /not base64 \(its length cannot be padded\)/],
    ["easyenclave.configz", b64("this is not zlib"), /not zlib data/],
    ["easyenclave.configz", b64(deflateSync("{}").subarray(0, 5)), /not zlib data/],
    ["easyenclave.configz", zb64("{ nope"), /not valid JSON/],
    ["easyenclave.config", b64("{ nope"), /not valid JSON/],
    ["easyenclave.config", b64(Uint8Array.of(0x7b, 0xff, 0x7d)), /not UTF-8 text/],
  ];
  for (const [param, value, message] of cases) {
    const { path, read } = await fromCmdline(t, `quiet ${param}=${value}`);
    const err = await configError(t, read());
    t.true(err.message.startsWith(`cmdline:${path} ${param}: `), err.message);
    t.regex(err.message, message);
  }
});

test("a decodable config with a bad key names the source, the parameter and the key", async (t) => {
  const { path, read } = await fromCmdline(
    t,
    `easyenclave.configz=${zb64(JSON.stringify({ ...valid, datacenter: "x" }))}`,
  );
  const err = await configError(t, read());
  t.true(err.message.startsWith(`cmdline:${path} easyenclave.configz: datacenter: `), err.message);
  t.like(err.details, { source: `cmdline:${path} easyenclave.configz`, issues: [{ key: "datacenter" }] });
});

// The config drive

test("an image written by the writer reads back, byte for byte, and the same config gives the same image", async (t) => {
  const data = Buffer.from(JSON.stringify(fixtureConfig, null, 2));
  const image = writeIso9660("EE_CONFIG", [
    { name: "README.TXT", data: Buffer.from("see config.json") },
    { name: "CONFIG.JSON", data },
  ]);
  const found = await findRootFile(bufferReader(image), "EE_CONFIG", "config.json");
  t.deepEqual(found, { found: "file", data: new Uint8Array(data) });
  t.like(await findRootFile(bufferReader(image), "EE_CONFIG", "readme.txt"), { found: "file" });
  t.deepEqual(await findRootFile(bufferReader(image), "OTHER", "config.json"), {
    found: "other-label",
    label: "EE_CONFIG",
  });
  t.deepEqual(
    writeIso9660("EE_CONFIG", [{ name: "CONFIG.JSON", data }]),
    writeIso9660("EE_CONFIG", [{ name: "CONFIG.JSON", data }]),
  );
  t.throws(() => writeIso9660("ee config", []), { instanceOf: RangeError });
});

test("a drive labelled EE_CONFIG without config.json, with bad JSON or a bad key is an error", async (t) => {
  const dir = tempDir(t, "ee-drive-");
  const cases: [Uint8Array, RegExp][] = [
    [
      driveImage(valid, "EE_CONFIG", "OTHER.JSON"),
      /^drive:\S+: volume EE_CONFIG has no config\.json in its root directory$/,
    ],
    [driveImage("{ nope"), /^drive:\S+ config\.json: not valid JSON/],
    [driveImage({ ...valid, node_size: "" }), /^drive:\S+ config\.json: node_size: /],
  ];
  for (const [i, [image, message]] of cases.entries()) {
    const path = join(dir, `${i}.iso`);
    await writeFile(path, image);
    const err = await configError(t, loadFromChain([driveSource(path)]));
    t.regex(err.message, message);
    t.true(err.message.includes(path));
  }
});

test("a truncated image is an error; a path that is not a drive is 'not here' or an error", async (t) => {
  const dir = tempDir(t, "ee-drive-");
  const image = driveImage(fixtureConfig);
  await writeFile(join(dir, "cut.iso"), image.subarray(0, image.length - SECTOR + 10));
  const err = await configError(t, loadFromChain([driveSource(join(dir, "cut.iso"))]));
  t.is(err.message, `drive:${dir}/cut.iso: volume EE_CONFIG is damaged: image truncated in config.json`);
  await writeFile(join(dir, "cut-dir.iso"), image.subarray(0, 20 * SECTOR + 40));
  t.regex(
    (await configError(t, driveSource(join(dir, "cut-dir.iso")).read())).message,
    /truncated in the root directory/,
  );
  t.is(await driveSource(join(dir, "absent.iso")).read(), null);
  t.is(await driveSource(join(dir, "cut.iso", "below-a-file")).read(), null);
  t.regex((await configError(t, driveSource(dir).read())).message, /cannot read the drive \(EISDIR\)/);
});

function tool(name: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

test("isoinfo reads the writer's image when installed", async (t) => {
  if (!tool("isoinfo")) {
    t.log("isoinfo not installed: sub-check skipped");
    t.pass();
    return;
  }
  const path = join(tempDir(t, "ee-iso-"), "config.iso");
  const text = JSON.stringify(fixtureConfig);
  await writeFile(path, driveImage(fixtureConfig));
  t.regex(execFileSync("isoinfo", ["-d", "-i", path], { encoding: "utf8" }), /Volume id: EE_CONFIG/);
  t.is(execFileSync("isoinfo", ["-x", "/CONFIG.JSON;1", "-i", path], { encoding: "utf8" }), text);
});

test("an image made by genisoimage (ISO level 1 names, Rock Ridge, Joliet) is read", async (t) => {
  // Its ISO name is CONFIG.JSO;1 (8.3): only the Rock Ridge name says config.json.
  const dir = tempDir(t, "ee-geniso-");
  const committed = join(dir, "committed.iso");
  await writeFile(committed, gunzipSync(readFileSync(join(FIXTURES, "genisoimage-rock-joliet.iso.gz"))));
  t.like((await loadFromChain([driveSource(committed)])).config, fixtureConfig);

  if (!tool("genisoimage")) {
    t.log("genisoimage not installed: images made here are not checked");
    return;
  }
  await mkdir(join(dir, "root"));
  await writeFile(join(dir, "root", "config.json"), JSON.stringify(named("from-genisoimage")));
  const cases: [string, string[]][] = [
    ["rock-joliet.iso", ["-r", "-J"]],
    ["level2.iso", ["-iso-level", "2"]],
  ];
  for (const [file, flags] of cases) {
    const path = join(dir, file);
    execFileSync("genisoimage", ["-quiet", "-V", "EE_CONFIG", ...flags, "-o", path, join(dir, "root")]);
    t.is((await loadFromChain([driveSource(path)])).config.vm_name, "from-genisoimage", file);
  }
});

// Acceptance: an agent brought up by its kernel command line alone

function spawnAgentWithoutConfig(
  t: ExecutionContext,
  env: NodeJS.ProcessEnv,
): ChildProcess & { log(): string } {
  const { EASYENCLAVE_CONFIG: _unset, ...inherited } = process.env;
  const child = spawn(process.execPath, [join(REPO, "bin/eectl.js"), "agent"], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...inherited, EE_LOG_LEVEL: "info", ...env },
  });
  let log = "";
  child.stderr?.on("data", (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  return Object.assign(child, { log: () => log });
}

test("a config passed only on a fake kernel command line brings an agent up registered", async (t) => {
  const { cp, devDir, api } = await startTestCp(t);
  const dir = tempDir(t, "ee-cmdline-agent-");
  const config = {
    control_plane_url: cp.wsUrl,
    vm_name: "cmdline-only",
    node_size: "tiny",
    datacenter: "baremetal:local",
    api_listen: "127.0.0.1:0",
    data_dir: join(dir, "data"),
    heartbeat_interval_ms: 200,
    attestation: { provider: "dev", dir: devDir },
  };
  await writeFile(join(dir, "agent.json"), JSON.stringify(config));
  const encoded = await eectl(["config", "cmdline", join(dir, "agent.json"), "--measure"]);
  t.is(encoded.code, 0, encoded.stderr);
  const param = encoded.stdout.trim();
  t.regex(param, /^easyenclave\.configz=\S+$/);
  writeFileSync(join(dir, "cmdline"), `BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro console=ttyS0 ${param} quiet\n`);
  t.false(existsSync("/etc/easyenclave/config.json"), "this machine has no default config file to win first");

  const agent = spawnAgentWithoutConfig(t, {
    EASYENCLAVE_CMDLINE: join(dir, "cmdline"),
    EASYENCLAVE_CONFIG_DRIVES: join(dir, "no-such-drive.iso"),
  });
  type Listing = { agents: { vm_name: string; state: string }[] };
  const registered = await waitFor(
    "the cmdline-configured agent to register",
    async () => {
      if (agent.exitCode !== null) throw new Error(`agent exited ${agent.exitCode}: ${agent.log()}`);
      const { body } = await api<Listing>("/api/v2/agents");
      return body.agents.find((a) => a.vm_name === "cmdline-only" && a.state === "registered");
    },
    // Two tsx start-ups (eectl config, eectl agent) on a loaded machine take a while.
    40_000,
  );
  t.is(registered.state, "registered");
  t.true(
    agent.log().includes(`"source":"cmdline:${dir}/cmdline easyenclave.configz"`),
    "the agent logs where its config came from",
  );
  t.false(agent.log().includes(param.slice("easyenclave.configz=".length)), "the raw payload is not logged");
});
