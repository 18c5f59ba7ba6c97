// The ledger's contract (billing/ledger-store.ts) through the Ledger service, run against every adapter: deposits
// and usage charges are balanced journals, idempotent by key, split by the platform fee; balances equal their
// entries; verify catches a tampered balance or an unbalanced journal; the funds check refuses a tenant that
// cannot pay one period; deposits and rate changes join the business audit chain. `open` gives a fresh business
// state, or undefined when its database is not available here (the test passes with a log).
import { randomInt } from "node:crypto";
import type { ExecutionContext, TestFn } from "ava";
import { verifyChain } from "../../actors/business/audit-chain.ts";
import { Ledger } from "../../billing/ledger.ts";
import type { OpenState } from "../helpers/business-state.ts";

const BY = { principal: "admin", client: null };

const usage = (period: number, over: Partial<Parameters<Ledger["charge"]>[0]> = {}) => ({
  deployment_id: "d-1",
  agent_id: "agt_1",
  node_size: "tiny",
  period,
  tenant: "acme",
  provider: "ops",
  ...over,
});

export function ledgerContract(test: TestFn, open: OpenState): void {
  async function ledgerOn(t: ExecutionContext, periodS = 3600) {
    const state = await open(t);
    return state && { state, ledger: new Ledger({ store: state.ledger, periodS }) };
  }

  test("a deposit credits the tenant from external; the same key again credits nothing more", async (t) => {
    const s = await ledgerOn(t);
    if (!s) return;
    const { ledger } = s;
    const first = await ledger.deposit("tenant:acme", 5_000_000, "inv-1", "admin", BY);
    t.false(first.replayed);
    t.is(first.balance_micros, 5_000_000);
    const again = await ledger.deposit("tenant:acme", 5_000_000, "inv-1", "admin", BY);
    t.true(again.replayed);
    t.is(again.journal_id, first.journal_id);
    t.is(await ledger.balance("tenant:acme"), 5_000_000);
    t.is(await ledger.balance("external"), -5_000_000);
    // A webhook payment has its own key space: the same key string is another deposit.
    await ledger.deposit("tenant:acme", 1, "inv-1", "webhook", BY);
    t.is(await ledger.balance("tenant:acme"), 5_000_001);
    const conflict = await t.throwsAsync(ledger.deposit("tenant:acme", 7, "inv-1", "admin", BY));
    t.is((conflict as { code?: string }).code, "EE-CONFLICT-IDEMPOTENCY");
    for (const bad of [0, -1, 1.5])
      t.is(
        (
          (await t.throwsAsync(ledger.deposit("tenant:acme", bad, `k${bad}`, "admin", BY))) as {
            code?: string;
          }
        ).code,
        "EE-REQ-INVALID",
      );
    t.is(
      ((await t.throwsAsync(ledger.deposit("provider:ops", 1, "k", "admin", BY))) as { code?: string }).code,
      "EE-REQ-INVALID",
    );
    t.deepEqual(await ledger.verify(), { ok: true, journals: 2, entries: 4, unbalanced: [], mismatched: [] });
  });

  test("a usage charge splits 70/30 and is charged once per (deployment, period)", async (t) => {
    const s = await ledgerOn(t);
    if (!s) return;
    const { ledger } = s;
    const card = await ledger.setRates({ rates: { tiny: 1_000_000 }, platform_fee_bps: 3000 }, BY);
    await ledger.deposit("tenant:acme", 10_000_000, "d1", "admin", BY);
    const c = await ledger.charge(usage(7), card);
    t.is(c?.charge_micros, 1_000_000);
    t.false(c?.replayed);
    const retry = await ledger.charge(usage(7), card);
    t.true(retry?.replayed);
    t.is(retry?.journal_id, c?.journal_id);
    // A rate change does not turn a retry into a conflict or a second charge.
    const dearer = await ledger.setRates({ rates: { tiny: 9_000_000 }, platform_fee_bps: 3000 }, BY);
    t.true((await ledger.charge(usage(7), dearer))?.replayed);
    t.is(await ledger.balance("tenant:acme"), 9_000_000);
    t.is(await ledger.balance("provider:ops"), 700_000);
    t.is(await ledger.balance("platform"), 300_000);
    const entries = await ledger.entries("tenant:acme", 10);
    t.deepEqual(
      entries.map((e) => [e.kind, e.amount_micros, e.deployment_id, e.period]),
      [
        ["deposit", 10_000_000, null, null],
        ["usage", -1_000_000, "d-1", 7],
      ],
    );
    // No provider: the platform earns the whole charge, in one entry.
    await ledger.charge(usage(8, { provider: null }), card);
    t.is(await ledger.balance("platform"), 1_300_000);
    // No rate for the size: nothing to charge.
    t.is(await ledger.charge(usage(9, { node_size: "llm" }), card), null);
    t.true((await ledger.verify()).ok);
  });

  test("rates are integers in range, the fee in basis points; a bad card changes nothing", async (t) => {
    const s = await ledgerOn(t);
    if (!s) return;
    const { ledger } = s;
    await ledger.setRates({ rates: { tiny: 5 }, platform_fee_bps: 0 }, BY);
    for (const bad of [
      { rates: { tiny: 1.5 }, platform_fee_bps: 0 },
      { rates: { tiny: -1 }, platform_fee_bps: 0 },
      { rates: { tiny: 2 ** 60 }, platform_fee_bps: 0 },
      { rates: { "Not A Size": 1 }, platform_fee_bps: 0 },
      { rates: { tiny: 1 }, platform_fee_bps: 10_001 },
      { rates: { tiny: 1 }, platform_fee_bps: 0.5 },
    ])
      t.is(((await t.throwsAsync(ledger.setRates(bad, BY))) as { code?: string }).code, "EE-REQ-INVALID");
    t.deepEqual((await ledger.rates())?.rates, { tiny: 5 });
  });

  test("verify catches a balance that differs from its entries and an unbalanced journal", async (t) => {
    const s = await ledgerOn(t);
    if (!s) return;
    const { state, ledger } = s;
    await ledger.deposit("tenant:acme", 100, "k", "admin", BY);
    t.true((await ledger.verify()).ok);
    await state.query("UPDATE ledger_balances SET balance_micros = 99 WHERE account = 'tenant:acme'");
    const tampered = await ledger.verify();
    t.false(tampered.ok);
    t.deepEqual(tampered.mismatched, [{ account: "tenant:acme", balance_micros: 99, entries_micros: 100 }]);
    await state.query("UPDATE ledger_balances SET balance_micros = 100 WHERE account = 'tenant:acme'");
    const [{ journal_id }] = (await state.query("SELECT journal_id FROM ledger_journals")) as [
      { journal_id: string },
    ];
    await state.query("UPDATE ledger_entries SET amount_micros = -101 WHERE journal_id = ? AND seq = 0", [
      journal_id,
    ]);
    await state.query("UPDATE ledger_balances SET balance_micros = -101 WHERE account = 'external'");
    const unbalanced = await ledger.verify();
    t.false(unbalanced.ok);
    t.deepEqual(unbalanced.unbalanced, [journal_id]);
  });

  test("many random deposits and charges: every journal sums to zero and balances equal entries", async (t) => {
    const s = await ledgerOn(t, randomInt(1, 7200));
    if (!s) return;
    const { state, ledger } = s;
    for (let round = 0; round < 20; round++) {
      const card = await ledger.setRates(
        {
          rates: { tiny: randomInt(0, 2 ** 36), standard: randomInt(0, 2 ** 36) },
          platform_fee_bps: randomInt(0, 10_001),
        },
        BY,
      );
      for (let i = 0; i < 10; i++) {
        const tenant = `t${randomInt(0, 4)}`;
        await ledger.deposit(`tenant:${tenant}`, randomInt(1, 2 ** 40), `dep-${round}-${i}`, "admin", BY);
        await ledger.charge(
          usage(round, {
            deployment_id: `d-${i}`,
            tenant,
            node_size: randomInt(0, 2) ? "tiny" : "standard",
            provider: randomInt(0, 3) ? `p${randomInt(0, 3)}` : null,
          }),
          card,
        );
      }
    }
    const report = await ledger.verify();
    t.true(report.ok, JSON.stringify(report));
    const sums = (await state.query(
      "SELECT journal_id, SUM(amount_micros) AS s FROM ledger_entries GROUP BY journal_id",
    )) as { s: number }[];
    t.is(sums.length, report.journals);
    t.true(sums.every((r) => r.s === 0));
    const [total] = (await state.query("SELECT SUM(balance_micros) AS s FROM ledger_balances")) as [
      { s: number },
    ];
    t.is(total.s, 0, "money is only moved, never made: all balances sum to zero");
  });

  test("the funds check refuses a tenant that cannot pay one period on the chosen size", async (t) => {
    const s = await ledgerOn(t, 60);
    if (!s) return;
    const { ledger } = s;
    // No rates: nothing to check.
    const unrated = await ledger.fundsCheck("acme");
    t.notThrows(() => unrated("tiny"));
    await ledger.setRates({ rates: { tiny: 3_600_000 }, platform_fee_bps: 3000 }, BY); // 60 000 per 60 s period
    const broke = await ledger.fundsCheck("acme");
    const err = t.throws(() => broke("tiny")) as { code?: string; httpStatus?: number; details?: unknown };
    t.is(err.code, "EE-PLACE-INSUFFICIENT-FUNDS");
    t.is(err.httpStatus, 402);
    t.deepEqual(err.details, { tenant: "acme", balance_micros: 0, needed_micros: 60_000, node_size: "tiny" });
    t.notThrows(() => broke("llm"), "a size without a rate runs free");
    t.notThrows(() => broke(null));
    await ledger.deposit("tenant:acme", 60_000, "k", "admin", BY);
    const funded = await ledger.fundsCheck("acme");
    t.notThrows(() => funded("tiny"));
    // A deployment without a tenant is never refused.
    const untenanted = await ledger.fundsCheck(null);
    await ledger.setRates({ rates: { tiny: 3_600_000_000 }, platform_fee_bps: 3000 }, BY);
    t.notThrows(() => untenanted("tiny"));
  });

  test("deposits and rate changes join the business audit chain with their change; replays and charges add nothing", async (t) => {
    const s = await ledgerOn(t);
    if (!s) return;
    const { state, ledger } = s;
    const chain = () => state.business.auditAfter(0, 100);
    await ledger.setRates({ rates: { tiny: 3_600_000 }, platform_fee_bps: 3000 }, BY);
    const dep = await ledger.deposit("tenant:acme", 5_000_000, "inv-1", "webhook", {
      principal: "webhook",
      client: "127.0.0.1",
    });
    await ledger.deposit("tenant:acme", 5_000_000, "inv-1", "webhook", {
      principal: "webhook",
      client: null,
    });
    await ledger.charge(usage(1), (await ledger.rates())!);
    const rows = await chain();
    t.deepEqual(
      rows.map((r) => [r.action, r.principal, r.target]),
      [
        ["billing.rates_set", "admin", "billing:rates"],
        ["billing.deposit", "webhook", "ledger:tenant:acme"],
      ],
    );
    t.like(rows[1]!.details, {
      amount_micros: 5_000_000,
      source: "webhook",
      journal_id: dep.journal_id,
    });
    // A refused rate card writes neither the card nor a record.
    await t.throwsAsync(ledger.setRates({ rates: { tiny: -1 }, platform_fee_bps: 0 }, BY));
    t.is((await chain()).length, 2);
    t.deepEqual(verifyChain(await chain()), { ok: true, records: 2 });
    t.is((await ledger.rates())?.rates.tiny, 3_600_000);
  });
}
