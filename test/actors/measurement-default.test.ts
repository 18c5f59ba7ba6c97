// The CP's measurement policy when no --policy is given: outside dev mode an MRTD/RTMR nobody approved is refused
// and kept as a baseline, and approving the baseline admits the same measurements; dev mode accepts them. Real
// dev quotes, the real registration check and trusted-measurement store on SQLite.
import test, { type ExecutionContext } from "ava";
import { chooseMeasurementPolicy, logMeasurementChoice } from "../../actors/measurement-default.ts";
import { verifyRegistration } from "../../actors/registration.ts";
import { openDatabase } from "../../actors/store/db.ts";
import { EventLog } from "../../actors/store/event-log.ts";
import { TrustedMeasurements } from "../../actors/trusted-measurements.ts";
import { loadDevRootPem } from "../../attestation/dev-pki.ts";
import { DEFAULT_POLICY, type MeasurementPolicy, policySchema } from "../../attestation/policy.ts";
import { createDevQuoteProvider } from "../../attestation/providers/dev.ts";
import { reportDataFor } from "../../attestation/report-data.ts";
import { createTrustAnchors } from "../../attestation/trust.ts";
import { createLogger } from "../../lib/log.ts";
import type { PendingRegistration } from "../../machines/agent-session.ts";
import { devRoot, tempDir } from "../helpers/cluster.ts";

const IMAGE = "44".repeat(48);
const ZERO = "00".repeat(48);

test("without --policy: refusing outside dev mode, accepting in dev mode unless told to refuse", (t) => {
  t.like(chooseMeasurementPolicy({ dev: false }), {
    source: "default",
    refusesUnknown: true,
    policy: { mrtd: { mode: "strict", allow: {} }, rtmr: { mode: "strict", allow: {} } },
  });
  t.like(chooseMeasurementPolicy({ dev: false, refuseUnknown: true }), { source: "default" });
  t.deepEqual(chooseMeasurementPolicy({ dev: true }), {
    source: "dev-default",
    refusesUnknown: false,
    policy: DEFAULT_POLICY,
  });
  t.like(chooseMeasurementPolicy({ dev: true, refuseUnknown: true }), {
    source: "default",
    refusesUnknown: true,
  });
});

test("a policy file decides, and --refuse-unknown-measurements beside it is EE-CONFIG-INVALID", (t) => {
  const warn = policySchema.parse({ mrtd: { mode: "warn" } });
  t.deepEqual(chooseMeasurementPolicy({ dev: false, policy: warn }), {
    source: "policy-file",
    refusesUnknown: false,
    policy: warn,
  });
  const strictRtmr = policySchema.parse({ rtmr: { mode: "strict" } });
  t.true(chooseMeasurementPolicy({ dev: true, policy: strictRtmr }).refusesUnknown);
  t.throws(() => chooseMeasurementPolicy({ dev: false, policy: warn, refuseUnknown: true }), {
    code: "EE-CONFIG-INVALID",
    message: /--refuse-unknown-measurements applies only without --policy/,
  });
});

test("the start line is one warn-level line saying whether unknown measurements are refused", (t) => {
  const lines: { level: number; msg: string; unknown_measurements: string }[] = [];
  const log = createLogger("control-plane", "warn", {
    isTTY: false,
    write: (s: string) => void lines.push(JSON.parse(s)),
  });
  for (const dev of [false, true]) logMeasurementChoice(log, chooseMeasurementPolicy({ dev }));
  t.is(lines.length, 2);
  t.like(lines[0], { level: 40, unknown_measurements: "refused" });
  t.regex(lines[0]?.msg ?? "", /default \(no --policy\).*REFUSED/);
  t.like(lines[1], { level: 40, unknown_measurements: "accepted" });
  t.regex(lines[1]?.msg ?? "", /DEV default.*ACCEPTED/);
});

async function setup(t: ExecutionContext, measurement: MeasurementPolicy) {
  const dir = await devRoot();
  const db = openDatabase(tempDir(t));
  const events = new EventLog(db, (err) => t.fail(String(err)));
  t.teardown(() => {
    events.flush();
    db.close();
  });
  const trusted = new TrustedMeasurements({
    db,
    events,
    nodeSizes: new Set(["tiny"]),
    onError: (err) => t.fail(String(err)),
  });
  const policy = {
    trust: createTrustAnchors({ devRootPem: loadDevRootPem(dir) }),
    measurement,
    trusted,
    nodeSizes: new Set(["tiny"]),
    holderOf: () => undefined,
  };
  const register = async (): Promise<PendingRegistration> => {
    const nonce = new Uint8Array(32).fill(1);
    const agent_pubkey = new Uint8Array(32).fill(2);
    const quote = await createDevQuoteProvider({ dir, mrtd: IMAGE }).getQuote(
      reportDataFor("register", nonce, agent_pubkey),
    );
    return {
      connId: 1,
      sessionId: "s",
      nonce,
      at: Date.now(),
      body: {
        vm_name: "vm-image",
        node_size: "tiny",
        datacenter: "baremetal:local",
        agent_pubkey,
        nonce,
        quote,
        pop: new Uint8Array(64),
      },
    };
  };
  return { policy, trusted, register };
}

test("the non-dev default refuses an unapproved image, keeps its baseline, and admits it once approved", async (t) => {
  const { policy, trusted, register } = await setup(t, chooseMeasurementPolicy({ dev: false }).policy);
  const err = await t.throwsAsync(verifyRegistration(policy, "agt_image", await register()));
  t.is((err as { code?: string }).code, "EE-ATT-MRTD-NOT-ALLOWED");
  t.regex(err?.message ?? "", new RegExp(`mrtd ${IMAGE} is not accepted \\(strict\\)`));
  const [baseline, ...more] = trusted.baselines();
  t.deepEqual(more, []);
  t.like(baseline, {
    node_size: "tiny",
    mrtd: IMAGE,
    rtmr: [ZERO, ZERO, ZERO, ZERO],
    last_vm_name: "vm-image",
    last_agent_id: "agt_image",
  });
  trusted.approve(baseline?.id ?? -1, "admin");
  const facts = await verifyRegistration(policy, "agt_image", await register());
  t.is(facts.mrtd, IMAGE);
  t.deepEqual(facts.policy_warnings, []);
});

test("the dev default admits the same image without a baseline", async (t) => {
  const { policy, trusted, register } = await setup(t, chooseMeasurementPolicy({ dev: true }).policy);
  t.is((await verifyRegistration(policy, "agt_image", await register())).mrtd, IMAGE);
  t.deepEqual(trusted.baselines(), []);
});
