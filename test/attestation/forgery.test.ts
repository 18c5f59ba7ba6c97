// Forged and damaged dev quotes: each is refused with the code of the check it breaks, every failure is an
// AttestationError (never a crash), and details.checks tells which checks passed before.
import test from "ava";
import { createDevQuoteProvider } from "../../attestation/providers/dev.ts";
import { verifyQuote } from "../../attestation/verify.ts";
import type { AttestationError } from "../../spec/errors.ts";
import { attestationError, DEV_QUOTE, devSetup, flip, outcome, spliceDevPki } from "./fixtures.ts";

const flips: [string, number, AttestationError["code"]][] = [
  ["header version", DEV_QUOTE.version, "EE-ATT-QUOTE-VERSION"],
  ["header attestation key type", DEV_QUOTE.keyType, "EE-ATT-KEY-TYPE"],
  ["header TEE type", DEV_QUOTE.teeType, "EE-ATT-TEE-TYPE"],
  ["header QE vendor ID", DEV_QUOTE.qeVendorId + 5, "EE-ATT-QE-VENDOR"],
  ["header QE SVN", DEV_QUOTE.qeSvn, "EE-ATT-QUOTE-SIGNATURE"],
  ["header user data", DEV_QUOTE.userData + 3, "EE-ATT-QUOTE-SIGNATURE"],
  ["body MRTD", DEV_QUOTE.mrtd, "EE-ATT-QUOTE-SIGNATURE"],
  ["body REPORTDATA", DEV_QUOTE.reportData + 63, "EE-ATT-QUOTE-SIGNATURE"],
  ["quote signature", DEV_QUOTE.signature + 10, "EE-ATT-QUOTE-SIGNATURE"],
  ["attestation key", DEV_QUOTE.attestationKey + 1, "EE-ATT-QE-BINDING"],
  ["certification data type", DEV_QUOTE.certDataType, "EE-ATT-CERT-DATA"],
  ["QE report", DEV_QUOTE.qeReport + 40, "EE-ATT-QE-REPORT-SIGNATURE"],
  ["QE report data", DEV_QUOTE.qeReportData, "EE-ATT-QE-REPORT-SIGNATURE"],
  ["QE report signature", DEV_QUOTE.qeReportSignature + 33, "EE-ATT-QE-REPORT-SIGNATURE"],
  ["QE auth data", DEV_QUOTE.qeAuthData + 7, "EE-ATT-QE-BINDING"],
  ["PCK certification data type", DEV_QUOTE.pckCertDataType, "EE-ATT-CERT-DATA"],
  ["signature data length", DEV_QUOTE.signatureDataLength + 1, "EE-ATT-QUOTE-MALFORMED"],
  ["certification data size", DEV_QUOTE.certDataSize + 1, "EE-ATT-QUOTE-MALFORMED"],
  ["PCK chain PEM text", DEV_QUOTE.pckChain + 100, "EE-ATT-CHAIN-INVALID"],
];

for (const [what, offset, code] of flips) {
  test(`a flipped byte in the ${what} is refused with ${code}`, async (t) => {
    const dev = await devSetup(t);
    const forged = flip(await dev.quote(), offset);
    const err = attestationError(t, () => verifyQuote(forged, { trust: dev.trust }));
    t.is(err.code, code);
  });
}

test("details.checks records the checks passed before the failing one", async (t) => {
  const dev = await devSetup(t);
  const forged = flip(await dev.quote(), DEV_QUOTE.mrtd);
  const err = attestationError(t, () => verifyQuote(forged, { trust: dev.trust }));
  t.deepEqual(err.details, {
    checks: {
      structure: true,
      header_version: true,
      header_key_type: true,
      header_tee_type: true,
      header_qe_vendor: true,
      cert_data_types: true,
      root_trusted: true,
      pck_chain: true,
      qe_report_signature: true,
      qe_binding: true,
      quote_signature: false,
    },
  });
});

test("every truncation is refused as QUOTE-MALFORMED", async (t) => {
  const dev = await devSetup(t);
  const quote = await dev.quote();
  const wrong = [];
  for (let length = 0; length < quote.length; length++) {
    const got = outcome(() => verifyQuote(quote.subarray(0, length), { trust: dev.trust }));
    if (got !== "EE-ATT-QUOTE-MALFORMED") wrong.push(`${length}: ${got}`);
  }
  t.deepEqual(wrong, []);
});

test("every single-byte flip is refused with an attestation code, never accepted or crashing", async (t) => {
  const dev = await devSetup(t);
  const quote = await dev.quote();
  const codes = new Map<string, number>();
  for (let offset = 0; offset < quote.length; offset++) {
    const got = outcome(() => verifyQuote(flip(quote, offset), { trust: dev.trust }));
    codes.set(got, (codes.get(got) ?? 0) + 1);
  }
  t.false(codes.has("ok"));
  t.deepEqual(
    [...codes.keys()].filter((code) => !code.startsWith("EE-ATT-")),
    [],
  );
  t.log(Object.fromEntries(codes));
});

test("a quote from an independently created dev root is refused as ROOT-UNTRUSTED", async (t) => {
  const trusted = await devSetup(t);
  const other = await devSetup(t);
  const quote = await other.quote();
  const err = attestationError(t, () => verifyQuote(quote, { trust: trusted.trust }));
  t.is(err.code, "EE-ATT-ROOT-UNTRUSTED");
});

test("a PCK leaf from another PKI presented under the trusted CA and root is refused as CHAIN-INVALID", async (t) => {
  const trusted = await devSetup(t);
  const other = await devSetup(t);
  // The forger signs with another PKI's leaf and attestation keys but ships the trusted PCK CA and root.
  const spliced = spliceDevPki(t, other.dir, trusted.dir);
  const quote = await createDevQuoteProvider({ dir: spliced }).getQuote(new Uint8Array(64));
  const err = attestationError(t, () => verifyQuote(quote, { trust: trusted.trust }));
  t.is(err.code, "EE-ATT-CHAIN-INVALID");
  t.like(err.details, { checks: { root_trusted: true, pck_chain: false } });
  t.is(attestationError(t, () => verifyQuote(quote, { trust: other.trust })).code, "EE-ATT-ROOT-UNTRUSTED");
});

test("outside the chain's validity window the quote is refused as CHAIN-INVALID, cached or not", async (t) => {
  const dev = await devSetup(t);
  const quote = await dev.quote();
  const verified = verifyQuote(quote, { trust: dev.trust });
  const afterLeaf = new Date(Date.parse(verified.pck_leaf.not_after) + 1000);
  const beforeLeaf = new Date(Date.parse(verified.pck_leaf.not_before) - 1000);
  for (const at of [afterLeaf, beforeLeaf]) {
    const err = attestationError(t, () => verifyQuote(quote, { trust: dev.trust, at }));
    t.is(err.code, "EE-ATT-CHAIN-INVALID");
    t.like(err.details, { checks: { root_trusted: true, pck_chain: false } });
  }
  t.is(
    verifyQuote(quote, { trust: dev.trust, at: new Date(Date.parse(verified.pck_leaf.not_after)) }).root,
    "dev",
  );
});
