// `eectl agent` in-process: config errors come out as one `eectl: CODE: message` line and exit status 1.
import { PassThrough } from "node:stream";
import test from "ava";
import { Cli } from "clipanion";
import { AgentCommand } from "../../cli/commands/agent.ts";

async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const cli = new Cli({ binaryName: "eectl" });
  cli.register(AgentCommand);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d) => (out += d));
  stderr.on("data", (d) => (err += d));
  const saved = process.env.EASYENCLAVE_CONFIG;
  if (env.EASYENCLAVE_CONFIG === undefined) delete process.env.EASYENCLAVE_CONFIG;
  else process.env.EASYENCLAVE_CONFIG = env.EASYENCLAVE_CONFIG;
  try {
    const code = await cli.run(args, { stdin: process.stdin, stdout, stderr });
    return { code, out, err };
  } finally {
    if (saved === undefined) delete process.env.EASYENCLAVE_CONFIG;
    else process.env.EASYENCLAVE_CONFIG = saved;
  }
}

test.serial("a missing --config file fails with EE-CONFIG-INVALID naming it", async (t) => {
  const r = await run(["agent", "--config", "/nonexistent/agent.json"]);
  t.is(r.code, 1);
  t.is(
    r.err,
    "eectl: EE-CONFIG-INVALID: file:/nonexistent/agent.json: cannot read the config file (ENOENT)\n",
  );
});

test.serial(
  "without --config, EASYENCLAVE_CONFIG is the first place tried; missing, the chain goes on",
  async (t) => {
    const r = await run(["agent"], { EASYENCLAVE_CONFIG: "/nonexistent/env.json" });
    t.is(r.code, 1);
    t.regex(r.err, /no agent config found \(sources tried: file:\/nonexistent\/env\.json, drive:/);
  },
);

test.serial("with neither, the error says how to give a config", async (t) => {
  const r = await run(["agent"]);
  t.is(r.code, 1);
  t.regex(r.err, /pass --config FILE or set EASYENCLAVE_CONFIG/);
});

test.serial("--help describes the command", async (t) => {
  const r = await run(["agent", "--help"]);
  t.is(r.code, 0);
  t.regex(r.out, /Run the host agent/);
  t.regex(r.out, /--config/);
});
