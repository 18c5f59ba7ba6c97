// Each machine's exported state union, three ways: the list it is built from, the machine config's top-level
// states at rest, and the enum the OpenAPI documents publish for it. A state added on any one side fails here
// (the lists at run time; _UnionsMatchMachines, at type-check time, holds each union to its machine's state value).
import { readFileSync } from "node:fs";
import test from "ava";
import type { AnyStateMachine, StateValueFrom } from "xstate";
import { parse } from "yaml";
import { AGENT_CONNECTION_STATES, agentConnectionMachine } from "../../machines/agent-connection.ts";
import { agentSessionMachine, SESSION_STATES } from "../../machines/agent-session.ts";
import { attestationRefreshMachine, REFRESH_STATES } from "../../machines/attestation-refresh.ts";
import { DEPLOY_GATE_STATES, deployGateMachine } from "../../machines/deploy-gate.ts";
import { DEPLOYMENT_STATUSES, deploymentMachine } from "../../machines/deployment.ts";
import { workloadStepSchema } from "../../spec/protocol.ts";

type YamlNode = { [key: string]: YamlNode } & unknown[];
const doc = (name: string): YamlNode =>
  parse(readFileSync(new URL(`../../spec/${name}`, import.meta.url), "utf8")) as YamlNode;
const controlPlane = doc("control-plane.yaml");
const agentControl = doc("agent-control.yaml");

/** The enum at `path` in an OpenAPI document; fails the test when the path does not lead to one. */
function enumAt(root: YamlNode, path: string[]): string[] {
  let node: YamlNode | undefined = root;
  for (const key of path) node = node?.[key];
  const values = node?.enum;
  if (!Array.isArray(values)) throw new Error(`no enum at ${path.join(" › ")}`);
  return values.map(String);
}

interface StateConfig {
  always?: string | { guard?: unknown } | (string | { guard?: unknown })[];
}

/** A transient state leaves in the step it is entered: its last `always` transition has no guard. */
function isTransient(config: StateConfig): boolean {
  const always = config.always;
  if (always === undefined) return false;
  const last = Array.isArray(always) ? always.at(-1) : always;
  return typeof last === "string" || (last !== undefined && last.guard === undefined);
}

/** The machine's top-level states, split into those an actor can rest in and the transient ones. */
function topLevel(machine: AnyStateMachine): { resting: string[]; transient: string[] } {
  const states = Object.entries((machine.config.states ?? {}) as Record<string, StateConfig>);
  return {
    resting: states.filter(([, c]) => !isTransient(c)).map(([name]) => name),
    transient: states.filter(([, c]) => isTransient(c)).map(([name]) => name),
  };
}

const sorted = (xs: readonly string[]) => [...xs].sort();

// Type-level: the union equals the top-level names of the machine's state value, transient ones excepted.
type TopOf<V> = V extends string ? V : keyof V & string;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
type Resting<M extends AnyStateMachine, Transient extends string> = Exclude<
  TopOf<StateValueFrom<M>>,
  Transient
>;
type _UnionsMatchMachines = [
  Assert<Same<(typeof SESSION_STATES)[number], Resting<typeof agentSessionMachine, "boot" | "resume">>>,
  Assert<Same<(typeof DEPLOYMENT_STATUSES)[number], Resting<typeof deploymentMachine, "boot">>>,
  Assert<Same<(typeof AGENT_CONNECTION_STATES)[number], Resting<typeof agentConnectionMachine, never>>>,
  Assert<Same<(typeof DEPLOY_GATE_STATES)[number], Resting<typeof deployGateMachine, "entering">>>,
  Assert<Same<(typeof REFRESH_STATES)[number], Resting<typeof attestationRefreshMachine, never>>>,
];

test("agent session: SessionState = the machine's resting states = AgentState in control-plane.yaml", (t) => {
  const { resting, transient } = topLevel(agentSessionMachine);
  t.deepEqual(transient, ["boot", "resume"]);
  t.deepEqual(sorted(SESSION_STATES), sorted(resting));
  t.deepEqual(sorted(SESSION_STATES), sorted(enumAt(controlPlane, ["components", "schemas", "AgentState"])));
});

test("deployment: DeploymentStatus = the machine's resting states = DeploymentStatus in control-plane.yaml", (t) => {
  const { resting, transient } = topLevel(deploymentMachine);
  t.deepEqual(transient, ["boot"]);
  t.deepEqual(sorted(DEPLOYMENT_STATUSES), sorted(resting));
  t.deepEqual(
    sorted(DEPLOYMENT_STATUSES),
    sorted(enumAt(controlPlane, ["components", "schemas", "DeploymentStatus"])),
  );
});

test("agent connection: AgentConnectionState = the machine's states = `connection` of the agent's /api/health", (t) => {
  const { resting, transient } = topLevel(agentConnectionMachine);
  t.deepEqual(transient, []);
  t.deepEqual(sorted(AGENT_CONNECTION_STATES), sorted(resting));
  const health = ["paths", "/api/health", "get", "responses", "200", "content", "application/json", "schema"];
  t.deepEqual(
    sorted(AGENT_CONNECTION_STATES),
    sorted(enumAt(agentControl, [...health, "properties", "connection"])),
  );
});

test("deploy gate: DeployGateState = the machine's resting states; less `failing`, the step enum everywhere", (t) => {
  const { resting, transient } = topLevel(deployGateMachine);
  t.deepEqual(transient, ["entering"]);
  t.deepEqual(sorted(DEPLOY_GATE_STATES), sorted(resting));
  // `failing` reports the step that failed until cleanup ends (stepOf), so it is the one state that is no step.
  const steps = sorted(DEPLOY_GATE_STATES.filter((s) => s !== "failing"));
  t.deepEqual(steps, sorted(workloadStepSchema.options), "the protocol's workload step");
  t.deepEqual(
    steps,
    sorted(enumAt(agentControl, ["components", "schemas", "WorkloadStatus", "properties", "step"])),
    "`step` of the agent's WorkloadStatus",
  );
});

test("attestation refresh: RefreshState = the machine's states", (t) => {
  const { resting, transient } = topLevel(attestationRefreshMachine);
  t.deepEqual(transient, []);
  t.deepEqual(sorted(REFRESH_STATES), sorted(resting));
});
