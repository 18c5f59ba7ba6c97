// The CP's agent-session machine, driven with SimulatedClock and provided effects: no sockets, no real timers.
import test from "ava";
import { createActor, fromPromise, SimulatedClock } from "xstate";
import {
  type AgentFacts,
  agentSessionMachine,
  type Liveness,
  type PendingRegistration,
  type SessionAuditKind,
  topLevelState,
} from "../../machines/agent-session.ts";
import { AttestationError } from "../../spec/errors.ts";

const facts: AgentFacts = {
  vm_name: "vm-1",
  node_size: "tiny",
  datacenter: "baremetal:local",
  mrtd: "a".repeat(96),
  rtmr: ["0".repeat(96), "0".repeat(96), "0".repeat(96), "0".repeat(96)],
  trust_root: "dev",
  agent_version: "test",
  policy_warnings: [],
  agent_pubkey: "00".repeat(32),
};

function registration(
  connId: number,
  workload: PendingRegistration["body"]["snapshot"] = undefined,
): PendingRegistration {
  return {
    connId,
    sessionId: `s${connId}`,
    nonce: new Uint8Array(32),
    at: 1000,
    body: {
      vm_name: "vm-1",
      node_size: "tiny",
      datacenter: "baremetal:local",
      agent_pubkey: new Uint8Array(32),
      nonce: new Uint8Array(32),
      quote: new Uint8Array(10),
      pop: new Uint8Array(64),
      ...(workload ? { snapshot: workload } : {}),
    },
  };
}

function harness(verify: (reg: PendingRegistration) => Promise<AgentFacts> = async () => facts) {
  const clock = new SimulatedClock();
  const effects: string[] = [];
  const audit: SessionAuditKind[] = [];
  const liveness: Liveness[] = [];
  const machine = agentSessionMachine.provide({
    actors: { verifyRegistration: fromPromise(({ input }: { input: PendingRegistration }) => verify(input)) },
    actions: {
      sendRegistered: ({ context }) => void effects.push(`registered@${context.connId}`),
      ackHeartbeat: ({ event }) => void (event.type === "HEARTBEAT" && effects.push(`ack:${event.seq}`)),
      refuse: ({ context }) => void effects.push(`refuse@${context.connId}`),
      replyUnexpected: () => void effects.push("unexpected"),
      record: (_, { kind }) => void audit.push(kind),
      noteLiveness: (_, l) => void liveness.push(l),
    },
  });
  const actor = createActor(machine, {
    clock,
    input: { agentId: "agt_1", forgetAfterMs: 60_000, register: registration(1) },
  });
  const state = () => topLevelState(actor.getSnapshot().value);
  return { clock, actor, effects, audit, liveness, state };
}

const settle = () => new Promise((r) => setImmediate(r));

test("a verified registration moves challenged → registered and answers the agent", async (t) => {
  const h = harness();
  h.actor.start();
  t.is(h.state(), "challenged");
  await settle();
  t.is(h.state(), "registered");
  t.deepEqual(h.effects, ["registered@1"]);
  t.deepEqual(h.audit, ["agent.registered"]);
  const ctx = h.actor.getSnapshot().context;
  t.deepEqual(ctx.facts, facts);
  t.is(ctx.pending, null, "the quote is not kept once verified");
  t.deepEqual(h.liveness, [{ at: 1000, seq: 0 }], "the registration is a sign of life");
});

test("a refused registration ends in rejected with the reason code", async (t) => {
  const h = harness(async () => {
    throw new AttestationError("EE-ATT-REPORTDATA-MISMATCH");
  });
  h.actor.start();
  await settle();
  t.is(h.state(), "rejected");
  t.is(h.actor.getSnapshot().status, "done");
  t.is(h.actor.getSnapshot().context.reason, "EE-ATT-REPORTDATA-MISMATCH");
  t.deepEqual(h.effects, ["refuse@1"]);
  t.deepEqual(h.audit, ["agent.rejected"]);
});

test("heartbeats are acked and noted as liveness; STALE (from the liveness sweep) makes it stale; a heartbeat brings it back", async (t) => {
  const h = harness();
  h.actor.start();
  await settle();
  for (let i = 1; i <= 5; i++) {
    h.clock.increment(2000);
    h.actor.send({ type: "HEARTBEAT", connId: 1, id: i, seq: i, at: 1000 + i * 2000 });
  }
  h.clock.increment(60_000);
  t.is(h.state(), "registered", "the machine keeps no stale timer of its own");
  t.deepEqual(h.liveness.at(-1), { at: 11_000, seq: 5 });
  h.actor.send({ type: "STALE", at: 70_000 });
  t.is(h.state(), "stale");
  t.is(h.actor.getSnapshot().context.reason, "heartbeat timeout");
  h.actor.send({ type: "HEARTBEAT", connId: 1, id: 6, seq: 6, at: 20_000 });
  t.is(h.state(), "registered");
  t.is(h.actor.getSnapshot().context.reason, null);
  t.deepEqual(h.liveness.at(-1), { at: 20_000, seq: 6 });
  t.is(h.liveness.length, 7, "the registration and six heartbeats");
  const ctx = h.actor.getSnapshot().context as unknown as Record<string, unknown>;
  t.false("lastHeartbeatAt" in ctx || "heartbeatSeq" in ctx, "liveness has one home, outside the machine");
  t.deepEqual(h.audit, ["agent.registered", "agent.stale", "agent.recovered"]);
  t.is(h.effects.filter((e) => e.startsWith("ack:")).length, 6);
});

test("a stale agent returns to the phase it was in", async (t) => {
  const h = harness();
  h.actor.start();
  await settle();
  h.actor.send({ type: "DEPLOY", deploymentId: "dep_1", app: "web", at: 1 });
  h.actor.send({ type: "DEPLOY_HEALTHY", deploymentId: "dep_1", at: 2 });
  t.is(h.state(), "healthy");
  h.actor.send({ type: "STALE", at: 3000 });
  t.is(h.state(), "stale");
  h.actor.send({ type: "HEARTBEAT", connId: 1, id: 1, seq: 1, at: 5000 });
  t.is(h.state(), "healthy");
  t.is(h.actor.getSnapshot().context.deploymentId, "dep_1");
});

test("deploy lifecycle: deploying → healthy → registered; failures and foreign ids", async (t) => {
  const h = harness();
  h.actor.start();
  await settle();
  h.actor.send({ type: "DEPLOY", deploymentId: "dep_1", app: "web", at: 1 });
  t.is(h.state(), "deploying");
  h.actor.send({ type: "DEPLOY_HEALTHY", deploymentId: "dep_other", at: 2 });
  t.is(h.state(), "deploying", "another deployment's result is ignored");
  h.actor.send({ type: "DEPLOY_FAILED", deploymentId: "dep_1", reason: "EE-WL-HEALTH", at: 3 });
  t.is(h.state(), "registered");
  t.is(h.actor.getSnapshot().context.reason, "EE-WL-HEALTH");
  h.actor.send({ type: "DEPLOY", deploymentId: "dep_2", app: "web", at: 4 });
  h.actor.send({ type: "DEPLOY_HEALTHY", deploymentId: "dep_2", at: 5 });
  h.actor.send({ type: "UNDEPLOYED", deploymentId: "dep_2", at: 6 });
  t.is(h.state(), "registered");
  t.is(h.actor.getSnapshot().context.deploymentId, null);
});

test("update in place: a DEPLOY replacing the healthy deployment keeps the agent healthy; the new one takes over once healthy, a failed one leaves the old one", async (t) => {
  const h = harness();
  h.actor.start();
  await settle();
  h.actor.send({ type: "DEPLOY", deploymentId: "dep_1", app: "web", at: 1 });
  h.actor.send({ type: "DEPLOY_HEALTHY", deploymentId: "dep_1", at: 2 });
  const ctx = () => h.actor.getSnapshot().context;
  // Without `replaces` (or naming another deployment), a second DEPLOY does not touch a healthy agent.
  h.actor.send({ type: "DEPLOY", deploymentId: "dep_x", app: "web", at: 3 });
  h.actor.send({ type: "DEPLOY", deploymentId: "dep_x", app: "web", at: 3, replaces: "dep_other" });
  t.is(ctx().replacing, null);

  // A failed update: the old one stays the agent's, healthy.
  h.actor.send({ type: "DEPLOY", deploymentId: "dep_2", app: "web", at: 4, replaces: "dep_1" });
  t.is(h.state(), "healthy");
  t.deepEqual(ctx().replacing, { deploymentId: "dep_2", app: "web" });
  // One update at a time.
  h.actor.send({ type: "DEPLOY", deploymentId: "dep_3", app: "web", at: 5, replaces: "dep_1" });
  t.is(ctx().replacing?.deploymentId, "dep_2");
  h.actor.send({ type: "DEPLOY_FAILED", deploymentId: "dep_2", reason: "EE-WORKLOAD-HEALTH-TIMEOUT", at: 6 });
  t.is(h.state(), "healthy");
  t.is(ctx().deploymentId, "dep_1");
  t.is(ctx().replacing, null);

  // A successful one: the new one becomes the agent's; the old one's UNDEPLOYED no longer concerns it.
  h.actor.send({ type: "DEPLOY", deploymentId: "dep_4", app: "web", at: 7, replaces: "dep_1" });
  h.actor.send({ type: "DEPLOY_HEALTHY", deploymentId: "dep_4", at: 8 });
  t.is(h.state(), "healthy");
  t.is(ctx().deploymentId, "dep_4");
  t.is(ctx().replacing, null);
  h.actor.send({ type: "UNDEPLOYED", deploymentId: "dep_1", at: 9 });
  t.is(h.state(), "healthy");
  t.is(ctx().deploymentId, "dep_4");
  t.deepEqual(
    h.audit.filter((k) => k !== "agent.registered"),
    [
      "agent.deploying",
      "agent.healthy",
      "agent.deploying",
      "agent.deploy_failed",
      "agent.deploying",
      "agent.healthy",
    ],
  );
});

test("the old deployment ending during an update leaves the agent deploying the new one", async (t) => {
  const h = harness();
  h.actor.start();
  await settle();
  h.actor.send({ type: "DEPLOY", deploymentId: "dep_1", app: "web", at: 1 });
  h.actor.send({ type: "DEPLOY_HEALTHY", deploymentId: "dep_1", at: 2 });
  h.actor.send({ type: "DEPLOY", deploymentId: "dep_2", app: "web", at: 3, replaces: "dep_1" });
  h.actor.send({ type: "DEPLOY_FAILED", deploymentId: "dep_1", reason: "EE-WORKLOAD-EXITED", at: 4 });
  t.is(h.state(), "deploying");
  t.is(h.actor.getSnapshot().context.deploymentId, "dep_2");
  t.is(h.actor.getSnapshot().context.replacing, null);
  h.actor.send({ type: "DEPLOY_HEALTHY", deploymentId: "dep_2", at: 5 });
  t.is(h.state(), "healthy");
});

test("a stale agent is forgotten after forget_after_ms", async (t) => {
  const h = harness();
  h.actor.start();
  await settle();
  h.actor.send({ type: "STALE", at: 3000 });
  t.is(h.state(), "stale");
  h.clock.increment(59_999);
  t.is(h.state(), "stale");
  h.clock.increment(1);
  t.is(h.state(), "gone");
  t.is(h.actor.getSnapshot().status, "done");
  t.true(h.audit.includes("agent.forgotten"));
});

test("a heartbeat before verification is answered as unexpected", async (t) => {
  let release: (f: AgentFacts) => void = () => {};
  const h = harness(() => new Promise((r) => (release = r)));
  h.actor.start();
  h.actor.send({ type: "HEARTBEAT", connId: 1, id: 1, seq: 1, at: 1 });
  t.deepEqual(h.effects, ["unexpected"]);
  release(facts);
  await settle();
  t.is(h.state(), "registered");
});

test("re-registration on a new connection is verified again and adopts the snapshot's workload", async (t) => {
  const h = harness();
  h.actor.start();
  await settle();
  h.actor.send({ type: "DISCONNECTED", connId: 1, at: 2 });
  t.is(h.actor.getSnapshot().context.connId, null);
  h.actor.send({
    type: "REGISTER",
    registration: registration(2, {
      workload: { deployment_id: "dep_9", app: "web", status: "healthy" },
      heartbeat_seq: 42,
      started_at: 0,
    }),
  });
  t.is(h.state(), "challenged");
  await settle();
  t.is(h.state(), "healthy");
  const ctx = h.actor.getSnapshot().context;
  t.is(ctx.connId, 2);
  t.is(ctx.deploymentId, "dep_9");
  t.deepEqual(h.liveness.at(-1), { at: 1000, seq: 42 }, "seq carries on from the agent's snapshot");
});

test("a DISCONNECTED for an older connection does not detach the current one", async (t) => {
  const h = harness();
  h.actor.start();
  await settle();
  h.actor.send({ type: "REGISTER", registration: registration(2) });
  await settle();
  h.actor.send({ type: "DISCONNECTED", connId: 1, at: 3 });
  t.is(h.actor.getSnapshot().context.connId, 2);
});

test("restored actors resume their phase without re-verification", (t) => {
  const clock = new SimulatedClock();
  const actor = createActor(agentSessionMachine, {
    clock,
    input: {
      agentId: "agt_1",
      forgetAfterMs: 60_000,
      restore: {
        facts,
        phase: "healthy",
        connId: 7,
        sessionId: "s7",
        deploymentId: "dep_1",
        app: "web",
        registeredAt: 1,
        reason: "actor crashed: boom",
      },
    },
  });
  actor.start();
  t.is(topLevelState(actor.getSnapshot().value), "healthy");
  t.true(actor.getSnapshot().context.restored);
  actor.send({ type: "STALE", at: 3000 });
  t.is(topLevelState(actor.getSnapshot().value), "stale");
});
