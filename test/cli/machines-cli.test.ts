// `eectl machines list|export` as a user runs them: every machine in machines/ exports JSON that rebuilds, with
// createMachine, into the same states and the same events per state (what the Stately editor and visualizer draw).
import test from "ava";
import { type AnyStateMachine, type AnyStateNode, createMachine } from "xstate";
import { MACHINE_NAMES } from "../../cli/commands/inspect.ts";
import { agentConnectionMachine } from "../../machines/agent-connection.ts";
import { agentSessionMachine } from "../../machines/agent-session.ts";
import { attestationRefreshMachine } from "../../machines/attestation-refresh.ts";
import { deployGateMachine } from "../../machines/deploy-gate.ts";
import { deploymentMachine } from "../../machines/deployment.ts";
import { eectl } from "../helpers/cli.ts";

const MACHINES: Record<string, AnyStateMachine> = {
  "agent-session": agentSessionMachine,
  deployment: deploymentMachine,
  "agent-connection": agentConnectionMachine,
  "attestation-refresh": attestationRefreshMachine,
  "deploy-gate": deployGateMachine,
};

/** Every state node by id, with the events it handles itself. */
function graph(node: AnyStateNode, out: Record<string, string[]> = {}): Record<string, string[]> {
  out[node.id] = [...node.ownEvents].sort();
  for (const child of Object.values(node.states)) graph(child as AnyStateNode, out);
  return out;
}

test("every machine exports JSON that rebuilds into the same states and events", async (t) => {
  t.deepEqual([...MACHINE_NAMES].sort(), Object.keys(MACHINES).sort(), "export covers every machine");
  const runs = await Promise.all(MACHINE_NAMES.map((name) => eectl(["machines", "export", name])));
  for (const [i, name] of MACHINE_NAMES.entries()) {
    const run = runs[i]!;
    t.is(run.code, 0, `${name}: ${run.stderr}`);
    const json = JSON.parse(run.stdout) as { id: string; states: Record<string, unknown> };
    const machine = MACHINES[name]!;
    t.is(json.id, machine.id, name);
    t.deepEqual(Object.keys(json.states), Object.keys(machine.root.states), name);
    t.deepEqual(graph(createMachine(json as never).root), graph(machine.root), name);
  }
});

test("machines list names every machine; an unknown name is EE-CONFIG-INVALID", async (t) => {
  const list = await eectl(["machines", "list", "--json"]);
  t.is(list.code, 0, list.stderr);
  const { machines } = JSON.parse(list.stdout) as { machines: { name: string; states: string[] }[] };
  t.deepEqual(
    machines.map((m) => m.name),
    MACHINE_NAMES,
  );
  t.true(machines.find((m) => m.name === "agent-session")!.states.includes("healthy"));
  const bad = await eectl(["machines", "export", "nope"]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^eectl: EE-CONFIG-INVALID: unknown machine "nope"/);
});
