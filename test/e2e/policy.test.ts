// Measurement policy end to end: dev quotes with chosen MRTDs against a CP in strict, warn and disabled mode.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { loadPolicyFile } from "../../actors/policy-file.ts";
import { policySchema } from "../../attestation/policy.ts";
import { RawAgent, startTestCp, tempDir, waitFor } from "../helpers/cluster.ts";

const GOOD = "11".repeat(48);
const BAD = "22".repeat(48);

async function attempt(t: import("ava").ExecutionContext, wsUrl: string, devDir: string, mrtd: string) {
  const raw = await RawAgent.connect(t, wsUrl);
  const { body } = await raw.next("challenge");
  raw.send(
    "register",
    await raw.registerBody(devDir, body.nonce, { vm_name: `vm-${mrtd.slice(0, 2)}` }, { mrtd }),
  );
  return Promise.race([
    raw.next("registered").then(() => ({ ok: true as const, raw })),
    raw.next("error").then((e) => ({ ok: false as const, code: e.body.code, message: e.body.message, raw })),
  ]);
}

test("strict: an MRTD outside the node_size allowlist is refused with the register, value and reason", async (t) => {
  const policy = policySchema.parse({ mrtd: { mode: "strict", allow: { tiny: [GOOD] } } });
  const { cp, devDir, api } = await startTestCp(t, { policy });
  t.true((await attempt(t, cp.wsUrl, devDir, GOOD)).ok);
  const refused = await attempt(t, cp.wsUrl, devDir, BAD);
  t.false(refused.ok);
  if (refused.ok) return;
  t.is(refused.code, "EE-ATT-MRTD-NOT-ALLOWED");
  t.regex(refused.message, new RegExp(`mrtd ${BAD}`));
  t.is((await refused.raw.closed).code, 4003);
  const events = await api<{ events: { data: { reason?: string } }[] }>("/api/v2/events?kind=agent.rejected");
  t.is(events.body.events[0]?.data.reason, "EE-ATT-MRTD-NOT-ALLOWED");
});

test("warn: the agent is admitted and a warning event is recorded", async (t) => {
  const policy = policySchema.parse({ mrtd: { mode: "warn", allow: { tiny: [GOOD] } } });
  const { cp, devDir, api } = await startTestCp(t, { policy, staleAfterMs: 120_000 });
  const r = await attempt(t, cp.wsUrl, devDir, BAD);
  t.true(r.ok);
  const warnings = await waitFor("warning event", async () => {
    const { body } = await api<{ events: { agent_id: string; data: { warnings: string[] } }[] }>(
      "/api/v2/events?kind=attestation.warning",
    );
    return body.events[0];
  });
  t.is(warnings.agent_id, r.raw.agentId);
  t.regex(warnings.data.warnings[0] ?? "", /^EE-ATT-MRTD-NOT-ALLOWED: mrtd 2222/);
  t.deepEqual(cp.index.get(r.raw.agentId)?.state, "registered");
});

test("disabled: any MRTD is admitted without warnings", async (t) => {
  const policy = policySchema.parse({ mrtd: { mode: "disabled", allow: { tiny: [GOOD] } } });
  const { cp, devDir, api } = await startTestCp(t, { policy });
  t.true((await attempt(t, cp.wsUrl, devDir, BAD)).ok);
  const { body } = await api<{ events: unknown[] }>("/api/v2/events?kind=attestation.warning");
  t.deepEqual(body.events, []);
});

test("the policy file loader names the file and the key", (t) => {
  const dir = tempDir(t);
  const good = join(dir, "good.json");
  writeFileSync(good, JSON.stringify({ mrtd: { mode: "strict", allow: { "*": [GOOD] } } }));
  t.is(loadPolicyFile(good).mrtd.mode, "strict");
  const bad = join(dir, "bad.json");
  writeFileSync(bad, JSON.stringify({ mrtd: { mode: "maybe" } }));
  t.throws(() => loadPolicyFile(bad), { message: /bad\.json: mrtd\.mode: / });
  const broken = join(dir, "broken.json");
  writeFileSync(broken, "{");
  t.throws(() => loadPolicyFile(broken), { message: /broken\.json is not valid JSON/ });
  t.throws(() => loadPolicyFile(join(dir, "missing.json")), { message: /cannot be read/ });
});
