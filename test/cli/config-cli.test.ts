// `eectl config cmdline` and `eectl config drive` run as a user would (child processes): the parameter printed,
// the size limit with and without --measure, refusals of bad configs, and images the agent's chain reads back.
import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import test from "ava";
import { loadAgentConfig } from "../../agent/config.ts";
import { cmdlineSource, decodeParam, kernelParams } from "../../agent/config-sources/cmdline.ts";
import { eectl } from "../helpers/cli.ts";
import { REPO, tempDir } from "../helpers/cluster.ts";

const FIXTURE = join(REPO, "test/fixtures/config/agent.json");
const fixtureConfig = JSON.parse(readFileSync(FIXTURE, "utf8")) as Record<string, unknown>;

test("config cmdline prints the configz parameter, which decodes to the config", async (t) => {
  const r = await eectl(["config", "cmdline", FIXTURE]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, "");
  t.regex(r.stdout, /^easyenclave\.configz=[A-Za-z0-9+/]+=*\n$/);
  const value = kernelParams(r.stdout).get("easyenclave.configz")!;
  t.deepEqual(decodeParam("easyenclave.configz", value, "test"), fixtureConfig);
});

test("the limit is on the parameter's bytes: at the limit it is printed, one byte over it is refused", async (t) => {
  const size = (await eectl(["config", "cmdline", FIXTURE])).stdout.trim().length;
  const at = await eectl(["config", "cmdline", FIXTURE, "--limit", String(size)]);
  t.is(at.code, 0, at.stderr);
  const over = await eectl(["config", "cmdline", FIXTURE, "--limit", String(size - 1)]);
  t.is(over.code, 1);
  t.is(over.stdout, "");
  t.is(
    over.stderr,
    `eectl: EE-CONFIG-INVALID: the parameter is ${size} bytes, above the limit of ${size - 1}; ` +
      `use a config drive instead: eectl config drive ${FIXTURE} --out config.iso\n`,
  );
});

test("with --measure a config too large for the command line fails fast, with no drive fallback offered", async (t) => {
  const r = await eectl(["config", "cmdline", FIXTURE, "--measure", "--limit", "64"]);
  t.is(r.code, 1);
  t.is(r.stdout, "");
  t.regex(
    r.stderr,
    /^eectl: EE-CONFIG-INVALID: measurement mode: the config must fit on the kernel command line \(/,
  );
  t.notRegex(r.stderr, /config drive/);
  t.is((await eectl(["config", "cmdline", FIXTURE, "--measure"])).code, 0, "the default limit holds it");
});

test("a bad config, a missing file or a bad --limit is refused by name", async (t) => {
  const dir = tempDir(t, "ee-config-cli-");
  const bad = join(dir, "bad.json");
  await writeFile(bad, JSON.stringify({ ...fixtureConfig, api_listen: "nowhere", extra: 1 }));
  for (const command of ["cmdline", "drive"]) {
    const r = await eectl([
      "config",
      command,
      bad,
      ...(command === "drive" ? ["--out", join(dir, "x.iso")] : []),
    ]);
    t.is(r.code, 1, command);
    t.is(r.stdout, "");
    t.regex(
      r.stderr,
      new RegExp(`^eectl: EE-CONFIG-INVALID: file:${bad}: .*api_listen: .*extra: unknown key`),
    );
  }
  t.false(existsSync(join(dir, "x.iso")), "nothing is written for a bad config");
  const missing = await eectl(["config", "cmdline", join(dir, "nope.json")]);
  t.is(
    missing.stderr,
    `eectl: EE-CONFIG-INVALID: file:${dir}/nope.json: cannot read the config file (ENOENT)\n`,
  );
  const limit = await eectl(["config", "cmdline", FIXTURE, "--limit", "lots"]);
  t.is(limit.code, 1);
  t.regex(limit.stderr, /^eectl: EE-REQ-INVALID: --limit "lots"/);
});

test("config drive writes an image the agent's chain reads the config from", async (t) => {
  const dir = tempDir(t, "ee-config-cli-");
  const out = join(dir, "config.iso");
  const r = await eectl(["config", "drive", FIXTURE, "--out", out]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^wrote .*config\.iso \(\d+ bytes, volume EE_CONFIG\)\n$/);
  await writeFile(join(dir, "cmdline"), "console=ttyS0\n");
  const loaded = await loadAgentConfig({
    env: {
      EASYENCLAVE_CONFIG_DRIVES: `${join(dir, "absent")},${out}`,
      EASYENCLAVE_CMDLINE: join(dir, "cmdline"),
    },
  });
  t.is(loaded.source, `drive:${out} config.json`);
  t.like(loaded.config, fixtureConfig);
  t.is(
    await cmdlineSource(join(dir, "cmdline")).read(),
    null,
    "the command line held nothing: the drive won",
  );
  const again = join(dir, "again.iso");
  await eectl(["config", "drive", FIXTURE, "--out", again]);
  t.deepEqual(readFileSync(again), readFileSync(out), "the same config gives the same image");
});

test("--help shows usage with examples for both commands", async (t) => {
  for (const [command, example] of [
    ["cmdline", "eectl config cmdline ./agent.json --measure"],
    ["drive", "eectl config drive ./agent.json --out config.iso"],
  ] as const) {
    const r = await eectl(["config", command, "--help"]);
    t.is(r.code, 0, command);
    t.true(r.stdout.includes(example), r.stdout);
  }
});
