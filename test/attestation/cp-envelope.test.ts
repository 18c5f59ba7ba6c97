// The CP attestation envelope: a CP signer (dev quote over its key) and agent verifiers under each policy. Every
// refusal is checked by its EE-ENV-* code; acceptances by what they were checked against.
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import {
  CP_KEY_PIN_FILE,
  CP_PIN_FILE,
  createEnvelopeSigner,
  createEnvelopeVerifier,
  ENVELOPE_MAX_SKEW_MS,
  type EnvelopePolicy,
  type EnvelopeSigner,
  type EnvelopeVerifierOptions,
  filePin,
  originOf,
  originSignedBy,
  quoteCpKey,
} from "../../attestation/cp-envelope.ts";
import { createDevQuoteProvider } from "../../attestation/providers/dev.ts";
import { createTrustAnchors } from "../../attestation/trust.ts";
import { EnvelopeError } from "../../spec/errors.ts";
import type { MessageBody } from "../../spec/protocol.ts";
import { type DevSetup, devSetup, tempDir } from "./fixtures.ts";

const MRTD_A = "a1".repeat(48);
const MRTD_B = "b2".repeat(48);
const AGENT = "agt_000000000000000000000001";
const OTHER_AGENT = "agt_000000000000000000000002";

const command = (): MessageBody<"deploy"> => ({
  deployment_id: "d-0123456789abcdef",
  app: "web",
  compose: "services:\n  web:\n    image: ee-test/busybox:1\n",
  context: new Uint8Array([1, 2, 3]),
  health: { port: 8080, path: "/", timeout_s: 60 },
});

async function signer(dev: DevSetup, o: { mrtd?: string; quoted?: boolean; now?: () => number } = {}) {
  const { privateKey } = generateKeyPairSync("ed25519");
  const unquoted = createEnvelopeSigner({ privateKey, ...(o.now ? { now: o.now } : {}) });
  if (o.quoted === false) return unquoted;
  const provider = createDevQuoteProvider({ dir: dev.dir, mrtd: o.mrtd ?? MRTD_A });
  const quote = await quoteCpKey(provider, unquoted.publicKey);
  return createEnvelopeSigner({ privateKey, quote, ...(o.now ? { now: o.now } : {}) });
}

function verifier(dev: DevSetup, policy: EnvelopePolicy, over: Partial<EnvelopeVerifierOptions> = {}) {
  return createEnvelopeVerifier({ policy, agentId: AGENT, trust: dev.trust, trustedMrtds: [], ...over });
}

function signed(s: EnvelopeSigner, body = command(), agentId = AGENT): MessageBody<"deploy"> {
  return { ...body, envelope: s.sign("deploy", body, agentId) };
}

/** Asserts that `fn` throws an EnvelopeError with `code`. */
function refuses(
  t: ExecutionContext,
  fn: () => unknown,
  code: EnvelopeError["code"],
  message?: string,
): void {
  const err = t.throws(fn, { instanceOf: EnvelopeError });
  t.is(err?.code, code, message);
}

test("a signed, quoted command is accepted under required and carries the CP's MRTD", async (t) => {
  const dev = await devSetup(t);
  const cp = await signer(dev);
  const v = verifier(dev, "required", { trustedMrtds: [MRTD_A] });
  const verdict = v.check("deploy", signed(cp));
  t.is(verdict.checked, "quote");
  t.is(verdict.mrtd, MRTD_A);
  t.is(verdict.cp_pubkey, Buffer.from(cp.publicKey).toString("hex"));
  const undeploy = { deployment_id: "d-0123456789abcdef" };
  t.is(v.check("undeploy", { ...undeploy, envelope: cp.sign("undeploy", undeploy, AGENT) }).checked, "quote");
});

test("a forged signature is EE-ENV-SIGNATURE", async (t) => {
  const dev = await devSetup(t);
  const body = signed(await signer(dev));
  const sig = body.envelope!.sig.slice();
  sig[0] = (sig[0] ?? 0) ^ 0xff;
  refuses(
    t,
    () => verifier(dev, "required").check("deploy", { ...body, envelope: { ...body.envelope!, sig } }),
    "EE-ENV-SIGNATURE",
  );
});

test("another key's signature under this CP's quote is EE-ENV-SIGNATURE; this key with another's quote is EE-ENV-QUOTE", async (t) => {
  const dev = await devSetup(t);
  const a = signed(await signer(dev));
  const b = signed(await signer(dev));
  // b's key and signature, a's quote: the quote does not bind b's key.
  const swapped = { ...b, envelope: { ...b.envelope!, quote: a.envelope!.quote! } };
  refuses(t, () => verifier(dev, "required").check("deploy", swapped), "EE-ENV-QUOTE");
  // a's key and quote, b's signature: the signature does not verify with a's key.
  const forged = { ...b, envelope: { ...a.envelope!, sig: b.envelope!.sig } };
  refuses(t, () => verifier(dev, "required").check("deploy", forged), "EE-ENV-SIGNATURE");
});

test("a tampered command (compose, app, context, health, deployment id) is EE-ENV-SIGNATURE", async (t) => {
  const dev = await devSetup(t);
  const body = signed(await signer(dev));
  const tampered: Partial<MessageBody<"deploy">>[] = [
    { compose: `${body.compose}    privileged: true\n` },
    { app: "other" },
    { context: new Uint8Array([1, 2, 4]) },
    { context: undefined },
    { health: { port: 9090, path: "/", timeout_s: 60 } },
    { deployment_id: "d-ffffffffffffffff" },
  ];
  for (const over of tampered) {
    const v = verifier(dev, "optional");
    refuses(
      t,
      () => v.check("deploy", { ...body, ...over }),
      "EE-ENV-SIGNATURE",
      JSON.stringify(Object.keys(over)),
    );
  }
});

test("a deploy's envelope does not verify as an undeploy of the same deployment", async (t) => {
  const dev = await devSetup(t);
  const body = signed(await signer(dev));
  const v = verifier(dev, "required");
  refuses(
    t,
    () => v.check("undeploy", { deployment_id: body.deployment_id, envelope: body.envelope! }),
    "EE-ENV-SIGNATURE",
  );
});

test("schema defaults do not break the signature: the CP signs health {port}, the agent sees the defaults", async (t) => {
  const dev = await devSetup(t);
  const cp = await signer(dev);
  const sent = { ...command(), health: { port: 8080 } } as MessageBody<"deploy">;
  const envelope = cp.sign("deploy", sent, AGENT);
  const received = { ...sent, health: { port: 8080, path: "/", timeout_s: 60 }, envelope };
  t.is(verifier(dev, "required").check("deploy", received).checked, "quote");
});

test("a command signed for another agent is EE-ENV-SIGNATURE", async (t) => {
  const dev = await devSetup(t);
  const body = signed(await signer(dev), command(), OTHER_AGENT);
  refuses(t, () => verifier(dev, "required").check("deploy", body), "EE-ENV-SIGNATURE");
});

test("an MRTD outside trusted_mrtds is EE-ENV-MRTD; an empty list trusts any verified MRTD", async (t) => {
  const dev = await devSetup(t);
  const cp = await signer(dev, { mrtd: MRTD_B });
  refuses(
    t,
    () => verifier(dev, "required", { trustedMrtds: [MRTD_A] }).check("deploy", signed(cp)),
    "EE-ENV-MRTD",
  );
  t.is(verifier(dev, "required").check("deploy", signed(cp)).mrtd, MRTD_B);
});

test("a quote under an untrusted root is EE-ENV-QUOTE", async (t) => {
  const dev = await devSetup(t);
  const cp = await signer(dev);
  // Intel's root only: the dev quote's chain does not end there.
  const v = verifier(dev, "required", { trust: createTrustAnchors() });
  refuses(t, () => v.check("deploy", signed(cp)), "EE-ENV-QUOTE");
});

test("pin_first_seen pins the first MRTD in a 0600 file and refuses another with EE-ENV-PIN, across restarts", async (t) => {
  const dev = await devSetup(t);
  const file = join(tempDir(t), CP_PIN_FILE);
  const first = await signer(dev, { mrtd: MRTD_A });
  const second = await signer(dev, { mrtd: MRTD_B });
  t.is(verifier(dev, "required", { pin: filePin(file, "mrtd") }).check("deploy", signed(first)).mrtd, MRTD_A);
  t.is(JSON.parse(readFileSync(file, "utf8")).mrtd, MRTD_A);
  t.is(statSync(file).mode & 0o777, 0o600);
  // A new verifier (an agent restart) reads the pin from the file.
  const restarted = verifier(dev, "required", { pin: filePin(file, "mrtd") });
  refuses(t, () => restarted.check("deploy", signed(second)), "EE-ENV-PIN");
  t.is(restarted.check("deploy", signed(first)).mrtd, MRTD_A);
  t.is(JSON.parse(readFileSync(file, "utf8")).mrtd, MRTD_A);
});

test("a refused MRTD is not pinned", async (t) => {
  const dev = await devSetup(t);
  const file = join(tempDir(t), CP_PIN_FILE);
  const v = verifier(dev, "required", { pin: filePin(file, "mrtd"), trustedMrtds: [MRTD_A] });
  const other = signed(await signer(dev, { mrtd: MRTD_B }));
  refuses(t, () => v.check("deploy", other), "EE-ENV-MRTD");
  t.is(filePin(file, "mrtd").read(), null);
});

test("issued_at more than 5 minutes off the agent's clock, either way, is EE-ENV-STALE", async (t) => {
  const dev = await devSetup(t);
  const at = 1_700_000_000_000;
  const v = verifier(dev, "required", { now: () => at });
  for (const skew of [ENVELOPE_MAX_SKEW_MS + 1, -ENVELOPE_MAX_SKEW_MS - 1]) {
    const cp = await signer(dev, { now: () => at + skew });
    refuses(t, () => v.check("deploy", signed(cp)), "EE-ENV-STALE", `skew ${skew}`);
  }
  const edge = await signer(dev, { now: () => at - ENVELOPE_MAX_SKEW_MS });
  t.is(v.check("deploy", signed(edge)).checked, "quote");
});

test("a replayed command is EE-ENV-STALE; a fresh signature of the same command is accepted", async (t) => {
  const dev = await devSetup(t);
  const cp = await signer(dev);
  const v = verifier(dev, "required");
  const body = signed(cp);
  t.is(v.check("deploy", body).checked, "quote");
  refuses(t, () => v.check("deploy", body), "EE-ENV-STALE");
  t.is(v.check("deploy", signed(cp)).checked, "quote");
});

test("a refused command does not burn its nonce", async (t) => {
  const dev = await devSetup(t);
  const body = signed(await signer(dev, { mrtd: MRTD_B }));
  refuses(
    t,
    () => verifier(dev, "required", { trustedMrtds: [MRTD_A] }).check("deploy", body),
    "EE-ENV-MRTD",
  );
  const v = verifier(dev, "required", { trustedMrtds: [MRTD_A, MRTD_B] });
  t.is(v.check("deploy", body).mrtd, MRTD_B);
});

test("required: no envelope is EE-ENV-MISSING, an envelope without a quote is EE-ENV-QUOTE", async (t) => {
  const dev = await devSetup(t);
  const v = verifier(dev, "required");
  refuses(t, () => v.check("deploy", command()), "EE-ENV-MISSING");
  refuses(t, () => v.check("undeploy", { deployment_id: "d-1" }), "EE-ENV-MISSING");
  const unquoted = signed(await signer(dev, { quoted: false }));
  refuses(t, () => v.check("deploy", unquoted), "EE-ENV-QUOTE");
});

test("optional: no envelope and a quote-less envelope are accepted; a bad envelope is still refused", async (t) => {
  const dev = await devSetup(t);
  const v = verifier(dev, "optional", { trustedMrtds: [MRTD_A] });
  t.is(v.check("deploy", command()).checked, "none");
  t.is(v.check("deploy", signed(await signer(dev, { quoted: false }))).checked, "signature");
  const other = signed(await signer(dev, { mrtd: MRTD_B }));
  refuses(t, () => v.check("deploy", other), "EE-ENV-MRTD");
  const body = signed(await signer(dev), command(), OTHER_AGENT);
  refuses(t, () => v.check("deploy", body), "EE-ENV-SIGNATURE");
});

test("disabled: envelopes are ignored, even forged ones", async (t) => {
  const dev = await devSetup(t);
  const v = verifier(dev, "disabled", { trustedMrtds: [MRTD_A] });
  const forged = signed(await signer(dev, { mrtd: MRTD_B }), command(), OTHER_AGENT);
  t.deepEqual(v.check("deploy", forged), { checked: "none", cp_pubkey: null, mrtd: null });
  t.is(v.check("deploy", command()).checked, "none");
});

test("signed (the default): no envelope is EE-ENV-MISSING; a quote-less envelope is accepted, a quote is checked", async (t) => {
  const dev = await devSetup(t);
  const v = verifier(dev, "signed", { trustedMrtds: [MRTD_A] });
  refuses(t, () => v.check("deploy", command()), "EE-ENV-MISSING");
  refuses(t, () => v.check("undeploy", { deployment_id: "d-1" }), "EE-ENV-MISSING");
  t.is(v.check("deploy", signed(await signer(dev, { quoted: false }))).checked, "signature");
  const untrusted = signed(await signer(dev, { mrtd: MRTD_B }));
  refuses(t, () => v.check("deploy", untrusted), "EE-ENV-MRTD");
  t.is(v.check("deploy", signed(await signer(dev))).checked, "quote");
});

test("optional with requireEnvelope (the agent's HTTP writes): no envelope is EE-ENV-MISSING", async (t) => {
  const dev = await devSetup(t);
  const v = verifier(dev, "optional");
  refuses(t, () => v.check("deploy", command(), { requireEnvelope: true }), "EE-ENV-MISSING");
  t.is(v.check("deploy", command()).checked, "none");
});

test("the key pin: the pinned CP key is accepted; a second CP key, even quoted, is EE-ENV-KEY; nothing pinned refuses all", async (t) => {
  const dev = await devSetup(t);
  const file = join(tempDir(t), CP_KEY_PIN_FILE);
  const keyPin = filePin(file, "cp_pubkey");
  const first = await signer(dev, { quoted: false });
  const second = await signer(dev);
  for (const policy of ["signed", "required", "optional"] as const)
    refuses(
      t,
      () => verifier(dev, policy, { keyPin }).check("deploy", signed(second)),
      "EE-ENV-KEY",
      `${policy} before any pin`,
    );
  // What the agent does with the key in `registered`.
  const firstKey = Buffer.from(first.publicKey).toString("hex");
  t.is(keyPin.pin(firstKey), firstKey);
  t.is(statSync(file).mode & 0o777, 0o600);
  t.is(keyPin.pin(Buffer.from(second.publicKey).toString("hex")), firstKey, "the first key stays pinned");
  const v = verifier(dev, "signed", { keyPin: filePin(file, "cp_pubkey") });
  t.is(v.check("deploy", signed(first)).cp_pubkey, firstKey);
  const err = t.throws(() => v.check("deploy", signed(second)), { instanceOf: EnvelopeError });
  t.is(err?.code, "EE-ENV-KEY");
  t.deepEqual(err?.details, { cp_pubkey: Buffer.from(second.publicKey).toString("hex"), pinned: firstKey });
  refuses(t, () => verifier(dev, "optional", { keyPin }).check("deploy", signed(second)), "EE-ENV-KEY");
  // Re-pinning: the operator removes the file; the next registration pins the key it brings.
  rmSync(file);
  keyPin.pin(Buffer.from(second.publicKey).toString("hex"));
  t.is(verifier(dev, "signed", { keyPin }).check("deploy", signed(second)).checked, "quote");
});

test("a damaged key pin refuses every envelope with EE-ENV-PIN instead of pinning again", async (t) => {
  const dev = await devSetup(t);
  const file = join(tempDir(t), CP_KEY_PIN_FILE);
  writeFileSync(file, "{not json");
  const keyPin = filePin(file, "cp_pubkey");
  const cp = await signer(dev, { quoted: false });
  refuses(t, () => verifier(dev, "signed", { keyPin }).check("deploy", signed(cp)), "EE-ENV-PIN");
  t.throws(() => keyPin.pin("ab".repeat(32)), { instanceOf: EnvelopeError });
});

test("a deploy's origin verifies with its CP's key for that agent and deployment only", async (t) => {
  const dev = await devSetup(t);
  const cp = await signer(dev, { quoted: false });
  const other = await signer(dev, { quoted: false });
  const body = signed(cp);
  const origin = originOf(body)!;
  const at = { deploymentId: body.deployment_id, agentId: AGENT, cpPubkey: cp.publicKey };
  t.true(originSignedBy(origin, at));
  t.false(originSignedBy(origin, { ...at, cpPubkey: other.publicKey }), "another CP");
  t.false(originSignedBy(origin, { ...at, agentId: OTHER_AGENT }), "another agent");
  t.false(originSignedBy(origin, { ...at, deploymentId: "d-ffffffffffffffff" }), "another deployment");
  t.false(originSignedBy({ ...origin, command_sha256: "00".repeat(32) }, at), "another command");
  t.is(originOf(command()), null, "no envelope, no origin");
});
