// Dev quotes end to end: dev-init, the dev provider, and the verifier, which accepts them only when the dev root
// is trusted; MRTD, RTMRs and REPORTDATA survive the round trip.
import { randomBytes } from "node:crypto";
import test from "ava";
import { DEV_FMSPC, DEV_PCEID } from "../../attestation/dev-pki.ts";
import { DEV_MRTD } from "../../attestation/providers/dev.ts";
import { parseQuote } from "../../attestation/quote.ts";
import { createTrustAnchors } from "../../attestation/trust.ts";
import { verifyQuote } from "../../attestation/verify.ts";
import { attestationError, DEV_QUOTE, devSetup } from "./fixtures.ts";

test("a dev quote verifies under the trusted dev root, with MRTD and REPORTDATA intact", async (t) => {
  const dev = await devSetup(t);
  const reportData = randomBytes(64);
  const v = verifyQuote(await dev.quote(reportData), { trust: dev.trust });
  t.is(v.root, "dev");
  t.is(v.version, 4);
  t.is(v.body_type, 2);
  t.is(v.tee_type, 0x81);
  t.is(v.mrtd, DEV_MRTD);
  t.deepEqual(v.rtmr, ["00".repeat(48), "00".repeat(48), "00".repeat(48), "00".repeat(48)]);
  t.deepEqual(Buffer.from(v.reportData), reportData);
  t.is(v.report_data, reportData.toString("hex"));
  t.true(Object.values(v.checks).every(Boolean));
  t.is(v.pck_leaf.fmspc, DEV_FMSPC);
  t.is(v.pck_leaf.pceid, DEV_PCEID);
  t.regex(v.pck_leaf.subject, /DEVELOPMENT/);
});

test("configured MRTD and RTMRs round-trip", async (t) => {
  const dev = await devSetup(t);
  const mrtd = randomBytes(48).toString("hex");
  const rtmr = [0, 1, 2, 3].map(() => randomBytes(48).toString("hex"));
  const v = verifyQuote(await dev.quote(undefined, { mrtd, rtmr }), { trust: dev.trust });
  t.is(v.mrtd, mrtd);
  t.deepEqual(v.rtmr, rtmr);
});

test("without the dev root trusted, a dev quote is refused as ROOT-UNTRUSTED", async (t) => {
  const dev = await devSetup(t);
  const quote = await dev.quote();
  const err = attestationError(t, () => verifyQuote(quote, { trust: createTrustAnchors() }));
  t.is(err.code, "EE-ATT-ROOT-UNTRUSTED");
  t.like(err.details, { checks: { structure: true, cert_data_types: true, root_trusted: false } });
});

test("caches do not leak across trust sets: a chain accepted under one is refused under another", async (t) => {
  const dev = await devSetup(t);
  const quote = await dev.quote();
  t.is(verifyQuote(quote, { trust: dev.trust }).root, "dev");
  t.is(
    attestationError(t, () => verifyQuote(quote, { trust: createTrustAnchors() })).code,
    "EE-ATT-ROOT-UNTRUSTED",
  );
});

test("repeat verifications (served from the caches) give the same result", async (t) => {
  const dev = await devSetup(t);
  const quotes = await Promise.all([1, 2, 3].map((n) => dev.quote(new Uint8Array(64).fill(n))));
  for (let round = 0; round < 3; round++) {
    for (const [i, quote] of quotes.entries()) {
      t.is(verifyQuote(quote, { trust: dev.trust }).reportData[0], i + 1);
    }
  }
});

test("bytes after the signature data are ignored", async (t) => {
  const dev = await devSetup(t);
  const quote = await dev.quote();
  const padded = new Uint8Array(quote.length + 70);
  padded.set(quote);
  padded.fill(0x5a, quote.length);
  t.is(verifyQuote(padded, { trust: dev.trust }).mrtd, DEV_MRTD);
});

test("a dev quote has the layout the forgery tests assume", async (t) => {
  const dev = await devSetup(t);
  const quote = await dev.quote();
  const q = parseQuote(quote);
  t.is(q.signedRegion.length, DEV_QUOTE.signatureDataLength);
  t.is(q.body.mrTd.byteOffset, DEV_QUOTE.mrtd);
  t.is(q.body.reportData.byteOffset, DEV_QUOTE.reportData);
  t.is(q.signature.byteOffset, DEV_QUOTE.signature);
  t.is(q.attestationKey.byteOffset, DEV_QUOTE.attestationKey);
  t.is(q.qeCertData.qeReport.byteOffset, DEV_QUOTE.qeReport);
  t.is(q.qeCertData.qeReportBody.reportData.byteOffset, DEV_QUOTE.qeReportData);
  t.is(q.qeCertData.qeReportSignature.byteOffset, DEV_QUOTE.qeReportSignature);
  t.is(q.qeCertData.qeAuthData.byteOffset, DEV_QUOTE.qeAuthData);
  t.is(q.qeCertData.pckCertData.data.byteOffset, DEV_QUOTE.pckChain);
  t.is(DEV_QUOTE.pckChain + q.qeCertData.pckCertData.data.length, quote.length);
});
