// eectl operator commands run as a user would (a child process via bin/eectl.js) against a real CP.
import test from "ava";
import { eectl, eectlRunning } from "../helpers/cli.ts";
import { ADMIN_TOKEN, agentConfig, startTestAgent, startTestCp, waitFor } from "../helpers/cluster.ts";

test("agents list/show print live state; --json prints the REST body; env vars stand in for flags", async (t) => {
  const { cp, devDir } = await startTestCp(t);
  const agent = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-cli" }));
  await waitFor("registered", () => cp.index.get(agent.agentId)?.state === "registered");

  const table = await eectl(["agents", "list", "--cp", cp.url, "--token", ADMIN_TOKEN]);
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, /^AGENT\s+VM\s+SIZE/);
  t.regex(table.stdout, new RegExp(`${agent.agentId}\\s+vm-cli\\s+tiny\\s+baremetal:local\\s+registered`));

  const env = { EE_CP_URL: cp.url, EE_TOKEN: ADMIN_TOKEN };
  const json = await eectl(["agents", "list", "--json"], { env });
  t.is(json.code, 0, json.stderr);
  const body = JSON.parse(json.stdout) as { agents: { agent_id: string; state: string }[] };
  t.deepEqual(
    body.agents.map((a) => [a.agent_id, a.state]),
    [[agent.agentId, "registered"]],
  );

  const show = await eectl(["agents", "show", agent.agentId, "--json"], { env });
  t.is(show.code, 0, show.stderr);
  t.is((JSON.parse(show.stdout) as { machine: { value: string } }).machine.value, "registered");
});

test("agents drain/undrain take an agent out of placement and back; --json prints the agent", async (t) => {
  const { cp, devDir } = await startTestCp(t);
  const agent = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-drain" }));
  await waitFor("registered", () => cp.index.get(agent.agentId)?.state === "registered");
  const env = { EE_CP_URL: cp.url, EE_TOKEN: ADMIN_TOKEN };
  const drain = await eectl(["agents", "drain", agent.agentId, "--json"], { env });
  t.is(drain.code, 0, drain.stderr);
  t.like(JSON.parse(drain.stdout), { agent_id: agent.agentId, drained: true });
  const shown = await eectl(["agents", "show", agent.agentId], { env });
  t.regex(shown.stdout, /^drained: true$/m);
  const undrain = await eectl(["agents", "undrain", agent.agentId], { env });
  t.is(undrain.code, 0, undrain.stderr);
  t.regex(undrain.stdout, new RegExp(`agent ${agent.agentId} is not drained`));
  const unknown = await eectl(["agents", "drain", "agt_nobody"], { env });
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /^eectl: EE-NOT-FOUND: /);
});

test("errors are one line with a stable code and exit 1", async (t) => {
  const { cp } = await startTestCp(t);
  const bad = await eectl(["agents", "list", "--cp", cp.url, "--token", "wrong-token-wrong-token"]);
  t.is(bad.code, 1);
  t.is(bad.stderr.trim(), "eectl: EE-AUTH-INVALID: The bearer token is not valid.");
  const none = await eectl(["agents", "show", "agt_nobody", "--cp", cp.url, "--token", ADMIN_TOKEN]);
  t.is(none.code, 1);
  t.regex(none.stderr, /^eectl: EE-NOT-FOUND: /);
  const down = await eectl(["agents", "list", "--cp", "http://127.0.0.1:1", "--token", ADMIN_TOKEN]);
  t.is(down.code, 1);
  t.regex(down.stderr, /^eectl: EE-CLI-UNREACHABLE: /);
});

test("agents watch streams transitions one line each", async (t) => {
  const { cp, devDir } = await startTestCp(t);
  const first = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-first" }));
  await waitFor("first registered", () => cp.index.get(first.agentId)?.state === "registered");
  const watch = eectlRunning(t, ["agents", "watch", "--initial", "--cp", cp.url, "--token", ADMIN_TOKEN]);
  // The initial listing is written in the same tick as the subscription: after it, no transition is missed.
  await waitFor(
    "initial listing",
    () => watch.stdout().includes(`${first.agentId} vm-first is registered`),
    15_000,
  );
  const agent = await startTestAgent(t, agentConfig(t, cp.wsUrl, devDir, { vm_name: "vm-watch" }));
  await waitFor("transition lines", () => watch.stdout().includes("challenged -> registered"), 10_000);
  t.regex(watch.stdout(), new RegExp(`${agent.agentId} vm-watch \\(new\\) -> challenged`));
  t.regex(watch.stdout(), new RegExp(`${agent.agentId} vm-watch challenged -> registered`));
});

test("every command has --help", async (t) => {
  for (const cmd of [
    ["control-plane"],
    ["agent"],
    ["attest", "dev-init"],
    ["agents", "list"],
    ["agents", "show"],
    ["agents", "watch"],
    ["agents", "drain"],
    ["agents", "undrain"],
  ]) {
    const r = await eectl([...cmd, "--help"]);
    t.is(r.code, 0, cmd.join(" "));
    t.regex(r.stdout, /Usage/, cmd.join(" "));
  }
});
