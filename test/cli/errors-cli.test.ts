// How eectl fails, run as a user would (bin/eectl.js as a child process): one line `eectl: CODE: message` on
// stderr, or with --json the contract's error object on stdout; exit 1 and no stack trace either way.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { type EectlRun, eectl } from "../helpers/cli.ts";
import {
  ADMIN_TOKEN,
  agentConfig,
  startTestAgent,
  startTestCp,
  tempDir,
  waitFor,
} from "../helpers/cluster.ts";
import { webCompose } from "../helpers/workloads.ts";

interface ErrorObject {
  error: { code: string; message: string; details?: unknown };
}

/** The run's stdout as exactly one error object (exit 1, nothing on stderr). */
function errorJson(t: ExecutionContext, run: EectlRun): ErrorObject["error"] {
  t.is(run.code, 1, run.stderr);
  t.is(run.stderr, "");
  const lines = run.stdout.trimEnd().split("\n");
  t.is(lines.length, 1, run.stdout);
  const body = JSON.parse(lines[0]!) as ErrorObject;
  t.deepEqual(Object.keys(body), ["error"]);
  return body.error;
}

/** The run's stderr as one `eectl: CODE: message` line (exit 1, nothing on stdout); returns the message. */
function errorLine(t: ExecutionContext, run: EectlRun, code: string): string {
  t.is(run.code, 1);
  t.is(run.stdout, "");
  const m = new RegExp(`^eectl: ${code}: (.+)\\n`).exec(run.stderr);
  t.truthy(m, run.stderr);
  t.notRegex(run.stderr, /\n\s+at /, "no stack trace");
  return m?.[1] ?? "";
}

const UNREACHABLE = ["--cp", "http://127.0.0.1:1", "--token", "some-token"];

test("deploy --json with no fitting agent: the 409 error object with each agent's reasons, on stdout", async (t) => {
  const { cp, devDir } = await startTestCp(t);
  const agent = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-json" }));
  await waitFor("registered", () => cp.index.get(agent.agentId)?.state === "registered");
  const env = { EE_CP_URL: cp.url, EE_TOKEN: ADMIN_TOKEN };
  const compose = join(tempDir(t, "ee-errors-cli-"), "compose.yaml");
  writeFileSync(compose, webCompose());

  const args = ["deploy", "--app", "web", "--compose", compose, "--node-size", "llm", "--json"];
  const refused = errorJson(t, await eectl(args, { env }));
  t.is(refused.code, "EE-PLACE-NO-AGENT");
  const { agents } = refused.details as { agents: { agent_id: string; reasons: string[] }[] };
  t.deepEqual(
    agents.map((a) => [a.agent_id, a.reasons]),
    [[agent.agentId, ["EE-PLACE-NODE-SIZE"]]],
  );
  t.deepEqual(cp.deployments.list({}), [], "nothing was created");

  // The same rule for every command with --json: a REST error, and a bad token.
  const missing = errorJson(t, await eectl(["logs", "agt_nobody", "--json"], { env }));
  t.is(missing.code, "EE-NOT-FOUND");
  const denied = errorJson(t, await eectl(["agents", "list", "--json", "--token", "wrong"], { env }));
  t.deepEqual(denied, { code: "EE-AUTH-INVALID", message: "The bearer token is not valid." });
});

test("a missing --compose or --context file is EE-CLI-FILE naming it, before any request", async (t) => {
  const dir = tempDir(t, "ee-errors-cli-");
  const compose = join(dir, "compose.yaml");
  writeFileSync(compose, "services: {}\n");
  const nope = join(dir, "nope.yaml");
  mkdirSync(join(dir, "ctx"));

  for (const command of [["deploy"], ["preflight"]]) {
    const run = await eectl([...command, "--app", "web", "--compose", nope, ...UNREACHABLE]);
    t.is(errorLine(t, run, "EE-CLI-FILE"), `--compose ${nope}: no such file`);
  }
  const registered = await eectl(["apps", "register", "web@1", "--compose", nope, ...UNREACHABLE]);
  t.is(errorLine(t, registered, "EE-CLI-FILE"), `--compose ${nope}: no such file`);

  const context = ["deploy", "--app", "web", "--compose", compose, "--context", join(dir, "ctx")];
  const isDir = await eectl([...context, ...UNREACHABLE]);
  t.is(errorLine(t, isDir, "EE-CLI-FILE"), `--context ${join(dir, "ctx")}: is a directory`);

  const json = errorJson(
    t,
    await eectl(["deploy", "--app", "web", "--compose", nope, "--json", ...UNREACHABLE]),
  );
  t.deepEqual(json, {
    code: "EE-CLI-FILE",
    message: `--compose ${nope}: no such file`,
    details: { flag: "--compose", path: nope },
  });
});

test("a bad command line is EE-CLI-USAGE; with --json the error object on stdout", async (t) => {
  const flag = await eectl(["agents", "list", "--bogus"]);
  t.regex(errorLine(t, flag, "EE-CLI-USAGE"), /--bogus/);
  t.regex(flag.stderr, /\$ eectl agents list /, "with the command's usage");

  const flagJson = errorJson(t, await eectl(["agents", "list", "--bogus", "--json"]));
  t.is(flagJson.code, "EE-CLI-USAGE");
  t.regex(flagJson.message, /--bogus/);

  errorLine(t, await eectl(["no-such-command"]), "EE-CLI-USAGE");
  t.is(errorJson(t, await eectl(["agents", "show", "--json"])).code, "EE-CLI-USAGE", "missing AGENT_ID");
  t.is(errorJson(t, await eectl(["deploy", "--json"])).code, "EE-CLI-USAGE", "missing --app");
});

test("an unreachable control plane with --json is EE-CLI-UNREACHABLE on stdout", async (t) => {
  const down = errorJson(t, await eectl(["agents", "list", "--json", ...UNREACHABLE]));
  t.is(down.code, "EE-CLI-UNREACHABLE");
  t.regex(down.message, /^cannot reach the control plane at http:\/\/127\.0\.0\.1:1/);
  const logs = errorJson(t, await eectl(["logs", "agt_x", "-f", "--json", ...UNREACHABLE]));
  t.is(logs.code, "EE-CLI-UNREACHABLE");
});

test("a failure without a code of ours is still one line, no stack trace; EE_DEBUG=1 adds the stack", async (t) => {
  const file = join(tempDir(t, "ee-errors-cli-"), "a-file");
  writeFileSync(file, "");
  // A directory under a regular file: Node's ENOTDIR, which no command maps to a code of its own.
  const args = ["attest", "dev-init", "--dir", join(file, "pki")];
  const run = await eectl(args);
  t.regex(errorLine(t, run, "EE-[A-Z-]+"), /ENOTDIR/);
  t.is(run.stderr.split("\n").length, 2, run.stderr);
  const debug = await eectl(args, { env: { EE_DEBUG: "1" } });
  t.is(debug.code, 1);
  t.regex(debug.stderr, /\n\s+at /);
});
