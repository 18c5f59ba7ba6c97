// The CP's deployment machine, driven with a SimulatedClock and recorded effects: no agents, no database.
import test from "ava";
import { createActor, SimulatedClock } from "xstate";
import { type DeploymentStatus, deploymentMachine, statusOf } from "../../machines/deployment.ts";

function harness(resume?: { status: DeploymentStatus }) {
  const clock = new SimulatedClock();
  const effects: string[] = [];
  const record = (name: string) => (_: unknown, params: unknown) => {
    const status = (params as { status?: string } | undefined)?.status;
    effects.push(status ? `${name}:${status}` : name);
  };
  const machine = deploymentMachine.provide({
    actions: {
      persist: record("persist"),
      sessionHealthy: record("sessionHealthy"),
      sessionFailed: record("sessionFailed"),
      sessionUndeployed: record("sessionUndeployed"),
      sendUndeploy: record("sendUndeploy"),
    },
  });
  const base = {
    deploymentId: "d-1",
    app: "web",
    agentId: "agt_1",
    code: null,
    message: null,
    composeHash: null,
    images: [],
    progress: [{ step: "dispatched" as const, at: 0 }],
    createdAt: 0,
    updatedAt: 0,
  };
  const actor = createActor(machine, {
    clock,
    input: {
      deploymentId: "d-1",
      app: "web",
      agentId: "agt_1",
      at: 0,
      ackTimeoutMs: 1000,
      ...(resume ? { resume: { status: resume.status, context: base } } : {}),
    },
  });
  actor.start();
  const status = () => statusOf(actor.getSnapshot().value);
  const steps = () => actor.getSnapshot().context.progress.map((p) => p.step);
  return { clock, actor, effects, status, steps };
}

test("steps from the agent move it pending → deploying → healthy, each step recorded once", (t) => {
  const h = harness();
  t.is(h.status(), "pending");
  for (const step of ["preparing", "preparing", "starting", "gating", "running", "running"] as const)
    h.actor.send({ type: "STEP", step, at: 1, composeHash: "ab" });
  t.is(h.status(), "healthy");
  t.deepEqual(h.steps(), ["dispatched", "preparing", "starting", "gating", "running"]);
  t.deepEqual(h.effects, [
    "persist:pending",
    "persist:deploying",
    "persist:deploying",
    "persist:deploying",
    "persist:healthy",
    "sessionHealthy",
  ]);
  t.is(h.actor.getSnapshot().context.composeHash, "ab");
});

test("a pull's bytes update its one pulling entry, persisted each time; the next step is a new entry", (t) => {
  const h = harness();
  h.actor.send({ type: "STEP", step: "pulling", at: 1 });
  h.actor.send({ type: "STEP", step: "pulling", at: 1, bytes: { done_bytes: 10, total_bytes: 100 } });
  h.actor.send({ type: "STEP", step: "pulling", at: 1, bytes: { done_bytes: 60, total_bytes: 100 } });
  h.actor.send({ type: "STEP", step: "preparing", at: 2 });
  t.is(h.status(), "deploying");
  t.deepEqual(h.actor.getSnapshot().context.progress.slice(1), [
    { step: "pulling", at: 1, bytes_done: 60, bytes_total: 100 },
    { step: "preparing", at: 2 },
  ]);
  t.deepEqual(h.effects, [
    "persist:pending",
    "persist:deploying",
    "persist:deploying",
    "persist:deploying",
    "persist:deploying",
  ]);
});

test("a failed step ends it with the agent's code", (t) => {
  const h = harness();
  h.actor.send({ type: "STEP", step: "preparing", at: 1 });
  h.actor.send({
    type: "STEP",
    step: "failed",
    at: 2,
    code: "EE-WORKLOAD-IMAGE-MISSING",
    message: "no image",
  });
  t.is(h.status(), "failed");
  t.is(h.actor.getSnapshot().context.code, "EE-WORKLOAD-IMAGE-MISSING");
  t.is(h.actor.getSnapshot().status, "done");
  t.true(h.effects.includes("sessionFailed"));
});

test("no first step within the ack timeout fails it as EE-WORKLOAD-AGENT-LOST", (t) => {
  const h = harness();
  h.clock.increment(999);
  t.is(h.status(), "pending");
  h.clock.increment(1);
  t.is(h.status(), "failed");
  t.is(h.actor.getSnapshot().context.code, "EE-WORKLOAD-AGENT-LOST");
});

test("an agent lost mid-deploy fails it; a healthy deployment survives a lost agent", (t) => {
  const lost = harness();
  lost.actor.send({ type: "STEP", step: "gating", at: 1 });
  lost.actor.send({ type: "AGENT_LOST", at: 2, reason: "stale" });
  t.is(lost.status(), "failed");
  t.is(lost.actor.getSnapshot().context.code, "EE-WORKLOAD-AGENT-LOST");
  t.deepEqual(lost.steps().at(-1), "agent_lost");

  const healthy = harness();
  healthy.actor.send({ type: "STEP", step: "running", at: 1 });
  healthy.actor.send({ type: "AGENT_LOST", at: 2, reason: "stale" });
  t.is(healthy.status(), "healthy");
});

test("undeploy sends undeploy and ends undeployed once the agent reports stopped", (t) => {
  const h = harness();
  h.actor.send({ type: "STEP", step: "running", at: 1 });
  h.actor.send({ type: "UNDEPLOY", at: 2 });
  t.is(h.status(), "undeploying");
  t.true(h.effects.includes("sendUndeploy"));
  h.actor.send({ type: "STEP", step: "stopping", at: 3 });
  t.is(h.status(), "undeploying");
  h.actor.send({ type: "STEP", step: "stopped", at: 4 });
  t.is(h.status(), "undeployed");
  t.true(h.effects.includes("sessionUndeployed"));
});

test("undeploy while deploying aborts it; a failing step then also ends it undeployed", (t) => {
  const h = harness();
  h.actor.send({ type: "STEP", step: "starting", at: 1 });
  h.actor.send({ type: "UNDEPLOY", at: 2 });
  h.actor.send({ type: "STEP", step: "failed", at: 3, code: "EE-WORKLOAD-START-FAILED" });
  t.is(h.status(), "undeployed");
});

test("a deployment recreated from the store resumes its status", (t) => {
  for (const status of ["deploying", "healthy", "undeploying"] as const) {
    const h = harness({ status });
    t.is(h.status(), status);
  }
});
