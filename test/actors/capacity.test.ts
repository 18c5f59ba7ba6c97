// Capacity (actors/capacity/capacity.ts) over a real SQLite store and a real AgentIndex: a reconcile orders the
// shortfall and reserves warm agents, a second one orders nothing more, an order's agent going live fulfils it,
// and the whole reconcile (index walk, store reads and writes) at 10,000 agents is measured.
import test, { type ExecutionContext } from "ava";
import { AgentIndex } from "../../actors/agent-index.ts";
import { Capacity } from "../../actors/capacity/capacity.ts";
import { CAPACITY_MIGRATIONS, SqliteCapacityStore } from "../../actors/capacity/sqlite-store.ts";
import { migrate, openDatabase } from "../../actors/store/db.ts";
import { EventLog } from "../../actors/store/event-log.ts";
import { silentLogger } from "../../lib/log.ts";
import type { SessionContext, SessionState } from "../../machines/agent-session.ts";
import { tempDir } from "../helpers/temp.ts";

const NOW = 1_800_000_000_000;

/** An agent record as the supervisor's snapshots would leave it: registered, connected, attested now. */
function addAgent(index: AgentIndex, id: string, datacenter: string, state: SessionState = "registered") {
  const ctx = {
    agentId: id,
    connId: 1,
    pending: null,
    facts: { vm_name: id.replace("_", "-"), node_size: "tiny", datacenter, mrtd: "00", trust_root: "dev" },
    deploymentId: null,
    app: null,
    registeredAt: NOW,
    reason: null,
    attestation: { status: "ok", at: NOW },
    restored: false,
    rehydrated: false,
  } as unknown as SessionContext;
  index.update(state, ctx, NOW);
}

function setup(t: ExecutionContext) {
  const db = openDatabase(tempDir(t));
  migrate(db, CAPACITY_MIGRATIONS);
  const index = new AgentIndex({ staleAfterMs: 60_000 });
  const events = new EventLog(db, (err) => t.fail(String(err)));
  const capacity = new Capacity({
    store: new SqliteCapacityStore(db),
    index,
    events,
    log: silentLogger,
    nodeSizes: new Set(["tiny", "standard"]),
    attestationMaxAgeMs: 600_000,
    now: () => NOW,
  });
  t.teardown(async () => {
    await capacity.stop();
    events.flush();
    db.close();
  });
  return { capacity, index, events };
}

test("a reconcile orders the shortfall once, reserves warm agents, and an order's agent going live fulfils it", async (t) => {
  const { capacity, index, events } = setup(t);
  addAgent(index, "agt_1", "local:a");
  addAgent(index, "agt_2", "local:a", "stale");
  await capacity.setTarget("local:a", "tiny", 3, "admin");
  t.deepEqual(
    (await capacity.orders()).map((o) => o.status),
    ["open", "open"],
  );
  t.deepEqual(
    (await capacity.reservations()).map((r) => r.agent_id),
    ["agt_1"],
  );
  const again = await capacity.reconcile();
  t.deepEqual(again.created, [], "orders in flight cover the shortfall");
  t.like(again.targets[0], { min_warm: 3, warm: 1, in_flight: 2, ordered: 0 });
  await t.throwsAsync(capacity.setTarget("local:a", "huge", 1, "admin"), { code: "EE-REQ-INVALID" });

  const claimed = await capacity.claim("admin", "local:a", "tiny");
  t.truthy(claimed);
  await capacity.consumeBootstrap(
    claimed!.bootstrap_token,
    { agent_id: "agt_new", datacenter: "local:a", node_size: "tiny" },
    NOW,
  );
  // The session's first snapshot (challenged), then live: the transition fulfils the order.
  addAgent(index, "agt_new", "local:a", "challenged");
  addAgent(index, "agt_new", "local:a", "registered");
  const order = await waitForOrder(capacity, claimed!.order.order_id, "fulfilled");
  t.is(order.agent_id, "agt_new");
  // agt_new is warm: with agt_1 two of three, and one order still open.
  t.like((await capacity.reconcile()).targets[0], { warm: 2, in_flight: 1, awaiting: 0, ordered: 0 });
  // Forgotten (stale long enough): its order, fulfilled a moment ago, is not "on its way", so it is replaced.
  index.remove("agt_new");
  t.like((await capacity.reconcile()).targets[0], { warm: 1, in_flight: 1, awaiting: 0, ordered: 1 });
  const kinds = events.list({ limit: 100 }).map((e) => e.kind);
  for (const k of [
    "capacity.target.set",
    "capacity.order.created",
    "capacity.order.claimed",
    "capacity.order.registered",
    "capacity.order.fulfilled",
  ])
    t.true(kinds.includes(k), k);
});

async function waitForOrder(capacity: Capacity, id: string, status: string) {
  for (let i = 0; i < 100; i++) {
    const o = (await capacity.orders()).find((x) => x.order_id === id);
    if (o?.status === status) return o;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`order ${id} never became ${status}`);
}

test("reconcile cost at 10,000 agents, through the index and the SQLite store", async (t) => {
  const { capacity, index } = setup(t);
  for (let i = 0; i < 10_000; i++)
    addAgent(index, `agt_${i.toString(16).padStart(6, "0")}`, `local:z${i % 10}`);
  for (let z = 0; z < 10; z++) await capacity.setTarget(`local:z${z}`, "tiny", 1_000, "admin");
  await capacity.setTarget("local:empty", "tiny", 50, "admin");
  const runs = 10;
  const started = process.hrtime.bigint();
  let last = await capacity.reconcile();
  for (let i = 1; i < runs; i++) last = await capacity.reconcile();
  const ms = Number(process.hrtime.bigint() - started) / 1e6 / runs;
  t.log(`Capacity.reconcile at 10,000 agents (11 targets, 10,000 reservations held): ${ms.toFixed(1)} ms`);
  t.is((await capacity.reservations()).length, 10_000);
  t.deepEqual(last.created, [], "the empty target's 50 orders were made once");
  t.is((await capacity.orders()).length, 50);
  t.true(ms < 5_000);
});
