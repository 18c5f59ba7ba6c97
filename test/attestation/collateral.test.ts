// Collateral evaluation of the genuine quotes in shared/tdx-quotes: each quote with the collateral its README
// row lists yields that row's platform, module and QE TCB statuses; the collateral time check agrees with the
// windows recorded in NAME.json; and tampered or mismatched collateral fails with its own code. Skipped, with a
// notice, where the samples are absent.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import test from "ava";
import {
  type Collateral,
  evaluateCollateral,
  parseCollateral,
  requireCollateral,
} from "../../attestation/collateral.ts";
import { parseCrl } from "../../attestation/crl.ts";
import { splitPckChain } from "../../attestation/pck-chain.ts";
import { parseQuote } from "../../attestation/quote.ts";
import { createTrustAnchors } from "../../attestation/trust.ts";
import { verifyQuote } from "../../attestation/verify.ts";
import { attestationError, SHARED_QUOTES, sharedQuotesAvailable } from "./fixtures.ts";

interface SampleJson {
  verification_time_used: string | null;
  pck_info: { pck_leaf_validity: [string, string] };
  collateral_evaluation: Record<
    "root_ca_crl_window" | "pck_crl_window" | "tcb_info_window" | "qe_identity_window",
    [string, string]
  > & { pck_crl_revoked_count: number };
}

interface Row {
  name: string;
  collateral: string;
  platform: string;
  module: string;
  qe: string;
}

const available = sharedQuotesAvailable();
if (!available)
  console.log(`real TDX quote samples not found at ${SHARED_QUOTES.pathname}; skipping those tests`);
const read = (path: string) => readFileSync(new URL(path, SHARED_QUOTES));
// The README's sample table: `NAME.bin` | … | collateral/FILE | … | platform=P module=M QE=Q |
const ROW = /^\| `([^`]+)\.bin` .*\| (collateral\/\S+) \|.*\| platform=(\S+) module=(\S+) QE=(\S+) \|$/;
const rows: Row[] = available
  ? read("README.md")
      .toString("utf8")
      .split("\n")
      .flatMap((line) => {
        const m = ROW.exec(line);
        if (m === null) return [];
        const [, name = "", collateral = "", platform = "", module = "", qe = ""] = m;
        return [{ name, collateral, platform, module, qe }];
      })
  : [];
const intel = createTrustAnchors();
const maybe = available ? test : test.skip;

function load(name: string, collateralPath: string) {
  const bytes = new Uint8Array(read(`${name}.bin`));
  const json = JSON.parse(read(`${name}.json`).toString("utf8")) as SampleJson;
  const collateral = parseCollateral(read(collateralPath).toString("utf8"));
  // A day into the PCK leaf's validity: inside every certificate's window in these chains.
  const chainAt = new Date(Date.parse(json.pck_info.pck_leaf_validity[0]) + 24 * 3600 * 1000);
  const verified = verifyQuote(bytes, { trust: intel, at: chainAt });
  // The time the sample's own evaluation used, else an hour after the later of the two issue dates.
  const issued = Math.max(
    Date.parse(collateral.tcbInfo.issueDate),
    Date.parse(collateral.qeIdentity.issueDate),
  );
  const at = new Date(json.verification_time_used ?? issued + 3600 * 1000);
  return { bytes, json, collateral, verified, at };
}

maybe("the README lists 14 quote/collateral pairings", (t) => {
  t.is(rows.length, 14);
});

for (const row of rows) {
  test(`${row.name} with ${row.collateral}: platform=${row.platform} module=${row.module} QE=${row.qe}`, (t) => {
    const { bytes, json, collateral, verified, at } = load(row.name, row.collateral);
    const r = evaluateCollateral(bytes, verified, collateral, at);
    t.is(r.platform_tcb_status ?? "None", row.platform);
    t.is(r.module_tcb_status ?? "None", row.module);
    t.is(r.qe_tcb_status ?? "None", row.qe);
    for (const check of [
      "tcb_signing_chain",
      "tcb_info_signature",
      "qe_identity_signature",
      "root_ca_crl",
      "pck_crl",
      "not_revoked",
      "qe_identity",
      "fmspc_pceid",
      "tdx_module",
    ] as const) {
      t.true(r.checks[check], check);
    }
    const windows = Object.values({
      root: json.collateral_evaluation.root_ca_crl_window,
      pck: json.collateral_evaluation.pck_crl_window,
      tcb: json.collateral_evaluation.tcb_info_window,
      qe: json.collateral_evaluation.qe_identity_window,
    });
    const current = windows.every(([from, to]) => at >= new Date(from) && at <= new Date(to));
    t.is(r.checks.collateral_time, current);
    t.is(r.checks.tcb_level, row.platform !== "None");
    t.is(r.tcb_status, row.platform === "None" ? "TCBLevelNotSupported" : r.tcb_status);
    t.is(r.ok, current && row.platform !== "None");
    if (!r.ok) t.is(r.reason, current ? "EE-ATT-TCB-LEVEL" : "EE-ATT-COLLATERAL-EXPIRED");
    t.is(collateral.pckCrl.revoked.size, json.collateral_evaluation.pck_crl_revoked_count);
  });
}

const GOOD = {
  name: "dcapqvl-tdx_quote_v4",
  collateral: "collateral/dcapqvl-fmspcB0C06F000000-2025-06.collateral.json",
};
const goodText = () => read(GOOD.collateral).toString("utf8");
const evaluate = (collateral: Collateral, at?: Date) => {
  const s = load(GOOD.name, GOOD.collateral);
  return evaluateCollateral(s.bytes, s.verified, collateral, at ?? s.at);
};

maybe("dcap-qvl's tdx_quote is UpToDate with no advisories, and requireCollateral accepts it", (t) => {
  const r = evaluate(parseCollateral(goodText()));
  t.true(r.ok);
  t.is(r.tcb_status, "UpToDate");
  t.deepEqual(r.advisory_ids, []);
  t.notThrows(() => requireCollateral(r));
});

maybe("evaluating one collateral again keeps its signature findings and checks the time anew", (t) => {
  const raw = JSON.parse(goodText()) as Record<string, string>;
  const sig = raw.qe_identity_signature ?? "";
  raw.qe_identity_signature = `${sig.slice(0, -1)}${sig.endsWith("0") ? "1" : "0"}`;
  const forged = parseCollateral(JSON.stringify(raw));
  for (const r of [evaluate(forged), evaluate(forged)]) {
    t.false(r.checks.qe_identity_signature);
    t.is(r.reason, "EE-ATT-COLLATERAL-SIGNATURE");
  }
  const good = parseCollateral(goodText());
  t.true(evaluate(good).ok);
  const later = evaluate(good, new Date(Date.parse(good.tcbInfo.nextUpdate) + 1000));
  t.false(later.checks.collateral_time);
  t.true(later.checks.tcb_info_signature);
  t.is(later.reason, "EE-ATT-COLLATERAL-EXPIRED");
  t.true(evaluate(good).ok);
});

maybe("a TCB info changed by one character fails its signature", (t) => {
  const raw = JSON.parse(goodText()) as Record<string, string>;
  raw.tcb_info = (raw.tcb_info ?? "").replace('"tcbStatus":"OutOfDate"', '"tcbStatus":"UpToDate"');
  const r = evaluate(parseCollateral(JSON.stringify(raw)));
  t.false(r.checks.tcb_info_signature);
  t.true(r.checks.qe_identity_signature);
  t.is(r.reason, "EE-ATT-COLLATERAL-SIGNATURE");
  t.is(attestationError(t, () => requireCollateral(r)).code, "EE-ATT-COLLATERAL-SIGNATURE");
});

maybe("a QE identity signature with one bit flipped fails", (t) => {
  const raw = JSON.parse(goodText()) as Record<string, string>;
  const sig = raw.qe_identity_signature ?? "";
  raw.qe_identity_signature = `${sig.slice(0, -1)}${sig.endsWith("0") ? "1" : "0"}`;
  const r = evaluate(parseCollateral(JSON.stringify(raw)));
  t.false(r.checks.qe_identity_signature);
  t.is(r.reason, "EE-ATT-COLLATERAL-SIGNATURE");
});

maybe("a TCB issuer chain that does not end in the quote's root fails", (t) => {
  const raw = JSON.parse(goodText()) as Record<string, string>;
  const [signing = ""] = (raw.tcb_info_issuer_chain ?? "").split(/(?<=-----END CERTIFICATE-----)/);
  raw.tcb_info_issuer_chain = `${signing}\n${signing}`;
  const r = evaluate(parseCollateral(JSON.stringify(raw)));
  t.false(r.checks.tcb_signing_chain);
  t.false(r.checks.tcb_info_signature);
  t.is(r.reason, "EE-ATT-COLLATERAL-SIGNATURE");
});

maybe("the PCK CRL in place of the Root CA CRL fails the CRL check", (t) => {
  const raw = JSON.parse(goodText()) as Record<string, string>;
  raw.root_ca_crl = raw.pck_crl ?? "";
  const r = evaluate(parseCollateral(JSON.stringify(raw)));
  t.false(r.checks.root_ca_crl);
  t.is(r.reason, "EE-ATT-CRL");
});

maybe("a PCK leaf listed in the PCK CRL, or a PCK CA in the Root CA CRL, is revoked", (t) => {
  const s = load(GOOD.name, GOOD.collateral);
  const leafRevoked = parseCollateral(goodText());
  leafRevoked.pckCrl.revoked.add(s.verified.pck_leaf.serial_number);
  const r = evaluateCollateral(s.bytes, s.verified, leafRevoked, s.at);
  t.false(r.checks.not_revoked);
  t.is(r.reason, "EE-ATT-REVOKED");
  const caRevoked = parseCollateral(goodText());
  const caDer = splitPckChain(parseQuote(s.bytes).qeCertData.pckCertData.data).ca;
  caRevoked.rootCaCrl.revoked.add(BigInt(`0x${new X509Certificate(caDer).serialNumber}`).toString(16));
  const ca = evaluateCollateral(s.bytes, s.verified, caRevoked, s.at);
  t.false(ca.checks.not_revoked);
  t.is(ca.reason, "EE-ATT-REVOKED");
});

maybe("collateral past its nextUpdate is expired", (t) => {
  const c = parseCollateral(goodText());
  const r = evaluate(c, new Date(Date.parse(c.tcbInfo.nextUpdate) + 1000));
  t.false(r.checks.collateral_time);
  t.is(r.reason, "EE-ATT-COLLATERAL-EXPIRED");
  t.is(r.tcb_status, "UpToDate", "the TCB status is still reported");
});

maybe("collateral for another FMSPC fails the FMSPC check", (t) => {
  const other = "collateral/dcapqvl-fmspc90C06F000000-2026-02.collateral.json";
  const s = load(GOOD.name, GOOD.collateral);
  const c = parseCollateral(read(other).toString("utf8"));
  const r = evaluateCollateral(s.bytes, s.verified, c, new Date(Date.parse(c.tcbInfo.issueDate) + 3600_000));
  t.false(r.checks.fmspc_pceid);
  t.is(r.reason, "EE-ATT-FMSPC-MISMATCH");
});

maybe("a QE identity with another MRSIGNER or ISVPRODID fails the QE identity check", (t) => {
  for (const edit of [
    (c: Collateral) => {
      c.qeIdentity.mrsigner = "00".repeat(32);
    },
    (c: Collateral) => {
      c.qeIdentity.isvprodid = 1;
    },
    (c: Collateral) => {
      c.qeIdentity.attributesMask = "FF".repeat(16);
      c.qeIdentity.attributes = "00".repeat(16);
    },
  ]) {
    const c = parseCollateral(goodText());
    edit(c);
    const r = evaluate(c);
    t.false(r.checks.qe_identity);
    t.is(r.reason, "EE-ATT-QE-IDENTITY");
  }
});

maybe("a TDX module identity with another MRSIGNER, or a missing one, fails the module check", (t) => {
  const c = parseCollateral(goodText());
  for (const identity of c.tcbInfo.tdxModuleIdentities ?? []) identity.mrsigner = "ab".repeat(48);
  t.is(evaluate(c).reason, "EE-ATT-TCB-MODULE");
  const missing = parseCollateral(goodText());
  missing.tcbInfo.tdxModuleIdentities = [];
  const r = evaluate(missing);
  t.false(r.checks.tdx_module);
  t.is(r.module_tcb_status, null);
});

maybe("a matched TCB level marked Revoked fails with EE-ATT-TCB-REVOKED", (t) => {
  const c = parseCollateral(goodText());
  for (const level of c.tcbInfo.tcbLevels) level.tcbStatus = "Revoked";
  const r = evaluate(c);
  t.is(r.tcb_status, "Revoked");
  t.is(r.reason, "EE-ATT-TCB-REVOKED");
});

maybe("an OutOfDate TDX module drags an UpToDate platform to OutOfDate", (t) => {
  const c = parseCollateral(goodText());
  for (const identity of c.tcbInfo.tdxModuleIdentities ?? [])
    for (const level of identity.tcbLevels ?? []) level.tcbStatus = "OutOfDate";
  const r = evaluate(c);
  t.is(r.platform_tcb_status, "UpToDate");
  t.is(r.module_tcb_status, "OutOfDate");
  t.is(r.tcb_status, "OutOfDate");
});

maybe("the Root CA CRL parses: issuer, window and no revoked PCK CA", (t) => {
  const c = parseCollateral(goodText());
  t.true(c.rootCaCrl.nextUpdate !== null && c.rootCaCrl.nextUpdate > c.rootCaCrl.thisUpdate);
  t.throws(() => parseCrl(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00)), { instanceOf: SyntaxError });
});

test("malformed collateral is EE-ATT-COLLATERAL-MALFORMED", (t) => {
  for (const text of ["not json", "[]", "{}", JSON.stringify({ pck_crl: "zz" })]) {
    t.is(attestationError(t, () => parseCollateral(text)).code, "EE-ATT-COLLATERAL-MALFORMED");
  }
});
