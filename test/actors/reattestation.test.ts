// Re-attestation scheduling: who is asked when. Agents are due an interval after they registered and after each
// request; a tick touches only the agents that are due (the read model is never walked after start), stale ones
// wait, a new session restarts the clock. Verification itself is covered end to end in test/e2e/reattestation.
import test from "ava";
import type { AgentIndex, AgentRecord, Transition } from "../../actors/agent-index.ts";
import type { AgentLink } from "../../actors/agent-link.ts";
import { Reattestor } from "../../actors/reattestation.ts";
import type { Supervisor } from "../../actors/supervisor.ts";
import { DEFAULT_POLICY } from "../../attestation/policy.ts";
import { createTrustAnchors } from "../../attestation/trust.ts";
import { silentLogger } from "../../lib/log.ts";

const INTERVAL = 10_000;

/** The read model's surface the Reattestor uses, with transitions emitted by hand and walks counted. */
class FakeIndex {
  readonly records = new Map<
    string,
    Pick<AgentRecord, "agent_id" | "state" | "connected" | "registered_at">
  >();
  readonly #listeners = new Set<(t: Transition) => void>();
  walks = 0;

  get(id: string) {
    return this.records.get(id) as AgentRecord | undefined;
  }

  values() {
    this.walks++;
    return this.records.values() as IterableIterator<AgentRecord>;
  }

  onTransition(listener: (t: Transition) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  set(id: string, state: AgentRecord["state"], at: number, connected = true): void {
    const prev = this.records.get(id);
    // As in the real read model, a new session (through challenged) sets registered_at.
    const registeredAt = prev === undefined || prev.state === "challenged" ? at : prev.registered_at;
    this.records.set(id, { agent_id: id, state, connected, registered_at: registeredAt });
    if (prev?.state === state) return;
    const t = { agent_id: id, vm_name: null, from: prev?.state ?? null, to: state, at, reason: null };
    for (const l of this.#listeners) l(t);
  }
}

function setup() {
  let now = 0;
  const index = new FakeIndex();
  const sent: { connId: number; agentId: string }[] = [];
  const connOf = new Map<string, number>();
  const supervisor = {
    connOf: (id: string) => connOf.get(id) ?? null,
    send: () => true,
  } as unknown as Supervisor;
  let frameId = 1;
  const link: AgentLink = {
    send: (agentId, _type, _body, ids) => sent.push({ connId: ids!.conn!, agentId }) > 0,
    nextFrameId: () => frameId++,
    close: () => {},
  };
  const r = new Reattestor({
    supervisor,
    index: index as unknown as AgentIndex,
    link,
    policy: { trust: createTrustAnchors(), measurement: DEFAULT_POLICY },
    log: silentLogger,
    intervalMs: INTERVAL,
    timeoutMs: 5_000,
    now: () => now,
  });
  const register = (id: string, at: number, connId: number) => {
    connOf.set(id, connId);
    index.set(id, "challenged", at);
    index.set(id, "registered", at);
  };
  return { r, index, sent, register, connOf, at: (t: number) => (now = t) };
}

test("agents are asked an interval after registering, then an interval after each request", (t) => {
  const s = setup();
  s.r.start();
  t.teardown(() => s.r.stop());
  for (let i = 0; i < 1000; i++) s.register(`agt_${i}`, i, i + 1);
  s.at(INTERVAL - 1);
  s.r.scan();
  t.is(s.sent.length, 0);
  s.at(INTERVAL + 499);
  s.r.scan();
  t.is(s.sent.length, 500, "the first 500 registered by t=499");
  s.at(INTERVAL + 1000);
  s.r.scan();
  t.is(s.sent.length, 1000);
  t.is(new Set(s.sent.map((x) => x.agentId)).size, 1000);
  t.is(s.index.walks, 1, "the read model is walked once, at start, never per tick");
});

test("a pending or stale agent waits; a disconnected one is dropped until it registers again", (t) => {
  const s = setup();
  s.r.start();
  t.teardown(() => s.r.stop());
  s.register("agt_a", 0, 1);
  s.register("agt_b", 0, 2);
  s.register("agt_c", 0, 3);
  s.index.set("agt_b", "stale", 5_000);
  s.index.set("agt_c", "registered", 6_000, false);
  s.at(INTERVAL);
  s.r.scan();
  t.deepEqual(
    s.sent.map((x) => x.agentId),
    ["agt_a"],
  );
  // agt_a's request is still pending (no answer): not asked twice.
  s.at(INTERVAL + 1000);
  s.r.scan();
  t.is(s.sent.length, 1);
  // agt_b comes back from stale: asked at the next tick, its due time having passed.
  s.index.set("agt_b", "registered", INTERVAL + 1500);
  s.at(INTERVAL + 2000);
  s.r.scan();
  t.deepEqual(
    s.sent.map((x) => x.agentId),
    ["agt_a", "agt_b"],
  );
  // agt_c reconnects on a new connection: a new session, due an interval after it.
  s.connOf.set("agt_c", 30);
  s.index.set("agt_c", "challenged", 15_000);
  s.index.set("agt_c", "registered", 15_000);
  s.at(24_999);
  s.r.scan();
  t.false(s.sent.some((x) => x.agentId === "agt_c"));
  s.at(25_000);
  s.r.scan();
  t.deepEqual(s.sent.at(-1), { connId: 30, agentId: "agt_c" });
});

test("a new session restarts the clock even when the old socket's close comes after it", (t) => {
  const s = setup();
  s.r.start();
  t.teardown(() => s.r.stop());
  s.register("agt_a", 0, 1);
  // Superseded: the new connection registers at 8 s, then the old one's close arrives.
  s.connOf.set("agt_a", 2);
  s.index.set("agt_a", "challenged", 8_000);
  s.index.set("agt_a", "registered", 8_000);
  s.r.forget("agt_a", 1);
  s.at(INTERVAL);
  s.r.scan();
  t.is(s.sent.length, 0, "not due at the old session's time");
  s.at(18_000);
  s.r.scan();
  t.deepEqual(s.sent, [{ connId: 2, agentId: "agt_a" }]);
});
