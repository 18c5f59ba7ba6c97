// The charger against a real ledger on SQLite with a hand-driven clock: one journal per (deployment, period)
// however often it ticks, is retried or restarted; only deployments with a tenant and a rated size are charged;
// a tenant that runs dry is undeployed once the grace period has passed, unless it paid in the meantime.
import test from "ava";
import { openBusinessDb } from "../../actors/business/sqlite-store.ts";
import { type BilledDeployment, Charger } from "../../billing/charger.ts";
import { Ledger } from "../../billing/ledger.ts";
import { SqliteLedgerStore } from "../../billing/sqlite-ledger-store.ts";
import { silentLogger } from "../../lib/log.ts";
import { tempDir } from "../helpers/temp.ts";

const BY = { principal: "admin", client: null };

const PERIOD_S = 60;
const T0 = Date.UTC(2026, 11, 3, 12, 0, 30); // 30 s into a period

function setup(t: import("ava").ExecutionContext, graceS = 30) {
  const db = openBusinessDb(tempDir(t));
  t.teardown(() => db.close());
  const clock = { now: T0 };
  const ledger = new Ledger({ store: new SqliteLedgerStore(db), periodS: PERIOD_S, now: () => clock.now });
  const running: BilledDeployment[] = [
    { deployment_id: "d-paid", agent_id: "agt_a", node_size: "tiny", healthy_since: 0 },
    { deployment_id: "d-free", agent_id: "agt_b", node_size: "tiny", healthy_since: 0 },
  ];
  const undeployed: string[] = [];
  const audits: { kind: string; data: Record<string, unknown> }[] = [];
  const charger = () =>
    new Charger({
      ledger,
      parties: {
        tenantOf: async (id) => (id === "d-paid" ? "acme" : null),
        providerOf: async (agentId) => (agentId === "agt_a" ? "ops" : null),
      },
      running: () => running,
      undeploy: (id) => {
        undeployed.push(id);
        running.splice(
          running.findIndex((d) => d.deployment_id === id),
          1,
        );
      },
      audit: (kind, data) => audits.push({ kind, data }),
      log: silentLogger,
      graceS,
      now: () => clock.now,
    });
  const journals = () =>
    (db.prepare("SELECT COUNT(*) AS n FROM ledger_journals WHERE kind = 'usage'").get() as { n: number }).n;
  return { ledger, clock, running, undeployed, audits, charger, journals };
}

test("one journal per deployment and period: repeated ticks, a retried close and a restart charge nothing more", async (t) => {
  const s = setup(t);
  await s.ledger.setRates({ rates: { tiny: 3_600_000 }, platform_fee_bps: 3000 }, BY); // 60 000 per period
  await s.ledger.deposit("tenant:acme", 1_000_000, "k", "admin", BY);
  const c = s.charger();
  await c.tick(); // closes the period before T0's
  t.is(s.journals(), 1);
  await c.tick();
  await c.tick();
  t.is(s.journals(), 1, "no period closed since");
  s.clock.now += PERIOD_S * 1000;
  await Promise.all([c.tick(), c.tick()]);
  t.is(s.journals(), 2);
  const period = Math.floor(s.clock.now / 60_000) - 1;
  t.is(await c.closePeriod(period), 0, "the same period again posts nothing");
  t.is(await s.charger().closePeriod(period), 0, "nor does a restarted charger");
  await s.charger().tick();
  t.is(s.journals(), 2);
  t.is(await s.ledger.balance("tenant:acme"), 1_000_000 - 2 * 60_000);
  t.is(await s.ledger.balance("provider:ops"), 2 * 42_000);
  t.is(await s.ledger.balance("platform"), 2 * 18_000);
  t.true((await s.ledger.verify()).ok);
});

test("without a rate card nothing is charged", async (t) => {
  const s = setup(t);
  await s.charger().tick();
  t.is(s.journals(), 0);
});

test("a dry tenant's deployment is undeployed after the grace period, and audited", async (t) => {
  // Grace ends before the next period closes (T0 is 30 s into a 60 s period), so only one charge is made.
  const s = setup(t, 20);
  await s.ledger.setRates({ rates: { tiny: 3_600_000 }, platform_fee_bps: 3000 }, BY);
  await s.ledger.deposit("tenant:acme", 100_000, "k", "admin", BY); // one period and a bit
  const c = s.charger();
  await c.tick(); // charged 60 000, 40 000 left: cannot pay the next period
  t.deepEqual(
    s.audits.map((a) => a.kind),
    ["billing.funds_low"],
  );
  s.clock.now += 19_000;
  await c.tick();
  t.deepEqual(s.undeployed, [], "still within the grace period");
  s.clock.now += 1_000;
  await c.tick();
  t.deepEqual(s.undeployed, ["d-paid"]);
  t.like(s.audits.at(-1), {
    kind: "billing.undeployed",
    data: { deployment_id: "d-paid", tenant: "acme", balance_micros: 40_000, needed_micros: 60_000 },
  });
  t.deepEqual(
    s.running.map((d) => d.deployment_id),
    ["d-free"],
    "a deployment without a tenant is never charged or undeployed",
  );
});

test("a tenant that pays within the grace period keeps running", async (t) => {
  const s = setup(t, 30);
  await s.ledger.setRates({ rates: { tiny: 3_600_000 }, platform_fee_bps: 3000 }, BY);
  await s.ledger.deposit("tenant:acme", 100_000, "k1", "admin", BY);
  const c = s.charger();
  await c.tick();
  await s.ledger.deposit("tenant:acme", 500_000, "k2", "webhook", BY);
  s.clock.now += 31_000;
  await c.tick();
  t.deepEqual(s.undeployed, []);
});

test("a late tick closes every period it missed, charging only those the deployment was healthy at the end of", async (t) => {
  const s = setup(t);
  await s.ledger.setRates({ rates: { tiny: 3_600_000 }, platform_fee_bps: 3000 }, BY);
  await s.ledger.deposit("tenant:acme", 10_000_000, "k", "admin", BY);
  // T0's period k is 12:00-12:01; healthy from 12:02:10, so periods k and k+1 closed before.
  s.running[0]!.healthy_since = T0 + 100_000;
  const c = s.charger();
  await c.tick();
  t.is(s.journals(), 0, "not healthy at the end of the period before T0's");
  s.clock.now += 4 * PERIOD_S * 1000; // four boundaries pass before the next tick
  await c.tick();
  const periods = (await s.ledger.entries("tenant:acme", 10))
    .filter((e) => e.kind === "usage")
    .map((e) => e.period);
  const k = Math.floor(T0 / 60_000);
  t.deepEqual(periods, [k + 2, k + 3], "the four missed periods closed, two of them after it became healthy");
});
