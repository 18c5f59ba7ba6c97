// Measurement policy: each check in each mode, per-node_size allowlists with wildcards, and the file schema.
import test from "ava";
import {
  DEFAULT_POLICY,
  evaluatePolicy,
  isDebugTd,
  type MeasuredFacts,
  policySchema,
} from "../../attestation/policy.ts";

const A = "aa".repeat(48);
const B = "bb".repeat(48);
const Z = "00".repeat(48);
const facts: MeasuredFacts = {
  node_size: "tiny",
  mrtd: A,
  rtmr: [Z, Z, Z, Z],
  td_attributes: "0000001000000000",
};

test("the default policy admits any measurement but refuses debug TDs", (t) => {
  t.deepEqual(evaluatePolicy(DEFAULT_POLICY, facts), { admit: true, findings: [] });
  const debug = evaluatePolicy(DEFAULT_POLICY, { ...facts, td_attributes: "0100000000000000" });
  t.false(debug.admit);
  t.is(debug.findings[0]?.code, "EE-ATT-DEBUG-TD");
});

test("strict MRTD allowlists per node_size, with '*' for every size", (t) => {
  const policy = policySchema.parse({
    mrtd: { mode: "strict", allow: { tiny: [A.toUpperCase()], "*": [B] } },
  });
  t.true(evaluatePolicy(policy, facts).admit, "hex is compared case-insensitively via the schema");
  t.true(evaluatePolicy(policy, { ...facts, node_size: "llm", mrtd: B }).admit);
  const refused = evaluatePolicy(policy, { ...facts, node_size: "llm", mrtd: A });
  t.false(refused.admit);
  t.deepEqual(refused.findings, [
    { code: "EE-ATT-MRTD-NOT-ALLOWED", register: "mrtd", seen: A, accepted: [B], mode: "strict" },
  ]);
});

test("warn admits and reports; disabled skips", (t) => {
  const warn = policySchema.parse({ mrtd: { mode: "warn", allow: { tiny: [B] } } });
  const v = evaluatePolicy(warn, facts);
  t.true(v.admit);
  t.is(v.findings[0]?.mode, "warn");
  const off = policySchema.parse({ mrtd: { mode: "disabled", allow: { tiny: [B] } } });
  t.deepEqual(evaluatePolicy(off, facts).findings, []);
});

test("RTMR entries match register by register, null accepting anything", (t) => {
  const policy = policySchema.parse({ rtmr: { mode: "strict", allow: { "*": [[Z, null, null, B]] } } });
  t.true(evaluatePolicy(policy, { ...facts, rtmr: [Z, A, A, B] }).admit);
  const refused = evaluatePolicy(policy, { ...facts, rtmr: [Z, A, A, A] });
  t.is(refused.findings[0]?.code, "EE-ATT-RTMR-NOT-ALLOWED");
});

test("TCB status and advisories; a missing status counts as not allowed", (t) => {
  const policy = policySchema.parse({
    tcb: {
      mode: "strict",
      allowed_statuses: ["UpToDate", "SWHardeningNeeded"],
      allowed_advisories: ["INTEL-SA-00615"],
    },
  });
  t.true(
    evaluatePolicy(policy, { ...facts, tcb_status: "SWHardeningNeeded", advisory_ids: ["INTEL-SA-00615"] })
      .admit,
  );
  t.false(evaluatePolicy(policy, { ...facts, tcb_status: "OutOfDate" }).admit);
  t.false(
    evaluatePolicy(policy, { ...facts, tcb_status: "UpToDate", advisory_ids: ["INTEL-SA-00999"] }).admit,
  );
  t.false(evaluatePolicy(policy, facts).admit, "no collateral, no status");
});

test("debug TDs can be allowed explicitly", (t) => {
  const policy = policySchema.parse({ td_attributes: { allow_debug: true } });
  t.true(evaluatePolicy(policy, { ...facts, td_attributes: "0100000000000000" }).admit);
  t.true(isDebugTd("0100000000000000"));
  t.false(isDebugTd("0000001000000000"));
});

test("the policy file schema refuses unknown keys and bad values by name", (t) => {
  for (const bad of [
    { mrtd: { mode: "loose" } },
    { mrtd: { allow: { tiny: ["abc"] } } },
    { extra: 1 },
    { rtmr: { allow: { "*": [[Z]] } } },
  ]) {
    const r = policySchema.safeParse(bad);
    t.false(r.success, JSON.stringify(bad));
  }
});
