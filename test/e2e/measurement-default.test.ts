// The default measurement policy end to end. In-process: a dev CP told to apply the production default
// (--refuse-unknown-measurements) refuses a real agent whose image nobody approved, keeps its baseline, and admits
// it on reconnect once an admin approves. As a user runs it: `eectl control-plane` says at start, in one warn
// line, which policy is in force and whether unknown measurements are refused.
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { createLogger } from "../../lib/log.ts";
import { eectl } from "../helpers/cli.ts";
import {
  ADMIN_TOKEN,
  agentConfig,
  agentState,
  devRoot,
  REPO,
  startTestAgent,
  startTestCp,
  tempDir,
  waitFor,
} from "../helpers/cluster.ts";
import { closedPort } from "../helpers/temp.ts";

type Line = Record<string, unknown> & { level: number; msg: string };

test("without --policy the production default refuses an unapproved image until an admin approves its baseline", async (t) => {
  const lines: Line[] = [];
  const log = createLogger("control-plane", "warn", {
    isTTY: false,
    write: (s: string) => void lines.push(JSON.parse(s) as Line),
  });
  const cp = await startTestCp(t, { refuseUnknownMeasurements: true, log });
  const start = lines.filter((l) => "measurement_policy" in l);
  t.is(start.length, 1, "one start line");
  t.like(start[0], { level: 40, measurement_policy: "default", unknown_measurements: "refused" });

  const agent = await startTestAgent(t, agentConfig(t, cp.cp.wsUrl, cp.devDir, { vm_name: "vm-unapproved" }));
  const baseline = await waitFor("the baseline", async () => {
    const { body } = await cp.api<{ baselines: { id: number; mrtd: string; last_agent_id: string }[] }>(
      "/api/v2/measurements",
    );
    return body.baselines[0];
  });
  t.is(baseline.last_agent_id, agent.agentId);
  const rejected = await cp.api<{ events: { agent_id: string; data: { reason: string } }[] }>(
    "/api/v2/events?kind=agent.rejected",
  );
  t.like(rejected.body.events[0], { data: { reason: "EE-ATT-MRTD-NOT-ALLOWED" } });
  t.not(agentState(cp.cp, agent.agentId), "registered");

  const approved = await cp.api(`/api/v2/measurements/baselines/${baseline.id}/approve`, { method: "POST" });
  t.is(approved.status, 201);
  await waitFor(
    "the agent registers on reconnect",
    () => agentState(cp.cp, agent.agentId) === "registered",
    20_000,
  );
});

/** Starts `eectl control-plane ARGS`, returns the first stderr JSON line with measurement_policy, then stops it. */
async function startLine(t: ExecutionContext, args: string[]): Promise<Line> {
  const child = spawn(
    process.execPath,
    [
      join(REPO, "bin/eectl.js"),
      "control-plane",
      "--listen",
      `127.0.0.1:${await closedPort()}`,
      "--data-dir",
      tempDir(t),
      "--admin-token",
      ADMIN_TOKEN,
      ...args,
    ],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, EE_LOG_LEVEL: "warn" } },
  );
  t.teardown(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const line = await waitFor(
    "the measurement policy line",
    () => {
      if (child.exitCode !== null) throw new Error(`control plane exited with ${child.exitCode}: ${stderr}`);
      return stderr
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Line)
        .find((l) => "measurement_policy" in l);
    },
    30_000,
  );
  child.kill("SIGTERM");
  return line;
}

test("eectl control-plane without --policy or --dev-attestation says at start that unknown measurements are refused", async (t) => {
  const line = await startLine(t, []);
  t.like(line, { level: 40, measurement_policy: "default", unknown_measurements: "refused" });
  t.regex(line.msg, /REFUSED.*eectl measurements approve/);
});

test("with --dev-attestation the start line says unknown measurements are accepted", async (t) => {
  const line = await startLine(t, ["--dev-attestation", await devRoot()]);
  t.like(line, { level: 40, measurement_policy: "dev-default", unknown_measurements: "accepted" });
  t.regex(line.msg, /DEV default.*ACCEPTED/);
});

test("--refuse-unknown-measurements beside --policy is EE-CONFIG-INVALID before anything starts", async (t) => {
  const dir = tempDir(t);
  const policy = join(dir, "policy.json");
  writeFileSync(policy, JSON.stringify({ mrtd: { mode: "warn" } }));
  const run = await eectl([
    "control-plane",
    "--listen",
    `127.0.0.1:${await closedPort()}`,
    "--data-dir",
    join(dir, "never-created"),
    "--policy",
    policy,
    "--refuse-unknown-measurements",
  ]);
  t.is(run.code, 1);
  t.regex(
    run.stderr,
    /^eectl: EE-CONFIG-INVALID: --refuse-unknown-measurements applies only without --policy/m,
  );
  t.is(run.stdout, "", "nothing served");
  t.false(existsSync(join(dir, "never-created")), "no data dir made");
});
