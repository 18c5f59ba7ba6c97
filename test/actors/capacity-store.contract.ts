// The capacity store's contract (actors/capacity/store.ts), run against every adapter: claims take each open
// order once, progress needs the lease, an expired lease reopens the order with its reason, and a bootstrap token
// is single-use, tied to its claim, datacenter and node_size. `open` gives a fresh empty store, or undefined when
// the adapter's database is not available here (the test then passes with a log, see test/helpers/postgres.ts).
import type { ExecutionContext, TestFn } from "ava";
import { digestToken } from "../../actors/capacity/capacity.ts";
import type { CapacityStore, Order } from "../../actors/capacity/store.ts";

const DC = "local:a";
const LEASE = 60_000;

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

const claim = (s: CapacityStore, token: string, now: number, node_size?: string) =>
  s.claim({
    datacenter: DC,
    ...(node_size ? { node_size } : {}),
    claimer: "admin",
    now,
    leaseMs: LEASE,
    tokenDigest: digestToken(token),
  });

export function capacityStoreContract(
  test: TestFn,
  open: (t: ExecutionContext) => Promise<CapacityStore | undefined>,
): void {
  test("each open order is claimed once, oldest first, and node_size narrows the claim", async (t) => {
    const s = await open(t);
    if (!s) return;
    await s.addOrders([newOrder("ord-1", 1), newOrder("ord-2", 2, "standard"), newOrder("ord-3", 3)]);
    t.like(await claim(s, "a", 10, "standard"), {
      order_id: "ord-2",
      status: "claimed",
      claimed_by: "admin",
    });
    t.like(await claim(s, "b", 10), { order_id: "ord-1" });
    t.like(await claim(s, "c", 10), { order_id: "ord-3", lease_expires_at: 10 + LEASE });
    t.is(await claim(s, "d", 10), null);
  });

  test("progress needs the lease; provisioning renews it; an expired lease reopens the order", async (t) => {
    const s = await open(t);
    if (!s) return;
    await s.addOrders([newOrder("ord-1", 1)]);
    await claim(s, "a", 10);
    const p = await s.progress("ord-1", {
      status: "provisioning",
      claimer: "admin",
      now: 20,
      leaseMs: LEASE,
    });
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
    const s = await open(t);
    if (!s) return;
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

  test("two claims at once take different orders", async (t) => {
    const s = await open(t);
    if (!s) return;
    await s.addOrders([newOrder("ord-1", 1), newOrder("ord-2", 2)]);
    const got = await Promise.all([claim(s, "a", 10), claim(s, "b", 10), claim(s, "c", 10)]);
    t.deepEqual(got.map((o) => o?.order_id ?? null).sort(), ["ord-1", "ord-2", null].sort());
  });
}
