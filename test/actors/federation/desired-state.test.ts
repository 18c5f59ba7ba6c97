// Desired state's signature and ordering rules, pure: a snapshot verifies only against the master's key, any
// change to its bytes is refused with EE-FED-DESIRED-SIGNATURE, an older (or same-numbered but different)
// snapshot with EE-FED-DESIRED-ROLLBACK, and the very snapshot applied already is a no-op.
import { generateKeyPairSync } from "node:crypto";
import test from "ava";
import {
  type DesiredPayload,
  masterPublicKey,
  signDesired,
  verifyDesired,
} from "../../../actors/federation/desired-state.ts";
import { policySchema } from "../../../attestation/policy.ts";

const master = generateKeyPairSync("ed25519");
const other = generateKeyPairSync("ed25519");
const rawHex = (k: typeof master.publicKey) =>
  k.export({ format: "der", type: "spki" }).subarray(12).toString("hex");
const masterKey = masterPublicKey(rawHex(master.publicKey));

const payload = (seq: number, mrtd = "22".repeat(48)): DesiredPayload => ({
  seq,
  issued_at: 1_000 + seq,
  apps: [{ name: "web", version: "1.0.0", compose_hash: "ab".repeat(32) }],
  measurements: [{ node_size: "tiny", mrtd, rtmr: null, note: null }],
  drains: ["agt_0123456789abcdef01234567"],
  policy: policySchema.parse({ mrtd: { mode: "strict", allow: { tiny: [mrtd] } } }),
  trust_roots: [],
});

test("a snapshot signed by the master verifies and becomes the applied one", (t) => {
  const v = verifyDesired(signDesired(payload(3), master.privateKey), masterKey, null);
  if (!v.ok || v.payload === null) return t.fail(JSON.stringify(v));
  t.deepEqual(v.payload, payload(3));
  t.is(v.applied.seq, 3);
  t.regex(v.applied.digest, /^[0-9a-f]{64}$/);
});

test("a tampered value, another key's signature or garbage is EE-FED-DESIRED-SIGNATURE", (t) => {
  const genuine = JSON.parse(new TextDecoder().decode(signDesired(payload(3), master.privateKey)));
  const tampered = { ...genuine, payload: genuine.payload.replace("22222222", "33333333") };
  for (const value of [
    new TextEncoder().encode(JSON.stringify(tampered)),
    signDesired(payload(3), other.privateKey),
    new TextEncoder().encode("not json"),
    new TextEncoder().encode(JSON.stringify({ payload: genuine.payload })),
  ]) {
    const v = verifyDesired(value, masterKey, null);
    t.like(v, { ok: false, code: "EE-FED-DESIRED-SIGNATURE" });
  }
});

test("an older snapshot, or the same number with other content, is EE-FED-DESIRED-ROLLBACK; a replay is a no-op", (t) => {
  const five = verifyDesired(signDesired(payload(5), master.privateKey), masterKey, null);
  if (!five.ok) return t.fail();
  const applied = five.applied;
  t.like(verifyDesired(signDesired(payload(4), master.privateKey), masterKey, applied), {
    ok: false,
    code: "EE-FED-DESIRED-ROLLBACK",
    seq: 4,
  });
  t.like(verifyDesired(signDesired(payload(5, "44".repeat(48)), master.privateKey), masterKey, applied), {
    ok: false,
    code: "EE-FED-DESIRED-ROLLBACK",
  });
  t.deepEqual(verifyDesired(signDesired(payload(5), master.privateKey), masterKey, applied), {
    ok: true,
    payload: null,
    applied,
  });
  const six = verifyDesired(signDesired(payload(6), master.privateKey), masterKey, applied);
  t.like(six, { ok: true, applied: { seq: 6 } });
});

test("--master-key takes 64 hex digits, else EE-CONFIG-INVALID", (t) => {
  for (const bad of ["", "zz".repeat(32), "ab".repeat(31), "AB".repeat(32)])
    t.throws(() => masterPublicKey(bad), { message: /--master-key: expected the master's CP identity/ });
});

test("a signed snapshot with a field this dc does not know is EE-FED-DESIRED-SCHEMA, at any level", (t) => {
  const sign = (p: unknown) => signDesired(p as DesiredPayload, master.privateKey);
  const p = payload(3);
  for (const newer of [
    { ...p, placement_intent: [] },
    { ...p, apps: [{ ...p.apps[0], digest: "x" }] },
    { ...p, policy: { ...p.policy, mrtd: { mode: "strict", allow: {}, extra: 1 } } },
    { ...p, drains: "all" },
  ]) {
    const v = verifyDesired(sign(newer), masterKey, null);
    t.like(v, { ok: false, code: "EE-FED-DESIRED-SCHEMA", seq: null });
    if (!v.ok) t.regex(v.message, /upgrade the dc/);
  }
});

test("an older master's snapshot (no drains, policy, trust roots) applies as nothing of them", (t) => {
  const { drains: _d, policy: _p, trust_roots: _r, ...older } = payload(2);
  const v = verifyDesired(signDesired(older as DesiredPayload, master.privateKey), masterKey, null);
  if (!v.ok || v.payload === null) return t.fail(JSON.stringify(v));
  t.deepEqual(v.payload.drains, []);
  t.is(v.payload.policy, null);
  t.is(v.payload.trust_roots, undefined);
});
