import test from "ava";
import type { AgentLink } from "../../actors/agent-link.ts";
import { type StatelyEvent, statelyObserver } from "../../transport/inspection.ts";
import { waitFor } from "../helpers/cluster.ts";
import { supervisorFixture } from "../helpers/supervisor.ts";

class RecordingLink implements AgentLink {
  sent: string[] = [];
  closed: { connId: number; code: number }[] = [];
  failSends = 0;
  send(_agentId: string, type: string): boolean {
    if (this.failSends > 0) {
      this.failSends--;
      throw new Error("socket write failed");
    }
    this.sent.push(type);
    return true;
  }
  close(connId: number, code: number): void {
    this.closed.push({ connId, code });
  }
  #frameId = 1;
  nextFrameId(): number {
    return this.#frameId++;
  }
}

/** `clock`: the supervisor's time, when a test moves it; the real clock otherwise. */
async function setup(t: import("ava").ExecutionContext, clock?: { now: number }) {
  const link = new RecordingLink();
  const fixture = await supervisorFixture(t, link, clock ? () => clock.now : undefined);
  const { supervisor: sup, index, events } = fixture;
  const agentId = await fixture.register();
  return { sup, link, index, events, agentId };
}

test("a crashed actor is recreated in its phase from its facts, and the crash is audited", async (t) => {
  const { sup, link, index, events, agentId } = await setup(t);
  t.deepEqual(link.sent, ["registered"]);
  sup.send(agentId, { type: "DEPLOY", deploymentId: "dep_1", app: "web", at: Date.now() });
  sup.send(agentId, { type: "DEPLOY_HEALTHY", deploymentId: "dep_1", at: Date.now() });
  const before = sup.get(agentId);

  // A stale agent's heartbeat goes through its actor (live ones are acked on the fast path): make the ack's
  // send throw inside the actor.
  sup.send(agentId, { type: "STALE", at: Date.now() });
  link.failSends = 1;
  sup.heartbeat(agentId, 1, 7, 1);
  await waitFor("recreated", () => sup.get(agentId) !== before && sup.get(agentId));
  const rec = index.get(agentId)!;
  t.is(rec.state, "healthy");
  t.is(rec.deployment_id, "dep_1");
  t.true(rec.restored);
  t.regex(rec.reason ?? "", /actor crashed: socket write failed/);
  t.is(rec.heartbeat_seq, 1, "liveness carries over the crash");
  t.truthy(rec.last_heartbeat_at);
  t.is(events.list({ kind: "agent.actor_crashed" }).length, 1);

  sup.heartbeat(agentId, 1, 8, 2);
  t.is(link.sent.at(-1), "heartbeat_ack", "the recreated actor serves the same connection");
});

test("an agent whose actor keeps crashing is dropped and its connection closed", async (t) => {
  const { sup, link, index, agentId } = await setup(t);
  for (let i = 0; i < 6; i++) {
    sup.send(agentId, { type: "STALE", at: Date.now() });
    link.failSends = 1;
    sup.heartbeat(agentId, 1, i, i);
  }
  await waitFor("dropped", () => sup.get(agentId) === undefined);
  t.is(index.get(agentId), undefined);
  t.deepEqual(link.closed, [{ connId: 1, code: 1011 }]);
});

test("an inspector follows the agent's actor when it is recreated, and ends when the agent is dropped", async (t) => {
  const { sup, link, agentId } = await setup(t);
  const events: StatelyEvent[] = [];
  let ended = 0;
  sup.inspect(agentId, await statelyObserver((e) => events.push(e)), () => ended++);
  const first = sup.get(agentId)!.sessionId;
  const crash = (i: number) => {
    sup.send(agentId, { type: "STALE", at: Date.now() });
    link.failSends = 1;
    sup.heartbeat(agentId, 1, i, i);
  };
  crash(0);
  await waitFor("recreated", () => sup.get(agentId)?.sessionId !== first && sup.get(agentId));
  const second = sup.get(agentId)!.sessionId;
  await waitFor("the new actor's present state", () =>
    events.some((e) => e.type === "@xstate.snapshot" && e.sessionId === second),
  );
  t.is(ended, 0, "a restart does not end the stream");
  for (let i = 1; i < 7; i++) crash(i);
  await waitFor("dropped", () => sup.get(agentId) === undefined);
  await waitFor("the stream's end", () => ended === 1);
  t.throws(() => sup.inspect(agentId, { next: () => {} }, () => {}), { message: /not known/ });
});

test("live sessions' heartbeats are acked without waking their actors; the liveness sweep makes silent ones stale", async (t) => {
  const { sup, link, index, agentId } = await setup(t);
  const before = sup.get(agentId)!.getSnapshot();
  sup.heartbeat(agentId, 1, 9, 1);
  t.is(link.sent.at(-1), "heartbeat_ack");
  t.is(sup.get(agentId)!.getSnapshot(), before, "no machine transition for a live heartbeat");
  t.true((index.get(agentId)?.last_heartbeat_at ?? 0) >= before.context.registeredAt!);
  t.is(index.get(agentId)?.heartbeat_seq, 1);
  sup.sweep();
  t.is(index.get(agentId)?.state, "registered", "heard from within stale_after_ms");
});

test("the liveness sweep makes a session stale stale_after_ms after it was last heard from, not before", async (t) => {
  const clock = { now: Date.now() };
  const { sup, index, agentId } = await setup(t, clock);
  const t0 = clock.now;
  const stateAt = (ms: number) => {
    clock.now = t0 + ms;
    sup.sweep();
    return index.get(agentId)?.state;
  };
  clock.now = t0 + 30_000;
  sup.heartbeat(agentId, 1, 1, 1);
  t.is(stateAt(61_000), "registered", "heard from 31 s ago");
  t.is(stateAt(89_000), "registered");
  t.is(stateAt(90_000), "stale", "silent for stale_after_ms");
  sup.heartbeat(agentId, 1, 2, 2);
  t.is(index.get(agentId)?.state, "registered", "a heartbeat brings it back");
  t.is(stateAt(149_000), "registered");
  t.is(stateAt(150_000), "stale", "and the sweep watches it again");
});
