// Money arithmetic, property-style over many random amounts: the period charge follows CONTRACT.md's formula
// exactly, the split never creates or loses a micro-unit (platform rounded down, the provider the rest), and
// period arithmetic on fixed times.
import { randomInt } from "node:crypto";
import test from "ava";
import {
  checkMicros,
  lastClosedPeriod,
  MAX_MICROS,
  periodBounds,
  periodCharge,
  periodIndex,
  splitCharge,
} from "../../billing/money.ts";

const RUNS = 5000;

test("a period's charge is floor(rate × period_s / 3600), in integers", (t) => {
  t.is(periodCharge(1_000_000, 3600), 1_000_000);
  t.is(periodCharge(1_000_000, 2), 555); // 2 000 000 / 3600 = 555.55…
  t.is(periodCharge(7, 1), 0);
  t.is(periodCharge(MAX_MICROS, 3600), MAX_MICROS);
  for (let i = 0; i < RUNS; i++) {
    const rate = randomInt(0, 2 ** 40);
    const period = randomInt(1, 100_000);
    const charge = periodCharge(rate, period);
    t.true(Number.isSafeInteger(charge));
    // floor: charge × 3600 ≤ rate × period < (charge + 1) × 3600, checked in BigInt.
    const exact = BigInt(rate) * BigInt(period);
    if (!(BigInt(charge) * 3600n <= exact && exact < BigInt(charge + 1) * 3600n))
      t.fail(`rate ${rate} period ${period} charge ${charge}`);
  }
});

test("the split sums to the charge, the platform share is floored, the provider gets the rest", (t) => {
  t.deepEqual(splitCharge(555, 3000), { platform: 166, provider: 389 }); // 166.5 → 166
  t.deepEqual(splitCharge(1_000_000, 3000), { platform: 300_000, provider: 700_000 });
  t.deepEqual(splitCharge(10, 0), { platform: 0, provider: 10 });
  t.deepEqual(splitCharge(10, 10_000), { platform: 10, provider: 0 });
  for (let i = 0; i < RUNS; i++) {
    const charge = randomInt(0, 2 ** 47);
    const bps = randomInt(0, 10_001);
    const { platform, provider } = splitCharge(charge, bps);
    const exact = BigInt(charge) * BigInt(bps);
    const ok =
      platform + provider === charge &&
      platform >= 0 &&
      provider >= 0 &&
      BigInt(platform) * 10_000n <= exact &&
      exact < BigInt(platform + 1) * 10_000n;
    if (!ok) t.fail(`charge ${charge} bps ${bps}: ${platform} + ${provider}`);
  }
  t.pass();
});

test("amounts must be safe non-negative integers within MAX_MICROS", (t) => {
  t.is(checkMicros(0, "x"), 0);
  t.is(checkMicros(MAX_MICROS, "x"), MAX_MICROS);
  for (const bad of [-1, 1.5, Number.NaN, MAX_MICROS + 1, "5", null, 2 ** 53])
    t.is(t.throws(() => checkMicros(bad, "amount_micros"))?.message.startsWith("amount_micros"), true);
});

test("periods are aligned to the epoch; the last closed one is the one before now's", (t) => {
  const P = 3600;
  const at = Date.UTC(2026, 11, 3, 13, 30, 0); // 13:30 UTC
  const k = periodIndex(at, P);
  t.deepEqual(periodBounds(k, P), { start: Date.UTC(2026, 11, 3, 13), end: Date.UTC(2026, 11, 3, 14) });
  t.is(lastClosedPeriod(at, P), k - 1);
  // The boundary itself belongs to the new period: at 14:00:00.000 the 13:00 period has closed.
  t.is(lastClosedPeriod(Date.UTC(2026, 11, 3, 14), P), k);
  t.is(lastClosedPeriod(Date.UTC(2026, 11, 3, 14) - 1, P), k - 1);
  t.is(periodIndex(5_999, 3), 1);
  t.is(periodIndex(6_000, 3), 2);
});
