// What a CP verifies quotes against: its own trust and policy until a federation master's apply, the master's
// policy while it has one, Intel's root plus the master's roots when the master lists them; the live getters
// (extendLive) see each change, a spread would not; a bad root changes nothing.
import test from "ava";
import { AttestationSettings, extendLive } from "../../actors/attestation-settings.ts";
import { loadDevRootPem } from "../../attestation/dev-pki.ts";
import { DEFAULT_POLICY, policySchema } from "../../attestation/policy.ts";
import { createTrustAnchors, INTEL_SGX_ROOT_CA_PEM, nonIntelRootPems } from "../../attestation/trust.ts";
import { createLogger } from "../../lib/log.ts";
import { devRoot } from "../helpers/cluster.ts";

function settings() {
  const lines: { msg: string }[] = [];
  const log = createLogger("cp", "info", { write: (l: string) => lines.push(JSON.parse(l)) });
  return { lines, log };
}

test("the master's policy replaces the own one while set, and null gives the own one back, each with a log line", (t) => {
  const { lines, log } = settings();
  const s = new AttestationSettings({ trust: createTrustAnchors(), measurement: DEFAULT_POLICY }, log);
  const live = extendLive(s.live(), { extra: 1 });
  const master = policySchema.parse({ mrtd: { mode: "strict", allow: { tiny: ["11".repeat(48)] } } });
  s.setFromMaster({ policy: master, trustRoots: undefined });
  t.is(live.measurement, master);
  t.regex(lines.at(-1)!.msg, /master's policy replaces this dc's own/);
  const count = lines.length;
  s.setFromMaster({ policy: structuredClone(master), trustRoots: undefined });
  t.is(lines.length, count, "the same policy again says nothing");
  s.setFromMaster({ policy: null, trustRoots: undefined });
  t.is(live.measurement, DEFAULT_POLICY);
  t.regex(lines.at(-1)!.msg, /has none; this dc's own applies again/);
});

test("the master's roots replace the own anchors: Intel's and the master's only; a bad root changes nothing", async (t) => {
  const { log } = settings();
  const own = createTrustAnchors({ devRootPem: loadDevRootPem(await devRoot("own")) });
  const masterRoot = loadDevRootPem(await devRoot("master"));
  const s = new AttestationSettings({ trust: own, measurement: DEFAULT_POLICY }, log);
  const live = extendLive(s.live(), {});
  s.setFromMaster({ policy: null, trustRoots: [masterRoot] });
  const pems = nonIntelRootPems(live.trust);
  t.is(pems.length, 1);
  t.is(pems[0]!.trim(), masterRoot.trim());
  t.true(live.trust.anchors.some((a) => a.label === "intel"));
  const before = s.trust;
  s.setFromMaster({ policy: null, trustRoots: [masterRoot, INTEL_SGX_ROOT_CA_PEM] });
  t.is(s.trust, before, "the same roots keep the same anchor set (and its caches)");
  t.throws(() => s.setFromMaster({ policy: null, trustRoots: ["not a certificate"] }), {
    message: /attestation root/,
  });
  t.is(s.trust, before);
  s.setFromMaster({ policy: null, trustRoots: [] });
  t.deepEqual(nonIntelRootPems(s.trust), [], "an empty list: Intel's root only");
  s.setFromMaster({ policy: null, trustRoots: undefined });
  t.is(s.trust, own);
  t.is(s.ownTrust, own);
});
