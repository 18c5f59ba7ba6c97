// The master's sync-lag guardrail, pure: one crossing and one recovery per episode (not one line per check), a
// dc never heard from neither above nor sampled, and the per-dc gauges /metrics renders.
import test from "ava";
import { lagMetrics, lagTransitions } from "../../../actors/federation/lag-guardrail.ts";
import { renderMetrics } from "../../../transport/rest/metrics.ts";

const dc = (dc_id: string, lag_s: number | null) => ({ dc_id, lag_s });

test("a dc crossing the threshold is reported once, then once when it recovers", (t) => {
  const first = lagTransitions(new Set(), [dc("a", 61), dc("b", 2), dc("c", null)], 60_000);
  t.deepEqual(first.crossed, [{ dc_id: "a", lag_s: 61 }]);
  t.deepEqual(first.recovered, []);
  t.deepEqual([...first.above], ["a"]);
  const still = lagTransitions(first.above, [dc("a", 90), dc("b", 2), dc("c", null)], 60_000);
  t.deepEqual(still.crossed, [], "no second warning while it stays above");
  t.deepEqual(still.recovered, []);
  const back = lagTransitions(still.above, [dc("a", 0.4), dc("b", 2), dc("c", null)], 60_000);
  t.deepEqual(back.crossed, []);
  t.deepEqual(back.recovered, [{ dc_id: "a", lag_s: 0.4 }]);
  t.is(back.above.size, 0);
});

test("the threshold is strict and configurable; a dc never heard from is not above it", (t) => {
  t.deepEqual(
    lagTransitions(new Set(), [dc("a", 60)], 60_000).crossed,
    [],
    "exactly at the threshold is fine",
  );
  t.deepEqual(lagTransitions(new Set(), [dc("a", 6)], 5_000).crossed, [{ dc_id: "a", lag_s: 6 }]);
  t.deepEqual(lagTransitions(new Set(["a"]), [dc("a", null)], 5_000).recovered, [
    { dc_id: "a", lag_s: null },
  ]);
});

test("the per-dc gauges: lag seconds (absent until heard), above-threshold and degraded flags", (t) => {
  const text = renderMetrics(
    lagMetrics(
      [
        { dc_id: "eu-west", lag_s: 75.3, status: "degraded" },
        { dc_id: "us-east", lag_s: 0.5, status: "healthy" },
        { dc_id: "new", lag_s: null, status: "degraded" },
      ],
      60_000,
    ),
  );
  t.regex(text, /^# TYPE ee_federation_dc_lag_seconds gauge$/m);
  t.regex(text, /^ee_federation_dc_lag_seconds\{dc_id="eu-west"\} 75\.3$/m);
  t.regex(text, /^ee_federation_dc_lag_seconds\{dc_id="us-east"\} 0\.5$/m);
  t.notRegex(text, /^ee_federation_dc_lag_seconds\{dc_id="new"\}/m);
  t.regex(text, /^ee_federation_dc_lag_above_threshold\{dc_id="eu-west"\} 1$/m);
  t.regex(text, /^ee_federation_dc_lag_above_threshold\{dc_id="us-east"\} 0$/m);
  t.regex(text, /^ee_federation_dc_degraded\{dc_id="new"\} 1$/m);
  t.regex(text, /^ee_federation_dc_degraded\{dc_id="us-east"\} 0$/m);
});
