// The capacity store on a real SQLite file (actors/capacity/sqlite-store.ts): claims take each open order once,
// progress needs the lease, an expired lease reopens the order with its reason, and a bootstrap token is
// single-use, tied to its claim, datacenter and node_size. Also: capacity migrations beside the core ones.
import test from "ava";
import { digestToken } from "../../actors/capacity/capacity.ts";
import { CAPACITY_MIGRATIONS, SqliteCapacityStore } from "../../actors/capacity/sqlite-store.ts";
import type { Order } from "../../actors/capacity/store.ts";
import { migrate, openDatabase } from "../../actors/store/db.ts";
import { MIGRATIONS } from "../../actors/store/migrations.ts";
import { tempDir } from "../helpers/temp.ts";

const DC = "local:a";
const LEASE = 60_000;

function open(t: Parameters<typeof tempDir>[0]) {
  const db = openDatabase(tempDir(t));
  migrate(db, CAPACITY_MIGRATIONS);
  return new SqliteCapacityStore(db);
}

function newOrder(id: string, at: number, node_size = "tiny"): Order {
  return {
    order_id: id,
    datacenter: DC,
    node_size,
    status: "open",
    agent_id: null,
    reason: null,
    claimed_by: null,
    lease_expires_at: null,
    created_at: at,
    updated_at: at,
  };
}

const claim = (s: SqliteCapacityStore, token: string, now: number, node_size?: string) =>
  s.claim({
    datacenter: DC,
    ...(node_size ? { node_size } : {}),
    claimer: "admin",
    now,
    leaseMs: LEASE,
    tokenDigest: digestToken(token),
  });

test("a core migration numbered below the capacity ones still runs", (t) => {
  const dir = tempDir(t);
  const db = openDatabase(dir, MIGRATIONS.slice(0, 1));
  migrate(db, CAPACITY_MIGRATIONS);
  db.close();
  const again = openDatabase(dir);
  t.truthy(again.prepare("SELECT 1 FROM sqlite_master WHERE name = 'deployments'").get());
  again.close();
});

test("each open order is claimed once, oldest first, and node_size narrows the claim", async (t) => {
  const s = open(t);
  await s.addOrders([newOrder("ord-1", 1), newOrder("ord-2", 2, "standard"), newOrder("ord-3", 3)]);
  t.like(await claim(s, "a", 10, "standard"), { order_id: "ord-2", status: "claimed", claimed_by: "admin" });
  t.like(await claim(s, "b", 10), { order_id: "ord-1" });
  t.like(await claim(s, "c", 10), { order_id: "ord-3", lease_expires_at: 10 + LEASE });
  t.is(await claim(s, "d", 10), null);
});

test("progress needs the lease; provisioning renews it; an expired lease reopens the order", async (t) => {
  const s = open(t);
  await s.addOrders([newOrder("ord-1", 1)]);
  await claim(s, "a", 10);
  const p = await s.progress("ord-1", { status: "provisioning", claimer: "admin", now: 20, leaseMs: LEASE });
  t.like(p, { status: "provisioning", lease_expires_at: 20 + LEASE });
  await t.throwsAsync(
    s.progress("ord-1", { status: "provisioning", claimer: "someone", now: 30, leaseMs: LEASE }),
    { code: "EE-CAP-LEASE-LOST" },
  );
  t.deepEqual(await s.expireLeases(20 + LEASE - 1), []);
  const [expired] = await s.expireLeases(20 + LEASE);
  t.like(expired, { order_id: "ord-1", status: "open", claimed_by: null });
  t.regex(expired!.reason!, /^EE-CAP-LEASE-EXPIRED/);
  await t.throwsAsync(
    s.progress("ord-1", { status: "provisioning", claimer: "admin", now: 30 + LEASE, leaseMs: LEASE }),
    { code: "EE-CAP-ORDER-STATE" },
  );
  await t.throwsAsync(s.progress("ord-x", { status: "failed", claimer: "admin", now: 1, leaseMs: 1 }), {
    code: "EE-NOT-FOUND",
  });
});

test("a bootstrap token is consumed once, by its agent, for its datacenter and size, within its claim", async (t) => {
  const s = open(t);
  await s.addOrders([newOrder("ord-1", 1), newOrder("ord-2", 2)]);
  await claim(s, "tok-1", 10);
  await claim(s, "tok-2", 10);
  const use = (token: string, agent_id: string, over: object = {}) =>
    s.consumeBootstrap({
      tokenDigest: digestToken(token),
      agent_id,
      datacenter: DC,
      node_size: "tiny",
      now: 100,
      ...over,
    });
  await t.throwsAsync(use("nope", "agt_a"), { code: "EE-REG-BOOTSTRAP-UNKNOWN" });
  await t.throwsAsync(use("tok-1", "agt_a", { datacenter: "local:b" }), {
    code: "EE-REG-BOOTSTRAP-MISMATCH",
  });
  await t.throwsAsync(use("tok-1", "agt_a", { node_size: "llm" }), { code: "EE-REG-BOOTSTRAP-MISMATCH" });
  t.like(await use("tok-1", "agt_a"), { order_id: "ord-1", status: "registered", agent_id: "agt_a" });
  t.like(await use("tok-1", "agt_a"), { order_id: "ord-1" }, "the same agent reconnecting");
  await t.throwsAsync(use("tok-1", "agt_b"), { code: "EE-REG-BOOTSTRAP-USED" });
  t.like(await s.fulfil("agt_a", 200), { order_id: "ord-1", status: "fulfilled" });
  // The reconciler reads in-flight orders and those whose agent registered within the grace window only.
  t.deepEqual(
    (await s.ordersForPlan(200)).map((o) => o.order_id),
    ["ord-1", "ord-2"],
  );
  t.deepEqual(
    (await s.ordersForPlan(201)).map((o) => o.order_id),
    ["ord-2"],
  );
  // ord-2's lease ends: its token expires, and a new claim issues a new one.
  await s.expireLeases(10 + LEASE);
  await t.throwsAsync(use("tok-2", "agt_c", { now: 10 + LEASE }), { code: "EE-REG-BOOTSTRAP-EXPIRED" });
  await claim(s, "tok-3", 10 + LEASE);
  await t.throwsAsync(use("tok-2", "agt_c", { now: 20 + LEASE }), { code: "EE-REG-BOOTSTRAP-EXPIRED" });
  t.like(await use("tok-3", "agt_c", { now: 20 + LEASE }), { order_id: "ord-2", agent_id: "agt_c" });
});
